//! The host's own types for what goes into and comes out of a statement. The generated WIT
//! bindings stay private; these are what callers see.

use std::fmt;

/// How CREATE and ALTER check their target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Validation {
    /// Parameter checks and the I/O round trip (CockroachDB's behaviour).
    #[default]
    Full,
    /// Parameter checks only: no I/O at all.
    ParseOnly,
}

/// The session statements run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user the statements run as.
    pub user: String,
    /// The current database, if any.
    pub database: Option<String>,
    /// How CREATE and ALTER check their target.
    pub validation: Validation,
}

impl Default for Session {
    fn default() -> Self {
        Self { user: "root".to_owned(), database: None, validation: Validation::Full }
    }
}

/// Whose fault an error is; fine-grained distinctions live in the SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The statement does not parse.
    Syntax,
    /// A value is malformed or not allowed.
    InvalidArgument,
    /// Something named does not exist.
    NotFound,
    /// Something named exists already.
    AlreadyExists,
    /// The user lacks a privilege.
    PermissionDenied,
    /// A service could not be reached.
    Unavailable,
    /// Not implemented.
    Unsupported,
    /// A bug, a trap, a resource limit.
    Internal,
}

/// A statement's error, as CockroachDB reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// Whose fault it is.
    pub kind: ErrorKind,
    /// Five-character SQLSTATE (`42710`, `XX000`, …).
    pub sqlstate: String,
    /// CockroachDB-compatible text; never holds a secret.
    pub message: String,
    /// More about the error (for a syntax error, the source with a caret).
    pub detail: Option<String>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl SqlError {
    /// An error without detail or hint.
    pub fn new(kind: ErrorKind, sqlstate: &str, message: impl Into<String>) -> Self {
        Self {
            kind,
            sqlstate: sqlstate.to_owned(),
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// `XX000`: the component trapped, ran out of memory or time.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "XX000", message)
    }

    /// `0A000`: a feature this version does not have.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, "0A000", message)
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (SQLSTATE {})", self.message, self.sqlstate)
    }
}

impl std::error::Error for SqlError {}

/// A SQL value in a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// BOOL.
    Boolean(bool),
    /// INT8.
    Int(i64),
    /// FLOAT8.
    Float(f64),
    /// STRING and everything shown as text.
    Text(String),
}

impl fmt::Display for Value {
    /// How `cockroach sql` shows it in a table: NULL, `t`/`f`, digits, text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("NULL"),
            Self::Boolean(b) => f.write_str(if *b { "t" } else { "f" }),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Text(s) => f.write_str(s),
        }
    }
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// SQL type name (`STRING`, `INT8`, `BOOL`, …).
    pub sql_type: String,
}

/// A result set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows of values, one per column.
    pub rows: Vec<Vec<Value>>,
}

/// What a successful statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A result set.
    Rows(Rows),
    /// A command tag such as `CREATE EXTERNAL CONNECTION`.
    Command(String),
}

/// One statement's result: its notices, then its outcome or error.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementResult {
    /// NOTICE messages, in order.
    pub notices: Vec<String>,
    /// The outcome, or the error that stopped the script.
    pub outcome: Result<Outcome, SqlError>,
}

impl StatementResult {
    /// A result that is only an error.
    pub fn error(error: SqlError) -> Self {
        Self { notices: Vec::new(), outcome: Err(error) }
    }
}

/// What a connection can be used for; re-exported from the catalog.
pub use crate::catalog::ConnectionType;

/// One query parameter as shown to a user: a secret parameter has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// Exact name.
    pub name: String,
    /// Whether the value is a secret.
    pub secret: bool,
    /// The value, `None` for secrets.
    pub value: Option<String>,
}

/// A parsed, checked URI, safe to display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriInfo {
    /// Lower-cased scheme.
    pub scheme: String,
    /// Provider name.
    pub provider: String,
    /// What it can be used for.
    pub connection_type: ConnectionType,
    /// The URI with every secret replaced by `redacted`, query keys sorted.
    pub redacted: String,
    /// Host component.
    pub host: String,
    /// Path component.
    pub path: String,
    /// Parameters, secrets without values.
    pub params: Vec<ParamInfo>,
}
