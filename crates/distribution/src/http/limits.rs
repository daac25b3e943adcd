//! The request limits (`limits.requests` in `distribution.yaml`): one layer over every
//! route, so a route added later is covered without a line of its own.
//!
//! In order, a request is refused when:
//! - its query string or its headers are too large: `414 URI_TOO_LONG`,
//!   `431 HEADERS_TOO_LARGE`;
//! - its address has `perAddress` requests in progress: `429 TOO_MANY_REQUESTS`; the
//!   server has `max` and none ends within [`PLACE_WAIT`]: `503 SERVER_BUSY` (a request
//!   counts until its response's last byte is sent, so slow downloads count too);
//! - it uploads log lines (`POST /logs/batches`, or `addLogs`, see [`log_uploads`]): it
//!   leaves the `max` places for one of `maxLogUploads` places of its own and its body's
//!   share of `maxLogUploadBytes`, waiting for both at most [`LOG_UPLOAD_WAIT`], then `503
//!   SERVER_BUSY`; so log batches waiting for the store never take the places state
//!   reports and everything else need, and what they hold is bounded in bytes whatever
//!   their size. As many may wait as may run, past that `503 SERVER_BUSY` at once. A
//!   `POST /logs/batches` waits before its body is read (its body waits in the network);
//!   an `addLogs` is told apart only by its body, so it waits with its body read;
//! - its body is larger than its route allows (by `Content-Length` before a byte is read,
//!   or as it arrives): `413 PAYLOAD_TOO_LARGE`; it sends nothing for `bodyTimeout`:
//!   `408 REQUEST_TIMEOUT`.
//!
//! Bodies of GraphQL and of routes without their own limit are read whole here (they are
//! small); image, fault and private-file uploads stream on to their handlers with an idle
//! timeout ([`BodyTimeout`]), and their stores count the bytes against the same limits.
//! Refusals on `/graphql` are GraphQL responses (`errors[].extensions.code`); elsewhere
//! `{"error": {"code", "message"}}`; both carry `Retry-After` where waiting helps.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{AddressSlot, AddressSlots, ApiError, ClientAddress, log_uploads};
use crate::auth::ClientKey;
use crate::config::RequestLimits;

/// How long a client refused for load is told to wait.
const BUSY_RETRY: Duration = Duration::from_secs(1);
/// How long a request waits for a place when `max` are in progress, its body not yet read:
/// a burst (a fleet's reports while the machine stalls for a few hundred milliseconds)
/// waits it out instead of being refused; a server out of capacity for longer still
/// refuses within a second.
const PLACE_WAIT: Duration = Duration::from_secs(1);
/// How long a log upload waits for a place among `maxLogUploads` and for its bytes: as
/// long as the store lets a batch wait for room behind its writer. A batch refused comes
/// again and is read again, which costs the CPU the writer and the state reports need;
/// one waiting costs a task (at most `maxLogUploads` wait), and an `addLogs` its body.
const LOG_UPLOAD_WAIT: Duration = Duration::from_secs(5);

/// The layer's shared state: the limits and the requests in progress.
#[derive(Clone)]
pub struct RequestGate {
    limits: RequestLimits,
    running: Arc<Semaphore>,
    /// Log uploads in progress (not in `running` then).
    log_uploads: Arc<Semaphore>,
    /// Log uploads waiting for a place in `log_uploads` or for their bytes.
    log_uploads_waiting: Arc<Semaphore>,
    /// The KiB of log-upload bodies held (`maxLogUploadBytes`), by the log uploads in
    /// progress.
    log_upload_kib: Arc<Semaphore>,
    by_address: AddressSlots,
}

impl RequestGate {
    /// A gate with nothing in progress.
    pub fn new(limits: RequestLimits) -> RequestGate {
        RequestGate {
            limits,
            running: Arc::new(Semaphore::new(limits.max)),
            log_uploads: Arc::new(Semaphore::new(limits.max_log_uploads)),
            log_uploads_waiting: Arc::new(Semaphore::new(limits.max_log_uploads)),
            log_upload_kib: Arc::new(Semaphore::new(budget_kib(&limits) as usize)),
            by_address: AddressSlots::default(),
        }
    }

    /// A log upload's share of `maxLogUploadBytes`, in KiB: all of it for a body larger
    /// than all of it (which then runs alone).
    fn log_upload_share(&self, bytes: u64) -> u32 {
        kib(bytes).clamp(1, budget_kib(&self.limits)) as u32
    }
}

/// `maxLogUploadBytes` in KiB, as much as a semaphore holds and one upload may ask for.
fn budget_kib(limits: &RequestLimits) -> u64 {
    kib(limits.max_log_upload_bytes)
        .min(Semaphore::MAX_PERMITS as u64)
        .min(u64::from(u32::MAX))
}

/// `bytes` in KiB, rounded up.
fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

/// Which body limit applies to a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Graphql,
    /// `POST /logs/batches`: a batch of lines, bounded as an `addLogs` request is.
    Logs,
    /// `POST /hooks/git`: a Git host's push payload (its list of commits), bounded as a
    /// GraphQL request, since its signature covers it whole.
    Hook,
    Image,
    Fault,
    PrivateFile,
    Other,
}

impl Route {
    fn of(path: &str) -> Route {
        if path == "/graphql" || path.starts_with("/graphql/") {
            Route::Graphql
        } else if path == "/logs/batches" {
            Route::Logs
        } else if path == "/hooks/git" {
            Route::Hook
        } else if path.starts_with("/images/") {
            Route::Image
        } else if path.starts_with("/faults/") {
            Route::Fault
        } else if path.starts_with("/private-files/") {
            Route::PrivateFile
        } else {
            Route::Other
        }
    }

    /// The largest body, and whether it streams on to the handler.
    fn body_limit(self, limits: &RequestLimits) -> (u64, bool) {
        match self {
            Route::Graphql | Route::Logs | Route::Hook => (limits.max_graphql_body, false),
            Route::Other => (limits.max_body, false),
            Route::Image => (limits.max_image, true),
            Route::Fault => (limits.max_fault_archive, true),
            Route::PrivateFile => (limits.max_private_file, true),
        }
    }
}

/// The middleware (see the module doc).
pub async fn enforce(State(gate): State<RequestGate>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    let route = Route::of(&path);
    let refuse = |error: ApiError| {
        if route == Route::Graphql {
            error.into_graphql_response()
        } else {
            error.into_response()
        }
    };
    if let Err(error) = check_head(&gate.limits, &request) {
        return refuse(error);
    }
    let client = ClientAddress::of(request.extensions()).0;
    let mut hold = match admit(&gate, client).await {
        Ok(hold) => hold,
        Err(error) => return refuse(error),
    };
    let (limit, streams) = route.body_limit(&gate.limits);
    let (parts, body) = request.into_parts();
    let length = content_length(&parts.headers);
    if let Some(length) = length
        && length > limit
    {
        return refuse(too_large(length, limit));
    }
    let body = if streams {
        Body::new(IdleTimeout::new(body, gate.limits.body_timeout))
    } else {
        // A batch to the updaters' route is known before its body is read: it waits for
        // its room with the body still in the network.
        let known_log_upload = route == Route::Logs && parts.method == Method::POST;
        if known_log_upload
            && let Err(error) = hold
                .move_to_log_uploads(&gate, length.unwrap_or(limit))
                .await
        {
            return refuse(error);
        }
        let bytes = match read_small(body, limit, length, gate.limits.body_timeout).await {
            Ok(bytes) => bytes,
            Err(error) => return refuse(error),
        };
        if known_log_upload {
            // A body sent without its length took the route's limit; it keeps its own.
            hold.keep_log_upload_share(&gate, bytes.len() as u64);
        } else if route == Route::Graphql
            && log_uploads::is_log_upload(&bytes)
            && let Err(error) = hold.move_to_log_uploads(&gate, bytes.len() as u64).await
        {
            return refuse(error);
        }
        Body::from(bytes)
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    response.map(|body| Body::new(Held { body, _hold: hold }))
}

/// The query string and header limits.
fn check_head(limits: &RequestLimits, request: &Request) -> Result<(), ApiError> {
    let query = request.uri().query().map_or(0, str::len) as u64;
    if query > limits.max_query_string_bytes {
        return Err(ApiError::refusal(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            format!(
                "the query string has {query} bytes, more than the {} allowed; send large GraphQL operations by POST",
                limits.max_query_string_bytes
            ),
        ));
    }
    let headers: u64 = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().len() + value.len() + 4) as u64)
        .sum();
    if headers > limits.max_header_bytes {
        return Err(ApiError::refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            format!(
                "the request's headers have {headers} bytes, more than the {} allowed",
                limits.max_header_bytes
            ),
        ));
    }
    Ok(())
}

/// A request's places among those in progress, given back when its response ends.
struct Hold {
    /// Among `max`, or among `maxLogUploads` for a log upload.
    _place: Option<OwnedSemaphorePermit>,
    /// A log upload's share of `maxLogUploadBytes`.
    log_upload_kib: Option<OwnedSemaphorePermit>,
    _address: Option<AddressSlot>,
}

impl Hold {
    /// Gives back the request's place among `max` and takes one among the log uploads,
    /// then `bytes`' share of their bytes, waiting for them (in that order, so no upload
    /// holds bytes while it waits for a place) unless `maxLogUploads` others already wait.
    async fn move_to_log_uploads(
        &mut self,
        gate: &RequestGate,
        bytes: u64,
    ) -> Result<(), ApiError> {
        self._place = None;
        let share = gate.log_upload_share(bytes);
        let busy = LogUploadBusy { gate, bytes };
        let at_once = Arc::clone(&gate.log_uploads)
            .try_acquire_owned()
            .ok()
            .and_then(|place| {
                let kib = Arc::clone(&gate.log_upload_kib)
                    .try_acquire_many_owned(share)
                    .ok()?;
                Some((place, kib))
            });
        let (place, kib) = match at_once {
            Some(room) => room,
            None => {
                // As many may wait as may run.
                let Ok(_in_line) = Arc::clone(&gate.log_uploads_waiting).try_acquire_owned() else {
                    return Err(busy.places("and as many more wait for room"));
                };
                let deadline = tokio::time::Instant::now() + LOG_UPLOAD_WAIT;
                let place = wait_until(&gate.log_uploads, 1, deadline)
                    .await
                    .ok_or_else(|| {
                        busy.places(&format!(
                            "and none ended within {} s",
                            LOG_UPLOAD_WAIT.as_secs()
                        ))
                    })?;
                let kib = wait_until(&gate.log_upload_kib, share, deadline)
                    .await
                    .ok_or_else(|| busy.bytes())?;
                (place, kib)
            }
        };
        self._place = Some(place);
        self.log_upload_kib = Some(kib);
        Ok(())
    }

    /// Gives back what a log upload's share took beyond its body of `bytes` (a body sent
    /// without its length takes the route's limit until it is read).
    fn keep_log_upload_share(&mut self, gate: &RequestGate, bytes: u64) {
        let share = gate.log_upload_share(bytes) as usize;
        if let Some(kib) = &mut self.log_upload_kib
            && let Some(excess) = kib.num_permits().checked_sub(share).filter(|n| *n > 0)
        {
            drop(kib.split(excess));
        }
    }
}

/// Why a log upload found no room, for its refusal.
struct LogUploadBusy<'a> {
    gate: &'a RequestGate,
    bytes: u64,
}

impl LogUploadBusy<'_> {
    /// No place among `maxLogUploads`, `why`.
    fn places(&self, why: &str) -> ApiError {
        server_busy(format!(
            "the server is taking {} log uploads, its limit (limits.requests.maxLogUploads), {why}; nothing of this batch was written, send it again shortly",
            self.gate.limits.max_log_uploads
        ))
    }

    /// Its body did not fit in `maxLogUploadBytes`.
    fn bytes(&self) -> ApiError {
        server_busy(format!(
            "the log uploads in progress hold the {} their bodies may take (limits.requests.maxLogUploadBytes), and this batch's {} did not fit within {} s; nothing of this batch was written, send it again shortly",
            bytesize::ByteSize(self.gate.limits.max_log_upload_bytes),
            bytesize::ByteSize(self.bytes),
            LOG_UPLOAD_WAIT.as_secs()
        ))
    }
}

/// Takes a place for a request from `client`, waiting up to [`PLACE_WAIT`] for one when
/// `max` are in progress, or says why there is none.
async fn admit(gate: &RequestGate, client: Option<IpAddr>) -> Result<Hold, ApiError> {
    let address = match client.map(ClientKey::of) {
        None => None,
        Some(key) => Some(gate.by_address.take(key, gate.limits.per_address).map_err(|count| {
            ApiError::too_many_requests(
                format!(
                    "{key} has {count} requests in progress, the limit per address; wait for some to finish"
                ),
                BUSY_RETRY,
            )
        })?),
    };
    let permit = match Arc::clone(&gate.running).try_acquire_owned() {
        Ok(permit) => permit,
        Err(_) => wait_for(&gate.running, PLACE_WAIT).await.ok_or_else(|| {
            server_busy(format!(
                "the server is answering {} requests, its limit, and none ended within {} s; try again shortly",
                gate.limits.max,
                PLACE_WAIT.as_secs()
            ))
        })?,
    };
    Ok(Hold {
        _place: Some(permit),
        log_upload_kib: None,
        _address: address,
    })
}

/// One of `places`, if one frees up within `wait`.
async fn wait_for(places: &Arc<Semaphore>, wait: Duration) -> Option<OwnedSemaphorePermit> {
    wait_until(places, 1, tokio::time::Instant::now() + wait).await
}

/// `count` of `permits`, if they free up by `deadline`.
async fn wait_until(
    permits: &Arc<Semaphore>,
    count: u32,
    deadline: tokio::time::Instant,
) -> Option<OwnedSemaphorePermit> {
    tokio::time::timeout_at(deadline, Arc::clone(permits).acquire_many_owned(count))
        .await
        .ok()?
        .ok()
}

/// `503 SERVER_BUSY` with `message`, to come again in [`BUSY_RETRY`].
fn server_busy(message: String) -> ApiError {
    ApiError::refusal(StatusCode::SERVICE_UNAVAILABLE, "SERVER_BUSY", message)
        .with_retry_after(BUSY_RETRY)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large(size: u64, limit: u64) -> ApiError {
    ApiError::payload_too_large(format!(
        "the request body has {size} bytes, more than the {limit} this route takes"
    ))
}

fn too_slow(timeout: Duration) -> ApiError {
    ApiError::refusal(
        StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
        format!(
            "the request body sent nothing for {}; send it without pauses",
            humantime::format_duration(timeout)
        ),
    )
}

/// A small body, read whole within `timeout`, at most `limit` bytes; `length` is what its
/// `Content-Length` says.
async fn read_small(
    body: Body,
    limit: u64,
    length: Option<u64>,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let read = async {
        let mut chunks = body.into_data_stream();
        // Its room at once: growing by doubling, a body held while it waits for the store
        // took up to twice its size.
        let mut bytes = Vec::with_capacity(length.unwrap_or(0).min(limit) as usize);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(ApiError::from_body)?;
            let size = (bytes.len() + chunk.len()) as u64;
            if size > limit {
                return Err(too_large(size, limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(bytes))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| Err(too_slow(timeout)))
}

/// Why a streamed request body stopped: it sent nothing for too long.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {}", humantime::format_duration(*.0))]
pub struct BodyTimeout(pub Duration);

impl ApiError {
    /// The error for a request body that failed while read: [`BodyTimeout`] is `408
    /// REQUEST_TIMEOUT`; anything else (the client went away) `400`.
    pub fn from_body(error: axum::Error) -> ApiError {
        // Each body wrapper on the way adds a layer of `axum::Error` around the cause.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(error) = cause {
            if let Some(BodyTimeout(timeout)) = error.downcast_ref::<BodyTimeout>() {
                return too_slow(*timeout);
            }
            cause = error.source();
        }
        ApiError::bad_request(format!("the request body was cut off: {error}"))
    }
}

/// A request body that fails with [`BodyTimeout`] when no data comes for `timeout`.
struct IdleTimeout {
    body: Body,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeout {
    fn new(body: Body, timeout: Duration) -> IdleTimeout {
        IdleTimeout {
            body,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl HttpBody for IdleTimeout {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.timeout;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(this.timeout)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request's [`Hold`] until it is sent or dropped.
struct Held {
    body: Body,
    _hold: Hold,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::{RequestGate, Route, admit};
    use crate::config::LimitsConfig;

    #[tokio::test]
    async fn a_log_upload_takes_its_body_s_share_of_the_bytes_and_gives_back_the_rest() {
        let gate = RequestGate::new(crate::config::RequestLimits {
            max_log_upload_bytes: 64 << 10,
            ..LimitsConfig::default().requests
        });
        let free = || gate.log_upload_kib.available_permits();
        let mut hold = admit(&gate, None).await.expect("a place");
        // A body sent without its length takes the route's limit, more than all there is.
        hold.move_to_log_uploads(&gate, 4 << 20)
            .await
            .expect("room");
        assert_eq!(free(), 0);
        hold.keep_log_upload_share(&gate, 1500);
        assert_eq!(free(), 62, "its 1,500 bytes keep 2 KiB");
        drop(hold);
        assert_eq!(free(), 64);
    }

    #[test]
    fn routes_take_their_own_body_limits() {
        for (path, route) in [
            ("/graphql", Route::Graphql),
            ("/graphql/ws", Route::Graphql),
            ("/graphiql", Route::Other),
            ("/images/{kind}/{service}/{version}", Route::Image),
            ("/faults/{id}", Route::Fault),
            ("/faults/{distribution}/{id}", Route::Fault),
            (
                "/private-files/{kind}/{service}/{*path}",
                Route::PrivateFile,
            ),
            ("/hooks/git", Route::Hook),
            ("/logs/batches", Route::Logs),
            ("/logs/download", Route::Other),
            ("/no/such/route", Route::Other),
        ] {
            assert_eq!(Route::of(path), route, "{path}");
        }
    }
}
