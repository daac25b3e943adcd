//! A server's own bare clone of a remote (`StateRepo::open_clone`) and the checked-out
//! branch tools default to (`StateRepo::checked_out_branch`).

use vupdate_state::{StateError, StateRepo};
use vupdate_test_support::GitRepo;

use crate::fixture;

#[test]
fn a_remote_is_cloned_once_and_then_followed() {
    let (author, first) = fixture::repo();
    let remote = GitRepo::clone_bare_from(&author);
    let dir = tempfile::tempdir().expect("temp dir");
    let directory = dir.path().join("state.git");
    let url = remote.path().to_str().expect("UTF-8 path");

    let repo = StateRepo::open_clone(url, &directory, "main").expect("clone");
    assert_eq!(repo.head().expect("head").id, first);
    assert_eq!(repo.remote(), Some("origin"));

    // The second open reuses the clone, and fetch brings it up to the remote.
    author.write(
        "desired/developer.yaml",
        &fixture::developer_text_with("api", "jetto-9.0.0"),
    );
    let second = author.commit("Ship api 9", &vupdate_test_support::Person::bob());
    author.add_remote("origin", &remote);
    author.push("origin", "main");
    let again =
        StateRepo::open_clone("unused: already cloned", &directory, "main").expect("reopen");
    assert_eq!(again.fetch().expect("fetch").id, second);
}

#[test]
fn a_failed_clone_names_the_url_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let directory = dir.path().join("state.git");
    let url = dir
        .path()
        .join("no-such-repo")
        .to_string_lossy()
        .into_owned();
    let error = StateRepo::open_clone(&url, &directory, "main").expect_err("nothing to clone");
    assert!(matches!(error, StateError::Clone { .. }), "{error:?}");
    assert!(error.to_string().contains(&url), "{error}");
    assert!(!directory.exists() && !directory.with_extension("partial").exists());
}

#[test]
fn the_checked_out_branch_is_read_from_head() {
    let (repo, _) = fixture::repo();
    assert_eq!(
        StateRepo::checked_out_branch(repo.path()).as_deref(),
        Some("main")
    );
    repo.git(&["checkout", "--quiet", "-b", "staging"]);
    assert_eq!(
        StateRepo::checked_out_branch(repo.path()).as_deref(),
        Some("staging")
    );
    repo.git(&["checkout", "--quiet", "--detach"]);
    assert_eq!(StateRepo::checked_out_branch(repo.path()), None);
    let nowhere = tempfile::tempdir().expect("temp dir");
    assert_eq!(StateRepo::checked_out_branch(nowhere.path()), None);
}
