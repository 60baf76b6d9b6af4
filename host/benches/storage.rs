//! Storage work through the component against the raw object_store calls it makes:
//!
//! * `create_validation/*`: `CREATE EXTERNAL CONNECTION` with full validation (`Host::execute`:
//!   a fresh component instance, the catalog reads, the sentinel put, list and get, the catalog
//!   insert) against the sentinel's put, list and get on an already opened `Location`.
//! * `check/*`: `CHECK EXTERNAL CONNECTION … WITH TRANSFER = '8 MiB'` (one worker, one round:
//!   write, read back, delete) against `Location::put`, `get` and `delete` of the same bytes.
//!
//! On nodelocal (a temp dir) and on S3 (moto, from the variables `scripts/services start`
//! prints; the bench stops with what to do when they are missing). Results and the machine
//! are in docs/benchmarks.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use extconn_host::{CompileCache, Host, Outcome, Runtime, RuntimeConfig, Session, Value};
use extconn_providers::{Target, storage};

const SENTINEL: &str = "crdb_external_storage_location";
const SENTINEL_TEXT: &str =
    "a CockroachDB cluster has been configured to read and write to this location";
const TRANSFER: usize = 8 << 20;

fn env(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set: the storage benchmarks run S3 against moto on 127.0.0.1; \
             first eval \"$(scripts/services start)\""
        )
    })
}

fn q(value: &str) -> String {
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

/// (name, URI for statements, the same location as a providers target).
fn locations() -> Vec<(&'static str, String, Target)> {
    let path = format!("bench-{}", std::process::id());
    let s3_params = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
        ("AWS_ENDPOINT".to_owned(), env("EXTCONN_TEST_S3_ENDPOINT")),
        ("AWS_USE_PATH_STYLE".to_owned(), "true".to_owned()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
    ];
    let query: Vec<String> = s3_params.iter().map(|(k, v)| format!("{k}={}", q(v))).collect();
    let mut s3 = Target::new("s3", "extconn-host", &path);
    s3.params = s3_params;
    vec![
        ("nodelocal", format!("nodelocal://1/{path}"), Target::new("nodelocal", "1", &path)),
        ("s3", format!("s3://extconn-host/{path}?{}", query.join("&")), s3),
    ]
}

fn open_host(dir: &std::path::Path) -> Host {
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("extconn-cwasm-cache");
    let runtime =
        Runtime::new(RuntimeConfig { cache: CompileCache::Dir(cache), ..RuntimeConfig::default() })
            .expect("the embedded component loads");
    Host::open(runtime, dir).expect("host")
}

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio")
}

fn create_validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("create_validation");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let dir = tempfile::tempdir().unwrap();
    let mut host = open_host(dir.path());
    let config = extconn_host::provider_config(dir.path());
    let rt = tokio();
    let session = Session::default();
    for (name, uri, target) in locations() {
        let mut n = 0u64;
        group.bench_function(BenchmarkId::new("component_create_full", name), |b| {
            b.iter(|| {
                n += 1;
                let sql = format!("CREATE EXTERNAL CONNECTION c_{name}_{n} AS '{uri}'");
                let results = host.execute(&session, &sql);
                assert!(results[0].outcome.is_ok(), "{results:?}");
            })
        });
        let location = storage::open(&config, &target).unwrap();
        group.bench_function(BenchmarkId::new("raw_put_list_get", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    location.put(SENTINEL, SENTINEL_TEXT.as_bytes().to_vec()).await.unwrap();
                    let listed = location.list("", None).await.unwrap();
                    assert!(listed.iter().any(|o| o.key == SENTINEL));
                    black_box(location.get(SENTINEL).await.unwrap());
                })
            })
        });
    }
    group.finish();
}

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(TRANSFER as u64));
    let dir = tempfile::tempdir().unwrap();
    let mut host = open_host(dir.path());
    let config = extconn_host::provider_config(dir.path());
    let rt = tokio();
    let session = Session::default();
    let data: Vec<u8> = (0..TRANSFER).map(|i| (i * 7 % 251) as u8).collect();
    for (name, uri, target) in locations() {
        let sql = format!("CHECK EXTERNAL CONNECTION '{uri}' WITH TRANSFER = '8 MiB'");
        group.bench_function(BenchmarkId::new("component_check", name), |b| {
            b.iter(|| {
                let results = host.execute(&session, &sql);
                let Some(Ok(Outcome::Rows(rows))) = results.last().map(|r| &r.outcome) else {
                    panic!("{results:?}")
                };
                assert_eq!(rows.rows[0][2], Value::Boolean(true), "{rows:?}");
            })
        });
        let location = storage::open(&config, &target).unwrap();
        group.bench_function(BenchmarkId::new("raw_put_get_delete", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    location.put("raw-object", data.clone()).await.unwrap();
                    let read = location.get("raw-object").await.unwrap();
                    assert_eq!(read.len(), TRANSFER);
                    location.delete("raw-object").await.unwrap();
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, create_validation, check);
criterion_main!(benches);
