//! Two `vupdate distribution run` replicas on one MongoDB (the nx-27017 stand-in) and one
//! S3 bucket (moto's server): one holds the lease; kill -9 of the holder hands the lease
//! to the other within 10 s, with the next fencing token; an image uploaded through one
//! replica is downloaded through the other, and so are fault archives and private files;
//! an enrolment token issued through one is spent through the other, once, and a secret
//! set through one is known to the other;
//! a commit announced only to the holder (its
//! webhook) reaches the other's desired versions and subscribers through the store, with
//! the replicas' `pollInterval` an hour, and one announced to the standby reaches the
//! holder; a push during the handover (its webhook lost with the holder) is fetched and
//! answered by the new holder. [`handover`]: kill -9 of the holder in the middle of a
//! build, the build run once more, a push during the handover installed by an updater.
//! [`self_update`]: a new `distribution` version swapped in by both replicas in turn.
//! Skipped, loudly, where the stand-ins are not installed
//! (`scripts/install-test-deps.sh`); failing instead in CI.

// Shared with the other scenarios, which use the rest of it.
#[allow(dead_code)]
#[path = "../support/distribution.rs"]
mod distribution;
#[allow(dead_code)]
#[path = "../support/hello.rs"]
mod hello;

/// kill -9 of the holder in the middle of a build, and a push during the handover.
mod handover;
/// Every replica swaps in a new program, one at a time.
mod self_update;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vupdate_client::{ArchiveUpload, Client, ClientError, DesiredList, ImageKind, ImageRef};
use vupdate_test_support::servers;
use vupdate_test_support::{GitRepo, Patience, Person};

/// How long any wait may last on a loaded machine.
const LIMIT: Duration = Duration::from_secs(120);
/// What the scenario promises for a take-over after the holder died (the default lease
/// lasts 5 s and is tried every 1.5 s).
const TAKE_OVER: Duration = Duration::from_secs(10);

/// What the scenario promises for a commit announced to the holder to reach the other
/// replica: the relay's 1 s check plus one fetch, with room for a loaded machine; far
/// below the replicas' `pollInterval` (an hour), so only the store can explain it.
const RELAYED: Duration = Duration::from_secs(15);

/// The stand-ins' URLs, or `None` (said why) where they are not installed.
fn stand_ins() -> Option<(String, String)> {
    let found = servers::mongodb().and_then(|(mongo, _)| Ok((mongo, servers::s3()?.0)));
    match found {
        Ok(urls) => Some(urls),
        Err(why) if servers::required() => panic!("no stand-in for the replica scenario: {why}"),
        Err(why) => {
            servers::announce(&format!("\n*** SKIPPING the replica scenario: {why} ***\n"));
            None
        }
    }
}

/// Sends one plain HTTP/1.1 request to `base` (`http://host:port`) and returns the answer.
fn request(base: &str, head: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    write!(
        stream,
        "{head}\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

/// Creates `bucket` (moto takes it unsigned).
fn create_bucket(endpoint: &str, bucket: &str) {
    let answer = request(endpoint, &format!("PUT /{bucket} HTTP/1.1"));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "create bucket: {answer}"
    );
}

/// `POST /hooks/git` to one replica, as a Git host's push webhook would.
fn hook(base: &str, token: &str) {
    let answer = request(
        base,
        &format!("POST /hooks/git HTTP/1.1\r\nAuthorization: Bearer {token}"),
    );
    assert!(answer.starts_with("HTTP/1.1 202"), "webhook: {answer}");
}

/// A state where `api` (its image uploaded, so nothing is built) is desired at `acme-1.0.0`.
const API_STATE: &[(&str, &str)] = &[
    ("vupdate.yaml", "schema: 1\n"),
    (
        "services/api.yaml",
        "developer:\n  sources:\n    - name: api\n      git:\n        url: https://git.example.invalid/api.git\n        branch: main\n",
    ),
    ("profiles.yaml", "profiles:\n  self: [api]\n"),
    ("desired/developer.yaml", "versions:\n  api: acme-1.0.0\n"),
    ("desired/client.yaml", "versions: {}\n"),
];

/// What the replicas of one scenario share besides the state repo: a folder with the JWT
/// key and the S3 credentials, a bucket of their own and a database of their own.
struct Shared {
    dir: TempDir,
    mongo: String,
    s3: String,
    bucket: String,
    database: String,
}

impl Shared {
    /// A new bucket and database named after `scenario` and this process.
    fn new((mongo, s3): (String, String), scenario: &str) -> Shared {
        let dir = TempDir::new().expect("dir");
        std::fs::write(
            dir.path().join("s3.env"),
            "AWS_ACCESS_KEY_ID=vupdate-test\nAWS_SECRET_ACCESS_KEY=secret\n",
        )
        .expect("credentials");
        let bucket = format!("{scenario}-{}", std::process::id());
        create_bucket(&s3, &bucket);
        Shared {
            dir,
            mongo,
            s3,
            bucket,
            database: format!("{scenario}{}", std::process::id()),
        }
    }

    /// The config of every replica following the state repo at `state`, which they fetch
    /// hourly: only a webhook, a take-over or the relay through the store makes one fetch
    /// sooner.
    fn config(&self, state: &Path) -> String {
        format!(
            "name: acme\nlisten: 127.0.0.1:0\ndataDirectory: data\n\
             jwtKeyFile: {jwt}\n\
             store:\n  kind: mongo\n  url: '{mongo}'\n  database: {database}\n\
             stateRepo:\n  url: {state}\n  pollInterval: 1h\n\
             objectStore:\n  s3:\n    bucket: {bucket}\n    endpoint: {s3}\n    prefix: acme\n    credentialsFile: {credentials}\n",
            jwt = self.dir.path().join("jwt.key").display(),
            mongo = self.mongo,
            database = self.database,
            bucket = self.bucket,
            s3 = self.s3,
            state = state.display(),
            credentials = self.dir.path().join("s3.env").display(),
        )
    }
}

/// Starts the first replica in `dir` on `text` (it sets the store up with its first
/// password) and waits until it takes the lease; returns it and the lease's token.
async fn first_replica(dir: &TempDir, text: &str) -> (distribution::Started, i64) {
    first_replica_with(dir, text, &distribution::Launch::default()).await
}

/// [`first_replica`], started as `launch` says.
async fn first_replica_with(
    dir: &TempDir,
    text: &str,
    launch: &distribution::Launch<'_>,
) -> (distribution::Started, i64) {
    let file = dir.path().join("distribution.yaml");
    std::fs::write(&file, text).expect("config");
    let started = distribution::start_with(dir.path(), &file, launch).await;
    let token = Patience::up_to(LIMIT)
        .eventually_or(
            "the first replica takes the lease",
            || async { taken(dir) },
            || async { log(dir) },
        )
        .await;
    (started, token)
}

/// Starts another replica in `dir` on `text`; it logs in with the password the first set.
async fn other_replica(dir: &TempDir, text: &str) -> distribution::Started {
    other_replica_with(dir, text, &distribution::Launch::default()).await
}

/// [`other_replica`], started as `launch` says.
async fn other_replica_with(
    dir: &TempDir,
    text: &str,
    launch: &distribution::Launch<'_>,
) -> distribution::Started {
    let file = dir.path().join("distribution.yaml");
    std::fs::write(&file, text).expect("config");
    distribution::spawn(dir.path(), &file, launch)
        .into_started()
        .await
}

/// The replica's log.
fn log(dir: &TempDir) -> String {
    distribution::log(dir.path())
}

/// Waits until the replica of `client` (its log in `dir`) answers `clientDesiredVersions`
/// from `commit`; returns the list.
async fn answered(client: &Client, commit: &str, dir: &TempDir) -> DesiredList {
    Patience::up_to(LIMIT)
        .eventually_or(
            &format!(
                "the replica in {} answers from {commit}",
                dir.path().display()
            ),
            || async {
                let list = client.client_desired_list(None, None).await.ok()?;
                (list.revision.as_deref() == Some(commit)).then_some(list)
            },
            || async { log(dir) },
        )
        .await
}

/// The fencing token of the replica's last take-over, once it took the lease.
fn taken(dir: &TempDir) -> Option<i64> {
    log(dir)
        .lines()
        .rev()
        .filter(|line| line.contains("took the lease"))
        .filter_map(|line| line.split("token=").nth(1))
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .next()
}

/// Checks that a push just made came before the take-over, waits until the replica in
/// `dir` takes the lease over from the holder killed at `killed` (whose token was `first`),
/// prints how long it took (`during`: what the holder was doing) and checks it is within
/// [`TAKE_OVER`], with the next fencing token.
async fn taken_over(dir: &TempDir, killed: Instant, first: i64, during: &str) {
    assert_eq!(
        taken(dir),
        None,
        "the push came before the take-over (the killed holder's lease lasts 3.5 s at least)"
    );
    let second = Patience::up_to(LIMIT)
        .eventually_or(
            "the other replica takes the lease over",
            || async { taken(dir) },
            || async { log(dir) },
        )
        .await;
    let handover = killed.elapsed();
    eprintln!(
        "lease handover after kill -9 of the holder{during}: {} ms",
        handover.as_millis()
    );
    assert!(handover < TAKE_OVER, "took {handover:?}\n{}", log(dir));
    assert_eq!(second, first + 1, "the fencing token grows on a take-over");
}

/// A fault archive uploaded through `a` downloads through `b`; a private file stored
/// through `a` is served by `b`, replaced through `b` it is served anew by `a` (which had
/// a copy of the old one), removed through `b` it is gone on `a` too.
async fn fault_archives_and_private_files_are_shared(
    a: &distribution::Started,
    b: &distribution::Started,
) {
    let archive = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(archive.path(), "the fault archive of vm-1").expect("write");
    let stored = a
        .admin
        .upload_fault_archive("fault-0001", archive.path())
        .await
        .expect("upload the fault archive through a");
    assert_eq!(stored, ArchiveUpload::Stored);
    let fetched = request(
        &b.base,
        &format!(
            "GET /faults/acme/fault-0001 HTTP/1.1\r\nAuthorization: Bearer {}",
            b.admin_token
        ),
    );
    assert!(
        fetched.starts_with("HTTP/1.1 200") && fetched.ends_with("the fault archive of vm-1"),
        "b serves the archive a stored: {fetched}"
    );
    let again = b
        .admin
        .upload_fault_archive("fault-0001", archive.path())
        .await
        .expect("upload it again through b");
    assert_eq!(
        again,
        ArchiveUpload::AlreadyStored,
        "archives are written once"
    );

    let key = tempfile::NamedTempFile::new().expect("file");
    let read_through = |replica: &distribution::Started| {
        let admin = replica.admin.clone();
        async move {
            let dir = TempDir::new().expect("dir");
            let to = dir.path().join("api.pem");
            admin
                .download_private_file(ImageKind::Developer, "api", "keys/api.pem", &to)
                .await
                .map(|_| std::fs::read_to_string(&to).expect("read"))
        }
    };
    std::fs::write(key.path(), "key one").expect("write");
    a.admin
        .upload_private_file(ImageKind::Developer, "api", "keys/api.pem", key.path())
        .await
        .expect("store a private file through a");
    assert_eq!(read_through(b).await.expect("through b"), "key one");
    std::fs::write(key.path(), "key two").expect("write");
    b.admin
        .upload_private_file(ImageKind::Developer, "api", "keys/api.pem", key.path())
        .await
        .expect("replace it through b");
    assert_eq!(read_through(a).await.expect("through a"), "key two");
    let removed = request(
        &b.base,
        &format!(
            "DELETE /private-files/developer/api/keys/api.pem HTTP/1.1\r\nAuthorization: Bearer {}",
            b.admin_token
        ),
    );
    assert!(
        removed.starts_with("HTTP/1.1 2"),
        "remove through b: {removed}"
    );
    let gone = read_through(a).await;
    assert!(
        matches!(gone, Err(ClientError::Refused { status: 404, .. })),
        "removed on every replica: {gone:?}"
    );
}

/// An enrolment token issued through `a` installs through `b` (behind a load balancer,
/// either may get the install), and its one use is spent on both.
async fn enrolment_tokens_are_shared(a: &distribution::Started, b: &distribution::Started) {
    let issued: serde_json::Value = a
        .admin
        .graphql(
            "mutation { issueEnrolmentToken(services: [\"api\"], expires: \"1h\", uses: 1) { token info { id } } }",
            serde_json::json!({}),
        )
        .await
        .expect("issue an enrolment token through a");
    let token = issued["issueEnrolmentToken"]["token"]
        .as_str()
        .expect("token");
    let enrolled = b
        .admin
        .enrol_updater(token, "vm-7", None)
        .await
        .expect("enrol through b with the token a issued");
    assert_eq!(enrolled.account, "updater@vm-7");
    let again = a.admin.enrol_updater(token, "vm-8", None).await;
    assert!(
        again
            .as_ref()
            .is_err_and(|error| error.to_string().contains("used up")),
        "the one use is spent on every replica: {again:?}"
    );
}

/// A secret set through `a` is known to `b` at its next read of the store (every 2 s).
async fn secrets_are_shared(a: &distribution::Started, b: &distribution::Started) {
    let _: serde_json::Value = a
        .admin
        .graphql(
            "mutation($value: String!) { setSecret(name: \"jetto-token\", value: $value) { name } }",
            serde_json::json!({"value": "tok-5be1"}),
        )
        .await
        .expect("set a secret through a");
    Patience::up_to(LIMIT)
        .eventually("b knows the secret a set", || async {
            let listed: serde_json::Value = b
                .admin
                .graphql("{ secrets { name } }", serde_json::json!({}))
                .await
                .expect("secrets on b");
            (listed["secrets"][0]["name"] == "jetto-token").then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_takes_over_from_a_killed_holder_and_serves_the_other_replicas_images() {
    let Some(stand_ins) = stand_ins() else {
        return;
    };
    let shared = Shared::new(stand_ins, "replicas");
    let state = GitRepo::init_bare();
    let work = GitRepo::clone_from(&state);
    work.commit_files(
        &[("vupdate.yaml", "schema: 1\n")],
        "state",
        &Person::alice(),
    );
    work.push("origin", "main");
    let text = shared.config(state.path());

    let (dir_a, dir_b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let (mut a, first) = first_replica(&dir_a, &text).await;
    let mut b = other_replica(&dir_b, &text).await;
    let patience = Patience::up_to(LIMIT);

    // An image uploaded through a is downloaded through b (and the other way round).
    let bytes: Vec<u8> = (0..(3 << 20) + 5).map(|i| (i % 251) as u8).collect();
    let upload = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(upload.path(), &bytes).expect("write");
    let image = ImageRef::developer("api", "acme-1.0.0");
    a.admin
        .upload_image(&image, upload.path(), None)
        .await
        .expect("upload through a");
    let back = TempDir::new().expect("dir");
    b.admin
        .download_image(&image, &back.path().join("image.zip"))
        .await
        .expect("download through b");
    assert!(
        std::fs::read(back.path().join("image.zip")).expect("read") == bytes,
        "b serves the bytes a stored"
    );
    let other = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(other.path(), b"other bytes").expect("write");
    let again = b.admin.upload_image(&image, other.path(), None).await;
    assert!(
        again.is_err(),
        "the version is taken on every replica: {again:?}"
    );
    assert_eq!(taken(&dir_b), None, "b waits while a renews");
    fault_archives_and_private_files_are_shared(&a, &b).await;
    enrolment_tokens_are_shared(&a, &b).await;
    secrets_are_shared(&a, &b).await;

    // A commit announced only to the holder reaches b's desired versions and subscribers.
    let mut feed = b
        .admin
        .follow_client_desired_list(None, None)
        .await
        .expect("subscribe on b");
    let before = tokio::time::timeout(LIMIT, feed.next_list())
        .await
        .expect("the list in force, in time")
        .expect("the list in force")
        .expect("a list");
    assert!(before.versions.is_empty(), "{before:?}");
    let commit = work.commit_files(API_STATE, "api 1.0.0 for everyone", &Person::alice());
    work.push("origin", "main");
    let announced = Instant::now();
    hook(&a.base, &a.admin_token);
    // The first list from the new commit (an image arriving may repeat the old one).
    let pushed = tokio::time::timeout(LIMIT, async {
        loop {
            let list = feed
                .next_list()
                .await
                .expect("the next list")
                .expect("a list");
            if list.revision.is_some() {
                return list;
            }
        }
    })
    .await
    .expect("b's subscriber hears of the commit in time");
    let relayed = announced.elapsed();
    assert_eq!(pushed.revision.as_deref(), Some(commit.as_str()));
    assert_eq!(
        pushed
            .versions
            .get("api")
            .map(ToString::to_string)
            .as_deref(),
        Some("acme-1.0.0")
    );
    let on_b = b
        .admin
        .client_desired_list(None, None)
        .await
        .expect("clientDesiredVersions on b");
    assert_eq!(on_b.revision.as_deref(), Some(commit.as_str()));
    eprintln!(
        "commit announced to the holder, pushed to a subscriber on the other replica: {} ms",
        relayed.as_millis()
    );
    assert!(relayed < RELAYED, "took {relayed:?}\n{}", log(&dir_b));
    assert!(
        log(&dir_b).contains("another replica has another commit in force"),
        "b fetched because of the holder's record:\n{}",
        log(&dir_b)
    );
    feed.close().await;

    // And the other way: a commit whose webhook reached the standby (behind a load
    // balancer, any replica gets it) reaches the holder, which builds.
    let reviewed = work.commit_files(
        &[(
            "desired/developer.yaml",
            "versions:\n  api: acme-1.0.0 # reviewed\n",
        )],
        "api 1.0.0 reviewed",
        &Person::alice(),
    );
    work.push("origin", "main");
    let announced = Instant::now();
    hook(&b.base, &b.admin_token);
    answered(&a.admin, &reviewed, &dir_a).await;
    let relayed = announced.elapsed();
    eprintln!(
        "commit announced to the standby, answered by the holder: {} ms",
        relayed.as_millis()
    );
    assert!(relayed < RELAYED, "took {relayed:?}\n{}", log(&dir_a));

    // The version the push during the handover desires has its image: nothing to build.
    let newer = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(newer.path(), b"api 1.1.0").expect("write");
    a.admin
        .upload_image(
            &ImageRef::developer("api", "acme-1.1.0"),
            newer.path(),
            None,
        )
        .await
        .expect("upload through a");

    // kill -9 of the holder: b takes the lease over with the next token.
    let killed = Instant::now();
    a.server.kill().expect("SIGKILL");
    a.server.wait().expect("wait");
    // A push during the handover, its webhook lost with the holder: the new holder fetches
    // once when it takes the lease over.
    let during = work.commit_files(
        &[("desired/developer.yaml", "versions:\n  api: acme-1.1.0\n")],
        "api 1.1.0 for everyone",
        &Person::alice(),
    );
    work.push("origin", "main");
    taken_over(&dir_b, killed, first, "").await;
    let after_handover = answered(&b.admin, &during, &dir_b).await;
    assert_eq!(
        after_handover
            .versions
            .get("api")
            .map(ToString::to_string)
            .as_deref(),
        Some("acme-1.1.0")
    );
    eprintln!(
        "push during the handover answered by the new holder: {} ms after the kill -9",
        killed.elapsed().as_millis()
    );
    patience
        .eventually_or(
            "the new holder records the commit for the other replicas",
            || async {
                log(&dir_b)
                    .lines()
                    .any(|line| {
                        line.contains("recorded the commit in force") && line.contains(&during)
                    })
                    .then_some(())
            },
            || async { log(&dir_b) },
        )
        .await;

    // b keeps serving what a stored.
    let still = TempDir::new().expect("dir");
    b.admin
        .download_image(&image, &still.path().join("image.zip"))
        .await
        .expect("download through b after a died");
    distribution::terminate(&mut b.server);
}
