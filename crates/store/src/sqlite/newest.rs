//! The newest row of each key of a collection's [`CollectionDef::newest`] fields (a log
//! source's last line, which the receiver's de-duplication asks for once per source).
//!
//! MongoDB keeps an index of those fields; SQLite keeps instead a table of each key's
//! newest `_sequence`, `_newest_<name>`, written once per key per write rather than once
//! per row: the index cost each log line an entry of five strings, about a fifth of the
//! writer's work per line (`cargo bench -p vupdate-store --bench logs`: 200k lines/s with
//! it at 1M lines, 270k without).
//!
//! A find of exactly that shape (each field equal to a value, `_sequence` descending, one
//! row) reads the table, then the row by its `_sequence`, checked on the filter. An entry
//! names its key's newest row while that row stays: when a row goes (expiry), its entry
//! goes with it, and its key has no newest row here even if older rows of it are left
//! (rows expire by time, and a key's rows come in time order, so that is rare; at worst a
//! sender's retry of lines older than the retention is stored again). An update of the
//! fields (the roles' split) builds the table again from the rows, and so does opening a
//! file that has the index (written by an older build, which kept no table).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use crate::doc::{CollectionDef, Cond, Doc, FieldDef, Find, SortKey, Val};

/// The table of `def`'s newest rows by key.
fn table(def: &CollectionDef) -> String {
    format!("_newest_{}", def.name)
}

/// The SQL of a key: its values as one JSON array (a `NULL` field as `null`), so that any
/// number of fields, absent ones included, compare as one text.
fn key_sql(values: impl Iterator<Item = String>) -> String {
    format!("json_array({})", values.collect::<Vec<_>>().join(", "))
}

/// The columns of row `t` that hold `fields`.
fn row_columns(fields: &[&FieldDef]) -> impl Iterator<Item = String> {
    fields.iter().map(|f| format!("t.\"{}\"", f.column))
}

/// The key of parameters `?1`…`?n`.
fn param_key_sql(fields: &[&FieldDef]) -> String {
    key_sql((1..=fields.len()).map(|i| format!("?{i}")))
}

/// Whether `index` of `def` is its newest rows' index, which SQLite keeps as a table.
pub(crate) fn replaces(def: &CollectionDef, index: &[&FieldDef]) -> bool {
    def.newest.is_some_and(|fields| {
        fields.len() == index.len() && fields.iter().zip(index).all(|(a, b)| std::ptr::eq(*a, *b))
    })
}

/// Creates `def`'s table when it has [`CollectionDef::newest`] fields, filled from the
/// rows when it is new or the file has the index (`existing_indexes`: an older build
/// opened the file since, and kept no table); the index is read before it is dropped.
pub(crate) fn open(
    conn: &Connection,
    def: &CollectionDef,
    existing_indexes: &[String],
) -> rusqlite::Result<()> {
    let Some(fields) = def.newest else {
        return Ok(());
    };
    let name = &table(def);
    let existed = super::sql::table_exists(conn, name)?;
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS \"{name}\" (sequence INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE) STRICT"
    ))?;
    if !existed || existing_indexes.contains(&super::sql::index_name(def, fields)) {
        rebuild(conn, def, fields)?;
    }
    Ok(())
}

/// Fills `def`'s table again from its rows.
fn rebuild(conn: &Connection, def: &CollectionDef, fields: &[&FieldDef]) -> rusqlite::Result<()> {
    let columns = row_columns(fields).collect::<Vec<_>>().join(", ");
    conn.execute_batch(&format!(
        "DELETE FROM \"{table}\"; \
         INSERT INTO \"{table}\" (sequence, key) SELECT max(t._sequence), {key} FROM \"{name}\" AS t GROUP BY {columns};",
        table = table(def),
        key = key_sql(row_columns(fields)),
        name = def.name,
    ))
}

/// The newest rows of a write's keys, recorded once per run of rows of one key (a batch
/// is one source's lines) rather than once per row.
pub(crate) struct Recorder<'a> {
    fields: Vec<usize>,
    upsert: rusqlite::CachedStatement<'a>,
    /// The key of the rows just seen and the newest `_sequence` among them.
    run: Option<(Vec<Val>, i64)>,
}

impl<'a> Recorder<'a> {
    /// A recorder for a write to `def` within `conn`'s transaction; `None` when `def` has
    /// no [`CollectionDef::newest`] fields.
    pub(crate) fn new(conn: &'a Connection, def: &CollectionDef) -> rusqlite::Result<Option<Self>> {
        let Some(fields) = def.newest else {
            return Ok(None);
        };
        let upsert = conn.prepare_cached(&format!(
            "INSERT INTO \"{table}\" (sequence, key) VALUES (?{last}, {key}) \
             ON CONFLICT (key) DO UPDATE SET sequence = excluded.sequence \
             WHERE excluded.sequence > sequence",
            table = table(def),
            last = fields.len() + 1,
            key = param_key_sql(fields),
        ))?;
        Ok(Some(Recorder {
            fields: fields.iter().filter_map(|f| def.position(f)).collect(),
            upsert,
            run: None,
        }))
    }

    /// Notes that `doc` was written as `sequence`.
    pub(crate) fn saw(&mut self, doc: &Doc, sequence: i64) -> rusqlite::Result<()> {
        if let Some((key, newest)) = &mut self.run
            && self
                .fields
                .iter()
                .zip(key.iter())
                .all(|(&i, v)| doc.fields[i] == *v)
        {
            *newest = sequence;
            return Ok(());
        }
        let key = self.fields.iter().map(|&i| doc.fields[i].clone()).collect();
        if let Some(run) = self.run.replace((key, sequence)) {
            self.record(run)?;
        }
        Ok(())
    }

    /// Records the last run; call once every row is written.
    pub(crate) fn finish(mut self) -> rusqlite::Result<()> {
        match self.run.take() {
            Some(run) => self.record(run),
            None => Ok(()),
        }
    }

    fn record(&mut self, (key, sequence): (Vec<Val>, i64)) -> rusqlite::Result<()> {
        for (i, value) in key.iter().enumerate() {
            self.upsert.raw_bind_parameter(i + 1, value)?;
        }
        self.upsert.raw_bind_parameter(key.len() + 1, sequence)?;
        self.upsert.raw_execute().map(drop)
    }
}

/// When `find` asks for the newest row of one key of `def` (each of its
/// [`CollectionDef::newest`] fields equal to a value, `_sequence` descending, one row),
/// the same find limited to that row's `_sequence` (or to none, when the key has no entry):
/// the filter still checks the row.
pub(crate) fn narrow(
    conn: &Connection,
    def: &CollectionDef,
    mut find: Find,
) -> rusqlite::Result<Find> {
    let Some(fields) = def.newest else {
        return Ok(find);
    };
    let asks_newest = matches!(find.sort.as_slice(), [(SortKey::Sequence, true)])
        && find.skip == 0
        && find.limit == Some(1)
        && find.filter.len() == fields.len();
    if !asks_newest {
        return Ok(find);
    }
    let mut key = Vec::with_capacity(fields.len());
    for field in fields {
        let value = find.filter.iter().find_map(|c| match c {
            Cond::Eq(f, value @ (Val::Str(_) | Val::Null)) if std::ptr::eq(*f, *field) => {
                Some(value)
            }
            _ => None,
        });
        match value {
            Some(value) => key.push(value),
            None => return Ok(find),
        }
    }
    let sequence: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT sequence FROM \"{}\" WHERE key = {}",
            table(def),
            param_key_sql(fields)
        ))?
        .query_row(params_from_iter(key), |row| row.get(0))
        .optional()?;
    find.filter
        .push(Cond::SequenceIn(sequence.into_iter().collect()));
    Ok(find)
}

/// After `def`'s rows matching `filter` were deleted: their entries go. For a list of
/// `_sequence`s (expiry's chunks) those entries; otherwise every entry whose row is gone.
pub(crate) fn deleted(
    conn: &Connection,
    def: &CollectionDef,
    filter: &[Cond],
) -> rusqlite::Result<()> {
    if def.newest.is_none() {
        return Ok(());
    }
    let table = table(def);
    match filter {
        [Cond::SequenceIn(sequences)] => {
            let list = serde_json::to_string(sequences).unwrap_or_default();
            conn.prepare_cached(&format!(
                "DELETE FROM \"{table}\" WHERE sequence IN (SELECT value FROM json_each(?1))"
            ))?
            .execute([SqlValue::Text(list)])?;
        }
        _ => {
            conn.prepare_cached(&format!(
                "DELETE FROM \"{table}\" AS n WHERE NOT EXISTS \
                 (SELECT 1 FROM \"{}\" AS t WHERE t._sequence = n.sequence)",
                def.name
            ))?
            .execute([])?;
        }
    }
    Ok(())
}

/// After an update of `def`'s rows that set `set`: when it changed a key field, the
/// table is built again from the rows (a key's newest row may have moved to another key).
pub(crate) fn updated(
    conn: &Connection,
    def: &CollectionDef,
    set: &[(&'static FieldDef, Val)],
) -> rusqlite::Result<()> {
    let Some(fields) = def.newest else {
        return Ok(());
    };
    if set
        .iter()
        .any(|(field, _)| fields.iter().any(|f| std::ptr::eq(*f, *field)))
    {
        rebuild(conn, def, fields)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logs::{INSTANCE, LOG_RECORDS, LogQuery, ROLE};
    use crate::sqlite::sql;

    /// A file with the log records' table and its table of newest lines, holding lines
    /// 1–3 of sources on `vm-1`, `vm-1` and `vm-2`.
    fn file() -> Connection {
        let conn = Connection::open_in_memory().expect("open");
        for statement in sql::tables(&LOG_RECORDS) {
            conn.execute_batch(&statement).expect("table");
        }
        open(&conn, &LOG_RECORDS, &[]).expect("newest table");
        conn.execute_batch(
            "INSERT INTO log_records (_sequence, _modify_time, service, instance, directory, process, body) VALUES \
             (1, 0, 'api', 'vm-1', '/srv', '7', '{}'), (2, 0, 'api', 'vm-1', '/srv', '7', '{}'), \
             (3, 0, 'api', 'vm-2', '/srv', '7', '{}');",
        )
        .expect("rows");
        rebuild(&conn, &LOG_RECORDS, LOG_RECORDS.newest.expect("fields")).expect("rebuild");
        conn
    }

    fn entries(conn: &Connection) -> Vec<(i64, String)> {
        conn.prepare("SELECT sequence, key FROM _newest_log_records ORDER BY sequence")
            .and_then(|mut s| {
                s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect()
            })
            .expect("entries")
    }

    #[test]
    fn rows_deleted_by_any_filter_take_their_entries_with_them() {
        let conn = file();
        assert_eq!(
            entries(&conn),
            [
                (2, r#"["api","vm-1","/srv","7",null]"#.to_owned()),
                (3, r#"["api","vm-2","/srv","7",null]"#.to_owned())
            ]
        );
        let filter = [Cond::Eq(&INSTANCE, Val::str("vm-2"))];
        conn.execute("DELETE FROM log_records WHERE instance = 'vm-2'", [])
            .expect("delete");
        deleted(&conn, &LOG_RECORDS, &filter).expect("forget");
        assert_eq!(entries(&conn).len(), 1);
        deleted(&conn, &LOG_RECORDS, &[Cond::SequenceIn(vec![2])]).expect("forget");
        assert!(entries(&conn).is_empty(), "the entry of a listed row goes");
    }

    #[test]
    fn only_a_find_of_one_key_s_newest_row_reads_the_table() {
        let conn = file();
        let key = |instance: &str| {
            LogQuery {
                service: Some("api".parse().expect("service")),
                instance: Some(instance.to_owned()),
                directory: Some("/srv".to_owned()),
                process: Some("7".to_owned()),
                ..Default::default()
            }
            .filter()
            .into_iter()
            .chain([Cond::Eq(&ROLE, Val::Null)])
            .collect::<Vec<_>>()
        };
        let newest = |filter: Vec<Cond>, limit| Find {
            filter,
            sort: vec![(SortKey::Sequence, true)],
            skip: 0,
            limit: Some(limit),
        };
        let listed = |find: Find| match find.filter.last() {
            Some(Cond::SequenceIn(list)) => Some(list.clone()),
            _ => None,
        };
        assert_eq!(
            listed(narrow(&conn, &LOG_RECORDS, newest(key("vm-1"), 1)).expect("narrow")),
            Some(vec![2])
        );
        assert_eq!(
            listed(narrow(&conn, &LOG_RECORDS, newest(key("vm-9"), 1)).expect("narrow")),
            Some(vec![]),
            "a key never seen has no row"
        );
        assert_eq!(
            listed(narrow(&conn, &LOG_RECORDS, newest(key("vm-1"), 2)).expect("narrow")),
            None,
            "two rows are not the newest one"
        );
        let mut partial = key("vm-1");
        partial.pop();
        assert_eq!(
            listed(narrow(&conn, &LOG_RECORDS, newest(partial, 1)).expect("narrow")),
            None,
            "any role is not one key"
        );
    }
}
