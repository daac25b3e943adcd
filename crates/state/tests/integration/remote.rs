//! A state repo shared through a remote: fetch, push, and a push that loses a race.

use vupdate_state::{StateEdit, StateError, StateRepo};
use vupdate_test_support::{GitRepo, MAIN, Person};

use crate::fixture::{self, carol};

/// A bare remote holding the fixture, and the distribution's bare clone of it.
fn shared() -> (GitRepo, GitRepo, String) {
    let (seed, first) = fixture::repo();
    let remote = GitRepo::init_bare();
    seed.add_remote("origin", &remote).push("origin", MAIN);
    let clone = GitRepo::clone_bare_from(&remote);
    (remote, clone, first)
}

/// The distribution's state repo over `clone`, following its `origin`.
fn following(clone: &GitRepo) -> StateRepo {
    StateRepo::open(clone.path(), MAIN)
        .expect("opens")
        .with_remote("origin")
        .expect("origin")
}

#[test]
fn an_edit_is_pushed_to_the_remote() {
    let (remote, clone, first) = shared();
    let state_repo = following(&clone);
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let revision = state_repo
        .edit(edit, &first, &carol(), "api 1.0.1")
        .expect("edit");
    assert_eq!(remote.rev_parse(MAIN), revision.id);
    assert_eq!(clone.rev_parse(MAIN), revision.id);
    assert_eq!(clone.rev_parse("refs/remotes/origin/main"), revision.id);
    assert_eq!(
        remote.changed_lines(&first, &revision.id),
        [
            "-  api: orbit-1.0.0  # the public API",
            "+  api: orbit-1.0.1  # the public API"
        ]
    );
}

#[test]
fn fetch_brings_the_branch_up_to_the_remote_and_stale_edits_are_refused() {
    let (remote, clone, first) = shared();
    let state_repo = following(&clone);
    // Someone pushes through their own clone.
    let bob = GitRepo::clone_from(&remote);
    let theirs = bob.commit_files(
        &[("desired/client.yaml", "versions: {}\n")],
        "Clear client list",
        &Person::bob(),
    );
    bob.push("origin", MAIN);

    // An edit based on what we saw before their push fetches first and is refused.
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let error = state_repo
        .edit(edit.clone(), &first, &carol(), "api")
        .expect_err("stale");
    assert!(
        matches!(&error, StateError::Stale { actual, .. } if actual == &theirs),
        "{error}"
    );
    assert_eq!(
        clone.rev_parse(MAIN),
        theirs,
        "the local branch caught up with the remote"
    );

    // Based on the new tip it goes through.
    let head = state_repo.fetch().expect("fetch");
    assert_eq!(head.id, theirs);
    let revision = state_repo
        .edit(edit, &head.id, &carol(), "api")
        .expect("edit");
    assert_eq!(remote.rev_parse(MAIN), revision.id);
}

#[test]
fn fetch_creates_a_missing_local_branch_and_reports_divergence() {
    let (remote, clone, first) = shared();
    clone.git(&["update-ref", "-d", "refs/heads/main"]);
    let state_repo = following(&clone);
    assert_eq!(state_repo.fetch().expect("fetch").id, first);
    assert_eq!(clone.rev_parse(MAIN), first);

    // A local commit the remote lacks is never thrown away.
    let bob = GitRepo::clone_from(&remote);
    bob.commit_files(
        &[("desired/client.yaml", "versions: {}\n")],
        "remote side",
        &Person::bob(),
    );
    bob.push("origin", MAIN);
    let local = clone.git(&[
        "commit-tree",
        "-p",
        &first,
        "-m",
        "local side",
        &format!("{first}^{{tree}}"),
    ]);
    clone.git(&["update-ref", "refs/heads/main", local.trim()]);
    let error = state_repo.fetch().expect_err("diverged");
    assert!(matches!(error, StateError::Diverged { .. }), "{error}");
    assert_eq!(clone.rev_parse(MAIN), local.trim());

    let error = StateRepo::open(clone.path(), MAIN)
        .expect("opens")
        .with_remote("upstream")
        .expect_err("no such remote");
    assert!(
        error
            .to_string()
            .starts_with("remote `upstream` is not configured"),
        "{error}"
    );
}

#[test]
fn a_push_that_loses_the_race_is_refused_and_nothing_changes_locally() {
    let (remote, clone, first) = shared();
    // Bob's commit reaches the remote after our fetch and before our push: his push runs
    // from our pre-push hook, which git runs after it has read the remote's refs.
    let bob = GitRepo::clone_from(&remote);
    let theirs = bob.commit_files(
        &[("desired/client.yaml", "versions: {}\n")],
        "Bob first",
        &Person::bob(),
    );
    let hook = clone.path().join("hooks/pre-push");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\ncd '{}' && git push --quiet origin main:main >/dev/null 2>&1\nexit 0\n",
            bob.path().display()
        ),
    )
    .expect("write hook");
    make_executable(&hook);

    let state_repo = following(&clone);
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let error = state_repo
        .edit(edit, &first, &carol(), "api")
        .expect_err("rejected");
    let StateError::PushRejected {
        reason,
        remote: remote_name,
        ..
    } = &error
    else {
        panic!("unexpected error: {error}")
    };
    assert_eq!(remote_name, "origin");
    assert!(
        reason.contains("[remote rejected]"),
        "git's reason is kept: {reason}"
    );
    assert_eq!(
        clone.rev_parse(MAIN),
        first,
        "the local branch is as before"
    );
    assert_eq!(
        remote.rev_parse(MAIN),
        theirs,
        "the remote kept the winner's commit"
    );

    std::fs::remove_file(&hook).expect("remove hook");
    assert_eq!(state_repo.fetch().expect("fetch").id, theirs);
}

#[test]
fn a_push_the_remote_declines_is_refused_with_its_reason() {
    let (remote, clone, first) = shared();
    let hook = remote.path().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'the state repo is frozen for the release' >&2\nexit 1\n",
    )
    .expect("write hook");
    make_executable(&hook);
    let state_repo = following(&clone);
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let error = state_repo
        .edit(edit, &first, &carol(), "api")
        .expect_err("declined");
    assert!(
        error
            .to_string()
            .contains("the state repo is frozen for the release"),
        "{error}"
    );
    assert_eq!(clone.rev_parse(MAIN), first);
    assert_eq!(remote.rev_parse(MAIN), first);
}

#[test]
fn a_checked_out_clone_is_restored_when_the_push_fails() {
    let (remote, _, first) = shared();
    let clone = GitRepo::clone_from(&remote);
    let hook = remote.path().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\nexit 1\n").expect("write hook");
    make_executable(&hook);
    let state_repo = following(&clone);
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    state_repo
        .edit(edit, &first, &carol(), "api")
        .expect_err("declined");
    assert_eq!(clone.rev_parse(MAIN), first);
    assert_eq!(clone.status(), "");
    assert_eq!(clone.read("desired/developer.yaml"), fixture::DEVELOPER);
}

#[test]
fn an_edit_whose_pushed_commit_a_fetch_brought_in_first_is_done_not_stale() {
    let (remote, _, first) = shared();
    let clone = GitRepo::clone_from(&remote);
    // Between the push and the edit's own move of the branch, a fetch (the server's
    // watcher) moves the local branch to the very commit just pushed.
    let hook = remote.path().join("hooks/post-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nread old new ref\nenv -u GIT_DIR git --git-dir={} update-ref \"$ref\" \"$new\"\n",
            clone.path().join(".git").display()
        ),
    )
    .expect("write hook");
    make_executable(&hook);
    let state_repo = following(&clone);
    let edit = StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", "orbit-1.0.1")]));
    let revision = state_repo
        .edit(edit, &first, &carol(), "api 1.0.1")
        .expect("the edit is in: pushed, and the branch at it");
    assert_eq!(remote.rev_parse(MAIN), revision.id);
    assert_eq!(clone.rev_parse(MAIN), revision.id);
    assert_eq!(clone.status(), "", "the work tree is at the commit too");
    assert!(
        clone
            .read("desired/developer.yaml")
            .contains("api: orbit-1.0.1")
    );
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn an_http_remote_is_fetched_with_the_git_program() {
    use std::io::{Read, Write};
    // A server on 127.0.0.1 that answers every request with 404: git reports the missing
    // repository, which shows the request went out over http through git.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/state.git",
        listener.local_addr().expect("address")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten().take(4) {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let (repo, _) = fixture::repo();
    repo.git(&["remote", "add", "web", &url]);
    let state_repo = StateRepo::open(repo.path(), MAIN)
        .expect("opens")
        .with_remote("web")
        .expect("web");
    let error = state_repo.fetch().expect_err("nothing there");
    let StateError::Fetch { reason, .. } = &error else {
        panic!("unexpected error: {error}")
    };
    assert!(reason.contains("not found"), "{reason}");
}

#[test]
fn a_proposal_is_a_branch_on_the_remote_and_a_newer_one_replaces_it() {
    let (remote, clone, first) = shared();
    let state_repo = following(&clone);
    let edit = |version: &str| {
        StateEdit::SetDesiredDeveloper(fixture::developer_with(&[("api", version)]))
    };
    let proposal = state_repo
        .propose(
            edit("orbit-1.0.1"),
            &first,
            "vupdate/jetto/aaa",
            "vupdate/jetto/",
            &carol(),
            "api 1.0.1 from jetto",
        )
        .expect("propose")
        .expect("a change");
    assert_eq!(remote.rev_parse("vupdate/jetto/aaa"), proposal.id);
    assert_eq!(remote.rev_parse(MAIN), first, "the followed branch stays");
    assert_eq!(proposal.parents, std::slice::from_ref(&first));
    assert_eq!(
        remote.changed_lines(&first, &proposal.id),
        [
            "-  api: orbit-1.0.0  # the public API",
            "+  api: orbit-1.0.1  # the public API"
        ]
    );

    // A newer proposal replaces it, also after a person deleted the old one remotely.
    let newer = state_repo
        .propose(
            edit("orbit-1.0.2"),
            &first,
            "vupdate/jetto/bbb",
            "vupdate/jetto/",
            &carol(),
            "api 1.0.2 from jetto",
        )
        .expect("propose")
        .expect("a change");
    let branches = remote.git(&["branch", "--list", "vupdate/*"]);
    assert_eq!(branches.trim(), "vupdate/jetto/bbb", "{branches}");
    assert_eq!(
        state_repo
            .branches_with_prefix("vupdate/jetto/")
            .expect("list"),
        ["vupdate/jetto/bbb"]
    );
    remote.git(&["branch", "-D", "vupdate/jetto/bbb"]);
    let third = state_repo
        .propose(
            edit("orbit-1.0.3"),
            &first,
            "vupdate/jetto/ccc",
            "vupdate/jetto/",
            &carol(),
            "api 1.0.3 from jetto",
        )
        .expect("a proposal whose predecessor is gone remotely")
        .expect("a change");
    assert_ne!(newer.id, third.id);
    assert_eq!(remote.rev_parse("vupdate/jetto/ccc"), third.id);

    // Nothing to change: no branch; a stale base is refused as for an edit.
    let same = state_repo
        .propose(
            StateEdit::SetDesiredDeveloper(fixture::developer_with(&[])),
            &first,
            "vupdate/jetto/ddd",
            "vupdate/jetto/",
            &carol(),
            "nothing",
        )
        .expect("propose");
    assert!(same.is_none());
    let error = state_repo
        .propose(
            edit("orbit-1.0.4"),
            "HEAD~0~1",
            "vupdate/jetto/eee",
            "vupdate/jetto/",
            &carol(),
            "x",
        )
        .expect_err("stale");
    assert!(
        matches!(
            error,
            StateError::Stale { .. } | StateError::UnknownRevision { .. }
        ),
        "{error}"
    );
}

#[test]
fn an_edit_of_the_tip_is_made_again_on_a_tip_that_moved() {
    let (remote, clone, _) = shared();
    let state_repo = following(&clone);
    // Someone pushes after this clone last fetched: the first try is stale.
    let bob = GitRepo::clone_from(&remote);
    let theirs = bob.commit_files(
        &[("desired/client.yaml", "versions: {}\n")],
        "Clear client list",
        &Person::bob(),
    );
    bob.push("origin", MAIN);
    let mut seen = Vec::new();
    let revision = state_repo
        .edit_tip(3, &carol(), |state| {
            seen.push(state.desired.developer.len());
            let mut list = state.desired.developer.clone();
            list.insert(
                "api".parse().expect("service"),
                "orbit-2.0.0".parse().expect("version"),
            );
            Some((StateEdit::SetDesiredDeveloper(list), "api 2.0.0".to_owned()))
        })
        .expect("edit")
        .expect("a commit");
    assert_eq!(seen.len(), 2, "asked again for the new tip");
    assert_eq!(revision.parents, [theirs]);
    assert_eq!(remote.rev_parse(MAIN), revision.id);
    let nothing = state_repo.edit_tip(3, &carol(), |_| None).expect("no edit");
    assert!(nothing.is_none());
}
