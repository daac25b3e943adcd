//! The GraphQL API: one schema merged from one part per subject (accounts, desired
//! versions, tasks, logs, …), served on `/graphql` (POST and GET) and `/graphql/ws`
//! (graphql-transport-ws and the legacy graphql-ws protocol).
//!
//! - Every resolver starts with [`require`]: the caller's role is checked before anything
//!   is read, and a refusal is a GraphQL error whose `extensions.code` is stable
//!   (`UNAUTHENTICATED`, `FORBIDDEN`, `PASSWORD_CHANGE_REQUIRED`, …), never data.
//! - Failures leave resolvers through [`ApiResult::api`], which gives each one the same
//!   code and message it has on the REST routes ([`ApiError`](crate::http::ApiError)).
//! - The schema as SDL lives in `crates/distribution/schema.graphql`; a test fails when the
//!   code and that file disagree (`UPDATE_SCHEMA=1 cargo test -p vupdate-distribution schema`
//!   rewrites it).

mod accounts;
mod consumers;
mod context;
mod desired;
pub(crate) mod desired_list;
mod document_cache;
mod faults;
mod general;
mod install;
mod known_bad;
mod limits;
mod logs;
mod plan;
mod provenance;
mod providers;
mod records;
mod remote_builds;
mod result;
mod rollouts;
#[cfg(test)]
mod schema_test;
mod secrets;
mod self_update;
mod settings;
mod states;
mod status;
mod status_changed;
mod tasks;
mod transport;
mod types;
mod versions;

use async_graphql::{MergedObject, MergedSubscription, SDLExportOptions, Schema};

use crate::config::GraphqlLimits;

pub use context::{ApiContext, Caller, DistributionInfo, TIP_ATTEMPTS, require};
use document_cache::DocumentCache;
pub(crate) use install::check_reported_instance;
pub use limits::{OperationLimits, OperationSlots};
pub(crate) use logs::LogFilter;
pub use result::ApiResult;
pub use transport::routes;
pub(crate) use types::parse_arg;

/// Every query, one part per subject.
#[derive(MergedObject, Default)]
pub struct Query(
    general::GeneralQuery,
    accounts::AccountsQuery,
    settings::SettingsQuery,
    desired::DesiredQuery,
    versions::VersionsQuery,
    tasks::TasksQuery,
    states::StatesQuery,
    logs::LogsQuery,
    faults::FaultsQuery,
    known_bad::KnownBadQuery,
    status::StatusQuery,
    install::InstallQuery,
    secrets::SecretsQuery,
    consumers::ConsumersQuery,
    providers::ProvidersQuery,
    remote_builds::RemoteBuildsQuery,
    plan::PlanQuery,
    provenance::ProvenanceQuery,
);

/// Every mutation, one part per subject.
#[derive(MergedObject, Default)]
pub struct Mutation(
    general::GeneralMutation,
    accounts::AccountsMutation,
    settings::SettingsMutation,
    desired::DesiredMutation,
    versions::VersionsMutation,
    tasks::TasksMutation,
    states::StatesMutation,
    logs::LogsMutation,
    faults::FaultsMutation,
    known_bad::KnownBadMutation,
    status::StatusMutation,
    install::InstallMutation,
    secrets::SecretsMutation,
    consumers::ConsumersMutation,
    providers::ProvidersMutation,
    remote_builds::RemoteBuildsMutation,
);

/// Every subscription.
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    desired::DesiredSubscription,
    logs::LogsSubscription,
    status_changed::StatusSubscription,
    consumers::ConsumersSubscription,
);

/// The distribution's schema.
pub type ApiSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema over the running distribution's parts; operations past `limits`
/// are refused before they run, and each document text is parsed once (`DocumentCache`).
pub fn schema(context: ApiContext, limits: GraphqlLimits) -> ApiSchema {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .data(context)
    // The limits come first, so their checks (and error codes) also see cached documents.
    .extension(OperationLimits(limits))
    .extension(DocumentCache::default())
    .finish()
}

/// The schema as SDL, sorted so that the file only changes when the API does.
pub fn sdl() -> String {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .finish()
    .sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}
