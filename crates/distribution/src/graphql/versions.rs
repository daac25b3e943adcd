//! Developer and client version records: who built a version, from which commits, and its
//! image (for a client version also its content digest and the client settings it was made
//! from); the builder adds them after an upload, people list and remove them, and ask for a
//! client generation check by hand (`rebuildClientVersion`).

use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_store::model::versions::{
    BuildInfo, ClientVersionRecord, DeveloperVersionRecord, InstallInfo, SettingsStamp, SourceRef,
    VersionQuery,
};

use super::context::{ApiContext, api, require};
use super::result::ApiResult as _;
use super::types::parse_arg;
use crate::auth::Role;
use crate::http::ApiError;
use crate::images::ImageVersion;
use crate::leadership::fence_builder;
use crate::reconcile::RebuildRefused;
use crate::retention;

/// Who adds version records: the builder, and administrators by hand.
const RECORDERS: &[Role] = &[Role::Administrator, Role::Builder];
/// Who removes versions.
const REMOVERS: &[Role] = &[Role::Administrator, Role::Developer];
/// Who asks for a client generation check by hand.
const REBUILDERS: &[Role] = &[Role::Administrator, Role::Developer];

/// A source repository a version was built from.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "SourceInput")]
struct Source {
    /// Its name in the build settings.
    name: String,
    /// Its URL.
    url: String,
    /// The branch built.
    branch: String,
    /// The commit built.
    commit: Option<String>,
}

/// How and when a developer version was built.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "BuildInfoInput")]
struct Build {
    /// Who asked for the build.
    author: String,
    /// The sources built.
    sources: Vec<Source>,
    /// When it was built.
    time: DateTime<Utc>,
    /// The comment (the commit message that asked for it).
    comment: String,
}

/// An image in the blob store.
#[derive(SimpleObject)]
struct Image {
    /// `sha256:<hex>`.
    digest: String,
    /// Bytes.
    size: u64,
}

/// Who made a client version and when.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "InstallInfoInput")]
struct Install {
    /// The account.
    author: String,
    /// When.
    time: DateTime<Utc>,
}

/// What client settings a client image was made from.
#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "ClientSettingsStampInput")]
struct ClientSettingsStamp {
    /// `sha256:<hex>` of the service's merged client build settings in the state repo
    /// (settings repositories, macro values, environment, private file paths).
    hash: String,
    /// The state commit they were read from.
    commit: Option<String>,
    /// The settings repositories, in merge order, at the commits used.
    repositories: Vec<Source>,
}

impl From<ClientSettingsStamp> for SettingsStamp {
    fn from(s: ClientSettingsStamp) -> SettingsStamp {
        SettingsStamp {
            hash: s.hash,
            commit: s.commit,
            repositories: s.repositories.into_iter().map(SourceRef::from).collect(),
        }
    }
}

impl From<SettingsStamp> for ClientSettingsStamp {
    fn from(s: SettingsStamp) -> ClientSettingsStamp {
        ClientSettingsStamp {
            hash: s.hash,
            commit: s.commit,
            repositories: s.repositories.into_iter().map(Source::from).collect(),
        }
    }
}

/// A developer version.
#[derive(SimpleObject)]
struct DeveloperVersionInfo {
    /// The service.
    service: String,
    /// The version.
    version: String,
    /// How it was built.
    build_info: Build,
    /// Its image.
    image: Image,
}

/// A client version.
#[derive(SimpleObject)]
struct ClientVersionInfo {
    /// The service.
    service: String,
    /// The version.
    version: String,
    /// How its developer version was built.
    build_info: Build,
    /// Who made this client version.
    install_info: Install,
    /// Its image.
    image: Image,
    /// SHA-256 over the image's paths, modes and contents (hex); null on older records.
    content_digest: Option<String>,
    /// The client settings it was made from; null on older records.
    settings: Option<ClientSettingsStamp>,
}

/// A developer version record to add; its image must be uploaded first.
#[derive(InputObject)]
struct DeveloperVersionInput {
    /// The service.
    service: String,
    /// The version.
    version: String,
    /// How it was built.
    build_info: Build,
}

/// A client version record to add; its image must be uploaded first.
#[derive(InputObject)]
struct ClientVersionInput {
    /// The service.
    service: String,
    /// The version.
    version: String,
    /// How its developer version was built.
    build_info: Build,
    /// Who made it (default: the caller, now).
    install_info: Option<Install>,
    /// SHA-256 over the image's paths, modes and contents (hex), which tells the next
    /// generation from an unchanged one.
    content_digest: Option<String>,
    /// The client settings it was made from.
    settings: Option<ClientSettingsStamp>,
}

impl From<Source> for SourceRef {
    fn from(s: Source) -> SourceRef {
        SourceRef {
            name: s.name,
            url: s.url,
            branch: s.branch,
            commit: s.commit,
        }
    }
}

impl From<SourceRef> for Source {
    fn from(s: SourceRef) -> Source {
        Source {
            name: s.name,
            url: s.url,
            branch: s.branch,
            commit: s.commit,
        }
    }
}

impl From<Build> for BuildInfo {
    fn from(b: Build) -> BuildInfo {
        BuildInfo {
            author: b.author,
            sources: b.sources.into_iter().map(SourceRef::from).collect(),
            time: b.time,
            comment: b.comment,
        }
    }
}

impl From<BuildInfo> for Build {
    fn from(b: BuildInfo) -> Build {
        Build {
            author: b.author,
            sources: b.sources.into_iter().map(Source::from).collect(),
            time: b.time,
            comment: b.comment,
        }
    }
}

impl From<DeveloperVersionRecord> for DeveloperVersionInfo {
    fn from(r: DeveloperVersionRecord) -> Self {
        DeveloperVersionInfo {
            service: r.service.to_string(),
            version: r.version.to_string(),
            build_info: r.build_info.into(),
            image: Image {
                digest: r.image.digest,
                size: r.image.size,
            },
        }
    }
}

impl From<ClientVersionRecord> for ClientVersionInfo {
    fn from(r: ClientVersionRecord) -> Self {
        ClientVersionInfo {
            service: r.service.to_string(),
            version: r.version.to_string(),
            build_info: r.build_info.into(),
            install_info: Install {
                author: r.install_info.author,
                time: r.install_info.time,
            },
            image: Image {
                digest: r.image.digest,
                size: r.image.size,
            },
            content_digest: r.content_digest,
            settings: r.settings.map(ClientSettingsStamp::from),
        }
    }
}

/// Reading version records.
#[derive(Default)]
pub struct VersionsQuery;

#[Object]
impl VersionsQuery {
    /// Developer version records, filtered by service, distribution and version.
    async fn developer_versions_info(
        &self,
        ctx: &Context<'_>,
        service: Option<String>,
        distribution: Option<String>,
        version: Option<String>,
    ) -> async_graphql::Result<Vec<DeveloperVersionInfo>> {
        require(
            ctx,
            &[
                Role::Administrator,
                Role::Developer,
                Role::Builder,
                Role::DistributionConsumer,
            ],
        )?;
        let query = version_query(service, distribution, version).api()?;
        let records = api(ctx)
            .store
            .developer_versions()
            .query(&query)
            .await
            .api()?;
        Ok(records.into_iter().map(|s| s.record.into()).collect())
    }

    /// Client version records, filtered by service, distribution and version.
    async fn client_versions_info(
        &self,
        ctx: &Context<'_>,
        service: Option<String>,
        distribution: Option<String>,
        version: Option<String>,
    ) -> async_graphql::Result<Vec<ClientVersionInfo>> {
        require(ctx, &[Role::Administrator, Role::Developer, Role::Builder])?;
        let query = version_query(service, distribution, version).api()?;
        let records = api(ctx).store.client_versions().query(&query).await.api()?;
        Ok(records.into_iter().map(|s| s.record.into()).collect())
    }
}

/// Adding and removing versions.
#[derive(Default)]
pub struct VersionsMutation;

#[Object]
impl VersionsMutation {
    /// Records a developer version whose image is in the image store, then applies
    /// retention to the service's old versions.
    async fn add_developer_version_info(
        &self,
        ctx: &Context<'_>,
        info: DeveloperVersionInput,
    ) -> async_graphql::Result<DeveloperVersionInfo> {
        let principal = require(ctx, RECORDERS)?;
        let context = api(ctx);
        let service: ServiceName = parse_arg("info.service", &info.service).api()?;
        let version: DeveloperVersion = parse_arg("info.version", &info.version).api()?;
        let image = image_of(context, &service, ImageVersion::Developer(version.clone())).await?;
        fence_builder(&context.store, principal).await.api()?;
        let record = DeveloperVersionRecord {
            service: service.clone(),
            version,
            build_info: info.build_info.into(),
            image,
        };
        let stored = context.store.developer_versions().add(record).await.api()?;
        after_new_version(context, &service).await;
        Ok(stored.record.into())
    }

    /// Records a client version whose image is in the image store.
    async fn add_client_version_info(
        &self,
        ctx: &Context<'_>,
        info: ClientVersionInput,
    ) -> async_graphql::Result<ClientVersionInfo> {
        let principal = require(ctx, RECORDERS)?;
        let context = api(ctx);
        let service: ServiceName = parse_arg("info.service", &info.service).api()?;
        let version: ClientVersion = parse_arg("info.version", &info.version).api()?;
        let image = image_of(context, &service, ImageVersion::Client(version.clone())).await?;
        fence_builder(&context.store, principal).await.api()?;
        let install = info.install_info.unwrap_or_else(|| Install {
            author: principal.account.clone(),
            time: context.store.now(),
        });
        let record = ClientVersionRecord {
            service: service.clone(),
            version,
            build_info: info.build_info.into(),
            install_info: InstallInfo {
                author: install.author,
                time: install.time,
            },
            image,
            content_digest: info.content_digest,
            settings: info.settings.map(SettingsStamp::from),
        };
        let stored = context.store.client_versions().add(record).await.api()?;
        after_new_version(context, &service).await;
        Ok(stored.record.into())
    }

    /// Checks the client settings of `service` now and makes the next client generation
    /// if they give new content (for when only a settings repository changed, which the
    /// state repo cannot show): a `BuildClientGeneration` task, whose id is returned. A new
    /// generation is committed to `desired/client.yaml` by the distribution; when the
    /// content is unchanged but the newest generation is not the one in force, that one is
    /// committed. Refused with `NOT_FOUND` (no client version in force, or not declared),
    /// `NO_IMAGE` (its own build comes first) or `BUILD_BUSY` (a build of the service or
    /// every slot is busy).
    async fn rebuild_client_version(
        &self,
        ctx: &Context<'_>,
        service: String,
    ) -> async_graphql::Result<Option<String>> {
        require(ctx, REBUILDERS)?;
        let service: ServiceName = parse_arg("service", &service).api()?;
        let task = api(ctx)
            .reconcile
            .rebuild_client(service)
            .await
            .map_err(refused)
            .api()?;
        Ok(Some(task))
    }

    /// Removes a developer version (record and image); refused with `VERSION_IN_USE` while
    /// it is desired, tested or running.
    async fn remove_developer_version(
        &self,
        ctx: &Context<'_>,
        service: String,
        version: String,
    ) -> async_graphql::Result<bool> {
        require(ctx, REMOVERS)?;
        let service: ServiceName = parse_arg("service", &service).api()?;
        let version: DeveloperVersion = parse_arg("version", &version).api()?;
        remove_version(api(ctx), &service, ImageVersion::Developer(version)).await
    }

    /// Removes a client version (record and image); refused with `VERSION_IN_USE` while it
    /// is desired or running.
    async fn remove_client_version(
        &self,
        ctx: &Context<'_>,
        service: String,
        version: String,
    ) -> async_graphql::Result<bool> {
        require(ctx, REMOVERS)?;
        let service: ServiceName = parse_arg("service", &service).api()?;
        let version: ClientVersion = parse_arg("version", &version).api()?;
        remove_version(api(ctx), &service, ImageVersion::Client(version)).await
    }
}

/// The API error for a check the loop would not start.
fn refused(refused: RebuildRefused) -> ApiError {
    let message = refused.to_string();
    match refused {
        RebuildRefused::NotDesired(_) | RebuildRefused::NotDeclared(_) => {
            ApiError::not_found(message)
        }
        RebuildRefused::NoImage { .. } => ApiError::conflict("NO_IMAGE", message),
        RebuildRefused::Busy { .. } | RebuildRefused::NoSlot(_) => {
            ApiError::conflict("BUILD_BUSY", message)
        }
        RebuildRefused::NoState => ApiError::unavailable("STATE_UNAVAILABLE", message),
        RebuildRefused::Unavailable | RebuildRefused::Stopped => {
            ApiError::unavailable("UNAVAILABLE", message)
        }
        RebuildRefused::Start(_) => ApiError::internal(message),
    }
}

fn version_query(
    service: Option<String>,
    distribution: Option<String>,
    version: Option<String>,
) -> Result<VersionQuery, ApiError> {
    Ok(VersionQuery {
        service: service.map(|s| parse_arg("service", &s)).transpose()?,
        distribution,
        version,
    })
}

/// The stored image of a version, or `NOT_FOUND` telling the caller to upload it first.
async fn image_of(
    context: &ApiContext,
    service: &ServiceName,
    version: ImageVersion,
) -> async_graphql::Result<vupdate_store::model::versions::ImageInfo> {
    match context.images.info(service, &version).await.api()? {
        Some(info) => Ok(vupdate_store::model::versions::ImageInfo {
            digest: info.digest,
            size: info.size,
        }),
        None => Err(ApiError::not_found(format!(
            "{} version {version} of {service} has no image; upload it to /images/{}/{service}/{version} first",
            version.kind(),
            version.kind()
        )))
        .api(),
    }
}

/// After a new version: old ones beyond the history size go, and the loop looks again.
async fn after_new_version(context: &ApiContext, service: &ServiceName) {
    context.reconcile.wake();
    let Ok(in_force) = context.state_in_force() else {
        return;
    };
    // Retention failing must not fail the upload that triggered it: it runs again next time.
    if let Err(error) = retention::enforce(
        &context.images,
        &context.store,
        &in_force.state,
        service,
        context.max_history,
    )
    .await
    {
        tracing::warn!(%service, %error, "retention of old versions failed; retried after the next version");
    }
}

async fn remove_version(
    context: &ApiContext,
    service: &ServiceName,
    version: ImageVersion,
) -> async_graphql::Result<bool> {
    let in_force = context.state_in_force().api()?;
    let used = retention::in_use(&in_force.state, &context.store, service)
        .await
        .api()?;
    if used.contains(&version) {
        return Err(ApiError::conflict(
            "VERSION_IN_USE",
            format!("{} version {version} of {service} is desired, tested or running, so it is kept; change the desired versions first", version.kind()),
        ))
        .api();
    }
    let record = match &version {
        ImageVersion::Developer(v) => context
            .store
            .developer_versions()
            .remove(service, v)
            .await
            .api()?,
        ImageVersion::Client(v) => context
            .store
            .client_versions()
            .remove(service, v)
            .await
            .api()?,
    };
    let image = match context.images.remove(service, &version).await {
        Ok(_) => true,
        Err(crate::images::ImageError::NotFound { .. }) => false,
        Err(error) => return Err(ApiError::from(error)).api(),
    };
    if !record && !image {
        return Err(ApiError::not_found(format!(
            "{} version {version} of {service} does not exist",
            version.kind()
        )))
        .api();
    }
    Ok(true)
}
