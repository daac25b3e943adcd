//! Safe changes (issue 16) with real updaters and the real `hello`: a version that runs
//! but fails its health check is rolled back on every instance and recorded as
//! known-bad, with the instances, the reason and its fault reports as evidence; an
//! instance that was away then never starts it, whether the state repo still desires it
//! (`onFailure: hold`) or the distribution reverted the change (`onFailure: revert`).

use serde_json::json;
use vupdate_test_support::Person;

use super::world::World;

/// `hello`'s health check: GET `/health` on the port it wrote; a non-2xx answer or no
/// answer makes `urlopen` raise, so the probe exits 1.
const HEALTH_CHECK: &str = r#""healthCheck": {
            "command": {
              "command": "python3",
              "args": ["-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:' + open('port').read().strip() + '/health', timeout=1)"]
            },
            "intervalMs": 200,
            "timeoutMs": 2000,
            "startWindowMs": 3000
          },
          "uploadLogs": true,"#;

/// Commits and pushes to `hello`'s source a 1.1.0 that gains a health check and answers
/// 503 on /health: it runs, but is never healthy.
pub(super) fn push_unhealthy_source(world: &World) {
    let update = world.source.read("update.json");
    assert!(update.contains(r#""uploadLogs": true,"#), "{update}");
    world.source.write(
        "update.json",
        &update.replacen(r#""uploadLogs": true,"#, HEALTH_CHECK, 1),
    );
    let serve = world.source.read("serve.py");
    let unhealthy = serve.replacen(
        "    def do_GET(self):\n",
        "    def do_GET(self):\n        if self.path == '/health':\n            self.send_response(503)\n            self.send_header('Content-Length', '0')\n            self.end_headers()\n            return\n",
        1,
    );
    assert_ne!(unhealthy, serve, "serve.py has no do_GET to change");
    world.source.write("serve.py", &unhealthy);
    world.source.commit(
        "hello: a health check, and a /health that fails",
        &Person::alice(),
    );
    world.push_source();
}

/// Waits until `acme-1.1.0` of hello is known-bad on `instances` with at least one fault
/// report each; returns the entry.
async fn known_bad_on(world: &World, instances: usize) -> serde_json::Value {
    world
        .eventually("hello acme-1.1.0 known-bad with its fault reports", || async {
            let data = world
                .query(
                    "{ knownBadVersions(service: \"hello\") { service version reason instances faultIds recordedAt } }",
                    json!({}),
                )
                .await;
            let entry = data["knownBadVersions"].as_array()?.first()?.clone();
            let seen = entry["instances"].as_array()?.len();
            let faults = entry["faultIds"].as_array()?.len();
            (seen == instances && faults >= instances).then_some(entry)
        })
        .await
}

/// Waits until the updater `index` has reported hello's state since `since` (so it has
/// read the desired versions since it started) and runs acme-1.0.0.
async fn reported_on_1_0_0(world: &World, index: usize, since: chrono::DateTime<chrono::Utc>) {
    let instance = world.updaters[index].instance;
    world
        .eventually(&format!("{instance} to report hello on acme-1.0.0"), || async {
            let data = world
                .query(
                    "{ serviceStates(service: \"hello\") { instance state { time version updateToVersion } } }",
                    json!({}),
                )
                .await;
            let states = data["serviceStates"].as_array()?.clone();
            let state = states.iter().find(|s| s["instance"] == instance)?;
            let time: chrono::DateTime<chrono::Utc> = state["state"]["time"].as_str()?.parse().ok()?;
            (time > since
                && state["state"]["version"] == "acme-1.0.0"
                && state["state"]["updateToVersion"].is_null())
            .then_some(())
        })
        .await;
    assert_eq!(
        world.updaters[index].serving().as_deref(),
        Some("acme-1.0.0")
    );
    assert!(
        !world.updaters[index].log().contains("acme-1.1.0"),
        "{instance} never heard of the known-bad version:\n{}",
        world.updaters[index].log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_its_health_check_is_rolled_back_and_marked_known_bad() {
    let world = World::start().await;
    push_unhealthy_source(&world);
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    let known_bad = known_bad_on(&world, 2).await;
    assert_eq!(known_bad["service"], "hello", "{known_bad:#}");
    assert_eq!(known_bad["version"], "acme-1.1.0", "{known_bad:#}");
    let reason = known_bad["reason"].as_str().expect("reason");
    assert!(
        reason.contains("failed its health check")
            && reason.contains("not healthy within its start window of 3000 ms"),
        "{reason}"
    );
    // The evidence is the fault reports of 1.1.0, each saying why the run was ended.
    let faults = world
        .query(
            "{ faults(service: \"hello\") { id state { version } } }",
            json!({}),
        )
        .await;
    for id in known_bad["faultIds"].as_array().expect("ids") {
        let fault = faults["faults"]
            .as_array()
            .expect("faults")
            .iter()
            .find(|fault| &fault["id"] == id)
            .unwrap_or_else(|| panic!("fault {id} is listed: {faults:#}"));
        assert_eq!(fault["state"]["version"], "acme-1.1.0", "{fault:#}");
    }
    // Both instances are back on the version that worked, and `status` names it.
    world.wait_serving("acme-1.0.0").await;
    let status = world
        .query(
            "{ status { knownBadVersions { service version instances } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        status["status"]["knownBadVersions"][0]["version"], "acme-1.1.0",
        "{status:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_hold_an_instance_that_was_away_keeps_the_previous_version() {
    let mut world = World::start().await;
    world.updaters[1].stop();
    push_unhealthy_source(&world);
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    let known_bad = known_bad_on(&world, 1).await;
    assert_eq!(
        known_bad["instances"][0], world.updaters[0].instance,
        "{known_bad:#}"
    );
    // Git still desires 1.1.0; the status says why nobody starts it.
    let status = world.hello_status().await;
    assert_eq!(
        status["services"][0]["desiredClientVersion"], "acme-1.1.0",
        "{status:#}"
    );
    let data = world
        .query("{ status { services { service heldBack } } }", json!({}))
        .await;
    let held = data["status"]["services"][0]["heldBack"]
        .as_str()
        .unwrap_or_default();
    assert!(held.contains("acme-1.1.0 is known-bad"), "{data:#}");
    let back = chrono::Utc::now();
    world.updaters[1].restart();
    reported_on_1_0_0(&world, 1, back).await;
    world.wait_serving("acme-1.0.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_revert_the_distribution_commits_the_revert_and_others_never_start_it() {
    let mut world = World::start().await;
    world.updaters[1].stop();
    world.work.write(
        "rollout.yaml",
        "# Undo in Git what updaters roll back.\nservices:\n  hello:\n    onFailure: revert\n",
    );
    world
        .work
        .commit("hello: revert what fails", &Person::bob());
    push_unhealthy_source(&world);
    let change = world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    let known_bad = known_bad_on(&world, 1).await;
    let revert = world
        .eventually(
            "the distribution's revert commit on the state remote",
            || async {
                let head = world
                    .remote
                    .git(&["log", "-1", "--format=%an <%ae>%n%B", "main"]);
                head.starts_with("vupdate <vupdate@acme>").then_some(head)
            },
        )
        .await;
    assert!(
        revert.contains("Revert \"hello 1.1.0\": hello acme-1.1.0 is known-bad")
            && revert.contains(&format!("This reverts commit {change}."))
            && revert.contains("failed its health check"),
        "{revert}"
    );
    assert!(
        world
            .remote
            .show("main", "desired/developer.yaml")
            .contains("hello: acme-1.0.0"),
        "Git again says what runs"
    );
    assert_eq!(known_bad["version"], "acme-1.1.0");
    // A pull request desiring it again (the reverted change over the revert) is warned of.
    let reverted = world.remote.git(&["rev-parse", "main"]);
    let plan = world
        .query(
            "query($base: String!, $head: String!) { plan(base: $base, head: $head) { markdown services { service knownBad { version reason } } } }",
            json!({"base": reverted.trim(), "head": change}),
        )
        .await;
    let hello = plan["plan"]["services"]
        .as_array()
        .and_then(|services| services.iter().find(|s| s["service"] == "hello"))
        .unwrap_or_else(|| panic!("hello in the plan: {plan}"));
    assert_eq!(hello["knownBad"][0]["version"], "acme-1.1.0", "{plan}");
    assert!(
        plan["plan"]["markdown"]
            .as_str()
            .is_some_and(|markdown| markdown.contains("known-bad")),
        "{plan}"
    );
    let back = chrono::Utc::now();
    world.updaters[1].restart();
    reported_on_1_0_0(&world, 1, back).await;
    world.wait_serving("acme-1.0.0").await;
}
