//! `vupdate builder build-developer-version`, `build-client-version` and
//! `build-client-generation`: what a distribution's build task runs, and what a person can
//! run by hand.
//!
//! The build settings come from the state repo at the commit that asked for the build; the
//! distribution is reached only through its public API (`vupdate-client`): private files
//! are downloaded into a temporary directory, the build's log lines stream into the task
//! log with `addLogs`, the image is uploaded and the version record added. Each step is
//! named in the error that ends the command (exit 1; 2 for invalid arguments), and SIGTERM
//! or Ctrl-C cancels the build, killing the running build command's process group.

mod log;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use vupdate_builder::{
    BuildLog, Builder, BuiltImage, CancellationToken, ClientRequest, DeveloperRequest, NextClient,
    next_client_version,
};
use vupdate_client::{
    BuildInfo, Client, ClientContent, ClientSettingsStamp, ImageKind, ImageRef, InstallInfo,
    LogSource, Source,
};
use vupdate_core::log::Level;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{
    Author, ClientBuild, DeveloperBuild, GitRepository, Revision, ServiceSettings, StateRepo,
    client_settings_hash,
};

use crate::args::{BuildArgs, BuilderCommand};
use crate::exit::InvalidInput;
use log::ApiLog;

/// The service name build log lines are sent under.
const LOG_SERVICE: &str = "builder";

/// Runs a `builder` subcommand.
pub fn run(command: BuilderCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            BuilderCommand::BuildDeveloperVersion {
                service,
                developer_version,
                build,
            } => {
                let service = parse::<ServiceName>("SERVICE", &service)?;
                let version = parse::<DeveloperVersion>("VERSION", &developer_version)?;
                let job = Job::prepare(&build, &service).await?;
                job.developer(&service, &version).await
            }
            BuilderCommand::BuildClientVersion {
                service,
                dev_version,
                client_version,
                build,
            } => {
                let service = parse::<ServiceName>("SERVICE", &service)?;
                let developer = parse::<DeveloperVersion>("DEV_VERSION", &dev_version)?;
                let client = parse::<ClientVersion>("CLIENT_VERSION", &client_version)?;
                if client.developer != developer {
                    return Err(InvalidInput::new(format!(
                        "CLIENT_VERSION {client} is not a client version of DEV_VERSION {developer} (expected {developer} or {developer}_N)"
                    ))
                    .into());
                }
                let job = Job::prepare(&build, &service).await?;
                job.client(&service, &client).await
            }
            BuilderCommand::BuildClientGeneration {
                service,
                dev_version,
                build,
            } => {
                let service = parse::<ServiceName>("SERVICE", &service)?;
                let developer = parse::<DeveloperVersion>("DEV_VERSION", &dev_version)?;
                let job = Job::prepare(&build, &service).await?;
                job.generation(&service, &developer).await
            }
        }
    })
}

fn parse<T: std::str::FromStr>(name: &str, text: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e| InvalidInput::new(format!("{name} `{text}`: {e}")).into())
}

/// Everything a build needs, read and checked before anything is built.
struct Job {
    client: Client,
    settings: ServiceSettings,
    revision: Revision,
    author: String,
    comment: String,
    work_dir: PathBuf,
    log: Arc<ApiLog>,
    cancel: CancellationToken,
}

impl Job {
    async fn prepare(args: &BuildArgs, service: &ServiceName) -> anyhow::Result<Job> {
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
        let client = client
            .build()
            .map_err(|e| InvalidInput::new(format!("--distribution: {e}")))?;
        let (revision, settings) = match &args.state_repo {
            Some(path) => read_settings(path, args, service).await,
            None => api_settings(&client, args, service).await,
        }
        .context("step `reading the build settings`")?;
        let work_dir = std::path::absolute(&args.work_dir)
            .with_context(|| format!("--work-dir {}", args.work_dir.display()))?;
        let source = LogSource {
            service: LOG_SERVICE.to_owned(),
            instance: args.instance.clone().unwrap_or_else(host_name),
            directory: work_dir.display().to_string(),
            process: std::process::id().to_string(),
            task: args.task.clone(),
        };
        let log = Arc::new(ApiLog::start(client.clone(), source));
        let author = args
            .author
            .clone()
            .unwrap_or_else(|| format!("{} <{}>", revision.author.name, revision.author.email));
        let comment = args
            .comment
            .clone()
            .unwrap_or_else(|| revision.summary.clone());
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone())?;
        Ok(Job {
            client,
            settings,
            revision,
            author,
            comment,
            work_dir,
            log,
            cancel,
        })
    }

    fn say(&self, message: &str) {
        self.log
            .line(Level::Info, vupdate_builder::log::UNIT_BUILD, message);
    }

    /// Builds, uploads and records a developer version.
    async fn developer(
        self,
        service: &ServiceName,
        version: &DeveloperVersion,
    ) -> anyhow::Result<()> {
        let result = self.developer_steps(service, version).await;
        self.finish(result).await
    }

    async fn developer_steps(
        &self,
        service: &ServiceName,
        version: &DeveloperVersion,
    ) -> anyhow::Result<()> {
        let settings = self.settings.developer.clone().ok_or_else(|| {
            InvalidInput::new(format!(
                "service `{service}` has no developer settings at state commit {} (services/{service}.yaml has no `developer` part), so it cannot be built here",
                self.revision.id
            ))
        })?;
        self.say(&format!(
            "building developer version {version} of {service} from state commit {} for {}",
            self.revision.id, self.author
        ));
        let private = tempfile::Builder::new()
            .prefix("vupdate-private-")
            .tempdir()
            .context("step `downloading private files`: cannot make a temporary directory")?;
        let private_files = self
            .download_private(
                ImageKind::Developer,
                service,
                &settings.private_files,
                private.path(),
            )
            .await
            .context("step `downloading private files`")?;
        let repositories = settings.sources.clone();
        let request = DeveloperRequest {
            service: service.clone(),
            version: version.clone(),
            settings,
            private_files,
        };
        let builder = Builder::new(&self.work_dir);
        let log: Arc<dyn BuildLog> = self.log.clone();
        let image = builder
            .build_developer(request, log, self.cancel.clone())
            .await
            .context("step `building`")?;
        drop(private);
        self.upload(ImageRef::developer(service, version), &image)
            .await
            .context("step `uploading the image`")?;
        let build = BuildInfo {
            author: self.author.clone(),
            sources: sources(&image, &repositories),
            time: chrono::Utc::now(),
            comment: self.comment.clone(),
        };
        self.client
            .add_developer_version_info(service, version, &build)
            .await
            .context("step `recording the version`")?;
        remove_zip(&image.zip.path);
        self.say(&format!(
            "developer version {version} of {service} uploaded and recorded"
        ));
        Ok(())
    }

    /// Downloads the developer image, builds, uploads and records a client version.
    async fn client(self, service: &ServiceName, version: &ClientVersion) -> anyhow::Result<()> {
        let result = async {
            let image = self.client_image(service, version).await?;
            self.record_client(service, version, image).await
        }
        .await;
        self.finish(result).await
    }

    /// Builds a client image of `developer` from the settings at this commit and keeps it
    /// as the next generation `_N+1` only when its content differs from the newest one's.
    async fn generation(
        self,
        service: &ServiceName,
        developer: &DeveloperVersion,
    ) -> anyhow::Result<()> {
        let result = self.generation_steps(service, developer).await;
        self.finish(result).await
    }

    async fn generation_steps(
        &self,
        service: &ServiceName,
        developer: &DeveloperVersion,
    ) -> anyhow::Result<()> {
        let records = self
            .client
            .client_versions_info(service, None)
            .await
            .context("step `reading the client versions`")?;
        // A record from before content digests were kept never equals new content.
        let existing: Vec<(ClientVersion, String)> = records
            .into_iter()
            .filter_map(|record| {
                let version = record.version.parse::<ClientVersion>().ok()?;
                Some((version, record.content_digest.unwrap_or_default()))
            })
            .filter(|(version, _)| &version.developer == developer)
            .collect();
        let candidate = ClientVersion::next_for(developer, existing.iter().map(|(v, _)| v));
        self.say(&format!(
            "checking the client settings of {service} at state commit {}: building {developer} as candidate {candidate}",
            self.revision.id
        ));
        let image = self.client_image(service, &candidate).await?;
        let pairs = existing
            .iter()
            .map(|(version, digest)| (version, digest.as_str()));
        match next_client_version(developer, pairs, &image.built.zip.content_digest) {
            NextClient::Unchanged(same) => {
                self.say(&format!(
                    "the content equals client version {same}: no new generation"
                ));
                image.remove();
                Ok(())
            }
            NextClient::New(version) => self.record_client(service, &version, image).await,
        }
    }

    /// Downloads the developer image of `version` and builds the client image.
    async fn client_image(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
    ) -> anyhow::Result<ClientImage> {
        let developer = &version.developer;
        let settings = self.settings.client.clone();
        self.say(&format!(
            "building client version {version} of {service} from developer version {developer} and state commit {}",
            self.revision.id
        ));
        let images = self.work_dir.join("client").join("images");
        let developer_image = images.join(format!("{service}-{developer}.zip"));
        let downloaded = self
            .client
            .download_image(&ImageRef::developer(service, developer), &developer_image)
            .await
            .context("step `downloading the developer image`")?;
        self.say(&format!(
            "downloaded developer image {developer} ({} bytes, sha256 {}{})",
            downloaded.size,
            downloaded.sha256,
            if downloaded.resumed_from > 0 {
                format!(", resumed at byte {}", downloaded.resumed_from)
            } else {
                String::new()
            }
        ));
        let named: Vec<String> = settings
            .as_ref()
            .map(|s| s.private_files.clone())
            .unwrap_or_default();
        let private = tempfile::Builder::new()
            .prefix("vupdate-private-")
            .tempdir()
            .context("step `downloading private files`: cannot make a temporary directory")?;
        let private_files = self
            .download_private(ImageKind::Client, service, &named, private.path())
            .await
            .context("step `downloading private files`")?;
        let request = ClientRequest {
            service: service.clone(),
            version: version.clone(),
            developer_image: developer_image.clone(),
            settings,
            private_files,
        };
        let builder = Builder::new(&self.work_dir);
        let log: Arc<dyn BuildLog> = self.log.clone();
        let built = builder
            .build_client(request, log, self.cancel.clone())
            .await
            .context("step `building`")?;
        for checkout in &built.sources {
            self.say(&format!(
                "made from settings repository `{}` ({}) at commit {}",
                checkout.name, checkout.url, checkout.commit
            ));
        }
        Ok(ClientImage {
            built,
            developer_image,
        })
    }

    /// Uploads `image` as client version `version` and records it, stamped with its
    /// content digest and the settings it was made from.
    async fn record_client(
        &self,
        service: &ServiceName,
        version: &ClientVersion,
        image: ClientImage,
    ) -> anyhow::Result<()> {
        let developer = &version.developer;
        self.upload(ImageRef::client(service, version), &image.built)
            .await
            .context("step `uploading the image`")?;
        let records = self
            .client
            .developer_versions_info(service, Some(&developer.to_string()))
            .await
            .context("step `reading the developer version record`")?;
        let build = match records.into_iter().next() {
            Some(record) => record.build_info,
            // A developer image without a record (uploaded by hand): say what is known.
            None => BuildInfo {
                author: self.author.clone(),
                sources: Vec::new(),
                time: chrono::Utc::now(),
                comment: self.comment.clone(),
            },
        };
        let install = InstallInfo {
            author: self.author.clone(),
            time: chrono::Utc::now(),
        };
        let repositories = self
            .settings
            .client
            .as_ref()
            .map(|settings| settings.settings.clone())
            .unwrap_or_default();
        let content = ClientContent {
            content_digest: image.built.zip.content_digest.clone(),
            settings: ClientSettingsStamp {
                hash: client_settings_hash(self.settings.client.as_ref()),
                commit: Some(self.revision.id.clone()),
                repositories: sources(&image.built, &repositories),
            },
        };
        self.client
            .add_client_version_info(service, version, &build, Some(&install), Some(&content))
            .await
            .context("step `recording the version`")?;
        image.remove();
        self.say(&format!(
            "client version {version} of {service} uploaded and recorded"
        ));
        Ok(())
    }

    /// Downloads the private files `named` into `directory`; `None` when there are none.
    async fn download_private(
        &self,
        kind: ImageKind,
        service: &ServiceName,
        named: &[String],
        directory: &Path,
    ) -> anyhow::Result<Option<PathBuf>> {
        if named.is_empty() {
            return Ok(None);
        }
        for path in named {
            let size = self
                .client
                .download_private_file(kind, service.as_str(), path, &directory.join(path))
                .await
                .with_context(|| format!("private file `{path}`"))?;
            self.say(&format!("downloaded private file {path} ({size} bytes)"));
        }
        Ok(Some(directory.to_path_buf()))
    }

    async fn upload(&self, image_ref: ImageRef, image: &BuiltImage) -> anyhow::Result<()> {
        let uploaded = self
            .client
            .upload_image(&image_ref, &image.zip.path, Some(&image.zip.sha256))
            .await?;
        self.say(&format!(
            "uploaded {image_ref} ({} bytes, {})",
            uploaded.size, uploaded.digest
        ));
        Ok(())
    }

    /// Logs the outcome, sends the rest of the log, and passes the outcome on.
    async fn finish(self, result: anyhow::Result<()>) -> anyhow::Result<()> {
        if let Err(error) = &result {
            // The build's own failure is logged by the builder; the other steps' here.
            let already = error
                .chain()
                .any(|cause| cause.is::<vupdate_builder::BuilderError>());
            if !already {
                self.log.line(
                    Level::Error,
                    vupdate_builder::log::UNIT_BUILD,
                    &format!("{error:#}"),
                );
            }
        }
        match Arc::try_unwrap(self.log) {
            Ok(log) => log.close().await,
            Err(_) => {
                eprintln!("warning: the build log is still in use; its last lines may be lost")
            }
        }
        result
    }
}

/// Opens the state repo, loads the commit and takes the service's merged settings.
async fn read_settings(
    path: &Path,
    args: &BuildArgs,
    service: &ServiceName,
) -> anyhow::Result<(Revision, ServiceSettings)> {
    let path = path.to_path_buf();
    let branch = args.branch.clone();
    let commit = args.commit.clone();
    let service = service.clone();
    tokio::task::spawn_blocking(move || {
        let branch = branch
            .or_else(|| StateRepo::checked_out_branch(&path))
            .unwrap_or_else(|| "main".to_owned());
        let repo = StateRepo::open(&path, &branch)?;
        let revision = match &commit {
            Some(commit) => repo.resolve(commit)?,
            None => repo.head()?,
        };
        let state = repo.load(&revision.id)?;
        let settings = state.build_settings(&service).ok_or_else(|| {
            InvalidInput::new(format!(
                "service `{service}` is not declared at state commit {} (no services/{service}.yaml)",
                revision.id
            ))
        })?;
        Ok::<_, anyhow::Error>((revision, settings))
    })
    .await
    .context("reading the state repo stopped")?
}

/// The service's merged settings at `--commit`, as the distribution's API gives them (a
/// remote builder has no clone of the distribution's state repo); the revision is what
/// the arguments say of it.
async fn api_settings(
    client: &Client,
    args: &BuildArgs,
    service: &ServiceName,
) -> anyhow::Result<(Revision, ServiceSettings)> {
    let commit = args.commit.clone().ok_or_else(|| {
        InvalidInput::new("--commit is required without --state-repo: the settings are read from the distribution at that commit")
    })?;
    let settings = client
        .build_settings(service, &commit)
        .await
        .with_context(|| format!("the build settings of {service} at state commit {commit}"))?;
    let author = args.author.as_deref().map_or_else(
        || Author::new("unknown", ""),
        |text| match text.split_once(" <") {
            Some((name, email)) => Author::new(name, email.trim_end_matches('>')),
            None => Author::new(text, ""),
        },
    );
    let revision = Revision {
        id: commit,
        author,
        time: chrono::Utc::now().fixed_offset(),
        summary: args.comment.clone().unwrap_or_default(),
        parents: Vec::new(),
    };
    Ok((revision, service_settings(settings)))
}

/// The API's build settings as the state crate's.
fn service_settings(settings: vupdate_client::BuildSettings) -> ServiceSettings {
    let repositories = |part: &vupdate_client::BuildPart| -> Vec<GitRepository> {
        part.repositories
            .iter()
            .map(|r| GitRepository {
                name: r.name.clone(),
                url: r.url.clone(),
                branch: r.branch.clone(),
                clone_submodules: r.clone_submodules,
                sub_directory: r.sub_directory.clone(),
            })
            .collect()
    };
    ServiceSettings {
        builder: settings.builder,
        developer: settings.developer.map(|part| DeveloperBuild {
            sources: repositories(&part),
            macro_values: part.macro_values,
            environment: part.environment,
            private_files: part.private_files,
        }),
        client: settings.client.map(|part| ClientBuild {
            settings: repositories(&part),
            macro_values: part.macro_values,
            environment: part.environment,
            private_files: part.private_files,
        }),
    }
}

/// The sources of a build with the branch each was built from.
fn sources(image: &BuiltImage, repositories: &[GitRepository]) -> Vec<Source> {
    image
        .sources
        .iter()
        .map(|source| Source {
            name: source.name.clone(),
            url: source.url.clone(),
            branch: repositories
                .iter()
                .find(|repository| repository.name == source.name)
                .map(|repository| repository.branch.clone())
                .unwrap_or_default(),
            commit: Some(source.commit.clone()),
        })
        .collect()
}

/// A client image built, with the developer image it was made from.
struct ClientImage {
    built: BuiltImage,
    developer_image: PathBuf,
}

impl ClientImage {
    /// Removes both zips once the distribution has what it needs.
    fn remove(self) {
        remove_zip(&self.built.zip.path);
        remove_zip(&self.developer_image);
    }
}

/// Removes a zip the distribution now has; a failure only costs disk space.
fn remove_zip(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("warning: cannot remove {}: {error}", path.display());
    }
}

/// This machine's host name, for log lines; `local` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "local".to_owned())
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
