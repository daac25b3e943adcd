//! [`probe`]: whether this build can open a store, without changing it: a SQLite file is
//! opened read-only and its schema version compared with the newest this build knows; a
//! MongoDB server is pinged. A new binary runs this before it replaces a running server
//! (the distribution's self-update), so one that would refuse the store is never swapped in.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;
use crate::config::StoreConfig;

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreProbe {
    /// The store, as messages name it (`sqlite:PATH`, `mongodb:URL (DB)`).
    pub description: String,
    /// The SQLite schema version found (0: no file yet, created at the first open);
    /// `None` for MongoDB, which has no schema version.
    pub schema: Option<i64>,
    /// The newest SQLite schema version this build writes.
    pub supported: i64,
}

/// Checks that the store `config` names is one this build can open and upgrade, changing
/// nothing in it (the running server keeps writing meanwhile).
pub async fn probe(config: &StoreConfig) -> Result<StoreProbe, StoreError> {
    match config {
        StoreConfig::Sqlite { path } => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || probe_sqlite(&path))
                .await
                .map_err(|e| StoreError::Task {
                    collection: "store",
                    reason: e.to_string(),
                })?
        }
        StoreConfig::Mongo { url, database, .. } => {
            crate::mongo::ping(url, database).await?;
            Ok(StoreProbe {
                description: format!("mongodb:{} ({database})", crate::mongo::redact_url(url)),
                schema: None,
                supported: crate::sqlite::SCHEMA_VERSION,
            })
        }
    }
}

fn probe_sqlite(path: &Path) -> Result<StoreProbe, StoreError> {
    let description = format!("sqlite:{}", path.display());
    let supported = crate::sqlite::SCHEMA_VERSION;
    if !path.exists() {
        return Ok(StoreProbe {
            description,
            schema: Some(0),
            supported,
        });
    }
    let fail = |reason: String| StoreError::OpenSqlite {
        path: path.to_owned(),
        reason,
    };
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| fail(e.to_string()))?;
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| fail(format!("{e} (is it a vupdate store?)")))?;
    if version > supported {
        return Err(fail(format!(
            "it was written by a newer vupdate (schema {version}; this build knows up to {supported})"
        )));
    }
    Ok(StoreProbe {
        description,
        schema: Some(version),
        supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_is_probed_without_being_changed_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.sqlite");
        let config = StoreConfig::Sqlite { path: path.clone() };
        let missing = probe(&config).await.expect("no file yet");
        assert_eq!(missing.schema, Some(0));
        assert!(!path.exists(), "the probe creates nothing");

        drop(crate::open(&config).await.expect("open"));
        let before = std::fs::read(&path).expect("read");
        let found = probe(&config).await.expect("probe");
        assert_eq!(found.schema, Some(crate::sqlite::SCHEMA_VERSION));
        assert_eq!(std::fs::read(&path).expect("read"), before, "unchanged");

        let connection = Connection::open(&path).expect("open");
        connection
            .pragma_update(None, "user_version", crate::sqlite::SCHEMA_VERSION + 1)
            .expect("newer");
        drop(connection);
        let error = probe(&config).await.expect_err("newer schema");
        assert!(
            error.to_string().contains("written by a newer vupdate"),
            "{error}"
        );
    }
}
