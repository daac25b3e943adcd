//! Supervision with real processes: a crash's fault report, restart backoff and the crash
//! loop flag, the memory and CPU restart conditions, and a stop that leaves no process of
//! the tree behind (a `setsid` grandchild that ignores SIGTERM included), with a cgroup
//! where the machine gives one and with the fallback.

use std::fs::File;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use vupdate_core::update::{MaxCpu, RestartConditions};
use vupdate_updater::faults::{FaultInfo, FaultReason, FaultReports, INFO_ENTRY, TAIL_ENTRY};
use vupdate_updater::supervisor::{
    CgroupMode, Condition, RestartPolicy, RunState, ServiceEvent, Supervisor, SupervisorOptions,
};

use crate::support::*;

/// Makes SIGINT and SIGQUIT handled in this test process, as the updater's program does
/// (`stop_signal` in the CLI): a test runner started with `&` from a script inherits them
/// ignored, and the services would inherit that (a shell cannot even trap them).
fn handle_stop_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::interrupt(), SignalKind::quit()] {
        // The handler stays installed once registered; the stream itself is not needed.
        drop(signal(kind).expect("a signal handler"));
    }
}

fn options(cgroups: CgroupMode) -> SupervisorOptions {
    handle_stop_signals();
    SupervisorOptions {
        restart: RestartPolicy {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            stable_after: Duration::from_secs(30),
            crash_loop_after: 3,
        },
        cgroups,
        sample_interval: Duration::from_millis(200),
        output_grace: Duration::from_secs(5),
    }
}

fn zip_entry(path: &std::path::Path, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(File::open(path).expect("open report")).expect("zip");
    let mut text = String::new();
    archive
        .by_name(name)
        .expect("entry")
        .read_to_string(&mut text)
        .expect("read entry");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_writes_a_fault_report_with_the_log_tail() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut run = sh("echo '2026-01-02 03:04:05.678 ERROR db connection lost'; \
         echo 'panic: plain text'; echo oops >&2; echo dump > core; exit 3");
    run.restart_on_fault = false;
    let (dir, spec) = spec(work.path(), "crashy", run);
    let faults = Arc::new(FaultReports::open(&dir.faults(), u64::MAX).expect("faults"));
    let (handle, mut events) = Supervisor::start(
        spec,
        pipeline(),
        Some(faults.clone()),
        options(CgroupMode::Off),
    );
    let path = next_event(&mut events, "the fault report", |event| match event {
        ServiceEvent::FaultReport { path } => Some(path.clone()),
        _ => None,
    })
    .await;
    assert!(path.starts_with(dir.faults()), "{}", path.display());
    let tail = zip_entry(&path, TAIL_ENTRY);
    assert!(
        tail.contains("2026-01-02 03:04:05.678 ERROR db connection lost"),
        "{tail}"
    );
    assert!(tail.contains("INFO PLAIN panic: plain text"), "{tail}");
    assert!(tail.contains("INFO PLAIN oops"), "{tail}");
    assert!(tail.contains("ended unexpectedly: exit code 3"), "{tail}");
    let info: FaultInfo = serde_json::from_str(&zip_entry(&path, INFO_ENTRY)).expect("fault.json");
    assert_eq!(
        (info.exit_code, info.reason),
        (Some(3), FaultReason::Exited)
    );
    assert_eq!(info.service, "crashy");
    assert_eq!(info.state.last_exit_code, Some(3));
    assert_eq!(info.state.failures_count, Some(1));
    assert_eq!(
        info.files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["files/core"]
    );
    assert_eq!(zip_entry(&path, "files/core"), "dump\n");
    let mut status = handle.status();
    let status = status
        .wait_for(|status| status.state == RunState::Exited)
        .await
        .expect("status")
        .clone();
    assert_eq!((status.failures_total, status.starts), (1, 1));
    assert_eq!(faults.pending().expect("pending").len(), 1);
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_keeps_failing_backs_off_and_is_flagged_a_crash_loop() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_dir, spec) = spec(work.path(), "flappy", sh("exit 1"));
    let (handle, mut events) = Supervisor::start(spec, pipeline(), None, options(CgroupMode::Off));
    let mut delays = Vec::new();
    while delays.len() < 4 {
        delays.push(
            next_event(&mut events, "a scheduled restart", |event| match event {
                ServiceEvent::RestartScheduled { delay, .. } => Some(delay.as_millis()),
                _ => None,
            })
            .await,
        );
    }
    // `exit 1` ends within its delay, so each start waits what is left of it.
    assert_eq!(delays, [50, 100, 200, 400]);
    let status = handle.status().borrow().clone();
    assert!(status.crash_loop, "{status:?}");
    assert!(
        status.failures_total >= 4 && status.starts >= 4,
        "{status:?}"
    );
    let last = handle.stop().await;
    assert_eq!(last.state, RunState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_outlived_its_restart_delay_restarts_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_dir, spec) = spec(work.path(), "steady", sh("exec sleep 600"));
    let mut options = options(CgroupMode::Off);
    options.restart.initial_delay = Duration::from_millis(300);
    let (handle, mut events) = Supervisor::start(spec, pipeline(), None, options);
    let first = next_event(&mut events, "the first start", |event| match event {
        ServiceEvent::Started { pid } => Some(*pid),
        _ => None,
    })
    .await;
    // The run must outlive the delay for the start after it to be due at once.
    tokio::time::sleep(Duration::from_millis(400)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(first).expect("pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
    let (delay, wait) = next_event(&mut events, "a scheduled restart", |event| match event {
        ServiceEvent::RestartScheduled { delay, wait, .. } => Some((*delay, *wait)),
        _ => None,
    })
    .await;
    assert_eq!((delay, wait), (Duration::from_millis(300), Duration::ZERO));
    let second = next_event(&mut events, "the restart", |event| match event {
        ServiceEvent::Started { pid } => Some(*pid),
        _ => None,
    })
    .await;
    assert_ne!(first, second);
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_hog_is_restarted_by_its_condition() {
    let work = tempfile::tempdir().expect("tempdir");
    // The shell keeps 60 MB in a variable, then idles.
    let mut run = sh(
        "x=$(head -c 60000000 /dev/zero | tr '\\0' a); echo allocated; \
         while :; do sleep 1; done",
    );
    run.restart_on_fault = false; // a condition restarts anyway
    run.restart_conditions = Some(RestartConditions {
        max_memory_mb: Some(50),
        max_cpu: None,
        make_core: false,
        check_timeout_ms: 100,
    });
    let (dir, spec) = spec(work.path(), "hog", run);
    let faults = Arc::new(FaultReports::open(&dir.faults(), u64::MAX).expect("faults"));
    let (handle, mut events) =
        Supervisor::start(spec, pipeline(), Some(faults), options(CgroupMode::Off));
    let condition = next_event(&mut events, "the memory condition", |event| match event {
        ServiceEvent::ConditionExceeded { condition } => Some(condition.clone()),
        _ => None,
    })
    .await;
    match condition {
        Condition::Memory { bytes, limit_bytes } => {
            assert_eq!(limit_bytes, 50 * 1024 * 1024);
            assert!(bytes > limit_bytes);
        }
        other => panic!("expected the memory condition, got {other:?}"),
    }
    let path = next_event(&mut events, "the fault report", |event| match event {
        ServiceEvent::FaultReport { path } => Some(path.clone()),
        _ => None,
    })
    .await;
    let info: FaultInfo = serde_json::from_str(&zip_entry(&path, INFO_ENTRY)).expect("fault.json");
    assert!(
        matches!(info.reason, FaultReason::Condition(ref text) if text.contains("maxMemoryMB 50"))
    );
    next_event(&mut events, "the restart", |event| {
        matches!(event, ServiceEvent::Started { .. }).then_some(())
    })
    .await;
    let status = handle.stop().await;
    assert!(
        status.starts >= 2 && status.failures_total >= 1,
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_hog_is_restarted_by_its_condition_with_sigquit_for_a_core() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut run = sh("echo spinning; while :; do :; done");
    // Writing the core can take seconds on a busy disk; SIGKILL must not cut it.
    run.stop_timeout_ms = 20_000;
    // Low enough to pass on a loaded 2-core machine, where the hog gets less than a core.
    run.restart_conditions = Some(RestartConditions {
        max_memory_mb: None,
        max_cpu: Some(MaxCpu {
            percents: 20,
            duration_sec: 1,
        }),
        make_core: true,
        check_timeout_ms: 200,
    });
    let (_dir, spec) = spec(work.path(), "spinner", run);
    let (handle, mut events) = Supervisor::start(spec, pipeline(), None, options(CgroupMode::Off));
    let condition = next_event(&mut events, "the CPU condition", |event| match event {
        ServiceEvent::ConditionExceeded { condition } => Some(condition.clone()),
        _ => None,
    })
    .await;
    match condition {
        Condition::Cpu {
            percents,
            limit_percents,
            duration_ms,
        } => {
            assert_eq!(limit_percents, 20);
            assert!(
                percents > 20 && duration_ms >= 1000,
                "{percents} {duration_ms}"
            );
        }
        other => panic!("expected the CPU condition, got {other:?}"),
    }
    let exit = next_event(&mut events, "the exit", |event| match event {
        ServiceEvent::Exited { exit, fault } => Some((*exit, *fault)),
        _ => None,
    })
    .await;
    // SIGQUIT (3) ends a shell that does not trap it.
    assert_eq!((exit.0.signal, exit.1), (Some(3), true));
    next_event(&mut events, "the restart", |event| {
        matches!(event, ServiceEvent::Started { .. }).then_some(())
    })
    .await;
    handle.stop().await;
}

/// A leader that starts a child ignoring TERM and a `setsid` double-forked grandchild
/// ignoring TERM, then idles.
const ESCAPING_TREE: &str = "\
sh -c 'trap \"\" TERM; while :; do sleep 1; done' &
( setsid sh -c 'trap \"\" TERM; echo $$ > grandchild.pid; while :; do sleep 1; done' & )
while :; do sleep 1; done";

async fn stop_leaves_nothing(cgroups: CgroupMode, name: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let (dir, spec) = spec(work.path(), name, sh(ESCAPING_TREE));
    let owner = dir.run_owner();
    let (handle, mut events) = Supervisor::start(spec, pipeline(), None, options(cgroups));
    let leader = next_event(&mut events, "the start", |event| match event {
        ServiceEvent::Started { pid } => Some(i32::try_from(*pid).expect("pid")),
        _ => None,
    })
    .await;
    let pid_file = dir.current().join("grandchild.pid");
    let grandchild = wait_for("the grandchild's pid", || read_pid(&pid_file)).await;
    // It left the service's session and group: only the marker, the subreaper or the
    // cgroup can find it.
    assert_ne!(session_of(grandchild), Some(leader));
    wait_for("the whole tree to run", || {
        (marked(&owner).len() >= 4).then_some(())
    })
    .await;
    let cgroup = handle.status().borrow().cgroup.clone();
    match (&cgroup, cgroups) {
        (Some(path), CgroupMode::Auto) => {
            // Where the machine gives a cgroup, the escaped grandchild is in it.
            let procs = std::fs::read_to_string(path.join("cgroup.procs")).expect("cgroup.procs");
            assert!(
                procs.lines().any(|line| line == grandchild.to_string()),
                "{procs}"
            );
            println!("cgroup used: {}", path.display());
        }
        (None, CgroupMode::Auto) => println!("no cgroup on this machine: fallback used"),
        (Some(path), CgroupMode::Off) => {
            panic!("a cgroup was made with cgroups off: {}", path.display())
        }
        (None, CgroupMode::Off) => {}
    }
    let status = handle.stop().await;
    assert_eq!(status.state, RunState::Stopped);
    assert!(
        !is_running(grandchild),
        "the setsid grandchild survived the stop"
    );
    assert!(!is_running(leader), "the leader survived the stop");
    assert_eq!(
        marked(&owner),
        Vec::<i32>::new(),
        "processes survived the stop"
    );
    if let Some(path) = cgroup {
        assert!(!path.exists(), "the cgroup is removed after the stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_kills_a_setsid_grandchild_that_ignores_sigterm_without_a_cgroup() {
    stop_leaves_nothing(CgroupMode::Off, "escaper").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_kills_a_setsid_grandchild_that_ignores_sigterm_with_a_cgroup_where_there_is_one() {
    stop_leaves_nothing(CgroupMode::Auto, "escaper-cg").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_stops_cleanly_is_not_a_fault() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut run = sh("trap 'echo bye; exit 0' INT; echo up; while :; do sleep 0.1; done");
    run.stop_signal = "INT".parse().expect("signal");
    run.stop_timeout_ms = 20_000;
    let (dir, spec) = spec(work.path(), "polite", run);
    let faults = Arc::new(FaultReports::open(&dir.faults(), u64::MAX).expect("faults"));
    let lines = pipeline();
    let (handle, mut events) = Supervisor::start(
        spec,
        lines.clone(),
        Some(faults.clone()),
        options(CgroupMode::Off),
    );
    next_event(&mut events, "the start", |event| {
        matches!(event, ServiceEvent::Started { .. }).then_some(())
    })
    .await;
    wait_for("the service's first line", || {
        lines
            .tail()
            .iter()
            .any(|line| line.ends_with(" up"))
            .then_some(())
    })
    .await;
    let status = handle.stop().await;
    let exit = status.last_exit.expect("an exit");
    assert_eq!(
        exit.code,
        Some(0),
        "it ended by its own INT handler, not by SIGKILL"
    );
    assert_eq!(status.failures_total, 0);
    assert!(faults.pending().expect("pending").is_empty());
    assert!(lines.tail().iter().any(|line| line.ends_with(" bye")));
}

#[test]
fn a_runtime_shutdown_mid_run_still_kills_the_whole_tree() {
    let work = tempfile::tempdir().expect("tempdir");
    let (dir, spec) = spec(work.path(), "abandoned", sh(ESCAPING_TREE));
    let owner = dir.run_owner();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // The handle is kept, so only the runtime's end stops the supervisor.
        let (handle, _events) = Supervisor::start(spec, pipeline(), None, options(CgroupMode::Off));
        wait_for("the whole tree to run", || {
            (marked(&owner).len() >= 4).then_some(())
        })
        .await;
        std::mem::forget(handle);
    });
    drop(runtime);
    let deadline = std::time::Instant::now() + DEADLINE;
    while !marked(&owner).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "survivors: {:?}",
            marked(&owner)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
