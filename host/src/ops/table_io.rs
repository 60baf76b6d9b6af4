//! IMPORT INTO … CSV DATA and EXPORT INTO CSV: the component's plan, carried out with the CSV
//! engine of `extconn-providers` (streamed, one transaction per import).

use serde_json::Value as Json;

use super::backup::open;
use super::{Ctx, Plan, current, field};
use crate::databases;
use crate::model::{Column, ErrorKind, Outcome, Rows, SqlError, Value};
use extconn_providers::csvio::{self, ExportOptions, ImportOptions, Source};

/// Options the host handles itself, not the CSV engine.
const HOST_OPTIONS: &[&str] = &["detached"];

/// Runs an `IMPORT` plan.
pub(crate) fn run_import(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let options =
        ImportOptions::from_pairs(&pairs(&plan.detail["options"])).map_err(|e| engine_error(&e))?;
    let (database, table) = table(ctx, plan)?;
    let columns: Option<Vec<String>> = plan.detail["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(Json::as_str).map(str::to_owned).collect());
    let mut sources = Vec::new();
    for index in field(plan, "files")?.as_array().into_iter().flatten().filter_map(Json::as_u64) {
        let location = open(ctx, plan, index)?;
        let display = plan.targets[usize::try_from(index).unwrap_or_default()].display();
        sources.push(Source { location, key: String::new(), display });
    }
    let (job, reporter) = ctx.start_job(plan)?;
    let mut report = |p: csvio::Progress| reporter.report(p.bytes_done, p.bytes_total.unwrap_or(0));
    let result = ctx.databases.connection(&database).and_then(|conn| {
        ctx.tokio
            .block_on(csvio::import_csv(
                conn,
                &table,
                columns.as_deref(),
                &sources,
                &options,
                &mut report,
            ))
            .map_err(|e| engine_error(&e))
    });
    drop(reporter);
    let summary = ctx.finish_job(job, result)?;
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Ok(Outcome::Rows(Rows {
        columns: columns_of(&[
            ("job_id", "INT8"),
            ("status", "STRING"),
            ("fraction_completed", "FLOAT4"),
            ("rows", "INT8"),
            ("index_entries", "INT8"),
            ("bytes", "INT8"),
        ]),
        rows: vec![vec![
            Value::Int(job),
            Value::Text("succeeded".into()),
            Value::Float(1.0),
            int(summary.rows),
            int(0),
            int(summary.bytes),
        ]],
    }))
}

/// Runs an `EXPORT` plan: one row per file written (`filename, rows, bytes`).
pub(crate) fn run_export(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let options =
        ExportOptions::from_pairs(&pairs(&plan.detail["options"])).map_err(|e| engine_error(&e))?;
    let destination = field(plan, "destination")?.as_u64().unwrap_or_default();
    let location = open(ctx, plan, destination)?;
    let source = &plan.detail["source"];
    let (database, table_name) = match source.get("table") {
        Some(t) => {
            let db = t["database"].as_str().map_or_else(|| current(ctx), str::to_owned);
            (db, Some(t["table"].as_str().unwrap_or_default().to_owned()))
        }
        None => (current(ctx), None),
    };
    if database != databases::DEFAULT_DATABASE && !ctx.databases.exists(&database) {
        return Err(databases::does_not_exist(&database));
    }
    let query = source["query"].as_str().unwrap_or_default().to_owned();
    let export_source = match &table_name {
        Some(t) => csvio::ExportSource::Table(t),
        None => csvio::ExportSource::Query(&query),
    };
    let progress = ctx.progress;
    let mut report = |p: csvio::Progress| {
        if let Some(progress) = progress {
            progress("EXPORT", p.bytes_done, p.bytes_total.unwrap_or(0));
        }
    };
    let conn = ctx.databases.connection(&database)?;
    let files = ctx
        .tokio
        .block_on(csvio::export_csv(conn, export_source, &location, &options, &mut report))
        .map_err(|e| engine_error(&e))?;
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Ok(Outcome::Rows(Rows {
        columns: columns_of(&[("filename", "STRING"), ("rows", "INT8"), ("bytes", "INT8")]),
        rows: files
            .into_iter()
            .map(|f| vec![Value::Text(f.filename), int(f.rows), int(f.bytes)])
            .collect(),
    }))
}

/// The import's table: (database, table).
fn table(ctx: &Ctx<'_>, plan: &Plan) -> Result<(String, String), SqlError> {
    let t = field(plan, "table")?;
    let database = t["database"].as_str().map_or_else(|| current(ctx), str::to_owned);
    if database != databases::DEFAULT_DATABASE && !ctx.databases.exists(&database) {
        return Err(databases::does_not_exist(&database));
    }
    Ok((database, t["table"].as_str().unwrap_or_default().to_owned()))
}

/// The plan's options as the engine takes them: `(name, value)`, flags without a value.
fn pairs(options: &Json) -> Vec<(String, Option<String>)> {
    let Some(map) = options.as_object() else { return Vec::new() };
    map.iter()
        .filter(|(name, _)| !HOST_OPTIONS.contains(&name.as_str()))
        .map(|(name, value)| {
            let value = match value {
                Json::String(s) => Some(s.clone()),
                Json::Bool(true) => None,
                other => Some(other.to_string()),
            };
            (name.clone(), value)
        })
        .collect()
}

fn columns_of(columns: &[(&str, &str)]) -> Vec<Column> {
    columns
        .iter()
        .map(|(n, t)| Column { name: (*n).to_owned(), sql_type: (*t).to_owned() })
        .collect()
}

/// The CSV engine's error, with its SQLSTATE.
fn engine_error(error: &csvio::Error) -> SqlError {
    let state = error.sqlstate();
    let kind = match &state[..2] {
        "22" | "23" | "42" => ErrorKind::InvalidArgument,
        "0A" => ErrorKind::Unsupported,
        "58" => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    let kind = if state == "42P01" || state == "42703" { ErrorKind::NotFound } else { kind };
    SqlError::new(kind, state, error.message())
}
