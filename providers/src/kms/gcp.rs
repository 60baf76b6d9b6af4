//! `gcp-kms:///projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`: Cloud KMS's REST API
//! (`…:encrypt`, `…:decrypt`) with a bearer token.
//!
//! `AUTH=specified` (the default) takes `BEARER_TOKEN` as it is, or exchanges a JWT signed
//! with the `CREDENTIALS` service account's key for a token at the key file's `token_uri`
//! (OAuth 2.0's JWT-bearer grant, as Google's client libraries do); `AUTH=implicit` uses the
//! host's application default credentials through object_store. The endpoint is the host's
//! [`Config::gcp_kms_endpoint`], never anything in the URI.

use base64::Engine as _;
use object_store::gcp::GoogleCloudStorageBuilder;
use ring::signature::RsaKeyPair;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;

use super::{Http, b64, unb64};
use crate::storage::cloud::Params;
use crate::{Config, Error, Target};

const PROVIDER: &str = "gcp-kms";
/// Where Cloud KMS is when the host does not say otherwise.
const DEFAULT_ENDPOINT: &str = "https://cloudkms.googleapis.com";
/// Google's token endpoint, for key files without `token_uri`.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The scope Cloud KMS accepts (`cloudkms` is narrower, but `cloud-platform` is what
/// CockroachDB's client asks for).
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// An opened `gcp-kms://` key.
pub(super) struct Key {
    http: Http,
    resource: String,
    endpoint: String,
    auth: Auth,
}

enum Auth {
    Bearer(String),
    ServiceAccount(Box<ServiceAccount>),
    Implicit,
}

/// What the JWT-bearer grant needs of a service-account key file.
struct ServiceAccount {
    email: String,
    key_id: Option<String>,
    token_uri: String,
    key: RsaKeyPair,
}

/// The fields of a key file this provider reads.
#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(serde::Deserialize)]
struct EncryptResponse {
    ciphertext: String,
}

#[derive(serde::Deserialize)]
struct DecryptResponse {
    // Cloud KMS omits the field for an empty plaintext.
    #[serde(default)]
    plaintext: String,
}

impl Key {
    pub(super) fn open(config: &Config, target: &Target) -> Result<Self, Error> {
        let p = Params::new(target, PROVIDER);
        if target.path.is_empty() {
            return Err(p.invalid("path", "cannot be empty; must contain the Customer Managed Key"));
        }
        p.reject(
            "ASSUME_ROLE",
            "service-account impersonation is not implemented for gcp-kms; \
             pass the service account's own CREDENTIALS or a BEARER_TOKEN for it",
        )?;
        let auth = if p.implicit() {
            for name in ["CREDENTIALS", "BEARER_TOKEN"] {
                if p.get(name).is_some() {
                    return Err(p.invalid(name, "cannot be given with AUTH=implicit"));
                }
            }
            Auth::Implicit
        } else if let Some(encoded) = p.get("CREDENTIALS") {
            Auth::ServiceAccount(Box::new(service_account(&p, encoded)?))
        } else if let Some(token) = p.get("BEARER_TOKEN") {
            Auth::Bearer(token.to_owned())
        } else {
            return Err(
                p.invalid("CREDENTIALS", "or BEARER_TOKEN must be set if AUTH is specified")
            );
        };
        let endpoint = config.gcp_kms_endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        Ok(Self {
            http: Http::new(target, p.secrets(&["CREDENTIALS", "BEARER_TOKEN"]))?,
            resource: target.path.clone(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            auth,
        })
    }

    /// `gcp-kms:<key resource>`.
    pub(super) fn identity(&self) -> String {
        format!("gcp-kms:{}", self.resource)
    }

    pub(super) async fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let body = serde_json::json!({ "plaintext": b64(plaintext) });
        let out: EncryptResponse = self.call("encrypt", &body).await?;
        unb64(&self.http, "encrypt", "ciphertext", &out.ciphertext)
    }

    pub(super) async fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        let body = serde_json::json!({ "ciphertext": b64(ciphertext) });
        let out: DecryptResponse = self.call("decrypt", &body).await?;
        unb64(&self.http, "decrypt", "plaintext", &out.plaintext)
    }

    /// `POST {endpoint}/v1/{resource}:{operation}`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        body: &serde_json::Value,
    ) -> Result<T, Error> {
        let token = self.token().await?;
        let url = format!("{}/v1/{}:{operation}", self.endpoint, self.resource);
        let request = self.http.post_json(&url, &token, body);
        self.http.send_json(operation, request).await
    }

    async fn token(&self) -> Result<String, Error> {
        match &self.auth {
            Auth::Bearer(token) => Ok(token.clone()),
            Auth::ServiceAccount(account) => self.exchange(account).await,
            Auth::Implicit => self.implicit().await,
        }
    }

    /// OAuth 2.0's JWT-bearer grant (RFC 7523) at the key file's `token_uri`.
    async fn exchange(&self, account: &ServiceAccount) -> Result<String, Error> {
        let assertion = jwt(account).map_err(|e| self.http.no_credentials(e))?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ];
        let request = self.http.post_form(&account.token_uri, &form);
        let out: TokenResponse = self.http.send_json("token request", request).await?;
        Ok(out.access_token)
    }

    /// Application default credentials, as object_store's GCS client finds them.
    async fn implicit(&self) -> Result<String, Error> {
        let store = GoogleCloudStorageBuilder::from_env()
            .with_bucket_name("extconn-kms")
            .build()
            .map_err(|e| self.http.no_credentials(e))?;
        let credential =
            store.credentials().get_credential().await.map_err(|e| self.http.no_credentials(e))?;
        Ok(credential.bearer.clone())
    }
}

/// Reads `CREDENTIALS`, base64 of a service-account key file; errors never quote it.
fn service_account(p: &Params<'_>, encoded: &str) -> Result<ServiceAccount, Error> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| p.invalid("CREDENTIALS", "is not base64 of a JSON key file"))?;
    let file: KeyFile = serde_json::from_slice(&json).map_err(|_| {
        p.invalid("CREDENTIALS", "is not a service-account key file (client_email, private_key)")
    })?;
    let der = PrivateKeyDer::from_pem_slice(file.private_key.as_bytes())
        .map_err(|_| p.invalid("CREDENTIALS", "has a private_key that is not a PEM key"))?;
    let key = match &der {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
        _ => return Err(p.invalid("CREDENTIALS", "has a private_key that is not an RSA key")),
    }
    .map_err(|e| p.invalid("CREDENTIALS", format!("has an unusable private_key: {e}")))?;
    Ok(ServiceAccount {
        email: file.client_email,
        key_id: file.private_key_id,
        token_uri: file.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
        key,
    })
}

/// A JWT for the token endpoint, signed RS256 with the account's key, valid for an hour.
fn jwt(account: &ServiceAccount) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = serde_json::json!({ "alg": "RS256", "typ": "JWT", "kid": account.key_id });
    let claims = serde_json::json!({
        "iss": account.email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!("{}.{}", url.encode(header.to_string()), url.encode(claims.to_string()));
    let mut signature = vec![0; account.key.public().modulus_len()];
    account
        .key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            message.as_bytes(),
            &mut signature,
        )
        .map_err(|_| "cannot sign the token request with the key file's private_key".to_owned())?;
    Ok(format!("{message}.{}", url.encode(signature)))
}
