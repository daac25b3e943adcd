//! Log batches through the writer's group commit (see `group_commit`): batches that arrive
//! while one is being written go into the store together, each batch with consecutive
//! `_sequence`s, and the feed gets each committed batch in `_sequence` order, before the
//! next write.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::doc::truncate_millis;
use crate::model::Stored;
use crate::model::logs::LogRecord;
use crate::store::Store;
use crate::store::group_commit::{Grouped, Queue};

impl Grouped for LogRecord {
    const REPLACE: bool = false;

    fn queue(store: &Store) -> &Queue<Self> {
        &store.inner.log_queue
    }

    /// Passes the batch to followers (as stored: times in whole milliseconds, without
    /// reading it back) and counts its lines for the text index.
    fn committed(store: &Store, records: Vec<Self>, sequences: &[i64], now: DateTime<Utc>) {
        let stored = records
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
}
