//! azure-blob (and its aliases) against Azurite (started by `scripts/services`), reached
//! through the host's endpoint override.

mod conformance;
mod emulators;

use emulators::{azure, closed_endpoint, config, runtime, unique, with};
use extconn_providers::{Config, ErrorKind, storage};

const CONTAINER: &str = "extconn-test";

#[test]
fn azure_passes_the_conformance_suite() {
    for scheme in ["azure-blob", "azure", "azure-storage"] {
        let target = azure(scheme, CONTAINER, &unique(&format!("{scheme}-conf")));
        let location = storage::open(&config(), &target).unwrap();
        runtime().block_on(conformance::put_get_delete_list(&location));
    }
}

#[test]
fn azure_writes_large_objects_in_parts() {
    let target = azure("azure-blob", CONTAINER, &unique("azure-large"));
    let location = storage::open(&config(), &target).unwrap();
    runtime().block_on(conformance::large_object(&location, 100 << 20));
}

#[test]
fn azure_wrong_key_is_permission_denied_and_not_echoed() {
    // Valid base64, the wrong key.
    let secret = "Q0FOQVJZLXdyb25nLWtleS0zYjlh";
    let target = with(azure("azure-blob", CONTAINER, "p"), "AZURE_ACCOUNT_KEY", secret);
    let location = storage::open(&config(), &target).unwrap();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{}", err.message());
    assert!(
        err.message().starts_with("azure-blob://extconn-test/p/k: permission denied"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains(secret), "{}", err.message());
}

#[test]
fn azure_missing_container_is_not_found() {
    let location =
        storage::open(&config(), &azure("azure-blob", "no-such-container", "p")).unwrap();
    let err = runtime().block_on(location.get("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
    assert_eq!(
        err.message(),
        "azure-blob://no-such-container/p/k: get failed: the bucket or container does not exist"
    );
    let err = runtime().block_on(location.list("", None)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", err.message());
}

#[test]
fn azure_stopped_service_is_unavailable() {
    let config = Config { azure_blob_endpoint: Some(closed_endpoint()), ..config() };
    let location = storage::open(&config, &azure("azure-blob", CONTAINER, "p")).unwrap();
    let err = runtime().block_on(location.put("k", b"v".to_vec())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{}", err.message());
    // The OS's text follows ("(os error 111)" on Linux).
    let expected = "azure-blob://extconn-test/p/k: put failed: \
         cannot connect to the service: Connection refused";
    assert!(err.message().starts_with(expected), "{}", err.message());
}

#[test]
fn azure_environment_and_auth_are_checked() {
    let target = with(azure("azure-blob", CONTAINER, "p"), "AZURE_ENVIRONMENT", "Mars");
    let err = storage::open(&config(), &target).unwrap_err();
    assert_eq!(
        err.message(),
        "azure-blob://extconn-test/p: AZURE_ENVIRONMENT names no Azure cloud"
    );
    // Any case, as the component accepts it.
    let target = with(azure("azure-blob", CONTAINER, "p"), "AZURE_ENVIRONMENT", "azurechinacloud");
    storage::open(&config(), &target).unwrap();
    let implicit = with(azure("azure-blob", CONTAINER, "p"), "AUTH", "implicit");
    let err = storage::open(&config(), &implicit).unwrap_err();
    assert!(err.message().contains("AZURE_ACCOUNT_KEY cannot be given with AUTH=implicit"));
}
