//! Fault reports: updaters (and consumers) add a report after uploading its archive to
//! `PUT /faults/{id}`; people list them and download the archive from
//! `GET /faults/{distribution}/{id}`.

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_core::paths::clean_directory;
use vupdate_core::service::{Role as ServiceRole, ServiceName};
use vupdate_store::model::faults::{FaultFile, FaultInfo, FaultQuery, FaultReport};

use super::context::{api, require};
use super::records::{InstanceState, StateInput};
use super::result::ApiResult as _;
use super::types::parse_arg;
use crate::auth::Role;
use crate::faults::check_id;
use crate::http::ApiError;

/// Who reads fault reports.
const READERS: &[Role] = &[Role::Administrator, Role::Developer];
/// The most reports one query returns.
const MAX_REPORTS: u64 = 1000;

/// A file in a fault report's archive.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "FaultFileInput")]
struct FaultFileInfo {
    /// Its path in the archive.
    path: String,
    /// Its size in bytes.
    size: u64,
}

/// What happened, as the updater saw it.
#[derive(InputObject)]
struct FaultInfoInput {
    /// When the service failed.
    time: DateTime<Utc>,
    /// The instance.
    instance: String,
    /// The service.
    service: String,
    /// Its role, if it runs in one.
    service_role: Option<String>,
    /// Its directory on the instance.
    service_directory: String,
    /// Its state at the failure.
    state: StateInput,
    /// The last lines of its log.
    log_tail: Vec<String>,
}

/// A fault report to add; upload its archive first.
#[derive(InputObject)]
struct FaultReportInput {
    /// The report's id (8-64 of `[A-Za-z0-9_-]`), the one the archive was uploaded as.
    id: String,
    /// What happened.
    info: FaultInfoInput,
    /// The files of the archive.
    files: Vec<FaultFileInfo>,
}

/// A fault report.
#[derive(SimpleObject)]
struct Fault {
    /// The distribution the instance belongs to.
    distribution: String,
    /// The report's id.
    id: String,
    /// When the service failed.
    time: DateTime<Utc>,
    /// The instance.
    instance: String,
    /// The service.
    service: String,
    /// Its role.
    service_role: Option<String>,
    /// Its directory.
    service_directory: String,
    /// Its state at the failure.
    state: InstanceState,
    /// The last lines of its log.
    log_tail: Vec<String>,
    /// The files of its archive.
    files: Vec<FaultFileInfo>,
    /// Where the archive is downloaded.
    download_path: String,
}

impl From<FaultReport> for Fault {
    fn from(report: FaultReport) -> Fault {
        let info = report.info;
        Fault {
            download_path: format!("/faults/{}/{}", report.distribution, report.id),
            distribution: report.distribution,
            id: report.id,
            time: info.time,
            instance: info.instance,
            service: info.service.to_string(),
            service_role: info.service_role.map(|role| role.to_string()),
            service_directory: info.service_directory,
            state: info.state.into(),
            log_tail: info.log_tail,
            files: report
                .files
                .into_iter()
                .map(|f| FaultFileInfo {
                    path: f.path,
                    size: f.size,
                })
                .collect(),
        }
    }
}

/// Reading fault reports.
#[derive(Default)]
pub struct FaultsQuery;

#[Object]
impl FaultsQuery {
    /// Fault reports, newest first, filtered (`service` alone matches the service in every
    /// role); at most `limit` (default 100).
    #[allow(clippy::too_many_arguments)]
    async fn faults(
        &self,
        ctx: &Context<'_>,
        id: Option<String>,
        distribution: Option<String>,
        service: Option<String>,
        role: Option<String>,
        from_time: Option<DateTime<Utc>>,
        to_time: Option<DateTime<Utc>>,
        #[graphql(default = 100)] limit: u64,
    ) -> async_graphql::Result<Vec<Fault>> {
        require(ctx, READERS)?;
        let query = FaultQuery {
            id,
            distribution,
            service: service
                .map(|s| parse_arg("service", &s))
                .transpose()
                .api()?,
            role: role.map(|r| parse_arg("role", &r)).transpose().api()?,
            from_time,
            to_time,
            after_sequence: None,
            limit: Some(limit.min(MAX_REPORTS)),
        };
        let found = api(ctx).store.fault_reports().query(&query).await.api()?;
        Ok(found.into_iter().map(|s| s.record.into()).collect())
    }

    /// The distributions that have fault reports.
    async fn fault_distributions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        require(ctx, READERS)?;
        api(ctx).store.fault_reports().distributions().await.api()
    }

    /// The services that have fault reports (of one distribution).
    async fn fault_services(
        &self,
        ctx: &Context<'_>,
        distribution: Option<String>,
    ) -> async_graphql::Result<Vec<String>> {
        require(ctx, READERS)?;
        api(ctx)
            .store
            .fault_reports()
            .services(distribution.as_deref())
            .await
            .api()
    }

    /// The roles that have fault reports (of one distribution, of one service).
    async fn fault_roles(
        &self,
        ctx: &Context<'_>,
        distribution: Option<String>,
        service: Option<String>,
    ) -> async_graphql::Result<Vec<String>> {
        require(ctx, READERS)?;
        let service = service
            .map(|s| parse_arg("service", &s))
            .transpose()
            .api()?;
        api(ctx)
            .store
            .fault_reports()
            .roles(distribution.as_deref(), service.as_ref())
            .await
            .api()
    }
}

/// Adding fault reports.
#[derive(Default)]
pub struct FaultsMutation;

#[Object]
impl FaultsMutation {
    /// Records a fault report whose archive was uploaded to `PUT /faults/{id}`; adding the
    /// same id again returns the id and changes nothing, so a sender may retry.
    async fn add_fault_report(
        &self,
        ctx: &Context<'_>,
        report: FaultReportInput,
    ) -> async_graphql::Result<String> {
        let principal = require(
            ctx,
            &[
                Role::Administrator,
                Role::Updater,
                Role::DistributionConsumer,
            ],
        )?;
        let context = api(ctx);
        check_id(&report.id).api()?;
        super::install::check_reported_instance(
            principal,
            "report.info.instance",
            &report.info.instance,
        )
        .api()?;
        let distribution = match principal.role {
            Role::DistributionConsumer => principal.account.clone(),
            _ => context.info.name.clone(),
        };
        if context
            .store
            .fault_reports()
            .get(&distribution, &report.id)
            .await
            .api()?
            .is_some()
        {
            return Ok(report.id);
        }
        if !context.fault_files.exists(&distribution, &report.id).await {
            return Err(ApiError::not_found(format!(
                "fault report `{}` has no archive: upload it to PUT /faults/{} first",
                report.id, report.id
            )))
            .api();
        }
        let info = report.info;
        let service: ServiceName = parse_arg("report.info.service", &info.service).api()?;
        let service_role: Option<ServiceRole> = info
            .service_role
            .map(|role| parse_arg("report.info.serviceRole", &role))
            .transpose()
            .api()?;
        let record = FaultReport {
            distribution,
            id: report.id.clone(),
            info: FaultInfo {
                time: info.time,
                instance: info.instance,
                service,
                service_role,
                service_directory: clean_directory(&info.service_directory),
                state: info.state.into_state("report.info.state").api()?,
                log_tail: info.log_tail,
            },
            files: report
                .files
                .into_iter()
                .map(|f| FaultFile {
                    path: f.path,
                    size: f.size,
                })
                .collect(),
        };
        context.store.fault_reports().add(record).await.api()?;
        Ok(report.id)
    }
}
