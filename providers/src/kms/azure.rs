//! `azure-kms:///<key name>/<key version>?AZURE_VAULT_NAME=…`: Azure Key Vault's REST API
//! (`/keys/{name}/{version}/encrypt` and `/decrypt`, api-version 7.4, RSA-OAEP-256).
//!
//! The token comes from Microsoft Entra ID's client-credentials flow, for `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET` and `AZURE_TENANT_ID` from the URI (`AUTH=specified`, the default)
//! or from the host's environment variables of the same names (`AUTH=implicit`).
//! `AZURE_ENVIRONMENT` picks the cloud's vault suffix and sign-in authority; the host's
//! [`Config::azure_kms_endpoint`] and [`Config::azure_authority_host`] override them.

use base64::Engine as _;

use super::Http;
use crate::storage::cloud::Params;
use crate::{Config, Error, Target};

const PROVIDER: &str = "azure-kms";
const API_VERSION: &str = "7.4";
const ALGORITHM: &str = "RSA-OAEP-256";

/// Azure clouds by `autorest` name: (name, Key Vault suffix, Entra ID authority).
const CLOUDS: &[(&str, &str, &str)] = &[
    ("AzurePublicCloud", "vault.azure.net", "https://login.microsoftonline.com"),
    ("AzureCloud", "vault.azure.net", "https://login.microsoftonline.com"),
    ("AzureUSGovernmentCloud", "vault.usgovcloudapi.net", "https://login.microsoftonline.us"),
    ("AzureUSGovernment", "vault.usgovcloudapi.net", "https://login.microsoftonline.us"),
    ("AzureChinaCloud", "vault.azure.cn", "https://login.chinacloudapi.cn"),
    ("AzureGermanCloud", "vault.microsoftazure.de", "https://login.microsoftonline.de"),
];

/// An opened `azure-kms://` key.
pub(super) struct Key {
    http: Http,
    vault: String,
    vault_url: String,
    name: String,
    version: String,
    token_url: String,
    scope: String,
    client_id: String,
    client_secret: String,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(serde::Deserialize)]
struct KeyOperationResult {
    value: String,
}

impl Key {
    pub(super) fn open(config: &Config, target: &Target) -> Result<Self, Error> {
        let p = Params::new(target, PROVIDER);
        let (name, version) = match target.path.split('/').collect::<Vec<_>>()[..] {
            [name, version] if !name.is_empty() && !version.is_empty() => (name, version),
            _ => return Err(p.invalid("key", "must be of form 'id/version'")),
        };
        let vault = p
            .get("AZURE_VAULT_NAME")
            .ok_or_else(|| p.invalid("AZURE_VAULT_NAME", "must be set"))?;
        let environment = p.get("AZURE_ENVIRONMENT").unwrap_or("AzurePublicCloud");
        let (_, suffix, authority) = CLOUDS
            .iter()
            .find(|(name, ..)| name.eq_ignore_ascii_case(environment))
            .ok_or_else(|| p.invalid("AZURE_ENVIRONMENT", "names no Azure cloud"))?;
        let [tenant, client_id, client_secret] = credentials(&p)?;

        let vault_url = match &config.azure_kms_endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').replace("{vault}", vault),
            None => format!("https://{vault}.{suffix}"),
        };
        let authority = config.azure_authority_host.as_deref().unwrap_or(authority);
        let mut secrets = p.secrets(&["AZURE_CLIENT_SECRET"]);
        secrets.push(client_secret.clone());
        Ok(Self {
            http: Http::new(target, secrets)?,
            vault: vault.to_owned(),
            vault_url,
            name: name.to_owned(),
            version: version.to_owned(),
            token_url: format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/')),
            scope: format!("https://{suffix}/.default"),
            client_id,
            client_secret,
        })
    }

    /// `azure-kms:<vault>/<key name>/<key version>`.
    pub(super) fn identity(&self) -> String {
        format!("azure-kms:{}/{}/{}", self.vault, self.name, self.version)
    }

    pub(super) async fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.call("encrypt", plaintext).await
    }

    pub(super) async fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        self.call("decrypt", ciphertext).await
    }

    /// `POST {vault}/keys/{name}/{version}/{operation}` of `value`, answering the result's
    /// value.
    async fn call(&self, operation: &'static str, value: &[u8]) -> Result<Vec<u8>, Error> {
        let token = self.token().await?;
        let url = format!(
            "{}/keys/{}/{}/{operation}?api-version={API_VERSION}",
            self.vault_url, self.name, self.version
        );
        let body = serde_json::json!({
            "alg": ALGORITHM,
            "value": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        });
        let request = self.http.post_json(&url, &token, &body);
        let out: KeyOperationResult = self.http.send_json(operation, request).await?;
        // Key Vault's base64url comes without padding; tolerate it anyway.
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(out.value.trim_end_matches('='))
            .map_err(|e| self.http.bad_answer(operation, format!("value is not base64url: {e}")))
    }

    /// Entra ID's client-credentials grant for Key Vault's scope.
    async fn token(&self) -> Result<String, Error> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("scope", &self.scope),
        ];
        let request = self.http.post_form(&self.token_url, &form);
        let out: TokenResponse = self.http.send_json("token request", request).await?;
        Ok(out.access_token)
    }
}

/// Tenant, client id and secret: from the URI, or with `AUTH=implicit` from the host's
/// environment.
fn credentials(p: &Params<'_>) -> Result<[String; 3], Error> {
    const NAMES: [&str; 3] = ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"];
    if p.implicit() {
        let from_env = NAMES.map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()));
        return match from_env {
            [Some(tenant), Some(id), Some(secret)] => Ok([tenant, id, secret]),
            _ => Err(p.invalid(
                "AUTH",
                "is implicit, but the host's environment lacks AZURE_TENANT_ID, \
                 AZURE_CLIENT_ID or AZURE_CLIENT_SECRET (the only implicit credentials \
                 extconn's azure-kms reads)",
            )),
        };
    }
    match NAMES.map(|n| p.get(n)) {
        [Some(tenant), Some(id), Some(secret)] => {
            Ok([tenant.to_owned(), id.to_owned(), secret.to_owned()])
        }
        _ => Err(p.invalid(
            "AUTH",
            "azure kms requires explicit auth (RBAC) or implicit auth: set AZURE_TENANT_ID, \
             AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or AUTH=implicit",
        )),
    }
}
