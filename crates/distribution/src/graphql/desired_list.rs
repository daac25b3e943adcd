//! The desired client list in force as updaters get it, in two parts kept apart: the shared
//! part, rendered once per state revision and set of known-bad versions and shared by every
//! query and subscription (an `Arc`), and the per-instance part applied to it (the services
//! an updater asks for; answers that differ by instance, such as rollout waves, belong
//! there too). With 10,000 updaters subscribed, a new revision is rendered once, not 10,000
//! times.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_graphql::SimpleObject;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;
use vupdate_state::State;

use super::types::ServiceVersion;
use crate::known_bad::{Held, KnownBad};
use crate::watcher::InForce;

/// A desired client version, with the state commit its list comes from.
#[derive(SimpleObject, Debug, Clone, PartialEq, Eq)]
pub struct DesiredClientVersion {
    /// The service.
    pub service: String,
    /// The client version that should run.
    pub version: String,
    /// The state commit (full id) the list comes from: what an updater reports as its
    /// `stateCommit` once all its services run the list.
    pub revision: String,
}

/// A rendered list, shared.
pub type DesiredList = Arc<[DesiredClientVersion]>;

/// The client versions that should run at `revision`, for `services` (all when `None`).
pub fn render(
    versions: &BTreeMap<ServiceName, ClientVersion>,
    revision: &str,
    services: Option<&BTreeSet<ServiceName>>,
) -> DesiredList {
    ServiceVersion::list(&super::types::only(versions, services))
        .into_iter()
        .map(|pair| DesiredClientVersion {
            service: pair.service,
            version: pair.version,
            revision: revision.to_owned(),
        })
        .collect()
}

/// The per-instance part: `list` cut to `services` (all when `None`; then the shared list
/// itself, not a copy).
pub fn for_instance(list: &DesiredList, services: Option<&BTreeSet<ServiceName>>) -> DesiredList {
    match services {
        None => Arc::clone(list),
        Some(services) => list
            .iter()
            .filter(|item| services.contains(item.service.as_str()))
            .cloned()
            .collect(),
    }
}

/// The last list in force rendered, with what it was rendered from; cheap to clone (one
/// cache for the whole server).
#[derive(Clone, Default)]
pub struct DesiredLists {
    last: Arc<Mutex<Option<Rendered>>>,
}

/// A list and its key. Holding the state and the known-bad set it was rendered from keeps
/// their allocations alive, so comparing pointers is exact (no address is reused while
/// the entry lives).
struct Rendered {
    revision: String,
    state: Arc<State>,
    held: Held,
    list: DesiredList,
}

impl DesiredLists {
    /// The client versions that should run now, for every updater: `in_force`'s effective
    /// client versions without the known-bad ones, rendered once per revision and
    /// known-bad set.
    pub fn in_force(&self, in_force: &InForce, known_bad: &KnownBad) -> DesiredList {
        self.rendered(in_force, known_bad.held_now())
    }

    /// `in_force`'s list without the versions in `held`, rendered unless it was last time.
    fn rendered(&self, in_force: &InForce, held: Held) -> DesiredList {
        // Rendered under the lock: the subscribers woken by one change wait for the first
        // to render it, then share its list.
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(rendered) = last.as_ref()
            && rendered.revision == in_force.revision.id
            && Arc::ptr_eq(&rendered.state, &in_force.state)
            && Arc::ptr_eq(&rendered.held, &held)
        {
            return Arc::clone(&rendered.list);
        }
        let versions =
            crate::known_bad::keep_out_of(&held, in_force.state.effective_client_versions());
        let list = render(&versions, &in_force.revision.id, None);
        *last = Some(Rendered {
            revision: in_force.revision.id.clone(),
            state: Arc::clone(&in_force.state),
            held,
            list: Arc::clone(&list),
        });
        list
    }
}

#[cfg(test)]
mod tests {
    use vupdate_state::files::FileSet;
    use vupdate_state::{Author, Revision};

    use super::*;

    const API: &str = "developer:\n  sources:\n    - name: api\n      git: { url: \"git@example.com:api.git\", branch: main }\n";

    /// The state in force at commit `id`, desiring `api` at `version` and `web` at 2.0.0.
    fn in_force(id: &str, version: &str) -> InForce {
        let developer = format!("versions:\n  api: acme-{version}\n  web: acme-2.0.0\n");
        let web = API.replace("api", "web");
        let files: FileSet = [
            ("vupdate.yaml", "schema: 1\n"),
            ("services/api.yaml", API),
            ("services/web.yaml", web.as_str()),
            ("profiles.yaml", "profiles:\n  self: [api, web]\n"),
            ("desired/developer.yaml", developer.as_str()),
        ]
        .into_iter()
        .collect();
        InForce {
            revision: Revision {
                id: id.to_owned(),
                author: Author {
                    name: "Alice".to_owned(),
                    email: "alice@example.com".to_owned(),
                },
                time: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
                summary: "State".to_owned(),
                parents: Vec::new(),
            },
            state: Arc::new(State::parse(&files).expect("a valid test state")),
        }
    }

    fn held(pairs: &[(&str, &str)]) -> Held {
        let mut held: BTreeMap<ServiceName, BTreeSet<ClientVersion>> = BTreeMap::new();
        for (service, version) in pairs {
            held.entry(service.parse().expect("name"))
                .or_default()
                .insert(version.parse().expect("version"));
        }
        Arc::new(held)
    }

    fn text(list: &DesiredList) -> String {
        list.iter()
            .map(|item| format!("{}={}@{}", item.service, item.version, item.revision))
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn one_revision_and_known_bad_set_is_rendered_once_and_shared() {
        let lists = DesiredLists::default();
        let first = in_force("c1", "1.0.0");
        let none = held(&[]);
        let a = lists.rendered(&first, Arc::clone(&none));
        let b = lists.rendered(&first.clone(), Arc::clone(&none));
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second caller shares the first's list"
        );
        assert_eq!(text(&a), "api=acme-1.0.0@c1,web=acme-2.0.0@c1");
    }

    #[test]
    fn a_new_revision_renders_anew() {
        let lists = DesiredLists::default();
        let none = held(&[]);
        let before = lists.rendered(&in_force("c1", "1.0.0"), Arc::clone(&none));
        let after = lists.rendered(&in_force("c2", "1.1.0"), Arc::clone(&none));
        assert_eq!(text(&before), "api=acme-1.0.0@c1,web=acme-2.0.0@c1");
        assert_eq!(text(&after), "api=acme-1.1.0@c2,web=acme-2.0.0@c2");
        // The same commit read again (a new state value) is rendered from what it holds.
        let again = lists.rendered(&in_force("c2", "1.1.0"), none);
        assert_eq!(text(&again), text(&after));
    }

    #[test]
    fn a_known_bad_mark_and_its_release_change_the_list_at_once() {
        let lists = DesiredLists::default();
        let state = in_force("c1", "1.0.0");
        let clean = lists.rendered(&state, held(&[]));
        let marked = lists.rendered(&state, held(&[("api", "acme-1.0.0")]));
        assert_eq!(text(&clean), "api=acme-1.0.0@c1,web=acme-2.0.0@c1");
        assert_eq!(
            text(&marked),
            "web=acme-2.0.0@c1",
            "the known-bad version is left out"
        );
        // Another version of the service being known-bad holds nothing back.
        let other = lists.rendered(&state, held(&[("api", "acme-0.9.0")]));
        assert_eq!(text(&other), text(&clean));
        let released = lists.rendered(&state, held(&[]));
        assert_eq!(text(&released), text(&clean));
    }

    #[test]
    fn each_instance_gets_its_services_of_the_shared_list() {
        let lists = DesiredLists::default();
        let list = lists.rendered(&in_force("c1", "1.0.0"), held(&[]));
        let web: BTreeSet<ServiceName> = ["web".parse().expect("name")].into_iter().collect();
        assert_eq!(text(&for_instance(&list, Some(&web))), "web=acme-2.0.0@c1");
        assert_eq!(text(&for_instance(&list, Some(&BTreeSet::new()))), "");
        assert!(
            Arc::ptr_eq(&for_instance(&list, None), &list),
            "all services: no copy"
        );
    }
}
