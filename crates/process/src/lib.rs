//! Process trees on Linux, the one place vupdate lists, signals and kills them: the
//! distribution ends its builder children, the builder its build commands, the updater
//! its services.
//!
//! - [`table`]: the processes of the machine from `/proc` (parsed by `procfs`): parent,
//!   group, state, CPU and start ticks, resident memory, the environment; a process's
//!   descendants.
//! - [`group`]: signalling a process or a process group, and ending a group (SIGTERM, a
//!   grace period for its leader, SIGKILL); how a process ended, in words.
//! - [`guard`]: the process groups of a child's descendants, followed while it runs and
//!   all killed when it ends or is dropped, so a build leaves nothing running.
//! - [`spawn`]: starting a program just written, past a moment's "Text file busy".
//!
//! A process is named by its pid and its start time together wherever it is followed
//! over time, so a pid the kernel reuses is never taken for the process it was.

pub mod group;
pub mod guard;
pub mod spawn;
pub mod table;

pub use group::{describe_status, group_is_empty, kill_group, signal, signal_group, stop_group};
pub use guard::TreeGuard;
pub use nix::sys::signal::Signal;
pub use spawn::spawn_when_not_busy;
pub use table::ProcInfo;

/// Helpers of this crate's tests: real processes started by `sh`.
#[cfg(test)]
mod testing {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt as _, BufReader};
    use tokio::process::Child;

    /// Starts `sh -c script` in a group of its own; `script` prints a pid on its first
    /// line, which is returned with the child and the child's pid.
    pub async fn spawn_printing_a_pid(script: &str) -> (Child, i32, i32) {
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", script])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("sh");
        let leader = i32::try_from(child.id().expect("pid")).expect("pid");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("the printed pid");
        (child, leader, line.trim().parse().expect("a pid"))
    }

    /// Whether `pid` is gone (or a zombie) within 2 s: a process that is not our child is
    /// reaped by someone else, so it can only be looked at.
    pub fn gone_soon(pid: i32) -> bool {
        (0..100).any(|_| {
            let gone = crate::table::read(pid).is_none_or(|info| info.is_zombie());
            if !gone {
                std::thread::sleep(Duration::from_millis(20));
            }
            gone
        })
    }
}
