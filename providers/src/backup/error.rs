//! The backup engine's one error type.

/// What kind of failure an [`Error`] is, for the host to map onto SQL errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// An option or argument cannot be used (a bad subdir, a duplicate database, …).
    InvalidArgument,
    /// The backup, database or table asked for does not exist.
    NotFound,
    /// The restored table already exists (SQLSTATE `42P07`).
    AlreadyExists,
    /// The backup exists but its content is damaged: a chunk, a manifest or a restored file
    /// failed its checksum or SQLite's integrity check.
    Corrupt,
    /// The storage failed (unreachable, permission denied, …); see [`Error::storage_kind`].
    Storage,
    /// A local SQLite database or file could not be read or written.
    Local,
    /// Something this version cannot do (a newer manifest format, an unknown cipher).
    Unsupported,
    /// The key given cannot open the backup: a wrong passphrase, or a key of the wrong kind.
    WrongKey,
    /// A bug on our side.
    Internal,
}

/// A failed backup, restore or listing. Messages name storage by its display form
/// (`scheme://host/path`), never by URI, so never a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option that cannot be used.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The collection has no `LATEST` marker: no full backup was ever completed there.
    #[error("no full backup found in the collection: LATEST does not exist")]
    NoBackups {
        /// The storage's not-found error, naming the object.
        #[source]
        source: Box<crate::Error>,
    },
    /// `LATEST` holds something that cannot be a subdir.
    #[error("LATEST in the collection does not name a backup")]
    CorruptLatest,
    /// The named backup (full backup subdir) has no manifest.
    #[error("backup {subdir} not found in the collection")]
    BackupNotFound {
        /// The subdir, `/2026/11/26-035037.12`.
        subdir: String,
        /// The storage's not-found error for its manifest, naming the object.
        #[source]
        source: Box<crate::Error>,
    },
    /// A manifest that cannot be parsed.
    #[error("backup manifest {key} in the {place} is corrupt")]
    CorruptManifest {
        /// `collection` or `incremental location`.
        place: &'static str,
        /// Its key.
        key: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest written by a newer version.
    #[error(
        "backup manifest {key} has format version {version}; this version of extconn reads \
         version {supported}"
    )]
    UnsupportedVersion {
        /// Its key.
        key: String,
        /// The manifest's format version.
        version: u32,
        /// The version this code reads and writes.
        supported: u32,
    },
    /// An encrypted backup read without a key.
    #[error(
        "backup {backup} is encrypted: give the encryption_passphrase (or kms) it was taken with"
    )]
    Encrypted {
        /// The backup (its manifest's key).
        backup: String,
    },
    /// A plaintext backup read, or extended, with a key.
    #[error("backup {backup} is not encrypted: remove the {option} option")]
    NotEncrypted {
        /// The backup (its manifest's key).
        backup: String,
        /// `encryption_passphrase` or `kms`.
        option: &'static str,
    },
    /// The passphrase does not unwrap the data key.
    #[error("failed to decrypt the data key of backup {backup} — wrong passphrase?")]
    WrongPassphrase {
        /// The backup (its manifest's key).
        backup: String,
    },
    /// An encrypted backup whose data key is wrapped by KMS keys only, given a passphrase.
    #[error("backup {backup} was encrypted with kms, not encryption_passphrase: give kms")]
    NoPassphraseWrap {
        /// The backup (its manifest's key).
        backup: String,
    },
    /// A KMS key refused to wrap a new backup's data key.
    #[error("failed to encrypt the backup's data key with {key}")]
    KmsWrap {
        /// The key's display form (`aws-kms:///redacted`).
        key: String,
        /// The KMS's error.
        #[source]
        source: Box<crate::Error>,
    },
    /// A KMS key that wrapped the data key could not unwrap it.
    #[error("failed to decrypt the data key of backup {backup} with {key}")]
    KmsUnwrap {
        /// The key's display form.
        key: String,
        /// The backup (its manifest's key).
        backup: String,
        /// The KMS's error.
        #[source]
        source: Box<crate::Error>,
    },
    /// None of the KMS keys given wrapped the data key.
    #[error(
        "backup {backup} was not encrypted with any of the KMS keys given ({given}): give one of \
         the keys it was taken with"
    )]
    KmsKeyNotUsed {
        /// The backup (its manifest's key).
        backup: String,
        /// The keys given, in display form.
        given: String,
    },
    /// An encrypted backup whose data key is wrapped by a passphrase only, given KMS keys.
    #[error(
        "backup {backup} was encrypted with encryption_passphrase, not kms: give encryption_passphrase"
    )]
    NoKmsWrap {
        /// The backup (its manifest's key).
        backup: String,
    },
    /// A cipher or key derivation this version does not know.
    #[error(
        "backup {backup} is encrypted with {scheme}, which this version of extconn cannot read"
    )]
    UnsupportedEncryption {
        /// The backup (its manifest's key).
        backup: String,
        /// The manifest's scheme or KDF.
        scheme: String,
    },
    /// A manifest's `encryption` field that cannot be used.
    #[error("the encryption information of backup {backup} is corrupt: {reason}")]
    CorruptEncryption {
        /// The backup (its manifest's key).
        backup: String,
        /// What is wrong.
        reason: String,
    },
    /// An encrypted manifest that fails authentication under its data key.
    #[error("backup manifest {key} failed authentication: it was altered or is not this backup's")]
    ManifestAuthentication {
        /// Its key.
        key: String,
    },
    /// An encrypted chunk that fails authentication under its data key.
    #[error(
        "chunk {name} of database {database} in {backup} failed authentication: it was altered \
         or is not this backup's"
    )]
    ChunkAuthentication {
        /// The chunk's name, hex.
        name: String,
        /// The database it belongs to.
        database: String,
        /// The backup's directory.
        backup: String,
    },
    /// The OS gave no random bytes for a key or nonce.
    #[error("the operating system's random number generator failed")]
    Random,
    /// A manifest that refers to the incremental location, restored or extended without one.
    #[error("backup {backup} keeps {what} in its incremental location: give incremental_location")]
    NeedsIncrementalLocation {
        /// The backup's directory.
        backup: String,
        /// What is there (`chunks`).
        what: &'static str,
    },
    /// `as_of` is earlier than every backup of the chain.
    #[error("no backup in {subdir} ended at or before {as_of}; the oldest ended at {oldest}")]
    NoBackupAsOf {
        /// The full backup's subdir.
        subdir: String,
        /// The requested time, UTC.
        as_of: String,
        /// The full backup's end time, UTC.
        oldest: String,
    },
    /// A database not held by the backup.
    #[error("database {database} is not in backup {backup} (it holds {available})")]
    DatabaseNotInBackup {
        /// The name asked for.
        database: String,
        /// The backup's directory.
        backup: String,
        /// The databases it holds, comma-separated.
        available: String,
    },
    /// A table not in a database (to back up) or in a restored file (to copy).
    #[error("table {table} does not exist in database {database}")]
    NoSuchTable {
        /// The database's name or path.
        database: String,
        /// The table asked for.
        table: String,
    },
    /// The same database name twice in one backup.
    #[error("database {database} is given twice")]
    DuplicateDatabase {
        /// The name.
        database: String,
    },
    /// A downloaded chunk whose SHA-256 is not its name.
    #[error("chunk {sha256} of database {database} in {backup} failed its checksum")]
    CorruptChunk {
        /// The chunk's expected SHA-256, hex.
        sha256: String,
        /// The database it belongs to.
        database: String,
        /// The backup's directory.
        backup: String,
    },
    /// A chunk the manifest lists but storage does not have.
    #[error("chunk {sha256} of database {database} in {backup} is missing")]
    MissingChunk {
        /// The chunk's SHA-256, hex.
        sha256: String,
        /// The database it belongs to.
        database: String,
        /// The backup's directory.
        backup: String,
        /// The storage's not-found error.
        #[source]
        source: Box<crate::Error>,
    },
    /// The reassembled file's length or SHA-256 differs from the manifest's.
    #[error("database {database} restored from {backup} does not match its checksum")]
    CorruptDatabase {
        /// The database.
        database: String,
        /// The backup's directory.
        backup: String,
    },
    /// The reassembled file fails `PRAGMA quick_check`.
    #[error("database {database} restored from {backup} failed its integrity check: {report}")]
    IntegrityCheck {
        /// The database.
        database: String,
        /// The backup's directory.
        backup: String,
        /// The first lines SQLite reported.
        report: String,
    },
    /// CockroachDB's error for a restored table that exists already (SQLSTATE 42P07).
    #[error("relation \"{table}\" already exists")]
    RelationExists {
        /// The table.
        table: String,
    },
    /// A storage request failed.
    #[error("{action}")]
    Storage {
        /// What was being done, naming the object.
        action: String,
        /// The provider's error (already free of secrets).
        #[source]
        source: Box<crate::Error>,
    },
    /// SQLite failed on a local database.
    #[error("{action} {path}")]
    Sqlite {
        /// What was being done.
        action: &'static str,
        /// The local file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A local file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The local file or directory.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("internal error: {task} did not finish")]
    Task {
        /// The task.
        task: &'static str,
    },
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidOption { .. }
            | Self::DuplicateDatabase { .. }
            | Self::NeedsIncrementalLocation { .. } => ErrorKind::InvalidArgument,
            Self::NoBackups { .. }
            | Self::BackupNotFound { .. }
            | Self::NoBackupAsOf { .. }
            | Self::DatabaseNotInBackup { .. }
            | Self::NoSuchTable { .. } => ErrorKind::NotFound,
            Self::RelationExists { .. } => ErrorKind::AlreadyExists,
            Self::CorruptManifest { .. }
            | Self::CorruptLatest
            | Self::CorruptChunk { .. }
            | Self::MissingChunk { .. }
            | Self::CorruptDatabase { .. }
            | Self::IntegrityCheck { .. }
            | Self::CorruptEncryption { .. }
            | Self::ManifestAuthentication { .. }
            | Self::ChunkAuthentication { .. } => ErrorKind::Corrupt,
            Self::UnsupportedVersion { .. } | Self::UnsupportedEncryption { .. } => {
                ErrorKind::Unsupported
            }
            Self::Encrypted { .. } | Self::NotEncrypted { .. } => ErrorKind::InvalidArgument,
            Self::WrongPassphrase { .. }
            | Self::NoPassphraseWrap { .. }
            | Self::NoKmsWrap { .. }
            | Self::KmsKeyNotUsed { .. } => ErrorKind::WrongKey,
            Self::KmsWrap { source, .. } | Self::KmsUnwrap { source, .. } => match source.kind() {
                crate::ErrorKind::InvalidArgument
                | crate::ErrorKind::NotFound
                | crate::ErrorKind::PermissionDenied => ErrorKind::WrongKey,
                _ => ErrorKind::Storage,
            },
            Self::Storage { .. } => ErrorKind::Storage,
            Self::Sqlite { .. } | Self::Io { .. } => ErrorKind::Local,
            Self::Task { .. } | Self::Random => ErrorKind::Internal,
        }
    }

    /// The kind of the underlying storage error, for a [`ErrorKind::Storage`] failure.
    pub fn storage_kind(&self) -> Option<crate::ErrorKind> {
        match self {
            Self::Storage { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// The PostgreSQL SQLSTATE CockroachDB answers with, where there is a specific one.
    pub fn sqlstate(&self) -> Option<&'static str> {
        match self {
            Self::RelationExists { .. } => Some("42P07"),
            _ => None,
        }
    }

    /// The message with its whole chain of causes, `a: b: c`.
    pub fn message(&self) -> String {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }

    pub(crate) fn storage(action: String, source: crate::Error) -> Self {
        Self::Storage { action, source: Box::new(source) }
    }

    pub(crate) fn sqlite(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(rusqlite::Error) -> Self {
        let path = path.display().to_string();
        move |source| Self::Sqlite { action, path, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.display().to_string();
        move |source| Self::Io { action, path, source }
    }
}
