//! JSON written as CockroachDB's `util/json` package formats it (`Format`), which changefeed
//! messages use: object keys sorted by their bytes (a CockroachDB JSON object is a sorted
//! list), `", "` between elements and `": "` after keys, strings escaped as Go's
//! `encoding/json` escapes them without HTML escaping (`\u00XX` for control characters other
//! than `\n`, `\r`, `\t`; non-ASCII written as is; invalid UTF-8 as `\ufffd`), and numbers as
//! `apd` decimals print (`1.5`, `1E+2`). serde_json differs on all of these, hence this.

use super::Datum;

/// A JSON value to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    /// A number already in its final text.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Written with its keys sorted, whatever the order here.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON of one SQLite value, as CockroachDB's `tree.AsJSON` gives it for the
    /// matching CockroachDB type: INT → number, FLOAT → number (non-finite as a string),
    /// STRING → string, BYTES → the string `\x` followed by lower-case hex, NULL → null.
    pub(crate) fn from_datum(datum: &Datum) -> Json {
        match datum {
            Datum::Null => Json::Null,
            Datum::Integer(i) => Json::Number(i.to_string()),
            Datum::Real(r) if r.is_finite() => Json::Number(float_text(*r)),
            Datum::Real(r) => Json::String(if *r > 0.0 { "Infinity" } else { "-Infinity" }.into()),
            Datum::Text(t) => Json::String(t.clone()),
            Datum::Blob(b) => {
                let mut s = String::with_capacity(2 + 2 * b.len());
                s.push_str("\\x");
                for byte in b {
                    s.push_str(&format!("{byte:02x}"));
                }
                Json::String(s)
            }
        }
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Number(n) => out.extend_from_slice(n.as_bytes()),
            Json::String(s) => write_string(out, s.as_bytes()),
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Json::Object(entries) => {
                let mut sorted: Vec<&(String, Json)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                out.push(b'{');
                for (i, (key, value)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    write_string(out, key.as_bytes());
                    out.extend_from_slice(b": ");
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

/// Go's `encoding/json` string escaping without `SetEscapeHTML`, as CockroachDB copied it.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0..0x20 => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// A finite float as CockroachDB writes a FLOAT in JSON: `apd.Decimal.SetFloat64` (the
/// shortest digits that round-trip, `strconv.FormatFloat(f, 'E', -1, 64)`) printed by
/// `Decimal.String`, the General Decimal Arithmetic to-scientific-string: plain notation when
/// the exponent is at most 0 and the adjusted exponent at least -6, else `d.dddE±n`.
pub(crate) fn float_text(f: f64) -> String {
    // Rust's `{:e}` is also the shortest round-trip form: `-1.5e-7`, `1e2`, `0e0`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let adjusted: i64 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i64;
    let exponent = adjusted - (n - 1);
    let body = if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            digits
        } else if n > -exponent {
            let point = (n + exponent) as usize;
            format!("{}.{}", &digits[..point], &digits[point..])
        } else {
            format!("0.{}{digits}", "0".repeat((-exponent - n) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if adjusted >= 0 { "+" } else { "-" };
        format!("{first}{fraction}E{exp_sign}{}", adjusted.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(float_text(*f), *want, "float {f:?}");
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
            let mut out = Vec::new();
            write_string(&mut out, input);
            assert_eq!(String::from_utf8(out).unwrap(), *want, "input {input:?}");
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
            assert_eq!(String::from_utf8(Json::from_datum(&datum).to_bytes()).unwrap(), want);
        }
    }

    #[test]
    fn objects_sort_keys_by_bytes() {
        let object = Json::Object(vec![
            ("b".into(), Json::Null),
            ("__crdb__".into(), Json::Array(vec![Json::Number("1".into()), Json::Null])),
            ("B".into(), Json::String("v".into())),
            ("a".into(), Json::Object(vec![])),
        ]);
        assert_eq!(
            String::from_utf8(object.to_bytes()).unwrap(),
            r#"{"B": "v", "__crdb__": [1, null], "a": {}, "b": null}"#
        );
    }
}
