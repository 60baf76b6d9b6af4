//! CHECK EXTERNAL CONNECTION: write, read and delete test objects and report throughput.
//!
//! The plan (from `plugin/src/exec/check.rs`) has one target, already resolved and allowed,
//! and `detail` = `{"concurrently": n, "transfer_bytes": n, "time_micros": n}`. The rounds run
//! in `extconn_providers::storage::check`; this module turns their reports into CockroachDB's
//! rows, one per worker. A target that cannot be reached is a row with `ok = false` and the
//! error, not a failed statement.

use std::time::Duration;

use super::{Ctx, Plan, field};
use crate::model::{Column, Outcome, Rows, SqlError, Value};
use extconn_providers::storage::check;

/// This host is node 1 of a single-node deployment.
const NODE: i64 = 1;

/// Runs a `CHECK` plan.
pub(crate) fn run(ctx: &mut Ctx<'_>, plan: Plan) -> Result<Outcome, SqlError> {
    let int = |name: &str| {
        field(&plan, name)?.as_i64().ok_or_else(|| {
            SqlError::internal(format!("the CHECK plan's {name:?} is not an integer"))
        })
    };
    let settings = check::Settings {
        concurrency: usize::try_from(int("concurrently")?).unwrap_or(1).max(1),
        transfer: u64::try_from(int("transfer_bytes")?).unwrap_or(0),
        min_duration: Duration::from_micros(u64::try_from(int("time_micros")?).unwrap_or(0)),
    };
    let [target] = plan.targets.as_slice() else {
        return Err(SqlError::internal(format!(
            "the CHECK plan names {} targets, not one",
            plan.targets.len()
        )));
    };
    let _span = tracing::debug_span!("check", target = %target.display()).entered();
    let (config, stores) = (ctx.config.clone(), ctx.stores.clone());
    // The providers' error is large (it carries object_store's); it is returned once per
    // check, so boxing it buys nothing here.
    #[allow(clippy::result_large_err)]
    let open = || stores.open(&config, target);
    let reports = ctx.tokio.block_on(check::run(open, &settings));
    let rows = reports
        .into_iter()
        .map(|r| {
            vec![
                Value::Int(NODE),
                Value::Text(String::new()),
                Value::Boolean(r.ok),
                Value::Text(r.error),
                Value::Text(check::ibytes(r.wrote_bytes)),
                Value::Text(check::data_rate(r.read_bytes, r.read_time)),
                Value::Text(check::data_rate(r.wrote_bytes, r.wrote_time)),
                Value::Boolean(r.can_delete),
            ]
        })
        .collect();
    let column = |name: &str, sql_type: &str| Column {
        name: name.to_owned(),
        sql_type: sql_type.to_owned(),
    };
    Ok(Outcome::Rows(Rows {
        columns: vec![
            column("node", "INT8"),
            column("locality", "STRING"),
            column("ok", "BOOL"),
            column("error", "STRING"),
            column("transferred", "STRING"),
            column("read_speed", "STRING"),
            column("write_speed", "STRING"),
            column("can_delete", "BOOL"),
        ],
        rows,
    }))
}
