//! SQL text for the SQLite backend: the schema of each collection, filters, sort orders,
//! and the conversion between rows and documents.
//!
//! Each collection is a STRICT table: `_sequence INTEGER PRIMARY KEY` (the rowid, so it is
//! indexed in both directions for free), `_modify_time` (milliseconds), one column per
//! declared field, and `body`: the record's JSON without the fields that have columns
//! (they are put back when a row is read, so nothing is stored twice). The history table
//! `<name>_history` has the same columns plus `_archive_time`.

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

use crate::body::Body;
use crate::doc::{
    CollectionDef, Cond, FieldDef, FieldKind, Find, Op, SortKey, Val, format_time, remove_path,
    set_path, time_from_millis,
};

/// The schema version this build writes (`PRAGMA user_version`). 2 added `role` to
/// service states and log records and `info_service_role` to fault reports; a file of
/// version 1 gets the columns when it is opened (see [`added_columns`]). 3 indexes log
/// records by service, level and time, and by task only where they have one; a file of
/// version 2 gets the new indexes and loses the one they replace (see [`stale_indexes`]).
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// The table of per-collection sequence counters.
pub(crate) const SEQUENCES_TABLE: &str = "_sequences";
/// Named leases (`crate::lease`): one row per lease.
pub(crate) const LEASES_TABLE: &str = "_leases";
/// Each distribution's commit in force (`crate::in_force`): one row per distribution.
pub(crate) const IN_FORCE_TABLE: &str = "_in_force";

fn quote(identifier: &str) -> String {
    format!("\"{identifier}\"")
}

fn column_type(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Str | FieldKind::StrList => "TEXT",
        FieldKind::Bool | FieldKind::Time => "INTEGER",
    }
}

/// The statements that create every table and index of `def` (idempotent).
#[cfg(test)]
pub(crate) fn schema(def: &CollectionDef) -> Vec<String> {
    let mut statements = tables(def);
    statements.extend(indexes(def).into_iter().map(|(_, statement)| statement));
    statements
}

fn is_key(def: &CollectionDef, field: &FieldDef) -> bool {
    def.key.iter().any(|k| std::ptr::eq(*k, field))
}

/// The column definitions of the declared fields, each as `, "name" TYPE [NOT NULL]`.
fn field_definitions(def: &CollectionDef) -> String {
    def.fields
        .iter()
        .map(|f| {
            let not_null = if is_key(def, f) { " NOT NULL" } else { "" };
            format!(", {} {}{not_null}", quote(f.column), column_type(f.kind))
        })
        .collect()
}

/// The statements that create the tables of `def`, current and history (idempotent).
pub(crate) fn tables(def: &CollectionDef) -> Vec<String> {
    let columns = field_definitions(def);
    let mut statements = vec![format!(
        "CREATE TABLE IF NOT EXISTS {} (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL{columns}, body TEXT NOT NULL) STRICT",
        quote(def.name)
    )];
    if def.history {
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {} (_sequence INTEGER PRIMARY KEY, _modify_time INTEGER NOT NULL, _archive_time INTEGER NOT NULL{columns}, body TEXT NOT NULL) STRICT",
            quote(&def.history_name())
        ));
    }
    statements
}

/// The statements that give `table` (of `def`, current or history), which has only the
/// columns `existing`, the columns of the fields declared since: each is added, and a
/// value the record's body held at the field's path moves into it (the body keeps only
/// what has no column). Refused for a key field or a time field, which a body cannot fill.
pub(crate) fn added_columns(
    def: &CollectionDef,
    table: &str,
    existing: &[String],
) -> Result<Vec<String>, String> {
    let mut statements = Vec::new();
    for field in def.fields {
        if existing.iter().any(|column| column == field.column) {
            continue;
        }
        if is_key(def, field) || field.kind == FieldKind::Time {
            return Err(format!(
                "table {table} lacks column {}, which an upgrade cannot add (a key or time field)",
                field.column
            ));
        }
        statements.push(format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            quote(table),
            quote(field.column),
            column_type(field.kind)
        ));
        if !field.derived {
            let path = format!("'$.{}'", field.path);
            statements.push(format!(
                "UPDATE {} SET {} = json_extract(body, {path}), body = json_remove(body, {path}) \
                 WHERE json_type(body, {path}) IS NOT NULL",
                quote(table),
                quote(field.column),
            ));
        }
    }
    Ok(statements)
}

/// The name of `def`'s (full) index of `fields`.
pub(crate) fn index_name(def: &CollectionDef, fields: &[&FieldDef]) -> String {
    let columns = fields
        .iter()
        .map(|f| f.column)
        .collect::<Vec<_>>()
        .join("_");
    format!("{}_{columns}", def.name)
}

/// The indexes of `def`, each as its name and the statement that creates it (idempotent),
/// once its columns exist. An index that starts with a [`CollectionDef::present_only`]
/// field is partial, and named apart from a full one of the same columns, so a file with
/// the full one gets the partial one and loses the other (see `stale_indexes`).
pub(crate) fn indexes(def: &CollectionDef) -> Vec<(String, String)> {
    let mut indexes = Vec::new();
    let list = |fields: &[&FieldDef]| {
        fields
            .iter()
            .map(|f| quote(f.column))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let key_columns = list(def.key);
    if !def.key.is_empty() {
        let name = format!("{}_key", def.name);
        indexes.push((
            name.clone(),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({key_columns})",
                quote(&name),
                quote(def.name)
            ),
        ));
    }
    for index in def
        .indexes
        .iter()
        .filter(|index| super::merge::kept(def, index) && !super::newest::replaces(def, index))
    {
        let name = index_name(def, index);
        let present = index
            .first()
            .filter(|first| def.present_only.iter().any(|p| std::ptr::eq(*p, **first)));
        let (name, condition) = match present {
            Some(first) => (
                format!("{name}_present"),
                format!(" WHERE {} IS NOT NULL", quote(first.column)),
            ),
            None => (name, String::new()),
        };
        indexes.push((
            name.clone(),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({}){condition}",
                quote(&name),
                quote(def.name),
                list(index)
            ),
        ));
    }
    if def.history {
        let history = def.history_name();
        if !def.key.is_empty() {
            let name = format!("{history}_key");
            indexes.push((
                name.clone(),
                format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {} ({key_columns})",
                    quote(&name),
                    quote(&history)
                ),
            ));
        }
        let name = format!("{history}_archive_time");
        indexes.push((
            name.clone(),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} (_archive_time)",
                quote(&name),
                quote(&history)
            ),
        ));
    }
    indexes
}

/// The statements that drop the indexes `existing` (names, on the tables of `def`) that
/// `def` no longer declares: an index a build stopped using costs every write and serves
/// no read.
pub(crate) fn stale_indexes(def: &CollectionDef, existing: &[String]) -> Vec<String> {
    let declared: Vec<String> = indexes(def).into_iter().map(|(name, _)| name).collect();
    existing
        .iter()
        .filter(|name| !declared.contains(name) && !name.starts_with("sqlite_autoindex_"))
        .map(|name| format!("DROP INDEX IF EXISTS {}", quote(name)))
        .collect()
}

/// The statement that creates the sequence counters.
pub(crate) fn sequences_schema() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {SEQUENCES_TABLE} (collection TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT"
    )
}

/// The leases table; expiry in milliseconds since the epoch.
pub(crate) fn leases_schema() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {LEASES_TABLE} (name TEXT PRIMARY KEY, holder TEXT NOT NULL, \
         token INTEGER NOT NULL, expires INTEGER NOT NULL) STRICT"
    )
}

/// The commits-in-force table; `at` in milliseconds since the epoch.
pub(crate) fn in_force_schema() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {IN_FORCE_TABLE} (distribution TEXT PRIMARY KEY, \
         branch TEXT NOT NULL, revision TEXT NOT NULL, at INTEGER NOT NULL) STRICT"
    )
}

/// Reserves `count` sequences; binds collection and count, returns the last one reserved.
pub(crate) fn reserve_sequences() -> String {
    format!(
        "INSERT INTO {SEQUENCES_TABLE} (collection, value) VALUES (?1, ?2) \
         ON CONFLICT (collection) DO UPDATE SET value = value + excluded.value RETURNING value"
    )
}

/// A field value as an SQL parameter.
pub(crate) fn to_sql(value: &Val) -> SqlValue {
    match value {
        Val::Null => SqlValue::Null,
        Val::Str(s) => SqlValue::Text(s.clone()),
        Val::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Val::Time(t) => SqlValue::Integer(t.timestamp_millis()),
        Val::StrList(list) => SqlValue::Text(Value::from(list.clone()).to_string()),
    }
}

/// The column list `"a", "b", …` of the declared fields.
pub(crate) fn field_columns(def: &CollectionDef) -> String {
    def.fields
        .iter()
        .map(|f| quote(f.column))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `INSERT` of a current row: binds `_sequence`, `_modify_time`, the fields, `body`.
pub(crate) fn insert_current(def: &CollectionDef) -> String {
    let placeholders = vec!["?"; def.fields.len() + 3].join(", ");
    format!(
        "INSERT INTO {} (_sequence, _modify_time, {}, body) VALUES ({placeholders})",
        quote(def.name),
        field_columns(def)
    )
}

/// Copies current rows matching `where_sql` into history, archived at parameter `?1`.
pub(crate) fn copy_to_history(def: &CollectionDef, where_sql: &str) -> String {
    let columns = field_columns(def);
    format!(
        "INSERT INTO {} (_sequence, _modify_time, _archive_time, {columns}, body) \
         SELECT _sequence, _modify_time, ?1, {columns}, body FROM {} AS t{where_sql}",
        quote(&def.history_name()),
        quote(def.name)
    )
}

/// Copies history row `?2` back to current as sequence `?1`, modified at `?3`.
pub(crate) fn copy_from_history(def: &CollectionDef) -> String {
    let columns = field_columns(def);
    format!(
        "INSERT INTO {} (_sequence, _modify_time, {columns}, body) \
         SELECT ?1, ?3, {columns}, body FROM {} WHERE _sequence = ?2",
        quote(def.name),
        quote(&def.history_name())
    )
}

/// The body to store: the record's JSON without the fields that have their own column.
pub(crate) fn stored_body(def: &CollectionDef, body: &Map<String, Value>) -> String {
    // Every column holds a top-level member: write the others, removing nothing.
    if columns_at_top(def)
        && let Ok(text) = serde_json::to_string(&Uncolumned { def, body })
    {
        return text;
    }
    let mut body = body.clone();
    for field in def.fields.iter().filter(|f| !f.derived) {
        remove_path(&mut body, field.path);
    }
    Value::Object(body).to_string()
}

/// Whether each of `def`'s columns holds a top-level member of its records.
fn columns_at_top(def: &CollectionDef) -> bool {
    def.fields
        .iter()
        .all(|f| f.derived || !f.path.contains('.'))
}

/// The top-level members of `body` that have no column in `def`, as a JSON object.
struct Uncolumned<'a> {
    def: &'a CollectionDef,
    body: &'a Map<String, Value>,
}

impl serde::Serialize for Uncolumned<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.body.iter().filter(|(key, _)| {
            !self
                .def
                .fields
                .iter()
                .any(|f| !f.derived && f.path == key.as_str())
        }))
    }
}

/// A field value binds as its column stores it, text borrowed rather than copied.
impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ToSqlOutput;
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Str(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Bool(b) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(*b))),
            Val::Time(t) => ToSqlOutput::Owned(SqlValue::Integer(t.timestamp_millis())),
            Val::StrList(_) => ToSqlOutput::Owned(to_sql(self)),
        })
    }
}

/// `UPDATE` of the current rows of `def` matching `filter`, setting each field of `set`
/// to its value (columns only: a declared field lives in its column, not in `body`), with
/// its parameters.
pub(crate) fn update(
    def: &CollectionDef,
    set: &[(&'static FieldDef, Val)],
    filter: &[Cond],
) -> (String, Vec<SqlValue>) {
    let mut params = Vec::with_capacity(set.len());
    let assignments = set
        .iter()
        .map(|(field, value)| {
            params.push(to_sql(value));
            format!("{} = ?{}", quote(field.column), params.len())
        })
        .collect::<Vec<_>>()
        .join(", ");
    let where_sql = where_clause(filter, &mut params);
    (
        format!(
            "UPDATE {} AS t SET {assignments}{where_sql}",
            quote(def.name)
        ),
        params,
    )
}

/// Builds ` WHERE …` (or nothing) for `filter` over a table aliased `t`, appending the
/// parameters to `params`.
pub(crate) fn where_clause(filter: &[Cond], params: &mut Vec<SqlValue>) -> String {
    let mut parts = Vec::with_capacity(filter.len());
    for cond in filter {
        let mut bind = |value: SqlValue| {
            params.push(value);
            format!("?{}", params.len())
        };
        let col = |f: &FieldDef| format!("t.{}", quote(f.column));
        parts.push(match cond {
            Cond::Eq(f, Val::Null) => format!("{} IS NULL", col(f)),
            Cond::Eq(f, v) => format!("{} = {}", col(f), bind(to_sql(v))),
            Cond::NotNull(f) => format!("{} IS NOT NULL", col(f)),
            Cond::In(f, values) if values.is_empty() => {
                let _ = f;
                "0".to_owned()
            }
            Cond::In(f, values) => {
                let list: Vec<String> = values.iter().map(|v| bind(to_sql(v))).collect();
                format!("{} IN ({})", col(f), list.join(", "))
            }
            Cond::Cmp(f, op, v) => format!("{} {} {}", col(f), op_sql(*op), bind(to_sql(v))),
            Cond::ContainsCi(f, text) => {
                format!(
                    "vu_contains_ci({}, {})",
                    col(f),
                    bind(SqlValue::Text(text.clone()))
                )
            }
            Cond::Has(f, value) => format!(
                "EXISTS (SELECT 1 FROM json_each({}) AS j WHERE j.value = {})",
                col(f),
                bind(SqlValue::Text(value.clone()))
            ),
            Cond::Sequence(op, n) => format!(
                "t._sequence {} {}",
                op_sql(*op),
                bind(SqlValue::Integer(*n))
            ),
            Cond::SequenceIn(list) if list.is_empty() => "0".to_owned(),
            // A long list (a text search's candidates) is one parameter, not thousands.
            Cond::SequenceIn(list) if list.len() > 64 => format!(
                "t._sequence IN (SELECT value FROM json_each({}))",
                bind(SqlValue::Text(
                    serde_json::to_string(list).unwrap_or_default()
                ))
            ),
            Cond::SequenceIn(list) => {
                let list: Vec<String> = list.iter().map(|n| bind(SqlValue::Integer(*n))).collect();
                format!("t._sequence IN ({})", list.join(", "))
            }
        });
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    }
}

fn op_sql(op: Op) -> &'static str {
    match op {
        Op::Gt => ">",
        Op::Gte => ">=",
        Op::Lt => "<",
        Op::Lte => "<=",
    }
}

/// Binds `find`'s limit (-1: none) and skip; returns their parameter numbers.
fn bind_window(find: &Find, params: &mut Vec<SqlValue>) -> (usize, usize) {
    params.push(SqlValue::Integer(
        find.limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)),
    ));
    let limit = params.len();
    params.push(SqlValue::Integer(
        i64::try_from(find.skip).unwrap_or(i64::MAX),
    ));
    (limit, params.len())
}

/// ` ORDER BY … LIMIT … OFFSET …` for `find`.
pub(crate) fn order_and_window(find: &Find, params: &mut Vec<SqlValue>) -> String {
    let mut keys: Vec<String> = find
        .sort
        .iter()
        .filter_map(|(key, desc)| match key {
            SortKey::Field(f) => Some(format!(
                "t.{} {}",
                quote(f.column),
                if *desc { "DESC" } else { "ASC" }
            )),
            SortKey::Sequence => None,
        })
        .collect();
    keys.push(format!(
        "t._sequence {}",
        if find.sequence_descending() {
            "DESC"
        } else {
            "ASC"
        }
    ));
    let (limit, offset) = bind_window(find, params);
    format!(
        " ORDER BY {} LIMIT ?{limit} OFFSET ?{offset}",
        keys.join(", ")
    )
}

/// The `SELECT` of `find` on the current rows of `def`, with its parameters.
///
/// A filter `field IN (a, b, …)` next to equalities, sorted by one more field, is read as
/// one index range per value when an index has exactly those columns (equalities, the
/// `IN` field, the sort field): each range is already in order, so each gives at most
/// `skip + limit` keys from the index alone, and only the rows of the merged window are
/// read. A single range over the same index would have to sort every matching row: the
/// newest 1,000 warnings of a service among millions of its lines.
pub(crate) fn find(def: &CollectionDef, find: &Find, params: &mut Vec<SqlValue>) -> String {
    let mut text = select(def, def.name, false);
    let Some((position, sort)) = ranges_to_merge(def, find) else {
        text.push_str(&where_clause(&find.filter, params));
        text.push_str(&order_and_window(find, params));
        return text;
    };
    let Cond::In(field, values) = &find.filter[position] else {
        unreachable!("ranges_to_merge names an IN condition");
    };
    let direction = if find.sequence_descending() {
        "DESC"
    } else {
        "ASC"
    };
    let sort = quote(sort.column);
    let window = find.limit.unwrap_or(0).saturating_add(find.skip);
    let members: Vec<String> = values
        .iter()
        .map(|value| {
            let mut filter = find.filter.clone();
            filter[position] = Cond::Eq(field, value.clone());
            let where_sql = where_clause(&filter, params);
            params.push(SqlValue::Integer(i64::try_from(window).unwrap_or(i64::MAX)));
            format!(
                "SELECT * FROM (SELECT t._sequence AS s, t.{sort} AS k FROM {} AS t{where_sql} \
                 ORDER BY t.{sort} {direction}, t._sequence {direction} LIMIT ?{})",
                quote(def.name),
                params.len()
            )
        })
        .collect();
    let (limit, offset) = bind_window(find, params);
    text.push_str(&format!(
        " WHERE t._sequence IN (SELECT s FROM ({}) ORDER BY k {direction}, s {direction} \
         LIMIT ?{limit} OFFSET ?{offset}) ORDER BY t.{sort} {direction}, t._sequence {direction}",
        members.join(" UNION ALL ")
    ));
    text
}

/// For [`find`]: the position of the `IN` condition to read as merged ranges and the sort
/// field, when `find` is limited, sorted by one field, and an index of `def` has exactly
/// the filter's equality fields, then the `IN` field, then the sort field.
fn ranges_to_merge(def: &CollectionDef, find: &Find) -> Option<(usize, &'static FieldDef)> {
    find.limit?;
    let [(SortKey::Field(sort), _)] = find.sort.as_slice() else {
        return None;
    };
    let position = find
        .filter
        .iter()
        .position(|c| matches!(c, Cond::In(_, values) if values.len() > 1))?;
    let Cond::In(field, _) = &find.filter[position] else {
        return None;
    };
    let equal: Vec<&FieldDef> = find
        .filter
        .iter()
        .filter_map(|c| match c {
            Cond::Eq(f, v) if *v != Val::Null => Some(*f),
            _ => None,
        })
        .collect();
    let fits = |index: &&&[&FieldDef]| {
        let n = index.len();
        n == equal.len() + 2
            && std::ptr::eq(index[n - 1], *sort)
            && std::ptr::eq(index[n - 2], *field)
            && index[..n - 2]
                .iter()
                .all(|f| equal.iter().any(|e| std::ptr::eq(*e, *f)))
    };
    def.indexes
        .iter()
        .any(|index| fits(&index))
        .then_some((position, *sort))
}

/// The columns [`read_row`] expects, of a table aliased `t`.
fn row_columns(def: &CollectionDef, archived: bool) -> String {
    let archive = if archived { "t._archive_time" } else { "NULL" };
    let fields: String = def
        .fields
        .iter()
        .map(|f| format!(", t.{}", quote(f.column)))
        .collect();
    format!("t._sequence, t._modify_time, {archive}{fields}, t.body")
}

/// `SELECT` of the columns [`read_row`] expects, from `table` aliased `t`.
pub(crate) fn select(def: &CollectionDef, table: &str, archived: bool) -> String {
    format!(
        "SELECT {} FROM {} AS t",
        row_columns(def, archived),
        quote(table)
    )
}

/// `SELECT` of the columns [`read_row`] expects and then `time` (at [`listed_time`]), of
/// the current rows of `def` whose sequences the JSON array `?1` lists, in no order of
/// their own: each row is looked up by its sequence, none sorted.
pub(crate) fn select_listed(def: &CollectionDef, time: &FieldDef) -> String {
    format!(
        "SELECT {}, t.{} FROM json_each(?1) AS c CROSS JOIN {} AS t ON t._sequence = c.value",
        row_columns(def, false),
        quote(time.column),
        quote(def.name)
    )
}

/// The index of the time column of [`select_listed`].
pub(crate) fn listed_time(def: &CollectionDef) -> usize {
    def.fields.len() + 4
}

/// A row as (sequence, modify millis, archive millis, body).
pub(crate) type Row = (i64, i64, Option<i64>, Body);

/// A row of [`select`]. Its body is [`Body::Split`] when every column holds a top-level
/// member, else the document with the column values put back.
pub(crate) fn read_row(def: &CollectionDef, row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let sequence: i64 = row.get(0)?;
    let modify: i64 = row.get(1)?;
    let archive: Option<i64> = row.get(2)?;
    let body_index = def.fields.len() + 3;
    let body_text = row.get_ref(body_index)?.as_str()?;
    let not_object = || {
        rusqlite::Error::InvalidColumnType(
            body_index,
            "body (not a JSON object)".to_owned(),
            rusqlite::types::Type::Text,
        )
    };
    let own = def.fields.iter().enumerate().filter(|(_, f)| !f.derived);
    let body = if columns_at_top(def) {
        if !body_text.trim_start().starts_with('{') {
            return Err(not_object());
        }
        let columns = own
            .map(|(i, field)| Ok((field.path, column_json(field, row.get_ref(i + 3)?, i + 3)?)))
            .collect::<rusqlite::Result<_>>()?;
        Body::Split {
            columns,
            rest: body_text.to_owned(),
        }
    } else {
        let Ok(Value::Object(mut body)) = serde_json::from_str(body_text) else {
            return Err(not_object());
        };
        for (i, field) in own {
            let value = column_json(field, row.get_ref(i + 3)?, i + 3)?;
            set_path(&mut body, field.path, value);
        }
        Body::Json(Value::Object(body))
    };
    Ok((sequence, modify, archive, body))
}

fn column_json(field: &FieldDef, value: ValueRef<'_>, index: usize) -> rusqlite::Result<Value> {
    let bad =
        || rusqlite::Error::InvalidColumnType(index, field.column.to_owned(), value.data_type());
    Ok(match (field.kind, value) {
        (_, ValueRef::Null) => Value::Null,
        (FieldKind::Str, ValueRef::Text(t)) => {
            Value::String(String::from_utf8_lossy(t).into_owned())
        }
        (FieldKind::Bool, ValueRef::Integer(i)) => Value::Bool(i != 0),
        (FieldKind::Time, ValueRef::Integer(ms)) => {
            Value::String(format_time(time_from_millis(ms).ok_or_else(bad)?))
        }
        (FieldKind::StrList, ValueRef::Text(t)) => serde_json::from_slice(t).map_err(|_| bad())?,
        _ => return Err(bad()),
    })
}

/// Whether the file `conn` reads first has a table named `name`.
pub(crate) fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logs::{LOG_RECORDS, LogQuery};
    use crate::model::tasks::TASKS;

    #[test]
    fn an_empty_filter_has_no_where_clause() {
        let mut params = Vec::new();
        assert_eq!(where_clause(&[], &mut params), "");
        assert!(params.is_empty());
    }

    #[test]
    fn log_filters_become_one_conjunction_with_numbered_parameters() {
        let query = LogQuery {
            service: Some("api".parse().expect("name")),
            min_level: Some(vupdate_core::log::Level::Warn),
            text: Some("refused".into()),
            after_sequence: Some(7),
            ..LogQuery::default()
        };
        let mut params = Vec::new();
        let sql = where_clause(&query.filter(), &mut params);
        assert_eq!(
            sql,
            " WHERE t.\"service\" = ?1 AND t.\"level\" IN (?2, ?3) AND vu_contains_ci(t.\"message\", ?4) AND t._sequence > ?5"
        );
        assert_eq!(params.len(), 5);
    }

    #[test]
    fn a_service_and_level_query_reads_one_index_range_per_level() {
        let query = |instance: Option<&str>| LogQuery {
            service: Some("api".parse().expect("name")),
            instance: instance.map(str::to_owned),
            min_level: Some(vupdate_core::log::Level::Warn),
            limit: Some(1000),
            ..LogQuery::default()
        };
        let mut params = Vec::new();
        let merged = find(&LOG_RECORDS, &query(None).newest_first(), &mut params);
        assert_eq!(merged.matches("UNION ALL").count(), 1, "{merged}");
        assert!(merged.contains("t.\"level\" = ?2"), "{merged}");
        // No index has service, instance and level: one range, as before.
        let mut params = Vec::new();
        let plain = find(
            &LOG_RECORDS,
            &query(Some("vm-1")).newest_first(),
            &mut params,
        );
        assert!(!plain.contains("UNION"), "{plain}");
        assert!(plain.contains("t.\"level\" IN (?3, ?4)"), "{plain}");
    }

    #[test]
    fn indexes_a_build_no_longer_declares_are_dropped() {
        let existing = [
            "log_records_task_time".to_owned(),
            "log_records_task_time_present".to_owned(),
            "log_records_time".to_owned(),
            "sqlite_autoindex_log_records_1".to_owned(),
        ];
        assert_eq!(
            stale_indexes(&LOG_RECORDS, &existing),
            ["DROP INDEX IF EXISTS \"log_records_task_time\""]
        );
        let (_, partial) = indexes(&LOG_RECORDS)
            .into_iter()
            .find(|(name, _)| name == "log_records_task_time_present")
            .expect("the task index");
        assert!(partial.ends_with("(\"task\", \"time\") WHERE \"task\" IS NOT NULL"));
    }

    #[test]
    fn no_index_is_kept_that_another_has_with_the_level_before_its_last() {
        let names: Vec<String> = indexes(&LOG_RECORDS).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"log_records_service_level_time".to_owned()));
        assert!(!names.contains(&"log_records_service_time".to_owned()));
        assert_eq!(
            stale_indexes(&LOG_RECORDS, &["log_records_service_time".to_owned()]),
            ["DROP INDEX IF EXISTS \"log_records_service_time\""]
        );
    }

    #[test]
    fn every_collection_gets_its_table_key_and_history() {
        let statements = schema(&TASKS);
        assert!(
            statements[0]
                .starts_with("CREATE TABLE IF NOT EXISTS \"tasks\" (_sequence INTEGER PRIMARY KEY")
        );
        assert!(statements.iter().any(|s| {
            s.contains("UNIQUE INDEX IF NOT EXISTS \"tasks_key\" ON \"tasks\" (\"task\")")
        }));
        assert!(
            statements
                .iter()
                .any(|s| s.contains("\"tasks_history\" (_sequence INTEGER PRIMARY KEY"))
        );
        let logs = schema(&LOG_RECORDS);
        assert!(
            !logs
                .iter()
                .any(|s| s.contains("_history") || s.contains("UNIQUE"))
        );
    }
}
