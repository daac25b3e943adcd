//! The validated state repo as plain data: what [`State::parse`] returns.
//!
//! These types hold no spans and no YAML: once a state has validated, callers work with
//! service names, versions and settings only. See `examples/state-repo/README.md` for the
//! file each field comes from.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, FixedOffset};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::waves::Wave;

/// The schema version this library reads and writes (`schema: 1` in `vupdate.yaml`).
pub const SCHEMA_VERSION: u64 = 1;

/// The profile naming the services this distribution builds client versions for.
pub const SELF_PROFILE: &str = "self";

/// A whole, validated state repo at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The schema version from `vupdate.yaml` (always [`SCHEMA_VERSION`] once parsed).
    pub schema: u64,
    /// Build settings shared by every service (`common.yaml`).
    pub common: ServiceSettings,
    /// The declared services (`services/<name>.yaml`) and their own build settings.
    pub services: BTreeMap<ServiceName, ServiceSettings>,
    /// The desired developer and client versions (`desired/*.yaml`).
    pub desired: Desired,
    /// Named groups of services (`profiles.yaml`); `self` is special, see [`SELF_PROFILE`].
    pub profiles: BTreeMap<String, BTreeSet<ServiceName>>,
    /// Distributions this one receives versions from (`providers.yaml`).
    pub providers: BTreeMap<String, Provider>,
    /// Distributions that receive versions from this one (`consumers.yaml`).
    pub consumers: BTreeMap<String, Consumer>,
    /// Versions marked as tested, by the distribution that tested them (`tested.yaml`).
    pub tested: BTreeMap<String, TestedVersions>,
    /// What happens when updaters roll a version back (`rollout.yaml`).
    pub rollout: Rollout,
    /// How the API and the dashboard make edits, per branch (`policy.yaml`).
    pub policy: Policy,
}

/// What the distribution does when updaters roll a version back (`onFailure`); the version
/// is recorded as known-bad either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Only mark it: the desired version stays as Git says, and updaters do not start it.
    #[default]
    Hold,
    /// Commit a revert of the change that desired it, so Git again says what runs.
    Revert,
}

impl OnFailure {
    /// The value as written in `rollout.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Hold => "hold",
            OnFailure::Revert => "revert",
        }
    }
}

/// `rollout.yaml`: the `onFailure` policy and the rollout waves, common and per service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollout {
    /// The policy of every service that names none (default [`OnFailure::Hold`]).
    pub on_failure: OnFailure,
    /// Services' own policies.
    pub services: BTreeMap<ServiceName, OnFailure>,
    /// The waves of every service that lists none of its own (empty: no waves).
    pub waves: Vec<Wave>,
    /// Services' own waves, each replacing the common list for its service.
    pub service_waves: BTreeMap<ServiceName, Vec<Wave>>,
}

impl Rollout {
    /// The policy of `service`: its own, else the common one.
    pub fn on_failure(&self, service: &ServiceName) -> OnFailure {
        self.services
            .get(service)
            .copied()
            .unwrap_or(self.on_failure)
    }

    /// The waves of `service`: its own, else the common ones; empty when it has none.
    pub fn waves(&self, service: &ServiceName) -> &[Wave] {
        self.service_waves.get(service).unwrap_or(&self.waves)
    }
}

/// How a service (or, in `common.yaml`, every service) is built; every part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSettings {
    /// The provider (of `providers.yaml`) whose distribution runs this service's builds,
    /// with this distribution's settings; `None`: they run here. A service's own value
    /// wins over `common.yaml`'s.
    pub builder: Option<String>,
    /// How developer versions are built; `None`: the service is only received from a provider.
    pub developer: Option<DeveloperBuild>,
    /// How client versions are made; `None`: nothing of the service's own (common may still apply).
    pub client: Option<ClientBuild>,
}

/// Settings of a developer build: source repositories, macros, environment, private files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeveloperBuild {
    /// Source repositories cloned under `source/<name>`; the first holds `update.json`.
    pub sources: Vec<GitRepository>,
    /// Values for `%%name%%` macros in build commands and copied files.
    pub macro_values: BTreeMap<String, String>,
    /// Environment variables for the build commands.
    pub environment: BTreeMap<String, String>,
    /// Paths inside the image of private files; their content lives on the distribution.
    pub private_files: Vec<String>,
}

/// Settings of a client build: settings repositories, macros, environment, private files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientBuild {
    /// Settings repositories merged over the developer image, in order.
    pub settings: Vec<GitRepository>,
    /// Values for `%%name%%` macros in settings files.
    pub macro_values: BTreeMap<String, String>,
    /// Environment variables for the client build.
    pub environment: BTreeMap<String, String>,
    /// Paths inside the image of private files; their content lives on the distribution.
    pub private_files: Vec<String>,
}

/// A Git repository a build clones: its directory name, where it lives, and what part is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRepository {
    /// The directory name under `source/` (or `settings/`), unique among a build's repositories.
    pub name: String,
    /// The URL to clone.
    pub url: String,
    /// The branch to build from.
    pub branch: String,
    /// Whether submodules are cloned too (default `true`, as in the original).
    pub clone_submodules: bool,
    /// The folder inside the repository that is used, if not its root.
    pub sub_directory: Option<String>,
}

/// The desired versions: one list for developer versions, one for client versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Service -> desired developer version (`desired/developer.yaml`).
    pub developer: BTreeMap<ServiceName, DeveloperVersion>,
    /// Service -> desired client version (`desired/client.yaml`), as written.
    pub client: BTreeMap<ServiceName, ClientVersion>,
}

/// A distribution this one receives versions from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The provider distribution's URL.
    pub url: String,
    /// The name of the secret, kept on this distribution, that holds the access token.
    pub access_token_secret: String,
    /// Take only versions this consumer of the provider has tested, if set.
    pub test_consumer: Option<String>,
    /// Upload instance states and fault reports to the provider.
    pub upload_state: bool,
    /// What happens when the provider offers other versions.
    pub auto_update: AutoUpdate,
    /// Trust exactly the HTTPS key this pin names (a provider with a self-signed
    /// certificate), instead of the system's certificate authorities.
    pub pinned_public_key: Option<vupdate_core::pin::PublicKeyPin>,
}

/// What a consumer does when its provider offers other versions (and their client images
/// exist): the `autoUpdate` of `providers.yaml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AutoUpdate {
    /// Commit the new desired client versions to the branch, authored as the provider.
    Commit,
    /// Push the same change to a branch `vupdate/<provider>/<revision>` for a person to
    /// review and merge.
    PullRequest,
    /// Change nothing: `status` shows the offer, and `takeProviderVersions` takes it.
    #[default]
    Off,
}

impl AutoUpdate {
    /// Every mode, in the order the schema documents them.
    pub const ALL: [AutoUpdate; 3] = [AutoUpdate::Commit, AutoUpdate::PullRequest, AutoUpdate::Off];

    /// The spelling in `providers.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoUpdate::Commit => "commit",
            AutoUpdate::PullRequest => "pullRequest",
            AutoUpdate::Off => "off",
        }
    }
}

impl std::fmt::Display for AutoUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AutoUpdate {
    type Err = String;

    fn from_str(text: &str) -> Result<AutoUpdate, String> {
        AutoUpdate::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| format!("autoUpdate `{text}` is not one of commit, pullRequest, off"))
    }
}

/// How the API and the dashboard make edits of desired state (`policy.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The rules, in file order; the first whose `branch` matches applies.
    pub edits: Vec<EditRule>,
}

/// One rule of `policy.yaml`'s `edits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRule {
    /// A Git wildmatch pattern of branch names (`main`, `release/*`, `**`).
    pub branch: String,
    /// How edits of a matching branch are made.
    pub mode: EditMode,
}

/// How an edit made through the API reaches the state repo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EditMode {
    /// One commit on the branch (the default).
    #[default]
    Commit,
    /// One commit on a new branch `vupdate/edit/...`, for a person to review and merge.
    PullRequest,
}

impl EditMode {
    /// Every mode, in the order the schema documents them.
    pub const ALL: [EditMode; 2] = [EditMode::Commit, EditMode::PullRequest];

    /// The spelling in `policy.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            EditMode::Commit => "commit",
            EditMode::PullRequest => "pullRequest",
        }
    }
}

impl Policy {
    /// How edits of `branch` are made: the mode of the first rule that matches it, else
    /// [`EditMode::Commit`].
    pub fn edit_mode(&self, branch: &str) -> EditMode {
        self.edits
            .iter()
            .find(|rule| branch_matches(&rule.branch, branch))
            .map_or(EditMode::Commit, |rule| rule.mode)
    }
}

/// Whether `branch` matches the wildmatch `pattern` as Git matches ref patterns: `*`
/// stops at `/`, `**` does not.
pub fn branch_matches(pattern: &str, branch: &str) -> bool {
    gix::glob::wildmatch(
        pattern.into(),
        branch.into(),
        gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
    )
}

/// A distribution that receives versions from this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The profile whose services the consumer receives.
    pub profile: String,
    /// The consumer distribution's URL, if this one calls it.
    pub url: Option<String>,
    /// Give this consumer only the versions another consumer (of `consumers.yaml`) has tested.
    pub test_consumer: Option<String>,
}

/// Developer versions a distribution has marked as tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestedVersions {
    /// Service -> the developer version that was tested.
    pub versions: BTreeMap<ServiceName, DeveloperVersion>,
    /// When they were marked, if recorded.
    pub time: Option<DateTime<FixedOffset>>,
}

impl State {
    /// The client version each service should run: the desired client list, plus every
    /// service of the `self` profile that the list leaves out and that has a desired
    /// developer version, at that developer version (generation 0).
    ///
    /// So a `git revert` of a developer-version change rolls such services back with no
    /// other edit. A `self` service with neither entry has nothing to run and is absent.
    pub fn effective_client_versions(&self) -> BTreeMap<ServiceName, ClientVersion> {
        let mut versions = self.desired.client.clone();
        if let Some(own) = self.profiles.get(SELF_PROFILE) {
            for service in own {
                if versions.contains_key(service) {
                    continue;
                }
                if let Some(developer) = self.desired.developer.get(service) {
                    versions.insert(service.clone(), ClientVersion::first(developer.clone()));
                }
            }
        }
        versions
    }

    /// The build settings of `service` merged over `common.yaml`; `None` when the service is
    /// not declared.
    ///
    /// Developer settings exist only when the service has its own `developer` part (a
    /// service without one is received from a provider, whatever common says). Client
    /// settings exist when either common or the service has a `client` part, as in the
    /// original where a client build needs only the common configuration. Merging:
    /// `macroValues` and `environment` take the service's value over common's; `sources`,
    /// `settings` and `privateFiles` are common's followed by the service's; `builder` is the
    /// service's, else common's.
    pub fn build_settings(&self, service: &ServiceName) -> Option<ServiceSettings> {
        let own = self.services.get(service)?;
        let developer = own.developer.as_ref().map(|own| {
            let common = self.common.developer.clone().unwrap_or_default();
            DeveloperBuild {
                sources: concat(&common.sources, &own.sources),
                macro_values: overlay(&common.macro_values, &own.macro_values),
                environment: overlay(&common.environment, &own.environment),
                private_files: concat(&common.private_files, &own.private_files),
            }
        });
        let client = match (&self.common.client, &own.client) {
            (None, None) => None,
            (common, own) => {
                let common = common.clone().unwrap_or_default();
                let own = own.clone().unwrap_or_default();
                Some(ClientBuild {
                    settings: concat(&common.settings, &own.settings),
                    macro_values: overlay(&common.macro_values, &own.macro_values),
                    environment: overlay(&common.environment, &own.environment),
                    private_files: concat(&common.private_files, &own.private_files),
                })
            }
        };
        Some(ServiceSettings {
            builder: own.builder.clone().or_else(|| self.common.builder.clone()),
            developer,
            client,
        })
    }

    /// The services a profile names; `None` when there is no such profile.
    pub fn profile(&self, name: &str) -> Option<&BTreeSet<ServiceName>> {
        self.profiles.get(name)
    }
}

fn concat<T: Clone>(first: &[T], second: &[T]) -> Vec<T> {
    first.iter().chain(second).cloned().collect()
}

fn overlay(
    base: &BTreeMap<String, String>,
    top: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = base.clone();
    merged.extend(top.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}
