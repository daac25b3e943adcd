//! Rollouts by waves in `status`: each service's newest rollout, its waves and how far
//! each has got, counted from the state reports now.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use super::context::ApiContext;
use super::result::ApiResult as _;

/// A service's newest rollout by waves.
#[derive(SimpleObject, Debug, Clone)]
pub struct RolloutStatus {
    /// The service.
    service: String,
    /// The version the instances of waves not yet reached keep.
    from_version: String,
    /// The version rolled out.
    to_version: String,
    /// The state commit that desired it.
    commit: String,
    /// `rolling`, `halted` (a wave failed beyond its maxFailures: later waves never get
    /// it) or `done`.
    state: String,
    /// The name of the last wave reached.
    current_wave: String,
    /// Why it halted, if it did.
    halted_because: Option<String>,
    /// When it started.
    started_at: DateTime<Utc>,
    /// The waves, in order.
    waves: Vec<WaveStatus>,
}

/// One wave of a rollout.
#[derive(SimpleObject, Debug, Clone)]
pub struct WaveStatus {
    /// The wave's name in rollout.yaml.
    name: String,
    /// Its instances reporting the service now.
    instances: usize,
    /// Of them, those running the new version.
    updated: usize,
    /// Of them, those that have run it for the wave's healthyFor.
    healthy: usize,
    /// Those that rolled it back.
    failed: usize,
    /// When it got the new version (null: not yet).
    reached_at: Option<DateTime<Utc>>,
    /// When it handed it to the next wave (null: not yet).
    promoted_at: Option<DateTime<Utc>>,
}

/// Every rollout of this distribution, by service.
pub(super) async fn rollouts(context: &ApiContext) -> async_graphql::Result<Vec<RolloutStatus>> {
    let views = context
        .rollouts
        .view()
        .await
        .map_err(crate::http::ApiError::from)
        .api()?;
    Ok(views
        .into_iter()
        .map(|(record, waves)| RolloutStatus {
            service: record.service.to_string(),
            from_version: record.from_version.to_string(),
            to_version: record.to_version.to_string(),
            commit: record.commit,
            state: record.state.as_str().to_owned(),
            current_wave: record
                .waves
                .get(record.current_wave)
                .map(|wave| wave.name.clone())
                .unwrap_or_default(),
            halted_because: record.halted_because,
            started_at: record.started_at,
            waves: waves
                .into_iter()
                .map(|wave| WaveStatus {
                    name: wave.times.name,
                    instances: wave.count.instances,
                    updated: wave.count.updated,
                    healthy: wave.count.healthy,
                    failed: wave.count.failed,
                    reached_at: wave.times.reached_at,
                    promoted_at: wave.times.promoted_at,
                })
                .collect(),
        })
        .collect())
}
