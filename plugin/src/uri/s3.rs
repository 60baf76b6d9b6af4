//! `s3://bucket/prefix`: Amazon S3 and S3-compatible object stores.

use super::Check;
use super::params::{Ctx, Kind, LOCALITY, Param, ParamError, Required, SchemeDef, Unknown, texts};
use crate::model::ConnectionType;

const AUTH: &str = "AUTH";
const KEY_ID: &str = "AWS_ACCESS_KEY_ID";
const SECRET: &str = "AWS_SECRET_ACCESS_KEY";
const PATH_STYLE: &str = "AWS_USE_PATH_STYLE";
const ENC_MODE: &str = "AWS_SERVER_ENC_MODE";
const KMS_ID: &str = "AWS_SERVER_KMS_ID";

pub(crate) const S3: SchemeDef = SchemeDef {
    schemes: &["s3"],
    provider: "s3",
    connection_type: ConnectionType::Storage,
    check: Check::Storage,
    wrapper: Some("failed to create s3 external connection"),
    unknown: Unknown::Reject("S3"),
    params: &[
        Param::text(AUTH, "`specified` (default): use the keys in the URI; `implicit`: use the host's credentials.")
            .kind(Kind::OneOf(&["specified", "implicit"]), texts::UNSUPPORTED_VALUE),
        Param::text(KEY_ID, "Access key ID.").required(Required::When("`AUTH=specified` (the default)")),
        Param::text(SECRET, "Secret access key. A space in the decoded value is read as `+`.")
            .secret()
            .required(Required::When("`AUTH=specified` (the default)")),
        Param::text("AWS_SESSION_TOKEN", "Session token of temporary credentials.").secret(),
        Param::text("AWS_ENDPOINT", "Endpoint of an S3-compatible service, e.g. `http://localhost:9000`."),
        Param::text(PATH_STYLE, "Use path-style addressing (`endpoint/bucket`) instead of virtual hosts.")
            .kind(Kind::Bool, "cannot parse {name} as bool: {cause}"),
        Param::text("AWS_REGION", "Region of the bucket."),
        Param::text(ENC_MODE, "Server-side encryption mode.").kind(
            Kind::OneOf(&["AES256", "aws:kms"]),
            "unsupported server encryption mode {value}. Supported values are `aws:kms` and `AES256`.",
        ),
        Param::text(KMS_ID, "KMS key ID for `AWS_SERVER_ENC_MODE=aws:kms`.")
            .required(Required::When("`AWS_SERVER_ENC_MODE=aws:kms`")),
        Param::text("S3_STORAGE_CLASS", "Storage class of written objects, e.g. `STANDARD_IA`."),
        Param::text(
            "ASSUME_ROLE",
            "Role ARN to assume; a comma-separated chain `delegate1,delegate2,role`, each optionally `;external_id=…`.",
        ),
        LOCALITY,
    ],
    title: "Amazon S3",
    summary: "An S3 bucket, optionally under a key prefix. Parameter names are upper case.",
    example: "s3://bucket/backups?AWS_ACCESS_KEY_ID=AKIA…&AWS_SECRET_ACCESS_KEY=…",
    validate,
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    if c.url.host.is_empty() {
        return Err("empty host component; s3 URI must specify a target bucket".into());
    }
    c.bool(PATH_STYLE)?;
    c.unknown(&[])?;
    if c.one_of(AUTH)?.unwrap_or("specified") == "specified" {
        for name in [KEY_ID, SECRET] {
            if !c.has(name) {
                return Err(format!("AUTH is set to 'specified', but {name} is not set").into());
            }
        }
    }
    if c.one_of(ENC_MODE)? == Some("aws:kms") && !c.has(KMS_ID) {
        return Err(
            "AWS_SERVER_KMS_ID param must be set when using aws:kms server side encryption mode."
                .into(),
        );
    }
    Ok(())
}
