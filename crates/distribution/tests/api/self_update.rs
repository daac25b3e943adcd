//! `status { selfUpdate }`: this distribution's program version, the desired and running
//! `distribution` versions, and each updater's version as it reported it.

use serde_json::{Value, json};

use super::support::Harness;

const SET_STATES: &str =
    r#"mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_distribution_and_updater_versions() {
    let harness = Harness::start().await;
    let states: Vec<Value> = [("vm-1", "acme-1.0.0_1"), ("vm-2", "acme-1.0.1_1")]
        .iter()
        .map(|(instance, version)| {
            json!({"instance": instance, "service": "updater", "directory": "/var/lib/vupdate/updater",
                   "state": {"time": chrono::Utc::now().to_rfc3339(), "version": version}})
        })
        .chain([json!({"instance": "vm-1", "service": "api", "directory": "/var/lib/vupdate/api",
                        "state": {"time": chrono::Utc::now().to_rfc3339(), "version": "acme-1.0.0_1"}})])
        .collect();
    harness
        .ok(&harness.updater, SET_STATES, json!({"states": states}))
        .await;
    let data = harness
        .ok(
            &harness.developer,
            "{ status { selfUpdate { programVersion runningVersion desiredVersion pendingVersion
                 refusedVersion last { outcome } updaters { instance version updateError } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["status"]["selfUpdate"],
        json!({
            "programVersion": env!("CARGO_PKG_VERSION"),
            "runningVersion": null,
            "desiredVersion": null,
            "pendingVersion": null,
            "refusedVersion": null,
            "last": null,
            "updaters": [
                {"instance": "vm-1", "version": "acme-1.0.0_1", "updateError": null},
                {"instance": "vm-2", "version": "acme-1.0.1_1", "updateError": null},
            ],
        }),
        "only the updaters, not the services they run"
    );
}
