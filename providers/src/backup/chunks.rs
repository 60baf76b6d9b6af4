//! Chunk storage: the one place chunks are written and read, hashed and checked.
//!
//! Encryption (issue 7) goes here: [`Chunks::put`] would seal the content with AES-GCM after
//! hashing it and [`Chunks::get`] open it before checking, keyed by the manifest's
//! `encryption`; content addressing would then use a keyed hash so names leak nothing.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::Error;
use super::manifest::{DATA_DIR, Place};
use crate::storage::Location;

/// The collection and, for incremental backups, the incremental location.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunks<'a> {
    pub collection: &'a Location,
    pub incremental: Option<&'a Location>,
}

impl<'a> Chunks<'a> {
    /// The location `place` names; `backup` names the backup for the error.
    pub fn location(&self, place: Place, backup: &str) -> Result<&'a Location, Error> {
        match place {
            Place::Collection => Ok(self.collection),
            Place::Incremental => self.incremental.ok_or_else(|| Error::NeedsIncrementalLocation {
                backup: backup.to_owned(),
                what: "chunks",
            }),
        }
    }

    /// The chunks present at `place`, by hex SHA-256: one listing per backup, not one request
    /// per chunk.
    pub async fn present(&self, place: Place) -> Result<HashSet<String>, Error> {
        let location = self.location(place, "")?;
        let listed = location.list(&format!("{DATA_DIR}/"), None).await.map_err(|e| {
            Error::storage(format!("listing the chunks in the {}", place.noun()), e)
        })?;
        let prefix = format!("{DATA_DIR}/");
        Ok(listed
            .into_iter()
            .filter_map(|m| m.key.strip_prefix(&prefix).map(str::to_owned))
            .collect())
    }

    /// Uploads `data`, whose SHA-256 is `sha256`, to `place`.
    pub async fn put(&self, place: Place, sha256: &str, data: Vec<u8>) -> Result<(), Error> {
        let location = self.location(place, "")?;
        location.put(&key(sha256), data).await.map_err(|e| {
            Error::storage(format!("uploading chunk {sha256} to the {}", place.noun()), e)
        })
    }

    /// Downloads the chunk `sha256` of `database` in `backup` from `place` and checks it.
    pub async fn get(
        &self,
        place: Place,
        sha256: &str,
        len: u64,
        database: &str,
        backup: &str,
    ) -> Result<Vec<u8>, Error> {
        let location = self.location(place, backup)?;
        let data = match location.get(&key(sha256)).await {
            Ok(data) => data,
            Err(source) if source.kind() == crate::ErrorKind::NotFound => {
                return Err(Error::MissingChunk {
                    sha256: sha256.to_owned(),
                    database: database.to_owned(),
                    backup: backup.to_owned(),
                    source: Box::new(source),
                });
            }
            Err(e) => {
                return Err(Error::storage(
                    format!("downloading chunk {sha256} of database {database} in {backup}"),
                    e,
                ));
            }
        };
        // Hashing a few MiB takes milliseconds: off the runtime's thread.
        let (data, actual) = tokio::task::spawn_blocking(move || {
            let actual = sha256_hex(&data);
            (data, actual)
        })
        .await
        .map_err(|_| Error::Task { task: "chunk checksum" })?;
        if actual != sha256 || data.len() as u64 != len {
            return Err(Error::CorruptChunk {
                sha256: sha256.to_owned(),
                database: database.to_owned(),
                backup: backup.to_owned(),
            });
        }
        Ok(data)
    }
}

/// A chunk's key in its location.
fn key(sha256: &str) -> String {
    format!("{DATA_DIR}/{sha256}")
}

/// SHA-256 of `data`, lower-case hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
