//! Fault reports: exact ids, filters, newest first, lists and time ranges by the report's
//! service, validation, archive and restore.

use vupdate_store::StoreError;
use vupdate_store::model::faults::{FaultFile, FaultQuery, MAX_LOG_TAIL_LINES};

use super::Ctx;
use super::fixtures::{at, days, fault, service};

fn ids(found: &[vupdate_store::Stored<vupdate_store::model::faults::FaultReport>]) -> Vec<&str> {
    found.iter().map(|f| f.record.id.as_str()).collect()
}

async fn seed(ctx: &Ctx) {
    let faults = ctx.store.fault_reports();
    for (distribution, id, svc, seconds) in [
        ("jetto", "abc", "api", 10),
        ("jetto", "ab", "web", 20),
        ("jetto", "abd", "api", 30),
        ("kiosk", "k1", "api", 40),
    ] {
        faults
            .add(fault(distribution, id, svc, seconds))
            .await
            .expect("add");
    }
}

pub async fn an_id_matches_exactly(ctx: Ctx) {
    // The original matched ids with `<=`.
    seed(&ctx).await;
    let faults = ctx.store.fault_reports();
    let found = faults
        .query(&FaultQuery {
            id: Some("abc".into()),
            ..FaultQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(ids(&found), ["abc"]);
    assert_eq!(
        faults
            .get("jetto", "ab")
            .await
            .expect("get")
            .expect("exists")
            .record,
        fault("jetto", "ab", "web", 20)
    );
    assert!(faults.get("kiosk", "ab").await.expect("get").is_none());
    let error = faults
        .add(fault("jetto", "ab", "api", 50))
        .await
        .expect_err("taken");
    assert!(
        matches!(
            error,
            StoreError::Duplicate {
                collection: "fault_reports",
                ..
            }
        ),
        "{error}"
    );
    faults
        .add(fault("kiosk", "ab", "api", 50))
        .await
        .expect("ids are unique per distribution");
}

pub async fn query_by_distribution_service_and_time_newest_first(ctx: Ctx) {
    seed(&ctx).await;
    let faults = ctx.store.fault_reports();
    let q = |query: FaultQuery| async move { faults.query(&query).await.expect("query") };
    assert_eq!(
        ids(&q(FaultQuery::default()).await),
        ["k1", "abd", "ab", "abc"]
    );
    assert_eq!(
        ids(&q(FaultQuery {
            distribution: Some("jetto".into()),
            ..FaultQuery::default()
        })
        .await),
        ["abd", "ab", "abc"]
    );
    assert_eq!(
        ids(&q(FaultQuery {
            service: Some(service("api")),
            ..FaultQuery::default()
        })
        .await),
        ["k1", "abd", "abc"]
    );
    let window = FaultQuery {
        from_time: Some(at(20)),
        to_time: Some(at(30)),
        ..FaultQuery::default()
    };
    assert_eq!(ids(&q(window).await), ["abd", "ab"]);
    assert_eq!(
        ids(&q(FaultQuery {
            limit: Some(1),
            ..FaultQuery::default()
        })
        .await),
        ["k1"]
    );
    let first = q(FaultQuery {
        id: Some("ab".into()),
        ..FaultQuery::default()
    })
    .await;
    let cursor = FaultQuery {
        after_sequence: Some(first[0].sequence),
        ..FaultQuery::default()
    };
    assert_eq!(
        ids(&q(cursor).await),
        ["abd", "k1"],
        "a cursor reads in storage order"
    );
}

pub async fn time_range_and_lists_filter_on_the_report_service(ctx: Ctx) {
    // The original's start/end times filtered on a `service` field that reports do not have.
    seed(&ctx).await;
    let faults = ctx.store.fault_reports();
    assert_eq!(
        faults.distributions().await.expect("distributions"),
        ["jetto", "kiosk"]
    );
    assert_eq!(
        faults.services(None).await.expect("services"),
        ["api", "web"]
    );
    assert_eq!(
        faults.services(Some("kiosk")).await.expect("services"),
        ["api"]
    );
    assert_eq!(
        faults.time_range(None, None).await.expect("range"),
        Some((at(10), at(40)))
    );
    assert_eq!(
        faults
            .time_range(Some("jetto"), Some(&service("api")))
            .await
            .expect("range"),
        Some((at(10), at(30)))
    );
    assert_eq!(
        faults
            .time_range(None, Some(&service("web")))
            .await
            .expect("range"),
        Some((at(20), at(20)))
    );
    assert_eq!(
        faults
            .time_range(Some("kiosk"), Some(&service("web")))
            .await
            .expect("range"),
        None
    );
}

pub async fn invalid_reports_are_refused(ctx: Ctx) {
    let faults = ctx.store.fault_reports();
    let mut long = fault("jetto", "f1", "api", 0);
    long.info.log_tail = vec!["x".to_owned(); MAX_LOG_TAIL_LINES + 1];
    let mut escaping = fault("jetto", "f2", "api", 0);
    escaping.files.push(FaultFile {
        path: "../../etc/passwd".to_owned(),
        size: 1,
    });
    let mut absolute = fault("jetto", "f3", "api", 0);
    absolute.files = vec![FaultFile {
        path: "/etc/passwd".to_owned(),
        size: 1,
    }];
    for (report, words) in [
        (long, "log lines"),
        (escaping, "`..`"),
        (absolute, "relative"),
    ] {
        let error = faults.add(report).await.expect_err("invalid");
        assert!(
            matches!(
                error,
                StoreError::Invalid {
                    collection: "fault_reports",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains(words), "{error}");
    }
    let mut full = fault("jetto", "f4", "api", 0);
    full.info.log_tail = vec!["x".to_owned(); MAX_LOG_TAIL_LINES];
    faults.add(full).await.expect("500 lines are fine");
}

pub async fn remove_and_restore_a_report(ctx: Ctx) {
    seed(&ctx).await;
    let faults = ctx.store.fault_reports();
    let stored = faults
        .get("jetto", "abc")
        .await
        .expect("get")
        .expect("exists");
    assert!(faults.remove("jetto", "abc").await.expect("remove"));
    assert_eq!(
        ids(&faults.query(&FaultQuery::default()).await.expect("query")),
        ["k1", "abd", "ab"]
    );
    ctx.clock.advance(days(2));
    let restored = faults.restore(stored.sequence).await.expect("restore");
    assert_eq!(restored.record, stored.record);
    assert_eq!(
        faults
            .query(&FaultQuery::default())
            .await
            .expect("query")
            .len(),
        4
    );
}
