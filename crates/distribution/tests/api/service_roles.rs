//! A service's role is a field of its own: updaters send `service: api, role: eu`; states,
//! logs and fault reports are read by service (in every role) and by role; `logValues`
//! lists services and roles apart; `status` counts a service's instances in every role.
//! What updaters from before sent (`service: api-eu`, no `role`) is read the same way, as
//! it arrives and, for what they stored, when the distribution starts.

use serde_json::{Value, json};
use vupdate_core::log::Level;
use vupdate_store::model::logs::LogRecord;
use vupdate_store::model::states::{ServiceState, ServiceStateRecord};

use super::support::{Harness, Options};

const SET_STATES: &str =
    r#"mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }"#;

const ADD_LOGS: &str = r#"mutation($service: String!, $role: String, $directory: String!, $message: String!) {
  addLogs(service: $service, role: $role, instance: "vm-1", directory: $directory, process: "7",
          logs: [{time: "2026-12-01T10:00:00.000Z", level: "INFO", unit: "main", message: $message}])
}"#;

/// What an updater from before roles had their own field sent: no `role` at all.
const ADD_LOGS_LEGACY: &str = r#"mutation($service: String!, $directory: String!, $message: String!) {
  addLogs(service: $service, instance: "vm-1", directory: $directory, process: "7",
          logs: [{time: "2026-12-01T10:00:00.000Z", level: "INFO", unit: "main", message: $message}])
}"#;

fn state(instance: &str, service: &str, role: Option<&str>, version: &str) -> Value {
    let name = role.map_or(service.to_owned(), |role| format!("{service}-{role}"));
    json!({"instance": instance, "service": service, "role": role,
           "directory": format!("/var/lib/vupdate/./{name}"),
           "state": {"time": chrono::Utc::now().to_rfc3339(), "version": version}})
}

fn rows(data: &Value, field: &str, columns: &[&str]) -> Vec<String> {
    let mut rows: Vec<String> = data[field]
        .as_array()
        .expect("a list")
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row[c].as_str().unwrap_or("-").to_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn states_logs_and_faults_carry_the_role_apart() {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    let mut legacy = state("vm-3", "api-eu", None, "acme-1.0.0");
    legacy.as_object_mut().expect("object").remove("role");
    harness
        .ok(
            &harness.updater,
            SET_STATES,
            json!({"states": [
                state("vm-1", "api", Some("eu"), "acme-1.0.0"),
                state("vm-2", "api", Some("us"), "acme-0.9.0"),
                state("vm-2", "api", None, "acme-1.0.0"),
                legacy,
            ]}),
        )
        .await;
    let states = |filter: &'static str| {
        let harness = &harness;
        async move {
            let query =
                format!("{{ serviceStates({filter}) {{ instance service role directory }} }}");
            let data = harness.ok(&harness.developer, &query, json!({})).await;
            rows(
                &data,
                "serviceStates",
                &["instance", "service", "role", "directory"],
            )
        }
    };
    assert_eq!(
        states(r#"service: "api""#).await,
        [
            "vm-1/api/eu//var/lib/vupdate/api-eu",
            "vm-2/api/-//var/lib/vupdate/api",
            "vm-2/api/us//var/lib/vupdate/api-us",
            "vm-3/api/eu//var/lib/vupdate/api-eu",
        ],
        "every role of `api`, an older updater's `api-eu` read as `api` in `eu`, directories clean"
    );
    assert_eq!(
        states(r#"service: "api", role: "eu""#).await,
        [
            "vm-1/api/eu//var/lib/vupdate/api-eu",
            "vm-3/api/eu//var/lib/vupdate/api-eu"
        ]
    );

    let api = harness
        .service_status(
            "api",
            "instancesOnDesired instancesNotOnDesired instances { instance role } \
             roles { role instancesOnDesired instancesNotOnDesired }",
        )
        .await;
    assert_eq!(
        (&api["instancesOnDesired"], &api["instancesNotOnDesired"]),
        (&json!(3), &json!(1)),
        "instances of `api` counted across roles: {api}"
    );
    assert_eq!(
        api["roles"],
        json!([
            {"role": null, "instancesOnDesired": 1, "instancesNotOnDesired": 0},
            {"role": "eu", "instancesOnDesired": 2, "instancesNotOnDesired": 0},
            {"role": "us", "instancesOnDesired": 0, "instancesNotOnDesired": 1},
        ]),
        "and counted by role, no role first"
    );

    for (service, role, message) in [("api", Some("eu"), "api in eu"), ("api", None, "plain api")] {
        harness
            .ok(
                &harness.updater,
                ADD_LOGS,
                json!({"service": service, "role": role, "directory": "/srv/./x", "message": message}),
            )
            .await;
    }
    harness
        .ok(
            &harness.updater,
            ADD_LOGS_LEGACY,
            json!({"service": "web-us", "directory": "/srv/web-us", "message": "web in us"}),
        )
        .await;
    let logs = |filter: &'static str| {
        let harness = &harness;
        async move {
            let query =
                format!("{{ logs(filter: {{{filter}}}) {{ service role directory message }} }}");
            let data = harness.ok(&harness.developer, &query, json!({})).await;
            rows(&data, "logs", &["service", "role", "directory", "message"])
        }
    };
    assert_eq!(
        logs(r#"service: "api""#).await,
        ["api/-//srv/x/plain api", "api/eu//srv/x/api in eu"]
    );
    assert_eq!(
        logs(r#"role: "us""#).await,
        ["web/us//srv/web-us/web in us"]
    );
    let values = |field: &'static str| {
        let harness = &harness;
        async move {
            let query = format!("{{ logValues(field: {field}) }}");
            harness.ok(&harness.developer, &query, json!({})).await["logValues"].clone()
        }
    };
    // The distribution's own task logs (its build of `api` fails here) may be listed too.
    let mut services: Vec<Value> = values("SERVICE").await.as_array().expect("list").clone();
    services.retain(|service| service != "distribution");
    assert_eq!(services, [json!("api"), json!("web")], "no `web-us`");
    assert_eq!(values("ROLE").await, json!(["eu", "us"]));

    harness.upload_fault_archive("vm1-api-eu-01").await;
    harness
        .ok(
            &harness.updater,
            "mutation($r: FaultReportInput!) { addFaultReport(report: $r) }",
            json!({"r": {"id": "vm1-api-eu-01", "files": [],
                "info": {"time": "2026-12-01T10:00:00Z", "instance": "vm-1", "service": "api",
                         "serviceRole": "eu", "serviceDirectory": "/var/lib/vupdate/./api-eu",
                         "state": {"time": "2026-12-01T10:00:00Z"}, "logTail": []}}}),
        )
        .await;
    let faults = |filter: &'static str| {
        let harness = &harness;
        async move {
            let query = format!("{{ faults({filter}) {{ id serviceRole serviceDirectory }} }}");
            let data = harness.ok(&harness.developer, &query, json!({})).await;
            rows(&data, "faults", &["id", "serviceRole", "serviceDirectory"])
        }
    };
    assert_eq!(
        faults(r#"service: "api", role: "eu""#).await,
        ["vm1-api-eu-01/eu//var/lib/vupdate/api-eu"]
    );
    assert!(faults(r#"service: "api", role: "us""#).await.is_empty());
    let roles = harness
        .ok(
            &harness.developer,
            r#"{ all: faultRoles, api: faultRoles(service: "api"), web: faultRoles(service: "web") }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        roles,
        json!({"all": ["eu"], "api": ["eu"], "web": []}),
        "the roles the dashboard's fault filter offers"
    );

    let (code, message) = harness
        .fails(
            &harness.updater,
            SET_STATES,
            json!({"states": [state("vm-1", "api", Some("e-u"), "acme-1.0.0")]}),
        )
        .await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("states[0].role"), "{message}");
}

#[tokio::test]
async fn what_older_updaters_stored_is_split_when_the_distribution_starts() {
    let mut harness = Harness::start().await;
    harness.stop().await;
    // As an updater from before stored them: `api-eu` as the service, a `/./` directory.
    let store = vupdate_store::open(&harness.config.store)
        .await
        .expect("the store");
    let time = chrono::Utc::now();
    store
        .service_states()
        .set(vec![ServiceStateRecord {
            state_commit: None,
            labels: Default::default(),
            distribution: "acme".to_owned(),
            instance: "vm-1".to_owned(),
            service: "api-eu".parse().expect("name"),
            role: None,
            directory: "/var/lib/vupdate/./api-eu".to_owned(),
            state: ServiceState {
                time,
                install_time: None,
                start_time: None,
                version: Some("acme-1.0.0".parse().expect("version")),
                update_to_version: None,
                update_error: None,
                failures_count: None,
                last_exit_code: None,
                failed_version: None,
            },
        }])
        .await
        .expect("a legacy state");
    store
        .logs()
        .insert(vec![LogRecord {
            service: "api-eu".parse().expect("name"),
            role: None,
            instance: "vm-1".to_owned(),
            directory: "/var/lib/vupdate/./api-eu".to_owned(),
            process: "7".to_owned(),
            task: None,
            time,
            level: Level::Info,
            unit: "main".to_owned(),
            message: "stored before".to_owned(),
            termination_status: None,
            source_sequence: Some(41),
        }])
        .await
        .expect("a legacy line");
    drop(store);

    harness.boot(Options::default()).await;
    // Log lines get their role first and their clean directory in a second step: both.
    let expected = json!({"serviceStates": [{"directory": "/var/lib/vupdate/api-eu"}],
                          "logs": [{"directory": "/var/lib/vupdate/api-eu", "message": "stored before"}]});
    harness
        .eventually(
            "the older records split and their directories cleaned",
            || async {
                let data = harness
                    .ok(
                        &harness.developer,
                        r#"{ serviceStates(service: "api", role: "eu") { directory }
                         logs(filter: {service: "api", role: "eu"}) { directory message } }"#,
                        json!({}),
                    )
                    .await;
                (data == expected).then_some(())
            },
        )
        .await;
    // The same updater, upgraded, resends its last line: it is known under its new source.
    let resent = harness
        .ok(
            &harness.updater,
            r#"mutation { addLogs(service: "api", role: "eu", instance: "vm-1", directory: "/var/lib/vupdate/api-eu", process: "7",
                 logs: [{sequence: 41, time: "2026-12-01T10:00:00.000Z", level: "INFO", unit: "main", message: "stored before"}]) }"#,
            json!({}),
        )
        .await;
    assert_eq!(resent["addLogs"], 0, "not stored twice");
}
