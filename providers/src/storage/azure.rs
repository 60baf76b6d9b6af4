//! `azure-blob://container/path` (also `azure://`, `azure-storage://`): Azure Blob Storage,
//! through object_store's `MicrosoftAzure`.
//!
//! Authentication as CockroachDB chooses it: `AZURE_ACCOUNT_KEY` (shared key), the three
//! `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (a service principal), or
//! `AUTH=implicit` (the host's `AZURE_*` environment, workload or managed identity).
//! `AZURE_ENVIRONMENT` picks the cloud's storage suffix and sign-in authority; the host's
//! [`Config::azure_blob_endpoint`] overrides the endpoint, never the URI.

use std::sync::Arc;

use object_store::azure::MicrosoftAzureBuilder;

use super::Location;
use super::cloud::{self, Params};
use crate::{Config, Error, Target};

const PROVIDER: &str = "azure";
const SECRETS: &[&str] = &["AZURE_ACCOUNT_KEY", "AZURE_CLIENT_SECRET"];

/// Azure clouds by `autorest` name: (name, storage suffix, Entra ID authority).
const CLOUDS: &[(&str, &str, &str)] = &[
    ("AzurePublicCloud", "core.windows.net", "https://login.microsoftonline.com"),
    ("AzureCloud", "core.windows.net", "https://login.microsoftonline.com"),
    ("AzureUSGovernmentCloud", "core.usgovcloudapi.net", "https://login.microsoftonline.us"),
    ("AzureUSGovernment", "core.usgovcloudapi.net", "https://login.microsoftonline.us"),
    ("AzureChinaCloud", "core.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
    ("AzureGermanCloud", "core.cloudapi.de", "https://login.microsoftonline.de"),
];

pub(crate) fn open(config: &Config, target: &Target) -> Result<Location, Error> {
    let p = Params::new(target, PROVIDER);
    let secrets = p.secrets(SECRETS);
    let account = p
        .get("AZURE_ACCOUNT_NAME")
        .ok_or_else(|| p.invalid("AZURE_ACCOUNT_NAME", "must be set"))?;
    let environment = p.get("AZURE_ENVIRONMENT").unwrap_or("AzurePublicCloud");
    let (_, suffix, authority) = CLOUDS
        .iter()
        .find(|(name, ..)| name.eq_ignore_ascii_case(environment))
        .ok_or_else(|| p.invalid("AZURE_ENVIRONMENT", "names no Azure cloud"))?;

    let role = ["AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"].map(|n| p.get(n));
    let mut builder = if p.implicit() {
        for name in
            ["AZURE_ACCOUNT_KEY", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"]
        {
            if p.get(name).is_some() {
                return Err(p.invalid(name, "cannot be given with AUTH=implicit"));
            }
        }
        MicrosoftAzureBuilder::from_env()
    } else if let Some(key) = p.get("AZURE_ACCOUNT_KEY") {
        MicrosoftAzureBuilder::new().with_access_key(key)
    } else if let [Some(tenant), Some(client), Some(secret)] = role {
        MicrosoftAzureBuilder::new().with_client_secret_authorization(client, secret, tenant)
    } else {
        return Err(p.invalid(
            "AZURE_ACCOUNT_KEY",
            "or all three of AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET must be set",
        ));
    };

    let endpoint = match &config.azure_blob_endpoint {
        Some(endpoint) => override_endpoint(endpoint, account),
        None => format!("https://{account}.blob.{suffix}"),
    };
    builder = builder
        .with_account(account)
        .with_container_name(&target.host)
        .with_authority_host(*authority)
        .with_client_options(cloud::client_options(Some(&endpoint)))
        .with_endpoint(endpoint)
        .with_retry(cloud::retry());

    let store = builder.build().map_err(|e| p.configure(e, &secrets))?;
    Ok(Location::new(Arc::new(store), &target.path, target.display()).with_secrets(secrets))
}

/// The account's blob endpoint under the host's override: `{account}` in it is replaced, and
/// otherwise the account is its first path segment, as Azurite and other IP-style endpoints
/// address accounts.
fn override_endpoint(endpoint: &str, account: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.contains("{account}") {
        endpoint.replace("{account}", account)
    } else {
        format!("{endpoint}/{account}")
    }
}

#[cfg(test)]
mod tests {
    use super::override_endpoint;

    #[test]
    fn endpoint_overrides() {
        let rows = [
            ("http://127.0.0.1:10000", "http://127.0.0.1:10000/acct"),
            ("http://127.0.0.1:10000/", "http://127.0.0.1:10000/acct"),
            ("https://{account}.blob.example.net", "https://acct.blob.example.net"),
        ];
        for (given, expected) in rows {
            assert_eq!(override_endpoint(given, "acct"), expected, "{given}");
        }
    }
}
