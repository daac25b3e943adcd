//! `vupdate state plan` end to end: the built binary on real Git repositories (a rename, a
//! removal and a version bump over several commits, an invalid HEAD, the Markdown a pull
//! request gets, compared with `tests/expected/plan.md`), and with `--distribution`
//! against a real server that built an image and has an instance reporting.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vupdate_test_support::{GitRepo, Person, isolate};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/state-repo")
}

fn vupdate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
        .args(args)
        .env_remove("VUPDATE_TOKEN")
        .envs(env.iter().copied());
    command.output().expect("vupdate runs")
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `vupdate state plan ARGS... --repo REPO`.
fn plan(repo: &GitRepo, args: &[&str]) -> Run {
    plan_with(repo, args, &[])
}

fn plan_with(repo: &GitRepo, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec![
        "state",
        "plan",
        "--repo",
        repo.path().to_str().expect("UTF-8"),
    ];
    all.extend(args);
    let output = vupdate(&all, env);
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The example state, then three commits: `web` renamed `frontend`, `worker` removed,
/// `api` bumped. Returns the repository and the example's commit.
fn three_commits() -> (GitRepo, String) {
    let repo = GitRepo::init();
    repo.copy_dir(&example_dir(), "");
    let example = repo.commit("Example state", &Person::alice());
    let web = repo.read("services/web.yaml");
    repo.remove("services/web.yaml");
    repo.write("services/frontend.yaml", &web);
    edit(&repo, "profiles.yaml", "    - web\n", "    - frontend\n");
    edit(
        &repo,
        "desired/developer.yaml",
        "  web: orbit-3.5.1\n",
        "  frontend: orbit-3.5.1\n",
    );
    repo.commit("Rename web to frontend", &Person::alice());
    repo.remove("services/worker.yaml");
    edit(&repo, "profiles.yaml", "    - worker\n", "");
    edit(
        &repo,
        "desired/developer.yaml",
        "  worker: orbit-3.5.0\n",
        "",
    );
    repo.commit("Retire the worker", &Person::bob());
    edit(
        &repo,
        "desired/developer.yaml",
        "  api: orbit-3.5.1\n",
        "  api: orbit-3.5.2\n",
    );
    repo.commit("api 3.5.2", &Person::bob());
    (repo, example)
}

fn edit(repo: &GitRepo, path: &str, from: &str, to: &str) {
    let text = repo.read(path);
    assert!(text.contains(from), "{path} holds {from:?}");
    repo.write(path, &text.replacen(from, to, 1));
}

#[test]
fn a_range_of_several_commits_shows_renames_removals_and_versions() {
    let (repo, example) = three_commits();
    let result = plan(&repo, &[&format!("{example}..HEAD")]);
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    let out = &result.stdout;
    assert!(out.contains("3 services change"), "{out}");
    assert!(
        out.contains(
            "\napi: versions change\n  developer orbit-3.5.1 -> orbit-3.5.2 (image not known)"
        ),
        "{out}"
    );
    assert!(
        out.contains("consumers receiving it: acme"),
        "api is in acme's profile: {out}"
    );
    assert!(out.contains("\nfrontend: renamed from web\n"), "{out}");
    assert!(
        out.contains("\nworker: removed; leaves self\n  developer orbit-3.5.0 -> (none)"),
        "{out}"
    );
    assert!(out.contains("instances to update: not known"), "{out}");
    assert!(
        out.contains("not known:\n  which images exist (no distribution asked)"),
        "{out}"
    );

    // The default is the last commit alone; `BASE HEAD` reads as `BASE..HEAD`.
    let last = plan(&repo, &[]);
    assert_eq!(last.code, Some(0), "{}", last.stderr);
    assert!(last.stdout.contains("1 service changes"), "{}", last.stdout);
    let two = plan(&repo, &["HEAD~2", "HEAD"]);
    assert!(two.stdout.contains("2 services change"), "{}", two.stdout);
    assert!(!two.stdout.contains("renamed"), "{}", two.stdout);

    let json = plan(&repo, &[&format!("{example}..HEAD"), "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["valid"], true);
    assert_eq!(value["services"][1]["renamedFrom"], "web");
    assert_eq!(value["services"][2]["change"], "removed");
}

#[test]
fn markdown_is_what_the_pull_request_gets() {
    let (repo, example) = three_commits();
    let result = plan(
        &repo,
        &[&format!("{example}..HEAD"), "--format", "markdown"],
    );
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    let head = repo.rev_parse("HEAD");
    let markdown = result
        .stdout
        .replace(&example[..12], "BASE")
        .replace(&head[..12], "HEAD");
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/expected/plan.md");
    if std::env::var_os("VUPDATE_UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, &markdown).expect("write the expected file");
    }
    let expected = std::fs::read_to_string(&expected_path).expect("tests/expected/plan.md");
    assert_eq!(
        markdown, expected,
        "VUPDATE_UPDATE_EXPECTED=1 writes the file anew"
    );
}

#[test]
fn an_invalid_head_exits_2_naming_file_and_line() {
    let (repo, _) = three_commits();
    edit(
        &repo,
        "desired/developer.yaml",
        "  api: orbit-3.5.2\n",
        "  api: 3.5.3\n",
    );
    repo.commit("A bad version", &Person::bob());
    let result = plan(&repo, &[]);
    assert_eq!(result.code, Some(2), "{}\n{}", result.stdout, result.stderr);
    assert!(
        result.stdout.contains("HEAD is invalid (1 problems)"),
        "{}",
        result.stdout
    );
    assert!(
        result.stdout.contains("desired/developer.yaml:3:"),
        "names the file and line: {}",
        result.stdout
    );
    let markdown = plan(&repo, &["--format", "markdown"]);
    assert_eq!(markdown.code, Some(2));
    assert!(
        markdown.stdout.contains("**HEAD is invalid**"),
        "{}",
        markdown.stdout
    );

    // Back to a valid HEAD from the invalid one: the plan compares with an empty base.
    let back = plan(&repo, &["HEAD..HEAD~1"]);
    assert_eq!(back.code, Some(0), "{}", back.stderr);
    assert!(
        back.stdout.contains("base is invalid, taken as empty"),
        "{}",
        back.stdout
    );
}

#[test]
fn other_failures_exit_1() {
    let (repo, _) = three_commits();
    for args in [&["no-such-rev..HEAD"][..], &["a...b"], &["a..b", "c"]] {
        let result = plan(&repo, args);
        assert_eq!(result.code, Some(1), "{args:?}: {}", result.stderr);
        assert!(result.stderr.starts_with("error: "), "{}", result.stderr);
    }
    let result = plan(&repo, &["--distribution", "http://127.0.0.1:9"]);
    assert_eq!(result.code, Some(1));
    assert!(
        result.stderr.contains("needs an access token"),
        "{}",
        result.stderr
    );
}
