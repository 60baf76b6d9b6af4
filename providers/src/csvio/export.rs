//! EXPORT INTO CSV: a table or a query's rows written as chunked CSV files.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::import::quote_ident;
use super::{Compression, Error, ExportOptions, Progress};
use crate::storage::Location;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportSource<'a> {
    /// `FROM TABLE name`: its columns as IMPORT INTO without a column list fills them.
    Table(&'a str),
    /// `FROM <select>`: any statement that only reads.
    Query(&'a str),
}

/// One written file: EXPORT's `filename, rows, bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedFile {
    /// The file's name, relative to the location.
    pub filename: String,
    /// Rows in it.
    pub rows: u64,
    /// Its size in bytes (compressed, with gzip).
    pub bytes: u64,
}

/// Exports `source` as CSV files under `location`, named as CockroachDB names them:
/// `export<32 hex>-n1.<chunk>.csv` (`.csv.gz` with gzip), chunks counted from 0, a new file
/// every `chunk_rows` rows or once a file reaches `chunk_size` bytes. No rows, no files.
///
/// Each file is uploaded as soon as it is full; a failed export leaves the files it wrote, as
/// CockroachDB's does. The future holds the query's cursor across its uploads, so it is not
/// `Send`: run it on the thread that owns the connection.
pub async fn export_csv(
    conn: &Connection,
    source: ExportSource<'_>,
    location: &Location,
    options: &ExportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<ExportedFile>, Error> {
    options.validate()?;
    let sql = match source {
        ExportSource::Table(table) => table_query(conn, table)?,
        ExportSource::Query(sql) => sql.to_owned(),
    };
    let mut statement = conn
        .prepare(&sql)
        .map_err(|source| Error::Sqlite { context: "preparing the export query", source })?;
    if !statement.readonly() {
        return Err(Error::NotAQuery);
    }
    let columns = statement.column_count();
    let mut rows = statement
        .query([])
        .map_err(|source| Error::Sqlite { context: "running the export query", source })?;

    let prefix = format!("export{}-n1", unique_id());
    let extension = match options.compression {
        Compression::None => "csv",
        Compression::Gzip => "csv.gz",
    };
    let format = Format::new(options);
    let mut files = Vec::new();
    let mut state = Progress::default();
    let mut chunk = Chunk::new(options.compression);
    let mut field = Vec::with_capacity(64);
    loop {
        let full = chunk.rows >= options.chunk_rows || chunk.len() >= options.chunk_size;
        let row = if full {
            None
        } else {
            rows.next().map_err(|source| Error::Sqlite { context: "reading a row", source })?
        };
        let Some(row) = row else {
            if chunk.rows == 0 {
                break;
            }
            let filename = format!("{prefix}.{}.{extension}", files.len());
            let rows_in_file = chunk.rows;
            let data = std::mem::replace(&mut chunk, Chunk::new(options.compression)).finish();
            let bytes = data.len() as u64;
            location.put(&filename, data).await?;
            state.bytes_done += bytes;
            state.rows += rows_in_file;
            state.files_done += 1;
            progress(state);
            files.push(ExportedFile { filename, rows: rows_in_file, bytes });
            if full {
                continue;
            }
            break;
        };
        for i in 0..columns {
            let value = row
                .get_ref(i)
                .map_err(|source| Error::Sqlite { context: "reading a value", source })?;
            if i > 0 {
                chunk.write(&format.delimiter);
            }
            format.field(value, &mut field)?;
            chunk.write(&field);
        }
        chunk.write(b"\n");
        chunk.rows += 1;
    }
    Ok(files)
}

/// `SELECT "a", "b" FROM "t"`: the columns IMPORT INTO fills without a column list (generated
/// columns left out).
fn table_query(conn: &Connection, table: &str) -> Result<String, Error> {
    let sqlite = |context| move |source| Error::Sqlite { context, source };
    let name: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_schema \
             WHERE name = ?1 COLLATE NOCASE AND type IN ('table', 'view')",
            [table],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(sqlite("looking up the table"))?;
    let Some(name) = name else {
        return Err(Error::UndefinedTable { table: table.to_owned() });
    };
    let mut statement = conn
        .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(sqlite("reading the table's columns"))?;
    let columns: Vec<String> = statement
        .query_map([&name], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect)
        .map_err(sqlite("reading the table's columns"))?;
    let columns: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    Ok(format!("SELECT {} FROM {}", columns.join(", "), quote_ident(&name)))
}

/// `<16 hex of the time><16 hex of process and sequence>`: CockroachDB's export names carry a
/// 32-hex id unique to the run.
fn unique_id() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:016x}{:016x}", (u64::from(std::process::id()) << 32) | (sequence & 0xffff_ffff))
}

/// How values become fields.
struct Format {
    delimiter: Vec<u8>,
    nullas: Option<Vec<u8>>,
}

impl Format {
    fn new(options: &ExportOptions) -> Self {
        let mut buf = [0; 4];
        Self {
            delimiter: options.delimiter.encode_utf8(&mut buf).as_bytes().to_vec(),
            nullas: options.nullas.as_ref().map(|s| s.as_bytes().to_vec()),
        }
    }

    /// Writes `value` as one CSV field (quoted if need be) into `out`, replacing its content.
    fn field(&self, value: ValueRef<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        let mut text = Vec::new();
        let raw: &[u8] = match value {
            ValueRef::Null => {
                let nullas = self.nullas.as_deref().ok_or(Error::NullWithoutNullas)?;
                // Unquoted, so that IMPORT's nullif matches it; quoted only if it must be.
                if self.breaks_syntax(nullas) {
                    quote(nullas, out);
                } else {
                    out.extend_from_slice(nullas);
                }
                return Ok(());
            }
            ValueRef::Integer(n) => {
                let _ = write!(text, "{n}");
                &text
            }
            ValueRef::Real(x) => {
                if x.is_infinite() {
                    text.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
                } else {
                    // Debug is the shortest form that reads back to the same f64, and keeps a
                    // `.0` so that the value stays a real.
                    let _ = write!(text, "{x:?}");
                }
                &text
            }
            ValueRef::Text(s) => s,
            ValueRef::Blob(b) => {
                text.reserve(2 + 2 * b.len());
                text.extend_from_slice(b"\\x");
                for byte in b {
                    let _ = write!(text, "{byte:02x}");
                }
                &text
            }
        };
        let ambiguous = raw.is_empty()
            || self.nullas.as_deref() == Some(raw)
            || raw.first().is_some_and(|c| c.is_ascii_whitespace())
            || raw.last().is_some_and(|c| c.is_ascii_whitespace());
        if ambiguous || self.breaks_syntax(raw) {
            quote(raw, out);
        } else {
            out.extend_from_slice(raw);
        }
        Ok(())
    }

    /// Whether `raw` unquoted would not read back as one field.
    fn breaks_syntax(&self, raw: &[u8]) -> bool {
        raw.iter().any(|&c| c == b'"' || c == b'\n' || c == b'\r')
            || raw.windows(self.delimiter.len()).any(|w| w == self.delimiter.as_slice())
    }
}

fn quote(raw: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in raw {
        if c == b'"' {
            out.push(b'"');
        }
        out.push(c);
    }
    out.push(b'"');
}

/// The file being filled.
struct Chunk {
    sink: Sink,
    rows: u64,
}

enum Sink {
    Plain(Vec<u8>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Chunk {
    fn new(compression: Compression) -> Self {
        let sink = match compression {
            Compression::None => Sink::Plain(Vec::new()),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            )),
        };
        Self { sink, rows: 0 }
    }

    fn write(&mut self, bytes: &[u8]) {
        match &mut self.sink {
            Sink::Plain(out) => out.extend_from_slice(bytes),
            // Writing into a Vec cannot fail.
            Sink::Gzip(encoder) => {
                let _ = encoder.write_all(bytes);
            }
        }
    }

    /// Bytes so far (compressed bytes lag behind what was written).
    fn len(&self) -> u64 {
        match &self.sink {
            Sink::Plain(out) => out.len() as u64,
            Sink::Gzip(encoder) => encoder.get_ref().len() as u64,
        }
    }

    fn finish(self) -> Vec<u8> {
        match self.sink {
            Sink::Plain(out) => out,
            // Finishing into a Vec cannot fail; an empty Vec would be caught by the import.
            Sink::Gzip(encoder) => encoder.finish().unwrap_or_default(),
        }
    }
}
