//! The six scenarios of issue 7, each in its own world (and the first ones again with the
//! state remote served over HTTP). Every one checks what runs (the
//! version each instance's `hello` answers with), not only what the API says.

use std::time::Instant;

use serde_json::json;
use vupdate_test_support::{MAIN, Person};

use super::world::{Options, World};

/// The `value` of parameter `name` of a task.
fn parameter<'t>(task: &'t serde_json::Value, name: &str) -> &'t str {
    task["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .and_then(|p| p["value"].as_str())
        .unwrap_or_default()
}

/// How many developer builds of `version` ran.
async fn builds_of(world: &World, version: &str) -> usize {
    world
        .tasks("BuildDeveloperVersion")
        .await
        .iter()
        .filter(|t| parameter(t, "version") == version)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merged_pull_request_runs_everywhere_and_its_revert_rolls_back_without_a_build() {
    let world = World::start().await;
    // 1. A branch bumps the desired version; it is merged into main and pushed.
    world.work.git(&["checkout", "-q", "-b", "bump-hello"]);
    world.commit_desired("acme-1.1.0", "hello 1.1.0: a friendlier greeting");
    world.work.git(&["checkout", "-q", MAIN]);
    world.work.git(&[
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge pull request #7 from bump-hello",
        "bump-hello",
    ]);
    let merge = world.work.rev_parse("HEAD");
    let pushed = world.push().await;
    let served = world.wait_serving("acme-1.1.0").await;
    println!(
        "figure: push to both instances serving a new version (build included): {:?}",
        served - pushed
    );
    let status = world
        .eventually("status synced", || async {
            let status = world.hello_status().await;
            (status["synced"] == true).then_some(status)
        })
        .await;
    assert_eq!(status["services"][0]["instancesOnDesired"], 2, "{status:#}");
    assert_eq!(builds_of(&world, "acme-1.1.0").await, 1);

    // 2. The merge is reverted and pushed: the previous version runs again, from its image.
    world.work.git(&["revert", "--no-edit", "-m", "1", &merge]);
    let pushed = world.push().await;
    let served = world.wait_serving("acme-1.0.0").await;
    println!(
        "figure: push of a revert to both instances serving the previous version (no build): {:?}",
        served - pushed
    );
    assert_eq!(
        builds_of(&world, "acme-1.0.0").await,
        1,
        "the kept image is used, nothing is built again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_edit_is_a_commit_by_the_developer_and_converges() {
    let world = World::start().await;
    world.work.git(&["pull", "-q", "origin", MAIN]);
    let head = world.remote.rev_parse(MAIN);
    let data: serde_json::Value = world
        .developer
        .graphql(
            "mutation($e: String!) { setDeveloperDesiredVersions(changes: [{service: \"hello\", version: \"acme-1.2.0\"}], expectedRevision: $e, comment: \"Roll out 1.2.0 to the fleet\") { id } }",
            json!({"e": head}),
        )
        .await
        .expect("the edit");
    let commit = data["setDeveloperDesiredVersions"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        world.remote.rev_parse(MAIN),
        commit,
        "the commit is in the remote"
    );
    let line = world
        .remote
        .git(&["log", "-1", "--format=%an <%ae>|%s", MAIN]);
    assert_eq!(
        line.trim(),
        "Dee Veloper <dev@acme>|Roll out 1.2.0 to the fleet"
    );
    world.wait_serving("acme-1.2.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updater_that_was_offline_goes_straight_to_the_newest_version() {
    let mut world = World::start().await;
    world.updaters[1].stop();
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    world.wait_serving("acme-1.1.0").await;
    world.commit_desired("acme-1.2.0", "hello 1.2.0");
    world.push().await;
    world.wait_serving("acme-1.2.0").await;
    world.updaters[1].restart();
    world.wait_serving("acme-1.2.0").await;
    let offline = &world.updaters[1];
    assert_eq!(offline.serving().as_deref(), Some("acme-1.2.0"));
    let log = offline.log();
    assert!(
        !log.contains("acme-1.1.0"),
        "the offline updater never touched 1.1.0:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_commit_is_reported_with_file_and_line_and_the_fleet_is_untouched() {
    let world = World::start().await;
    world.work.write(
        "desired/developer.yaml",
        "versions:\n  hello: acme-1.1.0\n  ghost: acme-1.0.0\n",
    );
    let bad = world
        .work
        .commit("Add a service nobody declared", &Person::bob());
    world.push().await;
    let status = world
        .eventually("the bad commit reported", || async {
            let status = world.hello_status().await;
            (status["stateRepo"]["tip"] == json!(bad)).then_some(status)
        })
        .await;
    let problem = &status["stateRepo"]["lastError"]["problems"][0];
    assert_eq!(problem["file"], "desired/developer.yaml", "{status:#}");
    assert_eq!(problem["line"], 3, "{status:#}");
    assert_eq!(
        builds_of(&world, "acme-1.1.0").await,
        0,
        "nothing of the bad commit is built"
    );
    for updater in &world.updaters {
        assert_eq!(
            updater.serving().as_deref(),
            Some("acme-1.0.0"),
            "{} untouched",
            updater.instance
        );
    }
    // The next valid push converges.
    world.commit_desired("acme-1.1.0", "Only hello, then");
    world.push().await;
    world.wait_serving("acme-1.1.0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_cannot_start_is_rolled_back_with_a_fault_report() {
    let world = World::start().await;
    // The service's next version exits at once.
    let serve = world.source.read("serve.py");
    world.source.write(
        "serve.py",
        &format!(
            "import sys\nprint('cannot start: missing config', flush=True)\nsys.exit(3)\n{serve}"
        ),
    );
    world
        .source
        .commit("hello: read the config first", &Person::alice());
    world.push_source();
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    let started = Instant::now();
    world.push().await;
    let faults = world
        .eventually("fault reports of hello 1.1.0 from both instances", || async {
            let data = world
                .query("{ faults(service: \"hello\") { instance state { version lastExitCode } logTail } }", json!({}))
                .await;
            let list = data["faults"].as_array().cloned().unwrap_or_default();
            let instances: std::collections::BTreeSet<String> =
                list.iter().filter_map(|f| f["instance"].as_str().map(str::to_owned)).collect();
            (instances.len() == 2).then_some(list)
        })
        .await;
    let fault = &faults[0];
    assert_eq!(fault["state"]["version"], "acme-1.1.0", "{fault:#}");
    assert_eq!(fault["state"]["lastExitCode"], 3, "{fault:#}");
    let tail = fault["logTail"].to_string();
    assert!(tail.contains("cannot start: missing config"), "{fault:#}");
    // Both instances are back on the version that worked.
    world.wait_serving("acme-1.0.0").await;
    println!(
        "figure: broken version pushed to both instances rolled back: {:?}",
        started.elapsed()
    );
    let states = world
        .query("{ serviceStates(service: \"hello\") { instance state { version updateError { error } } } }", json!({}))
        .await;
    println!("states after the rollback: {states:#}");
}

/// The state remote as on a Git host: the distribution clones and fetches it over smart
/// HTTP (`git http-backend`) and pushes its own commits back the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_repo_served_over_http_is_followed_and_edited() {
    let world = World::start_with(Options {
        http: true,
        ..Options::default()
    })
    .await;
    world.commit_desired("acme-1.1.0", "hello 1.1.0");
    world.push().await;
    world.wait_serving("acme-1.1.0").await;
    world.work.git(&["pull", "-q", "origin", MAIN]);
    let head = world.remote.rev_parse(MAIN);
    let data: serde_json::Value = world
        .developer
        .graphql(
            "mutation($e: String!) { setDeveloperDesiredVersions(changes: [{service: \"hello\", version: \"acme-1.2.0\"}], expectedRevision: $e, comment: \"1.2.0 over HTTP\") { id } }",
            json!({"e": head}),
        )
        .await
        .expect("the edit");
    assert_eq!(
        world.remote.rev_parse(MAIN),
        data["setDeveloperDesiredVersions"]["id"]
            .as_str()
            .expect("id"),
        "the distribution pushed its commit over HTTP"
    );
    world.wait_serving("acme-1.2.0").await;
}
