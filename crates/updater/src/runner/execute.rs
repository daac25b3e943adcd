//! Doing the plan's actions on the real service directory and processes, and reading the
//! facts the plan needs back from the directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::Utc;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
use tokio::sync::watch;
use vupdate_core::macros::Macros;
use vupdate_core::update::InstallRules;
use vupdate_core::version::ClientVersion;

use super::{ServiceRunner, history_dir};
use crate::Error;
use crate::install::commands::{CommandContext, Leftovers, run_commands};
use crate::install::journal::sync_parent;
use crate::install::plan::{Action, Disk, Slot, StartOutcome, Tag};
use crate::install::unzip::{sync_tree, unpack};
use crate::layout::{ServiceDir, VERSION_FILE};
use crate::logs::RotatingFile;
use crate::state::ServiceState;
use crate::supervisor::{Health, RunSpec, RunState, ServiceStatus, Supervisor};

/// The name of the version rules file at the root of an image.
pub(crate) const INSTALL_JSON: &str = "install.json";

/// What a directory holds, by its version file.
pub(super) fn tag(path: &Path) -> Tag {
    if fs::symlink_metadata(path).is_err() {
        return Tag::Missing;
    }
    match fs::read_to_string(path.join(VERSION_FILE)) {
        Ok(text) => text.trim().parse().map_or(Tag::Unknown, Tag::Version),
        Err(_) => Tag::Unknown,
    }
}

/// The facts of `dir` the plan reads.
pub(super) fn read_disk(dir: &ServiceDir, installing: Option<&ClientVersion>) -> Disk {
    let keep = installing.map(|version| dir.image(version));
    let stale_images = fs::read_dir(dir.images())
        .is_ok_and(|entries| entries.flatten().any(|entry| Some(entry.path()) != keep));
    Disk {
        current: tag(&dir.current()),
        new: tag(&dir.new_dir()),
        previous: tag(&dir.previous()),
        partial: fs::symlink_metadata(dir.partial()).is_ok(),
        trash: fs::read_dir(dir.trash()).is_ok_and(|mut entries| entries.next().is_some()),
        stale_images,
    }
}

fn slot_path(dir: &ServiceDir, slot: Slot) -> PathBuf {
    match slot {
        Slot::Current => dir.current(),
        Slot::New => dir.new_dir(),
        Slot::Previous => dir.previous(),
        Slot::Partial => dir.partial(),
    }
}

/// The install rules of the version in `directory`, macros expanded.
pub(crate) fn load_rules(
    dir: &ServiceDir,
    directory: &Path,
    version: &ClientVersion,
) -> Result<InstallRules, Error> {
    let path = directory.join(INSTALL_JSON);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::InstallJson {
                path,
                message: "the version has no install.json at its root".to_owned(),
            });
        }
        Err(error) => return Err(Error::io("read", &path)(error)),
    };
    let rules =
        InstallRules::from_json(&text).map_err(|error| Error::install_json(&path, &error))?;
    rules
        .expand(&macros(dir, version))
        .map_err(|source| Error::Macro {
            instance: dir.name(),
            error: source,
        })
}

/// `%%version%%` (the developer version, as the original) and `%%role%%` (empty without
/// a role).
fn macros(dir: &ServiceDir, version: &ClientVersion) -> Macros {
    Macros::new()
        .with("version", version.developer.to_string())
        .with(
            "role",
            dir.instance()
                .role
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        )
}

/// Whether an error is the version's fault (so it is marked failed) rather than the
/// machine's.
fn blames_version(error: &Error) -> bool {
    matches!(
        error,
        Error::Zip { .. }
            | Error::UnsafeImage { .. }
            | Error::ImageTooLarge { .. }
            | Error::InstallJson { .. }
            | Error::Macro { .. }
            | Error::Spawn { .. }
            | Error::Command { .. }
    )
}

fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("{prefix}-{nanos}")
}

async fn empty_trash(trash: PathBuf) -> Result<(), Error> {
    tokio::task::spawn_blocking(move || {
        let Ok(entries) = fs::read_dir(&trash) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let removed = if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(Error::io("remove", &path))?;
        }
        Ok(())
    })
    .await
    .expect("the trash task does not panic")
}

impl ServiceRunner {
    /// Does one action of the plan.
    pub(super) async fn execute(&mut self, action: Action) -> Result<(), Error> {
        let dir = self.dir.clone();
        match action {
            Action::Idle => {}
            Action::Broken(message) => {
                return Err(Error::Journal {
                    path: dir.journal(),
                    message,
                });
            }
            Action::Write(journal) => self.write(*journal)?,
            Action::RunCurrent => {
                let version = self.version_in_current()?;
                if self.self_role.is_some() {
                    self.self_run_current(&version).await?;
                } else {
                    self.start_version(&version).await?;
                }
            }
            Action::Trash(slot) => {
                let from = slot_path(&dir, slot);
                let trash = dir.trash();
                fs::create_dir_all(&trash).map_err(Error::io("create", &trash))?;
                let to = trash.join(unique_name(&format!("{slot:?}").to_lowercase()));
                fs::rename(&from, &to).map_err(Error::io("move to the trash", &from))?;
                sync_parent(&from)?;
                empty_trash(trash).await?;
            }
            Action::EmptyTrash => empty_trash(dir.trash()).await?,
            Action::DeleteStaleImages => {
                let keep = self.journal.task.as_ref().map(|task| dir.image(&task.to));
                for entry in fs::read_dir(dir.images()).into_iter().flatten().flatten() {
                    if Some(entry.path()) != keep {
                        let path = entry.path();
                        fs::remove_file(&path).map_err(Error::io("remove", &path))?;
                    }
                }
            }
            Action::Unpack => self.unpack().await?,
            Action::RunInstallCommands => {
                let version = self.task_version();
                let new = dir.new_dir();
                let outcome = match load_rules(&dir, &new, &version) {
                    Ok(rules) => {
                        self.run_step_commands(&new, "installCommands", &rules.install_commands)
                            .await
                    }
                    Err(error) => Err(error),
                };
                self.note_outcome(outcome)?;
            }
            Action::StopService => {
                if let Some(handle) = self.supervisor.take() {
                    handle.stop().await;
                }
                self.pipeline.set_file(None);
                self.memory.running = None;
            }
            Action::MoveLogs { failed } => {
                self.move_logs(failed)?;
                self.memory.logs_moved = true;
            }
            Action::Exchange(a, b) => {
                let (a, b) = (slot_path(&dir, a), slot_path(&dir, b));
                match renameat2(AT_FDCWD, &a, AT_FDCWD, &b, RenameFlags::RENAME_EXCHANGE) {
                    Ok(()) => sync_parent(&a)?,
                    Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
                        tracing::info!(
                            "this filesystem cannot exchange directories; renaming one at a time"
                        );
                        self.memory.no_exchange = true;
                    }
                    Err(errno) => {
                        return Err(Error::io("exchange with `current/`", &a)(errno.into()));
                    }
                }
            }
            Action::Rename { from, to } => {
                let (from, to) = (slot_path(&dir, from), slot_path(&dir, to));
                fs::rename(&from, &to).map_err(Error::io("rename", &from))?;
                sync_parent(&to)?;
            }
            Action::RunPostInstall => {
                let version = self.task_version();
                let current = dir.current();
                let outcome = match load_rules(&dir, &current, &version) {
                    Ok(rules) => {
                        self.run_step_commands(
                            &current,
                            "postInstallCommands",
                            &rules.post_install_commands,
                        )
                        .await
                    }
                    Err(error) => Err(error),
                };
                self.note_outcome(outcome)?;
            }
            Action::StartAndWatch => {
                let outcome = if self.self_role.is_some() {
                    self.self_start_and_watch().await?
                } else {
                    self.start_and_watch().await?
                };
                self.memory.start_outcome = Some(outcome);
            }
        }
        Ok(())
    }

    fn task_version(&self) -> ClientVersion {
        self.journal
            .task
            .as_ref()
            .map(|task| task.to.clone())
            .expect("install steps are planned only with a task")
    }

    pub(super) fn version_in_current(&self) -> Result<ClientVersion, Error> {
        match tag(&self.dir.current()) {
            Tag::Version(version) => Ok(version),
            other => Err(Error::Journal {
                path: self.dir.journal(),
                message: format!("current/ holds no version ({other:?})"),
            }),
        }
    }

    /// Records a step's commands' outcome: a failure the version is to blame for goes to
    /// the plan; the machine's failures end the loop.
    fn note_outcome(&mut self, outcome: Result<(), Error>) -> Result<(), Error> {
        match outcome {
            Ok(()) => self.memory.commands_done = true,
            Err(error) if blames_version(&error) => {
                tracing::warn!(%error, "the version failed a step");
                self.memory.failure = Some((error.to_string(), true));
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    async fn run_step_commands(
        &self,
        base: &Path,
        field: &str,
        commands: &[vupdate_core::update::Command],
    ) -> Result<(), Error> {
        let instance = self.dir.name();
        let owner = self.dir.command_owner();
        let context = CommandContext {
            instance: &instance,
            base,
            owner: &owner,
            pipeline: &self.pipeline,
            timeout: self.options.command_timeout,
            leftovers: Leftovers::Scan,
        };
        run_commands(&context, field, commands).await
    }

    async fn unpack(&mut self) -> Result<(), Error> {
        let dir = self.dir.clone();
        let version = self.task_version();
        let image = dir.image(&version);
        if !image.exists() {
            self.memory.failure =
                Some((format!("the image `{}` is missing", image.display()), false));
            return Ok(());
        }
        let max_bytes = self.options.max_image_bytes;
        let unpacked = {
            let (dir, version) = (dir.clone(), version.clone());
            tokio::task::spawn_blocking(move || -> Result<(), Error> {
                let partial = dir.partial();
                unpack(&image, &partial, max_bytes)?;
                // A version that cannot be installed is refused before anything changes.
                load_rules(&dir, &partial, &version)?;
                let marker = partial.join(VERSION_FILE);
                fs::write(&marker, version.to_string()).map_err(Error::io("write", &marker))?;
                sync_tree(&partial)?;
                let new = dir.new_dir();
                fs::rename(&partial, &new).map_err(Error::io("rename", &partial))?;
                sync_parent(&new)
            })
            .await
            .expect("the unpack task does not panic")
        };
        match unpacked {
            Ok(()) => self.memory.unpacked = true,
            Err(error) if blames_version(&error) => {
                tracing::warn!(%error, "the image cannot be installed");
                self.memory.failure = Some((error.to_string(), true));
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    fn move_logs(&self, failed: bool) -> Result<(), Error> {
        let Ok(version) = self.version_in_current() else {
            return Ok(());
        };
        let current = self.dir.current();
        let Ok(rules) = load_rules(&self.dir, &current, &version) else {
            return Ok(());
        };
        let Some(write_logs) = rules.run_service.and_then(|run| run.write_logs) else {
            return Ok(());
        };
        let files = RotatingFile::files(
            &current.join(&write_logs.directory),
            &write_logs.file_prefix,
        );
        if files.is_empty() {
            return Ok(());
        }
        let started = self
            .journal
            .task
            .as_ref()
            .map_or_else(Utc::now, |task| task.started);
        let history = history_dir(&self.dir, &version, started, failed);
        fs::create_dir_all(&history).map_err(Error::io("create", &history))?;
        for file in files {
            let name = file.file_name().expect("log files have names");
            let to = history.join(name);
            fs::rename(&file, &to).map_err(Error::io("move to log.history", &file))?;
        }
        // The renames live in the history folder's entries: sync it.
        fs::File::open(&history)
            .and_then(|folder| folder.sync_all())
            .map_err(Error::io("sync", &history))
    }

    /// The run of `version` in `current/`, macros expanded, with its logs and uploads set
    /// up in the pipeline; `None` when the version has nothing to run.
    pub(super) fn run_spec(&self, version: &ClientVersion) -> Result<Option<RunSpec>, Error> {
        let current = self.dir.current();
        let rules = load_rules(&self.dir, &current, version)?;
        let Some(run) = rules.run_service else {
            self.pipeline.set_file(None);
            return Ok(None);
        };
        let file = match &run.write_logs {
            Some(settings) => match RotatingFile::from_settings(&current, settings) {
                Ok(file) => Some(file),
                Err(error) => {
                    tracing::warn!(%error, "writeLogs files cannot be opened; not writing them");
                    None
                }
            },
            None => None,
        };
        self.pipeline.set_file(file);
        self.pipeline.set_upload(run.upload_logs);
        Ok(Some(RunSpec {
            instance: self.dir.instance().clone(),
            service_dir: self.dir.root().to_owned(),
            directory: current,
            version: Some(version.clone()),
            install_time: self
                .journal
                .current
                .as_ref()
                .map(|current| current.install_time),
            run,
            owner: self.dir.run_owner(),
        }))
    }

    /// Starts `version` from `current/`: logs, uploads and, with `runService`, a
    /// supervisor whose status is forwarded into the service's state.
    async fn start_version(&mut self, version: &ClientVersion) -> Result<(), Error> {
        if let Some(handle) = self.supervisor.take() {
            handle.stop().await;
        }
        let spec = self.run_spec(version)?;
        self.memory.running = Some(version.clone());
        let Some(spec) = spec else {
            tracing::info!(version = %version, "the version has nothing to run");
            return Ok(());
        };
        let (handle, _events) = Supervisor::start(
            spec,
            self.pipeline.clone(),
            Some(self.faults.clone()),
            self.options.supervisor,
        );
        tokio::spawn(forward_status(handle.status(), self.state.clone()));
        self.supervisor = Some(handle);
        Ok(())
    }

    /// Makes sure the version in `current/` runs, then waits for its start window to end,
    /// or for a newer desired version: that one is installed next, so waiting out the
    /// window of a version being replaced would only delay it (a revert pushed seconds
    /// after a release must not wait for the release to prove itself).
    async fn start_and_watch(&mut self) -> Result<StartOutcome, Error> {
        let version = self.version_in_current()?;
        let supervised = self.supervisor.is_some();
        if self.memory.running.as_ref() != Some(&version) || !supervised {
            self.start_version(&version).await?;
        }
        let Some(handle) = &self.supervisor else {
            return Ok(StartOutcome::Survived);
        };
        let mut status = handle.status();
        if status.borrow().state == RunState::Exited {
            // restartOnFault is off: a new attempt is a restart by hand.
            handle.restart().await;
        }
        let baseline = status.borrow().failures_total;
        // With a health check, the version is kept once healthy; the supervisor ends a run
        // that is not healthy within the check's own start window (a fault, seen below).
        let health_checked = load_rules(&self.dir, &self.dir.current(), &version)?
            .run_service
            .is_some_and(|run| run.health_check.is_some());
        let window = self.options.start_window;
        let mut superseding = self.desired.clone();
        // What the install is for, not what is desired now: a newer version pushed while
        // this one was starting must end the window, not become its baseline.
        let target = self.journal.task.as_ref().map(|task| task.to.clone());
        loop {
            let now = Utc::now();
            let wait = {
                let current = status.borrow_and_update();
                if current.failures_total > baseline {
                    tracing::warn!(version = %version, "the new version ended within its start window");
                    if let Some(Health::Unhealthy(reason)) = &current.health {
                        let attempt = self
                            .journal
                            .task
                            .as_ref()
                            .map_or(1, |task| task.start_failures + 1);
                        self.memory.failure = Some((
                            format!("it failed its health check (attempt {attempt}): {reason}"),
                            true,
                        ));
                    }
                    return Ok(StartOutcome::Failed);
                }
                if health_checked {
                    if current.state == RunState::Running && current.health == Some(Health::Healthy)
                    {
                        return Ok(StartOutcome::Survived);
                    }
                    // Bounded by the check's start window, which the supervisor keeps.
                    std::time::Duration::from_secs(24 * 3600)
                } else {
                    match (current.state, current.start_time) {
                        (RunState::Running, Some(start)) => {
                            let up = (now - start).to_std().unwrap_or_default();
                            if up >= window {
                                return Ok(StartOutcome::Survived);
                            }
                            window - up
                        }
                        _ => window,
                    }
                }
            };
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        return Ok(StartOutcome::Failed);
                    }
                }
                () = tokio::time::sleep(wait) => {}
                want = superseded(&mut superseding, target.as_ref(), &version) => {
                    tracing::info!(version = %version, newer = %want, "a newer desired version ends the start window");
                    return Ok(StartOutcome::Survived);
                }
            }
        }
    }
}

/// Completes with the desired version once it is neither `target` (what the install is
/// for) nor `running` (a rollback starts the previous version while the failed
/// one is still desired; that is no reason to end its window); never without a receiver.
async fn superseded(
    desired: &mut Option<watch::Receiver<Option<ClientVersion>>>,
    target: Option<&ClientVersion>,
    running: &ClientVersion,
) -> ClientVersion {
    let Some(desired) = desired else {
        return std::future::pending().await;
    };
    loop {
        let want = desired.borrow_and_update().clone();
        if let Some(want) = want
            && Some(&want) != target
            && &want != running
        {
            return want;
        }
        if desired.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Copies a supervisor's status into the service's state until the supervisor ends.
pub(super) async fn forward_status(
    mut status: watch::Receiver<ServiceStatus>,
    state: Arc<watch::Sender<ServiceState>>,
) {
    loop {
        {
            let current = status.borrow_and_update();
            state.send_modify(|state| {
                state.time = Utc::now();
                state.start_time = current.start_time;
                state.failures_count =
                    Some(u32::try_from(current.failures_total).unwrap_or(u32::MAX));
                state.last_exit_code = current.last_exit.and_then(|exit| exit.shell_code());
                state.crash_loop = current.crash_loop;
                match &current.health {
                    Some(Health::Unhealthy(reason)) => state.unhealthy = Some(reason.clone()),
                    Some(Health::Healthy) | None => state.unhealthy = None,
                    // A new run keeps the reason its predecessor was ended for.
                    Some(Health::Starting) => {}
                }
            });
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vupdate_core::service::ServiceInstance;

    #[test]
    fn install_rules_get_the_developer_version_and_the_role() {
        let work = tempfile::tempdir().expect("tempdir");
        let version: ClientVersion = "acme-1.2.3_4".parse().expect("version");
        let install = r#"{"runService": {"command": "./run-%%role%%.sh", "args": ["--version=%%version%%"]}}"#;
        fs::write(work.path().join(INSTALL_JSON), install).expect("install.json");
        // (role, command expected)
        for (role, command) in [(Some("eu"), "./run-eu.sh"), (None, "./run-.sh")] {
            let dir = ServiceDir::new(
                work.path(),
                ServiceInstance {
                    service: "api".parse().expect("name"),
                    role: role.map(|role| role.parse().expect("role")),
                },
            );
            let rules = load_rules(&dir, work.path(), &version).expect("rules");
            let run = rules.run_service.expect("runService");
            assert_eq!(run.command, command);
            assert_eq!(run.args, ["--version=acme-1.2.3"]);
        }
        fs::write(
            work.path().join(INSTALL_JSON),
            r#"{"runService": {"command": "%%nope%%"}}"#,
        )
        .expect("install.json");
        let dir = ServiceDir::new(
            work.path(),
            ServiceInstance {
                service: "api".parse().expect("name"),
                role: None,
            },
        );
        let error = load_rules(&dir, work.path(), &version).expect_err("undefined macro");
        assert!(error.to_string().contains("runService.command"), "{error}");
    }
}
