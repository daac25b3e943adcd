//! The distribution's public API over HTTP, as a library: what a build job
//! (`vupdate_builder::job`) and an updater (`vupdate_updater::remote`) call, and any
//! script may, and nothing they could not call with `curl`.
//!
//! A [`Client`] holds one connection pool, the distribution's base URL (checked with the
//! `url` crate: `http(s)://host[:port][/path]`) and an optional bearer token (a service
//! account's access token, or a person's session). Each subject has its own module, with
//! its wire types:
//!
//! - [`graphql`]: `POST /graphql`, answers decoded into the caller's type; a GraphQL error
//!   becomes [`ClientError::Graphql`] carrying each error's `extensions.code`.
//! - [`subscription`]: GraphQL subscriptions over the `/graphql/ws` WebSocket
//!   (graphql-transport-ws, the token in `connection_init`); one socket per subscription,
//!   and reconnecting is the caller's choice.
//! - [`builds`]: builds run on another distribution (`runBuilder`, `remoteBuild`,
//!   `cancelTask`) and a service's build settings at a commit (`buildSettings`).
//! - [`desired`]: `clientDesiredVersions` and its live feed `clientDesiredVersionsChanged`.
//! - [`enrol`]: `enrolUpdater`, a new VM's enrolment token for its updater's access token.
//! - [`states`]: `setServiceStates`, an updater's report of what each service runs.
//! - [`faults`]: fault reports, `PUT /faults/{id}` with the archive then `addFaultReport`,
//!   safe to repeat.
//! - [`images`]: `PUT /images/...` streamed from a file with `X-Content-Sha256`, and
//!   `GET /images/...` streamed to a file, resumed with `Range` after a cut and verified
//!   against the server's `X-Content-Sha256`.
//! - [`files`]: private files of builds, `GET /private-files/...` to a file and `PUT`.
//! - [`logs`]: log batches (`POST /logs/batches`), and [`logs::LogSender`], which batches lines as they come
//!   and numbers them so a resend never duplicates a line.
//! - [`mesh`]: a consumer distribution's calls to its provider (the versions offered,
//!   tested marks, installed versions).
//! - [`versions`]: version records (`addDeveloperVersionInfo`, `addClientVersionInfo`,
//!   `developerVersionsInfo`, `clientVersionsInfo`).
//! - [`error`]: [`ClientError`]; `transport` (internal): requests and REST error bodies.
//!
//! HTTPS uses rustls with the ring provider (never aws-lc), the system's trust store, and
//! any extra root certificates given to [`ClientBuilder::root_certificate_pem`]; or, given
//! a [`PublicKeyPin`] ([`ClientBuilder::pinned_public_key`], module [`pin`]), exactly the
//! server that presents that key, for requests and subscriptions alike.
//!
//! The crate depends on no server crate (axum, async-graphql, a database, gix): the
//! updater, which ships to every VM, uses it too (`crates/test-support/tests/tidy.rs`
//! checks it).

pub mod builds;
pub mod desired;
pub mod enrol;
pub mod error;
pub mod faults;
pub mod files;
pub mod graphql;
pub mod images;
pub mod logs;
pub mod mesh;
pub mod pin;
pub mod states;
pub mod subscription;
mod transport;
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

pub use builds::{
    BuildPart, BuildSettings, RemoteBuild, RemoteBuildKind, RemoteBuildRequest, Repository,
};
pub use desired::{DesiredList, DesiredVersionsFeed};
pub use error::{ClientError, GraphqlError};
pub use faults::{ArchiveUpload, FaultFileReport, FaultInfoReport, FaultReport};
pub use images::{DownloadedImage, ImageKind, ImageRef, UploadedImage};
pub use logs::{LogLine, LogSender, LogSenderOptions, LogSource};
pub use mesh::{Offer, OfferFeed};
pub use pin::PublicKeyPin;
pub use states::{ServiceStateReport, StateReport, UpdateErrorReport};
pub use subscription::Subscription;
pub use versions::{
    BuildInfo, ClientContent, ClientSettingsStamp, ClientVersionInfo, DeveloperVersionInfo,
    ImageInfo, InstallInfo, Source,
};

/// How long an idle connection is kept for the next request: longer than an updater's
/// report interval (10 s), so its reports and log batches reuse one connection instead of
/// paying a new one (and, in production, a TLS handshake) each time, and shorter than the
/// distribution's `keepAliveTimeout` (75 s by default), so the server does not close a
/// connection as a request is sent on it. An older server closes an idle connection after
/// its `headerTimeout` (10 s): a request that crosses that close fails with "connection
/// closed before message completed", and a query or a repeatable
/// mutation ([`Client::graphql`]) is sent again once.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// The environment variable that holds an access token for the programs that use this
/// crate (never a command-line argument: other users can read those).
pub const ACCESS_TOKEN_ENV: &str = "VUPDATE_ACCESS_TOKEN";

/// A client of one distribution; cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    socket: Arc<subscription::SocketSettings>,
    /// Set once the distribution answered that it has no `POST /logs/batches` (one from
    /// before it): log batches then go by GraphQL `addLogs`.
    logs_by_graphql: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("authenticated", &self.token.is_some())
            .finish()
    }
}

/// How a [`Client`] is made: base URL, token, extra trusted certificates, timeouts.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base: String,
    token: Option<String>,
    roots: Vec<Vec<u8>>,
    pin: Option<PublicKeyPin>,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl ClientBuilder {
    /// Sends `token` as `Authorization: Bearer <token>` on every request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the certificates of a PEM file's text as roots too (e.g. a server's
    /// self-signed certificate), besides the system's.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.roots.push(pem.into());
        self
    }

    /// Trusts exactly a server presenting the public key of `pin` (a self-signed
    /// distribution), instead of certificate authorities and extra roots.
    pub fn pinned_public_key(mut self, pin: PublicKeyPin) -> Self {
        self.pin = Some(pin);
        self
    }

    /// How long connecting may take; default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server may stay silent during a request or a transfer; default 60 s.
    /// A subscription's socket is pinged after half of it without a message and counts
    /// as cut after all of it.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The client; fails on a URL that is not `http(s)://host[:port][/path]` or an
    /// unreadable certificate.
    pub fn build(self) -> Result<Client, ClientError> {
        parse_base(&self.base)?;
        let base = self.base.trim_end_matches('/').to_owned();
        install_ring_provider();
        let mut http = reqwest::Client::builder()
            .pool_idle_timeout(POOL_IDLE)
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .user_agent(concat!("vupdate-client/", env!("CARGO_PKG_VERSION")));
        for pem in &self.roots {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Setup(format!("unreadable PEM certificate: {e}")))?;
            if certificates.is_empty() {
                return Err(ClientError::Setup(
                    "the PEM text given as a root certificate holds no certificate".to_owned(),
                ));
            }
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let pinned = self
            .pin
            .map(pin::pinned_config)
            .transpose()
            .map_err(|e| ClientError::Setup(format!("TLS for a pinned key: {e}")))?;
        if let Some(config) = &pinned {
            http = http.tls_backend_preconfigured(config.clone());
        }
        let http = http
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        let socket = subscription::SocketSettings::new(
            self.connect_timeout,
            self.read_timeout,
            self.roots,
            pinned,
        );
        Ok(Client {
            http,
            base,
            token: self.token,
            socket: Arc::new(socket),
            logs_by_graphql: Arc::default(),
        })
    }
}

/// `base` as a URL, checked to be `http(s)://host[:port][/path]` (no query, no fragment).
pub(crate) fn parse_base(base: &str) -> Result<url::Url, ClientError> {
    let invalid = |reason: String| ClientError::Url {
        url: base.to_owned(),
        reason,
    };
    const NO_SCHEME: &str = "it must start with http:// or https://";
    const NO_HOST: &str = "it names no host";
    let url = url::Url::parse(base).map_err(|error| {
        invalid(match error {
            url::ParseError::RelativeUrlWithoutBase => NO_SCHEME.to_owned(),
            url::ParseError::EmptyHost => NO_HOST.to_owned(),
            url::ParseError::InvalidPort => "the port is not a number from 0 to 65535".to_owned(),
            other => other.to_string(),
        })
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(NO_SCHEME.to_owned()));
    }
    // The URL standard reads `https:///x` as host `x`; here a third slash is a mistake.
    let third_slash = base
        .split_once(':')
        .is_some_and(|(_, rest)| rest.starts_with("///"));
    if url.host().is_none() || third_slash {
        return Err(invalid(NO_HOST.to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment".to_owned()));
    }
    Ok(url)
}

/// rustls needs one process-wide crypto provider; ring is the one vupdate builds with.
fn install_ring_provider() {
    // An error only says a provider is installed already, which is what is wanted.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// A builder for a client of the distribution at `base_url` (e.g. `http://127.0.0.1:8000`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base: base_url.into(),
            token: None,
            roots: Vec::new(),
            pin: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }

    /// A client of `base_url` with `token` and the default settings.
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> Result<Client, ClientError> {
        let builder = Client::builder(base_url);
        match token {
            Some(token) => builder.token(token),
            None => builder,
        }
        .build()
    }

    /// The distribution's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The same client with another token (e.g. after a login).
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        Client {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// `base` + `path` (which starts with `/`).
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the token, if any.
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// Percent-encodes one path segment (service names and versions are plain, but a private
/// file's path may hold anything).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        let client = Client::new("http://127.0.0.1:8000/", None).expect("valid");
        assert_eq!(client.base_url(), "http://127.0.0.1:8000");
        assert_eq!(client.url("/graphql"), "http://127.0.0.1:8000/graphql");
        let cases = [
            ("127.0.0.1:8000", "it must start with http:// or https://"),
            ("http://", "it names no host"),
            ("https:///x", "it names no host"),
            ("http://h/?a=1", "it must not have a query or fragment"),
        ];
        for (url, reason) in cases {
            let error = Client::new(url, None).expect_err(url).to_string();
            assert_eq!(
                error,
                format!("invalid distribution URL `{url}`: {reason}"),
                "{url}"
            );
        }
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let client = Client::new("http://h", Some("secret-token".to_owned())).expect("valid");
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("authenticated: true"), "{shown}");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("acme-1.0.0_2"), "acme-1.0.0_2");
        assert_eq!(encode_segment("a b/c%"), "a%20b%2Fc%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }

    #[test]
    fn an_empty_pem_is_refused() {
        let error = Client::builder("http://h")
            .root_certificate_pem("not a certificate")
            .build()
            .expect_err("no certificate");
        assert!(error.to_string().contains("no certificate"), "{error}");
    }
}
