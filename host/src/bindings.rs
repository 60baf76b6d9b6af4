//! The generated WIT bindings and their conversions to the host's own types. Nothing generated
//! leaves this crate: the rest of the host speaks `crate::model`, `crate::catalog` and
//! `extconn_providers`.
//!
//! The host speaks the current WIT version, `extconn:connections@0.2.0`, and still runs
//! components built for `0.1.0` (DESIGN: a released version stays supported): [`v0_1`] holds
//! their bindings, and [`legacy`] carries values between the two. 0.2.0 only appends cases to
//! 0.1.0's variants and adds a record, so every 0.1.0 value is a 0.2.0 value, and every 0.2.0
//! answer to a 0.1.0 request is a 0.1.0 value.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit/0.2.0",
    additional_derives: [serde::Serialize, serde::Deserialize],
});

/// Bindings of `extconn:connections@0.1.0`, for components built against it.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/0.1.0",
        additional_derives: [serde::Serialize, serde::Deserialize],
    });

    pub(crate) use exports::extconn::connections::connections::ResolveInput;
    pub(crate) use exports::extconn::connections::types as wit;
}

/// Moves a value between the 0.1.0 and 0.2.0 bindings of the same WIT type. The generated types
/// differ only in their Rust paths, so a self-describing encoding (CBOR, which keeps field and
/// case names and every `f64`, NaN included) carries one into the other; a value the other
/// version cannot hold (a 0.2.0-only case) is an error, never a silent change.
pub(crate) mod legacy {
    pub(crate) fn convert<A, B>(value: &A) -> Result<B, String>
    where
        A: serde::Serialize,
        B: serde::de::DeserializeOwned,
    {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).map_err(|e| e.to_string())?;
        ciborium::from_reader(bytes.as_slice()).map_err(|e| {
            format!("a value does not fit the other version of extconn:connections: {e}")
        })
    }
}

pub(crate) use exports::extconn::connections::types as wit;

use crate::catalog;
use crate::model;

impl From<&model::Session> for wit::Session {
    fn from(s: &model::Session) -> Self {
        Self {
            user: s.user.clone(),
            database: s.database.clone(),
            validation: match s.validation {
                model::Validation::Full => wit::Validation::Full,
                model::Validation::ParseOnly => wit::Validation::ParseOnly,
            },
        }
    }
}

impl From<wit::ErrorKind> for model::ErrorKind {
    fn from(k: wit::ErrorKind) -> Self {
        match k {
            wit::ErrorKind::Syntax => Self::Syntax,
            wit::ErrorKind::InvalidArgument => Self::InvalidArgument,
            wit::ErrorKind::NotFound => Self::NotFound,
            wit::ErrorKind::AlreadyExists => Self::AlreadyExists,
            wit::ErrorKind::PermissionDenied => Self::PermissionDenied,
            wit::ErrorKind::Unavailable => Self::Unavailable,
            wit::ErrorKind::Unsupported => Self::Unsupported,
            wit::ErrorKind::Internal => Self::Internal,
        }
    }
}

impl From<extconn_providers::ErrorKind> for wit::ErrorKind {
    fn from(k: extconn_providers::ErrorKind) -> Self {
        use extconn_providers::ErrorKind as K;
        match k {
            K::InvalidArgument => Self::InvalidArgument,
            K::NotFound => Self::NotFound,
            K::AlreadyExists => Self::AlreadyExists,
            K::PermissionDenied => Self::PermissionDenied,
            K::Unavailable => Self::Unavailable,
            K::Unsupported => Self::Unsupported,
            // `ErrorKind` is non-exhaustive in spirit: anything new is our fault until mapped.
            _ => Self::Internal,
        }
    }
}

impl From<wit::SqlError> for model::SqlError {
    fn from(e: wit::SqlError) -> Self {
        Self {
            kind: e.kind.into(),
            sqlstate: e.sqlstate,
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }
    }
}

impl From<wit::Value> for model::Value {
    fn from(v: wit::Value) -> Self {
        match v {
            wit::Value::Null => Self::Null,
            wit::Value::Boolean(b) => Self::Boolean(b),
            wit::Value::Int(i) => Self::Int(i),
            wit::Value::Float(x) => Self::Float(x),
            wit::Value::Text(s) => Self::Text(s),
        }
    }
}

impl From<wit::Rows> for model::Rows {
    fn from(r: wit::Rows) -> Self {
        Self {
            columns: r
                .columns
                .into_iter()
                .map(|c| model::Column { name: c.name, sql_type: c.sql_type })
                .collect(),
            rows: r.rows.into_iter().map(|row| row.into_iter().map(Into::into).collect()).collect(),
        }
    }
}

impl From<wit::ConnectionType> for catalog::ConnectionType {
    fn from(t: wit::ConnectionType) -> Self {
        match t {
            wit::ConnectionType::Storage => Self::Storage,
            wit::ConnectionType::Kms => Self::Kms,
            wit::ConnectionType::ForeignData => Self::ForeignData,
        }
    }
}

impl From<catalog::ConnectionType> for wit::ConnectionType {
    fn from(t: catalog::ConnectionType) -> Self {
        match t {
            catalog::ConnectionType::Storage => Self::Storage,
            catalog::ConnectionType::Kms => Self::Kms,
            catalog::ConnectionType::ForeignData => Self::ForeignData,
        }
    }
}

impl From<wit::UriInfo> for model::UriInfo {
    fn from(u: wit::UriInfo) -> Self {
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
                .map(|p| model::ParamInfo { name: p.name, secret: p.secret, value: p.value })
                .collect(),
        }
    }
}

impl From<wit::Connection> for catalog::Connection {
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

impl From<catalog::Connection> for wit::Connection {
    fn from(c: catalog::Connection) -> Self {
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

impl From<wit::GrantObject> for catalog::GrantObject {
    fn from(o: wit::GrantObject) -> Self {
        match o {
            wit::GrantObject::System => Self::System,
            wit::GrantObject::Connection(name) => Self::Connection(name),
        }
    }
}

impl From<catalog::GrantObject> for wit::GrantObject {
    fn from(o: catalog::GrantObject) -> Self {
        match o {
            catalog::GrantObject::System => Self::System,
            catalog::GrantObject::Connection(name) => Self::Connection(name),
        }
    }
}

impl From<wit::Grant> for catalog::Grant {
    fn from(g: wit::Grant) -> Self {
        Self {
            object: g.object.into(),
            grantee: g.grantee,
            privilege: g.privilege,
            grantable: g.grantable,
        }
    }
}

impl From<catalog::Grant> for wit::Grant {
    fn from(g: catalog::Grant) -> Self {
        Self {
            object: g.object.into(),
            grantee: g.grantee,
            privilege: g.privilege,
            grantable: g.grantable,
        }
    }
}

impl From<catalog::Principal> for wit::Principal {
    fn from(p: catalog::Principal) -> Self {
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

impl From<wit::Mutation> for catalog::Mutation {
    fn from(m: wit::Mutation) -> Self {
        match m {
            wit::Mutation::InsertConnection(c) => Self::InsertConnection(c.into()),
            wit::Mutation::UpdateConnection(u) => Self::UpdateConnection {
                connection: u.connection.into(),
                expected_version: u.expected_version,
            },
            wit::Mutation::DeleteConnection(name) => Self::DeleteConnection(name),
            wit::Mutation::PutGrant(g) => Self::PutGrant(g.into()),
            wit::Mutation::DeleteGrant(g) => Self::DeleteGrant(g.into()),
            wit::Mutation::InsertPrincipal(p) => Self::InsertPrincipal(catalog::PrincipalDef {
                name: p.name,
                is_role: p.is_role,
                can_login: p.can_login,
                password_verifier: p.password_verifier,
            }),
            wit::Mutation::DeletePrincipal(name) => Self::DeletePrincipal(name),
            wit::Mutation::PutMembership((role, member, admin_option)) => {
                Self::PutMembership { role, member, admin_option }
            }
            wit::Mutation::DeleteMembership((role, member)) => {
                Self::DeleteMembership { role, member }
            }
            wit::Mutation::CancelJob(id) => Self::CancelJob(id),
            wit::Mutation::RequireUnusedConnection(name) => Self::RequireUnusedConnection(name),
        }
    }
}

impl From<catalog::Dependent> for wit::Dependent {
    fn from(d: catalog::Dependent) -> Self {
        Self {
            job_id: d.job_id,
            job_type: d.job_type,
            status: d.status,
            description: d.description,
        }
    }
}

impl From<wit::Target> for extconn_providers::Target {
    fn from(t: wit::Target) -> Self {
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

impl From<extconn_providers::ObjectMeta> for wit::ObjectMeta {
    fn from(m: extconn_providers::ObjectMeta) -> Self {
        Self { key: m.key, size: m.size }
    }
}

impl TryFrom<wit::OperationPlan> for crate::ops::Plan {
    type Error = crate::model::SqlError;

    fn try_from(plan: wit::OperationPlan) -> Result<Self, Self::Error> {
        let detail = serde_json::from_str(&plan.detail).map_err(|e| {
            crate::model::SqlError::internal(format!(
                "the extconn component returned a {} plan that is not JSON: {e}",
                plan.kind
            ))
        })?;
        Ok(Self {
            kind: plan.kind,
            targets: plan.targets.into_iter().map(Into::into).collect(),
            detail,
        })
    }
}
