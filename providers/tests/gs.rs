//! gs: two servers, two kinds of tests.
//!
//! * Against the in-process fake of GCS's XML API (`support/gcs_server.rs`, no emulator
//!   needed; the `gs_xml_*` tests): the conformance suite (put, get, list with continuation
//!   tokens, delete, a 100 MiB multipart upload) with a `BEARER_TOKEN` and again with
//!   `CREDENTIALS` (the fake service account's key file), a read-only token refused writes, a
//!   token the service does not know, a missing bucket, and object_store's conditional puts,
//!   copies and ranged reads.
//! * Against fake-gcs-server (started by `scripts/services`, reached through the host's
//!   endpoint override; the other tests): reads of objects `scripts/services` seeded through
//!   the JSON API, the errors, and parameter checks. fake-gcs-server does not take
//!   object_store's writes (GCS's XML API: `PUT /bucket/object` answers "invalid
//!   uploadType"), so nothing is written there.

mod conformance;
mod emulators;
#[path = "support/gcs_server.rs"]
mod gcs_server;

use emulators::{closed_endpoint, config, gs, runtime, with};
use extconn_providers::{Config, ErrorKind, Target, storage};
use gcs_server::GcsServer;

const BUCKET: &str = "extconn-test";

#[test]
fn gs_reads_and_lists_objects() {
    let location = storage::open(&config(), &gs(BUCKET, "seeded")).unwrap();
    let rt = runtime();
    assert_eq!(rt.block_on(location.get("hello.txt")).unwrap(), b"hello from fake-gcs");
    let listed: Vec<(String, u64)> = rt
        .block_on(location.list("", None))
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    assert_eq!(listed, vec![("dir/a".to_owned(), 1), ("hello.txt".to_owned(), 19)]);
    let listed: Vec<String> =
        rt.block_on(location.list("", Some("/"))).unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(listed, vec!["dir/", "hello.txt"]);
    let err = rt.block_on(location.get("missing")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_eq!(err.message(), "gs://extconn-test/seeded/missing: object does not exist");
}

#[test]
fn gs_missing_bucket_is_not_found() {
    let location = storage::open(&config(), &gs("no-such-bucket", "p")).unwrap();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_eq!(
        err.message(),
        "gs://no-such-bucket/p/k: put failed: the bucket or container does not exist"
    );
}

#[test]
fn gs_stopped_service_is_unavailable() {
    let config = Config { gcs_endpoint: Some(closed_endpoint()), ..config() };
    let location = storage::open(&config, &gs(BUCKET, "p")).unwrap();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.message());
    // The OS's text follows ("(os error 111)" on Linux).
    let expected = "gs://extconn-test/p/k: put failed: \
         cannot connect to the service: Connection refused";
    assert!(err.message().starts_with(expected), "{}", err.message());
}

#[test]
fn gs_credentials_are_a_base64_key_file_and_never_echoed() {
    let secret = "CANARY-not-base64-77f1!";
    let target = with(gs(BUCKET, "p"), "CREDENTIALS", secret);
    let err = storage::open(&config(), &target).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.message(), "gs://extconn-test/p: CREDENTIALS is not base64 of a JSON key file");

    // A key file that is JSON but no service account: the builder's error, without the file.
    let json = r#"{"type":"service_account","private_key":"CANARY-KEY"}"#;
    let encoded = base64_encode(json.as_bytes());
    let err =
        storage::open(&config(), &with(gs(BUCKET, "p"), "CREDENTIALS", &encoded)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert!(err.message().starts_with("gs://extconn-test/p: cannot configure the gs client"));
    assert!(!err.message().contains("CANARY"), "{}", err.message());
}

#[test]
fn gs_parameters_object_store_cannot_honour_are_refused() {
    for name in ["ASSUME_ROLE", "GOOGLE_BILLING_PROJECT"] {
        let err = storage::open(&config(), &with(gs(BUCKET, "p"), name, "x")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{}", err.message());
        assert!(
            err.message().starts_with(&format!("gs://extconn-test/p: {name} is not supported")),
            "{}",
            err.message()
        );
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The in-process fake of the XML API

/// The providers' configuration pointing `gs://` at `fake`.
fn fake_config(fake: &GcsServer) -> Config {
    Config {
        data_dir: std::env::temp_dir(),
        gcs_endpoint: Some(fake.endpoint()),
        ..Config::default()
    }
}

/// `gs://bucket/path` with one parameter.
fn fake_target(bucket: &str, path: &str, name: &str, value: &str) -> Target {
    with(Target::new("gs", bucket, path), name, value)
}

#[test]
fn gs_xml_passes_the_conformance_suite() {
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        fake.create_bucket(BUCKET);
        // Two entries a page: the suite's longer listings follow continuation tokens.
        fake.set_page_limit(2);
        let target = fake_target(BUCKET, "conf", "BEARER_TOKEN", &fake.token());
        let location = storage::open(&fake_config(&fake), &target).unwrap();
        conformance::put_get_delete_list(&location).await;
        assert!(
            fake.log().iter().any(|l| l.contains("continuation-token=")),
            "no listing needed a second page: {:?}",
            fake.log()
        );
        // What the suite wrote, it deleted.
        assert_eq!(fake.object(BUCKET, "conf/dir/one"), None);
    });
}

#[test]
fn gs_xml_writes_large_objects_in_parts() {
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        fake.create_bucket(BUCKET);
        let target = fake_target(BUCKET, "large", "BEARER_TOKEN", &fake.token());
        let location = storage::open(&fake_config(&fake), &target).unwrap();
        conformance::large_object(&location, 100 << 20).await;
        let log = fake.log();
        let count = |needle: &str| log.iter().filter(|l| l.contains(needle)).count();
        // 100 MiB in 8 MiB parts: 13 parts, one initiate, one complete, nothing left open.
        assert_eq!(count("?uploads="), 1, "{log:?}");
        assert_eq!(count("partNumber="), 13, "{log:?}");
        assert_eq!(count("POST /extconn%2Dtest/large%2Flarge%2Fobject?uploadId="), 1, "{log:?}");
        assert_eq!(fake.open_uploads(), 0);
    });
}

#[test]
fn gs_xml_service_account_credentials_sign_their_own_tokens() {
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        fake.create_bucket(BUCKET);
        let credentials = base64_encode(fake.service_account_json().as_bytes());
        let target = fake_target(BUCKET, "sa", "CREDENTIALS", &credentials);
        let location = storage::open(&fake_config(&fake), &target).unwrap();
        conformance::put_get_delete_list(&location).await;
        // object_store 0.14.2 authenticates with a self-signed JWT of the key (AIP-4111) and
        // never exchanges it at the key file's `token_uri`: the fake checked every request's
        // JWT against the account's public key, and its token endpoint saw nothing.
        assert!(fake.self_signed_requests() > 10, "{}", fake.self_signed_requests());
        assert_eq!(fake.self_signed_requests(), fake.log().len());
        assert_eq!(fake.hits("/token"), 0);

        // The same account with another key: its JWTs do not verify.
        let other = fake.service_account_json().replace("fake-key-1", "fake-key-2");
        let target = fake_target(BUCKET, "sa", "CREDENTIALS", &base64_encode(other.as_bytes()));
        let location = storage::open(&fake_config(&fake), &target).unwrap();
        let err = location.put("k", b"v".to_vec()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    });
}

#[test]
fn gs_xml_read_only_token_is_permission_denied_on_writes() {
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        fake.create_bucket(BUCKET);
        let config = fake_config(&fake);
        let writer =
            storage::open(&config, &fake_target(BUCKET, "p", "BEARER_TOKEN", &fake.token()))
                .unwrap();
        writer.put("k", b"v".to_vec()).await.unwrap();

        let token = fake.read_only_token();
        let reader =
            storage::open(&config, &fake_target(BUCKET, "p", "BEARER_TOKEN", &token)).unwrap();
        assert_eq!(reader.get("k").await.unwrap(), b"v");
        assert_eq!(reader.list("", None).await.unwrap().len(), 1);
        for (operation, err) in [
            ("put", reader.put("k", b"w".to_vec()).await.unwrap_err()),
            ("put", reader.put("big", vec![7; (16 << 20) + 1]).await.unwrap_err()),
            ("delete", reader.delete("k").await.unwrap_err()),
        ] {
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
            let expected = format!(
                ": permission denied: the credentials are valid but not allowed to {operation} \
                 here (AccessDenied: Access denied.)"
            );
            assert!(err.message().contains(&expected), "{}", err.message());
            assert!(!err.message().contains(&token), "{}", err.message());
        }
        assert_eq!(fake.object(BUCKET, "p/k").unwrap(), b"v");
        assert_eq!(fake.object(BUCKET, "p/big"), None);
    });
}

#[test]
fn gs_xml_unknown_token_is_permission_denied_and_not_echoed() {
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        fake.create_bucket(BUCKET);
        let secret = "CANARY-unknown-token-5c1e";
        let target = fake_target(BUCKET, "p", "BEARER_TOKEN", secret);
        let location = storage::open(&fake_config(&fake), &target).unwrap();
        let err = location.put("k", b"v".to_vec()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
        let expected = "gs://extconn-test/p/k: permission denied: the service does not accept \
             these credentials (AuthenticationRequired: Authentication required.)";
        assert!(err.message().starts_with(expected), "{}", err.message());
        assert!(!err.message().contains(secret), "{}", err.message());
        let err = location.get("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
        assert!(!err.message().contains(secret), "{}", err.message());
        // object_store's GCS client returns a listing's 401 as a generic error; the providers
        // still classify it by its status.
        let err = location.list("", None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
        assert!(
            err.message().starts_with(
                "gs://extconn-test/p: permission denied: the service does not accept these \
                 credentials (AuthenticationRequired"
            ),
            "{}",
            err.message()
        );
        assert!(!err.message().contains(secret), "{}", err.message());
    });
}

#[test]
fn gs_xml_missing_bucket_is_not_found() {
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        let target = fake_target("no-such-bucket", "p", "BEARER_TOKEN", &fake.token());
        let location = storage::open(&fake_config(&fake), &target).unwrap();
        let err = location.put("k", b"v".to_vec()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
        assert_eq!(
            err.message(),
            "gs://no-such-bucket/p/k: put failed: the bucket or container does not exist"
        );
        let err = location.get("k").await.unwrap_err();
        assert_eq!(
            err.message(),
            "gs://no-such-bucket/p/k: get failed: the bucket or container does not exist"
        );
        // Neither a listing nor a delete passes for empty.
        let err = location.list("", None).await.unwrap_err();
        assert_eq!(
            err.message(),
            "gs://no-such-bucket/p: list failed: the bucket or container does not exist"
        );
        let err = location.delete("k").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    });
}

/// What object_store asks of the XML API beyond the location's calls: create-only puts,
/// copies (with and without overwrite), ranged reads, heads and an aborted upload.
#[test]
fn gs_xml_conditional_puts_copies_and_ranges() {
    use object_store::path::Path;
    use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutMode, PutPayload};

    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime().block_on(async {
        let fake = GcsServer::start().await;
        fake.create_bucket(BUCKET);
        let store = object_store::gcp::GoogleCloudStorageBuilder::new()
            .with_bucket_name(BUCKET)
            .with_base_url(&fake.endpoint())
            .with_bearer_token(fake.token())
            .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
            .build()
            .unwrap();
        // `parse`, not `from`: `Path::from` percent-encodes non-ASCII characters itself.
        let a = Path::parse("dir/a b").unwrap();
        let b = Path::parse("dir/ü").unwrap();

        let created = store.put_opts(&a, PutPayload::from("0123456789"), PutMode::Create.into());
        let created = created.await.unwrap();
        assert!(created.e_tag.is_some() && created.version.is_some(), "{created:?}");
        let again = store.put_opts(&a, PutPayload::from("x"), PutMode::Create.into()).await;
        assert!(matches!(again, Err(object_store::Error::AlreadyExists { .. })), "{again:?}");

        let head = store.head(&a).await.unwrap();
        assert_eq!((head.size, head.e_tag.clone()), (10, created.e_tag.clone()));
        assert_eq!(store.get_range(&a, 2..5).await.unwrap().as_ref(), b"234");

        store.copy(&a, &b).await.unwrap();
        assert_eq!(fake.object(BUCKET, "dir/ü"), Some(b"0123456789".to_vec()), "{:?}", fake.log());
        let copied = store.copy_if_not_exists(&a, &b).await;
        assert!(matches!(copied, Err(object_store::Error::AlreadyExists { .. })), "{copied:?}");
        let missing = store.copy(&Path::from("nothing"), &b).await;
        assert!(matches!(missing, Err(object_store::Error::NotFound { .. })), "{missing:?}");

        let mut upload = store.put_multipart(&Path::from("aborted")).await.unwrap();
        upload.put_part(PutPayload::from(vec![1u8; 5 << 20])).await.unwrap();
        assert_eq!(fake.open_uploads(), 1);
        upload.abort().await.unwrap();
        assert_eq!(fake.open_uploads(), 0);
        assert_eq!(fake.object(BUCKET, "aborted"), None);
    });
}
