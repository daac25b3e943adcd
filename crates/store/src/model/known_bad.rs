//! Known-bad versions: a client version of a service that an updater rolled back (it
//! ended, or failed its health check, within its start window), with the instances that
//! rolled it back, the reason and the fault reports that are its evidence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// One known-bad version of one service in one distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownBadVersion {
    /// The distribution whose updaters rolled it back.
    pub distribution: String,
    /// The service.
    pub service: ServiceName,
    /// The client version.
    pub version: ClientVersion,
    /// Why the first instance rolled it back (its update error).
    pub reason: String,
    /// The instances that rolled it back, sorted.
    pub instances: Vec<String>,
    /// The fault reports of the version on those instances (the evidence), sorted.
    pub fault_ids: Vec<String>,
    /// When it was first recorded.
    pub recorded_at: DateTime<Utc>,
    /// The state repo commit that made the branch desire it, as it stood when it was
    /// marked; a later commit desiring it anew releases it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_by: Option<String>,
}

impl KnownBadVersion {
    /// Adds what `other` (the same version) saw: its instances, fault reports and, when
    /// none is known yet, the commit that desired it. Returns whether anything was new.
    pub fn merge(&mut self, other: &KnownBadVersion) -> bool {
        let before = (
            self.instances.len(),
            self.fault_ids.len(),
            self.desired_by.is_some(),
        );
        if self.desired_by.is_none() {
            self.desired_by.clone_from(&other.desired_by);
        }
        for instance in &other.instances {
            if let Err(at) = self.instances.binary_search(instance) {
                self.instances.insert(at, instance.clone());
            }
        }
        for id in &other.fault_ids {
            if let Err(at) = self.fault_ids.binary_search(id) {
                self.fault_ids.insert(at, id.clone());
            }
        }
        before
            != (
                self.instances.len(),
                self.fault_ids.len(),
                self.desired_by.is_some(),
            )
    }
}

pub(crate) static DISTRIBUTION: FieldDef =
    FieldDef::new("distribution", "distribution", FieldKind::Str);
pub(crate) static SERVICE: FieldDef = FieldDef::new("service", "service", FieldKind::Str);
pub(crate) static VERSION: FieldDef = FieldDef::new("version", "version", FieldKind::Str);

pub(crate) static KNOWN_BAD_VERSIONS: CollectionDef = CollectionDef {
    name: "known_bad_versions",
    fields: &[&DISTRIBUTION, &SERVICE, &VERSION],
    key: &[&DISTRIBUTION, &SERVICE, &VERSION],
    indexes: &[],
    present_only: &[],
    history: true,
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for KnownBadVersion {
    const DEF: &'static CollectionDef = &KNOWN_BAD_VERSIONS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.distribution),
            Val::str(self.service.as_str()),
            Val::str(self.version.to_string()),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.distribution.is_empty() {
            return Err("a known-bad version needs a distribution".to_owned());
        }
        Ok(())
    }
}
