//! What each consumer distribution last reported having installed
//! (`setInstalledDesiredVersions`), one document per consumer, replaced at each report.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// A consumer's last report of what it installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerInstalled {
    /// The consumer (its account's name).
    pub consumer: String,
    /// Service -> the developer version the consumer's desired client version is made from.
    pub versions: BTreeMap<ServiceName, DeveloperVersion>,
    /// When it reported them.
    pub time: DateTime<Utc>,
}

pub(crate) static CONSUMER: FieldDef = FieldDef::new("consumer", "consumer", FieldKind::Str);

pub(crate) static CONSUMER_INSTALLED: CollectionDef = CollectionDef {
    name: "consumer_installed",
    fields: &[&CONSUMER],
    key: &[&CONSUMER],
    indexes: &[],
    present_only: &[],
    history: false,
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for ConsumerInstalled {
    const DEF: &'static CollectionDef = &CONSUMER_INSTALLED;

    fn fields(&self) -> Vec<Val> {
        vec![Val::str(&self.consumer)]
    }

    fn validate(&self) -> Result<(), String> {
        if self.consumer.is_empty() {
            return Err("an installed-versions report needs its consumer".to_owned());
        }
        Ok(())
    }
}
