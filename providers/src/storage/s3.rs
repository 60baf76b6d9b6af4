//! `s3://bucket/path`: Amazon S3 and S3-compatible services, through object_store's
//! `AmazonS3`.
//!
//! `AUTH=specified` (the default) uses only the keys in the URI; `AUTH=implicit` uses the
//! host's standard credential chain (the `AWS_*` environment variables, web identity, the ECS
//! task role, then the instance metadata service).

use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{Attribute, Attributes};

use super::Location;
use super::cloud::{self, Params};
use crate::{Config, Error, Target};

const PROVIDER: &str = "s3";
const SECRETS: &[&str] = &["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

pub(crate) fn open(_config: &Config, target: &Target) -> Result<Location, Error> {
    let p = Params::new(target, PROVIDER);
    // A space in the secret is a `+` that the URI's query decoding turned into a space.
    let secret = p.get("AWS_SECRET_ACCESS_KEY").map(|s| s.replace(' ', "+"));
    let mut secrets = p.secrets(SECRETS);
    secrets.extend(secret.clone());
    p.reject(
        "ASSUME_ROLE",
        "object_store's S3 client cannot chain roles through STS; \
         assume the role outside extconn and pass AWS_SESSION_TOKEN",
    )?;

    let mut builder = if p.implicit() {
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            if p.get(name).is_some() {
                return Err(p.invalid(name, "cannot be given with AUTH=implicit"));
            }
        }
        AmazonS3Builder::from_env()
    } else {
        let mut builder = AmazonS3Builder::new();
        if let Some(id) = p.get("AWS_ACCESS_KEY_ID") {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &secret {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = p.get("AWS_SESSION_TOKEN") {
            builder = builder.with_token(token);
        }
        builder
    };
    builder = builder.with_bucket_name(&target.host).with_retry(cloud::retry());
    if let Some(region) = p.get("AWS_REGION") {
        builder = builder.with_region(region);
    }

    // CockroachDB addresses buckets virtual-host style unless AWS_USE_PATH_STYLE is true.
    let path_style = match p.get("AWS_USE_PATH_STYLE") {
        Some(v) => go_bool(v).ok_or_else(|| p.invalid("AWS_USE_PATH_STYLE", "is not a bool"))?,
        None => false,
    };
    let endpoint = p.get("AWS_ENDPOINT");
    builder = builder.with_client_options(cloud::client_options(endpoint));
    match endpoint {
        Some(endpoint) if !path_style => {
            // object_store takes a virtual-hosted endpoint with the bucket already in it.
            let mut url = url::Url::parse(endpoint)
                .map_err(|e| p.invalid("AWS_ENDPOINT", format!("is not a URL: {e}")))?;
            let host = url.host_str().unwrap_or_default().to_owned();
            url.set_host(Some(&format!("{}.{host}", target.host)))
                .map_err(|e| p.invalid("AWS_ENDPOINT", format!("is not a URL: {e}")))?;
            builder = builder
                .with_endpoint(url.as_str().trim_end_matches('/'))
                .with_virtual_hosted_style_request(true);
        }
        Some(endpoint) => {
            builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
        }
        None => builder = builder.with_virtual_hosted_style_request(!path_style),
    }

    match p.get("AWS_SERVER_ENC_MODE") {
        Some("aws:kms") => {
            let key = p
                .get("AWS_SERVER_KMS_ID")
                .ok_or_else(|| p.invalid("AWS_SERVER_KMS_ID", "must be set with aws:kms"))?;
            builder = builder.with_sse_kms_encryption(key);
        }
        Some(mode) => {
            // The key's enum is not exported: name it as object_store's configuration does.
            let key: AmazonS3ConfigKey =
                "aws_server_side_encryption".parse().map_err(|e| p.configure(e, &secrets))?;
            builder = builder.with_config(key, mode);
        }
        None => {}
    }

    let mut attributes = Attributes::new();
    if let Some(class) = p.get("S3_STORAGE_CLASS") {
        attributes.insert(Attribute::StorageClass, class.to_owned().into());
    }

    let store = builder.build().map_err(|e| p.configure(e, &secrets))?;
    Ok(Location::new(Arc::new(store), &target.path, target.display())
        .with_attributes(attributes)
        .with_secrets(secrets))
}

/// Go's `strconv.ParseBool`, as the component parsed the value.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
