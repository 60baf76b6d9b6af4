//! Where the emulators that `scripts/services start` runs are, from the variables it exports.
// Each test binary uses the helpers of its own backend only.
#![allow(dead_code)]

use extconn_providers::{Config, Target};

/// A variable `scripts/services start` exports; its absence fails the test with what to do.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the cloud storage tests run against emulators on 127.0.0.1. \
             Run them with scripts/test, or first eval \"$(scripts/services start)\" \
             (and scripts/services stop afterwards)"
        ),
    }
}

/// A path no other test or earlier run uses, so that every location starts empty.
pub fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// The providers' configuration with the host's endpoint overrides for the emulators.
pub fn config() -> Config {
    Config {
        data_dir: std::env::temp_dir(),
        gcs_endpoint: Some(env("EXTCONN_GCS_ENDPOINT")),
        azure_blob_endpoint: Some(env("EXTCONN_AZURE_BLOB_ENDPOINT")),
        ..Config::default()
    }
}

fn target(scheme: &str, bucket: &str, path: &str, params: Vec<(&str, String)>) -> Target {
    let mut target = Target::new(scheme, bucket, path);
    target.params = params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    target
}

/// `s3://bucket/path` on moto, with the IAM user `scripts/services` created.
pub fn s3(bucket: &str, path: &str) -> Target {
    target(
        "s3",
        bucket,
        path,
        vec![
            ("AWS_ACCESS_KEY_ID", env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
            ("AWS_ENDPOINT", env("EXTCONN_TEST_S3_ENDPOINT")),
            ("AWS_USE_PATH_STYLE", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ],
    )
}

/// `gs://bucket/path` on fake-gcs-server (which takes any bearer token).
pub fn gs(bucket: &str, path: &str) -> Target {
    target("gs", bucket, path, vec![("BEARER_TOKEN", "fake-gcs-token".to_owned())])
}

/// `scheme://container/path` on Azurite, with its development account key.
pub fn azure(scheme: &str, container: &str, path: &str) -> Target {
    target(
        scheme,
        container,
        path,
        vec![
            ("AZURE_ACCOUNT_NAME", env("EXTCONN_TEST_AZURE_ACCOUNT_NAME")),
            ("AZURE_ACCOUNT_KEY", env("EXTCONN_TEST_AZURE_ACCOUNT_KEY")),
        ],
    )
}

/// Replaces (or adds) parameter `name`.
pub fn with(mut target: Target, name: &str, value: &str) -> Target {
    target.params.retain(|(k, _)| k != name);
    target.params.push((name.to_owned(), value.to_owned()));
    target
}

/// A loopback URL where nothing listens: what a stopped emulator looks like.
pub fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}
