//! kill -9 of the distribution during a state-report batch.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vupdate_client::Client;

use crate::support::{Server, empty_state};

/// Sends one report: `api` and `web` on `instance`; `Ok` once the server acknowledged it.
async fn report(admin: &Client, instance: &str) -> Result<Value, vupdate_client::ClientError> {
    let states: Vec<Value> = ["api", "web"]
        .iter()
        .map(|service| {
            json!({
                "instance": instance,
                "service": service,
                "role": null,
                "directory": format!("/srv/{service}"),
                "state": {"time": chrono::Utc::now().to_rfc3339(), "version": "acme-1.0.0", "failuresCount": 0},
            })
        })
        .collect();
    admin
        .graphql(
            "mutation($s: [ServiceStateInput!]!) { setServiceStates(states: $s) }",
            json!({"s": states}),
        )
        .await
}

/// Every (instance, service) the server has a state of.
async fn stored(admin: &Client) -> BTreeSet<(String, String)> {
    let data: Value = admin
        .graphql("{ serviceStates { instance service } }", json!({}))
        .await
        .expect("serviceStates");
    data["serviceStates"]
        .as_array()
        .expect("states")
        .iter()
        .map(|s| {
            (
                s["instance"].as_str().unwrap_or_default().to_owned(),
                s["service"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_report_survives_and_a_cut_one_is_wholly_in_or_wholly_out() {
    let state = empty_state();
    let mut server = Server::start(&Server::config_following(&state, "")).await;
    report(server.admin(), "vm-a").await.expect("acknowledged");
    server.kill9();

    // Cut inside the transaction: every row written, none committed.
    server
        .cut(
            "store.sqlite.uncommitted.service_states",
            |admin| async move { report(&admin, "vm-b").await },
        )
        .await;
    // Cut after the commit, before the answer: the sender will send it again anyway.
    server
        .cut("state-reports.committed", |admin| async move {
            report(&admin, "vm-c").await
        })
        .await;

    server.restart(None).await;
    let pair = |instance: &str, service: &str| (instance.to_owned(), service.to_owned());
    let expected = BTreeSet::from([
        pair("vm-a", "api"),
        pair("vm-a", "web"),
        pair("vm-c", "api"),
        pair("vm-c", "web"),
    ]);
    assert_eq!(stored(server.admin()).await, expected);
    // The store takes reports as before.
    report(server.admin(), "vm-b").await.expect("acknowledged");
    assert_eq!(stored(server.admin()).await.len(), 6);
    server.stop();
}
