//! `postgres://user:password@host:port/db` (also `postgresql://`): a source cluster for
//! physical and logical replication (type FOREIGNDATA). libpq parameters pass through.

use super::Check;
use super::params::{Ctx, Kind, Param, ParamError, SchemeDef, Unknown};
use crate::model::ConnectionType;

pub(crate) const POSTGRES: SchemeDef = SchemeDef {
    schemes: &["postgres", "postgresql"],
    provider: "sql",
    connection_type: ConnectionType::ForeignData,
    check: Check::None,
    wrapper: None,
    unknown: Unknown::PassThrough,
    params: &[
        Param::text("sslmode", "libpq TLS mode; default `prefer`.").kind(
            Kind::OneOf(&["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
            "cannot parse `{uri}`: failed to configure TLS (sslmode is invalid)",
        ),
        Param::text(
            "sslrootcert",
            "CA certificate: a file path, or the PEM itself with `sslinline=true`.",
        ),
        Param::text(
            "sslcert",
            "Client certificate: a file path, or the PEM itself with `sslinline=true`.",
        ),
        Param::text("sslkey", "Client key: a file path, or the PEM itself with `sslinline=true`.")
            .secret(),
        Param::text(
            "sslinline",
            "`true`: `sslrootcert`, `sslcert` and `sslkey` hold PEM data, not paths.",
        )
        .secret(),
        Param::text("password", "Password (alternative to the one in the userinfo).").secret(),
        Param::text("options", "Session options, e.g. `-ccluster=<virtual cluster>`."),
        Param::text("application_name", "Application name reported to the source."),
        Param::text(
            "crdb_route",
            "How replication streams reach the source: `node` (default) or `gateway`.",
        )
        .kind(Kind::OneOf(&["node", "gateway"]), "unknown {name} value {qvalue}"),
    ],
    title: "PostgreSQL wire protocol (replication source)",
    summary: "A CockroachDB cluster to replicate from. The userinfo password is redacted for display; \
              other libpq parameters are passed to the driver.",
    example: "postgresql://replicator:secret@source.example.com:26257/defaultdb?sslmode=verify-full",
    validate,
};

fn validate(c: &Ctx<'_>) -> Result<(), ParamError> {
    // An empty crdb_route is an error too: CockroachDB tests presence, not value.
    if c.present("crdb_route") && c.get("crdb_route").is_empty() {
        return Err(c.invalid("crdb_route", "", ""));
    }
    c.one_of("crdb_route")?;
    c.one_of("sslmode")?;
    Ok(())
}
