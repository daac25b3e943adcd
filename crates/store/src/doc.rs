//! The generic document layer both backends implement: collection and field definitions,
//! field values, filters, sort orders and the conversion of records to documents.
//!
//! Typed records (see [`crate::model`]) describe their collection once, in a
//! [`CollectionDef`], and hand the backend a [`Doc`]: the record as a JSON object plus the
//! values of its declared fields. The declared fields are the only ones a query can filter
//! or sort on, so each backend indexes exactly those (SQLite columns, MongoDB paths) and the
//! query semantics are defined once, here, instead of once per backend.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::body::Body;
use crate::error::StoreError;

/// How a declared field is stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// Text, compared bytewise.
    Str,
    /// A boolean.
    Bool,
    /// A UTC time with millisecond precision (SQLite: integer milliseconds; MongoDB: a BSON date).
    Time,
    /// A list of strings, filtered by membership.
    StrList,
}

/// A field a collection can be filtered or sorted on.
#[derive(Debug)]
pub(crate) struct FieldDef {
    /// The dotted path in the record's JSON (and in the MongoDB document).
    pub path: &'static str,
    /// The SQLite column that holds it.
    pub column: &'static str,
    /// Its kind.
    pub kind: FieldKind,
    /// True when it is computed from the record rather than one of its fields (it is then
    /// stored beside the record and never read back into it).
    pub derived: bool,
    /// True when it has a handful of values (log levels): SQLite then keeps no index that
    /// another has with this field before its last, and reads that index's ranges once per
    /// value, merged (see `sqlite::merge`), so each row has one index entry fewer to write.
    pub few_values: bool,
}

impl FieldDef {
    /// A field that is one of the record's own fields.
    pub const fn new(path: &'static str, column: &'static str, kind: FieldKind) -> Self {
        FieldDef {
            path,
            column,
            kind,
            derived: false,
            few_values: false,
        }
    }

    /// One of the record's own fields with a handful of values (see [`FieldDef::few_values`]).
    pub const fn few(path: &'static str, column: &'static str, kind: FieldKind) -> Self {
        FieldDef {
            few_values: true,
            ..FieldDef::new(path, column, kind)
        }
    }

    /// A field computed from the record, stored only for filtering.
    pub const fn derived(path: &'static str, column: &'static str, kind: FieldKind) -> Self {
        FieldDef {
            path,
            column,
            kind,
            derived: true,
            few_values: false,
        }
    }
}

/// A collection: its name, declared fields, key and indexes.
#[derive(Debug)]
pub(crate) struct CollectionDef {
    /// The collection (MongoDB) and table (SQLite) name; history lives in `<name>_history`.
    pub name: &'static str,
    /// Every field a query may use, in the order [`Record::fields`] returns their values.
    pub fields: &'static [&'static FieldDef],
    /// The fields whose values identify a document; empty for append-only collections.
    pub key: &'static [&'static FieldDef],
    /// Extra indexes (beyond the key and `_sequence`), ascending. Each ends, implicitly, with
    /// `_sequence` (SQLite's rowid; appended on MongoDB), so one index read backwards
    /// serves "newest first" (`field DESC, _sequence DESC`) without a sort.
    pub indexes: &'static [&'static [&'static FieldDef]],
    /// Optional fields whose indexes (those of [`CollectionDef::indexes`] that start with
    /// one) hold only the documents where the field is present, on SQLite: a partial index
    /// costs nothing to the rows that lack the field (most log lines have no task).
    pub present_only: &'static [&'static FieldDef],
    /// Whether replaced and deleted versions are kept in the history collection.
    pub history: bool,
    /// Whether the collection lives in the separate log database (MongoDB `logs` option).
    pub logs_db: bool,
    /// The text field whose case-insensitive substring search ([`Cond::ContainsCi`]) a
    /// trigram index serves on SQLite (see `sqlite::text`); a scan elsewhere.
    pub text: Option<&'static TextDef>,
    /// One of [`CollectionDef::indexes`] asked only for the newest document of one key (a
    /// log source's last line): SQLite keeps each key's newest `_sequence` in a table of
    /// its own instead (see `sqlite::newest`); MongoDB keeps the index.
    pub newest: Option<&'static [&'static FieldDef]>,
}

/// A text field's trigram index on SQLite, kept in segments by the records' time, so that
/// expiry drops a segment whole instead of removing its records one by one.
#[derive(Debug)]
pub(crate) struct TextDef {
    /// The field searched.
    pub field: &'static FieldDef,
    /// The time field expiry goes by: each segment holds one span of it.
    pub time: &'static FieldDef,
    /// An optional field whose records expire at another age when present (task logs):
    /// they get segments of their own, so neither kind keeps the other's segments alive.
    pub apart: &'static FieldDef,
    /// A text field searches are often limited to by equality (the service): a short key of
    /// its value is indexed with the text, so such a search asks the index for its rows only.
    pub within: &'static FieldDef,
}

impl CollectionDef {
    /// The position of `field` in [`CollectionDef::fields`].
    pub fn position(&self, field: &FieldDef) -> Option<usize> {
        self.fields.iter().position(|f| std::ptr::eq(*f, field))
    }

    /// The history collection's name.
    pub fn history_name(&self) -> String {
        format!("{}_history", self.name)
    }
}

/// The value of a declared field, or a value to compare one with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    /// Absent (an `Option` that is `None`).
    Null,
    /// Text.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A time, always truncated to whole milliseconds.
    Time(DateTime<Utc>),
    /// A list of strings.
    StrList(Vec<String>),
}

impl Val {
    /// A time value, truncated to milliseconds as both backends store it.
    pub fn time(time: DateTime<Utc>) -> Val {
        Val::Time(truncate_millis(time))
    }

    /// An optional text value.
    pub fn opt_str(text: Option<&str>) -> Val {
        text.map_or(Val::Null, |t| Val::Str(t.to_owned()))
    }

    /// A text value.
    pub fn str(text: impl Into<String>) -> Val {
        Val::Str(text.into())
    }

    /// The value as JSON, in the form the record's serde derive reads back.
    pub fn to_json(&self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Str(s) => Value::String(s.clone()),
            Val::Bool(b) => Value::Bool(*b),
            Val::Time(t) => Value::String(format_time(*t)),
            Val::StrList(list) => Value::from(list.clone()),
        }
    }
}

/// `time` without its sub-millisecond part.
pub(crate) fn truncate_millis(time: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(time.timestamp_millis())
        .single()
        .unwrap_or(time)
}

/// A time as the JSON string chrono's serde reads: RFC 3339, milliseconds, `Z`.
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time from milliseconds since the epoch, as stored by both backends.
pub(crate) fn time_from_millis(millis: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis).single()
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// One condition of a filter; a filter is the conjunction of its conditions.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// The field equals the value (`Val::Null`: the field is absent).
    Eq(&'static FieldDef, Val),
    /// The field is present (not `None`).
    NotNull(&'static FieldDef),
    /// The field equals one of the values.
    In(&'static FieldDef, Vec<Val>),
    /// The field compares with the value.
    Cmp(&'static FieldDef, Op, Val),
    /// The text field contains the text, ignoring case (see [`contains_ignoring_case`]).
    ContainsCi(&'static FieldDef, String),
    /// The list field contains the value.
    Has(&'static FieldDef, String),
    /// `_sequence` compares with the number.
    Sequence(Op, i64),
    /// `_sequence` is one of the numbers.
    SequenceIn(Vec<i64>),
}

/// What a sort orders by.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SortKey {
    /// A declared field.
    Field(&'static FieldDef),
    /// `_sequence` (always appended last as the tie-breaker).
    Sequence,
}

/// A find: filter, order and window.
#[derive(Debug, Clone, Default)]
pub(crate) struct Find {
    /// All must hold.
    pub filter: Vec<Cond>,
    /// Order, most significant first; `true` = descending. `_sequence` follows implicitly,
    /// in the direction of the last key (ascending when empty).
    pub sort: Vec<(SortKey, bool)>,
    /// Documents to skip.
    pub skip: u64,
    /// At most this many.
    pub limit: Option<u64>,
}

impl Find {
    /// The direction of the implicit `_sequence` tie-breaker.
    pub fn sequence_descending(&self) -> bool {
        match self.sort.last() {
            Some((SortKey::Sequence, desc)) | Some((SortKey::Field(_), desc)) => *desc,
            None => false,
        }
    }
}

/// Case-insensitive substring match, the one definition every backend and the live feed
/// share: both sides are lower-cased with Unicode rules, then searched bytewise.
pub(crate) fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    contains_lowered(haystack, &needle.to_lowercase())
}

/// [`contains_ignoring_case`] with the needle already lower-cased (queries lower it once).
pub(crate) fn contains_lowered(haystack: &str, lowered_needle: &str) -> bool {
    if lowered_needle.is_empty() {
        return true;
    }
    if haystack.is_ascii() {
        // ASCII lower-casing is Unicode lower-casing for ASCII text, without allocating.
        let needle = lowered_needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle));
    }
    haystack.to_lowercase().contains(lowered_needle)
}

/// A record ready for a backend: its JSON body and its declared field values.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    /// The record as a JSON object, times normalised to milliseconds.
    pub body: Map<String, Value>,
    /// The values of [`CollectionDef::fields`], in order.
    pub fields: Vec<Val>,
    /// The body as the backend writes it, made on the caller's task before the writer's
    /// turn (`Backend::prepare`), so the writer, which works for every caller in turn, does
    /// not; `None` until then.
    pub prepared: Option<String>,
}

impl Doc {
    /// The key's values, in [`CollectionDef::key`] order.
    pub fn key(&self, def: &CollectionDef) -> Vec<(&'static FieldDef, Val)> {
        def.key
            .iter()
            .filter_map(|k| def.position(k).map(|i| (*k, self.fields[i].clone())))
            .collect()
    }

    /// The key as a filter.
    pub fn key_filter(&self, def: &CollectionDef) -> Vec<Cond> {
        self.key(def)
            .into_iter()
            .map(|(f, v)| Cond::Eq(f, v))
            .collect()
    }
}

/// Renders a key for messages: `a/b/c`.
pub(crate) fn describe_key(key: &[(&'static FieldDef, Val)]) -> String {
    key.iter()
        .map(|(_, v)| match v {
            Val::Str(s) => s.clone(),
            other => other.to_json().to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A record type kept in one collection.
pub(crate) trait Record:
    Serialize + DeserializeOwned + Clone + Send + Sync + 'static
{
    /// Its collection.
    const DEF: &'static CollectionDef;

    /// The values of `DEF.fields`, in order.
    fn fields(&self) -> Vec<Val>;

    /// Why the record cannot be stored, if it cannot.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }

    /// The record as a document. `index` is its position in a batch, for the error.
    fn to_doc(&self, index: usize) -> Result<Doc, StoreError> {
        let invalid = |reason: String| StoreError::Invalid {
            collection: Self::DEF.name,
            index,
            reason,
        };
        self.validate().map_err(invalid)?;
        let fields = self.fields();
        debug_assert_eq!(
            fields.len(),
            Self::DEF.fields.len(),
            "{}: field values",
            Self::DEF.name
        );
        let body = match serde_json::to_value(self).map_err(|e| invalid(e.to_string()))? {
            Value::Object(map) => map,
            _ => return Err(invalid("a record must serialise to an object".to_owned())),
        };
        let mut doc = Doc {
            body,
            fields,
            prepared: None,
        };
        // Rewrite declared times in the body too, so every backend returns the same
        // millisecond-precision value.
        for (field, value) in Self::DEF.fields.iter().zip(&doc.fields) {
            if field.kind == FieldKind::Time && !field.derived {
                set_path(&mut doc.body, field.path, value.to_json());
            }
        }
        Ok(doc)
    }

    /// The record from a stored body.
    fn from_body(body: Body, sequence: i64) -> Result<Self, StoreError> {
        body.decode().map_err(|e| StoreError::Corrupt {
            collection: Self::DEF.name,
            sequence,
            reason: e.to_string(),
        })
    }
}

/// Sets `value` at a dotted `path` of a JSON object, creating objects on the way.
/// `Null` removes the member instead (an absent `Option`).
pub(crate) fn set_path(object: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            if value.is_null() {
                object.remove(path);
            } else {
                object.insert(path.to_owned(), value);
            }
        }
        Some((head, rest)) => {
            let child = object
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(map) = child {
                set_path(map, rest, value);
            }
        }
    }
}

/// Removes the member at a dotted `path` of a JSON object, if it is there.
pub(crate) fn remove_path(object: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            object.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(map)) = object.get_mut(head) {
                remove_path(map, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_match_is_unicode_aware() {
        for (haystack, needle, expected) in [
            ("Connection REFUSED by peer", "refused", true),
            ("Ошибка записи", "ОШИБКА", true),
            ("abc", "", true),
            ("abc", "abd", false),
            ("Straße", "STRASSE", false),
            ("KELVIN \u{212A}", "kk", false),
            ("\u{212A}elvin", "kelvin", true),
        ] {
            assert_eq!(
                contains_ignoring_case(haystack, needle),
                expected,
                "{haystack} / {needle}"
            );
        }
    }

    #[test]
    fn paths_are_set_and_removed_inside_nested_objects() {
        let mut object = Map::new();
        set_path(&mut object, "info.time", Value::from("t"));
        set_path(&mut object, "top", Value::from(1));
        assert_eq!(
            Value::Object(object.clone()),
            serde_json::json!({"info": {"time": "t"}, "top": 1})
        );
        set_path(&mut object, "top", Value::Null);
        remove_path(&mut object, "info.time");
        assert_eq!(Value::Object(object), serde_json::json!({"info": {}}));
    }

    #[test]
    fn times_are_truncated_to_milliseconds_and_printed_in_one_format() {
        let time = Utc
            .timestamp_opt(1_700_000_000, 123_456_789)
            .single()
            .expect("valid");
        let Val::Time(truncated) = Val::time(time) else {
            panic!("a time")
        };
        assert_eq!(truncated.timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(format_time(truncated), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            time_from_millis(truncated.timestamp_millis()),
            Some(truncated)
        );
    }
}
