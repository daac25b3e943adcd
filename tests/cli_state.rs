//! `vupdate state ...` end to end: the built binary on real Git repositories, as a user runs it.
//!
//! Each test copies `examples/state-repo` into a fresh repository, runs the program and
//! checks both what it printed (and its exit code) and what Git holds afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vupdate_test_support::{GitRepo, Person, isolate};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/state-repo")
}

/// A work-tree repository holding the example state in one commit.
fn example_repo() -> GitRepo {
    let repo = GitRepo::init();
    repo.copy_dir(&example_dir(), "");
    repo.commit("Example state", &Person::alice());
    repo
}

fn vupdate(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
        .args(args)
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL");
    command.output().expect("vupdate runs")
}

fn in_repo<'a>(repo: &'a GitRepo, args: &[&'a str]) -> Output {
    let path = repo.path().to_str().expect("temp path is UTF-8");
    let mut all = args.to_vec();
    all.extend(["--repo", path]);
    vupdate(&all)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(output: Output) -> Run {
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

const BOB: &str = "Bob Builder <bob@example.com>";

/// `vupdate state set-desired --author BOB ARGS... --repo REPO`.
fn set_desired(repo: &GitRepo, args: &[&str]) -> Run {
    let mut all = vec!["state", "set-desired", "--author", BOB];
    all.extend(args);
    run(in_repo(repo, &all))
}

/// Commits, as `person`, `desired/developer.yaml` with the line `from` replaced by `to`;
/// returns the new commit.
fn bump(repo: &GitRepo, from: &str, to: &str, message: &str, person: &Person) -> String {
    let path = "desired/developer.yaml";
    repo.write(path, &repo.read(path).replace(from, to));
    repo.commit(message, person)
}

#[test]
fn validate_accepts_the_example() {
    let result = run(vupdate(&[
        "state",
        "validate",
        example_dir().to_str().expect("UTF-8"),
    ]));
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    assert!(
        result.stdout.contains("valid (5 services"),
        "{}",
        result.stdout
    );
}

#[test]
fn validate_names_file_line_and_problem_and_exits_2() {
    // (file, its broken content, what stderr must say)
    let cases = [
        (
            "profiles.yaml",
            "profiles:\n  self: [api, web\n",
            "profiles.yaml:2:",
        ),
        (
            "profiles.yaml",
            "profiles:\n  self:\n    - api\n    - mailer\n",
            "profiles.yaml:4:7: unknown service `mailer`",
        ),
        (
            "desired/developer.yaml",
            "versions:\n  api: orbit-3.5.x\n",
            "desired/developer.yaml:2:8: version `orbit-3.5.x`",
        ),
    ];
    for (file, content, expected) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&example_dir(), dir.path());
        std::fs::write(dir.path().join(file), content).expect("write broken file");
        let result = run(vupdate(&[
            "state",
            "validate",
            dir.path().to_str().expect("UTF-8"),
        ]));
        assert_eq!(result.code, Some(2), "{file}: {}", result.stderr);
        assert!(
            result.stderr.contains(expected),
            "{file}: expected {expected:?} in\n{}",
            result.stderr
        );
    }
}

#[test]
fn show_prints_the_desired_versions_at_any_revision() {
    let repo = example_repo();
    let first = repo.rev_parse("HEAD");
    bump(
        &repo,
        "api: orbit-3.5.1",
        "api: orbit-3.6.0",
        "Ship api 3.6.0",
        &Person::bob(),
    );

    let now = run(in_repo(&repo, &["state", "show"]));
    assert_eq!(now.code, Some(0), "{}", now.stderr);
    assert!(
        now.stdout.contains("orbit-3.6.0") && now.stdout.contains("Ship api 3.6.0"),
        "{}",
        now.stdout
    );
    let then = run(in_repo(&repo, &["state", "show", "--rev", &first]));
    assert!(
        then.stdout.contains("api          orbit-3.5.1"),
        "{}",
        then.stdout
    );
    let names = run(in_repo(&repo, &["state", "show", "--format", "names"]));
    assert_eq!(names.stdout, "api\ngeo-db\npayment-api\nweb\nworker\n");
}

#[test]
fn set_desired_commits_one_line_with_author_and_message() {
    let repo = example_repo();
    let before = repo.rev_parse("HEAD");
    let result = set_desired(&repo, &["api=orbit-3.6.0", "-m", "Ship the fix"]);
    assert_eq!(result.code, Some(0), "{}", result.stderr);

    let after = repo.rev_parse("HEAD");
    assert_ne!(before, after);
    assert_eq!(
        repo.git(&["log", "-1", "--format=%an <%ae>|%s"]).trim(),
        format!("{BOB}|Ship the fix")
    );
    assert_eq!(
        repo.changed_lines(&before, &after),
        ["-  api: orbit-3.5.1", "+  api: orbit-3.6.0"]
    );
    assert_eq!(repo.status(), "", "the work tree follows the branch");

    let history = run(in_repo(&repo, &["state", "history"]));
    assert!(
        history.stdout.contains("Ship the fix"),
        "{}",
        history.stdout
    );
    assert!(
        history
            .stdout
            .contains("developer api: orbit-3.5.1 -> orbit-3.6.0"),
        "{}",
        history.stdout
    );
}

#[test]
fn set_desired_refuses_bad_input_and_writes_nothing() {
    let repo = example_repo();
    let before = repo.rev_parse("HEAD");
    let cases: [(&[&str], &str); 4] = [
        (&["api=3.6"], "argument `api=3.6`: version `3.6`"),
        (&["mailer=orbit-1.0.0"], "unknown service `mailer`"),
        (&["api"], "argument `api`: expected SERVICE=VERSION"),
        (
            &["--expect", "HEAD~1", "api=orbit-3.6.0"],
            "does not name a commit",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["-m", "x"];
        all.extend(args);
        let result = set_desired(&repo, &all);
        assert_eq!(result.code, Some(2), "{args:?}: {}", result.stderr);
        assert!(
            result.stderr.contains(expected),
            "{args:?}: expected {expected:?} in\n{}",
            result.stderr
        );
        assert_eq!(repo.rev_parse("HEAD"), before, "{args:?} wrote nothing");
    }
}

#[test]
fn a_stale_edit_is_refused() {
    let repo = example_repo();
    let seen = repo.rev_parse("HEAD");
    let moved = bump(
        &repo,
        "web: orbit-3.5.1",
        "web: orbit-3.5.2",
        "Someone else's change",
        &Person::bob(),
    );

    let result = set_desired(&repo, &["--expect", &seen, "api=orbit-3.6.0", "-m", "x"]);
    assert_eq!(result.code, Some(2), "{}", result.stderr);
    assert!(
        result
            .stderr
            .contains("the state changed since you read it"),
        "{}",
        result.stderr
    );
    assert_eq!(repo.rev_parse("HEAD"), moved);
}

#[test]
fn revert_and_diff() {
    let repo = example_repo();
    let base = repo.rev_parse("HEAD");
    set_desired(&repo, &["api=orbit-3.6.0", "web=", "-m", "Ship and drop"]);
    let shipped = repo.rev_parse("HEAD");

    let diff = run(in_repo(&repo, &["state", "diff", &base]));
    assert!(
        diff.stdout
            .contains("developer api: orbit-3.5.1 -> orbit-3.6.0"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("developer web: removed (was orbit-3.5.1)"),
        "{}",
        diff.stdout
    );

    let result = run(in_repo(
        &repo,
        &["state", "revert", "--author", BOB, &shipped],
    ));
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    assert_eq!(
        repo.read("desired/developer.yaml"),
        repo.show(&base, "desired/developer.yaml")
    );
    assert!(
        repo.git(&["log", "-1", "--format=%s"])
            .starts_with("Revert \"Ship and drop\"")
    );
}

#[test]
fn push_goes_to_the_remote_and_a_rejected_push_changes_nothing() {
    let remote = GitRepo::init_bare();
    let repo = example_repo();
    repo.add_remote("origin", &remote);
    repo.push("origin", "main");

    let result = set_desired(
        &repo,
        &["--push", "origin", "api=orbit-3.6.0", "-m", "Ship"],
    );
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    assert_eq!(remote.rev_parse("main"), repo.rev_parse("HEAD"));

    // Someone else pushes first. Our edit, based on what we saw, is refused: the clone is
    // brought up to the remote (fetch, fast-forward) and our change is nowhere.
    let other = GitRepo::clone_from(&remote);
    bump(
        &other,
        "web: orbit-3.5.1",
        "web: orbit-3.5.2",
        "Theirs",
        &Person::bob(),
    );
    other.push("origin", "main");
    let ours = repo.rev_parse("HEAD");
    let result = set_desired(
        &repo,
        &[
            "--push",
            "origin",
            "--expect",
            &ours,
            "worker=orbit-3.6.0",
            "-m",
            "Mine",
        ],
    );
    assert_eq!(result.code, Some(2), "{}", result.stdout);
    assert!(
        result
            .stderr
            .contains("the state changed since you read it"),
        "{}",
        result.stderr
    );
    assert_eq!(remote.rev_parse("main"), other.rev_parse("HEAD"));
    assert_eq!(repo.rev_parse("HEAD"), other.rev_parse("HEAD"));
    assert!(
        repo.read("desired/developer.yaml")
            .contains("worker: orbit-3.5.0")
    );
    assert_eq!(repo.status(), "");
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("readable example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
