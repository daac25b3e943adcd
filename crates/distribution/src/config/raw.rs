//! The file's shape as written (optional fields, relative paths), before defaults and
//! resolution turn it into a [`super::DistributionConfig`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use vupdate_store::MongoLogs;

use super::DistributionName;
use super::duration::HumanDuration;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub name: DistributionName,
    pub title: Option<String>,
    pub instance: Option<String>,
    pub listen: Option<SocketAddr>,
    pub tls: Option<RawTls>,
    pub data_directory: Option<PathBuf>,
    pub store: Option<RawStore>,
    pub state_repo: RawStateRepo,
    #[serde(default)]
    pub versions: RawVersions,
    #[serde(default)]
    pub expiration: RawExpiration,
    pub jwt_key_file: Option<PathBuf>,
    #[serde(default)]
    pub token_files: BTreeMap<String, PathBuf>,
    #[serde(default)]
    pub builder: RawBuilder,
    #[serde(default)]
    pub mesh: RawMesh,
    #[serde(default)]
    pub lease: RawLease,
    pub object_store: Option<super::object_store::RawObjectStore>,
    #[serde(default)]
    pub limits: super::limits::RawLimits,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawTls {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub self_signed: Option<RawSelfSigned>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawSelfSigned {
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum RawStore {
    Sqlite {
        path: Option<PathBuf>,
    },
    Mongo {
        url: String,
        database: String,
        logs: Option<MongoLogs>,
    },
}

/// Where the state repository comes from: exactly one of a local path or a URL.
#[derive(Debug)]
pub(crate) enum RawSource {
    Path(PathBuf),
    Url(String),
}

#[derive(Debug, Deserialize)]
#[serde(try_from = "StateRepoFields")]
pub(crate) struct RawStateRepo {
    pub source: RawSource,
    pub branch: Option<String>,
    pub poll_interval: Option<HumanDuration>,
    pub clone: Option<PathBuf>,
    pub webhook_secret_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct StateRepoFields {
    path: Option<PathBuf>,
    url: Option<String>,
    branch: Option<String>,
    poll_interval: Option<HumanDuration>,
    clone: Option<PathBuf>,
    webhook_secret_file: Option<PathBuf>,
}

impl TryFrom<StateRepoFields> for RawStateRepo {
    type Error = String;

    fn try_from(fields: StateRepoFields) -> Result<Self, Self::Error> {
        let source = match (fields.path, fields.url) {
            (Some(path), None) => RawSource::Path(path),
            (None, Some(url)) => RawSource::Url(url),
            (Some(_), Some(_)) => {
                return Err("stateRepo: give either `path` or `url`, not both".to_owned());
            }
            (None, None) => {
                return Err("stateRepo: give `path` (a local repository) or `url`".to_owned());
            }
        };
        if fields
            .branch
            .as_deref()
            .is_some_and(|b| b.trim().is_empty())
        {
            return Err("stateRepo: `branch` is empty".to_owned());
        }
        Ok(RawStateRepo {
            source,
            branch: fields.branch,
            poll_interval: fields.poll_interval,
            clone: fields.clone,
            webhook_secret_file: fields.webhook_secret_file,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawBuilder {
    pub directory: Option<PathBuf>,
    pub max_parallel_builds: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawMesh {
    pub poll_interval: Option<HumanDuration>,
    pub subscription: Option<bool>,
    pub upload_interval: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawLease {
    pub ttl: Option<HumanDuration>,
    pub renew_every: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawVersions {
    pub max_history_size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawExpiration {
    pub service_states: Option<HumanDuration>,
    pub service_logs: Option<HumanDuration>,
    pub task_logs: Option<HumanDuration>,
    pub tasks: Option<HumanDuration>,
    pub fault_reports: Option<HumanDuration>,
    pub max_fault_reports: Option<u64>,
    pub schedule: Option<ScheduleText>,
}

/// A 5-field crontab schedule, checked while parsing so the error carries its position.
#[derive(Debug)]
pub(crate) struct ScheduleText(pub vupdate_store::Schedule);

impl<'de> Deserialize<'de> for ScheduleText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(ScheduleText)
            .map_err(serde::de::Error::custom)
    }
}
