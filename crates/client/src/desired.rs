//! The client versions that should run: `clientDesiredVersions` (a query, for polling)
//! and `clientDesiredVersionsChanged` (a subscription that gives the list in force at
//! once, then again at each change), both as a map `service -> client version`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;
use vupdate_core::service::ServiceName;
use vupdate_core::version::ClientVersion;

use crate::Client;
use crate::error::ClientError;
use crate::subscription::Subscription;

/// The desired client version of each service, by service name (no role).
pub type DesiredVersions = BTreeMap<ServiceName, ClientVersion>;

const QUERY: &str = "query($services: [String!]) { clientDesiredVersions(services: $services) { service version } }";
const SUBSCRIPTION: &str = "subscription($services: [String!]) { clientDesiredVersionsChanged(services: $services) { service version } }";

#[derive(Deserialize)]
struct ServiceVersion {
    service: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Polled {
    client_desired_versions: Vec<ServiceVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Changed {
    client_desired_versions_changed: Vec<ServiceVersion>,
}

/// The list as a map; an entry that does not parse is the server breaking its promise.
fn to_map(operation: &str, list: Vec<ServiceVersion>) -> Result<DesiredVersions, ClientError> {
    list.into_iter()
        .map(|entry| {
            let decode = |reason: String| ClientError::Decode {
                what: format!("GraphQL `{operation}`"),
                reason,
            };
            let service = entry
                .service
                .parse()
                .map_err(|e| decode(format!("service `{}`: {e}", entry.service)))?;
            let version = entry.version.parse().map_err(|e| {
                decode(format!(
                    "version `{}` of `{}`: {e}",
                    entry.version, entry.service
                ))
            })?;
            Ok((service, version))
        })
        .collect()
}

fn services_variable(services: Option<&[ServiceName]>) -> serde_json::Value {
    json!({ "services": services.map(|list| list.iter().map(ServiceName::as_str).collect::<Vec<_>>()) })
}

impl Client {
    /// The client versions that should run now, for `services` (all when `None`); a
    /// service without a desired version is absent from the map.
    pub async fn client_desired_versions(
        &self,
        services: Option<&[ServiceName]>,
    ) -> Result<DesiredVersions, ClientError> {
        let polled: Polled = self.graphql(QUERY, services_variable(services)).await?;
        to_map("clientDesiredVersions", polled.client_desired_versions)
    }

    /// Follows the client versions that should run for `services` (all when `None`):
    /// the feed's first event is the list in force, then one event per change. The
    /// feed ends on a cut; following again is the caller's choice.
    pub async fn follow_client_desired_versions(
        &self,
        services: Option<&[ServiceName]>,
    ) -> Result<DesiredVersionsFeed, ClientError> {
        let subscription = self
            .subscribe(SUBSCRIPTION, services_variable(services))
            .await?;
        Ok(DesiredVersionsFeed { subscription })
    }
}

/// A live feed of desired client versions ([`Client::follow_client_desired_versions`]).
#[derive(Debug)]
pub struct DesiredVersionsFeed {
    subscription: Subscription<Changed>,
}

impl DesiredVersionsFeed {
    /// The next list (the whole map for the services followed); `Ok(None)` when the
    /// server ended the feed. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<DesiredVersions>, ClientError> {
        match self.subscription.next().await? {
            Some(changed) => to_map(
                "clientDesiredVersionsChanged",
                changed.client_desired_versions_changed,
            )
            .map(Some),
            None => Ok(None),
        }
    }

    /// Ends the feed and closes its socket.
    pub async fn close(self) {
        self.subscription.close().await;
    }
}
