//! The grammar, by hand over the lexer's tokens: statement splitting, the table of statement
//! families extconn owns, and one function per family. Nothing here recurses.

use super::lexer::{Kind, LexError, Lexer, Tok};
use super::{MAX_SQL_BYTES, MAX_STATEMENTS, ParseError, Statement, literal};

mod ops;

/// A family of statements extconn parses itself: the leading keywords that claim a statement,
/// and the function that parses the rest (the cursor starts after the prefix). A statement
/// claimed here that does not parse is a syntax error; one no family claims, or whose parser
/// hands it back (a GRANT on a table), is [`Statement::Other`]. A new family is one more row.
#[derive(Debug)]
struct Family {
    prefix: &'static [&'static str],
    parse: fn(&mut Cursor<'_>) -> Result<Statement, ParseError>,
    /// Its statements may hold secrets — values after `PASSWORD`, and URIs (any string literal
    /// with `://`, whose parameters may be credentials): errors mask them. Every family of ours
    /// sets it; the flag stays so that a family without literals could opt out.
    passwords: bool,
}

#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    Family { prefix: &["create", "external"], parse: create_external_connection, passwords: true },
    Family { prefix: &["alter", "external"], parse: alter_external_connection, passwords: true },
    Family { prefix: &["drop", "external"], parse: drop_external_connection, passwords: true },
    Family { prefix: &["show", "external"], parse: show_external_connections, passwords: true },
    Family { prefix: &["show", "create", "external"], parse: show_create_external_connection, passwords: true },
    Family { prefix: &["show", "create", "all"], parse: show_create_all_external_connections, passwords: true },
    Family { prefix: &["check", "external"], parse: check_external_connection, passwords: true },
    Family { prefix: &["create", "user"], parse: create_user, passwords: true },
    Family { prefix: &["create", "role"], parse: create_role, passwords: true },
    Family { prefix: &["create", "group"], parse: create_role, passwords: true },
    Family { prefix: &["drop", "user"], parse: drop_user, passwords: true },
    Family { prefix: &["drop", "role"], parse: drop_role, passwords: true },
    Family { prefix: &["drop", "group"], parse: drop_role, passwords: true },
    Family { prefix: &["show", "users"], parse: show_users, passwords: true },
    Family { prefix: &["show", "roles"], parse: show_roles, passwords: true },
    // Every GRANT and REVOKE is read, and the ones on other objects handed back as Other.
    Family { prefix: &["grant"], parse: grant, passwords: true },
    Family { prefix: &["revoke"], parse: revoke, passwords: true },
    Family { prefix: &["show", "system", "grants"], parse: show_system_grants, passwords: true },
    Family { prefix: &["show", "grants", "on", "external"], parse: show_grants_on_connection, passwords: true },
    Family { prefix: &["backup"], parse: ops::backup, passwords: true },
    Family { prefix: &["restore"], parse: ops::restore, passwords: true },
    Family { prefix: &["show", "backups"], parse: ops::show_backups, passwords: true },
    Family { prefix: &["show", "backup"], parse: ops::show_backup, passwords: true },
    Family { prefix: &["import"], parse: ops::import, passwords: true },
    Family { prefix: &["export"], parse: ops::export, passwords: true },
    Family { prefix: &["create", "database"], parse: ops::create_database, passwords: true },
    Family { prefix: &["drop", "database"], parse: ops::drop_database, passwords: true },
    Family { prefix: &["show", "databases"], parse: ops::show_databases, passwords: true },
    Family { prefix: &["show", "tables"], parse: ops::show_tables, passwords: true },
    Family { prefix: &["use"], parse: ops::use_database, passwords: true },
    Family { prefix: &["set", "database"], parse: ops::set_database, passwords: true },
    Family { prefix: &["show", "jobs"], parse: ops::show_jobs, passwords: true },
    Family { prefix: &["show", "job"], parse: ops::show_job, passwords: true },
    Family { prefix: &["create", "changefeed"], parse: ops::create_changefeed, passwords: true },
    Family { prefix: &["pause", "job"], parse: ops::pause_job, passwords: true },
    Family { prefix: &["resume", "job"], parse: ops::resume_job, passwords: true },
    Family { prefix: &["cancel", "job"], parse: ops::cancel_job, passwords: true },
    Family { prefix: &["show", "changefeed"], parse: ops::show_changefeed_jobs, passwords: true },
];

/// CockroachDB's reserved keywords: not allowed as a bare name (`non_reserved_word`).
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case",
    "cast", "check", "collate", "column", "concurrently", "constraint", "create",
    "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
    "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group",
    "having", "in", "index", "initially", "intersect", "into", "lateral", "leading", "limit",
    "localtime", "localtimestamp", "not", "nothing", "null", "offset", "on", "only", "or",
    "order", "placing", "primary", "references", "returning", "select", "session_user", "some",
    "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "user", "using",
    "variadic", "when", "where", "window", "with",
];

/// Whether `word` (lower case) is reserved.
pub(super) fn is_reserved(word: &str) -> bool {
    RESERVED.contains(&word)
}

/// Whether the bare word `word` (lower case) may name a privilege: CockroachDB's `privilege` is
/// any non-reserved word, `CREATE`, `GRANT` or `SELECT`.
pub(super) fn is_privilege_word(word: &str) -> bool {
    !is_reserved(word) || matches!(word, "create" | "grant" | "select")
}

/// CockroachDB's role options that extconn does not implement: refused by name rather than as a
/// syntax error. `VALID UNTIL`, `ENCRYPTED PASSWORD` and the rest of the grammar's list.
#[rustfmt::skip]
const UNSUPPORTED_ROLE_OPTIONS: &[&str] = &[
    "createrole", "nocreaterole", "controljob", "nocontroljob", "controlchangefeed",
    "nocontrolchangefeed", "createdb", "nocreatedb", "createlogin", "nocreatelogin",
    "viewactivity", "noviewactivity", "viewactivityredacted", "noviewactivityredacted",
    "cancelquery", "nocancelquery", "modifyclustersetting", "nomodifyclustersetting", "sqllogin",
    "nosqllogin", "viewclustersetting", "noviewclustersetting", "replication", "noreplication",
    "bypassrls", "nobypassrls", "subject", "provisionsrc", "valid", "encrypted",
];

/// The most tokens kept of a statement a family claims. None of ours needs more than a few
/// dozen; a statement past this is refused rather than held in memory.
pub(super) const MAX_OWNED_TOKENS: usize = 10_000;

pub(super) fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(ParseError::TooLong { bytes: sql.len() });
    }
    parse_tokens(sql, Lexer::new(sql))
}

/// [`parse`] lexing `chunk_bytes` at a time, to test chunk boundaries.
#[cfg(test)]
pub(super) fn parse_chunked(sql: &str, chunk_bytes: usize) -> Result<Vec<Statement>, ParseError> {
    parse_tokens(sql, Lexer::with_chunk_bytes(sql, chunk_bytes))
}

fn parse_tokens(sql: &str, mut lexer: Lexer<'_>) -> Result<Vec<Statement>, ParseError> {
    let mut statements = Vec::new();
    let mut current = Current::default();
    loop {
        match lexer.next_tok() {
            Ok(Some(tok)) if tok.kind == Kind::Semicolon => current.finish(sql, &mut statements)?,
            Ok(Some(tok)) => current.push(tok),
            Ok(None) => {
                current.finish(sql, &mut statements)?;
                return Ok(statements);
            }
            // As in CockroachDB, the statement of a lexical error runs to the end of the text.
            Err(LexError { message, pos }) => {
                let start = current.start().unwrap_or(pos);
                let tokens = &current.tokens;
                let passwords = claimed_by(tokens).is_some_and(|family| family.passwords);
                if passwords && current.truncated.is_some() {
                    // Tokens were dropped unsearched: nothing of the text can be shown.
                    return Err(ParseError::TooManyTokens);
                }
                let detail = if passwords {
                    // A failed token right after PASSWORD (`'unterminated…`) is a password too.
                    let failed = tokens
                        .last()
                        .filter(|last| is_keyword(last, "password"))
                        .map(|_| (pos, sql.len()));
                    let secrets = password_spans(tokens).chain(failed);
                    masked_detail(sql, (start, sql.len()), secrets, pos)
                } else {
                    source_detail(&sql[start..], pos - start)
                };
                return Err(ParseError::Lexical { message, detail });
            }
        }
    }
}

/// The statement being read.
#[derive(Debug, Default)]
struct Current {
    /// Its tokens, while a family may claim it.
    tokens: Vec<Tok>,
    /// Its extent, once no family can claim it: its tokens are not needed.
    other: Option<(usize, usize)>,
    /// The end of its last token, once it has more than [`MAX_OWNED_TOKENS`].
    truncated: Option<usize>,
}

impl Current {
    fn start(&self) -> Option<usize> {
        self.other.map(|(start, _)| start).or_else(|| self.tokens.first().map(|tok| tok.start))
    }

    fn push(&mut self, tok: Tok) {
        if let Some((_, end)) = &mut self.other {
            *end = tok.end;
        } else if self.tokens.len() == MAX_OWNED_TOKENS {
            self.truncated = Some(tok.end);
        } else {
            let (start, end) =
                (self.tokens.first().map_or(tok.start, |first| first.start), tok.end);
            self.tokens.push(tok);
            let claimable = FAMILIES.iter().any(|family| {
                family
                    .prefix
                    .iter()
                    .zip(&self.tokens)
                    .all(|(keyword, tok)| is_keyword(tok, keyword))
            });
            if !claimable {
                self.other = Some((start, end));
                self.tokens = Vec::new();
            }
        }
    }

    /// Parses the statement read (if any) into `statements` and starts a new one.
    fn finish(&mut self, sql: &str, statements: &mut Vec<Statement>) -> Result<(), ParseError> {
        let Self { tokens, other, truncated } = std::mem::take(self);
        if tokens.is_empty() && other.is_none() {
            return Ok(());
        }
        if statements.len() == MAX_STATEMENTS {
            return Err(ParseError::TooManyStatements);
        }
        statements.push(match other {
            Some((start, end)) => Statement::Other { sql: sql[start..end].to_owned() },
            None => statement(sql, &tokens, truncated)?,
        });
        Ok(())
    }
}

/// One statement from its (non-empty) tokens; `truncated` is the statement's end if tokens past
/// [`MAX_OWNED_TOKENS`] were dropped.
fn statement(sql: &str, tokens: &[Tok], truncated: Option<usize>) -> Result<Statement, ParseError> {
    let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else {
        unreachable!("finish() passes at least one token")
    };
    let (start, end) = (first.start, truncated.unwrap_or(last.end));
    match claimed_by(tokens) {
        Some(family) => {
            let truncated = truncated.is_some();
            let mut cursor = Cursor {
                sql,
                start,
                end,
                tokens,
                pos: family.prefix.len(),
                truncated,
                masks_passwords: family.passwords,
            };
            (family.parse)(&mut cursor)
        }
        None => Ok(Statement::Other { sql: sql[start..end].to_owned() }),
    }
}

/// The family whose whole prefix begins `tokens`, if any.
fn claimed_by(tokens: &[Tok]) -> Option<&'static Family> {
    FAMILIES.iter().find(|family| {
        family.prefix.len() <= tokens.len()
            && family.prefix.iter().zip(tokens).all(|(keyword, tok)| is_keyword(tok, keyword))
    })
}

/// `CREATE EXTERNAL CONNECTION [IF NOT EXISTS] name AS uri`
fn create_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let if_not_exists = c.eat_if_not_exists()?;
    let name = c.name()?;
    c.expect_keyword("as")?;
    let uri = c.string_or_placeholder()?;
    c.expect_end()?;
    Ok(Statement::CreateExternalConnection { if_not_exists, name, uri })
}

/// `ALTER EXTERNAL CONNECTION [IF EXISTS] [IF NOT EXISTS] name AS uri`
///
/// CockroachDB's rule is `ALTER EXTERNAL CONNECTION [IF EXISTS] label_spec AS …`, and `label_spec`
/// (shared with CREATE) allows `IF NOT EXISTS name`. It parses there but means nothing (only the
/// IF EXISTS flag is read), so here too it is accepted and ignored: a plain ALTER.
fn alter_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let if_exists = c.is_keyword_at(0, "if") && c.is_keyword_at(1, "exists");
    if if_exists {
        c.pos += 2;
    }
    c.eat_if_not_exists()?;
    let name = c.name()?;
    c.expect_keyword("as")?;
    let uri = c.string_or_placeholder()?;
    c.expect_end()?;
    Ok(Statement::AlterExternalConnection { if_exists, name, uri })
}

/// `DROP EXTERNAL CONNECTION name [CASCADE | RESTRICT]` (no IF EXISTS: `IF` is taken as the
/// name and `EXISTS` is then the error, as in CockroachDB). CASCADE and RESTRICT are ours:
/// CockroachDB tracks no jobs that use a connection (its issue 98611).
fn drop_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let name = c.name()?;
    let cascade = c.eat_keyword("cascade");
    if !cascade {
        c.eat_keyword("restrict");
    }
    c.expect_end()?;
    Ok(Statement::DropExternalConnection { name, cascade })
}

/// `SHOW EXTERNAL CONNECTIONS` and `SHOW EXTERNAL CONNECTION name`
fn show_external_connections(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let statement = if c.eat_keyword("connections") {
        Statement::ShowExternalConnections
    } else {
        c.expect_keyword("connection")?;
        Statement::ShowExternalConnection { name: c.name()? }
    };
    c.expect_end()?;
    Ok(statement)
}

/// `SHOW CREATE EXTERNAL CONNECTION name`
fn show_create_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let name = c.name()?;
    c.expect_end()?;
    Ok(Statement::ShowCreateExternalConnection { name })
}

/// `SHOW CREATE ALL EXTERNAL CONNECTIONS`
fn show_create_all_external_connections(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("external")?;
    c.expect_keyword("connections")?;
    c.expect_end()?;
    Ok(Statement::ShowCreateAllExternalConnections)
}

/// `CHECK EXTERNAL CONNECTION uri [WITH option, … | WITH OPTIONS (option, …)]` where option is
/// `CONCURRENTLY = expr`, `TRANSFER = string` or `TIME = string`, each at most once.
fn check_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    const NAMES: [&str; 3] = ["concurrently", "transfer", "time"];
    c.expect_keyword("connection")?;
    let uri = c.string_or_placeholder()?;
    let mut values: [Option<String>; 3] = Default::default();
    if c.eat_keyword("with") {
        let parenthesized = c.eat_keyword("options");
        if parenthesized {
            c.expect(&Kind::LParen)?;
        }
        loop {
            let Some(slot) = NAMES.iter().position(|name| c.is_keyword_at(0, name)) else {
                return Err(c.syntax_error(None));
            };
            c.pos += 1;
            c.expect(&Kind::Eq)?;
            let value =
                if slot == 0 { c.expression()? } else { literal(&c.string_or_placeholder()?) };
            if values[slot].is_some() {
                // CockroachDB notices at the token after the repeated option.
                let reason = format!("{} option specified multiple times", NAMES[slot]);
                return Err(c.syntax_error(Some(reason)));
            }
            values[slot] = Some(value);
            if !c.eat(&Kind::Comma) {
                break;
            }
        }
        if parenthesized {
            c.expect(&Kind::RParen)?;
        }
    }
    c.expect_end()?;
    let options = NAMES
        .iter()
        .zip(values)
        .filter_map(|(name, value)| Some((name.to_ascii_uppercase(), value?)))
        .collect();
    Ok(Statement::CheckExternalConnection { uri, options })
}

/// `CREATE USER [IF NOT EXISTS] name [[WITH] option …]`
fn create_user(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    create_role_or_user(c, true)
}

/// `CREATE ROLE|GROUP [IF NOT EXISTS] name [[WITH] option …]`
fn create_role(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    create_role_or_user(c, false)
}

/// The options are `PASSWORD 'pw'`, `PASSWORD NULL`, `LOGIN` and `NOLOGIN`; CockroachDB's others
/// are refused by name. As there, an option given twice is `redundant role options`, and LOGIN
/// with NOLOGIN is `conflicting role options` once no option is redundant.
fn create_role_or_user(c: &mut Cursor<'_>, is_user: bool) -> Result<Statement, ParseError> {
    let if_not_exists = c.eat_if_not_exists()?;
    let name = c.role_name(Strings::Accepted)?;
    let (mut password, mut login, mut nologin) = (None, None, None);
    // `WITH` needs an option after it; without it, there may be none.
    let mut more = c.eat_keyword("with") || c.peek_at(0).is_some();
    while more {
        let Some(tok) = c.peek_at(0) else { return Err(c.syntax_error(None)) };
        let option_start = tok.start;
        let repeated = if c.eat_keyword("password") {
            let value = if c.eat_keyword("null") { None } else { Some(c.string_or_placeholder()?) };
            password.replace(value).is_some()
        } else if c.eat_keyword("login") {
            login.replace(option_start).is_some()
        } else if c.eat_keyword("nologin") {
            nologin.replace(option_start).is_some()
        } else if let Some(option) =
            c.peek_word().filter(|word| UNSUPPORTED_ROLE_OPTIONS.contains(&word.as_str()))
        {
            let what = match option.as_str() {
                "valid" => "VALID UNTIL".to_owned(),
                "encrypted" => "ENCRYPTED PASSWORD".to_owned(),
                _ => option.to_uppercase(),
            };
            return Err(c.unsupported(format!("role option {what}")));
        } else {
            return Err(c.syntax_error(None));
        };
        if repeated {
            return Err(c.role_options_error("redundant role options", option_start));
        }
        more = c.peek_at(0).is_some();
    }
    c.expect_end()?;
    let login = match (login, nologin) {
        (Some(a), Some(b)) => {
            return Err(c.role_options_error("conflicting role options", a.max(b)));
        }
        (login, nologin) => login.map(|_| true).or(nologin.map(|_| false)),
    };
    Ok(Statement::CreateRole { is_user, if_not_exists, name, password: password.flatten(), login })
}

/// `DROP USER [IF EXISTS] name, …`
fn drop_user(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    drop_role_or_user(c, true)
}

/// `DROP ROLE|GROUP [IF EXISTS] name, …`
fn drop_role(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    drop_role_or_user(c, false)
}

fn drop_role_or_user(c: &mut Cursor<'_>, is_user: bool) -> Result<Statement, ParseError> {
    let if_exists = c.is_keyword_at(0, "if") && c.is_keyword_at(1, "exists");
    if if_exists {
        c.pos += 2;
    }
    let names = c.list(|c| c.role_name(Strings::Accepted))?;
    c.expect_end()?;
    Ok(Statement::DropRole { is_user, if_exists, names })
}

/// `SHOW USERS`
fn show_users(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_end()?;
    Ok(Statement::ShowUsers)
}

/// `SHOW ROLES`
fn show_roles(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_end()?;
    Ok(Statement::ShowRoles)
}

/// `GRANT role, … TO member, … [WITH ADMIN OPTION]`,
/// `GRANT SYSTEM privileges TO grantee, … [WITH GRANT OPTION]` and
/// `GRANT privileges ON EXTERNAL CONNECTION name, … TO grantee, … [WITH GRANT OPTION]`;
/// a GRANT on anything else is [`Statement::Other`].
fn grant(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let Some(target) = c.grant_target("to") else { return Ok(c.other()) };
    if c.is_system("to") {
        c.pos += 1;
        let privileges = c.privileges()?;
        c.expect_keyword("to")?;
        let grantees = c.list(|c| c.role_name(Strings::Refused))?;
        let grant_option = c.eat_with_option("grant")?;
        c.expect_end()?;
        return Ok(Statement::GrantSystem { privileges, grantees, grant_option });
    }
    if target == Target::Roles {
        let roles = c.list(|c| c.role_name(Strings::Refused))?;
        c.expect_keyword("to")?;
        let members = c.list(|c| c.role_name(Strings::Refused))?;
        let admin_option = c.eat_with_option("admin")?;
        c.expect_end()?;
        return Ok(Statement::GrantRole { roles, members, admin_option });
    }
    let privileges = c.privileges()?;
    let connections = c.on_external_connection()?;
    c.expect_keyword("to")?;
    let grantees = c.list(|c| c.role_name(Strings::Refused))?;
    let grant_option = c.eat_with_option("grant")?;
    c.expect_end()?;
    Ok(Statement::GrantOnConnection { privileges, connections, grantees, grant_option })
}

/// `REVOKE [ADMIN OPTION FOR] role, … FROM member, …`,
/// `REVOKE [GRANT OPTION FOR] SYSTEM privileges FROM grantee, …` and
/// `REVOKE [GRANT OPTION FOR] privileges ON EXTERNAL CONNECTION name, … FROM grantee, …`;
/// a REVOKE on anything else is [`Statement::Other`].
fn revoke(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let Some(target) = c.grant_target("from") else { return Ok(c.other()) };
    let option_for = |c: &mut Cursor<'_>, first: &str| {
        let found =
            c.is_keyword_at(0, first) && c.is_keyword_at(1, "option") && c.is_keyword_at(2, "for");
        if found {
            c.pos += 3;
        }
        found
    };
    // GRANT is reserved, so `GRANT OPTION FOR` is never a role; ADMIN is not (`REVOKE admin …`).
    let grant_option_for = option_for(c, "grant");
    let admin_option_for = !grant_option_for && option_for(c, "admin");
    if !admin_option_for && c.is_system("from") {
        c.pos += 1;
        let privileges = c.privileges()?;
        c.expect_keyword("from")?;
        let grantees = c.list(|c| c.role_name(Strings::Refused))?;
        c.expect_end()?;
        return Ok(Statement::RevokeSystem { privileges, grantees, grant_option_for });
    }
    if admin_option_for || (target == Target::Roles && !grant_option_for) {
        let roles = c.list(|c| c.role_name(Strings::Refused))?;
        c.expect_keyword("from")?;
        let members = c.list(|c| c.role_name(Strings::Refused))?;
        c.expect_end()?;
        return Ok(Statement::RevokeRole { roles, members, admin_option_for });
    }
    let privileges = c.privileges()?;
    let connections = c.on_external_connection()?;
    c.expect_keyword("from")?;
    let grantees = c.list(|c| c.role_name(Strings::Refused))?;
    c.expect_end()?;
    Ok(Statement::RevokeOnConnection { privileges, connections, grantees, grant_option_for })
}

/// `SHOW SYSTEM GRANTS [FOR grantee, …]`
fn show_system_grants(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let grantees = c.for_grantees()?;
    c.expect_end()?;
    Ok(Statement::ShowSystemGrants { grantees })
}

/// `SHOW GRANTS ON EXTERNAL CONNECTION name, … [FOR grantee, …]`
fn show_grants_on_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let connections = c.list(Cursor::connection_name)?;
    let grantees = c.for_grantees()?;
    c.expect_end()?;
    Ok(Statement::ShowGrantsOnConnection { connections, grantees })
}

/// What a GRANT or REVOKE is about, as far as the words before its TO or FROM tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Privileges (on an external connection, or SYSTEM ones): `ON EXTERNAL …`, or `ALL`.
    Privileges,
    /// Role membership: no `ON` before the TO or FROM.
    Roles,
}

/// Whether a role name may be a string literal (`CREATE USER 'alice'`), as in CockroachDB's
/// CREATE and DROP, or only an identifier, as in its `role_spec_list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strings {
    Accepted,
    Refused,
}

/// Whether `tok` is the bare word `keyword` (any case; a quoted identifier is never a keyword).
fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(&tok.kind, Kind::Word(word) if word.eq_ignore_ascii_case(keyword))
}

/// A position in one statement's tokens.
#[derive(Debug)]
struct Cursor<'a> {
    /// The whole SQL text.
    sql: &'a str,
    /// The statement: `sql[start..end]`.
    start: usize,
    end: usize,
    tokens: &'a [Tok],
    pos: usize,
    /// Tokens past the end of `tokens` were dropped ([`MAX_OWNED_TOKENS`]).
    truncated: bool,
    /// The statement may hold passwords: errors show each value after `PASSWORD` as `'*****'`.
    masks_passwords: bool,
}

impl Cursor<'_> {
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n)
    }

    fn is_keyword_at(&self, n: usize, keyword: &str) -> bool {
        self.peek_at(n).is_some_and(|tok| is_keyword(tok, keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword_at(0, keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), ParseError> {
        if self.eat_keyword(keyword) { Ok(()) } else { Err(self.syntax_error(None)) }
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        let found = self.peek_at(0).is_some_and(|tok| tok.kind == *kind);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, kind: &Kind) -> Result<(), ParseError> {
        if self.eat(kind) { Ok(()) } else { Err(self.syntax_error(None)) }
    }

    fn expect_end(&self) -> Result<(), ParseError> {
        if self.pos == self.tokens.len() && !self.truncated {
            Ok(())
        } else {
            Err(self.syntax_error(None))
        }
    }

    /// `IF NOT EXISTS`, if there. `IF` alone is a name (it is not reserved).
    fn eat_if_not_exists(&mut self) -> Result<bool, ParseError> {
        if !(self.is_keyword_at(0, "if") && self.is_keyword_at(1, "not")) {
            return Ok(false);
        }
        self.pos += 2;
        self.expect_keyword("exists")?;
        Ok(true)
    }

    /// The whole statement as [`Statement::Other`], for the host's database.
    fn other(&self) -> Statement {
        Statement::Other { sql: self.sql[self.start..self.end].to_owned() }
    }

    /// The current token's word, lower-cased, if it is a bare word.
    fn peek_word(&self) -> Option<String> {
        match &self.peek_at(0)?.kind {
            Kind::Word(word) => Some(word.to_lowercase()),
            _ => None,
        }
    }

    /// One or more `item`s separated by commas.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ParseError>,
    ) -> Result<Vec<T>, ParseError> {
        let mut items = vec![item(self)?];
        while self.eat(&Kind::Comma) {
            items.push(item(self)?);
        }
        Ok(items)
    }

    /// Decides what the GRANT or REVOKE at the cursor is about by the first ON or `to_from`
    /// ahead (neither can be a privilege or role name: both are reserved). `None`: an ON not
    /// followed by EXTERNAL, so a grant on a table, database, … that is not extconn's.
    fn grant_target(&self, to_from: &str) -> Option<Target> {
        let ahead = (0..).map_while(|n| self.peek_at(n).map(|tok| (n, tok)));
        let first = ahead
            .filter(|(_, tok)| is_keyword(tok, "on") || is_keyword(tok, to_from))
            .map(|(n, tok)| (n, is_keyword(tok, "on")))
            .next();
        match first {
            Some((n, true)) if self.is_keyword_at(n + 1, "external") => Some(Target::Privileges),
            Some((_, true)) => None,
            // `GRANT ALL TO u` is a privilege list missing its ON, as CockroachDB sees it.
            _ if self.is_keyword_at(0, "all") => Some(Target::Privileges),
            _ => Some(Target::Roles),
        }
    }

    /// Whether the cursor is at the SYSTEM of `GRANT SYSTEM …` / `REVOKE … SYSTEM …`. SYSTEM is
    /// not reserved, so `GRANT system TO u` grants the role `system`: it is the keyword only when
    /// a privilege follows.
    fn is_system(&self, to_from: &str) -> bool {
        self.is_keyword_at(0, "system")
            && self.peek_at(1).is_some_and(|tok| match &tok.kind {
                Kind::Word(_) => !is_keyword(tok, to_from) && !is_keyword(tok, "on"),
                Kind::QuotedIdent(_) => true,
                _ => false,
            })
    }

    /// CockroachDB's `privileges`: `ALL [PRIVILEGES]` (`["ALL"]`) or a list of privilege names,
    /// each upper-cased. Whether they are valid is the executor's business.
    fn privileges(&mut self) -> Result<Vec<String>, ParseError> {
        if self.eat_keyword("all") {
            self.eat_keyword("privileges");
            return Ok(vec!["ALL".to_owned()]);
        }
        self.list(|c| {
            let value = match c.peek_at(0).map(|tok| &tok.kind) {
                Some(Kind::QuotedIdent(value)) => value.to_uppercase(),
                Some(Kind::Word(word)) if is_privilege_word(&word.to_lowercase()) => {
                    word.to_uppercase()
                }
                _ => return Err(c.syntax_error(None)),
            };
            c.pos += 1;
            Ok(value)
        })
    }

    /// `ON EXTERNAL CONNECTION name, …`
    fn on_external_connection(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect_keyword("on")?;
        self.expect_keyword("external")?;
        self.expect_keyword("connection")?;
        self.list(Self::connection_name)
    }

    /// `WITH <first> OPTION` (`first` being GRANT or ADMIN), if there.
    fn eat_with_option(&mut self, first: &str) -> Result<bool, ParseError> {
        if !self.eat_keyword("with") {
            return Ok(false);
        }
        self.expect_keyword(first)?;
        self.expect_keyword("option")?;
        Ok(true)
    }

    /// `FOR grantee, …`, if there.
    fn for_grantees(&mut self) -> Result<Option<Vec<String>>, ParseError> {
        if !self.eat_keyword("for") {
            return Ok(None);
        }
        Ok(Some(self.list(|c| c.role_name(Strings::Refused))?))
    }

    /// A connection name where CockroachDB's grammar takes a `name` (GRANT, REVOKE, SHOW
    /// GRANTS): a quoted identifier (as is) or a bare non-reserved word (lower-cased), not empty.
    /// A string literal is a syntax error there.
    fn connection_name(&mut self) -> Result<String, ParseError> {
        let value = match self.peek_at(0).map(|tok| &tok.kind) {
            Some(Kind::QuotedIdent(value)) => value.clone(),
            Some(Kind::Word(word)) if !is_reserved(&word.to_lowercase()) => word.to_lowercase(),
            _ => return Err(self.syntax_error(None)),
        };
        if value.is_empty() {
            return Err(ParseError::EmptyName);
        }
        self.pos += 1;
        Ok(value)
    }

    /// A role or user name (CockroachDB's `role_spec`): a quoted identifier (as is), a bare
    /// non-reserved word (lower-cased; `public` is one), or where `strings` allows, a string
    /// literal (as is). Not empty. `CURRENT_USER` and `SESSION_USER` are not supported.
    fn role_name(&mut self, strings: Strings) -> Result<String, ParseError> {
        let Some(tok) = self.peek_at(0) else {
            return Err(self.syntax_error(None));
        };
        let value = match &tok.kind {
            Kind::QuotedIdent(value) => value.clone(),
            Kind::Str(value) if strings == Strings::Accepted => value.clone(),
            Kind::Placeholder if strings == Strings::Accepted => {
                return Err(self.placeholder_error(tok));
            }
            Kind::Word(word) => {
                let word = word.to_lowercase();
                if matches!(word.as_str(), "current_user" | "session_user") {
                    return Err(self.unsupported(word.to_uppercase()));
                }
                if is_reserved(&word) {
                    return Err(self.syntax_error(None));
                }
                word
            }
            _ => return Err(self.syntax_error(None)),
        };
        if value.is_empty() {
            return Err(ParseError::EmptyRoleName);
        }
        self.pos += 1;
        Ok(value)
    }

    /// A connection name: [`Self::string_or_placeholder`], not empty.
    fn name(&mut self) -> Result<String, ParseError> {
        let name = self.string_or_placeholder()?;
        if name.is_empty() {
            return Err(ParseError::EmptyName);
        }
        Ok(name)
    }

    /// CockroachDB's `string_or_placeholder`: a string constant (as is), a quoted identifier
    /// (as is), or a bare non-reserved word (lower-cased). Placeholders are not supported.
    fn string_or_placeholder(&mut self) -> Result<String, ParseError> {
        let Some(tok) = self.peek_at(0) else {
            return Err(self.syntax_error(None));
        };
        let value = match &tok.kind {
            Kind::Str(value) | Kind::QuotedIdent(value) => value.clone(),
            Kind::Word(word) => {
                let word = word.to_lowercase();
                if RESERVED.contains(&word.as_str()) {
                    return Err(self.syntax_error(None));
                }
                word
            }
            Kind::Placeholder => return Err(self.placeholder_error(tok)),
            _ => return Err(self.syntax_error(None)),
        };
        self.pos += 1;
        Ok(value)
    }

    /// An expression's text, as written: tokens up to a `,` or `)` outside parentheses, or the
    /// end. Its meaning is the executor's business.
    fn expression(&mut self) -> Result<String, ParseError> {
        let first = self.pos;
        let mut depth = 0usize;
        while let Some(tok) = self.peek_at(0) {
            match tok.kind {
                Kind::LParen => depth += 1,
                Kind::RParen if depth == 0 => break,
                Kind::RParen => depth -= 1,
                Kind::Comma if depth == 0 => break,
                Kind::Placeholder => return Err(self.placeholder_error(tok)),
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == first || depth > 0 {
            return Err(self.syntax_error(None));
        }
        let (start, end) = (self.tokens[first].start, self.tokens[self.pos - 1].end);
        Ok(self.sql[start..end].to_owned())
    }

    /// A syntax error at the current token, or at the end of the statement (but past the tokens
    /// kept of a truncated statement, the limit error).
    fn syntax_error(&self, reason: Option<String>) -> ParseError {
        let (near, pos) = match self.peek_at(0) {
            Some(tok) if self.secrets().any(|(start, _)| start == tok.start) => {
                ("*****".to_owned(), tok.start)
            }
            Some(tok) => (self.near(tok), tok.start),
            None if self.truncated => return ParseError::TooManyTokens,
            None => ("EOF".to_owned(), self.end),
        };
        ParseError::Syntax { near, reason, detail: self.detail(pos) }
    }

    fn placeholder_error(&self, tok: &Tok) -> ParseError {
        ParseError::Placeholder { detail: self.detail(tok.start) }
    }

    /// `what` is not supported, with a caret under the current token.
    fn unsupported(&self, what: String) -> ParseError {
        let pos = self.peek_at(0).map_or(self.end, |tok| tok.start);
        ParseError::Unsupported { what, detail: self.detail(pos) }
    }

    /// CockroachDB's error for repeated or contradicting role options, with a caret under the
    /// option at byte `pos`.
    fn role_options_error(&self, message: &'static str, pos: usize) -> ParseError {
        ParseError::RoleOptions { message, detail: self.detail(pos) }
    }

    /// Where the passwords are, when [`Self::masks_passwords`].
    fn secrets(&self) -> impl Iterator<Item = (usize, usize)> {
        password_spans(if self.masks_passwords { self.tokens } else { &[] })
    }

    /// [`source_detail`] for a fault at byte `pos` of the SQL text, passwords masked. Masking
    /// shows nothing past the tokens kept, which were not searched for passwords.
    fn detail(&self, pos: usize) -> String {
        if !self.masks_passwords {
            return source_detail(&self.sql[self.start..self.end], pos - self.start);
        }
        let end = match self.tokens.last() {
            Some(last) if self.truncated => last.end,
            _ => self.end,
        };
        masked_detail(self.sql, (self.start, end), self.secrets(), pos)
    }

    /// A token as CockroachDB's syntax errors show it: words lower-cased, literals and quoted
    /// identifiers by value, placeholders by number, operators by their first character.
    fn near(&self, tok: &Tok) -> String {
        let text = &self.sql[tok.start..tok.end];
        match &tok.kind {
            Kind::Word(word) => word.to_lowercase(),
            Kind::QuotedIdent(value) | Kind::Str(value) | Kind::OtherLiteral(value) => {
                value.clone()
            }
            Kind::Number => text.to_owned(),
            Kind::Placeholder => match text.strip_prefix('$') {
                Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.to_owned(),
                _ => text.to_owned(),
            },
            _ => text.chars().next().map(String::from).unwrap_or_default(),
        }
    }
}

/// The byte spans of the secrets in `tokens`: the values after a bare `PASSWORD` (other than
/// `NULL`) or after `encryption_passphrase =`, and string literals holding a URI (`://`), which
/// may carry credentials.
fn password_spans(tokens: &[Tok]) -> impl Iterator<Item = (usize, usize)> {
    tokens
        .iter()
        .enumerate()
        .filter(|&(i, tok)| {
            let after_password =
                i > 0 && is_keyword(&tokens[i - 1], "password") && !is_keyword(tok, "null");
            let passphrase = i > 1
                && tokens[i - 1].kind == Kind::Eq
                && is_keyword(&tokens[i - 2], "encryption_passphrase");
            after_password
                || passphrase
                || matches!(&tok.kind, Kind::Str(value) if value.contains("://"))
        })
        .map(|(_, tok)| (tok.start, tok.end))
}

/// [`source_detail`] for the statement `sql[start..end]` with a fault at byte `pos` of `sql`,
/// each of `secrets` (in order, within the statement) shown as `'*****'`. A fault inside a secret
/// is shown at its start.
fn masked_detail(
    sql: &str,
    (start, end): (usize, usize),
    secrets: impl Iterator<Item = (usize, usize)>,
    pos: usize,
) -> String {
    let pos = pos.clamp(start, end);
    let mut shown = String::with_capacity(end - start);
    let mut copied = start;
    let mut caret = None;
    for (secret_start, secret_end) in secrets {
        if caret.is_none() && pos < secret_end {
            caret = Some(shown.len() + pos.min(secret_start) - copied);
        }
        shown.push_str(&sql[copied..secret_start]);
        shown.push_str("'*****'");
        copied = secret_end;
    }
    let caret = caret.unwrap_or(shown.len() + pos - copied);
    shown.push_str(&sql[copied..end]);
    source_detail(&shown, caret)
}

/// CockroachDB's detail for a syntax error: the statement up to the end of the line holding the
/// fault, then a caret under it. `pos` is a byte offset into `statement`. The caret is placed by
/// characters (CockroachDB counts bytes, which misplaces it after non-ASCII text), and tabs are
/// kept so it lines up in a terminal.
pub(super) fn source_detail(statement: &str, pos: usize) -> String {
    let line_end = statement[pos..].find('\n').map_or(statement.len(), |i| pos + i);
    let line_start = statement[..pos].rfind('\n').map_or(0, |i| i + 1);
    let indent: String =
        statement[line_start..pos].chars().map(|ch| if ch == '\t' { '\t' } else { ' ' }).collect();
    format!("source SQL:\n{}\n{indent}^", &statement[..line_end])
}
