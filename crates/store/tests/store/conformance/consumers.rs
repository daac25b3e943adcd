//! Consumers' installed-versions reports: one per consumer, each report replacing the last.

use vupdate_store::model::consumers::ConsumerInstalled;

use super::Ctx;
use super::fixtures::{at, service};

fn report(consumer: &str, version: &str, seconds: i64) -> ConsumerInstalled {
    ConsumerInstalled {
        consumer: consumer.to_owned(),
        versions: [(service("api"), version.parse().expect("version"))]
            .into_iter()
            .collect(),
        time: at(seconds),
    }
}

pub async fn a_report_replaces_the_consumer_s_last_one(ctx: Ctx) {
    let reports = ctx.store.consumer_reports();
    assert_eq!(reports.get("staging").await.expect("get"), None);
    reports
        .set(report("staging", "jetto-1.0.0", 1))
        .await
        .expect("set");
    reports
        .set(report("prod", "jetto-0.9.0", 2))
        .await
        .expect("set");
    let second = report("staging", "jetto-1.1.0", 3);
    reports.set(second.clone()).await.expect("set again");
    assert_eq!(reports.get("staging").await.expect("get"), Some(second));
    assert_eq!(
        reports.get("prod").await.expect("get"),
        Some(report("prod", "jetto-0.9.0", 2))
    );
    assert!(
        reports.set(report("", "jetto-1.0.0", 4)).await.is_err(),
        "a report names its consumer"
    );
}
