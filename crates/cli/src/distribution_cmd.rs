//! `vupdate distribution run`: loads `distribution.yaml`, starts the server (its builds run
//! as `vupdate builder` children of this same executable), prints where to log in, and
//! stops cleanly on Ctrl-C or SIGTERM. `vupdate distribution secret …` sets, lists and
//! removes the named secrets of the config's data directory.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use vupdate_distribution::config::DistributionConfig;
use vupdate_distribution::reconcile::{BuilderProgram, ProcessRunner};
use vupdate_distribution::server::{Distribution, StartOptions};

use std::io::Read as _;

use vupdate_distribution::secrets::{SecretError, Secrets};

use crate::args::{DistributionCommand, SecretCommand};
use crate::exit::InvalidInput;

/// Runs a `distribution` subcommand.
pub fn run(command: DistributionCommand) -> anyhow::Result<()> {
    match command {
        DistributionCommand::Run { config } => {
            let config = load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            // Builds run as `vupdate builder ...` children of this very program.
            let program = std::env::current_exe()
                .context("cannot find this program's own executable to run builds with")?;
            let options = StartOptions {
                builder: Arc::new(ProcessRunner::new(BuilderProgram::new(program.clone()))),
                // VMs install the updater from this very program (it holds the updater).
                updater_binary: Some(program),
                ..StartOptions::default()
            };
            runtime.block_on(serve(config, options))
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
        DistributionCommand::Secret(command) => secret(command),
    }
}

/// A bad name or value is invalid input (exit 2); a file that cannot be written is not.
fn secret_error(error: SecretError) -> anyhow::Error {
    match error {
        SecretError::Io { .. } | SecretError::Corrupt { .. } => error.into(),
        _ => InvalidInput::new(error.to_string()).into(),
    }
}

/// Runs a `secret` subcommand on the config's data directory.
fn secret(command: SecretCommand) -> anyhow::Result<()> {
    let (SecretCommand::Set { config, .. }
    | SecretCommand::List { config }
    | SecretCommand::Remove { config, .. }) = &command;
    let config = load(config)?;
    let secrets = Secrets::open(&config.data_directory)
        .with_context(|| format!("distribution `{}`", config.name))?;
    match command {
        SecretCommand::Set { name, .. } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("cannot read the secret's value from stdin")?;
            let value = value
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&value);
            let info = secrets.set(&name, value).map_err(secret_error)?;
            println!(
                "secret `{}` set ({} bytes) in {}",
                info.name,
                value.len(),
                secrets.dir().display()
            );
        }
        SecretCommand::List { .. } => {
            for info in secrets.list()? {
                println!("{}\t{}", info.name, info.set_at.to_rfc3339());
            }
        }
        SecretCommand::Remove { name, .. } => {
            let removed = secrets.remove(&name).map_err(secret_error)?;
            if !removed {
                return Err(InvalidInput::new(format!("there is no secret `{name}`")).into());
            }
            println!("secret `{name}` removed");
        }
    }
    Ok(())
}

/// The config at `path`; a bad file is invalid input (exit 2) naming file, line and field.
pub fn load(path: &Path) -> anyhow::Result<DistributionConfig> {
    DistributionConfig::load(path).map_err(|error| InvalidInput::new(error.to_string()).into())
}

async fn serve(config: DistributionConfig, options: StartOptions) -> anyhow::Result<()> {
    let distribution = Distribution::start(&config, options)
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
