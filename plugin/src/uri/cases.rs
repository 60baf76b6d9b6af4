//! Conformance tables for the URI rules, public so host tests can run the same rows through the
//! real component. Each error row is (URI, the full message CREATE EXTERNAL CONNECTION prints).

macro_rules! sanitize {
    ($m:literal) => {
        concat!("failed to log and sanitize External Connection: ", $m)
    };
}

macro_rules! details {
    ($m:literal) => {
        concat!("failed to construct External Connection details: ", $m)
    };
    ($w:literal, $m:literal) => {
        concat!("failed to construct External Connection details: ", $w, ": ", $m)
    };
}

macro_rules! s3 {
    ($m:literal) => {
        details!("failed to create s3 external connection", $m)
    };
}
macro_rules! gs {
    ($m:literal) => {
        details!("failed to create gs external connection", $m)
    };
}
macro_rules! azure {
    ($m:literal) => {
        details!("failed to create azure external connection", $m)
    };
}
macro_rules! nodelocal {
    ($m:literal) => {
        details!("failed to create nodelocal external connection", $m)
    };
}
macro_rules! userfile {
    ($m:literal) => {
        details!("failed to create userfile external connection", $m)
    };
}
macro_rules! gcp_kms {
    ($m:literal) => {
        details!("failed to create GCP KMS external connection", $m)
    };
}
macro_rules! aws_kms {
    ($m:literal) => {
        details!("failed to create AWS KMS external connection", $m)
    };
}
macro_rules! azure_kms {
    ($m:literal) => {
        details!("failed to create Azure KMS external connection", $m)
    };
}
macro_rules! sink {
    ($m:literal) => {
        details!("invalid changefeed sink URI", $m)
    };
}

/// Base64 of `{"type":"service_account"}`.
pub const GOOGLE_KEY: &str = "eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=";
/// Base64 of a PEM `CERTIFICATE` block (not a real certificate).
pub const PEM_CERT: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJzekNDQVZtZ0F3SUJBZ0lVCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";
/// Base64 of a PEM `EC PRIVATE KEY` block (not a real key).
pub const PEM_KEY: &str = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUJBQQotLS0tLUVORCBFQyBQUklWQVRFIEtFWS0tLS0tCg==";

/// URIs CREATE EXTERNAL CONNECTION refuses, with the full message (SQLSTATE 22023).
pub const CREATE_ERROR_CASES: &[(&str, &str)] = &[
    // URL syntax (reference §4.1 step 4).
    ("s3://a b", sanitize!(r#"parse "s3://a b": invalid character " " in host name"#)),
    ("s3://bucket/%zz", sanitize!(r#"parse "s3://bucket/%zz": invalid URL escape "%zz""#)),
    ("://bucket", sanitize!(r#"parse "://bucket": missing protocol scheme"#)),
    (
        "s3://bucket:port/x",
        sanitize!(r#"parse "s3://bucket:port/x": invalid port ":port" after host"#),
    ),
    ("s3://[::1/x", sanitize!(r#"parse "s3://[::1/x": missing ']' in host"#)),
    (
        "nodelocal://1/a\u{1}b",
        sanitize!(r#"parse "nodelocal://1/a\x01b": net/url: invalid control character in URL"#),
    ),
    ("s3://b?AWS_SECRET_ACCESS_KEY=%zz", sanitize!(r#"parse "s3://b": invalid URL escape "%zz""#)),
    (
        "s3://b?AUTH=implicit;x=y",
        sanitize!(r#"parse "s3://b": invalid semicolon separator in query"#),
    ),
    (
        "postgres://u:pa ss@h/db",
        sanitize!(r#"parse "postgres://u:xxxxx@h/db": net/url: invalid userinfo"#),
    ),
    (
        "nodelocal://1/%FF",
        sanitize!(
            r#"parse "nodelocal://1/%FF": percent-encoded bytes in the path are not valid UTF-8"#
        ),
    ),
    // Unregistered schemes (§2.1).
    (
        "external://foo",
        details!("no parseAndValidateFn found for external connection provider external"),
    ),
    ("null://", details!("no parseAndValidateFn found for external connection provider null")),
    (
        "experimental-sql://db",
        details!("no parseAndValidateFn found for external connection provider experimental-sql"),
    ),
    (
        "workload:///csv/bank/bank",
        details!("no parseAndValidateFn found for external connection provider workload"),
    ),
    (
        "aws:///key?AUTH=implicit",
        details!("no parseAndValidateFn found for external connection provider aws"),
    ),
    (
        "ftp://host/file",
        details!("no parseAndValidateFn found for external connection provider ftp"),
    ),
    ("just-a-path", details!("no parseAndValidateFn found for external connection provider ")),
    // s3 (§2.2, §7).
    ("s3:///path?AUTH=implicit", s3!("empty host component; s3 URI must specify a target bucket")),
    ("s3://bucket?B=1&A=2&AUTH=implicit", s3!("unknown S3 query parameters: A, B")),
    ("s3://bucket?auth=implicit", s3!("unknown S3 query parameters: auth")),
    (
        "s3://bucket?AUTH=implicit&partition_format=daily",
        s3!("unknown S3 query parameters: partition_format"),
    ),
    ("s3://bucket", s3!("AUTH is set to 'specified', but AWS_ACCESS_KEY_ID is not set")),
    (
        "s3://bucket?AUTH=specified&AWS_ACCESS_KEY_ID=key",
        s3!("AUTH is set to 'specified', but AWS_SECRET_ACCESS_KEY is not set"),
    ),
    ("s3://bucket?AUTH=IMPLICIT", s3!("unsupported value IMPLICIT for AUTH")),
    (
        "s3://bucket?AUTH=implicit&AWS_USE_PATH_STYLE=x",
        s3!(
            r#"cannot parse AWS_USE_PATH_STYLE as bool: strconv.ParseBool: parsing "x": invalid syntax"#
        ),
    ),
    (
        "s3://bucket?AUTH=implicit&AWS_SERVER_ENC_MODE=aes256",
        s3!(
            "unsupported server encryption mode aes256. Supported values are `aws:kms` and `AES256`."
        ),
    ),
    (
        "s3://bucket?AUTH=implicit&AWS_SERVER_ENC_MODE=aws:kms",
        s3!("AWS_SERVER_KMS_ID param must be set when using aws:kms server side encryption mode."),
    ),
    (
        "s3://bucket?AUTH=implicit&AUTH=implicit",
        s3!("query parameter AUTH is given more than once"),
    ),
    // gs.
    ("gs://bucket?AUTH=implicit&FOO=1", gs!("unknown GS query parameters: FOO")),
    ("gs://bucket", gs!(r#"CREDENTIALS or BEARER_TOKEN must be set if "AUTH" is "specified""#)),
    (
        "gs://bucket?AUTH=specified&CREDENTIALS=!",
        gs!("error getting credentials from CREDENTIALS: illegal base64 data at input byte 0"),
    ),
    (
        "gs://bucket?CREDENTIALS=Zm9vY",
        gs!("error getting credentials from CREDENTIALS: illegal base64 data at input byte 4"),
    ),
    (
        "gs://bucket?CREDENTIALS=eyJ4IjoxfQ==",
        gs!("error getting credentials from CREDENTIALS: missing 'type' field in credentials"),
    ),
    (
        "gs://bucket?CREDENTIALS=eyJ0eXBlIjoiYm9ndXMifQ==",
        gs!(r#"error getting credentials from CREDENTIALS: unknown credential type: "bogus""#),
    ),
    ("gs://bucket?AUTH=Implicit", gs!("unsupported value Implicit for AUTH")),
    // azure.
    (
        "azure-blob://container?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=a2V5&foo=bar",
        azure!("unknown azure query parameters: foo"),
    ),
    (
        "azure://container?AZURE_ACCOUNT_KEY=a2V5",
        azure!(r#"azure uri missing "AZURE_ACCOUNT_NAME" parameter"#),
    ),
    (
        "azure-storage://container?AZURE_ACCOUNT_NAME=a",
        azure!(
            r#"explicit azure uri requires exactly one authentication method: "AZURE_ACCOUNT_KEY" OR all three of "AZURE_TENANT_ID", "AZURE_CLIENT_ID", and "AZURE_CLIENT_SECRET""#
        ),
    ),
    (
        "azure://container?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=a2V5&AZURE_TENANT_ID=t",
        azure!(
            r#"explicit azure uri requires exactly one authentication method: "AZURE_ACCOUNT_KEY" OR all three of "AZURE_TENANT_ID", "AZURE_CLIENT_ID", and "AZURE_CLIENT_SECRET""#
        ),
    ),
    (
        "azure://container?AUTH=implicit&AZURE_ACCOUNT_NAME=a&AZURE_CLIENT_ID=i&AZURE_ACCOUNT_KEY=a2V5",
        azure!("implicit azure auth does not support uri param AZURE_ACCOUNT_KEY, AZURE_CLIENT_ID"),
    ),
    (
        "azure://container?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=a2V5&AZURE_ENVIRONMENT=random-env",
        azure!(
            r#"azure environment: autorest/azure: There is no cloud environment matching the name "RANDOM-ENV""#
        ),
    ),
    (
        "azure://container?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=!!!!",
        azure!(
            "azure shared key credential: decode account key: illegal base64 data at input byte 0"
        ),
    ),
    (
        "azure://container?AZURE_ACCOUNT_NAME=a%20b&AZURE_ACCOUNT_KEY=a2V5",
        azure!(
            r#"azure: account name is not valid: parse "https://a b.blob.core.windows.net": invalid character " " in host name"#
        ),
    ),
    (
        "azure://container?AZURE_ACCOUNT_NAME=a&AZURE_TENANT_ID=t/1&AZURE_CLIENT_ID=i&AZURE_CLIENT_SECRET=s",
        azure!(
            "azure client secret credential: invalid tenantID. You can locate your tenantID by following the instructions listed here: https://learn.microsoft.com/partner-center/find-ids-and-domain-names"
        ),
    ),
    ("azure://container?AUTH=none&AZURE_ACCOUNT_NAME=a", azure!("unsupported value none for AUTH")),
    // nodelocal.
    (
        "nodelocal:///foo",
        nodelocal!(
            "invalid `nodelocal` URI: host component of nodelocal URI must be a node ID (use 'self' to specify each node should access its own local filesystem): nodelocal:///foo"
        ),
    ),
    (
        "nodelocal://a/foo",
        nodelocal!(
            "invalid `nodelocal` URI: host component of nodelocal URI must be a node ID: nodelocal://a/foo"
        ),
    ),
    (
        "nodelocal://a/foo?password=hunter2&x=1",
        nodelocal!(
            "invalid `nodelocal` URI: host component of nodelocal URI must be a node ID: nodelocal://a/foo?password=redacted&x=1"
        ),
    ),
    ("nodelocal://1", nodelocal!("local storage requested but path not provided")),
    // userfile.
    (
        "userfile:///foo/..",
        userfile!(
            "path /foo/.. changes after normalization to /. userfile upload does not permit such path constructs"
        ),
    ),
    (
        "userfile://defaultdb.public.userfiles_root/a/./b",
        userfile!(
            "path /a/./b changes after normalization to /a/b. userfile upload does not permit such path constructs"
        ),
    ),
    ("userfile:///x?AUTH=implicit", userfile!("unknown userfile query parameters: AUTH")),
    // gcp-kms.
    (
        "gcp-kms:///?AUTH=implicit",
        gcp_kms!(
            "path component of the KMS cannot be empty; must contain the Customer Managed Key"
        ),
    ),
    ("gcp-kms:///key?FOO=bar&AUTH=implicit", gcp_kms!("unknown KMS query parameters: FOO")),
    (
        "gcp-kms:///key",
        gcp_kms!(r#"CREDENTIALS or BEARER_TOKEN must be set if "AUTH" is "specified""#),
    ),
    ("gcp-kms:///key?AUTH=foo", gcp_kms!("unsupported value foo for AUTH")),
    (
        "gcp-kms:///key?CREDENTIALS=Zm9",
        gcp_kms!("error getting credentials from CREDENTIALS: illegal base64 data at input byte 0"),
    ),
    // aws-kms.
    ("aws-kms:///arn?AUTH=implicit", aws_kms!("could not find the aws kms region")),
    (
        "aws-kms:///arn?REGION=us-east-1",
        aws_kms!("AUTH is set to 'specified', but AWS_ACCESS_KEY_ID is not set"),
    ),
    (
        "aws-kms:///arn?AUTH=implicit&AWS_REGION=us-east-1",
        aws_kms!("unknown KMS query parameters: AWS_REGION"),
    ),
    (
        "aws-kms:///?AUTH=implicit&REGION=r",
        aws_kms!(
            "path component of the KMS cannot be empty; must contain the Customer Managed Key"
        ),
    ),
    // azure-kms.
    (
        "azure-kms:///?AUTH=implicit",
        azure_kms!(
            "path component of the KMS cannot be empty; must contain the Customer Managed Key"
        ),
    ),
    (
        "azure-kms:///k/v?AZURE_ACCOUNT_KEY=a2V5",
        azure_kms!("azure kms requires explicit auth (RBAC) or implicit auth"),
    ),
    (
        "azure-kms:///k/v?AUTH=implicit&AZURE_VAULT_NAME=v&FOO=1",
        azure_kms!("unknown KMS query parameters: FOO"),
    ),
    (
        "azure-kms:///k/v?AZURE_CLIENT_ID=i",
        azure_kms!(
            "kms URI expected but did not receive: AZURE_VAULT_NAME, AZURE_CLIENT_SECRET, AZURE_TENANT_ID"
        ),
    ),
    (
        "azure-kms:///k/v?AUTH=implicit&AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=i",
        azure_kms!("kms URI does not support: AZURE_CLIENT_ID"),
    ),
    (
        "azure-kms:///k/v?AUTH=implicit&AZURE_VAULT_NAME=v&AZURE_ENVIRONMENT=nope",
        azure_kms!(
            r#"azure kms environment: autorest/azure: There is no cloud environment matching the name "NOPE""#
        ),
    ),
    (
        "azure-kms:///k?AUTH=implicit&AZURE_VAULT_NAME=v",
        azure_kms!("azure kms key must be of form 'id/version'"),
    ),
    // Kafka (Appendix rows 35–65).
    (
        "kafka://nope/?kafka_topic_prefix=foo",
        sink!("unknown kafka sink query parameters: kafka_topic_prefix"),
    ),
    ("kafka://nope/?schema_topic=foo", sink!("schema_topic is not yet supported")),
    (
        "kafka://nope/?tls_enabled=foo",
        sink!(
            r#"param tls_enabled must be a bool: strconv.ParseBool: parsing "foo": invalid syntax"#
        ),
    ),
    (
        "kafka://nope/?tls_enabled=true&insecure_tls_skip_verify=foo",
        sink!(
            r#"param insecure_tls_skip_verify must be a bool: strconv.ParseBool: parsing "foo": invalid syntax"#
        ),
    ),
    (
        "kafka://nope/?ca_cert=!",
        sink!("param ca_cert must be base 64 encoded: illegal base64 data at input byte 0"),
    ),
    ("kafka://nope/?&ca_cert=Zm9v", sink!("ca_cert requires tls_enabled=true")),
    (
        "kafka://nope/?client_cert=!",
        sink!("param client_cert must be base 64 encoded: illegal base64 data at input byte 0"),
    ),
    (
        "kafka://nope/?client_key=!",
        sink!("param client_key must be base 64 encoded: illegal base64 data at input byte 0"),
    ),
    ("kafka://nope/?client_cert=Zm9v", sink!("client_cert requires tls_enabled=true")),
    (
        "kafka://nope/?tls_enabled=true&client_cert=Zm9v",
        sink!("client_cert requires client_key to be set"),
    ),
    (
        "kafka://nope/?tls_enabled=true&client_key=Zm9v",
        sink!("client_key requires client_cert to be set"),
    ),
    (
        "kafka://nope/?tls_enabled=true&client_cert=Zm9v&client_key=Zm9v",
        sink!(
            "invalid client certificate data provided: tls: failed to find any PEM data in certificate input"
        ),
    ),
    (
        "kafka://nope/?sasl_enabled=maybe",
        sink!(
            r#"param sasl_enabled must be a bool: strconv.ParseBool: parsing "maybe": invalid syntax"#
        ),
    ),
    (
        "kafka://nope/?sasl_enabled=true&sasl_handshake=maybe",
        sink!(
            r#"param sasl_handshake must be a bool: strconv.ParseBool: parsing "maybe": invalid syntax"#
        ),
    ),
    (
        "kafka://nope/?sasl_handshake=false",
        sink!("sasl_enabled must be enabled to configure SASL handshake behavior"),
    ),
    (
        "kafka://nope/?sasl_enabled=true",
        sink!("sasl_user must be provided when SASL is enabled using mechanism PLAIN"),
    ),
    (
        "kafka://nope/?sasl_enabled=true&sasl_user=a",
        sink!("sasl_password must be provided when SASL is enabled using mechanism PLAIN"),
    ),
    ("kafka://nope/?sasl_user=a", sink!("sasl_enabled must be enabled if sasl_user is provided")),
    (
        "kafka://nope/?sasl_password=a",
        sink!("sasl_enabled must be enabled if sasl_password is provided"),
    ),
    (
        "kafka://nope/?sasl_mechanism=SCRAM-SHA-256",
        sink!("sasl_enabled must be enabled to configure SASL mechanism"),
    ),
    (
        "kafka://nope/?sasl_enabled=true&sasl_mechanism=unsuppported",
        sink!(
            "param sasl_mechanism must be one of SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, or PLAIN"
        ),
    ),
    (
        "kafka://nope/?sasl_enabled=true&sasl_mechanism=OAUTHBEARER&sasl_client_id=c&sasl_client_secret=Zm9v",
        sink!("sasl_token_url must be provided when SASL is enabled using mechanism OAUTHBEARER"),
    ),
    (
        "kafka://nope/?sasl_enabled=true&sasl_user=a&sasl_password=b&sasl_client_id=c",
        sink!("sasl_client_id is only a valid parameter for sasl_mechanism=OAUTHBEARER"),
    ),
    ("confluent-cloud://nope/", sink!("scheme confluent-cloud requires parameter api_key")),
    (
        "confluent-cloud://nope?api_key=fee",
        sink!("scheme confluent-cloud requires parameter api_secret"),
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar&sasl_enabled=false",
        sink!("unsupported value false for parameter sasl_enabled, please use true instead"),
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar&sasl_mechanism=OAUTHBEARER",
        sink!(
            "unsupported value OAUTHBEARER for parameter sasl_mechanism, please use PLAIN instead"
        ),
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar&sasl_handshake=false",
        sink!("unsupported value false for parameter sasl_handshake, please use true instead"),
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar&tls_enabled=false",
        sink!("unsupported value false for parameter tls_enabled, please use true instead"),
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar&ca_cert=abcd",
        sink!("invalid query parameters [ca_cert] for scheme confluent-cloud"),
    ),
    (
        "azure-event-hub://nope?",
        sink!("scheme azure-event-hub requires parameter shared_access_key_name"),
    ),
    (
        "azure-event-hub://nope?shared_access_key_name=saspolicytpcc",
        sink!("scheme azure-event-hub requires parameter shared_access_key"),
    ),
    (
        "azure-event-hub://nope?shared_access_key_name=saspolicytpcc&shared_access_key=123&entity_path=history",
        sink!("invalid query parameters [entity_path] for scheme azure-event-hub"),
    ),
    (
        "azure-event-hub://nope?shared_access_key_name=p&shared_access_key=123&tls_enabled=false",
        sink!("unsupported value false for parameter tls_enabled, please use true instead"),
    ),
    // Webhook, Pub/Sub.
    ("webhook-http://sink.example.com/changes", sink!("this sink requires webhook-https")),
    (
        "webhook-https://sink.example.com?insecure_tls_skip_verify=yes",
        sink!(
            r#"param insecure_tls_skip_verify must be a bool: strconv.ParseBool: parsing "yes": invalid syntax"#
        ),
    ),
    ("webhook-https://sink.example.com?ca_cert=Zm9v", sink!("failed to parse certificate data")),
    (
        "webhook-https://sink.example.com?client_key=Zm9v",
        sink!("client_key requires client_cert to be set"),
    ),
    ("gcpubsub:///?region=us-east1", sink!("missing project name")),
    ("gcpubsub://project", sink!("region query parameter not found")),
    ("gcpubsub://project?region=us-east1", sink!("missing credentials parameter")),
    (
        "gcpubsub://project?region=us-east1&CREDENTIALS=Zm9v!",
        sink!(
            "decoding credentials json: param CREDENTIALS must be base 64 encoded: illegal base64 data at input byte 4"
        ),
    ),
    (
        "gcpubsub://project?region=us-east1&with_table_name_attribute=2",
        sink!(
            r#"param with_table_name_attribute must be a bool: strconv.ParseBool: parsing "2": invalid syntax"#
        ),
    ),
    // postgres (no wrapper).
    ("postgres://u@host:26257/db?crdb_route=x", details!(r#"unknown crdb_route value "x""#)),
    ("postgresql://u@host/db?crdb_route=", details!(r#"unknown crdb_route value """#)),
    (
        "postgres://u:secret@host/db?sslmode=bogus",
        details!(
            "cannot parse `postgres://u:redacted@host/db?sslmode=bogus`: failed to configure TLS (sslmode is invalid)"
        ),
    ),
];

/// URIs CREATE EXTERNAL CONNECTION accepts: (URI, provider, type, host, path, stored URI).
pub const CREATE_OK_CASES: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("nodelocal://1/foo/bar", "nodelocal", "STORAGE", "1", "foo/bar", "nodelocal://1/foo/bar"),
    ("nodelocal://self/foo/", "nodelocal", "STORAGE", "self", "foo", "nodelocal://self/foo/"),
    (
        "NodeLocal://1/a b?anything=goes",
        "nodelocal",
        "STORAGE",
        "1",
        "a b",
        "nodelocal://1/a%20b?anything=goes",
    ),
    ("userfile:///backups", "userfile", "STORAGE", "", "backups", "userfile:///backups"),
    (
        "userfile://defaultdb.public.f/x?COCKROACH_LOCALITY=default",
        "userfile",
        "STORAGE",
        "defaultdb.public.f",
        "x",
        "userfile://defaultdb.public.f/x?COCKROACH_LOCALITY=default",
    ),
    ("s3://bucket?AUTH=implicit", "s3", "STORAGE", "bucket", "", "s3://bucket?AUTH=implicit"),
    (
        "s3://bucket/a//b/?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=s+x&AWS_USE_PATH_STYLE=1&AWS_SERVER_ENC_MODE=aws:kms&AWS_SERVER_KMS_ID=id",
        "s3",
        "STORAGE",
        "bucket",
        "a/b",
        "s3://bucket/a//b/?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=s+x&AWS_USE_PATH_STYLE=1&AWS_SERVER_ENC_MODE=aws:kms&AWS_SERVER_KMS_ID=id",
    ),
    (
        "s3://bucket?AUTH=implicit&COCKROACH_LOCALITY=region%3Dus-east1",
        "s3",
        "STORAGE",
        "bucket",
        "",
        "s3://bucket?AUTH=implicit&COCKROACH_LOCALITY=region%3Dus-east1",
    ),
    ("gs://bucket/p?AUTH=implicit", "gs", "STORAGE", "bucket", "p", "gs://bucket/p?AUTH=implicit"),
    ("gs://bucket?BEARER_TOKEN=t", "gs", "STORAGE", "bucket", "", "gs://bucket?BEARER_TOKEN=t"),
    (
        "gs://bucket?CREDENTIALS=eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=",
        "gs",
        "STORAGE",
        "bucket",
        "",
        "gs://bucket?CREDENTIALS=eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=",
    ),
    (
        "azure-blob://c/p?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=a2V5",
        "azure_storage",
        "STORAGE",
        "c",
        "p",
        "azure-blob://c/p?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=a2V5",
    ),
    (
        "azure://c?AZURE_ACCOUNT_NAME=a&AUTH=implicit&AZURE_ENVIRONMENT=azureusgovernmentcloud",
        "azure_storage",
        "STORAGE",
        "c",
        "",
        "azure://c?AZURE_ACCOUNT_NAME=a&AUTH=implicit&AZURE_ENVIRONMENT=azureusgovernmentcloud",
    ),
    (
        "azure-storage://c?AZURE_ACCOUNT_NAME=a&AZURE_TENANT_ID=t-1.x&AZURE_CLIENT_ID=i&AZURE_CLIENT_SECRET=s",
        "azure_storage",
        "STORAGE",
        "c",
        "",
        "azure-storage://c?AZURE_ACCOUNT_NAME=a&AZURE_TENANT_ID=t-1.x&AZURE_CLIENT_ID=i&AZURE_CLIENT_SECRET=s",
    ),
    (
        "gcp-kms:///projects/p/locations/l/keyRings/r/cryptoKeys/k?AUTH=implicit",
        "gcp_kms",
        "KMS",
        "",
        "projects/p/locations/l/keyRings/r/cryptoKeys/k",
        "gcp-kms:///projects/p/locations/l/keyRings/r/cryptoKeys/k?AUTH=implicit",
    ),
    (
        "aws-kms:///arn:aws:kms:us-east-1:1:key/k?AUTH=implicit&REGION=us-east-1",
        "aws_kms",
        "KMS",
        "",
        "arn:aws:kms:us-east-1:1:key/k",
        "aws-kms:///arn:aws:kms:us-east-1:1:key/k?AUTH=implicit&REGION=us-east-1",
    ),
    (
        "aws-kms:///k?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=b&AWS_ENDPOINT=http://localhost:5000",
        "aws_kms",
        "KMS",
        "",
        "k",
        "aws-kms:///k?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=b&AWS_ENDPOINT=http://localhost:5000",
    ),
    (
        "azure-kms:///key/v1?AUTH=implicit&AZURE_VAULT_NAME=vault",
        "azure_kms",
        "KMS",
        "",
        "key/v1",
        "azure-kms:///key/v1?AUTH=implicit&AZURE_VAULT_NAME=vault",
    ),
    ("kafka://nope", "kafka", "STORAGE", "nope", "", "kafka://nope"),
    (
        "kafka://nope/?tls_enabled=true&insecure_tls_skip_verify=true&topic_name=foo",
        "kafka",
        "STORAGE",
        "nope",
        "",
        "kafka://nope/?tls_enabled=true&insecure_tls_skip_verify=true&topic_name=foo",
    ),
    (
        "kafka://b1:9092,b2:9092?sasl_enabled=true&sasl_mechanism=SCRAM-SHA-512&sasl_user=u&sasl_password=p",
        "kafka",
        "STORAGE",
        "b1:9092,b2:9092",
        "",
        "kafka://b1:9092,b2:9092?sasl_enabled=true&sasl_mechanism=SCRAM-SHA-512&sasl_user=u&sasl_password=p",
    ),
    (
        "kafka://b:9092?sasl_enabled=true&sasl_mechanism=OAUTHBEARER&sasl_client_id=c&sasl_client_secret=Zm9v&sasl_token_url=https://idp/token&sasl_scopes=a&sasl_scopes=b",
        "kafka",
        "STORAGE",
        "b:9092",
        "",
        "kafka://b:9092?sasl_enabled=true&sasl_mechanism=OAUTHBEARER&sasl_client_id=c&sasl_client_secret=Zm9v&sasl_token_url=https://idp/token&sasl_scopes=a&sasl_scopes=b",
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar",
        "kafka",
        "STORAGE",
        "nope",
        "",
        "confluent-cloud://nope?api_key=fee&api_secret=bar",
    ),
    (
        "confluent-cloud://nope?api_key=fee&api_secret=bar&sasl_mechanism=PLAIN&tls_enabled=true&topic_prefix=foo&sasl_enabled=true&sasl_handshake=true&insecure_tls_skip_verify=true",
        "kafka",
        "STORAGE",
        "nope",
        "",
        "confluent-cloud://nope?api_key=fee&api_secret=bar&sasl_mechanism=PLAIN&tls_enabled=true&topic_prefix=foo&sasl_enabled=true&sasl_handshake=true&insecure_tls_skip_verify=true",
    ),
    (
        "azure-event-hub://nope?shared_access_key_name=fee&shared_access_key=123&topic_prefix=foo",
        "kafka",
        "STORAGE",
        "nope",
        "",
        "azure-event-hub://nope?shared_access_key_name=fee&shared_access_key=123&topic_prefix=foo",
    ),
    (
        "webhook-https://sink.example.com:8443/hook?insecure_tls_skip_verify=true&token=abc",
        "webhookhttps",
        "STORAGE",
        "sink.example.com:8443",
        "hook",
        "webhook-https://sink.example.com:8443/hook?insecure_tls_skip_verify=true&token=abc",
    ),
    (
        "gcpubsub://project?region=us-east1&AUTH=implicit&topic_name=t",
        "gcpubsub",
        "STORAGE",
        "project",
        "",
        "gcpubsub://project?region=us-east1&AUTH=implicit&topic_name=t",
    ),
    (
        "gcpubsub://project?region=us-east1&CREDENTIALS=eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=",
        "gcpubsub",
        "STORAGE",
        "project",
        "",
        "gcpubsub://project?region=us-east1&CREDENTIALS=eyJ0eXBlIjoic2VydmljZV9hY2NvdW50In0=",
    ),
    (
        "http://files.example.com/dir?x=1",
        "http",
        "STORAGE",
        "files.example.com",
        "dir",
        "http://files.example.com/dir?x=1",
    ),
    (
        "file-http://files.example.com/dir",
        "http",
        "STORAGE",
        "files.example.com",
        "dir",
        "file-http://files.example.com/dir",
    ),
    (
        "HTTPS://Registry.Example.com:443/",
        "https",
        "STORAGE",
        "Registry.Example.com:443",
        "",
        "https://Registry.Example.com:443/",
    ),
    (
        "file-https://files.example.com",
        "https",
        "STORAGE",
        "files.example.com",
        "",
        "file-https://files.example.com",
    ),
    (
        "postgres://user:pw@host:26257/defaultdb?sslmode=verify-full&options=-ccluster%3Dsrc",
        "sql",
        "FOREIGNDATA",
        "host:26257",
        "defaultdb",
        "postgres://user:pw@host:26257/defaultdb?sslmode=verify-full&options=-ccluster%3Dsrc",
    ),
    (
        "postgresql://user@host/db?crdb_route=gateway&sslinline=true",
        "sql",
        "FOREIGNDATA",
        "host",
        "db",
        "postgresql://user@host/db?crdb_route=gateway&sslinline=true",
    ),
];

/// (input, SHOW EXTERNAL CONNECTIONS form).
pub const REDACT_CASES: &[(&str, &str)] = &[
    (
        "azure-storage://bucket/path?AZURE_ACCOUNT_NAME=foo&AZURE_ACCOUNT_KEY=Zm9vYmFy&AZURE_ENVIRONMENT=AzureUSGovernmentCloud",
        "azure-storage://bucket/path?AZURE_ACCOUNT_KEY=redacted&AZURE_ACCOUNT_NAME=foo&AZURE_ENVIRONMENT=AzureUSGovernmentCloud",
    ),
    (
        "gs://bucket?BEARER_TOKEN=ya29.token&AUTH=specified",
        "gs://bucket?AUTH=specified&BEARER_TOKEN=redacted",
    ),
    (
        "kafka://broker.address.com:9092?topic_prefix=bar_&tls_enabled=true&ca_cert=LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJzekNDQVZtZ0F3SUJBZ0lVCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K&sasl_enabled=true&sasl_user=fake_user&sasl_password=fake%2Bpassword&sasl_mechanism=SCRAM-SHA-256",
        "kafka://broker.address.com:9092?ca_cert=redacted&sasl_enabled=true&sasl_mechanism=SCRAM-SHA-256&sasl_password=redacted&sasl_user=fake_user&tls_enabled=true&topic_prefix=bar_",
    ),
    (
        "gcp-kms:///projects/p/locations/l/keyRings/r/cryptoKeys/k?BEARER_TOKEN=ya29.token&AUTH=specified",
        "gcp-kms:///redacted?AUTH=specified&BEARER_TOKEN=redacted",
    ),
    ("nodelocal://1/foo", "nodelocal://1/foo"),
    (
        "s3://bucket?AWS_SECRET_ACCESS_KEY=secret&AUTH=specified&AWS_ACCESS_KEY_ID=key",
        "s3://bucket?AUTH=specified&AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted",
    ),
    (
        "s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=secret",
        "s3://bucket?AWS_ACCESS_KEY_ID=key&AWS_SECRET_ACCESS_KEY=redacted",
    ),
    // Userinfo password, extconn's extra secrets, re-escaping, repeated values.
    (
        "postgresql://user:pw@host:26257/db?sslmode=require&password=pw2&options=-ccluster%3Dx",
        "postgresql://user:redacted@host:26257/db?options=-ccluster%3Dx&password=redacted&sslmode=require",
    ),
    (
        "azure-kms:///key/v1?AZURE_CLIENT_SECRET=s&AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=i&AZURE_TENANT_ID=t",
        "azure-kms:///redacted?AZURE_CLIENT_ID=i&AZURE_CLIENT_SECRET=redacted&AZURE_TENANT_ID=t&AZURE_VAULT_NAME=v",
    ),
    (
        "s3://b?x=a+b&y=%7E~&z=%2F&x=c&CREDENTIALS=1&CREDENTIALS=2",
        "s3://b?CREDENTIALS=redacted&x=a+b&x=c&y=~~&z=%2F",
    ),
    ("nodelocal://1/foo?", "nodelocal://1/foo?"),
    ("unknown://host/p?AWS_SECRET_ACCESS_KEY=s", "unknown://host/p?AWS_SECRET_ACCESS_KEY=redacted"),
    (
        "s3://a b?AWS_SECRET_ACCESS_KEY=s",
        r#"failed to redact the URI: parse "s3://a b": invalid character " " in host name"#,
    ),
];

/// (stored URI, subpath, joined URI, joined target path) for `external://name/subpath`.
pub const JOIN_CASES: &[(&str, &str, &str, &str)] = &[
    ("nodelocal://1/foo", "/cluster", "nodelocal://1/foo/cluster", "foo/cluster"),
    ("nodelocal://1/foo", "", "nodelocal://1/foo", "foo"),
    ("nodelocal://1/foo", "/", "nodelocal://1/foo", "foo"),
    ("nodelocal://1/foo/", "/a//b/", "nodelocal://1/foo/a/b", "foo/a/b"),
    ("nodelocal://1/foo", "/a/../b", "nodelocal://1/foo/b", "foo/b"),
    ("nodelocal://1/foo", "/../bar", "nodelocal://1/bar", "bar"),
    ("nodelocal://1/foo", "/../../..", "nodelocal://1/", ""),
    (
        "s3://bucket?AUTH=implicit",
        "/daily/2024",
        "s3://bucket/daily/2024?AUTH=implicit",
        "daily/2024",
    ),
    ("s3://bucket?AUTH=implicit", "", "s3://bucket?AUTH=implicit", ""),
    (
        "s3://bucket/base?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=s",
        "nested",
        "s3://bucket/base/nested?AWS_ACCESS_KEY_ID=k&AWS_SECRET_ACCESS_KEY=s",
        "base/nested",
    ),
    ("userfile:///x", "/a b", "userfile:///x/a%20b", "x/a b"),
];
