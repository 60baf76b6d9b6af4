//! Storage: every scheme opens to a [`Location`], an object store plus the target's path.
//!
//! A new scheme is one module here with an `open(config, target) -> Result<Location, Error>`,
//! and one line in [`open`].

mod azure;
pub mod check;
pub(crate) mod cloud;
mod gs;
mod nodelocal;
mod s3;
pub mod userfile;

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
    WriteMultipart,
};

use crate::error::names_missing_bucket;
use crate::{Config, Error, ObjectMeta, Target};

/// Objects larger than this are written by multipart upload.
pub const MULTIPART_THRESHOLD: usize = 16 << 20;
/// The size of each part of a multipart upload (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PART_CONCURRENCY: usize = 4;

/// Opens the storage `target` names.
///
/// Every scheme other than `nodelocal`, `s3`, `gs` and the `azure` ones answers
/// [`Error::UnsupportedStorage`] for now.
pub fn open(config: &Config, target: &Target) -> Result<Location, Error> {
    match target.scheme.as_str() {
        "nodelocal" => nodelocal::open(config, target),
        "s3" => s3::open(config, target),
        "gs" => gs::open(config, target),
        "azure" | "azure-blob" | "azure-storage" => azure::open(config, target),
        "userfile" => userfile::open(config, target),
        scheme => Err(Error::UnsupportedStorage { scheme: scheme.to_owned() }),
    }
}

/// Opened locations, reused from one request to the next: opening a cloud store builds an
/// HTTP client, which CREATE's put, list and get would otherwise each pay for.
///
/// Keyed by the full target URI and user, so ALTERed credentials open a new store.
#[derive(Default)]
pub struct Cache {
    open: std::sync::Mutex<std::collections::HashMap<(String, String), Location>>,
}

impl Cache {
    /// At most this many locations are kept; past it the cache starts over.
    const MAX: usize = 64;

    /// [`open`], or the location opened before for the same target.
    pub fn open(&self, config: &Config, target: &Target) -> Result<Location, Error> {
        let key = (target.uri.clone(), target.user.clone());
        if let Some(location) = self.lock().get(&key) {
            return Ok(location.clone());
        }
        let location = open(config, target)?;
        let mut open = self.lock();
        if open.len() >= Self::MAX {
            open.clear();
        }
        open.insert(key, location.clone());
        Ok(location)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(String, String), Location>> {
        // A panic while holding the lock leaves only a cache behind: keep using it.
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Cache {
    // The keys are URIs with their secrets: show only how many there are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("locations", &self.lock().len()).finish()
    }
}

/// An opened storage location: keys are relative to the target's path.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    /// The target's path inside `store`, `""` for the root.
    base: String,
    /// `scheme://host/path` for messages.
    display: String,
    /// Attributes of every written object (S3's storage class).
    attributes: Attributes,
    /// The target's secret parameter values, never to appear in an error.
    secrets: Vec<String>,
}

impl Location {
    /// A location at `base` (no leading or trailing `/`) inside `store`, shown as `display`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, base: &str, display: String) -> Self {
        Self {
            store,
            base: base.trim_matches('/').to_owned(),
            display,
            attributes: Attributes::new(),
            secrets: Vec::new(),
        }
    }

    /// The same location, scrubbing `secrets` from its errors.
    pub(crate) fn with_secrets(mut self, secrets: Vec<String>) -> Self {
        self.secrets = secrets;
        self
    }

    /// The same location, writing every object with `attributes`.
    pub(crate) fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// Writes `data` at `key`, replacing what was there. Objects over [`MULTIPART_THRESHOLD`]
    /// bytes go up in parts, several at once.
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), Error> {
        let path = self.path(key)?;
        let attributes = self.attributes.clone();
        let result = if data.len() <= MULTIPART_THRESHOLD {
            let options = PutOptions { attributes, ..PutOptions::default() };
            self.store.put_opts(&path, PutPayload::from(data), options).await.map(drop)
        } else {
            self.put_multipart(&path, data, attributes).await
        };
        result.map_err(|e| self.fail(key, "put", e))
    }

    async fn put_multipart(
        &self,
        path: &Path,
        data: Vec<u8>,
        attributes: Attributes,
    ) -> object_store::Result<()> {
        let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
        let upload = self.store.put_multipart_opts(path, options).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let data = bytes::Bytes::from(data);
        for start in (0..data.len()).step_by(PART_SIZE) {
            if let Err(e) = writer.wait_for_capacity(PART_CONCURRENCY).await {
                // Best effort: the store's own error is the one worth reporting.
                let _ = writer.abort().await;
                return Err(e);
            }
            writer.put(data.slice(start..(start + PART_SIZE).min(data.len())));
        }
        writer.finish().await.map(drop)
    }

    /// Reads the object at `key`; a missing object is [`Error::NotFound`].
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let path = self.path(key)?;
        let result = async { self.store.get(&path).await?.bytes().await }.await;
        result.map(|bytes| bytes.to_vec()).map_err(|e| self.fail(key, "get", e))
    }

    /// Reads the object at `key` chunk by chunk, for objects too large to hold in memory. A
    /// missing object is [`Error::NotFound`] from this call; later failures come from the stream.
    pub async fn get_stream(
        &self,
        key: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<bytes::Bytes, Error>>, Error> {
        use futures::StreamExt;
        let path = self.path(key)?;
        let result = self.store.get(&path).await.map_err(|e| self.fail(key, "get", e))?;
        let (this, key) = (self.clone(), key.to_owned());
        Ok(result.into_stream().map_err(move |e| this.fail(&key, "get", e)).boxed())
    }

    /// The size in bytes of the object at `key`; a missing object is [`Error::NotFound`].
    pub async fn size(&self, key: &str) -> Result<u64, Error> {
        let path = self.path(key)?;
        self.store.head(&path).await.map(|meta| meta.size).map_err(|e| self.fail(key, "head", e))
    }

    /// Deletes the object at `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e @ object_store::Error::NotFound { .. }) if !names_missing_bucket(&e) => Ok(()),
            Err(e) => Err(self.fail(key, "delete", e)),
        }
    }

    /// Lists the objects whose key starts with `prefix`, ordered by key.
    ///
    /// Without a delimiter the listing is recursive. With one, keys that contain the delimiter
    /// after `prefix` are folded into one entry per common prefix (ending with the delimiter,
    /// size 0), as CockroachDB's `List` does.
    pub async fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<ObjectMeta>, Error> {
        // object_store lists whole path segments: list the directory that holds `prefix`,
        // then match the rest of it as a string.
        let dir = match prefix.rfind('/') {
            Some(at) => &prefix[..at],
            None => "",
        };
        let dir_path = self.path(dir)?;
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&dir_path)).try_collect().await.or_else(|e| match e {
                // A location nothing was ever written to lists as empty; a missing bucket does not.
                e @ object_store::Error::NotFound { .. } if !names_missing_bucket(&e) => {
                    Ok(Vec::new())
                }
                e => Err(self.fail(prefix, "list", e)),
            })?;
        let mut out: Vec<ObjectMeta> = Vec::new();
        for meta in listed {
            let Some(key) = self.relative(&meta.location) else { continue };
            let Some(rest) = key.strip_prefix(prefix) else { continue };
            match delimiter.filter(|d| !d.is_empty()).and_then(|d| rest.find(d).map(|at| (d, at))) {
                Some((d, at)) => {
                    let common = format!("{prefix}{}{d}", &rest[..at]);
                    if !out.iter().any(|o| o.key == common) {
                        out.push(ObjectMeta { key: common, size: 0 });
                    }
                }
                None => out.push(ObjectMeta { key, size: meta.size }),
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The store path of `key`.
    fn path(&self, key: &str) -> Result<Path, Error> {
        let key = key.trim_matches('/');
        let full = match (self.base.is_empty(), key.is_empty()) {
            (_, true) => self.base.clone(),
            (true, false) => key.to_owned(),
            (false, false) => format!("{}/{key}", self.base),
        };
        Path::parse(&full).map_err(|source| Error::InvalidKey {
            location: self.display.clone(),
            key: key.to_owned(),
            source,
        })
    }

    /// `location`'s key relative to the base, if it lies under it.
    fn relative(&self, location: &Path) -> Option<String> {
        let location = location.as_ref();
        if self.base.is_empty() {
            return Some(location.to_owned());
        }
        location.strip_prefix(self.base.as_str())?.strip_prefix('/').map(str::to_owned)
    }

    /// A failed `operation` on `key`, classified, with no secret in its text.
    fn fail(&self, key: &str, operation: &'static str, source: object_store::Error) -> Error {
        Error::from_store(self.show(key), operation, source).redact(&self.secrets)
    }

    /// `scheme://host/path/key` for messages.
    fn show(&self, key: &str) -> String {
        let key = key.trim_matches('/');
        if key.is_empty() { self.display.clone() } else { format!("{}/{key}", self.display) }
    }
}
