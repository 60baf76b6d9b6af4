//! Changefeed sinks (`kafka://`, `confluent-cloud://`, `azure-event-hub://`,
//! `webhook-https://`, and cloud storage: any storage scheme), all behind one [`Sink`] trait.
//!
//! A changefeed hands a sink batches of keyed [`Message`]s and, now and then, a resolved
//! timestamp that must reach every topic. [`Sink::emit`] returns only once the service has
//! acknowledged every message of the batch, so a caller that checkpoints after it delivers at
//! least once; messages with the same key keep their order.

pub mod cloudstorage;
pub mod kafka;
pub mod webhook;

use std::time::Duration;

use crate::{Config, Error, Target};

/// One changefeed message: a row's key and its value (an envelope), for `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic (from [`Sink::topic`]).
    pub topic: String,
    /// The row's primary key, encoded (CockroachDB: a JSON array). Messages with the same key
    /// arrive in the order they were emitted.
    pub key: Vec<u8>,
    /// The message body (CockroachDB: the JSON envelope).
    pub value: Vec<u8>,
}

/// What CREATE CHANGEFEED's options say about the sink, beside its URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkOptions {
    /// `kafka_sink_config`: CockroachDB's JSON (`{"Flush": {…}, "RequiredAcks": "ALL", …}`).
    pub kafka_sink_config: Option<String>,
    /// Partitions of the topics [`Sink::ensure_topics`] creates; `None`: the broker's default.
    pub topic_partitions: Option<i32>,
    /// `webhook_auth_header`: the webhook's `Authorization` header (a secret).
    pub webhook_auth_header: Option<String>,
    /// `webhook_client_timeout`; `None`: [`webhook::DEFAULT_TIMEOUT`].
    pub webhook_client_timeout: Option<Duration>,
    /// `webhook_sink_config`: CockroachDB's JSON (`{"Flush": {…}, "Retry": {…}}`).
    pub webhook_sink_config: Option<String>,
    /// `file_size` of a cloud-storage sink, as written (`16MiB`); `None`: the URI's
    /// `file_size`, else [`cloudstorage::DEFAULT_FILE_SIZE`].
    pub file_size: Option<String>,
    /// `compression` of a cloud-storage sink (`gzip`).
    pub compression: Option<String>,
}

/// Whether `scheme` is a storage scheme the cloud-storage sink writes to.
fn is_storage(scheme: &str) -> bool {
    matches!(
        scheme,
        "nodelocal" | "userfile" | "s3" | "gs" | "azure" | "azure-blob" | "azure-storage"
    )
}

/// A changefeed sink, opened for one changefeed.
#[async_trait::async_trait]
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// The topic a table's changes go to (CockroachDB: `topic_name` for every table, else
    /// `topic_prefix` + the table's name, with characters the sink cannot take escaped).
    fn topic(&self, table: &str) -> String;

    /// Makes sure `topics` exist, creating the missing ones; existing ones are fine.
    async fn ensure_topics(&self, topics: &[String]) -> Result<(), Error>;

    /// Sends `messages`, returning once every one is acknowledged. Same-key messages keep
    /// their order. On an error some messages may have been delivered: send the batch again.
    async fn emit(&self, messages: Vec<Message>) -> Result<(), Error>;

    /// Sends `payload` (a resolved-timestamp message) to every partition of every topic in
    /// `topics`, returning once all are acknowledged.
    async fn emit_resolved(&self, topics: &[String], payload: Vec<u8>) -> Result<(), Error>;

    /// Waits until everything handed to the sink so far is acknowledged.
    async fn flush(&self) -> Result<(), Error>;

    /// Whether the first poll of [`Sink::emit`] hands every message over (or fails) and the sink keeps
    /// batches emitted one after the other in that order even while earlier ones are not yet
    /// acknowledged, so that a caller may emit the next batch before awaiting this one (Kafka:
    /// the idempotent producer's per-partition order). Sinks that send as they are polled
    /// (webhooks, files) say no.
    fn orders_in_flight(&self) -> bool {
        false
    }
}

/// Connects and authenticates to the sink `target` names, then disconnects: Kafka fetches
/// the brokers' metadata, a webhook answers a `HEAD` request (any status), a storage location
/// takes a small object and deletes it.
pub async fn probe(config: &Config, target: &Target) -> Result<(), Error> {
    match target.provider.as_str() {
        "kafka" => Ok(kafka::probe(target, kafka::PROBE_TIMEOUT).await?),
        "webhookhttps" | "webhookhttp" => Ok(webhook::probe(target).await?),
        _ if is_storage(&target.scheme) => cloudstorage::probe(config, target).await,
        _ => Err(Error::UnsupportedSink { scheme: target.scheme.clone() }),
    }
}

/// Checks `options` against the sink `target` names without any I/O: what [`open`] would
/// refuse, refused at CREATE CHANGEFEED rather than when a node runs the changefeed.
pub fn check_options(config: &Config, target: &Target, options: &SinkOptions) -> Result<(), Error> {
    match target.provider.as_str() {
        "webhookhttps" | "webhookhttp" => {
            webhook::WebhookSink::open(target, options).map(drop).map_err(Error::from)
        }
        _ if is_storage(&target.scheme) => {
            cloudstorage::CloudStorageSink::open(config, target, options).map(drop)
        }
        _ => Ok(()),
    }
}

/// Opens the sink `target` names for one changefeed.
pub async fn open(
    config: &Config,
    target: &Target,
    options: &SinkOptions,
) -> Result<Box<dyn Sink>, Error> {
    match target.provider.as_str() {
        "kafka" => Ok(Box::new(kafka::KafkaSink::open(target, options)?)),
        "webhookhttps" | "webhookhttp" => {
            Ok(Box::new(webhook::WebhookSink::open(target, options)?))
        }
        _ if is_storage(&target.scheme) => {
            Ok(Box::new(cloudstorage::CloudStorageSink::open(config, target, options)?))
        }
        _ => Err(Error::UnsupportedSink { scheme: target.scheme.clone() }),
    }
}
