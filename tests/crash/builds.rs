//! kill -9 of the distribution while a build runs.

use std::path::Path;

use serde_json::{Value, json};
use tempfile::TempDir;
use vupdate_client::ImageRef;
use vupdate_test_support::{GitRepo, MAIN, Person};

use crate::support::{Server, eventually, gone};

const UPDATE_JSON: &str = r#"{
  "update": [
    {
      "service": "api",
      "build": {
        "buildCommands": [ { "command": "sh", "args": ["build.sh"], "exitCode": 0 } ],
        "copyFiles": [ { "sourceFile": "out/hello.sh", "destinationFile": "bin/hello.sh" } ]
      },
      "install": { "runService": { "command": "bin/hello.sh" } }
    }
  ]
}
"#;

/// A build script that, until `marks/go` exists, records its pid and a child's and waits
/// for the child (a build that would take five minutes); once `go` exists, it builds.
fn build_sh(marks: &Path) -> String {
    format!(
        r#"if [ -e {m}/go ]; then
  mkdir -p out
  printf '#!/bin/sh\necho hello\n' > out/hello.sh
  chmod 755 out/hello.sh
  echo built
  exit 0
fi
echo $$ > {m}/command.pid
sleep 300 &
echo $! > {m}/child.pid
wait
"#,
        m = marks.display()
    )
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

async fn tasks(server: &Server) -> Vec<Value> {
    let data: Value = server
        .admin()
        .graphql(
            "{ tasks(type: \"BuildDeveloperVersion\") { id active terminationStatus } }",
            json!({}),
        )
        .await
        .expect("tasks");
    data["tasks"].as_array().cloned().unwrap_or_default()
}

async fn task_log(server: &Server, task: &str) -> Vec<String> {
    task_lines(server, task)
        .await
        .iter()
        .map(|line| line["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn task_lines(server: &Server, task: &str) -> Vec<Value> {
    let data: Value = server
        .admin()
        .graphql(
            "query($t: String!) { logs(filter: {task: $t}, limit: 10000) { message terminationStatus } }",
            json!({"t": task}),
        )
        .await
        .expect("task log");
    data["logs"].as_array().expect("lines").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_cut_by_a_kill_is_failed_as_interrupted_its_processes_stopped_and_built_again() {
    let marks = TempDir::new().expect("dir");
    let remote = GitRepo::init_bare();
    let source = GitRepo::init();
    source.commit_files(
        &[
            ("update.json", UPDATE_JSON),
            ("build.sh", &build_sh(marks.path())),
        ],
        "hello",
        &Person::alice(),
    );
    source.add_remote("origin", &remote).push("origin", MAIN);
    let state = GitRepo::init();
    state.commit_files(
        &[
            ("vupdate.yaml", "schema: 1\n"),
            (
                "services/api.yaml",
                &format!(
                    "developer:\n  sources:\n    - name: api\n      git:\n        url: {}\n        branch: main\n",
                    remote.path().display()
                ),
            ),
            ("profiles.yaml", "profiles:\n  self: [api]\n"),
            ("desired/developer.yaml", "versions:\n  api: acme-1.0.0\n"),
        ],
        "Build api 1.0.0",
        &Person::bob(),
    );
    let mut server = Server::start(&Server::config(
        &format!("path: {}", state.path().display()),
        "builder:\n  maxParallelBuilds: 1\n",
    ))
    .await;
    let (command, child) = eventually("the build command to run", &server.dir, || async {
        Some((
            read_pid(&marks.path().join("command.pid"))?,
            read_pid(&marks.path().join("child.pid"))?,
        ))
    })
    .await;
    let first = tasks(&server).await[0]["id"]
        .as_str()
        .expect("task id")
        .to_owned();
    let builder: i32 = task_log(&server, &first)
        .await
        .iter()
        .find_map(|line| line.split("started the builder, process ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the builder's pid in the task log");

    server.kill9();
    // The build outlives the server that ran it: it is in its own process groups.
    assert!(
        !gone(command) && !gone(child),
        "the build ended with the server"
    );
    std::fs::write(marks.path().join("go"), "").expect("go");
    server.restart(None).await;

    // Before the restarted server builds anything, what the dead one left is stopped.
    eventually(
        "the old build's processes to be gone",
        &server.dir,
        || async { (gone(builder) && gone(command) && gone(child)).then_some(()) },
    )
    .await;
    // The new server's own build may already hold a lease of its own: only the dead
    // server's must be gone.
    let leases = crate::support::entries(&server.data().join("builder").join("running"));
    assert!(
        !leases.iter().any(|lease| lease.ends_with(&first)),
        "the killed build's lease was left: {leases:?}"
    );
    // The cut task says it was interrupted and that a new task does the work.
    let old = tasks(&server)
        .await
        .into_iter()
        .find(|t| t["id"] == first.as_str())
        .expect("the first task");
    assert_eq!(
        (&old["active"], &old["terminationStatus"]),
        (&json!(false), &json!(false))
    );
    let log = task_lines(&server, &first).await;
    let last = log
        .iter()
        .find(|line| !line["terminationStatus"].is_null())
        .and_then(|line| line["message"].as_str())
        .unwrap_or_default();
    assert!(
        last.contains("interrupted by a restart") && last.contains("new task"),
        "{log:#?}"
    );
    // The version is built again, by a new task.
    let image = ImageRef::developer("api", "acme-1.0.0");
    eventually("the version to be built again", &server.dir, || async {
        server.admin().image_info(&image).await.ok().flatten()
    })
    .await;
    let all = tasks(&server).await;
    let rebuilt = all
        .iter()
        .find(|t| t["id"] != first.as_str())
        .expect("a second build task");
    eventually("the second task to end", &server.dir, || async {
        let all = tasks(&server).await;
        let task = all.iter().find(|t| t["id"] == rebuilt["id"])?.clone();
        (task["active"] == false).then_some(())
    })
    .await;
    let all = tasks(&server).await;
    let rebuilt = all.iter().find(|t| t["id"] == rebuilt["id"]).expect("task");
    assert_eq!(rebuilt["terminationStatus"], true, "{all:#?}");
    assert_eq!(all.len(), 2, "{all:#?}");
    server.stop();
}
