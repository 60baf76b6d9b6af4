//! The databases operations work on: one SQLite file each under `<data_dir>/databases`, and
//! the SQL the component hands back for them (CREATE TABLE, INSERT, SELECT, …).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;

use crate::model::{Column, ErrorKind, Outcome, Rows, SqlError, Value};

/// The database a session uses when none is chosen, created on first use (as CockroachDB's).
pub const DEFAULT_DATABASE: &str = "defaultdb";
/// How long a statement waits for another writer of the same database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const SUFFIX: &str = ".sqlite";
/// `PRAGMA application_id` of the databases extconn creates (`excn`).
const APPLICATION_ID: i32 = 0x6578_636e;

/// The databases under one data directory, with the connections the session has open.
#[derive(Debug)]
pub struct Databases {
    dir: PathBuf,
    open: HashMap<String, rusqlite::Connection>,
}

impl Databases {
    /// The databases under `data_dir` (nothing is created until a database is).
    pub fn new(data_dir: &Path) -> Self {
        Self { dir: data_dir.join("databases"), open: HashMap::new() }
    }

    /// The directory that holds the database files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of database `name`. Names are file-name safe: anything but lower-case ASCII
    /// letters, digits and `_` is percent-encoded, so no name can reach outside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        let mut file = String::with_capacity(name.len() + SUFFIX.len());
        for byte in name.bytes() {
            if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' {
                file.push(byte as char);
            } else {
                file.push_str(&format!("%{byte:02X}"));
            }
        }
        file.push_str(SUFFIX);
        self.dir.join(file)
    }

    /// Whether database `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    /// Every database's name, sorted.
    pub fn list(&self) -> Result<Vec<String>, SqlError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("list the databases", &self.dir, &e)),
        };
        let mut names = Vec::new();
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = file.strip_suffix(SUFFIX)
                && let Some(name) = decode(stem)
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Creates database `name`; `Ok(false)` if it existed and `if_not_exists` is set.
    pub fn create(&mut self, name: &str, if_not_exists: bool) -> Result<bool, SqlError> {
        if self.exists(name) {
            if if_not_exists {
                return Ok(false);
            }
            return Err(SqlError::new(
                ErrorKind::AlreadyExists,
                "42P04",
                format!("database {name:?} already exists"),
            ));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io_error("create the databases directory", &self.dir, &e))?;
        let path = self.path(name);
        let db = open_file(&path, true)?;
        // Writes the header, so the file is a database from now on, marked as extconn's. Its
        // journal mode stays the default (a rollback journal): the file alone is then
        // consistent under a read lock, which is how BACKUP reads it.
        db.pragma_update(None, "application_id", APPLICATION_ID).map_err(|e| sqlite_error(&e))?;
        self.open.insert(name.to_owned(), db);
        Ok(true)
    }

    /// Drops database `name`: `Ok(false)` if it did not exist and `if_exists` is set.
    pub fn drop(&mut self, name: &str, if_exists: bool, cascade: bool) -> Result<bool, SqlError> {
        if !self.exists(name) {
            if if_exists {
                return Ok(false);
            }
            return Err(does_not_exist(name));
        }
        if !cascade && !self.tables(name)?.is_empty() {
            return Err(SqlError::new(
                ErrorKind::InvalidArgument,
                "2BP01",
                format!("database {name:?} is not empty and RESTRICT was specified"),
            ));
        }
        self.close(name);
        let path = self.path(name);
        std::fs::remove_file(&path).map_err(|e| io_error("drop the database", &path, &e))?;
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            let _ = std::fs::remove_file(side);
        }
        Ok(true)
    }

    /// Forgets the open connection to `name` and detaches it from the others (before its file
    /// is replaced or removed).
    pub fn close(&mut self, name: &str) {
        self.open.remove(name);
        for db in self.open.values() {
            // Not attached is the usual case, and not an error.
            let _ = db.execute("DETACH DATABASE ?1", [name]);
        }
    }

    /// The user tables of database `name`, sorted: not SQLite's own, not change capture's
    /// (`_extconn_*`).
    pub fn tables(&mut self, name: &str) -> Result<Vec<String>, SqlError> {
        let db = self.connection(name)?;
        let mut stmt = db
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                   AND name NOT LIKE '\\_extconn\\_%' ESCAPE '\\' ORDER BY name",
            )
            .map_err(|e| sqlite_error(&e))?;
        let names = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| sqlite_error(&e))?;
        Ok(names)
    }

    /// The open connection to database `name`; the default database is created on first use.
    pub fn connection(&mut self, name: &str) -> Result<&mut rusqlite::Connection, SqlError> {
        if !self.open.contains_key(name) {
            if !self.exists(name) {
                if name != DEFAULT_DATABASE {
                    return Err(does_not_exist(name));
                }
                self.create(name, true)?;
            }
            if !self.open.contains_key(name) {
                let db = open_file(&self.path(name), false)?;
                self.open.insert(name.to_owned(), db);
            }
        }
        Ok(self.open.get_mut(name).expect("opened above"))
    }

    /// Runs one statement of SQLite SQL in database `name`. Names qualified as CockroachDB
    /// qualifies them work: `db.table` and `db.public.table` reach database `db` (attached on
    /// first use), the current database as SQLite's `main`, and `public.table` is `table`.
    pub fn run_sql(&mut self, name: &str, sql: &str) -> Result<Outcome, SqlError> {
        let known = if sql.contains('.') { self.list()? } else { Vec::new() };
        let (sql, named) = qualify(sql, name, &known);
        let others: Vec<(String, PathBuf)> = named
            .into_iter()
            .map(|other| (self.path(&other).clone(), other))
            .map(|(p, o)| (o, p))
            .collect();
        let db = self.connection(name)?;
        for (other, path) in others {
            let attached: bool = db
                .query_row(
                    "SELECT count(*) FROM pragma_database_list WHERE name = ?1",
                    [&other],
                    |row| row.get(0),
                )
                .map_err(|e| sqlite_error(&e))?;
            if !attached {
                db.execute(
                    "ATTACH DATABASE ?1 AS ?2",
                    rusqlite::params![path.to_string_lossy(), other],
                )
                .map_err(|e| sqlite_error(&e))?;
            }
        }
        run_statement(db, &sql)
    }
}

/// Rewrites CockroachDB's qualified names for SQLite, outside strings and comments: `current.`
/// becomes `main.`, `db.public.` becomes `db.`, a leading `public.` goes; returns the SQL and
/// the other databases (of `known`) it names, to attach.
fn qualify(sql: &str, current: &str, known: &[String]) -> (String, Vec<String>) {
    let mut out = String::with_capacity(sql.len());
    let mut named: Vec<String> = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    // The last identifier written was a database qualifier followed by `.`.
    let mut after_database = false;
    while i < chars.len() {
        let c = chars[i];
        // Strings and comments are copied as they are.
        if c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
            after_database = false;
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            let start = i;
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.extend(&chars[start..i]);
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            let start = i;
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i = (i + 2).min(chars.len());
            out.extend(&chars[start..i]);
            continue;
        }
        // An identifier: a word, or a "quoted" one.
        let (ident, end) = if c == '"' {
            let mut j = i + 1;
            let mut value = String::new();
            while j < chars.len() {
                if chars[j] == '"' {
                    if chars.get(j + 1) == Some(&'"') {
                        value.push('"');
                        j += 2;
                        continue;
                    }
                    break;
                }
                value.push(chars[j]);
                j += 1;
            }
            (Some(value), (j + 1).min(chars.len()))
        } else if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '$')
            {
                j += 1;
            }
            let word: String = chars[i..j].iter().collect();
            (Some(word.to_lowercase()), j)
        } else {
            (None, i + 1)
        };
        let Some(ident) = ident else {
            out.push(c);
            if !c.is_whitespace() && c != '.' {
                after_database = false;
            }
            i = end;
            continue;
        };
        let mut k = end;
        while k < chars.len() && chars[k].is_whitespace() {
            k += 1;
        }
        let dotted = chars.get(k) == Some(&'.');
        let mut p = i;
        while p > 0 && chars[p - 1].is_whitespace() {
            p -= 1;
        }
        let preceded_by_dot = p > 0 && chars[p - 1] == '.';
        if dotted && ident == "public" && (after_database || !preceded_by_dot) {
            // `public.` after a database, or alone: the schema SQLite does not have.
            i = k + 1;
            after_database = false;
            continue;
        }
        let dotted = dotted && !preceded_by_dot;
        if dotted && ident == current {
            out.push_str("main");
            after_database = true;
            i = end;
            continue;
        }
        if dotted && known.contains(&ident) {
            if !named.contains(&ident) {
                named.push(ident.clone());
            }
            after_database = true;
        } else {
            after_database = false;
        }
        out.extend(&chars[i..end]);
        i = end;
    }
    (out, named)
}

/// `database "x" does not exist` (3D000).
pub fn does_not_exist(name: &str) -> SqlError {
    SqlError::new(ErrorKind::NotFound, "3D000", format!("database {name:?} does not exist"))
}

fn decode(stem: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(stem.len());
    let mut iter = stem.bytes();
    while let Some(b) = iter.next() {
        if b == b'%' {
            let hex = [iter.next()?, iter.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

/// Opens a database file (`create`: make it if missing) that waits up to [`BUSY_TIMEOUT`] for
/// another connection's lock (see [`retry_every_millisecond`]).
pub fn open_file(path: &Path, create: bool) -> Result<rusqlite::Connection, SqlError> {
    use rusqlite::OpenFlags as F;
    let mut flags = F::SQLITE_OPEN_READ_WRITE | F::SQLITE_OPEN_NO_MUTEX | F::SQLITE_OPEN_URI;
    if create {
        flags |= F::SQLITE_OPEN_CREATE;
    }
    let mut db =
        rusqlite::Connection::open_with_flags(path, flags).map_err(|e| sqlite_error(&e))?;
    db.busy_handler(Some(retry_every_millisecond())).map_err(|e| sqlite_error(&e))?;
    db.pragma_update(None, "foreign_keys", "ON").map_err(|e| sqlite_error(&e))?;
    Ok(db)
}

/// The busy handler of database connections: tries again every millisecond until
/// [`BUSY_TIMEOUT`] has passed since the first try. SQLite's own (`busy_timeout`) backs off to
/// sleeps of 100 ms, so after a long write a reader went on up to 100 ms after the lock was
/// free: a changefeed noticed a bulk insert of 50,000 rows about 40 ms after its commit. A
/// lock attempt costs a few microseconds, so trying a thousand times a second while a writer
/// holds it is cheap.
fn retry_every_millisecond() -> impl FnMut(i32) -> bool + Send + 'static {
    let mut first = std::time::Instant::now();
    move |attempt| {
        if attempt == 0 {
            first = std::time::Instant::now();
        }
        if first.elapsed() >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
        true
    }
}

/// Runs one statement: rows if it returns columns, a command tag otherwise.
pub fn run_statement(db: &rusqlite::Connection, sql: &str) -> Result<Outcome, SqlError> {
    let mut stmt = db.prepare(sql).map_err(|e| sqlite_error(&e))?;
    if stmt.column_count() == 0 {
        let changed = stmt.raw_execute().map_err(|e| sqlite_error(&e))?;
        return Ok(Outcome::Command(command_tag(sql, changed)));
    }
    let declared: Vec<Option<String>> =
        stmt.columns().map(|c| c.decl_type().map(str::to_owned)).collect();
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut seen: Vec<Option<&'static str>> = vec![None; names.len()];
    let mut rows = Vec::new();
    let mut query = stmt.raw_query();
    while let Some(row) = query.next().map_err(|e| sqlite_error(&e))? {
        let mut values = Vec::with_capacity(names.len());
        for (i, seen) in seen.iter_mut().enumerate() {
            let value = match row.get_ref(i).map_err(|e| sqlite_error(&e))? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => {
                    seen.get_or_insert("INT8");
                    Value::Int(n)
                }
                ValueRef::Real(x) => {
                    seen.get_or_insert("FLOAT8");
                    Value::Float(x)
                }
                ValueRef::Text(t) => {
                    seen.get_or_insert("STRING");
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
                ValueRef::Blob(b) => {
                    seen.get_or_insert("BYTES");
                    Value::Text(format!("\\x{}", hex(b)))
                }
            };
            values.push(value);
        }
        rows.push(values);
    }
    let columns = names
        .into_iter()
        .zip(declared)
        .zip(seen)
        .map(|((name, declared), seen)| Column {
            name,
            sql_type: declared
                .map(|d: String| sql_type(&d))
                .or(seen.map(str::to_owned))
                .unwrap_or_else(|| "STRING".to_owned()),
        })
        .collect();
    Ok(Outcome::Rows(Rows { columns, rows }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A declared SQLite type as the CockroachDB type name it reads as (SQLite's affinity rules).
fn sql_type(declared: &str) -> String {
    let upper = declared.to_ascii_uppercase();
    if upper.contains("INT") {
        "INT8"
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        "STRING"
    } else if upper.contains("BLOB") || upper.is_empty() {
        "BYTES"
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        "FLOAT8"
    } else if upper.contains("BOOL") {
        "BOOL"
    } else if upper.contains("TIMESTAMP") {
        "TIMESTAMPTZ"
    } else {
        "DECIMAL"
    }
    .to_owned()
}

/// PostgreSQL's command tags: `INSERT 0 3`, `UPDATE 2`, `DELETE 1`, `CREATE TABLE`, …
fn command_tag(sql: &str, changed: usize) -> String {
    let words: Vec<String> =
        sql.split_whitespace().take(3).map(|w| w.to_ascii_uppercase()).collect();
    let mut first = words.first().map(String::as_str).unwrap_or_default();
    let upper;
    if first == "WITH" {
        // A common table expression: the statement is the first INSERT, UPDATE or DELETE.
        upper = sql.to_ascii_uppercase();
        first = upper
            .split(|c: char| !c.is_ascii_alphanumeric())
            .find(|w| matches!(*w, "INSERT" | "UPDATE" | "DELETE" | "REPLACE"))
            .unwrap_or("WITH");
    }
    match first {
        "INSERT" | "REPLACE" => format!("INSERT 0 {changed}"),
        "UPDATE" => format!("UPDATE {changed}"),
        "DELETE" => format!("DELETE {changed}"),
        "CREATE" | "DROP" | "ALTER" => {
            let mut tag = vec![first.to_owned()];
            for word in words.iter().skip(1) {
                let word = word.trim_end_matches('(');
                if matches!(word, "TABLE" | "INDEX" | "VIEW" | "TRIGGER") {
                    tag.push(word.to_owned());
                    break;
                }
                if !matches!(word, "UNIQUE" | "TEMP" | "TEMPORARY" | "VIRTUAL") {
                    break;
                }
            }
            tag.join(" ")
        }
        "" => "OK".to_owned(),
        other => other.trim_end_matches(';').to_owned(),
    }
}

/// SQLite's error as a SQL error with the nearest SQLSTATE; the texts CockroachDB has for the
/// same faults where they map one to one.
pub fn sqlite_error(error: &rusqlite::Error) -> SqlError {
    use rusqlite::ErrorCode as C;
    let message = match error {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        other => other.to_string(),
    };
    let code = error.sqlite_error_code();
    let (kind, state, text) = if let Some(table) = message.strip_prefix("no such table: ") {
        (ErrorKind::NotFound, "42P01", format!("relation {:?} does not exist", unqualified(table)))
    } else if let Some(rest) = message.strip_prefix("table ")
        && let Some(table) = rest.strip_suffix(" already exists")
    {
        (
            ErrorKind::AlreadyExists,
            "42P07",
            format!("relation {:?} already exists", table.trim_matches('"')),
        )
    } else if let Some(column) = message.strip_prefix("no such column: ") {
        (ErrorKind::NotFound, "42703", format!("column {column:?} does not exist"))
    } else if message.contains("syntax error") || message.starts_with("incomplete input") {
        (ErrorKind::Syntax, "42601", message.clone())
    } else if message.starts_with("UNIQUE constraint failed") {
        (
            ErrorKind::AlreadyExists,
            "23505",
            format!("duplicate key value violates unique constraint: {message}"),
        )
    } else if message.starts_with("NOT NULL constraint failed") {
        (
            ErrorKind::InvalidArgument,
            "23502",
            format!("null value violates not-null constraint: {message}"),
        )
    } else if message.starts_with("FOREIGN KEY constraint failed") {
        (ErrorKind::InvalidArgument, "23503", format!("foreign key violation: {message}"))
    } else if message.starts_with("CHECK constraint failed") {
        (
            ErrorKind::InvalidArgument,
            "23514",
            format!("failed to satisfy CHECK constraint: {message}"),
        )
    } else if matches!(code, Some(C::DatabaseBusy | C::DatabaseLocked)) {
        (ErrorKind::Unavailable, "55P03", format!("the database is busy: {message}"))
    } else if matches!(code, Some(C::ReadOnly | C::CannotOpen | C::DiskFull | C::SystemIoFailure)) {
        (ErrorKind::Unavailable, "58030", message.clone())
    } else if matches!(code, Some(C::DatabaseCorrupt | C::NotADatabase)) {
        (ErrorKind::Internal, "XX001", message.clone())
    } else {
        (ErrorKind::InvalidArgument, "42000", message.clone())
    };
    SqlError::new(kind, state, text)
}

fn unqualified(table: &str) -> &str {
    table.rsplit('.').next().unwrap_or(table)
}

fn io_error(what: &str, path: &Path, error: &std::io::Error) -> SqlError {
    SqlError::new(
        ErrorKind::Unavailable,
        "58030",
        format!("could not {what} ({}): {error}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_directory_and_read_back() {
        let dbs = Databases::new(Path::new("/data"));
        assert_eq!(dbs.path("movr"), Path::new("/data/databases/movr.sqlite"));
        assert_eq!(dbs.path("../x"), Path::new("/data/databases/%2E%2E%2Fx.sqlite"));
        assert_eq!(decode("%2E%2E%2Fx").as_deref(), Some("../x"));
        assert_eq!(decode("Caf%C3%A9").as_deref(), Some("Café"));
    }

    #[test]
    fn qualified_names_are_rewritten_for_sqlite() {
        let known = vec!["movr".to_owned(), "other".to_owned()];
        let q = |sql| qualify(sql, "movr", &known);
        assert_eq!(q("SELECT * FROM movr.users"), ("SELECT * FROM main.users".into(), vec![]));
        assert_eq!(
            q("SELECT * FROM movr.public.users u JOIN other.public.t ON u.id = t.id"),
            ("SELECT * FROM main.users u JOIN other.t ON u.id = t.id".into(), vec!["other".into()])
        );
        assert_eq!(
            q("SELECT 'movr.users', \"movr\".x FROM public.t"),
            ("SELECT 'movr.users', main.x FROM t".into(), vec![])
        );
        assert_eq!(
            q("SELECT movr FROM t -- movr.users"),
            ("SELECT movr FROM t -- movr.users".into(), vec![])
        );
        assert_eq!(q("SELECT t.movr FROM t"), ("SELECT t.movr FROM t".into(), vec![]));
    }

    #[test]
    fn tags_read_like_postgres() {
        assert_eq!(command_tag("insert into t values (1)", 1), "INSERT 0 1");
        assert_eq!(command_tag("CREATE TABLE t (a)", 0), "CREATE TABLE");
        assert_eq!(command_tag("CREATE UNIQUE INDEX i ON t(a)", 0), "CREATE INDEX");
        assert_eq!(command_tag("update t set a = 1", 4), "UPDATE 4");
        assert_eq!(command_tag("BEGIN", 0), "BEGIN");
        assert_eq!(
            command_tag("WITH n AS (SELECT 1) INSERT INTO t SELECT * FROM n", 1),
            "INSERT 0 1"
        );
    }
}
