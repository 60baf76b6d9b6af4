//! Compile-time checks that the public host types can cross threads (tokio's
//! `tests/async_send_sync.rs` style): this file failing to compile is the failure.

#![allow(dead_code)]

use extconn_host::catalog::{Connection, Grant, Mutation, Principal};
use extconn_host::output::Format;
use extconn_host::{
    Catalog, CatalogError, Host, HostError, Plugin, Runtime, RuntimeConfig, RuntimeError, Session,
    SqlError, StatementResult, UriInfo,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn send_sync<T: Send + Sync>() {}

const _: fn() = || {
    // Shared across threads.
    send_sync::<Runtime>();
    send_sync::<RuntimeConfig>();
    send_sync::<Session>();
    send_sync::<Format>();
    // Results and errors travel anywhere.
    send_sync::<StatementResult>();
    send_sync::<SqlError>();
    send_sync::<UriInfo>();
    send_sync::<RuntimeError>();
    send_sync::<HostError>();
    send_sync::<CatalogError>();
    send_sync::<Connection>();
    send_sync::<Grant>();
    send_sync::<Principal>();
    send_sync::<Mutation>();
    send_sync::<extconn_providers::Target>();
    send_sync::<extconn_providers::Error>();
    send_sync::<extconn_providers::storage::Location>();
    // One per thread, movable between threads: a SQLite connection and a wasmtime store.
    send::<Host>();
    send::<Catalog>();
    send::<Plugin>();
};

#[test]
fn a_runtime_is_shared_by_threads() {
    // The assertions above are the test; this keeps the file a test target that runs.
    let _ = sync::<Runtime>;
}
