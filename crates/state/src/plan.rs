//! What merging a change of the state repo would do: [`Plan::compute`] compares two
//! states (BASE and HEAD) and, when given, the live facts of a distribution ([`Facts`]).
//!
//! Pure: no Git, no network. The CLI (`vupdate state plan`) and the distribution's
//! GraphQL `plan(base, head)` load the states and gather the facts, then call it; both
//! print it with [`render`] (text or Markdown) or as JSON (the types serialize).
//! A fact that was not given is said to be unknown, never guessed.

pub mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::model::{ServiceSettings, State};
use crate::problems::ValidationErrors;

/// What a distribution knows that the state repo does not; each part is `None` when it
/// could not be asked (no distribution given, or a server that does not report it).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The name of the distribution the facts come from: developer versions of other
    /// distributions are downloaded from a provider, not built.
    pub distribution: Option<String>,
    /// The images the distribution holds.
    pub images: Option<Images>,
    /// The instances reporting their state.
    pub instances: Option<Vec<InstanceFact>>,
    /// The versions known to fail.
    pub known_bad: Option<Vec<KnownBad>>,
}

/// The versions that have an image.
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// Developer versions with an image.
    pub developer: BTreeSet<(ServiceName, DeveloperVersion)>,
    /// Client versions with an image.
    pub client: BTreeSet<(ServiceName, ClientVersion)>,
}

/// One instance of a service, as it last reported.
#[derive(Debug, Clone)]
pub struct InstanceFact {
    /// The instance (host).
    pub instance: String,
    /// The service, without its role.
    pub service: ServiceName,
    /// The role it runs in.
    pub role: Option<String>,
    /// The client version it runs, if any.
    pub version: Option<ClientVersion>,
}

/// A client version of a service known to fail, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBad {
    /// The service.
    pub service: ServiceName,
    /// The client version that failed.
    pub version: ClientVersion,
    /// Why it is known to be bad.
    pub reason: String,
}

/// What merging HEAD over BASE would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Whether HEAD validates; when not, `problems` says why and nothing else is planned.
    pub valid: bool,
    /// Every validation problem of HEAD, with file, line and column.
    pub problems: Vec<PlanProblem>,
    /// Problems of BASE: it was then taken as empty (every service of HEAD is new).
    pub base_problems: Vec<PlanProblem>,
    /// The services that change, by name.
    pub services: Vec<ServicePlan>,
    /// Whether `common.yaml` (build settings of every service) changes.
    pub common_settings_changed: bool,
    /// Profiles that gain or lose services.
    pub profiles: Vec<ProfileChange>,
    /// The facts that could not be known, in words.
    pub unknown: Vec<String>,
}

/// A validation problem as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanProblem {
    /// The file, relative to the repository root.
    pub path: String,
    /// The line, from 1, when known.
    pub line: Option<u64>,
    /// The column, from 1, when known.
    pub column: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// How a service's declaration changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Declared in HEAD only.
    Added,
    /// Declared in BASE only.
    Removed,
    /// Declared under another name in BASE, with the same settings (see `renamed_from`).
    Renamed,
    /// Declared in both (or in neither, with desired versions only).
    Changed,
}

/// A version before and after; `None` where there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionChange {
    /// At BASE.
    pub from: Option<String>,
    /// At HEAD.
    pub to: Option<String>,
}

/// Where the image of a version HEAD desires comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageNeed {
    /// The distribution holds it.
    Present,
    /// It will be built.
    Build,
    /// It comes from the provider that built it.
    Download,
    /// Not known (no distribution asked).
    Unknown,
}

/// The instances of one role that would update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleUpdate {
    /// The role; `None` for instances in no role.
    pub role: Option<String>,
    /// The instances, by name.
    pub instances: Vec<String>,
}

/// A known-bad version HEAD desires again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownBadHit {
    /// The client version.
    pub version: String,
    /// Why it is known to be bad.
    pub reason: String,
}

/// What changes for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePlan {
    /// The service (its name at HEAD; at BASE for a removed one).
    pub service: String,
    /// How its declaration changes.
    pub change: Change,
    /// Its name at BASE when renamed.
    pub renamed_from: Option<String>,
    /// Its desired developer version, when that changes.
    pub developer: Option<VersionChange>,
    /// Its effective client version (what updaters run), when that changes.
    pub client: Option<VersionChange>,
    /// Where HEAD's developer version's image comes from, when it changes.
    pub developer_image: Option<ImageNeed>,
    /// Where HEAD's client version's image comes from, when it changes.
    pub client_image: Option<ImageNeed>,
    /// The instances that would update (or stop), by role; `None` when not known.
    pub instances: Option<Vec<RoleUpdate>>,
    /// The consumers (of `consumers.yaml`) that receive its developer version, when that changes.
    pub consumers: Vec<String>,
    /// Known-bad versions HEAD desires again.
    pub known_bad: Vec<KnownBadHit>,
    /// The waves (`rollout.yaml` at HEAD) its new client version goes to, in order: the
    /// change starts with the first; empty when it has none or the version does not change.
    pub waves: Vec<String>,
    /// Whether its own build settings (`services/<name>.yaml`) change.
    pub settings_changed: bool,
    /// Profiles it joins.
    pub profiles_joined: Vec<String>,
    /// Profiles it leaves.
    pub profiles_left: Vec<String>,
}

/// A profile that gains or loses services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileChange {
    /// The profile.
    pub profile: String,
    /// Services added to it.
    pub added: Vec<String>,
    /// Services removed from it.
    pub removed: Vec<String>,
}

impl Plan {
    /// What merging `head` over `base` would do, given `facts`. `base` is `Err` when BASE
    /// does not validate (then taken as empty), `head` when HEAD does not.
    pub fn compute(
        base: Result<&State, &ValidationErrors>,
        head: Result<&State, &ValidationErrors>,
        facts: &Facts,
    ) -> Plan {
        let base_problems = match base {
            Ok(_) => Vec::new(),
            Err(errors) => problems(errors),
        };
        let mut plan = Plan {
            valid: head.is_ok(),
            problems: Vec::new(),
            base_problems,
            services: Vec::new(),
            common_settings_changed: false,
            profiles: Vec::new(),
            unknown: unknown(facts),
        };
        let head = match head {
            Ok(head) => head,
            Err(errors) => {
                plan.problems = problems(errors);
                return plan;
            }
        };
        let base = base.ok();
        let old = base.map(Side::of).unwrap_or_default();
        let new = Side::of(head);
        let old = &old;
        plan.common_settings_changed = base.is_some_and(|base| base.common != head.common);
        plan.profiles = profile_changes(old, &new);
        let renames = renames(old, &new);
        let renamed_old: BTreeSet<&ServiceName> = renames.values().copied().collect();
        let known_bad = facts.known_bad.as_deref().unwrap_or_default();
        let instances = facts.instances.as_ref().map(|list| by_service(list));
        let names: BTreeSet<&ServiceName> = old.names().chain(new.names()).collect();
        for name in names {
            if renamed_old.contains(name) {
                continue;
            }
            let from = renames.get(name).copied().unwrap_or(name);
            let change = match (old.declared(from), new.declared(name)) {
                _ if from != name => Change::Renamed,
                (false, true) => Change::Added,
                (true, false) => Change::Removed,
                _ => Change::Changed,
            };
            let developer = version_change(old.developer.get(from), new.developer.get(name));
            let client = version_change(old.client.get(from), new.client.get(name));
            let settings_changed = change == Change::Changed
                && old.settings.get(from) != new.settings.get(name)
                && old.declared(from)
                && new.declared(name);
            let old_profiles = old.profiles_of(from);
            let new_profiles = new.profiles_of(name);
            let profiles_joined: Vec<String> =
                new_profiles.difference(&old_profiles).cloned().collect();
            let profiles_left: Vec<String> =
                old_profiles.difference(&new_profiles).cloned().collect();
            if change == Change::Changed
                && developer.is_none()
                && client.is_none()
                && !settings_changed
                && profiles_joined.is_empty()
                && profiles_left.is_empty()
            {
                continue;
            }
            let new_developer = new.developer.get(name);
            let new_client = new.client.get(name);
            let developer_image = developer
                .as_ref()
                .and(new_developer)
                .map(|version| developer_image(facts, name, version));
            let client_image = client
                .as_ref()
                .and(new_client)
                .map(|version| client_image(facts, name, version));
            let instances = match (&client, &instances) {
                (None, _) => Some(Vec::new()),
                (Some(_), None) => None,
                (Some(_), Some(instances)) => Some(updates(
                    instances.get(from).map(Vec::as_slice).unwrap_or_default(),
                    new_client,
                )),
            };
            let consumers = if developer.is_some() {
                consumers_of(head, name)
            } else {
                Vec::new()
            };
            let known_bad = match (&client, new_client) {
                (Some(_), Some(version)) => known_bad
                    .iter()
                    .filter(|bad| &bad.service == name && &bad.version == version)
                    .map(|bad| KnownBadHit {
                        version: bad.version.to_string(),
                        reason: bad.reason.clone(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let waves = match (&client, new_client) {
                (Some(_), Some(_)) => head
                    .rollout
                    .waves(name)
                    .iter()
                    .map(|wave| wave.name.clone())
                    .collect(),
                _ => Vec::new(),
            };
            plan.services.push(ServicePlan {
                service: name.to_string(),
                change,
                renamed_from: (from != name).then(|| from.to_string()),
                developer,
                client,
                developer_image,
                client_image,
                instances,
                consumers,
                known_bad,
                waves,
                settings_changed,
                profiles_joined,
                profiles_left,
            });
        }
        plan
    }

    /// How many known-bad versions HEAD desires again.
    pub fn known_bad_count(&self) -> usize {
        self.services.iter().map(|s| s.known_bad.len()).sum()
    }
}

/// One state as the plan compares it.
#[derive(Default)]
struct Side<'a> {
    settings: BTreeMap<&'a ServiceName, &'a ServiceSettings>,
    developer: BTreeMap<&'a ServiceName, &'a DeveloperVersion>,
    client: BTreeMap<ServiceName, ClientVersion>,
    profiles: BTreeMap<&'a str, &'a BTreeSet<ServiceName>>,
}

impl<'a> Side<'a> {
    fn of(state: &'a State) -> Side<'a> {
        Side {
            settings: state.services.iter().collect(),
            developer: state.desired.developer.iter().collect(),
            client: state.effective_client_versions(),
            profiles: state
                .profiles
                .iter()
                .map(|(name, services)| (name.as_str(), services))
                .collect(),
        }
    }

    fn names(&self) -> impl Iterator<Item = &ServiceName> {
        self.settings
            .keys()
            .copied()
            .chain(self.developer.keys().copied())
            .chain(self.client.keys())
    }

    fn declared(&self, name: &ServiceName) -> bool {
        self.settings.contains_key(name)
    }

    fn profiles_of(&self, name: &ServiceName) -> BTreeSet<String> {
        self.profiles
            .iter()
            .filter(|(_, services)| services.contains(name))
            .map(|(profile, _)| (*profile).to_owned())
            .collect()
    }
}

fn problems(errors: &ValidationErrors) -> Vec<PlanProblem> {
    errors
        .problems()
        .iter()
        .map(|problem| PlanProblem {
            path: problem.path.clone(),
            line: problem.position.map(|p| p.line),
            column: problem.position.map(|p| p.column),
            message: problem.message.clone(),
        })
        .collect()
}

fn unknown(facts: &Facts) -> Vec<String> {
    let mut unknown = Vec::new();
    if facts.images.is_none() {
        unknown.push("which images exist (no distribution asked)".to_owned());
    }
    if facts.instances.is_none() {
        unknown.push("which instances would update (no distribution asked)".to_owned());
    }
    if facts.known_bad.is_none() {
        let reason = if facts.distribution.is_some() {
            "this distribution does not report known-bad versions"
        } else {
            "no distribution asked"
        };
        unknown.push(format!("which versions are known to be bad ({reason})"));
    }
    unknown
}

/// Services declared only in BASE paired with services declared only in HEAD that have
/// the same settings, when the pair is unambiguous: HEAD name -> BASE name.
fn renames<'a>(old: &Side<'a>, new: &Side<'a>) -> BTreeMap<&'a ServiceName, &'a ServiceName> {
    let gone: Vec<(&ServiceName, &ServiceSettings)> = old
        .settings
        .iter()
        .filter(|(name, _)| !new.declared(name))
        .map(|(name, settings)| (*name, *settings))
        .collect();
    let came: Vec<(&ServiceName, &ServiceSettings)> = new
        .settings
        .iter()
        .filter(|(name, _)| !old.declared(name))
        .map(|(name, settings)| (*name, *settings))
        .collect();
    let mut pairs = BTreeMap::new();
    for (old_name, settings) in &gone {
        let matches: Vec<&ServiceName> = came
            .iter()
            .filter(|(_, other)| other == settings)
            .map(|(name, _)| *name)
            .collect();
        let [new_name] = matches[..] else { continue };
        let twins = gone.iter().filter(|(_, other)| other == settings).count();
        if twins == 1 {
            pairs.insert(new_name, *old_name);
        }
    }
    pairs
}

fn version_change<V: ToString + PartialEq>(
    old: Option<&V>,
    new: Option<&V>,
) -> Option<VersionChange> {
    (old != new).then(|| VersionChange {
        from: old.map(ToString::to_string),
        to: new.map(ToString::to_string),
    })
}

fn developer_image(facts: &Facts, service: &ServiceName, version: &DeveloperVersion) -> ImageNeed {
    let Some(images) = &facts.images else {
        return ImageNeed::Unknown;
    };
    if images
        .developer
        .contains(&(service.clone(), version.clone()))
    {
        ImageNeed::Present
    } else if facts
        .distribution
        .as_deref()
        .is_some_and(|own| own != version.distribution)
    {
        ImageNeed::Download
    } else {
        ImageNeed::Build
    }
}

fn client_image(facts: &Facts, service: &ServiceName, version: &ClientVersion) -> ImageNeed {
    match &facts.images {
        None => ImageNeed::Unknown,
        Some(images) if images.client.contains(&(service.clone(), version.clone())) => {
            ImageNeed::Present
        }
        Some(_) => ImageNeed::Build,
    }
}

fn by_service(instances: &[InstanceFact]) -> BTreeMap<&ServiceName, Vec<&InstanceFact>> {
    let mut map: BTreeMap<&ServiceName, Vec<&InstanceFact>> = BTreeMap::new();
    for instance in instances {
        map.entry(&instance.service).or_default().push(instance);
    }
    map
}

/// The instances not on `target`, by role (no role first), names sorted.
fn updates(instances: &[&InstanceFact], target: Option<&ClientVersion>) -> Vec<RoleUpdate> {
    let mut roles: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
    for instance in instances {
        if instance.version.as_ref() != target {
            roles
                .entry(instance.role.as_deref())
                .or_default()
                .push(instance.instance.clone());
        }
    }
    roles
        .into_iter()
        .map(|(role, mut instances)| {
            instances.sort();
            RoleUpdate {
                role: role.map(str::to_owned),
                instances,
            }
        })
        .collect()
}

fn consumers_of(state: &State, service: &ServiceName) -> Vec<String> {
    state
        .consumers
        .iter()
        .filter(|(_, consumer)| {
            state
                .profiles
                .get(&consumer.profile)
                .is_some_and(|services| services.contains(service))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

fn profile_changes(old: &Side<'_>, new: &Side<'_>) -> Vec<ProfileChange> {
    let names: BTreeSet<&str> = old
        .profiles
        .keys()
        .chain(new.profiles.keys())
        .copied()
        .collect();
    let none = BTreeSet::new();
    names
        .into_iter()
        .filter_map(|profile| {
            let before = old.profiles.get(profile).copied().unwrap_or(&none);
            let after = new.profiles.get(profile).copied().unwrap_or(&none);
            let added: Vec<String> = after.difference(before).map(ToString::to_string).collect();
            let removed: Vec<String> = before.difference(after).map(ToString::to_string).collect();
            (!added.is_empty() || !removed.is_empty()).then(|| ProfileChange {
                profile: profile.to_owned(),
                added,
                removed,
            })
        })
        .collect()
}
