//! The updater's own service, `updater`: installed with the same crash-safe steps as any
//! service, but nothing is supervised. Its start is a handover: the new binary
//! (`current/bin/vupdate`) is probed, then staged for the agent, which detaches every run
//! and executes it ([`crate::agent::Agent::hand_over`]). The start window ends when the
//! process that runs is the new version (it was adopted and is ready: kept), or when this
//! process learns the handover failed (the probe failed, the fallback was taken, or a
//! handover file was left by a process that died): then the version is rolled back to
//! `previous/` and remembered as failed, with one attempt only.
//!
//! Outside an install, a process whose binary is not the installed version (one started
//! from a bootstrap binary, at boot) stages a handover to `current/` the same way.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use vupdate_core::version::ClientVersion;

use super::execute::tag;
use super::{RunnerOptions, ServiceRunner};
use crate::Error;
use crate::handover::{FORMAT, PROBE_ENV, PROBE_REPLY, UPDATER_BINARY, UPDATER_SERVICE};
use crate::install::journal::Journal;
use crate::install::plan::{StartOutcome, Tag};
use crate::layout::{OWNER_ENV, ServiceDir};
use crate::spawn::{ProcessSpec, spawn};
use crate::state::UpdateError;
use crate::supervisor::leader::Leader;
use crate::supervisor::stop::end_tree;
use crate::supervisor::tree::TreeTracker;

/// A new updater binary, installed and probed, waiting for the agent to hand over to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// Its version.
    pub version: ClientVersion,
    /// The binary to execute.
    pub binary: PathBuf,
    /// The version of the updater that runs now, when known.
    pub from: Option<ClientVersion>,
}

/// What makes a runner the updater's own.
#[derive(Debug)]
pub struct SelfRole {
    /// The version of the binary this process runs, when known.
    pub running: Option<ClientVersion>,
    /// A version whose handover failed, and why.
    pub failed: Option<(ClientVersion, String)>,
    /// Where a staged binary is announced.
    pub staged: watch::Sender<Option<Staged>>,
    /// The arguments the binary is probed (and later executed) with.
    pub probe_args: Vec<String>,
    /// How long the probe may take.
    pub probe_timeout: Duration,
    /// How long a staged binary waits for the handover before its start counts as failed.
    pub handover_wait: Duration,
}

/// The longest probe output kept.
const PROBE_OUTPUT: u64 = 16 * 1024;

/// The version of the updater binary this process runs, when it is the one in the
/// updater's `current/` or `previous/` (by path).
pub(crate) fn running_from_exe(dir: &ServiceDir) -> Option<ClientVersion> {
    let exe = std::env::current_exe().ok()?;
    [dir.current(), dir.previous()]
        .into_iter()
        .find(|slot| {
            std::fs::canonicalize(slot.join(UPDATER_BINARY)).is_ok_and(|binary| binary == exe)
        })
        .and_then(|slot| match tag(&slot) {
            Tag::Version(version) => Some(version),
            _ => None,
        })
}

impl ServiceRunner {
    /// Opens the updater's own service (`<work_dir>/updater`): installs of new updater
    /// versions, with one start attempt (the handover) each.
    pub async fn open_self(
        work_dir: &std::path::Path,
        options: RunnerOptions,
        role: SelfRole,
    ) -> Result<ServiceRunner, Error> {
        let instance = vupdate_core::service::ServiceInstance {
            service: UPDATER_SERVICE
                .parse()
                .expect("the updater's service name is valid"),
            role: None,
        };
        let options = RunnerOptions {
            start_attempts: 1,
            ..options
        };
        let mut runner = Self::open_with(work_dir, instance, options, None).await?;
        runner.self_role = Some(role);
        Ok(runner)
    }

    fn role(&mut self) -> &mut SelfRole {
        self.self_role
            .as_mut()
            .expect("only the updater's own runner has a role")
    }

    /// The installed version "runs" once this process is it; otherwise a handover to it
    /// is staged (unless it failed before).
    pub(super) async fn self_run_current(&mut self, version: &ClientVersion) -> Result<(), Error> {
        self.memory.running = Some(version.clone());
        if self.role().running.as_ref() == Some(version) {
            return Ok(());
        }
        if let Some((failed, reason)) = self.role().failed.clone()
            && &failed == version
        {
            tracing::error!(version = %version, %reason, "the installed updater did not take over; keeping this one");
            let journal = Journal {
                failed: Some(crate::install::journal::FailedVersion {
                    version: version.clone(),
                    time: chrono::Utc::now(),
                }),
                update_error: Some(UpdateError {
                    critical: true,
                    error: format!("the updater {version} did not take over: {reason}"),
                }),
                ..self.journal.clone()
            };
            return self.write(journal);
        }
        if self
            .journal
            .failed
            .as_ref()
            .is_some_and(|failed| &failed.version == version)
        {
            return Ok(());
        }
        match self.probe().await {
            Ok(binary) => self.stage(version, binary),
            Err(error) => {
                tracing::error!(%error, "the installed updater cannot run here");
                self.report_error(&error);
            }
        }
        Ok(())
    }

    /// The start window of a new updater version: the handover.
    pub(super) async fn self_start_and_watch(&mut self) -> Result<StartOutcome, Error> {
        let version = self.version_in_current()?;
        self.memory.running = Some(version.clone());
        if let Some((failed, reason)) = self.role().failed.clone()
            && failed == version
        {
            return Ok(
                self.start_failed(format!("the updater {version} did not take over: {reason}"))
            );
        }
        if self.role().running.as_ref() == Some(&version) {
            tracing::info!(version = %version, "the new updater runs");
            return Ok(StartOutcome::Survived);
        }
        let binary = match self.probe().await {
            Ok(binary) => binary,
            Err(error) => {
                return Ok(self.start_failed(format!(
                    "the updater {version} cannot run on this machine: {error}"
                )));
            }
        };
        self.stage(&version, binary);
        // The handover replaces this process (or ends this task) before this is over.
        tokio::time::sleep(self.role().handover_wait).await;
        let waited = self.role().handover_wait.as_secs();
        Ok(self.start_failed(format!(
            "the updater {version} was not handed over to within {waited} s"
        )))
    }

    /// A failed start, with why (the plan puts it in the journal's update error).
    fn start_failed(&mut self, reason: String) -> StartOutcome {
        tracing::error!(%reason, "the new updater failed its start");
        self.memory.failure = Some((reason, true));
        StartOutcome::Failed
    }

    fn stage(&mut self, version: &ClientVersion, binary: PathBuf) {
        tracing::info!(version = %version, binary = %binary.display(), "new updater staged");
        let from = self.role().running.clone();
        self.role().staged.send_replace(Some(Staged {
            version: version.clone(),
            binary,
            from,
        }));
    }

    /// Runs `current/bin/vupdate` with [`PROBE_ENV`]: it must reply with the handover
    /// formats it reads (this one among them) and exit 0 within the probe timeout.
    async fn probe(&mut self) -> Result<PathBuf, Error> {
        let current = self.dir.current();
        let binary = current.join(UPDATER_BINARY);
        let failed = |message: String| Error::Handover {
            path: binary.clone(),
            message: format!("the probe of the new updater failed: {message}"),
        };
        let program = binary
            .to_str()
            .ok_or_else(|| failed("its path is not UTF-8".to_owned()))?
            .to_owned();
        let owner = self.dir.command_owner();
        let instance = self.dir.name();
        let (name, one) = (PROBE_ENV.to_owned(), "1".to_owned());
        let args = self.role().probe_args.clone();
        let timeout = self.role().probe_timeout;
        let spawned = spawn(
            ProcessSpec {
                instance: &instance,
                program: &program,
                args: &args,
                directory: &current,
                owner: &owner,
                cgroup_procs: None,
            },
            [(&name, &one)],
        )?;
        let pid = i32::try_from(spawned.pid).expect("Linux pids fit in i32");
        let mut leader = Leader::Spawned(spawned.child);
        let (mut stdout, mut stderr) = (
            spawned.stdout.take(PROBE_OUTPUT),
            spawned.stderr.take(PROBE_OUTPUT),
        );
        let ran = tokio::time::timeout(timeout, async {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let (read_out, read_err) =
                tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err),);
            let status = leader.wait().await;
            (read_out.and(read_err).and(status), out, err)
        })
        .await;
        let mut tree = TreeTracker::new(pid, format!("{OWNER_ENV}={owner}"));
        let (status, out, err) = match ran {
            Ok(ran) => ran,
            Err(_) => {
                end_tree(
                    &mut tree,
                    None,
                    Some(&mut leader),
                    nix::sys::signal::Signal::SIGKILL,
                    Duration::ZERO,
                )
                .await;
                return Err(failed(format!("no reply within {} s", timeout.as_secs())));
            }
        };
        end_tree(
            &mut tree,
            None,
            None,
            nix::sys::signal::Signal::SIGKILL,
            Duration::ZERO,
        )
        .await;
        let status = status.map_err(|error| failed(format!("cannot run it: {error}")))?;
        let out = String::from_utf8_lossy(&out);
        let formats = out.lines().find_map(|line| {
            let at = line.find(PROBE_REPLY)?;
            line[at + PROBE_REPLY.len()..]
                .trim()
                .strip_prefix("formats=")
                .map(|formats| {
                    formats
                        .split(',')
                        .filter_map(|format| format.trim().parse::<u32>().ok())
                        .collect::<Vec<_>>()
                })
        });
        let stderr_tail = || {
            let err = String::from_utf8_lossy(&err);
            let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
            if tail.is_empty() {
                String::new()
            } else {
                format!(" (stderr: {tail})")
            }
        };
        match formats {
            _ if !status.success() => {
                Err(failed(format!("it ended with {status}{}", stderr_tail())))
            }
            None => Err(failed(format!(
                "it did not reply `{PROBE_REPLY}`{}",
                stderr_tail()
            ))),
            Some(formats) if !formats.contains(&FORMAT) => Err(failed(format!(
                "it reads handover formats {formats:?}, not {FORMAT}"
            ))),
            Some(_) => Ok(binary),
        }
    }
}
