//! Build settings and profiles, read from the state repo at any revision; profiles are
//! edited as commits. The merged settings of a service (over `common.yaml`) are what its
//! builds use.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use vupdate_core::service::ServiceName;
use vupdate_state::{
    ClientBuild, DeveloperBuild, GitRepository, ServiceSettings as Settings, StateEdit,
};

use super::context::{api, require};
use super::result::ApiResult as _;
use super::types::{NameValue, StateRevision, parse_arg};
use crate::auth::Role;
use crate::http::ApiError;

/// Who reads build settings: people, and the builder that uses them.
const READERS: &[Role] = &[Role::Administrator, Role::Developer, Role::Builder];
/// Who changes profiles.
const EDITORS: &[Role] = &[Role::Administrator];

/// A Git repository a build clones.
#[derive(SimpleObject)]
struct Repository {
    /// Its directory name in the build.
    name: String,
    /// Where it lives.
    url: String,
    /// The branch built.
    branch: String,
    /// Whether submodules are cloned too.
    clone_submodules: bool,
    /// The folder used, if not the root.
    sub_directory: Option<String>,
}

impl From<&GitRepository> for Repository {
    fn from(repo: &GitRepository) -> Repository {
        Repository {
            name: repo.name.clone(),
            url: repo.url.clone(),
            branch: repo.branch.clone(),
            clone_submodules: repo.clone_submodules,
            sub_directory: repo.sub_directory.clone(),
        }
    }
}

/// How developer versions of a service are built.
#[derive(SimpleObject)]
struct DeveloperSettings {
    /// Source repositories; the first holds `update.json`.
    sources: Vec<Repository>,
    /// `%%name%%` macro values.
    macro_values: Vec<NameValue>,
    /// Environment of the build commands.
    environment: Vec<NameValue>,
    /// Paths in the image of private files kept on this distribution.
    private_files: Vec<String>,
}

impl From<&DeveloperBuild> for DeveloperSettings {
    fn from(build: &DeveloperBuild) -> DeveloperSettings {
        DeveloperSettings {
            sources: build.sources.iter().map(Repository::from).collect(),
            macro_values: NameValue::list(&build.macro_values),
            environment: NameValue::list(&build.environment),
            private_files: build.private_files.clone(),
        }
    }
}

/// How client versions of a service are made.
#[derive(SimpleObject)]
struct ClientSettings {
    /// Settings repositories merged over the developer image, in order.
    settings: Vec<Repository>,
    /// `%%name%%` macro values.
    macro_values: Vec<NameValue>,
    /// Environment of the client build.
    environment: Vec<NameValue>,
    /// Paths in the image of private files kept on this distribution.
    private_files: Vec<String>,
}

impl From<&ClientBuild> for ClientSettings {
    fn from(build: &ClientBuild) -> ClientSettings {
        ClientSettings {
            settings: build.settings.iter().map(Repository::from).collect(),
            macro_values: NameValue::list(&build.macro_values),
            environment: NameValue::list(&build.environment),
            private_files: build.private_files.clone(),
        }
    }
}

/// A service's build settings.
#[derive(SimpleObject)]
struct ServiceSettings {
    /// The service; empty for `common.yaml`.
    service: String,
    /// Developer builds; null when the service is received from a provider.
    developer: Option<DeveloperSettings>,
    /// Client builds; null when there is nothing to customise.
    client: Option<ClientSettings>,
}

/// A named group of services.
#[derive(SimpleObject)]
struct Profile {
    /// Its name.
    profile: String,
    /// Its services.
    services: Vec<String>,
}

/// The newest commit of a service's first source repository.
#[derive(SimpleObject)]
struct SourceCommit {
    /// The repository's URL.
    url: String,
    /// The branch read.
    branch: String,
    /// The commit id.
    id: String,
    /// Its author's name.
    author: String,
    /// When it was authored.
    time: chrono::DateTime<chrono::Utc>,
    /// Its whole message (the dashboard offers it as a build's comment).
    message: String,
}

/// Reading build settings and profiles.
#[derive(Default)]
pub struct SettingsQuery;

#[Object]
impl SettingsQuery {
    /// The services declared in the state repo at `revision` (default: in force).
    async fn services(
        &self,
        ctx: &Context<'_>,
        revision: Option<String>,
    ) -> async_graphql::Result<Vec<String>> {
        require(ctx, READERS)?;
        let state = api(ctx).state_at(revision).await.api()?;
        Ok(state.services.keys().map(ToString::to_string).collect())
    }

    /// Build settings: `common.yaml` with `service` empty or absent; otherwise the
    /// service's own settings merged over common's (`merged`, the default) or as written.
    async fn build_settings(
        &self,
        ctx: &Context<'_>,
        service: Option<String>,
        revision: Option<String>,
        #[graphql(default = true)] merged: bool,
    ) -> async_graphql::Result<ServiceSettings> {
        require(ctx, READERS)?;
        let state = api(ctx).state_at(revision).await.api()?;
        let service = service.filter(|s| !s.is_empty());
        let (name, settings) = match service {
            None => (String::new(), state.common.clone()),
            Some(text) => {
                let service: ServiceName = parse_arg("service", &text).api()?;
                let not_declared = || {
                    ApiError::not_found(format!(
                        "service `{service}` is not declared in the state repo"
                    ))
                };
                let settings = if merged {
                    state.build_settings(&service)
                } else {
                    state.services.get(&service).cloned()
                };
                (text, settings.ok_or_else(not_declared).api()?)
            }
        };
        Ok(ServiceSettings {
            service: name,
            developer: settings.developer.as_ref().map(DeveloperSettings::from),
            client: settings.client.as_ref().map(ClientSettings::from),
        })
    }

    /// The newest commit of the branch built of `service`'s first source repository
    /// (the one holding `update.json`), read now from the repository, in force settings;
    /// the dashboard offers its message as a developer build's comment. Refused with
    /// `NOT_FOUND` (not declared, or no developer sources) or `SOURCE_UNREACHABLE`.
    async fn last_source_commit(
        &self,
        ctx: &Context<'_>,
        service: String,
    ) -> async_graphql::Result<SourceCommit> {
        require(ctx, &[Role::Administrator, Role::Developer])?;
        let state = api(ctx).state_at(None).await.api()?;
        let service: ServiceName = parse_arg("service", &service).api()?;
        let source = state
            .build_settings(&service)
            .and_then(|settings| settings.developer)
            .and_then(|developer| developer.sources.into_iter().next())
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "service `{service}` has no developer sources in the state in force"
                ))
            })
            .api()?;
        let commit = crate::sources::last_commit(&source.url, &source.branch)
            .await
            .api()?;
        Ok(SourceCommit {
            url: source.url,
            branch: source.branch,
            id: commit.id,
            author: commit.author,
            time: commit.time,
            message: commit.message,
        })
    }

    /// Profiles at `revision` (default: in force), or only `profile`.
    async fn service_profiles(
        &self,
        ctx: &Context<'_>,
        profile: Option<String>,
        revision: Option<String>,
    ) -> async_graphql::Result<Vec<Profile>> {
        require(ctx, &[Role::Administrator, Role::Developer])?;
        let state = api(ctx).state_at(revision).await.api()?;
        Ok(state
            .profiles
            .iter()
            .filter(|(name, _)| profile.as_ref().is_none_or(|p| p == *name))
            .map(|(name, services)| Profile {
                profile: name.clone(),
                services: services.iter().map(ToString::to_string).collect(),
            })
            .collect())
    }
}

/// A Git repository a build clones, as given to `setBuildSettings`.
#[derive(InputObject)]
struct RepositoryInput {
    /// Its directory name in the build, unique among the build's repositories.
    name: String,
    /// Where it lives.
    url: String,
    /// The branch built.
    branch: String,
    /// Whether submodules are cloned too.
    #[graphql(default = true)]
    clone_submodules: bool,
    /// The folder used, if not the root.
    sub_directory: Option<String>,
}

impl From<RepositoryInput> for GitRepository {
    fn from(repo: RepositoryInput) -> GitRepository {
        GitRepository {
            name: repo.name,
            url: repo.url,
            branch: repo.branch,
            clone_submodules: repo.clone_submodules,
            sub_directory: repo.sub_directory,
        }
    }
}

/// How developer versions are built, as given to `setBuildSettings`.
#[derive(InputObject)]
struct DeveloperSettingsInput {
    /// Source repositories; the first holds `update.json`.
    #[graphql(default)]
    sources: Vec<RepositoryInput>,
    /// `%%name%%` macro values.
    #[graphql(default)]
    macro_values: Vec<NameValue>,
    /// Environment of the build commands.
    #[graphql(default)]
    environment: Vec<NameValue>,
    /// Paths in the image of private files kept on this distribution.
    #[graphql(default)]
    private_files: Vec<String>,
}

/// How client versions are made, as given to `setBuildSettings`.
#[derive(InputObject)]
struct ClientSettingsInput {
    /// Settings repositories merged over the developer image, in order.
    #[graphql(default)]
    settings: Vec<RepositoryInput>,
    /// `%%name%%` macro values.
    #[graphql(default)]
    macro_values: Vec<NameValue>,
    /// Environment of the client build.
    #[graphql(default)]
    environment: Vec<NameValue>,
    /// Paths in the image of private files kept on this distribution.
    #[graphql(default)]
    private_files: Vec<String>,
}

impl DeveloperSettingsInput {
    fn into_build(self) -> Result<DeveloperBuild, ApiError> {
        Ok(DeveloperBuild {
            sources: self.sources.into_iter().map(GitRepository::from).collect(),
            macro_values: NameValue::map("developer.macroValues", self.macro_values)?,
            environment: NameValue::map("developer.environment", self.environment)?,
            private_files: self.private_files,
        })
    }
}

impl ClientSettingsInput {
    fn into_build(self) -> Result<ClientBuild, ApiError> {
        Ok(ClientBuild {
            settings: self.settings.into_iter().map(GitRepository::from).collect(),
            macro_values: NameValue::map("client.macroValues", self.macro_values)?,
            environment: NameValue::map("client.environment", self.environment)?,
            private_files: self.private_files,
        })
    }
}

/// Editing build settings and profiles as commits.
#[derive(Default)]
pub struct SettingsMutation;

#[Object]
impl SettingsMutation {
    /// Sets the build settings of `service` (`services/<service>.yaml`, created when new) or,
    /// with `service` empty, of `common.yaml`, as one commit on top of `expectedRevision`.
    /// A part left null is removed. Only the changed lines of the file change.
    async fn set_build_settings(
        &self,
        ctx: &Context<'_>,
        service: String,
        developer: Option<DeveloperSettingsInput>,
        client: Option<ClientSettingsInput>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let settings = Settings {
            developer: developer
                .map(DeveloperSettingsInput::into_build)
                .transpose()
                .api()?,
            client: client
                .map(ClientSettingsInput::into_build)
                .transpose()
                .api()?,
        };
        let edit = if service.is_empty() {
            StateEdit::SetCommon(settings)
        } else {
            StateEdit::SetServiceSettings {
                service: parse_arg("service", &service).api()?,
                settings,
            }
        };
        let revision = api(ctx)
            .commit_edit(principal, edit, expected_revision, comment)
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Removes a service's file (`services/<service>.yaml`) as one commit; refused while a
    /// desired list or profile still names the service.
    async fn remove_service(
        &self,
        ctx: &Context<'_>,
        service: String,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let service = parse_arg("service", &service).api()?;
        let revision = api(ctx)
            .commit_edit(
                principal,
                StateEdit::RemoveService(service),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Creates or replaces a profile, as one commit on top of `expectedRevision`.
    async fn set_service_profile(
        &self,
        ctx: &Context<'_>,
        profile: String,
        services: Vec<String>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let services = services
            .iter()
            .map(|s| parse_arg("services", s))
            .collect::<Result<_, _>>()
            .api()?;
        let edit = StateEdit::SetProfile {
            name: profile,
            services,
        };
        let revision = api(ctx)
            .commit_edit(principal, edit, expected_revision, comment)
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Removes a profile, as one commit on top of `expectedRevision`.
    async fn remove_service_profile(
        &self,
        ctx: &Context<'_>,
        profile: String,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let revision = api(ctx)
            .commit_edit(
                principal,
                StateEdit::RemoveProfile(profile),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }
}
