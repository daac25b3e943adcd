//! The client versions that should run: `clientDesiredVersions` (a query, for polling)
//! and `clientDesiredVersionsChanged` (a subscription that gives the list in force at
//! once, then again at each change), both as a map `service -> client version`, or as a
//! [`DesiredList`] with the state commit the list comes from. A server from before
//! revisions on the list answers the latter without one.

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
const QUERY_WITH_REVISION: &str = "query($services: [String!]) { clientDesiredVersions(services: $services) { service version revision } }";
const SUBSCRIPTION_WITH_REVISION: &str = "subscription($services: [String!]) { clientDesiredVersionsChanged(services: $services) { service version revision } }";
const QUERY_FOR_INSTANCE: &str = "query($services: [String!], $instance: String) { clientDesiredVersions(services: $services, instance: $instance) { service version revision } }";
const SUBSCRIPTION_FOR_INSTANCE: &str = "subscription($services: [String!], $instance: String) { clientDesiredVersionsChanged(services: $services, instance: $instance) { service version revision } }";

/// The desired versions with the state commit they come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredList {
    /// The state commit (full id); `None` from a server that does not say, or for an
    /// empty list.
    pub revision: Option<String>,
    /// The client version of each service.
    pub versions: DesiredVersions,
}

#[derive(Deserialize)]
struct ServiceVersion {
    service: String,
    version: String,
    #[serde(default)]
    revision: Option<String>,
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
    to_list(operation, list).map(|list| list.versions)
}

/// The list with its revision (every entry carries the same one).
fn to_list(operation: &str, list: Vec<ServiceVersion>) -> Result<DesiredList, ClientError> {
    let revision = list.first().and_then(|entry| entry.revision.clone());
    let versions = list
        .into_iter()
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
        .collect::<Result<_, ClientError>>()?;
    Ok(DesiredList { revision, versions })
}

/// `variables` with `instance` added.
fn instance_variables(variables: &serde_json::Value, instance: &str) -> serde_json::Value {
    let mut variables = variables.clone();
    variables["instance"] = json!(instance);
    variables
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

    /// [`Client::client_desired_versions`] with the state commit the list comes from
    /// (none from a server from before it), as `instance` gets it when given (a service
    /// rolled out by waves gives an instance the version of its wave; a server from
    /// before waves is asked without it).
    pub async fn client_desired_list(
        &self,
        services: Option<&[ServiceName]>,
        instance: Option<&str>,
    ) -> Result<DesiredList, ClientError> {
        let variables = services_variable(services);
        if let Some(instance) = instance {
            match self
                .graphql::<Polled>(QUERY_FOR_INSTANCE, instance_variables(&variables, instance))
                .await
            {
                Err(error) if error.is_unknown_argument("instance") => {}
                polled => {
                    return to_list("clientDesiredVersions", polled?.client_desired_versions);
                }
            }
        }
        let polled: Polled = match self.graphql(QUERY_WITH_REVISION, variables.clone()).await {
            Err(error) if error.is_unknown_field("revision") => {
                self.graphql(QUERY, variables).await?
            }
            other => other?,
        };
        to_list("clientDesiredVersions", polled.client_desired_versions)
    }

    /// [`Client::follow_client_desired_versions`] with revisions: read it with
    /// [`DesiredVersionsFeed::next_list`]. Against a server from before them the feed is
    /// opened again without (its lists have no revision).
    pub async fn follow_client_desired_list(
        &self,
        services: Option<&[ServiceName]>,
        instance: Option<&str>,
    ) -> Result<DesiredVersionsFeed, ClientError> {
        let variables = services_variable(services);
        let subscription = match instance {
            Some(instance) => {
                self.subscribe(
                    SUBSCRIPTION_FOR_INSTANCE,
                    instance_variables(&variables, instance),
                )
                .await?
            }
            None => {
                self.subscribe(SUBSCRIPTION_WITH_REVISION, variables.clone())
                    .await?
            }
        };
        Ok(DesiredVersionsFeed {
            subscription,
            fallback: Some((self.clone(), variables)),
            for_instance: instance.is_some(),
        })
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
        Ok(DesiredVersionsFeed {
            subscription,
            fallback: None,
            for_instance: false,
        })
    }
}

/// A live feed of desired client versions ([`Client::follow_client_desired_versions`]).
#[derive(Debug)]
pub struct DesiredVersionsFeed {
    subscription: Subscription<Changed>,
    /// For a feed that asks for revisions: how to open it again without them when the
    /// server does not know the field.
    fallback: Option<(Client, serde_json::Value)>,
    /// Whether it asks for one instance's list; a server from before waves does not know
    /// the argument, and the feed is opened again without it.
    for_instance: bool,
}

impl DesiredVersionsFeed {
    /// The next list (the whole map for the services followed); `Ok(None)` when the
    /// server ended the feed. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<DesiredVersions>, ClientError> {
        Ok(self.next_list().await?.map(|list| list.versions))
    }

    /// The next list with its revision ([`DesiredVersionsFeed::next`]).
    pub async fn next_list(&mut self) -> Result<Option<DesiredList>, ClientError> {
        let next = match self.subscription.next().await {
            Err(error) if self.for_instance && error.is_unknown_argument("instance") => {
                self.for_instance = false;
                let Some((client, variables)) = &self.fallback else {
                    return Err(error);
                };
                self.subscription = client
                    .subscribe(SUBSCRIPTION_WITH_REVISION, variables.clone())
                    .await?;
                return Box::pin(self.next_list()).await;
            }
            Err(error) if error.is_unknown_field("revision") => {
                let Some((client, variables)) = self.fallback.take() else {
                    return Err(error);
                };
                self.subscription = client.subscribe(SUBSCRIPTION, variables).await?;
                self.subscription.next().await?
            }
            other => other?,
        };
        next.map(|changed| {
            to_list(
                "clientDesiredVersionsChanged",
                changed.client_desired_versions_changed,
            )
        })
        .transpose()
    }

    /// Ends the feed and closes its socket.
    pub async fn close(self) {
        self.subscription.close().await;
    }
}
