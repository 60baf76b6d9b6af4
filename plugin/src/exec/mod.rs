//! Running statements without doing I/O.
//!
//! A [`Script`] holds the parsed statements of one input and runs them one at a time. A statement
//! is written as straight-line code against a [`Ctx`]: `ctx.io(requests)?` either returns the
//! host's responses or suspends the statement, handing the requests to the host. When the host
//! resumes, the statement runs again from its start and every `ctx.io` it already passed is
//! answered from the log (deterministic replay). Statements are short and pure, so replaying
//! costs far less than the I/O between steps, and no hand-written state machines can drift.

mod changefeed;
mod check;
mod connection;
mod grants;
mod ops;
mod privilege;
mod resolve;
mod roles;
mod time;

use crate::error::Error;
use crate::model::{
    Connection, Grant, GrantObject, Mutation, ObjectMeta, Principal, Request, Response, Session,
    StatementResult, Step,
};
use crate::sql::{self, Statement};

pub use resolve::{ResolveInput, resolve};

/// Why a statement stopped before finishing.
#[derive(Debug)]
pub(crate) enum Halt {
    /// It needs the host to perform these requests.
    Io(Vec<Request>),
    /// It failed.
    Fail(Error),
}

impl From<Error> for Halt {
    fn from(error: Error) -> Self {
        Self::Fail(error)
    }
}

pub(crate) type Run<T> = Result<T, Halt>;

/// What one run of a statement sees: the session and the responses logged so far.
pub(crate) struct Ctx<'a> {
    pub(crate) session: &'a Session,
    log: &'a [Vec<Response>],
    cursor: usize,
    pub(crate) notices: Vec<String>,
}

impl Ctx<'_> {
    /// The responses to `requests`, or a suspension asking the host for them.
    pub(crate) fn io(&mut self, requests: Vec<Request>) -> Run<Vec<Response>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let Some(responses) = self.log.get(self.cursor) else {
            return Err(Halt::Io(requests));
        };
        self.cursor += 1;
        if responses.len() != requests.len() {
            return Err(Halt::Fail(Error::internal(format!(
                "host protocol error: {} requests were answered with {} responses",
                requests.len(),
                responses.len()
            ))));
        }
        Ok(responses.clone())
    }

    /// The responses to a fixed number of requests.
    pub(crate) fn all<const N: usize>(&mut self, requests: [Request; N]) -> Run<[Response; N]> {
        let responses = self.io(requests.into())?;
        Ok(responses.try_into().expect("io checked the count"))
    }

    /// The response to one request.
    pub(crate) fn one(&mut self, request: Request) -> Run<Response> {
        Ok(self.io(vec![request])?.pop().expect("io checked the count"))
    }

    pub(crate) fn notice(&mut self, message: impl Into<String>) {
        self.notices.push(message.into());
    }
}

/// A host answered a request with the wrong kind of response.
pub(crate) fn unexpected(what: &str, response: &Response) -> Halt {
    let got = match response {
        Response::IoFailed(e) => return Halt::Fail(e.clone().into_error(what)),
        Response::Principal(_) => "principal",
        Response::Connection(_) => "connection",
        Response::Connections(_) => "connections",
        Response::Grants(_) => "grants",
        Response::Principals(_) => "principals",
        Response::Applied(_) => "applied",
        Response::Done => "done",
        Response::Data(_) => "data",
        Response::Objects(_) => "objects",
        Response::Now(_) => "now",
        Response::Dependents(_) => "dependents",
    };
    Halt::Fail(Error::internal(format!("host protocol error: {what} was answered with {got}")))
}

/// Typed readers of single responses; catalog failures surface as errors.
pub(crate) mod answer {
    use super::*;

    pub(crate) fn principal(r: Response) -> Run<Option<Principal>> {
        match r {
            Response::Principal(p) => Ok(p),
            other => Err(unexpected("reading a principal", &other)),
        }
    }

    pub(crate) fn connection(r: Response) -> Run<Option<Connection>> {
        match r {
            Response::Connection(c) => Ok(c),
            other => Err(unexpected("reading an external connection", &other)),
        }
    }

    pub(crate) fn connections(r: Response) -> Run<Vec<Connection>> {
        match r {
            Response::Connections(c) => Ok(c),
            other => Err(unexpected("listing external connections", &other)),
        }
    }

    pub(crate) fn grants(r: Response) -> Run<Vec<Grant>> {
        match r {
            Response::Grants(g) => Ok(g),
            other => Err(unexpected("reading grants", &other)),
        }
    }

    pub(crate) fn applied(r: Response) -> Run<Result<(), u32>> {
        match r {
            Response::Applied(a) => Ok(a),
            other => Err(unexpected("applying catalog changes", &other)),
        }
    }

    pub(crate) fn dependents(r: Response) -> Run<Vec<crate::model::Dependent>> {
        match r {
            Response::Dependents(d) => Ok(d),
            other => Err(unexpected("listing the jobs that use an external connection", &other)),
        }
    }

    pub(crate) fn now(r: Response) -> Run<i64> {
        match r {
            Response::Now(t) => Ok(t),
            other => Err(unexpected("reading the time", &other)),
        }
    }

    /// `Done`, or the host's failure wrapped in `context`.
    pub(crate) fn done(r: Response, context: &str) -> Run<()> {
        match r {
            Response::Done => Ok(()),
            Response::IoFailed(e) => Err(Halt::Fail(e.into_error(context))),
            other => Err(unexpected(context, &other)),
        }
    }

    /// `Data`, or the host's failure wrapped in `context`.
    pub(crate) fn data(r: Response, context: &str) -> Run<Vec<u8>> {
        match r {
            Response::Data(d) => Ok(d),
            Response::IoFailed(e) => Err(Halt::Fail(e.into_error(context))),
            other => Err(unexpected(context, &other)),
        }
    }

    /// `Objects`, or the host's failure wrapped in `context`.
    pub(crate) fn objects(r: Response, context: &str) -> Run<Vec<ObjectMeta>> {
        match r {
            Response::Objects(o) => Ok(o),
            Response::IoFailed(e) => Err(Halt::Fail(e.into_error(context))),
            other => Err(unexpected(context, &other)),
        }
    }
}

/// Applies `mutations` in one transaction: `Err(index)` names a failed precondition.
pub(crate) fn apply(ctx: &mut Ctx<'_>, mutations: Vec<Mutation>) -> Run<Result<(), u32>> {
    answer::applied(ctx.one(Request::Apply(mutations))?)
}

/// The session's principal; a missing one is an error.
pub(crate) fn principal_from(r: Response, user: &str) -> Run<Principal> {
    answer::principal(r)?
        .ok_or_else(|| Halt::Fail(Error::not_found(format!("role/user \"{user}\" does not exist"))))
}

/// Reads the grants on a connection.
pub(crate) fn grants_on(name: &str) -> Request {
    Request::ReadGrants(GrantObject::Connection(name.to_owned()))
}

fn run(ctx: &mut Ctx<'_>, statement: &Statement) -> Run<StatementResult> {
    use Statement as S;
    let outcome = match statement {
        S::CreateExternalConnection { if_not_exists, name, uri } => {
            connection::create(ctx, *if_not_exists, name, uri)?
        }
        S::AlterExternalConnection { if_exists, name, uri } => {
            connection::alter(ctx, *if_exists, name, uri)?
        }
        S::DropExternalConnection { name, cascade } => connection::drop(ctx, name, *cascade)?,
        S::ShowCreateExternalConnection { name } => connection::show_create(ctx, Some(name))?,
        S::ShowCreateAllExternalConnections => connection::show_create(ctx, None)?,
        S::ShowExternalConnections => connection::show(ctx, None)?,
        S::ShowExternalConnection { name } => connection::show(ctx, Some(name))?,
        S::CheckExternalConnection { uri, options } => check::check(ctx, uri, options)?,
        S::CreateRole { is_user, if_not_exists, name, password, login } => {
            roles::create_role(ctx, *is_user, *if_not_exists, name, password.as_deref(), *login)?
        }
        S::DropRole { is_user, if_exists, names } => {
            roles::drop_roles(ctx, *is_user, *if_exists, names)?
        }
        S::GrantRole { roles, members, admin_option } => {
            roles::membership(ctx, true, roles, members, *admin_option)?
        }
        S::RevokeRole { roles, members, admin_option_for } => {
            roles::membership(ctx, false, roles, members, *admin_option_for)?
        }
        S::ShowUsers | S::ShowRoles => roles::show_roles(ctx)?,
        S::GrantSystem { privileges, grantees, grant_option } => {
            roles::system(ctx, true, privileges, grantees, *grant_option)?
        }
        S::RevokeSystem { privileges, grantees, grant_option_for } => {
            roles::system(ctx, false, privileges, grantees, *grant_option_for)?
        }
        S::ShowSystemGrants { grantees } => roles::show_system_grants(ctx, grantees.as_deref())?,
        S::GrantOnConnection { privileges, connections, grantees, grant_option } => {
            grants::grant_or_revoke(ctx, true, privileges, connections, grantees, *grant_option)?
        }
        S::RevokeOnConnection { privileges, connections, grantees, grant_option_for } => {
            grants::grant_or_revoke(
                ctx,
                false,
                privileges,
                connections,
                grantees,
                *grant_option_for,
            )?
        }
        S::ShowGrantsOnConnection { connections, grantees } => {
            grants::show_grants(ctx, connections, grantees.as_deref())?
        }
        S::Backup(b) => ops::backup(ctx, b)?,
        S::Restore(r) => ops::restore(ctx, r)?,
        S::ShowBackups { uris } => ops::show_backups(ctx, uris)?,
        S::ShowBackup { subdir, uris, options } => ops::show_backup(ctx, subdir, uris, options)?,
        S::Import(i) => ops::import(ctx, i)?,
        S::Export(e) => ops::export(ctx, e)?,
        S::CreateDatabase { if_not_exists, name } => ops::host_statement(
            ctx,
            "CREATE DATABASE",
            serde_json::json!({ "name": name, "if_not_exists": if_not_exists }),
        )?,
        S::DropDatabase { if_exists, name, cascade } => ops::host_statement(
            ctx,
            "DROP DATABASE",
            serde_json::json!({ "name": name, "if_exists": if_exists, "cascade": cascade }),
        )?,
        S::ShowDatabases => ops::host_statement(ctx, "SHOW DATABASES", serde_json::json!({}))?,
        S::ShowTables { database } => {
            ops::host_statement(ctx, "SHOW TABLES", serde_json::json!({ "database": database }))?
        }
        S::UseDatabase { name } => {
            ops::host_statement(ctx, "USE", serde_json::json!({ "name": name }))?
        }
        S::ShowJobs { id } => {
            ops::host_statement(ctx, "SHOW JOBS", serde_json::json!({ "id": id }))?
        }
        S::CreateChangefeed(c) => changefeed::create(ctx, c)?,
        S::ControlJob { action, id } => changefeed::control(ctx, *action, *id)?,
        S::ShowChangefeedJobs { id } => changefeed::show_jobs(ctx, *id)?,
        S::Other { sql } => crate::model::Outcome::Passthrough(sql.clone()),
    };
    Ok(StatementResult { outcome, notices: std::mem::take(&mut ctx.notices) })
}

/// One input of one or more statements, driven step by step.
pub struct Script {
    session: Session,
    statements: std::vec::IntoIter<Statement>,
    current: Option<Statement>,
    /// Responses for the current statement, one entry per `io` step it passed.
    log: Vec<Vec<Response>>,
    /// Requests outstanding, if the last step was `Io`.
    awaiting: Option<usize>,
    /// A parse error not yet reported.
    parse_error: Option<Error>,
    ended: bool,
}

impl std::fmt::Debug for Script {
    // Statements carry URIs and passwords: show them only in their redacted form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("session", &self.session)
            .field("current", &self.current.as_ref().map(Statement::redacted_sql))
            .field("remaining", &self.statements.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Script {
    /// Parses `sql`; a syntax error is reported by the first [`Script::resume`].
    pub fn new(session: Session, sql: &str) -> Self {
        let (statements, parse_error) = match sql::parse(sql) {
            Ok(statements) => (statements, None),
            Err(error) => (Vec::new(), Some(error)),
        };
        Self {
            session,
            statements: statements.into_iter(),
            current: None,
            log: Vec::new(),
            awaiting: None,
            parse_error,
            ended: false,
        }
    }

    /// Answers the previous `Io` step (empty at the start and after `Finished`); returns the next.
    pub fn resume(&mut self, responses: Vec<Response>) -> Step {
        if self.ended {
            return Step::End;
        }
        if let Some(error) = self.parse_error.take() {
            self.ended = true;
            return Step::Finished(Err(error));
        }
        match self.awaiting.take() {
            Some(expected) if expected != responses.len() => {
                self.ended = true;
                return Step::Finished(Err(Error::internal(format!(
                    "host protocol error: {expected} requests were answered with {} responses",
                    responses.len()
                ))));
            }
            Some(_) => self.log.push(responses),
            None if !responses.is_empty() => {
                self.ended = true;
                return Step::Finished(Err(Error::internal(
                    "host protocol error: responses were sent when none were asked for",
                )));
            }
            None => {}
        }
        if self.current.is_none() {
            self.current = self.statements.next();
            self.log.clear();
        }
        let Some(statement) = &self.current else {
            self.ended = true;
            return Step::End;
        };
        let mut ctx =
            Ctx { session: &self.session, log: &self.log, cursor: 0, notices: Vec::new() };
        match run(&mut ctx, statement) {
            Err(Halt::Io(requests)) => {
                self.awaiting = Some(requests.len());
                Step::Io(requests)
            }
            Ok(result) => {
                self.current = None;
                Step::Finished(Ok(result))
            }
            Err(Halt::Fail(error)) => {
                self.current = None;
                self.ended = true;
                Step::Finished(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests;
