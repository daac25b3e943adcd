//! The reconcile plan: which images to build so that every desired version has one.
//!
//! Pure: the caller says which images exist and which builds failed; [`plan_builds`]
//! returns the builds to start, dependencies first.
//!
//! The rule, exactly:
//!
//! 1. Every desired developer version without an image is built, unless that build failed.
//! 2. Every effective client version without an image is built from its developer version
//!    (`DIST-1.2.3_N` from `DIST-1.2.3`), unless that build failed. When the developer
//!    image is missing too, the developer build is planned first (even if that developer
//!    version is no longer desired: a client version held back still needs it); when
//!    that developer build failed, the client build is blocked and left out.
//! 3. The plan lists developer builds first, then client builds, each sorted by service
//!    then version, without duplicates: a runner that starts builds in order and waits for
//!    a client build's developer build never waits on a build that comes later.
//!
//! A failed build is planned again only once the caller clears `failed` (when the state
//! changes), so a broken build does not loop.
//!
//! [`generations`] plans the other kind of work: a client generation check for each
//! service whose client settings changed since its newest client version was made.

pub mod generations;

use std::collections::{BTreeMap, BTreeSet};

use crate::service::ServiceName;
use crate::version::{ClientVersion, DeveloperVersion};

/// One build to start. (Not to be confused with [`crate::version::Build`], a build number.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Build {
    /// Build a developer image from the service's sources.
    Developer {
        /// The service.
        service: ServiceName,
        /// The version to build.
        version: DeveloperVersion,
    },
    /// Build a client image from a developer image and the client settings.
    Client {
        /// The service.
        service: ServiceName,
        /// The version to build.
        version: ClientVersion,
        /// The developer version it is made from (its image must exist first).
        from: DeveloperVersion,
    },
    /// Build a client image of `current`'s developer version from the client settings in
    /// force and store it as the next generation `_N` if its content is new (see
    /// [`generations`]).
    Generation {
        /// The service.
        service: ServiceName,
        /// The effective client version when the check was planned (its image exists).
        current: ClientVersion,
        /// The hash of the service's merged client settings the check is made for.
        settings: String,
    },
}

/// What a build is keyed by: its target (developer or client), service and version.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BuildKey {
    /// A developer build.
    Developer(ServiceName, DeveloperVersion),
    /// A client build.
    Client(ServiceName, ClientVersion),
    /// A client generation check of a developer version for a settings hash.
    Generation(ServiceName, DeveloperVersion, String),
}

impl BuildKey {
    /// The service it builds for.
    pub fn service(&self) -> &ServiceName {
        match self {
            BuildKey::Developer(service, _)
            | BuildKey::Client(service, _)
            | BuildKey::Generation(service, ..) => service,
        }
    }
}

impl Build {
    /// The key this build is remembered by (e.g. in the set of failed builds).
    pub fn key(&self) -> BuildKey {
        match self {
            Build::Developer { service, version } => {
                BuildKey::Developer(service.clone(), version.clone())
            }
            Build::Client {
                service, version, ..
            } => BuildKey::Client(service.clone(), version.clone()),
            Build::Generation {
                service,
                current,
                settings,
            } => BuildKey::Generation(service.clone(), current.developer.clone(), settings.clone()),
        }
    }

    /// The service it builds for.
    pub fn service(&self) -> &ServiceName {
        match self {
            Build::Developer { service, .. }
            | Build::Client { service, .. }
            | Build::Generation { service, .. } => service,
        }
    }
}

/// The builds that bring the images up to the desired versions, dependencies first (see
/// the module docs for the exact rule).
pub fn plan_builds(
    desired_developer: &BTreeMap<ServiceName, DeveloperVersion>,
    effective_client: &BTreeMap<ServiceName, ClientVersion>,
    have_developer: &impl Fn(&ServiceName, &DeveloperVersion) -> bool,
    have_client: &impl Fn(&ServiceName, &ClientVersion) -> bool,
    failed: &BTreeSet<BuildKey>,
) -> Vec<Build> {
    let developer_failed = |s: &ServiceName, v: &DeveloperVersion| {
        failed.contains(&BuildKey::Developer(s.clone(), v.clone()))
    };
    let mut developer = BTreeSet::new();
    for (service, version) in desired_developer {
        if !have_developer(service, version) && !developer_failed(service, version) {
            developer.insert((service.clone(), version.clone()));
        }
    }
    let mut client = BTreeSet::new();
    for (service, version) in effective_client {
        if have_client(service, version)
            || failed.contains(&BuildKey::Client(service.clone(), version.clone()))
        {
            continue;
        }
        let from = &version.developer;
        if !have_developer(service, from) {
            if developer_failed(service, from) {
                continue; // Blocked until the state changes and the developer build is retried.
            }
            developer.insert((service.clone(), from.clone()));
        }
        client.insert((service.clone(), version.clone()));
    }
    let developer = developer
        .into_iter()
        .map(|(service, version)| Build::Developer { service, version });
    let client = client.into_iter().map(|(service, version)| Build::Client {
        service,
        from: version.developer.clone(),
        version,
    });
    developer.chain(client).collect()
}

#[cfg(test)]
mod tests;
