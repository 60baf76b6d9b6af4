//! `docs/uris.md`, generated from the scheme declarations.

use std::fmt::Write as _;

use super::params::{Kind, Param, Required, SchemeDef, Unknown};
use super::{Check, MAX_QUERY_PARAMS, MAX_URI_BYTES};

fn check_text(check: Check) -> &'static str {
    match check {
        Check::Storage => {
            "parameters, then write, list and read back `crdb_external_storage_location`"
        }
        Check::Kms => "parameters, then encrypt and decrypt a marker with the key",
        Check::None => "parameters only (no I/O)",
    }
}

fn values_text(kind: Kind) -> String {
    let list =
        |values: &[&str]| values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
    match kind {
        Kind::Text => "any".into(),
        Kind::Bool => "`true`, `false` (also `1`, `0`, `t`, `f`, `TRUE`, `False`, …)".into(),
        Kind::True => "`true`".into(),
        Kind::OneOf(values) => list(values),
        Kind::OneOfAnyCase(values) => format!("{} (any case)", list(values)),
        Kind::Base64 => "standard base64".into(),
        Kind::Base64Pem => "standard base64 of PEM".into(),
        Kind::Base64Json => "standard base64 of JSON".into(),
        Kind::Unsupported => "none".into(),
    }
}

fn required_text(required: Required) -> String {
    match required {
        Required::No => "no".into(),
        Required::Yes(_) => "yes".into(),
        Required::When(condition) => format!("when {condition}"),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn param_row(out: &mut String, p: &Param) {
    let mut doc = p.doc.to_owned();
    if p.repeatable {
        doc.push_str(" May be repeated.");
    }
    let _ = writeln!(
        out,
        "| `{}` | {} | {} | {} | {} |",
        p.name,
        if p.secret { "yes" } else { "" },
        cell(&required_text(p.required)),
        cell(&values_text(p.kind)),
        cell(&doc)
    );
}

fn scheme_list(def: &SchemeDef) -> String {
    def.schemes.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

/// The whole document.
pub(crate) fn markdown(registry: &[&SchemeDef]) -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from the scheme declarations in plugin/src/uri/ by `extconn_plugin::uri::docs_markdown()`.\n     \
         Do not edit: run `UPDATE_DOCS=1 cargo test -p extconn-plugin uris_md` to regenerate. -->\n\n",
    );
    out.push_str("# Connection URIs\n\n");
    out.push_str(
        "Every URI that `CREATE EXTERNAL CONNECTION` (and `ALTER`) accepts, with the parameters each scheme \
         understands. The checks listed run before anything is stored; the error texts are CockroachDB's.\n\n",
    );
    out.push_str("Rules shared by every scheme:\n\n");
    let _ = writeln!(
        out,
        "- The scheme is case-insensitive and stored lower-cased; the rest of the URI is stored as written \
         (the query string byte for byte).\n\
         - Parameter names are case-sensitive: storage and KMS parameters are upper case, changefeed sink \
         parameters lower case. An empty value counts as not given.\n\
         - A parameter is given at most once unless it is marked repeatable.\n\
         - Unknown parameters are listed in name order in the error (CockroachDB lists them in random order).\n\
         - Secret parameters, and a password in the userinfo, show as `redacted` in `SHOW EXTERNAL CONNECTIONS`; \
         the query string is shown re-encoded with its keys sorted, and KMS key paths show as `/redacted`. \
         The secret set is the same for every scheme: {}.\n\
         - A URI longer than {MAX_URI_BYTES} bytes or with more than {MAX_QUERY_PARAMS} query parameters is \
         refused (SQLSTATE 54000).\n",
        super::secret_names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    );
    out.push_str("## Schemes\n\n| scheme | provider | type | CREATE checks |\n|---|---|---|---|\n");
    for def in registry {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            scheme_list(def),
            def.provider,
            def.connection_type.as_str(),
            check_text(def.check)
        );
    }
    for def in registry {
        let _ = write!(out, "\n## {} — {}\n\n{}\n\n", def.title, scheme_list(def), def.summary);
        let _ =
            writeln!(out, "- Provider: `{}`; type: {}", def.provider, def.connection_type.as_str());
        let _ = writeln!(out, "- CREATE checks: {}", check_text(def.check));
        let unknown = match def.unknown {
            Unknown::Reject(label) => format!("refused (`unknown {label} query parameters: …`)"),
            Unknown::RejectForScheme => {
                format!("refused (`invalid query parameters […] for scheme {}`)", def.schemes[0])
            }
            Unknown::PassThrough => "passed through untouched".into(),
        };
        let _ = writeln!(out, "- Other parameters: {unknown}");
        match def.wrapper {
            Some(w) => {
                let _ = writeln!(
                    out,
                    "- Errors read `failed to construct External Connection details: {w}: …`"
                );
            }
            None => {
                out.push_str("- Errors read `failed to construct External Connection details: …`\n")
            }
        }
        let _ = writeln!(out, "- Example: `{}`\n", def.example);
        if def.params.is_empty() {
            out.push_str("No parameters are interpreted.\n");
            continue;
        }
        out.push_str("| parameter | secret | required | accepted values | description |\n|---|---|---|---|---|\n");
        for p in def.params {
            param_row(&mut out, p);
        }
    }
    out
}
