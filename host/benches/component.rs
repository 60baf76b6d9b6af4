//! The component against the same core compiled natively, in one run
//! (`cargo bench -p extconn-host --bench component`, or `scripts/bench`).
//!
//! * `uris_1000`: parse + redact 1,000 URIs cycled from the plugin's conformance tables (valid
//!   and invalid, every scheme). Native `uri::info` + `uri::redact`; the component's batch
//!   exports on one instance; the component's single-URI exports, one call per URI each.
//! * `create_drop_parse_only`: `CREATE EXTERNAL CONNECTION … ; DROP …` with validation skipped.
//!   The component through `Host::execute` (an instance per script included); natively through
//!   `exec::Script` with a responder answering from the same `Catalog`, so both sides do the
//!   same SQLite work. Once over a catalog file in a temp dir, once over SQLite `:memory:`.
//! * `instantiate`: a fresh instance from the linked `InstancePre`, dropped.
//! * `call`: one call's fixed cost (`version`), one `parse-uri` native and in the component, and
//!   `parse-uri` as the first call of a fresh instance (what a script's first step pays).
//!
//! There is no pure in-memory responder for the component side: `Host`'s I/O and the statement
//! calls of `Plugin` are private, so the cheapest catalog it can use is SQLite `:memory:`.
//!
//! Results are in `docs/benchmarks.md`.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use extconn_host::catalog::{self, Catalog};
use extconn_host::{CompileCache, Host, Outcome, Runtime, RuntimeConfig, StatementResult};
use extconn_plugin::exec::Script;
use extconn_plugin::model::{self as m, Request, Response, Step};
use extconn_plugin::uri::{self, cases};

const URI_COUNT: usize = 1_000;

const CREATE_DROP: &str = "CREATE EXTERNAL CONNECTION b AS \
    's3://bucket/path?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret'; \
    DROP EXTERNAL CONNECTION b";

/// The compile cache the host's tests use too (`target/tmp`): the component is compiled once.
fn runtime() -> Runtime {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("extconn-cwasm-cache");
    let runtime =
        Runtime::new(RuntimeConfig { cache: CompileCache::Dir(cache), ..RuntimeConfig::default() })
            .expect("the embedded component loads");
    let cwasm = runtime.cache_file().and_then(|f| std::fs::metadata(f).ok()).map(|m| m.len());
    eprintln!(
        "component: {} bytes; precompiled .cwasm: {} bytes ({:?})",
        extconn_host::runtime::embedded_component().len(),
        cwasm.map_or_else(|| "?".to_owned(), |n| n.to_string()),
        runtime.cache_status(),
    );
    runtime
}

/// 1,000 URIs cycled over every table: accepted, refused and redaction inputs.
fn mixed_uris() -> Vec<String> {
    let all: Vec<&str> = cases::CREATE_OK_CASES
        .iter()
        .map(|case| case.0)
        .chain(cases::CREATE_ERROR_CASES.iter().map(|case| case.0))
        .chain(cases::REDACT_CASES.iter().map(|case| case.0))
        .collect();
    all.iter().cycle().take(URI_COUNT).map(|u| (*u).to_owned()).collect()
}

fn uris(c: &mut Criterion, runtime: &Runtime) {
    let uris = mixed_uris();
    let mut plugin = runtime.instantiate().expect("instantiate");

    // Both sides compute the same thing before either is timed.
    let native: Vec<_> = uris.iter().map(|u| (uri::info(u).is_ok(), uri::redact(u))).collect();
    let parsed = plugin.parse_uris(&uris).expect("parse-uris");
    let redacted = plugin.redact_uris(&uris).expect("redact-uris");
    let component: Vec<_> = parsed.iter().map(Result::is_ok).zip(redacted).collect();
    assert_eq!(native, component, "the component and the native core disagree");
    let valid = native.iter().filter(|(ok, _)| *ok).count();
    eprintln!("uris: {URI_COUNT} URIs, {valid} valid, {} refused", URI_COUNT - valid);

    let mut group = c.benchmark_group("uris_1000");
    group.throughput(Throughput::Elements(URI_COUNT as u64));
    group.bench_function("native", |b| {
        b.iter(|| {
            for u in &uris {
                std::hint::black_box(uri::info(u).ok());
                std::hint::black_box(uri::redact(u));
            }
        });
    });
    group.bench_function("component_batch", |b| {
        b.iter(|| {
            std::hint::black_box(plugin.parse_uris(&uris).expect("parse-uris"));
            std::hint::black_box(plugin.redact_uris(&uris).expect("redact-uris"));
        });
    });
    group.bench_function("component_per_uri", |b| {
        b.iter(|| {
            for u in &uris {
                std::hint::black_box(plugin.parse_uri(u).expect("parse-uri").ok());
                std::hint::black_box(plugin.redact_uri(u).expect("redact-uri"));
            }
        });
    });
    group.finish();
}

fn create_drop(c: &mut Criterion, runtime: &Runtime) {
    let session = extconn_host::Session {
        validation: extconn_host::Validation::ParseOnly,
        ..Default::default()
    };
    let native_session =
        m::Session { validation: m::Validation::ParseOnly, ..m::Session::default() };

    let dirs = [tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir")];
    let mut host_file = Host::open(runtime.clone(), dirs[0].path()).expect("open host");
    let mut native_file = Catalog::open(dirs[1].path()).expect("open catalog");
    let memory_dir = tempfile::tempdir().expect("tempdir");
    let mut host_memory = Host::with_catalog(
        runtime.clone(),
        Catalog::open_in_memory().expect("catalog"),
        memory_dir.path(),
    )
    .expect("open host");
    let mut native_memory = Catalog::open_in_memory().expect("catalog");

    let mut group = c.benchmark_group("create_drop_parse_only");
    for (name, host, catalog) in [
        ("sqlite_file", &mut host_file, &mut native_file),
        ("sqlite_memory", &mut host_memory, &mut native_memory),
    ] {
        group.bench_function(format!("native/{name}"), |b| {
            b.iter(|| run_native(catalog, &native_session, CREATE_DROP));
        });
        group.bench_function(format!("component/{name}"), |b| {
            b.iter(|| {
                let results = host.execute(&session, CREATE_DROP);
                let done = |r: &StatementResult| matches!(r.outcome, Ok(Outcome::Command(_)));
                assert!(
                    results.len() == 2 && results.iter().all(done),
                    "{CREATE_DROP}\n  gave: {results:?}"
                );
            });
        });
    }
    group.finish();
}

fn instantiate(c: &mut Criterion, runtime: &Runtime) {
    c.bench_function("instantiate", |b| {
        // `iter` drops each result inside the timed loop: the slot goes back to the pool.
        b.iter(|| runtime.instantiate().expect("instantiate"));
    });
}

/// One call's fixed cost, and what a fresh instance's first call adds to it.
fn calls(c: &mut Criterion, runtime: &Runtime) {
    const URI: &str = "s3://bucket/path?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret";
    let mut plugin = runtime.instantiate().expect("instantiate");
    let mut group = c.benchmark_group("call");
    group.bench_function("component/version", |b| {
        b.iter(|| plugin.version().expect("version"));
    });
    group.bench_function("native/parse_uri", |b| {
        b.iter(|| uri::info(std::hint::black_box(URI)).expect("valid"));
    });
    group.bench_function("component/parse_uri", |b| {
        b.iter(|| plugin.parse_uri(URI).expect("parse-uri").expect("valid"));
    });
    group.bench_function("component/instantiate_then_parse_uri", |b| {
        b.iter(|| {
            let mut fresh = runtime.instantiate().expect("instantiate");
            fresh.parse_uri(URI).expect("parse-uri").expect("valid")
        });
    });
    group.finish();
}

/// Drives `sql` to the end, answering from `catalog`; every statement must succeed.
fn run_native(catalog: &mut Catalog, session: &m::Session, sql: &str) {
    let mut script = Script::new(session.clone(), sql);
    let mut responses = Vec::new();
    let mut finished = 0;
    loop {
        match script.resume(std::mem::take(&mut responses)) {
            Step::Io(requests) => {
                responses = requests.into_iter().map(|r| answer(catalog, r)).collect()
            }
            Step::Finished(Ok(m::StatementResult { outcome: m::Outcome::Command(_), .. })) => {
                finished += 1;
            }
            Step::Finished(other) => panic!("{sql}\n  failed: {other:?}"),
            Step::End => break,
        }
    }
    assert_eq!(finished, 2, "{sql}");
}

/// What `Host` does for the requests CREATE and DROP issue, against the same catalog.
fn answer(catalog: &mut Catalog, request: Request) -> Response {
    match request {
        Request::ReadPrincipal(name) => Response::Principal(
            catalog.read_principal(&name).expect("read-principal").map(principal),
        ),
        Request::ReadConnection(name) => Response::Connection(
            catalog.read_connection(&name).expect("read-connection").map(connection),
        ),
        Request::ReadGrants(object) => Response::Grants(
            catalog
                .read_grants(&grant_object_to_catalog(object))
                .expect("read-grants")
                .into_iter()
                .map(grant)
                .collect(),
        ),
        Request::Apply(mutations) => {
            let mutations: Vec<_> = mutations.into_iter().map(mutation).collect();
            let applied = catalog.apply(&mutations).expect("apply");
            Response::Applied(applied.map_err(|failed| failed.index))
        }
        Request::Now => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is after 1970");
            Response::Now(i64::try_from(now.as_micros()).expect("fits"))
        }
        other => panic!("the native bench responder does not answer {other:?}"),
    }
}

fn principal(p: catalog::Principal) -> m::Principal {
    m::Principal {
        name: p.name,
        is_role: p.is_role,
        can_login: p.can_login,
        roles: p.roles,
        member_of: p.member_of,
        admin_of: p.admin_of,
        system_grants: p.system_grants.into_iter().map(grant).collect(),
    }
}

fn connection(c: catalog::Connection) -> m::Connection {
    m::Connection {
        name: c.name,
        connection_type: match c.connection_type {
            catalog::ConnectionType::Storage => m::ConnectionType::Storage,
            catalog::ConnectionType::Kms => m::ConnectionType::Kms,
            catalog::ConnectionType::ForeignData => m::ConnectionType::ForeignData,
        },
        provider: c.provider,
        uri: c.uri,
        owner: c.owner,
        created: c.created,
        updated: c.updated,
        version: c.version,
    }
}

fn connection_to_catalog(c: m::Connection) -> catalog::Connection {
    catalog::Connection {
        name: c.name,
        connection_type: match c.connection_type {
            m::ConnectionType::Storage => catalog::ConnectionType::Storage,
            m::ConnectionType::Kms => catalog::ConnectionType::Kms,
            m::ConnectionType::ForeignData => catalog::ConnectionType::ForeignData,
        },
        provider: c.provider,
        uri: c.uri,
        owner: c.owner,
        created: c.created,
        updated: c.updated,
        version: c.version,
    }
}

fn grant(g: catalog::Grant) -> m::Grant {
    m::Grant {
        object: match g.object {
            catalog::GrantObject::System => m::GrantObject::System,
            catalog::GrantObject::Connection(name) => m::GrantObject::Connection(name),
        },
        grantee: g.grantee,
        privilege: g.privilege,
        grantable: g.grantable,
    }
}

fn grant_object_to_catalog(object: m::GrantObject) -> catalog::GrantObject {
    match object {
        m::GrantObject::System => catalog::GrantObject::System,
        m::GrantObject::Connection(name) => catalog::GrantObject::Connection(name),
    }
}

fn mutation(mutation: m::Mutation) -> catalog::Mutation {
    match mutation {
        m::Mutation::InsertConnection(c) => {
            catalog::Mutation::InsertConnection(connection_to_catalog(c))
        }
        m::Mutation::DeleteConnection(name) => catalog::Mutation::DeleteConnection(name),
        m::Mutation::PutGrant(g) => catalog::Mutation::PutGrant(catalog::Grant {
            object: grant_object_to_catalog(g.object),
            grantee: g.grantee,
            privilege: g.privilege,
            grantable: g.grantable,
        }),
        other => panic!("the native bench responder does not apply {other:?}"),
    }
}

fn benches(c: &mut Criterion) {
    let runtime = runtime();
    uris(c, &runtime);
    create_drop(c, &runtime);
    instantiate(c, &runtime);
    calls(c, &runtime);
}

criterion_group! {
    name = component;
    // Two cores: modest times, enough samples for a stable median.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(40);
    targets = benches
}
criterion_main!(component);
