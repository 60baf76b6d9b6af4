//! BACKUP and RESTORE of SQLite databases, laid out as CockroachDB lays out its backups.
//!
//! A backup copies each database consistently (every database is read-locked, then copied
//! page for page with SQLite's online backup API into a private temp file), cuts the copy
//! into fixed-size chunks ([`DEFAULT_CHUNK_SIZE`], a multiple of every page size, so changing
//! a row changes only the chunks holding its pages) and uploads each chunk under
//! `data/<sha256>` unless a chunk of that content is there already. The manifest goes up last
//! and `LATEST` after it: a backup that fails midway leaves every earlier backup restorable,
//! and an incremental backup of an unchanged database uploads its manifest only. See
//! [`manifest`] for the layout and the manifest's fields.
//!
//! Every manifest lists every chunk of every database it holds, so any one backup restores
//! alone; an incremental backup differs from a full one in where it lives and in reusing its
//! chain's chunks.
//!
//! With [`BackupOptions::encryption`] a backup is encrypted (envelope encryption, see
//! `crypto.rs`): a random data key per chain seals every chunk and the manifest with
//! AES-256-GCM, and is stored wrapped by the passphrase in the manifest's `encryption` field
//! ([`manifest::Encryption`]); chunks are named by HMAC-SHA256 under the data key and live under
//! `data/<key id>/`. Restoring, describing or extending an encrypted chain needs the key
//! ([`RestoreOptions::encryption`]); a key given for a plaintext chain is refused.
//!
//! Blocking work (SQLite, hashing, reading and writing chunks of local files) runs in
//! `tokio::task::spawn_blocking`; the functions are `async` for the storage requests and are
//! meant for a current-thread runtime's `block_on`. At most `concurrency` chunks are in memory
//! at once, whatever the size of the databases. Snapshots need free space for a copy of each
//! database in the scratch directory.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use extconn_providers::backup::{self, BackupOptions, DatabaseSource, RestoreOptions};
//! use extconn_providers::{Config, Target, storage};
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("movr.db");
//! rusqlite::Connection::open(&db)?
//!     .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); \
//!                     INSERT INTO users (name) VALUES ('ana'), ('bo');")?;
//! let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
//! let collection = storage::open(&config, &Target::new("nodelocal", "1", "backups"))?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//!
//! let source = DatabaseSource { name: "movr".into(), path: db, tables: Vec::new() };
//! let summary =
//!     runtime.block_on(backup::backup(&collection, &[source], &BackupOptions::default()))?;
//! assert_eq!(summary.databases[0].tables[0].rows, 2);
//! assert_eq!(runtime.block_on(backup::list_backups(&collection))?, vec![summary.subdir]);
//!
//! let restored =
//!     runtime.block_on(backup::restore(&collection, dir.path(), &RestoreOptions::default()))?;
//! let movr = restored.databases.into_iter().next().unwrap();
//! assert_eq!(movr.rows(), 2);
//! movr.persist(&dir.path().join("restored.db"))?;
//! # Ok(())
//! # }
//! ```

mod chunks;
mod crypto;
mod error;
pub mod manifest;
mod sqlite;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::{StreamExt, TryStreamExt, stream};

use self::chunks::Chunks;
use self::crypto::DataKey;
pub use self::crypto::EncryptionKey;
pub use self::error::{Error, ErrorKind};
pub use self::manifest::{BackupKind, Manifest, Place, Scope, TableEntry};
use self::manifest::{Chunk, DatabaseEntry, INCREMENTALS_DIR, LATEST, MANIFEST, Options, Parent};
use crate::storage::Location;

/// Bytes per chunk unless told otherwise: small enough that a changed row re-uploads little,
/// large enough that a 1 GiB database is 256 objects.
pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;
/// Chunks uploaded or downloaded at once unless told otherwise; also the most chunks in memory.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// SQLite's largest page size: chunk sizes are multiples of it, so of every page size.
const MAX_PAGE_SIZE: usize = 64 << 10;

/// A database to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSource {
    /// Its name in the backup (`movr`).
    pub name: String,
    /// The SQLite file; it must exist.
    pub path: PathBuf,
    /// The tables to back up (`BACKUP TABLE movr.users`); empty for the whole database.
    pub tables: Vec<String>,
}

/// Where a backup goes in its collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Destination {
    /// A new full backup in a subdir named from its end time (`BACKUP … INTO '<uri>'`).
    #[default]
    NewFull,
    /// An incremental backup appended to the chain `LATEST` names (`INTO LATEST IN …`).
    Latest,
    /// An incremental backup appended to this existing full backup's chain
    /// (`INTO '/2026/11/26-035037.12' IN …`).
    Subdir(String),
}

/// How far a backup or restore is: bytes of database files read or written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes done.
    pub bytes_done: u64,
    /// Bytes in all.
    pub bytes_total: u64,
}

/// A progress callback, called after each chunk.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

/// How to take a backup.
#[derive(Clone)]
pub struct BackupOptions<'a> {
    /// Full, or incremental onto which chain.
    pub destination: Destination,
    /// Where incremental backups go instead of the collection (`WITH incremental_location`).
    pub incremental_location: Option<&'a Location>,
    /// `WITH revision_history`: recorded in the manifest.
    pub revision_history: bool,
    /// Where the snapshot copies go; the system temp dir when `None`.
    pub scratch_dir: Option<PathBuf>,
    /// Bytes per chunk, a positive multiple of 64 KiB.
    pub chunk_size: usize,
    /// Chunks in flight at once.
    pub concurrency: usize,
    /// Called with the bytes done so far.
    pub progress: Option<ProgressFn<'a>>,
    /// Encrypts a new full backup with a fresh data key wrapped by this key; for an
    /// incremental backup, the key that opens its encrypted chain (whose data key it reuses).
    /// `None`: a plaintext backup, appended to a plaintext chain only.
    pub encryption: Option<EncryptionKey>,
}

impl Default for BackupOptions<'_> {
    fn default() -> Self {
        Self {
            destination: Destination::NewFull,
            incremental_location: None,
            revision_history: false,
            scratch_dir: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
            encryption: None,
        }
    }
}

impl std::fmt::Debug for BackupOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("destination", &self.destination)
            .field("incremental_location", &self.incremental_location.is_some())
            .field("revision_history", &self.revision_history)
            .field("scratch_dir", &self.scratch_dir)
            .field("chunk_size", &self.chunk_size)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress.is_some())
            .field("encryption", &self.encryption)
            .finish()
    }
}

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The full backup's subdir (for an incremental, the chain's), `/2026/11/26-035037.12`.
    pub subdir: String,
    /// This backup's directory in the location that holds its manifest.
    pub dir: String,
    /// Full or incremental.
    pub kind: BackupKind,
    /// The parent's end time, for an incremental (microseconds since the Unix epoch).
    pub start_time_micros: Option<i64>,
    /// The moment the backup shows the databases as of.
    pub end_time_micros: i64,
    /// Bytes of all databases.
    pub bytes_total: u64,
    /// Bytes of chunks uploaded (the rest was there already).
    pub bytes_uploaded: u64,
    /// Chunks of all databases.
    pub chunks_total: usize,
    /// Chunks uploaded.
    pub chunks_uploaded: usize,
    /// Per database.
    pub databases: Vec<DatabaseSummary>,
}

/// What a backup did to one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSummary {
    /// Its name.
    pub name: String,
    /// Whole or selected tables.
    pub scope: Scope,
    /// Bytes of the backed-up file.
    pub size_bytes: u64,
    /// Bytes of its chunks uploaded.
    pub uploaded_bytes: u64,
    /// Its tables with their rows.
    pub tables: Vec<TableEntry>,
}

/// Which backup to restore.
#[derive(Clone)]
pub struct RestoreOptions<'a> {
    /// The full backup's subdir; `None` for the one `LATEST` names.
    pub subdir: Option<String>,
    /// `AS OF SYSTEM TIME` (microseconds since the Unix epoch): the newest backup of the
    /// chain that ended at or before it. `None` for the newest.
    pub as_of: Option<i64>,
    /// The databases to restore; empty for every one the backup holds.
    pub databases: Vec<String>,
    /// Where the chain's incremental backups are (`WITH incremental_location`). When given,
    /// incrementals are looked for there only, as CockroachDB does; when not, in the
    /// collection only.
    pub incremental_location: Option<&'a Location>,
    /// Chunks downloaded at once.
    pub concurrency: usize,
    /// Called with the bytes done so far.
    pub progress: Option<ProgressFn<'a>>,
    /// The key that opens an encrypted backup; `None` for a plaintext one.
    pub encryption: Option<EncryptionKey>,
}

impl Default for RestoreOptions<'_> {
    fn default() -> Self {
        Self {
            subdir: None,
            as_of: None,
            databases: Vec::new(),
            incremental_location: None,
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
            encryption: None,
        }
    }
}

impl std::fmt::Debug for RestoreOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("subdir", &self.subdir)
            .field("as_of", &self.as_of)
            .field("databases", &self.databases)
            .field("incremental_location", &self.incremental_location.is_some())
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress.is_some())
            .field("encryption", &self.encryption)
            .finish()
    }
}

/// What a restore produced.
#[derive(Debug)]
pub struct Restored {
    /// The backup restored from (its subdir, and directory for an incremental).
    pub backup: String,
    /// Full or incremental.
    pub kind: BackupKind,
    /// The moment the restored databases show.
    pub end_time_micros: i64,
    /// The restored files.
    pub databases: Vec<RestoredDatabase>,
}

/// One restored, verified database file. It is a temp file, deleted when this is dropped
/// unless [`persist`](Self::persist)ed.
#[derive(Debug)]
pub struct RestoredDatabase {
    /// The database's name in the backup.
    pub name: String,
    /// Whole database or selected tables.
    pub scope: Scope,
    /// Bytes of the file.
    pub size_bytes: u64,
    /// Its tables, counted in the restored file.
    pub tables: Vec<TableEntry>,
    file: tempfile::TempPath,
}

impl RestoredDatabase {
    /// The temp file, for reading (e.g. [`copy_tables`]) before it is persisted or dropped.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Rows in all its tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// Moves the file to `to` (a rename: the same filesystem as the restore's directory),
    /// replacing what is there.
    pub fn persist(self, to: &Path) -> Result<(), Error> {
        self.file
            .persist(to)
            .map(drop)
            .map_err(|e| Error::io("cannot move the restored database to", to)(e.error))
    }
}

/// What SHOW BACKUP shows: a database row, then one row per table, for every database of
/// every backup in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowBackupRow {
    /// The database (for a table row, the database it is in).
    pub database_name: String,
    /// The database's or the table's name.
    pub object_name: String,
    /// Database or table.
    pub object_type: ObjectType,
    /// Full or incremental.
    pub backup_type: BackupKind,
    /// The backup's start time (its parent's end time), none for a full backup.
    pub start_time_micros: Option<i64>,
    /// The backup's end time.
    pub end_time_micros: i64,
    /// The database file's bytes, or the table's pages' (with its indexes).
    pub size_bytes: u64,
    /// Rows of the table, or of all the database's tables.
    pub rows: u64,
    /// The backup's directory (the subdir for a full backup).
    pub dir: String,
    /// Whether the database entry holds selected tables only.
    pub scope: Scope,
}

/// What a [`ShowBackupRow`] describes. CockroachDB's `parent_schema_name` is `public` for
/// every table row, and `is_full_cluster` is always false: a backup names its databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// A database.
    Database,
    /// A table.
    Table,
}

/// Takes a backup of `databases` into `collection`.
pub async fn backup(
    collection: &Location,
    databases: &[DatabaseSource],
    options: &BackupOptions<'_>,
) -> Result<BackupSummary, Error> {
    check_backup_options(databases, options)?;
    let chunks = Chunks { collection, incremental: options.incremental_location, key: None };
    let mut keyring = Keyring::new(options.encryption.as_ref());
    let parent = match &options.destination {
        Destination::NewFull => None,
        Destination::Latest => {
            let subdir = read_latest(collection).await?;
            load_chain(chunks, &subdir, &mut keyring).await?.pop()
        }
        Destination::Subdir(subdir) => {
            load_chain(chunks, &subdir_option(subdir)?, &mut keyring).await?.pop()
        }
    };
    // An incremental backup keeps its chain's data key (reading the chain checked the key
    // given); a full one gets a fresh data key.
    let (data_key, encryption) = match (&parent, &options.encryption) {
        (Some(parent), _) => match &parent.encryption {
            Some(header) => (Some(keyring.get(&header.key_id)?), Some(header.clone())),
            None => (None, None),
        },
        (None, Some(key)) => {
            let (data_key, header) = DataKey::generate(key).await?;
            (Some(Arc::new(data_key)), Some(header))
        }
        (None, None) => (None, None),
    };
    let chunks = Chunks { key: data_key.as_ref(), ..chunks };
    let kind = if parent.is_some() { BackupKind::Incremental } else { BackupKind::Full };
    let place = match (kind, options.incremental_location) {
        (BackupKind::Incremental, Some(_)) => Place::Incremental,
        _ => Place::Collection,
    };

    let scratch_dir = options.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::Builder::new()
        .prefix("extconn-backup-")
        .tempdir_in(&scratch_dir)
        .map_err(Error::io("cannot create a scratch directory in", &scratch_dir))?;
    let (sources, scratch_path) = (databases.to_vec(), scratch.path().to_owned());
    let (locks, copies) = blocking("snapshot", move || {
        let locks = sources.iter().map(|s| sqlite::lock(&s.path)).collect::<Result<Vec<_>, _>>()?;
        let mut copies = Vec::with_capacity(locks.len());
        for (i, lock) in locks.iter().enumerate() {
            let copy = scratch_path.join(format!("{i}.db"));
            lock.copy_to(&copy)?;
            copies.push(copy);
        }
        Ok((locks, copies))
    })
    .await?;
    // Named while every lock still holds, so the end time is a moment the copies show.
    let (end_time, subdir, dir) = name_backup(chunks, place, parent.as_ref()).await?;
    drop(locks);

    let sources = databases.to_vec();
    let prepared: Vec<Prepared> = blocking("snapshot", move || {
        sources.iter().zip(copies).map(|(source, copy)| prepare(source, copy)).collect()
    })
    .await?;

    let present_collection = chunks.present(Place::Collection).await?;
    let present_incremental = match place {
        Place::Incremental => chunks.present(Place::Incremental).await?,
        Place::Collection => HashSet::new(),
    };
    let uploader = Uploader {
        chunks,
        place,
        present_collection,
        present_incremental,
        claimed: std::sync::Mutex::new(HashSet::new()),
        chunk_size: options.chunk_size,
        concurrency: options.concurrency,
        progress: Counter::new(options.progress, prepared.iter().map(|p: &Prepared| p.size).sum()),
    };
    let mut entries = Vec::with_capacity(prepared.len());
    let mut chunks_uploaded = 0;
    for database in &prepared {
        let (entry, uploaded) = uploader.upload(database).await?;
        chunks_uploaded += uploaded;
        entries.push(entry);
    }
    drop(scratch);

    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        kind,
        subdir: subdir.clone(),
        dir: dir.clone(),
        place,
        parent: parent.as_ref().map(|p| Parent {
            dir: p.dir.clone(),
            place: p.place,
            end_time_micros: p.end_time_micros,
        }),
        start_time_micros: parent.as_ref().map(|p| p.end_time_micros),
        end_time_micros: end_time,
        options: Options { revision_history: options.revision_history },
        encryption,
        chunk_size: options.chunk_size as u64,
        databases: entries,
    };
    write_manifest(chunks, &manifest).await?;
    if kind == BackupKind::Full {
        collection
            .put(LATEST, subdir.clone().into_bytes())
            .await
            .map_err(|e| Error::storage(format!("updating LATEST to {subdir}"), e))?;
    }
    Ok(summarize(&manifest, chunks_uploaded))
}

/// The full backups of `collection`, oldest first (SHOW BACKUPS IN).
pub async fn list_backups(collection: &Location) -> Result<Vec<String>, Error> {
    let listing = |e| Error::storage("listing the backups in the collection".to_owned(), e);
    let mut out = Vec::new();
    for year in collection.list("", Some("/")).await.map_err(listing)? {
        let name = year.key.trim_end_matches('/');
        if name.len() != 4 || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let keys = collection.list(&year.key, None).await.map_err(listing)?;
        out.extend(keys.iter().filter_map(|m| manifest::full_subdir_of_key(&m.key)));
    }
    out.sort();
    Ok(out)
}

/// SHOW BACKUP of the chain of `subdir` (`None` for `LATEST`): the full backup and its
/// incrementals, oldest first.
/// `encryption` opens an encrypted chain's manifests (no chunk is read).
pub async fn describe(
    collection: &Location,
    subdir: Option<&str>,
    incremental_location: Option<&Location>,
    encryption: Option<&EncryptionKey>,
) -> Result<Vec<ShowBackupRow>, Error> {
    let chunks = Chunks { collection, incremental: incremental_location, key: None };
    let mut keyring = Keyring::new(encryption);
    let subdir = match subdir {
        Some(subdir) => subdir_option(subdir)?,
        None => read_latest(collection).await?,
    };
    let mut rows = Vec::new();
    for backup in load_chain(chunks, &subdir, &mut keyring).await? {
        for db in &backup.databases {
            let row = |object_name: &str, object_type, size_bytes, rows| ShowBackupRow {
                database_name: db.name.clone(),
                object_name: object_name.to_owned(),
                object_type,
                backup_type: backup.kind,
                start_time_micros: backup.start_time_micros,
                end_time_micros: backup.end_time_micros,
                size_bytes,
                rows,
                dir: backup.dir.clone(),
                scope: db.scope,
            };
            let total = db.tables.iter().map(|t| t.rows).sum();
            rows.push(row(&db.name, ObjectType::Database, db.size_bytes, total));
            for table in &db.tables {
                rows.push(row(&table.name, ObjectType::Table, table.size_bytes, table.rows));
            }
        }
    }
    Ok(rows)
}

/// Restores databases from a backup into temp files in `dir`, each verified chunk by chunk,
/// as a whole and by `PRAGMA quick_check`. The caller persists (renames) them into
/// place; on any error nothing is left in `dir`.
pub async fn restore(
    collection: &Location,
    dir: &Path,
    options: &RestoreOptions<'_>,
) -> Result<Restored, Error> {
    if options.concurrency == 0 {
        return Err(Error::InvalidOption {
            option: "concurrency",
            reason: "must be at least 1".into(),
        });
    }
    let chunks = Chunks { collection, incremental: options.incremental_location, key: None };
    let mut keyring = Keyring::new(options.encryption.as_ref());
    let subdir = match &options.subdir {
        Some(subdir) => subdir_option(subdir)?,
        None => read_latest(collection).await?,
    };
    let chain = load_chain(chunks, &subdir, &mut keyring).await?;
    let oldest = chain[0].end_time_micros;
    let chosen = match options.as_of {
        None => chain.into_iter().next_back(),
        Some(as_of) => chain.into_iter().rfind(|m| m.end_time_micros <= as_of),
    };
    let Some(backup) = chosen else {
        return Err(Error::NoBackupAsOf {
            subdir,
            as_of: manifest::show_time(options.as_of.unwrap_or_default()),
            oldest: manifest::show_time(oldest),
        });
    };
    let mut selected = Vec::new();
    for name in &options.databases {
        let Some(entry) = backup.databases.iter().find(|d| &d.name == name) else {
            let available: Vec<&str> = backup.databases.iter().map(|d| d.name.as_str()).collect();
            return Err(Error::DatabaseNotInBackup {
                database: name.clone(),
                backup: backup.display(),
                available: available.join(", "),
            });
        };
        selected.push(entry);
    }
    if options.databases.is_empty() {
        selected = backup.databases.iter().collect();
    }
    let data_key = match &backup.encryption {
        Some(header) => Some(keyring.get(&header.key_id)?),
        None => None,
    };
    let chunks = Chunks { key: data_key.as_ref(), ..chunks };
    let progress = Counter::new(options.progress, selected.iter().map(|d| d.size_bytes).sum());
    let mut databases = Vec::with_capacity(selected.len());
    for entry in selected {
        databases.push(
            restore_database(chunks, &backup, entry, dir, options.concurrency, &progress).await?,
        );
    }
    Ok(Restored {
        backup: backup.display(),
        kind: backup.kind,
        end_time_micros: backup.end_time_micros,
        databases,
    })
}

/// Copies `tables` (every table when empty) of a restored database file into `into`'s main
/// database in one transaction: schema, rows, indexes and triggers (RESTORE TABLE). A table
/// that exists already fails the whole copy with [`Error::RelationExists`]
/// (`relation "users" already exists`, SQLSTATE 42P07). Blocking.
pub fn copy_tables(
    restored: &RestoredDatabase,
    tables: &[String],
    into: &mut rusqlite::Connection,
) -> Result<Vec<TableEntry>, Error> {
    let mut copied = sqlite::copy_tables(restored.path(), &restored.name, tables, into)?;
    for table in &mut copied {
        if let Some(known) = restored.tables.iter().find(|t| t.name == table.name) {
            table.size_bytes = known.size_bytes;
        }
    }
    Ok(copied)
}

fn check_backup_options(
    databases: &[DatabaseSource],
    options: &BackupOptions<'_>,
) -> Result<(), Error> {
    let invalid =
        |option, reason: &str| Err(Error::InvalidOption { option, reason: reason.into() });
    if databases.is_empty() {
        return invalid("databases", "nothing to back up");
    }
    if options.chunk_size == 0 || !options.chunk_size.is_multiple_of(MAX_PAGE_SIZE) {
        return invalid("chunk_size", "must be a positive multiple of 65536");
    }
    if options.concurrency == 0 {
        return invalid("concurrency", "must be at least 1");
    }
    if options.destination == Destination::NewFull && options.incremental_location.is_some() {
        return invalid(
            "incremental_location",
            "applies to incremental backups only (INTO LATEST or INTO '<subdir>')",
        );
    }
    let mut seen = HashSet::new();
    for db in databases {
        if !seen.insert(db.name.as_str()) {
            return Err(Error::DuplicateDatabase { database: db.name.clone() });
        }
    }
    Ok(())
}

fn subdir_option(subdir: &str) -> Result<String, Error> {
    manifest::normalize_subdir(subdir).ok_or_else(|| Error::InvalidOption {
        option: "subdir",
        reason: format!("{subdir:?} cannot name a backup"),
    })
}

/// Runs blocking `work` off the runtime's thread.
pub(crate) async fn blocking<T: Send + 'static>(
    task: &'static str,
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await.map_err(|_| Error::Task { task })?
}

fn now_micros() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_micros() as i64).unwrap_or_default()
}

/// The end time, subdir and directory of a new backup: now, unless a backup of that name
/// exists (names have centisecond resolution), then a little later.
async fn name_backup(
    chunks: Chunks<'_>,
    place: Place,
    parent: Option<&Manifest>,
) -> Result<(i64, String, String), Error> {
    let location = chunks.location(place, "")?;
    loop {
        let now = now_micros();
        let (subdir, dir) = match parent {
            None => {
                let subdir = manifest::full_subdir(now);
                let dir = subdir.trim_start_matches('/').to_owned();
                (subdir, dir)
            }
            Some(p) => (p.subdir.clone(), manifest::incremental_dir(&p.subdir, now)),
        };
        let after_parent = parent.is_none_or(|p| now > p.end_time_micros);
        let taken = location
            .list(&format!("{dir}/"), None)
            .await
            .map_err(|e| Error::storage(format!("listing {dir} in the {}", place.noun()), e))?;
        if after_parent && taken.is_empty() {
            return Ok((now, subdir, dir));
        }
        // No timer needed from the caller's runtime: sleep on the blocking pool.
        blocking("wait", || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            Ok(())
        })
        .await?;
    }
}

/// A snapshot copy ready to upload.
#[derive(Debug)]
struct Prepared {
    name: String,
    scope: Scope,
    file: PathBuf,
    size: u64,
    page_size: u32,
    tables: Vec<TableEntry>,
}

/// Reduces the copy of `source` to its selected tables if any, then measures it. Blocking.
fn prepare(source: &DatabaseSource, copy: PathBuf) -> Result<Prepared, Error> {
    let (scope, file) = if source.tables.is_empty() {
        (Scope::Database, copy)
    } else {
        let subset = copy.with_extension("tables.db");
        let mut conn =
            rusqlite::Connection::open(&subset).map_err(Error::sqlite("cannot create", &subset))?;
        sqlite::copy_tables(&copy, &source.name, &source.tables, &mut conn)?;
        drop(conn);
        (Scope::Tables, subset)
    };
    let (page_size, tables) = sqlite::stats(&file)?;
    let size = std::fs::metadata(&file).map_err(Error::io("cannot read", &file))?.len();
    Ok(Prepared { name: source.name.clone(), scope, file, size, page_size, tables })
}

/// Reports progress as chunks complete.
struct Counter<'a> {
    callback: Option<ProgressFn<'a>>,
    done: AtomicU64,
    total: u64,
}

impl<'a> Counter<'a> {
    fn new(callback: Option<ProgressFn<'a>>, total: u64) -> Self {
        Self { callback, done: AtomicU64::new(0), total }
    }

    fn add(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(callback) = self.callback {
            callback(Progress { bytes_done: done, bytes_total: self.total });
        }
    }
}

/// Uploads the chunks of one backup's databases.
struct Uploader<'a> {
    chunks: Chunks<'a>,
    /// Where new chunks go.
    place: Place,
    present_collection: HashSet<String>,
    present_incremental: HashSet<String>,
    /// Chunks this backup uploads, so that equal chunks go up once.
    claimed: std::sync::Mutex<HashSet<String>>,
    chunk_size: usize,
    concurrency: usize,
    progress: Counter<'a>,
}

impl Uploader<'_> {
    /// Uploads `database`'s missing chunks, `concurrency` at once, in order of completion but
    /// recorded in file order; its manifest entry and how many chunks went up.
    async fn upload(&self, database: &Prepared) -> Result<(DatabaseEntry, usize), Error> {
        let path = database.file.clone();
        // The whole file's hash, read beside the chunks: it overlaps the uploads (the copy is
        // in the page cache by now) instead of adding a pass before them.
        let whole = blocking("snapshot hash", move || sqlite::file_sha256(&path));
        let path = database.file.clone();
        let count = database.size.div_ceil(self.chunk_size as u64);
        let chunks = stream::iter(0..count)
            .map(|i| {
                let path = path.clone();
                let offset = i * self.chunk_size as u64;
                let len = (database.size - offset).min(self.chunk_size as u64) as usize;
                let key = self.chunks.key.cloned();
                async move {
                    let (data, sha256) = blocking("chunk read", move || {
                        let data = sqlite::read_chunk(&path, offset, len)?;
                        let name = Chunks::name(key.as_deref(), &data);
                        Ok((data, name))
                    })
                    .await?;
                    let (place, uploaded) = self.store(sha256.clone(), data).await?;
                    self.progress.add(len as u64);
                    Ok::<_, Error>((Chunk { sha256, len: len as u64, place }, uploaded))
                }
            })
            .buffered(self.concurrency)
            .try_collect::<Vec<(Chunk, bool)>>();
        let (results, (sha256, _)) = futures::try_join!(chunks, whole)?;
        let uploaded: Vec<bool> = results.iter().map(|(_, u)| *u).collect();
        let uploaded_bytes = results.iter().filter(|(_, u)| *u).map(|(c, _)| c.len).sum::<u64>();
        let entry = DatabaseEntry {
            name: database.name.clone(),
            scope: database.scope,
            page_size: database.page_size,
            size_bytes: database.size,
            sha256,
            uploaded_bytes,
            tables: database.tables.clone(),
            chunks: results.into_iter().map(|(c, _)| c).collect(),
        };
        Ok((entry, uploaded.iter().filter(|u| **u).count()))
    }

    /// Where the chunk `sha256` is, uploading it first if it is nowhere yet; whether it was.
    async fn store(&self, sha256: String, data: Vec<u8>) -> Result<(Place, bool), Error> {
        if self.present_collection.contains(&sha256) {
            return Ok((Place::Collection, false));
        }
        if self.present_incremental.contains(&sha256) {
            return Ok((Place::Incremental, false));
        }
        let first = self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(sha256.clone());
        if first {
            self.chunks.put(self.place, &sha256, data).await?;
        }
        Ok((self.place, first))
    }
}

async fn write_manifest(chunks: Chunks<'_>, manifest: &Manifest) -> Result<(), Error> {
    let location = chunks.location(manifest.place, &manifest.dir)?;
    let json = serde_json::to_vec_pretty(manifest).map_err(|_| Error::Task { task: "manifest" })?;
    let key = manifest.key();
    let json = match (&manifest.encryption, chunks.key) {
        (Some(encryption), Some(data_key)) => {
            let sealed = manifest::SealedManifest {
                format_version: manifest::FORMAT_VERSION,
                encryption: encryption.clone(),
                sealed: BASE64.encode(data_key.seal_manifest(&key, &json)?),
            };
            serde_json::to_vec_pretty(&sealed).map_err(|_| Error::Task { task: "manifest" })?
        }
        (None, None) => json,
        _ => return Err(Error::Task { task: "manifest encryption" }),
    };
    location.put(&key, json).await.map_err(|e| {
        Error::storage(format!("writing the manifest of backup {}", manifest.display()), e)
    })
}

/// Reads and checks the manifest at `key` in `place`. Not found stays a storage error, with
/// its kind, for the caller to name.
/// An encrypted manifest is opened with `keyring`; a plaintext one is refused if a key was
/// given (as CockroachDB refuses `encryption_passphrase` on a plaintext backup).
async fn read_manifest(
    chunks: Chunks<'_>,
    place: Place,
    key: &str,
    keyring: &mut Keyring<'_>,
) -> Result<Manifest, ReadError> {
    /// Enough of either shape of manifest to tell which it is.
    #[derive(serde::Deserialize)]
    struct Probe {
        format_version: u32,
        #[serde(default)]
        encryption: Option<serde::de::IgnoredAny>,
    }
    let location = chunks.location(place, key).map_err(ReadError::Other)?;
    let bytes = location.get(key).await.map_err(ReadError::Storage)?;
    let corrupt = |source| {
        ReadError::Other(Error::CorruptManifest {
            place: place.noun(),
            key: key.to_owned(),
            source,
        })
    };
    let probe: Probe = serde_json::from_slice(&bytes).map_err(corrupt)?;
    if probe.format_version != manifest::FORMAT_VERSION {
        return Err(ReadError::Other(Error::UnsupportedVersion {
            key: key.to_owned(),
            version: probe.format_version,
            supported: manifest::FORMAT_VERSION,
        }));
    }
    let backup = format!("/{}", key.trim_end_matches(MANIFEST).trim_end_matches('/'));
    if probe.encryption.is_none() {
        if let Some(given) = keyring.given {
            return Err(ReadError::Other(Error::NotEncrypted { backup, option: given.option() }));
        }
        return serde_json::from_slice(&bytes).map_err(corrupt);
    }
    let sealed: manifest::SealedManifest = serde_json::from_slice(&bytes).map_err(corrupt)?;
    let data_key = keyring.open(&sealed.encryption, &backup).await.map_err(ReadError::Other)?;
    let failed = || ReadError::Other(Error::ManifestAuthentication { key: key.to_owned() });
    let ciphertext = BASE64.decode(&sealed.sealed).map_err(|_| failed())?;
    let json = data_key.open_manifest(key, &ciphertext).ok_or_else(failed)?;
    let manifest: Manifest = serde_json::from_slice(&json).map_err(corrupt)?;
    // The clear `encryption` field is the sealed one: neither was swapped.
    if manifest.encryption.as_ref() != Some(&sealed.encryption) {
        return Err(failed());
    }
    Ok(manifest)
}

/// The key the user gave, and the data keys it opened by id: a chain's manifests share one
/// data key, so PBKDF2 runs once per chain.
struct Keyring<'a> {
    given: Option<&'a EncryptionKey>,
    opened: Vec<Arc<DataKey>>,
}

impl<'a> Keyring<'a> {
    fn new(given: Option<&'a EncryptionKey>) -> Self {
        Self { given, opened: Vec::new() }
    }

    /// The data key of `header` (of `backup`), unwrapped with the key given.
    async fn open(
        &mut self,
        header: &manifest::Encryption,
        backup: &str,
    ) -> Result<Arc<DataKey>, Error> {
        if let Ok(key) = self.get(&header.key_id) {
            return Ok(key);
        }
        let Some(given) = self.given else {
            return Err(Error::Encrypted { backup: backup.to_owned() });
        };
        let key = Arc::new(DataKey::open(header, given, backup).await?);
        self.opened.push(Arc::clone(&key));
        Ok(key)
    }

    /// A data key opened already: every manifest read was opened.
    fn get(&self, key_id: &str) -> Result<Arc<DataKey>, Error> {
        self.opened
            .iter()
            .find(|k| k.id == key_id)
            .cloned()
            .ok_or(Error::Task { task: "data key lookup" })
    }
}

enum ReadError {
    Storage(crate::Error),
    Other(Error),
}

/// The subdir `LATEST` names.
async fn read_latest(collection: &Location) -> Result<String, Error> {
    match collection.get(LATEST).await {
        Ok(bytes) => String::from_utf8(bytes)
            .ok()
            .and_then(|s| manifest::normalize_subdir(&s))
            .ok_or(Error::CorruptLatest),
        Err(source) if source.kind() == crate::ErrorKind::NotFound => {
            Err(Error::NoBackups { source: Box::new(source) })
        }
        Err(e) => Err(Error::storage("reading LATEST".to_owned(), e)),
    }
}

/// The full backup at `subdir` and its incrementals, by end time.
async fn load_chain(
    chunks: Chunks<'_>,
    subdir: &str,
    keyring: &mut Keyring<'_>,
) -> Result<Vec<Manifest>, Error> {
    let key = format!("{}/{MANIFEST}", subdir.trim_matches('/'));
    let full = match read_manifest(chunks, Place::Collection, &key, keyring).await {
        Ok(full) => full,
        Err(ReadError::Storage(source)) if source.kind() == crate::ErrorKind::NotFound => {
            let source = Box::new(source);
            return Err(Error::BackupNotFound { subdir: subdir.to_owned(), source });
        }
        Err(ReadError::Storage(e)) => {
            return Err(Error::storage(format!("reading the manifest of backup {subdir}"), e));
        }
        Err(ReadError::Other(e)) => return Err(e),
    };
    let place = if chunks.incremental.is_some() { Place::Incremental } else { Place::Collection };
    let location = chunks.location(place, subdir)?;
    let prefix = format!("{INCREMENTALS_DIR}/{}/", subdir.trim_matches('/'));
    let listed = location.list(&prefix, None).await.map_err(|e| {
        Error::storage(
            format!("listing the incremental backups of {subdir} in the {}", place.noun()),
            e,
        )
    })?;
    let mut chain = vec![full];
    for meta in listed.iter().filter(|m| m.key.ends_with(&format!("/{MANIFEST}"))) {
        match read_manifest(chunks, place, &meta.key, keyring).await {
            Ok(incremental) => chain.push(incremental),
            Err(ReadError::Storage(e)) => {
                return Err(Error::storage(
                    format!("reading the incremental backup {}", meta.key),
                    e,
                ));
            }
            Err(ReadError::Other(e)) => return Err(e),
        }
    }
    chain.sort_by_key(|m| m.end_time_micros);
    Ok(chain)
}

fn summarize(manifest: &Manifest, chunks_uploaded: usize) -> BackupSummary {
    let databases: Vec<DatabaseSummary> = manifest
        .databases
        .iter()
        .map(|d| DatabaseSummary {
            name: d.name.clone(),
            scope: d.scope,
            size_bytes: d.size_bytes,
            uploaded_bytes: d.uploaded_bytes,
            tables: d.tables.clone(),
        })
        .collect();
    BackupSummary {
        subdir: manifest.subdir.clone(),
        dir: manifest.dir.clone(),
        kind: manifest.kind,
        start_time_micros: manifest.start_time_micros,
        end_time_micros: manifest.end_time_micros,
        bytes_total: databases.iter().map(|d| d.size_bytes).sum(),
        bytes_uploaded: databases.iter().map(|d| d.uploaded_bytes).sum(),
        chunks_total: manifest.databases.iter().map(|d| d.chunks.len()).sum(),
        chunks_uploaded,
        databases,
    }
}

/// Downloads, checks and reassembles one database into a temp file in `dir`.
async fn restore_database(
    chunks: Chunks<'_>,
    backup: &Manifest,
    entry: &DatabaseEntry,
    dir: &Path,
    concurrency: usize,
    progress: &Counter<'_>,
) -> Result<RestoredDatabase, Error> {
    let shown = backup.display();
    let temp = tempfile::Builder::new()
        .prefix(".extconn-restore-")
        .suffix(".db")
        .tempfile_in(dir)
        .map_err(Error::io("cannot create a temp file in", dir))?;
    let path = temp.path().to_owned();
    let file = temp.as_file().try_clone().map_err(Error::io("cannot open", &path))?;
    let hasher = <sha2::Sha256 as sha2::Digest>::new();
    let (file, hasher, len) = stream::iter(&entry.chunks)
        .map(|chunk| chunks.get(chunk.place, &chunk.sha256, chunk.len, &entry.name, &shown))
        .buffered(concurrency)
        .try_fold((file, hasher, 0u64), |(mut file, mut hasher, len), data| {
            let path = path.clone();
            progress.add(data.len() as u64);
            blocking("restore write", move || {
                use std::io::Write;
                sha2::Digest::update(&mut hasher, &data);
                file.write_all(&data).map_err(Error::io("cannot write", &path))?;
                Ok((file, hasher, len + data.len() as u64))
            })
        })
        .await?;
    let sha256 = chunks::hex(&sha2::Digest::finalize(hasher));
    if len != entry.size_bytes || sha256 != entry.sha256 {
        return Err(Error::CorruptDatabase { database: entry.name.clone(), backup: shown });
    }
    file.sync_all().map_err(Error::io("cannot sync", &path))?;
    drop(file);
    let (name, check_path) = (entry.name.clone(), path.clone());
    blocking("integrity check", move || sqlite::check(&check_path, &name, &shown)).await?;
    Ok(RestoredDatabase {
        name: entry.name.clone(),
        scope: entry.scope,
        size_bytes: entry.size_bytes,
        // The file is the one the manifest describes, byte for byte: its counts hold.
        tables: entry.tables.clone(),
        file: temp.into_temp_path(),
    })
}
