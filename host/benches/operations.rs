//! BACKUP and RESTORE through the `extconn` binary against the plain copies they compete with
//! (`cargo bench -p extconn-host --bench operations`, or `scripts/bench`).
//!
//! For each database size (`EXTCONN_BENCH_SIZES_MIB`, default `256,1024`) the bench builds a
//! database of incompressible rows under `target/bench-operations/`, then, `EXTCONN_BENCH_RUNS`
//! times (default 3), interleaved so that drift on a shared machine hits both sides alike:
//!
//! * nodelocal: `BACKUP DATABASE big INTO 'nodelocal://1/…'` (a new collection each run, so
//!   every chunk is uploaded) against `cp` of the database file on the same disk, and
//!   `RESTORE … WITH new_db_name` against `cp` of that copy back, with and without an fsync of
//!   the result (RESTORE syncs its file; `cp` does not).
//! * nodelocal, encrypted: the same BACKUP and RESTORE `WITH encryption_passphrase`, to
//!   weigh what AES-256-GCM on every chunk costs against the plaintext rows.
//! * S3 on moto (`scripts/services start`): BACKUP against one `Location::put` of the file's
//!   bytes (an object_store multipart upload, 8 MiB parts, 4 at once) and RESTORE against one
//!   `Location::get` into memory. The raw side has the bytes in memory before the clock starts.
//!
//! `EXTCONN_BENCH_SKIP_S3=1` measures nodelocal only.
//!
//! Every `extconn` runs under `/usr/bin/time`, which reports its peak resident set (the
//! child's `ru_maxrss`). Times are wall clock for the whole command, process start and the
//! component's load included (`extconn -e 'SHOW DATABASES'` is timed too, for scale).
//!
//! The numbers are medians of the runs; criterion is not used here because its minimum of 10
//! samples plus warm-up would take about half an hour at 1 GiB. Results are in
//! `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use extconn_providers::storage::{self, Location};
use extconn_providers::{Config, Target};

const MIB: u64 = 1 << 20;
const BUCKET: &str = "extconn-test";
const TIME: &str = "/usr/bin/time";

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let sizes = env_list("EXTCONN_BENCH_SIZES_MIB", "256,1024")?;
    let runs = env_list("EXTCONN_BENCH_RUNS", "3")?.first().copied().unwrap_or(3).max(1) as usize;
    ensure!(Path::new(TIME).exists(), "{TIME} (GNU time) is needed to measure peak memory");
    let skip_s3 = std::env::var("EXTCONN_BENCH_SKIP_S3").is_ok_and(|v| v == "1");
    let s3 = if skip_s3 {
        S3 { endpoint: String::new(), key_id: String::new(), secret: String::new() }
    } else {
        S3::from_env()?
    };
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench-operations");
    let root = std::path::absolute(&root)?;
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    let mut reports = Vec::new();
    for &size_mib in &sizes {
        let mut bench = Bench::new(root.join(format!("{size_mib}mib")), &s3, &tokio)?;
        bench.skip_s3 = skip_s3;
        let result = bench.run(size_mib * MIB, runs);
        let cleanup = bench.cleanup();
        reports.push(result?);
        cleanup?;
    }
    let _ = std::fs::remove_dir_all(&root);
    machine();
    for report in &reports {
        report.print();
    }
    print_memory(&reports);
    Ok(())
}

/// A comma-separated list of numbers from the environment, or `default`.
fn env_list(name: &str, default: &str) -> Result<Vec<u64>> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    value
        .split(',')
        .map(|s| s.trim().parse().with_context(|| format!("{name}={value:?}: not numbers")))
        .collect()
}

/// moto's endpoint and the IAM user `scripts/services start` made.
struct S3 {
    endpoint: String,
    key_id: String,
    secret: String,
}

impl S3 {
    fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var(name).ok().filter(|v| !v.is_empty()).with_context(|| {
                format!(
                    "{name} is not set: run scripts/bench, or first \
                     eval \"$(scripts/services start)\""
                )
            })
        };
        Ok(Self {
            endpoint: var("EXTCONN_TEST_S3_ENDPOINT")?,
            key_id: var("EXTCONN_TEST_S3_ACCESS_KEY_ID")?,
            secret: var("EXTCONN_TEST_S3_SECRET_ACCESS_KEY")?,
        })
    }

    fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_USE_PATH_STYLE", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    fn uri(&self, path: &str) -> String {
        let query: Vec<String> =
            self.params().iter().map(|(k, v)| format!("{k}={}", escape(v))).collect();
        format!("s3://{BUCKET}/{path}?{}", query.join("&"))
    }

    fn location(&self, path: &str) -> Result<Location> {
        let mut target = Target::new("s3", BUCKET, path);
        target.params = self.params().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Ok(storage::open(&Config::default(), &target)?)
    }
}

/// Percent-encodes a URI query value.
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One database size: a data dir with the database `big` in it.
struct Bench<'a> {
    dir: PathBuf,
    data_dir: PathBuf,
    s3: &'a S3,
    tokio: &'a tokio::runtime::Runtime,
    /// The S3 prefix everything of this size goes under.
    prefix: String,
    /// `EXTCONN_BENCH_SKIP_S3=1`: nodelocal only.
    skip_s3: bool,
}

/// One timed command: wall time and, for `extconn`, its peak resident set.
#[derive(Debug, Clone, Copy)]
struct Sample {
    time: Duration,
    max_rss_kib: Option<u64>,
}

/// The samples of each measurement, by name, in the order first seen.
#[derive(Debug, Default)]
struct Report {
    size_bytes: u64,
    runs: usize,
    startup: Vec<Sample>,
    rows: Vec<(&'static str, Vec<Sample>)>,
}

impl Report {
    fn add(&mut self, name: &'static str, sample: Sample) {
        match self.rows.iter_mut().find(|(n, _)| *n == name) {
            Some((_, samples)) => samples.push(sample),
            None => self.rows.push((name, vec![sample])),
        }
    }

    fn median(&self, name: &str) -> Duration {
        let (_, samples) = self.rows.iter().find(|(n, _)| *n == name).expect("measured");
        median(samples.iter().map(|s| s.time).collect())
    }

    fn mib_s(&self, time: Duration) -> f64 {
        self.size_bytes as f64 / MIB as f64 / time.as_secs_f64()
    }

    fn print(&self) {
        println!(
            "\n{} MiB database ({} bytes), {} runs; medians [min, max]:",
            self.size_bytes / MIB,
            self.size_bytes,
            self.runs
        );
        println!("  {:<34} {:>24} {:>10} {:>14}", "", "seconds", "MiB/s", "peak RSS MiB");
        for (name, samples) in &self.rows {
            let times: Vec<Duration> = samples.iter().map(|s| s.time).collect();
            let med = median(times.clone());
            let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
            let rss = samples.iter().filter_map(|s| s.max_rss_kib).max();
            println!(
                "  {name:<34} {:>8.2} [{:>5.2}, {:>5.2}] {:>10.0} {:>14}",
                med.as_secs_f64(),
                min.as_secs_f64(),
                max.as_secs_f64(),
                self.mib_s(med),
                rss.map_or(String::new(), |k| format!("{:.0}", k as f64 / 1024.0)),
            );
        }
        let startup = median(self.startup.iter().map(|s| s.time).collect());
        println!("  (an `extconn -e 'SHOW DATABASES'` takes {:.3} s)", startup.as_secs_f64());
        println!("  throughput ratios (target: at least 0.80):");
        for (what, op, base) in [
            ("nodelocal BACKUP / cp", "nodelocal BACKUP", "cp"),
            ("nodelocal RESTORE / cp back", "nodelocal RESTORE", "cp back"),
            ("nodelocal RESTORE / cp back + fsync", "nodelocal RESTORE", "cp back + fsync"),
            ("S3 BACKUP / multipart put", "S3 BACKUP", "S3 raw multipart put"),
            ("S3 RESTORE / get", "S3 RESTORE", "S3 raw get"),
            ("S3 RESTORE / get + write + fsync", "S3 RESTORE", "S3 raw get + write + fsync"),
        ] {
            if !self.measured(op) {
                continue;
            }
            let ratio = self.median(base).as_secs_f64() / self.median(op).as_secs_f64();
            let met = if ratio >= 0.8 { "met" } else { "MISSED" };
            println!("    {what:<38} {ratio:>6.2}  {met}");
        }
        println!("  what encryption costs, in throughput (target: under 15 %):");
        for (what, encrypted, plain) in [
            ("nodelocal BACKUP", "nodelocal BACKUP encrypted", "nodelocal BACKUP"),
            ("nodelocal RESTORE", "nodelocal RESTORE encrypted", "nodelocal RESTORE"),
        ] {
            let cost =
                1.0 - self.median(plain).as_secs_f64() / self.median(encrypted).as_secs_f64();
            let met = if cost < 0.15 { "met" } else { "MISSED" };
            println!("    {what:<38} {:>5.1} %  {met}", cost * 100.0);
        }
    }

    fn measured(&self, name: &str) -> bool {
        self.rows.iter().any(|(n, _)| *n == name)
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Peak memory of every `extconn` command at each size, side by side.
fn print_memory(reports: &[Report]) {
    println!("\npeak RSS of the extconn process, MiB (max over the runs):");
    print!("  {:<34}", "");
    for r in reports {
        print!(" {:>10}", format!("{} MiB", r.size_bytes / MIB));
    }
    println!();
    let Some(first) = reports.first() else { return };
    for (name, _) in first.rows.iter().filter(|(_, s)| s[0].max_rss_kib.is_some()) {
        print!("  {name:<34}");
        for r in reports {
            let rss = r.rows.iter().find(|(n, _)| n == name).into_iter();
            let peak = rss.flat_map(|(_, s)| s).filter_map(|s| s.max_rss_kib).max();
            print!(" {:>10}", peak.map_or("-".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0)));
        }
        println!();
    }
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find(|l| l.starts_with("model name")).unwrap_or("model name: ?");
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = mem.lines().next().unwrap_or("MemTotal: ?");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\nmachine: {cores} cores, {}, {}",
        model.trim(),
        total.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

impl<'a> Bench<'a> {
    fn new(dir: PathBuf, s3: &'a S3, tokio: &'a tokio::runtime::Runtime) -> Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!("bench-operations-{}-{nanos}-{name}", std::process::id());
        Ok(Self { data_dir: dir.join("data"), dir, s3, tokio, prefix, skip_s3: false })
    }

    fn database(&self, name: &str) -> PathBuf {
        self.data_dir.join("databases").join(format!("{name}.sqlite"))
    }

    /// Runs `sql` with `extconn` under `/usr/bin/time`; its wall time and peak RSS.
    fn extconn(&self, sql: &str) -> Result<Sample> {
        let rss_file = self.dir.join("maxrss");
        let mut command = Command::new(TIME);
        command.arg("-f").arg("%M").arg("-o").arg(&rss_file);
        command.arg(env!("CARGO_BIN_EXE_extconn")).arg("--data-dir").arg(&self.data_dir);
        command.arg("-e").arg(sql);
        let start = Instant::now();
        let output = command.output().context("running extconn")?;
        let time = start.elapsed();
        if !output.status.success() {
            let hide = |s: &str| s.replace(&self.s3.secret, "<secret>");
            bail!(
                "extconn -e {:?} failed ({}) in {}\nstdout:\n{}\nstderr:\n{}",
                hide(sql),
                output.status,
                self.data_dir.display(),
                hide(&String::from_utf8_lossy(&output.stdout)),
                hide(&String::from_utf8_lossy(&output.stderr)),
            );
        }
        let rss = std::fs::read_to_string(&rss_file)?;
        let max_rss_kib = rss.lines().last().and_then(|l| l.trim().parse().ok());
        Ok(Sample { time, max_rss_kib })
    }

    /// Runs a plain command (`cp`, `sync`); its wall time.
    fn shell(&self, program: &str, args: &[&Path]) -> Result<Sample> {
        let start = Instant::now();
        let status = Command::new(program).args(args).status()?;
        let time = start.elapsed();
        ensure!(status.success(), "{program} {args:?} failed: {status}");
        Ok(Sample { time, max_rss_kib: None })
    }

    /// Creates `big` with `CREATE DATABASE`, then fills it with rows of random (incompressible)
    /// payloads until the file holds at least `bytes`: an events table with an index.
    fn create(&self, bytes: u64) -> Result<u64> {
        self.extconn("CREATE DATABASE big")?;
        let mut db = rusqlite::Connection::open(self.database("big"))?;
        db.execute_batch(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, \
             kind TEXT NOT NULL, created_at INTEGER NOT NULL, payload BLOB NOT NULL); \
             CREATE INDEX events_account ON events (account, created_at);",
        )?;
        loop {
            let size: i64 = db.query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |r| r.get(0),
            )?;
            if size as u64 >= bytes {
                break;
            }
            let tx = db.transaction()?;
            // About 55 MiB a batch: rows of 900 to 1,100 random bytes.
            tx.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) \
                 INSERT INTO events (account, kind, created_at, payload) \
                 SELECT abs(random()) % 100000, 'kind-' || (abs(random()) % 16), \
                 1764000000 + abs(random()) % 31536000, randomblob(900 + abs(random()) % 201) \
                 FROM n",
                [],
            )?;
            tx.commit()?;
        }
        drop(db);
        Ok(std::fs::metadata(self.database("big"))?.len())
    }

    fn remove_database(&self, name: &str) -> Result<()> {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let path = PathBuf::from(format!("{}{suffix}", self.database(name).display()));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    fn run(&self, bytes: u64, runs: usize) -> Result<Report> {
        let started = Instant::now();
        let size = self.create(bytes)?;
        eprintln!(
            "operations: built a {} MiB database in {:.1} s",
            size / MIB,
            started.elapsed().as_secs_f64()
        );
        let mut report = Report { size_bytes: size, runs, ..Report::default() };
        let big = self.database("big");
        let copies = self.dir.join("cp");
        std::fs::create_dir_all(&copies)?;
        let copy = copies.join("big.sqlite");
        let copied_back = self.database("big_cp");
        let raw_key = "raw/big.sqlite";
        let raw = if self.skip_s3 { None } else { Some(self.s3.location(&self.prefix)?) };
        let bytes_in_memory = std::fs::read(&big)?;
        for run in 0..runs {
            eprintln!("operations: {} MiB, run {} of {runs}", size / MIB, run + 1);
            report.startup.push(self.extconn("SHOW DATABASES")?);

            // nodelocal against cp, same disk.
            let collection = format!("nodelocal://1/bench-{run}");
            let backup = format!("BACKUP DATABASE big INTO '{collection}'");
            report.add("nodelocal BACKUP", self.extconn(&backup)?);
            report.add("cp", self.shell("cp", &[&big, &copy])?);
            self.remove_database("big_r")?;
            let restore = format!(
                "RESTORE DATABASE big FROM LATEST IN '{collection}' WITH new_db_name = 'big_r'"
            );
            report.add("nodelocal RESTORE", self.extconn(&restore)?);
            ensure!(std::fs::metadata(self.database("big_r"))?.len() == size, "restored size");
            self.remove_database("big_r")?;
            report.add("cp back", self.shell("cp", &[&copy, &copied_back])?);
            std::fs::remove_file(&copied_back)?;
            let start = Instant::now();
            self.shell("cp", &[&copy, &copied_back])?;
            self.shell("sync", &[&copied_back])?;
            report.add("cp back + fsync", Sample { time: start.elapsed(), max_rss_kib: None });
            std::fs::remove_file(&copied_back)?;
            std::fs::remove_file(&copy)?;

            // The same on nodelocal, encrypted (issue 7): a data key sealing every chunk.
            let collection = format!("nodelocal://1/bench-encrypted-{run}");
            let key = "encryption_passphrase = 'bench operations passphrase'";
            let backup = format!("BACKUP DATABASE big INTO '{collection}' WITH {key}");
            report.add("nodelocal BACKUP encrypted", self.extconn(&backup)?);
            let restore = format!(
                "RESTORE DATABASE big FROM LATEST IN '{collection}' WITH new_db_name = 'big_r', {key}"
            );
            report.add("nodelocal RESTORE encrypted", self.extconn(&restore)?);
            ensure!(std::fs::metadata(self.database("big_r"))?.len() == size, "restored size");
            self.remove_database("big_r")?;
            std::fs::remove_dir_all(self.data_dir.join("extern"))?;
            if self.skip_s3 {
                continue;
            }

            // S3 on moto against one object_store multipart put and one get.
            let uri = self.s3.uri(&format!("{}/backup-{run}", self.prefix));
            report.add("S3 BACKUP", self.extconn(&format!("BACKUP DATABASE big INTO '{uri}'"))?);
            let data = bytes_in_memory.clone();
            let start = Instant::now();
            let raw = raw.as_ref().context("S3 is measured")?;
            self.tokio.block_on(raw.put(raw_key, data))?;
            report.add("S3 raw multipart put", Sample { time: start.elapsed(), max_rss_kib: None });
            let restore =
                format!("RESTORE DATABASE big FROM LATEST IN '{uri}' WITH new_db_name = 'big_r'");
            report.add("S3 RESTORE", self.extconn(&restore)?);
            ensure!(std::fs::metadata(self.database("big_r"))?.len() == size, "restored size");
            self.remove_database("big_r")?;
            let start = Instant::now();
            let got = self.tokio.block_on(raw.get(raw_key))?;
            report.add("S3 raw get", Sample { time: start.elapsed(), max_rss_kib: None });
            ensure!(got == bytes_in_memory, "the raw get returned other bytes");
            drop(got);
            // What a restore cannot avoid: the bytes on disk, durably.
            let start = Instant::now();
            let got = self.tokio.block_on(raw.get(raw_key))?;
            let mut file = std::fs::File::create(&copied_back)?;
            std::io::Write::write_all(&mut file, &got)?;
            file.sync_all()?;
            let sample = Sample { time: start.elapsed(), max_rss_kib: None };
            report.add("S3 raw get + write + fsync", sample);
            drop((got, file));
            std::fs::remove_file(&copied_back)?;
            self.delete_s3()?;
        }
        Ok(report)
    }

    /// Deletes every object under this size's S3 prefix (moto keeps them until then).
    fn delete_s3(&self) -> Result<()> {
        if self.skip_s3 {
            return Ok(());
        }
        let location = self.s3.location(&self.prefix)?;
        self.tokio.block_on(async {
            for meta in location.list("", None).await? {
                location.delete(&meta.key).await?;
            }
            Ok(())
        })
    }

    fn cleanup(&self) -> Result<()> {
        let s3 = self.delete_s3();
        std::fs::remove_dir_all(&self.dir)?;
        s3
    }
}
