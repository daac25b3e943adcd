//! The reconcile loop over a real state repo, a real SQLite store and a real image store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::watch;
use tokio::time::timeout;
use vupdate_core::reconcile::{Build, BuildKey};
use vupdate_state::State;
use vupdate_store::{Store, StoreConfig};
use vupdate_test_support::{GitRepo, Person};

use super::{
    BUILDER_UNAVAILABLE, BuildFuture, BuildRunner, BuildState, BuilderUnavailable, ReconcileConfig,
    ReconcileStatus, Reconciler,
};
use crate::images::{ImageStore, ImageVersion};
use crate::tasks::{LogOrigin, TaskContext, TaskManager};
use crate::watcher::{RepoSource, StateWatcher, WatchConfig};

const LIMIT: Duration = Duration::from_secs(20);

/// `api` and `web` built here (orbit), `geo` received from the provider (jetto).
fn commit(repo: &GitRepo, api: &str) -> String {
    let desired = format!("versions:\n  api: {api}\n  web: orbit-1.0.0\n  geo: jetto-2.0.0\n");
    repo.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", ""),
            ("services/web.yaml", ""),
            ("services/geo.yaml", ""),
            ("profiles.yaml", "profiles:\n  self: [api, web, geo]\n"),
            ("desired/developer.yaml", &desired),
        ],
        &format!("api {api}"),
        &Person::alice(),
    )
}

/// A state repo with its watcher, a store, an image store and a task manager in a temp dir.
pub(super) struct Fixture {
    pub(super) dir: TempDir,
    pub(super) repo: GitRepo,
    pub(super) store: Store,
    pub(super) images: ImageStore,
    pub(super) watcher: StateWatcher,
    pub(super) tasks: TaskManager,
}

async fn fixture() -> Fixture {
    let repo = GitRepo::init();
    commit(&repo, "orbit-1.0.0");
    open_fixture(repo).await
}

/// The parts of a [`Fixture`] around `repo`, which has its first commit.
pub(super) async fn open_fixture(repo: GitRepo) -> Fixture {
    let dir = TempDir::new().expect("temp dir");
    let store = vupdate_store::open(&StoreConfig::Sqlite {
        path: dir.path().join("store.sqlite"),
    })
    .await
    .expect("open the store");
    let images = ImageStore::open(dir.path().join("images"))
        .await
        .expect("open the image store");
    let watcher = StateWatcher::start(WatchConfig {
        source: RepoSource::Local(repo.path().to_owned()),
        branch: "main".to_owned(),
        poll_interval: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        watch_files: false,
    })
    .await
    .expect("watch the state repo");
    let origin = LogOrigin {
        service: "distribution".parse().expect("service"),
        instance: "test".to_owned(),
        directory: "/srv".to_owned(),
        process: "1".to_owned(),
    };
    let tasks = TaskManager::new(store.clone(), origin, Duration::from_millis(100));
    Fixture {
        dir,
        repo,
        store,
        images,
        watcher,
        tasks,
    }
}

/// The loop's settings in these tests: distribution `orbit`, `parallel` builds at once, no
/// resync while a test runs.
pub(super) fn config(parallel: usize) -> ReconcileConfig {
    ReconcileConfig {
        distribution: "orbit".to_owned(),
        max_parallel_builds: parallel,
        resync_interval: Duration::from_secs(3600),
    }
}

impl Fixture {
    /// The builder work directory of this fixture's runner.
    fn builder_work_directory(&self) -> std::path::PathBuf {
        self.dir.path().join("builder")
    }

    fn start(&self, runner: Arc<dyn BuildRunner>) -> Reconciler {
        Reconciler::start(
            config(4),
            self.watcher.subscribe(),
            self.images.clone(),
            self.tasks.clone(),
            runner,
            None,
        )
    }

    async fn task_count(&self) -> usize {
        self.store
            .tasks()
            .query(&Default::default())
            .await
            .expect("query tasks")
            .len()
    }
}

async fn status_until(
    status: &mut watch::Receiver<ReconcileStatus>,
    ready: impl FnMut(&ReconcileStatus) -> bool,
) -> ReconcileStatus {
    timeout(LIMIT, status.wait_for(ready))
        .await
        .expect("the status changes in time")
        .expect("the loop runs")
        .clone()
}

fn all_failed(status: &ReconcileStatus) -> bool {
    !status.builds.is_empty()
        && status
            .builds
            .values()
            .all(|b| matches!(b, BuildState::Failed { .. }))
}

fn developer(service: &str, version: &str) -> BuildKey {
    BuildKey::Developer(
        service.parse().expect("service"),
        version.parse().expect("version"),
    )
}

fn client(service: &str, version: &str) -> BuildKey {
    BuildKey::Client(
        service.parse().expect("service"),
        version.parse().expect("version"),
    )
}

#[tokio::test]
async fn without_a_builder_builds_fail_once_and_wait_for_a_new_commit() {
    let fixture = fixture().await;
    let reconciler = fixture.start(Arc::new(BuilderUnavailable));
    let mut status = reconciler.subscribe();

    let failed = status_until(&mut status, all_failed).await;
    // Our two developer versions fail; the provider's geo is not ours to build, but its
    // client version is (from the provider's image), and fails the same way.
    let keys: Vec<&BuildKey> = failed.builds.keys().collect();
    assert_eq!(
        keys,
        [
            &developer("api", "orbit-1.0.0"),
            &developer("web", "orbit-1.0.0"),
            &client("geo", "jetto-2.0.0")
        ]
    );
    for state in failed.builds.values() {
        let BuildState::Failed { message, .. } = state else {
            unreachable!("all failed")
        };
        assert_eq!(message, BUILDER_UNAVAILABLE);
    }
    let tasks = fixture.task_count().await;
    assert_eq!(tasks, 3, "one task per build");

    // Looking again does not retry: no loop of failing builds. Every look publishes a
    // status, so waiting for the next one means the loop has looked.
    status.borrow_and_update();
    reconciler.wake();
    timeout(LIMIT, status.changed())
        .await
        .expect("the loop looks again")
        .expect("the loop runs");
    assert!(all_failed(&status.borrow()), "{:?}", *status.borrow());
    assert_eq!(fixture.task_count().await, 3);

    // A new commit is a new chance: every build is tried again.
    let second = commit(&fixture.repo, "orbit-1.1.0");
    fixture.watcher.trigger();
    let retried = status_until(&mut status, |s| {
        s.commit.as_deref() == Some(second.as_str()) && all_failed(s)
    })
    .await;
    assert!(
        retried
            .builds
            .contains_key(&developer("api", "orbit-1.1.0"))
    );
    assert_eq!(fixture.task_count().await, 6);

    // And a retry by hand tries them once more.
    reconciler.retry_failed();
    timeout(LIMIT, async {
        while fixture.task_count().await < 9 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a retry by hand starts the builds again");
    reconciler.shutdown().await;
}

#[tokio::test]
async fn versions_that_have_images_need_no_build() {
    let fixture = fixture().await;
    for (service, version) in [
        (
            "api",
            ImageVersion::Developer("orbit-1.0.0".parse().expect("version")),
        ),
        (
            "api",
            ImageVersion::Client("orbit-1.0.0".parse().expect("version")),
        ),
        (
            "web",
            ImageVersion::Developer("orbit-1.0.0".parse().expect("version")),
        ),
        (
            "web",
            ImageVersion::Client("orbit-1.0.0".parse().expect("version")),
        ),
        (
            "geo",
            ImageVersion::Client("jetto-2.0.0".parse().expect("version")),
        ),
    ] {
        let service = service.parse().expect("service");
        fixture
            .images
            .put_bytes(&service, &version, b"zip")
            .await
            .expect("store an image");
    }
    let reconciler = fixture.start(Arc::new(BuilderUnavailable));
    let mut status = reconciler.subscribe();
    let synced = status_until(&mut status, |s| s.commit.is_some()).await;
    assert!(synced.is_synced(), "{synced:?}");
    assert_eq!(fixture.task_count().await, 0);
}

/// Stands in for the builder (issue 5): stores an image for each build, records the order.
struct ImageWriter {
    images: ImageStore,
    order: Mutex<Vec<String>>,
}

impl BuildRunner for ImageWriter {
    fn run(&self, build: Build, _state: Arc<State>, _task: TaskContext) -> BuildFuture {
        let (service, version) = match &build {
            Build::Developer { service, version } => {
                (service.clone(), ImageVersion::Developer(version.clone()))
            }
            Build::Client {
                service, version, ..
            } => (service.clone(), ImageVersion::Client(version.clone())),
            Build::Generation { .. } => {
                return Box::pin(async { Err("no generation checks without a link".to_owned()) });
            }
        };
        self.order
            .lock()
            .expect("order lock")
            .push(format!("{service} {version:?}"));
        let images = self.images.clone();
        Box::pin(async move {
            images
                .put_bytes(&service, &version, b"zip")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

#[tokio::test]
async fn builds_run_developer_first_then_client_until_synced() {
    let fixture = fixture().await;
    let runner = Arc::new(ImageWriter {
        images: fixture.images.clone(),
        order: Mutex::new(Vec::new()),
    });
    let reconciler = fixture.start(Arc::clone(&runner) as Arc<dyn BuildRunner>);
    let mut status = reconciler.subscribe();
    status_until(&mut status, ReconcileStatus::is_synced).await;

    let order = runner.order.lock().expect("order lock").clone();
    assert_eq!(order.len(), 5, "{order:?}");
    for service in ["api", "web"] {
        let dev = order
            .iter()
            .position(|b| b.starts_with(service) && b.contains("Developer"));
        let cli = order
            .iter()
            .position(|b| b.starts_with(service) && b.contains("Client"));
        assert!(
            dev.expect("developer built") < cli.expect("client built"),
            "{order:?}"
        );
    }
    assert_eq!(fixture.task_count().await, 5);
}

/// A stand-in for `vupdate`: a shell script at `dir/fake-vupdate` running `body`.
fn fake_program(dir: &std::path::Path, body: &str) -> super::BuilderProgram {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("fake-vupdate");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Run by `sh`, not executed itself: a process another test forks while the script is
    // being written holds it open for writing until it execs, and executing the file then
    // fails with "Text file busy" (the build fails at once and never says it started).
    // `sh` only reads it, and sees the same arguments ($0 the script, $1 `-v`, ...).
    super::BuilderProgram {
        program: "/bin/sh".into(),
        args: vec![path.into_os_string(), "-v".into()],
        kill_grace: Duration::from_millis(500),
    }
}

fn process_runner(fixture: &Fixture, program: super::BuilderProgram) -> Arc<super::ProcessRunner> {
    let runner = Arc::new(super::ProcessRunner::new(program));
    runner.attach(&super::ServerLink {
        url: "http://127.0.0.1:9".to_owned(),
        token: "t0ken".to_owned(),
        pinned_public_key: None,
        repo: fixture.watcher.repo(),
        // Each test its own: attaching kills the builders that leases in the work
        // directory name, which would be another test's running builder.
        work_directory: fixture.builder_work_directory(),
        instance: "test".to_owned(),
    });
    runner
}

async fn task_log(fixture: &Fixture, task: &str) -> Vec<String> {
    let query = vupdate_store::model::logs::LogQuery {
        task: Some(task.to_owned()),
        ..Default::default()
    };
    let mut lines: Vec<(i64, String)> = fixture
        .store
        .logs()
        .query(&query)
        .await
        .expect("query the log")
        .into_iter()
        .map(|s| {
            (
                s.sequence,
                format!("{} {} {}", s.record.level, s.record.unit, s.record.message),
            )
        })
        .collect();
    lines.sort();
    lines.into_iter().map(|(_, line)| line).collect()
}

#[tokio::test]
async fn a_builder_process_gets_the_build_and_its_last_error_line_is_the_failure() {
    let fixture = fixture().await;
    let dir = TempDir::new().expect("dir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let body = format!(
        "printf '%s\\n' \"$@\" > {out}/args-$4\necho \"$VUPDATE_ACCESS_TOKEN\" > {out}/token\necho 'warning: something odd' >&2\necho 'error: step `building`: boom' >&2\necho '  the build said more' >&2\nexit 1",
        out = out.display()
    );
    let reconciler = fixture.start(process_runner(&fixture, fake_program(dir.path(), &body)));
    let mut status = reconciler.subscribe();
    let failed = status_until(&mut status, all_failed).await;

    let Some(BuildState::Failed { task, message }) =
        failed.builds.get(&developer("api", "orbit-1.0.0"))
    else {
        panic!("{failed:?}")
    };
    assert_eq!(message, "step `building`: boom");
    let args = std::fs::read_to_string(out.join("args-api")).expect("args");
    let work_dir = fixture.builder_work_directory().display().to_string();
    let mut args: Vec<&str> = args.lines().collect();
    let commit = fixture.repo.rev_parse("HEAD");
    let repo = fixture.watcher.repo().path().display().to_string();
    // The task id is the build's own.
    assert_eq!(args.get(14), Some(&task.as_str()));
    args[14] = "TASK";
    assert_eq!(
        args,
        [
            "-v",
            "builder",
            "build-developer-version",
            "api",
            "orbit-1.0.0",
            "--distribution",
            "http://127.0.0.1:9",
            "--state-repo",
            repo.as_str(),
            "--branch",
            "main",
            "--commit",
            commit.as_str(),
            "--task",
            "TASK",
            "--work-dir",
            work_dir.as_str(),
            "--author",
            "Alice Example <alice@example.com>",
            "--comment",
            "api orbit-1.0.0",
            "--instance",
            "test",
        ]
    );
    let client_args = std::fs::read_to_string(out.join("args-geo")).expect("client args");
    assert!(
        client_args
            .starts_with("-v\nbuilder\nbuild-client-version\ngeo\njetto-2.0.0\njetto-2.0.0\n"),
        "{client_args}"
    );
    // The token is in the environment, never in the arguments.
    assert_eq!(
        std::fs::read_to_string(out.join("token")).expect("token"),
        "t0ken\n"
    );
    assert!(!client_args.contains("t0ken"));

    let log = task_log(&fixture, task).await;
    let has = |text: &str| log.iter().any(|line| line.contains(text));
    assert!(has("WARN builder warning: something odd"), "{log:#?}");
    assert!(
        has("ERROR builder error: step `building`: boom"),
        "{log:#?}"
    );
    assert!(has("INFO builder   the build said more"), "{log:#?}");
    assert!(
        has("ERROR BUILD developer version orbit-1.0.0 of api: the builder ended with exit code 1"),
        "{log:#?}"
    );
    reconciler.shutdown().await;
}

#[tokio::test]
async fn a_builder_that_cannot_start_or_dies_says_why() {
    let fixture = fixture().await;
    let dir = TempDir::new().expect("dir");
    let missing = super::BuilderProgram::new(dir.path().join("no-such-vupdate"));
    let reconciler = fixture.start(process_runner(&fixture, missing));
    let mut status = reconciler.subscribe();
    let failed = status_until(&mut status, all_failed).await;
    for state in failed.builds.values() {
        let BuildState::Failed { message, .. } = state else {
            unreachable!("all failed")
        };
        assert!(
            message.starts_with("cannot start the builder `"),
            "{message}"
        );
        assert!(message.contains("no-such-vupdate"), "{message}");
    }
    reconciler.shutdown().await;

    // Killed by a signal before it could say anything.
    let fixture = self::fixture().await;
    let killed = fake_program(dir.path(), "kill -9 $$");
    let reconciler = fixture.start(process_runner(&fixture, killed));
    let mut status = reconciler.subscribe();
    let failed = status_until(&mut status, all_failed).await;
    let Some(BuildState::Failed { message, .. }) =
        failed.builds.get(&developer("api", "orbit-1.0.0"))
    else {
        panic!("{failed:?}")
    };
    assert_eq!(message, "the builder ended with signal 9 and said nothing");
    reconciler.shutdown().await;
}

/// Whether process `pid` is gone (or a zombie).
fn gone(pid: i32) -> bool {
    !vupdate_process::table::is_running(pid)
}

#[tokio::test]
async fn a_cancelled_build_kills_every_process_of_the_builder_even_one_in_its_own_session() {
    let fixture = fixture().await;
    let dir = TempDir::new().expect("dir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    // A builder whose "build command" left its process group (setsid), as a badly
    // behaved build tool may.
    let body = format!(
        "[ \"$3\" = build-developer-version ] || exit 1\n[ \"$4\" = api ] || exit 1\necho $$ > {out}/builder.pid\nsetsid sh -c 'echo $$ > {out}/escaped.pid; exec sleep 300' &\nsleep 300 &\necho $! > {out}/child.pid\nwait",
        out = out.display()
    );
    let reconciler = fixture.start(process_runner(&fixture, fake_program(dir.path(), &body)));
    let read = |name: &str| -> Option<i32> {
        std::fs::read_to_string(out.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    let pids = loop {
        if let (Some(a), Some(b), Some(c)) =
            (read("builder.pid"), read("escaped.pid"), read("child.pid"))
        {
            break [a, b, c];
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fake builder did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The snapshot of the tree is refreshed every second: let it see the escaped process.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The fake builder fails every build but api's at once: cancel what still runs.
    for id in fixture.tasks.running() {
        let _ = fixture.tasks.cancel(&id);
    }
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !pids.iter().all(|pid| gone(*pid)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still running: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reconciler.shutdown().await;
}

#[tokio::test]
async fn an_explicit_client_generation_is_built_as_exactly_that_version() {
    let fixture = fixture().await;
    fixture.repo.commit_files(
        &[("desired/client.yaml", "versions:\n  api: orbit-1.0.0_2\n")],
        "api's client settings changed",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    let dir = TempDir::new().expect("dir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    // Every build fails; a client build first writes down what it was asked for.
    let body = format!(
        "[ \"$3\" = build-client-version ] && printf '%s\\n' \"$@\" > {out}/client-$4\nexit 1",
        out = out.display()
    );
    let reconciler = fixture.start(process_runner(&fixture, fake_program(dir.path(), &body)));
    let mut status = reconciler.subscribe();
    let second = fixture.repo.rev_parse("HEAD");
    status_until(&mut status, |s| {
        s.commit.as_deref() == Some(second.as_str()) && all_failed(s)
    })
    .await;
    // api's developer build failed, so its client build is held back; give the developer
    // image by hand and look again.
    fixture
        .images
        .put_bytes(
            &"api".parse().expect("service"),
            &ImageVersion::Developer("orbit-1.0.0".parse().expect("version")),
            b"zip",
        )
        .await
        .expect("the developer image");
    reconciler.wake();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let args = loop {
        if let Ok(args) = std::fs::read_to_string(out.join("client-api")) {
            break args;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no client build of api"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        args.starts_with("-v\nbuilder\nbuild-client-version\napi\norbit-1.0.0\norbit-1.0.0_2\n"),
        "{args}"
    );
    assert!(
        args.contains(
            "--author\nBob Example <bob@example.com>\n--comment\napi's client settings changed\n"
        ),
        "the commit that set the client version asked for it: {args}"
    );
    reconciler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_paused_past_its_lease_starts_no_build_and_is_told_why() {
    use crate::leadership::{LEASE_NAME, Leadership};

    let fixture = fixture().await;
    // The keeper renews every 30 s: in this test it never notices the take-over, as a
    // replica paused (or cut off) past its lease's end would not.
    let lease_config = crate::config::LeaseConfig {
        ttl: Duration::from_secs(60),
        renew_every: Duration::from_secs(30),
    };
    let (_stop, stopped) = watch::channel(false);
    let (leadership, _keeper) = Leadership::keep(
        fixture.store.clone(),
        "paused".into(),
        lease_config,
        stopped,
    );
    let mut held = leadership.subscribe();
    let lease = timeout(LIMIT, held.wait_for(Option::is_some))
        .await
        .expect("the lease is taken in time")
        .expect("the keeper runs")
        .clone()
        .expect("held");
    let leases = fixture.store.leases();
    assert!(leases.release(&lease).await.expect("release"));
    leases
        .take(LEASE_NAME, "other", Duration::from_secs(60))
        .await
        .expect("take")
        .expect("taken over");
    assert!(
        leadership.is_held(),
        "the paused holder still believes it holds"
    );

    let reconciler = Reconciler::start_leased(
        config(4),
        fixture.watcher.subscribe(),
        fixture.images.clone(),
        fixture.tasks.clone(),
        Arc::new(BuilderUnavailable),
        None,
        leadership.clone(),
    );
    let mut status = reconciler.subscribe();
    let looked = status_until(&mut status, |s| s.commit.is_some()).await;
    assert!(
        !looked.builds.is_empty()
            && looked
                .builds
                .values()
                .all(|b| matches!(b, BuildState::Queued)),
        "planned, none started: {looked:?}"
    );
    assert_eq!(fixture.task_count().await, 0, "no build task was written");
    let refused = leadership
        .fence()
        .await
        .expect_err("fenced off")
        .to_string();
    assert!(
        refused.contains("token 1 is no longer held")
            && refused.contains("`other` holds it with token 2")
            && refused.contains("the write was refused"),
        "{refused}"
    );
    reconciler.shutdown().await;
}
