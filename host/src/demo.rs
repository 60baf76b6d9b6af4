//! `extconn demo`: the main job on the embedded default — a SQLite catalog and `nodelocal`
//! storage under the data directory — narrated step by step.

use crate::Host;
use crate::cli::run_script;
use crate::model::{Session, Validation};
use crate::output::Printer;

/// A stand-in secret: the demo shows that it never comes back out.
const SECRET: &str = "wJalrXUtnFEMI-demo-secret";

/// One step: what it shows, the statement, and whether it is meant to fail.
struct Step {
    note: &'static str,
    sql: String,
    validation: Validation,
    fails: bool,
}

fn steps() -> Vec<Step> {
    let step = |note, sql: &str| Step {
        note,
        sql: sql.to_owned(),
        validation: Validation::Full,
        fails: false,
    };
    vec![
        // Leftovers of an earlier run (dropping a missing connection is not an error).
        Step {
            note: "Start clean: dropping a connection that does not exist is not an error.",
            sql: "DROP EXTERNAL CONNECTION backup_bucket; DROP EXTERNAL CONNECTION s3_archive; \
                  DROP EXTERNAL CONNECTION kafka_sink"
                .into(),
            validation: Validation::Full,
            fails: false,
        },
        step(
            "Name a storage location once. CREATE checks the URI and validates the target: it writes, \
             lists and reads back a crdb_external_storage_location file.",
            "CREATE EXTERNAL CONNECTION backup_bucket AS 'nodelocal://1/backups'",
        ),
        Step {
            fails: true,
            ..step(
                "The name is taken now (42710).",
                "CREATE EXTERNAL CONNECTION backup_bucket AS 'nodelocal://1/other'",
            )
        },
        step(
            "IF NOT EXISTS leaves an existing connection alone, without touching its target.",
            "CREATE EXTERNAL CONNECTION IF NOT EXISTS backup_bucket AS 'nodelocal://1/other'",
        ),
        Step {
            note: "An S3 bucket with keys. `parse-only` validation checks every parameter without \
                   contacting S3 (the secret is shown as **** in this echo).",
            sql: format!(
                "CREATE EXTERNAL CONNECTION s3_archive AS \
                 's3://archive/movr?AWS_ACCESS_KEY_ID=AKIAEXAMPLE&AWS_SECRET_ACCESS_KEY={SECRET}&AWS_REGION=us-east-1'"
            ),
            validation: Validation::ParseOnly,
            fails: false,
        },
        Step {
            note: "Storage parameters are UPPERCASE; anything else is an unknown parameter.",
            sql: format!(
                "CREATE EXTERNAL CONNECTION s3_lower AS 's3://archive?aws_access_key_id=AKIAEXAMPLE&aws_secret_access_key={SECRET}'"
            ),
            validation: Validation::ParseOnly,
            fails: true,
        },
        Step {
            note: "A Kafka changefeed sink: its parameters are lowercase; no broker is contacted, as in CockroachDB.",
            sql: format!(
                "CREATE EXTERNAL CONNECTION kafka_sink AS \
                 'kafka://localhost:9092?topic_prefix=movr_&sasl_enabled=true&sasl_user=demo&sasl_password={SECRET}&sasl_mechanism=SCRAM-SHA-256'"
            ),
            validation: Validation::Full,
            fails: false,
        },
        step(
            "Every connection, with secrets redacted and query keys sorted.",
            "SHOW EXTERNAL CONNECTIONS",
        ),
        step(
            "SHOW CREATE redacts secrets too (CockroachDB prints them; see docs/compat.md).",
            "SHOW CREATE ALL EXTERNAL CONNECTIONS",
        ),
        step(
            "Point the name somewhere else; ALTER validates the new target the same way.",
            "ALTER EXTERNAL CONNECTION backup_bucket AS 'nodelocal://self/backups-v2'",
        ),
        step("", "SHOW EXTERNAL CONNECTION backup_bucket"),
        step(
            "Drop them: each DROP also removes every grant on the connection.",
            "DROP EXTERNAL CONNECTION backup_bucket; DROP EXTERNAL CONNECTION s3_archive; \
             DROP EXTERNAL CONNECTION kafka_sink",
        ),
        step("", "SHOW EXTERNAL CONNECTIONS"),
    ]
}

/// Runs the demo, printing each note, statement and result. `Ok(false)` if a step did not
/// turn out as the demo expects (it stops there).
pub fn run(host: &mut Host, session: &Session, printer: &mut Printer<'_>) -> std::io::Result<bool> {
    printer.note(&format!(
        "extconn demo — catalog and nodelocal files under {}",
        host.data_dir().display()
    ))?;
    for step in steps() {
        if !step.note.is_empty() {
            printer.note("")?;
            printer.note(step.note)?;
        }
        printer.comment(&step.sql.replace(SECRET, "****"))?;
        let session = Session { validation: step.validation, ..session.clone() };
        let succeeded = run_script(host, &session, &step.sql, printer)?;
        if succeeded == step.fails {
            return Ok(false);
        }
        if !step.fails && step.sql.starts_with("CREATE EXTERNAL CONNECTION backup_bucket") {
            let sentinel = host.data_dir().join("extern/backups/crdb_external_storage_location");
            let content = std::fs::read_to_string(&sentinel)?;
            printer.note(&format!("{} holds: {content}", sentinel.display()))?;
        }
    }
    Ok(true)
}
