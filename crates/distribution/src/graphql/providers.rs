//! The consumer's side of the mesh: the providers of `providers.yaml` with where each
//! stands (never a token), taking a provider's offer by hand, marking versions tested on
//! a provider (forwarded to it), and `providers.yaml` edited as commits.

use std::collections::BTreeMap;

use async_graphql::{Context, Enum, Object, SimpleObject};
use chrono::{DateTime, Utc};
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;
use vupdate_state::{AutoUpdate, Provider, State, StateEdit};

use super::context::{ApiContext, api, require};
use super::result::ApiResult as _;
use super::types::{ServiceVersion, StateRevision, parse_arg};
use crate::auth::Role;
use crate::http::ApiError;
use crate::mesh::MeshError;
use crate::mesh::board::Via;

/// Who reads providers and takes or marks their versions.
const PEOPLE: &[Role] = &[Role::Administrator, Role::Developer];
/// Who edits providers.yaml.
const ADMINS: &[Role] = &[Role::Administrator];

/// What happens when a provider offers other versions.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
enum AutoUpdateMode {
    /// Commit them, authored as the provider.
    Commit,
    /// Push them to a branch for review.
    PullRequest,
    /// Only show them; `takeProviderVersions` takes them.
    Off,
}

impl From<AutoUpdate> for AutoUpdateMode {
    fn from(mode: AutoUpdate) -> Self {
        match mode {
            AutoUpdate::Commit => AutoUpdateMode::Commit,
            AutoUpdate::PullRequest => AutoUpdateMode::PullRequest,
            AutoUpdate::Off => AutoUpdateMode::Off,
        }
    }
}

impl From<AutoUpdateMode> for AutoUpdate {
    fn from(mode: AutoUpdateMode) -> Self {
        match mode {
            AutoUpdateMode::Commit => AutoUpdate::Commit,
            AutoUpdateMode::PullRequest => AutoUpdate::PullRequest,
            AutoUpdateMode::Off => AutoUpdate::Off,
        }
    }
}

/// A change pushed to a branch, waiting for a person to merge it.
#[derive(SimpleObject)]
struct WaitingChange {
    /// The branch, `vupdate/<provider>/<revision>`.
    branch: String,
    /// Its commit.
    commit: String,
    /// The provider's revision it takes.
    revision: String,
    /// The client versions it desires.
    versions: Vec<ServiceVersion>,
}

/// The upload of states, fault reports and installed versions to a provider.
#[derive(SimpleObject)]
struct ProviderUpload {
    /// When the last round finished.
    last_upload: Option<DateTime<Utc>>,
    /// Why the last round failed, if it did.
    last_error: Option<String>,
    /// State records sent since the server started.
    states_sent: u64,
    /// Fault reports sent since the server started.
    faults_sent: u64,
}

/// A provider of `providers.yaml` and where it stands; never its token.
#[derive(SimpleObject)]
pub(super) struct ProviderInfo {
    /// The provider's distribution name.
    distribution: String,
    /// Its URL.
    url: String,
    /// The name of the secret that holds the access token.
    access_token_secret: String,
    /// Whether that secret is set on this distribution.
    secret_set: bool,
    /// The consumer of the provider whose tested marks gate what is taken.
    test_consumer: Option<String>,
    /// Whether states and fault reports are uploaded to it.
    upload_state: bool,
    /// What happens when it offers other versions.
    auto_update: AutoUpdateMode,
    /// The pin of its HTTPS key, when trusted by that alone (`sha256//…`).
    pinned_public_key: Option<String>,
    /// Whether the last attempt reached it (null: not tried yet).
    reachable: Option<bool>,
    /// How the last offer arrived: `SUBSCRIPTION` or `POLL`.
    connected_by: Option<String>,
    /// When an offer last arrived.
    last_sync: Option<DateTime<Utc>>,
    /// The last error, if the last attempt failed.
    last_error: Option<String>,
    /// Whether it refused this distribution's access token (not tried again until the
    /// secret is set anew, or after 5 minutes).
    token_refused: bool,
    /// When it is tried again, while away or refused.
    next_attempt: Option<DateTime<Utc>>,
    /// The provider's revision of the last offer.
    offered_revision: Option<String>,
    /// The developer versions it offers.
    offered: Vec<ServiceVersion>,
    /// Whether the offer differs from what runs here.
    offers_newer: bool,
    /// The client versions taking the offer would desire here.
    pending: Vec<ServiceVersion>,
    /// Offered services this distribution does not declare (add `services/<name>.yaml`).
    undeclared: Vec<String>,
    /// Why the offer is not taken yet (downloading, building, a failed build), if so.
    preparing: Option<String>,
    /// A change waiting on a branch for review (`autoUpdate: pullRequest`).
    waiting_change: Option<WaitingChange>,
    /// The provider's revision whose offer was last acted on: committed, proposed for
    /// review, or found to propose the same change as the branch already waiting (which
    /// is then kept, not replaced).
    acted_revision: Option<String>,
    /// The commit that last took an offer (since the server started).
    last_taken_commit: Option<String>,
    /// The upload, with `uploadState`.
    upload: Option<ProviderUpload>,
}

/// Every provider of `state` with where it stands, for `providers` and `status`.
pub(super) fn provider_infos(context: &ApiContext, state: &State) -> Vec<ProviderInfo> {
    state
        .providers
        .iter()
        .map(|(name, provider)| {
            let status = context.mesh.board().get(name).unwrap_or_default();
            let offer = status.offer.clone();
            ProviderInfo {
                distribution: name.clone(),
                url: provider.url.clone(),
                access_token_secret: provider.access_token_secret.clone(),
                secret_set: context.mesh.secret_set(provider),
                test_consumer: provider.test_consumer.clone(),
                upload_state: provider.upload_state,
                auto_update: provider.auto_update.into(),
                pinned_public_key: provider.pinned_public_key.map(|pin| pin.to_string()),
                reachable: status.reachable,
                connected_by: status.via.map(|via| {
                    match via {
                        Via::Subscription => "SUBSCRIPTION",
                        Via::Poll => "POLL",
                    }
                    .to_owned()
                }),
                last_sync: status.last_sync,
                last_error: status.last_error.clone(),
                token_refused: status.refused,
                next_attempt: status.next_attempt,
                offered_revision: offer.as_ref().map(|o| o.revision.clone()),
                offered: offer
                    .map(|o| ServiceVersion::list(&o.versions))
                    .unwrap_or_default(),
                offers_newer: !status.pending.is_empty(),
                pending: ServiceVersion::list(&status.pending),
                undeclared: status.undeclared.iter().map(ToString::to_string).collect(),
                preparing: status.preparing.clone(),
                acted_revision: status.acted.clone(),
                waiting_change: status.waiting.map(|p| WaitingChange {
                    branch: p.branch,
                    commit: p.commit,
                    revision: p.revision,
                    versions: p
                        .versions
                        .into_iter()
                        .map(|(service, version)| ServiceVersion { service, version })
                        .collect(),
                }),
                last_taken_commit: status.last_taken.map(|(commit, _)| commit),
                upload: provider.upload_state.then(|| ProviderUpload {
                    last_upload: status.upload.last_upload,
                    last_error: status.upload.last_error.clone(),
                    states_sent: status.upload.states_sent,
                    faults_sent: status.upload.faults_sent,
                }),
            }
        })
        .collect()
}

impl From<MeshError> for ApiError {
    fn from(error: MeshError) -> ApiError {
        let message = error.to_string();
        match error {
            MeshError::NoProvider(_) => ApiError::not_found(message),
            MeshError::NoOffer(_) => ApiError::conflict("NO_OFFER", message),
            MeshError::Link { .. } => ApiError::unavailable("PROVIDER_UNAVAILABLE", message),
            MeshError::Read { .. } => ApiError::internal(message),
        }
    }
}

/// Reading providers.
#[derive(Default)]
pub struct ProvidersQuery;

#[Object]
impl ProvidersQuery {
    /// The providers of `providers.yaml` with where each stands: reachable, last sync,
    /// last error, what it offers, a change waiting for review, the upload; never a token.
    async fn providers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProviderInfo>> {
        require(ctx, PEOPLE)?;
        let context = api(ctx);
        let in_force = context.state_in_force().api()?;
        Ok(provider_infos(context, &in_force.state))
    }

    /// The versions this distribution marked as tested on `provider` (asked of it now).
    async fn provider_tested_versions(
        &self,
        ctx: &Context<'_>,
        provider: String,
    ) -> async_graphql::Result<Vec<ServiceVersion>> {
        require(ctx, PEOPLE)?;
        let client = api(ctx).mesh.client(&provider).api()?;
        let tested = client
            .tested_versions_as_consumer()
            .await
            .map_err(|error| forwarded(&provider, error))
            .api()?;
        Ok(ServiceVersion::list(&tested))
    }
}

/// The error of a request forwarded to a provider.
fn forwarded(provider: &str, error: vupdate_client::ClientError) -> ApiError {
    let message = format!("provider `{provider}` answered: {error}");
    if error.is_refused() {
        ApiError::conflict("PROVIDER_REFUSED", message)
    } else if error.is_transient() {
        ApiError::unavailable("PROVIDER_UNAVAILABLE", message)
    } else {
        ApiError::conflict("PROVIDER_ERROR", message)
    }
}

/// Acting on providers.
#[derive(Default)]
pub struct ProvidersMutation;

#[Object]
impl ProvidersMutation {
    /// Takes `provider`'s offer as one commit by the caller on top of `expectedRevision`,
    /// with `comment` as the message (for `autoUpdate: off`, or to take an offer again
    /// after it was undone). Refused with `NOTHING_TO_TAKE` when the offer is what runs.
    async fn take_provider_versions(
        &self,
        ctx: &Context<'_>,
        provider: String,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, PEOPLE)?;
        let context = api(ctx);
        let base = context
            .state_for_edit(expected_revision.clone())
            .await
            .api()?;
        let (offer, plan) = context.mesh.plan(&provider, &base).await.api()?;
        if plan.is_empty() {
            return Err(ApiError::conflict(
                "NOTHING_TO_TAKE",
                format!(
                    "what `{provider}` offers at its revision {} is what runs at {expected_revision}",
                    offer.revision
                ),
            ))
            .api();
        }
        let revision = context
            .commit_edit(principal, plan.edit(&base), expected_revision, comment)
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Marks developer versions as tested by this distribution on `provider` (forwarded:
    /// recorded there under this distribution's name, one commit there); by default the
    /// developer versions this distribution's client versions in force are made from, of
    /// the services the provider offers. Returns the provider's new revision.
    async fn set_provider_tested_versions(
        &self,
        ctx: &Context<'_>,
        provider: String,
        versions: Option<Vec<ServiceVersion>>,
        comment: String,
    ) -> async_graphql::Result<String> {
        require(ctx, PEOPLE)?;
        let context = api(ctx);
        let list: BTreeMap<ServiceName, DeveloperVersion> = match versions {
            Some(versions) => versions
                .into_iter()
                .enumerate()
                .map(|(index, entry)| {
                    Ok((
                        parse_arg(&format!("versions[{index}].service"), &entry.service)?,
                        parse_arg(&format!("versions[{index}].version"), &entry.version)?,
                    ))
                })
                .collect::<Result<_, ApiError>>()
                .api()?,
            None => running_from(context, &provider).api()?,
        };
        if list.is_empty() {
            return Err(ApiError::bad_request(format!(
                "nothing to mark: no versions given, and nothing from `{provider}` runs here"
            )))
            .api();
        }
        let client = context.mesh.client(&provider).api()?;
        client
            .set_tested_versions_as_consumer(&list, &comment)
            .await
            .map_err(|error| forwarded(&provider, error))
            .api()
    }

    /// Sets a provider of `providers.yaml` (created when new) as one commit on top of
    /// `expectedRevision`. `accessTokenSecret` names a secret set with `setSecret`;
    /// `pinnedPublicKey` (`sha256//…`, as the provider prints it) trusts exactly its HTTPS
    /// key, for a provider with a self-signed certificate.
    #[allow(clippy::too_many_arguments)]
    async fn set_provider(
        &self,
        ctx: &Context<'_>,
        provider: String,
        url: String,
        access_token_secret: String,
        test_consumer: Option<String>,
        #[graphql(default = false)] upload_state: bool,
        #[graphql(default_with = "AutoUpdateMode::Off")] auto_update: AutoUpdateMode,
        pinned_public_key: Option<String>,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, ADMINS)?;
        let pinned_public_key = match pinned_public_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(pin) => Some(
                pin.parse()
                    .map_err(|message| ApiError::bad_request(format!("pinnedPublicKey: {message}")))
                    .api()?,
            ),
        };
        let edit = StateEdit::SetProvider {
            name: provider,
            provider: Provider {
                url,
                access_token_secret,
                test_consumer: test_consumer.filter(|t| !t.is_empty()),
                upload_state,
                auto_update: auto_update.into(),
                pinned_public_key,
            },
        };
        let revision = api(ctx)
            .commit_edit(principal, edit, expected_revision, comment)
            .await
            .api()?;
        Ok(revision.into())
    }

    /// Removes a provider of `providers.yaml` as one commit; refused while a service's
    /// `builder` names it.
    async fn remove_provider(
        &self,
        ctx: &Context<'_>,
        provider: String,
        expected_revision: String,
        comment: String,
    ) -> async_graphql::Result<StateRevision> {
        let principal = require(ctx, ADMINS)?;
        let revision = api(ctx)
            .commit_edit(
                principal,
                StateEdit::RemoveProvider(provider),
                expected_revision,
                comment,
            )
            .await
            .api()?;
        Ok(revision.into())
    }
}

/// The developer versions of this distribution's client versions in force, of the
/// services `provider` offers.
fn running_from(
    context: &ApiContext,
    provider: &str,
) -> Result<BTreeMap<ServiceName, DeveloperVersion>, ApiError> {
    let in_force = context.state_in_force()?;
    if !in_force.state.providers.contains_key(provider) {
        return Err(MeshError::NoProvider(provider.to_owned()).into());
    }
    let offered = context
        .mesh
        .board()
        .get(provider)
        .and_then(|status| status.offer)
        .map(|offer| offer.versions)
        .ok_or_else(|| MeshError::NoOffer(provider.to_owned()))?;
    Ok(in_force
        .state
        .effective_client_versions()
        .into_iter()
        .filter(|(service, _)| offered.contains_key(service))
        .map(|(service, version)| (service, version.developer))
        .collect())
}
