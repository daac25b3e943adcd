//! Builds this distribution runs for its consumers (`runBuilder`, the original's remote
//! builder): the consumer says what to build and at which of its state commits, and gives
//! a Builder token of its own; this distribution's builder then works against the
//! consumer's API, at the URL this distribution's `consumers.yaml` gives (never one the
//! consumer names). The token lives only in the build's environment: the task's
//! parameters, its log and every answer leave it out. A consumer follows and cancels only
//! its own builds.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use vupdate_core::log::Level;
use vupdate_core::reconcile::Build;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_store::model::logs::LogQuery;

use super::context::{ApiContext, api, require};
use super::result::ApiResult as _;
use super::types::parse_arg;
use crate::auth::{Principal, Role};
use crate::http::ApiError;
use crate::reconcile::ConsumerBuild;

/// The type of the tasks that run a consumer's build.
pub const TASK_TYPE: &str = "RunBuilderForConsumer";

/// What kind of build.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
enum RemoteBuildKind {
    /// A developer version from sources.
    Developer,
    /// A client version from a developer image and client settings.
    Client,
    /// A client generation check.
    Generation,
}

/// A build a consumer asks for.
#[derive(InputObject)]
struct RemoteBuildInput {
    /// What kind of build.
    kind: RemoteBuildKind,
    /// The service.
    service: String,
    /// The version to make (developer or client); the developer version for a generation.
    version: String,
    /// The developer version a client version is made from.
    developer_version: Option<String>,
    /// The consumer's state commit whose settings the build uses.
    commit: String,
    /// The consumer's task, whose log gets the build's lines.
    task: String,
    /// Who asked for the build there.
    author: String,
    /// Why.
    comment: String,
}

/// Where a build run for a consumer stands.
#[derive(SimpleObject)]
struct RemoteBuild {
    /// The task here.
    task: String,
    /// Whether it still runs.
    active: bool,
    /// How it ended.
    succeeded: Option<bool>,
    /// Its last error line, which says why a failed build failed.
    message: Option<String>,
}

/// The build the input asks for.
fn build_of(input: &RemoteBuildInput) -> Result<Build, ApiError> {
    let service: ServiceName = parse_arg("build.service", &input.service)?;
    Ok(match input.kind {
        RemoteBuildKind::Developer => Build::Developer {
            service,
            version: parse_arg("build.version", &input.version)?,
        },
        RemoteBuildKind::Client => {
            let version: ClientVersion = parse_arg("build.version", &input.version)?;
            let from: DeveloperVersion = match &input.developer_version {
                Some(text) => parse_arg("build.developerVersion", text)?,
                None => version.developer.clone(),
            };
            Build::Client {
                service,
                version,
                from,
            }
        }
        RemoteBuildKind::Generation => {
            let developer: DeveloperVersion = parse_arg("build.version", &input.version)?;
            Build::Generation {
                service,
                current: ClientVersion::first(developer),
                settings: String::new(),
            }
        }
    })
}

/// A commit or task id as it may go on a command line: letters, digits, `-`, `_`.
fn check_id(argument: &str, value: &str) -> Result<(), ApiError> {
    let fine = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fine {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "argument `{argument}`: `{value}` is not an id (letters, digits, `-`, `_`)"
        )))
    }
}

/// The task `id` when it is a build run for `principal` (a consumer's own), else
/// `NOT_FOUND`; for people, any task.
pub(super) async fn own_task(
    context: &ApiContext,
    principal: &Principal,
    id: &str,
) -> Result<vupdate_store::model::tasks::Task, ApiError> {
    let not_found = || ApiError::not_found(format!("no build `{id}` runs or ran for you here"));
    let task = context
        .store
        .tasks()
        .get(id)
        .await?
        .ok_or_else(not_found)?
        .record;
    if principal.role == Role::DistributionConsumer
        && (task.task_type != TASK_TYPE
            || task.parameters.get("consumer") != Some(&principal.account))
    {
        return Err(not_found());
    }
    Ok(task)
}

/// Consumers' builds.
#[derive(Default)]
pub struct RemoteBuildsQuery;

#[Object]
impl RemoteBuildsQuery {
    /// Where a build run for the calling consumer stands.
    async fn remote_build(
        &self,
        ctx: &Context<'_>,
        task: String,
    ) -> async_graphql::Result<RemoteBuild> {
        let principal = require(ctx, super::consumers::PEOPLE_AND_CONSUMERS)?;
        let context = api(ctx);
        let record = own_task(context, principal, &task).await.api()?;
        let message = if record.termination_status == Some(false) {
            let lines = context
                .store
                .logs()
                .query(&LogQuery {
                    task: Some(task.clone()),
                    min_level: Some(Level::Error),
                    limit: Some(1),
                    ..LogQuery::default()
                })
                .await
                .api()?;
            lines.into_iter().next().map(|line| line.record.message)
        } else {
            None
        };
        Ok(RemoteBuild {
            task,
            active: record.active,
            succeeded: record.termination_status,
            message,
        })
    }
}

/// Running consumers' builds.
#[derive(Default)]
pub struct RemoteBuildsMutation;

#[Object]
impl RemoteBuildsMutation {
    /// Runs a build for the calling consumer distribution with its settings at its
    /// `build.commit`: this distribution's builder works against the consumer's API (its
    /// URL in `consumers.yaml`) with `accessToken`, a Builder token of the consumer, which
    /// is kept in the build's environment only. Returns the task id here; follow it with
    /// `remoteBuild`, stop it with `cancelTask`.
    async fn run_builder(
        &self,
        ctx: &Context<'_>,
        build: RemoteBuildInput,
        access_token: String,
    ) -> async_graphql::Result<String> {
        let principal = require(ctx, &[Role::DistributionConsumer])?;
        let context = api(ctx);
        let consumer = principal.account.clone();
        let what = build_of(&build).api()?;
        check_id("build.commit", &build.commit).api()?;
        check_id("build.task", &build.task).api()?;
        let in_force = context.state_in_force().api()?;
        let entry = in_force.state.consumers.get(&consumer).ok_or_else(|| {
            ApiError::forbidden(format!(
                "consumer `{consumer}` is not in consumers.yaml of the state repo"
            ))
        });
        let url = entry.api()?.url.clone().ok_or_else(|| {
            ApiError::conflict(
                "NO_CONSUMER_URL",
                format!(
                    "consumers.yaml gives no `url` for consumer `{consumer}`, so this distribution's builder cannot reach it"
                ),
            )
        });
        let url = url.api()?;
        let parameters = [
            ("consumer", consumer.clone()),
            ("service", build.service.clone()),
            ("version", build.version.clone()),
            ("kind", format!("{:?}", build.kind)),
            ("commit", build.commit.clone()),
            ("consumerTask", build.task.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let services = vec![what.service().clone()];
        let order = ConsumerBuild::new(
            what,
            consumer.clone(),
            crate::mesh::worker::base_url(&url).to_owned(),
            access_token,
            build.commit,
            build.task,
            build.author,
            build.comment,
        );
        let runner = context.builder.clone();
        let task = context
            .tasks
            .start(TASK_TYPE, parameters, services, move |task| {
                runner.run_for_consumer(order, task)
            })
            .await
            .api()?;
        tracing::info!(%task, %consumer, "running a build for a consumer");
        Ok(task)
    }
}
