//! JSON written as CockroachDB's `util/json` package formats it (`Format`), which changefeed
//! messages use: object keys sorted by their bytes (a CockroachDB JSON object is a sorted
//! list), `", "` between elements and `": "` after keys, strings escaped as Go's
//! `encoding/json` escapes them without HTML escaping (`\u00XX` for control characters other
//! than `\n`, `\r`, `\t`; non-ASCII written as is; invalid UTF-8 as `\ufffd`), and numbers as
//! `apd` decimals print (`1.5`, `1E+2`). serde_json differs on all of these, hence this.
//!
//! Everything is written straight into the message's buffer, with no intermediate values: a
//! changefeed writes tens of thousands of these a second.

use std::io::Write as _;

use super::Datum;

/// Writes the JSON of one SQLite value, as CockroachDB's `tree.AsJSON` gives it for the
/// matching CockroachDB type: INT → number, FLOAT → number (non-finite as a string),
/// STRING → string, BYTES → the string `\x` followed by lower-case hex, NULL → null.
pub(crate) fn write_datum(out: &mut Vec<u8>, datum: &Datum) {
    match datum {
        Datum::Null => out.extend_from_slice(b"null"),
        Datum::Integer(i) => write_integer(out, *i),
        Datum::Real(r) => write_real(out, *r),
        Datum::Text(t) => write_string(out, t.as_bytes()),
        Datum::Blob(b) => write_blob(out, b),
    }
}

pub(crate) fn write_integer(out: &mut Vec<u8>, i: i64) {
    if i < 0 {
        out.push(b'-');
    }
    write_digits(out, i.unsigned_abs(), 1);
}

/// `n` in decimal, zero-padded to at least `width` digits (at most 20), without `fmt`: a
/// changefeed writes a few of these per message.
pub(crate) fn write_digits(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut start = buf.len();
    while n > 0 {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[start.min(buf.len() - width.clamp(1, 20))..]);
}

/// A REAL: a number when finite, else the string `"Infinity"` or `"-Infinity"`.
pub(crate) fn write_real(out: &mut Vec<u8>, r: f64) {
    if r.is_finite() {
        write_float(out, r);
    } else if r > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

/// A BLOB: the string `"\\x…"` of its lower-case hex.
pub(crate) fn write_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(6 + 2 * bytes.len());
    out.extend_from_slice(b"\"\\\\x");
    for byte in bytes {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xf)]);
    }
    out.push(b'"');
}

/// Writes an object of `len` entries with its keys sorted by their bytes (stably, as
/// CockroachDB keeps a duplicate's order): entry `i` has the key `key(i)`, and its value is
/// written by `value(out, i)`.
pub(crate) fn write_object<'k>(
    out: &mut Vec<u8>,
    len: usize,
    key: impl Fn(usize) -> &'k [u8],
    value: impl FnMut(&mut Vec<u8>, usize),
) {
    let name = |out: &mut Vec<u8>, i| write_string(out, key(i));
    // A row has at most 63 columns (and `__crdb__`): its order fits on the stack.
    let mut small = [0u8; 64];
    if let Some(order) = small.get_mut(..len) {
        sort_keys(order, &key);
        write_in_order(out, order.iter().map(|i| usize::from(*i)), name, value);
    } else {
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|a, b| key(*a).cmp(key(*b)));
        write_in_order(out, order.into_iter(), name, value);
    }
}

/// Fills `order` with the indices of its length, sorted (stably) by their keys' bytes: the
/// order [`write_object`] writes them in.
pub(crate) fn sort_keys<'k>(order: &mut [u8], key: impl Fn(usize) -> &'k [u8]) {
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i as u8;
    }
    order.sort_by(|a, b| key(usize::from(*a)).cmp(key(usize::from(*b))));
}

/// Writes an object's entries in `order`: `name(out, i)` writes entry `i`'s key as a JSON
/// string, `value(out, i)` its value.
pub(crate) fn write_in_order(
    out: &mut Vec<u8>,
    order: impl Iterator<Item = usize>,
    mut name: impl FnMut(&mut Vec<u8>, usize),
    mut value: impl FnMut(&mut Vec<u8>, usize),
) {
    out.push(b'{');
    for (n, i) in order.enumerate() {
        if n > 0 {
            out.extend_from_slice(b", ");
        }
        name(out, i);
        out.extend_from_slice(b": ");
        value(out, i);
    }
    out.push(b'}');
}

/// Go's `encoding/json` string escaping without `SetEscapeHTML`, as CockroachDB copied it.
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    if s.is_ascii() {
        write_escaped(out, s);
        out.push(b'"');
        return;
    }
    if let Ok(valid) = std::str::from_utf8(s) {
        write_escaped(out, valid.as_bytes());
        out.push(b'"');
        return;
    }
    for chunk in s.utf8_chunks() {
        write_escaped(out, chunk.valid().as_bytes());
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Valid UTF-8, escaped; runs that need no escape are copied whole.
fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// A finite float as CockroachDB writes a FLOAT in JSON: `apd.Decimal.SetFloat64` (the
/// shortest digits that round-trip, `strconv.FormatFloat(f, 'E', -1, 64)`) printed by
/// `Decimal.String`, the General Decimal Arithmetic to-scientific-string: plain notation when
/// the exponent is at most 0 and the adjusted exponent at least -6, else `d.dddE±n`.
pub(crate) fn write_float(out: &mut Vec<u8>, f: f64) {
    // Rust's `{:e}` is also the shortest round-trip form: `-1.5e-7`, `1e2`, `0e0`. At most
    // 17 digits, a sign, a point and a four-character exponent.
    let mut buf = [0u8; 32];
    let len = {
        let mut cursor = &mut buf[..];
        write!(cursor, "{f:e}").expect("`{:e}` of an f64 fits 32 bytes");
        32 - cursor.len()
    };
    let sci = &buf[..len];
    let e = sci.iter().position(|&b| b == b'e').expect("`{:e}` has an exponent");
    let (mantissa, exp) = (&sci[..e], &sci[e + 1..]);
    let adjusted: i64 = std::str::from_utf8(exp)
        .ok()
        .and_then(|x| x.parse().ok())
        .expect("`{:e}` exponent is an integer");
    let mantissa = match mantissa.strip_prefix(b"-") {
        Some(rest) => {
            out.push(b'-');
            rest
        }
        None => mantissa,
    };
    let mut digit_buf = [0u8; 32];
    let mut n = 0;
    for &c in mantissa.iter().filter(|c| **c != b'.') {
        digit_buf[n] = c;
        n += 1;
    }
    let digits = &digit_buf[..n];
    let n = n as i64;
    let exponent = adjusted - (n - 1);
    if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            out.extend_from_slice(digits);
        } else if n > -exponent {
            let point = (n + exponent) as usize;
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exponent - n) as usize));
            out.extend_from_slice(digits);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.extend_from_slice(first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
        out.push(b'E');
        out.push(if adjusted >= 0 { b'+' } else { b'-' });
        write_integer(out, adjusted.abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_print_as_apd_decimals() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (10.0, "1E+1"),
            (100.0, "1E+2"),
            (123456.0, "123456"),
            (1234560.0, "1.23456E+6"),
            (1234.5, "1234.5"),
            (0.000001, "0.000001"),
            (0.0000001, "1E-7"),
            (0.00000123, "0.00000123"),
            (1.0e21, "1E+21"),
            (std::f64::consts::PI, "3.141592653589793"),
            (f64::MAX, "1.7976931348623157E+308"),
            (5e-324, "5E-324"),
        ];
        for (f, want) in cases {
            assert_eq!(text(|out| write_float(out, *f)), *want, "float {f:?}");
        }
    }

    #[test]
    fn strings_escape_as_cockroachdb() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", r#""plain""#),
            (b"q\"b\\", r#""q\"b\\""#),
            (b"\n\r\t", r#""\n\r\t""#),
            (b"\x08\x0c\x01\x1f", r#""\u0008\u000c\u0001\u001f""#),
            (b"\x7f<>&", "\"\x7f<>&\""),
            ("é\u{2028}😀".as_bytes(), "\"é\u{2028}😀\""),
            (b"a\xffb", r#""a\ufffdb""#),
        ];
        for (input, want) in cases {
            assert_eq!(text(|out| write_string(out, input)), *want, "input {input:?}");
        }
    }

    #[test]
    fn datums_map_to_cockroachdb_json() {
        let cases = [
            (Datum::Null, "null"),
            (Datum::Integer(-9_223_372_036_854_775_808), "-9223372036854775808"),
            (Datum::Real(2.5), "2.5"),
            (Datum::Real(f64::INFINITY), r#""Infinity""#),
            (Datum::Real(f64::NEG_INFINITY), r#""-Infinity""#),
            (Datum::Text("x".into()), r#""x""#),
            (Datum::Blob(vec![0x00, 0xab, 0x10]), r#""\\x00ab10""#),
            (Datum::Blob(vec![]), r#""\\x""#),
        ];
        for (datum, want) in cases {
            assert_eq!(text(|out| write_datum(out, &datum)), want);
        }
    }

    #[test]
    fn objects_sort_keys_by_bytes() {
        let entries: &[(&str, &str)] =
            &[("b", "null"), ("__crdb__", "[1, null]"), ("B", "\"v\""), ("a", "{}"), ("a", "2")];
        let object = text(|out| {
            write_object(
                out,
                entries.len(),
                |i| entries[i].0.as_bytes(),
                |out, i| out.extend(entries[i].1.bytes()),
            )
        });
        assert_eq!(object, r#"{"B": "v", "__crdb__": [1, null], "a": {}, "a": 2, "b": null}"#);
        let many: Vec<String> = (0..70).rev().map(|i| format!("c{i:02}")).collect();
        let object = text(|out| {
            write_object(out, many.len(), |i| many[i].as_bytes(), |out, _| out.push(b'0'))
        });
        let want: Vec<String> = (0..70).map(|i| format!(r#""c{i:02}": 0"#)).collect();
        assert_eq!(object, format!("{{{}}}", want.join(", ")));
    }
}
