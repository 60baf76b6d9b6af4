//! Change capture by triggers, in the database file itself.
//!
//! [`install`] puts three triggers (`AFTER INSERT`, `AFTER UPDATE`, `AFTER DELETE`) on a table.
//! Triggers live in the schema of the file, so every writer fires them: the extconn shell,
//! another process, the `sqlite3` CLI. Each appends to `_extconn_changes` in the writer's own
//! transaction: a change is durable exactly when its write is, and a rolled-back write leaves
//! no change.
//!
//! ```sql
//! CREATE TABLE _extconn_changes (
//!     seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order, never reused
//!     table_name TEXT NOT NULL,
//!     op         TEXT NOT NULL,    -- 'insert' | 'update' | 'delete'
//!     key        TEXT NOT NULL,    -- JSON array of the primary-key values
//!     before     TEXT,             -- JSON object of every column, or NULL
//!     after      TEXT,             -- JSON object of every column, or NULL
//!     recorded   INTEGER NOT NULL, -- the writer's wall clock, ns (ms precision)
//!     ts         INTEGER           -- the timestamp of changes stamped before 2026-11
//! );
//! CREATE TABLE _extconn_stamp_runs (last_seq INTEGER PRIMARY KEY, -- (below)
//!                                   first_seq INTEGER NOT NULL, first_ts INTEGER NOT NULL);
//! CREATE TABLE _extconn_stamps (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL); -- (below)
//! CREATE TABLE _extconn_capture (table_name TEXT PRIMARY KEY, columns TEXT, key_columns TEXT);
//! CREATE TABLE _extconn_clock (id INTEGER PRIMARY KEY CHECK (id = 0),
//!                              stamped_seq INTEGER NOT NULL, floor INTEGER NOT NULL);
//! ```
//!
//! Values are written by `json_object` with their storage class kept: INTEGER as a number,
//! TEXT as a string, NULL as null, REAL as `["r", "<printf %!.17g>"]` (SQLite's own JSON of a
//! REAL loses precision and writes infinities as the invalid `Inf`) and BLOB as
//! `["b", "<hex>"]` (`json_object` refuses BLOBs, which would fail the user's write).
//! Tables without an explicit primary key are keyed by `rowid`. Tables with more than
//! [`MAX_COLUMNS`] columns are refused: older `sqlite3` builds allow 127 function arguments.
//!
//! # Commit order
//!
//! SQLite has one writer per database file at a time: in rollback-journal mode the RESERVED
//! lock, in WAL mode the WAL write lock, is held from the first write to COMMIT or ROLLBACK.
//! `AUTOINCREMENT` gives each new row `max(sqlite_sequence, max(seq)) + 1` inside the writing
//! transaction. So while transaction A writes, no other transaction allocates; A's numbers
//! are larger than every committed one; and if A rolls back, its numbers (and the
//! `sqlite_sequence` update) vanish with it, never having been visible. Hence among committed
//! changes, a lower `seq` never commits after a higher one, and a reader's snapshot always
//! holds a prefix of the committed `seq`s: reading `seq > cursor` never skips a change that
//! commits later. `AUTOINCREMENT` (not a bare `INTEGER PRIMARY KEY`) keeps a number from
//! being reused after garbage collection deletes the highest rows.
//!
//! # Timestamps
//!
//! A trigger cannot know its commit time, and a wall-clock reading at statement time is not
//! monotonic in commit order (a long transaction records early and commits late). So the
//! reader assigns `ts` ("stamps") in `seq` order, in an `IMMEDIATE` transaction, to every
//! change not yet stamped at once, as one run: the first gets `max(floor + 1ns, the largest
//! recorded among them)`, each next one 1 ns more, and `floor` becomes the last one's.
//! Every stamp is thus above the floor and above its own change's `recorded`, and stamps rise
//! with `seq`. `_extconn_clock.floor` is also raised
//! to the wall clock by [`resolve`]; because that happens while holding the write lock, after
//! stamping everything committed, every change committed later is stamped above it. That is
//! why a resolved "now" is safe here: no transaction can commit with an older timestamp,
//! since timestamps are given at read time, never at write time. The stamps are stored, so
//! every changefeed on the file, and every restart, sees the same `ts` for a change. A run is
//! one row of `_extconn_stamp_runs`, however many changes it stamps: stamping a bulk insert
//! of 50,000 rows writes one row, where filling in a column of every change rewrote every page
//! of the changes table, and a stamp row per change still cost about 40 ms. (Files stamped
//! earlier keep their stamps, read when a change is in no run: `_extconn_stamps`, one row per
//! change, and before that `_extconn_changes.ts`.)
//!
//! # Initial scan then stream
//!
//! [`resolve`] first: its `seq` is where streaming starts and its `ts` the scan's `updated`.
//! Then [`scan`] pages through the table in primary-key order with keyset pagination, one
//! short read per page, so no read transaction is held for minutes and writers are not
//! blocked. A row changed during the scan can appear both in a later page and in the
//! changes after the recorded `seq`: delivery is at-least-once, and the stream's message
//! (with the later timestamp) comes after the scan's for that key, so the last message per
//! key is the row's latest state.
//!
//! # Schema changes
//!
//! The triggers name every column. After `ALTER TABLE … ADD COLUMN` they would go on without
//! the new column, after `RENAME COLUMN` SQLite rewrites the column references but not the
//! names in the JSON, and `DROP COLUMN` of a captured column fails. [`read_changes`] therefore
//! compares the table with the columns recorded at install and fails with
//! [`CaptureError::SchemaChanged`]; calling [`install`] again reinstalls the triggers for the
//! new columns. (CockroachDB would backfill; we refuse rather than emit partial rows.)
//!
//! # Known gaps
//!
//! * A REAL `-0.0` is captured as `0.0` (`printf('%!.17g')` drops the sign), so the stream
//!   sends `0` where the initial scan, which reads the table, sends `-0`.
//! * `INSERT OR REPLACE` / `REPLACE` deletes conflicting rows without firing delete triggers
//!   unless the writer enabled `recursive_triggers`: the replacing insert is captured (with no
//!   `before`), but a row deleted because it conflicted on another UNIQUE column is not.
//!   `INSERT … ON CONFLICT DO UPDATE` is captured as an update.
//! * `VACUUM` may renumber the rowids of tables without an `INTEGER PRIMARY KEY`; rowid keys
//!   are stable only between vacuums.
//! * A primary-key column holding NULL (SQLite allows it outside `INTEGER PRIMARY KEY`) is
//!   sorted first; the scan may revisit or skip such rows at a page boundary.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::envelope::{Columns, Values};
use super::{Datum, Event, Hlc, Name, Row};

/// Most columns a captured table may have (`json_object` takes two arguments per column, and
/// SQLite before 3.48 allows 127).
pub const MAX_COLUMNS: usize = 63;

const CHANGES: &str = "_extconn_changes";
const PREFIX: &str = "_extconn_";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS _extconn_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name TEXT NOT NULL,
    op TEXT NOT NULL,
    key TEXT NOT NULL,
    before TEXT,
    after TEXT,
    recorded INTEGER NOT NULL,
    ts INTEGER
);
CREATE TABLE IF NOT EXISTS _extconn_stamps (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS _extconn_stamp_runs (
    last_seq INTEGER PRIMARY KEY,
    first_seq INTEGER NOT NULL,
    first_ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS _extconn_capture (
    table_name TEXT PRIMARY KEY,
    columns TEXT NOT NULL,
    key_columns TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS _extconn_clock (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    stamped_seq INTEGER NOT NULL,
    floor INTEGER NOT NULL
);
INSERT OR IGNORE INTO _extconn_clock (id, stamped_seq, floor) VALUES (0, 0, 0);
";

/// Errors of change capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// SQLite failed.
    #[error("{action}")]
    Sqlite {
        /// What was being done.
        action: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The table does not exist.
    #[error("relation {table:?} does not exist")]
    NoSuchTable {
        /// The table.
        table: String,
    },
    /// The table is extconn's or SQLite's own.
    #[error("table {table:?} is internal and cannot be captured")]
    InternalTable {
        /// The table.
        table: String,
    },
    /// The table has too many columns for the triggers.
    #[error("table {table:?} has {count} columns; change capture supports at most {max}")]
    TooManyColumns {
        /// The table.
        table: String,
        /// Its number of columns.
        count: usize,
        /// [`MAX_COLUMNS`].
        max: usize,
    },
    /// The table has no primary key and its `rowid` is hidden by columns of that name.
    #[error("table {table:?} has no primary key and no usable rowid")]
    NoKey {
        /// The table.
        table: String,
    },
    /// The table is not captured.
    #[error("table {table:?} is not captured")]
    NotCaptured {
        /// The table.
        table: String,
    },
    /// The table's columns changed since capture was installed, or its triggers are gone.
    #[error(
        "table {table:?} changed since its changes are captured ({what}); schema changes are \
         not supported by changefeeds on extconn databases"
    )]
    SchemaChanged {
        /// The table.
        table: String,
        /// What changed.
        what: String,
    },
    /// Which changefeeds still need a table could not be read.
    #[error("cannot read which changefeeds use the table: {reason}")]
    Jobs {
        /// Why.
        reason: String,
    },
    /// A stored change does not parse (the changes table was edited by hand).
    #[error("change {seq} is malformed: {reason}")]
    Malformed {
        /// The change.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
}

fn sqlite(action: &'static str) -> impl FnOnce(rusqlite::Error) -> CaptureError {
    move |source| CaptureError::Sqlite { action, source }
}

/// A captured table: its columns and primary key, as recorded at install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedTable {
    /// The table's name.
    pub name: String,
    /// Every column, in the table's order.
    pub columns: Vec<String>,
    /// The primary-key columns in key order; empty when the key is the `rowid`.
    pub key_columns: Vec<String>,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A new row (also the new key of an update that changed the primary key).
    Insert,
    /// A row changed, key unchanged.
    Update,
    /// A row removed (also the old key of an update that changed the primary key).
    Delete,
}

impl Op {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "insert" => Some(Op::Insert),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// One captured change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its place in commit order.
    pub seq: i64,
    /// The table.
    pub table: String,
    /// What it did.
    pub op: Op,
    /// The primary-key values (the `rowid` for a table without a primary key).
    pub key: Vec<Datum>,
    /// The row before (`None` for an insert).
    pub before: Option<Row>,
    /// The row after (`None` for a delete).
    pub after: Option<Row>,
    /// Its timestamp: strictly increasing with `seq`.
    pub ts: Hlc,
}

impl Change {
    /// The change as an event to encode for `topic`.
    pub fn event<'a>(&'a self, table: &'a CapturedTable, topic: &'a str) -> Event<'a> {
        Event {
            key: &self.key,
            key_columns: &table.key_columns,
            before: self.before.as_ref().map(|r| r as &dyn Columns),
            after: self.after.as_ref().map(|r| r as &dyn Columns),
            updated: self.ts,
            topic,
        }
    }
}

/// Changes read after a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeBatch {
    /// The changes of the requested tables, in commit order.
    pub changes: Vec<Change>,
    /// The cursor to read from next: the last `seq` examined, of any table.
    pub cursor: i64,
    /// Whether every stamped change was examined (the batch was not cut by the limit).
    pub caught_up: bool,
}

/// A resolved point: every change with `seq <= self.seq` has `ts <= self.ts`, and every
/// change not yet committed will get a `ts` above `self.ts`. A changefeed that has emitted
/// every change up to `seq` may emit a resolved message for `ts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The last change stamped.
    pub seq: i64,
    /// The resolved timestamp.
    pub ts: Hlc,
}

/// A row of the initial scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRow {
    /// The primary-key values; also the cursor for the next page.
    pub key: Vec<Datum>,
    /// The row.
    pub row: Row,
}

impl ScanRow {
    /// The row as an event to encode for `topic`, timestamped `updated` (the scan's
    /// [`Resolved::ts`]).
    pub fn event<'a>(
        &'a self,
        table: &'a CapturedTable,
        updated: Hlc,
        topic: &'a str,
    ) -> Event<'a> {
        Event {
            key: &self.key,
            key_columns: &table.key_columns,
            before: None,
            after: Some(&self.row as &dyn Columns),
            updated,
            topic,
        }
    }
}

/// `"name"`, with inner quotes doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with inner quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The triggers' names for `table`.
fn trigger_names(table: &str) -> [String; 3] {
    ["insert", "update", "delete"].map(|op| format!("{PREFIX}{op}_{table}"))
}

/// One column as `PRAGMA table_info` describes it; compared to detect schema changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ColumnInfo {
    name: String,
    decl_type: String,
    not_null: bool,
    /// 1-based position in the primary key, 0 if not in it.
    pk: i64,
}

fn table_info(conn: &Connection, table: &str) -> Result<Vec<ColumnInfo>, CaptureError> {
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(sqlite("read the table's columns"))?;
    let columns = stmt
        .query_map([table], |row| {
            Ok(ColumnInfo {
                name: row.get(0)?,
                decl_type: row.get(1)?,
                not_null: row.get(2)?,
                pk: row.get(3)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(sqlite("read the table's columns"))?;
    Ok(columns)
}

/// The table's key expression: its primary-key columns, or a name of the `rowid`.
fn key_columns(table: &str, info: &[ColumnInfo]) -> Result<(Vec<String>, String), CaptureError> {
    let mut pk: Vec<&ColumnInfo> = info.iter().filter(|c| c.pk > 0).collect();
    pk.sort_by_key(|c| c.pk);
    if !pk.is_empty() {
        let names: Vec<String> = pk.iter().map(|c| c.name.clone()).collect();
        return Ok((names, String::new()));
    }
    ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|alias| !info.iter().any(|c| c.name.eq_ignore_ascii_case(alias)))
        .map(|alias| (Vec::new(), alias.to_owned()))
        .ok_or_else(|| CaptureError::NoKey { table: table.to_owned() })
}

/// The trigger expression that encodes `value` keeping its storage class.
fn encode_expr(value: &str) -> String {
    format!(
        "CASE typeof({value}) WHEN 'real' THEN json_array('r', printf('%!.17g', {value})) \
         WHEN 'blob' THEN json_array('b', hex({value})) ELSE {value} END"
    )
}

fn row_expr(side: &str, info: &[ColumnInfo]) -> String {
    let args: Vec<String> = info
        .iter()
        .map(|c| {
            format!("{}, {}", literal(&c.name), encode_expr(&format!("{side}.{}", ident(&c.name))))
        })
        .collect();
    format!("json_object({})", args.join(", "))
}

fn key_expr(side: &str, keys: &[String], rowid: &str) -> String {
    if keys.is_empty() {
        return format!("json_array({})", encode_expr(&format!("{side}.{rowid}")));
    }
    let args: Vec<String> =
        keys.iter().map(|k| encode_expr(&format!("{side}.{}", ident(k)))).collect();
    format!("json_array({})", args.join(", "))
}

/// Wall time in ns at millisecond precision, in SQL every SQLite version has.
const NOW_NS: &str =
    "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) * 1000000";

fn triggers_sql(table: &str, info: &[ColumnInfo], keys: &[String], rowid: &str) -> String {
    let [ins, upd, del] = trigger_names(table).map(|n| ident(&n));
    let t = ident(table);
    let name = literal(table);
    let insert_into =
        format!("INSERT INTO {CHANGES} (table_name, op, key, before, after, recorded)");
    let (old_row, new_row) = (row_expr("OLD", info), row_expr("NEW", info));
    let (old_key, new_key) = (key_expr("OLD", keys, rowid), key_expr("NEW", keys, rowid));
    // An update of the primary key is, as in CockroachDB where the key is the KV key, a
    // delete of the old key followed by an insert of the new one.
    let same_key = format!("({old_key}) IS ({new_key})");
    format!(
        "CREATE TRIGGER main.{ins} AFTER INSERT ON {t} BEGIN
  {insert_into} VALUES ({name}, 'insert', {new_key}, NULL, {new_row}, {NOW_NS});
END;
CREATE TRIGGER main.{upd} AFTER UPDATE ON {t} BEGIN
  {insert_into} SELECT {name}, 'delete', {old_key}, {old_row}, NULL, {NOW_NS} WHERE NOT {same_key};
  {insert_into} SELECT {name}, CASE WHEN {same_key} THEN 'update' ELSE 'insert' END, {new_key},
    CASE WHEN {same_key} THEN {old_row} END, {new_row}, {NOW_NS};
END;
CREATE TRIGGER main.{del} AFTER DELETE ON {t} BEGIN
  {insert_into} VALUES ({name}, 'delete', {old_key}, {old_row}, NULL, {NOW_NS});
END;"
    )
}

/// Drops the triggers of `table` in `main` only: unqualified, SQLite would look for a trigger
/// of that name in every attached database too, and drop another database's capture.
fn drop_triggers(conn: &Connection, table: &str) -> Result<(), CaptureError> {
    for name in trigger_names(table) {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS main.{}", ident(&name)))
            .map_err(sqlite("drop a capture trigger"))?;
    }
    Ok(())
}

fn immediate(conn: &Connection) -> Result<rusqlite::Transaction<'_>, CaptureError> {
    rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(sqlite("begin a write transaction"))
}

/// Starts capturing the changes of `table` (in the `main` database of `conn`). Idempotent:
/// with the same columns it changes nothing; after a schema change it reinstalls the
/// triggers for the new columns. `conn` must not be inside a transaction.
pub fn install(conn: &Connection, table: &str) -> Result<CapturedTable, CaptureError> {
    if table.starts_with(PREFIX) || table.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(CaptureError::InternalTable { table: table.to_owned() });
    }
    let tx = immediate(conn)?;
    let kind: Option<String> = tx
        .query_row("SELECT type FROM sqlite_schema WHERE name = ?1", [table], |r| r.get(0))
        .optional()
        .map_err(sqlite("look the table up"))?;
    if kind.as_deref() != Some("table") {
        return Err(CaptureError::NoSuchTable { table: table.to_owned() });
    }
    let info = table_info(&tx, table)?;
    if info.len() > MAX_COLUMNS {
        return Err(CaptureError::TooManyColumns {
            table: table.to_owned(),
            count: info.len(),
            max: MAX_COLUMNS,
        });
    }
    let (keys, rowid) = key_columns(table, &info)?;
    tx.execute_batch(SCHEMA).map_err(sqlite("create the changes table"))?;
    let columns_json = serde_json::to_string(&info).expect("column infos serialize");
    let recorded: Option<String> = tx
        .query_row("SELECT columns FROM _extconn_capture WHERE table_name = ?1", [table], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sqlite("read the capture registry"))?;
    let captured = CapturedTable {
        name: table.to_owned(),
        columns: info.iter().map(|c| c.name.clone()).collect(),
        key_columns: keys.clone(),
    };
    if recorded.as_deref() == Some(columns_json.as_str()) && triggers_present(&tx, table)? {
        return Ok(captured);
    }
    drop_triggers(&tx, table)?;
    tx.execute_batch(&triggers_sql(table, &info, &keys, &rowid))
        .map_err(sqlite("create the capture triggers"))?;
    tx.execute(
        "INSERT OR REPLACE INTO _extconn_capture (table_name, columns, key_columns) VALUES (?1, ?2, ?3)",
        params![table, columns_json, serde_json::to_string(&keys).expect("names serialize")],
    )
    .map_err(sqlite("record the captured table"))?;
    tx.commit().map_err(sqlite("commit the capture triggers"))?;
    Ok(captured)
}

fn triggers_present(conn: &Connection, table: &str) -> Result<bool, CaptureError> {
    let [a, b, c] = trigger_names(table);
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM main.sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 AND name IN (?2, ?3, ?4)",
            params![table, a, b, c],
            |r| r.get(0),
        )
        .map_err(sqlite("look the capture triggers up"))?;
    Ok(count == 3)
}

fn has_changes_table(conn: &Connection) -> Result<bool, CaptureError> {
    conn.query_row(
        "SELECT count(*) FROM main.sqlite_schema WHERE type = 'table' AND name = '_extconn_capture'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(sqlite("look the changes table up"))
}

/// Stops capturing `table`, once no changefeed needs it: drops its triggers and its pending
/// changes. `Ok(false)` if it was not captured.
pub fn uninstall(conn: &Connection, table: &str) -> Result<bool, CaptureError> {
    release_if_unused(conn, table, || Ok(false))
}

/// [`uninstall`] unless `in_use` says a changefeed still needs `table`. `in_use` is asked while
/// this database's write lock is held, so a changefeed whose job was recorded before it
/// installed capture can never lose its triggers to a release: the release either sees the
/// job, or finished before the install, which then installs afresh.
pub fn release_if_unused(
    conn: &Connection,
    table: &str,
    in_use: impl FnOnce() -> Result<bool, String>,
) -> Result<bool, CaptureError> {
    let tx = immediate(conn)?;
    if !has_changes_table(&tx)? {
        return Ok(false);
    }
    let recorded: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM main._extconn_capture WHERE table_name = ?1)",
            [table],
            |r| r.get(0),
        )
        .map_err(sqlite("look the captured table up"))?;
    if !recorded || in_use().map_err(|reason| CaptureError::Jobs { reason })? {
        return Ok(false);
    }
    drop_triggers(&tx, table)?;
    let removed = tx
        .execute("DELETE FROM _extconn_capture WHERE table_name = ?1", [table])
        .map_err(sqlite("forget the captured table"))?;
    tx.execute("DELETE FROM _extconn_changes WHERE table_name = ?1", [table])
        .map_err(sqlite("delete the table's changes"))?;
    ensure_stamps(&tx)?;
    tx.execute(
        "DELETE FROM _extconn_stamps WHERE seq NOT IN (SELECT seq FROM _extconn_changes)",
        [],
    )
    .map_err(sqlite("delete the table's changes"))?;
    tx.commit().map_err(sqlite("commit the uninstall"))?;
    Ok(removed > 0)
}

/// The captured table `table`, as recorded at install.
pub fn captured_table(conn: &Connection, table: &str) -> Result<CapturedTable, CaptureError> {
    let not_captured = || CaptureError::NotCaptured { table: table.to_owned() };
    if !has_changes_table(conn)? {
        return Err(not_captured());
    }
    let (columns, keys): (String, String) = conn
        .query_row(
            "SELECT columns, key_columns FROM _extconn_capture WHERE table_name = ?1",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(sqlite("read the capture registry"))?
        .ok_or_else(not_captured)?;
    let info: Vec<ColumnInfo> = serde_json::from_str(&columns).map_err(|e| {
        CaptureError::SchemaChanged { table: table.to_owned(), what: format!("registry: {e}") }
    })?;
    let key_columns: Vec<String> = serde_json::from_str(&keys).map_err(|e| {
        CaptureError::SchemaChanged { table: table.to_owned(), what: format!("registry: {e}") }
    })?;
    Ok(CapturedTable {
        name: table.to_owned(),
        columns: info.into_iter().map(|c| c.name).collect(),
        key_columns,
    })
}

/// Checks that `table` is captured with its current columns and all its triggers.
pub fn verify(conn: &Connection, table: &str) -> Result<CapturedTable, CaptureError> {
    let captured = captured_table(conn, table)?;
    let changed =
        |what: &str| CaptureError::SchemaChanged { table: table.to_owned(), what: what.to_owned() };
    let recorded: String = conn
        .query_row("SELECT columns FROM _extconn_capture WHERE table_name = ?1", [table], |r| {
            r.get(0)
        })
        .map_err(sqlite("read the capture registry"))?;
    let info = table_info(conn, table)?;
    if info.is_empty() {
        return Err(changed("the table was dropped"));
    }
    if serde_json::to_string(&info).expect("column infos serialize") != recorded {
        let now: Vec<&str> = info.iter().map(|c| c.name.as_str()).collect();
        return Err(changed(&format!(
            "columns were ({}), are ({})",
            captured.columns.join(", "),
            now.join(", ")
        )));
    }
    if !triggers_present(conn, table)? {
        return Err(changed("its capture triggers were dropped"));
    }
    Ok(captured)
}

fn now_ns() -> i64 {
    Hlc::now().wall_ns
}

/// Creates `_extconn_stamps` and `_extconn_stamp_runs` in a file whose capture was installed
/// before they existed.
fn ensure_stamps(conn: &Connection) -> Result<(), CaptureError> {
    let exists = conn
        .prepare_cached(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'
             AND name IN ('_extconn_stamps', '_extconn_stamp_runs')",
        )
        .and_then(|mut stmt| stmt.query_row([], |r| r.get::<_, i64>(0)))
        .map_err(sqlite("look the stamps table up"))?;
    if exists < 2 {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _extconn_stamps (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS _extconn_stamp_runs (
                 last_seq INTEGER PRIMARY KEY, first_seq INTEGER NOT NULL, first_ts INTEGER NOT NULL)",
        )
        .map_err(sqlite("create the stamps table"))?;
    }
    Ok(())
}

/// A run of stamps: changes `first_seq..=last_seq` have `ts = first_ts + (seq - first_seq)`.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_seq: i64,
    last_seq: i64,
    first_ts: i64,
}

/// The first run that ends at or after `seq` (it stamps `seq` if it also starts at or before
/// it). One index seek: a batch looks up one run per run it spans, however far behind it is.
fn run_from(conn: &Connection, seq: i64) -> Result<Option<Run>, CaptureError> {
    conn.prepare_cached(
        "SELECT first_seq, last_seq, first_ts FROM _extconn_stamp_runs
         WHERE last_seq >= ?1 ORDER BY last_seq LIMIT 1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([seq], |r| {
            Ok(Run { first_seq: r.get(0)?, last_seq: r.get(1)?, first_ts: r.get(2)? })
        })
        .optional()
    })
    .map_err(sqlite("read the stamps"))
}

/// Stamps every change committed and not yet stamped, in `seq` order, within `tx` (which
/// holds the write lock). Returns `(stamped_seq, floor)`.
fn stamp(tx: &Connection) -> Result<(i64, i64), CaptureError> {
    let (stamped, mut floor): (i64, i64) = tx
        .query_row("SELECT stamped_seq, floor FROM _extconn_clock WHERE id = 0", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sqlite("read the change clock"))?;
    let pending: Option<(i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT min(seq), max(seq), max(recorded) FROM _extconn_changes WHERE seq > ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row([stamped], |r| {
                Ok(match (r.get(0)?, r.get(1)?, r.get(2)?) {
                    (Some(first), Some(last), Some(recorded)) => Some((first, last, recorded)),
                    _ => None,
                })
            })
        })
        .map_err(sqlite("read unstamped changes"))?;
    let Some((first, last, recorded)) = pending else { return Ok((stamped, floor)) };
    ensure_stamps(tx)?;
    // One run for all of them: above the floor and every one's recorded time, 1 ns apart.
    let first_ts = floor.saturating_add(1).max(recorded);
    floor = first_ts.saturating_add(last - first);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO _extconn_stamp_runs (last_seq, first_seq, first_ts)
         VALUES (?1, ?2, ?3)",
    )
    .and_then(|mut insert| insert.execute([last, first, first_ts]))
    .map_err(sqlite("stamp changes"))?;
    tx.execute(
        "UPDATE _extconn_clock SET stamped_seq = ?1, floor = ?2 WHERE id = 0",
        [last, floor],
    )
    .map_err(sqlite("advance the change clock"))?;
    Ok((last, floor))
}

/// A resolved point now: stamps every committed change, then raises the clock's floor to
/// the wall clock, under the write lock (see the module documentation for why this is safe).
/// Before an initial scan, its `seq` is where streaming starts and its `ts` the scan's
/// `updated`.
pub fn resolve(conn: &Connection) -> Result<Resolved, CaptureError> {
    let tx = immediate(conn)?;
    let (seq, floor) = stamp(&tx)?;
    let ts = floor.max(now_ns());
    tx.execute("UPDATE _extconn_clock SET floor = ?1 WHERE id = 0", [ts])
        .map_err(sqlite("advance the change clock"))?;
    tx.commit().map_err(sqlite("commit the resolved timestamp"))?;
    Ok(Resolved { seq, ts: Hlc::from_nanos(ts) })
}

/// Reads up to `limit` changes after `cursor` (a `seq`; 0 for the beginning), keeping those
/// of `tables`. Stamps new changes first (a short write transaction, only when there are
/// some). Fails with [`CaptureError::SchemaChanged`] when a table's columns changed.
pub fn read_changes(
    conn: &Connection,
    tables: &[&str],
    cursor: i64,
    limit: usize,
) -> Result<ChangeBatch, CaptureError> {
    let mut changes = Vec::new();
    // The previous row's column names: the next row shares them (and is allocated at its size).
    let mut names: Vec<Name> = Vec::new();
    let visited = visit_changes(conn, tables, cursor, limit, |raw| {
        changes.push(raw.decode(tables[raw.table], &mut names)?);
        Ok(())
    })?;
    Ok(ChangeBatch { changes, cursor: visited.cursor, caught_up: visited.caught_up })
}

/// One captured change as stored: its key and rows still the JSON the triggers wrote,
/// borrowed from SQLite's row.
#[derive(Debug, Clone, Copy)]
pub struct RawChange<'t> {
    /// Its place in commit order.
    pub seq: i64,
    /// Its table: an index into the tables the read was for.
    pub table: usize,
    /// What it did.
    pub op: Op,
    /// The key's JSON array.
    pub key: &'t [u8],
    /// The row before, a JSON object (`None` for an insert).
    pub before: Option<&'t [u8]>,
    /// The row after, a JSON object (`None` for a delete).
    pub after: Option<&'t [u8]>,
    /// Its timestamp.
    pub ts: Hlc,
}

/// Where a [`visit_changes`] read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visited {
    /// The cursor to read from next: the last `seq` examined, of any table.
    pub cursor: i64,
    /// Whether every stamped change was examined (the read was not cut by the limit).
    pub caught_up: bool,
}

/// [`read_changes`] without decoding: calls `visit` with each change of `tables` as stored,
/// in commit order, and stops at the first error it returns.
pub fn visit_changes(
    conn: &Connection,
    tables: &[&str],
    cursor: i64,
    limit: usize,
    mut visit: impl FnMut(&RawChange<'_>) -> Result<(), CaptureError>,
) -> Result<Visited, CaptureError> {
    for table in tables {
        verify(conn, table)?;
    }
    let (stamped, last): (i64, i64) = conn
        .query_row(
            "SELECT stamped_seq, (SELECT ifnull(max(seq), 0) FROM _extconn_changes) FROM _extconn_clock",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sqlite("read the change clock"))?;
    let stamped = if last > stamped {
        let tx = immediate(conn)?;
        let (stamped, _) = stamp(&tx)?;
        tx.commit().map_err(sqlite("commit the stamps"))?;
        stamped
    } else {
        stamped
    };
    ensure_stamps(conn)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut run: Option<Run> = None;
    // Stamps of one change each (files stamped before runs) are joined only when some remain.
    let single_stamps: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM _extconn_stamps WHERE seq > ?1)")
        .and_then(|mut stmt| stmt.query_row([cursor], |r| r.get(0)))
        .map_err(sqlite("read the stamps"))?;
    let mut stmt = conn
        .prepare_cached(if single_stamps {
            "SELECT c.seq, c.table_name, c.op, c.key, c.before, c.after, coalesce(s.ts, c.ts)
             FROM _extconn_changes AS c LEFT JOIN _extconn_stamps AS s ON s.seq = c.seq
             WHERE c.seq > ?1 AND c.seq <= ?2 ORDER BY c.seq LIMIT ?3"
        } else {
            "SELECT seq, table_name, op, key, before, after, ts FROM _extconn_changes
             WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"
        })
        .map_err(sqlite("read changes"))?;
    let mut rows = stmt.query(params![cursor, stamped, limit]).map_err(sqlite("read changes"))?;
    let mut visited = Visited { cursor, caught_up: true };
    let mut examined = 0;
    while let Some(row) = rows.next().map_err(sqlite("read changes"))? {
        examined += 1;
        let seq: i64 = row.get(0).map_err(sqlite("read changes"))?;
        visited.cursor = seq;
        // Borrowed from SQLite's row: nothing is copied.
        let text = |i| match row.get_ref(i).map_err(sqlite("read changes"))? {
            rusqlite::types::ValueRef::Text(t) => Ok(Some(t)),
            _ => Ok(None),
        };
        let Some(table) = text(1)?.and_then(|t| tables.iter().position(|n| n.as_bytes() == t))
        else {
            continue;
        };
        let malformed = |reason: String| CaptureError::Malformed { seq, reason };
        let op_text = text(2)?.unwrap_or_default();
        let op = std::str::from_utf8(op_text)
            .ok()
            .and_then(Op::parse)
            .ok_or_else(|| malformed(format!("op {:?}", String::from_utf8_lossy(op_text))))?;
        if run.is_none_or(|r| r.last_seq < seq) {
            run = run_from(conn, seq)?;
        }
        let ts = match run {
            Some(r) if r.first_seq <= seq => r.first_ts + (seq - r.first_seq),
            _ => row
                .get::<_, Option<i64>>(6)
                .map_err(sqlite("read changes"))?
                .ok_or_else(|| malformed("no timestamp".into()))?,
        };
        visit(&RawChange {
            seq,
            table,
            op,
            key: text(3)?.unwrap_or_default(),
            before: text(4)?,
            after: text(5)?,
            ts: Hlc::from_nanos(ts),
        })?;
    }
    visited.caught_up = examined < limit;
    Ok(visited)
}

impl RawChange<'_> {
    /// The change decoded; `names` are the previous change's column names, shared where
    /// this one's are the same (and updated when they differ).
    pub fn decode(&self, table: &str, names: &mut Vec<Name>) -> Result<Change, CaptureError> {
        let malformed = |reason: String| CaptureError::Malformed { seq: self.seq, reason };
        let key = decode_key(self.key).map_err(malformed)?;
        let decode = |text| decode_row(text, names);
        let before = self.before.map(decode).transpose().map_err(malformed)?;
        let after = self.after.map(decode).transpose().map_err(malformed)?;
        if let Some(row) = after.as_ref().or(before.as_ref())
            && !same_names(row, names)
        {
            *names = row.columns.iter().map(|(n, _)| n.clone()).collect();
        }
        Ok(Change {
            seq: self.seq,
            table: table.to_owned(),
            op: self.op,
            key,
            before,
            after,
            ts: self.ts,
        })
    }

    /// Calls `f` with the change as an [`Event`] for `topic`, its values transcoded from the
    /// captured JSON rather than decoded: a string or integer the triggers wrote is already
    /// the JSON a message holds, and is copied as is; only what is written differently (a
    /// REAL, a BLOB, a string with escapes) is decoded. The event encodes byte for byte as
    /// the decoded change's would; a row whose column names have escapes is decoded whole.
    pub fn with_event<R>(
        &self,
        table: &CapturedTable,
        topic: &str,
        scratch: &mut Transcoder,
        f: impl FnOnce(&Event<'_>) -> R,
    ) -> Result<R, CaptureError> {
        let malformed = |reason: String| CaptureError::Malformed { seq: self.seq, reason };
        let Transcoder { key, before, after, names } = scratch;
        key.array(self.key).map_err(|_| malformed("key is not a JSON array".into()))?;
        let mut plain = true;
        for (located, text) in [(&mut *before, self.before), (&mut *after, self.after)] {
            if let Some(text) = text {
                plain &= located.object(text).map_err(|e| malformed(format!("row: {e}")))?;
            }
        }
        if !plain {
            let change = self.decode(&table.name, names)?;
            return Ok(f(&change.event(table, topic)));
        }
        let key = Captured { text: self.key, located: key };
        let before = self.before.map(|text| Captured { text, located: before });
        let after = self.after.map(|text| Captured { text, located: after });
        Ok(f(&Event {
            key: &key,
            key_columns: &table.key_columns,
            before: before.as_ref().map(|r| r as &dyn Columns),
            after: after.as_ref().map(|r| r as &dyn Columns),
            updated: self.ts,
            topic,
        }))
    }
}

/// Reusable buffers for [`RawChange::with_event`].
#[derive(Debug, Default)]
pub struct Transcoder {
    key: Located,
    before: Located,
    after: Located,
    names: Vec<Name>,
}

/// A captured value: bytes of the captured text that are already its message JSON, or a
/// decoded value.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Verbatim(usize, usize),
    Decoded(usize),
}

/// The values (and, of a row, the column names) of a captured key or row, located in its text.
#[derive(Debug, Default)]
struct Located {
    /// Byte ranges of each column's name, without quotes (none for a key).
    names: Vec<(usize, usize)>,
    slots: Vec<Slot>,
    decoded: Vec<Datum>,
    /// The names of the last row located (each followed by 0xff, which UTF-8 never holds) and
    /// their indices sorted by name: rows of one table share them, so they are sorted once.
    shape: Vec<u8>,
    order: Vec<u8>,
}

impl Located {
    fn clear(&mut self) {
        self.names.clear();
        self.slots.clear();
        self.decoded.clear();
    }

    /// A key: a JSON array of values.
    fn array(&mut self, text: &[u8]) -> Result<(), String> {
        self.clear();
        let mut reader = Reader { text, pos: 0 };
        reader.eat(b'[')?;
        if reader.peek() == Some(b']') {
            reader.pos += 1;
        } else {
            loop {
                self.value(&mut reader)?;
                if !reader.more(b']')? {
                    break;
                }
            }
        }
        reader.end()
    }

    /// A row: a JSON object of columns. `Ok(false)` when a name has an escape: such a row is
    /// decoded instead, its names unescaped.
    fn object(&mut self, text: &[u8]) -> Result<bool, String> {
        self.clear();
        let mut reader = Reader { text, pos: 0 };
        reader.eat(b'{')?;
        if reader.peek() == Some(b'}') {
            reader.pos += 1;
            return reader.end().map(|()| true);
        }
        loop {
            reader.eat(b'"')?;
            let begin = reader.pos;
            let Some(len) = text[begin..].iter().position(|&b| b == b'"' || b == b'\\') else {
                return Err(reader.error("unterminated string"));
            };
            // Decoded, such a name would be unescaped or its invalid UTF-8 replaced; encoded,
            // a control character would be escaped.
            let name = &text[begin..begin + len];
            if text[begin + len] == b'\\'
                || name.iter().any(|&b| b < 0x20)
                || !(name.is_ascii() || std::str::from_utf8(name).is_ok())
            {
                return Ok(false);
            }
            self.names.push((begin, begin + len));
            reader.pos = begin + len + 1;
            reader.eat(b':')?;
            self.value(&mut reader)?;
            if !reader.more(b'}')? {
                break;
            }
        }
        reader.end()?;
        self.sort_names(text);
        Ok(true)
    }

    /// Sorts the names just located, unless they are the last row's.
    fn sort_names(&mut self, text: &[u8]) {
        let mut pos = 0;
        let same = self.names.iter().all(|&(begin, end)| {
            let name = &text[begin..end];
            let same = self.shape.get(pos..pos + name.len()) == Some(name)
                && self.shape.get(pos + name.len()) == Some(&0xff);
            pos += name.len() + 1;
            same
        }) && pos == self.shape.len();
        if same && self.order.len() == self.names.len() {
            return;
        }
        self.shape.clear();
        for &(begin, end) in &self.names {
            self.shape.extend_from_slice(&text[begin..end]);
            self.shape.push(0xff);
        }
        self.order.clear();
        if self.names.len() <= usize::from(u8::MAX) {
            self.order.resize(self.names.len(), 0);
            let names = &self.names;
            super::json::sort_keys(&mut self.order, |i| &text[names[i].0..names[i].1]);
        }
    }

    /// One value: located when its captured JSON is what a message holds (a string without
    /// escapes or control characters, an integer in its shortest form, null), else decoded.
    fn value(&mut self, reader: &mut Reader<'_>) -> Result<(), String> {
        let text = reader.text;
        let begin = match reader.peek() {
            Some(_) => reader.pos,
            None => return Err(reader.error("value")),
        };
        let verbatim_end = match text[begin] {
            b'"' => {
                let body = &text[begin + 1..];
                body.iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .filter(|&n| body[n] == b'"')
                    .filter(|&n| body[..n].is_ascii() || std::str::from_utf8(&body[..n]).is_ok())
                    .map(|n| begin + n + 2)
            }
            b'n' => text[begin..].starts_with(b"null").then_some(begin + 4),
            b'-' | b'0'..=b'9' => {
                let digits = begin + usize::from(text[begin] == b'-');
                let len = text[digits..].iter().take_while(|b| b.is_ascii_digit()).count();
                let end = digits + len;
                let shortest = match len {
                    1 => text[digits] != b'0' || digits == begin,
                    2..=18 => text[digits] != b'0',
                    _ => false,
                };
                let ends = !matches!(text.get(end), Some(b'.' | b'e' | b'E' | b'+' | b'-'));
                (shortest && ends).then_some(end)
            }
            _ => None,
        };
        match verbatim_end {
            Some(end) => {
                reader.pos = end;
                self.slots.push(Slot::Verbatim(begin, end));
            }
            None => {
                self.slots.push(Slot::Decoded(self.decoded.len()));
                self.decoded.push(reader.datum()?);
            }
        }
        Ok(())
    }
}

/// A captured key or row, as [`Values`] / [`Columns`] to encode.
struct Captured<'a> {
    text: &'a [u8],
    located: &'a Located,
}

impl Values for Captured<'_> {
    fn len(&self) -> usize {
        self.located.slots.len()
    }

    fn write(&self, out: &mut Vec<u8>, i: usize) {
        match self.located.slots[i] {
            Slot::Verbatim(begin, end) => out.extend_from_slice(&self.text[begin..end]),
            Slot::Decoded(d) => super::json::write_datum(out, &self.located.decoded[d]),
        }
    }
}

impl Columns for Captured<'_> {
    fn name(&self, i: usize) -> &[u8] {
        let (begin, end) = self.located.names[i];
        &self.text[begin..end]
    }

    /// As captured, with its quotes: [`Located::object`] copies only names that need no
    /// escaping.
    fn write_name(&self, out: &mut Vec<u8>, i: usize) {
        let (begin, end) = self.located.names[i];
        out.extend_from_slice(&self.text[begin - 1..end + 1]);
    }

    fn sorted(&self) -> Option<&[u8]> {
        let located = self.located;
        (located.order.len() == located.names.len()).then_some(&located.order[..])
    }
}

/// SQLite's `printf('%!.17g')`: a decimal, or `Inf`, `-Inf`.
fn parse_real(text: &str) -> Option<f64> {
    match text {
        "Inf" | "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => text.parse().ok(),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// The key as the triggers write it: a JSON array of values.
fn decode_key(text: &[u8]) -> Result<Vec<Datum>, String> {
    let mut reader = Reader { text, pos: 0 };
    let not_array = |_| "key is not a JSON array".to_owned();
    let key = reader.array().map_err(not_array)?;
    reader.end().map_err(not_array)?;
    Ok(key)
}

/// Whether `row`'s column names are exactly the shared `names` (the same allocations).
fn same_names(row: &Row, names: &[Name]) -> bool {
    row.columns.len() == names.len()
        && row.columns.iter().zip(names).all(|((n, _), m)| std::sync::Arc::ptr_eq(n, m))
}

/// A row as the triggers write it: a JSON object of every column, in the table's order;
/// `names` are the previous row's column names, shared where this row's are the same.
fn decode_row(text: &[u8], names: &[Name]) -> Result<Row, String> {
    let mut reader = Reader { text, pos: 0 };
    let row = reader.row(names)?;
    reader.end().map_err(|e| format!("row: {e}"))?;
    Ok(row)
}

/// A reader of the JSON the triggers write, straight into [`Datum`]s: no intermediate values,
/// and strings without escapes copied once. It reads any JSON; what is not a value the
/// triggers could have written is an error.
struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.pos) {
            self.pos += 1;
        }
        self.text.get(self.pos).copied()
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.pos)
    }

    fn eat(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", char::from(byte))))
        }
    }

    /// Whether a list goes on after an element: eats the `,`, or the closing `close`.
    fn more(&mut self, close: u8) -> Result<bool, String> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(self.error(&format!("expected `,` or `{}`", char::from(close)))),
        }
    }

    fn end(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("trailing characters")),
        }
    }

    fn row(&mut self, names: &[Name]) -> Result<Row, String> {
        let syntax = |e| format!("row: {e}");
        self.eat(b'{').map_err(syntax)?;
        let mut columns = Vec::with_capacity(names.len());
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Row { columns });
        }
        loop {
            let name = self.name(names.get(columns.len())).map_err(syntax)?;
            self.eat(b':').map_err(syntax)?;
            columns.push((name, self.datum()?));
            if !self.more(b'}').map_err(syntax)? {
                return Ok(Row { columns });
            }
        }
    }

    /// A column name: `known` itself when the text spells it without escapes, else a new one.
    fn name(&mut self, known: Option<&Name>) -> Result<Name, String> {
        if let Some(known) = known
            && self.peek() == Some(b'"')
        {
            let spelled = known.as_bytes();
            let end = self.pos + 1 + spelled.len();
            if self.text.get(self.pos + 1..end) == Some(spelled)
                && self.text.get(end) == Some(&b'"')
            {
                self.pos = end + 1;
                return Ok(known.clone());
            }
        }
        self.string().map(Name::from)
    }

    fn array(&mut self) -> Result<Vec<Datum>, String> {
        self.eat(b'[')?;
        let mut values = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(values);
        }
        loop {
            values.push(self.datum()?);
            if !self.more(b']')? {
                return Ok(values);
            }
        }
    }

    /// One value as the triggers encode it (see the module documentation).
    fn datum(&mut self) -> Result<Datum, String> {
        match self.peek() {
            Some(b'n') if self.text[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(Datum::Null)
            }
            Some(b'"') => Ok(Datum::Text(self.string()?)),
            Some(b'-' | b'0'..=b'9') => {
                let begin = self.pos;
                self.pos += 1;
                while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') =
                    self.text.get(self.pos)
                {
                    self.pos += 1;
                }
                let number = String::from_utf8_lossy(&self.text[begin..self.pos]);
                number.parse().map(Datum::Integer).map_err(|_| format!("number {number}"))
            }
            Some(b'[') => {
                let begin = self.pos;
                self.pos += 1;
                let tagged = (|| {
                    let tag = self.string()?;
                    self.eat(b',')?;
                    let text = self.string()?;
                    self.eat(b']')?;
                    Ok::<_, String>((tag, text))
                })();
                match tagged {
                    Ok((tag, text)) if tag == "r" => {
                        parse_real(&text).map(Datum::Real).ok_or_else(|| format!("REAL {text:?}"))
                    }
                    Ok((tag, hex)) if tag == "b" => {
                        decode_hex(&hex).map(Datum::Blob).ok_or_else(|| format!("BLOB {hex:?}"))
                    }
                    _ => Err(format!(
                        "tagged value {}",
                        String::from_utf8_lossy(&self.text[begin..self.pos.min(self.text.len())])
                    )),
                }
            }
            _ => Err(self.error("value")),
        }
    }

    /// A JSON string, unescaped; bytes that are not UTF-8 are replaced, as in the scan.
    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let begin = self.pos;
        let Some(len) = self.text[begin..].iter().position(|&b| b == b'"' || b == b'\\') else {
            return Err(self.error("unterminated string"));
        };
        self.pos += len;
        if self.text[self.pos] == b'"' {
            self.pos += 1;
            return Ok(String::from_utf8_lossy(&self.text[begin..begin + len]).into_owned());
        }
        let mut bytes = self.text[begin..self.pos].to_vec();
        loop {
            match self.text.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(match String::from_utf8(bytes) {
                        Ok(s) => s,
                        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    });
                }
                Some(b'\\') => {
                    let escape = self.text.get(self.pos + 1).copied();
                    self.pos += 2;
                    let byte = match escape {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'/') => b'/',
                        Some(b'b') => 0x08,
                        Some(b'f') => 0x0c,
                        Some(b'n') => b'\n',
                        Some(b'r') => b'\r',
                        Some(b't') => b'\t',
                        Some(b'u') => {
                            let c = self.code_point()?;
                            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    bytes.push(byte);
                }
                Some(&b) => {
                    bytes.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// The character of a `\uXXXX` escape whose `\u` was read (a surrogate pair is two).
    fn code_point(&mut self) -> Result<char, String> {
        let high = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&high) {
            if self.text.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return Err(self.error("lone surrogate"));
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xdc00..0xe000).contains(&low) {
                return Err(self.error("lone surrogate"));
            }
            0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("lone surrogate"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let value = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .and_then(|d| u32::from_str_radix(std::str::from_utf8(d).ok()?, 16).ok())
            .ok_or_else(|| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(value)
    }
}

/// Deletes the changes every changefeed has consumed: those with `seq <= cursor`, where the
/// caller passes the smallest cursor of the changefeeds on this database. Returns how many
/// were deleted.
pub fn gc(conn: &Connection, cursor: i64) -> Result<usize, CaptureError> {
    if !has_changes_table(conn)? {
        return Ok(0);
    }
    let deleted = conn
        .execute(
            "DELETE FROM _extconn_changes
             WHERE seq <= ?1 AND seq <= (SELECT stamped_seq FROM _extconn_clock WHERE id = 0)",
            [cursor],
        )
        .map_err(sqlite("delete consumed changes"))?;
    ensure_stamps(conn)?;
    conn.execute(
        "DELETE FROM _extconn_stamps
         WHERE seq <= ?1 AND seq <= (SELECT stamped_seq FROM _extconn_clock WHERE id = 0)",
        [cursor],
    )
    .map_err(sqlite("delete consumed changes"))?;
    conn.execute(
        "DELETE FROM _extconn_stamp_runs
         WHERE last_seq <= ?1 AND last_seq <= (SELECT stamped_seq FROM _extconn_clock WHERE id = 0)",
        [cursor],
    )
    .map_err(sqlite("delete consumed changes"))?;
    Ok(deleted)
}

/// One page of the initial scan of `table`: up to `limit` rows after the key `after` (`None`
/// for the first page), in primary-key order. Each page is one short read; pass the last
/// row's key to get the next page, until a page comes back shorter than `limit`.
pub fn scan(
    conn: &Connection,
    table: &CapturedTable,
    after: Option<&[Datum]>,
    limit: usize,
) -> Result<Vec<ScanRow>, CaptureError> {
    let (keys, rowid) = if table.key_columns.is_empty() {
        let info = table_info(conn, &table.name)?;
        key_columns(&table.name, &info)?
    } else {
        (table.key_columns.clone(), String::new())
    };
    let key_exprs: Vec<String> =
        if keys.is_empty() { vec![rowid] } else { keys.iter().map(|k| ident(k)).collect() };
    let key_list = key_exprs.join(", ");
    let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
    let mut sql = format!("SELECT {key_list}, {} FROM {}", columns.join(", "), ident(&table.name));
    if let Some(after) = after {
        let placeholders: Vec<String> = (1..=after.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" WHERE ({key_list}) > ({})", placeholders.join(", ")));
    }
    sql.push_str(&format!(
        " ORDER BY {key_list} LIMIT {}",
        i64::try_from(limit).unwrap_or(i64::MAX)
    ));
    let mut stmt = conn.prepare(&sql).map_err(sqlite("scan the table"))?;
    let params: Vec<&dyn rusqlite::ToSql> =
        after.unwrap_or_default().iter().map(|d| d as &dyn rusqlite::ToSql).collect();
    let mut rows = stmt.query(params.as_slice()).map_err(sqlite("scan the table"))?;
    let mut out = Vec::new();
    let n = key_exprs.len();
    let names: Vec<Name> = table.columns.iter().map(|c| Name::from(c.as_str())).collect();
    while let Some(row) = rows.next().map_err(sqlite("scan the table"))? {
        let value = |i| row.get_ref(i).map(Datum::from).map_err(sqlite("scan the table"));
        let key = (0..n).map(value).collect::<Result<Vec<_>, _>>()?;
        let mut columns = Vec::with_capacity(table.columns.len());
        for (i, name) in names.iter().enumerate() {
            columns.push((name.clone(), value(n + i)?));
        }
        out.push(ScanRow { key, row: Row { columns } });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_values_decode() {
        let cases: &[(&str, Result<Datum, ()>)] = &[
            ("null", Ok(Datum::Null)),
            ("-7", Ok(Datum::Integer(-7))),
            ("\"t\"", Ok(Datum::Text("t".into()))),
            (
                r#""q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00""#,
                Ok(Datum::Text("q\"\\/\x08\x0c\n\r\té😀".into())),
            ),
            ("\"é\u{2028}\"", Ok(Datum::Text("é\u{2028}".into()))),
            (r#"["r","0.10000000000000001"]"#, Ok(Datum::Real(0.1))),
            (r#"[ "r" , "Inf" ]"#, Ok(Datum::Real(f64::INFINITY))),
            (r#"["r","-Inf"]"#, Ok(Datum::Real(f64::NEG_INFINITY))),
            (r#"["b","00FF"]"#, Ok(Datum::Blob(vec![0, 255]))),
            (r#"["b",""]"#, Ok(Datum::Blob(vec![]))),
            (r#"["b","0"]"#, Err(())),
            (r#"["x","1"]"#, Err(())),
            (r#"["r"]"#, Err(())),
            (r#""\ud83d""#, Err(())),
            (r#""\q""#, Err(())),
            ("\"open", Err(())),
            ("1.5", Err(())),
            ("99999999999999999999", Err(())),
            ("{}", Err(())),
            ("true", Err(())),
        ];
        for (text, want) in cases {
            let mut reader = Reader { text: text.as_bytes(), pos: 0 };
            let got = reader.datum().and_then(|d| reader.end().map(|()| d));
            assert_eq!(got.map_err(|_| ()), *want, "{text}");
        }
    }

    #[test]
    fn rows_keep_the_table_order() {
        let row = decode_row(br#"{"z":1,"a":"x","m":null}"#, &[]).unwrap();
        let names: Vec<&str> = row.columns.iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["z", "a", "m"]);
        // The next row shares the names it spells the same, and only those.
        let shared: Vec<Name> = row.columns.iter().map(|(n, _)| n.clone()).collect();
        let next = decode_row(br#"{"z":2,"b":"y","m\u0000":null}"#, &shared).unwrap();
        assert!(std::sync::Arc::ptr_eq(&next.columns[0].0, &shared[0]));
        assert_eq!((&*next.columns[1].0, &*next.columns[2].0), ("b", "m\0"));
        assert!(!same_names(&next, &shared) && same_names(&row, &[]) == row.columns.is_empty());
        assert_eq!(decode_row(b" { } ", &[]).unwrap(), Row::default());
        for bad in [&br#"[]"#[..], br#"{"a":1"#, br#"{"a" 1}"#, br#"{"a":1} x"#, br#"{"a":1,}"#] {
            assert!(decode_row(bad, &shared).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let key = decode_key(br#"[1, "b"]"#).unwrap();
        assert_eq!(key, [Datum::Integer(1), Datum::Text("b".into())]);
        assert_eq!(decode_key(b"{}").unwrap_err(), "key is not a JSON array");
    }

    /// Stamps rise by at least 1 ns a change and never fall below what was recorded.
    #[test]
    fn stamps_rise_above_the_floor_and_every_recorded_time() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        let floor = 1_000;
        conn.execute("UPDATE _extconn_clock SET floor = ?1", [floor]).unwrap();
        // Equal, rising, falling (a clock going back), below and far above the floor.
        let recorded = [5, 1_000, 1_000, 1_000, 2_000, 1_500, 1_500, 2_003, 10, 9_000, 9_000];
        for r in recorded {
            conn.execute(
                "INSERT INTO _extconn_changes (table_name, op, key, recorded)
                 VALUES ('t', 'insert', '[1]', ?1)",
                [r],
            )
            .unwrap();
        }
        // Some already stamped: stamping starts after them, from the floor.
        conn.execute("UPDATE _extconn_clock SET stamped_seq = 2", []).unwrap();
        let (last, got_floor) = stamp(&conn).unwrap();
        let stamps: Vec<i64> = (3..=last)
            .map(|seq| {
                let r = run_from(&conn, seq).unwrap().unwrap();
                assert!(r.first_seq <= seq);
                r.first_ts + (seq - r.first_seq)
            })
            .collect();
        let runs: i64 =
            conn.query_row("SELECT count(*) FROM _extconn_stamp_runs", [], |r| r.get(0)).unwrap();
        assert_eq!(stamps.len(), recorded.len() - 2);
        assert!(stamps[0] > floor, "{stamps:?}");
        for (ts, r) in stamps.iter().zip(&recorded[2..]) {
            assert!(ts >= r, "a stamp below its recorded time: {stamps:?}");
        }
        assert!(stamps.windows(2).all(|w| w[1] > w[0]), "{stamps:?}");
        let ts = *stamps.last().unwrap();
        assert_eq!((last, got_floor), (recorded.len() as i64, ts));
        assert_eq!(runs, 1, "one write stamps them all");
        assert_eq!(stamp(&conn).unwrap(), (last, ts), "nothing left to stamp");
    }

    /// A file stamped before `_extconn_stamps` existed keeps its stamps, and gets the table.
    #[test]
    fn stamps_in_the_changes_table_are_still_read() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)").unwrap();
        install(&conn, "t").unwrap();
        conn.execute_batch(
            "INSERT INTO t VALUES (1);
             DROP TABLE _extconn_stamps;
             UPDATE _extconn_changes SET ts = 42;
             UPDATE _extconn_clock SET stamped_seq = 1, floor = 42;
             INSERT INTO t VALUES (2);",
        )
        .unwrap();
        let batch = read_changes(&conn, &["t"], 0, 10).unwrap();
        let stamps: Vec<i64> = batch.changes.iter().map(|c| c.ts.wall_ns).collect();
        assert_eq!(stamps.len(), 2);
        assert_eq!(stamps[0], 42);
        assert!(stamps[1] > 42, "{stamps:?}");
        assert_eq!(gc(&conn, 2).unwrap(), 2);
        let left: i64 =
            conn.query_row("SELECT count(*) FROM _extconn_stamps", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0);
    }

    /// A file stamped one row per change (before runs) keeps those stamps; new changes are
    /// stamped in runs above them.
    #[test]
    fn stamps_of_one_change_each_are_still_read() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)").unwrap();
        install(&conn, "t").unwrap();
        conn.execute_batch(
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);
             INSERT INTO _extconn_stamps (seq, ts) VALUES (1, 77), (2, 78);
             UPDATE _extconn_clock SET stamped_seq = 2, floor = 78;
             INSERT INTO t VALUES (3);",
        )
        .unwrap();
        let stamps: Vec<i64> = read_changes(&conn, &["t"], 0, 10)
            .unwrap()
            .changes
            .iter()
            .map(|c| c.ts.wall_ns)
            .collect();
        assert_eq!(stamps[..2], [77, 78]);
        assert!(stamps[2] > 78, "{stamps:?}");
        // Read again from the middle: the same stamps.
        let again: Vec<i64> = read_changes(&conn, &["t"], 1, 10)
            .unwrap()
            .changes
            .iter()
            .map(|c| c.ts.wall_ns)
            .collect();
        assert_eq!(again, stamps[1..]);
        assert_eq!(gc(&conn, 3).unwrap(), 3);
        let left: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM _extconn_stamps) + (SELECT count(*) FROM _extconn_stamp_runs)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "garbage collection removes both kinds of stamps");
    }

    #[test]
    fn identifiers_and_literals_quote() {
        assert_eq!(ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(literal("it's"), "'it''s'");
    }
}
