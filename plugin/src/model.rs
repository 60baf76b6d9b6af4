//! Plain Rust mirrors of the WIT types. The plugin's logic speaks only these; `component.rs`
//! converts them to and from the generated bindings, and native callers (tests, benches) use
//! them directly.

use crate::error::{Error, ErrorKind};

/// What a connection can be used for, derived from its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionType {
    /// Cloud storage and changefeed sinks.
    Storage,
    /// Key management services.
    Kms,
    /// Other databases (replication sources).
    ForeignData,
}

impl ConnectionType {
    /// CockroachDB's spelling: `STORAGE`, `KMS`, `FOREIGNDATA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Storage => "STORAGE",
            Self::Kms => "KMS",
            Self::ForeignData => "FOREIGNDATA",
        }
    }
}

/// One query parameter as shown to a user: a secret parameter has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// Exact name.
    pub name: String,
    /// Whether the value is a secret.
    pub secret: bool,
    /// The value, `None` for secrets.
    pub value: Option<String>,
}

/// A parsed, checked URI, safe to display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriInfo {
    /// Lower-cased scheme.
    pub scheme: String,
    /// Provider name (`s3`, `azure_storage`, …).
    pub provider: String,
    /// Derived type.
    pub connection_type: ConnectionType,
    /// The redacted display form.
    pub redacted: String,
    /// Host component.
    pub host: String,
    /// Path component.
    pub path: String,
    /// Parameters, secrets without values.
    pub params: Vec<ParamInfo>,
}

/// A location the host can open. Carries secrets: never display it.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Registry scheme, lower-cased.
    pub scheme: String,
    /// Provider name.
    pub provider: String,
    /// Full URI, secrets included.
    pub uri: String,
    /// Host component.
    pub host: String,
    /// Cleaned path without trailing slash ("" for the root).
    pub path: String,
    /// Query parameters as given.
    pub params: Vec<(String, String)>,
    /// The user the target is opened for.
    pub user: String,
}

impl std::fmt::Debug for Target {
    // Never print `uri` or parameter values: they may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("params", &self.params.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why a connection is being resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// BACKUP, RESTORE, IMPORT, EXPORT, CHECK.
    Storage,
    /// `kms = …`.
    Kms,
    /// CREATE CHANGEFEED … INTO.
    ChangefeedSink,
    /// Replication streams.
    Replication,
}

/// What a grant is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantObject {
    /// `GRANT SYSTEM …`.
    System,
    /// `… ON EXTERNAL CONNECTION name`.
    Connection(String),
}

/// One row of the privilege table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The object.
    pub object: GrantObject,
    /// User or role.
    pub grantee: String,
    /// Upper-case privilege name.
    pub privilege: String,
    /// Held WITH GRANT OPTION.
    pub grantable: bool,
}

/// A stored connection. `uri` holds secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// Exact name.
    pub name: String,
    /// Derived type.
    pub connection_type: ConnectionType,
    /// Provider name.
    pub provider: String,
    /// The stored URI, secrets included.
    pub uri: String,
    /// Creator.
    pub owner: String,
    /// Microseconds since the Unix epoch.
    pub created: i64,
    /// Microseconds since the Unix epoch.
    pub updated: i64,
    /// Bumped by every update.
    pub version: u64,
}

impl std::fmt::Debug for Connection {
    // The URI may hold secrets: show its redacted form only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("connection_type", &self.connection_type)
            .field("provider", &self.provider)
            .field("uri", &crate::uri::redact(&self.uri))
            .field("owner", &self.owner)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A user or role with what the privilege logic needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// Name.
    pub name: String,
    /// A role (NOLOGIN) rather than a user.
    pub is_role: bool,
    /// May log in.
    pub can_login: bool,
    /// The roles it is a direct member of.
    pub roles: Vec<String>,
    /// Every role it belongs to, transitively.
    pub member_of: Vec<String>,
    /// Roles whose membership carries the admin option.
    pub admin_of: Vec<String>,
    /// System grants of the principal and its roles.
    pub system_grants: Vec<Grant>,
}

/// Input for a new principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalDef {
    /// Name.
    pub name: String,
    /// A role rather than a user.
    pub is_role: bool,
    /// May log in.
    pub can_login: bool,
    /// Salted verifier, never a clear password.
    pub password_verifier: Option<String>,
}

/// One catalog change; one `apply` is one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Precondition: absent.
    InsertConnection(Connection),
    /// Precondition: stored version equals `expected_version`.
    UpdateConnection {
        /// The new record.
        connection: Connection,
        /// The version read.
        expected_version: u64,
    },
    /// Removes it and its grants.
    DeleteConnection(String),
    /// Adds or replaces a grant.
    PutGrant(Grant),
    /// Removes a grant.
    DeleteGrant(Grant),
    /// Precondition: absent.
    InsertPrincipal(PrincipalDef),
    /// Removes a principal and its memberships.
    DeletePrincipal(String),
    /// (role, member, admin option).
    PutMembership(String, String, bool),
    /// (role, member).
    DeleteMembership(String, String),
    /// Cancels an unfinished job; finished or missing is not an error.
    CancelJob(i64),
    /// Changes nothing. Precondition: no unfinished job uses that connection.
    RequireUnusedConnection(String),
}

/// An unfinished job that uses a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// Its id.
    pub job_id: i64,
    /// `CHANGEFEED`, …
    pub job_type: String,
    /// `running`, `paused`, …
    pub status: String,
    /// Its statement, redacted.
    pub description: String,
}

/// A small object request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Where.
    pub target: Target,
    /// Key relative to the target's path.
    pub key: String,
}

/// Listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Key relative to the target's path.
    pub key: String,
    /// Bytes.
    pub size: u64,
}

/// A request for the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// → `Response::Principal`.
    ReadPrincipal(String),
    /// → `Response::Connection`.
    ReadConnection(String),
    /// → `Response::Connections`.
    ListConnections,
    /// → `Response::Grants`.
    ReadGrants(GrantObject),
    /// → `Response::Grants`.
    ReadGrantsOf(String),
    /// → `Response::Principals`.
    ListPrincipals,
    /// → `Response::Applied`.
    Apply(Vec<Mutation>),
    /// → `Response::Done`.
    ObjectPut {
        /// Where.
        object: ObjectRef,
        /// Content.
        data: Vec<u8>,
    },
    /// → `Response::Data`.
    ObjectGet(ObjectRef),
    /// → `Response::Objects`.
    ObjectList {
        /// Where.
        target: Target,
        /// Key prefix.
        prefix: String,
        /// `None`: recursive.
        delimiter: Option<String>,
    },
    /// → `Response::Done`.
    ObjectDelete(ObjectRef),
    /// → `Response::Done`.
    SinkProbe(Target),
    /// → `Response::Data`.
    KmsEncrypt(Target, Vec<u8>),
    /// → `Response::Data`.
    KmsDecrypt(Target, Vec<u8>),
    /// → `Response::Now`.
    Now,
    /// → `Response::Data` with this many secure random bytes.
    Random(u32),
    /// → `Response::Dependents`: the unfinished jobs that use the connection of that name.
    ListDependents(String),
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError {
    /// Whose fault.
    pub kind: ErrorKind,
    /// Without secrets.
    pub message: String,
}

/// One answer per request.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// Answer to `ReadPrincipal`.
    Principal(Option<Principal>),
    /// Answer to `ReadConnection`.
    Connection(Option<Connection>),
    /// Answer to `ListConnections`.
    Connections(Vec<Connection>),
    /// Answer to `ReadGrants*`.
    Grants(Vec<Grant>),
    /// Answer to `ListPrincipals`.
    Principals(Vec<Principal>),
    /// Answer to `Apply`: `Err(index)` of the failed precondition.
    Applied(Result<(), u32>),
    /// Answer to puts, deletes and probes.
    Done,
    /// Answer to gets and KMS requests.
    Data(Vec<u8>),
    /// Answer to `ObjectList`.
    Objects(Vec<ObjectMeta>),
    /// Answer to `Now`: microseconds since the Unix epoch.
    Now(i64),
    /// The request failed.
    IoFailed(IoError),
    /// Answer to `ListDependents`.
    Dependents(Vec<Dependent>),
}

/// A SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// BOOL.
    Boolean(bool),
    /// INT8.
    Int(i64),
    /// FLOAT8.
    Float(f64),
    /// STRING.
    Text(String),
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// SQL type name.
    pub sql_type: String,
}

impl Column {
    /// A column of `name` and `sql_type`.
    pub fn new(name: &str, sql_type: &str) -> Self {
        Self { name: name.to_owned(), sql_type: sql_type.to_owned() }
    }
}

/// A result set.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Columns.
    pub columns: Vec<Column>,
    /// Rows of values.
    pub rows: Vec<Vec<Value>>,
}

/// Work the host carries out (BACKUP, RESTORE, …).
#[derive(Debug, Clone, PartialEq)]
pub struct OperationPlan {
    /// Statement kind.
    pub kind: String,
    /// Resolved locations.
    pub targets: Vec<Target>,
    /// JSON document, shape documented per kind.
    pub detail: String,
}

/// What a statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A result set.
    Rows(Rows),
    /// A command tag.
    Command(String),
    /// Work for the host.
    Operation(OperationPlan),
    /// SQL for the host's database, as written.
    Passthrough(String),
}

/// A finished statement.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementResult {
    /// What it produced.
    pub outcome: Outcome,
    /// NOTICE messages.
    pub notices: Vec<String>,
}

/// What the host must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Perform these, resume with one response each.
    Io(Vec<Request>),
    /// One statement finished; resume with nothing for the next.
    Finished(Result<StatementResult, Error>),
    /// Nothing left.
    End,
}

/// How CREATE and ALTER check their target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Validation {
    /// Parameter checks and the I/O round trip.
    #[default]
    Full,
    /// Parameter checks only.
    ParseOnly,
}

/// The session a statement runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who runs it.
    pub user: String,
    /// Current database.
    pub database: Option<String>,
    /// How CREATE/ALTER validate.
    pub validation: Validation,
}

impl Default for Session {
    fn default() -> Self {
        Self { user: "root".to_owned(), database: None, validation: Validation::Full }
    }
}

impl IoError {
    /// This failure as a statement error, under `context`.
    pub fn into_error(self, context: &str) -> Error {
        let sqlstate = match self.kind {
            ErrorKind::NotFound => crate::error::sqlstate::UNDEFINED_OBJECT,
            ErrorKind::PermissionDenied => crate::error::sqlstate::INSUFFICIENT_PRIVILEGE,
            ErrorKind::Unavailable => crate::error::sqlstate::IO_ERROR,
            ErrorKind::Unsupported => crate::error::sqlstate::FEATURE_NOT_SUPPORTED,
            ErrorKind::InvalidArgument => crate::error::sqlstate::INVALID_PARAMETER_VALUE,
            ErrorKind::AlreadyExists => crate::error::sqlstate::DUPLICATE_OBJECT,
            ErrorKind::Syntax | ErrorKind::Internal => crate::error::sqlstate::INTERNAL_ERROR,
        };
        let kind =
            if self.kind == ErrorKind::NotFound { ErrorKind::Unavailable } else { self.kind };
        Error::new(kind, sqlstate, format!("{context}: {}", self.message))
    }
}
