//! The `update.json` and `install.json` models: how a service is built, installed and run.
//!
//! `update.json` sits in a service's first source repository and lists, per service, the
//! `build` rules (commands, then files copied into the image) and the `install` rules. The
//! `install` section is written to the image root as `install.json`, which is what an updater
//! reads; client settings may overlay it before that.
//!
//! Field names are the original's, camelCase, including `maxFileSizeMB` and `maxMemoryMB`.
//! Unknown fields are refused, so a misspelt `exitcode` is an error rather than a silently
//! ignored check. Every error names the JSON path of the bad value (and its line and column
//! when the reader knows them); values are checked as they are read (non-empty commands,
//! positive sizes and counts, CPU percents in 1..=10000, copy destinations inside the image,
//! valid regular expressions), and duplicate services after.
//!
//! Strings may hold `%%name%%` macros (see [`crate::macros`]); the `expand` methods fill
//! them in and name the field of any undefined one. Layout:
//!
//! - [`command`]: [`Command`], shared by build, install and post-install steps.
//! - [`build`]: [`BuildRules`] and [`CopyFile`].
//! - [`install`]: [`InstallRules`], the `install.json` document.
//! - [`run`]: [`RunService`], [`WriteLogs`], [`RestartConditions`], [`MaxCpu`].
//! - [`health`]: [`HealthCheck`] (`runService.healthCheck`) and its [`Probe`].
//! - [`signal`]: [`StopSignal`]; [`pattern`]: [`Pattern`], a regex that keeps its source.
//! - [`parse`]: [`UpdateJsonError`] and the path-naming reader.

pub mod build;
mod check;
pub mod command;
pub mod health;
pub mod install;
pub mod parse;
pub mod pattern;
pub mod run;
pub mod signal;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use build::{BuildRules, CopyFile};
pub use command::Command;
pub use health::{HealthCheck, Probe};
pub use install::InstallRules;
pub use parse::UpdateJsonError;
pub use pattern::{OutputMatch, Pattern};
pub use run::{MaxCpu, RestartConditions, RunService, WriteLogs};
pub use signal::{StopSignal, StopSignalError};

use crate::service::ServiceName;

/// An `update.json`: the build and install rules of the services of one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateFile {
    /// One entry per service, each service at most once.
    pub update: Vec<ServiceUpdate>,
}

/// The rules of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceUpdate {
    /// The service these rules are for.
    pub service: ServiceName,
    /// How to build its developer version.
    pub build: BuildRules,
    /// How to install and run it; written to the image as `install.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<InstallRules>,
}

impl UpdateFile {
    /// Reads an `update.json`; errors name the JSON path of the bad value.
    pub fn from_json(text: &str) -> Result<UpdateFile, UpdateJsonError> {
        let file: UpdateFile = parse::from_json(text)?;
        file.check_unique_services()?;
        Ok(file)
    }

    /// The rules of `name`, if the file has them.
    pub fn service(&self, name: &str) -> Option<&ServiceUpdate> {
        self.update
            .iter()
            .find(|entry| entry.service.as_str() == name)
    }

    /// The file as pretty-printed JSON; reading it back gives `self`.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("update rules have string keys and no failing serializer")
    }

    fn check_unique_services(&self) -> Result<(), UpdateJsonError> {
        let mut seen = HashMap::new();
        for (index, entry) in self.update.iter().enumerate() {
            if let Some(first) = seen.insert(&entry.service, index) {
                return Err(UpdateJsonError::Invalid {
                    path: format!("update[{index}].service"),
                    message: format!(
                        "service `{}` is already described at update[{first}]",
                        entry.service
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
