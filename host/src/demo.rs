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
    /// `{exported}` is replaced by the files the demo's EXPORT wrote, as `external://` URIs.
    sql: String,
    validation: Validation,
    fails: bool,
    /// Run as this user instead of the session's.
    user: Option<&'static str>,
}

fn steps() -> Vec<Step> {
    let step = |note, sql: &str| Step {
        note,
        sql: sql.to_owned(),
        validation: Validation::Full,
        fails: false,
        user: None,
    };
    vec![
        // Leftovers of an earlier run (dropping a missing connection is not an error).
        Step {
            note: "Start clean: dropping a connection that does not exist is not an error.",
            sql: "DROP EXTERNAL CONNECTION backup_bucket; DROP EXTERNAL CONNECTION s3_archive; \
                  DROP EXTERNAL CONNECTION kafka_sink; DROP EXTERNAL CONNECTION feed_files CASCADE; \
                  DROP DATABASE IF EXISTS movr; \
                  DROP DATABASE IF EXISTS movr_copy; DROP USER IF EXISTS analyst"
                .into(),
            validation: Validation::Full,
            fails: false,
            user: None,
        },
        step(
            "A small movr database: a SQLite file under the data directory. SQL that is not about \
             connections goes straight to SQLite.",
            "CREATE DATABASE movr; USE movr; \
             CREATE TABLE users (id INTEGER PRIMARY KEY, city TEXT NOT NULL, name TEXT, credit_card TEXT); \
             CREATE TABLE rides (id INTEGER PRIMARY KEY, rider_id INTEGER REFERENCES users (id), \
                                 city TEXT, revenue REAL); \
             INSERT INTO users VALUES (1, 'new york', 'Ana Ruiz', '4111-1111'), \
                                      (2, 'boston', 'Bo Chen', NULL), \
                                      (3, 'seattle', 'Chidi \"CJ\" Okafor, Jr.', '5500-0000'); \
             INSERT INTO rides VALUES (1, 1, 'new york', 25.5), (2, 3, 'seattle', 12.25)",
        ),
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
        step(
            "Back up through the connection, as the CockroachDB docs do. SQLite keeps no history, so \
             AS OF SYSTEM TIME gets a NOTICE rather than being silently ignored.",
            "BACKUP DATABASE movr INTO 'external://backup_bucket' AS OF SYSTEM TIME '-10s' WITH revision_history",
        ),
        step("Full backups in the collection:", "SHOW BACKUPS IN 'external://backup_bucket'"),
        step(
            "Change a row, then add an incremental backup: only the changed chunk goes up.",
            "UPDATE users SET city = 'chicago' WHERE id = 2; \
             BACKUP DATABASE movr INTO LATEST IN 'external://backup_bucket'",
        ),
        step("What the chain holds:", "SHOW BACKUP LATEST IN 'external://backup_bucket'"),
        step(
            "Drop the database and restore it from the latest backup: every chunk is checked before \
             the database appears.",
            "DROP DATABASE movr; RESTORE DATABASE movr FROM LATEST IN 'external://backup_bucket'; \
             SELECT * FROM movr.users",
        ),
        step(
            "EXPORT a table as CSV through the same connection (a sub-path of it), then IMPORT it \
             into another database: quotes, commas and NULLs come back exactly.",
            "EXPORT INTO CSV 'external://backup_bucket/export' WITH nullas = '' FROM TABLE movr.users; \
             CREATE DATABASE movr_copy; USE movr_copy; \
             CREATE TABLE users (id INTEGER PRIMARY KEY, city TEXT NOT NULL, name TEXT, credit_card TEXT)",
        ),
        step(
            "",
            "IMPORT INTO users CSV DATA ({exported}) WITH nullif = ''; \
             SELECT count(*) AS differing_rows FROM \
             (SELECT * FROM users EXCEPT SELECT * FROM movr.users)",
        ),
        step(
            "Using a connection needs USAGE on it: a new user without it is refused (42501).",
            "CREATE USER analyst",
        ),
        Step {
            user: Some("analyst"),
            fails: true,
            ..step("", "SHOW BACKUPS IN 'external://backup_bucket'")
        },
        step(
            "Grant it, and the same statement works.",
            "GRANT USAGE ON EXTERNAL CONNECTION backup_bucket TO analyst",
        ),
        Step {
            note: "",
            sql: "SHOW BACKUPS IN 'external://backup_bucket'".into(),
            validation: Validation::Full,
            fails: false,
            user: None,
        },
        Step {
            note: "An S3 bucket with keys. `parse-only` validation checks every parameter without \
                   contacting S3 (the secret is shown as **** in this echo).",
            sql: format!(
                "CREATE EXTERNAL CONNECTION s3_archive AS \
                 's3://archive/movr?AWS_ACCESS_KEY_ID=AKIAEXAMPLE&AWS_SECRET_ACCESS_KEY={SECRET}&AWS_REGION=us-east-1'"
            ),
            validation: Validation::ParseOnly,
            fails: false,
            user: None,
        },
        Step {
            note: "Storage parameters are UPPERCASE; anything else is an unknown parameter.",
            sql: format!(
                "CREATE EXTERNAL CONNECTION s3_lower AS 's3://archive?aws_access_key_id=AKIAEXAMPLE&aws_secret_access_key={SECRET}'"
            ),
            validation: Validation::ParseOnly,
            fails: true,
            user: None,
        },
        Step {
            note: "A Kafka changefeed sink: its parameters are lowercase. As in CockroachDB, CREATE does \
                   not need the broker up; extconn says so when it cannot reach it.",
            sql: format!(
                "CREATE EXTERNAL CONNECTION kafka_sink AS \
                 'kafka://localhost:9092?topic_prefix=movr_&sasl_enabled=true&sasl_user=demo&sasl_password={SECRET}&sasl_mechanism=SCRAM-SHA-256'"
            ),
            validation: Validation::Full,
            fails: false,
            user: None,
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
            "A changefeed sink in cloud storage (here nodelocal): newline-delimited JSON files.",
            "CREATE EXTERNAL CONNECTION feed_files AS 'nodelocal://1/feed'",
        ),
        step(
            "A changefeed on movr.users into it. It is a job, run by `extconn start` (this demo \
             starts no node, so it waits).",
            "CREATE CHANGEFEED FOR TABLE movr.users INTO 'external://feed_files' \
             WITH key_in_value, resolved",
        ),
        Step {
            note: "A connection that a changefeed uses is not dropped from under it (CockroachDB \
                   drops it and the changefeed fails later: its issue 98611).",
            sql: "DROP EXTERNAL CONNECTION feed_files".into(),
            validation: Validation::Full,
            fails: true,
            user: None,
        },
        step(
            "CASCADE cancels the changefeed and drops the connection, in one transaction.",
            "DROP EXTERNAL CONNECTION feed_files CASCADE; SHOW CHANGEFEED JOBS",
        ),
        step(
            "Drop them: each DROP also removes every grant on the connection.",
            "DROP EXTERNAL CONNECTION backup_bucket; DROP EXTERNAL CONNECTION s3_archive; \
             DROP EXTERNAL CONNECTION kafka_sink",
        ),
        step("", "SHOW EXTERNAL CONNECTIONS"),
    ]
}

/// The CSV files the demo's EXPORT wrote, as a list of `external://` URI literals.
fn exported(host: &Host) -> std::io::Result<String> {
    let dir = host.data_dir().join("extern/backups/export");
    let mut files: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".csv"))
        .collect();
    files.sort();
    Ok(files
        .iter()
        .map(|f| format!("'external://backup_bucket/export/{f}'"))
        .collect::<Vec<_>>()
        .join(", "))
}

/// Runs the demo, printing each note, statement and result. `Ok(false)` if a step did not
/// turn out as the demo expects (it stops there).
pub fn run(host: &mut Host, session: &Session, printer: &mut Printer<'_>) -> std::io::Result<bool> {
    printer.note(&format!(
        "extconn demo — catalog and nodelocal files under {}",
        host.data_dir().display()
    ))?;
    // The CSV files of an earlier run's EXPORT would be imported twice.
    match std::fs::remove_dir_all(host.data_dir().join("extern/backups/export")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut session = session.clone();
    for step in steps() {
        if !step.note.is_empty() {
            printer.note("")?;
            printer.note(step.note)?;
        }
        let sql = if step.sql.contains("{exported}") {
            step.sql.replace("{exported}", &exported(host)?)
        } else {
            step.sql.clone()
        };
        let shown = sql.replace(SECRET, "****");
        match step.user {
            Some(user) => printer.comment(&format!("(as {user}) {shown}"))?,
            None => printer.comment(&shown)?,
        }
        let mut step_session = Session { validation: step.validation, ..session.clone() };
        if let Some(user) = step.user {
            step_session.user = user.to_owned();
        }
        let succeeded = run_script(host, &step_session, &sql, printer)?;
        session.database = host.current_database().map(str::to_owned);
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
