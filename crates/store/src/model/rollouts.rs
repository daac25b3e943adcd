//! Rollouts by waves: a service's desired client version changing from one version to
//! another, handed to the waves of `rollout.yaml` one after the other. One record per
//! service (the newest rollout replaces the one before), so a restarted distribution
//! resumes where the rollout was.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RolloutState {
    /// Waves are getting the new version one after the other.
    Rolling,
    /// A wave failed beyond its `maxFailures`: later waves never get the new version.
    Halted,
    /// Every wave got it.
    Done,
}

impl RolloutState {
    /// The state as the API spells it (`rolling`, `halted`, `done`).
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Rolling => "rolling",
            RolloutState::Halted => "halted",
            RolloutState::Done => "done",
        }
    }
}

/// One wave of a rollout: when it got the new version and when it handed it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaveTimes {
    /// The wave's name in `rollout.yaml`.
    pub name: String,
    /// When its instances got the new version (`None`: not yet).
    pub reached_at: Option<DateTime<Utc>>,
    /// When it had run it healthy for its `healthyFor` and the next wave got it.
    pub promoted_at: Option<DateTime<Utc>>,
}

/// The rollout of one service's new desired client version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRecord {
    /// The distribution whose updaters get it.
    pub distribution: String,
    /// The service.
    pub service: ServiceName,
    /// The version instances of waves not yet reached keep.
    pub from_version: ClientVersion,
    /// The version rolled out.
    pub to_version: ClientVersion,
    /// The state commit that desired it.
    pub commit: String,
    /// Where it is.
    pub state: RolloutState,
    /// The index of the last wave reached.
    pub current_wave: usize,
    /// The waves, in order.
    pub waves: Vec<WaveTimes>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Why it halted (the wave and its failures), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halted_because: Option<String>,
}

pub(crate) static DISTRIBUTION: FieldDef =
    FieldDef::new("distribution", "distribution", FieldKind::Str);
pub(crate) static SERVICE: FieldDef = FieldDef::new("service", "service", FieldKind::Str);

pub(crate) static ROLLOUTS: CollectionDef = CollectionDef {
    name: "rollouts",
    fields: &[&DISTRIBUTION, &SERVICE],
    key: &[&DISTRIBUTION, &SERVICE],
    indexes: &[],
    present_only: &[],
    history: true,
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for RolloutRecord {
    const DEF: &'static CollectionDef = &ROLLOUTS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.distribution),
            Val::str(self.service.as_str()),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.distribution.is_empty() {
            return Err("a rollout needs a distribution".to_owned());
        }
        if self.waves.is_empty() || self.current_wave >= self.waves.len() {
            return Err(format!(
                "rollout of `{}`: wave {} of {} waves",
                self.service,
                self.current_wave,
                self.waves.len()
            ));
        }
        Ok(())
    }
}
