//! What the cloud providers (`s3`, `gs`, `azure`) share: reading the target's parameters,
//! the HTTP client's timeouts and retries, and TLS.

use std::time::Duration;

use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::{Error, Target};

/// The target's parameters, by exact (upper-case) name; an empty value counts as absent, as
/// the component reads them.
pub(crate) struct Params<'a> {
    target: &'a Target,
    provider: &'static str,
}

impl<'a> Params<'a> {
    pub(crate) fn new(target: &'a Target, provider: &'static str) -> Self {
        Self { target, provider }
    }

    /// The value of `name`, if given and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&'a str> {
        self.target.params.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// Whether `AUTH=implicit`.
    pub(crate) fn implicit(&self) -> bool {
        self.get("AUTH").is_some_and(|v| v.eq_ignore_ascii_case("implicit"))
    }

    /// An [`Error::UnsupportedParameter`] if `name` is given.
    pub(crate) fn reject(&self, name: &'static str, reason: &'static str) -> Result<(), Error> {
        match self.get(name) {
            Some(_) => Err(Error::UnsupportedParameter {
                location: self.target.display(),
                provider: self.provider,
                name,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// An [`Error::InvalidParameter`] for `name`; `reason` never quotes the value.
    pub(crate) fn invalid(&self, name: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidParameter { location: self.target.display(), name, reason: reason.into() }
    }

    /// The values of the given secret parameters, to scrub from errors.
    pub(crate) fn secrets(&self, names: &[&str]) -> Vec<String> {
        names.iter().filter_map(|n| self.get(n)).map(str::to_owned).collect()
    }

    /// An [`Error::Configure`] for a builder's error, with no secret in it.
    pub(crate) fn configure(&self, source: object_store::Error, secrets: &[String]) -> Error {
        Error::Configure { location: self.target.display(), provider: self.provider, source }
            .redact(secrets)
    }
}

/// Fail fast: a CREATE EXTERNAL CONNECTION waits on these, and an unreachable service should
/// answer in seconds, not after object_store's default three minutes of retries.
pub(crate) fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

/// Client options for `endpoint`: plain HTTP only when the endpoint itself says `http://`.
pub(crate) fn client_options(endpoint: Option<&str>) -> ClientOptions {
    install_tls();
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(120))
        .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
}

/// reqwest is built without a bundled TLS provider (object_store's default would pull in
/// aws-lc-rs and cmake): install ring's, once per process, unless the embedder chose one.
pub(crate) fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
