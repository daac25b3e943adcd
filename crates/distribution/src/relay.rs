//! Replicas share the commit in force through the store.
//!
//! Every replica runs its own state watcher (its own clone), so each one serves the state
//! in force to its own subscribers. A change announced to one replica (the `POST
//! /hooks/git` webhook, or a commit the holder made) would reach the others only at their
//! next `pollInterval`. The relay closes that gap: a replica whose watcher moves (the
//! lease holder's, or the one a webhook reached behind a load balancer) records the commit
//! in force (branch, revision, time) in the store; every replica reads that record every
//! [`CHECK_EVERY`] and, when it names a commit other than its own, has its own watcher
//! fetch once. A subscriber on any replica so hears of a change within about one second
//! plus one fetch after any replica saw it. A fetch that finds nothing new moves nothing
//! and so records nothing: replicas do not echo each other. A replica that takes the
//! lease over fetches once and records what it has.
//!
//! A store polled once a second, not MongoDB change streams: the stand-in the tests run
//! has none, nor has a MongoDB that is not a replica set, and one small read per replica
//! per second costs nothing. On SQLite one server owns the store: no relay.

use std::time::Duration;

use tokio::sync::watch;
use vupdate_store::Store;

use crate::leadership::Leadership;
use crate::watcher::{InForce, WatchTrigger};

/// How often each replica reads the record (and retries a record the store refused).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the relay of one replica needs.
pub struct Relay {
    /// The shared store.
    pub store: Store,
    /// The distribution's name (its record's key).
    pub distribution: String,
    /// The branch this replica's watcher follows.
    pub branch: String,
    /// Whether this replica holds the lease (a take-over fetches once).
    pub leadership: Leadership,
    /// This replica's state in force.
    pub in_force: watch::Receiver<Option<InForce>>,
    /// Asks this replica's watcher to fetch now.
    pub trigger: WatchTrigger,
}

impl Relay {
    /// Records and follows the commit in force until `stopped`.
    pub async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shared = Shared::default();
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
            if own != shared.own {
                shared.own.clone_from(&own);
                shared.pending.clone_from(&own);
            }
            let token = self.leadership.current().map(|lease| lease.token);
            if token.is_some() && token != shared.token {
                // A take-over: the previous holder may have seen more (a webhook it got
                // just before it died), so fetch once, and record what this replica has.
                self.trigger.trigger();
                shared.pending.clone_from(&own);
            }
            shared.token = token;
            match self.step(&mut shared).await {
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

    /// Records the commit this replica moved to, if the record names another; otherwise
    /// has the watcher fetch once for a recorded commit other than its own.
    async fn step(&self, shared: &mut Shared) -> Result<(), vupdate_store::StoreError> {
        let commits = self.store.commits_in_force();
        let record = commits.current(&self.distribution).await?;
        let recorded = record
            .as_ref()
            .filter(|record| record.branch == self.branch)
            .map(|record| record.revision.clone());
        if let Some(moved) = shared.pending.clone() {
            if recorded.as_ref() != Some(&moved) {
                commits
                    .record(&self.distribution, &self.branch, &moved)
                    .await?;
                tracing::info!(commit = %moved, "recorded the commit in force for the other replicas");
            }
            shared.pending = None;
            return Ok(());
        }
        if let Some(recorded) = recorded
            && shared.own.as_ref() != Some(&recorded)
            && shared.fetched_for.as_ref() != Some(&recorded)
        {
            tracing::info!(commit = %recorded, "fetching: another replica has another commit in force");
            self.trigger.trigger();
            shared.fetched_for = Some(recorded);
        }
        Ok(())
    }
}

/// What one replica's relay remembers between checks.
#[derive(Debug, Default)]
struct Shared {
    /// This replica's commit in force at the last check.
    own: Option<String>,
    /// A commit this replica moved to (or has at a take-over) that is not recorded yet.
    pending: Option<String>,
    /// The recorded commit a fetch was last asked for: one fetch per recorded commit.
    fetched_for: Option<String>,
    /// The lease's token while this replica holds it.
    token: Option<i64>,
}
