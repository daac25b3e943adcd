//! Version records: who built a version, from which commits, and its image (for a client
//! version also its content digest and the client settings it was made from). The builder
//! adds one after each upload; anyone with the role reads them.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Client;
use crate::error::ClientError;

/// A repository a version was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Its name in the build settings.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The branch built.
    pub branch: String,
    /// The commit built.
    pub commit: Option<String>,
}

/// How and when a developer version was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// Who asked for the build.
    pub author: String,
    /// The sources built.
    pub sources: Vec<Source>,
    /// When it was built.
    pub time: DateTime<Utc>,
    /// The comment (the commit message that asked for it).
    pub comment: String,
}

/// Who made a client version and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallInfo {
    /// The account or person.
    pub author: String,
    /// When.
    pub time: DateTime<Utc>,
}

/// An image as a version record names it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
}

/// What a client image was made from: the settings hash the loop compares with the state
/// in force, and the content digest that tells a new generation from an unchanged one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSettingsStamp {
    /// `sha256:<hex>` of the merged client build settings (`vupdate_state::client_settings_hash`).
    pub hash: String,
    /// The state commit they were read from.
    pub commit: Option<String>,
    /// The settings repositories, in merge order, at the commits used.
    pub repositories: Vec<Source>,
}

/// How a client image's content is known: the digest over its paths, modes and contents,
/// and the settings it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientContent {
    /// SHA-256 over the image's paths, modes and contents (hex).
    pub content_digest: String,
    /// The client settings it was made from.
    pub settings: ClientSettingsStamp,
}

/// A developer version record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperVersionInfo {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// How it was built.
    pub build_info: BuildInfo,
    /// Its image.
    pub image: ImageInfo,
}

/// A client version record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientVersionInfo {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// How its developer version was built.
    pub build_info: BuildInfo,
    /// Who made this client version.
    pub install_info: InstallInfo,
    /// Its image.
    pub image: ImageInfo,
    /// SHA-256 over the image's paths, modes and contents (hex); absent on older records.
    pub content_digest: Option<String>,
    /// The client settings it was made from; absent on older records.
    pub settings: Option<ClientSettingsStamp>,
}

const BUILD_FIELDS: &str = "buildInfo { author comment time sources { name url branch commit } }";
/// The fields of a client version record past its build info.
const CLIENT_FIELDS: &str = "installInfo { author time } image { digest size } contentDigest \
     settings { hash commit repositories { name url branch commit } }";

impl Client {
    /// Records a developer version whose image was uploaded (else `NOT_FOUND`).
    pub async fn add_developer_version_info(
        &self,
        service: impl Display,
        version: impl Display,
        build: &BuildInfo,
    ) -> Result<DeveloperVersionInfo, ClientError> {
        let query = format!(
            "mutation($info: DeveloperVersionInput!) {{ addDeveloperVersionInfo(info: $info) {{ service version {BUILD_FIELDS} image {{ digest size }} }} }}"
        );
        let info = json!({"service": service.to_string(), "version": version.to_string(), "buildInfo": build});
        let data: Answer<DeveloperVersionInfo> =
            self.graphql(&query, json!({ "info": info })).await?;
        Ok(data.0)
    }

    /// Records a client version whose image was uploaded (else `NOT_FOUND`); `install`
    /// defaults to the caller, now; `content` stamps what the image was made from.
    pub async fn add_client_version_info(
        &self,
        service: impl Display,
        version: impl Display,
        build: &BuildInfo,
        install: Option<&InstallInfo>,
        content: Option<&ClientContent>,
    ) -> Result<ClientVersionInfo, ClientError> {
        let query = format!(
            "mutation($info: ClientVersionInput!) {{ addClientVersionInfo(info: $info) {{ service version {BUILD_FIELDS} {CLIENT_FIELDS} }} }}"
        );
        let info = json!({
            "service": service.to_string(),
            "version": version.to_string(),
            "buildInfo": build,
            "installInfo": install,
            "contentDigest": content.map(|content| &content.content_digest),
            "settings": content.map(|content| &content.settings),
        });
        let data: Answer<ClientVersionInfo> = self.graphql(&query, json!({ "info": info })).await?;
        Ok(data.0)
    }

    /// The developer version records of `service`, all or only `version`.
    pub async fn developer_versions_info(
        &self,
        service: impl Display,
        version: Option<&str>,
    ) -> Result<Vec<DeveloperVersionInfo>, ClientError> {
        let query = format!(
            "query($service: String, $version: String) {{ developerVersionsInfo(service: $service, version: $version) {{ service version {BUILD_FIELDS} image {{ digest size }} }} }}"
        );
        let data: Answer<Vec<DeveloperVersionInfo>> = self
            .graphql(
                &query,
                json!({"service": service.to_string(), "version": version}),
            )
            .await?;
        Ok(data.0)
    }

    /// The client version records of `service`, all or only `version`.
    pub async fn client_versions_info(
        &self,
        service: impl Display,
        version: Option<&str>,
    ) -> Result<Vec<ClientVersionInfo>, ClientError> {
        let query = format!(
            "query($service: String, $version: String) {{ clientVersionsInfo(service: $service, version: $version) {{ service version {BUILD_FIELDS} {CLIENT_FIELDS} }} }}"
        );
        let data: Answer<Vec<ClientVersionInfo>> = self
            .graphql(
                &query,
                json!({"service": service.to_string(), "version": version}),
            )
            .await?;
        Ok(data.0)
    }
}

/// The one field of a `data` object, whatever its name.
struct Answer<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Answer<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, T>::deserialize(deserializer)?;
        let mut values = map.into_values();
        match (values.next(), values.next()) {
            (Some(value), None) => Ok(Answer(value)),
            _ => Err(serde::de::Error::custom(
                "expected exactly one field in `data`",
            )),
        }
    }
}
