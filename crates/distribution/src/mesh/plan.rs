//! What a provider's offer changes here, worked out without I/O: for each service offered,
//! the client version to desire, and the desired client list that takes it.

use std::collections::BTreeMap;

use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::{State, StateEdit};

/// What an offer changes in a state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferPlan {
    /// Service -> the client version to desire instead of the one in force (services whose
    /// client version in force is made from the offered developer version are left out).
    pub change: BTreeMap<ServiceName, ClientVersion>,
    /// Offered services this state does not declare (they need `services/<name>.yaml`).
    pub undeclared: Vec<ServiceName>,
}

impl OfferPlan {
    /// Whether the offer changes nothing.
    pub fn is_empty(&self) -> bool {
        self.change.is_empty()
    }

    /// The edit that takes the change into `state`'s desired client list.
    pub fn edit(&self, state: &State) -> StateEdit {
        let mut list = state.desired.client.clone();
        list.extend(self.change.clone());
        StateEdit::SetDesiredClient(list)
    }
}

/// The plan for `offered` (service -> developer version) in `state`: a declared service
/// whose client version in force is not made from the offered developer version gets the
/// client version `client_of` names for that developer version (the newest one made here,
/// or the first).
pub fn plan_offer(
    state: &State,
    offered: &BTreeMap<ServiceName, DeveloperVersion>,
    client_of: impl Fn(&ServiceName, &DeveloperVersion) -> ClientVersion,
) -> OfferPlan {
    let in_force = state.effective_client_versions();
    let mut plan = OfferPlan::default();
    for (service, developer) in offered {
        if !state.services.contains_key(service) {
            plan.undeclared.push(service.clone());
            continue;
        }
        if in_force
            .get(service)
            .is_some_and(|current| &current.developer == developer)
        {
            continue;
        }
        plan.change
            .insert(service.clone(), client_of(service, developer));
    }
    plan
}

/// The commit message of taking `plan` from `provider` at its `revision`: a summary line
/// naming the provider's revision, and a line per service.
pub fn message(
    provider: &str,
    revision: &str,
    test_consumer: Option<&str>,
    state: &State,
    plan: &OfferPlan,
) -> String {
    let short: String = revision.chars().take(12).collect();
    let in_force = state.effective_client_versions();
    let mut text = format!("Take {provider}'s versions at its revision {short}\n\n");
    text.push_str(&format!(
        "{provider} offers, at its state commit {revision}:\n"
    ));
    for (service, version) in &plan.change {
        let was = in_force
            .get(service)
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        text.push_str(&format!("  {service}: {version} (was {was})\n"));
    }
    if let Some(tester) = test_consumer {
        text.push_str(&format!(
            "\nOnly versions {tester} marked as tested on {provider}.\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use vupdate_state::FileSet;

    use super::*;

    fn state(client: &str) -> State {
        let files: FileSet = [
            ("vupdate.yaml", "schema: 1\n"),
            ("services/hello.yaml", "client: {}\n"),
            ("services/own.yaml", ""),
            ("profiles.yaml", "profiles:\n  self: [own]\n"),
            ("desired/developer.yaml", "versions:\n  own: here-1.0.0\n"),
            ("desired/client.yaml", client),
        ]
        .into_iter()
        .collect();
        State::parse(&files).expect("valid")
    }

    fn offered(pairs: &[(&str, &str)]) -> BTreeMap<ServiceName, DeveloperVersion> {
        pairs
            .iter()
            .map(|(s, v)| (s.parse().expect("service"), v.parse().expect("version")))
            .collect()
    }

    fn first(_: &ServiceName, developer: &DeveloperVersion) -> ClientVersion {
        ClientVersion::first(developer.clone())
    }

    fn change(plan: &OfferPlan) -> Vec<String> {
        plan.change
            .iter()
            .map(|(s, v)| format!("{s}={v}"))
            .collect()
    }

    #[test]
    fn an_offer_changes_what_is_not_made_from_it_and_skips_undeclared_services() {
        let state = state("versions:\n  hello: jetto-1.0.0_2\n");
        let plan = plan_offer(
            &state,
            &offered(&[("hello", "jetto-1.1.0"), ("mail", "jetto-1.0.0")]),
            first,
        );
        assert_eq!(change(&plan), ["hello=jetto-1.1.0"]);
        assert_eq!(
            plan.undeclared,
            ["mail".parse::<ServiceName>().expect("name")]
        );
        // The client version in force is a generation of the offered one: nothing to do.
        let same = plan_offer(&state, &offered(&[("hello", "jetto-1.0.0")]), first);
        assert!(same.is_empty());
        // The newest client version made here is what is desired.
        let newest = plan_offer(&state, &offered(&[("hello", "jetto-1.1.0")]), |_, d| {
            ClientVersion {
                developer: d.clone(),
                generation: 3,
            }
        });
        assert_eq!(change(&newest), ["hello=jetto-1.1.0_3"]);
    }

    #[test]
    fn the_edit_keeps_the_rest_of_the_list_and_the_message_names_the_revision() {
        let state = state("versions:\n  hello: jetto-1.0.0\n");
        let plan = plan_offer(&state, &offered(&[("hello", "jetto-1.1.0")]), first);
        let StateEdit::SetDesiredClient(list) = plan.edit(&state) else {
            panic!("a client list edit");
        };
        assert_eq!(list.len(), 1);
        let text = message(
            "jetto",
            "0123456789abcdef0123",
            Some("staging"),
            &state,
            &plan,
        );
        assert_eq!(
            text,
            "Take jetto's versions at its revision 0123456789ab\n\njetto offers, at its state commit 0123456789abcdef0123:\n  hello: jetto-1.1.0 (was jetto-1.0.0)\n\nOnly versions staging marked as tested on jetto.\n"
        );
    }
}
