//! The statements that use connections — BACKUP, RESTORE, SHOW BACKUP[S], IMPORT, EXPORT — and
//! the database statements. Each resolves every URI it names (USAGE, type, sub-path, parameter
//! case), checks its options, and hands the host an operation plan; the host moves the bytes.
//!
//! A plan's `targets` are the resolved locations; its `detail` is a JSON object that refers to
//! them by index. Shapes, per kind (every plan also has `statement`, the redacted SQL, and
//! `now_micros`):
//!
//! * `BACKUP`: `scope` (`{"cluster":true}`, `{"databases":[…]}` or
//!   `{"tables":[{"database":…|null,"table":…}]}`), `collection` (target indexes),
//!   `subdir` (`null` for a new full backup, `"LATEST"` or a name), `incremental_location`
//!   (indexes), `kms` (indexes), `as_of_micros` (or null), `options` (`revision_history`,
//!   `detached`, `encryption_passphrase`).
//! * `RESTORE`: `scope`, `collection`, `subdir`, `incremental_location`, `kms`,
//!   `as_of_micros`, `options` (`new_db_name`, `into_db`, `detached`, `encryption_passphrase`).
//! * `SHOW BACKUPS`: `collection`. `SHOW BACKUP`: `collection`, `subdir`, `incremental_location`,
//!   `kms`, `options`.
//! * `IMPORT`: `table` (`{"database","table"}`), `columns` (or null), `files` (indexes),
//!   `options` (`delimiter`, `comment`, `nullif`, `skip`, `decompress`, `row_limit`,
//!   `strict_quotes`, `detached`).
//! * `EXPORT`: `destination` (index), `source` (`{"table":{…}}` or `{"query":"…"}`), `options`
//!   (`delimiter`, `nullas`, `chunk_rows`, `chunk_size`, `compression`).
//! * `CREATE DATABASE` (`name`, `if_not_exists`), `DROP DATABASE` (`name`, `if_exists`,
//!   `cascade`), `SHOW DATABASES`, `SHOW TABLES` (`database`), `USE` (`name`), `SHOW JOBS`
//!   (`id`, `user`, `admin`).

use serde_json::{Map, Value as Json, json};

use super::privilege;
use super::resolve::{self, ResolveInput};
use super::{Ctx, Run, answer, grants_on, principal_from};
use crate::error::Error;
use crate::model::{ConnectionType, OperationPlan, Outcome, Principal, Purpose, Request, Target};
use crate::sql::ops::{
    Backup, Export, ExportSource, Import, OptionValue, Restore, Scope, StmtOption, Subdir,
    TableName,
};
use crate::uri;

/// The URIs one statement names, resolved together: one round of reads for all of them.
pub(super) struct Uses {
    uris: Vec<(String, Purpose)>,
}

impl Uses {
    pub(super) fn new() -> Self {
        Self { uris: Vec::new() }
    }

    /// Adds `uris`; returns their target indexes.
    pub(super) fn add(&mut self, uris: &[String], purpose: Purpose) -> Vec<usize> {
        uris.iter()
            .map(|uri| {
                self.uris.push((uri.clone(), purpose));
                self.uris.len() - 1
            })
            .collect()
    }

    /// Reads the principal, the time, and every named connection with its grants, then
    /// resolves each URI in order.
    pub(super) fn resolve(self, ctx: &mut Ctx<'_>) -> Run<(Principal, i64, Vec<Target>)> {
        let user = ctx.session.user.clone();
        let mut names: Vec<String> = Vec::new();
        for (uri, _) in &self.uris {
            if let Some((name, _)) = resolve::external_name(uri)?
                && !names.contains(&name)
            {
                names.push(name);
            }
        }
        let mut requests = vec![Request::ReadPrincipal(user.clone()), Request::Now];
        for name in &names {
            requests.push(Request::ReadConnection(name.clone()));
            requests.push(grants_on(name));
        }
        let mut responses = ctx.io(requests)?.into_iter();
        let principal = principal_from(responses.next().expect("asked"), &user)?;
        let now = answer::now(responses.next().expect("asked"))?;
        let mut found = Vec::new();
        for name in names {
            let connection = answer::connection(responses.next().expect("asked"))?;
            let grants = answer::grants(responses.next().expect("asked"))?;
            found.push((name, connection, grants));
        }
        let mut targets = Vec::new();
        for (uri, purpose) in self.uris {
            let target = match resolve::external_name(&uri)? {
                Some((name, _)) => {
                    let (_, connection, grants) =
                        found.iter().find(|(n, _, _)| *n == name).expect("read above");
                    resolve::resolve(&ResolveInput {
                        uri,
                        purpose,
                        principal: principal.clone(),
                        connection: connection.clone(),
                        grants: grants.clone(),
                    })?
                }
                None => direct(&uri, purpose, &principal)?,
            };
            if purpose == Purpose::Storage && !uri::is_storage_scheme(&target.scheme) {
                return Err(Error::invalid(format!(
                    "unsupported storage scheme: {:?}",
                    target.scheme
                ))
                .into());
            }
            targets.push(target);
        }
        Ok((principal, now, targets))
    }
}

/// A URI given directly: checked like a stored one, with the bare errors of a direct use.
fn direct(uri: &str, purpose: Purpose, principal: &Principal) -> Run<Target> {
    let parsed = uri::parse_direct(uri)?;
    if purpose == Purpose::Kms && parsed.connection_type != ConnectionType::Kms {
        return Err(Error::invalid(format!("unsupported KMS scheme: {:?}", parsed.scheme)).into());
    }
    let mut target = parsed.target;
    target.user = principal.name.clone();
    Ok(target)
}

pub(super) fn plan(kind: &str, targets: Vec<Target>, detail: Json) -> Outcome {
    Outcome::Operation(OperationPlan { kind: kind.to_owned(), targets, detail: detail.to_string() })
}

fn scope_json(scope: &Scope) -> Json {
    match scope {
        Scope::Cluster => json!({ "cluster": true }),
        Scope::Databases(names) => json!({ "databases": names }),
        Scope::Tables(tables) => {
            json!({ "tables": tables.iter().map(table_json).collect::<Vec<_>>() })
        }
    }
}

pub(super) fn table_json(table: &TableName) -> Json {
    json!({ "database": table.database, "table": table.table })
}

fn subdir_json(subdir: Option<&Subdir>) -> Json {
    match subdir {
        None => Json::Null,
        Some(Subdir::Latest) => json!("LATEST"),
        Some(Subdir::Named(name)) => json!(name),
    }
}

/// The option named `name`, if given.
fn option<'o>(options: &'o [StmtOption], name: &str) -> Option<&'o OptionValue> {
    options.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// A location option's URIs (`incremental_location = 'a'` or `= ('a', 'b')`).
fn uris_option(options: &[StmtOption], name: &str) -> Run<Vec<String>> {
    match option(options, name) {
        None => Ok(Vec::new()),
        Some(OptionValue::Str(uri)) => Ok(vec![uri.clone()]),
        Some(OptionValue::List(uris)) => Ok(uris.clone()),
        Some(_) => {
            Err(Error::invalid(format!("option {name:?} takes a string or a list of strings"))
                .into())
        }
    }
}

/// Options as JSON, each checked by its kind: flags are booleans, counts are integers,
/// single characters are one character. Location options are left out (they are targets).
fn options_json(options: &[StmtOption]) -> Run<Json> {
    let mut out = Map::new();
    for (name, value) in options {
        let json = match name.as_str() {
            "incremental_location" | "kms" => continue,
            "revision_history"
            | "detached"
            | "strict_quotes"
            | "allow_quoted_null"
            | "skip_missing_foreign_keys"
            | "as_json"
            | "check_files" => Json::Bool(boolean(name, value)?),
            "skip" | "row_limit" | "chunk_rows" => json!(integer(name, value)?),
            "delimiter" | "comment" => {
                let s = string(name, value)?;
                if s.chars().count() != 1 {
                    return Err(Error::invalid(format!(
                        "invalid value for {name}: {s:?}: must be exactly one character"
                    ))
                    .into());
                }
                json!(s)
            }
            _ => json!(string(name, value)?),
        };
        out.insert(name.clone(), json);
    }
    Ok(Json::Object(out))
}

fn boolean(name: &str, value: &OptionValue) -> Run<bool> {
    match value {
        OptionValue::Flag => Ok(true),
        OptionValue::Expr(e) if e.eq_ignore_ascii_case("true") => Ok(true),
        OptionValue::Expr(e) if e.eq_ignore_ascii_case("false") => Ok(false),
        OptionValue::Str(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        OptionValue::Str(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(Error::invalid(format!("option {name:?} takes a boolean value")).into()),
    }
}

fn integer(name: &str, value: &OptionValue) -> Run<i64> {
    let text = match value {
        OptionValue::Expr(e) | OptionValue::Str(e) => e.trim(),
        _ => "",
    };
    match text.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(Error::invalid(format!(
            "invalid value for {name}: {text:?}: must be a non-negative integer"
        ))
        .into()),
    }
}

fn string(name: &str, value: &OptionValue) -> Run<String> {
    match value {
        OptionValue::Str(s) => Ok(s.clone()),
        OptionValue::Expr(e) => Ok(e.clone()),
        _ => Err(Error::invalid(format!("option {name:?} takes a string value")).into()),
    }
}

/// A full-cluster BACKUP or RESTORE is for admins, as in CockroachDB.
fn require_admin_for_cluster(principal: &Principal, scope: &Scope, what: &str) -> Run<()> {
    if *scope == Scope::Cluster && !privilege::is_admin(principal) {
        return Err(Error::permission_denied(format!(
            "only users with the admin role are allowed to perform full cluster {what}s"
        ))
        .into());
    }
    Ok(())
}

pub(super) fn backup(ctx: &mut Ctx<'_>, b: &Backup) -> Run<Outcome> {
    let mut uses = Uses::new();
    let collection = uses.add(&b.uris, Purpose::Storage);
    let incremental = uses.add(&uris_option(&b.options, "incremental_location")?, Purpose::Storage);
    let kms = uses.add(&uris_option(&b.options, "kms")?, Purpose::Kms);
    let options = options_json(&b.options)?;
    let (principal, now, targets) = uses.resolve(ctx)?;
    require_admin_for_cluster(&principal, &b.scope, "backup")?;
    if !incremental.is_empty() && b.subdir.is_none() {
        return Err(Error::invalid(
            "A full backup cannot be written to \"incremental_location\", which is only for incremental backups",
        )
        .into());
    }
    if option(&b.options, "kms").is_some() && option(&b.options, "encryption_passphrase").is_some()
    {
        return Err(
            Error::invalid("cannot have both encryption_passphrase and kms option set").into()
        );
    }
    let as_of = b.as_of.as_deref().map(|e| super::time::as_of_micros(e, now)).transpose()?;
    Ok(plan(
        "BACKUP",
        targets,
        json!({
            "statement": b.redacted_sql(),
            "now_micros": now,
            "scope": scope_json(&b.scope),
            "collection": collection,
            "subdir": subdir_json(b.subdir.as_ref()),
            "incremental_location": incremental,
            "kms": kms,
            "as_of_micros": as_of,
            "options": options,
        }),
    ))
}

pub(super) fn restore(ctx: &mut Ctx<'_>, r: &Restore) -> Run<Outcome> {
    let mut uses = Uses::new();
    let collection = uses.add(&r.uris, Purpose::Storage);
    let incremental = uses.add(&uris_option(&r.options, "incremental_location")?, Purpose::Storage);
    let kms = uses.add(&uris_option(&r.options, "kms")?, Purpose::Kms);
    let options = options_json(&r.options)?;
    let (principal, now, targets) = uses.resolve(ctx)?;
    require_admin_for_cluster(&principal, &r.scope, "restore")?;
    if option(&r.options, "skip_missing_foreign_keys").is_some() {
        ctx.notice("skip_missing_foreign_keys has no effect: a restored SQLite table keeps its foreign keys as declared");
    }
    if option(&r.options, "new_db_name").is_some() {
        match &r.scope {
            Scope::Databases(names) if names.len() == 1 => {}
            _ => {
                return Err(Error::invalid(
                    "new_db_name can only be used for RESTORE DATABASE with a single target database",
                )
                .into());
            }
        }
    }
    if option(&r.options, "into_db").is_some() && !matches!(r.scope, Scope::Tables(_)) {
        return Err(Error::invalid("into_db can only be used for RESTORE TABLE").into());
    }
    let as_of = r.as_of.as_deref().map(|e| super::time::as_of_micros(e, now)).transpose()?;
    Ok(plan(
        "RESTORE",
        targets,
        json!({
            "statement": r.redacted_sql(),
            "now_micros": now,
            "scope": scope_json(&r.scope),
            "collection": collection,
            "subdir": subdir_json(Some(&r.subdir)),
            "incremental_location": incremental,
            "kms": kms,
            "as_of_micros": as_of,
            "options": options,
        }),
    ))
}

pub(super) fn show_backups(ctx: &mut Ctx<'_>, uris: &[String]) -> Run<Outcome> {
    let mut uses = Uses::new();
    let collection = uses.add(uris, Purpose::Storage);
    let (_, now, targets) = uses.resolve(ctx)?;
    Ok(plan(
        "SHOW BACKUPS",
        targets,
        json!({ "statement": "SHOW BACKUPS IN '*****'", "now_micros": now, "collection": collection }),
    ))
}

pub(super) fn show_backup(
    ctx: &mut Ctx<'_>,
    subdir: &Subdir,
    uris: &[String],
    options: &[StmtOption],
) -> Run<Outcome> {
    let mut uses = Uses::new();
    let collection = uses.add(uris, Purpose::Storage);
    let incremental = uses.add(&uris_option(options, "incremental_location")?, Purpose::Storage);
    let kms = uses.add(&uris_option(options, "kms")?, Purpose::Kms);
    let options = options_json(options)?;
    let (_, now, targets) = uses.resolve(ctx)?;
    Ok(plan(
        "SHOW BACKUP",
        targets,
        json!({
            "statement": "SHOW BACKUP",
            "now_micros": now,
            "collection": collection,
            "subdir": subdir_json(Some(subdir)),
            "incremental_location": incremental,
            "kms": kms,
            "options": options,
        }),
    ))
}

pub(super) fn import(ctx: &mut Ctx<'_>, i: &Import) -> Run<Outcome> {
    let mut uses = Uses::new();
    let files = uses.add(&i.uris, Purpose::Storage);
    let options = options_json(&i.options)?;
    let (_, now, targets) = uses.resolve(ctx)?;
    Ok(plan(
        "IMPORT",
        targets,
        json!({
            "statement": i.redacted_sql(),
            "now_micros": now,
            "table": table_json(&i.table),
            "columns": i.columns,
            "files": files,
            "options": options,
        }),
    ))
}

pub(super) fn export(ctx: &mut Ctx<'_>, e: &Export) -> Run<Outcome> {
    let mut uses = Uses::new();
    let destination = uses.add(std::slice::from_ref(&e.uri), Purpose::Storage)[0];
    let options = options_json(&e.options)?;
    let (_, now, targets) = uses.resolve(ctx)?;
    let source = match &e.source {
        ExportSource::Table(t) => json!({ "table": table_json(t) }),
        ExportSource::Query(q) => json!({ "query": q }),
    };
    Ok(plan(
        "EXPORT",
        targets,
        json!({
            "statement": e.redacted_sql(),
            "now_micros": now,
            "destination": destination,
            "source": source,
            "options": options,
        }),
    ))
}

/// A statement about databases or jobs: the host knows them; the plan says who asks.
pub(super) fn host_statement(ctx: &mut Ctx<'_>, kind: &str, mut detail: Json) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let principal = principal_from(ctx.one(Request::ReadPrincipal(user.clone()))?, &user)?;
    detail["user"] = json!(user);
    detail["admin"] = json!(privilege::is_admin(&principal));
    Ok(plan(kind, Vec::new(), detail))
}
