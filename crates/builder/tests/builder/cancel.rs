//! Cancelling a build: the running command's whole process tree dies (even a child that
//! ignores SIGTERM), and no image is left behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use vupdate_builder::log::UNIT_PROCESS;
use vupdate_builder::{BuildLog, BuilderError, CancellationToken, MemoryLog};
use vupdate_core::log::Level;

use crate::support::{self, Source};

/// Cancels the build when the command prints `line`.
struct CancelOn {
    inner: Arc<MemoryLog>,
    line: &'static str,
    cancel: CancellationToken,
}

impl BuildLog for CancelOn {
    fn line(&self, level: Level, unit: &str, message: &str) {
        self.inner.line(level, unit, message);
        if unit == UNIT_PROCESS && message == self.line {
            self.cancel.cancel();
        }
    }
}

/// Whether `pid` is still a live process (a zombie waiting for its reaper counts as dead).
fn alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(vupdate_process::table::is_running)
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .expect("a pid")
}

/// Waits (bounded) until `pid` is gone.
async fn gone(pid: u32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn cancelling_kills_the_process_tree_even_when_it_ignores_sigterm_and_leaves_no_image() {
    // The shell ignores SIGTERM, and so does its background child (ignored signals are
    // inherited): only the SIGKILL to the whole group after the grace ends them.
    let script = r#"trap '' TERM; sleep 300 & echo $! > child.pid; echo $$ > shell.pid; echo started; wait; wait"#;
    let update = format!(
        r#"{{"update": [{{"service": "slow", "build": {{
            "buildCommands": [{{"command": "sh", "args": ["-c", "{script}"]}}],
            "copyFiles": [{{"sourceFile": "update.json", "destinationFile": "update.json"}}]
        }}}}]}}"#
    );
    let source = Source::new(&[("update.json", &update, false)]);
    let (_temp, builder) = support::builder();
    let service = "slow".parse().expect("service");
    let checkout: PathBuf = builder.developer_directory(&service).join("source/slow");
    let memory = Arc::new(MemoryLog::new());
    let cancel = CancellationToken::new();
    let log = Arc::new(CancelOn {
        inner: memory.clone(),
        line: "started",
        cancel: cancel.clone(),
    });
    let request = support::request("slow", "acme-1", vec![source.repository("slow")]);
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        builder.build_developer(request, log, cancel),
    )
    .await
    .expect("a cancelled build ends");
    let error = result.expect_err("cancelled");
    assert!(
        matches!(&error, BuilderError::Cancelled { step } if step == "buildCommands[0]"),
        "{error}\n{}",
        memory.text()
    );

    let child = read_pid(&checkout.join("child.pid"));
    let shell = read_pid(&checkout.join("shell.pid"));
    assert!(gone(shell).await, "the build command {shell} still runs");
    assert!(gone(child).await, "its child {child} still runs");
    assert!(support::no_zips(&builder.developer_directory(&service)));
    assert_eq!(source.remote_tag("slow-acme-1"), None);
}

#[tokio::test]
async fn a_build_cancelled_before_it_starts_does_nothing() {
    let source = Source::new(&[(
        "update.json",
        r#"{"update": [{"service": "api", "build": {"copyFiles": []}}]}"#,
        false,
    )]);
    let (_temp, builder) = support::builder();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let request = support::request("api", "acme-1", vec![source.repository("api")]);
    let error = builder
        .build_developer(request, support::memory_log().1, cancel)
        .await
        .expect_err("cancelled");
    assert!(matches!(error, BuilderError::Cancelled { .. }), "{error}");
    assert!(support::no_zips(
        &builder.developer_directory(&"api".parse().expect("service"))
    ));
}
