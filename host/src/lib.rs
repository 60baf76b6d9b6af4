//! The extconn host: runs the sandboxed component, keeps the catalog, performs the I/O.
//!
//! The component (built from `plugin/` and embedded by `build.rs`) decides everything about a
//! statement and asks for every effect as a request; a [`Host`] drives it step by step,
//! answering catalog requests from SQLite ([`catalog`]) and object requests through
//! `extconn-providers`.
//!
//! * [`Runtime`]: the compiled component, shared by threads. One wasmtime engine per process,
//!   the compiled component cached on disk ([`CompileCache`], `$EXTCONN_CACHE_DIR`), a fresh
//!   instance with a memory cap and a per-call deadline for each script.
//! * [`Host`]: a runtime, a catalog and the providers over one data directory;
//!   [`Host::execute`] runs a script and returns each statement's [`StatementResult`].
//! * [`Plugin`]: one instance, for the component's pure exports (`redact-uri`, `parse-uri`, …).
//! * [`output`]: results printed like `cockroach sql` (tables) or as JSON lines; [`cli`] is
//!   the `extconn` binary.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use extconn_host::{Host, Outcome, Runtime, RuntimeConfig, Session, Value};
//!
//! let data = tempfile::tempdir()?;
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let mut host = Host::open(runtime.clone(), data.path())?;
//! let results = host.execute(
//!     &Session::default(),
//!     "CREATE EXTERNAL CONNECTION backups AS 'nodelocal://1/backups';
//!      SHOW EXTERNAL CONNECTIONS",
//! );
//! assert_eq!(results[0].outcome, Ok(Outcome::Command("CREATE EXTERNAL CONNECTION".into())));
//! let Ok(Outcome::Rows(rows)) = &results[1].outcome else { panic!("{results:?}") };
//! assert_eq!(rows.rows[0][0], Value::Text("backups".into()));
//! assert!(data.path().join("extern/backups/crdb_external_storage_location").exists());
//!
//! // The pure exports, on an instance of the same runtime.
//! let mut plugin = runtime.instantiate()?;
//! assert_eq!(plugin.redact_uri("s3://b?AWS_SECRET_ACCESS_KEY=s")?, "s3://b?AWS_SECRET_ACCESS_KEY=redacted");
//! # Ok(())
//! # }
//! ```
//!
//! Building: `build.rs` compiles `plugin/` for `wasm32-unknown-unknown` in a nested cargo run
//! (target dir `target/plugin-wasm`); set `EXTCONN_PLUGIN_WASM=/path/to/extconn_plugin.wasm` to
//! componentize a prebuilt core module instead.
#![deny(missing_docs)]

mod bindings;
pub mod catalog;
pub mod changefeed;
pub mod cli;
pub mod databases;
pub mod demo;
mod host;
pub mod jobs;
pub mod model;
pub mod node;
mod ops;
pub mod output;
pub mod runtime;
pub mod userfile_cmd;

pub use catalog::{Catalog, CatalogError};
pub use host::{
    AZURE_BLOB_ENDPOINT_VAR, GCS_ENDPOINT_VAR, Host, HostError, default_data_dir, provider_config,
};
pub use model::{
    Column, ErrorKind, Outcome, ParamInfo, Rows, Session, SqlError, StatementResult, UriInfo,
    Validation, Value,
};
pub use runtime::{CacheStatus, CompileCache, Plugin, Runtime, RuntimeConfig, RuntimeError};

/// An error with its whole chain of causes, `a: b: c`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
