//! KMS connections end to end (issue 7): CREATE validates a key by encrypting and decrypting
//! the marker, `BACKUP … WITH kms` wraps the backup's data key with each key given, RESTORE
//! and SHOW BACKUP open it with any one of them, and the stored bytes are ciphertext.
//!
//! `aws-kms` runs against moto (`scripts/services start` creates two keys), `gcp-kms` and
//! `azure-kms` against the in-process fakes of `providers/tests/support/kms_servers.rs`,
//! reached through the host's endpoint overrides.

mod common;

#[path = "../../providers/tests/support/kms_servers.rs"]
mod kms_servers;

use std::path::Path;

use common::{env, err, host, ok, q, root, unique};
use extconn_host::{Host, Outcome, Session, Value};
use extconn_providers::{Config, Target, storage};
use kms_servers::{AzureKeyVaultServer, GcpKmsServer};

/// A row value no stored byte may contain.
const CANARY: &str = "kms-canary-row-7f3e";
const S3_BUCKET: &str = "extconn-host";

fn rows(host: &mut Host, session: &Session, sql: &str) -> Vec<Vec<Value>> {
    match ok(host, session, sql).pop().map(|r| r.outcome) {
        Some(Ok(Outcome::Rows(rows))) => rows.rows,
        other => panic!("{sql}: expected rows, got {other:?}"),
    }
}

fn make_shop(host: &mut Host) {
    ok(
        host,
        &root(),
        &format!(
            "CREATE DATABASE shop;
             CREATE TABLE shop.items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
               INSERT INTO shop.items SELECT i, 'item ' || i FROM n;
             UPDATE shop.items SET name = '{CANARY}' WHERE id = 7;"
        ),
    );
}

fn items(host: &mut Host, database: &str) -> Vec<Vec<Value>> {
    rows(host, &root(), &format!("SELECT id, name FROM {database}.items ORDER BY id"))
}

/// What every KMS scheme must do, given two connections to two different keys (`k1`, `k2`)
/// and a storage connection `store`; `stored` answers every byte stored under it.
fn backups_round_trip(host: &mut Host, stored: &dyn Fn(&Host) -> Vec<u8>) {
    let session = root();
    make_shop(host);
    let before = items(host, "shop");
    ok(
        host,
        &session,
        "BACKUP DATABASE shop INTO 'external://store/one' WITH kms = 'external://k1'",
    );
    let bytes = stored(host);
    assert!(bytes.len() > 4096, "the backup stored {} bytes", bytes.len());
    assert!(
        !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "a row value appears in the stored bytes"
    );

    // Another key, no key, a passphrase: refused, nothing restored.
    let restore =
        "RESTORE DATABASE shop FROM LATEST IN 'external://store/one' WITH new_db_name = 'shop2'";
    let cases = [
        (", kms = 'external://k2'", "was not encrypted with any of the KMS keys given"),
        ("", "is encrypted: give the encryption_passphrase (or kms) it was taken with"),
        (", encryption_passphrase = 'p'", "was encrypted with kms, not encryption_passphrase"),
    ];
    for (with, text) in cases {
        let e = err(host, &session, &format!("{restore}{with}"));
        assert_eq!(e.sqlstate, "22023", "{with}: {e:?}");
        assert!(e.message.contains(text), "{with}: {}", e.message);
        assert!(!host.data_dir().join("databases/shop2.sqlite").exists(), "{with}");
    }

    let shown = rows(
        host,
        &session,
        "SHOW BACKUP FROM LATEST IN 'external://store/one' WITH kms = 'external://k1'",
    );
    assert_eq!(shown.len(), 2, "database and table rows: {shown:?}");
    ok(host, &session, &format!("{restore}, kms = 'external://k1'"));
    assert_eq!(items(host, "shop2"), before, "the restored rows differ");

    // Wrapped by both keys: either one opens it; an incremental keeps the chain's key.
    ok(
        host,
        &session,
        "BACKUP DATABASE shop INTO 'external://store/two' WITH kms = ('external://k1', 'external://k2')",
    );
    ok(host, &session, "UPDATE shop.items SET name = 'changed' WHERE id = 1");
    ok(
        host,
        &session,
        "BACKUP DATABASE shop INTO LATEST IN 'external://store/two' WITH kms = 'external://k2'",
    );
    let after = items(host, "shop");
    ok(
        host,
        &session,
        "RESTORE DATABASE shop FROM LATEST IN 'external://store/two' WITH new_db_name = 'shop3', kms = 'external://k2'",
    );
    assert_eq!(items(host, "shop3"), after);
    ok(
        host,
        &session,
        "RESTORE DATABASE shop FROM LATEST IN 'external://store/two' WITH new_db_name = 'shop4', kms = 'external://k1'",
    );
    assert_eq!(items(host, "shop4"), after);

    // CHECK runs CREATE's round trip; the type checks hold both ways.
    let check = rows(host, &session, "CHECK EXTERNAL CONNECTION 'external://k1'");
    assert_eq!(check.len(), 1, "{check:?}");
    assert_eq!(check[0][2], Value::Boolean(true), "{check:?}");
    let e = err(host, &session, "BACKUP DATABASE shop INTO 'external://k1'");
    assert!(e.message.contains("STORAGE cannot use object of type KMS"), "{e:?}");
    let e = err(
        host,
        &session,
        "BACKUP DATABASE shop INTO 'external://store/x' WITH kms = 'external://store'",
    );
    assert!(e.message.contains("KMS cannot use object of type STORAGE"), "{e:?}");

    // USAGE on the KMS connection is required, as on storage.
    ok(host, &session, "CREATE USER alice; GRANT USAGE ON EXTERNAL CONNECTION store TO alice");
    let alice = Session { user: "alice".into(), ..root() };
    let e = err(
        host,
        &alice,
        "SHOW BACKUP FROM LATEST IN 'external://store/one' WITH kms = 'external://k1'",
    );
    assert_eq!(e.sqlstate, "42501", "{e:?}");
    assert!(e.message.contains("USAGE"), "{e:?}");
}

/// The connections [`backups_round_trip`] uses: two keys and a store. CREATE validates each
/// key by a round trip, so this fails unless both work.
fn connect(host: &mut Host, k1: &str, k2: &str, store: &str) {
    ok(
        host,
        &root(),
        &format!(
            "CREATE EXTERNAL CONNECTION k1 AS '{k1}';
             CREATE EXTERNAL CONNECTION k2 AS '{k2}';
             CREATE EXTERNAL CONNECTION store AS '{store}'"
        ),
    );
}

/// A failing CREATE names the KMS step and leaves no connection.
fn create_fails(host: &mut Host, uri: &str, texts: &[&str]) {
    let e = err(host, &root(), &format!("CREATE EXTERNAL CONNECTION bad AS '{uri}'"));
    for text in texts {
        assert!(e.message.contains(text), "{text:?} not in {:?}", e.message);
    }
    let e = err(host, &root(), "SHOW CREATE EXTERNAL CONNECTION bad");
    assert!(e.message.contains("does not exist"), "{e:?}");
}

/// Every byte of every object under `dir`, concatenated.
fn local_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(local_bytes(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

fn aws_uri(key: &str) -> String {
    format!(
        "aws-kms:///{key}?AUTH=specified&AWS_ACCESS_KEY_ID={}&AWS_SECRET_ACCESS_KEY={}\
         &REGION=us-east-1&AWS_ENDPOINT={}",
        q(&env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        q(&env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
        q(&env("EXTCONN_TEST_S3_ENDPOINT")),
    )
}

#[test]
fn aws_kms_on_moto_validates_and_encrypts_backups_on_s3() {
    let (mut host, _dir) = host();
    let prefix = unique("kms");
    let secret = env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY");
    let store = format!(
        "s3://{S3_BUCKET}/{prefix}?AWS_ACCESS_KEY_ID={}&AWS_SECRET_ACCESS_KEY={}\
         &AWS_ENDPOINT={}&AWS_USE_PATH_STYLE=true&AWS_REGION=us-east-1",
        q(&env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        q(&secret),
        q(&env("EXTCONN_TEST_S3_ENDPOINT")),
    );
    let (a, b) = (env("EXTCONN_TEST_AWS_KMS_KEY_A"), env("EXTCONN_TEST_AWS_KMS_KEY_B"));
    connect(&mut host, &aws_uri(&a), &aws_uri(&b), &store);
    create_fails(
        &mut host,
        &aws_uri("no-such-key"),
        &["failed to create AWS KMS external connection: failed to encrypt marker content"],
    );
    let wrong = aws_uri(&a).replace(&q(&secret), "wrong-secret");
    create_fails(&mut host, &wrong, &["failed to create AWS KMS external connection"]);
    let e = err(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION bad AS '{wrong}'"));
    assert!(!e.message.contains(&secret), "{e:?}");

    let s3 = |host: &Host| {
        let params = [
            ("AWS_ACCESS_KEY_ID", env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
            ("AWS_SECRET_ACCESS_KEY", env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
            ("AWS_ENDPOINT", env("EXTCONN_TEST_S3_ENDPOINT")),
            ("AWS_USE_PATH_STYLE", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ];
        let target = Target {
            params: params.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
            ..Target::new("s3", S3_BUCKET, &format!("{prefix}/one"))
        };
        let location = storage::open(host.provider_config(), &target).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut all = Vec::new();
            for object in location.list("", None).await.unwrap() {
                all.extend(location.get(&object.key).await.unwrap());
            }
            all
        })
    };
    backups_round_trip(&mut host, &s3);
}

/// The fakes' runtime runs on a thread of its own while the host blocks on statements.
fn start_fakes() -> (GcpKmsServer, AzureKeyVaultServer) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let gcp = GcpKmsServer::start().await;
            let azure = AzureKeyVaultServer::start("extconn-vault").await;
            tx.send((gcp, azure)).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

fn with_fakes(host: &mut Host, gcp: &GcpKmsServer, azure: &AzureKeyVaultServer) {
    host.set_provider_config(Config {
        gcp_kms_endpoint: Some(gcp.endpoint()),
        azure_kms_endpoint: Some(azure.endpoint()),
        azure_authority_host: Some(azure.authority()),
        ..host.provider_config().clone()
    });
}

#[test]
fn gcp_kms_on_a_fake_cloud_kms_validates_and_encrypts_backups() {
    let (gcp, azure) = start_fakes();
    let (mut host, dir) = host();
    with_fakes(&mut host, &gcp, &azure);
    let key = |name: &str| format!("projects/p/locations/global/keyRings/r/cryptoKeys/{name}");
    gcp.add_key(&key("one"));
    gcp.add_key(&key("two"));
    let bearer = |name: &str| {
        format!("gcp-kms:///{}?AUTH=specified&BEARER_TOKEN={}", key(name), q(&gcp.token()))
    };
    // k2 authenticates with a service account's key file, through the token endpoint.
    let credentials = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gcp.service_account_json(),
    );
    let with_credentials =
        format!("gcp-kms:///{}?AUTH=specified&CREDENTIALS={}", key("two"), q(&credentials));
    connect(&mut host, &bearer("one"), &with_credentials, "nodelocal://1/gcp");
    assert!(gcp.hits("/token") >= 1, "the service account's token was never fetched");
    create_fails(
        &mut host,
        &bearer("missing"),
        &["failed to create GCP KMS external connection: failed to encrypt marker content"],
    );
    let wrong = format!("gcp-kms:///{}?AUTH=specified&BEARER_TOKEN=wrong", key("one"));
    create_fails(&mut host, &wrong, &["failed to create GCP KMS external connection"]);

    let extern_dir = dir.path().join("extern/gcp/one");
    backups_round_trip(&mut host, &|_| local_bytes(&extern_dir));
    tampered_chunks_fail(&mut host, &dir.path().join("extern/gcp/one"));
}

#[test]
fn azure_kms_on_a_fake_key_vault_validates_and_encrypts_backups() {
    let (gcp, azure) = start_fakes();
    let (mut host, dir) = host();
    with_fakes(&mut host, &gcp, &azure);
    azure.add_key("one", "v1");
    azure.add_key("two", "v7");
    let uri = |path: &str, secret: &str| {
        format!(
            "azure-kms:///{path}?AZURE_VAULT_NAME={}&AZURE_CLIENT_ID={}&AZURE_CLIENT_SECRET={}\
             &AZURE_TENANT_ID={}",
            azure.vault(),
            q(&azure.client_id()),
            q(secret),
            q(&azure.tenant())
        )
    };
    let secret = azure.client_secret();
    connect(&mut host, &uri("one/v1", &secret), &uri("two/v7", &secret), "nodelocal://1/azure");
    create_fails(
        &mut host,
        &uri("one/v2", &secret),
        &["failed to create Azure KMS external connection: failed to encrypt marker content"],
    );
    create_fails(
        &mut host,
        &uri("one/v1", "wrong"),
        &["failed to create Azure KMS external connection"],
    );

    let extern_dir = dir.path().join("extern/azure/one");
    backups_round_trip(&mut host, &|_| local_bytes(&extern_dir));
}

/// A flipped bit in any chunk fails authentication, and nothing is restored.
fn tampered_chunks_fail(host: &mut Host, collection: &Path) {
    let mut chunks = Vec::new();
    collect_files(collection, &mut chunks);
    let chunk = chunks
        .iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "data"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a chunk");
    let mut bytes = std::fs::read(chunk).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(chunk, bytes).unwrap();
    let e = err(
        host,
        &root(),
        "RESTORE DATABASE shop FROM LATEST IN 'external://store/one' WITH new_db_name = 'shop9', kms = 'external://k1'",
    );
    assert!(e.message.contains("failed authentication"), "{e:?}");
    assert!(!host.data_dir().join("databases/shop9.sqlite").exists());
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}
