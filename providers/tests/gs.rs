//! gs against fake-gcs-server (started by `scripts/services`), reached through the host's
//! endpoint override.
//!
//! fake-gcs-server does not take object_store's writes (GCS's XML API: `PUT /bucket/object`
//! answers "invalid uploadType"), so the conformance suite cannot run here yet: these tests
//! read objects `scripts/services` seeded through the JSON API, and check the errors.

mod emulators;

use emulators::{closed_endpoint, config, gs, runtime, with};
use extconn_providers::{Config, ErrorKind, storage};

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
