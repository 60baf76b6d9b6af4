//! BACKUP and RESTORE against real storage: nodelocal (a temp dir) and S3 on moto.
//!
//! The S3 tests need the emulators: `eval "$(scripts/services start)"` first (scripts/test
//! does it).

mod emulators;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use extconn_providers::backup::{
    self, BackupKind, BackupOptions, DatabaseSource, Destination, EncryptionKey, ErrorKind,
    Manifest, ObjectType, Place, RestoreOptions, Scope,
};
use extconn_providers::storage::{self, Location};
use extconn_providers::{Config, Target};
use rusqlite::Connection;
use rusqlite::types::Value;

/// Small chunks, so that a database of a few MiB has dozens of them.
const CHUNK: usize = 64 << 10;
const ROWS: i64 = 30_000;

type Dump = Vec<(String, Vec<Vec<Value>>)>;

/// A movr-like database: users (with an index) and rides, `rows` users.
fn make_db(path: &Path, rows: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, balance REAL);
         CREATE INDEX users_email ON users (email);
         CREATE TABLE rides (id INTEGER PRIMARY KEY AUTOINCREMENT, rider INTEGER, city TEXT);
         BEGIN;",
    )
    .unwrap();
    {
        let mut users = conn.prepare("INSERT INTO users VALUES (?1, ?2, ?3, ?4)").unwrap();
        let mut rides = conn.prepare("INSERT INTO rides (rider, city) VALUES (?1, ?2)").unwrap();
        for i in 0..rows {
            let name = format!("user number {i} with a longish name to fill pages");
            users.execute((i, name, format!("u{i}@example.com"), i as f64 * 1.5)).unwrap();
            if i % 10 == 0 {
                rides.execute((i, "amsterdam")).unwrap();
            }
        }
    }
    conn.execute_batch("COMMIT").unwrap();
}

/// Every user table's rows with their rowids, in rowid order.
fn dump(path: &Path) -> Dump {
    let conn = Connection::open(path).unwrap();
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.sort();
    tables
        .into_iter()
        .map(|t| {
            let mut stmt =
                conn.prepare(&format!("SELECT rowid, * FROM \"{t}\" ORDER BY rowid")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
                .unwrap()
                .collect::<Result<Vec<Vec<Value>>, _>>()
                .unwrap();
            (t, rows)
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    emulators::runtime()
}

fn nodelocal(dir: &Path, path: &str) -> Location {
    let config = Config { data_dir: dir.to_owned(), ..Config::default() };
    storage::open(&config, &Target::new("nodelocal", "1", path)).unwrap()
}

fn s3(path: &str) -> Location {
    storage::open(&Config::default(), &emulators::s3("extconn-test", path)).unwrap()
}

fn source(name: &str, path: &Path) -> DatabaseSource {
    DatabaseSource { name: name.into(), path: path.to_owned(), tables: Vec::new() }
}

fn options(destination: Destination, scratch: &Path) -> BackupOptions<'static> {
    BackupOptions {
        destination,
        scratch_dir: Some(scratch.to_owned()),
        chunk_size: CHUNK,
        ..BackupOptions::default()
    }
}

/// The chunks stored under `data/`: count and bytes.
async fn data_objects(location: &Location) -> (usize, u64) {
    let listed = location.list("data/", None).await.unwrap();
    (listed.len(), listed.iter().map(|m| m.size).sum())
}

/// Files in `dir`, to prove a failed restore leaves nothing behind.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    out.sort();
    out
}

/// Restores database `name` with `options` into `dir` and dumps it.
async fn restore_dump(collection: &Location, dir: &Path, options: &RestoreOptions<'_>) -> Dump {
    let restored = backup::restore(collection, dir, options).await.unwrap();
    assert_eq!(restored.databases.len(), 1);
    let db = restored.databases.into_iter().next().unwrap();
    let to = dir.join(format!("restored-{}.db", db.name));
    db.persist(&to).unwrap();
    let out = dump(&to);
    std::fs::remove_file(&to).unwrap();
    out
}

async fn read_manifest(location: &Location, dir: &str) -> Manifest {
    let bytes = location.get(&format!("{dir}/BACKUP_MANIFEST")).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The suite every storage runs: full, incrementals, AS OF, SHOW BACKUP, corruption, a
/// missing manifest.
async fn suite(collection: &Location, work: &Path) {
    let db = work.join("movr.db");
    make_db(&db, ROWS);
    let original = dump(&db);
    let restore_dir = work.join("restore");
    std::fs::create_dir_all(&restore_dir).unwrap();
    let sources = [source("movr", &db)];

    // A full backup uploads everything and sets LATEST.
    let progress = std::sync::Mutex::new(Vec::new());
    let record = |p: backup::Progress| progress.lock().unwrap().push(p);
    let full_options =
        BackupOptions { progress: Some(&record), ..options(Destination::NewFull, work) };
    let full = backup::backup(collection, &sources, &full_options).await.unwrap();
    assert_eq!(full.kind, BackupKind::Full);
    assert!(full.chunks_total > 40, "{full:?}");
    assert_eq!(full.chunks_uploaded, full.chunks_total, "{full:?}");
    assert_eq!(full.bytes_uploaded, full.bytes_total);
    assert_eq!(
        full.databases[0].tables.iter().map(|t| (t.name.as_str(), t.rows)).collect::<Vec<_>>(),
        [("rides", 3_000), ("users", ROWS as u64)]
    );
    let last = *progress.lock().unwrap().last().unwrap();
    assert_eq!((last.bytes_done, last.bytes_total), (full.bytes_total, full.bytes_total));
    assert_eq!(collection.get("LATEST").await.unwrap(), full.subdir.as_bytes());
    assert_eq!(backup::list_backups(collection).await.unwrap(), vec![full.subdir.clone()]);
    assert_eq!(full.dir, full.subdir.trim_start_matches('/'));
    let manifest = read_manifest(collection, &full.dir).await;
    assert_eq!(manifest.encryption, None);
    assert!(manifest.chunks_match_size(), "{manifest:?}");

    // Restored row for row.
    assert_eq!(restore_dump(collection, &restore_dir, &RestoreOptions::default()).await, original);

    // An incremental of an unchanged database uploads no chunk.
    let before = data_objects(collection).await;
    let same =
        backup::backup(collection, &sources, &options(Destination::Latest, work)).await.unwrap();
    assert_eq!(same.kind, BackupKind::Incremental);
    assert_eq!((same.bytes_uploaded, same.chunks_uploaded), (0, 0), "{same:?}");
    assert_eq!(same.start_time_micros, Some(full.end_time_micros));
    assert_eq!(data_objects(collection).await, before);

    // One changed row uploads a few chunks, well under 5 %.
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE users SET balance = -1 WHERE id = 12345", [])
        .unwrap();
    let changed = dump(&db);
    assert_ne!(changed, original);
    let one_row =
        backup::backup(collection, &sources, &options(Destination::Latest, work)).await.unwrap();
    assert!(one_row.chunks_uploaded >= 1, "{one_row:?}");
    assert!(one_row.bytes_uploaded * 20 < one_row.bytes_total, "{one_row:?}");
    let after = data_objects(collection).await;
    assert_eq!(after.0 - before.0, one_row.chunks_uploaded);
    assert_eq!(after.1 - before.1, one_row.bytes_uploaded);
    assert_eq!(one_row.subdir, full.subdir);
    assert!(one_row.dir.starts_with(&format!("incrementals{}/", full.subdir)), "{}", one_row.dir);

    // The newest of the chain by default; AS OF picks the newest that ended by then.
    assert_eq!(restore_dump(collection, &restore_dir, &RestoreOptions::default()).await, changed);
    let as_of = |t| RestoreOptions { as_of: Some(t), ..RestoreOptions::default() };
    assert_eq!(
        restore_dump(collection, &restore_dir, &as_of(full.end_time_micros)).await,
        original
    );
    assert_eq!(
        restore_dump(collection, &restore_dir, &as_of(one_row.end_time_micros - 1)).await,
        original
    );
    assert_eq!(
        restore_dump(collection, &restore_dir, &as_of(one_row.end_time_micros)).await,
        changed
    );
    let named = RestoreOptions { subdir: Some(full.subdir.clone()), ..RestoreOptions::default() };
    assert_eq!(restore_dump(collection, &restore_dir, &named).await, changed);
    let err = backup::restore(collection, &restore_dir, &as_of(full.end_time_micros - 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(
        err.message().starts_with(&format!("no backup in {} ended at or before", full.subdir)),
        "{}",
        err.message()
    );
    let missing = RestoreOptions { databases: vec!["nope".into()], ..RestoreOptions::default() };
    let err = backup::restore(collection, &restore_dir, &missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(err.message().contains("database nope is not in backup"), "{}", err.message());

    // SHOW BACKUP: a database row and a row per table, for each of the three backups.
    let rows = backup::describe(collection, None, None, None).await.unwrap();
    let shown: Vec<(&str, ObjectType, BackupKind, u64)> = rows
        .iter()
        .map(|r| (r.object_name.as_str(), r.object_type, r.backup_type, r.rows))
        .collect();
    let layer = |kind| {
        [
            ("movr", ObjectType::Database, kind, 3_000 + ROWS as u64),
            ("rides", ObjectType::Table, kind, 3_000),
            ("users", ObjectType::Table, kind, ROWS as u64),
        ]
    };
    let expected: Vec<_> = [BackupKind::Full, BackupKind::Incremental, BackupKind::Incremental]
        .into_iter()
        .flat_map(layer)
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(rows[0].start_time_micros, None);
    assert_eq!(rows[0].end_time_micros, full.end_time_micros);
    assert_eq!(rows[6].start_time_micros, Some(same.end_time_micros));
    assert!(rows.iter().all(|r| r.size_bytes > 0 && r.database_name == "movr"), "{rows:?}");
    assert_eq!(backup::describe(collection, Some(&full.subdir), None, None).await.unwrap(), rows);

    // A corrupted chunk fails the restore by name, and leaves nothing in the directory.
    let latest = read_manifest(collection, &one_row.dir).await;
    let victim = &latest.databases[0].chunks[3];
    let key = format!("data/{}", victim.sha256);
    let good = collection.get(&key).await.unwrap();
    let mut bad = good.clone();
    bad[100] ^= 0xff;
    collection.put(&key, bad).await.unwrap();
    let listed_before = files(&restore_dir);
    let err =
        backup::restore(collection, &restore_dir, &RestoreOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "chunk {} of database movr in {} (incremental {}) failed its checksum",
            victim.sha256, full.subdir, one_row.dir
        )
    );
    assert_eq!(files(&restore_dir), listed_before);
    // A missing chunk likewise.
    collection.delete(&key).await.unwrap();
    let err =
        backup::restore(collection, &restore_dir, &RestoreOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", err.message());
    assert!(
        err.message().contains(&format!("chunk {} of database movr", victim.sha256)),
        "{}",
        err.message()
    );
    assert!(err.message().contains("is missing"), "{}", err.message());
    assert_eq!(files(&restore_dir), listed_before);
    collection.put(&key, good).await.unwrap();
    assert_eq!(restore_dump(collection, &restore_dir, &RestoreOptions::default()).await, changed);

    // A damaged manifest, then a missing one: clear errors, nothing left behind.
    let manifest_key = format!("{}/BACKUP_MANIFEST", full.dir);
    collection.put(&manifest_key, b"{\"format_version\": 1, \"kind\": ".to_vec()).await.unwrap();
    let err =
        backup::restore(collection, &restore_dir, &RestoreOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", err.message());
    assert!(
        err.message()
            .starts_with(&format!("backup manifest {manifest_key} in the collection is corrupt")),
        "{}",
        err.message()
    );
    collection.delete(&manifest_key).await.unwrap();
    let err =
        backup::restore(collection, &restore_dir, &RestoreOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(
        err.message().starts_with(&format!("backup {} not found in the collection: ", full.subdir)),
        "{}",
        err.message()
    );
    assert!(err.message().ends_with("BACKUP_MANIFEST: object does not exist"), "{}", err.message());
    assert_eq!(files(&restore_dir), listed_before);
    assert!(backup::list_backups(collection).await.unwrap().is_empty());
}

trait ChunksMatch {
    fn chunks_match_size(&self) -> bool;
}

impl ChunksMatch for Manifest {
    /// Every database's chunks add up to its size, each at most the chunk size.
    fn chunks_match_size(&self) -> bool {
        self.databases.iter().all(|d| {
            d.chunks.iter().map(|c| c.len).sum::<u64>() == d.size_bytes
                && d.chunks.iter().all(|c| c.len <= self.chunk_size && c.place == Place::Collection)
        })
    }
}

#[test]
fn nodelocal_backup_restore_suite() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "backups/movr");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    runtime().block_on(suite(&collection, &work));
}

#[test]
fn s3_backup_restore_suite() {
    let collection = s3(&emulators::unique("backup-suite"));
    let work = tempfile::tempdir().unwrap();
    runtime().block_on(suite(&collection, work.path()));
}

#[test]
fn a_failed_backup_leaves_the_previous_one_restorable() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "backups");
    let root = dir.path().join("extern/backups");
    let db = dir.path().join("movr.db");
    make_db(&db, 5_000);
    let original = dump(&db);
    let sources = [source("movr", &db)];
    let rt = runtime();
    let full = rt
        .block_on(backup::backup(&collection, &sources, &options(Destination::NewFull, dir.path())))
        .unwrap();

    // Change many rows, then make the storage refuse the manifest once every chunk is up.
    Connection::open(&db).unwrap().execute("UPDATE users SET name = upper(name)", []).unwrap();
    let sabotaged = AtomicBool::new(false);
    let sabotage = |p: backup::Progress| {
        if p.bytes_done == p.bytes_total && !sabotaged.swap(true, Ordering::SeqCst) {
            // A file where the incrementals' directory must go.
            std::fs::write(root.join("incrementals"), b"in the way").unwrap();
        }
    };
    let failing =
        BackupOptions { progress: Some(&sabotage), ..options(Destination::Latest, dir.path()) };
    let (chunks_before, _) = rt.block_on(data_objects(&collection));
    let err = rt.block_on(backup::backup(&collection, &sources, &failing)).unwrap_err();
    assert!(sabotaged.load(Ordering::SeqCst));
    assert_eq!(err.kind(), ErrorKind::Storage, "{}", err.message());
    assert!(err.message().starts_with("writing the manifest of backup "), "{}", err.message());
    let (chunks_after, _) = rt.block_on(data_objects(&collection));
    assert!(chunks_after > chunks_before, "the chunks went up before the failure");

    // The storage recovers: the previous backup restores, LATEST still names it.
    std::fs::remove_file(root.join("incrementals")).unwrap();
    assert_eq!(rt.block_on(collection.get("LATEST")).unwrap(), full.subdir.as_bytes());
    let rows = rt.block_on(backup::describe(&collection, None, None, None)).unwrap();
    assert!(rows.iter().all(|r| r.backup_type == BackupKind::Full), "{rows:?}");
    let restore_dir = dir.path().join("restore");
    std::fs::create_dir_all(&restore_dir).unwrap();
    assert_eq!(
        rt.block_on(restore_dump(&collection, &restore_dir, &RestoreOptions::default())),
        original
    );

    // The retry reuses the chunks the failed attempt uploaded.
    let retry = rt
        .block_on(backup::backup(&collection, &sources, &options(Destination::Latest, dir.path())))
        .unwrap();
    assert_eq!(retry.chunks_uploaded, 0, "{retry:?}");
    assert_eq!(
        rt.block_on(restore_dump(&collection, &restore_dir, &RestoreOptions::default())),
        dump(&db)
    );
}

#[test]
fn an_unreachable_s3_fails_cleanly_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("movr.db");
    make_db(&db, 100);
    let secret = emulators::env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY");
    let target = emulators::with(
        emulators::s3("extconn-test", "closed"),
        "AWS_ENDPOINT",
        &emulators::closed_endpoint(),
    );
    let collection = storage::open(&Config::default(), &target).unwrap();
    let rt = runtime();
    let err = rt
        .block_on(backup::backup(
            &collection,
            &[source("movr", &db)],
            &options(Destination::NewFull, dir.path()),
        ))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{}", err.message());
    assert_eq!(err.storage_kind(), Some(extconn_providers::ErrorKind::Unavailable));
    assert!(err.message().contains("s3://extconn-test/closed"), "{}", err.message());
    assert!(!err.message().contains(&secret), "{}", err.message());
    let err = rt
        .block_on(backup::restore(&collection, dir.path(), &RestoreOptions::default()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{}", err.message());
    assert!(!err.message().contains(&secret), "{}", err.message());
    assert_eq!(files(dir.path()), [db]);
}

#[test]
fn table_backups_hold_only_their_tables_and_restore_into_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "tables");
    let db = dir.path().join("movr.db");
    make_db(&db, 5_000);
    let users = dump(&db).into_iter().filter(|(t, _)| t == "users").collect::<Dump>();
    let rt = runtime();
    let whole = rt
        .block_on(backup::backup(
            &collection,
            &[source("movr", &db)],
            &options(Destination::NewFull, dir.path()),
        ))
        .unwrap();
    let only_users = DatabaseSource { tables: vec!["users".into()], ..source("movr", &db) };
    let summary = rt
        .block_on(backup::backup(
            &collection,
            &[only_users],
            &options(Destination::NewFull, dir.path()),
        ))
        .unwrap();
    assert_eq!(summary.databases[0].scope, Scope::Tables);
    let tables: Vec<_> =
        summary.databases[0].tables.iter().map(|t| (t.name.as_str(), t.rows)).collect();
    assert_eq!(tables, [("users", 5_000)]);
    assert!(summary.bytes_total < whole.bytes_total, "{summary:?} vs {whole:?}");
    let listed = rt.block_on(backup::list_backups(&collection)).unwrap();
    assert_eq!(listed, [whole.subdir.clone(), summary.subdir.clone()]);

    // Restored: only users, with its index; then copied into an existing database.
    let restored =
        rt.block_on(backup::restore(&collection, dir.path(), &RestoreOptions::default())).unwrap();
    let movr = &restored.databases[0];
    assert_eq!(movr.scope, Scope::Tables);
    assert_eq!(dump(movr.path()), users);
    let target = dir.path().join("target.db");
    let mut conn = Connection::open(&target).unwrap();
    conn.execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);").unwrap();
    let copied = backup::copy_tables(movr, &["users".into()], &mut conn).unwrap();
    assert_eq!(
        copied.iter().map(|t| (t.name.as_str(), t.rows)).collect::<Vec<_>>(),
        [("users", 5_000)]
    );
    let index: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'users_email'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(index, 1);
    drop(conn);
    let mut in_target = dump(&target);
    in_target.retain(|(t, _)| t == "users");
    assert_eq!(in_target, users);

    // Again: CockroachDB's error, and nothing changes.
    let mut conn = Connection::open(&target).unwrap();
    let err = backup::copy_tables(movr, &["users".into()], &mut conn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{}", err.message());
    assert_eq!(err.sqlstate(), Some("42P07"));
    assert_eq!(err.message(), "relation \"users\" already exists");
    let err = backup::copy_tables(movr, &["rides".into()], &mut conn).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_eq!(err.message(), "table rides does not exist in database movr");
    drop(conn);
    drop(restored);
    // Only the source, the target and its journal-free file remain: the restore's temp is gone.
    let mut left: Vec<String> = files(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["extern", "movr.db", "target.db"]);

    // Every table of the whole-database backup into a fresh database, AUTOINCREMENT state too.
    let whole_options =
        RestoreOptions { subdir: Some(whole.subdir.clone()), ..RestoreOptions::default() };
    let restored = rt.block_on(backup::restore(&collection, dir.path(), &whole_options)).unwrap();
    let fresh = dir.path().join("fresh.db");
    let mut conn = Connection::open(&fresh).unwrap();
    let copied = backup::copy_tables(&restored.databases[0], &[], &mut conn).unwrap();
    assert_eq!(copied.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["rides", "users"]);
    let seq: i64 = conn
        .query_row("SELECT seq FROM sqlite_sequence WHERE name = 'rides'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 500);
    drop(conn);
    assert_eq!(dump(&fresh), dump(&db));

    // A table the database does not have.
    let bogus = DatabaseSource { tables: vec!["nope".into()], ..source("movr", &db) };
    let err = rt
        .block_on(backup::backup(&collection, &[bogus], &options(Destination::NewFull, dir.path())))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_eq!(err.message(), "table nope does not exist in database movr");
}

#[test]
fn wal_and_rollback_databases_are_backed_up_together() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "wal");
    let wal = dir.path().join("wal.db");
    make_db(&wal, 2_000);
    // A connection kept open keeps the WAL from being checkpointed into the file.
    let writer = Connection::open(&wal).unwrap();
    writer.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;").unwrap();
    writer
        .execute_batch("UPDATE users SET email = NULL WHERE id < 100; DELETE FROM rides;")
        .unwrap();
    assert!(dir.path().join("wal.db-wal").metadata().unwrap().len() > 0);
    let rollback = dir.path().join("rollback.db");
    make_db(&rollback, 300);
    let expected = [dump(&wal), dump(&rollback)];
    let rt = runtime();
    let sources = [source("wal", &wal), source("rollback", &rollback)];
    let summary = rt
        .block_on(backup::backup(&collection, &sources, &options(Destination::NewFull, dir.path())))
        .unwrap();
    assert_eq!(
        summary.databases.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["wal", "rollback"]
    );
    drop(writer);

    // Both at once, then one by name; each restored file is a working database.
    let restore_dir = dir.path().join("restore");
    std::fs::create_dir_all(&restore_dir).unwrap();
    let restored = rt
        .block_on(backup::restore(&collection, &restore_dir, &RestoreOptions::default()))
        .unwrap();
    let mut dumps = Vec::new();
    for db in restored.databases {
        let to = dir.path().join(format!("restored-{}.db", db.name));
        db.persist(&to).unwrap();
        dumps.push(dump(&to));
    }
    assert_eq!(dumps, expected);
    let only = RestoreOptions { databases: vec!["rollback".into()], ..RestoreOptions::default() };
    assert_eq!(rt.block_on(restore_dump(&collection, &restore_dir, &only)), expected[1]);
    // Nothing is left next to the restored files (no -wal or -shm from the checks).
    assert_eq!(files(&restore_dir), Vec::<PathBuf>::new());
}

#[test]
fn incremental_location_and_named_subdirs() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "coll");
    let incremental = nodelocal(dir.path(), "inc");
    let db = dir.path().join("movr.db");
    make_db(&db, 5_000);
    let original = dump(&db);
    let sources = [source("movr", &db)];
    let rt = runtime();
    let full = rt
        .block_on(backup::backup(&collection, &sources, &options(Destination::NewFull, dir.path())))
        .unwrap();

    // A second full backup; LATEST moves to it, but we append to the first by name.
    let second = rt
        .block_on(backup::backup(&collection, &sources, &options(Destination::NewFull, dir.path())))
        .unwrap();
    assert_ne!(second.subdir, full.subdir);
    assert_eq!(rt.block_on(collection.get("LATEST")).unwrap(), second.subdir.as_bytes());
    assert_eq!(second.chunks_uploaded, 0, "content-addressed chunks are shared");

    Connection::open(&db)
        .unwrap()
        .execute("UPDATE users SET name = 'changed' WHERE id = 4000", [])
        .unwrap();
    let changed = dump(&db);
    let into_first = BackupOptions {
        incremental_location: Some(&incremental),
        ..options(Destination::Subdir(full.subdir.trim_start_matches('/').into()), dir.path())
    };
    let inc = rt.block_on(backup::backup(&collection, &sources, &into_first)).unwrap();
    assert_eq!((inc.kind, inc.subdir.as_str()), (BackupKind::Incremental, full.subdir.as_str()));
    assert!(inc.chunks_uploaded > 0);
    // Its manifest and new chunks are in the incremental location, and say so.
    let manifest = rt.block_on(read_manifest(&incremental, &inc.dir));
    assert_eq!(manifest.place, Place::Incremental);
    let places: Vec<Place> = manifest.databases[0].chunks.iter().map(|c| c.place).collect();
    assert!(
        places.contains(&Place::Incremental) && places.contains(&Place::Collection),
        "{places:?}"
    );
    assert_eq!(rt.block_on(data_objects(&incremental)).0, inc.chunks_uploaded);

    let restore_dir = dir.path().join("restore");
    std::fs::create_dir_all(&restore_dir).unwrap();
    let first = Some(full.subdir.clone());
    let with_inc = RestoreOptions {
        subdir: first.clone(),
        incremental_location: Some(&incremental),
        ..RestoreOptions::default()
    };
    assert_eq!(rt.block_on(restore_dump(&collection, &restore_dir, &with_inc)), changed);
    // Without the incremental location, the chain is the full backup alone.
    let without = RestoreOptions { subdir: first, ..RestoreOptions::default() };
    assert_eq!(rt.block_on(restore_dump(&collection, &restore_dir, &without)), original);
    let rows = rt
        .block_on(backup::describe(&collection, Some(&full.subdir), Some(&incremental), None))
        .unwrap();
    assert_eq!(rows.iter().filter(|r| r.object_type == ObjectType::Database).count(), 2);
    assert_eq!(rows.last().unwrap().backup_type, BackupKind::Incremental);

    // A subdir that does not exist; incremental_location with a full backup.
    let nowhere = options(Destination::Subdir("/2020/01/01-000000.00".into()), dir.path());
    let err = rt.block_on(backup::backup(&collection, &sources, &nowhere)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(
        err.message().starts_with("backup /2020/01/01-000000.00 not found in the collection"),
        "{}",
        err.message()
    );
    let full_with_inc = BackupOptions {
        incremental_location: Some(&incremental),
        ..options(Destination::NewFull, dir.path())
    };
    let err = rt.block_on(backup::backup(&collection, &sources, &full_with_inc)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
}

#[test]
fn missing_sources_and_empty_collections_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "empty");
    let rt = runtime();
    let missing = dir.path().join("nope.db");
    let err = rt
        .block_on(backup::backup(
            &collection,
            &[source("nope", &missing)],
            &options(Destination::NewFull, dir.path()),
        ))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Local, "{}", err.message());
    assert!(
        err.message().starts_with(&format!("cannot open {}", missing.display())),
        "{}",
        err.message()
    );
    assert!(!missing.exists(), "a missing database must not be created");

    let err = rt.block_on(backup::backup(&collection, &[], &BackupOptions::default())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let db = dir.path().join("movr.db");
    make_db(&db, 10);
    let twice = [source("movr", &db), source("movr", &db)];
    let err =
        rt.block_on(backup::backup(&collection, &twice, &BackupOptions::default())).unwrap_err();
    assert_eq!(err.message(), "database movr is given twice");

    for destination in [Destination::Latest, Destination::NewFull] {
        if destination == Destination::NewFull {
            // LATEST exists but the collection is otherwise what a restore cannot use.
            rt.block_on(collection.put("LATEST", b"../..".to_vec())).unwrap();
        }
        let err = rt
            .block_on(backup::backup(
                &collection,
                &[source("movr", &db)],
                &options(Destination::Latest, dir.path()),
            ))
            .unwrap_err();
        let expected = match destination {
            Destination::Latest => (
                ErrorKind::NotFound,
                "no full backup found in the collection: LATEST does not exist",
            ),
            _ => (ErrorKind::Corrupt, "LATEST in the collection does not name a backup"),
        };
        assert_eq!(err.kind(), expected.0, "{}", err.message());
        assert!(err.message().starts_with(expected.1), "{}", err.message());
    }
    assert!(rt.block_on(backup::list_backups(&collection)).unwrap().is_empty());
}

/// A row value that must never appear in a stored byte of an encrypted backup.
const CANARY: &str = "canary-plaintext-3f9e1c";

/// Every object of `location` that contains `needle`.
async fn objects_containing(location: &Location, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for meta in location.list("", None).await.unwrap() {
        let bytes = location.get(&meta.key).await.unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            found.push(meta.key);
        }
    }
    found
}

/// The suite for passphrase-encrypted backups: round trip, ciphertext only in storage, wrong and
/// missing passphrases, incrementals reusing the chain's data key, tampering.
async fn encrypted_suite(collection: &Location, work: &Path) {
    let db = work.join("movr.db");
    make_db(&db, ROWS);
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE users SET name = ?1 WHERE id = 7", [CANARY])
        .unwrap();
    let original = dump(&db);
    let restore_dir = work.join("restore");
    std::fs::create_dir_all(&restore_dir).unwrap();
    let sources = [source("movr", &db)];
    let right = EncryptionKey::Passphrase("correct horse".into());
    let wrong = EncryptionKey::Passphrase("battery staple".into());
    let with = |key: &EncryptionKey, destination| BackupOptions {
        encryption: Some(key.clone()),
        ..options(destination, work)
    };
    let open_with = |key: &EncryptionKey| RestoreOptions {
        encryption: Some(key.clone()),
        ..Default::default()
    };

    let full =
        backup::backup(collection, &sources, &with(&right, Destination::NewFull)).await.unwrap();
    assert_eq!(full.chunks_uploaded, full.chunks_total, "{full:?}");

    // Nothing stored shows a row value or a table name; the manifest says how it is sealed.
    assert_eq!(objects_containing(collection, CANARY.as_bytes()).await, Vec::<String>::new());
    assert_eq!(objects_containing(collection, b"longish name").await, Vec::<String>::new());
    let raw = collection.get(&format!("{}/BACKUP_MANIFEST", full.dir)).await.unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let encryption = &raw["encryption"];
    assert_eq!(encryption["scheme"], "AES-256-GCM", "{raw}");
    assert_eq!(encryption["passphrase"]["kdf"], "PBKDF2-HMAC-SHA256", "{raw}");
    assert_eq!(encryption["passphrase"]["iterations"], 600_000, "{raw}");
    assert_eq!(encryption["kms"], serde_json::json!([]), "{raw}");
    assert!(raw.get("databases").is_none() && raw["sealed"].is_string(), "{raw}");
    let key_id = encryption["key_id"].as_str().unwrap().to_owned();
    let (chunks, _) = data_objects(collection).await;
    let prefixed = collection.list(&format!("data/{key_id}/"), None).await.unwrap().len();
    assert_eq!((chunks, prefixed), (full.chunks_total, full.chunks_total));

    // The right passphrase restores; none, or a wrong one, is a clear error and restores nothing.
    assert_eq!(restore_dump(collection, &restore_dir, &open_with(&right)).await, original);
    let listed_before = files(&restore_dir);
    let err =
        backup::restore(collection, &restore_dir, &RestoreOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "backup {} is encrypted: give the encryption_passphrase (or kms) it was taken with",
            full.subdir
        )
    );
    let err = backup::restore(collection, &restore_dir, &open_with(&wrong)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongKey, "{}", err.message());
    assert_eq!(
        err.message(),
        format!("failed to decrypt the data key of backup {} — wrong passphrase?", full.subdir)
    );
    assert_eq!(files(&restore_dir), listed_before);

    // SHOW BACKUP reads the manifests only, with the passphrase.
    let rows = backup::describe(collection, None, None, Some(&right)).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let err = backup::describe(collection, None, None, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    let err = backup::describe(collection, None, None, Some(&wrong)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongKey, "{}", err.message());

    // Incrementals reuse the chain's data key: unchanged chunks stay where they are.
    let err = backup::backup(collection, &sources, &options(Destination::Latest, work))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    let err =
        backup::backup(collection, &sources, &with(&wrong, Destination::Latest)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongKey, "{}", err.message());
    let same =
        backup::backup(collection, &sources, &with(&right, Destination::Latest)).await.unwrap();
    assert_eq!((same.kind, same.chunks_uploaded), (BackupKind::Incremental, 0), "{same:?}");
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE users SET balance = -1 WHERE id = 12345", [])
        .unwrap();
    let changed = dump(&db);
    let one_row =
        backup::backup(collection, &sources, &with(&right, Destination::Latest)).await.unwrap();
    assert!(one_row.chunks_uploaded >= 1, "{one_row:?}");
    assert!(one_row.bytes_uploaded * 20 < one_row.bytes_total, "{one_row:?}");
    assert_eq!(data_objects(collection).await.0, full.chunks_total + one_row.chunks_uploaded);
    assert_eq!(restore_dump(collection, &restore_dir, &open_with(&right)).await, changed);
    assert_eq!(objects_containing(collection, CANARY.as_bytes()).await, Vec::<String>::new());

    // A chunk altered, or swapped for another: authentication fails and nothing is restored.
    let chunk_keys: Vec<String> = collection
        .list(&format!("data/{key_id}/"), None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    let (victim, other) = (&chunk_keys[2], &chunk_keys[5]);
    let good = collection.get(victim).await.unwrap();
    let mut bad = good.clone();
    bad[40] ^= 1;
    for replacement in [bad, collection.get(other).await.unwrap()] {
        collection.put(victim, replacement).await.unwrap();
        let err = backup::restore(collection, &restore_dir, &open_with(&right)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", err.message());
        assert!(err.message().contains("failed authentication"), "{}", err.message());
        assert_eq!(files(&restore_dir), listed_before);
    }
    collection.put(victim, good).await.unwrap();

    // An altered manifest fails authentication too.
    let manifest_key = format!("{}/BACKUP_MANIFEST", one_row.dir);
    let good = collection.get(&manifest_key).await.unwrap();
    let mut sealed: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let text = sealed["sealed"].as_str().unwrap().to_owned();
    let flipped = if text.starts_with('A') { "B" } else { "A" };
    sealed["sealed"] = format!("{flipped}{}", &text[1..]).into();
    collection.put(&manifest_key, serde_json::to_vec(&sealed).unwrap()).await.unwrap();
    let err = backup::restore(collection, &restore_dir, &open_with(&right)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "backup manifest {manifest_key} failed authentication: it was altered or is not this \
             backup's"
        )
    );
    collection.put(&manifest_key, good).await.unwrap();
    assert_eq!(restore_dump(collection, &restore_dir, &open_with(&right)).await, changed);

    // Another data key, or none, shares no chunk with this chain.
    let before = data_objects(collection).await.0;
    let second =
        backup::backup(collection, &sources, &with(&right, Destination::NewFull)).await.unwrap();
    assert_eq!(second.chunks_uploaded, second.chunks_total, "{second:?}");
    let plain =
        backup::backup(collection, &sources, &options(Destination::NewFull, work)).await.unwrap();
    assert_eq!(plain.chunks_uploaded, plain.chunks_total, "{plain:?}");
    assert_eq!(data_objects(collection).await.0, before + 2 * plain.chunks_total);
    // A plaintext backup given a passphrase is refused, as CockroachDB refuses it.
    let err = backup::restore(collection, &restore_dir, &open_with(&right)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert_eq!(
        err.message(),
        format!(
            "backup {} is not encrypted: remove the encryption_passphrase option",
            plain.subdir
        )
    );
    assert_eq!(restore_dump(collection, &restore_dir, &RestoreOptions::default()).await, changed);
    let named = RestoreOptions { subdir: Some(full.subdir.clone()), ..open_with(&right) };
    assert_eq!(restore_dump(collection, &restore_dir, &named).await, changed);
}

#[test]
fn nodelocal_encrypted_backups() {
    let dir = tempfile::tempdir().unwrap();
    let collection = nodelocal(dir.path(), "backups/secret");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    runtime().block_on(encrypted_suite(&collection, &work));
}

#[test]
fn s3_encrypted_backups() {
    let collection = s3(&emulators::unique("backup-encrypted"));
    let work = tempfile::tempdir().unwrap();
    runtime().block_on(encrypted_suite(&collection, work.path()));
}

/// Public types are usable across threads.
#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<backup::Error>();
    send_sync::<backup::BackupSummary>();
    send_sync::<backup::Restored>();
    send_sync::<BackupOptions<'static>>();
    send_sync::<RestoreOptions<'static>>();
    send_sync::<EncryptionKey>();
}
