//! Edits as commits: author and message, one-line diffs, stale and invalid edits, work trees.

use std::collections::BTreeSet;

use vupdate_state::{StateEdit, StateError, StateRepo};
use vupdate_test_support::{GitRepo, Person};

use crate::fixture::{self, carol};

#[test]
fn an_edit_is_one_commit_with_the_given_author_and_a_one_line_diff() {
    let (repo, first) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("mail", "orbit-1.0.1")]));
    let revision = state_repo
        .edit(
            edit,
            &first,
            &carol(),
            "Release mail 1.0.1\n\nFixes the queue.",
        )
        .expect("edit");

    assert_eq!(revision.parents, std::slice::from_ref(&first));
    assert_eq!(revision.summary, "Release mail 1.0.1");
    assert_eq!(revision.author, carol());
    assert_eq!(repo.rev_parse("main"), revision.id);
    let log = repo.git(&["log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", "main"]);
    assert_eq!(
        log.trim_end(),
        "Carol Operator <carol@example.com>|Carol Operator <carol@example.com>|Release mail 1.0.1\n\nFixes the queue."
    );
    assert_eq!(
        repo.changed_lines(&first, &revision.id),
        ["-  mail: orbit-1.0.0", "+  mail: orbit-1.0.1"]
    );
    // Comments and every other line survive.
    assert_eq!(
        repo.show("main", "desired/developer.yaml"),
        fixture::developer_text_with("mail", "orbit-1.0.1")
    );
    assert_eq!(
        repo.status(),
        "",
        "the checked-out work tree follows the branch"
    );
}

#[test]
fn adding_and_removing_services_changes_one_line_each() {
    let (repo, first) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let mut list = fixture::developer_with(&[]);
    list.remove("worker");
    list.insert(
        "db".parse().expect("name"),
        "orbit-2.0.0".parse().expect("version"),
    );
    let revision = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(list),
            &first,
            &carol(),
            "db 2, no worker",
        )
        .expect("edit");
    assert_eq!(
        repo.changed_lines(&first, &revision.id),
        [
            "-  db: orbit-1.0.0",
            "+  db: orbit-2.0.0",
            "-  worker: orbit-1.0.0"
        ]
    );

    let services: BTreeSet<_> = ["api", "web"]
        .iter()
        .map(|s| s.parse().expect("name"))
        .collect();
    let second = state_repo
        .edit(
            StateEdit::SetProfile {
                name: "partner".into(),
                services,
            },
            &revision.id,
            &carol(),
            "web for partners",
        )
        .expect("edit");
    assert_eq!(
        repo.changed_lines(&revision.id, &second.id),
        ["-  partner: [api]", "+  partner: [api, web]"]
    );
}

#[test]
fn a_stale_edit_is_refused() {
    let (repo, first) = fixture::repo();
    let second = repo.commit_files(
        &[("desired/client.yaml", "versions: {}\n")],
        "Someone else",
        &Person::bob(),
    );
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-9.0.0")]));
    let error = state_repo
        .edit(edit, &first, &carol(), "Based on an old view")
        .expect_err("stale");
    match error {
        StateError::Stale { expected, actual } => {
            assert_eq!((expected, actual), (first, second.clone()))
        }
        other => panic!("unexpected error: {other}"),
    }
    assert_eq!(repo.rev_parse("main"), second);
}

#[test]
fn an_edit_that_would_make_the_state_invalid_writes_nothing() {
    let (repo, first) = fixture::repo();
    let objects_before = repo.git(&["count-objects"]);
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("ghost", "orbit-1.0.0")]));
    let error = state_repo
        .edit(edit, &first, &carol(), "Add a ghost")
        .expect_err("invalid");
    let StateError::InvalidEdit { parent, errors } = &error else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(parent, &first);
    assert_eq!(
        errors.to_string(),
        "desired/developer.yaml:5:3: unknown service `ghost` in desired developer versions: there is no services/ghost.yaml"
    );
    assert_eq!(
        repo.git(&["count-objects"]),
        objects_before,
        "no blob, tree or commit was written"
    );
    // Removing a profile a consumer uses is refused the same way.
    repo.commit_files(
        &[(
            "consumers.yaml",
            "consumers:\n  acme: { profile: partner }\n",
        )],
        "acme",
        &Person::alice(),
    );
    let head = repo.rev_parse("main");
    let error = state_repo
        .edit(
            StateEdit::RemoveProfile("partner".into()),
            &head,
            &carol(),
            "drop",
        )
        .expect_err("invalid");
    assert!(
        error
            .to_string()
            .contains("unknown profile `partner` for consumer `acme`"),
        "{error}"
    );
    assert_eq!(repo.rev_parse("main"), head);
    assert_eq!(repo.status(), "");
}

#[test]
fn an_edit_that_changes_nothing_makes_no_commit() {
    let (repo, first) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let revision = state_repo
        .edit(
            StateEdit::SetDesiredDeveloper(fixture::developer_with(&[])),
            &first,
            &carol(),
            "nothing",
        )
        .expect("no-op");
    assert_eq!(revision.id, first);
    assert_eq!(repo.rev_parse("main"), first);
}

#[test]
fn a_checked_out_work_tree_stays_clean_and_up_to_date() {
    let (repo, first) = fixture::repo();
    // An unrelated local change is kept; the index and other files are untouched.
    repo.write("notes.txt", "local scratch\n");
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let versions = fixture::developer(&[("api", "orbit-1.0.0")]);
    let revision = state_repo
        .edit(
            StateEdit::SetTested {
                distribution: "qa".into(),
                versions,
            },
            &first,
            &carol(),
            "qa tested api",
        )
        .expect("edit");
    assert_eq!(repo.status(), "?? notes.txt\n");
    assert!(repo.read("tested.yaml").contains("api: orbit-1.0.0"));
    assert_eq!(
        repo.show(&revision.id, "tested.yaml"),
        repo.read("tested.yaml")
    );
}

#[test]
fn local_changes_to_the_edited_file_refuse_the_edit() {
    let (repo, first) = fixture::repo();
    repo.write(
        "desired/developer.yaml",
        "versions: {}\n# being edited by hand\n",
    );
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let error = state_repo
        .edit(edit, &first, &carol(), "api")
        .expect_err("work tree conflict");
    assert!(matches!(error, StateError::WorkTree { .. }), "{error}");
    assert_eq!(repo.rev_parse("main"), first, "the branch did not move");
    assert_eq!(
        repo.read("desired/developer.yaml"),
        "versions: {}\n# being edited by hand\n"
    );
}

#[test]
fn a_branch_that_is_not_checked_out_leaves_the_work_tree_alone() {
    let (repo, first) = fixture::repo();
    repo.branch("staging");
    let state_repo = StateRepo::open(repo.path(), "staging").expect("opens");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("web", "orbit-1.1.0")]));
    let revision = state_repo
        .edit(edit, &first, &carol(), "web on staging")
        .expect("edit");
    assert_eq!(repo.rev_parse("staging"), revision.id);
    assert_eq!(repo.rev_parse("main"), first);
    assert_eq!(repo.status(), "");
    let bare = GitRepo::clone_bare_from(&repo);
    let in_bare = StateRepo::open(bare.path(), "main").expect("opens bare");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("web", "orbit-1.2.0")]));
    let revision = in_bare
        .edit(edit, &first, &carol(), "in a bare repo")
        .expect("edit");
    assert_eq!(bare.rev_parse("main"), revision.id);
}

#[test]
fn of_two_concurrent_edits_on_one_parent_exactly_one_wins() {
    let (repo, first) = fixture::repo();
    let state_repo = std::sync::Arc::new(StateRepo::open(repo.path(), "main").expect("opens"));
    let results: Vec<_> = ["orbit-2.0.0", "orbit-3.0.0"]
        .into_iter()
        .map(|version| {
            let state_repo = state_repo.clone();
            let first = first.clone();
            std::thread::spawn(move || {
                let edit =
                    StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", version)]));
                state_repo.edit(edit, &first, &carol(), version)
            })
        })
        .map(|handle| handle.join().expect("thread"))
        .collect();
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert_eq!(repo.rev_parse("main"), won[0].id);
    let lost = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("one lost");
    assert!(
        matches!(lost, StateError::Stale { .. } | StateError::WorkTree { .. }),
        "{lost}"
    );
    assert_eq!(
        repo.status(),
        "",
        "the loser left the work tree as the winner made it"
    );
}
