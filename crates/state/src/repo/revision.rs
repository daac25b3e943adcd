//! [`Revision`], [`Author`] and [`HistoryEntry`]: what the API says about commits, in plain types.

use chrono::{DateTime, FixedOffset};

use crate::model::Desired;
use crate::problems::ValidationErrors;

/// A person who authors a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Author {
    /// The name, e.g. the account's display name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

impl Author {
    /// An author from a name and an e-mail address.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        Author {
            name: name.into(),
            email: email.into(),
        }
    }
}

/// One commit of the state repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The full commit id in hex.
    pub id: String,
    /// Who authored it.
    pub author: Author,
    /// When it was authored, with the author's UTC offset.
    pub time: DateTime<FixedOffset>,
    /// The first line of the message.
    pub summary: String,
    /// The parent commit ids in hex (none for a root commit, two or more for a merge).
    pub parents: Vec<String>,
}

/// A revision that changed the desired versions, with the lists as they were then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The commit.
    pub revision: Revision,
    /// Whether it changed `desired/developer.yaml`.
    pub developer_changed: bool,
    /// Whether it changed `desired/client.yaml`.
    pub client_changed: bool,
    /// Both desired lists at this revision, or why they do not parse.
    pub desired: Result<Desired, ValidationErrors>,
}
