//! Build states: one per service and target, history newest first, interrupted builds.

use vupdate_store::model::builds::{BuildStatus, BuildTarget};

use super::Ctx;
use super::fixtures::{build, service};

pub async fn set_replaces_and_history_is_newest_first(ctx: Ctx) {
    let builds = ctx.store.build_states();
    builds
        .set(build(
            "api",
            BuildTarget::DeveloperVersion,
            BuildStatus::InProcess,
            0,
        ))
        .await
        .expect("set");
    builds
        .set(build(
            "api",
            BuildTarget::ClientVersion,
            BuildStatus::Success,
            5,
        ))
        .await
        .expect("set");
    builds
        .set(build(
            "api",
            BuildTarget::DeveloperVersion,
            BuildStatus::Success,
            10,
        ))
        .await
        .expect("set");
    builds
        .set(build(
            "web",
            BuildTarget::DeveloperVersion,
            BuildStatus::Failure,
            20,
        ))
        .await
        .expect("set");

    assert_eq!(builds.current(None, None).await.expect("current").len(), 3);
    let api_dev = builds
        .current(Some(&service("api")), Some(BuildTarget::DeveloperVersion))
        .await
        .expect("current");
    assert_eq!(api_dev.len(), 1);
    assert_eq!(api_dev[0].record.status, BuildStatus::Success);
    let history = builds
        .history(
            Some(&service("api")),
            Some(BuildTarget::DeveloperVersion),
            10,
        )
        .await
        .expect("history");
    let statuses: Vec<_> = history
        .iter()
        .map(|h| (h.record.status, h.archive_time.is_some()))
        .collect();
    assert_eq!(
        statuses,
        [
            (BuildStatus::Success, false),
            (BuildStatus::InProcess, true)
        ]
    );
    let all = builds.history(None, None, 3).await.expect("history");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].record.service, service("web"));
    let by_target = builds
        .current(None, Some(BuildTarget::ClientVersion))
        .await
        .expect("current");
    assert_eq!(by_target.len(), 1);
}

pub async fn builds_in_process_fail_at_start(ctx: Ctx) {
    // The original cleared in-process builds by the wrong field, so they stayed "running".
    let builds = ctx.store.build_states();
    builds
        .set(build(
            "api",
            BuildTarget::DeveloperVersion,
            BuildStatus::InProcess,
            0,
        ))
        .await
        .expect("set");
    builds
        .set(build(
            "api",
            BuildTarget::ClientVersion,
            BuildStatus::InProcess,
            0,
        ))
        .await
        .expect("set");
    builds
        .set(build(
            "web",
            BuildTarget::DeveloperVersion,
            BuildStatus::Success,
            0,
        ))
        .await
        .expect("set");
    assert_eq!(builds.interrupt_in_process().await.expect("interrupt"), 2);
    let current = builds.current(None, None).await.expect("current");
    assert!(
        current
            .iter()
            .all(|b| b.record.status != BuildStatus::InProcess)
    );
    let web = builds
        .current(Some(&service("web")), None)
        .await
        .expect("current");
    assert_eq!(web[0].record.status, BuildStatus::Success);
    assert_eq!(builds.interrupt_in_process().await.expect("again"), 0);
}
