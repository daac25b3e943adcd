//! Where the fleet stands, as `vupdate status` reads it from the distribution's `status`
//! and `instanceCommits`, and whether it has arrived: every service synced and every
//! reporting host on the target commit, or stuck until a new commit.

use serde::{Deserialize, Serialize};

/// The distribution's answer: its name, its `status`, and the hosts not on the target.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// The distribution's name.
    pub distribution: String,
    /// Its `status`.
    pub status: Status,
    /// The commit hosts must be on (`--commit`, else the commit in force).
    pub target: Option<String>,
    /// The hosts reporting that are not on `target` (`None`: the distribution does not
    /// know that commit yet).
    pub not_on_target: Option<Vec<HostCommit>>,
}

/// The parts of `status` read here.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Whether every service is synced.
    pub synced: bool,
    /// The state repo.
    pub state_repo: StateRepo,
    /// Per service.
    pub services: Vec<Service>,
    /// The newest rollout of each service with waves.
    pub rollouts: Vec<Rollout>,
    /// Versions updaters rolled back.
    pub known_bad_versions: Vec<KnownBad>,
}

/// The state repo as the distribution follows it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateRepo {
    /// The branch followed.
    pub branch: String,
    /// The commit in force.
    pub commit: Option<String>,
    /// Why the last fetch failed.
    pub fetch_error: Option<String>,
}

/// One service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// Its name.
    pub service: String,
    /// `SYNCED`, `OUT_OF_SYNC`, `BUILDING` or `BUILD_FAILED`.
    pub sync: String,
    /// The client version that should run.
    pub desired_client_version: Option<String>,
    /// Why updaters keep what they run (a known-bad desired version).
    pub held_back: Option<String>,
    /// Builds under way, queued or failed.
    pub builds: Vec<Build>,
    /// Instances reporting it.
    pub instances: Vec<Instance>,
}

/// A build the distribution needs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    /// `developer` or `client`.
    pub target: String,
    /// The version.
    pub version: String,
    /// `QUEUED`, `RUNNING` or `FAILED`.
    pub state: String,
    /// Its task.
    pub task: Option<String>,
    /// Why it failed.
    pub message: Option<String>,
}

/// An instance of a service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// The instance.
    pub instance: String,
    /// The role it runs in.
    pub role: Option<String>,
    /// The version it runs.
    pub version: Option<String>,
    /// Whether that is the desired one.
    pub on_desired: bool,
    /// The version it installs now.
    pub update_to_version: Option<String>,
    /// Why its last update failed.
    pub update_error: Option<String>,
}

/// A rollout by waves.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// The service.
    pub service: String,
    /// The version the waves not reached keep.
    pub from_version: String,
    /// The version rolled out.
    pub to_version: String,
    /// `rolling`, `halted` or `done`.
    pub state: String,
    /// The wave reached.
    pub current_wave: String,
    /// Why it halted.
    pub halted_because: Option<String>,
}

/// A version updaters rolled back.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownBad {
    /// The service.
    pub service: String,
    /// The version.
    pub version: String,
    /// Why.
    pub reason: String,
}

/// A host and the state commit its updater last fully applied.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostCommit {
    /// The instance.
    pub instance: String,
    /// Its commit (`None`: an updater that does not say).
    pub state_commit: Option<String>,
}

/// Whether the fleet has arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every service synced, every reporting host on the target.
    Arrived,
    /// Not yet; each line says what is left.
    Waiting(Vec<String>),
    /// It cannot arrive without a new commit; each line says why.
    Stuck(Vec<String>),
}

impl Fleet {
    /// Whether the fleet has arrived, is on its way, or is stuck.
    pub fn verdict(&self) -> Verdict {
        let mut stuck = Vec::new();
        let mut waiting = Vec::new();
        for service in &self.status.services {
            let name = &service.service;
            let desired = service.desired_client_version.as_deref().unwrap_or("-");
            if let Some(held) = &service.held_back {
                stuck.push(format!("{name}: {held}"));
            }
            for build in service.builds.iter().filter(|b| b.state == "FAILED") {
                let why = build.message.as_deref().unwrap_or("no reason given");
                stuck.push(format!(
                    "{name}: the {} build of {} failed: {why}",
                    build.target, build.version
                ));
            }
            let halted = self
                .status
                .rollouts
                .iter()
                .find(|r| r.service == *name && r.state == "halted" && r.to_version == desired);
            if let Some(rollout) = halted {
                let why = rollout
                    .halted_because
                    .as_deref()
                    .unwrap_or("no reason given");
                stuck.push(format!(
                    "{name}: the rollout of {} halted: {why}",
                    rollout.to_version
                ));
            }
            match service.sync.as_str() {
                "BUILDING" => waiting.push(format!("{name}: {desired} is being built")),
                "OUT_OF_SYNC" if service.held_back.is_none() => {
                    waiting.push(format!("{name}: {}", behind(service, desired)));
                }
                _ => {}
            }
        }
        if stuck.is_empty() && waiting.is_empty() && !self.status.synced {
            waiting.push("the distribution has not reconciled its commit yet".to_owned());
        }
        match (&self.target, &self.not_on_target) {
            (Some(target), None) => {
                waiting.push(format!(
                    "the distribution does not know commit {target} yet"
                ));
            }
            (Some(target), Some(hosts)) if !hosts.is_empty() => {
                waiting.push(format!("not on {}: {}", short(target), hosts_text(hosts)));
            }
            _ => {}
        }
        if !stuck.is_empty() {
            Verdict::Stuck(stuck)
        } else if !waiting.is_empty() {
            Verdict::Waiting(waiting)
        } else {
            Verdict::Arrived
        }
    }
}

/// "1 of 3 instances run acme-1.1.0: vm-2 (acme-1.0.0, installing acme-1.1.0)".
fn behind(service: &Service, desired: &str) -> String {
    let on = service.instances.iter().filter(|i| i.on_desired).count();
    let others: Vec<String> = service
        .instances
        .iter()
        .filter(|i| !i.on_desired)
        .map(|i| {
            let mut text = format!("{} ({}", i.instance, i.version.as_deref().unwrap_or("none"));
            if let Some(to) = &i.update_to_version {
                text.push_str(&format!(", installing {to}"));
            }
            if let Some(error) = &i.update_error {
                text.push_str(&format!(", update failed: {error}"));
            }
            text.push(')');
            text
        })
        .collect();
    format!(
        "{on} of {} instances run {desired}; {}",
        service.instances.len(),
        others.join(", ")
    )
}

/// "vm-2 (on 1a2b3c4d5e6f), vm-3 (commit unknown)".
pub fn hosts_text(hosts: &[HostCommit]) -> String {
    hosts
        .iter()
        .map(|host| match &host.state_commit {
            Some(commit) => format!("{} (on {})", host.instance, short(commit)),
            None => format!("{} (commit unknown)", host.instance),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first 12 characters of a commit id.
pub fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fleet(services: serde_json::Value, not_on: Option<serde_json::Value>) -> Fleet {
        serde_json::from_value(json!({
            "distribution": "acme",
            "status": {
                "synced": true,
                "stateRepo": {"branch": "main", "commit": "3f1c0a9e5b7d2c4e", "fetchError": null},
                "services": services,
                "rollouts": [],
                "knownBadVersions": [],
            },
            "target": "3f1c0a9e5b7d2c4e",
            "notOnTarget": not_on,
        }))
        .expect("a fleet")
    }

    fn service(sync: &str, instances: serde_json::Value) -> serde_json::Value {
        json!({"service": "api", "sync": sync, "desiredClientVersion": "acme-1.1.0",
               "heldBack": null, "builds": [], "instances": instances})
    }

    #[test]
    fn synced_services_and_every_host_on_the_commit_have_arrived() {
        let fleet = fleet(json!([service("SYNCED", json!([]))]), Some(json!([])));
        assert_eq!(fleet.verdict(), Verdict::Arrived);
    }

    #[test]
    fn an_instance_behind_and_a_host_on_another_commit_are_waited_for() {
        let instances = json!([
            {"instance": "vm-1", "role": null, "version": "acme-1.1.0", "onDesired": true, "updateToVersion": null, "updateError": null},
            {"instance": "vm-2", "role": null, "version": "acme-1.0.0", "onDesired": false, "updateToVersion": "acme-1.1.0", "updateError": null},
        ]);
        let not_on = json!([{"instance": "vm-2", "stateCommit": "1a2b3c4d5e6f7a8b"}]);
        let fleet = fleet(json!([service("OUT_OF_SYNC", instances)]), Some(not_on));
        let Verdict::Waiting(lines) = fleet.verdict() else {
            panic!("{:?}", fleet.verdict())
        };
        assert_eq!(
            lines,
            [
                "api: 1 of 2 instances run acme-1.1.0; vm-2 (acme-1.0.0, installing acme-1.1.0)",
                "not on 3f1c0a9e5b7d: vm-2 (on 1a2b3c4d5e6f)",
            ]
        );
    }

    #[test]
    fn a_commit_the_distribution_lacks_is_waited_for() {
        let fleet = fleet(json!([service("SYNCED", json!([]))]), None);
        assert_eq!(
            fleet.verdict(),
            Verdict::Waiting(vec![
                "the distribution does not know commit 3f1c0a9e5b7d2c4e yet".to_owned()
            ])
        );
    }

    #[test]
    fn a_failed_build_a_held_back_version_and_a_halted_rollout_are_stuck() {
        let mut failed = service("BUILD_FAILED", json!([]));
        failed["builds"] = json!([{"target": "client", "version": "acme-1.1.0", "state": "FAILED", "task": "t1", "message": "step `npm ci`: exit code 1"}]);
        let mut held = service("OUT_OF_SYNC", json!([]));
        held["service"] = json!("web");
        held["heldBack"] = json!("acme-1.1.0 is known-bad: updaters keep the version they run");
        let mut fleet = fleet(json!([failed, held]), Some(json!([])));
        fleet.status.rollouts.push(Rollout {
            service: "web".to_owned(),
            from_version: "acme-1.0.0".to_owned(),
            to_version: "acme-1.1.0".to_owned(),
            state: "halted".to_owned(),
            current_wave: "canary".to_owned(),
            halted_because: Some(
                "2 of 2 instances of wave `canary` rolled acme-1.1.0 back".to_owned(),
            ),
        });
        assert_eq!(
            fleet.verdict(),
            Verdict::Stuck(vec![
                "api: the client build of acme-1.1.0 failed: step `npm ci`: exit code 1".to_owned(),
                "web: acme-1.1.0 is known-bad: updaters keep the version they run".to_owned(),
                "web: the rollout of acme-1.1.0 halted: 2 of 2 instances of wave `canary` rolled acme-1.1.0 back".to_owned(),
            ])
        );
    }
}
