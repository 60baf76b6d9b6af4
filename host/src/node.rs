//! `extconn start`: a node that runs the changefeed jobs of a data directory, and resumes them
//! from their saved progress after a restart.
//!
//! Each changefeed runs in its own thread: the initial scan (keyset pages), then the captured
//! changes in commit order. A batch's progress (its cursor) is saved only after the sink has
//! acknowledged every message of it, so a node killed at any moment re-sends at most the
//! batch it was working on: delivery is at least once, and nothing is lost. While the sink
//! acknowledges a batch, the next one is read and encoded, not sent, so the encoding overlaps
//! the broker's round trip. A resolved message goes out only once every change up to its
//! timestamp is acknowledged. A sink that fails is retried with backoff while the job reports
//! it in `running_status`. An idle changefeed notices a commit to its database within
//! milliseconds ([`WAKE`]), and looks for commands every [`POLL`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::changefeed::{Datum, EncodeOptions, Envelope, Hlc, capture, envelope};
use crate::jobs::{Jobs, LongJob};
use crate::ops::changefeed::{sink_options, target_from};
use extconn_providers as providers;
use providers::sink::{Message, Sink, SinkOptions};

/// The file that says a node runs on a data directory: its process id.
const PID_FILE: &str = "node.pid";
/// How often the node looks for jobs to run, and a changefeed for changes and commands.
const POLL: Duration = Duration::from_millis(100);
/// How often an idle changefeed looks whether its database changed.
const WAKE: Duration = Duration::from_millis(5);
/// Changes read and sent per batch.
const BATCH: usize = 10_000;
/// Batches handed to an ordering sink (Kafka) before the oldest one's acknowledgement is
/// awaited.
const IN_FLIGHT: usize = 4;
/// Batches one streaming step reads at most, before the job's status is looked at again.
const STEP_BATCHES: usize = 16;
/// Rows per page of the initial scan.
const SCAN_PAGE: usize = 1000;
/// Most threads that encode one batch (the thread that read it is one of them).
const ENCODERS: usize = 4;
/// Fewest changes worth another encoding thread.
const ENCODE_AT_LEAST: usize = 2000;
/// How long a batch may wait for the sink's acknowledgement before the sink counts as gone
/// (librdkafka itself waits minutes): the batch is then sent again on a reopened sink, and
/// the job says `retrying: …` meanwhile.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether a node runs on `data_dir` now.
pub fn running(data_dir: &Path) -> bool {
    std::fs::read_to_string(data_dir.join(PID_FILE))
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists())
}

/// Runs the node until `stop` is set: claims every changefeed job no live process runs.
pub fn run(
    data_dir: &Path,
    config: Arc<providers::Config>,
    runtime: crate::Runtime,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(data_dir.join(PID_FILE), std::process::id().to_string())?;
    let jobs = Jobs::open(data_dir).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    tracing::info!(pid = std::process::id(), "node started");
    let mut workers: Vec<(i64, std::thread::JoinHandle<()>)> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        workers.retain(|(_, w)| !w.is_finished());
        for payload in jobs.fail_orphans().unwrap_or_default() {
            ended(data_dir, &jobs, &payload);
        }
        let list = jobs.long_jobs("CHANGEFEED").map_err(|e| anyhow::anyhow!("{}", e.message))?;
        for job in list {
            if job.status != "running" || workers.iter().any(|(id, _)| *id == job.id) {
                continue;
            }
            if !jobs.claim(job.id, job.pid).map_err(|e| anyhow::anyhow!("{}", e.message))? {
                continue;
            }
            tracing::info!(job = job.id, "running changefeed");
            let (dir, config, stop) = (data_dir.to_owned(), config.clone(), stop.clone());
            let runtime = runtime.clone();
            let id = job.id;
            let worker = std::thread::Builder::new()
                .name(format!("changefeed-{id}"))
                .spawn(move || changefeed(&dir, &config, &runtime, job, &stop))?;
            workers.push((id, worker));
        }
        std::thread::sleep(POLL);
    }
    for (_, worker) in workers {
        let _ = worker.join();
    }
    let _ = std::fs::remove_file(data_dir.join(PID_FILE));
    Ok(())
}

/// One changefeed, until it is paused, canceled, fails for good, or the node stops.
fn changefeed(
    data_dir: &Path,
    config: &providers::Config,
    runtime: &crate::Runtime,
    job: LongJob,
    stop: &AtomicBool,
) {
    let id = job.id;
    let mut follow = Follow::new(data_dir, &job);
    let jobs = match Jobs::open(data_dir) {
        Ok(jobs) => jobs,
        Err(e) => {
            return tracing::error!(job = id, error = %e.message, "cannot open the jobs table");
        }
    };
    let mut feed = match Feed::new(data_dir, config, &job) {
        Ok(feed) => feed,
        Err(e) => {
            let _ = jobs.fail_running(id, &e);
            return ended(data_dir, &jobs, &job.payload);
        }
    };
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::Relaxed) {
        match jobs.get(id) {
            Ok(Some(info)) if info.status == "running" => {}
            _ => return,
        }
        if let Some(target) = follow.moved(runtime, &feed.sink_target) {
            // Every batch sent so far is acknowledged: the old sink can go.
            tracing::info!(job = id, sink = %target.display(), "the sink's connection changed");
            feed.sink_target = target;
            // Closing a producer may wait on its broker: not on this thread.
            if let Some(old) = feed.sink.take() {
                std::thread::spawn(move || drop(old));
            }
            let _ = jobs.save_progress(
                id,
                &feed.progress().to_string(),
                "running: moved to the sink's new location (ALTER EXTERNAL CONNECTION)",
            );
        }
        match feed.step(&jobs) {
            Ok(Step::Busy) => backoff = Duration::from_millis(500),
            Ok(Step::Idle) => {
                backoff = Duration::from_millis(500);
                feed.wait_for_commit(POLL, stop);
            }
            Ok(Step::Done) => {
                let _ = jobs.finish(id, Ok("{}"));
                return ended(data_dir, &jobs, &job.payload);
            }
            Err(Failure::Permanent(e)) => {
                let _ = jobs.fail_running(id, &e);
                return ended(data_dir, &jobs, &job.payload);
            }
            Err(Failure::Retry(e)) => {
                tracing::warn!(job = id, error = %e, "changefeed retrying");
                let _ =
                    jobs.save_progress(id, &feed.progress().to_string(), &format!("retrying: {e}"));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                feed.sink = None;
            }
        }
    }
}

/// A changefeed ended for good (failed, or its `initial_scan = 'only'` done): nothing will read
/// its tables' changes any more, unless another changefeed does.
fn ended(data_dir: &Path, jobs: &Jobs, payload: &str) {
    crate::changefeed::release(&mut crate::databases::Databases::new(data_dir), jobs, payload);
}

/// Follows the external connection a changefeed's sink was named by: when ALTER EXTERNAL
/// CONNECTION changes it, the running changefeed moves to the new location without a pause
/// (CockroachDB issues 98610, 102970). The connection is re-resolved through the component, so
/// the job's owner must still hold USAGE on it; if it was dropped or USAGE revoked, the
/// changefeed keeps its current sink and says so in the log.
struct Follow {
    catalog: Option<crate::Catalog>,
    name: Option<String>,
    user: String,
    version: Option<u64>,
    last_check: Option<Instant>,
}

/// How often a changefeed looks for a changed sink connection.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

impl Follow {
    fn new(data_dir: &Path, job: &LongJob) -> Self {
        let payload: Json = serde_json::from_str(&job.payload).unwrap_or_default();
        let name = payload["connection"].as_str().map(str::to_owned);
        let catalog = name.as_ref().and_then(|_| crate::Catalog::open(data_dir).ok());
        Self { catalog, name, user: job.user.clone(), version: None, last_check: None }
    }

    /// The sink's new target, when its connection changed since the last look.
    fn moved(
        &mut self,
        runtime: &crate::Runtime,
        current: &providers::Target,
    ) -> Option<providers::Target> {
        if self.name.is_none() || self.last_check.is_some_and(|t| t.elapsed() < FOLLOW_EVERY) {
            return None;
        }
        self.last_check = Some(Instant::now());
        match self.look(runtime, current) {
            Ok(moved) => moved,
            Err(e) => {
                tracing::warn!(connection = ?self.name, error = %e, "keeping the current sink");
                None
            }
        }
    }

    fn look(
        &mut self,
        runtime: &crate::Runtime,
        current: &providers::Target,
    ) -> Result<Option<providers::Target>, String> {
        let (Some(catalog), Some(name)) = (&self.catalog, &self.name) else { return Ok(None) };
        let connection = catalog.read_connection(name).map_err(|e| e.to_string())?;
        let version = connection.as_ref().map(|c| c.version);
        if version == self.version {
            return Ok(None);
        }
        self.version = version;
        let principal = catalog
            .read_principal(&self.user)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("user {} does not exist", self.user))?;
        let grants = catalog
            .read_grants(&crate::catalog::GrantObject::Connection(name.clone()))
            .map_err(|e| e.to_string())?;
        let mut plugin = runtime.instantiate().map_err(|e| e.to_string())?;
        let mut target = plugin
            .resolve_sink(name, principal, connection, grants)
            .map_err(|e| e.to_string())?
            .map_err(|e| e.message)?;
        if target.uri == current.uri {
            return Ok(None);
        }
        target.user = current.user.clone();
        Ok(Some(target))
    }
}

enum Step {
    /// Sent something: go on at once.
    Busy,
    /// Nothing to send now.
    Idle,
    /// `initial_scan = 'only'` finished.
    Done,
}

enum Failure {
    /// The sink or the database failed: try again.
    Retry(String),
    /// The changefeed cannot go on (its table changed shape, its plan is broken).
    Permanent(String),
}

/// Where an initial scan is: the table and the last key sent.
#[derive(Debug, Clone, PartialEq)]
struct Scan {
    table: usize,
    after: Option<Vec<Datum>>,
}

/// A running changefeed's state.
struct Feed {
    id: i64,
    database: PathBuf,
    conn: rusqlite::Connection,
    tables: Vec<capture::CapturedTable>,
    sink_target: providers::Target,
    sink_options: SinkOptions,
    config: providers::Config,
    sink: Option<Box<dyn Sink>>,
    topics: Vec<String>,
    encode: EncodeOptions,
    resolved_every: Option<Duration>,
    last_resolved: Instant,
    only_scan: bool,
    /// Progress, as saved.
    cursor: i64,
    scan: Option<Scan>,
    highwater: Hlc,
    runtime: tokio::runtime::Runtime,
    /// The next batch, encoded while the previous one was being acknowledged.
    next: Option<Encoded>,
    /// SQLite's `data_version` when the last step began.
    data_version: Option<i64>,
}

impl Feed {
    fn new(data_dir: &Path, config: &providers::Config, job: &LongJob) -> Result<Self, String> {
        let payload: Json = serde_json::from_str(&job.payload).map_err(|e| e.to_string())?;
        let progress: Json = serde_json::from_str(job.progress.as_deref().unwrap_or("{}"))
            .map_err(|e| e.to_string())?;
        let databases = crate::databases::Databases::new(data_dir);
        let name = payload["database"].as_str().unwrap_or_default();
        let database = databases.path(name);
        let conn = crate::databases::open_file(&database, false).map_err(|e| e.message)?;
        let mut tables = Vec::new();
        for t in payload["tables"].as_array().into_iter().flatten().filter_map(Json::as_str) {
            tables.push(capture::verify(&conn, t).map_err(|e| e.to_string())?);
        }
        let options = &payload["options"];
        let flag = |k: &str| options[k].as_bool().unwrap_or(false);
        let encode = EncodeOptions {
            envelope: Envelope::parse(options["envelope"].as_str().unwrap_or("wrapped"))
                .unwrap_or_default(),
            diff: flag("diff"),
            updated: flag("updated"),
            key_in_value: flag("key_in_value"),
            topic_in_value: flag("topic_in_value"),
        };
        encode.validate().map_err(|e| e.to_string())?;
        let resolved_every = options["resolved_micros"].as_i64().map(|m| {
            let checkpoint = options["min_checkpoint_frequency_micros"].as_i64().unwrap_or(0);
            // `resolved` alone: at every checkpoint (CockroachDB's default, about 5 s; ours 1 s).
            let micros = if m > 0 {
                m
            } else if checkpoint > 0 {
                checkpoint
            } else {
                1_000_000
            };
            Duration::from_micros(micros as u64)
        });
        let scan = progress["scan"].as_object().map(|s| Scan {
            table: s.get("table").and_then(Json::as_u64).unwrap_or(0) as usize,
            after: s
                .get("after")
                .and_then(|a| a.as_array())
                .map(|a| a.iter().map(datum_from).collect()),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let cursor = progress["cursor"].as_i64().unwrap_or(0);
        Ok(Self {
            id: job.id,
            database,
            conn,
            tables,
            sink_target: target_from(&payload["sink"]),
            sink_options: sink_options(options),
            config: config.clone(),
            sink: None,
            topics: Vec::new(),
            encode,
            resolved_every,
            last_resolved: Instant::now(),
            only_scan: options["initial_scan"].as_str() == Some("only"),
            cursor,
            scan,
            highwater: Hlc::from_nanos(progress["highwater_ns"].as_i64().unwrap_or(0)),
            runtime,
            next: None,
            data_version: None,
        })
    }

    fn progress(&self) -> Json {
        json!({
            "cursor": self.cursor,
            "scan": self.scan.as_ref().map(|scan| json!({
                "table": scan.table,
                "after": scan.after.as_ref().map(|a| a.iter().map(datum_json).collect::<Vec<_>>()),
            })),
            "highwater_ns": self.highwater.wall_ns,
        })
    }

    /// `PRAGMA data_version`: it changes whenever another connection commits to the database.
    fn data_version(&self) -> Option<i64> {
        self.conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
            .ok()
    }

    /// Waits up to `limit` (or until `stop`) for another connection to commit to the
    /// database, looking every [`WAKE`]: a commit is read within milliseconds, not at the
    /// next [`POLL`], at the price of a cheap pragma a few hundred times a second.
    fn wait_for_commit(&self, limit: Duration, stop: &AtomicBool) {
        let start = Instant::now();
        while start.elapsed() < limit && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(WAKE.min(limit.saturating_sub(start.elapsed())));
            if self.data_version() != self.data_version {
                return;
            }
        }
    }

    /// Opens the sink and creates its topics, once (again after a failure).
    fn sink(&mut self) -> Result<&dyn Sink, Failure> {
        if self.sink.is_none() {
            let sink = self
                .runtime
                .block_on(providers::sink::open(
                    &self.config,
                    &self.sink_target,
                    &self.sink_options,
                ))
                .map_err(|e| Failure::Retry(e.message()))?;
            let topics: Vec<String> = self.tables.iter().map(|t| sink.topic(&t.name)).collect();
            // Bounded like every other wait on the sink: a broker that does not answer is a
            // retry, never a changefeed stuck without a word.
            acknowledged(self.runtime.block_on(async {
                tokio::time::timeout(ACK_TIMEOUT, sink.ensure_topics(&topics)).await
            }))?;
            self.topics = topics;
            self.sink = Some(sink);
        }
        Ok(self.sink.as_deref().expect("opened above"))
    }

    fn send(&mut self, messages: Vec<Message>) -> Result<(), Failure> {
        self.send_then(messages, None).map(drop)
    }

    /// Sends `messages` and awaits their acknowledgement; meanwhile, with `prefetch`, reads
    /// and encodes the batch after that cursor (nothing is sent of it: a failure there just
    /// leaves it to be read again).
    fn send_then(
        &mut self,
        messages: Vec<Message>,
        prefetch: Option<i64>,
    ) -> Result<Option<Encoded>, Failure> {
        if messages.is_empty() {
            return Ok(None);
        }
        self.sink()?;
        let Feed { sink, runtime, conn, tables, topics, encode, .. } = self;
        let sink = sink.as_deref().expect("opened");
        let (answer, next) = runtime.block_on(async {
            let send = tokio::time::timeout(ACK_TIMEOUT, sink.emit(messages));
            tokio::pin!(send);
            // The first poll hands every message to the producer; the acknowledgements
            // arrive on its own threads while this one encodes.
            if let Poll::Ready(answer) = futures::poll!(send.as_mut()) {
                return (answer, None);
            }
            let next = prefetch
                .and_then(|from| encode_batch(conn, tables, topics, encode, from, None).ok());
            (send.await, next)
        });
        acknowledged(answer)?;
        Ok(next)
    }

    fn save(&self, jobs: &Jobs, status: &str) -> Result<(), Failure> {
        jobs.save_progress(self.id, &self.progress().to_string(), status)
            .map_err(|e| Failure::Retry(e.message))
    }

    fn step(&mut self, jobs: &Jobs) -> Result<Step, Failure> {
        self.sink()?;
        // Before reading: a commit from now on wakes an idle feed.
        self.data_version = self.data_version();
        if let Some(scan) = self.scan.clone() {
            return self.scan_page(jobs, scan);
        }
        if self.only_scan {
            return Ok(Step::Done);
        }
        self.stream(jobs, None)
    }

    /// Sends the next batch of captured changes (only those up to `until`, if given). While
    /// the sink acknowledges it, the batch after it is read and encoded, to be sent next if
    /// nothing changed meanwhile; progress still moves only with acknowledgements.
    fn stream(&mut self, jobs: &Jobs, until: Option<i64>) -> Result<Step, Failure> {
        if until.is_none() && self.sink()?.orders_in_flight() {
            return self.stream_ahead(jobs);
        }
        let batch = self.next_batch(until)?;
        let sent = !batch.messages.is_empty();
        let prefetch = (until.is_none() && !batch.caught_up).then_some(batch.cursor);
        self.next = self.send_then(batch.messages, prefetch)?;
        // Only what the sink acknowledged moves the progress a retry would save.
        self.highwater = self.highwater.max(batch.highwater);
        self.cursor = batch.cursor;
        if sent {
            self.save(jobs, "running: streaming changes")?;
        }
        if batch.caught_up {
            self.maybe_resolved(jobs)?;
        }
        Ok(if sent || !batch.caught_up { Step::Busy } else { Step::Idle })
    }

    /// The batch after the cursor: the one encoded ahead if it is still that one, else read now.
    fn next_batch(&mut self, until: Option<i64>) -> Result<Encoded, Failure> {
        let ready = self.next.take().filter(|next| {
            until.is_none() && next.from == self.cursor && next.topics == self.topics
        });
        match ready {
            Some(batch) => Ok(batch),
            None => encode_batch(
                &self.conn,
                &self.tables,
                &self.topics,
                &self.encode,
                self.cursor,
                until,
            ),
        }
    }

    /// [`Feed::stream`] for a sink that keeps batches in flight in order (Kafka): up to
    /// [`IN_FLIGHT`] batches are handed over before the oldest one's acknowledgement is
    /// awaited, instead of one round trip through the broker per batch, and a reader thread
    /// reads and encodes the next ones meanwhile (on 2 cores it overlaps SQLite's reads with
    /// the hand-over to the sink). Progress moves only over acknowledged batches, in order, and is
    /// saved once per step (after at most [`STEP_BATCHES`] batches, so the job's status and
    /// sink connection are still looked at between them); a failure leaves it at the last
    /// acknowledged batch, and what followed is sent again.
    fn stream_ahead(&mut self, jobs: &Jobs) -> Result<Step, Failure> {
        type Flight<'a> = std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<Result<(), providers::Error>, tokio::time::error::Elapsed>,
                    > + 'a,
            >,
        >;
        let first = self.next_batch(None)?;
        let start = self.cursor;
        let Feed { sink, runtime, conn, tables, topics, encode, cursor, highwater, .. } = self;
        let sink = sink.as_deref().expect("opened by stream");
        let (tables, topics, encode) = (&*tables, &*topics, &*encode);
        let mut caught_up = first.caught_up;
        let mut sent = false;
        // A reader thread reads and encodes the batches after the first, in order, while this
        // one hands them over as they come and awaits their acknowledgements; it stops at the
        // end of the captured changes, after STEP_BATCHES, at an error, or when this side
        // stops taking them.
        let (ahead, mut batches) = tokio::sync::mpsc::channel::<Result<Encoded, Failure>>(1);
        let outcome: Result<(), Failure> = std::thread::scope(|scope| {
            if !first.caught_up {
                let from = first.cursor;
                scope.spawn(move || {
                    let mut from = from;
                    for _ in 1..STEP_BATCHES {
                        // The reader has the connection to itself (`&mut`) until the step ends.
                        let batch = encode_batch(&*conn, tables, topics, encode, from, None);
                        let last = batch.as_ref().map_or(true, |b| b.caught_up);
                        if let Ok(b) = &batch {
                            from = b.cursor;
                        }
                        if ahead.blocking_send(batch).is_err() || last {
                            return;
                        }
                    }
                });
            } else {
                drop(ahead);
            }
            let outcome = runtime.block_on(async {
                let mut flights: std::collections::VecDeque<(Flight<'_>, i64, Hlc)> =
                    std::collections::VecDeque::new();
                let mut batch = Some(first);
                let mut more = true;
                loop {
                    if let Some(b) = batch.take() {
                        caught_up = b.caught_up;
                        let (to, high) = (b.cursor, b.highwater);
                        let flight: Flight<'_> = if b.messages.is_empty() {
                            Box::pin(std::future::ready(Ok(Ok(()))))
                        } else {
                            sent = true;
                            let mut send =
                                Box::pin(tokio::time::timeout(ACK_TIMEOUT, sink.emit(b.messages)));
                            // The first poll hands every message to the producer, or fails:
                            // then nothing after this batch may be handed over before it is
                            // sent again.
                            match futures::poll!(send.as_mut()) {
                                Poll::Ready(answer) => {
                                    acknowledged(answer)?;
                                    Box::pin(std::future::ready(Ok(Ok(()))))
                                }
                                Poll::Pending => send,
                            }
                        };
                        flights.push_back((flight, to, high));
                    }
                    let take = more && flights.len() < IN_FLIGHT;
                    let next = match flights.front_mut() {
                        None if !take => return Ok(()),
                        None => Ahead::Batch(batches.recv().await),
                        Some((flight, ..)) => tokio::select! {
                            biased;
                            next = batches.recv(), if take => Ahead::Batch(next),
                            answer = flight.as_mut() => Ahead::Acknowledged(answer),
                        },
                    };
                    match next {
                        Ahead::Batch(Some(next)) => batch = Some(next?),
                        Ahead::Batch(None) => more = false,
                        Ahead::Acknowledged(answer) => {
                            let (_, to, high) = flights.pop_front().expect("the one awaited");
                            acknowledged(answer)?;
                            *cursor = to;
                            *highwater = (*highwater).max(high);
                        }
                    }
                }
            });
            // The reader stops at its next batch.
            drop(batches);
            outcome
        });
        if self.cursor != start {
            self.save(jobs, "running: streaming changes")?;
        }
        outcome?;
        if caught_up {
            self.maybe_resolved(jobs)?;
        }
        Ok(if sent || !caught_up { Step::Busy } else { Step::Idle })
    }

    /// Emits a resolved timestamp when one is due: only after every change up to it is sent.
    fn maybe_resolved(&mut self, jobs: &Jobs) -> Result<(), Failure> {
        let Some(every) = self.resolved_every else { return Ok(()) };
        if self.last_resolved.elapsed() < every {
            return Ok(());
        }
        let resolved = capture::resolve(&self.conn).map_err(|e| permanent_or_retry(&e))?;
        if resolved.seq > self.cursor {
            // Changes committed meanwhile: send them first, resolve next time.
            return Ok(());
        }
        let payload = envelope::encode_resolved(self.encode.envelope, resolved.ts);
        self.sink()?;
        let sink = self.sink.as_deref().expect("opened");
        acknowledged(self.runtime.block_on(async {
            tokio::time::timeout(ACK_TIMEOUT, sink.emit_resolved(&self.topics, payload)).await
        }))?;
        self.highwater = self.highwater.max(resolved.ts);
        self.last_resolved = Instant::now();
        let _ = capture::gc(&self.conn, self.gc_floor(jobs));
        self.save(jobs, "running: resolved")
    }

    /// The changes every changefeed of this database has consumed.
    fn gc_floor(&self, jobs: &Jobs) -> i64 {
        let mut floor = self.cursor;
        if let Ok(list) = jobs.long_jobs("CHANGEFEED") {
            for job in list.iter().filter(|j| j.id != self.id) {
                let same_db = serde_json::from_str::<Json>(&job.payload)
                    .ok()
                    .and_then(|p| {
                        p["database"]
                            .as_str()
                            .map(|d| crate::databases::Databases::new(Path::new("")).path(d))
                    })
                    .is_some_and(|p| p.file_name() == self.database.file_name());
                if same_db {
                    let cursor = job
                        .progress
                        .as_deref()
                        .and_then(|p| serde_json::from_str::<Json>(p).ok())
                        .and_then(|p| p["cursor"].as_i64())
                        .unwrap_or(0);
                    floor = floor.min(cursor);
                }
            }
        }
        floor
    }

    /// One page of the initial scan. A page is the table's state at one resolved point: every
    /// change up to the point is sent first, and a page during which a write committed is read
    /// again, so each key's messages keep rising timestamps and a scanned row is never stamped
    /// before a change it already shows.
    fn scan_page(&mut self, jobs: &Jobs, scan: Scan) -> Result<Step, Failure> {
        let Scan { table: index, after } = scan;
        let before = capture::resolve(&self.conn).map_err(|e| permanent_or_retry(&e))?;
        if self.cursor < before.seq {
            return self.stream(jobs, Some(before.seq));
        }
        let Some(table) = self.tables.get(index).cloned() else {
            self.scan = None;
            self.save(jobs, "running: initial scan done")?;
            return Ok(Step::Busy);
        };
        let rows = capture::scan(&self.conn, &table, after.as_deref(), SCAN_PAGE)
            .map_err(|e| permanent_or_retry(&e))?;
        let after_read = capture::resolve(&self.conn).map_err(|e| permanent_or_retry(&e))?;
        if after_read.seq != before.seq {
            // A write committed while the page was read: read it again, after its change.
            return Ok(Step::Busy);
        }
        let topic = &self.topics[index];
        let mut encoder = Encoder::default();
        let messages = rows
            .iter()
            .map(|row| encoder.message(&self.encode, &row.event(&table, before.ts, topic)))
            .collect();
        self.send(messages)?;
        self.scan = Some(if rows.len() < SCAN_PAGE {
            Scan { table: index + 1, after: None }
        } else {
            Scan { table: index, after: rows.last().map(|r| r.key.clone()) }
        });
        self.save(jobs, &format!("running: initial scan of {}", table.name))?;
        Ok(Step::Busy)
    }
}

/// What [`Feed::stream_ahead`] waits for next: a batch from its reader (`None`: no more), or
/// the oldest batch in flight acknowledged.
enum Ahead {
    Batch(Option<Result<Encoded, Failure>>),
    Acknowledged(Result<Result<(), providers::Error>, tokio::time::error::Elapsed>),
}

/// A batch of changes read and encoded, not yet sent.
struct Encoded {
    /// The cursor it was read after, and the topics it was encoded for: it is sent only
    /// from that cursor, to those topics.
    from: i64,
    topics: Vec<String>,
    messages: Vec<Message>,
    /// The cursor once it is acknowledged.
    cursor: i64,
    /// Whether it holds every change stamped when it was read.
    caught_up: bool,
    /// Its latest change's timestamp.
    highwater: Hlc,
}

/// Reads the changes after `from` (only those up to `until`, if given) and encodes them.
fn encode_batch(
    conn: &rusqlite::Connection,
    tables: &[capture::CapturedTable],
    topics: &[String],
    options: &EncodeOptions,
    from: i64,
    until: Option<i64>,
) -> Result<Encoded, Failure> {
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    // Read on this thread (SQLite's rows are copied out), encoded on up to ENCODERS.
    let mut read_changes = Copied::default();
    let read = capture::visit_changes(conn, &names, from, BATCH, |change| {
        if until.is_none_or(|until| change.seq <= until) {
            read_changes.push(change);
        }
        Ok(())
    })
    .map_err(|e| permanent_or_retry(&e))?;
    let count = read_changes.changes.len();
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores.min(ENCODERS).min(count / ENCODE_AT_LEAST).max(1);
    let per_thread = count.div_ceil(threads);
    let encode_part = |part: usize| {
        let mut encoder = Encoder::default();
        let mut transcoder = capture::Transcoder::default();
        let mut highwater = Hlc::default();
        let range = part * per_thread..((part + 1) * per_thread).min(count);
        let mut messages = Vec::with_capacity(range.len());
        for i in range {
            let change = read_changes.get(i);
            let (table, topic) = (&tables[change.table], &topics[change.table]);
            messages.push(
                change
                    .with_event(table, topic, &mut transcoder, |e| encoder.message(options, e))?,
            );
            highwater = highwater.max(change.ts);
        }
        Ok::<_, capture::CaptureError>((messages, highwater))
    };
    let parts = std::thread::scope(|scope| {
        let others: Vec<_> =
            (1..threads).map(|part| scope.spawn(move || encode_part(part))).collect();
        let mut parts = vec![encode_part(0)];
        parts.extend(others.into_iter().map(|t| t.join().expect("an encoder thread panicked")));
        parts
    });
    let mut messages = Vec::with_capacity(count);
    let mut highwater = Hlc::default();
    for part in parts {
        let (part, high) = part.map_err(|e| permanent_or_retry(&e))?;
        messages.extend(part);
        highwater = highwater.max(high);
    }
    let (cursor, caught_up) = match until {
        Some(until) => (read.cursor.min(until), false),
        None => (read.cursor, read.caught_up),
    };
    Ok(Encoded { from, topics: topics.to_vec(), messages, cursor, caught_up, highwater })
}

/// Changes as [`capture::visit_changes`] read them, copied out of SQLite's rows into one
/// buffer, so that several threads can encode them.
#[derive(Default)]
struct Copied {
    bytes: Vec<u8>,
    changes: Vec<CopiedChange>,
}

struct CopiedChange {
    seq: i64,
    table: usize,
    op: capture::Op,
    ts: Hlc,
    key: std::ops::Range<usize>,
    before: Option<std::ops::Range<usize>>,
    after: Option<std::ops::Range<usize>>,
}

impl Copied {
    fn push(&mut self, change: &capture::RawChange<'_>) {
        let bytes = &mut self.bytes;
        let mut copy = |text: &[u8]| {
            bytes.extend_from_slice(text);
            bytes.len() - text.len()..bytes.len()
        };
        let key = copy(change.key);
        let before = change.before.map(&mut copy);
        let after = change.after.map(&mut copy);
        self.changes.push(CopiedChange {
            seq: change.seq,
            table: change.table,
            op: change.op,
            ts: change.ts,
            key,
            before,
            after,
        });
    }

    fn get(&self, i: usize) -> capture::RawChange<'_> {
        let c = &self.changes[i];
        let text = |range: &std::ops::Range<usize>| &self.bytes[range.clone()];
        capture::RawChange {
            seq: c.seq,
            table: c.table,
            op: c.op,
            key: text(&c.key),
            before: c.before.as_ref().map(text),
            after: c.after.as_ref().map(text),
            ts: c.ts,
        }
    }
}

/// Encodes messages through one scratch buffer, so each message's key and value are
/// allocated once, at their final size.
#[derive(Default)]
struct Encoder {
    scratch: Vec<u8>,
}

impl Encoder {
    fn message(&mut self, options: &EncodeOptions, event: &envelope::Event<'_>) -> Message {
        self.scratch.clear();
        envelope::write_key(&mut self.scratch, event.key);
        let key = self.scratch.clone();
        self.scratch.clear();
        envelope::write_value(&mut self.scratch, options, event);
        Message { topic: event.topic.to_owned(), key, value: self.scratch.clone() }
    }
}

/// A sink's answer to a send that had [`ACK_TIMEOUT`] to be acknowledged.
fn acknowledged(
    answer: Result<Result<(), providers::Error>, tokio::time::error::Elapsed>,
) -> Result<(), Failure> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::Retry(e.message())),
        Err(_) => Err(Failure::Retry(format!(
            "the sink acknowledged nothing within {} s",
            ACK_TIMEOUT.as_secs()
        ))),
    }
}

fn permanent_or_retry(e: &capture::CaptureError) -> Failure {
    let text = e.to_string();
    if matches!(e, capture::CaptureError::Sqlite { .. }) {
        Failure::Retry(crate::error_chain(e))
    } else {
        Failure::Permanent(text)
    }
}

fn datum_json(d: &Datum) -> Json {
    match d {
        Datum::Null => Json::Null,
        Datum::Integer(i) => json!({ "i": i }),
        Datum::Real(r) => json!({ "r": r }),
        Datum::Text(t) => json!({ "t": t }),
        Datum::Blob(b) => json!({ "b": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
    }
}

fn datum_from(j: &Json) -> Datum {
    if let Some(i) = j.get("i").and_then(Json::as_i64) {
        Datum::Integer(i)
    } else if let Some(r) = j.get("r").and_then(Json::as_f64) {
        Datum::Real(r)
    } else if let Some(t) = j.get("t").and_then(Json::as_str) {
        Datum::Text(t.to_owned())
    } else if let Some(b) = j.get("b").and_then(Json::as_str) {
        Datum::Blob(
            (0..b.len() / 2)
                .filter_map(|i| u8::from_str_radix(&b[2 * i..2 * i + 2], 16).ok())
                .collect(),
        )
    } else {
        Datum::Null
    }
}
