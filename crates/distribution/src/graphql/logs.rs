//! Log records: batches from updaters and builders, queries with every filter, the value
//! lists the dashboard's filters offer, and a live subscription.

use async_graphql::{Context, InputObject, MaybeUndefined, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use vupdate_store::FollowFrom;
use vupdate_store::model::logs::{LogField, LogQuery};

use super::context::{api, caller, require};
use super::records::LogLine;
use super::result::ApiResult as _;
use super::types::parse_arg;
use crate::auth::Role;
use crate::http::ApiError;
use crate::log_batch::{LogBatch, LogLineInput};

/// Who reads logs.
const READERS: &[Role] = &[Role::Administrator, Role::Developer];
/// The most lines one query returns.
const MAX_LINES: u64 = 10_000;

/// The filters every log query shares.
// Also the query parameters of `GET /logs/download` (`http::logs`).
#[derive(InputObject, Default, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LogFilter {
    /// Only this service (in every role, unless `role` is given).
    service: Option<String>,
    /// Only this role.
    role: Option<String>,
    /// Only this instance.
    instance: Option<String>,
    /// Only this directory.
    directory: Option<String>,
    /// Only this process.
    process: Option<String>,
    /// Only this task.
    task: Option<String>,
    /// Only this level and more severe ones.
    min_level: Option<String>,
    /// Only messages containing this text (ignoring case).
    find: Option<String>,
    /// Written at or after.
    from_time: Option<DateTime<Utc>>,
    /// Written at or before.
    to_time: Option<DateTime<Utc>>,
}

impl LogFilter {
    /// The store's query; `prefix` names the fields in errors (`filter.` in GraphQL).
    pub(crate) fn query(self, prefix: &str) -> Result<LogQuery, ApiError> {
        // An empty value (a cleared form field) filters nothing.
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        Ok(LogQuery {
            service: given(self.service)
                .map(|s| parse_arg(&format!("{prefix}service"), &s))
                .transpose()?,
            role: given(self.role)
                .map(|r| parse_arg(&format!("{prefix}role"), &r))
                .transpose()?,
            instance: given(self.instance),
            directory: given(self.directory),
            process: given(self.process),
            task: given(self.task),
            min_level: given(self.min_level)
                .map(|l| parse_arg(&format!("{prefix}minLevel"), &l))
                .transpose()?,
            from_time: self.from_time,
            to_time: self.to_time,
            text: given(self.find),
            ..LogQuery::default()
        })
    }

    /// What the filter is about, for a file name: its task, else its service and role
    /// (`name-role`, `name`, `role-<role>`), else `all`.
    pub(crate) fn subject(&self) -> String {
        let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
        if let Some(task) = given(&self.task) {
            return task;
        }
        match (given(&self.service), given(&self.role)) {
            (Some(service), Some(role)) => format!("{service}-{role}"),
            (Some(service), None) => service,
            (None, Some(role)) => format!("role-{role}"),
            (None, None) => "all".to_owned(),
        }
    }
}

/// The oldest and newest time of matching lines.
#[derive(SimpleObject)]
struct TimeRange {
    /// The oldest.
    from: DateTime<Utc>,
    /// The newest.
    to: DateTime<Utc>,
}

/// Reading logs.
#[derive(Default)]
pub struct LogsQuery;

#[Object]
impl LogsQuery {
    /// Matching lines: at most `limit` (default 1000, at most 10000). Without `after`,
    /// newest first, paging back with `before` (a `sequence`). With `after` (a
    /// `sequence`), reading forward: the lines stored after it, oldest first (and before
    /// `before`, if given), so a reader pages forward from its last line.
    async fn logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: LogFilter,
        after: Option<i64>,
        before: Option<i64>,
        #[graphql(default = 1000)] limit: u64,
    ) -> async_graphql::Result<Vec<LogLine>> {
        require(ctx, READERS)?;
        let query = LogQuery {
            after_sequence: after,
            before_sequence: before,
            limit: Some(limit.min(MAX_LINES)),
            ..filter.query("filter.").api()?
        };
        let logs = api(ctx).store.logs();
        let found = match after {
            Some(_) => logs.in_sequence(&query, limit.min(MAX_LINES)).await,
            None => logs.query(&query).await,
        }
        .api()?;
        Ok(found.into_iter().map(LogLine::from).collect())
    }

    /// The distinct values of `field` among matching lines (for the dashboard's filters):
    /// `SERVICE` (without roles), `ROLE`, `INSTANCE`, `DIRECTORY`, `PROCESS`, `TASK` or
    /// `LEVEL`.
    async fn log_values(
        &self,
        ctx: &Context<'_>,
        field: LogValueField,
        #[graphql(default)] filter: LogFilter,
    ) -> async_graphql::Result<Vec<String>> {
        require(ctx, READERS)?;
        let query = filter.query("filter.").api()?;
        api(ctx)
            .store
            .logs()
            .distinct(field.into(), &query)
            .await
            .api()
    }

    /// The times of the oldest and newest matching lines; null when none match.
    async fn logs_time_range(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: LogFilter,
    ) -> async_graphql::Result<Option<TimeRange>> {
        require(ctx, READERS)?;
        let query = filter.query("filter.").api()?;
        let range = api(ctx).store.logs().time_range(&query).await.api()?;
        Ok(range.map(|(from, to)| TimeRange { from, to }))
    }
}

/// A field of log lines whose values can be listed.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
enum LogValueField {
    /// Services, without their roles.
    Service,
    /// Roles.
    Role,
    /// Instances.
    Instance,
    /// Directories.
    Directory,
    /// Processes.
    Process,
    /// Tasks.
    Task,
    /// Levels.
    Level,
}

impl From<LogValueField> for LogField {
    fn from(field: LogValueField) -> LogField {
        match field {
            LogValueField::Service => LogField::Service,
            LogValueField::Role => LogField::Role,
            LogValueField::Instance => LogField::Instance,
            LogValueField::Directory => LogField::Directory,
            LogValueField::Process => LogField::Process,
            LogValueField::Task => LogField::Task,
            LogValueField::Level => LogField::Level,
        }
    }
}

/// Sending logs.
#[derive(Default)]
pub struct LogsMutation;

#[Object]
impl LogsMutation {
    /// Stores a batch of lines of one process (all or nothing); returns how many were
    /// new (lines whose `sequence` was stored before are dropped). `role` is the role the
    /// service runs in, or null for none; left out (as updaters before roles had their own
    /// field did), `service` is read as `name-role` by the dash rule against the services
    /// the state in force knows. Refused with `STORE_BEHIND` (nothing stored) while the
    /// server is behind writing log lines: send the batch again later.
    #[allow(clippy::too_many_arguments)]
    async fn add_logs(
        &self,
        ctx: &Context<'_>,
        service: String,
        role: MaybeUndefined<String>,
        instance: String,
        directory: String,
        process: String,
        task: Option<String>,
        logs: Vec<LogLineInput>,
    ) -> async_graphql::Result<usize> {
        // The batch checks the role itself, as it does for `POST /logs/batches`.
        let principal = caller(ctx).signed_in().api()?;
        let batch = LogBatch {
            service,
            role,
            instance,
            directory,
            process,
            task,
            logs,
        };
        let api = api(ctx);
        batch
            .store(principal, &api.in_force, &api.intake)
            .await
            .api()
    }
}

/// Following logs live.
#[derive(Default)]
pub struct LogsSubscription;

#[Subscription]
impl LogsSubscription {
    /// Matching lines as batches (up to 100 lines): those stored after `after` (default:
    /// from now), then new ones as they arrive. With `filter.task`, the stream ends after
    /// the task's last line (the one with `terminationStatus`).
    async fn logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] filter: LogFilter,
        after: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Vec<LogLine>>>> {
        require(
            ctx,
            &[
                Role::Administrator,
                Role::Developer,
                Role::DistributionConsumer,
            ],
        )?;
        let query = filter.query("filter.").api()?;
        let ends_with_task = query.task.is_some();
        let from = after.map_or(FollowFrom::Now, FollowFrom::After);
        let follower = api(ctx).store.logs().follow(query, from).await.api()?;
        Ok(futures::stream::unfold(
            Some(follower),
            move |follower| async move {
                let mut follower = follower?;
                match follower.next_batch().await {
                    Ok(batch) => {
                        let done = ends_with_task
                            && batch.iter().any(|r| r.record.termination_status.is_some());
                        let lines = batch.into_iter().map(LogLine::from).collect();
                        Some((Ok(lines), (!done).then_some(follower)))
                    }
                    Err(error) => Some((Err(ApiError::from(error).into_graphql()), None)),
                }
            },
        ))
    }
}
