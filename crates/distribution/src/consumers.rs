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
//! distribution. The installed versions are a small file per consumer,
//! `<dataDirectory>/consumers/<name>.json`, replaced whole at each report (written to a
//! temporary file and renamed, so a reader sees the old or the new report, never half).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;
use vupdate_state::State;

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
    dir: PathBuf,
}

impl ConsumerRecords {
    /// The reports under `data_directory` (`consumers/`, created when missing).
    pub fn open(data_directory: &Path) -> std::io::Result<ConsumerRecords> {
        let dir = data_directory.join("consumers");
        std::fs::create_dir_all(&dir)?;
        Ok(ConsumerRecords { dir })
    }

    /// Replaces `consumer`'s report.
    pub fn set_installed(&self, consumer: &str, installed: &Installed) -> std::io::Result<()> {
        let path = self.path(consumer);
        let temp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let bytes = serde_json::to_vec_pretty(installed).map_err(std::io::Error::other)?;
        let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }

    /// `consumer`'s last report, if it made one (an unreadable file counts as none, and is
    /// replaced by the next report).
    pub fn installed(&self, consumer: &str) -> Option<Installed> {
        let bytes = std::fs::read(self.path(consumer)).ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(installed) => Some(installed),
            Err(error) => {
                tracing::warn!(consumer, %error, "ignoring an unreadable installed-versions report");
                None
            }
        }
    }

    fn path(&self, consumer: &str) -> PathBuf {
        // Consumer names are account names checked by the caller: no `/` and no `..`.
        self.dir.join(format!("{consumer}.json"))
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

    #[test]
    fn an_installed_report_replaces_the_last_one() {
        let data = tempfile::TempDir::new().expect("dir");
        let records = ConsumerRecords::open(data.path()).expect("open");
        assert_eq!(records.installed("staging"), None);
        let report = |version: &str| Installed {
            versions: [(
                "api".parse().expect("service"),
                version.parse().expect("version"),
            )]
            .into_iter()
            .collect(),
            time: Utc::now(),
        };
        records
            .set_installed("staging", &report("jetto-1.0.0"))
            .expect("set");
        let second = report("jetto-1.1.0");
        records.set_installed("staging", &second).expect("set");
        assert_eq!(records.installed("staging"), Some(second));
    }
}
