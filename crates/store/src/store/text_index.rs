//! Keeping the log messages' text index (see the SQLite backend's `text`) close behind the
//! lines: after every [`TRIGGER_LINES`] lines written, one task indexes what is not yet
//! indexed, in chunks of [`CHUNK_LINES`], each taking its turn with the log batches
//! (`log_writes` is first come, first served), so a batch waits at most one chunk.
//!
//! Lines are acknowledged before they are indexed: searches read the lines past the index
//! directly, so they find the same lines either way, only slower while it lags.

use std::sync::atomic::Ordering;

use crate::error::StoreError;
use crate::model::logs::LOG_RECORDS;
use crate::store::Store;

/// Lines written since the last catch-up that start the next one.
const TRIGGER_LINES: usize = 8192;
/// Lines indexed per transaction: about 15 ms of a writer's wait (14–19 µs a line), which a
/// state report may wait behind, as under a backlog of log lines the index takes every
/// other turn. FTS5 writes each transaction's lines as a new segment and merges them later,
/// so fewer lines a chunk cost more a line: 512 cost 20 µs a line at 1M lines (`cargo bench
/// -p vupdate-store`); 2,048 (about 30 ms) took a 50,000-instance fleet's reports to p99
/// 111 ms over 240 s against 72 ms with 1,024, for 62k lines a second against 58k.
const CHUNK_LINES: usize = 1024;

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

/// Indexes every line not yet indexed, chunk by chunk, each in turn with the log batches;
/// then merges the finished days' segments a step a turn (see the SQLite backend's
/// `text::merge`), indexing first whatever was written meanwhile.
pub(crate) async fn catch_up(store: &Store) -> Result<usize, StoreError> {
    let mut indexed = 0;
    loop {
        let done = {
            let _turn = store.log_writes().lock().await;
            store.inner.unindexed.store(0, Ordering::Relaxed);
            store
                .backend()
                .index_text(&LOG_RECORDS, CHUNK_LINES)
                .await?
        };
        indexed += done;
        if done == CHUNK_LINES {
            continue;
        }
        let merged = {
            let _turn = store.log_writes().lock().await;
            store.backend().merge_text(&LOG_RECORDS).await?
        };
        if !merged {
            return Ok(indexed);
        }
    }
}
