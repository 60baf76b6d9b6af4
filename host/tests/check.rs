//! CHECK EXTERNAL CONNECTION through the real component: rows as CockroachDB shows them,
//! privileges, option errors, and real rounds against nodelocal and the emulators
//! `scripts/services` runs on 127.0.0.1 (moto for S3, Azurite for Azure).

mod common;

use common::{env, err, host, ok, q, root, unique};
use extconn_host::{Host, Outcome, Session, Validation, Value};

fn s3_uri(path: &str, endpoint: &str) -> String {
    format!(
        "s3://extconn-host/{path}?AWS_ACCESS_KEY_ID={}&AWS_SECRET_ACCESS_KEY={}\
         &AWS_ENDPOINT={}&AWS_USE_PATH_STYLE=true&AWS_REGION=us-east-1",
        q(&env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        q(&env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
        q(endpoint),
    )
}

fn as_user(name: &str) -> Session {
    Session { user: name.into(), database: None, validation: Validation::Full }
}

/// One CHECK row, by column.
#[derive(Debug)]
struct Row {
    node: i64,
    locality: String,
    ok: bool,
    error: String,
    transferred: String,
    read_speed: String,
    write_speed: String,
    can_delete: bool,
}

/// Runs a CHECK statement and returns its rows, checking the columns on the way.
fn check(host: &mut Host, session: &Session, sql: &str) -> Vec<Row> {
    let results = ok(host, session, sql);
    let Some(Ok(Outcome::Rows(rows))) = results.last().map(|r| &r.outcome) else {
        panic!("{sql}\ngave no rows: {results:?}");
    };
    let columns: Vec<(&str, &str)> =
        rows.columns.iter().map(|c| (c.name.as_str(), c.sql_type.as_str())).collect();
    assert_eq!(
        columns,
        [
            ("node", "INT8"),
            ("locality", "STRING"),
            ("ok", "BOOL"),
            ("error", "STRING"),
            ("transferred", "STRING"),
            ("read_speed", "STRING"),
            ("write_speed", "STRING"),
            ("can_delete", "BOOL"),
        ],
        "{sql}"
    );
    rows.rows
        .iter()
        .map(|row| {
            let text = |v: &Value| match v {
                Value::Text(s) => s.clone(),
                other => panic!("{sql}: expected text, got {other:?} in {row:?}"),
            };
            let boolean = |v: &Value| match v {
                Value::Boolean(b) => *b,
                other => panic!("{sql}: expected a bool, got {other:?} in {row:?}"),
            };
            let Value::Int(node) = row[0] else { panic!("{sql}: node in {row:?}") };
            Row {
                node,
                locality: text(&row[1]),
                ok: boolean(&row[2]),
                error: text(&row[3]),
                transferred: text(&row[4]),
                read_speed: text(&row[5]),
                write_speed: text(&row[6]),
                can_delete: boolean(&row[7]),
            }
        })
        .collect()
}

/// A successful row: everything moved, measured, and deleted.
fn assert_passed(row: &Row, transferred: &str, what: &str) {
    assert!(row.ok, "{what}: {row:?}");
    assert_eq!(row.error, "", "{what}: {row:?}");
    assert!(row.can_delete, "{what}: {row:?}");
    assert_eq!((row.node, row.locality.as_str()), (1, ""), "{what}: {row:?}");
    assert_eq!(row.transferred, transferred, "{what}: {row:?}");
    for speed in [&row.read_speed, &row.write_speed] {
        let rate = speed.strip_suffix(" MiB/s").unwrap_or_else(|| panic!("{what}: {row:?}"));
        let rate: f64 = rate.parse().unwrap_or_else(|_| panic!("{what}: {row:?}"));
        assert!(rate > 0.0, "{what}: {row:?}");
    }
}

/// What is left under `<data>/extern/<dir>`.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
        }
        Err(_) => Vec::new(),
    }
}

#[test]
fn nodelocal_passes_and_cleans_up() {
    let (mut host, data) = host();
    let rows = check(
        &mut host,
        &root(),
        "CHECK EXTERNAL CONNECTION 'nodelocal://1/checks' WITH TRANSFER = '1 MiB'",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_passed(&rows[0], "1.0 MiB", "1 MiB on nodelocal");
    assert_eq!(leftovers(&data.path().join("extern/checks")), Vec::<String>::new());

    // The default is one 32 MiB object, written in parts; WITH OPTIONS (…) is the same.
    let rows = check(&mut host, &root(), "CHECK EXTERNAL CONNECTION 'nodelocal://self/checks'");
    assert_passed(&rows[0], "32 MiB", "the default transfer");
    let rows = check(
        &mut host,
        &root(),
        "CHECK EXTERNAL CONNECTION 'nodelocal://1/checks' WITH OPTIONS (TRANSFER = '20 MiB')",
    );
    assert_passed(&rows[0], "20 MiB", "a multipart transfer");
    assert_eq!(leftovers(&data.path().join("extern/checks")), Vec::<String>::new());
}

#[test]
fn workers_run_concurrently_until_the_time_is_up() {
    let (mut host, _data) = host();
    let started = std::time::Instant::now();
    let rows = check(
        &mut host,
        &root(),
        "CHECK EXTERNAL CONNECTION 'nodelocal://1/c' \
         WITH CONCURRENTLY = 1 + 2, TRANSFER = '64 KiB', TIME = '300ms'",
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert!(row.ok && row.can_delete, "{row:?}");
        // More than one round each: more than one object's worth.
        let (amount, unit) = row.transferred.split_once(' ').unwrap();
        let more_than_one = match unit {
            "KiB" => amount.parse::<f64>().unwrap() > 64.0,
            unit => unit == "MiB",
        };
        assert!(more_than_one, "{row:?}");
    }
    // Below 1 is one worker, as in CockroachDB.
    let rows = check(
        &mut host,
        &root(),
        "CHECK EXTERNAL CONNECTION 'nodelocal://1/c' WITH CONCURRENTLY = 0, TRANSFER = '1KiB'",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_passed(&rows[0], "1.0 KiB", "CONCURRENTLY = 0");
}

#[test]
fn a_target_that_cannot_be_opened_is_a_row_not_an_error() {
    let (mut host, _data) = host();
    let rows = check(&mut host, &root(), "CHECK EXTERNAL CONNECTION 'nodelocal://2/x'");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert!(!row.ok && !row.can_delete, "{row:?}");
    assert_eq!(
        row.error,
        "opening external storage: nodelocal://2/x: node 2 does not exist: this is a \
         single-node deployment, use nodelocal://1 or nodelocal://self"
    );
    assert_eq!((row.transferred.as_str(), row.read_speed.as_str()), ("0 B", "0"), "{row:?}");
}

#[test]
fn usage_and_implicit_access_are_enforced() {
    let (mut host, _data) = host();
    ok(
        &mut host,
        &root(),
        "CREATE USER alice; CREATE EXTERNAL CONNECTION local AS 'nodelocal://1/conn'",
    );
    let alice = as_user("alice");
    let e = err(&mut host, &alice, "CHECK EXTERNAL CONNECTION 'external://local/sub'");
    assert_eq!(e.sqlstate, "42501", "{e:?}");
    assert_eq!(e.message, "user alice does not have USAGE privilege on external_connection local");
    // USAGE is checked before the name is looked up, so a missing name reads the same.
    let e = err(&mut host, &alice, "CHECK EXTERNAL CONNECTION 'external://nope'");
    assert_eq!(e.message, "user alice does not have USAGE privilege on external_connection nope");

    ok(&mut host, &root(), "GRANT USAGE ON EXTERNAL CONNECTION local TO alice");
    let rows = check(
        &mut host,
        &alice,
        "CHECK EXTERNAL CONNECTION 'external://local/sub' WITH TRANSFER = '4 KiB'",
    );
    assert_passed(&rows[0], "4.0 KiB", "external:// with USAGE");

    // A direct nodelocal URI is the node's own disk: implicit access.
    let direct = "CHECK EXTERNAL CONNECTION 'nodelocal://1/conn' WITH TRANSFER = '4 KiB'";
    let e = err(&mut host, &alice, direct);
    assert_eq!(e.sqlstate, "42501", "{e:?}");
    assert_eq!(
        e.message,
        "only users with the admin role or the EXTERNALIOIMPLICITACCESS system privilege are \
         allowed to access the specified nodelocal URI"
    );
    ok(&mut host, &root(), "GRANT SYSTEM EXTERNALIOIMPLICITACCESS TO alice");
    assert_passed(&check(&mut host, &alice, direct)[0], "4.0 KiB", "with EXTERNALIOIMPLICITACCESS");

    let e = err(&mut host, &root(), "CHECK EXTERNAL CONNECTION 'external://nope'");
    assert_eq!(
        e.message,
        "failed to load external connection object: external connection with name nope does not exist"
    );
}

#[test]
fn options_and_targets_are_checked_before_any_io() {
    let (mut host, data) = host();
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION feed AS 'webhook-https://127.0.0.1:9/hook'");
    let cases = [
        ("WITH TRANSFER = 'abc'", "strconv.ParseFloat: parsing \"\": invalid syntax"),
        ("WITH TRANSFER = '2 MiBs'", "unhandled size name: mibs"),
        ("WITH TRANSFER = '-1 MiB'", "TRANSFER must not be negative: -1 MiB"),
        ("WITH TIME = '1'", "time: missing unit in duration \"1\""),
        ("WITH TIME = 'soon'", "time: invalid duration \"soon\""),
        (
            "WITH CONCURRENTLY = f(1, 2)",
            "CONCURRENTLY must be an integer: f(1, 2) is not an integer expression",
        ),
        ("WITH CONCURRENTLY = 1000", "CONCURRENTLY must be at most 256, not 1000"),
    ];
    for (options, expected) in cases {
        let sql = format!("CHECK EXTERNAL CONNECTION 'nodelocal://1/x' {options}");
        let e = err(&mut host, &root(), &sql);
        assert_eq!((e.sqlstate.as_str(), e.message.as_str()), ("22023", expected), "{sql}");
    }
    for uri in ["webhook-https://127.0.0.1:9/hook", "external://feed"] {
        let e = err(&mut host, &root(), &format!("CHECK EXTERNAL CONNECTION '{uri}'"));
        assert_eq!(
            e.message,
            "unsupported storage scheme: \"webhook-https\" - refer to docs to find supported storage schemes",
            "{uri}"
        );
    }
    let e = err(&mut host, &root(), "CHECK EXTERNAL CONNECTION 's3:///x?AUTH=implicit'");
    assert_eq!(
        e.message,
        "failed to create s3 external connection: empty host component; s3 URI must specify a \
         target bucket"
    );
    assert!(!data.path().join("extern/x").exists());
}

#[test]
fn s3_on_moto_passes_and_a_stopped_service_fails_in_its_row() {
    let (mut host, _data) = host();
    let uri = s3_uri(&unique("check"), &env("EXTCONN_TEST_S3_ENDPOINT"));
    let rows = check(
        &mut host,
        &root(),
        &format!("CHECK EXTERNAL CONNECTION '{uri}' WITH CONCURRENTLY = 2, TRANSFER = '2 MiB'"),
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_passed(row, "2.0 MiB", "s3 on moto");
    }
    // Multipart as well (over 16 MiB).
    let rows = check(
        &mut host,
        &root(),
        &format!("CHECK EXTERNAL CONNECTION '{uri}' WITH TRANSFER = '17 MiB'"),
    );
    assert_passed(&rows[0], "17 MiB", "s3 multipart on moto");

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let uri = s3_uri("down", &closed);
    let rows = check(
        &mut host,
        &root(),
        &format!("CHECK EXTERNAL CONNECTION '{uri}' WITH TRANSFER = '1 KiB'"),
    );
    let row = &rows[0];
    assert!(!row.ok && !row.can_delete, "{row:?}");
    assert!(
        row.error.starts_with("writing file: s3://extconn-host/down/cockroach-storage-test-"),
        "{row:?}"
    );
    assert!(row.error.contains("cannot connect to the service"), "{row:?}");
    assert!(!row.error.contains(&env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")), "{row:?}");
}

#[test]
fn azure_on_azurite_passes() {
    let (mut host, _data) = host();
    env("EXTCONN_AZURE_BLOB_ENDPOINT");
    let uri = format!(
        "azure-blob://extconn-host/{}?AZURE_ACCOUNT_NAME={}&AZURE_ACCOUNT_KEY={}",
        unique("check"),
        q(&env("EXTCONN_TEST_AZURE_ACCOUNT_NAME")),
        q(&env("EXTCONN_TEST_AZURE_ACCOUNT_KEY")),
    );
    let rows = check(
        &mut host,
        &root(),
        &format!("CHECK EXTERNAL CONNECTION '{uri}' WITH TRANSFER = '2 MiB'"),
    );
    assert_passed(&rows[0], "2.0 MiB", "azure on azurite");
}
