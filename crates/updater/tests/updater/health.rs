//! Health checks with real images and processes: a version that never becomes healthy is
//! rolled back with the probe's evidence in its error and fault reports; a healthy version
//! is kept, and restarted when it stops answering, the reason in its state and report.

use std::fs;

use serde_json::json;
use vupdate_updater::faults::{FaultInfo, FaultReason};
use vupdate_updater::runner::{InstallOutcome, ServiceRunner};
use vupdate_updater::supervisor::Health;

use crate::install::{V1, V2, images, options, v1_then_v2};
use crate::support::*;

/// The reasons of the service's fault reports written so far.
fn fault_reasons(runner: &ServiceRunner) -> Vec<FaultInfo> {
    runner
        .faults()
        .pending()
        .expect("faults")
        .iter()
        .map(|fault| fault.read().expect("fault report").0)
        .collect()
}

fn condition(info: &FaultInfo) -> String {
    match &info.reason {
        FaultReason::Condition(reason) => reason.clone(),
        other => format!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_never_becomes_healthy_is_rolled_back_with_the_evidence() {
    let work = tempfile::tempdir().expect("tempdir");
    // Runs, but never answers: its probe looks for a file it never writes.
    let silent = json!({
        "runService": {
            "command": "sh",
            "args": ["-c", "echo running %%version%%; while :; do sleep 1; done"],
            "stopTimeoutMs": 1000,
            "healthCheck": {
                "command": {"command": "sh", "args": ["-c", "echo no ready file; test -f ready"]},
                "intervalMs": 50,
                "timeoutMs": 2000,
                "startWindowMs": 400
            }
        }
    });
    let images = images(work.path(), &silent);
    let services = work.path().join("services");
    let mut runner = ServiceRunner::open(&services, instance("svc"), options())
        .await
        .expect("open");
    let owner = runner.dir().run_owner();
    match v1_then_v2(&mut runner, &images).await {
        InstallOutcome::RolledBack { error } => assert!(
            error.contains("acme-2.0.0 failed")
                && error.contains("failed its health check (attempt 3)")
                && error.contains("not healthy within its start window of 400 ms")
                && error.contains("expected exit code 0"),
            "{error}"
        ),
        other => panic!("expected a rollback, got {other:?}"),
    }
    wait_for("v1 to run again", || {
        (running_versions(&owner, &[V1, V2]) == [V1]).then_some(())
    })
    .await;
    let reports = wait_for("three fault reports", || {
        let reports = fault_reasons(&runner);
        (reports.len() >= 3).then_some(reports)
    })
    .await;
    for report in &reports {
        assert_eq!(
            report
                .state
                .version
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some(V2)
        );
        let reason = condition(report);
        assert!(
            reason.contains("not healthy within its start window of 400 ms; last probe:"),
            "{reason}"
        );
        assert_eq!(report.state.unhealthy.as_deref(), Some(reason.as_str()));
    }
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_version_is_kept_and_restarted_when_it_stops_answering() {
    let work = tempfile::tempdir().expect("tempdir");
    // Healthy while `ready` exists; each run writes it as it starts.
    let answering = json!({
        "runService": {
            "command": "sh",
            "args": ["-c", "touch ready; echo running %%version%%; while :; do sleep 1; done"],
            "stopTimeoutMs": 1000,
            "healthCheck": {
                "command": {"command": "test", "args": ["-f", "ready"]},
                "intervalMs": 50,
                "healthyAfter": 2,
                "unhealthyAfter": 3,
                "startWindowMs": 20000
            }
        }
    });
    let images = images(work.path(), &answering);
    let services = work.path().join("services");
    let mut runner = ServiceRunner::open(&services, instance("svc"), options())
        .await
        .expect("open");
    let dir = runner.dir().clone();
    let outcome = runner
        .install(&V2.parse().expect("v2"), &images)
        .await
        .expect("install v2");
    assert_eq!(outcome, InstallOutcome::Installed);
    let status = runner.supervisor_status().expect("a supervisor");
    assert_eq!(status.borrow().health, Some(Health::Healthy));
    assert_eq!(status.borrow().starts, 1);
    assert!(fault_reasons(&runner).is_empty());

    // It stops answering: three failed probes in a row restart it.
    fs::remove_file(dir.current().join("ready")).expect("remove ready");
    let reports = wait_for("a fault report for the health check", || {
        let reports = fault_reasons(&runner);
        (!reports.is_empty()).then_some(reports)
    })
    .await;
    let reason = condition(&reports[0]);
    assert!(
        reason.starts_with("health check failed 3 times in a row:") && reason.contains("test"),
        "{reason}"
    );
    // The new run writes `ready` again and is healthy; the reason leaves its state.
    wait_for("the restarted run to be healthy", || {
        let status = status.borrow();
        (status.starts == 2 && status.health == Some(Health::Healthy)).then_some(())
    })
    .await;
    wait_for("the reason to leave the state", || {
        runner.state().borrow().unhealthy.is_none().then_some(())
    })
    .await;
    assert_eq!(runner.state().borrow().failures_count, Some(1));
    runner.stop().await;
}
