//! `external://name/sub/path` → the target an operation opens (reference §4.7, §6.3).

use super::privilege::{self, ConnPrivilege};
use crate::error::Error;
use crate::model::{Connection, ConnectionType, Grant, Principal, Purpose, Target};
use crate::uri;

/// Everything `resolve` decides on, read by the host.
#[derive(Debug, Clone)]
pub struct ResolveInput {
    /// An `external://` URI, or a direct one.
    pub uri: String,
    /// Why it is being resolved.
    pub purpose: Purpose,
    /// Who uses it.
    pub principal: Principal,
    /// The connection named by the URI's host, if found.
    pub connection: Option<Connection>,
    /// Grants on that connection.
    pub grants: Vec<Grant>,
}

/// The connection name and decoded sub-path of an `external://` URI; `None` for a direct URI.
pub fn external_name(uri: &str) -> Result<Option<(String, String)>, Error> {
    let is_external =
        uri.split_once("://").is_some_and(|(s, _)| s.eq_ignore_ascii_case("external"));
    if !is_external {
        return Ok(None);
    }
    let url = crate::uri::gourl::parse(uri).map_err(|e| Error::invalid(e.to_string()))?;
    if url.host.is_empty() {
        return Err(Error::invalid(format!(
            "host component of an external URI must refer to an existing External Connection object: {}",
            uri::redact(uri)
        )));
    }
    Ok(Some((url.host, url.path)))
}

/// Checks USAGE and type, joins the sub-path, and returns the target to open.
pub fn resolve(input: &ResolveInput) -> Result<Target, Error> {
    let Some((name, subpath)) = external_name(&input.uri)? else {
        let mut target = uri::parse(&input.uri)?.target;
        target.user = input.principal.name.clone();
        return Ok(target);
    };
    // USAGE is checked before the connection is loaded, so a missing name gives the same error.
    privilege::require_on_connection(&input.principal, &input.grants, &name, ConnPrivilege::Usage)?;
    let connection = input.connection.as_ref().filter(|c| c.name == name).ok_or_else(|| {
        Error::not_found(format!(
            "failed to load external connection object: external connection with name {name} does not exist"
        ))
    })?;
    let wanted = match input.purpose {
        Purpose::Storage | Purpose::ChangefeedSink => ConnectionType::Storage,
        Purpose::Kms => ConnectionType::Kms,
        Purpose::Replication => ConnectionType::ForeignData,
    };
    if connection.connection_type != wanted {
        return Err(Error::invalid(format!(
            "{} cannot use object of type {}",
            wanted.as_str(),
            connection.connection_type.as_str()
        )));
    }
    let mut target = uri::parse(&connection.uri)?.target;
    target.user = input.principal.name.clone();
    // Storage joins the sub-path; KMS keys, sinks and replication streams use the stored URI as is.
    if input.purpose == Purpose::Storage {
        let joined = uri::join_subpath(&target, &subpath);
        // Unlike CockroachDB, `..` cannot climb out of the stored location: USAGE on one
        // connection must not reach the rest of its bucket or node.
        let inside = target.path.is_empty()
            || joined.path == target.path
            || joined.path.starts_with(&format!("{}/", target.path));
        if !inside {
            return Err(Error::invalid(format!(
                "the path {subpath} of external://{name} leaves the location of the external connection"
            )));
        }
        target = joined;
    }
    Ok(target)
}
