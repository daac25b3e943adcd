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

#[cfg(feature = "distribution")]
#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;
#[cfg(feature = "distribution")]
#[allow(dead_code)]
#[path = "support/hello.rs"]
mod hello;

/// `--distribution` and GraphQL `plan` against a real server that built hello `acme-1.0.0`
/// and has two instances reporting it.
#[cfg(feature = "distribution")]
mod live {
    use std::time::Duration;

    use serde_json::{Value, json};
    use vupdate_client::{ServiceStateReport, StateReport};
    use vupdate_test_support::{GitRepo, Patience, Person};

    use super::{distribution, edit, hello, plan_with};

    /// Two builds on a loaded 2-core machine.
    const LIMIT: Duration = Duration::from_secs(240);

    fn report(instance: &str, role: Option<&str>) -> ServiceStateReport {
        ServiceStateReport {
            state_commit: None,
            labels: Default::default(),
            instance: instance.to_owned(),
            service: "hello".to_owned(),
            role: role.map(str::to_owned),
            directory: format!("/srv/{instance}/hello"),
            state: StateReport {
                time: chrono::Utc::now(),
                install_time: None,
                start_time: None,
                version: Some("acme-1.0.0".to_owned()),
                update_to_version: None,
                update_error: None,
                failures_count: None,
                last_exit_code: None,
                failed_version: None,
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_distribution_tells_images_present_builds_needed_and_instances() {
        let dir = tempfile::TempDir::new().expect("dir");
        let repos = hello::hello_repos();
        let mut started =
            distribution::start(dir.path(), &hello::hello_config(&repos.remote, "data")).await;
        let admin = &started.admin;
        Patience::up_to(LIMIT)
            .every(Duration::from_millis(300))
            .eventually_or(
                "hello's developer and client images are built",
                || async {
                    let data: Value = admin
                        .graphql(
                            "{ status { services { developerImage clientImage } } }",
                            json!({}),
                        )
                        .await
                        .ok()?;
                    let service = &data["status"]["services"][0];
                    (service["developerImage"] == true && service["clientImage"] == true)
                        .then_some(())
                },
                || async { distribution::log(dir.path()) },
            )
            .await;
        admin
            .set_service_states(&[report("vm-1", None), report("vm-2", Some("eu"))])
            .await
            .expect("states stored");

        let work = GitRepo::clone_from(&repos.remote);
        let old = work.rev_parse("HEAD");
        edit(&work, "desired/developer.yaml", "acme-1.0.0", "acme-1.0.1");
        let new = work.commit("hello 1.0.1", &Person::bob());
        let token = [("VUPDATE_TOKEN", started.admin_token.as_str())];
        let forward = plan_with(&work, &["--distribution", &started.base], &token);
        assert_eq!(forward.code, Some(0), "{}", forward.stderr);
        let out = &forward.stdout;
        assert!(
            out.contains("developer acme-1.0.0 -> acme-1.0.1 (build needed)"),
            "{out}"
        );
        assert!(
            out.contains("instances to update: no role: vm-1; eu: vm-2"),
            "{out}"
        );
        assert!(
            !out.contains("known-bad") && !out.contains("not known"),
            "the distribution reports its known-bad versions (none here): {out}"
        );
        let back = plan_with(
            &work,
            &["HEAD..HEAD~1", "--distribution", &started.base],
            &token,
        );
        assert_eq!(back.code, Some(0), "{}", back.stderr);
        assert!(
            back.stdout
                .contains("developer acme-1.0.1 -> acme-1.0.0 (image present)"),
            "{}",
            back.stdout
        );
        assert!(
            back.stdout
                .contains("client acme-1.0.1 -> acme-1.0.0 (image present)"),
            "{}",
            back.stdout
        );
        assert!(
            back.stdout.contains("instances to update: none"),
            "{}",
            back.stdout
        );

        // The same plan from the API, once the server's clone has the commit.
        work.push("origin", "main");
        let query = "query($base: String!, $head: String!) { plan(base: $base, head: $head) { \
            valid services { service developerImage instances { role instances } } markdown } }";
        let answer: Value = Patience::up_to(LIMIT)
            .every(Duration::from_millis(300))
            .eventually("the server knows the pushed commit", || async {
                admin
                    .graphql::<Value>(query, json!({"base": new, "head": old}))
                    .await
                    .ok()
            })
            .await;
        let service = &answer["plan"]["services"][0];
        assert_eq!(service["developerImage"], "PRESENT", "{answer}");
        assert_eq!(
            service["instances"],
            json!([]),
            "both run acme-1.0.0 already"
        );
        let answer: Value = admin
            .graphql(query, json!({"base": old, "head": new}))
            .await
            .expect("plan");
        assert_eq!(
            answer["plan"]["services"][0]["instances"],
            json!([{"role": null, "instances": ["vm-1"]}, {"role": "eu", "instances": ["vm-2"]}])
        );
        let markdown = answer["plan"]["markdown"].as_str().expect("markdown");
        assert!(
            markdown.contains("| `hello` | versions change |"),
            "{markdown}"
        );
        distribution::terminate(&mut started.server);
    }
}
