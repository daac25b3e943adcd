//! The records the store keeps, one module per collection, and the [`Stored`] wrapper that
//! carries a record's history fields.
//!
//! Records are plain serde structs in the original's camelCase field names. Each module
//! also holds its query struct (every filter optional) and, privately, the collection's
//! definition: the fields queries can use and the indexes that serve them.

use chrono::{DateTime, Utc};

pub mod accounts;
pub mod builds;
pub mod consumers;
pub mod enrolments;
pub mod faults;
pub mod known_bad;
pub mod logs;
pub mod rollouts;
pub mod secrets;
pub mod states;
pub mod tasks;
pub(crate) mod upgrades;
pub mod versions;

/// A record as stored: its history fields and the record itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    /// `_sequence`: unique and increasing per collection, across restarts and processes;
    /// every write of a document (insert, replace, restore) gives it a new one.
    pub sequence: i64,
    /// `_modifyTime`: when this version was written.
    pub modify_time: DateTime<Utc>,
    /// `_archiveTime`: when this version was replaced or deleted; `None` for the current one.
    pub archive_time: Option<DateTime<Utc>>,
    /// The record.
    pub record: T,
}
