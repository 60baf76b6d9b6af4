//! The declaration vocabulary every scheme module uses, and the checking context built from it.
//!
//! A scheme declares its parameters once ([`Param`]): name, case, secret or not, kind,
//! required-ness, the value-error text and a description. Parsing ([`Ctx`]'s typed getters),
//! unknown-parameter errors ([`Ctx::unknown`]), value errors, redaction (the global secret set)
//! and `docs/uris.md` are all derived from that one list.

use super::{Check, go, gourl::GoUrl};
use crate::model::ConnectionType;

/// What a parameter's value may be. It drives the typed getters and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any text.
    Text,
    /// `strconv.ParseBool` syntax (`true`, `false`, `1`, `0`, `t`, `f`, …).
    Bool,
    /// A bool whose only supported value is true.
    True,
    /// One of the listed values, exact case.
    OneOf(&'static [&'static str]),
    /// One of the listed values, any case.
    OneOfAnyCase(&'static [&'static str]),
    /// Standard padded base64.
    Base64,
    /// Standard padded base64 of PEM data.
    Base64Pem,
    /// Standard padded base64 of a Google credentials JSON file.
    Base64Json,
    /// Not supported (any non-empty value is an error).
    Unsupported,
}

/// Whether a parameter must be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Required {
    /// Optional.
    No,
    /// Always; the text is the error when it is missing (`{name}`, `{qname}`, `{scheme}`).
    Yes(&'static str),
    /// Under a condition the scheme's checks enforce; the text describes it for the docs.
    When(&'static str),
}

/// One query parameter of a scheme.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    /// Exact, case-sensitive name.
    pub name: &'static str,
    pub kind: Kind,
    /// Redacted for display and never quoted in errors.
    pub secret: bool,
    pub required: Required,
    /// May be given more than once.
    pub repeatable: bool,
    /// The value error: `{name}`, `{value}`, `{qvalue}` (Go-quoted), `{QVALUE}` (Go-quoted,
    /// upper-cased), `{cause}`, `{one_of}` (`A, B, or C`), `{uri}` (the redacted URI).
    pub invalid: &'static str,
    pub doc: &'static str,
}

impl Param {
    /// An optional text parameter.
    pub(crate) const fn text(name: &'static str, doc: &'static str) -> Self {
        Self {
            name,
            kind: Kind::Text,
            secret: false,
            required: Required::No,
            repeatable: false,
            invalid: "",
            doc,
        }
    }

    /// Marks it secret.
    pub(crate) const fn secret(self) -> Self {
        Self { secret: true, ..self }
    }

    /// Sets its kind and value-error text.
    pub(crate) const fn kind(self, kind: Kind, invalid: &'static str) -> Self {
        Self { kind, invalid, ..self }
    }

    /// Sets its required-ness.
    pub(crate) const fn required(self, required: Required) -> Self {
        Self { required, ..self }
    }

    /// Allows it more than once.
    pub(crate) const fn repeatable(self) -> Self {
        Self { repeatable: true, ..self }
    }
}

/// `COCKROACH_LOCALITY`: consumed by locality-aware BACKUP/RESTORE, tolerated by every storage
/// and KMS parser.
pub(crate) const LOCALITY: Param = Param::text(
    "COCKROACH_LOCALITY",
    "Locality filter for locality-aware BACKUP and RESTORE (`default` or `key=value`); not used to open the location.",
);

/// What happens to parameters a scheme does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// `unknown <label> query parameters: A, B` (names sorted).
    Reject(&'static str),
    /// `invalid query parameters [A B] for scheme <scheme>` (names sorted).
    RejectForScheme,
    /// Passed through untouched (to the server, the driver, or nowhere).
    PassThrough,
}

/// One scheme family member: everything the registry, the checks and the docs need.
#[derive(Debug)]
pub(crate) struct SchemeDef {
    /// Accepted schemes (lower case); the first is the canonical one.
    pub schemes: &'static [&'static str],
    /// CockroachDB's `ConnectionProvider` enum name.
    pub provider: &'static str,
    pub connection_type: ConnectionType,
    pub check: Check,
    /// CockroachDB's per-provider error wrapper (§4.2), if any.
    pub wrapper: Option<&'static str>,
    pub unknown: Unknown,
    pub params: &'static [Param],
    pub title: &'static str,
    pub summary: &'static str,
    pub example: &'static str,
    /// The scheme's checks, in CockroachDB's order.
    pub validate: fn(&Ctx<'_>) -> Result<(), ParamError>,
}

impl SchemeDef {
    pub(crate) fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A provider-level error; the registry adds CockroachDB's wrapper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Parameters the scheme does not know (names sorted; CockroachDB's order is random).
    #[error("unknown {label} query parameters: {}", names.join(", "))]
    Unknown {
        /// `S3`, `GS`, `azure`, `userfile`, `KMS`, `kafka sink`.
        label: &'static str,
        /// The offending names.
        names: Vec<String>,
    },
    /// Confluent Cloud and Azure Event Hub's form of the above.
    #[error("invalid query parameters [{}] for scheme {scheme}", names.join(" "))]
    InvalidForScheme {
        /// The scheme as written.
        scheme: String,
        /// The offending names.
        names: Vec<String>,
    },
    /// A parameter that may appear once appeared more often.
    #[error("query parameter {name} is given more than once")]
    Duplicate {
        /// Its name.
        name: String,
    },
    /// Any other scheme-specific text.
    #[error("{message}")]
    Invalid {
        /// CockroachDB's text.
        message: String,
        /// Advice, if any.
        hint: Option<&'static str>,
    },
}

impl From<String> for ParamError {
    fn from(message: String) -> Self {
        Self::Invalid { message, hint: None }
    }
}

impl From<&str> for ParamError {
    fn from(message: &str) -> Self {
        Self::Invalid { message: message.to_owned(), hint: None }
    }
}

/// `A, B, or C`, as CockroachDB lists accepted values.
pub(crate) fn one_of_list(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

/// The checking context of one URI.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub def: &'static SchemeDef,
    /// The scheme as written (lower-cased).
    pub scheme: &'a str,
    pub url: &'a GoUrl,
    /// Decoded query pairs in order.
    pub pairs: &'a [(String, String)],
}

impl<'a> Ctx<'a> {
    fn declared(&self, name: &str) -> &'static Param {
        const FALLBACK: Param = Param::text("", "");
        debug_assert!(
            self.def.param(name).is_some(),
            "{name} is not declared for {}",
            self.def.schemes[0]
        );
        self.def.param(name).unwrap_or(&FALLBACK)
    }

    /// The first value of any parameter, declared or not (`url.Values.Get`); `""` if absent.
    pub(crate) fn raw(&self, name: &str) -> &'a str {
        self.pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// Whether a parameter is present at all, even empty (`url.Values.Has`).
    pub(crate) fn present(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// The value of a declared parameter; `""` if absent.
    pub(crate) fn get(&self, name: &str) -> &'a str {
        #[cfg(debug_assertions)]
        self.declared(name);
        self.raw(name)
    }

    /// Whether a declared parameter has a non-empty value (CockroachDB treats empty as unset).
    pub(crate) fn has(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }

    /// The redacted URI, for texts that quote the URI.
    pub(crate) fn display(&self) -> String {
        super::redact::redact_parsed(self.url.clone(), self.pairs)
    }

    /// The declared value error for `name` with `value`.
    pub(crate) fn invalid(&self, name: &str, value: &str, cause: &str) -> ParamError {
        let p = self.declared(name);
        let values = match p.kind {
            Kind::OneOf(v) | Kind::OneOfAnyCase(v) => v,
            _ => &[],
        };
        fill(
            p.invalid,
            &Fill {
                name,
                scheme: self.scheme,
                value,
                cause,
                one_of: values,
                uri: &|| self.display(),
            },
        )
        .into()
    }

    /// A missing-value error for a `Required::Yes` parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&'a str, ParamError> {
        let value = self.get(name);
        if !value.is_empty() {
            return Ok(value);
        }
        let template = match self.declared(name).required {
            Required::Yes(text) => text,
            _ => "missing parameter {name}",
        };
        Err(fill(
            template,
            &Fill {
                name,
                scheme: self.scheme,
                value: "",
                cause: "",
                one_of: &[],
                uri: &|| self.display(),
            },
        )
        .into())
    }

    /// A `Bool` parameter: `None` if absent or empty.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ParamError> {
        let value = self.get(name);
        if value.is_empty() {
            return Ok(None);
        }
        go::parse_bool(value).map(Some).map_err(|cause| self.invalid(name, value, &cause))
    }

    /// A `True` parameter: absent, or true.
    pub(crate) fn must_be_true(&self, name: &str) -> Result<(), ParamError> {
        let value = self.get(name);
        if value.is_empty() {
            return Ok(());
        }
        match go::parse_bool(value) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.invalid(name, "false", "")),
            Err(cause) => Err(format!("param {name} must be a bool: {cause}").into()),
        }
    }

    /// A `OneOf`/`OneOfAnyCase` parameter: `None` if absent or empty; the value as declared.
    pub(crate) fn one_of(&self, name: &str) -> Result<Option<&'static str>, ParamError> {
        let value = self.get(name);
        if value.is_empty() {
            return Ok(None);
        }
        let found = match self.declared(name).kind {
            Kind::OneOf(values) => values.iter().find(|v| **v == value),
            Kind::OneOfAnyCase(values) => values.iter().find(|v| v.eq_ignore_ascii_case(value)),
            _ => None,
        };
        found.copied().map(Some).ok_or_else(|| self.invalid(name, value, ""))
    }

    /// A base64 parameter: `None` if absent or empty.
    pub(crate) fn base64(&self, name: &str) -> Result<Option<Vec<u8>>, ParamError> {
        let value = self.get(name);
        if value.is_empty() {
            return Ok(None);
        }
        // Never quote the value: base64 parameters are usually secrets.
        go::base64_decode(value).map(Some).map_err(|cause| self.invalid(name, "", &cause))
    }

    /// Parameters that may appear once but appear more often.
    pub(crate) fn duplicates(&self) -> Result<(), ParamError> {
        for (i, (name, _)) in self.pairs.iter().enumerate() {
            let once = self.def.param(name).is_some_and(|p| !p.repeatable);
            if once && self.pairs[..i].iter().any(|(k, _)| k == name) {
                return Err(ParamError::Duplicate { name: name.clone() });
            }
        }
        Ok(())
    }

    /// The unknown-parameter check: everything not declared, plus `unconsumed` (declared
    /// parameters this particular configuration does not use).
    pub(crate) fn unknown(&self, unconsumed: &[&str]) -> Result<(), ParamError> {
        let mut names: Vec<String> = self
            .pairs
            .iter()
            .map(|(k, _)| k)
            .filter(|k| self.def.param(k).is_none() || unconsumed.contains(&k.as_str()))
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Ok(());
        }
        match self.def.unknown {
            Unknown::Reject(label) => Err(ParamError::Unknown { label, names }),
            Unknown::RejectForScheme => {
                Err(ParamError::InvalidForScheme { scheme: self.scheme.to_owned(), names })
            }
            Unknown::PassThrough => Ok(()),
        }
    }
}

struct Fill<'a> {
    name: &'a str,
    scheme: &'a str,
    value: &'a str,
    cause: &'a str,
    one_of: &'a [&'a str],
    uri: &'a dyn Fn() -> String,
}

/// Expands a template in one pass, so a value can never inject a placeholder.
fn fill(template: &str, f: &Fill<'_>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match &after[..end] {
            "name" => out.push_str(f.name),
            "qname" => out.push_str(&go::quote(f.name)),
            "scheme" => out.push_str(f.scheme),
            "value" => out.push_str(f.value),
            "qvalue" => out.push_str(&go::quote(f.value)),
            "QVALUE" => out.push_str(&go::quote(&f.value.to_uppercase())),
            "cause" => out.push_str(f.cause),
            "one_of" => out.push_str(&one_of_list(f.one_of)),
            "uri" => out.push_str(&(f.uri)()),
            other => {
                out.push('{');
                out.push_str(other);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Templates shared by several families.
pub(crate) mod texts {
    /// Storage and KMS: `AUTH` outside its values.
    pub(crate) const UNSUPPORTED_VALUE: &str = "unsupported value {value} for {name}";
    /// Changefeed sinks: a bad bool.
    pub(crate) const SINK_BOOL: &str = "param {name} must be a bool: {cause}";
    /// Changefeed sinks: bad base64.
    pub(crate) const SINK_BASE64: &str = "param {name} must be base 64 encoded: {cause}";
    /// Confluent Cloud and Azure Event Hub: a fixed value.
    pub(crate) const PLEASE_USE_TRUE: &str =
        "unsupported value {value} for parameter {name}, please use true instead";
    /// Confluent Cloud and Azure Event Hub: a missing parameter.
    pub(crate) const SCHEME_REQUIRES: &str = "scheme {scheme} requires parameter {name}";
}
