//! The WIT glue: the only place that names generated types. Everything here converts between
//! the bindings and `crate::model` and calls the plugin's logic.

#![allow(unsafe_code)] // `wit_bindgen::generate!` expands to the canonical ABI's unsafe glue.

use std::cell::RefCell;

use crate::exec::{ResolveInput, Script};
use crate::{error, model};

#[cfg(not(feature = "wit-0-1"))]
wit_bindgen::generate!({
    world: "plugin",
    path: "../wit/0.2.0",
});
#[cfg(feature = "wit-0-1")]
wit_bindgen::generate!({
    world: "plugin",
    path: "../wit/0.1.0",
});

// The macro reads the WIT file without telling cargo: include it so that editing the WIT
// rebuilds the component (otherwise a stale guest meets fresh host bindings).
#[cfg(not(feature = "wit-0-1"))]
const _: &[u8] = include_bytes!("../../wit/0.2.0/connections.wit");
#[cfg(feature = "wit-0-1")]
const _: &[u8] = include_bytes!("../../wit/0.1.0/connections.wit");

use exports::extconn::connections::connections as api;
use exports::extconn::connections::types as wit;

struct Component;

export!(Component);

/// The `statement` resource: a script behind a `RefCell`, as resources are borrowed shared.
struct Statement(RefCell<Script>);

impl api::GuestStatement for Statement {
    fn new(session: wit::Session, sql: String) -> Self {
        Statement(RefCell::new(Script::new(session.into(), &sql)))
    }

    fn resume(&self, responses: Vec<wit::Response>) -> wit::Step {
        let responses = responses.into_iter().map(Into::into).collect();
        self.0.borrow_mut().resume(responses).into()
    }
}

impl api::Guest for Component {
    type Statement = Statement;

    fn parse_uri(uri: String) -> Result<wit::UriInfo, wit::SqlError> {
        crate::uri::info(&uri).map(Into::into).map_err(Into::into)
    }

    fn parse_uris(uris: Vec<String>) -> Vec<Result<wit::UriInfo, wit::SqlError>> {
        uris.into_iter().map(Self::parse_uri).collect()
    }

    fn redact_uri(uri: String) -> String {
        crate::uri::redact(&uri)
    }

    fn redact_uris(uris: Vec<String>) -> Vec<String> {
        uris.iter().map(|u| crate::uri::redact(u)).collect()
    }

    fn resolve(input: api::ResolveInput) -> Result<wit::Target, wit::SqlError> {
        crate::exec::resolve(&input.into()).map(Into::into).map_err(Into::into)
    }

    fn resolve_many(inputs: Vec<api::ResolveInput>) -> Vec<Result<wit::Target, wit::SqlError>> {
        inputs.into_iter().map(Self::resolve).collect()
    }

    fn version() -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }
}

// ---- conversions: bindings → model -------------------------------------------------------

impl From<wit::Session> for model::Session {
    fn from(s: wit::Session) -> Self {
        Self {
            user: s.user,
            database: s.database,
            validation: match s.validation {
                wit::Validation::Full => model::Validation::Full,
                wit::Validation::ParseOnly => model::Validation::ParseOnly,
            },
        }
    }
}

impl From<api::ResolveInput> for ResolveInput {
    fn from(i: api::ResolveInput) -> Self {
        Self {
            uri: i.uri,
            purpose: match i.purpose {
                wit::Purpose::Storage => model::Purpose::Storage,
                wit::Purpose::Kms => model::Purpose::Kms,
                wit::Purpose::ChangefeedSink => model::Purpose::ChangefeedSink,
                wit::Purpose::Replication => model::Purpose::Replication,
            },
            principal: i.principal.into(),
            connection: i.connection.map(Into::into),
            grants: i.grants.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<wit::ErrorKind> for error::ErrorKind {
    fn from(k: wit::ErrorKind) -> Self {
        use error::ErrorKind as K;
        match k {
            wit::ErrorKind::Syntax => K::Syntax,
            wit::ErrorKind::InvalidArgument => K::InvalidArgument,
            wit::ErrorKind::NotFound => K::NotFound,
            wit::ErrorKind::AlreadyExists => K::AlreadyExists,
            wit::ErrorKind::PermissionDenied => K::PermissionDenied,
            wit::ErrorKind::Unavailable => K::Unavailable,
            wit::ErrorKind::Unsupported => K::Unsupported,
            wit::ErrorKind::Internal => K::Internal,
        }
    }
}

impl From<wit::ConnectionType> for model::ConnectionType {
    fn from(t: wit::ConnectionType) -> Self {
        match t {
            wit::ConnectionType::Storage => Self::Storage,
            wit::ConnectionType::Kms => Self::Kms,
            wit::ConnectionType::ForeignData => Self::ForeignData,
        }
    }
}

impl From<wit::GrantObject> for model::GrantObject {
    fn from(o: wit::GrantObject) -> Self {
        match o {
            wit::GrantObject::System => Self::System,
            wit::GrantObject::Connection(name) => Self::Connection(name),
        }
    }
}

impl From<wit::Grant> for model::Grant {
    fn from(g: wit::Grant) -> Self {
        Self {
            object: g.object.into(),
            grantee: g.grantee,
            privilege: g.privilege,
            grantable: g.grantable,
        }
    }
}

impl From<wit::Connection> for model::Connection {
    fn from(c: wit::Connection) -> Self {
        Self {
            name: c.name,
            connection_type: c.connection_type.into(),
            provider: c.provider,
            uri: c.uri,
            owner: c.owner,
            created: c.created,
            updated: c.updated,
            version: c.version,
        }
    }
}

impl From<wit::Principal> for model::Principal {
    fn from(p: wit::Principal) -> Self {
        Self {
            name: p.name,
            is_role: p.is_role,
            can_login: p.can_login,
            roles: p.roles,
            member_of: p.member_of,
            admin_of: p.admin_of,
            system_grants: p.system_grants.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<wit::Response> for model::Response {
    fn from(r: wit::Response) -> Self {
        use wit::Response as R;
        match r {
            R::Principal(p) => Self::Principal(p.map(Into::into)),
            R::Connection(c) => Self::Connection(c.map(Into::into)),
            R::Connections(cs) => Self::Connections(cs.into_iter().map(Into::into).collect()),
            R::Grants(gs) => Self::Grants(gs.into_iter().map(Into::into).collect()),
            R::Principals(ps) => Self::Principals(ps.into_iter().map(Into::into).collect()),
            R::Applied(a) => Self::Applied(a.map_err(|f| f.index)),
            R::Done => Self::Done,
            R::Data(d) => Self::Data(d),
            R::Objects(os) => Self::Objects(
                os.into_iter().map(|o| model::ObjectMeta { key: o.key, size: o.size }).collect(),
            ),
            R::Now(t) => Self::Now(t),
            R::IoFailed(e) => {
                Self::IoFailed(model::IoError { kind: e.kind.into(), message: e.message })
            }
            #[cfg(not(feature = "wit-0-1"))]
            R::Dependents(ds) => Self::Dependents(
                ds.into_iter()
                    .map(|d| model::Dependent {
                        job_id: d.job_id,
                        job_type: d.job_type,
                        status: d.status,
                        description: d.description,
                    })
                    .collect(),
            ),
        }
    }
}

// ---- conversions: model → bindings -------------------------------------------------------

impl From<error::Error> for wit::SqlError {
    fn from(e: error::Error) -> Self {
        Self {
            kind: e.kind.into(),
            sqlstate: e.sqlstate.to_owned(),
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }
    }
}

impl From<error::ErrorKind> for wit::ErrorKind {
    fn from(k: error::ErrorKind) -> Self {
        use error::ErrorKind as K;
        match k {
            K::Syntax => Self::Syntax,
            K::InvalidArgument => Self::InvalidArgument,
            K::NotFound => Self::NotFound,
            K::AlreadyExists => Self::AlreadyExists,
            K::PermissionDenied => Self::PermissionDenied,
            K::Unavailable => Self::Unavailable,
            K::Unsupported => Self::Unsupported,
            K::Internal => Self::Internal,
        }
    }
}

impl From<model::ConnectionType> for wit::ConnectionType {
    fn from(t: model::ConnectionType) -> Self {
        match t {
            model::ConnectionType::Storage => Self::Storage,
            model::ConnectionType::Kms => Self::Kms,
            model::ConnectionType::ForeignData => Self::ForeignData,
        }
    }
}

impl From<model::UriInfo> for wit::UriInfo {
    fn from(u: model::UriInfo) -> Self {
        Self {
            scheme: u.scheme,
            provider: u.provider,
            connection_type: u.connection_type.into(),
            redacted: u.redacted,
            host: u.host,
            path: u.path,
            params: u
                .params
                .into_iter()
                .map(|p| wit::ParamInfo { name: p.name, secret: p.secret, value: p.value })
                .collect(),
        }
    }
}

impl From<model::Target> for wit::Target {
    fn from(t: model::Target) -> Self {
        Self {
            scheme: t.scheme,
            provider: t.provider,
            uri: t.uri,
            host: t.host,
            path: t.path,
            params: t.params,
            user: t.user,
        }
    }
}

impl From<model::GrantObject> for wit::GrantObject {
    fn from(o: model::GrantObject) -> Self {
        match o {
            model::GrantObject::System => Self::System,
            model::GrantObject::Connection(name) => Self::Connection(name),
        }
    }
}

impl From<model::Grant> for wit::Grant {
    fn from(g: model::Grant) -> Self {
        Self {
            object: g.object.into(),
            grantee: g.grantee,
            privilege: g.privilege,
            grantable: g.grantable,
        }
    }
}

impl From<model::Connection> for wit::Connection {
    fn from(c: model::Connection) -> Self {
        Self {
            name: c.name,
            connection_type: c.connection_type.into(),
            provider: c.provider,
            uri: c.uri,
            owner: c.owner,
            created: c.created,
            updated: c.updated,
            version: c.version,
        }
    }
}

impl From<model::Mutation> for wit::Mutation {
    fn from(m: model::Mutation) -> Self {
        use model::Mutation as M;
        match m {
            M::InsertConnection(c) => Self::InsertConnection(c.into()),
            M::UpdateConnection { connection, expected_version } => {
                Self::UpdateConnection(wit::ConnectionUpdate {
                    connection: connection.into(),
                    expected_version,
                })
            }
            M::DeleteConnection(name) => Self::DeleteConnection(name),
            M::PutGrant(g) => Self::PutGrant(g.into()),
            M::DeleteGrant(g) => Self::DeleteGrant(g.into()),
            M::InsertPrincipal(p) => Self::InsertPrincipal(wit::PrincipalDef {
                name: p.name,
                is_role: p.is_role,
                can_login: p.can_login,
                password_verifier: p.password_verifier,
            }),
            M::DeletePrincipal(name) => Self::DeletePrincipal(name),
            M::PutMembership(role, member, admin) => Self::PutMembership((role, member, admin)),
            M::DeleteMembership(role, member) => Self::DeleteMembership((role, member)),
            #[cfg(not(feature = "wit-0-1"))]
            M::CancelJob(id) => Self::CancelJob(id),
            #[cfg(not(feature = "wit-0-1"))]
            M::RequireUnusedConnection(name) => Self::RequireUnusedConnection(name),
            #[cfg(feature = "wit-0-1")]
            M::CancelJob(_) | M::RequireUnusedConnection(_) => {
                unreachable!("a 0.1.0 build never applies job mutations (LISTS_DEPENDENTS)")
            }
        }
    }
}

impl From<model::Request> for wit::Request {
    fn from(r: model::Request) -> Self {
        use model::Request as R;
        let object_ref =
            |o: model::ObjectRef| wit::ObjectRef { target: o.target.into(), key: o.key };
        match r {
            R::ReadPrincipal(name) => Self::ReadPrincipal(name),
            R::ReadConnection(name) => Self::ReadConnection(name),
            R::ListConnections => Self::ListConnections,
            R::ReadGrants(object) => Self::ReadGrants(object.into()),
            R::ReadGrantsOf(grantee) => Self::ReadGrantsOf(grantee),
            R::ListPrincipals => Self::ListPrincipals,
            R::Apply(ms) => Self::Apply(ms.into_iter().map(Into::into).collect()),
            R::ObjectPut { object, data } => Self::ObjectPut(wit::ObjectPut {
                target: object.target.into(),
                key: object.key,
                data,
            }),
            R::ObjectGet(o) => Self::ObjectGet(object_ref(o)),
            R::ObjectList { target, prefix, delimiter } => {
                Self::ObjectList(wit::ObjectList { target: target.into(), prefix, delimiter })
            }
            R::ObjectDelete(o) => Self::ObjectDelete(object_ref(o)),
            R::SinkProbe(t) => Self::SinkProbe(t.into()),
            R::KmsEncrypt(target, data) => {
                Self::KmsEncrypt(wit::KmsRequest { target: target.into(), data })
            }
            R::KmsDecrypt(target, data) => {
                Self::KmsDecrypt(wit::KmsRequest { target: target.into(), data })
            }
            R::Now => Self::Now,
            R::Random(n) => Self::Random(n),
            #[cfg(not(feature = "wit-0-1"))]
            R::ListDependents(name) => Self::ListDependents(name),
            #[cfg(feature = "wit-0-1")]
            R::ListDependents(_) => {
                unreachable!("a 0.1.0 build never lists dependents (LISTS_DEPENDENTS)")
            }
        }
    }
}

impl From<model::Value> for wit::Value {
    fn from(v: model::Value) -> Self {
        match v {
            model::Value::Null => Self::Null,
            model::Value::Boolean(b) => Self::Boolean(b),
            model::Value::Int(i) => Self::Int(i),
            model::Value::Float(f) => Self::Float(f),
            model::Value::Text(s) => Self::Text(s),
        }
    }
}

impl From<model::Outcome> for wit::Outcome {
    fn from(o: model::Outcome) -> Self {
        match o {
            model::Outcome::Rows(rows) => Self::Rows(wit::Rows {
                columns: rows
                    .columns
                    .into_iter()
                    .map(|c| wit::Column { name: c.name, sql_type: c.sql_type })
                    .collect(),
                rows: rows
                    .rows
                    .into_iter()
                    .map(|r| r.into_iter().map(Into::into).collect())
                    .collect(),
            }),
            model::Outcome::Command(tag) => Self::Command(tag),
            model::Outcome::Operation(plan) => Self::Operation(wit::OperationPlan {
                kind: plan.kind,
                targets: plan.targets.into_iter().map(Into::into).collect(),
                detail: plan.detail,
            }),
            model::Outcome::Passthrough(sql) => Self::Passthrough(sql),
        }
    }
}

impl From<model::Step> for wit::Step {
    fn from(s: model::Step) -> Self {
        match s {
            model::Step::Io(requests) => Self::Io(requests.into_iter().map(Into::into).collect()),
            model::Step::Finished(result) => Self::Finished(
                result
                    .map(|r| wit::StatementResult { outcome: r.outcome.into(), notices: r.notices })
                    .map_err(Into::into),
            ),
            model::Step::End => Self::End,
        }
    }
}
