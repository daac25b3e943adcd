//! `plan(base, head)`: what merging `head` over `base` would do here, computed by
//! `vupdate_state::Plan::compute` over both states and this distribution's facts (the
//! images it holds, its instances that report). The same plan `vupdate state plan
//! --distribution` prints, with its text and Markdown.

use async_graphql::{Context, Enum, Object, SimpleObject};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::plan::{self as core, Images, InstanceFact, render};
use vupdate_state::{Facts, State, StateError, ValidationErrors};

use super::context::{ApiContext, api, require};
use super::result::ApiResult as _;
use crate::auth::Role;
use crate::images::ImageVersion;

/// How a service's declaration changes.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
enum PlanChange {
    /// Declared in HEAD only.
    Added,
    /// Declared in BASE only.
    Removed,
    /// Declared under another name in BASE with the same settings.
    Renamed,
    /// Declared in both (or neither: desired versions only).
    Changed,
}

/// Where the image of a version HEAD desires comes from.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
enum PlanImage {
    /// This distribution holds it.
    Present,
    /// It will be built.
    Build,
    /// It comes from the provider that built it.
    Download,
    /// Not known.
    Unknown,
}

/// A validation problem, with file, line and column.
#[derive(SimpleObject)]
struct PlanProblem {
    /// The file, relative to the repository root.
    path: String,
    /// The line, from 1, when known.
    line: Option<u64>,
    /// The column, from 1, when known.
    column: Option<u64>,
    /// What is wrong.
    message: String,
}

/// A version before and after.
#[derive(SimpleObject)]
struct PlanVersionChange {
    /// At BASE.
    from: Option<String>,
    /// At HEAD.
    to: Option<String>,
}

/// The instances of one role that would update.
#[derive(SimpleObject)]
struct PlanRoleUpdate {
    /// The role; null for instances in no role.
    role: Option<String>,
    /// The instances.
    instances: Vec<String>,
}

/// A known-bad version HEAD desires again.
#[derive(SimpleObject)]
struct PlanKnownBad {
    /// The client version.
    version: String,
    /// Why it is known to be bad.
    reason: String,
}

/// What changes for one service.
#[derive(SimpleObject)]
struct PlanService {
    /// The service (its name at HEAD; at BASE when removed).
    service: String,
    /// How its declaration changes.
    change: PlanChange,
    /// Its name at BASE when renamed.
    renamed_from: Option<String>,
    /// Its desired developer version, when that changes.
    developer: Option<PlanVersionChange>,
    /// Its effective client version (what updaters run), when that changes.
    client: Option<PlanVersionChange>,
    /// Where HEAD's developer version's image comes from, when it changes.
    developer_image: Option<PlanImage>,
    /// Where HEAD's client version's image comes from, when it changes.
    client_image: Option<PlanImage>,
    /// The instances that would update (or stop), by role.
    instances: Vec<PlanRoleUpdate>,
    /// The consumers that receive its developer version, when that changes.
    consumers: Vec<String>,
    /// Known-bad versions HEAD desires again.
    known_bad: Vec<PlanKnownBad>,
    /// The waves (rollout.yaml at HEAD) its new client version goes to, in order: the
    /// change starts with the first; empty without waves.
    waves: Vec<String>,
    /// Whether its own build settings change.
    settings_changed: bool,
    /// Profiles it joins.
    profiles_joined: Vec<String>,
    /// Profiles it leaves.
    profiles_left: Vec<String>,
}

/// A profile that gains or loses services.
#[derive(SimpleObject)]
struct PlanProfileChange {
    /// The profile.
    profile: String,
    /// Services added to it.
    added: Vec<String>,
    /// Services removed from it.
    removed: Vec<String>,
}

/// What merging HEAD over BASE would do.
#[derive(SimpleObject)]
struct Plan {
    /// BASE's commit.
    base: String,
    /// HEAD's commit.
    head: String,
    /// Whether HEAD validates; when not, `problems` says why and nothing else is planned.
    valid: bool,
    /// Every validation problem of HEAD.
    problems: Vec<PlanProblem>,
    /// Problems of BASE (then taken as empty).
    base_problems: Vec<PlanProblem>,
    /// The services that change.
    services: Vec<PlanService>,
    /// Whether `common.yaml` changes.
    common_settings_changed: bool,
    /// Profiles that gain or lose services.
    profiles: Vec<PlanProfileChange>,
    /// What could not be known, in words.
    unknown: Vec<String>,
    /// The plan as text.
    text: String,
    /// The plan as Markdown, for a pull request's comment.
    markdown: String,
}

/// The plan query.
#[derive(Default)]
pub struct PlanQuery;

#[Object]
impl PlanQuery {
    /// What merging `head` over `base` would do (any revisions this distribution's clone
    /// of the state repo knows): per service, the version changes, whether images exist or
    /// builds are needed, the instances that would update by role, consumers, known-bad
    /// versions desired again, and every validation problem of `head`.
    async fn plan(
        &self,
        ctx: &Context<'_>,
        base: String,
        head: String,
    ) -> async_graphql::Result<Plan> {
        require(ctx, &[Role::Administrator, Role::Developer])?;
        let context = api(ctx);
        let (base_id, base_state) = load(context, base).await?;
        let (head_id, head_state) = load(context, head).await?;
        let known_bad = super::known_bad::recorded(context)
            .await?
            .into_iter()
            .map(|bad| core::KnownBad {
                service: bad.service,
                version: bad.version,
                reason: bad.reason,
            })
            .collect();
        let mut facts = Facts {
            distribution: Some(context.info.name.clone()),
            instances: Some(instances(context).await?),
            known_bad: Some(known_bad),
            ..Facts::default()
        };
        // The images of the versions the plan names: checked one by one, not all held.
        let first = core::Plan::compute(base_state.as_ref(), head_state.as_ref(), &facts);
        facts.images = Some(images(context, &first).await?);
        let plan = core::Plan::compute(base_state.as_ref(), head_state.as_ref(), &facts);
        let (base_short, head_short) = (short(&base_id), short(&head_id));
        Ok(Plan {
            text: render::text(&plan, base_short, head_short),
            markdown: render::markdown(&plan, base_short, head_short),
            base: base_id,
            head: head_id,
            valid: plan.valid,
            problems: plan.problems.into_iter().map(problem).collect(),
            base_problems: plan.base_problems.into_iter().map(problem).collect(),
            services: plan.services.into_iter().map(service).collect(),
            common_settings_changed: plan.common_settings_changed,
            profiles: plan
                .profiles
                .into_iter()
                .map(|p| PlanProfileChange {
                    profile: p.profile,
                    added: p.added,
                    removed: p.removed,
                })
                .collect(),
            unknown: plan.unknown,
        })
    }
}

/// A revision's commit and its state, or its validation problems.
async fn load(
    context: &ApiContext,
    rev: String,
) -> async_graphql::Result<(String, Result<State, ValidationErrors>)> {
    let loaded = context
        .with_repo(move |repo| {
            let id = repo.resolve(&rev)?.id;
            match repo.load(&id) {
                Ok(state) => Ok((id, Ok(state))),
                Err(StateError::InvalidCommit { errors, .. }) => Ok((id, Err(errors))),
                Err(error) => Err(error),
            }
        })
        .await
        .api()?;
    Ok(loaded)
}

async fn instances(context: &ApiContext) -> async_graphql::Result<Vec<InstanceFact>> {
    Ok(super::status::alive_states(context)
        .await?
        .into_iter()
        .map(|record| InstanceFact {
            instance: record.instance,
            service: record.service,
            role: record.role.map(|role| role.to_string()),
            version: record.state.version,
        })
        .collect())
}

/// Which of the versions `plan` desires have an image here.
async fn images(context: &ApiContext, plan: &core::Plan) -> async_graphql::Result<Images> {
    let mut images = Images::default();
    for service in &plan.services {
        let Ok(name) = service.service.parse::<ServiceName>() else {
            continue;
        };
        let wanted =
            |change: &Option<core::VersionChange>| change.as_ref().and_then(|c| c.to.clone());
        if let Some(Ok(version)) = wanted(&service.developer).map(|v| v.parse::<DeveloperVersion>())
            && has_image(context, &name, ImageVersion::Developer(version.clone())).await?
        {
            images.developer.insert((name.clone(), version));
        }
        if let Some(Ok(version)) = wanted(&service.client).map(|v| v.parse::<ClientVersion>())
            && has_image(context, &name, ImageVersion::Client(version.clone())).await?
        {
            images.client.insert((name.clone(), version));
        }
    }
    Ok(images)
}

async fn has_image(
    context: &ApiContext,
    service: &ServiceName,
    version: ImageVersion,
) -> async_graphql::Result<bool> {
    Ok(context
        .images
        .info(service, &version)
        .await
        .api()?
        .is_some())
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn problem(problem: core::PlanProblem) -> PlanProblem {
    PlanProblem {
        path: problem.path,
        line: problem.line,
        column: problem.column,
        message: problem.message,
    }
}

fn version_change(change: core::VersionChange) -> PlanVersionChange {
    PlanVersionChange {
        from: change.from,
        to: change.to,
    }
}

fn image(need: core::ImageNeed) -> PlanImage {
    match need {
        core::ImageNeed::Present => PlanImage::Present,
        core::ImageNeed::Build => PlanImage::Build,
        core::ImageNeed::Download => PlanImage::Download,
        core::ImageNeed::Unknown => PlanImage::Unknown,
    }
}

fn service(service: core::ServicePlan) -> PlanService {
    PlanService {
        service: service.service,
        change: match service.change {
            core::Change::Added => PlanChange::Added,
            core::Change::Removed => PlanChange::Removed,
            core::Change::Renamed => PlanChange::Renamed,
            core::Change::Changed => PlanChange::Changed,
        },
        renamed_from: service.renamed_from,
        developer: service.developer.map(version_change),
        client: service.client.map(version_change),
        developer_image: service.developer_image.map(image),
        client_image: service.client_image.map(image),
        // This distribution always knows its instances.
        instances: service
            .instances
            .unwrap_or_default()
            .into_iter()
            .map(|r| PlanRoleUpdate {
                role: r.role,
                instances: r.instances,
            })
            .collect(),
        consumers: service.consumers,
        known_bad: service
            .known_bad
            .into_iter()
            .map(|k| PlanKnownBad {
                version: k.version,
                reason: k.reason,
            })
            .collect(),
        waves: service.waves,
        settings_changed: service.settings_changed,
        profiles_joined: service.profiles_joined,
        profiles_left: service.profiles_left,
    }
}
