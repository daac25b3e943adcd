//! The install state machine as a pure function: given the journal, the facts on disk and
//! what this process has done, the one next action.
//!
//! The executor loops: read the facts, ask [`plan`], do the action, repeat until
//! [`Action::Idle`]. Recovery after a crash is the same loop in a new process (whose
//! [`Memory`] is empty and whose journal is [`Journal::recovered`]), so there is no
//! separate recovery code to get wrong. Every action is atomic (a rename, an exchange,
//! a journal write) or idempotent (unpack into a scratch directory, stop, move logs), and
//! the plan reads directories by their version file, never by assumption. The proptest
//! model in `model_tests` crashes the loop at random actions and checks that recovery
//! always ends with the old or the new version in `current/` and running.

use chrono::{DateTime, Utc};
use vupdate_core::version::ClientVersion;

use super::journal::{FailedVersion, Installed, Journal, Step, Task};
use crate::state::UpdateError;

/// A version directory of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// `current/`.
    Current,
    /// `new/`.
    New,
    /// `previous/`.
    Previous,
    /// `.new.partial/`.
    Partial,
}

/// What a slot holds on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Nothing.
    Missing,
    /// A directory without a readable version file.
    Unknown,
    /// A whole version directory.
    Version(ClientVersion),
}

impl Tag {
    /// Whether the slot holds `version`.
    pub fn holds(&self, version: &ClientVersion) -> bool {
        matches!(self, Tag::Version(held) if held == version)
    }

    /// Whether anything is there.
    pub fn exists(&self) -> bool {
        !matches!(self, Tag::Missing)
    }
}

/// The facts the plan reads from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// `current/`.
    pub current: Tag,
    /// `new/`.
    pub new: Tag,
    /// `previous/`.
    pub previous: Tag,
    /// Whether `.new.partial/` exists.
    pub partial: bool,
    /// Whether `.trash/` holds anything.
    pub trash: bool,
    /// Whether `images/` holds an image other than the one being installed.
    pub stale_images: bool,
}

impl Disk {
    /// What `slot` holds (`Partial` as `Unknown` when it exists).
    pub fn tag(&self, slot: Slot) -> &Tag {
        match slot {
            Slot::Current => &self.current,
            Slot::New => &self.new,
            Slot::Previous => &self.previous,
            Slot::Partial if self.partial => &Tag::Unknown,
            Slot::Partial => &Tag::Missing,
        }
    }
}

/// How a start window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// The new version stayed up for the whole window.
    Survived,
    /// It ended within the window.
    Failed,
}

/// What this process did in the current step; empty in a new process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memory {
    /// The version this process runs now, if any (a new process kills what a crashed one
    /// left, so it starts with none).
    pub running: Option<ClientVersion>,
    /// Whether `renameat2(RENAME_EXCHANGE)` is known not to work here.
    pub no_exchange: bool,
    /// This step's unpack is done.
    pub unpacked: bool,
    /// This step's commands ran and passed.
    pub commands_done: bool,
    /// This step's log move is done.
    pub logs_moved: bool,
    /// How this step's start window ended.
    pub start_outcome: Option<StartOutcome>,
    /// This step failed: what went wrong, and whether the version is to blame (and so is
    /// marked failed) rather than the machine. With a failed start, why it failed.
    pub failure: Option<(String, bool)>,
}

impl Memory {
    /// Forgets what was done in the step; called after every journal write (a write is
    /// where a step ends). What runs and what the machine supports stay.
    pub fn next_step(&mut self) {
        *self = Memory {
            running: self.running.take(),
            no_exchange: self.no_exchange,
            ..Memory::default()
        };
    }
}

/// The install settings the plan needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed start windows in a row that make the version roll back.
    pub start_attempts: u32,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing to do: `current/` holds the journal's version and it runs (or nothing is
    /// installed, or the version has nothing to run).
    Idle,
    /// Start the version in `current/` (plain start, no start window).
    RunCurrent,
    /// Move the slot into `.trash/` (atomic), then empty the trash.
    Trash(Slot),
    /// Delete what `.trash/` holds.
    EmptyTrash,
    /// Delete the images of versions not being installed.
    DeleteStaleImages,
    /// Unpack the task's image into `.new.partial/`, then rename it to `new/`.
    Unpack,
    /// Run `installCommands` in `new/`.
    RunInstallCommands,
    /// Stop what runs, tree-wide, and kill what carries the service's marker.
    StopService,
    /// Move the `writeLogs` files of the version in `current/` to `log.history/`.
    MoveLogs {
        /// Whether the version failed (its history folder says so).
        failed: bool,
    },
    /// Exchange two slots with one `renameat2(RENAME_EXCHANGE)`.
    Exchange(Slot, Slot),
    /// Rename a slot to a missing one.
    Rename {
        /// The slot that exists.
        from: Slot,
        /// The slot that does not.
        to: Slot,
    },
    /// Run `postInstallCommands` in `current/`.
    RunPostInstall,
    /// Start the version in `current/` and watch its start window.
    StartAndWatch,
    /// Replace the journal.
    Write(Box<Journal>),
    /// The disk does not match the journal in a way no step explains (someone changed
    /// the directory by hand): nothing is done, the reason is reported.
    Broken(String),
}

impl Action {
    /// A journal write.
    fn write(journal: Journal) -> Action {
        Action::Write(Box::new(journal))
    }
}

/// The next action.
pub fn plan(
    journal: &Journal,
    disk: &Disk,
    memory: &Memory,
    limits: Limits,
    now: DateTime<Utc>,
) -> Action {
    match &journal.task {
        None => steady(journal, disk, memory),
        Some(task) => in_task(journal, task, disk, memory, limits, now),
    }
}

/// The step an install of `version` starts at: [`Step::Stop`] when it is the version kept
/// in `previous/` (a revert to it), which is swapped back as it is, without an image, an
/// unpack or its install commands (they ran in that directory when it was installed);
/// otherwise [`Step::Unpack`] of its image.
pub fn first_step(journal: &Journal, disk: &Disk, version: &ClientVersion) -> Step {
    let kept = journal
        .previous
        .as_ref()
        .is_some_and(|previous| &previous.version == version);
    if kept && disk.previous.holds(version) && disk.current.exists() {
        Step::Stop
    } else {
        Step::Unpack
    }
}

/// No install under way: clean up, then make sure the installed version runs.
fn steady(journal: &Journal, disk: &Disk, memory: &Memory) -> Action {
    if disk.partial {
        return Action::Trash(Slot::Partial);
    }
    if disk.new.exists() {
        return Action::Trash(Slot::New);
    }
    if disk.trash {
        return Action::EmptyTrash;
    }
    if disk.stale_images {
        return Action::DeleteStaleImages;
    }
    let Some(current) = &journal.current else {
        return Action::Idle;
    };
    if !disk.current.holds(&current.version) {
        return Action::Broken(format!(
            "current/ should hold {} but holds {}",
            current.version,
            describe(&disk.current)
        ));
    }
    if journal
        .previous
        .as_ref()
        .is_some_and(|previous| !disk.previous.holds(&previous.version))
    {
        // previous/ went missing: forget it rather than roll back to nothing.
        return Action::write(Journal {
            previous: None,
            ..journal.clone()
        });
    }
    if memory.running.as_ref() == Some(&current.version) {
        Action::Idle
    } else {
        Action::RunCurrent
    }
}

fn describe(tag: &Tag) -> String {
    match tag {
        Tag::Missing => "nothing".to_owned(),
        Tag::Unknown => "a directory without a version file".to_owned(),
        Tag::Version(version) => version.to_string(),
    }
}

fn with_step(journal: &Journal, task: &Task, step: Step) -> Journal {
    Journal {
        task: Some(Task {
            step,
            ..task.clone()
        }),
        ..journal.clone()
    }
}

/// The journal that ends the task without installing it: the old version stays.
fn abort(journal: &Journal, task: &Task, error: &str, blame: bool, now: DateTime<Utc>) -> Journal {
    Journal {
        task: None,
        failed: blame
            .then(|| FailedVersion {
                version: task.to.clone(),
                time: now,
            })
            .or(journal.failed.clone()),
        update_error: Some(UpdateError {
            critical: false,
            error: format!("install of {} failed at {}: {error}", task.to, task.step),
        }),
        ..journal.clone()
    }
}

fn in_task(
    journal: &Journal,
    task: &Task,
    disk: &Disk,
    memory: &Memory,
    limits: Limits,
    now: DateTime<Utc>,
) -> Action {
    let new_version = &task.to;
    let old = journal.current.as_ref().map(|installed| &installed.version);
    match task.step {
        Step::Unpack | Step::InstallCommands => {
            if let Some((error, blame)) = &memory.failure {
                return Action::write(abort(journal, task, error, *blame, now));
            }
            // While the new version is prepared, the old one serves.
            if memory.running.is_none()
                && let Some(old) = old
                && disk.current.holds(old)
            {
                return Action::RunCurrent;
            }
            if task.step == Step::Unpack {
                if disk.partial {
                    return Action::Trash(Slot::Partial);
                }
                if memory.unpacked && disk.new.holds(new_version) {
                    return Action::write(with_step(journal, task, Step::InstallCommands));
                }
                if disk.new.exists() {
                    return Action::Trash(Slot::New);
                }
                return Action::Unpack;
            }
            if memory.commands_done {
                Action::write(with_step(journal, task, Step::Stop))
            } else if !disk.new.holds(new_version) {
                // new/ went away under a live process: unpack again.
                Action::write(with_step(journal, task, Step::Unpack))
            } else {
                Action::RunInstallCommands
            }
        }
        Step::Stop | Step::RollbackStop => {
            if memory.running.is_some() {
                Action::StopService
            } else {
                let next = if task.step == Step::Stop {
                    Step::MoveLogs
                } else {
                    Step::RollbackMoveLogs
                };
                Action::write(with_step(journal, task, next))
            }
        }
        Step::MoveLogs | Step::RollbackMoveLogs => {
            if memory.logs_moved {
                let next = if task.step == Step::MoveLogs {
                    Step::Swap
                } else {
                    Step::RollbackSwap
                };
                Action::write(with_step(journal, task, next))
            } else {
                Action::MoveLogs {
                    failed: task.step == Step::RollbackMoveLogs,
                }
            }
        }
        Step::Swap => swap(journal, task, disk, memory, old, now),
        Step::PostInstall => {
            if let Some((error, _)) = &memory.failure {
                return fail_new_version(journal, task, error, limits, now);
            }
            if memory.commands_done {
                Action::write(with_step(journal, task, Step::Start))
            } else {
                Action::RunPostInstall
            }
        }
        Step::Start => match memory.start_outcome {
            None => Action::StartAndWatch,
            Some(StartOutcome::Survived) => Action::write(Journal {
                task: None,
                failed: None,
                update_error: None,
                ..journal.clone()
            }),
            Some(StartOutcome::Failed) => {
                let failures = task.start_failures + 1;
                if failures >= limits.start_attempts.max(1) {
                    // The start may say why it failed (the updater's own handover does).
                    let error = memory.failure.as_ref().map_or_else(
                        || format!("it ended within its start window {failures} times in a row"),
                        |(error, _)| error.clone(),
                    );
                    fail_new_version(journal, task, &error, limits, now)
                } else {
                    Action::write(Journal {
                        task: Some(Task {
                            start_failures: failures,
                            ..task.clone()
                        }),
                        ..journal.clone()
                    })
                }
            }
        },
        Step::RollbackSwap => rollback_swap(journal, task, disk, memory, now),
    }
}

/// The new version failed after the swap: roll back to `previous/`, or keep it (and say
/// so) when there is nothing to roll back to.
fn fail_new_version(
    journal: &Journal,
    task: &Task,
    error: &str,
    _limits: Limits,
    now: DateTime<Utc>,
) -> Action {
    let failed = Some(FailedVersion {
        version: task.to.clone(),
        time: now,
    });
    match &journal.previous {
        Some(previous) => Action::write(Journal {
            failed,
            update_error: Some(UpdateError {
                critical: true,
                error: format!(
                    "{} failed ({error}); rolling back to {}",
                    task.to, previous.version
                ),
            }),
            task: Some(Task {
                step: Step::RollbackStop,
                ..task.clone()
            }),
            ..journal.clone()
        }),
        None => Action::write(Journal {
            failed,
            update_error: Some(UpdateError {
                critical: true,
                error: format!(
                    "{} failed ({error}); there is no previous version to roll back to, so it keeps being restarted",
                    task.to
                ),
            }),
            task: None,
            ..journal.clone()
        }),
    }
}

/// Makes `current/` the new version and `previous/` the old one.
fn swap(
    journal: &Journal,
    task: &Task,
    disk: &Disk,
    memory: &Memory,
    old: Option<&ClientVersion>,
    now: DateTime<Utc>,
) -> Action {
    let new_version = &task.to;
    if disk.current.holds(new_version) {
        if let Some(old) = old
            && disk.new.holds(old)
        {
            // After an exchange the old version is in new/: it becomes previous/.
            return if disk.previous.exists() {
                Action::Trash(Slot::Previous)
            } else {
                Action::Rename {
                    from: Slot::New,
                    to: Slot::Previous,
                }
            };
        }
        if disk.new.exists() {
            return Action::Trash(Slot::New);
        }
        let previous = old.and_then(|old| {
            disk.previous.holds(old).then(|| Installed {
                version: old.clone(),
                install_time: journal
                    .current
                    .as_ref()
                    .map_or(now, |installed| installed.install_time),
            })
        });
        if previous.is_none() && disk.previous.exists() {
            // An older previous/ that the old version did not replace (first install).
            return Action::Trash(Slot::Previous);
        }
        return Action::write(Journal {
            current: Some(Installed {
                version: new_version.clone(),
                install_time: now,
            }),
            previous,
            task: Some(Task {
                step: Step::PostInstall,
                ..task.clone()
            }),
            ..journal.clone()
        });
    }
    if disk.new.holds(new_version) {
        if disk.current.exists() {
            if !memory.no_exchange {
                if disk.previous.exists() {
                    return Action::Trash(Slot::Previous);
                }
                return Action::Exchange(Slot::New, Slot::Current);
            }
            return if disk.previous.exists() {
                Action::Trash(Slot::Previous)
            } else {
                Action::Rename {
                    from: Slot::Current,
                    to: Slot::Previous,
                }
            };
        }
        return Action::Rename {
            from: Slot::New,
            to: Slot::Current,
        };
    }
    if disk.previous.holds(new_version) {
        return swap_back(disk, memory);
    }
    // The new version is nowhere: put the old one back in current/ and unpack again.
    if !disk.current.exists() && disk.previous.exists() {
        return Action::Rename {
            from: Slot::Previous,
            to: Slot::Current,
        };
    }
    Action::write(with_step(journal, task, Step::Unpack))
}

/// Moves the task's version from `previous/` into `current/` (see [`first_step`]); once it
/// is there, [`swap`] makes the old version `previous/` as after an unpacked install.
fn swap_back(disk: &Disk, memory: &Memory) -> Action {
    previous_into_current(disk, memory).unwrap_or_else(|| {
        // Without an exchange the old version waits in new/ for its move to previous/.
        if disk.new.exists() {
            Action::Trash(Slot::New)
        } else {
            Action::Rename {
                from: Slot::Current,
                to: Slot::New,
            }
        }
    })
}

/// The one action that puts `previous/` in `current/`: a rename when `current/` is empty,
/// else an exchange; `None` when `current/` must be made room for first (no exchange here).
fn previous_into_current(disk: &Disk, memory: &Memory) -> Option<Action> {
    if !disk.current.exists() {
        Some(Action::Rename {
            from: Slot::Previous,
            to: Slot::Current,
        })
    } else if !memory.no_exchange {
        Some(Action::Exchange(Slot::Previous, Slot::Current))
    } else {
        None
    }
}

/// Puts the previous version back in `current/` and ends the task.
fn rollback_swap(
    journal: &Journal,
    task: &Task,
    disk: &Disk,
    memory: &Memory,
    now: DateTime<Utc>,
) -> Action {
    let Some(previous) = &journal.previous else {
        // The journal is written before previous/ is given up, so this is only reached
        // when the journal was edited: keep what is in current/.
        return Action::write(Journal {
            task: None,
            ..journal.clone()
        });
    };
    let back = &previous.version;
    if disk.current.holds(back) {
        if disk.previous.exists() {
            return Action::Trash(Slot::Previous);
        }
        if disk.new.exists() {
            return Action::Trash(Slot::New);
        }
        return Action::write(Journal {
            current: Some(previous.clone()),
            previous: None,
            failed: Some(FailedVersion {
                version: task.to.clone(),
                time: journal.failed.as_ref().map_or(now, |failed| failed.time),
            }),
            task: None,
            ..journal.clone()
        });
    }
    if disk.previous.holds(back) {
        // The failed version in current/ is not kept.
        return previous_into_current(disk, memory).unwrap_or(Action::Trash(Slot::Current));
    }
    Action::Broken(format!(
        "cannot roll back to {back}: neither current/ nor previous/ holds it"
    ))
}
