//! Rollouts by waves: when a commit changes the desired client version of a service that
//! has `waves` in `rollout.yaml`, the new version goes to one wave of instances after the
//! other.
//!
//! Flow: each commit in force is compared with the one before (or, after a restart, with
//! the stored rollouts, else with the version its instances report running); a service whose desired version changed gets a rollout record in
//! the store (state `rolling`, the first wave reached). Once a second, every rolling
//! rollout is checked against the stored state reports of its service
//! ([`vupdate_state::waves::step`]): when every instance of the current wave has run the
//! new version for the wave's `healthyFor` (failures within `maxFailures`), the next wave
//! is reached; the last one promoted makes it `done`. Failures beyond `maxFailures` halt
//! it: later waves never get the version, and the rollbacks are recorded as known-bad,
//! which applies the service's `onFailure` ([`crate::known_bad`]).
//!
//! What an instance gets is decided in one place, [`vupdate_state::waves::desired_for`],
//! which [`Rollouts::desired_for`] feeds with the rollouts and the instance's labels
//! (from its state reports, read from the store for each rollout that starts, or resumes
//! at start): a subscribed instance whose
//! labels become known or change under a rollout is answered again
//! ([`Rollouts::relabeled`]), so a VM that joins a reached wave mid-rollout gets the new
//! version. Rollbacks of a version under a rollout that has not halted
//! are the rollout's to count (within `maxFailures` they are allowed), so they are not
//! recorded as known-bad.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_state::State;
use vupdate_state::waves::{Member, Progress, Step, Wave, WaveCount, step, wave_of};
use vupdate_store::model::rollouts::{RolloutRecord, RolloutState, WaveTimes};
use vupdate_store::model::states::{ServiceStateRecord, StateQuery};
use vupdate_store::{Store, StoreError};

use crate::graphql::desired_list::DesiredList;
use crate::known_bad::KnownBad;
use crate::watcher::InForce;

/// How often rolling rollouts are checked against the state reports.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The rollouts of this distribution, by service.
pub type Current = Arc<BTreeMap<ServiceName, RolloutRecord>>;

/// Labels of instances, by instance name.
type Labels = BTreeMap<String, BTreeMap<String, String>>;

/// This distribution's rollouts: started on commits, advanced from state reports, read by
/// `clientDesiredVersions` and `status`; cheap to clone.
#[derive(Clone)]
pub struct Rollouts {
    distribution: String,
    store: Store,
    in_force: watch::Receiver<Option<InForce>>,
    known_bad: KnownBad,
    state_lifetime: Duration,
    current: Arc<watch::Sender<Current>>,
    /// The commit in force once its rollouts are started: what instances are answered
    /// from, so none gets a new version before its rollout exists.
    processed: Arc<watch::Sender<Option<InForce>>>,
    labels: Arc<RwLock<Labels>>,
    /// Bumped when an instance's labels become known or change while a rollout is under
    /// way: its wave, so its list, may change with them.
    relabeled: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts")
            .field("distribution", &self.distribution)
            .finish_non_exhaustive()
    }
}

/// One wave of a rollout as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveView {
    /// The wave's times.
    pub times: WaveTimes,
    /// Its instances counted now.
    pub count: WaveCount,
}

impl Rollouts {
    /// Reads the stored rollouts of `distribution` and starts following commits and
    /// state reports.
    pub async fn start(
        distribution: String,
        store: Store,
        in_force: watch::Receiver<Option<InForce>>,
        known_bad: KnownBad,
        state_lifetime: Duration,
    ) -> Result<Rollouts, StoreError> {
        let stored = store.rollouts().list(&distribution).await?;
        let current: BTreeMap<ServiceName, RolloutRecord> = stored
            .into_iter()
            .map(|record| (record.service.clone(), record))
            .collect();
        let rollouts = Rollouts {
            distribution,
            store,
            in_force,
            known_bad,
            state_lifetime,
            current: Arc::new(watch::Sender::new(Arc::new(current))),
            processed: Arc::new(watch::Sender::new(None)),
            labels: Arc::default(),
            relabeled: Arc::new(watch::Sender::new(0)),
        };
        rollouts.recall_labels().await?;
        tokio::spawn(rollouts.clone().run());
        Ok(rollouts)
    }

    /// The commit in force, once the rollouts it starts are stored: desired versions are
    /// answered from it.
    pub fn in_force(&self) -> watch::Receiver<Option<InForce>> {
        self.processed.subscribe()
    }

    /// Bumped when instances' labels become known or change while a rollout is under
    /// way ([`Rollouts::labels_of`] says whose).
    pub fn relabeled(&self) -> watch::Receiver<u64> {
        self.relabeled.subscribe()
    }

    /// The rollouts, updated at each change (a start, a wave reached, a halt).
    pub fn current(&self) -> watch::Receiver<Current> {
        self.current.subscribe()
    }

    /// `versions` (desired, known-bad versions left out) as `instance` gets them: a
    /// service under a rollout gives the new version only to instances of waves reached.
    /// An instance that does not say who it is counts as one of the last wave.
    pub fn desired_for(
        &self,
        state: &State,
        instance: Option<&str>,
        versions: BTreeMap<ServiceName, ClientVersion>,
    ) -> BTreeMap<ServiceName, ClientVersion> {
        let current = self.current.borrow().clone();
        let progress: BTreeMap<ServiceName, Progress> = current
            .iter()
            .filter(|(service, record)| {
                record.state != RolloutState::Done && !state.rollout.waves(service).is_empty()
            })
            .map(|(service, record)| {
                let progress = Progress {
                    from: record.from_version.clone(),
                    to: record.to_version.clone(),
                    reached: record.current_wave,
                };
                (service.clone(), progress)
            })
            .collect();
        if progress.is_empty() {
            return versions;
        }
        let labels = instance
            .and_then(|instance| self.labels_of(instance))
            .unwrap_or_default();
        vupdate_state::waves::desired_for(versions, &progress, |service| {
            let waves = state.rollout.waves(service);
            match instance {
                Some(instance) => wave_of(waves, instance, &labels),
                None => waves.len().saturating_sub(1),
            }
        })
    }

    /// `list` (the desired list every updater shares) as `instance` gets it: the shared
    /// list itself unless a service in it is under a rollout whose new version this
    /// instance's wave has not reached yet; then a copy with that service at the old one.
    pub fn list_for(
        &self,
        state: &State,
        instance: Option<&str>,
        list: &DesiredList,
    ) -> DesiredList {
        // From the few rollouts under way, not the whole list: with none, every subscriber
        // gets the shared list without parsing a name.
        let rolling: BTreeMap<ServiceName, ClientVersion> = {
            let current = self.current.borrow();
            current
                .iter()
                .filter(|(_, record)| record.state != RolloutState::Done)
                .filter_map(|(service, _)| {
                    let item = list.iter().find(|item| item.service == service.as_str())?;
                    Some((service.clone(), item.version.parse().ok()?))
                })
                .collect()
        };
        if rolling.is_empty() {
            return Arc::clone(list);
        }
        let versions = self.desired_for(state, instance, rolling.clone());
        if versions == rolling {
            return Arc::clone(list);
        }
        list.iter()
            .map(|item| {
                let mut item = item.clone();
                if let Some(version) = item
                    .service
                    .parse::<ServiceName>()
                    .ok()
                    .and_then(|service| versions.get(&service))
                {
                    item.version = version.to_string();
                }
                item
            })
            .collect()
    }

    /// Takes note of a state report: the instances' labels, and which rollbacks it names
    /// are for [`KnownBad::record`] (all but those of a version under a rollout that has
    /// not halted: those the rollout counts against `maxFailures`).
    pub fn reported(&self, records: &[ServiceStateRecord]) -> Vec<ServiceStateRecord> {
        self.note_labels(records);
        let current = self.current.borrow().clone();
        records
            .iter()
            .filter(|record| {
                record.state.failed_version.as_ref().is_some_and(|failed| {
                    record.distribution != self.distribution
                        || !current.get(&record.service).is_some_and(|rollout| {
                            rollout.to_version == *failed && rollout.state != RolloutState::Halted
                        })
                })
            })
            .cloned()
            .collect()
    }

    /// Each rollout with its waves counted now, by service.
    pub async fn view(&self) -> Result<Vec<(RolloutRecord, Vec<WaveView>)>, StoreError> {
        let current = self.current.borrow().clone();
        let state = self
            .in_force
            .borrow()
            .as_ref()
            .map(|in_force| Arc::clone(&in_force.state));
        let now = self.store.now();
        let mut views = Vec::new();
        for record in current.values() {
            let waves = state
                .as_ref()
                .map(|state| state.rollout.waves(&record.service).to_vec())
                .unwrap_or_default();
            let (members, _) = self.members(record, &waves).await?;
            let counts = record
                .waves
                .iter()
                .enumerate()
                .map(|(index, times)| WaveView {
                    times: times.clone(),
                    count: waves
                        .iter()
                        .find(|wave| wave.name == times.name)
                        .map(|wave| WaveCount::of(wave, &in_wave(&members, index), now))
                        .unwrap_or_default(),
                })
                .collect();
            views.push((record.clone(), counts));
        }
        Ok(views)
    }

    /// Reads the labels of the instances of services under a rollout from their stored
    /// states, so a restarted server answers each from its wave before it reports again.
    /// (A rollout that starts later reads its service's, [`Rollouts::on_commit`].)
    async fn recall_labels(&self) -> Result<(), StoreError> {
        let current = self.current.borrow().clone();
        for record in current.values() {
            if record.state == RolloutState::Done {
                continue;
            }
            let reports = self.reports(&record.service).await?;
            self.note_labels(&reports);
        }
        Ok(())
    }

    /// When a state report must be newer than to count as alive.
    fn alive_since(&self) -> DateTime<Utc> {
        self.store.now()
            - chrono::TimeDelta::from_std(self.state_lifetime).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// The stored state reports of `service` by this distribution's instances.
    async fn reports(&self, service: &ServiceName) -> Result<Vec<ServiceStateRecord>, StoreError> {
        let reports = self
            .store
            .service_states()
            .query(&StateQuery {
                distribution: Some(self.distribution.clone()),
                service: Some(service.clone()),
                ..StateQuery::default()
            })
            .await?;
        Ok(reports.into_iter().map(|stored| stored.record).collect())
    }

    /// The labels `instance` last reported, if known.
    pub fn labels_of(&self, instance: &str) -> Option<BTreeMap<String, String>> {
        self.labels
            .read()
            .expect("the labels lock is never poisoned")
            .get(instance)
            .cloned()
    }

    /// Keeps the labels of this distribution's instances (a consumer's instances are its
    /// own waves' business).
    fn note_labels(&self, records: &[ServiceStateRecord]) {
        let ours = |record: &&ServiceStateRecord| record.distribution == self.distribution;
        let changed = records
            .iter()
            .filter(ours)
            .any(|record| self.labels_of(&record.instance).as_ref() != Some(&record.labels));
        if !changed {
            return;
        }
        {
            let mut labels = self
                .labels
                .write()
                .expect("the labels lock is never poisoned");
            for record in records.iter().filter(ours) {
                labels.insert(record.instance.clone(), record.labels.clone());
            }
        }
        // Without a rollout under way every instance gets the same list, labels or not.
        let rolling = self
            .current
            .borrow()
            .values()
            .any(|record| record.state != RolloutState::Done);
        if rolling {
            self.relabeled.send_modify(|count| *count += 1);
        }
    }

    async fn run(self) {
        let mut in_force = self.in_force.clone();
        // The desired versions of the last commit seen; none yet: at start, what instances
        // run stands for them (stored rollouts resume).
        let mut last: BTreeMap<ServiceName, ClientVersion> = BTreeMap::new();
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let first = in_force.borrow_and_update().clone();
        if let Some(first) = first {
            last = self.on_commit(&first, last).await;
            self.processed.send_replace(Some(first));
        }
        loop {
            tokio::select! {
                changed = in_force.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let now = in_force.borrow_and_update().clone();
                    if let Some(now) = &now {
                        last = self.on_commit(now, last).await;
                    }
                    self.processed.send_replace(now);
                }
                _ = check.tick() => {
                    if let Err(error) = self.check().await {
                        tracing::error!(%error, "cannot check the rollouts");
                    }
                }
            }
        }
    }

    /// Starts a rollout for each service with waves whose desired version `in_force`
    /// changes; returns its desired versions.
    async fn on_commit(
        &self,
        in_force: &InForce,
        last: BTreeMap<ServiceName, ClientVersion>,
    ) -> BTreeMap<ServiceName, ClientVersion> {
        let desired = in_force.state.effective_client_versions();
        let current = self.current.borrow().clone();
        for (service, to) in &desired {
            let waves = in_force.state.rollout.waves(service);
            if waves.is_empty() {
                continue;
            }
            let existing = current.get(service);
            if existing.is_some_and(|rollout| rollout.to_version == *to) {
                continue;
            }
            // What the waves not yet reached keep: what the last rollout left everywhere
            // (its old version unless it was done), else the version desired before, else
            // (the first commit since this server started: pushed while it was stopped)
            // what its instances run.
            let from = match existing {
                Some(rollout) if rollout.state == RolloutState::Done => {
                    Some(rollout.to_version.clone())
                }
                Some(rollout) => Some(rollout.from_version.clone()),
                None => match last.get(service) {
                    Some(before) if before != to => Some(before.clone()),
                    Some(_) => continue,
                    None => None,
                },
            };
            // Its instances' labels too, so each is answered from its wave as soon as the
            // rollout is stored (a restarted server has heard few of them yet).
            let reports = match self.reports(service).await {
                Ok(reports) => reports,
                Err(error) if from.is_none() => {
                    tracing::error!(%service, %error, "cannot read what instances run; the new version goes to every wave");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%service, %error, "cannot read the instances' labels; each is answered from its wave once it reports");
                    Vec::new()
                }
            };
            self.note_labels(&reports);
            let from = match from {
                Some(from) => from,
                None => match most_run(&reports, self.alive_since()) {
                    Some(running) if running != *to => running,
                    _ => continue,
                },
            };
            let record = new_rollout(
                &self.distribution,
                service,
                &from,
                to,
                &in_force.revision.id,
                waves,
                self.store.now(),
            );
            tracing::info!(
                %service, from = %record.from_version, to = %record.to_version,
                commit = %record.commit, wave = %record.waves[0].name,
                "rollout started"
            );
            if let Err(error) = self.save(record).await {
                tracing::error!(%service, %error, "cannot store the rollout");
            }
        }
        desired
    }

    /// Advances or halts every rolling rollout by its state reports.
    async fn check(&self) -> Result<(), StoreError> {
        let Some(state) = self
            .in_force
            .borrow()
            .as_ref()
            .map(|in_force| Arc::clone(&in_force.state))
        else {
            return Ok(());
        };
        let rolling: Vec<RolloutRecord> = self
            .current
            .borrow()
            .values()
            .filter(|record| record.state == RolloutState::Rolling)
            .cloned()
            .collect();
        for record in rolling {
            let waves = state.rollout.waves(&record.service);
            let (advanced, failed) = self.advance(record.clone(), waves).await?;
            if advanced == record {
                continue;
            }
            let halted = advanced.state == RolloutState::Halted;
            self.save(advanced).await?;
            if halted {
                // Now known-bad: held back from everyone, and `onFailure` applies.
                self.known_bad.record(&failed).await?;
            }
        }
        Ok(())
    }

    /// `record` moved on as far as its state reports allow; with the failed instances'
    /// reports.
    async fn advance(
        &self,
        mut record: RolloutRecord,
        waves: &[Wave],
    ) -> Result<(RolloutRecord, Vec<ServiceStateRecord>), StoreError> {
        if waves.is_empty() {
            // rollout.yaml no longer has waves for it: every instance gets it.
            record.state = RolloutState::Done;
            return Ok((record, Vec::new()));
        }
        align(&mut record, waves, self.store.now());
        let (members, failed) = self.members(&record, waves).await?;
        let now = self.store.now();
        let service = record.service.clone();
        loop {
            let index = record.current_wave;
            let wave = &waves[index];
            let in_wave = in_wave(&members, index);
            match step(wave, &in_wave, now) {
                Step::Wait => break,
                Step::Promote => {
                    record.waves[index].promoted_at = Some(now);
                    if index + 1 == waves.len() {
                        record.state = RolloutState::Done;
                        tracing::info!(%service, to = %record.to_version, "rollout done");
                        break;
                    }
                    record.current_wave = index + 1;
                    record.waves[index + 1].reached_at = Some(now);
                    tracing::info!(
                        %service, to = %record.to_version, wave = %waves[index + 1].name,
                        "rollout reached the next wave"
                    );
                }
                Step::Halt { failed, allowed } => {
                    let because = format!(
                        "{failed} of {} instances of wave `{}` rolled {} back; maxFailures {} allows {allowed}",
                        in_wave.len(),
                        wave.name,
                        record.to_version,
                        wave.max_failures
                    );
                    tracing::warn!(%service, to = %record.to_version, %because, "rollout halted");
                    record.state = RolloutState::Halted;
                    record.halted_because = Some(because);
                    break;
                }
            }
        }
        let failed_in_wave = failed
            .into_iter()
            .filter(|report| {
                members.iter().any(|(wave, member)| {
                    *wave == record.current_wave && member.instance == report.instance
                })
            })
            .collect();
        Ok((record, failed_in_wave))
    }

    /// The live instances reporting `record`'s service, each with its wave (in `waves`)
    /// and what its reports say of the new version; and the reports of rollbacks of it.
    async fn members(
        &self,
        record: &RolloutRecord,
        waves: &[Wave],
    ) -> Result<(Vec<(usize, Member)>, Vec<ServiceStateRecord>), StoreError> {
        let alive_since = self.alive_since();
        let reports: Vec<ServiceStateRecord> = self
            .reports(&record.service)
            .await?
            .into_iter()
            .filter(|report| report.state.time >= alive_since)
            .collect();
        self.note_labels(&reports);
        let to = &record.to_version;
        // Every directory of an instance (a service in several roles) must run it.
        let mut by_instance: BTreeMap<&str, (Option<DateTime<Utc>>, bool, bool)> = BTreeMap::new();
        for report in &reports {
            let state = &report.state;
            let entry = by_instance
                .entry(&report.instance)
                .or_insert((None, true, false));
            if state.failed_version.as_ref() == Some(to) {
                entry.2 = true;
            }
            if state.version.as_ref() == Some(to) && state.update_to_version.is_none() {
                let since = state
                    .start_time
                    .or(state.install_time)
                    .unwrap_or(state.time);
                entry.0 = Some(entry.0.map_or(since, |earlier| earlier.max(since)));
            } else {
                entry.1 = false;
            }
        }
        let members = by_instance
            .into_iter()
            .map(|(instance, (since, all_run, failed))| {
                let labels = reports
                    .iter()
                    .find(|report| report.instance == instance)
                    .map(|report| report.labels.clone())
                    .unwrap_or_default();
                let member = Member {
                    instance: instance.to_owned(),
                    running_since: since.filter(|_| all_run),
                    failed,
                };
                (wave_of(waves, instance, &labels), member)
            })
            .collect();
        let failed = reports
            .iter()
            .filter(|report| report.state.failed_version.as_ref() == Some(to))
            .cloned()
            .collect();
        Ok((members, failed))
    }

    async fn save(&self, record: RolloutRecord) -> Result<(), StoreError> {
        self.store.rollouts().put(&record).await?;
        self.current.send_modify(|current| {
            Arc::make_mut(current).insert(record.service.clone(), record);
        });
        Ok(())
    }
}

/// The version most of the live instances of `reports` (newer than `alive_since`) run,
/// if any reports one.
fn most_run(reports: &[ServiceStateRecord], alive_since: DateTime<Utc>) -> Option<ClientVersion> {
    let mut counts: BTreeMap<&ClientVersion, usize> = BTreeMap::new();
    for report in reports
        .iter()
        .filter(|report| report.state.time >= alive_since)
    {
        if let Some(version) = &report.state.version {
            *counts.entry(version).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, count)| *count)
        .map(|(version, _)| version.clone())
}

/// The members of wave `index`.
fn in_wave(members: &[(usize, Member)], index: usize) -> Vec<Member> {
    members
        .iter()
        .filter(|(wave, _)| *wave == index)
        .map(|(_, member)| member.clone())
        .collect()
}

/// A new rollout of `service` from `from` to `to`, its first wave reached at `now`.
fn new_rollout(
    distribution: &str,
    service: &ServiceName,
    from: &ClientVersion,
    to: &ClientVersion,
    commit: &str,
    waves: &[Wave],
    now: DateTime<Utc>,
) -> RolloutRecord {
    let mut times: Vec<WaveTimes> = waves
        .iter()
        .map(|wave| WaveTimes {
            name: wave.name.clone(),
            reached_at: None,
            promoted_at: None,
        })
        .collect();
    times[0].reached_at = Some(now);
    RolloutRecord {
        distribution: distribution.to_owned(),
        service: service.clone(),
        from_version: from.clone(),
        to_version: to.clone(),
        commit: commit.to_owned(),
        state: RolloutState::Rolling,
        current_wave: 0,
        waves: times,
        started_at: now,
        halted_because: None,
    }
}

/// Fits `record`'s waves to `waves` when `rollout.yaml` changed them during the rollout:
/// a wave keeps its times by name, and the rollout stays at the wave it had reached (or
/// the last one, when fewer are left).
fn align(record: &mut RolloutRecord, waves: &[Wave], now: DateTime<Utc>) {
    let same = record.waves.len() == waves.len()
        && record
            .waves
            .iter()
            .zip(waves)
            .all(|(times, wave)| times.name == wave.name);
    if same {
        return;
    }
    let reached = record.waves[record.current_wave].name.clone();
    let old = std::mem::take(&mut record.waves);
    record.waves = waves
        .iter()
        .map(|wave| {
            old.iter()
                .find(|times| times.name == wave.name)
                .cloned()
                .unwrap_or(WaveTimes {
                    name: wave.name.clone(),
                    reached_at: None,
                    promoted_at: None,
                })
        })
        .collect();
    let kept = record.current_wave.min(waves.len() - 1);
    record.current_wave = waves
        .iter()
        .position(|wave| wave.name == reached)
        .unwrap_or(kept);
    let index = record.current_wave;
    record.waves[index].reached_at.get_or_insert(now);
}
