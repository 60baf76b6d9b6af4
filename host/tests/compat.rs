//! CockroachDB's texts through the real component: every URI error row, every statement-level
//! error, SHOW's redaction byte for byte, and hostile input. The expected values come from the
//! reference (`shared/reference/cockroach-external-connections.md`); the URI rows are the
//! plugin's own conformance tables, here run through wasm instead of natively.

mod common;

use common::{err, host, ok, root};
use extconn_host::catalog::{Mutation, PrincipalDef};
use extconn_host::{Host, Outcome, Session, Validation, Value};
use extconn_plugin::uri::{self, cases};

fn parse_only() -> Session {
    Session { validation: Validation::ParseOnly, ..root() }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn show_rows(host: &mut Host, session: &Session, sql: &str) -> Vec<Vec<String>> {
    let results = ok(host, session, sql);
    let Some(Ok(Outcome::Rows(rows))) = results.last().map(|r| &r.outcome) else {
        panic!("expected rows from {sql}, got {results:?}");
    };
    rows.rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| match v {
                    Value::Text(s) => s.clone(),
                    other => panic!("expected text in {sql}, got {other:?}"),
                })
                .collect()
        })
        .collect()
}

fn add_user(host: &mut Host, name: &str) -> Session {
    let user = PrincipalDef {
        name: name.into(),
        is_role: false,
        can_login: true,
        password_verifier: None,
    };
    host.catalog_mut().apply(&[Mutation::InsertPrincipal(user)]).unwrap().unwrap();
    Session { user: name.into(), ..parse_only() }
}

#[test]
fn every_uri_error_text_comes_out_of_the_component_exactly() {
    let (mut host, _dir) = host();
    let mut failures = Vec::new();
    for (uri, expected) in cases::CREATE_ERROR_CASES {
        let sql = format!("CREATE EXTERNAL CONNECTION c AS {}", literal(uri));
        let e = err(&mut host, &parse_only(), &sql);
        let state_ok = matches!(e.sqlstate.as_str(), "22023" | "54000");
        if e.message != *expected || !state_ok {
            failures.push(format!(
                "statement: {sql}\n  expected: {expected} (22023|54000)\n  got:      {} ({})",
                e.message, e.sqlstate
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        cases::CREATE_ERROR_CASES.len(),
        failures.join("\n")
    );
    assert!(
        host.catalog().list_connections().unwrap().is_empty(),
        "a failed CREATE left a catalog entry"
    );
}

#[test]
fn statement_errors_match_cockroachdb() {
    let (mut host, dir) = host();
    ok(&mut host, &root(), "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo'");
    let alice = add_user(&mut host, "alice");
    // (who, statement, SQLSTATE, message)
    let rows: &[(&Session, &str, &str, &str)] = &[
        (
            &root(),
            "CREATE EXTERNAL CONNECTION foo AS 'nodelocal://1/foo'",
            "42710",
            "failed to create external connection: external connection with connection name 'foo' already exists",
        ),
        (
            &root(),
            "ALTER EXTERNAL CONNECTION nope AS 'nodelocal://1/x'",
            "42704",
            "external connection with name nope does not exist",
        ),
        (
            &root(),
            "SHOW CREATE EXTERNAL CONNECTION nope",
            "42704",
            "external connection with name nope does not exist",
        ),
        (
            &root(),
            "SHOW EXTERNAL CONNECTION nope",
            "42704",
            "external connection with name nope does not exist",
        ),
        (
            &alice,
            "CREATE EXTERNAL CONNECTION bar AS 'nodelocal://1/bar'",
            "42501",
            "only users with the EXTERNALCONNECTION system privilege are allowed to CREATE EXTERNAL CONNECTION",
        ),
        (
            &alice,
            "DROP EXTERNAL CONNECTION foo",
            "42501",
            "user alice does not have DROP privilege on external_connection foo",
        ),
        // Privileges are checked before existence.
        (
            &alice,
            "DROP EXTERNAL CONNECTION nope",
            "42501",
            "user alice does not have DROP privilege on external_connection nope",
        ),
        (
            &alice,
            "ALTER EXTERNAL CONNECTION IF EXISTS nope AS 'nodelocal://1/x'",
            "42501",
            "user alice does not have UPDATE privilege on external_connection nope",
        ),
        (
            &alice,
            "SHOW EXTERNAL CONNECTION foo",
            "42501",
            "must have USAGE privilege or be owner of the External Connection \"foo\"",
        ),
        (
            &alice,
            "SHOW CREATE EXTERNAL CONNECTION foo",
            "42501",
            "must have VIEWCLUSTERMETADATA privilege or be owner of the External Connection \"foo\"",
        ),
        (
            &alice,
            "SHOW CREATE ALL EXTERNAL CONNECTIONS",
            "42501",
            "must have VIEWCLUSTERMETADATA privilege to run `SHOW CREATE ALL EXTERNAL CONNECTIONS`",
        ),
        (
            &root(),
            "CREATE EXTERNAL CONNECTION AS 'nodelocal://1/x'",
            "42601",
            "at or near \"as\": syntax error",
        ),
        (
            &root(),
            "DROP EXTERNAL CONNECTION IF EXISTS foo",
            "42601",
            "at or near \"exists\": syntax error",
        ),
    ];
    for (session, sql, sqlstate, message) in rows {
        let e = err(&mut host, session, sql);
        assert_eq!(
            (e.sqlstate.as_str(), e.message.as_str()),
            (*sqlstate, *message),
            "\n  user: {}\n  statement: {sql}",
            session.user
        );
    }
    // A sentinel that cannot be written names the step, with CockroachDB's wrapping.
    std::fs::write(dir.path().join("extern/blocked"), "a file where a directory must go").unwrap();
    let e = err(&mut host, &root(), "CREATE EXTERNAL CONNECTION b AS 'nodelocal://1/blocked/x'");
    assert!(
        e.message.starts_with(
            "failed to construct External Connection details: failed to create nodelocal external connection: failed to write a sentinel ExternalStorage file: "
        ),
        "{e:?}"
    );
    assert_eq!(e.sqlstate, "58030", "{e:?}");
    assert_eq!(
        host.catalog().read_connection("b").unwrap(),
        None,
        "a failed validation left a catalog entry"
    );
}

#[test]
fn show_external_connections_redacts_every_scheme_byte_for_byte() {
    let (mut host, _dir) = host();
    // Reference §8.2: the expected rows, names sorted.
    let reference: &[(&str, &str, &str)] = &[
        (
            "blob",
            cases::REDACT_CASES[0].0,
            "azure-storage://bucket/path?AZURE_ACCOUNT_KEY=redacted&AZURE_ACCOUNT_NAME=foo&AZURE_ENVIRONMENT=AzureUSGovernmentCloud",
        ),
        ("gs", cases::REDACT_CASES[1].0, "gs://bucket?AUTH=specified&BEARER_TOKEN=redacted"),
        (
            "kafka",
            cases::REDACT_CASES[2].0,
            "kafka://broker.address.com:9092?ca_cert=redacted&sasl_enabled=true&sasl_mechanism=SCRAM-SHA-256&sasl_password=redacted&sasl_user=fake_user&tls_enabled=true&topic_prefix=bar_",
        ),
        (
            "kms",
            cases::REDACT_CASES[3].0,
            "gcp-kms:///redacted?AUTH=specified&BEARER_TOKEN=redacted",
        ),
        ("nodelocal", "nodelocal://1/foo", "nodelocal://1/foo"),
        (
            "s3",
            "s3://bucket?AUTH=specified&AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret",
            "s3://bucket?AUTH=specified&AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted",
        ),
    ];
    for (name, uri, _) in reference {
        ok(
            &mut host,
            &parse_only(),
            &format!("CREATE EXTERNAL CONNECTION {name} AS {}", literal(uri)),
        );
    }
    let shown = show_rows(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
    let expected: Vec<Vec<String>> = reference
        .iter()
        .map(|(name, _, shown)| {
            let kind = if *name == "kms" { "KMS" } else { "STORAGE" };
            vec![name.to_string(), shown.to_string(), kind.to_string()]
        })
        .collect();
    assert_eq!(shown, expected);

    // Every scheme of the registry: what the component shows is what the native plugin
    // computes, and no secret value of the URI appears in SHOW or SHOW CREATE.
    for (i, (uri, ..)) in cases::CREATE_OK_CASES.iter().enumerate() {
        let name = format!("ok{i:03}");
        ok(
            &mut host,
            &parse_only(),
            &format!("CREATE EXTERNAL CONNECTION {name} AS {}", literal(uri)),
        );
        let row = &show_rows(&mut host, &root(), &format!("SHOW EXTERNAL CONNECTION {name}"))[0];
        let stored = host.catalog().read_connection(&name).unwrap().unwrap();
        assert_eq!(row[1], uri::redact(&stored.uri), "SHOW of {}", uri::redact(uri));
        let create =
            show_rows(&mut host, &root(), &format!("SHOW CREATE EXTERNAL CONNECTION {name}"));
        for secret in uri::secret_values(uri).iter().filter(|s| s.len() > 3) {
            assert!(
                !row[1].contains(secret.as_str()),
                "SHOW leaked a secret of {}",
                uri::redact(uri)
            );
            assert!(
                !create[0][1].contains(secret.as_str()),
                "SHOW CREATE leaked a secret of {}",
                uri::redact(uri)
            );
        }
    }
}

#[test]
fn hostile_input_fails_cleanly_and_the_next_statement_works() {
    let (mut host, _dir) = host();
    let ten_mib = format!("SHOW EXTERNAL CONNECTIONS -- {}", "x".repeat(10 << 20));
    let nested = format!("CREATE EXTERNAL CONNECTION {}", "(".repeat(100_000));
    let params: Vec<String> = (0..100_000).map(|i| format!("P{i}=v")).collect();
    let many_params = format!("CREATE EXTERNAL CONNECTION c AS 's3://bucket?{}'", params.join("&"));
    let long_uri = format!("CREATE EXTERNAL CONNECTION c AS 's3://bucket/{}'", "k".repeat(100_000));
    for (what, sql, sqlstate) in [
        ("a 10 MiB statement", &ten_mib, "54000"),
        ("100,000 open parentheses", &nested, "42601"),
        ("a URI with 100,000 parameters", &many_params, "54000"),
        ("a 100 KB URI", &long_uri, "54000"),
    ] {
        let e = err(&mut host, &parse_only(), sql);
        assert_eq!(e.sqlstate, sqlstate, "{what}: {e:?}");
        assert!(
            e.message.len() < 1000,
            "{what}: the error echoes the input: {} bytes",
            e.message.len()
        );
        let results = ok(&mut host, &root(), "SHOW EXTERNAL CONNECTIONS");
        assert_eq!(results.len(), 1, "after {what}");
    }
}
