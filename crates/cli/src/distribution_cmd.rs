//! `vupdate distribution run`: loads `distribution.yaml`, starts the server (its builds run
//! as `vupdate builder` children of this same executable), prints where to log in, and
//! stops cleanly on Ctrl-C or SIGTERM. It also drives the server's self-update at the
//! process level: the check of a swap under way at start (confirm or roll back), the
//! swap and the `execve` (see `vupdate_distribution::self_update`); `distribution probe`
//! is the new binary's side of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::reconcile::{BuilderProgram, ProcessRunner};
use vupdate_distribution::self_update::record::OutcomeKind;
use vupdate_distribution::self_update::swap::{self, Begin};
use vupdate_distribution::self_update::{Ready, SelfUpdateOptions, SelfUpdates};
use vupdate_distribution::server::{Distribution, StartOptions};
use vupdate_distribution::watcher::InForce;

use crate::args::DistributionCommand;
use crate::exit::InvalidInput;

/// Runs a `distribution` subcommand.
pub fn run(command: DistributionCommand) -> anyhow::Result<()> {
    match command {
        DistributionCommand::Run { config: file } => {
            let config = load(&file)?;
            // Builds run as `vupdate builder ...` children of this very program.
            let program = std::env::current_exe()
                .context("cannot find this program's own executable to run builds with")?;
            // Before any thread: a self-update under way is confirmed by this start, or
            // rolled back when the new binary died unconfirmed (then the previous binary
            // takes this process over).
            let begin = swap::begin(&config.data_directory, &program, chrono::Utc::now())
                .context("cannot read the self-update record")?;
            if let Begin::RolledBack(reason) = &begin {
                eprintln!("self-update rolled back: {reason}");
                // The listening socket, if one was handed over, is still inherited.
                return Err(
                    anyhow::Error::new(swap::exec(&program, None)).context(format!(
                        "cannot execute the previous binary {}",
                        program.display()
                    )),
                );
            }
            let listener = swap::inherited_listener()
                .context("cannot take the listening socket handed over")?;
            let runtime = vupdate_distribution::runtime::server(None)
                .context("cannot start the async runtime")?;
            let options = StartOptions {
                builder: Arc::new(ProcessRunner::new(BuilderProgram::new(program.clone()))),
                // VMs install the updater from this very program (it holds the updater).
                updater_binary: Some(program.clone()),
                listener: listener.map(Arc::new),
                self_update: Some(SelfUpdateOptions::new(program.clone(), file)),
                ..StartOptions::default()
            };
            runtime.block_on(serve(config, options, begin, program))
        }
        DistributionCommand::Probe { config } => {
            let config = load(&config)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let line = runtime
                .block_on(vupdate_distribution::self_update::probe::answer(&config))
                .with_context(|| format!("distribution `{}`", config.name))?;
            println!("{line}");
            Ok(())
        }
        DistributionCommand::Backup { config, to } => {
            let config = load(&config)?;
            // A `.zip` path is one archive file; anything else a directory.
            let archive = to.extension().is_some_and(|extension| extension == "zip");
            let made = if archive {
                vupdate_distribution::backup::backup_to_file(&config, &to)
            } else {
                vupdate_distribution::backup::backup(&config, &to)
            };
            let manifest =
                made.with_context(|| format!("cannot back up distribution `{}`", config.name))?;
            println!(
                "backed up distribution `{}` into {}: {} files, {} bytes",
                manifest.distribution,
                to.display(),
                manifest.files,
                manifest.bytes
            );
            if !manifest.sqlite {
                println!(
                    "the store is MongoDB: dump it too, e.g. `mongodump --uri <store.url> --db <store.database> --out {}/mongodb`",
                    to.display()
                );
            }
            println!(
                "not included: the state repo's history (it lives in {})",
                manifest.state_repo
            );
            Ok(())
        }
        DistributionCommand::Restore { config, from } => {
            let config = load(&config)?;
            let restored = if from.is_file() {
                vupdate_distribution::backup::restore_from_file(&config, &from)
            } else {
                vupdate_distribution::backup::restore(&config, &from)
            };
            let manifest = restored.map_err(|error| {
                match error {
                    vupdate_distribution::backup::BackupError::Refused(_) => {
                        anyhow::Error::new(InvalidInput::new(error.to_string()))
                    }
                    other => anyhow::Error::new(other),
                }
                .context("nothing was restored")
            })?;
            println!(
                "restored distribution `{}` (backed up {}) into {}; start it with `vupdate distribution run`; it clones the state repo again from {}",
                manifest.distribution,
                manifest.created_at,
                config.data_directory.display(),
                manifest.state_repo
            );
            Ok(())
        }
        DistributionCommand::Install(args) => crate::install_cmd::distribution(*args),
        DistributionCommand::SystemdUnit { unit, data_dir } => {
            crate::install_cmd::distribution_unit(unit, data_dir);
            Ok(())
        }
        DistributionCommand::Secret(command) => crate::secret_cmd::run(command),
    }
}

/// The config at `path`; a bad file is invalid input (exit 2) naming file, line and field.
pub fn load(path: &Path) -> anyhow::Result<DistributionConfig> {
    DistributionConfig::load(path).map_err(|error| InvalidInput::new(error.to_string()).into())
}

async fn serve(
    config: DistributionConfig,
    options: StartOptions,
    begin: Begin,
    program: PathBuf,
) -> anyhow::Result<()> {
    let window = options
        .self_update
        .as_ref()
        .map(|options| options.confirm_window);
    let mut distribution = Distribution::start(&config, options)
        .await
        .with_context(|| format!("cannot start distribution `{}`", config.name))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let base = format!("{scheme}://{}", distribution.local_addr());
    println!("distribution `{}` serving on {base}", config.name);
    println!("  GraphQL:  {base}/graphql  (in a browser: {base}/graphiql)");
    let install = &distribution.context().install;
    if let Some(pin) = install.public_key_pin() {
        println!("  TLS key pin: {pin}  (updater.yaml `pinnedPublicKey`, curl --pinnedpubkey)");
    }
    println!(
        "  install an updater: {}",
        install.line("<ENROLMENT-TOKEN>", &["<SERVICES>".to_owned()])
    );
    println!(
        "  state repo: {} (branch {})",
        distribution.context().repo.path().display(),
        distribution.context().repo.branch()
    );
    if let Some(password) = &distribution.bootstrap().admin_password {
        println!(
            "  first start: log in as `admin` with password `{password}`; change it first (mutation changePassword)"
        );
    }
    let updates = distribution.context().self_update.clone();
    let confirming = confirm(
        distribution.context().in_force.clone(),
        updates.clone(),
        begin,
    );
    tokio::pin!(confirming);
    let mut confirmed = false;
    loop {
        tokio::select! {
            stop = wait_for_stop() => {
                stop?;
                println!("stopping: finishing requests in flight");
                distribution
                    .shutdown()
                    .await
                    .context("the server stopped with an error")?;
                return Ok(());
            }
            ready = distribution.self_update_ready() => {
                let window = window.unwrap_or(Duration::from_secs(120));
                return swap_in(distribution, &updates, ready, &program, window).await;
            }
            healthy = &mut confirming, if !confirmed => {
                confirmed = true;
                if let Err(reason) = healthy {
                    // Not healthy in time: the previous binary takes this process over.
                    let listener = distribution.listener().context("cannot keep the listening socket")?;
                    if let Err(error) = distribution.shutdown().await {
                        tracing::warn!(%error, "the unconfirmed server stopped with an error");
                    }
                    updates
                        .update(|record| {
                            swap::roll_back(updates.data_directory(), record, reason, chrono::Utc::now())
                        })?
                        .context("cannot roll back the self-update")?;
                    return Err(anyhow::Error::new(swap::exec(&program, Some(&listener)))
                        .context(format!("cannot execute the previous binary {}", program.display())));
                }
            }
        }
    }
}

/// For the first start of a swapped-in binary: waits until it is healthy (store open and
/// listener bound, which `start` did; a state in force) and confirms it; the reason it is
/// not, once its deadline passed. Any other start: done at once.
async fn confirm(
    mut in_force: tokio::sync::watch::Receiver<Option<InForce>>,
    updates: SelfUpdates,
    begin: Begin,
) -> Result<(), String> {
    let Begin::Confirming(pending) = begin else {
        return Ok(());
    };
    let left = (pending.deadline - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    match tokio::time::timeout(left, in_force.wait_for(Option::is_some)).await {
        Ok(Ok(_)) => {}
        _ => {
            return Err(format!(
                "the new binary read no valid state before its deadline {}",
                pending.deadline.to_rfc3339()
            ));
        }
    }
    match updates.confirm().await {
        Ok(Some(outcome)) => {
            println!(
                "self-update to {} confirmed: {}",
                outcome.version, outcome.message
            );
            tracing::info!(version = %outcome.version, message = %outcome.message, "self-update confirmed");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(error) => Err(format!("cannot confirm the self-update: {error}")),
    }
}

/// Swaps in the new binary `ready` and executes it in this process; returns only when
/// that failed (the server is then stopped: systemd starts it again).
async fn swap_in(
    distribution: Distribution,
    updates: &SelfUpdates,
    ready: Ready,
    program: &Path,
    window: Duration,
) -> anyhow::Result<()> {
    let version = ready.version.clone();
    let failed = |error: &dyn std::fmt::Display| {
        let message = error.to_string();
        if let Err(error) = updates.update(|record| {
            record.fail(
                &version,
                OutcomeKind::SwapFailed,
                message,
                chrono::Utc::now(),
            )
        }) {
            tracing::error!(%error, "cannot record the self-update's failure");
        }
    };
    // Before anything stops: what can fail without stopping the server fails here.
    if let Err(error) = swap::keep_previous(program, &version) {
        failed(&error);
        tracing::error!(%error, "self-update failed; this binary keeps serving until the next start");
        let _ = std::fs::remove_file(&ready.staged);
        if let Err(error) = updates.end_turn().await {
            tracing::warn!(%error, "cannot give the replicas' self-update turn back; it ends on its own");
        }
        return serve_on(distribution).await;
    }
    let listener = distribution
        .listener()
        .context("cannot keep the listening socket")?;
    println!("self-update to {version}: stopping, then executing the new binary");
    if let Err(error) = distribution.shutdown().await {
        tracing::warn!(%error, "the server stopped with an error before the swap");
    }
    let data = updates.data_directory().to_owned();
    match updates.update(|record| {
        swap::swap(
            &data,
            record,
            program,
            &ready.staged,
            &version,
            window,
            chrono::Utc::now(),
        )
    }) {
        Ok(Ok(())) => {}
        Ok(Err(error)) | Err(error) => {
            failed(&error);
            // The old binary is still in place: it takes over again, on the same socket.
            return Err(
                anyhow::Error::new(swap::exec(program, Some(&listener))).context(format!(
                    "{error}; cannot execute {} again",
                    program.display()
                )),
            );
        }
    }
    let error = swap::exec(program, Some(&listener));
    let reason = format!("cannot execute the new binary: {error}");
    updates
        .update(|record| swap::roll_back(&data, record, reason, chrono::Utc::now()))?
        .context("cannot roll back the self-update")?;
    Err(
        anyhow::Error::new(swap::exec(program, Some(&listener))).context(format!(
            "{error}; cannot execute the previous binary {}",
            program.display()
        )),
    )
}

/// Serves on after a self-update that did not start, until stopped.
async fn serve_on(distribution: Distribution) -> anyhow::Result<()> {
    wait_for_stop().await?;
    println!("stopping: finishing requests in flight");
    distribution
        .shutdown()
        .await
        .context("the server stopped with an error")?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what systemd sends on stop).
async fn wait_for_stop() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
