//! Developer and client version records: who built a version, when, from what, and the
//! digest and size of its image in the distribution's blob store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::doc::{CollectionDef, FieldDef, FieldKind, Record, Val};

/// A source repository a developer version was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// The repository's name in the build settings.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The branch built.
    pub branch: String,
    /// The commit built, when known.
    pub commit: Option<String>,
}

/// How and when a developer version was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The account that asked for the build.
    pub author: String,
    /// The sources built.
    pub sources: Vec<SourceRef>,
    /// When it was built.
    pub time: DateTime<Utc>,
    /// The author's comment.
    pub comment: String,
}

/// The image of a version in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageInfo {
    /// The content digest, e.g. `sha256:…`.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Who made a client version and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallInfo {
    /// The account that made it.
    pub author: String,
    /// When.
    pub time: DateTime<Utc>,
}

/// A developer version of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperVersionRecord {
    /// The service.
    pub service: ServiceName,
    /// The version.
    pub version: DeveloperVersion,
    /// How it was built.
    pub build_info: BuildInfo,
    /// Its image.
    pub image: ImageInfo,
}

/// A client version of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientVersionRecord {
    /// The service.
    pub service: ServiceName,
    /// The version.
    pub version: ClientVersion,
    /// How its developer version was built.
    pub build_info: BuildInfo,
    /// Who made this client version and when.
    pub install_info: InstallInfo,
    /// Its image.
    pub image: ImageInfo,
    /// SHA-256 over the image's paths, modes and file contents (hex), equal for equal
    /// content whatever the zip bytes: what tells a new generation from an unchanged one.
    /// `None` on records made before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// The client settings the image was made from; `None` on records made before it was
    /// kept (such a record never starts a generation check by itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsStamp>,
}

/// What client settings a client image was made from: the hash of the service's merged
/// client build settings in the state repo and the commits of the settings repositories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsStamp {
    /// `sha256:<hex>` of the merged client build settings (settings repositories, macro
    /// values, environment, private file paths) at the state commit.
    pub hash: String,
    /// The state commit the settings were read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The settings repositories, in merge order, at the commits used.
    #[serde(default)]
    pub repositories: Vec<SourceRef>,
}

/// Which version records to list; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionQuery {
    /// Only this service.
    pub service: Option<ServiceName>,
    /// Only versions built by this distribution.
    pub distribution: Option<String>,
    /// Only this version (its text form, developer or client).
    pub version: Option<String>,
}

macro_rules! version_collection {
    ($record:ty, $def:ident, $name:literal, $service:ident, $version:ident, $distribution:ident, $dist_of:expr) => {
        pub(crate) static $service: FieldDef = FieldDef::new("service", "service", FieldKind::Str);
        pub(crate) static $version: FieldDef = FieldDef::new("version", "version", FieldKind::Str);
        pub(crate) static $distribution: FieldDef =
            FieldDef::derived("distribution", "distribution", FieldKind::Str);

        pub(crate) static $def: CollectionDef = CollectionDef {
            name: $name,
            fields: &[&$service, &$version, &$distribution],
            key: &[&$service, &$version],
            indexes: &[&[&$distribution]],
            history: true,
            present_only: &[],
            logs_db: false,
            text: None,
            newest: None,
        };

        impl Record for $record {
            const DEF: &'static CollectionDef = &$def;

            fn fields(&self) -> Vec<Val> {
                let distribution: fn(&$record) -> &str = $dist_of;
                vec![
                    Val::str(self.service.as_str()),
                    Val::str(self.version.to_string()),
                    Val::str(distribution(self)),
                ]
            }
        }

        impl $record {
            /// The service, version and distribution fields, for [`VersionQuery::filter`].
            pub(crate) const QUERY_FIELDS: [&'static FieldDef; 3] =
                [&$service, &$version, &$distribution];
        }
    };
}

version_collection!(
    DeveloperVersionRecord,
    DEVELOPER_VERSIONS,
    "developer_versions",
    DEV_SERVICE,
    DEV_VERSION,
    DEV_DISTRIBUTION,
    |r| r.version.distribution.as_str()
);
version_collection!(
    ClientVersionRecord,
    CLIENT_VERSIONS,
    "client_versions",
    CLIENT_SERVICE,
    CLIENT_VERSION,
    CLIENT_DISTRIBUTION,
    |r| r.version.developer.distribution.as_str()
);

impl VersionQuery {
    /// The query for one version of one service.
    pub fn one(service: &ServiceName, version: impl ToString) -> Self {
        VersionQuery {
            service: Some(service.clone()),
            distribution: None,
            version: Some(version.to_string()),
        }
    }

    pub(crate) fn filter(&self, fields: [&'static FieldDef; 3]) -> Vec<crate::doc::Cond> {
        use crate::doc::Cond;
        let [service, version, distribution] = fields;
        let mut filter = Vec::new();
        if let Some(s) = &self.service {
            filter.push(Cond::Eq(service, Val::str(s.as_str())));
        }
        if let Some(d) = &self.distribution {
            filter.push(Cond::Eq(distribution, Val::str(d)));
        }
        if let Some(v) = &self.version {
            filter.push(Cond::Eq(version, Val::str(v)));
        }
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record stored before the content digest and settings stamp were kept.
    const OLD_RECORD: &str = r#"{
        "service": "api",
        "version": "acme-1.0.0_1",
        "buildInfo": {"author": "ann", "sources": [], "time": "2026-11-20T10:00:00Z", "comment": "c"},
        "installInfo": {"author": "ann", "time": "2026-11-20T10:00:00Z"},
        "image": {"digest": "sha256:aa", "size": 10}
    }"#;

    #[test]
    fn a_record_without_digest_or_stamp_still_reads_and_writes_back_the_same() {
        let record: ClientVersionRecord = serde_json::from_str(OLD_RECORD).expect("old record");
        assert_eq!(record.content_digest, None);
        assert_eq!(record.settings, None);
        let written = serde_json::to_value(&record).expect("serialise");
        let old: serde_json::Value = serde_json::from_str(OLD_RECORD).expect("json");
        assert_eq!(written, old, "no new keys appear on an old record");
    }

    #[test]
    fn a_stamp_without_commit_or_repositories_reads() {
        let stamp: SettingsStamp = serde_json::from_str(r#"{"hash": "sha256:bb"}"#).expect("stamp");
        assert_eq!(stamp.commit, None);
        assert!(stamp.repositories.is_empty());
    }
}
