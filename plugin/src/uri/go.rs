//! Small pieces of Go's standard library whose exact behaviour (and error text) CockroachDB's
//! messages depend on: `strconv.Quote`, `strconv.ParseBool`, `strconv.Atoi`, `base64.StdEncoding`,
//! `path.Clean`/`path.Join`, `encoding/pem` and `tls.X509KeyPair`'s PEM-level checks.
//!
//! Each is written from the documented behaviour of the Go function, not from its code.

use std::fmt::Write as _;

/// `strconv.Quote` for a string: double quotes, Go escapes for quotes, backslashes and
/// non-printable characters.
pub(crate) fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

/// `strconv.Quote` for arbitrary bytes: an invalid UTF-8 byte prints as `\xNN`.
pub(crate) fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_ascii() => out.push(c),
                c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                    if (c as u32) < 0x10000 {
                        let _ = write!(out, "\\u{:04x}", c as u32);
                    } else {
                        let _ = write!(out, "\\U{:08x}", c as u32);
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// `strconv.ParseBool`, with its error text.
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {}: invalid syntax", quote(s))),
    }
}

/// Whether `strconv.Atoi` accepts `s` (an optionally signed decimal that fits in an `int64`).
pub(crate) fn atoi_ok(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

const B64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_value(c: u8) -> Option<u8> {
    B64_ALPHABET.iter().position(|&a| a == c).and_then(|p| u8::try_from(p).ok())
}

/// `base64.StdEncoding.DecodeString`: padded, newlines ignored, non-strict; an error names the
/// byte offset exactly as Go does (`illegal base64 data at input byte N`).
pub(crate) fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let src = s.as_bytes();
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let (next, bytes, err) = decode_quantum(src, si);
        out.extend_from_slice(&bytes);
        if let Some(offset) = err {
            return Err(format!("illegal base64 data at input byte {offset}"));
        }
        si = next;
    }
    Ok(out)
}

/// One 4-character quantum starting at `si`: the next position, the decoded bytes, and the
/// offset of the first corrupt byte if any.
fn decode_quantum(src: &[u8], mut si: usize) -> (usize, Vec<u8>, Option<usize>) {
    let mut dbuf = [0u8; 4];
    let mut dlen = 4;
    let mut j = 0;
    let mut err = None;
    while j < 4 {
        if si == src.len() {
            if j == 0 {
                return (si, Vec::new(), None);
            }
            // A padded encoding must not end in the middle of a quantum.
            return (si, Vec::new(), Some(si - j));
        }
        let c = src[si];
        si += 1;
        if let Some(v) = b64_value(c) {
            dbuf[j] = v;
            j += 1;
            continue;
        }
        if c == b'\n' || c == b'\r' {
            continue;
        }
        if c != b'=' {
            return (si, Vec::new(), Some(si - 1));
        }
        // Padding: only after two or three characters.
        match j {
            0 | 1 => return (si, Vec::new(), Some(si - 1)),
            2 => {
                while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                    si += 1;
                }
                if si == src.len() {
                    return (si, Vec::new(), Some(src.len()));
                }
                if src[si] != b'=' {
                    return (si, Vec::new(), Some(si - 1));
                }
                si += 1;
            }
            _ => {}
        }
        while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
            si += 1;
        }
        if si < src.len() {
            // Trailing garbage after the padding.
            err = Some(si);
        }
        dlen = j;
        break;
    }
    let val = (u32::from(dbuf[0]) << 18)
        | (u32::from(dbuf[1]) << 12)
        | (u32::from(dbuf[2]) << 6)
        | u32::from(dbuf[3]);
    let bytes = val.to_be_bytes();
    (si, bytes[1..dlen].to_vec(), err)
}

/// `path.Clean`.
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            seg => parts.push(seg),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// `path.Join`: the non-empty elements joined with `/`, cleaned; `""` when all are empty.
pub(crate) fn join(elems: &[&str]) -> String {
    let parts: Vec<&str> = elems.iter().copied().filter(|e| !e.is_empty()).collect();
    if parts.is_empty() {
        return String::new();
    }
    clean(&parts.join("/"))
}

/// The types of the well-formed PEM blocks in `data`, in order (`encoding/pem.Decode` in a loop:
/// malformed blocks are skipped).
pub(crate) fn pem_block_types(data: &[u8]) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let text = String::from_utf8_lossy(data);
    let mut rest: &str = &text;
    let mut types = Vec::new();
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let Some(type_end) = after.find(DASHES) else { break };
        let block_type = &after[..type_end];
        let body_and_rest = &after[type_end + DASHES.len()..];
        if block_type.contains(['\n', '\r']) {
            rest = after;
            continue;
        }
        let end_marker = format!("-----END {block_type}-----");
        let Some(end) = body_and_rest.find(&end_marker) else {
            rest = after;
            continue;
        };
        let body = &body_and_rest[..end];
        // Headers are `Key: value` lines before the base64 body.
        let encoded: String = body
            .lines()
            .filter(|line| !line.contains(':'))
            .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
            .collect();
        if base64_decode(&encoded).is_ok() {
            types.push(block_type.to_owned());
        }
        rest = &body_and_rest[end + end_marker.len()..];
    }
    types
}

fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// The PEM-level checks of `tls.X509KeyPair`, with its error texts. The DER inside the blocks
/// is not parsed here: the host's TLS stack does that when it connects.
pub(crate) fn x509_key_pair(cert: &[u8], key: &[u8]) -> Result<(), String> {
    let cert_types = pem_block_types(cert);
    if !cert_types.iter().any(|t| t == "CERTIFICATE") {
        if cert_types.is_empty() {
            return Err("tls: failed to find any PEM data in certificate input".into());
        }
        if cert_types.len() == 1 && cert_types[0].ends_with("PRIVATE KEY") {
            return Err(
                "tls: failed to find certificate PEM data in certificate input, but did find a \
                 private key; PEM inputs may have been switched"
                    .into(),
            );
        }
        let skipped: Vec<String> = cert_types.into_iter().filter(|t| t != "CERTIFICATE").collect();
        return Err(format!(
            "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping PEM \
             blocks of the following types: {}",
            go_list(&skipped)
        ));
    }
    let mut skipped = Vec::new();
    for t in pem_block_types(key) {
        if t == "PRIVATE KEY" || t.ends_with(" PRIVATE KEY") {
            return Ok(());
        }
        skipped.push(t);
    }
    if skipped.is_empty() {
        return Err("tls: failed to find any PEM data in key input".into());
    }
    if skipped.len() == 1 && skipped[0] == "CERTIFICATE" {
        return Err(
            "tls: found a certificate rather than a key in the PEM for the private key".into()
        );
    }
    Err(format!(
        "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input after \
         skipping PEM blocks of the following types: {}",
        go_list(&skipped)
    ))
}

/// Whether `x509.CertPool.AppendCertsFromPEM` would find a certificate (PEM level only).
pub(crate) fn has_certificate(pem: &[u8]) -> bool {
    pem_block_types(pem).iter().any(|t| t == "CERTIFICATE")
}

/// Checks a decoded Google credentials file the way `google.CredentialsFromJSON` rejects one
/// before any network use. The text never quotes the input.
pub(crate) fn google_credentials(json: &[u8]) -> Result<(), String> {
    const TYPES: &[&str] = &[
        "service_account",
        "authorized_user",
        "external_account",
        "external_account_authorized_user",
        "impersonated_service_account",
        "gdch_service_account",
    ];
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_owned()
        } else {
            format!("credentials are not valid JSON: {e}")
        }
    })?;
    let kind = match &value {
        serde_json::Value::Object(map) => map.get("type"),
        other => {
            let what = match other {
                serde_json::Value::Array(_) => "array",
                serde_json::Value::String(_) => "string",
                serde_json::Value::Number(_) => "number",
                serde_json::Value::Bool(_) => "bool",
                _ => "null",
            };
            if what == "null" {
                return Err("missing 'type' field in credentials".into());
            }
            return Err(format!(
                "json: cannot unmarshal {what} into Go value of type google.credentialsFile"
            ));
        }
    };
    match kind {
        None | Some(serde_json::Value::Null) => Err("missing 'type' field in credentials".into()),
        Some(serde_json::Value::String(t)) if t.is_empty() => Err("missing 'type' field in credentials".into()),
        Some(serde_json::Value::String(t)) if TYPES.contains(&t.as_str()) => Ok(()),
        Some(serde_json::Value::String(t)) => Err(format!("unknown credential type: {}", quote(t))),
        Some(_) => Err(
            "json: cannot unmarshal non-string into Go struct field credentialsFile.type of type string".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_offsets_match_go() {
        for (input, want) in [
            ("", Ok(vec![])),
            ("Zm9v", Ok(b"foo".to_vec())),
            ("Zm9vYg==", Ok(b"foob".to_vec())),
            ("Zm9vYmE=", Ok(b"fooba".to_vec())),
            ("Zm9v\nYmFy", Ok(b"foobar".to_vec())),
            ("!", Err(0)),
            ("Zm9", Err(0)),
            ("Zm9vY", Err(4)),
            ("Zm9v!", Err(4)),
            ("Zm==Zm9v", Err(4)),
            ("Z===", Err(1)),
            ("Zm=", Err(3)),
            ("Zm=x", Err(2)),
            ("abcd", Ok(vec![105, 183, 29])),
        ] {
            let got = base64_decode(input);
            match want {
                Ok(bytes) => assert_eq!(got, Ok(bytes), "{input:?}"),
                Err(at) => {
                    assert_eq!(
                        got,
                        Err(format!("illegal base64 data at input byte {at}")),
                        "{input:?}"
                    )
                }
            }
        }
    }

    #[test]
    fn clean_and_join_match_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("/foo/..", "/"),
            ("/a/./b", "/a/b"),
            ("a//b/", "a/b"),
            ("/../..", "/"),
            ("../a", "../a"),
            ("a/../..", ".."),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
        assert_eq!(join(&["/foo", "/cluster"]), "/foo/cluster");
        assert_eq!(join(&["", ""]), "");
        assert_eq!(join(&["", "/x"]), "/x");
        assert_eq!(join(&["/foo", "../../bar"]), "/bar");
    }

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("\"\\\n\u{1}"), "\"\\\"\\\\\\n\\x01\"");
        assert_eq!(quote("é"), "\"é\"");
        assert_eq!(quote_bytes(b"%\xff"), "\"%\\xff\"");
    }

    #[test]
    fn x509_key_pair_texts() {
        let cert = b"-----BEGIN CERTIFICATE-----\nZm9v\n-----END CERTIFICATE-----\n";
        let key = b"-----BEGIN EC PRIVATE KEY-----\nZm9v\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(x509_key_pair(cert, key), Ok(()));
        assert_eq!(
            x509_key_pair(b"foo", key),
            Err("tls: failed to find any PEM data in certificate input".into())
        );
        assert_eq!(
            x509_key_pair(cert, cert),
            Err("tls: found a certificate rather than a key in the PEM for the private key".into())
        );
        assert_eq!(
            x509_key_pair(cert, b"foo"),
            Err("tls: failed to find any PEM data in key input".into())
        );
    }
}
