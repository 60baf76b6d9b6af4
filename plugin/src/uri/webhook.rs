//! `webhook-https://host/path`: a changefeed sink that POSTs batches of rows. Other query
//! parameters are kept in the URL the sink posts to.

use super::params::{Ctx, Kind, Param, ParamError, Required, SchemeDef, Unknown, texts};
use super::{Check, go};
use crate::model::ConnectionType;

const PARAMS: &[Param] = &[
    Param::text("insecure_tls_skip_verify", "Do not verify the server's certificate.")
        .kind(Kind::Bool, texts::SINK_BOOL),
    Param::text(
        "ca_cert",
        "Base64 of a PEM CA certificate trusted in addition to the system roots.",
    )
    .secret()
    .kind(Kind::Base64Pem, texts::SINK_BASE64),
    Param::text("client_cert", "Base64 of the PEM client certificate.")
        .secret()
        .kind(Kind::Base64Pem, texts::SINK_BASE64)
        .required(Required::When("`client_key` is given")),
    Param::text("client_key", "Base64 of the PEM private key of `client_cert`.")
        .secret()
        .kind(Kind::Base64Pem, texts::SINK_BASE64)
        .required(Required::When("`client_cert` is given")),
];

pub(crate) const WEBHOOK_HTTPS: SchemeDef = SchemeDef {
    schemes: &["webhook-https"],
    provider: "webhookhttps",
    connection_type: ConnectionType::Storage,
    check: Check::None,
    wrapper: Some("invalid changefeed sink URI"),
    unknown: Unknown::PassThrough,
    params: PARAMS,
    title: "Webhook (HTTPS)",
    summary: "An HTTPS endpoint that receives changefeed rows as JSON or CSV POST requests. Other query \
              parameters stay in the URL the sink posts to.",
    example: "webhook-https://sink.example.com:8443/changes?insecure_tls_skip_verify=false",
    validate,
};

pub(crate) const WEBHOOK_HTTP: SchemeDef = SchemeDef {
    schemes: &["webhook-http"],
    provider: "webhookhttp",
    summary: "Registered, but always refused: the webhook sink requires `webhook-https`.",
    title: "Webhook (HTTP)",
    example: "webhook-http://sink.example.com/changes",
    ..WEBHOOK_HTTPS
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    if c.scheme != "webhook-https" {
        return Err("this sink requires webhook-https".into());
    }
    c.bool("insecure_tls_skip_verify")?;
    let ca = c.base64("ca_cert")?;
    let cert = c.base64("client_cert")?;
    let key = c.base64("client_key")?;
    // CockroachDB appends the certificate text here; it is a secret parameter, so we do not.
    if ca.is_some_and(|pem| !go::has_certificate(&pem)) {
        return Err("failed to parse certificate data".into());
    }
    match (cert, key) {
        (Some(_), None) => Err("client_cert requires client_key to be set".into()),
        (None, Some(_)) => Err("client_key requires client_cert to be set".into()),
        (Some(cert), Some(key)) => go::x509_key_pair(&cert, &key)
            .map_err(|e| format!("invalid client certificate data provided: {e}").into()),
        (None, None) => Ok(()),
    }
}
