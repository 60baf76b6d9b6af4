//! The catalog: connections, grants, principals and memberships, in SQLite.
//!
//! One file, `<data-dir>/catalog.db`, in WAL mode. Every name is bound as a parameter, never
//! spliced into SQL text, and names are compared and ordered byte-wise (SQLite's `BINARY`
//! collation), so `Foo` and `foo` are two connections. [`Catalog::apply`] runs a statement's
//! mutations in one `BEGIN IMMEDIATE` transaction: either all of them land or none does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// The catalog's file inside the data directory.
pub const CATALOG_FILE: &str = "catalog.db";

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE connections (
    name TEXT NOT NULL PRIMARY KEY,
    type TEXT NOT NULL,
    provider TEXT NOT NULL,
    uri TEXT NOT NULL,
    owner TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE grants (
    object_kind TEXT NOT NULL,
    object_name TEXT NOT NULL,
    grantee TEXT NOT NULL,
    privilege TEXT NOT NULL,
    grantable INTEGER NOT NULL,
    PRIMARY KEY (object_kind, object_name, grantee, privilege)
) WITHOUT ROWID;
CREATE INDEX grants_by_grantee ON grants (grantee);
CREATE TABLE principals (
    name TEXT NOT NULL PRIMARY KEY,
    is_role INTEGER NOT NULL,
    can_login INTEGER NOT NULL,
    password_verifier TEXT
) WITHOUT ROWID;
CREATE TABLE memberships (
    role TEXT NOT NULL,
    member TEXT NOT NULL,
    admin_option INTEGER NOT NULL,
    PRIMARY KEY (role, member)
) WITHOUT ROWID;
CREATE INDEX memberships_by_member ON memberships (member);
INSERT INTO principals (name, is_role, can_login) VALUES ('root', 0, 1), ('admin', 1, 0);
INSERT INTO memberships (role, member, admin_option) VALUES ('admin', 'root', 1);
";

/// Every role `?1` belongs to, transitively, with whether any membership edge into it carries
/// the admin option (CockroachDB's `MemberOfWithAdminOption`).
const MEMBER_OF: &str = "
WITH RECURSIVE closure(role, admin_option) AS (
    SELECT role, admin_option FROM memberships WHERE member = ?1
    UNION
    SELECT m.role, m.admin_option FROM memberships m JOIN closure c ON m.member = c.role
)
SELECT role, MAX(admin_option) FROM closure WHERE role <> ?1 GROUP BY role ORDER BY role";

/// `grant-object` as stored: (`object_kind`, `object_name`).
const SYSTEM: (&str, &str) = ("system", "");
const CONNECTION: &str = "connection";

/// What a connection can be used for.
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

    fn parse(text: &str) -> Option<Self> {
        match text {
            "STORAGE" => Some(Self::Storage),
            "KMS" => Some(Self::Kms),
            "FOREIGNDATA" => Some(Self::ForeignData),
            _ => None,
        }
    }
}

/// A stored connection. `uri` holds secrets: its `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    /// Exact name.
    pub name: String,
    /// Derived from the scheme.
    pub connection_type: ConnectionType,
    /// Provider name (`s3`, `nodelocal`, …).
    pub provider: String,
    /// The URI, secrets included.
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
    // The URI may hold secrets and the host cannot redact it: leave it out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("connection_type", &self.connection_type)
            .field("provider", &self.provider)
            .field("owner", &self.owner)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What a grant is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantObject {
    /// `GRANT SYSTEM …`.
    System,
    /// `… ON EXTERNAL CONNECTION name`.
    Connection(String),
}

impl GrantObject {
    fn key(&self) -> (&str, &str) {
        match self {
            Self::System => SYSTEM,
            Self::Connection(name) => (CONNECTION, name),
        }
    }
}

/// One row of the privilege table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The object.
    pub object: GrantObject,
    /// User or role.
    pub grantee: String,
    /// Upper-case privilege name (`USAGE`, `ALL`, `EXTERNALCONNECTION`, …).
    pub privilege: String,
    /// Held `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// A user or role with everything the privilege logic needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// Name.
    pub name: String,
    /// A role rather than a user.
    pub is_role: bool,
    /// May log in.
    pub can_login: bool,
    /// The roles it is a direct member of, ordered by name.
    pub roles: Vec<String>,
    /// Every role it belongs to, transitively, itself excluded; ordered by name.
    pub member_of: Vec<String>,
    /// The roles among `member_of` whose membership carries the admin option.
    pub admin_of: Vec<String>,
    /// System grants held by the principal and by every role in `member_of`.
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
    /// A salted verifier, never a clear password.
    pub password_verifier: Option<String>,
}

/// One catalog change; [`Catalog::apply`] applies a list of them in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Precondition: no connection of that name exists.
    InsertConnection(Connection),
    /// Precondition: the stored version equals `expected_version`. The stored version becomes
    /// `expected_version + 1`, whatever `connection.version` says.
    UpdateConnection {
        /// The new record (same name).
        connection: Connection,
        /// The version the statement read.
        expected_version: u64,
    },
    /// Removes the connection and every grant on it; absent is not an error.
    DeleteConnection(String),
    /// Adds or replaces one grant row.
    PutGrant(Grant),
    /// Removes one grant row (`grantable` is ignored); absent is not an error.
    DeleteGrant(Grant),
    /// Precondition: no principal of that name exists.
    InsertPrincipal(PrincipalDef),
    /// Removes a principal and its memberships; absent is not an error.
    DeletePrincipal(String),
    /// Adds or replaces a membership.
    PutMembership {
        /// The role.
        role: String,
        /// Its new member.
        member: String,
        /// Whether the member may administer the role.
        admin_option: bool,
    },
    /// Cancels a job that has not finished; finished or missing is not an error.
    CancelJob(i64),
    /// Changes nothing. Precondition: no unfinished job uses the connection of that name.
    RequireUnusedConnection(String),
    /// Removes a membership; absent is not an error.
    DeleteMembership {
        /// The role.
        role: String,
        /// The member.
        member: String,
    },
}

/// The mutation at `index` found its precondition false; nothing was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreconditionFailed {
    /// Index into the list given to [`Catalog::apply`].
    pub index: u32,
}

/// A catalog failure (not a failed precondition, which is an answer, not an error).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or prepared.
    #[error("cannot open the catalog {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A query or transaction failed.
    #[error("catalog {operation} failed")]
    Sqlite {
        /// What was being done (`read-connection`, `apply`, …).
        operation: &'static str,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A row holds a value this version cannot read.
    #[error("catalog {table} row {name:?} holds an unknown value {value:?}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's name.
        name: String,
        /// The value.
        value: String,
    },
    /// The catalog was written by a newer extconn.
    #[error("the catalog has schema version {found}; this extconn reads up to {SCHEMA_VERSION}")]
    TooNew {
        /// The file's `user_version`.
        found: i64,
    },
}

impl CatalogError {
    /// Whether another process holds the database (SQLite's `BUSY`/`LOCKED`).
    pub fn is_busy(&self) -> bool {
        let source = match self {
            Self::Open { source, .. } | Self::Sqlite { source, .. } => source,
            _ => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

fn sql(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> CatalogError {
    move |source| CatalogError::Sqlite { operation, source }
}

type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// The catalog, one SQLite connection. `Send`, not `Sync`: give each thread its own
/// [`Catalog::open`] of the same directory (SQLite serializes writers).
#[derive(Debug)]
pub struct Catalog {
    db: rusqlite::Connection,
}

impl Catalog {
    /// Opens (creating and seeding on first use) `<data_dir>/catalog.db`.
    ///
    /// A new catalog holds the user `root`, the role `admin`, and `root` as a member of
    /// `admin` with the admin option.
    pub fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| CatalogError::CreateDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(CATALOG_FILE);
        let open = |source| CatalogError::Open { path: path.clone(), source };
        let db = rusqlite::Connection::open(&path).map_err(open)?;
        db.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
        // WAL lets readers run beside a writer; NORMAL sync is durable enough with WAL.
        db.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(open)?;
        db.pragma_update(None, "synchronous", "NORMAL").map_err(open)?;
        Self::prepare(db).map_err(|e| match e {
            CatalogError::Sqlite { source, .. } => open(source),
            e => e,
        })
    }

    /// A private catalog in memory, seeded like a new one; for tests and examples.
    pub fn open_in_memory() -> Result<Self> {
        let db = rusqlite::Connection::open_in_memory()
            .map_err(|source| CatalogError::Open { path: PathBuf::from(":memory:"), source })?;
        Self::prepare(db)
    }

    /// Creates and seeds the schema once; two processes racing here serialize on the
    /// immediate transaction and the second finds the version set.
    fn prepare(mut db: rusqlite::Connection) -> Result<Self> {
        let tx =
            db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql("schema"))?;
        let version: i64 =
            tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql("schema"))?;
        match version {
            0 => {
                tx.execute_batch(SCHEMA).map_err(sql("schema"))?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql("schema"))?;
            }
            SCHEMA_VERSION => {}
            found => return Err(CatalogError::TooNew { found }),
        }
        // The jobs table lives in the same file, so that a DROP that cancels the jobs using a
        // connection is one transaction; `IF NOT EXISTS`, so no schema version is needed.
        tx.execute_batch(crate::jobs::SCHEMA).map_err(sql("schema"))?;
        tx.commit().map_err(sql("schema"))?;
        Ok(Self { db })
    }

    /// A principal with its transitive roles, admin options and system grants.
    pub fn read_principal(&self, name: &str) -> Result<Option<Principal>> {
        let row = self
            .db
            .prepare_cached("SELECT is_role, can_login FROM principals WHERE name = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([name], |row| Ok((row.get::<_, bool>(0)?, row.get::<_, bool>(1)?)))
                    .optional()
            })
            .map_err(sql("read-principal"))?;
        let Some((is_role, can_login)) = row else { return Ok(None) };
        let mut principal =
            Principal { name: name.to_owned(), is_role, can_login, ..Principal::default() };
        {
            let mut stmt = self.db.prepare_cached(MEMBER_OF).map_err(sql("read-principal"))?;
            let rows = stmt
                .query_map([name], |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)))
                .map_err(sql("read-principal"))?;
            for row in rows {
                let (role, admin) = row.map_err(sql("read-principal"))?;
                if admin {
                    principal.admin_of.push(role.clone());
                }
                principal.member_of.push(role);
            }
        }
        // Sorted here, not by ORDER BY (see `grants_where`).
        principal.roles = self
            .db
            .prepare_cached("SELECT role FROM memberships WHERE member = ?1")
            .and_then(|mut stmt| {
                stmt.query_map([name], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()
            })
            .map_err(sql("read-principal"))?;
        principal.roles.sort();
        let mut holders = vec![principal.name.as_str()];
        holders.extend(principal.member_of.iter().map(String::as_str));
        let mut grants = Vec::new();
        for holder in holders {
            grants.extend(self.grants_where(
                "read-principal",
                "object_kind = ?1 AND object_name = ?2 AND grantee = ?3",
                params![SYSTEM.0, SYSTEM.1, holder],
            )?);
        }
        grants.sort_by(|a, b| (&a.grantee, &a.privilege).cmp(&(&b.grantee, &b.privilege)));
        principal.system_grants = grants;
        Ok(Some(principal))
    }

    /// The stored password verifier of a principal (`None`: no password, or no such principal).
    pub fn password_verifier(&self, name: &str) -> Result<Option<String>> {
        self.db
            .prepare_cached("SELECT password_verifier FROM principals WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row([name], |row| row.get(0)).optional())
            .map(Option::flatten)
            .map_err(sql("password-verifier"))
    }

    /// Every principal, ordered by name, each as [`Catalog::read_principal`] gives it.
    pub fn list_principals(&self) -> Result<Vec<Principal>> {
        let names: Vec<String> = {
            let mut stmt = self
                .db
                .prepare_cached("SELECT name FROM principals ORDER BY name")
                .map_err(sql("list-principals"))?;
            stmt.query_map([], |row| row.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(sql("list-principals"))?
        };
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            out.extend(self.read_principal(&name)?);
        }
        Ok(out)
    }

    /// The unfinished jobs that use the connection `name` (changefeeds whose sink it names),
    /// ordered by id.
    pub fn list_dependents(&self, name: &str) -> Result<Vec<Dependent>> {
        dependents(&self.db, name).map_err(sql("list-dependents"))
    }

    /// The connection of exactly that name.
    pub fn read_connection(&self, name: &str) -> Result<Option<Connection>> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT name, type, provider, uri, owner, created, updated, version \
                 FROM connections WHERE name = ?1",
            )
            .map_err(sql("read-connection"))?;
        let row =
            stmt.query_row([name], raw_connection).optional().map_err(sql("read-connection"))?;
        row.map(RawConnection::into_connection).transpose()
    }

    /// Every connection, ordered by name byte-wise.
    pub fn list_connections(&self) -> Result<Vec<Connection>> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT name, type, provider, uri, owner, created, updated, version \
                 FROM connections ORDER BY name",
            )
            .map_err(sql("list-connections"))?;
        let rows: Vec<RawConnection> = stmt
            .query_map([], raw_connection)
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(sql("list-connections"))?;
        rows.into_iter().map(RawConnection::into_connection).collect()
    }

    /// The grants on `object`, every grantee, ordered by grantee then privilege.
    pub fn read_grants(&self, object: &GrantObject) -> Result<Vec<Grant>> {
        let (kind, name) = object.key();
        self.grants_where(
            "read-grants",
            "object_kind = ?1 AND object_name = ?2",
            params![kind, name],
        )
    }

    /// The grants `grantee` holds directly (not through roles), on any object; system grants
    /// first, then connections by name.
    pub fn read_grants_of(&self, grantee: &str) -> Result<Vec<Grant>> {
        self.grants_where("read-grants-of", "grantee = ?1", params![grantee])
    }

    fn grants_where(
        &self,
        operation: &'static str,
        filter: &'static str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Grant>> {
        // `filter` is one of this module's constants: no caller-supplied text reaches SQL.
        // No ORDER BY: with an equality on a bound parameter over the ordered columns, SQLite
        // re-prepares such a statement on every run (measured: every call); the rows are few
        // and sorted below instead.
        let query = format!(
            "SELECT object_kind, object_name, grantee, privilege, grantable FROM grants \
             WHERE {filter}"
        );
        let mut stmt = self.db.prepare_cached(&query).map_err(sql(operation))?;
        let rows = stmt
            .query_map(params, |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, bool>(4)?,
                ))
            })
            .map_err(sql(operation))?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, object_name, grantee, privilege, grantable) = row.map_err(sql(operation))?;
            let object = match kind.as_str() {
                "system" => GrantObject::System,
                CONNECTION => GrantObject::Connection(object_name),
                _ => {
                    return Err(CatalogError::Corrupt {
                        table: "grants",
                        name: object_name,
                        value: kind,
                    });
                }
            };
            out.push(Grant { object, grantee, privilege, grantable });
        }
        // System grants first, then by object name, grantee and privilege (byte order, as
        // SQLite's BINARY collation).
        fn key(g: &Grant) -> (bool, &str, &str, &str) {
            let (connection, name) = match &g.object {
                GrantObject::System => (false, ""),
                GrantObject::Connection(name) => (true, name.as_str()),
            };
            (connection, name, g.grantee.as_str(), g.privilege.as_str())
        }
        out.sort_by(|a, b| key(a).cmp(&key(b)));
        Ok(out)
    }

    /// Applies `mutations` in one `BEGIN IMMEDIATE` transaction, in order.
    ///
    /// `Ok(Err(PreconditionFailed { index }))` when the mutation at `index` found its
    /// precondition false: the transaction is rolled back and nothing is applied.
    pub fn apply(&mut self, mutations: &[Mutation]) -> Result<Result<(), PreconditionFailed>> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("apply"))?;
        for (index, mutation) in mutations.iter().enumerate() {
            if !apply_one(&tx, mutation).map_err(sql("apply"))? {
                // Dropping `tx` rolls back.
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                return Ok(Err(PreconditionFailed { index }));
            }
        }
        tx.commit().map_err(sql("apply"))?;
        Ok(Ok(()))
    }
}

/// Applies one mutation; `false` if its precondition does not hold.
fn apply_one(tx: &rusqlite::Transaction<'_>, mutation: &Mutation) -> rusqlite::Result<bool> {
    match mutation {
        Mutation::InsertConnection(c) => {
            let inserted = tx.prepare_cached(
                "INSERT INTO connections (name, type, provider, uri, owner, created, updated, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (name) DO NOTHING",
            )?
            .execute(params![
                c.name,
                c.connection_type.as_str(),
                c.provider,
                c.uri,
                c.owner,
                c.created,
                c.updated,
                version_to_sql(c.version),
            ])?;
            Ok(inserted == 1)
        }
        Mutation::UpdateConnection { connection: c, expected_version } => {
            let updated = tx
                .prepare_cached(
                    "UPDATE connections SET type = ?2, provider = ?3, uri = ?4, owner = ?5, \
                 created = ?6, updated = ?7, version = ?8 WHERE name = ?1 AND version = ?9",
                )?
                .execute(params![
                    c.name,
                    c.connection_type.as_str(),
                    c.provider,
                    c.uri,
                    c.owner,
                    c.created,
                    c.updated,
                    version_to_sql(expected_version.saturating_add(1)),
                    version_to_sql(*expected_version),
                ])?;
            Ok(updated == 1)
        }
        Mutation::DeleteConnection(name) => {
            tx.prepare_cached("DELETE FROM connections WHERE name = ?1")?.execute([name])?;
            tx.prepare_cached("DELETE FROM grants WHERE object_kind = ?1 AND object_name = ?2")?
                .execute([CONNECTION, name])?;
            Ok(true)
        }
        Mutation::PutGrant(g) => {
            let (kind, name) = g.object.key();
            tx.prepare_cached(
                "INSERT INTO grants (object_kind, object_name, grantee, privilege, grantable) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (object_kind, object_name, grantee, privilege) \
                 DO UPDATE SET grantable = excluded.grantable",
            )?
            .execute(params![kind, name, g.grantee, g.privilege, g.grantable])?;
            Ok(true)
        }
        Mutation::DeleteGrant(g) => {
            let (kind, name) = g.object.key();
            tx.prepare_cached(
                "DELETE FROM grants WHERE object_kind = ?1 AND object_name = ?2 \
                 AND grantee = ?3 AND privilege = ?4",
            )?
            .execute(params![kind, name, g.grantee, g.privilege])?;
            Ok(true)
        }
        Mutation::InsertPrincipal(p) => {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO principals (name, is_role, can_login, password_verifier) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![p.name, p.is_role, p.can_login, p.password_verifier])?;
            Ok(inserted == 1)
        }
        Mutation::DeletePrincipal(name) => {
            tx.prepare_cached("DELETE FROM principals WHERE name = ?1")?.execute([name])?;
            tx.prepare_cached("DELETE FROM memberships WHERE role = ?1 OR member = ?1")?
                .execute([name])?;
            Ok(true)
        }
        Mutation::PutMembership { role, member, admin_option } => {
            tx.prepare_cached(
                "INSERT INTO memberships (role, member, admin_option) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (role, member) DO UPDATE SET admin_option = excluded.admin_option",
            )?
            .execute(params![role, member, admin_option])?;
            Ok(true)
        }
        Mutation::DeleteMembership { role, member } => {
            tx.prepare_cached("DELETE FROM memberships WHERE role = ?1 AND member = ?2")?
                .execute([role, member])?;
            Ok(true)
        }
        Mutation::CancelJob(id) => {
            let now = crate::jobs::now_micros();
            tx.prepare_cached(&format!(
                "UPDATE jobs SET status = 'canceled', modified = ?2, finished = ?2 \
                 WHERE id = ?1 AND payload IS NOT NULL AND status NOT IN {FINISHED}"
            ))?
            .execute(params![id, now])?;
            Ok(true)
        }
        Mutation::RequireUnusedConnection(name) => Ok(dependents(tx, name)?.is_empty()),
    }
}

/// A job that uses a connection.
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

/// What no job in one of these states is using any more.
const FINISHED: &str = "('succeeded', 'failed', 'canceled')";

fn dependents(db: &rusqlite::Connection, name: &str) -> rusqlite::Result<Vec<Dependent>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT id, job_type, status, description FROM jobs \
         WHERE status NOT IN {FINISHED} AND payload IS NOT NULL \
         AND json_valid(payload) AND payload ->> '$.connection' = ?1 ORDER BY id"
    ))?;
    stmt.query_map([name], |row| {
        Ok(Dependent {
            job_id: row.get(0)?,
            job_type: row.get(1)?,
            status: row.get(2)?,
            description: row.get(3)?,
        })
    })?
    .collect()
}

/// SQLite integers are signed: versions beyond `i64::MAX` (never reached) saturate.
fn version_to_sql(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

struct RawConnection {
    name: String,
    connection_type: String,
    provider: String,
    uri: String,
    owner: String,
    created: i64,
    updated: i64,
    version: i64,
}

fn raw_connection(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawConnection> {
    Ok(RawConnection {
        name: row.get(0)?,
        connection_type: row.get(1)?,
        provider: row.get(2)?,
        uri: row.get(3)?,
        owner: row.get(4)?,
        created: row.get(5)?,
        updated: row.get(6)?,
        version: row.get(7)?,
    })
}

impl RawConnection {
    fn into_connection(self) -> Result<Connection> {
        let Some(connection_type) = ConnectionType::parse(&self.connection_type) else {
            return Err(CatalogError::Corrupt {
                table: "connections",
                name: self.name,
                value: self.connection_type,
            });
        };
        Ok(Connection {
            name: self.name,
            connection_type,
            provider: self.provider,
            uri: self.uri,
            owner: self.owner,
            created: self.created,
            updated: self.updated,
            version: u64::try_from(self.version).unwrap_or(0),
        })
    }
}
