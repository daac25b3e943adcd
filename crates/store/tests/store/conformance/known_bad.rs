//! Known-bad versions: recording merges instances and fault reports and writes only what
//! is new, lists filter by distribution, removal forgets.

use vupdate_store::model::known_bad::KnownBadVersion;

use super::Ctx;
use super::fixtures::{at, service};

fn entry(
    distribution: &str,
    svc: &str,
    version: &str,
    instance: &str,
    faults: &[&str],
) -> KnownBadVersion {
    KnownBadVersion {
        distribution: distribution.to_owned(),
        service: service(svc),
        version: version.parse().expect("version"),
        reason: format!("rolled back on {instance}"),
        instances: vec![instance.to_owned()],
        fault_ids: faults.iter().map(|id| (*id).to_owned()).collect(),
        recorded_at: at(10),
        desired_by: None,
    }
}

/// The stored record of jetto's api jetto-1.2.0_1, which must exist.
async fn stored_api(
    known: &vupdate_store::KnownBadVersions<'_>,
) -> vupdate_store::Stored<KnownBadVersion> {
    known
        .get(
            "jetto",
            &service("api"),
            &"jetto-1.2.0_1".parse().expect("version"),
        )
        .await
        .expect("get")
        .expect("known")
}

pub async fn recording_merges_and_writes_only_what_is_new(ctx: Ctx) {
    let known = ctx.store.known_bad_versions();
    let (first, changed) = known
        .record(entry("jetto", "api", "jetto-1.2.0_1", "vm2", &["f2"]))
        .await
        .expect("record");
    assert!(changed);
    assert_eq!(first.instances, ["vm2"]);
    let (merged, changed) = known
        .record(KnownBadVersion {
            reason: "another reason".to_owned(),
            recorded_at: at(99),
            ..entry("jetto", "api", "jetto-1.2.0_1", "vm1", &["f3", "f1"])
        })
        .await
        .expect("record again");
    assert!(changed);
    assert_eq!(merged.instances, ["vm1", "vm2"]);
    assert_eq!(merged.fault_ids, ["f1", "f2", "f3"]);
    // The first reason and time stay.
    assert_eq!(merged.reason, "rolled back on vm2");
    assert_eq!(merged.recorded_at, at(10));
    let before = stored_api(&known).await;
    let (_, changed) = known
        .record(entry("jetto", "api", "jetto-1.2.0_1", "vm1", &["f1"]))
        .await
        .expect("nothing new");
    assert!(!changed);
    let after = stored_api(&known).await;
    assert_eq!(
        before.sequence, after.sequence,
        "nothing new writes nothing"
    );
    assert_eq!(after.record, merged);
    // The commit that desired it is kept once known.
    let (with_commit, changed) = known
        .record(KnownBadVersion {
            desired_by: Some("abc123".to_owned()),
            ..entry("jetto", "api", "jetto-1.2.0_1", "vm1", &[])
        })
        .await
        .expect("record the commit");
    assert!(changed);
    assert_eq!(with_commit.desired_by.as_deref(), Some("abc123"));
    assert_eq!(with_commit.instances, ["vm1", "vm2"]);
}

pub async fn lists_filter_by_distribution_and_removal_forgets(ctx: Ctx) {
    let known = ctx.store.known_bad_versions();
    for (distribution, svc, version) in [
        ("jetto", "web", "jetto-2.0.0_1"),
        ("jetto", "api", "jetto-1.2.0_1"),
        ("kiosk", "api", "kiosk-1.0.0_1"),
    ] {
        known
            .record(entry(distribution, svc, version, "vm1", &[]))
            .await
            .expect("record");
    }
    let listed = |all: Vec<KnownBadVersion>| {
        all.into_iter()
            .map(|entry| format!("{}/{}", entry.service, entry.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(known.list(Some("jetto")).await.expect("list")),
        ["api/jetto-1.2.0_1", "web/jetto-2.0.0_1"]
    );
    assert_eq!(known.list(None).await.expect("list").len(), 3);
    let version = "jetto-1.2.0_1".parse().expect("version");
    assert!(
        known
            .remove("jetto", &service("api"), &version)
            .await
            .expect("remove")
    );
    assert!(
        !known
            .remove("jetto", &service("api"), &version)
            .await
            .expect("again")
    );
    assert_eq!(
        listed(known.list(Some("jetto")).await.expect("list")),
        ["web/jetto-2.0.0_1"]
    );
}

pub async fn racing_recorders_on_two_connections_lose_no_instance(ctx: Ctx) {
    // Replicas recording rollbacks of one version at once (each from an updater's
    // report): every instance and fault report ends in the one record.
    let other = ctx.reopen().await;
    let records = (0..8).map(|n| {
        let store = if n % 2 == 0 { &ctx.store } else { &other };
        async move {
            let vm = format!("vm{n}");
            let fault = format!("f{n}");
            store
                .known_bad_versions()
                .record(entry("jetto", "api", "jetto-1.2.0_1", &vm, &[&fault]))
                .await
                .expect("record")
        }
    });
    let recorded = futures::future::join_all(records).await;
    assert!(recorded.iter().all(|(_, changed)| *changed));
    let stored = stored_api(&ctx.store.known_bad_versions()).await;
    let expected: Vec<String> = (0..8).map(|n| format!("vm{n}")).collect();
    assert_eq!(stored.record.instances, expected);
    assert_eq!(stored.record.fault_ids.len(), 8, "{:?}", stored.record);
}
