//! A build job: what `vupdate builder build-developer-version`, `build-client-version`
//! and `build-client-generation` run, for a distribution's build task or a person.
//!
//! The build settings come from the state repo at the commit that asked for the build (a
//! remote builder, which has no clone of that repo, reads them at that commit through the
//! distribution's `buildSettings`); the distribution is reached only through its public
//! API (`vupdate-client`): private files
//! are downloaded into a temporary directory, the build's log lines stream into the task
//! log with `POST /logs/batches` (and to stdout), the image is uploaded and the version record added.
//! Each step is named in the error that ends the job ([`BuilderError::Step`]); a
//! cancellation kills the running build command's process group. The job's warnings go to
//! stderr as `warning: …` lines, which a distribution running it keeps in the task log.

mod log;

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

use crate::{
    BuildLog, Builder, BuilderError, BuiltImage, CancellationToken, ClientRequest,
    DeveloperRequest, NextClient, next_client_version,
};
use log::ApiLog;

/// The service name build log lines are sent under.
const LOG_SERVICE: &str = "builder";

/// What a job builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRequest {
    /// A developer version from the sources.
    Developer(DeveloperVersion),
    /// A client version from its developer image and the client settings.
    Client(ClientVersion),
    /// A client image of a developer version, kept as the next generation `_N+1` only
    /// when its content is new.
    Generation(DeveloperVersion),
}

/// Where a job's settings come from and where its results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// The state repository the build settings are read from; `None`: the distribution's
    /// API gives them at `commit` (a remote builder has no clone of that state repo).
    pub state_repo: Option<PathBuf>,
    /// The state commit whose settings are used [default: the branch tip].
    pub commit: Option<String>,
    /// The branch [default: the branch checked out, else `main`].
    pub branch: Option<String>,
    /// The build task whose log gets the build's output.
    pub task: Option<String>,
    /// The builder's work directory (clones, builds, images).
    pub work_dir: PathBuf,
    /// Who asked for the build, for the version record [default: the commit's author].
    pub author: Option<String>,
    /// Why, for the version record [default: the commit's summary].
    pub comment: Option<String>,
    /// The instance named in the build's log lines [default: the host name].
    pub instance: Option<String>,
}

/// Builds what `request` asks for `service`, uploads it through `client` (which carries
/// a Builder account's token) and records the version; `cancel` stops the build.
pub async fn run(
    client: Client,
    settings: &JobSettings,
    service: &ServiceName,
    request: JobRequest,
    cancel: CancellationToken,
) -> Result<(), BuilderError> {
    let job = Job::prepare(client, settings, service, cancel).await?;
    let result = match &request {
        JobRequest::Developer(version) => job.developer_steps(service, version).await,
        JobRequest::Client(version) => {
            async {
                let image = job.client_image(service, version).await?;
                job.record_client(service, version, image).await
            }
            .await
        }
        JobRequest::Generation(developer) => job.generation_steps(service, developer).await,
    };
    job.finish(result).await
}

/// A closure that names the step an error ended, for `map_err`.
fn step<E: Into<BuilderError>>(step: &'static str) -> impl FnOnce(E) -> BuilderError {
    move |error| BuilderError::Step {
        step,
        source: Box::new(error.into()),
    }
}

/// The step whose failures the builder has logged already.
const STEP_BUILDING: &str = "building";

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
    async fn prepare(
        client: Client,
        args: &JobSettings,
        service: &ServiceName,
        cancel: CancellationToken,
    ) -> Result<Job, BuilderError> {
        let (revision, settings) = match &args.state_repo {
            Some(path) => read_settings(path, args, service).await,
            None => api_settings(&client, args, service).await,
        }
        .map_err(step("reading the build settings"))?;
        let source = LogSource {
            service: LOG_SERVICE.to_owned(),
            role: None,
            instance: args.instance.clone().unwrap_or_else(host_name),
            directory: args.work_dir.display().to_string(),
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
        Ok(Job {
            client,
            settings,
            revision,
            author,
            comment,
            work_dir: args.work_dir.clone(),
            log,
            cancel,
        })
    }

    fn say(&self, message: &str) {
        self.log.line(Level::Info, crate::log::UNIT_BUILD, message);
    }

    /// Builds, uploads and records a developer version.
    async fn developer_steps(
        &self,
        service: &ServiceName,
        version: &DeveloperVersion,
    ) -> Result<(), BuilderError> {
        let settings = self.settings.developer.clone().ok_or_else(|| BuilderError::Request {
            reason: format!(
                "service `{service}` has no developer settings at state commit {} (services/{service}.yaml has no `developer` part), so it cannot be built here",
                self.revision.id
            ),
        })?;
        self.say(&format!(
            "building developer version {version} of {service} from state commit {} for {}",
            self.revision.id, self.author
        ));
        let private = private_directory()?;
        let private_files = self
            .download_private(
                ImageKind::Developer,
                service,
                &settings.private_files,
                private.path(),
            )
            .await
            .map_err(step("downloading private files"))?;
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
            .map_err(step(STEP_BUILDING))?;
        drop(private);
        self.upload(ImageRef::developer(service, version), &image)
            .await
            .map_err(step("uploading the image"))?;
        let build = BuildInfo {
            author: self.author.clone(),
            sources: sources(&image, &repositories),
            time: chrono::Utc::now(),
            comment: self.comment.clone(),
        };
        self.client
            .add_developer_version_info(service, version, &build)
            .await
            .map_err(step("recording the version"))?;
        remove_zip(&image.zip.path);
        self.say(&format!(
            "developer version {version} of {service} uploaded and recorded"
        ));
        Ok(())
    }

    /// Builds a client image of `developer` from the settings at this commit and keeps it
    /// as the next generation `_N+1` only when its content differs from the newest one's.
    async fn generation_steps(
        &self,
        service: &ServiceName,
        developer: &DeveloperVersion,
    ) -> Result<(), BuilderError> {
        let records = self
            .client
            .client_versions_info(service, None)
            .await
            .map_err(step("reading the client versions"))?;
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
    ) -> Result<ClientImage, BuilderError> {
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
            .map_err(step("downloading the developer image"))?;
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
        let private = private_directory()?;
        let private_files = self
            .download_private(ImageKind::Client, service, &named, private.path())
            .await
            .map_err(step("downloading private files"))?;
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
            .map_err(step(STEP_BUILDING))?;
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
    ) -> Result<(), BuilderError> {
        let developer = &version.developer;
        self.upload(ImageRef::client(service, version), &image.built)
            .await
            .map_err(step("uploading the image"))?;
        let records = self
            .client
            .developer_versions_info(service, Some(&developer.to_string()))
            .await
            .map_err(step("reading the developer version record"))?;
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
            .map_err(step("recording the version"))?;
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
    ) -> Result<Option<PathBuf>, BuilderError> {
        if named.is_empty() {
            return Ok(None);
        }
        for path in named {
            let size = self
                .client
                .download_private_file(kind, service.as_str(), path, &directory.join(path))
                .await
                .map_err(|source| BuilderError::PrivateFile {
                    path: path.clone(),
                    source,
                })?;
            self.say(&format!("downloaded private file {path} ({size} bytes)"));
        }
        Ok(Some(directory.to_path_buf()))
    }

    async fn upload(&self, image_ref: ImageRef, image: &BuiltImage) -> Result<(), BuilderError> {
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
    async fn finish(self, result: Result<(), BuilderError>) -> Result<(), BuilderError> {
        if let Err(error) = &result {
            // The build's own failure is logged by the builder; the other steps' here.
            let already = matches!(
                error,
                BuilderError::Step {
                    step: STEP_BUILDING,
                    ..
                }
            );
            if !already {
                self.log
                    .line(Level::Error, crate::log::UNIT_BUILD, &error.chain());
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
    args: &JobSettings,
    service: &ServiceName,
) -> Result<(Revision, ServiceSettings), BuilderError> {
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
        let settings = state
            .build_settings(&service)
            .ok_or_else(|| BuilderError::Request {
                reason: format!(
                    "service `{service}` is not declared at state commit {} (no services/{service}.yaml)",
                    revision.id
                ),
            })?;
        Ok((revision, settings))
    })
    .await
    .map_err(|error| BuilderError::Internal {
        step: "reading the build settings",
        reason: error.to_string(),
    })?
}

/// The service's merged settings at `commit`, as the distribution's API gives them; the
/// revision is what the job's settings say of it.
async fn api_settings(
    client: &Client,
    args: &JobSettings,
    service: &ServiceName,
) -> Result<(Revision, ServiceSettings), BuilderError> {
    let commit = args.commit.clone().ok_or_else(|| BuilderError::Request {
        reason: "a state commit is required without a state repo: the settings are read from the distribution at that commit".to_owned(),
    })?;
    let settings = client.build_settings(service, &commit).await?;
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

/// A temporary directory for the private files of one build.
fn private_directory() -> Result<tempfile::TempDir, BuilderError> {
    tempfile::Builder::new()
        .prefix("vupdate-private-")
        .tempdir()
        .map_err(BuilderError::io(
            "making a temporary directory in",
            std::env::temp_dir(),
        ))
        .map_err(step("downloading private files"))
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
