//! The Kafka sink against tansu on 127.0.0.1 (started by `scripts/services start`), checked with
//! an independent rdkafka consumer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use extconn_providers::sink::{self, Message, Sink, SinkOptions, kafka::KafkaSink};
use extconn_providers::{Config, ErrorKind, Target};
use rdkafka::Offset;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::TopicPartitionList;

/// A variable `scripts/services start` exports; its absence fails the test with what to do.
fn env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: the Kafka tests run against tansu on 127.0.0.1. Run them with \
             scripts/test, or first eval \"$(scripts/services start)\" (and scripts/services \
             stop afterwards)"
        ),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn kafka(brokers: &str, params: &[(&str, &str)]) -> Target {
    let mut target = Target::new("kafka", brokers, "");
    target.params = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    target
}

/// A topic name no other test or earlier run uses.
fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{test}-{}-{nanos}", std::process::id())
}

/// Reads every partition of `topic` from the beginning with its own consumer until `count`
/// messages arrived (or 30 s passed): (partition, key, value) in each partition's order.
fn consume(brokers: &str, topic: &str, count: usize) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("extconn-test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < count && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            out.push((
                message.partition(),
                message.key().unwrap_or_default().to_vec(),
                message.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    out
}

#[test]
fn probe_reaches_tansu() {
    let target = kafka(&env("EXTCONN_TEST_KAFKA_BROKERS"), &[]);
    runtime().block_on(sink::probe(&Config::default(), &target)).unwrap();
}

#[test]
fn probe_of_a_closed_port_fails_fast_and_says_why() {
    // Bind and drop: a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secret = "CANARY-pw-3f1c";
    let target = kafka(
        &format!("127.0.0.1:{port}"),
        &[("sasl_enabled", "true"), ("sasl_user", "u"), ("sasl_password", secret)],
    );
    let started = Instant::now();
    let err = runtime().block_on(sink::probe(&Config::default(), &target)).unwrap_err();
    let message = err.message();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}: {message}", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{message}");
    assert!(
        message.starts_with(&format!(
            "kafka://127.0.0.1:{port}: cannot connect to the Kafka brokers: "
        )),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    assert!(!message.contains(secret), "{message}");
}

#[test]
fn probe_with_sasl_plain_is_refused_by_tansu_without_the_password() {
    // tansu 0.6 builds rsasl without the PLAIN mechanism: its SASL broker offers SCRAM only.
    let secret = "CANARY-plain-pw-51be";
    let target = kafka(
        &env("EXTCONN_TEST_KAFKA_SASL_BROKERS"),
        &[("sasl_enabled", "true"), ("sasl_user", "extconn"), ("sasl_password", secret)],
    );
    let err = runtime().block_on(sink::probe(&Config::default(), &target)).unwrap_err();
    let message = err.message();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("SASL PLAIN mechanism handshake failed"), "{message}");
    assert!(!message.contains(secret), "{message}");
}

#[test]
fn probe_without_sasl_on_a_sasl_broker_fails() {
    let target = kafka(&env("EXTCONN_TEST_KAFKA_SASL_BROKERS"), &[]);
    let started = Instant::now();
    let err = runtime()
        .block_on(sink::kafka::probe(&target, Duration::from_secs(3)))
        .map_err(extconn_providers::Error::from)
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
    assert_ne!(err.kind(), ErrorKind::Internal, "{}", err.message());
}

#[test]
fn probe_with_unknown_scram_user_is_refused_without_the_password() {
    let secret = "CANARY-scram-pw-77aa";
    let target = kafka(
        &env("EXTCONN_TEST_KAFKA_SASL_BROKERS"),
        &[
            ("sasl_enabled", "true"),
            ("sasl_mechanism", "SCRAM-SHA-256"),
            ("sasl_user", "nobody"),
            ("sasl_password", secret),
        ],
    );
    let err = runtime()
        .block_on(sink::kafka::probe(&target, Duration::from_secs(5)))
        .map_err(extconn_providers::Error::from)
        .unwrap_err();
    let message = err.message();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{message}");
    assert!(message.contains("refused the connection"), "{message}");
    assert!(!message.contains(secret), "{message}");
}

#[test]
fn ensure_topics_creates_missing_topics_and_accepts_existing_ones() {
    let brokers = env("EXTCONN_TEST_KAFKA_BROKERS");
    let topic = unique("ensure");
    let options = SinkOptions { topic_partitions: Some(2), ..SinkOptions::default() };
    let sink = KafkaSink::open(&kafka(&brokers, &[]), &options).unwrap();
    let rt = runtime();
    rt.block_on(sink.ensure_topics(std::slice::from_ref(&topic))).unwrap();
    rt.block_on(sink.ensure_topics(std::slice::from_ref(&topic))).unwrap();
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10)).unwrap();
    let found = &metadata.topics()[0];
    assert_eq!(found.error(), None, "topic {topic} was not created");
    assert_eq!(found.partitions().len(), 2);
}

#[test]
fn keyed_messages_all_arrive_in_per_key_order() {
    let brokers = env("EXTCONN_TEST_KAFKA_BROKERS");
    let target = kafka(&brokers, &[("topic_prefix", "extconn_")]);
    let options = SinkOptions {
        topic_partitions: Some(3),
        kafka_sink_config: Some(r#"{"Flush": {"MaxMessages": 500, "Frequency": "5ms"}}"#.into()),
        ..SinkOptions::default()
    };
    let rt = runtime();
    let sink = rt.block_on(sink::open(&Config::default(), &target, &options)).unwrap();
    let table = unique("users");
    let topic = sink.topic(&table);
    assert_eq!(topic, format!("extconn_{table}"));
    rt.block_on(sink.ensure_topics(std::slice::from_ref(&topic))).unwrap();

    const KEYS: usize = 20;
    const PER_KEY: usize = 100;
    let messages: Vec<Message> = (0..PER_KEY)
        .flat_map(|seq| (0..KEYS).map(move |key| (key, seq)))
        .map(|(key, seq)| Message {
            topic: topic.clone(),
            key: format!("[{key}]").into_bytes(),
            value: format!("{{\"key\": {key}, \"seq\": {seq}}}").into_bytes(),
        })
        .collect();
    let total = messages.len();
    // Two batches: emit returns only once its batch is acknowledged.
    let second = messages[total / 2..].to_vec();
    rt.block_on(sink.emit(messages[..total / 2].to_vec())).unwrap();
    rt.block_on(sink.emit(second)).unwrap();
    rt.block_on(
        sink.emit_resolved(std::slice::from_ref(&topic), b"{\"resolved\":\"1.0\"}".to_vec()),
    )
    .unwrap();
    rt.block_on(sink.flush()).unwrap();

    let got = consume(&brokers, &topic, total + 3);
    let resolved: Vec<_> = got.iter().filter(|(_, key, _)| key.is_empty()).collect();
    let mut partitions: Vec<i32> = resolved.iter().map(|(p, _, _)| *p).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, [0, 1, 2], "one resolved message per partition");
    let mut per_key: HashMap<Vec<u8>, (i32, Vec<usize>)> = HashMap::new();
    for (partition, key, value) in got.iter().filter(|(_, key, _)| !key.is_empty()) {
        let value: serde_json::Value = serde_json::from_slice(value).unwrap();
        let entry = per_key.entry(key.clone()).or_insert((*partition, Vec::new()));
        assert_eq!(entry.0, *partition, "key {} moved partitions", String::from_utf8_lossy(key));
        entry.1.push(value["seq"].as_u64().unwrap() as usize);
    }
    assert_eq!(per_key.len(), KEYS);
    for (key, (_, seqs)) in per_key {
        // At-least-once allows duplicates; here, with an idempotent producer, there are none.
        assert_eq!(seqs, (0..PER_KEY).collect::<Vec<_>>(), "key {}", String::from_utf8_lossy(&key));
    }
    let used: std::collections::HashSet<i32> = got.iter().map(|(p, _, _)| *p).collect();
    assert_eq!(used.len(), 3, "20 keys spread over the 3 partitions");
}

#[test]
fn topic_name_sends_every_table_to_one_topic() {
    let brokers = env("EXTCONN_TEST_KAFKA_BROKERS");
    let topic = unique("all-tables");
    let target = kafka(&brokers, &[("topic_name", &topic)]);
    let sink = KafkaSink::open(&target, &SinkOptions::default()).unwrap();
    assert_eq!(sink.topic("users"), topic);
    assert_eq!(sink.topic("rides"), topic);
    let rt = runtime();
    rt.block_on(sink.ensure_topics(std::slice::from_ref(&topic))).unwrap();
    let messages = ["users", "rides"].map(|t| Message {
        topic: sink.topic(t),
        key: t.into(),
        value: b"{}".to_vec(),
    });
    rt.block_on(sink.emit(messages.to_vec())).unwrap();
    assert_eq!(consume(&brokers, &topic, 2).len(), 2);
}

#[test]
fn sending_to_a_closed_port_fails_with_the_reason() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = kafka(&format!("127.0.0.1:{port}"), &[]);
    // RequiredAcks ONE: no idempotent producer; a short message timeout through Flush is not
    // a CockroachDB option, so bound the wait here instead.
    let sink = KafkaSink::open(&target, &SinkOptions::default()).unwrap();
    let rt = runtime();
    let message = Message { topic: "t".into(), key: b"k".to_vec(), value: b"v".to_vec() };
    let result = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(3), sink.emit(vec![message])).await
    });
    // librdkafka keeps retrying until message.timeout.ms: the caller's own timeout ends it.
    assert!(result.is_err(), "a message to a closed port was acknowledged");
}
