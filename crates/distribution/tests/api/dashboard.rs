//! What the dashboard needs from the server: the app and GraphiQL served from the binary
//! (history fallback, cache headers, gzip, nothing from another host), `logs` read
//! forward with `after`, and the filtered lines downloaded as a file.

use serde_json::{Value, json};

use super::support::Harness;

const ADD_LOGS: &str = r#"mutation($service: String!, $instance: String!, $logs: [LogLineInput!]!) {
  addLogs(service: $service, instance: $instance, directory: "/srv", process: "7", logs: $logs)
}"#;

/// Lines `from..=to` of one source, one second apart, every third a warning.
fn lines(from: i64, to: i64) -> Value {
    Value::Array(
        (from..=to)
            .map(|n| {
                let level = if n % 3 == 0 { "WARN" } else { "INFO" };
                json!({"sequence": n, "time": format!("2026-12-01T10:00:{:02}.000Z", n % 60), "level": level, "unit": "main", "message": format!("line {n}")})
            })
            .collect(),
    )
}

async fn messages(harness: &Harness, query: &str) -> Vec<String> {
    let data = harness.ok(&harness.developer, query, json!({})).await;
    data["logs"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["message"].as_str().expect("message").to_owned())
        .collect()
}

#[tokio::test]
async fn logs_read_forward_with_after_and_back_with_before() {
    let harness = Harness::start().await;
    let vars = json!({"service": "api", "instance": "vm-1", "logs": lines(1, 10)});
    harness.ok(&harness.updater, ADD_LOGS, vars).await;
    let all = harness
        .ok(
            &harness.developer,
            r#"{ logs(filter: {service: "api"}) { sequence message } }"#,
            json!({}),
        )
        .await;
    let sequences: Vec<i64> = all["logs"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["sequence"].as_i64().expect("sequence"))
        .collect();
    // Newest first without `after`.
    assert_eq!(sequences.len(), 10);
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");
    let oldest = sequences[9];
    // Forward from the oldest line: the next three, oldest first.
    let forward = messages(
        &harness,
        &format!(
            r#"{{ logs(filter: {{service: "api"}}, after: {oldest}, limit: 3) {{ message }} }}"#
        ),
    )
    .await;
    assert_eq!(forward, ["line 2", "line 3", "line 4"]);
    // Forward with a filter, between two sequences.
    let window = messages(
        &harness,
        &format!(
            r#"{{ logs(filter: {{service: "api", minLevel: "WARN"}}, after: {oldest}, before: {}) {{ message }} }}"#,
            sequences[0]
        ),
    )
    .await;
    assert_eq!(window, ["line 3", "line 6", "line 9"]);
    // Back from the newest: newest first, as before.
    let back = messages(
        &harness,
        &format!(
            r#"{{ logs(filter: {{service: "api"}}, before: {}, limit: 2) {{ message }} }}"#,
            sequences[0]
        ),
    )
    .await;
    assert_eq!(back, ["line 9", "line 8"]);
}

#[tokio::test]
async fn filtered_logs_download_as_a_file_oldest_first() {
    let harness = Harness::start().await;
    for (service, instance) in [("api", "vm-1"), ("api", "vm-2"), ("web", "vm-1")] {
        let vars = json!({"service": service, "instance": instance, "logs": lines(1, 6)});
        harness.ok(&harness.updater, ADD_LOGS, vars).await;
    }
    let response = harness
        .client
        .get(harness.url("/logs/download?service=api&instance=vm-2&find=LINE&minLevel=INFO"))
        .bearer_auth(&harness.developer)
        .send()
        .await
        .expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"logs-api.log\""
    );
    let text = response.text().await.expect("body");
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), 6, "{text}");
    assert_eq!(
        got[0],
        "api vm-2 7 2026-12-01 10:00:01.000 INFO main line 1"
    );
    assert_eq!(
        got[2],
        "api vm-2 7 2026-12-01 10:00:03.000 WARN main line 3"
    );
    assert!(got.iter().all(|l| l.starts_with("api vm-2 ")), "{text}");

    // Who may not, and what is not a filter.
    let anonymous = harness
        .client
        .get(harness.url("/logs/download"))
        .send()
        .await
        .expect("anonymous");
    assert_eq!(anonymous.status(), 401);
    let updater = harness
        .client
        .get(harness.url("/logs/download"))
        .bearer_auth(&harness.updater)
        .send()
        .await
        .expect("updater");
    assert_eq!(updater.status(), 403);
    for bad in ["minLevel=LOUD", "fromTime=yesterday", "colour=red"] {
        let response = harness
            .client
            .get(harness.url(&format!("/logs/download?{bad}")))
            .bearer_auth(&harness.admin)
            .send()
            .await
            .expect("bad filter");
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value =
            serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON error");
        assert_eq!(body["error"]["code"], "BAD_REQUEST", "{bad}");
    }
}

/// `GET path` with optional headers; returns status, headers and body.
async fn get(
    harness: &Harness,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = harness.client.get(harness.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("GET");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.bytes().await.expect("body").to_vec(),
    )
}

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_with_a_history_fallback() {
    let harness = Harness::start().await;
    let (status, headers, root) = get(&harness, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    assert_eq!(headers["cache-control"], "no-cache");
    let root = String::from_utf8(root).expect("UTF-8");
    // A client route gets the same page; the app's router reads the URL (`/logs` and
    // `/faults` are pages, though `/logs/download` and `/faults/…` are API routes).
    for path in ["/settings/accounts", "/logs", "/faults", "/tasks/abc?x=1"] {
        let (status, _, page) = get(&harness, path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(String::from_utf8(page).expect("UTF-8"), root, "{path}");
    }
    // Missing files and the API's own paths are JSON 404s, not the app.
    for path in [
        "/assets/missing-abc123.js",
        "/favicon.ico",
        "/graphql/nothing",
        "/images/x",
    ] {
        let (status, headers, _) = get(&harness, path, &[]).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(headers["content-type"], "application/json", "{path}");
    }
    let post = harness
        .client
        .post(harness.url("/somewhere"))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), 404);
    // GraphiQL and the app load nothing from another host.
    let (status, _, graphiql) = get(&harness, "/graphiql", &[]).await;
    assert_eq!(status, 200);
    let graphiql = String::from_utf8(graphiql).expect("UTF-8");
    for page in [&root, &graphiql] {
        assert!(
            !page.contains("src=\"http") && !page.contains("href=\"http"),
            "{page}"
        );
        assert!(!page.contains("unpkg") && !page.contains("cdn"), "{page}");
    }

    if !vupdate_distribution::http::dashboard_embedded() {
        // Built without Node: a page that says how to build the dashboard.
        assert!(root.contains("built without the dashboard"), "{root}");
        assert!(root.contains("npm run build"), "{root}");
        return;
    }
    assert!(root.contains("<div id=\"root\">"), "{root}");
    // A hashed asset: cached for a year, gzipped when asked, revalidated by ETag.
    let script = root
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a script in index.html");
    assert!(
        script.starts_with("/assets/") && script.ends_with(".js"),
        "{script}"
    );
    let (status, headers, plain) = get(&harness, script, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/javascript");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let (status, gz_headers, packed) = get(&harness, script, &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, 200);
    assert_eq!(gz_headers["content-encoding"], "gzip");
    assert!(
        packed.len() < plain.len(),
        "{} >= {}",
        packed.len(),
        plain.len()
    );
    let etag = headers["etag"].to_str().expect("etag");
    let (status, _, body) = get(&harness, script, &[("if-none-match", etag)]).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert!(graphiql.contains("id=\"graphiql\""), "{graphiql}");
}
