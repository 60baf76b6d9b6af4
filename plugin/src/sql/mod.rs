//! The statement grammar: which statements extconn owns, and what they say.
//!
//! [`parse`] splits a SQL text into statements on `;` and parses each. Statements about external
//! connections become their own [`Statement`] variant; anything else (`CREATE TABLE`, `SELECT`, …)
//! is [`Statement::Other`], its text kept for the host's database. A statement that starts like
//! one of ours (`CREATE EXTERNAL …`) but does not parse is a syntax error in CockroachDB's words,
//! with the source and a caret in the error's detail.
//!
//! ```
//! use extconn_plugin::sql::{self, Statement};
//!
//! let sql = "CREATE EXTERNAL CONNECTION Backups AS 's3://bucket'; SELECT 1";
//! let statements = sql::parse(sql).unwrap();
//! assert_eq!(
//!     statements[0],
//!     Statement::CreateExternalConnection {
//!         if_not_exists: false,
//!         name: "backups".into(),
//!         uri: "s3://bucket".into(),
//!     }
//! );
//! assert_eq!(statements[0].redacted_sql(), "CREATE EXTERNAL CONNECTION 'backups' AS '*****'");
//! assert_eq!(statements[1], Statement::Other { sql: "SELECT 1".into() });
//!
//! let error = sql::parse("DROP EXTERNAL CONNECTION foo CASCADE").unwrap_err();
//! assert_eq!(error.message, r#"at or near "cascade": syntax error"#);
//! ```
//!
//! The lexing is sqlparser's tokenizer (see `lexer.rs`); the grammar is written by hand over its
//! tokens (see `parser.rs`), without recursion, so no input can exhaust the stack.

mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use crate::error::Error;

/// The longest SQL text [`parse`] takes, in bytes (1 MiB).
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// The most statements one SQL text may hold.
pub const MAX_STATEMENTS: usize = 10_000;

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `CREATE EXTERNAL CONNECTION [IF NOT EXISTS] name AS 'uri'`
    CreateExternalConnection {
        /// IF NOT EXISTS given.
        if_not_exists: bool,
        /// Connection name.
        name: String,
        /// The URI.
        uri: String,
    },
    /// `ALTER EXTERNAL CONNECTION [IF EXISTS] name AS 'uri'`
    AlterExternalConnection {
        /// IF EXISTS given.
        if_exists: bool,
        /// Connection name.
        name: String,
        /// The URI.
        uri: String,
    },
    /// `DROP EXTERNAL CONNECTION name`
    DropExternalConnection {
        /// Connection name.
        name: String,
    },
    /// `SHOW CREATE EXTERNAL CONNECTION name`
    ShowCreateExternalConnection {
        /// Connection name.
        name: String,
    },
    /// `SHOW CREATE ALL EXTERNAL CONNECTIONS`
    ShowCreateAllExternalConnections,
    /// `SHOW EXTERNAL CONNECTIONS`
    ShowExternalConnections,
    /// `SHOW EXTERNAL CONNECTION name`
    ShowExternalConnection {
        /// Connection name.
        name: String,
    },
    /// `CHECK EXTERNAL CONNECTION 'uri' [WITH opt = value, … | WITH OPTIONS (…)]`
    CheckExternalConnection {
        /// The URI.
        uri: String,
        /// The options given, each at most once, in CockroachDB's order (`CONCURRENTLY`,
        /// `TRANSFER`, `TIME`), named in upper case. Values are SQL text: `CONCURRENTLY`'s
        /// expression as written (not evaluated), `TRANSFER`'s and `TIME`'s string as a standard
        /// SQL literal (`'2 MiB'`).
        options: Vec<(String, String)>,
    },
    /// A statement extconn does not own, for the host's database, as written.
    Other {
        /// The statement's text: from its first token to its last, without the `;`.
        sql: String,
    },
}

impl Statement {
    /// The statement as CockroachDB logs it: URIs masked as `'*****'`, names as SQL string
    /// literals. [`Statement::Other`] comes back unchanged.
    pub fn redacted_sql(&self) -> String {
        const MASK: &str = "'*****'";
        match self {
            Self::CreateExternalConnection { if_not_exists, name, .. } => {
                let if_not_exists = if *if_not_exists { "IF NOT EXISTS " } else { "" };
                format!("CREATE EXTERNAL CONNECTION {if_not_exists}{} AS {MASK}", literal(name))
            }
            // The double space is CockroachDB's (reference §1.5).
            Self::AlterExternalConnection { if_exists, name, .. } => {
                let if_exists = if *if_exists { "IF EXISTS " } else { "" };
                format!("ALTER EXTERNAL CONNECTION {if_exists} {} AS {MASK}", literal(name))
            }
            Self::DropExternalConnection { name } => {
                format!("DROP EXTERNAL CONNECTION {}", literal(name))
            }
            Self::ShowCreateExternalConnection { name } => {
                format!("SHOW CREATE EXTERNAL CONNECTION {}", literal(name))
            }
            Self::ShowCreateAllExternalConnections => "SHOW CREATE ALL EXTERNAL CONNECTIONS".into(),
            Self::ShowExternalConnections => "SHOW EXTERNAL CONNECTIONS".into(),
            Self::ShowExternalConnection { name } => {
                format!("SHOW EXTERNAL CONNECTION {}", literal(name))
            }
            Self::CheckExternalConnection { options, .. } => {
                let mut sql = format!("CHECK EXTERNAL CONNECTION {MASK}");
                if !options.is_empty() {
                    let options: Vec<String> =
                        options.iter().map(|(name, value)| format!("{name} = {value}")).collect();
                    sql.push_str(&format!(" WITH OPTIONS ({})", options.join(", ")));
                }
                sql
            }
            Self::Other { sql } => sql.clone(),
        }
    }
}

/// `value` as a standard SQL string literal: in single quotes, each `'` doubled.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Splits `sql` into statements on `;` and parses each.
///
/// `;` inside strings, quoted identifiers and comments does not split; empty statements are
/// skipped, so a text of only whitespace and comments gives no statements. Any error in any
/// statement fails the whole text, as in CockroachDB.
pub fn parse(sql: &str) -> Result<Vec<Statement>, Error> {
    parser::parse(sql).map_err(Error::from)
}

/// Why a SQL text does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ParseError {
    /// A token the grammar does not allow where it is.
    #[error(
        "at or near \"{near}\": syntax error{}",
        .reason.as_deref().map(|reason| format!(": {reason}")).unwrap_or_default()
    )]
    Syntax {
        /// The token as CockroachDB shows it (`EOF` at the end).
        near: String,
        /// What is wrong beyond the token, if anything.
        reason: Option<String>,
        /// `source SQL:` and a caret.
        detail: String,
    },
    /// A token that does not lex (an unterminated string, …).
    #[error("lexical error: {message}")]
    Lexical { message: String, detail: String },
    /// `$1` where extconn needs a literal.
    #[error("placeholders are not supported here")]
    Placeholder { detail: String },
    /// `''` or `""` as a connection name.
    #[error("external connection name cannot be empty")]
    EmptyName,
    /// Over [`MAX_SQL_BYTES`].
    #[error("SQL text of {bytes} bytes is over the limit of {MAX_SQL_BYTES} bytes (1 MiB)")]
    TooLong { bytes: usize },
    /// Over [`MAX_STATEMENTS`].
    #[error("SQL text holds more than {MAX_STATEMENTS} statements, the limit")]
    TooManyStatements,
    /// A statement about external connections over [`parser::MAX_OWNED_TOKENS`].
    #[error(
        "statement has more than {} tokens, the limit for a statement about external connections",
        parser::MAX_OWNED_TOKENS
    )]
    TooManyTokens,
}

impl From<ParseError> for Error {
    fn from(error: ParseError) -> Self {
        let message = error.to_string();
        match error {
            ParseError::Syntax { detail, .. } | ParseError::Lexical { detail, .. } => {
                Error::syntax(message).with_detail(detail)
            }
            ParseError::Placeholder { detail } => Error::unsupported(message).with_detail(detail),
            ParseError::EmptyName => Error::invalid(message),
            ParseError::TooLong { .. }
            | ParseError::TooManyStatements
            | ParseError::TooManyTokens => Error::limit(message),
        }
    }
}
