//! `install`: what goes to `install.json` in a version image.

use serde::{Deserialize, Serialize};

use super::command::{Command, expand_all};
use super::parse::{UpdateJsonError, from_json};
use super::run::RunService;
use crate::macros::{MacroError, Macros};

/// How a version is installed and run; written to the image as `install.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallRules {
    /// Commands run in the new version's directory before the old version stops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_commands: Vec<Command>,
    /// Commands run once the new version is in place, before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_install_commands: Vec<Command>,
    /// How to run the service; a version without it is installed but not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_service: Option<RunService>,
}

impl InstallRules {
    /// Reads an `install.json`; errors name the JSON path of the bad value.
    pub fn from_json(text: &str) -> Result<InstallRules, UpdateJsonError> {
        from_json(text)
    }

    /// The `install.json` text, pretty-printed; reading it back gives `self`.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("install rules have string keys and no failing serializer")
    }

    /// Expands macros in every command and in `runService`; errors name the field
    /// (`installCommands[0].args[1]`, `runService.env.PATH`).
    pub fn expand(&self, macros: &Macros) -> Result<InstallRules, MacroError> {
        Ok(InstallRules {
            install_commands: expand_all(macros, &self.install_commands, "installCommands")?,
            post_install_commands: expand_all(
                macros,
                &self.post_install_commands,
                "postInstallCommands",
            )?,
            run_service: self
                .run_service
                .as_ref()
                .map(|run| {
                    run.expand(macros)
                        .map_err(|error| error.in_field("runService"))
                })
                .transpose()?,
        })
    }
}
