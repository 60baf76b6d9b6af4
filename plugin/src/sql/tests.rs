//! Table-driven tests of the grammar: one row per input, the expected statements or error.

use super::parser::{MAX_OWNED_TOKENS, parse_chunked};
use super::{MAX_SQL_BYTES, MAX_STATEMENTS, Statement, parse};
use crate::error::{Error, ErrorKind, sqlstate};

fn create(name: &str, uri: &str) -> Statement {
    Statement::CreateExternalConnection { if_not_exists: false, name: name.into(), uri: uri.into() }
}

fn create_if_not_exists(name: &str, uri: &str) -> Statement {
    Statement::CreateExternalConnection { if_not_exists: true, name: name.into(), uri: uri.into() }
}

fn alter(name: &str, uri: &str) -> Statement {
    Statement::AlterExternalConnection { if_exists: false, name: name.into(), uri: uri.into() }
}

fn alter_if_exists(name: &str, uri: &str) -> Statement {
    Statement::AlterExternalConnection { if_exists: true, name: name.into(), uri: uri.into() }
}

fn drop(name: &str) -> Statement {
    Statement::DropExternalConnection { name: name.into(), cascade: false }
}

fn show_create(name: &str) -> Statement {
    Statement::ShowCreateExternalConnection { name: name.into() }
}

fn show(name: &str) -> Statement {
    Statement::ShowExternalConnection { name: name.into() }
}

fn check(uri: &str, options: &[(&str, &str)]) -> Statement {
    Statement::CheckExternalConnection {
        uri: uri.into(),
        options: options.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn create_role(
    is_user: bool,
    name: &str,
    password: Option<&str>,
    login: Option<bool>,
) -> Statement {
    Statement::CreateRole {
        is_user,
        if_not_exists: false,
        name: name.into(),
        password: password.map(Into::into),
        login,
    }
}

fn drop_role(is_user: bool, if_exists: bool, names: &[&str]) -> Statement {
    Statement::DropRole { is_user, if_exists, names: strings(names) }
}

fn grant_role(roles: &[&str], members: &[&str], admin_option: bool) -> Statement {
    Statement::GrantRole { roles: strings(roles), members: strings(members), admin_option }
}

fn revoke_role(roles: &[&str], members: &[&str], admin_option_for: bool) -> Statement {
    Statement::RevokeRole { roles: strings(roles), members: strings(members), admin_option_for }
}

fn grant_system(privileges: &[&str], grantees: &[&str], grant_option: bool) -> Statement {
    Statement::GrantSystem {
        privileges: strings(privileges),
        grantees: strings(grantees),
        grant_option,
    }
}

fn revoke_system(privileges: &[&str], grantees: &[&str], grant_option_for: bool) -> Statement {
    Statement::RevokeSystem {
        privileges: strings(privileges),
        grantees: strings(grantees),
        grant_option_for,
    }
}

fn grant_on(
    privileges: &[&str],
    connections: &[&str],
    grantees: &[&str],
    grant_option: bool,
) -> Statement {
    Statement::GrantOnConnection {
        privileges: strings(privileges),
        connections: strings(connections),
        grantees: strings(grantees),
        grant_option,
    }
}

fn revoke_on(
    privileges: &[&str],
    connections: &[&str],
    grantees: &[&str],
    grant_option_for: bool,
) -> Statement {
    Statement::RevokeOnConnection {
        privileges: strings(privileges),
        connections: strings(connections),
        grantees: strings(grantees),
        grant_option_for,
    }
}

fn show_grants_on(connections: &[&str], grantees: Option<&[&str]>) -> Statement {
    Statement::ShowGrantsOnConnection {
        connections: strings(connections),
        grantees: grantees.map(strings),
    }
}

fn other(sql: &str) -> Statement {
    Statement::Other { sql: sql.into() }
}

/// CockroachDB's syntax-error detail: `shown`, then a caret under byte `at` of its last line.
fn caret(shown: &str, at: usize) -> String {
    let (masked, at) = mask_uris(shown, at);
    let shown = masked.as_str();
    let line_start = shown.rfind('\n').map_or(0, |i| i + 1);
    let indent = " ".repeat(shown[line_start..at].chars().count());
    format!("source SQL:\n{shown}\n{indent}^")
}

/// `shown` as errors show it: every `'…://…'` literal (a URI, which may hold credentials) as
/// `'*****'`; `at` moved along.
fn mask_uris(shown: &str, at: usize) -> (String, usize) {
    let (mut out, mut rest, mut offset, mut new_at) = (String::new(), shown, 0, at);
    while let Some(open) = rest.find('\'') {
        let Some(len) = rest[open + 1..].find('\'') else { break };
        let close = open + 1 + len;
        let literal = &rest[open..=close];
        out.push_str(&rest[..open]);
        if literal.contains("://") {
            out.push_str("'*****'");
            if offset + close < at {
                new_at = new_at + 7 - literal.len();
            }
        } else {
            out.push_str(literal);
        }
        offset += close + 1;
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    (out, new_at)
}

/// The caret under the first `token` in `shown`.
fn caret_at(shown: &str, token: &str) -> String {
    caret(shown, shown.find(token).expect("token in shown source"))
}

/// The caret after the end of `shown` (a fault at EOF).
fn caret_eof(shown: &str) -> String {
    caret(shown, shown.len())
}

/// What a row expects.
#[derive(Debug)]
enum Want {
    Ok(Vec<Statement>),
    Err { sqlstate: &'static str, message: String, detail: Option<String> },
}

fn ok(statements: Vec<Statement>) -> Want {
    Want::Ok(statements)
}

fn syntax(message: &str, detail: String) -> Want {
    Want::Err { sqlstate: sqlstate::SYNTAX_ERROR, message: message.into(), detail: Some(detail) }
}

fn near(token: &str, detail: String) -> Want {
    syntax(&format!("at or near \"{token}\": syntax error"), detail)
}

fn empty_name() -> Want {
    Want::Err {
        sqlstate: sqlstate::INVALID_PARAMETER_VALUE,
        message: "external connection name cannot be empty".into(),
        detail: None,
    }
}

fn empty_role_name() -> Want {
    Want::Err {
        sqlstate: sqlstate::INVALID_PARAMETER_VALUE,
        message: "role name cannot be empty".into(),
        detail: None,
    }
}

fn unsupported(message: &str, detail: String) -> Want {
    Want::Err {
        sqlstate: sqlstate::FEATURE_NOT_SUPPORTED,
        message: message.into(),
        detail: Some(detail),
    }
}

fn placeholder(detail: String) -> Want {
    Want::Err {
        sqlstate: sqlstate::FEATURE_NOT_SUPPORTED,
        message: "placeholders are not supported here".into(),
        detail: Some(detail),
    }
}

fn run<S: AsRef<str>>(rows: Vec<(S, Want)>) {
    let mut failures = Vec::new();
    for (sql, want) in rows {
        let sql = sql.as_ref();
        let got = parse(sql);
        let pass = match (&got, &want) {
            (Ok(got), Want::Ok(want)) => got == want,
            (Err(got), Want::Err { sqlstate, message, detail }) => {
                got.sqlstate == *sqlstate
                    && got.message == *message
                    && got.detail.as_deref() == detail.as_deref()
            }
            _ => false,
        };
        if !pass {
            failures.push(format!("sql:  {sql:?}\nwant: {want:#?}\ngot:  {got:#?}\n"));
        }
    }
    assert!(failures.is_empty(), "{} rows failed:\n\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn names() {
    const U: &str = "nodelocal://1/x";
    let q = |name: &str| format!("CREATE EXTERNAL CONNECTION {name} AS 'nodelocal://1/x'");
    let rows: Vec<(String, Want)> = vec![
        (q("'Foo'"), ok(vec![create("Foo", U)])),
        (q("\"Foo\""), ok(vec![create("Foo", U)])),
        (q("Foo"), ok(vec![create("foo", U)])),
        (q("FOO_bar$1"), ok(vec![create("foo_bar$1", U)])),
        (q("'my conn'"), ok(vec![create("my conn", U)])),
        (q("'it''s'"), ok(vec![create("it's", U)])),
        (q("\"say \"\"hi\"\"\""), ok(vec![create("say \"hi\"", U)])),
        (q("'select'"), ok(vec![create("select", U)])),
        (q("\"SELECT\""), ok(vec![create("SELECT", U)])),
        (q("'Ünïcødé ✓'"), ok(vec![create("Ünïcødé ✓", U)])),
        (q("Ünïcødé"), ok(vec![create("ünïcødé", U)])),
        (q("e'tab\\there\\''"), ok(vec![create("tab\there'", U)])),
        (q("E'\\x41'"), ok(vec![create("A", U)])),
        (q("'back\\slash'"), ok(vec![create("back\\slash", U)])),
        (q("$$dollar 'quoted'$$"), ok(vec![create("dollar 'quoted'", U)])),
        (q("$tag$tagged$tag$"), ok(vec![create("tagged", U)])),
        (q("'semi;colon'"), ok(vec![create("semi;colon", U)])),
        (q("'multi\nline'"), ok(vec![create("multi\nline", U)])),
        // A string continued after a newline is one string; on the same line it is two tokens.
        (q("'con'\n  'tinued'"), ok(vec![create("continued", U)])),
        (q("e'a\\n'\n'b'"), ok(vec![create("a\nb", U)])),
        // Non-reserved keywords are names; reserved ones are not.
        (q("if"), ok(vec![create("if", U)])),
        (q("connection"), ok(vec![create("connection", U)])),
        (q("External"), ok(vec![create("external", U)])),
        (q("exists"), ok(vec![create("exists", U)])),
        (q("select"), near("select", caret_at(&q("select"), "select"))),
        (q("Table"), near("table", caret_at(&q("Table"), "Table"))),
        (q("NULL"), near("null", caret_at(&q("NULL"), "NULL"))),
        (q("123"), near("123", caret_at(&q("123"), "123"))),
        (q("b'bytes'"), near("bytes", caret_at(&q("b'bytes'"), "b'"))),
        (q("x'00'"), near("00", caret_at(&q("x'00'"), "x'"))),
        (q("''"), empty_name()),
        (q("\"\""), empty_name()),
        (q("$$$$"), empty_name()),
        (q("$1"), placeholder(caret_at(&q("$1"), "$1"))),
        (q("'a' 'b'"), near("b", caret_at(&q("'a' 'b'"), "'b'"))),
        (q("'a' -- c\n'b'"), near("b", caret_at(&q("'a' -- c\n'b'"), "'b'"))),
    ];
    run(rows);

    // The same rules hold in every name position.
    run(vec![
        ("DROP EXTERNAL CONNECTION \"Foo\"", ok(vec![drop("Foo")])),
        ("DROP EXTERNAL CONNECTION Foo", ok(vec![drop("foo")])),
        ("DROP EXTERNAL CONNECTION foo RESTRICT", ok(vec![drop("foo")])),
        (
            "DROP EXTERNAL CONNECTION foo CASCADE",
            ok(vec![Statement::DropExternalConnection { name: "foo".into(), cascade: true }]),
        ),
        ("DROP EXTERNAL CONNECTION ''", empty_name()),
        ("SHOW EXTERNAL CONNECTION 'Foo Bar'", ok(vec![show("Foo Bar")])),
        ("SHOW EXTERNAL CONNECTION \"\"", empty_name()),
        ("SHOW CREATE EXTERNAL CONNECTION FooBar", ok(vec![show_create("foobar")])),
        ("ALTER EXTERNAL CONNECTION 'Foo' AS 's3://b'", ok(vec![alter("Foo", "s3://b")])),
        ("ALTER EXTERNAL CONNECTION '' AS 's3://b'", empty_name()),
    ]);
}

#[test]
fn uris() {
    run(vec![
        (
            "CREATE EXTERNAL CONNECTION foo AS 's3://bucket/path?AWS_SECRET_ACCESS_KEY=a''b'",
            ok(vec![create("foo", "s3://bucket/path?AWS_SECRET_ACCESS_KEY=a'b")]),
        ),
        ("CREATE EXTERNAL CONNECTION foo AS ''", ok(vec![create("foo", "")])),
        // string_or_placeholder: a bare word is allowed, lower-cased; a quoted one is kept.
        ("CREATE EXTERNAL CONNECTION foo AS Bar", ok(vec![create("foo", "bar")])),
        ("CREATE EXTERNAL CONNECTION foo AS \"Bar\"", ok(vec![create("foo", "Bar")])),
        (
            "CREATE EXTERNAL CONNECTION foo AS $1",
            placeholder(caret_at("CREATE EXTERNAL CONNECTION foo AS $1", "$1")),
        ),
        (
            "CREATE EXTERNAL CONNECTION foo AS 'a' || 'b'",
            near("|", caret_at("CREATE EXTERNAL CONNECTION foo AS 'a' || 'b'", "||")),
        ),
        (
            "CREATE EXTERNAL CONNECTION foo AS 42",
            near("42", caret_at("CREATE EXTERNAL CONNECTION foo AS 42", "42")),
        ),
    ]);
}

#[test]
fn if_exists_and_if_not_exists() {
    const SQL_IF_NOT: &str = "CREATE EXTERNAL CONNECTION IF NOT foo AS 'x'";
    const SQL_DROP_IF: &str = "DROP EXTERNAL CONNECTION IF EXISTS foo";
    run(vec![
        (
            "CREATE EXTERNAL CONNECTION IF NOT EXISTS foo AS 'x'",
            ok(vec![create_if_not_exists("foo", "x")]),
        ),
        (
            "create external connection if not exists 'if' as 'x'",
            ok(vec![create_if_not_exists("if", "x")]),
        ),
        ("CREATE EXTERNAL CONNECTION if AS 'x'", ok(vec![create("if", "x")])),
        (SQL_IF_NOT, near("foo", caret_at(SQL_IF_NOT, "foo"))),
        ("ALTER EXTERNAL CONNECTION foo AS 'x'", ok(vec![alter("foo", "x")])),
        ("ALTER EXTERNAL CONNECTION IF EXISTS foo AS 'x'", ok(vec![alter_if_exists("foo", "x")])),
        // label_spec's IF NOT EXISTS parses and means nothing.
        ("ALTER EXTERNAL CONNECTION IF NOT EXISTS foo AS 'x'", ok(vec![alter("foo", "x")])),
        (
            "ALTER EXTERNAL CONNECTION IF EXISTS IF NOT EXISTS foo AS 'x'",
            ok(vec![alter_if_exists("foo", "x")]),
        ),
        ("ALTER EXTERNAL CONNECTION if AS 'x'", ok(vec![alter("if", "x")])),
        (
            "ALTER EXTERNAL CONNECTION IF EXISTS AS 'x'",
            near("as", caret_at("ALTER EXTERNAL CONNECTION IF EXISTS AS 'x'", "AS")),
        ),
        (SQL_DROP_IF, near("exists", caret_at(SQL_DROP_IF, "EXISTS"))),
        (
            "DROP EXTERNAL CONNECTION foo CASCADE RESTRICT",
            near("restrict", caret_at("DROP EXTERNAL CONNECTION foo CASCADE RESTRICT", "RESTRICT")),
        ),
        (
            "DROP EXTERNAL CONNECTION foo, bar",
            near(",", caret_at("DROP EXTERNAL CONNECTION foo, bar", ",")),
        ),
    ]);
}

#[test]
fn show_forms() {
    run(vec![
        ("SHOW EXTERNAL CONNECTIONS", ok(vec![Statement::ShowExternalConnections])),
        ("show external connections", ok(vec![Statement::ShowExternalConnections])),
        ("SHOW EXTERNAL CONNECTION foo", ok(vec![show("foo")])),
        ("SHOW CREATE EXTERNAL CONNECTION 'Foo'", ok(vec![show_create("Foo")])),
        (
            "SHOW CREATE ALL EXTERNAL CONNECTIONS",
            ok(vec![Statement::ShowCreateAllExternalConnections]),
        ),
        (
            "Show Create All External Connections",
            ok(vec![Statement::ShowCreateAllExternalConnections]),
        ),
        (
            "SHOW CREATE ALL EXTERNAL CONNECTION",
            near("connection", caret_at("SHOW CREATE ALL EXTERNAL CONNECTION", "CONNECTION")),
        ),
        ("SHOW CREATE ALL TABLES", near("tables", caret_at("SHOW CREATE ALL TABLES", "TABLES"))),
        (
            "SHOW EXTERNAL CONNECTIONS foo",
            near("foo", caret_at("SHOW EXTERNAL CONNECTIONS foo", "foo")),
        ),
        ("SHOW EXTERNAL CONNECTION", near("EOF", caret_eof("SHOW EXTERNAL CONNECTION"))),
        (
            "SHOW CREATE EXTERNAL CONNECTIONS",
            near("connections", caret_at("SHOW CREATE EXTERNAL CONNECTIONS", "CONNECTIONS")),
        ),
        ("SHOW EXTERNAL", near("EOF", caret_eof("SHOW EXTERNAL"))),
        // Not ours: passed through.
        ("SHOW CREATE TABLE t", ok(vec![other("SHOW CREATE TABLE t")])),
        ("SHOW CREATE", ok(vec![other("SHOW CREATE")])),
        ("SHOW TABLES", ok(vec![Statement::ShowTables { database: None }])),
        ("SHOW TRANSACTION ISOLATION LEVEL", ok(vec![other("SHOW TRANSACTION ISOLATION LEVEL")])),
    ]);
}

#[test]
fn check_statement() {
    const CHECK_DUP: &str = "CHECK EXTERNAL CONNECTION 'u' WITH TRANSFER = '1', TRANSFER = '2'";
    const CHECK_DUP_PAREN: &str =
        "CHECK EXTERNAL CONNECTION 'u' WITH OPTIONS (TIME = '1s', TIME = '2s')";
    const CHECK_UNKNOWN: &str = "CHECK EXTERNAL CONNECTION 'u' WITH SPEED = 3";
    const CHECK_OPEN: &str = "CHECK EXTERNAL CONNECTION 'u' WITH OPTIONS (CONCURRENTLY = 3";
    const CHECK_EMPTY: &str = "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = , TIME = '1s'";
    const CHECK_UNBALANCED: &str = "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = (1, 2";
    const CHECK_CLOSE: &str = "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = 1)";
    const CHECK_PLACEHOLDER: &str = "CHECK EXTERNAL CONNECTION 'u' WITH TRANSFER = $1";
    const CHECK_NO_OPTIONS: &str = "CHECK EXTERNAL CONNECTION 'u' WITH";
    run(vec![
        ("CHECK EXTERNAL CONNECTION 'nodelocal://1/x'", ok(vec![check("nodelocal://1/x", &[])])),
        (
            "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = 3, TRANSFER = '2 MiB', TIME = '1s'",
            ok(vec![check(
                "u",
                &[("CONCURRENTLY", "3"), ("TRANSFER", "'2 MiB'"), ("TIME", "'1s'")],
            )]),
        ),
        (
            "check external connection 'u' with options (time = '1s', concurrently = (2 + 1) * 2)",
            ok(vec![check("u", &[("CONCURRENTLY", "(2 + 1) * 2"), ("TIME", "'1s'")])]),
        ),
        (
            "CHECK EXTERNAL CONNECTION 'u' WITH TRANSFER = e'it\\'s', TIME = OneSecond",
            ok(vec![check("u", &[("TRANSFER", "'it''s'"), ("TIME", "'onesecond'")])]),
        ),
        (
            "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = f(1, 2)",
            ok(vec![check("u", &[("CONCURRENTLY", "f(1, 2)")])]),
        ),
        (
            CHECK_DUP,
            syntax(
                "at or near \"EOF\": syntax error: transfer option specified multiple times",
                caret_eof(CHECK_DUP),
            ),
        ),
        (
            CHECK_DUP_PAREN,
            syntax(
                "at or near \")\": syntax error: time option specified multiple times",
                caret(CHECK_DUP_PAREN, CHECK_DUP_PAREN.len() - 1),
            ),
        ),
        (CHECK_UNKNOWN, near("speed", caret_at(CHECK_UNKNOWN, "SPEED"))),
        (CHECK_OPEN, near("EOF", caret_eof(CHECK_OPEN))),
        (CHECK_EMPTY, near(",", caret_at(CHECK_EMPTY, ","))),
        (CHECK_UNBALANCED, near("EOF", caret_eof(CHECK_UNBALANCED))),
        (CHECK_CLOSE, near(")", caret_at(CHECK_CLOSE, ")"))),
        (CHECK_PLACEHOLDER, placeholder(caret_at(CHECK_PLACEHOLDER, "$1"))),
        (CHECK_NO_OPTIONS, near("EOF", caret_eof(CHECK_NO_OPTIONS))),
        (
            "CHECK EXTERNAL CONNECTION $1",
            placeholder(caret_at("CHECK EXTERNAL CONNECTION $1", "$1")),
        ),
        ("CHECK EXTERNAL", near("EOF", caret_eof("CHECK EXTERNAL"))),
    ]);
}

#[test]
fn statements_and_comments() {
    run(vec![
        ("", ok(vec![])),
        ("   \n\t  ", ok(vec![])),
        (";;; ;", ok(vec![])),
        ("-- only a comment; really", ok(vec![])),
        ("/* only; a /* nested */ comment */ ;", ok(vec![])),
        (
            "CREATE EXTERNAL CONNECTION a AS 'x;y'; -- comment; here\nSELECT /* ; */ ';' -- ;\n;; \
             DROP EXTERNAL CONNECTION \"a;b\";",
            ok(vec![create("a", "x;y"), other("SELECT /* ; */ ';'"), drop("a;b")]),
        ),
        (
            "create external connection foo as 'x'; CrEaTe ExTeRnAl CoNnEcTiOn FOO As 'X'",
            ok(vec![create("foo", "x"), create("foo", "X")]),
        ),
        (
            "SHOW EXTERNAL CONNECTIONS;SHOW EXTERNAL CONNECTION x",
            ok(vec![Statement::ShowExternalConnections, show("x")]),
        ),
        ("CREATE\nEXTERNAL\n\tCONNECTION /* c */ foo\r\nAS\n'x'", ok(vec![create("foo", "x")])),
    ]);
}

#[test]
fn other_statements_pass_through() {
    run(vec![
        ("CREATE TABLE t (a INT)", ok(vec![other("CREATE TABLE t (a INT)")])),
        ("  SELECT 1  ", ok(vec![other("SELECT 1")])),
        ("INSERT INTO t VALUES ('a;b', $1)", ok(vec![other("INSERT INTO t VALUES ('a;b', $1)")])),
        ("SET x = 1;SELECT 2", ok(vec![other("SET x = 1"), other("SELECT 2")])),
        ("SELECT\n  1,\n  2 -- trailing", ok(vec![other("SELECT\n  1,\n  2")])),
        // A quoted identifier is never a keyword.
        (
            "\"CREATE\" EXTERNAL CONNECTION foo AS 'x'",
            ok(vec![other("\"CREATE\" EXTERNAL CONNECTION foo AS 'x'")]),
        ),
        ("DROP TABLE external", ok(vec![other("DROP TABLE external")])),
        // GRANT, REVOKE and SHOW GRANTS on anything but an external connection.
        ("GRANT SELECT ON TABLE t TO u", ok(vec![other("GRANT SELECT ON TABLE t TO u")])),
        ("grant all on database d to u", ok(vec![other("grant all on database d to u")])),
        ("GRANT SELECT, INSERT ON t, u TO v", ok(vec![other("GRANT SELECT, INSERT ON t, u TO v")])),
        (
            "GRANT USAGE ON SCHEMA s TO u WITH GRANT OPTION",
            ok(vec![other("GRANT USAGE ON SCHEMA s TO u WITH GRANT OPTION")]),
        ),
        (
            "GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO u",
            ok(vec![other("GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO u")]),
        ),
        ("GRANT SELECT ON TYPE t TO u", ok(vec![other("GRANT SELECT ON TYPE t TO u")])),
        // No privilege check before ON: that is the host database's to report.
        ("GRANT 'x' ON TABLE t TO u", ok(vec![other("GRANT 'x' ON TABLE t TO u")])),
        ("GRANT SYSTEM x ON TABLE t TO u", ok(vec![other("GRANT SYSTEM x ON TABLE t TO u")])),
        ("REVOKE SELECT ON TABLE t FROM u", ok(vec![other("REVOKE SELECT ON TABLE t FROM u")])),
        (
            "REVOKE GRANT OPTION FOR ALL ON DATABASE d FROM u",
            ok(vec![other("REVOKE GRANT OPTION FOR ALL ON DATABASE d FROM u")]),
        ),
        // ON "external" is a table named external.
        ("GRANT SELECT ON \"external\" TO u", ok(vec![other("GRANT SELECT ON \"external\" TO u")])),
        ("SHOW GRANTS", ok(vec![other("SHOW GRANTS")])),
        ("SHOW GRANTS FOR u", ok(vec![other("SHOW GRANTS FOR u")])),
        ("SHOW GRANTS ON TABLE t", ok(vec![other("SHOW GRANTS ON TABLE t")])),
        ("SHOW GRANTS ON ROLE r FOR u", ok(vec![other("SHOW GRANTS ON ROLE r FOR u")])),
        ("SHOW SYSTEM", ok(vec![other("SHOW SYSTEM")])),
        ("ALTER USER u WITH PASSWORD 'x'", ok(vec![other("ALTER USER u WITH PASSWORD 'x'")])),
        ("CREATE USERS", ok(vec![other("CREATE USERS")])),
        ("SHOW USER", ok(vec![other("SHOW USER")])),
        ("(((", ok(vec![other("(((")])),
        ("\u{0}", ok(vec![other("\u{0}")])),
        // Ours, then not parseable: a syntax error, not a pass-through.
        ("CREATE EXTERNAL TABLE x", near("table", caret_at("CREATE EXTERNAL TABLE x", "TABLE"))),
        ("CREATE EXTERNAL", near("EOF", caret_eof("CREATE EXTERNAL"))),
        ("ALTER EXTERNAL foo", near("foo", caret_at("ALTER EXTERNAL foo", "foo"))),
        ("CHECK EXTERNAL x", near("x", caret_at("CHECK EXTERNAL x", "x"))),
    ]);
}

#[test]
fn create_and_drop_roles() {
    const UNTIL: &str = "CREATE USER a WITH VALID UNTIL '2030-01-01'";
    const CREATEROLE: &str = "CREATE ROLE a CREATEROLE LOGIN";
    const ENCRYPTED: &str = "CREATE USER a ENCRYPTED PASSWORD 'x'";
    const TWICE: &str = "CREATE USER a PASSWORD 'x' LOGIN PASSWORD NULL";
    const CONFLICT: &str = "CREATE USER a LOGIN PASSWORD 'x' NOLOGIN";
    const LOGIN_TWICE: &str = "CREATE USER a LOGIN NOLOGIN LOGIN";
    const WITH_NOTHING: &str = "CREATE USER a WITH";
    const UNKNOWN: &str = "CREATE USER a WITH SUPERUSER";
    const NO_VALUE: &str = "CREATE USER a PASSWORD";
    const PW_NUMBER: &str = "CREATE USER a PASSWORD 42";
    const PW_PLACEHOLDER: &str = "CREATE USER a PASSWORD $1";
    const NAME_PLACEHOLDER: &str = "CREATE USER $1";
    const RESERVED_NAME: &str = "CREATE USER user";
    const NO_NAME: &str = "CREATE ROLE";
    const CURRENT: &str = "CREATE ROLE current_user";
    const COMMA: &str = "CREATE USER a, b";
    const DROP_TRAILING: &str = "DROP USER a, b CASCADE";
    const DROP_COMMA: &str = "DROP ROLE a,";
    const DROP_SESSION: &str = "DROP USER a, session_user";
    let if_not_exists = Statement::CreateRole {
        is_user: true,
        if_not_exists: true,
        name: "alice".into(),
        password: None,
        login: None,
    };
    run(vec![
        ("CREATE USER alice", ok(vec![create_role(true, "alice", None, None)])),
        ("create role Alice", ok(vec![create_role(false, "alice", None, None)])),
        ("CREATE GROUP g", ok(vec![create_role(false, "g", None, None)])),
        ("CREATE USER \"Alice\"", ok(vec![create_role(true, "Alice", None, None)])),
        ("CREATE USER 'Alice Smith'", ok(vec![create_role(true, "Alice Smith", None, None)])),
        ("CREATE USER public", ok(vec![create_role(true, "public", None, None)])),
        ("CREATE USER \"user\"", ok(vec![create_role(true, "user", None, None)])),
        ("CREATE USER if", ok(vec![create_role(true, "if", None, None)])),
        ("CREATE USER IF NOT EXISTS alice", ok(vec![if_not_exists])),
        (
            "CREATE USER alice WITH PASSWORD 'pw'",
            ok(vec![create_role(true, "alice", Some("pw"), None)]),
        ),
        (
            "CREATE USER alice PASSWORD e'it\\'s' LOGIN",
            ok(vec![create_role(true, "alice", Some("it's"), Some(true))]),
        ),
        (
            "CREATE ROLE r WITH NOLOGIN PASSWORD NULL",
            ok(vec![create_role(false, "r", None, Some(false))]),
        ),
        ("CREATE ROLE r LOGIN", ok(vec![create_role(false, "r", None, Some(true))])),
        // string_or_placeholder, as in CockroachDB: a bare word is a password too.
        ("CREATE USER a PASSWORD Secret", ok(vec![create_role(true, "a", Some("secret"), None)])),
        ("CREATE USER a PASSWORD ''", ok(vec![create_role(true, "a", Some(""), None)])),
        // Refused by name, with the source (CockroachDB accepts these).
        (UNTIL, unsupported("role option VALID UNTIL is not supported", caret_at(UNTIL, "VALID"))),
        (
            CREATEROLE,
            unsupported(
                "role option CREATEROLE is not supported",
                caret_at(CREATEROLE, "CREATEROLE"),
            ),
        ),
        (
            ENCRYPTED,
            unsupported(
                "role option ENCRYPTED PASSWORD is not supported",
                caret_at("CREATE USER a ENCRYPTED PASSWORD '*****'", "ENCRYPTED"),
            ),
        ),
        (CURRENT, unsupported("CURRENT_USER is not supported", caret_at(CURRENT, "current_user"))),
        (
            DROP_SESSION,
            unsupported("SESSION_USER is not supported", caret_at(DROP_SESSION, "session_user")),
        ),
        // CockroachDB's texts for repeated and contradicting options; the value stays masked.
        (
            TWICE,
            syntax(
                "redundant role options",
                caret("CREATE USER a PASSWORD '*****' LOGIN PASSWORD NULL", 37),
            ),
        ),
        (
            CONFLICT,
            syntax(
                "conflicting role options",
                caret_at("CREATE USER a LOGIN PASSWORD '*****' NOLOGIN", "NOLOGIN"),
            ),
        ),
        (
            LOGIN_TWICE,
            syntax(
                "redundant role options",
                caret(LOGIN_TWICE, LOGIN_TWICE.rfind("LOGIN").unwrap()),
            ),
        ),
        (WITH_NOTHING, near("EOF", caret_eof(WITH_NOTHING))),
        (UNKNOWN, near("superuser", caret_at(UNKNOWN, "SUPERUSER"))),
        (NO_VALUE, near("EOF", caret_eof(NO_VALUE))),
        (PW_NUMBER, near("*****", caret_at("CREATE USER a PASSWORD '*****'", "'*****'"))),
        (PW_PLACEHOLDER, placeholder(caret_at("CREATE USER a PASSWORD '*****'", "'*****'"))),
        (NAME_PLACEHOLDER, placeholder(caret_at(NAME_PLACEHOLDER, "$1"))),
        (RESERVED_NAME, near("user", caret(RESERVED_NAME, 12))),
        (NO_NAME, near("EOF", caret_eof(NO_NAME))),
        (COMMA, near(",", caret_at(COMMA, ","))),
        ("CREATE USER ''", empty_role_name()),
        ("CREATE ROLE \"\"", empty_role_name()),
        ("DROP USER a, ''", empty_role_name()),
        // DROP
        ("DROP USER alice", ok(vec![drop_role(true, false, &["alice"])])),
        (
            "DROP ROLE IF EXISTS a, \"B\", 'c d'",
            ok(vec![drop_role(false, true, &["a", "B", "c d"])]),
        ),
        ("drop group g", ok(vec![drop_role(false, false, &["g"])])),
        ("DROP USER if", ok(vec![drop_role(true, false, &["if"])])),
        ("DROP USER if, exists", ok(vec![drop_role(true, false, &["if", "exists"])])),
        (DROP_TRAILING, near("cascade", caret_at(DROP_TRAILING, "CASCADE"))),
        (DROP_COMMA, near("EOF", caret_eof(DROP_COMMA))),
        ("DROP USER", near("EOF", caret_eof("DROP USER"))),
        // SHOW
        ("SHOW USERS", ok(vec![Statement::ShowUsers])),
        ("show roles", ok(vec![Statement::ShowRoles])),
        ("SHOW ROLES r", near("r", caret_at("SHOW ROLES r", "r"))),
    ]);
}

#[test]
fn role_membership() {
    const WITH_GRANT: &str = "GRANT a TO b WITH GRANT OPTION";
    const ALL_TO: &str = "GRANT ALL TO u";
    const QUOTED_STRING: &str = "GRANT 'a' TO b";
    const RESERVED: &str = "GRANT a TO user";
    const ADMIN_ALL: &str = "REVOKE ADMIN OPTION FOR ALL FROM u";
    const GRANT_OPTION_ROLE: &str = "REVOKE GRANT OPTION FOR a FROM b";
    const MISSING_TO: &str = "GRANT a b";
    const TO_NOTHING: &str = "GRANT a TO";
    run(vec![
        ("GRANT admin TO alice", ok(vec![grant_role(&["admin"], &["alice"], false)])),
        (
            "grant A, \"B\" to c, public with admin option",
            ok(vec![grant_role(&["a", "B"], &["c", "public"], true)]),
        ),
        ("GRANT system TO u", ok(vec![grant_role(&["system"], &["u"], false)])),
        ("GRANT system, x TO u", ok(vec![grant_role(&["system", "x"], &["u"], false)])),
        ("GRANT \"user\" TO \"select\"", ok(vec![grant_role(&["user"], &["select"], false)])),
        ("REVOKE admin FROM alice", ok(vec![revoke_role(&["admin"], &["alice"], false)])),
        ("REVOKE ADMIN OPTION FOR a, b FROM c", ok(vec![revoke_role(&["a", "b"], &["c"], true)])),
        ("REVOKE ADMIN OPTION FOR admin FROM c", ok(vec![revoke_role(&["admin"], &["c"], true)])),
        ("REVOKE system FROM u", ok(vec![revoke_role(&["system"], &["u"], false)])),
        (WITH_GRANT, near("grant", caret(WITH_GRANT, 18))),
        (ALL_TO, near("to", caret_at(ALL_TO, "TO"))),
        (QUOTED_STRING, near("a", caret_at(QUOTED_STRING, "'a'"))),
        (RESERVED, near("user", caret_at(RESERVED, "user"))),
        (ADMIN_ALL, near("all", caret_at(ADMIN_ALL, "ALL"))),
        (GRANT_OPTION_ROLE, near("from", caret_at(GRANT_OPTION_ROLE, "FROM"))),
        (MISSING_TO, near("b", caret(MISSING_TO, 8))),
        (TO_NOTHING, near("EOF", caret_eof(TO_NOTHING))),
        ("GRANT", near("EOF", caret_eof("GRANT"))),
        ("REVOKE", near("EOF", caret_eof("REVOKE"))),
        ("GRANT a TO \"\"", empty_role_name()),
    ]);
}

#[test]
fn system_privileges() {
    const NO_PRIVILEGE: &str = "GRANT SYSTEM TO u";
    const ADMIN_OPTION: &str = "GRANT SYSTEM x TO u WITH ADMIN OPTION";
    const SHOW_FOR_NOTHING: &str = "SHOW SYSTEM GRANTS FOR";
    const REVOKE_WITH: &str = "REVOKE SYSTEM x FROM u WITH GRANT OPTION";
    run(vec![
        (
            "GRANT SYSTEM EXTERNALCONNECTION TO testuser",
            ok(vec![grant_system(&["EXTERNALCONNECTION"], &["testuser"], false)]),
        ),
        (
            "grant system externalconnection, ModifyClusterSetting to a, \"B\" with grant option",
            ok(vec![grant_system(
                &["EXTERNALCONNECTION", "MODIFYCLUSTERSETTING"],
                &["a", "B"],
                true,
            )]),
        ),
        ("GRANT SYSTEM ALL TO u", ok(vec![grant_system(&["ALL"], &["u"], false)])),
        ("GRANT SYSTEM ALL PRIVILEGES TO u", ok(vec![grant_system(&["ALL"], &["u"], false)])),
        ("GRANT SYSTEM \"usage\" TO u", ok(vec![grant_system(&["USAGE"], &["u"], false)])),
        (
            "REVOKE SYSTEM EXTERNALCONNECTION FROM u",
            ok(vec![revoke_system(&["EXTERNALCONNECTION"], &["u"], false)]),
        ),
        (
            "REVOKE GRANT OPTION FOR SYSTEM a, b FROM u, v",
            ok(vec![revoke_system(&["A", "B"], &["u", "v"], true)]),
        ),
        ("SHOW SYSTEM GRANTS", ok(vec![Statement::ShowSystemGrants { grantees: None }])),
        (
            "show system grants for a, \"B\"",
            ok(vec![Statement::ShowSystemGrants { grantees: Some(strings(&["a", "B"])) }]),
        ),
        // SYSTEM followed by TO is a role named system (above); an empty list is an error.
        (NO_PRIVILEGE, ok(vec![grant_role(&["system"], &["u"], false)])),
        ("GRANT SYSTEM x", near("EOF", caret_eof("GRANT SYSTEM x"))),
        (ADMIN_OPTION, near("admin", caret_at(ADMIN_OPTION, "ADMIN"))),
        (SHOW_FOR_NOTHING, near("EOF", caret_eof(SHOW_FOR_NOTHING))),
        (REVOKE_WITH, near("with", caret_at(REVOKE_WITH, "WITH"))),
        ("SHOW SYSTEM GRANTS x", near("x", caret_at("SHOW SYSTEM GRANTS x", "x"))),
    ]);
}

#[test]
fn connection_privileges() {
    const STRING_NAME: &str = "GRANT USAGE ON EXTERNAL CONNECTION 'foo' TO u";
    const RESERVED_NAME: &str = "GRANT USAGE ON EXTERNAL CONNECTION table TO u";
    const NO_CONNECTION: &str = "GRANT USAGE ON EXTERNAL foo TO u";
    const ALL_IN_LIST: &str = "GRANT USAGE, ALL ON EXTERNAL CONNECTION foo TO u";
    const ALL_THEN_MORE: &str = "GRANT ALL, USAGE ON EXTERNAL CONNECTION foo TO u";
    const NO_PRIVILEGE: &str = "GRANT ON EXTERNAL CONNECTION foo TO u";
    const REVOKE_TO: &str = "REVOKE USAGE ON EXTERNAL CONNECTION foo TO u";
    const REVOKE_WITH: &str = "REVOKE USAGE ON EXTERNAL CONNECTION foo FROM u WITH GRANT OPTION";
    const ADMIN_FOR: &str = "REVOKE ADMIN OPTION FOR usage ON EXTERNAL CONNECTION foo FROM u";
    const SHOW_STRING: &str = "SHOW GRANTS ON EXTERNAL CONNECTION 'foo'";
    const SHOW_NO_CONNECTION: &str = "SHOW GRANTS ON EXTERNAL CONNECTIONS";
    const PLACEHOLDER_NAME: &str = "GRANT USAGE ON EXTERNAL CONNECTION $1 TO u";
    const GRANTEE_STRING: &str = "GRANT USAGE ON EXTERNAL CONNECTION foo TO 'u'";
    const CURRENT: &str = "SHOW GRANTS ON EXTERNAL CONNECTION foo FOR current_user";
    run(vec![
        (
            "GRANT USAGE ON EXTERNAL CONNECTION foo TO bob",
            ok(vec![grant_on(&["USAGE"], &["foo"], &["bob"], false)]),
        ),
        (
            "grant usage, drop, update on external connection Foo, \"drop-privileged\" to testuser, \"B\" with grant option",
            ok(vec![grant_on(
                &["USAGE", "DROP", "UPDATE"],
                &["foo", "drop-privileged"],
                &["testuser", "B"],
                true,
            )]),
        ),
        (
            "GRANT ALL ON EXTERNAL CONNECTION foo TO u",
            ok(vec![grant_on(&["ALL"], &["foo"], &["u"], false)]),
        ),
        (
            "GRANT ALL PRIVILEGES ON EXTERNAL CONNECTION foo TO public",
            ok(vec![grant_on(&["ALL"], &["foo"], &["public"], false)]),
        ),
        // Privilege names are checked by the executor, with CockroachDB's text.
        (
            "GRANT SELECT, create, Grant, bogus ON EXTERNAL CONNECTION foo TO u",
            ok(vec![grant_on(&["SELECT", "CREATE", "GRANT", "BOGUS"], &["foo"], &["u"], false)]),
        ),
        (
            "GRANT \"usage\" ON EXTERNAL CONNECTION foo TO u",
            ok(vec![grant_on(&["USAGE"], &["foo"], &["u"], false)]),
        ),
        // Names that are keywords elsewhere.
        (
            "GRANT USAGE ON EXTERNAL CONNECTION connection, external, \"select\" TO if",
            ok(vec![grant_on(&["USAGE"], &["connection", "external", "select"], &["if"], false)]),
        ),
        (
            "REVOKE USAGE ON EXTERNAL CONNECTION foo FROM bob",
            ok(vec![revoke_on(&["USAGE"], &["foo"], &["bob"], false)]),
        ),
        (
            "REVOKE GRANT OPTION FOR ALL PRIVILEGES ON EXTERNAL CONNECTION a, b FROM c, d",
            ok(vec![revoke_on(&["ALL"], &["a", "b"], &["c", "d"], true)]),
        ),
        (
            "REVOKE GRANT OPTION FOR drop ON EXTERNAL CONNECTION a FROM c",
            ok(vec![revoke_on(&["DROP"], &["a"], &["c"], true)]),
        ),
        ("SHOW GRANTS ON EXTERNAL CONNECTION foo", ok(vec![show_grants_on(&["foo"], None)])),
        (
            "show grants on external connection Foo, \"Bar\" for a, b",
            ok(vec![show_grants_on(&["foo", "Bar"], Some(&["a", "b"]))]),
        ),
        // Identifiers only, as in CockroachDB's name_list.
        (STRING_NAME, near("foo", caret_at(STRING_NAME, "'foo'"))),
        (SHOW_STRING, near("foo", caret_at(SHOW_STRING, "'foo'"))),
        (RESERVED_NAME, near("table", caret_at(RESERVED_NAME, "table"))),
        (PLACEHOLDER_NAME, near("1", caret_at(PLACEHOLDER_NAME, "$1"))),
        (GRANTEE_STRING, near("u", caret_at(GRANTEE_STRING, "'u'"))),
        ("GRANT USAGE ON EXTERNAL CONNECTION \"\" TO u", empty_name()),
        ("SHOW GRANTS ON EXTERNAL CONNECTION a, \"\"", empty_name()),
        ("REVOKE USAGE ON EXTERNAL CONNECTION a FROM \"\"", empty_role_name()),
        // Claimed from ON EXTERNAL on, so mistakes there are syntax errors.
        (NO_CONNECTION, near("foo", caret_at(NO_CONNECTION, "foo"))),
        (SHOW_NO_CONNECTION, near("connections", caret_at(SHOW_NO_CONNECTION, "CONNECTIONS"))),
        (ALL_IN_LIST, near("all", caret_at(ALL_IN_LIST, "ALL"))),
        (ALL_THEN_MORE, near(",", caret_at(ALL_THEN_MORE, ","))),
        (NO_PRIVILEGE, near("on", caret_at(NO_PRIVILEGE, "ON"))),
        (REVOKE_TO, near("to", caret_at(REVOKE_TO, "TO"))),
        (REVOKE_WITH, near("with", caret_at(REVOKE_WITH, "WITH"))),
        (ADMIN_FOR, near("on", caret(ADMIN_FOR, ADMIN_FOR.find(" ON ").unwrap() + 1))),
        (CURRENT, unsupported("CURRENT_USER is not supported", caret_at(CURRENT, "current_user"))),
    ]);
}

/// The exact detail text, spelled out, for the shapes that matter.
#[test]
fn syntax_error_positions() {
    run(vec![
        (
            "DROP EXTERNAL CONNECTION foo bar",
            near(
                "bar",
                "source SQL:\nDROP EXTERNAL CONNECTION foo bar\n                             ^".into(),
            ),
        ),
        (
            "CREATE EXTERNAL CONNECTION foo AS",
            near(
                "EOF",
                "source SQL:\nCREATE EXTERNAL CONNECTION foo AS\n                                 ^"
                    .into(),
            ),
        ),
        // The statement alone (from its first token), up to the line of the fault.
        (
            "SELECT 1;  CREATE EXTERNAL CONNECTION   ",
            near(
                "EOF",
                "source SQL:\nCREATE EXTERNAL CONNECTION\n                          ^".into(),
            ),
        ),
        (
            "CREATE EXTERNAL CONNECTION foo\n  AS 'x' extra\n  -- trailing",
            near(
                "extra",
                "source SQL:\nCREATE EXTERNAL CONNECTION foo\n  AS 'x' extra\n         ^".into(),
            ),
        ),
        (
            "CREATE EXTERNAL CONNEXION foo\nAS 'x'",
            near("connexion", "source SQL:\nCREATE EXTERNAL CONNEXION foo\n                ^".into()),
        ),
        // Tokens as CockroachDB shows them.
        (
            "CREATE EXTERNAL CONNECTION foo AS 'x' \"Bar\"",
            near("Bar", caret_at("CREATE EXTERNAL CONNECTION foo AS 'x' \"Bar\"", "\"Bar\"")),
        ),
        (
            "DROP EXTERNAL CONNECTION foo 'It''s'",
            near("It's", caret_at("DROP EXTERNAL CONNECTION foo 'It''s'", "'It")),
        ),
        (
            "DROP EXTERNAL CONNECTION foo::text",
            near(":", caret_at("DROP EXTERNAL CONNECTION foo::text", "::")),
        ),
        (
            "DROP EXTERNAL CONNECTION foo $2",
            near("2", caret_at("DROP EXTERNAL CONNECTION foo $2", "$2")),
        ),
        (
            "DROP EXTERNAL CONNECTION foo 1.5",
            near("1.5", caret_at("DROP EXTERNAL CONNECTION foo 1.5", "1.5")),
        ),
        // The caret counts characters, not bytes; tabs are kept.
        (
            "CREATE EXTERNAL CONNECTION 'ünï' AS 'x' y",
            near(
                "y",
                "source SQL:\nCREATE EXTERNAL CONNECTION 'ünï' AS 'x' y\n                                        ^"
                    .into(),
            ),
        ),
        (
            "DROP EXTERNAL CONNECTION\tfoo bar",
            near(
                "bar",
                "source SQL:\nDROP EXTERNAL CONNECTION\tfoo bar\n                        \t    ^"
                    .into(),
            ),
        ),
        // An earlier statement's syntax error wins over a later lexical one.
        (
            "DROP EXTERNAL CONNECTION a b; SELECT 'x",
            near("b", "source SQL:\nDROP EXTERNAL CONNECTION a b\n                           ^".into()),
        ),
    ]);
}

#[test]
fn lexical_errors() {
    run(vec![
        (
            "CREATE EXTERNAL CONNECTION foo AS 'unterminated",
            syntax(
                "lexical error: unterminated string",
                caret_at("CREATE EXTERNAL CONNECTION foo AS 'unterminated", "'"),
            ),
        ),
        (
            "SELECT 1; SELECT \"abc",
            syntax(
                "lexical error: unterminated quoted identifier",
                "source SQL:\nSELECT \"abc\n       ^".into(),
            ),
        ),
        (
            "SELECT 1 /* never closed",
            syntax(
                "lexical error: unterminated comment",
                "source SQL:\nSELECT 1 /* never closed\n         ^".into(),
            ),
        ),
        (
            "SELECT /* a /* nested */ still open",
            syntax(
                "lexical error: unterminated comment",
                "source SQL:\nSELECT /* a /* nested */ still open\n       ^".into(),
            ),
        ),
        (
            "SELECT $$abc",
            syntax(
                "lexical error: unterminated string",
                "source SQL:\nSELECT $$abc\n       ^".into(),
            ),
        ),
        (
            "DROP EXTERNAL CONNECTION e'abc",
            syntax(
                "lexical error: unterminated string",
                caret_at("DROP EXTERNAL CONNECTION e'abc", "e'"),
            ),
        ),
        (
            "DROP EXTERNAL CONNECTION e'\\u12' x",
            syntax(
                "lexical error: invalid escape sequence in string",
                caret_at("DROP EXTERNAL CONNECTION e'\\u12' x", "e'"),
            ),
        ),
        (
            "DROP EXTERNAL CONNECTION b'abc",
            syntax(
                "lexical error: unterminated string",
                caret_at("DROP EXTERNAL CONNECTION b'abc", "b'"),
            ),
        ),
        // The statement of a lexical error runs to the end of the text; the detail stops at the
        // end of the fault's line.
        (
            "SELECT 1;\n  SELECT 'a\nb\nc",
            syntax("lexical error: unterminated string", "source SQL:\nSELECT 'a\n       ^".into()),
        ),
        ("'", syntax("lexical error: unterminated string", "source SQL:\n'\n^".into())),
    ]);
}

#[test]
fn redacted_sql() {
    let rows = [
        (
            "CREATE EXTERNAL CONNECTION foo AS 's3://b?AWS_SECRET_ACCESS_KEY=canary'",
            "CREATE EXTERNAL CONNECTION 'foo' AS '*****'",
        ),
        (
            "CREATE EXTERNAL CONNECTION IF NOT EXISTS 'foo' AS 'canary'",
            "CREATE EXTERNAL CONNECTION IF NOT EXISTS 'foo' AS '*****'",
        ),
        (
            "ALTER EXTERNAL CONNECTION foo AS 'canary'",
            "ALTER EXTERNAL CONNECTION  'foo' AS '*****'",
        ),
        (
            "ALTER EXTERNAL CONNECTION IF EXISTS foo AS 'canary'",
            "ALTER EXTERNAL CONNECTION IF EXISTS  'foo' AS '*****'",
        ),
        ("DROP EXTERNAL CONNECTION foo", "DROP EXTERNAL CONNECTION 'foo'"),
        ("DROP EXTERNAL CONNECTION \"it's\"", "DROP EXTERNAL CONNECTION 'it''s'"),
        ("SHOW CREATE EXTERNAL CONNECTION \"Foo\"", "SHOW CREATE EXTERNAL CONNECTION 'Foo'"),
        ("SHOW CREATE ALL EXTERNAL CONNECTIONS", "SHOW CREATE ALL EXTERNAL CONNECTIONS"),
        ("show external connections", "SHOW EXTERNAL CONNECTIONS"),
        ("SHOW EXTERNAL CONNECTION foo", "SHOW EXTERNAL CONNECTION 'foo'"),
        ("CHECK EXTERNAL CONNECTION 'canary'", "CHECK EXTERNAL CONNECTION '*****'"),
        (
            "CHECK EXTERNAL CONNECTION 'canary' WITH TRANSFER = '2 MiB', CONCURRENTLY = 3, TIME = '1s'",
            "CHECK EXTERNAL CONNECTION '*****' WITH OPTIONS (CONCURRENTLY = 3, TRANSFER = '2 MiB', TIME = '1s')",
        ),
        ("CREATE USER alice WITH PASSWORD 'canary'", "CREATE USER alice WITH PASSWORD '*****'"),
        (
            "create role if not exists \"Al ice\" nologin password e'can\\x61ry'",
            "CREATE ROLE IF NOT EXISTS \"Al ice\" WITH PASSWORD '*****' NOLOGIN",
        ),
        ("CREATE USER 'alice' LOGIN", "CREATE USER alice WITH LOGIN"),
        ("CREATE USER \"user\" PASSWORD NULL", "CREATE USER \"user\""),
        ("drop user if exists a, \"Say \"\"hi\"\"\"", "DROP USER IF EXISTS a, \"Say \"\"hi\"\"\""),
        ("DROP ROLE 'ünï'", "DROP ROLE \"ünï\""),
        ("DROP GROUP a1$_", "DROP ROLE a1$_"),
        (
            "grant a, \"B\" to \"select\" with admin option",
            "GRANT a, \"B\" TO \"select\" WITH ADMIN OPTION",
        ),
        ("revoke admin option for a from b", "REVOKE ADMIN OPTION FOR a FROM b"),
        ("revoke a from b", "REVOKE a FROM b"),
        ("show users", "SHOW USERS"),
        ("show roles", "SHOW ROLES"),
        ("grant system all privileges to u", "GRANT SYSTEM ALL TO u"),
        (
            "grant system ExternalConnection, \"to\", \"a b\" to u with grant option",
            "GRANT SYSTEM EXTERNALCONNECTION, \"TO\", \"A B\" TO u WITH GRANT OPTION",
        ),
        (
            "revoke grant option for system select, \"all\" from u",
            "REVOKE GRANT OPTION FOR SYSTEM SELECT, \"ALL\" FROM u",
        ),
        ("show system grants", "SHOW SYSTEM GRANTS"),
        ("show system grants for a, B", "SHOW SYSTEM GRANTS FOR a, b"),
        (
            "grant usage, drop on external connection \"Foo\", bar to u",
            "GRANT USAGE, DROP ON EXTERNAL CONNECTION \"Foo\", bar TO u",
        ),
        (
            "grant all on external connection \"a\"\"b\" to u with grant option",
            "GRANT ALL ON EXTERNAL CONNECTION \"a\"\"b\" TO u WITH GRANT OPTION",
        ),
        (
            "revoke grant option for usage on external connection \"it's\" from public",
            "REVOKE GRANT OPTION FOR USAGE ON EXTERNAL CONNECTION \"it's\" FROM public",
        ),
        (
            "revoke all on external connection c from u",
            "REVOKE ALL ON EXTERNAL CONNECTION c FROM u",
        ),
        (
            "show grants on external connection c, \"D\" for u",
            "SHOW GRANTS ON EXTERNAL CONNECTION c, \"D\" FOR u",
        ),
        ("show grants on external connection c", "SHOW GRANTS ON EXTERNAL CONNECTION c"),
        ("select  'canary'  ", "select  'canary'"),
    ];
    let mut failures = Vec::new();
    for (sql, want) in rows {
        let statements = parse(sql).unwrap_or_else(|e| panic!("{sql:?} does not parse: {e:#?}"));
        let got: Vec<String> = statements.iter().map(Statement::redacted_sql).collect();
        if got != [want] {
            failures.push(format!("sql:  {sql:?}\nwant: {want:?}\ngot:  {got:?}\n"));
        }
        if !sql.starts_with("select") && got.iter().any(|shown| shown.contains("canary")) {
            failures.push(format!("sql:  {sql:?}\nleaks the URI: {got:?}\n"));
        }
        // Canonical text reads back as the same statement (passwords and URIs aside).
        let masked = |statement: &Statement| match statement.clone() {
            Statement::CreateRole { is_user, if_not_exists, name, password, login } => {
                let password = password.map(|_| "*****".to_owned());
                Statement::CreateRole { is_user, if_not_exists, name, password, login }
            }
            statement => statement,
        };
        let is_role_or_grant = |statement: &Statement| {
            !matches!(
                statement,
                Statement::CreateExternalConnection { .. }
                    | Statement::AlterExternalConnection { .. }
                    | Statement::CheckExternalConnection { .. }
            )
        };
        for (statement, shown) in statements.iter().zip(&got) {
            if !is_role_or_grant(statement) {
                continue;
            }
            match parse(shown) {
                Ok(again) if again == [masked(statement)] => {}
                again => failures.push(format!("{shown:?} reads back as {again:?}\n")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// No error shows a password: not in the message, the token shown, or the source in the detail.
#[test]
fn errors_mask_passwords() {
    let long = format!("CREATE USER a x {} PASSWORD 'canary'", "y ".repeat(MAX_OWNED_TOKENS));
    let long_lexical = format!(
        "CREATE USER a {} PASSWORD 'canary' PASSWORD 'x",
        "LOGIN ".repeat(MAX_OWNED_TOKENS)
    );
    let rows = [
        "CREATE USER a PASSWORD 'canary' bogus",
        "CREATE USER a WITH bogus PASSWORD 'canary'",
        "CREATE USER user PASSWORD 'canary'",
        "CREATE USER a PASSWORD 'canary' CREATEROLE",
        "CREATE USER a PASSWORD 'canary' PASSWORD 'canary'",
        "CREATE USER a PASSWORD 'canary' LOGIN NOLOGIN",
        "CREATE USER a PASSWORD canary,",
        "CREATE ROLE a PASSWORD $$canary$$ x",
        "CREATE ROLE a PASSWORD \"canary\" x",
        "CREATE ROLE a PASSWORD e'can\\x61ry' x",
        "CREATE USER a\nPASSWORD\n'canary' x",
        "CREATE USER a PASSWORD 'can'\n'ary' 'x'",
        "CREATE USER a PASSWORD 'canary",
        "CREATE USER a PASSWORD e'canary\\",
        "CREATE USER a PASSWORD 'canary' VALID UNTIL 'x",
        "CREATE USER a PASSWORD canary $$x",
        "create group a password 'canary' password",
        &long,
        &long_lexical,
    ];
    let mut failures = Vec::new();
    for sql in rows {
        match parse(sql) {
            Ok(statements) => failures.push(format!("{sql:?} parses: {statements:?}")),
            Err(error) if format!("{error:?}").contains("canary") => {
                failures.push(format!("{sql:?} shows the password: {error:#?}"));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Where it is masked, the caret still points at the fault.
    let error = parse("CREATE USER a\n  PASSWORD 'canary' LOGIN x").unwrap_err();
    let want = "source SQL:\nCREATE USER a\n  PASSWORD '*****' LOGIN x\n                         ^";
    assert_eq!(error.detail.as_deref(), Some(want));
    let error = parse("CREATE USER a PASSWORD 'canary").unwrap_err();
    assert_eq!(error.message, "lexical error: unterminated string");
    assert_eq!(
        error.detail.as_deref(),
        Some("source SQL:\nCREATE USER a PASSWORD '*****'\n                       ^")
    );
}

fn assert_limit(result: Result<Vec<Statement>, Error>, needle: &str) {
    let error = result.expect_err("over the limit");
    assert_eq!(error.sqlstate, sqlstate::PROGRAM_LIMIT_EXCEEDED, "{error:#?}");
    assert_eq!(error.kind, ErrorKind::InvalidArgument, "{error:#?}");
    assert!(error.message.contains(needle), "{error:#?} should name {needle}");
}

#[test]
fn limits() {
    // Size: checked up front, before any lexing.
    let at_limit = " ".repeat(MAX_SQL_BYTES);
    assert_eq!(parse(&at_limit), Ok(vec![]));
    assert_limit(parse(&format!("{at_limit} ")), "1048576");
    assert_limit(parse(&"x".repeat(10 << 20)), "1048576");

    // Statement count.
    let many = "SELECT 1;".repeat(MAX_STATEMENTS);
    assert_eq!(parse(&many).map(|s| s.len()), Ok(MAX_STATEMENTS));
    assert_limit(parse(&format!("{many} SELECT 1")), "10000");
    // Empty statements do not count.
    assert_eq!(parse(&";".repeat(MAX_SQL_BYTES)), Ok(vec![]));

    // Deep nesting: no recursion, so no stack to blow.
    let parens = "(".repeat(100_000);
    assert_eq!(parse(&parens), Ok(vec![other(&parens)]));
    let deep = format!("CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = {parens}");
    assert_limit(parse(&deep), "10000 tokens");
    let deep = format!("CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = {}", &parens[..5_000]);
    let error = parse(&deep).expect_err("unbalanced");
    assert_eq!(error.message, "at or near \"EOF\": syntax error");
    let deep = format!(
        "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = {}1{}",
        &parens[..4_000],
        ")".repeat(4_000)
    );
    assert_eq!(parse(&deep).map(|s| s.len()), Ok(1));

    // A statement of ours is held to MAX_OWNED_TOKENS tokens; one of someone else's is not.
    let long_expr = format!(
        "CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = {}1",
        "1+".repeat(MAX_OWNED_TOKENS)
    );
    assert_limit(parse(&long_expr), "10000 tokens");
    let fits = format!("CHECK EXTERNAL CONNECTION 'u' WITH CONCURRENTLY = {}1", "1+".repeat(100));
    assert_eq!(parse(&fits).map(|s| s.len()), Ok(1));
    // ... but a fault within the tokens kept is still reported as such.
    let junk = format!("DROP EXTERNAL CONNECTION a b {}", "c ".repeat(2 * MAX_OWNED_TOKENS));
    assert_eq!(parse(&junk).map_err(|e| e.message), Err("at or near \"b\": syntax error".into()));
    // A GRANT is read to its ON; one on other objects passes through at any length.
    let tables = vec!["t"; 2 * MAX_OWNED_TOKENS].join(", ");
    let grant = format!("GRANT SELECT ON TABLE {tables} TO u");
    assert_eq!(parse(&grant), Ok(vec![other(&grant)]));
    let roles = vec!["r"; MAX_OWNED_TOKENS].join(", ");
    assert_limit(parse(&format!("GRANT {roles} TO u")), "10000 tokens");
    let connections = vec!["c"; MAX_OWNED_TOKENS].join(", ");
    assert_limit(
        parse(&format!("GRANT USAGE ON EXTERNAL CONNECTION {connections} TO u")),
        "10000 tokens",
    );
    let select = format!("SELECT {}", "1+".repeat(200_000));
    assert_eq!(parse(&select).map(|s| s.len()), Ok(1));
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces hostile input is made of.
const PIECES: &[&str] = &[
    "CREATE",
    "ALTER",
    "DROP",
    "SHOW",
    "CHECK",
    "EXTERNAL",
    "CONNECTION",
    "CONNECTIONS",
    "CREATE",
    "ALL",
    "IF",
    "NOT",
    "EXISTS",
    "AS",
    "WITH",
    "OPTIONS",
    "CONCURRENTLY",
    "TRANSFER",
    "TIME",
    "SELECT",
    "GRANT",
    "REVOKE",
    "GRANTS",
    "USER",
    "USERS",
    "ROLE",
    "ROLES",
    "GROUP",
    "SYSTEM",
    "ON",
    "TO",
    "FROM",
    "FOR",
    "OPTION",
    "ADMIN",
    "PRIVILEGES",
    "USAGE",
    "PASSWORD",
    "LOGIN",
    "NOLOGIN",
    "NULL",
    "VALID",
    "UNTIL",
    "CREATEROLE",
    "CURRENT_USER",
    "public",
    " ",
    " ",
    " ",
    "\n",
    "\t",
    "\r",
    "'",
    "''",
    "\"",
    "\"\"",
    "$",
    "$$",
    "$1",
    "$a$",
    "e'",
    "E'\\",
    "b'",
    "x'",
    "n'",
    "u&'",
    "\\",
    ";",
    ";",
    "(",
    ")",
    ",",
    "=",
    "::",
    "--",
    "/*",
    "*/",
    "\u{0}",
    "é",
    "😀",
    "\u{202e}",
    "\u{feff}",
    "ǅ",
    "İ",
    "'foo'",
    "\"Bar\"",
    "baz",
    "1",
    "1.5e",
    "0x",
    ".",
    "#",
    "@",
    "?",
    "|",
    "&",
    "~",
    "!",
    "`",
    "[",
    "]",
    "{",
    "}",
];

/// Inputs made of [`PIECES`]: up to `max_pieces` of them.
fn pieces(rng: &mut Rng, count: usize, max_pieces: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let len = rng.below(max_pieces + 1);
            (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect()
        })
        .collect()
}

/// The lexer takes the text a chunk at a time; where the chunks end must not change anything.
#[test]
fn chunk_boundaries_change_nothing() {
    let mut rng = Rng(0x0c4b_0c4b_0c4b_0c4b);
    let mut inputs = pieces(&mut rng, 3_000, 150);
    inputs.push(
        "CREATE EXTERNAL CONNECTION 'a' AS 's3://x?y=z'; SELECT t._c, 1.5e+3, $$x$$, $t$y$t$ FROM t;\n"
            .repeat(20),
    );
    inputs.push(format!(
        "SELECT '{}'; /* {} */ DROP EXTERNAL CONNECTION \"{}\"",
        "a".repeat(700),
        "b".repeat(900),
        "c".repeat(300)
    ));
    inputs.push(format!("SELECT 'a'\n'{}'\n'c'", "b".repeat(500)));
    for input in &inputs {
        let whole = parse_chunked(input, usize::MAX);
        for chunk in [1, 70, 97, 130, 200, 333] {
            let chunked = parse_chunked(input, chunk);
            assert_eq!(chunked, whole, "chunks of {chunk} bytes differ on {input:?}");
        }
    }
}

#[test]
fn never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut inputs = pieces(&mut rng, 20_000, 24);
    // Random chars, including every kind of control character.
    for _ in 0..5_000 {
        let len = rng.below(40);
        inputs.push(
            (0..len).filter_map(|_| char::from_u32((rng.next() % 0x11_0000) as u32)).collect(),
        );
    }
    // Valid statements, cut and spliced.
    let valid = [
        "CREATE EXTERNAL CONNECTION IF NOT EXISTS \"Foo\" AS 's3://b?x=''y'''",
        "ALTER EXTERNAL CONNECTION IF EXISTS foo AS e'nodelocal://1/\\x41'",
        "CHECK EXTERNAL CONNECTION 'u' WITH OPTIONS (CONCURRENTLY = (1 + 2), TIME = '1s')",
        "SHOW CREATE ALL EXTERNAL CONNECTIONS; SHOW EXTERNAL CONNECTION $$x$$ -- c",
        "CREATE USER IF NOT EXISTS \"Al\" WITH PASSWORD 'p''w' NOLOGIN; DROP ROLE IF EXISTS a, 'b'",
        "GRANT a, \"B\" TO c WITH ADMIN OPTION; REVOKE ADMIN OPTION FOR a FROM c; SHOW USERS",
        "GRANT SYSTEM EXTERNALCONNECTION, x TO u WITH GRANT OPTION; SHOW SYSTEM GRANTS FOR u, v",
        "REVOKE GRANT OPTION FOR ALL PRIVILEGES ON EXTERNAL CONNECTION a, \"b\" FROM public",
        "GRANT USAGE, DROP ON EXTERNAL CONNECTION c TO u; SHOW GRANTS ON EXTERNAL CONNECTION c FOR u",
        "GRANT SELECT ON TABLE t TO u; REVOKE GRANT OPTION FOR SYSTEM x FROM u; SHOW ROLES",
    ];
    for _ in 0..10_000 {
        let base = valid[rng.below(valid.len())];
        let chars: Vec<char> = base.chars().collect();
        let (a, b) = (rng.below(chars.len() + 1), rng.below(chars.len() + 1));
        let (a, b) = (a.min(b), a.max(b));
        let splice = PIECES[rng.below(PIECES.len())];
        let mut input: String = chars[..a].iter().collect();
        input.push_str(splice);
        input.extend(&chars[b..]);
        inputs.push(input);
    }
    // Long and large.
    inputs.push("a".repeat(MAX_SQL_BYTES));
    inputs.push(format!("CREATE EXTERNAL CONNECTION {} AS 'x'", "n".repeat(MAX_SQL_BYTES - 40)));
    inputs.push(format!("'{}", "x".repeat(MAX_SQL_BYTES - 1)));
    inputs.push("/*".repeat(MAX_SQL_BYTES / 2));
    inputs.push("$".repeat(MAX_SQL_BYTES));
    inputs.push("\u{0}".repeat(MAX_SQL_BYTES));
    inputs.push("é".repeat(MAX_SQL_BYTES / 2));
    inputs.push("'';".repeat(MAX_SQL_BYTES / 3));
    inputs.push("x".repeat(10 << 20));

    for input in &inputs {
        // Catch the panic to name the input that caused it.
        let result = std::panic::catch_unwind(|| parse(input));
        let shown: String = input.chars().take(200).collect();
        let Ok(result) = result else { panic!("parse panicked on {shown:?}") };
        match result {
            Ok(statements) => {
                for statement in statements {
                    if let Statement::Other { sql } = &statement {
                        assert!(input.contains(sql.as_str()), "{shown:?}: {sql:?} not in input");
                    }
                }
            }
            Err(error) => {
                assert!(
                    [
                        sqlstate::SYNTAX_ERROR,
                        sqlstate::INVALID_PARAMETER_VALUE,
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        sqlstate::PROGRAM_LIMIT_EXCEEDED,
                    ]
                    .contains(&error.sqlstate),
                    "{shown:?}: {error:#?}"
                );
                if error.kind == ErrorKind::Syntax {
                    let detail = error.detail.as_deref().unwrap_or_default();
                    assert!(detail.starts_with("source SQL:\n"), "{shown:?}: {error:#?}");
                    assert!(detail.ends_with('^'), "{shown:?}: {error:#?}");
                }
            }
        }
    }
}

mod operations {
    use super::super::ops::*;
    use super::super::{Statement, parse};

    fn one(sql: &str) -> Statement {
        let mut statements = parse(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        assert_eq!(statements.len(), 1, "{sql}");
        statements.remove(0)
    }

    fn table(database: Option<&str>, table: &str) -> TableName {
        TableName { database: database.map(Into::into), schema: None, table: table.into() }
    }

    #[test]
    fn the_seed_walkthrough_parses() {
        let backup = one(
            "BACKUP DATABASE movr INTO 'external://backup_bucket' AS OF SYSTEM TIME '-10s' WITH revision_history",
        );
        assert_eq!(
            backup,
            Statement::Backup(Backup {
                scope: Scope::Databases(vec!["movr".into()]),
                subdir: None,
                uris: vec!["external://backup_bucket".into()],
                as_of: Some("'-10s'".into()),
                options: vec![("revision_history".into(), OptionValue::Flag)],
            })
        );
        assert_eq!(
            backup.redacted_sql(),
            "BACKUP DATABASE movr INTO '*****' AS OF SYSTEM TIME '-10s' WITH OPTIONS (revision_history)"
        );
        assert_eq!(
            one("SHOW BACKUPS IN 'external://backup_bucket'"),
            Statement::ShowBackups { uris: vec!["external://backup_bucket".into()] }
        );
        assert_eq!(
            one("RESTORE DATABASE movr FROM LATEST IN 'external://backup_bucket'"),
            Statement::Restore(Restore {
                scope: Scope::Databases(vec!["movr".into()]),
                subdir: Subdir::Latest,
                uris: vec!["external://backup_bucket".into()],
                as_of: None,
                options: vec![],
            })
        );
    }

    #[test]
    fn backup_forms() {
        let Statement::Backup(b) = one(
            "BACKUP TABLE movr.users, \"Rides\" INTO LATEST IN ('s3://a', 's3://b') WITH OPTIONS (detached = true, incremental_location = 'nodelocal://1/inc', encryption_passphrase = 'pw')",
        ) else {
            panic!()
        };
        assert_eq!(
            b.scope,
            Scope::Tables(vec![table(Some("movr"), "users"), table(None, "Rides")])
        );
        assert_eq!(b.subdir, Some(Subdir::Latest));
        assert_eq!(b.uris.len(), 2);
        assert_eq!(b.options[0], ("detached".into(), OptionValue::Expr("true".into())));
        assert_eq!(
            b.redacted_sql(),
            "BACKUP TABLE movr.users, \"Rides\" INTO LATEST IN ('*****', '*****') WITH OPTIONS (detached = true, incremental_location = '*****', encryption_passphrase = '*****')"
        );
        let Statement::Backup(b) = one(
            "BACKUP INTO '2026/11/26-035037.12' IN 'nodelocal://1/b' WITH kms = ('aws-kms:///k1', 'aws-kms:///k2')",
        ) else {
            panic!()
        };
        assert_eq!(b.scope, Scope::Cluster);
        assert_eq!(b.subdir, Some(Subdir::Named("2026/11/26-035037.12".into())));
        assert_eq!(
            b.options,
            vec![(
                "kms".into(),
                OptionValue::List(vec!["aws-kms:///k1".into(), "aws-kms:///k2".into()])
            )]
        );
    }

    #[test]
    fn import_export_and_databases() {
        assert_eq!(
            one(
                "IMPORT INTO movr.users (id, name) CSV DATA ('nodelocal://1/a.csv', 'nodelocal://1/b.csv') WITH delimiter = '|', skip = '1', nullif = ''"
            ),
            Statement::Import(Import {
                table: table(Some("movr"), "users"),
                columns: Some(vec!["id".into(), "name".into()]),
                uris: vec!["nodelocal://1/a.csv".into(), "nodelocal://1/b.csv".into()],
                options: vec![
                    ("delimiter".into(), OptionValue::Str("|".into())),
                    ("skip".into(), OptionValue::Str("1".into())),
                    ("nullif".into(), OptionValue::Str(String::new())),
                ],
            })
        );
        assert_eq!(
            one(
                "EXPORT INTO CSV 'nodelocal://1/out' WITH nullas = 'NULL' FROM SELECT * FROM users WHERE name = 'x;y'"
            ),
            Statement::Export(Export {
                uri: "nodelocal://1/out".into(),
                options: vec![("nullas".into(), OptionValue::Str("NULL".into()))],
                source: ExportSource::Query("SELECT * FROM users WHERE name = 'x;y'".into()),
            })
        );
        assert_eq!(
            one("EXPORT INTO CSV 'nodelocal://1/out' FROM TABLE movr.public.users"),
            Statement::Export(Export {
                uri: "nodelocal://1/out".into(),
                options: vec![],
                source: ExportSource::Table(TableName {
                    database: Some("movr".into()),
                    schema: Some("public".into()),
                    table: "users".into(),
                }),
            })
        );
        assert_eq!(
            one("CREATE DATABASE IF NOT EXISTS Movr"),
            Statement::CreateDatabase { if_not_exists: true, name: "movr".into() }
        );
        assert_eq!(
            one("DROP DATABASE movr CASCADE"),
            Statement::DropDatabase { if_exists: false, name: "movr".into(), cascade: true }
        );
        assert_eq!(one("USE movr"), Statement::UseDatabase { name: "movr".into() });
        assert_eq!(one("SET database = movr"), Statement::UseDatabase { name: "movr".into() });
        assert_eq!(one("SET DATABASE TO 'movr'"), Statement::UseDatabase { name: "movr".into() });
        assert_eq!(one("SHOW JOB 42"), Statement::ShowJobs { id: Some(42) });
        assert_eq!(
            one("SHOW BACKUP FROM LATEST IN 'nodelocal://1/b'"),
            Statement::ShowBackup {
                subdir: Subdir::Latest,
                uris: vec!["nodelocal://1/b".into()],
                options: vec![]
            }
        );
        // Other SET statements stay SQLite's.
        assert_eq!(
            one("SET application_name = 'x'"),
            Statement::Other { sql: "SET application_name = 'x'".into() }
        );
    }

    #[test]
    fn errors_point_at_the_fault_and_mask_secrets() {
        let err = parse("BACKUP DATABASE movr INTO 's3://b?AWS_SECRET_ACCESS_KEY=shh' WITH bogus")
            .unwrap_err();
        assert_eq!(err.message, r#"at or near "bogus": syntax error"#);
        let detail = err.detail.unwrap();
        assert!(!detail.contains("shh"), "{detail}");
        let err = parse("BACKUP INTO 'nodelocal://1/b' WITH encryption_passphrase = 'hunter2', detached, detached")
            .unwrap_err();
        assert!(
            err.message.contains("detached option specified multiple times"),
            "{}",
            err.message
        );
        assert!(!err.detail.unwrap().contains("hunter2"));
        let err = parse("IMPORT INTO t PARQUET DATA ('nodelocal://1/x')").unwrap_err();
        assert!(err.message.contains("PARQUET"), "{}", err.message);
        let err = parse("RESTORE DATABASE movr FROM LATEST 'nodelocal://1/b'").unwrap_err();
        assert!(err.message.contains("syntax error"), "{}", err.message);
    }
}
