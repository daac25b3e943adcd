//! `build`: the commands that build a developer version and the files copied into its image.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::check;
use super::command::Command;
use crate::macros::Macros;

/// How a developer version is built from the service's sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BuildRules {
    /// Commands run in order in the source directory; the first failure stops the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_commands: Vec<Command>,
    /// Files and directories copied into the version image afterwards.
    pub copy_files: Vec<CopyFile>,
}

/// One file or directory copied from the sources into the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CopyFile {
    /// The path in the sources (may reach a sibling repository as `../<name>/...`).
    pub source_file: String,
    /// The path in the image: relative, without `..`, so it stays inside the image.
    #[serde(deserialize_with = "check::image_path")]
    pub destination_file: String,
    /// Paths under `sourceFile` left out of the copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// Macro values expanded in the copied files (other macros are left for client builds).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub settings: IndexMap<String, String>,
}

impl CopyFile {
    /// The `settings` as macros, to expand the copied files with
    /// [`Macros::expand_known`].
    pub fn macros(&self) -> Macros {
        self.settings
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect()
    }
}
