//! Named secrets, sealed: the store holds each value only encrypted by the distribution
//! (which alone has the key), so a copy of the store or a dump of its database reveals
//! names and times, never values.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// One secret as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecret {
    /// The secret's name.
    pub name: String,
    /// When it was set.
    pub set_at: DateTime<Utc>,
    /// The value as the distribution sealed it (its own encoding; opaque here).
    pub sealed: String,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("name", &self.name)
            .field("set_at", &self.set_at)
            .finish_non_exhaustive()
    }
}

pub(crate) static NAME: FieldDef = FieldDef::new("name", "name", FieldKind::Str);

pub(crate) static SECRETS: CollectionDef = CollectionDef {
    name: "secrets",
    fields: &[&NAME],
    key: &[&NAME],
    indexes: &[],
    present_only: &[],
    history: false,
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for SealedSecret {
    const DEF: &'static CollectionDef = &SECRETS;

    fn fields(&self) -> Vec<Val> {
        vec![Val::str(&self.name)]
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.sealed.is_empty() {
            return Err("a secret needs its name and sealed value".to_owned());
        }
        Ok(())
    }
}
