//! Group commit of log batches: batches that arrive while one is being written wait in a
//! queue and go into the store together in the next transaction, so many updaters sending
//! small batches at once cost one commit, not one each.
//!
//! Each batch keeps its own guarantees: it was validated whole before it was queued, it
//! gets consecutive `_sequence`s, and if a group's write fails, its batches are written
//! again one by one, so a batch fails only for its own sake. The write runs as a task of
//! its own, so a caller that goes away (a cancelled request) leaves no batch unanswered;
//! the feed gets each batch in `_sequence` order, as before.

use std::sync::{Arc, PoisonError};

use tokio::sync::oneshot;

use crate::doc::{Doc, truncate_millis};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::logs::{LOG_RECORDS, LogRecord};
use crate::store::Store;

/// A validated batch waiting for the next log write.
pub(crate) struct PendingLogs {
    records: Vec<LogRecord>,
    docs: Vec<Doc>,
    reply: oneshot::Sender<Result<Vec<i64>, StoreError>>,
}

/// Queues `records` (already converted to `docs`) for the next group write and waits for
/// their `_sequence`s.
pub(crate) async fn insert(
    store: &Store,
    records: Vec<LogRecord>,
    docs: Vec<Doc>,
) -> Result<Vec<i64>, StoreError> {
    let (reply, answer) = oneshot::channel();
    store
        .log_queue()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(PendingLogs {
            records,
            docs,
            reply,
        });
    let writer = store.clone();
    tokio::spawn(async move { write_queued(&writer).await });
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Task {
            collection: LOG_RECORDS.name,
            reason: "the log write ended without answering".to_owned(),
        })
    })
}

/// Writes every queued batch, in one transaction when it can; nothing when an earlier
/// write took them.
async fn write_queued(store: &Store) {
    let _order = store.log_writes().lock().await;
    let mut group = std::mem::take(
        &mut *store
            .log_queue()
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    if group.is_empty() {
        return;
    }
    if group.len() > 1 {
        let docs = group
            .iter_mut()
            .flat_map(|batch| std::mem::take(&mut batch.docs))
            .collect();
        let now = store.now();
        match store.backend().insert(&LOG_RECORDS, docs, now).await {
            Ok(sequences) => {
                let mut sequences = sequences.into_iter();
                for batch in group {
                    let mine = sequences.by_ref().take(batch.records.len()).collect();
                    answer(store, batch, Ok(mine), now);
                }
                return;
            }
            Err(error) => {
                tracing::warn!(%error, batches = group.len(), "a group of log batches failed; writing them one by one");
            }
        }
    }
    for mut batch in group {
        // A batch whose documents went into a failed group is converted again.
        let docs = if batch.docs.is_empty() {
            match Store::docs(&batch.records) {
                Ok(docs) => docs,
                Err(error) => {
                    let _ = batch.reply.send(Err(error));
                    continue;
                }
            }
        } else {
            std::mem::take(&mut batch.docs)
        };
        let now = store.now();
        let written = store.backend().insert(&LOG_RECORDS, docs, now).await;
        answer(store, batch, written, now);
    }
}

/// Passes a written batch to followers (as stored: times in whole milliseconds, without
/// reading it back) and answers its caller.
fn answer(
    store: &Store,
    batch: PendingLogs,
    written: Result<Vec<i64>, StoreError>,
    now: chrono::DateTime<chrono::Utc>,
) {
    if let Ok(sequences) = &written {
        let stored = batch
            .records
            .into_iter()
            .zip(sequences)
            .map(|(mut record, &sequence)| {
                record.time = truncate_millis(record.time);
                Stored {
                    sequence,
                    modify_time: now,
                    archive_time: None,
                    record,
                }
            })
            .collect();
        super::text_index::written(store, sequences.len());
        // No follower is not an error: the records are in the store for later readers.
        let _ = store.feed().send(Arc::new(stored));
    }
    // A caller that went away needs no answer.
    let _ = batch.reply.send(written);
}
