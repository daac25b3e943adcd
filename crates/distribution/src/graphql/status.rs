//! `status`: what a person needs to see at a glance: the state repo (commit in force, tip,
//! the last invalid commit with file and line, fetch errors), and per service its desired
//! versions, whether their images exist, builds under way or failed, and which instances
//! run the desired client version.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_core::reconcile::BuildKey;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_store::model::states::{ServiceStateRecord, StateQuery};

use super::context::{ApiContext, api, require};
use super::result::ApiResult as _;
use crate::auth::Role;
use crate::images::ImageVersion;
use crate::reconcile::BuildState;
use crate::watcher::InvalidCommit;

/// Where a service stands, most pressing first.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceSync {
    /// A build of a desired version failed; see its task log.
    BuildFailed,
    /// A desired version is being built (or waits for its turn).
    Building,
    /// Some instances do not run the desired client version yet.
    OutOfSync,
    /// Every image exists and every instance runs the desired client version.
    Synced,
}

/// A build the reconcile loop needs.
#[derive(SimpleObject)]
struct BuildStatus {
    /// `developer` or `client`.
    target: String,
    /// The version.
    version: String,
    /// `QUEUED`, `RUNNING` or `FAILED`.
    state: String,
    /// The build task, whose log says more.
    task: Option<String>,
    /// Why it failed.
    message: Option<String>,
}

/// One instance of a service, as it last reported.
#[derive(SimpleObject)]
struct InstanceStatus {
    /// The instance.
    instance: String,
    /// The service, without its role.
    service: String,
    /// The role it runs in, if any.
    role: Option<String>,
    /// Its directory.
    directory: String,
    /// The version it runs.
    version: Option<String>,
    /// The version it is installing.
    update_to_version: Option<String>,
    /// Why its last update failed.
    update_error: Option<String>,
    /// Whether it runs the desired client version.
    on_desired: bool,
    /// When it last reported.
    time: DateTime<Utc>,
    /// The state commit its updater last fully applied (null: unknown, an updater that
    /// does not report it).
    state_commit: Option<String>,
    /// Its labels (`labels` in its `updater.yaml`), by name.
    labels: Vec<super::records::Label>,
}

/// A service's instances in one role.
#[derive(SimpleObject)]
struct RoleInstances {
    /// The role (null: the instances that run in none).
    role: Option<String>,
    /// How many run the desired client version.
    instances_on_desired: usize,
    /// How many do not.
    instances_not_on_desired: usize,
}

/// One service's status.
#[derive(SimpleObject)]
struct ServiceStatus {
    /// The service.
    service: String,
    /// Where it stands.
    sync: ServiceSync,
    /// The desired developer version.
    desired_developer_version: Option<String>,
    /// The client version that should run.
    desired_client_version: Option<String>,
    /// Whether the desired developer version has an image (null: not built here).
    developer_image: Option<bool>,
    /// Whether the desired client version has an image.
    client_image: Option<bool>,
    /// Builds under way, queued or failed.
    builds: Vec<BuildStatus>,
    /// Instances that reported within the service-state expiration, in every role.
    instances: Vec<InstanceStatus>,
    /// How many of them run the desired client version.
    instances_on_desired: usize,
    /// How many do not.
    instances_not_on_desired: usize,
    /// The same counts by role, the instances in no role first; empty when none reports.
    roles: Vec<RoleInstances>,
    /// Why updaters do not start the desired client version: it is known-bad (they
    /// rolled it back; see `knownBadVersions`), so they keep the version they run.
    held_back: Option<String>,
}

/// A problem of an invalid commit.
#[derive(SimpleObject)]
struct CommitProblem {
    /// The file.
    file: String,
    /// The line (from 1), if known.
    line: Option<u64>,
    /// The column (from 1), if known.
    column: Option<u64>,
    /// What is wrong.
    message: String,
}

/// The newest invalid tip of the branch.
#[derive(SimpleObject)]
struct InvalidCommitInfo {
    /// The commit.
    commit: String,
    /// Every problem.
    problems: Vec<CommitProblem>,
}

impl From<InvalidCommit> for InvalidCommitInfo {
    fn from(invalid: InvalidCommit) -> Self {
        InvalidCommitInfo {
            commit: invalid.commit,
            problems: invalid
                .problems
                .into_iter()
                .map(|p| CommitProblem {
                    file: p.path,
                    line: p.position.map(|at| at.line),
                    column: p.position.map(|at| at.column),
                    message: p.message,
                })
                .collect(),
        }
    }
}

/// The state repo as the watcher sees it.
#[derive(SimpleObject)]
struct StateRepoStatus {
    /// The branch followed.
    branch: String,
    /// The commit in force (the newest valid one seen).
    commit: Option<String>,
    /// The branch tip last checked.
    tip: Option<String>,
    /// The newest invalid tip, while no valid commit came after it.
    last_error: Option<InvalidCommitInfo>,
    /// When the branch was last checked.
    last_fetch: Option<DateTime<Utc>>,
    /// Why the last check failed, if it did.
    fetch_error: Option<String>,
    /// Edits waiting for review: branches `vupdate/edit/...` that `policy.yaml` sent API
    /// and dashboard edits to, not merged into the followed branch yet.
    proposed_edits: Vec<ProposedEdit>,
}

/// An edit on a branch of its own, waiting for a person to merge it.
#[derive(SimpleObject)]
struct ProposedEdit {
    /// The branch, `vupdate/edit/<account>/<time>`.
    branch: String,
    /// Its commit.
    commit: super::types::StateRevision,
}

/// The whole status.
#[derive(SimpleObject)]
struct Status {
    /// The state repo.
    state_repo: StateRepoStatus,
    /// The commit the reconcile loop works on.
    reconciled_commit: Option<String>,
    /// Whether every service is synced.
    synced: bool,
    /// Per service.
    services: Vec<ServiceStatus>,
    /// The line that installs an updater on a VM, with placeholders for an enrolment
    /// token (mutation `issueEnrolmentToken` gives one, and the whole line) and services.
    updater_install_line: String,
    /// The pin of the public key this server's HTTPS presents (`sha256//BASE64`), for an
    /// updater's `pinnedPublicKey` and curl's `--pinnedpubkey`; null over plain HTTP.
    public_key_pin: Option<String>,
    /// The consumers of `consumers.yaml`: what they receive, report and run.
    consumers: Vec<super::consumers::ConsumerStatus>,
    /// The providers of `providers.yaml`: reachable, last sync, what they offer, a change
    /// waiting for review.
    providers: Vec<super::providers::ProviderInfo>,
    /// This distribution's program (running, desired and last self-update) and the
    /// updaters' versions.
    self_update: super::self_update::SelfUpdateStatus,
    /// Versions updaters rolled back (they ended, or failed their health check, within
    /// their start window), by service and version.
    known_bad_versions: Vec<super::known_bad::KnownBadVersion>,
    /// Each service's newest rollout by waves (`waves` in rollout.yaml) and its progress.
    rollouts: Vec<super::rollouts::RolloutStatus>,
}

/// The status query.
#[derive(Default)]
pub struct StatusQuery;

#[Object]
impl StatusQuery {
    /// The state repo, the reconcile loop and every desired service at a glance.
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<Status> {
        require(ctx, &[Role::Administrator, Role::Developer, Role::Builder])?;
        let context = api(ctx);
        let watch = context.watch_status.borrow().clone();
        let reconcile = context.reconcile.status();
        let state_repo = StateRepoStatus {
            branch: context.repo.branch().to_owned(),
            commit: watch.in_force,
            tip: watch.tip,
            last_error: watch.last_error.map(InvalidCommitInfo::from),
            last_fetch: watch.last_fetch,
            fetch_error: watch.fetch_error,
            proposed_edits: context
                .with_repo(|repo| repo.waiting_proposals(super::context::PROPOSAL_PREFIX))
                .await
                .api()?
                .into_iter()
                .map(|(branch, revision)| ProposedEdit {
                    branch,
                    commit: revision.into(),
                })
                .collect(),
        };
        let in_force = context.in_force.borrow().clone();
        let desired_self = in_force.as_ref().and_then(|in_force| {
            let service: ServiceName = crate::self_update::SERVICE
                .parse()
                .expect("a valid service name");
            in_force
                .state
                .effective_client_versions()
                .remove(&service)
                .map(|v| v.to_string())
        });
        let self_update = super::self_update::self_update_status(context, desired_self).await?;
        let (services, consumers, providers) = match in_force {
            Some(in_force) => {
                // Until the loop has looked at the commit in force, its missing images have
                // no build listed yet: they wait for one, they are not synced.
                let planned = reconcile.commit.as_deref() == Some(in_force.revision.id.as_str());
                (
                    services(context, &in_force.state, &reconcile.builds, planned).await?,
                    super::consumers::consumer_statuses(context, &in_force.state)
                        .await
                        .api()?,
                    super::providers::provider_infos(context, &in_force.state),
                )
            }
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let known_bad_versions = super::known_bad::recorded(context)
            .await?
            .into_iter()
            .map(super::known_bad::KnownBadVersion::from)
            .collect();
        Ok(Status {
            known_bad_versions,
            rollouts: super::rollouts::rollouts(context).await?,
            synced: reconcile.is_synced() && services.iter().all(|s| s.sync == ServiceSync::Synced),
            state_repo,
            reconciled_commit: reconcile.commit,
            services,
            updater_install_line: context
                .install
                .line("<ENROLMENT-TOKEN>", &["<SERVICES>".to_owned()]),
            public_key_pin: context.install.public_key_pin().map(|pin| pin.to_string()),
            consumers,
            providers,
            self_update,
        })
    }
}

async fn services(
    context: &ApiContext,
    state: &vupdate_state::State,
    builds: &BTreeMap<BuildKey, BuildState>,
    planned: bool,
) -> async_graphql::Result<Vec<ServiceStatus>> {
    let developer = &state.desired.developer;
    let client = state.effective_client_versions();
    let names: BTreeSet<&ServiceName> = developer.keys().chain(client.keys()).collect();
    let mut by_service: BTreeMap<ServiceName, Vec<ServiceStateRecord>> = BTreeMap::new();
    for record in alive_states(context).await? {
        // The role is a field of its own: a service's instances in every role count here.
        by_service
            .entry(record.service.clone())
            .or_default()
            .push(record);
    }
    let mut list = Vec::new();
    for service in names {
        let desired_dev = developer.get(service);
        let desired_client = client.get(service);
        let developer_image = match desired_dev {
            Some(v) if v.distribution == context.info.name => Some(
                context
                    .images
                    .info(service, &ImageVersion::Developer(v.clone()))
                    .await
                    .api()?
                    .is_some(),
            ),
            _ => None,
        };
        let client_image = match desired_client {
            Some(v) => Some(
                context
                    .images
                    .info(service, &ImageVersion::Client(v.clone()))
                    .await
                    .api()?
                    .is_some(),
            ),
            None => None,
        };
        let builds: Vec<BuildStatus> = builds
            .iter()
            .filter_map(|(key, build)| build_status(service, key, build))
            .collect();
        let instances: Vec<InstanceStatus> = by_service
            .remove(service)
            .unwrap_or_default()
            .into_iter()
            .map(|r| instance_status(r, desired_client))
            .collect();
        let on = instances.iter().filter(|i| i.on_desired).count();
        let sync = if builds.iter().any(|b| b.state == "FAILED") {
            ServiceSync::BuildFailed
        } else if !builds.is_empty()
            || (!planned && [developer_image, client_image].contains(&Some(false)))
        {
            ServiceSync::Building
        } else if on < instances.len() {
            ServiceSync::OutOfSync
        } else {
            ServiceSync::Synced
        };
        list.push(ServiceStatus {
            service: service.to_string(),
            sync,
            desired_developer_version: desired_dev.map(ToString::to_string),
            desired_client_version: desired_client.map(ToString::to_string),
            developer_image,
            client_image,
            builds,
            instances_not_on_desired: instances.len() - on,
            instances_on_desired: on,
            roles: by_role(&instances),
            instances,
            held_back: desired_client
                .filter(|version| context.known_bad.is_held(service, version))
                .map(|version| {
                    format!("{version} is known-bad: updaters keep the version they run")
                }),
        });
    }
    Ok(list)
}

/// The states of this distribution's own instances that reported within the
/// service-state expiration.
pub(super) async fn alive_states(
    context: &ApiContext,
) -> async_graphql::Result<Vec<ServiceStateRecord>> {
    let alive_since = context.states_alive_since();
    let states = context
        .store
        .service_states()
        .query(&StateQuery {
            distribution: Some(context.info.name.clone()),
            ..StateQuery::default()
        })
        .await
        .api()?;
    Ok(states
        .into_iter()
        .map(|stored| stored.record)
        .filter(|record| record.state.time >= alive_since)
        .collect())
}

/// The instances' counts by role (`None`, no role, sorts first).
fn by_role(instances: &[InstanceStatus]) -> Vec<RoleInstances> {
    let mut counts: BTreeMap<Option<&str>, (usize, usize)> = BTreeMap::new();
    for instance in instances {
        let (on, off) = counts.entry(instance.role.as_deref()).or_default();
        if instance.on_desired {
            *on += 1;
        } else {
            *off += 1;
        }
    }
    counts
        .into_iter()
        .map(|(role, (on, off))| RoleInstances {
            role: role.map(str::to_owned),
            instances_on_desired: on,
            instances_not_on_desired: off,
        })
        .collect()
}

fn build_status(service: &ServiceName, key: &BuildKey, build: &BuildState) -> Option<BuildStatus> {
    let (target, version) = match key {
        BuildKey::Developer(s, v) if s == service => ("developer", v.to_string()),
        BuildKey::Client(s, v) if s == service => ("client", v.to_string()),
        _ => return None,
    };
    let (state, task, message) = match build {
        BuildState::Queued => ("QUEUED", None, None),
        BuildState::Running { task } => ("RUNNING", Some(task.clone()), None),
        BuildState::Failed { task, message } => {
            ("FAILED", Some(task.clone()), Some(message.clone()))
        }
    };
    Some(BuildStatus {
        target: target.to_owned(),
        version,
        state: state.to_owned(),
        task,
        message,
    })
}

fn instance_status(record: ServiceStateRecord, desired: Option<&ClientVersion>) -> InstanceStatus {
    let state = record.state;
    InstanceStatus {
        on_desired: desired.is_some() && state.version.as_ref() == desired,
        instance: record.instance,
        service: record.service.to_string(),
        role: record.role.map(|role| role.to_string()),
        directory: record.directory,
        version: state.version.map(|v| v.to_string()),
        update_to_version: state.update_to_version.map(|v| v.to_string()),
        update_error: state.update_error.map(|e| e.error),
        time: state.time,
        state_commit: record.state_commit,
        labels: super::records::Label::list(&record.labels),
    }
}

/// Acting on the reconcile loop.
#[derive(Default)]
pub struct StatusMutation;

#[Object]
impl StatusMutation {
    /// Forgets the builds that failed on the commit in force, so the loop tries them
    /// again now (it otherwise waits for a new commit).
    async fn retry_failed_builds(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        require(ctx, &[Role::Administrator, Role::Developer])?;
        api(ctx).reconcile.retry_failed();
        Ok(true)
    }
}
