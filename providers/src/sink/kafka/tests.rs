//! The parameter mapping, table-driven: one row per URI, the librdkafka settings it must give.

use super::*;

fn target(uri: &str) -> Target {
    // By hand: `kafka://a:1,b:2` is not a URL the url crate takes.
    let (scheme, rest) = uri.split_once("://").unwrap();
    let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut target = Target::new(scheme, host.trim_end_matches('/'), "");
    target.provider = "kafka".into();
    target.uri = uri.into();
    target.params = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    target
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

#[test]
fn parameters_map_onto_librdkafka() {
    let ca = b64(PEM);
    let secret = b64("CANARY-client-secret");
    let rows: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "kafka://127.0.0.1:9092".into(),
            vec![("bootstrap.servers", "127.0.0.1:9092"), ("security.protocol", "plaintext")],
        ),
        (
            "kafka://a:1,b:2?topic_prefix=p_".into(),
            vec![("bootstrap.servers", "a:1,b:2"), ("security.protocol", "plaintext")],
        ),
        (
            format!("kafka://h:9093?tls_enabled=true&ca_cert={ca}&insecure_tls_skip_verify=true"),
            vec![
                ("security.protocol", "ssl"),
                ("ssl.ca.pem", PEM),
                ("enable.ssl.certificate.verification", "false"),
                ("ssl.endpoint.identification.algorithm", "none"),
            ],
        ),
        (
            format!("kafka://h:9093?tls_enabled=true&client_cert={ca}&client_key={ca}"),
            vec![("ssl.certificate.pem", PEM), ("ssl.key.pem", PEM)],
        ),
        (
            "kafka://h:9092?sasl_enabled=true&sasl_user=u&sasl_password=p".into(),
            vec![
                ("security.protocol", "sasl_plaintext"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
            ],
        ),
        (
            "kafka://h:9092?tls_enabled=T&sasl_enabled=1&sasl_handshake=true&sasl_mechanism=SCRAM-SHA-512&sasl_user=u&sasl_password=p".into(),
            vec![("security.protocol", "sasl_ssl"), ("sasl.mechanism", "SCRAM-SHA-512")],
        ),
        (
            format!(
                "kafka://h:9092?sasl_enabled=true&sasl_mechanism=OAUTHBEARER&sasl_client_id=c\
                 &sasl_client_secret={secret}&sasl_token_url=https://idp/token&sasl_scopes=a&sasl_scopes=b\
                 &sasl_grant_type=client_credentials"
            ),
            vec![
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.oauthbearer.method", "oidc"),
                ("sasl.oauthbearer.client.id", "c"),
                ("sasl.oauthbearer.client.secret", "CANARY-client-secret"),
                ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
                ("sasl.oauthbearer.scope", "a b"),
            ],
        ),
        (
            "confluent-cloud://pkc-1.aws.confluent.cloud:9092?api_key=K&api_secret=S".into(),
            vec![
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "K"),
                ("sasl.password", "S"),
            ],
        ),
        (
            "azure-event-hub://ns.servicebus.windows.net?shared_access_key_name=pol&shared_access_key=KEY".into(),
            vec![
                ("bootstrap.servers", "ns.servicebus.windows.net:9093"),
                ("security.protocol", "sasl_ssl"),
                ("sasl.username", "$ConnectionString"),
                (
                    "sasl.password",
                    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=pol;SharedAccessKey=KEY",
                ),
            ],
        ),
    ];
    for (uri, expected) in rows {
        let settings = settings(&target(&uri)).unwrap_or_else(|e| panic!("{uri}: {e}"));
        for (key, value) in expected {
            assert_eq!(settings.config.get(key), Some(value), "{uri}: {key}");
        }
    }
}

#[test]
fn bad_parameters_are_refused_without_their_values() {
    let rows = [
        (
            "kafka://h?kafka_topic_prefix=x",
            "unknown kafka sink query parameters: kafka_topic_prefix",
        ),
        ("kafka://h?TOPIC_PREFIX=x", "unknown kafka sink query parameters: TOPIC_PREFIX"),
        ("kafka://h?schema_topic=x", "schema_topic is not yet supported"),
        ("kafka://h?tls_enabled=CANARY", "tls_enabled must be a bool"),
        ("kafka://h?ca_cert=Zm9v", "ca_cert requires tls_enabled=true"),
        ("kafka://h?tls_enabled=true&ca_cert=!CANARY", "ca_cert must be base 64 encoded"),
        (
            "kafka://h?tls_enabled=true&client_cert=Zm9v",
            "client_cert requires client_key to be set",
        ),
        ("kafka://h?sasl_enabled=true&sasl_user=u", "sasl_password must be provided"),
        (
            "kafka://h?sasl_enabled=true&sasl_handshake=false&sasl_user=u&sasl_password=CANARY",
            "sasl_handshake =false is not supported",
        ),
        ("kafka://h?sasl_enabled=true&sasl_mechanism=GSSAPI", "sasl_mechanism must be one of"),
        (
            "kafka://h?sasl_enabled=true&sasl_mechanism=OAUTHBEARER&sasl_client_id=c&sasl_client_secret=Q0FOQVJZ&sasl_token_url=https://t&sasl_grant_type=password",
            "sasl_grant_type must be client_credentials",
        ),
        ("confluent-cloud://h?api_key=k", "api_secret must be provided"),
        (
            "confluent-cloud://h?api_key=k&api_secret=CANARY&tls_enabled=false",
            "tls_enabled only true",
        ),
        ("azure-event-hub://h?shared_access_key_name=n", "shared_access_key must be provided"),
    ];
    for (uri, expected) in rows {
        let err = settings(&target(uri)).map(drop).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expected), "{uri}: {message}");
        assert!(!message.contains("CANARY"), "{uri}: {message}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{uri}");
    }
}

#[test]
fn kafka_sink_config_maps_onto_the_producer() {
    type Row = (&'static str, Vec<(&'static str, &'static str)>, Acks);
    let rows: Vec<Row> = vec![
        (
            r#"{"Flush": {"MaxMessages": 1000, "Frequency": "1s"}, "RequiredAcks": "ALL"}"#,
            vec![("batch.num.messages", "1000"), ("linger.ms", "1000")],
            Acks::All,
        ),
        (
            r#"{"flush": {"messages": 10, "bytes": 65536, "frequency": "250ms"}, "requiredacks": "ONE"}"#,
            vec![("batch.num.messages", "10"), ("batch.size", "65536"), ("linger.ms", "250")],
            Acks::One,
        ),
        (
            r#"{"RequiredAcks": "NONE", "Version": "2.7.2", "ClientID": "feed-1", "Compression": "GZIP"}"#,
            vec![
                ("broker.version.fallback", "2.7.2"),
                ("client.id", "feed-1"),
                ("compression.codec", "gzip"),
            ],
            Acks::None,
        ),
    ];
    for (json, expected, acks) in rows {
        let mut config = ClientConfig::new();
        assert_eq!(apply_sink_config("kafka://h", json, &mut config).unwrap(), acks, "{json}");
        for (key, value) in expected {
            assert_eq!(config.get(key), Some(value), "{json}: {key}");
        }
    }
    let bad = [
        ("[]", "must be a JSON object"),
        ("{", "not JSON"),
        (r#"{"Flush": {"Frequency": "soon"}}"#, "is not a duration"),
        (r#"{"Flush": {"MaxMessages": -1}}"#, "must be a positive integer"),
        (r#"{"RequiredAcks": "SOME"}"#, "RequiredAcks must be ALL, ONE or NONE"),
        (r#"{"Retries": 3}"#, "unknown key Retries"),
        (r#"{"Compression": "ZSTD"}"#, "Compression must be"),
    ];
    for (json, expected) in bad {
        let err = apply_sink_config("kafka://h", json, &mut ClientConfig::new()).unwrap_err();
        assert!(err.to_string().contains(expected), "{json}: {err}");
    }
}

#[test]
fn go_durations() {
    let rows = [
        ("0", Some(0)),
        ("1s", Some(1000)),
        ("500ms", Some(500)),
        ("1m30s", Some(90_000)),
        ("1.5h", Some(5_400_000)),
        ("100us", Some(0)),
        ("1", None),
        ("1d", None),
        ("", Some(0)),
    ];
    for (text, ms) in rows {
        assert_eq!(go_duration_ms(text), ms, "{text:?}");
    }
}

#[test]
fn topic_names() {
    let rows = [
        ("kafka://h", "users", "users"),
        ("kafka://h?topic_prefix=crdb_", "users", "crdb_users"),
        ("kafka://h?topic_name=all&topic_prefix=x_", "users", "all"),
        ("kafka://h", "my table", "my_u0020_table"),
        ("kafka://h", "ü.t", "_u00fc_.t"),
    ];
    for (uri, table, topic) in rows {
        let sink = KafkaSink::open(&target(uri), &SinkOptions::default()).unwrap();
        assert_eq!(sink.topic(table), topic, "{uri} {table}");
    }
}

#[test]
fn debug_shows_no_secret() {
    let uri = "kafka://h?sasl_enabled=true&sasl_user=u&sasl_password=CANARY-pw";
    let sink = KafkaSink::open(&target(uri), &SinkOptions::default()).unwrap();
    assert!(!format!("{sink:?}").contains("CANARY"));
    assert!(!format!("{:?}", settings(&target(uri)).unwrap()).contains("CANARY"));
}
