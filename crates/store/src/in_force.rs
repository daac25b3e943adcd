//! The commit in force, as the lease holder's state watcher last saw it: replicas on one
//! store read it about once a second and have their own watcher fetch at once when it
//! differs from theirs, so a change announced to one replica (the webhook) reaches the
//! subscribers of all without waiting for each one's poll.

use chrono::{DateTime, Utc};

/// One distribution's commit in force, recorded by the replica holding its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInForce {
    /// The distribution's name (one record per distribution).
    pub distribution: String,
    /// The state repo's branch the commit is on.
    pub branch: String,
    /// The commit id (hex).
    pub revision: String,
    /// When the holder recorded it.
    pub at: DateTime<Utc>,
}
