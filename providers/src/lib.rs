//! The I/O behind extconn's host: storage, changefeed sinks and KMS, one module per scheme.
//!
//! The sandboxed component decides *what* to read or write and hands the host a [`Target`]; this
//! crate opens it. Every storage scheme resolves to a [`storage::Location`], an
//! [`object_store`] store plus the target's path, so every backend offers the same four calls:
//! `put`, `get`, `list` and `delete`, with keys relative to the target's path.
//!
//! Implemented so far: `nodelocal://1/…` and `nodelocal://self/…`, stored under
//! `<data-dir>/extern/`; `s3://`, `gs://` and `azure-blob://` (with its aliases `azure://` and
//! `azure-storage://`) through object_store's cloud clients; `userfile://` in the catalog
//! database ([`storage::userfile`]). [`storage::check`] runs CHECK EXTERNAL CONNECTION's timed
//! write/read/delete rounds on any of them. [`sink`] holds the changefeed sinks: Kafka,
//! webhooks and cloud storage (files in any of the storage schemes above). Every other storage
//! scheme answers an [`Error`] of kind [`ErrorKind::Unsupported`]. [`kms`] encrypts and
//! decrypts with `aws-kms://`, `gcp-kms://` and `azure-kms://` keys.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use extconn_providers::{storage, Config, Target};
//!
//! let dir = tempfile::tempdir()?;
//! let config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
//! let target = Target::new("nodelocal", "1", "backups/daily");
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! runtime.block_on(async {
//!     let location = storage::open(&config, &target)?;
//!     location.put("hello.txt", b"hi".to_vec()).await?;
//!     assert_eq!(location.get("hello.txt").await?, b"hi");
//!     Ok::<_, extconn_providers::Error>(())
//! })?;
//! assert!(dir.path().join("extern/backups/daily/hello.txt").exists());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod backup;
pub mod csvio;
mod error;
pub mod kms;
pub mod sink;
pub mod storage;

use std::path::PathBuf;

pub use error::{Error, ErrorKind};

/// Where the providers keep local state, and the host's overrides of cloud endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The host's data directory; `nodelocal` lives under `<data_dir>/extern`.
    pub data_dir: PathBuf,
    /// GCS's JSON API base URL instead of `https://storage.googleapis.com` (an emulator, a
    /// private endpoint). `gs://` URIs have no endpoint parameter: only the host sets this.
    pub gcs_endpoint: Option<String>,
    /// Azure Blob Storage's service URL instead of `https://<account>.blob.<cloud suffix>`:
    /// `{account}` in it is replaced by the account name, otherwise the account is appended as
    /// the first path segment (`http://127.0.0.1:10000` → `…/devstoreaccount1`, as Azurite
    /// wants). Only the host sets this, never a URI.
    pub azure_blob_endpoint: Option<String>,
    /// Cloud KMS's REST base URL instead of `https://cloudkms.googleapis.com` (`gcp-kms://`).
    /// Only the host sets this, never a URI.
    pub gcp_kms_endpoint: Option<String>,
    /// Azure Key Vault's URL instead of `https://<vault>.vault.<cloud suffix>` (`azure-kms://`):
    /// `{vault}` in it is replaced by `AZURE_VAULT_NAME`, otherwise it is used as is. Only the
    /// host sets this, never a URI.
    pub azure_kms_endpoint: Option<String>,
    /// Microsoft Entra ID's sign-in host instead of the cloud's own
    /// (`https://login.microsoftonline.com` for the public cloud), for `azure-kms://` tokens.
    /// Only the host sets this, never a URI.
    pub azure_authority_host: Option<String>,
}

/// A location the component resolved, to be opened by a provider.
///
/// It carries secrets (`uri`, parameter values): its `Debug` shows neither, and no error of
/// this crate ever contains them.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Registry scheme, lower-cased (`s3`, `nodelocal`, `kafka`, `aws-kms`, …).
    pub scheme: String,
    /// Provider name (`s3`, `nodelocal`, `azure_storage`, `kafka`, `aws_kms`, …).
    pub provider: String,
    /// The full URI, secrets included.
    pub uri: String,
    /// The URI's host component (a bucket, a node id, a broker).
    pub host: String,
    /// Cleaned path, no leading or trailing `/` (`""` for the root).
    pub path: String,
    /// Every query parameter as given.
    pub params: Vec<(String, String)>,
    /// The user on whose behalf the target is opened.
    pub user: String,
}

impl Target {
    /// A target of `scheme://host/path` without parameters, opened for `root`; handy in tests.
    pub fn new(scheme: &str, host: &str, path: &str) -> Self {
        let path = path.trim_matches('/');
        Self {
            scheme: scheme.to_owned(),
            provider: scheme.replace('-', "_"),
            uri: format!("{scheme}://{host}/{path}"),
            host: host.to_owned(),
            path: path.to_owned(),
            params: Vec::new(),
            user: "root".to_owned(),
        }
    }

    /// `scheme://host/path`: what errors and logs may show (no parameters, so no secrets). A
    /// KMS key's path is shown as `/redacted`, as SHOW EXTERNAL CONNECTIONS shows it.
    pub fn display(&self) -> String {
        if self.scheme.ends_with("-kms") {
            format!("{}://{}/redacted", self.scheme, self.host)
        } else if self.path.is_empty() {
            format!("{}://{}", self.scheme, self.host)
        } else {
            format!("{}://{}/{}", self.scheme, self.host, self.path)
        }
    }
}

impl std::fmt::Debug for Target {
    // Never print `uri` or parameter values: they may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("scheme", &self.scheme)
            .field("provider", &self.provider)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("params", &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One listed object (or, when listing with a delimiter, one common prefix of size 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key relative to the target's path.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}
