//! Installs with real images, commands and processes: a first install and an upgrade
//! (commands, macros, log history, `previous/`), an install whose commands fail (the old
//! version never stops), a version that fails its start window (rolled back, remembered
//! as failed across a restart), a revert to the version in `previous/`, and following the
//! desired version through `run` (one whose image is not there yet included).

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_updater::images::{CopyError, DirectoryImages, ImageSource};
use vupdate_updater::layout::VERSION_FILE;
use vupdate_updater::runner::{InstallOutcome, RunnerOptions, ServiceRunner};
use vupdate_updater::state::ServiceState;
use vupdate_updater::supervisor::{CgroupMode, RestartPolicy, SupervisorOptions};

use crate::support::*;

pub const V1: &str = "acme-1.0.0";
pub const V2: &str = "acme-2.0.0";

/// Options with a short start window and fast restarts, for tests.
pub fn options() -> RunnerOptions {
    RunnerOptions {
        start_window: Duration::from_millis(500),
        start_attempts: 3,
        command_timeout: Duration::from_secs(60),
        leftover_grace: Duration::from_secs(2),
        supervisor: SupervisorOptions {
            restart: RestartPolicy {
                initial_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                stable_after: Duration::from_secs(30),
                crash_loop_after: 3,
            },
            cgroups: CgroupMode::Off,
            sample_interval: Duration::from_millis(500),
            output_grace: Duration::from_secs(5),
        },
        fetch_retry: Duration::from_millis(100),
        ..RunnerOptions::default()
    }
}

/// `install.json` of a well-behaved version: an install command, a post-install command,
/// and a service that says which version it is, then idles, writing rotating logs.
/// `commands_wait` and `post_wait` are shell snippets run inside each command.
pub fn good_install(commands_wait: &str, post_wait: &str) -> serde_json::Value {
    json!({
        "installCommands": [{
            "command": "sh",
            "args": ["-c", format!("touch commands-running-%%version%%; {commands_wait} echo installed %%version%% > installed.txt")],
            "exitCode": 0
        }],
        "postInstallCommands": [{
            "command": "sh",
            "args": ["-c", format!("touch post-running-%%version%%; {post_wait} echo post %%version%% >> post.txt")]
        }],
        "runService": {
            "command": "sh",
            "args": ["-c", "echo running %%version%%; while :; do sleep 1; done"],
            "writeLogs": {"directory": "logs", "filePrefix": "svc", "maxFileSizeMB": 1, "maxFilesCount": 3},
            "uploadLogs": true,
            "stopTimeoutMs": 2000
        }
    })
}

/// The installed V1, then the outcome of installing V2 over it, in `runner`.
pub async fn v1_then_v2(runner: &mut ServiceRunner, images: &DirectoryImages) -> InstallOutcome {
    runner
        .install(&V1.parse().expect("v1"), images)
        .await
        .expect("install v1");
    runner
        .install(&V2.parse().expect("v2"), images)
        .await
        .expect("install v2")
}

/// Images V1 (always [`good_install`] without waits) and V2 (`v2`) of service `svc` in
/// `<work>/images`.
pub fn images(work: &Path, v2: &serde_json::Value) -> DirectoryImages {
    let root = work.join("images");
    write_image(
        &root,
        "svc",
        V1,
        &good_install("", ""),
        &[("bin/tool.sh", "#!/bin/sh\necho tool\n", 0o755)],
    );
    write_image(&root, "svc", V2, v2, &[]);
    DirectoryImages::new(root)
}

fn version_file(path: &Path) -> Option<String> {
    fs::read_to_string(path.join(VERSION_FILE)).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_then_an_upgrade_keep_the_old_version_and_its_logs() {
    let work = tempfile::tempdir().expect("tempdir");
    let images = images(work.path(), &good_install("", ""));
    let services = work.path().join("services");
    let mut runner = ServiceRunner::open(&services, instance("svc"), options())
        .await
        .expect("open");
    let owner = runner.dir().run_owner();
    let dir = runner.dir().clone();

    let outcome = runner
        .install(&V1.parse().expect("v1"), &images)
        .await
        .expect("install v1");
    assert_eq!(outcome, InstallOutcome::Installed);
    assert_eq!(version_file(&dir.current()).as_deref(), Some(V1));
    assert_eq!(
        fs::read_to_string(dir.current().join("installed.txt")).expect("installed.txt"),
        "installed acme-1.0.0\n"
    );
    assert_eq!(
        fs::read_to_string(dir.current().join("post.txt")).expect("post.txt"),
        "post acme-1.0.0\n"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(dir.current().join("bin/tool.sh"))
            .expect("tool")
            .permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "the executable bit is kept");
    wait_for("v1 to run", || {
        (running_versions(&owner, &[V1, V2]) == [V1]).then_some(())
    })
    .await;
    let state = runner.state().borrow().clone();
    assert_eq!(state.version.map(|v| v.to_string()).as_deref(), Some(V1));
    assert!(state.install_time.is_some() && state.update_to_version.is_none());
    wait_for("v1's log file", || {
        fs::read_to_string(dir.current().join("logs/svc.log"))
            .ok()
            .filter(|text| text.contains("INFO PLAIN running acme-1.0.0"))
    })
    .await;

    let outcome = runner
        .install(&V2.parse().expect("v2"), &images)
        .await
        .expect("install v2");
    assert_eq!(outcome, InstallOutcome::Installed);
    assert_eq!(version_file(&dir.current()).as_deref(), Some(V2));
    assert_eq!(version_file(&dir.previous()).as_deref(), Some(V1));
    assert!(!dir.new_dir().exists() && !dir.partial().exists());
    wait_for("only v2 to run", || {
        (running_versions(&owner, &[V1, V2]) == [V2]).then_some(())
    })
    .await;
    // v1's logs went to log.history/, whole.
    let history: Vec<_> = fs::read_dir(dir.log_history())
        .expect("log.history")
        .flatten()
        .collect();
    assert_eq!(history.len(), 1);
    let name = history[0].file_name().to_string_lossy().into_owned();
    assert!(
        name.starts_with("acme-1.0.0-") && !name.ends_with("-failed"),
        "{name}"
    );
    let old_log = fs::read_to_string(history[0].path().join("svc.log")).expect("old log");
    assert!(old_log.contains("running acme-1.0.0"), "{old_log}");
    assert!(!old_log.contains("running acme-2.0.0"), "{old_log}");
    // The image is gone once installed.
    assert_eq!(fs::read_dir(dir.images()).expect("images").count(), 0);
    let journal = runner.journal().clone();
    assert_eq!(
        journal.previous.map(|p| p.version.to_string()).as_deref(),
        Some(V1)
    );
    assert!(journal.task.is_none() && journal.failed.is_none());
    runner.stop().await;
    assert!(marked(&owner).is_empty());
}

/// A revert to the version kept in `previous/` (`git revert` of an upgrade) swaps that
/// directory back as it is: no image, no unpack, no install commands; its post-install
/// commands and start window run as for any install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_to_the_previous_version_swaps_it_back_without_its_image() {
    let work = tempfile::tempdir().expect("tempdir");
    let counted = good_install("echo %%version%% >> ../installs.txt;", "");
    let root = work.path().join("images");
    write_image(&root, "svc", V1, &counted, &[]);
    write_image(&root, "svc", V2, &counted, &[]);
    let images = DirectoryImages::new(&root);
    let mut runner = ServiceRunner::open(&work.path().join("services"), instance("svc"), options())
        .await
        .expect("open");
    let owner = runner.dir().run_owner();
    let dir = runner.dir().clone();
    assert_eq!(
        v1_then_v2(&mut runner, &images).await,
        InstallOutcome::Installed
    );
    fs::remove_dir_all(&root).expect("no image of either version left");

    let outcome = runner
        .install(&V1.parse().expect("v1"), &images)
        .await
        .expect("revert to v1");
    assert_eq!(outcome, InstallOutcome::Installed);
    assert_eq!(version_file(&dir.current()).as_deref(), Some(V1));
    assert_eq!(version_file(&dir.previous()).as_deref(), Some(V2));
    let installs = fs::read_to_string(dir.root().join("installs.txt")).expect("installs.txt");
    assert_eq!(
        installs, "acme-1.0.0\nacme-2.0.0\n",
        "v1's install commands ran once"
    );
    assert_eq!(
        fs::read_to_string(dir.current().join("post.txt")).expect("post.txt"),
        "post acme-1.0.0\npost acme-1.0.0\n"
    );
    wait_for("only v1 to run", || {
        (running_versions(&owner, &[V1, V2]) == [V1]).then_some(())
    })
    .await;
    let journal = runner.journal().clone();
    assert_eq!(
        journal.previous.map(|p| p.version.to_string()).as_deref(),
        Some(V2)
    );
    assert!(journal.task.is_none() && journal.failed.is_none());
    assert_eq!(
        fs::read_dir(dir.log_history())
            .expect("log.history")
            .count(),
        2
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_install_commands_leave_the_old_version_running_untouched() {
    let work = tempfile::tempdir().expect("tempdir");
    let bad = json!({
        "installCommands": [{"command": "sh", "args": ["-c", "echo broken >&2; exit 7"], "exitCode": 0}],
        "runService": {"command": "sh", "args": ["-c", "echo running %%version%%; while :; do sleep 1; done"]}
    });
    let images = images(work.path(), &bad);
    let mut runner = ServiceRunner::open(&work.path().join("services"), instance("svc"), options())
        .await
        .expect("open");
    let owner = runner.dir().run_owner();
    runner
        .install(&V1.parse().expect("v1"), &images)
        .await
        .expect("install v1");
    let pid_before = wait_for("v1 to run", || runner.supervisor_status()?.borrow().pid).await;
    let outcome = runner
        .install(&V2.parse().expect("v2"), &images)
        .await
        .expect("install v2");
    match outcome {
        InstallOutcome::Aborted { error } => {
            assert!(
                error.contains("installCommands[0]") && error.contains("exit status: 7"),
                "{error}"
            )
        }
        other => panic!("expected an aborted install, got {other:?}"),
    }
    let pid_after = runner
        .supervisor_status()
        .and_then(|status| status.borrow().pid);
    assert_eq!(
        pid_after,
        Some(pid_before),
        "the old version was never stopped"
    );
    assert_eq!(running_versions(&owner, &[V1, V2]), [V1]);
    assert!(!runner.dir().new_dir().exists());
    assert!(
        runner
            .pipeline()
            .tail()
            .iter()
            .any(|line| line.ends_with("INFO PLAIN broken"))
    );
    // The failed version is not tried again while it is the one asked for.
    let again = runner
        .install(&V2.parse().expect("v2"), &images)
        .await
        .expect("again");
    assert_eq!(again, InstallOutcome::Skipped);
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_fails_its_start_window_is_rolled_back_and_remembered() {
    let work = tempfile::tempdir().expect("tempdir");
    let crashing = json!({
        "runService": {"command": "sh", "args": ["-c", "echo running %%version%%; exit 1"]}
    });
    let images = images(work.path(), &crashing);
    let services = work.path().join("services");
    let mut runner = ServiceRunner::open(&services, instance("svc"), options())
        .await
        .expect("open");
    let owner = runner.dir().run_owner();
    let dir = runner.dir().clone();
    match v1_then_v2(&mut runner, &images).await {
        InstallOutcome::RolledBack { error } => {
            assert!(
                error.contains("acme-2.0.0 failed") && error.contains("3 times"),
                "{error}"
            )
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(version_file(&dir.current()).as_deref(), Some(V1));
    assert!(!dir.previous().exists());
    wait_for("v1 to run again", || {
        (running_versions(&owner, &[V1, V2]) == [V1]).then_some(())
    })
    .await;
    let state = runner.state().borrow().clone();
    assert_eq!(
        state.version.as_ref().map(|v| v.to_string()).as_deref(),
        Some(V1)
    );
    assert!(
        state
            .update_error
            .as_ref()
            .is_some_and(|error| error.critical),
        "{state:?}"
    );
    let failed_history = fs::read_dir(dir.log_history())
        .expect("log.history")
        .flatten()
        .any(|entry| entry.file_name().to_string_lossy().ends_with("-failed"));
    assert!(
        !failed_history,
        "the failed version wrote no log files, so none moved"
    );
    runner.stop().await;
    drop(runner);

    // The failure survives a restart of the updater.
    let mut runner = ServiceRunner::open(&services, instance("svc"), options())
        .await
        .expect("reopen");
    runner.recover().await.expect("recover");
    assert_eq!(
        runner
            .install(&V2.parse().expect("v2"), &images)
            .await
            .expect("again"),
        InstallOutcome::Skipped
    );
    wait_for("v1 to run after the restart", || {
        (running_versions(&owner, &[V1, V2]) == [V1]).then_some(())
    })
    .await;
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_follows_the_desired_version_and_stops_at_shutdown() {
    let work = tempfile::tempdir().expect("tempdir");
    let images = images(work.path(), &good_install("", ""));
    let runner = ServiceRunner::open(&work.path().join("services"), instance("svc"), options())
        .await
        .expect("open");
    let owner = runner.dir().run_owner();
    let state = runner.state();
    let (desired, desired_rx) = watch::channel(None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runner
            .run(desired_rx, &images, async {
                let _ = stopped.await;
            })
            .await
    });
    for version in [V1, V2] {
        desired.send_replace(Some(version.parse().expect("version")));
        let mut state = state.clone();
        tokio::time::timeout(
            DEADLINE,
            state.wait_for(|state| {
                state.version.as_ref().map(ToString::to_string).as_deref() == Some(version)
                    && state.update_to_version.is_none()
            }),
        )
        .await
        .expect("installed in time")
        .expect("state");
        wait_for("the version to run", || {
            (running_versions(&owner, &[V1, V2]) == [version]).then_some(())
        })
        .await;
    }
    let _ = stop.send(());
    task.await.expect("join").expect("run");
    assert!(marked(&owner).is_empty(), "nothing runs after shutdown");
}

/// A runner following a desired version (V1 at first), as a task.
struct Follower {
    owner: String,
    state: watch::Receiver<ServiceState>,
    desired: watch::Sender<Option<ClientVersion>>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), vupdate_updater::Error>>,
}

impl Follower {
    /// Runs a runner in `work` over `images` with `options`, desiring V1.
    async fn start<I: ImageSource + 'static>(
        work: &Path,
        images: I,
        options: RunnerOptions,
    ) -> Follower {
        let runner = ServiceRunner::open(&work.join("services"), instance("svc"), options)
            .await
            .expect("open");
        let (owner, state) = (runner.dir().run_owner(), runner.state());
        let (desired, desired_rx) = watch::channel(Some(V1.parse().expect("version")));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            runner
                .run(desired_rx, &images, async {
                    let _ = stopped.await;
                })
                .await
        });
        Follower {
            owner,
            state,
            desired,
            stop,
            task,
        }
    }

    /// [`Follower::start`] with a start window of an hour.
    async fn patient(work: &Path, images: DirectoryImages) -> Follower {
        let mut patient = options();
        patient.start_window = Duration::from_secs(3600);
        Follower::start(work, images, patient).await
    }

    fn desire(&self, version: &str) {
        self.desired
            .send_replace(Some(version.parse().expect("version")));
    }

    /// Waits, naming `what`, until exactly `version` of V1 and V2 runs.
    async fn wait_running(&self, what: &str, version: &str) {
        wait_for(what, || {
            (running_versions(&self.owner, &[V1, V2]) == [version]).then_some(())
        })
        .await;
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("join").expect("run");
    }
}

/// A revert pushed while the new version is still in its start window is installed at
/// once: the window (an hour here) would otherwise hold the rollback back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_desired_version_ends_the_start_window_of_the_one_it_replaces() {
    let work = tempfile::tempdir().expect("tempdir");
    let images = images(work.path(), &good_install("", ""));
    let patient = Follower::patient(work.path(), images).await;
    patient.wait_running("V1 to run", V1).await;
    patient.desire(V2);
    patient.wait_running("V2 to run", V2).await;
    patient.desire(V1);
    patient
        .wait_running("V1 to run again, long before V2's window ends", V1)
        .await;
    patient.stop().await;
}

/// A version pushed while the one before it is still installing ends that one's window
/// as soon as it starts: what the install is for, not what is desired by the time it
/// starts, is the baseline (it once was the latter, and the push was held for the hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_pushed_during_an_install_follows_it_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let (waiting, release) = (work.path().join("waiting"), work.path().join("release"));
    let hold = format!(
        "touch {}; while [ ! -e {} ]; do sleep 0.05; done;",
        waiting.display(),
        release.display()
    );
    let root = work.path().join("images");
    write_image(&root, "svc", V1, &good_install(&hold, ""), &[]);
    write_image(&root, "svc", V2, &good_install("", ""), &[]);
    let patient = Follower::patient(work.path(), DirectoryImages::new(root)).await;
    wait_for("V1's install commands", || waiting.exists().then_some(())).await;
    patient.desire(V2);
    fs::write(&release, "").expect("release V1's install");
    patient
        .wait_running("V2 to run, long before V1's window ends", V2)
        .await;
    patient.stop().await;
}

/// A folder's images, counting the fetches asked of it.
struct Counted {
    images: DirectoryImages,
    fetches: Arc<AtomicUsize>,
}

impl ImageSource for Counted {
    type Error = CopyError;

    async fn fetch(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
        dest: &Path,
    ) -> Result<(), CopyError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.images.fetch(service, version, dest).await
    }

    fn is_absent(error: &CopyError) -> bool {
        DirectoryImages::is_absent(error)
    }
}

/// A desired version whose image is not there yet (the distribution tells updaters of a
/// version before it has built it) is waited for, not reported as an update error, and
/// installed once its image is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_without_an_image_yet_is_waited_for_without_an_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("images");
    fs::create_dir_all(&root).expect("images folder");
    let fetches = Arc::new(AtomicUsize::new(0));
    let images = Counted {
        images: DirectoryImages::new(&root),
        fetches: Arc::clone(&fetches),
    };
    let mut follower = Follower::start(work.path(), images, options()).await;
    wait_for("a first fetch and two retries", || {
        (fetches.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await;
    assert_eq!(
        follower.state.borrow().update_error,
        None,
        "waiting is not an error"
    );

    write_image(&root, "svc", V1, &good_install("", ""), &[]);
    // As the distribution does when it stores an image: the same list again.
    follower.desire(V1);
    tokio::time::timeout(
        DEADLINE,
        follower
            .state
            .wait_for(|state| state.version.as_ref().is_some_and(|v| v.to_string() == V1)),
    )
    .await
    .expect("installed once the image is there")
    .expect("state");
    assert_eq!(follower.state.borrow().update_error, None);
    follower.stop().await;
}
