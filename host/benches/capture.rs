//! The changefeed's per-change work on this thread, without a sink: reading 10,000 captured
//! changes (`visit_changes`), transcoding their JSON and encoding CockroachDB messages into one
//! reused buffer (so without the node's allocation of each message), against decoding them
//! instead (`cargo bench -p extconn-host --bench capture`). The end-to-end
//! figure against a broker is `host/benches/changefeed.rs`; results in `docs/benchmarks.md`.

use criterion::{Criterion, criterion_group, criterion_main};
use extconn_host::changefeed::capture::{self, CapturedTable, Transcoder};
use extconn_host::changefeed::envelope::{self, EncodeOptions};

const CHANGES: i64 = 10_000;

/// A database with `CHANGES` captured inserts into the changefeed benchmark's table, stamped.
fn database() -> (tempfile::TempDir, rusqlite::Connection, CapturedTable) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let conn = extconn_host::databases::open_file(&dir.path().join("bench.sqlite"), true)
        .expect("a database");
    conn.execute_batch(
        "CREATE TABLE rides (id INTEGER PRIMARY KEY, rider TEXT, city TEXT, vehicle TEXT,
                             revenue REAL)",
    )
    .expect("the table");
    let table = capture::install(&conn, "rides").expect("capture");
    let tx = conn.unchecked_transaction().expect("a transaction");
    {
        let mut insert =
            tx.prepare("INSERT INTO rides VALUES (?1, ?2, ?3, ?4, ?5)").expect("the insert");
        for id in 0..CHANGES {
            let city = ["new york", "boston", "seattle", "los angeles"][id as usize % 4];
            insert
                .execute(rusqlite::params![
                    id,
                    format!("rider-{:08}", id * 7919 % 100_000_000),
                    city,
                    if id % 3 == 0 { "scooter" } else { "bike" },
                    (id % 10_000) as f64 / 100.0
                ])
                .expect("a row");
        }
    }
    tx.commit().expect("the commit");
    capture::resolve(&conn).expect("the stamps");
    (dir, conn, table)
}

fn per_change(c: &mut Criterion) {
    let (_dir, conn, table) = database();
    let options = EncodeOptions { updated: true, ..EncodeOptions::default() };
    let visit = |visit: &mut dyn FnMut(&capture::RawChange<'_>)| {
        capture::visit_changes(&conn, &["rides"], 0, CHANGES as usize, |change| {
            visit(change);
            Ok(())
        })
        .expect("the changes")
    };
    let mut group = c.benchmark_group("capture_10000_changes");
    group.sample_size(20);
    group.bench_function("read", |b| {
        b.iter(|| {
            visit(&mut |change| {
                std::hint::black_box(change);
            })
        })
    });
    let mut transcoder = Transcoder::default();
    group.bench_function("read_transcode", |b| {
        b.iter(|| {
            visit(&mut |change| {
                change
                    .with_event(&table, "rides", &mut transcoder, |e| {
                        std::hint::black_box(e.key.len())
                    })
                    .expect("a change");
            })
        })
    });
    let mut out = Vec::new();
    group.bench_function("read_transcode_encode", |b| {
        b.iter(|| {
            visit(&mut |change| {
                change
                    .with_event(&table, "rides", &mut transcoder, |e| {
                        out.clear();
                        envelope::write_key(&mut out, e.key);
                        envelope::write_value(&mut out, &options, e);
                    })
                    .expect("a change");
            })
        })
    });
    let mut decoded_names = Vec::new();
    group.bench_function("read_decode_encode", |b| {
        b.iter(|| {
            visit(&mut |change| {
                let change = change.decode("rides", &mut decoded_names).expect("a change");
                let event = change.event(&table, "rides");
                out.clear();
                envelope::write_key(&mut out, event.key);
                envelope::write_value(&mut out, &options, &event);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, per_change);
criterion_main!(benches);
