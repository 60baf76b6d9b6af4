//! Reading Kafka topics back in the changefeed tests: an independent rdkafka consumer.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::common::unique;

/// A message as read: (partition, key, value); resolved messages have no key.
pub type Record = (i32, Option<Vec<u8>>, Vec<u8>);

/// Every message of `topic` so far, read from the beginning by a consumer of its own:
/// (partition, key, value), in each partition's order (partitions one after the other).
pub fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len() as i32);
    let mut out = Vec::new();
    for p in 0..partitions {
        let (low, high) =
            consumer.fetch_watermarks(topic, p, Duration::from_secs(5)).unwrap_or((0, 0));
        if high <= low {
            continue;
        }
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
        consumer.assign(&assignment).unwrap();
        let mut seen = low;
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen < high && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push((
                    p,
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ));
                seen = m.offset() + 1;
            }
        }
    }
    out
}

/// In each partition, resolved timestamps only rise, and no new change (one whose key was not
/// seen at that `updated` time or later) comes after a resolved timestamp above it: duplicates,
/// if any, are only of changes already resolved-over.
pub fn assert_resolved_order(messages: &[Record]) {
    let mut newest_resolved: BTreeMap<i32, String> = BTreeMap::new();
    let mut seen_updates: BTreeMap<String, String> = BTreeMap::new();
    for (partition, key, value) in messages {
        let value: serde_json::Value = serde_json::from_slice(value).unwrap();
        let newest = newest_resolved.entry(*partition).or_default();
        match key {
            None => {
                let ts = value["resolved"].as_str().unwrap().to_owned();
                assert!(ts >= *newest, "resolved went back from {newest} to {ts}");
                *newest = ts;
            }
            Some(key) => {
                let updated = value["updated"].as_str().unwrap().to_owned();
                let key = String::from_utf8(key.clone()).unwrap();
                let new = seen_updates.get(&key).is_none_or(|prev| *prev < updated);
                assert!(
                    !new || updated > *newest,
                    "a new change at {updated} came after resolved {newest}"
                );
                if new {
                    seen_updates.insert(key, updated);
                }
            }
        }
    }
}
