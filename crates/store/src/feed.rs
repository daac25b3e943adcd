//! Following log records live: the in-process fan-out of inserted batches, joined with a
//! replay from the store so that a follower misses nothing.
//!
//! A follower subscribes to the feed *before* it reads the store, so every record is
//! either already stored when it reads, or arrives on the feed afterwards (or both). It
//! remembers the last `_sequence` it returned and drops anything at or below it; inserts
//! are broadcast in `_sequence` order (see `Store::log_writes`), so that is exact. A
//! follower that falls more than the feed's capacity behind is told by the channel that it
//! lagged; it then reads the gap back from the store (a resync) instead of losing it.
//!
//! The feed is in-process: records inserted by another process sharing the database reach
//! a follower only through a later resync. Change streams are not used, because a
//! standalone MongoDB server refuses them.

use std::collections::VecDeque;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::error::StoreError;
use crate::model::Stored;
use crate::model::logs::{LogQuery, LogRecord};
use crate::store::{LogBatch, Store};

/// The most records [`LogFollower::next_batch`] returns at once (the original
/// subscription's batch size).
pub const FOLLOW_BATCH: usize = 100;

/// Where a follower starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowFrom {
    /// With records inserted after it starts.
    Now,
    /// With records stored after this `_sequence` (0: from the beginning).
    After(i64),
}

/// A live, gap-free reader of matching log records; see the module documentation.
#[derive(Debug)]
pub struct LogFollower {
    store: Store,
    query: LogQuery,
    receiver: broadcast::Receiver<LogBatch>,
    last: i64,
    replaying: bool,
    pending: VecDeque<Stored<LogRecord>>,
    resyncs: u64,
}

impl LogFollower {
    pub(crate) async fn start(
        store: Store,
        mut query: LogQuery,
        from: FollowFrom,
    ) -> Result<LogFollower, StoreError> {
        // Subscribe first: nothing inserted from here on can be missed.
        let receiver = store.feed().subscribe();
        let last = match from {
            FollowFrom::After(sequence) => sequence,
            FollowFrom::Now => store.logs().last_sequence().await?.unwrap_or(0),
        };
        // The follower's own position replaces any cursor or limit in the query.
        query.after_sequence = None;
        query.limit = None;
        Ok(LogFollower {
            store,
            query,
            receiver,
            last,
            replaying: true,
            pending: VecDeque::new(),
            resyncs: 0,
        })
    }

    /// The `_sequence` of the last record returned (or the starting point).
    pub fn last_sequence(&self) -> i64 {
        self.last
    }

    /// How many times the follower fell behind the feed and re-read the gap from the store.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// The next records, in `_sequence` order, at most [`FOLLOW_BATCH`]; waits until there
    /// is at least one.
    pub async fn next_batch(&mut self) -> Result<Vec<Stored<LogRecord>>, StoreError> {
        loop {
            if !self.pending.is_empty() {
                let take = self.pending.len().min(FOLLOW_BATCH);
                let batch: Vec<_> = self.pending.drain(..take).collect();
                if let Some(last) = batch.last() {
                    self.last = last.sequence;
                }
                return Ok(batch);
            }
            if self.replaying {
                let query = LogQuery {
                    after_sequence: Some(self.last),
                    ..self.query.clone()
                };
                let stored = self
                    .store
                    .logs()
                    .in_sequence(&query, FOLLOW_BATCH as u64)
                    .await?;
                if stored.is_empty() {
                    self.replaying = false;
                } else {
                    self.pending.extend(stored);
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(batch) => {
                    let last = self.last;
                    self.pending.extend(
                        batch
                            .iter()
                            .filter(|r| {
                                r.sequence > last && self.query.matches(r.sequence, &r.record)
                            })
                            .cloned(),
                    );
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(
                        skipped,
                        after = self.last,
                        "log follower lagged; reading the gap from the store"
                    );
                    self.resyncs += 1;
                    self.replaying = true;
                }
                Err(RecvError::Closed) => return Err(StoreError::Closed),
            }
        }
    }
}
