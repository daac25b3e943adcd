//! Upgrade marks: how far a rewrite of records written by an older build has got in a
//! collection (the last `_sequence` it looked at), so each record is rewritten once and a
//! later start only looks at what was stored since.

use serde::{Deserialize, Serialize};

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// One rewrite's progress in one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UpgradeMark {
    /// `<rewrite>:<collection>`, e.g. `roles:log_records`.
    pub name: String,
    /// The last `_sequence` of the collection the rewrite looked at.
    pub sequence: i64,
}

pub(crate) static NAME: FieldDef = FieldDef::new("name", "name", FieldKind::Str);

pub(crate) static UPGRADE_MARKS: CollectionDef = CollectionDef {
    name: "upgrade_marks",
    fields: &[&NAME],
    key: &[&NAME],
    indexes: &[],
    history: false,
    present_only: &[],
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for UpgradeMark {
    const DEF: &'static CollectionDef = &UPGRADE_MARKS;

    fn fields(&self) -> Vec<Val> {
        vec![Val::str(&self.name)]
    }
}
