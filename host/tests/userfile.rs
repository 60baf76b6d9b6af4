//! `userfile://` end to end: CREATE EXTERNAL CONNECTION validates against the catalog
//! database, CHECK runs on it, and `extconn userfile upload|list|get|delete` manages files
//! like `cockroach userfile`. CLI failures print the command, directory, output and
//! expectation.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{err, host, ok, root};
use extconn_host::{Outcome, Session, Validation, Value};
use extconn_providers::storage::userfile;

const SENTINEL_TEXT: &str =
    "a CockroachDB cluster has been configured to read and write to this location";

#[test]
fn the_providers_use_the_catalog_file() {
    assert_eq!(userfile::CATALOG_FILE, extconn_host::catalog::CATALOG_FILE);
}

/// The content of `name` in `user`'s default table, read straight from the catalog database.
fn stored(data: &Path, table: &str, name: &str) -> Option<Vec<u8>> {
    let db = rusqlite::Connection::open(data.join("catalog.db")).unwrap();
    let files = format!("\"{table}_upload_files\"");
    let payload = format!("\"{table}_upload_payload\"");
    let id: i64 = db
        .query_row(&format!("SELECT file_id FROM {files} WHERE filename = ?1"), [name], |r| {
            r.get(0)
        })
        .ok()?;
    let mut select = db
        .prepare(&format!("SELECT payload FROM {payload} WHERE file_id = ?1 ORDER BY byte_offset"))
        .unwrap();
    let chunks = select.query_map([id], |r| r.get::<_, Vec<u8>>(0)).unwrap();
    Some(chunks.map(Result::unwrap).collect::<Vec<_>>().concat())
}

#[test]
fn create_writes_the_sentinel_into_the_users_table() {
    let (mut host, data) = host();
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION files AS 'userfile:///backups'");
    assert_eq!(
        stored(
            data.path(),
            "defaultdb.public.userfiles_root",
            "backups/crdb_external_storage_location"
        ),
        Some(SENTINEL_TEXT.as_bytes().to_vec())
    );
    ok(
        &mut host,
        &root(),
        "CREATE EXTERNAL CONNECTION named AS 'userfile://defaultdb.public.userfiles_root/other'",
    );
    let e = err(&mut host, &root(), "CREATE EXTERNAL CONNECTION bad AS 'userfile:///a/../b'");
    assert!(e.message.contains("userfile upload does not permit such path constructs"), "{e:?}");

    // Another user's default table is their own: alice, with USAGE on `files`, checks it in
    // hers (CockroachDB resolves the table for the user *using* the connection).
    ok(&mut host, &root(), "CREATE USER alice; GRANT USAGE ON EXTERNAL CONNECTION files TO alice");
    let alice = Session { user: "alice".into(), database: None, validation: Validation::Full };
    let results = ok(
        &mut host,
        &alice,
        "CHECK EXTERNAL CONNECTION 'external://files' WITH TRANSFER = '3 MiB'",
    );
    let Some(Ok(Outcome::Rows(rows))) = results.last().map(|r| &r.outcome) else {
        panic!("{results:?}")
    };
    assert_eq!(rows.rows[0][2], Value::Boolean(true), "{rows:?}");
    assert_eq!(rows.rows[0][4], Value::Text("3.0 MiB".into()), "{rows:?}");
    assert_eq!(rows.rows[0][7], Value::Boolean(true), "{rows:?}");
    // userfile is explicit access: a direct URI needs no EXTERNALIOIMPLICITACCESS.
    ok(&mut host, &alice, "CHECK EXTERNAL CONNECTION 'userfile:///mine' WITH TRANSFER = '1 KiB'");
    // Another user's table is refused, in the row.
    let results = ok(
        &mut host,
        &alice,
        "CHECK EXTERNAL CONNECTION 'userfile://defaultdb.public.userfiles_root/x'",
    );
    let Some(Ok(Outcome::Rows(rows))) = results.last().map(|r| &r.outcome) else {
        panic!("{results:?}")
    };
    let Value::Text(error) = &rows.rows[0][3] else { panic!("{rows:?}") };
    assert!(
        error.starts_with(
            "opening external storage: userfile://defaultdb.public.userfiles_root/x: user alice \
             may not use the userfile table defaultdb.public.userfiles_root"
        ),
        "{error}"
    );
}

/// One `extconn` run.
struct Run {
    command: String,
    output: Output,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn explain(&self, expectation: &str) -> String {
        format!(
            "\n\nCOMMAND: {}\nSTATUS: {}\nEXPECTED: {expectation}\n\nSTDOUT:\n{}\nSTDERR:\n{}\n",
            self.command,
            self.output.status,
            self.stdout(),
            String::from_utf8_lossy(&self.output.stderr),
        )
    }

    fn succeeds_with(&self, stdout: &str) {
        assert!(self.output.status.success(), "{}", self.explain("exit 0"));
        assert_eq!(self.stdout(), stdout, "{}", self.explain(&format!("stdout {stdout:?}")));
    }

    fn fails_with(&self, stderr: &str) {
        assert_eq!(self.output.status.code(), Some(1), "{}", self.explain("exit 1"));
        let got = String::from_utf8_lossy(&self.output.stderr);
        assert_eq!(got, stderr, "{}", self.explain(&format!("stderr {stderr:?}")));
    }
}

fn extconn(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_extconn"))
        .current_dir(dir)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(args)
        .env("EXTCONN_CACHE_DIR", common::cache_dir())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("extconn starts");
    let command = format!("extconn --data-dir {}/data {}", dir.display(), args.join(" "));
    Run { command, output }
}

#[test]
fn userfile_commands_work_like_cockroach_userfile() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let local: PathBuf = d.join("test-data.csv");
    std::fs::write(&local, "1,a\n2,b\n").unwrap();
    std::fs::write(d.join("other.txt"), "x").unwrap();

    extconn(d, &["userfile", "upload", "test-data.csv"]).succeeds_with(
        "successfully uploaded to userfile://defaultdb.public.userfiles_root/test-data.csv\n",
    );
    extconn(d, &["userfile", "upload", "other.txt", "dir/other.txt"]).succeeds_with(
        "successfully uploaded to userfile://defaultdb.public.userfiles_root/dir/other.txt\n",
    );
    extconn(d, &["userfile", "upload", "test-data.csv"])
        .fails_with("ERROR: destination file already exists for /test-data.csv\n");
    extconn(d, &["userfile", "upload", "test-data.csv", "a/../b"]).fails_with(
        "ERROR: failed to create userfile external connection: path /a/../b changes after \
         normalization to /b. userfile upload does not permit such path constructs\n",
    );

    extconn(d, &["userfile", "list"]).succeeds_with("dir/other.txt\ntest-data.csv\n");
    extconn(d, &["userfile", "list", "*.csv"]).succeeds_with("test-data.csv\n");
    extconn(d, &["userfile", "list", "userfile://defaultdb.public.userfiles_root/dir/*"])
        .succeeds_with("dir/other.txt\n");

    std::fs::create_dir(d.join("out")).unwrap();
    extconn(d, &["userfile", "get", "test-data.csv", "out"]).succeeds_with(&format!(
        "downloaded test-data.csv to {}\n",
        Path::new("out/test-data.csv").display()
    ));
    assert_eq!(std::fs::read_to_string(d.join("out/test-data.csv")).unwrap(), "1,a\n2,b\n");

    // The same file, through SQL: CHECK and CREATE see the table the CLI wrote.
    extconn(d, &["-e", "CREATE EXTERNAL CONNECTION f AS 'userfile:///dir'"])
        .succeeds_with("CREATE EXTERNAL CONNECTION\n");
    extconn(d, &["userfile", "list", "dir/*"])
        .succeeds_with("dir/crdb_external_storage_location\ndir/other.txt\n");

    extconn(d, &["userfile", "delete", "dir/*"]).succeeds_with(
        "successfully deleted dir/crdb_external_storage_location\nsuccessfully deleted dir/other.txt\n",
    );
    extconn(d, &["userfile", "delete", "nothing"]).fails_with("ERROR: no files match nothing\n");
    extconn(d, &["--user", "ghost", "userfile", "list"])
        .fails_with("ERROR: role/user \"ghost\" does not exist\n");
    extconn(d, &["userfile", "list"]).succeeds_with("test-data.csv\n");
}
