//! The SQLite side, all blocking: consistent copies, table subsets, statistics, checks.
//!
//! Snapshots go through SQLite's online backup API into a private temp file rather than
//! reading the database file directly: closing any other descriptor of a database file drops
//! every POSIX lock this process holds on it (SQLite's own connections included), so a plain
//! `File` must never touch a live database. The copy is page for page, so an unchanged page
//! lands at the same offset and chunks stay comparable from one backup to the next.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::Error;
use super::chunks::hex;
use super::manifest::TableEntry;

/// How long a snapshot waits for a writer to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The schema name a source database is attached under while tables are copied.
const SRC: &str = "extconn_backup_src";

/// A database opened and read-locked: its content cannot change until it is dropped.
#[derive(Debug)]
pub(crate) struct Locked {
    conn: Connection,
    path: PathBuf,
}

/// Opens `path` (which must exist) and starts a read transaction on it. In rollback-journal
/// mode the SHARED lock makes writers wait; in WAL mode the transaction pins a snapshot.
pub(crate) fn lock(path: &Path) -> Result<Locked, Error> {
    // No CREATE flag: a mistyped path is an error, not a new empty database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(Error::sqlite("cannot open", path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(Error::sqlite("cannot configure", path))?;
    conn.execute_batch("BEGIN DEFERRED").map_err(Error::sqlite("cannot begin a read on", path))?;
    // The first read takes the lock (or the WAL snapshot).
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
        .map_err(Error::sqlite("cannot read-lock", path))?;
    Ok(Locked { conn, path: path.to_owned() })
}

impl Locked {
    /// Copies the locked database, as of the lock, to the new file `to`.
    pub fn copy_to(&self, to: &Path) -> Result<(), Error> {
        let mut dst = Connection::open(to).map_err(Error::sqlite("cannot create", to))?;
        // A private scratch file that is read once and deleted: no journal, no fsync (which
        // took as long as the copy itself, 1.3 s for 585 MiB).
        dst.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")
            .map_err(Error::sqlite("cannot configure", to))?;
        let backup = rusqlite::backup::Backup::new(&self.conn, &mut dst)
            .map_err(Error::sqlite("cannot start copying", &self.path))?;
        // All pages in one step, inside our read transaction: one consistent image.
        let step = backup.step(-1).map_err(Error::sqlite("cannot copy", &self.path))?;
        if step != rusqlite::backup::StepResult::Done {
            return Err(Error::Sqlite {
                action: "cannot copy (busy)",
                path: self.path.display().to_string(),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    None,
                ),
            });
        }
        Ok(())
    }
}

/// Page size, user tables with rows and bytes, of the database file at `path`.
pub(crate) fn stats(path: &Path) -> Result<(u32, Vec<TableEntry>), Error> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(Error::sqlite("cannot open", path))?;
    let page_size: u32 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(Error::sqlite("cannot read the page size of", path))?;
    table_stats(&conn, "main")
        .map(|t| (page_size, t))
        .map_err(Error::sqlite("cannot count the rows of", path))
}

fn table_stats(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<TableEntry>> {
    let mut sizes = std::collections::HashMap::<String, u64>::new();
    // Pages of each table and of its indexes; dbstat's aggregate mode (one row per b-tree)
    // takes half the time of a row per page.
    let mut stmt = conn.prepare(&format!(
        "SELECT m.tbl_name, sum(s.pgsize) FROM dbstat({}, 1) AS s \
         JOIN {}.sqlite_schema AS m ON m.name = s.name GROUP BY m.tbl_name",
        quote_str(schema),
        quote(schema)
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (table, bytes) = row?;
        sizes.insert(table, bytes.max(0) as u64);
    }
    let mut out = Vec::new();
    for name in user_tables(conn, schema)? {
        let rows: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {}.{}", quote(schema), quote(&name)),
            [],
            |r| r.get(0),
        )?;
        let size_bytes = sizes.get(&name).copied().unwrap_or(0);
        out.push(TableEntry { name, rows: rows.max(0) as u64, size_bytes });
    }
    Ok(out)
}

/// The user tables of `schema` (not `sqlite_*`), ordered by name.
fn user_tables(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT name FROM {}.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
         ESCAPE '\\' ORDER BY name",
        quote(schema)
    ))?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// SHA-256 and length of the file at `path`, read 1 MiB at a time.
pub(crate) fn file_sha256(path: &Path) -> Result<(String, u64), Error> {
    let mut file = std::fs::File::open(path).map_err(Error::io("cannot open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(Error::io("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex(&hasher.finalize()), len))
}

/// Reads `len` bytes at `offset` of the private snapshot copy at `path`.
/// Opening the copy per chunk is safe: no SQLite connection has it open.
pub(crate) fn read_chunk(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(Error::io("cannot open", path))?;
    let mut data = vec![0; len];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut data))
        .map_err(Error::io("cannot read", path))?;
    Ok(data)
}

/// Runs `PRAGMA quick_check` on the restored file at `path`; `database` and `backup` name it in
/// errors. Every byte was verified by SHA-256 against the manifest before this, so the file is
/// the page-for-page copy SQLite made at BACKUP: quick_check (every page, record and b-tree, not
/// the index-to-row cross-check of integrity_check, which costs four times as long) guards
/// against a source that was already damaged.
pub(crate) fn check(path: &Path, database: &str, backup: &str) -> Result<(), Error> {
    let failed = |report: String| Error::IntegrityCheck {
        database: database.to_owned(),
        backup: backup.to_owned(),
        report,
    };
    let conn = Connection::open(path).map_err(|e| failed(e.to_string()))?;
    let report: Vec<String> = conn
        .prepare("PRAGMA quick_check(5)")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| failed(e.to_string()))?;
    if report != ["ok"] {
        return Err(failed(report.join("; ")));
    }
    Ok(())
}

/// Copies `tables` (all user tables when empty) of the database file `from` into `into`'s main
/// database in one transaction: schema, rows (with their rowids), indexes and triggers.
///
/// A table that exists in `into` already is [`Error::RelationExists`], and nothing is copied.
/// `label` names `from` in errors (a database name rather than a temp file's path).
pub(crate) fn copy_tables(
    from: &Path,
    label: &str,
    tables: &[String],
    into: &mut Connection,
) -> Result<Vec<TableEntry>, Error> {
    let into_path = PathBuf::from(into.path().unwrap_or("(connection)"));
    into.execute("ATTACH DATABASE ?1 AS extconn_backup_src", params![from.to_string_lossy()])
        .map_err(Error::sqlite("cannot attach", from))?;
    let result = copy_attached(label, tables, into, &into_path);
    // Detach even after a failure; the transaction has been rolled back by then.
    let _ = into.execute_batch(&format!("DETACH DATABASE {SRC}"));
    result
}

fn copy_attached(
    label: &str,
    tables: &[String],
    into: &mut Connection,
    into_path: &Path,
) -> Result<Vec<TableEntry>, Error> {
    let sql_err = Error::sqlite;
    let tx = into
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_err("cannot begin a transaction on", into_path))?;
    let tables = if tables.is_empty() {
        user_tables(&tx, SRC).map_err(sql_err("cannot list the tables of", Path::new(label)))?
    } else {
        tables.to_vec()
    };
    // Every table is checked before anything is created.
    let mut schemas = Vec::with_capacity(tables.len());
    for table in &tables {
        let sql: Option<String> = tx
            .query_row(
                &format!("SELECT sql FROM {SRC}.sqlite_schema WHERE type = 'table' AND name = ?1"),
                [table],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err("cannot read the schema of", Path::new(label)))?;
        let Some(sql) = sql else {
            return Err(Error::NoSuchTable { database: label.to_owned(), table: table.clone() });
        };
        let exists: bool = tx
            .query_row(
                "SELECT count(*) > 0 FROM main.sqlite_schema \
                 WHERE type IN ('table', 'view') AND lower(name) = lower(?1)",
                [table],
                |r| r.get(0),
            )
            .map_err(sql_err("cannot read the schema of", into_path))?;
        if exists {
            return Err(Error::RelationExists { table: table.clone() });
        }
        schemas.push((table, sql));
    }
    let mut out = Vec::with_capacity(schemas.len());
    for (table, sql) in schemas {
        let failed = sql_err("cannot copy the table into", into_path);
        copy_one(&tx, table, &sql).map_err(failed).map(|rows| out.push(rows))?;
    }
    tx.commit().map_err(sql_err("cannot commit the copied tables to", into_path))?;
    Ok(out)
}

/// Creates `table` in main from its `sql`, copies its rows, then its indexes and triggers.
fn copy_one(tx: &Connection, table: &str, sql: &str) -> rusqlite::Result<TableEntry> {
    tx.execute_batch(sql)?;
    let mut stmt = tx.prepare(&format!(
        "SELECT name FROM pragma_table_xinfo(?1, '{SRC}') WHERE hidden = 0 ORDER BY cid"
    ))?;
    let columns: Vec<String> = stmt.query_map([table], |r| r.get(0))?.collect::<Result<_, _>>()?;
    // Keep rowids (other tables may refer to them), unless the table has none or a column
    // takes the name.
    let shadows_rowid = columns
        .iter()
        .any(|c| ["rowid", "_rowid_", "oid"].iter().any(|r| c.eq_ignore_ascii_case(r)));
    let has_rowid = !shadows_rowid
        && tx.prepare(&format!("SELECT rowid FROM {SRC}.{} LIMIT 0", quote(table))).is_ok();
    let mut list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
    if has_rowid {
        list.insert(0, "rowid".to_owned());
    }
    let list = list.join(", ");
    let rows = tx.execute(
        &format!("INSERT INTO main.{t} ({list}) SELECT {list} FROM {SRC}.{t}", t = quote(table)),
        [],
    )?;
    let mut stmt = tx.prepare(&format!(
        "SELECT sql FROM {SRC}.sqlite_schema WHERE type IN ('index', 'trigger') \
         AND tbl_name = ?1 AND sql IS NOT NULL ORDER BY type, name"
    ))?;
    let extra: Vec<String> = stmt.query_map([table], |r| r.get(0))?.collect::<Result<_, _>>()?;
    for sql in extra {
        tx.execute_batch(&sql)?;
    }
    // AUTOINCREMENT's high-water mark, which may be above the largest remaining rowid.
    let has_sequence: bool = tx.query_row(
        &format!(
            "SELECT count(*) = 2 FROM (SELECT 1 FROM {SRC}.sqlite_schema WHERE name = \
             'sqlite_sequence' UNION ALL SELECT 1 FROM main.sqlite_schema WHERE name = \
             'sqlite_sequence')"
        ),
        [],
        |r| r.get(0),
    )?;
    if has_sequence {
        tx.execute(
            &format!(
                "UPDATE main.sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM \
                 {SRC}.sqlite_sequence WHERE name = ?1), 0)) WHERE name = ?1"
            ),
            [table],
        )?;
    }
    // Sizes come from dbstat on the finished file, where the caller needs them.
    Ok(TableEntry { name: table.to_owned(), rows: rows as u64, size_bytes: 0 })
}

/// `name` as an SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as an SQL string literal.
fn quote_str(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
