//! Service states: one per key, filters, the upload cursor, batches.

use vupdate_store::StoreError;
use vupdate_store::model::states::StateQuery;

use super::Ctx;
use super::fixtures::{service, state};

fn keys(
    found: &[vupdate_store::Stored<vupdate_store::model::states::ServiceStateRecord>],
) -> Vec<String> {
    found
        .iter()
        .map(|s| {
            format!(
                "{}/{}/{}",
                s.record.distribution, s.record.service, s.record.instance
            )
        })
        .collect()
}

pub async fn set_replaces_by_key_and_queries_filter(ctx: Ctx) {
    let states = ctx.store.service_states();
    states
        .set(vec![
            state("jetto", "vm-2", "api", 0),
            state("jetto", "vm-1", "api", 0),
            state("jetto", "vm-1", "web", 0),
        ])
        .await
        .expect("set");
    states
        .set(vec![state("kiosk", "vm-9", "api", 0)])
        .await
        .expect("set");
    let mut newer = state("jetto", "vm-1", "api", 30);
    newer.state.failures_count = Some(2);
    // The state commit the updater converged to is kept with the state.
    newer.state_commit = Some("3f1c0a9e5b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e".to_owned());
    states.set(vec![newer.clone()]).await.expect("replace");

    let all = states.query(&StateQuery::default()).await.expect("query");
    assert_eq!(
        keys(&all),
        [
            "jetto/api/vm-1",
            "jetto/api/vm-2",
            "jetto/web/vm-1",
            "kiosk/api/vm-9"
        ]
    );
    assert_eq!(all[0].record, newer, "replaced, not duplicated");
    let by = |query: StateQuery| async move { keys(&states.query(&query).await.expect("query")) };
    assert_eq!(
        by(StateQuery {
            distribution: Some("kiosk".into()),
            ..StateQuery::default()
        })
        .await,
        ["kiosk/api/vm-9"]
    );
    assert_eq!(
        by(StateQuery {
            service: Some(service("api")),
            ..StateQuery::default()
        })
        .await,
        ["jetto/api/vm-1", "jetto/api/vm-2", "kiosk/api/vm-9"]
    );
    assert_eq!(
        by(StateQuery {
            instance: Some("vm-1".into()),
            ..StateQuery::default()
        })
        .await,
        ["jetto/api/vm-1", "jetto/web/vm-1"]
    );
    let exact = StateQuery {
        distribution: Some("jetto".into()),
        service: Some(service("web")),
        role: None,
        instance: Some("vm-1".into()),
        directory: Some("/srv".into()),
        after_sequence: None,
    };
    assert_eq!(by(exact).await, ["jetto/web/vm-1"]);
}

pub async fn a_cursor_reads_in_sequence_order(ctx: Ctx) {
    let states = ctx.store.service_states();
    let first = states
        .set(vec![
            state("jetto", "vm-1", "api", 0),
            state("jetto", "vm-2", "api", 0),
        ])
        .await
        .expect("set");
    let cursor = first[1].sequence;
    assert!(
        states
            .query(&StateQuery {
                after_sequence: Some(cursor),
                ..StateQuery::default()
            })
            .await
            .expect("q")
            .is_empty()
    );
    states
        .set(vec![state("jetto", "vm-2", "api", 10)])
        .await
        .expect("set");
    states
        .set(vec![state("jetto", "vm-1", "api", 20)])
        .await
        .expect("set");
    let changed = states
        .query(&StateQuery {
            after_sequence: Some(cursor),
            ..StateQuery::default()
        })
        .await
        .expect("q");
    assert_eq!(
        keys(&changed),
        ["jetto/api/vm-2", "jetto/api/vm-1"],
        "in the order they changed"
    );
}

pub async fn a_state_batch_with_one_invalid_record_writes_nothing(ctx: Ctx) {
    let states = ctx.store.service_states();
    let mut bad = state("jetto", "vm-2", "api", 0);
    bad.instance = String::new();
    let error = states
        .set(vec![state("jetto", "vm-1", "api", 0), bad])
        .await
        .expect_err("invalid");
    assert!(
        matches!(
            error,
            StoreError::Invalid {
                collection: "service_states",
                index: 1,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        states
            .query(&StateQuery::default())
            .await
            .expect("query")
            .is_empty()
    );
}
