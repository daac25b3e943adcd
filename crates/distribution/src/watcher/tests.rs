//! The watcher against real Git repos: a bare remote, an author pushing to it, and a
//! local repo read in place.

use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::watch;
use tokio::time::timeout;
use vupdate_test_support::{GitRepo, Person};

use super::{RepoSource, StateWatcher, WatchConfig, WatchStatus, failure_backoff};

const LIMIT: Duration = Duration::from_secs(20);

/// A valid state repo with two services.
fn files(api_version: &str) -> Vec<(&'static str, String)> {
    vec![
        ("vupdate.yaml", "schema: 1\n".to_owned()),
        ("services/api.yaml", String::new()),
        ("services/web.yaml", String::new()),
        (
            "profiles.yaml",
            "profiles:\n  self: [api, web]\n".to_owned(),
        ),
        (
            "desired/developer.yaml",
            format!("versions:\n  api: {api_version}\n  web: orbit-1.0.0\n"),
        ),
        ("desired/client.yaml", "versions: {}\n".to_owned()),
    ]
}

fn commit(repo: &GitRepo, api_version: &str) -> String {
    let files = files(api_version);
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    repo.commit_files(&refs, &format!("api {api_version}"), &Person::alice())
}

/// An author's work tree, and the bare remote it pushes to, holding one valid commit.
fn remote() -> (GitRepo, GitRepo, String) {
    let author = GitRepo::init();
    let first = commit(&author, "orbit-1.0.0");
    let origin = GitRepo::clone_bare_from(&author);
    author.add_remote("origin", &origin);
    (author, origin, first)
}

fn config(source: RepoSource, poll: Duration) -> WatchConfig {
    WatchConfig {
        source,
        branch: "main".to_owned(),
        poll_interval: poll,
        max_backoff: poll * 4,
        // Only the poll and triggers, unless a test asks for the file watch.
        watch_files: false,
    }
}

/// Waits (bounded) until the status satisfies `ready`, and returns it.
async fn status_until(
    status: &mut watch::Receiver<WatchStatus>,
    ready: impl FnMut(&WatchStatus) -> bool,
) -> WatchStatus {
    timeout(LIMIT, status.wait_for(ready))
        .await
        .expect("the status changes in time")
        .expect("the watcher runs")
        .clone()
}

/// Waits (bounded) until `commit` is in force, and returns the status then.
async fn until_in_force(status: &mut watch::Receiver<WatchStatus>, commit: &str) -> WatchStatus {
    status_until(status, |s| s.in_force.as_deref() == Some(commit)).await
}

fn api_version(watcher: &StateWatcher) -> String {
    let in_force = watcher.in_force().expect("a state in force");
    let api: vupdate_core::service::ServiceName = "api".parse().expect("service");
    in_force.state.desired.developer[&api].to_string()
}

#[tokio::test]
async fn follows_a_remote_through_valid_and_invalid_commits() {
    let (author, origin, first) = remote();
    let dir = TempDir::new().expect("temp dir");
    let clone = dir.path().join("state").join("repo.git");
    let source = RepoSource::Remote {
        url: origin.path().to_string_lossy().into_owned(),
        directory: clone.clone(),
    };
    // A long poll: only triggers make it check again within the test.
    let watcher = StateWatcher::start(config(source.clone(), Duration::from_secs(3600)))
        .await
        .expect("start");
    assert!(clone.join("HEAD").exists(), "cloned on first start");
    let mut status = watcher.subscribe_status();

    let initial = status_until(&mut status, |s| s.in_force.is_some()).await;
    assert_eq!(initial.in_force.as_deref(), Some(first.as_str()));
    assert_eq!(api_version(&watcher), "orbit-1.0.0");

    // A valid commit, pushed, then the webhook.
    let second = commit(&author, "orbit-1.0.1");
    author.push("origin", "main");
    watcher.trigger();
    until_in_force(&mut status, &second).await;
    assert_eq!(api_version(&watcher), "orbit-1.0.1");

    // An invalid one: reported with file and line; the previous state stays in force.
    author.write(
        "desired/developer.yaml",
        "versions:\n  api: orbit-1.0.2\n  web: not-a-version\n",
    );
    let bad = author.commit("a bad version", &Person::bob());
    author.push("origin", "main");
    watcher.trigger_handle().trigger();
    let reported = status_until(&mut status, |s| s.last_error.is_some()).await;
    let error = reported.last_error.expect("an error");
    assert_eq!(error.commit, bad);
    let problem = &error.problems[0];
    assert_eq!(problem.path, "desired/developer.yaml");
    assert_eq!(problem.position.map(|p| p.line), Some(3), "{problem}");
    assert!(
        problem.to_string().starts_with("desired/developer.yaml:3:"),
        "{problem}"
    );
    assert_eq!(reported.in_force.as_deref(), Some(second.as_str()));
    assert_eq!(reported.tip.as_deref(), Some(bad.as_str()));
    assert_eq!(api_version(&watcher), "orbit-1.0.1");

    // A valid commit after it converges and clears the error.
    let fourth = commit(&author, "orbit-1.0.3");
    author.push("origin", "main");
    watcher.trigger();
    let converged = until_in_force(&mut status, &fourth).await;
    assert_eq!(converged.last_error, None);
    assert_eq!(converged.fetch_error, None);
    assert!(converged.last_fetch.is_some());
    assert_eq!(api_version(&watcher), "orbit-1.0.3");
    watcher.shutdown().await;

    // A restart reuses the clone instead of cloning again.
    let again = StateWatcher::start(config(source, Duration::from_secs(3600)))
        .await
        .expect("restart");
    let mut status = again.subscribe_status();
    until_in_force(&mut status, &fourth).await;
    again.shutdown().await;
}

#[tokio::test]
async fn polling_picks_up_a_commit_without_a_trigger() {
    let (author, _unused_origin, first) = remote();
    // A local work tree, read in place: each poll re-reads the branch.
    let watcher = StateWatcher::start(config(
        RepoSource::Local(author.path().to_path_buf()),
        Duration::from_millis(50),
    ))
    .await
    .expect("start");
    let mut status = watcher.subscribe_status();
    until_in_force(&mut status, &first).await;
    let mut in_force = watcher.subscribe();
    in_force.mark_unchanged();
    let second = commit(&author, "orbit-2.0.0");
    until_in_force(&mut status, &second).await;
    assert!(
        in_force.has_changed().expect("open"),
        "subscribers are told"
    );
    assert_eq!(api_version(&watcher), "orbit-2.0.0");
    watcher.shutdown().await;
}

#[tokio::test]
async fn a_commit_to_a_local_repo_is_seen_at_once_without_a_poll_or_a_trigger() {
    let (author, _unused_origin, first) = remote();
    // A poll of an hour: only the file watch can make the watcher look again in time.
    let watcher = StateWatcher::start(WatchConfig {
        watch_files: true,
        ..config(
            RepoSource::Local(author.path().to_path_buf()),
            Duration::from_secs(3600),
        )
    })
    .await
    .expect("start");
    let mut status = watcher.subscribe_status();
    until_in_force(&mut status, &first).await;
    let second = commit(&author, "orbit-2.0.0");
    until_in_force(&mut status, &second).await;
    // Packed refs too (`git gc`, `git pack-refs`), then a commit on top of them.
    author.git(&["pack-refs", "--all"]);
    let third = commit(&author, "orbit-3.0.0");
    until_in_force(&mut status, &third).await;
    assert_eq!(api_version(&watcher), "orbit-3.0.0");
    watcher.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_remote_is_reported_and_the_state_kept() {
    let (_author, origin, first) = remote();
    let dir = TempDir::new().expect("temp dir");
    let watcher = StateWatcher::start(config(
        RepoSource::Remote {
            url: origin.path().to_string_lossy().into_owned(),
            directory: dir.path().join("clone.git"),
        },
        Duration::from_millis(50),
    ))
    .await
    .expect("start");
    let mut status = watcher.subscribe_status();
    until_in_force(&mut status, &first).await;
    let moved = dir.path().join("moved-away");
    std::fs::rename(origin.path(), &moved).expect("move the remote away");
    let failing = status_until(&mut status, |s| s.fetch_error.is_some()).await;
    assert_eq!(failing.in_force.as_deref(), Some(first.as_str()));
    assert!(watcher.in_force().is_some());
    std::fs::rename(&moved, origin.path()).expect("bring it back");
    watcher.trigger();
    status_until(&mut status, |s| s.fetch_error.is_none()).await;
    watcher.shutdown().await;
}

#[tokio::test]
async fn a_clone_that_fails_names_the_url() {
    let dir = TempDir::new().expect("temp dir");
    let url = dir
        .path()
        .join("no-such-repo")
        .to_string_lossy()
        .into_owned();
    let error = StateWatcher::start(config(
        RepoSource::Remote {
            url: url.clone(),
            directory: dir.path().join("clone.git"),
        },
        Duration::from_millis(50),
    ))
    .await
    .expect_err("nothing to clone");
    assert!(error.to_string().contains(&url), "{error}");
    assert!(!dir.path().join("clone.git").exists(), "no half clone left");
}

#[test]
fn backoff_doubles_from_twice_the_poll_up_to_the_maximum() {
    let poll = Duration::from_millis(100);
    let max = Duration::from_secs(1);
    let mut backoff = failure_backoff(poll, max);
    for ceiling in [200, 400, 800, 1000, 1000] {
        let wait = backoff.next_delay();
        let ceiling = Duration::from_millis(ceiling);
        assert!(
            wait >= ceiling / 2 && wait <= ceiling,
            "{wait:?} for {ceiling:?}"
        );
    }
    let mut backoff = failure_backoff(poll, Duration::ZERO);
    assert!(
        backoff.next_delay() <= poll,
        "a maximum below the poll interval is the poll interval"
    );
}

#[tokio::test]
async fn a_first_start_on_an_invalid_tip_puts_the_newest_valid_commit_in_force() {
    let repo = GitRepo::init();
    commit(&repo, "orbit-1.0.0");
    let good = commit(&repo, "orbit-1.1.0");
    repo.write(
        "desired/developer.yaml",
        "versions:\n  ghost: orbit-1.0.0\n",
    );
    let bad = repo.commit("Name a service that does not exist", &Person::bob());
    repo.write("profiles.yaml", "profiles: [not, a, mapping]\n");
    let worse = repo.commit("Break the profiles too", &Person::bob());
    let watcher = StateWatcher::start(config(
        RepoSource::Local(repo.path().to_path_buf()),
        Duration::from_secs(3600),
    ))
    .await
    .expect("start");
    let mut status = watcher.subscribe_status();
    let seen = status_until(&mut status, |s| s.tip.is_some()).await;
    assert_eq!(seen.tip.as_deref(), Some(worse.as_str()));
    assert_eq!(
        seen.in_force.as_deref(),
        Some(good.as_str()),
        "two invalid commits are skipped"
    );
    assert_eq!(
        seen.last_error.as_ref().map(|e| e.commit.as_str()),
        Some(worse.as_str())
    );
    assert_eq!(api_version(&watcher), "orbit-1.1.0");
    assert_ne!(bad, good);
    watcher.shutdown().await;
}
