//! Indexes SQLite does without: an index that another has with one
//! [`FieldDef::few_values`] field inserted before its last (service + time, next to
//! service + level + time) is not kept, so each row has one index entry fewer to write; a
//! find it would serve reads the longer index once per value of that field (a handful of
//! levels), each range in order, and merges them as it goes, checking each row on the
//! filter's other conditions, until the window is full. That reads about the rows the
//! dropped index would have read, where SQL's own merge of the ranges (each range limited,
//! then merged) would read each range to its end when the other conditions match in only
//! some of them.

use std::collections::BinaryHeap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::sql::where_clause;
use crate::doc::{CollectionDef, Cond, FieldDef, Find, SortKey, Val};

/// The index of `def` that has `index`'s fields with one [`FieldDef::few_values`] field
/// inserted before the last, and that field; `None` when there is none (neither partial).
pub(crate) fn longer(
    def: &CollectionDef,
    index: &[&FieldDef],
) -> Option<(&'static [&'static FieldDef], &'static FieldDef)> {
    let (last, prefix) = index.split_last()?;
    let partial = |fields: &[&FieldDef]| {
        fields
            .first()
            .is_some_and(|first| def.present_only.iter().any(|p| std::ptr::eq(*p, *first)))
    };
    if partial(index) {
        return None;
    }
    def.indexes.iter().find_map(|other| {
        let n = other.len();
        let fits = n == index.len() + 1
            && !partial(other)
            && std::ptr::eq(other[n - 1], *last)
            && other[n - 2].few_values
            && prefix
                .iter()
                .zip(&other[..n - 2])
                .all(|(a, b)| std::ptr::eq(*a, *b));
        fits.then(|| (*other, other[n - 2]))
    })
}

/// Whether SQLite keeps `index` of `def` (see the module documentation).
pub(crate) fn kept(def: &CollectionDef, index: &[&FieldDef]) -> bool {
    longer(def, index).is_none()
}

/// What a limited find sorted by one field needs: the equality fields of its filter.
fn equal_fields(find: &Find) -> Vec<&'static FieldDef> {
    find.filter
        .iter()
        .filter_map(|c| match c {
            Cond::Eq(f, v) if *v != Val::Null => Some(*f),
            _ => None,
        })
        .collect()
}

/// `find` with its rows named (as the only condition) when a dropped index would have
/// served it best: read from the longer index's ranges, merged (see the module
/// documentation). Otherwise `find` as it is. Call it in the read transaction of the query.
pub(crate) fn narrow(conn: &Connection, def: &CollectionDef, find: Find) -> rusqlite::Result<Find> {
    let Some(limit) = find.limit else {
        return Ok(find);
    };
    let [(SortKey::Field(sort), descending)] = find.sort.as_slice() else {
        return Ok(find);
    };
    let (sort, descending) = (*sort, *descending);
    let equal = equal_fields(&find);
    let is_equal = |f: &&FieldDef| equal.iter().any(|e| std::ptr::eq(*e, *f));
    // An index of equality fields then the sort field: the one this find wants.
    let serves = |index: &&&[&FieldDef]| {
        index
            .split_last()
            .is_some_and(|(last, prefix)| std::ptr::eq(*last, sort) && prefix.iter().all(is_equal))
    };
    let Some(dropped) = def
        .indexes
        .iter()
        .filter(serves)
        .filter(|index| !kept(def, index))
        .max_by_key(|index| index.len())
    else {
        return Ok(find);
    };
    let better_kept = def
        .indexes
        .iter()
        .filter(serves)
        .any(|index| kept(def, index) && index.len() >= dropped.len());
    let Some((_, field)) = longer(def, dropped).filter(|_| !better_kept) else {
        return Ok(find);
    };
    // A condition on the field is the longer index's own case; a list of candidates (a
    // text search's) is read by sequence.
    let other_way = find.filter.iter().any(|c| match c {
        Cond::Eq(f, _) | Cond::NotNull(f) | Cond::In(f, _) | Cond::Cmp(f, _, _) => {
            std::ptr::eq(*f, field)
        }
        Cond::SequenceIn(_) => true,
        _ => false,
    });
    if other_way {
        return Ok(find);
    }
    let prefix = &dropped[..dropped.len() - 1];
    // Conditions each range applies from the index; the others are checked on each row.
    let (ranged, checked): (Vec<Cond>, Vec<Cond>) =
        find.filter.iter().cloned().partition(|c| match c {
            Cond::Eq(f, v) => *v != Val::Null && prefix.iter().any(|p| std::ptr::eq(*p, *f)),
            Cond::Cmp(f, _, _) => std::ptr::eq(*f, sort),
            Cond::Sequence(_, _) => true,
            _ => false,
        });
    let window = usize::try_from(limit.saturating_add(find.skip)).unwrap_or(usize::MAX);
    let equalities: Vec<Cond> = ranged
        .iter()
        .filter(|c| matches!(c, Cond::Eq(..)))
        .cloned()
        .collect();
    let values = field_values(conn, def, field, &equalities)?;
    let direction = if descending { "DESC" } else { "ASC" };
    let mut statements = Vec::with_capacity(values.len());
    let mut arguments = Vec::with_capacity(values.len());
    for value in values {
        let mut filter = ranged.clone();
        filter.push(Cond::Eq(field, value));
        let mut params = Vec::new();
        let where_sql = where_clause(&filter, &mut params);
        statements.push(conn.prepare_cached(&format!(
            "SELECT t._sequence, t.\"{sort}\" FROM \"{name}\" AS t{where_sql} \
             ORDER BY t.\"{sort}\" {direction}, t._sequence {direction}",
            sort = sort.column,
            name = def.name
        ))?);
        arguments.push(params);
    }
    let mut check = Check::new(conn, def, &checked)?;
    let mut ranges = Vec::with_capacity(statements.len());
    for (statement, params) in statements.iter_mut().zip(arguments) {
        ranges.push(statement.query(params_from_iter(params))?);
    }
    // The next row of each range, the first in the find's order on top.
    let key = |sequence: i64, value: Option<i64>| {
        let value = value.unwrap_or(i64::MIN);
        if descending {
            (value, sequence)
        } else {
            (value.saturating_neg(), sequence.saturating_neg())
        }
    };
    let mut heads = BinaryHeap::new();
    for (i, rows) in ranges.iter_mut().enumerate() {
        if let Some(row) = rows.next()? {
            let sequence: i64 = row.get(0)?;
            heads.push((key(sequence, row.get(1)?), sequence, i));
        }
    }
    let mut named = Vec::new();
    while named.len() < window {
        let Some((_, sequence, i)) = heads.pop() else {
            break;
        };
        if check.passes(sequence)? {
            named.push(sequence);
        }
        if let Some(row) = ranges[i].next()? {
            let next: i64 = row.get(0)?;
            heads.push((key(next, row.get(1)?), next, i));
        }
    }
    Ok(Find {
        filter: vec![Cond::SequenceIn(named)],
        ..find
    })
}

/// The values `field` has among the rows matching `prefix` (equalities on the longer
/// index's first fields), each found by one step of the index, `NULL` last when some row
/// has it.
fn field_values(
    conn: &Connection,
    def: &CollectionDef,
    field: &'static FieldDef,
    prefix: &[Cond],
) -> rusqlite::Result<Vec<Val>> {
    let mut values = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut filter = prefix.to_vec();
        match &after {
            Some(value) => filter.push(Cond::Cmp(
                field,
                crate::doc::Op::Gt,
                Val::Str(value.clone()),
            )),
            None => filter.push(Cond::NotNull(field)),
        }
        let mut params = Vec::new();
        let where_sql = where_clause(&filter, &mut params);
        let next: Option<String> = conn
            .prepare_cached(&format!(
                "SELECT min(t.\"{column}\") FROM \"{name}\" AS t{where_sql}",
                column = field.column,
                name = def.name
            ))?
            .query_row(params_from_iter(params), |row| row.get(0))?;
        let Some(value) = next else {
            break;
        };
        values.push(Val::Str(value.clone()));
        after = Some(value);
    }
    let mut filter = prefix.to_vec();
    filter.push(Cond::Eq(field, Val::Null));
    let mut params = Vec::new();
    let where_sql = where_clause(&filter, &mut params);
    let nulls = conn
        .prepare_cached(&format!(
            "SELECT 1 FROM \"{}\" AS t{where_sql} LIMIT 1",
            def.name
        ))?
        .exists(params_from_iter(params))?;
    if nulls {
        values.push(Val::Null);
    }
    Ok(values)
}

/// The check of a row on the conditions its range does not apply.
struct Check<'conn> {
    statement: Option<rusqlite::CachedStatement<'conn>>,
    params: Vec<SqlValue>,
}

impl<'conn> Check<'conn> {
    fn new(
        conn: &'conn Connection,
        def: &CollectionDef,
        checked: &[Cond],
    ) -> rusqlite::Result<Self> {
        if checked.is_empty() {
            return Ok(Check {
                statement: None,
                params: Vec::new(),
            });
        }
        let mut params = vec![SqlValue::Integer(0)];
        let where_sql = where_clause(checked, &mut params);
        let statement = conn.prepare_cached(&format!(
            "SELECT 1 FROM \"{}\" AS t{where_sql} AND t._sequence = ?1",
            def.name
        ))?;
        Ok(Check {
            statement: Some(statement),
            params,
        })
    }

    /// Whether row `sequence` passes.
    fn passes(&mut self, sequence: i64) -> rusqlite::Result<bool> {
        let Some(statement) = &mut self.statement else {
            return Ok(true);
        };
        self.params[0] = SqlValue::Integer(sequence);
        statement.exists(params_from_iter(self.params.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logs::{LOG_RECORDS, LogQuery};

    /// A log table with its indexes and `lines` of (service, level, time, message).
    fn logs(lines: &[(&str, &str, i64, &str)]) -> Connection {
        let conn = Connection::open_in_memory().expect("a database");
        super::super::configure(&conn).expect("functions");
        let indexes = super::super::sql::indexes(&LOG_RECORDS);
        for statement in super::super::sql::tables(&LOG_RECORDS)
            .into_iter()
            .chain(indexes.into_iter().map(|(_, statement)| statement))
        {
            conn.execute_batch(&statement).expect("schema");
        }
        for (i, (service, level, time, message)) in lines.iter().enumerate() {
            conn.execute(
                "INSERT INTO log_records (_sequence, _modify_time, service, instance, \
                 directory, process, time, level, unit, message, body) \
                 VALUES (?1, 0, ?2, 'vm-1', '/srv', '1', ?3, ?4, 'main', ?5, '{}')",
                (i as i64 + 1, service, time, level, message),
            )
            .expect("a line");
        }
        conn
    }

    fn named(find: &Find) -> Option<Vec<i64>> {
        match find.filter.as_slice() {
            [Cond::SequenceIn(list)] => Some(list.clone()),
            _ => None,
        }
    }

    #[test]
    fn a_service_newest_first_merges_its_level_ranges_and_checks_the_other_conditions() {
        let conn = logs(&[
            ("api", "INFO", 10, "started"),
            ("api", "WARN", 30, "slow"),
            ("web", "INFO", 40, "started"),
            ("api", "INFO", 20, "slow too"),
            ("api", "ERROR", 30, "failed"),
            ("api", "INFO", 50, "done"),
        ]);
        let query = |text: Option<&str>, limit| LogQuery {
            service: Some("api".parse().expect("a name")),
            text: text.map(str::to_owned),
            limit: Some(limit),
            ..LogQuery::default()
        };
        let merged = |query: LogQuery| narrow(&conn, &LOG_RECORDS, query.newest_first());
        // Equal times: the later sequence first, as one range would give them.
        assert_eq!(
            named(&merged(query(None, 3)).expect("merge")),
            Some(vec![6, 5, 2])
        );
        assert_eq!(
            named(&merged(query(Some("SLOW"), 10)).expect("merge")),
            Some(vec![2, 4])
        );
        let oldest = LogQuery {
            limit: Some(2),
            ..query(None, 2)
        };
        let mut ascending = oldest.newest_first();
        ascending.sort[0].1 = false;
        let find = narrow(&conn, &LOG_RECORDS, ascending).expect("merge");
        assert_eq!(named(&find), Some(vec![1, 4]));
        // A level filter is the longer index's own case.
        let warnings = LogQuery {
            min_level: Some(vupdate_core::log::Level::Warn),
            ..query(None, 3)
        };
        assert_eq!(named(&merged(warnings).expect("unchanged")), None);
    }
}
