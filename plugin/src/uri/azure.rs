//! `azure-blob://container/prefix` (also `azure://`, `azure-storage://`): Azure Blob Storage.

use super::params::{Ctx, Kind, LOCALITY, Param, ParamError, Required, SchemeDef, Unknown, texts};
use super::{Check, gourl};
use crate::model::ConnectionType;

const AUTH: &str = "AUTH";
const ACCOUNT_NAME: &str = "AZURE_ACCOUNT_NAME";
const ACCOUNT_KEY: &str = "AZURE_ACCOUNT_KEY";
pub(super) const ENVIRONMENT: &str = "AZURE_ENVIRONMENT";
pub(super) const CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub(super) const CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub(super) const TENANT_ID: &str = "AZURE_TENANT_ID";

/// Azure clouds by `autorest` name: (name, storage endpoint suffix, key vault DNS suffix).
const CLOUDS: &[(&str, &str, &str)] = &[
    ("AzurePublicCloud", "core.windows.net", "vault.azure.net"),
    ("AzureCloud", "core.windows.net", "vault.azure.net"),
    ("AzureUSGovernmentCloud", "core.usgovcloudapi.net", "vault.usgovcloudapi.net"),
    ("AzureUSGovernment", "core.usgovcloudapi.net", "vault.usgovcloudapi.net"),
    ("AzureChinaCloud", "core.chinacloudapi.cn", "vault.azure.cn"),
    ("AzureGermanCloud", "core.cloudapi.de", "vault.microsoftazure.de"),
];

const CLOUD_NAMES: &[&str] = &[
    "AzurePublicCloud",
    "AzureCloud",
    "AzureUSGovernmentCloud",
    "AzureUSGovernment",
    "AzureChinaCloud",
    "AzureGermanCloud",
];

/// The suffixes of a cloud named in `CLOUD_NAMES`.
pub(super) fn cloud(name: &str) -> (&'static str, &'static str) {
    CLOUDS
        .iter()
        .find(|(n, ..)| *n == name)
        .map_or(("core.windows.net", "vault.azure.net"), |(_, s, v)| (*s, *v))
}

/// `AUTH` of Azure schemes.
pub(super) const AUTH_PARAM: Param = Param::text(
    AUTH,
    "`specified` (default): `AZURE_ACCOUNT_KEY`, or the three `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, \
     `AZURE_CLIENT_SECRET`; `implicit`: the host's credentials.",
)
.kind(Kind::OneOf(&["specified", "implicit"]), texts::UNSUPPORTED_VALUE);

/// `AZURE_ENVIRONMENT` of azure storage; azure-kms has its own error text.
const ENVIRONMENT_PARAM: Param = Param::text(
    ENVIRONMENT,
    "Azure cloud (any case); default `AzurePublicCloud`.",
)
.kind(
    Kind::OneOfAnyCase(CLOUD_NAMES),
    "azure environment: autorest/azure: There is no cloud environment matching the name {QVALUE}",
);

/// `AZURE_ENVIRONMENT` of azure-kms.
pub(super) const KMS_ENVIRONMENT_PARAM: Param = Param {
    invalid: "azure kms environment: autorest/azure: There is no cloud environment matching the name {QVALUE}",
    ..ENVIRONMENT_PARAM
};

/// `AZURE_CLIENT_ID` of Azure schemes.
pub(super) const CLIENT_ID_PARAM: Param =
    Param::text(CLIENT_ID, "Application (client) ID for RBAC authentication.")
        .required(Required::When("RBAC authentication"));

/// `AZURE_CLIENT_SECRET` of Azure schemes (secret in extconn, not in CockroachDB).
pub(super) const CLIENT_SECRET_PARAM: Param =
    Param::text(CLIENT_SECRET, "Client secret for RBAC authentication.")
        .secret()
        .required(Required::When("RBAC authentication"));

/// `AZURE_TENANT_ID` of Azure schemes.
pub(super) const TENANT_ID_PARAM: Param = Param::text(
    TENANT_ID,
    "Directory (tenant) ID for RBAC authentication (letters, digits, `-`, `.`).",
)
.required(Required::When("RBAC authentication"));

pub(crate) const AZURE: SchemeDef = SchemeDef {
    schemes: &["azure-blob", "azure", "azure-storage"],
    provider: "azure_storage",
    connection_type: ConnectionType::Storage,
    check: Check::Storage,
    wrapper: Some("failed to create azure external connection"),
    unknown: Unknown::Reject("azure"),
    params: &[
        AUTH_PARAM,
        Param::text(ACCOUNT_NAME, "Storage account name.")
            .required(Required::Yes("azure uri missing {qname} parameter")),
        Param::text(ACCOUNT_KEY, "Base64 storage account key (shared-key authentication).")
            .secret()
            .kind(Kind::Base64, "azure shared key credential: decode account key: {cause}")
            .required(Required::When("shared-key authentication")),
        ENVIRONMENT_PARAM,
        CLIENT_ID_PARAM,
        CLIENT_SECRET_PARAM,
        TENANT_ID_PARAM,
        LOCALITY,
    ],
    title: "Azure Blob Storage",
    summary: "A container of a storage account, optionally under a prefix. `azure-blob` is the canonical \
              scheme; `azure` and `azure-storage` are accepted aliases. Authenticate with the account key, \
              with a service principal (RBAC), or with `AUTH=implicit`.",
    example: "azure-blob://container/backups?AZURE_ACCOUNT_NAME=account&AZURE_ACCOUNT_KEY=c2VjcmV0a2V5",
    validate,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Legacy,
    Explicit,
    Implicit,
}

/// CockroachDB's `azureAuthMethod`: the account key, when present, selects shared-key auth.
pub(super) fn auth_mode(c: &Ctx<'_>) -> Result<Mode, ParamError> {
    Ok(match c.one_of(AUTH)? {
        Some("implicit") => Mode::Implicit,
        _ if !c.raw(ACCOUNT_KEY).is_empty() => Mode::Legacy,
        _ => Mode::Explicit,
    })
}

/// `azidentity`'s tenant ID rule.
pub(super) fn check_tenant(c: &Ctx<'_>, context: &str) -> Result<(), ParamError> {
    let tenant = c.get(TENANT_ID);
    if !tenant.is_empty()
        && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Ok(());
    }
    Err(format!(
        "{context}: invalid tenantID. You can locate your tenantID by following the instructions listed here: \
         https://learn.microsoft.com/partner-center/find-ids-and-domain-names"
    )
    .into())
}

/// Whether `https://<prefix>.<suffix>` parses, as the Azure clients build their endpoint.
pub(super) fn check_endpoint(prefix: &str, suffix: &str, context: &str) -> Result<(), ParamError> {
    gourl::parse(&format!("https://{prefix}.{suffix}"))
        .map(drop)
        .map_err(|e| format!("{context}: {e}").into())
}

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    let mode = auth_mode(c)?;
    c.unknown(&[])?;
    let account = c.require(ACCOUNT_NAME)?;
    let key = c.has(ACCOUNT_KEY);
    let role = [TENANT_ID, CLIENT_ID, CLIENT_SECRET].map(|p| c.has(p));
    let explicit_error = || {
        ParamError::from(
            r#"explicit azure uri requires exactly one authentication method: "AZURE_ACCOUNT_KEY" OR all three of "AZURE_TENANT_ID", "AZURE_CLIENT_ID", and "AZURE_CLIENT_SECRET""#,
        )
    };
    match mode {
        Mode::Legacy if !key || role.iter().any(|r| *r) => return Err(explicit_error()),
        Mode::Explicit if key || !role.iter().all(|r| *r) => return Err(explicit_error()),
        Mode::Implicit => {
            let given: Vec<&str> = [ACCOUNT_KEY, TENANT_ID, CLIENT_ID, CLIENT_SECRET]
                .into_iter()
                .filter(|p| c.has(p))
                .collect();
            if !given.is_empty() {
                return Err(format!(
                    "implicit azure auth does not support uri param {}",
                    given.join(", ")
                )
                .into());
            }
        }
        _ => {}
    }
    // What constructing the client checks (still no I/O).
    let (storage_suffix, _) = cloud(c.one_of(ENVIRONMENT)?.unwrap_or("AzurePublicCloud"));
    check_endpoint(&format!("{account}.blob"), storage_suffix, "azure: account name is not valid")?;
    match mode {
        Mode::Legacy => {
            c.base64(ACCOUNT_KEY)?;
        }
        Mode::Explicit => check_tenant(c, "azure client secret credential")?,
        Mode::Implicit => {}
    }
    Ok(())
}
