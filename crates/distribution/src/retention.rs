//! Which versions of a service must be kept, and the retention pass that removes the rest.
//!
//! A version is *in use* when the state in force desires it (directly, or as the developer
//! version of a desired client version), when a distribution marked it as tested, or when an
//! instance reports it as running or being installed. Retention keeps the newest
//! `maxHistorySize` versions of each kind per service and every version in use; it removes
//! the image ref and the version record of the others (blobs go at the next image gc).

use std::collections::BTreeSet;

use vupdate_core::service::ServiceName;
use vupdate_core::version::{ClientVersion, DeveloperVersion};
use vupdate_state::State;
use vupdate_store::Store;
use vupdate_store::model::states::StateQuery;

use crate::http::ApiError;
use crate::images::{ImageKind, ImageStore, ImageVersion};

/// The versions of one service that must not be removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InUse {
    /// Developer versions in use.
    pub developer: BTreeSet<DeveloperVersion>,
    /// Client versions in use.
    pub client: BTreeSet<ClientVersion>,
}

impl InUse {
    /// Whether `version` is in use.
    pub fn contains(&self, version: &ImageVersion) -> bool {
        match version {
            ImageVersion::Developer(v) => self.developer.contains(v),
            ImageVersion::Client(v) => self.client.contains(v),
        }
    }

    /// Every version in use as image versions.
    pub fn image_versions(&self) -> BTreeSet<ImageVersion> {
        self.developer
            .iter()
            .cloned()
            .map(ImageVersion::Developer)
            .chain(self.client.iter().cloned().map(ImageVersion::Client))
            .collect()
    }

    fn add_client(&mut self, version: ClientVersion) {
        self.developer.insert(version.developer.clone());
        self.client.insert(version);
    }
}

/// The versions of `service` in use by `state` and by the instances reporting to `store`.
pub async fn in_use(
    state: &State,
    store: &Store,
    service: &ServiceName,
) -> Result<InUse, ApiError> {
    let mut used = InUse::default();
    if let Some(version) = state.desired.developer.get(service) {
        used.developer.insert(version.clone());
    }
    if let Some(version) = state.effective_client_versions().remove(service) {
        used.add_client(version);
    }
    for tested in state.tested.values() {
        if let Some(version) = tested.versions.get(service) {
            used.developer.insert(version.clone());
        }
    }
    // Instances of the service in every role.
    let query = StateQuery {
        service: Some(service.clone()),
        ..StateQuery::default()
    };
    for stored in store.service_states().query(&query).await? {
        let state = stored.record.state;
        for version in [state.version, state.update_to_version]
            .into_iter()
            .flatten()
        {
            used.add_client(version);
        }
    }
    Ok(used)
}

/// Removes the images and records of `service`'s versions beyond the newest `max_history`
/// of each kind that are not in use; returns what was removed.
pub async fn enforce(
    images: &ImageStore,
    store: &Store,
    state: &State,
    service: &ServiceName,
    max_history: usize,
) -> Result<Vec<ImageVersion>, ApiError> {
    let used = in_use(state, store, service).await?;
    let keep = used.image_versions();
    let mut removed = Vec::new();
    for kind in ImageKind::ALL {
        for version in images.retain(kind, service, max_history, &keep).await? {
            match &version {
                ImageVersion::Developer(v) => store.developer_versions().remove(service, v).await?,
                ImageVersion::Client(v) => store.client_versions().remove(service, v).await?,
            };
            removed.push(version);
        }
    }
    Ok(removed)
}
