//! A full developer build: a source repository whose update.json builds a small shell
//! program; the image must hold exactly the specified files, and the tag must be pushed.

use std::collections::BTreeMap;
use std::sync::Arc;

use vupdate_builder::log::{UNIT_BUILD, UNIT_PROCESS};
use vupdate_builder::{BuildLog, CancellationToken};
use vupdate_core::log::Level;

use crate::support::{self, Entry, Source};

const UPDATE_JSON: &str = r#"{
  "update": [
    {
      "service": "hello",
      "build": {
        "buildCommands": [
          {
            "command": "sh",
            "args": ["build.sh", "%%version%%", "%%flavour%%"],
            "env": { "GREETING": "Hello" },
            "exitCode": 0,
            "outputMatch": "built hello acme-1\\.0\\.0"
          }
        ],
        "copyFiles": [
          { "sourceFile": "out/hello", "destinationFile": "bin/hello" },
          { "sourceFile": "scripts", "destinationFile": "bin" },
          {
            "sourceFile": "config",
            "destinationFile": "config",
            "except": ["dev.conf", "local"],
            "settings": { "port": "8080" }
          },
          { "sourceFile": "../shared/common.txt", "destinationFile": "share/common.txt" }
        ]
      },
      "install": {
        "runService": { "command": "bin/hello", "args": ["%%role%%"] }
      }
    }
  ]
}
"#;

const BUILD_SH: &str = r#"set -e
mkdir -p out
printf '#!/bin/sh\necho "%s from %s (%s, %s)"\n' "$GREETING" "$1" "$2" "$BUILD_ENV" > out/hello
chmod 755 out/hello
echo "built hello $1"
echo "a warning on stderr" >&2
"#;

fn hello_source() -> Source {
    Source::new(&[
        ("update.json", UPDATE_JSON, false),
        ("build.sh", BUILD_SH, false),
        ("scripts/run.sh", "#!/bin/sh\nexec bin/hello \"$@\"\n", true),
        (
            "config/app.conf",
            "port = %%port%%\nrole = %%role%%\n",
            false,
        ),
        ("config/sub/log.properties", "level=INFO\n", false),
        ("config/dev.conf", "debug = true\n", false),
        ("config/local/secret.txt", "developer's own\n", false),
        ("README.md", "not in the image\n", false),
    ])
}

#[tokio::test]
async fn a_shell_program_builds_into_exactly_the_specified_image_and_the_sources_are_tagged() {
    let hello = hello_source();
    let shared = Source::new(&[("common.txt", "shared between services\n", false)]);
    let (temp, builder) = support::builder();
    let private = temp.path().join("private");
    std::fs::create_dir_all(private.join("keys")).expect("mkdir");
    std::fs::write(private.join("keys/client.key"), "PRIVATE KEY\n").expect("write");

    let mut request = support::request(
        "hello",
        "acme-1.0.0",
        vec![hello.repository("hello"), shared.repository("shared")],
    );
    request.settings.macro_values = BTreeMap::from([("flavour".to_owned(), "mint".to_owned())]);
    request.settings.environment = BTreeMap::from([("BUILD_ENV".to_owned(), "ci".to_owned())]);
    request.settings.private_files = vec!["keys/client.key".to_owned()];
    request.private_files = Some(private);
    let (log, shared_log) = support::memory_log();

    let built = builder
        .build_developer(request, shared_log, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("build failed: {e}\nlog:\n{}", log.text()));

    let files = support::read_zip(&built.zip.path);
    let install: serde_json::Value =
        serde_json::from_slice(&files["install.json"].content).expect("install.json is JSON");
    // The `install` section, with core's defaults written out, so the updater reads exactly
    // what was built; install-time macros (`%%role%%`) are the updater's to expand.
    assert_eq!(
        install,
        serde_json::json!({"runService": {
            "command": "bin/hello",
            "args": ["%%role%%"],
            "uploadLogs": false,
            "faultFilesMatch": "core",
            "restartOnFault": true,
            "stopSignal": "TERM",
            "stopTimeoutMs": 5000
        }})
    );
    let expected = BTreeMap::from([
        (
            "bin/hello".to_owned(),
            Entry::text(
                0o755,
                "#!/bin/sh\necho \"Hello from acme-1.0.0 (mint, ci)\"\n",
            ),
        ),
        (
            "bin/run.sh".to_owned(),
            Entry::text(0o755, "#!/bin/sh\nexec bin/hello \"$@\"\n"),
        ),
        (
            "config/app.conf".to_owned(),
            // `settings` macros are expanded; install-time ones (`%%role%%`) stay.
            Entry::text(0o644, "port = 8080\nrole = %%role%%\n"),
        ),
        (
            "config/sub/log.properties".to_owned(),
            Entry::text(0o644, "level=INFO\n"),
        ),
        (
            "share/common.txt".to_owned(),
            Entry::text(0o644, "shared between services\n"),
        ),
        (
            "install.json".to_owned(),
            Entry {
                mode: 0o644,
                content: files["install.json"].content.clone(),
            },
        ),
        (
            "keys/client.key".to_owned(),
            Entry::text(0o644, "PRIVATE KEY\n"),
        ),
    ]);
    assert_eq!(files, expected, "image:\n{}", support::show(&files));

    // The result names the zip and what it was built from.
    let bytes = std::fs::read(&built.zip.path).expect("zip");
    assert_eq!(built.zip.size, bytes.len() as u64);
    assert_eq!(built.zip.sha256.len(), 64);
    let head = hello.work.rev_parse("HEAD");
    let shared_head = shared.work.rev_parse("HEAD");
    let commits: Vec<(&str, &str)> = built
        .sources
        .iter()
        .map(|source| (source.name.as_str(), source.commit.as_str()))
        .collect();
    assert_eq!(
        commits,
        [("hello", head.as_str()), ("shared", shared_head.as_str())]
    );
    assert_eq!(built.sources[0].url, hello.url());

    // Every source repository has the tag, pushed to its remote.
    assert_eq!(
        hello.remote_tag("hello-acme-1.0.0").as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        shared.remote_tag("hello-acme-1.0.0").as_deref(),
        Some(shared_head.as_str())
    );

    // Both output streams reached the log, each line on its own.
    assert!(
        support::logged(&log, Level::Info, UNIT_PROCESS, "built hello acme-1.0.0"),
        "{}",
        log.text()
    );
    assert!(
        support::logged(&log, Level::Info, UNIT_PROCESS, "a warning on stderr"),
        "{}",
        log.text()
    );
    assert!(
        support::logged(&log, Level::Info, UNIT_BUILD, "hello-acme-1.0.0"),
        "{}",
        log.text()
    );
}

/// A log that creates a file when a line arrives: the command waits for that file, so the
/// build only finishes if lines reach the log while the command still runs.
struct Releasing {
    inner: Arc<vupdate_builder::MemoryLog>,
    when: &'static str,
    create: std::path::PathBuf,
}

impl BuildLog for Releasing {
    fn line(&self, level: Level, unit: &str, message: &str) {
        if unit == UNIT_PROCESS && message == self.when {
            std::fs::write(&self.create, "").expect("release the command");
        }
        self.inner.line(level, unit, message);
    }
}

#[tokio::test]
async fn output_reaches_the_log_while_the_command_runs() {
    let update = r#"{"update": [{"service": "wait", "build": {
        "buildCommands": [{
            "command": "sh",
            "args": ["-c", "echo waiting; i=0; while [ ! -f released ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; test -f released && echo released"],
            "exitCode": 0
        }],
        "copyFiles": [{"sourceFile": "released", "destinationFile": "released"}]
    }}]}"#;
    let source = Source::new(&[("update.json", update, false)]);
    let (_temp, builder) = support::builder();
    let checkout = builder
        .developer_directory(&"wait".parse().expect("service"))
        .join("source/wait");
    let memory = Arc::new(vupdate_builder::MemoryLog::new());
    let log = Arc::new(Releasing {
        inner: memory.clone(),
        when: "waiting",
        create: checkout.join("released"),
    });
    let request = support::request("wait", "acme-2", vec![source.repository("wait")]);
    builder
        .build_developer(request, log, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", memory.text()));
    assert!(support::logged(
        &memory,
        Level::Info,
        UNIT_PROCESS,
        "released"
    ));
}
