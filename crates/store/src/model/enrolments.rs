//! Enrolment tokens, as the store keeps them: each token's hash (never the secret) and
//! one document per use spent, keyed by the token and the use's slot. Spending takes the
//! next free slot with an insert, so two replicas spending a token's last use at once
//! cannot both succeed: the second insert finds the slot's key taken.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// One issued enrolment token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentToken {
    /// A short id (the first 12 hex digits of the hash), for lists, logs and revocation.
    pub id: String,
    /// The SHA-256 of the token, hex.
    pub hash: String,
    /// The services a VM enrolled with it may run (`name` or `name-role`).
    pub services: Vec<String>,
    /// Who issued it.
    pub issued_by: String,
    /// When.
    pub issued_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// How many enrolments it allows.
    pub uses: u32,
}

/// One use of a token: the instance it enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentUse {
    /// The hash of the token spent.
    pub token: String,
    /// Which of the token's uses it is, from 0.
    pub slot: u32,
    /// The instance enrolled.
    pub instance: String,
    /// When.
    pub time: DateTime<Utc>,
}

pub(crate) static HASH: FieldDef = FieldDef::new("hash", "hash", FieldKind::Str);
pub(crate) static ID: FieldDef = FieldDef::new("id", "id", FieldKind::Str);
pub(crate) static EXPIRES_AT: FieldDef = FieldDef::new("expiresAt", "expires_at", FieldKind::Time);

pub(crate) static ENROLMENT_TOKENS: CollectionDef = CollectionDef {
    name: "enrolment_tokens",
    fields: &[&HASH, &ID, &EXPIRES_AT],
    key: &[&HASH],
    indexes: &[&[&ID]],
    present_only: &[],
    history: false,
    logs_db: false,
    text: None,
    newest: None,
};

pub(crate) static TOKEN: FieldDef = FieldDef::new("token", "token", FieldKind::Str);
/// The slot as text (zero-padded, so it sorts), stored beside the record: both backends
/// key and compare text.
pub(crate) static SLOT_KEY: FieldDef = FieldDef::derived("slotKey", "slot_key", FieldKind::Str);

pub(crate) static ENROLMENT_USES: CollectionDef = CollectionDef {
    name: "enrolment_uses",
    fields: &[&TOKEN, &SLOT_KEY],
    key: &[&TOKEN, &SLOT_KEY],
    indexes: &[],
    present_only: &[],
    history: false,
    logs_db: false,
    text: None,
    newest: None,
};

impl Record for EnrolmentToken {
    const DEF: &'static CollectionDef = &ENROLMENT_TOKENS;

    fn fields(&self) -> Vec<Val> {
        vec![
            Val::str(&self.hash),
            Val::str(&self.id),
            Val::time(self.expires_at),
        ]
    }

    fn validate(&self) -> Result<(), String> {
        if self.hash.is_empty() || self.id.is_empty() {
            return Err("an enrolment token needs its hash and id".to_owned());
        }
        Ok(())
    }
}

impl EnrolmentUse {
    /// The text [`SLOT_KEY`] holds for `slot`.
    pub(crate) fn slot_key(slot: u32) -> String {
        format!("{slot:010}")
    }
}

impl Record for EnrolmentUse {
    const DEF: &'static CollectionDef = &ENROLMENT_USES;

    fn fields(&self) -> Vec<Val> {
        vec![Val::str(&self.token), Val::str(Self::slot_key(self.slot))]
    }

    fn validate(&self) -> Result<(), String> {
        if self.token.is_empty() || self.instance.is_empty() {
            return Err("an enrolment use needs its token and instance".to_owned());
        }
        Ok(())
    }
}
