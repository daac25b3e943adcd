//! Which of a needle's trigrams a text search asks the index for: the rarest ones, told
//! by a cheap probe of one segment, and no more than pay for themselves.
//!
//! FTS5 answers `a AND b AND c` by walking much of every term's list of rows (with
//! `detail=none` it skips little), so a term common to most lines costs its length
//! whatever it adds. A needle such as `db-3:5432/app (pool 7/` is mostly pieces every
//! postgres line has (`db-`, `432`, `p (`) around two that are rare (`-3:`, `l 7`):
//! trigrams spread evenly over it read ten times the entries the rare two do (at 1M lines,
//! 1.4 ms a day segment against 0.24 ms) for about the same candidates.
//!
//! So [`choose`] starts from the rarest trigram, then adds a term (another trigram, or the
//! service's key) only while the candidates it removes, each checked on its row, cost
//! more than reading its list: a candidate checked costs about [`ROW_CHECK_ENTRIES`]
//! index entries read. The counts are estimated by
//! [`estimate`], which reads the first [`PROBE`] entries of a term's list and scales by the
//! part of the segment they span. Whatever is chosen, every candidate is still checked on
//! its row: the choice changes how fast a search is, never what it finds.

use rusqlite::Connection;

/// Entries of a term's list [`estimate`] reads at most.
const PROBE: usize = 32;
/// Index entries read that cost about as much as checking one candidate on its row (at
/// 1M lines: 26 ns an entry of a common trigram, 2–3 µs a candidate looked up and checked).
const ROW_CHECK_ENTRIES: f64 = 64.0;
/// Trigrams a search asks for at most.
pub(crate) const MAX_TRIGRAMS: usize = 4;
/// Trigrams of a needle probed at most (spread over it, first and last included): each
/// probe costs tens of microseconds.
const MAX_PROBED: usize = 16;
/// Trigrams asked for at least when those chosen are in no line of the probed segment
/// (and the needle has that many apart): the counts come from one segment, and a second
/// piece keeps a search fast in segments where the first is common. When they are in
/// some, the counts decide: a second trigram in the same lines as the first removes few
/// candidates and its list costs more than checking them (at 10M lines, `-3:` beside
/// ` 7/` cost 0.8 ms a day segment to remove 480 of 650).
const MIN_TRIGRAMS: usize = 2;

/// A term of an FTS5 query: one of the needle's trigrams, or the key of its service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    /// The term as FTS5 reads it (quoted).
    pub(crate) quoted: String,
    /// Where the trigram starts in the needle, in characters; `None` for a key.
    pub(crate) position: Option<usize>,
}

impl Term {
    /// The term of `text` (a trigram or a key) at `position`.
    pub(crate) fn new(text: &str, position: Option<usize>) -> Term {
        Term {
            quoted: format!("\"{}\"", text.replace('"', "\"\"")),
            position,
        }
    }

    /// Whether the two are trigrams that share a character (and so are found together).
    fn overlaps(&self, other: &Term) -> bool {
        matches!((self.position, other.position), (Some(a), Some(b)) if a.abs_diff(b) < 3)
    }
}

/// The distinct trigrams of the lower-cased `lowered` the index may be asked for, at most
/// [`MAX_PROBED`] spread over it, first and last included. `None` when trigrams cannot find
/// it: fewer than three characters, or a NUL, which ends an FTS5 query string.
pub(crate) fn trigrams(lowered: &str) -> Option<Vec<Term>> {
    if lowered.contains('\0') {
        return None;
    }
    let chars: Vec<char> = lowered.chars().collect();
    let count = chars.len().checked_sub(2).filter(|n| *n > 0)?;
    let picked = count.min(MAX_PROBED);
    let mut terms: Vec<Term> = Vec::with_capacity(picked);
    for i in 0..picked {
        let start = if picked == 1 {
            0
        } else {
            i * (count - 1) / (picked - 1)
        };
        let trigram: String = chars[start..start + 3].iter().collect();
        let term = Term::new(&trigram, Some(start));
        if !terms.iter().any(|t| t.quoted == term.quoted) {
            terms.push(term);
        }
    }
    Some(terms)
}

/// The indices of the `terms` to ask for, given `counts[i]`, the estimated rows of term `i`
/// among `rows`: the rarest trigram, then each term in order of rarity, apart from those
/// chosen, whose list is shorter than what the candidates it removes would cost (or while
/// [`MIN_TRIGRAMS`] asks for one more), up to [`MAX_TRIGRAMS`] trigrams. Empty when no term
/// is a trigram.
///
/// A needle's trigrams come from the same lines (the pieces of one message template), so
/// the candidates they leave are taken as independent only to weigh one more trigram (few
/// removed: it is left out), and as the rarest one's count to weigh the key (a service is
/// independent of the text; many removed: it is asked for). At 10M lines,
/// `db-3:5432/app (pool 7/` within a service without the key checked 3,400 candidates a
/// day segment for 170 matches.
pub(crate) fn choose(terms: &[Term], counts: &[f64], rows: f64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..terms.len()).collect();
    order.sort_by(|&a, &b| counts[a].total_cmp(&counts[b]));
    let Some(first) = order.iter().copied().find(|&i| terms[i].position.is_some()) else {
        return Vec::new();
    };
    let mut chosen = vec![first];
    // The candidates left with the terms chosen, as if independent, and at most.
    let (mut independent, mut at_most) = (counts[first], counts[first]);
    let rows = rows.max(1.0);
    for i in order {
        let trigrams = chosen
            .iter()
            .filter(|&&c| terms[c].position.is_some())
            .count();
        let is_trigram = terms[i].position.is_some();
        if chosen.contains(&i)
            || (is_trigram && trigrams >= MAX_TRIGRAMS)
            || chosen.iter().any(|&c| terms[c].overlaps(&terms[i]))
        {
            continue;
        }
        let share = (counts[i] / rows).min(1.0);
        let weighed = if is_trigram { independent } else { at_most };
        let needed = is_trigram && trigrams < MIN_TRIGRAMS && at_most < 1.0;
        if needed || weighed * (1.0 - share) * ROW_CHECK_ENTRIES > counts[i] {
            chosen.push(i);
            independent *= share;
            at_most = if is_trigram {
                at_most.min(counts[i])
            } else {
                at_most * share
            };
        }
    }
    chosen
}

/// The estimated rows of `table` (an FTS5 segment of rows `first..=last`) that have `term`:
/// exact when it has fewer than [`PROBE`], else scaled from the part of the range its first
/// [`PROBE`] span (rowids ascend).
pub(crate) fn estimate(
    conn: &Connection,
    table: &str,
    term: &Term,
    first: i64,
    last: i64,
) -> rusqlite::Result<f64> {
    let rowids: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT rowid FROM \"{table}\" WHERE \"{table}\" MATCH ?1 LIMIT {PROBE}"
        ))?
        .query_map([&term.quoted], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let Some(&reached) = rowids.last().filter(|_| rowids.len() >= PROBE) else {
        return Ok(rowids.len() as f64);
    };
    let range = (last - first + 1).max(1) as f64;
    let spanned = (reached - first + 1).clamp(1, last - first + 1) as f64;
    Ok(PROBE as f64 * range / spanned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts of the trigrams of `db-3:5432/app (pool 7/` in a day segment: `pool`'s
    /// number in `pool` lines, the database's in `database` lines, the rest in every
    /// postgres line (`postgres`).
    fn postgres_counts(terms: &[Term], pool: f64, database: f64, postgres: f64) -> Vec<f64> {
        terms
            .iter()
            .map(|t| match t.quoted.as_str() {
                "\"b-3\"" | "\"-3:\"" | "\"3:5\"" => database,
                "\"l 7\"" | "\" 7/\"" => pool,
                _ => postgres,
            })
            .collect()
    }

    fn query(terms: &[Term], chosen: &[usize]) -> Vec<String> {
        chosen.iter().map(|&i| terms[i].quoted.clone()).collect()
    }

    #[test]
    fn a_needle_is_its_distinct_trigrams_quoted_with_their_positions() {
        assert_eq!(
            trigrams("a \"b\""),
            Some(vec![
                Term::new("a \"", Some(0)),
                Term::new(" \"b", Some(1)),
                Term::new("\"b\"", Some(2)),
            ])
        );
        assert_eq!(trigrams("a \"b\"").expect("terms")[0].quoted, "\"a \"\"\"");
        assert_eq!(trigrams("ab"), None, "two characters make no trigram");
        assert_eq!(
            trigrams("äöü"),
            Some(vec![Term::new("äöü", Some(0))]),
            "characters, not bytes"
        );
        assert_eq!(trigrams("a\0bc"), None);
        assert_eq!(trigrams("aaaaa").expect("terms").len(), 1);
    }

    #[test]
    fn a_long_needle_is_probed_at_trigrams_spread_over_it_first_and_last_included() {
        let needle = "0123456789abcdefghijklmnopqrstuvwxyz";
        let terms = trigrams(needle).expect("terms");
        assert_eq!(terms.len(), MAX_PROBED);
        assert_eq!(terms.first(), Some(&Term::new("012", Some(0))));
        assert_eq!(terms.last(), Some(&Term::new("xyz", Some(33))));
    }

    #[test]
    fn the_rarest_trigrams_apart_are_chosen_and_common_ones_left_out() {
        // `db-3:5432/app (pool 7/` in a day of 143k lines: postgres lines have most pieces.
        let terms = trigrams("db-3:5432/app (pool 7/").expect("terms");
        let counts = postgres_counts(&terms, 1_380.0, 11_000.0, 43_600.0);
        let chosen = query(&terms, &choose(&terms, &counts, 143_000.0));
        assert_eq!(chosen.len(), 2, "{chosen:?}");
        assert!(chosen.contains(&"\"l 7\"".to_owned()) || chosen.contains(&"\" 7/\"".to_owned()));
        assert!(
            ["\"b-3\"", "\"-3:\"", "\"3:5\""]
                .iter()
                .any(|t| chosen.contains(&(*t).to_owned())),
            "{chosen:?}"
        );
    }

    #[test]
    fn a_key_is_asked_for_when_it_removes_enough_candidates() {
        let mut terms = trigrams("get /api").expect("terms");
        terms.push(Term::new("\u{e000}\u{e101}\u{e202}", None));
        let mut counts = vec![44_000.0; terms.len() - 1];
        counts.push(6_200.0);
        let chosen = choose(&terms, &counts, 143_000.0);
        assert!(chosen.contains(&(terms.len() - 1)), "the key: {chosen:?}");
        assert!(terms[chosen[0]].position.is_some(), "a trigram first");
        // A rare needle is left without the key: its few candidates are cheaper to check.
        let mut counts = vec![3.0; terms.len() - 1];
        counts.push(6_200.0);
        let chosen = choose(&terms, &counts, 143_000.0);
        assert!(!chosen.contains(&(terms.len() - 1)), "{chosen:?}");
    }

    #[test]
    fn the_key_is_weighed_against_the_rarest_trigram_as_trigrams_come_together() {
        // `db-3:5432/app (pool 7/` in a day of 1.43M lines: ` 7/` and `-3:` are in the same
        // postgres lines, so they leave about the rarer one's 14k, not 1.1k; the key
        // (a twentieth of the lines) leaves 700 of them.
        let mut terms = trigrams("db-3:5432/app (pool 7/").expect("terms");
        let mut counts = postgres_counts(&terms, 14_000.0, 110_000.0, 436_000.0);
        terms.push(Term::new("\u{e000}\u{e101}\u{e202}", None));
        counts.push(71_000.0);
        let chosen = choose(&terms, &counts, 1_430_000.0);
        assert!(chosen.contains(&(terms.len() - 1)), "the key: {chosen:?}");
        // `-3:` would leave 170 of the 700: fewer than its 110k entries are worth.
        assert_eq!(chosen.len(), 2, "{chosen:?}");
    }

    #[test]
    fn a_needle_absent_from_the_segment_still_asks_for_two_trigrams() {
        let terms = trigrams("no such line").expect("terms");
        let counts = vec![0.0; terms.len()];
        let chosen = choose(&terms, &counts, 143_000.0);
        assert_eq!(chosen.len(), MIN_TRIGRAMS);
        assert!(!terms[chosen[0]].overlaps(&terms[chosen[1]]));
    }
}
