//! Ending a process tree: a signal to every member, a grace period, then SIGKILL of what
//! is left, repeated until nothing is (a process may fork while it is being killed).

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::time::{Instant, sleep};

use super::cgroup::Cgroup;
use super::leader::Leader;
use super::tree::TreeTracker;

/// How often the tree is looked at while it ends.
const POLL: Duration = Duration::from_millis(50);

/// How long SIGKILL is repeated before giving up on a process that cannot die (one stuck
/// in the kernel); it is then logged.
const KILL_LIMIT: Duration = Duration::from_secs(30);

/// Ends the tree `tracker` follows: `signal` to all members, up to `grace` for the leader
/// to exit and the tree to empty, then SIGKILL until it is empty. `leader` is the group
/// leader's handle while it is not reaped; its exit status is returned when it is reaped
/// here.
pub(crate) async fn end_tree(
    tracker: &mut TreeTracker,
    cgroup: Option<&Cgroup>,
    mut leader: Option<&mut Leader>,
    signal: Signal,
    grace: Duration,
) -> Option<ExitStatus> {
    let mut status = None;
    let cgroup_pids = || cgroup.map(Cgroup::pids).unwrap_or_default();
    let members = tracker.scan(&cgroup_pids(), true);
    if leader.is_none() && members.running.is_empty() {
        // Nothing left (the usual case after the leader exited): no wait at all.
        return None;
    }
    tracker.signal(&members, signal, leader.is_some());
    let deadline = Instant::now() + grace;
    let mut killing = grace.is_zero() || signal == Signal::SIGKILL;
    let mut kill_deadline = Instant::now() + KILL_LIMIT;
    loop {
        if killing {
            if let Some(cgroup) = cgroup {
                cgroup.kill_all();
            }
            let members = tracker.scan(&cgroup_pids(), true);
            tracker.signal(
                &members,
                Signal::SIGKILL,
                status.is_none() && leader.is_some(),
            );
        }
        match leader.as_deref_mut() {
            Some(child) if status.is_none() => {
                tokio::select! {
                    waited = child.wait() => status = Some(waited),
                    () = sleep(POLL) => {}
                }
            }
            _ => sleep(POLL).await,
        }
        let members = tracker.scan(&cgroup_pids(), true);
        let leader_done = leader.is_none() || status.is_some();
        if leader_done && members.running.is_empty() {
            return status.and_then(Result::ok);
        }
        if !killing && Instant::now() >= deadline {
            tracing::info!(
                leader = tracker.leader(),
                left = members.running.len(),
                "grace period over: killing the process tree"
            );
            killing = true;
            kill_deadline = Instant::now() + KILL_LIMIT;
        } else if killing && Instant::now() >= kill_deadline {
            let pids: Vec<i32> = members.running.iter().map(|info| info.pid).collect();
            tracing::error!(
                leader = tracker.leader(),
                ?pids,
                "processes survive SIGKILL"
            );
            return status.and_then(Result::ok);
        }
    }
}
