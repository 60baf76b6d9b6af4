//! Operations: work the component plans and the host carries out (BACKUP, RESTORE, IMPORT,
//! EXPORT, CHECK, database statements, and SQL passed through to a database).
//!
//! The component has already parsed the statement, resolved every `external://` URI (USAGE,
//! type, sub-path) and checked every option; a [`Plan`] names the resolved targets and carries
//! the rest as JSON (`detail`, documented per kind in the module that runs it). The host moves
//! the bytes: bulk data never passes through the component.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::catalog::Catalog;
use crate::model::{Outcome, SqlError};
use extconn_providers as providers;

mod check;

/// A planned operation, with its targets converted for the providers.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `BACKUP`, `RESTORE`, `CHECK`, …
    pub kind: String,
    /// The resolved locations, in the order `detail` refers to them (by index).
    pub targets: Vec<providers::Target>,
    /// The rest of the plan.
    pub detail: Json,
}

/// What an operation may use: the catalog, the providers, the I/O runtime, and the script's
/// session state.
pub(crate) struct Ctx<'a> {
    pub catalog: &'a mut Catalog,
    pub config: &'a Arc<providers::Config>,
    pub stores: &'a Arc<providers::storage::Cache>,
    pub tokio: &'a tokio::runtime::Runtime,
    /// The user the script runs as.
    pub user: &'a str,
    /// NOTICEs for the statement's result.
    pub notices: Vec<String>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Runs `plan`.
pub(crate) fn run(ctx: &mut Ctx<'_>, plan: Plan) -> Result<Outcome, SqlError> {
    match plan.kind.as_str() {
        "CHECK" => check::run(ctx, plan),
        other => Err(SqlError::unsupported(format!(
            "extconn does not run this statement yet: {other} is not available yet"
        ))),
    }
}

/// The plan's `detail` field `name`, or an internal error naming it: the component and the
/// host disagree about a plan's shape only through a bug.
#[allow(dead_code)]
pub(crate) fn field<'j>(plan: &'j Plan, name: &str) -> Result<&'j Json, SqlError> {
    plan.detail
        .get(name)
        .ok_or_else(|| SqlError::internal(format!("the {} plan has no {name:?} field", plan.kind)))
}
