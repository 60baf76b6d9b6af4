//! Printing statement results like `cockroach sql`: aligned tables or one JSON object a line.

use std::io::{self, Write};

use serde::Serialize;

use crate::model::{Outcome, Rows, SqlError, StatementResult, Value};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned tables and command tags on stdout; notices and errors on stderr.
    #[default]
    Table,
    /// One JSON object per line on stdout: `{"columns":…,"rows":…}`, `{"tag":…}`,
    /// `{"notice":…}`, `{"error":{"sqlstate":…,"message":…}}`.
    Json,
}

/// Writes results in one [`Format`] to an output and an error stream.
pub struct Printer<'a> {
    format: Format,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl std::fmt::Debug for Printer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer").field("format", &self.format).finish_non_exhaustive()
    }
}

impl<'a> Printer<'a> {
    /// A printer writing results to `out` and, in table format, notices and errors to `err`.
    pub fn new(format: Format, out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Self { format, out, err }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Prints one result: its notices, then its outcome or error.
    pub fn print(&mut self, result: &StatementResult) -> io::Result<()> {
        match self.format {
            Format::Table => self.print_table(result),
            Format::Json => self.print_json(result),
        }
    }

    /// Prints a line of prose (the demo's narration): `-- text` in table format, nothing in
    /// JSON (which stays one result per line).
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        match (self.format, text.is_empty()) {
            (Format::Table, true) => writeln!(self.out),
            (Format::Table, false) => writeln!(self.out, "-- {text}"),
            (Format::Json, _) => Ok(()),
        }
    }

    /// Echoes a statement before its result (table format only): `> SQL`.
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        match self.format {
            Format::Table => writeln!(self.out, "> {text}"),
            Format::Json => Ok(()),
        }
    }

    fn print_table(&mut self, result: &StatementResult) -> io::Result<()> {
        for notice in &result.notices {
            writeln!(self.err, "NOTICE: {notice}")?;
        }
        match &result.outcome {
            Ok(Outcome::Command(tag)) => writeln!(self.out, "{tag}")?,
            Ok(Outcome::Rows(rows)) => self.out.write_all(table(rows).as_bytes())?,
            Err(error) => {
                self.out.flush()?;
                writeln!(self.err, "ERROR: {}", error.message)?;
                writeln!(self.err, "SQLSTATE: {}", error.sqlstate)?;
                if let Some(detail) = &error.detail {
                    writeln!(self.err, "DETAIL: {detail}")?;
                }
                if let Some(hint) = &error.hint {
                    writeln!(self.err, "HINT: {hint}")?;
                }
            }
        }
        self.out.flush()?;
        self.err.flush()
    }

    fn print_json(&mut self, result: &StatementResult) -> io::Result<()> {
        for notice in &result.notices {
            self.json_line(&NoticeJson { notice })?;
        }
        match &result.outcome {
            Ok(Outcome::Command(tag)) => self.json_line(&TagJson { tag })?,
            Ok(Outcome::Rows(rows)) => self.json_line(&RowsJson {
                columns: rows.columns.iter().map(|c| c.name.as_str()).collect(),
                rows: rows.rows.iter().map(|row| row.iter().map(json_value).collect()).collect(),
            })?,
            Err(error) => self.json_line(&ErrorJson { error: ErrorBody::from(error) })?,
        }
        self.out.flush()
    }

    fn json_line(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut *self.out, value)?;
        self.out.write_all(b"\n")
    }
}

#[derive(Serialize)]
struct NoticeJson<'a> {
    notice: &'a str,
}

#[derive(Serialize)]
struct TagJson<'a> {
    tag: &'a str,
}

#[derive(Serialize)]
struct RowsJson<'a> {
    columns: Vec<&'a str>,
    rows: Vec<Vec<serde_json::Value>>,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    sqlstate: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

impl<'a> From<&'a SqlError> for ErrorBody<'a> {
    fn from(e: &'a SqlError) -> Self {
        Self {
            sqlstate: &e.sqlstate,
            message: &e.message,
            detail: e.detail.as_deref(),
            hint: e.hint.as_deref(),
        }
    }
}

/// A value keeping its SQL type: text as a string, numbers as numbers, NULL as null.
fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Boolean(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        // NaN and infinities have no JSON number: null, as serde_json does.
        Value::Float(x) => {
            serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Text(s) => s.as_str().into(),
    }
}

/// `rows` as `cockroach sql` prints them: centered headers, left-aligned cells, a dashed rule
/// and a row count.
pub fn table(rows: &Rows) -> String {
    let cells: Vec<Vec<String>> =
        rows.rows.iter().map(|row| row.iter().map(ToString::to_string).collect()).collect();
    let widths: Vec<usize> = rows
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            cells
                .iter()
                .filter_map(|row| row.get(i))
                .map(|cell| width(cell))
                .chain([width(&column.name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let header: Vec<String> =
        rows.columns.iter().zip(&widths).map(|(c, &w)| center(&c.name, w)).collect();
    push_line(&mut out, &header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push('-');
    out.push_str(&rule.join("+"));
    out.push_str("-\n");
    // Numbers and booleans are right-aligned, as `cockroach sql` does.
    let right: Vec<bool> = rows
        .columns
        .iter()
        .map(|c| {
            let t = c.sql_type.to_ascii_uppercase();
            ["INT", "FLOAT", "DECIMAL", "NUMERIC", "BOOL"].iter().any(|p| t.starts_with(p))
        })
        .collect();
    for row in &cells {
        let padded: Vec<String> = row
            .iter()
            .zip(widths.iter().zip(&right))
            .map(|(cell, (&w, &right))| if right { align_right(cell, w) } else { left(cell, w) })
            .collect();
        push_line(&mut out, &padded);
    }
    let n = rows.rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    out
}

fn push_line(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells.iter().map(|c| format!(" {c} ")).collect();
    let line = format!(" {}", line.join("|"));
    out.push_str(line.trim_end());
    out.push('\n');
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn center(text: &str, w: usize) -> String {
    let pad = w.saturating_sub(width(text));
    format!("{}{text}{}", " ".repeat(pad / 2), " ".repeat(pad - pad / 2))
}

fn align_right(text: &str, w: usize) -> String {
    format!("{}{text}", " ".repeat(w.saturating_sub(width(text))))
}

fn left(text: &str, w: usize) -> String {
    format!("{text}{}", " ".repeat(w.saturating_sub(width(text))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, ErrorKind};

    fn column(name: &str) -> Column {
        Column { name: name.into(), sql_type: "STRING".into() }
    }

    #[test]
    fn table_matches_cockroach_sql() {
        let rows = Rows {
            columns: vec![
                column("connection_name"),
                column("connection_uri"),
                column("connection_type"),
            ],
            rows: vec![vec![
                Value::Text("foo".into()),
                Value::Text("nodelocal://1/foo/bar".into()),
                Value::Text("STORAGE".into()),
            ]],
        };
        assert_eq!(
            table(&rows),
            "  connection_name |    connection_uri     | connection_type\n\
             ------------------+-----------------------+------------------\n\
             \x20 foo             | nodelocal://1/foo/bar | STORAGE\n\
             (1 row)\n"
        );
    }

    #[test]
    fn numbers_and_booleans_align_right() {
        let rows = Rows {
            columns: vec![
                Column { name: "grantee".into(), sql_type: "STRING".into() },
                Column { name: "is_grantable".into(), sql_type: "BOOL".into() },
                Column { name: "n".into(), sql_type: "INT8".into() },
            ],
            rows: vec![vec![Value::Text("root".into()), Value::Boolean(true), Value::Int(12)]],
        };
        assert_eq!(
            table(&rows),
            "  grantee | is_grantable | n\n\
             ----------+--------------+-----\n\
             \x20 root    |            t | 12\n\
             (1 row)\n"
        );
    }

    #[test]
    fn empty_table_still_has_its_header() {
        let rows = Rows { columns: vec![column("a")], rows: vec![] };
        assert_eq!(table(&rows), "  a\n-----\n(0 rows)\n");
    }

    fn print(format: Format, result: &StatementResult) -> (String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        Printer::new(format, &mut out, &mut err).print(result).unwrap();
        (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
    }

    #[test]
    fn json_lines() {
        let rows = StatementResult {
            notices: vec!["careful".into()],
            outcome: Ok(Outcome::Rows(Rows {
                columns: vec![column("a"), column("b"), column("c"), column("d"), column("e")],
                rows: vec![vec![
                    Value::Text("x".into()),
                    Value::Int(1),
                    Value::Boolean(true),
                    Value::Null,
                    Value::Float(1.5),
                ]],
            })),
        };
        assert_eq!(
            print(Format::Json, &rows).0,
            "{\"notice\":\"careful\"}\n\
             {\"columns\":[\"a\",\"b\",\"c\",\"d\",\"e\"],\"rows\":[[\"x\",1,true,null,1.5]]}\n"
        );
        let tag = StatementResult {
            notices: vec![],
            outcome: Ok(Outcome::Command("CREATE EXTERNAL CONNECTION".into())),
        };
        assert_eq!(print(Format::Json, &tag).0, "{\"tag\":\"CREATE EXTERNAL CONNECTION\"}\n");
        let mut error = SqlError::new(ErrorKind::AlreadyExists, "42710", "it \"exists\"");
        assert_eq!(
            print(Format::Json, &StatementResult::error(error.clone())).0,
            "{\"error\":{\"sqlstate\":\"42710\",\"message\":\"it \\\"exists\\\"\"}}\n"
        );
        error.hint = Some("drop it".into());
        assert_eq!(
            print(Format::Json, &StatementResult::error(error)).0,
            "{\"error\":{\"sqlstate\":\"42710\",\"message\":\"it \\\"exists\\\"\",\"hint\":\"drop it\"}}\n"
        );
    }

    #[test]
    fn table_errors_and_notices_go_to_stderr() {
        let mut error = SqlError::new(ErrorKind::Syntax, "42601", "at or near \"x\": syntax error");
        error.detail = Some("source SQL:\nx\n^".into());
        error.hint = Some("try \\h".into());
        let result = StatementResult { notices: vec!["n".into()], outcome: Err(error) };
        let (out, err) = print(Format::Table, &result);
        assert_eq!(out, "");
        assert_eq!(
            err,
            "NOTICE: n\nERROR: at or near \"x\": syntax error\nSQLSTATE: 42601\n\
             DETAIL: source SQL:\nx\n^\nHINT: try \\h\n"
        );
    }
}
