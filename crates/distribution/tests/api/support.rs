//! A distribution under test: its state repo (a bare remote and a work clone to push
//! from), its data directory, its server, and tokens for each role.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::reconcile::BuildRunner;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Patience, Person};

/// How long any wait in these tests may last before it fails.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The password every test person gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// A valid state with service `api` (built here) at `version` and `self: [api]`.
pub fn state_files(version: &str) -> Vec<(&'static str, String)> {
    vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        ("common.yaml", "# shared settings\n".to_owned()),
        (
            "services/api.yaml",
            "developer:\n  sources:\n    - name: api\n      git:\n        url: https://git.example.invalid/api.git\n        branch: main\n".to_owned(),
        ),
        ("services/web.yaml", "developer:\n  sources:\n    - name: web\n      git:\n        url: https://git.example.invalid/web.git\n        branch: main\n".to_owned()),
        ("profiles.yaml", "profiles:\n  self: [api, web]\n".to_owned()),
        ("desired/developer.yaml", format!("# pinned by the team\nversions:\n  api: {version}\n")),
        ("desired/client.yaml", "versions: {}\n".to_owned()),
    ]
}

/// A running distribution and what tests need around it.
pub struct Harness {
    /// The server.
    pub distribution: Option<Distribution>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client that never uses a proxy.
    pub client: reqwest::Client,
    /// The bare repository the distribution follows (the "remote").
    pub remote: GitRepo,
    /// A work clone people push from.
    pub work: GitRepo,
    /// The data directory.
    pub data: TempDir,
    /// The config the server was started with.
    pub config: DistributionConfig,
    /// An administrator's session (`admin`, password changed).
    pub admin: String,
    /// A developer's session (`dev`).
    pub developer: String,
    /// Access tokens of the bootstrap `builder` and `updater` accounts.
    pub builder: String,
    /// The updater's token.
    pub updater: String,
    /// A consumer distribution's token (`mirror`, profile `self`).
    pub consumer: String,
}

/// How to start a harness.
#[derive(Clone)]
pub struct Options {
    /// The state repo's poll interval (long: only triggers make it look).
    pub poll: &'static str,
    /// The build runner (default: none available, builds fail with a clear message).
    pub builder: Option<Arc<dyn BuildRunner>>,
    /// The distribution's name (default `acme`).
    pub name: &'static str,
    /// The state repo's first commit (default [`state_files`] with `api: acme-1.0.0`).
    pub files: Option<Vec<(&'static str, String)>>,
    /// More of `distribution.yaml` (e.g. a `limits:` section).
    pub extra_config: &'static str,
    /// The argon2 cost of new password hashes (default: the cheapest, for speed).
    pub password_cost: PasswordCost,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll: "1h",
            builder: None,
            name: "acme",
            files: None,
            extra_config: "",
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
        }
    }
}

impl Harness {
    /// A distribution `acme` following a fresh remote whose `main` holds `api: acme-1.0.0`.
    pub async fn start() -> Harness {
        Harness::start_with(Options::default()).await
    }

    /// As [`Harness::start`], with options.
    pub async fn start_with(options: Options) -> Harness {
        let remote = GitRepo::init_bare();
        let work = GitRepo::clone_from(&remote);
        let files = options
            .files
            .clone()
            .unwrap_or_else(|| state_files("acme-1.0.0"));
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        work.commit_files(&refs, "First state", &Person::alice());
        work.push("origin", "main");
        let data = TempDir::new().expect("data dir");
        let yaml = format!(
            "name: {}\nlisten: 127.0.0.1:0\nstateRepo:\n  url: {}\n  pollInterval: {}\n{}",
            options.name,
            remote.path().display(),
            options.poll,
            options.extra_config
        );
        let config = DistributionConfig::from_str(&yaml, data.path()).expect("config");
        // In a workspace build reqwest has rustls without a provider (vupdate-client brings
        // it, with ring): a client needs the process-wide provider installed first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut harness = Harness {
            distribution: None,
            base: String::new(),
            client: client_from(None),
            remote,
            work,
            data,
            config,
            admin: String::new(),
            developer: String::new(),
            builder: String::new(),
            updater: String::new(),
            consumer: String::new(),
        };
        let bootstrap = harness.boot(options).await;
        let first = bootstrap.expect("the first start creates admin");
        harness.setup_accounts(&first).await;
        harness
    }

    /// Starts the server on the harness's config; returns the first admin password.
    pub async fn boot(&mut self, options: Options) -> Option<String> {
        let mut start = StartOptions {
            password_cost: options.password_cost,
            ..StartOptions::default()
        };
        if let Some(builder) = options.builder {
            start.builder = builder;
        }
        let distribution = Distribution::start(&self.config, start)
            .await
            .expect("start");
        self.base = format!("http://{}", distribution.local_addr());
        let password = distribution.bootstrap().admin_password.clone();
        self.distribution = Some(distribution);
        password
    }

    /// Stops the server (the data directory stays).
    pub async fn stop(&mut self) {
        if let Some(distribution) = self.distribution.take() {
            distribution.shutdown().await.expect("shutdown");
        }
    }

    async fn setup_accounts(&mut self, first_password: &str) {
        let pending = self.login("admin", first_password).await;
        self.ok(
            &pending,
            "mutation($old: String!, $new: String!) { changePassword(oldPassword: $old, newPassword: $new) }",
            json!({"old": first_password, "new": PASSWORD}),
        )
        .await;
        self.admin = self.login("admin", PASSWORD).await;
        let admin = self.admin.clone();
        self.ok(
            &admin,
            r#"mutation($p: String!) { addUserAccount(account: "dev", name: "Dee Veloper", role: DEVELOPER, password: $p, mustChangePassword: false) { account } }"#,
            json!({"p": PASSWORD}),
        )
        .await;
        // A state whose consumers.yaml names `mirror` may have created it already.
        let added = self
            .graphql(
                &admin,
                r#"mutation { addConsumerAccount(account: "mirror", name: "Mirror", profile: "self", url: "http://127.0.0.1:9/") { account } }"#,
                json!({}),
            )
            .await;
        let code = &added["errors"][0]["extensions"]["code"];
        assert!(
            code.is_null() || code == "ACCOUNT_EXISTS",
            "addConsumerAccount: {added}"
        );
        self.developer = self.login("dev", PASSWORD).await;
        self.builder = self.token_of("builder").await;
        self.updater = self.token_of("updater").await;
        self.consumer = self.token_of("mirror").await;
    }

    /// A new access token of a service or consumer account.
    pub async fn token_of(&self, account: &str) -> String {
        let data = self
            .ok(
                &self.admin,
                "mutation($a: String!) { issueAccessToken(account: $a) }",
                json!({"a": account}),
            )
            .await;
        data["issueAccessToken"].as_str().expect("token").to_owned()
    }

    /// Logs in and returns the session token.
    pub async fn login(&self, account: &str, password: &str) -> String {
        let data = self
            .ok(
                "",
                "mutation($a: String!, $p: String!) { login(account: $a, password: $p) { token } }",
                json!({"a": account, "p": password}),
            )
            .await;
        data["login"]["token"].as_str().expect("token").to_owned()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs a GraphQL operation (`token` empty: anonymous) and returns the whole response.
    pub async fn graphql(&self, token: &str, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .header("content-type", "application/json")
            .body(json!({"query": query, "variables": variables}).to_string());
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        let bytes = response.bytes().await.expect("body");
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
    }

    /// Runs an operation that must succeed; returns its `data`.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let response = self.graphql(token, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "`{query}` failed: {response:#}"
        );
        response["data"].clone()
    }

    /// Runs an operation that must fail; returns the first error's `extensions.code` and message.
    pub async fn fails(&self, token: &str, query: &str, variables: Value) -> (String, String) {
        let response = self.graphql(token, query, variables).await;
        let error = &response["errors"][0];
        assert!(!error.is_null(), "`{query}` succeeded: {response:#}");
        (
            error["extensions"]["code"]
                .as_str()
                .unwrap_or("<none>")
                .to_owned(),
            error["message"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// The commit in force as the API reports it.
    pub async fn commit_in_force(&self) -> Option<String> {
        let data = self
            .ok(
                &self.admin,
                "{ status { stateRepo { commit } } }",
                json!({}),
            )
            .await;
        data["status"]["stateRepo"]["commit"]
            .as_str()
            .map(str::to_owned)
    }

    /// Stores a client image of `service` `version` as the builder (`PUT
    /// /images/client/...`), which must be created; subscribers hear it.
    pub async fn store_client_image(&self, service: &str, version: &str) {
        let put = self
            .client
            .put(self.url(&format!("/images/client/{service}/{version}")))
            .bearer_auth(&self.builder)
            .body(vec![7u8; 1024])
            .send()
            .await
            .expect("PUT");
        assert_eq!(put.status(), reqwest::StatusCode::CREATED);
    }

    /// Uploads `zip` as the updater to `PUT /faults/{id}`, which must store it.
    pub async fn upload_fault_archive(&self, id: &str) {
        let put = self
            .client
            .put(self.url(&format!("/faults/{id}")))
            .bearer_auth(&self.updater)
            .body(b"zip".to_vec())
            .send()
            .await
            .expect("PUT");
        assert_eq!(put.status(), reqwest::StatusCode::CREATED);
    }

    /// The `status` entry of `service`, with `fields` of it (besides `service`).
    pub async fn service_status(&self, service: &str, fields: &str) -> Value {
        let query = format!("{{ status {{ services {{ service {fields} }} }} }}");
        let data = self.ok(&self.developer, &query, json!({})).await;
        data["status"]["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["service"] == service)
            .unwrap_or_else(|| panic!("no `{service}` in {data:#}"))
            .clone()
    }

    /// Waits until `check` returns `Some`, polling the API; fails after [`LIMIT`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        Patience::up_to(LIMIT).eventually(what, check).await
    }

    /// Waits until `commit` is in force.
    pub async fn wait_in_force(&self, commit: &str) {
        self.eventually(&format!("commit {commit} in force"), || async {
            (self.commit_in_force().await.as_deref() == Some(commit)).then_some(())
        })
        .await;
    }

    /// Pushes the work clone's `main` and asks the distribution to look at once.
    pub async fn push_and_hook(&self) {
        self.work.push("origin", "main");
        let response = self
            .client
            .post(self.url("/hooks/git"))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("POST /hooks/git");
        assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    }
}

/// An HTTP client that never uses a proxy, sending from `address` when given (any
/// 127.x.y.z is this machine: tests play clients at other addresses with them). Idle
/// connections are dropped well before the server's header timeout closes them.
pub fn client_from(address: Option<std::net::IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(address)
        .pool_idle_timeout(Duration::from_millis(500))
        .build()
        .expect("client")
}

impl Harness {
    /// Runs a GraphQL operation as an anonymous client at `address`; the HTTP status,
    /// `Retry-After` and the answer.
    pub async fn graphql_from(
        &self,
        address: &str,
        query: &str,
        variables: Value,
    ) -> (u16, Option<String>, Value) {
        let client = client_from(Some(address.parse().expect("an address")));
        let response = client
            .post(self.url("/graphql"))
            .header("content-type", "application/json")
            .body(json!({"query": query, "variables": variables}).to_string())
            .send()
            .await
            .expect("POST /graphql");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().expect("ASCII").to_owned());
        let body = response.bytes().await.expect("body");
        let answer = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
        (status, retry_after, answer)
    }

    /// A graphql-transport-ws session on `/graphql/ws`, initialised with `token` (no
    /// token when empty) and acknowledged.
    pub async fn socket(&self, token: &str) -> Socket {
        let url = self.url("/graphql/ws").replacen("http", "ws", 1);
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        let mut socket = Socket { socket };
        let payload = if token.is_empty() {
            json!({})
        } else {
            json!({"Authorization": format!("Bearer {token}")})
        };
        socket
            .send(json!({"type": "connection_init", "payload": payload}))
            .await;
        let ack = socket.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        socket
    }
}

/// An open GraphQL WebSocket.
pub struct Socket {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Socket {
    /// Sends one protocol message.
    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("send on the socket");
    }

    /// Starts operation `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"type": "subscribe", "id": id, "payload": {"query": query, "variables": variables}}))
            .await;
    }

    /// The next protocol message (pings answered, pongs skipped); fails after [`LIMIT`]
    /// or when the socket closes.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(LIMIT, self.socket.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a readable message");
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON");
                    match value["type"].as_str() {
                        Some("ping") => self.send(json!({"type": "pong"})).await,
                        Some("pong") => {}
                        _ => return value,
                    }
                }
                Message::Close(frame) => panic!("the socket closed: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The code and reason the server closed the socket with; fails after [`LIMIT`].
    pub async fn closed(mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(LIMIT, self.socket.next())
                .await
                .expect("a close in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => panic!("closed without a close frame"),
                Some(Err(error)) => panic!("the socket failed without a close frame: {error}"),
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends a raw text frame of `text`.
    pub async fn send_text(&mut self, text: String) {
        // A refused frame may close the socket before the send completes.
        let _ = self.socket.send(Message::text(text)).await;
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A harness dropped without `stop` still ends its server with the test's runtime.
        drop(self.distribution.take());
    }
}
