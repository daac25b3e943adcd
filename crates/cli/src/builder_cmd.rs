//! `vupdate builder build-developer-version`, `build-client-version` and
//! `build-client-generation`: the arguments become a [`vupdate_builder::job`] run (exit 1
//! when it fails; 2 for invalid arguments, or a service or commit the state repo does not
//! have). SIGTERM (a distribution cancelling the task) or Ctrl-C cancels the build.

use anyhow::Context as _;
use vupdate_builder::CancellationToken;
use vupdate_builder::job::{self, JobRequest, JobSettings};
use vupdate_client::Client;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::args::{BuildArgs, BuilderCommand};
use crate::exit::InvalidInput;

/// Runs a `builder` subcommand.
pub fn run(command: BuilderCommand) -> anyhow::Result<()> {
    let (service, request, build) = request(command)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client(&build)?;
        let settings = JobSettings {
            state_repo: build.state_repo,
            commit: build.commit,
            branch: build.branch,
            task: build.task,
            work_dir: std::path::absolute(&build.work_dir)
                .with_context(|| format!("--work-dir {}", build.work_dir.display()))?,
            author: build.author,
            comment: build.comment,
            instance: build.instance,
        };
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone())?;
        Ok(job::run(client, &settings, &service, request, cancel).await?)
    })
}

/// The service and what to build, checked before anything runs.
fn request(command: BuilderCommand) -> anyhow::Result<(ServiceName, JobRequest, BuildArgs)> {
    Ok(match command {
        BuilderCommand::BuildDeveloperVersion {
            service,
            developer_version,
            build,
        } => (
            parse("SERVICE", &service)?,
            JobRequest::Developer(parse("VERSION", &developer_version)?),
            build,
        ),
        BuilderCommand::BuildClientVersion {
            service,
            dev_version,
            client_version,
            build,
        } => {
            let developer = parse::<DeveloperVersion>("DEV_VERSION", &dev_version)?;
            let client = parse::<ClientVersion>("CLIENT_VERSION", &client_version)?;
            if client.developer != developer {
                return Err(InvalidInput::new(format!(
                    "CLIENT_VERSION {client} is not a client version of DEV_VERSION {developer} (expected {developer} or {developer}_N)"
                ))
                .into());
            }
            (
                parse("SERVICE", &service)?,
                JobRequest::Client(client),
                build,
            )
        }
        BuilderCommand::BuildClientGeneration {
            service,
            dev_version,
            build,
        } => (
            parse("SERVICE", &service)?,
            JobRequest::Generation(parse("DEV_VERSION", &dev_version)?),
            build,
        ),
    })
}

fn parse<T: std::str::FromStr>(name: &str, text: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| InvalidInput::new(format!("{name} `{text}`: {e}")).into())
}

/// The client of `--distribution` with the token of the environment (never an argument).
fn client(args: &BuildArgs) -> anyhow::Result<Client> {
    let token = std::env::var(vupdate_client::ACCESS_TOKEN_ENV).map_err(|_| {
        InvalidInput::new(format!(
            "no access token: set {} to a Builder account's token (it is never read from the command line)",
            vupdate_client::ACCESS_TOKEN_ENV
        ))
    })?;
    let mut client = Client::builder(&args.distribution).token(token);
    if let Some(file) = &args.ca_file {
        let pem = std::fs::read(file)
            .map_err(|e| InvalidInput::new(format!("--ca-file {}: {e}", file.display())))?;
        client = client.root_certificate_pem(pem);
    }
    if let Some(pin) = args.pinned_public_key {
        client = client.pinned_public_key(pin);
    }
    Ok(client
        .build()
        .map_err(|e| InvalidInput::new(format!("--distribution: {e}")))?)
}

/// Cancels `cancel` on SIGTERM (a distribution cancelling the task) or Ctrl-C.
fn cancel_on_signals(cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        eprintln!("cancelling the build");
        cancel.cancel();
    });
    Ok(())
}
