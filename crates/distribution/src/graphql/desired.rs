//! Desired versions: read at any revision, their history, edits as commits on an expected
//! revision, reverts, "build a new version" as a commit, tested marks, and a subscription
//! that tells updaters at once when their desired client versions change.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject, Subscription};
use futures::Stream;
use futures::StreamExt as _;
use tokio_stream::wrappers::WatchStream;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{State, StateEdit};
use vupdate_store::model::versions::VersionQuery;

use super::context::{api, require};
use super::desired_list::{self, DesiredList};
use super::install::check_reported_instance;
use super::result::ApiResult as _;
use super::types::{
    ServiceVersion, ServiceVersionChange, StateRevision, only, parse_arg, parse_services,
};
use crate::auth::Role;
use crate::consumers::consumer_view;
use crate::http::ApiError;

/// Who reads desired developer versions.
const DEVELOPER_READERS: &[Role] = &[
    Role::Administrator,
    Role::Developer,
    Role::Builder,
    Role::DistributionConsumer,
];
/// Who reads desired client versions.
const CLIENT_READERS: &[Role] = &[
    Role::Administrator,
    Role::Developer,
    Role::Builder,
    Role::Updater,
];
/// Who changes desired state.
const EDITORS: &[Role] = &[Role::Administrator, Role::Developer];
/// The most history entries one query returns.
const MAX_HISTORY: usize = 500;

/// A revision that changed the desired versions, with both lists as they were then.
#[derive(SimpleObject)]
struct DesiredRevision {
    /// The commit.
    revision: StateRevision,
    /// Whether it changed the desired developer versions.
    developer_changed: bool,
    /// Whether it changed the desired client versions.
    client_changed: bool,
    /// The desired developer versions at this revision (empty when it does not parse).
    developer: Vec<ServiceVersion>,
    /// The desired client versions as written at this revision.
    client: Vec<ServiceVersion>,
    /// Why the lists do not parse at this revision (`file:line:column: message`), if so.
    problems: Vec<String>,
}

/// The developer versions a distribution marked as tested.
#[derive(SimpleObject)]
struct Tested {
    /// The distribution that tested them.
    distribution: String,
    /// The versions.
    versions: Vec<ServiceVersion>,
}

/// Queries of desired versions.
#[derive(Default)]
pub struct DesiredQuery;

#[Object]
impl DesiredQuery {
    /// The desired developer versions at `revision` (default: the state in force), or with
    /// `testConsumer` the versions that consumer marked as tested. A consumer distribution
    /// sees its profile's services, and the versions of its test consumer when
    /// `consumers.yaml` names one (or it asks with `testConsumer`).
    async fn developer_desired_versions(
        &self,
        ctx: &Context<'_>,
        revision: Option<String>,
        services: Option<Vec<String>>,
        test_consumer: Option<String>,
    ) -> async_graphql::Result<Vec<ServiceVersion>> {
        let principal = require(ctx, DEVELOPER_READERS)?;
        let services = parse_services("services", services).api()?;
        let state = api(ctx).state_at(revision).await.api()?;
        let versions = match (principal.role, test_consumer) {
            (Role::DistributionConsumer, tester) => {
                consumer_view(&state, &principal.account, tester.as_deref())
                    .map(|(versions, _)| versions)
                    .api()?
            }
            (_, Some(tester)) => state
                .tested
                .get(&tester)
                .map(|tested| tested.versions.clone())
                .unwrap_or_default(),
            (_, None) => state.desired.developer.clone(),
        };
        Ok(ServiceVersion::list(&only(&versions, services.as_ref())))
    }

    /// The client versions that should run at `revision` (default: the state in force):
    /// the desired client list plus every `self`-profile service it leaves out, at its
    /// desired developer version. For the state in force, a service whose version is
    /// known-bad (see `knownBadVersions`) is left out, so updaters keep what they run,
    /// and a service under a rollout by waves gives `instance` the version of its wave
    /// (an instance left out counts as one of the last wave).
    async fn client_desired_versions(
        &self,
        ctx: &Context<'_>,
        revision: Option<String>,
        services: Option<Vec<String>>,
        instance: Option<String>,
    ) -> async_graphql::Result<DesiredList> {
        let principal = require(ctx, CLIENT_READERS)?;
        if let Some(instance) = &instance {
            check_reported_instance(principal, "instance", instance).api()?;
        }
        let services = parse_services("services", services).api()?;
        let context = api(ctx);
        let list = match revision {
            None => {
                // As the rollouts have seen it, so no instance gets a version early.
                let in_force = context.rollouts.in_force().borrow().clone();
                let in_force = match in_force {
                    Some(in_force) => in_force,
                    None => context.state_in_force().api()?,
                };
                // Updaters do not start a known-bad version: they keep what they run.
                let shared = context
                    .desired_lists
                    .in_force(&in_force, &context.known_bad);
                context
                    .rollouts
                    .list_for(&in_force.state, instance.as_deref(), &shared)
            }
            Some(rev) => {
                let (id, state) = context
                    .with_repo(move |repo| {
                        let id = repo.resolve(&rev)?.id;
                        let state = repo.load(&id)?;
                        Ok((id, state))
                    })
                    .await
                    .api()?;
                desired_list::render(&state.effective_client_versions(), &id, None)
            }
        };
        Ok(desired_list::for_instance(&list, services.as_ref()))
    }

    /// The revisions that changed the desired versions, newest first (at most `limit`).
    async fn desired_versions_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: usize,
    ) -> async_graphql::Result<Vec<DesiredRevision>> {
        require(ctx, EDITORS)?;
        let limit = limit.min(MAX_HISTORY);
        let entries = api(ctx)
            .with_repo(move |repo| repo.history(limit))
            .await
            .api()?;
        Ok(entries
            .into_iter()
            .map(|entry| {
                let (developer, client, problems) = match entry.desired {
                    Ok(desired) => (
                        ServiceVersion::list(&desired.developer),
                        ServiceVersion::list(&desired.client),
                        Vec::new(),
                    ),
                    Err(errors) => (
                        Vec::new(),
                        Vec::new(),
                        errors.problems().iter().map(ToString::to_string).collect(),
                    ),
                };
                DesiredRevision {
                    revision: entry.revision.into(),
                    developer_changed: entry.developer_changed,
                    client_changed: entry.client_changed,
                    developer,
                    client,
                    problems,
                }
            })
            .collect())
    }

    /// Versions marked as tested (`tested.yaml`), by the distribution that tested them; a
    /// consumer sees only its own marks.
    async fn tested_versions(
        &self,
        ctx: &Context<'_>,
        revision: Option<String>,
    ) -> async_graphql::Result<Vec<Tested>> {
        let principal = require(
            ctx,
            &[
                Role::Administrator,
                Role::Developer,
                Role::DistributionConsumer,
            ],
        )?;
        let state = api(ctx).state_at(revision).await.api()?;
        Ok(state
            .tested
            .iter()
            .filter(|(distribution, _)| {
                principal.role != Role::DistributionConsumer || **distribution == principal.account
            })
            .map(|(distribution, tested)| Tested {
                distribution: distribution.clone(),
                versions: ServiceVersion::list(&tested.versions),
            })
            .collect())
    }
}

/// Edits of desired versions; each is one commit.
#[derive(Default)]
pub struct DesiredMutation;

#[Object]
impl DesiredMutation {
    /// Changes desired developer versions as one commit on top of `expectedRevision` (the
    /// revision the user saw; a branch that moved since is refused with `STALE`), with
    /// `comment` as the message. Each change sets a service's version, or removes the
    /// service when `version` is null; services left out keep theirs.
    async fn set_developer_desired_versions(
        &self,
        ctx: &Context<'_>,
        changes: Vec<ServiceVersionChange>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let context = api(ctx);
        let base = base_state(ctx, &expected_revision).await?;
        let list = apply_changes::<DeveloperVersion>(&base.desired.developer, changes).api()?;
        let revision = context
            .commit_edit(
                principal,
                StateEdit::SetDesiredDeveloper(list),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Changes desired client versions, as `setDeveloperDesiredVersions` does.
    async fn set_client_desired_versions(
        &self,
        ctx: &Context<'_>,
        changes: Vec<ServiceVersionChange>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let context = api(ctx);
        let base = base_state(ctx, &expected_revision).await?;
        let list = apply_changes::<ClientVersion>(&base.desired.client, changes).api()?;
        let revision = context
            .commit_edit(
                principal,
                StateEdit::SetDesiredClient(list),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Undoes `revision` with a new commit on top of `expectedRevision` (like `git
    /// revert`); `mainline` (from 1) picks the kept parent of a merge commit. `comment`
    /// defaults to `Revert "<summary>"`.
    async fn revert_revision(
        &self,
        ctx: &Context<'_>,
        revision: String,
        expected_revision: String,
        comment: Option<String>,
        mainline: Option<usize>,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let revert = api(ctx)
            .commit_revert(principal, revision, mainline, expected_revision, comment)
            .await
            .api()?;
        Ok(revert.into())
    }

    /// Asks for a new developer version of `service`: a commit that sets its desired
    /// developer version to `version` (default: the next build number of this
    /// distribution), which the reconcile loop then builds.
    async fn build_developer_version(
        &self,
        ctx: &Context<'_>,
        service: String,
        version: Option<String>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, EDITORS)?;
        let context = api(ctx);
        let service: ServiceName = parse_arg("service", &service).api()?;
        let base = base_state(ctx, &expected_revision).await?;
        let declared = base.services.get(&service).ok_or_else(|| {
            ApiError::not_found(format!(
                "service `{service}` is not declared in the state repo (add services/{service}.yaml)"
            ))
        });
        if declared.api()?.developer.is_none() {
            return Err(ApiError::invalid(
                "NOT_BUILDABLE",
                format!("service `{service}` has no `developer` part in services/{service}.yaml, so this distribution does not build it"),
            ))
            .api();
        }
        let version = match version {
            Some(text) => {
                let version: DeveloperVersion = parse_arg("version", &text).api()?;
                if version.distribution != context.info.name {
                    return Err(ApiError::bad_request(format!(
                        "argument `version`: `{version}` belongs to distribution `{}`; this distribution builds `{}-…` versions",
                        version.distribution, context.info.name
                    )))
                    .api();
                }
                version
            }
            None => next_developer_version(ctx, &base, &service).await?,
        };
        let mut list = base.desired.developer.clone();
        list.insert(service, version);
        let revision = context
            .commit_edit(
                principal,
                StateEdit::SetDesiredDeveloper(list),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Marks developer versions as tested by this distribution (or, for a consumer, by that
    /// consumer), as one commit on top of `expectedRevision`. A consumer distribution may
    /// leave `expectedRevision` out: its marks are its own entry, which no other edit
    /// changes, so they are committed on the branch tip.
    async fn set_tested_versions(
        &self,
        ctx: &Context<'_>,
        versions: Vec<ServiceVersionChange>,
        expected_revision: Option<String>,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(
            ctx,
            &[
                Role::Administrator,
                Role::Developer,
                Role::DistributionConsumer,
            ],
        )?;
        let context = api(ctx);
        let distribution = match principal.role {
            Role::DistributionConsumer => principal.account.clone(),
            _ => context.info.name.clone(),
        };
        let list = apply_changes::<DeveloperVersion>(&BTreeMap::new(), versions).api()?;
        let edit = StateEdit::SetTested {
            distribution,
            versions: list,
        };
        // A consumer's marks (on the tip) are a machine's record, not a change to review.
        let revision: StateRevision = match expected_revision {
            Some(expected) => context
                .commit_edit(principal, edit, expected, comment)
                .await
                .map(Into::into),
            None if principal.role == Role::DistributionConsumer => context
                .commit_edit_on_tip(principal, edit, comment)
                .await
                .map(Into::into),
            None => Err(ApiError::bad_request(
                "argument `expectedRevision`: give the revision you saw (only a consumer distribution may leave it out)",
            )),
        }
        .api()?;
        Ok(revision)
    }
}

/// Subscriptions to desired versions.
#[derive(Default)]
pub struct DesiredSubscription;

#[Subscription]
impl DesiredSubscription {
    /// The client versions that should run (as `clientDesiredVersions`): the list in force
    /// at once, then again each time it changes for the given services, and again
    /// (unchanged) each time an image is stored, so an updater waiting for the image of a
    /// version just made desired fetches it at once instead of at its next retry. A
    /// service whose version is known-bad is left out, from the moment it becomes so. When
    /// `revision` is asked for, a new state commit sends the list again even when it is
    /// unchanged, with the new revision. With `instance`, a service under a rollout by
    /// waves gives the version of that instance's wave, and the list is sent again when
    /// its wave is reached.
    async fn client_desired_versions_changed(
        &self,
        ctx: &Context<'_>,
        services: Option<Vec<String>>,
        instance: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = DesiredList>> {
        let principal = require(ctx, CLIENT_READERS)?;
        if let Some(instance) = &instance {
            check_reported_instance(principal, "instance", instance).api()?;
        }
        let services = parse_services("services", services).api()?;
        let context = api(ctx);
        let with_revision = ctx.look_ahead().field("revision").exists();
        // The state in force once its rollouts are started (so no instance gets a
        // version early); the feed ends when the state watcher does (the server stops),
        // whatever images do.
        let ended = WatchStream::new(context.in_force.clone())
            .filter_map(|_| futures::future::ready(None))
            .chain(futures::stream::once(async { Event::End }));
        let in_force = futures::stream::select(
            WatchStream::new(context.rollouts.in_force()).map(Event::State),
            ended,
        );
        // The first value is the count so far: only later ones are new images.
        let stored = WatchStream::from_changes(context.images.stored()).map(|_| Event::Image);
        // A version becoming known-bad (or released) changes the list too.
        let held = WatchStream::from_changes(context.known_bad.held()).map(|_| Event::Held);
        // So does a rollout reaching the next wave.
        let held = futures::stream::select(
            held,
            WatchStream::from_changes(context.rollouts.current()).map(|_| Event::Held),
        );
        // And this instance's labels becoming known or changing under a rollout (its wave).
        let relabeled =
            WatchStream::from_changes(context.rollouts.relabeled()).map(|_| Event::Relabeled);
        let held = futures::stream::select(held, relabeled);
        let (known_bad, rollouts) = (context.known_bad.clone(), context.rollouts.clone());
        let mut labels = instance
            .as_deref()
            .and_then(|instance| rollouts.labels_of(instance));
        let lists = context.desired_lists.clone();
        let mut latest: Option<crate::watcher::InForce> = None;
        let mut current: Option<DesiredList> = None;
        let same = move |a: &DesiredList, b: &DesiredList| {
            Arc::ptr_eq(a, b)
                || a.len() == b.len()
                    && a.iter().zip(b.iter()).all(|(a, b)| {
                        a.service == b.service
                            && a.version == b.version
                            && (!with_revision || a.revision == b.revision)
                    })
        };
        Ok(
            futures::stream::select(in_force, futures::stream::select(stored, held))
                .take_while(|event| futures::future::ready(!matches!(event, Event::End)))
                .filter_map(move |event| {
                    let event = match event {
                        Event::Relabeled => {
                            let now = instance
                                .as_deref()
                                .and_then(|instance| rollouts.labels_of(instance));
                            if now == labels {
                                // Another instance's labels: nothing new for this one.
                                return futures::future::ready(None);
                            }
                            labels = now;
                            Event::Held
                        }
                        event => event,
                    };
                    let emit = match event {
                        Event::State(_) | Event::Held => {
                            if let Event::State(in_force) = event {
                                latest = in_force;
                            }
                            // The shared list, then this subscriber's part of it.
                            let list = latest.as_ref().map(|in_force| {
                                desired_list::for_instance(
                                    &rollouts.list_for(
                                        &in_force.state,
                                        instance.as_deref(),
                                        &lists.in_force(in_force, &known_bad),
                                    ),
                                    services.as_ref(),
                                )
                            });
                            let changed = match (&list, &current) {
                                (Some(list), Some(current)) => !same(list, current),
                                (Some(_), None) => true,
                                (None, _) => false,
                            };
                            if changed {
                                current.clone_from(&list);
                            }
                            list.filter(|_| changed)
                        }
                        Event::Image => current.clone(),
                        Event::End | Event::Relabeled => None,
                    };
                    futures::future::ready(emit)
                }),
        )
    }
}

/// What wakes the desired-versions subscription.
enum Event {
    /// The state in force changed.
    State(Option<crate::watcher::InForce>),
    /// An image was stored.
    Image,
    /// The known-bad versions held back, or a rollout, changed.
    Held,
    /// Some instance's labels became known or changed while a rollout is under way.
    Relabeled,
    /// The state watcher stopped.
    End,
}

/// The state at the revision an edit is based on, so that a delta applies to what the
/// user saw.
async fn base_state(
    ctx: &Context<'_>,
    expected_revision: &str,
) -> async_graphql::Result<Arc<State>> {
    api(ctx)
        .state_for_edit(expected_revision.to_owned())
        .await
        .api()
}

/// `base` with `changes` applied; a service named twice or a bad version names the argument.
fn apply_changes<V>(
    base: &BTreeMap<ServiceName, V>,
    changes: Vec<ServiceVersionChange>,
) -> Result<BTreeMap<ServiceName, V>, ApiError>
where
    V: Clone + std::str::FromStr,
    V::Err: std::fmt::Display,
{
    let mut list = base.clone();
    let mut seen = std::collections::BTreeSet::new();
    for change in changes {
        let service: ServiceName = parse_arg("changes.service", &change.service)?;
        if !seen.insert(service.clone()) {
            return Err(ApiError::bad_request(format!(
                "argument `changes`: service `{service}` is changed twice"
            )));
        }
        match change.version {
            Some(text) => {
                list.insert(service, parse_arg("changes.version", &text)?);
            }
            None => {
                list.remove(&service);
            }
        }
    }
    Ok(list)
}

/// One past the newest build of this distribution among the desired version and the
/// stored version records of `service`.
async fn next_developer_version(
    ctx: &Context<'_>,
    state: &State,
    service: &ServiceName,
) -> async_graphql::Result<DeveloperVersion> {
    let context = api(ctx);
    let records = context
        .store
        .developer_versions()
        .query(&VersionQuery {
            service: Some(service.clone()),
            distribution: Some(context.info.name.clone()),
            version: None,
        })
        .await
        .api()?;
    let existing: Vec<DeveloperVersion> = records
        .into_iter()
        .map(|stored| stored.record.version)
        .chain(state.desired.developer.get(service).cloned())
        .collect();
    Ok(DeveloperVersion::next_for(&context.info.name, &existing))
}
