//! IMPORT INTO … CSV DATA and EXPORT INTO CSV on SQLite databases, with CockroachDB's options.
//!
//! [`import_csv`] streams CSV files from [`Location`]s into an existing table in one
//! transaction: any bad row imports nothing, and its error names the file, the row, the
//! physical line and the column. [`export_csv`] writes a table or a query's result as
//! `export<32 hex>-n1.<chunk>.csv` files, split every `chunk_rows` rows or `chunk_size` bytes.
//!
//! What a field means, on import (as CockroachDB's CSV reader):
//! * an **unquoted** field equal to `nullif` (default `''`: an empty unquoted field) is NULL; a
//!   quoted one is a string, unless `allow_quoted_null`;
//! * SQLite is loosely typed, so values are checked by the column's type affinity: a column of
//!   INTEGER affinity takes integers (or, as SQLite does, a real, e.g. `1.5` or `1e3`), REAL
//!   affinity reals (`Infinity`, `-inf` included, NaN refused); anything else there is a bad row.
//!   A declared `BLOB` column decodes `\x<hex>` to bytes (CockroachDB's BYTES form) and takes
//!   other text as its UTF-8 bytes. TEXT, NUMERIC (DECIMAL, BOOLEAN, DATE, …) and untyped columns
//!   take the text as SQLite would (NUMERIC converts numeric-looking text itself).
//! * a NULL for a `NOT NULL` column, and every constraint SQLite enforces on INSERT, fails the
//!   row.
//!
//! On export, integers are written in decimal, reals in the shortest form that reads back to
//! the same `f64` (`Infinity`/`-Infinity` for infinities), text as is, blobs as `\x<hex>`, and
//! NULL as `nullas` (without `nullas`, a NULL fails the export, as in CockroachDB). A field is
//! quoted when it must be (delimiter, quote, `\r`, `\n`), when it is empty, when it equals
//! `nullas`, or when it has leading or trailing whitespace, so that EXPORT … WITH nullas = X then
//! IMPORT … WITH nullif = X gives back exactly what was exported (for declared-type columns).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use extconn_providers::csvio::{self, ExportOptions, ExportSource, ImportOptions, Source};
//! use extconn_providers::{Config, Target, storage};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
//! let location = storage::open(&config, &Target::new("nodelocal", "1", "export"))?;
//! let mut db = rusqlite::Connection::open_in_memory()?;
//! db.execute_batch("CREATE TABLE t (id INTEGER, name TEXT); INSERT INTO t VALUES (1, 'a,b');")?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let options = ExportOptions { nullas: Some(String::new()), ..ExportOptions::default() };
//!     let files =
//!         csvio::export_csv(&db, ExportSource::Table("t"), &location, &options, &mut |_| {})
//!             .await?;
//!     assert_eq!(location.get(&files[0].filename).await?, b"1,\"a,b\"\n");
//!
//!     db.execute_batch("DELETE FROM t")?;
//!     let sources: Vec<Source> = files
//!         .iter()
//!         .map(|f| Source {
//!             location: location.clone(),
//!             key: f.filename.clone(),
//!             display: format!("nodelocal://1/export/{}", f.filename),
//!         })
//!         .collect();
//!     let options = ImportOptions::default();
//!     let summary =
//!         csvio::import_csv(&mut db, "t", None, &sources, &options, &mut |_| {}).await?;
//!     assert_eq!(summary.rows, 1);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod export;
mod import;
mod reader;

use std::fmt;

pub use export::{ExportSource, ExportedFile, export_csv};
pub use import::{ImportSummary, Source, import_csv};

/// Options of IMPORT INTO … CSV DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The field separator (`delimiter`); default `,`.
    pub delimiter: char,
    /// Lines starting with this character are skipped (`comment`).
    pub comment: Option<char>,
    /// The unquoted value that is NULL (`nullif`); `None` is CockroachDB's default, the empty
    /// string.
    pub nullif: Option<String>,
    /// Quoted values equal to `nullif` are NULL too (`allow_quoted_null`).
    pub allow_quoted_null: bool,
    /// Records to skip at the start of each file (`skip`), e.g. 1 for a header.
    pub skip: u64,
    /// Stray quotes are errors rather than data (`strict_quotes`).
    pub strict_quotes: bool,
    /// At most this many rows from each file (`row_limit`).
    pub row_limit: Option<u64>,
    /// How files are decompressed (`decompress`).
    pub decompress: Decompress,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            delimiter: ',',
            comment: None,
            nullif: None,
            allow_quoted_null: false,
            skip: 0,
            strict_quotes: false,
            row_limit: None,
            decompress: Decompress::Auto,
        }
    }
}

/// The `decompress` option of IMPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decompress {
    /// By file name: `.gz` is gzip, `.bz`/`.bz2` bzip2 (unsupported), anything else plain.
    #[default]
    Auto,
    /// Every file is gzip.
    Gzip,
    /// bzip2: not supported, rejected as an option.
    Bzip,
    /// No decompression.
    None,
}

impl ImportOptions {
    /// Options from `WITH key [= value], …` as the statement gave them.
    pub fn from_pairs(pairs: &[(String, Option<String>)]) -> Result<Self, Error> {
        let mut options = Self::default();
        for (key, value) in pairs {
            let key = key.to_ascii_lowercase();
            let value = value.as_deref();
            match key.as_str() {
                "delimiter" => options.delimiter = one_char(&key, value)?,
                "comment" => options.comment = Some(one_char(&key, value)?),
                "nullif" => options.nullif = Some(required(&key, value)?.to_owned()),
                "allow_quoted_null" => options.allow_quoted_null = flag(&key, value)?,
                "strict_quotes" => options.strict_quotes = flag(&key, value)?,
                "skip" => options.skip = integer(&key, value, 0)?,
                "row_limit" => options.row_limit = Some(integer(&key, value, 1)?),
                "decompress" => {
                    options.decompress = match required(&key, value)?.to_ascii_lowercase().as_str()
                    {
                        "auto" => Decompress::Auto,
                        "gzip" | "gz" => Decompress::Gzip,
                        "bzip" | "bzip2" | "bz2" => Decompress::Bzip,
                        "none" => Decompress::None,
                        other => {
                            return Err(invalid(
                                &key,
                                format!("unsupported compression codec {other:?}"),
                            ));
                        }
                    }
                }
                _ => return Err(Error::UnknownOption { option: key }),
            }
        }
        options.validate()?;
        Ok(options)
    }

    /// Checks the combination: separators that cannot be told apart are refused.
    pub fn validate(&self) -> Result<(), Error> {
        check_separator("delimiter", self.delimiter)?;
        if let Some(comment) = self.comment {
            check_separator("comment", comment)?;
            if comment == self.delimiter {
                return Err(invalid("comment", "must differ from the delimiter".into()));
            }
        }
        if self.decompress == Decompress::Bzip {
            return Err(Error::Unsupported { what: "bzip2 decompression" });
        }
        if self.row_limit == Some(0) {
            return Err(invalid("row_limit", "must be a positive integer".into()));
        }
        Ok(())
    }
}

/// Options of EXPORT INTO CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The field separator (`delimiter`); default `,`.
    pub delimiter: char,
    /// How NULL is written (`nullas`); without it a NULL fails the export, as in CockroachDB.
    pub nullas: Option<String>,
    /// Rows per file (`chunk_rows`); default 100000.
    pub chunk_rows: u64,
    /// Target bytes per file (`chunk_size`), checked before each row; default 32 MiB.
    pub chunk_size: u64,
    /// `compression = gzip` writes `….csv.gz` files.
    pub compression: Compression,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            delimiter: ',',
            nullas: None,
            chunk_rows: 100_000,
            chunk_size: 32 << 20,
            compression: Compression::None,
        }
    }
}

/// The `compression` option of EXPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain `.csv` files.
    #[default]
    None,
    /// `.csv.gz` files.
    Gzip,
}

impl ExportOptions {
    /// Options from `WITH key [= value], …` as the statement gave them.
    pub fn from_pairs(pairs: &[(String, Option<String>)]) -> Result<Self, Error> {
        let mut options = Self::default();
        for (key, value) in pairs {
            let key = key.to_ascii_lowercase();
            let value = value.as_deref();
            match key.as_str() {
                "delimiter" => options.delimiter = one_char(&key, value)?,
                "nullas" => options.nullas = Some(required(&key, value)?.to_owned()),
                "chunk_rows" => options.chunk_rows = integer(&key, value, 1)?,
                "chunk_size" => options.chunk_size = byte_size(&key, required(&key, value)?)?,
                "compression" => {
                    options.compression = match required(&key, value)?.to_ascii_lowercase().as_str()
                    {
                        "gzip" => Compression::Gzip,
                        "none" => Compression::None,
                        other => {
                            return Err(invalid(
                                &key,
                                format!("unsupported compression codec {other:?}"),
                            ));
                        }
                    }
                }
                _ => return Err(Error::UnknownOption { option: key }),
            }
        }
        options.validate()?;
        Ok(options)
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), Error> {
        check_separator("delimiter", self.delimiter)?;
        if self.chunk_rows == 0 {
            return Err(invalid("chunk_rows", "must be a positive integer".into()));
        }
        if self.chunk_size == 0 {
            return Err(invalid("chunk_size", "must be a positive size".into()));
        }
        Ok(())
    }
}

/// How far an import or export is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Bytes read from (import) or written to (export) storage so far.
    pub bytes_done: u64,
    /// All the bytes to read, when known (import: the files' sizes; export: unknown).
    pub bytes_total: Option<u64>,
    /// Rows imported or exported so far.
    pub rows: u64,
    /// Files finished so far.
    pub files_done: usize,
}

/// A failed import or export. Messages name files by their display form, never with secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option's value cannot be used.
    #[error("invalid {option} option: {reason}")]
    InvalidOption {
        /// The option's name.
        option: String,
        /// Why.
        reason: String,
    },
    /// An option this statement does not have.
    #[error("unsupported option {option:?}")]
    UnknownOption {
        /// The option's name, lower-cased.
        option: String,
    },
    /// Something CockroachDB offers that extconn does not.
    #[error("{what} is not supported")]
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// The target or source table does not exist.
    #[error("relation \"{table}\" does not exist")]
    UndefinedTable {
        /// The name as given.
        table: String,
    },
    /// The name is a view (or another object), not a table.
    #[error("\"{name}\" is not a table")]
    NotATable {
        /// The name as given.
        name: String,
    },
    /// A column of the column list is not in the table.
    #[error("column \"{column}\" does not exist")]
    UndefinedColumn {
        /// The name as given.
        column: String,
    },
    /// A column appears twice in the column list.
    #[error("multiple assignments to the same column \"{column}\"")]
    DuplicateColumn {
        /// The name as given.
        column: String,
    },
    /// A row of an imported file is bad; nothing was imported.
    #[error(transparent)]
    BadRow(Box<RowError>),
    /// A file could not be decompressed.
    #[error("{file}: cannot decompress: {source}")]
    Decompress {
        /// The file's display form.
        file: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// EXPORT met a NULL without `nullas`.
    #[error(
        "NULL value encountered during EXPORT, use `WITH nullas` to specify the string \
         representation of NULL"
    )]
    NullWithoutNullas,
    /// EXPORT's query is not a read-only statement.
    #[error("EXPORT accepts only a query that reads (SELECT, VALUES, WITH … SELECT)")]
    NotAQuery,
    /// Reading or writing storage failed (boxed: the storage error is large).
    #[error(transparent)]
    Storage(Box<crate::Error>),
    /// SQLite refused something other than a row.
    #[error("{context}: {source}")]
    Sqlite {
        /// What was being done.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl From<crate::Error> for Error {
    fn from(error: crate::Error) -> Self {
        Self::Storage(Box::new(error))
    }
}

impl Error {
    /// The SQLSTATE a SQL client should see.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::InvalidOption { .. } | Self::UnknownOption { .. } => "22023",
            Self::Unsupported { .. } => "0A000",
            Self::UndefinedTable { .. } => "42P01",
            Self::NotATable { .. } => "42809",
            Self::UndefinedColumn { .. } => "42703",
            Self::DuplicateColumn { .. } => "42701",
            Self::BadRow(row) => row.problem.sqlstate(),
            Self::Decompress { .. } => "22P04",
            Self::NullWithoutNullas => "22004",
            Self::NotAQuery => "42601",
            Self::Storage(e) => match e.kind() {
                crate::ErrorKind::InvalidArgument => "22023",
                crate::ErrorKind::NotFound => "58P01",
                crate::ErrorKind::AlreadyExists => "58P02",
                crate::ErrorKind::PermissionDenied => "42501",
                crate::ErrorKind::Unsupported => "0A000",
                crate::ErrorKind::Unavailable | crate::ErrorKind::Internal => "58030",
            },
            Self::Sqlite { source, .. } => sqlite_sqlstate(source),
        }
    }

    /// The message with its whole chain of causes, `a: b: c`.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        // `transparent` variants show their source's text already: skip it once.
        if matches!(self, Self::Storage(_) | Self::BadRow(_)) {
            source = source.and_then(|s| s.source());
        }
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

/// A bad row: where it is and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The file's display form (no secrets).
    pub file: String,
    /// 1-based record number in the file, counting skipped records but not comments, as
    /// CockroachDB's `error parsing row N`.
    pub row: u64,
    /// 1-based physical line in the file where the offending field (or the record) starts.
    pub line: u64,
    /// 1-based field number in the record, when one field is at fault.
    pub field: Option<usize>,
    /// The column that field goes to, when known.
    pub column: Option<String>,
    /// What is wrong.
    pub problem: RowProblem,
}

impl std::error::Error for RowError {}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error parsing row {}: {} (file {}, line {}",
            self.row, self.problem, self.file, self.line
        )?;
        if let Some(field) = self.field {
            write!(f, ", field {field}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column \"{column}\"")?;
        }
        f.write_str(")")
    }
}

/// What is wrong with a bad row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowProblem {
    /// Not as many fields as columns.
    FieldCount {
        /// Columns to fill.
        expected: usize,
        /// Fields found.
        got: usize,
    },
    /// Malformed CSV (with `strict_quotes`).
    Syntax {
        /// Go's `encoding/csv` wording.
        message: &'static str,
    },
    /// The field is not UTF-8.
    InvalidUtf8,
    /// The value does not fit the column's type.
    InvalidValue {
        /// The value, shortened to 100 characters.
        value: String,
        /// The column's declared type.
        type_name: String,
    },
    /// NULL for a NOT NULL column.
    NotNull,
    /// SQLite refused the row (a constraint).
    Rejected {
        /// SQLite's message.
        message: String,
        /// Its SQLSTATE.
        sqlstate: &'static str,
    },
}

impl RowProblem {
    /// The SQLSTATE a SQL client should see.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::FieldCount { .. } | Self::Syntax { .. } => "22P04",
            Self::InvalidUtf8 => "22021",
            Self::InvalidValue { .. } => "22P02",
            Self::NotNull => "23502",
            Self::Rejected { sqlstate, .. } => sqlstate,
        }
    }
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldCount { expected, got } => {
                write!(f, "expected {expected} fields, got {got}")
            }
            Self::Syntax { message } => f.write_str(message),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Self::InvalidValue { value, type_name } => {
                write!(f, "could not parse {value:?} as type {type_name}")
            }
            Self::NotNull => f.write_str("null value violates not-null constraint"),
            Self::Rejected { message, .. } => f.write_str(message),
        }
    }
}

/// SQLSTATE for a SQLite error: constraints as PostgreSQL names them, else by message.
fn sqlite_sqlstate(error: &rusqlite::Error) -> &'static str {
    use rusqlite::ffi;
    if let rusqlite::Error::SqlInputError { msg, .. } = error {
        return sqlite_message_sqlstate(msg).unwrap_or("42601");
    }
    if let rusqlite::Error::SqliteFailure(e, message) = error {
        match e.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => return "23505",
            ffi::SQLITE_CONSTRAINT_NOTNULL => return "23502",
            ffi::SQLITE_CONSTRAINT_CHECK => return "23514",
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return "23503",
            ffi::SQLITE_CONSTRAINT_DATATYPE => return "22P02",
            _ => {}
        }
        if let Some(sqlstate) = sqlite_message_sqlstate(message.as_deref().unwrap_or("")) {
            return sqlstate;
        }
        if e.code == ffi::ErrorCode::ConstraintViolation {
            return "23000";
        }
    }
    "XX000"
}

fn sqlite_message_sqlstate(message: &str) -> Option<&'static str> {
    if message.contains("syntax error") || message.contains("incomplete input") {
        Some("42601")
    } else if message.starts_with("no such table") {
        Some("42P01")
    } else if message.starts_with("no such column") {
        Some("42703")
    } else {
        None
    }
}

fn invalid(option: &str, reason: String) -> Error {
    Error::InvalidOption { option: option.to_owned(), reason }
}

fn required<'a>(option: &str, value: Option<&'a str>) -> Result<&'a str, Error> {
    value.ok_or_else(|| invalid(option, "needs a value".into()))
}

fn one_char(option: &str, value: Option<&str>) -> Result<char, Error> {
    let value = required(option, value)?;
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(invalid(option, format!("must be exactly one character, not {value:?}"))),
    }
}

fn flag(option: &str, value: Option<&str>) -> Result<bool, Error> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(invalid(option, "takes no value".into())),
    }
}

fn integer(option: &str, value: Option<&str>, min: u64) -> Result<u64, Error> {
    let value = required(option, value)?;
    match value.trim().parse::<u64>() {
        Ok(n) if n >= min => Ok(n),
        _ if min == 0 => {
            Err(invalid(option, format!("must be a non-negative integer, not {value:?}")))
        }
        _ => Err(invalid(option, format!("must be a positive integer, not {value:?}"))),
    }
}

/// `10MB`, `32MiB`, `1024`: decimal (`KB`, `MB`, `GB`) and binary (`KiB`, …) units.
fn byte_size(option: &str, value: &str) -> Result<u64, Error> {
    let text = value.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        _ => return Err(invalid(option, format!("cannot read {value:?} as a size"))),
    };
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(multiplier)) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(invalid(option, format!("cannot read {value:?} as a positive size"))),
    }
}

fn check_separator(option: &str, c: char) -> Result<(), Error> {
    if matches!(c, '"' | '\r' | '\n' | '\u{FFFD}') {
        return Err(invalid(option, format!("{c:?} cannot separate fields")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = Vec<(&'a str, Option<&'a str>)>;

    fn pairs(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        list.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect()
    }

    #[test]
    fn import_options_parse() {
        let ok = ImportOptions::from_pairs(&pairs(&[
            ("delimiter", Some("\t")),
            ("comment", Some("#")),
            ("nullif", Some("")),
            ("skip", Some("2")),
            ("row_limit", Some("10")),
            ("strict_quotes", None),
            ("allow_quoted_null", None),
            ("decompress", Some("gzip")),
        ]))
        .unwrap();
        let want = ImportOptions {
            delimiter: '\t',
            comment: Some('#'),
            nullif: Some(String::new()),
            allow_quoted_null: true,
            skip: 2,
            strict_quotes: true,
            row_limit: Some(10),
            decompress: Decompress::Gzip,
        };
        assert_eq!(ok, want);

        let bad: Vec<(Pairs<'_>, &str)> = vec![
            (
                vec![("delimiter", Some("ab"))],
                "invalid delimiter option: must be exactly one character, not \"ab\"",
            ),
            (
                vec![("delimiter", Some(""))],
                "invalid delimiter option: must be exactly one character, not \"\"",
            ),
            (
                vec![("delimiter", Some("\""))],
                "invalid delimiter option: '\"' cannot separate fields",
            ),
            (
                vec![("comment", Some(","))],
                "invalid comment option: must differ from the delimiter",
            ),
            (
                vec![("skip", Some("-1"))],
                "invalid skip option: must be a non-negative integer, not \"-1\"",
            ),
            (
                vec![("row_limit", Some("0"))],
                "invalid row_limit option: must be a positive integer, not \"0\"",
            ),
            (vec![("decompress", Some("bzip"))], "bzip2 decompression is not supported"),
            (
                vec![("decompress", Some("zstd"))],
                "invalid decompress option: unsupported compression codec \"zstd\"",
            ),
            (vec![("nullif", None)], "invalid nullif option: needs a value"),
            (vec![("fields_enclosed_by", Some("'"))], "unsupported option \"fields_enclosed_by\""),
        ];
        for (input, message) in bad {
            let err = ImportOptions::from_pairs(&pairs(&input)).unwrap_err();
            assert_eq!(err.to_string(), message, "{input:?}");
        }
    }

    #[test]
    fn export_options_parse() {
        let ok = ExportOptions::from_pairs(&pairs(&[
            ("delimiter", Some("|")),
            ("nullas", Some("NULL")),
            ("chunk_rows", Some("5000")),
            ("chunk_size", Some("10MB")),
            ("compression", Some("gzip")),
        ]))
        .unwrap();
        assert_eq!(
            ok,
            ExportOptions {
                delimiter: '|',
                nullas: Some("NULL".into()),
                chunk_rows: 5000,
                chunk_size: 10_000_000,
                compression: Compression::Gzip,
            }
        );
        let sizes = [("1024", 1024), ("32MiB", 32 << 20), ("1 kb", 1000), ("2GiB", 2 << 30)];
        for (text, n) in sizes {
            assert_eq!(byte_size("chunk_size", text).unwrap(), n, "{text}");
        }
        let bad: Vec<(Pairs<'_>, &str)> = vec![
            (
                vec![("chunk_rows", Some("0"))],
                "invalid chunk_rows option: must be a positive integer, not \"0\"",
            ),
            (
                vec![("chunk_size", Some("lots"))],
                "invalid chunk_size option: cannot read \"lots\" as a size",
            ),
            (
                vec![("compression", Some("snappy"))],
                "invalid compression option: unsupported compression codec \"snappy\"",
            ),
            (vec![("skip", Some("1"))], "unsupported option \"skip\""),
        ];
        for (input, message) in bad {
            let err = ExportOptions::from_pairs(&pairs(&input)).unwrap_err();
            assert_eq!(err.to_string(), message, "{input:?}");
        }
    }
}
