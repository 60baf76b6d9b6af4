//! `gcp-kms:///<key>`, `aws-kms:///<key>`, `azure-kms:///<key>/<version>`: key management
//! services for encrypted backups. The path is the key; everything KMS shares lives here.

use super::params::{Ctx, Kind, LOCALITY, Param, ParamError, Required, SchemeDef, Unknown, texts};
use super::{Check, azure, gs};
use crate::model::ConnectionType;

/// Both KMS texts CockroachDB checks before the parameters.
fn key_path(c: &Ctx<'_>) -> Result<(), ParamError> {
    // CockroachDB only rejects "/"; an empty path names no key either.
    if c.url.path.is_empty() || c.url.path == "/" {
        return Err(
            "path component of the KMS cannot be empty; must contain the Customer Managed Key"
                .into(),
        );
    }
    Ok(())
}

pub(crate) const GCP_KMS: SchemeDef = SchemeDef {
    schemes: &["gcp-kms"],
    provider: "gcp_kms",
    connection_type: ConnectionType::Kms,
    check: Check::Kms,
    wrapper: Some("failed to create GCP KMS external connection"),
    unknown: Unknown::Reject("KMS"),
    params: &[
        gs::AUTH_PARAM,
        gs::CREDENTIALS_PARAM,
        gs::BEARER_TOKEN_PARAM,
        gs::ASSUME_ROLE_PARAM,
        LOCALITY,
    ],
    title: "Google Cloud KMS",
    summary: "A Cloud KMS key; the path is its resource name \
              (`projects/…/locations/…/keyRings/…/cryptoKeys/…`, a trailing `/cryptoKeyVersions/…` is ignored).",
    example: "gcp-kms:///projects/p/locations/global/keyRings/r/cryptoKeys/k?AUTH=implicit",
    validate: validate_gcp,
};

fn validate_gcp(c: &Ctx<'_>) -> Result<(), ParamError> {
    key_path(c)?;
    c.unknown(&[])?;
    gs::credentials(c, "error getting credentials from CREDENTIALS")
}

const AUTH: &str = "AUTH";
const KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET: &str = "AWS_SECRET_ACCESS_KEY";

pub(crate) const AWS_KMS: SchemeDef = SchemeDef {
    schemes: &["aws-kms"],
    provider: "aws_kms",
    connection_type: ConnectionType::Kms,
    check: Check::Kms,
    wrapper: Some("failed to create AWS KMS external connection"),
    unknown: Unknown::Reject("KMS"),
    params: &[
        Param::text(AUTH, "`specified` (default): use the keys in the URI; `implicit`: use the host's credentials.")
            .kind(Kind::OneOf(&["specified", "implicit"]), texts::UNSUPPORTED_VALUE),
        Param::text(KEY_ID, "Access key ID.").required(Required::When("`AUTH=specified` (the default)")),
        Param::text(SECRET, "Secret access key. A space in the decoded value is read as `+`.")
            .secret()
            .required(Required::When("`AUTH=specified` (the default)")),
        Param::text("AWS_SESSION_TOKEN", "Session token of temporary credentials.").secret(),
        Param::text("AWS_ENDPOINT", "Endpoint of a KMS-compatible service."),
        Param::text("REGION", "Region of the key (note: not `AWS_REGION`).")
            .required(Required::When("no `AWS_ENDPOINT` is given")),
        Param::text(
            "ASSUME_ROLE",
            "Role ARN to assume; a comma-separated chain `delegate1,delegate2,role`, each optionally `;external_id=…`.",
        ),
        LOCALITY,
    ],
    title: "AWS KMS",
    summary: "An AWS KMS key; the path is its key ID, alias or ARN.",
    example: "aws-kms:///arn:aws:kms:us-east-1:123456789012:key/abcd?AUTH=implicit&REGION=us-east-1",
    validate: validate_aws,
};

fn validate_aws(c: &Ctx<'_>) -> Result<(), ParamError> {
    key_path(c)?;
    c.unknown(&[])?;
    if c.one_of(AUTH)?.unwrap_or("specified") == "specified" {
        for name in [KEY_ID, SECRET] {
            if !c.has(name) {
                return Err(format!("AUTH is set to 'specified', but {name} is not set").into());
            }
        }
    }
    if !c.has("REGION") && !c.has("AWS_ENDPOINT") {
        return Err("could not find the aws kms region".into());
    }
    Ok(())
}

const VAULT_NAME: &str = "AZURE_VAULT_NAME";

pub(crate) const AZURE_KMS: SchemeDef = SchemeDef {
    schemes: &["azure-kms"],
    provider: "azure_kms",
    connection_type: ConnectionType::Kms,
    check: Check::Kms,
    wrapper: Some("failed to create Azure KMS external connection"),
    unknown: Unknown::Reject("KMS"),
    params: &[
        Param {
            doc: "`specified` (default): RBAC with the three `AZURE_*` IDs; `implicit`: the host's credentials.",
            ..azure::AUTH_PARAM
        },
        Param::text(VAULT_NAME, "Key Vault name.")
            .required(Required::Yes("kms URI expected but did not receive: {name}")),
        azure::CLIENT_ID_PARAM,
        azure::CLIENT_SECRET_PARAM,
        azure::TENANT_ID_PARAM,
        azure::KMS_ENVIRONMENT_PARAM,
        LOCALITY,
    ],
    title: "Azure Key Vault",
    summary: "An Azure Key Vault key; the path is `<key name>/<key version>`. Shared-key authentication \
              (`AZURE_ACCOUNT_KEY`) is not available for KMS.",
    example: "azure-kms:///key/0123abcd?AZURE_VAULT_NAME=vault&AZURE_TENANT_ID=tenant-id&AZURE_CLIENT_ID=client-id&AZURE_CLIENT_SECRET=secret",
    validate: validate_azure,
};

fn validate_azure(c: &Ctx<'_>) -> Result<(), ParamError> {
    key_path(c)?;
    let mode = azure::auth_mode(c)?;
    if mode == azure::Mode::Legacy {
        return Err("azure kms requires explicit auth (RBAC) or implicit auth".into());
    }
    c.unknown(&[])?;
    let role = [azure::CLIENT_ID, azure::CLIENT_SECRET, azure::TENANT_ID];
    let mut missing: Vec<&str> = Vec::new();
    if !c.has(VAULT_NAME) {
        missing.push(VAULT_NAME);
    }
    if mode == azure::Mode::Explicit {
        missing.extend(role.iter().filter(|p| !c.has(p)));
    }
    if !missing.is_empty() {
        return Err(format!("kms URI expected but did not receive: {}", missing.join(", ")).into());
    }
    if mode == azure::Mode::Implicit {
        // CockroachDB prints an empty list here (it joins the wrong slice).
        let extra: Vec<&str> = role.into_iter().filter(|p| c.has(p)).collect();
        if !extra.is_empty() {
            return Err(format!("kms URI does not support: {}", extra.join(", ")).into());
        }
    }
    let (_, vault_suffix) =
        azure::cloud(c.one_of(azure::ENVIRONMENT)?.unwrap_or("AzurePublicCloud"));
    azure::check_endpoint(c.get(VAULT_NAME), vault_suffix, "azure kms vault url")?;
    if mode == azure::Mode::Explicit {
        azure::check_tenant(c, "azure kms client secret credential")?;
    }
    let key = c.url.path.strip_prefix('/').unwrap_or(&c.url.path);
    if key.split('/').count() != 2 {
        return Err("azure kms key must be of form 'id/version'".into());
    }
    Ok(())
}
