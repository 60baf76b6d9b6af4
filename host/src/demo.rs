//! `extconn demo`: a short walk through external connections on nodelocal storage.

use crate::Host;
use crate::cli::run_script;
use crate::model::Session;
use crate::output::Printer;

/// The demo's statements, run in order.
const STATEMENTS: &[&str] = &[
    "CREATE EXTERNAL CONNECTION demo_backups AS 'nodelocal://1/demo/backups'",
    "SHOW EXTERNAL CONNECTIONS",
    "DROP EXTERNAL CONNECTION demo_backups",
];

/// Runs the demo, printing each statement before its output. `Ok(false)` if a statement
/// failed; the demo stops there.
pub fn run(host: &mut Host, session: &Session, printer: &mut Printer<'_>) -> std::io::Result<bool> {
    for sql in STATEMENTS {
        printer.comment(sql)?;
        if !run_script(host, session, sql, printer)? {
            return Ok(false);
        }
    }
    Ok(true)
}
