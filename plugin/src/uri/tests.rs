//! Table-driven tests of the scheme registry; the tables live in `cases.rs` so host tests can run
//! the same rows through the real component.

use super::cases::{CREATE_ERROR_CASES, CREATE_OK_CASES, JOIN_CASES, REDACT_CASES};
use super::params::{Kind, Required, Unknown};
use super::*;
use crate::error::{ErrorKind, sqlstate};

#[test]
fn create_errors_match_cockroachdb() {
    let mut failures = Vec::new();
    for (uri, want) in CREATE_ERROR_CASES {
        match parse(uri) {
            Ok(p) => failures
                .push(format!("{uri:?}\n  want error: {want}\n  got:        Ok({})", p.stored_uri)),
            Err(e) => {
                if e.message != *want
                    || e.sqlstate != sqlstate::INVALID_PARAMETER_VALUE
                    || e.kind != ErrorKind::InvalidArgument
                {
                    failures.push(format!(
                        "{uri:?}\n  want: {want}\n  got:  {} ({}, {:?})",
                        e.message, e.sqlstate, e.kind
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        CREATE_ERROR_CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn create_accepts_every_scheme() {
    let mut failures = Vec::new();
    for (uri, provider, kind, host, path, stored) in CREATE_OK_CASES {
        match parse(uri) {
            Err(e) => failures.push(format!("{uri:?}: {}", e.message)),
            Ok(p) => {
                let got = (
                    p.provider,
                    p.connection_type.as_str(),
                    p.target.host.as_str(),
                    p.target.path.as_str(),
                    p.stored_uri.as_str(),
                );
                if got != (*provider, *kind, *host, *path, *stored)
                    || p.target.uri != p.stored_uri
                    || p.target.provider != p.provider
                    || p.target.scheme != p.scheme
                    || !p.target.user.is_empty()
                {
                    failures.push(format!(
                        "{uri:?}\n  want {:?}\n  got  {got:?}",
                        (provider, kind, host, path, stored)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every registered scheme has at least one accepted row (webhook-http is always refused).
    for def in REGISTRY {
        for scheme in def.schemes {
            let covered = CREATE_OK_CASES
                .iter()
                .any(|row| row.0.to_ascii_lowercase().starts_with(&format!("{scheme}:")));
            assert!(covered || *scheme == "webhook-http", "no accepted case for {scheme}");
        }
    }
}

#[test]
fn check_follows_the_type_of_scheme() {
    for (uri, want) in [
        ("nodelocal://1/x", Check::Storage),
        ("userfile:///x", Check::Storage),
        ("s3://b?AUTH=implicit", Check::Storage),
        ("gs://b?AUTH=implicit", Check::Storage),
        ("azure://c?AUTH=implicit&AZURE_ACCOUNT_NAME=a", Check::Storage),
        ("gcp-kms:///k?AUTH=implicit", Check::Kms),
        ("aws-kms:///k?AUTH=implicit&REGION=r", Check::Kms),
        ("azure-kms:///k/v?AUTH=implicit&AZURE_VAULT_NAME=v", Check::Kms),
        ("kafka://b", Check::None),
        ("webhook-https://h", Check::None),
        ("gcpubsub://p?region=r&AUTH=implicit", Check::None),
        ("https://h", Check::None),
        ("postgres://h/db", Check::None),
    ] {
        assert_eq!(parse(uri).map(|p| p.check), Ok(want), "{uri}");
    }
}

#[test]
fn providers_are_cockroach_enum_names() {
    const ENUM: &[&str] = &[
        "nodelocal",
        "gcp_kms",
        "kafka",
        "s3",
        "userfile",
        "gs",
        "azure_storage",
        "aws_kms",
        "http",
        "https",
        "sql",
        "webhookhttp",
        "webhookhttps",
        "gcpubsub",
        "azure_kms",
    ];
    let mut providers: Vec<&str> = REGISTRY.iter().map(|d| d.provider).collect();
    providers.sort_unstable();
    providers.dedup();
    let mut want = ENUM.to_vec();
    want.sort_unstable();
    assert_eq!(providers, want);
    assert_eq!(wrapper("s3"), Some("failed to create s3 external connection"));
    assert_eq!(wrapper("sql"), None);
}

#[test]
fn redaction_matches_show_external_connections() {
    for (uri, want) in REDACT_CASES {
        assert_eq!(redact(uri), *want, "{uri}");
    }
}

#[test]
fn redacted_forms_of_valid_uris_parse_again() {
    for (uri, ..) in CREATE_OK_CASES {
        let shown = redact(uri);
        assert!(!shown.starts_with("failed"), "{uri}: {shown}");
        assert_eq!(redact(&shown), shown, "redaction is idempotent for {uri}");
    }
}

#[test]
fn join_subpath_cleans_like_go() {
    for (stored, subpath, want_uri, want_path) in JOIN_CASES {
        let target = parse(stored).unwrap_or_else(|e| panic!("{stored}: {e}")).target;
        let joined = join_subpath(&target, subpath);
        assert_eq!(
            (joined.uri.as_str(), joined.path.as_str()),
            (*want_uri, *want_path),
            "{stored} + {subpath:?}"
        );
        assert_eq!(joined.params, target.params, "stored parameters are kept");
        assert_eq!(
            (&joined.host, &joined.scheme, &joined.provider),
            (&target.host, &target.scheme, &target.provider)
        );
    }
}

#[test]
fn limits_are_clean_errors() {
    let long = format!("nodelocal://1/{}", "a".repeat(MAX_URI_BYTES));
    let e = parse(&long).unwrap_err();
    assert_eq!(
        (e.sqlstate, e.kind),
        (sqlstate::PROGRAM_LIMIT_EXCEEDED, ErrorKind::InvalidArgument)
    );
    assert_eq!(e.message, format!("URI is {} bytes long; the limit is 65536 bytes", long.len()));
    assert!(redact(&long).starts_with("failed to redact the URI: URI is "));

    let params = |n: usize| (0..n).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&");
    let at_limit = format!("nodelocal://1/x?{}", params(MAX_QUERY_PARAMS));
    assert_eq!(parse(&at_limit).map(|p| p.target.params.len()), Ok(MAX_QUERY_PARAMS));
    let over = format!("nodelocal://1/x?{}", params(MAX_QUERY_PARAMS + 1));
    let e = parse(&over).unwrap_err();
    assert_eq!(e.sqlstate, sqlstate::PROGRAM_LIMIT_EXCEEDED);
    assert_eq!(e.message, "URI has 1001 query parameters; the limit is 1000");

    // 100,000 parameters: refused by one limit or the other, quickly.
    let huge = format!("s3://b?{}", "a=1&".repeat(100_000));
    assert_eq!(parse(&huge).unwrap_err().sqlstate, sqlstate::PROGRAM_LIMIT_EXCEEDED);
    let huge = format!("s3://b?{}", "a&".repeat(30_000));
    assert_eq!(
        parse(&huge).unwrap_err().message,
        "URI has 30000 query parameters; the limit is 1000"
    );
}

/// A deterministic generator, so the never-panic loop needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        usize::try_from(self.0 >> 33).unwrap_or(0)
    }
}

fn exercise(uri: &str) {
    let parsed = parse(uri);
    let shown = redact(uri);
    let _ = info(uri);
    let _ = secret_values(uri);
    if let Ok(p) = parsed {
        assert_eq!(p.target.uri, p.stored_uri);
        assert!(
            !shown.starts_with("failed to redact"),
            "{uri:?} parses but does not redact: {shown}"
        );
        for sub in ["", "/", "/..", "a/../../b", "//x//", "%zz", "é"] {
            let _ = join_subpath(&p.target, sub);
        }
        // The stored form is itself accepted and stable.
        let again =
            parse(&p.stored_uri).unwrap_or_else(|e| panic!("stored form of {uri:?} refused: {e}"));
        assert_eq!(again.stored_uri, p.stored_uri, "{uri:?}");
    }
}

#[test]
fn never_panics_on_malformed_input() {
    let fixed = [
        "",
        "%",
        "%%",
        "%zz",
        "://",
        ":",
        "?",
        "#",
        "&",
        "=",
        "?&=",
        "a:",
        "a:b",
        "//",
        "///",
        "s3:",
        "s3://",
        "s3://%",
        "s3://%zz",
        "s3://[",
        "s3://]",
        "s3://[::1",
        "s3://[::1]:x",
        "s3://[::1%25en0]:1/x",
        "s3://a@b@c",
        "s3://:@:",
        "s3://a:b:c@d:e:f",
        "s3://b?%",
        "s3://b?a=%",
        "s3://b?=",
        "s3://b?==",
        "s3://b#%",
        "s3://b#%zz",
        "s3://bücket/ü?ä=ö",
        "gcp-kms:",
        "gcp-kms:x",
        "gcp-kms:/",
        "azure-kms:////",
        "nodelocal://self",
        "nodelocal://-0/x",
        "nodelocal://99999999999999999999/x",
        "postgres://@",
        "postgres://:@h",
        "userfile://",
        "kafka://?sasl_enabled=true&sasl_mechanism=OAUTHBEARER&sasl_client_id=a&sasl_client_secret=Zm9v&sasl_token_url=%3A",
        "webhook-https://h?ca_cert=LS0tLS1CRUdJTiA=",
        "\u{0}",
        "🦀://🦀/🦀?🦀=🦀#🦀",
        "*",
        "s3://b/*",
    ];
    for uri in fixed {
        exercise(uri);
    }
    // Random strings over an alphabet of URL-significant pieces.
    let pieces = [
        "s3://",
        "gs://",
        "azure://",
        "nodelocal://",
        "userfile://",
        "gcp-kms:///",
        "aws-kms://",
        "azure-kms:///",
        "kafka://",
        "confluent-cloud://",
        "azure-event-hub://",
        "webhook-https://",
        "gcpubsub://",
        "https://",
        "postgres://",
        "external://",
        "%",
        "%2",
        "%41",
        "%FF",
        "%C3%A9",
        "?",
        "&",
        "=",
        "#",
        "/",
        "//",
        "..",
        ".",
        ":",
        "@",
        "[",
        "]",
        ";",
        "+",
        " ",
        "é",
        "\u{7f}",
        "1",
        "self",
        "bucket",
        "AUTH=implicit",
        "AUTH=specified",
        "CREDENTIALS=Zm9v",
        "AWS_ACCESS_KEY_ID=k",
        "AWS_SECRET_ACCESS_KEY=s",
        "AZURE_ACCOUNT_NAME=a",
        "AZURE_ACCOUNT_KEY=a2V5",
        "tls_enabled=true",
        "sasl_enabled=true",
        "sasl_user=u",
        "sasl_password=p",
        "client_cert=Zm9v",
        "client_key=Zm9v",
        "ca_cert=Zm9v",
        "region=r",
        "api_key=k",
        "api_secret=s",
        "REGION=r",
        "AZURE_VAULT_NAME=v",
        "k/v",
        "crdb_route=node",
    ];
    let mut rng = Lcg(0x5eed);
    for _ in 0..20_000 {
        let n = rng.next() % 12;
        let uri: String = (0..n).map(|_| pieces[rng.next() % pieces.len()]).collect();
        exercise(&uri);
    }
}

const CANARY: &str = "CANARY-s3cr3t-v4lue";

#[test]
fn errors_and_displays_never_contain_secrets() {
    let secrets = secret_names();
    let mut checked = 0;
    let mut uris = Vec::new();
    for def in REGISTRY {
        for scheme in def.schemes {
            for host in ["", "host", "a b", "1"] {
                for secret in &secrets {
                    for extra in [
                        "",
                        "&BOGUS=1",
                        "&AUTH=nope",
                        "&tls_enabled=true&client_cert=Zm9v",
                        "&sasl_enabled=true",
                    ] {
                        uris.push(format!("{scheme}://{host}/p?{secret}={CANARY}{extra}"));
                        uris.push(format!("{scheme}://{host}/p?{extra}&{secret}={CANARY}%zz"));
                        uris.push(format!(
                            "{scheme}://u:{CANARY}@{host}/p?{secret}={CANARY}{extra}"
                        ));
                    }
                }
            }
        }
    }
    for (uri, _) in CREATE_ERROR_CASES {
        let sep = if uri.contains('?') { '&' } else { '?' };
        for secret in &secrets {
            uris.push(format!("{uri}{sep}{secret}={CANARY}"));
        }
    }
    for uri in &uris {
        if let Err(e) = parse(uri) {
            checked += 1;
            assert!(!e.message.contains(CANARY), "{uri}\n  leaks in: {}", e.message);
            assert!(!e.hint.unwrap_or_default().contains(CANARY));
        }
        let shown = redact(uri);
        assert!(!shown.contains(CANARY), "{uri}\n  leaks in redact: {shown}");
        if let Ok(info) = info(uri) {
            assert!(!info.redacted.contains(CANARY) && !info.host.contains(CANARY), "{uri}");
            for p in &info.params {
                assert!(p.value.as_deref().is_none_or(|v| !v.contains(CANARY)), "{uri}: {p:?}");
            }
        }
        let values = secret_values(uri);
        assert!(
            values.iter().any(|v| v.contains(CANARY)),
            "secret_values misses the canary in {uri}: {values:?}"
        );
    }
    assert!(checked > 1000, "only {checked} errors checked");
}

#[test]
fn secret_set_is_cockroachs_plus_extras() {
    let mut want: Vec<&str> =
        COCKROACH_SECRETS.iter().chain(EXTRA_SECRETS_VS_COCKROACH).copied().collect();
    want.sort_unstable();
    assert_eq!(secret_names(), want);
    // Names are secret in every scheme that declares them, never secret in one and not another.
    for def in REGISTRY {
        for p in def.params {
            assert_eq!(p.secret, want.contains(&p.name), "{} in {}", p.name, def.schemes[0]);
        }
    }
}

#[test]
fn info_hides_secret_values() {
    let got = info("s3://bucket/a/?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            got.scheme.as_str(),
            got.provider.as_str(),
            got.connection_type,
            got.host.as_str(),
            got.path.as_str()
        ),
        ("s3", "s3", ConnectionType::Storage, "bucket", "a")
    );
    assert_eq!(got.redacted, "s3://bucket/a/?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted");
    assert_eq!(
        got.params,
        vec![
            ParamInfo {
                name: "AWS_ACCESS_KEY_ID".into(),
                secret: false,
                value: Some("key".into())
            },
            ParamInfo { name: "AWS_SECRET_ACCESS_KEY".into(), secret: true, value: None },
        ]
    );
    assert_eq!(info("s3://").unwrap_err().message, parse("s3://").unwrap_err().message);
}

#[test]
fn secret_values_for_log_scrubbing() {
    assert_eq!(
        secret_values(
            "postgres://u:p%40ss@h/db?password=a+b&sslmode=require&AWS_SECRET_ACCESS_KEY=x%2Fy"
        ),
        vec!["a+b", "a b", "x%2Fy", "x/y", "p%40ss", "p@ss"]
    );
    assert_eq!(secret_values("s3://a b?CREDENTIALS=abc"), vec!["abc"]);
    assert!(secret_values("nodelocal://1/x?AUTH=implicit").is_empty());
}

#[test]
fn gcpubsub_region_error_has_cockroachs_hint() {
    let e = parse("gcpubsub://project").unwrap_err();
    assert_eq!(
        e.hint.as_deref(),
        Some("Use of gcpubsub without specifying a region requires the WITH unordered option.")
    );
}

#[test]
fn declarations_are_consistent() {
    let mut seen_schemes = Vec::new();
    for def in REGISTRY {
        for scheme in def.schemes {
            assert_eq!(*scheme, scheme.to_ascii_lowercase());
            assert!(!seen_schemes.contains(scheme), "{scheme} registered twice");
            seen_schemes.push(*scheme);
        }
        assert!(
            parse(def.example).is_ok() || def.schemes == ["webhook-http"],
            "{}: {:?}",
            def.example,
            parse(def.example)
        );
        for (i, p) in def.params.iter().enumerate() {
            assert!(
                def.params[..i].iter().all(|q| q.name != p.name),
                "{} declared twice in {}",
                p.name,
                def.schemes[0]
            );
            assert!(!p.doc.is_empty(), "{} has no description", p.name);
            let needs_text = !matches!(p.kind, Kind::Text);
            assert_eq!(
                needs_text,
                !p.invalid.is_empty(),
                "{} in {}: value error text",
                p.name,
                def.schemes[0]
            );
            if let Required::Yes(text) = p.required {
                assert!(!text.is_empty());
            }
            // Storage and KMS parameters are upper case, sink parameters lower case; Pub/Sub
            // shares Google's upper-case credential names.
            let upper = p.name == p.name.to_ascii_uppercase();
            let want_upper = match def.connection_type {
                ConnectionType::Storage if def.check == Check::None => {
                    ["AUTH", "CREDENTIALS", "ASSUME_ROLE"].contains(&p.name)
                }
                ConnectionType::ForeignData => false,
                _ => true,
            };
            assert_eq!(upper, want_upper, "case of {} in {}", p.name, def.schemes[0]);
        }
        if def.unknown == Unknown::PassThrough {
            assert!(
                def.check == Check::None || def.schemes == ["nodelocal"],
                "{} passes parameters through",
                def.schemes[0]
            );
        }
    }
}

#[test]
fn uris_md_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/uris.md");
    let want = docs_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(path, &want).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == want,
        "{path} is out of date with the scheme declarations in plugin/src/uri/; regenerate it with\n    \
         UPDATE_DOCS=1 cargo test -p extconn-plugin uris_md"
    );
}
