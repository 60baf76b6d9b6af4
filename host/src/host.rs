//! The step driver: runs a script through an instance of the component (reused from the last
//! clean script when there is one), performs the I/O it asks for, and hands back each
//! statement's result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use tracing::debug;

use crate::bindings::wit;
use crate::catalog::{Catalog, CatalogError, GrantObject, Mutation};
use crate::databases::Databases;
use crate::jobs::Jobs;
use crate::model::{Outcome, Session, SqlError, StatementResult};
use crate::ops;
use crate::runtime::{Plugin, Runtime};
use extconn_providers as providers;

/// More steps than any script needs: a component that never finishes is stopped here.
const MAX_STEPS: usize = 100_000;

/// Opening a [`Host`] failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The catalog could not be opened.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The I/O runtime could not start.
    #[error("cannot start the I/O runtime")]
    Tokio(#[source] std::io::Error),
}

/// A component runtime, a catalog and the providers: everything a script needs.
///
/// `Send` but not `Sync` (the catalog is one SQLite connection): open one `Host` per thread on
/// the same data directory, sharing one [`Runtime`].
#[derive(Debug)]
pub struct Host {
    runtime: Runtime,
    io: Io,
}

impl Host {
    /// Opens the catalog under `data_dir` (creating it on first use).
    pub fn open(runtime: Runtime, data_dir: &Path) -> Result<Self, HostError> {
        let catalog = Catalog::open(data_dir)?;
        Self::with_catalog(runtime, catalog, data_dir)
    }

    /// A host over an already opened catalog; `data_dir` still holds `nodelocal` files.
    pub fn with_catalog(
        runtime: Runtime,
        catalog: Catalog,
        data_dir: &Path,
    ) -> Result<Self, HostError> {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(HostError::Tokio)?;
        let providers = Arc::new(provider_config(data_dir));
        let databases = Databases::new(data_dir);
        Ok(Self {
            runtime,
            io: Io {
                catalog,
                databases,
                database: None,
                jobs: None,
                progress: None,
                detached: Vec::new(),
                providers,
                stores: Arc::default(),
                tokio,
            },
        })
    }

    /// Replaces the providers' configuration (endpoint overrides) that [`provider_config`]
    /// read from the environment; storage clients opened so far are dropped.
    pub fn set_provider_config(&mut self, config: providers::Config) {
        self.io.providers = Arc::new(config);
        self.io.stores = Arc::default();
    }

    /// The providers' configuration in use.
    pub fn provider_config(&self) -> &providers::Config {
        &self.io.providers
    }

    /// The runtime scripts run in.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.io.catalog
    }

    /// The catalog, for direct changes (tests, seeding).
    pub fn catalog_mut(&mut self) -> &mut Catalog {
        &mut self.io.catalog
    }

    /// Reports the progress of long operations (BACKUP, RESTORE, IMPORT, EXPORT) to
    /// `progress(operation, bytes_done, bytes_total)`, e.g. to draw a progress bar.
    pub fn set_progress(&mut self, progress: impl Fn(&str, u64, u64) + Send + Sync + 'static) {
        self.io.progress = Some(Box::new(progress));
    }

    /// How many detached operations are still running.
    pub fn detached_running(&mut self) -> usize {
        self.io.detached.retain(|t| !t.is_finished());
        self.io.detached.len()
    }

    /// Waits for every detached operation to finish.
    pub fn wait_detached(&mut self) {
        for thread in self.io.detached.drain(..) {
            if thread.join().is_err() {
                tracing::error!("a detached operation panicked");
            }
        }
    }

    /// The database the last script ended in (`USE` in a script changes it): a shell carries it
    /// into its session for the next script.
    pub fn current_database(&self) -> Option<&str> {
        self.io.database.as_deref()
    }

    /// The data directory (`nodelocal` files live under `<data_dir>/extern`).
    pub fn data_dir(&self) -> &Path {
        &self.io.providers.data_dir
    }

    /// Runs every statement of `sql` and returns their results, in order. It stops after the
    /// first statement that fails: that one's error is the last result.
    pub fn execute(&mut self, session: &Session, sql: &str) -> Vec<StatementResult> {
        let mut results = Vec::new();
        self.execute_each(session, sql, |result| results.push(result));
        results
    }

    /// [`Host::execute`], handing each result to `on_result` as soon as its statement ends.
    pub fn execute_each(
        &mut self,
        session: &Session,
        sql: &str,
        mut on_result: impl FnMut(StatementResult),
    ) {
        // Statements may hold secrets: only their size is logged.
        let _span =
            tracing::debug_span!("script", user = %session.user, bytes = sql.len()).entered();
        self.io.database = session.database.clone();
        let mut plugin = match self.runtime.instantiate() {
            Ok(plugin) => plugin,
            Err(e) => return on_result(StatementResult::error(e.to_sql_error())),
        };
        match self.drive(&mut plugin, session, sql, &mut on_result) {
            // Every statement resource was closed: the instance can serve the next script.
            Ok(()) => self.runtime.recycle(plugin),
            Err(error) => on_result(StatementResult::error(error)),
        }
    }

    /// The step loop. `Err` is a failure of the component itself, after which the instance is
    /// spent; statement errors are results.
    fn drive(
        &mut self,
        plugin: &mut Plugin,
        session: &Session,
        sql: &str,
        on_result: &mut impl FnMut(StatementResult),
    ) -> Result<(), SqlError> {
        let fail = |e: crate::runtime::RuntimeError| e.to_sql_error();
        let statement = plugin.open_statement(&session.into(), sql).map_err(fail)?;
        let mut responses = Vec::new();
        for _ in 0..MAX_STEPS {
            match plugin.resume(statement, &responses).map_err(fail)? {
                wit::Step::Io(requests) => {
                    responses = self.io.perform(requests);
                }
                wit::Step::Finished(result) => {
                    let result = self.io.finish(session, result);
                    let failed = result.outcome.is_err();
                    on_result(result);
                    if failed {
                        plugin.close_statement(statement);
                        return Ok(());
                    }
                    responses = Vec::new();
                }
                wit::Step::End => {
                    plugin.close_statement(statement);
                    return Ok(());
                }
            }
        }
        Err(SqlError::internal(format!(
            "the extconn component failed: the script did not finish within {MAX_STEPS} steps"
        )))
    }
}

/// Performs the component's requests: the catalog in this thread, objects on a current-thread
/// tokio runtime, concurrently within one step.
struct Io {
    catalog: Catalog,
    databases: Databases,
    /// The current script's database (`USE` changes it).
    database: Option<String>,
    jobs: Option<Jobs>,
    progress: Option<Box<ops::ProgressFn>>,
    /// Detached operations still running, joined before the host goes away.
    detached: Vec<std::thread::JoinHandle<()>>,
    providers: Arc<providers::Config>,
    stores: Arc<providers::storage::Cache>,
    tokio: tokio::runtime::Runtime,
}

impl Drop for Io {
    /// A detached operation finishes before the process can end: nothing is left half done.
    fn drop(&mut self) {
        for thread in self.detached.drain(..) {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io").field("data_dir", &self.providers.data_dir).finish_non_exhaustive()
    }
}

impl Io {
    fn ctx<'a>(&'a mut self, session: &'a Session) -> ops::Ctx<'a> {
        ops::Ctx {
            config: &self.providers,
            stores: &self.stores,
            tokio: &self.tokio,
            user: &session.user,
            databases: &mut self.databases,
            database: &mut self.database,
            jobs: &mut self.jobs,
            progress: self.progress.as_deref(),
            job: None,
            notices: Vec::new(),
        }
    }

    /// A finished statement as the user sees it: an operation plan or passthrough SQL is
    /// carried out here.
    fn finish(
        &mut self,
        session: &Session,
        result: Result<wit::StatementResult, wit::SqlError>,
    ) -> StatementResult {
        let wit::StatementResult { outcome, mut notices } = match result {
            Err(error) => return StatementResult::error(error.into()),
            Ok(result) => result,
        };
        let outcome = match outcome {
            wit::Outcome::Rows(rows) => Ok(Outcome::Rows(rows.into())),
            wit::Outcome::Command(tag) => Ok(Outcome::Command(tag)),
            wit::Outcome::Passthrough(sql) => {
                let mut ctx = self.ctx(session);
                ops::passthrough(&mut ctx, &sql)
            }
            wit::Outcome::Operation(plan) => {
                let env = || ops::Env {
                    config: self.providers.clone(),
                    stores: self.stores.clone(),
                    user: session.user.clone(),
                    database: self.database.clone(),
                };
                let env = env();
                let mut ctx = ops::Ctx {
                    config: &self.providers,
                    stores: &self.stores,
                    tokio: &self.tokio,
                    user: &session.user,
                    databases: &mut self.databases,
                    database: &mut self.database,
                    jobs: &mut self.jobs,
                    progress: self.progress.as_deref(),
                    job: None,
                    notices: Vec::new(),
                };
                let outcome = ops::Plan::try_from(plan)
                    .and_then(|plan| ops::run(&mut ctx, plan, move || env));
                notices.append(&mut ctx.notices);
                outcome.map(|(outcome, thread)| {
                    self.detached.extend(thread);
                    outcome
                })
            }
        };
        StatementResult { notices, outcome }
    }

    /// One response per request, in order. A failed request is `io-failed`, never an error of
    /// the host.
    fn perform(&mut self, requests: Vec<wit::Request>) -> Vec<wit::Response> {
        let mut responses: Vec<Option<wit::Response>> = Vec::with_capacity(requests.len());
        let mut pending: Vec<(usize, BoxFuture<'static, wit::Response>)> = Vec::new();
        for (index, request) in requests.into_iter().enumerate() {
            match self.catalog_or_object(request) {
                Ok(response) => responses.push(Some(response)),
                Err(future) => {
                    responses.push(None);
                    pending.push((index, future));
                }
            }
        }
        if !pending.is_empty() {
            let (indexes, futures): (Vec<usize>, Vec<_>) = pending.into_iter().unzip();
            let done = self.tokio.block_on(futures::future::join_all(futures));
            for (index, response) in indexes.into_iter().zip(done) {
                responses[index] = Some(response);
            }
        }
        responses.into_iter().map(|r| r.expect("every request was answered")).collect()
    }

    /// Opens the jobs table once; whether it is open (a failure is logged: what needed it,
    /// releasing change capture, is left undone).
    fn open_jobs(&mut self) -> bool {
        if self.jobs.is_none() {
            match Jobs::open(&self.providers.data_dir) {
                Ok(jobs) => self.jobs = Some(jobs),
                Err(e) => tracing::warn!(error = %e.message, "change capture left in place"),
            }
        }
        self.jobs.is_some()
    }

    /// Releases the change capture of the changefeeds an apply canceled (DROP … CASCADE).
    fn release_canceled(&mut self, mutations: &[Mutation]) {
        let canceled: Vec<i64> = mutations
            .iter()
            .filter_map(|m| if let Mutation::CancelJob(id) = m { Some(*id) } else { None })
            .collect();
        if canceled.is_empty() || !self.open_jobs() {
            return;
        }
        let Some(jobs) = &self.jobs else { return };
        for id in canceled {
            if let Ok(Some(crate::jobs::JobInfo { payload: Some(payload), .. })) = jobs.get(id) {
                crate::changefeed::release(&mut self.databases, jobs, &payload);
            }
        }
    }

    /// Fails the changefeeds whose CREATE stopped before starting them (they would hold a
    /// connection that DROP is about to look at) and releases what they captured.
    fn fail_orphans(&mut self) {
        if !self.open_jobs() {
            return;
        }
        let Some(jobs) = &self.jobs else { return };
        for payload in jobs.fail_orphans().unwrap_or_default() {
            crate::changefeed::release(&mut self.databases, jobs, &payload);
        }
    }

    /// Answers a catalog request (or `now`) at once; an object, KMS or sink request becomes a
    /// future to run with the others of its step.
    fn catalog_or_object(
        &mut self,
        request: wit::Request,
    ) -> Result<wit::Response, BoxFuture<'static, wit::Response>> {
        use wit::Request as R;
        use wit::Response as A;
        let catalog = &mut self.catalog;
        let answer = match request {
            R::ReadPrincipal(name) => {
                debug!(request = "read-principal", %name);
                catalog.read_principal(&name).map(|p| A::Principal(p.map(Into::into)))
            }
            R::ReadConnection(name) => {
                debug!(request = "read-connection", %name);
                catalog.read_connection(&name).map(|c| A::Connection(c.map(Into::into)))
            }
            R::ListConnections => {
                debug!(request = "list-connections");
                catalog
                    .list_connections()
                    .map(|list| A::Connections(list.into_iter().map(Into::into).collect()))
            }
            R::ReadGrants(object) => {
                let object = GrantObject::from(object);
                debug!(request = "read-grants", ?object);
                catalog
                    .read_grants(&object)
                    .map(|list| A::Grants(list.into_iter().map(Into::into).collect()))
            }
            R::ReadGrantsOf(grantee) => {
                debug!(request = "read-grants-of", %grantee);
                catalog
                    .read_grants_of(&grantee)
                    .map(|list| A::Grants(list.into_iter().map(Into::into).collect()))
            }
            R::ListPrincipals => {
                debug!(request = "list-principals");
                catalog
                    .list_principals()
                    .map(|list| A::Principals(list.into_iter().map(Into::into).collect()))
            }
            R::Apply(mutations) => {
                let mutations: Vec<Mutation> = mutations.into_iter().map(Into::into).collect();
                debug!(request = "apply", mutations = mutations.len());
                let applied = catalog.apply(&mutations);
                if matches!(applied, Ok(Ok(()))) {
                    self.release_canceled(&mutations);
                }
                applied.map(|applied| {
                    A::Applied(applied.map_err(|f| wit::PreconditionFailed { index: f.index }))
                })
            }
            R::ListDependents(name) => {
                debug!(request = "list-dependents", %name);
                self.fail_orphans();
                let catalog = &mut self.catalog;
                catalog
                    .list_dependents(&name)
                    .map(|list| A::Dependents(list.into_iter().map(Into::into).collect()))
            }
            R::Now => return Ok(A::Now(now_micros())),
            R::Random(n) => return Ok(random_bytes(n)),
            object => {
                let (config, stores) = (self.providers.clone(), self.stores.clone());
                return Err(Box::pin(object_request(config, stores, object)));
            }
        };
        Ok(answer.unwrap_or_else(|e| catalog_failed(&e)))
    }
}

/// Performs one object, KMS or sink request.
async fn object_request(
    config: Arc<providers::Config>,
    stores: Arc<providers::storage::Cache>,
    request: wit::Request,
) -> wit::Response {
    use providers::{kms, sink};
    use wit::Request as R;
    use wit::Response as A;
    let result = match request {
        R::ObjectPut(put) => {
            let target = providers::Target::from(put.target);
            debug!(request = "object-put", target = %target.display(), key = %put.key, bytes = put.data.len());
            match stores.open(&config, &target) {
                Ok(location) => location.put(&put.key, put.data).await.map(|()| A::Done),
                Err(e) => Err(e),
            }
        }
        R::ObjectGet(get) => {
            let target = providers::Target::from(get.target);
            debug!(request = "object-get", target = %target.display(), key = %get.key);
            match stores.open(&config, &target) {
                Ok(location) => location.get(&get.key).await.map(A::Data),
                Err(e) => Err(e),
            }
        }
        R::ObjectList(list) => {
            let target = providers::Target::from(list.target);
            debug!(request = "object-list", target = %target.display(), prefix = %list.prefix);
            match stores.open(&config, &target) {
                Ok(location) => location
                    .list(&list.prefix, list.delimiter.as_deref())
                    .await
                    .map(|objects| A::Objects(objects.into_iter().map(Into::into).collect())),
                Err(e) => Err(e),
            }
        }
        R::ObjectDelete(delete) => {
            let target = providers::Target::from(delete.target);
            debug!(request = "object-delete", target = %target.display(), key = %delete.key);
            match stores.open(&config, &target) {
                Ok(location) => location.delete(&delete.key).await.map(|()| A::Done),
                Err(e) => Err(e),
            }
        }
        R::SinkProbe(target) => {
            let target = providers::Target::from(target);
            debug!(request = "sink-probe", target = %target.display());
            sink::probe(&config, &target).await.map(|()| A::Done)
        }
        R::KmsEncrypt(req) => {
            let target = providers::Target::from(req.target);
            debug!(request = "kms-encrypt", target = %target.display());
            kms::encrypt(&config, &target, &req.data).await.map(A::Data)
        }
        R::KmsDecrypt(req) => {
            let target = providers::Target::from(req.target);
            debug!(request = "kms-decrypt", target = %target.display());
            kms::decrypt(&config, &target, &req.data).await.map(A::Data)
        }
        other => unreachable!("catalog requests are answered in place: {}", request_name(&other)),
    };
    result.unwrap_or_else(|e| {
        debug!(error = %e.message(), "request failed");
        A::IoFailed(wit::IoError { kind: e.kind().into(), message: e.message() })
    })
}

fn request_name(request: &wit::Request) -> &'static str {
    match request {
        wit::Request::ReadPrincipal(_) => "read-principal",
        wit::Request::ReadConnection(_) => "read-connection",
        wit::Request::ListConnections => "list-connections",
        wit::Request::ReadGrants(_) => "read-grants",
        wit::Request::ReadGrantsOf(_) => "read-grants-of",
        wit::Request::ListPrincipals => "list-principals",
        wit::Request::Apply(_) => "apply",
        wit::Request::ObjectPut(_) => "object-put",
        wit::Request::ObjectGet(_) => "object-get",
        wit::Request::ObjectList(_) => "object-list",
        wit::Request::ObjectDelete(_) => "object-delete",
        wit::Request::SinkProbe(_) => "sink-probe",
        wit::Request::KmsEncrypt(_) => "kms-encrypt",
        wit::Request::KmsDecrypt(_) => "kms-decrypt",
        wit::Request::Now => "now",
        wit::Request::Random(_) => "random",
        wit::Request::ListDependents(_) => "list-dependents",
    }
}

/// Secure random bytes from the operating system (salts); at most 1 KiB per request.
fn random_bytes(n: u32) -> wit::Response {
    const MAX: u32 = 1024;
    if n > MAX {
        return wit::Response::IoFailed(wit::IoError {
            kind: wit::ErrorKind::InvalidArgument,
            message: format!("at most {MAX} random bytes may be requested at once, not {n}"),
        });
    }
    let mut bytes = vec![0; n as usize];
    match getrandom::fill(&mut bytes) {
        Ok(()) => wit::Response::Data(bytes),
        Err(e) => wit::Response::IoFailed(wit::IoError {
            kind: wit::ErrorKind::Unavailable,
            message: format!("the operating system has no random bytes: {e}"),
        }),
    }
}

fn catalog_failed(error: &CatalogError) -> wit::Response {
    let kind = if error.is_busy() { wit::ErrorKind::Unavailable } else { wit::ErrorKind::Internal };
    tracing::warn!(error = %crate::error_chain(error), "catalog request failed");
    wit::Response::IoFailed(wit::IoError { kind, message: crate::error_chain(error) })
}

fn now_micros() -> i64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}

/// Overrides GCS's endpoint (`gs://` URIs have none): an emulator or a private endpoint.
pub const GCS_ENDPOINT_VAR: &str = "EXTCONN_GCS_ENDPOINT";
/// Overrides Azure Blob Storage's endpoint (azure URIs have none); see
/// [`providers::Config::azure_blob_endpoint`].
pub const AZURE_BLOB_ENDPOINT_VAR: &str = "EXTCONN_AZURE_BLOB_ENDPOINT";
/// Overrides Cloud KMS's endpoint (`gcp-kms://`); see [`providers::Config::gcp_kms_endpoint`].
pub const GCP_KMS_ENDPOINT_VAR: &str = "EXTCONN_GCP_KMS_ENDPOINT";
/// Overrides Azure Key Vault's URL (`azure-kms://`); see
/// [`providers::Config::azure_kms_endpoint`].
pub const AZURE_KMS_ENDPOINT_VAR: &str = "EXTCONN_AZURE_KMS_ENDPOINT";
/// Overrides Microsoft Entra ID's sign-in host for `azure-kms://` tokens; see
/// [`providers::Config::azure_authority_host`].
pub const AZURE_AUTHORITY_HOST_VAR: &str = "EXTCONN_AZURE_AUTHORITY_HOST";

/// The providers' configuration: `data_dir`, and the cloud endpoint overrides from the host's
/// environment ([`GCS_ENDPOINT_VAR`], [`AZURE_BLOB_ENDPOINT_VAR`], [`GCP_KMS_ENDPOINT_VAR`],
/// [`AZURE_KMS_ENDPOINT_VAR`], [`AZURE_AUTHORITY_HOST_VAR`]), never from a URI.
pub fn provider_config(data_dir: &Path) -> providers::Config {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.trim().is_empty());
    providers::Config {
        data_dir: data_dir.to_owned(),
        gcs_endpoint: var(GCS_ENDPOINT_VAR),
        azure_blob_endpoint: var(AZURE_BLOB_ENDPOINT_VAR),
        gcp_kms_endpoint: var(GCP_KMS_ENDPOINT_VAR),
        azure_kms_endpoint: var(AZURE_KMS_ENDPOINT_VAR),
        azure_authority_host: var(AZURE_AUTHORITY_HOST_VAR),
    }
}

/// The default data directory, `./extconn-data`.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("extconn-data")
}
