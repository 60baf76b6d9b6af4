//! `nodelocal://<node ID|self>/path`: a directory under a node's external-IO directory.

use super::params::{Ctx, LOCALITY, ParamError, SchemeDef, Unknown};
use super::{Check, go};
use crate::model::ConnectionType;

pub(crate) const NODELOCAL: SchemeDef = SchemeDef {
    schemes: &["nodelocal"],
    provider: "nodelocal",
    connection_type: ConnectionType::Storage,
    check: Check::Storage,
    wrapper: Some("failed to create nodelocal external connection"),
    // CockroachDB does not check nodelocal parameters (tests reuse them for other providers).
    unknown: Unknown::PassThrough,
    params: &[LOCALITY],
    title: "Node-local storage",
    summary: "A directory under the external-IO directory of a node. The host is a node ID, or `self` \
              for each node's own directory. Other query parameters are ignored.",
    example: "nodelocal://1/backups",
    validate,
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    let host = c.url.host.as_str();
    if host.is_empty() {
        return Err(format!(
            "invalid `nodelocal` URI: host component of nodelocal URI must be a node ID (use 'self' to specify \
             each node should access its own local filesystem): {}",
            c.display()
        )
        .into());
    }
    if host != "self" && !go::atoi_ok(host) {
        return Err(format!(
            "invalid `nodelocal` URI: host component of nodelocal URI must be a node ID: {}",
            c.display()
        )
        .into());
    }
    if c.url.path.is_empty() {
        return Err("local storage requested but path not provided".into());
    }
    Ok(())
}
