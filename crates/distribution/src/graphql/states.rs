//! Service states: updaters report the state of every service instance they run (every
//! 10 s and on a change); people and the status query read them.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject};
use vupdate_core::paths::clean_directory;
use vupdate_store::model::states::{ServiceStateRecord, StateQuery};

use super::context::{api, require};
use super::install::check_reported_instance;
use super::records::{InstanceState, Label, StateInput};
use super::result::ApiResult as _;
use super::types::parse_arg;
use crate::auth::Role;
use crate::http::ApiError;
use crate::roles::{read_instance, split_in_force};

/// The most states one report may carry.
const MAX_REPORT: usize = 10_000;

/// The state of one service instance as an updater reports it.
#[derive(InputObject)]
struct ServiceStateInput {
    /// The instance (VM) id.
    instance: String,
    /// The service, without its role.
    service: String,
    /// The role the service runs in, or null for none. Left out (as updaters before
    /// roles had their own field did), `service` is read as `name-role` by the dash rule
    /// against the services the state in force knows.
    role: MaybeUndefined<String>,
    /// The service's directory on the instance.
    directory: String,
    /// The state.
    state: StateInput,
    /// The state commit whose desired client versions this updater has fully applied
    /// (all its services on them), or the last one it fully applied; left out: unknown.
    state_commit: Option<String>,
    /// The instance's labels (`labels` in its `updater.yaml`), which rollout waves select
    /// instances by; left out: none.
    labels: Option<Vec<Label>>,
}

/// The state of one service instance.
#[derive(SimpleObject)]
struct ServiceStateInfo {
    /// The distribution the instance belongs to (this one, or a consumer).
    distribution: String,
    /// The instance.
    instance: String,
    /// The service, without its role.
    service: String,
    /// The role it runs in, if any.
    role: Option<String>,
    /// Its directory.
    directory: String,
    /// The state.
    state: InstanceState,
    /// The state commit the instance's updater last fully applied (null: unknown).
    state_commit: Option<String>,
    /// The instance's labels, by name.
    labels: Vec<Label>,
}

/// Reading states.
#[derive(Default)]
pub struct StatesQuery;

#[Object]
impl StatesQuery {
    /// Reported states, by distribution, service, role, instance and directory; `service`
    /// alone matches the service in every role.
    #[allow(clippy::too_many_arguments)]
    async fn service_states(
        &self,
        ctx: &Context<'_>,
        distribution: Option<String>,
        service: Option<String>,
        role: Option<String>,
        instance: Option<String>,
        directory: Option<String>,
    ) -> async_graphql::Result<Vec<ServiceStateInfo>> {
        require(ctx, &[Role::Administrator, Role::Developer, Role::Updater])?;
        let query = StateQuery {
            distribution,
            service: service
                .map(|s| parse_arg("service", &s))
                .transpose()
                .api()?,
            role: role.map(|r| parse_arg("role", &r)).transpose().api()?,
            instance,
            directory,
            after_sequence: None,
        };
        let found = api(ctx).store.service_states().query(&query).await.api()?;
        Ok(found
            .into_iter()
            .map(|stored| {
                let r = stored.record;
                ServiceStateInfo {
                    distribution: r.distribution,
                    instance: r.instance,
                    service: r.service.to_string(),
                    role: r.role.map(|role| role.to_string()),
                    directory: r.directory,
                    state: r.state.into(),
                    state_commit: r.state_commit,
                    labels: Label::list(&r.labels),
                }
            })
            .collect())
    }
}

/// Reporting states.
#[derive(Default)]
pub struct StatesMutation;

#[Object]
impl StatesMutation {
    /// Stores a report of states (all or nothing; reports arriving together share a
    /// transaction), replacing the earlier state of each
    /// instance; returns how many were stored. An updater's states belong to this
    /// distribution, a consumer's to the consumer.
    async fn set_service_states(
        &self,
        ctx: &Context<'_>,
        states: Vec<ServiceStateInput>,
    ) -> async_graphql::Result<usize> {
        let principal = require(
            ctx,
            &[
                Role::Administrator,
                Role::Updater,
                Role::DistributionConsumer,
            ],
        )?;
        let context = api(ctx);
        if states.len() > MAX_REPORT {
            return Err(ApiError::bad_request(format!(
                "argument `states`: {} states in one report, more than the {MAX_REPORT} allowed",
                states.len()
            )))
            .api();
        }
        let distribution = match principal.role {
            Role::DistributionConsumer => principal.account.clone(),
            _ => context.info.name.clone(),
        };
        let in_force = context.in_force.borrow().clone();
        let records = states
            .into_iter()
            .enumerate()
            .map(|(index, input)| {
                check_reported_instance(
                    principal,
                    &format!("states[{index}].instance"),
                    &input.instance,
                )?;
                let (service, role) = read_instance(
                    &format!("states[{index}].service"),
                    &input.service,
                    input.role,
                    |name| split_in_force(&in_force, name),
                )?;
                Ok(ServiceStateRecord {
                    distribution: distribution.clone(),
                    instance: input.instance,
                    service,
                    role,
                    directory: clean_directory(&input.directory),
                    state: input.state.into_state(&format!("states[{index}].state"))?,
                    state_commit: input.state_commit,
                    labels: Label::map(
                        &format!("states[{index}].labels"),
                        input.labels.unwrap_or_default(),
                    )?,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .api()?;
        let count = records.len();
        // Rollbacks of a version under a rollout are the rollout's to count.
        let rollbacks = context.rollouts.reported(&records);
        context.state_reports.set(records).await.api()?;
        if !rollbacks.is_empty() {
            context.known_bad.record(&rollbacks).await.api()?;
        }
        Ok(count)
    }
}
