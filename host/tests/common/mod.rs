//! Shared by the host's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use extconn_host::{CompileCache, Host, Runtime, RuntimeConfig, Session, StatementResult};

/// One compile cache for every test binary: the first test compiles, the rest load.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("extconn-cwasm-cache")
}

/// The runtime config every test starts from: the embedded component, the shared cache.
pub fn config() -> RuntimeConfig {
    RuntimeConfig { cache: CompileCache::Dir(cache_dir()), ..RuntimeConfig::default() }
}

pub fn runtime() -> Runtime {
    Runtime::new(config()).expect("the embedded component loads")
}

/// A host over a fresh data directory (kept alive by the returned guard).
pub fn host() -> (Host, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Host::open(runtime(), dir.path()).unwrap(), dir)
}

pub fn root() -> Session {
    Session::default()
}

/// Runs `sql` and expects every statement to succeed.
pub fn ok(host: &mut Host, session: &Session, sql: &str) -> Vec<StatementResult> {
    let results = host.execute(session, sql);
    for result in &results {
        assert!(result.outcome.is_ok(), "statement failed:\n  {sql}\ngot:\n  {result:?}");
    }
    results
}

/// Runs `sql` and returns the error that stopped it.
pub fn err(host: &mut Host, session: &Session, sql: &str) -> extconn_host::SqlError {
    let results = host.execute(session, sql);
    match results.last().map(|r| &r.outcome) {
        Some(Err(e)) => e.clone(),
        _ => panic!("expected an error from:\n  {sql}\ngot:\n  {results:?}"),
    }
}

/// A variable `scripts/services start` exports; its absence fails the test with what to do.
pub fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: these tests run against services on 127.0.0.1 (moto, \
             fake-gcs-server, Azurite, tansu). Run them with scripts/test, or first \
             eval \"$(scripts/services start)\" (and scripts/services stop afterwards)"
        ),
    }
}

/// Percent-encodes a query value (secrets hold `/` and `+`).
pub fn q(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A name no other test or earlier run uses: `<test>-<pid>-<nanos>`.
pub fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}
