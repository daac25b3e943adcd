//! `status { selfUpdate }`: the versions of vupdate's own programs: the distribution's
//! running, desired and last self-update (see [`crate::self_update`]), and the version
//! each updater reported for itself (the service `updater`).

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use vupdate_core::service::ServiceName;
use vupdate_store::model::states::StateQuery;

use super::context::ApiContext;
use super::result::ApiResult as _;
use crate::self_update::record::Outcome;

/// How the last self-update of the distribution ended.
#[derive(SimpleObject)]
pub struct SelfUpdateOutcome {
    /// The version it went to.
    version: String,
    /// The version it came from (null: a binary installed by hand).
    from_version: Option<String>,
    /// `SUCCEEDED`, `FETCH_FAILED`, `PROBE_FAILED`, `SWAP_FAILED` or `ROLLED_BACK`.
    outcome: String,
    /// What happened, or why it failed.
    message: String,
    /// When it ended.
    at: DateTime<Utc>,
}

impl From<Outcome> for SelfUpdateOutcome {
    fn from(outcome: Outcome) -> Self {
        SelfUpdateOutcome {
            version: outcome.version,
            from_version: outcome.from,
            outcome: serde_json::to_value(outcome.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            message: outcome.message,
            at: outcome.at,
        }
    }
}

/// An updater and the version it runs of itself.
#[derive(SimpleObject)]
pub struct UpdaterVersion {
    /// The instance.
    instance: String,
    /// The updater's version (null: installed by hand, not by self-update).
    version: Option<String>,
    /// Why its last self-update failed, if it did.
    update_error: Option<String>,
    /// When it last reported.
    time: DateTime<Utc>,
}

/// The versions of vupdate's own programs.
#[derive(SimpleObject)]
pub struct SelfUpdateStatus {
    /// The version number this distribution's program was built with.
    program_version: String,
    /// The client version of `distribution` whose binary runs (null: installed by hand).
    running_version: Option<String>,
    /// The desired client version of `distribution` (null: none; no self-update).
    desired_version: Option<String>,
    /// A version swapped in that has not confirmed it is healthy yet.
    pending_version: Option<String>,
    /// A version that failed, not tried again while it stays desired.
    refused_version: Option<String>,
    /// How the last self-update ended.
    last: Option<SelfUpdateOutcome>,
    /// Each updater that reported within the service-state expiration, with its version.
    updaters: Vec<UpdaterVersion>,
}

/// The self-update part of `status`, `desired` read from the state in force.
pub async fn self_update_status(
    context: &ApiContext,
    desired: Option<String>,
) -> async_graphql::Result<SelfUpdateStatus> {
    let record = context.self_update.record();
    let updater: ServiceName = "updater".parse().expect("a valid service name");
    let alive_since = context.states_alive_since();
    let updaters = context
        .store
        .service_states()
        .query(&StateQuery {
            distribution: Some(context.info.name.clone()),
            service: Some(updater),
            ..StateQuery::default()
        })
        .await
        .api()?
        .into_iter()
        .map(|stored| stored.record)
        .filter(|record| record.state.time >= alive_since)
        .map(|record| UpdaterVersion {
            instance: record.instance,
            version: record.state.version.map(|v| v.to_string()),
            update_error: record.state.update_error.map(|e| e.error),
            time: record.state.time,
        })
        .collect();
    Ok(SelfUpdateStatus {
        program_version: env!("CARGO_PKG_VERSION").to_owned(),
        running_version: record.running,
        desired_version: desired,
        pending_version: record.pending.map(|p| p.version),
        refused_version: record.refused,
        last: record.last.map(Into::into),
        updaters,
    })
}
