//! A consumer distribution's calls to its provider: the versions it receives
//! (`consumerVersions`, and the live feed `consumerVersionsChanged`), its tested marks
//! (`setTestedVersions`, recorded under its name) and the versions it installed
//! (`setInstalledDesiredVersions`). States and fault reports go through [`crate::states`]
//! and [`crate::faults`], as an updater's do; the provider stores them under the
//! consumer's name.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;
use vupdate_core::service::ServiceName;
use vupdate_core::version::DeveloperVersion;

use crate::Client;
use crate::error::ClientError;
use crate::subscription::Subscription;

const FIELDS: &str = "distribution consumer revision testConsumer versions { service version }";

/// What a provider offers this consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The provider's name.
    pub distribution: String,
    /// The provider's state commit the list comes from.
    pub revision: String,
    /// The consumer whose tested marks gate the list, if one does.
    pub test_consumer: Option<String>,
    /// Service -> developer version.
    pub versions: BTreeMap<ServiceName, DeveloperVersion>,
}

#[derive(Deserialize)]
struct WireVersion {
    service: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOffer {
    distribution: String,
    revision: String,
    test_consumer: Option<String>,
    versions: Vec<WireVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Polled {
    consumer_versions: WireOffer,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Changed {
    consumer_versions_changed: WireOffer,
}

impl WireOffer {
    fn into_offer(self, operation: &str) -> Result<Offer, ClientError> {
        let decode = |reason: String| ClientError::Decode {
            what: format!("GraphQL `{operation}`"),
            reason,
        };
        let mut versions = BTreeMap::new();
        for entry in self.versions {
            let service = entry
                .service
                .parse()
                .map_err(|e| decode(format!("service `{}`: {e}", entry.service)))?;
            let version = entry
                .version
                .parse()
                .map_err(|e| decode(format!("version `{}`: {e}", entry.version)))?;
            versions.insert(service, version);
        }
        Ok(Offer {
            distribution: self.distribution,
            revision: self.revision,
            test_consumer: self.test_consumer,
            versions,
        })
    }
}

fn pairs<V: std::fmt::Display>(list: &BTreeMap<ServiceName, V>) -> serde_json::Value {
    list.iter()
        .map(|(service, version)| json!({"service": service.as_str(), "version": version.to_string()}))
        .collect()
}

impl Client {
    /// The versions the provider offers this consumer now; with `test_consumer`, only
    /// those that consumer marked as tested (unless the provider names one itself).
    pub async fn consumer_versions(
        &self,
        test_consumer: Option<&str>,
    ) -> Result<Offer, ClientError> {
        let query =
            format!("query($t: String) {{ consumerVersions(testConsumer: $t) {{ {FIELDS} }} }}");
        let polled: Polled = self.graphql(&query, json!({ "t": test_consumer })).await?;
        polled.consumer_versions.into_offer("consumerVersions")
    }

    /// Follows what the provider offers: the first event is the offer now, then one per
    /// change. The feed ends on a cut; following again is the caller's choice.
    pub async fn follow_consumer_versions(
        &self,
        test_consumer: Option<&str>,
    ) -> Result<OfferFeed, ClientError> {
        let query = format!(
            "subscription($t: String) {{ consumerVersionsChanged(testConsumer: $t) {{ {FIELDS} }} }}"
        );
        let subscription = self
            .subscribe(&query, json!({ "t": test_consumer }))
            .await?;
        Ok(OfferFeed { subscription })
    }

    /// Marks `versions` as tested by this consumer on the provider (one commit there, on
    /// its branch tip); returns the provider's new revision.
    pub async fn set_tested_versions_as_consumer(
        &self,
        versions: &BTreeMap<ServiceName, DeveloperVersion>,
        comment: &str,
    ) -> Result<String, ClientError> {
        let data: serde_json::Value = self
            .graphql(
                "mutation($v: [ServiceVersionChange!]!, $c: String!) { setTestedVersions(versions: $v, comment: $c) { id } }",
                json!({ "v": pairs(versions), "c": comment }),
            )
            .await?;
        data["setTestedVersions"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Decode {
                what: "GraphQL `setTestedVersions`".to_owned(),
                reason: format!("no revision id: {data}"),
            })
    }

    /// The versions this consumer marked as tested on the provider.
    pub async fn tested_versions_as_consumer(
        &self,
    ) -> Result<BTreeMap<ServiceName, DeveloperVersion>, ClientError> {
        #[derive(Deserialize)]
        struct Tested {
            versions: Vec<WireVersion>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            tested_versions: Vec<Tested>,
        }
        let answer: Answer = self
            .graphql(
                "{ testedVersions { versions { service version } } }",
                json!({}),
            )
            .await?;
        let wire = WireOffer {
            distribution: String::new(),
            revision: String::new(),
            test_consumer: None,
            versions: answer
                .tested_versions
                .into_iter()
                .flat_map(|t| t.versions)
                .collect(),
        };
        Ok(wire.into_offer("testedVersions")?.versions)
    }

    /// Reports the developer versions this consumer installed, replacing its last report.
    pub async fn set_installed_desired_versions(
        &self,
        versions: &BTreeMap<ServiceName, DeveloperVersion>,
    ) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .graphql(
                "mutation($v: [ServiceVersionInput!]!) { setInstalledDesiredVersions(versions: $v) }",
                json!({ "v": pairs(versions) }),
            )
            .await?;
        Ok(())
    }
}

/// A live feed of a provider's offer ([`Client::follow_consumer_versions`]).
#[derive(Debug)]
pub struct OfferFeed {
    subscription: Subscription<Changed>,
}

impl OfferFeed {
    /// The next offer; `Ok(None)` when the provider ended the feed. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<Offer>, ClientError> {
        match self.subscription.next().await? {
            Some(changed) => changed
                .consumer_versions_changed
                .into_offer("consumerVersionsChanged")
                .map(Some),
            None => Ok(None),
        }
    }

    /// Ends the feed and closes its socket.
    pub async fn close(self) {
        self.subscription.close().await;
    }
}
