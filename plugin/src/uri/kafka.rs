//! `kafka://broker:port`, `confluent-cloud://…`, `azure-event-hub://…`: Kafka changefeed sinks
//! (provider `kafka`). Sink parameter names are lower case.

use super::params::{Ctx, Kind, Param, ParamError, Required, SchemeDef, Unknown, texts};
use super::{Check, go, gourl};
use crate::model::ConnectionType;

const TOPIC_PREFIX: Param = Param::text("topic_prefix", "Prefix added to every topic name.");
const TOPIC_NAME: Param = Param::text("topic_name", "Send every table to this one topic.");
const SCHEMA_TOPIC: Param =
    Param::text("schema_topic", "Not supported yet: any value is an error.")
        .kind(Kind::Unsupported, "schema_topic is not yet supported");
const TLS_ENABLED: Param =
    Param::text("tls_enabled", "Connect with TLS.").kind(Kind::Bool, texts::SINK_BOOL);
const SKIP_VERIFY: Param =
    Param::text("insecure_tls_skip_verify", "Do not verify the broker's certificate.")
        .kind(Kind::Bool, texts::SINK_BOOL);
const CA_CERT: Param =
    Param::text("ca_cert", "Base64 of the PEM CA certificate that signs the broker's certificate.")
        .secret()
        .kind(Kind::Base64Pem, texts::SINK_BASE64);
const CLIENT_CERT: Param =
    Param::text("client_cert", "Base64 of the PEM client certificate (with `tls_enabled=true`).")
        .secret()
        .kind(Kind::Base64Pem, texts::SINK_BASE64)
        .required(Required::When("`client_key` is given"));
const CLIENT_KEY: Param =
    Param::text("client_key", "Base64 of the PEM private key of `client_cert`.")
        .secret()
        .kind(Kind::Base64Pem, texts::SINK_BASE64)
        .required(Required::When("`client_cert` is given"));
const SASL_ENABLED: Param =
    Param::text("sasl_enabled", "Authenticate with SASL.").kind(Kind::Bool, texts::SINK_BOOL);
const SASL_HANDSHAKE: Param =
    Param::text("sasl_handshake", "Send the SASL handshake (default true).")
        .kind(Kind::Bool, texts::SINK_BOOL);
const MECHANISMS: &[&str] = &["SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "PLAIN"];
const SASL_MECHANISM: Param =
    Param::text("sasl_mechanism", "SASL mechanism (exact case); default `PLAIN`.")
        .kind(Kind::OneOf(MECHANISMS), "param {name} must be one of {one_of}");
const SASL_USER: Param = Param::text("sasl_user", "SASL user.")
    .required(Required::When("SASL with `PLAIN` or `SCRAM-*`"));
const SASL_PASSWORD: Param = Param::text("sasl_password", "SASL password.")
    .secret()
    .required(Required::When("SASL with `PLAIN` or `SCRAM-*`"));
const SASL_CLIENT_ID: Param = Param::text("sasl_client_id", "OAuth client ID.")
    .required(Required::When("`sasl_mechanism=OAUTHBEARER`"));
const SASL_CLIENT_SECRET: Param =
    Param::text("sasl_client_secret", "Base64 of the OAuth client secret.")
        .secret()
        .kind(Kind::Base64, "decoding client secret: param {name} must be base 64 encoded: {cause}")
        .required(Required::When("`sasl_mechanism=OAUTHBEARER`"));
const SASL_TOKEN_URL: Param = Param::text("sasl_token_url", "OAuth token endpoint.")
    .required(Required::When("`sasl_mechanism=OAUTHBEARER`"));
const SASL_SCOPES: Param = Param::text("sasl_scopes", "OAuth scope.").repeatable();
const SASL_GRANT_TYPE: Param =
    Param::text("sasl_grant_type", "OAuth grant type (default `client_credentials`).");

const OAUTH_ONLY: &[&str] =
    &["sasl_client_id", "sasl_client_secret", "sasl_token_url", "sasl_grant_type", "sasl_scopes"];

pub(crate) const KAFKA: SchemeDef = SchemeDef {
    schemes: &["kafka"],
    provider: "kafka",
    connection_type: ConnectionType::Storage,
    check: Check::None,
    wrapper: Some("invalid changefeed sink URI"),
    unknown: Unknown::Reject("kafka sink"),
    params: &[
        TOPIC_PREFIX,
        TOPIC_NAME,
        SCHEMA_TOPIC,
        TLS_ENABLED,
        SKIP_VERIFY,
        CA_CERT,
        CLIENT_CERT,
        CLIENT_KEY,
        SASL_ENABLED,
        SASL_HANDSHAKE,
        SASL_MECHANISM,
        SASL_USER,
        SASL_PASSWORD,
        SASL_CLIENT_ID,
        SASL_CLIENT_SECRET,
        SASL_TOKEN_URL,
        SASL_SCOPES,
        SASL_GRANT_TYPE,
    ],
    title: "Kafka",
    summary: "A Kafka cluster for changefeeds; the host is a comma-separated list of bootstrap brokers. \
              No broker is contacted at CREATE time.",
    example: "kafka://broker1:9092,broker2:9092?tls_enabled=true&sasl_enabled=true&sasl_mechanism=SCRAM-SHA-256&sasl_user=u&sasl_password=p",
    validate: validate_kafka,
};

fn validate_kafka(c: &Ctx<'_>) -> Result<(), ParamError> {
    schema_topic(c)?;
    let tls = c.bool("tls_enabled")?.unwrap_or(false);
    c.bool("insecure_tls_skip_verify")?;
    let ca = c.base64("ca_cert")?;
    let cert = c.base64("client_cert")?;
    let key = c.base64("client_key")?;
    let mechanism = sasl(c)?;
    if tls {
        match (&cert, &key) {
            (Some(_), None) => return Err("client_cert requires client_key to be set".into()),
            (None, Some(_)) => return Err("client_key requires client_cert to be set".into()),
            (Some(cert), Some(key)) => go::x509_key_pair(cert, key).map_err(|e| {
                ParamError::from(format!("invalid client certificate data provided: {e}"))
            })?,
            (None, None) => {}
        }
    } else {
        if ca.is_some() {
            return Err("ca_cert requires tls_enabled=true".into());
        }
        if cert.is_some() {
            return Err("client_cert requires tls_enabled=true".into());
        }
    }
    // The user and password are not used by OAUTHBEARER, so they count as unknown there.
    let unconsumed: &[&str] =
        if mechanism == Some("OAUTHBEARER") { &["sasl_user", "sasl_password"] } else { &[] };
    c.unknown(unconsumed)
}

fn schema_topic(c: &Ctx<'_>) -> Result<(), ParamError> {
    if c.has("schema_topic") {
        return Err(c.invalid("schema_topic", c.get("schema_topic"), ""));
    }
    Ok(())
}

/// The SASL rules; the mechanism in use, if SASL is enabled.
fn sasl(c: &Ctx<'_>) -> Result<Option<&'static str>, ParamError> {
    if !c.bool("sasl_enabled")?.unwrap_or(false) {
        if c.has("sasl_handshake") {
            return Err("sasl_enabled must be enabled to configure SASL handshake behavior".into());
        }
        if c.has("sasl_mechanism") {
            return Err("sasl_enabled must be enabled to configure SASL mechanism".into());
        }
        for name in ["sasl_user", "sasl_password"].iter().chain(OAUTH_ONLY) {
            if c.has(name) {
                return Err(format!("sasl_enabled must be enabled if {name} is provided").into());
            }
        }
        return Ok(None);
    }
    c.bool("sasl_handshake")?;
    let mechanism = c.one_of("sasl_mechanism")?.unwrap_or("PLAIN");
    if mechanism != "OAUTHBEARER"
        && let Some(name) = OAUTH_ONLY.iter().find(|n| c.has(n))
    {
        return Err(
            format!("{name} is only a valid parameter for sasl_mechanism=OAUTHBEARER").into()
        );
    }
    let required: &[&str] = if mechanism == "OAUTHBEARER" {
        &["sasl_client_id", "sasl_client_secret", "sasl_token_url"]
    } else {
        &["sasl_user", "sasl_password"]
    };
    if let Some(name) = required.iter().find(|n| !c.has(n)) {
        return Err(format!(
            "{name} must be provided when SASL is enabled using mechanism {mechanism}"
        )
        .into());
    }
    if mechanism == "OAUTHBEARER" {
        c.base64("sasl_client_secret")?;
        gourl::parse(c.get("sasl_token_url"))
            .map_err(|e| ParamError::from(format!("malformed token url: {e}")))?;
    }
    Ok(Some(mechanism))
}

const MUST_BE_TRUE: &str = "Always on: only `true` may be given.";
const SASL_ENABLED_TRUE: Param =
    Param::text("sasl_enabled", MUST_BE_TRUE).kind(Kind::True, texts::PLEASE_USE_TRUE);
const TLS_ENABLED_TRUE: Param =
    Param::text("tls_enabled", MUST_BE_TRUE).kind(Kind::True, texts::PLEASE_USE_TRUE);
const SASL_HANDSHAKE_TRUE: Param =
    Param::text("sasl_handshake", MUST_BE_TRUE).kind(Kind::True, texts::PLEASE_USE_TRUE);
const SASL_MECHANISM_PLAIN: Param =
    Param::text("sasl_mechanism", "Always `PLAIN`: only `PLAIN` may be given.").kind(
        Kind::OneOf(&["PLAIN"]),
        "unsupported value {value} for parameter {name}, please use PLAIN instead",
    );

pub(crate) const CONFLUENT_CLOUD: SchemeDef = SchemeDef {
    schemes: &["confluent-cloud"],
    provider: "kafka",
    connection_type: ConnectionType::Storage,
    check: Check::None,
    wrapper: Some("invalid changefeed sink URI"),
    unknown: Unknown::RejectForScheme,
    params: &[
        Param::text("api_key", "Confluent Cloud API key (the SASL user).")
            .required(Required::Yes(texts::SCHEME_REQUIRES)),
        Param::text("api_secret", "Confluent Cloud API secret (the SASL password).")
            .secret()
            .required(Required::Yes(texts::SCHEME_REQUIRES)),
        SASL_ENABLED_TRUE,
        TLS_ENABLED_TRUE,
        SASL_HANDSHAKE_TRUE,
        SASL_MECHANISM_PLAIN,
        SKIP_VERIFY,
        TOPIC_PREFIX,
        TOPIC_NAME,
        SCHEMA_TOPIC,
    ],
    title: "Confluent Cloud",
    summary: "A Confluent Cloud Kafka cluster: SASL `PLAIN` over TLS with an API key.",
    example: "confluent-cloud://pkc-xxxxx.us-east-1.aws.confluent.cloud:9092?api_key=KEY&api_secret=SECRET",
    validate: validate_confluent,
};

fn validate_confluent(c: &Ctx<'_>) -> Result<(), ParamError> {
    schema_topic(c)?;
    c.require("api_key")?;
    c.require("api_secret")?;
    fixed_values(c)?;
    c.bool("insecure_tls_skip_verify")?;
    c.unknown(&[])
}

/// Confluent Cloud and Azure Event Hub only support SASL `PLAIN` over TLS.
fn fixed_values(c: &Ctx<'_>) -> Result<(), ParamError> {
    for name in ["sasl_enabled", "tls_enabled", "sasl_handshake"] {
        c.must_be_true(name)?;
    }
    c.one_of("sasl_mechanism").map(drop)
}

pub(crate) const AZURE_EVENT_HUB: SchemeDef = SchemeDef {
    schemes: &["azure-event-hub"],
    provider: "kafka",
    connection_type: ConnectionType::Storage,
    check: Check::None,
    wrapper: Some("invalid changefeed sink URI"),
    unknown: Unknown::RejectForScheme,
    params: &[
        Param::text("shared_access_key_name", "Name of the shared access policy.")
            .required(Required::Yes(texts::SCHEME_REQUIRES)),
        Param::text("shared_access_key", "Key of the shared access policy.")
            .secret()
            .required(Required::Yes(texts::SCHEME_REQUIRES)),
        SASL_ENABLED_TRUE,
        TLS_ENABLED_TRUE,
        SASL_HANDSHAKE_TRUE,
        SASL_MECHANISM_PLAIN,
        TOPIC_PREFIX,
        TOPIC_NAME,
        SCHEMA_TOPIC,
    ],
    title: "Azure Event Hubs",
    summary: "An Event Hubs namespace through its Kafka endpoint: SASL `PLAIN` over TLS with a shared access key.",
    example: "azure-event-hub://namespace.servicebus.windows.net:9093?shared_access_key_name=policy&shared_access_key=KEY",
    validate: validate_event_hub,
};

fn validate_event_hub(c: &Ctx<'_>) -> Result<(), ParamError> {
    schema_topic(c)?;
    c.require("shared_access_key_name")?;
    c.require("shared_access_key")?;
    fixed_values(c)?;
    c.unknown(&[])
}
