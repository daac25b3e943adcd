//! Self-update of the distribution: when the desired client version of the service
//! `distribution` changes, this server replaces its own program and keeps serving.
//!
//! 1. [`stage`]: the version's image (built here like any service, or taken from a
//!    provider) is re-hashed against its SHA-256 and its `bin/vupdate` written, mode
//!    0755, next to the running binary as `<binary>.new-<version>`.
//! 2. [`probe`]: the staged binary runs `distribution probe --config …` (config parsed,
//!    store checked read-only, version printed) within [`SelfUpdateOptions::probe_timeout`].
//!    A failure keeps the old binary, is recorded with its reason (`status { selfUpdate }`
//!    and the log), and the version is not tried again until another one is desired.
//! 3. The `Follower` then hands a [`Ready`] to the program (`vupdate distribution run`),
//!    which keeps `<binary>.previous` ([`swap::keep_previous`]), stops the server (no new
//!    requests; those in flight and their store writes finish; builds are cancelled and
//!    run again by the new process, as after any restart), writes the marker
//!    ([`swap::swap`]: `<data>/self-update.json`, with a deadline), renames the new binary
//!    into place and `execve`s it with the same arguments and the listening socket
//!    ([`swap::exec`]): same pid for systemd, same port, connections wait in the
//!    socket's backlog instead of being refused.
//! 4. The new process confirms itself once healthy (store open, listener bound, a state
//!    in force) before the deadline. A start that finds it died unconfirmed, or a deadline
//!    that passes, puts `<binary>.previous` back and executes it ([`swap::begin`],
//!    [`swap::roll_back`]), recording why.
//!
//! - [`record`]: the file `<data>/self-update.json` and the pure decision [`record::Want`].
//! - [`turn`]: replicas sharing a store swap one at a time, each when it has the turn.

pub mod probe;
pub mod record;
pub mod stage;
pub mod swap;
pub mod turn;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use vupdate_core::service::ServiceName;
use vupdate_images::ImageStore;

use crate::watcher::InForce;
use record::{OutcomeKind, SelfUpdateRecord, Want};
use turn::{Taken, Turns};

/// The service whose client image holds the distribution's program.
pub const SERVICE: &str = "distribution";

/// The start of the line a probed binary prints when it can run here.
pub const PROBE_REPLY: &str = "vupdate-distribution-probe";

/// What goes wrong in a self-update; each names the version and what to look at.
#[derive(Debug, thiserror::Error)]
pub enum SelfUpdateError {
    /// The record file cannot be read or written.
    #[error("self-update record {}: {error}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: String,
    },
    /// The image could not give a runnable binary.
    #[error("cannot stage distribution {version}: {error}")]
    Stage {
        /// The version.
        version: String,
        /// What went wrong.
        error: String,
    },
    /// The new binary failed its probe.
    #[error("the probe of distribution {version} failed: {error}")]
    Probe {
        /// The version.
        version: String,
        /// What went wrong, with what the binary printed.
        error: String,
    },
    /// The binaries could not be swapped or put back.
    #[error("cannot swap in distribution {version}: {error}")]
    Swap {
        /// The version.
        version: String,
        /// What went wrong.
        error: String,
    },
    /// The replicas' turn could not be taken or given back in the store.
    #[error("self-update turn (the store's lease `self-update`): {0}")]
    Turn(vupdate_store::StoreError),
}

/// How this server updates itself; without it (`StartOptions::self_update` unset) the
/// desired `distribution` version is only shown.
#[derive(Debug, Clone)]
pub struct SelfUpdateOptions {
    /// The running program, replaced by the new one.
    pub binary: PathBuf,
    /// The config file the probe is given.
    pub config: PathBuf,
    /// How long the probe may take.
    pub probe_timeout: Duration,
    /// How long the new binary has to confirm itself before it is rolled back.
    pub confirm_window: Duration,
}

impl SelfUpdateOptions {
    /// Options for the program `binary` started on `config`, with the default timeouts.
    pub fn new(binary: PathBuf, config: PathBuf) -> SelfUpdateOptions {
        SelfUpdateOptions {
            binary,
            config,
            probe_timeout: Duration::from_secs(30),
            confirm_window: Duration::from_secs(120),
        }
    }
}

/// A new binary that passed its probe, ready to be swapped in.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Its client version.
    pub version: String,
    /// Where it is staged.
    pub staged: PathBuf,
    /// What its probe printed.
    pub probe: String,
}

/// The record of a running server, shared by the follower, the API and the program;
/// cheap to clone.
#[derive(Debug, Clone)]
pub struct SelfUpdates {
    data_directory: PathBuf,
    record: Arc<Mutex<SelfUpdateRecord>>,
    /// Bumped at each change of the record (a confirmation wakes the follower).
    changed: Arc<watch::Sender<u64>>,
    turns: Turns,
}

impl SelfUpdates {
    /// The record kept in `data_directory`, swapping when `turns` says so.
    pub fn open(data_directory: PathBuf, turns: Turns) -> Result<SelfUpdates, SelfUpdateError> {
        let record = record::load(&data_directory)?;
        Ok(SelfUpdates {
            data_directory,
            record: Arc::new(Mutex::new(record)),
            changed: Arc::new(watch::Sender::new(0)),
            turns,
        })
    }

    /// Takes the replicas' turn for a swap whose new binary has `window` to confirm,
    /// recording it for the process that ends the swap; `Some(holder)` while another
    /// replica (that holder) swaps.
    pub async fn take_turn(&self, window: Duration) -> Result<Option<String>, SelfUpdateError> {
        match self
            .turns
            .take(window)
            .await
            .map_err(SelfUpdateError::Turn)?
        {
            Taken::Alone => Ok(None),
            Taken::Held(turn) => {
                if let Err(error) = self.update(|record| record.turn = Some(turn.clone())) {
                    // Unrecorded, nobody else could give it back.
                    let _ = self.turns.release(&turn).await;
                    return Err(error);
                }
                Ok(None)
            }
            Taken::Busy(holder) => Ok(Some(holder)),
        }
    }

    /// Gives back the turn of a swap that has ended (no swapped-in binary waiting to
    /// confirm), so the next replica swaps; nothing when none is held.
    pub async fn end_turn(&self) -> Result<(), SelfUpdateError> {
        let turn = {
            let record = self.record.lock().expect("the record lock");
            match (&record.turn, &record.pending) {
                (Some(turn), None) => turn.clone(),
                _ => return Ok(()),
            }
        };
        self.turns
            .release(&turn)
            .await
            .map_err(SelfUpdateError::Turn)?;
        tracing::info!(holder = %turn.holder, token = turn.token, "self-update turn given back");
        self.update(|record| {
            if record.turn.as_ref() == Some(&turn) {
                record.turn = None;
            }
        })
    }

    /// The record now.
    pub fn record(&self) -> SelfUpdateRecord {
        self.record.lock().expect("the record lock").clone()
    }

    /// Changes the record with `change` and writes it when it changed.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut SelfUpdateRecord) -> R,
    ) -> Result<R, SelfUpdateError> {
        let mut record = self.record.lock().expect("the record lock");
        let before = record.clone();
        let result = change(&mut record);
        if *record != before {
            if let Err(error) = record::save(&self.data_directory, &record) {
                *record = before;
                return Err(error);
            }
            self.changed.send_modify(|count| *count += 1);
        }
        Ok(result)
    }

    /// Confirms the swapped-in binary running now: its version is the running one.
    pub async fn confirm(&self) -> Result<Option<record::Outcome>, SelfUpdateError> {
        // Where a fault test stops a new binary that would confirm, to kill it there.
        vupdate_crashpoint::reached_async("self-update.before-confirm").await;
        self.update(|record| swap::confirm(record, chrono::Utc::now()))
    }

    /// The data directory the record lives in.
    pub fn data_directory(&self) -> &std::path::Path {
        &self.data_directory
    }
}

/// Follows the desired `distribution` version and prepares each new one.
#[derive(Clone)]
pub(crate) struct Follower {
    pub options: SelfUpdateOptions,
    pub updates: SelfUpdates,
    pub images: ImageStore,
    pub in_force: watch::Receiver<Option<InForce>>,
    pub ready: mpsc::Sender<Ready>,
    pub stopped: watch::Receiver<bool>,
}

/// How often a replica waiting for its turn asks again.
const TURN_RETRY: Duration = Duration::from_secs(2);

impl Follower {
    /// Runs until a new binary is ready (handed over, then this ends) or the server stops.
    pub async fn run(mut self) {
        let service: ServiceName = SERVICE.parse().expect("a valid service name");
        let mut stored = self.images.stored();
        let mut changed = self.updates.changed.subscribe();
        // Staged and probed, kept while this replica waits for its turn.
        let mut staged: Option<Ready> = None;
        // Who had the turn when last asked, so each wait is logged once.
        let mut busy: Option<String> = None;
        loop {
            changed.mark_unchanged();
            // A swap that ended (confirmed, rolled back or failed) gives the turn back.
            if let Err(error) = self.updates.end_turn().await {
                tracing::warn!(%error, "self-update cannot give its turn back yet; it ends on its own");
            }
            // Until a state is in force nothing is known to be desired (a refusal stays).
            let desired = self
                .in_force
                .borrow_and_update()
                .as_ref()
                .map(|in_force| in_force.state.effective_client_versions().remove(&service));
            let want = match &desired {
                None => Want::Nothing,
                Some(desired) => self.want(desired.as_ref()),
            };
            let mut waiting_for_turn = false;
            match (want, desired) {
                (Want::Update(version), Some(Some(desired))) => {
                    if staged
                        .as_ref()
                        .is_some_and(|ready| ready.version != version)
                    {
                        discard(staged.take());
                    }
                    if staged.is_none() {
                        staged = self.stage_and_probe(&version, &desired).await;
                    }
                    if let Some(ready) = staged.take() {
                        match self.updates.take_turn(self.options.confirm_window).await {
                            Ok(None) => {
                                tracing::info!(%version, probe = %ready.probe, "self-update ready: the server stops and the new binary takes over");
                                let _ = self.ready.send(ready).await;
                                return;
                            }
                            Ok(Some(holder)) => {
                                if busy.as_ref() != Some(&holder) {
                                    tracing::info!(%version, %holder, "self-update waits for its turn: another replica is swapping");
                                    busy = Some(holder);
                                }
                            }
                            Err(error) => {
                                tracing::warn!(%version, %error, "self-update ready, but cannot take its turn; asking again");
                            }
                        }
                        staged = Some(ready);
                        waiting_for_turn = true;
                    }
                }
                _ => discard(staged.take()),
            }
            tokio::select! {
                changed = self.in_force.changed() => if changed.is_err() { return },
                changed = stored.changed() => if changed.is_err() { return },
                // A confirmation (the pending swap cleared) may leave a newer version to take.
                _ = changed.changed() => {}
                _ = tokio::time::sleep(TURN_RETRY), if waiting_for_turn => {}
                _ = self.stopped.wait_for(|stop| *stop) => {
                    discard(staged.take());
                    return;
                }
            }
        }
    }

    /// Stages and probes `version`: the binary ready to swap in, or `None` while it has no
    /// image or when it failed (recorded, and refused while it stays desired).
    async fn stage_and_probe(
        &self,
        version: &str,
        desired: &vupdate_core::version::ClientVersion,
    ) -> Option<Ready> {
        let span = tracing::info_span!("self_update", %version);
        match tracing::Instrument::instrument(self.prepare(desired), span).await {
            Ok(Some(ready)) => Some(ready),
            Ok(None) => {
                tracing::info!(%version, "self-update waits for the image of distribution {version}");
                None
            }
            Err((kind, error)) => {
                tracing::error!(%version, %error, "self-update failed; the running binary stays");
                let now = chrono::Utc::now();
                if let Err(error) = self
                    .updates
                    .update(|r| r.fail(version, kind, error.to_string(), now))
                {
                    tracing::error!(%error, "self-update cannot record its failure");
                }
                None
            }
        }
    }

    /// What to do about `desired`, the refusal forgotten (and written) when another
    /// version is desired.
    fn want(&self, desired: Option<&vupdate_core::version::ClientVersion>) -> Want {
        let desired = desired.map(ToString::to_string);
        match self.updates.update(|r| r.want(desired.as_deref())) {
            Ok(want) => want,
            Err(error) => {
                tracing::error!(%error, "self-update cannot write its record; it waits for the next change");
                Want::Nothing
            }
        }
    }

    /// Stages and probes `version`; `Ok(None)` while it has no image.
    async fn prepare(
        &self,
        version: &vupdate_core::version::ClientVersion,
    ) -> Result<Option<Ready>, (OutcomeKind, SelfUpdateError)> {
        let staged = stage::stage(&self.images, version, &self.options.binary)
            .await
            .map_err(|error| (OutcomeKind::FetchFailed, error))?;
        let Some(staged) = staged else {
            return Ok(None);
        };
        let text = version.to_string();
        match probe::probe(
            &staged,
            &self.options.config,
            self.options.probe_timeout,
            &text,
        )
        .await
        {
            Ok(probe) => Ok(Some(Ready {
                version: text,
                staged,
                probe,
            })),
            Err(error) => {
                let _ = std::fs::remove_file(&staged);
                Err((OutcomeKind::ProbeFailed, error))
            }
        }
    }
}

/// Removes the staged binary of a swap that will not happen.
fn discard(ready: Option<Ready>) {
    if let Some(ready) = ready {
        let _ = std::fs::remove_file(&ready.staged);
    }
}
