//! Jobs: every BACKUP, RESTORE, IMPORT and EXPORT is recorded as a job in the catalog file
//! (table `jobs`), with its progress and outcome, for `SHOW JOBS` and `SHOW JOB id`. A detached
//! operation returns its job id at once and runs on in the background.

use std::path::Path;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use crate::model::{Column, ErrorKind, Outcome, Rows, SqlError, Value};

const SCHEMA: &str = "
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
    pid INTEGER NOT NULL
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
                params![id, job_type, description, user, now, std::process::id()],
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
                 WHERE id = ?1",
                params![id, status.as_str(), result, error, now],
            )
            .map(drop)
            .map_err(failed)
    }

    /// SHOW JOBS (every job for an admin, the user's own otherwise) or SHOW JOB id.
    pub fn show(&self, id: Option<i64>, user: &str, admin: bool) -> Result<Outcome, SqlError> {
        let mut stmt = self
            .db
            .prepare(
                "SELECT id, job_type, description, user_name, status, running_status, created,
                        started, finished, modified, fraction_completed, error, pid
                 FROM jobs
                 WHERE (?1 IS NULL OR id = ?1) AND (?2 OR user_name = ?3)
                 ORDER BY created DESC, id DESC",
            )
            .map_err(failed)?;
        let mut rows = Vec::new();
        let mut query = stmt.query(params![id, admin, user]).map_err(failed)?;
        while let Some(row) = query.next().map_err(failed)? {
            let get_text = |i: usize| -> rusqlite::Result<Value> {
                Ok(row.get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text))
            };
            let get_time = |i: usize| -> rusqlite::Result<Value> {
                Ok(row.get::<_, Option<i64>>(i)?.map_or(Value::Null, |t| Value::Text(timestamp(t))))
            };
            let mut status: String = row.get(4).map_err(failed)?;
            let mut error = get_text(11).map_err(failed)?;
            let pid: u32 = row.get(12).map_err(failed)?;
            if status == "running" && !process_alive(pid) {
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
