//! `limits` in `distribution.yaml`: what one client, and all of them together, may ask of
//! the server before it refuses (connections, requests, bodies, GraphQL operations, password
//! checks). Every refusal is an answer with a stable code; the defaults suit a fleet of a
//! few thousand VMs behind a handful of addresses.

use std::time::Duration;

use serde::Deserialize;

use super::duration::HumanDuration;
use super::size::Size;
use crate::auth::{HashPoolSize, ThrottlePolicy};

/// Every limit, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Open connections.
    pub connections: ConnectionLimits,
    /// Requests in progress, their heads and their bodies.
    pub requests: RequestLimits,
    /// GraphQL operations and the WebSocket.
    pub graphql: GraphqlLimits,
    /// Password hashing and failed password checks.
    pub login: LoginLimits,
}

/// Open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at once (WebSockets included); past it a new connection is answered
    /// `503 TOO_MANY_CONNECTIONS` and closed. Default 2048 (keep it under `ulimit -n`).
    pub max: usize,
    /// Open connections from one address (an IPv6 /64); past it `503
    /// TOO_MANY_CONNECTIONS`. Default 512 (updaters behind one NAT share an address).
    pub per_address: usize,
    /// How long a client may take to send a request's head once it started (and the TLS
    /// handshake, and the first request's head from the connection's start); a slow head is
    /// answered `408 REQUEST_TIMEOUT`. Default 10 s.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may idle between requests before it is closed.
    /// Default 75 s: longer than an updater's report interval (10 s) and its client's pool
    /// idle timeout (60 s), so an updater keeps one connection instead of opening one (a
    /// TLS handshake) per report.
    pub keep_alive_timeout: Duration,
}

/// Requests in progress, their heads and bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Requests in progress at once (a download counts until its last byte); more wait up
    /// to 1 s for a place, then `503 SERVER_BUSY`. Default 512.
    pub max: usize,
    /// Requests in progress from one address; past it `429 TOO_MANY_REQUESTS`. Default 128.
    pub per_address: usize,
    /// Log uploads (`addLogs`) in progress once their body is read, apart from `max`: as
    /// many more wait up to 5 s for a place (past those `503 SERVER_BUSY` at once), so log
    /// batches waiting for the store never take the places of everything else. Default 256.
    pub max_log_uploads: usize,
    /// The bytes of log-upload bodies the server holds at once (its lines parsed from them
    /// take about three times as much): a batch that finds no room waits up to 5 s with the
    /// rest, then `503 SERVER_BUSY`. A `POST /logs/batches` waits before its body is read,
    /// so the body waits in the network, not in memory. Default 64 MiB.
    pub max_log_upload_bytes: u64,
    /// The bytes of all header names and values of a request; past it `431
    /// HEADERS_TOO_LARGE`. Default 16 KiB.
    pub max_header_bytes: u64,
    /// The bytes of a URL's query string; past it `414 URI_TOO_LONG`. Default 16 KiB.
    pub max_query_string_bytes: u64,
    /// How long a request body may send nothing; past it `408 REQUEST_TIMEOUT`. Default 30 s.
    pub body_timeout: Duration,
    /// The body of a request to a route without its own limit (`413 PAYLOAD_TOO_LARGE`).
    /// Default 64 KiB.
    pub max_body: u64,
    /// The body of a GraphQL request. Default 4 MiB.
    pub max_graphql_body: u64,
    /// An uploaded image. Default 4 GiB.
    pub max_image: u64,
    /// An uploaded fault report archive. Default 1 GiB.
    pub max_fault_archive: u64,
    /// An uploaded private file. Default 256 MiB.
    pub max_private_file: u64,
}

/// GraphQL operations and the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphqlLimits {
    /// How deep selections may nest (`QUERY_TOO_DEEP`). Default 16.
    pub max_depth: usize,
    /// How many fields an operation may select, each written field counting one and
    /// fragments counted where they are spread (`QUERY_TOO_COMPLEX`). Default 10,000.
    pub max_complexity: usize,
    /// How many aliased fields an operation may have (`TOO_MANY_ALIASES`). Default 30.
    pub max_aliases: usize,
    /// The largest WebSocket message; a larger one closes the socket with code 1009 and
    /// the limit as the reason. Default 1 MiB.
    pub max_websocket_message: u64,
    /// Operations running at once on one WebSocket; past it an operation is answered with
    /// `TOO_MANY_OPERATIONS`. Default 32.
    pub max_operations_per_websocket: usize,
}

/// Password hashing and failed password checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Hashing threads and queue.
    pub hashing: HashPoolSize,
    /// The throttle of failed password checks.
    pub throttle: ThrottlePolicy,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            connections: ConnectionLimits {
                max: 2048,
                per_address: 512,
                header_timeout: Duration::from_secs(10),
                keep_alive_timeout: Duration::from_secs(75),
            },
            requests: RequestLimits {
                max: 512,
                per_address: 128,
                max_log_uploads: 256,
                max_log_upload_bytes: 64 << 20,
                max_header_bytes: 16 << 10,
                max_query_string_bytes: 16 << 10,
                body_timeout: Duration::from_secs(30),
                max_body: 64 << 10,
                max_graphql_body: 4 << 20,
                max_image: 4 << 30,
                max_fault_archive: 1 << 30,
                max_private_file: 256 << 20,
            },
            graphql: GraphqlLimits {
                max_depth: 16,
                max_complexity: 10_000,
                max_aliases: 30,
                max_websocket_message: 1 << 20,
                max_operations_per_websocket: 32,
            },
            login: LoginLimits {
                hashing: HashPoolSize::default(),
                throttle: ThrottlePolicy::default(),
            },
        }
    }
}

/// `limits` as written: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    connections: RawConnections,
    #[serde(default)]
    requests: RawRequests,
    #[serde(default)]
    graphql: RawGraphql,
    #[serde(default)]
    login: RawLogin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConnections {
    max: Option<usize>,
    per_address: Option<usize>,
    header_timeout: Option<HumanDuration>,
    keep_alive_timeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRequests {
    max: Option<usize>,
    per_address: Option<usize>,
    max_log_uploads: Option<usize>,
    max_log_upload_bytes: Option<Size>,
    max_header_bytes: Option<Size>,
    max_query_string_bytes: Option<Size>,
    body_timeout: Option<HumanDuration>,
    max_body: Option<Size>,
    max_graphql_body: Option<Size>,
    max_image: Option<Size>,
    max_fault_archive: Option<Size>,
    max_private_file: Option<Size>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawGraphql {
    max_depth: Option<usize>,
    max_complexity: Option<usize>,
    max_aliases: Option<usize>,
    #[serde(rename = "maxWebSocketMessage")]
    max_websocket_message: Option<Size>,
    #[serde(rename = "maxOperationsPerWebSocket")]
    max_operations_per_websocket: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLogin {
    hash_workers: Option<usize>,
    hash_queue: Option<usize>,
    free_failures: Option<u32>,
    base_delay: Option<HumanDuration>,
    max_delay: Option<HumanDuration>,
    max_tracked: Option<usize>,
}

impl RawLimits {
    /// The limits with defaults applied; `Err((field, message))` names a value that
    /// cannot work (a zero that would refuse everything).
    pub(crate) fn resolve(self) -> Result<LimitsConfig, (&'static str, String)> {
        let d = LimitsConfig::default();
        let bytes = |value: Option<Size>, default: u64| value.map_or(default, |b| b.0);
        let duration =
            |value: Option<HumanDuration>, default: Duration| value.map_or(default, |d| d.0);
        let (c, r, g, l) = (self.connections, self.requests, self.graphql, self.login);
        let workers = l.hash_workers.unwrap_or(d.login.hashing.workers);
        let limits = LimitsConfig {
            connections: ConnectionLimits {
                max: c.max.unwrap_or(d.connections.max),
                per_address: c.per_address.unwrap_or(d.connections.per_address),
                header_timeout: duration(c.header_timeout, d.connections.header_timeout),
                keep_alive_timeout: duration(
                    c.keep_alive_timeout,
                    d.connections.keep_alive_timeout,
                ),
            },
            requests: RequestLimits {
                max: r.max.unwrap_or(d.requests.max),
                per_address: r.per_address.unwrap_or(d.requests.per_address),
                max_log_uploads: r.max_log_uploads.unwrap_or(d.requests.max_log_uploads),
                max_log_upload_bytes: bytes(
                    r.max_log_upload_bytes,
                    d.requests.max_log_upload_bytes,
                ),
                max_header_bytes: bytes(r.max_header_bytes, d.requests.max_header_bytes),
                max_query_string_bytes: bytes(
                    r.max_query_string_bytes,
                    d.requests.max_query_string_bytes,
                ),
                body_timeout: duration(r.body_timeout, d.requests.body_timeout),
                max_body: bytes(r.max_body, d.requests.max_body),
                max_graphql_body: bytes(r.max_graphql_body, d.requests.max_graphql_body),
                max_image: bytes(r.max_image, d.requests.max_image),
                max_fault_archive: bytes(r.max_fault_archive, d.requests.max_fault_archive),
                max_private_file: bytes(r.max_private_file, d.requests.max_private_file),
            },
            graphql: GraphqlLimits {
                max_depth: g.max_depth.unwrap_or(d.graphql.max_depth),
                max_complexity: g.max_complexity.unwrap_or(d.graphql.max_complexity),
                max_aliases: g.max_aliases.unwrap_or(d.graphql.max_aliases),
                max_websocket_message: bytes(
                    g.max_websocket_message,
                    d.graphql.max_websocket_message,
                ),
                max_operations_per_websocket: g
                    .max_operations_per_websocket
                    .unwrap_or(d.graphql.max_operations_per_websocket),
            },
            login: LoginLimits {
                hashing: HashPoolSize {
                    workers,
                    queue: l.hash_queue.unwrap_or(4 * workers),
                },
                throttle: ThrottlePolicy {
                    free_failures: l.free_failures.unwrap_or(d.login.throttle.free_failures),
                    base_delay: duration(l.base_delay, d.login.throttle.base_delay),
                    max_delay: duration(l.max_delay, d.login.throttle.max_delay),
                    max_tracked: l.max_tracked.unwrap_or(d.login.throttle.max_tracked),
                },
            },
        };
        let positive: [(&'static str, u64); 17] = [
            ("limits.connections.max", limits.connections.max as u64),
            (
                "limits.connections.perAddress",
                limits.connections.per_address as u64,
            ),
            (
                "limits.connections.headerTimeout",
                limits.connections.header_timeout.as_millis() as u64,
            ),
            (
                "limits.connections.keepAliveTimeout",
                limits.connections.keep_alive_timeout.as_millis() as u64,
            ),
            ("limits.requests.max", limits.requests.max as u64),
            (
                "limits.requests.perAddress",
                limits.requests.per_address as u64,
            ),
            (
                "limits.requests.maxLogUploads",
                limits.requests.max_log_uploads as u64,
            ),
            (
                "limits.requests.maxLogUploadBytes",
                limits.requests.max_log_upload_bytes,
            ),
            (
                "limits.requests.maxHeaderBytes",
                limits.requests.max_header_bytes,
            ),
            (
                "limits.requests.bodyTimeout",
                limits.requests.body_timeout.as_millis() as u64,
            ),
            (
                "limits.requests.maxGraphqlBody",
                limits.requests.max_graphql_body,
            ),
            ("limits.graphql.maxDepth", limits.graphql.max_depth as u64),
            (
                "limits.graphql.maxComplexity",
                limits.graphql.max_complexity as u64,
            ),
            (
                "limits.graphql.maxWebSocketMessage",
                limits.graphql.max_websocket_message,
            ),
            (
                "limits.graphql.maxOperationsPerWebSocket",
                limits.graphql.max_operations_per_websocket as u64,
            ),
            (
                "limits.login.hashWorkers",
                limits.login.hashing.workers as u64,
            ),
            (
                "limits.login.maxTracked",
                limits.login.throttle.max_tracked as u64,
            ),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err((
                field,
                "must be more than 0 (it would refuse everything)".to_owned(),
            ));
        }
        Ok(limits)
    }
}
