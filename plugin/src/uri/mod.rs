//! The scheme registry: every URI CREATE EXTERNAL CONNECTION accepts, checked as CockroachDB
//! checks it, without I/O.
//!
//! Each scheme family is one module (`s3`, `gs`, `azure`, `nodelocal`, `userfile`, `kms`,
//! `kafka`, `webhook`, `pubsub`, `http`, `postgres`) that declares its parameters once; the
//! checks, the unknown-parameter errors, the value errors, redaction and `docs/uris.md` all
//! derive from those declarations (see `params`). URLs are parsed with Go's `net/url` rules
//! (`gourl`), because the stored and displayed forms and the error texts must match
//! CockroachDB's byte for byte.
//!
//! ```
//! use extconn_plugin::uri;
//! let parsed = uri::parse("S3://bucket/backups?AUTH=implicit").unwrap();
//! assert_eq!((parsed.provider, parsed.stored_uri.as_str()), ("s3", "s3://bucket/backups?AUTH=implicit"));
//! assert_eq!(parsed.target.path, "backups");
//! ```

mod azure;
#[doc(hidden)]
pub mod cases;
mod docs;
mod go;
pub(crate) mod gourl;
mod gs;
mod http;
mod kafka;
mod kms;
mod nodelocal;
mod params;
mod postgres;
mod pubsub;
mod redact;
mod s3;
mod userfile;
mod webhook;

#[cfg(test)]
mod tests;

use crate::error::Error;
use crate::model::{ConnectionType, ParamInfo, Target, UriInfo};
use params::{ParamError, SchemeDef};

/// The longest URI accepted, in bytes.
pub const MAX_URI_BYTES: usize = 64 * 1024;

/// The most query parameters accepted in one URI.
pub const MAX_QUERY_PARAMS: usize = 1000;

/// CockroachDB's redacted parameter names (reference §8.2), all of which extconn treats as
/// secret too.
pub const COCKROACH_SECRETS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "CREDENTIALS",
    "BEARER_TOKEN",
    "AZURE_ACCOUNT_KEY",
    "sasl_password",
    "ca_cert",
    "client_cert",
    "client_key",
    "api_secret",
    "shared_access_key",
    "sslinline",
];

/// Parameters extconn treats as secret although CockroachDB does not redact them:
/// `AZURE_CLIENT_SECRET` (azure storage and azure-kms), `sasl_client_secret` (Kafka
/// OAUTHBEARER), `password` (postgres libpq parameter) and `sslkey` (postgres: with
/// `sslinline=true` it holds the private key itself).
pub const EXTRA_SECRETS_VS_COCKROACH: &[&str] =
    &["AZURE_CLIENT_SECRET", "sasl_client_secret", "password", "sslkey"];

/// Every scheme family member, in docs order.
static REGISTRY: &[&SchemeDef] = &[
    &nodelocal::NODELOCAL,
    &userfile::USERFILE,
    &s3::S3,
    &gs::GS,
    &azure::AZURE,
    &kms::GCP_KMS,
    &kms::AWS_KMS,
    &kms::AZURE_KMS,
    &kafka::KAFKA,
    &kafka::CONFLUENT_CLOUD,
    &kafka::AZURE_EVENT_HUB,
    &webhook::WEBHOOK_HTTPS,
    &webhook::WEBHOOK_HTTP,
    &pubsub::GCPUBSUB,
    &http::HTTP,
    &http::HTTPS,
    &postgres::POSTGRES,
];

fn lookup(scheme: &str) -> Option<&'static SchemeDef> {
    REGISTRY.iter().copied().find(|def| def.schemes.contains(&scheme))
}

/// CockroachDB's per-provider wrapper around validation errors (reference §4.2), by provider
/// name; `None` for `sql` (postgres) and unknown providers.
pub fn wrapper(provider: &str) -> Option<&'static str> {
    REGISTRY.iter().find(|def| def.provider == provider).and_then(|def| def.wrapper)
}

const SANITIZE: &str = "failed to log and sanitize External Connection";
const DETAILS: &str = "failed to construct External Connection details";

/// Why a URI is refused; converts into the CockroachDB-compatible [`Error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UriError {
    #[error("URI is {len} bytes long; the limit is {MAX_URI_BYTES} bytes")]
    TooLong { len: usize },
    #[error("URI has {count} query parameters; the limit is {MAX_QUERY_PARAMS}")]
    TooManyParams { count: usize },
    #[error("{0}")]
    Syntax(#[from] gourl::ParseError),
    #[error("no parseAndValidateFn found for external connection provider {scheme}")]
    UnknownScheme { scheme: String },
    #[error("{}{source}", wrapper.map(|w| format!("{w}: ")).unwrap_or_default())]
    Provider { wrapper: Option<&'static str>, source: ParamError },
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        match &e {
            UriError::TooLong { .. } | UriError::TooManyParams { .. } => {
                Error::limit(e.to_string())
            }
            UriError::Syntax(_) => Error::invalid(format!("{SANITIZE}: {e}")),
            UriError::UnknownScheme { .. } => Error::invalid(format!("{DETAILS}: {e}")),
            UriError::Provider { source, .. } => {
                let err = Error::invalid(format!("{DETAILS}: {e}"));
                match source {
                    ParamError::Invalid { hint: Some(hint), .. } => err.with_hint(*hint),
                    _ => err,
                }
            }
        }
    }
}

/// The hostile-input limits, checked before anything else.
fn limits(uri: &str) -> Result<(), UriError> {
    if uri.len() > MAX_URI_BYTES {
        return Err(UriError::TooLong { len: uri.len() });
    }
    // The non-empty `&`-separated segments between the first `?` and the first `#`, in one
    // pass over the bytes.
    let mut count = 0;
    let mut in_query = false;
    let mut segment_empty = true;
    for b in uri.bytes() {
        match b {
            b'#' => break,
            b'?' if !in_query => in_query = true,
            b'&' if in_query => {
                count += usize::from(!segment_empty);
                segment_empty = true;
            }
            _ => segment_empty &= !in_query,
        }
    }
    count += usize::from(in_query && !segment_empty);
    if count > MAX_QUERY_PARAMS {
        return Err(UriError::TooManyParams { count });
    }
    Ok(())
}

/// A URI accepted for a connection.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Lower-cased scheme as written.
    pub scheme: String,
    /// Provider name (`s3`, `azure_storage`, …).
    pub provider: &'static str,
    /// Derived type.
    pub connection_type: ConnectionType,
    /// The form stored in the catalog: the URI re-serialised (scheme lower-cased, query kept
    /// byte for byte), secrets included.
    pub stored_uri: String,
    /// What the host opens (user left empty).
    pub target: Target,
    /// What CREATE/ALTER check with I/O.
    pub check: Check,
}

/// The I/O part of validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Write, list, read the sentinel.
    Storage,
    /// Encrypt and decrypt the marker.
    Kms,
    /// Parse only (sinks, foreign data).
    None,
}

/// Parses and checks `uri` as CREATE EXTERNAL CONNECTION does, without I/O. The error message
/// is CockroachDB's full text (`failed to construct External Connection details: …`).
pub fn parse(uri: &str) -> Result<Parsed, Error> {
    parse_checked(uri).map_err(Error::from)
}

/// Whether `scheme` names cloud storage (a BACKUP, IMPORT or EXPORT location).
pub fn is_storage_scheme(scheme: &str) -> bool {
    lookup(scheme).is_some_and(|def| def.check == Check::Storage)
}

/// Parses and checks a URI given directly to an operation (`BACKUP INTO 's3://…'`): the same
/// checks as [`parse`], with the bare errors CockroachDB gives there
/// (`unknown S3 query parameters: x`, not wrapped as for CREATE EXTERNAL CONNECTION).
pub fn parse_direct(uri: &str) -> Result<Parsed, Error> {
    parse_checked(uri).map_err(|e| match e {
        UriError::UnknownScheme { scheme } => {
            Error::invalid(format!("unsupported storage scheme: {scheme:?}"))
        }
        UriError::Provider {
            source: source @ ParamError::Invalid { hint: Some(hint), .. },
            ..
        } => Error::invalid(source.to_string()).with_hint(hint),
        UriError::Provider { source, .. } => Error::invalid(source.to_string()),
        other => Error::from(other),
    })
}

fn parse_checked(uri: &str) -> Result<Parsed, UriError> {
    parse_keeping_url(uri, true).map(|(parsed, _)| parsed)
}

/// [`parse_checked`], also returning the parsed URL, so that [`info`] can redact it without
/// parsing the URI a second time. Without `render`, the stored URI (which [`info`] does not
/// show) is left empty.
fn parse_keeping_url(uri: &str, render: bool) -> Result<(Parsed, gourl::GoUrl), UriError> {
    limits(uri)?;
    let url = gourl::parse(uri)?;
    let pairs = gourl::parse_query(&url.raw_query).map_err(|m| gourl::ParseError::new(uri, m))?;
    let def = lookup(&url.scheme)
        .ok_or_else(|| UriError::UnknownScheme { scheme: url.scheme.clone() })?;
    let ctx = params::Ctx { def, scheme: &url.scheme, url: &url, pairs: &pairs };
    ctx.duplicates()
        .and_then(|()| (def.validate)(&ctx))
        .map_err(|source| UriError::Provider { wrapper: def.wrapper, source })?;
    let stored_uri = if render { url.render() } else { String::new() };
    let target = Target {
        scheme: url.scheme.clone(),
        provider: def.provider.to_owned(),
        uri: stored_uri.clone(),
        host: url.host.clone(),
        path: target_path(&url.path),
        params: pairs,
        user: String::new(),
    };
    let parsed = Parsed {
        scheme: url.scheme.clone(),
        provider: def.provider,
        connection_type: def.connection_type,
        stored_uri,
        target,
        check: def.check,
    };
    Ok((parsed, url))
}

/// The cleaned path without leading or trailing `/` (`""` for the root).
fn target_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let cleaned = go::clean(path);
    let trimmed = cleaned.trim_matches('/');
    if trimmed == "." { String::new() } else { trimmed.to_owned() }
}

/// The display form (SHOW EXTERNAL CONNECTIONS): password and secret values replaced by
/// `redacted`, query keys sorted and re-encoded, KMS key paths replaced by `/redacted`. Never
/// fails: a bad URI gives `failed to redact the URI: <error>`.
pub fn redact(uri: &str) -> String {
    redact::redact_checked(uri).unwrap_or_else(|e| format!("failed to redact the URI: {e}"))
}

/// The `parse-uri` export: [`parse`] plus display-safe information (secrets have no value).
pub fn info(uri: &str) -> Result<UriInfo, Error> {
    let (parsed, url) = parse_keeping_url(uri, false)?;
    // What `redact(uri)` gives, from the URL and pairs parsed once.
    let redacted = redact::redact_parsed(url, &parsed.target.params);
    let params = parsed
        .target
        .params
        .into_iter()
        .map(|(name, value)| {
            let secret = redact::is_secret(&name);
            ParamInfo { name, secret, value: (!secret).then_some(value) }
        })
        .collect();
    Ok(UriInfo {
        scheme: parsed.scheme,
        provider: parsed.provider.to_owned(),
        connection_type: parsed.connection_type,
        redacted,
        host: parsed.target.host,
        path: parsed.target.path,
        params,
    })
}

/// The full text of `docs/uris.md`, generated from the declarations.
pub fn docs_markdown() -> String {
    docs::markdown(REGISTRY)
}

/// The storage target of `external://name/sub/path` (reference §6.3): the stored path joined
/// with `subpath` like Go's `path.Join` (`..` resolved, `//` collapsed, trailing `/` dropped),
/// the stored query parameters kept. `subpath` is the decoded path of the external URI.
pub fn join_subpath(stored: &Target, subpath: &str) -> Target {
    let Ok(mut url) = gourl::parse(&stored.uri) else {
        // Stored URIs always parse; keep the stored target rather than guess.
        return stored.clone();
    };
    let joined = go::join(&[&url.path, subpath]);
    url.set_path(joined);
    Target { uri: url.render(), path: target_path(&url.path), ..stored.clone() }
}

/// Values of secret parameters and of the userinfo password in `uri` (decoded and as written),
/// for scrubbing logs. Never fails; best effort on URIs that do not parse.
pub fn secret_values(uri: &str) -> Vec<String> {
    redact::secret_values(uri)
}

/// Every parameter name treated as secret, sorted: [`COCKROACH_SECRETS`] plus
/// [`EXTRA_SECRETS_VS_COCKROACH`], derived from the declarations.
pub fn secret_names() -> Vec<&'static str> {
    redact::secret_names()
}
