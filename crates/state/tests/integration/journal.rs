//! The edit journal after a crash: the state a process killed between moving the work tree
//! and moving the branch leaves (the end-to-end test `tests/crash/commits.rs` kills a real
//! server there), made here by hand, and what `recover_interrupted_edit` makes of it.

use vupdate_state::{Recovery, StateEdit, StateRepo};
use vupdate_test_support::{GitRepo, Person};

use crate::fixture::{self, carol};

const JOURNAL: &str = ".git/vupdate-edit-in-progress";

/// An edit made whole, then the branch put back to its parent: the work tree and index are
/// at the edit, the branch is not, and the journal names both (what a crash leaves).
fn crashed_edit() -> (GitRepo, StateRepo, String, String) {
    let (repo, first) = fixture::repo();
    let state_repo = StateRepo::open(repo.path(), "main").expect("opens");
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let edited = state_repo
        .edit(edit, &first, &carol(), "api 1.0.1")
        .expect("edit")
        .id;
    repo.git(&["update-ref", "refs/heads/main", &first]);
    repo.write(JOURNAL, &format!("{first} {edited}\n"));
    (repo, state_repo, first, edited)
}

#[test]
fn a_work_tree_ahead_of_its_branch_is_put_back() {
    let (repo, state_repo, first, edited) = crashed_edit();
    assert_ne!(repo.status(), "", "the crash state has the edit staged");
    let recovery = state_repo.recover_interrupted_edit().expect("recover");
    assert_eq!(
        recovery,
        Some(Recovery::RolledBack {
            branch: first.clone(),
            commit: edited
        })
    );
    assert_eq!(repo.status(), "");
    assert_eq!(repo.rev_parse("main"), first);
    assert_eq!(
        repo.read("desired/developer.yaml"),
        repo.show(&first, "desired/developer.yaml")
    );
    assert!(!repo.path().join(JOURNAL).exists());
    assert_eq!(state_repo.recover_interrupted_edit().expect("again"), None);
}

#[test]
fn an_edit_whose_branch_moved_is_complete_and_one_overtaken_is_left_alone() {
    let (repo, state_repo, _first, edited) = crashed_edit();
    repo.git(&["update-ref", "refs/heads/main", &edited]);
    assert_eq!(
        state_repo.recover_interrupted_edit().expect("recover"),
        Some(Recovery::Completed {
            commit: edited.clone()
        })
    );
    assert_eq!(repo.status(), "");

    // The branch moved elsewhere meanwhile: a person decides.
    let (repo, state_repo, _first, edited) = crashed_edit();
    let other = repo.commit_files(&[("notes.txt", "by hand\n")], "by hand", &Person::bob());
    let recovery = state_repo.recover_interrupted_edit().expect("recover");
    assert_eq!(
        recovery,
        Some(Recovery::LeftAlone {
            branch: other,
            commit: edited
        })
    );
    assert!(!repo.path().join(JOURNAL).exists());
}
