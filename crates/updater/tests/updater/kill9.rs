//! kill -9 of a real updater process at each step of an install, then recovery in this
//! process: the old or the new version must be in `current/` and running (exactly one of
//! them), nothing the dead updater started may survive except as a restarted service, and
//! the install must then complete. Since the install is journaled, recovery finishes it:
//! with a good new version every case ends with the new one.
//!
//! The updater is this test binary re-run with the ignored `child_updater` test: it
//! installs V1, then V2 with an observer that prints each action and blocks at the one it
//! was told to, where it is killed. Two more runs are killed in the middle of a running
//! install command and post-install command (their leftover processes must be killed).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vupdate_updater::images::DirectoryImages;
use vupdate_updater::layout::{ServiceDir, VERSION_FILE};
use vupdate_updater::runner::{InstallOutcome, ServiceRunner};

use crate::install::{V1, V2, good_install, images, options};
use crate::support::*;

const WORK_ENV: &str = "VUPDATE_TEST_WORK";
const PAUSE_ENV: &str = "VUPDATE_TEST_PAUSE_AT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the updater process that the kill -9 tests start and kill"]
async fn child_updater() {
    let work = PathBuf::from(std::env::var(WORK_ENV).expect("the work directory"));
    let pause_at: Option<usize> = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|text| text.parse().ok());
    let images = DirectoryImages::new(work.join("images"));
    let mut runner = ServiceRunner::open(&work.join("services"), instance("svc"), options())
        .await
        .expect("open");
    let v1 = runner
        .install(&V1.parse().expect("v1"), &images)
        .await
        .expect("install v1");
    assert_eq!(v1, InstallOutcome::Installed);
    println!("V1 INSTALLED");
    let counter = AtomicUsize::new(0);
    runner.set_observer(Box::new(move |action| {
        let index = counter.fetch_add(1, Ordering::SeqCst);
        let mut label = format!("{action:?}");
        label.truncate(60);
        println!("ACTION {index} {label}");
        if Some(index) == pause_at {
            println!("PAUSED {index}");
            // Wait here for the kill -9.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }));
    let v2 = runner
        .install(&V2.parse().expect("v2"), &images)
        .await
        .expect("install v2");
    println!("V2 DONE {v2:?}");
    runner.stop().await;
}

/// A started child updater and the lines it prints.
struct ChildUpdater {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ChildUpdater {
    fn start(work: &Path, pause_at: Option<usize>) -> ChildUpdater {
        let exe = std::env::current_exe().expect("the test binary");
        #[allow(clippy::disallowed_methods)] // The test binary itself, not a service.
        let mut command = std::process::Command::new(exe);
        command
            .args([
                "--exact",
                "kill9::child_updater",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WORK_ENV, work)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(index) = pause_at {
            command.env(PAUSE_ENV, index.to_string());
        }
        let mut child = command.spawn().expect("start the child updater");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        ChildUpdater {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; panics with what was seen at the deadline.
    fn wait_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    // libtest prints the test's name without a line end before the output.
                    if let Some(at) = line.find(prefix) {
                        return line[at..].to_owned();
                    }
                }
                Err(_) => panic!(
                    "no `{prefix}` line from the child; it printed {:#?}",
                    self.seen
                ),
            }
        }
    }

    fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reap the child");
    }
}

/// Waits (blocking) until `path` exists.
fn wait_path(path: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Recovers in this process and checks the invariant; then finishes the install of V2.
async fn recover_and_check(work: &Path, what: &str) -> String {
    let services = work.join("services");
    let dir = ServiceDir::new(&services, instance("svc"));
    let mut runner = ServiceRunner::open(&services, instance("svc"), options())
        .await
        .unwrap_or_else(|error| panic!("{what}: open: {error}"));
    runner
        .recover()
        .await
        .unwrap_or_else(|error| panic!("{what}: recover: {error}"));
    let journal = runner.journal().clone();
    assert!(
        journal.task.is_none(),
        "{what}: an install is left half-done: {journal:?}"
    );
    let installed = journal
        .current
        .as_ref()
        .map(|c| c.version.to_string())
        .expect("installed");
    assert!(installed == V1 || installed == V2, "{what}: {installed}");
    let in_current = std::fs::read_to_string(dir.current().join(VERSION_FILE)).expect("current/");
    assert_eq!(
        in_current, installed,
        "{what}: current/ and the journal disagree"
    );
    assert!(
        !dir.new_dir().exists() && !dir.partial().exists(),
        "{what}: scratch left"
    );
    let owner = dir.run_owner();
    wait_for(&format!("{what}: exactly {installed} to run"), || {
        (running_versions(&owner, &[V1, V2]) == [installed.as_str()]).then_some(())
    })
    .await;
    assert!(
        marked(&dir.command_owner()).is_empty(),
        "{what}: an install command survived"
    );
    // And the install can go on to the new version.
    let images = DirectoryImages::new(work.join("images"));
    let outcome = runner
        .install(&V2.parse().expect("v2"), &images)
        .await
        .expect("install v2");
    assert_eq!(outcome, InstallOutcome::Installed, "{what}");
    wait_for(&format!("{what}: V2 to run"), || {
        (running_versions(&owner, &[V1, V2]) == [V2]).then_some(())
    })
    .await;
    runner.stop().await;
    assert!(
        marked(&owner).is_empty(),
        "{what}: the service survived the stop"
    );
    installed
}

/// A work directory with images V1 and V2; V2's install (`slow-commands`) and
/// post-install (`slow-post`) commands wait while their flag file exists, so a test can
/// kill the updater inside them and recovery (with the flag gone) runs them fast.
fn fresh_work(slow: Option<&str>) -> tempfile::TempDir {
    let work = tempfile::tempdir().expect("tempdir");
    let wait = |flag: &str| format!("[ -e {} ] && sleep 30;", work.path().join(flag).display());
    images(
        work.path(),
        &good_install(&wait("slow-commands"), &wait("slow-post")),
    );
    if let Some(flag) = slow {
        std::fs::write(work.path().join(flag), "").expect("flag");
    }
    work
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_every_install_step_recovers_to_the_old_or_the_new_version() {
    // A run without a kill counts the actions of the V2 install.
    let work = fresh_work(None);
    let mut child = ChildUpdater::start(work.path(), None);
    let done = tokio::task::spawn_blocking(move || {
        let line = child.wait_line("V2 DONE");
        let actions: Vec<String> = child
            .seen
            .iter()
            .filter(|l| l.starts_with("ACTION "))
            .cloned()
            .collect();
        let _ = child.child.wait();
        (line, actions)
    })
    .await
    .expect("join");
    assert_eq!(done.0, "V2 DONE Installed");
    let actions = done.1;
    assert!(actions.len() >= 10, "{actions:#?}");
    let labels = actions.join("\n");
    for expected in [
        "Unpack",
        "RunInstallCommands",
        "StopService",
        "MoveLogs",
        "RunPostInstall",
        "StartAndWatch",
    ] {
        assert!(labels.contains(expected), "no {expected} in {labels}");
    }

    // Cases run a few at a time: each is mostly waiting on processes.
    let limit = Arc::new(tokio::sync::Semaphore::new(4));
    let mut cases = tokio::task::JoinSet::new();
    for (index, label) in actions.into_iter().enumerate() {
        let limit = limit.clone();
        cases.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let work = fresh_work(None);
            let mut child = ChildUpdater::start(work.path(), Some(index));
            let paused = tokio::task::spawn_blocking(move || {
                let line = child.wait_line("PAUSED");
                child.kill9();
                line
            })
            .await
            .expect("join");
            assert_eq!(paused, format!("PAUSED {index}"));
            let ended_with = recover_and_check(work.path(), &label).await;
            (index, format!("{label} -> {ended_with}"))
        });
    }
    let mut results: Vec<(usize, String)> = cases.join_all().await;
    results.sort();
    let results: Vec<String> = results.into_iter().map(|(_, result)| result).collect();
    println!("{}", results.join("\n"));
    // Recovery finishes the journaled install of a good version, whatever the step.
    assert!(results.iter().all(|r| r.ends_with(V2)), "{results:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_inside_running_install_and_post_install_commands_recovers() {
    // V2's commands wait while the flag exists; each run is killed inside one of them.
    let table = [
        ("slow-commands", "new/commands-running-acme-2.0.0"),
        ("slow-post", "current/post-running-acme-2.0.0"),
    ];
    for (flag, marker) in table {
        let work = fresh_work(Some(flag));
        let mut child = ChildUpdater::start(work.path(), None);
        let marker_path = work.path().join("services/svc").join(marker);
        tokio::task::spawn_blocking(move || {
            child.wait_line("V1 INSTALLED");
            wait_path(&marker_path);
            child.kill9();
        })
        .await
        .expect("join");
        std::fs::remove_file(work.path().join(flag)).expect("lift the flag for recovery");
        let ended_with = recover_and_check(work.path(), marker).await;
        assert_eq!(ended_with, V2, "killed inside {marker}");
    }
}
