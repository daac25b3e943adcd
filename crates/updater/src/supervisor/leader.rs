//! The group leader of a run: a child this process started (a tokio [`Child`]), or one it
//! adopted from the updater process it replaced by `execve` at a self-update.
//!
//! An adopted leader is still this process's child (a process keeps its pid and its
//! children across `execve`), so `waitpid` on it works and gives its real exit status;
//! only tokio does not know it. It is waited for by `waitpid(pid, WNOHANG)` each time
//! SIGCHLD arrives (with a slow poll only when the signal cannot be listened to), so only
//! this pid is ever reaped here, never an exit status tokio or the tree walker waits for.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::signal::unix::{SignalKind, signal};

/// How often an adopted leader is polled when SIGCHLD cannot be listened to.
const POLL: Duration = Duration::from_secs(1);

/// The leader of a run's process group.
#[derive(Debug)]
pub(crate) enum Leader {
    /// Started by this process.
    Spawned(Child),
    /// Inherited across the updater's `execve`.
    Adopted(Adopted),
}

/// A child this process did not start but inherited, waited for with `waitpid`.
#[derive(Debug)]
pub(crate) struct Adopted {
    pid: Pid,
    sigchld: Option<tokio::signal::unix::Signal>,
    status: Option<ExitStatus>,
}

impl Adopted {
    /// Takes `pid` (a child of this process) as a leader; needs a tokio runtime.
    pub fn new(pid: u32) -> Adopted {
        let sigchld = match signal(SignalKind::child()) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::warn!(%error, pid, "cannot listen to SIGCHLD; polling the adopted process");
                None
            }
        };
        Adopted {
            pid: Pid::from_raw(i32::try_from(pid).expect("Linux pids fit in i32")),
            sigchld,
            status: None,
        }
    }

    /// Reaps the process if it has ended.
    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        loop {
            let status = match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => ExitStatus::from_raw((code & 0xff) << 8),
                Ok(WaitStatus::Signaled(_, signal, core)) => {
                    ExitStatus::from_raw(signal as i32 | if core { 0x80 } else { 0 })
                }
                Ok(_) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            };
            self.status = Some(status);
            return Ok(Some(status));
        }
    }

    /// Waits for the process to end. Cancel-safe: an exit status is only taken by a call
    /// that returns it at once.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            // SIGCHLD of any child wakes this. None is missed: the stream was made before
            // the first `try_wait`, and a signal that comes while nobody waits is kept
            // for the next `recv`.
            let signalled = match &mut self.sigchld {
                Some(sigchld) => sigchld.recv().await.is_some(),
                None => false,
            };
            if !signalled {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }
}

impl Leader {
    /// Waits for the leader to end (cancel-safe).
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Leader::Spawned(child) => child.wait().await,
            Leader::Adopted(adopted) => adopted.wait().await,
        }
    }

    /// Sends SIGKILL to the leader (not its group) unless it is reaped already.
    pub fn start_kill(&mut self) {
        match self {
            Leader::Spawned(child) => {
                let _ = child.start_kill();
            }
            Leader::Adopted(adopted) => {
                if adopted.status.is_none() {
                    let _ = kill(adopted.pid, Signal::SIGKILL);
                }
            }
        }
    }

    /// Gives the leader up without killing or reaping it, for the next updater process
    /// to adopt: tokio must then never wait for it (its exit status belongs to whoever
    /// adopts it), so its handle is forgotten rather than dropped (a dropped handle would
    /// put it on tokio's list of orphans to reap). Returns its pid.
    pub fn release(self) -> u32 {
        match self {
            Leader::Spawned(child) => {
                let pid = child.id().unwrap_or(0);
                std::mem::forget(child);
                pid
            }
            Leader::Adopted(adopted) => adopted.pid(),
        }
    }
}
