//! The manifest every backup writes last, and the layout of a collection.
//!
//! ```text
//! <collection>/LATEST                                   "/2026/11/26-035037.12"
//! <collection>/data/<sha256 hex>                        chunks, content-addressed
//! <collection>/data/<key id>/<hmac hex>                 chunks of an encrypted chain
//! <collection>/2026/11/26-035037.12/BACKUP_MANIFEST     a full backup
//! <inc>/incrementals/2026/11/26-035037.12/20261126/035512.40/BACKUP_MANIFEST
//! <inc>/data/<sha256 hex>                               chunks first uploaded by incrementals
//! ```
//!
//! `<inc>` is the `incremental_location` when one is given, the collection otherwise. Each
//! chunk entry names the location that holds it ([`Place`]), so a restore reads every chunk
//! from where the backup that uploaded it put it.
//!
//! An encrypted backup's `BACKUP_MANIFEST` is a [`SealedManifest`]: the `encryption` field in
//! the clear (the wrapped data key), the manifest itself sealed (see `crypto.rs`). A chunk of an
//! encrypted backup is stored as `nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16)`.

use serde::{Deserialize, Serialize};

/// The manifest format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name in a backup's directory.
pub const MANIFEST: &str = "BACKUP_MANIFEST";
/// The collection's marker of its newest full backup.
pub const LATEST: &str = "LATEST";
/// Where chunks live, in the collection and in an incremental location.
pub const DATA_DIR: &str = "data";
/// Where incremental backups live, in the collection or the incremental location.
pub const INCREMENTALS_DIR: &str = "incrementals";

/// A full backup, or an incremental one appended to a full backup's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// Starts a chain in its own subdir; `LATEST` points at it.
    Full,
    /// Appended to a full backup's chain.
    Incremental,
}

impl BackupKind {
    /// `full` or `incremental`, as SHOW BACKUP prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }
}

/// Which location holds an object a manifest refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// The collection (`BACKUP … IN '<collection>'`).
    Collection,
    /// The `incremental_location` given to the incremental backup that wrote it.
    Incremental,
}

impl Place {
    /// `collection` or `incremental location`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Collection => "collection",
            Self::Incremental => "incremental location",
        }
    }
}

/// Whether a database entry holds the whole database or selected tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The database file as it was.
    Database,
    /// A file made of the listed tables only (`BACKUP TABLE …`).
    Tables,
}

/// `BACKUP_MANIFEST`: everything needed to restore the backup, given the chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Full or incremental.
    pub kind: BackupKind,
    /// The full backup's subdir this backup belongs to, `/2026/11/26-035037.12`.
    pub subdir: String,
    /// This backup's directory, relative to the location that holds it.
    pub dir: String,
    /// The location that holds this manifest.
    pub place: Place,
    /// The backup this one follows in its chain (none for a full backup).
    pub parent: Option<Parent>,
    /// The parent's end time (microseconds since the Unix epoch, UTC), none for a full backup.
    pub start_time_micros: Option<i64>,
    /// The moment the backup shows the databases as of (every database was read-locked then).
    pub end_time_micros: i64,
    /// The options it was taken with.
    pub options: Options,
    /// How the backup is encrypted; `null` for a plaintext backup.
    pub encryption: Option<Encryption>,
    /// Bytes per chunk (the last chunk of a file may be shorter).
    pub chunk_size: u64,
    /// The databases it holds.
    pub databases: Vec<DatabaseEntry>,
}

/// The backup an incremental one follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// Its directory.
    pub dir: String,
    /// Which location holds it.
    pub place: Place,
    /// Its end time.
    pub end_time_micros: i64,
}

/// Recorded options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// `WITH revision_history` (recorded; SQLite files keep no MVCC history to back up).
    pub revision_history: bool,
}

/// How a backup is encrypted: the manifest's `encryption` field, `null` for a plaintext backup.
/// Every backup of an encrypted chain carries the full backup's field unchanged: one data key
/// per chain, so an incremental backup reuses the chain's chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// The cipher of chunks and manifests, `AES-256-GCM`.
    pub scheme: String,
    /// Names the chain's data key (random hex); its chunks live under `data/<key_id>/`.
    pub key_id: String,
    /// The data key wrapped by the key derived from `encryption_passphrase`.
    pub passphrase: Option<PassphraseKey>,
    /// The data key wrapped by each KMS key (the KMS providers, issue 7); any one opens it.
    #[serde(default)]
    pub kms: Vec<KmsKey>,
}

/// The data key, wrapped by a key derived from a passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassphraseKey {
    /// `PBKDF2-HMAC-SHA256`.
    pub kdf: String,
    /// Its rounds.
    pub iterations: u32,
    /// Its random salt, base64.
    pub salt: String,
    /// `nonce ‖ AES-256-GCM(data key) ‖ tag`, base64.
    pub wrapped_key: String,
}

/// The data key, wrapped by one KMS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsKey {
    /// The KMS key's scheme, `aws-kms`, `gcp-kms` or `azure-kms`.
    pub scheme: String,
    /// SHA-256 of the key's credential-free identity (scheme, region or vault, key id), hex:
    /// tells which of the keys given wrapped this copy without naming the key.
    pub key_hash: String,
    /// The KMS's ciphertext of `extconn-backup v1 data key\0<key id>\0 ‖ data key`, base64.
    pub wrapped_key: String,
}

/// What `BACKUP_MANIFEST` holds for an encrypted backup: the [`Manifest`] (whose `encryption`
/// equals this one's) sealed with the data key, beside what opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedManifest {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// How to unwrap the data key.
    pub encryption: Encryption,
    /// `nonce ‖ AES-256-GCM(manifest JSON) ‖ tag`, base64; the associated data names the
    /// manifest's key, so a manifest cannot stand in for another.
    pub sealed: String,
}

/// One database in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    /// The database's name.
    pub name: String,
    /// The whole database, or the listed tables only.
    pub scope: Scope,
    /// SQLite's page size of the backed-up file.
    pub page_size: u32,
    /// The backed-up file's size.
    pub size_bytes: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
    /// Bytes of chunks this backup uploaded (the others were there already).
    pub uploaded_bytes: u64,
    /// Its tables (user tables only, not `sqlite_*`).
    pub tables: Vec<TableEntry>,
    /// Every chunk of the file, in order.
    pub chunks: Vec<Chunk>,
}

/// One table of a backed-up database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// The table's name.
    pub name: String,
    /// Rows.
    pub rows: u64,
    /// Bytes of the pages of the table and its indexes.
    pub size_bytes: u64,
}

/// One chunk of a database file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Its name: SHA-256 of its content, hex, with the key `data/<sha256>`; in an encrypted
    /// backup HMAC-SHA256 of its content under the data key, with the key
    /// `data/<key_id>/<name>`.
    pub sha256: String,
    /// Its length.
    pub len: u64,
    /// The location that holds it.
    pub place: Place,
}

impl Manifest {
    /// The manifest's key in its location.
    pub fn key(&self) -> String {
        format!("{}/{MANIFEST}", self.dir)
    }

    /// How messages name this backup: the subdir, plus the incremental's directory.
    pub fn display(&self) -> String {
        match self.kind {
            BackupKind::Full => self.subdir.clone(),
            BackupKind::Incremental => format!("{} (incremental {})", self.subdir, self.dir),
        }
    }
}

/// The subdir of a full backup ending at `micros`: `/2026/11/26-035037.12`.
pub fn full_subdir(micros: i64) -> String {
    let t = utc(micros);
    format!("/{}.{:02}", t.format("%Y/%m/%d-%H%M%S"), centis(micros))
}

/// The directory of an incremental backup of `subdir` ending at `micros`.
pub fn incremental_dir(subdir: &str, micros: i64) -> String {
    let t = utc(micros);
    format!(
        "{INCREMENTALS_DIR}/{}/{}.{:02}",
        subdir.trim_matches('/'),
        t.format("%Y%m%d/%H%M%S"),
        centis(micros)
    )
}

/// `micros` as `2026-11-26 03:50:37.120000+00:00`, for messages.
pub fn show_time(micros: i64) -> String {
    utc(micros).format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string()
}

/// A subdir as users write it (`2026/11/26-035037.12`, with or without slashes around it),
/// as the manifests record it (`/2026/11/26-035037.12`); `None` if it cannot be one.
pub fn normalize_subdir(subdir: &str) -> Option<String> {
    let trimmed = subdir.trim().trim_matches('/');
    let ok = !trimmed.is_empty()
        && trimmed.split('/').all(|s| {
            !s.is_empty() && s != "." && s != ".." && s != DATA_DIR && s != INCREMENTALS_DIR
        });
    ok.then(|| format!("/{trimmed}"))
}

/// Whether `key` (relative to the collection) is a full backup's manifest, by the layout of
/// [`full_subdir`]; its subdir if so.
pub fn full_subdir_of_key(key: &str) -> Option<String> {
    let dir = key.strip_suffix(MANIFEST)?.strip_suffix('/')?;
    let parts: Vec<&str> = dir.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let [year, month, rest] = parts.as_slice() else { return None };
    let (day, time) = rest.split_once('-')?;
    let (hms, cc) = time.split_once('.')?;
    (digits(year, 4) && digits(month, 2) && digits(day, 2) && digits(hms, 6) && digits(cc, 2))
        .then(|| format!("/{dir}"))
}

fn utc(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn centis(micros: i64) -> i64 {
    micros.rem_euclid(1_000_000) / 10_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_named_from_the_end_time() {
        // 2026-11-26 03:50:37.123456 UTC
        let micros = 1_795_665_037_123_456;
        assert_eq!(full_subdir(micros), "/2026/11/26-035037.12");
        assert_eq!(
            incremental_dir("/2026/11/26-035037.12", micros + 60_000_000),
            "incrementals/2026/11/26-035037.12/20261126/035137.12"
        );
        assert_eq!(show_time(micros), "2026-11-26 03:50:37.123456+00:00");
    }

    #[test]
    fn subdirs_are_normalized_or_refused() {
        let rows = [
            ("2026/11/26-035037.12", Some("/2026/11/26-035037.12")),
            ("/2026/11/26-035037.12/", Some("/2026/11/26-035037.12")),
            ("weekly", Some("/weekly")),
            ("", None),
            ("/", None),
            ("a//b", None),
            ("../x", None),
            ("data", None),
            ("incrementals/x", None),
        ];
        for (given, expected) in rows {
            assert_eq!(normalize_subdir(given).as_deref(), expected, "{given:?}");
        }
    }

    #[test]
    fn full_manifest_keys_are_recognized() {
        let rows = [
            ("2026/11/26-035037.12/BACKUP_MANIFEST", Some("/2026/11/26-035037.12")),
            ("2026/11/26-035037.12/OTHER", None),
            ("incrementals/2026/11/26-035037.12/20261126/035137.12/BACKUP_MANIFEST", None),
            ("data/BACKUP_MANIFEST", None),
            ("2026/1/26-035037.12/BACKUP_MANIFEST", None),
        ];
        for (key, expected) in rows {
            assert_eq!(full_subdir_of_key(key).as_deref(), expected, "{key}");
        }
    }
}
