//! Kafka producer throughput to tansu (from `eval "$(scripts/services start)"`), messages/s
//! and bytes/s, for the changefeed benchmark to compare against:
//!
//! * `produce/raw_rdkafka`: a bare `FutureProducer` (idempotent, acks=all, the settings the
//!   sink uses) enqueueing `BATCH` keyed messages and awaiting every acknowledgement.
//! * `produce/sink_emit`: the same messages through `KafkaSink::emit`.
//!
//! Short on purpose (a few seconds each): `cargo bench -p extconn-providers --bench kafka`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use extconn_providers::Target;
use extconn_providers::sink::{Message, Sink, SinkOptions, kafka::KafkaSink};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const BATCH: usize = 10_000;
const VALUE_BYTES: usize = 256;

fn brokers() -> String {
    std::env::var("EXTCONN_TEST_KAFKA_BROKERS").ok().filter(|v| !v.is_empty()).unwrap_or_else(
        || {
            panic!(
                "EXTCONN_TEST_KAFKA_BROKERS is not set: the Kafka benchmarks run against tansu \
                 on 127.0.0.1; first eval \"$(scripts/services start)\""
            )
        },
    )
}

fn messages(topic: &str) -> Vec<Message> {
    (0..BATCH)
        .map(|i| Message {
            topic: topic.to_owned(),
            key: format!("[{}]", i % 1000).into_bytes(),
            value: vec![b'x'; VALUE_BYTES],
        })
        .collect()
}

fn produce(c: &mut Criterion) {
    let brokers = brokers();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let topic = format!("bench-{}", std::process::id());
    let target = Target::new("kafka", &brokers, "");
    let options = SinkOptions { topic_partitions: Some(3), ..SinkOptions::default() };
    let sink = KafkaSink::open(&target, &options).unwrap();
    rt.block_on(sink.ensure_topics(std::slice::from_ref(&topic))).unwrap();
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let batch = messages(&topic);
    let bytes: usize = batch.iter().map(|m| m.key.len() + m.value.len()).sum();

    let mut group = c.benchmark_group("produce");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, unit) in [
        ("messages", Throughput::Elements(BATCH as u64)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        group.throughput(unit);
        group.bench_function(BenchmarkId::new("raw_rdkafka", name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut pending = Vec::with_capacity(BATCH);
                    for m in &batch {
                        let record =
                            FutureRecord::to(&m.topic).key(&m.key[..]).payload(&m.value[..]);
                        pending.push(raw.send(record, Duration::from_secs(60)));
                    }
                    for delivery in futures::future::join_all(pending).await {
                        delivery.map_err(|(e, _)| e).unwrap();
                    }
                })
            })
        });
        group.bench_function(BenchmarkId::new("sink_emit", name), |b| {
            b.iter(|| rt.block_on(sink.emit(batch.clone())).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, produce);
criterion_main!(benches);
