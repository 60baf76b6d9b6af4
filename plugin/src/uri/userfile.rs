//! `userfile://[database.schema.table]/path`: files stored in a SQL table of the catalog.

use super::params::{Ctx, LOCALITY, ParamError, SchemeDef, Unknown};
use super::{Check, go};
use crate::model::ConnectionType;

pub(crate) const USERFILE: SchemeDef = SchemeDef {
    schemes: &["userfile"],
    provider: "userfile",
    connection_type: ConnectionType::Storage,
    check: Check::Storage,
    wrapper: Some("failed to create userfile external connection"),
    unknown: Unknown::Reject("userfile"),
    params: &[LOCALITY],
    title: "User-scoped file storage",
    summary: "Files kept in a table of the catalog database. The host is the qualified table name; \
              without one, the table is `defaultdb.public.userfiles_<user>` of the user *using* the \
              connection. The path must already be in normal form (no `.`, `..`, `//`).",
    example: "userfile://defaultdb.public.userfiles_root/backups",
    validate,
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    c.unknown(&[])?;
    let path = c.url.path.as_str();
    // An empty path is the root (CockroachDB compares it with `path.Clean("") == "."`).
    if !path.is_empty() && go::clean(path) != path {
        let trimmed = path.strip_suffix(".tmp").unwrap_or(path);
        return Err(format!(
            "path {trimmed} changes after normalization to {}. userfile upload does not permit such path constructs",
            go::clean(trimmed)
        )
        .into());
    }
    Ok(())
}
