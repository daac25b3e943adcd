//! Signalling processes and process groups, and ending a group: SIGTERM, a grace period
//! for its leader to exit, then SIGKILL to whatever is left of the group.

use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Child;

/// Sends `signal` to process `pid`; false when it is gone (or may not be signalled).
pub fn signal(pid: i32, signal: Signal) -> bool {
    kill(Pid::from_raw(pid), signal).is_ok()
}

/// Sends `signal` to every process of group `pgid`; false when the group is empty (or
/// may not be signalled). Only for a group whose leader is known to be unreaped, or whose
/// members were seen with their start times: a free pid may be reused as a group id.
pub fn signal_group(pgid: i32, signal: Signal) -> bool {
    killpg(Pid::from_raw(pgid), signal).is_ok()
}

/// Whether group `pgid` has no process left (signal 0 answers ESRCH). A process we may not
/// signal counts as a member. The same caution as [`signal_group`] applies to `pgid`.
pub fn group_is_empty(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None) == Err(nix::errno::Errno::ESRCH)
}

/// SIGKILL to every process of group `pgid` (what a command left running when it ended).
pub fn kill_group(pgid: i32) -> bool {
    signal_group(pgid, Signal::SIGKILL)
}

/// Ends the group `child` leads: SIGTERM to the group, up to `grace` for `child` to exit,
/// then SIGKILL to the group (which may still hold processes whether or not the leader
/// ended). Returns whether the leader exited within the grace period; the leader is not
/// reaped here when it did not (the caller waits for it, and may kill more first).
pub async fn stop_group(child: &mut Child, grace: Duration) -> bool {
    let Some(group) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        // Already reaped: nothing of its group can be named safely any more.
        return true;
    };
    signal_group(group, Signal::SIGTERM);
    let in_time = tokio::time::timeout(grace, child.wait()).await.is_ok();
    kill_group(group);
    in_time
}

/// How a process ended, in words: `exit code 3`, `signal 9`.
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;
    use crate::testing;

    #[test]
    fn statuses_read_as_words() {
        assert_eq!(describe_status(ExitStatus::from_raw(3 << 8)), "exit code 3");
        assert_eq!(describe_status(ExitStatus::from_raw(9)), "signal 9");
    }

    #[tokio::test]
    async fn a_group_that_ignores_sigterm_is_killed_after_the_grace() {
        // The leader ignores SIGTERM; its background child is in the same group.
        let (mut child, group, background) =
            testing::spawn_printing_a_pid("trap '' TERM; sleep 30 & echo $!; wait").await;
        assert!(!stop_group(&mut child, Duration::from_millis(200)).await);
        let status = child.wait().await.expect("reaped");
        assert_eq!(describe_status(status), "signal 9");
        assert!(
            testing::gone_soon(background),
            "process {background} of group {group} survived"
        );
    }

    #[tokio::test]
    async fn a_group_is_empty_once_its_last_process_is_reaped() {
        let (mut child, group, background) =
            testing::spawn_printing_a_pid("sleep 30 & echo $!; wait $!; exec sleep 30").await;
        assert!(!group_is_empty(group), "leader and background child run");
        assert!(signal(background, Signal::SIGKILL));
        // Reaped by the shell (`wait $!`), not only a zombie: a zombie is still a member.
        let reaped = (0..100).any(|_| {
            let reaped = crate::table::read(background).is_none();
            if !reaped {
                std::thread::sleep(Duration::from_millis(20));
            }
            reaped
        });
        assert!(reaped, "the shell reaped its background child");
        assert!(!group_is_empty(group), "the leader still runs (now alone)");
        assert!(kill_group(group));
        child.wait().await.expect("reaped");
        assert!(group_is_empty(group), "nothing of the group is left");
    }
}
