//! BACKUP, RESTORE, SHOW BACKUPS and SHOW BACKUP: the component's plan, carried out with the
//! backup engine of `extconn-providers` (chunked, content-addressed, manifest last).

use serde_json::Value as Json;

use super::{Ctx, Plan, current, field};
use crate::databases;
use crate::model::{Column, ErrorKind, Outcome, Rows, SqlError, Value};
use extconn_providers::backup::{
    self, BackupOptions, DatabaseSource, Destination, EncryptionKey, ObjectType, RestoreOptions,
};
use extconn_providers::storage::Location;

/// Runs a `BACKUP` plan.
pub(crate) fn run_backup(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let encryption = encryption(ctx, plan)?;
    let collection = collection(ctx, plan)?;
    let incremental = incremental_location(ctx, plan)?;
    let sources = sources(ctx, &plan.detail["scope"])?;
    let destination = match plan.detail["subdir"].as_str() {
        None => Destination::NewFull,
        Some("LATEST") => Destination::Latest,
        Some(name) => Destination::Subdir(name.to_owned()),
    };
    if let Some(as_of) = plan.detail["as_of_micros"].as_i64() {
        ctx.notices.push(format!(
            "AS OF SYSTEM TIME {}: SQLite keeps no history, so the backup holds the data as of \
             the moment it is taken, not as of that time",
            crate::jobs::timestamp(as_of)
        ));
    }
    let options = &plan.detail["options"];
    let revision_history = options["revision_history"].as_bool().unwrap_or(false);
    let scratch = ctx.databases.dir().join(".scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| local_error("create", &scratch, &e))?;
    let (job, reporter) = ctx.start_job(plan)?;
    let report = |p: backup::Progress| reporter.report(p.bytes_done, p.bytes_total);
    let backup_options = BackupOptions {
        destination,
        incremental_location: incremental.as_ref(),
        revision_history,
        scratch_dir: Some(scratch),
        progress: Some(&report),
        encryption,
        ..BackupOptions::default()
    };
    let result = ctx
        .tokio
        .block_on(backup::backup(&collection, &sources, &backup_options))
        .map_err(|e| engine_error(&e));
    drop(backup_options);
    drop(reporter);
    let summary = ctx.finish_job(job, result)?;
    let rows: u64 = summary.databases.iter().flat_map(|d| &d.tables).map(|t| t.rows).sum();
    ctx.notices.push(format!(
        "{} backup {} written: {} of {} bytes uploaded ({} of {} chunks new)",
        summary.kind.as_str(),
        summary.dir,
        summary.bytes_uploaded,
        summary.bytes_total,
        summary.chunks_uploaded,
        summary.chunks_total
    ));
    Ok(job_row(job, rows, summary.bytes_total))
}

/// Runs a `RESTORE` plan.
pub(crate) fn run_restore(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let encryption = encryption(ctx, plan)?;
    let collection = collection(ctx, plan)?;
    let incremental = incremental_location(ctx, plan)?;
    let options = plan.detail["options"].clone();
    let scope = &plan.detail["scope"];
    let subdir = match plan.detail["subdir"].as_str() {
        Some("LATEST") | None => None,
        Some(name) => Some(name.to_owned()),
    };
    let as_of = plan.detail["as_of_micros"].as_i64();
    let default_db = current(ctx);
    // What to fetch: database names in the backup, and for RESTORE TABLE, which tables of each.
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(names) = scope["databases"].as_array() {
        for name in names.iter().filter_map(Json::as_str) {
            wanted.push((name.to_owned(), Vec::new()));
        }
    } else if let Some(tables) = scope["tables"].as_array() {
        for t in tables {
            let db = t["database"].as_str().map_or_else(|| default_db.clone(), str::to_owned);
            let table = t["table"].as_str().unwrap_or_default().to_owned();
            match wanted.iter_mut().find(|(d, _)| *d == db) {
                Some((_, list)) => list.push(table),
                None => wanted.push((db, vec![table])),
            }
        }
    }
    let tables_restore = scope.get("tables").is_some();
    // Refuse before any download what would overwrite.
    if !tables_restore {
        for (name, _) in &wanted {
            let target = options["new_db_name"].as_str().unwrap_or(name);
            if ctx.databases.exists(target) {
                return Err(database_exists(target));
            }
        }
    }
    let restore_dir = ctx.databases.dir().to_owned();
    std::fs::create_dir_all(&restore_dir).map_err(|e| local_error("create", &restore_dir, &e))?;
    let (job, reporter) = ctx.start_job(plan)?;
    let report = |p: backup::Progress| reporter.report(p.bytes_done, p.bytes_total);
    let restore_options = RestoreOptions {
        subdir,
        as_of,
        databases: wanted.iter().map(|(d, _)| d.clone()).collect(),
        incremental_location: incremental.as_ref(),
        progress: Some(&report),
        encryption,
        ..RestoreOptions::default()
    };
    let restored = ctx.tokio.block_on(backup::restore(&collection, &restore_dir, &restore_options));
    drop(restore_options);
    drop(reporter);
    let result = restored.map_err(|e| engine_error(&e)).and_then(|restored| {
        let mut rows = 0u64;
        let mut bytes = 0u64;
        if tables_restore {
            for db in &restored.databases {
                let tables = wanted.iter().find(|(d, _)| *d == db.name).map(|(_, t)| t.clone());
                let into_name =
                    options["into_db"].as_str().map_or_else(|| db.name.clone(), str::to_owned);
                if !ctx.databases.exists(&into_name) && into_name != databases::DEFAULT_DATABASE {
                    return Err(databases::does_not_exist(&into_name));
                }
                let conn = ctx.databases.connection(&into_name)?;
                let copied = backup::copy_tables(db, &tables.unwrap_or_default(), conn)
                    .map_err(|e| engine_error(&e))?;
                rows += copied.iter().map(|t| t.rows).sum::<u64>();
                bytes += copied.iter().map(|t| t.size_bytes).sum::<u64>();
            }
        } else {
            for db in restored.databases {
                let name =
                    options["new_db_name"].as_str().map_or_else(|| db.name.clone(), str::to_owned);
                if ctx.databases.exists(&name) {
                    return Err(database_exists(&name));
                }
                rows += db.rows();
                bytes += db.size_bytes;
                ctx.databases.close(&name);
                db.persist(&ctx.databases.path(&name)).map_err(|e| engine_error(&e))?;
            }
        }
        Ok((rows, bytes))
    });
    let (rows, bytes) = ctx.finish_job(job, result)?;
    Ok(job_row(job, rows, bytes))
}

/// Runs a `SHOW BACKUPS` plan: one row per full backup in the collection.
pub(crate) fn run_show_backups(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let collection = collection(ctx, plan)?;
    let paths =
        ctx.tokio.block_on(backup::list_backups(&collection)).map_err(|e| engine_error(&e))?;
    Ok(Outcome::Rows(Rows {
        columns: vec![column("path", "STRING")],
        rows: paths.into_iter().map(|p| vec![Value::Text(p)]).collect(),
    }))
}

/// Runs a `SHOW BACKUP` plan: what each backup of a chain holds.
pub(crate) fn run_show_backup(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let encryption = encryption(ctx, plan)?;
    let collection = collection(ctx, plan)?;
    let incremental = incremental_location(ctx, plan)?;
    let subdir = match plan.detail["subdir"].as_str() {
        Some("LATEST") | None => None,
        Some(name) => Some(name.to_owned()),
    };
    let describe =
        backup::describe(&collection, subdir.as_deref(), incremental.as_ref(), encryption.as_ref());
    let rows = ctx.tokio.block_on(describe).map_err(|e| engine_error(&e))?;
    let columns = [
        ("database_name", "STRING"),
        ("parent_schema_name", "STRING"),
        ("object_name", "STRING"),
        ("object_type", "STRING"),
        ("backup_type", "STRING"),
        ("start_time", "TIMESTAMP"),
        ("end_time", "TIMESTAMP"),
        ("size_bytes", "INT8"),
        ("rows", "INT8"),
        ("is_full_cluster", "BOOL"),
    ]
    .into_iter()
    .map(|(n, t)| column(n, t))
    .collect();
    let rows = rows
        .into_iter()
        .map(|r| {
            let table = r.object_type == ObjectType::Table;
            vec![
                if table { Value::Text(r.database_name.clone()) } else { Value::Null },
                if table { Value::Text("public".into()) } else { Value::Null },
                Value::Text(r.object_name),
                Value::Text(if table { "table" } else { "database" }.into()),
                Value::Text(r.backup_type.as_str().into()),
                r.start_time_micros.map_or(Value::Null, |t| Value::Text(show_time(t))),
                Value::Text(show_time(r.end_time_micros)),
                Value::Int(i64::try_from(r.size_bytes).unwrap_or(i64::MAX)),
                Value::Int(i64::try_from(r.rows).unwrap_or(i64::MAX)),
                Value::Boolean(false),
            ]
        })
        .collect();
    Ok(Outcome::Rows(Rows { columns, rows }))
}

fn show_time(micros: i64) -> String {
    backup::manifest::show_time(micros)
}

/// The key of `WITH kms = …` (the plan's resolved KMS targets, one or more) or of
/// `WITH encryption_passphrase`; the component refuses both at once.
fn encryption(ctx: &Ctx<'_>, plan: &Plan) -> Result<Option<EncryptionKey>, SqlError> {
    let kms = plan.detail["kms"].as_array().cloned().unwrap_or_default();
    if !kms.is_empty() {
        let keys = kms
            .iter()
            .map(|index| {
                let target = index
                    .as_u64()
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| plan.targets.get(i))
                    .ok_or_else(|| {
                        SqlError::internal(format!(
                            "the {} plan has no KMS target {index}",
                            plan.kind
                        ))
                    })?;
                extconn_providers::kms::Kms::open(ctx.config, target)
                    .map_err(|e| provider_error(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(EncryptionKey::Kms(keys)));
    }
    match plan.detail["options"].get("encryption_passphrase") {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(p)) if !p.is_empty() => Ok(Some(EncryptionKey::Passphrase(p.clone()))),
        Some(_) => Err(SqlError::new(
            ErrorKind::InvalidArgument,
            "22023",
            "encryption_passphrase must be a non-empty string",
        )),
    }
}

/// The collection: one location (CockroachDB's locality-aware lists are not supported).
fn collection(ctx: &Ctx<'_>, plan: &Plan) -> Result<Location, SqlError> {
    let indexes = field(plan, "collection")?.as_array().cloned().unwrap_or_default();
    if indexes.len() > 1 {
        return Err(SqlError::unsupported(
            "locality-aware backups (a list of collection URIs) are not supported: give one URI",
        ));
    }
    let index = indexes
        .first()
        .and_then(Json::as_u64)
        .ok_or_else(|| SqlError::internal(format!("the {} plan names no collection", plan.kind)))?;
    open(ctx, plan, index)
}

fn incremental_location(ctx: &Ctx<'_>, plan: &Plan) -> Result<Option<Location>, SqlError> {
    let indexes = plan.detail["incremental_location"].as_array().cloned().unwrap_or_default();
    if indexes.len() > 1 {
        return Err(SqlError::unsupported(
            "locality-aware incremental locations (a list of URIs) are not supported: give one URI",
        ));
    }
    indexes.first().and_then(Json::as_u64).map(|i| open(ctx, plan, i)).transpose()
}

/// Opens target `index` of the plan.
pub(crate) fn open(ctx: &Ctx<'_>, plan: &Plan, index: u64) -> Result<Location, SqlError> {
    let target =
        usize::try_from(index).ok().and_then(|i| plan.targets.get(i)).ok_or_else(|| {
            SqlError::internal(format!("the {} plan has no target {index}", plan.kind))
        })?;
    ctx.stores.open(ctx.config, target).map_err(|e| provider_error(&e))
}

/// The databases a BACKUP covers.
fn sources(ctx: &mut Ctx<'_>, scope: &Json) -> Result<Vec<DatabaseSource>, SqlError> {
    let default_db = current(ctx);
    let mut sources: Vec<DatabaseSource> = Vec::new();
    let mut add = |ctx: &mut Ctx<'_>, name: &str, table: Option<&str>| {
        if !ctx.databases.exists(name) {
            return Err(databases::does_not_exist(name));
        }
        if let Some(table) = table
            && !ctx.databases.tables(name)?.iter().any(|t| t == table)
        {
            return Err(SqlError::new(
                ErrorKind::NotFound,
                "42P01",
                format!("table {name:?}.{table:?} does not exist").replace('"', ""),
            ));
        }
        let path = ctx.databases.path(name);
        match sources.iter_mut().find(|s| s.name == name) {
            Some(source) => source.tables.extend(table.map(str::to_owned)),
            None => sources.push(DatabaseSource {
                name: name.to_owned(),
                path,
                tables: table.map(str::to_owned).into_iter().collect(),
            }),
        }
        Ok(())
    };
    if scope.get("cluster").is_some() {
        for name in ctx.databases.list()? {
            add(ctx, &name, None)?;
        }
        if sources.is_empty() {
            return Err(SqlError::new(
                ErrorKind::NotFound,
                "3D000",
                "there is no database to back up",
            ));
        }
    } else if let Some(names) = scope["databases"].as_array() {
        for name in names.iter().filter_map(Json::as_str) {
            add(ctx, name, None)?;
        }
    } else if let Some(tables) = scope["tables"].as_array() {
        for t in tables {
            let db = t["database"].as_str().map_or_else(|| default_db.clone(), str::to_owned);
            add(ctx, &db, t["table"].as_str())?;
        }
    }
    Ok(sources)
}

/// CockroachDB's BACKUP and RESTORE result: `job_id, status, fraction_completed, rows,
/// index_entries, bytes`.
fn job_row(job: i64, rows: u64, bytes: u64) -> Outcome {
    let columns = [
        ("job_id", "INT8"),
        ("status", "STRING"),
        ("fraction_completed", "FLOAT4"),
        ("rows", "INT8"),
        ("index_entries", "INT8"),
        ("bytes", "INT8"),
    ]
    .into_iter()
    .map(|(n, t)| column(n, t))
    .collect();
    let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Outcome::Rows(Rows {
        columns,
        rows: vec![vec![
            Value::Int(job),
            Value::Text("succeeded".into()),
            Value::Float(1.0),
            int(rows),
            int(0),
            int(bytes),
        ]],
    })
}

fn column(name: &str, sql_type: &str) -> Column {
    Column { name: name.to_owned(), sql_type: sql_type.to_owned() }
}

fn database_exists(name: &str) -> SqlError {
    SqlError::new(ErrorKind::AlreadyExists, "42P04", format!("database {name:?} already exists"))
}

/// The backup engine's error, with a SQLSTATE.
pub(crate) fn engine_error(error: &backup::Error) -> SqlError {
    use backup::ErrorKind as K;
    let (kind, state) = match error.kind() {
        K::InvalidArgument => (ErrorKind::InvalidArgument, "22023"),
        K::NotFound => (ErrorKind::NotFound, "42704"),
        K::AlreadyExists => (ErrorKind::AlreadyExists, "42P07"),
        K::Corrupt => (ErrorKind::Internal, "XX001"),
        K::Storage => (ErrorKind::Unavailable, "58030"),
        K::Local => (ErrorKind::Unavailable, "58030"),
        K::Unsupported => (ErrorKind::Unsupported, "0A000"),
        // Not 28P01: the session is authenticated and clients read class 28 as a failed
        // login; a passphrase is an option's value, like every other value refused here.
        K::WrongKey => (ErrorKind::InvalidArgument, "22023"),
        K::Internal => (ErrorKind::Internal, "XX000"),
    };
    SqlError::new(kind, state, crate::error_chain(error))
}

/// A provider's error opening a location.
pub(crate) fn provider_error(error: &extconn_providers::Error) -> SqlError {
    SqlError::new(ErrorKind::Unavailable, "58030", error.message())
}

fn local_error(what: &str, path: &std::path::Path, e: &std::io::Error) -> SqlError {
    SqlError::new(
        ErrorKind::Unavailable,
        "58030",
        format!("could not {what} {}: {e}", path.display()),
    )
}
