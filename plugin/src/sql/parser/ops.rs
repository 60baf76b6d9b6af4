//! The grammar of the statements that use connections, and of the database statements.

use super::{Cursor, is_reserved};
use crate::sql::lexer::Kind;
use crate::sql::ops::{
    Backup, Changefeed, Export, ExportSource, Import, JobControl, OptionValue, Restore, Scope,
    StmtOption, Subdir, TableName,
};
use crate::sql::{ParseError, Statement};

/// BACKUP's options (CockroachDB's `backup_options`, less what has no meaning here).
const BACKUP_OPTIONS: &[&str] =
    &["revision_history", "detached", "incremental_location", "kms", "encryption_passphrase"];
/// RESTORE's options.
const RESTORE_OPTIONS: &[&str] = &[
    "new_db_name",
    "into_db",
    "detached",
    "incremental_location",
    "kms",
    "encryption_passphrase",
    "skip_missing_foreign_keys",
];
/// SHOW BACKUP's options.
const SHOW_BACKUP_OPTIONS: &[&str] =
    &["incremental_location", "kms", "encryption_passphrase", "as_json", "check_files"];
/// IMPORT … CSV DATA's options.
const IMPORT_OPTIONS: &[&str] = &[
    "delimiter",
    "comment",
    "nullif",
    "skip",
    "decompress",
    "row_limit",
    "strict_quotes",
    "allow_quoted_null",
    "detached",
];
/// EXPORT INTO CSV's options.
const EXPORT_OPTIONS: &[&str] = &["delimiter", "nullas", "chunk_rows", "chunk_size", "compression"];

/// CREATE CHANGEFEED's options (CockroachDB's, less the formats and features extconn does not
/// have, which are refused by name when the statement runs).
const CHANGEFEED_OPTIONS: &[&str] = &[
    "resolved",
    "updated",
    "diff",
    "key_in_value",
    "topic_in_value",
    "envelope",
    "initial_scan",
    "no_initial_scan",
    "initial_scan_only",
    "format",
    "min_checkpoint_frequency",
    "kafka_sink_config",
    "webhook_sink_config",
    "webhook_auth_header",
    "webhook_client_timeout",
    "full_table_name",
    "cursor",
    "end_time",
    "mvcc_timestamp",
    "on_error",
    "schema_change_policy",
    "schema_change_events",
    "split_column_families",
    "compression",
    "file_size",
    "confluent_schema_registry",
    "avro_schema_prefix",
    "key_column",
    "unordered",
    "virtual_columns",
    "lagging_ranges_threshold",
    "lagging_ranges_polling_interval",
    "metrics_label",
    "gc_protect_expires_after",
    "protect_data_from_gc_on_pause",
    "encode_json_value_null_as_object",
    "headers_json_column_name",
];

/// `CREATE CHANGEFEED FOR [TABLE] t, … INTO 'uri' [WITH …]`
pub(super) fn create_changefeed(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("for")?;
    c.eat_keyword("table");
    let tables = c.list(|c| {
        c.eat_keyword("table");
        c.table_name()
    })?;
    c.expect_keyword("into")?;
    let uri = c.string_or_placeholder()?;
    let options = c.with_options(CHANGEFEED_OPTIONS)?;
    c.expect_end()?;
    Ok(Statement::CreateChangefeed(Changefeed { tables, uri, options }))
}

/// `PAUSE JOB id`, `RESUME JOB id`, `CANCEL JOB id`
pub(super) fn pause_job(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    job_control(c, JobControl::Pause)
}

/// `RESUME JOB id`
pub(super) fn resume_job(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    job_control(c, JobControl::Resume)
}

/// `CANCEL JOB id`
pub(super) fn cancel_job(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    job_control(c, JobControl::Cancel)
}

fn job_control(c: &mut Cursor<'_>, action: JobControl) -> Result<Statement, ParseError> {
    let id = c.job_id()?;
    c.expect_end()?;
    Ok(Statement::ControlJob { action, id })
}

/// `SHOW CHANGEFEED JOBS`, `SHOW CHANGEFEED JOB id`
pub(super) fn show_changefeed_jobs(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let id = if c.eat_keyword("jobs") {
        None
    } else {
        c.expect_keyword("job")?;
        Some(c.job_id()?)
    };
    c.expect_end()?;
    Ok(Statement::ShowChangefeedJobs { id })
}

/// `BACKUP [TABLE t, … | DATABASE d, …] INTO [LATEST IN | 'subdir' IN] uri [AS OF SYSTEM TIME e]
/// [WITH …]`
pub(super) fn backup(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let scope = c.scope()?;
    c.expect_keyword("into")?;
    let subdir = if c.eat_keyword("latest") {
        c.expect_keyword("in")?;
        Some(Subdir::Latest)
    } else if c.is_keyword_at(1, "in") {
        let subdir = c.string_or_placeholder()?;
        c.expect_keyword("in")?;
        Some(Subdir::Named(subdir))
    } else {
        None
    };
    let uris = c.uris()?;
    let as_of = c.as_of_system_time()?;
    let options = c.with_options(BACKUP_OPTIONS)?;
    c.expect_end()?;
    Ok(Statement::Backup(Backup { scope, subdir, uris, as_of, options }))
}

/// `RESTORE [TABLE t, … | DATABASE d, …] FROM LATEST | 'subdir' IN uri [AS OF SYSTEM TIME e]
/// [WITH …]`
pub(super) fn restore(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let scope = c.scope()?;
    c.expect_keyword("from")?;
    let subdir = c.subdir()?;
    c.expect_keyword("in")?;
    let uris = c.uris()?;
    let as_of = c.as_of_system_time()?;
    let options = c.with_options(RESTORE_OPTIONS)?;
    c.expect_end()?;
    Ok(Statement::Restore(Restore { scope, subdir, uris, as_of, options }))
}

/// `SHOW BACKUPS IN uri`
pub(super) fn show_backups(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("in")?;
    let uris = c.uris()?;
    c.expect_end()?;
    Ok(Statement::ShowBackups { uris })
}

/// `SHOW BACKUP [FROM] LATEST | 'subdir' IN uri [WITH …]`, and `SHOW BACKUP CONNECTION …`
/// (CHECK EXTERNAL CONNECTION's predecessor).
pub(super) fn show_backup(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    if c.is_keyword_at(0, "connection") {
        return super::check_external_connection(c);
    }
    c.eat_keyword("from");
    let subdir = c.subdir()?;
    c.expect_keyword("in")?;
    let uris = c.uris()?;
    let options = c.with_options(SHOW_BACKUP_OPTIONS)?;
    c.expect_end()?;
    Ok(Statement::ShowBackup { subdir, uris, options })
}

/// `IMPORT INTO t [(c, …)] CSV DATA (uri, …) [WITH …]`
pub(super) fn import(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    if c.is_keyword_at(0, "table")
        || c.is_keyword_at(0, "pgdump")
        || c.is_keyword_at(0, "mysqldump")
    {
        return Err(
            c.unsupported(format!("IMPORT {}", c.peek_word().unwrap_or_default().to_uppercase()))
        );
    }
    c.expect_keyword("into")?;
    let table = c.table_name()?;
    let columns = if c.eat(&Kind::LParen) {
        let columns = c.list(Cursor::object_name)?;
        c.expect(&Kind::RParen)?;
        Some(columns)
    } else {
        None
    };
    c.format_csv()?;
    c.expect_keyword("data")?;
    c.expect(&Kind::LParen)?;
    let uris = c.list(Cursor::string_or_placeholder)?;
    c.expect(&Kind::RParen)?;
    let options = c.with_options(IMPORT_OPTIONS)?;
    c.expect_end()?;
    Ok(Statement::Import(Import { table, columns, uris, options }))
}

/// `EXPORT INTO CSV uri [WITH …] FROM TABLE t | FROM SELECT …`
pub(super) fn export(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("into")?;
    c.format_csv()?;
    let uri = c.string_or_placeholder()?;
    let options = c.with_options(EXPORT_OPTIONS)?;
    c.expect_keyword("from")?;
    let source = if c.eat_keyword("table") {
        let table = c.table_name()?;
        c.expect_end()?;
        ExportSource::Table(table)
    } else if ["select", "with", "values", "table"].iter().any(|k| c.is_keyword_at(0, k))
        || c.peek_at(0).is_some_and(|t| t.kind == Kind::LParen)
    {
        let start = c.tokens[c.pos].start;
        c.pos = c.tokens.len();
        c.expect_end()?;
        ExportSource::Query(c.sql[start..c.end].to_owned())
    } else {
        return Err(c.syntax_error(None));
    };
    Ok(Statement::Export(Export { uri, options, source }))
}

/// `CREATE DATABASE [IF NOT EXISTS] name`
pub(super) fn create_database(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let if_not_exists = c.eat_if_not_exists()?;
    let name = c.object_name()?;
    c.expect_end()?;
    Ok(Statement::CreateDatabase { if_not_exists, name })
}

/// `DROP DATABASE [IF EXISTS] name [CASCADE | RESTRICT]` (CASCADE unless RESTRICT is given)
pub(super) fn drop_database(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let if_exists = c.is_keyword_at(0, "if") && c.is_keyword_at(1, "exists");
    if if_exists {
        c.pos += 2;
    }
    let name = c.object_name()?;
    // CASCADE is CockroachDB's default.
    let cascade = c.eat_keyword("cascade") || !c.eat_keyword("restrict");
    c.expect_end()?;
    Ok(Statement::DropDatabase { if_exists, name, cascade })
}

/// `SHOW DATABASES`
pub(super) fn show_databases(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_end()?;
    Ok(Statement::ShowDatabases)
}

/// `SHOW TABLES [FROM db]`
pub(super) fn show_tables(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let database = if c.eat_keyword("from") { Some(c.object_name()?) } else { None };
    c.expect_end()?;
    Ok(Statement::ShowTables { database })
}

/// `USE db`
pub(super) fn use_database(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let name = c.object_name()?;
    c.expect_end()?;
    Ok(Statement::UseDatabase { name })
}

/// `SET database = db` / `SET database TO db`
pub(super) fn set_database(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    if !c.eat(&Kind::Eq) {
        c.expect_keyword("to")?;
    }
    let name = match c.peek_at(0).map(|t| &t.kind) {
        Some(Kind::Str(_)) => c.string_or_placeholder()?,
        _ => c.object_name()?,
    };
    c.expect_end()?;
    Ok(Statement::UseDatabase { name })
}

/// `SHOW JOBS`
pub(super) fn show_jobs(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_end()?;
    Ok(Statement::ShowJobs { id: None })
}

/// `SHOW JOB id`
pub(super) fn show_job(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let id = c.job_id()?;
    c.expect_end()?;
    Ok(Statement::ShowJobs { id: Some(id) })
}

impl Cursor<'_> {
    /// `TABLE t, …`, `DATABASE d, …`, or nothing (the whole cluster).
    fn scope(&mut self) -> Result<Scope, ParseError> {
        if self.eat_keyword("table") {
            Ok(Scope::Tables(self.list(Self::table_name)?))
        } else if self.eat_keyword("database") {
            Ok(Scope::Databases(self.list(Self::object_name)?))
        } else {
            Ok(Scope::Cluster)
        }
    }

    /// `LATEST` or `'subdir'`.
    fn subdir(&mut self) -> Result<Subdir, ParseError> {
        if self.eat_keyword("latest") {
            Ok(Subdir::Latest)
        } else {
            Ok(Subdir::Named(self.string_or_placeholder()?))
        }
    }

    /// One URI, or a parenthesized list of them.
    fn uris(&mut self) -> Result<Vec<String>, ParseError> {
        if self.eat(&Kind::LParen) {
            let uris = self.list(Self::string_or_placeholder)?;
            self.expect(&Kind::RParen)?;
            Ok(uris)
        } else {
            Ok(vec![self.string_or_placeholder()?])
        }
    }

    /// `CSV`; the formats CockroachDB has and extconn does not are refused by name.
    fn format_csv(&mut self) -> Result<(), ParseError> {
        match self.peek_word().as_deref() {
            Some("csv") => {
                self.pos += 1;
                Ok(())
            }
            Some(format @ ("parquet" | "avro" | "delimited" | "pgcopy" | "mysqloutfile")) => {
                Err(self.unsupported(format!("the {} format", format.to_uppercase())))
            }
            _ => Err(self.syntax_error(None)),
        }
    }

    /// `AS OF SYSTEM TIME expr`, if there: the expression's text up to `WITH` or the end.
    fn as_of_system_time(&mut self) -> Result<Option<String>, ParseError> {
        if !self.is_keyword_at(0, "as") {
            return Ok(None);
        }
        self.pos += 1;
        for keyword in ["of", "system", "time"] {
            self.expect_keyword(keyword)?;
        }
        let first = self.pos;
        while self.peek_at(0).is_some_and(|t| !super::is_keyword(t, "with")) {
            if self.peek_at(0).is_some_and(|t| t.kind == Kind::Placeholder) {
                return Err(self.placeholder_error(&self.tokens[self.pos]));
            }
            self.pos += 1;
        }
        if self.pos == first {
            return Err(self.syntax_error(None));
        }
        let (start, end) = (self.tokens[first].start, self.tokens[self.pos - 1].end);
        Ok(Some(self.sql[start..end].to_owned()))
    }

    /// `WITH opt [= value], …` or `WITH OPTIONS (…)`, if there. An option not in `allowed`, or
    /// one given twice, is a syntax error, as in CockroachDB's grammar.
    fn with_options(&mut self, allowed: &[&str]) -> Result<Vec<StmtOption>, ParseError> {
        if !self.eat_keyword("with") {
            return Ok(Vec::new());
        }
        let parenthesized = self.eat_keyword("options");
        if parenthesized {
            self.expect(&Kind::LParen)?;
        }
        let mut options: Vec<StmtOption> = Vec::new();
        loop {
            let name = match self.peek_word() {
                Some(name) if allowed.contains(&name.as_str()) => name,
                _ => return Err(self.syntax_error(None)),
            };
            self.pos += 1;
            if options.iter().any(|(n, _)| *n == name) {
                let reason = format!("{name} option specified multiple times");
                return Err(self.syntax_error(Some(reason)));
            }
            let value = if self.eat(&Kind::Eq) {
                match self.peek_at(0).map(|t| &t.kind) {
                    Some(Kind::Str(value)) => {
                        let value = value.clone();
                        self.pos += 1;
                        OptionValue::Str(value)
                    }
                    Some(Kind::LParen) => {
                        self.pos += 1;
                        let items = self.list(|c| match c.peek_at(0).map(|t| &t.kind) {
                            Some(Kind::Str(value)) => {
                                let value = value.clone();
                                c.pos += 1;
                                Ok(value)
                            }
                            _ => Err(c.syntax_error(None)),
                        })?;
                        self.expect(&Kind::RParen)?;
                        OptionValue::List(items)
                    }
                    _ => OptionValue::Expr(self.expression()?),
                }
            } else {
                OptionValue::Flag
            };
            options.push((name, value));
            if !self.eat(&Kind::Comma) {
                break;
            }
        }
        if parenthesized {
            self.expect(&Kind::RParen)?;
        }
        Ok(options)
    }

    /// A database, table or column name: a quoted identifier (as is) or a bare non-reserved
    /// word (lower-cased).
    fn object_name(&mut self) -> Result<String, ParseError> {
        let value = match self.peek_at(0).map(|tok| &tok.kind) {
            Some(Kind::QuotedIdent(value)) if !value.is_empty() => value.clone(),
            Some(Kind::Word(word)) if !is_reserved(&word.to_lowercase()) => word.to_lowercase(),
            _ => return Err(self.syntax_error(None)),
        };
        self.pos += 1;
        Ok(value)
    }

    /// `t`, `db.t` or `db.schema.t`.
    fn table_name(&mut self) -> Result<TableName, ParseError> {
        let mut parts = vec![self.object_name()?];
        while parts.len() < 3 && self.peek_at(0).is_some_and(|t| self.is_dot(t)) {
            self.pos += 1;
            parts.push(self.object_name()?);
        }
        let table = parts.pop().expect("one part at least");
        let (database, schema) = match parts.len() {
            0 => (None, None),
            1 => (Some(parts.remove(0)), None),
            _ => (Some(parts.remove(0)), Some(parts.remove(0))),
        };
        Ok(TableName { database, schema, table })
    }

    fn is_dot(&self, tok: &crate::sql::lexer::Tok) -> bool {
        tok.kind == Kind::Punct && &self.sql[tok.start..tok.end] == "."
    }

    /// A job id: a positive integer.
    fn job_id(&mut self) -> Result<i64, ParseError> {
        let Some(tok) = self.peek_at(0) else { return Err(self.syntax_error(None)) };
        let text = &self.sql[tok.start..tok.end];
        match (&tok.kind, text.parse::<i64>()) {
            (Kind::Number, Ok(id)) if id > 0 => {
                self.pos += 1;
                Ok(id)
            }
            _ => Err(self.syntax_error(None)),
        }
    }
}
