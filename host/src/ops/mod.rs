//! Operations: work the component plans and the host carries out (BACKUP, RESTORE, IMPORT,
//! EXPORT, CHECK, database statements, and SQL passed through to a database).
//!
//! The component has already parsed the statement, resolved every `external://` URI (USAGE,
//! type, sub-path) and checked every option; a [`Plan`] names the resolved targets and carries
//! the rest as JSON (`detail`, documented per kind in the module that runs it). The host moves
//! the bytes: bulk data never passes through the component.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::databases::{self, Databases};
use crate::jobs::Jobs;
use crate::model::{Column, Outcome, Rows, SqlError, Value};
use extconn_providers as providers;

mod backup;
pub(crate) mod changefeed;
mod check;
mod table_io;

/// A planned operation, with its targets converted for the providers.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `BACKUP`, `RESTORE`, `CHECK`, …
    pub kind: String,
    /// The resolved locations, in the order `detail` refers to them (by index).
    pub targets: Vec<providers::Target>,
    /// The rest of the plan.
    pub detail: Json,
}

/// What an operation may use: the providers, the I/O runtime, the databases and jobs, and the
/// script's session state.
pub(crate) struct Ctx<'a> {
    pub config: &'a Arc<providers::Config>,
    pub stores: &'a Arc<providers::storage::Cache>,
    pub tokio: &'a tokio::runtime::Runtime,
    /// The user the script runs as.
    pub user: &'a str,
    /// The databases.
    pub databases: &'a mut Databases,
    /// The script's current database (`USE` changes it).
    pub database: &'a mut Option<String>,
    /// The jobs table, opened on first use.
    pub jobs: &'a mut Option<Jobs>,
    /// Where long operations report progress (`operation`, bytes done, bytes in all).
    pub progress: Option<&'a ProgressFn>,
    /// The job this operation runs as, when it was created before (a detached operation).
    pub job: Option<i64>,
    /// NOTICEs for the statement's result.
    pub notices: Vec<String>,
}

/// What a detached operation takes into its thread.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub config: Arc<providers::Config>,
    pub stores: Arc<providers::storage::Cache>,
    pub user: String,
    pub database: Option<String>,
}

/// A progress callback: operation, bytes done, bytes in all.
pub type ProgressFn = dyn Fn(&str, u64, u64) + Send + Sync;

/// How often a running job's progress is written to the jobs table, at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Reports a running job's progress: to the jobs table (at most every [`PROGRESS_EVERY`]) and
/// to the session's progress callback.
pub(crate) struct JobProgress<'a> {
    id: i64,
    operation: String,
    jobs: Mutex<(Jobs, Instant)>,
    progress: Option<&'a ProgressFn>,
}

impl JobProgress<'_> {
    /// `done` of `total` bytes (`total` 0: unknown).
    pub(crate) fn report(&self, done: u64, total: u64) {
        if let Some(progress) = self.progress {
            progress(&self.operation, done, total);
        }
        let Ok(mut guard) = self.jobs.lock() else { return };
        let (jobs, last) = &mut *guard;
        if total > 0 && last.elapsed() >= PROGRESS_EVERY {
            *last = Instant::now();
            let status = format!("{done} of {total} bytes");
            // Progress is advisory: a busy catalog must not fail the operation.
            let _ = jobs.progress(self.id, done as f64 / total as f64, &status);
        }
    }
}

impl<'a> Ctx<'a> {
    /// Starts the job `plan` runs as (or takes the one made for it), and a reporter that
    /// records its progress in the jobs table and hands it to the progress callback.
    pub(crate) fn start_job(&mut self, plan: &Plan) -> Result<(i64, JobProgress<'a>), SqlError> {
        let id = match self.job {
            Some(id) => id,
            None => {
                let user = self.user;
                self.jobs()?.start(&plan.kind, str_field(plan, "statement")?, user)?
            }
        };
        let reporter = Jobs::open(&self.config.data_dir)?;
        let progress = JobProgress {
            id,
            operation: plan.kind.clone(),
            jobs: Mutex::new((reporter, Instant::now())),
            progress: self.progress,
        };
        Ok((id, progress))
    }

    /// Records the end of job `id`; the operation's own error stays its error.
    pub(crate) fn finish_job<T>(
        &mut self,
        id: i64,
        result: Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let jobs = self.jobs()?;
        match &result {
            Ok(_) => jobs.finish(id, Ok("{}"))?,
            Err(e) => jobs.finish(id, Err(e))?,
        }
        result
    }

    /// The jobs table.
    pub(crate) fn jobs(&mut self) -> Result<&Jobs, SqlError> {
        if self.jobs.is_none() {
            let jobs = Jobs::open(&self.config.data_dir)?;
            // Changefeeds whose CREATE stopped before starting them hold nothing any more.
            for payload in jobs.fail_orphans().unwrap_or_default() {
                crate::changefeed::release(self.databases, &jobs, &payload);
            }
            *self.jobs = Some(jobs);
        }
        Ok(self.jobs.as_ref().expect("opened above"))
    }
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("user", &self.user).finish_non_exhaustive()
    }
}

/// Operations that may run detached (`WITH detached`).
const DETACHABLE: &[&str] = &["BACKUP", "RESTORE", "IMPORT"];

/// Runs `plan`; a detached BACKUP, RESTORE or IMPORT starts its job, hands it to a thread and
/// returns its id (the thread is returned to be joined before the process ends).
pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    plan: Plan,
    env: impl FnOnce() -> Env,
) -> Result<(Outcome, Option<std::thread::JoinHandle<()>>), SqlError> {
    let detached = DETACHABLE.contains(&plan.kind.as_str())
        && plan.detail["options"]["detached"].as_bool() == Some(true);
    if !detached {
        return run_here(ctx, plan).map(|outcome| (outcome, None));
    }
    let user = ctx.user;
    let id = ctx.jobs()?.start(&plan.kind, str_field(&plan, "statement")?, user)?;
    let env = env();
    let thread = std::thread::Builder::new()
        .name(format!("job-{id}"))
        .spawn(move || run_detached(env, plan, id))
        .map_err(|e| SqlError::internal(format!("cannot start a thread for job {id}: {e}")))?;
    let outcome = Outcome::Rows(Rows {
        columns: vec![Column { name: "job_id".into(), sql_type: "INT8".into() }],
        rows: vec![vec![Value::Int(id)]],
    });
    Ok((outcome, Some(thread)))
}

/// A detached operation's thread: its own I/O runtime, database connections and jobs table.
fn run_detached(env: Env, plan: Plan, id: i64) {
    let _span = tracing::debug_span!("job", id).entered();
    let mut databases = Databases::new(&env.config.data_dir);
    let mut database = env.database.clone();
    let mut jobs = None;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SqlError::internal(format!("cannot start the I/O runtime: {e}")))
        .and_then(|tokio| {
            let mut ctx = Ctx {
                config: &env.config,
                stores: &env.stores,
                tokio: &tokio,
                user: &env.user,
                databases: &mut databases,
                database: &mut database,
                jobs: &mut jobs,
                progress: None,
                job: Some(id),
                notices: Vec::new(),
            };
            run_here(&mut ctx, plan)
        });
    if let Err(e) = result {
        // The runners record their own failures; this catches what failed before they ran.
        if let Ok(jobs) = Jobs::open(&env.config.data_dir)
            && let Ok(Some((status, _))) = jobs.outcome(id)
            && status == "running"
        {
            let _ = jobs.finish(id, Err(&e));
        }
        tracing::warn!(job = id, error = %e.message, "detached job failed");
    }
}

fn run_here(ctx: &mut Ctx<'_>, plan: Plan) -> Result<Outcome, SqlError> {
    match plan.kind.as_str() {
        "CHECK" => check::run(ctx, plan),
        "BACKUP" => backup::run_backup(ctx, &plan),
        "RESTORE" => backup::run_restore(ctx, &plan),
        "SHOW BACKUPS" => backup::run_show_backups(ctx, &plan),
        "SHOW BACKUP" => backup::run_show_backup(ctx, &plan),
        "IMPORT" => table_io::run_import(ctx, &plan),
        "CHANGEFEED" => changefeed::run_create(ctx, &plan),
        "JOB CONTROL" => changefeed::run_control(ctx, &plan),
        "EXPORT" => table_io::run_export(ctx, &plan),
        "SHOW JOBS" => {
            let id = plan.detail.get("id").and_then(Json::as_i64);
            let user = str_field(&plan, "user")?.to_owned();
            let admin = bool_field(&plan, "admin");
            let job_type = bool_field(&plan, "changefeed").then_some("CHANGEFEED");
            ctx.jobs()?.show(id, &user, admin, job_type)
        }
        "CREATE DATABASE" => {
            let name = str_field(&plan, "name")?;
            let if_not_exists = bool_field(&plan, "if_not_exists");
            if !ctx.databases.create(name, if_not_exists)? {
                ctx.notices.push(format!("database {name:?} already exists, skipping"));
            }
            Ok(Outcome::Command("CREATE DATABASE".into()))
        }
        "DROP DATABASE" => {
            let name = str_field(&plan, "name")?;
            let (if_exists, cascade) =
                (bool_field(&plan, "if_exists"), bool_field(&plan, "cascade"));
            if !ctx.databases.drop(name, if_exists, cascade)? {
                ctx.notices.push(format!("database {name:?} does not exist, skipping"));
            }
            Ok(Outcome::Command("DROP DATABASE".into()))
        }
        "SHOW DATABASES" => {
            let names = ctx.databases.list()?;
            Ok(one_column("database_name", names))
        }
        "SHOW TABLES" => {
            let name = match plan.detail.get("database").and_then(Json::as_str) {
                Some(name) => name.to_owned(),
                None => current(ctx),
            };
            if name != databases::DEFAULT_DATABASE && !ctx.databases.exists(&name) {
                return Err(databases::does_not_exist(&name));
            }
            let tables = ctx.databases.tables(&name)?;
            Ok(one_column("table_name", tables))
        }
        "USE" => {
            let name = str_field(&plan, "name")?;
            if name != databases::DEFAULT_DATABASE && !ctx.databases.exists(name) {
                return Err(databases::does_not_exist(name));
            }
            *ctx.database = Some(name.to_owned());
            Ok(Outcome::Command("SET".into()))
        }
        other => Err(SqlError::unsupported(format!(
            "extconn does not run this statement yet: {other} is not available yet"
        ))),
    }
}

/// Runs SQL the component does not own in the script's current database.
pub(crate) fn passthrough(ctx: &mut Ctx<'_>, sql: &str) -> Result<Outcome, SqlError> {
    let name = current(ctx);
    ctx.databases.run_sql(&name, sql)
}

/// The script's current database, or the default one.
pub(crate) fn current(ctx: &Ctx<'_>) -> String {
    ctx.database.clone().unwrap_or_else(|| databases::DEFAULT_DATABASE.to_owned())
}

fn one_column(name: &str, values: Vec<String>) -> Outcome {
    Outcome::Rows(Rows {
        columns: vec![Column { name: name.to_owned(), sql_type: "STRING".to_owned() }],
        rows: values.into_iter().map(|v| vec![Value::Text(v)]).collect(),
    })
}

/// The plan's `detail` field `name`, or an internal error naming it: the component and the
/// host disagree about a plan's shape only through a bug.
pub(crate) fn field<'j>(plan: &'j Plan, name: &str) -> Result<&'j Json, SqlError> {
    plan.detail
        .get(name)
        .ok_or_else(|| SqlError::internal(format!("the {} plan has no {name:?} field", plan.kind)))
}

/// A string field of the plan.
pub(crate) fn str_field<'j>(plan: &'j Plan, name: &str) -> Result<&'j str, SqlError> {
    field(plan, name)?.as_str().ok_or_else(|| {
        SqlError::internal(format!("the {} plan's {name:?} field is not a string", plan.kind))
    })
}

/// A boolean field of the plan (absent is false).
pub(crate) fn bool_field(plan: &Plan, name: &str) -> bool {
    plan.detail.get(name).and_then(Json::as_bool).unwrap_or(false)
}
