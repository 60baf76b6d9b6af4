//! IMPORT INTO / EXPORT INTO CSV against real storage: nodelocal in a temporary directory, and
//! S3 on moto (from `eval "$(scripts/services start)"`).

mod emulators;

use extconn_providers::csvio::{
    self, Compression, Decompress, Error, ExportOptions, ExportSource, ImportOptions,
    ImportSummary, Progress, RowProblem, Source,
};
use extconn_providers::storage::{self, Location};
use extconn_providers::{Config, Target};
use rusqlite::Connection;
use rusqlite::types::Value;

const SCHEMA: &str = "CREATE TABLE t (
    id INTEGER PRIMARY KEY,
    name TEXT,
    note VARCHAR(200),
    n INTEGER,
    x REAL,
    b BLOB
)";

/// Every value that must survive EXPORT then IMPORT, NULLs included.
const ROWS: &str = "INSERT INTO t VALUES
    (1, 'plain', 'a,b', 42, 1.5, x'00ff10'),
    (2, NULL, '', NULL, NULL, NULL),
    (3, '', 'say \"hi\"', -9223372036854775808, 0.1, x''),
    (4, 'line1' || char(10) || 'line2', 'crlf' || char(13) || char(10) || 'end', 9223372036854775807, 1e300, NULL),
    (5, '  padded  ', 'tab' || char(9) || 'sep|pipe', 0, -2.5e-300, x'22'),
    (6, 'ünïcødé 日本語 🎉', '\"', 7, 1e308 * 10, NULL),
    (7, 'NULL', '\\N', 8, -1e308 * 10, NULL),
    (8, '\"\"', ',', 9, 123456789.123456789, NULL),
    (9, 'cr' || char(13) || 'only', '#not a comment', 10, -0.0, NULL)";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

fn nodelocal(dir: &tempfile::TempDir, path: &str) -> Location {
    let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    storage::open(&config, &Target::new("nodelocal", "1", path)).unwrap()
}

fn db(schema: &str) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(schema).unwrap();
    conn
}

fn dump(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut statement = conn.prepare(sql).unwrap();
    let columns = statement.column_count();
    statement
        .query_map([], |row| (0..columns).map(|i| row.get::<_, Value>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
}

fn source(location: &Location, key: &str, display: &str) -> Source {
    Source { location: location.clone(), key: key.to_owned(), display: display.to_owned() }
}

fn no_progress() -> impl FnMut(Progress) + Send {
    |_| {}
}

async fn import(
    conn: &mut Connection,
    table: &str,
    columns: Option<&[String]>,
    sources: &[Source],
    options: &ImportOptions,
) -> Result<ImportSummary, Error> {
    csvio::import_csv(conn, table, columns, sources, options, &mut no_progress()).await
}

async fn export(
    conn: &Connection,
    source: ExportSource<'_>,
    location: &Location,
    options: &ExportOptions,
) -> Result<Vec<csvio::ExportedFile>, Error> {
    csvio::export_csv(conn, source, location, options, &mut |_| {}).await
}

/// The bad-row error inside `err`, or a failure that shows what came instead.
fn row_error(err: &Error) -> &csvio::RowError {
    match err {
        Error::BadRow(row) => row,
        other => panic!("expected a bad row, got {other:?}: {}", other.message()),
    }
}

/// EXPORT with `options` then IMPORT with the matching options gives back every value, typed.
async fn round_trip(
    location: &Location,
    export_options: &ExportOptions,
) -> Vec<csvio::ExportedFile> {
    let source_db = db(&format!("{SCHEMA}; {ROWS}"));
    let files =
        export(&source_db, ExportSource::Table("t"), location, export_options).await.unwrap();
    assert!(!files.is_empty());
    let mut target = db(SCHEMA);
    let import_options = ImportOptions {
        delimiter: export_options.delimiter,
        nullif: export_options.nullas.clone(),
        ..ImportOptions::default()
    };
    let sources: Vec<Source> =
        files.iter().map(|f| source(location, &f.filename, &f.filename)).collect();
    let summary = import(&mut target, "t", None, &sources, &import_options).await.unwrap();
    assert_eq!(summary.rows, 9, "{export_options:?}");
    assert_eq!(summary.bytes, files.iter().map(|f| f.bytes).sum::<u64>());
    let typed = "SELECT id, name, typeof(name), note, typeof(note), n, typeof(n), x, typeof(x), \
                 b, typeof(b) FROM t ORDER BY id";
    assert_eq!(dump(&target, typed), dump(&source_db, typed), "{export_options:?}");
    files
}

#[test]
fn export_then_import_round_trips_every_value_on_nodelocal() {
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<(char, Option<&str>, Compression)> = vec![
        (',', Some(""), Compression::None),
        ('|', Some("NULL"), Compression::None),
        ('\t', Some("\\N"), Compression::None),
        ('→', Some(""), Compression::None),
        (',', Some(""), Compression::Gzip),
    ];
    for (i, (delimiter, nullas, compression)) in rows.into_iter().enumerate() {
        let location = nodelocal(&dir, &format!("export/{i}"));
        let options = ExportOptions {
            delimiter,
            nullas: nullas.map(str::to_owned),
            compression,
            ..ExportOptions::default()
        };
        let files = rt().block_on(round_trip(&location, &options));
        assert_eq!(files.len(), 1);
        let name = &files[0].filename;
        let extension = if compression == Compression::Gzip { ".csv.gz" } else { ".csv" };
        let id =
            name.strip_prefix("export").and_then(|r| r.strip_suffix(&format!("-n1.0{extension}")));
        assert!(
            id.is_some_and(|id| id.len() == 32 && id.bytes().all(|c| c.is_ascii_hexdigit())),
            "{name}"
        );
        let on_disk =
            std::fs::metadata(dir.path().join(format!("extern/export/{i}/{name}"))).unwrap();
        assert_eq!(on_disk.len(), files[0].bytes);
    }
}

#[test]
fn exported_csv_is_what_cockroachdb_would_read() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "look");
    let conn = db(&format!("{SCHEMA}; {ROWS}"));
    let options = ExportOptions { nullas: Some(String::new()), ..ExportOptions::default() };
    let files = rt()
        .block_on(export(
            &conn,
            ExportSource::Query("SELECT * FROM t WHERE id <= 5 ORDER BY id"),
            &location,
            &options,
        ))
        .unwrap();
    let text = String::from_utf8(rt().block_on(location.get(&files[0].filename)).unwrap()).unwrap();
    let want = "1,plain,\"a,b\",42,1.5,\\x00ff10\n\
                2,,\"\",,,\n\
                3,\"\",\"say \"\"hi\"\"\",-9223372036854775808,0.1,\\x\n\
                4,\"line1\nline2\",\"crlf\r\nend\",9223372036854775807,1e300,\n\
                5,\"  padded  \",tab\tsep|pipe,0,-2.5e-300,\\x22\n";
    assert_eq!(text, want);
    assert_eq!(files[0].rows, 5);
}

#[test]
fn export_then_import_round_trips_on_s3_in_chunks() {
    let target = emulators::s3("extconn-test", &emulators::unique("csvio"));
    let secret = emulators::env("EXTCONN_TEST_S3_SECRET_ACCESS_KEY");
    let location = storage::open(&Config::default(), &target).unwrap();
    let options =
        ExportOptions { nullas: Some(String::new()), chunk_rows: 4, ..ExportOptions::default() };
    let files = rt().block_on(round_trip(&location, &options));
    let rows: Vec<u64> = files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, [4, 4, 1]);
    let chunks: Vec<&str> =
        files.iter().map(|f| f.filename.rsplit_once("-n1.").unwrap().1).collect();
    assert_eq!(chunks, ["0.csv", "1.csv", "2.csv"]);

    // A missing file fails before anything is read, and the message holds no secret.
    let mut conn = db(SCHEMA);
    let err = rt()
        .block_on(import(
            &mut conn,
            "t",
            None,
            &[source(&location, "nope.csv", "s3://x/nope.csv")],
            &ImportOptions::default(),
        ))
        .unwrap_err();
    assert_eq!(err.sqlstate(), "58P01", "{}", err.message());
    assert!(!err.message().contains(&secret), "{}", err.message());
    assert!(!format!("{err:?}").contains(&secret));
}

#[test]
fn chunk_rows_and_chunk_size_split_files_and_all_import_back() {
    let dir = tempfile::tempdir().unwrap();
    let conn = db("CREATE TABLE big (id INTEGER, pad TEXT); \
                   WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 25) \
                   INSERT INTO big SELECT i, printf('%.100c', 'x') FROM s");
    let rows: Vec<(ExportOptions, Vec<u64>)> = vec![
        (ExportOptions { chunk_rows: 10, ..ExportOptions::default() }, vec![10, 10, 5]),
        (ExportOptions { chunk_rows: 25, ..ExportOptions::default() }, vec![25]),
        // Checked before each row: a file is closed once it holds 500 bytes or more.
        (ExportOptions { chunk_size: 500, ..ExportOptions::default() }, vec![5, 5, 5, 5, 5]),
    ];
    for (i, (options, want)) in rows.into_iter().enumerate() {
        let location = nodelocal(&dir, &format!("chunks/{i}"));
        let mut seen = Vec::new();
        let files = rt()
            .block_on(csvio::export_csv(
                &conn,
                ExportSource::Table("big"),
                &location,
                &options,
                &mut |p| seen.push(p),
            ))
            .unwrap();
        assert_eq!(files.iter().map(|f| f.rows).collect::<Vec<_>>(), want, "{options:?}");
        assert_eq!(seen.last().map(|p| (p.rows, p.files_done)), Some((25, want.len())));
        let listed = rt().block_on(location.list("", None)).unwrap();
        assert_eq!(listed.len(), want.len());

        let mut back = db("CREATE TABLE big (id INTEGER, pad TEXT)");
        let sources: Vec<Source> =
            listed.iter().map(|m| source(&location, &m.key, &m.key)).collect();
        let mut progress = Vec::new();
        let summary = rt()
            .block_on(csvio::import_csv(
                &mut back,
                "big",
                None,
                &sources,
                &ImportOptions::default(),
                &mut |p| progress.push(p),
            ))
            .unwrap();
        assert_eq!(summary.rows, 25);
        assert_eq!(summary.files, want.len());
        let last = progress.last().unwrap();
        assert_eq!(
            (last.bytes_done, last.bytes_total, last.files_done),
            (summary.bytes, Some(summary.bytes), want.len())
        );
        assert_eq!(
            dump(&back, "SELECT * FROM big ORDER BY id"),
            dump(&conn, "SELECT * FROM big ORDER BY id")
        );
    }
}

#[test]
fn a_bad_row_imports_nothing_and_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "import");
    let good = "1,ann,30\n2,\"bob\nthe\r\nbuilder\",40\n";
    // Row 2 spans lines 3-5 and a blank line (not a row) comes before it: row 3 is line 6.
    let bad = "3,cat,1\n\n4,\"multi\nline\n\",2\n5,dan,abc\n6,eve,7\n";
    let rt = rt();
    rt.block_on(location.put("good.csv", good.as_bytes().to_vec())).unwrap();
    rt.block_on(location.put("bad.csv", bad.as_bytes().to_vec())).unwrap();
    rt.block_on(location.put("header.csv", format!("id,name,age\n{bad}").into_bytes())).unwrap();
    let sources = [
        source(&location, "good.csv", "nodelocal://1/import/good.csv"),
        source(&location, "bad.csv", "nodelocal://1/import/bad.csv"),
    ];
    let mut conn = db("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INT NOT NULL); \
                       INSERT INTO users VALUES (100, 'existing', 1)");
    let err = rt
        .block_on(import(&mut conn, "users", None, &sources, &ImportOptions::default()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error parsing row 3: could not parse \"abc\" as type INT \
         (file nodelocal://1/import/bad.csv, line 6, field 3, column \"age\")"
    );
    assert_eq!(err.sqlstate(), "22P02");
    let row = row_error(&err);
    assert_eq!((row.row, row.line, row.field, row.column.as_deref()), (3, 6, Some(3), Some("age")));
    assert_eq!(dump(&conn, "SELECT id FROM users"), vec![vec![Value::Integer(100)]]);

    // A skipped header is a row, and a line, as in CockroachDB.
    let options = ImportOptions { skip: 1, ..ImportOptions::default() };
    let header = [source(&location, "header.csv", "nodelocal://1/import/header.csv")];
    let err = rt.block_on(import(&mut conn, "users", None, &header, &options)).unwrap_err();
    assert_eq!((row_error(&err).row, row_error(&err).line), (4, 7));
    assert_eq!(count(&conn, "users"), 1);

    // The connection is usable, outside any transaction, after the failure.
    assert!(conn.is_autocommit());
    let summary = rt
        .block_on(import(&mut conn, "users", None, &sources[..1], &ImportOptions::default()))
        .unwrap();
    assert_eq!(summary.rows, 2);
    assert_eq!(
        dump(&conn, "SELECT name FROM users WHERE id = 2"),
        vec![vec![Value::Text("bob\nthe\r\nbuilder".into())]]
    );
}

#[test]
fn bad_rows_of_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "bad");
    let schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL, b BLOB, s TEXT NOT NULL CHECK (s <> 'no'))";
    let rows: Vec<(&str, ImportOptions, &str, &str)> = vec![
        (
            "1,1.5,,a\n2,1.5\n",
            ImportOptions::default(),
            "error parsing row 2: expected 4 fields, got 2 (file f.csv, line 2)",
            "22P04",
        ),
        (
            "1,1.5,,a,x\n",
            ImportOptions::default(),
            "error parsing row 1: expected 4 fields, got 5 (file f.csv, line 1)",
            "22P04",
        ),
        (
            "1,NaN,,a\n",
            ImportOptions::default(),
            "error parsing row 1: could not parse \"NaN\" as type REAL (file f.csv, line 1, field 2, column \"x\")",
            "22P02",
        ),
        (
            "1,,\\xzz,a\n",
            ImportOptions::default(),
            "error parsing row 1: could not parse \"\\\\xzz\" as type BLOB (file f.csv, line 1, field 3, column \"b\")",
            "22P02",
        ),
        (
            "1,,,\n",
            ImportOptions::default(),
            "error parsing row 1: null value violates not-null constraint (file f.csv, line 1, field 4, column \"s\")",
            "23502",
        ),
        (
            "1,,,a\n1,,,b\n",
            ImportOptions::default(),
            "error parsing row 2: UNIQUE constraint failed: t.id (file f.csv, line 2, field 1, column \"id\")",
            "23505",
        ),
        (
            "1,,,no\n",
            ImportOptions::default(),
            "error parsing row 1: CHECK constraint failed: s <> 'no' (file f.csv, line 1)",
            "23514",
        ),
        (
            "1,,,\"a\"b\"\n",
            ImportOptions { strict_quotes: true, ..ImportOptions::default() },
            "error parsing row 1: extraneous or missing \" in quoted-field (file f.csv, line 1, field 4, column \"s\")",
            "22P04",
        ),
        (
            "1,,,a\"b\n",
            ImportOptions { strict_quotes: true, ..ImportOptions::default() },
            "error parsing row 1: bare \" in non-quoted-field (file f.csv, line 1, field 4, column \"s\")",
            "22P04",
        ),
    ];
    let rt = rt();
    for (csv, options, message, sqlstate) in rows {
        rt.block_on(location.put("f.csv", csv.as_bytes().to_vec())).unwrap();
        let mut conn = db(schema);
        let err = rt
            .block_on(import(
                &mut conn,
                "t",
                None,
                &[source(&location, "f.csv", "f.csv")],
                &options,
            ))
            .unwrap_err();
        assert_eq!(err.to_string(), message, "input {csv:?}");
        assert_eq!(err.sqlstate(), sqlstate, "input {csv:?}");
        assert_eq!(count(&conn, "t"), 0, "input {csv:?}");
    }
    // Invalid UTF-8 is a bad row too.
    rt.block_on(location.put("f.csv", b"1,,,\xff\n".to_vec())).unwrap();
    let mut conn = db(schema);
    let err = rt
        .block_on(import(
            &mut conn,
            "t",
            None,
            &[source(&location, "f.csv", "f.csv")],
            &ImportOptions::default(),
        ))
        .unwrap_err();
    assert_eq!(row_error(&err).problem, RowProblem::InvalidUtf8);
}

#[test]
fn skip_comment_delimiter_nullif_row_limit() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "opts");
    let csv =
        "id;name;score\n# a comment; with a delimiter\n1;N/A;2.5\n2;\"N/A\";\n\n3;;N/A;\n4;x;1\n";
    let rt = rt();
    rt.block_on(location.put("o.csv", csv.as_bytes().to_vec())).unwrap();
    let src = [source(&location, "o.csv", "o.csv")];
    let schema = "CREATE TABLE t (id INTEGER, name TEXT, score REAL)";
    let base = ImportOptions {
        delimiter: ';',
        comment: Some('#'),
        skip: 1,
        nullif: Some("N/A".into()),
        ..ImportOptions::default()
    };
    let rows: Vec<(ImportOptions, Vec<Vec<Value>>)> = vec![
        // Unquoted N/A is NULL.
        (
            ImportOptions { row_limit: Some(1), ..base.clone() },
            vec![vec![Value::Integer(1), Value::Null, Value::Real(2.5)]],
        ),
        // Default nullif (an empty field): N/A is text, quoted or not.
        (
            ImportOptions {
                nullif: None,
                allow_quoted_null: true,
                row_limit: Some(2),
                ..base.clone()
            },
            vec![
                vec![Value::Integer(1), Value::Text("N/A".into()), Value::Real(2.5)],
                vec![Value::Integer(2), Value::Text("N/A".into()), Value::Null],
            ],
        ),
    ];
    for (options, want) in rows {
        let mut conn = db(schema);
        let summary = rt.block_on(import(&mut conn, "t", None, &src, &options)).unwrap();
        assert_eq!(summary.rows as usize, want.len(), "{options:?}");
        assert_eq!(dump(&conn, "SELECT * FROM t ORDER BY id"), want, "{options:?}");
    }

    // All rows, nullif = 'N/A': the quoted "N/A" is text, the empty REAL field is an error.
    let mut conn = db(schema);
    let err = rt.block_on(import(&mut conn, "t", None, &src, &base)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "error parsing row 3: could not parse \"\" as type REAL (file o.csv, line 4, field 3, column \"score\")"
    );
    // Fix the file: every other row then goes in, comments and the blank line skipped.
    let fixed = csv.replace("2;\"N/A\";\n", "2;\"N/A\";N/A\n");
    rt.block_on(location.put("o.csv", fixed.into_bytes())).unwrap();
    rt.block_on(import(&mut conn, "t", None, &src, &base)).unwrap();
    assert_eq!(
        dump(&conn, "SELECT * FROM t ORDER BY id"),
        vec![
            vec![Value::Integer(1), Value::Null, Value::Real(2.5)],
            vec![Value::Integer(2), Value::Text("N/A".into()), Value::Null],
            vec![Value::Integer(3), Value::Text(String::new()), Value::Null],
            vec![Value::Integer(4), Value::Text("x".into()), Value::Real(1.0)],
        ]
    );
}

#[test]
fn default_nullif_is_an_unquoted_empty_field() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "nulls");
    let rt = rt();
    rt.block_on(location.put("n.csv", b"1,,\"\"\n2,\"\",\n".to_vec())).unwrap();
    let mut conn = db("CREATE TABLE t (id INTEGER, a TEXT, b TEXT)");
    let src = [source(&location, "n.csv", "n.csv")];
    rt.block_on(import(&mut conn, "t", None, &src, &ImportOptions::default())).unwrap();
    assert_eq!(
        dump(&conn, "SELECT * FROM t ORDER BY id"),
        vec![
            vec![Value::Integer(1), Value::Null, Value::Text(String::new())],
            vec![Value::Integer(2), Value::Text(String::new()), Value::Null],
        ]
    );
    let options = ImportOptions { allow_quoted_null: true, ..ImportOptions::default() };
    let mut conn = db("CREATE TABLE t (id INTEGER, a TEXT, b TEXT)");
    rt.block_on(import(&mut conn, "t", None, &src, &options)).unwrap();
    assert_eq!(count(&conn, "t WHERE a IS NULL AND b IS NULL"), 2);
}

#[test]
fn column_list_fills_those_columns_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "cols");
    let rt = rt();
    rt.block_on(location.put("c.csv", b"x,1\ny,2\n".to_vec())).unwrap();
    let mut conn = db("CREATE TABLE t (id INTEGER, name TEXT, made TEXT DEFAULT 'dflt')");
    let columns = ["NAME".to_owned(), "id".to_owned()];
    let src = [source(&location, "c.csv", "c.csv")];
    rt.block_on(import(&mut conn, "T", Some(&columns), &src, &ImportOptions::default())).unwrap();
    assert_eq!(
        dump(&conn, "SELECT * FROM t ORDER BY id"),
        vec![
            vec![Value::Integer(1), Value::Text("x".into()), Value::Text("dflt".into())],
            vec![Value::Integer(2), Value::Text("y".into()), Value::Text("dflt".into())],
        ]
    );
}

#[test]
fn missing_tables_columns_and_bad_sources() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "missing");
    let rt = rt();
    rt.block_on(location.put("m.csv", b"1\n".to_vec())).unwrap();
    rt.block_on(location.put("m.csv.bz2", b"1\n".to_vec())).unwrap();
    let mut conn = db("CREATE TABLE t (id INTEGER, name TEXT); CREATE VIEW v AS SELECT * FROM t");
    let src = [source(&location, "m.csv", "m.csv")];
    let cols = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Table, column list, files, message, SQLSTATE.
    type Case<'a> = (&'a str, Option<Vec<String>>, Vec<Source>, &'a str, &'a str);
    let rows: Vec<Case<'_>> = vec![
        ("nope", None, src.to_vec(), "relation \"nope\" does not exist", "42P01"),
        ("v", None, src.to_vec(), "\"v\" is not a table", "42809"),
        ("t", Some(cols(&["id", "age"])), src.to_vec(), "column \"age\" does not exist", "42703"),
        (
            "t",
            Some(cols(&["id", "ID"])),
            src.to_vec(),
            "multiple assignments to the same column \"ID\"",
            "42701",
        ),
        (
            "t",
            None,
            vec![source(&location, "m.csv.bz2", "m.csv.bz2")],
            "bzip2 decompression is not supported",
            "0A000",
        ),
    ];
    for (table, columns, sources, message, sqlstate) in rows {
        let err = rt
            .block_on(import(
                &mut conn,
                table,
                columns.as_deref(),
                &sources,
                &ImportOptions::default(),
            ))
            .unwrap_err();
        assert_eq!((err.to_string().as_str(), err.sqlstate()), (message, sqlstate));
    }
    let err = rt
        .block_on(import(
            &mut conn,
            "t",
            Some(&cols(&["id"])),
            &[source(&location, "gone.csv", "gone.csv")],
            &ImportOptions::default(),
        ))
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");

    // Not gzip although asked to decompress.
    let options = ImportOptions { decompress: Decompress::Gzip, ..ImportOptions::default() };
    let err =
        rt.block_on(import(&mut conn, "t", Some(&cols(&["id"])), &src, &options)).unwrap_err();
    assert_eq!(err.sqlstate(), "22P04", "{}", err.message());
    assert!(err.message().starts_with("m.csv: cannot decompress"), "{}", err.message());

    let err = rt
        .block_on(export(&conn, ExportSource::Table("nope"), &location, &ExportOptions::default()))
        .unwrap_err();
    assert_eq!(
        (err.to_string().as_str(), err.sqlstate()),
        ("relation \"nope\" does not exist", "42P01")
    );
    let err = rt
        .block_on(export(
            &conn,
            ExportSource::Query("DELETE FROM t"),
            &location,
            &ExportOptions::default(),
        ))
        .unwrap_err();
    assert!(matches!(err, Error::NotAQuery), "{err:?}");
    let err = rt
        .block_on(export(
            &conn,
            ExportSource::Query("SELEC 1"),
            &location,
            &ExportOptions::default(),
        ))
        .unwrap_err();
    assert_eq!(err.sqlstate(), "42601", "{}", err.message());
}

#[test]
fn export_of_null_needs_nullas_and_empty_results_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "nullas");
    let conn = db("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x'), (NULL)");
    let rt = rt();
    let err = rt
        .block_on(export(&conn, ExportSource::Table("t"), &location, &ExportOptions::default()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "NULL value encountered during EXPORT, use `WITH nullas` to specify the string representation of NULL"
    );
    let files = rt
        .block_on(export(
            &conn,
            ExportSource::Query("SELECT * FROM t WHERE 0"),
            &location,
            &ExportOptions::default(),
        ))
        .unwrap();
    assert!(files.is_empty());

    // One column: NULL with nullas = '' is an empty line, which imports back as NULL.
    let options = ExportOptions { nullas: Some(String::new()), ..ExportOptions::default() };
    let conn = db("CREATE TABLE t (a TEXT); INSERT INTO t VALUES ('x'), (NULL), (''), (NULL)");
    let files = rt.block_on(export(&conn, ExportSource::Table("t"), &location, &options)).unwrap();
    let text = rt.block_on(location.get(&files[0].filename)).unwrap();
    assert_eq!(text, b"x\n\n\"\"\n\n");
    let mut back = db("CREATE TABLE t (a TEXT)");
    let src = [source(&location, &files[0].filename, "f")];
    rt.block_on(import(&mut back, "t", None, &src, &ImportOptions::default())).unwrap();
    assert_eq!(
        dump(&back, "SELECT a FROM t ORDER BY rowid"),
        dump(&conn, "SELECT a FROM t ORDER BY rowid")
    );
}

#[test]
fn import_speed() {
    // Debug builds (what `cargo test` runs) are several times slower than release. More rows:
    // EXTCONN_CSVIO_SPEED_ROWS=1000000.
    let rows_wanted = std::env::var("EXTCONN_CSVIO_SPEED_ROWS").ok().and_then(|n| n.parse().ok());
    let rows: usize = rows_wanted.unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let location = nodelocal(&dir, "speed");
    let mut csv = String::with_capacity(rows * 40);
    for i in 0..rows {
        csv.push_str(&format!("{i},name {i},\"quoted, {i}\",{}.5\n", i % 1000));
    }
    let rt = rt();
    rt.block_on(location.put("s.csv", csv.into_bytes())).unwrap();
    let mut conn = db("CREATE TABLE s (id INTEGER PRIMARY KEY, name TEXT, note TEXT, x REAL)");
    let start = std::time::Instant::now();
    let summary = rt
        .block_on(import(
            &mut conn,
            "s",
            None,
            &[source(&location, "s.csv", "s.csv")],
            &ImportOptions::default(),
        ))
        .unwrap();
    let import_secs = start.elapsed().as_secs_f64();
    assert_eq!(summary.rows, rows as u64);

    let start = std::time::Instant::now();
    let files = rt
        .block_on(export(&conn, ExportSource::Table("s"), &location, &ExportOptions::default()))
        .unwrap();
    let export_secs = start.elapsed().as_secs_f64();
    assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), rows as u64);
    println!(
        "import: {rows} rows, {} bytes in {import_secs:.2}s = {:.0} rows/s; \
         export: {:.0} rows/s",
        summary.bytes,
        rows as f64 / import_secs,
        rows as f64 / export_secs
    );
}

/// The host may drive an import on any runtime thread: its future must be `Send`.
#[test]
fn import_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let mut conn = db("CREATE TABLE t (a TEXT)");
    let options = ImportOptions::default();
    let mut progress = no_progress();
    let future = csvio::import_csv(&mut conn, "t", None, &[], &options, &mut progress);
    assert_send(&future);
    assert_eq!(rt().block_on(future).unwrap().rows, 0);
}
