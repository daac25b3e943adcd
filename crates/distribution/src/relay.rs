//! Replicas follow the lease holder's state watcher through the store.
//!
//! Every replica runs its own state watcher (its own clone), so each one serves the state
//! in force to its own subscribers. A change announced to one replica (the `POST
//! /hooks/git` webhook, or a commit the holder made) would reach the others only at their
//! next `pollInterval`. The relay closes that gap: the lease holder records the commit in
//! force (branch, revision, time) in the store whenever its watcher moves; every other
//! replica reads that record every [`CHECK_EVERY`] and, when it names a commit other than
//! its own, has its own watcher fetch at once. A subscriber on any replica so hears of a
//! change within about one second plus one fetch after the holder saw it.
//!
//! A store polled once a second, not MongoDB change streams: the stand-in the tests run
//! (and many hosted MongoDB offerings without a replica set) has none, and one small read
//! per replica per second costs nothing. On SQLite one server owns the store: no relay.

use std::time::Duration;

use tokio::sync::watch;
use vupdate_store::Store;

use crate::leadership::Leadership;
use crate::watcher::{InForce, WatchTrigger};

/// How often a replica that does not hold the lease reads the holder's record (and how
/// often the holder retries a record the store refused).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the relay of one replica needs.
pub struct Relay {
    /// The shared store.
    pub store: Store,
    /// The distribution's name (its record's key).
    pub distribution: String,
    /// The branch this replica's watcher follows.
    pub branch: String,
    /// Whether this replica holds the lease (and so records).
    pub leadership: Leadership,
    /// This replica's state in force.
    pub in_force: watch::Receiver<Option<InForce>>,
    /// Asks this replica's watcher to fetch now.
    pub trigger: WatchTrigger,
}

impl Relay {
    /// Records (as holder) or follows (otherwise) the commit in force until `stopped`.
    pub async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // As holder: the commit last recorded; `None` right after a take-over.
        let mut recorded: Option<String> = None;
        // Otherwise: the recorded commit a fetch was last asked for (one fetch per commit).
        let mut fetched_for: Option<String> = None;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = self.in_force.changed() => if changed.is_err() { return },
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            let own = self
                .in_force
                .borrow_and_update()
                .as_ref()
                .map(|in_force| in_force.revision.id.clone());
            let outcome = if self.leadership.is_held() {
                fetched_for = None;
                self.record(own, &mut recorded).await
            } else {
                recorded = None;
                self.follow(own, &mut fetched_for).await
            };
            match outcome {
                Ok(()) => failing = false,
                // Said once per outage, not every second.
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "cannot share the commit in force through the store; retrying every second");
                }
                Err(_) => {}
            }
        }
    }

    /// As holder: records `own` when it is not what this replica last recorded. At a
    /// take-over the watcher fetches once first (the previous holder may have seen more).
    async fn record(
        &self,
        own: Option<String>,
        recorded: &mut Option<String>,
    ) -> Result<(), vupdate_store::StoreError> {
        let Some(own) = own else { return Ok(()) };
        if recorded.as_ref() == Some(&own) {
            return Ok(());
        }
        if recorded.is_none() {
            self.trigger.trigger();
        }
        self.store
            .commits_in_force()
            .record(&self.distribution, &self.branch, &own)
            .await?;
        tracing::info!(commit = %own, "recorded the commit in force for the other replicas");
        *recorded = Some(own);
        Ok(())
    }

    /// Otherwise: has the watcher fetch once for each recorded commit other than `own`.
    async fn follow(
        &self,
        own: Option<String>,
        fetched_for: &mut Option<String>,
    ) -> Result<(), vupdate_store::StoreError> {
        let Some(record) = self
            .store
            .commits_in_force()
            .current(&self.distribution)
            .await?
        else {
            return Ok(());
        };
        let news = record.branch == self.branch
            && own.as_ref() != Some(&record.revision)
            && fetched_for.as_ref() != Some(&record.revision);
        if news {
            tracing::info!(commit = %record.revision, recorded = %record.at, "fetching: the lease holder has another commit in force");
            self.trigger.trigger();
            *fetched_for = Some(record.revision);
        }
        Ok(())
    }
}
