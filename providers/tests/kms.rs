//! KMS providers: aws-kms against moto (started by `scripts/services`, IAM enforced), gcp-kms
//! and azure-kms against the in-process fakes of `support/kms_servers.rs`. Every backend runs
//! the same round trip ([`round_trip`]) and the same failure cases.

mod emulators;
#[path = "support/kms_servers.rs"]
mod kms_servers;

use emulators::{closed_endpoint, env, with};
use extconn_providers::kms::{self, Kms};
use extconn_providers::{Config, Error, ErrorKind, Target};
use kms_servers::{AzureKeyVaultServer, GcpKmsServer};
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};

/// CREATE EXTERNAL CONNECTION's marker plaintext.
const MARKER: &[u8] = b"a CockroachDB cluster has been configured to interact with this KMS";

/// The suite every backend passes: `a` round-trips, its ciphertext is not the plaintext, and
/// `b` (another key) cannot decrypt it, failing with `wrong_key`; garbage fails too.
async fn round_trip(a: &Kms, b: &Kms, wrong_key: ErrorKind) {
    let ciphertext = a.encrypt(MARKER).await.unwrap_or_else(|e| panic!("encrypt: {}", e.message()));
    assert_ne!(ciphertext, MARKER);
    assert!(!contains(&ciphertext, MARKER), "the ciphertext carries the plaintext");
    let plaintext =
        a.decrypt(&ciphertext).await.unwrap_or_else(|e| panic!("decrypt: {}", e.message()));
    assert_eq!(plaintext, MARKER);

    let err = b.decrypt(&ciphertext).await.expect_err("another key decrypted the ciphertext");
    assert_eq!(err.kind(), wrong_key, "{}", err.message());
    assert_clean(&err, &b.display());

    let err = a.decrypt(b"not a ciphertext of this key at all").await.expect_err("garbage");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert_clean(&err, &a.display());
    assert_ne!(a.key_identity(), b.key_identity());
}

/// The message names the key by its display form and shows neither plaintext nor path.
fn assert_clean(err: &Error, display: &str) {
    let message = err.message();
    assert!(message.starts_with(&format!("{display}: ")), "{message}");
    assert!(!message.contains(std::str::from_utf8(MARKER).unwrap()), "{message}");
}

/// `message` shows no `secret`.
fn assert_hidden(err: &Error, secret: &str) {
    assert!(!err.message().contains(secret), "secret shown: {}", err.message());
    assert!(!format!("{err:?}").contains(secret), "secret shown: {err:?}");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn target(scheme: &str, path: &str, params: &[(&str, &str)]) -> Target {
    let mut target = Target::new(scheme, "", path);
    target.params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    target
}

fn open(config: &Config, target: &Target) -> Kms {
    Kms::open(config, target).unwrap_or_else(|e| panic!("open: {}", e.message()))
}

// ---------------------------------------------------------------------------------------------
// aws-kms on moto

/// A new symmetric key on moto (KMS's CreateKey, signed as the test user); its id.
async fn moto_key() -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let endpoint = format!("{}/", env("EXTCONN_TEST_S3_ENDPOINT"));
    let credential = AwsCredential {
        key_id: env("EXTCONN_TEST_S3_ACCESS_KEY_ID"),
        secret_key: env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY"),
        token: None,
    };
    let mut request = HttpRequest::new(HttpRequestBody::from(b"{}".to_vec()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = endpoint.parse().unwrap();
    let headers = request.headers_mut();
    headers.insert("x-amz-target", http::HeaderValue::from_static("TrentService.CreateKey"));
    headers.insert("content-type", http::HeaderValue::from_static("application/x-amz-json-1.1"));
    AwsAuthorizer::new(&credential, "kms", "us-east-1").try_authorize(&mut request, None).unwrap();
    let response = reqwest::Client::new()
        .post(&endpoint)
        .headers(request.headers().clone())
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or_default();
    assert!(status.is_success(), "CreateKey on moto: {status} {body}");
    body["KeyMetadata"]["KeyId"].as_str().expect("KeyId").to_owned()
}

fn aws(key: &str) -> Target {
    let endpoint = env("EXTCONN_TEST_S3_ENDPOINT");
    let id = env("EXTCONN_TEST_S3_ACCESS_KEY_ID");
    let secret = env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY");
    target(
        "aws-kms",
        key,
        &[
            ("AUTH", "specified"),
            ("AWS_ACCESS_KEY_ID", &id),
            ("AWS_SECRET_ACCESS_KEY", &secret),
            ("AWS_ENDPOINT", &endpoint),
            ("REGION", "us-east-1"),
        ],
    )
}

// moto answers a Decrypt naming another key than the ciphertext's with AccessDeniedException
// (AWS itself answers IncorrectKeyException, InvalidArgument here).
#[tokio::test]
async fn aws_kms_round_trips_on_moto() {
    let (a, b) = (moto_key().await, moto_key().await);
    let config = Config::default();
    round_trip(&open(&config, &aws(&a)), &open(&config, &aws(&b)), ErrorKind::PermissionDenied)
        .await;
    let ciphertext = kms::encrypt(&config, &aws(&a), MARKER).await.unwrap();
    assert_eq!(kms::decrypt(&config, &aws(&a), &ciphertext).await.unwrap(), MARKER);
    assert_eq!(open(&config, &aws(&a)).key_identity(), format!("aws-kms:us-east-1:{a}"));
}

#[tokio::test]
async fn aws_kms_failures_are_distinct_and_hide_secrets() {
    let key = moto_key().await;
    let config = Config::default();
    let canary = "CANARY-wrong-secret-51f3";
    let wrong = with(aws(&key), "AWS_SECRET_ACCESS_KEY", canary);
    let err = kms::encrypt(&config, &wrong, MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    assert_clean(&err, "aws-kms:///redacted");
    assert_hidden(&err, canary);

    let err = kms::encrypt(&config, &aws("no-such-key"), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(err.message().contains("NotFoundException"), "{}", err.message());
    assert_clean(&err, "aws-kms:///redacted");

    let closed = with(aws(&key), "AWS_ENDPOINT", &closed_endpoint());
    let err = kms::encrypt(&config, &closed, MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.message());
    assert!(err.message().contains("cannot connect to the service"), "{}", err.message());
    assert_hidden(&err, &env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY"));
}

#[tokio::test]
async fn aws_kms_parameters_are_checked_before_any_request() {
    let mut no_region = aws("1234abcd-12ab-34cd-56ef-1234567890ab");
    no_region.params.retain(|(k, _)| k != "REGION");
    let err = Kms::open(&Config::default(), &no_region).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("could not find the aws kms region"), "{}", err.message());

    let arn = aws("arn:aws:kms:eu-west-1:123456789012:key/k");
    let mut arn = arn;
    arn.params.retain(|(k, _)| k != "REGION");
    let kms = open(&Config::default(), &arn);
    assert_eq!(kms.key_identity(), "aws-kms:eu-west-1:arn:aws:kms:eu-west-1:123456789012:key/k");
    assert_eq!(format!("{kms:?}"), r#"Kms { key: "aws-kms:///redacted", .. }"#);

    let implicit = with(aws("k"), "AUTH", "implicit");
    let err = Kms::open(&Config::default(), &implicit).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
}

// ASSUME_ROLE runs STS AssumeRole first, signed with the URI's keys: wrong keys fail there.
// (moto's STS issues credentials for any role, but with IAM enforced its KMS answers 500 to
// them, so the whole chain cannot be exercised on moto.)
#[tokio::test]
async fn aws_kms_assume_role_asks_sts_first() {
    let key = moto_key().await;
    let canary = "CANARY-sts-secret-7c21";
    let role = "arn:aws:iam::123456789012:role/extconn-kms;external_id=x1";
    let wrong = with(with(aws(&key), "ASSUME_ROLE", role), "AWS_SECRET_ACCESS_KEY", canary);
    let err = kms::encrypt(&Config::default(), &wrong, MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    assert!(
        err.message().starts_with("aws-kms:///redacted: AssumeRole failed"),
        "{}",
        err.message()
    );
    assert_hidden(&err, canary);
}

// ---------------------------------------------------------------------------------------------
// gcp-kms on the fake Cloud KMS

const KEY_A: &str = "projects/extconn/locations/global/keyRings/ring/cryptoKeys/a";
const KEY_B: &str = "projects/extconn/locations/global/keyRings/ring/cryptoKeys/b";

async fn gcp_server() -> (GcpKmsServer, Config) {
    let server = GcpKmsServer::start().await;
    server.add_key(KEY_A);
    server.add_key(KEY_B);
    let config = Config { gcp_kms_endpoint: Some(server.endpoint()), ..Config::default() };
    (server, config)
}

fn gcp(key: &str, token: &str) -> Target {
    target("gcp-kms", key, &[("AUTH", "specified"), ("BEARER_TOKEN", token)])
}

#[tokio::test]
async fn gcp_kms_round_trips_with_a_bearer_token() {
    let (server, config) = gcp_server().await;
    let token = server.token();
    let (a, b) = (open(&config, &gcp(KEY_A, &token)), open(&config, &gcp(KEY_B, &token)));
    round_trip(&a, &b, ErrorKind::InvalidArgument).await;
    assert_eq!(a.key_identity(), format!("gcp-kms:{KEY_A}"));
}

#[tokio::test]
async fn gcp_kms_round_trips_with_service_account_credentials() {
    use base64::Engine as _;
    let (server, config) = gcp_server().await;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(server.service_account_json());
    let target = |key| target("gcp-kms", key, &[("CREDENTIALS", &credentials)]);
    round_trip(
        &open(&config, &target(KEY_A)),
        &open(&config, &target(KEY_B)),
        ErrorKind::InvalidArgument,
    )
    .await;
    assert!(server.hits("/token") >= 1, "no token was requested");
}

#[tokio::test]
async fn gcp_kms_failures_are_distinct_and_hide_secrets() {
    let (_server, config) = gcp_server().await;
    let canary = "CANARY-wrong-token-0a9b";
    let err = kms::encrypt(&config, &gcp(KEY_A, canary), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    assert!(err.message().contains("401 UNAUTHENTICATED"), "{}", err.message());
    assert_hidden(&err, canary);

    let token = _server.token();
    let missing = "projects/extconn/locations/global/keyRings/ring/cryptoKeys/missing";
    let err = kms::encrypt(&config, &gcp(missing, &token), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_clean(&err, "gcp-kms:///redacted");

    let closed = Config { gcp_kms_endpoint: Some(closed_endpoint()), ..Config::default() };
    let err = kms::encrypt(&closed, &gcp(KEY_A, &token), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.message());
    assert!(err.message().contains("cannot connect to the service"), "{}", err.message());
    assert_hidden(&err, &token);

    let err = Kms::open(&config, &target("gcp-kms", KEY_A, &[("CREDENTIALS", "bm90IGpzb24=")]))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert_hidden(&err, "bm90IGpzb24=");
}

// ---------------------------------------------------------------------------------------------
// azure-kms on the fake Key Vault

async fn vault_server() -> (AzureKeyVaultServer, Config) {
    let server = AzureKeyVaultServer::start("extconn-vault").await;
    server.add_key("a", "v1");
    server.add_key("b", "v1");
    let config = Config {
        azure_kms_endpoint: Some(server.endpoint()),
        azure_authority_host: Some(server.authority()),
        ..Config::default()
    };
    (server, config)
}

fn azure(server: &AzureKeyVaultServer, key: &str, secret: &str) -> Target {
    let (vault, tenant, client) = (server.vault(), server.tenant(), server.client_id());
    target(
        "azure-kms",
        key,
        &[
            ("AZURE_VAULT_NAME", &vault),
            ("AZURE_TENANT_ID", &tenant),
            ("AZURE_CLIENT_ID", &client),
            ("AZURE_CLIENT_SECRET", secret),
        ],
    )
}

#[tokio::test]
async fn azure_kms_round_trips_with_client_credentials() {
    let (server, config) = vault_server().await;
    let secret = server.client_secret();
    let a = open(&config, &azure(&server, "a/v1", &secret));
    let b = open(&config, &azure(&server, "b/v1", &secret));
    round_trip(&a, &b, ErrorKind::InvalidArgument).await;
    assert!(server.hits("/oauth2/v2.0/token") >= 1, "no token was requested");
    assert_eq!(a.key_identity(), "azure-kms:extconn-vault/a/v1");
}

#[tokio::test]
async fn azure_kms_failures_are_distinct_and_hide_secrets() {
    let (server, config) = vault_server().await;
    let canary = "CANARY-wrong-client-secret-3e8d";
    let err = kms::encrypt(&config, &azure(&server, "a/v1", canary), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    assert!(err.message().contains("token request failed"), "{}", err.message());
    assert!(err.message().contains("invalid_client"), "{}", err.message());
    assert_hidden(&err, canary);

    let secret = server.client_secret();
    let err =
        kms::encrypt(&config, &azure(&server, "missing/v1", &secret), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert!(err.message().contains("KeyNotFound"), "{}", err.message());
    assert_hidden(&err, &secret);

    let other_vault = with(azure(&server, "a/v1", &secret), "AZURE_VAULT_NAME", "other-vault");
    let err = kms::encrypt(&config, &other_vault, MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());

    let closed = Config { azure_kms_endpoint: Some(closed_endpoint()), ..config.clone() };
    let err = kms::encrypt(&closed, &azure(&server, "a/v1", &secret), MARKER).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.message());
    assert!(err.message().contains("encrypt failed: cannot connect"), "{}", err.message());
    assert_hidden(&err, &secret);

    let err = Kms::open(&config, &azure(&server, "no-version", &secret)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("must be of form 'id/version'"), "{}", err.message());

    let mut no_auth = azure(&server, "a/v1", &secret);
    no_auth.params.retain(|(k, _)| k != "AZURE_CLIENT_SECRET");
    let err = Kms::open(&config, &no_auth).unwrap_err();
    assert!(
        err.message().contains("requires explicit auth (RBAC) or implicit auth"),
        "{}",
        err.message()
    );
}

#[test]
fn unknown_kms_schemes_are_unsupported() {
    let err = Kms::open(&Config::default(), &target("hsm-kms", "k", &[])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}
