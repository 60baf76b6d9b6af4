//! CREATE / ALTER / DROP / SHOW [CREATE] EXTERNAL CONNECTION.

use super::privilege::{self, ConnPrivilege};
use super::{Ctx, Halt, Run, answer, apply, grants_on, principal_from};
use crate::error::{Error, ErrorKind, sqlstate};
use crate::model::{
    Column, Connection, Grant, GrantObject, Mutation, ObjectMeta, ObjectRef, Outcome, Request,
    Rows, Target, Validation, Value,
};
use crate::uri::{self, Check};

/// The file CREATE writes, lists and reads back, and leaves in place (as CockroachDB does).
pub const SENTINEL_NAME: &str = "crdb_external_storage_location";
/// Its exact content.
pub const SENTINEL_CONTENT: &str =
    "a CockroachDB cluster has been configured to read and write to this location";
/// What CREATE encrypts and decrypts with a KMS key.
pub const KMS_MARKER: &str = "a CockroachDB cluster has been configured to interact with this KMS";

const DETAILS: &str = "failed to construct External Connection details";

pub(super) fn create(
    ctx: &mut Ctx<'_>,
    if_not_exists: bool,
    name: &str,
    uri: &str,
) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let [principal, existing, now] = ctx.all([
        Request::ReadPrincipal(user.clone()),
        Request::ReadConnection(name.to_owned()),
        Request::Now,
    ])?;
    let principal = principal_from(principal, &user)?;
    if !privilege::has_system(&principal, "EXTERNALCONNECTION") {
        return Err(Error::permission_denied(
            "only users with the EXTERNALCONNECTION system privilege are allowed to CREATE EXTERNAL CONNECTION",
        )
        .into());
    }
    let parsed = uri::parse(uri)?;
    // Unlike CockroachDB (issue 147541), an existing name is settled before the target is
    // touched: IF NOT EXISTS succeeds without I/O, and a duplicate fails without I/O.
    if answer::connection(existing)?.is_some() {
        if if_not_exists {
            ctx.notice(format!(
                "external connection {} already exists, skipping",
                quote_literal(name)
            ));
            return Ok(Outcome::Command("CREATE EXTERNAL CONNECTION".into()));
        }
        return Err(duplicate(name).into());
    }
    let now = answer::now(now)?;
    validate(ctx, &parsed, &user)?;
    let connection = Connection {
        name: name.to_owned(),
        connection_type: parsed.connection_type,
        provider: parsed.provider.to_owned(),
        uri: parsed.stored_uri.clone(),
        owner: user.clone(),
        created: now,
        updated: now,
        version: 1,
    };
    let creator_grant = Grant {
        object: GrantObject::Connection(name.to_owned()),
        grantee: user,
        privilege: "ALL".into(),
        grantable: false,
    };
    match apply(
        ctx,
        vec![Mutation::InsertConnection(connection), Mutation::PutGrant(creator_grant)],
    )? {
        Ok(()) => {}
        // Someone else created it between our read and our write.
        Err(_) if if_not_exists => {}
        Err(_) => return Err(duplicate(name).into()),
    }
    Ok(Outcome::Command("CREATE EXTERNAL CONNECTION".into()))
}

pub(super) fn alter(ctx: &mut Ctx<'_>, if_exists: bool, name: &str, uri: &str) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let [principal, existing, grants, now] = ctx.all([
        Request::ReadPrincipal(user.clone()),
        Request::ReadConnection(name.to_owned()),
        grants_on(name),
        Request::Now,
    ])?;
    let principal = principal_from(principal, &user)?;
    // The privilege check comes before the existence check, as in CockroachDB.
    privilege::require_on_connection(
        &principal,
        &answer::grants(grants)?,
        name,
        ConnPrivilege::Update,
    )?;
    let Some(existing) = answer::connection(existing)? else {
        if if_exists {
            ctx.notice(format!(
                "external connection {} does not exist, skipping",
                quote_literal(name)
            ));
            return Ok(Outcome::Command("ALTER EXTERNAL CONNECTION".into()));
        }
        return Err(does_not_exist(name).into());
    };
    let parsed = uri::parse(uri)?;
    validate(ctx, &parsed, &user)?;
    let expected_version = existing.version;
    let connection = Connection {
        connection_type: parsed.connection_type,
        provider: parsed.provider.to_owned(),
        uri: parsed.stored_uri.clone(),
        updated: answer::now(now)?,
        version: expected_version + 1,
        ..existing
    };
    if apply(ctx, vec![Mutation::UpdateConnection { connection, expected_version }])?.is_err() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            sqlstate::SERIALIZATION_FAILURE,
            format!(
                "failed to alter external connection: external connection {} was changed or dropped concurrently",
                quote_literal(name)
            ),
        )
        .with_hint("retry the statement")
        .into());
    }
    Ok(Outcome::Command("ALTER EXTERNAL CONNECTION".into()))
}

/// DROP EXTERNAL CONNECTION. Unlike CockroachDB (its issue 98611), a connection that unfinished
/// jobs use is not dropped from under them: without CASCADE the statement fails with 2BP01 and
/// names the jobs; with CASCADE the jobs are canceled and the connection dropped in one apply.
/// Whether the host can be asked which jobs use a connection: WIT 0.2.0 and later. A build for
/// 0.1.0 (feature `wit-0-1`) drops as CockroachDB does, without looking at jobs.
const LISTS_DEPENDENTS: bool = !cfg!(feature = "wit-0-1");

pub(super) fn drop(ctx: &mut Ctx<'_>, name: &str, cascade: bool) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    if !LISTS_DEPENDENTS {
        let [principal, grants] =
            ctx.all([Request::ReadPrincipal(user.clone()), grants_on(name)])?;
        let principal = principal_from(principal, &user)?;
        let grants = answer::grants(grants)?;
        privilege::require_on_connection(&principal, &grants, name, ConnPrivilege::Drop)?;
        apply(ctx, vec![Mutation::DeleteConnection(name.to_owned())])?
            .map_err(|_| Error::internal("dropping an external connection has no precondition"))?;
        return Ok(Outcome::Command("DROP EXTERNAL CONNECTION".into()));
    }
    let [principal, grants, dependents] = ctx.all([
        Request::ReadPrincipal(user.clone()),
        grants_on(name),
        Request::ListDependents(name.to_owned()),
    ])?;
    let principal = principal_from(principal, &user)?;
    privilege::require_on_connection(
        &principal,
        &answer::grants(grants)?,
        name,
        ConnPrivilege::Drop,
    )?;
    let mut dependents = answer::dependents(dependents)?;
    // A job may start between the read and the apply: the precondition catches it, and the
    // read is repeated (a bounded number of times) so the error names it.
    for _ in 0..3 {
        if !cascade && !dependents.is_empty() {
            return Err(in_use(name, &dependents).into());
        }
        let mut mutations: Vec<Mutation> =
            dependents.iter().map(|d| Mutation::CancelJob(d.job_id)).collect();
        let canceled = mutations.len();
        mutations.push(Mutation::RequireUnusedConnection(name.to_owned()));
        // A missing connection is not an error (CockroachDB drops nothing, silently).
        mutations.push(Mutation::DeleteConnection(name.to_owned()));
        match apply(ctx, mutations)? {
            Ok(()) => {
                if canceled > 0 {
                    let ids = job_ids(&dependents);
                    ctx.notice(format!("canceled {canceled} job(s) that used it: {ids}"));
                }
                return Ok(Outcome::Command("DROP EXTERNAL CONNECTION".into()));
            }
            Err(index) if index as usize == canceled => {
                dependents = answer::dependents(ctx.one(Request::ListDependents(name.into()))?)?;
            }
            Err(_) => {
                return Err(
                    Error::internal("only require-unused-connection has a precondition").into()
                );
            }
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        sqlstate::SERIALIZATION_FAILURE,
        format!("cannot drop external connection \"{name}\": jobs using it keep starting"),
    )
    .with_hint("retry the statement")
    .into())
}

fn job_ids(dependents: &[crate::model::Dependent]) -> String {
    let ids: Vec<String> = dependents.iter().map(|d| d.job_id.to_string()).collect();
    ids.join(", ")
}

/// The 2BP01 error of a DROP that jobs stand in the way of.
fn in_use(name: &str, dependents: &[crate::model::Dependent]) -> Error {
    let detail: Vec<String> = dependents
        .iter()
        .map(|d| {
            let kind = d.job_type.to_lowercase();
            format!("{kind} job {} ({}) uses it: {}", d.job_id, d.status, d.description)
        })
        .collect();
    Error::new(
        ErrorKind::InvalidArgument,
        sqlstate::DEPENDENT_OBJECTS_STILL_EXIST,
        format!(
            "cannot drop external connection \"{name}\" because jobs use it: {}",
            job_ids(dependents)
        ),
    )
    .with_detail(detail.join("\n"))
    .with_hint(
        "CANCEL JOB them first, or use DROP EXTERNAL CONNECTION … CASCADE to cancel them with it",
    )
}

pub(super) fn show_create(ctx: &mut Ctx<'_>, name: Option<&str>) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let read = match name {
        Some(name) => Request::ReadConnection(name.to_owned()),
        None => Request::ListConnections,
    };
    let [principal, found] = ctx.all([Request::ReadPrincipal(user.clone()), read])?;
    let principal = principal_from(principal, &user)?;
    let may_view_all = privilege::has_system(&principal, "VIEWCLUSTERMETADATA");
    let connections = match name {
        None => {
            if !may_view_all {
                return Err(Error::permission_denied(
                    "must have VIEWCLUSTERMETADATA privilege to run `SHOW CREATE ALL EXTERNAL CONNECTIONS`",
                )
                .into());
            }
            answer::connections(found)?
        }
        Some(name) => {
            let found = answer::connection(found)?;
            // Owners may see their own connection: CockroachDB documents this but its check
            // never matched (reference §3.4); we honour the documentation.
            let owner = found.as_ref().is_some_and(|c| c.owner == principal.name);
            if !may_view_all && !owner {
                return Err(Error::permission_denied(format!(
                    "must have VIEWCLUSTERMETADATA privilege or be owner of the External Connection \"{name}\""
                ))
                .into());
            }
            vec![found.ok_or_else(|| does_not_exist(name))?]
        }
    };
    let rows = connections
        .iter()
        .map(|c| {
            vec![
                Value::Text(c.name.clone()),
                Value::Text(format!(
                    "CREATE EXTERNAL CONNECTION {} AS {}",
                    quote_literal(&c.name),
                    // Unlike CockroachDB (issues 111503, 139226), secrets are redacted here too.
                    quote_literal(&uri::redact(&c.uri))
                )),
            ]
        })
        .collect();
    Ok(Outcome::Rows(Rows {
        columns: vec![
            Column::new("connection_name", "STRING"),
            Column::new("create_statement", "STRING"),
        ],
        rows,
    }))
}

pub(super) fn show(ctx: &mut Ctx<'_>, name: Option<&str>) -> Run<Outcome> {
    let user = ctx.session.user.clone();
    let read = match name {
        Some(name) => Request::ReadConnection(name.to_owned()),
        None => Request::ListConnections,
    };
    let [principal, found] = ctx.all([Request::ReadPrincipal(user.clone()), read])?;
    let principal = principal_from(principal, &user)?;
    let admin = privilege::is_admin(&principal);
    let connections = match name {
        Some(name) => {
            let grants =
                if admin { Vec::new() } else { answer::grants(ctx.one(grants_on(name))?)? };
            let found = answer::connection(found)?;
            let owner = found.as_ref().is_some_and(|c| c.owner == principal.name);
            if !owner
                && !privilege::has_on_connection(&principal, &grants, name, ConnPrivilege::Usage)
            {
                return Err(Error::permission_denied(format!(
                    "must have USAGE privilege or be owner of the External Connection \"{name}\""
                ))
                .into());
            }
            vec![found.ok_or_else(|| does_not_exist(name))?]
        }
        None => {
            let all = answer::connections(found)?;
            if admin {
                all
            } else {
                // Only what the user may use: grants held by the user or any of its roles.
                let holders =
                    std::iter::once(principal.name.clone()).chain(principal.member_of.clone());
                let grants = ctx
                    .io(holders.map(Request::ReadGrantsOf).collect())?
                    .into_iter()
                    .map(answer::grants)
                    .collect::<Run<Vec<_>>>()?
                    .concat();
                all.into_iter()
                    .filter(|c| {
                        c.owner == principal.name
                            || privilege::has_on_connection(
                                &principal,
                                &grants,
                                &c.name,
                                ConnPrivilege::Usage,
                            )
                    })
                    .collect()
            }
        }
    };
    let rows = connections
        .iter()
        .map(|c| {
            vec![
                Value::Text(c.name.clone()),
                Value::Text(uri::redact(&c.uri)),
                Value::Text(c.connection_type.as_str().into()),
            ]
        })
        .collect();
    Ok(Outcome::Rows(Rows {
        columns: vec![
            Column::new("connection_name", "STRING"),
            Column::new("connection_uri", "STRING"),
            Column::new("connection_type", "STRING"),
        ],
        rows,
    }))
}

/// The I/O part of CREATE/ALTER validation (reference §4.2), unless the session skips it.
fn validate(ctx: &mut Ctx<'_>, parsed: &uri::Parsed, user: &str) -> Run<()> {
    if ctx.session.validation == Validation::ParseOnly {
        return Ok(());
    }
    let mut target = parsed.target.clone();
    target.user = user.to_owned();
    let wrapper = uri::wrapper(parsed.provider).map(|w| format!("{w}: ")).unwrap_or_default();
    let wrap = |context: &str| format!("{DETAILS}: {wrapper}{context}");
    match parsed.check {
        Check::None if parsed.provider == "kafka" => kafka_notice(ctx, target),
        Check::None => Ok(()),
        Check::Storage => storage_check(ctx, target, &wrap),
        Check::Kms => kms_check(ctx, target, &wrap),
    }
}

/// A Kafka connection is created without contacting the brokers, as in CockroachDB; unlike
/// CockroachDB, a NOTICE says so when they cannot be reached (the host gives up after a few
/// seconds), so a typo in a broker address shows at once rather than at the first changefeed.
fn kafka_notice(ctx: &mut Ctx<'_>, target: Target) -> Run<()> {
    if let crate::model::Response::IoFailed(e) = ctx.one(Request::SinkProbe(target))? {
        ctx.notice(format!(
            "the Kafka brokers could not be reached: {}; the connection is created anyway, and a \
             changefeed that uses it checks again",
            e.message
        ));
    }
    Ok(())
}

fn storage_check(ctx: &mut Ctx<'_>, target: Target, wrap: &dyn Fn(&str) -> String) -> Run<()> {
    let sentinel = ObjectRef { target: target.clone(), key: SENTINEL_NAME.to_owned() };
    let put =
        Request::ObjectPut { object: sentinel.clone(), data: SENTINEL_CONTENT.as_bytes().to_vec() };
    answer::done(ctx.one(put)?, &wrap("failed to write a sentinel ExternalStorage file"))?;

    let list = Request::ObjectList { target, prefix: String::new(), delimiter: None };
    let listed =
        answer::objects(ctx.one(list)?, &wrap("failed to list sentinel ExternalStorage file"))?;
    let found = listed.iter().any(|ObjectMeta { key, .. }| {
        key.rsplit('/').next().is_some_and(|last| last.starts_with(SENTINEL_NAME))
    });
    if !found {
        return Err(io_error(wrap(&format!(
            "failed to find sentinel ExternalStorage file '{SENTINEL_NAME}'"
        ))));
    }

    let content = answer::data(
        ctx.one(Request::ObjectGet(sentinel))?,
        &wrap("failed to read sentinel ExternalStorage file"),
    )?;
    if content != SENTINEL_CONTENT.as_bytes() {
        return Err(io_error(wrap(&format!(
            "content mismatch, expected: {SENTINEL_CONTENT} but found: {}",
            String::from_utf8_lossy(&content)
        ))));
    }
    Ok(())
}

/// CREATE's KMS validation: encrypt [`KMS_MARKER`], decrypt it, compare; `wrap` adds the
/// statement's context to each failure.
pub(super) fn kms_check(
    ctx: &mut Ctx<'_>,
    target: Target,
    wrap: &dyn Fn(&str) -> String,
) -> Run<()> {
    let context = wrap("failed to encrypt marker content when setting up External Connection");
    let encrypted = answer::data(
        ctx.one(Request::KmsEncrypt(target.clone(), KMS_MARKER.as_bytes().to_vec()))?,
        &context,
    )?;
    let context = wrap("failed to decrypt marker content when setting up External Connection");
    let decrypted = answer::data(ctx.one(Request::KmsDecrypt(target, encrypted))?, &context)?;
    if decrypted != KMS_MARKER.as_bytes() {
        return Err(io_error(wrap(&format!(
            "content mismatch, expected: {KMS_MARKER} but found: {}",
            String::from_utf8_lossy(&decrypted)
        ))));
    }
    Ok(())
}

fn io_error(message: String) -> Halt {
    Halt::Fail(Error::new(ErrorKind::Unavailable, sqlstate::IO_ERROR, message))
}

fn duplicate(name: &str) -> Error {
    Error::already_exists(format!(
        "failed to create external connection: external connection with connection name {} already exists",
        quote_literal(name)
    ))
}

fn does_not_exist(name: &str) -> Error {
    Error::not_found(format!("external connection with name {name} does not exist"))
}

/// A SQL string literal: `'` doubled.
pub(crate) fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
