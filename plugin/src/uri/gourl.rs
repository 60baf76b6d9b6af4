//! URL parsing and serialisation with the semantics of Go's `net/url`, which CockroachDB uses
//! for every connection URI: the stored form, the redacted form and the parse errors all depend
//! on it (the WHATWG rules of the `url` crate keep non-special hosts opaque, re-encode paths
//! differently and normalise `http` hosts, so they cannot reproduce CockroachDB's strings).
//!
//! Written from the documented behaviour of `net/url`; one difference: percent-encoded bytes
//! must decode to UTF-8, because every component ends up in a WIT `string`.

use super::go;

/// A URL syntax error: `parse "<url>": <message>`. The URL shown never holds the query, the
/// fragment or a userinfo password, so the text is safe to display.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parse {}: {message}", go::quote(url))]
pub struct ParseError {
    /// The URL as shown in the message (sanitised).
    pub url: String,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(raw: &str, message: impl Into<String>) -> Self {
        Self { url: display_for_error(raw), message: message.into() }
    }
}

/// The part of `raw` an error may show: no fragment, no query, password masked.
pub(crate) fn display_for_error(raw: &str) -> String {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let base = &raw[..end];
    let Some(scheme_end) = base.find("://") else { return base.to_owned() };
    let authority_start = scheme_end + 3;
    let authority_end =
        base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let authority = &base[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else { return base.to_owned() };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else { return base.to_owned() };
    format!(
        "{}{}:xxxxx{}",
        &base[..authority_start],
        &userinfo[..colon],
        &base[authority_start + at..]
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    QueryComponent,
    Fragment,
}

/// Every mode, in declaration order.
const MODES: [Mode; 6] =
    [Mode::Path, Mode::Host, Mode::Zone, Mode::UserPassword, Mode::QueryComponent, Mode::Fragment];

/// [`should_escape_rule`] for every byte and mode, computed at compile time: it runs for each
/// byte escaped or compared, and a table load is cheaper than the branches, in wasm above all.
static SHOULD_ESCAPE: [[bool; 256]; 6] = {
    let modes = MODES;
    let mut table = [[false; 256]; 6];
    let mut m = 0;
    while m < modes.len() {
        let mut c = 0;
        while c < 256 {
            table[modes[m] as usize][c] = should_escape_rule(c as u8, modes[m]);
            c += 1;
        }
        m += 1;
    }
    table
};

fn should_escape(c: u8, mode: Mode) -> bool {
    SHOULD_ESCAPE[mode as usize][usize::from(c)]
}

const fn should_escape_rule(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(mode, Mode::Host | Mode::Zone)
        && matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match c {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match mode {
            Mode::Path => return c == b'?',
            Mode::UserPassword => return matches!(c, b'@' | b'/' | b'?' | b':'),
            Mode::QueryComponent => return true,
            Mode::Fragment => return false,
            Mode::Host | Mode::Zone => {}
        },
        _ => {}
    }
    if matches!(mode, Mode::Fragment) && matches!(c, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

fn unhex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Go's `unescape`, producing bytes; `None` when `s` has nothing to decode (it is its own
/// decoding), so the common case allocates nothing here.
fn unescape_bytes(s: &str, mode: Mode) -> Result<Option<Vec<u8>>, String> {
    // Outside hosts only `%` (and `+` in queries) matter: most components have neither.
    if !matches!(mode, Mode::Host | Mode::Zone)
        && find_byte(s, b'%').is_none()
        && (mode != Mode::QueryComponent || find_byte(s, b'+').is_none())
    {
        return Ok(None);
    }
    let b = s.as_bytes();
    let mut decode = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                decode = true;
                if i + 2 >= b.len()
                    || !b[i + 1].is_ascii_hexdigit()
                    || !b[i + 2].is_ascii_hexdigit()
                {
                    let end = (i + 3).min(b.len());
                    return Err(format!("invalid URL escape {}", go::quote_bytes(&b[i..end])));
                }
                let esc = &b[i..i + 3];
                // In a host, %-encoding is only for non-ASCII bytes (and %25 in IPv6 zones).
                if mode == Mode::Host && unhex(b[i + 1]) < 8 && esc != b"%25" {
                    return Err(format!("invalid URL escape {}", go::quote_bytes(esc)));
                }
                if mode == Mode::Zone {
                    let v = (unhex(b[i + 1]) << 4) | unhex(b[i + 2]);
                    if esc != b"%25" && v != b' ' && should_escape(v, Mode::Host) {
                        return Err(format!("invalid URL escape {}", go::quote_bytes(esc)));
                    }
                }
                i += 3;
            }
            c => {
                decode |= c == b'+' && mode == Mode::QueryComponent;
                if matches!(mode, Mode::Host | Mode::Zone) && c < 0x80 && should_escape(c, mode) {
                    return Err(format!(
                        "invalid character {} in host name",
                        go::quote_bytes(&b[i..=i])
                    ));
                }
                i += 1;
            }
        }
    }
    if !decode {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                out.push((unhex(b[i + 1]) << 4) | unhex(b[i + 2]));
                i += 3;
            }
            b'+' if mode == Mode::QueryComponent => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Some(out))
}

fn unescape(s: &str, mode: Mode, component: &str) -> Result<String, String> {
    match unescape_bytes(s, mode)? {
        None => Ok(s.to_owned()),
        Some(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("percent-encoded bytes in the {component} are not valid UTF-8")),
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn escape(s: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s, mode);
    out
}

/// [`escape`], appended to `out`. Bytes that stay are ASCII (`should_escape` is true for every
/// byte >= 0x80), so runs of them are copied as `&str` slices.
fn escape_into(out: &mut String, s: &str, mode: Mode) {
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = unescaped_prefix(b, mode);
    while i < b.len() {
        if start < i {
            // `b[start..i]` is a run of ASCII, so both ends are char boundaries.
            out.push_str(&s[start..i]);
        }
        let c = b[i];
        if c == b' ' && mode == Mode::QueryComponent {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        }
        start = i + 1;
        i = start + unescaped_prefix(&b[start..], mode);
    }
    out.push_str(&s[start..]);
}

/// How many leading bytes of `b` stay as they are in `mode`, four a step: fewer loop
/// iterations, and so fewer of wasmtime's epoch checks in the component.
fn unescaped_prefix(b: &[u8], mode: Mode) -> usize {
    let table = &SHOULD_ESCAPE[mode as usize];
    let mut quads = b.chunks_exact(4);
    let mut i = 0;
    for q in &mut quads {
        let [a, b, c, d] = [q[0], q[1], q[2], q[3]].map(|x| table[usize::from(x)]);
        if a | b | c | d {
            break;
        }
        i += 4;
    }
    i + b[i..].iter().position(|&x| table[usize::from(x)]).unwrap_or(b.len() - i)
}

/// Whether escaping `s` in `mode` gives exactly `encoded`.
fn escapes_to(s: &str, mode: Mode, encoded: &str) -> bool {
    if s == encoded {
        return unescaped_prefix(s.as_bytes(), mode) == s.len();
    }
    let mut want = encoded.bytes();
    for c in s.bytes() {
        let same = if !should_escape(c, mode) {
            want.next() == Some(c)
        } else if c == b' ' && mode == Mode::QueryComponent {
            want.next() == Some(b'+')
        } else {
            want.next() == Some(b'%')
                && want.next() == Some(HEX[usize::from(c >> 4)])
                && want.next() == Some(HEX[usize::from(c & 15)])
        };
        if !same {
            return false;
        }
    }
    want.next().is_none()
}

fn valid_encoded(s: &str, mode: Mode) -> bool {
    s.bytes().all(|c| {
        matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(c, mode)
    })
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn valid_userinfo(s: &str) -> bool {
    s.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b':'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
                    | b'@'
            )
    })
}

/// `url.QueryUnescape`.
pub(crate) fn query_unescape(s: &str) -> Result<String, String> {
    unescape(s, Mode::QueryComponent, "query")
}

/// `url.ParseQuery`, strict: a malformed pair is an error instead of being dropped (the first
/// error in order).
pub(crate) fn parse_query(raw: &str) -> Result<Vec<(String, String)>, String> {
    // Go refuses a `;` in any segment: in the query at all.
    if find_byte(raw, b';').is_some() {
        return Err("invalid semicolon separator in query".into());
    }
    let mut pairs = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let seg;
        (seg, rest) = split_once_byte(rest, b'&').unwrap_or((rest, ""));
        if seg.is_empty() {
            continue;
        }
        let (k, v) = split_once_byte(seg, b'=').unwrap_or((seg, ""));
        pairs.push((query_unescape(k)?, query_unescape(v)?));
    }
    Ok(pairs)
}

/// `str::split_once` for an ASCII byte, as a plain loop: URIs are short, and in wasm the
/// word-at-a-time `memchr` behind `split_once(char)` costs more than it saves on them.
pub(crate) fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// `str::find` for an ASCII byte, eight bytes a step: in the component every loop iteration
/// also checks wasmtime's epoch deadline, so fewer iterations matter more than natively, and
/// core's `memchr` goes four bytes a step on `wasm32` after an alignment prologue.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    debug_assert!(b.is_ascii());
    let bytes = s.as_bytes();
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let zero = zero_bytes(word ^ (LOW_BITS * u64::from(b)));
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words.remainder().iter().position(|&c| c == b).map(|i| at + i)
}

/// Whether `s` has an ASCII control character (below 0x20, or DEL), eight bytes a step.
fn has_control(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // Bytes below 0x20 (those of 0x80 and above are excluded by `!word`), and DEL.
        let below = word.wrapping_sub(LOW_BITS * 0x20) & !word & HIGH_BITS;
        if below != 0 || zero_bytes(word ^ (LOW_BITS * 0x7f)) != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == 0x7f)
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero. Bits above the lowest one may be false
/// positives (a borrow), so only the lowest is used.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(LOW_BITS) & !word & HIGH_BITS
}

/// `str::rfind` for an ASCII byte, as a plain loop (see [`split_once_byte`]).
pub(crate) fn rfind_byte(s: &str, b: u8) -> Option<usize> {
    debug_assert!(b.is_ascii());
    s.bytes().rposition(|c| c == b)
}

/// `url.Values.Encode`: keys sorted (stable, so one key's values keep their order), each pair
/// query-escaped.
pub(crate) fn encode_query(pairs: &mut [(&str, &str)]) -> String {
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let len = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(len);
    for (k, v) in pairs.iter() {
        if !out.is_empty() {
            out.push('&');
        }
        escape_into(&mut out, k, Mode::QueryComponent);
        out.push('=');
        escape_into(&mut out, v, Mode::QueryComponent);
    }
    out
}

/// Userinfo: a username and an optional password, both decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub username: String,
    pub password: Option<String>,
}

impl UserInfo {
    fn encode_into(&self, out: &mut String) {
        escape_into(out, &self.username, Mode::UserPassword);
        if let Some(p) = &self.password {
            out.push(':');
            escape_into(out, p, Mode::UserPassword);
        }
    }
}

/// A parsed URL, field for field Go's `url.URL`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GoUrl {
    pub scheme: String,
    pub opaque: String,
    pub user: Option<UserInfo>,
    pub host: String,
    pub path: String,
    pub raw_path: String,
    pub omit_host: bool,
    pub force_query: bool,
    pub raw_query: String,
    pub fragment: String,
    pub raw_fragment: String,
}

/// `url.Parse`.
pub(crate) fn parse(raw: &str) -> Result<GoUrl, ParseError> {
    let (u, frag) = split_once_byte(raw, b'#').unwrap_or((raw, ""));
    let mut url = parse_inner(u).map_err(|m| ParseError::new(u, m))?;
    if !frag.is_empty() {
        url.set_fragment(frag).map_err(|m| ParseError::new(raw, m))?;
    }
    Ok(url)
}

fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' => {
                if i == 0 {
                    return Ok(("", raw));
                }
            }
            b':' => {
                if i == 0 {
                    return Err("missing protocol scheme".into());
                }
                return Ok((&raw[..i], &raw[i + 1..]));
            }
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

fn parse_inner(raw: &str) -> Result<GoUrl, String> {
    if has_control(raw) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = GoUrl::default();
    if raw == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, mut rest) = get_scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    if rest.ends_with('?') && rest.bytes().filter(|&b| b == b'?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = split_once_byte(rest, b'?') {
        rest = before;
        url.raw_query = query.to_owned();
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // Rootless paths are opaque (RFC 3986).
            url.opaque = rest.to_owned();
            return Ok(url);
        }
        let segment = split_once_byte(rest, b'/').map_or(rest, |(first, _)| first);
        if find_byte(segment, b':').is_some() {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, path) = match find_byte(authority_and_path, b'/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path, ""),
        };
        let (user, host) = parse_authority(authority)?;
        url.user = user;
        url.host = host;
        rest = path;
    } else if !url.scheme.is_empty() && rest.starts_with('/') {
        url.omit_host = true;
    }
    url.set_raw_path(rest)?;
    Ok(url)
}

fn parse_authority(authority: &str) -> Result<(Option<UserInfo>, String), String> {
    let at = rfind_byte(authority, b'@');
    let host = parse_host(at.map_or(authority, |i| &authority[i + 1..]))?;
    let Some(at) = at else { return Ok((None, host)) };
    let userinfo = &authority[..at];
    if !valid_userinfo(userinfo) {
        return Err("net/url: invalid userinfo".into());
    }
    let user = match split_once_byte(userinfo, b':') {
        None => UserInfo {
            username: unescape(userinfo, Mode::UserPassword, "userinfo")?,
            password: None,
        },
        Some((name, password)) => UserInfo {
            username: unescape(name, Mode::UserPassword, "userinfo")?,
            password: Some(unescape(password, Mode::UserPassword, "userinfo")?),
        },
    };
    Ok((Some(user), host))
}

fn parse_host(host: &str) -> Result<String, String> {
    if host.starts_with('[') {
        let Some(i) = rfind_byte(host, b']') else { return Err("missing ']' in host".into()) };
        let colon_port = &host[i + 1..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go::quote(colon_port)));
        }
        // RFC 6874: %25 introduces a zone identifier, which may use other escapes.
        if let Some(zone) = host[..i].find("%25") {
            let mut out = unescape(&host[..zone], Mode::Host, "host")?;
            out.push_str(&unescape(&host[zone..i], Mode::Zone, "host")?);
            out.push_str(&unescape(&host[i..], Mode::Host, "host")?);
            return Ok(out);
        }
    } else if let Some(i) = rfind_byte(host, b':') {
        let colon_port = &host[i..];
        if !valid_optional_port(colon_port) {
            return Err(format!("invalid port {} after host", go::quote(colon_port)));
        }
    }
    unescape(host, Mode::Host, "host")
}

impl GoUrl {
    /// `setPath`: the decoded path, and the raw form when it is not the default encoding.
    fn set_raw_path(&mut self, p: &str) -> Result<(), String> {
        self.path = unescape(p, Mode::Path, "path")?;
        self.raw_path =
            if escapes_to(&self.path, Mode::Path, p) { String::new() } else { p.to_owned() };
        Ok(())
    }

    /// Replaces the path with a decoded one (Go: assigning `URL.Path`).
    pub(crate) fn set_path(&mut self, path: String) {
        self.path = path;
        self.raw_path.clear();
    }

    fn set_fragment(&mut self, f: &str) -> Result<(), String> {
        self.fragment = unescape(f, Mode::Fragment, "fragment")?;
        self.raw_fragment = if escapes_to(&self.fragment, Mode::Fragment, f) {
            String::new()
        } else {
            f.to_owned()
        };
        Ok(())
    }

    /// `EscapedPath`.
    pub(crate) fn escaped_path(&self) -> String {
        if !self.raw_path.is_empty()
            && valid_encoded(&self.raw_path, Mode::Path)
            && unescape(&self.raw_path, Mode::Path, "path").is_ok_and(|p| p == self.path)
        {
            return self.raw_path.clone();
        }
        if self.path == "*" {
            return "*".into();
        }
        escape(&self.path, Mode::Path)
    }

    fn escaped_fragment(&self) -> String {
        if !self.raw_fragment.is_empty()
            && valid_encoded(&self.raw_fragment, Mode::Fragment)
            && unescape(&self.raw_fragment, Mode::Fragment, "fragment")
                .is_ok_and(|f| f == self.fragment)
        {
            return self.raw_fragment.clone();
        }
        escape(&self.fragment, Mode::Fragment)
    }
}

impl std::fmt::Display for GoUrl {
    /// `URL.String`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl GoUrl {
    /// `URL.String`, built directly (what `Display` writes, without the formatting machinery
    /// and a second copy).
    pub(crate) fn render(&self) -> String {
        let mut buf = String::with_capacity(
            self.scheme.len() + self.host.len() + self.path.len() + self.raw_query.len() + 8,
        );
        if !self.scheme.is_empty() {
            buf.push_str(&self.scheme);
            buf.push(':');
        }
        if !self.opaque.is_empty() {
            buf.push_str(&self.opaque);
        } else {
            let has_authority =
                !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some();
            let host_omitted = self.omit_host && self.host.is_empty() && self.user.is_none();
            if has_authority && !host_omitted {
                if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                    buf.push_str("//");
                }
                if let Some(user) = &self.user {
                    user.encode_into(&mut buf);
                    buf.push('@');
                }
                escape_into(&mut buf, &self.host, Mode::Host);
            }
            let path = self.escaped_path();
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                buf.push('/');
            }
            if buf.is_empty() && path.split('/').next().is_some_and(|seg| seg.contains(':')) {
                buf.push_str("./");
            }
            buf.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            buf.push('?');
            buf.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            buf.push('#');
            buf.push_str(&self.escaped_fragment());
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time scans agree with the obvious loops at every position and length,
    /// with bytes on both sides of every threshold (and non-ASCII ones).
    #[test]
    fn word_scans_match_byte_loops() {
        let alphabet = ["a", "/", "?", "%", "\u{1f}", "\u{7f}", "\u{80}", "é", " ", "~", "\u{0}"];
        for len in 0..40 {
            for seed in 0..alphabet.len() * 3 {
                let s: String = (0..len)
                    .map(|i| alphabet[(i * 7 + seed * 13 + i * i) % alphabet.len()])
                    .collect();
                assert_eq!(has_control(&s), s.bytes().any(|b| b < 0x20 || b == 0x7f), "{s:?}");
                for b in [b'/', b'?', b'%', b'a', b'~'] {
                    assert_eq!(find_byte(&s, b), s.bytes().position(|c| c == b), "{s:?} {b}");
                }
                for mode in MODES {
                    let slow = s.bytes().position(|c| should_escape(c, mode)).unwrap_or(s.len());
                    assert_eq!(unescaped_prefix(s.as_bytes(), mode), slow, "{s:?} {mode:?}");
                }
            }
        }
    }

    fn err(raw: &str) -> String {
        parse(raw).map(|u| u.to_string()).unwrap_err().to_string()
    }

    #[test]
    fn round_trips_like_go() {
        for (input, want) in [
            ("s3://bucket", "s3://bucket"),
            ("S3://bucket/a", "s3://bucket/a"),
            ("gcp-kms:///key", "gcp-kms:///key"),
            ("gcp-kms:/key", "gcp-kms:/key"),
            ("nodelocal://1/foo bar", "nodelocal://1/foo%20bar"),
            ("nodelocal://1/foo(bar)", "nodelocal://1/foo(bar)"),
            ("nodelocal://1/h%C3%A9", "nodelocal://1/h%C3%A9"),
            ("nodelocal://1/hé", "nodelocal://1/h%C3%A9"),
            ("nodelocal://1/%41", "nodelocal://1/%41"),
            ("s3://b?x=a+b&y=%20", "s3://b?x=a+b&y=%20"),
            ("azure-event-hub://nope?", "azure-event-hub://nope?"),
            ("s3://", "s3:"),
            ("s3:bucket", "s3:bucket"),
            ("postgres://u:p%40ss@h:26257/db", "postgres://u:p%40ss@h:26257/db"),
            ("kafka://[::1]:9092", "kafka://[::1]:9092"),
            ("s3://b/p#frag", "s3://b/p#frag"),
            ("foo", "foo"),
        ] {
            assert_eq!(parse(input).map(|u| u.to_string()), Ok(want.to_owned()), "{input:?}");
        }
    }

    #[test]
    fn errors_like_go() {
        assert_eq!(err("s3://a b"), r#"parse "s3://a b": invalid character " " in host name"#);
        assert_eq!(err("://x"), r#"parse "://x": missing protocol scheme"#);
        assert_eq!(err("s3://b/%zz"), r#"parse "s3://b/%zz": invalid URL escape "%zz""#);
        assert_eq!(err("s3://b/%4"), r#"parse "s3://b/%4": invalid URL escape "%4""#);
        assert_eq!(err("s3://b:x/"), r#"parse "s3://b:x/": invalid port ":x" after host"#);
        assert_eq!(err("s3://[::1"), r#"parse "s3://[::1": missing ']' in host"#);
        assert_eq!(err("s3://%41"), r#"parse "s3://%41": invalid URL escape "%41""#);
        assert_eq!(err("1a:b"), r#"parse "1a:b": first path segment in URL cannot contain colon"#);
        assert_eq!(
            err("s3://b/\u{1}"),
            r#"parse "s3://b/\x01": net/url: invalid control character in URL"#
        );
        assert_eq!(
            err("postgres://u:sec ret@h/db?password=x"),
            r#"parse "postgres://u:xxxxx@h/db": net/url: invalid userinfo"#
        );
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            parse_query("&a=1&&b=x+y%21&c"),
            Ok(vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), String::new())
            ])
        );
        assert!(parse_query("a=1;b=2").is_err());
        assert_eq!(encode_query(&mut [("b", "x y"), ("a", "2"), ("a", "1")]), "a=2&a=1&b=x+y");
        assert!(escapes_to("a b/é", Mode::Path, "a%20b/%C3%A9"));
        assert!(!escapes_to("a b", Mode::Path, "a%20b/"));
        assert!(!escapes_to("a b", Mode::Path, "a b"));
        assert_eq!(escape("a:b/c~d_e.f-g", Mode::QueryComponent), "a%3Ab%2Fc~d_e.f-g");
    }
}
