//! Keeping the log messages' text index (see the SQLite backend's `text`) close behind the
//! lines: after every [`TRIGGER_LINES`] lines written, one task indexes what is not yet
//! indexed, in chunks of [`CHUNK_LINES`]. The index is in a file of its own, written by a
//! connection of its own (the backend's `text_file`), so it is written beside the log
//! lines and state reports, never in their turns: a report never waits behind a chunk or
//! an FTS5 merge, and the lines are taken as fast as the writer writes them.
//!
//! Lines are acknowledged before they are indexed: searches read the lines past the index
//! directly, so they find the same lines either way, only slower while it lags.

use std::sync::atomic::Ordering;

use crate::error::StoreError;
use crate::model::logs::LOG_RECORDS;
use crate::store::Store;

/// Lines written since the last catch-up that start the next one.
const TRIGGER_LINES: usize = 8192;
/// Lines indexed per transaction. FTS5 writes each transaction's lines as a new b-tree and
/// merges them later, so more lines a chunk cost less a line (512 cost 20 µs a line at 1M
/// lines, `cargo bench -p vupdate-store`); nothing waits for a chunk but the next one and
/// the expiry's steps on the index.
const CHUNK_LINES: usize = 4096;

/// Counts `lines` just written; starts a catch-up when enough are waiting.
pub(crate) fn written(store: &Store, lines: usize) {
    let waiting = store.inner.unindexed.fetch_add(lines, Ordering::Relaxed) + lines;
    if waiting >= TRIGGER_LINES {
        start(store);
    }
}

/// Starts a catch-up task unless one runs.
pub(crate) fn start(store: &Store) {
    if store.inner.indexing.swap(true, Ordering::AcqRel) {
        return;
    }
    let indexer = store.clone();
    store.spawn(async move {
        let store = indexer;
        if let Err(error) = catch_up(&store).await {
            tracing::warn!(%error, "indexing the log messages' text failed; searches scan the lines not indexed");
        }
        store.inner.indexing.store(false, Ordering::Release);
    });
}

/// Indexes every line not yet indexed, chunk by chunk; then merges the finished days'
/// segments a step at a time (see the SQLite backend's `text::merge`), indexing first
/// whatever was written meanwhile.
pub(crate) async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    let mut indexed = 0;
    loop {
        store.inner.unindexed.store(0, Ordering::Relaxed);
        let done = store
            .backend()
            .index_text(&LOG_RECORDS, CHUNK_LINES)
            .await?;
        indexed += done;
        if done == CHUNK_LINES {
            continue;
        }
        if !store.backend().merge_text(&LOG_RECORDS).await? {
            return Ok(indexed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::logs::sample_lines;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_text_index_is_written_in_its_own_file_while_the_writer_is_held() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.sqlite");
        let store = crate::open(&crate::StoreConfig::Sqlite { path: path.clone() })
            .await
            .expect("store");
        let sequences = store
            .logs()
            .insert(sample_lines("vm-1", 3000))
            .await
            .expect("stored");

        let turn = store.log_writes().lock().await;
        tokio::time::timeout(Duration::from_secs(20), catch_up(&store))
            .await
            .expect("indexed while the writer is held")
            .expect("indexed");
        drop(turn);

        let upto: i64 = rusqlite::Connection::open(dir.path().join("store.sqlite-text"))
            .and_then(|index| {
                index.query_row(
                    "SELECT upto FROM _text_upto WHERE collection = 'log_records'",
                    [],
                    |row| row.get(0),
                )
            })
            .expect("the mark in the index's file");
        assert_eq!(Some(&upto), sequences.last());
        let in_store: i64 = rusqlite::Connection::open(&path)
            .and_then(|store| {
                store.query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name LIKE '\\_text%' ESCAPE '\\' \
                     OR name LIKE 'log_records_text%'",
                    [],
                    |row| row.get(0),
                )
            })
            .expect("the store's tables");
        assert_eq!(in_store, 0, "nothing of the index in the store's file");
    }
}
