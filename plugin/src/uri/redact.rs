//! The display form of a URI (reference §8.2) and the secret set it is driven by.
//!
//! The secret set is the union of the parameters every scheme declares secret, applied to every
//! URI whatever its scheme, as CockroachDB does with its global redacted-parameter registry.

use super::{REGISTRY, UriError, gourl, gourl::GoUrl, limits};

/// The marker that replaces a secret value.
const MARKER: &str = "redacted";

/// Schemes whose path (the key identifier) is redacted too.
const KMS_SCHEMES: &[&str] = &["gcp-kms", "aws-kms", "azure-kms"];

/// Whether a parameter name is secret (case-sensitive), in any scheme.
pub(crate) fn is_secret(name: &str) -> bool {
    // Asked for every query parameter: search a sorted set rather than every declaration,
    // ordered by length first so that most steps compare lengths, not bytes.
    static SECRETS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    SECRETS
        .get_or_init(|| {
            let mut names = secret_names();
            names.sort_unstable_by_key(|s| (s.len(), *s));
            names
        })
        .binary_search_by(|s| s.len().cmp(&name.len()).then_with(|| (*s).cmp(name)))
        .is_ok()
}

/// Every secret parameter name, sorted.
pub(crate) fn secret_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = REGISTRY
        .iter()
        .flat_map(|def| def.params.iter())
        .filter(|p| p.secret)
        .map(|p| p.name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The display form of a parsed URL: password and secret values replaced, the query
/// re-encoded with keys sorted, and for KMS schemes the path replaced by `/redacted`.
pub(crate) fn redact_parsed(mut url: GoUrl, pairs: &[(String, String)]) -> String {
    if let Some(user) = &mut url.user
        && user.password.is_some()
    {
        user.password = Some(MARKER.to_owned());
    }
    let mut redacted: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if is_secret(k) {
            // `url.Values.Set`: one `redacted` value however many were given.
            if !redacted.iter().any(|(seen, _)| seen == k) {
                redacted.push((k, MARKER));
            }
        } else {
            redacted.push((k, v));
        }
    }
    url.raw_query = gourl::encode_query(&mut redacted);
    if KMS_SCHEMES.contains(&url.scheme.as_str()) {
        url.opaque.clear();
        url.fragment.clear();
        url.raw_fragment.clear();
        url.set_path("/redacted".to_owned());
    }
    url.render()
}

/// Parses `uri` far enough to redact it.
pub(crate) fn redact_checked(uri: &str) -> Result<String, UriError> {
    limits(uri)?;
    let url = gourl::parse(uri)?;
    let pairs = gourl::parse_query(&url.raw_query).map_err(|m| gourl::ParseError::new(uri, m))?;
    Ok(redact_parsed(url, &pairs))
}

/// Values of secret parameters and the userinfo password, both decoded and as written, for
/// scrubbing logs. Best effort on URIs that do not parse.
pub(crate) fn secret_values(uri: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: &str| {
        if !v.is_empty() && !out.iter().any(|o| o == v) {
            out.push(v.to_owned());
        }
    };
    let (before_fragment, _) = uri.split_once('#').unwrap_or((uri, ""));
    let (base, query) = before_fragment.split_once('?').unwrap_or((before_fragment, ""));
    for seg in query.split(['&', ';']) {
        let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
        let name = gourl::query_unescape(k).unwrap_or_else(|_| k.to_owned());
        if is_secret(&name) {
            push(v);
            if let Ok(decoded) = gourl::query_unescape(v) {
                push(&decoded);
            }
        }
    }
    // Userinfo password: between the first ':' and the last '@' of the authority.
    if let Some(scheme_end) = base.find("://") {
        let authority = &base[scheme_end + 3..];
        let authority = &authority[..authority.find('/').unwrap_or(authority.len())];
        if let Some(at) = authority.rfind('@')
            && let Some((_, password)) = authority[..at].split_once(':')
        {
            push(password);
            if let Ok(url) = gourl::parse(uri)
                && let Some(p) = url.user.and_then(|u| u.password)
            {
                push(&p);
            }
        }
    }
    out
}
