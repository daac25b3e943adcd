//! [`Store::split_legacy_roles`]: service states and log records as updaters wrote them
//! before roles had a field of their own: the service `worker` in role `eu` stored as the
//! service `worker-eu`, in the directory `/var/lib/vupdate/./worker-eu`.
//!
//! Which names are `service-role` depends on the services the state repo declares (the
//! dash rule of `vupdate_core::service`), which only the caller knows, so the caller says
//! how to read a name. Records are rewritten in place, keeping their `_sequence` (log
//! cursors stay valid); a state, whose key holds the service and directory, is moved to
//! its new key unless a newer state is there already. Each collection's progress is kept
//! as an upgrade mark, so a record is looked at once and a later call only reads what was
//! stored since; a call cut short is simply made again.

use vupdate_core::paths::clean_directory;
use vupdate_core::service::{Role, ServiceName};

use crate::doc::{CollectionDef, Cond, Find, Op, Record, SortKey, Val};
use crate::error::StoreError;
use crate::model::logs::{self, LOG_RECORDS};
use crate::model::states::{self, SERVICE_STATES, ServiceStateRecord};
use crate::model::upgrades::{self, UpgradeMark};
use crate::store::Store;

/// What [`Store::split_legacy_roles`] rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoleSplit {
    /// Service states given their role apart or a clean directory.
    pub states: u64,
    /// Log records given their role apart.
    pub log_roles: u64,
    /// Log records given a clean directory.
    pub log_directories: u64,
}

/// The `_sequence` window of one collection a call looks at: after the mark, up to the
/// newest record when the call began.
struct Window {
    after: Option<i64>,
    last: i64,
}

impl Window {
    fn filter(&self) -> Vec<Cond> {
        let mut filter = vec![Cond::Sequence(Op::Lte, self.last)];
        if let Some(after) = self.after {
            filter.push(Cond::Sequence(Op::Gt, after));
        }
        filter
    }
}

impl Store {
    /// Gives service states and log records stored with the service and role in one name
    /// (`worker-eu`, as updaters before roles had their own field sent them) their service
    /// and role apart, and their directory its clean spelling (no `/./`). `split` reads a
    /// name: `Some((service, role))` for a service in a role, `None` when the whole name is
    /// the service (or no declared service matches). Only records stored since the last
    /// call are looked at.
    pub async fn split_legacy_roles(
        &self,
        split: impl Fn(&str) -> Option<(ServiceName, Role)>,
    ) -> Result<RoleSplit, StoreError> {
        let mut done = RoleSplit::default();
        if let Some(window) = self.window(&SERVICE_STATES).await? {
            done.states = self.split_states(&window, &split).await?;
            self.mark(&SERVICE_STATES, window.last).await?;
        }
        if let Some(window) = self.window(&LOG_RECORDS).await? {
            (done.log_roles, done.log_directories) = self.split_logs(&window, &split).await?;
            self.mark(&LOG_RECORDS, window.last).await?;
        }
        Ok(done)
    }

    fn mark_name(def: &CollectionDef) -> String {
        format!("roles:{}", def.name)
    }

    /// The window to look at in `def`, or `None` when nothing was stored since the mark.
    async fn window(&self, def: &'static CollectionDef) -> Result<Option<Window>, StoreError> {
        let mark: Option<crate::Stored<UpgradeMark>> = self
            .first_record(vec![Cond::Eq(
                &upgrades::NAME,
                Val::str(Self::mark_name(def)),
            )])
            .await?;
        let after = mark.map(|mark| mark.record.sequence);
        let newest = Find {
            filter: after.map_or_else(Vec::new, |after| vec![Cond::Sequence(Op::Gt, after)]),
            sort: vec![(SortKey::Sequence, true)],
            skip: 0,
            limit: Some(1),
        };
        let last = self
            .backend()
            .find(def, newest)
            .await?
            .first()
            .map(|raw| raw.sequence);
        Ok(last.map(|last| Window { after, last }))
    }

    async fn mark(&self, def: &'static CollectionDef, sequence: i64) -> Result<(), StoreError> {
        let mark = UpgradeMark {
            name: Self::mark_name(def),
            sequence,
        };
        self.put_records(&[mark]).await.map(drop)
    }

    async fn split_states(
        &self,
        window: &Window,
        split: &impl Fn(&str) -> Option<(ServiceName, Role)>,
    ) -> Result<u64, StoreError> {
        let mut filter = window.filter();
        filter.push(Cond::Eq(&states::ROLE, Val::Null));
        let legacy: Vec<crate::Stored<ServiceStateRecord>> = self
            .find_records(Find {
                filter,
                ..Find::default()
            })
            .await?;
        let mut rewritten = 0;
        for stored in legacy {
            let old = stored.record;
            let mut new = old.clone();
            if let Some((service, role)) = split(old.service.as_str()) {
                new.service = service;
                new.role = Some(role);
            }
            new.directory = clean_directory(&old.directory);
            if new == old {
                continue;
            }
            let newer_there: Option<crate::Stored<ServiceStateRecord>> = self
                .first_record(new.to_doc(0)?.key_filter(&SERVICE_STATES))
                .await?;
            if newer_there.is_none_or(|there| there.record.state.time < new.state.time) {
                self.put_records(&[new]).await?;
            }
            // Written first, removed second: a call cut short in between finds the old
            // state again, and the new one is there already.
            self.backend()
                .purge(&SERVICE_STATES, old.to_doc(0)?.key_filter(&SERVICE_STATES))
                .await?;
            rewritten += 1;
        }
        Ok(rewritten)
    }

    async fn split_logs(
        &self,
        window: &Window,
        split: &impl Fn(&str) -> Option<(ServiceName, Role)>,
    ) -> Result<(u64, u64), StoreError> {
        let (mut roles, mut directories_cleaned) = (0, 0);
        let mut legacy = window.filter();
        legacy.push(Cond::Eq(&logs::ROLE, Val::Null));
        let names = self
            .backend()
            .distinct(&LOG_RECORDS, &logs::SERVICE, legacy.clone())
            .await?;
        for name in names {
            let Some((service, role)) = split(&name) else {
                continue;
            };
            let mut filter = legacy.clone();
            filter.push(Cond::Eq(&logs::SERVICE, Val::str(&name)));
            let set = vec![
                (&logs::SERVICE, Val::str(service.as_str())),
                (&logs::ROLE, Val::str(role.as_str())),
            ];
            roles += self.backend().update(&LOG_RECORDS, filter, set).await?;
        }
        let directories = self
            .backend()
            .distinct(&LOG_RECORDS, &logs::DIRECTORY, window.filter())
            .await?;
        for directory in directories {
            let clean = clean_directory(&directory);
            if clean == directory {
                continue;
            }
            let mut filter = window.filter();
            filter.push(Cond::Eq(&logs::DIRECTORY, Val::str(&directory)));
            let set = vec![(&logs::DIRECTORY, Val::Str(clean))];
            directories_cleaned += self.backend().update(&LOG_RECORDS, filter, set).await?;
        }
        Ok((roles, directories_cleaned))
    }
}
