//! CREATE EXTERNAL CONNECTION against the emulators `scripts/services` runs on 127.0.0.1 (moto
//! for S3, Azurite for Azure): the sentinel is written where a direct read through the
//! providers' object_store client finds it, and every failure is distinct, clear and leaves no
//! catalog entry.

mod common;

use common::{env, err, host, ok, q, root, unique};
use extconn_host::Host;
use extconn_providers::{Target, storage};

const SENTINEL: &str = "crdb_external_storage_location";
const SENTINEL_TEXT: &str =
    "a CockroachDB cluster has been configured to read and write to this location";
const BUCKET: &str = "extconn-host";
/// A secret that must never show up in any output.
const CANARY: &str = "CANARY-41c2-SECRET";

fn s3_uri(bucket: &str, path: &str, secret: &str, endpoint: &str) -> String {
    format!(
        "s3://{bucket}/{path}?AWS_ACCESS_KEY_ID={}&AWS_SECRET_ACCESS_KEY={}\
         &AWS_ENDPOINT={}&AWS_USE_PATH_STYLE=true&AWS_REGION=us-east-1",
        q(&env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        q(secret),
        q(endpoint),
    )
}

fn azure_uri(scheme: &str, container: &str, path: &str, key: &str) -> String {
    // The host reads it: without it, the URI would name the real Azure.
    env("EXTCONN_AZURE_BLOB_ENDPOINT");
    format!(
        "{scheme}://{container}/{path}?AZURE_ACCOUNT_NAME={}&AZURE_ACCOUNT_KEY={}",
        q(&env("EXTCONN_TEST_AZURE_ACCOUNT_NAME")),
        q(key),
    )
}

/// Reads the sentinel back as the host would, but outside it: object_store directly.
fn read_sentinel(host: &Host, target: Target) -> Vec<u8> {
    let config = extconn_host::provider_config(host.data_dir());
    let location = storage::open(&config, &target).unwrap();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    runtime.block_on(location.get(SENTINEL)).unwrap()
}

fn target(scheme: &str, bucket: &str, path: &str, params: Vec<(&str, String)>) -> Target {
    let mut target = Target::new(scheme, bucket, path);
    target.params = params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    target
}

#[test]
fn create_on_s3_writes_the_sentinel() {
    let (mut host, _dir) = host();
    let path = unique("create");
    let uri = s3_uri(
        BUCKET,
        &path,
        &env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY"),
        &env("EXTCONN_TEST_S3_ENDPOINT"),
    );
    ok(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION backups AS '{uri}'"));
    let direct = target(
        "s3",
        BUCKET,
        &path,
        vec![
            ("AWS_ACCESS_KEY_ID", env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
            ("AWS_ENDPOINT", env("EXTCONN_TEST_S3_ENDPOINT")),
            ("AWS_USE_PATH_STYLE", "true".to_owned()),
        ],
    );
    assert_eq!(read_sentinel(&host, direct), SENTINEL_TEXT.as_bytes());
    assert!(host.catalog().read_connection("backups").unwrap().is_some());
}

#[test]
fn s3_failures_are_distinct_clear_and_leave_no_entry() {
    let (mut host, _dir) = host();
    let endpoint = env("EXTCONN_TEST_S3_ENDPOINT");
    let secret = env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY");
    let stopped = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let cases = [
        (
            "wrong credentials",
            s3_uri(BUCKET, "p", CANARY, &endpoint),
            "failed to create s3 external connection",
            "s3://extconn-host/p/crdb_external_storage_location: permission denied",
        ),
        (
            "a missing bucket",
            s3_uri("no-such-bucket", "p", &secret, &endpoint),
            "failed to create s3 external connection",
            "s3://no-such-bucket/p/crdb_external_storage_location: put failed: \
             the bucket or container does not exist",
        ),
        (
            "a stopped service",
            s3_uri(BUCKET, "p", &secret, &stopped),
            "failed to create s3 external connection",
            "s3://extconn-host/p/crdb_external_storage_location: put failed: \
             cannot connect to the service: Connection refused",
        ),
    ];
    let mut messages = Vec::new();
    for (what, uri, wrapper, expected) in cases {
        let e = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION c AS '{uri}'"));
        assert!(e.message.contains(wrapper), "{what}: {e:?}");
        assert!(e.message.contains(expected), "{what}: expected {expected:?} in {e:?}");
        assert!(!format!("{e:?}").contains(CANARY), "{what}: {e:?}");
        assert!(!format!("{e:?}").contains(&secret), "{what}: {e:?}");
        assert_eq!(host.catalog().read_connection("c").unwrap(), None, "{what}");
        messages.push(e.message);
    }
    messages.dedup();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    // The catalog is untouched by every failure.
    let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    assert!(!format!("{results:?}").contains("no-such-bucket"), "{results:?}");
}

#[test]
fn create_on_azure_writes_the_sentinel() {
    let (mut host, _dir) = host();
    let key = env("EXTCONN_TEST_AZURE_ACCOUNT_KEY");
    for scheme in ["azure-blob", "azure", "azure-storage"] {
        let path = unique(scheme);
        let uri = azure_uri(scheme, BUCKET, &path, &key);
        let name = scheme.replace('-', "_");
        ok(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION {name} AS '{uri}'"));
        let direct = target(
            scheme,
            BUCKET,
            &path,
            vec![
                ("AZURE_ACCOUNT_NAME", env("EXTCONN_TEST_AZURE_ACCOUNT_NAME")),
                ("AZURE_ACCOUNT_KEY", key.clone()),
            ],
        );
        assert_eq!(read_sentinel(&host, direct), SENTINEL_TEXT.as_bytes(), "{scheme}");
    }
}

#[test]
fn gs_goes_to_the_host_endpoint_override() {
    // fake-gcs-server refuses object_store's writes (see providers/tests/gs.rs), so the sentinel
    // cannot be written; a missing bucket shows the host reached the emulator, not Google.
    env("EXTCONN_GCS_ENDPOINT");
    let (mut host, _dir) = host();
    let uri = format!("gs://no-such-bucket/p?AUTH=specified&BEARER_TOKEN={CANARY}");
    let e = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION g AS '{uri}'"));
    assert!(e.message.contains("failed to create gs external connection"), "{e:?}");
    assert!(
        e.message.contains(
            "gs://no-such-bucket/p/crdb_external_storage_location: put failed: \
             the bucket or container does not exist"
        ),
        "{e:?}"
    );
    assert!(!format!("{e:?}").contains(CANARY), "{e:?}");
    assert_eq!(host.catalog().read_connection("g").unwrap(), None);
}

#[test]
fn azure_wrong_key_fails_and_leaves_no_entry() {
    let (mut host, _dir) = host();
    // Valid base64 carrying the canary: the wrong key.
    let key = "Q0FOQVJZLTQxYzItU0VDUkVU";
    let uri = azure_uri("azure-blob", BUCKET, "p", key);
    let e = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION c AS '{uri}'"));
    assert!(e.message.contains("failed to create azure external connection"), "{e:?}");
    assert!(
        e.message.contains(
            "azure-blob://extconn-host/p/crdb_external_storage_location: permission denied"
        ),
        "{e:?}"
    );
    assert!(!format!("{e:?}").contains(key), "{e:?}");
    assert_eq!(host.catalog().read_connection("c").unwrap(), None);
}

/// Creates (once per run) an IAM user on moto whose policy allows only reading and listing,
/// through boto3 in the venv `scripts/services` installed; returns its key id and secret.
fn read_only_s3_user() -> (String, String) {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: scripts/services start installs it (with boto3) into .cache/venv",
        venv.display()
    );
    let script = r#"
import boto3, json, os, time
kw = dict(endpoint_url=os.environ["EXTCONN_TEST_S3_ENDPOINT"], region_name="us-east-1",
          aws_access_key_id=os.environ["EXTCONN_TEST_S3_ACCESS_KEY_ID"],
          aws_secret_access_key=os.environ["EXTCONN_TEST_S3_SECRET_ACCESS_KEY"])
iam = boto3.client("iam", **kw)
name = "extconn-readonly-%d-%d" % (os.getpid(), time.time_ns())
iam.create_user(UserName=name)
key = iam.create_access_key(UserName=name)["AccessKey"]
iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
     "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}))
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
    let output = std::process::Command::new(&venv)
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", venv.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "creating the read-only IAM user failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (id, secret) = stdout.trim().split_once(' ').expect("key id and secret");
    (id.to_owned(), secret.to_owned())
}

#[test]
fn s3_read_only_credentials_fail_clearly_and_leave_no_entry() {
    let (mut host, _dir) = host();
    let endpoint = env("EXTCONN_TEST_S3_ENDPOINT");
    let (key_id, secret) = read_only_s3_user();
    let uri = format!(
        "s3://{BUCKET}/ro?AWS_ACCESS_KEY_ID={}&AWS_SECRET_ACCESS_KEY={}\
         &AWS_ENDPOINT={}&AWS_USE_PATH_STYLE=true&AWS_REGION=us-east-1",
        q(&key_id),
        q(&secret),
        q(&endpoint),
    );
    let e = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION ro AS '{uri}'"));
    assert!(
        e.message.contains(
            "failed to create s3 external connection: failed to write a sentinel ExternalStorage \
             file: s3://extconn-host/ro/crdb_external_storage_location: permission denied: the \
             credentials are valid but not allowed to put here (AccessDenied: Access Denied)"
        ),
        "{e:?}"
    );
    assert!(!format!("{e:?}").contains(&secret), "{e:?}");
    assert_eq!(host.catalog().read_connection("ro").unwrap(), None);

    // Distinct from a wrong secret for the same key id.
    let wrong = uri.replace(&q(&secret), CANARY);
    let w = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION ro AS '{wrong}'"));
    assert!(
        w.message.contains(
            "s3://extconn-host/ro/crdb_external_storage_location: permission denied: the service \
             does not accept these credentials (SignatureDoesNotMatch: "
        ),
        "{w:?}"
    );
    assert!(!format!("{w:?}").contains(CANARY), "{w:?}");
    assert_eq!(host.catalog().read_connection("ro").unwrap(), None);
}
