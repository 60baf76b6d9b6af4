//! The webhook changefeed sink (`webhook-https://host:port/path?…`): JSON batches by POST,
//! as CockroachDB sends them.
//!
//! A batch is `{"payload":[<message>, …],"length":<n>}` and a resolved timestamp is its
//! message alone (`{"resolved":"…"}`), both `Content-Type: application/json`, with
//! `webhook_auth_header` as the `Authorization` header. Any answer other than 2xx is an error.
//! `insecure_tls_skip_verify`, `ca_cert` (trusted beside the system roots), `client_cert` and
//! `client_key` configure TLS and are taken out of the URL; other parameters stay in it.
//!
//! `webhook_sink_config` maps onto the client: `Flush.Messages` and `Flush.Bytes` cut each
//! batch into requests of at most that many messages or bytes; `Flush.Frequency` is required
//! with them, as in CockroachDB, and always met, since [`Sink::emit`] sends everything it is
//! given before it returns; `Retry.Max` and `Retry.Backoff` retry each request in the sink
//! (`"inf"`: the sink's default attempts, after which the node retries for ever with its own
//! backoff). Unknown fields are refused.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value as Json;

use super::{Message, Sink, SinkOptions};
use crate::{ErrorKind, Target};

/// How long a request may take when `webhook_client_timeout` is not given (CockroachDB's
/// default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long [`probe`] waits for an answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries of a request when `webhook_sink_config` does not say. CockroachDB retries 10
/// times; the node retries a failed batch for ever anyway, and gives a send 15 s, so fewer
/// retries here let the endpoint's own error reach SHOW CHANGEFEED JOBS.
const DEFAULT_RETRIES: u32 = 3;
/// The first pause between retries when `webhook_sink_config` does not say.
const DEFAULT_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The URI parameters the sink consumes; every other one stays in the URL.
const TLS_PARAMS: &[&str] = &["insecure_tls_skip_verify", "ca_cert", "client_cert", "client_key"];
/// The parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["ca_cert", "client_cert", "client_key"];

/// A failed webhook request or configuration. Messages name the sink as
/// `webhook-https://host/path` and never contain a secret (the auth header, keys).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URI parameter whose value (never shown) cannot be used.
    #[error("{location}: {name} {reason}")]
    InvalidParameter {
        /// The sink's display form.
        location: String,
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `webhook_sink_config` cannot be used.
    #[error("{location}: error processing option webhook_sink_config: {reason}")]
    SinkConfig {
        /// The sink's display form.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (a certificate or key that does not load).
    #[error("{location}: cannot configure the HTTPS client: {cause}")]
    Configure {
        /// The sink's display form.
        location: String,
        /// The client's error.
        cause: String,
    },
    /// No answer: the connection, the TLS handshake or the request failed or timed out.
    #[error("{location}: {method} request failed: {cause}")]
    Request {
        /// The sink's display form.
        location: String,
        /// `POST`, or `HEAD` for [`probe`].
        method: &'static str,
        /// The client's error chain.
        cause: String,
        /// Whether nothing answered (connection refused, timeout) rather than, say, TLS.
        unreachable: bool,
    },
    /// The endpoint answered with a status other than 2xx.
    #[error("{location}: the endpoint answered {status}: {body}")]
    Status {
        /// The sink's display form.
        location: String,
        /// The status line, `500 Internal Server Error`.
        status: String,
        /// The start of the answer's body.
        body: String,
    },
}

impl Error {
    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidParameter { .. } | Self::SinkConfig { .. } | Self::Configure { .. } => {
                ErrorKind::InvalidArgument
            }
            Self::Request { unreachable: false, .. } => ErrorKind::PermissionDenied,
            Self::Request { .. } => ErrorKind::Unavailable,
            Self::Status { status, .. }
                if status.starts_with("401") || status.starts_with("403") =>
            {
                ErrorKind::PermissionDenied
            }
            Self::Status { .. } => ErrorKind::Unavailable,
        }
    }
}

/// `webhook_sink_config`, as far as it applies here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Batching {
    /// Most messages per request (0: no limit).
    messages: usize,
    /// Most payload bytes per request (0: no limit).
    bytes: usize,
    /// Attempts per request.
    attempts: u32,
    backoff: Duration,
}

impl Default for Batching {
    fn default() -> Self {
        Self { messages: 0, bytes: 0, attempts: DEFAULT_RETRIES + 1, backoff: DEFAULT_BACKOFF }
    }
}

/// Reads `webhook_sink_config` as CockroachDB's `getWebhookSinkConfig` does, refusing fields it
/// does not know.
fn batching(json: &str) -> Result<Batching, String> {
    let config: Json =
        serde_json::from_str(json).map_err(|e| format!("error unmarshalling json: {e}"))?;
    let object = config.as_object().ok_or("it must be a JSON object")?;
    let mut out = Batching::default();
    let mut frequency = Duration::ZERO;
    for (section, value) in object {
        let fields = value.as_object().ok_or_else(|| format!("{section} must be a JSON object"))?;
        for (field, value) in fields {
            match (section.as_str(), field.as_str()) {
                ("Flush", "Messages") => out.messages = count(section, field, value)?,
                ("Flush", "Bytes") => out.bytes = count(section, field, value)?,
                ("Flush", "Frequency") => frequency = duration(section, field, value)?,
                ("Retry", "Max") => {
                    out.attempts = match value {
                        Json::String(s) if s.eq_ignore_ascii_case("inf") => DEFAULT_RETRIES + 1,
                        _ => {
                            let max = count(section, field, value)?;
                            if max == 0 {
                                return Err("max retry count must be a positive integer. use 'inf' for infinite retries.".into());
                            }
                            u32::try_from(max).unwrap_or(u32::MAX).saturating_add(1)
                        }
                    }
                }
                ("Retry", "Backoff") => out.backoff = duration(section, field, value)?,
                _ => {
                    return Err(format!(
                        "{section}.{field} is not a field extconn knows (Flush.Messages, \
                         Flush.Bytes, Flush.Frequency, Retry.Max, Retry.Backoff)"
                    ));
                }
            }
        }
    }
    if (out.messages > 0 || out.bytes > 0) && frequency.is_zero() {
        return Err("invalid option value webhook_sink_config, flush frequency is not set, messages may never be sent".into());
    }
    Ok(out)
}

/// A non-negative integer (or one written as a string, as Go's decoder also takes).
fn count(section: &str, field: &str, value: &Json) -> Result<usize, String> {
    let n = match value {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{section}.{field} must be an integer"))?;
    usize::try_from(n).map_err(|_| {
        "invalid option value webhook_sink_config, all config values must be non-negative".into()
    })
}

/// A Go duration string (`"500ms"`, `"1m30s"`).
fn duration(section: &str, field: &str, value: &Json) -> Result<Duration, String> {
    let bad = || format!("{section}.{field} must be a duration such as \"1s\" or \"500ms\"");
    let text = value.as_str().ok_or_else(bad)?.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if text.starts_with('-') {
        return Err(
            "invalid option value webhook_sink_config, all config values must be non-negative"
                .into(),
        );
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// A webhook sink, opened for one changefeed.
pub struct WebhookSink {
    location: String,
    url: String,
    client: reqwest::Client,
    auth_header: Option<String>,
    batching: Batching,
    /// `compression = gzip`: bodies are sent gzipped, with `Content-Encoding: gzip`.
    gzip: bool,
    secrets: Vec<String>,
}

impl std::fmt::Debug for WebhookSink {
    // The auth header and the URL's parameters may be secrets: show where it points only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("location", &self.location)
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// Builds the client for `target` with the statement's options; no request yet.
    pub fn open(target: &Target, options: &SinkOptions) -> Result<Self, Error> {
        let location = target.display();
        let timeout = options.webhook_client_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let (url, client, secrets) = client(target, timeout)?;
        let batching = match options.webhook_sink_config.as_deref() {
            Some(json) => batching(json)
                .map_err(|reason| Error::SinkConfig { location: location.clone(), reason })?,
            None => Batching::default(),
        };
        let gzip = match options.compression.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("" | "none") => false,
            Some("gzip") => true,
            Some(_) => {
                return Err(Error::InvalidParameter {
                    location,
                    name: "compression",
                    reason: "is not available in this version of extconn: use gzip".into(),
                });
            }
        };
        let mut secrets = secrets;
        secrets.extend(options.webhook_auth_header.clone());
        Ok(Self {
            location,
            url,
            client,
            auth_header: options.webhook_auth_header.clone(),
            batching,
            gzip,
            secrets,
        })
    }

    /// POSTs `body`, retrying as `webhook_sink_config` says.
    async fn post(&self, body: Vec<u8>) -> Result<(), Error> {
        let mut backoff = self.batching.backoff;
        let mut attempt = 1;
        loop {
            match self.post_once(body.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.batching.attempts => return Err(e),
                // The error reaches the node if the last attempt fails too.
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
            }
        }
    }

    async fn post_once(&self, body: Vec<u8>) -> Result<(), Error> {
        let mut request =
            self.client.post(&self.url).header(reqwest::header::CONTENT_TYPE, "application/json");
        if self.gzip {
            use std::io::Write as _;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing into a Vec cannot fail.
            let _ = encoder.write_all(&body);
            request = request
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .header(reqwest::header::ACCEPT_ENCODING, "gzip")
                .body(encoder.finish().unwrap_or_default());
        } else {
            request = request.body(body);
        }
        if let Some(auth) = &self.auth_header {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let response = request.send().await.map_err(|e| self.request_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(500).collect();
        Err(Error::Status {
            location: self.location.clone(),
            status: status.to_string(),
            body: redact(&body, &self.secrets),
        })
    }

    fn request_error(&self, e: reqwest::Error) -> Error {
        request_error(&self.location, "POST", e, &self.secrets)
    }
}

fn request_error(
    location: &str,
    method: &'static str,
    e: reqwest::Error,
    secrets: &[String],
) -> Error {
    let unreachable = e.is_connect() || e.is_timeout();
    Error::Request {
        location: location.to_owned(),
        method,
        cause: redact(&crate::error::cause_chain(&e.without_url()), secrets),
        unreachable,
    }
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, secret| t.replace(secret.as_str(), "redacted"))
}

/// The URL to post to, an HTTPS client for it, and the secret values to keep out of errors.
fn client(
    target: &Target,
    timeout: Duration,
) -> Result<(String, reqwest::Client, Vec<String>), Error> {
    let location = target.display();
    let invalid = |name: &'static str, reason: &str| Error::InvalidParameter {
        location: location.clone(),
        name,
        reason: reason.to_owned(),
    };
    if target.scheme != "webhook-https" {
        return Err(invalid("scheme", "must be webhook-https: this sink requires https"));
    }
    let param = |name: &str| {
        target.params.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    };
    let base64 = |name: &'static str| -> Result<Option<Vec<u8>>, Error> {
        param(name)
            .map(|v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .map_err(|_| invalid(name, "must be base 64 encoded"))
            })
            .transpose()
    };
    let mut secrets: Vec<String> =
        SECRET_PARAMS.iter().filter_map(|n| param(n)).map(str::to_owned).collect();

    let rest = target.uri.strip_prefix("webhook-").unwrap_or(&target.uri);
    let mut url = url::Url::parse(rest).map_err(|_| invalid("host", "is not a valid URL"))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !TLS_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }

    install_tls();
    let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout);
    let skip_verify = match param("insecure_tls_skip_verify") {
        None => false,
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => true,
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => false,
        Some(_) => return Err(invalid("insecure_tls_skip_verify", "must be a bool")),
    };
    builder = builder.tls_danger_accept_invalid_certs(skip_verify);
    let configure = |cause: reqwest::Error, secrets: &[String]| Error::Configure {
        location: location.clone(),
        cause: redact(&crate::error::cause_chain(&cause), secrets),
    };
    if let Some(ca) = base64("ca_cert")? {
        secrets.push(String::from_utf8_lossy(&ca).into_owned());
        let certs =
            reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| configure(e, &secrets))?;
        if certs.is_empty() {
            return Err(invalid("ca_cert", "holds no PEM certificate"));
        }
        builder = builder.tls_certs_merge(certs);
    }
    match (base64("client_cert")?, base64("client_key")?) {
        (Some(cert), Some(key)) => {
            secrets.push(String::from_utf8_lossy(&cert).into_owned());
            secrets.push(String::from_utf8_lossy(&key).into_owned());
            let mut pem = cert;
            pem.push(b'\n');
            pem.extend_from_slice(&key);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| configure(e, &secrets))?;
            builder = builder.identity(identity);
        }
        (Some(_), None) => return Err(invalid("client_cert", "requires client_key to be set")),
        (None, Some(_)) => return Err(invalid("client_key", "requires client_cert to be set")),
        (None, None) => {}
    }
    let client = builder.build().map_err(|e| configure(e, &secrets))?;
    Ok((url.to_string(), client, secrets))
}

/// reqwest is built without a bundled TLS provider: install ring's, once per process, unless
/// the embedder chose one (as the storage providers do).
fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `{"payload":[…],"length":n}` for `values`, which are JSON already.
fn batch_body(values: &[Vec<u8>]) -> Vec<u8> {
    let size: usize = values.iter().map(|v| v.len() + 1).sum();
    let mut body = Vec::with_capacity(size + 32);
    body.extend_from_slice(b"{\"payload\":[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(value);
    }
    body.extend_from_slice(format!("],\"length\":{}}}", values.len()).as_bytes());
    body
}

#[async_trait::async_trait]
impl Sink for WebhookSink {
    fn topic(&self, table: &str) -> String {
        table.to_owned()
    }

    async fn ensure_topics(&self, _topics: &[String]) -> Result<(), crate::Error> {
        Ok(())
    }

    async fn emit(&self, messages: Vec<Message>) -> Result<(), crate::Error> {
        // Requests go one after the other, in the order given, which keeps each key's order.
        let Batching { messages: most, bytes: most_bytes, .. } = self.batching;
        let mut chunk: Vec<Vec<u8>> = Vec::new();
        let mut size = 0;
        for message in messages {
            let full = (most > 0 && chunk.len() >= most)
                || (most_bytes > 0 && size + message.value.len() > most_bytes);
            if full && !chunk.is_empty() {
                self.post(batch_body(&chunk)).await?;
                chunk.clear();
                size = 0;
            }
            size += message.value.len();
            chunk.push(message.value);
        }
        if !chunk.is_empty() {
            self.post(batch_body(&chunk)).await?;
        }
        Ok(())
    }

    async fn emit_resolved(
        &self,
        _topics: &[String],
        payload: Vec<u8>,
    ) -> Result<(), crate::Error> {
        Ok(self.post(payload).await?)
    }

    async fn flush(&self) -> Result<(), crate::Error> {
        // Every emit waited for its answers.
        Ok(())
    }
}

/// Connects and shakes hands with the endpoint by a `HEAD` request, which changes nothing:
/// any HTTP answer, whatever its status, shows the endpoint is there and its certificate
/// trusted; a refused connection, a failed TLS handshake or a timeout is an error.
pub async fn probe(target: &Target) -> Result<(), Error> {
    let (url, client, secrets) = client(target, PROBE_TIMEOUT)?;
    client
        .head(&url)
        .send()
        .await
        .map(drop)
        .map_err(|e| request_error(&target.display(), "HEAD", e, &secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_config_maps_or_is_refused() {
        type Row = (&'static str, Result<Batching, &'static str>);
        let rows: Vec<Row> = vec![
            ("{}", Ok(Batching::default())),
            (
                r#"{"Flush":{"Messages":100,"Bytes":1000,"Frequency":"1s"},"Retry":{"Max":3,"Backoff":"100ms"}}"#,
                Ok(Batching {
                    messages: 100,
                    bytes: 1000,
                    attempts: 4,
                    backoff: Duration::from_millis(100),
                }),
            ),
            (
                r#"{"Retry":{"Max":"inf"}}"#,
                Ok(Batching { attempts: DEFAULT_RETRIES + 1, ..Batching::default() }),
            ),
            (
                r#"{"Flush":{"Messages":10}}"#,
                Err(
                    "invalid option value webhook_sink_config, flush frequency is not set, messages may never be sent",
                ),
            ),
            (
                r#"{"Flush":{"Messages":-1,"Frequency":"1s"}}"#,
                Err(
                    "invalid option value webhook_sink_config, all config values must be non-negative",
                ),
            ),
            (
                r#"{"Flush":{"Frequency":"soon"}}"#,
                Err("Flush.Frequency must be a duration such as \"1s\" or \"500ms\""),
            ),
            (
                r#"{"Retry":{"Max":0}}"#,
                Err("max retry count must be a positive integer. use 'inf' for infinite retries."),
            ),
            (
                r#"{"Flush":{"Count":1}}"#,
                Err(
                    "Flush.Count is not a field extconn knows (Flush.Messages, Flush.Bytes, Flush.Frequency, Retry.Max, Retry.Backoff)",
                ),
            ),
        ];
        for (json, want) in rows {
            assert_eq!(batching(json), want.map_err(str::to_owned), "{json}");
        }
    }

    #[test]
    fn batches_are_cockroachdb_payloads() {
        let body = batch_body(&[br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()]);
        assert_eq!(body, br#"{"payload":[{"a":1},{"b":2}],"length":2}"#);
    }

    #[test]
    fn tls_parameters_leave_the_url() {
        let target = Target {
            scheme: "webhook-https".into(),
            provider: "webhookhttps".into(),
            uri: "webhook-https://127.0.0.1:8443/hook?insecure_tls_skip_verify=true&keep=1".into(),
            host: "127.0.0.1:8443".into(),
            path: "hook".into(),
            params: vec![
                ("insecure_tls_skip_verify".into(), "true".into()),
                ("keep".into(), "1".into()),
            ],
            user: "root".into(),
        };
        let (url, _, _) = client(&target, DEFAULT_TIMEOUT).unwrap();
        assert_eq!(url, "https://127.0.0.1:8443/hook?keep=1");
        let bad = Target { params: vec![("ca_cert".into(), "%%%".into())], ..target };
        let e = client(&bad, DEFAULT_TIMEOUT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "webhook-https://127.0.0.1:8443/hook: ca_cert must be base 64 encoded"
        );
    }
}
