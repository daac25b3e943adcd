//! The one place that starts processes (clippy's `disallowed-methods` refuses
//! `Command::new` elsewhere in the crate), so every process the updater starts:
//!
//! - leads a new process group (`setpgid(0, 0)`), so a signal reaches the whole group and
//!   the updater's own terminal signals do not;
//! - carries [`OWNER_ENV`] in its environment, inherited by everything it starts, so its
//!   processes are found again after they `setsid` or after an updater restart;
//! - has stdin from `/dev/null` and stdout and stderr piped to the updater, whose read
//!   ends are plain pipe readers (not tied to the child handle), so they can be handed
//!   to the next updater process at a self-update;
//! - does not see the updater's own handover variables ([`crate::handover`]);
//! - is not killed when its handle is dropped: stopping is the supervisor's job, tree-wide.
//!
//! A relative program path with a `/` (`./run.sh`, `bin/server`) is resolved against the
//! process's own directory; a bare name is looked up in `PATH`.
//!
//! With a cgroup, the process must be in it before it runs a single instruction of the
//! service, or a child it forks at once would stay outside. The crate forbids `unsafe`
//! (so no `pre_exec`), so the process starts as `/bin/sh -c 'echo $$ > cgroup.procs; exec
//! "$@"'`: the shell moves itself in, then becomes the program with the same pid.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::net::unix::pipe;
use tokio::process::Child;

use crate::Error;
use crate::handover::HANDOVER_VARIABLES;
use crate::layout::OWNER_ENV;

/// What to start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessSpec<'a> {
    /// `service[-role]`, for errors.
    pub instance: &'a str,
    /// The program.
    pub program: &'a str,
    /// Its arguments.
    pub args: &'a [String],
    /// The directory it runs in.
    pub directory: &'a Path,
    /// The [`OWNER_ENV`] value.
    pub owner: &'a str,
    /// The `cgroup.procs` file of the cgroup to start in, if any.
    pub cgroup_procs: Option<&'a Path>,
}

/// The shell script that joins a cgroup (its `cgroup.procs` in `$1`) and then becomes the
/// program; a failed join leaves the process where it is rather than not starting it.
const JOIN_CGROUP: &str = "{ echo $$ > \"$1\"; } 2>/dev/null; shift; exec \"$@\"";

/// A started process and its output pipes.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// The process (the leader of its group).
    pub child: Child,
    /// Its pid.
    pub pid: u32,
    /// Its standard output.
    pub stdout: pipe::Receiver,
    /// Its standard error.
    pub stderr: pipe::Receiver,
}

/// The program path to execute: relative paths with a `/` are taken from `directory`.
pub(crate) fn resolve_program(program: &str, directory: &Path) -> PathBuf {
    let path = Path::new(program);
    if program.contains('/') && path.is_relative() {
        directory.join(path)
    } else {
        path.to_owned()
    }
}

/// Starts `spec` with `env` added to the updater's environment.
pub(crate) fn spawn<'e>(
    spec: ProcessSpec<'_>,
    env: impl IntoIterator<Item = (&'e String, &'e String)>,
) -> Result<Spawned, Error> {
    let spawn_error = |source| Error::Spawn {
        instance: spec.instance.to_owned(),
        command: spec.program.to_owned(),
        error: source,
    };
    let program = resolve_program(spec.program, spec.directory);
    #[allow(clippy::disallowed_methods)] // This is the one place that may.
    let mut command = match spec.cgroup_procs {
        None => tokio::process::Command::new(program),
        Some(procs) => {
            let mut command = tokio::process::Command::new("/bin/sh");
            command
                .args(["-c", JOIN_CGROUP, "vupdate-join-cgroup"])
                .arg(procs)
                .arg(program);
            command
        }
    };
    // First, so a variable the caller sets on purpose (the probe's) stays.
    for name in HANDOVER_VARIABLES {
        command.env_remove(name);
    }
    command
        .args(spec.args)
        .current_dir(spec.directory)
        .envs(
            env.into_iter()
                .map(|(name, value)| (OsStr::new(name), OsStr::new(value))),
        )
        .env(OWNER_ENV, spec.owner)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = vupdate_process::spawn_when_not_busy(&mut command).map_err(spawn_error)?;
    let pid = child.id().expect("a child that was just spawned has a pid");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let readers = stdout
        .into_owned_fd()
        .and_then(pipe::Receiver::from_owned_fd)
        .and_then(|stdout| {
            let stderr = stderr
                .into_owned_fd()
                .and_then(pipe::Receiver::from_owned_fd)?;
            Ok((stdout, stderr))
        });
    let (stdout, stderr) = match readers {
        Ok(readers) => readers,
        Err(error) => {
            // Nobody would read its output: it must not run.
            let _ = child.start_kill();
            return Err(spawn_error(error));
        }
    };
    Ok(Spawned {
        child,
        pid,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_with_a_slash_are_taken_from_the_directory() {
        let dir = Path::new("/srv/web/current");
        assert_eq!(
            resolve_program("./run.sh", dir),
            PathBuf::from("/srv/web/current/./run.sh")
        );
        assert_eq!(
            resolve_program("bin/server", dir),
            PathBuf::from("/srv/web/current/bin/server")
        );
        assert_eq!(resolve_program("sh", dir), PathBuf::from("sh"));
        assert_eq!(resolve_program("/bin/sh", dir), PathBuf::from("/bin/sh"));
    }

    #[tokio::test]
    async fn a_spawned_process_leads_its_group_and_carries_the_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = vec![
            "-c".to_owned(),
            "echo \"$VUPDATE_OWNER $GREETING\"; while :; do sleep 1; done".to_owned(),
        ];
        let greeting = ("GREETING".to_owned(), "hi".to_owned());
        let mut spawned = spawn(
            ProcessSpec {
                instance: "svc",
                program: "sh",
                args: &args,
                directory: dir.path(),
                owner: "owner-1",
                cgroup_procs: None,
            },
            [(&greeting.0, &greeting.1)],
        )
        .expect("spawn");
        let mut first = String::new();
        let mut reader = tokio::io::BufReader::new(&mut spawned.stdout);
        tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut first)
            .await
            .expect("read");
        assert_eq!(first, "owner-1 hi\n");
        let pid = i32::try_from(spawned.pid).expect("pid");
        let stat = vupdate_process::table::read(pid).expect("stat of the child");
        assert_eq!(stat.pgid, pid, "the child leads its own process group");
        assert!(vupdate_process::table::environ_has(
            pid,
            b"VUPDATE_OWNER=owner-1"
        ));
        assert!(vupdate_process::kill_group(pid), "kill the group");
        spawned.child.wait().await.expect("wait");
    }
}
