//! Known-bad versions: versions updaters rolled back (see [`crate::known_bad`]).

use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_store::model::known_bad::KnownBadVersion as StoredKnownBad;

use super::context::{api, require};
use super::result::ApiResult as _;
use super::types::parse_arg;
use crate::auth::Role;

/// Who reads known-bad versions, and who may clear one.
const READERS: &[Role] = &[Role::Administrator, Role::Developer];

/// A version an updater rolled back: it ended, or failed its health check, within its
/// start window.
#[derive(SimpleObject, Debug, Clone)]
pub struct KnownBadVersion {
    /// The service.
    pub service: String,
    /// The client version.
    pub version: String,
    /// Why the first instance rolled it back.
    pub reason: String,
    /// The instances that rolled it back.
    pub instances: Vec<String>,
    /// The ids of its fault reports on those instances (the evidence).
    pub fault_ids: Vec<String>,
    /// When it was first recorded.
    pub recorded_at: DateTime<Utc>,
}

impl From<StoredKnownBad> for KnownBadVersion {
    fn from(entry: StoredKnownBad) -> Self {
        KnownBadVersion {
            service: entry.service.to_string(),
            version: entry.version.to_string(),
            reason: entry.reason,
            instances: entry.instances,
            fault_ids: entry.fault_ids,
            recorded_at: entry.recorded_at,
        }
    }
}

/// Reading known-bad versions.
#[derive(Default)]
pub struct KnownBadQuery;

#[Object]
impl KnownBadQuery {
    /// This distribution's known-bad versions, by service and version; of one service
    /// when `service` is given.
    async fn known_bad_versions(
        &self,
        ctx: &Context<'_>,
        service: Option<String>,
    ) -> async_graphql::Result<Vec<KnownBadVersion>> {
        require(ctx, READERS)?;
        let service: Option<vupdate_core::service::ServiceName> = service
            .map(|s| parse_arg("service", &s))
            .transpose()
            .api()?;
        Ok(recorded(api(ctx))
            .await?
            .into_iter()
            .filter(|entry| {
                service
                    .as_ref()
                    .is_none_or(|service| &entry.service == service)
            })
            .map(KnownBadVersion::from)
            .collect())
    }
}

/// This distribution's known-bad versions, as the store holds them.
pub(super) async fn recorded(
    context: &super::context::ApiContext,
) -> async_graphql::Result<Vec<StoredKnownBad>> {
    context
        .store
        .known_bad_versions()
        .list(Some(&context.info.name))
        .await
        .api()
}

/// Clearing known-bad versions.
#[derive(Default)]
pub struct KnownBadMutation;

#[Object]
impl KnownBadMutation {
    /// Forgets that `version` of `service` is known-bad, so updaters may start it again
    /// (a commit that desires it anew does the same); false when it was not known-bad.
    async fn clear_known_bad_version(
        &self,
        ctx: &Context<'_>,
        service: String,
        version: String,
    ) -> async_graphql::Result<bool> {
        let principal = require(ctx, READERS)?;
        let service: vupdate_core::service::ServiceName = parse_arg("service", &service).api()?;
        let version: vupdate_core::version::ClientVersion = parse_arg("version", &version).api()?;
        let cleared = api(ctx).known_bad.clear(&service, &version).await.api()?;
        tracing::info!(account = %principal.account, %service, %version, cleared, "known-bad mark cleared");
        Ok(cleared)
    }
}
