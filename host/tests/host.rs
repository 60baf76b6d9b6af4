//! The step driver, the catalog and nodelocal together, through the real component.

mod common;

use common::{err, host, ok, root};
use extconn_host::{ErrorKind, Outcome, Rows, Session, Validation, Value};

const SENTINEL: &str = "crdb_external_storage_location";
const SENTINEL_TEXT: &str =
    "a CockroachDB cluster has been configured to read and write to this location";
/// A secret that must never show up in any output.
const CANARY: &str = "CANARY-7d1e9b-SECRET";

fn rows(results: &[extconn_host::StatementResult]) -> &Rows {
    match &results.last().unwrap().outcome {
        Ok(Outcome::Rows(rows)) => rows,
        other => panic!("expected rows, got {other:?}"),
    }
}

fn text(value: &Value) -> &str {
    match value {
        Value::Text(s) => s,
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn create_show_drop_on_nodelocal() {
    let (mut host, dir) = host();
    let results =
        ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo/bar'");
    assert_eq!(results[0].outcome, Ok(Outcome::Command("CREATE EXTERNAL CONNECTION".into())));
    let sentinel = dir.path().join("extern/foo/bar").join(SENTINEL);
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), SENTINEL_TEXT);

    let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    let shown = rows(&results);
    let columns: Vec<&str> = shown.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["connection_name", "connection_uri", "connection_type"]);
    assert_eq!(shown.rows.len(), 1);
    let row: Vec<&str> = shown.rows[0].iter().map(text).collect();
    assert_eq!(row, ["foo", "nodelocal://1/foo/bar", "STORAGE"]);

    let stored = host.catalog().read_connection("foo").unwrap().unwrap();
    assert_eq!((stored.owner.as_str(), stored.version), ("root", 1));

    ok(&mut host, &root(), "DROP EXTERNAL CONNECTION foo");
    assert_eq!(host.catalog().read_connection("foo").unwrap(), None);
    assert!(
        host.catalog()
            .read_grants(&extconn_host::catalog::GrantObject::Connection("foo".into()))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_script_stops_at_its_first_error() {
    let (mut host, _dir) = host();
    let results = host.execute(
        &root(),
        "CREATE EXTERNAL CONNECTION a AS 'nodelocal://1/a'; \
         CREATE EXTERNAL CONNECTION a AS 'nodelocal://1/a'; \
         CREATE EXTERNAL CONNECTION b AS 'nodelocal://1/b'",
    );
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].outcome.is_ok());
    let e = results[1].outcome.as_ref().unwrap_err();
    assert_eq!((e.kind, e.sqlstate.as_str()), (ErrorKind::AlreadyExists, "42710"));
    assert_eq!(
        e.message,
        "failed to create external connection: external connection with connection name 'a' already exists"
    );
    assert_eq!(host.catalog().read_connection("b").unwrap(), None);
}

#[test]
fn hostile_names_round_trip_as_data() {
    let (mut host, _dir) = host();
    let names = [
        ("\"it's\"", "it's"),
        ("\"semi;colon\"", "semi;colon"),
        ("\"with space\"", "with space"),
        ("\"dq\"\"x\"", "dq\"x"),
        ("\"Upper\"", "Upper"),
    ];
    for (quoted, _) in names {
        ok(
            &mut host,
            &root(),
            &format!("CREATE EXTERNAL CONNECTION {quoted} AS 'nodelocal://1/n'"),
        );
    }
    let mut expected: Vec<&str> = names.iter().map(|(_, n)| *n).collect();
    expected.sort();
    let stored: Vec<String> =
        host.catalog().list_connections().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(stored, expected);
    let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    let shown: Vec<&str> = rows(&results).rows.iter().map(|r| text(&r[0])).collect();
    assert_eq!(shown, expected);
    for (quoted, _) in names {
        ok(&mut host, &root(), &format!("DROP EXTERNAL CONNECTION {quoted}"));
    }
    assert!(host.catalog().list_connections().unwrap().is_empty());
}

#[test]
fn parse_only_validation_does_no_io() {
    let (mut host, dir) = host();
    let session = Session { validation: Validation::ParseOnly, ..root() };
    ok(&mut host, &session, "CREATE EXTERNAL CONNECTION quiet AS 'nodelocal://1/quiet'");
    assert!(!dir.path().join("extern/quiet").exists());
    assert!(host.catalog().read_connection("quiet").unwrap().is_some());
}

#[test]
fn nodelocal_on_another_node_is_a_clear_error() {
    let (mut host, _dir) = host();
    let e = err(&mut host, &root(), "CREATE EXTERNAL CONNECTION n2 AS 'nodelocal://2/foo'");
    assert!(
        e.message.contains(
            "nodelocal://2/foo: node 2 does not exist: this is a single-node deployment, \
             use nodelocal://1 or nodelocal://self"
        ),
        "{e:?}"
    );
    assert_eq!(host.catalog().read_connection("n2").unwrap(), None);
}

#[test]
fn unreachable_storage_fails_and_secrets_stay_hidden() {
    let (mut host, _dir) = host();
    // A loopback port nothing listens on: no test ever reaches a real cloud.
    let uri = format!(
        "s3://bucket/path?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY={CANARY}\
         &AWS_ENDPOINT=http://127.0.0.1:9&AWS_USE_PATH_STYLE=true"
    );
    let e = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION s3 AS '{uri}'"));
    assert!(
        e.message.contains("s3://bucket/path/crdb_external_storage_location: put failed"),
        "{e:?}"
    );
    assert!(!format!("{e:?}").contains(CANARY), "{e:?}");
    assert_eq!(host.catalog().read_connection("s3").unwrap(), None);

    let parse_only = Session { validation: Validation::ParseOnly, ..root() };
    ok(&mut host, &parse_only, &format!("CREATE EXTERNAL CONNECTION s3 AS '{uri}'"));
    let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    assert!(!format!("{results:?}").contains(CANARY), "{results:?}");
    let connection = host.catalog().read_connection("s3").unwrap().unwrap();
    assert_eq!(connection.uri, uri, "the catalog keeps the real URI");
    assert!(!format!("{connection:?}").contains(CANARY));
}

#[test]
fn sql_for_the_database_runs_in_the_default_database() {
    let (mut host, dir) = host();
    ok(&mut host, &root(), "CREATE TABLE t (a INT)\n  -- more");
    assert!(dir.path().join("databases/defaultdb.sqlite").is_file());
    let e = err(&mut host, &root(), "INSERT INTO nope VALUES (1)");
    assert_eq!((e.kind, e.sqlstate.as_str()), (ErrorKind::NotFound, "42P01"), "{e:?}");
    assert_eq!(e.message, "relation \"nope\" does not exist");
    let e = err(&mut host, &root(), "SELEC 1");
    assert_eq!((e.kind, e.sqlstate.as_str()), (ErrorKind::Syntax, "42601"), "{e:?}");
}

#[test]
fn users_without_the_privilege_are_refused() {
    let (mut host, _dir) = host();
    host.catalog_mut()
        .apply(&[extconn_host::catalog::Mutation::InsertPrincipal(
            extconn_host::catalog::PrincipalDef {
                name: "alice".into(),
                is_role: false,
                can_login: true,
                password_verifier: None,
            },
        )])
        .unwrap()
        .unwrap();
    let alice = Session { user: "alice".into(), ..root() };
    let e = err(&mut host, &alice, "CREATE EXTERNAL CONNECTION nope AS 'nodelocal://1/nope'");
    assert_eq!((e.kind, e.sqlstate.as_str()), (ErrorKind::PermissionDenied, "42501"), "{e:?}");
}
