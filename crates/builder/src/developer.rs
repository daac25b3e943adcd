//! Developer builds: sources → build commands → `copyFiles` → `install.json` → private
//! files → zip → tags.
//!
//! The steps are the original builder's, in its order, with its defects fixed: a tag that
//! cannot be pushed fails the build (the original only logged it), the image is written
//! under a temporary name and renamed, and exec bits survive the zip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vupdate_core::log::Level;
use vupdate_core::macros::Macros;
use vupdate_core::service::ServiceName;
use vupdate_core::update::{ServiceUpdate, UpdateFile};
use vupdate_core::version::DeveloperVersion;
use vupdate_state::model::DeveloperBuild;

use crate::error::BuilderError;
use crate::log::{BuildLog, UNIT_BUILD};
use crate::process::{self, Step};
use crate::sources::Fetched;
use crate::sources::{self, Checkout};
use crate::{
    Builder, BuiltImage, SourceCommit, blocking, check_cancelled, copy, image, private, remove_dir,
    remove_file,
};

/// The file in the first source repository that describes the build.
pub const UPDATE_JSON: &str = "update.json";
/// The file the `install` section is written to, at the image root.
pub const INSTALL_JSON: &str = "install.json";

/// What to build: a developer version of a service from its build settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperRequest {
    /// The service.
    pub service: ServiceName,
    /// The version to build; its distribution and build name the source tags.
    pub version: DeveloperVersion,
    /// The service's developer build settings (from `State::build_settings`).
    pub settings: DeveloperBuild,
    /// A directory holding the private files at their image paths, if any.
    pub private_files: Option<PathBuf>,
}

impl DeveloperRequest {
    /// The tag written to every source repository: `<service>-<distribution>-<build>`.
    pub fn tag(&self) -> String {
        format!("{}-{}", self.service, self.version)
    }
}

impl Builder {
    /// The directory of `service`'s developer builds.
    pub fn developer_directory(&self, service: &ServiceName) -> PathBuf {
        self.directory
            .join("developer")
            .join("services")
            .join(service.as_str())
    }

    /// Builds a developer version: clones or fetches the sources, runs the build commands
    /// (output into `log` as it comes), copies the files, writes `install.json`, adds the
    /// private files, zips, then tags every source repository and pushes the tags.
    ///
    /// On `cancel`, the running command's process group is killed and no image is left.
    pub async fn build_developer(
        &self,
        request: DeveloperRequest,
        log: Arc<dyn BuildLog>,
        cancel: CancellationToken,
    ) -> Result<BuiltImage, BuilderError> {
        let span = tracing::info_span!("build_developer", service = %request.service, version = %request.version);
        let result = self
            .developer_steps(&request, log.as_ref(), &cancel)
            .instrument(span)
            .await;
        match &result {
            Ok(image) => log.line(
                Level::Info,
                UNIT_BUILD,
                &format!(
                    "developer version {} of {} built: {} ({} bytes, sha256 {})",
                    request.version,
                    request.service,
                    image.zip.path.display(),
                    image.zip.size,
                    image.zip.sha256
                ),
            ),
            Err(error) => log.line(Level::Error, UNIT_BUILD, &error.to_string()),
        }
        result
    }

    async fn developer_steps(
        &self,
        request: &DeveloperRequest,
        log: &dyn BuildLog,
        cancel: &CancellationToken,
    ) -> Result<BuiltImage, BuilderError> {
        if request.settings.sources.is_empty() {
            return Err(BuilderError::Settings(format!(
                "service `{}` has no source repositories: its developer settings must list at least one, the first holding update.json",
                request.service
            )));
        }
        let service_directory = self.developer_directory(&request.service);
        let source_root = service_directory.join("source");
        let build_directory = service_directory.join("build");
        let zip_path =
            service_directory.join(format!("{}-{}.zip", request.service, request.version));

        // An image of this version from an earlier build must not outlive a failure of this one.
        remove_file(&zip_path)?;

        let checkouts = checkout_all(&request.settings.sources, &source_root, log, cancel).await?;
        let first = &checkouts[0];
        let rules = read_rules(&first.directory, &request.service)?;
        log.line(
            Level::Info,
            UNIT_BUILD,
            &format!("read {} from repository `{}`", UPDATE_JSON, first.name),
        );

        let macros: Macros = request
            .settings
            .macro_values
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .chain([("version".to_owned(), request.version.to_string())])
            .collect();
        let environment: BTreeMap<String, String> = request.settings.environment.clone();
        for (index, command) in rules.build.build_commands.iter().enumerate() {
            let step = format!("buildCommands[{index}]");
            check_cancelled(cancel, &step)?;
            let command = command
                .expand(&macros)
                .map_err(|source| BuilderError::Macro {
                    step: step.clone(),
                    error: source,
                })?;
            let step = Step {
                name: step,
                command: &command,
                base_directory: &first.directory,
                environment: &environment,
            };
            process::run(&step, log, cancel, self.options.kill_grace).await?;
        }

        check_cancelled(cancel, "copyFiles")?;
        log.line(
            Level::Info,
            UNIT_BUILD,
            &format!("assembling the image in {}", build_directory.display()),
        );
        let (interrupt, _stop) = sources::interrupt_flag(cancel);
        let assembled = {
            let copy_files = rules.build.copy_files.clone();
            let install = rules.install.clone();
            let base = first.directory.clone();
            let private_directory = request.private_files.clone();
            let private_named = request.settings.private_files.clone();
            let build_directory = build_directory.clone();
            let zip_path = zip_path.clone();
            blocking("assembling the image", move || {
                remove_dir(&build_directory)?;
                std::fs::create_dir_all(&build_directory)
                    .map_err(BuilderError::io("creating directory", &build_directory))?;
                copy::copy_files(
                    &copy_files,
                    &source_root,
                    &base,
                    &build_directory,
                    &interrupt,
                )?;
                if let Some(install) = install {
                    let path = build_directory.join(INSTALL_JSON);
                    if path.exists() {
                        return Err(BuilderError::InstallJsonConflict);
                    }
                    std::fs::write(&path, install.to_json_pretty() + "\n")
                        .map_err(BuilderError::io("writing", &path))?;
                }
                private::add(
                    private_directory.as_deref(),
                    &private_named,
                    &build_directory,
                )?;
                image::zip_directory(&build_directory, &zip_path, &interrupt)
            })
            .await?
        };

        let tag = request.tag();
        let tagged = match check_cancelled(cancel, "tagging") {
            Ok(()) => tag_all(&checkouts, &tag, log).await,
            Err(cancelled) => Err(cancelled),
        };
        if let Err(error) = tagged {
            // No image without its tags: the version's sources must be findable.
            remove_file(&assembled.path)?;
            return Err(error);
        }
        Ok(BuiltImage {
            zip: assembled,
            sources: checkouts.iter().map(SourceCommit::from).collect(),
        })
    }
}

/// Checks every repository out under `parent`, one after another, logging each commit.
pub(crate) async fn checkout_all(
    repositories: &[vupdate_state::model::GitRepository],
    parent: &Path,
    log: &dyn BuildLog,
    cancel: &CancellationToken,
) -> Result<Vec<Checkout>, BuilderError> {
    let mut checkouts = Vec::with_capacity(repositories.len());
    for repository in repositories {
        check_cancelled(cancel, &format!("checking out `{}`", repository.name))?;
        log.line(
            Level::Info,
            UNIT_BUILD,
            &format!(
                "fetching `{}` from {} (branch {})",
                repository.name, repository.url, repository.branch
            ),
        );
        let (interrupt, _stop) = sources::interrupt_flag(cancel);
        let checkout = {
            let repository = repository.clone();
            let parent = parent.to_path_buf();
            blocking("checkout", move || {
                sources::checkout(&repository, &parent, &interrupt)
            })
            .await
        };
        if cancel.is_cancelled() {
            return Err(BuilderError::Cancelled {
                step: format!("checking out `{}`", repository.name),
            });
        }
        let checkout = checkout?;
        let how = match &checkout.fetched {
            Fetched::Reused => "fetched into the earlier clone".to_owned(),
            Fetched::Cloned { replaced: None } => "cloned".to_owned(),
            Fetched::Cloned {
                replaced: Some(reason),
            } => format!("cloned again ({reason})"),
        };
        log.line(
            Level::Info,
            UNIT_BUILD,
            &format!("`{}` {how}, at commit {}", checkout.name, checkout.commit),
        );
        checkouts.push(checkout);
    }
    Ok(checkouts)
}

/// Reads `update.json` from `directory` and takes `service`'s rules from it.
fn read_rules(directory: &Path, service: &ServiceName) -> Result<ServiceUpdate, BuilderError> {
    let path = directory.join(UPDATE_JSON);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(BuilderError::UpdateJsonMissing { path });
        }
        Err(error) => return Err(BuilderError::io("reading", &path)(error)),
    };
    let file = UpdateFile::from_json(&text).map_err(|source| BuilderError::UpdateJson {
        path: path.clone(),
        error: source,
    })?;
    file.service(service.as_str())
        .cloned()
        .ok_or_else(|| BuilderError::ServiceNotDescribed {
            path,
            service: service.to_string(),
            described: file
                .update
                .iter()
                .map(|entry| entry.service.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Tags every checkout and pushes the tags; the first failure stops.
async fn tag_all(
    checkouts: &[Checkout],
    tag: &str,
    log: &dyn BuildLog,
) -> Result<(), BuilderError> {
    for checkout in checkouts {
        let (owned, tag_owned) = (checkout.clone(), tag.to_owned());
        blocking("tagging", move || sources::tag_and_push(&owned, &tag_owned)).await?;
        log.line(
            Level::Info,
            UNIT_BUILD,
            &format!(
                "tagged `{}` at {} as {tag} and pushed the tag to {}",
                checkout.name, checkout.commit, checkout.url
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_json_errors_name_the_file_and_json_path() {
        let temp = tempfile::tempdir().expect("temp dir");
        let service: ServiceName = "api".parse().expect("service name");
        let error = read_rules(temp.path(), &service).expect_err("missing");
        assert!(
            matches!(error, BuilderError::UpdateJsonMissing { .. }),
            "{error}"
        );

        std::fs::write(
            temp.path().join(UPDATE_JSON),
            r#"{"update": [{"service": "api", "build": {"copyFiles": [{"sourceFile": "a", "destinationFile": "/etc/x"}]}}]}"#,
        )
        .expect("write");
        let message = read_rules(temp.path(), &service)
            .expect_err("absolute")
            .to_string();
        assert!(
            message.contains("update.json`: update[0].build.copyFiles[0].destinationFile"),
            "{message}"
        );

        std::fs::write(
            temp.path().join(UPDATE_JSON),
            r#"{"update": [{"service": "web", "build": {"copyFiles": []}}]}"#,
        )
        .expect("write");
        let message = read_rules(temp.path(), &service)
            .expect_err("other service")
            .to_string();
        assert!(
            message.ends_with("has no entry for service `api` (it describes: web)"),
            "{message}"
        );
    }

    #[test]
    fn tags_name_service_distribution_and_build() {
        let request = DeveloperRequest {
            service: "api".parse().expect("service"),
            version: "acme-1.2.3".parse().expect("version"),
            settings: DeveloperBuild::default(),
            private_files: None,
        };
        assert_eq!(request.tag(), "api-acme-1.2.3");
    }
}
