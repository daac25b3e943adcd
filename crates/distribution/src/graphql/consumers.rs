//! The provider's side of the mesh: what a consumer distribution receives (a query and a
//! subscription that tells it at once of a change), what it reports having installed,
//! its instances (its states are stored under its name), and `consumers.yaml` edited as
//! commits.

use std::collections::BTreeMap;

use async_graphql::{Context, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt as _};
use tokio_stream::wrappers::WatchStream;
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;
use vupdate_state::{Consumer, State, StateEdit};
use vupdate_store::model::states::StateQuery;

use super::context::{ApiContext, api, require};
use super::result::ApiResult as _;
use super::types::{ServiceVersion, StateRevision, parse_arg};
use crate::auth::{Principal, Role};
use crate::consumers::{Installed, ViewRefused, consumer_view};
use crate::http::ApiError;
use crate::watcher::InForce;

/// Who reads and edits consumers.
const PEOPLE: &[Role] = &[Role::Administrator, Role::Developer];
/// Who reads what a consumer receives: people, and the consumer itself.
pub(super) const PEOPLE_AND_CONSUMERS: &[Role] = &[
    Role::Administrator,
    Role::Developer,
    Role::DistributionConsumer,
];
/// Who edits consumers.yaml.
const ADMINS: &[Role] = &[Role::Administrator];

/// The versions a consumer receives from this distribution.
#[derive(SimpleObject, Clone, PartialEq, Eq)]
struct ConsumerVersions {
    /// This (the provider) distribution's name.
    distribution: String,
    /// The consumer.
    consumer: String,
    /// The state commit the list comes from (the provider's revision).
    revision: String,
    /// The consumer whose tested marks gate the list, if one does.
    test_consumer: Option<String>,
    /// Service -> developer version.
    versions: Vec<ServiceVersion>,
}

/// An instance of a consumer, as the consumer reported it.
#[derive(SimpleObject)]
struct ConsumerInstance {
    /// The instance.
    instance: String,
    /// The service as run (`name` or `name-role`).
    service: String,
    /// Its directory.
    directory: String,
    /// The client version it runs.
    version: Option<String>,
    /// Why its last update failed.
    update_error: Option<String>,
    /// When it last reported.
    time: DateTime<Utc>,
}

/// A consumer of `consumers.yaml`, with what it reported.
#[derive(SimpleObject)]
pub(super) struct ConsumerStatus {
    /// The consumer's distribution name (its account's name here).
    distribution: String,
    /// The profile it receives.
    profile: String,
    /// Its URL, when this distribution calls it.
    url: Option<String>,
    /// The consumer whose tested marks gate what it receives.
    test_consumer: Option<String>,
    /// Whether a consumer account of that name exists (it needs one to connect).
    has_account: bool,
    /// What it receives now.
    offered_versions: Vec<ServiceVersion>,
    /// The developer versions it reported having installed (`setInstalledDesiredVersions`).
    installed_versions: Vec<ServiceVersion>,
    /// When it reported them.
    installed_at: Option<DateTime<Utc>>,
    /// Its instances that reported within the service-state expiration, by service.
    instances: Vec<ConsumerInstance>,
}

/// The status of every consumer of `state`, for `consumers` and `status`.
pub(super) async fn consumer_statuses(
    context: &ApiContext,
    state: &State,
) -> Result<Vec<ConsumerStatus>, ApiError> {
    let alive_since = context.states_alive_since();
    let mut list = Vec::new();
    for (name, consumer) in &state.consumers {
        let has_account =
            context.auth.account(name).await.is_ok_and(|info| {
                matches!(info.details, crate::auth::AccountDetails::Consumer { .. })
            });
        let offered = consumer_view(state, name, None)
            .map(|(versions, _)| versions)
            .unwrap_or_default();
        let installed = context.consumers.installed(name).await?;
        let states = context
            .store
            .service_states()
            .query(&StateQuery {
                distribution: Some(name.clone()),
                ..StateQuery::default()
            })
            .await?;
        let instances = states
            .into_iter()
            .map(|stored| stored.record)
            .filter(|record| record.state.time >= alive_since)
            .map(|record| ConsumerInstance {
                instance: record.instance,
                service: record.service.to_string(),
                directory: record.directory,
                version: record.state.version.map(|v| v.to_string()),
                update_error: record.state.update_error.map(|e| e.error),
                time: record.state.time,
            })
            .collect();
        list.push(ConsumerStatus {
            distribution: name.clone(),
            profile: consumer.profile.clone(),
            url: consumer.url.clone(),
            test_consumer: consumer.test_consumer.clone(),
            has_account,
            offered_versions: ServiceVersion::list(&offered),
            installed_versions: installed
                .as_ref()
                .map(|i| ServiceVersion::list(&i.versions))
                .unwrap_or_default(),
            installed_at: installed.map(|i| i.time),
            instances,
        });
    }
    Ok(list)
}

/// The consumer a call is about: the calling consumer itself, or the one a person names.
/// Another consumer is `NOT_FOUND` to a consumer, as if it did not exist: one consumer
/// learns nothing of the others.
fn subject(principal: &Principal, consumer: Option<String>) -> Result<String, ApiError> {
    match (principal.role, consumer) {
        (Role::DistributionConsumer, None) => Ok(principal.account.clone()),
        (Role::DistributionConsumer, Some(other)) if other == principal.account => Ok(other),
        (Role::DistributionConsumer, Some(other)) => Err(ApiError::not_found(format!(
            "consumer `{}` sees only its own versions: leave `consumer` out (asked for `{other}`)",
            principal.account
        ))),
        (_, Some(consumer)) => Ok(consumer),
        (_, None) => Err(ApiError::bad_request(
            "argument `consumer`: name the consumer whose versions to show",
        )),
    }
}

/// What `consumer` receives at the state in force. A consumer missing from
/// `consumers.yaml` is `FORBIDDEN` to itself (`own`) and `NOT_FOUND` to a person naming it.
fn versions_of(
    name: &str,
    in_force: &InForce,
    consumer: &str,
    own: bool,
    test_consumer: Option<&str>,
) -> Result<ConsumerVersions, ApiError> {
    let (versions, tester) = consumer_view(&in_force.state, consumer, test_consumer).map_err(
        |refused| match refused {
            ViewRefused::NotAConsumer(_) if !own => ApiError::not_found(refused.to_string()),
            refused => refused.into(),
        },
    )?;
    Ok(ConsumerVersions {
        distribution: name.to_owned(),
        consumer: consumer.to_owned(),
        revision: in_force.revision.id.clone(),
        test_consumer: tester,
        versions: ServiceVersion::list(&versions),
    })
}

/// Reading what consumers receive and report.
#[derive(Default)]
pub struct ConsumersQuery;

#[Object]
impl ConsumersQuery {
    /// The developer versions a consumer receives now, with the provider's revision: a
    /// consumer distribution asks for its own (`consumer` left out), a person names one.
    /// `testConsumer` gates the list by another consumer's tested marks, unless
    /// `consumers.yaml` names one for the consumer already.
    async fn consumer_versions(
        &self,
        ctx: &Context<'_>,
        consumer: Option<String>,
        test_consumer: Option<String>,
    ) -> async_graphql::Result<ConsumerVersions> {
        let principal = require(ctx, PEOPLE_AND_CONSUMERS)?;
        let context = api(ctx);
        let consumer = subject(principal, consumer).api()?;
        let own = principal.role == Role::DistributionConsumer;
        let in_force = context.state_in_force().api()?;
        versions_of(
            &context.info.name,
            &in_force,
            &consumer,
            own,
            test_consumer.as_deref(),
        )
        .api()
    }

    /// The consumers of `consumers.yaml` with what they receive, what they reported having
    /// installed, and their instances.
    async fn consumers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ConsumerStatus>> {
        require(ctx, PEOPLE)?;
        let context = api(ctx);
        let in_force = context.state_in_force().api()?;
        consumer_statuses(context, &in_force.state).await.api()
    }
}

/// Reports of consumers, and `consumers.yaml` as commits.
#[derive(Default)]
pub struct ConsumersMutation;

#[Object]
impl ConsumersMutation {
    /// A consumer distribution reports the developer versions it installed (those its
    /// desired client versions are made from), replacing its last report; returns how many.
    async fn set_installed_desired_versions(
        &self,
        ctx: &Context<'_>,
        versions: Vec<ServiceVersion>,
    ) -> async_graphql::Result<usize> {
        let principal = require(ctx, &[Role::DistributionConsumer])?;
        let context = api(ctx);
        let mut list: BTreeMap<ServiceName, DeveloperVersion> = BTreeMap::new();
        for (index, entry) in versions.into_iter().enumerate() {
            let service: ServiceName =
                parse_arg(&format!("versions[{index}].service"), &entry.service).api()?;
            let version: DeveloperVersion =
                parse_arg(&format!("versions[{index}].version"), &entry.version).api()?;
            list.insert(service, version);
        }
        let count = list.len();
        let installed = Installed {
            versions: list,
            time: context.store.now(),
        };
        context
            .consumers
            .set_installed(&principal.account, &installed)
            .await
            .api()?;
        Ok(count)
    }

    /// Sets a consumer of `consumers.yaml` (created when new) as one commit on top of
    /// `expectedRevision`. Its access is a consumer account of the same name
    /// (`addConsumerAccount`, then `issueAccessToken`).
    #[allow(clippy::too_many_arguments)]
    async fn set_consumer(
        &self,
        ctx: &Context<'_>,
        consumer: String,
        profile: String,
        url: Option<String>,
        test_consumer: Option<String>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, ADMINS)?;
        let edit = StateEdit::SetConsumer {
            name: consumer,
            consumer: Consumer {
                profile,
                url: url.filter(|u| !u.is_empty()),
                test_consumer: test_consumer.filter(|t| !t.is_empty()),
            },
        };
        let revision = api(ctx)
            .commit_edit(principal, edit, expected_revision, comment)
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Removes a consumer of `consumers.yaml` as one commit (its account stays until
    /// `removeAccount`; without an entry it receives nothing).
    async fn remove_consumer(
        &self,
        ctx: &Context<'_>,
        consumer: String,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, ADMINS)?;
        let revision = api(ctx)
            .commit_edit(
                principal,
                StateEdit::RemoveConsumer(consumer),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }
}

/// The live feed of a consumer's versions.
#[derive(Default)]
pub struct ConsumersSubscription;

#[Subscription]
impl ConsumersSubscription {
    /// What `consumerVersions` gives, at once and then each time the list changes (a new
    /// revision that leaves it as it was is not sent). Ends with an error when the
    /// consumer no longer receives anything (removed from `consumers.yaml`).
    async fn consumer_versions_changed(
        &self,
        ctx: &Context<'_>,
        consumer: Option<String>,
        test_consumer: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ConsumerVersions>>> {
        let principal = require(ctx, PEOPLE_AND_CONSUMERS)?;
        let context = api(ctx);
        let consumer = subject(principal, consumer).api()?;
        let own = principal.role == Role::DistributionConsumer;
        let name = context.info.name.clone();
        let mut last: Option<Vec<ServiceVersion>> = None;
        Ok(WatchStream::new(context.in_force.clone())
            .filter_map(move |in_force| {
                let emit = in_force.and_then(|in_force| {
                    match versions_of(&name, &in_force, &consumer, own, test_consumer.as_deref()) {
                        Ok(view) if last.as_ref() == Some(&view.versions) => None,
                        Ok(view) => {
                            last = Some(view.versions.clone());
                            Some(Ok(view))
                        }
                        Err(error) => Some(Err(error.into_graphql())),
                    }
                });
                futures::future::ready(emit)
            })
            .scan(false, |ended, item| {
                // An error is the last item: the feed ends after it.
                if *ended {
                    return futures::future::ready(None);
                }
                *ended = item.is_err();
                futures::future::ready(Some(item))
            }))
    }
}
