//! Change capture on the SQLite databases and CockroachDB's changefeed message formats.
//!
//! * [`capture`]: triggers that record every insert, update and delete of a captured table in
//!   a changes table of the same database file, whoever writes (the extconn shell, another
//!   process, the `sqlite3` CLI); reading the changes in commit order with a monotonic
//!   [`Hlc`] timestamp each, resolved timestamps, garbage collection, and the keyset-paginated
//!   initial scan.
//! * [`envelope`]: the JSON key and value of each message, byte for byte as CockroachDB's
//!   `format = json` encoder writes them (`envelope = wrapped | bare | key_only | row`, `diff`,
//!   `updated`, `key_in_value`, `topic_in_value`), and the resolved messages.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use extconn_host::changefeed::{capture, envelope};
//!
//! let db = rusqlite::Connection::open_in_memory()?;
//! db.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")?;
//! let users = capture::install(&db, "users")?;
//! db.execute_batch("INSERT INTO users VALUES (1, 'ana'); DELETE FROM users")?;
//!
//! let batch = capture::read_changes(&db, &["users"], 0, 100)?;
//! let options = envelope::EncodeOptions::default();
//! let insert = batch.changes[0].event(&users, "users");
//! assert_eq!(envelope::encode_key(insert.key), b"[1]");
//! assert_eq!(
//!     envelope::encode_value(&options, &insert).as_deref(),
//!     Some(&br#"{"after": {"id": 1, "name": "ana"}}"#[..])
//! );
//! let delete = batch.changes[1].event(&users, "users");
//! assert_eq!(envelope::encode_value(&options, &delete).as_deref(), Some(&br#"{"after": null}"#[..]));
//! # Ok(())
//! # }
//! ```

use std::fmt;

pub mod capture;
pub mod envelope;
mod json;

pub use capture::{CaptureError, CapturedTable, Change, ChangeBatch, Op, Resolved, ScanRow};
pub use envelope::{EncodeOptions, Envelope, EnvelopeError, Event};

/// One SQLite value, with its storage class: SQLite types values, not columns.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// `NULL`.
    Null,
    /// An `INTEGER`.
    Integer(i64),
    /// A `REAL` (may be infinite; SQLite stores no NaN).
    Real(f64),
    /// `TEXT`.
    Text(String),
    /// A `BLOB`.
    Blob(Vec<u8>),
}

impl From<rusqlite::types::ValueRef<'_>> for Datum {
    fn from(value: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::ValueRef;
        match value {
            ValueRef::Null => Datum::Null,
            ValueRef::Integer(i) => Datum::Integer(i),
            ValueRef::Real(r) => Datum::Real(r),
            // SQLite does not check that TEXT is UTF-8; what is not is replaced, as
            // CockroachDB's JSON encoder replaces it.
            ValueRef::Text(t) => Datum::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Datum::Blob(b.to_vec()),
        }
    }
}

impl rusqlite::ToSql for Datum {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Datum::Null => ValueRef::Null,
            Datum::Integer(i) => ValueRef::Integer(*i),
            Datum::Real(r) => ValueRef::Real(*r),
            Datum::Text(t) => ValueRef::Text(t.as_bytes()),
            Datum::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// A column name, shared by every row of a batch that has it (one allocation per batch, not
/// one per row and column).
pub type Name = std::sync::Arc<str>;

/// A row image: every column of the table, in the table's column order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// Column name and value, in the table's order.
    pub columns: Vec<(Name, Datum)>,
}

impl Row {
    /// The value of column `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<&Datum> {
        self.columns.iter().find(|(n, _)| &**n == name).map(|(_, d)| d)
    }
}

/// A hybrid-logical-clock timestamp as CockroachDB prints it in `updated` and `resolved`:
/// nanoseconds since the Unix epoch, a dot, and the logical counter in ten digits
/// (`1700000000123456789.0000000000`). Ours is always logical 0: the wall time alone is
/// made strictly increasing (see [`capture`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Nanoseconds since the Unix epoch.
    pub wall_ns: i64,
    /// The logical counter.
    pub logical: i32,
}

impl Hlc {
    /// The timestamp at `wall_ns` nanoseconds, logical 0.
    pub fn from_nanos(wall_ns: i64) -> Self {
        Self { wall_ns, logical: 0 }
    }

    /// The wall clock now.
    pub fn now() -> Self {
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self::from_nanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:010}", self.wall_ns, self.logical)
    }
}

/// Stops capturing the tables of a changefeed that ended (its `payload`), where no unfinished
/// changefeed still captures them, so that a table nobody follows any more stops recording
/// its changes. A failure only leaves the capture in place, as it was; it is logged.
pub(crate) fn release(
    databases: &mut crate::databases::Databases,
    jobs: &crate::jobs::Jobs,
    payload: &str,
) {
    let payload: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let Some(database) = payload["database"].as_str() else { return };
    let Ok(conn) = databases.connection(database) else { return };
    for table in payload["tables"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
        let in_use = || jobs.captures(database, table).map_err(|e| e.message);
        match capture::release_if_unused(conn, table, in_use) {
            Ok(released) => tracing::debug!(database, table, released, "changefeed ended"),
            Err(e) => tracing::warn!(database, table, error = %e, "capture left in place"),
        }
    }
}
