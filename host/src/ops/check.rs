//! CHECK EXTERNAL CONNECTION: write, read and delete test objects and report throughput.

use super::{Ctx, Plan};
use crate::model::{Outcome, SqlError};

/// Runs a `CHECK` plan.
pub(crate) fn run(_ctx: &mut Ctx<'_>, plan: Plan) -> Result<Outcome, SqlError> {
    Err(SqlError::unsupported(format!(
        "extconn does not run this statement yet: {} is not available yet",
        plan.kind
    )))
}
