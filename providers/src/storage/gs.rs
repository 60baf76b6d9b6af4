//! `gs://bucket/path`: Google Cloud Storage, through object_store's `GoogleCloudStorage`.
//!
//! `AUTH=specified` (the default) uses `CREDENTIALS` (a base64 service-account key) or
//! `BEARER_TOKEN`; `AUTH=implicit` uses the host's application default credentials. The
//! endpoint is the host's [`Config::gcs_endpoint`], never anything in the URI.

use std::sync::Arc;

use base64::Engine;
use object_store::gcp::GoogleCloudStorageBuilder;

use super::Location;
use super::cloud::{self, Params};
use crate::{Config, Error, Target};

const PROVIDER: &str = "gs";
const SECRETS: &[&str] = &["CREDENTIALS", "BEARER_TOKEN"];
/// Where GCS is when the host does not say otherwise.
const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";

pub(crate) fn open(config: &Config, target: &Target) -> Result<Location, Error> {
    let p = Params::new(target, PROVIDER);
    let secrets = p.secrets(SECRETS);
    p.reject(
        "ASSUME_ROLE",
        "object_store's GCS client cannot impersonate service accounts; \
         pass the service account's own CREDENTIALS or a BEARER_TOKEN for it",
    )?;
    p.reject(
        "GOOGLE_BILLING_PROJECT",
        "object_store's GCS client cannot bill requests to a project (requester pays)",
    )?;

    let mut builder = if p.implicit() {
        for name in SECRETS {
            if p.get(name).is_some() {
                return Err(p.invalid(name, "cannot be given with AUTH=implicit"));
            }
        }
        GoogleCloudStorageBuilder::from_env()
    } else if let Some(encoded) = p.get("CREDENTIALS") {
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| p.invalid("CREDENTIALS", "is not base64 of a JSON key file"))?;
        GoogleCloudStorageBuilder::new().with_service_account_key(json)
    } else if let Some(token) = p.get("BEARER_TOKEN") {
        GoogleCloudStorageBuilder::new().with_bearer_token(token)
    } else {
        return Err(p.invalid("CREDENTIALS", "or BEARER_TOKEN must be set if AUTH is specified"));
    };

    // Always set: it also overrides a `gcs_base_url` a key file in the URI might carry.
    let endpoint = config.gcs_endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    builder = builder
        .with_bucket_name(&target.host)
        .with_base_url(endpoint.trim_end_matches('/'))
        .with_retry(cloud::retry())
        .with_client_options(cloud::client_options(Some(endpoint)));

    let store = builder.build().map_err(|e| p.configure(e, &secrets))?;
    Ok(Location::new(Arc::new(store), &target.path, target.display()).with_secrets(secrets))
}
