//! nodelocal through the storage conformance suite, plus its own rules.

mod conformance;

use extconn_providers::{Config, ErrorKind, Target, kms, sink, storage};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

fn config(dir: &tempfile::TempDir) -> Config {
    Config { data_dir: dir.path().to_owned(), ..Config::default() }
}

#[test]
fn nodelocal_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    for host in ["1", "self"] {
        let location =
            storage::open(&config(&dir), &Target::new("nodelocal", host, "a/b")).unwrap();
        runtime().block_on(conformance::put_get_delete_list(&location));
    }
    let root = storage::open(&config(&dir), &Target::new("nodelocal", "1", "")).unwrap();
    runtime().block_on(conformance::put_get_delete_list(&root));
}

#[test]
fn nodelocal_writes_large_objects_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let location = storage::open(&config(&dir), &Target::new("nodelocal", "1", "big")).unwrap();
    runtime().block_on(conformance::large_object(&location, 40 << 20));
}

#[test]
fn nodelocal_writes_under_extern() {
    let dir = tempfile::tempdir().unwrap();
    let location =
        storage::open(&config(&dir), &Target::new("nodelocal", "self", "foo/bar")).unwrap();
    runtime().block_on(location.put("x/y.txt", b"hello".to_vec())).unwrap();
    let on_disk = std::fs::read(dir.path().join("extern/foo/bar/x/y.txt")).unwrap();
    assert_eq!(on_disk, b"hello");
}

#[test]
fn nodelocal_other_nodes_do_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let err = storage::open(&config(&dir), &Target::new("nodelocal", "2", "foo/bar")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.message(),
        "nodelocal://2/foo/bar: node 2 does not exist: this is a single-node deployment, \
         use nodelocal://1 or nodelocal://self"
    );
}

#[test]
fn nodelocal_keys_cannot_escape_the_extern_dir() {
    let dir = tempfile::tempdir().unwrap();
    let location = storage::open(&config(&dir), &Target::new("nodelocal", "1", "foo")).unwrap();
    let err = runtime().block_on(location.put("../../escaped", b"x".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert!(!dir.path().join("escaped").exists());
}

#[test]
fn other_schemes_are_unsupported_and_never_echo_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir);
    let secret = "CANARY-SECRET-4f1c";
    let mut target = Target::new("http", "host", "path");
    target.uri = format!("http://host/path?AWS_SECRET_ACCESS_KEY={secret}");
    target.params = vec![("AWS_SECRET_ACCESS_KEY".into(), secret.into())];
    let err = storage::open(&config, &target).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.message(), "storage provider http is not available yet");
    assert!(!format!("{target:?}").contains(secret));

    // A KMS scheme no provider serves (the real ones are tested in tests/kms.rs).
    let mut kms_target = Target::new("vault-kms", "", "key");
    kms_target.uri = format!("vault-kms:///key?AWS_SECRET_ACCESS_KEY={secret}");
    let rt = runtime();
    let err = rt.block_on(kms::encrypt(&config, &kms_target, b"x")).unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::Unsupported, "KMS provider vault-kms is not available yet".into())
    );
    let err = rt.block_on(kms::decrypt(&config, &kms_target, b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let webhook = Target::new("webhook-https", "127.0.0.1:9", "hook");
    let err = rt.block_on(sink::probe(&config, &webhook)).unwrap_err();
    assert_eq!(
        (err.kind(), err.message()),
        (ErrorKind::Unsupported, "changefeed sink webhook-https is not available yet".into())
    );
}
