//! `userfile://[db.schema.table]/path`: files kept in the catalog database
//! (`<data-dir>/catalog.db`), as CockroachDB keeps them in SQL tables.
//!
//! A userfile *table* is two SQLite tables, named like CockroachDB's pair:
//!
//! | SQLite table | holds |
//! |---|---|
//! | `"<db>.<schema>.<table>_upload_files"` | one row per file: `filename`, `file_id`, `file_size`, `username`, `upload_time` |
//! | `"<db>.<schema>.<table>_upload_payload"` | the content in chunks of 1 MiB: `file_id`, `byte_offset`, `payload` |
//!
//! Without a host the table is `defaultdb.public.userfiles_<user>` of the user *using* the
//! target (CockroachDB's default); `t` alone means `defaultdb.public.t`, `db.t` means
//! `db.public.t`. A table `userfiles_<name>` belongs to user `<name>`: only that user and `root`
//! may use it (CockroachDB checks SQL grants on the table; extconn has no table grants).
//!
//! Writes go into new chunks under a fresh `file_id` and replace the file's row in one
//! transaction at the end, so a reader never sees half a file and a failed upload leaves the
//! old content. Reads stream chunk by chunk.

use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    UploadPart,
};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::Location;
use crate::{Config, Error, Target};

/// The catalog's file under the data directory (the host's `catalog::CATALOG_FILE`).
pub const CATALOG_FILE: &str = "catalog.db";
/// The database and schema of a user's default table.
pub const DEFAULT_PREFIX: &str = "defaultdb.public.";
/// The default table of user `u` is `userfiles_<u>`.
pub const TABLE_PREFIX: &str = "userfiles_";
/// Bytes per payload row.
pub const CHUNK: usize = 1 << 20;
/// How long a write waits for another writer of the catalog.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const STORE: &str = "userfile";

pub(crate) fn open(config: &Config, target: &Target) -> Result<Location, Error> {
    let display = target.display();
    let table = qualified_table(&target.host, &target.user);
    let owner = table.rsplit('.').next().and_then(|t| t.strip_prefix(TABLE_PREFIX));
    if target.user != "root" && owner != Some(target.user.as_str()) {
        return Err(Error::UserfileTable { location: display, user: target.user.clone(), table });
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|source| Error::LocalDir { location: display.clone(), source })?;
    let store = UserfileStore::open(&config.data_dir.join(CATALOG_FILE), &table, &target.user)
        .map_err(|e| Error::from_store(display.clone(), "open", e))?;
    Ok(Location::new(Arc::new(store), &target.path, display))
}

/// `db.schema.table` for the URI's host, or the user's default table.
pub fn qualified_table(host: &str, user: &str) -> String {
    let host = host.to_lowercase();
    match host.split('.').count() {
        _ if host.is_empty() => format!("{DEFAULT_PREFIX}{TABLE_PREFIX}{user}"),
        1 => format!("{DEFAULT_PREFIX}{host}"),
        2 => {
            let (db, table) = host.split_once('.').expect("two parts");
            format!("{db}.public.{table}")
        }
        _ => host,
    }
}

/// An object store over one userfile table of the catalog database.
#[derive(Debug)]
pub struct UserfileStore {
    db: Arc<Mutex<rusqlite::Connection>>,
    tables: Arc<Tables>,
    user: String,
}

#[derive(Debug)]
struct Tables {
    qualified: String,
    /// Quoted SQLite identifiers.
    files: String,
    payload: String,
}

impl UserfileStore {
    /// Opens the catalog database at `path` and creates the table `qualified` if needed;
    /// `user` is recorded as the uploader of what is written.
    pub fn open(path: &FsPath, qualified: &str, user: &str) -> object_store::Result<Self> {
        let db = rusqlite::Connection::open(path).map_err(sqlite)?;
        db.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        let quote = |suffix: &str| format!("\"{}{suffix}\"", qualified.replace('"', "\"\""));
        let tables = Tables {
            qualified: qualified.to_owned(),
            files: quote("_upload_files"),
            payload: quote("_upload_payload"),
        };
        db.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {files} (
                 filename TEXT PRIMARY KEY,
                 file_id INTEGER NOT NULL UNIQUE,
                 file_size INTEGER NOT NULL,
                 username TEXT NOT NULL,
                 upload_time INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS {payload} (
                 file_id INTEGER NOT NULL,
                 byte_offset INTEGER NOT NULL,
                 payload BLOB NOT NULL,
                 PRIMARY KEY (file_id, byte_offset));",
            files = tables.files,
            payload = tables.payload,
        ))
        .map_err(sqlite)?;
        Ok(Self { db: Arc::new(Mutex::new(db)), tables: Arc::new(tables), user: user.to_owned() })
    }

    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        lock(&self.db)
    }

    /// The row of `location`: (file id, size, upload time in µs).
    fn row(&self, location: &Path) -> object_store::Result<(i64, u64, i64)> {
        let db = self.lock();
        find(&db, &self.tables, location.as_ref())?.ok_or_else(|| not_found(location))
    }
}

fn lock(db: &Mutex<rusqlite::Connection>) -> MutexGuard<'_, rusqlite::Connection> {
    // A panic while holding the lock cannot leave a transaction open (it rolls back on drop).
    db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn find(
    db: &rusqlite::Connection,
    tables: &Tables,
    name: &str,
) -> object_store::Result<Option<(i64, u64, i64)>> {
    db.query_row(
        &format!(
            "SELECT file_id, file_size, upload_time FROM {} WHERE filename = ?1",
            tables.files
        ),
        [name],
        |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64, row.get(2)?)),
    )
    .optional()
    .map_err(sqlite)
}

/// Writes `data` as chunks of `file_id` starting at `offset`.
fn insert_chunks(
    db: &rusqlite::Connection,
    tables: &Tables,
    file_id: i64,
    mut offset: u64,
    data: &[u8],
) -> rusqlite::Result<()> {
    let mut insert = db.prepare_cached(&format!(
        "INSERT INTO {} (file_id, byte_offset, payload) VALUES (?1, ?2, ?3)",
        tables.payload
    ))?;
    for chunk in data.chunks(CHUNK) {
        insert.execute(params![file_id, offset as i64, chunk])?;
        offset += chunk.len() as u64;
    }
    Ok(())
}

/// Points `name` at the chunks of `file_id` (`size` bytes), dropping what it pointed at; with
/// `create`, fails if `name` exists. Runs inside the caller's transaction.
fn link(
    db: &rusqlite::Connection,
    tables: &Tables,
    name: &str,
    file_id: i64,
    size: u64,
    user: &str,
    create: bool,
) -> object_store::Result<()> {
    if let Some((old, _, _)) = find(db, tables, name)? {
        if create {
            return Err(object_store::Error::AlreadyExists {
                path: name.to_owned(),
                source: "the file exists".into(),
            });
        }
        db.execute(&format!("DELETE FROM {} WHERE file_id = ?1", tables.payload), [old])
            .map_err(sqlite)?;
    }
    db.execute(
        &format!(
            "INSERT OR REPLACE INTO {} (filename, file_id, file_size, username, upload_time) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            tables.files
        ),
        params![name, file_id, size as i64, user, Utc::now().timestamp_micros()],
    )
    .map_err(sqlite)?;
    Ok(())
}

fn meta(location: Path, size: u64, micros: i64, file_id: i64) -> ObjectMeta {
    ObjectMeta {
        location,
        last_modified: DateTime::from_timestamp_micros(micros).unwrap_or_default(),
        size,
        e_tag: Some(format!("\"{file_id}\"")),
        version: None,
    }
}

/// A fresh file id: random, so concurrent uploads never share one before they commit.
fn new_file_id() -> i64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (std::collections::hash_map::RandomState::new().hash_one(n) >> 1) as i64
}

fn sqlite(source: rusqlite::Error) -> object_store::Error {
    object_store::Error::Generic { store: STORE, source: Box::new(source) }
}

fn not_found(location: &Path) -> object_store::Error {
    object_store::Error::NotFound { path: location.to_string(), source: "no such file".into() }
}

impl fmt::Display for UserfileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Userfile({})", self.tables.qualified)
    }
}

#[async_trait]
impl ObjectStore for UserfileStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let create = match opts.mode {
            PutMode::Overwrite => false,
            PutMode::Create => true,
            PutMode::Update(_) => {
                return Err(object_store::Error::NotImplemented {
                    operation: "put with PutMode::Update".into(),
                    implementer: STORE.into(),
                });
            }
        };
        let data: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        let file_id = new_file_id();
        insert_chunks(&tx, &self.tables, file_id, 0, &data).map_err(sqlite)?;
        link(&tx, &self.tables, location.as_ref(), file_id, data.len() as u64, &self.user, create)?;
        tx.commit().map_err(sqlite)?;
        Ok(PutResult {
            e_tag: Some(format!("\"{file_id}\"")),
            version: None,
            extensions: Default::default(),
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(Upload {
            db: self.db.clone(),
            tables: self.tables.clone(),
            name: location.as_ref().to_owned(),
            user: self.user.clone(),
            file_id: new_file_id(),
            offset: 0,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let (file_id, size, micros) = self.row(location)?;
        let meta = meta(location.clone(), size, micros, file_id);
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(range) => range
                .as_range(size)
                .map_err(|e| object_store::Error::Generic { store: STORE, source: Box::new(e) })?,
            None => 0..size,
        };
        let stream = if options.head {
            futures::stream::empty().boxed()
        } else {
            chunks(self.db.clone(), self.tables.clone(), location.clone(), file_id, range.clone())
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let (db, tables) = (self.db.clone(), self.tables.clone());
        locations
            .map(move |location| {
                let location = location?;
                let mut db = lock(&db);
                let tx =
                    db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
                let Some((file_id, _, _)) = find(&tx, &tables, location.as_ref())? else {
                    return Err(not_found(&location));
                };
                tx.execute(
                    &format!("DELETE FROM {} WHERE file_id = ?1", tables.payload),
                    [file_id],
                )
                .map_err(sqlite)?;
                tx.execute(&format!("DELETE FROM {} WHERE file_id = ?1", tables.files), [file_id])
                    .map_err(sqlite)?;
                tx.commit().map_err(sqlite)?;
                Ok(location)
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let listed = self.list_all(prefix);
        match listed {
            Ok(objects) => futures::stream::iter(objects.into_iter().map(Ok)).boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let base = prefix.map(|p| p.as_ref().to_owned()).unwrap_or_default();
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: Default::default(),
        };
        for object in self.list_all(prefix)? {
            let name = object.location.as_ref();
            let rest = if base.is_empty() { name } else { &name[base.len() + 1..] };
            match rest.split_once('/') {
                Some((dir, _)) => {
                    let common =
                        if base.is_empty() { dir.to_owned() } else { format!("{base}/{dir}") };
                    let common = Path::parse(&common)?;
                    if result.common_prefixes.last() != Some(&common) {
                        result.common_prefixes.push(common);
                    }
                }
                None => result.objects.push(object),
            }
        }
        Ok(result)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let create = matches!(options.mode, CopyMode::Create);
        let mut db = self.lock();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        let (source, size, _) =
            find(&tx, &self.tables, from.as_ref())?.ok_or_else(|| not_found(from))?;
        let file_id = new_file_id();
        tx.execute(
            &format!(
                "INSERT INTO {p} (file_id, byte_offset, payload) \
                 SELECT ?1, byte_offset, payload FROM {p} WHERE file_id = ?2",
                p = self.tables.payload
            ),
            params![file_id, source],
        )
        .map_err(sqlite)?;
        link(&tx, &self.tables, to.as_ref(), file_id, size, &self.user, create)?;
        tx.commit().map_err(sqlite)
    }
}

impl UserfileStore {
    /// Every file under `prefix` (whole path segments), ordered by name.
    fn list_all(&self, prefix: Option<&Path>) -> object_store::Result<Vec<ObjectMeta>> {
        let db = self.lock();
        let prefix = prefix.map(|p| p.as_ref()).filter(|p| !p.is_empty());
        // Names under `p/` sort between `p/` and `p0` (`0` follows `/` in bytes).
        let (low, high) = match prefix {
            Some(p) => (format!("{p}/"), format!("{p}0")),
            None => (String::new(), "\u{10ffff}".repeat(2)),
        };
        let mut select = db
            .prepare_cached(&format!(
                "SELECT filename, file_size, upload_time, file_id FROM {} \
                 WHERE filename >= ?1 AND filename < ?2 ORDER BY filename",
                self.tables.files
            ))
            .map_err(sqlite)?;
        let rows = select
            .query_map([low, high], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(sqlite)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, size, micros, file_id) = row.map_err(sqlite)?;
            let location = Path::parse(&name)?;
            out.push(meta(location, size as u64, micros, file_id));
        }
        Ok(out)
    }
}

/// The bytes of `range` of file `file_id`, one chunk row at a time. A file replaced while it
/// is read ends the stream with an error rather than mixing two contents.
fn chunks(
    db: Arc<Mutex<rusqlite::Connection>>,
    tables: Arc<Tables>,
    location: Path,
    file_id: i64,
    range: Range<u64>,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    let start = range.start;
    futures::stream::try_unfold(start, move |next| {
        let (db, tables, location) = (db.clone(), tables.clone(), location.clone());
        let end = range.end;
        async move {
            if next >= end {
                return Ok(None);
            }
            let db = lock(&db);
            // The chunk that holds `next`: the last one starting at or before it.
            let row: Option<(i64, Vec<u8>)> = db
                .query_row(
                    &format!(
                        "SELECT byte_offset, payload FROM {} WHERE file_id = ?1 \
                         AND byte_offset <= ?2 ORDER BY byte_offset DESC LIMIT 1",
                        tables.payload
                    ),
                    params![file_id, next as i64],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(sqlite)?;
            let Some((offset, payload)) = row else {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!("{location} was replaced or deleted while being read").into(),
                });
            };
            let offset = offset as u64;
            let from = (next - offset) as usize;
            let to = ((end - offset) as usize).min(payload.len());
            if from >= to {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!("{location} was replaced or deleted while being read").into(),
                });
            }
            let bytes = Bytes::from(payload).slice(from..to);
            Ok(Some((bytes, offset + to as u64)))
        }
    })
    .boxed()
}

/// A multipart upload: each part goes straight into chunk rows under the upload's own file
/// id; `complete` points the name at them.
#[derive(Debug)]
struct Upload {
    db: Arc<Mutex<rusqlite::Connection>>,
    tables: Arc<Tables>,
    name: String,
    user: String,
    file_id: i64,
    offset: u64,
}

#[async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let offset = self.offset;
        self.offset += data.content_length() as u64;
        let bytes: Vec<u8> = data.iter().flat_map(|b| b.iter().copied()).collect();
        // Parts are written in the order they are given, here, so offsets never interleave.
        let result = insert_chunks(&lock(&self.db), &self.tables, self.file_id, offset, &bytes)
            .map_err(sqlite);
        Box::pin(futures::future::ready(result))
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let mut db = lock(&self.db);
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite)?;
        link(&tx, &self.tables, &self.name, self.file_id, self.offset, &self.user, false)?;
        tx.commit().map_err(sqlite)?;
        Ok(PutResult {
            e_tag: Some(format!("\"{}\"", self.file_id)),
            version: None,
            extensions: Default::default(),
        })
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        lock(&self.db)
            .execute(
                &format!("DELETE FROM {} WHERE file_id = ?1", self.tables.payload),
                [self.file_id],
            )
            .map(drop)
            .map_err(sqlite)
    }
}
