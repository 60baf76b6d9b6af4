//! CHECK EXTERNAL CONNECTION (reference §1.6, §4.6): options, privileges and the resolved
//! target. The host runs the write/read/delete rounds the plan describes.
//!
//! The plan's `detail` is `{"concurrently": n, "transfer_bytes": n, "time_micros": n}`:
//! `concurrently` workers (at least 1), each writing, reading back and deleting objects of
//! `transfer_bytes` bytes (32 MiB when not given or 0) until `time_micros` have passed (one
//! round when 0 or negative).

use super::privilege;
use super::{Ctx, Halt, Run, answer, grants_on, principal_from, resolve};
use crate::error::{Error, ErrorKind, sqlstate};
use crate::model::{ConnectionType, OperationPlan, Outcome, Purpose, Request, Target};
use crate::uri::{self, Check};

/// CockroachDB's default object size.
pub(crate) const DEFAULT_TRANSFER: i64 = 32 << 20;
/// More workers than this is a mistake rather than a test (CockroachDB has no limit).
pub(crate) const MAX_CONCURRENTLY: i64 = 256;

/// The checked options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) concurrently: i64,
    pub(crate) transfer_bytes: i64,
    pub(crate) time_micros: i64,
}

pub(super) fn check(ctx: &mut Ctx<'_>, uri: &str, options: &[(String, String)]) -> Run<Outcome> {
    // As in CockroachDB, the options are evaluated before privileges are checked.
    let options = parse_options(options)?;
    let user = ctx.session.user.clone();
    let external = resolve::external_name(uri)?;
    let mut requests = vec![Request::ReadPrincipal(user.clone())];
    if let Some((name, _)) = &external {
        requests.push(Request::ReadConnection(name.clone()));
        requests.push(grants_on(name));
    }
    let mut responses = ctx.io(requests)?.into_iter();
    let principal = principal_from(responses.next().expect("io checked the count"), &user)?;
    let (connection, grants) = match external {
        Some(_) => (
            answer::connection(responses.next().expect("io checked the count"))?,
            answer::grants(responses.next().expect("io checked the count"))?,
        ),
        None => (None, Vec::new()),
    };
    if external.is_none() && !privilege::is_admin(&principal) {
        // `external://` counts as explicit access; its USAGE is checked by `resolve`.
        let parsed = uri::parse(uri).map_err(for_check)?;
        checkable(&parsed)?;
        if requires_implicit_access(&parsed.target)
            && !privilege::has_system(&principal, "EXTERNALIOIMPLICITACCESS")
        {
            return Err(Error::permission_denied(format!(
                "only users with the admin role or the EXTERNALIOIMPLICITACCESS system privilege \
                 are allowed to access the specified {} URI",
                provider_name(parsed.provider)
            ))
            .into());
        }
    }
    // A KMS key is checked as a KMS key: by its connection's type, or its direct URI's scheme.
    let kms = match &connection {
        Some(c) => c.connection_type == ConnectionType::Kms,
        None => uri::parse(uri).is_ok_and(|p| p.check == Check::Kms),
    };
    let purpose = if kms { Purpose::Kms } else { Purpose::Storage };
    let input =
        resolve::ResolveInput { uri: uri.to_owned(), purpose, principal, connection, grants };
    let target = resolve::resolve(&input).map_err(for_check)?;
    if target.provider == "kafka" {
        return sink_check(ctx, target);
    }
    if kms {
        return kms_round_trip(ctx, target);
    }
    checkable(&uri::parse(&target.uri).map_err(for_check)?)?;
    let detail = serde_json::json!({
        "concurrently": options.concurrently,
        "transfer_bytes": options.transfer_bytes,
        "time_micros": options.time_micros,
    });
    Ok(Outcome::Operation(OperationPlan {
        kind: "CHECK".into(),
        targets: vec![target],
        detail: detail.to_string(),
    }))
}

/// URI errors name CREATE's context (`failed to construct External Connection details`),
/// which CHECK does not have.
fn for_check(mut error: Error) -> Error {
    const DETAILS: &str = "failed to construct External Connection details: ";
    if let Some(rest) = error.message.strip_prefix(DETAILS) {
        error.message = rest.to_owned();
    }
    error
}

/// A Kafka sink (CockroachDB refuses them): connect and authenticate to its brokers, and say
/// how it went in CHECK's columns, with the time it took in a NOTICE.
fn sink_check(ctx: &mut Ctx<'_>, target: Target) -> Run<Outcome> {
    use crate::model::Response;
    let [start] = ctx.all([Request::Now])?;
    let [probe, end] = ctx.all([Request::SinkProbe(target), Request::Now])?;
    let (ok, error) = match probe {
        Response::Done => (true, String::new()),
        Response::IoFailed(e) => (false, format!("connecting to the Kafka brokers: {}", e.message)),
        other => return Err(super::unexpected("sink-probe", &other)),
    };
    if ok {
        let millis = (answer::now(end)? - answer::now(start)?) / 1000;
        ctx.notice(format!("connected and authenticated to the Kafka brokers in {millis} ms"));
    }
    Ok(one_row(ok, &error))
}

/// A KMS key (CockroachDB refuses them): CREATE's round trip — encrypt the marker, decrypt
/// it, compare — with its latency in a NOTICE; a failing step is an `ok = false` row.
fn kms_round_trip(ctx: &mut Ctx<'_>, target: Target) -> Run<Outcome> {
    let display = format!("{}://{}/redacted", target.scheme, target.host);
    let [start] = ctx.all([Request::Now])?;
    let outcome = super::connection::kms_check(ctx, target, &|s: &str| s.to_owned());
    let (ok, error) = match outcome {
        Ok(()) => (true, String::new()),
        Err(Halt::Fail(e)) => (false, e.message),
        Err(io) => return Err(io),
    };
    if ok {
        let [end] = ctx.all([Request::Now])?;
        let millis = (answer::now(end)? - answer::now(start)?) / 1000;
        ctx.notice(format!("encrypted and decrypted a marker with {display} in {millis} ms"));
    }
    Ok(one_row(ok, &error))
}

/// CHECK's columns, with one row for the single worker of a sink or KMS check.
fn one_row(ok: bool, error: &str) -> Outcome {
    use crate::model::{Column, Rows, Value};
    let columns = [
        ("node", "INT8"),
        ("locality", "STRING"),
        ("ok", "BOOL"),
        ("error", "STRING"),
        ("transferred", "STRING"),
        ("read_speed", "STRING"),
        ("write_speed", "STRING"),
        ("can_delete", "BOOL"),
    ]
    .into_iter()
    .map(|(name, sql_type)| Column { name: name.into(), sql_type: sql_type.into() })
    .collect();
    let text = |s: &str| Value::Text(s.to_owned());
    Outcome::Rows(Rows {
        columns,
        rows: vec![vec![
            Value::Int(1),
            text(""),
            Value::Boolean(ok),
            text(error),
            text(""),
            text(""),
            text(""),
            Value::Null,
        ]],
    })
}

/// Storage, Kafka sinks and KMS keys can be checked: other sinks and `http` are refused as
/// CockroachDB's storage registry refuses them.
fn checkable(parsed: &uri::Parsed) -> Result<(), Error> {
    if matches!(parsed.check, Check::Storage | Check::Kms) || parsed.provider == "kafka" {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidArgument,
        sqlstate::INVALID_PARAMETER_VALUE,
        format!(
            "unsupported storage scheme: \"{}\" - refer to docs to find supported storage schemes",
            parsed.scheme
        ),
    ))
}

/// CockroachDB's `AccessIsWithExplicitAuth`, negated: the node's own files, its credentials,
/// or an endpoint only its network may reach.
fn requires_implicit_access(target: &Target) -> bool {
    let param = |name: &str| {
        target.params.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    };
    match target.provider.as_str() {
        "userfile" => false,
        "s3" => param("AUTH") == Some("implicit") || param("AWS_ENDPOINT").is_some(),
        "gs" => param("AUTH") != Some("specified"),
        "azure_storage" | "azure_kms" => param("AUTH") == Some("implicit"),
        "aws_kms" => param("AUTH") == Some("implicit") || param("AWS_ENDPOINT").is_some(),
        "gcp_kms" => param("AUTH") != Some("specified"),
        _ => true,
    }
}

/// The provider as CockroachDB's storage registry names it in messages.
fn provider_name(provider: &str) -> &str {
    match provider {
        "azure_storage" => "azure",
        other => other,
    }
}

/// Evaluates the options the parser kept as SQL text.
pub(crate) fn parse_options(options: &[(String, String)]) -> Result<Options, Error> {
    let mut parsed = Options { concurrently: 1, transfer_bytes: DEFAULT_TRANSFER, time_micros: 0 };
    for (name, value) in options {
        match name.as_str() {
            "CONCURRENTLY" => {
                let n = int_expression(value).map_err(|reason| {
                    invalid(format!("CONCURRENTLY must be an integer: {reason}"))
                })?;
                if n > MAX_CONCURRENTLY {
                    return Err(invalid(format!(
                        "CONCURRENTLY must be at most {MAX_CONCURRENTLY}, not {n}"
                    )));
                }
                // CockroachDB runs one worker for any value below 1.
                parsed.concurrently = n.max(1);
            }
            "TRANSFER" => {
                let text = unquote(value);
                let bytes = parse_bytes(&text).map_err(invalid)?;
                if bytes < 0 {
                    return Err(invalid(format!("TRANSFER must not be negative: {text}")));
                }
                parsed.transfer_bytes = if bytes == 0 { DEFAULT_TRANSFER } else { bytes };
            }
            "TIME" => {
                let nanos = parse_duration(&unquote(value)).map_err(invalid)?;
                parsed.time_micros = i64::try_from(nanos / 1000).unwrap_or(i64::MAX);
            }
            other => return Err(Error::internal(format!("unknown CHECK option {other}"))),
        }
    }
    Ok(parsed)
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidArgument, sqlstate::INVALID_PARAMETER_VALUE, message)
}

/// The text of a standard SQL string literal (`'it''s'` → `it's`).
fn unquote(literal: &str) -> String {
    literal
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .map_or_else(|| literal.to_owned(), |s| s.replace("''", "'"))
}

/// An integer constant expression: literals (also quoted, `'3'`), unary `-`/`+`, `+ - *` and
/// parentheses. CockroachDB evaluates any expression of type INT; functions, columns and
/// division (which yields DECIMAL) are refused here.
pub(crate) fn int_expression(text: &str) -> Result<i64, String> {
    let tokens = tokenize(text)?;
    let mut p = ExprParser { tokens: &tokens, pos: 0, depth: 0 };
    let value = p.sum()?;
    if p.pos != tokens.len() {
        return Err(format!("{text} is not an integer expression"));
    }
    Ok(value)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Op(char),
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let not_int = || format!("{text} is not an integer expression");
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '0'..='9' => {
                let mut end = at + 1;
                while let Some(&(i, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                let n = text[at..end].parse().map_err(|_| "integer out of range".to_owned())?;
                tokens.push(Tok::Int(n));
            }
            '\'' => {
                let rest = &text[at + 1..];
                let close = rest.find('\'').ok_or_else(not_int)?;
                let n = rest[..close].trim().parse().map_err(|_| not_int())?;
                tokens.push(Tok::Int(n));
                for _ in 0..=rest[..close].chars().count() {
                    chars.next();
                }
            }
            '+' | '-' | '*' | '(' | ')' => tokens.push(Tok::Op(c)),
            _ => return Err(not_int()),
        }
    }
    Ok(tokens)
}

struct ExprParser<'a> {
    tokens: &'a [Tok],
    pos: usize,
    depth: usize,
}

impl ExprParser<'_> {
    fn peek_op(&self) -> Option<char> {
        match self.tokens.get(self.pos) {
            Some(Tok::Op(c)) => Some(*c),
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<i64, String> {
        let mut value = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek_op() {
            self.pos += 1;
            let rhs = self.product()?;
            value = if op == '+' { value.checked_add(rhs) } else { value.checked_sub(rhs) }
                .ok_or("integer out of range")?;
        }
        Ok(value)
    }

    fn product(&mut self) -> Result<i64, String> {
        let mut value = self.unary()?;
        while self.peek_op() == Some('*') {
            self.pos += 1;
            value = value.checked_mul(self.unary()?).ok_or("integer out of range")?;
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<i64, String> {
        // The parser already bounds nesting; this keeps a hand-built input from recursing deep.
        self.depth += 1;
        if self.depth > 256 {
            return Err("the expression is nested too deeply".into());
        }
        let value = match self.tokens.get(self.pos) {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.unary()?.checked_neg().ok_or("integer out of range")?
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()?
            }
            Some(Tok::Op('(')) => {
                self.pos += 1;
                let value = self.sum()?;
                if self.peek_op() != Some(')') {
                    return Err("unbalanced parentheses".into());
                }
                self.pos += 1;
                value
            }
            Some(Tok::Int(n)) => {
                self.pos += 1;
                *n
            }
            _ => return Err("an operand is missing".into()),
        };
        self.depth -= 1;
        Ok(value)
    }
}

/// CockroachDB's `humanizeutil.ParseBytes`: a number (commas and a fraction allowed) and an
/// optional unit, SI (`kb`, `MB`) or IEC (`KiB`, `mi`), any case; a leading `-` is kept.
pub(crate) fn parse_bytes(text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("parsing \"\": invalid syntax".into());
    }
    let (negative, s) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let digits = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')).unwrap_or(s.len());
    let number = s[..digits].replace(',', "");
    let value: f64 = number
        .parse()
        .ok()
        .filter(|_| !number.is_empty())
        .ok_or_else(|| format!("strconv.ParseFloat: parsing {number:?}: invalid syntax"))?;
    let unit = s[digits..].trim().to_lowercase();
    let multiplier: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1000u64.pow(2),
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1000u64.pow(3),
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1000u64.pow(4),
        "ti" | "tib" => 1 << 40,
        "p" | "pb" => 1000u64.pow(5),
        "pi" | "pib" => 1 << 50,
        "e" | "eb" => 1000u64.pow(6),
        "ei" | "eib" => 1 << 60,
        _ => return Err(format!("unhandled size name: {unit}")),
    };
    let bytes = value * multiplier as f64;
    // f64 → i64 saturates: anything at or past i64::MAX is too large.
    if bytes >= i64::MAX as f64 {
        return Err(format!("too large: {text}"));
    }
    let bytes = bytes as i64;
    Ok(if negative { -bytes } else { bytes })
}

/// Go's `time.ParseDuration`, in nanoseconds: `1h30m`, `1.5s`, `-2ms`, `0`; units `ns`, `us`
/// (`µs`, `μs`), `ms`, `s`, `m`, `h`. Errors are Go's texts.
pub(crate) fn parse_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(text));
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !s.is_empty() {
        if !(s.starts_with('.') || s.starts_with(|c: char| c.is_ascii_digit())) {
            return Err(invalid());
        }
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let whole: u128 =
            if int_len == 0 { 0 } else { s[..int_len].parse().map_err(|_| invalid())? };
        s = &s[int_len..];
        let mut fraction = "";
        if let Some(rest) = s.strip_prefix('.') {
            let len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            fraction = &rest[..len];
            s = &rest[len..];
            if int_len == 0 && len == 0 {
                return Err(invalid());
            }
        }
        let unit_len = s.find(|c: char| c == '.' || c.is_ascii_digit()).unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(text)));
        }
        let unit_name = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u128 = match unit_name {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit_name),
                    go_quote(text)
                ));
            }
        };
        let mut value = whole.checked_mul(unit).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            // Go keeps at most the digits that fit; 18 is far past a nanosecond of an hour.
            let digits = &fraction[..fraction.len().min(18)];
            let f: u128 = digits.parse().map_err(|_| invalid())?;
            let scale = 10u128.pow(digits.len() as u32);
            value += f * unit / scale;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > 1 << 63 {
            return Err(invalid());
        }
    }
    if !negative && total > (1 << 63) - 1 {
        return Err(invalid());
    }
    let total = total as i128;
    Ok(if negative { -total } else { total })
}

/// Go's `time.quote`: double quotes, `"` and `\` escaped, other bytes outside printable ASCII
/// as `\xNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c < ' ' || !c.is_ascii() {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_cockroachdb() {
        let rows: &[(&str, Result<i64, &str>)] = &[
            ("2 MiB", Ok(2 << 20)),
            ("2MiB", Ok(2 << 20)),
            ("32 mib", Ok(32 << 20)),
            ("1.5 KiB", Ok(1536)),
            ("1 kb", Ok(1000)),
            ("10 M", Ok(10_000_000)),
            ("1,024", Ok(1024)),
            ("7", Ok(7)),
            ("0", Ok(0)),
            ("-1 MiB", Ok(-(1 << 20))),
            ("", Err("parsing \"\": invalid syntax")),
            ("abc", Err("strconv.ParseFloat: parsing \"\": invalid syntax")),
            ("1.2.3 MiB", Err("strconv.ParseFloat: parsing \"1.2.3\": invalid syntax")),
            ("2 MiBs", Err("unhandled size name: mibs")),
            ("9 EiB", Err("too large: 9 EiB")),
        ];
        for (text, expected) in rows {
            assert_eq!(parse_bytes(text), expected.map_err(str::to_owned), "{text:?}");
        }
    }

    #[test]
    fn durations_parse_like_go() {
        let rows: &[(&str, Result<i128, &str>)] = &[
            ("1s", Ok(1_000_000_000)),
            ("1.5s", Ok(1_500_000_000)),
            ("1h30m", Ok(5_400_000_000_000)),
            ("250ms", Ok(250_000_000)),
            ("10us", Ok(10_000)),
            ("10µs", Ok(10_000)),
            (".5m", Ok(30_000_000_000)),
            ("-2s", Ok(-2_000_000_000)),
            ("+3ns", Ok(3)),
            ("0", Ok(0)),
            ("", Err("time: invalid duration \"\"")),
            ("1", Err("time: missing unit in duration \"1\"")),
            ("1 s", Err("time: unknown unit \" s\" in duration \"1 s\"")),
            ("1x", Err("time: unknown unit \"x\" in duration \"1x\"")),
            ("s", Err("time: invalid duration \"s\"")),
            (".s", Err("time: invalid duration \".s\"")),
            ("onesecond", Err("time: invalid duration \"onesecond\"")),
            ("1é", Err("time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\"")),
            ("3000000h", Err("time: invalid duration \"3000000h\"")),
        ];
        for (text, expected) in rows {
            assert_eq!(parse_duration(text), expected.map_err(str::to_owned), "{text:?}");
        }
    }

    #[test]
    fn concurrency_is_an_integer_expression() {
        let rows: &[(&str, Result<i64, &str>)] = &[
            ("3", Ok(3)),
            ("(2 + 1) * 2", Ok(6)),
            ("-1", Ok(-1)),
            ("- (2 - 5)", Ok(3)),
            ("'4'", Ok(4)),
            ("f(1, 2)", Err("f(1, 2) is not an integer expression")),
            ("6 / 2", Err("6 / 2 is not an integer expression")),
            ("'x'", Err("'x' is not an integer expression")),
            ("(1", Err("unbalanced parentheses")),
            ("1 +", Err("an operand is missing")),
            ("99999999999999999999", Err("integer out of range")),
            ("9223372036854775807 + 1", Err("integer out of range")),
        ];
        for (text, expected) in rows {
            assert_eq!(int_expression(text), expected.map_err(str::to_owned), "{text:?}");
        }
    }

    #[test]
    fn options_have_cockroachdb_defaults_and_limits() {
        let opts = |pairs: &[(&str, &str)]| {
            parse_options(
                &pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            opts(&[]),
            Ok(Options { concurrently: 1, transfer_bytes: 32 << 20, time_micros: 0 })
        );
        assert_eq!(
            opts(&[("CONCURRENTLY", "3"), ("TRANSFER", "'2 MiB'"), ("TIME", "'1s'")]),
            Ok(Options { concurrently: 3, transfer_bytes: 2 << 20, time_micros: 1_000_000 })
        );
        assert_eq!(opts(&[("CONCURRENTLY", "0")]).map(|o| o.concurrently), Ok(1));
        assert_eq!(opts(&[("TRANSFER", "'0'")]).map(|o| o.transfer_bytes), Ok(32 << 20));
        assert_eq!(opts(&[("TIME", "'-1s'")]).map(|o| o.time_micros), Ok(-1_000_000));
        let message = |pairs: &[(&str, &str)]| opts(pairs).unwrap_err().message;
        assert_eq!(message(&[("TRANSFER", "'-1 MiB'")]), "TRANSFER must not be negative: -1 MiB");
        assert_eq!(
            message(&[("CONCURRENTLY", "257")]),
            "CONCURRENTLY must be at most 256, not 257"
        );
        assert_eq!(message(&[("TIME", "'onesecond'")]), "time: invalid duration \"onesecond\"");
        assert_eq!(
            message(&[("CONCURRENTLY", "f(1, 2)")]),
            "CONCURRENTLY must be an integer: f(1, 2) is not an integer expression"
        );
        assert_eq!(opts(&[("TRANSFER", "'x'")]).unwrap_err().sqlstate, "22023");
    }

    #[test]
    fn implicit_access_follows_cockroachdb() {
        let rows = [
            ("nodelocal://1/x", true),
            ("userfile:///x", false),
            ("s3://b/x?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=s", false),
            ("s3://b/x?AUTH=implicit", true),
            ("s3://b/x?AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=s&AWS_ENDPOINT=http://h", true),
            ("gs://b/x?AUTH=specified&BEARER_TOKEN=t", false),
            ("gs://b/x?AUTH=implicit", true),
            ("azure-blob://c/x?AZURE_ACCOUNT_NAME=a&AZURE_ACCOUNT_KEY=a2V5", false),
        ];
        for (uri, expected) in rows {
            let target = uri::parse(uri).unwrap().target;
            assert_eq!(requires_implicit_access(&target), expected, "{uri}");
        }
    }
}
