//! Differences between two sets of desired versions, per service.

use std::collections::BTreeMap;

use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};

use crate::model::Desired;

/// How one list `service -> version` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListDiff<V> {
    /// Services whose version changed: (old, new).
    pub changed: BTreeMap<ServiceName, (V, V)>,
    /// Services that are new in the list, with their version.
    pub added: BTreeMap<ServiceName, V>,
    /// Services that left the list, with the version they had.
    pub removed: BTreeMap<ServiceName, V>,
}

impl<V> Default for ListDiff<V> {
    fn default() -> Self {
        ListDiff {
            changed: BTreeMap::new(),
            added: BTreeMap::new(),
            removed: BTreeMap::new(),
        }
    }
}

impl<V: Clone + PartialEq> ListDiff<V> {
    /// The changes that turn `old` into `new`.
    pub fn between(old: &BTreeMap<ServiceName, V>, new: &BTreeMap<ServiceName, V>) -> Self {
        let mut diff = ListDiff::default();
        for (service, old_version) in old {
            match new.get(service) {
                None => {
                    diff.removed.insert(service.clone(), old_version.clone());
                }
                Some(new_version) if new_version != old_version => {
                    diff.changed
                        .insert(service.clone(), (old_version.clone(), new_version.clone()));
                }
                Some(_) => {}
            }
        }
        for (service, new_version) in new {
            if !old.contains_key(service) {
                diff.added.insert(service.clone(), new_version.clone());
            }
        }
        diff
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// How the desired developer and client lists changed between two revisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredDiff {
    /// Changes to `desired/developer.yaml`.
    pub developer: ListDiff<DeveloperVersion>,
    /// Changes to `desired/client.yaml` (the lists as written, not the effective versions).
    pub client: ListDiff<ClientVersion>,
}

impl DesiredDiff {
    /// Whether neither list changed.
    pub fn is_empty(&self) -> bool {
        self.developer.is_empty() && self.client.is_empty()
    }
}

impl Desired {
    /// The per-service changes from `old` to `new`.
    pub fn diff(old: &Desired, new: &Desired) -> DesiredDiff {
        DesiredDiff {
            developer: ListDiff::between(&old.developer, &new.developer),
            client: ListDiff::between(&old.client, &new.client),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, &str)]) -> BTreeMap<ServiceName, DeveloperVersion> {
        entries
            .iter()
            .map(|(s, v)| (s.parse().expect("service"), v.parse().expect("version")))
            .collect()
    }

    #[test]
    fn diff_sorts_services_into_changed_added_removed() {
        let old = Desired {
            developer: list(&[("a", "d-1.0"), ("b", "d-1.0"), ("c", "d-1.0")]),
            ..Desired::default()
        };
        let new = Desired {
            developer: list(&[("a", "d-1.1"), ("b", "d-1.0"), ("e", "d-2.0")]),
            ..Desired::default()
        };
        let diff = Desired::diff(&old, &new);
        let names =
            |m: Vec<&ServiceName>| m.into_iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(names(diff.developer.changed.keys().collect()), ["a"]);
        assert_eq!(names(diff.developer.added.keys().collect()), ["e"]);
        assert_eq!(names(diff.developer.removed.keys().collect()), ["c"]);
        assert_eq!(
            diff.developer
                .changed
                .values()
                .next()
                .map(|(o, n)| (o.to_string(), n.to_string())),
            Some(("d-1.0".into(), "d-1.1".into()))
        );
        assert!(diff.client.is_empty());
        assert!(Desired::diff(&new, &new).is_empty());
    }

    #[test]
    fn diff_there_and_back_swaps_added_and_removed() {
        let a = Desired {
            developer: list(&[("a", "d-1.0"), ("b", "d-1.0")]),
            ..Desired::default()
        };
        let b = Desired {
            developer: list(&[("b", "d-1.1"), ("c", "d-1.0")]),
            ..Desired::default()
        };
        let forth = Desired::diff(&a, &b).developer;
        let back = Desired::diff(&b, &a).developer;
        assert_eq!(forth.added, back.removed);
        assert_eq!(forth.removed, back.added);
        let swapped: BTreeMap<_, _> = back
            .changed
            .into_iter()
            .map(|(s, (o, n))| (s, (n, o)))
            .collect();
        assert_eq!(forth.changed, swapped);
    }
}
