//! `nodelocal://<node|self>/path`: files under `<data-dir>/extern/path` on this node.
//!
//! extconn is a single-node deployment: node `1` and `self` are this host; any other node id
//! is an error that says so.

use std::sync::Arc;

use object_store::local::LocalFileSystem;

use super::Location;
use crate::{Config, Error, Target};

/// The directory under the data dir that holds every nodelocal object (CockroachDB's
/// "external IO dir").
pub(crate) const EXTERN_DIR: &str = "extern";

pub(crate) fn open(config: &Config, target: &Target) -> Result<Location, Error> {
    let display = target.display();
    if !matches!(target.host.as_str(), "1" | "self") {
        return Err(Error::NoSuchNode { location: display, node: target.host.clone() });
    }
    let root = config.data_dir.join(EXTERN_DIR);
    std::fs::create_dir_all(&root)
        .map_err(|source| Error::LocalDir { location: display.clone(), source })?;
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|source| Error::from_store(display.clone(), "open", source))?
        .with_automatic_cleanup(true);
    Ok(Location::new(Arc::new(store), &target.path, display))
}
