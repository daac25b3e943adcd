//! History of the desired lists, diffs between revisions, and reverts.

use vupdate_state::{Author, StateEdit, StateError, StateRepo};
use vupdate_test_support::Person;

use crate::fixture::{self, carol};

#[test]
fn history_lists_the_revisions_that_changed_a_desired_list_newest_first() {
    let (repo, first) = fixture::repo();
    let dev = repo.commit_files(
        &[(
            "desired/developer.yaml",
            &fixture::developer_text_with("web", "orbit-1.1.0"),
        )],
        "web 1.1.0",
        &Person::bob(),
    );
    repo.commit_files(
        &[(
            "profiles.yaml",
            "profiles:\n  self: [api, db, mail, web, worker]\n  partner: [api, web]\n",
        )],
        "Profiles only",
        &Person::alice(),
    );
    let client = repo.commit_files(
        &[("desired/client.yaml", "versions:\n  db: orbit-1.0.0_2\n")],
        "db settings",
        &Person::alice(),
    );
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");

    let history = state_repo.history(10).expect("history");
    let ids: Vec<&str> = history.iter().map(|e| e.revision.id.as_str()).collect();
    assert_eq!(ids, [client.as_str(), dev.as_str(), first.as_str()]);
    let flags: Vec<(bool, bool)> = history
        .iter()
        .map(|e| (e.developer_changed, e.client_changed))
        .collect();
    assert_eq!(flags, [(false, true), (true, false), (true, true)]);
    assert_eq!(history[1].revision.author.name, "Bob Example");
    let desired = history[1].desired.as_ref().expect("valid lists");
    assert_eq!(desired.developer["web"].to_string(), "orbit-1.1.0");
    assert_eq!(desired.client["db"].to_string(), "orbit-1.0.0_1");

    assert_eq!(state_repo.history(2).expect("history").len(), 2);
}

#[test]
fn diff_between_revisions_is_per_service() {
    let (repo, first) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let mut list = fixture::developer_with(&[("api", "orbit-1.1.0")]);
    list.remove("mail");
    list.insert(
        "new-svc".parse().expect("name"),
        "orbit-0.1.0".parse().expect("version"),
    );
    repo.commit_files(
        &[("services/new-svc.yaml", "")],
        "declare new-svc",
        &Person::alice(),
    );
    let head = repo.rev_parse("main");
    let edited = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(list),
            &head,
            &carol(),
            "several",
        )
        .expect("edit");

    let diff = state_repo.diff(&first, &edited.id).expect("diff");
    let show = |m: Vec<String>| m.join(", ");
    assert_eq!(
        show(
            diff.developer
                .changed
                .iter()
                .map(|(s, (a, b))| format!("{s}: {a} -> {b}"))
                .collect()
        ),
        "api: orbit-1.0.0 -> orbit-1.1.0"
    );
    assert_eq!(
        show(
            diff.developer
                .added
                .iter()
                .map(|(s, v)| format!("{s}={v}"))
                .collect()
        ),
        "new-svc=orbit-0.1.0"
    );
    assert_eq!(
        show(
            diff.developer
                .removed
                .iter()
                .map(|(s, v)| format!("{s}={v}"))
                .collect()
        ),
        "mail=orbit-1.0.0"
    );
    assert!(diff.client.is_empty());
    assert!(
        state_repo
            .diff(&edited.id, &edited.id)
            .expect("diff")
            .is_empty()
    );
}

#[test]
fn reverting_an_earlier_commit_keeps_the_later_ones() {
    let (repo, _) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let head = repo.rev_parse("main");
    let api = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-2.0.0")])),
            &head,
            &carol(),
            "api 2.0.0",
        )
        .expect("edit");
    let worker = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(fixture::developer_with(&[
                ("api", "orbit-2.0.0"),
                ("worker", "orbit-2.0.0"),
            ])),
            &api.id,
            &carol(),
            "worker 2.0.0",
        )
        .expect("edit");

    let reverted = state_repo
        .revert(
            &api.id,
            &worker.id,
            &Author::new("Dave", "dave@example.com"),
            None,
        )
        .expect("revert");
    assert_eq!(reverted.summary, "Revert \"api 2.0.0\"");
    assert_eq!(reverted.author.name, "Dave");
    let message = repo.git(&["log", "-1", "--format=%B", "main"]);
    assert!(
        message.contains(&format!("This reverts commit {}.", api.id)),
        "{message}"
    );
    assert_eq!(
        repo.changed_lines(&worker.id, &reverted.id),
        [
            "-  api: orbit-2.0.0  # the public API",
            "+  api: orbit-1.0.0  # the public API"
        ]
    );
    let state = state_repo.load("main").expect("valid");
    assert_eq!(state.desired.developer["worker"].to_string(), "orbit-2.0.0");
    assert_eq!(repo.status(), "");

    // Reverting it again changes nothing: no commit.
    let again = state_repo
        .revert(&api.id, &reverted.id, &carol(), Some("again"))
        .expect("no-op");
    assert_eq!(again.id, reverted.id);
}

#[test]
fn a_revert_that_conflicts_is_refused_with_the_paths() {
    let (repo, _) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let head = repo.rev_parse("main");
    let one = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.1.0")])),
            &head,
            &carol(),
            "api 1.1",
        )
        .expect("edit");
    let two = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.2.0")])),
            &one.id,
            &carol(),
            "api 1.2",
        )
        .expect("edit");
    let error = state_repo
        .revert(&one.id, &two.id, &carol(), None)
        .expect_err("conflict");
    match &error {
        StateError::RevertConflict { commit, paths } => {
            assert_eq!(commit, &one.id);
            assert_eq!(paths, &["desired/developer.yaml"]);
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(repo.rev_parse("main"), two.id);
}

#[test]
fn a_merge_commit_needs_a_mainline() {
    let (repo, _) = fixture::repo();
    repo.branch("side").checkout("side");
    repo.commit_files(
        &[(
            "desired/developer.yaml",
            &fixture::developer_text_with("worker", "orbit-3.0.0"),
        )],
        "worker 3 on a branch",
        &Person::bob(),
    );
    repo.checkout("main");
    repo.commit_files(
        &[("desired/client.yaml", "versions: {}\n")],
        "clear client list",
        &Person::alice(),
    );
    repo.git(&["merge", "--no-ff", "--quiet", "-m", "Merge side", "side"]);
    let merge = repo.rev_parse("main");
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");

    let error = state_repo
        .revert(&merge, &merge, &carol(), None)
        .expect_err("merge");
    assert!(
        matches!(error, StateError::RevertMergeCommit { parents: 2, .. }),
        "{error}"
    );
    let error = state_repo
        .revert_merge(&merge, 3, &merge, &carol(), None)
        .expect_err("no third parent");
    assert!(
        matches!(
            error,
            StateError::BadMainline {
                mainline: 3,
                parents: 2,
                ..
            }
        ),
        "{error}"
    );

    let reverted = state_repo
        .revert_merge(&merge, 1, &merge, &carol(), None)
        .expect("revert the merged branch");
    assert_eq!(
        repo.changed_lines(&merge, &reverted.id),
        ["-  worker: orbit-3.0.0", "+  worker: orbit-1.0.0"]
    );
    assert!(
        repo.git(&["log", "-1", "--format=%B", "main"])
            .contains("reversing\nchanges made to")
    );
}
