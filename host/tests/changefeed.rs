//! CREATE CHANGEFEED into Kafka (tansu on 127.0.0.1, started by `scripts/services`), run by a
//! real `extconn start` node, checked with an independent rdkafka consumer against the table's
//! history — across a node killed mid-stream and restarted.

mod common;
mod kafka;

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{env, err, host, ok, root, unique};
use extconn_host::{Outcome, Session, Value};
use kafka::{Record, assert_resolved_order, read_all};
use serde_json::Value as Json;

fn node(dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_extconn"))
        .arg("--data-dir")
        .arg(dir)
        .arg("start")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the extconn binary starts")
}

/// Per key, the `after` values in the order their `updated` timestamps rise (a message whose
/// timestamp is not above the last one seen for its key is a re-delivery), and the resolved
/// timestamps seen.
fn history(messages: &[Record]) -> (BTreeMap<String, Vec<Json>>, Vec<String>) {
    let mut per_key: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut resolved = Vec::new();
    for (_, key, value) in messages {
        let value: Json = serde_json::from_slice(value).unwrap();
        let Some(key) = key else {
            resolved.push(value["resolved"].as_str().unwrap().to_owned());
            continue;
        };
        let key = String::from_utf8(key.clone()).unwrap();
        let updated = value["updated"].as_str().unwrap().to_owned();
        // Timestamps have the same number of digits: string order is time order.
        if last.get(&key).is_some_and(|prev| *prev >= updated) {
            continue;
        }
        last.insert(key.clone(), updated);
        per_key.entry(key).or_default().push(value["after"].clone());
    }
    (per_key, resolved)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn name_of(after: &Json) -> Option<&str> {
    after.get("name").and_then(Json::as_str)
}

#[test]
fn a_changefeed_delivers_the_scan_and_every_change_in_order_across_a_node_restart() {
    let brokers = env("EXTCONN_TEST_KAFKA_BROKERS");
    let (mut host, dir) = host();
    let session = Session { database: Some("movr".into()), ..root() };
    let prefix = unique("cf");
    ok(
        &mut host,
        &root(),
        "CREATE DATABASE movr; USE movr;
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, city TEXT);
         INSERT INTO users VALUES (1, 'ana', 'boston'), (2, 'bo', 'seattle'), (3, 'cy', NULL)",
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
        "CREATE CHANGEFEED FOR TABLE movr.users INTO 'external://kafka_sink' WITH resolved = '1s', updated, diff",
    );
    assert!(
        created[0].notices.iter().any(|n| n.contains("no extconn node is running")),
        "{created:?}"
    );
    let Ok(Outcome::Rows(rows)) = &created[0].outcome else { panic!("{created:?}") };
    let Value::Int(job) = rows.rows[0][0] else { panic!("{rows:?}") };
    let topic = format!("{prefix}_users");

    let mut first = node(dir.path());
    ok(
        &mut host,
        &session,
        "UPDATE users SET city = 'chicago' WHERE id = 1; DELETE FROM users WHERE id = 2",
    );
    ok(&mut host, &session, "INSERT INTO users VALUES (4, 'v0', 'denver')");
    for i in 1..25 {
        ok(&mut host, &session, &format!("UPDATE users SET name = 'v{i}' WHERE id = 4"));
    }
    wait_for("the first half of the updates", || {
        let (per_key, _) = history(&read_all(&brokers, &topic));
        per_key.get("[4]").and_then(|h| h.last()).and_then(name_of) == Some("v24")
    });
    // Kill the node mid-stream; write while it is down; start another.
    first.kill().unwrap();
    first.wait().unwrap();
    for i in 25..50 {
        ok(&mut host, &session, &format!("UPDATE users SET name = 'v{i}' WHERE id = 4"));
    }
    let mut second = node(dir.path());
    wait_for("every update, and a resolved timestamp after it", || {
        let messages = read_all(&brokers, &topic);
        let (per_key, resolved) = history(&messages);
        let last_update = messages
            .iter()
            .rev()
            .find(|(_, k, _)| k.as_deref() == Some(b"[4]".as_slice()))
            .map(|(_, _, v)| {
                serde_json::from_slice::<Json>(v).unwrap()["updated"].as_str().unwrap().to_owned()
            });
        per_key.get("[4]").and_then(|h| h.last()).and_then(name_of) == Some("v49")
            && last_update.is_some_and(|u| resolved.iter().any(|r| *r > u))
    });
    second.kill().unwrap();
    second.wait().unwrap();

    let messages = read_all(&brokers, &topic);
    let (per_key, resolved) = history(&messages);
    // Every update of row 4, in order, none lost (the initial scan's copy of the row, taken
    // when the node started, sits among them with its own timestamp).
    let mut names: Vec<&str> = per_key["[4]"].iter().filter_map(name_of).collect();
    names.dedup();
    let expected: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    let tail: Vec<&str> = names.iter().skip_while(|n| **n != "v0").copied().collect();
    assert_eq!(tail, expected, "row 4's history: {names:?}");
    // The deleted row ends deleted, the others as the table holds them.
    assert_eq!(per_key.get("[2]").and_then(|h| h.last()), Some(&Json::Null), "{per_key:?}");
    assert_eq!(per_key["[1]"].last().unwrap()["city"], "chicago");
    assert_eq!(per_key["[3]"].last().unwrap()["name"], "cy");
    // In each partition, resolved timestamps only rise, and no new change comes after a
    // resolved timestamp above it.
    assert!(!resolved.is_empty());
    assert_resolved_order(&messages);
    // The job is visible, running, and can be paused, resumed and canceled.
    let jobs = ok(&mut host, &root(), "SHOW CHANGEFEED JOBS");
    let Ok(Outcome::Rows(jobs)) = &jobs[0].outcome else { panic!() };
    assert_eq!(jobs.rows[0][0], Value::Int(job));
    assert_eq!(jobs.rows[0][4], Value::Text("running".into()));
    ok(&mut host, &root(), &format!("PAUSE JOB {job}; RESUME JOB {job}; CANCEL JOB {job}"));
    let e = err(&mut host, &root(), &format!("RESUME JOB {job}"));
    assert_eq!(e.message, format!("job {job}: cannot resume a job whose status is canceled"));
}

#[test]
fn changefeed_options_are_checked_against_the_sink() {
    let (mut host, _dir) = host();
    ok(&mut host, &root(), "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    let parse_only = Session { validation: extconn_host::Validation::ParseOnly, ..root() };
    ok(
        &mut host,
        &parse_only,
        "CREATE EXTERNAL CONNECTION k AS 'kafka://127.0.0.1:9'; CREATE USER u",
    );
    let e = err(
        &mut host,
        &root(),
        "CREATE CHANGEFEED FOR t INTO 'external://k' WITH webhook_client_timeout = '1s'",
    );
    assert_eq!(e.message, "this sink is incompatible with option webhook_client_timeout");
    let e = err(&mut host, &root(), "CREATE CHANGEFEED FOR t INTO 'nodelocal://1/feed'");
    assert_eq!(e.message, "this sink requires the WITH key_in_value option");
    let u = Session { user: "u".into(), ..root() };
    let e = err(&mut host, &u, "CREATE CHANGEFEED FOR t INTO 'external://k'");
    assert_eq!(e.message, "user u does not have USAGE privilege on external_connection k");
    let e = err(
        &mut host,
        &root(),
        "CREATE CHANGEFEED FOR t INTO 'kafka://127.0.0.1:9?TOPIC_PREFIX=x'",
    );
    assert_eq!(e.message, "unknown kafka sink query parameters: TOPIC_PREFIX");
}

#[test]
fn kafka_connections_are_probed_with_a_notice_and_checked_for_real() {
    let brokers = env("EXTCONN_TEST_KAFKA_BROKERS");
    let (mut host, _dir) = host();
    let created =
        ok(&mut host, &root(), &format!("CREATE EXTERNAL CONNECTION up AS 'kafka://{brokers}'"));
    assert!(created[0].notices.is_empty(), "{created:?}");
    let created = ok(
        &mut host,
        &root(),
        "CREATE EXTERNAL CONNECTION down AS 'kafka://127.0.0.1:9?sasl_enabled=true&sasl_user=u&sasl_password=CANARY-pw'",
    );
    let notice = created[0].notices.join("\n");
    assert!(notice.contains("the Kafka brokers could not be reached"), "{created:?}");
    assert!(!notice.contains("CANARY"), "{notice}");
    assert_eq!(
        host.catalog().read_connection("down").unwrap().map(|c| c.name),
        Some("down".to_owned()),
        "created anyway, as CockroachDB does"
    );
    let row = |host: &mut extconn_host::Host, name: &str| {
        let results = ok(host, &root(), &format!("CHECK EXTERNAL CONNECTION 'external://{name}'"));
        let Ok(Outcome::Rows(rows)) = &results[0].outcome else { panic!("{results:?}") };
        (rows.rows[0][2].clone(), rows.rows[0][3].clone(), results[0].notices.clone())
    };
    let (ok_up, error_up, notices) = row(&mut host, "up");
    assert_eq!((ok_up, error_up), (Value::Boolean(true), Value::Text(String::new())));
    assert!(notices.iter().any(|n| n.contains("connected and authenticated")), "{notices:?}");
    let (ok_down, error_down, _) = row(&mut host, "down");
    assert_eq!(ok_down, Value::Boolean(false));
    let Value::Text(error_down) = error_down else { panic!() };
    assert!(error_down.starts_with("connecting to the Kafka brokers: "), "{error_down}");
    assert!(!error_down.contains("CANARY"), "{error_down}");
}
