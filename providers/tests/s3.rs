//! s3 against moto (started by `scripts/services`, with IAM authentication enforced).

mod conformance;
mod emulators;

use emulators::{closed_endpoint, env, runtime, s3, unique, with};
use extconn_providers::{Config, ErrorKind, storage};

const BUCKET: &str = "extconn-test";

#[test]
fn s3_passes_the_conformance_suite() {
    let location = storage::open(&Config::default(), &s3(BUCKET, &unique("s3-conf"))).unwrap();
    runtime().block_on(conformance::put_get_delete_list(&location));
}

#[test]
fn s3_writes_large_objects_in_parts() {
    let location = storage::open(&Config::default(), &s3(BUCKET, &unique("s3-large"))).unwrap();
    runtime().block_on(conformance::large_object(&location, 100 << 20));
}

#[test]
fn s3_storage_class_and_encryption_are_sent() {
    let target = with(s3(BUCKET, &unique("s3-class")), "S3_STORAGE_CLASS", "STANDARD_IA");
    let target = with(target, "AWS_SERVER_ENC_MODE", "AES256");
    let location = storage::open(&Config::default(), &target).unwrap();
    let rt = runtime();
    rt.block_on(location.put("k", b"v".to_vec())).unwrap();
    assert_eq!(rt.block_on(location.get("k")).unwrap(), b"v");
    rt.block_on(location.delete("k")).unwrap();
}

#[test]
fn s3_wrong_secret_is_permission_denied_and_not_echoed() {
    let secret = "CANARY-wrong-secret-9d2e";
    let target = with(s3(BUCKET, "p"), "AWS_SECRET_ACCESS_KEY", secret);
    let location = storage::open(&Config::default(), &target).unwrap();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    assert!(
        err.message().starts_with("s3://extconn-test/p/k: permission denied"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains(secret), "{}", err.message());
    assert!(!err.message().contains(&env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")));
}

#[test]
fn s3_missing_bucket_is_not_found() {
    let location = storage::open(&Config::default(), &s3("no-such-bucket", "p")).unwrap();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_eq!(
        err.message(),
        "s3://no-such-bucket/p/k: put failed: the bucket or container does not exist"
    );
    let err = runtime().block_on(location.get("k")).unwrap_err();
    assert_eq!(
        err.message(),
        "s3://no-such-bucket/p/k: get failed: the bucket or container does not exist"
    );
    // Neither a listing nor a delete passes for empty.
    let err = runtime().block_on(location.list("", None)).unwrap_err();
    assert_eq!(
        err.message(),
        "s3://no-such-bucket/p: list failed: the bucket or container does not exist"
    );
    let err = runtime().block_on(location.delete("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
}

#[test]
fn s3_stopped_service_is_unavailable() {
    let target = with(s3(BUCKET, "p"), "AWS_ENDPOINT", &closed_endpoint());
    let location = storage::open(&Config::default(), &target).unwrap();
    let started = std::time::Instant::now();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.message());
    // The OS's text follows ("(os error 111)" on Linux).
    let expected = "s3://extconn-test/p/k: put failed: \
         cannot connect to the service: Connection refused";
    assert!(err.message().starts_with(expected), "{}", err.message());
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
}

#[test]
fn s3_parameters_object_store_cannot_honour_are_refused() {
    let target = with(s3(BUCKET, "p"), "ASSUME_ROLE", "arn:aws:iam::123:role/r");
    let err = storage::open(&Config::default(), &target).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.message().starts_with("s3://extconn-test/p: ASSUME_ROLE is not supported"),
        "{}",
        err.message()
    );
    let implicit = with(s3(BUCKET, "p"), "AUTH", "implicit");
    let err = storage::open(&Config::default(), &implicit).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("cannot be given with AUTH=implicit"), "{}", err.message());
}
