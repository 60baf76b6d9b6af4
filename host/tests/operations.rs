//! BACKUP, RESTORE, SHOW BACKUP(S), IMPORT and EXPORT through the real component, on nodelocal
//! and on S3 (moto, started by `scripts/services`): the seed walkthrough as written, with every
//! row compared, incremental sizes measured, and damaged backups refused without a trace.

mod common;

use std::path::Path;

use common::{env, err, host, ok, q, root, unique};
use extconn_host::{Host, Outcome, Session, Value};

fn s3_uri(path: &str) -> String {
    format!(
        "s3://extconn-host/{path}?AWS_ACCESS_KEY_ID={}&AWS_SECRET_ACCESS_KEY={}\
         &AWS_ENDPOINT={}&AWS_USE_PATH_STYLE=true&AWS_REGION=us-east-1",
        q(&env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        q(&env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
        q(&env("EXTCONN_TEST_S3_ENDPOINT")),
    )
}

fn rows(host: &mut Host, session: &Session, sql: &str) -> Vec<Vec<Value>> {
    match ok(host, session, sql).pop().map(|r| r.outcome) {
        Some(Ok(Outcome::Rows(rows))) => rows.rows,
        other => panic!("{sql}: expected rows, got {other:?}"),
    }
}

/// movr with users, vehicles and rides: NULLs, quotes, commas, newlines, unicode, reals.
fn make_movr(host: &mut Host) {
    ok(
        host,
        &root(),
        "CREATE DATABASE movr; USE movr;
         CREATE TABLE users (id INTEGER PRIMARY KEY, city TEXT NOT NULL, name TEXT, address TEXT, credit_card TEXT);
         CREATE TABLE vehicles (id INTEGER PRIMARY KEY, city TEXT, type TEXT, owner_id INTEGER REFERENCES users (id), ext BLOB);
         CREATE TABLE rides (id INTEGER PRIMARY KEY, rider_id INTEGER, vehicle_id INTEGER, start_address TEXT, revenue REAL);
         CREATE INDEX rides_by_rider ON rides (rider_id);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
           INSERT INTO users SELECT i, CASE i % 3 WHEN 0 THEN 'new york' WHEN 1 THEN 'São Paulo' ELSE 'boston' END,
             'user ' || i || ', \"quoted\"', CASE WHEN i % 7 = 0 THEN NULL ELSE i || ' Main St' || char(10) || 'Apt ' || i END,
             CASE WHEN i % 5 = 0 THEN NULL ELSE printf('%016d', i * 7919) END FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
           INSERT INTO vehicles SELECT i, 'boston', CASE i % 2 WHEN 0 THEN 'bike' ELSE 'scooter' END, 1 + i % 500, randomblob(16) FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
           INSERT INTO rides SELECT i, 1 + i % 500, 1 + i % 300, 'addr ' || i, i * 1.25 FROM n",
    );
}

/// Every row of every movr table, in key order.
fn movr_rows(host: &mut Host) -> Vec<Vec<Value>> {
    let session = root();
    let mut all = Vec::new();
    for table in ["users", "vehicles", "rides"] {
        all.extend(rows(host, &session, &format!("SELECT * FROM movr.{table} ORDER BY id")));
    }
    all
}

/// The seed's walkthrough, as written, against a connection to `uri`.
fn walkthrough(uri: &str) {
    let (mut host, _dir) = host();
    make_movr(&mut host);
    let before = movr_rows(&mut host);
    assert_eq!(before.len(), 2800);
    let session = root();
    ok(&mut host, &session, &format!("CREATE EXTERNAL CONNECTION backup_bucket AS '{uri}'"));
    let results = ok(
        &mut host,
        &session,
        "BACKUP DATABASE movr INTO 'external://backup_bucket' AS OF SYSTEM TIME '-10s' WITH revision_history",
    );
    assert!(
        results[0].notices.iter().any(|n| n.contains("SQLite keeps no history")),
        "{results:?}"
    );
    let Ok(Outcome::Rows(result)) = &results[0].outcome else { panic!("{results:?}") };
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["job_id", "status", "fraction_completed", "rows", "index_entries", "bytes"]);
    assert_eq!(result.rows[0][1], Value::Text("succeeded".into()));
    assert_eq!(result.rows[0][3], Value::Int(2800));
    let backups = rows(&mut host, &session, "SHOW BACKUPS IN 'external://backup_bucket'");
    assert_eq!(backups.len(), 1, "{backups:?}");
    let Value::Text(path) = &backups[0][0] else { panic!("{backups:?}") };
    assert!(path.starts_with("/20") && path.len() == "/2026/11/26-035037.12".len(), "{path}");
    ok(&mut host, &session, "DROP DATABASE movr");
    assert_eq!(
        err(&mut host, &session, "SELECT * FROM movr.users").message,
        "relation \"users\" does not exist"
    );
    ok(&mut host, &session, "RESTORE DATABASE movr FROM LATEST IN 'external://backup_bucket'");
    assert_eq!(movr_rows(&mut host), before, "the restored rows differ from the original");
    // The same backup again: the database exists now.
    let e =
        err(&mut host, &session, "RESTORE DATABASE movr FROM LATEST IN 'external://backup_bucket'");
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("42P04", "database \"movr\" already exists")
    );
    ok(
        &mut host,
        &session,
        "RESTORE DATABASE movr FROM LATEST IN 'external://backup_bucket' WITH new_db_name = 'movr2'",
    );
    let copy = rows(&mut host, &session, "SELECT count(*) FROM movr2.rides");
    assert_eq!(copy, vec![vec![Value::Int(2000)]]);
}

#[test]
fn the_seed_walkthrough_round_trips_on_nodelocal() {
    walkthrough("nodelocal://1/backups");
}

#[test]
fn the_seed_walkthrough_round_trips_on_s3() {
    walkthrough(&s3_uri(&unique("walkthrough")));
}

/// Bytes of every file under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() { bytes_under(&entry.path()) } else { meta.len() };
    }
    total
}

#[test]
fn an_incremental_after_one_changed_row_writes_under_five_percent() {
    let (mut host, dir) = host();
    let session = root();
    // About 128 MiB of incompressible rows: 32 chunks of the default 4 MiB.
    ok(
        &mut host,
        &session,
        "CREATE DATABASE big; USE big; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 128000)
           INSERT INTO t SELECT i, randomblob(1000) FROM n",
    );
    let db_size = std::fs::metadata(dir.path().join("databases/big.sqlite")).unwrap().len();
    assert!(db_size > 120 << 20, "{db_size}");
    ok(&mut host, &session, "BACKUP DATABASE big INTO 'nodelocal://1/big'");
    let collection = dir.path().join("extern/big");
    let after_full = bytes_under(&collection);
    assert!(after_full >= db_size, "{after_full} < {db_size}");
    ok(&mut host, &session, "UPDATE big.t SET v = randomblob(1000) WHERE id = 31337");
    let results = ok(&mut host, &session, "BACKUP DATABASE big INTO LATEST IN 'nodelocal://1/big'");
    let written = bytes_under(&collection) - after_full;
    assert!(
        written * 20 < db_size,
        "the incremental wrote {written} bytes of a {db_size}-byte database: {results:?}"
    );
    // Unchanged: only a manifest.
    let before = bytes_under(&collection);
    ok(&mut host, &session, "BACKUP DATABASE big INTO LATEST IN 'nodelocal://1/big'");
    let written = bytes_under(&collection) - before;
    assert!(written < 64 << 10, "an unchanged database's incremental wrote {written} bytes");
    // The chain restores to the latest state.
    let latest = rows(&mut host, &session, "SELECT hex(v) FROM big.t WHERE id = 31337");
    ok(
        &mut host,
        &session,
        "RESTORE DATABASE big FROM LATEST IN 'nodelocal://1/big' WITH new_db_name = 'big2'",
    );
    assert_eq!(rows(&mut host, &session, "SELECT hex(v) FROM big2.t WHERE id = 31337"), latest);
}

/// Files left in the databases directory besides the named databases.
fn strays(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("databases")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            for inner in std::fs::read_dir(entry.path()).unwrap().flatten() {
                out.push(format!("{name}/{}", inner.file_name().to_string_lossy()));
            }
        } else if !name.ends_with(".sqlite") {
            out.push(name);
        }
    }
    out
}

#[test]
fn a_damaged_backup_is_refused_and_leaves_nothing_behind() {
    let (mut host, dir) = host();
    make_movr(&mut host);
    let session = root();
    ok(&mut host, &session, "BACKUP DATABASE movr INTO 'nodelocal://1/b'");
    ok(&mut host, &session, "DROP DATABASE movr");
    // Flip one byte of one chunk.
    let data = dir.path().join("extern/b/data");
    let chunk = std::fs::read_dir(&data).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&chunk).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&chunk, &bytes).unwrap();
    let e = err(&mut host, &session, "RESTORE DATABASE movr FROM LATEST IN 'nodelocal://1/b'");
    assert_eq!(e.sqlstate, "XX001", "{e:?}");
    assert!(e.message.contains("failed its checksum"), "{}", e.message);
    assert!(!dir.path().join("databases/movr.sqlite").exists());
    assert_eq!(strays(dir.path()), Vec::<String>::new());
    // A damaged manifest.
    bytes[100] ^= 0xff;
    std::fs::write(&chunk, &bytes).unwrap();
    let subdir = rows(&mut host, &session, "SHOW BACKUPS IN 'nodelocal://1/b'");
    let Value::Text(subdir) = &subdir[0][0] else { panic!() };
    let manifest = dir.path().join(format!("extern/b{subdir}/BACKUP_MANIFEST"));
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    let e = err(&mut host, &session, "RESTORE DATABASE movr FROM LATEST IN 'nodelocal://1/b'");
    assert!(e.message.contains("BACKUP_MANIFEST"), "{}", e.message);
    assert!(!dir.path().join("databases/movr.sqlite").exists());
    assert_eq!(strays(dir.path()), Vec::<String>::new());
}

#[test]
fn a_backup_that_fails_midway_leaves_the_previous_ones_restorable() {
    let (mut host, dir) = host();
    make_movr(&mut host);
    let session = root();
    ok(&mut host, &session, "BACKUP DATABASE movr INTO 'nodelocal://1/b'");
    let first = movr_rows(&mut host);
    ok(&mut host, &session, "DELETE FROM movr.rides WHERE id > 10");
    // A file where the incrementals directory must go: the incremental's manifest cannot be
    // written after its chunks went up.
    std::fs::write(dir.path().join("extern/b/incrementals"), b"in the way").unwrap();
    let e = err(&mut host, &session, "BACKUP DATABASE movr INTO LATEST IN 'nodelocal://1/b'");
    assert_eq!(e.sqlstate, "58030", "{e:?}");
    let jobs = rows(&mut host, &session, "SHOW JOBS");
    assert_eq!(jobs[0][4], Value::Text("failed".into()), "{jobs:?}");
    // The storage recovers; the failed backup's chunks are there, but no manifest names them.
    std::fs::remove_file(dir.path().join("extern/b/incrementals")).unwrap();
    ok(
        &mut host,
        &session,
        "RESTORE DATABASE movr FROM LATEST IN 'nodelocal://1/b' WITH new_db_name = 'old'",
    );
    let restored: Vec<Vec<Value>> = ["users", "vehicles", "rides"]
        .iter()
        .flat_map(|t| rows(&mut host, &session, &format!("SELECT * FROM old.{t} ORDER BY id")))
        .collect();
    assert_eq!(restored, first);
}

#[test]
fn restore_table_adds_to_an_existing_database_and_refuses_to_overwrite() {
    let (mut host, _dir) = host();
    make_movr(&mut host);
    let session = root();
    ok(&mut host, &session, "BACKUP TABLE movr.rides INTO 'nodelocal://1/t'");
    let backup = rows(&mut host, &session, "SHOW BACKUP LATEST IN 'nodelocal://1/t'");
    let objects: Vec<&Value> = backup.iter().map(|r| &r[2]).collect();
    assert_eq!(objects, [&Value::Text("movr".into()), &Value::Text("rides".into())]);
    let e = err(&mut host, &session, "RESTORE TABLE movr.rides FROM LATEST IN 'nodelocal://1/t'");
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("42P07", "relation \"rides\" already exists")
    );
    ok(&mut host, &session, "CREATE DATABASE other");
    ok(
        &mut host,
        &session,
        "RESTORE TABLE movr.rides FROM LATEST IN 'nodelocal://1/t' WITH into_db = 'other'",
    );
    assert_eq!(
        rows(&mut host, &session, "SELECT count(*), sum(revenue) FROM other.rides"),
        rows(&mut host, &session, "SELECT count(*), sum(revenue) FROM movr.rides")
    );
}

#[test]
fn export_then_import_round_trips_and_a_bad_row_imports_nothing() {
    let (mut host, dir) = host();
    make_movr(&mut host);
    let session = root();
    let files = rows(
        &mut host,
        &session,
        "EXPORT INTO CSV 'nodelocal://1/csv' WITH nullas = '', chunk_rows = '200' FROM TABLE movr.users",
    );
    assert_eq!(files.len(), 3, "{files:?}");
    let uris: Vec<String> = files
        .iter()
        .map(|f| match &f[0] {
            Value::Text(name) => format!("'nodelocal://1/csv/{name}'"),
            other => panic!("{other:?}"),
        })
        .collect();
    ok(
        &mut host,
        &session,
        "CREATE DATABASE copy; USE copy;
         CREATE TABLE users (id INTEGER PRIMARY KEY, city TEXT NOT NULL, name TEXT, address TEXT, credit_card TEXT)",
    );
    let session = Session { database: Some("copy".into()), ..root() };
    let imported = ok(
        &mut host,
        &session,
        &format!("IMPORT INTO users CSV DATA ({}) WITH nullif = ''", uris.join(", ")),
    );
    let Ok(Outcome::Rows(result)) = &imported[0].outcome else { panic!() };
    assert_eq!(result.rows[0][3], Value::Int(500));
    assert_eq!(
        rows(&mut host, &session, "SELECT * FROM users ORDER BY id"),
        rows(&mut host, &session, "SELECT * FROM movr.users ORDER BY id")
    );
    // A bad row in the second file: nothing of either file is imported.
    std::fs::write(dir.path().join("extern/good.csv"), "1001,boston,a,b,c\n1002,boston,d,e,f\n")
        .unwrap();
    std::fs::write(dir.path().join("extern/bad.csv"), "1003,boston,\"two\nlines\",x,y\n1004,,z\n")
        .unwrap();
    let e = err(
        &mut host,
        &session,
        "IMPORT INTO users CSV DATA ('nodelocal://1/good.csv', 'nodelocal://1/bad.csv')",
    );
    assert!(e.message.contains("nodelocal://1/bad.csv"), "{}", e.message);
    assert!(e.message.contains("line 3"), "{}", e.message);
    assert_eq!(
        rows(&mut host, &session, "SELECT count(*) FROM users"),
        vec![vec![Value::Int(500)]]
    );
}

#[test]
fn usage_and_parameter_case_are_enforced_on_every_uri() {
    let (mut host, _dir) = host();
    make_movr(&mut host);
    let session = root();
    ok(
        &mut host,
        &session,
        "CREATE EXTERNAL CONNECTION full_bucket AS 'nodelocal://1/full';
         CREATE EXTERNAL CONNECTION inc_bucket AS 'nodelocal://1/inc';
         CREATE USER alice; GRANT USAGE ON EXTERNAL CONNECTION full_bucket TO alice",
    );
    ok(&mut host, &session, "BACKUP DATABASE movr INTO 'external://full_bucket'");
    let alice = Session { user: "alice".into(), ..root() };
    let e = err(
        &mut host,
        &alice,
        "BACKUP DATABASE movr INTO LATEST IN 'external://full_bucket' WITH incremental_location = 'external://inc_bucket'",
    );
    assert_eq!(
        (e.sqlstate.as_str(), e.message.as_str()),
        ("42501", "user alice does not have USAGE privilege on external_connection inc_bucket")
    );
    ok(&mut host, &session, "GRANT USAGE ON EXTERNAL CONNECTION inc_bucket TO alice");
    ok(
        &mut host,
        &alice,
        "BACKUP DATABASE movr INTO LATEST IN 'external://full_bucket' WITH incremental_location = 'external://inc_bucket'",
    );
    let e = err(
        &mut host,
        &session,
        "BACKUP DATABASE movr INTO 's3://bucket/p?aws_access_key_id=a&aws_secret_access_key=b'",
    );
    assert_eq!(e.message, "unknown S3 query parameters: aws_access_key_id, aws_secret_access_key");
    let jobs = rows(&mut host, &alice, "SHOW JOBS");
    assert_eq!(jobs.len(), 1, "alice sees her own jobs only: {jobs:?}");
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).unwrap().windows(needle.len()).any(|w| w == needle) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn passphrase_encrypted_backups_round_trip_and_refuse_a_wrong_passphrase() {
    let (mut host, dir) = host();
    make_movr(&mut host);
    let session = root();
    let canary = "canary-row-value-5d21";
    ok(&mut host, &session, &format!("UPDATE movr.users SET name = '{canary}' WHERE id = 3"));
    let before = movr_rows(&mut host);
    ok(
        &mut host,
        &session,
        "BACKUP DATABASE movr INTO 'nodelocal://1/enc' WITH encryption_passphrase = 'x'",
    );
    assert_eq!(
        files_containing(&dir.path().join("extern/enc"), canary.as_bytes()),
        Vec::<String>::new()
    );
    ok(&mut host, &session, "DROP DATABASE movr");

    // Without the passphrase, or with another, nothing is restored.
    let cases = [
        ("", "22023", "is encrypted: give the encryption_passphrase (or kms) it was taken with"),
        (" WITH encryption_passphrase = 'y'", "22023", "— wrong passphrase?"),
        (
            " WITH kms = 'aws-kms:///k?AUTH=implicit&REGION=us-east-1'",
            "22023",
            "was encrypted with encryption_passphrase, not kms: give encryption_passphrase",
        ),
    ];
    for (with, state, text) in cases {
        let sql = format!("RESTORE DATABASE movr FROM LATEST IN 'nodelocal://1/enc'{with}");
        let e = err(&mut host, &session, &sql);
        assert_eq!(e.sqlstate, state, "{sql}: {e:?}");
        assert!(e.message.contains(text), "{sql}: {}", e.message);
        assert!(!e.message.contains("'y'") && !e.message.contains("= y"), "{}", e.message);
        assert!(!dir.path().join("databases/movr.sqlite").exists());
    }
    let shown = rows(
        &mut host,
        &session,
        "SHOW BACKUP FROM LATEST IN 'nodelocal://1/enc' WITH encryption_passphrase = 'x'",
    );
    assert_eq!(shown.len(), 4, "{shown:?}");
    ok(
        &mut host,
        &session,
        "RESTORE DATABASE movr FROM LATEST IN 'nodelocal://1/enc' WITH encryption_passphrase = 'x'",
    );
    assert_eq!(movr_rows(&mut host), before, "the restored rows differ from the original");

    // A plaintext backup given a passphrase is refused.
    ok(&mut host, &session, "BACKUP DATABASE movr INTO 'nodelocal://1/plain'");
    let e = err(
        &mut host,
        &session,
        "RESTORE DATABASE movr FROM LATEST IN 'nodelocal://1/plain' WITH encryption_passphrase = 'x', new_db_name = 'm2'",
    );
    assert_eq!(e.sqlstate, "22023", "{e:?}");
    assert!(e.message.contains("is not encrypted: remove the encryption_passphrase"), "{e:?}");
}
