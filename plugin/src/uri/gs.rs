//! `gs://bucket/prefix`: Google Cloud Storage.

use super::params::{Ctx, Kind, LOCALITY, Param, ParamError, Required, SchemeDef, Unknown, texts};
use super::{Check, go};
use crate::model::ConnectionType;

const AUTH: &str = "AUTH";
const CREDENTIALS: &str = "CREDENTIALS";
const BEARER_TOKEN: &str = "BEARER_TOKEN";

/// `AUTH` of Google Cloud schemes (`gs`, `gcp-kms`).
pub(super) const AUTH_PARAM: Param =
    Param::text(AUTH, "`specified` (default): use `CREDENTIALS` or `BEARER_TOKEN`; `implicit`: the host's credentials.")
        .kind(Kind::OneOf(&["specified", "implicit"]), texts::UNSUPPORTED_VALUE);

/// `CREDENTIALS` of Google Cloud schemes (`gs`, `gcp-kms`).
pub(super) const CREDENTIALS_PARAM: Param =
    Param::text(CREDENTIALS, "Base64 of a service-account JSON key file.")
        .secret()
        .kind(Kind::Base64Json, "error getting credentials from {name}: {cause}")
        .required(Required::When("`AUTH=specified` (the default) and no `BEARER_TOKEN`"));

/// `BEARER_TOKEN` of Google Cloud schemes (`gs`, `gcp-kms`).
pub(super) const BEARER_TOKEN_PARAM: Param = Param::text(BEARER_TOKEN, "An OAuth 2 access token.")
    .secret()
    .required(Required::When("`AUTH=specified` (the default) and no `CREDENTIALS`"));

/// `ASSUME_ROLE` of Google Cloud schemes.
pub(super) const ASSUME_ROLE_PARAM: Param = Param::text(
    "ASSUME_ROLE",
    "Service account to impersonate; a comma-separated chain `delegate1,delegate2,account`.",
);

pub(crate) const GS: SchemeDef = SchemeDef {
    schemes: &["gs"],
    provider: "gs",
    connection_type: ConnectionType::Storage,
    check: Check::Storage,
    wrapper: Some("failed to create gs external connection"),
    unknown: Unknown::Reject("GS"),
    params: &[
        AUTH_PARAM,
        CREDENTIALS_PARAM,
        BEARER_TOKEN_PARAM,
        Param::text("GOOGLE_BILLING_PROJECT", "Project billed for requester-pays buckets."),
        ASSUME_ROLE_PARAM,
        LOCALITY,
    ],
    title: "Google Cloud Storage",
    summary: "A GCS bucket, optionally under a prefix. Parameter names are upper case.",
    example: "gs://bucket/backups?AUTH=specified&BEARER_TOKEN=ya29.token",
    validate,
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    c.unknown(&[])?;
    credentials(c, "error getting credentials from CREDENTIALS")
}

/// The shared `AUTH` / `CREDENTIALS` / `BEARER_TOKEN` rules of `gs` and `gcp-kms`.
pub(super) fn credentials(c: &Ctx<'_>, json_context: &str) -> Result<(), ParamError> {
    if c.one_of(AUTH)? == Some("implicit") {
        return Ok(());
    }
    if let Some(json) = c.base64(CREDENTIALS)? {
        return go::google_credentials(&json).map_err(|e| format!("{json_context}: {e}").into());
    }
    if c.has(BEARER_TOKEN) {
        return Ok(());
    }
    Err(r#"CREDENTIALS or BEARER_TOKEN must be set if "AUTH" is "specified""#.into())
}
