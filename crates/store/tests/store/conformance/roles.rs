//! Roles as their own field: states, logs and fault reports filter by service and role
//! apart, and records written with `name-role` in the service field (as updaters did
//! before) are split once, keeping what the rest of the store relies on.

use vupdate_core::service::{Role, ServiceName};
use vupdate_store::model::faults::FaultQuery;
use vupdate_store::model::logs::{LogField, LogQuery, LogRecord};
use vupdate_store::model::states::{ServiceStateRecord, StateQuery};
use vupdate_store::{RoleSplit, Stored};

use super::Ctx;
use super::fixtures::{fault, log, role, service, state};
use vupdate_core::log::Level;

fn in_role(mut record: LogRecord, name: &str) -> LogRecord {
    record.role = Some(role(name));
    record
}

fn state_in(
    instance: &str,
    name: &str,
    role_name: Option<&str>,
    seconds: i64,
) -> ServiceStateRecord {
    let mut record = state("jetto", instance, name, seconds);
    record.role = role_name.map(role);
    record.directory = match role_name {
        Some(r) => format!("/var/lib/vupdate/{name}-{r}"),
        None => format!("/var/lib/vupdate/{name}"),
    };
    record
}

fn describe(found: &[Stored<ServiceStateRecord>]) -> Vec<String> {
    found
        .iter()
        .map(|s| {
            let r = &s.record;
            let role = r.role.as_ref().map_or("-", Role::as_str);
            format!("{}/{}/{}/{}", r.instance, r.service, role, r.directory)
        })
        .collect()
}

pub async fn service_and_role_filter_apart(ctx: Ctx) {
    let states = ctx.store.service_states();
    states
        .set(vec![
            state_in("vm-1", "worker", Some("eu"), 0),
            state_in("vm-1", "worker", Some("us"), 0),
            state_in("vm-2", "worker", None, 0),
            state_in("vm-2", "api", None, 0),
        ])
        .await
        .expect("set");
    let by = |service_name: &str, role_name: Option<&str>| StateQuery {
        service: Some(service(service_name)),
        role: role_name.map(role),
        ..StateQuery::default()
    };
    let found = states.query(&by("worker", None)).await.expect("query");
    assert_eq!(
        describe(&found),
        [
            "vm-2/worker/-//var/lib/vupdate/worker",
            "vm-1/worker/eu//var/lib/vupdate/worker-eu",
            "vm-1/worker/us//var/lib/vupdate/worker-us",
        ],
        "every role of the service, the one without a role first"
    );
    let found = states
        .query(&by("worker", Some("eu")))
        .await
        .expect("query");
    assert_eq!(
        describe(&found),
        ["vm-1/worker/eu//var/lib/vupdate/worker-eu"]
    );

    let logs = ctx.store.logs();
    logs.insert(vec![
        in_role(log("worker", "vm-1", Level::Info, 1, "eu one"), "eu"),
        in_role(log("worker", "vm-1", Level::Info, 2, "us one"), "us"),
        log("worker", "vm-2", Level::Info, 3, "plain"),
        in_role(log("api", "vm-2", Level::Info, 4, "api in eu"), "eu"),
    ])
    .await
    .expect("insert");
    let messages = |query: LogQuery| async move {
        let mut found: Vec<String> = logs
            .query(&query)
            .await
            .expect("query")
            .into_iter()
            .map(|r| r.record.message)
            .collect();
        found.sort();
        found
    };
    assert_eq!(
        messages(LogQuery {
            service: Some(service("worker")),
            ..LogQuery::default()
        })
        .await,
        ["eu one", "plain", "us one"]
    );
    assert_eq!(
        messages(LogQuery {
            service: Some(service("worker")),
            role: Some(role("eu")),
            ..LogQuery::default()
        })
        .await,
        ["eu one"]
    );
    assert_eq!(
        logs.distinct(LogField::Service, &LogQuery::default())
            .await
            .expect("services"),
        ["api", "worker"],
        "services without their roles"
    );
    assert_eq!(
        logs.distinct(LogField::Role, &LogQuery::default())
            .await
            .expect("roles"),
        ["eu", "us"]
    );
    let worker = LogQuery {
        service: Some(service("worker")),
        ..LogQuery::default()
    };
    assert_eq!(
        logs.distinct(LogField::Role, &worker).await.expect("roles"),
        ["eu", "us"]
    );
    let stored = logs
        .query(&LogQuery {
            role: Some(role("us")),
            ..LogQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(
        stored[0].record.role,
        Some(role("us")),
        "the role reads back"
    );

    let faults = ctx.store.fault_reports();
    let mut eu = fault("jetto", "fault-eu-1", "worker", 0);
    eu.info.service_role = Some(role("eu"));
    faults.add(eu).await.expect("add");
    faults
        .add(fault("jetto", "fault-plain", "worker", 1))
        .await
        .expect("add");
    let ids = |query: FaultQuery| async move {
        faults
            .query(&query)
            .await
            .expect("query")
            .into_iter()
            .map(|r| r.record.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(FaultQuery {
            service: Some(service("worker")),
            ..FaultQuery::default()
        })
        .await,
        ["fault-plain", "fault-eu-1"]
    );
    assert_eq!(
        ids(FaultQuery {
            service: Some(service("worker")),
            role: Some(role("eu")),
            ..FaultQuery::default()
        })
        .await,
        ["fault-eu-1"]
    );
}

/// How the distribution reads names: `worker` and `payment-api` are declared services.
fn split(name: &str) -> Option<(ServiceName, Role)> {
    let declared = |n: &str| ["worker", "payment", "payment-api"].contains(&n);
    let instance = vupdate_core::service::ServiceInstance::parse(name, declared).ok()?;
    Some((instance.service, instance.role?))
}

fn legacy_state(instance: &str, name: &str, seconds: i64) -> ServiceStateRecord {
    let mut record = state("jetto", instance, name, seconds);
    record.directory = format!("/var/lib/vupdate/./{name}");
    record
}

fn legacy_log(name: &str, message: &str, sequence: i64) -> LogRecord {
    let mut record = log(name, "vm-1", Level::Info, sequence, message);
    record.directory = format!("/var/lib/vupdate/./{name}");
    record.source_sequence = Some(sequence);
    record
}

pub async fn legacy_name_role_records_are_split_once(ctx: Ctx) {
    let (states, logs) = (ctx.store.service_states(), ctx.store.logs());
    // As an updater before roles had their own field reported them.
    states
        .set(vec![
            legacy_state("vm-1", "worker-eu", 0),
            legacy_state("vm-1", "payment-api", 0),
            legacy_state("vm-2", "worker-us", 0),
        ])
        .await
        .expect("legacy states");
    // vm-2 was upgraded already and reported since: its newer state stays.
    let mut newer = state_in("vm-2", "worker", Some("us"), 30);
    newer.state.failures_count = Some(7);
    states.set(vec![newer.clone()]).await.expect("new state");
    let legacy = logs
        .insert(vec![
            legacy_log("worker-eu", "eu one", 1),
            legacy_log("worker-eu", "eu two", 2),
            legacy_log("payment-api", "payment", 1),
            legacy_log("gone-xx", "undeclared", 1),
        ])
        .await
        .expect("legacy logs");

    let done = ctx.store.split_legacy_roles(split).await.expect("split");
    assert_eq!(
        done,
        RoleSplit {
            states: 3,
            log_roles: 2,
            log_directories: 4,
        }
    );
    let all = states.query(&StateQuery::default()).await.expect("states");
    assert_eq!(
        describe(&all),
        [
            "vm-1/payment-api/-//var/lib/vupdate/payment-api",
            "vm-1/worker/eu//var/lib/vupdate/worker-eu",
            "vm-2/worker/us//var/lib/vupdate/worker-us",
        ],
        "split, cleaned, one state per key"
    );
    assert_eq!(all[2].record, newer, "the newer state was kept");

    let eu = logs
        .query(&LogQuery {
            service: Some(service("worker")),
            role: Some(role("eu")),
            ..LogQuery::default()
        })
        .await
        .expect("logs");
    let sequences: Vec<i64> = eu.iter().rev().map(|r| r.sequence).collect();
    assert_eq!(
        sequences,
        legacy[..2],
        "rewritten in place: the same sequences"
    );
    assert!(
        eu.iter()
            .all(|r| r.record.directory == "/var/lib/vupdate/worker-eu")
    );
    assert_eq!(
        logs.last_source_sequence(
            &service("worker"),
            Some(&role("eu")),
            "vm-1",
            "/var/lib/vupdate/worker-eu",
            "100"
        )
        .await
        .expect("last"),
        Some(2),
        "a resent line of the split source is still known"
    );
    assert_eq!(
        logs.distinct(LogField::Service, &LogQuery::default())
            .await
            .expect("services"),
        ["gone-xx", "payment-api", "worker"],
        "a name no declared service explains stays whole"
    );

    // A second call looks only at what was stored since: nothing.
    assert_eq!(
        ctx.store.split_legacy_roles(split).await.expect("again"),
        RoleSplit::default()
    );
    // A legacy updater still reporting is split at the next call, and only it is read.
    logs.insert(vec![legacy_log("worker-eu", "eu three", 3)])
        .await
        .expect("late legacy line");
    let reopened = ctx.reopen().await;
    assert_eq!(
        reopened.split_legacy_roles(split).await.expect("later"),
        RoleSplit {
            states: 0,
            log_roles: 1,
            log_directories: 1,
        },
        "the progress survives a restart"
    );
    assert_eq!(
        logs.count(&LogQuery {
            service: Some(service("worker")),
            role: Some(role("eu")),
            ..LogQuery::default()
        })
        .await
        .expect("count"),
        3
    );
}
