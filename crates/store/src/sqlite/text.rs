//! The text index of a collection's [`CollectionDef::text`] field (log messages): FTS5
//! tables with the trigram tokenizer, so a case-insensitive substring search reads the
//! rows whose text has the needle's three-character pieces instead of every row.
//!
//! What it holds is the field lower-cased by Rust ([`str::to_lowercase`], the rule of
//! [`crate::doc::contains_ignoring_case`]), as case-sensitive trigrams: a row whose
//! lower-cased text contains the lower-cased needle has all of its trigrams, so the index
//! never misses a row the scan would find, and `vu_contains_ci` still checks every
//! candidate on its row, so the answer is the scan's. It keeps rowids only (no text, no
//! positions, no sizes): the smallest and cheapest FTS5 index.
//!
//! **Segments.** The index is one FTS5 table per day of the rows' time (per
//! [`APART_SPAN_DAYS`] for rows with [`TextDef::apart`], task logs, which are kept for
//! months), listed in `_text_segments` with the `_sequence` range of their rows. Expiry
//! deletes rows and leaves their entries: removing a row from FTS5 costs as much as adding
//! it, which made expiring a day of 1.4M lines take minutes. Once no row of a segment is
//! left, [`prune`] drops the table whole. A stale entry is harmless: every candidate is
//! looked up among the rows, and a `_sequence` is never given twice (the `_sequences`
//! counter only grows, whatever is deleted), so an entry can never name another row. A
//! row's time is taken within [`EARLIEST_DAYS`] before and [`LATEST_DAYS`] after it was
//! stored, so odd clocks cannot make more than a year of segments.
//!
//! It is built behind the rows, not in their transaction: trigram indexing costs about
//! twice the rest of an insert, so the writer's batches are acknowledged without it and
//! [`index_some`] indexes the next rows in chunks between them. `_text_upto` records how
//! far (by `_sequence`, which commits in order); a search reads the index up to there and
//! the rows after it directly, so a search is the same whether the index is behind or not.
//! When the needle is too short for trigrams, or matches too many rows for a list of
//! candidates to beat reading newest first, the search is the plain scan.
//!
//! Schema 3 files of the build before kept one table (`<name>_text`, marked in
//! `_text_indexed`); it is dropped when such a file is opened and the rows are indexed
//! again in segments in the background (searches meanwhile read them directly). The schema
//! stays 3: an older build opening the file again finds its mark gone and builds its own
//! table from the start, and leaves the segments alone.

use rusqlite::{Connection, OptionalExtension};

use crate::doc::{CollectionDef, Cond, TextDef};

/// The table that records, per collection, the last `_sequence` in its text index.
const MARK_TABLE: &str = "_text_upto";
/// The table of the text index's segments: one row per FTS5 table.
const SEGMENTS_TABLE: &str = "_text_segments";
/// The single index table's mark of schema 3 files from the build before segments.
const LEGACY_MARK_TABLE: &str = "_text_indexed";
/// Candidates (index hits plus rows not yet indexed) up to which a search reads them by
/// `_sequence`; past it the needle is common and a scan newest first stops sooner.
pub(crate) const MAX_CANDIDATES: usize = 20_000;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Days of time per segment of rows with [`TextDef::apart`] (task logs, kept a year by
/// default): few tables for a search to ask, at the price of up to this many days of
/// stale entries before one is dropped.
const APART_SPAN_DAYS: i64 = 32;
/// How long before the moment it was stored a row's time may place it; older times count
/// as this old.
const EARLIEST_DAYS: i64 = 366;
/// How long after the moment it was stored a row's time may place it.
const LATEST_DAYS: i64 = 1;

/// The FTS5 table of the schema 3 build before segments.
fn legacy_table(def: &CollectionDef) -> String {
    format!("{}_text", def.name)
}

/// The FTS5 table of one segment: rows with or without the apart field, of one period.
fn segment_table(def: &CollectionDef, text: &TextDef, apart: bool, period: i64) -> String {
    if apart {
        format!("{}_text_{}_{period}", def.name, text.apart.column)
    } else {
        format!("{}_text_{period}", def.name)
    }
}

/// SQL of whether row `t` has the apart field (1) or not (0).
fn apart_sql(text: &TextDef) -> String {
    format!("(t.\"{}\" IS NOT NULL)", text.apart.column)
}

/// SQL of row `t`'s period: its time, kept within a year before and a day after its
/// `_modify_time`, in days (or spans of [`APART_SPAN_DAYS`] with the apart field).
fn period_sql(text: &TextDef) -> String {
    format!(
        "(max(min(t.\"{time}\", t._modify_time + {latest}), t._modify_time - {earliest}) \
         / CASE WHEN t.\"{apart}\" IS NULL THEN {DAY_MS} ELSE {span} END)",
        time = text.time.column,
        apart = text.apart.column,
        latest = LATEST_DAYS * DAY_MS,
        earliest = EARLIEST_DAYS * DAY_MS,
        span = APART_SPAN_DAYS * DAY_MS,
    )
}

/// The statements that create `def`'s text index bookkeeping (idempotent); none when it
/// has no text field. A file that had the rows before the index starts at 0: [`index_some`]
/// catches up, and searches meanwhile read the rows not yet indexed.
pub(crate) fn schema(def: &CollectionDef) -> Vec<String> {
    if def.text.is_none() {
        return Vec::new();
    }
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {MARK_TABLE} (collection TEXT PRIMARY KEY, \
             upto INTEGER NOT NULL) STRICT"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {SEGMENTS_TABLE} (collection TEXT NOT NULL, \
             segment TEXT NOT NULL, apart INTEGER NOT NULL, period INTEGER NOT NULL, \
             first INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (collection, segment)) \
             STRICT"
        ),
        format!(
            "INSERT INTO {MARK_TABLE} (collection, upto) VALUES ('{}', 0) \
             ON CONFLICT (collection) DO NOTHING",
            def.name
        ),
    ]
}

/// Drops the single index table a schema 3 file of the build before segments has, and
/// its mark (see the module documentation); nothing when there is none.
pub(crate) fn drop_legacy(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
) -> rusqlite::Result<()> {
    if def.text.is_none() {
        return Ok(());
    }
    let exists = |name: &str| -> rusqlite::Result<bool> {
        tx.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [name],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if exists(&legacy_table(def))? {
        tx.execute_batch(&format!("DROP TABLE \"{}\"", legacy_table(def)))?;
    }
    if exists(LEGACY_MARK_TABLE)? {
        tx.execute(
            &format!("DELETE FROM {LEGACY_MARK_TABLE} WHERE collection = ?1"),
            [def.name],
        )?;
    }
    Ok(())
}

/// The last `_sequence` in `def`'s text index.
fn indexed_upto(conn: &Connection, def: &CollectionDef) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT upto FROM {MARK_TABLE} WHERE collection = ?1"
        ))?
        .query_row([def.name], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Indexes the text of at most `max_rows` rows after the mark, in the caller's write
/// transaction, each in its segment (made when missing), and moves the mark past them.
/// Returns how many rows it indexed.
pub(crate) fn index_some(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
    text: &TextDef,
    max_rows: usize,
) -> rusqlite::Result<usize> {
    let upto = indexed_upto(tx, def)?;
    let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
    let (count, last): (i64, Option<i64>) = tx
        .prepare_cached(&format!(
            "SELECT count(*), max(_sequence) FROM (SELECT _sequence FROM \"{}\" \
             WHERE _sequence > ?1 ORDER BY _sequence LIMIT ?2)",
            def.name
        ))?
        .query_row((upto, limit), |row| Ok((row.get(0)?, row.get(1)?)))?;
    let Some(last) = last else {
        return Ok(0);
    };
    let (apart, period) = (apart_sql(text), period_sql(text));
    let groups: Vec<(bool, i64, i64, i64)> = tx
        .prepare_cached(&format!(
            "SELECT {apart} AS a, {period} AS p, min(t._sequence), max(t._sequence) \
             FROM \"{}\" AS t WHERE t._sequence > ?1 AND t._sequence <= ?2 GROUP BY a, p",
            def.name
        ))?
        .query_map((upto, last), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (is_apart, number, first, end) in groups {
        let segment = segment_table(def, text, is_apart, number);
        tx.execute_batch(&format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS \"{segment}\" USING fts5(\"{}\", content='', \
             detail=none, columnsize=0, tokenize='trigram case_sensitive 1')",
            text.field.column
        ))?;
        tx.prepare_cached(&format!(
            "INSERT INTO {SEGMENTS_TABLE} (collection, segment, apart, period, first, last) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (collection, segment) DO UPDATE \
             SET first = min(first, excluded.first), last = max(last, excluded.last)"
        ))?
        .execute((def.name, &segment, is_apart, number, first, end))?;
        tx.prepare_cached(&format!(
            "INSERT INTO \"{segment}\" (rowid, \"{column}\") \
             SELECT t._sequence, vu_lower(t.\"{column}\") FROM \"{name}\" AS t \
             WHERE t._sequence BETWEEN ?1 AND ?2 AND {apart} = ?3 AND {period} = ?4",
            column = text.field.column,
            name = def.name
        ))?
        .execute((first, end, is_apart, number))?;
    }
    tx.prepare_cached(&format!(
        "UPDATE {MARK_TABLE} SET upto = ?2 WHERE collection = ?1"
    ))?
    .execute((def.name, last))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Drops one segment of `def`'s text index none of whose rows is left (expiry deleted
/// them), in the caller's write transaction; returns its table, or `None` when every
/// segment still has a row.
pub(crate) fn prune(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
    text: &TextDef,
) -> rusqlite::Result<Option<String>> {
    let segments: Vec<(String, bool, i64, i64, i64)> = tx
        .prepare_cached(&format!(
            "SELECT segment, apart, period, first, last FROM {SEGMENTS_TABLE} \
             WHERE collection = ?1 ORDER BY last"
        ))?
        .query_map([def.name], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut alive = tx.prepare_cached(&format!(
        "SELECT 1 FROM \"{}\" AS t WHERE t._sequence BETWEEN ?1 AND ?2 AND {} = ?3 \
         AND {} = ?4 LIMIT 1",
        def.name,
        apart_sql(text),
        period_sql(text)
    ))?;
    for (segment, apart, period, first, last) in segments {
        if alive.exists((first, last, apart, period))? {
            continue;
        }
        tx.execute_batch(&format!("DROP TABLE \"{segment}\""))?;
        tx.prepare_cached(&format!(
            "DELETE FROM {SEGMENTS_TABLE} WHERE collection = ?1 AND segment = ?2"
        ))?
        .execute((def.name, &segment))?;
        return Ok(Some(segment));
    }
    Ok(None)
}

/// The segments of `def`'s text index, newest rows first.
fn segments(conn: &Connection, def: &CollectionDef) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(&format!(
        "SELECT segment FROM {SEGMENTS_TABLE} WHERE collection = ?1 ORDER BY last DESC"
    ))?
    .query_map([def.name], |row| row.get(0))?
    .collect()
}

/// Trigrams of a needle the index is asked for at most: a few already leave few rows,
/// and each one more is one more list of rows to read, the whole list for a common one
/// (at 1M lines, 12 made a search for one request id cost 2.3 ms and 4 cost 0.9 ms; a
/// needle of common pieces, 37 ms and 20 ms).
const MAX_TRIGRAMS: usize = 4;

/// The FTS5 query that finds the rows whose lower-cased text has every trigram of
/// `lowered` (a superset of those containing it: the index keeps no positions, which
/// makes it about a third cheaper to build, so each candidate is checked on its row), at
/// most [`MAX_TRIGRAMS`] of them spread over the needle, first and last included. `None`
/// when trigrams cannot find it: fewer than three characters, or a NUL, which ends an
/// FTS5 query string.
fn trigrams_query(lowered: &str) -> Option<String> {
    if lowered.contains('\0') {
        return None;
    }
    let chars: Vec<char> = lowered.chars().collect();
    let count = chars.len().checked_sub(2).filter(|n| *n > 0)?;
    let picked = count.min(MAX_TRIGRAMS);
    let mut terms: Vec<String> = (0..picked)
        .map(|i| {
            let start = if picked == 1 {
                0
            } else {
                i * (count - 1) / (picked - 1)
            };
            let trigram: String = chars[start..start + 3].iter().collect();
            format!("\"{}\"", trigram.replace('"', "\"\""))
        })
        .collect();
    terms.dedup();
    Some(terms.join(" AND "))
}

/// `filter` with its search of `def`'s text field narrowed to the candidates the index
/// gives (plus the rows not yet indexed) as one more condition, when there are at most
/// [`MAX_CANDIDATES`]; otherwise `filter` as it is. The search itself stays, so the
/// result is the same either way. Call it in the read transaction of the query.
pub(crate) fn narrow(
    conn: &Connection,
    def: &CollectionDef,
    mut filter: Vec<Cond>,
) -> rusqlite::Result<Vec<Cond>> {
    let Some(index) = def.text else {
        return Ok(filter);
    };
    let Some(query) = filter.iter().find_map(|cond| match cond {
        Cond::ContainsCi(f, text) if std::ptr::eq(*f, index.field) => {
            trigrams_query(&text.to_lowercase())
        }
        _ => None,
    }) else {
        return Ok(filter);
    };
    let cap = MAX_CANDIDATES as i64 + 1;
    let mut candidates: Vec<i64> = Vec::new();
    for segment in segments(conn, def)? {
        let room = cap - candidates.len() as i64;
        if room <= 0 {
            return Ok(filter);
        }
        let mut statement = conn.prepare_cached(&format!(
            "SELECT rowid FROM \"{segment}\" WHERE \"{segment}\" MATCH ?1 LIMIT ?2"
        ))?;
        for sequence in statement.query_map((&query, room), |row| row.get(0))? {
            candidates.push(sequence?);
        }
    }
    if candidates.len() > MAX_CANDIDATES {
        return Ok(filter);
    }
    let upto = indexed_upto(conn, def)?;
    let room = cap - candidates.len() as i64;
    let mut statement = conn.prepare_cached(&format!(
        "SELECT _sequence FROM \"{}\" WHERE _sequence > ?1 ORDER BY _sequence LIMIT ?2",
        def.name
    ))?;
    for sequence in statement.query_map((upto, room), |row| row.get(0))? {
        candidates.push(sequence?);
    }
    if candidates.len() > MAX_CANDIDATES {
        return Ok(filter);
    }
    filter.push(Cond::SequenceIn(candidates));
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_needle_is_its_trigrams_quoted() {
        assert_eq!(
            trigrams_query("a \"b\""),
            Some("\"a \"\"\" AND \" \"\"b\" AND \"\"\"b\"\"\"".to_owned())
        );
        assert_eq!(trigrams_query("ab"), None, "two characters make no trigram");
        assert_eq!(
            trigrams_query("äöü"),
            Some("\"äöü\"".to_owned()),
            "characters, not bytes"
        );
        assert_eq!(trigrams_query("a\0bc"), None);
    }

    #[test]
    fn a_long_needle_asks_for_trigrams_spread_over_it_first_and_last_included() {
        let needle = "0123456789abcdefghijklmnopqrstuvwxyz";
        let query = trigrams_query(needle).expect("a query");
        let terms: Vec<&str> = query.split(" AND ").collect();
        assert_eq!(terms.len(), MAX_TRIGRAMS);
        assert_eq!(terms.first(), Some(&"\"012\""));
        assert_eq!(terms.last(), Some(&"\"xyz\""));
    }
}
