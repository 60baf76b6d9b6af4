//! The sans-IO core of extconn.
//!
//! Everything extconn *decides* lives here: the statement grammar, URI parsing and the parameter
//! rules of every scheme, redaction, privilege checks and validation plans. Nothing here performs
//! I/O: a [`exec::Script`] returns [`model::Request`]s and is resumed with [`model::Response`]s.
//! The crate builds natively (tests, benches) and for `wasm32-unknown-unknown`, where
//! `component.rs` exports it through the WIT package in `wit/`.
//!
//! ```
//! use extconn_plugin::uri;
//! let shown = uri::redact("s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret");
//! assert_eq!(shown, "s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted");
//! ```

pub mod error;
pub mod exec;
pub mod model;
pub mod sql;
pub mod uri;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod alloc;

// The component runs single-threaded (no `atomics`): small blocks come from size classes
// (`alloc.rs`), the rest from talc, whose wasm allocator grows linear memory itself and
// allocates faster than std's dlmalloc (docs/benchmarks.md).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: alloc::SizeClasses<talc::wasm::WasmDynamicTalc> =
    alloc::SizeClasses::new(talc::wasm::new_wasm_dynamic_allocator());

pub use error::{Error, ErrorKind};
