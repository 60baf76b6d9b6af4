//! The executor against a scripted in-memory host.

use super::connection::{SENTINEL_CONTENT, SENTINEL_NAME};
use super::*;
use crate::model::{Outcome, Validation, Value};
use std::collections::BTreeMap;

/// A host that keeps connections and grants in memory and objects in a map.
#[derive(Default)]
struct MemoryHost {
    principals: BTreeMap<String, Principal>,
    connections: BTreeMap<String, Connection>,
    grants: Vec<Grant>,
    objects: BTreeMap<String, Vec<u8>>,
    requests: Vec<Request>,
    /// Unfinished jobs and the connection each uses.
    jobs: Vec<(crate::model::Dependent, String)>,
    /// A job that starts right after the next `ListDependents` is answered.
    job_starting: Option<(crate::model::Dependent, String)>,
}

fn changefeed_job(id: i64, status: &str) -> crate::model::Dependent {
    crate::model::Dependent {
        job_id: id,
        job_type: "CHANGEFEED".into(),
        status: status.into(),
        description: format!("CREATE CHANGEFEED FOR TABLE t{id} INTO 'external://sink'"),
    }
}

impl MemoryHost {
    fn new() -> Self {
        let mut host = Self::default();
        host.principals
            .insert("root".into(), Principal { name: "root".into(), ..Default::default() });
        host.principals
            .insert("alice".into(), Principal { name: "alice".into(), ..Default::default() });
        host
    }

    fn answer(&mut self, request: Request) -> Response {
        self.requests.push(request.clone());
        match request {
            Request::ReadPrincipal(n) => Response::Principal(self.principals.get(&n).cloned()),
            Request::ReadConnection(n) => Response::Connection(self.connections.get(&n).cloned()),
            Request::ListConnections => {
                Response::Connections(self.connections.values().cloned().collect())
            }
            Request::ReadGrants(o) => {
                Response::Grants(self.grants.iter().filter(|g| g.object == o).cloned().collect())
            }
            Request::ReadGrantsOf(u) => {
                Response::Grants(self.grants.iter().filter(|g| g.grantee == u).cloned().collect())
            }
            Request::ListDependents(name) => {
                let found = self.dependents(&name);
                if let Some(job) = self.job_starting.take() {
                    self.jobs.push(job);
                }
                Response::Dependents(found)
            }
            Request::Apply(ms) => {
                let mut canceled = Vec::new();
                for (i, m) in ms.iter().enumerate() {
                    let failed = match m {
                        Mutation::InsertConnection(c) => self.connections.contains_key(&c.name),
                        Mutation::CancelJob(id) => {
                            canceled.push(*id);
                            false
                        }
                        Mutation::RequireUnusedConnection(name) => {
                            self.dependents(name).iter().any(|d| !canceled.contains(&d.job_id))
                        }
                        _ => false,
                    };
                    if failed {
                        return Response::Applied(Err(i as u32));
                    }
                }
                for m in ms {
                    match m {
                        Mutation::InsertConnection(c) => {
                            self.connections.insert(c.name.clone(), c);
                        }
                        Mutation::UpdateConnection { connection, .. } => {
                            self.connections.insert(connection.name.clone(), connection);
                        }
                        Mutation::DeleteConnection(n) => {
                            self.connections.remove(&n);
                            self.grants.retain(|g| g.object != GrantObject::Connection(n.clone()));
                        }
                        Mutation::PutGrant(g) => self.grants.push(g),
                        Mutation::CancelJob(id) => self.jobs.retain(|(d, _)| d.job_id != id),
                        Mutation::RequireUnusedConnection(_) => {}
                        other => panic!("unexpected mutation {other:?}"),
                    }
                }
                Response::Applied(Ok(()))
            }
            Request::ObjectPut { object, data } => {
                self.objects.insert(format!("{}/{}", object.target.path, object.key), data);
                Response::Done
            }
            Request::ObjectList { target, .. } => Response::Objects(
                self.objects
                    .iter()
                    .filter_map(|(k, v)| {
                        k.strip_prefix(&format!("{}/", target.path))
                            .map(|key| ObjectMeta { key: key.to_owned(), size: v.len() as u64 })
                    })
                    .collect(),
            ),
            Request::ObjectGet(o) => {
                match self.objects.get(&format!("{}/{}", o.target.path, o.key)) {
                    Some(d) => Response::Data(d.clone()),
                    None => Response::IoFailed(crate::model::IoError {
                        kind: crate::ErrorKind::NotFound,
                        message: "no such object".into(),
                    }),
                }
            }
            Request::Now => Response::Now(1_700_000_000_000_000),
            other => panic!("unexpected request {other:?}"),
        }
    }

    fn dependents(&self, connection: &str) -> Vec<crate::model::Dependent> {
        self.jobs.iter().filter(|(_, c)| c == connection).map(|(d, _)| d.clone()).collect()
    }

    /// Runs `sql` to the end; returns each statement's result.
    fn run(
        &mut self,
        user: &str,
        validation: Validation,
        sql: &str,
    ) -> Vec<Result<StatementResult, Error>> {
        let session = Session { user: user.into(), database: None, validation };
        let mut script = Script::new(session, sql);
        let mut responses = Vec::new();
        let mut results = Vec::new();
        loop {
            match script.resume(std::mem::take(&mut responses)) {
                Step::Io(requests) => {
                    responses = requests.into_iter().map(|r| self.answer(r)).collect()
                }
                Step::Finished(result) => results.push(result),
                Step::End => return results,
            }
        }
    }
}

fn tag(result: &Result<StatementResult, Error>) -> &str {
    match result {
        Ok(StatementResult { outcome: Outcome::Command(tag), .. }) => tag,
        other => panic!("expected a command tag, got {other:?}"),
    }
}

fn message(result: &Result<StatementResult, Error>) -> &str {
    match result {
        Err(e) => &e.message,
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn create_writes_lists_and_reads_the_sentinel_then_inserts_with_a_grant() {
    let mut host = MemoryHost::new();
    let results = host.run(
        "root",
        Validation::Full,
        "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo/bar'",
    );
    assert_eq!(results.len(), 1);
    assert_eq!(tag(&results[0]), "CREATE EXTERNAL CONNECTION");
    assert_eq!(
        host.objects.get(&format!("foo/bar/{SENTINEL_NAME}")).map(Vec::as_slice),
        Some(SENTINEL_CONTENT.as_bytes())
    );
    let stored = &host.connections["foo"];
    assert_eq!((stored.uri.as_str(), stored.owner.as_str()), ("nodelocal://1/foo/bar", "root"));
    assert!(
        host.grants.iter().any(|g| g.grantee == "root" && g.privilege == "ALL" && !g.grantable)
    );
}

#[test]
fn if_not_exists_on_an_existing_name_touches_nothing() {
    let mut host = MemoryHost::new();
    host.run("root", Validation::Full, "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/a'");
    host.requests.clear();
    let results = host.run(
        "root",
        Validation::Full,
        "CREATE EXTERNAL CONNECTION IF NOT EXISTS foo AS 'nodelocal://1/b'",
    );
    assert_eq!(tag(&results[0]), "CREATE EXTERNAL CONNECTION");
    let touched: Vec<_> = host
        .requests
        .iter()
        .filter(|r| {
            matches!(r, Request::ObjectPut { .. } | Request::ObjectList { .. } | Request::Apply(_))
        })
        .collect();
    assert!(touched.is_empty(), "IF NOT EXISTS touched the target or the catalog: {touched:?}");
    assert_eq!(host.connections["foo"].uri, "nodelocal://1/a");
}

#[test]
fn duplicate_is_42710_and_stops_the_script() {
    let mut host = MemoryHost::new();
    let results = host.run(
        "root",
        Validation::ParseOnly,
        "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/a'; CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/a'; SHOW EXTERNAL CONNECTIONS",
    );
    assert_eq!(results.len(), 2, "the script must stop at the first error");
    assert_eq!(
        message(&results[1]),
        "failed to create external connection: external connection with connection name 'foo' already exists"
    );
    assert_eq!(results[1].as_ref().unwrap_err().sqlstate, "42710");
}

#[test]
fn privileges_are_checked_before_existence() {
    let mut host = MemoryHost::new();
    let cases = [
        (
            "CREATE EXTERNAL CONNECTION x AS 'nodelocal://1/x'",
            "only users with the EXTERNALCONNECTION system privilege are allowed to CREATE EXTERNAL CONNECTION",
        ),
        (
            "DROP EXTERNAL CONNECTION nope",
            "user alice does not have DROP privilege on external_connection nope",
        ),
        (
            "ALTER EXTERNAL CONNECTION IF EXISTS nope AS 'nodelocal://1/x'",
            "user alice does not have UPDATE privilege on external_connection nope",
        ),
        (
            "SHOW EXTERNAL CONNECTION nope",
            "must have USAGE privilege or be owner of the External Connection \"nope\"",
        ),
        (
            "SHOW CREATE ALL EXTERNAL CONNECTIONS",
            "must have VIEWCLUSTERMETADATA privilege to run `SHOW CREATE ALL EXTERNAL CONNECTIONS`",
        ),
    ];
    for (sql, expected) in cases {
        let results = host.run("alice", Validation::ParseOnly, sql);
        assert_eq!(message(&results[0]), expected, "{sql}");
        assert_eq!(results[0].as_ref().unwrap_err().sqlstate, "42501", "{sql}");
    }
}

#[test]
fn show_lists_redacted_uris_and_drop_removes_grants() {
    let mut host = MemoryHost::new();
    let results = host.run(
        "root",
        Validation::ParseOnly,
        "CREATE EXTERNAL CONNECTION s3 AS 's3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=canary-secret';
         SHOW EXTERNAL CONNECTIONS; SHOW CREATE EXTERNAL CONNECTION s3; DROP EXTERNAL CONNECTION s3",
    );
    let Ok(StatementResult { outcome: Outcome::Rows(rows), .. }) = &results[1] else {
        panic!("expected rows, got {:?}", results[1]);
    };
    assert_eq!(
        rows.rows,
        vec![vec![
            Value::Text("s3".into()),
            Value::Text("s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted".into()),
            Value::Text("STORAGE".into()),
        ]]
    );
    assert!(
        !format!("{results:?}").contains("canary-secret"),
        "a secret reached output: {results:?}"
    );
    assert_eq!(tag(&results[3]), "DROP EXTERNAL CONNECTION");
    assert!(host.connections.is_empty() && host.grants.is_empty());
}

#[test]
fn drop_of_a_connection_that_jobs_use_is_refused_with_their_ids_unless_cascade() {
    let mut host = MemoryHost::new();
    host.run("root", Validation::ParseOnly, "CREATE EXTERNAL CONNECTION sink AS 'nodelocal://1/s'");
    host.jobs.push((changefeed_job(7, "running"), "sink".into()));
    host.jobs.push((changefeed_job(9, "paused"), "sink".into()));
    host.jobs.push((changefeed_job(11, "running"), "other".into()));

    let refused = host.run("root", Validation::Full, "DROP EXTERNAL CONNECTION sink");
    let Err(e) = &refused[0] else { panic!("expected an error, got {refused:?}") };
    assert_eq!(e.sqlstate, "2BP01");
    assert_eq!(e.message, "cannot drop external connection \"sink\" because jobs use it: 7, 9");
    assert_eq!(
        e.detail.as_deref(),
        Some(
            "changefeed job 7 (running) uses it: CREATE CHANGEFEED FOR TABLE t7 INTO 'external://sink'\n\
             changefeed job 9 (paused) uses it: CREATE CHANGEFEED FOR TABLE t9 INTO 'external://sink'"
        )
    );
    assert!(e.hint.as_deref().is_some_and(|h| h.contains("CASCADE")), "{e:?}");
    assert!(host.connections.contains_key("sink"), "a refused DROP must drop nothing");
    assert_eq!(host.jobs.len(), 3, "a refused DROP must cancel nothing");

    let dropped = host.run("root", Validation::Full, "DROP EXTERNAL CONNECTION sink CASCADE");
    assert_eq!(tag(&dropped[0]), "DROP EXTERNAL CONNECTION");
    let Ok(result) = &dropped[0] else { unreachable!() };
    assert_eq!(result.notices, vec!["canceled 2 job(s) that used it: 7, 9".to_owned()]);
    assert!(!host.connections.contains_key("sink"));
    let left: Vec<i64> = host.jobs.iter().map(|(d, _)| d.job_id).collect();
    assert_eq!(left, vec![11], "only the jobs on the dropped connection are canceled");
}

#[test]
fn drop_names_a_job_that_started_between_its_read_and_its_apply() {
    let mut host = MemoryHost::new();
    host.run("root", Validation::ParseOnly, "CREATE EXTERNAL CONNECTION sink AS 'nodelocal://1/s'");
    host.job_starting = Some((changefeed_job(42, "running"), "sink".into()));
    let refused = host.run("root", Validation::Full, "DROP EXTERNAL CONNECTION sink");
    let Err(e) = &refused[0] else { panic!("expected an error, got {refused:?}") };
    assert_eq!(e.sqlstate, "2BP01", "{e:?}");
    assert!(e.message.ends_with("because jobs use it: 42"), "{e:?}");
    assert!(host.connections.contains_key("sink"));

    // With CASCADE the late job is canceled too, on the second round.
    host.jobs.clear();
    host.job_starting = Some((changefeed_job(43, "running"), "sink".into()));
    let dropped = host.run("root", Validation::Full, "DROP EXTERNAL CONNECTION sink CASCADE");
    assert_eq!(tag(&dropped[0]), "DROP EXTERNAL CONNECTION");
    assert!(host.jobs.is_empty() && !host.connections.contains_key("sink"));
}

#[test]
fn a_host_that_answers_the_wrong_count_gets_an_internal_error() {
    let mut script = Script::new(Session::default(), "SHOW EXTERNAL CONNECTIONS");
    assert!(matches!(script.resume(Vec::new()), Step::Io(_)));
    match script.resume(Vec::new()) {
        Step::Finished(Err(e)) => assert_eq!(e.sqlstate, "XX000", "{e:?}"),
        other => panic!("expected an internal error, got {other:?}"),
    }
    assert_eq!(script.resume(Vec::new()), Step::End);
}

mod resolving {
    use super::super::{ResolveInput, resolve};
    use crate::model::{Connection, ConnectionType, Grant, GrantObject, Principal, Purpose};

    fn connection(name: &str, uri: &str, connection_type: ConnectionType) -> Connection {
        Connection {
            name: name.into(),
            connection_type,
            provider: "nodelocal".into(),
            uri: uri.into(),
            owner: "root".into(),
            created: 0,
            updated: 0,
            version: 1,
        }
    }

    fn input(
        uri: &str,
        purpose: Purpose,
        user: &str,
        connection: Option<Connection>,
        usage: bool,
    ) -> ResolveInput {
        let grants = if usage {
            vec![Grant {
                object: GrantObject::Connection("conn".into()),
                grantee: "team".into(),
                privilege: "USAGE".into(),
                grantable: false,
            }]
        } else {
            Vec::new()
        };
        let principal =
            Principal { name: user.into(), member_of: vec!["team".into()], ..Default::default() };
        ResolveInput { uri: uri.into(), purpose, principal, connection, grants }
    }

    #[test]
    fn usage_type_and_subpath() {
        let storage = || {
            Some(connection(
                "conn",
                "nodelocal://1/foo?COCKROACH_LOCALITY=a",
                ConnectionType::Storage,
            ))
        };
        // (uri, purpose, usage through a role, connection, expected path or error)
        type Row =
            (&'static str, Purpose, bool, Option<Connection>, Result<&'static str, &'static str>);
        let rows: Vec<Row> = vec![
            ("external://conn/cluster", Purpose::Storage, true, storage(), Ok("foo/cluster")),
            ("external://conn/a/../b//c/", Purpose::Storage, true, storage(), Ok("foo/b/c")),
            ("external://conn", Purpose::Storage, true, storage(), Ok("foo")),
            ("external://conn/a/../../foo/x", Purpose::Storage, true, storage(), Ok("foo/x")),
            (
                "external://conn/../bar",
                Purpose::Storage,
                true,
                storage(),
                Err(
                    "the path /../bar of external://conn leaves the location of the external connection",
                ),
            ),
            (
                "external://conn/../foobar",
                Purpose::Storage,
                true,
                storage(),
                Err(
                    "the path /../foobar of external://conn leaves the location of the external connection",
                ),
            ),
            ("external://conn/ignored", Purpose::ChangefeedSink, true, storage(), Ok("foo")),
            (
                "external://conn/x",
                Purpose::Storage,
                false,
                storage(),
                Err("user alice does not have USAGE privilege on external_connection conn"),
            ),
            // USAGE is checked before the connection is loaded.
            (
                "external://conn/x",
                Purpose::Storage,
                false,
                None,
                Err("user alice does not have USAGE privilege on external_connection conn"),
            ),
            (
                "external://conn/x",
                Purpose::Storage,
                true,
                None,
                Err(
                    "failed to load external connection object: external connection with name conn does not exist",
                ),
            ),
            (
                "external://conn",
                Purpose::Kms,
                true,
                storage(),
                Err("KMS cannot use object of type STORAGE"),
            ),
            (
                "external:///x",
                Purpose::Storage,
                true,
                storage(),
                Err(
                    "host component of an external URI must refer to an existing External Connection object: external:///x",
                ),
            ),
            ("nodelocal://1/direct/path", Purpose::Storage, false, None, Ok("direct/path")),
        ];
        for (uri, purpose, usage, conn, expected) in rows {
            let got = resolve(&input(uri, purpose, "alice", conn, usage));
            match (expected, got) {
                (Ok(path), Ok(target)) => {
                    assert_eq!(target.path, path, "{uri}");
                    assert_eq!(target.user, "alice", "{uri}");
                }
                (Err(message), Err(e)) => assert_eq!(e.message, message, "{uri}"),
                (expected, got) => panic!("{uri}: expected {expected:?}, got {got:?}"),
            }
        }
        let kms = Some(connection(
            "conn",
            "gcp-kms:///projects/p/locations/l/keyRings/r/cryptoKeys/k?AUTH=implicit",
            ConnectionType::Kms,
        ));
        let e =
            resolve(&input("external://conn", Purpose::Storage, "alice", kms, true)).unwrap_err();
        assert_eq!(e.message, "STORAGE cannot use object of type KMS");
    }
}

#[test]
fn a_script_never_debug_prints_a_secret() {
    let sql = "CREATE USER u WITH PASSWORD 'pw-canary'; \
               CREATE EXTERNAL CONNECTION c AS 's3://b?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=key-canary'";
    let mut script = Script::new(Session::default(), sql);
    let _ = script.resume(Vec::new());
    let shown = format!("{script:?}");
    assert!(shown.contains("CREATE USER u WITH PASSWORD '*****'"), "{shown}");
    assert!(!shown.contains("pw-canary") && !shown.contains("key-canary"), "{shown}");
}

mod operations {
    use super::*;

    fn plan(result: &Result<StatementResult, Error>) -> &crate::model::OperationPlan {
        match result {
            Ok(StatementResult { outcome: Outcome::Operation(plan), .. }) => plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    fn setup() -> MemoryHost {
        let mut host = MemoryHost::new();
        let results = host.run(
            "root",
            Validation::ParseOnly,
            "CREATE EXTERNAL CONNECTION b AS 'nodelocal://1/b';
             CREATE EXTERNAL CONNECTION inc AS 'nodelocal://1/inc';
             CREATE EXTERNAL CONNECTION k AS 'aws-kms:///key?AUTH=implicit&REGION=us-east-1';
             GRANT USAGE ON EXTERNAL CONNECTION b TO alice",
        );
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        host
    }

    #[test]
    fn usage_is_checked_on_every_connection_an_operation_names() {
        let mut host = setup();
        let cases = [
            (
                "BACKUP DATABASE movr INTO LATEST IN 'external://b' WITH incremental_location = 'external://inc'",
                "inc",
            ),
            ("RESTORE DATABASE movr FROM LATEST IN 'external://nope'", "nope"),
            ("IMPORT INTO t CSV DATA ('external://b/x.csv', 'external://inc/y.csv')", "inc"),
            ("EXPORT INTO CSV 'external://inc/out' FROM TABLE t", "inc"),
            ("SHOW BACKUPS IN 'external://inc'", "inc"),
            (
                "SHOW BACKUP LATEST IN 'external://b' WITH incremental_location = 'external://inc'",
                "inc",
            ),
            ("BACKUP DATABASE movr INTO 'external://b' WITH kms = 'external://k'", "k"),
        ];
        for (sql, name) in cases {
            let results = host.run("alice", Validation::Full, sql);
            assert_eq!(
                message(&results[0]),
                format!("user alice does not have USAGE privilege on external_connection {name}"),
                "{sql}"
            );
        }
    }

    #[test]
    fn a_plan_carries_resolved_targets_and_checked_options() {
        let mut host = setup();
        let results = host.run(
            "alice",
            Validation::Full,
            "BACKUP DATABASE movr INTO 'external://b/daily' AS OF SYSTEM TIME '-10s' WITH revision_history",
        );
        let plan = plan(&results[0]);
        assert_eq!(plan.kind, "BACKUP");
        assert_eq!(plan.targets.len(), 1);
        assert_eq!(
            (plan.targets[0].scheme.as_str(), plan.targets[0].path.as_str()),
            ("nodelocal", "b/daily")
        );
        assert_eq!(plan.targets[0].user, "alice");
        let detail: serde_json::Value = serde_json::from_str(&plan.detail).unwrap();
        assert_eq!(detail["scope"], serde_json::json!({ "databases": ["movr"] }));
        assert_eq!(detail["collection"], serde_json::json!([0]));
        assert_eq!(
            detail["as_of_micros"],
            serde_json::json!(1_700_000_000_000_000i64 - 10_000_000)
        );
        assert_eq!(detail["options"], serde_json::json!({ "revision_history": true }));
        assert!(!plan.detail.contains("external://"), "{}", plan.detail);
    }

    #[test]
    fn storage_parameters_are_uppercase_and_types_must_match() {
        let mut host = setup();
        let cases = [
            (
                "BACKUP INTO 's3://bucket/p?aws_access_key_id=x&AWS_SECRET_ACCESS_KEY=y'",
                "unknown S3 query parameters: aws_access_key_id",
            ),
            (
                "IMPORT INTO t CSV DATA ('gs://bucket/f.csv?auth=implicit')",
                "unknown GS query parameters: auth",
            ),
            ("BACKUP INTO 'external://k'", "STORAGE cannot use object of type KMS"),
            (
                "BACKUP INTO 'external://b' WITH kms = 'external://inc'",
                "KMS cannot use object of type STORAGE",
            ),
            (
                "EXPORT INTO CSV 'kafka://broker:9092' FROM TABLE t",
                "unsupported storage scheme: \"kafka\"",
            ),
            (
                "IMPORT INTO t CSV DATA ('nodelocal://1/x') WITH delimiter = '||'",
                "invalid value for delimiter: \"||\": must be exactly one character",
            ),
            (
                "BACKUP INTO 'nodelocal://1/b' WITH incremental_location = 'nodelocal://1/i'",
                "A full backup cannot be written to \"incremental_location\", which is only for incremental backups",
            ),
        ];
        for (sql, expected) in cases {
            let results = host.run("root", Validation::Full, sql);
            assert_eq!(message(&results[0]), expected, "{sql}");
        }
    }

    #[test]
    fn cluster_backups_are_for_admins() {
        let mut host = setup();
        let results = host.run("alice", Validation::Full, "BACKUP INTO 'external://b'");
        assert_eq!(
            message(&results[0]),
            "only users with the admin role are allowed to perform full cluster backups"
        );
    }
}
