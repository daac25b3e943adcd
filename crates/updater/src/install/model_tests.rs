//! A proptest model of the install state machine: the real [`plan`] drives a model of the
//! disk (directories as whole values with a preparation stage), the journal (persisted
//! only by `Write`) and the process; the loop is crashed at random effects, recovery is
//! the same loop in a "new process", and invariants are checked throughout and at the end.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use vupdate_core::version::ClientVersion;

use super::journal::{Installed, Journal, Step, Task};
use super::plan::{Action, Disk, Limits, Memory, Slot, StartOutcome, Tag, first_step, plan};

/// How far a version directory got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Unpacked,
    CommandsHalfRun,
    Prepared,
    PostInstallHalfRun,
    Installed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dir {
    version: ClientVersion,
    stage: Stage,
}

#[derive(Debug, Clone, Default)]
struct ModelDisk {
    current: Option<Dir>,
    new: Option<Dir>,
    previous: Option<Dir>,
    partial: bool,
    trash: usize,
    images: BTreeSet<ClientVersion>,
}

impl ModelDisk {
    fn slot(&mut self, slot: Slot) -> &mut Option<Dir> {
        match slot {
            Slot::Current => &mut self.current,
            Slot::New => &mut self.new,
            Slot::Previous => &mut self.previous,
            Slot::Partial => unreachable!("partial is a flag"),
        }
    }

    fn facts(&self, task: Option<&ClientVersion>) -> Disk {
        let tag = |dir: &Option<Dir>| match dir {
            None => Tag::Missing,
            Some(dir) => Tag::Version(dir.version.clone()),
        };
        Disk {
            current: tag(&self.current),
            new: tag(&self.new),
            previous: tag(&self.previous),
            partial: self.partial,
            trash: self.trash > 0,
            stale_images: self.images.iter().any(|image| Some(image) != task),
        }
    }

    /// Whether a usable copy of `version` exists (complete for the old, prepared for the
    /// new).
    fn has_usable(&self, version: &ClientVersion, min: Stage) -> bool {
        [&self.current, &self.new, &self.previous]
            .into_iter()
            .flatten()
            .any(|dir| &dir.version == version && dir.stage >= min)
    }
}

/// One scenario: what exists before, what the commands and starts do, where crashes hit.
#[derive(Debug, Clone)]
struct Scenario {
    has_old: bool,
    has_previous: bool,
    /// The version installed is the one in `previous/` (a revert to it), with no image.
    revert: bool,
    exchange_works: bool,
    install_fails: bool,
    post_install_fails: bool,
    start_failures: u32,
    crashes: Vec<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.25),
        any::<bool>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        // Fewer failures than the limit are transient; `u32::MAX` is a version that never
        // starts (an exact count could be cut short by a crash between a failure and its
        // journal write, which rightly does not count it).
        prop_oneof![Just(0u32), Just(1), Just(2), Just(u32::MAX)],
        prop::collection::vec(0usize..60, 0..4),
    )
        .prop_map(
            |(
                has_old,
                has_previous,
                revert,
                exchange_works,
                install_fails,
                post_install_fails,
                start_failures,
                mut crashes,
            )| {
                crashes.sort_unstable();
                crashes.dedup();
                Scenario {
                    has_old,
                    has_previous: has_old && has_previous && !revert,
                    revert: has_old && revert,
                    exchange_works,
                    install_fails,
                    post_install_fails,
                    start_failures,
                    crashes,
                }
            },
        )
}

fn version(text: &str) -> ClientVersion {
    text.parse().expect("model version")
}

struct World {
    disk: ModelDisk,
    stored: Journal,
    journal: Journal,
    memory: Memory,
    effects: usize,
    start_failures_left: u32,
    history_moves: usize,
}

const LIMITS: Limits = Limits { start_attempts: 3 };

/// Runs the scenario; returns the world at the end.
fn run(scenario: &Scenario) -> Result<World, TestCaseError> {
    let (old, new, older) = (
        version("acme-1.0.0"),
        version("acme-2.0.0"),
        version("acme-0.9.0"),
    );
    let now = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let installed = |v: &ClientVersion| Installed {
        version: v.clone(),
        install_time: now,
    };
    let mut disk = ModelDisk::default();
    let mut journal = Journal::default();
    if scenario.has_old {
        disk.current = Some(Dir {
            version: old.clone(),
            stage: Stage::Installed,
        });
        journal.current = Some(installed(&old));
    }
    if scenario.has_previous {
        disk.previous = Some(Dir {
            version: older.clone(),
            stage: Stage::Installed,
        });
        journal.previous = Some(installed(&older));
    }
    if scenario.revert {
        disk.previous = Some(Dir {
            version: new.clone(),
            stage: Stage::Installed,
        });
        journal.previous = Some(installed(&new));
    } else {
        disk.images.insert(new.clone());
    }
    let step = first_step(&journal, &disk.facts(Some(&new)), &new);
    let expected = if scenario.revert {
        Step::Stop
    } else {
        Step::Unpack
    };
    prop_assert_eq!(step, expected);
    journal.task = Some(Task {
        to: new.clone(),
        step,
        started: now,
        start_failures: 0,
    });
    let mut world = World {
        disk,
        stored: journal.clone(),
        journal,
        memory: Memory {
            running: scenario.has_old.then(|| old.clone()),
            ..Memory::default()
        },
        effects: 0,
        start_failures_left: scenario.start_failures,
        history_moves: 0,
    };
    let mut crashes = scenario.crashes.iter().copied().peekable();
    for _ in 0..500 {
        // Nothing may ever be lost: the old version whole until the new one is prepared.
        let old_safe = !scenario.has_old || world.disk.has_usable(&old, Stage::Installed);
        let new_safe = world.disk.has_usable(&new, Stage::Prepared);
        prop_assert!(old_safe || new_safe, "both versions lost: {:?}", world.disk);
        let task = world.journal.task.as_ref().map(|task| task.to.clone());
        let action = plan(
            &world.journal,
            &world.disk.facts(task.as_ref()),
            &world.memory,
            LIMITS,
            now,
        );
        if action == Action::Idle {
            return Ok(world);
        }
        let effects = effects_of(&action, &mut world, scenario, &new)?;
        for effect in effects {
            if crashes.peek() == Some(&world.effects) {
                crashes.next();
                // kill -9: what runs is killed by the next process, memory is gone, and
                // the journal is what was stored.
                world.memory = Memory::default();
                world.journal = world.stored.clone().recovered();
                world.effects += 1;
                break;
            }
            world.effects += 1;
            effect(&mut world);
        }
    }
    Err(TestCaseError::fail(
        "the install loop did not settle in 500 actions",
    ))
}

type Effect = Box<dyn FnOnce(&mut World)>;

/// The atomic effects of an action, in order; a crash may fall between any two.
fn effects_of(
    action: &Action,
    world: &mut World,
    scenario: &Scenario,
    new: &ClientVersion,
) -> Result<Vec<Effect>, TestCaseError> {
    let exchange_works = scenario.exchange_works;
    Ok(match action.clone() {
        Action::Idle => Vec::new(),
        Action::Broken(reason) => return Err(TestCaseError::fail(format!("broken: {reason}"))),
        Action::RunCurrent => vec![Box::new(|w: &mut World| {
            w.memory.running = w.disk.current.as_ref().map(|dir| dir.version.clone());
        })],
        Action::Trash(Slot::Partial) => vec![Box::new(|w: &mut World| {
            w.disk.partial = false;
            w.disk.trash += 1;
        })],
        Action::Trash(slot) => {
            prop_assert!(
                world.disk.slot(slot).is_some(),
                "trash of an empty {slot:?}"
            );
            vec![Box::new(move |w: &mut World| {
                *w.disk.slot(slot) = None;
                w.disk.trash += 1;
            })]
        }
        Action::EmptyTrash => vec![Box::new(|w: &mut World| w.disk.trash = 0)],
        Action::DeleteStaleImages => {
            let keep = world.journal.task.as_ref().map(|task| task.to.clone());
            vec![Box::new(move |w: &mut World| {
                w.disk.images.retain(|image| Some(image) == keep.as_ref());
            })]
        }
        Action::Unpack => {
            prop_assert!(world.disk.new.is_none() && !world.disk.partial);
            prop_assert!(world.disk.images.contains(new), "unpack without the image");
            let version = new.clone();
            vec![
                Box::new(|w: &mut World| w.disk.partial = true),
                Box::new(move |w: &mut World| {
                    w.disk.partial = false;
                    w.disk.new = Some(Dir {
                        version,
                        stage: Stage::Unpacked,
                    });
                    w.memory.unpacked = true;
                }),
            ]
        }
        Action::RunInstallCommands => {
            prop_assert!(
                world
                    .disk
                    .new
                    .as_ref()
                    .is_some_and(|dir| dir.stage == Stage::Unpacked),
                "install commands on a directory that is not freshly unpacked: {:?}",
                world.disk.new
            );
            let fails = scenario.install_fails;
            vec![
                Box::new(|w: &mut World| {
                    if let Some(dir) = &mut w.disk.new {
                        dir.stage = Stage::CommandsHalfRun;
                    }
                }),
                Box::new(move |w: &mut World| {
                    if fails {
                        w.memory.failure = Some(("exit code 1".to_owned(), true));
                    } else {
                        if let Some(dir) = &mut w.disk.new {
                            dir.stage = Stage::Prepared;
                        }
                        w.memory.commands_done = true;
                    }
                }),
            ]
        }
        Action::StopService => vec![Box::new(|w: &mut World| w.memory.running = None)],
        Action::MoveLogs { .. } => vec![Box::new(|w: &mut World| {
            w.history_moves += 1;
            w.memory.logs_moved = true;
        })],
        Action::Exchange(a, b) => vec![Box::new(move |w: &mut World| {
            if exchange_works {
                let first = w.disk.slot(a).take();
                let second = std::mem::replace(w.disk.slot(b), first);
                *w.disk.slot(a) = second;
            } else {
                w.memory.no_exchange = true;
            }
        })],
        Action::Rename { from, to } => {
            prop_assert!(
                world.disk.slot(from).is_some() && world.disk.slot(to).is_none(),
                "rename {from:?} -> {to:?} in {:?}",
                world.disk
            );
            vec![Box::new(move |w: &mut World| {
                let dir = w.disk.slot(from).take();
                *w.disk.slot(to) = dir;
            })]
        }
        Action::RunPostInstall => {
            prop_assert!(
                world
                    .disk
                    .current
                    .as_ref()
                    .is_some_and(|dir| &dir.version == new && dir.stage >= Stage::Prepared),
                "post-install outside the prepared new version: {:?}",
                world.disk.current
            );
            // A failing post-install fails every time it runs (a crash may swallow one failure).
            let fails = scenario.post_install_fails;
            vec![
                Box::new(|w: &mut World| {
                    if let Some(dir) = &mut w.disk.current {
                        dir.stage = Stage::PostInstallHalfRun;
                    }
                }),
                Box::new(move |w: &mut World| {
                    if fails {
                        w.memory.failure = Some(("exit code 2".to_owned(), true));
                    } else {
                        if let Some(dir) = &mut w.disk.current {
                            dir.stage = Stage::Installed;
                        }
                        w.memory.commands_done = true;
                    }
                }),
            ]
        }
        Action::StartAndWatch => {
            prop_assert!(
                world
                    .disk
                    .current
                    .as_ref()
                    .is_some_and(|dir| &dir.version == new && dir.stage == Stage::Installed),
                "start of a version that is not fully installed: {:?}",
                world.disk.current
            );
            vec![Box::new(|w: &mut World| {
                w.memory.running = w.disk.current.as_ref().map(|dir| dir.version.clone());
                w.memory.start_outcome = Some(if w.start_failures_left > 0 {
                    w.start_failures_left -= 1;
                    StartOutcome::Failed
                } else {
                    StartOutcome::Survived
                });
            })]
        }
        Action::Write(journal) => vec![Box::new(move |w: &mut World| {
            w.stored = (*journal).clone();
            w.journal = *journal;
            w.memory.next_step();
        })],
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_crash_recovers_to_the_old_or_the_new_version(scenario in scenario()) {
        let (old, new) = (version("acme-1.0.0"), version("acme-2.0.0"));
        let world = run(&scenario)?;
        let journal = &world.journal;
        prop_assert_eq!(journal.task.as_ref(), None);
        prop_assert!(world.disk.new.is_none() && !world.disk.partial && world.disk.trash == 0, "{:?}", world.disk);
        prop_assert!(world.disk.images.is_empty());
        let installed = journal.current.as_ref().map(|installed| installed.version.clone());
        let in_current = world.disk.current.clone();
        prop_assert_eq!(in_current.as_ref().map(|dir| dir.version.clone()), installed.clone());
        // What runs is what is installed, and it is whole.
        prop_assert_eq!(&world.memory.running, &installed);
        if let Some(dir) = &in_current {
            // The one exception: a first install whose post-install failed has nothing to
            // roll back to, so it stays (reported) as its commands left it.
            let kept_failed_first = scenario.post_install_fails && !scenario.has_old;
            if !kept_failed_first {
                prop_assert_eq!(dir.stage, Stage::Installed, "current/ is not whole: {:?}", dir);
            }
        }
        // A revert runs no install commands.
        let new_fails = (scenario.install_fails && !scenario.revert)
            || scenario.post_install_fails
            || scenario.start_failures >= LIMITS.start_attempts;
        let expected = if !new_fails {
            Some(new.clone())
        } else if scenario.install_fails && !scenario.revert {
            scenario.has_old.then(|| old.clone())
        } else if scenario.has_old {
            Some(old.clone())
        } else {
            // Nothing to roll back to: the new version stays and keeps being restarted.
            Some(new.clone())
        };
        prop_assert_eq!(&installed, &expected);
        if new_fails {
            prop_assert_eq!(journal.failed.as_ref().map(|failed| &failed.version), Some(&new));
            prop_assert!(journal.update_error.is_some());
        } else {
            prop_assert_eq!(&journal.failed, &None);
            prop_assert_eq!(&journal.update_error, &None);
        }
        // previous/ is the old version after an upgrade, and matches the journal.
        prop_assert_eq!(
            world.disk.previous.as_ref().map(|dir| dir.version.clone()),
            journal.previous.as_ref().map(|installed| installed.version.clone())
        );
        if installed.as_ref() == Some(&new) && scenario.has_old {
            prop_assert_eq!(journal.previous.as_ref().map(|p| p.version.clone()), Some(old.clone()));
        }
    }
}

#[test]
fn an_upgrade_without_crashes_takes_the_expected_path() {
    let world = run(&Scenario {
        has_old: true,
        has_previous: true,
        revert: false,
        exchange_works: true,
        install_fails: false,
        post_install_fails: false,
        start_failures: 0,
        crashes: Vec::new(),
    })
    .expect("runs");
    assert_eq!(
        world
            .journal
            .current
            .map(|installed| installed.version.to_string()),
        Some("acme-2.0.0".to_owned())
    );
    assert_eq!(world.history_moves, 1);
}

#[test]
fn a_revert_to_the_version_in_previous_swaps_it_back_without_an_image() {
    for exchange_works in [true, false] {
        let world = run(&Scenario {
            has_old: true,
            has_previous: false,
            revert: true,
            exchange_works,
            install_fails: true,
            post_install_fails: false,
            start_failures: 0,
            crashes: Vec::new(),
        })
        .expect("runs without unpacking (there is no image) or install commands");
        let version = |installed: Option<Installed>| installed.map(|i| i.version.to_string());
        assert_eq!(
            version(world.journal.current),
            Some("acme-2.0.0".to_owned())
        );
        assert_eq!(
            version(world.journal.previous),
            Some("acme-1.0.0".to_owned())
        );
        assert_eq!(world.history_moves, 1);
    }
}
