//! Storage: every scheme opens to a [`Location`], an object store plus the target's path.
//!
//! A new scheme is one module here with an `open(config, target) -> Result<Location, Error>`,
//! and one line in [`open`].

mod nodelocal;

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{Config, Error, ObjectMeta, Target};

/// Opens the storage `target` names.
///
/// Every scheme other than `nodelocal` answers [`Error::UnsupportedStorage`] for now.
pub fn open(config: &Config, target: &Target) -> Result<Location, Error> {
    match target.scheme.as_str() {
        "nodelocal" => nodelocal::open(config, target),
        scheme => Err(Error::UnsupportedStorage { scheme: scheme.to_owned() }),
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
}

impl Location {
    /// A location at `base` (no leading or trailing `/`) inside `store`, shown as `display`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, base: &str, display: String) -> Self {
        Self { store, base: base.trim_matches('/').to_owned(), display }
    }

    /// Writes `data` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, data: Vec<u8>) -> Result<(), Error> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(data))
            .await
            .map(drop)
            .map_err(|e| Error::from_store(self.show(key), "put", e))
    }

    /// Reads the object at `key`; a missing object is [`Error::NotFound`].
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, Error> {
        let path = self.path(key)?;
        let result = async { self.store.get(&path).await?.bytes().await }.await;
        result.map(|bytes| bytes.to_vec()).map_err(|e| Error::from_store(self.show(key), "get", e))
    }

    /// Deletes the object at `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::from_store(self.show(key), "delete", e)),
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
                // A location nothing was ever written to lists as empty.
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(Error::from_store(self.show(prefix), "list", e)),
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

    /// `scheme://host/path/key` for messages.
    fn show(&self, key: &str) -> String {
        let key = key.trim_matches('/');
        if key.is_empty() { self.display.clone() } else { format!("{}/{key}", self.display) }
    }
}
