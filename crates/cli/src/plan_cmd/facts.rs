//! The live facts of `state plan --distribution`: the images the distribution holds, the
//! instances reporting to it, and the known-bad versions when it reports them.

use std::collections::BTreeSet;

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;
use vupdate_state::plan::{Images, InstanceFact};
use vupdate_state::{Facts, KnownBad};

use crate::args::LiveArgs;

const FACTS: &str = "query PlanFacts { distributionInfo { distribution } \
    developerVersionsInfo { service version } clientVersionsInfo { service version } \
    serviceStates { distribution instance service role state { version } } }";

const KNOWN_BAD: &str = "query PlanKnownBad { knownBadVersions { service version reason } }";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    distribution_info: Info,
    developer_versions_info: Vec<Record>,
    client_versions_info: Vec<Record>,
    service_states: Vec<StateRecord>,
}

#[derive(Deserialize)]
struct Info {
    distribution: String,
}

#[derive(Deserialize)]
struct Record {
    service: String,
    version: String,
}

#[derive(Deserialize)]
struct StateRecord {
    distribution: String,
    instance: String,
    service: String,
    role: Option<String>,
    state: InstanceState,
}

#[derive(Deserialize)]
struct InstanceState {
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KnownBadAnswer {
    known_bad_versions: Vec<KnownBadRecord>,
}

#[derive(Deserialize)]
struct KnownBadRecord {
    service: String,
    version: String,
    reason: String,
}

/// Asks the distribution at `url` for the facts a plan uses.
pub fn fetch(url: &str, live: &LiveArgs) -> anyhow::Result<Facts> {
    let client = crate::remote::client(url, &live.access)?;
    crate::remote::runtime()?.block_on(async {
        let answer: Answer = client
            .graphql(FACTS, json!({}))
            .await
            .with_context(|| format!("asking {url} for images and instances"))?;
        let known_bad = match client.graphql::<KnownBadAnswer>(KNOWN_BAD, json!({})).await {
            Ok(answer) => Some(answer.known_bad_versions),
            Err(error) if error.is_unknown_field("knownBadVersions") => None,
            Err(error) => {
                return Err(error).with_context(|| format!("asking {url} for known-bad versions"));
            }
        };
        facts(answer, known_bad)
    })
}

fn facts(answer: Answer, known_bad: Option<Vec<KnownBadRecord>>) -> anyhow::Result<Facts> {
    let own = answer.distribution_info.distribution;
    let developer = answer
        .developer_versions_info
        .into_iter()
        .filter_map(|r| Some((r.service.parse().ok()?, r.version.parse().ok()?)))
        .collect::<BTreeSet<_>>();
    let client = answer
        .client_versions_info
        .into_iter()
        .filter_map(|r| Some((r.service.parse().ok()?, r.version.parse().ok()?)))
        .collect::<BTreeSet<_>>();
    // Consumers' instances report here too; only this distribution's own would update.
    let instances = answer
        .service_states
        .into_iter()
        .filter(|s| s.distribution == own)
        .filter_map(|s| {
            Some(InstanceFact {
                instance: s.instance,
                service: s.service.parse().ok()?,
                role: s.role,
                version: s.state.version.and_then(|v| v.parse().ok()),
            })
        })
        .collect();
    let known_bad = known_bad.map(|list| {
        list.into_iter()
            .filter_map(|r| {
                Some(KnownBad {
                    service: r.service.parse().ok()?,
                    version: r.version.parse().ok()?,
                    reason: r.reason,
                })
            })
            .collect()
    });
    Ok(Facts {
        distribution: Some(own),
        images: Some(Images { developer, client }),
        instances: Some(instances),
        known_bad,
    })
}
