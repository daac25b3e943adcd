//! GraphQL subscriptions over the distribution's `/graphql/ws` WebSocket, in the
//! graphql-transport-ws protocol: `connection_init` with the token as
//! `{"Authorization": "Bearer …"}`, `connection_ack`, one `subscribe`, then `next`
//! messages until `complete` or `error`.
//!
//! One [`Subscription`] is one socket. Nothing reconnects here: a cut, a silent server or
//! a refused operation ends it with an error ([`ClientError::is_transient`] says whether
//! to try again), and the caller decides how soon. A socket that stays silent for half the
//! client's read timeout is pinged; without any answer by the full timeout it counts as
//! cut, so a vanished server (no FIN, no RST) is noticed too.
//!
//! TLS (`wss://`) uses rustls with ring and the system's trust store plus the client's
//! extra root certificates, as its HTTPS requests do.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::{self, Message};
use url::Host;

use crate::Client;
use crate::error::ClientError;
use crate::graphql::{decode_errors, decode_response, operation_name};

/// The WebSocket subprotocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// The id of the one operation on a socket.
const OPERATION_ID: &str = "1";

/// A byte stream a socket runs over: plain TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

/// How a client opens sockets: its timeouts and trusted roots, and the TLS setup made
/// from them at the first `wss://` connection.
pub(crate) struct SocketSettings {
    connect_timeout: Duration,
    read_timeout: Duration,
    roots: Vec<Vec<u8>>,
    /// The setup trusting a pinned key only, when the client has a pin.
    pinned: Option<rustls::ClientConfig>,
    tls: Mutex<Option<Arc<rustls::ClientConfig>>>,
}

impl std::fmt::Debug for SocketSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketSettings")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("extra_roots", &self.roots.len())
            .field("pinned", &self.pinned.is_some())
            .finish_non_exhaustive()
    }
}

impl SocketSettings {
    /// Settings with the client builder's timeouts and extra roots (PEM texts), or the
    /// TLS setup of its pinned key.
    pub(crate) fn new(
        connect_timeout: Duration,
        read_timeout: Duration,
        roots: Vec<Vec<u8>>,
        pinned: Option<rustls::ClientConfig>,
    ) -> SocketSettings {
        SocketSettings {
            connect_timeout,
            read_timeout,
            roots,
            pinned,
            tls: Mutex::new(None),
        }
    }

    /// The TLS setup, made once: ring, the system's roots and the extra ones (or the
    /// pinned key alone).
    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let mut cached = self.tls.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = cached.as_ref() {
            return Ok(Arc::clone(config));
        }
        if let Some(pinned) = &self.pinned {
            let mut config = pinned.clone();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let config = Arc::new(config);
            *cached = Some(Arc::clone(&config));
            return Ok(config);
        }
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            ClientError::Setup(format!("WebSocket TLS: {what}: {e}"))
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut extra = Vec::new();
        for pem in &self.roots {
            for certificate in CertificateDer::pem_slice_iter(pem) {
                extra.push(certificate.map_err(|e| setup("unreadable PEM certificate", &e))?);
            }
        }
        let verifier = if extra.is_empty() {
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
        }
        .map_err(|e| setup("no certificate verifier", &e))?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup("no protocol versions", &e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // The upgrade is an HTTP/1.1 request.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        *cached = Some(Arc::clone(&config));
        Ok(config)
    }
}

/// Whether a base URL already checked by the builder is `https`, and its host and port
/// (an IPv6 host without its brackets, as a socket address takes it).
fn endpoint(base: &str) -> Result<(bool, String, u16), ClientError> {
    let url = crate::parse_base(base)?;
    let host = match url.host() {
        Some(Host::Ipv6(address)) => address.to_string(),
        Some(host) => host.to_string(),
        None => unreachable!("parse_base refuses a URL without a host"),
    };
    let port = url
        .port_or_known_default()
        .expect("http and https have a default port");
    Ok((url.scheme() == "https", host, port))
}

/// `ws(s)://…/graphql/ws` for a base URL `http(s)://…`.
fn socket_url(base: &str) -> Result<String, ClientError> {
    let mut url = crate::parse_base(base)?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .expect("http(s) and ws(s) are special schemes, so one may replace the other");
    let path = format!("{}/graphql/ws", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url.into())
}

fn cut(url: &str, reason: impl Into<String>) -> ClientError {
    ClientError::WebSocket {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// A socket error as a [`ClientError`]: a refused upgrade is [`ClientError::Refused`]
/// with the HTTP status, anything else a cut.
fn socket_error(url: &str, error: tungstenite::Error) -> ClientError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .map(|text| text.trim().chars().take(500).collect::<String>())
                .filter(|text| !text.is_empty())
                .unwrap_or_else(|| "(no body)".to_owned());
            ClientError::Refused {
                method: "GET",
                url: url.to_owned(),
                status,
                code: format!("HTTP_{status}"),
                message: format!("the WebSocket upgrade was refused: {body}"),
            }
        }
        other => cut(url, other.to_string()),
    }
}

async fn send_json(socket: &mut Socket, url: &str, message: Value) -> Result<(), ClientError> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| socket_error(url, e))
}

impl Client {
    /// Starts the subscription `query` with `variables` on a socket of its own; each
    /// [`Subscription::next`] then gives one event's `data` decoded into `T`.
    ///
    /// Fails when the socket cannot be opened or the server does not acknowledge the
    /// connection within the read timeout; an operation the server refuses (a bad query,
    /// a role that may not subscribe) shows at the first `next`.
    pub async fn subscribe<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<Subscription<T>, ClientError> {
        let url = socket_url(&self.base)?;
        let settings = &self.socket;
        let mut socket = self.open_socket(&url).await?;
        let payload = match &self.token {
            Some(token) => json!({"Authorization": format!("Bearer {token}")}),
            None => json!({}),
        };
        send_json(
            &mut socket,
            &url,
            json!({"type": "connection_init", "payload": payload}),
        )
        .await?;
        let acknowledged = async {
            loop {
                let message = match socket.next().await {
                    None => return Err(cut(&url, "closed before `connection_ack`")),
                    Some(Err(e)) => return Err(socket_error(&url, e)),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Text(text) => {
                        let value: Value = serde_json::from_str(&text)
                            .map_err(|e| cut(&url, format!("a message that is not JSON: {e}")))?;
                        match value["type"].as_str() {
                            Some("connection_ack") => return Ok(()),
                            Some("ping") => {
                                send_json(&mut socket, &url, json!({"type": "pong"})).await?;
                            }
                            other => {
                                return Err(cut(
                                    &url,
                                    format!("expected `connection_ack`, got {other:?}"),
                                ));
                            }
                        }
                    }
                    Message::Close(frame) => return Err(cut(&url, closed_reason(frame))),
                    _ => {}
                }
            }
        };
        tokio::time::timeout(settings.read_timeout, acknowledged)
            .await
            .map_err(|_| {
                cut(
                    &url,
                    format!("no `connection_ack` within {:?}", settings.read_timeout),
                )
            })??;
        send_json(
            &mut socket,
            &url,
            json!({
                "id": OPERATION_ID,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables},
            }),
        )
        .await?;
        Ok(Subscription {
            socket,
            url,
            operation: operation_name(query),
            read_timeout: settings.read_timeout,
            ended: false,
            _data: PhantomData,
        })
    }

    /// A socket to `url`, upgraded with the graphql-transport-ws subprotocol.
    async fn open_socket(&self, url: &str) -> Result<Socket, ClientError> {
        let settings = &self.socket;
        let (tls, host, port) = endpoint(&self.base)?;
        let tcp = tokio::time::timeout(
            settings.connect_timeout,
            TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| {
            cut(
                url,
                format!("no connection within {:?}", settings.connect_timeout),
            )
        })?
        .map_err(|e| cut(url, format!("cannot connect: {e}")))?;
        // Small messages; nothing to gain from Nagle's delay.
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = if tls {
            let name = ServerName::try_from(host.clone()).map_err(|e| ClientError::Url {
                url: self.base.clone(),
                reason: format!("`{host}` is not a host name for TLS: {e}"),
            })?;
            let connector = tokio_rustls::TlsConnector::from(settings.tls()?);
            let stream = tokio::time::timeout(settings.read_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| {
                    cut(
                        url,
                        format!("no TLS handshake within {:?}", settings.read_timeout),
                    )
                })?
                .map_err(|e| {
                    crate::pin::unpinned(url, &e).unwrap_or_else(|| cut(url, format!("TLS: {e}")))
                })?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let mut request = url
            .into_client_request()
            .map_err(|e| socket_error(url, e))?;
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(PROTOCOL));
        let (socket, response) = tokio::time::timeout(
            settings.read_timeout,
            tokio_tungstenite::client_async_with_config(request, stream, None),
        )
        .await
        .map_err(|_| {
            cut(
                url,
                format!("no WebSocket upgrade within {:?}", settings.read_timeout),
            )
        })?
        .map_err(|e| socket_error(url, e))?;
        let agreed = response
            .headers()
            .get(SEC_WEBSOCKET_PROTOCOL)
            .and_then(|value| value.to_str().ok());
        if agreed != Some(PROTOCOL) {
            return Err(cut(
                url,
                format!("the server does not speak {PROTOCOL} (it answered {agreed:?})"),
            ));
        }
        Ok(socket)
    }
}

fn closed_reason(frame: Option<tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(frame) if frame.reason.is_empty() => {
            format!("closed by the server (code {})", u16::from(frame.code))
        }
        Some(frame) => format!(
            "closed by the server (code {}): {}",
            u16::from(frame.code),
            frame.reason
        ),
        None => "closed by the server".to_owned(),
    }
}

/// A running subscription: one socket, one operation.
pub struct Subscription<T> {
    socket: Socket,
    url: String,
    operation: String,
    read_timeout: Duration,
    ended: bool,
    _data: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("url", &self.url)
            .field("operation", &self.operation)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Subscription<T> {
    /// The next event's `data`; `Ok(None)` once the server completed the operation. A
    /// GraphQL error ends the subscription as [`ClientError::Graphql`] with the codes; a
    /// cut, a close or a silent server is [`ClientError::WebSocket`] (transient).
    ///
    /// Cancel-safe between messages: a dropped call loses no event that was received.
    pub async fn next(&mut self) -> Result<Option<T>, ClientError> {
        if self.ended {
            return Ok(None);
        }
        let patience = self.read_timeout / 2;
        let mut pinged = false;
        loop {
            let message = match tokio::time::timeout(patience, self.socket.next()).await {
                Err(_) if !pinged => {
                    // Silence: ask for a sign of life before calling the socket dead.
                    send_json(&mut self.socket, &self.url, json!({"type": "ping"})).await?;
                    pinged = true;
                    continue;
                }
                Err(_) => {
                    self.ended = true;
                    return Err(cut(
                        &self.url,
                        format!(
                            "the server stayed silent for {:?}, even to a ping",
                            self.read_timeout
                        ),
                    ));
                }
                Ok(None) => {
                    self.ended = true;
                    return Err(cut(&self.url, "the connection ended"));
                }
                Ok(Some(Err(e))) => {
                    self.ended = true;
                    return Err(socket_error(&self.url, e));
                }
                Ok(Some(Ok(message))) => message,
            };
            pinged = false;
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    self.ended = true;
                    return Err(cut(&self.url, closed_reason(frame)));
                }
                // WebSocket pings are answered by tungstenite itself.
                _ => continue,
            };
            let value: Value = match serde_json::from_str(&text) {
                Ok(value) => value,
                Err(e) => {
                    self.ended = true;
                    return Err(cut(&self.url, format!("a message that is not JSON: {e}")));
                }
            };
            let ours = value["id"].as_str() == Some(OPERATION_ID);
            match value["type"].as_str() {
                Some("next") if ours => {
                    let payload = value.get("payload").cloned().unwrap_or(Value::Null);
                    let decoded = decode_response(self.operation.clone(), payload);
                    if decoded.is_err() {
                        // The server completes an operation after its errors.
                        self.ended = true;
                    }
                    return decoded.map(Some);
                }
                Some("error") if ours => {
                    self.ended = true;
                    let errors = value.get("payload").cloned().unwrap_or(Value::Null);
                    return Err(decode_errors(self.operation.clone(), errors));
                }
                Some("complete") if ours => {
                    self.ended = true;
                    return Ok(None);
                }
                Some("ping") => {
                    send_json(&mut self.socket, &self.url, json!({"type": "pong"})).await?;
                }
                // A pong, or a message for no operation of ours.
                _ => {}
            }
        }
    }

    /// Ends the subscription and closes the socket politely (best effort).
    pub async fn close(mut self) {
        if !self.ended {
            let _ = send_json(
                &mut self.socket,
                &self.url,
                json!({"id": OPERATION_ID, "type": "complete"}),
            )
            .await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls_and_endpoints_follow_the_base_url() {
        assert_eq!(
            socket_url("http://127.0.0.1:8000").expect("url"),
            "ws://127.0.0.1:8000/graphql/ws"
        );
        assert_eq!(
            socket_url("https://dist.example.com/vupdate/").expect("url"),
            "wss://dist.example.com/vupdate/graphql/ws"
        );
        assert_eq!(
            socket_url("https://user@[::1]:9443").expect("url"),
            "wss://user@[::1]:9443/graphql/ws"
        );
        let cases = [
            ("http://127.0.0.1:8000", (false, "127.0.0.1", 8000)),
            (
                "https://dist.example.com/vupdate",
                (true, "dist.example.com", 443),
            ),
            ("http://h", (false, "h", 80)),
            ("https://[::1]:9443/x", (true, "::1", 9443)),
            ("http://[::1]", (false, "::1", 80)),
            ("http://user:secret@h:81", (false, "h", 81)),
            ("HTTP://Dist.Example.COM", (false, "dist.example.com", 80)),
        ];
        for (base, (tls, host, port)) in cases {
            assert_eq!(
                endpoint(base).expect(base),
                (tls, host.to_owned(), port),
                "{base}"
            );
        }
        let error = endpoint("http://h:port").expect_err("a bad port");
        assert!(error.to_string().contains("port"), "{error}");
        for (base, reason) in [
            ("ftp://h", "http:// or https://"),
            ("http://h/?q=1", "query or fragment"),
            ("http://[::1", "IPv6"),
            ("h:80", "http:// or https://"),
        ] {
            let error = endpoint(base).expect_err(base).to_string();
            assert!(error.contains(reason), "{base}: {error}");
        }
    }
}
