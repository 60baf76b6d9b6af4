//! CREATE CHANGEFEED into cloud storage (nodelocal, and S3 on moto started by
//! `scripts/services`) and into a webhook (an HTTPS endpoint served by this test, with a
//! certificate made here), run by a real `extconn start` node: every file and request is read
//! back and checked against the table's history and CockroachDB's formats.

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{env, err, host, ok, q, root, unique};
use extconn_host::{Host, Outcome, Session, Value};
use extconn_providers::{Target, storage};
use serde_json::Value as Json;

/// A secret that must never show up in any output.
const CANARY: &str = "Bearer CANARY-7f3e-SECRET";

fn node(dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_extconn"))
        .arg("--data-dir")
        .arg(dir)
        .arg("start")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the extconn binary starts")
}

/// Kills a node on drop, so a failed assertion leaves no process behind.
struct NodeGuard(Child);

impl Drop for NodeGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool, mut explain: impl FnMut() -> String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}; {}", explain());
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio")
}

/// One message as a reader sees it, in reading order: the file or request it came in, and the
/// message (a row change with its key in its value, or a resolved timestamp).
#[derive(Debug, Clone)]
struct Seen {
    source: String,
    message: Json,
}

/// Per key, the `after` values in the order their `updated` timestamps rise (a message whose
/// timestamp is not above the last one seen for its key is a re-delivery), and the resolved
/// timestamps. Also checks CockroachDB's promise: once a resolved timestamp is seen, no
/// previously unseen change at or below it follows.
fn history(seen: &[Seen]) -> (BTreeMap<String, Vec<Json>>, Vec<String>) {
    let mut per_key: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut resolved: Vec<String> = Vec::new();
    for Seen { source, message } in seen {
        if let Some(ts) = message.get("resolved") {
            let ts = ts.as_str().unwrap().to_owned();
            if let Some(prev) = resolved.last() {
                assert!(ts >= *prev, "{source}: resolved went back from {prev} to {ts}");
            }
            resolved.push(ts);
            continue;
        }
        let key = message["key"].to_string();
        let updated = message["updated"].as_str().unwrap_or_else(|| panic!("{source}: {message}"));
        if last.get(&key).is_some_and(|prev| prev.as_str() >= updated) {
            continue;
        }
        if let Some(newest) = resolved.last() {
            assert!(
                updated > newest.as_str(),
                "{source}: a new change at {updated} came after resolved {newest}"
            );
        }
        last.insert(key.clone(), updated.to_owned());
        per_key.entry(key).or_default().push(message["after"].clone());
    }
    (per_key, resolved)
}

fn name_of(after: &Json) -> Option<&str> {
    after.get("name").and_then(Json::as_str)
}

/// Whether row 4 reached `v49` and a resolved timestamp came after that change.
fn complete(seen: &[Seen]) -> bool {
    let (per_key, resolved) = history(seen);
    let last_update = seen
        .iter()
        .rev()
        .find(|s| s.message["key"] == serde_json::json!([4]))
        .and_then(|s| s.message["updated"].as_str().map(str::to_owned));
    per_key.get("[4]").and_then(|h| h.last()).and_then(name_of) == Some("v49")
        && last_update.is_some_and(|u| resolved.iter().any(|r| *r > u))
}

/// The history checks every sink shares: the scan and every change arrive, in order per key.
fn check_history(seen: &[Seen]) {
    let (per_key, resolved) = history(seen);
    let mut names: Vec<&str> = per_key["[4]"].iter().filter_map(name_of).collect();
    names.dedup();
    let expected: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let tail: Vec<&str> = names.iter().skip_while(|n| **n != "v0").copied().collect();
    assert_eq!(tail, expected, "row 4's history: {names:?}");
    assert_eq!(per_key.get("[2]").and_then(|h| h.last()), Some(&Json::Null), "{per_key:?}");
    assert_eq!(per_key["[1]"].last().unwrap()["city"], "chicago");
    assert_eq!(per_key["[3]"].last().unwrap()["name"], "cy");
    assert!(!resolved.is_empty());
}

fn make_users(host: &mut Host) {
    ok(
        host,
        &root(),
        "CREATE DATABASE movr; USE movr;
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT);
         INSERT INTO users VALUES (1, 'ana', 'boston'), (2, 'bo', 'seattle'), (3, 'cy', NULL)",
    );
}

/// Writes what `complete` waits for: updates, a delete, an insert and 50 versions of it, with
/// `between` run halfway (a node restart).
fn write_changes(host: &mut Host, mut between: impl FnMut()) {
    let session = Session { database: Some("movr".into()), ..root() };
    ok(
        host,
        &session,
        "UPDATE users SET city = 'chicago' WHERE id = 1; DELETE FROM users WHERE id = 2",
    );
    ok(host, &session, "INSERT INTO users VALUES (4, 'v0', 'denver')");
    for i in 1..25 {
        ok(host, &session, &format!("UPDATE users SET name = 'v{i}' WHERE id = 4"));
    }
    between();
    for i in 25..50 {
        ok(host, &session, &format!("UPDATE users SET name = 'v{i}' WHERE id = 4"));
    }
}

fn job_id(results: &[extconn_host::StatementResult]) -> i64 {
    let Ok(Outcome::Rows(rows)) = &results[0].outcome else { panic!("{results:?}") };
    let Value::Int(job) = rows.rows[0][0] else { panic!("{rows:?}") };
    job
}

/// `SHOW CHANGEFEED JOBS`, as text, for failure messages and canary checks.
fn jobs_text(host: &mut Host) -> String {
    format!("{:?}", ok(host, &root(), "SHOW CHANGEFEED JOBS"))
}

// ---------------------------------------------------------------------------------------------
// Cloud storage

/// Every file under the location, read in name order: (key, content).
fn read_files(location: &storage::Location) -> Vec<(String, Vec<u8>)> {
    runtime().block_on(async {
        let mut out = Vec::new();
        for meta in location.list("", None).await.unwrap() {
            out.push((meta.key.clone(), location.get(&meta.key).await.unwrap()));
        }
        out
    })
}

/// Checks every file's name and content; returns the messages in reading order.
fn parse_files(files: &[(String, Vec<u8>)], partitioned: bool) -> Vec<Seen> {
    let mut seen = Vec::new();
    for (key, content) in files {
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        if partitioned {
            // Daily: `YYYY-MM-DD`, the date of the file's timestamp.
            assert_eq!(dir.len(), 10, "{key}: not in a daily directory");
            let date = &name[..8];
            assert_eq!(dir.replace('-', ""), date, "{key}: directory and timestamp disagree");
        } else {
            assert_eq!(dir, "", "{key}: flat partitioning has no directory");
        }
        if let Some(ts) = name.strip_suffix(".RESOLVED") {
            assert_eq!(ts.len(), 33, "{key}: the timestamp is YYYYMMDDHHMMSS + 9 + 10 digits");
            assert!(ts.bytes().all(|b| b.is_ascii_digit()), "{key}");
            let message: Json = serde_json::from_slice(content)
                .unwrap_or_else(|e| panic!("{key}: {e}: {:?}", String::from_utf8_lossy(content)));
            assert!(message["resolved"].is_string(), "{key}: {message}");
            seen.push(Seen { source: key.clone(), message });
            continue;
        }
        // <timestamp>-<session>-<node>-<sink>-<file id>-<topic>-<schema id>.ndjson
        let stem = name.strip_suffix(".ndjson").unwrap_or_else(|| panic!("{key}: not ndjson"));
        let parts: Vec<&str> = stem.split('-').collect();
        assert_eq!(parts.len(), 7, "{key}: not <ts>-<uniquer>-<topic>-<schema>");
        assert_eq!(parts[0].len(), 33, "{key}");
        assert_eq!(parts[4].len(), 8, "{key}: the file id has 8 hex digits");
        assert_eq!(&parts[5..], ["users", "1"], "{key}");
        let text = std::str::from_utf8(content).unwrap();
        assert!(text.ends_with('\n'), "{key}: lines end with a newline");
        for line in text.lines() {
            let message: Json =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{key}: {e}: {line}"));
            assert!(message.get("key").is_some(), "{key}: key_in_value puts the key in: {line}");
            assert!(message.get("after").is_some(), "{key}: {line}");
            seen.push(Seen { source: key.clone(), message });
        }
    }
    seen
}

/// A changefeed into `sink` (its URI as CREATE CHANGEFEED takes it) and read back through
/// `location`, across a node restart.
fn cloud_storage_changefeed(
    sink: &str,
    location: impl Fn(&Host) -> storage::Location,
    partitioned: bool,
) {
    let (mut host, dir) = host();
    make_users(&mut host);
    let session = Session { database: Some("movr".into()), ..root() };
    let e = err(
        &mut host,
        &session,
        &format!("CREATE CHANGEFEED FOR TABLE users INTO '{sink}' WITH resolved = '1s'"),
    );
    assert_eq!(e.message, "this sink requires the WITH key_in_value option");
    let created = ok(
        &mut host,
        &session,
        &format!(
            "CREATE CHANGEFEED FOR TABLE users INTO '{sink}' WITH key_in_value, updated, resolved = '1s'"
        ),
    );
    let job = job_id(&created);
    let location = location(&host);
    let files = || parse_files(&read_files(&location), partitioned);

    let mut first = Some(NodeGuard(node(dir.path())));
    write_changes(&mut host, || {
        wait_for(
            "the first half of the updates",
            || {
                let (per_key, _) = history(&files());
                per_key.get("[4]").and_then(|h| h.last()).and_then(name_of) == Some("v24")
            },
            || format!("{:?}", read_files(&location).iter().map(|f| &f.0).collect::<Vec<_>>()),
        );
        // A node killed mid-stream: the next one's files must still read in order.
        drop(first.take());
    });
    let _second = NodeGuard(node(dir.path()));
    let mut host_for_jobs = host;
    wait_for(
        "every change and a resolved timestamp after it",
        || complete(&files()),
        || {
            let names: Vec<String> = read_files(&location).into_iter().map(|f| f.0).collect();
            format!("files: {names:?}; jobs: {}", jobs_text(&mut host_for_jobs))
        },
    );
    let files = read_files(&location);
    check_history(&parse_files(&files, partitioned));
    assert!(files.iter().any(|(k, _)| k.ends_with(".RESOLVED")));
    assert!(
        files.iter().any(|(k, _)| k.contains("-users-1.ndjson")),
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    ok(&mut host_for_jobs, &root(), &format!("CANCEL JOB {job}"));
}

#[test]
fn a_changefeed_into_nodelocal_writes_ordered_ndjson_and_resolved_files() {
    let path = unique("cf");
    cloud_storage_changefeed(
        &format!("nodelocal://1/{path}"),
        |host| {
            let config = extconn_host::provider_config(host.data_dir());
            storage::open(&config, &Target::new("nodelocal", "1", &path)).unwrap()
        },
        true,
    );
}

#[test]
fn a_flat_changefeed_into_nodelocal_has_no_directories() {
    // partition_format is a URI parameter; nodelocal keeps unknown ones for the sink.
    let path = unique("flat");
    cloud_storage_changefeed(
        &format!("nodelocal://1/{path}?partition_format=flat"),
        |host| {
            let config = extconn_host::provider_config(host.data_dir());
            storage::open(&config, &Target::new("nodelocal", "1", &path)).unwrap()
        },
        false,
    );
}

#[test]
fn a_changefeed_into_s3_writes_ordered_ndjson_and_resolved_files() {
    let path = unique("cf");
    let params = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), env("EXTCONN_TEST_S3_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")),
        ("AWS_ENDPOINT".to_owned(), env("EXTCONN_TEST_S3_ENDPOINT")),
        ("AWS_USE_PATH_STYLE".to_owned(), "true".to_owned()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
    ];
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", q(v))).collect();
    let uri = format!("s3://extconn-host/{path}?{}", query.join("&"));
    cloud_storage_changefeed(
        &uri,
        |host| {
            let config = extconn_host::provider_config(host.data_dir());
            let mut target = Target::new("s3", "extconn-host", &path);
            target.params = params.clone();
            storage::open(&config, &target).unwrap()
        },
        true,
    );
}

/// CockroachDB drops a sink connection from under its changefeeds (its issue 98611); extconn
/// refuses with the jobs' ids (2BP01) unless CASCADE cancels them in the same transaction.
#[test]
fn drop_of_a_sink_connection_that_changefeeds_use_is_refused_unless_cascade() {
    let (mut host, dir) = host();
    let sink = dir.path().join("sink");
    ok(&mut host, &root(), "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION sink AS 'nodelocal://1/feed'");
    let into = "CREATE CHANGEFEED FOR t INTO 'external://sink/sub' WITH key_in_value";
    let a = job_id(&ok(&mut host, &root(), into));
    let b = job_id(&ok(&mut host, &root(), into));
    // A changefeed into a direct URI uses no connection and is no dependent.
    let direct = job_id(&ok(
        &mut host,
        &root(),
        "CREATE CHANGEFEED FOR t INTO 'nodelocal://1/direct' WITH key_in_value",
    ));
    ok(&mut host, &root(), &format!("PAUSE JOB {b}"));

    let e = err(&mut host, &root(), "DROP EXTERNAL CONNECTION sink");
    assert_eq!(e.sqlstate, "2BP01", "{e:?}");
    assert_eq!(
        e.message,
        format!("cannot drop external connection \"sink\" because jobs use it: {a}, {b}")
    );
    let detail = e.detail.clone().unwrap_or_default();
    assert!(detail.contains(&format!("changefeed job {a} (running) uses it: ")), "{detail}");
    assert!(detail.contains(&format!("changefeed job {b} (paused) uses it: ")), "{detail}");
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("CASCADE")), "{e:?}");
    let names = |host: &mut Host| format!("{:?}", ok(host, &root(), "SHOW EXTERNAL CONNECTIONS"));
    assert!(names(&mut host).contains("\"sink\""), "a refused DROP keeps the connection");

    // Canceling one job leaves the other in the way.
    ok(&mut host, &root(), &format!("CANCEL JOB {a}"));
    let e = err(&mut host, &root(), "DROP EXTERNAL CONNECTION sink RESTRICT");
    assert!(e.message.ends_with(&format!("because jobs use it: {b}")), "{e:?}");

    let dropped = ok(&mut host, &root(), "DROP EXTERNAL CONNECTION sink CASCADE");
    assert_eq!(dropped[0].notices, vec![format!("canceled 1 job(s) that used it: {b}")]);
    assert!(!names(&mut host).contains("\"sink\""), "CASCADE drops the connection");
    let status = |host: &mut Host, id: i64| {
        let shown = ok(host, &root(), &format!("SHOW JOB {id}"));
        let Ok(Outcome::Rows(rows)) = &shown[0].outcome else { panic!("{shown:?}") };
        let at = rows.columns.iter().position(|c| c.name == "status").expect("a status column");
        rows.rows[0][at].clone()
    };
    assert_eq!(status(&mut host, b), Value::Text("canceled".into()));
    assert_eq!(status(&mut host, direct), Value::Text("running".into()));
    assert!(!sink.exists() || sink.is_dir());
}

/// A table stops recording its changes once no unfinished changefeed follows it: after the
/// last one on it is canceled (CANCEL JOB) or canceled with its connection (DROP … CASCADE).
#[test]
fn capture_is_released_when_the_last_changefeed_on_a_table_ends() {
    let (mut host, _dir) = host();
    ok(
        &mut host,
        &root(),
        "CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE TABLE u (id INTEGER PRIMARY KEY)",
    );
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION sink AS 'nodelocal://1/feed'");
    let count = |host: &mut Host, sql: &str| {
        let shown = ok(host, &root(), sql);
        let Ok(Outcome::Rows(rows)) = &shown[0].outcome else { panic!("{shown:?}") };
        let Value::Int(n) = rows.rows[0][0] else { panic!("{rows:?}") };
        n
    };
    let captured = |host: &mut Host| {
        let triggers = "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'";
        (count(host, "SELECT count(*) FROM _extconn_capture"), count(host, triggers))
    };
    let a = job_id(&ok(
        &mut host,
        &root(),
        "CREATE CHANGEFEED FOR t INTO 'external://sink' WITH key_in_value",
    ));
    let b = job_id(&ok(
        &mut host,
        &root(),
        "CREATE CHANGEFEED FOR t, u INTO 'nodelocal://1/b' WITH key_in_value",
    ));
    assert_eq!(captured(&mut host), (2, 6));

    // Another changefeed still follows t: nothing is released.
    ok(&mut host, &root(), &format!("CANCEL JOB {a}"));
    assert_eq!(captured(&mut host), (2, 6));
    ok(&mut host, &root(), "INSERT INTO t VALUES (1)");
    assert_eq!(count(&mut host, "SELECT count(*) FROM _extconn_changes WHERE table_name = 't'"), 1);

    // The last one: t and u stop recording, and what they recorded is gone.
    ok(&mut host, &root(), &format!("CANCEL JOB {b}"));
    assert_eq!(captured(&mut host), (0, 0));
    ok(&mut host, &root(), "INSERT INTO t VALUES (2); INSERT INTO u VALUES (2)");
    assert_eq!(count(&mut host, "SELECT count(*) FROM _extconn_changes"), 0);

    // DROP … CASCADE releases the tables of the changefeeds it cancels.
    ok(&mut host, &root(), "CREATE CHANGEFEED FOR u INTO 'external://sink' WITH key_in_value");
    assert_eq!(captured(&mut host), (1, 3));
    ok(&mut host, &root(), "DROP EXTERNAL CONNECTION sink CASCADE");
    assert_eq!(captured(&mut host), (0, 0));
}

/// Releasing one database's capture never touches another's, even when the session has the
/// other attached (SQLite resolves an unqualified trigger name in every attached database).
#[test]
fn releasing_capture_leaves_other_databases_alone() {
    let (mut host, _dir) = host();
    let db2 = Session { database: Some("db2".into()), ..root() };
    ok(&mut host, &root(), "CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE DATABASE db2");
    ok(&mut host, &db2, "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    let into = "CREATE CHANGEFEED FOR t INTO 'nodelocal://1/f' WITH key_in_value";
    let a = job_id(&ok(&mut host, &root(), into));
    job_id(&ok(&mut host, &db2, into));
    // defaultdb's table (and so its triggers) goes; a query attaches db2 to the session.
    ok(&mut host, &root(), "DROP TABLE t; SELECT count(*) FROM db2.t");
    ok(&mut host, &root(), &format!("CANCEL JOB {a}"));
    let shown = ok(&mut host, &db2, "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'");
    let Ok(Outcome::Rows(rows)) = &shown[0].outcome else { panic!("{shown:?}") };
    assert_eq!(rows.rows[0][0], Value::Int(3), "db2's capture triggers must stay");
}

#[test]
fn cloud_storage_options_the_sink_cannot_use_are_refused_at_create() {
    let (mut host, _dir) = host();
    make_users(&mut host);
    let session = Session { database: Some("movr".into()), ..root() };
    let rows: &[(&str, &str)] = &[
        (
            "nodelocal://1/x?partition_format=weekly",
            "nodelocal://1/x: invalid partition_format: \"weekly\": use daily, hourly or flat",
        ),
        (
            "nodelocal://1/x' WITH key_in_value, file_size = 'lots",
            "nodelocal://1/x: invalid file_size: \"lots\": use a size such as 16MiB or 1048576",
        ),
        (
            "nodelocal://1/x' WITH key_in_value, compression = 'zstd",
            "nodelocal://1/x: invalid compression: \"zstd\" is not available in this version of extconn: use gzip",
        ),
    ];
    for (sink, message) in rows {
        let with = if sink.contains("WITH") { "" } else { " WITH key_in_value" };
        let e = err(
            &mut host,
            &session,
            &format!("CREATE CHANGEFEED FOR TABLE users INTO '{sink}'{with}"),
        );
        assert_eq!(e.message, *message, "{sink}");
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook

/// One request the endpoint received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// An HTTPS endpoint on 127.0.0.1 with a self-signed certificate: records every request and
/// answers 200, except that the first `fail_first` POSTs get a 500.
struct Endpoint {
    port: u16,
    ca_pem: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Endpoint {
    fn start(fail_first: usize) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let ca_pem = certified.cert.pem();
        let cert = certified.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = Arc::new(
            rustls::ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(fail_first));
        let recorded = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, recorded, failures) =
                    (config.clone(), recorded.clone(), failures.clone());
                std::thread::spawn(move || serve(stream, config, &recorded, &failures));
            }
        });
        Self { port, ca_pem, requests }
    }

    fn posts(&self) -> Vec<Request> {
        self.requests.lock().unwrap().iter().filter(|r| r.method == "POST").cloned().collect()
    }
}

/// Serves one connection's requests (HTTP/1.1, keep-alive) until the client closes it.
fn serve(
    stream: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    recorded: &Mutex<Vec<Request>>,
    failures: &Mutex<usize>,
) {
    let Ok(connection) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(connection, stream);
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 8192];
            match tls.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let target = first.next().unwrap_or_default().to_owned();
        let headers: BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        buffer.drain(..head_end + 4);
        while buffer.len() < length {
            let mut chunk = [0u8; 8192];
            match tls.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer.drain(..length).collect();
        let fail = method == "POST" && {
            let mut left = failures.lock().unwrap();
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        };
        let answer: &[u8] = if fail {
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nboom"
        } else {
            recorded.lock().unwrap().push(Request { method, target, headers, body });
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        };
        if tls.write_all(answer).and_then(|()| tls.flush()).is_err() {
            return;
        }
    }
}

/// The messages of the POSTs, in the order they were received; checks each body's shape.
fn webhook_messages(posts: &[Request]) -> Vec<Seen> {
    let mut seen = Vec::new();
    for (i, post) in posts.iter().enumerate() {
        let source = format!("POST #{i}");
        let body: Json = serde_json::from_slice(&post.body)
            .unwrap_or_else(|e| panic!("{source}: {e}: {:?}", String::from_utf8_lossy(&post.body)));
        if body.get("resolved").is_some() {
            seen.push(Seen { source, message: body });
            continue;
        }
        let payload = body["payload"].as_array().unwrap_or_else(|| panic!("{source}: {body}"));
        assert_eq!(body["length"], payload.len(), "{source}: {body}");
        for message in payload {
            assert!(message.get("key").is_some(), "{source}: key_in_value: {message}");
            assert_eq!(message["topic"], "users", "{source}: topic_in_value: {message}");
            seen.push(Seen { source: source.clone(), message: message.clone() });
        }
    }
    seen
}

#[test]
fn a_changefeed_into_a_webhook_posts_cockroachdb_batches() {
    // The first POST fails with a 500: the sink retries it, and nothing is lost.
    let endpoint = Endpoint::start(1);
    let ca = base64::engine::general_purpose::STANDARD.encode(&endpoint.ca_pem);
    let sink =
        format!("webhook-https://127.0.0.1:{}/hook?ca_cert={}&kept=1", endpoint.port, q(&ca));
    let (mut host, dir) = host();
    make_users(&mut host);
    let session = Session { database: Some("movr".into()), ..root() };
    ok(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION hook AS '{sink}'"));
    let e = err(
        &mut host,
        &session,
        "CREATE CHANGEFEED FOR TABLE users INTO 'external://hook' WITH key_in_value",
    );
    assert_eq!(e.message, "this sink requires the WITH topic_in_value option");
    let e = err(
        &mut host,
        &session,
        "CREATE CHANGEFEED FOR TABLE users INTO 'external://hook' WITH key_in_value, topic_in_value, \
         webhook_sink_config = '{\"Flush\":{\"Messages\":2}}'",
    );
    assert_eq!(
        e.message,
        "webhook-https://127.0.0.1:".to_owned()
            + &endpoint.port.to_string()
            + "/hook: error processing option webhook_sink_config: invalid option value \
               webhook_sink_config, flush frequency is not set, messages may never be sent"
    );
    let created = ok(
        &mut host,
        &session,
        &format!(
            "CREATE CHANGEFEED FOR TABLE users INTO 'external://hook' WITH key_in_value, \
             topic_in_value, updated, resolved = '1s', webhook_auth_header = '{CANARY}', \
             webhook_client_timeout = '5s', \
             webhook_sink_config = '{{\"Flush\":{{\"Messages\":2,\"Frequency\":\"1s\"}},\"Retry\":{{\"Max\":3,\"Backoff\":\"50ms\"}}}}'"
        ),
    );
    let job = job_id(&created);
    // CREATE's probe was a HEAD request, which changes nothing.
    assert!(endpoint.requests.lock().unwrap().iter().any(|r| r.method == "HEAD"));

    let mut first = Some(NodeGuard(node(dir.path())));
    write_changes(&mut host, || {
        wait_for(
            "the first half of the updates",
            || {
                let (per_key, _) = history(&webhook_messages(&endpoint.posts()));
                per_key.get("[4]").and_then(|h| h.last()).and_then(name_of) == Some("v24")
            },
            || format!("{} POSTs", endpoint.posts().len()),
        );
        drop(first.take());
    });
    let _second = NodeGuard(node(dir.path()));
    wait_for(
        "every change and a resolved timestamp after it",
        || complete(&webhook_messages(&endpoint.posts())),
        || format!("{} POSTs; jobs: {}", endpoint.posts().len(), jobs_text(&mut host)),
    );
    let posts = endpoint.posts();
    check_history(&webhook_messages(&posts));
    for post in &posts {
        assert_eq!(post.target, "/hook?kept=1", "the TLS parameters leave the URL");
        assert_eq!(post.headers.get("authorization").map(String::as_str), Some(CANARY));
        assert_eq!(post.headers.get("content-type").map(String::as_str), Some("application/json"));
        let body: Json = serde_json::from_slice(&post.body).unwrap();
        if let Some(length) = body.get("length") {
            assert!(length.as_u64().unwrap() <= 2, "Flush.Messages = 2: {body}");
        }
    }
    let jobs = jobs_text(&mut host);
    assert!(!jobs.contains("CANARY"), "the auth header shows in SHOW CHANGEFEED JOBS: {jobs}");
    ok(&mut host, &root(), &format!("CANCEL JOB {job}"));
}

#[test]
fn a_webhook_that_cannot_be_reached_or_trusted_is_refused_at_create() {
    let (mut host, _dir) = host();
    make_users(&mut host);
    let session = Session { database: Some("movr".into()), ..root() };
    // A certificate no one vouches for.
    let endpoint = Endpoint::start(0);
    let e = err(
        &mut host,
        &session,
        &format!(
            "CREATE CHANGEFEED FOR TABLE users INTO 'webhook-https://127.0.0.1:{}/hook' \
             WITH key_in_value, topic_in_value",
            endpoint.port
        ),
    );
    assert!(
        e.message.starts_with(&format!(
            "cannot reach the sink: webhook-https://127.0.0.1:{}/hook: HEAD request failed:",
            endpoint.port
        )) && e.message.contains("certificate"),
        "{}",
        e.message
    );
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = err(
        &mut host,
        &session,
        &format!(
            "CREATE CHANGEFEED FOR TABLE users INTO 'webhook-https://127.0.0.1:{closed}/hook' \
             WITH key_in_value, topic_in_value"
        ),
    );
    assert!(e.message.starts_with("cannot reach the sink: "), "{}", e.message);
    // insecure_tls_skip_verify trusts it anyway.
    ok(
        &mut host,
        &session,
        &format!(
            "CREATE CHANGEFEED FOR TABLE users INTO \
             'webhook-https://127.0.0.1:{}/hook?insecure_tls_skip_verify=true' \
             WITH key_in_value, topic_in_value",
            endpoint.port
        ),
    );
}

/// A changefeed whose CREATE stopped between recording its job and starting it (the process
/// died) is failed the next time its connection's DROP looks for dependents: it neither keeps
/// the connection nor its table's capture.
#[test]
fn a_changefeed_whose_create_stopped_before_starting_it_holds_nothing() {
    let (mut host, dir) = host();
    ok(&mut host, &root(), "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION sink AS 'nodelocal://1/feed'");
    let into = "CREATE CHANGEFEED FOR t INTO 'external://sink' WITH key_in_value";
    let id = job_id(&ok(&mut host, &root(), into));
    // As that CREATE would have left it: pending, recorded by a process that is gone.
    let catalog = rusqlite::Connection::open(dir.path().join("catalog.db")).unwrap();
    let gone = u32::MAX - 1;
    let changed = catalog
        .execute(
            "UPDATE jobs SET status = 'pending', pid = ?2 WHERE id = ?1",
            rusqlite::params![id, gone],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let triggers = |host: &mut Host| {
        let sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'";
        let shown = ok(host, &root(), sql);
        let Ok(Outcome::Rows(rows)) = &shown[0].outcome else { panic!("{shown:?}") };
        rows.rows[0][0].clone()
    };
    assert_eq!(triggers(&mut host), Value::Int(3));

    ok(&mut host, &root(), "DROP EXTERNAL CONNECTION sink");
    assert_eq!(triggers(&mut host), Value::Int(0), "its table stopped recording");
    let shown = ok(&mut host, &root(), &format!("SHOW JOB {id}"));
    let Ok(Outcome::Rows(rows)) = &shown[0].outcome else { panic!("{shown:?}") };
    let column = |name: &str| {
        let at = rows.columns.iter().position(|c| c.name == name).expect("the column");
        rows.rows[0][at].clone()
    };
    assert_eq!(column("status"), Value::Text("failed".into()));
    assert_eq!(
        column("error"),
        Value::Text(format!(
            "the statement creating this job (pid {gone}) stopped before it started"
        ))
    );
}
