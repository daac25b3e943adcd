//! kill -9 of the lease holder in the middle of a build: the other replica takes over
//! within 10 s, runs the cut build again exactly once (one image, one successful task),
//! while the killed holder's builder, which outlives it, is fenced off (its token no
//! longer works on any replica); a push made between the kill and the take-over is built
//! once by the new holder and installed by a real updater.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::{Client, ClientError, ImageRef};
use vupdate_test_support::{GitRepo, MAIN, Patience, Person, isolate};

use crate::{LIMIT, distribution, first_replica, hello, log, other_replica, taken_over};

const API_UPDATE_JSON: &str = r#"{
  "update": [
    {
      "service": "api",
      "build": {
        "buildCommands": [ { "command": "sh", "args": ["build.sh"], "exitCode": 0 } ],
        "copyFiles": [ { "sourceFile": "out/api.sh", "destinationFile": "bin/api.sh" } ]
      },
      "install": { "runService": { "command": "bin/api.sh" } }
    }
  ]
}
"#;

/// A build script that appends its pid to `marks/started`, waits until the test creates
/// `marks/go` (so a build is certainly running when the holder is killed), builds, and
/// appends its pid to `marks/built`.
fn build_sh(marks: &Path) -> String {
    format!(
        r#"echo $$ >> {m}/started
while [ ! -e {m}/go ]; do sleep 0.1; done
mkdir -p out
printf '#!/bin/sh\necho api\n' > out/api.sh
chmod 755 out/api.sh
echo $$ >> {m}/built
"#,
        m = marks.display()
    )
}

/// The pids a mark file lists, one a line.
fn pids(path: &Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// Whether process `pid` is gone (a zombie counts as gone: its parent, the killed
/// server, is not there to reap it).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// The state every replica follows: `api` from `api_source`, and `hello` too when given.
fn state_files(api_source: &Path, hello_source: Option<&Path>) -> Vec<(String, String)> {
    let service = |url: &Path, name: &str| {
        format!(
            "developer:\n  sources:\n    - name: {name}\n      git:\n        url: {}\n        branch: main\n",
            url.display()
        )
    };
    let mut files = vec![
        ("vupdate.yaml".to_owned(), "schema: 1\n".to_owned()),
        ("services/api.yaml".to_owned(), service(api_source, "api")),
        (
            "desired/client.yaml".to_owned(),
            "versions: {}\n".to_owned(),
        ),
    ];
    match hello_source {
        None => files.extend([
            (
                "profiles.yaml".to_owned(),
                "profiles:\n  self: [api]\n".to_owned(),
            ),
            (
                "desired/developer.yaml".to_owned(),
                "versions:\n  api: acme-1.0.0\n".to_owned(),
            ),
        ]),
        Some(hello_source) => files.extend([
            (
                "services/hello.yaml".to_owned(),
                service(hello_source, "hello"),
            ),
            (
                "profiles.yaml".to_owned(),
                "profiles:\n  self: [api, hello]\n".to_owned(),
            ),
            (
                "desired/developer.yaml".to_owned(),
                "versions:\n  api: acme-1.0.0\n  hello: acme-1.0.0\n".to_owned(),
            ),
        ]),
    }
    files
}

fn commit(work: &GitRepo, files: &[(String, String)], message: &str) -> String {
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, text)| (path.as_str(), text.as_str()))
        .collect();
    let commit = work.commit_files(&files, message, &Person::alice());
    work.push("origin", MAIN);
    commit
}

/// The developer builds recorded in the shared store: (service, version, id, active,
/// succeeded).
async fn builds(client: &Client) -> Vec<(String, String, String, bool, Option<bool>)> {
    let data: Value = client
        .graphql(
            "{ tasks(type: \"BuildDeveloperVersion\", limit: 1000) { id active terminationStatus parameters { name value } } }",
            json!({}),
        )
        .await
        .expect("tasks");
    let parameter = |task: &Value, name: &str| {
        task["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .and_then(|p| p["value"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    data["tasks"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|task| {
            (
                parameter(task, "service"),
                parameter(task, "version"),
                task["id"].as_str().unwrap_or_default().to_owned(),
                task["active"] == true,
                task["terminationStatus"].as_bool(),
            )
        })
        .collect()
}

/// The pid of the `vupdate builder` child that runs `task`, from the task's log.
async fn builder_pid(client: &Client, task: &str) -> Option<i32> {
    let data: Value = client
        .graphql(
            "query($t: String!) { logs(filter: {task: $t}, limit: 1000) { message } }",
            json!({"t": task}),
        )
        .await
        .ok()?;
    data["logs"].as_array()?.iter().find_map(|line| {
        line["message"]
            .as_str()?
            .split("started the builder, process ")
            .nth(1)?
            .split(',')
            .next()?
            .parse()
            .ok()
    })
}

/// The access token in a process's environment.
fn token_of(pid: i32) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the builder's environment");
    environ
        .split(|&byte| byte == 0)
        .find_map(|entry| entry.strip_prefix(b"VUPDATE_ACCESS_TOKEN="))
        .map(|token| String::from_utf8_lossy(token).into_owned())
        .expect("the builder's access token")
}

/// A `vupdate updater run` of instance `vm-1` for `hello`, on the distribution at `base`.
fn start_updater(dir: &Path, base: &str, token: &str) -> Child {
    let token_file = dir.join("updater.token");
    std::fs::write(&token_file, token).expect("token file");
    let config = dir.join("updater.yaml");
    std::fs::write(
        &config,
        format!(
            "instance: vm-1\ndistributionUrl: {base}\naccessTokenFile: {}\nworkDirectory: {}\npollInterval: 1h\nstateInterval: 1s\n",
            token_file.display(),
            dir.display()
        ),
    )
    .expect("updater config");
    let log = std::fs::File::create(dir.join("updater.log")).expect("updater log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vupdate"));
    isolate(&mut command);
    command
        .args(["-v", "updater", "run", "--config"])
        .arg(&config)
        .args(["--services", "hello"])
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the updater")
}

/// Kills the process group led by `pid` (a build the test cut short), if it is left.
fn kill_group(pid: i32) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cut_by_kill_9_of_the_holder_runs_once_more_and_a_push_during_the_handover_reaches_an_updater()
 {
    let Some(stand_ins) = crate::stand_ins() else {
        return;
    };
    let shared = crate::Shared::new(stand_ins, "handover");
    let marks = TempDir::new().expect("dir");
    let api_source = GitRepo::init();
    api_source.commit_files(
        &[
            ("update.json", API_UPDATE_JSON),
            ("build.sh", &build_sh(marks.path())),
        ],
        "api",
        &Person::alice(),
    );
    let hello_source = hello::hello_source();
    let state = GitRepo::init_bare();
    let work = GitRepo::clone_from(&state);
    commit(&work, &state_files(api_source.path(), None), "api 1.0.0");
    let text = shared.config(state.path());

    // a takes the lease and builds api 1.0.0, which waits for `go`; b stands by.
    let (dir_a, dir_b) = (TempDir::new().expect("dir"), TempDir::new().expect("dir"));
    let (mut a, first) = first_replica(&dir_a, &text).await;
    let patience = Patience::up_to(LIMIT);
    let cut_script = patience
        .eventually_or(
            "a's build of api 1.0.0 to run",
            || async { pids(&marks.path().join("started")).first().copied() },
            || async { log(&dir_a) },
        )
        .await;
    let mut b = other_replica(&dir_b, &text).await;
    let cut_task = builds(&b.admin)
        .await
        .into_iter()
        .find(|(_, _, _, active, _)| *active)
        .map(|(_, _, id, _, _)| id)
        .expect("a's build task, in the shared store");
    let cut_builder = patience
        .eventually("the builder's pid in a's task log", || {
            builder_pid(&b.admin, &cut_task)
        })
        .await;
    // A real updater follows b (behind a load balancer it could be any replica).
    let updater_dir = TempDir::new().expect("dir");
    let token = distribution::issue_access_token(&b.admin, "updater").await;
    let mut updater = start_updater(updater_dir.path(), &b.base, &token);

    // kill -9 of the holder in the middle of the build; its builder is in a process group
    // of its own and outlives it.
    let killed = Instant::now();
    a.server.kill().expect("SIGKILL");
    a.server.wait().expect("wait");
    assert!(
        !gone(cut_builder) && !gone(cut_script),
        "the cut build outlives the holder"
    );
    // A push during the handover, its webhook lost with the holder: hello joins.
    let during = commit(
        &work,
        &state_files(api_source.path(), Some(hello_source.path())),
        "hello 1.0.0 for everyone",
    );
    taken_over(&dir_b, killed, first, " in the middle of a build").await;

    // The fence: the dead holder's builder still runs, but the take-over revoked its
    // token, so no replica takes anything from it (and its own server is gone).
    patience
        .eventually_or(
            "b's take-over to fence off the previous holder's builders",
            || async {
                log(&dir_b)
                    .contains("take-over done: the previous holder's builders are fenced off")
                    .then_some(())
            },
            || async { log(&dir_b) },
        )
        .await;
    assert!(!gone(cut_builder), "the cut builder still runs");
    let forged = TempDir::new().expect("dir");
    std::fs::write(forged.path().join("image.zip"), b"not built").expect("write");
    let fenced = b
        .admin
        .with_token(token_of(cut_builder))
        .upload_image(
            &ImageRef::developer("api", "acme-0.0.1"),
            &forged.path().join("image.zip"),
            None,
        )
        .await;
    assert!(
        matches!(fenced, Err(ClientError::Refused { status: 401, .. })),
        "the killed holder's builder is refused by the new holder: {fenced:?}"
    );
    eprintln!("the killed holder's builder, uploading through the new holder: {fenced:?}");

    // Both builds may go on now: the cut one (fenced) and the new holder's.
    std::fs::write(marks.path().join("go"), "").expect("go");
    let hello_image = ImageRef::developer("hello", "acme-1.0.0");
    let api_image = ImageRef::developer("api", "acme-1.0.0");
    patience
        .eventually_or(
            "the new holder builds api 1.0.0 and hello 1.0.0",
            || async {
                let api = b.admin.image_info(&api_image).await.ok()??;
                let hello = b.admin.image_info(&hello_image).await.ok()??;
                Some((api, hello))
            },
            || async { log(&dir_b) },
        )
        .await;
    let installed = Patience::up_to(LIMIT)
        .every(Duration::from_millis(300))
        .eventually_or(
            "the updater runs the version the push during the handover desired",
            || async { hello::serving(&updater_dir.path().join("hello")) },
            || async {
                format!(
                    "updater:\n{}\nb:\n{}",
                    std::fs::read_to_string(updater_dir.path().join("updater.log"))
                        .unwrap_or_default(),
                    log(&dir_b)
                )
            },
        )
        .await;
    assert_eq!(installed, "acme-1.0.0");
    eprintln!(
        "push during the handover built by the new holder and serving on the updater: {} ms after the kill -9",
        killed.elapsed().as_millis()
    );
    assert!(
        log(&dir_b)
            .lines()
            .any(|line| line.contains("recorded the commit in force") && line.contains(&during)),
        "b answers from the push during the handover:\n{}",
        log(&dir_b)
    );

    // Every build task ended: the cut one failed as interrupted, each version built by
    // exactly one successful task, and api's build script ran exactly once more.
    let ended = patience
        .eventually_or(
            "every build task to end",
            || async {
                let all = builds(&b.admin).await;
                all.iter()
                    .all(|(_, _, _, active, _)| !active)
                    .then_some(all)
            },
            || async { log(&dir_b) },
        )
        .await;
    let of = |service: &str| -> Vec<(String, Option<bool>)> {
        ended
            .iter()
            .filter(|(s, v, ..)| s == service && v == "acme-1.0.0")
            .map(|(_, _, id, _, succeeded)| (id.clone(), *succeeded))
            .collect()
    };
    let api_builds = of("api");
    assert_eq!(
        api_builds
            .iter()
            .filter(|(_, succeeded)| *succeeded == Some(true))
            .count(),
        1,
        "one successful build of api 1.0.0: {ended:#?}"
    );
    assert!(
        api_builds.contains(&(cut_task.clone(), Some(false))),
        "the cut task is failed as interrupted: {ended:#?}"
    );
    assert_eq!(api_builds.len(), 2, "api 1.0.0 built once more: {ended:#?}");
    let hello_builds = of("hello");
    assert_eq!(
        hello_builds,
        vec![(hello_builds[0].0.clone(), Some(true))],
        "hello 1.0.0 built once: {ended:#?}"
    );
    let started = pids(&marks.path().join("started"));
    assert_eq!(
        started.len(),
        2,
        "api's build ran on a, then once on b: {started:?}"
    );

    // The cut builder got to the end of its script but stored nothing: the image is the
    // new holder's, and no task of it succeeded.
    Patience::up_to(LIMIT)
        .eventually("the cut build script to end", || async {
            pids(&marks.path().join("built"))
                .contains(&cut_script)
                .then_some(())
        })
        .await;
    let after = builds(&b.admin).await;
    assert_eq!(
        after
            .iter()
            .filter(|(s, _, _, _, succeeded)| s == "api" && *succeeded == Some(true))
            .count(),
        1,
        "{after:#?}"
    );
    kill_group(cut_builder);
    kill_group(cut_script);

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(updater.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    updater.wait().expect("the updater stops");
    distribution::terminate(&mut b.server);
}
