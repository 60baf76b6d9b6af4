//! Users, roles, memberships and system privileges (reference §5).

use super::privilege::{self, ADMIN, ROOT};
use super::{Ctx, Run, answer, apply, principal_from};
use crate::error::{Error, ErrorKind, sqlstate};
use crate::model::{
    Column, Grant, GrantObject, Mutation, Outcome, Principal, PrincipalDef, Request, Response,
    Rows, Value,
};

/// System privileges extconn knows (CockroachDB has more; these are the ones that mean
/// something here).
pub(crate) const SYSTEM_PRIVILEGES: &[&str] =
    &["EXTERNALCONNECTION", "EXTERNALIOIMPLICITACCESS", "VIEWCLUSTERMETADATA"];

/// The role every principal belongs to implicitly; it cannot be created, dropped or granted.
pub(crate) const PUBLIC: &str = "public";

const SCRAM_ITERATIONS: u32 = 4096;

fn special(name: &str) -> Option<Error> {
    match name {
        ROOT => Some(Error::invalid(format!("cannot drop special user {name}"))),
        ADMIN | PUBLIC => Some(Error::invalid(format!("cannot drop special role {name}"))),
        _ => None,
    }
}

pub(crate) fn does_not_exist(name: &str) -> Error {
    Error::not_found(format!("role/user \"{name}\" does not exist"))
}

/// The session's principal, which must be an admin to manage principals.
fn require_createrole(ctx: &mut Ctx<'_>) -> Run<Principal> {
    let user = ctx.session.user.clone();
    let principal = principal_from(ctx.one(Request::ReadPrincipal(user.clone()))?, &user)?;
    if !privilege::is_admin(&principal) {
        return Err(Error::permission_denied(format!(
            "user {user} does not have CREATEROLE privilege"
        ))
        .into());
    }
    Ok(principal)
}

pub(super) fn create_role(
    ctx: &mut Ctx<'_>,
    is_user: bool,
    if_not_exists: bool,
    name: &str,
    password: Option<&str>,
    login: Option<bool>,
) -> Run<Outcome> {
    let tag = if is_user { "CREATE USER" } else { "CREATE ROLE" };
    require_createrole(ctx)?;
    if name == PUBLIC || name == "none" {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "42939",
            format!("role name \"{name}\" is reserved"),
        )
        .into());
    }
    let existing = answer::principal(ctx.one(Request::ReadPrincipal(name.to_owned()))?)?;
    if existing.is_some() {
        if if_not_exists {
            ctx.notice(format!("role/user \"{name}\" already exists, skipping"));
            return Ok(Outcome::Command(tag.into()));
        }
        return Err(already_exists(name).into());
    }
    let password_verifier = match password {
        Some(password) => Some(scram_verifier(ctx, password)?),
        None => None,
    };
    let can_login = login.unwrap_or(is_user);
    let def =
        PrincipalDef { name: name.to_owned(), is_role: !can_login, can_login, password_verifier };
    match apply(ctx, vec![Mutation::InsertPrincipal(def)])? {
        Ok(()) => Ok(Outcome::Command(tag.into())),
        Err(_) if if_not_exists => Ok(Outcome::Command(tag.into())),
        Err(_) => Err(already_exists(name).into()),
    }
}

fn already_exists(name: &str) -> Error {
    Error::already_exists(format!("a role/user named {name} already exists"))
}

/// A SCRAM-SHA-256 verifier (RFC 5803's format, as PostgreSQL stores it): the password itself
/// is never stored.
fn scram_verifier(ctx: &mut Ctx<'_>, password: &str) -> Run<String> {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    let salt = answer::data(ctx.one(Request::Random(16))?, "failed to generate a password salt")?;
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, SCRAM_ITERATIONS, &mut salted);
    let hmac = |key: &[u8], message: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(message);
        mac.finalize().into_bytes()
    };
    let stored_key = Sha256::digest(hmac(&salted, b"Client Key"));
    let server_key = hmac(&salted, b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        b64.encode(&salt),
        b64.encode(stored_key),
        b64.encode(server_key)
    ))
}

pub(super) fn drop_roles(
    ctx: &mut Ctx<'_>,
    is_user: bool,
    if_exists: bool,
    names: &[String],
) -> Run<Outcome> {
    let tag = if is_user { "DROP USER" } else { "DROP ROLE" };
    let me = require_createrole(ctx)?;
    let found = ctx.io(names.iter().cloned().map(Request::ReadPrincipal).collect())?;
    let grants = ctx.io(names.iter().cloned().map(Request::ReadGrantsOf).collect())?;
    let mut dropped = Vec::new();
    let mut still_granted = Vec::new();
    let mut global = Vec::new();
    for ((name, found), grants) in names.iter().zip(found).zip(grants) {
        if answer::principal(found)?.is_none() {
            if if_exists {
                ctx.notice(format!("role/user \"{name}\" does not exist, skipping"));
                continue;
            }
            return Err(does_not_exist(name).into());
        }
        if let Some(error) = special(name) {
            return Err(error.into());
        }
        if *name == me.name {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "55006",
                format!("cannot drop the current session's user {name}"),
            )
            .into());
        }
        let mut grants = answer::grants(grants)?;
        grants.sort_by(|a, b| (&a.object, &a.privilege).cmp(&(&b.object, &b.privilege)));
        for grant in grants {
            match grant.object {
                GrantObject::Connection(connection) => {
                    // One entry per connection and grantee, as CockroachDB lists them.
                    let entry = format!("external_connection {connection}");
                    if still_granted.last() != Some(&(name.clone(), entry.clone())) {
                        still_granted.push((name.clone(), entry));
                    }
                }
                GrantObject::System => {
                    global.push(format!("{name} has global '{}' privilege", grant.privilege))
                }
            }
        }
        dropped.push(name.clone());
    }
    if !still_granted.is_empty() {
        let holders: Vec<&str> = {
            let mut h: Vec<&str> = still_granted.iter().map(|(n, _)| n.as_str()).collect();
            h.dedup();
            h
        };
        let plural = if holders.len() > 1 { "s" } else { "" };
        let objects: Vec<&str> = still_granted.iter().map(|(_, o)| o.as_str()).collect();
        return Err(dependent(format!(
            "cannot drop role{plural}/user{plural} {}: grants still exist on {}",
            holders.join(", "),
            objects.join(", ")
        ))
        .into());
    }
    if let Some(first) = global.first() {
        let name = first.split(' ').next().unwrap_or_default();
        let mine: Vec<&String> =
            global.iter().filter(|g| g.starts_with(&format!("{name} "))).collect();
        let detail: String = mine.iter().map(|g| format!("\n{g}")).collect();
        return Err(dependent(format!(
            "role {name} cannot be dropped because some objects depend on it{detail}"
        ))
        .with_hint("revoke the system privileges first: REVOKE SYSTEM … FROM …")
        .into());
    }
    if !dropped.is_empty() {
        let mutations = dropped.into_iter().map(Mutation::DeletePrincipal).collect();
        apply(ctx, mutations)?
            .map_err(|_| Error::internal("dropping a role has no precondition"))?;
    }
    Ok(Outcome::Command(tag.into()))
}

fn dependent(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, "2BP01", message)
}

/// `GRANT role TO member` and `REVOKE role FROM member`.
pub(super) fn membership(
    ctx: &mut Ctx<'_>,
    grant: bool,
    roles: &[String],
    members: &[String],
    admin_option: bool,
) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let me = principal_from(ctx.one(Request::ReadPrincipal(user.clone()))?, &user)?;
    let mut names: Vec<String> = roles.to_vec();
    names.extend(members.iter().cloned());
    let found: Vec<Option<Principal>> = ctx
        .io(names.iter().cloned().map(Request::ReadPrincipal).collect())?
        .into_iter()
        .map(answer::principal)
        .collect::<Run<_>>()?;
    for (name, found) in names.iter().zip(&found) {
        if found.is_none() {
            return Err(does_not_exist(name).into());
        }
    }
    let admin = privilege::is_admin(&me);
    for role in roles {
        if role == PUBLIC {
            return Err(Error::invalid("the public role cannot be granted or revoked").into());
        }
        if !admin && !me.admin_of.iter().any(|r| r == role) {
            return Err(Error::permission_denied(format!(
                "{user} must have admin option on role \"{role}\""
            ))
            .into());
        }
    }
    let (roles_found, members_found) = found.split_at(roles.len());
    let mut mutations = Vec::new();
    for (role, role_info) in roles.iter().zip(roles_found.iter().flatten()) {
        for (member, member_info) in members.iter().zip(members_found.iter().flatten()) {
            if grant {
                // A role may not end up a member of itself, directly or not.
                if member == role || role_info.member_of.contains(member) {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        sqlstate::INVALID_GRANT_OPERATION,
                        format!("making {member} a member of {role} would create a cycle"),
                    )
                    .into());
                }
                mutations.push(Mutation::PutMembership(role.clone(), member.clone(), admin_option));
            } else {
                if member == ROOT && role == ADMIN {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        sqlstate::INVALID_GRANT_OPERATION,
                        "user root cannot be removed from role admin or lose the ADMIN OPTION",
                    )
                    .into());
                }
                if !member_info.roles.contains(role) {
                    continue;
                }
                mutations.push(if admin_option {
                    Mutation::PutMembership(role.clone(), member.clone(), false)
                } else {
                    Mutation::DeleteMembership(role.clone(), member.clone())
                });
            }
        }
    }
    if !mutations.is_empty() {
        apply(ctx, mutations)?.map_err(|_| Error::internal("memberships have no precondition"))?;
    }
    Ok(Outcome::Command(if grant { "GRANT" } else { "REVOKE" }.into()))
}

pub(super) fn show_roles(ctx: &mut Ctx<'_>) -> Run<Outcome> {
    let principals = match ctx.one(Request::ListPrincipals)? {
        Response::Principals(p) => p,
        other => return Err(super::unexpected("listing roles", &other)),
    };
    let rows = principals
        .into_iter()
        .map(|p| {
            let options = if p.can_login { "{}" } else { "{NOLOGIN}" };
            vec![
                Value::Text(p.name),
                Value::Text(options.into()),
                Value::Text(format!("{{{}}}", p.roles.join(","))),
            ]
        })
        .collect();
    Ok(Outcome::Rows(Rows {
        columns: vec![
            Column::new("username", "STRING"),
            Column::new("options", "STRING[]"),
            Column::new("member_of", "STRING[]"),
        ],
        rows,
    }))
}

/// Rejects privilege names outside `valid`, as CockroachDB does.
pub(crate) fn check_privileges(
    privileges: &[String],
    valid: &[&str],
    object: &str,
) -> Result<(), Error> {
    match privileges.iter().find(|p| !valid.contains(&p.as_str())) {
        Some(bad) => Err(Error::new(
            ErrorKind::InvalidArgument,
            sqlstate::INVALID_GRANT_OPERATION,
            format!("invalid privilege type {bad} for {object}"),
        )),
        None => Ok(()),
    }
}

/// Reads the grantees and fails on the first missing one.
pub(crate) fn require_principals(ctx: &mut Ctx<'_>, names: &[String]) -> Run<()> {
    let found = ctx.io(names.iter().cloned().map(Request::ReadPrincipal).collect())?;
    for (name, found) in names.iter().zip(found) {
        if answer::principal(found)?.is_none() {
            return Err(does_not_exist(name).into());
        }
    }
    Ok(())
}

/// `GRANT SYSTEM …` / `REVOKE [GRANT OPTION FOR] SYSTEM …`.
pub(super) fn system(
    ctx: &mut Ctx<'_>,
    grant: bool,
    privileges: &[String],
    grantees: &[String],
    grant_option: bool,
) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let me = principal_from(ctx.one(Request::ReadPrincipal(user.clone()))?, &user)?;
    let mut valid = SYSTEM_PRIVILEGES.to_vec();
    valid.push("ALL");
    check_privileges(privileges, &valid, "global")?;
    let privileges: Vec<String> = if privileges.iter().any(|p| p == "ALL") {
        SYSTEM_PRIVILEGES.iter().map(|p| (*p).to_owned()).collect()
    } else {
        privileges.to_vec()
    };
    if !privilege::is_admin(&me) {
        let holds = |p: &str| {
            me.system_grants.iter().any(|g| {
                g.privilege == p
                    && g.grantable
                    && (g.grantee == me.name || me.member_of.contains(&g.grantee))
            })
        };
        if let Some(missing) = privileges.iter().find(|p| !holds(p)) {
            return Err(Error::permission_denied(format!(
                "user {user} missing WITH GRANT OPTION privilege on {missing}"
            ))
            .into());
        }
    }
    require_principals(ctx, grantees)?;
    let current = answer::grants(ctx.one(Request::ReadGrants(GrantObject::System))?)?;
    let mut mutations = Vec::new();
    for grantee in grantees {
        for p in &privileges {
            let held = current.iter().find(|g| &g.grantee == grantee && &g.privilege == p);
            let row = |grantable| Grant {
                object: GrantObject::System,
                grantee: grantee.clone(),
                privilege: p.clone(),
                grantable,
            };
            match (grant, grant_option, held) {
                (true, _, held) => mutations.push(Mutation::PutGrant(row(
                    grant_option || held.is_some_and(|g| g.grantable)
                ))),
                (false, true, Some(_)) => mutations.push(Mutation::PutGrant(row(false))),
                (false, false, Some(_)) => mutations.push(Mutation::DeleteGrant(row(false))),
                (false, _, None) => {}
            }
        }
    }
    if !mutations.is_empty() {
        apply(ctx, mutations)?.map_err(|_| Error::internal("grants have no precondition"))?;
    }
    Ok(Outcome::Command(if grant { "GRANT" } else { "REVOKE" }.into()))
}

pub(super) fn show_system_grants(ctx: &mut Ctx<'_>, grantees: Option<&[String]>) -> Run<Outcome> {
    let mut grants = answer::grants(ctx.one(Request::ReadGrants(GrantObject::System))?)?;
    if let Some(grantees) = grantees {
        grants.retain(|g| grantees.contains(&g.grantee));
    }
    grants.sort_by(|a, b| (&a.grantee, &a.privilege).cmp(&(&b.grantee, &b.privilege)));
    let rows = grants
        .into_iter()
        .map(|g| {
            vec![Value::Text(g.grantee), Value::Text(g.privilege), Value::Boolean(g.grantable)]
        })
        .collect();
    Ok(Outcome::Rows(Rows {
        columns: vec![
            Column::new("grantee", "STRING"),
            Column::new("privilege_type", "STRING"),
            Column::new("is_grantable", "BOOL"),
        ],
        rows,
    }))
}
