//! The sealed secrets handle: shared by every replica on one store.

use crate::doc::{Cond, Find, Val};
use crate::error::StoreError;
use crate::model::secrets::{NAME, SealedSecret};
use crate::store::Store;

/// Sealed secrets, unique by name.
#[derive(Debug, Clone, Copy)]
pub struct Secrets<'a> {
    store: &'a Store,
}

impl<'a> Secrets<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Secrets { store }
    }

    /// Sets `secret`, replacing the value of the same name.
    pub async fn set(&self, secret: SealedSecret) -> Result<(), StoreError> {
        self.store.put_records(&[secret]).await.map(drop)
    }

    /// Every secret, by name.
    pub async fn list(&self) -> Result<Vec<SealedSecret>, StoreError> {
        let mut all: Vec<SealedSecret> = self
            .store
            .find_records::<SealedSecret>(Find::default())
            .await?
            .into_iter()
            .map(|stored| stored.record)
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Removes the secret `name`; false when there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .store
            .archive_records::<SealedSecret>(vec![Cond::Eq(&NAME, Val::str(name))])
            .await?;
        Ok(removed > 0)
    }
}
