//! Builder processes that outlive a killed server.
//!
//! A builder child runs in its own process group, so a server killed with SIGKILL leaves
//! it (and its build commands) running: a second builder would then work in the same
//! source folders as the first, and the first would go on using the machine for a build
//! nobody follows. So while a child runs, a lease file `<work dir>/running/<task id>` names
//! its pid and start time; the child's end removes it. When a server attaches its runner
//! (before the reconcile loop starts a build), every lease left over is read, and the
//! process it names, when it is still that process (same pid, same start time), is killed
//! with every process group of its descendants.

use std::path::{Path, PathBuf};

use vupdate_process::{TreeGuard, table};

/// The folder of the lease files in the builder's work directory.
const RUNNING: &str = "running";

/// A running builder child's lease; dropping it removes the file.
pub(super) struct Lease {
    path: PathBuf,
}

impl Lease {
    /// Records that `pid` builds for `task`. A lease that cannot be written is logged and
    /// the build goes on: only the clean-up after a crash depends on it.
    pub(super) fn take(work_directory: &Path, task: &str, pid: u32) -> Option<Lease> {
        let dir = work_directory.join(RUNNING);
        let path = dir.join(task);
        let start = table::read(i32::try_from(pid).ok()?)?.start_ticks;
        let written = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&path, format!("{pid} {start}\n")));
        match written {
            Ok(()) => Some(Lease { path }),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "cannot record the builder process; a crash of this server would leave it running");
                None
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Kills the builders (and their build commands) that the leases in `work_directory`
/// name and removes the leases; returns the task ids whose builder was still running.
pub(super) fn kill_leftovers(work_directory: &Path) -> Vec<String> {
    let dir = work_directory.join(RUNNING);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut killed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let task = entry.file_name().to_string_lossy().into_owned();
        let lease = std::fs::read_to_string(&path).ok();
        if let Some((pid, start)) = lease.as_deref().and_then(parse)
            && table::read(pid).is_some_and(|now| now.start_ticks == start)
        {
            let groups = TreeGuard::new(pid).kill_all();
            tracing::warn!(%task, pid, ?groups, "killed a builder left running by a server that was killed; its task is failed as interrupted");
            killed.push(task);
        }
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), %error, "cannot remove a builder lease");
        }
    }
    killed
}

/// `pid start` of a lease file.
fn parse(text: &str) -> Option<(i32, u64)> {
    let mut fields = text.split_whitespace();
    let pid = fields.next()?.parse().ok()?;
    let start = fields.next()?.parse().ok()?;
    Some((pid, start))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;

    use super::*;

    #[test]
    fn a_leftover_builder_is_killed_and_a_reused_pid_is_spared() {
        let work = tempfile::tempdir().expect("dir");
        let mut orphan = std::process::Command::new("sleep")
            .arg("300")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let lease = Lease::take(work.path(), "task-1", orphan.id()).expect("lease");
        // The server dies: its lease stays behind.
        std::mem::forget(lease);
        // A lease whose pid now names another process (this one) must not kill it.
        std::fs::write(
            work.path().join(RUNNING).join("task-2"),
            format!("{} 1\n", std::process::id()),
        )
        .expect("stale lease");
        assert_eq!(kill_leftovers(work.path()), ["task-1"]);
        let status = orphan.wait().expect("wait");
        assert!(!status.success(), "{status}");
        let left: Vec<_> = std::fs::read_dir(work.path().join(RUNNING))
            .expect("dir")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
