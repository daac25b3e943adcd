//! Client generations in the loop, over a real state repo, a real SQLite store and a real
//! image store; a stand-in runner plays the builder (the image's content is the `greeting`
//! macro value, compared with the newest record's content digest, as the builder does).
//!
//! - a changed macro value makes `_1`, committed by the distribution, and nothing more;
//! - a change that gives the same content makes no generation and no commit, and is not
//!   checked again on later looks or commits;
//! - a commit made while the check runs: the result lands on top of it, or is dropped when
//!   that commit changed the settings again (which then gets its own check);
//! - a check by hand returns its task, is refused while the service is busy, and forces a
//!   check even when nothing changed; a failed check waits for a new commit;
//! - records without a settings stamp start nothing by themselves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::timeout;
use vupdate_core::reconcile::{Build, BuildKey};
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_state::{State, StateRepo};
use vupdate_store::Store;
use vupdate_store::model::versions::{BuildInfo, ClientVersionRecord, InstallInfo, SettingsStamp};
use vupdate_test_support::{GitRepo, Person};

use super::generation::newest_record;
use super::tests::{Fixture, config, open_fixture};
use super::{
    BuildFuture, BuildRunner, BuildState, GenerationLink, RebuildRefused, ReconcileStatus,
    Reconciler, service_settings_hash,
};
use crate::images::{ImageStore, ImageVersion};
use crate::tasks::TaskContext;

const LIMIT: Duration = Duration::from_secs(30);

fn api_yaml(greeting: &str, unused: &str) -> String {
    format!("client:\n  macroValues:\n    greeting: \"{greeting}\"\n    unused: \"{unused}\"\n")
}

fn service(name: &str) -> ServiceName {
    name.parse().expect("service")
}

fn version(text: &str) -> ClientVersion {
    text.parse().expect("client version")
}

/// Stands in for `vupdate builder build-client-generation`.
struct GenerationWriter {
    store: Store,
    images: ImageStore,
    /// When set, each check waits for a permit (the test holds a build mid-way).
    gate: Option<Arc<Semaphore>>,
    /// When set, every check fails with this.
    fail: std::sync::Mutex<Option<String>>,
}

impl BuildRunner for GenerationWriter {
    fn run(&self, build: Build, state: Arc<State>, _task: TaskContext) -> BuildFuture {
        let (store, images, gate) = (self.store.clone(), self.images.clone(), self.gate.clone());
        let fail = self.fail.lock().expect("fail lock").clone();
        Box::pin(async move {
            let Build::Generation {
                service, current, ..
            } = build
            else {
                return Err(format!("only generation checks here, not {build:?}"));
            };
            if let Some(gate) = gate {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
            }
            if let Some(message) = fail {
                return Err(message);
            }
            let settings = state
                .build_settings(&service)
                .and_then(|s| s.client)
                .unwrap_or_default();
            let content = settings
                .macro_values
                .get("greeting")
                .cloned()
                .unwrap_or_default();
            let hash = service_settings_hash(&state, &service).expect("declared");
            let developer = current.developer.clone();
            let newest = newest_record(&store, &service, &developer)
                .await
                .map_err(|e| e.to_string())?;
            if newest.as_ref().and_then(|r| r.content_digest.as_deref()) == Some(&content) {
                return Ok(());
            }
            let next = ClientVersion::next_for(&developer, newest.iter().map(|r| &r.version));
            record(&store, &images, &service, &next, &content, Some(hash)).await;
            Ok(())
        })
    }
}

/// Stores an image and a record for `version` with content `content`.
async fn record(
    store: &Store,
    images: &ImageStore,
    service: &ServiceName,
    version: &ClientVersion,
    content: &str,
    hash: Option<String>,
) {
    let image = images
        .put_bytes(
            service,
            &ImageVersion::Client(version.clone()),
            content.as_bytes(),
        )
        .await
        .expect("store the image");
    let now = chrono::Utc::now();
    store
        .client_versions()
        .add(ClientVersionRecord {
            service: service.clone(),
            version: version.clone(),
            build_info: BuildInfo {
                author: "Alice".to_owned(),
                sources: Vec::new(),
                time: now,
                comment: "built".to_owned(),
            },
            install_info: InstallInfo {
                author: "Alice".to_owned(),
                time: now,
            },
            image: vupdate_store::model::versions::ImageInfo {
                digest: image.digest,
                size: image.size,
            },
            content_digest: Some(content.to_owned()),
            settings: hash.map(|hash| SettingsStamp {
                hash,
                commit: None,
                repositories: Vec::new(),
            }),
        })
        .await
        .expect("add the record");
}

/// `api` (a `self` service at `orbit-1.0.0`, greeting `hello`) with both images and a
/// stamped record of `orbit-1.0.0` made from the settings of the first commit.
async fn fixture(stamped: bool) -> Fixture {
    let repo = GitRepo::init();
    repo.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", &api_yaml("hello", "1")),
            ("services/web.yaml", ""),
            ("profiles.yaml", "profiles:\n  self: [api]\n"),
            ("desired/developer.yaml", "versions:\n  api: orbit-1.0.0\n"),
        ],
        "api 1.0.0",
        &Person::alice(),
    );
    let fixture = open_fixture(repo).await;
    let (store, images) = (&fixture.store, &fixture.images);
    let api = service("api");
    images
        .put_bytes(
            &api,
            &ImageVersion::Developer("orbit-1.0.0".parse().expect("version")),
            b"dev",
        )
        .await
        .expect("developer image");
    let state = StateRepo::open(fixture.repo.path(), "main")
        .and_then(|r| r.head().and_then(|head| r.load(&head.id)))
        .expect("load the first commit");
    let hash = stamped.then(|| service_settings_hash(&state, &api).expect("declared"));
    record(store, images, &api, &version("orbit-1.0.0"), "hello", hash).await;
    fixture
}

impl Fixture {
    fn runner(&self, gate: Option<Arc<Semaphore>>) -> Arc<GenerationWriter> {
        Arc::new(GenerationWriter {
            store: self.store.clone(),
            images: self.images.clone(),
            gate,
            fail: std::sync::Mutex::new(None),
        })
    }

    /// The loop with client generation checks, builds run by `runner`.
    fn start_checking(&self, runner: Arc<GenerationWriter>) -> Reconciler {
        Reconciler::start(
            config(2),
            self.watcher.subscribe(),
            self.images.clone(),
            self.tasks.clone(),
            runner,
            Some(GenerationLink {
                store: self.store.clone(),
                repo: self.watcher.repo(),
                trigger: self.watcher.trigger_handle(),
            }),
        )
    }

    /// The generation tasks so far, oldest first: (succeeded, parameters).
    async fn checks(&self) -> Vec<(Option<bool>, BTreeMap<String, String>)> {
        let mut tasks: Vec<_> = self
            .store
            .tasks()
            .query(&Default::default())
            .await
            .expect("query tasks")
            .into_iter()
            .map(|stored| stored.record)
            .filter(|task| task.task_type == "BuildClientGeneration")
            .collect();
        tasks.sort_by_key(|task| task.creation_time);
        tasks
            .into_iter()
            .map(|task| (task.termination_status, task.parameters))
            .collect()
    }

    /// The client versions with a record, oldest first.
    async fn generations(&self) -> Vec<String> {
        let mut found: Vec<ClientVersion> = self
            .store
            .client_versions()
            .query(&Default::default())
            .await
            .expect("query")
            .into_iter()
            .map(|stored| stored.record.version)
            .collect();
        found.sort();
        found.iter().map(ToString::to_string).collect()
    }

    /// `desired/client.yaml` at the branch tip (empty while there is none).
    fn desired_client(&self) -> String {
        let output = self.repo.run(&["show", "main:desired/client.yaml"], &[]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// Waits until the loop works on the branch tip and has nothing left to do.
async fn settled_on_tip(fixture: &Fixture, status: &mut watch::Receiver<ReconcileStatus>) {
    let tip = fixture.repo.rev_parse("main");
    let waited = timeout(
        LIMIT,
        status.wait_for(|s| s.commit.as_deref() == Some(tip.as_str()) && s.is_synced()),
    )
    .await
    .map(|found| found.map(drop));
    match waited {
        Ok(found) => found.expect("the loop runs"),
        Err(_) => panic!("the loop settles on {tip}: {:?}", *status.borrow()),
    }
}

/// Looks again (a wake) and waits for that look's status.
async fn look_again(reconciler: &Reconciler, status: &mut watch::Receiver<ReconcileStatus>) {
    status.borrow_and_update();
    reconciler.wake();
    timeout(LIMIT, status.changed())
        .await
        .expect("the loop looks again")
        .expect("the loop runs");
}

#[tokio::test]
async fn a_settings_change_makes_the_next_generation_and_the_distribution_commits_it() {
    let fixture = fixture(true).await;
    let reconciler = fixture.start_checking(fixture.runner(None));
    let mut status = reconciler.subscribe();
    settled_on_tip(&fixture, &mut status).await;
    assert!(fixture.checks().await.is_empty(), "nothing changed yet");

    // The greeting changes: a check, `_1`, and the distribution's commit.
    let change = fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("bonjour", "1"))],
        "Greet in French",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    timeout(LIMIT, async {
        while fixture.repo.rev_parse("main") == change {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the distribution commits");
    let head = fixture
        .repo
        .git(&["log", "-1", "--format=%an <%ae>%n%P%n%B", "main"]);
    let mut lines = head.lines();
    assert_eq!(
        lines.next(),
        Some("orbit distribution <distribution@orbit>")
    );
    assert_eq!(lines.next(), Some(change.as_str()), "on top of the change");
    assert_eq!(
        lines.next(),
        Some("api: client version orbit-1.0.0_1 (client settings changed)")
    );
    assert!(
        head.contains("had no entry in desired/client.yaml"),
        "{head}"
    );
    assert!(
        fixture.desired_client().contains("api: orbit-1.0.0_1"),
        "{}",
        fixture.desired_client()
    );
    settled_on_tip(&fixture, &mut status).await;
    assert_eq!(
        fixture.generations().await,
        ["orbit-1.0.0", "orbit-1.0.0_1"]
    );
    let checks = fixture.checks().await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0].0, Some(true));
    assert_eq!(checks[0].1["version"], "orbit-1.0.0");
    assert_eq!(checks[0].1["commit"], change);
    assert_eq!(checks[0].1["byHand"], "false");

    // A change that gives the same content: a check, no generation, no commit.
    let tip = fixture.repo.rev_parse("main");
    let same = fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("bonjour", "2"))],
        "An unused macro",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    timeout(LIMIT, async {
        while fixture.checks().await.len() < 2 || fixture.checks().await[1].0.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the second check ends");
    settled_on_tip(&fixture, &mut status).await;
    assert_eq!(
        fixture.repo.rev_parse("main"),
        same,
        "no commit after {tip}"
    );
    assert_eq!(
        fixture.generations().await,
        ["orbit-1.0.0", "orbit-1.0.0_1"]
    );

    // Never again by itself: not on a look, not on an unrelated commit.
    look_again(&reconciler, &mut status).await;
    fixture.repo.commit_files(
        &[("services/web.yaml", "# the web front end\n")],
        "Describe web",
        &Person::alice(),
    );
    fixture.watcher.trigger();
    settled_on_tip(&fixture, &mut status).await;
    look_again(&reconciler, &mut status).await;
    assert_eq!(fixture.checks().await.len(), 2);
    reconciler.shutdown().await;
}

#[tokio::test]
async fn a_commit_made_during_the_check_is_built_upon_or_makes_the_result_out_of_date() {
    let fixture = fixture(true).await;
    let gate = Arc::new(Semaphore::new(0));
    let reconciler = fixture.start_checking(fixture.runner(Some(Arc::clone(&gate))));
    let mut status = reconciler.subscribe();
    settled_on_tip(&fixture, &mut status).await;

    // An unrelated commit lands while `_1` is built: `_1` is committed on top of it.
    let change = fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("bonjour", "1"))],
        "Greet in French",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    timeout(
        LIMIT,
        status.wait_for(|s| {
            s.builds
                .values()
                .any(|b| matches!(b, BuildState::Running { .. }))
        }),
    )
    .await
    .expect("the check runs")
    .expect("the loop runs");
    let unrelated = fixture.repo.commit_files(
        &[("services/web.yaml", "# web\n")],
        "Describe web",
        &Person::alice(),
    );
    gate.add_permits(1);
    timeout(LIMIT, async {
        while fixture.repo.rev_parse("main") == unrelated {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the distribution commits");
    let parents = fixture.repo.git(&["log", "-1", "--format=%P", "main"]);
    assert_eq!(parents.trim(), unrelated, "not on {change}");
    assert!(fixture.desired_client().contains("api: orbit-1.0.0_1"));
    settled_on_tip(&fixture, &mut status).await;

    // The greeting changes again while `_2` is built from the first change: `_2` is out of
    // date, not committed, and the newest settings get their own check (`_3`).
    fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("hola", "1"))],
        "Greet in Spanish",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    timeout(
        LIMIT,
        status.wait_for(|s| {
            s.builds
                .values()
                .any(|b| matches!(b, BuildState::Running { .. }))
        }),
    )
    .await
    .expect("the check runs")
    .expect("the loop runs");
    let newer = fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("ciao", "1"))],
        "Greet in Italian",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    gate.add_permits(2);
    timeout(LIMIT, async {
        while fixture.repo.rev_parse("main") == newer {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the distribution commits the newest settings");
    settled_on_tip(&fixture, &mut status).await;
    assert_eq!(
        fixture.generations().await,
        [
            "orbit-1.0.0",
            "orbit-1.0.0_1",
            "orbit-1.0.0_2",
            "orbit-1.0.0_3"
        ]
    );
    let desired = fixture.desired_client();
    assert!(desired.contains("api: orbit-1.0.0_3"), "{desired}");
    let log = fixture.repo.git(&["log", "--format=%s", "main"]);
    assert!(
        !log.contains("orbit-1.0.0_2"),
        "the out-of-date generation is never desired:\n{log}"
    );
    reconciler.shutdown().await;
}

#[tokio::test]
async fn a_check_by_hand_and_a_failed_check() {
    let fixture = fixture(true).await;
    let gate = Arc::new(Semaphore::new(0));
    let runner = fixture.runner(Some(Arc::clone(&gate)));
    let reconciler = fixture.start_checking(Arc::clone(&runner));
    let handle = reconciler.handle();
    let mut status = reconciler.subscribe();
    settled_on_tip(&fixture, &mut status).await;

    // Refused for a service without a client version in force.
    assert_eq!(
        handle.rebuild_client(service("web")).await,
        Err(RebuildRefused::NotDesired(service("web")))
    );
    // By hand, nothing changed in Git: checked anyway; a second ask while it runs is busy.
    let task = handle
        .rebuild_client(service("api"))
        .await
        .expect("a check starts");
    let busy = handle.rebuild_client(service("api")).await;
    assert_eq!(
        busy,
        Err(RebuildRefused::Busy {
            service: service("api"),
            task: task.clone()
        })
    );
    gate.add_permits(1);
    let outcome = timeout(LIMIT, fixture.tasks.wait(&task))
        .await
        .expect("the check ends")
        .expect("its outcome");
    assert!(outcome.succeeded, "{outcome:?}");
    let checks = fixture.checks().await;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].1["byHand"], "true");
    assert_eq!(fixture.generations().await, ["orbit-1.0.0"], "unchanged");

    // A check that fails is not tried again until a new commit.
    *runner.fail.lock().expect("fail lock") = Some("settings repo unreachable".to_owned());
    gate.add_permits(10);
    fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("bonjour", "1"))],
        "Greet in French",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    let failed = timeout(
        LIMIT,
        status.wait_for(|s| {
            s.builds.iter().any(|(key, b)| {
                matches!(key, BuildKey::Generation(..)) && matches!(b, BuildState::Failed { .. })
            })
        }),
    )
    .await
    .expect("the check fails")
    .expect("the loop runs")
    .clone();
    let message = failed
        .builds
        .values()
        .find_map(|b| match b {
            BuildState::Failed { message, .. } => Some(message.clone()),
            _ => None,
        })
        .expect("a failure");
    assert_eq!(message, "settings repo unreachable");
    look_again(&reconciler, &mut status).await;
    assert_eq!(fixture.checks().await.len(), 2, "not retried in a loop");
    // The retry by hand of failed builds tries it again, and now it works.
    *runner.fail.lock().expect("fail lock") = None;
    reconciler.retry_failed();
    timeout(LIMIT, async {
        while !fixture.desired_client().contains("orbit-1.0.0_1") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the retried check commits _1");
    settled_on_tip(&fixture, &mut status).await;
    assert_eq!(fixture.checks().await.len(), 3);
    reconciler.shutdown().await;
}

#[tokio::test]
async fn records_without_a_settings_stamp_start_no_check_by_themselves() {
    let fixture = fixture(false).await;
    let reconciler = fixture.start_checking(fixture.runner(None));
    let mut status = reconciler.subscribe();
    settled_on_tip(&fixture, &mut status).await;
    fixture.repo.commit_files(
        &[("services/api.yaml", &api_yaml("bonjour", "1"))],
        "Greet in French",
        &Person::bob(),
    );
    fixture.watcher.trigger();
    settled_on_tip(&fixture, &mut status).await;
    look_again(&reconciler, &mut status).await;
    assert!(fixture.checks().await.is_empty());
    reconciler.shutdown().await;
}
