//! A client generation check as a task: the builder makes the client image from the
//! settings in force and keeps it as the next generation only when its content is new;
//! then the distribution commits `desired/client.yaml` so the fleet follows it.
//!
//! The steps of one check of service `S` at state commit `C` with settings hash `H`:
//!
//! 1. note the newest client version record of the developer version `D`;
//! 2. run the build runner (`vupdate builder build-client-generation S D`), which builds,
//!    compares the content digest with the newest generation of `D`, and either stops
//!    (unchanged) or uploads `D_N+1` with its record;
//! 3. a record newer than the one noted is the new generation: it is committed as `S`'s
//!    desired client version on top of `C`, authored by the distribution. When the branch
//!    moved (stale), the commit is tried again on the new tip as long as that tip still has
//!    `H` for `S` and the same client version in force; otherwise the check's result is
//!    out of date, nothing is committed, and the loop checks the new state instead.
//!
//! No new record means unchanged: the task ends successfully doing nothing, unless it was
//! asked for by hand and the newest generation is not the one in force, in which case that
//! one is committed (it is what the settings in force give).

use std::sync::Arc;

use vupdate_core::log::Level;
use vupdate_core::reconcile::Build;
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{
    Author, Revision, State, StateEdit, StateError, StateRepo, service_settings_hash,
};
use vupdate_store::Store;
use vupdate_store::model::versions::{ClientVersionRecord, VersionQuery};

use super::{BuildOrder, BuildRunner};
use crate::leadership::Leadership;
use crate::tasks::TaskContext;
use crate::watcher::WatchTrigger;

/// The unit of the task log lines of a generation check.
const UNIT: &str = "GENERATION";
/// How many times a commit is tried on a branch that keeps moving.
const COMMIT_ATTEMPTS: usize = 5;

/// What the loop needs to check client generations: the version records, and the state
/// repo to commit the new desired client version to.
#[derive(Debug, Clone)]
pub struct GenerationLink {
    /// The store with the client version records.
    pub store: Store,
    /// The state repo the watcher follows (commits go there, and to its remote).
    pub repo: Arc<StateRepo>,
    /// Asks the watcher to put the new commit in force at once.
    pub trigger: WatchTrigger,
}

/// How one check ended, for the task log and the loop's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GenerationOutcome {
    /// The content equals the newest generation's: nothing new.
    Unchanged(ClientVersion),
    /// A new generation was made and committed as desired.
    Committed {
        /// The new client version.
        version: ClientVersion,
        /// The commit that desires it.
        commit: String,
    },
    /// A new generation was made, but the state moved on (other settings or another
    /// client version in force), so it is not committed.
    OutOfDate(ClientVersion),
}

/// The author of the distribution's own commits: `<name> distribution <distribution@<name>>`.
pub fn distribution_author(distribution: &str) -> Author {
    Author::new(
        format!("{distribution} distribution"),
        format!("distribution@{distribution}"),
    )
}

/// The newest client version record of `developer` of `service`, if any.
pub(crate) async fn newest_record(
    store: &Store,
    service: &ServiceName,
    developer: &DeveloperVersion,
) -> Result<Option<ClientVersionRecord>, vupdate_store::StoreError> {
    let records = store
        .client_versions()
        .query(&VersionQuery {
            service: Some(service.clone()),
            ..VersionQuery::default()
        })
        .await?;
    Ok(records
        .into_iter()
        .map(|stored| stored.record)
        .filter(|record| &record.version.developer == developer)
        .max_by_key(|record| record.version.generation))
}

/// Runs one check (the module docs say how); `forced` when asked for by hand. The commit
/// of a new generation passes `leadership`'s fence first.
pub(crate) async fn run(
    link: GenerationLink,
    distribution: String,
    leadership: Leadership,
    runner: Arc<dyn BuildRunner>,
    order: BuildOrder,
    forced: bool,
    task: TaskContext,
) -> Result<GenerationOutcome, String> {
    let Build::Generation {
        service,
        current,
        settings,
    } = &order.build
    else {
        return Err(format!("not a generation check: {:?}", order.build));
    };
    let (service, current, settings) = (service.clone(), current.clone(), settings.clone());
    let developer = current.developer.clone();
    let say = |message: &str| task.log(Level::Info, UNIT, message);
    let read_failed = |error: vupdate_store::StoreError| {
        let message = format!("cannot read the client version records of {service}: {error}");
        task.log(Level::Error, UNIT, &message);
        message
    };
    let before = newest_record(&link.store, &service, &developer)
        .await
        .map_err(read_failed)?;
    say(&format!(
        "checking the client settings of {service} at state commit {} ({settings}) against {}",
        order.revision.id,
        before.as_ref().map_or_else(
            || format!("no client version of {developer} yet"),
            |record| format!(
                "{} (made from {})",
                record.version,
                record
                    .settings
                    .as_ref()
                    .map_or("unknown settings", |stamp| stamp.hash.as_str())
            )
        )
    ));
    let commit = order.revision.id.clone();
    runner.run_order(order, task.clone()).await?;
    let after = newest_record(&link.store, &service, &developer)
        .await
        .map_err(read_failed)?;
    let made = match (&before, &after) {
        (Some(before), Some(after)) if after.version.generation > before.version.generation => {
            Some(after.version.clone())
        }
        (None, Some(after)) => Some(after.version.clone()),
        _ => None,
    };
    let to_commit = match (made, &after) {
        (Some(version), _) => {
            say(&format!(
                "the client settings give new content: client version {version} of {service} was made"
            ));
            version
        }
        (None, Some(newest)) if forced && newest.version != current => {
            say(&format!(
                "the client settings give the content of {}, which is not the client version in force ({current}): asked for by hand, so it becomes desired",
                newest.version
            ));
            newest.version.clone()
        }
        (None, newest) => {
            let same = newest.as_ref().map_or(&current, |record| &record.version);
            say(&format!(
                "unchanged: the client settings at {commit} give the same content as {same}; no new generation, nothing to commit"
            ));
            return Ok(GenerationOutcome::Unchanged(same.clone()));
        }
    };
    let attempt = Attempt {
        repo: Arc::clone(&link.repo),
        author: distribution_author(&distribution),
        service: service.clone(),
        current: current.clone(),
        version: to_commit.clone(),
        settings,
        commit,
    };
    if let Err(error) = leadership.fence().await {
        let message = format!(
            "not committing {to_commit} of {service}: this replica no longer holds the lease: {error}"
        );
        task.log(Level::Error, UNIT, &message);
        return Err(message);
    }
    let committed = tokio::task::spawn_blocking(move || attempt.commit())
        .await
        .map_err(|error| format!("the commit of {to_commit} stopped: {error}"))?;
    match committed {
        Ok(Some(revision)) => {
            link.trigger.trigger();
            say(&format!(
                "committed desired/client.yaml: {service} = {to_commit} as {} (\"{}\")",
                revision.id, revision.summary
            ));
            Ok(GenerationOutcome::Committed {
                version: to_commit,
                commit: revision.id,
            })
        }
        Ok(None) => {
            say(&format!(
                "not committed: the state moved on (other client settings or another client version of {service} in force); the new state is checked on its own"
            ));
            Ok(GenerationOutcome::OutOfDate(to_commit))
        }
        Err(error) => {
            let message = format!(
                "client version {to_commit} of {service} was made, but desired/client.yaml could not be committed: {error}; `rebuildClientVersion` commits it once that is fixed"
            );
            task.log(Level::Error, UNIT, &message);
            Err(message)
        }
    }
}

/// One commit of a new desired client version, tried again on a moving branch.
struct Attempt {
    repo: Arc<StateRepo>,
    author: Author,
    service: ServiceName,
    /// The client version in force when the check was planned.
    current: ClientVersion,
    /// The version to make desired.
    version: ClientVersion,
    /// The settings hash the check was made for.
    settings: String,
    /// The state commit the check was made for.
    commit: String,
}

impl Attempt {
    /// Commits on top of the check's commit, or of newer tips that still ask for it;
    /// `Ok(None)` when the state moved on so that the result no longer applies.
    fn commit(&self) -> Result<Option<Revision>, StateError> {
        let mut parent = self.commit.clone();
        for _ in 0..COMMIT_ATTEMPTS {
            let state = self.repo.load(&parent)?;
            if !self.still_applies(&state) {
                return Ok(None);
            }
            let mut list = state.desired.client.clone();
            let was_derived = !list.contains_key(&self.service);
            list.insert(self.service.clone(), self.version.clone());
            let message = self.message(&parent, was_derived);
            match self.repo.edit(
                StateEdit::SetDesiredClient(list),
                &parent,
                &self.author,
                &message,
            ) {
                Ok(revision) => return Ok(Some(revision)),
                Err(StateError::Stale { actual, .. }) => {
                    tracing::info!(service = %self.service, version = %self.version, tip = %actual, "the branch moved; trying the commit on the new tip");
                    parent = actual;
                }
                Err(error) => return Err(error),
            }
        }
        Err(StateError::Stale {
            expected: parent,
            actual: format!("a tip that moved {COMMIT_ATTEMPTS} times in a row"),
        })
    }

    /// Whether `state` still has the settings and the client version the check was for.
    fn still_applies(&self, state: &State) -> bool {
        service_settings_hash(state, &self.service).as_deref() == Some(self.settings.as_str())
            && state.effective_client_versions().get(&self.service) == Some(&self.current)
    }

    /// `api: client version acme-1.0.0_1 (client settings changed)`, and a body saying why
    /// and, for a `self` service that followed its developer version, what changes now.
    fn message(&self, parent: &str, was_derived: bool) -> String {
        let (service, version, current) = (&self.service, &self.version, &self.current);
        let mut message = format!(
            "{service}: client version {version} (client settings changed)\n\n\
             The client settings of {service} at {parent} ({}) give other content than\n\
             {current}, so the distribution built them as {version}.\n",
            self.settings
        );
        if was_derived {
            message.push_str(&format!(
                "\n{service} had no entry in desired/client.yaml: it followed its desired developer\n\
                 version {}. It names {version} from now on, so a new developer version of\n\
                 {service} needs a client entry too (or remove this one to follow\n\
                 desired/developer.yaml again).\n",
                version.developer
            ));
        }
        message
    }
}
