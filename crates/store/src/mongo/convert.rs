//! Conversions for the MongoDB backend: records to BSON documents (declared times as BSON
//! dates so a server's TTL index can work, integers as Int64, absent options left out),
//! BSON back to JSON, and filters and sort orders as query documents.
//!
//! Absent values are left out rather than stored as `null`, and "absent" is queried with
//! `$exists: false`: a real server treats both alike, and the test stand-in (nx-27017)
//! does not match `null` against missing fields.

use bson::{Bson, Document, doc};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::backend::Raw;
use crate::body::Body;
use crate::doc::{CollectionDef, Cond, Doc, Find, Op, SortKey, Val, format_time, time_from_millis};

/// `_sequence`.
pub(crate) const SEQUENCE: &str = "_sequence";
/// `_modifyTime`.
pub(crate) const MODIFY_TIME: &str = "_modifyTime";
/// `_archiveTime`.
pub(crate) const ARCHIVE_TIME: &str = "_archiveTime";

/// JSON as BSON; object members that are `null` are left out.
pub(crate) fn json_to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Bson::Int64(i),
            (None, Some(u), _) => i64::try_from(u).map_or(Bson::Double(u as f64), Bson::Int64),
            (None, None, Some(f)) => Bson::Double(f),
            (None, None, None) => Bson::Null,
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(json_to_bson).collect()),
        Value::Object(map) => Bson::Document(object_to_document(map)),
    }
}

fn object_to_document(map: &Map<String, Value>) -> Document {
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), json_to_bson(v)))
        .collect()
}

/// BSON as JSON: dates become RFC 3339 strings (as chrono's serde writes them), 32- and
/// 64-bit integers numbers.
pub(crate) fn bson_to_json(value: &Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Int32(i) => Value::from(*i),
        Bson::Int64(i) => Value::from(*i),
        Bson::Double(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Array(items) => Value::Array(items.iter().map(bson_to_json).collect()),
        Bson::Document(d) => Value::Object(
            d.iter()
                .map(|(k, v)| (k.clone(), bson_to_json(v)))
                .collect(),
        ),
        Bson::DateTime(t) => time_from_millis(t.timestamp_millis())
            .map_or(Value::Null, |t| Value::String(format_time(t))),
        Bson::ObjectId(id) => Value::String(id.to_hex()),
        other => Value::String(other.to_string()),
    }
}

/// A field value as BSON.
pub(crate) fn val_to_bson(value: &Val) -> Bson {
    match value {
        Val::Null => Bson::Null,
        Val::Str(s) => Bson::String(s.clone()),
        Val::Bool(b) => Bson::Boolean(*b),
        Val::Time(t) => Bson::DateTime(bson::DateTime::from_millis(t.timestamp_millis())),
        Val::StrList(list) => Bson::Array(list.iter().cloned().map(Bson::String).collect()),
    }
}

/// A time as a BSON date.
pub(crate) fn date(time: DateTime<Utc>) -> Bson {
    Bson::DateTime(bson::DateTime::from_millis(time.timestamp_millis()))
}

/// A number that a server may return as Int32, Int64 or Double.
pub(crate) fn as_i64(value: Option<&Bson>) -> Option<i64> {
    match value? {
        Bson::Int32(i) => Some(i64::from(*i)),
        Bson::Int64(i) => Some(*i),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// Sets `value` at a dotted `path`, creating documents on the way; `Null` removes it.
fn set_path(document: &mut Document, path: &str, value: Bson) {
    match path.split_once('.') {
        None => {
            if value == Bson::Null {
                document.remove(path);
            } else {
                document.insert(path, value);
            }
        }
        Some((head, rest)) => {
            if !matches!(document.get(head), Some(Bson::Document(_))) {
                document.insert(head, Document::new());
            }
            if let Some(Bson::Document(child)) = document.get_mut(head) {
                set_path(child, rest, value);
            }
        }
    }
}

/// The value at a dotted `path`.
pub(crate) fn get_path<'a>(document: &'a Document, path: &str) -> Option<&'a Bson> {
    match path.split_once('.') {
        None => document.get(path),
        Some((head, rest)) => match document.get(head)? {
            Bson::Document(child) => get_path(child, rest),
            _ => None,
        },
    }
}

/// The BSON document stored for `doc` as version `sequence`, written `now`.
pub(crate) fn to_document(
    def: &CollectionDef,
    doc: &Doc,
    sequence: i64,
    now: DateTime<Utc>,
) -> Document {
    let mut document = object_to_document(&doc.body);
    for (field, value) in def.fields.iter().zip(&doc.fields) {
        set_path(&mut document, field.path, val_to_bson(value));
    }
    document.insert(SEQUENCE, Bson::Int64(sequence));
    document.insert(MODIFY_TIME, date(now));
    document
}

/// A stored document read back.
pub(crate) fn to_raw(
    collection: &'static str,
    mut document: Document,
) -> Result<Raw, crate::StoreError> {
    let sequence = as_i64(document.get(SEQUENCE));
    let time = |value: Option<Bson>| match value {
        Some(Bson::DateTime(t)) => time_from_millis(t.timestamp_millis()),
        _ => None,
    };
    let modify_time = time(document.remove(MODIFY_TIME));
    let archive_time = time(document.remove(ARCHIVE_TIME));
    document.remove(SEQUENCE);
    document.remove("_id");
    match (sequence, modify_time) {
        (Some(sequence), Some(modify_time)) => Ok(Raw {
            sequence,
            modify_time,
            archive_time,
            body: Body::Json(bson_to_json(&Bson::Document(document))),
        }),
        _ => Err(crate::StoreError::Corrupt {
            collection,
            sequence: sequence.unwrap_or(-1),
            reason: "the document lacks `_sequence` or `_modifyTime`".to_owned(),
        }),
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Gt => "$gt",
        Op::Gte => "$gte",
        Op::Lt => "$lt",
        Op::Lte => "$lte",
    }
}

/// Escapes every ASCII punctuation character, so the text matches literally in a regex.
pub(crate) fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_punctuation() || c == ' ' {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The query document for `filter`: conditions on the same path are merged into one
/// operator document, and an empty filter is `{}` (never an empty `$and`).
pub(crate) fn filter_document(filter: &[Cond]) -> Document {
    let mut clauses: Vec<(String, Bson)> = Vec::new();
    for cond in filter {
        let (path, clause) = match cond {
            Cond::Eq(f, Val::Null) => {
                (f.path.to_owned(), Bson::Document(doc! { "$exists": false }))
            }
            Cond::Eq(f, v) => (f.path.to_owned(), val_to_bson(v)),
            Cond::NotNull(f) => (f.path.to_owned(), Bson::Document(doc! { "$exists": true })),
            Cond::In(f, values) => {
                let values: Vec<Bson> = values.iter().map(val_to_bson).collect();
                (f.path.to_owned(), Bson::Document(doc! { "$in": values }))
            }
            Cond::Cmp(f, op, v) => (
                f.path.to_owned(),
                Bson::Document(doc! { op_name(*op): val_to_bson(v) }),
            ),
            Cond::ContainsCi(f, text) => (
                f.path.to_owned(),
                Bson::Document(doc! { "$regex": regex_escape(text), "$options": "i" }),
            ),
            Cond::Has(f, value) => (f.path.to_owned(), Bson::String(value.clone())),
            Cond::Sequence(op, n) => (
                SEQUENCE.to_owned(),
                Bson::Document(doc! { op_name(*op): Bson::Int64(*n) }),
            ),
            Cond::SequenceIn(list) => {
                let list: Vec<Bson> = list.iter().map(|n| Bson::Int64(*n)).collect();
                (SEQUENCE.to_owned(), Bson::Document(doc! { "$in": list }))
            }
        };
        clauses.push((path, clause));
    }
    let mut document = Document::new();
    let mut extra = Vec::new();
    for (path, clause) in clauses {
        match (document.get_mut(&path), clause) {
            (None, clause) => {
                document.insert(path, clause);
            }
            (Some(Bson::Document(existing)), Bson::Document(more))
                if more
                    .keys()
                    .all(|k| k.starts_with('$') && !existing.contains_key(k)) =>
            {
                existing.extend(more);
            }
            (Some(_), clause) => extra.push(doc! { path: clause }),
        }
    }
    if !extra.is_empty() {
        document.insert("$and", extra);
    }
    document
}

/// The sort document for `find`, `_sequence` last.
pub(crate) fn sort_document(find: &Find) -> Document {
    let mut document = Document::new();
    for (key, desc) in &find.sort {
        if let SortKey::Field(f) = key {
            document.insert(f.path, if *desc { -1 } else { 1 });
        }
    }
    document.insert(SEQUENCE, if find.sequence_descending() { -1 } else { 1 });
    document
}

/// A document's key as a query document (from the stored values).
pub(crate) fn key_document(def: &CollectionDef, document: &Document) -> Document {
    def.key
        .iter()
        .map(|f| {
            (
                f.path.to_owned(),
                get_path(document, f.path).cloned().unwrap_or(Bson::Null),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logs::LogQuery;

    #[test]
    fn an_empty_filter_is_an_empty_document() {
        assert_eq!(filter_document(&[]), Document::new());
    }

    #[test]
    fn conditions_on_one_path_merge_and_text_is_matched_literally() {
        let from = DateTime::from_timestamp_millis(1_000).expect("time");
        let to = DateTime::from_timestamp_millis(2_000).expect("time");
        let query = LogQuery {
            from_time: Some(from),
            to_time: Some(to),
            text: Some("a.b (c)".into()),
            task: None,
            ..LogQuery::default()
        };
        let filter = filter_document(&query.filter());
        assert_eq!(
            filter,
            doc! {
                "time": { "$gte": date(from), "$lte": date(to) },
                "message": { "$regex": "a\\.b\\ \\(c\\)", "$options": "i" },
            }
        );
    }

    #[test]
    fn numbers_of_either_width_are_read() {
        assert_eq!(as_i64(Some(&Bson::Int32(7))), Some(7));
        assert_eq!(as_i64(Some(&Bson::Int64(1 << 40))), Some(1 << 40));
        assert_eq!(as_i64(Some(&Bson::String("7".into()))), None);
    }

    #[test]
    fn null_members_are_left_out_and_dates_come_back_as_rfc3339() {
        let json = serde_json::json!({"a": null, "b": {"c": 1, "d": null}, "e": [null, 2]});
        let bson = json_to_bson(&json);
        assert_eq!(
            bson,
            Bson::Document(doc! {"b": {"c": 1_i64}, "e": [Bson::Null, 2_i64]})
        );
        let time = DateTime::from_timestamp_millis(1_700_000_000_123).expect("time");
        assert_eq!(
            bson_to_json(&date(time)),
            Value::from("2023-11-14T22:13:20.123Z")
        );
    }
}
