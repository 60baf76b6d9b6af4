//! The statements that use connections (BACKUP, RESTORE, SHOW BACKUP[S], IMPORT, EXPORT) and
//! the database statements around them, as parsed.

use super::{ident, literal};

/// A table name as written: `t`, `db.t` or `db.schema.t` (each part lower-cased unless quoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The database, when qualified.
    pub database: Option<String>,
    /// The schema, when given (`public` is the only one there is).
    pub schema: Option<String>,
    /// The table.
    pub table: String,
}

impl TableName {
    /// The name as SQL.
    pub fn to_sql(&self) -> String {
        [self.database.as_deref(), self.schema.as_deref(), Some(self.table.as_str())]
            .into_iter()
            .flatten()
            .map(ident)
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// What a BACKUP or RESTORE covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every database (`BACKUP INTO …`, `RESTORE FROM …`).
    Cluster,
    /// `DATABASE a, b`
    Databases(Vec<String>),
    /// `TABLE a.t, u`
    Tables(Vec<TableName>),
}

impl Scope {
    fn to_sql(&self) -> String {
        match self {
            Self::Cluster => String::new(),
            Self::Databases(names) => {
                format!(
                    " DATABASE {}",
                    names.iter().map(|n| ident(n)).collect::<Vec<_>>().join(", ")
                )
            }
            Self::Tables(names) => format!(
                " TABLE {}",
                names.iter().map(TableName::to_sql).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Which backup in a collection: `LATEST`, or a sub-directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subdir {
    /// The newest full backup (`LATEST`).
    Latest,
    /// A sub-directory as written (`'2026/11/26-035037.12'`).
    Named(String),
}

/// A `WITH` option's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// Given without a value (`WITH detached`).
    Flag,
    /// A string literal.
    Str(String),
    /// A parenthesized list of string literals (`kms = ('a', 'b')`).
    List(Vec<String>),
    /// Anything else, as written (`true`, `3`, `'1s'::interval` …).
    Expr(String),
}

/// One `WITH` option: its name lower-cased, and its value.
pub type StmtOption = (String, OptionValue);

/// Options whose values are secrets or may carry them: masked when a statement is shown.
pub const SECRET_OPTIONS: &[&str] = &[
    "encryption_passphrase",
    "kms",
    "incremental_location",
    "new_kms",
    "old_kms",
    "webhook_auth_header",
    "confluent_schema_registry",
];

/// `BACKUP [scope] INTO [LATEST IN | 'subdir' IN] uri [AS OF SYSTEM TIME e] [WITH …]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// What is backed up.
    pub scope: Scope,
    /// `None`: a new full backup; `Some`: an incremental appended to that full backup.
    pub subdir: Option<Subdir>,
    /// The collection's URI(s): more than one is CockroachDB's locality-aware form.
    pub uris: Vec<String>,
    /// The `AS OF SYSTEM TIME` expression, as written.
    pub as_of: Option<String>,
    /// `WITH` options.
    pub options: Vec<StmtOption>,
}

/// `RESTORE [scope] FROM LATEST | 'subdir' IN uri [AS OF SYSTEM TIME e] [WITH …]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    /// What is restored.
    pub scope: Scope,
    /// Which backup.
    pub subdir: Subdir,
    /// The collection's URI(s).
    pub uris: Vec<String>,
    /// The `AS OF SYSTEM TIME` expression, as written.
    pub as_of: Option<String>,
    /// `WITH` options.
    pub options: Vec<StmtOption>,
}

/// `IMPORT INTO t [(c, …)] CSV DATA (uri, …) [WITH …]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The table rows go into.
    pub table: TableName,
    /// The columns the files' fields fill, in order; `None`: every column.
    pub columns: Option<Vec<String>>,
    /// The files.
    pub uris: Vec<String>,
    /// `WITH` options.
    pub options: Vec<StmtOption>,
}

/// What EXPORT writes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportSource {
    /// `FROM TABLE t`
    Table(TableName),
    /// `FROM SELECT …` (the query's text, as written).
    Query(String),
}

/// `EXPORT INTO CSV uri [WITH …] FROM TABLE t | FROM SELECT …`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Where the files go.
    pub uri: String,
    /// `WITH` options.
    pub options: Vec<StmtOption>,
    /// What is written.
    pub source: ExportSource,
}

const MASK: &str = "'*****'";

fn uris_sql(uris: &[String]) -> String {
    if uris.len() == 1 {
        MASK.to_owned()
    } else {
        format!("({})", vec![MASK; uris.len()].join(", "))
    }
}

fn as_of_sql(as_of: Option<&String>) -> String {
    as_of.map(|e| format!(" AS OF SYSTEM TIME {e}")).unwrap_or_default()
}

/// `WITH OPTIONS (…)`, secrets masked.
pub fn options_sql(options: &[StmtOption]) -> String {
    if options.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = options
        .iter()
        .map(|(name, value)| {
            let secret = SECRET_OPTIONS.contains(&name.as_str());
            let value = match value {
                OptionValue::Flag => return name.clone(),
                _ if secret => MASK.to_owned(),
                OptionValue::Str(s) => literal(s),
                OptionValue::List(items) => {
                    format!("({})", items.iter().map(|s| literal(s)).collect::<Vec<_>>().join(", "))
                }
                OptionValue::Expr(e) => e.clone(),
            };
            format!("{name} = {value}")
        })
        .collect();
    format!(" WITH OPTIONS ({})", shown.join(", "))
}

impl Backup {
    /// The statement with URIs and secret options masked.
    pub fn redacted_sql(&self) -> String {
        let subdir = match &self.subdir {
            None => String::new(),
            Some(Subdir::Latest) => "LATEST IN ".to_owned(),
            Some(Subdir::Named(s)) => format!("{} IN ", literal(s)),
        };
        format!(
            "BACKUP{} INTO {subdir}{}{}{}",
            self.scope.to_sql(),
            uris_sql(&self.uris),
            as_of_sql(self.as_of.as_ref()),
            options_sql(&self.options)
        )
    }
}

impl Restore {
    /// The statement with URIs and secret options masked.
    pub fn redacted_sql(&self) -> String {
        let subdir = match &self.subdir {
            Subdir::Latest => "LATEST".to_owned(),
            Subdir::Named(s) => literal(s),
        };
        format!(
            "RESTORE{} FROM {subdir} IN {}{}{}",
            self.scope.to_sql(),
            uris_sql(&self.uris),
            as_of_sql(self.as_of.as_ref()),
            options_sql(&self.options)
        )
    }
}

impl Import {
    /// The statement with URIs masked.
    pub fn redacted_sql(&self) -> String {
        let columns = self
            .columns
            .as_ref()
            .map(|c| format!(" ({})", c.iter().map(|n| ident(n)).collect::<Vec<_>>().join(", ")))
            .unwrap_or_default();
        format!(
            "IMPORT INTO {}{columns} CSV DATA ({}){}",
            self.table.to_sql(),
            vec![MASK; self.uris.len()].join(", "),
            options_sql(&self.options)
        )
    }
}

impl Export {
    /// The statement with the URI masked.
    pub fn redacted_sql(&self) -> String {
        let source = match &self.source {
            ExportSource::Table(t) => format!("TABLE {}", t.to_sql()),
            ExportSource::Query(q) => q.clone(),
        };
        format!("EXPORT INTO CSV {MASK}{} FROM {source}", options_sql(&self.options))
    }
}

/// `CREATE CHANGEFEED FOR [TABLE] t, … INTO 'uri' [WITH …]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changefeed {
    /// The watched tables.
    pub tables: Vec<TableName>,
    /// The sink.
    pub uri: String,
    /// `WITH` options.
    pub options: Vec<StmtOption>,
}

impl Changefeed {
    /// The statement with the URI and secret options masked.
    pub fn redacted_sql(&self) -> String {
        format!(
            "CREATE CHANGEFEED FOR TABLE {} INTO {MASK}{}",
            self.tables.iter().map(TableName::to_sql).collect::<Vec<_>>().join(", "),
            options_sql(&self.options)
        )
    }
}

/// What `PAUSE JOB`, `RESUME JOB` and `CANCEL JOB` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobControl {
    /// `PAUSE JOB id`
    Pause,
    /// `RESUME JOB id`
    Resume,
    /// `CANCEL JOB id`
    Cancel,
}

impl JobControl {
    /// `PAUSE`, `RESUME` or `CANCEL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "PAUSE",
            Self::Resume => "RESUME",
            Self::Cancel => "CANCEL",
        }
    }
}
