//! Taking one provider's offer, each time the offer, the state in force or the stored
//! images change:
//!
//! 1. [`plan_offer`] says what the offer changes here: for each declared service whose
//!    client version in force is not made from the offered developer version, the client
//!    version to desire (the newest made here of that developer version, else the first).
//! 2. The developer images this distribution lacks are downloaded from the provider
//!    (resumed after a cut, SHA-256 checked, through vupdate-client), stored, and recorded
//!    as foreign developer versions with the provider's build record.
//! 3. The reconcile loop is asked for the client images that do not exist yet; it builds
//!    them with this distribution's own client settings, as any client build.
//! 4. Once every client image exists, `autoUpdate` says what happens, once per provider
//!    revision (remembered across restarts, so a person's later change is never fought):
//!    `commit` commits the new desired client versions on the branch tip, authored as the
//!    provider, the message naming its revision; `pullRequest` pushes the same change to
//!    `vupdate/<provider>/<revision>` (replacing older such branches, but keeping the one
//!    waiting when a newer revision proposes the same change) and the status says a change
//!    waits until it is merged; `off` only shows the offer, which
//!    `takeProviderVersions` takes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use vupdate_backoff::Backoff;
use vupdate_client::{ImageRef, Offer};
use vupdate_core::reconcile::BuildKey;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{AutoUpdate, State, StateEdit};
use vupdate_store::model::versions::{BuildInfo, DeveloperVersionRecord, SourceRef};

use super::memory::{OfferMemory, Proposal};
use super::plan::{OfferPlan, message, plan_offer};
use super::worker::Worker;
use crate::graphql::TIP_ATTEMPTS;
use crate::images::{ImageError, ImageVersion};
use crate::reconcile::{BuildState, newest_record};
use crate::watcher::InForce;

/// The first wait after a step failed (a download cut, a commit refused).
const RETRY_INITIAL: Duration = Duration::from_secs(1);
/// The longest wait between failed steps.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Takes `worker`'s provider's offers until the task is dropped.
pub async fn take(worker: Arc<Worker>, mut offers: watch::Receiver<Option<Offer>>) {
    let mut in_force = worker.parts.in_force.clone();
    let mut stored = worker.parts.images.stored();
    let mut reconcile = worker.parts.reconcile.subscribe();
    let mut backoff = Backoff::new(RETRY_INITIAL, RETRY_MAX);
    loop {
        let offer = offers.borrow_and_update().clone();
        let state = in_force.borrow_and_update().clone();
        stored.borrow_and_update();
        reconcile.borrow_and_update();
        let retry = match (offer, state) {
            (Some(offer), Some(state)) => match step(&worker, &offer, &state).await {
                Ok(()) => {
                    backoff.reset();
                    None
                }
                Err(message) => {
                    tracing::warn!(provider = %worker.name, %message, "cannot take the provider's offer yet");
                    worker.parts.board.update(&worker.name, |status| {
                        status.preparing = Some(message);
                    });
                    Some(backoff.next_delay())
                }
            },
            _ => None,
        };
        let wait = async {
            match retry {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = offers.changed() => if changed.is_err() { return },
            changed = in_force.changed() => if changed.is_err() { return },
            _ = stored.changed() => {}
            _ = reconcile.changed() => {}
            () = wait => {}
        }
    }
}

/// The client version to desire for each offered developer version: the newest made here
/// of it, else the first.
pub async fn candidates(
    worker: &Worker,
    offered: &BTreeMap<ServiceName, DeveloperVersion>,
) -> Result<BTreeMap<ServiceName, ClientVersion>, String> {
    let mut candidates = BTreeMap::new();
    for (service, developer) in offered {
        let newest = newest_record(&worker.parts.store, service, developer)
            .await
            .map_err(|error| format!("cannot read the client versions of {service}: {error}"))?;
        let version = newest.map_or_else(|| ClientVersion::first(developer.clone()), |r| r.version);
        candidates.insert(service.clone(), version);
    }
    Ok(candidates)
}

/// What `offer` changes in `state`, with the client versions [`candidates`] names.
pub fn plan(
    state: &State,
    offer: &Offer,
    candidates: &BTreeMap<ServiceName, ClientVersion>,
) -> OfferPlan {
    plan_offer(state, &offer.versions, |service, developer| {
        candidates
            .get(service)
            .filter(|version| &version.developer == developer)
            .cloned()
            .unwrap_or_else(|| ClientVersion::first(developer.clone()))
    })
}

/// The plan, edit and commit message that take `offer` on top of `state`; `None` when it
/// changes nothing there.
fn taking(
    provider: &str,
    offer: &Offer,
    candidates: &BTreeMap<ServiceName, ClientVersion>,
    state: &State,
) -> Option<(OfferPlan, StateEdit, String)> {
    let plan = plan(state, offer, candidates);
    if plan.is_empty() {
        return None;
    }
    let text = message(
        provider,
        &offer.revision,
        offer.test_consumer.as_deref(),
        state,
        &plan,
    );
    let edit = plan.edit(state);
    Some((plan, edit, text))
}

/// One look at the offer in the state in force (the module docs say what it does).
async fn step(worker: &Worker, offer: &Offer, in_force: &InForce) -> Result<(), String> {
    let parts = &worker.parts;
    let state = &in_force.state;
    let candidates = candidates(worker, &offer.versions).await?;
    let plan = plan(state, offer, &candidates);
    let memory = worker.memory.offer();
    let waiting = memory
        .proposal
        .clone()
        .filter(|proposal| !merged(proposal, state));
    parts.board.update(&worker.name, |status| {
        status.pending = plan.change.clone();
        status.undeclared = plan.undeclared.clone();
        status.waiting = waiting;
        status.acted = memory.acted.clone();
    });
    if plan.is_empty() {
        parts
            .reconcile
            .want_clients(&worker.source(), BTreeMap::new());
        parts
            .board
            .update(&worker.name, |status| status.preparing = None);
        return Ok(());
    }
    for (service, client) in &plan.change {
        ensure_developer(worker, service, &client.developer).await?;
    }
    let mut missing = BTreeMap::new();
    for (service, client) in &plan.change {
        let image = ImageVersion::Client(client.clone());
        let exists = parts
            .images
            .info(service, &image)
            .await
            .map_err(|error| error.to_string())?
            .is_some();
        if !exists {
            missing.insert(service.clone(), client.clone());
        }
    }
    if !missing.is_empty() {
        let preparing = describe_builds(worker, &missing);
        parts.reconcile.want_clients(&worker.source(), missing);
        parts
            .board
            .update(&worker.name, |status| status.preparing = Some(preparing));
        return Ok(());
    }
    parts
        .reconcile
        .want_clients(&worker.source(), BTreeMap::new());
    parts
        .board
        .update(&worker.name, |status| status.preparing = None);
    if memory.acted.as_deref() == Some(offer.revision.as_str()) {
        return Ok(());
    }
    match worker.provider.auto_update {
        AutoUpdate::Off => Ok(()),
        AutoUpdate::Commit => commit(worker, offer, candidates, memory).await,
        AutoUpdate::PullRequest => propose(worker, offer, candidates, memory).await,
    }
}

/// Whether the state in force runs every client version `proposal` desires.
fn merged(proposal: &Proposal, state: &State) -> bool {
    let in_force = state.effective_client_versions();
    proposal.versions.iter().all(|(service, version)| {
        in_force
            .iter()
            .any(|(s, v)| s.as_str() == service && v.to_string() == *version)
    })
}

/// What the status says while client images are missing: building, or why a build failed.
fn describe_builds(worker: &Worker, missing: &BTreeMap<ServiceName, ClientVersion>) -> String {
    let builds = worker.parts.reconcile.status().builds;
    let mut parts = Vec::new();
    for (service, version) in missing {
        let key = BuildKey::Client(service.clone(), version.clone());
        parts.push(match builds.get(&key) {
            Some(BuildState::Failed { task, message }) => {
                format!("the client build of {service} {version} failed (task {task}): {message}")
            }
            Some(BuildState::Running { task }) => {
                format!("building client version {version} of {service} (task {task})")
            }
            _ => format!("client version {version} of {service} waits for its build"),
        });
    }
    parts.join("; ")
}

/// Stores the developer image of `developer` from the provider and records it, unless
/// this distribution has it.
async fn ensure_developer(
    worker: &Worker,
    service: &ServiceName,
    developer: &DeveloperVersion,
) -> Result<(), String> {
    let parts = &worker.parts;
    let image = ImageVersion::Developer(developer.clone());
    let have = parts
        .images
        .info(service, &image)
        .await
        .map_err(|error| error.to_string())?;
    let recorded = parts
        .store
        .developer_versions()
        .get(service, developer)
        .await
        .map_err(|error| error.to_string())?
        .is_some();
    if have.is_some() && recorded {
        return Ok(());
    }
    let client = worker.client().map_err(|error| error.to_string())?;
    let info = match have {
        Some(info) => info,
        None => {
            let dir = parts
                .data_directory
                .join("mesh")
                .join(&worker.name)
                .join("downloads");
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
            let path = dir.join(format!("{service}-{developer}.zip"));
            let image_ref = ImageRef::developer(service, developer);
            parts.board.update(&worker.name, |status| {
                status.preparing = Some(format!("downloading {image_ref}"));
            });
            let downloaded = client
                .download_image(&image_ref, &path)
                .await
                .map_err(|error| {
                    format!("cannot download {image_ref} from {}: {error}", worker.name)
                })?;
            let stored = match parts.images.put_file(service, &image, &path).await {
                Ok(info) => info,
                // Stored meanwhile (a restart that had finished this step): the same image.
                Err(ImageError::VersionExists { .. }) => parts
                    .images
                    .info(service, &image)
                    .await
                    .map_err(|error| error.to_string())?
                    .ok_or_else(|| format!("{image_ref} vanished while it was stored"))?,
                Err(error) => return Err(format!("cannot store {image_ref}: {error}")),
            };
            let _ = tokio::fs::remove_file(&path).await;
            tracing::info!(provider = %worker.name, %service, %developer, size = downloaded.size, resumed_from = downloaded.resumed_from, "developer image received");
            stored
        }
    };
    if recorded {
        return Ok(());
    }
    let records = client
        .developer_versions_info(service, Some(&developer.to_string()))
        .await
        .map_err(|error| {
            format!(
                "cannot read the record of {developer} of {service} from {}: {error}",
                worker.name
            )
        })?;
    let build_info = match records.into_iter().next() {
        Some(record) => {
            let theirs = crate::images::normalize_sha256(&record.image.digest);
            if theirs.as_deref() != Some(info.hex()) {
                return Err(format!(
                    "{} records developer version {developer} of {service} with image {}, but the image received is {}; it is not used",
                    worker.name, record.image.digest, info.digest
                ));
            }
            BuildInfo {
                author: record.build_info.author,
                sources: record
                    .build_info
                    .sources
                    .into_iter()
                    .map(|s| SourceRef {
                        name: s.name,
                        url: s.url,
                        branch: s.branch,
                        commit: s.commit,
                    })
                    .collect(),
                time: record.build_info.time,
                comment: record.build_info.comment,
            }
        }
        None => BuildInfo {
            author: worker.source(),
            sources: Vec::new(),
            time: Utc::now(),
            comment: format!("received from {} without a build record", worker.name),
        },
    };
    let record = DeveloperVersionRecord {
        service: service.clone(),
        version: developer.clone(),
        build_info,
        image: vupdate_store::model::versions::ImageInfo {
            digest: info.digest,
            size: info.size,
        },
    };
    match parts.store.developer_versions().add(record).await {
        Ok(_) | Err(vupdate_store::StoreError::Duplicate { .. }) => Ok(()),
        Err(error) => Err(format!("cannot record {developer} of {service}: {error}")),
    }
}

/// Commits the offer's change on the branch tip, authored as the provider.
async fn commit(
    worker: &Worker,
    offer: &Offer,
    candidates: BTreeMap<ServiceName, ClientVersion>,
    mut memory: OfferMemory,
) -> Result<(), String> {
    let repo = Arc::clone(&worker.parts.repo);
    let author = worker.author();
    let (name, offered) = (worker.name.clone(), offer.clone());
    let committed = tokio::task::spawn_blocking(move || {
        repo.edit_tip(TIP_ATTEMPTS, &author, |state| {
            taking(&name, &offered, &candidates, state).map(|(_, edit, text)| (edit, text))
        })
    })
    .await
    .map_err(|error| format!("the commit stopped: {error}"))?
    .map_err(|error| format!("cannot commit {}'s versions: {error}", worker.name))?;
    memory.acted = Some(offer.revision.clone());
    worker
        .memory
        .set_offer(&memory)
        .map_err(|error| format!("cannot remember the commit: {error}"))?;
    acted(worker, offer);
    if let Some(revision) = committed {
        tracing::info!(provider = %worker.name, commit = %revision.id, revision = %offer.revision, "committed the provider's versions");
        worker.parts.trigger.trigger();
        worker.parts.board.update(&worker.name, |status| {
            status.last_taken = Some((revision.id.clone(), Utc::now()));
        });
    }
    Ok(())
}

/// Pushes the offer's change to `vupdate/<provider>/<revision>` for review.
async fn propose(
    worker: &Worker,
    offer: &Offer,
    candidates: BTreeMap<ServiceName, ClientVersion>,
    mut memory: OfferMemory,
) -> Result<(), String> {
    let repo = Arc::clone(&worker.parts.repo);
    let author = worker.author();
    let short: String = offer.revision.chars().take(12).collect();
    let prefix = format!("vupdate/{}/", worker.name);
    let branch = format!("{prefix}{short}");
    let (name, offered, target) = (worker.name.clone(), offer.clone(), branch.clone());
    let earlier = memory.proposal.clone();
    let proposed = tokio::task::spawn_blocking(move || {
        // A provider commit that changes nothing here (the same versions as the proposal
        // still waiting) keeps that branch: replacing it would close the pull request a
        // reviewer may be reading, for the same change under a new name.
        let waiting = match &earlier {
            Some(earlier) => repo
                .waiting_proposals(&prefix)?
                .into_iter()
                .any(|(branch, revision)| branch == earlier.branch && revision.id == earlier.commit)
                .then_some(earlier),
            None => None,
        };
        let mut versions = BTreeMap::new();
        let revision = repo.propose_tip(TIP_ATTEMPTS, &target, &prefix, &author, |state| {
            let (plan, edit, text) = taking(&name, &offered, &candidates, state)?;
            versions = plan
                .change
                .iter()
                .map(|(s, v)| (s.to_string(), v.to_string()))
                .collect();
            if waiting.is_some_and(|waiting| waiting.versions == versions) {
                return None;
            }
            Some((edit, text))
        })?;
        Ok::<_, vupdate_state::StateError>(revision.map(|r| (r, versions)))
    })
    .await
    .map_err(|error| format!("the proposal stopped: {error}"))?
    .map_err(|error| {
        format!(
            "cannot push {}'s versions to {branch}: {error}",
            worker.name
        )
    })?;
    memory.acted = Some(offer.revision.clone());
    if let Some((revision, versions)) = proposed {
        tracing::info!(provider = %worker.name, %branch, commit = %revision.id, "proposed the provider's versions for review");
        let proposal = Proposal {
            branch,
            commit: revision.id,
            revision: offer.revision.clone(),
            versions,
        };
        worker.parts.board.update(&worker.name, |status| {
            status.waiting = Some(proposal.clone());
        });
        memory.proposal = Some(proposal);
    }
    worker
        .memory
        .set_offer(&memory)
        .map_err(|error| format!("cannot remember the proposal: {error}"))?;
    acted(worker, offer);
    Ok(())
}

/// Shows that `offer` was acted on, once that is remembered.
fn acted(worker: &Worker, offer: &Offer) {
    worker.parts.board.update(&worker.name, |status| {
        status.acted = Some(offer.revision.clone());
    });
}
