//! Chunk storage: the one place chunks are written and read, hashed and checked.
//!
//! In an encrypted chain ([`Chunks::key`]) a chunk is named by HMAC-SHA256 under the data key
//! instead of SHA-256, lives under `data/<key id>/`, is sealed with AES-256-GCM by
//! [`Chunks::put`] and opened (authenticated, then its name checked) by [`Chunks::get`].

use std::collections::HashSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::Error;
use super::crypto::DataKey;
use super::manifest::{DATA_DIR, Place};
use crate::storage::Location;

/// The collection and, for incremental backups, the incremental location.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunks<'a> {
    pub collection: &'a Location,
    pub incremental: Option<&'a Location>,
    /// The chain's data key, for an encrypted chain.
    pub key: Option<&'a Arc<DataKey>>,
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

    /// The chunks of this chain's kind (plaintext, or of its data key) present at `place`, by
    /// name: one listing per backup, not one request per chunk.
    pub async fn present(&self, place: Place) -> Result<HashSet<String>, Error> {
        let location = self.location(place, "")?;
        let prefix = self.prefix();
        let listed = location.list(&prefix, None).await.map_err(|e| {
            Error::storage(format!("listing the chunks in the {}", place.noun()), e)
        })?;
        // Plaintext names have no slash: the listing of `data/` also holds encrypted chains'.
        Ok(listed
            .into_iter()
            .filter_map(|m| m.key.strip_prefix(&prefix).map(str::to_owned))
            .filter(|name| !name.contains('/'))
            .collect())
    }

    /// The name of a chunk of content `data`. Blocking: it hashes.
    pub fn name(key: Option<&DataKey>, data: &[u8]) -> String {
        match key {
            Some(key) => key.chunk_name(data),
            None => sha256_hex(data),
        }
    }

    /// Uploads `data`, named `name`, to `place`, sealed first in an encrypted chain.
    pub async fn put(&self, place: Place, name: &str, data: Vec<u8>) -> Result<(), Error> {
        let location = self.location(place, "")?;
        let data = match self.key {
            Some(key) => {
                let (key, owned) = (Arc::clone(key), name.to_owned());
                tokio::task::spawn_blocking(move || key.seal_chunk(&owned, &data))
                    .await
                    .map_err(|_| Error::Task { task: "chunk encryption" })??
            }
            None => data,
        };
        location.put(&self.object_key(name), data).await.map_err(|e| {
            Error::storage(format!("uploading chunk {name} to the {}", place.noun()), e)
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
        let data = match location.get(&self.object_key(sha256)).await {
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
        // Hashing (and decrypting) a few MiB takes milliseconds: off the runtime's thread.
        let (key, name) = (self.key.cloned(), sha256.to_owned());
        let opened = tokio::task::spawn_blocking(move || {
            let data = match &key {
                Some(key) => key.open_chunk(&name, &data)?,
                None => data,
            };
            let actual = Chunks::name(key.as_deref(), &data);
            Some((data, actual))
        })
        .await
        .map_err(|_| Error::Task { task: "chunk checksum" })?;
        let Some((data, actual)) = opened else {
            return Err(Error::ChunkAuthentication {
                name: sha256.to_owned(),
                database: database.to_owned(),
                backup: backup.to_owned(),
            });
        };
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

impl Chunks<'_> {
    /// Where this chain's chunks live: `data/`, or `data/<key id>/` in an encrypted chain.
    fn prefix(&self) -> String {
        match self.key {
            Some(key) => format!("{DATA_DIR}/{}/", key.id),
            None => format!("{DATA_DIR}/"),
        }
    }

    /// A chunk's key in its location.
    fn object_key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }
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
