//! GraphQL types shared by several parts of the schema.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, FixedOffset};
use vupdate_core::service::ServiceName;
use vupdate_state::Revision;

use crate::auth::Role;
use crate::http::ApiError;

/// What an account may do.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRole {
    /// Everything, accounts included.
    Administrator,
    /// Builds versions and edits desired versions.
    Developer,
    /// The builder program.
    Builder,
    /// An updater on a VM.
    Updater,
    /// Another distribution that receives this one's versions.
    DistributionConsumer,
}

impl From<Role> for AccountRole {
    fn from(role: Role) -> AccountRole {
        match role {
            Role::Administrator => AccountRole::Administrator,
            Role::Developer => AccountRole::Developer,
            Role::Builder => AccountRole::Builder,
            Role::Updater => AccountRole::Updater,
            Role::DistributionConsumer => AccountRole::DistributionConsumer,
        }
    }
}

impl From<AccountRole> for Role {
    fn from(role: AccountRole) -> Role {
        match role {
            AccountRole::Administrator => Role::Administrator,
            AccountRole::Developer => Role::Developer,
            AccountRole::Builder => Role::Builder,
            AccountRole::Updater => Role::Updater,
            AccountRole::DistributionConsumer => Role::DistributionConsumer,
        }
    }
}

/// A service and a version, as desired lists and version queries give them.
#[derive(SimpleObject, InputObject, Debug, Clone, PartialEq, Eq)]
#[graphql(input_name = "ServiceVersionInput")]
pub struct ServiceVersion {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
}

impl ServiceVersion {
    /// The pairs of a `service -> version` list, in service order.
    pub fn list<V: std::fmt::Display>(versions: &BTreeMap<ServiceName, V>) -> Vec<ServiceVersion> {
        versions
            .iter()
            .map(|(service, version)| ServiceVersion {
                service: service.to_string(),
                version: version.to_string(),
            })
            .collect()
    }
}

/// One change of a desired list: set `service` to `version`, or remove it when `version` is null.
#[derive(InputObject, Debug, Clone)]
pub struct ServiceVersionChange {
    /// The service.
    pub service: String,
    /// The new version; null removes the service from the list.
    pub version: Option<String>,
}

/// A name and a value (macro values, environment variables).
#[derive(SimpleObject, InputObject, Debug, Clone, PartialEq, Eq)]
#[graphql(input_name = "NameValueInput")]
pub struct NameValue {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

impl NameValue {
    /// The pairs of a map, in name order.
    pub fn list(map: &BTreeMap<String, String>) -> Vec<NameValue> {
        map.iter()
            .map(|(name, value)| NameValue {
                name: name.clone(),
                value: value.clone(),
            })
            .collect()
    }

    /// A map from pairs; a repeated name is an error naming `argument`.
    pub fn map(
        argument: &str,
        pairs: Vec<NameValue>,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            if map.insert(pair.name.clone(), pair.value).is_some() {
                return Err(ApiError::bad_request(format!(
                    "argument `{argument}`: `{}` is given twice",
                    pair.name
                )));
            }
        }
        Ok(map)
    }
}

/// Who made a commit.
#[derive(SimpleObject, Debug, Clone)]
pub struct CommitAuthor {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

/// One commit of the state repo.
#[derive(SimpleObject, Debug, Clone)]
pub struct StateRevision {
    /// The full commit id.
    pub id: String,
    /// Who authored it.
    pub author: CommitAuthor,
    /// When it was authored.
    pub time: DateTime<FixedOffset>,
    /// The first line of its message.
    pub summary: String,
    /// Its parents' ids.
    pub parents: Vec<String>,
    /// The branch that holds this commit for review, when `policy.yaml` sends the edit
    /// that made it to a branch `vupdate/edit/...` instead of the followed branch; null
    /// when the commit is on the followed branch.
    pub proposed_branch: Option<String>,
}

impl From<super::context::Edited> for StateRevision {
    fn from(edited: super::context::Edited) -> StateRevision {
        StateRevision {
            proposed_branch: edited.proposed_branch,
            ..edited.revision.into()
        }
    }
}

impl From<Revision> for StateRevision {
    fn from(revision: Revision) -> StateRevision {
        StateRevision {
            id: revision.id,
            author: CommitAuthor {
                name: revision.author.name,
                email: revision.author.email,
            },
            time: revision.time,
            summary: revision.summary,
            parents: revision.parents,
            proposed_branch: None,
        }
    }
}

/// Reads argument `name` as a `T`, or a `BAD_REQUEST` that names the argument and the value.
pub fn parse_arg<T>(name: &str, value: &str) -> Result<T, ApiError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|error| {
        ApiError::bad_request(format!(
            "argument `{name}`: `{value}` is not valid: {error}"
        ))
    })
}

/// Reads an optional list of service names (argument `name`).
pub fn parse_services(
    name: &str,
    services: Option<Vec<String>>,
) -> Result<Option<BTreeSet<ServiceName>>, ApiError> {
    services
        .map(|list| list.iter().map(|s| parse_arg(name, s)).collect())
        .transpose()
}

/// Keeps the entries of `versions` whose service is in `only` (all when `None`).
pub fn only<V: Clone>(
    versions: &BTreeMap<ServiceName, V>,
    only: Option<&BTreeSet<ServiceName>>,
) -> BTreeMap<ServiceName, V> {
    versions
        .iter()
        .filter(|(service, _)| only.is_none_or(|set| set.contains(*service)))
        .map(|(s, v)| (s.clone(), v.clone()))
        .collect()
}
