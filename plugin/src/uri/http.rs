//! `http://`, `https://` (also `file-http://`, `file-https://`): an HTTP server that stores
//! files with PUT and serves them with GET, used as a changefeed cloud-storage sink and for
//! Confluent Schema Registry URLs. The whole URL, query included, is the server's business.

use super::Check;
use super::params::{Ctx, ParamError, SchemeDef, Unknown};
use crate::model::ConnectionType;

pub(crate) const HTTP: SchemeDef = SchemeDef {
    schemes: &["http", "file-http"],
    provider: "http",
    connection_type: ConnectionType::Storage,
    check: Check::None,
    wrapper: Some("invalid changefeed sink URI"),
    unknown: Unknown::PassThrough,
    params: &[],
    title: "HTTP",
    summary: "A plain-HTTP file server (changefeed cloud-storage sink, schema registry). The query string is \
              passed to the server as is.",
    example: "http://files.example.com/changefeeds",
    validate,
};

pub(crate) const HTTPS: SchemeDef = SchemeDef {
    schemes: &["https", "file-https"],
    provider: "https",
    title: "HTTPS",
    summary: "An HTTPS file server (changefeed cloud-storage sink, schema registry). The query string is \
              passed to the server as is.",
    example: "https://registry.example.com:8081",
    ..HTTP
};

fn validate(_: &Ctx<'_>) -> Result<(), ParamError> {
    Ok(())
}
