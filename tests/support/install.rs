//! What the install tests share: the files under a root with their modes, a command's
//! output for a failure message, and the installed updater started until it runs `hello`
//! and stopped with it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use vupdate_client::Client;
use vupdate_test_support::{Patience, isolate};

/// A build and an install on a loaded 2-core machine.
pub const LIMIT: Duration = Duration::from_secs(180);

/// Every file under `root`: its path, mode and content.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            let relative = path.strip_prefix(root).expect("under root").to_path_buf();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let content = std::fs::read(&path).expect("read");
                files.insert(relative, (meta.permissions().mode() & 0o7777, content));
            }
        }
    }
    files
}

/// The modes of [`snapshot`]'s files, by path.
pub fn modes(files: &BTreeMap<PathBuf, (u32, Vec<u8>)>) -> BTreeMap<String, u32> {
    files
        .iter()
        .map(|(path, (mode, _))| (path.display().to_string(), *mode))
        .collect()
}

/// A command's status and output, for a failure message.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts the program installed in `root` as an updater on `config`, its output in `log`.
pub fn start_updater(root: &Path, config: &Path, log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log");
    let mut command = Command::new(root.join("usr/local/bin/vupdate"));
    isolate(&mut command);
    command
        .args(["updater", "run", "--config"])
        .arg(config)
        .stdout(Stdio::from(file.try_clone().expect("log")))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("start the updater")
}

/// Waits until `admin` sees instance `vm-1` run hello `acme-1.0.0` in role `eu`; a
/// failure shows the updater's `log` and the distribution's in `dist`.
pub async fn wait_for_hello(admin: &Client, log: &Path, dist: &Path) {
    Patience::up_to(LIMIT)
        .every(Duration::from_millis(300))
        .eventually_or(
            "the installed updater runs hello in role eu",
            || async {
                let data: Value = admin
                    .graphql(
                        r#"{ serviceStates(service: "hello", role: "eu") { instance state { version } } }"#,
                        json!({}),
                    )
                    .await
                    .ok()?;
                let state = &data["serviceStates"][0];
                (state["instance"] == "vm-1" && state["state"]["version"] == "acme-1.0.0")
                    .then_some(())
            },
            || async {
                format!(
                    "updater:\n{}\ndistribution:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default(),
                    crate::distribution::log(dist)
                )
            },
        )
        .await;
}

/// Stops `updater` with `signal` once hello in `service` answers (it is reported running
/// before it may listen), and checks that the updater exited cleanly and stopped hello.
pub async fn stop_with_hello(
    updater: &mut Child,
    service: &Path,
    signal: nix::sys::signal::Signal,
) {
    Patience::up_to(LIMIT)
        .eventually("hello to answer", || async {
            crate::hello::serving(service)
        })
        .await;
    crate::distribution::stop_with(updater, signal);
    assert_eq!(
        crate::hello::serving(service),
        None,
        "hello stopped with the updater on {signal}"
    );
}
