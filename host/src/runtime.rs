//! The wasmtime embedding: one engine per process, the component compiled once and cached on
//! disk, and a limited instance per script (reused by the next script after a clean end).
//!
//! * The [`wasmtime::Engine`] is process-wide: the pooling allocator, epoch interruption, the
//!   component model, no async and no concurrency support. A background thread advances the
//!   epoch every [`EPOCH_TICK`].
//! * [`Runtime::new`] compiles the component once, or loads the precompiled `.cwasm` from the
//!   cache directory (see [`CompileCache`]), and links it once (`InstancePre`).
//! * [`Runtime::instantiate`] gives a [`Plugin`]: a new `Store` with a memory cap and a
//!   per-call deadline. A trap, running out of memory or time is a [`RuntimeError::Failed`],
//!   which becomes a clean `XX000` statement error; the process carries on. The failed instance
//!   is dropped; one whose script ended cleanly goes back to the runtime ([`Runtime::recycle`])
//!   for the next script.

use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};

use crate::bindings::{self, wit};
use crate::model::{SqlError, UriInfo};

/// The component built from `plugin/` by `build.rs`.
static EMBEDDED_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/extconn.component.wasm"));

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Default linear-memory cap of one instance.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// Default time one call into the component may run.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(5);

/// The environment variable naming the compile cache directory.
pub const CACHE_DIR_ENV: &str = "EXTCONN_CACHE_DIR";

/// Instances the pooling allocator holds at once, process-wide: one per running script.
const POOL_INSTANCES: u32 = 64;

/// Instances a runtime keeps for reuse after a script ended cleanly ([`Runtime::recycle`]).
const MAX_IDLE: usize = 4;
/// An instance whose linear memory grew past this is dropped rather than kept for reuse.
const MAX_IDLE_MEMORY: usize = 8 << 20;

/// The component's bytes as embedded in this binary (`extconn component --out FILE`).
pub fn embedded_component() -> &'static [u8] {
    EMBEDDED_COMPONENT
}

/// Where compiled components are cached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CompileCache {
    /// `$EXTCONN_CACHE_DIR`, else `$XDG_CACHE_HOME/extconn`, else `~/.cache/extconn`; off if
    /// none of them is set.
    #[default]
    FromEnv,
    /// This directory.
    Dir(PathBuf),
    /// Compile every time.
    Off,
}

impl CompileCache {
    fn dir(&self) -> Option<PathBuf> {
        match self {
            Self::FromEnv => {
                let var =
                    |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
                var(CACHE_DIR_ENV)
                    .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("extconn")))
                    .or_else(|| var("HOME").map(|d| d.join(".cache").join("extconn")))
            }
            Self::Dir(dir) => Some(dir.clone()),
            Self::Off => None,
        }
    }
}

/// What [`Runtime::new`] did to get the compiled component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Loaded the precompiled component from the cache.
    Hit,
    /// Compiled it and stored it in the cache.
    Stored,
    /// Compiled it; storing it failed (logged).
    NotStored,
    /// Compiled it; caching is off.
    Off,
}

/// How to build a [`Runtime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// A component file to run instead of the embedded one (`--plugin FILE`).
    pub plugin: Option<PathBuf>,
    /// Linear-memory cap of one instance, in bytes.
    pub memory_limit: usize,
    /// How long one call into the component may run (rounded up to [`EPOCH_TICK`]s).
    pub call_deadline: Duration,
    /// Where compiled components are cached.
    pub cache: CompileCache,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            plugin: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            call_deadline: DEFAULT_CALL_DEADLINE,
            cache: CompileCache::FromEnv,
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the runtime: setting it up, or one call into the component.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The process-wide engine could not be created.
    #[error("cannot create the WebAssembly engine: {message}")]
    Engine {
        /// Why (the engine is created once; later calls see the same text).
        message: String,
    },
    /// `--plugin FILE` could not be read.
    #[error("cannot read the component {}", path.display())]
    ReadPlugin {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a component wasmtime can compile.
    #[error("cannot compile the component")]
    Compile {
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The component does not have the imports and exports of world `extconn:connections/plugin`.
    #[error(
        "the component does not fit this host (world extconn:connections/plugin@0.2.0 or @0.1.0)"
    )]
    Link {
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A call trapped, exceeded its memory or its deadline, or could not instantiate.
    #[error("the extconn component failed: {reason}")]
    Failed {
        /// What happened, for the user.
        reason: String,
        /// wasmtime's error, with the wasm backtrace.
        #[source]
        source: BoxError,
    },
}

impl RuntimeError {
    /// The statement error a user sees: `XX000` with this error's message.
    pub fn to_sql_error(&self) -> SqlError {
        match self {
            // The cause holds wasm backtraces: logged, not shown.
            Self::Failed { .. } => SqlError::internal(self.to_string()),
            _ => SqlError::internal(crate::error_chain(self)),
        }
    }
}

/// The process-wide engine and its epoch ticker.
fn engine() -> Result<&'static Engine, RuntimeError> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            // The pool reserves its address space up front; where that is refused (a `ulimit -v`),
            // allocate on demand instead: slower to instantiate, the same limits.
            let engine = Engine::new(&engine_config(true))
                .or_else(|e| {
                    tracing::warn!(error = %format!("{e:#}"), "no pooling allocator; allocating on demand");
                    Engine::new(&engine_config(false))
                })
                .map_err(|e| format!("{e:#}"))?;
            // The engine lives in this static for the whole process, and so does its ticker.
            let ticking = engine.clone();
            std::thread::Builder::new()
                .name("extconn-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(EPOCH_TICK);
                        ticking.increment_epoch();
                    }
                })
                .map_err(|e| format!("cannot start the epoch thread: {e}"))?;
            Ok(engine)
        })
        .as_ref()
        .map_err(|message| RuntimeError::Engine { message: message.clone() })
}

fn engine_config(pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true).concurrency_support(false).epoch_interruption(true);
    if !pooling {
        return config;
    }
    let mut pool = PoolingAllocationConfig::new();
    // Small, fixed limits: one component instance per running script, one core instance and
    // memory per component instance (plus slack for what wit-component may add).
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES)
        .total_tables(POOL_INSTANCES * 2)
        .max_core_instances_per_component(8)
        .max_memories_per_component(2)
        .max_tables_per_component(4)
        .max_unused_warm_slots(8);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// A compiled, linked component, ready to instantiate. Cheap to clone and share across
/// threads.
#[derive(Debug, Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    component: Component,
    pre: Pre,
    memory_limit: usize,
    call_deadline: Duration,
    deadline_ticks: u64,
    cache_status: CacheStatus,
    cache_file: Option<PathBuf>,
    /// Instances handed back by [`Runtime::recycle`], reused by [`Runtime::instantiate`].
    idle: std::sync::Mutex<Vec<Plugin>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("memory_limit", &self.memory_limit)
            .field("call_deadline", &self.call_deadline)
            .field("cache_status", &self.cache_status)
            .field("cache_file", &self.cache_file)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Compiles (or loads from the cache) and links the component.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine = engine()?.clone();
        let owned;
        let bytes = match &config.plugin {
            Some(path) => {
                owned = std::fs::read(path)
                    .map_err(|source| RuntimeError::ReadPlugin { path: path.clone(), source })?;
                &owned[..]
            }
            None => EMBEDDED_COMPONENT,
        };
        let started = Instant::now();
        let (component, cache_status, cache_file) = load_component(&engine, bytes, &config.cache)?;
        tracing::debug!(?cache_status, elapsed = ?started.elapsed(), "component ready");
        let linker = Linker::<StoreState>::new(&engine);
        let instance_pre = linker
            .instantiate_pre(&component)
            .map_err(|e| RuntimeError::Link { source: e.into_boxed_dyn_error() })?;
        let pre = match bindings::PluginPre::new(instance_pre.clone()) {
            Ok(pre) => Pre::Current(pre),
            Err(current) => match bindings::v0_1::PluginPre::new(instance_pre) {
                Ok(pre) => {
                    tracing::info!("the component speaks extconn:connections@0.1.0");
                    Pre::V0_1(pre)
                }
                // Report the current version's mismatch: that is what a new component targets.
                Err(_) => {
                    return Err(RuntimeError::Link { source: current.into_boxed_dyn_error() });
                }
            },
        };
        let ticks = config.call_deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()).max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                component,
                pre,
                memory_limit: config.memory_limit,
                call_deadline: config.call_deadline,
                deadline_ticks: u64::try_from(ticks).unwrap_or(u64::MAX),
                cache_status,
                cache_file,
                idle: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// How the compiled component was obtained.
    pub fn cache_status(&self) -> CacheStatus {
        self.inner.cache_status
    }

    /// The `.cwasm` file this component is cached in (whether or not storing it worked).
    pub fn cache_file(&self) -> Option<&Path> {
        self.inner.cache_file.as_deref()
    }

    /// The names of the component's imports. extconn's component has none: it is sans-IO.
    pub fn imports(&self) -> Vec<String> {
        let ty = self.inner.component.component_type();
        ty.imports(&self.inner.engine).map(|(name, _)| name.to_owned()).collect()
    }

    /// The names of the component's exports.
    pub fn exports(&self) -> Vec<String> {
        let ty = self.inner.component.component_type();
        ty.exports(&self.inner.engine).map(|(name, _)| name.to_owned()).collect()
    }

    /// The memory cap of each instance, in bytes.
    pub fn memory_limit(&self) -> usize {
        self.inner.memory_limit
    }

    /// How long one call into the component may run.
    pub fn call_deadline(&self) -> Duration {
        self.inner.call_deadline
    }

    /// An instance in its own store, with this runtime's limits: one handed back by
    /// [`Runtime::recycle`] if there is one, else a new one.
    pub fn instantiate(&self) -> Result<Plugin, RuntimeError> {
        let inner = &self.inner;
        if let Some(plugin) = inner.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(plugin);
        }
        let limits = Limits {
            inner: StoreLimitsBuilder::new()
                .memory_size(inner.memory_limit)
                .instances(8)
                .memories(2)
                .tables(8)
                .build(),
            memory_denied: false,
            memory_bytes: 0,
        };
        let mut store = Store::new(&inner.engine, StoreState { limits });
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(inner.deadline_ticks);
        let mut plugin = Plugin {
            store,
            bindings: None,
            deadline_ticks: inner.deadline_ticks,
            memory_limit: inner.memory_limit,
            call_deadline: inner.call_deadline,
            spent: false,
        };
        let instantiated = match &inner.pre {
            Pre::Current(pre) => pre.instantiate(&mut plugin.store).map(Api::Current),
            Pre::V0_1(pre) => pre.instantiate(&mut plugin.store).map(Api::V0_1),
        };
        match instantiated {
            Ok(api) => {
                plugin.bindings = Some(api);
                Ok(plugin)
            }
            Err(e) => Err(plugin.failure(e)),
        }
    }
}

impl Runtime {
    /// Hands back an instance whose script ended cleanly (no statement resource left open), so
    /// that the next [`Runtime::instantiate`] skips instantiating and the page faults of a fresh
    /// instance's first call (about 50 µs, docs/benchmarks.md). A spent instance, one whose
    /// memory grew past 8 MiB, or one beyond the four kept, is dropped instead. The component
    /// keeps no state between scripts (it is sans-IO: every statement is a resource, dropped at
    /// its end), so a reused instance behaves as a fresh one.
    pub fn recycle(&self, plugin: Plugin) {
        if plugin.spent || plugin.store.data().limits.memory_bytes > MAX_IDLE_MEMORY {
            return;
        }
        if let Ok(mut idle) = self.inner.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(plugin);
        }
    }

    /// How many instances wait for reuse (at most four).
    pub fn idle_instances(&self) -> usize {
        self.inner.idle.lock().map_or(0, |idle| idle.len())
    }
}

/// The linked component, by the WIT version it was built for.
enum Pre {
    Current(bindings::PluginPre<StoreState>),
    V0_1(bindings::v0_1::PluginPre<StoreState>),
}

/// An instance's exports, by WIT version.
enum Api {
    Current(bindings::Plugin),
    V0_1(bindings::v0_1::Plugin),
}

type Guest = bindings::exports::extconn::connections::connections::Guest;
type GuestV0_1 = bindings::v0_1::exports::extconn::connections::connections::Guest;

/// The store's data: only the limits.
struct StoreState {
    limits: Limits,
}

/// [`StoreLimits`] that remember whether they refused memory, to tell an out-of-memory abort
/// from any other trap.
struct Limits {
    inner: StoreLimits,
    memory_denied: bool,
    /// The size linear memory last grew to.
    memory_bytes: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        self.memory_denied |= !allowed;
        if allowed {
            self.memory_bytes = self.memory_bytes.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// One instance of the component in its own store. After a [`RuntimeError::Failed`] it is
/// spent: make a new one with [`Runtime::instantiate`].
pub struct Plugin {
    store: Store<StoreState>,
    /// `None` only while instantiating.
    bindings: Option<Api>,
    deadline_ticks: u64,
    memory_limit: usize,
    call_deadline: Duration,
    /// A call failed: the instance must not be used again.
    spent: bool,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("memory_limit", &self.memory_limit)
            .field("call_deadline", &self.call_deadline)
            .field("spent", &self.spent)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The WIT version the component was built for: `0.2.0` or `0.1.0`.
    pub fn wit_version(&self) -> &'static str {
        match self.bindings {
            Some(Api::V0_1(_)) => "0.1.0",
            _ => "0.2.0",
        }
    }

    /// The component's version (`CARGO_PKG_VERSION` of `plugin/`).
    pub fn version(&mut self) -> Result<String, RuntimeError> {
        self.call(|api, store| api.call_version(store), |api, store| api.call_version(store))
    }

    /// The display form of a URI (never fails: a bad URI gives `failed to redact the URI: …`).
    pub fn redact_uri(&mut self, uri: &str) -> Result<String, RuntimeError> {
        self.call(
            |api, store| api.call_redact_uri(store, uri),
            |api, store| api.call_redact_uri(store, uri),
        )
    }

    /// [`Plugin::redact_uri`] for many URIs in one call.
    pub fn redact_uris(&mut self, uris: &[String]) -> Result<Vec<String>, RuntimeError> {
        self.call(
            |api, store| api.call_redact_uris(store, uris),
            |api, store| api.call_redact_uris(store, uris),
        )
    }

    /// Parses and checks a URI as CREATE EXTERNAL CONNECTION would, without I/O.
    pub fn parse_uri(&mut self, uri: &str) -> Result<Result<UriInfo, SqlError>, RuntimeError> {
        let parsed = self.call(
            |api, store| api.call_parse_uri(store, uri),
            |api, store| legacy(api.call_parse_uri(store, uri)),
        )?;
        Ok(parsed.map(Into::into).map_err(Into::into))
    }

    /// [`Plugin::parse_uri`] for many URIs in one call.
    pub fn parse_uris(
        &mut self,
        uris: &[String],
    ) -> Result<Vec<Result<UriInfo, SqlError>>, RuntimeError> {
        let parsed = self.call(
            |api, store| api.call_parse_uris(store, uris),
            |api, store| legacy(api.call_parse_uris(store, uris)),
        )?;
        Ok(parsed.into_iter().map(|r| r.map(Into::into).map_err(Into::into)).collect())
    }

    /// Resolves the sink connection `name` as CREATE CHANGEFEED did: the stored URI, checked,
    /// as the target the providers open for `principal` (whose USAGE is checked again).
    pub fn resolve_sink(
        &mut self,
        name: &str,
        principal: crate::catalog::Principal,
        connection: Option<crate::catalog::Connection>,
        grants: Vec<crate::catalog::Grant>,
    ) -> Result<Result<extconn_providers::Target, SqlError>, RuntimeError> {
        use bindings::exports::extconn::connections::connections::ResolveInput;
        let input = ResolveInput {
            uri: format!("external://{name}"),
            purpose: bindings::wit::Purpose::ChangefeedSink,
            principal: principal.into(),
            connection: connection.map(Into::into),
            grants: grants.into_iter().map(Into::into).collect(),
        };
        let resolved = self.call(
            |api, store| api.call_resolve(store, &input),
            |api, store| {
                let input: bindings::v0_1::ResolveInput = to_legacy(&input)?;
                legacy(api.call_resolve(store, &input))
            },
        )?;
        Ok(resolved.map(Into::into).map_err(Into::into))
    }

    /// Creates a `statement` resource for `sql`.
    pub(crate) fn open_statement(
        &mut self,
        session: &wit::Session,
        sql: &str,
    ) -> Result<ResourceAny, RuntimeError> {
        self.call(
            |api, store| api.statement().call_constructor(store, session, sql),
            |api, store| {
                let session: bindings::v0_1::wit::Session = to_legacy(session)?;
                api.statement().call_constructor(store, &session, sql)
            },
        )
    }

    /// One `resume` of a statement.
    pub(crate) fn resume(
        &mut self,
        statement: ResourceAny,
        responses: &[wit::Response],
    ) -> Result<wit::Step, RuntimeError> {
        self.call(
            |api, store| api.statement().call_resume(store, statement, responses),
            |api, store| {
                let responses: Vec<bindings::v0_1::wit::Response> = to_legacy(&responses)?;
                legacy(api.statement().call_resume(store, statement, &responses))
            },
        )
    }

    /// Drops a statement resource; a failure only means the instance is spent anyway.
    pub(crate) fn close_statement(&mut self, statement: ResourceAny) {
        if let Err(e) = statement.resource_drop(&mut self.store) {
            tracing::debug!(error = %format!("{e:#}"), "dropping the statement failed");
        }
    }

    /// Calls into the component, through the bindings of its WIT version, with a fresh
    /// deadline, and classifies a failure.
    fn call<T>(
        &mut self,
        current: impl FnOnce(&Guest, &mut Store<StoreState>) -> wasmtime::Result<T>,
        v0_1: impl FnOnce(&GuestV0_1, &mut Store<StoreState>) -> wasmtime::Result<T>,
    ) -> Result<T, RuntimeError> {
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = match &self.bindings {
            Some(Api::Current(b)) => current(b.extconn_connections_connections(), &mut self.store),
            Some(Api::V0_1(b)) => v0_1(b.extconn_connections_connections(), &mut self.store),
            None => unreachable!("a Plugin is only handed out instantiated"),
        };
        result.map_err(|e| self.failure(e))
    }

    /// Describes a failed call for the user: out of memory, out of time, or the trap.
    fn failure(&mut self, error: wasmtime::Error) -> RuntimeError {
        self.spent = true;
        let reason = if self.store.data().limits.memory_denied {
            format!("out of memory (the limit is {})", human_bytes(self.memory_limit))
        } else {
            match error.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => {
                    format!("a call ran longer than its {:?} deadline", self.call_deadline)
                }
                Some(trap) => format!("wasm trap: {trap}"),
                None => format!("{error:#}"),
            }
        };
        tracing::warn!(%reason, details = ?error, "the component failed");
        RuntimeError::Failed { reason, source: error.into_boxed_dyn_error() }
    }
}

/// A 0.1.0 component's answer as the 0.2.0 value it is.
fn legacy<A: serde::Serialize, B: serde::de::DeserializeOwned>(
    answer: wasmtime::Result<A>,
) -> wasmtime::Result<B> {
    bindings::legacy::convert(&answer?).map_err(wasmtime::Error::msg)
}

/// A 0.2.0 value for a 0.1.0 component.
fn to_legacy<A: serde::Serialize, B: serde::de::DeserializeOwned>(
    value: &A,
) -> wasmtime::Result<B> {
    bindings::legacy::convert(value).map_err(wasmtime::Error::msg)
}

fn human_bytes(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Feeds `Hash` output into a SHA-256, so the engine's compatibility hash can join the key.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only `write` is used: the digest is read with `finalize`")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The cache key: the engine's compatibility hash (wasmtime version, target, settings) and the
/// component's bytes.
fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut hasher = ShaHasher(Sha256::new());
    hasher.0.update(b"extconn-cwasm-v1\0");
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.0.update((bytes.len() as u64).to_le_bytes());
    hasher.0.update(bytes);
    let digest = hasher.0.finalize();
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

fn load_component(
    engine: &Engine,
    bytes: &[u8],
    cache: &CompileCache,
) -> Result<(Component, CacheStatus, Option<PathBuf>), RuntimeError> {
    let compile = || {
        Component::new(engine, bytes)
            .map_err(|e| RuntimeError::Compile { source: e.into_boxed_dyn_error() })
    };
    let Some(dir) = cache.dir() else {
        return Ok((compile()?, CacheStatus::Off, None));
    };
    let file = dir.join(format!("extconn-{}.cwasm", cache_key(engine, bytes)));
    if file.is_file() {
        match deserialize_cached(engine, &file) {
            Ok(component) => return Ok((component, CacheStatus::Hit, Some(file))),
            Err(e) => tracing::warn!(
                file = %file.display(), error = %format!("{e:#}"),
                "ignoring an unusable compile cache file; recompiling"
            ),
        }
    }
    let component = compile()?;
    let status = match store_cached(&component, &dir, &file) {
        Ok(()) => {
            prune_cache(&dir, &file);
            CacheStatus::Stored
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot store the compiled component");
            CacheStatus::NotStored
        }
    };
    Ok((component, status, Some(file)))
}

/// How many compiled components the cache keeps (other builds and versions of extconn).
const CACHE_KEEP: usize = 4;

/// Removes all but the [`CACHE_KEEP`] most recently written `.cwasm` files. Removing a file
/// another process has mapped is harmless on Unix (the mapping keeps the inode alive).
fn prune_cache(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("extconn-") && name.ends_with(".cwasm")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(_, path)| path != keep)
        .collect();
    files.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, path) in files.into_iter().skip(CACHE_KEEP - 1) {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::debug!(file = %path.display(), error = %e, "cannot prune the compile cache");
        }
    }
}

/// Loads a precompiled component from the cache.
#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, file: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize_file` maps the file and runs its machine code as is, so the file must
    // be one `Component::serialize` produced for a compatible engine from the bytes we mean to
    // run. `file`'s name is a SHA-256 of the engine's `precompile_compatibility_hash` and of
    // those exact component bytes, and only `store_cached` creates such names, by renaming a
    // fully written temporary file into place, so a crash never leaves a partial file there.
    // wasmtime additionally checks the header (wasmtime version, target, engine settings) and
    // rejects a mismatch with an error, which the caller answers by recompiling. The cache
    // directory is trusted like the binary itself: whoever can write to it can run code as us.
    unsafe { Component::deserialize_file(engine, file) }
}

/// Writes the compiled component atomically: a temporary file in the same directory, renamed.
fn store_cached(component: &Component, dir: &Path, file: &Path) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".extconn-{}-{nanos}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(2 << 20), "2 MiB");
        assert_eq!(human_bytes(2048), "2 KiB");
        assert_eq!(human_bytes(1536), "1536 bytes");
    }
}
