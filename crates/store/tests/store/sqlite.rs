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
