//! The accounts handle.

use crate::doc::{Cond, Find, SortKey, Val};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::accounts::{ACCOUNT, Account, AccountType, TYPE};
use crate::store::Store;

/// Accounts: unique by name, with history.
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    store: &'a Store,
}

fn by_name(account: &str) -> Vec<Cond> {
    vec![Cond::Eq(&ACCOUNT, Val::str(account))]
}

impl<'a> Accounts<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Accounts { store }
    }

    /// Adds a new account; [`StoreError::Duplicate`] when the name is taken.
    pub async fn add(&self, account: Account) -> Result<Stored<Account>, StoreError> {
        one(self.store.insert_records(&[account]).await?)
    }

    /// Adds the account or replaces the one with its name (the old version goes to history).
    pub async fn put(&self, account: Account) -> Result<Stored<Account>, StoreError> {
        one(self.store.put_records(&[account]).await?)
    }

    /// The account with this name.
    pub async fn get(&self, account: &str) -> Result<Option<Stored<Account>>, StoreError> {
        self.store.first_record(by_name(account)).await
    }

    /// Every account, or those of one type, by name.
    pub async fn list(
        &self,
        account_type: Option<AccountType>,
    ) -> Result<Vec<Stored<Account>>, StoreError> {
        let filter = account_type
            .map(|t| vec![Cond::Eq(&TYPE, Val::str(t.as_str()))])
            .unwrap_or_default();
        self.store
            .find_records(Find {
                filter,
                sort: vec![(SortKey::Field(&ACCOUNT), false)],
                ..Find::default()
            })
            .await
    }

    /// Deletes the account (it can be restored for [`crate::ARCHIVE_RETENTION`]); false when
    /// there is none.
    pub async fn remove(&self, account: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .archive_records::<Account>(by_name(account))
            .await?
            > 0)
    }

    /// Every version of the account, oldest first; the current one, if any, is last.
    pub async fn history(&self, account: &str) -> Result<Vec<Stored<Account>>, StoreError> {
        self.store.history_records(by_name(account)).await
    }

    /// Makes the archived version `sequence` the current one again.
    pub async fn restore(&self, sequence: i64) -> Result<Stored<Account>, StoreError> {
        self.store.restore_record(sequence).await
    }
}

/// The single result of a one-record write.
pub(crate) fn one<T>(mut written: Vec<T>) -> Result<T, StoreError> {
    written.pop().ok_or(StoreError::Task {
        collection: "store",
        reason: "a write returned no record".to_owned(),
    })
}
