//! The connection loop: accepts TCP connections (TLS when configured), bounds how many are
//! open in total and per address, serves each with hyper's HTTP/1.1 under timeouts for slow
//! clients, and stops gracefully.
//!
//! - A connection past `limits.connections` is still read and answered, `503
//!   TOO_MANY_CONNECTIONS` with `Connection: close`, so a client always learns why (only
//!   past a second bound, as many refusals in progress as open connections allowed, is a
//!   connection closed unanswered: the kernel would drop it anyway). Idle keep-alive
//!   connections never cost a new client its place: at either limit, a new connection is
//!   served while some that count against it are idle, and those are closed ([`idle`]).
//! - A request head must arrive within `headerTimeout` of its first byte (the first one,
//!   and the TLS handshake, within `headerTimeout` of the connection's start); a head that
//!   started and stalls (slowloris) is answered `408 REQUEST_TIMEOUT` on plain HTTP. A
//!   keep-alive connection idle for `keepAliveTimeout` is closed. Bodies are timed by the
//!   request limits (`http::limits`), which also see every request with its
//!   [`ConnectInfo`].
//! - HTTP/1.1 handles one request at a time per connection, so the per-connection cap on
//!   concurrent requests is one by construction; WebSockets bound their own operations.

use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::auth::ClientKey;
use crate::config::ConnectionLimits;
use crate::http::{AddressSlot, AddressSlots, ApiError};

mod idle;

use idle::{Idle, Member};

/// How long requests in flight get to finish once a stop is asked.
const GRACE: Duration = Duration::from_secs(10);
/// How long a connection accepted just before a stop, whose first request has not been
/// read yet, gets to send it: closed at once, its client would fail for nothing (a
/// self-update stops the server while clients keep connecting).
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(500);
/// Bytes a request's head may have beyond the header and query-string limits (start
/// line, path): hyper's own bound, under which the request limits answer with a code.
const HEAD_SLACK: usize = 8 << 10;
/// The most a connection's read buffer holds (hyper's default is about 400 KiB), unless a
/// request's head may be longer. hyper keeps a buffer's size for the connection's life, so
/// every keep-alive connection that once carried a large log batch held about 400 KiB
/// while idle: at 50,000 instances 143 MB of the 200 MB the server grew from 330 s to 480
/// s (a heap profile). Bodies are read in pieces of this size instead.
const READ_BUFFER_BYTES: usize = 64 << 10;

/// Connections the kernel may complete and queue for the accept loop: as many as it allows
/// (`net.core.somaxconn` caps it, 4096 by default since Linux 5.4), not tokio's 1,024. A
/// fleet connecting at once (updaters coming back after a restart, or opening connections
/// while answers are slow) overflowed 1,024: the kernel dropped each connection past it,
/// its client sent it again only a second or more later, and the requests waiting meanwhile
/// opened yet more connections. The `fleet` bench at 50,000 instances lost whole runs that
/// way (tens of thousands of requests failed, the kernel counting as many listen queue
/// overflows).
const BACKLOG: u32 = 65_535;

/// A listening socket on `address` with a queue of [`BACKLOG`] connections.
pub(super) fn bind(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As tokio's own `bind` does: a restarted server binds while old connections linger.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// The kernel's cap on a listen queue (`net.core.somaxconn`), when it can be read.
pub(super) fn somaxconn() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What to tell whoever runs the server when the kernel caps its listen queue (`cap`) below
/// the connections it may have open: kernels before 5.4 cap it at 128.
pub(super) fn short_queue(cap: usize, max_connections: usize) -> Option<String> {
    (cap < max_connections).then(|| {
        format!(
            "the kernel caps the listen queue at {cap} connections (net.core.somaxconn), fewer than \
             limits.connections.max ({max_connections}): past it new connections arriving at once \
             (a fleet reconnecting) are dropped and tried again a second or more later; raise it \
             (`sysctl -w net.core.somaxconn={max_connections}`, kept in /etc/sysctl.d)"
        )
    })
}

/// Serves `router` on `listener` until `stopped` turns true.
pub(super) fn spawn(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    max_head_bytes: usize,
    mut stopped: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>> {
    tokio::spawn(async move {
        let gate = Gate::new(limits);
        let settings = Arc::new(Settings {
            limits,
            max_head_bytes: max_head_bytes + HEAD_SLACK,
            idle: Arc::clone(&gate.idle),
        });
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors or a connection reset before accept:
                        // the listener itself is fine; wait a little rather than spin.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = stop_asked(&mut stopped) => break,
            };
            let admission = gate.admit(peer.ip());
            if matches!(admission, Admission::Drop) {
                continue;
            }
            connections.spawn(serve_connection(
                stream,
                peer,
                tls.clone(),
                router.clone(),
                admission,
                Arc::clone(&settings),
                stopped.clone(),
            ));
        }
        drop(listener);
        if tokio::time::timeout(GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!(
                open = connections.len(),
                "connections still busy after the grace period; closing them"
            );
            connections.abort_all();
        }
        Ok(())
    })
}

/// A connection's read buffer for heads of at most `max_head_bytes`: a head must fit whole.
fn read_buffer_bytes(max_head_bytes: usize) -> usize {
    READ_BUFFER_BYTES.max(max_head_bytes)
}

/// Resolves once a stop is asked (or the server that could ask is gone).
async fn stop_asked(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

struct Settings {
    limits: ConnectionLimits,
    max_head_bytes: usize,
    /// The gate's idle connections, which each connection joins between requests.
    idle: Arc<Idle>,
}

/// What became of a new connection.
enum Admission {
    /// Served; its places are given back when the permit is dropped.
    Served(Permit),
    /// Answered `503 TOO_MANY_CONNECTIONS`, with what to say.
    Refused(Permit, String),
    /// Closed at once (refusals themselves are at their bound).
    Drop,
}

/// Counts of open connections (and of refusals being answered), in total and per address.
struct Gate {
    limits: ConnectionLimits,
    open: Arc<AtomicUsize>,
    refusing: Arc<AtomicUsize>,
    by_address: AddressSlots,
    idle: Arc<Idle>,
}

/// A connection's places in the [`Gate`], given back on drop.
struct Permit {
    count: Arc<AtomicUsize>,
    _address: Option<AddressSlot>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes one of `max` places of `count`, if one is free.
fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Arc<AtomicUsize>> {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Arc::clone(count))
}

impl Gate {
    fn new(limits: ConnectionLimits) -> Gate {
        Gate {
            limits,
            open: Arc::default(),
            refusing: Arc::default(),
            by_address: AddressSlots::default(),
            idle: Arc::default(),
        }
    }

    /// A place past the total limit for a new connection while idle ones will give theirs
    /// back: at most one per idle connection, all of which are asked to close.
    fn take_from_idle(&self) -> Option<Arc<AtomicUsize>> {
        let idle = self.idle.count();
        if idle == 0 {
            return None;
        }
        let place = take(&self.open, self.limits.max + idle)?;
        self.idle.shed_all();
        Some(place)
    }

    /// A place past `key`'s limit while its idle connections will give theirs back.
    fn take_from_idle_of(&self, key: ClientKey) -> Option<AddressSlot> {
        let idle = self.idle.of(key);
        if idle == 0 {
            return None;
        }
        let slot = self
            .by_address
            .take(key, self.limits.per_address + idle)
            .ok()?;
        self.idle.shed_address(key);
        Some(slot)
    }

    fn admit(&self, address: IpAddr) -> Admission {
        let key = ClientKey::of(address);
        let reason = match take(&self.open, self.limits.max).or_else(|| self.take_from_idle()) {
            None => format!(
                "the server has {} connections open, its limit; try again shortly",
                self.limits.max
            ),
            Some(count) => match self
                .by_address
                .take(key, self.limits.per_address)
                .or_else(|open| self.take_from_idle_of(key).ok_or(open))
            {
                Ok(slot) => {
                    return Admission::Served(Permit {
                        count,
                        _address: Some(slot),
                    });
                }
                Err(open) => {
                    // The total place taken above is given back with `count`.
                    drop(Permit {
                        count,
                        _address: None,
                    });
                    format!(
                        "{key} has {open} connections open, the limit per address; close some or reuse them"
                    )
                }
            },
        };
        match take(&self.refusing, self.limits.max) {
            Some(count) => Admission::Refused(
                Permit {
                    count,
                    _address: None,
                },
                reason,
            ),
            None => Admission::Drop,
        }
    }
}

/// Serves one connection until it closes, its head times out, or the server stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    admission: Admission,
    settings: Arc<Settings>,
    stopped: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (router, permit) = match admission {
        Admission::Served(permit) => (router, permit),
        Admission::Refused(permit, reason) => (refusal_router(reason), permit),
        Admission::Drop => return,
    };
    let progress = Arc::new(Progress::new(Member::new(
        Arc::clone(&settings.idle),
        ClientKey::of(peer.ip()),
    )));
    let watched = Watched {
        stream,
        progress: Arc::clone(&progress),
        plain: tls.is_none(),
        _permit: permit,
    };
    match tls {
        None => drive(watched, peer, router, &progress, &settings, stopped).await,
        Some(acceptor) => {
            match tokio::time::timeout(settings.limits.header_timeout, acceptor.accept(watched))
                .await
            {
                Ok(Ok(stream)) => drive(stream, peer, router, &progress, &settings, stopped).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Runs hyper's HTTP/1.1 over `io` (with upgrades, for WebSockets).
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    progress: &Arc<Progress>,
    settings: &Settings,
    mut stopped: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let progress = Arc::clone(progress);
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            let progress = Arc::clone(&progress);
            if progress.requests.fetch_add(1, Ordering::Relaxed) == 0 {
                progress.first_request.notify_one();
            }
            async move {
                let response = router
                    .oneshot(request.map(Body::new))
                    .await
                    .unwrap_or_else(|never: Infallible| match never {});
                // A WebSocket's connection is never idle between requests: it is upgraded.
                let upgraded = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                Ok::<_, Infallible>(response.map(|body| {
                    Body::new(MarkEnd {
                        body,
                        progress,
                        upgraded,
                    })
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's head timer runs from the moment a connection idles, so it is the keep-alive
    // timeout here; `slow_head` bounds a head from its first byte. One timer for both
    // would close an updater's connection between two reports 10 s apart, and in
    // production every report would then pay a new connection and TLS handshake.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.limits.keep_alive_timeout)
        .max_header_size(settings.max_head_bytes)
        .max_buf_size(read_buffer_bytes(settings.max_head_bytes));
    let mut connection = pin!(
        builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    // Idle between requests only while hyper serves it: not once upgraded or ended.
    let _serving = progress.idle.serve();
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = progress.idle.asked_to_close() => {
            tracing::debug!(%peer, "an idle keep-alive connection closed: the server is at its connection limit");
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
        () = slow_head(progress, settings.limits.header_timeout) => {
            if progress.head_started() {
                // The connection (and the stream in it) is dropped on return: the answer
                // is written then (plain HTTP only).
                progress.answer_timeout.store(true, Ordering::Relaxed);
                tracing::debug!(%peer, "a request head was too slow; answered 408");
            } else {
                tracing::debug!(%peer, "no request arrived in time; closed");
            }
            return;
        }
        () = stop_asked(&mut stopped) => {
            let first = progress.requests.load(Ordering::Relaxed) == 0;
            let ended = if first {
                // Once its first request is read, the graceful stop lets it finish.
                tokio::select! {
                    result = connection.as_mut() => Some(result),
                    () = progress.first_request.notified() => None,
                    () = tokio::time::sleep(FIRST_REQUEST_GRACE) => None,
                }
            } else {
                None
            };
            match ended {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            }
        }
    };
    if let Err(error) = result {
        if error.is_timeout() && progress.head_started() {
            // The connection (and the stream in it) is dropped after this: the answer is
            // written then (plain HTTP only).
            progress.answer_timeout.store(true, Ordering::Relaxed);
            tracing::debug!(%peer, "a request head was too slow; answered 408");
        } else {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Resolves once a request's head has taken longer than `timeout` from its first byte, or
/// no request started within `timeout` of the connection's start; pending otherwise (an
/// idle keep-alive connection is hyper's to close).
async fn slow_head(progress: &Progress, timeout: Duration) {
    if tokio::time::timeout(timeout, progress.head_started.notified())
        .await
        .is_err()
    {
        return;
    }
    loop {
        let before = progress.requests_at_head.load(Ordering::Relaxed);
        tokio::time::sleep(timeout).await;
        if progress.requests.load(Ordering::Relaxed) == before {
            return;
        }
        progress.head_started.notified().await;
    }
}

/// A connection's position: bytes read so far, and how many had been read when it last
/// became idle (the previous response was sent), so a timeout can tell a slow head from
/// an idle keep-alive connection.
struct Progress {
    read: AtomicU64,
    idle_at: AtomicU64,
    answer_timeout: AtomicBool,
    /// Requests read on the connection so far.
    requests: AtomicU64,
    /// `requests` when the head being read started.
    requests_at_head: AtomicU64,
    /// Told when the first byte of a head (or of the TLS handshake) is read.
    head_started: tokio::sync::Notify,
    /// Told when the first request is read (a permit kept until a stop waits for it).
    first_request: tokio::sync::Notify,
    /// Its place among the server's idle connections.
    idle: Member,
}

impl Progress {
    fn new(idle: Member) -> Progress {
        Progress {
            read: AtomicU64::default(),
            idle_at: AtomicU64::default(),
            answer_timeout: AtomicBool::default(),
            requests: AtomicU64::default(),
            requests_at_head: AtomicU64::default(),
            head_started: tokio::sync::Notify::default(),
            first_request: tokio::sync::Notify::default(),
            idle,
        }
    }

    fn head_started(&self) -> bool {
        self.read.load(Ordering::Relaxed) > self.idle_at.load(Ordering::Relaxed)
    }
}

/// The TCP stream, counting what it reads; when dropped after a slow head it writes the
/// `408` answer (a few hundred bytes into an empty send buffer: a non-blocking write
/// succeeds). It holds the connection's place in the [`Gate`]: an upgraded connection (a
/// WebSocket) keeps the stream, and so its place, until it closes.
struct Watched {
    stream: TcpStream,
    progress: Arc<Progress>,
    plain: bool,
    _permit: Permit,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if self.plain && self.progress.answer_timeout.load(Ordering::Relaxed) {
            let _ = self.stream.try_write(&timeout_answer());
        }
    }
}

/// The raw `408 REQUEST_TIMEOUT` answer.
fn timeout_answer() -> Vec<u8> {
    let body = ApiError::refusal(
        StatusCode::REQUEST_TIMEOUT,
        "REQUEST_TIMEOUT",
        "the request's head did not arrive in time; send it at once",
    )
    .body()
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        let progress = &self.progress;
        let earlier = progress.read.fetch_add(read, Ordering::Relaxed);
        if read > 0 && earlier == progress.idle_at.load(Ordering::Relaxed) {
            // The first bytes since the connection idled: a head starts.
            progress.idle.set_busy();
            let requests = progress.requests.load(Ordering::Relaxed);
            progress.requests_at_head.store(requests, Ordering::Relaxed);
            progress.head_started.notify_one();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// A response body that marks the connection idle when its last byte is sent (or the
/// body is dropped).
struct MarkEnd {
    body: Body,
    progress: Arc<Progress>,
    /// The answer upgrades the connection (`101`): no request follows it.
    upgraded: bool,
}

impl MarkEnd {
    fn mark(&self) {
        let read = self.progress.read.load(Ordering::Relaxed);
        self.progress.idle_at.store(read, Ordering::Relaxed);
        if !self.upgraded {
            self.progress.idle.set_idle();
        }
    }
}

impl Drop for MarkEnd {
    fn drop(&mut self) {
        self.mark();
    }
}

impl axum::body::HttpBody for MarkEnd {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.mark();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A router that answers every request `503 TOO_MANY_CONNECTIONS` and closes.
fn refusal_router(reason: String) -> Router {
    Router::new().fallback(move || {
        let reason = reason.clone();
        async move {
            let mut response = axum::response::IntoResponse::into_response(
                ApiError::refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "TOO_MANY_CONNECTIONS",
                    reason,
                )
                .with_retry_after(Duration::from_secs(1)),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_buffer_holds_the_longest_head_allowed_and_is_otherwise_capped() {
        // The default limits (16 KiB of headers, 16 KiB of query string, the slack).
        assert_eq!(
            read_buffer_bytes((32 << 10) + HEAD_SLACK),
            READ_BUFFER_BYTES
        );
        // hyper refuses a head its buffer cannot hold, whatever the head limit says.
        assert_eq!(read_buffer_bytes(1 << 20), 1 << 20);
    }

    /// More connections than tokio's queue of 1,024 complete their handshake while nothing
    /// accepts them: past a full queue the kernel drops a connection's handshake, and its
    /// client's `connect` waits for retries that fail as long as the queue stays full.
    #[tokio::test]
    async fn the_listen_queue_holds_more_connections_than_tokio_s_default() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        const CONNECTIONS: u64 = 1_100;
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("open files limit");
        let needed = 2 * CONNECTIONS;
        assert!(
            hard >= needed,
            "this test opens {CONNECTIONS} connections: the open files limit is {hard}"
        );
        if soft < needed {
            setrlimit(Resource::RLIMIT_NOFILE, needed, hard).expect("raise the open files limit");
        }
        let somaxconn = somaxconn().unwrap_or(0);
        assert!(
            somaxconn as u64 > CONNECTIONS,
            "the kernel caps listen queues at net.core.somaxconn = {somaxconn}: raise it above {CONNECTIONS}"
        );
        let listener = bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let address = listener.local_addr().expect("address");
        let mut queued = Vec::new();
        for n in 1..=CONNECTIONS {
            let connected =
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("connection {n} was not queued: the listen queue is shorter")
                    });
            queued.push(connected.expect("connect"));
        }
        assert_eq!(queued.len() as u64, CONNECTIONS);
    }

    #[test]
    fn a_listen_queue_capped_below_the_connection_limit_is_told_with_the_fix() {
        let warning = short_queue(128, 2048).expect("a warning");
        assert!(
            warning.contains("at 128 connections (net.core.somaxconn)"),
            "{warning}"
        );
        assert!(
            warning.contains("limits.connections.max (2048)"),
            "{warning}"
        );
        assert!(
            warning.contains("sysctl -w net.core.somaxconn=2048"),
            "{warning}"
        );
        assert_eq!(short_queue(4096, 2048), None);
        assert_eq!(short_queue(2048, 2048), None);
    }
}
