//! Provenance: which state commit each host (instance) is on, as its updater reports it
//! (`stateCommit`: the commit whose desired client versions it has fully applied), and
//! which hosts are not yet on a commit, where a host on a descendant counts as on it.

use std::collections::BTreeMap;

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_state::StateError;
use vupdate_store::model::states::ServiceStateRecord;

use super::context::{api, require};
use super::result::ApiResult as _;
use super::status::alive_states;
use crate::auth::Role;

/// The state commit one instance is on.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct InstanceCommit {
    /// The instance (VM).
    instance: String,
    /// The state commit its updater last fully applied; null when unknown (an updater
    /// that does not report it, or one that has applied none yet).
    state_commit: Option<String>,
    /// When it last reported.
    time: DateTime<Utc>,
}

/// Each instance's commit, from its newest state (one report carries one commit for
/// every service of the instance), in instance order.
fn by_instance(records: Vec<ServiceStateRecord>) -> Vec<InstanceCommit> {
    let mut newest: BTreeMap<String, InstanceCommit> = BTreeMap::new();
    for record in records {
        let time = record.state.time;
        let seen = newest.get(&record.instance).map(|commit| commit.time);
        if seen.is_none_or(|seen| time > seen) {
            newest.insert(
                record.instance.clone(),
                InstanceCommit {
                    instance: record.instance,
                    state_commit: record.state_commit,
                    time,
                },
            );
        }
    }
    newest.into_values().collect()
}

/// Whether `rev` is a full commit id (SHA-1 or SHA-256, in hex).
fn is_commit_id(rev: &str) -> bool {
    matches!(rev.len(), 40 | 64) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reading which commit each host is on.
#[derive(Default)]
pub struct ProvenanceQuery;

#[Object]
impl ProvenanceQuery {
    /// The state commit each instance that reports is on (its updater's `stateCommit`);
    /// with `notOn`, only the instances not yet on that commit: on neither it nor a
    /// descendant of it, or unknown. A full commit id this server has not fetched yet
    /// lists every instance.
    async fn instance_commits(
        &self,
        ctx: &Context<'_>,
        not_on: Option<String>,
    ) -> async_graphql::Result<Vec<InstanceCommit>> {
        require(ctx, &[Role::Administrator, Role::Developer])?;
        let context = api(ctx);
        let commits = by_instance(alive_states(context).await?);
        let Some(target) = not_on else {
            return Ok(commits);
        };
        let not_on = context
            .with_repo(move |repo| {
                let target = match repo.resolve(&target) {
                    Ok(revision) => revision.id,
                    // Hosts only get commits this clone has: none is on one it lacks yet
                    // (a full id just pushed, say).
                    Err(StateError::UnknownRevision { .. }) if is_commit_id(&target) => {
                        return Ok(commits);
                    }
                    Err(error) => return Err(error),
                };
                Ok(commits
                    .into_iter()
                    .filter(|host| {
                        // A commit this clone does not know is not known to be on the target.
                        let on = host.state_commit.as_deref().is_some_and(|commit| {
                            repo.is_ancestor(&target, commit).unwrap_or(false)
                        });
                        !on
                    })
                    .collect::<Vec<_>>())
            })
            .await
            .api()?;
        Ok(not_on)
    }
}

#[cfg(test)]
mod tests {
    use vupdate_store::model::states::ServiceState;

    use super::*;

    fn record(
        instance: &str,
        service: &str,
        seconds: i64,
        commit: Option<&str>,
    ) -> ServiceStateRecord {
        let state = ServiceState {
            time: DateTime::from_timestamp(1_767_225_600 + seconds, 0).expect("time"),
            install_time: None,
            start_time: None,
            version: None,
            update_to_version: None,
            update_error: None,
            failures_count: None,
            last_exit_code: None,
            failed_version: None,
        };
        ServiceStateRecord {
            distribution: "acme".to_owned(),
            instance: instance.to_owned(),
            service: service.parse().expect("service"),
            role: None,
            directory: format!("/srv/{service}"),
            state,
            state_commit: commit.map(str::to_owned),
            labels: Default::default(),
        }
    }

    #[test]
    fn each_instance_is_on_the_commit_of_its_newest_state() {
        let commits = by_instance(vec![
            record("vm-2", "api", 0, None),
            record("vm-1", "api", 0, Some("aaa")),
            record("vm-1", "web", 10, Some("bbb")),
        ]);
        let pairs: Vec<(&str, Option<&str>)> = commits
            .iter()
            .map(|c| (c.instance.as_str(), c.state_commit.as_deref()))
            .collect();
        assert_eq!(pairs, [("vm-1", Some("bbb")), ("vm-2", None)]);
    }
}
