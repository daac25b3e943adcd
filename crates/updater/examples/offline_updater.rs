//! An updater with no network: it runs the services of an `updater.yaml` from images in
//! a local folder, following a desired-versions file, as `vupdate updater run` will with
//! the distribution. Used by the side-by-side benchmark (`scripts/bench-updater`) until
//! the CLI exists, and a working example of the CLI's `main` (handover at start, agent,
//! self-update, clean stop on SIGTERM).
//!
//! ```text
//! offline_updater <updater.yaml> <images folder> <desired.json> [--log-file FILE] [--states FILE]
//! ```
//!
//! - images are `<images folder>/<service>/<version>.zip` ([`DirectoryImages`]);
//! - `desired.json` is `{"service": "version", …}`, read again when it changes;
//! - log lines go to `--log-file` (JSON lines), else stay in each service's spool;
//! - fault reports stay in each service's `faults/`;
//! - `--states` gets the latest state reports (JSON, replaced atomically);
//! - `VUPDATE_THREADS=N` runs N tokio worker threads (default: one thread).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use vupdate_updater::agent::{Agent, DesiredVersions, Seams};
use vupdate_updater::config::UpdaterConfig;
use vupdate_updater::faults::{FaultUploader, PendingFault};
use vupdate_updater::handover;
use vupdate_updater::images::DirectoryImages;
use vupdate_updater::logs::{LogSink, LogSource, SpooledLine};
use vupdate_updater::state::{InstanceState, StateSink};

/// Lines appended to a file as JSON, or kept in the spool when there is none.
struct LogFile(Option<Mutex<std::fs::File>>);

impl LogSink for LogFile {
    type Error = String;
    async fn send(&self, source: &LogSource, batch: &[SpooledLine]) -> Result<(), String> {
        let Some(file) = &self.0 else {
            // Offline: the lines wait in the spool.
            return std::future::pending().await;
        };
        let mut text = Vec::new();
        for line in batch {
            let record = serde_json::json!({
                "service": source.instance.service, "role": source.instance.role, "seq": line.seq, "process": line.process,
                "line": line.line.to_string(),
            });
            serde_json::to_writer(&mut text, &record).map_err(|error| error.to_string())?;
            text.push(b'\n');
        }
        let mut file = file
            .lock()
            .map_err(|_| "log file lock poisoned".to_owned())?;
        file.write_all(&text).map_err(|error| error.to_string())
    }
}

/// Fault reports stay on disk.
struct KeepFaults;

impl FaultUploader for KeepFaults {
    type Error = String;
    async fn upload(&self, _: &PendingFault) -> Result<(), String> {
        std::future::pending().await
    }
}

/// The latest states, written to a file when one is given.
struct StateFile(Option<PathBuf>);

impl StateSink for StateFile {
    type Error = String;
    async fn send(&self, states: &[InstanceState]) -> Result<(), String> {
        let Some(path) = &self.0 else {
            return Ok(());
        };
        let text = serde_json::to_vec_pretty(states).map_err(|error| error.to_string())?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|error| error.to_string())
    }
}

fn read_desired(path: &Path) -> Result<DesiredVersions, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let map: BTreeMap<String, String> =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    map.into_iter()
        .map(|(service, version)| {
            Ok((
                service
                    .parse()
                    .map_err(|error| format!("{}: {error}", path.display()))?,
                version
                    .parse()
                    .map_err(|error| format!("{}: {error}", path.display()))?,
            ))
        })
        .collect()
}

struct Args {
    config: PathBuf,
    images: PathBuf,
    desired: PathBuf,
    log_file: Option<PathBuf>,
    states: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let (mut log_file, mut states) = (None, None);
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--log-file") => log_file = args.next().map(PathBuf::from),
            Some("--states") => states = args.next().map(PathBuf::from),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [config, images, desired]: [PathBuf; 3] = positional.try_into().map_err(|_| {
        "usage: offline_updater <updater.yaml> <images folder> <desired.json> [--log-file FILE] [--states FILE]"
            .to_owned()
    })?;
    Ok(Args {
        config,
        images,
        desired,
        log_file,
        states,
    })
}

fn main() -> ExitCode {
    // First of all: this may answer a probe (and exit), or take a handover.
    let startup = handover::startup();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let prepared = parse_args().and_then(|args| {
        let config = UpdaterConfig::load(&args.config).map_err(|error| error.to_string())?;
        let desired = read_desired(&args.desired)?;
        Ok((args, config, desired))
    });
    let (args, config, desired) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("offline_updater: {error}");
            startup.abandon(&error);
            return ExitCode::FAILURE;
        }
    };
    let threads: usize = std::env::var("VUPDATE_THREADS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    let runtime = match threads {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        threads => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("offline_updater: no runtime: {error}");
            startup.abandon("no runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, config, desired, startup)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("offline_updater: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    args: Args,
    config: UpdaterConfig,
    desired: DesiredVersions,
    mut startup: handover::Startup,
) -> Result<(), String> {
    let log_file = match &args.log_file {
        Some(path) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| format!("cannot open {}: {error}", path.display()))?,
        )),
        None => None,
    };
    let seams = Arc::new(Seams {
        images: DirectoryImages::new(&args.images),
        logs: LogFile(log_file),
        faults: KeepFaults,
        states: StateFile(args.states.clone()),
    });
    let (desired_tx, desired_rx) = watch::channel(desired);
    let desired_path = args.desired.clone();
    tokio::spawn(async move {
        let modified = |path: &Path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
        };
        let mut seen: Option<SystemTime> = modified(&desired_path);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = modified(&desired_path);
            if now == seen {
                continue;
            }
            seen = now;
            match read_desired(&desired_path) {
                Ok(desired) => {
                    desired_tx.send_replace(desired);
                }
                Err(error) => tracing::warn!(%error, "desired versions not read"),
            }
        }
    });
    let mut terminate = signal(SignalKind::terminate()).map_err(|error| error.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|error| error.to_string())?;
    loop {
        let mut agent = Agent::start_with(
            &config,
            &config.services,
            desired_rx.clone(),
            seams.clone(),
            startup,
        )
        .await
        .map_err(|error| error.to_string())?;
        tokio::select! {
            _ = terminate.recv() => break agent.shutdown().await.map_err(|error| error.to_string()),
            _ = interrupt.recv() => break agent.shutdown().await.map_err(|error| error.to_string()),
            staged = agent.self_update() => {
                // Returns only when the new updater could not be executed.
                let failed = agent.hand_over(staged).await;
                tracing::error!(error = %failed.error, "self-update failed; carrying on");
                startup = failed.resume;
            }
        }
    }
}
