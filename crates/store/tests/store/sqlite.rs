//! The conformance suite on SQLite: each case gets a new file in its own temporary directory
//! (below a directory that does not exist yet, so "a fresh data directory needs no set-up"
//! is exercised every time).

use vupdate_store::StoreConfig;

use crate::conformance::{Ctx, instantiate};

async fn open_store(_case: &str) -> Option<Ctx> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = StoreConfig::Sqlite {
        path: dir.path().join("data/not-yet/store.sqlite"),
    };
    let store = vupdate_store::open(&config)
        .await
        .expect("open a fresh SQLite store");
    Some(Ctx::new(store, config, Some(dir)))
}

instantiate!(crate::sqlite::open_store);
