//! The provider's side of the mesh: what each consumer distribution reported having
//! installed (`setInstalledDesiredVersions`), and which versions a consumer receives.
//!
//! A consumer is an entry of `consumers.yaml` whose name is also the name of a consumer
//! account on this distribution; its access token is that account's. Consumer accounts
//! follow `consumers.yaml` ([`follow_accounts`]): a commit that adds a consumer creates
//! its account (and, when `tokenFiles` names it, its token file). Accounts are never
//! removed by a commit (a consumer removed from the file receives nothing; its account goes
//! with `removeAccount`), so a bad commit or a revert can never bring back revoked tokens. Its instance states
//! and fault reports are stored like an updater's, under the consumer's name as their
//! distribution. The installed versions are one store document per consumer, replaced at
//! each report, so replicas on one store share them (`vupdate-store` `ConsumerReports`);
//! older servers kept a file per consumer, `<dataDirectory>/consumers/<name>.json`, taken
//! into the store at start ([`ConsumerRecords::import_files`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;
use vupdate_state::State;
use vupdate_store::model::consumers::ConsumerInstalled;
use vupdate_store::{Store, StoreError};

/// The folder older servers kept a report file per consumer in, in the data directory.
const LEGACY_DIR: &str = "consumers";
/// What that folder is renamed to once the store holds its reports.
const IMPORTED_DIR: &str = "consumers.imported";

/// What a consumer last reported having installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Installed {
    /// Service -> the developer version the consumer's desired client version is made from.
    pub versions: BTreeMap<ServiceName, DeveloperVersion>,
    /// When it reported them.
    pub time: DateTime<Utc>,
}

/// The installed-versions reports of this distribution's consumers; cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsumerRecords {
    store: Store,
    /// Where older servers kept a file per consumer.
    legacy_dir: PathBuf,
}

impl ConsumerRecords {
    /// The reports in `store`, for the distribution whose data lives in `data_directory`.
    pub fn new(store: Store, data_directory: &Path) -> ConsumerRecords {
        ConsumerRecords {
            store,
            legacy_dir: data_directory.join(LEGACY_DIR),
        }
    }

    /// Takes the reports an older server kept in `consumers/<name>.json` into the store
    /// (a consumer that reported since keeps its newer report), then renames the folder
    /// `consumers.imported`. An unreadable file is skipped with a warning (the consumer's
    /// next report replaces it). Returns how many reports were taken.
    pub async fn import_files(&self) -> std::io::Result<usize> {
        let mut entries = match tokio::fs::read_dir(&self.legacy_dir).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        };
        let reports = self.store.consumer_reports();
        let mut taken = 0;
        while let Some(entry) = entries.next_entry().await? {
            let path = entry.path();
            let Some(consumer) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".json"))
            else {
                continue;
            };
            let installed: Installed = match serde_json::from_slice(&tokio::fs::read(&path).await?)
            {
                Ok(installed) => installed,
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "skipping an unreadable installed-versions report");
                    continue;
                }
            };
            let newer = reports
                .get(consumer)
                .await
                .map_err(std::io::Error::other)?
                .is_some_and(|stored| stored.time >= installed.time);
            if !newer {
                self.set_installed(consumer, &installed)
                    .await
                    .map_err(std::io::Error::other)?;
                taken += 1;
            }
        }
        tokio::fs::rename(
            &self.legacy_dir,
            self.legacy_dir.with_file_name(IMPORTED_DIR),
        )
        .await?;
        tracing::info!(
            reports = taken,
            "took the consumers' installed-versions files into the store"
        );
        Ok(taken)
    }

    /// Replaces `consumer`'s report.
    pub async fn set_installed(
        &self,
        consumer: &str,
        installed: &Installed,
    ) -> Result<(), StoreError> {
        self.store
            .consumer_reports()
            .set(ConsumerInstalled {
                consumer: consumer.to_owned(),
                versions: installed.versions.clone(),
                time: installed.time,
            })
            .await
    }

    /// `consumer`'s last report, if it made one.
    pub async fn installed(&self, consumer: &str) -> Result<Option<Installed>, StoreError> {
        let stored = self.store.consumer_reports().get(consumer).await?;
        Ok(stored.map(|report| Installed {
            versions: report.versions,
            time: report.time,
        }))
    }
}

/// Why a consumer gets no versions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewRefused {
    /// `consumers.yaml` has no entry for the consumer.
    #[error("consumer `{0}` is not in consumers.yaml of the state repo")]
    NotAConsumer(String),
    /// The test consumer asked for is not a consumer either.
    #[error("testConsumer `{0}` is not a consumer in consumers.yaml of the state repo")]
    UnknownTester(String),
}

/// The versions `consumer` receives: the desired developer versions of its profile's
/// services, or, when `consumers.yaml` (first) or the consumer (`test_consumer`) names a
/// test consumer, the versions that one marked as tested, of the same services. Returns
/// the test consumer that applied too.
pub fn consumer_view(
    state: &State,
    consumer: &str,
    test_consumer: Option<&str>,
) -> Result<(BTreeMap<ServiceName, DeveloperVersion>, Option<String>), ViewRefused> {
    let settings = state
        .consumers
        .get(consumer)
        .ok_or_else(|| ViewRefused::NotAConsumer(consumer.to_owned()))?;
    let tester = match (&settings.test_consumer, test_consumer) {
        (Some(tester), _) => Some(tester.clone()),
        (None, Some(asked)) if state.consumers.contains_key(asked) => Some(asked.to_owned()),
        (None, Some(asked)) => return Err(ViewRefused::UnknownTester(asked.to_owned())),
        (None, None) => None,
    };
    let profile = state
        .profile(&settings.profile)
        .cloned()
        .unwrap_or_default();
    let source = match &tester {
        Some(tester) => state
            .tested
            .get(tester)
            .map(|t| t.versions.clone())
            .unwrap_or_default(),
        None => state.desired.developer.clone(),
    };
    let versions = source
        .into_iter()
        .filter(|(service, _)| profile.contains(service))
        .collect();
    Ok((versions, tester))
}

/// Creates a consumer account for each consumer of the state in force that has none,
/// each time the state changes, and writes its token file when `tokenFiles` names it.
pub async fn follow_accounts(
    auth: crate::auth::AuthService,
    mut in_force: tokio::sync::watch::Receiver<Option<crate::watcher::InForce>>,
    token_files: BTreeMap<String, PathBuf>,
) {
    loop {
        let state = in_force
            .borrow_and_update()
            .as_ref()
            .map(|f| Arc::clone(&f.state));
        if let Some(state) = state {
            for (name, consumer) in &state.consumers {
                match auth.account(name).await {
                    Ok(_) => continue,
                    Err(crate::auth::AuthError::NoSuchAccount { .. }) => {}
                    Err(error) => {
                        tracing::warn!(consumer = %name, %error, "cannot look up the consumer's account");
                        continue;
                    }
                }
                let url = consumer.url.clone().unwrap_or_default();
                match auth
                    .add_consumer_account(name, name, &consumer.profile, &url)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(consumer = %name, "created the consumer account of consumers.yaml; give it a token with issueAccessToken")
                    }
                    Err(error) => {
                        tracing::warn!(consumer = %name, %error, "cannot create the consumer's account");
                        continue;
                    }
                }
                if let Some(file) = token_files.get(name) {
                    let one = BTreeMap::from([(name.clone(), file.clone())]);
                    if let Err(error) =
                        crate::server::token_files::write_token_files(&auth, &one).await
                    {
                        tracing::warn!(consumer = %name, %error, "cannot write the consumer's token file");
                    }
                }
            }
        }
        if in_force.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use vupdate_state::FileSet;

    use super::*;

    fn provider_state(consumers: &str) -> State {
        let files: FileSet = [
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", ""),
            ("services/web.yaml", ""),
            ("profiles.yaml", "profiles:\n  partner: [api]\n"),
            (
                "desired/developer.yaml",
                "versions:\n  api: jetto-1.2.0\n  web: jetto-1.2.0\n",
            ),
            (
                "tested.yaml",
                "tested:\n  staging:\n    versions:\n      api: jetto-1.1.0\n      web: jetto-1.1.0\n",
            ),
            ("consumers.yaml", consumers),
        ]
        .into_iter()
        .collect();
        State::parse(&files).expect("valid")
    }

    fn view(state: &State, consumer: &str, tester: Option<&str>) -> Result<String, ViewRefused> {
        consumer_view(state, consumer, tester).map(|(versions, tester)| {
            let list: Vec<String> = versions.iter().map(|(s, v)| format!("{s}={v}")).collect();
            format!("{} by {}", list.join(","), tester.unwrap_or_default())
        })
    }

    #[test]
    fn a_consumer_receives_its_profile_and_with_a_tester_only_tested_versions() {
        let two = "consumers:\n  staging:\n    profile: partner\n  prod:\n    profile: partner\n";
        let state = provider_state(two);
        assert_eq!(view(&state, "prod", None), Ok("api=jetto-1.2.0 by ".into()));
        assert_eq!(
            view(&state, "prod", Some("staging")),
            Ok("api=jetto-1.1.0 by staging".into())
        );
        assert_eq!(
            view(&state, "prod", Some("qa")),
            Err(ViewRefused::UnknownTester("qa".into()))
        );
        assert_eq!(
            view(&state, "other", None),
            Err(ViewRefused::NotAConsumer("other".into()))
        );
        // The provider's own setting wins over what the consumer asks.
        let gated = "consumers:\n  staging:\n    profile: partner\n  prod:\n    profile: partner\n    testConsumer: staging\n";
        assert_eq!(
            view(&provider_state(gated), "prod", None),
            Ok("api=jetto-1.1.0 by staging".into())
        );
    }

    #[tokio::test]
    async fn an_installed_report_replaces_the_last_one_and_older_files_are_taken_in() {
        let data = tempfile::TempDir::new().expect("dir");
        let report = |version: &str, seconds: i64| Installed {
            versions: [(
                "api".parse().expect("service"),
                version.parse().expect("version"),
            )]
            .into_iter()
            .collect(),
            time: DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("time"),
        };
        // What an older server left: two reports and a file it could not have written.
        let legacy = data.path().join(LEGACY_DIR);
        std::fs::create_dir_all(&legacy).expect("dir");
        let write = |name: &str, installed: &Installed| {
            let bytes = serde_json::to_vec_pretty(installed).expect("json");
            std::fs::write(legacy.join(format!("{name}.json")), bytes).expect("write");
        };
        write("staging", &report("jetto-1.0.0", 0));
        write("prod", &report("jetto-0.9.0", 0));
        std::fs::write(legacy.join("broken.json"), "{").expect("write");

        let config = vupdate_store::StoreConfig::Sqlite {
            path: data.path().join("store.sqlite"),
        };
        let store = vupdate_store::open(&config).await.expect("store");
        let records = ConsumerRecords::new(store, data.path());
        // prod reported to this server before the files were taken in: its report stays.
        records
            .set_installed("prod", &report("jetto-1.0.0", 10))
            .await
            .expect("set");
        assert_eq!(records.import_files().await.expect("import"), 1);
        assert!(!legacy.exists());
        assert!(data.path().join(IMPORTED_DIR).join("broken.json").exists());
        assert_eq!(records.import_files().await.expect("again"), 0);
        assert_eq!(
            records.installed("staging").await.expect("read"),
            Some(report("jetto-1.0.0", 0))
        );
        assert_eq!(
            records.installed("prod").await.expect("read"),
            Some(report("jetto-1.0.0", 10))
        );
        assert_eq!(records.installed("broken").await.expect("read"), None);

        let second = report("jetto-1.1.0", 20);
        records
            .set_installed("staging", &second)
            .await
            .expect("set");
        assert_eq!(
            records.installed("staging").await.expect("read"),
            Some(second)
        );
    }
}
