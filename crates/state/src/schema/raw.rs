//! The files of schema 1 exactly as written: serde structs with locations, unknown keys refused.
//!
//! Every optional key is an `Option` so that `key:` with nothing after it (null) means the
//! same as leaving the key out. Semantic checks happen in `crate::validate`, not here.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::entries::Entries;

/// `vupdate.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MarkerFile {
    pub(crate) schema: Spanned<u64>,
}

/// `common.yaml` and `services/<name>.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsFile {
    pub(crate) builder: Option<Spanned<String>>,
    pub(crate) developer: Option<RawDeveloperBuild>,
    pub(crate) client: Option<RawClientBuild>,
}

/// The `developer:` part of a settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawDeveloperBuild {
    pub(crate) sources: Option<Vec<RawRepository>>,
    pub(crate) macro_values: Option<Entries<Spanned<String>>>,
    pub(crate) environment: Option<Entries<Spanned<String>>>,
    pub(crate) private_files: Option<Vec<Spanned<String>>>,
}

/// The `client:` part of a settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawClientBuild {
    pub(crate) settings: Option<Vec<RawRepository>>,
    pub(crate) macro_values: Option<Entries<Spanned<String>>>,
    pub(crate) environment: Option<Entries<Spanned<String>>>,
    pub(crate) private_files: Option<Vec<Spanned<String>>>,
}

/// One source or settings repository.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawRepository {
    pub(crate) name: Spanned<String>,
    pub(crate) git: RawGit,
    pub(crate) sub_directory: Option<Spanned<String>>,
}

/// Where a repository lives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawGit {
    pub(crate) url: Spanned<String>,
    pub(crate) branch: Spanned<String>,
    pub(crate) clone_submodules: Option<bool>,
}

/// `desired/developer.yaml` and `desired/client.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DesiredFile {
    pub(crate) versions: Option<Entries<Spanned<String>>>,
}

/// `profiles.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfilesFile {
    pub(crate) profiles: Option<Entries<Option<Vec<Spanned<String>>>>>,
}

/// `providers.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProvidersFile {
    pub(crate) providers: Option<Entries<RawProvider>>,
}

/// One provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawProvider {
    pub(crate) url: Spanned<String>,
    pub(crate) access_token_secret: Spanned<String>,
    pub(crate) test_consumer: Option<Spanned<String>>,
    pub(crate) upload_state: Option<bool>,
    pub(crate) auto_update: Option<Spanned<RawAutoUpdate>>,
    pub(crate) pinned_public_key: Option<Spanned<String>>,
}

/// `autoUpdate:` as written: one of the modes, or the boolean of schema 1's first release.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawAutoUpdate {
    /// `true` (read as `commit`) or `false` (read as `off`).
    Flag(bool),
    /// `commit`, `pullRequest` or `off`.
    Mode(String),
}

/// `consumers.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsumersFile {
    pub(crate) consumers: Option<Entries<RawConsumer>>,
}

/// One consumer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawConsumer {
    pub(crate) profile: Spanned<String>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) test_consumer: Option<Spanned<String>>,
}

/// `tested.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestedFile {
    pub(crate) tested: Option<Entries<RawTested>>,
}

/// One distribution's tested versions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTested {
    pub(crate) versions: Option<Entries<Spanned<String>>>,
    pub(crate) time: Option<Spanned<String>>,
}

/// `rollout.yaml`: what happens when updaters roll a version back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RolloutFile {
    pub(crate) on_failure: Option<Spanned<String>>,
    pub(crate) waves: Option<Spanned<Vec<RawWave>>>,
    pub(crate) services: Option<Entries<RawServiceRollout>>,
}

/// One service's part of `rollout.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawServiceRollout {
    pub(crate) on_failure: Option<Spanned<String>>,
    pub(crate) waves: Option<Spanned<Vec<RawWave>>>,
}

/// One wave of `waves:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawWave {
    pub(crate) name: Spanned<String>,
    pub(crate) instances: Option<Spanned<Vec<Spanned<String>>>>,
    pub(crate) labels: Option<Spanned<Entries<Spanned<String>>>>,
    pub(crate) healthy_for: Option<Spanned<String>>,
    pub(crate) max_failures: Option<Spanned<RawMaxFailures>>,
}

/// `maxFailures:` as written: a count (`2`) or a share (`10%`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawMaxFailures {
    /// A number of instances.
    Count(u64),
    /// A share such as `10%` (or a count written as a string).
    Text(String),
}

/// `policy.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    pub(crate) edits: Option<Vec<RawEditRule>>,
}

/// One rule of `edits:`: which branches, and how API edits of them are made.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEditRule {
    pub(crate) branch: Spanned<String>,
    pub(crate) mode: Spanned<String>,
}
