//! `vupdate updater run`: the agent on each VM. Loads `updater.yaml`, follows the desired
//! client versions of its services (`vupdate_updater::remote::follow`), and runs
//! `vupdate_updater`'s agent with the distribution's API as its network seams
//! (`vupdate_updater::remote::seams`); stops every service tree-wide on SIGTERM or
//! Ctrl-C; updates itself by `execve` when the desired version of service `updater`
//! changes (the services keep running, see `vupdate_updater::handover`).
//!
//! - `services`: reading `--services a,b-role`.
//!
//! The runtime has one thread unless `VUPDATE_THREADS=N` asks for N workers: the agent
//! waits on pipes, children and the network, and one thread is its smallest footprint.

mod services;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use vupdate_core::service::{ServiceInstance, ServiceName};
use vupdate_updater::agent::Agent;
use vupdate_updater::config::UpdaterConfig;
use vupdate_updater::handover::{Startup, UPDATER_SERVICE};
use vupdate_updater::remote::{self, Api, follow};

use crate::args::UpdaterCommand;
use crate::exit::InvalidInput;

/// The variable that asks for a multi-threaded runtime of N workers.
const THREADS_ENV: &str = "VUPDATE_THREADS";

/// Runs an `updater` subcommand; `startup` is what [`vupdate_updater::handover::startup`]
/// found (a fresh start, or services handed over by the previous process).
pub fn run(command: UpdaterCommand, startup: Startup) -> anyhow::Result<()> {
    let UpdaterCommand::Run { config, services } = command;
    let prepared = load(&config).and_then(|config| {
        let api = link(&config)?;
        let runtime = runtime()?;
        Ok((config, api, runtime))
    });
    let (config, api, runtime) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            // A new updater that cannot start gives its services back to the old one.
            startup.abandon(&format!("{error:#}"));
            return Err(error);
        }
    };
    runtime.block_on(serve(config, services, Arc::new(api), startup))
}

/// The config at `path`; a bad file is invalid input (exit 2) naming file, line and field.
fn load(path: &Path) -> anyhow::Result<UpdaterConfig> {
    UpdaterConfig::load(path).map_err(|error| InvalidInput::new(error.to_string()).into())
}

/// The link to the distribution; an unreadable token or certificate file is invalid input.
fn link(config: &UpdaterConfig) -> anyhow::Result<Api> {
    Api::new(config).map_err(|error| match error {
        vupdate_updater::Error::Io { .. } => InvalidInput::new(error.to_string()).into(),
        other => anyhow::Error::new(other).context("cannot set up the client"),
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = match std::env::var(THREADS_ENV) {
        Ok(text) => text.trim().parse::<usize>().map_err(|_| {
            InvalidInput::new(format!(
                "{THREADS_ENV}=`{text}`: give a number of worker threads"
            ))
        })?,
        Err(_) => 0,
    };
    match threads {
        0 | 1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        threads => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")
}

/// Completes on SIGTERM (what systemd sends on stop), SIGINT (Ctrl-C) or SIGQUIT (a
/// graceful stop, as for nginx).
///
/// Listening also matters for the services: a shell starts a background job with SIGINT
/// and SIGQUIT ignored, an ignored signal stays ignored across `exec`, and a shell
/// service cannot even trap it; a handled one is reset to its default in every child. So
/// an updater started with `&` from a script still stops its services with `stopSignal:
/// INT` and gets their core dumps with `makeCore` (SIGQUIT).
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = &'static str>> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut quit = signal(SignalKind::quit()).context("cannot listen for SIGQUIT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
            _ = quit.recv() => "SIGQUIT",
        }
    })
}

/// The names to follow: each service's (roles share their service's version) and the
/// updater's own.
fn followed(services: &[ServiceInstance]) -> Vec<ServiceName> {
    let mut names: Vec<ServiceName> = services
        .iter()
        .map(|instance| instance.service.clone())
        .collect();
    names.push(
        UPDATER_SERVICE
            .parse()
            .expect("the updater's service name is valid"),
    );
    names.sort();
    names.dedup();
    names
}

async fn serve(
    config: UpdaterConfig,
    services_arg: Option<String>,
    api: Arc<Api>,
    mut startup: Startup,
) -> anyhow::Result<()> {
    let stop = match stop_signal() {
        Ok(stop) => stop,
        Err(error) => {
            startup.abandon(&format!("{error:#}"));
            return Err(error);
        }
    };
    tokio::pin!(stop);
    let cached = follow::read_cache(&config.work_directory);
    let services = match services_arg {
        None => config.services.clone(),
        Some(list) => {
            let resolved = tokio::select! {
                resolved = services::resolve(&list, &config, cached.as_ref(), &api) => resolved,
                signal = &mut stop => {
                    tracing::info!(signal, "stopped before the services were known");
                    startup.abandon("stopped before the services were known");
                    return Ok(());
                }
            };
            match resolved {
                Ok(services) => services,
                Err(error) => {
                    startup.abandon(&format!("{error:#}"));
                    return Err(error);
                }
            }
        }
    };
    if services.is_empty() {
        let error = InvalidInput::new(
            "no services to run: list them in the config's `services` or give --services a,b-role",
        );
        startup.abandon(&error.to_string());
        return Err(error.into());
    }
    let names: Vec<String> = services.iter().map(ToString::to_string).collect();
    tracing::info!(
        instance = %config.instance,
        distribution = %config.distribution_url,
        services = %names.join(","),
        work_directory = %config.work_directory.display(),
        handover = startup.is_handover(),
        "updater starting"
    );
    let (desired_tx, desired) = watch::channel(cached.unwrap_or_default());
    let _following = follow::start(
        Arc::clone(&api),
        followed(&services),
        config.poll_interval,
        &config.work_directory,
        desired_tx,
    );
    let seams = Arc::new(remote::seams(&api));
    loop {
        let mut agent = Agent::start_with(
            &config,
            &services,
            desired.clone(),
            Arc::clone(&seams),
            startup,
        )
        .await
        .context("cannot start the updater's services")?;
        tokio::select! {
            signal = &mut stop => {
                tracing::info!(signal, "stopping every service");
                agent.shutdown().await.context("a service task failed")?;
                tracing::info!("stopped");
                return Ok(());
            }
            staged = agent.self_update() => {
                tracing::info!(version = %staged.version, "the new updater is installed; handing over");
                // Returns only when the new binary could not be executed.
                let failed = agent.hand_over(staged).await;
                tracing::error!(error = %failed.error, "self-update failed; carrying on with this updater");
                startup = failed.resume;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_updater_follows_each_service_once_and_itself() {
        let services: Vec<ServiceInstance> = ["web", "api", "web"]
            .iter()
            .zip([None, None, Some("eu")])
            .map(|(name, role)| ServiceInstance {
                service: name.parse().expect("name"),
                role: role.map(|role| role.parse().expect("role")),
            })
            .collect();
        let names: Vec<String> = followed(&services)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["api", "updater", "web"]);
    }
}
