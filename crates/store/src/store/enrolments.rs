//! The enrolment tokens handle: shared by every replica on one store, so a token issued
//! through one is spent through any other.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::doc::{Cond, Find, Op, Record, Val};
use crate::error::StoreError;
use crate::model::enrolments::{EXPIRES_AT, EnrolmentToken, EnrolmentUse, HASH, ID, TOKEN};
use crate::store::Store;

/// Enrolment tokens (unique by hash) and their uses (unique by token and slot).
#[derive(Debug, Clone, Copy)]
pub struct EnrolmentTokens<'a> {
    store: &'a Store,
}

/// A token and the uses spent of it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentEntry {
    /// The token.
    pub token: EnrolmentToken,
    /// Its uses, by slot.
    pub spent: Vec<EnrolmentUse>,
}

impl<'a> EnrolmentTokens<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        EnrolmentTokens { store }
    }

    /// Stores a newly issued token; [`StoreError::Duplicate`] when its hash is known.
    pub async fn add(&self, token: EnrolmentToken) -> Result<(), StoreError> {
        self.store.insert_records(&[token]).await.map(drop)
    }

    /// The token whose hash is `hash`, with its uses.
    pub async fn get(&self, hash: &str) -> Result<Option<EnrolmentEntry>, StoreError> {
        let Some(token) = self
            .store
            .first_record::<EnrolmentToken>(vec![Cond::Eq(&HASH, Val::str(hash))])
            .await?
        else {
            return Ok(None);
        };
        let spent = self.uses(vec![Cond::Eq(&TOKEN, Val::str(hash))]).await?;
        Ok(Some(EnrolmentEntry {
            token: token.record,
            spent,
        }))
    }

    /// Spends the next use of `token` on `instance` at `time`, unless all its uses are
    /// spent (`Ok(None)`). Each use is a document keyed by its slot, so of several
    /// processes spending the last use at once exactly one gets it.
    pub async fn spend(
        &self,
        token: &EnrolmentToken,
        instance: &str,
        time: DateTime<Utc>,
    ) -> Result<Option<EnrolmentUse>, StoreError> {
        // Each lost race means another use was spent, so this ends within `uses` rounds.
        loop {
            let spent = self
                .store
                .backend()
                .count(
                    <EnrolmentUse as Record>::DEF,
                    vec![Cond::Eq(&TOKEN, Val::str(&token.hash))],
                )
                .await?;
            let Ok(slot) = u32::try_from(spent) else {
                return Ok(None);
            };
            if slot >= token.uses {
                return Ok(None);
            }
            let spending = EnrolmentUse {
                token: token.hash.clone(),
                slot,
                instance: instance.to_owned(),
                time,
            };
            match self
                .store
                .insert_records(std::slice::from_ref(&spending))
                .await
            {
                Ok(_) => return Ok(Some(spending)),
                Err(StoreError::Duplicate { .. }) => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// Every token with its uses, newest issued first.
    pub async fn list(&self) -> Result<Vec<EnrolmentEntry>, StoreError> {
        let tokens = self
            .store
            .find_records::<EnrolmentToken>(Find::default())
            .await?;
        let mut uses: HashMap<String, Vec<EnrolmentUse>> = HashMap::new();
        for spent in self.uses(Vec::new()).await? {
            uses.entry(spent.token.clone()).or_default().push(spent);
        }
        let mut entries: Vec<EnrolmentEntry> = tokens
            .into_iter()
            .map(|stored| EnrolmentEntry {
                spent: uses.remove(&stored.record.hash).unwrap_or_default(),
                token: stored.record,
            })
            .collect();
        entries.sort_by(|a, b| {
            (b.token.issued_at, &b.token.id).cmp(&(a.token.issued_at, &a.token.id))
        });
        Ok(entries)
    }

    /// Forgets the token `id` and its uses; false when there is none.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let Some(token) = self
            .store
            .first_record::<EnrolmentToken>(vec![Cond::Eq(&ID, Val::str(id))])
            .await?
        else {
            return Ok(false);
        };
        self.forget(vec![Cond::Eq(&HASH, Val::str(&token.record.hash))])
            .await?;
        Ok(true)
    }

    /// Forgets the tokens that expired before `before`, with their uses; returns how many.
    pub async fn forget_expired(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.forget(vec![Cond::Cmp(&EXPIRES_AT, Op::Lt, Val::time(before))])
            .await
    }

    /// Removes the tokens matching `filter` first, then their uses: a use spent in
    /// between is left without its token, which no list shows.
    async fn forget(&self, filter: Vec<Cond>) -> Result<u64, StoreError> {
        let tokens = self
            .store
            .find_records::<EnrolmentToken>(Find {
                filter: filter.clone(),
                ..Find::default()
            })
            .await?;
        if tokens.is_empty() {
            return Ok(0);
        }
        let hashes: Vec<Val> = tokens
            .iter()
            .map(|stored| Val::str(&stored.record.hash))
            .collect();
        let removed = self
            .store
            .archive_records::<EnrolmentToken>(vec![Cond::In(&HASH, hashes.clone())])
            .await?;
        self.store
            .archive_records::<EnrolmentUse>(vec![Cond::In(&TOKEN, hashes)])
            .await?;
        Ok(removed)
    }

    async fn uses(&self, filter: Vec<Cond>) -> Result<Vec<EnrolmentUse>, StoreError> {
        let mut uses: Vec<EnrolmentUse> = self
            .store
            .find_records::<EnrolmentUse>(Find {
                filter,
                ..Find::default()
            })
            .await?
            .into_iter()
            .map(|stored| stored.record)
            .collect();
        uses.sort_by_key(|spent| spent.slot);
        Ok(uses)
    }
}
