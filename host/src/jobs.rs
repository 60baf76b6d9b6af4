//! Jobs: every BACKUP, RESTORE, IMPORT and EXPORT is recorded as a job in the catalog file
//! (table `jobs`), with its progress and outcome, for `SHOW JOBS` and `SHOW JOB id`. A detached
//! operation returns its job id at once and runs on in the background.

use std::path::Path;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use crate::model::{Column, ErrorKind, Outcome, Rows, SqlError, Value};

/// The jobs table; the catalog creates it too, since DROP EXTERNAL CONNECTION reads it.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    job_type TEXT NOT NULL,
    description TEXT NOT NULL,
    user_name TEXT NOT NULL,
    status TEXT NOT NULL,
    running_status TEXT,
    created INTEGER NOT NULL,
    started INTEGER,
    finished INTEGER,
    modified INTEGER NOT NULL,
    fraction_completed REAL NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    pid INTEGER NOT NULL,
    -- What a long-running job (a changefeed) needs to run and resume: its plan, as JSON.
    payload TEXT,
    -- Where it is: a changefeed's cursor and high-water mark, as JSON.
    progress TEXT
)";

/// A job's state, as SHOW JOBS spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Running now.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error.
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// What [`Jobs::get`] tells of a job.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// `BACKUP`, `CHANGEFEED`, …
    pub job_type: String,
    /// `running`, `paused`, `succeeded`, …
    pub status: String,
    /// Who started it.
    pub user: String,
    /// A long-running job's plan.
    pub payload: Option<String>,
}

/// A long-running job as a node sees it.
#[derive(Debug, Clone)]
pub struct LongJob {
    /// Its id.
    pub id: i64,
    /// `running`, `paused`, `pause-requested`, `cancel-requested`, `canceled`, `failed`.
    pub status: String,
    /// The process that runs it (0: none yet).
    pub pid: u32,
    /// Its plan.
    pub payload: String,
    /// Where it is.
    pub progress: Option<String>,
    /// Who started it.
    pub user: String,
}

/// The jobs table, over its own connection to the catalog file (a job in another thread
/// updates it while the session goes on).
#[derive(Debug)]
pub struct Jobs {
    db: rusqlite::Connection,
}

impl Jobs {
    /// Opens the jobs table in `<data_dir>/catalog.db`, creating it if needed.
    pub fn open(data_dir: &Path) -> Result<Self, SqlError> {
        let path = data_dir.join(crate::catalog::CATALOG_FILE);
        let db = rusqlite::Connection::open(&path).map_err(failed)?;
        db.busy_timeout(Duration::from_secs(10)).map_err(failed)?;
        db.execute_batch(SCHEMA).map_err(failed)?;
        Ok(Self { db })
    }

    /// Records a new running job; returns its id (unique and increasing, like CockroachDB's).
    pub fn start(&self, job_type: &str, description: &str, user: &str) -> Result<i64, SqlError> {
        self.in_write_transaction(|| self.insert(job_type, description, user, std::process::id()))
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock from the start, so that a read and
    /// the write that depends on it see no other writer between them).
    fn in_write_transaction<T>(
        &self,
        f: impl FnOnce() -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        self.db.execute_batch("BEGIN IMMEDIATE").map_err(failed)?;
        match f() {
            Ok(value) => {
                self.db.execute_batch("COMMIT").map_err(failed)?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.db.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Inserts a running job; to be called in a write transaction.
    fn insert(
        &self,
        job_type: &str,
        description: &str,
        user: &str,
        pid: u32,
    ) -> Result<i64, SqlError> {
        let now = now_micros();
        // Microseconds shifted left leave room for jobs started in the same microsecond.
        let mut id = now << 12;
        let last: Option<i64> =
            self.db.query_row("SELECT max(id) FROM jobs", [], |row| row.get(0)).map_err(failed)?;
        if let Some(last) = last {
            id = id.max(last + 1);
        }
        self.db
            .execute(
                "INSERT INTO jobs (id, job_type, description, user_name, status, created, started,
                                   modified, pid)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?5, ?5, ?6)",
                params![id, job_type, description, user, now, pid],
            )
            .map_err(failed)?;
        Ok(id)
    }

    /// Records progress (0 to 1) and what the job is doing.
    pub fn progress(&self, id: i64, fraction: f64, running_status: &str) -> Result<(), SqlError> {
        self.db
            .execute(
                "UPDATE jobs SET fraction_completed = ?2, running_status = ?3, modified = ?4
                 WHERE id = ?1",
                params![id, fraction.clamp(0.0, 1.0), running_status, now_micros()],
            )
            .map(drop)
            .map_err(failed)
    }

    /// Records the job's outcome: its result rows as JSON, or its error.
    /// (A job canceled or paused meanwhile keeps that status.)
    pub fn finish(&self, id: i64, outcome: Result<&str, &SqlError>) -> Result<(), SqlError> {
        let now = now_micros();
        let (status, result, error) = match outcome {
            Ok(result) => (Status::Succeeded, Some(result.to_owned()), None),
            Err(e) => (Status::Failed, None, Some(e.message.clone())),
        };
        self.db
            .execute(
                "UPDATE jobs SET status = ?2, result = ?3, error = ?4, finished = ?5, modified = ?5,
                        fraction_completed = CASE WHEN ?2 = 'succeeded' THEN 1 ELSE fraction_completed END,
                        running_status = NULL
                 WHERE id = ?1 AND status = 'running'",
                params![id, status.as_str(), result, error, now],
            )
            .map(drop)
            .map_err(failed)
    }

    /// Records a new long-running job (a changefeed) that a node runs: `payload` is its plan.
    /// It is recorded `pending`, with this process as its pid: from then on it holds its
    /// connection (DROP refuses) and its tables (their capture is not released), but no node
    /// runs it until [`Jobs::begin`] gives it its starting progress. Should this process stop
    /// before that, [`Jobs::fail_orphans`] fails it.
    pub fn start_long(
        &self,
        job_type: &str,
        description: &str,
        user: &str,
        payload: &str,
        progress: &str,
        connection: Option<&str>,
    ) -> Result<i64, SqlError> {
        self.in_write_transaction(|| {
            // The connection it uses must still exist when the job appears: a DROP that
            // committed since the statement resolved it saw no job to refuse for.
            if let Some(name) = connection {
                let exists: bool = self
                    .db
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM connections WHERE name = ?1)",
                        [name],
                        |row| row.get(0),
                    )
                    .map_err(failed)?;
                if !exists {
                    return Err(SqlError::new(
                        ErrorKind::NotFound,
                        "42704",
                        format!(
                            "failed to load external connection object: external connection \
                             with name {name} does not exist (it was dropped while the job was \
                             being created)"
                        ),
                    ));
                }
            }
            let id = self.insert(job_type, description, user, std::process::id())?;
            self.db
                .execute(
                    "UPDATE jobs SET payload = ?2, progress = ?3, status = 'pending' WHERE id = ?1",
                    params![id, payload, progress],
                )
                .map_err(failed)?;
            Ok(id)
        })
    }

    /// Starts a `pending` job with `progress`, for a node to run (pid 0: no node has it yet);
    /// `Ok(false)` if it is no longer pending (canceled meanwhile).
    pub fn begin(&self, id: i64, progress: &str) -> Result<bool, SqlError> {
        self.db
            .execute(
                "UPDATE jobs SET status = 'running', progress = ?2, modified = ?3, pid = 0
                 WHERE id = ?1 AND status = 'pending'",
                params![id, progress, now_micros()],
            )
            .map(|changed| changed == 1)
            .map_err(failed)
    }

    /// Fails the `pending` jobs whose creating process is gone: it stopped between recording
    /// the job and starting it. Their payloads, for the caller to release what they held
    /// (their tables' capture); until then they kept their connection from being dropped
    /// and every changefeed's consumed changes on their database from being deleted.
    pub fn fail_orphans(&self) -> Result<Vec<String>, SqlError> {
        let pending: Vec<(i64, u32, Option<String>)> = self
            .db
            .prepare_cached(
                "SELECT id, pid, payload FROM jobs WHERE status = 'pending' AND pid != 0",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
            })
            .map_err(failed)?;
        let mut payloads = Vec::new();
        for (id, pid, payload) in pending.into_iter().filter(|(_, pid, _)| !process_alive(*pid)) {
            let now = now_micros();
            let failed_now = self
                .db
                .execute(
                    "UPDATE jobs SET status = 'failed', error = ?3, modified = ?4, finished = ?4
                     WHERE id = ?1 AND status = 'pending' AND pid = ?2",
                    params![
                        id,
                        pid,
                        format!(
                            "the statement creating this job (pid {pid}) stopped before it started"
                        ),
                        now
                    ],
                )
                .map_err(failed)?;
            if failed_now == 1 {
                payloads.extend(payload);
            }
        }
        Ok(payloads)
    }

    /// Whether an unfinished changefeed captures `table` of `database`.
    pub fn captures(&self, database: &str, table: &str) -> Result<bool, SqlError> {
        self.db
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs
                    WHERE job_type = 'CHANGEFEED' AND payload IS NOT NULL AND json_valid(payload)
                    AND status NOT IN ('succeeded', 'failed', 'canceled')
                    AND payload ->> '$.database' = ?1
                    AND EXISTS (SELECT 1 FROM json_each(payload, '$.tables') WHERE value = ?2))",
                params![database, table],
                |row| row.get(0),
            )
            .map_err(failed)
    }

    /// The long-running jobs of `job_type` that are not finished.
    pub fn long_jobs(&self, job_type: &str) -> Result<Vec<LongJob>, SqlError> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, status, pid, payload, progress, user_name FROM jobs
                 WHERE job_type = ?1 AND payload IS NOT NULL
                   AND status NOT IN ('succeeded', 'failed', 'canceled')
                 ORDER BY id",
            )
            .map_err(failed)?;
        let rows = stmt
            .query_map([job_type], |row| {
                Ok(LongJob {
                    id: row.get(0)?,
                    status: row.get(1)?,
                    pid: row.get(2)?,
                    payload: row.get(3)?,
                    progress: row.get(4)?,
                    user: row.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(failed)?;
        Ok(rows)
    }

    /// Claims job `id` for this process if no live process runs it; whether it was claimed.
    pub fn claim(&self, id: i64, previous_pid: u32) -> Result<bool, SqlError> {
        if previous_pid != 0 && previous_pid != std::process::id() && process_alive(previous_pid) {
            return Ok(false);
        }
        let changed = self
            .db
            .execute(
                "UPDATE jobs SET pid = ?2, modified = ?3 WHERE id = ?1 AND pid = ?4",
                params![id, std::process::id(), now_micros(), previous_pid],
            )
            .map_err(failed)?;
        Ok(changed == 1)
    }

    /// Saves a long-running job's progress (and what it is doing).
    pub fn save_progress(
        &self,
        id: i64,
        progress: &str,
        running_status: &str,
    ) -> Result<(), SqlError> {
        self.db
            .execute(
                "UPDATE jobs SET progress = ?2, running_status = ?3, modified = ?4 WHERE id = ?1",
                params![id, progress, running_status, now_micros()],
            )
            .map(drop)
            .map_err(failed)
    }

    /// Sets a job's status (PAUSE, RESUME, CANCEL and what a node does about them).
    pub fn set_status(&self, id: i64, status: &str, error: Option<&str>) -> Result<(), SqlError> {
        let finished = matches!(status, "canceled" | "failed" | "succeeded").then(now_micros);
        self.db
            .execute(
                "UPDATE jobs SET status = ?2, error = coalesce(?3, error), modified = ?4,
                        finished = coalesce(?5, finished)
                 WHERE id = ?1",
                params![id, status, error, now_micros(), finished],
            )
            .map(drop)
            .map_err(failed)
    }

    /// Sets a job's status to `to` only if it still is `from` (PAUSE, RESUME, CANCEL JOB
    /// racing another session or a node); `Ok(false)` if it was not.
    pub fn transition(&self, id: i64, from: &str, to: &str) -> Result<bool, SqlError> {
        let now = now_micros();
        let finished = matches!(to, "canceled" | "failed" | "succeeded").then_some(now);
        self.db
            .execute(
                "UPDATE jobs SET status = ?3, modified = ?4, finished = coalesce(?5, finished)
                 WHERE id = ?1 AND status = ?2",
                params![id, from, to, now, finished],
            )
            .map(|changed| changed == 1)
            .map_err(failed)
    }

    /// Marks a running job failed; a job paused or canceled meanwhile keeps that status (its
    /// failure may only be the consequence, e.g. its change capture released by the cancel).
    pub fn fail_running(&self, id: i64, error: &str) -> Result<(), SqlError> {
        let now = now_micros();
        self.db
            .execute(
                "UPDATE jobs SET status = 'failed', error = ?2, modified = ?3, finished = ?3
                 WHERE id = ?1 AND status = 'running'",
                params![id, error, now],
            )
            .map(drop)
            .map_err(failed)
    }

    /// A job's type, status, owner and payload, if it exists.
    pub fn get(&self, id: i64) -> Result<Option<JobInfo>, SqlError> {
        self.db
            .query_row(
                "SELECT job_type, status, user_name, payload FROM jobs WHERE id = ?1",
                [id],
                |row| {
                    Ok(JobInfo {
                        job_type: row.get(0)?,
                        status: row.get(1)?,
                        user: row.get(2)?,
                        payload: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(failed)
    }

    /// SHOW JOBS (every job for an admin, the user's own otherwise) or SHOW JOB id.
    pub fn show(
        &self,
        id: Option<i64>,
        user: &str,
        admin: bool,
        job_type: Option<&str>,
    ) -> Result<Outcome, SqlError> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, job_type, description, user_name, status, running_status, created,
                        started, finished, modified, fraction_completed, error, pid
                 FROM jobs
                 WHERE (?1 IS NULL OR id = ?1) AND (?2 OR user_name = ?3)
                   AND (?4 IS NULL OR job_type = ?4)
                 ORDER BY created DESC, id DESC",
            )
            .map_err(failed)?;
        let mut rows = Vec::new();
        let mut query = stmt.query(params![id, admin, user, job_type]).map_err(failed)?;
        while let Some(row) = query.next().map_err(failed)? {
            let get_text = |i: usize| -> rusqlite::Result<Value> {
                Ok(row.get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text))
            };
            let get_time = |i: usize| -> rusqlite::Result<Value> {
                Ok(row.get::<_, Option<i64>>(i)?.map_or(Value::Null, |t| Value::Text(timestamp(t))))
            };
            let mut status: String = row.get(4).map_err(failed)?;
            let pid: u32 = row.get(12).map_err(failed)?;
            let mut error = get_text(11).map_err(failed)?;
            if status == "running" && pid != 0 && !process_alive(pid) && job_is_short(row)? {
                status = "failed".into();
                error = Value::Text(format!(
                    "the process running this job (pid {pid}) stopped before it finished"
                ));
            }
            rows.push(vec![
                Value::Int(row.get(0).map_err(failed)?),
                get_text(1).map_err(failed)?,
                get_text(2).map_err(failed)?,
                get_text(3).map_err(failed)?,
                Value::Text(status),
                get_text(5).map_err(failed)?,
                get_time(6).map_err(failed)?,
                get_time(7).map_err(failed)?,
                get_time(8).map_err(failed)?,
                get_time(9).map_err(failed)?,
                Value::Float(row.get(10).map_err(failed)?),
                error,
            ]);
        }
        if let Some(id) = id
            && rows.is_empty()
        {
            return Err(SqlError::new(
                ErrorKind::NotFound,
                "42704",
                format!("job with ID {id} does not exist"),
            ));
        }
        let columns = [
            ("job_id", "INT8"),
            ("job_type", "STRING"),
            ("description", "STRING"),
            ("user_name", "STRING"),
            ("status", "STRING"),
            ("running_status", "STRING"),
            ("created", "TIMESTAMPTZ"),
            ("started", "TIMESTAMPTZ"),
            ("finished", "TIMESTAMPTZ"),
            ("modified", "TIMESTAMPTZ"),
            ("fraction_completed", "FLOAT8"),
            ("error", "STRING"),
        ]
        .into_iter()
        .map(|(name, sql_type)| Column { name: name.into(), sql_type: sql_type.into() })
        .collect();
        Ok(Outcome::Rows(Rows { columns, rows }))
    }

    /// A job's status and stored result, if it exists.
    pub fn outcome(&self, id: i64) -> Result<Option<(String, Option<String>)>, SqlError> {
        self.db
            .query_row("SELECT status, result FROM jobs WHERE id = ?1", [id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(failed)
    }
}

/// Whether a job runs once (BACKUP, …) rather than until canceled (a changefeed, which a node
/// resumes after a restart).
fn job_is_short(row: &rusqlite::Row<'_>) -> Result<bool, SqlError> {
    let job_type: String = row.get(1).map_err(failed)?;
    Ok(job_type != "CHANGEFEED")
}

/// Whether process `pid` is still running (Linux: `/proc`; elsewhere assumed alive).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") { Path::new(&format!("/proc/{pid}")).exists() } else { true }
}

fn failed(e: rusqlite::Error) -> SqlError {
    SqlError::new(ErrorKind::Unavailable, "58030", format!("the jobs table failed: {e}"))
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// A TIMESTAMPTZ as `cockroach sql` shows it: `2026-11-26 04:00:28.123456+00`.
pub fn timestamp(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string(),
        None => micros.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Connection, ConnectionType, Mutation};

    /// A changefeed whose connection was dropped after the statement resolved it is not
    /// created: the job and the check are one transaction, so DROP cannot slip between them.
    #[test]
    fn a_long_job_needs_its_connection_to_still_exist() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open(dir.path()).unwrap();
        let sink = Connection {
            name: "sink".into(),
            connection_type: ConnectionType::Storage,
            provider: "nodelocal".into(),
            uri: "nodelocal://1/s".into(),
            owner: "root".into(),
            created: 0,
            updated: 0,
            version: 1,
        };
        catalog.apply(&[Mutation::InsertConnection(sink)]).unwrap().unwrap();
        let jobs = Jobs::open(dir.path()).unwrap();
        let payload = r#"{"database": "db", "tables": ["t"]}"#;
        let id = jobs.start_long("CHANGEFEED", "d", "root", payload, "{}", Some("sink")).unwrap();
        // Pending: it holds its table's capture, and no node runs it yet.
        assert_eq!(jobs.get(id).unwrap().unwrap().status, "pending");
        assert!(jobs.captures("db", "t").unwrap());
        assert!(jobs.long_jobs("CHANGEFEED").unwrap().iter().all(|j| j.status != "running"));
        assert!(jobs.begin(id, r#"{"cursor": 7}"#).unwrap());
        let job = jobs.long_jobs("CHANGEFEED").unwrap().into_iter().find(|j| j.id == id).unwrap();
        assert_eq!(
            (job.status.as_str(), job.progress.as_deref()),
            ("running", Some(r#"{"cursor": 7}"#))
        );
        assert!(!jobs.begin(id, "{}").unwrap(), "a job begins once");
        assert!(jobs.fail_orphans().unwrap().is_empty(), "a begun job is no orphan");

        // A job whose creating process stopped before it began fails, and says so.
        let orphan = jobs.start_long("CHANGEFEED", "d", "root", payload, "{}", None).unwrap();
        assert!(jobs.fail_orphans().unwrap().is_empty(), "its creator (this process) is alive");
        let gone = u32::MAX - 1;
        jobs.db.execute("UPDATE jobs SET pid = ?2 WHERE id = ?1", params![orphan, gone]).unwrap();
        assert_eq!(jobs.fail_orphans().unwrap(), [payload]);
        let info = jobs.get(orphan).unwrap().unwrap();
        assert_eq!(info.status, "failed");
        assert!(jobs.fail_orphans().unwrap().is_empty(), "failed once");
        let e = jobs.start_long("CHANGEFEED", "d", "root", "{}", "{}", Some("gone")).unwrap_err();
        assert_eq!(e.sqlstate, "42704", "{e:?}");
        assert!(e.message.contains("external connection with name gone does not exist"), "{e:?}");
        let count: i64 = jobs.db.query_row("SELECT count(*) FROM jobs", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 2, "the refused job left no row (two were recorded before it)");
    }
}
