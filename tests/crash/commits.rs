//! kill -9 of the distribution during a commit of desired state (and the lock files a kill
//! inside a ref update leaves in the server's clone).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use vupdate_client::{Client, ClientError};
use vupdate_test_support::{GitRepo, MAIN, Person};

use crate::support::{Server, eventually};

/// A state desiring `api: jetto-1.0.0` (a provider's version: never built here).
const FILES: [(&str, &str); 3] = [
    ("vupdate.yaml", "schema: 1\n"),
    (
        "services/api.yaml",
        "developer:\n  sources:\n    - name: api\n      git:\n        url: git@git.example.com:jetto/api.git\n        branch: main\n",
    ),
    ("desired/developer.yaml", "versions:\n  api: jetto-1.0.0\n"),
];

/// Asks for `api: version` on top of `expected`; the new commit's id once acknowledged.
async fn set_api(admin: &Client, version: &str, expected: &str) -> Result<String, ClientError> {
    let data: Value = admin
        .graphql(
            "mutation($v: String!, $e: String!) { setDeveloperDesiredVersions(changes: [{service: \"api\", version: $v}], expectedRevision: $e, comment: \"Move api\") { id } }",
            json!({"v": version, "e": expected}),
        )
        .await?;
    Ok(data["setDeveloperDesiredVersions"]["id"]
        .as_str()
        .expect("id")
        .to_owned())
}

/// The desired developer version of `api` in force.
async fn api_in_force(admin: &Client) -> String {
    let data: Value = admin
        .graphql(
            "{ developerDesiredVersions { service version } }",
            json!({}),
        )
        .await
        .expect("desired versions");
    data["developerDesiredVersions"]
        .as_array()
        .and_then(|list| list.iter().find(|v| v["service"] == "api"))
        .and_then(|v| v["version"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Every `*.lock` file (and the edit journal) under a Git directory.
fn leftovers(git_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for path in crate::support::entries(git_dir) {
        if path.is_dir() {
            found.extend(leftovers(&path));
        } else if path.extension().is_some_and(|e| e == "lock")
            || path
                .file_name()
                .is_some_and(|n| n == "vupdate-edit-in-progress")
        {
            found.push(path);
        }
    }
    found
}

/// The edit a crash cuts: `api: jetto-2.0.0` on top of `expected`.
async fn cut_edit(server: &mut Server, expected: &str, point: &str) {
    let expected = expected.to_owned();
    server
        .cut(point, |admin| async move {
            set_api(&admin, "jetto-2.0.0", &expected).await
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_cut_between_work_tree_and_branch_is_wholly_out_and_the_next_edit_works() {
    let state = GitRepo::init();
    state.commit_files(&FILES, "Desire api 1.0.0", &Person::alice());
    let head = state.rev_parse(MAIN);
    let mut server = Server::start(&Server::config(
        &format!("path: {}", state.path().display()),
        "",
    ))
    .await;
    server.kill9();
    cut_edit(&mut server, &head, "state.edit.work-tree-advanced").await;
    // What the crash left: the edit in the work tree and index, the branch where it was.
    assert_eq!(state.rev_parse(MAIN), head);
    assert!(
        !state.status().is_empty(),
        "the crash point was not between the two"
    );

    server.restart(None).await;
    assert_eq!(state.rev_parse(MAIN), head, "the branch moved");
    assert_eq!(
        state.status(),
        "",
        "the work tree does not match the branch"
    );
    assert_eq!(leftovers(&state.path().join(".git")), Vec::<PathBuf>::new());
    assert_eq!(api_in_force(server.admin()).await, "jetto-1.0.0");
    // Nothing blocks the next edit.
    let commit = set_api(server.admin(), "jetto-2.0.0", &head)
        .await
        .expect("the next edit");
    assert_eq!(state.rev_parse(MAIN), commit);
    assert_eq!(state.status(), "");
    assert!(state.read("desired/developer.yaml").contains("jetto-2.0.0"));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_cut_after_its_push_is_wholly_in_after_the_restart() {
    let remote = GitRepo::init_bare();
    let work = GitRepo::init();
    work.commit_files(&FILES, "Desire api 1.0.0", &Person::alice());
    work.add_remote("origin", &remote).push("origin", MAIN);
    let head = remote.rev_parse(MAIN);
    let mut server = Server::start(&Server::config(
        &format!("url: file://{}", remote.path().display()),
        "",
    ))
    .await;
    server.kill9();
    cut_edit(&mut server, &head, "state.edit.pushed").await;
    // The remote took the edit; the server's clone did not move its branch.
    let pushed = remote.rev_parse(MAIN);
    assert_ne!(pushed, head);
    let clone = server.data().join("state");
    // What a kill inside a ref update (gix's, or a `git fetch` of the server's) leaves:
    // the refs' lock files. No step of ours lies inside those, so they are made by hand.
    for lock in ["refs/heads/main.lock", "refs/remotes/origin/main.lock"] {
        std::fs::write(clone.join(lock), "").expect("a stale lock");
    }

    server.restart(None).await;
    eventually("the pushed edit to be in force", &server.dir, || async {
        (api_in_force(server.admin()).await == "jetto-2.0.0").then_some(())
    })
    .await;
    let branch = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&clone)
        .args(["rev-parse", MAIN])
        .output()
        .expect("git");
    assert_eq!(String::from_utf8_lossy(&branch.stdout).trim(), pushed);
    assert_eq!(leftovers(&clone), Vec::<PathBuf>::new());
    let commit = set_api(server.admin(), "jetto-3.0.0", &pushed)
        .await
        .expect("the next edit");
    assert_eq!(remote.rev_parse(MAIN), commit);
    server.stop();
}
