//! The new process's side: [`startup`] (the first thing the updater's `main` calls)
//! answers a probe, or reads a handover file and takes the inherited pipes, and arms the
//! fallback; an [`Adoption`] is then given to the agent, which adopts each run and calls
//! [`Adoption::ready`].
//!
//! The fallback: until `ready`, the previous updater takes over again when the new one
//! panics, drops its adoption (returns from `main` or gives up with
//! [`Adoption::abandon`]), or is not ready within the window (a watchdog thread): the
//! handover file is rewritten with the pipes this process holds now (found by inode) and
//! the previous binary is executed in this same process, with its own arguments and
//! environment and [`FAILED_ENV`](super::FAILED_ENV) saying why. That process adopts the
//! runs like any other and has no fallback of its own. A new updater that exits the
//! process (`std::process::exit`, a crash) cannot be caught this way: the probe run
//! before `execve` is what keeps a binary that cannot start from being executed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use vupdate_core::version::ClientVersion;

use super::exec::exec;
use super::fds;
use super::file::{
    HandoverFile, LivePipe, LiveRun, LiveService, PipeHandover, ReadyMarker, read, remove,
    write_atomic,
};
use super::prepare::Header;
use super::{FAILED_ENV, FORMAT, HANDOVER_ENV, PROBE_ENV, PROBE_REPLY};
use crate::Error;

/// How the updater process starts.
#[derive(Debug)]
pub enum Startup {
    /// From nothing: what earlier processes left running is killed.
    Fresh,
    /// Taking over runs from the updater process this one replaced (or, after a failed
    /// handover, from itself).
    Adopt(Box<Adoption>),
}

impl Startup {
    /// Whether runs are to be adopted.
    pub fn is_handover(&self) -> bool {
        matches!(self, Startup::Adopt(_))
    }

    /// Gives up a handover before the agent runs (a bad config, say): the previous
    /// updater takes over, if there is one. Returns when there is none (or none could be
    /// executed); the runs are then killed as leftovers at the next start.
    pub fn abandon(self, reason: &str) {
        if let Startup::Adopt(adoption) = self {
            adoption.abandon(reason);
        }
    }
}

/// Runs handed over to this process, until [`Adoption::ready`].
#[derive(Debug)]
pub struct Adoption {
    path: PathBuf,
    ready_file: PathBuf,
    from_version: Option<ClientVersion>,
    to_version: Option<ClientVersion>,
    failure: Option<String>,
    services: Vec<LiveService>,
    guard: Option<Arc<Guard>>,
}

/// The first thing the updater's `main` calls, before it starts threads or reads its
/// arguments:
///
/// - with [`PROBE_ENV`](super::PROBE_ENV) set (the previous updater checking that this
///   binary runs here), prints [`PROBE_REPLY`](super::PROBE_REPLY) with the formats it
///   reads and exits 0;
/// - with [`HANDOVER_ENV`](super::HANDOVER_ENV) naming a handover file written by this
///   pid, takes the inherited pipes and arms the fallback: [`Startup::Adopt`];
/// - otherwise [`Startup::Fresh`] (a stale or unreadable handover file is reported and
///   ignored: what it names is killed as leftovers).
pub fn startup() -> Startup {
    if std::env::var_os(PROBE_ENV).is_some() {
        println!("{PROBE_REPLY} formats={FORMAT}");
        std::process::exit(0);
    }
    let Some(path) = std::env::var_os(HANDOVER_ENV).map(PathBuf::from) else {
        return Startup::Fresh;
    };
    let failure = std::env::var(FAILED_ENV).ok();
    let file = match read(&path) {
        Ok(file) if file.pid == std::process::id() && file.format == FORMAT => file,
        Ok(file) => {
            // A file of another process: the variable was inherited by mistake.
            tracing::warn!(path = %path.display(), pid = file.pid, format = file.format, "ignoring a handover file of another process or format");
            return Startup::Fresh;
        }
        Err(error) => {
            eprintln!("vupdate: {error}; starting afresh");
            tracing::error!(%error, "starting afresh");
            return Startup::Fresh;
        }
    };
    // This process is the fallback when it was told why the handover failed.
    let guard = failure
        .is_none()
        .then(|| Guard::arm(file.clone(), path.clone()));
    let services = file
        .services
        .iter()
        .map(|service| LiveService {
            instance: service.instance.clone(),
            directory: service.directory.clone(),
            version: service.version.clone(),
            run: service.run.as_ref().map(|run| LiveRun {
                record: run.record.clone(),
                stdout: take_pipe(&service.instance, run.stdout.as_ref()),
                stderr: take_pipe(&service.instance, run.stderr.as_ref()),
            }),
        })
        .collect();
    Startup::Adopt(Box::new(Adoption {
        path,
        ready_file: file.ready_file.clone(),
        from_version: file.from_version.clone(),
        to_version: file.to_version.clone(),
        failure,
        services,
        guard,
    }))
}

fn take_pipe(instance: &str, pipe: Option<&PipeHandover>) -> Option<LivePipe> {
    let pipe = pipe?;
    match fds::take_inherited(pipe.fd, pipe.inode) {
        Ok(fd) => Some(LivePipe {
            fd,
            pending: pipe.pending.clone(),
        }),
        Err(error) => {
            tracing::error!(%error, service = instance, fd = pipe.fd, "an output pipe was not inherited");
            None
        }
    }
}

impl Adoption {
    /// The services given back to this process after a handover that did not happen.
    pub(crate) fn in_process(header: Header, services: Vec<LiveService>, failure: String) -> Self {
        Adoption {
            path: PathBuf::new(),
            ready_file: header.ready_file,
            from_version: header.from_version,
            to_version: header.to_version,
            failure: Some(failure),
            services,
            guard: None,
        }
    }

    /// The updater version this process is: the one handed over to, or the previous one
    /// when this process is the fallback.
    pub fn running_version(&self) -> Option<&ClientVersion> {
        match self.failure {
            Some(_) => self.from_version.as_ref(),
            None => self.to_version.as_ref(),
        }
    }

    /// The version whose handover failed, and why, when this process is the fallback.
    pub fn failed_handover(&self) -> Option<(Option<&ClientVersion>, &str)> {
        self.failure
            .as_deref()
            .map(|failure| (self.to_version.as_ref(), failure))
    }

    /// Takes the service `instance` (to adopt its run); the fallback no longer carries the
    /// unended lines of its pipes, which are now this process's to finish.
    pub fn take_service(&mut self, instance: &str) -> Option<LiveService> {
        let index = self
            .services
            .iter()
            .position(|service| service.instance == instance)?;
        if let Some(guard) = &self.guard {
            guard.taken(instance);
        }
        Some(self.services.remove(index))
    }

    /// Takes every service not taken yet (services no longer configured).
    pub fn take_rest(&mut self) -> Vec<LiveService> {
        if let Some(guard) = &self.guard {
            for service in &self.services {
                guard.taken(&service.instance);
            }
        }
        std::mem::take(&mut self.services)
    }

    /// Says that this process supervises every run now: the fallback is disarmed, the
    /// handover file removed and the [`ReadyMarker`] written.
    pub fn ready(mut self, adopted: Vec<String>) -> Result<(), Error> {
        if let Some(guard) = self.guard.take()
            && !guard.disarm()
        {
            // The watchdog is executing the fallback this very moment.
            loop {
                std::thread::park();
            }
        }
        if !self.path.as_os_str().is_empty() {
            remove(&self.path)?;
        }
        let marker = ReadyMarker {
            pid: std::process::id(),
            version: self.running_version().cloned(),
            fallback: self.failure.is_some(),
            failure: self.failure.clone(),
            adopted,
            at: Utc::now(),
        };
        tracing::info!(
            version = marker.version.as_ref().map(tracing::field::display),
            fallback = marker.fallback,
            adopted = ?marker.adopted,
            "updater handover done"
        );
        write_atomic(&self.ready_file, &marker)
    }

    /// Gives the handover up now: the previous updater takes over, if there is one.
    /// Returns when there is none, or it could not be executed.
    pub fn abandon(mut self, reason: &str) {
        if let Some(guard) = self.guard.take() {
            guard.fall_back(reason);
        }
    }
}

impl Drop for Adoption {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            guard.fall_back("the new updater gave its adoption up before it was ready");
        }
    }
}

/// The armed fallback of a new updater process.
#[derive(Debug)]
struct Guard {
    file: HandoverFile,
    path: PathBuf,
    /// Whether the fallback may still happen, and the services the new process took.
    state: Mutex<GuardState>,
    wake: Condvar,
}

#[derive(Debug)]
struct GuardState {
    armed: bool,
    taken: HashSet<String>,
}

impl Guard {
    /// Arms the fallback: a watchdog for the window, and a panic hook.
    fn arm(file: HandoverFile, path: PathBuf) -> Arc<Guard> {
        let window = Duration::from_millis(file.ready_window_ms);
        let guard = Arc::new(Guard {
            file,
            path,
            state: Mutex::new(GuardState {
                armed: true,
                taken: HashSet::new(),
            }),
            wake: Condvar::new(),
        });
        let watchdog = guard.clone();
        let spawned = std::thread::Builder::new()
            .name("vupdate-handover-watchdog".to_owned())
            .spawn(move || watchdog.watch(window));
        if let Err(error) = spawned {
            tracing::error!(%error, "no handover watchdog: a hang of the new updater is not caught");
        }
        let hooked = guard.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            hooked.fall_back(&format!("the new updater panicked: {info}"));
            previous(info);
        }));
        guard
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GuardState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn watch(&self, window: Duration) {
        let deadline = Instant::now() + window;
        let mut state = self.lock();
        while state.armed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(state);
                self.fall_back(&format!(
                    "the new updater was not ready within {} ms",
                    window.as_millis()
                ));
                return;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    fn taken(&self, instance: &str) {
        self.lock().taken.insert(instance.to_owned());
    }

    /// Disarms; false when the fallback has already begun.
    fn disarm(&self) -> bool {
        let mut state = self.lock();
        let was = state.armed;
        state.armed = false;
        self.wake.notify_all();
        was
    }

    /// Executes the previous updater with the runs, once; returns only when it cannot.
    fn fall_back(&self, reason: &str) {
        let taken = {
            let mut state = self.lock();
            if !state.armed {
                return;
            }
            state.armed = false;
            self.wake.notify_all();
            state.taken.clone()
        };
        eprintln!("vupdate: {reason}; handing back to the previous updater");
        let error = match self.rewrite(&taken) {
            Ok(kept) => {
                let error = exec(&self.file.fallback, &self.path, Some(reason));
                drop(kept);
                error
            }
            Err(error) => std::io::Error::other(error.to_string()),
        };
        eprintln!(
            "vupdate: cannot hand back to the previous updater `{}`: {error}",
            self.file.fallback.program.display()
        );
        tracing::error!(%error, "cannot hand back to the previous updater");
    }

    /// Rewrites the handover file with the descriptors this process holds now for each
    /// pipe (found by inode, marked inherited); returns them, to keep open until `execve`.
    fn rewrite(&self, taken: &HashSet<String>) -> Result<Vec<std::os::fd::OwnedFd>, Error> {
        let mut file = self.file.clone();
        let mut kept = Vec::new();
        for service in &mut file.services {
            let was_taken = taken.contains(&service.instance);
            let Some(run) = &mut service.run else {
                continue;
            };
            for slot in [&mut run.stdout, &mut run.stderr] {
                let Some(pipe) = slot.as_mut() else {
                    continue;
                };
                let reopened = fds::find_pipe(pipe.inode)
                    .and_then(|fd| fds::reopen(fd, pipe.inode).ok())
                    .filter(|fd| fds::set_inherited(fd, true).is_ok());
                match reopened {
                    Some(fd) => {
                        pipe.fd = fds::number(&fd);
                        // What this process read of an unended line is not known here.
                        if was_taken {
                            pipe.pending.clear();
                        }
                        kept.push(fd);
                    }
                    None => *slot = None,
                }
            }
        }
        write_atomic(&self.path, &file)?;
        Ok(kept)
    }
}

/// Whether a handover file is left at `path` (one whose new process never became ready),
/// and the version it handed over to.
pub(crate) fn stale_handover(path: &Path) -> Option<HandoverFile> {
    if !path.exists() {
        return None;
    }
    let file = read(path).ok();
    if let Err(error) = remove(path) {
        tracing::warn!(%error, "a stale handover file stays");
    }
    file
}
