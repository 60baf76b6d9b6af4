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
use crate::databases::{self, Databases};
use crate::model::{Column, Outcome, Rows, SqlError, Value};
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
    /// The databases.
    pub databases: &'a mut Databases,
    /// The script's current database (`USE` changes it).
    pub database: &'a mut Option<String>,
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
        "CREATE DATABASE" => {
            let name = str_field(&plan, "name")?;
            let if_not_exists = bool_field(&plan, "if_not_exists");
            if !ctx.databases.create(name, if_not_exists)? {
                ctx.notices.push(format!("database {name:?} already exists, skipping"));
            }
            Ok(Outcome::Command("CREATE DATABASE".into()))
        }
        "DROP DATABASE" => {
            let name = str_field(&plan, "name")?;
            let (if_exists, cascade) =
                (bool_field(&plan, "if_exists"), bool_field(&plan, "cascade"));
            if !ctx.databases.drop(name, if_exists, cascade)? {
                ctx.notices.push(format!("database {name:?} does not exist, skipping"));
            }
            Ok(Outcome::Command("DROP DATABASE".into()))
        }
        "SHOW DATABASES" => {
            let names = ctx.databases.list()?;
            Ok(one_column("database_name", names))
        }
        "SHOW TABLES" => {
            let name = match plan.detail.get("database").and_then(Json::as_str) {
                Some(name) => name.to_owned(),
                None => current(ctx),
            };
            if name != databases::DEFAULT_DATABASE && !ctx.databases.exists(&name) {
                return Err(databases::does_not_exist(&name));
            }
            let tables = ctx.databases.tables(&name)?;
            Ok(one_column("table_name", tables))
        }
        "USE" => {
            let name = str_field(&plan, "name")?;
            if name != databases::DEFAULT_DATABASE && !ctx.databases.exists(name) {
                return Err(databases::does_not_exist(name));
            }
            *ctx.database = Some(name.to_owned());
            Ok(Outcome::Command("SET".into()))
        }
        other => Err(SqlError::unsupported(format!(
            "extconn does not run this statement yet: {other} is not available yet"
        ))),
    }
}

/// Runs SQL the component does not own in the script's current database.
pub(crate) fn passthrough(ctx: &mut Ctx<'_>, sql: &str) -> Result<Outcome, SqlError> {
    let name = current(ctx);
    ctx.databases.run_sql(&name, sql)
}

/// The script's current database, or the default one.
pub(crate) fn current(ctx: &Ctx<'_>) -> String {
    ctx.database.clone().unwrap_or_else(|| databases::DEFAULT_DATABASE.to_owned())
}

fn one_column(name: &str, values: Vec<String>) -> Outcome {
    Outcome::Rows(Rows {
        columns: vec![Column { name: name.to_owned(), sql_type: "STRING".to_owned() }],
        rows: values.into_iter().map(|v| vec![Value::Text(v)]).collect(),
    })
}

/// The plan's `detail` field `name`, or an internal error naming it: the component and the
/// host disagree about a plan's shape only through a bug.
pub(crate) fn field<'j>(plan: &'j Plan, name: &str) -> Result<&'j Json, SqlError> {
    plan.detail
        .get(name)
        .ok_or_else(|| SqlError::internal(format!("the {} plan has no {name:?} field", plan.kind)))
}

/// A string field of the plan.
pub(crate) fn str_field<'j>(plan: &'j Plan, name: &str) -> Result<&'j str, SqlError> {
    field(plan, name)?.as_str().ok_or_else(|| {
        SqlError::internal(format!("the {} plan's {name:?} field is not a string", plan.kind))
    })
}

/// A boolean field of the plan (absent is false).
pub(crate) fn bool_field(plan: &Plan, name: &str) -> bool {
    plan.detail.get(name).and_then(Json::as_bool).unwrap_or(false)
}
