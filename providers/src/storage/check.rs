//! The storage test behind CHECK EXTERNAL CONNECTION: workers that write an object, read it
//! back and delete it, round after round, and measure how fast.
//!
//! CockroachDB writes its test object through a streaming writer in 32 KiB chunks. Here an
//! object of up to [`MULTIPART_THRESHOLD`] bytes is written with one `put`, and a larger one by
//! multipart upload in parts of 8 MiB, several in flight, exactly as [`Location::put`] writes
//! any object: the throughput measured is the throughput BACKUP and EXPORT get. Every part is
//! a slice of one shared buffer, so a worker holds no more than that buffer however large the
//! transfer; reads are streamed and counted, never held.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use extconn_providers::storage::{self, check};
//! use extconn_providers::{Config, Target};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
//! let target = Target::new("nodelocal", "1", "checks");
//! let settings = check::Settings { transfer: 1 << 20, ..check::Settings::default() };
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let reports = runtime.block_on(check::run(|| storage::open(&config, &target), &settings));
//! assert_eq!(reports.len(), 1);
//! assert!(reports[0].ok && reports[0].can_delete, "{:?}", reports[0]);
//! assert_eq!(reports[0].wrote_bytes, 1 << 20);
//! assert_eq!(check::ibytes(reports[0].wrote_bytes), "1.0 MiB");
//! # Ok(())
//! # }
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use object_store::{
    GetResultPayload, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, WriteMultipart,
};

use super::{Location, MULTIPART_THRESHOLD, PART_CONCURRENCY, PART_SIZE};
use crate::Error;

/// Every test object's name starts with this, then `-` and a random number.
pub const OBJECT_PREFIX: &str = "cockroach-storage-test";
/// The size of each test object when none is given (CockroachDB's default).
pub const DEFAULT_TRANSFER: u64 = 32 << 20;
/// The random block the payload repeats (CockroachDB's chunk size).
const CHUNK: usize = 32 << 10;

/// How a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Workers running at once (at least 1).
    pub concurrency: usize,
    /// Bytes per test object (0 means [`DEFAULT_TRANSFER`]).
    pub transfer: u64,
    /// Each worker starts new rounds until this much time has passed: zero means one round.
    pub min_duration: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { concurrency: 1, transfer: DEFAULT_TRANSFER, min_duration: Duration::ZERO }
    }
}

/// What one worker saw, over all its rounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The last round wrote and read its object back.
    pub ok: bool,
    /// Why the last round failed, or `""`.
    pub error: String,
    /// Bytes written.
    pub wrote_bytes: u64,
    /// Time spent writing.
    pub wrote_time: Duration,
    /// Bytes read back.
    pub read_bytes: u64,
    /// Time spent reading.
    pub read_time: Duration,
    /// The last round could delete its object.
    pub can_delete: bool,
}

/// Runs `settings.concurrency` workers at once and returns one report per worker. Each worker
/// opens the location with `open` before every round (as CockroachDB does); a failure to open
/// ends that worker with `opening external storage: …`.
pub async fn run<F>(open: F, settings: &Settings) -> Vec<Report>
where
    F: Fn() -> Result<Location, Error>,
{
    let transfer = if settings.transfer == 0 { DEFAULT_TRANSFER } else { settings.transfer };
    let payload = payload(transfer);
    let workers = (0..settings.concurrency.max(1))
        .map(|_| worker(&open, &payload, transfer, settings.min_duration));
    futures::future::join_all(workers).await
}

async fn worker<F>(open: &F, payload: &Bytes, transfer: u64, min_duration: Duration) -> Report
where
    F: Fn() -> Result<Location, Error>,
{
    let start = Instant::now();
    let mut total = Report::default();
    loop {
        let location = match open() {
            Ok(location) => location,
            Err(e) => {
                total.ok = false;
                total.error = format!("opening external storage: {}", e.message());
                return total;
            }
        };
        let round = round(&location, payload, transfer).await;
        total.wrote_bytes += round.wrote_bytes;
        total.wrote_time += round.wrote_time;
        total.read_bytes += round.read_bytes;
        total.read_time += round.read_time;
        total.ok = round.ok;
        total.error = round.error;
        total.can_delete = round.can_delete;
        if !total.ok || start.elapsed() > min_duration {
            return total;
        }
    }
}

/// One round: write a `transfer`-byte object of `payload` repeated, read it back, delete it.
/// The error names the step that failed, as CockroachDB's do.
pub async fn round(location: &Location, payload: &Bytes, transfer: u64) -> Report {
    let key = format!("{OBJECT_PREFIX}-{}", random_u63());
    let mut report = Report::default();

    let started = Instant::now();
    if let Err(e) = write(location, &key, payload, transfer).await {
        report.error = format!("writing file: {}", e.message());
        // A partial object may be left behind: best effort.
        let _ = location.delete(&key).await;
        return report;
    }
    report.wrote_bytes = transfer;
    report.wrote_time = started.elapsed();

    let started = Instant::now();
    let read = read(location, &key, &mut report.read_bytes).await;
    report.read_time = started.elapsed();
    if let Err(e) = read {
        report.error = e;
        let _ = location.delete(&key).await;
        return report;
    }
    report.ok = true;

    match location.delete(&key).await {
        Ok(()) => report.can_delete = true,
        Err(e) => report.error = format!("deleting file: {}", e.message()),
    }
    report
}

/// A payload for objects of `transfer` bytes: a random 32 KiB block repeated, as long as the
/// largest single `put` (or the object, if smaller). Parts of larger objects are slices of it.
pub fn payload(transfer: u64) -> Bytes {
    let len = usize::try_from(transfer).unwrap_or(usize::MAX).min(MULTIPART_THRESHOLD);
    let mut state = random_u63() | 1;
    let block: Vec<u8> = (0..CHUNK.min(len))
        .map(|_| {
            // xorshift64: not cryptographic, only enough that the data does not compress away.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let n = block.len().min(len - data.len());
        data.extend_from_slice(&block[..n]);
    }
    Bytes::from(data)
}

/// Writes `transfer` bytes of `payload` (repeated) at `key`.
async fn write(
    location: &Location,
    key: &str,
    payload: &Bytes,
    transfer: u64,
) -> Result<(), Error> {
    let path = location.path(key)?;
    let attributes = location.attributes.clone();
    let store = &location.store;
    let result = if transfer <= payload.len() as u64 {
        let data = payload.slice(..transfer as usize);
        let options = PutOptions { attributes, ..PutOptions::default() };
        store.put_opts(&path, PutPayload::from(data), options).await.map(drop)
    } else {
        async {
            let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
            let upload = store.put_multipart_opts(&path, options).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let part = payload.slice(..PART_SIZE.min(payload.len()));
            let mut left = transfer;
            while left > 0 {
                if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                    let _ = writer.abort().await;
                    return Err(e);
                }
                let n = left.min(part.len() as u64);
                writer.put(part.slice(..n as usize));
                left -= n;
            }
            writer.finish().await.map(drop)
        }
        .await
    };
    result.map_err(|e| location.fail(key, "put", e))
}

/// Streams the object at `key`, counting its bytes into `read`.
async fn read(location: &Location, key: &str, read: &mut u64) -> Result<(), String> {
    let path = location.path(key).map_err(|e| format!("opening reader: {}", e.message()))?;
    let result = match location.store.get(&path).await {
        Ok(result) => result,
        Err(e) => {
            return Err(format!("opening reader: {}", location.fail(key, "get", e).message()));
        }
    };
    let mut stream = match result.payload {
        // A local file: read it in large blocks on the blocking pool (object_store streams a
        // file 8 KiB per task, which would measure the scheduler, not the disk).
        GetResultPayload::File(mut file, _) => {
            let counted = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                let mut buf = vec![0; 1 << 20];
                let mut total = 0u64;
                loop {
                    match file.read(&mut buf)? {
                        0 => return Ok::<_, std::io::Error>(total),
                        n => total += n as u64,
                    }
                }
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
            return match counted {
                Ok(n) => {
                    *read += n;
                    Ok(())
                }
                Err(e) => Err(format!("reading content: {}: {e}", location.show(key))),
            };
        }
        GetResultPayload::Stream(stream) => stream,
    };
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => *read += bytes.len() as u64,
            Err(e) => {
                return Err(format!("reading content: {}", location.fail(key, "get", e).message()));
            }
        }
    }
    Ok(())
}

/// A random number below 2⁶³, from the standard library's per-process random hash keys.
fn random_u63() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::collections::hash_map::RandomState::new().hash_one(n) >> 1
}

/// A byte count as CockroachDB shows it (`humanizeutil.IBytes`): `7 B`, `2.0 MiB`, `32 MiB`.
pub fn ibytes(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let exponent = ((bytes as f64).ln() / 1024f64.ln()).floor() as i32;
    let value = (bytes as f64 / 1024f64.powi(exponent) * 10.0 + 0.5).floor() / 10.0;
    let unit = UNITS[exponent.clamp(0, 6) as usize];
    if value < 10.0 { format!("{value:.1} {unit}") } else { format!("{value:.0} {unit}") }
}

/// A rate as CockroachDB shows it (`humanizeutil.DataRate`): `66.17 MiB/s`, `0` when nothing
/// moved, `inf` when no time passed.
pub fn data_rate(bytes: u64, elapsed: Duration) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    if elapsed.is_zero() {
        return "inf".to_owned();
    }
    format!("{:.2} MiB/s", bytes as f64 / elapsed.as_secs_f64() / f64::from(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_read_like_cockroachdb() {
        let sizes = [
            (0, "0 B"),
            (9, "9 B"),
            (10, "10 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (2 << 20, "2.0 MiB"),
            (32 << 20, "32 MiB"),
            (3 << 30, "3.0 GiB"),
        ];
        for (bytes, shown) in sizes {
            assert_eq!(ibytes(bytes), shown, "{bytes}");
        }
        assert_eq!(data_rate(0, Duration::from_secs(1)), "0");
        assert_eq!(data_rate(1, Duration::ZERO), "inf");
        assert_eq!(data_rate(32 << 20, Duration::from_millis(500)), "64.00 MiB/s");
    }

    #[test]
    fn payloads_are_bounded_and_not_constant() {
        assert_eq!(payload(100).len(), 100);
        assert_eq!(payload(1 << 30).len(), MULTIPART_THRESHOLD);
        let p = payload(CHUNK as u64);
        assert!(p.iter().any(|&b| b != p[0]));
    }
}
