//! The JSON key and value of each changefeed message, as CockroachDB's `format = json`
//! encoder (`pkg/ccl/changefeedccl/encoder_json.go`) writes them.
//!
//! * Key: a JSON array of the primary-key values, `[1]`, `["boston", "a1"]`.
//! * `envelope = wrapped` (the default): an object with `after` (the row, `null` for a
//!   delete), and `before` with `diff` (the previous row or `null`), `key` with
//!   `key_in_value`, `topic` with `topic_in_value`, `updated` with `updated`.
//! * `bare`: the row's columns at the top level, and with any of `updated`, `key_in_value`,
//!   `topic_in_value` a `"__crdb__"` object holding them. `diff` adds nothing. A delete is
//!   the row with its key columns set and every other column `null` (CockroachDB decodes a
//!   deleted row from its key alone).
//! * `row`: the columns only; a delete has no value (a Kafka tombstone).
//! * `key_only`: never a value.
//!
//! Every object has its keys sorted by their bytes and is written `{"a": 1, "b": 2}`
//! (CockroachDB's JSON objects are sorted lists). Resolved messages are written by Go's
//! `encoding/json` instead, so without spaces: `{"resolved":"…"}` for `wrapped`,
//! `{"__crdb__":{"resolved":"…"}}` for the other envelopes.

use std::io::Write as _;

use super::json;
use super::{Datum, Hlc, Row};

/// Errors in the encoding options, with CockroachDB's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// `key_in_value` or `topic_in_value` with an envelope that has no room for metadata
    /// (CockroachDB says `wrapped` although `bare` accepts them too).
    #[error("{option} is only usable with envelope=wrapped")]
    OnlyWithWrapped {
        /// `key_in_value` or `topic_in_value`.
        option: &'static str,
    },
}

/// The `envelope` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Envelope {
    /// `{"after": …}` plus the optional fields.
    #[default]
    Wrapped,
    /// The columns at the top level, metadata under `"__crdb__"`.
    Bare,
    /// The key alone.
    KeyOnly,
    /// The columns alone.
    Row,
}

impl Envelope {
    /// The option's value as written in `WITH envelope = …`.
    pub fn name(self) -> &'static str {
        match self {
            Envelope::Wrapped => "wrapped",
            Envelope::Bare => "bare",
            Envelope::KeyOnly => "key_only",
            Envelope::Row => "row",
        }
    }

    /// The envelope named `name` (`wrapped`, `bare`, `key_only`, `row`), ASCII case-insensitive.
    pub fn parse(name: &str) -> Option<Self> {
        [Envelope::Wrapped, Envelope::Bare, Envelope::KeyOnly, Envelope::Row]
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name))
    }

    fn has_metadata(self) -> bool {
        matches!(self, Envelope::Wrapped | Envelope::Bare)
    }
}

/// The changefeed options that shape a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EncodeOptions {
    /// `envelope`.
    pub envelope: Envelope,
    /// `diff`: the previous row as `before` (wrapped only).
    pub diff: bool,
    /// `updated`: the change's timestamp.
    pub updated: bool,
    /// `key_in_value`: the key in the value too.
    pub key_in_value: bool,
    /// `topic_in_value`: the topic in the value.
    pub topic_in_value: bool,
}

impl EncodeOptions {
    /// Checks the combination as CockroachDB's encoder does when the changefeed is created.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if !self.envelope.has_metadata() {
            if self.key_in_value {
                return Err(EnvelopeError::OnlyWithWrapped { option: "key_in_value" });
            }
            if self.topic_in_value {
                return Err(EnvelopeError::OnlyWithWrapped { option: "topic_in_value" });
            }
        }
        Ok(())
    }
}

/// Values to write as JSON, by index: a key's values, or a row's.
pub trait Values: Sync {
    /// How many.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends the `i`th value's JSON (`i < len()`).
    fn write(&self, out: &mut Vec<u8>, i: usize);
}

/// A row's columns: [`Values`] with names.
pub trait Columns: Values {
    /// The `i`th column's name (`i < len()`), unescaped.
    fn name(&self, i: usize) -> &[u8];

    /// Appends the `i`th column's name as a JSON string.
    fn write_name(&self, out: &mut Vec<u8>, i: usize) {
        json::write_string(out, self.name(i));
    }

    /// The column indices sorted by name (stably), when known ahead (a captured row keeps
    /// its table's); `None`: sorted for each message.
    fn sorted(&self) -> Option<&[u8]> {
        None
    }
}

impl Values for Vec<Datum> {
    fn len(&self) -> usize {
        <[Datum]>::len(self)
    }

    fn write(&self, out: &mut Vec<u8>, i: usize) {
        json::write_datum(out, &self[i]);
    }
}

impl<const N: usize> Values for [Datum; N] {
    fn len(&self) -> usize {
        N
    }

    fn write(&self, out: &mut Vec<u8>, i: usize) {
        json::write_datum(out, &self[i]);
    }
}

impl Values for Row {
    fn len(&self) -> usize {
        self.columns.len()
    }

    fn write(&self, out: &mut Vec<u8>, i: usize) {
        json::write_datum(out, &self.columns[i].1);
    }
}

impl Columns for Row {
    fn name(&self, i: usize) -> &[u8] {
        self.columns[i].0.as_bytes()
    }
}

/// One row event to encode: a change read by [`capture`](super::capture) (decoded, or
/// transcoded straight from its captured JSON) or a row of the initial scan.
#[derive(Clone, Copy)]
pub struct Event<'a> {
    /// The primary-key values.
    pub key: &'a dyn Values,
    /// The primary-key column names (empty when the key is the `rowid`).
    pub key_columns: &'a [String],
    /// The row before the change (`None` for an insert and a scanned row).
    pub before: Option<&'a dyn Columns>,
    /// The row after the change (`None` for a delete).
    pub after: Option<&'a dyn Columns>,
    /// The change's timestamp.
    pub updated: Hlc,
    /// The topic the message goes to.
    pub topic: &'a str,
}

impl std::fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut key = Vec::new();
        write_key(&mut key, self.key);
        f.debug_struct("Event")
            .field("key", &String::from_utf8_lossy(&key))
            .field("before", &self.before.is_some())
            .field("after", &self.after.is_some())
            .field("updated", &self.updated)
            .field("topic", &self.topic)
            .finish()
    }
}

/// The message key: a JSON array of the primary-key values.
pub fn encode_key(key: &dyn Values) -> Vec<u8> {
    let mut out = Vec::new();
    write_key(&mut out, key);
    out
}

/// Appends the message key (see [`encode_key`]) to `out`.
pub fn write_key(out: &mut Vec<u8>, key: &dyn Values) {
    out.push(b'[');
    for i in 0..key.len() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        key.write(out, i);
    }
    out.push(b']');
}

/// The message value; `None` when the message has none (`key_only`, and deletes with `row`).
/// The options are assumed [validated](EncodeOptions::validate).
pub fn encode_value(options: &EncodeOptions, event: &Event<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    write_value(&mut out, options, event).then_some(out)
}

/// Appends the message value (see [`encode_value`]) to `out`; `false`, with nothing written,
/// when the message has none.
pub fn write_value(out: &mut Vec<u8>, options: &EncodeOptions, event: &Event<'_>) -> bool {
    match options.envelope {
        Envelope::KeyOnly => return false,
        Envelope::Wrapped => {
            // `after`, `before`, `key`, `topic`, `updated`: written in their sorted order.
            out.extend_from_slice(b"{\"after\": ");
            write_row_or_null(out, event.after);
            if options.diff {
                out.extend_from_slice(b", \"before\": ");
                write_row_or_null(out, event.before);
            }
            write_metadata(out, options, event, true);
            out.push(b'}');
        }
        Envelope::Row if event.after.is_none() => return false,
        Envelope::Bare | Envelope::Row => {
            let meta = usize::from(has_metadata(options));
            let crdb = |out: &mut Vec<u8>| {
                out.push(b'{');
                write_metadata(out, options, event, false);
                out.push(b'}');
            };
            match (event.after, event.before) {
                (Some(row), _) if meta == 0 => write_row(out, row),
                (Some(row), _) => {
                    let n = row.len();
                    json::write_object(
                        out,
                        n + meta,
                        |i| column_name(row, i),
                        |out, i| if i < n { row.write(out, i) } else { crdb(out) },
                    )
                }
                // A deleted row as CockroachDB decodes it from the key alone: the key columns
                // set, every other column null. The column names come from the row before.
                (None, Some(before)) => {
                    let n = before.len();
                    json::write_object(
                        out,
                        n + meta,
                        |i| column_name(before, i),
                        |out, i| {
                            if i >= n {
                                return crdb(out);
                            }
                            let name = before.name(i);
                            match event
                                .key_columns
                                .iter()
                                .position(|k| k.as_bytes() == name)
                                .filter(|k| *k < event.key.len())
                            {
                                Some(k) => event.key.write(out, k),
                                None => out.extend_from_slice(b"null"),
                            }
                        },
                    )
                }
                (None, None) => json::write_object(out, meta, |_| b"__crdb__", |out, _| crdb(out)),
            }
        }
    }
    true
}

/// A resolved message: `{"resolved":"<ts>"}` with `wrapped`, `{"__crdb__":{"resolved":"<ts>"}}`
/// with the others (CockroachDB's `EncodeResolvedTimestamp`, Go's compact JSON).
pub fn encode_resolved(envelope: Envelope, resolved: Hlc) -> Vec<u8> {
    let inner = format!(r#"{{"resolved":"{resolved}"}}"#);
    match envelope {
        Envelope::Wrapped => inner.into_bytes(),
        _ => format!(r#"{{"__crdb__":{inner}}}"#).into_bytes(),
    }
}

/// Column `i`'s name, or `__crdb__` past the last column.
fn column_name(row: &dyn Columns, i: usize) -> &[u8] {
    if i < row.len() { row.name(i) } else { b"__crdb__" }
}

fn write_row_or_null(out: &mut Vec<u8>, row: Option<&dyn Columns>) {
    match row {
        Some(row) => write_row(out, row),
        None => out.extend_from_slice(b"null"),
    }
}

/// A row as a JSON object, its columns sorted by name.
fn write_row(out: &mut Vec<u8>, row: &dyn Columns) {
    match row.sorted() {
        Some(order) => json::write_in_order(
            out,
            order.iter().map(|i| usize::from(*i)),
            |out, i| row.write_name(out, i),
            |out, i| row.write(out, i),
        ),
        None => json::write_object(out, row.len(), |i| row.name(i), |out, i| row.write(out, i)),
    }
}

/// `"<wall_ns>.<logical, ten digits>"`, as [`Hlc`]'s `Display` writes it.
fn write_hlc(out: &mut Vec<u8>, hlc: Hlc) {
    out.push(b'"');
    match (u64::try_from(hlc.wall_ns), u64::try_from(hlc.logical)) {
        (Ok(wall), Ok(logical)) => {
            json::write_digits(out, wall, 1);
            out.push(b'.');
            json::write_digits(out, logical, 10);
        }
        _ => write!(out, "{hlc}").expect("writing to a Vec does not fail"),
    }
    out.push(b'"');
}

fn has_metadata(options: &EncodeOptions) -> bool {
    options.key_in_value || options.topic_in_value || options.updated
}

/// The metadata fields `key`, `topic`, `updated` (in their sorted order), each preceded by
/// `", "` unless it is the first and `first_separated` is false.
fn write_metadata(
    out: &mut Vec<u8>,
    options: &EncodeOptions,
    event: &Event<'_>,
    first_separated: bool,
) {
    let mut separate = first_separated;
    let mut field = |out: &mut Vec<u8>, name: &[u8]| {
        if separate {
            out.extend_from_slice(b", ");
        }
        separate = true;
        out.extend_from_slice(name);
    };
    if options.key_in_value {
        field(out, b"\"key\": ");
        write_key(out, event.key);
    }
    if options.topic_in_value {
        field(out, b"\"topic\": ");
        json::write_string(out, event.topic.as_bytes());
    }
    if options.updated {
        field(out, b"\"updated\": ");
        write_hlc(out, event.updated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(columns: &[(&str, Datum)]) -> Row {
        Row {
            columns: columns
                .iter()
                .map(|(n, d)| (super::super::Name::from(*n), d.clone()))
                .collect(),
        }
    }

    const TS: Hlc = Hlc { wall_ns: 1_700_000_000_123_456_789, logical: 0 };

    fn text(s: &str) -> Datum {
        Datum::Text(s.to_owned())
    }

    /// One row per (change, options): the exact value bytes, or `None` for no value.
    #[test]
    fn values_byte_for_byte() {
        let key_columns = vec!["id".to_owned()];
        let old = row(&[("id", Datum::Integer(1)), ("name", text("ana")), ("Zip", Datum::Null)]);
        let new =
            row(&[("id", Datum::Integer(1)), ("name", text("bo")), ("Zip", Datum::Real(1.5))]);
        let key = [Datum::Integer(1)];
        let insert = Event {
            key: &key,
            key_columns: &key_columns,
            before: None,
            after: Some(&old),
            updated: TS,
            topic: "users",
        };
        let update = Event { before: Some(&old), after: Some(&new), ..insert };
        let delete = Event { before: Some(&new), after: None, ..insert };
        let wrapped = EncodeOptions::default();
        let all_wrapped = EncodeOptions {
            diff: true,
            updated: true,
            key_in_value: true,
            topic_in_value: true,
            ..wrapped
        };
        let bare = EncodeOptions { envelope: Envelope::Bare, ..wrapped };
        let bare_all = EncodeOptions { envelope: Envelope::Bare, ..all_wrapped };
        let row_env = EncodeOptions { envelope: Envelope::Row, ..wrapped };
        let key_only = EncodeOptions { envelope: Envelope::KeyOnly, updated: true, ..wrapped };

        let cases: &[(&str, &Event<'_>, EncodeOptions, Option<&str>)] = &[
            (
                "wrapped insert",
                &insert,
                wrapped,
                Some(r#"{"after": {"Zip": null, "id": 1, "name": "ana"}}"#),
            ),
            ("wrapped delete", &delete, wrapped, Some(r#"{"after": null}"#)),
            (
                "wrapped insert diff",
                &insert,
                EncodeOptions { diff: true, ..wrapped },
                Some(r#"{"after": {"Zip": null, "id": 1, "name": "ana"}, "before": null}"#),
            ),
            (
                "wrapped update all",
                &update,
                all_wrapped,
                Some(concat!(
                    r#"{"after": {"Zip": 1.5, "id": 1, "name": "bo"}, "#,
                    r#""before": {"Zip": null, "id": 1, "name": "ana"}, "#,
                    r#""key": [1], "topic": "users", "updated": "1700000000123456789.0000000000"}"#
                )),
            ),
            (
                "wrapped delete diff updated",
                &delete,
                EncodeOptions { diff: true, updated: true, ..wrapped },
                Some(concat!(
                    r#"{"after": null, "before": {"Zip": 1.5, "id": 1, "name": "bo"}, "#,
                    r#""updated": "1700000000123456789.0000000000"}"#
                )),
            ),
            ("bare insert", &insert, bare, Some(r#"{"Zip": null, "id": 1, "name": "ana"}"#)),
            (
                "bare update all (diff ignored)",
                &update,
                bare_all,
                Some(concat!(
                    r#"{"Zip": 1.5, "__crdb__": {"key": [1], "topic": "users", "#,
                    r#""updated": "1700000000123456789.0000000000"}, "id": 1, "name": "bo"}"#
                )),
            ),
            (
                "bare delete updated",
                &delete,
                EncodeOptions { updated: true, ..bare },
                Some(concat!(
                    r#"{"Zip": null, "__crdb__": {"updated": "1700000000123456789.0000000000"}, "#,
                    r#""id": 1, "name": null}"#
                )),
            ),
            ("row insert", &insert, row_env, Some(r#"{"Zip": null, "id": 1, "name": "ana"}"#)),
            ("row delete", &delete, row_env, None),
            ("key_only insert", &insert, key_only, None),
            ("key_only delete", &delete, key_only, None),
        ];
        for (name, event, options, want) in cases {
            options.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = encode_value(options, event).map(|v| String::from_utf8(v).unwrap());
            assert_eq!(got.as_deref(), *want, "{name} with {options:?}");
        }
    }

    #[test]
    fn keys_are_json_arrays() {
        let cases: &[(&[Datum], &str)] = &[
            (&[Datum::Integer(1)], "[1]"),
            (&[text("boston"), Datum::Blob(vec![0xca, 0xfe])], r#"["boston", "\\xcafe"]"#),
            (&[Datum::Real(100.0), Datum::Null], r#"[1E+2, null]"#),
        ];
        for (key, want) in cases {
            assert_eq!(String::from_utf8(encode_key(&key.to_vec())).unwrap(), *want);
        }
    }

    #[test]
    fn numbers_written_without_fmt_read_as_fmt_writes_them() {
        for i in [0, 1, -1, 9, 10, -10, 1_234_567_890_123, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            json::write_integer(&mut out, i);
            assert_eq!(String::from_utf8(out).unwrap(), i.to_string());
        }
        for hlc in [
            Hlc::default(),
            TS,
            Hlc { wall_ns: 5, logical: 12 },
            Hlc { wall_ns: i64::MAX, logical: i32::MAX },
            Hlc { wall_ns: -5, logical: 1 },
            Hlc { wall_ns: 5, logical: -1 },
        ] {
            let mut out = Vec::new();
            write_hlc(&mut out, hlc);
            assert_eq!(String::from_utf8(out).unwrap(), format!("\"{hlc}\""));
        }
    }

    #[test]
    fn resolved_messages() {
        assert_eq!(
            encode_resolved(Envelope::Wrapped, TS),
            br#"{"resolved":"1700000000123456789.0000000000"}"#
        );
        for envelope in [Envelope::Bare, Envelope::Row, Envelope::KeyOnly] {
            assert_eq!(
                encode_resolved(envelope, TS),
                br#"{"__crdb__":{"resolved":"1700000000123456789.0000000000"}}"#
            );
        }
    }

    #[test]
    fn metadata_needs_an_envelope_with_room() {
        let cases = [
            (Envelope::Wrapped, true, true, Ok(())),
            (Envelope::Bare, true, true, Ok(())),
            (Envelope::Row, true, false, Err("key_in_value is only usable with envelope=wrapped")),
            (
                Envelope::KeyOnly,
                false,
                true,
                Err("topic_in_value is only usable with envelope=wrapped"),
            ),
            (Envelope::KeyOnly, false, false, Ok(())),
        ];
        for (envelope, key_in_value, topic_in_value, want) in cases {
            let options =
                EncodeOptions { envelope, key_in_value, topic_in_value, ..Default::default() };
            let got = options.validate().map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{options:?}");
        }
    }

    #[test]
    fn envelope_names() {
        for name in ["wrapped", "bare", "key_only", "row"] {
            assert_eq!(Envelope::parse(name).map(Envelope::name), Some(name));
        }
        assert_eq!(Envelope::parse("WRAPPED"), Some(Envelope::Wrapped));
        assert_eq!(Envelope::parse("enriched"), None);
    }
}
