//! Builds end to end: `vupdate distribution run` plans a build for each desired version
//! without an image and runs it as a real `vupdate builder` child process, which reads the
//! state repo at the build's commit and talks to the server only through its API.
//!
//! - a source repo whose update.json builds a small shell program becomes a developer
//!   image (with its private file) and a client image, a version record naming the
//!   source commit, a tag in the source remote, succeeded tasks, build output in the task
//!   log, and a synced `status`;
//! - a failing build command fails its task, shows BUILD_FAILED with the step, and is not
//!   tried again until a new commit (which then builds it);
//! - cancelling a running build kills the builder and the build command's processes and
//!   leaves no image;
//! - a change of client settings is checked by a `BuildClientGeneration` task: one that
//!   leaves the image's content as it was makes nothing; one that changes it makes the
//!   next generation `_1`, which the distribution commits as the desired client version;
//! - the builder refuses a missing token, bad versions and an undeclared service as invalid
//!   input (exit 2), naming the step.
//!
//! Each test prints how long its builds took (a figure, never asserted).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::{Client, ImageKind, ImageRef};
use vupdate_test_support::{GitRepo, MAIN, Patience, Person, isolate};

// Shared with tests/gitops, which uses all of it.
#[allow(dead_code)]
#[path = "support/distribution.rs"]
mod distribution;

/// How long any wait may last (a loaded 2-core machine builds slowly).
const LIMIT: Duration = Duration::from_secs(180);

const UPDATE_JSON: &str = r#"{
  "update": [
    {
      "service": "api",
      "build": {
        "buildCommands": [
          { "command": "sh", "args": ["build.sh", "%%version%%"], "exitCode": 0 }
        ],
        "copyFiles": [
          { "sourceFile": "out/hello.sh", "destinationFile": "bin/hello.sh" }
        ]
      },
      "install": {
        "runService": { "command": "bin/hello.sh" }
      }
    }
  ]
}
"#;

const BUILD_OK: &str = r#"set -e
mkdir -p out
printf '#!/bin/sh\necho "hello from %s"\n' "$1" > out/hello.sh
chmod 755 out/hello.sh
echo "built hello $1"
"#;

const BUILD_FAILS: &str = r#"echo "compiling hello"
echo "hello.c:3: syntax error" >&2
exit 3
"#;

/// A source repository: a work tree to commit in, and the bare remote the builder clones.
struct Source {
    work: GitRepo,
    remote: GitRepo,
}

impl Source {
    fn new(build_sh: &str) -> Source {
        let remote = GitRepo::init_bare();
        let work = GitRepo::init();
        work.commit_files(
            &[("update.json", UPDATE_JSON), ("build.sh", build_sh)],
            "hello",
            &Person::alice(),
        );
        work.add_remote("origin", &remote);
        work.push("origin", MAIN);
        Source { work, remote }
    }

    fn commit_build(&self, build_sh: &str) -> String {
        let id =
            self.work
                .commit_files(&[("build.sh", build_sh)], "fix the build", &Person::alice());
        self.work.push("origin", MAIN);
        id
    }

    fn remote_tag(&self, tag: &str) -> Option<String> {
        let output = self.remote.run(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/tags/{tag}^{{commit}}"),
            ],
            &[],
        );
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// A running `vupdate distribution run` over a state repo desiring `api: acme-1.0.0`.
struct Scenario {
    source: Source,
    state: GitRepo,
    dir: TempDir,
    server: distribution::Server,
    admin: Client,
    /// When the state began to desire `api: acme-1.0.0`.
    started: Instant,
}

impl Scenario {
    async fn start(build_sh: &str) -> Scenario {
        let source = Source::new(build_sh);
        let state = GitRepo::init();
        let api = api_yaml(&source);
        state.commit_files(
            &[
                ("vupdate.yaml", "schema: 1\n"),
                ("services/api.yaml", &api),
                ("profiles.yaml", "profiles:\n  self: [api]\n"),
                ("desired/developer.yaml", "versions: {}\n"),
            ],
            "Declare api",
            &Person::alice(),
        );
        let dir = TempDir::new().expect("dir");
        let started = distribution::start(
            dir.path(),
            &format!(
                "name: acme\nlisten: 127.0.0.1:0\nstateRepo:\n  path: {}\n  pollInterval: 1s\nbuilder:\n  maxParallelBuilds: 1\n",
                state.path().display()
            ),
        )
        .await;
        let (server, admin) = (started.server, started.admin);
        let key = dir.path().join("app.key");
        std::fs::write(&key, "PRIVATE KEY of api\n").expect("key");
        admin
            .upload_private_file(ImageKind::Developer, "api", "keys/app.key", &key)
            .await
            .expect("upload the private file");
        // Only now that the private file is there does the state ask for the build.
        state.commit_files(
            &[("desired/developer.yaml", "versions:\n  api: acme-1.0.0\n")],
            "Build api 1.0.0 for the launch",
            &Person::bob(),
        );
        let started = Instant::now();
        Scenario {
            source,
            state,
            dir,
            server,
            admin,
            started,
        }
    }

    async fn query(&self, query: &str, variables: Value) -> Value {
        self.admin.graphql(query, variables).await.expect(query)
    }

    /// The status of `api`.
    async fn api_status(&self) -> Value {
        let data = self
            .query(
                "{ status { synced services { service sync desiredClientVersion developerImage clientImage builds { target version state task message } } } }",
                json!({}),
            )
            .await;
        data["status"]["services"]
            .as_array()
            .and_then(|services| services.iter().find(|s| s["service"] == "api"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    async fn tasks(&self, task_type: &str) -> Vec<Value> {
        let data = self
            .query(
                "query($t: String!) { tasks(type: $t) { id active terminationStatus parameters { name value } } }",
                json!({"t": task_type}),
            )
            .await;
        data["tasks"].as_array().cloned().unwrap_or_default()
    }

    async fn task_log(&self, task: &str) -> Vec<String> {
        let data = self
            .query(
                "query($t: String!) { logs(filter: {task: $t}, limit: 10000) { service unit message } }",
                json!({"t": task}),
            )
            .await;
        data["logs"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| {
                format!(
                    "{} {} {}",
                    l["service"].as_str().unwrap_or("?"),
                    l["unit"].as_str().unwrap_or("?"),
                    l["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Waits until `check` gives a value; fails after [`LIMIT`] with the server's log.
    async fn eventually<T, F, Fut>(&self, what: &str, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let report = || async {
            format!(
                "status: {:#}\nserver log:\n{}",
                self.api_status().await,
                server_log(self.dir.path())
            )
        };
        Patience::up_to(LIMIT)
            .every(Duration::from_millis(200))
            .eventually_or(what, check, report)
            .await
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.server.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let status = self.server.wait().expect("exit");
        assert!(
            status.success(),
            "{status}\n{}",
            server_log(self.dir.path())
        );
    }
}

/// `services/api.yaml`: the developer part, building from `source`.
fn api_yaml(source: &Source) -> String {
    format!(
        "developer:\n  sources:\n    - name: api\n      git:\n        url: {}\n        branch: main\n  privateFiles:\n    - keys/app.key\n",
        source.remote.path().display()
    )
}

fn server_log(dir: &Path) -> String {
    distribution::log(dir)
}

/// The parameter `name` of a task.
fn parameter(task: &Value, name: &str) -> String {
    task["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .and_then(|p| p["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desired_version_is_built_by_the_builder_process_uploaded_recorded_and_tagged() {
    let scenario = Scenario::start(BUILD_OK).await;
    let status = scenario
        .eventually("api to be synced", || async {
            let status = scenario.api_status().await;
            (status["sync"] == "SYNCED").then_some(status)
        })
        .await;
    eprintln!(
        "figure: developer and client build of api through `vupdate builder` children, desired commit to synced (polled every 1 s): {:.1} s",
        scenario.started.elapsed().as_secs_f64()
    );
    assert_eq!(status["developerImage"], true, "{status}");
    assert_eq!(status["clientImage"], true, "{status}");

    // The images are in the image store, whole: the developer one has the program, the
    // private file and install.json.
    let dir = scenario.dir.path();
    let developer = scenario
        .admin
        .download_image(
            &ImageRef::developer("api", "acme-1.0.0"),
            &dir.join("dev.zip"),
        )
        .await
        .expect("the developer image");
    assert!(developer.size > 0);
    let read = |name: &str| read_entry(&developer.path, name);
    assert_eq!(read("keys/app.key"), "PRIVATE KEY of api\n");
    let program = read("bin/hello.sh");
    assert!(program.contains("hello from acme-1.0.0"), "{program}");
    assert!(read("install.json").contains("runService"));
    scenario
        .admin
        .download_image(
            &ImageRef::client("api", "acme-1.0.0"),
            &dir.join("client.zip"),
        )
        .await
        .expect("the client image");

    // The version record names the source commit, who asked (the commit's author) and why.
    let head = scenario.source.work.rev_parse("HEAD");
    let records = scenario
        .admin
        .developer_versions_info("api", Some("acme-1.0.0"))
        .await
        .expect("records");
    let build = &records[0].build_info;
    assert_eq!(build.sources[0].commit.as_deref(), Some(head.as_str()));
    assert_eq!(build.sources[0].branch, "main");
    assert_eq!(build.author, "Bob Example <bob@example.com>");
    assert_eq!(build.comment, "Build api 1.0.0 for the launch");
    let clients = scenario
        .admin
        .client_versions_info("api", Some("acme-1.0.0"))
        .await
        .expect("client records");
    assert_eq!(
        clients[0].build_info.sources[0].commit.as_deref(),
        Some(head.as_str())
    );

    // The source remote has the tag.
    assert_eq!(
        scenario.source.remote_tag("api-acme-1.0.0").as_deref(),
        Some(head.as_str())
    );

    // Both tasks succeeded, with the commit that asked, and the build output in the log.
    let commit = scenario.state.rev_parse("HEAD");
    for task_type in ["BuildDeveloperVersion", "BuildClientVersion"] {
        let tasks = scenario.tasks(task_type).await;
        assert_eq!(tasks.len(), 1, "{task_type}: {tasks:?}");
        assert_eq!(tasks[0]["terminationStatus"], true, "{task_type}");
        assert_eq!(parameter(&tasks[0], "commit"), commit);
    }
    let task = scenario.tasks("BuildDeveloperVersion").await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let log = scenario.task_log(&task).await;
    let has = |text: &str| log.iter().any(|line| line.contains(text));
    assert!(has("builder PROCESS built hello acme-1.0.0"), "{log:#?}");
    assert!(has("builder BUILD tagged `api`"), "{log:#?}");
    assert!(
        has("distribution BUILD developer version acme-1.0.0 of api: started the builder"),
        "{log:#?}"
    );
    assert!(has("task succeeded"), "{log:#?}");
    scenario.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_settings_change_makes_the_next_generation_only_when_the_content_changes() {
    let scenario = Scenario::start(BUILD_OK).await;
    scenario
        .eventually("api to be synced", || async {
            (scenario.api_status().await["sync"] == "SYNCED").then_some(())
        })
        .await;
    let first = scenario
        .admin
        .client_versions_info("api", None)
        .await
        .expect("client records");
    assert_eq!(first.len(), 1, "{first:?}");
    let stamp = first[0]
        .settings
        .clone()
        .expect("the first client version is stamped");
    assert!(first[0].content_digest.is_some(), "{first:?}");

    // A macro value no file uses changes the settings but not the content: checked, and
    // nothing new is made.
    let api = api_yaml(&scenario.source);
    scenario.state.commit_files(
        &[(
            "services/api.yaml",
            &format!("{api}client:\n  macroValues:\n    greeting: hi\n"),
        )],
        "Say hi",
        &Person::bob(),
    );
    scenario
        .eventually("the unchanged generation check to end", || async {
            let tasks = scenario.tasks("BuildClientGeneration").await;
            (tasks.len() == 1 && tasks[0]["active"] == false).then_some(())
        })
        .await;
    let task = &scenario.tasks("BuildClientGeneration").await[0];
    assert_eq!(task["terminationStatus"], true, "{task}");
    let log = scenario.task_log(task["id"].as_str().expect("id")).await;
    assert!(
        log.iter()
            .any(|l| l.contains("the content equals client version acme-1.0.0")),
        "{log:#?}"
    );
    let records = scenario
        .admin
        .client_versions_info("api", None)
        .await
        .expect("client records");
    assert_eq!(records.len(), 1, "nothing new: {records:?}");

    // A settings repository with a file changes the content: `_1` is built, recorded and
    // made the desired client version by a commit of the distribution.
    let settings_remote = GitRepo::init_bare();
    let settings = GitRepo::init();
    settings.commit_files(
        &[("etc/api.conf", "greeting = hi\n")],
        "api settings",
        &Person::alice(),
    );
    settings.add_remote("origin", &settings_remote);
    settings.push("origin", MAIN);
    scenario.state.commit_files(
        &[(
            "services/api.yaml",
            &format!(
                "{api}client:\n  macroValues:\n    greeting: hi\n  settings:\n    - name: conf\n      git:\n        url: {}\n        branch: main\n",
                settings_remote.path().display()
            ),
        )],
        "Configure api",
        &Person::bob(),
    );
    let status = scenario
        .eventually("acme-1.0.0_1 to be desired and synced", || async {
            let status = scenario.api_status().await;
            (status["desiredClientVersion"] == "acme-1.0.0_1" && status["sync"] == "SYNCED")
                .then_some(status)
        })
        .await;
    assert_eq!(status["clientImage"], true, "{status}");
    let records = scenario
        .admin
        .client_versions_info("api", Some("acme-1.0.0_1"))
        .await
        .expect("client records");
    let second = records.first().expect("the record of acme-1.0.0_1");
    let second_stamp = second.settings.clone().expect("stamped");
    assert_ne!(second_stamp.hash, stamp.hash);
    assert_eq!(
        second_stamp.repositories[0].url,
        settings_remote.path().display().to_string()
    );
    assert_eq!(
        second_stamp.repositories[0].commit.as_deref(),
        Some(settings.rev_parse("HEAD").as_str())
    );
    assert_ne!(second.content_digest, first[0].content_digest);
    let dir = scenario.dir.path();
    let image = scenario
        .admin
        .download_image(
            &ImageRef::client("api", "acme-1.0.0_1"),
            &dir.join("client-1.zip"),
        )
        .await
        .expect("the new client image");
    assert_eq!(read_entry(&image.path, "etc/api.conf"), "greeting = hi\n");
    // The commit that made it desired is the distribution's, on top of the one that asked.
    let message = scenario
        .state
        .run(&["log", "-1", "--format=%an|%s", MAIN], &[]);
    let message = String::from_utf8_lossy(&message.stdout).trim().to_owned();
    assert!(message.contains("acme-1.0.0_1"), "{message}");
    scenario.stop();
}

/// The text of the file `name` in the image zip at `zip`.
fn read_entry(zip: &Path, name: &str) -> String {
    let file = std::fs::File::open(zip).expect("the image");
    let mut archive = zip::ZipArchive::new(file).expect("the image reads as a zip");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut archive.by_name(name).expect(name), &mut text).expect(name);
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_shows_its_step_and_waits_for_a_new_commit() {
    let scenario = Scenario::start(BUILD_FAILS).await;
    let status = scenario
        .eventually("the build to fail", || async {
            let status = scenario.api_status().await;
            (status["sync"] == "BUILD_FAILED").then_some(status)
        })
        .await;
    let build = &status["builds"][0];
    assert_eq!(build["state"], "FAILED");
    let message = build["message"].as_str().expect("message");
    assert!(message.contains("step `building`"), "{message}");
    assert!(message.contains("buildCommands[0]"), "{message}");
    assert!(message.contains("exit code 3"), "{message}");
    assert_eq!(status["developerImage"], false);
    let task = build["task"].as_str().expect("task").to_owned();
    let log = scenario.task_log(&task).await;
    assert!(
        log.iter().any(|l| l.contains("hello.c:3: syntax error")),
        "{log:#?}"
    );

    // Polls (every second) and a look by hand do not start it again on the same commit.
    let tasks = scenario.tasks("BuildDeveloperVersion").await;
    assert_eq!(tasks.len(), 1);
    let _: Value = scenario
        .query("mutation { retryFailedBuilds }", json!({}))
        .await;
    scenario
        .eventually("the retried build to fail again", || async {
            let tasks = scenario.tasks("BuildDeveloperVersion").await;
            (tasks.len() == 2 && tasks.iter().all(|t| t["active"] == false)).then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        scenario.tasks("BuildDeveloperVersion").await.len(),
        2,
        "retried in a loop"
    );

    // The source is fixed and a new state commit comes: the build runs again and succeeds.
    scenario.source.commit_build(BUILD_OK);
    scenario.state.commit_files(
        &[(
            "desired/developer.yaml",
            "# hello.c fixed\nversions:\n  api: acme-1.0.0\n",
        )],
        "Retry api after the fix",
        &Person::alice(),
    );
    scenario
        .eventually("api to be built after the new commit", || async {
            (scenario.api_status().await["sync"] == "SYNCED").then_some(())
        })
        .await;
    assert_eq!(scenario.tasks("BuildDeveloperVersion").await.len(), 3);
    scenario.stop();
}

/// Whether process `pid` is gone (or only a zombie waiting for its parent).
fn gone(pid: i32) -> bool {
    !vupdate_process::table::is_running(pid)
}

fn read_pid(path: &PathBuf) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_build_kills_the_builder_and_its_commands_and_leaves_no_image() {
    let pids = TempDir::new().expect("dir");
    let build_sh = format!(
        "echo $$ > {dir}/command.pid\nsleep 300 &\necho $! > {dir}/child.pid\necho started\nwait\n",
        dir = pids.path().display()
    );
    let scenario = Scenario::start(&build_sh).await;
    let (command, child) = scenario
        .eventually("the build command to run", || async {
            Some((
                read_pid(&pids.path().join("command.pid"))?,
                read_pid(&pids.path().join("child.pid"))?,
            ))
        })
        .await;
    let task = scenario.tasks("BuildDeveloperVersion").await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let builder: i32 = scenario
        .task_log(&task)
        .await
        .iter()
        .find_map(|l| l.split("started the builder, process ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the builder's pid in the task log");
    assert!(!gone(builder) && !gone(command) && !gone(child));

    let _: Value = scenario
        .query(
            "mutation($t: String!) { cancelTask(task: $t) }",
            json!({"t": task}),
        )
        .await;
    scenario
        .eventually("the task to end", || async {
            let tasks = scenario.tasks("BuildDeveloperVersion").await;
            (tasks[0]["active"] == false).then_some(())
        })
        .await;
    scenario
        .eventually("every process of the build to be gone", || async {
            (gone(builder) && gone(command) && gone(child)).then_some(())
        })
        .await;
    let tasks = scenario.tasks("BuildDeveloperVersion").await;
    assert_eq!(tasks[0]["terminationStatus"], false);
    let log = scenario.task_log(&task).await;
    assert!(
        log.iter().any(|l| l.contains("task failed: cancelled")),
        "{log:#?}"
    );
    let image = scenario
        .admin
        .image_info(&ImageRef::developer("api", "acme-1.0.0"))
        .await
        .expect("head");
    assert_eq!(image, None);
    let status = scenario.api_status().await;
    assert_eq!(status["sync"], "BUILD_FAILED", "{status}");
    assert_eq!(status["builds"][0]["message"], "cancelled");
    scenario.stop();
}

#[test]
fn a_build_without_a_token_or_with_a_bad_version_is_invalid_input() {
    let state = GitRepo::init();
    state.commit_files(
        &[("vupdate.yaml", "schema: 1\n")],
        "state",
        &Person::alice(),
    );
    let run = |args: &[&str], token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
        isolate(&mut command);
        command.env_remove("VUPDATE_ACCESS_TOKEN");
        if let Some(token) = token {
            command.env("VUPDATE_ACCESS_TOKEN", token);
        }
        let output = command
            .args(["builder"])
            .args(args)
            .args(["--distribution", "http://127.0.0.1:9", "--state-repo"])
            .arg(state.path())
            .output()
            .expect("run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["build-developer-version", "api", "acme-1.0.0"], None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("set VUPDATE_ACCESS_TOKEN"), "{stderr}");
    let (code, stderr) = run(&["build-developer-version", "api", "1.0"], Some("t"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("VERSION `1.0`"), "{stderr}");
    let (code, stderr) = run(
        &["build-client-version", "api", "acme-1.0.0", "acme-1.0.1_1"],
        Some("t"),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is not a client version of DEV_VERSION acme-1.0.0"),
        "{stderr}"
    );
    // A service the state does not declare: the step says so.
    let (code, stderr) = run(&["build-developer-version", "api", "acme-1.0.0"], Some("t"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("step `reading the build settings`"),
        "{stderr}"
    );
    assert!(stderr.contains("service `api` is not declared"), "{stderr}");
}
