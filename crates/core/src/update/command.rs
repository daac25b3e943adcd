//! A command of `buildCommands`, `installCommands` or `postInstallCommands`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::check;
use super::pattern::Pattern;
use crate::macros::{MacroError, Macros};

/// One program run with its arguments, environment and expected outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Command {
    /// The program to run (never empty).
    #[serde(deserialize_with = "check::command")]
    pub command: String,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables added to the environment it inherits.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// The directory to run in, relative to the build or install directory; that directory if
    /// left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The exit code that means success; when left out the code is not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// A pattern the command's output (stdout and stderr) must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_match: Option<Pattern>,
}

impl Command {
    /// A command with no arguments, environment or checks.
    pub fn new(command: impl Into<String>) -> Self {
        Command {
            command: command.into(),
            args: Vec::new(),
            env: IndexMap::new(),
            directory: None,
            exit_code: None,
            output_match: None,
        }
    }

    /// Expands macros in the command, arguments, environment values, directory and output
    /// pattern; an undefined macro is an error naming the field (`args[1]`, `env.PATH`).
    pub fn expand(&self, macros: &Macros) -> Result<Command, MacroError> {
        Ok(Command {
            command: expand_field(macros, &self.command, "command")?,
            args: expand_args(macros, &self.args)?,
            env: expand_env(macros, &self.env)?,
            directory: self
                .directory
                .as_deref()
                .map(|directory| expand_field(macros, directory, "directory"))
                .transpose()?,
            exit_code: self.exit_code,
            output_match: self
                .output_match
                .as_ref()
                .map(|pattern| {
                    pattern
                        .expand(macros)
                        .map_err(|e| e.in_field("outputMatch"))
                })
                .transpose()?,
        })
    }
}

/// Expands one string field, naming it in the error.
pub(super) fn expand_field(macros: &Macros, text: &str, field: &str) -> Result<String, MacroError> {
    macros.expand(text).map_err(|error| error.in_field(field))
}

/// Expands each argument; errors name `args[i]`.
pub(super) fn expand_args(macros: &Macros, args: &[String]) -> Result<Vec<String>, MacroError> {
    args.iter()
        .enumerate()
        .map(|(i, arg)| {
            macros
                .expand(arg)
                .map_err(|error| error.in_field(format!("args[{i}]")))
        })
        .collect()
}

/// Expands each environment value (names are kept); errors name `env.NAME`.
pub(super) fn expand_env(
    macros: &Macros,
    env: &IndexMap<String, String>,
) -> Result<IndexMap<String, String>, MacroError> {
    env.iter()
        .map(|(name, value)| {
            let value = macros
                .expand(value)
                .map_err(|error| error.in_field(format!("env.{name}")))?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// Expands a list of commands; errors name `field[i].…`.
pub(super) fn expand_all(
    macros: &Macros,
    commands: &[Command],
    field: &str,
) -> Result<Vec<Command>, MacroError> {
    commands
        .iter()
        .enumerate()
        .map(|(i, command)| {
            command
                .expand(macros)
                .map_err(|error| error.in_field(format!("{field}[{i}]")))
        })
        .collect()
}
