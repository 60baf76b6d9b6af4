//! CREATE CHANGEFEED, PAUSE/RESUME/CANCEL JOB and SHOW CHANGEFEED JOBS: the component's plans,
//! carried out on the jobs table. A changefeed is a job a node (`extconn start`) runs; creating
//! one installs change capture on its tables at once, so nothing written afterwards is missed
//! even before a node picks it up.

use serde_json::{Value as Json, json};

use super::{Ctx, Plan, current, field, str_field};
use crate::changefeed::capture;
use crate::model::{Column, ErrorKind, Outcome, Rows, SqlError, Value};
use extconn_providers as providers;

/// Runs a `CHANGEFEED` plan: returns the new job's id.
pub(crate) fn run_create(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let tables = field(plan, "tables")?.as_array().cloned().unwrap_or_default();
    let default_db = current(ctx);
    let mut database: Option<String> = None;
    let mut names = Vec::new();
    for t in &tables {
        let db = t["database"].as_str().map_or_else(|| default_db.clone(), str::to_owned);
        if database.as_ref().is_some_and(|d| *d != db) {
            return Err(SqlError::unsupported(
                "a changefeed's tables must all be in one database in this version of extconn",
            ));
        }
        database = Some(db);
        names.push(t["table"].as_str().unwrap_or_default().to_owned());
    }
    let database =
        database.ok_or_else(|| SqlError::internal("a changefeed plan without tables"))?;
    let sink_index = field(plan, "sink")?.as_u64().unwrap_or_default() as usize;
    let sink = plan
        .targets
        .get(sink_index)
        .ok_or_else(|| SqlError::internal("the changefeed plan has no sink target"))?
        .clone();
    let kind = str_field(plan, "sink_kind")?.to_owned();
    let config = ctx.config.clone();
    let options = plan.detail["options"].clone();
    // Options the sink cannot use fail the statement, not the job later.
    providers::sink::check_options(&config, &sink, &sink_options(&options))
        .map_err(|e| SqlError::new(ErrorKind::InvalidArgument, "22023", e.message()))?;
    // Like CockroachDB, the sink must be reachable now.
    ctx.tokio.block_on(providers::sink::probe(&config, &sink)).map_err(|e| {
        SqlError::new(
            ErrorKind::Unavailable,
            "58030",
            format!("cannot reach the sink: {}", e.message()),
        )
    })?;
    let scan = options["initial_scan"].as_str() != Some("no");
    let payload = json!({
        "database": database,
        "tables": names,
        "sink": target_json(&sink),
        "sink_kind": kind,
        "connection": plan.detail["connection"],
        "options": options,
    });
    let mut installed = Vec::new();
    let started = start(ctx, plan, &database, &names, &payload, scan, &mut installed);
    let id = match started {
        Ok(id) => id,
        Err(e) => {
            // Whatever this statement installed must not go on recording with no job to read
            // it (another changefeed's tables stay: the release checks).
            if !installed.is_empty() && ctx.jobs().is_ok() {
                let installed = json!({ "database": database, "tables": installed });
                let jobs = ctx.jobs.as_ref().expect("opened above");
                crate::changefeed::release(ctx.databases, jobs, &installed.to_string());
            }
            return Err(e);
        }
    };
    if !crate::node::running(&ctx.config.data_dir) {
        ctx.notices.push(
            "no extconn node is running on this data directory: the changefeed starts when one \
             does (`extconn start`); changes made until then are captured and not lost"
                .into(),
        );
    }
    Ok(Outcome::Rows(Rows {
        columns: vec![Column { name: "job_id".into(), sql_type: "INT8".into() }],
        rows: vec![vec![Value::Int(id)]],
    }))
}

/// Records the job (`pending`), then installs capture on `names` (each one also pushed to
/// `installed`), resolves the start and begins the job from there. The job comes first so that
/// a release looking at the jobs (the last other changefeed on these tables ending meanwhile)
/// sees it and keeps the capture: a release either finished before the install below, which
/// then installs afresh, or sees this job. A job recorded here is canceled on any later error.
fn start(
    ctx: &mut Ctx<'_>,
    plan: &Plan,
    database: &str,
    names: &[String],
    payload: &Json,
    scan: bool,
    installed: &mut Vec<String>,
) -> Result<i64, SqlError> {
    let user = ctx.user;
    let id = ctx.jobs()?.start_long(
        "CHANGEFEED",
        str_field(plan, "statement")?,
        user,
        &payload.to_string(),
        "{}",
        plan.detail["connection"].as_str(),
    )?;
    let begun = install_and_begin(ctx, database, names, scan, installed, id);
    if let Err(e) = &begun {
        let _ = ctx.jobs()?.set_status(id, "canceled", Some(&e.message));
    }
    begun.map(|()| id)
}

fn install_and_begin(
    ctx: &mut Ctx<'_>,
    database: &str,
    names: &[String],
    scan: bool,
    installed: &mut Vec<String>,
    id: i64,
) -> Result<(), SqlError> {
    let conn = ctx.databases.connection(database)?;
    for name in names {
        capture::install(conn, name).map_err(|e| capture_error(&e))?;
        installed.push(name.clone());
    }
    let start = capture::resolve(conn)
        .map_err(|e| SqlError::internal(format!("cannot read the change clock: {e}")))?;
    let progress = json!({
        "cursor": start.seq,
        "scan_ts_ns": start.ts.wall_ns,
        "scan": if scan { json!({ "table": 0, "after": null }) } else { Json::Null },
        "highwater_ns": start.ts.wall_ns,
    });
    if ctx.jobs()?.begin(id, &progress.to_string())? {
        return Ok(());
    }
    Err(SqlError::new(
        ErrorKind::Unavailable,
        "40001",
        format!("changefeed job {id} was canceled while it was being created"),
    ))
}

/// Runs a `JOB CONTROL` plan (PAUSE, RESUME, CANCEL JOB).
pub(crate) fn run_control(ctx: &mut Ctx<'_>, plan: &Plan) -> Result<Outcome, SqlError> {
    let id = field(plan, "id")?.as_i64().unwrap_or_default();
    let action = str_field(plan, "action")?.to_owned();
    let user = str_field(plan, "user")?.to_owned();
    let admin = plan.detail["admin"].as_bool().unwrap_or(false);
    let jobs = ctx.jobs()?;
    let Some(crate::jobs::JobInfo { job_type, status, user: owner, payload }) = jobs.get(id)?
    else {
        return Err(SqlError::new(
            ErrorKind::NotFound,
            "42704",
            format!("job with ID {id} does not exist"),
        ));
    };
    if !admin && owner != user {
        return Err(SqlError::new(
            ErrorKind::PermissionDenied,
            "42501",
            format!("user {user} does not have privileges for job {id}"),
        ));
    }
    if payload.is_none() {
        return Err(SqlError::new(
            ErrorKind::InvalidArgument,
            "55000",
            format!("job {id} ({job_type}) cannot be {}: only changefeed jobs can", past(&action)),
        ));
    }
    let next = match (action.as_str(), status.as_str()) {
        ("PAUSE", "running") => "paused",
        ("PAUSE", "paused") => return Ok(Outcome::Command("PAUSE JOB".into())),
        ("RESUME", "paused") => "running",
        ("RESUME", "running") => return Ok(Outcome::Command("RESUME JOB".into())),
        ("CANCEL", "running" | "paused" | "pending") => "canceled",
        (_, other) => {
            return Err(SqlError::new(
                ErrorKind::InvalidArgument,
                "55000",
                format!("job {id}: cannot {} a job whose status is {other}", action.to_lowercase()),
            ));
        }
    };
    if !jobs.transition(id, &status, next)? {
        return Err(SqlError::new(
            ErrorKind::Unavailable,
            "40001",
            format!("job {id} changed its status meanwhile: retry the statement"),
        ));
    }
    if let (Some(jobs), Some(payload), "canceled") = (ctx.jobs.as_ref(), &payload, next) {
        crate::changefeed::release(ctx.databases, jobs, payload);
    }
    Ok(Outcome::Command(format!("{action} JOB")))
}

fn past(action: &str) -> &'static str {
    match action {
        "PAUSE" => "paused",
        "RESUME" => "resumed",
        _ => "canceled",
    }
}

/// What a changefeed plan's normalized `options` say about its sink.
pub(crate) fn sink_options(options: &Json) -> providers::sink::SinkOptions {
    let text = |k: &str| options[k].as_str().map(str::to_owned);
    providers::sink::SinkOptions {
        kafka_sink_config: text("kafka_sink_config"),
        topic_partitions: None,
        webhook_auth_header: text("webhook_auth_header"),
        webhook_client_timeout: options["webhook_client_timeout_micros"]
            .as_u64()
            .map(std::time::Duration::from_micros),
        webhook_sink_config: text("webhook_sink_config"),
        file_size: text("file_size"),
        compression: text("compression"),
    }
}

/// A target as the job's payload keeps it (it holds secrets, as the catalog's URIs do).
pub(crate) fn target_json(t: &providers::Target) -> Json {
    json!({
        "scheme": t.scheme, "provider": t.provider, "uri": t.uri, "host": t.host,
        "path": t.path, "params": t.params, "user": t.user,
    })
}

/// The target a payload keeps.
pub(crate) fn target_from(j: &Json) -> providers::Target {
    let s = |k: &str| j[k].as_str().unwrap_or_default().to_owned();
    providers::Target {
        scheme: s("scheme"),
        provider: s("provider"),
        uri: s("uri"),
        host: s("host"),
        path: s("path"),
        params: j["params"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_str()?.to_owned(), p[1].as_str()?.to_owned())))
            .collect(),
        user: s("user"),
    }
}

pub(crate) fn capture_error(e: &capture::CaptureError) -> SqlError {
    let text = e.to_string();
    if text.contains("does not exist") || text.contains("no such table") {
        SqlError::new(ErrorKind::NotFound, "42P01", text)
    } else {
        SqlError::new(ErrorKind::InvalidArgument, "55000", crate::error_chain(e))
    }
}
