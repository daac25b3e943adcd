//! The text index of a collection's [`CollectionDef::text`] field (log messages): an FTS5
//! table with the trigram tokenizer, so a case-insensitive substring search reads the
//! rows whose text has the needle's three-character pieces instead of every row.
//!
//! What it holds is the field lower-cased by Rust ([`str::to_lowercase`], the rule of
//! [`crate::doc::contains_ignoring_case`]), as case-sensitive trigrams: a row whose
//! lower-cased text contains the lower-cased needle has all of its trigrams, so the index
//! never misses a row the scan would find, and `vu_contains_ci` still checks every
//! candidate on its row, so the answer is the scan's. It keeps rowids only (no text, no
//! positions, no sizes): the smallest and cheapest FTS5 index. A line leaves it when it
//! expires ([`forget`]).
//!
//! It is built behind the rows, not in their transaction: trigram indexing costs about
//! 16 µs a line (`cargo bench -p vupdate-store`), twice the rest of an insert, so the writer's batches are
//! acknowledged without it and [`index_some`] indexes the next rows in chunks between
//! them. `_text_indexed` records how far (by `_sequence`, which commits in order); a
//! search reads the index up to there and the rows after it directly, so a search is the
//! same whether the index is behind or not. When the needle is too short for trigrams, or
//! matches too many rows for a list of candidates to beat reading newest first, the
//! search is the plain scan.

use rusqlite::{Connection, OptionalExtension};

use crate::doc::{CollectionDef, Cond, FieldDef};

/// The table that records, per collection, the last `_sequence` in its text index.
pub(crate) const INDEXED_TABLE: &str = "_text_indexed";
/// Candidates (index hits plus rows not yet indexed) up to which a search reads them by
/// `_sequence`; past it the needle is common and a scan newest first stops sooner.
pub(crate) const MAX_CANDIDATES: usize = 20_000;

/// The FTS5 table of `def`'s text field.
pub(crate) fn table(def: &CollectionDef) -> String {
    format!("{}_text", def.name)
}

/// The statements that create `def`'s text index and its mark (idempotent); none when it
/// has no text field. A file that had the rows before the index gets it empty, marked at
/// 0: [`index_some`] catches up, and searches meanwhile read the rows not yet indexed.
pub(crate) fn schema(def: &CollectionDef) -> Vec<String> {
    let Some(field) = def.text else {
        return Vec::new();
    };
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {INDEXED_TABLE} (collection TEXT PRIMARY KEY, \
             upto INTEGER NOT NULL) STRICT"
        ),
        format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS \"{}\" USING fts5(\"{}\", content='', \
             detail=none, columnsize=0, tokenize='trigram case_sensitive 1')",
            table(def),
            field.column
        ),
        format!(
            "INSERT INTO {INDEXED_TABLE} (collection, upto) VALUES ('{}', 0) \
             ON CONFLICT (collection) DO NOTHING",
            def.name
        ),
    ]
}

/// The last `_sequence` in `def`'s text index.
fn indexed_upto(conn: &Connection, def: &CollectionDef) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT upto FROM {INDEXED_TABLE} WHERE collection = ?1"
        ))?
        .query_row([def.name], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Indexes the text of at most `max_rows` rows after the mark, in the caller's write
/// transaction, and moves the mark past them. Returns how many rows it indexed.
pub(crate) fn index_some(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
    field: &FieldDef,
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
    tx.prepare_cached(&format!(
        "INSERT INTO \"{text}\" (rowid, \"{column}\") SELECT _sequence, vu_lower(\"{column}\") \
         FROM \"{name}\" WHERE _sequence > ?1 AND _sequence <= ?2",
        text = table(def),
        column = field.column,
        name = def.name
    ))?
    .execute((upto, last))?;
    tx.prepare_cached(&format!(
        "UPDATE {INDEXED_TABLE} SET upto = ?2 WHERE collection = ?1"
    ))?
    .execute((def.name, last))?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// Removes the rows `sequences` from `def`'s text index (those indexed; the others were
/// never in it), in the caller's transaction, before it deletes the rows: a contentless
/// index forgets a row given the text it indexed, which is computed again from the row.
/// (FTS5's `contentless_delete` needs no text, but an expiry took ~0.5 ms a line with it
/// against ~40 µs this way, and it writes a table of row sizes on every insert.)
pub(crate) fn forget(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
    field: &FieldDef,
    sequences: &[i64],
) -> rusqlite::Result<()> {
    let upto = indexed_upto(tx, def)?;
    if !sequences.iter().any(|s| *s <= upto) {
        return Ok(());
    }
    tx.prepare_cached(&format!(
        "INSERT INTO \"{text}\" (\"{text}\", rowid, \"{column}\") \
         SELECT 'delete', _sequence, vu_lower(\"{column}\") FROM \"{name}\" \
         WHERE _sequence IN (SELECT value FROM json_each(?1)) AND _sequence <= ?2",
        text = table(def),
        column = field.column,
        name = def.name
    ))?
    .execute((
        serde_json::to_string(sequences).unwrap_or_else(|_| "[]".to_owned()),
        upto,
    ))?;
    Ok(())
}

/// Trigrams of a needle the index is asked for at most: a few already leave few rows,
/// and each one more is one more list of rows to read.
const MAX_TRIGRAMS: usize = 12;

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
    let Some(field) = def.text else {
        return Ok(filter);
    };
    let Some(query) = filter.iter().find_map(|cond| match cond {
        Cond::ContainsCi(f, text) if std::ptr::eq(*f, field) => {
            trigrams_query(&text.to_lowercase())
        }
        _ => None,
    }) else {
        return Ok(filter);
    };
    let cap = MAX_CANDIDATES as i64 + 1;
    let mut candidates: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT rowid FROM \"{text}\" WHERE \"{text}\" MATCH ?1 LIMIT ?2",
            text = table(def)
        ))?
        .query_map((&query, cap), |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
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
