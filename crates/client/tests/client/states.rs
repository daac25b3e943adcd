//! State reports: stored, read back, and replaced by the next report of the instance.

use serde_json::{Value, json};
use vupdate_client::{ServiceStateReport, StateReport, UpdateErrorReport};

use super::support;

fn report(version: &str, failures: u32, error: Option<&str>) -> ServiceStateReport {
    ServiceStateReport {
        state_commit: None,
        labels: Default::default(),
        instance: "vm-1".to_owned(),
        service: "web".to_owned(),
        role: Some("eu".to_owned()),
        directory: "/srv/web-eu".to_owned(),
        state: StateReport {
            time: chrono::Utc::now(),
            install_time: Some(chrono::Utc::now()),
            start_time: Some(chrono::Utc::now()),
            version: Some(version.to_owned()),
            update_to_version: None,
            update_error: error.map(|error| UpdateErrorReport {
                critical: true,
                error: error.to_owned(),
            }),
            failures_count: Some(failures),
            last_exit_code: Some(0),
            failed_version: None,
        },
    }
}

#[tokio::test]
async fn a_report_is_stored_and_replaced_by_the_next_one() {
    let mut server = support::start().await;
    let api = ServiceStateReport {
        state_commit: None,
        labels: Default::default(),
        service: "api".to_owned(),
        role: None,
        directory: "/srv/api".to_owned(),
        ..report("acme-1.0.0", 0, None)
    };
    let stored = server
        .updater
        .set_service_states(&[report("acme-1.0.0_1", 0, None), api])
        .await
        .expect("report");
    assert_eq!(stored, 2);
    let labelled = ServiceStateReport {
        labels: [("ring", "canary"), ("zone", "eu")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..report("acme-1.0.0_2", 3, Some("rolled back"))
    };
    server
        .updater
        .set_service_states(&[labelled])
        .await
        .expect("report again");
    let data: Value = server
        .admin
        .graphql(
            "{ serviceStates(instance: \"vm-1\", service: \"web\", role: \"eu\") { distribution service role directory state { version failuresCount updateError { critical error } } labels { name value } } }",
            json!({}),
        )
        .await
        .expect("states");
    assert_eq!(
        data["serviceStates"],
        json!([{"distribution": "acme", "service": "web", "role": "eu", "directory": "/srv/web-eu",
                "state": {"version": "acme-1.0.0_2", "failuresCount": 3,
                          "updateError": {"critical": true, "error": "rolled back"}},
                "labels": [{"name": "ring", "value": "canary"}, {"name": "zone", "value": "eu"}]}])
    );
    let error = server
        .builder
        .set_service_states(&[report("acme-1.0.0", 0, None)])
        .await
        .expect_err("a builder reports no states");
    assert_eq!(error.code(), Some("FORBIDDEN"), "{error}");
    server.stop().await;
}
