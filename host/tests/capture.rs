//! Change capture on real database files, written by this process, by the `sqlite3` CLI and
//! by Python's `sqlite3` module; and the messages built from what was captured.

use std::path::{Path, PathBuf};
use std::process::Command;

use extconn_host::changefeed::capture::{self, CaptureError, Change, Op};
use extconn_host::changefeed::envelope::{self, EncodeOptions, Envelope};
use extconn_host::changefeed::{Datum, Hlc, Row};
use extconn_host::databases::open_file;

struct Db {
    _dir: tempfile::TempDir,
    path: PathBuf,
    conn: rusqlite::Connection,
}

/// A fresh database file, opened as extconn opens its databases.
fn db(schema: &str) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let conn = open_file(&path, true).unwrap();
    conn.execute_batch(schema).unwrap();
    Db { _dir: dir, path, conn }
}

/// Runs a command and fails with the command, its status, stdout and stderr unless it
/// succeeded.
fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "command failed: {command:?}\nstatus: {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `sql` in the `sqlite3` CLI, another process with its own SQLite build.
fn sqlite3_cli(path: &Path, sql: &str) -> String {
    run(Command::new("sqlite3").args(["-bail", "-cmd", ".timeout 10000"]).arg(path).arg(sql))
}

/// Runs `sql` through Python's `sqlite3` module (autocommit: `sql` says BEGIN/COMMIT).
fn python(path: &Path, sql: &str) -> String {
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)\n\
         c.executescript(sys.argv[2])\n",
        )
        .arg(path)
        .arg(sql))
}

fn all_changes(conn: &rusqlite::Connection, tables: &[&str]) -> Vec<Change> {
    let batch = capture::read_changes(conn, tables, 0, 10_000).unwrap();
    assert!(batch.caught_up);
    batch.changes
}

fn row(columns: &[(&str, Datum)]) -> Row {
    Row { columns: columns.iter().map(|(n, d)| (std::sync::Arc::from(*n), d.clone())).collect() }
}

fn int(i: i64) -> Datum {
    Datum::Integer(i)
}

fn text(s: &str) -> Datum {
    Datum::Text(s.to_owned())
}

/// (op, key, before, after) of each change, for comparing whole histories.
type Summary = (Op, Vec<Datum>, Option<Row>, Option<Row>);

fn summary(changes: &[Change]) -> Vec<Summary> {
    changes.iter().map(|c| (c.op, c.key.clone(), c.before.clone(), c.after.clone())).collect()
}

fn assert_monotonic(changes: &[Change]) {
    for pair in changes.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "seq not increasing: {pair:?}");
        assert!(pair[0].ts < pair[1].ts, "ts not increasing: {pair:?}");
    }
}

#[test]
fn every_writer_is_captured_in_commit_order() {
    let d = db("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    let users = capture::install(&d.conn, "users").unwrap();
    assert_eq!(users.columns, ["id", "name"]);
    assert_eq!(users.key_columns, ["id"]);

    d.conn.execute_batch("INSERT INTO users VALUES (1, 'ana')").unwrap();
    sqlite3_cli(
        &d.path,
        "INSERT INTO users VALUES (2, 'cli'); UPDATE users SET name = 'ana2' WHERE id = 1;",
    );
    python(
        &d.path,
        "BEGIN; INSERT INTO users VALUES (3, 'py'); DELETE FROM users WHERE id = 2; COMMIT;",
    );
    d.conn.execute_batch("UPDATE users SET name = name || '!' WHERE id = 3").unwrap();

    let changes = all_changes(&d.conn, &["users"]);
    assert_monotonic(&changes);
    let ana = |n: &str| row(&[("id", int(1)), ("name", text(n))]);
    assert_eq!(
        summary(&changes),
        vec![
            (Op::Insert, vec![int(1)], None, Some(ana("ana"))),
            (Op::Insert, vec![int(2)], None, Some(row(&[("id", int(2)), ("name", text("cli"))]))),
            (Op::Update, vec![int(1)], Some(ana("ana")), Some(ana("ana2"))),
            (Op::Insert, vec![int(3)], None, Some(row(&[("id", int(3)), ("name", text("py"))]))),
            (Op::Delete, vec![int(2)], Some(row(&[("id", int(2)), ("name", text("cli"))])), None),
            (
                Op::Update,
                vec![int(3)],
                Some(row(&[("id", int(3)), ("name", text("py"))])),
                Some(row(&[("id", int(3)), ("name", text("py!"))]))
            ),
        ]
    );
}

#[test]
fn concurrent_writers_interleave_without_loss() {
    let d = db("CREATE TABLE events (writer TEXT, n INTEGER, PRIMARY KEY (writer, n))");
    capture::install(&d.conn, "events").unwrap();
    let script = |writer: &str| -> String {
        (0..50).map(|n| format!("INSERT INTO events VALUES ('{writer}', {n});")).collect()
    };
    std::thread::scope(|s| {
        s.spawn(|| sqlite3_cli(&d.path, &script("cli")));
        s.spawn(|| python(&d.path, &script("py")));
        s.spawn(|| {
            let conn = open_file(&d.path, false).unwrap();
            for n in 0..50 {
                conn.execute("INSERT INTO events VALUES ('rs', ?1)", [n]).unwrap();
            }
        });
    });
    // Read in small batches from a cursor, as a changefeed does.
    let mut changes = Vec::new();
    let mut cursor = 0;
    loop {
        let batch = capture::read_changes(&d.conn, &["events"], cursor, 7).unwrap();
        changes.extend(batch.changes);
        cursor = batch.cursor;
        if batch.caught_up {
            break;
        }
    }
    assert_eq!(changes.len(), 150);
    assert_monotonic(&changes);
    // Each writer's changes arrive in its own commit order.
    for writer in ["cli", "py", "rs"] {
        let ns: Vec<Datum> =
            changes.iter().filter(|c| c.key[0] == text(writer)).map(|c| c.key[1].clone()).collect();
        assert_eq!(ns, (0..50).map(int).collect::<Vec<_>>(), "writer {writer}");
    }
}

#[test]
fn rolled_back_writes_leave_no_change() {
    let d = db("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    capture::install(&d.conn, "t").unwrap();
    d.conn.execute_batch("BEGIN; INSERT INTO t VALUES (1, 'gone'); ROLLBACK;").unwrap();
    d.conn
        .execute_batch(
            "BEGIN; INSERT INTO t VALUES (2, 'kept'); SAVEPOINT s; INSERT INTO t VALUES (3, 'gone');
             ROLLBACK TO s; RELEASE s; COMMIT;",
        )
        .unwrap();
    // A statement that fails half-way (the second row violates the key) is undone whole.
    let err = d.conn.execute_batch("INSERT INTO t VALUES (4, 'gone'), (2, 'dup')").unwrap_err();
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    python(&d.path, "BEGIN; INSERT INTO t VALUES (5, 'gone'); ROLLBACK;");
    let changes = all_changes(&d.conn, &["t"]);
    assert_eq!(
        summary(&changes),
        vec![(Op::Insert, vec![int(2)], None, Some(row(&[("id", int(2)), ("v", text("kept"))])))]
    );
}

#[test]
fn primary_key_update_is_a_delete_and_an_insert() {
    let d = db("CREATE TABLE t (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b))");
    let t = capture::install(&d.conn, "t").unwrap();
    assert_eq!(t.key_columns, ["a", "b"]);
    d.conn.execute_batch("INSERT INTO t VALUES ('x', 1, 'v'); UPDATE t SET b = 2").unwrap();
    let old = row(&[("a", text("x")), ("b", int(1)), ("v", text("v"))]);
    let new = row(&[("a", text("x")), ("b", int(2)), ("v", text("v"))]);
    let changes = all_changes(&d.conn, &["t"]);
    assert_monotonic(&changes);
    assert_eq!(
        summary(&changes),
        vec![
            (Op::Insert, vec![text("x"), int(1)], None, Some(old.clone())),
            (Op::Delete, vec![text("x"), int(1)], Some(old.clone()), None),
            (Op::Insert, vec![text("x"), int(2)], None, Some(new.clone())),
        ]
    );
    // As CockroachDB emits it with diff: the old key deleted, the new key inserted.
    let options = EncodeOptions { diff: true, ..EncodeOptions::default() };
    let messages: Vec<(String, String)> = changes[1..]
        .iter()
        .map(|c| {
            let event = c.event(&t, "t");
            let key = String::from_utf8(envelope::encode_key(event.key)).unwrap();
            let value = envelope::encode_value(&options, &event).unwrap();
            (key, String::from_utf8(value).unwrap())
        })
        .collect();
    assert_eq!(
        messages,
        [
            (
                r#"["x", 1]"#.to_owned(),
                r#"{"after": null, "before": {"a": "x", "b": 1, "v": "v"}}"#.to_owned()
            ),
            (
                r#"["x", 2]"#.to_owned(),
                r#"{"after": {"a": "x", "b": 2, "v": "v"}, "before": null}"#.to_owned()
            ),
        ]
    );
}

#[test]
fn every_storage_class_round_trips_exactly() {
    let d = db("CREATE TABLE v (id INTEGER PRIMARY KEY, x)");
    let v = capture::install(&d.conn, "v").unwrap();
    let values = [
        Datum::Null,
        int(i64::MIN),
        int(i64::MAX),
        Datum::Real(0.1),
        Datum::Real(-1.0e300),
        Datum::Real(5e-324),
        Datum::Real(f64::INFINITY),
        Datum::Real(f64::NEG_INFINITY),
        text("é \"quoted\" \\ \n\t\u{1} 😀"),
        text(""),
        Datum::Blob(vec![0, 1, 0xfe, 0xff]),
        Datum::Blob(vec![]),
    ];
    for (i, value) in values.iter().enumerate() {
        d.conn
            .execute("INSERT INTO v VALUES (?1, ?2)", rusqlite::params![i as i64, value])
            .unwrap();
    }
    // The same values written by the CLI, whose SQLite is older and has its own JSON code.
    sqlite3_cli(
        &d.path,
        "INSERT INTO v VALUES (100, 0.1), (101, 1e999), (102, x'00ff'), (103, 'cli'), (104, NULL);",
    );
    let changes = all_changes(&d.conn, &["v"]);
    let captured: Vec<Datum> =
        changes.iter().map(|c| c.after.as_ref().unwrap().get("x").unwrap().clone()).collect();
    let mut expected = values.to_vec();
    expected.extend([
        Datum::Real(0.1),
        Datum::Real(f64::INFINITY),
        Datum::Blob(vec![0, 0xff]),
        text("cli"),
        Datum::Null,
    ]);
    assert_eq!(captured, expected);
    // The scan reads the same values straight from the table.
    let scanned = capture::scan(&d.conn, &v, None, 1000).unwrap();
    let scanned: Vec<Datum> = scanned.iter().map(|r| r.row.get("x").unwrap().clone()).collect();
    assert_eq!(scanned, expected);
}

#[test]
fn tables_without_primary_key_use_the_rowid() {
    let d = db("CREATE TABLE log (msg TEXT)");
    let log = capture::install(&d.conn, "log").unwrap();
    assert!(log.key_columns.is_empty());
    d.conn
        .execute_batch("INSERT INTO log VALUES ('a'), ('b'); DELETE FROM log WHERE msg = 'a'")
        .unwrap();
    let changes = all_changes(&d.conn, &["log"]);
    let keys: Vec<(Op, Vec<Datum>)> = changes.iter().map(|c| (c.op, c.key.clone())).collect();
    assert_eq!(
        keys,
        [(Op::Insert, vec![int(1)]), (Op::Insert, vec![int(2)]), (Op::Delete, vec![int(1)])]
    );
    let scanned = capture::scan(&d.conn, &log, None, 10).unwrap();
    assert_eq!(scanned.len(), 1);
    assert_eq!(scanned[0].key, [int(2)]);
    assert_eq!(scanned[0].row, row(&[("msg", text("b"))]));
}

#[test]
fn hostile_names_are_quoted() {
    let table = "we\"ird 'name";
    let d = db(r#"CREATE TABLE "we""ird 'name" ("i""d" INTEGER PRIMARY KEY, "v'al" TEXT)"#);
    let t = capture::install(&d.conn, table).unwrap();
    assert_eq!(t.columns, ["i\"d", "v'al"]);
    d.conn.execute_batch(r#"INSERT INTO "we""ird 'name" VALUES (1, 'x')"#).unwrap();
    let changes = all_changes(&d.conn, &[table]);
    assert_eq!(changes[0].table, table);
    assert_eq!(changes[0].after, Some(row(&[("i\"d", int(1)), ("v'al", text("x"))])));
    let value = envelope::encode_value(&EncodeOptions::default(), &changes[0].event(&t, table));
    assert_eq!(value.unwrap(), br#"{"after": {"i\"d": 1, "v'al": "x"}}"#);
    assert_eq!(capture::scan(&d.conn, &t, Some(&[int(0)]), 10).unwrap().len(), 1);
}

#[test]
fn install_is_idempotent_and_uninstall_stops_capture() {
    let d = db("CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY)");
    capture::install(&d.conn, "a").unwrap();
    capture::install(&d.conn, "a").unwrap();
    capture::install(&d.conn, "b").unwrap();
    d.conn.execute_batch("INSERT INTO a VALUES (1); INSERT INTO b VALUES (1)").unwrap();
    assert_eq!(all_changes(&d.conn, &["a"]).len(), 1, "no duplicate triggers");
    assert_eq!(all_changes(&d.conn, &["a", "b"]).len(), 2);

    assert!(capture::uninstall(&d.conn, "a").unwrap());
    assert!(!capture::uninstall(&d.conn, "a").unwrap());
    d.conn.execute_batch("INSERT INTO a VALUES (2); INSERT INTO b VALUES (2)").unwrap();
    assert!(matches!(
        capture::read_changes(&d.conn, &["a"], 0, 10),
        Err(CaptureError::NotCaptured { .. })
    ));
    let b: Vec<Vec<Datum>> = all_changes(&d.conn, &["b"]).into_iter().map(|c| c.key).collect();
    assert_eq!(b, [vec![int(1)], vec![int(2)]]);
    let remaining: i64 =
        d.conn.query_row("SELECT count(*) FROM _extconn_changes", [], |r| r.get(0)).unwrap();
    assert_eq!(remaining, 2, "a's changes went with it");
}

#[test]
fn refusals() {
    let many: Vec<String> = (0..64).map(|i| format!("c{i} INTEGER")).collect();
    let d = db(&format!(
        "CREATE TABLE wide ({}); CREATE VIEW v AS SELECT 1; CREATE TABLE t (id INTEGER PRIMARY KEY)",
        many.join(", ")
    ));
    let cases: &[(&str, &str)] = &[
        ("wide", "table \"wide\" has 64 columns; change capture supports at most 63"),
        ("v", "relation \"v\" does not exist"),
        ("missing", "relation \"missing\" does not exist"),
        ("_extconn_changes", "table \"_extconn_changes\" is internal and cannot be captured"),
        ("sqlite_schema", "table \"sqlite_schema\" is internal and cannot be captured"),
    ];
    for (table, want) in cases {
        let err = capture::install(&d.conn, table).unwrap_err();
        assert_eq!(err.to_string(), *want, "{table}");
    }
    let err = capture::read_changes(&d.conn, &["t"], 0, 10).unwrap_err();
    assert_eq!(err.to_string(), "table \"t\" is not captured");
}

#[test]
fn schema_changes_are_detected_and_install_adopts_them() {
    let d = db("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)");
    capture::install(&d.conn, "t").unwrap();
    d.conn.execute_batch("INSERT INTO t VALUES (1, 'x')").unwrap();
    // Another process alters the table behind our back.
    sqlite3_cli(&d.path, "ALTER TABLE t ADD COLUMN b INTEGER; INSERT INTO t VALUES (2, 'y', 7);");
    let err = capture::read_changes(&d.conn, &["t"], 0, 10).unwrap_err();
    assert_eq!(
        err.to_string(),
        "table \"t\" changed since its changes are captured (columns were (id, a), are (id, a, b)); \
         schema changes are not supported by changefeeds on extconn databases"
    );
    // Dropping a captured column is refused by SQLite itself (the trigger names it).
    let dropped = d.conn.execute_batch("ALTER TABLE t DROP COLUMN a");
    assert!(dropped.is_err(), "DROP COLUMN of a captured column succeeded");

    capture::install(&d.conn, "t").unwrap();
    d.conn.execute_batch("UPDATE t SET b = 8 WHERE id = 2").unwrap();
    let changes = all_changes(&d.conn, &["t"]);
    assert_eq!(changes.len(), 3);
    // The row written between the ALTER and the reinstall lacks the new column.
    assert_eq!(changes[1].after, Some(row(&[("id", int(2)), ("a", text("y"))])));
    assert_eq!(changes[2].after, Some(row(&[("id", int(2)), ("a", text("y")), ("b", int(8))])));

    d.conn.execute_batch("DROP TRIGGER \"_extconn_insert_t\"").unwrap();
    let err = capture::read_changes(&d.conn, &["t"], 0, 10).unwrap_err();
    assert!(err.to_string().contains("its capture triggers were dropped"), "{err}");
}

#[test]
fn initial_scan_pages_by_key_then_streams_from_the_recorded_seq() {
    let d = db("CREATE TABLE t (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b))");
    let t = capture::install(&d.conn, "t").unwrap();
    let mut insert = String::new();
    for a in ["z", "m", "a"] {
        for b in (0..4).rev() {
            insert.push_str(&format!("INSERT INTO t VALUES ('{a}', {b}, 'v');"));
        }
    }
    d.conn.execute_batch(&insert).unwrap();

    let start = capture::resolve(&d.conn).unwrap();
    let mut keys = Vec::new();
    let mut after: Option<Vec<Datum>> = None;
    let mut pages = 0;
    loop {
        let page = capture::scan(&d.conn, &t, after.as_deref(), 5).unwrap();
        pages += 1;
        if pages == 1 {
            // Changed during the scan: a row already scanned, one not yet, a new one.
            d.conn
                .execute_batch(
                    "UPDATE t SET v = 'w' WHERE a = 'a' AND b = 0;
                     UPDATE t SET v = 'w' WHERE a = 'z' AND b = 3;
                     INSERT INTO t VALUES ('q', 0, 'new');",
                )
                .unwrap();
        }
        keys.extend(page.iter().map(|r| r.key.clone()));
        after = page.last().map(|r| r.key.clone());
        if page.len() < 5 {
            break;
        }
    }
    let mut expected = Vec::new();
    for a in ["a", "m", "q", "z"] {
        for b in 0..4 {
            if a != "q" || b == 0 {
                expected.push(vec![text(a), int(b)]);
            }
        }
    }
    assert_eq!(keys, expected, "every row once, in key order");
    assert_eq!(pages, 3);

    // Streaming from the recorded seq: exactly the changes made during the scan (the row
    // scanned after its update comes again, at-least-once).
    let stream = capture::read_changes(&d.conn, &["t"], start.seq, 100).unwrap().changes;
    let streamed: Vec<(Op, Vec<Datum>)> = stream.iter().map(|c| (c.op, c.key.clone())).collect();
    assert_eq!(
        streamed,
        [
            (Op::Update, vec![text("a"), int(0)]),
            (Op::Update, vec![text("z"), int(3)]),
            (Op::Insert, vec![text("q"), int(0)]),
        ]
    );
    assert!(stream.iter().all(|c| c.ts > start.ts), "streamed changes are newer than the scan");
}

#[test]
fn gc_deletes_what_every_changefeed_consumed() {
    let d = db("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    capture::install(&d.conn, "t").unwrap();
    d.conn.execute_batch("INSERT INTO t VALUES (1), (2), (3), (4)").unwrap();
    let changes = all_changes(&d.conn, &["t"]);
    let (slow, fast) = (changes[1].seq, changes[3].seq);
    assert_eq!(capture::gc(&d.conn, slow.min(fast)).unwrap(), 2);
    let left: Vec<i64> = capture::read_changes(&d.conn, &["t"], 0, 10)
        .unwrap()
        .changes
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(left, [changes[2].seq, changes[3].seq]);
    // Deleting the newest changes never lets a number be reused.
    assert_eq!(capture::gc(&d.conn, fast).unwrap(), 2);
    d.conn.execute_batch("INSERT INTO t VALUES (5)").unwrap();
    let next = all_changes(&d.conn, &["t"]);
    assert!(next[0].seq > fast, "seq {} reused after gc up to {fast}", next[0].seq);
    assert!(next[0].ts > changes[3].ts);
}

#[test]
fn timestamps_are_monotonic_and_resolved_is_a_promise() {
    let d = db("CREATE TABLE t (id INTEGER PRIMARY KEY)");
    capture::install(&d.conn, "t").unwrap();
    // Many changes in one statement share one recorded wall time; their ts still increase.
    d.conn
        .execute_batch("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO t SELECT i FROM n")
        .unwrap();
    let first = all_changes(&d.conn, &["t"]);
    assert_eq!(first.len(), 200);
    assert_monotonic(&first);
    // Reading again gives the same stamps (they are stored, not recomputed).
    assert_eq!(all_changes(&d.conn, &["t"]), first);

    let resolved = capture::resolve(&d.conn).unwrap();
    assert_eq!(resolved.seq, first.last().unwrap().seq);
    assert!(resolved.ts >= first.last().unwrap().ts);
    assert!(resolved.ts.wall_ns > 1_600_000_000_000_000_000, "{resolved:?} is wall time");
    let again = capture::resolve(&d.conn).unwrap();
    assert!(again.ts >= resolved.ts);

    // A transaction that writes (and records its wall time) before a resolved timestamp is
    // taken but commits after it still gets a later timestamp. Its write lock blocks
    // resolve, so resolve runs in another thread and this transaction commits first.
    let writer = open_file(&d.path, false).unwrap();
    writer.execute_batch("BEGIN; INSERT INTO t VALUES (1000);").unwrap();
    let recorded: i64 = writer
        .query_row("SELECT recorded FROM _extconn_changes ORDER BY seq DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let path = d.path.clone();
    let late =
        std::thread::spawn(move || capture::resolve(&open_file(&path, false).unwrap()).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(50));
    writer.execute_batch("COMMIT").unwrap();
    let late = late.join().unwrap();
    let change = capture::read_changes(&d.conn, &["t"], resolved.seq, 10).unwrap().changes;
    assert_eq!(change.len(), 1);
    assert!(change[0].ts.wall_ns >= recorded);
    assert!(change[0].ts > again.ts);
    assert!(late.seq >= change[0].seq && late.ts >= change[0].ts, "{late:?} vs {:?}", change[0]);

    // A change after a resolved timestamp is stamped above it, even when the writer's
    // recorded wall time is older (a clock going back).
    let promised = capture::resolve(&d.conn).unwrap();
    d.conn.execute_batch("INSERT INTO t VALUES (2000)").unwrap();
    d.conn
        .execute("UPDATE _extconn_changes SET recorded = 1 WHERE seq = (SELECT max(seq) FROM _extconn_changes)", [])
        .unwrap();
    let after = capture::read_changes(&d.conn, &["t"], promised.seq, 10).unwrap().changes;
    assert_eq!(after[0].ts, Hlc::from_nanos(promised.ts.wall_ns + 1));
}

#[test]
fn messages_from_captured_changes_byte_for_byte() {
    let d = db("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, photo BLOB, score REAL)");
    let users = capture::install(&d.conn, "users").unwrap();
    sqlite3_cli(
        &d.path,
        "INSERT INTO users VALUES (1, 'ana', x'cafe', 100.0);
         UPDATE users SET score = 0.5, photo = NULL WHERE id = 1;
         DELETE FROM users;",
    );
    let changes = all_changes(&d.conn, &["users"]);
    let ts: Vec<String> = changes.iter().map(|c| c.ts.to_string()).collect();
    for t in &ts {
        assert!(t.ends_with(".0000000000") && t.len() == 30, "HLC text {t}");
    }
    let encode = |options: EncodeOptions| -> Vec<Option<String>> {
        options.validate().unwrap();
        changes
            .iter()
            .map(|c| {
                envelope::encode_value(&options, &c.event(&users, "users"))
                    .map(|v| String::from_utf8(v).unwrap())
            })
            .collect()
    };
    let ana = r#"{"id": 1, "name": "ana", "photo": "\\xcafe", "score": 1E+2}"#;
    let ana2 = r#"{"id": 1, "name": "ana", "photo": null, "score": 0.5}"#;
    assert_eq!(
        encode(EncodeOptions::default()),
        [
            Some(format!(r#"{{"after": {ana}}}"#)),
            Some(format!(r#"{{"after": {ana2}}}"#)),
            Some(r#"{"after": null}"#.to_owned()),
        ]
    );
    assert_eq!(
        encode(EncodeOptions {
            diff: true,
            updated: true,
            key_in_value: true,
            ..Default::default()
        }),
        [
            Some(format!(
                r#"{{"after": {ana}, "before": null, "key": [1], "updated": "{}"}}"#,
                ts[0]
            )),
            Some(format!(
                r#"{{"after": {ana2}, "before": {ana}, "key": [1], "updated": "{}"}}"#,
                ts[1]
            )),
            Some(format!(
                r#"{{"after": null, "before": {ana2}, "key": [1], "updated": "{}"}}"#,
                ts[2]
            )),
        ]
    );
    assert_eq!(
        encode(EncodeOptions { envelope: Envelope::Bare, updated: true, ..Default::default() }),
        [
            Some(format!(
                r#"{{"__crdb__": {{"updated": "{}"}}, "id": 1, "name": "ana", "photo": "\\xcafe", "score": 1E+2}}"#,
                ts[0]
            )),
            Some(format!(
                r#"{{"__crdb__": {{"updated": "{}"}}, "id": 1, "name": "ana", "photo": null, "score": 0.5}}"#,
                ts[1]
            )),
            Some(format!(
                r#"{{"__crdb__": {{"updated": "{}"}}, "id": 1, "name": null, "photo": null, "score": null}}"#,
                ts[2]
            )),
        ]
    );
    assert_eq!(
        encode(EncodeOptions { envelope: Envelope::Row, ..Default::default() }),
        [Some(ana.to_owned()), Some(ana2.to_owned()), None]
    );
    assert_eq!(
        encode(EncodeOptions { envelope: Envelope::KeyOnly, ..Default::default() }),
        [None, None, None]
    );
    let keys: Vec<Vec<u8>> = changes.iter().map(|c| envelope::encode_key(&c.key)).collect();
    assert_eq!(keys, [b"[1]", b"[1]", b"[1]"]);

    let resolved = capture::resolve(&d.conn).unwrap();
    assert_eq!(
        String::from_utf8(envelope::encode_resolved(Envelope::Wrapped, resolved.ts)).unwrap(),
        format!(r#"{{"resolved":"{}"}}"#, resolved.ts)
    );
}

/// Every option combination CREATE CHANGEFEED accepts.
fn every_encoding() -> Vec<EncodeOptions> {
    let mut all = Vec::new();
    for envelope in [Envelope::Wrapped, Envelope::Bare, Envelope::Row, Envelope::KeyOnly] {
        for bits in 0..16u8 {
            let options = EncodeOptions {
                envelope,
                diff: bits & 1 != 0,
                updated: bits & 2 != 0,
                key_in_value: bits & 4 != 0,
                topic_in_value: bits & 8 != 0,
            };
            if options.validate().is_ok() {
                all.push(options);
            }
        }
    }
    all
}

#[test]
fn transcoded_messages_equal_decoded_ones() {
    // A composite key, every storage class, and names that need escaping (decoded whole).
    let d = db(r#"CREATE TABLE t (city TEXT, n INTEGER, x, "y zé" TEXT, PRIMARY KEY (city, n));
                  CREATE TABLE "q""uoted" ("k""ey" INTEGER PRIMARY KEY, "v\al" TEXT, x);
                  CREATE TABLE u (id INTEGER PRIMARY KEY, zz TEXT, a, m);"#);
    let t = capture::install(&d.conn, "t").unwrap();
    let q = capture::install(&d.conn, "q\"uoted").unwrap();
    // Rows of another shape (as many columns as t's, sorted otherwise) in between: names
    // sorted once per shape must not leak across.
    let u = capture::install(&d.conn, "u").unwrap();
    let values = [
        Datum::Null,
        int(0),
        int(-7),
        int(7),
        int(100_000_000_000_000_000),
        int(1_000_000_000_000_000_000),
        int(i64::MIN),
        int(i64::MAX),
        Datum::Real(0.0),
        Datum::Real(-0.0),
        Datum::Real(0.1),
        Datum::Real(100.0),
        Datum::Real(-1.0e300),
        Datum::Real(5e-324),
        Datum::Real(f64::INFINITY),
        Datum::Real(f64::NEG_INFINITY),
        text("plain"),
        text(""),
        text("é ü 😀 /slash"),
        text("\"quoted\" \\ back"),
        text("\n\t\r \u{1} \u{1f} \u{7f}"),
        text("\u{2028}\u{2029}"),
        Datum::Blob(vec![0, 1, 0xfe, 0xff]),
        Datum::Blob(vec![]),
    ];
    for (i, value) in values.iter().enumerate() {
        let city = &values[(i + 16) % values.len()];
        d.conn
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![city, i as i64, value, value],
            )
            .unwrap();
        d.conn
            .execute(
                "INSERT INTO \"q\"\"uoted\" VALUES (?1, ?2, ?3)",
                rusqlite::params![i as i64, value, value],
            )
            .unwrap();
        d.conn
            .execute("INSERT INTO u VALUES (?1, ?2, ?2, ?2)", rusqlite::params![i as i64, value])
            .unwrap();
    }
    d.conn
        .execute_batch(
            "INSERT INTO t VALUES (CAST(x'ff41' AS TEXT), 9999, CAST(x'41ff' AS TEXT), 'a\u{7f}');
             UPDATE t SET x = 'changed' WHERE n % 3 = 0;
             UPDATE t SET n = n + 1000 WHERE n % 5 = 0;
             DELETE FROM t WHERE n % 4 = 0;
             DELETE FROM \"q\"\"uoted\" WHERE x IS NULL;",
        )
        .unwrap();
    // The same kinds of values written by the CLI, whose SQLite has its own JSON code.
    sqlite3_cli(
        &d.path,
        "INSERT INTO t VALUES ('cli', 1, 0.1, 'a\"b'), (x'00ff', 2, 1e999, 'é'), (NULL, 3, -0, char(1, 10));
         UPDATE t SET x = 007 WHERE city = 'cli';
         DELETE FROM t WHERE n = 2;",
    );
    let tables = ["t", "q\"uoted", "u"];
    let captured = [&t, &q, &u];
    let (mut names, mut transcoder) = (Vec::new(), capture::Transcoder::default());
    let (mut compared, mut seen) = (0, 0);
    capture::visit_changes(&d.conn, &tables, 0, 10_000, |raw| {
        seen += 1;
        let table = captured[raw.table];
        let change = raw.decode(tables[raw.table], &mut names)?;
        let decoded = change.event(table, "topic");
        for options in every_encoding() {
            let want =
                (envelope::encode_key(decoded.key), envelope::encode_value(&options, &decoded));
            let got = raw
                .with_event(table, "topic", &mut transcoder, |e| {
                    (envelope::encode_key(e.key), envelope::encode_value(&options, e))
                })
                .unwrap();
            assert_eq!(
                got,
                want,
                "change {} of {} with {options:?}:\n got {:?}\nwant {:?}",
                raw.seq,
                tables[raw.table],
                got.1.as_deref().map(String::from_utf8_lossy),
                want.1.as_deref().map(String::from_utf8_lossy)
            );
            compared += 1;
        }
        Ok(())
    })
    .unwrap();
    assert!(seen > 60, "only {seen} changes were read");
    assert_eq!(compared, seen * every_encoding().len());
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<capture::CapturedTable>();
    check::<capture::Change>();
    check::<capture::ChangeBatch>();
    check::<capture::Resolved>();
    check::<capture::ScanRow>();
    check::<CaptureError>();
    check::<EncodeOptions>();
    check::<envelope::EnvelopeError>();
    check::<envelope::Event<'static>>();
}
