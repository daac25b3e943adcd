//! The server's limits over real HTTP: bodies, heads and query strings too large, GraphQL
//! operations too deep, complex or aliased, WebSocket messages and operations, slow
//! clients, and too many connections or requests. Each refusal is an answer with a stable
//! code, never a connection dropped without a word.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use super::support::{Harness, LIMIT, Options};

/// Small limits everywhere, so each can be passed with a few kilobytes.
const TIGHT: &str = "limits:
  requests:
    maxHeaderBytes: 2KiB
    maxQueryStringBytes: 2KiB
    maxBody: 1KiB
    maxGraphqlBody: 4KiB
    maxImage: 8KiB
    maxFaultArchive: 8KiB
  graphql:
    maxDepth: 6
    maxComplexity: 40
    maxAliases: 2
    maxWebSocketMessage: 4KiB
    maxOperationsPerWebSocket: 1
";

/// A request that holds its place: its body has not all arrived.
const HELD_REQUEST: &str = "POST /graphql HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{";
/// A request answered at once once it has a place.
const HEALTH: &str = "GET /health HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";

#[tokio::test]
async fn a_request_finding_every_place_taken_waits_for_one_to_end() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  requests:\n    max: 2\n    perAddress: 1\n    bodyTimeout: 10m\n",
        ..Options::default()
    })
    .await;
    // Both places: requests whose bodies have not all arrived.
    let slow = HELD_REQUEST;
    let mut held = Vec::new();
    for from in ["127.0.0.3", "127.0.0.5"] {
        let mut stream = connect_from(&harness, from).await;
        stream.write_all(slow.as_bytes()).await.expect("send");
        held.push(stream);
    }
    let probe = HEALTH;
    harness
        .eventually("the server to be full", || async {
            let mut stream = connect_from(&harness, "127.0.0.6").await;
            stream.write_all(probe.as_bytes()).await.expect("send");
            let (status, body) = parse(&read_to_close(&mut stream).await);
            (status == 503 && code(&body) == "SERVER_BUSY").then_some(())
        })
        .await;
    // A request now waits for a place instead of being refused at once...
    let mut waiting = connect_from(&harness, "127.0.0.7").await;
    waiting.write_all(probe.as_bytes()).await.expect("send");
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(200), waiting.read(&mut first)).await;
    assert!(
        early.is_err(),
        "answered before a place was free: {early:?}"
    );
    // ...and is served when one ends within the wait.
    drop(held.pop());
    let (status, body) = parse(&read_to_close(&mut waiting).await);
    assert_eq!(status, 200, "{body}");
}

/// The server's address.
fn address(harness: &Harness) -> SocketAddr {
    harness
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("the harness serves on an address")
}

/// A raw connection to the server from `from` (any 127.x.y.z).
async fn connect_from(harness: &Harness, from: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("address"))
        .expect("bind");
    socket.connect(address(harness)).await.expect("connect")
}

/// Everything the server sends until it closes the connection, within [`LIMIT`].
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(LIMIT, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Status and JSON body of one raw HTTP/1.1 answer.
fn parse(answer: &str) -> (u16, Value) {
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    // A JSON error, or (from `/health`) plain text.
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (status, body)
}

/// The stable code of a REST or GraphQL error body.
fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .or_else(|| body["errors"][0]["extensions"]["code"].as_str())
        .unwrap_or("")
}

/// The JSON body of a response.
async fn json_of(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// Sends `request` (a whole HTTP/1.1 request text) on a new connection; the status and body.
async fn raw(harness: &Harness, request: &str) -> (u16, Value) {
    raw_from(harness, "127.0.0.1", request).await
}

/// [`raw`] from `from` (any 127.x.y.z).
async fn raw_from(harness: &Harness, from: &str, request: &str) -> (u16, Value) {
    let mut stream = connect_from(harness, from).await;
    stream.write_all(request.as_bytes()).await.expect("send");
    parse(&read_to_close(&mut stream).await)
}

/// A request for `/health` that keeps its connection open.
const PROBE: &[u8] = b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n";
/// A request for `/health` that closes its connection after the answer.
const PROBE_AND_CLOSE: &str = "GET /health HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";

/// Asserts that the server closed each of `streams` without sending anything more.
async fn closed_quietly(streams: impl IntoIterator<Item = TcpStream>) {
    for mut stream in streams {
        assert_eq!(
            read_to_close(&mut stream).await,
            "",
            "an idle connection closed quietly"
        );
    }
}

/// A connection from `from` that has been answered once and is now idle, kept alive.
async fn kept_alive(harness: &Harness, from: &str) -> TcpStream {
    let mut stream = connect_from(harness, from).await;
    stream.write_all(PROBE).await.expect("send");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    stream
}

#[tokio::test]
async fn bodies_heads_and_query_strings_past_their_limits_are_refused() {
    let harness = Harness::start_with(Options {
        extra_config: TIGHT,
        ..Options::default()
    })
    .await;
    let big_query = format!("{{ ping }} #{}", "x".repeat(5000));
    // GraphQL, by Content-Length: refused before it is read, as a GraphQL answer.
    let response = harness
        .client
        .post(harness.url("/graphql"))
        .header("content-type", "application/json")
        .body(json!({"query": big_query}).to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    let body = json_of(response).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE",
        "{body}"
    );
    // The same without a length (chunked): refused as it arrives.
    let chunks = vec![Ok::<_, std::io::Error>(
        json!({"query": big_query}).to_string(),
    )];
    let response = harness
        .client
        .post(harness.url("/graphql"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    // A route without its own limit takes `maxBody`, answered the REST way.
    let response = harness
        .client
        .get(harness.url("/health"))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
    // Headers.
    let response = harness
        .client
        .get(harness.url("/health"))
        .header("x-padding", "y".repeat(3000))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 431);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "HEADERS_TOO_LARGE", "{body}");
    // Query strings (GraphQL by GET).
    let response = harness
        .client
        .get(format!(
            "{}?query={}",
            harness.url("/graphql"),
            "x".repeat(3000)
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 414);
    let body = json_of(response).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "URI_TOO_LONG",
        "{body}"
    );
    // Within the limits all is well.
    harness.ok(&harness.developer, "{ ping }", json!({})).await;

    // Uploads take their own limits: an image by Content-Length before a byte is stored,
    // a fault archive as it streams.
    let response = harness
        .client
        .put(harness.url("/images/developer/api/acme-9.9.9"))
        .bearer_auth(&harness.admin)
        .body(vec![0u8; 9000])
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 413);
    let chunks = (0..3).map(|_| Ok::<_, std::io::Error>(vec![0u8; 4000]));
    let response = harness
        .client
        .put(harness.url("/faults/fault-0001"))
        .bearer_auth(&harness.updater)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 413);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
    let response = harness
        .client
        .put(harness.url("/images/developer/api/acme-9.9.9"))
        .bearer_auth(&harness.admin)
        .body(vec![0u8; 8000])
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        response.status(),
        201,
        "an image within the limit is stored"
    );
}

#[tokio::test]
async fn operations_too_deep_complex_or_aliased_are_refused_with_codes() {
    let harness = Harness::start_with(Options {
        extra_config: TIGHT,
        ..Options::default()
    })
    .await;
    let many_fields = format!("{{ {} }}", "ping ".repeat(41));
    let cases = [
        (
            "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }".to_owned(),
            "QUERY_TOO_DEEP",
        ),
        (many_fields, "QUERY_TOO_COMPLEX"),
        ("{ a: ping b: ping c: ping }".to_owned(), "TOO_MANY_ALIASES"),
        ("{ ping(".to_owned(), "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }".to_owned(), "GRAPHQL_VALIDATION_FAILED"),
    ];
    for (query, expected) in &cases {
        let answer = harness.graphql(&harness.admin, query, json!({})).await;
        assert_eq!(code(&answer), *expected, "{query}: {answer}");
        assert!(answer["data"].is_null(), "{query}: {answer}");
    }
    harness
        .ok(&harness.admin, "{ a: ping b: ping }", json!({}))
        .await;
    // The same limits apply on the WebSocket.
    let mut socket = harness.socket(&harness.admin).await;
    socket
        .subscribe("1", "query { a: ping b: ping c: ping }", json!({}))
        .await;
    let message = socket.next_message().await;
    let errors = if message["type"] == "error" {
        message["payload"].clone()
    } else {
        message["payload"]["errors"].clone()
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "TOO_MANY_ALIASES",
        "{message}"
    );
}

#[tokio::test]
async fn websocket_messages_and_operations_past_their_limits_are_refused() {
    let harness = Harness::start_with(Options {
        extra_config: TIGHT,
        ..Options::default()
    })
    .await;
    // One operation per socket: a live subscription takes the only place.
    let mut socket = harness.socket(&harness.developer).await;
    socket
        .subscribe("1", "subscription { logs { message } }", json!({}))
        .await;
    socket
        .subscribe("2", "subscription { logs { message } }", json!({}))
        .await;
    let message = socket.next_message().await;
    assert_eq!(message["id"], "2", "{message}");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "TOO_MANY_OPERATIONS",
        "{message}"
    );
    // Once the first completes, its place is free again.
    socket.send(json!({"type": "complete", "id": "1"})).await;
    socket.subscribe("3", "query { ping }", json!({})).await;
    let message = loop {
        let message = socket.next_message().await;
        if message["id"] == "3" && message["type"] == "next" {
            break message;
        }
    };
    assert_eq!(message["payload"]["data"]["ping"], "pong", "{message}");

    // A message past the size limit closes the socket, saying why.
    let mut socket = harness.socket(&harness.developer).await;
    let padding = "x".repeat(5000);
    socket
        .send_text(
            json!({"type": "subscribe", "id": "9", "payload": {"query": format!("{{ ping }} #{padding}")}})
                .to_string(),
        )
        .await;
    let (close_code, reason) = socket.closed().await;
    assert_eq!(close_code, 1009, "{reason}");
    assert!(reason.contains("too big"), "{reason}");
}

#[tokio::test]
async fn slow_heads_and_stalled_bodies_are_answered_408() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  connections:\n    headerTimeout: 1s\n  requests:\n    bodyTimeout: 1s\n",
        ..Options::default()
    })
    .await;
    // Slowloris: a head that never ends.
    let mut stream = connect_from(&harness, "127.0.0.1").await;
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: test\r\nx-slow: ")
        .await
        .expect("send");
    let (status, body) = parse(&read_to_close(&mut stream).await);
    assert_eq!((status, code(&body)), (408, "REQUEST_TIMEOUT"), "{body}");
    // The same on a kept-alive connection: its head has the head's timeout, not the
    // keep-alive one (75 s by default, past the wait's limit).
    let mut stream = connect_from(&harness, "127.0.0.1").await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("send");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    stream
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\nx-slow: ")
        .await
        .expect("send a part");
    let (status, body) = parse(&read_to_close(&mut stream).await);
    assert_eq!((status, code(&body)), (408, "REQUEST_TIMEOUT"), "{body}");
    // A connection that sends nothing is closed after the head's timeout too.
    let mut silent = connect_from(&harness, "127.0.0.1").await;
    assert_eq!(read_to_close(&mut silent).await, "", "closed quietly");
    // A body that stops: GraphQL (read whole by the limits) and an upload (streamed).
    let mut stream = connect_from(&harness, "127.0.0.1").await;
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"query\":")
        .await
        .expect("send");
    let (status, body) = parse(&read_to_close(&mut stream).await);
    assert_eq!((status, code(&body)), (408, "REQUEST_TIMEOUT"), "{body}");
    let mut stream = connect_from(&harness, "127.0.0.1").await;
    let head = format!(
        "PUT /images/developer/api/acme-9.9.8 HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-length: 100000\r\n\r\nPK",
        harness.admin
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let (status, body) = parse(&read_to_close(&mut stream).await);
    assert_eq!((status, code(&body)), (408, "REQUEST_TIMEOUT"), "{body}");
    // Nothing of the cut upload is visible.
    let response = harness
        .client
        .get(harness.url("/images/developer/api/acme-9.9.8"))
        .bearer_auth(&harness.admin)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 404);
}

/// One answer read off a kept-alive connection: its head and its body, by its length.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if vupdate_test_support::http::whole_message(&answer) {
            return text;
        }
        let read = tokio::time::timeout(LIMIT, stream.read(&mut chunk))
            .await
            .expect("the server answers in time")
            .expect("read");
        assert!(read > 0, "closed before the answer ended: {text:?}");
        answer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_head_timeout_until_its_own() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  connections:\n    headerTimeout: 1s\n    keepAliveTimeout: 4s\n",
        ..Options::default()
    })
    .await;
    let mut stream = kept_alive(&harness, "127.0.0.1").await;
    // Idle for longer than the head's timeout (the time is what is tested): the
    // connection is still served, as an updater's between two reports.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    stream.write_all(PROBE).await.expect("send again");
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    // Past its own timeout it is closed, without an answer: no request had started.
    let rest = read_to_close(&mut stream).await;
    assert_eq!(rest, "", "closed quietly");
}

#[tokio::test]
async fn connections_past_the_limit_per_address_are_answered_503() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  connections:\n    perAddress: 2\n",
        ..Options::default()
    })
    .await;
    let first = connect_from(&harness, "127.0.0.2").await;
    let _second = connect_from(&harness, "127.0.0.2").await;
    let mut third = connect_from(&harness, "127.0.0.2").await;
    third
        .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("send");
    let answer = read_to_close(&mut third).await;
    let (status, body) = parse(&answer);
    assert_eq!(
        (status, code(&body)),
        (503, "TOO_MANY_CONNECTIONS"),
        "{body}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // Another address is not concerned.
    let (status, _) = raw(
        &harness,
        "GET /health HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    // Once one closes, a new connection from the address is served again.
    drop(first);
    harness
        .eventually("a place for 127.0.0.2 again", || async {
            let mut stream = connect_from(&harness, "127.0.0.2").await;
            stream
                .write_all(b"GET /health HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
                .await
                .ok()?;
            let answer = read_to_close(&mut stream).await;
            answer.starts_with("HTTP/1.1 200").then_some(())
        })
        .await;
}

#[tokio::test]
async fn at_the_connection_limit_idle_keep_alive_connections_make_room_and_busy_ones_do_not() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  connections:\n    max: 2\n",
        ..Options::default()
    })
    .await;
    // The harness's own client keeps its connection 500 ms; let it go so that the two
    // below are the only ones.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let idle = [
        kept_alive(&harness, "127.0.0.4").await,
        kept_alive(&harness, "127.0.0.4").await,
    ];
    // Both places are taken by idle keep-alive connections: a new client is served, and
    // the idle ones are closed (their clients reconnect at their next request).
    let (status, _) = raw(&harness, PROBE_AND_CLOSE).await;
    assert_eq!(status, 200, "served although the limit was reached");
    closed_quietly(idle).await;
    // Connections in the middle of a request are never closed for another: past the
    // limit with none idle, a new one is refused.
    harness
        .eventually("503 while both places are busy", || async {
            let mut busy = Vec::new();
            for _ in 0..2 {
                let mut stream = connect_from(&harness, "127.0.0.4").await;
                stream.write_all(b"GET /health HTTP/1.1\r\n").await.ok()?;
                busy.push(stream);
            }
            let (status, body) = raw_from(&harness, "127.0.0.5", PROBE_AND_CLOSE).await;
            (status == 503 && code(&body) == "TOO_MANY_CONNECTIONS").then_some(())
        })
        .await;
}

#[tokio::test]
async fn at_an_address_limit_only_that_address_idle_connections_make_room() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  connections:\n    perAddress: 2\n",
        ..Options::default()
    })
    .await;
    let mut elsewhere = kept_alive(&harness, "127.0.0.9").await;
    let behind_one_nat = [
        kept_alive(&harness, "127.0.0.8").await,
        kept_alive(&harness, "127.0.0.8").await,
    ];
    let (status, _) = raw_from(&harness, "127.0.0.8", PROBE_AND_CLOSE).await;
    assert_eq!(status, 200, "served although its address was at its limit");
    closed_quietly(behind_one_nat).await;
    // Another address's idle connection is not concerned.
    elsewhere.write_all(PROBE).await.expect("send again");
    assert!(
        read_answer(&mut elsewhere)
            .await
            .starts_with("HTTP/1.1 200")
    );
}

#[tokio::test]
async fn requests_past_the_limits_are_refused_while_others_run() {
    let harness = Harness::start_with(Options {
        extra_config: "limits:\n  requests:\n    max: 2\n    perAddress: 1\n",
        ..Options::default()
    })
    .await;
    // A request in progress: its body has not all arrived.
    let slow = HELD_REQUEST;
    let mut held = connect_from(&harness, "127.0.0.3").await;
    held.write_all(slow.as_bytes()).await.expect("send");
    let probe = HEALTH;
    let get = |from: &'static str| {
        let harness = &harness;
        async move {
            let mut stream = connect_from(harness, from).await;
            stream.write_all(probe.as_bytes()).await.expect("send");
            parse(&read_to_close(&mut stream).await)
        }
    };
    let body = harness
        .eventually("the held request to count for its address", || async {
            let (status, body) = get("127.0.0.3").await;
            (status == 429).then_some(body)
        })
        .await;
    assert_eq!(code(&body), "TOO_MANY_REQUESTS", "{body}");
    // Another address still gets in: one place of two is taken.
    let (status, _) = get("127.0.0.4").await;
    assert_eq!(status, 200);
    // With a second request held, the server is full for everyone.
    let mut also_held = connect_from(&harness, "127.0.0.5").await;
    also_held.write_all(slow.as_bytes()).await.expect("send");
    let body = harness
        .eventually("the server to be full", || async {
            let (status, body) = get("127.0.0.6").await;
            (status == 503).then_some(body)
        })
        .await;
    assert_eq!(code(&body), "SERVER_BUSY", "{body}");
    // Finishing a held request frees its place.
    drop(also_held);
    harness
        .eventually("a free place", || async {
            let (status, _) = get("127.0.0.6").await;
            (status == 200).then_some(())
        })
        .await;
}
