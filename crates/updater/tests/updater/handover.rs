//! Self-update of a real updater process: it runs two services, installs new versions of
//! itself and re-executes (the same pid) without restarting them or losing a line.
//!
//! The updater is this test binary re-run with the ignored `child_updater` test, driven
//! through files: `desired.json` (polled) and `stop`. Its `updater` images hold a
//! `bin/vupdate` that is a wrapper executing this same test binary (the simulated new
//! version), or a broken one: a binary that cannot even answer the probe, one that
//! panics while adopting, one that hangs. The service `talk` writes numbered lines in two
//! writes each (so a handover often falls mid-line), and every tenth to stderr; `idle`
//! sleeps. At the end the spool must hold every line of `talk`'s first run exactly once,
//! in order and whole, and neither service may have been restarted.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use vupdate_core::log::PLAIN_UNIT;
use vupdate_updater::agent::{Agent, DesiredVersions, Seams};
use vupdate_updater::config::UpdaterConfig;
use vupdate_updater::faults::{FaultUploader, PendingFault};
use vupdate_updater::handover::{self, READY_FILE, ReadyMarker};
use vupdate_updater::images::DirectoryImages;
use vupdate_updater::install::journal::Journal;
use vupdate_updater::logs::{LogSink, LogSource, SpoolReader, SpooledLine};
use vupdate_updater::state::{InstanceState, StateSink};

use crate::support::*;

const WORK_ENV: &str = "VUPDATE_TEST_HANDOVER_WORK";
const FAIL_ENV: &str = "VUPDATE_TEST_FAIL";
const SERVICE_VERSION: &str = "acme-1.0.0";

/// Lines stay in the spool: the test reads them there.
struct KeepInSpool;

impl LogSink for KeepInSpool {
    type Error = String;
    async fn send(&self, _: &LogSource, _: &[SpooledLine]) -> Result<(), String> {
        std::future::pending().await
    }
}

impl FaultUploader for KeepInSpool {
    type Error = String;
    async fn upload(&self, _: &PendingFault) -> Result<(), String> {
        std::future::pending().await
    }
}

impl StateSink for KeepInSpool {
    type Error = String;
    async fn send(&self, _: &[InstanceState]) -> Result<(), String> {
        Ok(())
    }
}

fn read_desired(work: &Path) -> DesiredVersions {
    let Ok(text) = fs::read_to_string(work.join("desired.json")) else {
        return BTreeMap::new();
    };
    let map: BTreeMap<String, String> = serde_json::from_str(&text).expect("desired.json");
    map.into_iter()
        .map(|(service, version)| {
            (
                service.parse().expect("service"),
                version.parse().expect("version"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the updater process that the self-update tests start"]
async fn child_updater() {
    // First, as the updater's main does: this may answer a probe and exit.
    let mut startup = handover::startup();
    if startup.is_handover() {
        match std::env::var(FAIL_ENV).as_deref() {
            Ok("panic") => panic!("a simulated broken updater panics while adopting"),
            Ok("hang") => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
            _ => {}
        }
    }
    let work = PathBuf::from(std::env::var(WORK_ENV).expect("the work directory"));
    let config = UpdaterConfig::load(work.join("updater.yaml")).expect("updater.yaml");
    let seams = Arc::new(Seams {
        images: DirectoryImages::new(work.join("images")),
        logs: KeepInSpool,
        faults: KeepInSpool,
        states: KeepInSpool,
    });
    let (desired, desired_rx) = watch::channel(read_desired(&work));
    let poll_work = work.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = read_desired(&poll_work);
            desired.send_if_modified(|current| {
                let changed = *current != now;
                *current = now;
                changed
            });
        }
    });
    println!(
        "CHILD UP {} handover={}",
        std::process::id(),
        startup.is_handover()
    );
    loop {
        let mut agent = Agent::start_with(
            &config,
            &config.services,
            desired_rx.clone(),
            seams.clone(),
            startup,
        )
        .await
        .expect("the agent starts");
        let stop = work.join("stop");
        let stopped = async {
            while !stop.exists() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            () = stopped => {
                agent.shutdown().await.expect("shutdown");
                println!("CHILD DONE");
                return;
            }
            staged = agent.self_update() => {
                println!("HANDING OVER TO {}", staged.version);
                let failed = agent.hand_over(staged).await;
                println!("HANDOVER FAILED {}", failed.error);
                startup = failed.resume;
            }
        }
    }
}

/// A started child updater: its stdout lines, its stderr in a file.
struct ChildUpdater {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: PathBuf,
}

impl ChildUpdater {
    fn start(work: &Path) -> ChildUpdater {
        let exe = std::env::current_exe().expect("the test binary");
        let stderr = work.join("child.stderr");
        #[allow(clippy::disallowed_methods)] // The test binary itself, not a service.
        let mut child = std::process::Command::new(exe)
            .args(child_args())
            .env(WORK_ENV, work)
            .env_remove(FAIL_ENV)
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the child updater");
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
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the child printed so far, for failure messages.
    fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        format!(
            "stdout:\n{}\nstderr (last lines, newest first):\n{}",
            self.seen.join("\n"),
            tail.join("\n")
        )
    }

    /// Waits for the child to exit after `stop`.
    fn wait_exit(mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "the child ended with {status}:\n{}",
                    self.output()
                );
                return;
            }
            if Instant::now() >= deadline {
                let output = self.output();
                let _ = self.child.kill();
                panic!("the child did not stop:\n{output}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ChildUpdater {
    fn drop(&mut self) {
        // A failed test must not leave an updater (and its services) behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn child_args() -> [&'static str; 5] {
    [
        "--exact",
        "handover::child_updater",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]
}

/// How a `bin/vupdate` of an `updater` image behaves.
#[derive(Debug, Clone, Copy)]
enum NewUpdater {
    /// This test binary again: a working new version.
    Works,
    /// Answers the probe, then panics while adopting.
    Panics,
    /// Answers the probe, then never becomes ready.
    Hangs,
    /// Cannot even answer the probe.
    CannotStart,
}

fn updater_image(images: &Path, version: &str, kind: NewUpdater) {
    let exe = std::env::current_exe().expect("the test binary");
    let exec = |env: &str| format!("#!/bin/sh\n{env}exec '{}' \"$@\"\n", exe.display());
    let script = match kind {
        NewUpdater::Works => exec(""),
        NewUpdater::Panics => exec(&format!("{FAIL_ENV}=panic ")),
        NewUpdater::Hangs => exec(&format!("{FAIL_ENV}=hang ")),
        NewUpdater::CannotStart => "#!/bin/sh\necho 'not an updater' >&2\nexit 3\n".to_owned(),
    };
    write_image(
        images,
        "updater",
        version,
        &json!({}),
        &[(handover::UPDATER_BINARY, &script, 0o755)],
    );
}

/// `talk` numbers its lines `seq <pid> <n> end`, written in two writes with a pause
/// between; every tenth number also goes to stderr as `err <pid> <n>`.
const TALK: &str = "echo $$ >> pids; i=0; while :; do i=$((i+1)); printf 'seq %s %s' $$ $i; sleep 0.005; printf ' end\\n'; if [ $((i % 10)) -eq 0 ]; then echo \"err $$ $i\" >&2; fi; done";

/// A work directory: service images, the updater's images and `updater.yaml`.
fn work_dir(
    updaters: &[(&str, NewUpdater)],
    cgroups: &str,
    ready_window: &str,
) -> tempfile::TempDir {
    let work = tempfile::tempdir().expect("tempdir");
    let images = work.path().join("images");
    for (name, script) in [
        ("talk", TALK),
        ("idle", "echo $$ >> pids; while :; do sleep 1; done"),
    ] {
        write_image(
            &images,
            name,
            SERVICE_VERSION,
            &json!({"runService": {
                "command": "sh", "args": ["-c", script],
                "uploadLogs": true, "stopTimeoutMs": 2000
            }}),
            &[],
        );
    }
    for (version, kind) in updaters {
        updater_image(&images, version, *kind);
    }
    let config = format!(
        "instance: vm-test\ndistributionUrl: http://127.0.0.1:9\naccessToken: t\n\
         workDirectory: {}\nservices: [talk, idle]\nstateInterval: 1s\ncgroups: {cgroups}\n\
         install: {{startWindow: 500ms, commandTimeout: 60s}}\n\
         restart: {{initialDelay: 20ms, maxDelay: 200ms, sampleInterval: 500ms}}\n\
         logs: {{uploadBatchWait: 20ms}}\n\
         selfUpdate: {{readyWindow: {ready_window}, probeTimeout: 30s}}\n",
        work.path().join("services").display()
    );
    fs::write(work.path().join("updater.yaml"), config).expect("updater.yaml");
    work
}

fn set_desired(work: &Path, updater: Option<&str>) {
    let mut desired = json!({"talk": SERVICE_VERSION, "idle": SERVICE_VERSION});
    if let Some(version) = updater {
        desired["updater"] = json!(version);
    }
    let tmp = work.join("desired.json.tmp");
    fs::write(&tmp, desired.to_string()).expect("desired");
    fs::rename(&tmp, work.join("desired.json")).expect("desired");
}

fn service_dir(work: &Path, name: &str) -> PathBuf {
    work.join("services").join(name)
}

fn pids(work: &Path, name: &str) -> Vec<i32> {
    fs::read_to_string(service_dir(work, name).join("current/pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

fn ready_path(work: &Path) -> PathBuf {
    service_dir(work, "updater").join(READY_FILE)
}

fn ready(work: &Path) -> Option<ReadyMarker> {
    serde_json::from_slice(&fs::read(ready_path(work)).ok()?).ok()
}

fn updater_journal(work: &Path) -> Journal {
    Journal::load(&service_dir(work, "updater").join("journal.json")).expect("journal")
}

/// Every line in a spool, read without acknowledging.
fn spool(work: &Path, name: &str) -> Vec<SpooledLine> {
    let mut reader = SpoolReader::open(&service_dir(work, name).join("spool")).expect("spool");
    let mut lines = Vec::new();
    loop {
        let batch = reader.read_batch(10_000).expect("read the spool");
        if batch.is_empty() {
            return lines;
        }
        lines.extend(batch);
    }
}

/// Waits until `talk` has written `more` lines beyond what the spool holds now.
async fn talk_goes_on(work: &Path, more: usize) {
    let before = spool(work, "talk").len();
    wait_for("more lines of talk", || {
        (spool(work, "talk").len() >= before + more).then_some(())
    })
    .await;
}

/// Checks the spool of `talk`: sequence numbers consecutive from 1, and the lines of its
/// run `pid` all there, whole, once, in order, per stream (only the very last stdout line
/// may be cut, by the signal that ended the run; the two streams are read apart, so their
/// lines interleave freely). Returns how many numbered lines the run wrote.
fn check_talk(work: &Path, pid: i32) -> u64 {
    let lines = spool(work, "talk");
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(
            line.seq,
            index as u64 + 1,
            "spool sequence numbers have a gap or repeat"
        );
    }
    let pid_text = pid.to_string();
    let mine: Vec<Vec<&str>> = lines
        .iter()
        .filter(|line| line.process == pid.unsigned_abs() && line.line.unit == PLAIN_UNIT)
        .map(|line| line.line.message.split(' ').collect())
        .collect();
    let stdout: Vec<&Vec<&str>> = mine.iter().filter(|words| words[0] == "seq").collect();
    let stderr: Vec<&Vec<&str>> = mine.iter().filter(|words| words[0] == "err").collect();
    assert_eq!(
        stdout.len() + stderr.len(),
        mine.len(),
        "lines of talk were cut or mixed: {:?}",
        mine.iter()
            .filter(|words| !matches!(words[0], "seq" | "err"))
            .collect::<Vec<_>>()
    );
    for (index, words) in stdout.iter().enumerate() {
        let last = index == stdout.len() - 1;
        match words.as_slice() {
            ["seq", owner, n, "end"] if *owner == pid_text => {
                assert_eq!(
                    n.parse::<u64>().ok(),
                    Some(index as u64 + 1),
                    "stdout {words:?}"
                );
            }
            ["seq", owner, n] if last && *owner == pid_text => {
                assert_eq!(
                    n.parse::<u64>().ok(),
                    Some(index as u64 + 1),
                    "stdout {words:?}"
                );
            }
            _ => panic!("a stdout line of talk was cut or mixed: {words:?} (line {index})"),
        }
    }
    for (index, words) in stderr.iter().enumerate() {
        let expected = (index as u64 + 1) * 10;
        match words.as_slice() {
            ["err", owner, n] if *owner == pid_text => {
                assert_eq!(n.parse::<u64>().ok(), Some(expected), "stderr {words:?}");
            }
            _ => panic!("a stderr line of talk was cut or mixed: {words:?} (line {index})"),
        }
    }
    let written = stdout.len() as u64;
    assert!(
        stderr.len() as u64 >= (written / 10).saturating_sub(1),
        "stderr lines are missing"
    );
    written
}

/// Makes `updater` desired at `version` and waits for the ready marker of the process
/// that takes over.
async fn update_to(work: &Path, child: &mut ChildUpdater, version: &str) -> ReadyMarker {
    let _ = fs::remove_file(ready_path(work));
    set_desired(work, Some(version));
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(marker) = ready(work) {
            return marker;
        }
        if Instant::now() >= deadline {
            panic!("no handover to {version}:\n{}", child.output());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the updater's journal has no install under way and `check` holds.
async fn journal_settles(work: &Path, what: &str, check: impl Fn(&Journal) -> bool) -> Journal {
    wait_for(what, || {
        let journal = updater_journal(work);
        (journal.task.is_none() && check(&journal)).then_some(journal)
    })
    .await
}

fn version_of(journal: &Journal) -> Option<String> {
    journal.current.as_ref().map(|c| c.version.to_string())
}

fn failed_of(journal: &Journal) -> Option<String> {
    journal.failed.as_ref().map(|f| f.version.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_update_keeps_the_services_and_every_line_of_theirs() {
    const U1: &str = "vupdate-1.0.0";
    const U2: &str = "vupdate-2.0.0";
    let work = work_dir(
        &[(U1, NewUpdater::Works), (U2, NewUpdater::Works)],
        "auto",
        "60s",
    );
    let work = work.path();
    set_desired(work, None);
    let mut child = ChildUpdater::start(work);
    let (talk, idle) = wait_for("both services to run", || {
        match (pids(work, "talk").as_slice(), pids(work, "idle").as_slice()) {
            ([talk], [idle]) => Some((*talk, *idle)),
            _ => None,
        }
    })
    .await;
    talk_goes_on(work, 20).await;
    // From the test binary (a bootstrap, no version) to U1, then from U1 to U2.
    for (version, from) in [(U1, None), (U2, Some(U1))] {
        let marker = update_to(work, &mut child, version).await;
        assert_eq!(marker.pid, child.pid(), "the updater keeps its pid");
        assert_eq!(
            marker.version.as_ref().map(ToString::to_string).as_deref(),
            Some(version)
        );
        assert!(!marker.fallback, "{marker:?}\n{}", child.output());
        assert_eq!(marker.adopted, ["talk", "idle"]);
        let journal = journal_settles(work, &format!("{version} committed"), |journal| {
            version_of(journal).as_deref() == Some(version)
        })
        .await;
        assert_eq!(
            journal.previous.map(|p| p.version.to_string()).as_deref(),
            from
        );
        talk_goes_on(work, 20).await;
        assert_eq!(pids(work, "talk"), [talk], "talk was restarted");
        assert_eq!(pids(work, "idle"), [idle], "idle was restarted");
        assert!(is_running(talk) && is_running(idle));
    }
    // The adopted supervisor still waits for its child: a kill -9 is seen and restarted.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(talk),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 talk");
    let restarted = wait_for("talk to be restarted", || {
        match pids(work, "talk").as_slice() {
            [_, restarted] => Some(*restarted),
            _ => None,
        }
    })
    .await;
    assert_ne!(restarted, talk);
    wait_for("the exit noted in the log", || {
        spool(work, "talk")
            .iter()
            .any(|line| line.line.message == format!("process {talk} ended unexpectedly: signal 9"))
            .then_some(())
    })
    .await;
    fs::write(work.join("stop"), "").expect("stop");
    tokio::task::spawn_blocking(move || child.wait_exit())
        .await
        .expect("join");
    let written = check_talk(work, talk);
    println!("talk wrote {written} numbered lines across two handovers, all in the spool once");
    assert!(written >= 60, "{written}");
    assert!(marked(&service_dir(work, "talk").display().to_string()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_updater_that_fails_hands_back_to_the_previous_one() {
    const U1: &str = "vupdate-1.0.0";
    const CANNOT_START: &str = "vupdate-2.0.0";
    const PANICS: &str = "vupdate-3.0.0";
    const HANGS: &str = "vupdate-4.0.0";
    let work = work_dir(
        &[
            (U1, NewUpdater::Works),
            (CANNOT_START, NewUpdater::CannotStart),
            (PANICS, NewUpdater::Panics),
            (HANGS, NewUpdater::Hangs),
        ],
        "off",
        "15s",
    );
    let work = work.path();
    set_desired(work, None);
    let mut child = ChildUpdater::start(work);
    let (talk, idle) = wait_for("both services to run", || {
        match (pids(work, "talk").as_slice(), pids(work, "idle").as_slice()) {
            ([talk], [idle]) => Some((*talk, *idle)),
            _ => None,
        }
    })
    .await;
    let marker = update_to(work, &mut child, U1).await;
    assert!(!marker.fallback, "{marker:?}\n{}", child.output());
    journal_settles(work, "U1 committed", |j| {
        version_of(j).as_deref() == Some(U1)
    })
    .await;

    // A binary that cannot answer the probe is never executed: no handover at all.
    let _ = fs::remove_file(ready_path(work));
    set_desired(work, Some(CANNOT_START));
    let journal = journal_settles(work, "the unstartable version rolled back", |j| {
        failed_of(j).as_deref() == Some(CANNOT_START)
    })
    .await;
    assert_eq!(version_of(&journal).as_deref(), Some(U1));
    let error = journal.update_error.expect("an update error").error;
    assert!(
        error.contains("cannot run on this machine") && error.contains("exit"),
        "{error}"
    );
    assert!(ready(work).is_none(), "it was executed anyway");
    talk_goes_on(work, 10).await;

    // Binaries that fail after the execve: the previous one takes over again.
    for (version, why) in [(PANICS, "panicked"), (HANGS, "not ready within")] {
        let marker = update_to(work, &mut child, version).await;
        assert_eq!(marker.pid, child.pid(), "the updater keeps its pid");
        assert!(marker.fallback, "{marker:?}");
        assert_eq!(
            marker.version.as_ref().map(ToString::to_string).as_deref(),
            Some(U1)
        );
        let failure = marker.failure.clone().unwrap_or_default();
        assert!(failure.contains(why), "{failure}");
        assert_eq!(marker.adopted, ["talk", "idle"]);
        let journal = journal_settles(work, &format!("{version} rolled back"), |j| {
            failed_of(j).as_deref() == Some(version)
        })
        .await;
        assert_eq!(version_of(&journal).as_deref(), Some(U1));
        let error = journal.update_error.expect("an update error").error;
        assert!(
            error.contains("did not take over")
                && error.contains(why)
                && error.contains("rolling back"),
            "{error}"
        );
        talk_goes_on(work, 10).await;
        assert_eq!(pids(work, "talk"), [talk], "talk was restarted");
        assert_eq!(pids(work, "idle"), [idle], "idle was restarted");
    }
    fs::write(work.join("stop"), "").expect("stop");
    tokio::task::spawn_blocking(move || child.wait_exit())
        .await
        .expect("join");
    let written = check_talk(work, talk);
    println!("talk wrote {written} numbered lines across three handovers, all in the spool once");
}
