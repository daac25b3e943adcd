//! The supervisor's loop: one closed [`Event`] enum, one handler per event.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use vupdate_core::log::{Level, LogLine};

use super::backoff::RestartTracker;
use super::cgroup::{Cgroup, CgroupMode, cgroup_name};
use super::conditions::{Condition, ConditionChecker};
use super::health::{HealthCount, ProbeResult, ProbeTask, Prober, Verdict};
use super::leader::{Adopted, Leader};
use super::status::{ExitInfo, Health, RunState, ServiceEvent, ServiceStatus};
use super::stop::end_tree;
use super::tree::{TreeTracker, sample_table};
use super::{Control, RunSpec, SupervisorOptions};
use crate::faults::{FaultInfo, FaultReason, FaultReport, FaultReports, new_fault_id};
use crate::handover::{CgroupRecord, LivePipe, LiveRun, RunRecord};
use crate::layout::OWNER_ENV;
use crate::logs::LogPipeline;
use crate::logs::pipeline::{PumpEnd, pump_until};
use crate::schedule::Schedule;
use crate::spawn::{ProcessSpec, spawn};
use crate::state::ServiceState;

/// The unit of the lines the updater writes into a service's log.
pub(crate) const UPDATER_UNIT: &str = "UPDATER";

/// Everything that moves a supervisor.
#[derive(Debug)]
pub(super) enum Event {
    /// A message from the handle; `None` when the handle is gone (stop, then end).
    Control(Option<Control>),
    /// The run's group leader exited.
    Exited(std::io::Result<std::process::ExitStatus>),
    /// Time to sample the run's tree and check its conditions.
    Sample,
    /// The backoff delay is over: start again.
    RestartDue,
    /// The run has been up for the stable uptime.
    Stable,
    /// Time to start the run's next health probe.
    ProbeDue,
    /// The run's health probe ended.
    Probed(ProbeResult),
    /// The run's start window for becoming healthy is over.
    HealthDeadline,
}

/// What reads one of a run's pipes: the task, which gives the reader back when stopped.
type Pump = JoinHandle<PumpEnd<pipe::Receiver>>;

/// One run of the service.
struct Run {
    leader: Leader,
    pid: u32,
    started: Instant,
    started_at: SystemTime,
    tree: TreeTracker,
    cgroup: Option<Cgroup>,
    checker: Option<ConditionChecker>,
    /// Its stdout and stderr readers, in that order.
    pumps: Vec<Option<Pump>>,
    /// Stops the pumps where they are (a handover), rather than at the end of the output.
    pump_stop: watch::Sender<bool>,
    condition: Option<Condition>,
    kill_at: Option<Instant>,
    stable: bool,
    next_sample: Instant,
    /// Its health checks, when the service has one.
    health: Option<RunHealth>,
}

/// The health checks of one run.
struct RunHealth {
    count: HealthCount,
    /// When the next probe starts (none while one is under way).
    next_probe: Option<Instant>,
    /// The probe under way.
    probing: Option<ProbeTask>,
    /// When the run must be healthy by; none once it was.
    deadline: Option<Instant>,
}

impl RunHealth {
    async fn probed(&mut self) -> ProbeResult {
        match self.probing.as_mut() {
            Some(probe) => match probe.await {
                Ok(result) => result,
                Err(error) => ProbeResult {
                    passed: false,
                    evidence: format!("the probe task failed: {error}"),
                },
            },
            None => std::future::pending().await,
        }
    }
}

/// The supervisor's state between events.
pub(super) struct Looper {
    spec: RunSpec,
    pipeline: Arc<LogPipeline>,
    faults: Option<Arc<FaultReports>>,
    options: SupervisorOptions,
    status: watch::Sender<ServiceStatus>,
    events: broadcast::Sender<ServiceEvent>,
    tracker: RestartTracker,
    run: Option<Run>,
    restart_at: Option<Instant>,
    cgroup_name: String,
    cgroup_warned: bool,
    /// The fault report being written, if one is.
    fault_write: Option<JoinHandle<()>>,
    /// The cgroup of the run that ended, kept for the next one.
    spare_cgroup: Option<Cgroup>,
    /// The service's health probe, when it has a health check.
    prober: Option<Prober>,
}

impl Looper {
    pub(super) fn new(
        spec: RunSpec,
        pipeline: Arc<LogPipeline>,
        faults: Option<Arc<FaultReports>>,
        options: SupervisorOptions,
        status: watch::Sender<ServiceStatus>,
        events: broadcast::Sender<ServiceEvent>,
    ) -> Self {
        let cgroup_name = cgroup_name(&spec.instance.to_string(), &spec.service_dir);
        let prober = spec.run.health_check.as_ref().and_then(|check| {
            Prober::new(
                check,
                spec.instance.to_string(),
                spec.directory.clone(),
                spec.owner.clone(),
            )
        });
        Looper {
            prober,
            tracker: RestartTracker::new(options.restart),
            spec,
            pipeline,
            faults,
            options,
            status,
            events,
            run: None,
            restart_at: None,
            cgroup_name,
            cgroup_warned: false,
            fault_write: None,
            spare_cgroup: None,
        }
    }

    /// Runs the service (or goes on with the run `adopt` hands over) until it is told to
    /// stop or detach, or its handle is dropped.
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Control>,
        adopt: Option<LiveRun>,
    ) {
        match adopt {
            Some(live) => self.adopt_run(live),
            None => self.start_run().await,
        }
        loop {
            match self.next_event(&mut commands).await {
                Event::Control(Some(Control::Detach(reply))) => {
                    let live = self.detach_run().await;
                    self.faults_written().await;
                    remove_cgroup(self.spare_cgroup.take().as_ref());
                    let _ = reply.send(live);
                    return;
                }
                Event::Control(Some(Control::Stop(reply))) => {
                    self.end_run_on_request().await;
                    self.faults_written().await;
                    self.finish();
                    let _ = reply.send(());
                    return;
                }
                Event::Control(None) => {
                    self.end_run_on_request().await;
                    self.faults_written().await;
                    self.finish();
                    return;
                }
                Event::Control(Some(Control::Restart)) => {
                    self.end_run_on_request().await;
                    self.start_run().await;
                }
                Event::Exited(status) => self.on_exit(status).await,
                Event::Sample => self.on_sample().await,
                Event::RestartDue => self.start_run().await,
                Event::Stable => self.on_stable(),
                Event::ProbeDue => self.on_probe_due(),
                Event::Probed(result) => self.on_probed(result),
                Event::HealthDeadline => self.on_health_deadline(),
            }
        }
    }

    async fn next_event(&mut self, commands: &mut mpsc::Receiver<Control>) -> Event {
        let restart_at = self.restart_at;
        let stable_after = self.options.restart.stable_after;
        let Some(run) = self.run.as_mut() else {
            return tokio::select! {
                control = commands.recv() => Event::Control(control),
                () = sleep_until_some(restart_at) => Event::RestartDue,
            };
        };
        let stable_at = (!run.stable).then(|| run.started + stable_after);
        let sample_at = run.next_sample;
        // A run being ended for a condition is probed no more.
        let probing = run.condition.is_none();
        let (probe_at, deadline) = match (&run.health, probing) {
            (Some(health), true) => (health.next_probe, health.deadline),
            _ => (None, None),
        };
        let health = run.health.as_mut().filter(|_| probing);
        tokio::select! {
            control = commands.recv() => Event::Control(control),
            status = run.leader.wait() => Event::Exited(status),
            () = sleep_until(sample_at) => Event::Sample,
            () = sleep_until_some(stable_at) => Event::Stable,
            () = sleep_until_some(probe_at) => Event::ProbeDue,
            () = sleep_until_some(deadline) => Event::HealthDeadline,
            result = probed(health) => Event::Probed(result),
        }
    }

    fn emit(&self, event: ServiceEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    fn note(&self, level: Level, message: String, process: u32) {
        self.pipeline.push(
            LogLine {
                time: Utc::now().naive_utc(),
                level,
                unit: UPDATER_UNIT.to_owned(),
                message,
            },
            process,
        );
    }

    fn stop_signal(&self) -> Signal {
        Signal::try_from(self.spec.run.stop_signal.number())
            .expect("every stop signal core knows is a Linux signal")
    }

    fn grace(&self) -> Duration {
        Duration::from_millis(self.spec.run.stop_timeout_ms)
    }

    async fn start_run(&mut self) {
        self.restart_at = None;
        self.status
            .send_modify(|status| status.state = RunState::Starting);
        let instance = self.spec.instance.to_string();
        // File times are coarse (a jiffy): a second of slack keeps a core dump written at
        // once by the new run from looking older than the run.
        let started_at = SystemTime::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let cgroup = self.make_cgroup();
        let run = &self.spec.run;
        let procs = cgroup
            .as_ref()
            .map(|cgroup| cgroup.path().join("cgroup.procs"));
        let spawned = spawn(
            ProcessSpec {
                instance: &instance,
                program: &run.command,
                args: &run.args,
                directory: &self.spec.directory,
                owner: &self.spec.owner,
                cgroup_procs: procs.as_deref(),
            },
            run.env.iter(),
        );
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(error) => {
                self.spare_cgroup = cgroup;
                let message = error.to_string();
                tracing::warn!(%message, "service did not start");
                self.note(Level::Error, message.clone(), 0);
                self.emit(ServiceEvent::SpawnFailed {
                    message: message.clone(),
                });
                self.after_fault(
                    Duration::ZERO,
                    None,
                    FaultReason::SpawnFailed(message),
                    true,
                    started_at,
                )
                .await;
                return;
            }
        };
        let pid = spawned.pid;
        let leader = i32::try_from(pid).expect("Linux pids fit in i32");
        let tree = TreeTracker::new(leader, format!("{OWNER_ENV}={}", self.spec.owner));
        let (pump_stop, stop_rx) = watch::channel(false);
        let pumps = vec![
            Some(self.pump(spawned.stdout, pid, Vec::new(), stop_rx.clone())),
            Some(self.pump(spawned.stderr, pid, Vec::new(), stop_rx)),
        ];
        let checker = self
            .spec
            .run
            .restart_conditions
            .clone()
            .map(ConditionChecker::new);
        let now = Instant::now();
        let interval = self.sample_interval(checker.as_ref());
        self.run = Some(Run {
            leader: Leader::Spawned(spawned.child),
            pid,
            started: now,
            started_at,
            tree,
            cgroup,
            checker,
            pumps,
            pump_stop,
            condition: None,
            kill_at: None,
            stable: false,
            next_sample: Schedule::process().next(interval),
            health: self.new_health(now, false),
        });
        let start_time = Utc::now();
        let cgroup_path = self
            .run
            .as_ref()
            .and_then(|run| run.cgroup.as_ref())
            .map(|cgroup| cgroup.path().to_owned());
        self.status.send_modify(|status| {
            status.cgroup = cgroup_path;
            status.state = RunState::Running;
            status.pid = Some(pid);
            status.start_time = Some(start_time);
            status.starts += 1;
        });
        tracing::info!(pid, "service started");
        self.note(
            Level::Info,
            format!("started `{}` as process {pid}", self.spec.run.command),
            pid,
        );
        self.emit(ServiceEvent::Started { pid });
    }

    fn sample_interval(&self, checker: Option<&ConditionChecker>) -> Duration {
        checker
            .map(ConditionChecker::interval)
            .unwrap_or(self.options.sample_interval)
            .max(Duration::from_millis(10))
    }

    fn make_cgroup(&mut self) -> Option<Cgroup> {
        if self.options.cgroups == CgroupMode::Off {
            return None;
        }
        if let Some(spare) = self.spare_cgroup.take() {
            return Some(spare);
        }
        match Cgroup::create(&self.cgroup_name) {
            Ok(cgroup) => Some(cgroup),
            Err(error) => {
                if !self.cgroup_warned {
                    self.cgroup_warned = true;
                    tracing::info!(%error, "no cgroup for the service: process group, subreaper and /proc sampling");
                }
                None
            }
        }
    }

    async fn on_sample(&mut self) {
        let make_core = self
            .spec
            .run
            .restart_conditions
            .as_ref()
            .is_some_and(|conditions| conditions.make_core);
        let stop_signal = self.stop_signal();
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let now = Instant::now();
        let interval = self
            .spec
            .run
            .restart_conditions
            .as_ref()
            .map_or(self.options.sample_interval, |c| {
                Duration::from_millis(c.check_timeout_ms)
            })
            .max(Duration::from_millis(10));
        let tick = run.next_sample;
        run.next_sample = Schedule::process().next(interval);
        if let Some(kill_at) = run.kill_at {
            if now >= kill_at {
                let status = end_tree(
                    &mut run.tree,
                    run.cgroup.as_ref(),
                    Some(&mut run.leader),
                    Signal::SIGKILL,
                    Duration::ZERO,
                )
                .await;
                let status = match status {
                    Some(status) => Ok(status),
                    None => run.leader.wait().await,
                };
                self.on_exit(status).await;
                return;
            }
            run.next_sample = run.next_sample.min(kill_at);
        }
        let cgroup_pids = run.cgroup.as_ref().map(Cgroup::pids).unwrap_or_default();
        // The cgroup's processes, or the machine's table shared by this tick's samples.
        let table = sample_table(tick, run.tree.leader(), &cgroup_pids);
        let members = run.tree.scan_in(&table, &cgroup_pids, false);
        if let Some(cgroup) = &run.cgroup {
            // A process forked before the leader joined the cgroup is moved in now.
            for info in &members.running {
                if !cgroup_pids.contains(&info.pid) {
                    let _ = cgroup.add(info.pid.unsigned_abs());
                }
            }
        }
        if run.condition.is_some() {
            return;
        }
        let Some(checker) = run.checker.as_mut() else {
            return;
        };
        let Some(condition) = checker.check(&members.running, std::time::Instant::now()) else {
            return;
        };
        let signal = if make_core {
            Signal::SIGQUIT
        } else {
            stop_signal
        };
        self.end_for(condition, signal, members);
    }

    /// Ends the run for passing `condition`: `signal` to its tree now, SIGKILL after the
    /// grace; the exit then counts as a fault and is always restarted.
    fn end_for(&mut self, condition: Condition, signal: Signal, members: super::tree::Members) {
        let grace = self.grace();
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let now = Instant::now();
        tracing::warn!(%condition, ?signal, "restart condition passed");
        let pid = run.pid;
        run.tree.signal(&members, signal, true);
        run.condition = Some(condition.clone());
        let kill_at = now + grace;
        run.kill_at = Some(kill_at);
        run.next_sample = run.next_sample.min(kill_at);
        self.status.send_modify(|status| {
            if let Condition::Unhealthy { reason } = &condition {
                status.health = Some(Health::Unhealthy(reason.clone()));
            }
        });
        self.note(
            Level::Warn,
            format!("restart condition passed: {condition}; ending process {pid} with {signal}"),
            pid,
        );
        self.emit(ServiceEvent::ConditionExceeded { condition });
    }

    /// The health checks of a run started at `now`: the first probe at once, healthy
    /// within the start window (`kept`: an adopted run, healthy already).
    fn new_health(&self, now: Instant, kept: bool) -> Option<RunHealth> {
        let check = self.spec.run.health_check.as_ref()?;
        self.prober.as_ref()?;
        let mut count = HealthCount::new(check);
        if kept {
            count.assume_healthy();
        }
        let window = Duration::from_millis(check.start_window_ms);
        self.status.send_modify(|status| {
            status.health = Some(if kept {
                Health::Healthy
            } else {
                Health::Starting
            });
        });
        Some(RunHealth {
            count,
            next_probe: Some(now),
            probing: None,
            deadline: (!kept).then_some(now + window),
        })
    }

    fn on_probe_due(&mut self) {
        let (Some(prober), Some(run)) = (self.prober.as_ref(), self.run.as_mut()) else {
            return;
        };
        if let Some(health) = run.health.as_mut() {
            health.next_probe = None;
            health.probing = Some(prober.start());
        }
    }

    fn on_probed(&mut self, result: ProbeResult) {
        let interval = self
            .spec
            .run
            .health_check
            .as_ref()
            .map_or(Duration::from_secs(1), |check| {
                Duration::from_millis(check.interval_ms)
            });
        let stop_signal = self.stop_signal();
        let Some(run) = self.run.as_mut() else {
            return;
        };
        let pid = run.pid;
        let Some(health) = run.health.as_mut() else {
            return;
        };
        health.probing = None;
        // Probes start `interval` apart at most once per interval, whatever they take.
        health.next_probe = Some(Instant::now() + interval);
        tracing::debug!(passed = result.passed, evidence = %result.evidence, "health probe");
        match health.count.count(&result) {
            Verdict::Same => {}
            Verdict::Healthy => {
                health.deadline = None;
                self.status
                    .send_modify(|status| status.health = Some(Health::Healthy));
                self.note(Level::Info, format!("healthy: {}", result.evidence), pid);
                self.emit(ServiceEvent::Healthy);
            }
            Verdict::Unhealthy(reason) => {
                let members = self.scan_run();
                self.end_for(Condition::Unhealthy { reason }, stop_signal, members);
            }
        }
    }

    /// The run did not become healthy within its start window: it is ended as unhealthy.
    fn on_health_deadline(&mut self) {
        let window = self
            .spec
            .run
            .health_check
            .as_ref()
            .map_or(0, |check| check.start_window_ms);
        let stop_signal = self.stop_signal();
        let Some(health) = self.run.as_mut().and_then(|run| run.health.as_mut()) else {
            return;
        };
        health.deadline = None;
        let last = health
            .count
            .last_failure
            .clone()
            .unwrap_or_else(|| "no probe ended".to_owned());
        let reason =
            format!("not healthy within its start window of {window} ms; last probe: {last}");
        let members = self.scan_run();
        self.end_for(Condition::Unhealthy { reason }, stop_signal, members);
    }

    /// The processes of the run as they are now.
    fn scan_run(&mut self) -> super::tree::Members {
        let Some(run) = self.run.as_mut() else {
            return super::tree::Members::default();
        };
        let cgroup_pids = run.cgroup.as_ref().map(Cgroup::pids).unwrap_or_default();
        run.tree.scan(&cgroup_pids, false)
    }

    async fn on_exit(&mut self, status: std::io::Result<std::process::ExitStatus>) {
        let Some(mut run) = self.run.take() else {
            return;
        };
        let exit = exit_info(run.pid, status.ok());
        // What the leader left behind goes too, so the restart starts from nothing.
        let grace = self.grace();
        let stop_signal = self.stop_signal();
        end_tree(&mut run.tree, run.cgroup.as_ref(), None, stop_signal, grace).await;
        self.finish_output(&mut run).await;
        // Kept, empty, for the restart: removing and making a cgroup costs milliseconds.
        self.spare_cgroup = run.cgroup.take();
        let uptime = run.started.elapsed();
        tracing::warn!(pid = run.pid, %exit, ?uptime, "service ended");
        let reason = match &run.condition {
            Some(condition) => FaultReason::Condition(condition.to_string()),
            None => FaultReason::Exited,
        };
        self.note(
            Level::Error,
            format!("process {} ended unexpectedly: {exit}", run.pid),
            run.pid,
        );
        self.status.send_modify(|status| {
            status.last_exit = Some(exit);
            status.pid = None;
        });
        self.emit(ServiceEvent::Exited { exit, fault: true });
        let restart = run.condition.is_some() || self.spec.run.restart_on_fault;
        self.after_fault(uptime, Some(exit), reason, restart, run.started_at)
            .await;
    }

    /// Counts a fault, writes its report and schedules the restart (or not).
    async fn after_fault(
        &mut self,
        uptime: Duration,
        exit: Option<ExitInfo>,
        reason: FaultReason,
        restart: bool,
        started_at: SystemTime,
    ) {
        let delay = self.tracker.on_fault(uptime);
        let failures_in_row = self.tracker.failures_in_row();
        let crash_loop = self.tracker.crash_loop();
        self.status.send_modify(|status| {
            status.failures_total += 1;
            status.failures_in_row = failures_in_row;
            status.crash_loop = crash_loop;
            status.state = if restart {
                RunState::Backoff
            } else {
                RunState::Exited
            };
        });
        self.write_fault(exit, reason, started_at).await;
        if restart {
            // The delay spaces starts, not a fault and the next start: a run that outlived
            // it (one crash after a long, good run) comes back at once, while a crash loop
            // still waits the doubling delay between its starts.
            let wait = delay.saturating_sub(uptime);
            self.restart_at = Some(Instant::now() + wait);
            tracing::info!(
                ?delay,
                ?wait,
                failures_in_row,
                crash_loop,
                "restart scheduled"
            );
            self.emit(ServiceEvent::RestartScheduled {
                delay,
                wait,
                failures_in_row,
            });
        }
    }

    async fn write_fault(
        &mut self,
        exit: Option<ExitInfo>,
        reason: FaultReason,
        started_at: SystemTime,
    ) {
        let Some(faults) = self.faults.clone() else {
            return;
        };
        let status = self.status.borrow().clone();
        let time = Utc::now();
        let info = FaultInfo {
            id: new_fault_id(time),
            time,
            service: self.spec.instance.service.to_string(),
            service_role: self.spec.instance.role.as_ref().map(ToString::to_string),
            service_directory: self.spec.service_dir.display().to_string(),
            state: ServiceState {
                time,
                install_time: self.spec.install_time,
                start_time: status.start_time,
                version: self.spec.version.clone(),
                update_to_version: None,
                update_error: None,
                failures_count: Some(u32::try_from(status.failures_total).unwrap_or(u32::MAX)),
                last_exit_code: exit.and_then(|exit| exit.shell_code()),
                failed_version: None,
                crash_loop: status.crash_loop,
                unhealthy: match &status.health {
                    Some(Health::Unhealthy(reason)) => Some(reason.clone()),
                    _ => None,
                },
            },
            reason,
            pid: exit.map(|exit| exit.pid),
            exit_code: exit.and_then(|exit| exit.code),
            signal: exit.and_then(|exit| exit.signal),
            command: self.spec.run.command.clone(),
            args: self.spec.run.args.clone(),
            files: Vec::new(),
            skipped_files: Vec::new(),
        };
        let tail = self.pipeline.tail();
        let directory = self.spec.directory.clone();
        let pattern = self.spec.run.fault_files_match.clone();
        // At most one report is written at a time, so a crash loop cannot pile them up.
        self.faults_written().await;
        let events = self.events.clone();
        let write = async move {
            let written = tokio::task::spawn_blocking(move || {
                faults.write(
                    info,
                    &FaultReport {
                        log_tail: &tail,
                        files_dir: &directory,
                        files_match: &pattern,
                        files_since: started_at,
                    },
                )
            })
            .await;
            match written {
                Ok(Ok(path)) => {
                    tracing::info!(path = %path.display(), "fault report written");
                    // Nobody listening is fine.
                    let _ = events.send(ServiceEvent::FaultReport { path });
                }
                Ok(Err(error)) => tracing::error!(%error, "fault report not written"),
                Err(error) => tracing::error!(%error, "fault report task failed"),
            }
        };
        // Written beside the restart, not before it: the zip is synced to disk.
        self.fault_write = Some(tokio::spawn(tracing::Instrument::instrument(
            write,
            tracing::Span::current(),
        )));
    }

    /// Waits for the fault report being written, if one is.
    async fn faults_written(&mut self) {
        if let Some(write) = self.fault_write.take()
            && let Err(error) = write.await
        {
            tracing::error!(%error, "fault report task failed");
        }
    }

    fn on_stable(&mut self) {
        if let Some(run) = self.run.as_mut() {
            run.stable = true;
        }
        self.tracker.on_stable();
        self.status.send_modify(|status| {
            status.failures_in_row = 0;
            status.crash_loop = false;
        });
        self.emit(ServiceEvent::Stable);
    }

    /// Stops the run (if one runs) because the handle asked: not a fault.
    async fn end_run_on_request(&mut self) {
        self.restart_at = None;
        let Some(mut run) = self.run.take() else {
            return;
        };
        self.status
            .send_modify(|status| status.state = RunState::Stopping);
        let grace = self.grace();
        let signal = self.stop_signal();
        let status = end_tree(
            &mut run.tree,
            run.cgroup.as_ref(),
            Some(&mut run.leader),
            signal,
            grace,
        )
        .await;
        let status = match status {
            Some(status) => Some(status),
            None => run.leader.wait().await.ok(),
        };
        self.finish_output(&mut run).await;
        remove_cgroup(run.cgroup.as_ref());
        let exit = exit_info(run.pid, status);
        tracing::info!(pid = run.pid, %exit, "service stopped");
        self.note(
            Level::Info,
            format!("process {} stopped: {exit}", run.pid),
            run.pid,
        );
        self.status.send_modify(|status| {
            status.last_exit = Some(exit);
            status.pid = None;
        });
        self.emit(ServiceEvent::Exited { exit, fault: false });
    }

    /// Waits for the run's output to be read to its end, for a bounded time.
    async fn finish_output(&self, run: &mut Run) {
        let deadline = Instant::now() + self.options.output_grace;
        for pump in run.pumps.iter_mut().flatten() {
            if tokio::time::timeout_at(deadline, &mut *pump).await.is_err() {
                // Someone outside the tree holds the pipe open; stop reading it.
                pump.abort();
            }
        }
        self.pipeline.flush();
    }

    fn pump(
        &self,
        reader: pipe::Receiver,
        pid: u32,
        pending: Vec<u8>,
        mut stop: watch::Receiver<bool>,
    ) -> Pump {
        let pipeline = self.pipeline.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stop| *stop).await;
            };
            let end = pump_until(reader, &pipeline, pid, pending, stopped).await;
            if let Some(error) = &end.error {
                tracing::warn!(%error, pid, "reading the service's output failed");
            }
            end
        })
    }

    /// Goes on supervising a run the previous updater process handed over: the same
    /// leader (still this process's child), its tree, cgroup, counters and pipes.
    fn adopt_run(&mut self, live: LiveRun) {
        let record = live.record;
        let pid = record.pid;
        let leader = i32::try_from(pid).expect("Linux pids fit in i32");
        let (pump_stop, stop_rx) = watch::channel(false);
        let mut pumps = Vec::new();
        for pipe in [live.stdout, live.stderr] {
            pumps.push(pipe.and_then(
                |LivePipe { fd, pending }| match pipe::Receiver::from_owned_fd(fd) {
                    Ok(reader) => Some(self.pump(reader, pid, pending, stop_rx.clone())),
                    Err(error) => {
                        tracing::error!(%error, pid, "cannot read an adopted output pipe");
                        None
                    }
                },
            ));
        }
        let checker = self
            .spec
            .run
            .restart_conditions
            .clone()
            .map(ConditionChecker::new);
        let uptime = record
            .start_time
            .and_then(|start| (Utc::now() - start).to_std().ok())
            .unwrap_or(Duration::from_millis(record.uptime_ms));
        let now = Instant::now();
        let interval = self.sample_interval(checker.as_ref());
        self.tracker = RestartTracker::resume(self.options.restart, record.failures_in_row);
        self.run = Some(Run {
            leader: Leader::Adopted(Adopted::new(pid)),
            pid,
            started: now.checked_sub(uptime).unwrap_or(now),
            started_at: SystemTime::from(record.files_since),
            tree: TreeTracker::adopted(
                leader,
                record.start_ticks,
                format!("{OWNER_ENV}={}", self.spec.owner),
                &record.seen,
            ),
            cgroup: record
                .cgroup
                .map(|cgroup| Cgroup::existing(cgroup.path, cgroup.version)),
            checker,
            pumps,
            pump_stop,
            condition: None,
            kill_at: None,
            stable: record.stable,
            next_sample: Schedule::process().next(interval),
            // An adopted run was kept, so it was healthy: it only has to stay so.
            health: self.new_health(now, true),
        });
        let cgroup_path = self
            .run
            .as_ref()
            .and_then(|run| run.cgroup.as_ref())
            .map(|cgroup| cgroup.path().to_owned());
        self.status.send_modify(|status| {
            status.cgroup = cgroup_path;
            status.state = RunState::Running;
            status.pid = Some(pid);
            status.start_time = record.start_time;
            status.starts = record.starts;
            status.failures_total = record.failures_total;
            status.failures_in_row = record.failures_in_row;
            status.crash_loop = record.crash_loop;
            status.last_exit = record.last_exit;
        });
        tracing::info!(pid, "service adopted from the previous updater process");
        self.note(
            Level::Info,
            format!("process {pid} adopted by the new updater process"),
            pid,
        );
        self.emit(ServiceEvent::Adopted { pid });
    }

    /// Gives the run up for the next updater process: its pipes are no longer read
    /// (what is read is flushed; an unended line is handed over), and the leader is
    /// neither killed nor reaped.
    async fn detach_run(&mut self) -> Option<LiveRun> {
        self.restart_at = None;
        let pid = self.run.as_ref()?.pid;
        self.note(
            Level::Info,
            format!("handing process {pid} over to the new updater process"),
            pid,
        );
        let mut run = self.run.take()?;
        let _ = run.pump_stop.send(true);
        let deadline = Instant::now() + self.options.output_grace;
        let mut pipes = Vec::new();
        for pump in &mut run.pumps {
            let Some(pump) = pump.as_mut() else {
                pipes.push(None);
                continue;
            };
            let end = match tokio::time::timeout_at(deadline, &mut *pump).await {
                Ok(Ok(end)) => Some(end),
                Ok(Err(error)) => {
                    tracing::error!(%error, pid, "an output reader failed");
                    None
                }
                Err(_) => {
                    tracing::error!(pid, "an output reader did not stop; its pipe is lost");
                    pump.abort();
                    None
                }
            };
            pipes.push(end.and_then(|end| {
                let fd = end.reader?.into_nonblocking_fd().ok()?;
                Some(LivePipe {
                    fd,
                    pending: end.pending,
                })
            }));
        }
        self.pipeline.flush();
        let status = self.status.borrow().clone();
        let record = RunRecord {
            pid,
            start_ticks: run.tree.leader_start().unwrap_or(0),
            cgroup: run.cgroup.as_ref().map(|cgroup| CgroupRecord {
                path: cgroup.path().to_owned(),
                version: cgroup.version(),
            }),
            start_time: status.start_time,
            files_since: DateTime::<Utc>::from(run.started_at),
            uptime_ms: u64::try_from(run.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            stable: run.stable,
            starts: status.starts,
            failures_total: status.failures_total,
            failures_in_row: self.tracker.failures_in_row(),
            crash_loop: status.crash_loop,
            last_exit: status.last_exit,
            seen: run.tree.seen(),
        };
        run.leader.release();
        let stderr = pipes.pop().flatten();
        let stdout = pipes.pop().flatten();
        tracing::info!(pid, "service handed over");
        Some(LiveRun {
            record,
            stdout,
            stderr,
        })
    }

    fn finish(&mut self) {
        remove_cgroup(self.spare_cgroup.take().as_ref());
        self.status.send_modify(|status| {
            status.state = RunState::Stopped;
            status.pid = None;
        });
        self.emit(ServiceEvent::Stopped);
    }
}

impl Drop for Looper {
    fn drop(&mut self) {
        // Only reached with a run when the task is aborted (the runtime shuts down, or a
        // test panics): SIGKILL the whole tree at once, since nothing can wait any more.
        if let Some(run) = &mut self.run {
            if let Some(cgroup) = &run.cgroup {
                cgroup.kill_all();
            }
            let pids = run.cgroup.as_ref().map(Cgroup::pids).unwrap_or_default();
            let members = run.tree.scan(&pids, true);
            run.tree.signal(&members, Signal::SIGKILL, true);
            run.leader.start_kill();
        }
    }
}

fn exit_info(pid: u32, status: Option<std::process::ExitStatus>) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt;
    ExitInfo {
        pid,
        code: status.and_then(|status| status.code()),
        signal: status.and_then(|status| status.signal()),
        at: Utc::now(),
    }
}

fn remove_cgroup(cgroup: Option<&Cgroup>) {
    if let Some(cgroup) = cgroup
        && let Err(error) = cgroup.remove()
    {
        tracing::debug!(%error, path = %cgroup.path().display(), "cgroup not removed");
    }
}

/// The end of the probe under way, if any; never without one.
async fn probed(health: Option<&mut RunHealth>) -> ProbeResult {
    match health {
        Some(health) => health.probed().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
