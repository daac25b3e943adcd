//! `updater.yaml` as written (optional fields, relative paths, positions kept where a
//! check after parsing must point at a value), before defaults and resolution turn it into
//! a [`super::UpdaterConfig`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub instance: Spanned<String>,
    pub distribution_url: Spanned<String>,
    pub access_token: Option<Spanned<String>>,
    pub access_token_file: Option<Spanned<PathBuf>>,
    pub ca_file: Option<Spanned<PathBuf>>,
    pub pinned_public_key: Option<Spanned<String>>,
    pub work_directory: Option<PathBuf>,
    pub labels: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    #[serde(default)]
    pub services: Vec<Spanned<RawService>>,
    pub poll_interval: Option<HumanDuration>,
    pub state_interval: Option<HumanDuration>,
    pub cgroups: Option<RawCgroups>,
    #[serde(default)]
    pub install: RawInstall,
    #[serde(default)]
    pub restart: RawRestart,
    #[serde(default)]
    pub logs: RawLogs,
    #[serde(default)]
    pub faults: RawFaults,
    #[serde(default)]
    pub self_update: RawSelfUpdate,
}

/// A service to run: `name`, or `{service: name, role: role}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawService {
    Name(String),
    WithRole {
        service: String,
        role: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawCgroups {
    Auto,
    Off,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawInstall {
    pub start_window: Option<HumanDuration>,
    pub start_attempts: Option<Positive>,
    pub command_timeout: Option<HumanDuration>,
    #[serde(rename = "maxImageMB")]
    pub max_image_mb: Option<Positive>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawRestart {
    pub initial_delay: Option<HumanDuration>,
    pub max_delay: Option<HumanDuration>,
    pub stable_after: Option<HumanDuration>,
    pub crash_loop_after: Option<Positive>,
    pub sample_interval: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawLogs {
    pub tail_lines: Option<u32>,
    pub upload_batch_lines: Option<Positive>,
    pub upload_batch_wait: Option<HumanDuration>,
    #[serde(rename = "maxSpoolMB")]
    pub max_spool_mb: Option<Positive>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawFaults {
    #[serde(rename = "maxTotalMB")]
    pub max_total_mb: Option<Positive>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawSelfUpdate {
    pub probe_timeout: Option<HumanDuration>,
    pub ready_window: Option<HumanDuration>,
    pub handover_wait: Option<HumanDuration>,
}

/// A duration read from a humantime string (`30s`, `10m`, `1h 30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub(crate) Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|error| {
                serde::de::Error::custom(format_args!(
                    "invalid duration `{text}` ({error}); write e.g. `500ms`, `30s`, `10m` or `1h`"
                ))
            })
    }
}

/// A whole number of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Positive(pub(crate) u32);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PositiveVisitor;
        impl serde::de::Visitor<'_> for PositiveVisitor {
            type Value = Positive;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of at least 1")
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Positive, E> {
                u32::try_from(value)
                    .ok()
                    .filter(|value| *value >= 1)
                    .map(Positive)
                    .ok_or_else(|| {
                        E::custom(format_args!(
                            "{value} is not a whole number from 1 to {}",
                            u32::MAX
                        ))
                    })
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Positive, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::custom(format_args!(
                        "{value} is not a whole number of at least 1"
                    ))),
                }
            }
        }
        deserializer.deserialize_u64(PositiveVisitor)
    }
}
