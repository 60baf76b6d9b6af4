//! `gcpubsub://project`: a Google Cloud Pub/Sub changefeed sink.

use super::params::{Ctx, Kind, Param, ParamError, Required, SchemeDef, Unknown, texts};
use super::{Check, go};
use crate::model::ConnectionType;

pub(crate) const GCPUBSUB: SchemeDef = SchemeDef {
    schemes: &["gcpubsub"],
    provider: "gcpubsub",
    connection_type: ConnectionType::Storage,
    check: Check::None,
    wrapper: Some("invalid changefeed sink URI"),
    unknown: Unknown::PassThrough,
    params: &[
        Param::text("region", "Region of the Pub/Sub endpoint, e.g. `us-east1`.")
            .required(Required::When("always: the connection is validated without the `unordered` option")),
        Param::text("topic_name", "Send every table to this one topic."),
        Param::text("with_table_name_attribute", "Add a `TABLE_NAME` attribute to each message.")
            .kind(Kind::Bool, texts::SINK_BOOL),
        Param::text("AUTH", "`specified` (default) or `default`: use `CREDENTIALS`; `implicit`: the host's credentials.")
            .kind(Kind::OneOf(&["specified", "implicit", "default"]), texts::UNSUPPORTED_VALUE),
        Param::text("CREDENTIALS", "Base64 of a service-account JSON key file.")
            .secret()
            .kind(Kind::Base64Json, "decoding credentials json: param {name} must be base 64 encoded: {cause}")
            .required(Required::When("`AUTH` is not `implicit`")),
        Param::text("ASSUME_ROLE", "Service account to impersonate; a comma-separated chain `delegate1,delegate2,account`."),
    ],
    title: "Google Cloud Pub/Sub",
    summary: "A Pub/Sub project for changefeeds; the host is the project ID. Other query parameters are ignored.",
    example: "gcpubsub://my-project?region=us-east1&AUTH=implicit",
    validate,
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    c.bool("with_table_name_attribute")?;
    if c.url.host.is_empty() {
        return Err("missing project name".into());
    }
    if !c.has("region") {
        return Err(ParamError::Invalid {
            message: "region query parameter not found".into(),
            hint: Some(
                "Use of gcpubsub without specifying a region requires the WITH unordered option.",
            ),
        });
    }
    if c.one_of("AUTH")? == Some("implicit") {
        return Ok(());
    }
    if !c.has("CREDENTIALS") {
        return Err("missing credentials parameter".into());
    }
    let json = c.base64("CREDENTIALS")?.unwrap_or_default();
    go::google_credentials(&json).map_err(|e| format!("creating credentials from json: {e}").into())
}
