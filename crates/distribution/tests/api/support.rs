//! A distribution under test: its state repo (a bare remote and a work clone to push
//! from), its data directory, its server, and tokens for each role.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::reconcile::BuildRunner;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Person};

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
    /// More lines of `distribution.yaml`.
    pub config: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            poll: "1h",
            builder: None,
            name: "acme",
            files: None,
            config: String::new(),
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
            options.config
        );
        let config = DistributionConfig::from_str(&yaml, data.path()).expect("config");
        // In a workspace build reqwest has rustls without a provider (vupdate-client brings
        // it, with ring): a client needs the process-wide provider installed first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut harness = Harness {
            distribution: None,
            base: String::new(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
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
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
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

    /// Waits until `check` returns `Some`, polling the API; fails after [`LIMIT`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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

impl Drop for Harness {
    fn drop(&mut self) {
        // A harness dropped without `stop` still ends its server with the test's runtime.
        drop(self.distribution.take());
    }
}
