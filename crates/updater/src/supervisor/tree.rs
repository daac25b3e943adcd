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

/// The process table for the periodic sample of a run due at `tick`.
///
/// A run whose leader is in its cgroup has every process there (a fork starts in its
/// parent's cgroup), so the table holds only `cgroup`'s processes and the updater's own
/// children (orphans re-parented to it, reaped by the scan; read once for every sample due
/// at `tick`): one read of `/proc` per process of the service instead of one per process
/// of the machine. Any other run (no cgroup, a leader the cgroup join missed, a kernel
/// that does not list children) reads the machine's table, shared by every supervisor due
/// at the same tick (the supervisors' samples are on one grid, see [`crate::schedule`]):
/// one pass over `/proc` per tick, whatever the number of services.
pub(crate) fn sample_table(tick: tokio::time::Instant, leader: i32, cgroup: &[i32]) -> Arc<Table> {
    static CHILDREN: Mutex<Latest> = Mutex::new(None);
    static MACHINE: Mutex<Latest> = Mutex::new(None);
    let in_cgroup = !cgroup.is_empty() && (leader == 0 || cgroup.contains(&leader));
    // The updater's children (every service's leader among them) are read once per tick.
    let children = in_cgroup
        .then(|| {
            shared_at(&CHILDREN, tick, || {
                proc::own_children().map(|pids| by_pid(pids.into_iter().filter_map(proc::read)))
            })
        })
        .flatten();
    let Some(children) = children else {
        return shared_at(&MACHINE, tick, || Some(proc::snapshot())).unwrap_or_default();
    };
    let mut table = Table::clone(&children);
    for pid in cgroup {
        if !table.contains_key(pid)
            && let Some(info) = proc::read(*pid)
        {
            table.insert(*pid, info);
        }
    }
    Arc::new(table)
}

/// The last table read for a tick: when it was due, when it was read, the table.
type Latest = Option<(tokio::time::Instant, std::time::Instant, Arc<Table>)>;

/// The table `latest` holds for `tick`, or `read`'s, kept for the other samples due then.
fn shared_at(
    latest: &Mutex<Latest>,
    tick: tokio::time::Instant,
    read: impl FnOnce() -> Option<Table>,
) -> Option<Arc<Table>> {
    let mut latest = latest.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((due, read_at, table)) = latest.as_ref()
        && *due == tick
        && read_at.elapsed() < SHARED_FOR
    {
        return Some(Arc::clone(table));
    }
    let table = Arc::new(read()?);
    *latest = Some((tick, std::time::Instant::now(), Arc::clone(&table)));
    Some(table)
}

fn by_pid(infos: impl Iterator<Item = ProcInfo>) -> Table {
    infos.map(|info| (info.pid, info)).collect()
}

/// The processes of one service run, followed across samples.
#[derive(Debug)]
pub(crate) struct TreeTracker {
    marker: Vec<u8>,
    leader: Option<i32>,
    leader_start: Option<u64>,
    updater: i32,
    seen: HashMap<i32, u64>,
    /// Children of the updater (pid, start ticks) whose environment was read and lacks the
    /// marker: the other services' leaders, read once instead of at every sample.
    unmarked: HashMap<i32, u64>,
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
            unmarked: HashMap::new(),
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
            unmarked: HashMap::new(),
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
            unmarked: HashMap::new(),
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
    /// just before (see [`sample_table`]).
    pub fn scan_in(&mut self, table: &Table, cgroup: &[i32], deep: bool) -> Members {
        let children = proc::children(table);
        // Once the leader is reaped its pid may be reused; a process that holds it with
        // another start time is someone else, and so is its group.
        let leader = self.leader.filter(|leader| {
            table
                .get(leader)
                .is_none_or(|info| Some(info.start_ticks) == self.leader_start)
        });
        let mut stack = Vec::new();
        for info in table.values() {
            let root = leader.is_some_and(|leader| info.pid == leader || info.pgid == leader)
                || cgroup.contains(&info.pid)
                || self.seen.get(&info.pid) == Some(&info.start_ticks)
                || ((deep || info.ppid == self.updater) && self.marked(info, deep));
            if root {
                stack.push(info.pid);
            }
        }
        let mut members = HashSet::new();
        while let Some(pid) = stack.pop() {
            if pid == self.updater || !members.insert(pid) {
                continue;
            }
            stack.extend(children.get(&pid).into_iter().flatten());
        }
        let present = |pid: &i32, start: &mut u64| {
            table
                .get(pid)
                .is_some_and(|info| info.start_ticks == *start)
        };
        self.seen.retain(present);
        self.unmarked.retain(present);
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

    /// Whether `info`'s environment carries the marker. A child of the updater found
    /// without it is remembered and not read again while it lives, except by a `deep`
    /// scan (it may have `exec`ed with another environment since).
    fn marked(&mut self, info: &ProcInfo, deep: bool) -> bool {
        if !deep && self.unmarked.get(&info.pid) == Some(&info.start_ticks) {
            return false;
        }
        let marked = proc::environ_has(info.pid, &self.marker);
        if !marked && info.ppid == self.updater {
            self.unmarked.insert(info.pid, info.start_ticks);
        }
        marked
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
        // No cgroup: the machine's table, once per tick.
        let first = sample_table(tick, 0, &[]);
        assert!(first.contains_key(&own_pid()));
        assert!(
            Arc::ptr_eq(&first, &sample_table(tick, 0, &[])),
            "same tick"
        );
        let later = tick + Duration::from_secs(5);
        assert!(
            !Arc::ptr_eq(&first, &sample_table(later, 0, &[])),
            "next tick"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_table_is_read_once_per_tick() {
        let latest = Mutex::new(None);
        let tick = crate::schedule::Schedule::starting_now().next(Duration::from_secs(5));
        let reads = std::cell::Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            Some(Table::new())
        };
        let first = shared_at(&latest, tick, read).expect("a table");
        let again = shared_at(&latest, tick, read).expect("a table");
        assert!(Arc::ptr_eq(&first, &again) && reads.get() == 1, "same tick");
        shared_at(&latest, tick + Duration::from_secs(5), read);
        assert_eq!(reads.get(), 2, "next tick");
        // Nothing read (no children listed) is not kept.
        assert!(shared_at(&latest, tick + Duration::from_secs(10), || None).is_none());
    }

    /// A plain child of this process, standing for another service's leader (no group,
    /// marker or capture needed, so not through `crate::spawn`).
    #[allow(clippy::disallowed_methods)]
    fn sleeper() -> (std::process::Child, i32) {
        let child = std::process::Command::new("sleep")
            .arg("30")
            .env("VUPDATE_TEST_OWNER", "other")
            .spawn()
            .expect("sleep");
        let pid = i32::try_from(child.id()).expect("pid");
        (child, pid)
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_in_its_cgroup_reads_only_its_processes_and_the_updaters_children() {
        let tick = crate::schedule::Schedule::starting_now().next(Duration::from_secs(5));
        // `leader` stands for a run's leader in its cgroup (the table reads the pids the
        // cgroup lists); `other` for another service's leader, a child of the updater.
        let ((mut leader, leader_pid), (mut other, other_pid)) = (sleeper(), sleeper());
        let narrow = sample_table(tick, leader_pid, &[leader_pid]);
        // A leader the cgroup does not list (its join failed): the machine's table.
        let outside = sample_table(tick, leader_pid, &[1]);
        for child in [&mut leader, &mut other] {
            let _ = child.kill();
            let _ = child.wait();
        }
        assert!(narrow.contains_key(&leader_pid) && narrow.contains_key(&other_pid));
        assert!(
            !narrow.contains_key(&own_pid()),
            "the updater is not in the cgroup"
        );
        assert!(!narrow.contains_key(&1), "init is neither");
        assert!(outside.contains_key(&own_pid()) && outside.contains_key(&1));
    }

    #[test]
    fn the_other_services_leaders_environment_is_read_once() {
        let (mut other, other_pid) = sleeper();
        let mut tracker = TreeTracker::leftovers("VUPDATE_TEST_OWNER=this".to_owned());
        let table = proc::snapshot();
        let first = tracker.scan_in(&table, &[], false);
        let remembered = tracker.unmarked.get(&other_pid).copied();
        // Were its environment read again, the child would now be taken: the remembered
        // answer keeps it out of the periodic scan; a deep scan reads it again.
        tracker.marker = b"VUPDATE_TEST_OWNER=other".to_vec();
        let periodic = tracker.scan_in(&table, &[], false);
        let deep = tracker.scan_in(&table, &[], true);
        let _ = other.kill();
        let _ = other.wait();
        let has = |members: &Members| members.running.iter().any(|info| info.pid == other_pid);
        assert!(!has(&first) && !has(&periodic));
        assert_eq!(remembered, Some(table[&other_pid].start_ticks));
        assert!(has(&deep));
    }
}
