//! The conformance suite on SQLite: each case gets a new file in its own temporary directory
//! (below a directory that does not exist yet, so "a fresh data directory needs no set-up"
//! is exercised every time).

use vupdate_store::StoreConfig;

use crate::conformance::{Ctx, instantiate};

async fn open_store(_case: &str) -> Option<Ctx> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = StoreConfig::Sqlite {
        path: dir.path().join("data/not-yet/store.sqlite"),
    };
    let store = vupdate_store::open(&config)
        .await
        .expect("open a fresh SQLite store");
    Some(Ctx::new(store, config, Some(dir)))
}

instantiate!(crate::sqlite::open_store);

/// A lower case longer than its capital (`İ` is `i̇`, two characters) through the text
/// index: found as the feed's matcher finds it (MongoDB's regex folds it otherwise, so
/// this is not in the shared suite).
#[tokio::test]
async fn a_capital_whose_lower_case_is_longer_is_found_through_the_text_index() {
    use vupdate_core::log::Level;
    use vupdate_store::model::logs::LogQuery;
    let ctx = open_store("longer_lower_case").await.expect("a store");
    let logs = ctx.store.logs();
    let lines = ["Straße in İstanbul", "istanbul", "ISTANBUL"];
    let batch = lines
        .iter()
        .map(|m| crate::conformance::fixtures::log("api", "vm-1", Level::Info, 1, m))
        .collect();
    let sequences = logs.insert(batch).await.expect("insert");
    logs.index_text().await.expect("index");
    for needle in ["i̇stanbul", "İSTANBUL", "İ", "istanbul", "n i̇s"] {
        let query = LogQuery {
            text: Some(needle.to_owned()),
            ..LogQuery::default()
        };
        let mut expected: Vec<i64> = sequences
            .iter()
            .zip(&lines)
            .filter(|(sequence, line)| {
                let record = crate::conformance::fixtures::log("api", "vm-1", Level::Info, 1, line);
                query.matches(**sequence, &record)
            })
            .map(|(sequence, _)| *sequence)
            .collect();
        expected.reverse();
        let found: Vec<i64> = logs
            .query(&query)
            .await
            .expect("query")
            .into_iter()
            .map(|r| r.sequence)
            .collect();
        assert_eq!(found, expected, "{needle:?}");
    }
}

/// The file of the text index of the store file at `store`.
pub fn index_file(store: &std::path::Path) -> std::path::PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push("-text");
    name.into()
}

/// The log text index's FTS5 tables in the SQLite file at `path` (its segments, or the
/// single table of the build before them), FTS5's own tables aside.
pub fn text_index_tables(path: &std::path::Path) -> Vec<String> {
    names(
        path,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'log_records_text%' \
         AND sql LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
    )
}

/// The text index segments the store merged into one FTS5 b-tree (finished days).
fn merged_text_segments(path: &std::path::Path) -> Vec<String> {
    names(
        &index_file(path),
        "SELECT segment FROM _text_merged ORDER BY segment",
    )
}

/// The messages of the lines that have `text`, newest first.
async fn messages_with(store: &vupdate_store::Store, text: &str) -> Vec<String> {
    store
        .logs()
        .query(&vupdate_store::model::logs::LogQuery {
            text: Some(text.to_owned()),
            ..Default::default()
        })
        .await
        .expect("search")
        .into_iter()
        .map(|r| r.record.message)
        .collect()
}

/// The strings `query` (of one column) gives in the SQLite file at `path`.
fn names(path: &std::path::Path, query: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut statement = conn.prepare(query).expect("prepare");
    statement
        .query_map([], |row| row.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("names")
}

/// Expiry leaves the text index's entries of the lines it deletes (removing them costs as
/// much as adding them) and drops a day's segment once none of its lines is left; a
/// segment with a line left stays, and its stale entries find nothing.
#[tokio::test]
async fn expiry_drops_the_text_segment_of_a_day_whose_lines_all_went() {
    use crate::conformance::fixtures::{log, t0};
    use chrono::{DurationRound, TimeDelta};
    use vupdate_core::log::Level;
    use vupdate_store::model::logs::LogQuery;
    let ctx = open_store("segments").await.expect("a store");
    let StoreConfig::Sqlite { path } = &ctx.config else {
        unreachable!("a SQLite store")
    };
    let logs = ctx.store.logs();
    let today = t0().duration_trunc(TimeDelta::days(1)).expect("a day");
    let yesterday = today - TimeDelta::days(1);
    let line = |day: chrono::DateTime<chrono::Utc>, minutes: i64, message: &str| {
        let seconds = (day + TimeDelta::minutes(minutes) - t0()).num_seconds();
        log("api", "vm-1", Level::Info, seconds, message)
    };
    logs.insert(vec![
        line(yesterday, 60, "needle one"),
        line(yesterday, 120, "needle two"),
        line(today, 60, "needle three"),
        line(today, 180, "needle four"),
    ])
    .await
    .expect("insert");
    logs.index_text().await.expect("index");
    assert_eq!(
        text_index_tables(&index_file(path)).len(),
        2,
        "{:?}",
        text_index_tables(&index_file(path))
    );
    assert!(
        text_index_tables(path).is_empty(),
        "none in the store's file"
    );
    let segment = |day: chrono::DateTime<chrono::Utc>| {
        format!(
            "log_records_text_{}",
            day.timestamp_millis() / (24 * 60 * 60 * 1000)
        )
    };
    // Yesterday is over: its segment is merged once indexed; today's may still grow.
    assert_eq!(merged_text_segments(path), [segment(yesterday)]);
    let needles = || messages_with(&ctx.store, "NEEDLE");

    let policy = vupdate_store::ExpiryPolicy {
        service_logs: std::time::Duration::from_secs(24 * 60 * 60),
        ..vupdate_store::ExpiryPolicy::default()
    };
    let cutoff = today + TimeDelta::minutes(120);
    let report = ctx
        .store
        .expire(&policy, cutoff + TimeDelta::days(1))
        .await
        .expect("expire");
    assert_eq!(report.service_logs, 3);
    assert_eq!(text_index_tables(&index_file(path)), [segment(today)]);
    assert!(
        merged_text_segments(path).is_empty(),
        "a retired segment's mark goes with it"
    );
    assert_eq!(needles().await, ["needle four"]);
    assert_eq!(
        logs.count(&LogQuery {
            text: Some("needle".to_owned()),
            ..LogQuery::default()
        })
        .await
        .expect("count"),
        1,
        "the stale entry of `needle three` counts nothing"
    );

    // A late line of the day whose segment went gets it again.
    logs.insert(vec![line(yesterday, 30, "needle five")])
        .await
        .expect("insert");
    logs.index_text().await.expect("index");
    assert_eq!(text_index_tables(&index_file(path)).len(), 2);
    assert_eq!(needles().await, ["needle four", "needle five"]);
}

/// Text searches for the newest lines, within a service or not, find what the feed's
/// matcher finds when the lines are spread over days in no order: through the keyed day
/// segments of the index (read newest first until the window is full), a segment holding
/// a line from a clock far ahead, and the lines not indexed yet.
#[tokio::test]
async fn newest_text_matches_through_day_segments_agree_with_the_matcher() {
    use crate::conformance::fixtures::log;
    use crate::conformance::logs::agrees_with_the_matcher;
    use vupdate_core::log::Level;
    use vupdate_store::model::logs::LogQuery;
    let ctx = open_store("segment_walk").await.expect("a store");
    let logs = ctx.store.logs();
    let services = ["api", "web", "db"];
    let messages = ["disk full", "Disk FULL again", "ok", "fullness", "FULL"];
    let line = |i: usize| {
        // Ten days, each line's time far from the one before; line 7 from a year ahead.
        let hours = if i == 7 { 24 * 365 } else { (i * 7919) % 240 };
        let seconds = i64::try_from(hours * 3600).expect("seconds");
        log(
            services[i % 3],
            "vm-1",
            Level::Info,
            seconds,
            messages[(i * 7) % 5],
        )
    };
    let mut stored = Vec::new();
    for (round, first) in (0..400).step_by(50).enumerate() {
        let batch: Vec<_> = (first..first + 50).map(line).collect();
        let sequences = logs.insert(batch.clone()).await.expect("insert");
        stored.extend(sequences.into_iter().zip(batch));
        if round == 5 {
            logs.index_text().await.expect("index");
        }
    }
    let mut round = 0;
    for service in [None, Some("api"), Some("db")] {
        for text in ["full", "DISK", "full again", "ness", "absent"] {
            for limit in [1, 3, 10, 40, 500] {
                let query = LogQuery {
                    service: service.map(|s| s.parse().expect("a name")),
                    text: Some(text.to_owned()),
                    limit: Some(limit),
                    ..LogQuery::default()
                };
                agrees_with_the_matcher(&ctx, &stored, &query, round).await;
                round += 1;
            }
        }
    }
}

/// Each log source's newest line is one row of `_newest_log_records` (no index entry per
/// line), written once per source however many of its lines a batch holds, and gone with
/// that line when expiry deletes it.
#[tokio::test]
async fn each_source_s_newest_line_is_one_row_until_it_expires() {
    use crate::conformance::fixtures::log;
    use vupdate_core::log::Level;
    let ctx = open_store("sources").await.expect("a store");
    let StoreConfig::Sqlite { path } = &ctx.config else {
        unreachable!("a SQLite store")
    };
    let newest = || {
        names(
            path,
            "SELECT key || ' ' || sequence FROM _newest_log_records ORDER BY key",
        )
    };
    let day = 24 * 60 * 60;
    let logs = ctx.store.logs();
    let mut batch: Vec<_> = (0..100)
        .map(|i| log("api", "vm-old", Level::Info, -3 * day + i, "old"))
        .collect();
    batch.push(log("api", "vm-new", Level::Info, 0, "new"));
    let sequences = logs.insert(batch).await.expect("insert");
    assert_eq!(
        newest(),
        [
            format!(r#"["api","vm-new","/srv","100",null] {}"#, sequences[100]),
            format!(r#"["api","vm-old","/srv","100",null] {}"#, sequences[99]),
        ]
    );
    assert!(
        names(
            path,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log_records'"
        )
        .iter()
        .all(|index| !index.contains("process")),
        "no index of each line's source"
    );
    let policy = vupdate_store::ExpiryPolicy {
        service_logs: std::time::Duration::from_secs(2 * day as u64),
        ..vupdate_store::ExpiryPolicy::default()
    };
    let report = ctx
        .store
        .expire(&policy, crate::conformance::fixtures::at(0))
        .await
        .expect("expire");
    assert_eq!(report.service_logs, 100);
    assert_eq!(
        newest(),
        [format!(
            r#"["api","vm-new","/srv","100",null] {}"#,
            sequences[100]
        )],
        "the expired source's row went with its last line"
    );
}

/// A backup is a store file of its own: the text index file of the store it was copied
/// from, put beside it (a restore over old files), is emptied rather than trusted, and the
/// copy's lines are found before and after they are indexed again.
#[tokio::test]
async fn a_backup_beside_the_original_s_index_file_gets_an_index_of_its_own() {
    use crate::conformance::fixtures::log;
    use vupdate_core::log::Level;
    let ctx = open_store("backup_index").await.expect("a store");
    let StoreConfig::Sqlite { path } = &ctx.config else {
        unreachable!("a SQLite store")
    };
    let logs = ctx.store.logs();
    logs.insert(vec![
        log("api", "vm-1", Level::Info, 1, "needle one"),
        log("api", "vm-1", Level::Info, 2, "needle two"),
    ])
    .await
    .expect("insert");
    logs.index_text().await.expect("index");
    let copy = path.with_file_name("copy.sqlite");
    vupdate_store::backup_sqlite(path, &copy).expect("backup");
    // The original goes on: its index now names lines the copy never had.
    logs.insert(vec![log("api", "vm-1", Level::Info, 3, "other three")])
        .await
        .expect("insert");
    logs.index_text().await.expect("index");
    // As it is now (its file and write-ahead log as one).
    vupdate_store::backup_sqlite(&index_file(path), &index_file(&copy))
        .expect("the original's index file");

    let restored = vupdate_store::open(&StoreConfig::Sqlite { path: copy.clone() })
        .await
        .expect("open the copy");
    assert!(
        text_index_tables(&index_file(&copy)).is_empty(),
        "the original's index was emptied: {:?}",
        text_index_tables(&index_file(&copy))
    );
    // A line of the copy's own, under the sequence the original gave `other three`: the
    // original's index would have it indexed already, and not as a needle.
    restored
        .logs()
        .insert(vec![log("api", "vm-2", Level::Info, 4, "needle four")])
        .await
        .expect("insert");
    let needles = || messages_with(&restored, "needle");
    assert_eq!(needles().await, ["needle four", "needle two", "needle one"]);
    restored.logs().index_text().await.expect("index");
    assert_eq!(needles().await, ["needle four", "needle two", "needle one"]);
}
