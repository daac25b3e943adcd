//! The process tree of one service run: which processes belong to it, and signalling them.
//!
//! A process belongs to the run when it descends (by parent links) from one of these roots:
//! the group leader, any process of the leader's group, any process of the run's cgroup,
//! any process seen in the tree before (pid and start time, so a reused pid is not taken),
//! and, since the updater is a child subreaper, any orphan re-parented to the updater whose
//! environment carries the run's marker. A deep scan (at stop) also takes every process of
//! the machine carrying the marker, which finds a `setsid` double-forked grandchild even
//! when it was never sampled and the updater is not its subreaper (after a restart).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use vupdate_process::table::{self as proc, ProcInfo};

/// A snapshot of the machine's processes, by pid.
pub(crate) type Table = HashMap<i32, ProcInfo>;

/// How old a shared table may be: samples due at one tick read it within milliseconds.
const SHARED_FOR: Duration = Duration::from_secs(1);

/// The process table for the periodic samples due at `tick`: the first supervisor due
/// then reads `/proc`, every other one due at the same instant (the supervisors' samples
/// are on one grid, see [`crate::schedule`]) reads the same table. One pass over `/proc`
/// per tick, whatever the number of services.
pub(crate) fn sampled_table(tick: tokio::time::Instant) -> Arc<Table> {
    type Latest = Option<(tokio::time::Instant, std::time::Instant, Arc<Table>)>;
    static LATEST: Mutex<Latest> = Mutex::new(None);
    let mut latest = LATEST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((due, read, table)) = latest.as_ref()
        && *due == tick
        && read.elapsed() < SHARED_FOR
    {
        return Arc::clone(table);
    }
    let table = Arc::new(proc::snapshot());
    *latest = Some((tick, std::time::Instant::now(), Arc::clone(&table)));
    table
}

/// The processes of one service run, followed across samples.
#[derive(Debug)]
pub(crate) struct TreeTracker {
    marker: Vec<u8>,
    leader: Option<i32>,
    leader_start: Option<u64>,
    updater: i32,
    seen: HashMap<i32, u64>,
}

/// The live (not yet reaped) members found by one scan.
#[derive(Debug, Default)]
pub(crate) struct Members {
    /// Members that still run, by pid.
    pub running: Vec<ProcInfo>,
}

impl TreeTracker {
    /// Follows the run whose group leader is `leader` and whose processes carry `marker`
    /// (`NAME=value`) in their environment.
    pub fn new(leader: i32, marker: String) -> Self {
        TreeTracker {
            marker: marker.into_bytes(),
            leader: Some(leader),
            leader_start: proc::read(leader).map(|info| info.start_ticks),
            updater: own_pid(),
            seen: HashMap::new(),
        }
    }

    /// Follows a run handed over by the previous updater process: its leader (with the
    /// start time it had) and the processes of its tree seen so far.
    pub fn adopted(leader: i32, leader_start: u64, marker: String, seen: &[(i32, u64)]) -> Self {
        TreeTracker {
            marker: marker.into_bytes(),
            leader: Some(leader),
            leader_start: Some(leader_start),
            updater: own_pid(),
            seen: seen.iter().copied().collect(),
        }
    }

    /// The processes of the tree seen so far, as (pid, start ticks).
    pub fn seen(&self) -> Vec<(i32, u64)> {
        self.seen
            .iter()
            .map(|(pid, start)| (*pid, *start))
            .collect()
    }

    /// The leader's start time in clock ticks, when known.
    pub fn leader_start(&self) -> Option<u64> {
        self.leader_start
    }

    /// Follows whatever carries `marker` with no known leader: what a crashed updater
    /// left running.
    pub fn leftovers(marker: String) -> Self {
        TreeTracker {
            marker: marker.into_bytes(),
            leader: None,
            leader_start: None,
            updater: own_pid(),
            seen: HashMap::new(),
        }
    }

    /// The group leader's pid (0 without one).
    pub fn leader(&self) -> i32 {
        self.leader.unwrap_or(0)
    }

    /// Finds the members now. `cgroup` lists the pids of the run's cgroup, if it has one;
    /// `deep` also reads the environment of every process on the machine. Exited members
    /// that were re-parented to the updater are reaped here (the leader is left to tokio).
    pub fn scan(&mut self, cgroup: &[i32], deep: bool) -> Members {
        self.scan_in(&proc::snapshot(), cgroup, deep)
    }

    /// Like [`TreeTracker::scan`], in `table`, a snapshot of the machine's processes read
    /// just before (see [`sampled_table`]).
    pub fn scan_in(&mut self, table: &Table, cgroup: &[i32], deep: bool) -> Members {
        let children = proc::children(table);
        // Once the leader is reaped its pid may be reused; a process that holds it with
        // another start time is someone else, and so is its group.
        let leader = self.leader.filter(|leader| {
            table
                .get(leader)
                .is_none_or(|info| Some(info.start_ticks) == self.leader_start)
        });
        let is_root = |info: &ProcInfo| {
            leader.is_some_and(|leader| info.pid == leader || info.pgid == leader)
                || cgroup.contains(&info.pid)
                || self.seen.get(&info.pid) == Some(&info.start_ticks)
                || ((deep || info.ppid == self.updater)
                    && proc::environ_has(info.pid, &self.marker))
        };
        let mut stack: Vec<i32> = table
            .values()
            .filter(|info| is_root(info))
            .map(|info| info.pid)
            .collect();
        let mut members = HashSet::new();
        while let Some(pid) = stack.pop() {
            if pid == self.updater || !members.insert(pid) {
                continue;
            }
            stack.extend(children.get(&pid).into_iter().flatten());
        }
        self.seen.retain(|pid, start| {
            table
                .get(pid)
                .is_some_and(|info| info.start_ticks == *start)
        });
        let mut running = Vec::new();
        for pid in members {
            let Some(info) = table.get(&pid) else {
                continue;
            };
            self.seen.insert(pid, info.start_ticks);
            if info.is_zombie() {
                self.reap(info);
            } else {
                running.push(*info);
            }
        }
        running.sort_by_key(|info| info.pid);
        Members { running }
    }

    /// Sends `signal` to every member of `members`, and to the leader's whole group when
    /// `group` (only while the leader is not reaped: a free pid may be reused as a group).
    pub fn signal(&self, members: &Members, signal: Signal, group: bool) {
        // The group may be empty already; ESRCH is the normal answer then.
        if group && let Some(leader) = self.leader {
            vupdate_process::signal_group(leader, signal);
        }
        for info in &members.running {
            vupdate_process::signal(info.pid, signal);
        }
    }

    fn reap(&self, info: &ProcInfo) {
        if info.ppid == self.updater && Some(info.pid) != self.leader {
            // Only this pid is waited for, so exit statuses tokio waits for are never taken.
            let _ = waitpid(Pid::from_raw(info.pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

fn own_pid() -> i32 {
    i32::try_from(std::process::id()).expect("Linux pids fit in i32")
}

/// Makes the updater the child subreaper of its descendants: an orphan of a service (a
/// double-forked or `setsid` grandchild whose parent exited) is re-parented to the updater
/// rather than to init, so it can still be found, measured and killed.
pub(crate) fn become_subreaper() -> Result<(), nix::Error> {
    nix::sys::prctl::set_child_subreaper(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn samples_due_at_one_tick_share_one_table() {
        let tick = crate::schedule::Schedule::starting_now().next(Duration::from_secs(5));
        let first = sampled_table(tick);
        assert!(first.contains_key(&own_pid()));
        assert!(Arc::ptr_eq(&first, &sampled_table(tick)), "same tick");
        let later = tick + Duration::from_secs(5);
        assert!(!Arc::ptr_eq(&first, &sampled_table(later)), "next tick");
    }
}
