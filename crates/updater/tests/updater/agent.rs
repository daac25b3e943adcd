//! The whole updater with recording seams: two instances of a service (one in a role)
//! follow the desired versions, report their states, upload their log lines under their
//! own names, and stop at shutdown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use vupdate_core::service::ServiceInstance;
use vupdate_updater::agent::{Agent, Seams};
use vupdate_updater::config::UpdaterConfig;
use vupdate_updater::faults::{FaultUploader, PendingFault};
use vupdate_updater::layout::ServiceDir;
use vupdate_updater::logs::{LogSink, LogSource, SpooledLine};
use vupdate_updater::state::{InstanceState, StateSink};

use crate::install::{V1, V2, good_install, images, options};
use crate::support::*;

#[derive(Default)]
struct Recorder {
    lines: Mutex<Vec<(String, String)>>,
    states: Mutex<Vec<InstanceState>>,
}

impl LogSink for Recorder {
    type Error = String;
    async fn send(&self, source: &LogSource, batch: &[SpooledLine]) -> Result<(), String> {
        let mut lines = self.lines.lock().expect("lock");
        lines.extend(
            batch
                .iter()
                .map(|spooled| (source.instance.to_string(), spooled.line.message.clone())),
        );
        Ok(())
    }
}

impl StateSink for Recorder {
    type Error = String;
    async fn send(&self, states: &[InstanceState]) -> Result<(), String> {
        self.states
            .lock()
            .expect("lock")
            .extend(states.iter().cloned());
        Ok(())
    }
}

struct NoFaults;

impl FaultUploader for NoFaults {
    type Error = String;
    async fn upload(&self, fault: &PendingFault) -> Result<(), String> {
        Err(format!("no fault expected, got {}", fault.id))
    }
}

/// The recorder is shared by the log and state seams.
struct Shared(Arc<Recorder>);

impl LogSink for Shared {
    type Error = String;
    async fn send(&self, source: &LogSource, batch: &[SpooledLine]) -> Result<(), String> {
        LogSink::send(&*self.0, source, batch).await
    }
}

impl StateSink for Shared {
    type Error = String;
    async fn send(&self, states: &[InstanceState]) -> Result<(), String> {
        StateSink::send(&*self.0, states).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_runs_every_service_and_ships_their_states_and_logs() {
    let work = tempfile::tempdir().expect("tempdir");
    let images = images(work.path(), &good_install("", ""));
    let services_dir = work.path().join("services");
    let text = format!(
        "instance: vm-test\ndistributionUrl: http://127.0.0.1:9\naccessToken: t\nworkDirectory: {}\nstateInterval: 1s\n",
        services_dir.display()
    );
    let mut config = UpdaterConfig::from_str(&text, work.path()).expect("config");
    config.runner = options();
    config.drain.max_wait = Duration::from_millis(20);
    let services = vec![
        instance("svc"),
        ServiceInstance {
            service: "svc".parse().expect("name"),
            role: Some("eu".parse().expect("role")),
        },
    ];
    let recorder = Arc::new(Recorder::default());
    let seams = Arc::new(Seams {
        images,
        logs: Shared(recorder.clone()),
        faults: NoFaults,
        states: Shared(recorder.clone()),
    });
    let (desired, desired_rx) = watch::channel(BTreeMap::new());
    let agent = Agent::start(&config, &services, desired_rx, seams)
        .await
        .expect("start");
    // Both instances, and the updater itself.
    let names: Vec<String> = agent
        .states()
        .iter()
        .map(|feed| feed.instance.to_string())
        .collect();
    assert_eq!(names, ["svc", "svc-eu", "updater"]);
    let owners: Vec<String> = services
        .iter()
        .map(|instance| ServiceDir::new(&services_dir, instance.clone()).run_owner())
        .collect();
    for version in [V1, V2] {
        desired.send_replace(BTreeMap::from([(
            "svc".parse().expect("name"),
            version.parse().expect("version"),
        )]));
        for owner in &owners {
            wait_for(&format!("{version} to run in {owner}"), || {
                (running_versions(owner, &[V1, V2]) == [version]).then_some(())
            })
            .await;
        }
        wait_for(&format!("states of {version} for both"), || {
            let states = recorder.states.lock().expect("lock");
            let reported = |name: &str| {
                states.iter().any(|state| {
                    // Reported apart: `svc-eu` is the service `svc` in role `eu`.
                    let role = state.role.as_ref().map(|r| format!("-{r}"));
                    format!("{}{}", state.service, role.unwrap_or_default()) == name
                        && state
                            .state
                            .version
                            .as_ref()
                            .map(ToString::to_string)
                            .as_deref()
                            == Some(version)
                        && state.state.update_to_version.is_none()
                })
            };
            (reported("svc") && reported("svc-eu")).then_some(())
        })
        .await;
        wait_for(&format!("log lines of {version} from both"), || {
            let lines = recorder.lines.lock().expect("lock");
            let logged = |name: &str| {
                lines.iter().any(|(service, message)| {
                    service == name && message == &format!("running {version}")
                })
            };
            (logged("svc") && logged("svc-eu")).then_some(())
        })
        .await;
    }
    agent.shutdown().await.expect("shutdown");
    for owner in &owners {
        assert!(
            marked(owner).is_empty(),
            "{owner} still runs after shutdown"
        );
    }
}
