//! A Kafka broker that goes away in the middle of a changefeed and comes back on the same
//! port: the changefeed (run by a real `extconn start` node) reports `retrying: …` in SHOW
//! CHANGEFEED JOBS, backs off instead of spinning, and once the broker is back delivers every
//! change, in order per key.
//!
//! The test runs its own tansu (built by `scripts/services start` into `.cache/tansu`) so that
//! it can stop it. Its storage is S3 on the services' moto rather than memory: a restarted
//! broker then still has its topics and every message it acknowledged before it went away, so
//! the whole history is checked from one topic, including the changes that were in flight when
//! the broker died.

mod common;
mod kafka;

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{env, host, ok, root, unique};
use extconn_host::{Host, Outcome, Session, Value};
use kafka::{Record, assert_resolved_order, read_all};
use serde_json::Value as Json;

/// The tansu binary `scripts/services start` installs.
fn tansu_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/tansu/bin/tansu");
    assert!(
        path.exists(),
        "{} is missing: this test runs its own tansu broker. Run scripts/services start once \
         (it builds tansu into .cache/tansu), or run the tests with scripts/test",
        path.display()
    );
    path
}

/// A tansu broker on 127.0.0.1:`port`, keeping its topics in the test bucket on moto under
/// its cluster id, so that a restart finds them again.
struct Broker {
    port: u16,
    cluster: String,
    log: PathBuf,
    child: Option<Child>,
}

impl Broker {
    fn start(port: u16, cluster: &str, log: PathBuf) -> Self {
        let mut broker = Self { port, cluster: cluster.to_owned(), log, child: None };
        broker.restart();
        broker
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(tansu_binary())
            .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &listener])
            .args(["--storage-engine", "s3://extconn-test/", "--cluster-id", &self.cluster])
            .env("AWS_ENDPOINT", env("EXTCONN_TEST_S3_ENDPOINT"))
            .env("AWS_ACCESS_KEY_ID", env("EXTCONN_TEST_S3_ACCESS_KEY_ID"))
            .env("AWS_SECRET_ACCESS_KEY", env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY"))
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("tansu exited ({status}) while starting: {}", self.log_text());
            }
            assert!(Instant::now() < deadline, "tansu did not listen within 30 s: {}", {
                self.log_text()
            });
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An `extconn start` node whose log (warnings and up) goes to `log`.
struct Node(Child);

impl Node {
    fn start(dir: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_extconn"))
            .arg("--data-dir")
            .arg(dir)
            .arg("start")
            .env("RUST_LOG", "warn,extconn_host::node=info")
            .stderr(log)
            .spawn()
            .expect("the extconn binary starts");
        Self(child)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Per key, the `after` values in rising `updated` order (a message not newer than the last
/// one of its key is a re-delivery, which at-least-once allows).
fn history(messages: &[Record]) -> BTreeMap<String, Vec<Json>> {
    let mut per_key: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for (_, key, value) in messages {
        let Some(key) = key else { continue };
        let value: Json = serde_json::from_slice(value).unwrap();
        let key = String::from_utf8(key.clone()).unwrap();
        let updated = value["updated"].as_str().unwrap().to_owned();
        // Timestamps have the same number of digits: string order is time order.
        if last.get(&key).is_some_and(|prev| *prev >= updated) {
            continue;
        }
        last.insert(key.clone(), updated);
        per_key.entry(key).or_default().push(value["after"].clone());
    }
    per_key
}

/// Row 4's names as delivered, repeats of the same name (the initial scan's copy) merged.
fn names_of_row_4(messages: &[Record]) -> Vec<String> {
    let mut names: Vec<String> = history(messages)
        .get("[4]")
        .into_iter()
        .flatten()
        .filter_map(|after| after.get("name").and_then(Json::as_str).map(str::to_owned))
        .collect();
    names.dedup();
    names
}

/// Whether `done` came true within `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    true
}

/// The job's (status, running_status) as SHOW CHANGEFEED JOBS reports them.
fn job_state(host: &mut Host, job: i64) -> (String, String) {
    let results = ok(host, &root(), "SHOW CHANGEFEED JOBS");
    let Ok(Outcome::Rows(rows)) = &results[0].outcome else { panic!("{results:?}") };
    let row = rows
        .rows
        .iter()
        .find(|r| r[0] == Value::Int(job))
        .unwrap_or_else(|| panic!("job {job} is not in SHOW CHANGEFEED JOBS: {rows:?}"));
    let text = |v: &Value| match v {
        Value::Text(t) => t.clone(),
        other => format!("{other:?}"),
    };
    (text(&row[4]), text(&row[5]))
}

fn update(host: &mut Host, session: &Session, versions: std::ops::Range<u32>) {
    for i in versions {
        ok(host, session, &format!("UPDATE users SET name = 'v{i}' WHERE id = 4"));
    }
}

#[test]
fn a_changefeed_retries_while_the_broker_is_away_and_loses_nothing_when_it_returns() {
    let (mut host, dir) = host();
    let logs = tempfile::tempdir().unwrap();
    let mut broker =
        Broker::start(free_port(), &unique("broker-outage"), logs.path().join("tansu.log"));
    let brokers = broker.brokers();
    let session = Session { database: Some("movr".into()), ..root() };
    let prefix = unique("outage");
    ok(
        &mut host,
        &root(),
        "CREATE DATABASE movr; USE movr;
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT);
         INSERT INTO users VALUES (1, 'ana', 'boston'), (2, 'bo', 'seattle'), (3, 'cy', NULL),
                                  (4, 'v0', 'denver')",
    );
    ok(
        &mut host,
        &root(),
        &format!(
            "CREATE EXTERNAL CONNECTION kafka_sink AS 'kafka://{brokers}?topic_prefix={prefix}_'"
        ),
    );
    let created = ok(
        &mut host,
        &session,
        "CREATE CHANGEFEED FOR TABLE movr.users INTO 'external://kafka_sink' WITH resolved = '1s', updated",
    );
    let Ok(Outcome::Rows(rows)) = &created[0].outcome else { panic!("{created:?}") };
    let Value::Int(job) = rows.rows[0][0] else { panic!("{rows:?}") };
    let topic = format!("{prefix}_users");
    let node_log = logs.path().join("node.log");
    let _node = Node::start(dir.path(), &node_log);
    let context = |what: &str, broker: &Broker| {
        format!(
            "{what}\nnode log:\n{}\ntansu log:\n{}",
            std::fs::read_to_string(&node_log).unwrap_or_default(),
            broker.log_text()
        )
    };

    // The scan, then a first run of updates, arrive. (Waiting for the scan first: an update
    // committed before the scan reads the row would hide `v0`, which is then never a state.)
    let scanned = wait_for(Duration::from_secs(60), || {
        names_of_row_4(&read_all(&brokers, &topic)).first().map(String::as_str) == Some("v0")
    });
    assert!(scanned, "{}", context("the initial scan did not arrive in 60 s", &broker));
    update(&mut host, &session, 1..20);
    let before = wait_for(Duration::from_secs(60), || {
        names_of_row_4(&read_all(&brokers, &topic)).last().map(String::as_str) == Some("v19")
    });
    let seen = names_of_row_4(&read_all(&brokers, &topic));
    assert!(before, "{}", context(&format!("v19 did not arrive in 60 s: {seen:?}"), &broker));

    // The broker dies in the middle of a run of updates, more are written while it is away.
    update(&mut host, &session, 20..30);
    broker.stop();
    let down = Instant::now();
    update(&mut host, &session, 30..60);
    ok(&mut host, &session, "UPDATE users SET city = 'chicago' WHERE id = 1");
    ok(&mut host, &session, "DELETE FROM users WHERE id = 2");
    let limit = Duration::from_secs(90);
    let deadline = Instant::now() + limit;
    let retrying = loop {
        let (status, running) = job_state(&mut host, job);
        assert_eq!(
            status,
            "running",
            "{}",
            context("the job stopped running while the broker was away", &broker)
        );
        if running.starts_with("retrying: ") {
            break running;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            context(
                &format!(
                    "no `retrying: …` in SHOW CHANGEFEED JOBS within {limit:?} (last: {running:?})"
                ),
                &broker
            )
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    // Back on the same port with the same storage; more writes after it returned.
    broker.restart();
    update(&mut host, &session, 60..80);
    let delivered = wait_for(Duration::from_secs(180), || {
        let messages = read_all(&brokers, &topic);
        let last_update = messages
            .iter()
            .rev()
            .find(|(_, k, _)| k.as_deref() == Some(b"[4]".as_slice()))
            .map(|(_, _, v)| serde_json::from_slice::<Json>(v).unwrap()["updated"].clone());
        let resolved_after = messages.iter().any(|(_, k, v)| {
            k.is_none()
                && last_update.as_ref().and_then(Json::as_str).is_some_and(|u| {
                    serde_json::from_slice::<Json>(v).unwrap()["resolved"]
                        .as_str()
                        .is_some_and(|r| r > u)
                })
        });
        names_of_row_4(&messages).last().map(String::as_str) == Some("v79") && resolved_after
    });

    let troubled = down.elapsed();
    let messages = read_all(&brokers, &topic);
    let names = names_of_row_4(&messages);
    let what = format!("v79 and a resolved timestamp after it did not arrive in 180 s: {names:?}");
    assert!(delivered, "{}", context(&what, &broker));
    let expected: Vec<String> = (0..80).map(|i| format!("v{i}")).collect();
    assert_eq!(
        names,
        expected,
        "{}",
        context("row 4's history has gaps or is out of order", &broker)
    );
    let per_key = history(&messages);
    assert_eq!(per_key["[1]"].last().unwrap()["city"], "chicago", "{per_key:?}");
    assert_eq!(per_key.get("[2]").and_then(|h| h.last()), Some(&Json::Null), "{per_key:?}");
    assert_eq!(per_key["[3]"].last().unwrap()["name"], "cy", "{per_key:?}");
    // In each partition, resolved timestamps only rise and no new change follows a resolved
    // timestamp above it: duplicates, if any, are only of changes already resolved-over.
    assert_resolved_order(&messages);

    // The job reports the outage in words, then recovers.
    assert!(
        retrying.contains("within") || retrying.contains("kafka") || retrying.contains("broker"),
        "running_status during the outage says why: {retrying:?}"
    );
    let recovered = wait_for(Duration::from_secs(30), || {
        let (status, running) = job_state(&mut host, job);
        status == "running" && running.starts_with("running: ")
    });
    let state = job_state(&mut host, job);
    assert!(recovered, "{}", context(&format!("the job did not recover: {state:?}"), &broker));
    // Backoff, not a hot loop: the sleeps between attempts are at least 0.5 s, so few
    // attempts fit between the broker's end and the recovery.
    let node_log_text = std::fs::read_to_string(&node_log).unwrap_or_default();
    let attempts = node_log_text.matches("changefeed retrying").count();
    assert!(attempts >= 1, "{}", context("the node logged no retry", &broker));
    let most = (troubled.as_secs_f64() / 0.5).ceil() as usize + 2;
    assert!(
        attempts <= most,
        "{}",
        context(&format!("{attempts} retries in {troubled:?}"), &broker)
    );
}

#[test]
fn alter_of_the_sink_connection_moves_a_running_changefeed_without_losing_messages() {
    let (mut host, dir) = host();
    let logs = tempfile::tempdir().unwrap();
    let first = common::env("EXTCONN_TEST_KAFKA_BROKERS");
    let second = Broker::start(free_port(), &unique("broker-alter"), logs.path().join("tansu.log"));
    let session = Session { database: Some("movr".into()), ..root() };
    let prefix = unique("alter");
    ok(
        &mut host,
        &root(),
        "CREATE DATABASE movr; USE movr;
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT);
         INSERT INTO users VALUES (4, 'v0', 'denver')",
    );
    ok(
        &mut host,
        &root(),
        &format!("CREATE EXTERNAL CONNECTION sink AS 'kafka://{first}?topic_prefix={prefix}_'"),
    );
    ok(
        &mut host,
        &session,
        "CREATE CHANGEFEED FOR TABLE users INTO 'external://sink' WITH updated, resolved = '1s'",
    );
    let topic = format!("{prefix}_users");
    let node_log = logs.path().join("node.log");
    let _node = Node::start(dir.path(), &node_log);
    update(&mut host, &session, 1..10);
    assert!(
        wait_for(Duration::from_secs(60), || names_of_row_4(&read_all(&first, &topic))
            .last()
            .is_some_and(|n| n == "v9")),
        "the first broker did not get v9"
    );
    // Point the connection at the second broker while the changefeed runs: no pause, no resume.
    ok(
        &mut host,
        &root(),
        &format!(
            "ALTER EXTERNAL CONNECTION sink AS 'kafka://{}?topic_prefix={prefix}_'",
            second.brokers()
        ),
    );
    // The node looks at the connection once a second: rows written before it moves still go to
    // the first broker. Wait until it says it moved, then write the rest.
    assert!(
        wait_for(Duration::from_secs(30), || std::fs::read_to_string(&node_log)
            .is_ok_and(|log| log.contains("the sink's connection changed"))),
        "the node did not follow the ALTER; its log:\n{}",
        std::fs::read_to_string(&node_log).unwrap_or_default()
    );
    update(&mut host, &session, 10..30);
    assert!(
        wait_for(Duration::from_secs(120), || names_of_row_4(&read_all(&second.brokers(), &topic))
            .last()
            .is_some_and(|n| n == "v29")),
        "the second broker did not get v29; node log:\n{}",
        std::fs::read_to_string(&node_log).unwrap_or_default()
    );
    // Across both brokers, every version written after CREATE CHANGEFEED arrives, in order
    // (v0 only if the initial scan ran before the first update).
    let mut all = read_all(&first, &topic);
    all.extend(read_all(&second.brokers(), &topic));
    let names = names_of_row_4(&all);
    let changes: Vec<String> = names.iter().skip_while(|n| *n == "v0").cloned().collect();
    let expected: Vec<String> = (1..30).map(|i| format!("v{i}")).collect();
    assert_eq!(changes, expected, "{names:?}");
}
