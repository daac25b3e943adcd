//! Builds run on another distribution (a remote builder), and what a builder reads of the
//! distribution it builds for:
//!
//! - the consumer side: [`Client::run_builder`] asks a provider to run a build for this
//!   distribution, [`Client::remote_build`] follows it, [`Client::cancel_task`] stops it;
//! - the builder side: [`Client::build_settings`], a service's merged build settings at a
//!   state commit, for a builder that has no clone of the state repo.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Client;
use crate::error::ClientError;

/// What kind of build a remote builder runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RemoteBuildKind {
    /// `vupdate builder build-developer-version`.
    Developer,
    /// `vupdate builder build-client-version`.
    Client,
    /// `vupdate builder build-client-generation`.
    Generation,
}

/// A build asked of a provider (the API's `RemoteBuildInput`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteBuildRequest {
    /// What kind of build.
    pub kind: RemoteBuildKind,
    /// The service.
    pub service: String,
    /// The version to make (developer or client); the developer version for a generation.
    pub version: String,
    /// The developer version a client version is made from.
    pub developer_version: Option<String>,
    /// The asking distribution's state commit whose settings the build uses.
    pub commit: String,
    /// The asking distribution's task, whose log gets the build's lines.
    pub task: String,
    /// Who asked for the build.
    pub author: String,
    /// Why.
    pub comment: String,
}

/// Where a build run for this distribution stands (the API's `RemoteBuild`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteBuild {
    /// The provider's task.
    pub task: String,
    /// Whether it still runs.
    pub active: bool,
    /// How it ended (`None` while it runs).
    pub succeeded: Option<bool>,
    /// Its last log line, which says why a failed build failed.
    pub message: Option<String>,
}

/// A Git repository of build settings (the API's `Repository`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// Its directory name in the build.
    pub name: String,
    /// Where it lives.
    pub url: String,
    /// The branch built.
    pub branch: String,
    /// Whether submodules are cloned too.
    pub clone_submodules: bool,
    /// The folder used, if not the root.
    pub sub_directory: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

fn map(pairs: Vec<NameValue>) -> BTreeMap<String, String> {
    pairs.into_iter().map(|p| (p.name, p.value)).collect()
}

/// One part (developer or client) of build settings as the API gives it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(alias = "settings")]
    sources: Vec<Repository>,
    macro_values: Vec<NameValue>,
    environment: Vec<NameValue>,
    private_files: Vec<String>,
}

/// Developer or client build settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildPart {
    /// Source repositories (developer) or settings repositories (client), in order.
    pub repositories: Vec<Repository>,
    /// `%%name%%` macro values.
    pub macro_values: BTreeMap<String, String>,
    /// Environment variables of the build.
    pub environment: BTreeMap<String, String>,
    /// Paths of private files in the image.
    pub private_files: Vec<String>,
}

impl From<WirePart> for BuildPart {
    fn from(part: WirePart) -> BuildPart {
        BuildPart {
            repositories: part.sources,
            macro_values: map(part.macro_values),
            environment: map(part.environment),
            private_files: part.private_files,
        }
    }
}

/// A service's merged build settings at a state commit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildSettings {
    /// The provider whose distribution runs the builds, if not the distribution itself.
    pub builder: Option<String>,
    /// How developer versions are built.
    pub developer: Option<BuildPart>,
    /// How client versions are made.
    pub client: Option<BuildPart>,
}

const REPOSITORY: &str = "name url branch cloneSubmodules subDirectory";

impl Client {
    /// Asks the provider this client talks to (as its consumer) to run `build` with this
    /// distribution's settings; its builder reaches this distribution back with
    /// `access_token` (a Builder token of this distribution, kept in memory there and
    /// never shown). Returns the provider's task id.
    pub async fn run_builder(
        &self,
        build: &RemoteBuildRequest,
        access_token: &str,
    ) -> Result<String, ClientError> {
        let data: serde_json::Value = self
            .graphql(
                "mutation($b: RemoteBuildInput!, $t: String!) { runBuilder(build: $b, accessToken: $t) }",
                json!({ "b": build, "t": access_token }),
            )
            .await?;
        data["runBuilder"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Decode {
                what: "GraphQL `runBuilder`".to_owned(),
                reason: format!("not a task id: {data}"),
            })
    }

    /// Where the build the provider runs as `task` for this distribution stands.
    pub async fn remote_build(&self, task: &str) -> Result<RemoteBuild, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            remote_build: RemoteBuild,
        }
        let answer: Answer = self
            .graphql(
                "query($t: String!) { remoteBuild(task: $t) { task active succeeded message } }",
                json!({ "t": task }),
            )
            .await?;
        Ok(answer.remote_build)
    }

    /// Cancels a running task (a consumer may cancel only the builds run for it).
    pub async fn cancel_task(&self, task: &str) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .graphql(
                "mutation($t: String!) { cancelTask(task: $t) }",
                json!({ "t": task }),
            )
            .await?;
        Ok(())
    }

    /// The merged build settings of `service` at state commit `revision`.
    pub async fn build_settings(
        &self,
        service: impl Display,
        revision: &str,
    ) -> Result<BuildSettings, ClientError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WireSettings {
            builder: Option<String>,
            developer: Option<WirePart>,
            client: Option<WirePart>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            build_settings: WireSettings,
        }
        let query = format!(
            "query($s: String!, $r: String!) {{ buildSettings(service: $s, revision: $r, merged: true) {{ builder \
             developer {{ sources {{ {REPOSITORY} }} macroValues {{ name value }} environment {{ name value }} privateFiles }} \
             client {{ settings {{ {REPOSITORY} }} macroValues {{ name value }} environment {{ name value }} privateFiles }} }} }}"
        );
        let answer: Answer = self
            .graphql(&query, json!({ "s": service.to_string(), "r": revision }))
            .await?;
        let settings = answer.build_settings;
        Ok(BuildSettings {
            builder: settings.builder,
            developer: settings.developer.map(BuildPart::from),
            client: settings.client.map(BuildPart::from),
        })
    }
}
