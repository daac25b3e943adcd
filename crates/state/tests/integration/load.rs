//! Loading the state at any commit, reading revisions, and invalid commits.

use vupdate_state::{StateError, StateRepo};
use vupdate_test_support::Person;

use crate::fixture;

#[test]
fn loads_an_old_commit_and_the_head_without_a_checkout() {
    let (repo, first) = fixture::repo();
    let second = repo.commit_files(
        &[(
            "desired/developer.yaml",
            &fixture::developer_text_with("api", "orbit-1.1.0"),
        )],
        "Release api 1.1.0",
        &Person::bob(),
    );
    // Move the work tree away: loading reads commits, not files on disk.
    repo.checkout(&first);
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let api = "api";

    let old = state_repo.load(&first).expect("old commit is valid");
    assert_eq!(old.desired.developer[api].to_string(), "orbit-1.0.0");
    let new = state_repo.load("main").expect("head is valid");
    assert_eq!(new.desired.developer[api].to_string(), "orbit-1.1.0");
    assert_eq!(state_repo.load(&second[..10]).expect("abbreviated id"), new);

    let head = state_repo.head().expect("head");
    assert_eq!(head.id, second);
    assert_eq!(head.summary, "Release api 1.1.0");
    assert_eq!(
        (head.author.name.as_str(), head.author.email.as_str()),
        ("Bob Example", "bob@example.com")
    );
    assert_eq!(head.parents, std::slice::from_ref(&first));
    assert_eq!(head.time.to_rfc3339(), "2026-01-01T00:01:00+00:00");
    assert_eq!(state_repo.resolve("main~1").expect("resolves").id, first);
}

#[test]
fn an_invalid_commit_reports_every_problem_with_the_commit_id() {
    let (repo, _) = fixture::repo();
    let bad = repo.commit_files(
        &[
            (
                "desired/developer.yaml",
                "versions:\n  api: orbit-1.x\n  nope: orbit-1.0.0\n",
            ),
            ("consumers.yaml", "consumers:\n  acme: { profile: gone }\n"),
        ],
        "Break things",
        &Person::alice(),
    );
    let error = StateRepo::open(repo.path(), "main")
        .expect("opens")
        .load("HEAD")
        .expect_err("invalid");
    let StateError::InvalidCommit { commit, errors } = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(commit, &bad);
    assert_eq!(
        errors.to_string(),
        "consumers.yaml:2:20: unknown profile `gone` for consumer `acme`: profiles.yaml declares no such profile\n\
         desired/developer.yaml:2:8: version `orbit-1.x`: build must be dot-separated numbers without leading zeros (e.g. `1.2.3`)\n\
         desired/developer.yaml:3:3: unknown service `nope` in desired developer versions: there is no services/nope.yaml"
    );
}

#[test]
fn unknown_revisions_branches_and_paths_are_named_in_errors() {
    let (repo, _) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let error = state_repo.load("no-such-branch").expect_err("unknown");
    assert!(
        matches!(&error, StateError::UnknownRevision { rev, .. } if rev == "no-such-branch"),
        "{error}"
    );

    let other = StateRepo::open(repo.path(), "release").expect("a missing branch opens");
    let error = other.head().expect_err("no branch");
    assert!(
        error
            .to_string()
            .starts_with("branch `release` does not exist"),
        "{error}"
    );

    let error = StateRepo::open(repo.path(), "bad..name").expect_err("invalid name");
    assert!(matches!(error, StateError::BadBranchName { .. }), "{error}");

    let error = StateRepo::open(repo.path().join("nowhere"), "main").expect_err("no repo");
    assert!(error.to_string().contains("nowhere"), "{error}");
}
