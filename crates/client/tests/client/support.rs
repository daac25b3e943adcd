//! A distribution `acme` on 127.0.0.1:0 with a local state repo, and clients of it.

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::Client;
use vupdate_distribution::auth::PasswordCost;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_test_support::{GitRepo, Patience, Person};

/// The password the administrator gets.
const PASSWORD: &str = "correct horse battery staple";

/// A running distribution with an administrator's and the builder's clients.
pub struct Server {
    /// The server (taken by [`Server::stop`]).
    pub distribution: Option<Distribution>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Logged in as `admin`.
    pub admin: Client,
    /// The administrator's session token, for requests made without the client.
    pub admin_token: String,
    /// With the `builder` account's access token.
    pub builder: Client,
    /// With the `updater` account's access token.
    pub updater: Client,
    /// The state repo.
    pub _repo: GitRepo,
    /// The data directory.
    pub _data: TempDir,
}

/// Starts a distribution from the config text `yaml` (relative paths in `dir`), with the
/// cheapest password hashing.
pub async fn serve(yaml: &str, dir: &std::path::Path) -> Distribution {
    let config = DistributionConfig::from_str(yaml, dir).expect("config");
    Distribution::start(
        &config,
        StartOptions {
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..StartOptions::default()
        },
    )
    .await
    .expect("start")
}

/// Starts a distribution whose state declares `api` and `web`.
pub async fn start() -> Server {
    let repo = GitRepo::init();
    repo.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", ""),
            ("services/web.yaml", ""),
            ("desired/developer.yaml", "versions: {}\n"),
        ],
        "state",
        &Person::alice(),
    );
    let data = TempDir::new().expect("data dir");
    let yaml = format!(
        "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n  pollInterval: 1h\n",
        repo.path().display()
    );
    let distribution = serve(&yaml, data.path()).await;
    let base = format!("http://{}", distribution.local_addr());
    let first = distribution
        .bootstrap()
        .admin_password
        .clone()
        .expect("first start");
    let anonymous = Client::new(&base, None).expect("client");
    let login = |password: String| {
        let anonymous = anonymous.clone();
        async move {
            let data: Value = anonymous
                .graphql(
                    "mutation($p: String!) { login(account: \"admin\", password: $p) { token } }",
                    json!({"p": password}),
                )
                .await
                .expect("login");
            data["login"]["token"].as_str().expect("token").to_owned()
        }
    };
    let pending = anonymous.with_token(login(first.clone()).await);
    let _: Value = pending
        .graphql(
            "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) }",
            json!({"o": first, "n": PASSWORD}),
        )
        .await
        .expect("change the password");
    let admin_token = login(PASSWORD.to_owned()).await;
    let admin = anonymous.with_token(admin_token.clone());
    let token = |account: &'static str| {
        let admin = admin.clone();
        async move {
            let data: Value = admin
                .graphql(
                    "mutation($a: String!) { issueAccessToken(account: $a) }",
                    json!({"a": account}),
                )
                .await
                .expect("token");
            data["issueAccessToken"].as_str().expect("token").to_owned()
        }
    };
    let builder = anonymous.with_token(token("builder").await);
    let updater = anonymous.with_token(token("updater").await);
    Server {
        distribution: Some(distribution),
        base,
        admin,
        admin_token,
        builder,
        updater,
        _repo: repo,
        _data: data,
    }
}

impl Server {
    /// The commit in force.
    async fn commit_in_force(&self) -> Option<String> {
        let status: Value = self
            .admin
            .graphql("{ status { stateRepo { commit } } }", json!({}))
            .await
            .expect("status");
        status["status"]["stateRepo"]["commit"]
            .as_str()
            .map(str::to_owned)
    }

    /// Sets desired client versions (`service`, `version`) as an administrator's commit on
    /// the revision in force; returns the new commit once it is in force.
    pub async fn desire_client(&self, changes: &[(&str, &str)]) -> String {
        let revision = self.commit_in_force().await.expect("a commit in force");
        let changes: Vec<Value> = changes
            .iter()
            .map(|(service, version)| json!({"service": service, "version": version}))
            .collect();
        let data: Value = self
            .admin
            .graphql(
                "mutation($c: [ServiceVersionChange!]!, $e: String!) { setClientDesiredVersions(changes: $c, expectedRevision: $e, comment: \"Roll out\") { id } }",
                json!({"c": changes, "e": revision}),
            )
            .await
            .expect("set desired client versions");
        let commit = data["setClientDesiredVersions"]["id"]
            .as_str()
            .expect("the new commit")
            .to_owned();
        Patience::up_to(std::time::Duration::from_secs(60))
            .every(std::time::Duration::from_millis(100))
            .eventually(&format!("commit {commit} in force"), || async {
                (self.commit_in_force().await.as_deref() == Some(commit.as_str())).then_some(())
            })
            .await;
        commit
    }

    /// Stops the server.
    pub async fn stop(&mut self) {
        if let Some(distribution) = self.distribution.take() {
            distribution.shutdown().await.expect("shutdown");
        }
    }
}

/// A file of `size` bytes of a fixed pattern in `dir`.
pub fn pattern_file(dir: &std::path::Path, name: &str, size: usize) -> std::path::PathBuf {
    let bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}
