//! `AS OF SYSTEM TIME` expressions: a negative interval from the statement's time (`'-10s'`),
//! a timestamp (`'2026-11-26 03:50:00'`), a decimal of nanoseconds, or
//! `follower_read_timestamp()`.

use crate::error::Error;

const PREFIX: &str = "AS OF SYSTEM TIME";
/// How far behind `follower_read_timestamp()` reads (CockroachDB's default target).
const FOLLOWER_READ_MICROS: i64 = 4_800_000;

/// The time `expr` names, in microseconds since the Unix epoch; `now` is the statement's time.
pub(super) fn as_of_micros(expr: &str, now: i64) -> Result<i64, Error> {
    let trimmed = expr.trim();
    if trimmed.eq_ignore_ascii_case("follower_read_timestamp()") {
        return Ok(now - FOLLOWER_READ_MICROS);
    }
    let text = trimmed
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .ok_or_else(|| unsupported(trimmed))?;
    let micros = if let Some(interval) = text.strip_prefix('-') {
        now - interval_micros(interval).ok_or_else(|| unsupported(trimmed))?
    } else if text.starts_with('+') || interval_micros(text).is_some_and(|_| !looks_numeric(text)) {
        return Err(Error::invalid(format!(
            "{PREFIX}: interval value {text:?} too large, AS OF interval must be <= -1µs"
        )));
    } else if looks_numeric(text) {
        decimal_nanos_to_micros(text).ok_or_else(|| unsupported(trimmed))?
    } else {
        timestamp_micros(text).ok_or_else(|| unsupported(trimmed))?
    };
    if micros > now {
        return Err(Error::invalid(format!("{PREFIX}: cannot specify timestamp in the future")));
    }
    Ok(micros)
}

fn unsupported(expr: &str) -> Error {
    Error::invalid(format!(
        "{PREFIX}: unsupported expression {expr}: use a negative interval ('-10s'), a timestamp \
         ('2026-11-26 03:50:00'), a decimal of nanoseconds, or follower_read_timestamp()"
    ))
}

fn looks_numeric(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// `10s`, `1h30m`, `250ms`, `10 seconds`, `2 minutes` → microseconds.
fn interval_micros(text: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end =
            rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = rest[number_end..].trim_start();
        let unit_end =
            rest.find(|c: char| !c.is_ascii_alphabetic() && c != 'µ').unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        let scale = match unit.to_ascii_lowercase().as_str() {
            "h" | "hr" | "hour" | "hours" => 3_600_000_000.0,
            "m" | "min" | "minute" | "minutes" => 60_000_000.0,
            "s" | "sec" | "second" | "seconds" | "" => 1_000_000.0,
            "ms" | "millisecond" | "milliseconds" => 1_000.0,
            "us" | "µs" | "microsecond" | "microseconds" => 1.0,
            _ => return None,
        };
        total += number * scale;
        rest = rest[unit_end..].trim_start();
    }
    Some(total.round() as i64)
}

/// `1700000000000000000.0000000000` (an HLC timestamp's wall time in nanoseconds).
fn decimal_nanos_to_micros(text: &str) -> Option<i64> {
    let whole = text.split('.').next()?;
    whole.parse::<i64>().ok().map(|nanos| nanos / 1_000)
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|+HH[:MM]|-HH[:MM]]`, or a bare date; UTC unless an
/// offset is given.
fn timestamp_micros(text: &str) -> Option<i64> {
    let (date, time) = match text.find([' ', 'T']) {
        Some(at) => (&text[..at], text[at + 1..].trim()),
        None => (text, ""),
    };
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset_secs) = split_offset(time)?;
    let mut fields = clock.split(':');
    let hour: i64 = fields.next().filter(|s| !s.is_empty()).map_or(Some(0), |s| s.parse().ok())?;
    let minute: i64 = fields.next().map_or(Some(0), |s| s.parse().ok())?;
    let (second, micros) = match fields.next() {
        None => (0, 0),
        Some(s) => {
            let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
            let mut frac: String = frac.chars().take(6).collect();
            while frac.len() < 6 {
                frac.push('0');
            }
            (whole.parse::<i64>().ok()?, frac.parse::<i64>().ok()?)
        }
    };
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    Some(secs * 1_000_000 + micros)
}

/// The clock part and the UTC offset in seconds.
fn split_offset(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z').or_else(|| time.strip_suffix("UTC")) {
        return Some((clock.trim(), 0));
    }
    match time.rfind(['+', '-']) {
        Some(at) if at > 0 => {
            let (clock, offset) = (&time[..at], &time[at..]);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let digits = &offset[1..];
            let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
            Some((
                clock.trim(),
                sign * (h.parse::<i64>().ok()? * 3_600 + m.parse::<i64>().ok()? * 60),
            ))
        }
        _ => Some((time, 0)),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    #[test]
    fn intervals_count_back_from_now() {
        assert_eq!(as_of_micros("'-10s'", NOW).unwrap(), NOW - 10_000_000);
        assert_eq!(as_of_micros("'-1h30m'", NOW).unwrap(), NOW - 5_400_000_000);
        assert_eq!(as_of_micros("'-250ms'", NOW).unwrap(), NOW - 250_000);
        assert_eq!(as_of_micros("'-2 minutes'", NOW).unwrap(), NOW - 120_000_000);
        assert_eq!(as_of_micros("follower_read_timestamp()", NOW).unwrap(), NOW - 4_800_000);
    }

    #[test]
    fn timestamps_are_utc_unless_an_offset_is_given() {
        assert_eq!(as_of_micros("'1970-01-02 00:00:00'", NOW).unwrap(), 86_400_000_000);
        assert_eq!(as_of_micros("'2026-11-26T03:50:00.5Z'", NOW).unwrap(), 1_795_665_000_500_000);
        assert_eq!(
            as_of_micros("'2026-11-26 04:50:00+01:00'", NOW).unwrap(),
            1_795_665_000_000_000
        );
        assert_eq!(
            as_of_micros("'1000000000000000000.0000000000'", NOW).unwrap(),
            1_000_000_000_000_000
        );
    }

    #[test]
    fn the_future_and_nonsense_are_refused() {
        let err = as_of_micros("'10s'", NOW).unwrap_err();
        assert!(err.message.contains("AS OF interval must be <= -1µs"), "{}", err.message);
        let err = as_of_micros("'2099-01-01'", NOW).unwrap_err();
        assert_eq!(err.message, "AS OF SYSTEM TIME: cannot specify timestamp in the future");
        let err = as_of_micros("now()", NOW).unwrap_err();
        assert!(err.message.contains("unsupported expression now()"), "{}", err.message);
    }
}
