//! Following the desired client versions of this VM's services (and of the updater
//! itself) into the agent's `watch`: the `clientDesiredVersionsChanged` subscription for
//! immediate changes, and a poll of `clientDesiredVersions` every `pollInterval` as a
//! safety net while the subscription is down (its first event is the list as it is, and
//! each later one a change, so polling beside a live one only costs a request and a
//! wake-up per interval on every VM). Both retry with exponential backoff and jitter
//! while the distribution is away; the map keeps the last versions known meanwhile, so the services keep running
//! them. The last map is also kept in `<workDirectory>/.desired-versions.json`, so an
//! updater restarted while the distribution is away starts from it; the state commit
//! the map comes from is kept beside it in `.desired-revision`, so that updater's state
//! reports still say which commit it is on.
//!
//! The subscription also repeats the list, unchanged, when the distribution stores an
//! image; that wakes the services, so one waiting for its version's image fetches it
//! then.
//!
//! A poll whose request began before the subscription's latest event may carry the list
//! from before that event; it is dropped rather than published, so a change never flips
//! back and forth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vupdate_client::DesiredList;
use vupdate_core::service::ServiceName;

use vupdate_backoff::Backoff;

use super::api::Api;
use crate::agent::DesiredVersions;
use crate::schedule::Schedule;

/// The file, in the work directory, that keeps the last desired versions (a leading dot:
/// no service directory can have that name).
pub const CACHE_FILE: &str = ".desired-versions.json";
/// The file, beside [`CACHE_FILE`], that keeps the state commit the map comes from.
pub const REVISION_FILE: &str = ".desired-revision";

/// How soon a lost subscription is tried again at first, and at most.
const RESUBSCRIBE_INITIAL: Duration = Duration::from_millis(500);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(30);
/// How soon a failed poll is tried again at first (at most the poll interval).
const REPOLL_INITIAL: Duration = Duration::from_secs(1);

/// The cached desired versions in `work_directory`, when there are readable ones.
pub fn read_cache(work_directory: &Path) -> Option<DesiredVersions> {
    let path = work_directory.join(CACHE_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    match parse_cache(&text) {
        Ok(map) => Some(map),
        Err(error) => {
            tracing::warn!(file = %path.display(), %error, "ignoring the cached desired versions");
            None
        }
    }
}

fn parse_cache(text: &str) -> Result<DesiredVersions, String> {
    let entries: BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| e.to_string())?;
    entries
        .into_iter()
        .map(|(service, version)| {
            let name = service.parse().map_err(|e| format!("{e}"))?;
            let version = version.parse().map_err(|e| format!("{service}: {e}"))?;
            Ok((name, version))
        })
        .collect()
}

/// Writes `map` to the cache file next to itself, then renames it into place.
fn write_cache(path: &Path, map: &DesiredVersions) {
    let entries: BTreeMap<&str, String> = map
        .iter()
        .map(|(service, version)| (service.as_str(), version.to_string()))
        .collect();
    let text = match serde_json::to_string_pretty(&entries) {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(%error, "cannot serialize the desired versions");
            return;
        }
    };
    let tmp = path.with_extension("json.tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(error) = written {
        tracing::warn!(file = %path.display(), %error, "cannot keep the desired versions");
    }
}

/// The cached state commit in `work_directory`, if one is kept.
fn read_revision(work_directory: &Path) -> Option<String> {
    let text = std::fs::read_to_string(work_directory.join(REVISION_FILE)).ok()?;
    let revision = text.trim();
    (!revision.is_empty()).then(|| revision.to_owned())
}

/// Keeps `revision` in `path` (written beside it, then renamed into place).
fn write_revision(path: &Path, revision: &str) {
    let tmp = path.with_extension("tmp");
    let written =
        std::fs::write(&tmp, format!("{revision}\n")).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(error) = written {
        tracing::warn!(file = %path.display(), %error, "cannot keep the desired versions' state commit");
    }
}

/// `service=version` pairs, for the log.
fn describe(map: &DesiredVersions) -> String {
    let pairs: Vec<String> = map
        .iter()
        .map(|(service, version)| format!("{service}={version}"))
        .collect();
    if pairs.is_empty() {
        "none".to_owned()
    } else {
        pairs.join(" ")
    }
}

/// What both followers share.
struct Shared {
    api: Arc<Api>,
    services: Vec<ServiceName>,
    desired: watch::Sender<DesiredVersions>,
    cache: PathBuf,
    /// Where the state commit of the map is kept.
    revision_file: PathBuf,
    /// Subscription events so far, so a poll can tell it may be older than one.
    events: AtomicU64,
    /// Whether the subscription is live: open, and its first event received.
    live: watch::Sender<bool>,
}

impl Shared {
    /// Publishes `list`'s map when it differs from the current one; says whether it did.
    /// Its revision is followed either way (a new commit may leave the map as it was).
    fn publish(&self, list: DesiredList, via: &'static str) -> bool {
        let new_revision = self.api.provenance.follow(&list);
        let map = &list.versions;
        let changed = self.desired.send_if_modified(|current| {
            if current == map {
                return false;
            }
            // Kept before anyone is told, so whoever this change wakes finds it on disk.
            write_cache(&self.cache, map);
            current.clone_from(map);
            true
        });
        // After the map: a crash between the two leaves an older commit beside a newer
        // map, which only under-reports.
        if new_revision {
            match &list.revision {
                Some(revision) => write_revision(&self.revision_file, revision),
                None => {
                    let _ = std::fs::remove_file(&self.revision_file);
                }
            }
        }
        if changed {
            tracing::info!(via, versions = %describe(map), revision = list.revision.as_deref().unwrap_or("unknown"), "desired versions");
        }
        changed
    }

    /// Wakes the services without a change: the distribution repeats the list when it
    /// stores an image, and a service waiting for its version's image tries again now,
    /// not at its next retry.
    fn nudge(&self) {
        self.desired.send_modify(|_| {});
    }
}

/// The running followers; they stop when this is dropped.
#[derive(Debug)]
pub struct Following {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Following {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts following the desired versions of `services` into `desired` on the current
/// runtime; `poll_interval` paces the poll.
pub fn start(
    api: Arc<Api>,
    services: Vec<ServiceName>,
    poll_interval: Duration,
    work_directory: &Path,
    desired: watch::Sender<DesiredVersions>,
) -> Following {
    // The cached map (already in `desired`) with its commit, until the distribution answers.
    api.provenance.follow(&DesiredList {
        revision: read_revision(work_directory),
        versions: desired.borrow().clone(),
    });
    let shared = Arc::new(Shared {
        api,
        services,
        desired,
        cache: work_directory.join(CACHE_FILE),
        revision_file: work_directory.join(REVISION_FILE),
        events: AtomicU64::new(0),
        live: watch::Sender::new(false),
    });
    Following {
        tasks: vec![
            tokio::spawn(subscribe(Arc::clone(&shared))),
            tokio::spawn(poll(shared, poll_interval)),
        ],
    }
}

/// Keeps a subscription open, publishing each event; opens it again after a cut.
async fn subscribe(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(RESUBSCRIBE_INITIAL, RESUBSCRIBE_MAX);
    loop {
        let opened = shared
            .api
            .client()
            .follow_client_desired_list(Some(&shared.services), Some(&shared.api.instance))
            .await;
        shared.api.observe(&opened);
        match opened {
            Ok(mut feed) => {
                tracing::debug!("following the desired versions live");
                loop {
                    let event = feed.next_list().await;
                    shared.api.observe(&event);
                    match event {
                        Ok(Some(list)) => {
                            backoff.reset();
                            shared.events.fetch_add(1, Ordering::SeqCst);
                            shared
                                .live
                                .send_if_modified(|live| !std::mem::replace(live, true));
                            if !shared.publish(list, "subscription") {
                                shared.nudge();
                            }
                        }
                        Ok(None) => {
                            tracing::info!("the distribution ended the desired-versions feed");
                            break;
                        }
                        Err(error) if error.is_transient() => {
                            tracing::debug!(%error, "the desired-versions feed was cut");
                            break;
                        }
                        Err(error) => {
                            tracing::error!(%error, "the desired-versions feed was refused");
                            break;
                        }
                    }
                }
                shared.live.send_replace(false);
            }
            Err(error) if error.is_transient() => {
                tracing::debug!(%error, "cannot follow the desired versions yet");
            }
            Err(error) => {
                tracing::error!(%error, "cannot follow the desired versions");
            }
        }
        shared.api.pause(&mut backoff).await;
    }
}

/// Polls at each tick of `interval` on the process's [`Schedule`] (sooner, with backoff,
/// after a failure) while the subscription is not live; at once when it goes down.
async fn poll(shared: Arc<Shared>, interval: Duration) {
    let mut backoff = Backoff::new(REPOLL_INITIAL, interval.min(RESUBSCRIBE_MAX));
    let mut live = shared.live.subscribe();
    loop {
        // Never fails: `shared` holds the sender.
        let _ = live.wait_for(|live| !live).await;
        let seen = shared.events.load(Ordering::SeqCst);
        let polled = shared
            .api
            .client()
            .client_desired_list(Some(&shared.services), Some(&shared.api.instance))
            .await;
        shared.api.observe(&polled);
        match polled {
            Ok(list) => {
                backoff.reset();
                if shared.events.load(Ordering::SeqCst) == seen {
                    shared.publish(list, "poll");
                }
                // On the state reports' grid: one wake-up for both when their intervals match.
                tokio::time::sleep_until(Schedule::process().next(interval)).await;
            }
            Err(error) => {
                if error.is_transient() {
                    tracing::debug!(%error, "cannot poll the desired versions");
                } else {
                    tracing::error!(%error, "polling the desired versions was refused");
                }
                shared.api.pause(&mut backoff).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_round_trips_and_refuses_nonsense() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(CACHE_FILE);
        let map: DesiredVersions = [
            (
                "api".parse().expect("name"),
                "acme-1.0.0_2".parse().expect("version"),
            ),
            (
                "updater".parse().expect("name"),
                "acme-2.0.0".parse().expect("version"),
            ),
        ]
        .into_iter()
        .collect();
        write_cache(&path, &map);
        assert_eq!(read_cache(dir.path()), Some(map.clone()));
        assert_eq!(describe(&map), "api=acme-1.0.0_2 updater=acme-2.0.0");
        std::fs::write(&path, r#"{"api": "not a version"}"#).expect("write");
        assert_eq!(read_cache(dir.path()), None);
        assert!(parse_cache("[]").is_err());
        assert_eq!(read_revision(dir.path()), None);
        write_revision(&dir.path().join(REVISION_FILE), "3f1c0a9e");
        assert_eq!(read_revision(dir.path()).as_deref(), Some("3f1c0a9e"));
    }

    /// A follower whose subscription is live, its poll aimed at a listener that never
    /// answers (a connection there is a poll).
    fn polling_while_live() -> (std::net::TcpListener, Arc<Shared>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let config = crate::config::UpdaterConfig::from_str(
            &format!("instance: vm-1\ndistributionUrl: {url}\naccessToken: t0k3n\n"),
            "/nowhere",
        )
        .expect("config");
        let (desired, _) = watch::channel(DesiredVersions::new());
        let shared = Arc::new(Shared {
            api: Arc::new(Api::new(&config).expect("api")),
            services: Vec::new(),
            desired,
            cache: PathBuf::from("/nowhere/cache"),
            revision_file: PathBuf::from("/nowhere/revision"),
            events: AtomicU64::new(0),
            live: watch::Sender::new(true),
        });
        (listener, shared)
    }

    #[tokio::test(start_paused = true)]
    async fn no_poll_while_the_subscription_is_live_and_one_at_once_when_it_goes_down() {
        let (listener, shared) = polling_while_live();
        let task = tokio::spawn(poll(Arc::clone(&shared), Duration::from_secs(10)));
        // Six poll intervals on the paused clock: a poll would have connected by now.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let while_live = listener.accept().map(drop);
        shared.live.send_replace(false);
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let after = tokio::time::timeout(Duration::from_secs(3600), listener.accept()).await;
        task.abort();
        assert!(
            matches!(&while_live, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
            "polled while live: {while_live:?}"
        );
        assert!(after.is_ok(), "no poll once the subscription went down");
    }
}
