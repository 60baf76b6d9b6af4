//! `extconn` end to end: the built binary in a temporary data directory. A failing check prints
//! the command, its directory, stdout, stderr and the expectation (ripgrep's `tests/util.rs`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SENTINEL_TEXT: &str =
    "a CockroachDB cluster has been configured to read and write to this location";
const CANARY: &str = "CANARY-3f9a2c-SECRET";

/// One `extconn` run.
struct Run {
    command: String,
    dir: PathBuf,
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    fn explain(&self, expectation: &str) -> String {
        format!(
            "\n\nCOMMAND: {}\nDIR: {}\nSTATUS: {}\nEXPECTED: {expectation}\n\nSTDOUT:\n{}\nSTDERR:\n{}\n",
            self.command,
            self.dir.display(),
            self.output.status,
            self.stdout(),
            self.stderr(),
        )
    }

    /// Exit 0 with exactly this stdout.
    fn succeeds_with(&self, stdout: &str) -> &Self {
        assert!(self.output.status.success(), "{}", self.explain("exit 0"));
        assert_eq!(self.stdout(), stdout, "{}", self.explain(&format!("stdout {stdout:?}")));
        self
    }

    /// Exit 1 with exactly this stdout and stderr.
    fn fails_with(&self, stdout: &str, stderr: &str) -> &Self {
        assert_eq!(self.output.status.code(), Some(1), "{}", self.explain("exit 1"));
        assert_eq!(self.stdout(), stdout, "{}", self.explain(&format!("stdout {stdout:?}")));
        assert_eq!(self.stderr(), stderr, "{}", self.explain(&format!("stderr {stderr:?}")));
        self
    }

    fn never_shows(&self, secret: &str) -> &Self {
        assert!(!self.stdout().contains(secret), "{}", self.explain("no secret on stdout"));
        assert!(!self.stderr().contains(secret), "{}", self.explain("no secret on stderr"));
        self
    }
}

fn extconn(dir: &Path, args: &[&str]) -> Run {
    extconn_with(dir, args, None, &[])
}

fn extconn_with(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_extconn"));
    command
        .current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env("EXTCONN_CACHE_DIR", common::cache_dir())
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let shown = format!("extconn --data-dir {}/data {}", dir.display(), shell_words(args));
    let mut child = command.spawn().expect("extconn starts");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run { command: shown, dir: dir.to_owned(), output }
}

fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| if a.contains([' ', '\'', '"']) { format!("{a:?}") } else { a.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn create_prints_its_tag_as_json_and_writes_the_sentinel() {
    let dir = tempfile::tempdir().unwrap();
    extconn(
        dir.path(),
        &["--format", "json", "-e", "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo/bar'"],
    )
    .succeeds_with("{\"tag\":\"CREATE EXTERNAL CONNECTION\"}\n");
    let sentinel = dir.path().join("data/extern/foo/bar/crdb_external_storage_location");
    assert_eq!(std::fs::read_to_string(sentinel).unwrap(), SENTINEL_TEXT);
}

#[test]
fn show_prints_a_table_like_cockroach_sql() {
    let dir = tempfile::tempdir().unwrap();
    extconn(
        dir.path(),
        &[
            "-e",
            "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo/bar'",
            "-e",
            "SHOW EXTERNAL CONNECTIONS",
        ],
    )
    .succeeds_with(
        "CREATE EXTERNAL CONNECTION\n\
         \x20 connection_name |    connection_uri     | connection_type\n\
         ------------------+-----------------------+------------------\n\
         \x20 foo             | nodelocal://1/foo/bar | STORAGE\n\
         (1 row)\n",
    );
    extconn(dir.path(), &["--format", "json", "-e", "SHOW EXTERNAL CONNECTIONS"]).succeeds_with(
        "{\"columns\":[\"connection_name\",\"connection_uri\",\"connection_type\"],\
         \"rows\":[[\"foo\",\"nodelocal://1/foo/bar\",\"STORAGE\"]]}\n",
    );
}

#[test]
fn the_first_failing_statement_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let create = "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo'";
    extconn(
        dir.path(),
        &[
            "-e",
            create,
            "-e",
            create,
            "-e",
            "CREATE EXTERNAL CONNECTION never AS 'nodelocal://1/x'",
        ],
    )
    .fails_with(
        "CREATE EXTERNAL CONNECTION\n",
        "ERROR: failed to create external connection: external connection with connection \
             name 'foo' already exists\nSQLSTATE: 42710\n",
    );
    extconn(
        dir.path(),
        &["--format", "json", "-e", &format!("{create}; SHOW EXTERNAL CONNECTIONS")],
    )
    .fails_with(
        "{\"error\":{\"sqlstate\":\"42710\",\"message\":\"failed to create external connection: \
             external connection with connection name 'foo' already exists\"}}\n",
        "",
    );
    extconn(dir.path(), &["--format", "json", "-e", "SHOW EXTERNAL CONNECTIONS"]).succeeds_with(
        "{\"columns\":[\"connection_name\",\"connection_uri\",\"connection_type\"],\
         \"rows\":[[\"foo\",\"nodelocal://1/foo\",\"STORAGE\"]]}\n",
    );
}

#[test]
fn piped_stdin_is_one_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = "CREATE EXTERNAL CONNECTION a AS 'nodelocal://1/a';\n\
                  CREATE EXTERNAL CONNECTION b\n  AS 'nodelocal://self/b';\n\
                  DROP EXTERNAL CONNECTION a;\n";
    extconn_with(dir.path(), &["--format", "json"], Some(script), &[]).succeeds_with(
        "{\"tag\":\"CREATE EXTERNAL CONNECTION\"}\n\
         {\"tag\":\"CREATE EXTERNAL CONNECTION\"}\n\
         {\"tag\":\"DROP EXTERNAL CONNECTION\"}\n",
    );
}

#[test]
fn database_sql_runs_in_sqlite_and_use_carries_across_scripts() {
    let dir = tempfile::tempdir().unwrap();
    extconn(
        dir.path(),
        &[
            "--format",
            "json",
            "-e",
            "CREATE DATABASE movr; USE movr; CREATE TABLE t (a INT, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, NULL)",
            "-e",
            "SELECT a, b FROM t ORDER BY a",
        ],
    )
    .succeeds_with(
        "{\"tag\":\"CREATE DATABASE\"}\n{\"tag\":\"SET\"}\n{\"tag\":\"CREATE TABLE\"}\n{\"tag\":\"INSERT 0 2\"}\n\
         {\"columns\":[\"a\",\"b\"],\"rows\":[[1,\"x\"],[2,null]]}\n",
    );
    assert!(dir.path().join("data/databases/movr.sqlite").is_file());
    extconn(dir.path(), &["--database", "movr", "-e", "SELECT * FROM nope"])
        .fails_with("", "ERROR: relation \"nope\" does not exist\nSQLSTATE: 42P01\n");
    extconn(dir.path(), &["-e", "USE nope"])
        .fails_with("", "ERROR: database \"nope\" does not exist\nSQLSTATE: 3D000\n");
}

#[test]
fn secrets_never_reach_output_or_logs() {
    let dir = tempfile::tempdir().unwrap();
    // Cloud targets go to a loopback port nothing listens on: no test reaches a real cloud.
    let debug = [
        ("RUST_LOG", "trace"),
        ("EXTCONN_GCS_ENDPOINT", "http://127.0.0.1:9"),
        ("EXTCONN_AZURE_BLOB_ENDPOINT", "http://127.0.0.1:9"),
    ];
    // One URI per way a secret can be given; every one carries the canary.
    let uris = [
        format!(
            "s3://bucket/p?AWS_ACCESS_KEY_ID=id&AWS_SECRET_ACCESS_KEY={CANARY}&AWS_SESSION_TOKEN=t{CANARY}\
             &AWS_ENDPOINT=http://127.0.0.1:9&AWS_USE_PATH_STYLE=true"
        ),
        format!("gs://bucket/p?AUTH=specified&BEARER_TOKEN={CANARY}"),
        format!("kafka://localhost:9092?sasl_enabled=true&sasl_user=u&sasl_password={CANARY}"),
        format!("aws-kms:///{CANARY}?AUTH=implicit&REGION=us-east-1"),
        format!("postgresql://user:{CANARY}@localhost:26257/db?sslmode=disable"),
        // Refused URIs: the error must not echo the secret either.
        format!("s3://bucket?AWS_SECRET_ACCESS_KEY={CANARY}%zz"),
        format!("s3://bucket?AWS_SECRET_ACCESS_KEY={CANARY}&BOGUS=1"),
        format!("nodelocal:///p?AWS_SECRET_ACCESS_KEY={CANARY}"),
    ];
    for (i, uri) in uris.iter().enumerate() {
        let create = format!("CREATE EXTERNAL CONNECTION c{i} AS '{uri}'");
        // Full validation: cloud targets fail in the host, the error goes through the component.
        extconn_with(dir.path(), &["-e", &create], None, &debug).never_shows(CANARY);
        for format in ["table", "json"] {
            extconn_with(
                dir.path(),
                &[
                    "--validation",
                    "parse-only",
                    "--format",
                    format,
                    "-e",
                    &create,
                    "-e",
                    "SHOW EXTERNAL CONNECTIONS; SHOW CREATE ALL EXTERNAL CONNECTIONS",
                ],
                None,
                &debug,
            )
            .never_shows(CANARY);
        }
    }
    // Syntax errors show the statement, but never a URI's or a password's value.
    for broken in [
        format!("CREATE EXTERNAL CONNECTION broken '{}'", uris[0]),
        format!("ALTER EXTERNAL CONNECTION c0 AS '{}' extra", uris[0]),
        format!("CREATE USER u WITH PASSWORD '{CANARY}' NONSENSE"),
    ] {
        let run = extconn_with(dir.path(), &["-e", &broken], None, &debug);
        assert!(run.stderr().contains("syntax error"), "{}", run.explain("a syntax error"));
        run.never_shows(CANARY);
    }
    let run = extconn(dir.path(), &["-e", "SHOW EXTERNAL CONNECTION c0"]);
    assert!(
        run.stdout().contains("AWS_SECRET_ACCESS_KEY=redacted"),
        "{}",
        run.explain("the redacted URI")
    );
}

#[test]
fn component_writes_the_embedded_component() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("extconn.wasm");
    extconn(dir.path(), &["component", "--out", out.to_str().unwrap()]).succeeds_with("");
    let bytes = std::fs::read(&out).unwrap();
    // `\0asm`, then the component-model layer (version 0x0d, layer 1).
    assert_eq!(&bytes[..8], b"\0asm\x0d\x00\x01\x00");
    // And that file runs as `--plugin`.
    extconn(
        dir.path(),
        &["--plugin", out.to_str().unwrap(), "--format", "json", "-e", "SHOW EXTERNAL CONNECTIONS"],
    )
    .succeeds_with(
        "{\"columns\":[\"connection_name\",\"connection_uri\",\"connection_type\"],\"rows\":[]}\n",
    );
}

#[test]
fn a_missing_plugin_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = extconn(dir.path(), &["--plugin", "nope.wasm", "-e", "SHOW EXTERNAL CONNECTIONS"]);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.explain("exit 1"));
    assert!(
        run.stderr().starts_with("ERROR: cannot read the component nope.wasm: "),
        "{}",
        run.explain("a read error")
    );
}

#[test]
fn the_compiled_component_is_cached_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let env = [("EXTCONN_CACHE_DIR", cache.to_str().unwrap())];
    let show = ["--format", "json", "-e", "SHOW EXTERNAL CONNECTIONS"];
    let empty =
        "{\"columns\":[\"connection_name\",\"connection_uri\",\"connection_type\"],\"rows\":[]}\n";
    extconn_with(dir.path(), &show, None, &env).succeeds_with(empty);
    let files: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let run = extconn_with(dir.path(), &show, None, &[env[0], ("RUST_LOG", "extconn_host=debug")]);
    run.succeeds_with(empty);
    assert!(run.stderr().contains("cache_status=Hit"), "{}", run.explain("a cache hit logged"));
    assert_eq!(std::fs::metadata(&files[0]).unwrap().modified().unwrap(), written);
}

#[test]
fn the_demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = extconn(dir.path(), &["demo"]);
    assert!(run.output.status.success(), "{}", run.explain("exit 0"));
    let stdout = run.stdout();
    for expected in [
        "> CREATE EXTERNAL CONNECTION backup_bucket AS 'nodelocal://1/backups'\nCREATE EXTERNAL CONNECTION\n",
        "crdb_external_storage_location holds: a CockroachDB cluster has been configured to read and write to this location\n",
        "  s3_archive      | s3://archive/movr?AWS_ACCESS_KEY_ID=AKIAEXAMPLE&AWS_REGION=us-east-1&AWS_SECRET_ACCESS_KEY=redacted",
        "> SHOW EXTERNAL CONNECTIONS\n",
        "(0 rows)\n",
    ] {
        assert!(stdout.contains(expected), "{}", run.explain(expected));
    }
    let stderr = run.stderr();
    assert!(
        stderr.contains("unknown S3 query parameters: aws_access_key_id, aws_secret_access_key"),
        "{}",
        run.explain("the lowercase error")
    );
    let both = format!("{stdout}{stderr}");
    for expected in [
        "cannot drop external connection \"feed_files\" because jobs use it: ",
        "SQLSTATE: 2BP01",
        "canceled 1 job(s) that used it: ",
    ] {
        assert!(both.contains(expected), "{}", run.explain(expected));
    }
    assert!(
        !stdout.contains("demo-secret") && !stderr.contains("demo-secret"),
        "{}",
        run.explain("no secret")
    );
    // A second run starts clean and succeeds again.
    let again = extconn(dir.path(), &["demo"]);
    assert!(again.output.status.success(), "{}", again.explain("exit 0 on a second run"));
}
