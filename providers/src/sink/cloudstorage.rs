//! The cloud-storage changefeed sink: newline-delimited JSON files and `.RESOLVED` files, named
//! as CockroachDB names them, in any storage location (`nodelocal`, `userfile`, `s3`, `gs`,
//! `azure`).
//!
//! A data file is `<partition>/<timestamp>-<uniquer>-<topic>-<schema_id>.ndjson[.gz]`, with
//! `<timestamp>` as `YYYYMMDDHHMMSS` + 9 digits of nanoseconds + 10 digits of logical clock,
//! `<uniquer>` as `<session>-<node>-<sink>-<file id, 8 hex digits>` and `<partition>` the
//! timestamp's date (`2026-11-26/`, `daily`), date and hour (`2026-11-26/15/`, `hourly`) or
//! nothing (`flat`). A resolved file is `<partition>/<resolved timestamp>.RESOLVED` holding the
//! resolved message.
//!
//! Names only rise, so a reader listing in name order reads each key's changes in order: a data
//! file's timestamp is the largest of the wall clock when it is written, the successor of the
//! last resolved timestamp and the previous file's timestamp, and files of one timestamp are
//! told apart by a session that sorts by its start time and a rising file id. A `.RESOLVED`
//! file sorts after every data file written before it (their timestamps are at most the
//! resolved one, which the node takes from the same clock after they were written, and `-`
//! sorts before `.`) and before every one written after it (their timestamps are above it).
//! This assumes the node's clock does not go back across a restart, as CockroachDB assumes of
//! its clocks. [`Sink::emit`] writes its files before it returns, so at-least-once holds.

use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use super::{Message, Sink, SinkOptions};
use crate::storage::{self, Location};
use crate::{Config, ErrorKind, Target};

/// The file size at which a batch's file is split (CockroachDB's `file_size` default).
pub const DEFAULT_FILE_SIZE: usize = 16 << 20;

/// What the changefeed's statement or URI asks of the sink that it cannot do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or URI parameter with a value the sink cannot use.
    #[error("{location}: invalid {name}: {reason}")]
    Invalid {
        /// The sink's display form.
        location: String,
        /// `file_size`, `partition_format`, `compression`, …
        name: &'static str,
        /// What is wrong with it, and what would do.
        reason: String,
    },
    /// A resolved message that is not `{"resolved":"<wall>.<logical>"}` (wrapped or bare).
    #[error("{location}: cannot read the resolved timestamp of {payload:?}")]
    Resolved {
        /// The sink's display form.
        location: String,
        /// The message, which holds no secret.
        payload: String,
    },
}

impl Error {
    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid { .. } => ErrorKind::InvalidArgument,
            Self::Resolved { .. } => ErrorKind::Internal,
        }
    }
}

/// How data files are grouped into directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partition {
    Daily,
    Hourly,
    Flat,
}

impl Partition {
    fn dir(self, ts: Ts) -> String {
        let time = ts.time();
        match self {
            Self::Daily => time.format("%Y-%m-%d/").to_string(),
            Self::Hourly => time.format("%Y-%m-%d/%H/").to_string(),
            Self::Flat => String::new(),
        }
    }
}

/// An HLC timestamp: wall-clock nanoseconds and a logical counter, ordered as CockroachDB
/// orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ts {
    wall_ns: i64,
    logical: i32,
}

impl Ts {
    fn now() -> Self {
        Self { wall_ns: Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX), logical: 0 }
    }

    /// The next timestamp after this one.
    fn next(self) -> Self {
        Self { logical: self.logical.saturating_add(1), ..self }
    }

    fn time(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.wall_ns)
    }

    /// `YYYYMMDDHHMMSSNNNNNNNNNLLLLLLLLLL`, CockroachDB's `cloudStorageFormatTime`.
    fn file_name(self) -> String {
        let time = self.time();
        format!(
            "{}{:09}{:010}",
            time.format("%Y%m%d%H%M%S"),
            time.timestamp_subsec_nanos(),
            self.logical
        )
    }

    /// `<wall>.<logical>`, as resolved messages carry it.
    fn parse(text: &str) -> Option<Self> {
        let (wall, logical) = text.split_once('.').unwrap_or((text, "0"));
        Some(Self { wall_ns: wall.parse().ok()?, logical: logical.parse().ok()? })
    }
}

/// Distinguishes sinks opened by one process at the same instant (CockroachDB's sink id).
static SINK_IDS: AtomicU64 = AtomicU64::new(1);

/// A cloud-storage sink, opened for one changefeed.
#[derive(Debug)]
pub struct CloudStorageSink {
    location: Location,
    display: String,
    topic_prefix: String,
    partition: Partition,
    file_size: usize,
    gzip: bool,
    /// `<session>-<node>-<sink>`: the session is the opening time in fixed-width hex, so a
    /// sink opened later (after a restart) sorts after the one before it at equal timestamps.
    uniquer: String,
    names: Mutex<Names>,
}

/// What the next file names continue from.
#[derive(Debug)]
struct Names {
    /// No data file may be stamped below this: the successor of the last resolved timestamp,
    /// or the last file's timestamp.
    floor: Ts,
    /// The next file id.
    file_id: u64,
}

impl CloudStorageSink {
    /// Opens the storage location `target` names (no I/O yet) and reads the sink's parameters
    /// (`topic_prefix`, `partition_format`, `file_size`) and options (`file_size`,
    /// `compression`; an option wins over the parameter).
    pub fn open(
        config: &Config,
        target: &Target,
        options: &SinkOptions,
    ) -> Result<Self, crate::Error> {
        let display = target.display();
        let param = |name: &str| {
            target.params.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
        };
        let invalid = |name: &'static str, reason: String| Error::Invalid {
            location: display.clone(),
            name,
            reason,
        };
        let partition = match param("partition_format") {
            None | Some("daily") => Partition::Daily,
            Some("hourly") => Partition::Hourly,
            Some("flat") => Partition::Flat,
            Some(other) => {
                return Err(invalid(
                    "partition_format",
                    format!("{other:?}: use daily, hourly or flat"),
                )
                .into());
            }
        };
        let file_size = match options.file_size.as_deref().or(param("file_size")) {
            None => DEFAULT_FILE_SIZE,
            Some(text) => parse_bytes(text).ok_or_else(|| {
                invalid("file_size", format!("{text:?}: use a size such as 16MiB or 1048576"))
            })?,
        };
        let gzip = match options.compression.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("" | "none") => false,
            Some("gzip") => true,
            Some(other) => {
                return Err(invalid(
                    "compression",
                    format!("{other:?} is not available in this version of extconn: use gzip"),
                )
                .into());
            }
        };
        let location = storage::open(config, target)?;
        let session = Ts::now().wall_ns;
        let sink = SINK_IDS.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            location,
            display: display.clone(),
            topic_prefix: param("topic_prefix").unwrap_or_default().to_owned(),
            partition,
            file_size: file_size.max(1),
            gzip,
            uniquer: format!("{session:016x}-1-{sink}"),
            names: Mutex::new(Names { floor: Ts { wall_ns: 0, logical: 0 }, file_id: 0 }),
        })
    }

    fn extension(&self) -> &'static str {
        if self.gzip { ".ndjson.gz" } else { ".ndjson" }
    }

    /// The next data file's key, for `topic`.
    fn next_name(&self, names: &mut Names, topic: &str) -> String {
        let ts = names.floor.max(Ts::now());
        names.floor = ts;
        let id = names.file_id;
        names.file_id += 1;
        format!(
            "{}{}-{}-{id:08x}-{topic}-1{}",
            self.partition.dir(ts),
            ts.file_name(),
            self.uniquer,
            self.extension()
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn encode(&self, lines: Vec<u8>) -> Vec<u8> {
        if !self.gzip {
            return lines;
        }
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(&lines);
        encoder.finish().unwrap_or_default()
    }
}

/// A size as CockroachDB's `humanizeutil.ParseBytes` reads it: `1048576`, `512KiB`, `16MB`,
/// `1 GiB` (units in either base, case-insensitive).
fn parse_bytes(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * scale;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as usize)
}

/// A topic as it appears in file names: characters that would split the name or a path are
/// escaped as `_u<hex>_`.
fn file_topic(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+') {
            out.push(c);
        } else {
            out.push_str(&format!("_u{:04x}_", c as u32));
        }
    }
    out
}

/// The resolved timestamp of a resolved message (`{"resolved":…}` or, bare,
/// `{"__crdb__":{"resolved":…}}`).
fn resolved_ts(payload: &[u8]) -> Option<Ts> {
    let json: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let text = json.get("resolved").or_else(|| json.get("__crdb__")?.get("resolved"))?;
    Ts::parse(text.as_str()?)
}

#[async_trait::async_trait]
impl Sink for CloudStorageSink {
    fn topic(&self, table: &str) -> String {
        file_topic(&format!("{}{table}", self.topic_prefix))
    }

    async fn ensure_topics(&self, _topics: &[String]) -> Result<(), crate::Error> {
        // Files need no topic created beforehand.
        Ok(())
    }

    async fn emit(&self, messages: Vec<Message>) -> Result<(), crate::Error> {
        // Lines per topic in the order given (which keeps each key's order), cut into files of
        // at most `file_size` bytes (a single larger line gets a file of its own).
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut open: Vec<(String, Vec<u8>)> = Vec::new();
        for message in messages {
            let at = match open.iter().position(|(t, _)| *t == message.topic) {
                Some(at) => at,
                None => {
                    open.push((message.topic.clone(), Vec::new()));
                    open.len() - 1
                }
            };
            let buffer = &mut open[at].1;
            if !buffer.is_empty() && buffer.len() + message.value.len() + 1 > self.file_size {
                files.push((message.topic.clone(), std::mem::take(buffer)));
            }
            buffer.extend_from_slice(&message.value);
            buffer.push(b'\n');
        }
        files.extend(open.into_iter().filter(|(_, lines)| !lines.is_empty()));
        // Names are taken together, in order, then written one after the other: a failed
        // batch is sent again under later names, so a reader sees its first copy, if any,
        // before the second.
        let named: Vec<(String, Vec<u8>)> = {
            let mut names = self.lock();
            files
                .into_iter()
                .map(|(topic, lines)| (self.next_name(&mut names, &topic), lines))
                .collect()
        };
        for (key, lines) in named {
            self.location.put(&key, self.encode(lines)).await?;
        }
        Ok(())
    }

    async fn emit_resolved(
        &self,
        _topics: &[String],
        payload: Vec<u8>,
    ) -> Result<(), crate::Error> {
        let ts = resolved_ts(&payload).ok_or_else(|| Error::Resolved {
            location: self.display.clone(),
            payload: String::from_utf8_lossy(&payload).into_owned(),
        })?;
        let key = format!("{}{}.RESOLVED", self.partition.dir(ts), ts.file_name());
        self.location.put(&key, payload).await?;
        let mut names = self.lock();
        names.floor = names.floor.max(ts.next());
        Ok(())
    }

    async fn flush(&self) -> Result<(), crate::Error> {
        // Every emit wrote its files before it returned.
        Ok(())
    }
}

/// Writes and deletes a small object at the location: the sink can write there.
pub async fn probe(config: &Config, target: &Target) -> Result<(), crate::Error> {
    let location = storage::open(config, target)?;
    let key = format!(".extconn-sink-probe-{:x}", Ts::now().wall_ns);
    location.put(&key, Vec::new()).await?;
    location.delete(&key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_cockroachdb_does() {
        // 2026-11-26T15:04:05.000000123Z, logical 7.
        let ts = Ts { wall_ns: 1_795_705_445_000_000_123, logical: 7 };
        assert_eq!(ts.file_name(), "202611261504050000001230000000007");
        assert_eq!(Partition::Daily.dir(ts), "2026-11-26/");
        assert_eq!(Partition::Hourly.dir(ts), "2026-11-26/15/");
        assert_eq!(Partition::Flat.dir(ts), "");
        assert!(ts.file_name() < ts.next().file_name());
        assert_eq!(Ts::parse("1795705445000000123.0000000007"), Some(ts));
        assert_eq!(resolved_ts(br#"{"resolved":"1795705445000000123.0000000007"}"#), Some(ts));
        assert_eq!(
            resolved_ts(br#"{"__crdb__":{"resolved":"1795705445000000123.0000000007"}}"#),
            Some(ts)
        );
        assert_eq!(resolved_ts(b"{}"), None);
    }

    #[test]
    fn sizes_parse_like_humanize() {
        let rows: &[(&str, Option<usize>)] = &[
            ("1048576", Some(1 << 20)),
            ("16MiB", Some(16 << 20)),
            ("16MB", Some(16_000_000)),
            ("512 KiB", Some(512 << 10)),
            ("1gib", Some(1 << 30)),
            ("0", None),
            ("-1", None),
            ("lots", None),
            ("5 parsecs", None),
        ];
        for (text, want) in rows {
            assert_eq!(parse_bytes(text), *want, "{text}");
        }
    }

    #[test]
    fn topics_are_escaped_for_file_names() {
        assert_eq!(file_topic("users"), "users");
        assert_eq!(file_topic("db+public+t"), "db+public+t");
        assert_eq!(file_topic("a-b/c"), "a_u002d_b_u002f_c");
    }
}
