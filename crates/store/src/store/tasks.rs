//! The tasks handle.

use crate::doc::{Cond, Val};
use crate::error::StoreError;
use crate::model::Stored;
use crate::model::tasks::{ACTIVE, ID, SERVICES, TYPE, Task, TaskQuery};
use crate::store::Store;
use crate::store::accounts::one;

/// Tasks: unique by id, newest first.
#[derive(Debug, Clone, Copy)]
pub struct Tasks<'a> {
    store: &'a Store,
}

impl<'a> Tasks<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Tasks { store }
    }

    /// Adds a new task; [`StoreError::Duplicate`] when the id is taken.
    pub async fn add(&self, task: Task) -> Result<Stored<Task>, StoreError> {
        one(self.store.insert_records(&[task]).await?)
    }

    /// Replaces a task (e.g. when it ends); the old version goes to history.
    pub async fn put(&self, task: Task) -> Result<Stored<Task>, StoreError> {
        one(self.store.put_records(&[task]).await?)
    }

    /// The task with this id.
    pub async fn get(&self, id: &str) -> Result<Option<Stored<Task>>, StoreError> {
        self.store
            .first_record(vec![Cond::Eq(&ID, Val::str(id))])
            .await
    }

    /// The matching tasks, newest (by creation time) first.
    pub async fn query(&self, query: &TaskQuery) -> Result<Vec<Stored<Task>>, StoreError> {
        self.store.find_records(query.to_find()).await
    }

    /// The task types in use, sorted.
    pub async fn types(&self) -> Result<Vec<String>, StoreError> {
        self.store
            .backend()
            .distinct(&crate::model::tasks::TASKS, &TYPE, Vec::new())
            .await
    }

    /// The services tasks concern, sorted.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        self.store
            .backend()
            .distinct(&crate::model::tasks::TASKS, &SERVICES, Vec::new())
            .await
    }

    /// Marks every task still active as failed, ended now: at start-up, no task of a
    /// previous run is still running. Returns how many were marked.
    pub async fn interrupt_active(&self) -> Result<u64, StoreError> {
        let active: Vec<Stored<Task>> = self
            .store
            .find_records(crate::doc::Find {
                filter: vec![Cond::Eq(&ACTIVE, Val::Bool(true))],
                ..Default::default()
            })
            .await?;
        let now = self.store.now();
        let ended: Vec<Task> = active
            .into_iter()
            .map(|stored| Task {
                active: false,
                termination_time: Some(now),
                termination_status: Some(false),
                ..stored.record
            })
            .collect();
        Ok(self.store.put_records(&ended).await?.len() as u64)
    }
}
