//! Shared helpers: service specs from shell scripts, polling with deadlines (never a
//! fixed sleep as an assertion), and finding processes by their ownership marker.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use vupdate_core::service::ServiceInstance;
use vupdate_core::update::RunService;
use vupdate_process::table;
use vupdate_test_support::Patience;
use vupdate_updater::layout::{OWNER_ENV, ServiceDir};
use vupdate_updater::logs::{LogOptions, LogPipeline};
use vupdate_updater::supervisor::{RunSpec, ServiceEvent};

/// Generous: the suite must pass on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A service instance named `name` with no role.
pub fn instance(name: &str) -> ServiceInstance {
    ServiceInstance {
        service: name.parse().expect("test service name"),
        role: None,
    }
}

/// Run rules for `sh -c script`, with a short stop grace.
pub fn sh(script: &str) -> RunService {
    let mut run = RunService::new("sh");
    run.args = vec!["-c".to_owned(), script.to_owned()];
    run.stop_timeout_ms = 1000;
    run
}

/// A service directory in `work` with `current/` made, and a spec running `run` there.
pub fn spec(work: &Path, name: &str, run: RunService) -> (ServiceDir, RunSpec) {
    let dir = ServiceDir::new(work, instance(name));
    fs::create_dir_all(dir.current()).expect("create current/");
    let spec = RunSpec {
        instance: dir.instance().clone(),
        service_dir: dir.root().to_owned(),
        directory: dir.current(),
        version: Some("test-1.0.0".parse().expect("version")),
        install_time: None,
        run,
        owner: dir.run_owner(),
    };
    (dir, spec)
}

/// A pipeline with no spool.
pub fn pipeline() -> Arc<LogPipeline> {
    Arc::new(LogPipeline::new(None, LogOptions::default()))
}

/// Polls `check` every 20 ms until it gives a value; panics naming `what` at the deadline.
pub async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    Patience::up_to(DEADLINE)
        .every(Duration::from_millis(20))
        .eventually(what, || std::future::ready(check()))
        .await
}

/// The next event that `matches` picks, skipping others; panics at the deadline.
pub async fn next_event<T>(
    events: &mut broadcast::Receiver<ServiceEvent>,
    what: &str,
    mut matches: impl FnMut(&ServiceEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(value) = matches(&event) {
                        return value;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("events ended before {what}"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn is_running(pid: i32) -> bool {
    table::is_running(pid)
}

/// The live processes of the machine whose environment holds `VUPDATE_OWNER=owner`.
pub fn marked(owner: &str) -> Vec<i32> {
    let marker = format!("{OWNER_ENV}={owner}");
    let mut pids: Vec<i32> = table::snapshot()
        .into_values()
        .filter(|info| !info.is_zombie() && table::environ_has(info.pid, marker.as_bytes()))
        .map(|info| info.pid)
        .collect();
    pids.sort();
    pids
}

/// The session id of `pid`.
pub fn session_of(pid: i32) -> Option<i32> {
    table::read(pid).map(|info| info.session)
}

/// Reads a pid written by a test service into `path`.
pub fn read_pid(path: &PathBuf) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Writes the image of `service` at `version` into `images` (as [`DirectoryImages`]
/// reads them): `install.json` from `install`, plus `files` (name, content, mode).
///
/// [`DirectoryImages`]: vupdate_updater::images::DirectoryImages
pub fn write_image(
    images: &Path,
    service: &str,
    version: &str,
    install: &serde_json::Value,
    files: &[(&str, &str, u32)],
) -> PathBuf {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let dir = images.join(service);
    fs::create_dir_all(&dir).expect("create images/");
    let path = dir.join(format!("{version}.zip"));
    let mut zip = zip::ZipWriter::new(fs::File::create(&path).expect("create image"));
    zip.start_file("install.json", SimpleFileOptions::default())
        .expect("start install.json");
    zip.write_all(
        serde_json::to_string_pretty(install)
            .expect("json")
            .as_bytes(),
    )
    .expect("write install.json");
    for (name, content, mode) in files {
        zip.start_file(*name, SimpleFileOptions::default().unix_permissions(*mode))
            .expect("start file");
        zip.write_all(content.as_bytes()).expect("write file");
    }
    zip.finish().expect("finish image");
    path
}

/// The command lines of the live processes marked `VUPDATE_OWNER=owner`.
pub fn marked_command_lines(owner: &str) -> Vec<String> {
    marked(owner)
        .into_iter()
        .filter_map(|pid| {
            let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some(String::from_utf8_lossy(&bytes).replace('\0', " "))
        })
        .collect()
}

/// Which of `versions` the live processes of `owner` run (by their command lines).
pub fn running_versions(owner: &str, versions: &[&str]) -> Vec<String> {
    let lines = marked_command_lines(owner);
    versions
        .iter()
        .filter(|version| {
            lines
                .iter()
                .any(|line| line.contains(&format!("running {version};")))
        })
        .map(|version| (*version).to_owned())
        .collect()
}
