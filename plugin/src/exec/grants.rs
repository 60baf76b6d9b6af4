//! GRANT / REVOKE / SHOW GRANTS on external connections (reference §5.1, §5.4).

use std::collections::BTreeMap;

use super::roles::{check_privileges, require_principals};
use super::{Ctx, Run, answer, apply, grants_on, principal_from};
use crate::error::Error;
use crate::model::{
    Column, Grant, GrantObject, Mutation, Outcome, Principal, Request, Rows, Value,
};

/// Privileges that can be held on a connection (v25.4+), `ALL` first.
const VALID: &[&str] = &["ALL", "USAGE", "DROP", "UPDATE"];
/// What `ALL` stands for.
const EACH: &[&str] = &["USAGE", "DROP", "UPDATE"];
const OBJECT: &str = "external_connection";

/// A grantee's privileges on one connection: privilege → grantable.
type Held = BTreeMap<String, bool>;

pub(super) fn grant_or_revoke(
    ctx: &mut Ctx<'_>,
    grant: bool,
    privileges: &[String],
    connections: &[String],
    grantees: &[String],
    grant_option: bool,
) -> Run<Outcome> {
    check_privileges(privileges, VALID, OBJECT)?;
    let user = ctx.session.user.clone();
    let me = principal_from(ctx.one(Request::ReadPrincipal(user.clone()))?, &user)?;
    let on = load(ctx, connections, "failed to resolve External Connection: ")?;
    if !super::privilege::is_admin(&me) {
        for (_, grants) in &on {
            require_grant_option(&me, grants, privileges)?;
        }
    }
    require_principals(ctx, grantees)?;

    let mut mutations = Vec::new();
    for (name, grants) in &on {
        for grantee in grantees {
            let before: Held = grants
                .iter()
                .filter(|g| &g.grantee == grantee)
                .map(|g| (g.privilege.clone(), g.grantable))
                .collect();
            let mut after = before.clone();
            for p in privileges {
                match (grant, grant_option) {
                    (true, _) => add(&mut after, p, grant_option),
                    (false, false) => remove(&mut after, p, privileges),
                    (false, true) => drop_grant_option(&mut after, p),
                }
            }
            let row = |privilege: &str, grantable: bool| Grant {
                object: GrantObject::Connection(name.clone()),
                grantee: grantee.clone(),
                privilege: privilege.to_owned(),
                grantable,
            };
            for (p, grantable) in &before {
                if !after.contains_key(p) {
                    mutations.push(Mutation::DeleteGrant(row(p, *grantable)));
                }
            }
            for (p, grantable) in &after {
                if before.get(p) != Some(grantable) {
                    mutations.push(Mutation::PutGrant(row(p, *grantable)));
                }
            }
        }
    }
    if !mutations.is_empty() {
        apply(ctx, mutations)?.map_err(|_| Error::internal("grants have no precondition"))?;
    }
    Ok(Outcome::Command(if grant { "GRANT" } else { "REVOKE" }.into()))
}

/// Every named connection with its grants; a missing one is an error.
fn load(ctx: &mut Ctx<'_>, names: &[String], context: &str) -> Run<Vec<(String, Vec<Grant>)>> {
    let found = ctx.io(names.iter().cloned().map(Request::ReadConnection).collect())?;
    for (name, found) in names.iter().zip(found) {
        if answer::connection(found)?.is_none() {
            return Err(Error::not_found(format!(
                "{context}external connection with name {name} does not exist"
            ))
            .into());
        }
    }
    let grants = ctx.io(names.iter().map(|n| grants_on(n)).collect())?;
    names.iter().cloned().zip(grants).map(|(n, g)| Ok((n, answer::grants(g)?))).collect()
}

/// Granting or revoking needs each privilege (or ALL) WITH GRANT OPTION, through any role.
fn require_grant_option(me: &Principal, grants: &[Grant], privileges: &[String]) -> Run<()> {
    let mine =
        |g: &&Grant| g.grantable && (g.grantee == me.name || me.member_of.contains(&g.grantee));
    let holds =
        |p: &str| grants.iter().filter(mine).any(|g| g.privilege == p || g.privilege == "ALL");
    if privileges.iter().all(|p| holds(p)) {
        return Ok(());
    }
    Err(Error::permission_denied(format!(
        "user {} missing WITH GRANT OPTION privilege on one or more of {}",
        me.name,
        privileges.join(", ")
    ))
    .into())
}

fn add(held: &mut Held, p: &str, grant_option: bool) {
    if p == "ALL" {
        let grantable = grant_option || held.get("ALL").copied().unwrap_or(false);
        held.clear();
        held.insert("ALL".into(), grantable);
        return;
    }
    let all = held.get("ALL").copied();
    match all {
        // ALL covers it; only a grant option not yet held is worth a row of its own.
        Some(true) => {}
        Some(false) if !grant_option => {}
        _ => {
            let grantable = grant_option || held.get(p).copied().unwrap_or(false);
            held.insert(p.to_owned(), grantable);
        }
    }
}

/// REVOKE: `ALL` removes everything; one privilege out of `ALL` leaves the others.
fn remove(held: &mut Held, p: &str, revoked: &[String]) {
    if p == "ALL" {
        held.clear();
        return;
    }
    if let Some(grantable) = held.remove("ALL") {
        for q in EACH {
            if !revoked.iter().any(|r| r == q) {
                held.entry((*q).to_owned()).or_insert(grantable);
            }
        }
    }
    held.remove(p);
}

/// REVOKE GRANT OPTION FOR: the privilege stays, the option goes.
fn drop_grant_option(held: &mut Held, p: &str) {
    if p == "ALL" {
        held.values_mut().for_each(|g| *g = false);
        return;
    }
    if held.get("ALL") == Some(&true) {
        held.remove("ALL");
        for q in EACH {
            held.insert((*q).to_owned(), *q != p);
        }
    }
    if let Some(g) = held.get_mut(p) {
        *g = false;
    }
}

pub(super) fn show_grants(
    ctx: &mut Ctx<'_>,
    connections: &[String],
    grantees: Option<&[String]>,
) -> Run<Outcome> {
    let on = load(ctx, connections, "")?;
    let mut rows: Vec<Grant> = on.into_iter().flat_map(|(_, g)| g).collect();
    if let Some(grantees) = grantees {
        rows.retain(|g| grantees.contains(&g.grantee));
    }
    rows.sort_by(|a, b| {
        (&a.object, &a.grantee, &a.privilege).cmp(&(&b.object, &b.grantee, &b.privilege))
    });
    rows.dedup();
    let rows = rows
        .into_iter()
        .map(|g| {
            let GrantObject::Connection(name) = g.object else {
                unreachable!("grants on a connection")
            };
            vec![
                Value::Text(name),
                Value::Text(g.grantee),
                Value::Text(g.privilege),
                Value::Boolean(g.grantable),
            ]
        })
        .collect();
    Ok(Outcome::Rows(Rows {
        columns: vec![
            Column::new("connection_name", "STRING"),
            Column::new("grantee", "STRING"),
            Column::new("privilege_type", "STRING"),
            Column::new("is_grantable", "BOOL"),
        ],
        rows,
    }))
}
