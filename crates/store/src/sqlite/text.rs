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
//! left, [`prune`] retires it (no search reads it) and drops it in bounded steps. A stale
//! entry is harmless: every candidate is looked up among the rows, and a `_sequence` is
//! never given twice (the `_sequences` counter only grows, whatever is deleted), so an
//! entry can never name another row. A row's time is taken within [`EARLIEST_DAYS`] before
//! and [`LATEST_DAYS`] after it was stored, so odd clocks cannot make more than a year of
//! segments.
//!
//! It is built behind the rows, not in their transaction, and in a file of its own
//! ([`super::text_file`]): trigram indexing costs about twice the rest of an insert, so
//! the writer's batches are acknowledged without it and the next rows are indexed in
//! chunks beside the writer ([`read_unindexed`], then [`write_index`]). `_text_upto`
//! records how far (by `_sequence`, which commits in order); a search reads the index up
//! to there and the rows after it directly, so a search is the same whether the index is
//! behind or not.
//! When the needle is too short for trigrams, or matches too many rows for a list of
//! candidates to beat reading newest first, the search is the plain scan.
//! A search asks for the needle's rarest trigrams and the service's key only where it pays,
//! chosen once per search from a probe of one segment ([`super::trigrams`]).
//!
//! **Keys and the newest first.** Each row's text is indexed after the key of its
//! [`TextDef::within`] value (its service, see [`within_key`]), so a search within a
//! service asks for the key's trigram too and gets that service's rows only. Each segment
//! records the newest time of its rows, so [`narrow_find`] answers "the newest N" by
//! reading the segments newest first and stopping once N matches are newer than every row
//! of the segments left: a common word within a service reads a day of candidates, not
//! the service's lines.
//!
//! The builds before kept the index in the store's file: one table (`<name>_text`, marked
//! in `_text_indexed`), then segments. [`leave_store_file`] drops them when such a file is
//! opened, and the rows are indexed again in the index's file in the background (searches
//! meanwhile read them directly). The schema stays 3: an older build opening the file
//! again finds no index there and builds its own from the start. Only the store file's
//! segments could lack the keys (the build before keys made them), so every segment of
//! the index's file has them, and its newest time.

use std::collections::BTreeMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::sql::Row;
use super::trigrams::{self, Term};
use crate::doc::{CollectionDef, Cond, Find, SortKey, TextDef, Val};

/// The table that records, per collection, the last `_sequence` in its text index.
const MARK_TABLE: &str = "_text_upto";
/// The table of the text index's segments: one row per FTS5 table.
const SEGMENTS_TABLE: &str = "_text_segments";
/// The segments whose rows all expired, dropped a step at a time (see [`prune`]); no search
/// reads them.
const RETIRED_TABLE: &str = "_text_retired";
/// Blocks of a retired segment's index (about 4 KB each) one step of [`prune`] deletes: a
/// day's index at 10M lines is about 100 MB, and dropping it whole held the writer 110 ms.
const PRUNE_BLOCKS: i64 = 500;
/// The segments whose FTS5 b-trees [`merge`] made one (a segment written in chunks has
/// about ten): a search reads one list per term there, not one per b-tree.
const MERGED_TABLE: &str = "_text_merged";
/// Pages of index (about 4 KB each) one step of [`merge`] writes: a day's segment at 10M
/// lines is about 25,000 pages, and merging it took about 3 s of the writer in steps (in
/// the bench), so a step holds the writer about as long as a chunk of indexing.
const MERGE_PAGES: i64 = 256;
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
/// has no text field. A file that had the rows before the index starts at 0: [`write_index`]
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
             first INTEGER NOT NULL, last INTEGER NOT NULL, newest INTEGER, \
             PRIMARY KEY (collection, segment)) STRICT"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {RETIRED_TABLE} (collection TEXT NOT NULL, \
             segment TEXT NOT NULL, PRIMARY KEY (collection, segment)) STRICT"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {MERGED_TABLE} (collection TEXT NOT NULL, \
             segment TEXT NOT NULL, PRIMARY KEY (collection, segment)) STRICT"
        ),
        format!(
            "INSERT INTO {MARK_TABLE} (collection, upto) VALUES ('{}', 0) \
             ON CONFLICT (collection) DO NOTHING",
            def.name
        ),
    ]
}

/// Drops from the store's file what the builds before the index's file of its own
/// ([`super::text_file`]) kept of the text indexes there: the segments and their tables,
/// and the single index tables (and mark) of the builds before segments. The index's file
/// is filled again in the background; searches meanwhile read the lines not indexed.
pub(crate) fn leave_store_file(
    tx: &rusqlite::Transaction<'_>,
    defs: &[&CollectionDef],
) -> rusqlite::Result<()> {
    let exists = |name: &str| super::sql::table_exists(tx, name);
    let mut tables: Vec<String> = defs
        .iter()
        .filter(|def| def.text.is_some())
        .map(|def| legacy_table(def))
        .collect();
    for listed in [SEGMENTS_TABLE, RETIRED_TABLE] {
        if exists(listed)? {
            tables.extend(
                tx.prepare(&format!("SELECT segment FROM {listed}"))?
                    .query_map([], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()?,
            );
        }
    }
    tables.extend(
        [
            MARK_TABLE,
            SEGMENTS_TABLE,
            RETIRED_TABLE,
            MERGED_TABLE,
            LEGACY_MARK_TABLE,
        ]
        .map(str::to_owned),
    );
    for table in tables {
        if exists(&table)? {
            tx.execute_batch(&format!("DROP TABLE \"{table}\""))?;
        }
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

/// Rows after the text index's mark, read to be indexed ([`read_unindexed`]).
pub(crate) struct Unindexed {
    /// The mark they follow.
    upto: i64,
    /// The last row's `_sequence`, the mark once they are indexed.
    last: i64,
    /// The rows by segment (apart, period), in `_sequence` order.
    segments: BTreeMap<(bool, i64), Vec<UnindexedRow>>,
}

/// One row to index.
struct UnindexedRow {
    sequence: i64,
    time: Option<i64>,
    /// Its text as the index takes it ([`indexed_text`]).
    text: Option<String>,
}

impl Unindexed {
    /// How many rows there are.
    fn len(&self) -> usize {
        self.segments.values().map(Vec::len).sum()
    }
}

/// Reads at most `max_rows` rows after the mark, with what the index takes of each, in the
/// caller's read transaction; `None` when the index is complete. Reading apart from the
/// index's write keeps the index's connection from holding a snapshot of the store's file
/// while FTS5 works: a reader always behind the writer's last commit kept its write-ahead
/// log from ever starting again (1.2 GB at 10M lines).
pub(crate) fn read_unindexed(
    conn: &Connection,
    def: &CollectionDef,
    text: &TextDef,
    max_rows: usize,
) -> rusqlite::Result<Option<Unindexed>> {
    let upto = indexed_upto(conn, def)?;
    let limit = i64::try_from(max_rows).unwrap_or(i64::MAX);
    let mut segments: BTreeMap<(bool, i64), Vec<_>> = BTreeMap::new();
    let mut last = None;
    let mut statement = conn.prepare_cached(&format!(
        "SELECT t._sequence, {apart}, {period}, t.\"{time}\", \
         vu_text(t.\"{within}\", t.\"{column}\") FROM \"{name}\" AS t \
         WHERE t._sequence > ?1 ORDER BY t._sequence LIMIT ?2",
        apart = apart_sql(text),
        period = period_sql(text),
        time = text.time.column,
        within = text.within.column,
        column = text.field.column,
        name = def.name,
    ))?;
    let mut rows = statement.query((upto, limit))?;
    while let Some(row) = rows.next()? {
        let sequence: i64 = row.get(0)?;
        segments
            .entry((row.get(1)?, row.get(2)?))
            .or_default()
            .push(UnindexedRow {
                sequence,
                time: row.get(3)?,
                text: row.get(4)?,
            });
        last = Some(sequence);
    }
    Ok(last.map(|last| Unindexed {
        upto,
        last,
        segments,
    }))
}

/// Indexes `rows` in the caller's write transaction, each in its segment (made when
/// missing), and moves the mark past them. Returns how many rows it indexed: none when
/// the mark moved since they were read (another process indexed them).
pub(crate) fn write_index(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
    text: &TextDef,
    rows: &Unindexed,
) -> rusqlite::Result<usize> {
    if indexed_upto(tx, def)? != rows.upto {
        return Ok(0);
    }
    for (&(is_apart, number), lines) in &rows.segments {
        let segment = segment_table(def, text, is_apart, number);
        tx.execute_batch(&format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS \"{segment}\" USING fts5(\"{}\", content='', \
             detail=none, columnsize=0, tokenize='trigram case_sensitive 1')",
            text.field.column
        ))?;
        let first = lines.first().map_or(0, |line| line.sequence);
        let end = lines.last().map_or(0, |line| line.sequence);
        let newest = lines.iter().filter_map(|line| line.time).max();
        tx.prepare_cached(&format!(
            "INSERT INTO {SEGMENTS_TABLE} (collection, segment, apart, period, first, last, newest) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (collection, segment) DO UPDATE \
             SET first = min(first, excluded.first), last = max(last, excluded.last), \
             newest = max(newest, excluded.newest)"
        ))?
        .execute((def.name, &segment, is_apart, number, first, end, newest))?;
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO \"{segment}\" (rowid, \"{}\") VALUES (?1, ?2)",
            text.field.column
        ))?;
        for line in lines {
            insert.execute((line.sequence, &line.text))?;
        }
    }
    tx.prepare_cached(&format!(
        "UPDATE {MARK_TABLE} SET upto = ?2 WHERE collection = ?1"
    ))?
    .execute((def.name, rows.last))?;
    Ok(rows.len())
}

/// Indexes the text of at most `max_rows` rows after the mark in the caller's write
/// transaction ([`read_unindexed`], then [`write_index`]); returns how many.
#[cfg(test)]
pub(crate) fn index_some(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
    text: &TextDef,
    max_rows: usize,
) -> rusqlite::Result<usize> {
    match read_unindexed(tx, def, text, max_rows)? {
        Some(rows) => write_index(tx, def, text, &rows),
        None => Ok(0),
    }
}

/// One step of dropping the segments of `def`'s text index none of whose rows is left
/// (expiry deleted them; `rows` reads the store's rows), in the caller's write transaction
/// of the index: deletes up to [`PRUNE_BLOCKS`] blocks of a retired segment's index, or
/// drops it once they are gone, or else retires one more segment with no row left (no
/// search reads it from then on). Returns the segment it worked on, or `None` when there
/// is nothing to do. Dropping a day's index whole held its writer as long as it has
/// blocks; in steps, the next chunk of indexing waits one step.
pub(crate) fn prune(
    tx: &rusqlite::Transaction<'_>,
    rows: &Connection,
    def: &CollectionDef,
    text: &TextDef,
) -> rusqlite::Result<Option<String>> {
    let retired: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT segment FROM {RETIRED_TABLE} WHERE collection = ?1 LIMIT 1"
        ))?
        .query_row([def.name], |row| row.get(0))
        .optional()?;
    if let Some(segment) = retired {
        // Blocks 1 and 10 are FTS5's averages and structure: kept for the drop to read.
        let deleted = tx.execute(
            &format!(
                "DELETE FROM \"{segment}_data\" WHERE id IN \
                 (SELECT id FROM \"{segment}_data\" WHERE id > 10 LIMIT {PRUNE_BLOCKS})"
            ),
            [],
        )?;
        if deleted < PRUNE_BLOCKS as usize {
            tx.execute_batch(&format!("DROP TABLE \"{segment}\""))?;
            tx.prepare_cached(&format!(
                "DELETE FROM {RETIRED_TABLE} WHERE collection = ?1 AND segment = ?2"
            ))?
            .execute((def.name, &segment))?;
        }
        return Ok(Some(segment));
    }
    let segments: Vec<(String, bool, i64, i64, i64)> = tx
        .prepare_cached(&format!(
            "SELECT segment, apart, period, first, last FROM {SEGMENTS_TABLE} \
             WHERE collection = ?1 ORDER BY last"
        ))?
        .query_map([def.name], |row| row.try_into())?
        .collect::<rusqlite::Result<_>>()?;
    let mut alive = rows.prepare_cached(&format!(
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
        tx.prepare_cached(&format!(
            "DELETE FROM {SEGMENTS_TABLE} WHERE collection = ?1 AND segment = ?2"
        ))?
        .execute((def.name, &segment))?;
        tx.prepare_cached(&format!(
            "DELETE FROM {MERGED_TABLE} WHERE collection = ?1 AND segment = ?2"
        ))?
        .execute((def.name, &segment))?;
        // Renamed, so that a late line of its day makes a new segment under its name.
        let retired = format!("{segment}_retired_{last}");
        tx.execute_batch(&format!(
            "ALTER TABLE \"{segment}\" RENAME TO \"{retired}\""
        ))?;
        tx.prepare_cached(&format!(
            "INSERT INTO {RETIRED_TABLE} (collection, segment) VALUES (?1, ?2)"
        ))?
        .execute((def.name, &retired))?;
        return Ok(Some(segment));
    }
    Ok(None)
}

/// Takes one bounded step of merging the FTS5 b-trees of the oldest segment of `def`'s
/// text index that a newer segment of its kind follows (its day is over) and that is not
/// merged yet; returns the segment, or `None` when every such segment is merged. Lines of
/// its day that come late go on into new, small b-trees, which FTS5 merges as usual.
pub(crate) fn merge(
    tx: &rusqlite::Transaction<'_>,
    def: &CollectionDef,
) -> rusqlite::Result<Option<String>> {
    let segment: Option<String> = tx
        .prepare_cached(&format!(
            "SELECT s.segment FROM {SEGMENTS_TABLE} AS s WHERE s.collection = ?1 \
             AND EXISTS (SELECT 1 FROM {SEGMENTS_TABLE} AS n WHERE n.collection = s.collection \
             AND n.apart = s.apart AND n.period > s.period) \
             AND NOT EXISTS (SELECT 1 FROM {MERGED_TABLE} AS m \
             WHERE m.collection = s.collection AND m.segment = s.segment) \
             ORDER BY s.last LIMIT 1"
        ))?
        .query_row([def.name], |row| row.get(0))
        .optional()?;
    let Some(segment) = segment else {
        return Ok(None);
    };
    // A negative page count merges b-trees of every level, as `optimize` does, in steps;
    // a step that changed fewer than 2 rows found nothing left to merge (FTS5's manual).
    let before = tx.total_changes();
    tx.execute(
        &format!("INSERT INTO \"{segment}\" (\"{segment}\", rank) VALUES ('merge', ?1)"),
        [-MERGE_PAGES],
    )?;
    if tx.total_changes() - before < 2 {
        tx.prepare_cached(&format!(
            "INSERT INTO {MERGED_TABLE} (collection, segment) VALUES (?1, ?2) \
             ON CONFLICT DO NOTHING"
        ))?
        .execute((def.name, &segment))?;
    }
    Ok(Some(segment))
}

/// One segment of a text index, as a search walks them.
struct Segment {
    table: String,
    first: i64,
    last: i64,
    /// The newest time of its rows.
    newest: Option<i64>,
}

/// The segments of `def`'s text index, newest rows first.
fn segments(conn: &Connection, def: &CollectionDef) -> rusqlite::Result<Vec<Segment>> {
    let mut segments: Vec<Segment> = conn
        .prepare_cached(&format!(
            "SELECT segment, first, last, newest FROM {SEGMENTS_TABLE} WHERE collection = ?1"
        ))?
        .query_map([def.name], |row| {
            Ok(Segment {
                table: row.get(0)?,
                first: row.get(1)?,
                last: row.get(2)?,
                newest: row.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    segments.sort_by_key(|s| std::cmp::Reverse((s.newest.unwrap_or(i64::MAX), s.last)));
    Ok(segments)
}

/// The key of a value of [`TextDef::within`] (a service) indexed before each row's text:
/// one trigram of Unicode's private use area, a fixed character then 16 bits of the value's
/// FNV-1a hash, which a search within that value asks for as one more trigram. Rows of
/// another value with the same key, or whose text has those characters, are candidates
/// like any other, checked on their row. Stored in files: never change it.
pub(crate) fn within_key(value: &str) -> String {
    let hash = value.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let private = |base: u32, bits: u64| char::from_u32(base + (bits & 0xff) as u32);
    [
        Some('\u{e000}'),
        private(0xe100, hash),
        private(0xe200, hash >> 8),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// What the text index holds of a row: the key of its [`TextDef::within`] value, then its
/// text lower-cased as the search lowers it.
pub(crate) fn indexed_text(within: Option<&str>, text: &str) -> String {
    let mut indexed = within.map(within_key).unwrap_or_default();
    indexed.push_str(&text.to_lowercase());
    indexed
}

/// A text search the index can narrow: the needle's trigrams, the key of the service it
/// is limited to, and the terms [`Search::plan`] chose to ask for.
struct Search {
    trigrams: Vec<Term>,
    key: Option<Term>,
    /// The FTS5 query of the trigrams asked for.
    query: String,
    /// Whether segments are asked for the key too.
    with_key: bool,
    /// The estimated share of a segment's rows that have the key, when probed.
    key_share: Option<f64>,
}

impl Search {
    /// The search of `def`'s text field in `filter`, if the index can serve it, asking for
    /// all its trigrams and the key until [`Search::plan`]ned.
    fn of(def: &CollectionDef, filter: &[Cond]) -> Option<Search> {
        let index = def.text?;
        let trigrams = filter.iter().find_map(|cond| match cond {
            Cond::ContainsCi(f, text) if std::ptr::eq(*f, index.field) => {
                trigrams::trigrams(&text.to_lowercase())
            }
            _ => None,
        })?;
        let key = filter.iter().find_map(|cond| match cond {
            Cond::Eq(f, Val::Str(value)) if std::ptr::eq(*f, index.within) => {
                Some(Term::new(&within_key(value), None))
            }
            _ => None,
        });
        let query = and(trigrams.iter());
        Some(Search {
            trigrams,
            key,
            query,
            with_key: true,
            key_share: None,
        })
    }

    /// Chooses the terms to ask every segment for ([`trigrams::choose`]) from their counts in
    /// the larger of the first two `segments` (the newest may have just begun).
    fn plan(&mut self, conn: &Connection, segments: &[Segment]) -> rusqlite::Result<()> {
        let Some(segment) = segments.iter().take(2).max_by_key(|s| s.last - s.first) else {
            return Ok(());
        };
        let key = self.key.as_ref();
        let terms: Vec<&Term> = self.trigrams.iter().chain(key).collect();
        let counts = terms
            .iter()
            .map(|term| trigrams::estimate(conn, &segment.table, term, segment.first, segment.last))
            .collect::<rusqlite::Result<Vec<f64>>>()?;
        let owned: Vec<Term> = terms.iter().map(|term| (*term).clone()).collect();
        let rows = (segment.last - segment.first + 1) as f64;
        let chosen = trigrams::choose(&owned, &counts, rows);
        self.query = and(chosen
            .iter()
            .map(|&i| &owned[i])
            .filter(|t| t.position.is_some()));
        if key.is_some() {
            self.with_key = chosen.iter().any(|&i| owned[i].position.is_none());
            self.key_share = counts.last().map(|count| count / rows);
        }
        Ok(())
    }

    /// The rowids `segment` gives for this search, at most `limit`.
    fn candidates(
        &self,
        conn: &Connection,
        segment: &Segment,
        limit: i64,
    ) -> rusqlite::Result<Vec<i64>> {
        let query = match &self.key {
            Some(key) if self.with_key => {
                format!("{} AND {}", self.query, key.quoted)
            }
            _ => self.query.clone(),
        };
        conn.prepare_cached(&format!(
            "SELECT rowid FROM \"{table}\" WHERE \"{table}\" MATCH ?1 LIMIT ?2",
            table = segment.table
        ))?
        .query_map((&query, limit), |row| row.get(0))?
        .collect()
    }

    /// The candidates of `segment` (the newest), at most `cap`; `None` when reading newest
    /// first (the plain query) likely reads fewer rows than checking them for `window`
    /// matches: when matches are dense, it stops after about `window` × (rows in scope) /
    /// (candidates) rows. The candidates are counted from the first `window` (at least
    /// 256; rowids ascend), scaled by the part of the segment's range they span, so a dense
    /// search does not read them all (4 × `window` read 4 times the index for the same
    /// answer).
    fn newest_candidates(
        &self,
        conn: &Connection,
        segment: &Segment,
        window: usize,
        cap: i64,
    ) -> rusqlite::Result<Option<Vec<i64>>> {
        let probe_size = window.max(256);
        let probe = self.candidates(
            conn,
            segment,
            i64::try_from(probe_size.saturating_add(1)).unwrap_or(i64::MAX),
        )?;
        let Some(&reached) = probe.last().filter(|_| probe.len() > probe_size) else {
            return Ok(Some(probe));
        };
        let range = (segment.last - segment.first + 1).max(1) as f64;
        let spanned = (reached - segment.first + 1).max(1) as f64;
        let found = probe.len() as f64 * (range / spanned).max(1.0);
        let scope = match (&self.key, self.key_share) {
            (Some(_), Some(share)) => share * range,
            (Some(key), None) => {
                conn.prepare_cached(&format!(
                    "SELECT count(*) FROM \"{table}\" WHERE \"{table}\" MATCH ?1",
                    table = segment.table
                ))?
                .query_row([&key.quoted], |row| row.get::<_, i64>(0))? as f64
            }
            _ => range,
        };
        if found > MAX_CANDIDATES as f64 || found * found > window as f64 * scope {
            return Ok(None);
        }
        self.candidates(conn, segment, cap).map(Some)
    }
}

/// The FTS5 query that asks for every one of `terms`.
fn and<'a>(terms: impl Iterator<Item = &'a Term>) -> String {
    terms
        .map(|term| term.quoted.as_str())
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The rows after the index's mark (not indexed yet), at most `limit`.
fn unindexed(conn: &Connection, def: &CollectionDef, limit: i64) -> rusqlite::Result<Vec<i64>> {
    let upto = indexed_upto(conn, def)?;
    conn.prepare_cached(&format!(
        "SELECT _sequence FROM \"{}\" WHERE _sequence > ?1 ORDER BY _sequence LIMIT ?2",
        def.name
    ))?
    .query_map((upto, limit), |row| row.get(0))?
    .collect()
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
    let Some(mut search) = Search::of(def, &filter) else {
        return Ok(filter);
    };
    let cap = MAX_CANDIDATES as i64 + 1;
    let mut candidates = unindexed(conn, def, cap)?;
    let segments = segments(conn, def)?;
    search.plan(conn, &segments)?;
    for segment in segments {
        let room = cap - candidates.len() as i64;
        if room <= 0 {
            break;
        }
        candidates.extend(search.candidates(conn, &segment, room)?);
    }
    if candidates.len() > MAX_CANDIDATES {
        return Ok(filter);
    }
    filter.push(Cond::SequenceIn(candidates));
    Ok(filter)
}

/// What [`narrow_find`] makes of a find.
#[derive(Debug)]
pub(crate) enum Narrowed {
    /// The find to run, its filter [`narrow`]ed or as it was.
    Find(Find),
    /// The rows the find returns, its skip and limit applied, in its order (newest first),
    /// read when their candidates were checked, so each is looked up once.
    Rows(Vec<Row>),
}

/// A row that passed a search's filter, with the time it is ordered by.
#[derive(Debug)]
struct Match {
    time: i64,
    row: Row,
}

impl Match {
    /// Newest first, then by sequence, as the find orders them.
    fn order(&self) -> (i64, i64) {
        (self.time, self.row.0)
    }
}

/// `find` with its search of `def`'s text field answered through the index, when it asks
/// for the newest matches (by the index's time field) and the index can tell them: the
/// segments are read newest first, each candidate checked on its row against the whole
/// filter, until the matches of the window are newer than every row of the segments left.
/// Those are the find's rows ([`Narrowed::Rows`]). Otherwise (another order, too many
/// candidates in a segment, or matches dense enough that reading newest first stops sooner)
/// the find with its filter [`narrow`]ed. Call it in the read transaction of the query.
pub(crate) fn narrow_find(
    conn: &Connection,
    def: &CollectionDef,
    find: Find,
) -> rusqlite::Result<Narrowed> {
    let newest_first = |text: &TextDef| {
        let [(SortKey::Field(sort), true)] = find.sort.as_slice() else {
            return false;
        };
        std::ptr::eq(*sort, text.time)
    };
    let (Some(text), Some(mut search), Some(limit)) =
        (def.text, Search::of(def, &find.filter), find.limit)
    else {
        return Ok(Narrowed::Find(find));
    };
    let window = usize::try_from(limit.saturating_add(find.skip)).unwrap_or(usize::MAX);
    if !newest_first(text) || window == 0 {
        let filter = narrow(conn, def, find.filter)?;
        return Ok(Narrowed::Find(Find { filter, ..find }));
    }
    let cap = MAX_CANDIDATES as i64 + 1;
    let not_indexed = unindexed(conn, def, cap)?;
    if not_indexed.len() > MAX_CANDIDATES {
        return Ok(Narrowed::Find(find));
    }
    // The newest matches so far, newest first, at most `window`.
    let mut matches = matching(conn, def, text, &find.filter, not_indexed)?;
    let keep_newest = |matches: &mut Vec<Match>| {
        matches.sort_unstable_by_key(|m| std::cmp::Reverse(m.order()));
        matches.truncate(window);
    };
    keep_newest(&mut matches);
    let segments = segments(conn, def)?;
    search.plan(conn, &segments)?;
    for (i, segment) in segments.iter().enumerate() {
        let full = matches.len() >= window;
        if full && segment.newest.is_some_and(|n| matches[window - 1].time > n) {
            break;
        }
        let found = if i == 0 {
            search.newest_candidates(conn, segment, window, cap)?
        } else {
            Some(search.candidates(conn, segment, cap)?)
        };
        let Some(found) = found.filter(|found| found.len() <= MAX_CANDIDATES) else {
            return Ok(Narrowed::Find(find));
        };
        matches.extend(matching(conn, def, text, &find.filter, found)?);
        keep_newest(&mut matches);
    }
    let skip = usize::try_from(find.skip).unwrap_or(usize::MAX);
    Ok(Narrowed::Rows(
        matches.into_iter().skip(skip).map(|m| m.row).collect(),
    ))
}

/// The rows among `candidates` that pass `filter`, each looked up by its sequence. Only
/// those that pass are read whole.
fn matching(
    conn: &Connection,
    def: &CollectionDef,
    text: &TextDef,
    filter: &[Cond],
    candidates: Vec<i64>,
) -> rusqlite::Result<Vec<Match>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = vec![SqlValue::Text(
        serde_json::to_string(&candidates).unwrap_or_default(),
    )];
    let where_sql = super::sql::where_clause(filter, &mut params);
    // CROSS JOIN: the candidates drive, so no index of another condition is walked.
    let select = super::sql::select_listed(def, text.time);
    let time = super::sql::listed_time(def);
    conn.prepare_cached(&format!("{select}{where_sql}"))?
        .query_map(params_from_iter(params), |row| {
            Ok(Match {
                time: row.get(time)?,
                row: super::sql::read_row(def, row)?,
            })
        })?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::logs::{LOG_RECORDS, LogQuery};

    const HOUR: i64 = 60 * 60 * 1000;

    /// An empty log table with its text index, as the backend makes them.
    fn logs() -> Connection {
        let conn = Connection::open_in_memory().expect("a database");
        super::super::configure(&conn).expect("functions");
        for statement in super::super::sql::tables(&LOG_RECORDS)
            .into_iter()
            .chain(schema(&LOG_RECORDS))
        {
            conn.execute_batch(&statement).expect("schema");
        }
        conn
    }

    /// Stores line `sequence` of `service`, written at `time` and stored at `stored`.
    fn line(conn: &Connection, sequence: i64, service: &str, time: i64, stored: i64, text: &str) {
        conn.execute(
            "INSERT INTO log_records (_sequence, _modify_time, service, instance, directory, \
             process, time, level, unit, message, body) \
             VALUES (?1, ?2, ?3, 'vm-1', '/srv', '1', ?4, 'INFO', 'main', ?5, '{}')",
            (sequence, stored, service, time, text),
        )
        .expect("a line");
    }

    fn index(conn: &mut Connection) {
        let tx = conn.transaction().expect("a transaction");
        index_some(&tx, &LOG_RECORDS, LOG_RECORDS.text.expect("text"), 1000).expect("index");
        tx.commit().expect("commit");
    }

    /// The rows [`narrow_find`] names, when it names them.
    fn named(narrowed: &Narrowed) -> Option<Vec<i64>> {
        match narrowed {
            Narrowed::Rows(rows) => Some(rows.iter().map(|row| row.0).collect()),
            Narrowed::Find(_) => None,
        }
    }

    fn within(service: &str, text: &str, limit: u64) -> Find {
        LogQuery {
            service: Some(service.parse().expect("a name")),
            text: Some(text.to_owned()),
            limit: Some(limit),
            ..LogQuery::default()
        }
        .newest_first()
    }

    #[test]
    fn a_search_for_the_newest_names_its_matches_by_segment_newest_time_not_day() {
        let mut conn = logs();
        let day = 24 * HOUR;
        for (sequence, service, time) in [
            (1, "api", 10 * day),
            (2, "web", 11 * day),
            (3, "api", 11 * day + HOUR),
            (4, "api", 12 * day),
        ] {
            line(&conn, sequence, service, time, time, "Needle here");
        }
        // A clock a month ahead: its line is in the segment of the day after it was stored,
        // but is the newest of all.
        line(
            &conn,
            5,
            "api",
            40 * day,
            10 * day,
            "a needle from the future",
        );
        line(&conn, 6, "api", 12 * day + HOUR, 12 * day, "no match");
        index(&mut conn);
        let find = |query| narrow_find(&conn, &LOG_RECORDS, query).expect("narrow");
        assert_eq!(named(&find(within("api", "NEEDLE", 2))), Some(vec![5, 4]));
        assert_eq!(
            named(&find(within("api", "needle", 10))),
            Some(vec![5, 4, 3, 1])
        );
        assert_eq!(named(&find(within("web", "needle", 10))), Some(vec![2]));
        // The window's skip is taken from the newest: the rows are the find's, in order.
        let skipped = |skip, limit| Find {
            skip,
            ..within("api", "needle", limit)
        };
        assert_eq!(named(&find(skipped(1, 2))), Some(vec![4, 3]));
        assert_eq!(named(&find(skipped(3, 10))), Some(vec![1]));
        assert_eq!(named(&find(skipped(4, 10))), Some(vec![]));
        // Lines not indexed yet are read directly.
        line(&conn, 7, "api", 13 * day, 13 * day, "needle, late");
        assert_eq!(named(&find(within("api", "needle", 2))), Some(vec![5, 7]));
    }

    #[test]
    fn a_service_key_is_one_trigram_of_private_characters() {
        let key = within_key("api");
        assert_eq!(key.chars().count(), 3);
        assert!(key.chars().all(|c| ('\u{e000}'..='\u{e2ff}').contains(&c)));
        assert_eq!(key, within_key("api"));
        assert_ne!(key, within_key("web"));
        assert_eq!(indexed_text(Some("api"), "ÄB"), format!("{key}äb"));
    }

    #[test]
    fn a_search_asks_for_the_rarest_pieces_of_its_needle_and_finds_the_same() {
        let mut conn = logs();
        // Every line has the postgres pieces; the database and pool numbers tell them apart.
        for sequence in 1..=400 {
            let text = format!(
                "connected to postgres://db-{}:5432/app (pool {}/32)",
                sequence % 4,
                sequence % 40
            );
            line(&conn, sequence, "api", sequence, sequence, &text);
        }
        index(&mut conn);
        let find = within("api", "db-3:5432/app (pool 7/", 100);
        let mut search = Search::of(&LOG_RECORDS, &find.filter).expect("a search");
        let segments = segments(&conn, &LOG_RECORDS).expect("segments");
        search.plan(&conn, &segments).expect("a plan");
        assert!(search.query.contains("\"l 7\"") || search.query.contains("\" 7/\""));
        assert!(
            ["\"b-3\"", "\"-3:\"", "\"3:5\""]
                .iter()
                .any(|t| search.query.contains(t)),
            "{}",
            search.query
        );
        assert!(!search.query.contains("\"db-\""), "{}", search.query);
        assert!(
            !search.with_key,
            "every line is the service's: the key removes none"
        );
        let found = narrow_find(&conn, &LOG_RECORDS, find).expect("narrow");
        assert_eq!(named(&found), Some((0..10).map(|n| 367 - 40 * n).collect()));
    }

    /// How many FTS5 b-trees segment `table` has (its `_idx` lists each one's leaves).
    fn b_trees(conn: &Connection, table: &str) -> i64 {
        conn.query_row(
            &format!("SELECT count(DISTINCT segid) FROM \"{table}_idx\""),
            [],
            |row| row.get(0),
        )
        .expect("b-trees")
    }

    #[test]
    fn a_finished_day_is_merged_into_one_b_tree_and_searched_the_same() {
        let mut conn = logs();
        let day = 24 * HOUR;
        // Four chunks of day 10, each indexed in a transaction of its own: four b-trees.
        for chunk in 0..4 {
            for n in 1..=5 {
                let sequence = chunk * 5 + n;
                let time = 10 * day + sequence * 1000;
                line(
                    &conn,
                    sequence,
                    "api",
                    time,
                    time,
                    &format!("needle {sequence}"),
                );
            }
            index(&mut conn);
        }
        let segments = segments(&conn, &LOG_RECORDS).expect("segments");
        let finished = segments[0].table.clone();
        assert!(b_trees(&conn, &finished) > 1);
        let merge_all = |conn: &mut Connection| {
            let mut steps = 0;
            loop {
                let tx = conn.transaction().expect("a transaction");
                let merged = merge(&tx, &LOG_RECORDS).expect("merge");
                tx.commit().expect("commit");
                if merged.is_none() {
                    return steps;
                }
                steps += 1;
                assert!(steps < 100, "merging never ends");
            }
        };
        // The newest day may still grow: it is left alone.
        assert_eq!(merge_all(&mut conn), 0);
        line(&conn, 21, "api", 11 * day, 11 * day, "needle 21");
        index(&mut conn);
        assert!(merge_all(&mut conn) > 0);
        assert_eq!(b_trees(&conn, &finished), 1);
        // Merged once: the next catch-up has nothing to do.
        assert_eq!(merge_all(&mut conn), 0);
        let found = narrow_find(&conn, &LOG_RECORDS, within("api", "NEEDLE", 30));
        assert_eq!(
            named(&found.expect("narrow")),
            Some((1..=21).rev().collect())
        );
    }

    /// The tables of the file whose name starts with `prefix`.
    fn tables(conn: &Connection, prefix: &str) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE ?1")
            .expect("a statement")
            .query_map([format!("{prefix}%")], |row| row.get(0))
            .expect("tables")
            .collect::<rusqlite::Result<_>>()
            .expect("names")
    }

    fn prune_step(conn: &mut Connection) -> Option<String> {
        let tx = conn.transaction().expect("a transaction");
        let text = LOG_RECORDS.text.expect("text");
        let pruned = prune(&tx, &tx, &LOG_RECORDS, text).expect("prune");
        tx.commit().expect("commit");
        pruned
    }

    #[test]
    fn an_expired_segment_is_retired_at_once_then_dropped_in_bounded_steps() {
        let mut conn = logs();
        let day = 24 * HOUR;
        // Text with little in common: an index of more than PRUNE_BLOCKS blocks.
        let alphabet: Vec<char> = ('0'..='9').chain('a'..='z').chain('A'..='Z').collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for sequence in 1..=12_000 {
            let mut text: String = (0..100)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            text.push_str(" done");
            line(&conn, sequence, "api", HOUR, HOUR, &text);
        }
        line(
            &conn,
            12_001,
            "api",
            day + HOUR,
            day + HOUR,
            "the next day, done",
        );
        while {
            let tx = conn.transaction().expect("a transaction");
            let text = LOG_RECORDS.text.expect("text");
            let indexed = index_some(&tx, &LOG_RECORDS, text, 5000).expect("index");
            tx.commit().expect("commit");
            indexed > 0
        } {}
        conn.execute("DELETE FROM log_records WHERE _sequence <= 12000", [])
            .expect("expiry");
        let blocks: i64 = conn
            .query_row("SELECT count(*) FROM log_records_text_0_data", [], |row| {
                row.get(0)
            })
            .expect("blocks");
        assert!(blocks > PRUNE_BLOCKS, "{blocks} blocks");

        // Retired: searches no longer read it, and a late line of its day gets a new one.
        assert_eq!(prune_step(&mut conn).as_deref(), Some("log_records_text_0"));
        assert_eq!(
            tables(&conn, "log_records_text_0"),
            [
                "log_records_text_0_retired_12000",
                "log_records_text_0_retired_12000_data",
                "log_records_text_0_retired_12000_idx",
                "log_records_text_0_retired_12000_config",
            ]
        );
        line(&conn, 12_002, "api", 2 * HOUR, 2 * HOUR, "late, done");
        index(&mut conn);
        assert_eq!(named(&find_done(&conn)), Some(vec![12_001, 12_002]));

        // A step deletes at most PRUNE_BLOCKS blocks; the last drops the table.
        let mut steps = 0;
        while prune_step(&mut conn).is_some() {
            steps += 1;
            assert!(steps <= blocks / PRUNE_BLOCKS + 1, "bounded");
            assert_eq!(named(&find_done(&conn)), Some(vec![12_001, 12_002]));
        }
        assert!(steps >= 2, "{steps} steps");
        assert!(tables(&conn, "log_records_text_0_retired").is_empty());
        assert_eq!(
            tables(&conn, "log_records_text_0").len(),
            4,
            "the new segment"
        );
    }

    /// The newest 10 lines of `api` that have `done`, narrowed.
    fn find_done(conn: &Connection) -> Narrowed {
        narrow_find(conn, &LOG_RECORDS, within("api", "done", 10)).expect("narrow")
    }
}
