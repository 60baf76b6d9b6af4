//! The statement grammar: which statements extconn owns, and what they say.
//!
//! [`parse`] splits a SQL text into statements on `;` and parses each. Statements about external
//! connections, and the role and privilege statements that govern them (`CREATE USER`, `GRANT …
//! ON EXTERNAL CONNECTION`, `GRANT SYSTEM`, …), become their own [`Statement`] variant; anything
//! else (`CREATE TABLE`, `SELECT`, `GRANT … ON TABLE`, …) is [`Statement::Other`], its text kept
//! for the host's database. A statement that starts like
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
//! let error = sql::parse("DROP EXTERNAL CONNECTION IF EXISTS foo").unwrap_err();
//! assert_eq!(error.message, r#"at or near "exists": syntax error"#);
//! ```
//!
//! The lexing is sqlparser's tokenizer (see `lexer.rs`); the grammar is written by hand over its
//! tokens (see `parser.rs`), without recursion, so no input can exhaust the stack.

mod lexer;
pub mod ops;
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
    /// `DROP EXTERNAL CONNECTION name [CASCADE | RESTRICT]`
    DropExternalConnection {
        /// Connection name.
        name: String,
        /// CASCADE: cancel the jobs that use it (an extconn extension; RESTRICT is the default).
        cascade: bool,
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
    /// `CREATE USER|ROLE [IF NOT EXISTS] name [[WITH] PASSWORD 'pw' | LOGIN | NOLOGIN …]`
    CreateRole {
        /// `CREATE USER` (LOGIN by default) rather than `CREATE ROLE` (NOLOGIN by default).
        is_user: bool,
        /// IF NOT EXISTS given.
        if_not_exists: bool,
        /// The name (identifier rules: bare lower-cased, quoted kept).
        name: String,
        /// `PASSWORD 'pw'` (`PASSWORD NULL` is `None`).
        password: Option<String>,
        /// `LOGIN` / `NOLOGIN`, if given.
        login: Option<bool>,
    },
    /// `DROP USER|ROLE [IF EXISTS] a, b`
    DropRole {
        /// `DROP USER` rather than `DROP ROLE` (they behave the same).
        is_user: bool,
        /// IF EXISTS given.
        if_exists: bool,
        /// The names, in order.
        names: Vec<String>,
    },
    /// `GRANT role[, …] TO member[, …] [WITH ADMIN OPTION]`
    GrantRole {
        /// Roles granted.
        roles: Vec<String>,
        /// Who receives them.
        members: Vec<String>,
        /// WITH ADMIN OPTION given.
        admin_option: bool,
    },
    /// `REVOKE [ADMIN OPTION FOR] role[, …] FROM member[, …]`
    RevokeRole {
        /// Roles revoked.
        roles: Vec<String>,
        /// From whom.
        members: Vec<String>,
        /// Only the admin option is revoked.
        admin_option_for: bool,
    },
    /// `SHOW USERS`
    ShowUsers,
    /// `SHOW ROLES`
    ShowRoles,
    /// `GRANT SYSTEM priv[, …] TO grantee[, …] [WITH GRANT OPTION]`
    GrantSystem {
        /// Privilege names, upper-cased, as written (unknown ones are rejected by the executor).
        privileges: Vec<String>,
        /// Who receives them.
        grantees: Vec<String>,
        /// WITH GRANT OPTION given.
        grant_option: bool,
    },
    /// `REVOKE [GRANT OPTION FOR] SYSTEM priv[, …] FROM grantee[, …]`
    RevokeSystem {
        /// Privilege names, upper-cased.
        privileges: Vec<String>,
        /// From whom.
        grantees: Vec<String>,
        /// Only the grant option is revoked.
        grant_option_for: bool,
    },
    /// `SHOW SYSTEM GRANTS [FOR grantee[, …]]`
    ShowSystemGrants {
        /// `FOR …`, if given.
        grantees: Option<Vec<String>>,
    },
    /// `GRANT ALL [PRIVILEGES] | priv[, …] ON EXTERNAL CONNECTION a[, …] TO grantee[, …] [WITH GRANT OPTION]`
    GrantOnConnection {
        /// Privilege names, upper-cased (`ALL [PRIVILEGES]` is `["ALL"]`).
        privileges: Vec<String>,
        /// Connection names (identifiers only, as in CockroachDB's `name_list`).
        connections: Vec<String>,
        /// Who receives them.
        grantees: Vec<String>,
        /// WITH GRANT OPTION given.
        grant_option: bool,
    },
    /// `REVOKE [GRANT OPTION FOR] ALL | priv[, …] ON EXTERNAL CONNECTION a[, …] FROM grantee[, …]`
    RevokeOnConnection {
        /// Privilege names, upper-cased.
        privileges: Vec<String>,
        /// Connection names.
        connections: Vec<String>,
        /// From whom.
        grantees: Vec<String>,
        /// Only the grant option is revoked.
        grant_option_for: bool,
    },
    /// `SHOW GRANTS ON EXTERNAL CONNECTION a[, …] [FOR grantee[, …]]`
    ShowGrantsOnConnection {
        /// Connection names.
        connections: Vec<String>,
        /// `FOR …`, if given.
        grantees: Option<Vec<String>>,
    },
    /// `BACKUP …`
    Backup(ops::Backup),
    /// `RESTORE …`
    Restore(ops::Restore),
    /// `SHOW BACKUPS IN uri`
    ShowBackups {
        /// The collection's URI(s).
        uris: Vec<String>,
    },
    /// `SHOW BACKUP [FROM] LATEST | 'subdir' IN uri [WITH …]`
    ShowBackup {
        /// Which backup.
        subdir: ops::Subdir,
        /// The collection's URI(s).
        uris: Vec<String>,
        /// `WITH` options.
        options: Vec<ops::StmtOption>,
    },
    /// `IMPORT INTO … CSV DATA (…)`
    Import(ops::Import),
    /// `EXPORT INTO CSV …`
    Export(ops::Export),
    /// `CREATE DATABASE [IF NOT EXISTS] name`
    CreateDatabase {
        /// `IF NOT EXISTS`
        if_not_exists: bool,
        /// The database.
        name: String,
    },
    /// `DROP DATABASE [IF EXISTS] name [CASCADE | RESTRICT]`
    DropDatabase {
        /// `IF EXISTS`
        if_exists: bool,
        /// The database.
        name: String,
        /// Drop a database that has tables (CockroachDB's default; `RESTRICT` turns it off).
        cascade: bool,
    },
    /// `SHOW DATABASES`
    ShowDatabases,
    /// `SHOW TABLES [FROM db]`
    ShowTables {
        /// `FROM db`, if given.
        database: Option<String>,
    },
    /// `USE db`, `SET database = db`
    UseDatabase {
        /// The database.
        name: String,
    },
    /// `SHOW JOBS`, `SHOW JOB id`
    ShowJobs {
        /// The one job, for `SHOW JOB id`.
        id: Option<i64>,
    },
    /// `CREATE CHANGEFEED …`
    CreateChangefeed(ops::Changefeed),
    /// `PAUSE JOB id`, `RESUME JOB id`, `CANCEL JOB id`
    ControlJob {
        /// What to do.
        action: ops::JobControl,
        /// The job.
        id: i64,
    },
    /// `SHOW CHANGEFEED JOBS`, `SHOW CHANGEFEED JOB id`
    ShowChangefeedJobs {
        /// The one job, for `SHOW CHANGEFEED JOB id`.
        id: Option<i64>,
    },
    /// A statement extconn does not own, for the host's database, as written.
    Other {
        /// The statement's text: from its first token to its last, without the `;`.
        sql: String,
    },
}

impl Statement {
    /// The statement as CockroachDB logs it: URIs and passwords masked as `'*****'`, connection
    /// names as SQL string literals where the grammar takes a string and as identifiers where it
    /// takes a name (GRANT, REVOKE, SHOW GRANTS), role names as identifiers, privileges in upper
    /// case. [`Statement::Other`] comes back unchanged.
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
            Self::DropExternalConnection { name, cascade } => {
                let cascade = if *cascade { " CASCADE" } else { "" };
                format!("DROP EXTERNAL CONNECTION {}{cascade}", literal(name))
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
            Self::CreateRole { is_user, if_not_exists, name, password, login } => {
                let mut sql = format!(
                    "CREATE {} {}{}",
                    if *is_user { "USER" } else { "ROLE" },
                    if *if_not_exists { "IF NOT EXISTS " } else { "" },
                    ident(name)
                );
                let options: Vec<&str> = [
                    password.as_ref().map(|_| "PASSWORD '*****'"),
                    login.map(|login| if login { "LOGIN" } else { "NOLOGIN" }),
                ]
                .into_iter()
                .flatten()
                .collect();
                if !options.is_empty() {
                    sql.push_str(&format!(" WITH {}", options.join(" ")));
                }
                sql
            }
            Self::DropRole { is_user, if_exists, names } => format!(
                "DROP {} {}{}",
                if *is_user { "USER" } else { "ROLE" },
                if *if_exists { "IF EXISTS " } else { "" },
                idents(names)
            ),
            Self::GrantRole { roles, members, admin_option } => format!(
                "GRANT {} TO {}{}",
                idents(roles),
                idents(members),
                if *admin_option { " WITH ADMIN OPTION" } else { "" }
            ),
            Self::RevokeRole { roles, members, admin_option_for } => format!(
                "REVOKE {}{} FROM {}",
                if *admin_option_for { "ADMIN OPTION FOR " } else { "" },
                idents(roles),
                idents(members)
            ),
            Self::ShowUsers => "SHOW USERS".into(),
            Self::ShowRoles => "SHOW ROLES".into(),
            Self::GrantSystem { privileges, grantees, grant_option } => format!(
                "GRANT SYSTEM {} TO {}{}",
                privilege_list(privileges),
                idents(grantees),
                if *grant_option { " WITH GRANT OPTION" } else { "" }
            ),
            Self::RevokeSystem { privileges, grantees, grant_option_for } => format!(
                "REVOKE {}SYSTEM {} FROM {}",
                if *grant_option_for { "GRANT OPTION FOR " } else { "" },
                privilege_list(privileges),
                idents(grantees)
            ),
            Self::ShowSystemGrants { grantees } => {
                format!("SHOW SYSTEM GRANTS{}", for_grantees(grantees.as_deref()))
            }
            Self::GrantOnConnection { privileges, connections, grantees, grant_option } => {
                format!(
                    "GRANT {} ON EXTERNAL CONNECTION {} TO {}{}",
                    privilege_list(privileges),
                    idents(connections),
                    idents(grantees),
                    if *grant_option { " WITH GRANT OPTION" } else { "" }
                )
            }
            Self::RevokeOnConnection { privileges, connections, grantees, grant_option_for } => {
                format!(
                    "REVOKE {}{} ON EXTERNAL CONNECTION {} FROM {}",
                    if *grant_option_for { "GRANT OPTION FOR " } else { "" },
                    privilege_list(privileges),
                    idents(connections),
                    idents(grantees)
                )
            }
            Self::ShowGrantsOnConnection { connections, grantees } => format!(
                "SHOW GRANTS ON EXTERNAL CONNECTION {}{}",
                idents(connections),
                for_grantees(grantees.as_deref())
            ),
            Self::Backup(b) => b.redacted_sql(),
            Self::Restore(r) => r.redacted_sql(),
            Self::ShowBackups { .. } => "SHOW BACKUPS IN '*****'".into(),
            Self::ShowBackup { subdir, options, .. } => {
                let subdir = match subdir {
                    ops::Subdir::Latest => "LATEST".to_owned(),
                    ops::Subdir::Named(s) => literal(s),
                };
                format!("SHOW BACKUP FROM {subdir} IN '*****'{}", ops::options_sql(options))
            }
            Self::Import(i) => i.redacted_sql(),
            Self::Export(e) => e.redacted_sql(),
            Self::CreateDatabase { if_not_exists, name } => format!(
                "CREATE DATABASE {}{}",
                if *if_not_exists { "IF NOT EXISTS " } else { "" },
                ident(name)
            ),
            Self::DropDatabase { if_exists, name, cascade } => format!(
                "DROP DATABASE {}{}{}",
                if *if_exists { "IF EXISTS " } else { "" },
                ident(name),
                if *cascade { "" } else { " RESTRICT" }
            ),
            Self::ShowDatabases => "SHOW DATABASES".into(),
            Self::ShowTables { database } => match database {
                Some(db) => format!("SHOW TABLES FROM {}", ident(db)),
                None => "SHOW TABLES".into(),
            },
            Self::UseDatabase { name } => format!("USE {}", ident(name)),
            Self::ShowJobs { id: None } => "SHOW JOBS".into(),
            Self::ShowJobs { id: Some(id) } => format!("SHOW JOB {id}"),
            Self::CreateChangefeed(c) => c.redacted_sql(),
            Self::ControlJob { action, id } => format!("{} JOB {id}", action.as_str()),
            Self::ShowChangefeedJobs { id: None } => "SHOW CHANGEFEED JOBS".into(),
            Self::ShowChangefeedJobs { id: Some(id) } => format!("SHOW CHANGEFEED JOB {id}"),
            Self::Other { sql } => sql.clone(),
        }
    }
}

/// `name` as a SQL identifier: bare when it reads back as itself (a plain lower-case word that
/// is not reserved), otherwise in double quotes with each `"` doubled.
pub fn ident(name: &str) -> String {
    let plain = name.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
        && name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "_$".contains(ch))
        && !parser::is_reserved(name);
    if plain { name.to_owned() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
}

/// Names as a comma-separated list of identifiers.
fn idents(names: &[String]) -> String {
    names.iter().map(|name| ident(name)).collect::<Vec<_>>().join(", ")
}

/// ` FOR a, b`, or nothing.
fn for_grantees(grantees: Option<&[String]>) -> String {
    grantees.map(|grantees| format!(" FOR {}", idents(grantees))).unwrap_or_default()
}

/// Upper-cased privilege names as they read back: bare when a plain word the grammar takes as a
/// privilege, otherwise quoted (the parser upper-cases quoted privileges too).
fn privilege_list(privileges: &[String]) -> String {
    if privileges == ["ALL"] {
        return "ALL".into();
    }
    let privilege = |name: &String| {
        let plain = name.starts_with(|ch: char| ch.is_ascii_uppercase() || ch == '_')
            && name.chars().all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
            && parser::is_privilege_word(&name.to_ascii_lowercase());
        if plain { name.clone() } else { format!("\"{}\"", name.replace('"', "\"\"")) }
    };
    privileges.iter().map(privilege).collect::<Vec<_>>().join(", ")
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
    /// `''` or `""` as a role or user name.
    #[error("role name cannot be empty")]
    EmptyRoleName,
    /// Valid CockroachDB that extconn does not implement (`CREATE USER … CREATEROLE`, …).
    #[error("{what} is not supported")]
    Unsupported { what: String, detail: String },
    /// A role option given twice, or with its opposite (CockroachDB's texts, raised after
    /// parsing there, so without `at or near`).
    #[error("{message}")]
    RoleOptions { message: &'static str, detail: String },
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
            ParseError::Syntax { detail, .. }
            | ParseError::Lexical { detail, .. }
            | ParseError::RoleOptions { detail, .. } => Error::syntax(message).with_detail(detail),
            ParseError::Placeholder { detail } | ParseError::Unsupported { detail, .. } => {
                Error::unsupported(message).with_detail(detail)
            }
            ParseError::EmptyName | ParseError::EmptyRoleName => Error::invalid(message),
            ParseError::TooLong { .. }
            | ParseError::TooManyStatements
            | ParseError::TooManyTokens => Error::limit(message),
        }
    }
}
