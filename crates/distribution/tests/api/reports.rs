//! What updaters send: service states (seen in `status`), log batches (stored once even
//! when sent twice, followed live over WebSocket) and fault reports with their archive.

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use super::support::{Harness, LIMIT};

const ADD_LOGS: &str = r#"mutation($logs: [LogLineInput!]!) {
  addLogs(service: "api", instance: "vm-1", directory: "/srv/api", process: "4242", logs: $logs)
}"#;

fn lines(range: std::ops::RangeInclusive<i64>) -> Value {
    Value::Array(
        range
            .map(|n| json!({"sequence": n, "time": "2026-12-01T10:00:00.000Z", "level": "INFO", "unit": "main", "message": format!("line {n}")}))
            .collect(),
    )
}

#[tokio::test]
async fn log_lines_sent_twice_are_stored_once() {
    let harness = Harness::start().await;
    let first = harness
        .ok(&harness.updater, ADD_LOGS, json!({"logs": lines(1..=5)}))
        .await;
    assert_eq!(first["addLogs"], 5);
    // The updater did not see the answer and sends an overlapping batch again.
    let again = harness
        .ok(&harness.updater, ADD_LOGS, json!({"logs": lines(3..=8)}))
        .await;
    assert_eq!(again["addLogs"], 3);
    let stored = harness
        .ok(
            &harness.developer,
            r#"{ logs(filter: {service: "api", instance: "vm-1"}) { message } }"#,
            json!({}),
        )
        .await;
    let messages: Vec<&str> = stored["logs"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["message"].as_str().expect("message"))
        .collect();
    assert_eq!(messages.len(), 8, "{messages:?}");
    let (code, message) = harness
        .fails(
            &harness.updater,
            ADD_LOGS,
            json!({"logs": [{"time": "2026-12-01T10:00:00Z", "level": "LOUD", "unit": "main", "message": "x"}]}),
        )
        .await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("logs[0].level"), "{message}");
    let values = harness
        .ok(
            &harness.developer,
            "{ logValues(field: INSTANCE, filter: {service: \"api\"}) }",
            json!({}),
        )
        .await;
    assert_eq!(values["logValues"], json!(["vm-1"]));
}

/// `POST /logs/batches` with `token` and `body`: the status and the answer's JSON.
async fn post_batch(harness: &Harness, token: &str, body: Value) -> (u16, Value) {
    let mut request = harness
        .client
        .post(harness.url("/logs/batches"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /logs/batches");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    let answer = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, answer)
}

fn batch(logs: Value) -> Value {
    json!({"service": "api", "role": null, "instance": "vm-1", "directory": "/srv/api/", "process": "4242", "logs": logs})
}

#[tokio::test]
async fn log_batches_posted_without_graphql_are_stored_once_and_checked_alike() {
    let harness = Harness::start().await;
    let (status, first) = post_batch(&harness, &harness.updater, batch(lines(1..=5))).await;
    assert_eq!((status, &first), (200, &json!({"stored": 5})));
    // Resent, overlapping, and then the same source by GraphQL: each line once.
    let (_, again) = post_batch(&harness, &harness.updater, batch(lines(3..=8))).await;
    assert_eq!(again, json!({"stored": 3}));
    let by_graphql = harness
        .ok(&harness.updater, ADD_LOGS, json!({"logs": lines(7..=9)}))
        .await;
    assert_eq!(by_graphql["addLogs"], 1, "the same source, by either way");
    let stored = harness
        .ok(
            &harness.developer,
            r#"{ logs(filter: {service: "api", instance: "vm-1"}, limit: 20) { message directory process role } }"#,
            json!({}),
        )
        .await;
    let lines_stored = stored["logs"].as_array().expect("lines");
    assert_eq!(lines_stored.len(), 9, "{stored:#}");
    assert_eq!(lines_stored[0]["message"], "line 9");
    assert_eq!(
        lines_stored[8]["directory"], "/srv/api",
        "cleaned as addLogs cleans it"
    );
    assert_eq!(lines_stored[8]["role"], Value::Null);

    // What is wrong is named, and nothing of a refused batch is stored.
    let refusals = [
        (
            json!({"sequence": 20, "time": "2026-12-01T10:00:00Z", "level": "LOUD", "unit": "main", "message": "x"}),
            "logs[0].level",
        ),
        (
            json!({"sequence": 21, "time": "yesterday", "level": "INFO", "unit": "main", "message": "x"}),
            "the body's `logs[0].time`",
        ),
        (
            json!({"sequence": 22, "time": "2026-12-01T10:00:00Z", "levle": "INFO", "unit": "main", "message": "x"}),
            "unknown field `levle`",
        ),
    ];
    for (line, named) in refusals {
        let good = json!({"sequence": 19, "time": "2026-12-01T10:00:00Z", "level": "INFO", "unit": "main", "message": "good"});
        let (status, answer) =
            post_batch(&harness, &harness.updater, batch(json!([good, line]))).await;
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "BAD_REQUEST");
        assert!(message.contains(&named.replace("[0]", "[1]")), "{message}");
    }
    let (status, answer) = post_batch(
        &harness,
        &harness.updater,
        json!({"service": "api", "logs": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing field `instance`")),
        "{answer}"
    );
    let count = harness
        .ok(
            &harness.developer,
            r#"{ logs(filter: {service: "api"}, limit: 20) { sequence } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        count["logs"].as_array().map(Vec::len),
        Some(9),
        "nothing half-stored"
    );

    // Who may send: as for addLogs.
    let (status, answer) = post_batch(&harness, &harness.developer, batch(lines(30..=30))).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    let (status, _) = post_batch(&harness, "", batch(lines(30..=30))).await;
    assert_eq!(status, 401);
}

/// `count` lines from `first` on, each with a message of `width` bytes.
fn wide_lines(first: i64, count: i64, width: usize) -> Value {
    Value::Array(
        (first..first + count)
            .map(|n| json!({"sequence": n, "time": "2026-12-01T10:00:00.000Z", "level": "INFO", "unit": "main", "message": format!("{n:0width$}")}))
            .collect(),
    )
}

#[tokio::test]
async fn a_log_batch_is_taken_up_to_the_graphql_body_limit_and_refused_past_it() {
    let harness = Harness::start().await;
    // About 3 MiB: past axum's own 2 MiB default, within `maxGraphqlBody` (4 MiB).
    let big = batch(wide_lines(1, 3_000, 1_000));
    let size = big.to_string().len();
    assert!((3 << 20..4 << 20).contains(&size), "{size} bytes");
    let (status, answer) = post_batch(&harness, &harness.updater, big).await;
    assert_eq!((status, &answer), (200, &json!({"stored": 3_000})));

    let too_big = batch(wide_lines(10_000, 4_000, 1_000));
    let (status, answer) = post_batch(&harness, &harness.updater, too_big).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("more than the 4194304")),
        "{answer}"
    );
}

/// A graphql-transport-ws session on `/graphql/ws` with `token`.
async fn subscribe(
    harness: &Harness,
    token: &str,
    query: &str,
) -> impl futures::Stream<Item = Value> + Unpin {
    let url = harness.url("/graphql/ws").replacen("http", "ws", 1);
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    socket
        .send(Message::text(init.to_string()))
        .await
        .expect("init");
    let ack = socket.next().await.expect("ack").expect("ack");
    assert_eq!(
        serde_json::from_str::<Value>(ack.to_text().expect("text")).expect("JSON")["type"],
        "connection_ack"
    );
    let start = json!({"type": "subscribe", "id": "1", "payload": {"query": query}});
    socket
        .send(Message::text(start.to_string()))
        .await
        .expect("subscribe");
    Box::pin(socket.filter_map(|message| async move {
        let text = message.ok()?.into_text().ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        (value["type"] == "next" || value["type"] == "error").then_some(value)
    }))
}

#[tokio::test]
async fn log_lines_are_followed_live_over_websocket() {
    let harness = Harness::start().await;
    // Nothing is stored yet: following `after: 0` gets every line stored from here on,
    // however late the server registers the follower (the way a client avoids the race).
    let mut feed = subscribe(
        &harness,
        &harness.developer,
        r#"subscription { logs(filter: {service: "api", find: "LINE 2"}, after: 0) { sequence message } }"#,
    )
    .await;
    harness
        .ok(&harness.updater, ADD_LOGS, json!({"logs": lines(1..=3)}))
        .await;
    let messages = |batch: &Value| -> Vec<String> {
        batch["payload"]["data"]["logs"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|line| line["message"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let next = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("a batch in time")
        .expect("a batch");
    assert_eq!(messages(&next), ["line 2"], "{next}");
    // The follower delivered, so it is registered: these come through the live path.
    harness
        .ok(&harness.updater, ADD_LOGS, json!({"logs": lines(19..=21)}))
        .await;
    let live = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("a live batch in time")
        .expect("a live batch");
    assert_eq!(messages(&live), ["line 20", "line 21"], "{live}");

    let mut refused = subscribe(
        &harness,
        &harness.updater,
        "subscription { logs { message } }",
    )
    .await;
    let error = tokio::time::timeout(LIMIT, refused.next())
        .await
        .expect("an answer")
        .expect("an answer");
    let code = if error["type"] == "error" {
        error["payload"][0]["extensions"]["code"].clone()
    } else {
        error["payload"]["errors"][0]["extensions"]["code"].clone()
    };
    assert_eq!(code, "FORBIDDEN", "{error}");
}

#[tokio::test]
async fn updaters_hear_at_once_when_their_desired_versions_change_and_when_images_arrive() {
    let harness = Harness::start().await;
    let head = harness.remote.rev_parse("main");
    harness.wait_in_force(&head).await;
    let mut feed = subscribe(
        &harness,
        &harness.updater,
        r#"subscription { clientDesiredVersionsChanged(services: ["api"]) { service version } }"#,
    )
    .await;
    let first = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("in time")
        .expect("first");
    assert_eq!(
        first["payload"]["data"]["clientDesiredVersionsChanged"],
        json!([{"service": "api", "version": "acme-1.0.0"}])
    );
    harness
        .ok(
            &harness.developer,
            r#"mutation($e: String!) { setDeveloperDesiredVersions(changes: [{service: "api", version: "acme-1.1.0"}], expectedRevision: $e, comment: "Bump") { id } }"#,
            json!({"e": head}),
        )
        .await;
    let second = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("in time")
        .expect("second");
    assert_eq!(
        second["payload"]["data"]["clientDesiredVersionsChanged"],
        json!([{"service": "api", "version": "acme-1.1.0"}])
    );
    // Its image arriving repeats the list, so an updater waiting for it fetches it now.
    harness.store_client_image("api", "acme-1.1.0").await;
    let third = tokio::time::timeout(LIMIT, feed.next())
        .await
        .expect("in time")
        .expect("third");
    assert_eq!(
        third["payload"]["data"]["clientDesiredVersionsChanged"],
        json!([{"service": "api", "version": "acme-1.1.0"}])
    );
}

const SET_STATES: &str =
    r#"mutation($states: [ServiceStateInput!]!) { setServiceStates(states: $states) }"#;

#[tokio::test]
async fn reported_states_show_which_instances_run_the_desired_version() {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    let now = chrono::Utc::now().to_rfc3339();
    let state = |instance: &str, service: &str, version: &str| {
        json!({"instance": instance, "service": service, "directory": format!("/srv/{service}"),
               "state": {"time": now, "version": version, "failuresCount": 0}})
    };
    let stored = harness
        .ok(
            &harness.updater,
            SET_STATES,
            json!({"states": [state("vm-1", "api", "acme-1.0.0"), state("vm-2", "api", "acme-0.9.0")]}),
        )
        .await;
    assert_eq!(stored["setServiceStates"], 2);
    let api = harness
        .service_status(
            "api",
            "sync instancesOnDesired instancesNotOnDesired instances { instance onDesired }",
        )
        .await;
    assert_eq!(api["instancesOnDesired"], 1);
    assert_eq!(api["instancesNotOnDesired"], 1);
    let (code, message) = harness
        .fails(
            &harness.updater,
            SET_STATES,
            json!({"states": [state("vm-1", "api", "not a version")]}),
        )
        .await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains("states[0].state.version"), "{message}");
}

#[tokio::test]
async fn a_fault_report_needs_its_archive_and_is_added_once() {
    let harness = Harness::start().await;
    let report = json!({
        "id": "vm1-api-0001",
        "info": {"time": "2026-12-01T10:00:00Z", "instance": "vm-1", "service": "api", "serviceDirectory": "/srv/api",
                 "state": {"time": "2026-12-01T10:00:00Z", "version": "acme-1.0.0", "lastExitCode": 134},
                 "logTail": ["starting", "segmentation fault"]},
        "files": [{"path": "core", "size": 3}]
    });
    let add = "mutation($r: FaultReportInput!) { addFaultReport(report: $r) }";
    let (code, message) = harness
        .fails(&harness.updater, add, json!({"r": report}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert!(message.contains("PUT /faults/vm1-api-0001"), "{message}");
    harness.upload_fault_archive("vm1-api-0001").await;
    for _ in 0..2 {
        let added = harness
            .ok(&harness.updater, add, json!({"r": report}))
            .await;
        assert_eq!(added["addFaultReport"], "vm1-api-0001");
    }
    let faults = harness
        .ok(&harness.developer, "{ faults(service: \"api\") { id distribution logTail downloadPath state { lastExitCode } } }", json!({}))
        .await;
    let list = faults["faults"].as_array().expect("faults");
    assert_eq!(list.len(), 1, "added once: {list:?}");
    assert_eq!(list[0]["logTail"][1], "segmentation fault");
    assert_eq!(list[0]["state"]["lastExitCode"], 134);
    let archive = harness
        .client
        .get(harness.url(list[0]["downloadPath"].as_str().expect("path")))
        .bearer_auth(&harness.developer)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(archive.as_ref(), b"zip");
}

#[tokio::test]
async fn an_enrolled_updater_reports_only_its_own_instance() {
    let harness = Harness::start().await;
    harness
        .wait_in_force(&harness.remote.rev_parse("main"))
        .await;
    let issued = harness
        .ok(
            &harness.admin,
            r#"mutation { issueEnrolmentToken(services: ["api"], expires: "1h", uses: 1) { token } }"#,
            json!({}),
        )
        .await;
    let enrolled = harness
        .ok(
            "",
            "mutation($t: String!) { enrolUpdater(token: $t, instance: \"vm-1\") { accessToken } }",
            json!({"t": issued["issueEnrolmentToken"]["token"]}),
        )
        .await;
    let vm1 = enrolled["enrolUpdater"]["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let now = chrono::Utc::now().to_rfc3339();
    let state = |instance: &str| {
        json!({"states": [{"instance": instance, "service": "api", "directory": "/srv/api",
               "state": {"time": now, "version": "acme-1.0.0", "failuresCount": 0}}]})
    };
    let own = harness.ok(&vm1, SET_STATES, state("vm-1")).await;
    assert_eq!(own["setServiceStates"], 1);
    let (code, message) = harness.fails(&vm1, SET_STATES, state("vm-2")).await;
    assert_eq!(code, "FORBIDDEN");
    assert_eq!(
        message,
        "account `updater@vm-1` may report only its own instance `vm-1`, and `states[0].instance` is `vm-2`: set `instance: vm-1` in its updater.yaml, or enrol the VM as `vm-2`"
    );
    let logs = r#"mutation($logs: [LogLineInput!]!) {
      addLogs(service: "api", instance: "vm-2", directory: "/srv/api", process: "1", logs: $logs)
    }"#;
    let (code, message) = harness
        .fails(&vm1, logs, json!({"logs": lines(1..=1)}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    assert!(message.contains("`instance` is `vm-2`"), "{message}");
    let stored = harness
        .ok(
            &harness.developer,
            r#"{ serviceStates(service: "api") { instance } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        stored["serviceStates"],
        json!([{"instance": "vm-1"}]),
        "the refused report stored nothing"
    );
    // The bootstrap updater account (a local updater, or one set up by hand) is not
    // bound to an instance.
    let shared = harness
        .ok(&harness.updater, SET_STATES, state("vm-2"))
        .await;
    assert_eq!(shared["setServiceStates"], 1);
}
