//! IMPORT INTO: CSV files streamed into an existing table, in one transaction.

use std::io::Write as _;

use futures::TryStreamExt;
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::reader::{Dialect, Field, Flow, ParseOrHandler, Parser, Record};
use super::{Decompress, Error, ImportOptions, Progress, RowError, RowProblem};
use crate::storage::Location;

/// One file to import.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where it is.
    pub location: Location,
    /// Its key relative to `location` (`""` when the location is the file itself).
    pub key: String,
    /// How errors name it, e.g. `nodelocal://1/import/users.csv`: never with secrets.
    pub display: String,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportSummary {
    /// Rows inserted.
    pub rows: u64,
    /// Bytes read from storage (compressed bytes for compressed files).
    pub bytes: u64,
    /// Files read.
    pub files: usize,
}

/// Imports `sources` into `table` (all its columns in order, or `columns`) in one transaction:
/// on any error nothing is inserted. `progress` is called after every chunk read.
///
/// The future holds only `&mut Connection` across its awaits, so it is `Send`; the inserts run
/// between awaits, on the calling task.
pub async fn import_csv(
    conn: &mut Connection,
    table: &str,
    columns: Option<&[String]>,
    sources: &[Source],
    options: &ImportOptions,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<ImportSummary, Error> {
    options.validate()?;
    let target = Target::resolve(conn, table, columns)?;
    let codecs = sources
        .iter()
        .map(|source| codec(options.decompress, source))
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0;
    for source in sources {
        total += source.location.size(&source.key).await?;
    }
    let mut state = Progress { bytes_total: Some(total), ..Progress::default() };
    progress(state);

    let savepoint = Savepoint::begin(conn)?;
    for (source, gzip) in sources.iter().zip(codecs) {
        let rows_before = state.rows;
        let mut file = FileImport::new(&target, options, source);
        let mut decoder = gzip.then(|| flate2::write::MultiGzDecoder::new(Vec::new()));
        let mut stream = source.location.get_stream(&source.key).await?;
        while let Some(chunk) = stream.try_next().await? {
            state.bytes_done += chunk.len() as u64;
            let flow = match &mut decoder {
                Some(decoder) => {
                    decoder.write_all(&chunk).map_err(|e| file.decompress_error(e))?;
                    let flow = file.feed(savepoint.conn(), decoder.get_ref())?;
                    decoder.get_mut().clear();
                    flow
                }
                None => file.feed(savepoint.conn(), &chunk)?,
            };
            state.rows = rows_before + file.inserted;
            progress(state);
            if flow == Flow::Stop {
                break;
            }
        }
        if let Some(decoder) = &mut decoder {
            decoder.try_finish().map_err(|e| file.decompress_error(e))?;
            file.feed(savepoint.conn(), decoder.get_ref())?;
        }
        file.finish(savepoint.conn())?;
        state.rows = rows_before + file.inserted;
        state.files_done += 1;
        progress(state);
    }
    savepoint.commit()?;
    Ok(ImportSummary { rows: state.rows, bytes: state.bytes_done, files: sources.len() })
}

/// Whether `source` is gzip (`true`) or plain.
fn codec(decompress: Decompress, source: &Source) -> Result<bool, Error> {
    let name = source.key.to_ascii_lowercase();
    match decompress {
        Decompress::Gzip => Ok(true),
        Decompress::None => Ok(false),
        Decompress::Bzip => Err(Error::Unsupported { what: "bzip2 decompression" }),
        Decompress::Auto if name.ends_with(".gz") => Ok(true),
        Decompress::Auto if name.ends_with(".bz") || name.ends_with(".bz2") => {
            Err(Error::Unsupported { what: "bzip2 decompression" })
        }
        Decompress::Auto => Ok(false),
    }
}

/// The import's table and the columns the fields fill, in field order.
#[derive(Debug)]
struct Target {
    table: String,
    columns: Vec<Column>,
    insert: String,
}

#[derive(Debug)]
struct Column {
    name: String,
    declared: String,
    affinity: Affinity,
    not_null: bool,
}

/// SQLite's type affinity (§3.1 of its datatype documentation), with a declared `BLOB` told
/// apart from no type at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affinity {
    Integer,
    Text,
    Blob,
    Untyped,
    Real,
    Numeric,
}

impl Affinity {
    fn of(declared: &str) -> Self {
        let t = declared.to_ascii_uppercase();
        if t.contains("INT") {
            Self::Integer
        } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
            Self::Text
        } else if t.contains("BLOB") {
            Self::Blob
        } else if t.trim().is_empty() {
            Self::Untyped
        } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
            Self::Real
        } else {
            Self::Numeric
        }
    }
}

impl Target {
    fn resolve(conn: &Connection, table: &str, columns: Option<&[String]>) -> Result<Self, Error> {
        let sqlite = |context| move |source| Error::Sqlite { context, source };
        let found: Option<(String, String)> = conn
            .query_row(
                "SELECT name, type FROM sqlite_schema \
                 WHERE name = ?1 COLLATE NOCASE AND type IN ('table', 'view')",
                [table],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(sqlite("looking up the table"))?;
        let name = match found {
            None => return Err(Error::UndefinedTable { table: table.to_owned() }),
            Some((_, kind)) if kind != "table" => {
                return Err(Error::NotATable { name: table.to_owned() });
            }
            Some((name, _)) => name,
        };
        let mut statement = conn
            .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(sqlite("reading the table's columns"))?;
        let all: Vec<Column> = statement
            .query_map([&name], |row| {
                let declared: String = row.get(1)?;
                Ok(Column {
                    name: row.get(0)?,
                    affinity: Affinity::of(&declared),
                    declared,
                    not_null: row.get(2)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(sqlite("reading the table's columns"))?;
        let columns = match columns {
            None => all,
            Some(wanted) => {
                let mut picked: Vec<Column> = Vec::with_capacity(wanted.len());
                for want in wanted {
                    let Some(column) = all.iter().find(|c| c.name.eq_ignore_ascii_case(want))
                    else {
                        return Err(Error::UndefinedColumn { column: want.clone() });
                    };
                    if picked.iter().any(|c| c.name == column.name) {
                        return Err(Error::DuplicateColumn { column: want.clone() });
                    }
                    picked.push(Column {
                        name: column.name.clone(),
                        declared: column.declared.clone(),
                        affinity: column.affinity,
                        not_null: column.not_null,
                    });
                }
                picked
            }
        };
        let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        let params: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote_ident(&name),
            names.join(", "),
            params.join(", ")
        );
        Ok(Self { table: name, columns, insert })
    }
}

/// `"name"`, with inner quotes doubled.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One file's parse and insert state.
struct FileImport<'a> {
    target: &'a Target,
    options: &'a ImportOptions,
    source: &'a Source,
    parser: Parser,
    nullif: &'a [u8],
    /// Records seen, skipped ones included (CockroachDB's row number).
    records: u64,
    inserted: u64,
}

impl<'a> FileImport<'a> {
    fn new(target: &'a Target, options: &'a ImportOptions, source: &'a Source) -> Self {
        let mut buf = [0; 4];
        let dialect = Dialect {
            delimiter: options.delimiter.encode_utf8(&mut buf).as_bytes().to_vec(),
            comment: options.comment.map(|c| c.encode_utf8(&mut [0; 4]).as_bytes().to_vec()),
            strict_quotes: options.strict_quotes,
            blank_line_is_record: target.columns.len() == 1,
        };
        Self {
            target,
            options,
            source,
            parser: Parser::new(dialect),
            nullif: options.nullif.as_deref().unwrap_or("").as_bytes(),
            records: 0,
            inserted: 0,
        }
    }

    fn feed(&mut self, conn: &Connection, input: &[u8]) -> Result<Flow, Error> {
        self.parse(conn, Some(input))
    }

    fn finish(&mut self, conn: &Connection) -> Result<(), Error> {
        self.parse(conn, None).map(drop)
    }

    /// Hands `input` (or, at the end of the file, what the parser still holds) to the parser,
    /// inserting each record it completes.
    fn parse(&mut self, conn: &Connection, input: Option<&[u8]>) -> Result<Flow, Error> {
        let mut insert = conn
            .prepare_cached(&self.target.insert)
            .map_err(|source| Error::Sqlite { context: "preparing the INSERT", source })?;
        let mut rows = RowSink {
            target: self.target,
            options: self.options,
            file: &self.source.display,
            nullif: self.nullif,
            records: &mut self.records,
            inserted: &mut self.inserted,
            insert: &mut insert,
        };
        let mut on_record = |record: Record<'_>| rows.insert(record);
        let result = match input {
            Some(input) => self.parser.feed(input, &mut on_record),
            None => self.parser.finish(&mut on_record).map(|()| Flow::Stop),
        };
        result.map_err(|e| self.fail(e))
    }

    fn fail(&self, error: ParseOrHandler<Error>) -> Error {
        match error {
            ParseOrHandler::Handler(e) => e,
            ParseOrHandler::Parse(e) => Error::BadRow(Box::new(RowError {
                file: self.source.display.clone(),
                row: self.records + 1,
                line: e.line,
                field: Some(e.field),
                column: self.target.columns.get(e.field - 1).map(|c| c.name.clone()),
                problem: RowProblem::Syntax { message: e.message },
            })),
        }
    }

    fn decompress_error(&self, source: std::io::Error) -> Error {
        Error::Decompress { file: self.source.display.clone(), source }
    }
}

/// Turns records into INSERTs.
struct RowSink<'a, 's> {
    target: &'a Target,
    options: &'a ImportOptions,
    file: &'a str,
    nullif: &'a [u8],
    records: &'a mut u64,
    inserted: &'a mut u64,
    insert: &'a mut rusqlite::CachedStatement<'s>,
}

impl RowSink<'_, '_> {
    fn insert(&mut self, record: Record<'_>) -> Result<Flow, Error> {
        *self.records += 1;
        let row = *self.records;
        if row <= self.options.skip {
            return Ok(Flow::Continue);
        }
        if self.options.row_limit.is_some_and(|limit| row - self.options.skip > limit) {
            return Ok(Flow::Stop);
        }
        let expected = self.target.columns.len();
        let got = record.len();
        let trailing_empty = got == expected + 1 && {
            let (bytes, field) = record.field(expected);
            bytes.is_empty() && !field.quoted
        };
        if got != expected && !trailing_empty {
            return Err(self.bad(row, record.line, None, RowProblem::FieldCount { expected, got }));
        }
        for i in 0..expected {
            let (bytes, field) = record.field(i);
            let value =
                self.convert(i, bytes, field).map_err(|p| self.bad(row, field.line, Some(i), p))?;
            self.insert
                .raw_bind_parameter(i + 1, value)
                .map_err(|source| Error::Sqlite { context: "binding a value", source })?;
        }
        if let Err(e) = self.insert.raw_execute() {
            return Err(self.rejected(row, &record, e));
        }
        *self.inserted += 1;
        Ok(Flow::Continue)
    }

    /// The value field `i` stands for, checked against its column.
    fn convert<'v>(
        &self,
        i: usize,
        bytes: &'v [u8],
        field: Field,
    ) -> Result<ToSqlOutput<'v>, RowProblem> {
        let column = &self.target.columns[i];
        if (!field.quoted || self.options.allow_quoted_null) && bytes == self.nullif {
            if column.not_null {
                return Err(RowProblem::NotNull);
            }
            return Ok(ToSqlOutput::Borrowed(ValueRef::Null));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| RowProblem::InvalidUtf8)?;
        let invalid = || RowProblem::InvalidValue {
            value: text.chars().take(100).collect(),
            type_name: column.declared.clone(),
        };
        Ok(match column.affinity {
            Affinity::Integer => match text.parse::<i64>() {
                Ok(n) => ToSqlOutput::Owned(Value::Integer(n)),
                Err(_) => ToSqlOutput::Owned(Value::Real(real(text).ok_or_else(invalid)?)),
            },
            Affinity::Real => ToSqlOutput::Owned(Value::Real(real(text).ok_or_else(invalid)?)),
            Affinity::Blob => match text.strip_prefix("\\x") {
                Some(hex) => ToSqlOutput::Owned(Value::Blob(unhex(hex).ok_or_else(invalid)?)),
                None => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            },
            Affinity::Text | Affinity::Untyped | Affinity::Numeric => {
                ToSqlOutput::Borrowed(ValueRef::Text(bytes))
            }
        })
    }

    fn bad(&self, row: u64, line: u64, field: Option<usize>, problem: RowProblem) -> Error {
        Error::BadRow(Box::new(RowError {
            file: self.file.to_owned(),
            row,
            line,
            field: field.map(|i| i + 1),
            column: field.map(|i| self.target.columns[i].name.clone()),
            problem,
        }))
    }

    /// SQLite refused the INSERT: a constraint, or a STRICT table's type check.
    fn rejected(&self, row: u64, record: &Record<'_>, error: rusqlite::Error) -> Error {
        let sqlstate = super::sqlite_sqlstate(&error);
        let message = match &error {
            rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
            other => other.to_string(),
        };
        // SQLite names the column as `table.column`: point at its field when there is one.
        let field = self.target.columns.iter().position(|c| {
            let qualified = format!("{}.{}", self.target.table, c.name);
            message.split([' ', ',']).any(|word| word.eq_ignore_ascii_case(&qualified))
        });
        let line = field.map_or(record.line, |i| record.field(i).1.line);
        let problem = if sqlstate == "23502" {
            RowProblem::NotNull
        } else {
            RowProblem::Rejected { message, sqlstate }
        };
        self.bad(row, line, field, problem)
    }
}

/// A real, as Rust reads it (`1.5`, `1e3`, `inf`, `Infinity`), NaN refused: SQLite would
/// store it as NULL.
fn real(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| !x.is_nan())
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// The import's transaction: a savepoint, so it also works inside an open transaction.
/// Dropped without [`Savepoint::commit`] (an error, a cancelled future), it rolls back.
struct Savepoint<'c> {
    conn: &'c mut Connection,
    open: bool,
}

impl<'c> Savepoint<'c> {
    fn begin(conn: &'c mut Connection) -> Result<Self, Error> {
        conn.execute_batch("SAVEPOINT extconn_import").map_err(|source| Error::Sqlite {
            context: "starting the import's transaction",
            source,
        })?;
        Ok(Self { conn, open: true })
    }

    fn conn(&self) -> &Connection {
        self.conn
    }

    fn commit(mut self) -> Result<(), Error> {
        self.conn
            .execute_batch("RELEASE extconn_import")
            .map_err(|source| Error::Sqlite { context: "committing the import", source })?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing more to do if this fails: the connection reports it on its next use.
            let _ = self.conn.execute_batch("ROLLBACK TO extconn_import; RELEASE extconn_import");
        }
    }
}
