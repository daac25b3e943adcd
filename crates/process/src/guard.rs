//! [`TreeGuard`]: the process groups of a child's descendants, followed while it runs and
//! all killed when it ends or is dropped.
//!
//! A child in its own process group may start commands in groups of their own (a builder
//! runs each build command so), which a signal to the child's group does not reach. The
//! guard remembers every descendant it has seen (pid, group and start time, so a pid reused
//! since is never killed); [`TreeGuard::kill_all`] sends SIGKILL to each group seen, and to
//! each process seen that is still the same process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::Signal;

use crate::group::{kill_group, signal};
use crate::table;

/// The descendants of one child seen so far; killing on drop makes an aborted task leave
/// nothing running.
#[derive(Debug)]
pub struct TreeGuard {
    leader: i32,
    seen: Mutex<BTreeMap<i32, Seen>>,
    killed: AtomicBool,
}

/// A process as the guard saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    group: i32,
    start: u64,
}

impl TreeGuard {
    /// Follows `leader` (a child just started, in its own group) and its descendants now.
    pub fn new(leader: i32) -> TreeGuard {
        let guard = TreeGuard {
            leader,
            seen: Mutex::new(BTreeMap::new()),
            killed: AtomicBool::new(false),
        };
        guard.refresh();
        guard
    }

    /// The leader's pid, which is also its group id.
    pub fn leader(&self) -> i32 {
        self.leader
    }

    /// Adds the leader and its current descendants to what was seen.
    pub fn refresh(&self) {
        let processes = table::snapshot();
        let found = std::iter::once(self.leader)
            .chain(table::descendants(&processes, self.leader))
            .filter_map(|pid| processes.get(&pid))
            .map(|info| {
                (
                    info.pid,
                    Seen {
                        group: info.pgid,
                        start: info.start_ticks,
                    },
                )
            });
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(found);
    }

    /// SIGKILL to every group seen whose process is still the same one, and to that
    /// process; returns the groups.
    pub fn kill_all(&self) -> BTreeSet<i32> {
        self.refresh();
        self.killed.store(true, Ordering::SeqCst);
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut groups = BTreeSet::new();
        for (pid, then) in seen {
            let same = table::read(pid).is_some_and(|now| now.start_ticks == then.start);
            if !same {
                continue;
            }
            // The group first: it also holds what started after the last refresh.
            kill_group(then.group);
            signal(pid, Signal::SIGKILL);
            groups.insert(then.group);
        }
        groups
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if !self.killed.load(Ordering::SeqCst) {
            self.kill_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[tokio::test]
    async fn a_command_in_a_group_of_its_own_is_killed_with_the_tree() {
        // The child starts a grandchild in a new session (so a new group), as a builder
        // starts a build command; the grandchild prints its pid once it is there.
        let (mut child, leader, grandchild) =
            testing::spawn_printing_a_pid("setsid sh -c 'echo $$; exec sleep 30' & wait").await;
        let guard = TreeGuard::new(leader);
        let groups = guard.kill_all();
        assert!(groups.contains(&leader), "{groups:?}");
        assert!(
            groups.len() >= 2,
            "the grandchild's own group too: {groups:?}"
        );
        let _ = child.wait().await;
        assert!(
            testing::gone_soon(grandchild),
            "the grandchild {grandchild} survived"
        );
    }
}
