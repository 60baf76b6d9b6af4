//! userfile through the storage conformance suite, plus its own rules: per-user tables in the
//! catalog database, ownership, chunked rows.

mod conformance;

use extconn_providers::storage::{self, userfile};
use extconn_providers::{Config, ErrorKind, Target};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

fn config(dir: &tempfile::TempDir) -> Config {
    Config { data_dir: dir.path().to_owned(), ..Config::default() }
}

fn target(host: &str, path: &str, user: &str) -> Target {
    let mut target = Target::new("userfile", host, path);
    target.user = user.to_owned();
    target
}

#[test]
fn userfile_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    for (host, path, user) in [
        ("", "a/b", "root"),
        ("", "", "alice"),
        ("defaultdb.public.userfiles_alice", "x", "alice"),
        ("other.userfiles_bob", "deep/er", "bob"),
        ("shared", "", "root"),
    ] {
        let location = storage::open(&config(&dir), &target(host, path, user)).unwrap();
        runtime().block_on(conformance::put_get_delete_list(&location));
    }
}

#[test]
fn userfile_writes_large_objects_in_parts_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let location = storage::open(&config(&dir), &target("", "big", "root")).unwrap();
    runtime().block_on(conformance::large_object(&location, 100 << 20));

    // Stored in 1 MiB rows in the catalog database, not one giant row.
    runtime().block_on(location.put("ten", vec![7; 10 << 20 | 5])).unwrap();
    let db = rusqlite::Connection::open(dir.path().join(userfile::CATALOG_FILE)).unwrap();
    let (rows, largest): (i64, i64) = db
        .query_row(
            "SELECT count(*), max(length(payload)) \
             FROM \"defaultdb.public.userfiles_root_upload_payload\"",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, largest), (11, userfile::CHUNK as i64));
    let (name, size, user): (String, i64, String) = db
        .query_row(
            "SELECT filename, file_size, username \
             FROM \"defaultdb.public.userfiles_root_upload_files\"",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap();
    assert_eq!((name.as_str(), size, user.as_str()), ("big/ten", 10 << 20 | 5, "root"));
    assert_eq!(runtime().block_on(location.get("ten")).unwrap(), vec![7; 10 << 20 | 5]);
}

#[test]
fn userfile_tables_are_per_user() {
    let dir = tempfile::tempdir().unwrap();
    let alice = storage::open(&config(&dir), &target("", "p", "alice")).unwrap();
    let bob = storage::open(&config(&dir), &target("", "p", "bob")).unwrap();
    let rt = runtime();
    rt.block_on(alice.put("f", b"alice's".to_vec())).unwrap();
    assert_eq!(rt.block_on(bob.get("f")).unwrap_err().kind(), ErrorKind::NotFound);
    assert!(rt.block_on(bob.list("", None)).unwrap().is_empty());

    // root may use anyone's table by name; nobody else may.
    let as_root = target("defaultdb.public.userfiles_alice", "p", "root");
    let root = storage::open(&config(&dir), &as_root).unwrap();
    assert_eq!(rt.block_on(root.get("f")).unwrap(), b"alice's");
    let err = storage::open(&config(&dir), &target("defaultdb.public.userfiles_alice", "p", "bob"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        err.message(),
        "userfile://defaultdb.public.userfiles_alice/p: user bob may not use the userfile table \
         defaultdb.public.userfiles_alice: a table userfiles_<name> belongs to user <name>, and \
         only its owner and root may use it"
    );
}

#[test]
fn userfile_table_names_follow_cockroachdb() {
    let rows = [
        ("", "alice", "defaultdb.public.userfiles_alice"),
        ("t", "alice", "defaultdb.public.t"),
        ("db.t", "alice", "db.public.t"),
        ("DB.S.T", "alice", "db.s.t"),
    ];
    for (host, user, expected) in rows {
        assert_eq!(userfile::qualified_table(host, user), expected, "{host:?}");
    }
}

#[test]
fn userfile_reads_stream_in_chunks() {
    use futures::StreamExt;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(userfile::CATALOG_FILE);
    let store =
        userfile::UserfileStore::open(&db, "defaultdb.public.userfiles_root", "root").unwrap();
    let rt = runtime();
    let data: Vec<u8> = (0..(3 * userfile::CHUNK + 10)).map(|i| (i % 253) as u8).collect();
    let path = Path::from("s/f");
    rt.block_on(store.put(&path, PutPayload::from(data.clone()))).unwrap();
    let chunks: Vec<bytes::Bytes> = rt.block_on(async {
        let stream = store.get(&path).await.unwrap().into_stream();
        stream.map(|c| c.unwrap()).collect().await
    });
    assert_eq!(chunks.len(), 4, "one item per 1 MiB row");
    assert_eq!(chunks.concat(), data);
    // A range starting inside a chunk.
    let range = rt.block_on(store.get_range(&path, 5..(userfile::CHUNK as u64 + 7))).unwrap();
    assert_eq!(range.as_ref(), &data[5..userfile::CHUNK + 7]);
    let listed = rt.block_on(store.list_with_delimiter(Some(&Path::from("s")))).unwrap();
    assert_eq!(listed.objects.len(), 1);
    let _: &dyn ObjectStore = &store;
}
