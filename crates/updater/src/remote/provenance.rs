//! Which state commit this updater has converged to, for the `stateCommit` of its state
//! reports: the revision of the desired list it follows once every service it runs is on
//! that list's version; until then the last revision it fully applied (none at first).

use std::sync::{Mutex, PoisonError};

use vupdate_client::DesiredList;

use crate::agent::DesiredVersions;
use crate::state::InstanceState;

/// The desired list followed (with its revision) and the last revision fully applied.
#[derive(Debug, Default)]
pub struct Provenance {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    desired: Option<(String, DesiredVersions)>,
    applied: Option<String>,
}

impl Provenance {
    /// Follows `list` from now on (one without a revision leaves nothing to apply);
    /// says whether its revision is new.
    pub fn follow(&self, list: &DesiredList) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let new = inner.desired.as_ref().map(|(revision, _)| revision) != list.revision.as_ref();
        inner.desired = list
            .revision
            .clone()
            .map(|revision| (revision, list.versions.clone()));
        new
    }

    /// The commit to report with `states`: the followed revision when every state runs
    /// its service's desired version (kept as applied), else the last one applied.
    pub fn commit(&self, states: &[InstanceState]) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((revision, versions)) = &inner.desired {
            let applied = states.iter().all(|instance| {
                versions
                    .get(&instance.service)
                    .is_none_or(|desired| instance.state.version.as_ref() == Some(desired))
            });
            if applied {
                inner.applied = Some(revision.clone());
            }
        }
        inner.applied.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ServiceState;

    fn state(service: &str, version: &str) -> InstanceState {
        let mut state = ServiceState::unknown();
        state.version = Some(version.parse().expect("version"));
        InstanceState {
            service: service.parse().expect("service"),
            role: None,
            directory: format!("/srv/{service}"),
            state,
        }
    }

    fn list(revision: &str, pairs: &[(&str, &str)]) -> DesiredList {
        DesiredList {
            revision: Some(revision.to_owned()),
            versions: pairs
                .iter()
                .map(|(s, v)| (s.parse().expect("service"), v.parse().expect("version")))
                .collect(),
        }
    }

    #[test]
    fn the_commit_is_the_last_list_every_service_runs() {
        let provenance = Provenance::default();
        let running = [state("api", "acme-1.0.0"), state("web", "acme-2.0.0")];
        assert_eq!(provenance.commit(&running), None, "nothing followed yet");
        provenance.follow(&list("c1", &[("api", "acme-1.0.0"), ("web", "acme-2.0.0")]));
        assert_eq!(provenance.commit(&running).as_deref(), Some("c1"));
        provenance.follow(&list("c2", &[("api", "acme-1.0.1"), ("web", "acme-2.0.0")]));
        assert_eq!(
            provenance.commit(&running).as_deref(),
            Some("c1"),
            "api is not on c2's version yet"
        );
        let updated = [state("api", "acme-1.0.1"), state("web", "acme-2.0.0")];
        assert_eq!(provenance.commit(&updated).as_deref(), Some("c2"));
        provenance.follow(&DesiredList::default());
        assert_eq!(provenance.commit(&updated).as_deref(), Some("c2"));
    }
}
