//! Which backend a store uses and where its data lives.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the store keeps its data; part of the distribution's config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoreConfig {
    /// An embedded SQLite file (the default): nothing to set up; the file and its directory
    /// are created on first start.
    Sqlite {
        /// The database file, e.g. `data/store.sqlite`.
        path: PathBuf,
    },
    /// A MongoDB server (4.4 or newer), for more data than one machine's disk should hold.
    Mongo {
        /// The connection URL, e.g. `mongodb://127.0.0.1:27017/?directConnection=true`.
        /// `mongodb+srv://` is not supported (this build has no DNS resolver).
        url: String,
        /// The database name.
        database: String,
        /// A separate connection and database for log records (the original's `logsMongoDb`).
        #[serde(default)]
        logs: Option<MongoLogs>,
    },
}

/// The separate MongoDB connection for log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MongoLogs {
    /// The connection URL.
    pub url: String,
    /// The database name.
    pub database: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_read_from_the_distribution_config() {
        let sqlite: StoreConfig =
            serde_json::from_str(r#"{"kind": "sqlite", "path": "data/store.sqlite"}"#)
                .expect("sqlite");
        assert_eq!(
            sqlite,
            StoreConfig::Sqlite {
                path: "data/store.sqlite".into()
            }
        );
        let mongo: StoreConfig = serde_json::from_str(
            r#"{"kind": "mongo", "url": "mongodb://db:27017/", "database": "jetto",
                "logs": {"url": "mongodb://logs:27017/", "database": "jetto-logs"}}"#,
        )
        .expect("mongo");
        assert_eq!(
            mongo,
            StoreConfig::Mongo {
                url: "mongodb://db:27017/".into(),
                database: "jetto".into(),
                logs: Some(MongoLogs {
                    url: "mongodb://logs:27017/".into(),
                    database: "jetto-logs".into()
                }),
            }
        );
        let typo = serde_json::from_str::<StoreConfig>(r#"{"kind": "sqlite", "pth": "x"}"#);
        assert!(typo.is_err(), "unknown fields are refused");
    }
}
