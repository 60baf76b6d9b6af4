//! A changefeed into Kafka against a raw rdkafka producer sending the same messages
//! (`cargo bench -p extconn-host --bench changefeed`, or `scripts/bench --changefeed`). It needs
//! a broker: `EXTCONN_TEST_KAFKA_BROKERS` (tansu from `scripts/services start`).
//!
//! * Throughput: `EXTCONN_BENCH_CF_ROWS` rows (default 50 000) are inserted in one transaction
//!   straight into the database file; the clock runs from the commit until the changefeed's
//!   saved progress covers the last row, which the `extconn start` node saves only after the
//!   broker acknowledged the batch. The raw side sends the very messages the changefeed
//!   produced (read back from its topic) with one rdkafka producer configured as the sink's
//!   (idempotent, `acks=all`, murmur2 partitioning): everything enqueued, then every
//!   acknowledgement awaited. It runs twice: with rdkafka's `FutureProducer` (a future per
//!   message), and with a `ThreadedProducer` whose deliveries are counted per batch, as the
//!   sink's are, taking turns at going first; the ratio that counts is against the faster of
//!   the two.
//!   `EXTCONN_BENCH_RUNS` runs (default 3), interleaved; medians.
//! * Latency: `EXTCONN_BENCH_CF_LATENCY_ROWS` single-row commits (default 500), one every 10 ms,
//!   each timed from its commit to the moment an independent consumer (`fetch.wait.max.ms=10`)
//!   receives it; the raw producer's send-to-receive latency over the same broker and consumer
//!   is the floor it is compared with.
//!
//! Results are in `docs/benchmarks.md`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use extconn_host::changefeed::capture;
use extconn_host::jobs::Jobs;
use extconn_host::{Host, Outcome, Runtime, RuntimeConfig, Session, Value};
use rdkafka::Offset;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{
    BaseRecord, DeliveryFuture, FutureProducer, FutureRecord, ProducerContext, ThreadedProducer,
};
use rdkafka::topic_partition_list::TopicPartitionList;

/// A message: key and value.
type Record = (Vec<u8>, Vec<u8>);

fn main() -> Result<()> {
    let Ok(brokers) = std::env::var("EXTCONN_TEST_KAFKA_BROKERS") else {
        bail!(
            "EXTCONN_TEST_KAFKA_BROKERS is not set: this bench needs a Kafka broker. Run it with \
             scripts/bench --changefeed, or first eval \"$(scripts/services start)\""
        );
    };
    let rows = env_number("EXTCONN_BENCH_CF_ROWS", 50_000)?;
    let runs = env_number("EXTCONN_BENCH_RUNS", 3)?.max(1);
    let latency_rows = env_number("EXTCONN_BENCH_CF_LATENCY_ROWS", 500)?;
    let root = std::path::absolute(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-changefeed"),
    )?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let result = Bench::new(&root, &brokers)?.run(rows, runs, latency_rows);
    let _ = std::fs::remove_dir_all(&root);
    let report = result?;
    machine();
    report.print(&brokers, rows, runs, latency_rows);
    Ok(())
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().with_context(|| format!("{name}={v:?}: not a number")),
        Err(_) => Ok(default),
    }
}

struct Bench {
    data_dir: PathBuf,
    brokers: String,
    topic: String,
    raw_topic: String,
    job: i64,
    db: rusqlite::Connection,
    node: Child,
    tokio: tokio::runtime::Runtime,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.node.kill();
        let _ = self.node.wait();
    }
}

#[derive(Default)]
struct Report {
    changefeed: Vec<Duration>,
    raw: Vec<Duration>,
    raw_counted: Vec<Duration>,
    message_bytes: usize,
    changefeed_latency: Vec<Duration>,
    raw_latency: Vec<Duration>,
}

impl Bench {
    fn new(root: &Path, brokers: &str) -> Result<Self> {
        let data_dir = root.join("data");
        let mut host = Host::open(Runtime::new(RuntimeConfig::default())?, &data_dir)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        let prefix = format!("bench-cf-{}-{nanos}", std::process::id());
        let session = Session { database: Some("bench".into()), ..Session::default() };
        execute(
            &mut host,
            &Session::default(),
            &format!(
                "CREATE DATABASE bench;
                 CREATE TABLE bench.rides (id INTEGER PRIMARY KEY, rider TEXT, city TEXT,
                                           vehicle TEXT, revenue REAL);
                 CREATE EXTERNAL CONNECTION sink AS 'kafka://{brokers}?topic_prefix={prefix}_'"
            ),
        )?;
        let created = execute(
            &mut host,
            &session,
            "CREATE CHANGEFEED FOR TABLE rides INTO 'external://sink' WITH updated, initial_scan = 'no'",
        )?;
        let job = match created.first().map(|r| &r.outcome) {
            Some(Ok(Outcome::Rows(rows))) => match rows.rows.first().map(|r| &r[0]) {
                Some(Value::Int(job)) => *job,
                _ => bail!("CREATE CHANGEFEED returned no job id: {rows:?}"),
            },
            other => bail!("CREATE CHANGEFEED: {other:?}"),
        };
        let db = rusqlite::Connection::open(
            extconn_host::databases::Databases::new(&data_dir).path("bench"),
        )?;
        db.busy_timeout(Duration::from_secs(10))?;
        let node = Command::new(env!("CARGO_BIN_EXE_extconn"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting extconn start")?;
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let bench = Self {
            data_dir,
            brokers: brokers.to_owned(),
            topic: format!("{prefix}_rides"),
            raw_topic: format!("{prefix}_raw"),
            job,
            db,
            node,
            tokio,
        };
        bench.create_raw_topic()?;
        Ok(bench)
    }

    fn run(mut self, rows: u64, runs: u64, latency_rows: u64) -> Result<Report> {
        let mut report = Report::default();
        let producer = self.producer()?;
        let counted = self.counted_producer()?;
        // The node opens the sink and creates the topic: a first row shows it is streaming.
        self.insert(0, 1)?;
        self.wait_acknowledged(Duration::from_secs(120))?;
        let mut next_id = 1;
        let mut messages: Vec<Record> = Vec::new();
        for run in 0..runs {
            let start = Instant::now();
            self.insert(next_id, rows)?;
            let committed = start.elapsed();
            let took = self.wait_acknowledged(Duration::from_secs(600))?;
            report.changefeed.push(took);
            eprintln!(
                "run {run}: changefeed {} rows acknowledged {took:.2?} after a {committed:.2?} commit",
                rows
            );
            if messages.is_empty() {
                messages = self.read_messages(&self.topic, rows as usize + 1)?;
                // The warm-up row is not part of a run.
                messages.retain(|(key, _)| key.as_slice() != b"[0]");
                ensure!(
                    messages.len() as u64 >= rows,
                    "only {} messages read back",
                    messages.len()
                );
                messages.truncate(rows as usize);
                report.message_bytes =
                    messages.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() / messages.len();
                // The producer's connections and idempotent producer id, before any clock runs
                // (the node's producer has them from the warm-up row).
                let warm = &messages[..messages.len().min(1000)];
                self.tokio.block_on(send_all(&producer, &self.raw_topic, warm))?;
                send_counted(&counted, &self.raw_topic, warm)?;
            }
            // The two raw producers take turns going first, so neither always meets the broker
            // fresh from the other's burst.
            for counted_turn in [run % 2 == 1, run % 2 == 0] {
                if counted_turn {
                    let took = send_counted(&counted, &self.raw_topic, &messages)?;
                    report.raw_counted.push(took);
                    eprintln!(
                        "run {run}: raw counted producer {rows} messages acknowledged in {took:.2?}"
                    );
                } else {
                    let took =
                        self.tokio.block_on(send_all(&producer, &self.raw_topic, &messages))?;
                    report.raw.push(took);
                    eprintln!("run {run}: raw producer {rows} messages acknowledged in {took:.2?}");
                }
            }
            next_id += rows as i64;
        }

        // Latency: single-row commits at a steady pace, received by an independent consumer.
        let mut ids = next_id..next_id + latency_rows as i64;
        let db = &self.db;
        report.changefeed_latency = latency(&self.brokers, &self.topic, latency_rows, |_| {
            let id = ids.next().expect("enough ids");
            db.execute(
                "INSERT INTO rides VALUES (?1, 'rider', 'boston', 'bike', 12.5)",
                rusqlite::params![id],
            )
            .map(|_| format!("[{id}]").into_bytes())
            .map_err(Into::into)
        })?;
        let sample = messages.first().cloned().unwrap_or_default();
        let raw_topic = self.raw_topic.clone();
        report.raw_latency = latency(&self.brokers, &raw_topic, latency_rows, |i| {
            let key = format!("[raw-{i}]").into_bytes();
            let record = FutureRecord::to(&raw_topic).key(&key[..]).payload(&sample.1[..]);
            // The acknowledgement is not awaited: the consumer's receipt is what is timed.
            drop(producer.send_result(record).map_err(|(e, _)| e)?);
            Ok(key)
        })?;
        Ok(report)
    }

    /// Inserts `count` rows from `first` in one transaction.
    fn insert(&mut self, first: i64, count: u64) -> Result<()> {
        let tx = self.db.transaction()?;
        {
            let mut insert = tx.prepare("INSERT INTO rides VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for id in first..first + count as i64 {
                let city = ["new york", "boston", "seattle", "los angeles"][id as usize % 4];
                insert.execute(rusqlite::params![
                    id,
                    format!("rider-{:08}", id * 7919 % 100_000_000),
                    city,
                    if id % 3 == 0 { "scooter" } else { "bike" },
                    (id % 10_000) as f64 / 100.0
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Waits until the changefeed's saved progress covers every captured change; the time
    /// it took.
    fn wait_acknowledged(&self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        let target = capture::resolve(&self.db)?.seq;
        let jobs = Jobs::open(&self.data_dir).map_err(|e| anyhow::anyhow!("{}", e.message))?;
        loop {
            let list =
                jobs.long_jobs("CHANGEFEED").map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let job = list.iter().find(|j| j.id == self.job).context("the job is gone")?;
            let cursor = job
                .progress
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
                .and_then(|p| p["cursor"].as_i64())
                .unwrap_or(0);
            if cursor >= target {
                return Ok(start.elapsed());
            }
            ensure!(job.status == "running", "the changefeed is {}", job.status);
            ensure!(
                start.elapsed() < limit,
                "the changefeed did not acknowledge up to change {target} within {limit:?} \
                 (at {cursor})"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The sink's producer configuration: idempotent, `acks=all`, murmur2 partitioning.
    fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "300000");
        config
    }

    fn producer(&self) -> Result<FutureProducer> {
        Ok(self.producer_config().create()?)
    }

    /// A producer configured as [`Bench::producer`], whose deliveries count down a batch.
    fn counted_producer(&self) -> Result<ThreadedProducer<Counted>> {
        Ok(self.producer_config().create_with_context(Counted)?)
    }

    fn create_raw_topic(&self) -> Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create()?;
        let topic = NewTopic::new(&self.raw_topic, -1, TopicReplication::Fixed(-1));
        let results = self.tokio.block_on(admin.create_topics([&topic], &AdminOptions::new()))?;
        for result in results {
            result.map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
        }
        Ok(())
    }

    /// The first `count` messages of `topic`, every partition from its beginning.
    fn read_messages(&self, topic: &str, count: usize) -> Result<Vec<Record>> {
        let consumer = consumer(&self.brokers)?;
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len() as i32);
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut out = Vec::with_capacity(count);
        let deadline = Instant::now() + Duration::from_secs(120);
        while out.len() < count && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m?;
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        Ok(out)
    }
}

fn execute(
    host: &mut Host,
    session: &Session,
    sql: &str,
) -> Result<Vec<extconn_host::StatementResult>> {
    let results = host.execute(session, sql);
    for result in &results {
        if let Err(e) = &result.outcome {
            bail!("{sql}: {}", e.message);
        }
    }
    Ok(results)
}

fn consumer(brokers: &str) -> Result<BaseConsumer> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-reader-{nanos}"))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?)
}

/// Whether a send failed only because librdkafka's queue is full.
fn queue_full(e: &rdkafka::error::KafkaError) -> bool {
    matches!(
        e,
        rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
    )
}

/// Enqueues every message, then awaits every acknowledgement (the oldest first when the
/// queue is full); the time from the first send to the last acknowledgement.
async fn send_all(producer: &FutureProducer, topic: &str, messages: &[Record]) -> Result<Duration> {
    let start = Instant::now();
    let mut pending: std::collections::VecDeque<DeliveryFuture> = Default::default();
    for (key, value) in messages {
        let mut record = FutureRecord::to(topic).key(&key[..]).payload(&value[..]);
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                Err((e, back)) if queue_full(&e) => {
                    record = back;
                    if let Some(delivery) = pending.pop_front() {
                        delivery.await?.map_err(|(e, _)| e)?;
                    }
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(start.elapsed())
}

/// Deliveries counted per batch: what the Kafka sink does instead of a future per message.
struct Counted;

impl ClientContext for Counted {}

impl ProducerContext for Counted {
    type DeliveryOpaque = Arc<Countdown>;

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, batch: Arc<Countdown>) {
        if result.is_err() {
            batch.failed.store(true, Ordering::Relaxed);
        }
        let (lock, done) = (&batch.pending, &batch.done);
        let mut pending = lock.lock().unwrap_or_else(|e| e.into_inner());
        *pending -= 1;
        if *pending == 0 {
            done.notify_one();
        }
    }
}

#[derive(Default)]
struct Countdown {
    pending: std::sync::Mutex<usize>,
    done: std::sync::Condvar,
    failed: AtomicBool,
}

/// [`send_all`] with deliveries counted per batch: every message handed over (waiting a
/// millisecond when the queue is full), then the count awaited.
fn send_counted(
    producer: &ThreadedProducer<Counted>,
    topic: &str,
    messages: &[Record],
) -> Result<Duration> {
    let start = Instant::now();
    let batch = Arc::new(Countdown::default());
    *batch.pending.lock().unwrap() = messages.len();
    for (key, value) in messages {
        let mut record =
            BaseRecord::with_opaque_to(topic, batch.clone()).key(&key[..]).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, back)) if queue_full(&e) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    let mut pending = batch.pending.lock().unwrap();
    while *pending > 0 {
        pending = batch.done.wait(pending).unwrap();
    }
    ensure!(!batch.failed.load(Ordering::Relaxed), "a raw message was not delivered");
    Ok(start.elapsed())
}

/// Calls `send(i)` `count` times, one every 10 ms, and times each from its return to the
/// moment a consumer of `topic` (assigned at the end of every partition before the first
/// send) receives the key it returned.
fn latency(
    brokers: &str,
    topic: &str,
    count: u64,
    mut send: impl FnMut(u64) -> Result<Vec<u8>>,
) -> Result<Vec<Duration>> {
    let consumer = consumer(brokers)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len() as i32);
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        assignment.add_partition_offset(topic, p, Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen: HashMap<Vec<u8>, Instant> = HashMap::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    seen.entry(m.key().unwrap_or_default().to_vec()).or_insert_with(Instant::now);
                }
            }
            seen
        })
    };
    let mut sent: Vec<(Vec<u8>, Instant)> = Vec::with_capacity(count as usize);
    let pace = Duration::from_millis(10);
    let start = Instant::now();
    for i in 0..count {
        let key = send(i)?;
        sent.push((key, Instant::now()));
        let due = start + pace * (i as u32 + 1);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    // Everything should arrive well within this; what does not counts as lost.
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().map_err(|_| anyhow::anyhow!("the consumer thread panicked"))?;
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(key, at)| seen.get(key).map(|got| got.saturating_duration_since(*at)))
        .collect();
    ensure!(
        latencies.len() == sent.len(),
        "{topic}: {} of {} messages did not reach the consumer within 5 s",
        sent.len() - latencies.len(),
        sent.len()
    );
    latencies.sort();
    Ok(latencies)
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

impl Report {
    fn print(&self, brokers: &str, rows: u64, runs: u64, latency_rows: u64) {
        let rate = |d: Duration| rows as f64 / d.as_secs_f64();
        let (cf, future, counted) =
            (median(&self.changefeed), median(&self.raw), median(&self.raw_counted));
        let raw = future.min(counted);
        println!(
            "\nchangefeed into Kafka (broker {brokers}), {rows} rows per run, {runs} runs, \
             medians; messages of {} bytes (key and value)",
            self.message_bytes
        );
        println!("  {:<52} {:>10} {:>14}", "throughput", "time", "messages/s");
        println!(
            "  {:<52} {:>10.2?} {:>14.0}",
            "changefeed: commit -> broker ack (saved progress)",
            cf,
            rate(cf)
        );
        for (name, d) in [
            ("raw producer, same messages: a future per message", future),
            ("raw producer, same messages: counted per batch", counted),
        ] {
            println!("  {:<52} {:>10.2?} {:>14.0}", name, d, rate(d));
        }
        println!(
            "  {:<52} {:>24.1} %",
            "changefeed / the faster raw producer",
            100.0 * rate(cf) / rate(raw)
        );
        let runs_text =
            |v: &[Duration]| v.iter().map(|d| format!("{:.2?}", d)).collect::<Vec<_>>().join(", ");
        println!(
            "  every run: changefeed {}; raw, futures {}; raw, counted {}",
            runs_text(&self.changefeed),
            runs_text(&self.raw),
            runs_text(&self.raw_counted)
        );
        println!(
            "\n  {:<52} {:>10} {:>10} {:>10}",
            format!("latency, {latency_rows} messages, one per 10 ms"),
            "p50",
            "p99",
            "max"
        );
        for (name, l) in [
            ("changefeed: commit -> consumer receives", &self.changefeed_latency),
            ("raw producer: send -> consumer receives", &self.raw_latency),
        ] {
            println!(
                "  {:<52} {:>10.1?} {:>10.1?} {:>10.1?}",
                name,
                percentile(l, 0.50),
                percentile(l, 0.99),
                l[l.len() - 1]
            );
        }
    }
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find(|l| l.starts_with("model name")).unwrap_or("model name: ?");
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = mem.lines().next().unwrap_or("MemTotal: ?");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\nmachine: {cores} cores, {}, {}; load {}",
        model.trim(),
        total.split_whitespace().collect::<Vec<_>>().join(" "),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
