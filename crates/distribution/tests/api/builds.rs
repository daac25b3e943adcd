//! Build tasks: every desired version without an image gets one; its failure is visible in
//! `status` and its log; a task a restart interrupted is failed and started again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use vupdate_core::log::Level;
use vupdate_core::reconcile::Build;
use vupdate_distribution::reconcile::{BUILDER_UNAVAILABLE, BuildFuture, BuildRunner};
use vupdate_distribution::tasks::TaskContext;
use vupdate_state::State;

use super::support::{Harness, Options};

const STATUS: &str = r#"{ status { synced services { service sync developerImage builds { target version state task message } } } }"#;

#[tokio::test]
async fn a_desired_version_without_an_image_gets_a_build_task_whose_failure_is_shown() {
    let harness = Harness::start().await;
    let status = harness
        .eventually("the build to fail", || async {
            let data = harness.ok(&harness.developer, STATUS, json!({})).await;
            let api = data["status"]["services"]
                .as_array()?
                .iter()
                .find(|s| s["service"] == "api")?
                .clone();
            (api["sync"] == "BUILD_FAILED").then_some(api)
        })
        .await;
    let build = &status["builds"][0];
    assert_eq!(build["target"], "developer");
    assert_eq!(build["version"], "acme-1.0.0");
    assert_eq!(build["message"], BUILDER_UNAVAILABLE);
    assert_eq!(status["developerImage"], false);
    let task = build["task"].as_str().expect("task id");
    let log = harness
        .ok(
            &harness.developer,
            "query($t: String!) { logs(filter: {task: $t}) { message terminationStatus } }",
            json!({"t": task}),
        )
        .await;
    let last = &log["logs"][0];
    assert_eq!(last["terminationStatus"], false, "{log}");
    let tasks = harness
        .ok(&harness.developer, "{ tasks(type: \"BuildDeveloperVersion\") { id active terminationStatus parameters { name value } } }", json!({}))
        .await;
    assert_eq!(tasks["tasks"][0]["id"], task);
    assert_eq!(tasks["tasks"][0]["terminationStatus"], false);
    // Metrics saw the task and the requests.
    let metrics = harness
        .client
        .get(harness.url("/metrics"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "vupdate_tasks_ended_total{type=\"BuildDeveloperVersion\",status=\"failed\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("route=\"/graphql\""), "{metrics}");
    assert!(metrics.contains("vupdate_store_operation_duration_seconds_count{operation=\"insert\",collection=\"tasks\""), "{metrics}");
}

/// A build that takes long and counts its starts, so a restart can interrupt it.
#[derive(Default)]
struct Slow {
    starts: AtomicUsize,
}

impl BuildRunner for Slow {
    fn run(&self, _build: Build, _state: Arc<State>, task: TaskContext) -> BuildFuture {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            task.log(Level::Info, "BUILD", "building slowly");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(3600)) => Ok(()),
                () = task.cancelled() => Err("cancelled".to_owned()),
            }
        })
    }
}

#[tokio::test]
async fn a_build_interrupted_by_a_restart_is_failed_and_started_again() {
    let slow = Arc::new(Slow::default());
    let options = Options {
        builder: Some(slow.clone()),
        ..Options::default()
    };
    let mut harness = Harness::start_with(options.clone()).await;
    let first = harness
        .eventually("a running build", || async {
            let data = harness
                .ok(
                    &harness.developer,
                    "{ tasks(onlyActive: true) { id } }",
                    json!({}),
                )
                .await;
            data["tasks"][0]["id"].as_str().map(str::to_owned)
        })
        .await;
    // The server stops while the task runs: its record stays active, as a crash leaves it.
    harness.stop().await;
    harness.boot(options).await;
    let second = harness
        .eventually("the build started again", || async {
            let data = harness
                .ok(
                    &harness.developer,
                    "{ tasks(onlyActive: true) { id } }",
                    json!({}),
                )
                .await;
            data["tasks"][0]["id"]
                .as_str()
                .filter(|id| *id != first)
                .map(str::to_owned)
        })
        .await;
    assert_ne!(first, second);
    let old = harness
        .ok(
            &harness.developer,
            "query($id: String!) { tasks(id: $id) { active terminationStatus } }",
            json!({"id": first}),
        )
        .await;
    assert_eq!(
        old["tasks"][0],
        json!({"active": false, "terminationStatus": false})
    );
    assert!(slow.starts.load(Ordering::SeqCst) >= 2);
    harness
        .ok(
            &harness.developer,
            "mutation($t: String!) { cancelTask(task: $t) }",
            json!({"t": second}),
        )
        .await;
    harness.stop().await;
}
