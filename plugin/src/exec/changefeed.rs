//! CREATE CHANGEFEED and the job statements: the sink resolved (USAGE always, unlike
//! CockroachDB), every option checked against the sink it goes to, and a plan for the host's
//! job runner.
//!
//! Plan `CHANGEFEED`: `tables` (`[{"database","table"}]`), `sink` (target index), `sink_kind`
//! (`kafka`, `webhook`, `cloudstorage`), `connection` (the external connection's name, or null),
//! `options` (normalized: `resolved_micros` (0: at every checkpoint) or absent, `updated`,
//! `diff`, `key_in_value`, `topic_in_value`, `full_table_name`, `mvcc_timestamp`, `envelope`,
//! `initial_scan` (`yes`/`no`/`only`), `min_checkpoint_frequency_micros`, `kafka_sink_config`,
//! `webhook_auth_header`, `webhook_client_timeout_micros`, `webhook_sink_config`,
//! `compression`, `file_size`), plus `statement` and `now_micros`.
//! Plans `JOB CONTROL` (`action`, `id`) and `SHOW JOBS` (`changefeed: true`) carry the user and
//! whether they are an admin.

use serde_json::{Map, Value as Json, json};

use super::ops::{Uses, host_statement, plan, table_json};
use super::resolve;
use super::{Ctx, Run};
use crate::error::Error;
use crate::model::{Outcome, Purpose};
use crate::sql::ops::{Changefeed, JobControl, OptionValue};

/// Options every sink takes.
const COMMON: &[&str] = &[
    "resolved",
    "updated",
    "diff",
    "key_in_value",
    "topic_in_value",
    "envelope",
    "initial_scan",
    "no_initial_scan",
    "initial_scan_only",
    "format",
    "min_checkpoint_frequency",
    "full_table_name",
    "mvcc_timestamp",
];
/// Options only some sinks take.
const KAFKA_ONLY: &[&str] = &["kafka_sink_config"];
const WEBHOOK_ONLY: &[&str] =
    &["webhook_auth_header", "webhook_client_timeout", "webhook_sink_config", "compression"];
const CLOUD_ONLY: &[&str] = &["compression", "file_size"];

/// What kind of sink a scheme is.
fn sink_kind(scheme: &str) -> Run<&'static str> {
    match scheme {
        "kafka" | "confluent-cloud" | "azure-event-hub" => Ok("kafka"),
        "webhook-https" | "webhook-http" => Ok("webhook"),
        s if crate::uri::is_storage_scheme(s) => Ok("cloudstorage"),
        "gcpubsub" => Err(Error::unsupported(
            "Google Cloud Pub/Sub sinks are not available yet in this version of extconn",
        )
        .into()),
        other => Err(Error::invalid(format!("unsupported sink: {other}")).into()),
    }
}

pub(super) fn create(ctx: &mut Ctx<'_>, c: &Changefeed) -> Run<Outcome> {
    let mut uses = Uses::new();
    let sink = uses.add(std::slice::from_ref(&c.uri), Purpose::ChangefeedSink)[0];
    let connection = resolve::external_name(&c.uri)?.map(|(name, _)| name);
    let (_, now, targets) = uses.resolve(ctx)?;
    let kind = sink_kind(&targets[sink].scheme)?;
    let options = options(&c.options, kind)?;
    Ok(plan(
        "CHANGEFEED",
        targets,
        json!({
            "statement": c.redacted_sql(),
            "now_micros": now,
            "tables": c.tables.iter().map(table_json).collect::<Vec<_>>(),
            "sink": sink,
            "sink_kind": kind,
            "connection": connection,
            "options": options,
        }),
    ))
}

/// Checks and normalizes the options for a sink of `kind`.
fn options(given: &[(String, OptionValue)], kind: &str) -> Run<Json> {
    let specific = match kind {
        "kafka" => KAFKA_ONLY,
        "webhook" => WEBHOOK_ONLY,
        _ => CLOUD_ONLY,
    };
    let mut out = Map::new();
    let mut initial_scan: Option<&str> = None;
    for (name, value) in given {
        let name = name.as_str();
        if !COMMON.contains(&name) && !specific.contains(&name) {
            let known = KAFKA_ONLY.contains(&name)
                || WEBHOOK_ONLY.contains(&name)
                || CLOUD_ONLY.contains(&name);
            return Err(if known {
                Error::invalid(format!("this sink is incompatible with option {name}"))
            } else {
                Error::unsupported(format!(
                    "option {name} is not available yet in this version of extconn"
                ))
            }
            .into());
        }
        match name {
            "updated" | "diff" | "key_in_value" | "topic_in_value" | "full_table_name"
            | "mvcc_timestamp" => {
                flag(name, value)?;
                out.insert(name.to_owned(), json!(true));
            }
            "resolved" => {
                let micros = match value {
                    OptionValue::Flag => 0,
                    OptionValue::Str(s) if s.is_empty() => 0,
                    other => duration_micros(name, &text(name, other)?)?,
                };
                out.insert("resolved_micros".into(), json!(micros));
            }
            "min_checkpoint_frequency" => {
                let micros = duration_micros(name, &text(name, value)?)?;
                out.insert("min_checkpoint_frequency_micros".into(), json!(micros));
            }
            "webhook_client_timeout" => {
                let micros = duration_micros(name, &text(name, value)?)?;
                out.insert("webhook_client_timeout_micros".into(), json!(micros));
            }
            "envelope" => {
                let envelope = text(name, value)?;
                if !matches!(envelope.as_str(), "wrapped" | "bare" | "key_only" | "row") {
                    return Err(Error::invalid(format!("unknown envelope: {envelope}")).into());
                }
                out.insert(name.to_owned(), json!(envelope));
            }
            "format" => {
                let format = text(name, value)?;
                if format != "json" {
                    return Err(Error::unsupported(format!(
                        "format={format} is not available yet in this version of extconn: use format=json"
                    ))
                    .into());
                }
            }
            "initial_scan" | "no_initial_scan" | "initial_scan_only" => {
                let chosen = match (name, value) {
                    ("no_initial_scan", v) => flag(name, v).map(|()| "no")?,
                    ("initial_scan_only", v) => flag(name, v).map(|()| "only")?,
                    (_, OptionValue::Flag) => "yes",
                    (_, other) => match text(name, other)?.as_str() {
                        "yes" => "yes",
                        "no" => "no",
                        "only" => "only",
                        bad => {
                            return Err(Error::invalid(format!(
                                "unknown initial_scan: {bad}, valid values are yes, no, only"
                            ))
                            .into());
                        }
                    },
                };
                if initial_scan.is_some_and(|prev| prev != chosen) {
                    return Err(Error::invalid(
                        "cannot specify more than one of initial_scan, no_initial_scan and initial_scan_only",
                    )
                    .into());
                }
                initial_scan = Some(chosen);
            }
            "kafka_sink_config" | "webhook_sink_config" => {
                let config = text(name, value)?;
                if !serde_json::from_str::<Json>(&config).is_ok_and(|j| j.is_object()) {
                    return Err(Error::invalid(format!(
                        "failed to parse {name}: it must be a JSON object"
                    ))
                    .into());
                }
                out.insert(name.to_owned(), json!(config));
            }
            _ => {
                out.insert(name.to_owned(), json!(text(name, value)?));
            }
        }
    }
    out.insert("initial_scan".into(), json!(initial_scan.unwrap_or("yes")));
    let envelope = out.get("envelope").and_then(Json::as_str).unwrap_or("wrapped").to_owned();
    out.insert("envelope".into(), json!(envelope));
    // What CockroachDB's webhook and cloud-storage sinks require.
    if kind != "kafka" {
        if !matches!(envelope.as_str(), "wrapped" | "bare") {
            return Err(Error::invalid(format!(
                "this sink is incompatible with envelope={envelope}"
            ))
            .into());
        }
        for required in ["key_in_value", "topic_in_value"] {
            if required == "topic_in_value" && kind == "cloudstorage" {
                continue;
            }
            if envelope != "bare" && !out.contains_key(required) {
                return Err(Error::invalid(format!(
                    "this sink requires the WITH {required} option"
                ))
                .into());
            }
        }
    }
    Ok(Json::Object(out))
}

fn flag(name: &str, value: &OptionValue) -> Run<()> {
    match value {
        OptionValue::Flag => Ok(()),
        _ => Err(Error::invalid(format!("option {name:?} does not take a value")).into()),
    }
}

fn text(name: &str, value: &OptionValue) -> Run<String> {
    match value {
        OptionValue::Str(s) | OptionValue::Expr(s) => Ok(s.clone()),
        _ => Err(Error::invalid(format!("option {name:?} requires a value")).into()),
    }
}

/// A Go-style duration (`10s`, `1m30s`, `500ms`) in microseconds, as CockroachDB parses them.
fn duration_micros(name: &str, text: &str) -> Run<i64> {
    let bad = || Error::invalid(format!("time: invalid duration \"{text}\" for option {name}"));
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad().into());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3_600_000_000.0,
            "m" => 60_000_000.0,
            "s" => 1_000_000.0,
            "ms" => 1_000.0,
            "us" | "µs" => 1.0,
            "ns" => 0.001,
            _ => return Err(bad().into()),
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    Ok(total.round() as i64)
}

pub(super) fn control(ctx: &mut Ctx<'_>, action: JobControl, id: i64) -> Run<Outcome> {
    host_statement(ctx, "JOB CONTROL", json!({ "action": action.as_str(), "id": id }))
}

pub(super) fn show_jobs(ctx: &mut Ctx<'_>, id: Option<i64>) -> Run<Outcome> {
    host_statement(ctx, "SHOW JOBS", json!({ "id": id, "changefeed": true }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[(&str, OptionValue)]) -> Vec<(String, OptionValue)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect()
    }

    fn message(r: Run<Json>) -> String {
        match r {
            Err(super::super::Halt::Fail(e)) => e.message,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn options_fit_their_sink() {
        let o = options(
            &opts(&[
                ("resolved", OptionValue::Str("10s".into())),
                ("updated", OptionValue::Flag),
                ("kafka_sink_config", OptionValue::Str("{\"Flush\":{\"Messages\":10}}".into())),
            ]),
            "kafka",
        )
        .unwrap();
        assert_eq!(o["resolved_micros"], json!(10_000_000));
        assert_eq!(o["initial_scan"], json!("yes"));
        assert_eq!(o["envelope"], json!("wrapped"));
        assert_eq!(
            message(options(
                &opts(&[("webhook_client_timeout", OptionValue::Str("1s".into()))]),
                "kafka"
            )),
            "this sink is incompatible with option webhook_client_timeout"
        );
        assert_eq!(
            message(options(&[], "cloudstorage")),
            "this sink requires the WITH key_in_value option"
        );
        assert_eq!(
            message(options(&opts(&[("key_in_value", OptionValue::Flag)]), "webhook")),
            "this sink requires the WITH topic_in_value option"
        );
        assert_eq!(
            message(options(&opts(&[("envelope", OptionValue::Str("nope".into()))]), "kafka")),
            "unknown envelope: nope"
        );
        assert_eq!(
            message(options(
                &opts(&[
                    ("initial_scan", OptionValue::Str("no".into())),
                    ("initial_scan_only", OptionValue::Flag)
                ]),
                "kafka"
            )),
            "cannot specify more than one of initial_scan, no_initial_scan and initial_scan_only"
        );
        assert_eq!(
            message(options(&opts(&[("resolved", OptionValue::Str("soon".into()))]), "kafka")),
            "time: invalid duration \"soon\" for option resolved"
        );
    }

    #[test]
    fn durations_read_like_go() {
        assert_eq!(duration_micros("x", "1m30s").unwrap(), 90_000_000);
        assert_eq!(duration_micros("x", "250ms").unwrap(), 250_000);
        assert!(duration_micros("x", "10").is_err());
    }
}
