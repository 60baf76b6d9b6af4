//! Who may do what. The catalog stores grants; every decision is made here.

use crate::error::Error;
use crate::model::{Grant, GrantObject, Principal};

/// The user that holds every privilege implicitly.
pub(crate) const ROOT: &str = "root";
/// The role whose members hold every privilege implicitly.
pub(crate) const ADMIN: &str = "admin";

/// Privileges that can be held on a connection, in CockroachDB's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnPrivilege {
    Usage,
    Drop,
    Update,
}

impl ConnPrivilege {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "USAGE",
            Self::Drop => "DROP",
            Self::Update => "UPDATE",
        }
    }
}

/// root, and every member of `admin`, holds everything.
pub(crate) fn is_admin(principal: &Principal) -> bool {
    principal.name == ROOT
        || principal.name == ADMIN
        || principal.member_of.iter().any(|r| r == ADMIN)
}

/// Whether `grantee` is the principal or one of its roles.
fn applies_to(principal: &Principal, grantee: &str) -> bool {
    grantee == principal.name || principal.member_of.iter().any(|r| r == grantee)
}

/// Whether the principal holds a system privilege (directly, through a role, or as an admin).
pub(crate) fn has_system(principal: &Principal, privilege: &str) -> bool {
    is_admin(principal)
        || principal.system_grants.iter().any(|g| {
            g.object == GrantObject::System
                && g.privilege == privilege
                && applies_to(principal, &g.grantee)
        })
}

/// Whether the principal holds `privilege` on connection `name`, given the grants on it.
pub(crate) fn has_on_connection(
    principal: &Principal,
    grants: &[Grant],
    name: &str,
    privilege: ConnPrivilege,
) -> bool {
    is_admin(principal)
        || grants.iter().any(|g| {
            g.object == GrantObject::Connection(name.to_owned())
                && (g.privilege == privilege.as_str() || g.privilege == "ALL")
                && applies_to(principal, &g.grantee)
        })
}

/// `user <u> does not have <P> privilege on external_connection <name>` (42501).
pub(crate) fn require_on_connection(
    principal: &Principal,
    grants: &[Grant],
    name: &str,
    privilege: ConnPrivilege,
) -> Result<(), Error> {
    if has_on_connection(principal, grants, name, privilege) {
        return Ok(());
    }
    Err(Error::permission_denied(format!(
        "user {} does not have {} privilege on external_connection {name}",
        principal.name,
        privilege.as_str()
    )))
}
