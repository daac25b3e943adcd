//! Rollouts by waves through the API: a commit changing the desired version of a service
//! with waves gives it only to instances of waves reached (by name and by labels; an
//! instance that does not say who it is counts as one of the last wave); the rollout is
//! stored, so a restarted server resumes it; a version pushed while the server was stopped
//! is rolled out from what the instances run; a rollback within `maxFailures` is counted
//! by the rollout, not recorded as known-bad, and the next wave gets the version.

use serde_json::{Value, json};

use super::support::{Harness, Options};

const SET_STATES: &str =
    r#"mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }"#;
const ROLLOUTS: &str = "{ status { rollouts { service fromVersion toVersion state currentWave waves { name instances updated failed reachedAt promotedAt } } } }";

/// Waves of `api`: canaries by label, then `vm-2` (and every instance no wave selects).
const ROLLOUT: &str = "waves:\n  - name: canary\n    labels: {ring: canary}\n    healthyFor: 1h\n    maxFailures: 1\n  - name: second\n    instances: [\"vm-2\"]\n    healthyFor: 1h\n";

/// `instance`'s state of api: running `version`, having rolled back `failed` if given.
fn state(instance: &str, labels: &[(&str, &str)], version: &str, failed: Option<&str>) -> Value {
    let labels: Vec<Value> = labels
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!({"instance": instance, "service": "api", "directory": "/var/lib/vupdate/api",
           "labels": labels,
           "state": {"time": chrono::Utc::now().to_rfc3339(), "version": version,
                     "startTime": chrono::Utc::now().to_rfc3339(), "failedVersion": failed}})
}

/// The version of api that `instance` (or an instance that does not say) gets.
async fn desired_for(harness: &Harness, instance: Option<&str>) -> String {
    let data = harness
        .ok(
            &harness.updater,
            "query($i: String) { clientDesiredVersions(instance: $i) { service version } }",
            json!({"i": instance}),
        )
        .await;
    data["clientDesiredVersions"][0]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("api is desired: {data}"))
        .to_owned()
}

async fn commit(harness: &Harness, path: &str, text: &str) {
    harness.work.write(path, text);
    let commit = harness.work.commit(
        &format!("change {path}"),
        &vupdate_test_support::Person::bob(),
    );
    harness.push_and_hook().await;
    harness.wait_in_force(&commit).await;
}

/// Commits api 1.1.0 as the developer's desired version (the rollout's new version).
async fn push_api_1_1(harness: &Harness) {
    commit(
        harness,
        "desired/developer.yaml",
        "versions:\n  api: acme-1.1.0\n",
    )
    .await;
}

async fn report(harness: &Harness, states: Vec<Value>) {
    harness
        .ok(&harness.updater, SET_STATES, json!({"states": states}))
        .await;
}

/// A distribution whose `rollout.yaml` has [`ROLLOUT`]'s waves, with `states` reported.
async fn with_waves(states: Vec<Value>) -> Harness {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    commit(&harness, "rollout.yaml", ROLLOUT).await;
    report(&harness, states).await;
    harness
}

#[tokio::test]
async fn instances_get_the_version_of_their_wave_and_a_restart_resumes_the_rollout() {
    let mut harness = with_waves(vec![
        state("vm-1", &[("ring", "canary")], "acme-1.0.0", None),
        state("vm-2", &[], "acme-1.0.0", None),
        state("vm-3", &[("ring", "main")], "acme-1.0.0", None),
    ])
    .await;
    push_api_1_1(&harness).await;
    assert_eq!(
        desired_for(&harness, Some("vm-1")).await,
        "acme-1.1.0",
        "a canary by its label"
    );
    assert_eq!(
        desired_for(&harness, Some("vm-2")).await,
        "acme-1.0.0",
        "the second wave waits"
    );
    assert_eq!(
        desired_for(&harness, Some("vm-3")).await,
        "acme-1.0.0",
        "no wave selects it: the last"
    );
    assert_eq!(
        desired_for(&harness, None).await,
        "acme-1.0.0",
        "an instance that does not say: the last"
    );
    let data = harness.ok(&harness.developer, ROLLOUTS, json!({})).await;
    let rollout = &data["status"]["rollouts"][0];
    assert_eq!(rollout["service"], "api", "{data:#}");
    assert_eq!(rollout["fromVersion"], "acme-1.0.0", "{data:#}");
    assert_eq!(rollout["toVersion"], "acme-1.1.0", "{data:#}");
    assert_eq!(rollout["state"], "rolling", "{data:#}");
    assert_eq!(rollout["currentWave"], "canary", "{data:#}");
    assert!(rollout["waves"][1]["reachedAt"].is_null(), "{data:#}");

    // A restart resumes it: the second wave still waits. The server answers before its
    // first look at the state repo, and a query then is refused as STATE_UNAVAILABLE.
    harness.stop().await;
    harness.boot(Options::default()).await;
    harness.wait_in_force(&harness.work.rev_parse("HEAD")).await;
    assert_eq!(desired_for(&harness, Some("vm-2")).await, "acme-1.0.0");
    assert_eq!(desired_for(&harness, Some("vm-1")).await, "acme-1.1.0");

    // The canary rolls it back: within maxFailures 1, so the rollout counts it (not
    // known-bad) and the next wave gets it.
    report(
        &harness,
        vec![state(
            "vm-1",
            &[("ring", "canary")],
            "acme-1.0.0",
            Some("acme-1.1.0"),
        )],
    )
    .await;
    harness
        .eventually("vm-2 to get acme-1.1.0", || async {
            (desired_for(&harness, Some("vm-2")).await == "acme-1.1.0").then_some(())
        })
        .await;
    assert_eq!(
        desired_for(&harness, Some("vm-3")).await,
        "acme-1.1.0",
        "no wave selects vm-3: it is in the last, the second"
    );
    let data = harness.ok(&harness.developer, ROLLOUTS, json!({})).await;
    let waves = &data["status"]["rollouts"][0]["waves"];
    assert_eq!(waves[0]["failed"], 1, "{data:#}");
    assert_eq!(waves[1]["instances"], 2, "vm-2 and vm-3: {data:#}");
    assert!(waves[0]["promotedAt"].is_string(), "{data:#}");
    assert_eq!(
        data["status"]["rollouts"][0]["currentWave"], "second",
        "{data:#}"
    );
    let known = harness
        .ok(
            &harness.developer,
            "{ knownBadVersions { version } }",
            json!({}),
        )
        .await;
    assert_eq!(known["knownBadVersions"], json!([]), "{known:#}");
}

#[tokio::test]
async fn a_version_pushed_while_the_server_was_stopped_is_rolled_out_from_what_runs() {
    let mut harness = with_waves(vec![
        state("vm-1", &[("ring", "canary")], "acme-1.0.0", None),
        state("vm-2", &[], "acme-1.0.0", None),
    ])
    .await;
    harness.stop().await;
    harness
        .work
        .write("desired/developer.yaml", "versions:\n  api: acme-1.1.0\n");
    let pushed = harness
        .work
        .commit("api 1.1.0", &vupdate_test_support::Person::bob());
    harness.work.push("origin", "main");
    harness.boot(Options::default()).await;
    harness.wait_in_force(&pushed).await;

    assert_eq!(desired_for(&harness, Some("vm-1")).await, "acme-1.1.0");
    assert_eq!(
        desired_for(&harness, Some("vm-2")).await,
        "acme-1.0.0",
        "the second wave waits, as for a push the server saw"
    );
    let data = harness.ok(&harness.developer, ROLLOUTS, json!({})).await;
    let rollout = &data["status"]["rollouts"][0];
    assert_eq!(rollout["fromVersion"], "acme-1.0.0", "{data:#}");
    assert_eq!(rollout["toVersion"], "acme-1.1.0", "{data:#}");
    assert_eq!(rollout["currentWave"], "canary", "{data:#}");
}

/// The version of api in a subscription's next `next` message.
async fn next_version(socket: &mut super::support::Socket) -> String {
    let message = socket.next_message().await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["clientDesiredVersionsChanged"][0]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("api is desired: {message}"))
        .to_owned()
}

#[tokio::test]
async fn subscribers_in_different_waves_hear_their_own_list_after_one_push() {
    let harness = with_waves(vec![
        state("vm-1", &[("ring", "canary")], "acme-1.0.0", None),
        state("vm-2", &[], "acme-1.0.0", None),
    ])
    .await;
    let query = "subscription($i: String) { clientDesiredVersionsChanged(instance: $i) { service version } }";
    let mut canary = harness.socket(&harness.updater).await;
    canary.subscribe("1", query, json!({"i": "vm-1"})).await;
    let mut second = harness.socket(&harness.updater).await;
    second.subscribe("1", query, json!({"i": "vm-2"})).await;
    assert_eq!(next_version(&mut canary).await, "acme-1.0.0");
    assert_eq!(next_version(&mut second).await, "acme-1.0.0");

    push_api_1_1(&harness).await;
    assert_eq!(
        next_version(&mut canary).await,
        "acme-1.1.0",
        "the canary's wave"
    );
    // An image stored repeats every subscriber's list: the second wave's is still the old
    // version (had the push handed it the canary's list, this would say 1.1.0).
    harness.store_client_image("api", "acme-1.1.0").await;
    assert_eq!(
        next_version(&mut second).await,
        "acme-1.0.0",
        "the second wave waits"
    );
    assert_eq!(next_version(&mut canary).await, "acme-1.1.0");
}

#[tokio::test]
async fn an_instance_heard_before_its_labels_gets_its_waves_list_once_it_reports_them() {
    let harness = with_waves(vec![state("vm-2", &[], "acme-1.0.0", None)]).await;
    push_api_1_1(&harness).await;
    // A VM that joins the canary ring while the rollout runs: subscribed before it reports.
    let query = "subscription($i: String) { clientDesiredVersionsChanged(instance: $i) { service version } }";
    let mut newcomer = harness.socket(&harness.updater).await;
    newcomer.subscribe("1", query, json!({"i": "vm-9"})).await;
    assert_eq!(
        next_version(&mut newcomer).await,
        "acme-1.0.0",
        "its labels unknown: the last wave"
    );
    report(
        &harness,
        vec![state("vm-9", &[("ring", "canary")], "acme-1.0.0", None)],
    )
    .await;
    assert_eq!(
        next_version(&mut newcomer).await,
        "acme-1.1.0",
        "its labels put it in the canary wave, reached"
    );
}
