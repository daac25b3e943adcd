//! The HTTP edge end to end: a real server on 127.0.0.1:0 over a real SQLite store, auth
//! service, image store and (for the hook) state watcher, driven with reqwest.

use std::time::Duration;

use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use tokio::net::TcpListener;
use vupdate_test_support::{GitRepo, Person};

use super::{AppState, app};
use crate::auth::{AuthOptions, AuthService, JwtKey, PasswordCost, Role};
use crate::images::{ImageStore, ImageStoreOptions};
use crate::watcher::{RepoSource, StateWatcher, WatchConfig};

const LIMIT: Duration = Duration::from_secs(20);

struct Server {
    base: String,
    client: reqwest::Client,
    builder: String,
    updater: String,
    consumer: String,
    admin_pending: String,
    admin: String,
    dir: TempDir,
}

/// Starts the app with the bootstrap accounts plus a consumer; `trigger` for the hook.
async fn serve(trigger: Option<crate::watcher::WatchTrigger>) -> Server {
    serve_with(trigger, ImageStoreOptions::default()).await
}

/// [`serve`] with image store options.
async fn serve_with(
    trigger: Option<crate::watcher::WatchTrigger>,
    options: ImageStoreOptions,
) -> Server {
    let dir = TempDir::new().expect("temporary directory");
    let store = vupdate_store::open(&vupdate_store::StoreConfig::Sqlite {
        path: dir.path().join("store.sqlite"),
    })
    .await
    .expect("open the store");
    let auth = AuthService::with_options(
        store.clone(),
        JwtKey::generate().expect("key"),
        AuthOptions {
            password_cost: PasswordCost::MINIMAL_FOR_TESTS,
            ..AuthOptions::default()
        },
    );
    let boot = auth.bootstrap().await.expect("bootstrap");
    let admin_password = boot.admin_password.expect("first start creates admin");
    // The first admin must change its password: its session is refused everywhere else.
    let admin_pending = auth
        .login("admin", &admin_password, None)
        .await
        .expect("login")
        .token;
    auth.add_service_account("mirror", "Mirror", Role::DistributionConsumer)
        .await
        .expect("consumer-role service account");
    auth.add_user(
        "root",
        "Root",
        Role::Administrator,
        "a long enough password",
        false,
    )
    .await
    .expect("a second administrator");
    let admin = auth
        .login("root", "a long enough password", None)
        .await
        .expect("login")
        .token;
    let builder = auth.issue_access_token("builder").await.expect("token");
    let updater = auth.issue_access_token("updater").await.expect("token");
    let consumer = auth.issue_access_token("mirror").await.expect("token");
    let images = ImageStore::open_with(dir.path().join("images"), options)
        .await
        .expect("image store");
    let state = AppState {
        auth,
        images,
        trigger,
        webhook: std::sync::Arc::new(
            crate::webhook::WebhookSecret::load_or_create(&dir.path().join("webhook.secret"))
                .expect("webhook secret"),
        ),
        faults: crate::faults::FaultFiles::open(dir.path().join("faults"), 1 << 30)
            .await
            .expect("fault files"),
        private_files: crate::private::PrivateFiles::open(dir.path().join("private"), 256 << 20)
            .await
            .expect("private files"),
        distribution: "acme".to_owned(),
        metrics: crate::metrics::Metrics::new(),
        store: store.clone(),
        install: crate::install::Installer::new(
            store.clone(),
            dir.path(),
            "http://127.0.0.1:1".to_owned(),
            None,
            None,
        ),
        intake: crate::intake::LogIntake::new(store.clone()),
        // No state in force: every service name is read whole.
        in_force: tokio::sync::watch::channel(None).1,
        log_uploads: tokio::runtime::Handle::current(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    // In a workspace build reqwest has rustls without a provider (vupdate-client brings
    // it, with ring): a client needs the process-wide provider installed first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Server {
        base: format!("http://{address}"),
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        builder,
        updater,
        consumer,
        admin_pending,
        admin,
        dir,
    }
}

/// Deterministic bytes that are not all alike, so ranges are checked by content.
fn image_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

const DEV: &str = "/images/developer/api/orbit-1.0.0";
const CLIENT: &str = "/images/client/api/orbit-1.0.0_1";

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Uploads `bytes` in several body chunks, as a streaming client would.
    async fn put(
        &self,
        path: &str,
        token: Option<&str>,
        bytes: &[u8],
        sha: Option<&str>,
    ) -> reqwest::Response {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            bytes.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
        let mut request = self
            .client
            .put(self.url(path))
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(sha) = sha {
            request = request.header("X-Content-Sha256", sha);
        }
        request.send().await.expect("PUT")
    }

    /// The status and body of a builder's GET.
    async fn read(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let response = self.get(path, &self.builder, None).await;
        (
            response.status(),
            response.bytes().await.expect("body").to_vec(),
        )
    }

    async fn get(&self, path: &str, token: &str, range: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path)).bearer_auth(token);
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        request.send().await.expect("GET")
    }
}

/// The `error.code` of a JSON error answer, after checking the status.
async fn error_code(response: reqwest::Response, status: StatusCode) -> (String, String) {
    assert_eq!(response.status(), status, "{}", response.url());
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON error");
    (
        body["error"]["code"].as_str().expect("a code").to_owned(),
        body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_owned(),
    )
}

fn header<'r>(response: &'r reqwest::Response, name: &str) -> &'r str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name}"))
        .to_str()
        .expect("ASCII header")
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let server = serve(None).await;
    let response = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.expect("body"), "ok");
}

#[tokio::test]
async fn unknown_api_routes_answer_a_json_not_found_and_other_pages_the_app() {
    let server = serve(None).await;
    for path in ["/images/nothing", "/hooks/other", "/metrics/x"] {
        let response = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("GET");
        let (code, _) = error_code(response, StatusCode::NOT_FOUND).await;
        assert_eq!(code, "NOT_FOUND", "{path}");
    }
    let response = server
        .client
        .delete(server.url("/nothing/here"))
        .send()
        .await
        .expect("DELETE");
    let (code, _) = error_code(response, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "NOT_FOUND");
    // A path of the app (history fallback): its page, HTML, whatever the route.
    let page = server
        .client
        .get(server.url("/nothing/here"))
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), StatusCode::OK);
    let kind = page.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_owned();
    assert!(kind.starts_with("text/html"), "{kind}");
}

#[tokio::test]
async fn upload_needs_a_builder_or_administrator() {
    let server = serve(None).await;
    let bytes = image_bytes(25_000);

    let anonymous = server.put(DEV, None, &bytes, None).await;
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await.0,
        "UNAUTHENTICATED"
    );
    let garbage = server.put(DEV, Some("not-a-token"), &bytes, None).await;
    assert_eq!(
        error_code(garbage, StatusCode::UNAUTHORIZED).await.0,
        "UNAUTHENTICATED"
    );
    let updater = server.put(DEV, Some(&server.updater), &bytes, None).await;
    assert_eq!(
        error_code(updater, StatusCode::FORBIDDEN).await.0,
        "FORBIDDEN"
    );
    let pending = server
        .put(DEV, Some(&server.admin_pending), &bytes, None)
        .await;
    assert_eq!(
        error_code(pending, StatusCode::FORBIDDEN).await.0,
        "PASSWORD_CHANGE_REQUIRED"
    );

    let created = server.put(DEV, Some(&server.builder), &bytes, None).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let info: serde_json::Value =
        serde_json::from_slice(&created.bytes().await.expect("body")).expect("JSON");
    assert_eq!(info["digest"], sha256(&bytes));
    assert_eq!(info["size"], bytes.len());
}

#[tokio::test]
async fn download_round_trips_bytes_and_etag() {
    let server = serve(None).await;
    let bytes = image_bytes(123_457);
    let sha = sha256(&bytes);
    let created = server
        .put(DEV, Some(&server.builder), &bytes, Some(&sha))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let response = server.get(DEV, &server.consumer, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "etag"), format!("\"{sha}\""));
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(header(&response, "content-length"), bytes.len().to_string());
    assert_eq!(response.bytes().await.expect("body").as_ref(), &bytes[..]);
}

#[tokio::test]
async fn ranges_give_partial_content_or_416() {
    let server = serve(None).await;
    let bytes = image_bytes(50_000);
    let size = bytes.len();
    server.put(DEV, Some(&server.builder), &bytes, None).await;

    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-9", 0, 9),
        ("bytes=49990-", 49_990, size - 1),
        ("bytes=-7", size - 7, size - 1),
        ("bytes=49995-90000", 49_995, size - 1),
    ];
    for (range, start, end) in cases {
        let response = server.get(DEV, &server.builder, Some(range)).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {start}-{end}/{size}"),
            "{range}"
        );
        assert_eq!(
            header(&response, "content-length"),
            (end - start + 1).to_string()
        );
        assert_eq!(header(&response, "etag"), format!("\"{}\"", sha256(&bytes)));
        let body = response.bytes().await.expect("body");
        assert_eq!(body.as_ref(), &bytes[*start..=*end], "{range}");
    }

    for range in [format!("bytes={size}-"), "bytes=-0".to_owned()] {
        let response = server.get(DEV, &server.builder, Some(&range)).await;
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes */{size}")
        );
        let (code, _) = error_code(response, StatusCode::RANGE_NOT_SATISFIABLE).await;
        assert_eq!(code, "RANGE_NOT_SATISFIABLE", "{range}");
    }

    // Several ranges are not supported: the whole image is served instead (RFC 9110).
    let whole = server
        .get(DEV, &server.builder, Some("bytes=0-1,5-6"))
        .await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.expect("body").len(), size);
}

#[tokio::test]
async fn an_existing_version_is_a_conflict_and_stays_as_it_was() {
    let server = serve(None).await;
    let first = image_bytes(1_000);
    server.put(DEV, Some(&server.builder), &first, None).await;

    // Large enough that the server answers before the client has sent it all.
    let again = server
        .put(DEV, Some(&server.builder), &image_bytes(4_000_000), None)
        .await;
    let (code, message) = error_code(again, StatusCode::CONFLICT).await;
    assert_eq!(code, "CONFLICT");
    let dir = server.dir.path().to_string_lossy().into_owned();
    assert!(!message.contains(&dir), "no server path leaks: {message}");

    let kept = server.get(DEV, &server.builder, None).await;
    assert_eq!(kept.bytes().await.expect("body").as_ref(), &first[..]);
}

#[tokio::test]
async fn a_wrong_sha256_is_refused_and_nothing_is_stored() {
    let server = serve(None).await;
    let bytes = image_bytes(30_000);
    let wrong = sha256(b"something else");
    let refused = server
        .put(DEV, Some(&server.builder), &bytes, Some(&wrong))
        .await;
    let (code, message) = error_code(refused, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains(&wrong), "{message}");

    let absent = server.get(DEV, &server.builder, None).await;
    assert_eq!(
        error_code(absent, StatusCode::NOT_FOUND).await.0,
        "NOT_FOUND"
    );

    let not_hex = server
        .put(DEV, Some(&server.builder), &bytes, Some("sha256:xyz"))
        .await;
    assert_eq!(
        error_code(not_hex, StatusCode::BAD_REQUEST).await.0,
        "BAD_REQUEST"
    );

    // The version is still free for the right bytes.
    let right = server
        .put(DEV, Some(&server.builder), &bytes, Some(&sha256(&bytes)))
        .await;
    assert_eq!(right.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_image_over_the_limit_is_too_large_and_not_stored() {
    let server = serve_with(
        None,
        ImageStoreOptions {
            max_image_bytes: Some(20_000),
            ..ImageStoreOptions::default()
        },
    )
    .await;
    let refused = server
        .put(DEV, Some(&server.builder), &image_bytes(20_001), None)
        .await;
    assert_eq!(
        error_code(refused, StatusCode::PAYLOAD_TOO_LARGE).await.0,
        "PAYLOAD_TOO_LARGE"
    );
    let absent = server.get(DEV, &server.builder, None).await;
    assert_eq!(absent.status(), StatusCode::NOT_FOUND);
    let fits = server
        .put(DEV, Some(&server.builder), &image_bytes(20_000), None)
        .await;
    assert_eq!(fits.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn updaters_download_client_images_only() {
    let server = serve(None).await;
    let bytes = image_bytes(4_096);
    for path in [DEV, CLIENT] {
        let created = server.put(path, Some(&server.builder), &bytes, None).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{path}");
    }
    let client = server.get(CLIENT, &server.updater, None).await;
    assert_eq!(client.status(), StatusCode::OK);
    assert_eq!(client.bytes().await.expect("body").as_ref(), &bytes[..]);

    let developer = server.get(DEV, &server.updater, None).await;
    assert_eq!(
        error_code(developer, StatusCode::FORBIDDEN).await.0,
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn malformed_paths_name_the_bad_segment() {
    let server = serve(None).await;
    let cases = [
        ("/images/server/api/orbit-1.0.0", "`kind`"),
        ("/images/developer/a%20b/orbit-1.0.0", "`service`"),
        ("/images/developer/api/1.0.0", "`version`"),
        // A client version spelling (`_N`) is not a developer version.
        ("/images/developer/api/orbit-1.0.0_1", "`version`"),
    ];
    for (path, segment) in cases {
        let response = server.get(path, &server.builder, None).await;
        let (code, message) = error_code(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "BAD_REQUEST", "{path}");
        assert!(message.contains(segment), "{path}: {message}");
    }
}

/// A valid state repo whose api service is at `version`.
fn commit_state(repo: &GitRepo, version: &str) -> String {
    let developer = format!("versions:\n  api: {version}\n");
    repo.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", ""),
            ("profiles.yaml", "profiles:\n  self: [api]\n"),
            ("desired/developer.yaml", &developer),
            ("desired/client.yaml", "versions: {}\n"),
        ],
        &format!("api {version}"),
        &Person::alice(),
    )
}

#[tokio::test]
async fn the_git_hook_needs_a_builder_and_triggers_a_check() {
    let repo = GitRepo::init();
    let first = commit_state(&repo, "orbit-1.0.0");
    // A long poll: only the hook makes the watcher look again within the test.
    let watcher = StateWatcher::start(WatchConfig {
        source: RepoSource::Local(repo.path().to_path_buf()),
        branch: "main".to_owned(),
        poll_interval: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        watch_files: false,
    })
    .await
    .expect("watcher");
    let mut status = watcher.subscribe_status();
    tokio::time::timeout(
        LIMIT,
        status.wait_for(|s| s.in_force.as_deref() == Some(first.as_str())),
    )
    .await
    .expect("first check in time")
    .expect("watcher runs");

    let server = serve(Some(watcher.trigger_handle())).await;
    let hook = server.url("/hooks/git");
    let second = commit_state(&repo, "orbit-1.0.1");

    let anonymous = server.client.post(&hook).send().await.expect("POST");
    assert_eq!(
        error_code(anonymous, StatusCode::UNAUTHORIZED).await.0,
        "UNAUTHENTICATED"
    );
    let updater = server
        .client
        .post(&hook)
        .bearer_auth(&server.updater)
        .send()
        .await
        .expect("POST");
    assert_eq!(
        error_code(updater, StatusCode::FORBIDDEN).await.0,
        "FORBIDDEN"
    );

    let accepted = server
        .client
        .post(&hook)
        .bearer_auth(&server.builder)
        .send()
        .await
        .expect("POST");
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    tokio::time::timeout(
        LIMIT,
        status.wait_for(|s| s.in_force.as_deref() == Some(second.as_str())),
    )
    .await
    .expect("the hook made the watcher check")
    .expect("watcher runs");
    watcher.shutdown().await;
}

#[tokio::test]
async fn the_git_hook_without_a_watcher_is_not_found() {
    let server = serve(None).await;
    let response = server
        .client
        .post(server.url("/hooks/git"))
        .bearer_auth(&server.builder)
        .send()
        .await
        .expect("POST");
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await.0,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn downloads_name_the_whole_images_sha256_for_resumed_downloads() {
    let server = serve(None).await;
    let bytes = image_bytes(5000);
    let sha = sha256(&bytes);
    server
        .put(CLIENT, Some(&server.builder), &bytes, None)
        .await;
    let partial = server
        .get(CLIENT, &server.updater, Some("bytes=4000-"))
        .await;
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        format!("sha256:{}", header(&partial, "x-content-sha256")),
        sha
    );
}

#[tokio::test]
async fn a_fault_archive_is_written_once_and_read_by_people() {
    let server = serve(None).await;
    let archive = image_bytes(70_000);
    let path = "/faults/fault-0001";
    let (code, _) = error_code(
        server
            .put(path, Some(&server.builder), &archive, None)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(code, "FORBIDDEN", "a builder does not send fault reports");
    let created = server
        .put(path, Some(&server.updater), &archive, None)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let (code, _) = error_code(
        server
            .put(path, Some(&server.updater), b"other", None)
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(code, "ALREADY_EXISTS");
    let (code, _) = error_code(
        server
            .put("/faults/a..b", Some(&server.updater), b"x", None)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "BAD_REQUEST");

    // An updater's reports belong to this distribution; a consumer's to the consumer.
    let (code, _) = error_code(
        server
            .get("/faults/acme/fault-0001", &server.updater, None)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(code, "FORBIDDEN");
    let read = server
        .get("/faults/acme/fault-0001", &server.admin, None)
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.bytes().await.expect("body").as_ref(), &archive[..]);
    server
        .put(path, Some(&server.consumer), b"the mirror's own", None)
        .await;
    let theirs = server
        .get("/faults/mirror/fault-0001", &server.admin, None)
        .await;
    assert_eq!(
        theirs.bytes().await.expect("body").as_ref(),
        b"the mirror's own"
    );
    let leftovers = std::fs::read_dir(server.dir.path().join("faults/tmp"))
        .expect("tmp")
        .count();
    assert_eq!(leftovers, 0, "no temporary file is left behind");
}

#[tokio::test]
async fn private_files_are_the_services_own_or_else_common() {
    let server = serve(None).await;
    let common = "/private-files/developer/_common/keys/signing.pem";
    let own = "/private-files/developer/api/keys/signing.pem";
    let (code, _) = error_code(
        server.put(common, Some(&server.builder), b"x", None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        code, "FORBIDDEN",
        "only administrators upload private files"
    );
    assert_eq!(
        server
            .put(common, Some(&server.admin), b"common key", None)
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        server.read(own).await,
        (StatusCode::OK, b"common key".to_vec())
    );
    server.put(own, Some(&server.admin), b"api key", None).await;
    assert_eq!(
        server.read(own).await,
        (StatusCode::OK, b"api key".to_vec())
    );
    assert_eq!(
        server.read(common).await,
        (StatusCode::OK, b"common key".to_vec())
    );
    let (code, message) = error_code(
        server
            .get(
                "/private-files/developer/api/missing.pem",
                &server.builder,
                None,
            )
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "NOT_FOUND");
    assert!(message.contains("missing.pem"), "{message}");
    let (code, message) = error_code(
        server
            .put(
                "/private-files/developer/api/..%2Fescape",
                Some(&server.admin),
                b"x",
                None,
            )
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(message.contains(".."), "{message}");
}

#[tokio::test]
async fn private_files_are_listed_and_removed_by_administrators() {
    let server = serve(None).await;
    for path in [
        "/private-files/developer/_common/keys/signing.pem",
        "/private-files/developer/api/keys/deep/api.pem",
        "/private-files/client/web/tls.key",
    ] {
        server.put(path, Some(&server.admin), b"secret", None).await;
    }
    let list = |token: String| {
        let client = server.client.clone();
        let url = server.url("/private-files/developer");
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("GET")
        }
    };
    let listed: serde_json::Value = serde_json::from_slice(
        &list(server.admin.clone())
            .await
            .bytes()
            .await
            .expect("body"),
    )
    .expect("JSON");
    let names: Vec<(String, String, u64)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|f| {
            (
                f["service"].as_str().expect("service").to_owned(),
                f["path"].as_str().expect("path").to_owned(),
                f["size"].as_u64().expect("size"),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("_common".to_owned(), "keys/signing.pem".to_owned(), 6),
            ("api".to_owned(), "keys/deep/api.pem".to_owned(), 6),
        ]
    );
    assert_eq!(
        list(server.builder.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    let own = "/private-files/developer/api/keys/deep/api.pem";
    let removed = server
        .client
        .delete(server.url(own))
        .bearer_auth(&server.admin)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let (code, _) = error_code(
        server
            .client
            .delete(server.url(own))
            .bearer_auth(&server.admin)
            .send()
            .await
            .expect("DELETE"),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(code, "NOT_FOUND");
    let left: serde_json::Value = serde_json::from_slice(
        &list(server.admin.clone())
            .await
            .bytes()
            .await
            .expect("body"),
    )
    .expect("JSON");
    assert_eq!(left.as_array().expect("a list").len(), 1);
}

#[tokio::test]
async fn metrics_are_served_without_a_login() {
    let server = serve(None).await;
    let app_metrics = server
        .client
        .get(server.url("/health"))
        .send()
        .await
        .expect("GET");
    assert_eq!(app_metrics.status(), StatusCode::OK);
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(text.contains("vupdate_tasks_running 0"), "{text}");
}
