//! Known-bad versions: an updater's state naming the version it rolled back records it,
//! with its fault reports; `clientDesiredVersions` then leaves the service out (updaters
//! keep what they run) and `status` says why; a later commit desiring it anew releases it,
//! and so does `clearKnownBadVersion`.

use serde_json::{Value, json};

use super::support::Harness;

const SET_STATES: &str =
    r#"mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }"#;
const ADD_FAULT: &str = "mutation($r: FaultReportInput!) { addFaultReport(report: $r) }";
const KNOWN_BAD: &str =
    "{ knownBadVersions { service version reason instances faultIds recordedAt } }";
const DESIRED: &str = "{ clientDesiredVersions { service version } }";

/// The state of `api` on `instance`: running `version`, having rolled back `failed`.
fn rolled_back(instance: &str, version: &str, failed: &str) -> Value {
    json!({"instance": instance, "service": "api", "directory": "/var/lib/vupdate/api",
           "state": {"time": chrono::Utc::now().to_rfc3339(), "version": version,
                     "failedVersion": failed,
                     "updateError": {"critical": true,
                                     "error": format!("{failed} failed; rolling back: it failed its health check (attempt 3): not healthy within its start window of 3000 ms")}}})
}

/// `instance` reports that it runs acme-1.0.0 after rolling acme-1.1.0 back.
async fn report_rollback(harness: &Harness, instance: &str) {
    harness
        .ok(
            &harness.updater,
            SET_STATES,
            json!({"states": [rolled_back(instance, "acme-1.0.0", "acme-1.1.0")]}),
        )
        .await;
}

/// The desired client versions as `service=version` lines, as the updater sees them.
async fn desired(harness: &Harness) -> Vec<String> {
    let data = harness.ok(&harness.updater, DESIRED, json!({})).await;
    data["clientDesiredVersions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|entry| {
            format!(
                "{}={}",
                entry["service"].as_str().unwrap_or("-"),
                entry["version"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

async fn desire(harness: &Harness, version: &str) {
    harness.work.write(
        "desired/developer.yaml",
        &format!("versions:\n  api: {version}\n"),
    );
    let commit = harness.work.commit(
        &format!("api {version}"),
        &vupdate_test_support::Person::bob(),
    );
    harness.push_and_hook().await;
    harness.wait_in_force(&commit).await;
}

#[tokio::test]
async fn a_rolled_back_version_is_held_back_until_a_commit_desires_it_anew_or_it_is_cleared() {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    desire(&harness, "acme-1.1.0").await;
    assert_eq!(desired(&harness).await, ["api=acme-1.1.0"]);

    // vm-1's fault report of 1.1.0 arrives first, then its state after the rollback.
    harness.upload_fault_archive("vm1-api-0042").await;
    let report = json!({
        "id": "vm1-api-0042",
        "info": {"time": chrono::Utc::now().to_rfc3339(), "instance": "vm-1", "service": "api",
                 "serviceDirectory": "/var/lib/vupdate/api",
                 "state": {"time": chrono::Utc::now().to_rfc3339(), "version": "acme-1.1.0"},
                 "logTail": ["not healthy"]},
        "files": []
    });
    harness
        .ok(&harness.updater, ADD_FAULT, json!({"r": report}))
        .await;
    report_rollback(&harness, "vm-1").await;
    let data = harness.ok(&harness.developer, KNOWN_BAD, json!({})).await;
    let entry = &data["knownBadVersions"][0];
    assert_eq!(entry["service"], "api", "{data:#}");
    assert_eq!(entry["version"], "acme-1.1.0", "{data:#}");
    assert_eq!(entry["instances"], json!(["vm-1"]), "{data:#}");
    assert_eq!(entry["faultIds"], json!(["vm1-api-0042"]), "{data:#}");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("failed its health check"),
        "{data:#}"
    );
    // Reported again (every state report repeats it), nothing changes.
    report_rollback(&harness, "vm-1").await;
    let again = harness.ok(&harness.developer, KNOWN_BAD, json!({})).await;
    assert_eq!(
        again["knownBadVersions"][0]["recordedAt"],
        entry["recordedAt"]
    );

    // Held back: updaters do not get it, the status says why; under hold Git still wants it.
    assert_eq!(desired(&harness).await, Vec::<String>::new());
    let status = harness
        .service_status("api", "desiredClientVersion heldBack")
        .await;
    assert_eq!(status["desiredClientVersion"], "acme-1.1.0");
    assert!(
        status["heldBack"]
            .as_str()
            .unwrap_or_default()
            .contains("acme-1.1.0 is known-bad"),
        "{status:#}"
    );
    let listed = harness
        .ok(
            &harness.developer,
            "{ status { knownBadVersions { service version } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["status"]["knownBadVersions"][0]["version"],
        "acme-1.1.0"
    );

    // An unrelated commit keeps it held; one that desires it anew releases it.
    harness
        .work
        .write("common.yaml", "# shared settings, edited\n");
    let unrelated = harness
        .work
        .commit("common: a comment", &vupdate_test_support::Person::bob());
    harness.push_and_hook().await;
    harness.wait_in_force(&unrelated).await;
    assert_eq!(desired(&harness).await, Vec::<String>::new());
    desire(&harness, "acme-1.0.0").await;
    assert_eq!(desired(&harness).await, ["api=acme-1.0.0"]);
    desire(&harness, "acme-1.1.0").await;
    harness
        .eventually(
            "a commit desiring acme-1.1.0 anew to release it",
            || async {
                let data = harness.ok(&harness.developer, KNOWN_BAD, json!({})).await;
                data["knownBadVersions"]
                    .as_array()?
                    .is_empty()
                    .then_some(())
            },
        )
        .await;
    assert_eq!(desired(&harness).await, ["api=acme-1.1.0"]);

    // Marked again, then cleared by hand.
    report_rollback(&harness, "vm-2").await;
    assert_eq!(desired(&harness).await, Vec::<String>::new());
    let clear = r#"mutation { clearKnownBadVersion(service: "api", version: "acme-1.1.0") }"#;
    let cleared = harness.ok(&harness.developer, clear, json!({})).await;
    assert_eq!(cleared["clearKnownBadVersion"], true);
    assert_eq!(desired(&harness).await, ["api=acme-1.1.0"]);
    let cleared = harness.ok(&harness.developer, clear, json!({})).await;
    assert_eq!(cleared["clearKnownBadVersion"], false);
}
