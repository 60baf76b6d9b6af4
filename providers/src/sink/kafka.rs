//! Kafka sinks with librdkafka (`rdkafka`): `kafka://`, `confluent-cloud://` and
//! `azure-event-hub://`.
//!
//! Every lowercase parameter the component accepts is mapped onto librdkafka's configuration
//! ([`client_config`]); `docs/providers.md` has the table. Delivery is at-least-once and per-key
//! ordered: one idempotent producer (`enable.idempotence`, which keeps at most 5 requests in
//! flight and retries without reordering), and [`KafkaSink::emit`] returns only when every
//! message is acknowledged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use super::{Message, Sink, SinkOptions};
use crate::{ErrorKind, Target};

/// How long a send waits for room in librdkafka's full queue before it fails.
const QUEUE_FULL_WAIT: Duration = Duration::from_secs(10);

/// How long [`probe`] waits for the brokers (CHECK EXTERNAL CONNECTION, the CREATE notice).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed Kafka request. Messages name the sink as `scheme://brokers` and never contain a
/// parameter value that is a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter this provider does not know (the component only passes known ones).
    #[error("{location}: unknown kafka sink query parameters: {names}")]
    UnknownParameters {
        /// The sink's display form.
        location: String,
        /// The names, comma-separated.
        names: String,
    },
    /// A parameter whose value (never shown: it may be a secret) cannot be used.
    #[error("{location}: {name} {reason}")]
    InvalidParameter {
        /// The sink's display form.
        location: String,
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `kafka_sink_config` is not valid.
    #[error("{location}: invalid kafka_sink_config: {reason}")]
    SinkConfig {
        /// The sink's display form.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// librdkafka refused the configuration.
    #[error("{location}: cannot configure the Kafka client: {cause}")]
    Configure {
        /// The sink's display form.
        location: String,
        /// librdkafka's error, secrets removed.
        cause: String,
    },
    /// No broker could be reached (closed port, unknown host, TLS failure).
    #[error("{location}: cannot connect to the Kafka brokers: {cause}")]
    Unreachable {
        /// The sink's display form.
        location: String,
        /// The first connection error librdkafka reported, secrets removed.
        cause: String,
    },
    /// The brokers refused the credentials (SASL) or the TLS handshake failed.
    #[error("{location}: the Kafka brokers refused the connection: {cause}")]
    Authentication {
        /// The sink's display form.
        location: String,
        /// librdkafka's error, secrets removed.
        cause: String,
    },
    /// A topic could not be created.
    #[error("{location}: cannot create topic {topic}: {cause}")]
    CreateTopic {
        /// The sink's display form.
        location: String,
        /// The topic.
        topic: String,
        /// The broker's or librdkafka's error, secrets removed.
        cause: String,
    },
    /// A message was not acknowledged.
    #[error("{location}: delivery to topic {topic} failed: {cause}")]
    Delivery {
        /// The sink's display form.
        location: String,
        /// The message's topic.
        topic: String,
        /// The broker's or librdkafka's error, secrets removed.
        cause: String,
    },
    /// Anything else librdkafka reported (metadata, flush).
    #[error("{location}: {operation} failed: {cause}")]
    Client {
        /// The sink's display form.
        location: String,
        /// `metadata`, `flush`, …
        operation: &'static str,
        /// librdkafka's error, secrets removed.
        cause: String,
    },
}

impl Error {
    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::UnknownParameters { .. }
            | Self::InvalidParameter { .. }
            | Self::SinkConfig { .. }
            | Self::Configure { .. } => ErrorKind::InvalidArgument,
            Self::Authentication { .. } => ErrorKind::PermissionDenied,
            Self::Unreachable { .. }
            | Self::CreateTopic { .. }
            | Self::Delivery { .. }
            | Self::Client { .. } => ErrorKind::Unavailable,
        }
    }
}

/// Every parameter of the three schemes, as the component declares them.
const PARAMS: &[&str] = &[
    "topic_prefix",
    "topic_name",
    "schema_topic",
    "tls_enabled",
    "insecure_tls_skip_verify",
    "ca_cert",
    "client_cert",
    "client_key",
    "sasl_enabled",
    "sasl_handshake",
    "sasl_mechanism",
    "sasl_user",
    "sasl_password",
    "sasl_client_id",
    "sasl_client_secret",
    "sasl_token_url",
    "sasl_scopes",
    "sasl_grant_type",
    "api_key",
    "api_secret",
    "shared_access_key_name",
    "shared_access_key",
];

/// Parameters whose values are secrets: removed from every error text.
const SECRET_PARAMS: &[&str] = &[
    "ca_cert",
    "client_cert",
    "client_key",
    "sasl_password",
    "sasl_client_secret",
    "api_secret",
    "shared_access_key",
];

/// A Kafka target's librdkafka configuration and what the sink needs beside it.
struct Settings {
    location: String,
    config: ClientConfig,
    topic_prefix: String,
    topic_name: Option<String>,
    /// Secret values (raw and decoded) to strip from librdkafka's messages.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Settings {
    // The client configuration holds secrets: show only where it points.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("location", &self.location)
            .field("topic_prefix", &self.topic_prefix)
            .field("topic_name", &self.topic_name)
            .finish_non_exhaustive()
    }
}

/// The target's parameters, looked up by name.
struct Params<'a> {
    target: &'a Target,
    location: String,
}

impl<'a> Params<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.target.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&'a str> {
        self.target.params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    fn invalid(&self, name: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidParameter { location: self.location.clone(), name, reason: reason.into() }
    }

    /// Go's `strconv.ParseBool`, as CockroachDB reads these flags.
    fn bool(&self, name: &'static str) -> Result<Option<bool>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(Some(true)),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(Some(false)),
            Some(_) => Err(self.invalid(name, "must be a bool")),
        }
    }

    /// A base64 parameter, decoded to text (PEM, or a client secret).
    fn base64(&self, name: &'static str) -> Result<Option<String>, Error> {
        let Some(value) = self.get(name) else { return Ok(None) };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| self.invalid(name, "must be base 64 encoded"))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| self.invalid(name, "must decode to UTF-8 text (PEM)"))
    }

    fn require(&self, name: &'static str, why: &str) -> Result<&'a str, Error> {
        self.get(name).ok_or_else(|| self.invalid(name, format!("must be provided {why}")))
    }
}

/// The librdkafka configuration for `target`: brokers, TLS, SASL and the topic rules.
fn settings(target: &Target) -> Result<Settings, Error> {
    let location = target.display();
    let p = Params { target, location: location.clone() };
    let unknown: Vec<&str> =
        target.params.iter().map(|(k, _)| k.as_str()).filter(|k| !PARAMS.contains(k)).collect();
    if !unknown.is_empty() {
        return Err(Error::UnknownParameters { location, names: unknown.join(", ") });
    }
    if p.get("schema_topic").is_some() {
        return Err(p.invalid("schema_topic", "is not yet supported"));
    }
    let mut secrets: Vec<String> = target
        .params
        .iter()
        .filter(|(k, _)| SECRET_PARAMS.contains(&k.as_str()))
        .map(|(_, v)| v.clone())
        .collect();

    let mut config = ClientConfig::new();
    let mut brokers = target.host.clone();
    config.set("client.id", "extconn");
    // Each request fails after this long without an answer; connection failures are reported
    // at once and retried with backoff.
    config.set("socket.connection.setup.timeout.ms", "10000");

    let (tls, sasl) = match target.scheme.as_str() {
        "confluent-cloud" => {
            fixed(&p)?;
            let user = p.require("api_key", "for confluent-cloud")?;
            let password = p.require("api_secret", "for confluent-cloud")?;
            config.set("sasl.mechanism", "PLAIN");
            config.set("sasl.username", user);
            config.set("sasl.password", password);
            (true, true)
        }
        "azure-event-hub" => {
            fixed(&p)?;
            let name = p.require("shared_access_key_name", "for azure-event-hub")?;
            let key = p.require("shared_access_key", "for azure-event-hub")?;
            // Event Hubs' Kafka endpoint: SASL PLAIN with the literal user `$ConnectionString`
            // and the namespace's connection string as the password, on port 9093.
            let host = target.host.split(',').next().unwrap_or_default();
            let namespace = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let password = format!(
                "Endpoint=sb://{namespace}/;SharedAccessKeyName={name};SharedAccessKey={key}"
            );
            secrets.push(password.clone());
            config.set("sasl.mechanism", "PLAIN");
            config.set("sasl.username", "$ConnectionString");
            config.set("sasl.password", password);
            brokers = target
                .host
                .split(',')
                .map(|b| if b.contains(':') { b.to_owned() } else { format!("{b}:9093") })
                .collect::<Vec<_>>()
                .join(",");
            (true, true)
        }
        _ => {
            let tls = p.bool("tls_enabled")?.unwrap_or(false);
            let sasl = p.bool("sasl_enabled")?.unwrap_or(false);
            if sasl {
                kafka_sasl(&p, &mut config, &mut secrets)?;
            }
            (tls, sasl)
        }
    };
    if brokers.is_empty() {
        return Err(Error::InvalidParameter {
            location,
            name: "host",
            reason: "must name at least one broker (kafka://host:port)".into(),
        });
    }
    config.set("bootstrap.servers", &brokers);
    config.set(
        "security.protocol",
        match (tls, sasl) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        },
    );
    if tls {
        if let Some(ca) = p.base64("ca_cert")? {
            secrets.push(ca.clone());
            config.set("ssl.ca.pem", ca);
        }
        match (p.base64("client_cert")?, p.base64("client_key")?) {
            (Some(cert), Some(key)) => {
                secrets.push(cert.clone());
                secrets.push(key.clone());
                config.set("ssl.certificate.pem", cert);
                config.set("ssl.key.pem", key);
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(p.invalid("client_cert", "requires client_key to be set"));
            }
            (None, Some(_)) => {
                return Err(p.invalid("client_key", "requires client_cert to be set"));
            }
        }
        if p.bool("insecure_tls_skip_verify")?.unwrap_or(false) {
            config.set("enable.ssl.certificate.verification", "false");
            config.set("ssl.endpoint.identification.algorithm", "none");
        }
    } else {
        for name in ["ca_cert", "client_cert", "client_key"] {
            if p.get(name).is_some() {
                let name = PARAMS.iter().find(|n| **n == name).copied().unwrap_or("ca_cert");
                return Err(p.invalid(name, "requires tls_enabled=true"));
            }
        }
    }
    Ok(Settings {
        location,
        config,
        topic_prefix: p.get("topic_prefix").unwrap_or_default().to_owned(),
        topic_name: p.get("topic_name").map(str::to_owned),
        secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
    })
}

/// confluent-cloud and azure-event-hub: SASL PLAIN over TLS, and only that.
fn fixed(p: &Params<'_>) -> Result<(), Error> {
    for name in ["sasl_enabled", "tls_enabled", "sasl_handshake"] {
        if p.bool(name)? == Some(false) {
            let name = PARAMS.iter().find(|n| **n == name).copied().unwrap_or("tls_enabled");
            return Err(p.invalid(name, "only true is supported for this scheme"));
        }
    }
    if p.get("sasl_mechanism").is_some_and(|m| m != "PLAIN") {
        return Err(p.invalid("sasl_mechanism", "only PLAIN is supported for this scheme"));
    }
    Ok(())
}

/// kafka:// SASL: PLAIN, SCRAM-SHA-256/512 with user and password, or OAUTHBEARER with the
/// OAuth client-credentials flow (librdkafka's `sasl.oauthbearer.method=oidc`).
fn kafka_sasl(
    p: &Params<'_>,
    config: &mut ClientConfig,
    secrets: &mut Vec<String>,
) -> Result<(), Error> {
    // librdkafka always sends the SaslHandshake (every broker since Kafka 0.10 needs it); it
    // cannot skip it as Sarama's `Handshake = false` does.
    if p.bool("sasl_handshake")? == Some(false) {
        return Err(p.invalid(
            "sasl_handshake",
            "=false is not supported: librdkafka always sends the SASL handshake \
             (brokers older than Kafka 0.10 are not supported)",
        ));
    }
    let mechanism = p.get("sasl_mechanism").unwrap_or("PLAIN");
    match mechanism {
        "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            let why = "when SASL is enabled using mechanism PLAIN or SCRAM";
            config.set("sasl.mechanism", mechanism);
            config.set("sasl.username", p.require("sasl_user", why)?);
            config.set("sasl.password", p.require("sasl_password", why)?);
        }
        "OAUTHBEARER" => {
            let why = "when SASL is enabled using mechanism OAUTHBEARER";
            config.set("sasl.mechanism", "OAUTHBEARER");
            config.set("sasl.oauthbearer.method", "oidc");
            config.set("sasl.oauthbearer.client.id", p.require("sasl_client_id", why)?);
            p.require("sasl_client_secret", why)?;
            // CockroachDB takes the client secret base64-encoded.
            let secret = p.base64("sasl_client_secret")?.unwrap_or_default();
            secrets.push(secret.clone());
            config.set("sasl.oauthbearer.client.secret", secret);
            config.set("sasl.oauthbearer.token.endpoint.url", p.require("sasl_token_url", why)?);
            let scopes = p.all("sasl_scopes");
            if !scopes.is_empty() {
                config.set("sasl.oauthbearer.scope", scopes.join(" "));
            }
            match p.get("sasl_grant_type") {
                None | Some("client_credentials") => {}
                Some(grant @ "urn:ietf:params:oauth:grant-type:jwt-bearer") => {
                    config.set("sasl.oauthbearer.grant.type", grant);
                }
                Some(_) => {
                    return Err(p.invalid(
                        "sasl_grant_type",
                        "must be client_credentials (the only OAuth grant librdkafka \
                         performs with a client id and secret)",
                    ));
                }
            }
        }
        _ => {
            return Err(p.invalid(
                "sasl_mechanism",
                "must be one of SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, or PLAIN",
            ));
        }
    }
    Ok(())
}

/// librdkafka's producer settings for CockroachDB's `kafka_sink_config` JSON. Keys match
/// case-insensitively, as Go's `encoding/json` matches them; unknown keys are an error
/// (CockroachDB ignores them, which hides typos).
fn apply_sink_config(location: &str, json: &str, config: &mut ClientConfig) -> Result<Acks, Error> {
    let bad = |reason: String| Error::SinkConfig { location: location.to_owned(), reason };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(format!("not JSON: {e}")))?;
    let object = value.as_object().ok_or_else(|| bad("must be a JSON object".into()))?;
    let mut acks = Acks::All;
    for (key, value) in object {
        match key.to_ascii_lowercase().as_str() {
            "flush" => {
                let flush =
                    value.as_object().ok_or_else(|| bad("Flush must be an object".into()))?;
                for (key, value) in flush {
                    let number = || {
                        value
                            .as_u64()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| bad(format!("Flush.{key} must be a positive integer")))
                    };
                    match key.to_ascii_lowercase().as_str() {
                        // librdkafka has no minimum batch size: the most a batch may hold is
                        // the closest setting for both.
                        "maxmessages" => {
                            config.set("batch.num.messages", number()?.min(1_000_000).to_string());
                        }
                        "messages" => {
                            if !flush.keys().any(|k| k.eq_ignore_ascii_case("maxmessages")) {
                                let n = number()?.min(1_000_000);
                                config.set("batch.num.messages", n.to_string());
                            }
                        }
                        "bytes" => {
                            config.set("batch.size", number()?.min(i32::MAX as u64).to_string());
                        }
                        "frequency" => {
                            let text = value.as_str().ok_or_else(|| {
                                bad("Flush.Frequency must be a duration string like \"1s\"".into())
                            })?;
                            let ms = go_duration_ms(text).ok_or_else(|| {
                                bad(format!("Flush.Frequency {text:?} is not a duration"))
                            })?;
                            config.set("linger.ms", ms.min(900_000).to_string());
                        }
                        _ => {
                            return Err(bad(format!(
                                "unknown key Flush.{key} (known: Messages, MaxMessages, Bytes, Frequency)"
                            )));
                        }
                    }
                }
            }
            "requiredacks" => {
                let text = value.as_str().unwrap_or_default();
                acks = match text.to_ascii_uppercase().as_str() {
                    "ALL" | "-1" => Acks::All,
                    "ONE" | "1" => Acks::One,
                    "NONE" | "0" => Acks::None,
                    _ => {
                        return Err(bad(format!(
                            "RequiredAcks must be ALL, ONE or NONE, not {value}"
                        )));
                    }
                };
            }
            "version" => {
                let text = value
                    .as_str()
                    .filter(|v| !v.is_empty() && v.split('.').all(|n| n.parse::<u32>().is_ok()))
                    .ok_or_else(|| {
                        bad(format!("Version must be a Kafka version like \"2.7.2\", not {value}"))
                    })?;
                // librdkafka asks the broker for its API versions; the configured version only
                // matters for brokers that cannot answer.
                config.set("broker.version.fallback", text);
            }
            "clientid" => {
                let text = value.as_str().ok_or_else(|| bad("ClientID must be a string".into()))?;
                config.set("client.id", text);
            }
            "compression" => {
                let codec = match value.as_str().unwrap_or_default().to_ascii_uppercase().as_str() {
                    "NONE" => "none",
                    "GZIP" => "gzip",
                    "SNAPPY" => "snappy",
                    "LZ4" => "lz4",
                    _ => {
                        return Err(bad(format!(
                            "Compression must be NONE, GZIP, SNAPPY or LZ4, not {value}"
                        )));
                    }
                };
                config.set("compression.codec", codec);
            }
            "compressionlevel" => {
                let level = value
                    .as_i64()
                    .ok_or_else(|| bad("CompressionLevel must be an integer".into()))?;
                config.set("compression.level", level.clamp(-1, 12).to_string());
            }
            _ => {
                return Err(bad(format!(
                    "unknown key {key} (known: Flush, RequiredAcks, Version, ClientID, Compression, CompressionLevel)"
                )));
            }
        }
    }
    Ok(acks)
}

/// Go's `time.ParseDuration`, in whole milliseconds (`"1s"`, `"500ms"`, `"1m30s"`).
fn go_duration_ms(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit..];
    }
    Some(total.round() as u64)
}

/// `RequiredAcks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acks {
    All,
    One,
    None,
}

/// Records what librdkafka reports out of band (connection, TLS and SASL failures), so that
/// errors can say why instead of "timed out".
#[derive(Debug, Clone, Default)]
struct Context {
    state: Arc<Mutex<Reported>>,
}

#[derive(Debug, Default)]
struct Reported {
    /// The first error that explains a failure to connect or authenticate.
    first: Option<String>,
    /// The latest error of any kind.
    last: Option<String>,
    /// Set once an error ends a probe: every broker is down, or the brokers refused us.
    fatal: Option<Fatal>,
    /// When a connection attempt first failed.
    transport_failed: Option<std::time::Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fatal {
    Unreachable,
    Refused,
}

impl ClientContext for Context {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _message: &str) {
        // Everything worth knowing arrives through `error`.
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let fatal = match code {
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => {
                Some(Fatal::Refused)
            }
            Some(RDKafkaErrorCode::SSL) => Some(Fatal::Refused),
            Some(RDKafkaErrorCode::Resolve) => Some(Fatal::Unreachable),
            // SASL and TLS failures arrive as transport failures; their text says which.
            _ if reason.contains("SASL") || reason.contains("SSL handshake") => {
                Some(Fatal::Refused)
            }
            _ => None,
        };
        // "All brokers down" may come before the SASL or TLS error that explains it: both
        // start the grace period rather than end the probe.
        if matches!(
            code,
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
        ) && state.transport_failed.is_none()
        {
            state.transport_failed = Some(std::time::Instant::now());
        }
        // "1/1 brokers are down" says less than the connection error before it.
        if state.first.is_none() && code != Some(RDKafkaErrorCode::AllBrokersDown) {
            state.first = Some(reason.to_owned());
        }
        state.last = Some(reason.to_owned());
        if state.fatal.is_none() || fatal == Some(Fatal::Refused) {
            state.fatal = fatal.or(state.fatal);
        }
    }
}

// Only the probe's metadata-only producer uses it: deliveries are not tracked there.
impl rdkafka::producer::ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The context of the sink's producer: [`Context`]'s reports, and each message's delivery
/// counted against its batch.
#[derive(Clone)]
struct Deliveries {
    reports: Context,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.reports.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.reports.error(error, reason);
    }
}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = Arc<Batch>;

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, batch: Arc<Batch>) {
        if let Err((error, message)) = result {
            batch.failed(message.topic(), error);
        }
        batch.done_one();
    }
}

/// The messages of one [`KafkaSink::send_all`]: how many are not yet acknowledged, and the
/// first failure. A delivery report only counts down; the sender is woken once, when the
/// count reaches zero (one wake-up per batch rather than a future and a wake-up per message).
#[derive(Default)]
struct Batch {
    /// Messages handed over and not yet reported, plus one while the sender still hands
    /// over (so the count cannot reach zero before the last message is handed over).
    pending: AtomicUsize,
    failure: Mutex<Option<(String, KafkaError)>>,
    done: tokio::sync::Notify,
}

impl Batch {
    fn new() -> Arc<Self> {
        Arc::new(Self { pending: AtomicUsize::new(1), ..Self::default() })
    }

    fn failed(&self, topic: &str, error: &KafkaError) {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure.get_or_insert_with(|| (topic.to_owned(), error.clone()));
    }

    /// One message reported (or the sender done handing over).
    fn done_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A permit is kept if the sender is not waiting yet: the wake-up is never lost.
            self.done.notify_one();
        }
    }

    /// Waits until every message handed over is reported; the first failure.
    async fn reported(&self) -> Option<(String, KafkaError)> {
        while self.pending.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl Context {
    fn reported(&self) -> (Option<String>, Option<String>, Option<Fatal>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // librdkafka retries a refused connection without ever calling every broker down
        // when none was ever up: a failure that no success followed within a second ends it.
        let fatal = state.fatal.or_else(|| {
            state
                .transport_failed
                .filter(|at| at.elapsed() > TRANSPORT_GRACE)
                .map(|_| Fatal::Unreachable)
        });
        (state.first.clone(), state.last.clone(), fatal)
    }
}

/// How long [`probe`] waits after a failed connection for another broker to answer.
const TRANSPORT_GRACE: Duration = Duration::from_secs(1);

/// Replaces every secret in `text` with `redacted`.
fn redact(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |t, s| t.replace(s.as_str(), "redacted"))
}

/// Connects to `target`'s brokers and authenticates (a metadata request), within `timeout`.
/// Fails as soon as librdkafka reports every broker down or the credentials refused.
pub async fn probe(target: &Target, timeout: Duration) -> Result<(), Error> {
    let settings = settings(target)?;
    let Settings { location, config, secrets, .. } = settings;
    let context = Context::default();
    // Threaded: its thread serves the error callbacks while the metadata request waits.
    let producer: ThreadedProducer<Context> =
        config.create_with_context(context.clone()).map_err(|e| Error::Configure {
            location: location.clone(),
            cause: redact(&e.to_string(), &secrets),
        })?;
    // A thread of its own rather than tokio's blocking pool: when the probe ends early the
    // metadata request still runs to its timeout, and a runtime shutting down would wait for it.
    let (done, fetched) = futures::channel::oneshot::channel();
    std::thread::spawn(move || {
        let _ = done.send(producer.client().fetch_metadata(None, timeout).map(drop));
    });
    let fetch = fetched;
    let watch = async {
        loop {
            if let (first, last, Some(fatal)) = context.reported() {
                return (fatal, first.or(last).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    futures::pin_mut!(watch);
    match futures::future::select(fetch, watch).await {
        futures::future::Either::Left((Ok(Ok(())), _)) => Ok(()),
        futures::future::Either::Left((Ok(Err(e)), _)) => {
            let (first, _, fatal) = context.reported();
            let cause = redact(&first.unwrap_or_else(|| e.to_string()), &secrets);
            Err(match fatal {
                Some(Fatal::Refused) => Error::Authentication { location, cause },
                _ => Error::Unreachable { location, cause },
            })
        }
        futures::future::Either::Left((Err(_canceled), _)) => Err(Error::Client {
            location,
            operation: "metadata",
            cause: "the metadata request ended without an answer".into(),
        }),
        futures::future::Either::Right(((fatal, cause), _)) => {
            let cause = redact(&cause, &secrets);
            Err(match fatal {
                Fatal::Refused => Error::Authentication { location, cause },
                Fatal::Unreachable => Error::Unreachable { location, cause },
            })
        }
    }
}

/// An open Kafka sink: one idempotent producer (per-key order, at-least-once) and an admin
/// client for topics.
pub struct KafkaSink {
    location: String,
    producer: Arc<ThreadedProducer<Deliveries>>,
    admin: AdminClient<Context>,
    context: Context,
    secrets: Vec<String>,
    topic_prefix: String,
    topic_name: Option<String>,
    topic_partitions: Option<i32>,
    /// Partition counts, looked up once per topic for resolved messages.
    partitions: Mutex<HashMap<String, i32>>,
    /// The idempotent producer (`acks=all`): batches in flight keep their order.
    idempotent: bool,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("location", &self.location)
            .field("topic_prefix", &self.topic_prefix)
            .field("topic_name", &self.topic_name)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Builds the producer and admin client for `target`. No broker is contacted yet.
    pub fn open(target: &Target, options: &SinkOptions) -> Result<Self, Error> {
        let Settings { location, mut config, topic_prefix, topic_name, secrets } =
            settings(target)?;
        let admin_config = config.clone();
        let acks = match &options.kafka_sink_config {
            Some(json) => apply_sink_config(&location, json, &mut config)?,
            None => Acks::All,
        };
        match acks {
            // Idempotence: no duplicates from retries, order kept with up to 5 requests in
            // flight per partition.
            Acks::All => {
                config.set("enable.idempotence", "true");
                config.set("acks", "all");
            }
            // Without acks from every replica there is no idempotence: one request in flight
            // keeps retries from reordering a key's messages.
            Acks::One | Acks::None => {
                config.set("enable.idempotence", "false");
                config.set("acks", if acks == Acks::One { "1" } else { "0" });
                config.set("max.in.flight.requests.per.connection", "1");
            }
        }
        // Java clients' key hashing, so other producers of the topic agree on partitions.
        config.set("partitioner", "murmur2_random");
        // A message not acknowledged within 5 minutes is an error: the caller resends.
        config.set("message.timeout.ms", "300000");
        let context = Context::default();
        let configure = |e: KafkaError| Error::Configure {
            location: location.clone(),
            cause: redact(&e.to_string(), &secrets),
        };
        let producer = Arc::new(
            config
                .create_with_context(Deliveries { reports: context.clone() })
                .map_err(configure)?,
        );
        let admin = admin_config.create_with_context(context.clone()).map_err(configure)?;
        Ok(Self {
            location,
            producer,
            admin,
            context,
            secrets,
            topic_prefix,
            topic_name,
            topic_partitions: options.topic_partitions,
            partitions: Mutex::default(),
            idempotent: acks == Acks::All,
        })
    }

    /// The librdkafka error text, secrets removed, with the last out-of-band error when
    /// librdkafka's own says little (a timeout).
    fn cause(&self, error: &KafkaError) -> String {
        let mut cause = error.to_string();
        if let (_, Some(last), _) = self.context.reported()
            && matches!(
                error.rdkafka_error_code(),
                Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::OperationTimedOut)
            )
        {
            cause = format!("{cause} (last broker error: {last})");
        }
        redact(&cause, &self.secrets)
    }

    /// Hands every record (topic, partition, key, value) to the producer in the order given,
    /// which keeps each key's order, then waits for every acknowledgement; the first failure.
    ///
    /// When librdkafka's queue is full it waits on this thread (the producer's own thread
    /// delivers and frees room), up to [`QUEUE_FULL_WAIT`], then fails: the first poll of the
    /// returned future has then either handed every record over or failed, which a caller
    /// that emits the next batch before this one is acknowledged relies on
    /// ([`Sink::orders_in_flight`]).
    async fn send_all<'a>(
        &self,
        records: impl Iterator<Item = (&'a str, Option<i32>, Option<&'a [u8]>, &'a [u8])>,
    ) -> Result<(), Error> {
        let batch = Batch::new();
        for (topic, partition, key, payload) in records {
            batch.pending.fetch_add(1, Ordering::AcqRel);
            let mut record = BaseRecord::with_opaque_to(topic, batch.clone()).payload(payload);
            record.partition = partition;
            record.key = key;
            let mut full_since = None;
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        let since = *full_since.get_or_insert_with(std::time::Instant::now);
                        if since.elapsed() >= QUEUE_FULL_WAIT {
                            return Err(Error::Delivery {
                                location: self.location.clone(),
                                topic: topic.to_owned(),
                                cause: format!(
                                    "the producer's queue stayed full for {} s: the brokers \
                                     acknowledge nothing",
                                    QUEUE_FULL_WAIT.as_secs()
                                ),
                            });
                        }
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((error, _)) => return Err(self.delivery_error(topic, &error)),
                }
            }
        }
        batch.done_one();
        match batch.reported().await {
            None => Ok(()),
            Some((topic, error)) => Err(self.delivery_error(&topic, &error)),
        }
    }

    fn delivery_error(&self, topic: &str, error: &KafkaError) -> Error {
        Error::Delivery {
            location: self.location.clone(),
            topic: topic.to_owned(),
            cause: self.cause(error),
        }
    }

    /// The partition count of `topic`, from the brokers' metadata (cached).
    async fn partition_count(&self, topic: &str) -> Result<i32, Error> {
        if let Some(n) = self.partitions.lock().unwrap_or_else(|e| e.into_inner()).get(topic) {
            return Ok(*n);
        }
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), Duration::from_secs(30))
                .map(|m| m.topics().first().map(|t| (t.error(), t.partitions().len() as i32)))
        })
        .await;
        let error = |cause: String| Error::Client {
            location: self.location.clone(),
            operation: "metadata",
            cause,
        };
        let count = match metadata {
            Ok(Ok(Some((None, n)))) if n > 0 => n,
            Ok(Ok(Some((Some(code), _)))) => {
                let code: RDKafkaErrorCode = code.into();
                return Err(error(format!("topic {topic}: {code}")));
            }
            Ok(Ok(_)) => return Err(error(format!("topic {topic} has no partitions"))),
            Ok(Err(e)) => return Err(error(self.cause(&e))),
            Err(join) => return Err(error(join.to_string())),
        };
        self.partitions.lock().unwrap_or_else(|e| e.into_inner()).insert(topic.to_owned(), count);
        Ok(count)
    }
}

/// CockroachDB's `SQLNameToKafkaName`: characters Kafka topic names cannot hold become
/// `_u<hex>_`; `.` and `..` alone are escaped too.
fn kafka_name(name: &str) -> String {
    if name == "." || name == ".." {
        return name.chars().map(|c| format!("_u{:04x}_", c as u32)).collect();
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else {
            out.push_str(&format!("_u{:04x}_", c as u32));
        }
    }
    out
}

#[async_trait::async_trait]
impl Sink for KafkaSink {
    fn topic(&self, table: &str) -> String {
        match &self.topic_name {
            Some(name) => kafka_name(name),
            None => kafka_name(&format!("{}{table}", self.topic_prefix)),
        }
    }

    async fn ensure_topics(&self, topics: &[String]) -> Result<(), crate::Error> {
        let partitions = self.topic_partitions.unwrap_or(-1);
        // -1: the broker's default partition count and replication factor.
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results =
            self.admin.create_topics(&new, &options).await.map_err(|e| Error::CreateTopic {
                location: self.location.clone(),
                topic: topics.join(", "),
                cause: self.cause(&e),
            })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::CreateTopic {
                        location: self.location.clone(),
                        topic,
                        cause: code.to_string(),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    async fn emit(&self, messages: Vec<Message>) -> Result<(), crate::Error> {
        let records =
            messages.iter().map(|m| (m.topic.as_str(), None, Some(&m.key[..]), &m.value[..]));
        Ok(self.send_all(records).await?)
    }

    async fn emit_resolved(&self, topics: &[String], payload: Vec<u8>) -> Result<(), crate::Error> {
        let mut targets = Vec::new();
        for topic in topics {
            let count = self.partition_count(topic).await?;
            targets.extend((0..count).map(|p| (topic.as_str(), p)));
        }
        let records =
            targets.iter().map(|(topic, partition)| (*topic, Some(*partition), None, &payload[..]));
        Ok(self.send_all(records).await?)
    }

    /// Only the idempotent producer: without it, a batch that fails after its retries while
    /// the next one succeeds would be sent again after it.
    fn orders_in_flight(&self) -> bool {
        self.idempotent
    }

    async fn flush(&self) -> Result<(), crate::Error> {
        let producer = self.producer.clone();
        let flushed =
            tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(300))).await;
        let error = |cause: String| Error::Client {
            location: self.location.clone(),
            operation: "flush",
            cause,
        };
        match flushed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(error(self.cause(&e)).into()),
            Err(join) => Err(error(join.to_string()).into()),
        }
    }
}

#[cfg(test)]
mod tests;
