//! The old process's side: writing the handover file, marking exactly the pipe read ends
//! it names as inherited, and `execve` of the new binary; a handover that cannot happen
//! gives the services back for this process to adopt again.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use vupdate_core::version::ClientVersion;

use super::exec::exec;
use super::fds;
use super::file::{
    ExecTarget, FORMAT, HandoverFile, LivePipe, LiveService, PipeHandover, RunHandover,
    ServiceHandover, remove, write_atomic,
};
use super::startup::{Adoption, Startup};
use crate::Error;

/// Everything in a handover but the services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The updater version that runs now, when known.
    pub from_version: Option<ClientVersion>,
    /// The updater version handed over to, when known.
    pub to_version: Option<ClientVersion>,
    /// How to run this updater again, should the new one fail before it is ready.
    pub fallback: ExecTarget,
    /// How long the new updater has to become ready.
    pub ready_window: Duration,
    /// Where the process that takes over writes its [`super::ReadyMarker`].
    pub ready_file: PathBuf,
}

/// A handover that did not happen: why, and the services back, for this process to
/// adopt again (pass `resume` to [`crate::agent::Agent::start_with`]).
#[derive(Debug)]
pub struct HandoverFailed {
    /// Why.
    pub error: Error,
    /// The services, to adopt in this process; it reports the failure at its start.
    pub resume: Startup,
}

/// A handover file written, its descriptors marked inherited, ready for `execve`.
#[derive(Debug)]
pub struct Prepared {
    path: PathBuf,
    header: Header,
    services: Vec<LiveService>,
}

/// Writes the handover file at `path` for `services` (the runs detached from their
/// supervisors) and clears the close-on-exec flag of exactly their pipe read ends.
pub fn prepare(
    path: &Path,
    header: Header,
    services: Vec<LiveService>,
) -> Result<Prepared, Box<HandoverFailed>> {
    let prepared = Prepared {
        path: path.to_owned(),
        header,
        services,
    };
    match prepared.write() {
        Ok(()) => Ok(prepared),
        Err(error) => Err(Box::new(prepared.give_back(error))),
    }
}

fn pipe_record(pipe: &LivePipe) -> Result<PipeHandover, std::io::Error> {
    let fd = fds::number(&pipe.fd);
    let inode = fds::pipe_inode(pipe.fd.as_raw_fd())?;
    fds::set_inherited(&pipe.fd, true)?;
    Ok(PipeHandover {
        fd,
        inode,
        pending: pipe.pending.clone(),
    })
}

impl Prepared {
    fn write(&self) -> Result<(), Error> {
        let mut services = Vec::new();
        for service in &self.services {
            let run = match &service.run {
                None => None,
                Some(run) => {
                    let mut pipes = Vec::new();
                    for pipe in [&run.stdout, &run.stderr] {
                        pipes.push(match pipe {
                            None => None,
                            Some(pipe) => {
                                Some(pipe_record(pipe).map_err(|error| Error::Handover {
                                    path: self.path.clone(),
                                    message: format!(
                                        "service `{}`: cannot pass its output pipe on: {error}",
                                        service.instance
                                    ),
                                })?)
                            }
                        });
                    }
                    let stderr = pipes.pop().flatten();
                    let stdout = pipes.pop().flatten();
                    Some(RunHandover {
                        record: run.record.clone(),
                        stdout,
                        stderr,
                    })
                }
            };
            services.push(ServiceHandover {
                instance: service.instance.clone(),
                directory: service.directory.clone(),
                version: service.version.clone(),
                run,
            });
        }
        let file = HandoverFile {
            format: FORMAT,
            pid: std::process::id(),
            written: Utc::now(),
            from_version: self.header.from_version.clone(),
            to_version: self.header.to_version.clone(),
            fallback: self.header.fallback.clone(),
            ready_window_ms: u64::try_from(self.header.ready_window.as_millis())
                .unwrap_or(u64::MAX),
            ready_file: self.header.ready_file.clone(),
            services,
        };
        write_atomic(&self.path, &file)
    }

    /// The handover file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces this process with `target` (the new updater), which adopts the runs.
    /// Returns only when `execve` failed, with the services back.
    pub fn exec(self, target: &ExecTarget) -> HandoverFailed {
        let error = exec(target, &self.path, None);
        let error = Error::Handover {
            path: self.path.clone(),
            message: format!(
                "cannot execute the new updater `{}`: {error}",
                target.program.display()
            ),
        };
        self.give_back(error)
    }

    /// Undoes the preparation and makes the services an adoption for this process.
    fn give_back(self, error: Error) -> HandoverFailed {
        for service in &self.services {
            for pipe in service
                .run
                .iter()
                .flat_map(|run| [&run.stdout, &run.stderr])
                .flatten()
            {
                if let Err(error) = fds::set_inherited(&pipe.fd, false) {
                    tracing::warn!(%error, service = %service.instance, "cannot set close-on-exec again");
                }
            }
        }
        if let Err(error) = remove(&self.path) {
            tracing::warn!(%error, "the handover file stays");
        }
        let resume = Startup::Adopt(Box::new(Adoption::in_process(
            self.header,
            self.services,
            error.to_string(),
        )));
        HandoverFailed { error, resume }
    }
}
