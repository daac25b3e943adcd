//! Rollout waves (`waves:` in `rollout.yaml`) and the pure decisions made with them: which
//! wave an instance is in, whether a wave may hand the new version to the next one, and
//! which client version an instance gets while a rollout is under way.
//!
//! The distribution (`crates/distribution/src/rollouts.rs`) keeps each rollout's record in
//! the store and turns the updaters' state reports into [`Member`]s; every decision about
//! what an instance gets is made here, so it is the same for the query, the subscription
//! and `status`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

/// One wave of a rollout: which instances, how long they must stay healthy on the new
/// version, and how many of them may fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// The wave's name, unique among the waves of its list.
    pub name: String,
    /// Git wildmatch patterns of instance names; an instance matches when one does
    /// (empty: any name).
    pub instances: Vec<String>,
    /// Labels (from the updater's `updater.yaml`) the instance must all have, with these values.
    pub labels: BTreeMap<String, String>,
    /// How long every instance of the wave must run the new version, healthy, before the
    /// next wave gets it.
    pub healthy_for: Duration,
    /// How many of the wave's instances may fail before the rollout halts.
    pub max_failures: MaxFailures,
}

/// `maxFailures`: a share of the wave's instances or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxFailures {
    /// A percentage, 0 to 100, of the wave's instances (rounded down).
    Share(u8),
    /// A number of instances.
    Count(u32),
}

impl Default for MaxFailures {
    fn default() -> Self {
        MaxFailures::Count(0)
    }
}

impl MaxFailures {
    /// How many of `members` instances may fail.
    pub fn allowed(self, members: usize) -> usize {
        match self {
            MaxFailures::Share(percent) => members * usize::from(percent) / 100,
            MaxFailures::Count(count) => usize::try_from(count).unwrap_or(usize::MAX),
        }
    }
}

impl std::fmt::Display for MaxFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxFailures::Share(percent) => write!(f, "{percent}%"),
            MaxFailures::Count(count) => write!(f, "{count}"),
        }
    }
}

impl Wave {
    /// Whether the wave's selector picks `instance` with `labels`: its name matches one of
    /// the patterns (when there are any) and it has every label of the wave.
    pub fn selects(&self, instance: &str, labels: &BTreeMap<String, String>) -> bool {
        let named = self.instances.is_empty()
            || self
                .instances
                .iter()
                .any(|pattern| crate::model::branch_matches(pattern, instance));
        named
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }
}

/// The index of the wave `instance` is in: the first that selects it, else the last (an
/// instance no wave selects is rolled out to last). `waves` must not be empty.
pub fn wave_of(waves: &[Wave], instance: &str, labels: &BTreeMap<String, String>) -> usize {
    waves
        .iter()
        .position(|wave| wave.selects(instance, labels))
        .unwrap_or(waves.len().saturating_sub(1))
}

/// What the state reports say about one instance of a wave, for the rollout's new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The instance.
    pub instance: String,
    /// Since when it runs the new version (installed and started); `None`: it does not.
    pub running_since: Option<DateTime<Utc>>,
    /// Whether it rolled the new version back (a crash or a failed health check).
    pub failed: bool,
}

/// A wave's instances counted for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveCount {
    /// Instances in the wave that reported the service.
    pub instances: usize,
    /// Of them, those running the new version.
    pub updated: usize,
    /// Of them, those that have run it for the wave's `healthyFor`.
    pub healthy: usize,
    /// Those that rolled it back.
    pub failed: usize,
}

impl WaveCount {
    /// Counts `members` of `wave` at `now`.
    pub fn of(wave: &Wave, members: &[Member], now: DateTime<Utc>) -> WaveCount {
        let mut count = WaveCount {
            instances: members.len(),
            ..WaveCount::default()
        };
        for member in members {
            if member.failed {
                count.failed += 1;
            } else if let Some(since) = member.running_since {
                count.updated += 1;
                if now
                    .signed_duration_since(since)
                    .to_std()
                    .unwrap_or_default()
                    >= wave.healthy_for
                {
                    count.healthy += 1;
                }
            }
        }
        count
    }
}

/// What a wave's state reports mean for the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Some instance has not run the new version healthy for `healthyFor` yet.
    Wait,
    /// Every instance that did not fail has run it healthy for `healthyFor`, and the
    /// failures are within `maxFailures`: the next wave gets it.
    Promote,
    /// More instances failed than `maxFailures` allows: later waves never get it.
    Halt {
        /// How many failed.
        failed: usize,
        /// How many were allowed to.
        allowed: usize,
    },
}

/// Whether `wave`, whose instances report as `members`, halts, waits or hands the new
/// version to the next wave at `now`. A wave with no instance is passed at once.
pub fn step(wave: &Wave, members: &[Member], now: DateTime<Utc>) -> Step {
    let count = WaveCount::of(wave, members, now);
    let allowed = wave.max_failures.allowed(count.instances);
    if count.failed > allowed {
        Step::Halt {
            failed: count.failed,
            allowed,
        }
    } else if count.healthy + count.failed == count.instances {
        Step::Promote
    } else {
        Step::Wait
    }
}

/// Where a service's rollout is: the versions and the last wave that got the new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The version the instances of waves not yet reached keep.
    pub from: ClientVersion,
    /// The version being rolled out.
    pub to: ClientVersion,
    /// The index of the last wave reached (0: only the first has it).
    pub reached: usize,
}

impl Progress {
    /// The version an instance of wave `wave` gets.
    pub fn version_for(&self, wave: usize) -> &ClientVersion {
        if wave <= self.reached {
            &self.to
        } else {
            &self.from
        }
    }
}

/// `versions` (the desired client versions) as one instance gets them: for a service
/// with a rollout of the version desired, the version of the instance's wave
/// (`wave_of(service)`); every other service as desired.
pub fn desired_for(
    mut versions: BTreeMap<ServiceName, ClientVersion>,
    rollouts: &BTreeMap<ServiceName, Progress>,
    mut wave_of: impl FnMut(&ServiceName) -> usize,
) -> BTreeMap<ServiceName, ClientVersion> {
    for (service, version) in &mut versions {
        if let Some(progress) = rollouts.get(service)
            && progress.to == *version
        {
            *version = progress.version_for(wave_of(service)).clone();
        }
    }
    versions
}

#[cfg(test)]
mod tests;
