//! The privilege model through the real component: a matrix of statements against every kind
//! of principal, CockroachDB's GRANT / REVOKE / SHOW GRANTS / DROP USER texts, hostile names,
//! and concurrent sessions.

mod common;

use common::{err, host, ok, root};
use extconn_host::{Host, Outcome, Session, Validation, Value};

fn as_user(name: &str) -> Session {
    Session { user: name.into(), database: None, validation: Validation::Full }
}

/// root creates the cast; `creator` creates the connection `conn`.
fn cast(host: &mut Host) {
    ok(
        host,
        &root(),
        "CREATE USER adminmember; GRANT admin TO adminmember;
         CREATE USER creator; GRANT SYSTEM EXTERNALCONNECTION TO creator;
         CREATE USER grantee_go; CREATE USER grantee; CREATE ROLE team; CREATE USER member;
         GRANT team TO member; CREATE USER stranger",
    );
    ok(host, &as_user("creator"), "CREATE EXTERNAL CONNECTION conn AS 'nodelocal://1/conn'");
    ok(
        host,
        &root(),
        "GRANT USAGE, DROP, UPDATE ON EXTERNAL CONNECTION conn TO grantee_go WITH GRANT OPTION;
         GRANT USAGE ON EXTERNAL CONNECTION conn TO grantee;
         GRANT ALL ON EXTERNAL CONNECTION conn TO team",
    );
}

const PRINCIPALS: [&str; 7] =
    ["root", "adminmember", "creator", "grantee_go", "grantee", "member", "stranger"];

/// What one cell of the matrix expects.
enum Expect {
    Ok,
    Rows(usize),
    Denied(&'static str),
}

use Expect::{Denied, Ok as Fine, Rows as RowCount};

#[test]
fn every_statement_against_every_kind_of_principal() {
    let usage = "must have USAGE privilege or be owner of the External Connection \"conn\"";
    let view =
        "must have VIEWCLUSTERMETADATA privilege or be owner of the External Connection \"conn\"";
    let update = "user {u} does not have UPDATE privilege on external_connection conn";
    let drop = "user {u} does not have DROP privilege on external_connection conn";
    let grant_option = "user {u} missing WITH GRANT OPTION privilege on one or more of USAGE";
    let create = "only users with the EXTERNALCONNECTION system privilege are allowed to CREATE EXTERNAL CONNECTION";
    let system = "user {u} missing WITH GRANT OPTION privilege on EXTERNALCONNECTION";
    let createrole = "user {u} does not have CREATEROLE privilege";
    let admin_option = "{u} must have admin option on role \"team\"";
    // One row per statement; one cell per principal, in PRINCIPALS order.
    #[rustfmt::skip]
    let matrix: Vec<(&str, [Expect; 7])> = vec![
        ("SHOW EXTERNAL CONNECTION conn", [Fine, Fine, Fine, Fine, Fine, Fine, Denied(usage)]),
        ("SHOW EXTERNAL CONNECTIONS", [RowCount(1), RowCount(1), RowCount(1), RowCount(1), RowCount(1), RowCount(1), RowCount(0)]),
        ("SHOW CREATE EXTERNAL CONNECTION conn", [Fine, Fine, Fine, Denied(view), Denied(view), Denied(view), Denied(view)]),
        ("ALTER EXTERNAL CONNECTION conn AS 'nodelocal://1/conn2'", [Fine, Fine, Fine, Fine, Denied(update), Fine, Denied(update)]),
        ("DROP EXTERNAL CONNECTION conn", [Fine, Fine, Fine, Fine, Denied(drop), Fine, Denied(drop)]),
        ("GRANT USAGE ON EXTERNAL CONNECTION conn TO stranger", [Fine, Fine, Denied(grant_option), Fine, Denied(grant_option), Denied(grant_option), Denied(grant_option)]),
        ("REVOKE USAGE ON EXTERNAL CONNECTION conn FROM grantee", [Fine, Fine, Denied(grant_option), Fine, Denied(grant_option), Denied(grant_option), Denied(grant_option)]),
        ("CREATE EXTERNAL CONNECTION other AS 'nodelocal://1/other'", [Fine, Fine, Fine, Denied(create), Denied(create), Denied(create), Denied(create)]),
        ("GRANT SYSTEM EXTERNALCONNECTION TO stranger", [Fine, Fine, Denied(system), Denied(system), Denied(system), Denied(system), Denied(system)]),
        ("REVOKE SYSTEM EXTERNALCONNECTION FROM creator", [Fine, Fine, Denied(system), Denied(system), Denied(system), Denied(system), Denied(system)]),
        ("CREATE USER newcomer", [Fine, Fine, Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole)]),
        ("CREATE ROLE newrole", [Fine, Fine, Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole)]),
        ("DROP USER grantee", [Fine, Fine, Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole)]),
        ("DROP ROLE team", [Fine, Fine, Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole), Denied(createrole)]),
        ("GRANT team TO stranger", [Fine, Fine, Denied(admin_option), Denied(admin_option), Denied(admin_option), Denied(admin_option), Denied(admin_option)]),
        ("REVOKE team FROM member", [Fine, Fine, Denied(admin_option), Denied(admin_option), Denied(admin_option), Denied(admin_option), Denied(admin_option)]),
        ("SHOW GRANTS ON EXTERNAL CONNECTION conn", [RowCount(6), RowCount(6), RowCount(6), RowCount(6), RowCount(6), RowCount(6), RowCount(6)]),
        // root, admin, adminmember, creator, grantee_go, grantee, team, member, stranger
        ("SHOW USERS", [RowCount(9), RowCount(9), RowCount(9), RowCount(9), RowCount(9), RowCount(9), RowCount(9)]),
        ("SHOW ROLES", [RowCount(9), RowCount(9), RowCount(9), RowCount(9), RowCount(9), RowCount(9), RowCount(9)]),
        ("SHOW SYSTEM GRANTS", [RowCount(1), RowCount(1), RowCount(1), RowCount(1), RowCount(1), RowCount(1), RowCount(1)]),
    ];
    let mut failures = Vec::new();
    for (sql, cells) in &matrix {
        for (user, expect) in PRINCIPALS.iter().zip(cells) {
            let (mut host, _dir) = host();
            cast(&mut host);
            // DROP USER grantee needs its grant gone first, so that the privilege is what fails.
            if sql.starts_with("DROP USER") {
                ok(&mut host, &root(), "REVOKE ALL ON EXTERNAL CONNECTION conn FROM grantee");
            }
            if sql.starts_with("DROP ROLE") {
                ok(&mut host, &root(), "REVOKE ALL ON EXTERNAL CONNECTION conn FROM team");
            }
            let results = host.execute(&as_user(user), sql);
            let got = &results.last().expect("one result").outcome;
            let verdict = match (expect, got) {
                (Fine, Ok(_)) => None,
                (RowCount(n), Ok(Outcome::Rows(rows))) if rows.rows.len() == *n => None,
                (Denied(text), Err(e)) => {
                    let text = text.replace("{u}", user);
                    (e.sqlstate != "42501" || e.message != text)
                        .then(|| format!("expected 42501 {text}"))
                }
                (Fine, _) => Some("expected success".to_owned()),
                (RowCount(n), _) => Some(format!("expected {n} rows")),
                (Denied(text), _) => Some(format!("expected 42501 {text}")),
            };
            if let Some(expected) = verdict {
                failures.push(format!("  user {user}: {sql}\n    {expected}\n    got {got:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));
}

fn rows(host: &mut Host, session: &Session, sql: &str) -> Vec<String> {
    let results = ok(host, session, sql);
    let Some(Ok(Outcome::Rows(rows))) = results.last().map(|r| &r.outcome) else {
        panic!("expected rows from {sql}: {results:?}");
    };
    rows.rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Text(s) => s.clone(),
                    Value::Boolean(b) => b.to_string(),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn grants_revokes_and_show_grants_as_the_reference_shows_them() {
    let (mut host, _dir) = host();
    ok(
        &mut host,
        &root(),
        "CREATE USER testuser; CREATE USER bar;
         CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo';
         GRANT USAGE, DROP ON EXTERNAL CONNECTION foo TO testuser WITH GRANT OPTION;
         GRANT USAGE, DROP ON EXTERNAL CONNECTION foo TO bar",
    );
    assert_eq!(
        rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION foo"),
        [
            "foo bar DROP false",
            "foo bar USAGE false",
            "foo root ALL false",
            "foo testuser DROP true",
            "foo testuser USAGE true",
        ]
    );
    assert_eq!(
        rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION foo FOR bar, nobody"),
        ["foo bar DROP false", "foo bar USAGE false"]
    );

    // Granting needs the grant option; the creator's ALL has none.
    let bar = as_user("bar");
    let e = err(&mut host, &bar, "GRANT USAGE, DROP ON EXTERNAL CONNECTION foo TO testuser");
    assert_eq!(
        e.message,
        "user bar missing WITH GRANT OPTION privilege on one or more of USAGE, DROP"
    );
    ok(
        &mut host,
        &as_user("testuser"),
        "GRANT USAGE ON EXTERNAL CONNECTION foo TO bar WITH GRANT OPTION",
    );

    let e = err(&mut host, &root(), "GRANT SELECT ON EXTERNAL CONNECTION foo TO bar");
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("0LP01", "invalid privilege type SELECT for external_connection")
    );
    let e = err(&mut host, &root(), "GRANT USAGE ON EXTERNAL CONNECTION nope TO bar");
    assert_eq!(
        e.message,
        "failed to resolve External Connection: external connection with name nope does not exist"
    );
    let e = err(&mut host, &root(), "GRANT USAGE ON EXTERNAL CONNECTION foo TO nobody");
    assert_eq!(e.message, "role/user \"nobody\" does not exist");

    // REVOKE USAGE from a holder of ALL leaves the rest; USAGE checks then fail.
    ok(
        &mut host,
        &root(),
        "GRANT ALL ON EXTERNAL CONNECTION foo TO bar; REVOKE USAGE ON EXTERNAL CONNECTION foo FROM bar",
    );
    assert_eq!(
        rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION foo FOR bar"),
        ["foo bar DROP false", "foo bar UPDATE false"]
    );
    let e = err(&mut host, &bar, "SHOW EXTERNAL CONNECTION foo");
    assert_eq!(
        e.message,
        "must have USAGE privilege or be owner of the External Connection \"foo\""
    );
    // REVOKE GRANT OPTION FOR keeps the privilege.
    ok(
        &mut host,
        &root(),
        "REVOKE GRANT OPTION FOR USAGE ON EXTERNAL CONNECTION foo FROM testuser",
    );
    assert_eq!(
        rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION foo FOR testuser"),
        ["foo testuser DROP true", "foo testuser USAGE false"]
    );
    // REVOKE ALL removes every row; DROP of the connection removes every grant on it.
    ok(&mut host, &root(), "REVOKE ALL ON EXTERNAL CONNECTION foo FROM testuser");
    assert_eq!(
        rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION foo FOR testuser"),
        Vec::<String>::new()
    );
    ok(
        &mut host,
        &root(),
        "DROP EXTERNAL CONNECTION foo; CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo'",
    );
    assert_eq!(
        rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION foo"),
        ["foo root ALL false"]
    );

    // System grants.
    ok(
        &mut host,
        &root(),
        "GRANT SYSTEM EXTERNALCONNECTION TO bar WITH GRANT OPTION; GRANT SYSTEM VIEWCLUSTERMETADATA TO testuser",
    );
    assert_eq!(
        rows(&mut host, &root(), "SHOW SYSTEM GRANTS"),
        ["bar EXTERNALCONNECTION true", "testuser VIEWCLUSTERMETADATA false"]
    );
    ok(&mut host, &bar, "GRANT SYSTEM EXTERNALCONNECTION TO testuser");
    let e = err(&mut host, &as_user("testuser"), "GRANT SYSTEM EXTERNALCONNECTION TO bar");
    assert_eq!(
        e.message,
        "user testuser missing WITH GRANT OPTION privilege on EXTERNALCONNECTION"
    );
    assert_eq!(
        rows(&mut host, &as_user("testuser"), "SHOW CREATE ALL EXTERNAL CONNECTIONS").len(),
        1
    );
}

#[test]
fn drop_user_is_refused_while_grants_remain() {
    let (mut host, _dir) = host();
    ok(
        &mut host,
        &root(),
        "CREATE USER testuser; CREATE USER testuser2; CREATE USER testuser3;
         CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo';
         GRANT USAGE, DROP ON EXTERNAL CONNECTION foo TO testuser, testuser2;
         GRANT SYSTEM EXTERNALCONNECTION TO testuser3",
    );
    let cases = [
        (
            "DROP USER testuser",
            "cannot drop role/user testuser: grants still exist on external_connection foo",
        ),
        (
            "DROP USER testuser, testuser2",
            "cannot drop roles/users testuser, testuser2: grants still exist on external_connection foo, external_connection foo",
        ),
        (
            "DROP USER testuser3",
            "role testuser3 cannot be dropped because some objects depend on it\ntestuser3 has global 'EXTERNALCONNECTION' privilege",
        ),
        ("DROP USER root", "cannot drop special user root"),
        ("DROP ROLE admin", "cannot drop special role admin"),
        ("DROP USER nobody", "role/user \"nobody\" does not exist"),
    ];
    for (sql, message) in cases {
        let e = err(&mut host, &root(), sql);
        assert_eq!(e.message, message, "{sql}");
    }
    ok(
        &mut host,
        &root(),
        "REVOKE ALL ON EXTERNAL CONNECTION foo FROM testuser, testuser2;
         REVOKE SYSTEM EXTERNALCONNECTION FROM testuser3;
         DROP USER testuser, testuser2, testuser3; DROP USER IF EXISTS nobody",
    );
    let users = rows(&mut host, &root(), "SHOW USERS");
    assert_eq!(users, ["admin {NOLOGIN} {}", "root {} {admin}"]);
}

#[test]
fn roles_pass_their_privileges_to_members_transitively() {
    let (mut host, _dir) = host();
    ok(
        &mut host,
        &root(),
        "CREATE ROLE outer_role; CREATE ROLE inner_role; CREATE USER u;
         GRANT outer_role TO inner_role; GRANT inner_role TO u;
         GRANT SYSTEM EXTERNALCONNECTION TO outer_role",
    );
    ok(&mut host, &as_user("u"), "CREATE EXTERNAL CONNECTION mine AS 'nodelocal://1/mine'");
    let e = err(&mut host, &root(), "GRANT u TO outer_role");
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("0LP01", "making outer_role a member of u would create a cycle")
    );
    ok(&mut host, &root(), "REVOKE inner_role FROM u");
    let e =
        err(&mut host, &as_user("u"), "CREATE EXTERNAL CONNECTION again AS 'nodelocal://1/again'");
    assert_eq!(e.sqlstate, "42501");
    // Admin membership gives everything, including connections created by others.
    ok(&mut host, &root(), "GRANT admin TO u");
    ok(&mut host, &as_user("u"), "DROP EXTERNAL CONNECTION mine");
}

#[test]
fn hostile_names_work_everywhere() {
    let (mut host, dir) = host();
    let user = r#""o'brien ""the"" user; --""#;
    let conn = r#""select; drop table x --'""#;
    let session_name = r#"o'brien "the" user; --"#;
    ok(
        &mut host,
        &root(),
        &format!(
            "CREATE USER {user} WITH PASSWORD 'pw-canary-31337';
             CREATE EXTERNAL CONNECTION {conn} AS 'nodelocal://1/odd';
             GRANT USAGE ON EXTERNAL CONNECTION {conn} TO {user}"
        ),
    );
    assert_eq!(
        rows(&mut host, &as_user(session_name), "SHOW EXTERNAL CONNECTIONS"),
        [r#"select; drop table x --' nodelocal://1/odd STORAGE"#]
    );
    assert_eq!(
        rows(&mut host, &root(), &format!("SHOW GRANTS ON EXTERNAL CONNECTION {conn}")),
        [
            r#"select; drop table x --' o'brien "the" user; -- USAGE false"#,
            r#"select; drop table x --' root ALL false"#,
        ]
    );
    ok(
        &mut host,
        &root(),
        &format!(
            "REVOKE USAGE ON EXTERNAL CONNECTION {conn} FROM {user}; DROP EXTERNAL CONNECTION {conn}; DROP USER {user}"
        ),
    );
    // The password was stored only as a salted verifier.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(15).any(|w| w == b"pw-canary-31337"),
                "{} holds the clear password",
                path.display()
            );
        }
    }
}

#[test]
fn passwords_are_stored_as_scram_verifiers() {
    let (mut host, _dir) = host();
    ok(
        &mut host,
        &root(),
        "CREATE USER alice WITH PASSWORD 'correct horse'; CREATE USER bob PASSWORD 'correct horse'",
    );
    let a = host.catalog().password_verifier("alice").unwrap().expect("a verifier");
    let b = host.catalog().password_verifier("bob").unwrap().expect("a verifier");
    assert!(a.starts_with("SCRAM-SHA-256$4096:"), "{a}");
    assert_ne!(a, b, "the same password must get different salts");
    assert!(!a.contains("correct horse"));
}

#[test]
fn concurrent_sessions_never_see_half_a_statement() {
    let (mut host, dir) = host();
    ok(
        &mut host,
        &root(),
        "CREATE USER a; CREATE USER b; CREATE EXTERNAL CONNECTION c AS 'nodelocal://1/c'",
    );
    let path = dir.path().to_owned();
    let writer = |grant: bool| {
        let path = path.clone();
        std::thread::spawn(move || {
            let mut host = Host::open(common::runtime(), &path).unwrap();
            let sql = if grant {
                "GRANT USAGE, DROP ON EXTERNAL CONNECTION c TO a, b"
            } else {
                "REVOKE USAGE, DROP ON EXTERNAL CONNECTION c FROM a, b"
            };
            for _ in 0..40 {
                let results = host.execute(&root(), sql);
                assert!(results.iter().all(|r| r.outcome.is_ok()), "{sql}: {results:?}");
            }
        })
    };
    let (granter, revoker) = (writer(true), writer(false));
    let mut seen = std::collections::BTreeSet::new();
    while !(granter.is_finished() && revoker.is_finished()) {
        let grants = rows(&mut host, &root(), "SHOW GRANTS ON EXTERNAL CONNECTION c FOR a, b");
        // Each statement touches four rows at once: all of them or none.
        assert!(grants.is_empty() || grants.len() == 4, "half a statement is visible: {grants:?}");
        seen.insert(grants.len());
    }
    granter.join().unwrap();
    revoker.join().unwrap();
    assert!(!seen.is_empty());
}
