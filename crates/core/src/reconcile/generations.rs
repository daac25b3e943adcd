//! Which services need a client generation check: their client settings in the state repo
//! no longer match what their newest client version was made from.
//!
//! Pure: the caller hashes each service's merged client settings at the commit in force,
//! reads the settings stamp of the newest client version record of the developer version
//! in force, and says which checks ended before; [`plan_generation_checks`] returns the
//! checks to start.
//!
//! The rule, exactly. A service gets a [`Build::Generation`] check when all of these hold:
//!
//! 1. its effective client version (desired, or derived for a `self` service) has an image
//!    (a missing one is a plain client build, which uses the settings in force anyway);
//! 2. the newest client version record of that developer version carries a settings stamp
//!    (a record made before stamps were kept, or no record at all, starts nothing by
//!    itself: `rebuildClientVersion` checks it by hand);
//! 3. that stamp differs from the hash of the merged client settings in force;
//! 4. the check for that (service, developer version, settings hash) neither failed nor
//!    ended unchanged already (`failed` and `settled`, kept by the caller), unless the
//!    service is `forced` (asked for by hand).
//!
//! A forced service needs only rule 1. The checks are sorted by service.

use std::collections::{BTreeMap, BTreeSet};

use super::{Build, BuildKey};
use crate::service::ServiceName;
use crate::version::ClientVersion;

/// What the newest client version record of a developer version says it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewestRecord {
    /// No client version of that developer version has a record.
    Missing,
    /// The newest record has no settings stamp (it was made before stamps were kept).
    Unstamped,
    /// The newest record's settings hash.
    Stamped(String),
}

/// What the caller knows of one service's client version in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInForce {
    /// The effective client version.
    pub version: ClientVersion,
    /// Whether its image exists.
    pub has_image: bool,
    /// The hash of the service's merged client settings at the commit in force.
    pub settings: String,
    /// The newest client version record of `version.developer`.
    pub newest: NewestRecord,
}

/// The key a check of `service` at `in_force` is remembered by.
pub fn generation_key(service: &ServiceName, in_force: &ClientInForce) -> BuildKey {
    BuildKey::Generation(
        service.clone(),
        in_force.version.developer.clone(),
        in_force.settings.clone(),
    )
}

/// The generation checks to start (see the module docs for the exact rule).
pub fn plan_generation_checks(
    services: &BTreeMap<ServiceName, ClientInForce>,
    failed: &BTreeSet<BuildKey>,
    settled: &BTreeSet<BuildKey>,
    forced: &BTreeSet<ServiceName>,
) -> Vec<Build> {
    services
        .iter()
        .filter(|(service, in_force)| {
            if !in_force.has_image {
                return false;
            }
            if forced.contains(*service) {
                return true;
            }
            let key = generation_key(service, in_force);
            match &in_force.newest {
                NewestRecord::Stamped(hash) => {
                    *hash != in_force.settings && !failed.contains(&key) && !settled.contains(&key)
                }
                NewestRecord::Missing | NewestRecord::Unstamped => false,
            }
        })
        .map(|(service, in_force)| Build::Generation {
            service: service.clone(),
            current: in_force.version.clone(),
            settings: in_force.settings.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One service's facts: `version image? settings newest`, where newest is `-` (no
    /// record), `?` (unstamped) or a hash.
    fn facts(text: &str) -> ClientInForce {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [version, image, settings, newest] = parts[..] else {
            panic!("four parts: {text}");
        };
        ClientInForce {
            version: version.parse().expect("client version"),
            has_image: image == "image",
            settings: settings.to_owned(),
            newest: match newest {
                "-" => NewestRecord::Missing,
                "?" => NewestRecord::Unstamped,
                hash => NewestRecord::Stamped(hash.to_owned()),
            },
        }
    }

    fn key(service: &str, developer: &str, settings: &str) -> BuildKey {
        BuildKey::Generation(
            service.parse().expect("service"),
            developer.parse().expect("developer version"),
            settings.to_owned(),
        )
    }

    /// Runs the plan and renders it as `service<-current@settings`.
    fn check(
        services: &[(&str, &str)],
        failed: &[BuildKey],
        settled: &[BuildKey],
        forced: &[&str],
        expected: &[&str],
    ) {
        let services: BTreeMap<ServiceName, ClientInForce> = services
            .iter()
            .map(|(s, f)| (s.parse().expect("service"), facts(f)))
            .collect();
        let forced = forced.iter().map(|s| s.parse().expect("service")).collect();
        let plan = plan_generation_checks(
            &services,
            &failed.iter().cloned().collect(),
            &settled.iter().cloned().collect(),
            &forced,
        );
        let rendered: Vec<String> = plan
            .iter()
            .map(|build| match build {
                Build::Generation {
                    service,
                    current,
                    settings,
                } => format!("{service}<-{current}@{settings}"),
                other => panic!("not a generation check: {other:?}"),
            })
            .collect();
        assert_eq!(rendered, expected);
    }

    #[test]
    fn plans_a_check_where_the_settings_moved_away_from_the_newest_record() {
        /// What a case says, the services in force, failed, settled, forced, and the
        /// checks expected.
        type Case<'a> = (
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a [BuildKey],
            &'a [BuildKey],
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (
                "settings as the newest record was made: nothing",
                &[("api", "acme-1.0.0 image h1 h1")],
                &[],
                &[],
                &[],
                &[],
            ),
            (
                "settings changed: a check",
                &[("api", "acme-1.0.0 image h2 h1")],
                &[],
                &[],
                &[],
                &["api<-acme-1.0.0@h2"],
            ),
            (
                "no image yet: the plain client build uses the settings in force",
                &[("api", "acme-1.0.0 none h2 h1")],
                &[],
                &[],
                &[],
                &[],
            ),
            (
                "an older record without a stamp, or none: nothing by itself",
                &[
                    ("api", "acme-1.0.0 image h2 ?"),
                    ("web", "acme-1.0.0 image h2 -"),
                ],
                &[],
                &[],
                &[],
                &[],
            ),
            (
                "a check that failed or found the content unchanged is not planned again",
                &[
                    ("api", "acme-1.0.0 image h2 h1"),
                    ("web", "acme-2.0.0_1 image h3 h1"),
                ],
                &[key("api", "acme-1.0.0", "h2")],
                &[key("web", "acme-2.0.0", "h3")],
                &[],
                &[],
            ),
            (
                "settings that change again make a new key: a new check",
                &[("api", "acme-1.0.0 image h3 h1")],
                &[key("api", "acme-1.0.0", "h2")],
                &[key("api", "acme-1.0.0", "h2")],
                &[],
                &["api<-acme-1.0.0@h3"],
            ),
            (
                "the memory is per developer version",
                &[("api", "acme-1.0.1 image h2 h1")],
                &[key("api", "acme-1.0.0", "h2")],
                &[],
                &[],
                &["api<-acme-1.0.1@h2"],
            ),
            (
                "by hand: checked whatever the stamps and memory say, but only with an image",
                &[
                    ("api", "acme-1.0.0 image h1 h1"),
                    ("web", "acme-1.0.0 image h2 ?"),
                    ("geo", "jetto-3.0.0 none h1 -"),
                    ("pay", "acme-1.0.0_2 image h4 h1"),
                ],
                &[],
                &[key("pay", "acme-1.0.0", "h4")],
                &["api", "web", "geo", "pay"],
                &[
                    "api<-acme-1.0.0@h1",
                    "pay<-acme-1.0.0_2@h4",
                    "web<-acme-1.0.0@h2",
                ],
            ),
        ];
        for (name, services, failed, settled, forced, expected) in cases {
            eprintln!("case: {name}");
            check(services, failed, settled, forced, expected);
        }
    }
}
