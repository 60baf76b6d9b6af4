//! The wasmtime embedding, through the real component built from `plugin/`.

mod common;

use common::{config, err, ok, root, runtime};
use extconn_host::{
    CacheStatus, CompileCache, ErrorKind, Host, Outcome, Runtime, RuntimeConfig, RuntimeError,
    runtime::embedded_component,
};
use std::time::Duration;

#[test]
fn the_component_has_no_imports() {
    let runtime = runtime();
    let imports = runtime.imports();
    assert!(imports.is_empty(), "the component must be sans-IO, but it imports {imports:?}");
    let exports = runtime.exports();
    assert!(
        exports.iter().any(|e| e == "extconn:connections/connections@0.2.0"),
        "exports: {exports:?}"
    );
}

#[test]
fn the_compiled_component_is_cached_and_a_bad_cache_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cached = || {
        Runtime::new(RuntimeConfig {
            cache: CompileCache::Dir(dir.path().join("cache")),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    // Older builds' files: storing a new one keeps only the most recent few.
    std::fs::create_dir_all(dir.path().join("cache")).unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for i in 0..5 {
        let path = dir.path().join("cache").join(format!("extconn-old{i}.cwasm"));
        let file = std::fs::File::create(&path).unwrap();
        file.set_modified(old - Duration::from_secs(i)).unwrap();
    }
    let first = cached();
    assert_eq!(first.cache_status(), CacheStatus::Stored);
    let mut kept: Vec<String> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("extconn-old"))
        .collect();
    kept.sort();
    assert_eq!(kept, ["extconn-old0.cwasm", "extconn-old1.cwasm", "extconn-old2.cwasm"]);
    for name in kept {
        std::fs::remove_file(dir.path().join("cache").join(name)).unwrap();
    }
    let file = first.cache_file().unwrap().to_owned();
    assert!(file.is_file(), "{}", file.display());
    assert!(file.file_name().unwrap().to_str().unwrap().ends_with(".cwasm"));

    let second = cached();
    assert_eq!(second.cache_status(), CacheStatus::Hit);
    assert_eq!(second.instantiate().unwrap().version().unwrap(), env!("CARGO_PKG_VERSION"));

    // A corrupt file is ignored, rebuilt, and works. (A new file, as another process would
    // leave it: truncating one that live runtimes map would pull their code from under them.)
    drop((first, second));
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"\x7fELF this is not a compiled component").unwrap();
    let rebuilt = cached();
    assert_eq!(rebuilt.cache_status(), CacheStatus::Stored);
    assert_eq!(rebuilt.instantiate().unwrap().version().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(cached().cache_status(), CacheStatus::Hit);

    // No temporary files are left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn caching_can_be_off() {
    let runtime = Runtime::new(RuntimeConfig { cache: CompileCache::Off, ..config() }).unwrap();
    assert_eq!(runtime.cache_status(), CacheStatus::Off);
    assert_eq!(runtime.cache_file(), None);
}

#[test]
fn the_pure_exports_answer() {
    let mut plugin = runtime().instantiate().unwrap();
    assert_eq!(plugin.version().unwrap(), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        plugin
            .redact_uri("s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret")
            .unwrap(),
        "s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted"
    );
    let many = plugin
        .redact_uris(&["nodelocal://1/a".into(), "s3://b?AWS_SESSION_TOKEN=t".into()])
        .unwrap();
    assert_eq!(many, ["nodelocal://1/a", "s3://b?AWS_SESSION_TOKEN=redacted"]);
    let info = plugin.parse_uri("nodelocal://1/foo/bar").unwrap().unwrap();
    assert_eq!((info.scheme.as_str(), info.host.as_str()), ("nodelocal", "1"));
    let bad = plugin.parse_uri("nosuch://x").unwrap().unwrap_err();
    assert!(bad.message.contains("nosuch"), "{bad:?}");
}

/// A component built for WIT `extconn:connections@0.1.0`: this repository's plugin with its
/// `wit-0-1` feature (the 0.1.0 bindings), built in release for wasm32 into its own target
/// directory (`target/plugin-wasm-0.1.0`, so it never waits on the outer build's lock) and
/// componentized as `build.rs` does the current one.
fn component_for_wit_0_1_0() -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir = workspace.join("target").join("plugin-wasm-0.1.0");
    let mut cargo = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cargo
        .current_dir(workspace)
        .args(["build", "--package", "extconn-plugin", "--lib", "--release"])
        .args(["--features", "wit-0-1", "--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir);
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR"] {
        cargo.env_remove(var);
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the plugin for WIT 0.1.0 failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let core = std::fs::read(target_dir.join("wasm32-unknown-unknown/release/extconn_plugin.wasm"))
        .expect("the core module was built");
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|encoder| encoder.validate(true).encode())
        .expect("the 0.1.0 plugin componentizes");
    let file = target_dir.join("extconn-0.1.0.component.wasm");
    std::fs::write(&file, component).unwrap();
    file
}

/// A component built for WIT 0.1.0 still runs: the host supports every released WIT version.
#[test]
fn a_component_built_for_wit_0_1_0_still_runs() {
    let file = component_for_wit_0_1_0();
    let runtime = Runtime::new(RuntimeConfig { plugin: Some(file), ..config() }).unwrap();
    let mut plugin = runtime.instantiate().unwrap();
    assert_eq!(plugin.wit_version(), "0.1.0");
    let info = plugin.parse_uri("s3://b/p?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=s").unwrap();
    let info = info.unwrap();
    assert_eq!((info.scheme.as_str(), info.host.as_str()), ("s3", "b"));
    assert_eq!(info.redacted, "s3://b/p?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=redacted");
    let bad = plugin.parse_uris(&["nosuch://x".into()]).unwrap();
    assert!(bad[0].as_ref().unwrap_err().message.contains("nosuch"), "{bad:?}");
    drop(plugin);

    // Statements: requests and responses cross between the two versions' bindings.
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::open(runtime, dir.path()).unwrap();
    let created = host.execute(
        &root(),
        "CREATE EXTERNAL CONNECTION old AS 'nodelocal://1/old'; SHOW EXTERNAL CONNECTIONS",
    );
    assert!(created.iter().all(|r| r.outcome.is_ok()), "{created:?}");
    assert!(dir.path().join("extern/old/crdb_external_storage_location").exists());
    let shown = format!("{:?}", created[1].outcome);
    assert!(shown.contains("nodelocal://1/old"), "{shown}");
    let e = host.execute(&root(), "CREATE EXTERNAL CONNECTION old AS 'nodelocal://1/x'");
    assert_eq!(e[0].outcome.as_ref().unwrap_err().sqlstate, "42710", "{e:?}");
    let dropped = host.execute(&root(), "DROP EXTERNAL CONNECTION old");
    assert!(dropped[0].outcome.is_ok(), "{dropped:?}");
}

#[test]
fn another_component_file_can_be_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("extconn.wasm");
    std::fs::write(&file, embedded_component()).unwrap();
    let runtime = Runtime::new(RuntimeConfig { plugin: Some(file), ..config() }).unwrap();
    assert_eq!(runtime.instantiate().unwrap().version().unwrap(), env!("CARGO_PKG_VERSION"));

    let missing = dir.path().join("missing.wasm");
    let e = Runtime::new(RuntimeConfig { plugin: Some(missing), ..config() }).unwrap_err();
    assert!(matches!(e, RuntimeError::ReadPlugin { .. }), "{e:?}");

    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"not wasm at all").unwrap();
    let e = Runtime::new(RuntimeConfig { plugin: Some(garbage), ..config() }).unwrap_err();
    assert!(matches!(e, RuntimeError::Compile { .. }), "{e:?}");
}

#[test]
fn running_out_of_memory_fails_one_statement_not_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig { memory_limit: 2 << 20, ..config() }).unwrap();
    let mut host = Host::open(runtime, dir.path()).unwrap();
    let huge =
        format!("CREATE EXTERNAL CONNECTION big AS 'nodelocal://1/{}'", "x".repeat(10 << 20));
    let e = err(&mut host, &root(), &huge);
    assert_eq!((e.kind, e.sqlstate.as_str()), (ErrorKind::Internal, "XX000"), "{e:?}");
    assert_eq!(e.message, "the extconn component failed: out of memory (the limit is 2 MiB)");
    // The same runtime serves the next statement with a fresh instance.
    let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    assert!(matches!(results[0].outcome, Ok(Outcome::Rows(_))), "{results:?}");
}

#[test]
fn running_out_of_time_fails_one_statement_not_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        call_deadline: Duration::from_millis(1),
        memory_limit: 1 << 30,
        ..config()
    })
    .unwrap();
    let mut host = Host::open(runtime, dir.path()).unwrap();
    // Just under the limits (1 MiB, 10,000 statements): lexing it alone takes milliseconds.
    let long = "SHOW EXTERNAL CONNECTIONS /* a comment that makes the text longer to lex */ ;\n"
        .repeat(9_999);
    assert!(long.len() < 1 << 20);
    let e = err(&mut host, &root(), &long);
    assert_eq!((e.kind, e.sqlstate.as_str()), (ErrorKind::Internal, "XX000"), "{e:?}");
    assert_eq!(e.message, "the extconn component failed: a call ran longer than its 1ms deadline");
    // The runtime is not poisoned: later statements get fresh instances. A small statement can
    // itself overrun a 1 ms deadline on a loaded machine, so it may take a few tries — but the
    // only failure allowed is that same deadline.
    let mut succeeded = false;
    for _ in 0..20 {
        let results = host.execute(&root(), "SHOW EXTERNAL CONNECTIONS");
        match &results.last().expect("one result").outcome {
            Ok(_) => {
                succeeded = true;
                break;
            }
            Err(e) => assert_eq!(
                e.message,
                "the extconn component failed: a call ran longer than its 1ms deadline"
            ),
        }
    }
    assert!(succeeded, "no statement succeeded after the deadline trap");
}

#[test]
fn instances_of_clean_scripts_are_reused_and_spent_or_grown_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig { memory_limit: 64 << 20, ..config() }).unwrap();
    let mut host = Host::open(runtime.clone(), dir.path()).unwrap();
    assert_eq!(runtime.idle_instances(), 0);
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION a AS 'nodelocal://1/a'");
    assert_eq!(runtime.idle_instances(), 1, "a clean script hands its instance back");
    // The next script takes that instance and hands it back: one stays idle, and it works.
    let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS; DROP EXTERNAL CONNECTION a");
    assert!(matches!(&results[0].outcome, Ok(Outcome::Rows(r)) if r.rows.len() == 1));
    assert_eq!(runtime.idle_instances(), 1);
    // A statement error is a clean end too.
    err(&mut host, &root(), "SHOW CREATE EXTERNAL CONNECTION nope");
    assert_eq!(runtime.idle_instances(), 1);
    // An instance whose memory grew past 8 MiB is dropped rather than kept.
    let big = format!("CREATE EXTERNAL CONNECTION big AS 'nodelocal://1/{}'", "x".repeat(9 << 20));
    err(&mut host, &root(), &big);
    assert_eq!(runtime.idle_instances(), 0, "a grown instance was kept");

    // A trapped instance is spent: never handed back.
    let small = Runtime::new(RuntimeConfig { memory_limit: 2 << 20, ..config() }).unwrap();
    let mut host = Host::open(small.clone(), dir.path()).unwrap();
    let huge =
        format!("CREATE EXTERNAL CONNECTION big AS 'nodelocal://1/{}'", "x".repeat(10 << 20));
    let e = err(&mut host, &root(), &huge);
    assert!(e.message.contains("out of memory"), "{e:?}");
    assert_eq!(small.idle_instances(), 0, "a spent instance was kept");
    ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    assert_eq!(small.idle_instances(), 1);
}
