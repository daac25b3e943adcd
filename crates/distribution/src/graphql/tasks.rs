//! Tasks: listing with filters, the type and service lists, and cancellation. A task's log
//! is read with `logs(filter: {task})` and followed with the `logs` subscription.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_store::model::tasks::{Task, TaskQuery};

use super::context::{api, require};
use super::result::ApiResult as _;
use super::types::{NameValue, parse_arg};
use crate::auth::Role;

/// Who reads and cancels tasks.
const USERS: &[Role] = &[Role::Administrator, Role::Developer];
/// The most tasks one query returns.
const MAX_TASKS: u64 = 1000;

/// A task.
#[derive(SimpleObject)]
struct TaskInfo {
    /// Its id.
    id: String,
    /// Its type, e.g. `BuildDeveloperVersion`.
    #[graphql(name = "type")]
    task_type: String,
    /// Its parameters.
    parameters: Vec<NameValue>,
    /// The services it concerns.
    services: Vec<String>,
    /// When it was created.
    creation_time: DateTime<Utc>,
    /// Whether it is still running.
    active: bool,
    /// When it ended.
    termination_time: Option<DateTime<Utc>>,
    /// Whether it succeeded, once it ended.
    termination_status: Option<bool>,
}

impl From<Task> for TaskInfo {
    fn from(task: Task) -> TaskInfo {
        TaskInfo {
            id: task.id,
            task_type: task.task_type,
            parameters: NameValue::list(&task.parameters),
            services: task.services.iter().map(ToString::to_string).collect(),
            creation_time: task.creation_time,
            active: task.active,
            termination_time: task.termination_time,
            termination_status: task.termination_status,
        }
    }
}

/// Reading tasks.
#[derive(Default)]
pub struct TasksQuery;

#[Object]
impl TasksQuery {
    /// Tasks, newest first, filtered; at most `limit` (default 100, at most 1000).
    #[allow(clippy::too_many_arguments)]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
        #[graphql(name = "type")] task_type: Option<String>,
        service: Option<String>,
        #[graphql(default)] only_active: bool,
        from_time: Option<DateTime<Utc>>,
        to_time: Option<DateTime<Utc>>,
        #[graphql(default = 100)] limit: u64,
    ) -> async_graphql::Result<Vec<TaskInfo>> {
        require(ctx, USERS)?;
        let query = TaskQuery {
            id,
            task_type,
            service: service
                .map(|s| parse_arg("service", &s))
                .transpose()
                .api()?,
            only_active,
            from_time,
            to_time,
            limit: Some(limit.min(MAX_TASKS)),
        };
        let found = api(ctx).store.tasks().query(&query).await.api()?;
        Ok(found.into_iter().map(|s| s.record.into()).collect())
    }

    /// The task types that occur.
    async fn task_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        require(ctx, USERS)?;
        api(ctx).store.tasks().types().await.api()
    }

    /// The services tasks concern.
    async fn task_services(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        require(ctx, USERS)?;
        api(ctx).store.tasks().services().await.api()
    }
}

/// Acting on tasks.
#[derive(Default)]
pub struct TasksMutation;

#[Object]
impl TasksMutation {
    /// Cancels a running task: its work is signalled, then stopped after a grace period;
    /// it ends as failed with the last log line `cancelled`. `NOT_FOUND` when it is not
    /// running here. A consumer distribution may cancel only the builds run for it.
    async fn cancel_task(&self, ctx: &Context<'_>, task: String) -> async_graphql::Result<bool> {
        let principal = require(
            ctx,
            &[
                Role::Administrator,
                Role::Developer,
                Role::DistributionConsumer,
            ],
        )?;
        let context = api(ctx);
        if principal.role == Role::DistributionConsumer {
            super::remote_builds::own_task(context, principal, &task)
                .await
                .api()?;
        }
        context.tasks.cancel(&task).api()?;
        Ok(true)
    }
}
