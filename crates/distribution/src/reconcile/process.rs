//! [`ProcessRunner`]: each build as a `vupdate builder build-…` child process
//! (`build-developer-version`, `build-client-version`, `build-client-generation`).
//!
//! The child gets the server's own URL, a Builder access token (in the environment, never
//! in its arguments), the state repo's path and the commit of the build, the task id, and
//! the author and summary of the commit that set the desired version. It talks to the
//! server only through the public API: its build log reaches the task log with `addLogs`,
//! its image with an upload. Its own stderr goes into the task log too, so a child that
//! dies before it reaches the API still says why; a failed build fails with the child's
//! last `error:` line.
//!
//! The child runs in its own process group; the build commands it starts run in groups of
//! their own. So the runner keeps a [`TreeGuard`], refreshed every second, of the process
//! groups of every descendant of the child. A cancelled task sends SIGTERM to the child's
//! group (the child then stops its build command), waits `kill_grace`, and sends SIGKILL to
//! every group the guard saw; when the child ends on its own, what it left behind is
//! killed the same way. Dropping the build (the task aborted) does the same at once.
//!
//! A server killed outright cannot do any of that: [`lease`] records each running child so
//! the next server's runner kills what is left before it builds anything.

mod lease;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use vupdate_core::log::Level;
use vupdate_core::reconcile::Build;
use vupdate_process::{TreeGuard, describe_status, stop_group};
use vupdate_state::{HistoryEntry, Revision, State, StateRepo};

use super::{BuildFuture, BuildOrder, BuildRunner, ConsumerBuild, describe};
use crate::tasks::TaskContext;

/// The environment variable the child reads its access token from.
pub const ACCESS_TOKEN_ENV: &str = "VUPDATE_ACCESS_TOKEN";
/// The unit of task log lines that say what the runner does.
const UNIT_BUILD: &str = "BUILD";
/// The unit of the child's own stderr lines in the task log.
const UNIT_BUILDER: &str = "builder";
/// How often the snapshot of the child's process groups is refreshed.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// How far back the state repo's history is searched for the commit that set a version.
const HISTORY_LIMIT: usize = 200;

/// The program that builds, as the caller starts it (the CLI passes its own executable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderProgram {
    /// The `vupdate` executable.
    pub program: PathBuf,
    /// Arguments before `builder …` (e.g. `-v`).
    pub args: Vec<OsString>,
    /// How long a cancelled child's process groups get after SIGTERM before SIGKILL
    /// (shorter than the task manager's grace, so the runner is the one that kills).
    pub kill_grace: Duration,
}

impl BuilderProgram {
    /// `program` with no extra arguments and a 5 s kill grace.
    pub fn new(program: impl Into<PathBuf>) -> BuilderProgram {
        BuilderProgram {
            program: program.into(),
            args: Vec::new(),
            kill_grace: Duration::from_secs(5),
        }
    }
}

/// How a builder child reaches the server; the server makes it once it listens.
#[derive(Debug, Clone)]
pub struct ServerLink {
    /// The server's own URL (`http://127.0.0.1:<port>`).
    pub url: String,
    /// A Builder account's access token.
    pub token: String,
    /// The pin of the server's TLS key, for a child talking HTTPS to it (whatever names
    /// its certificate holds, the child reaches it on loopback).
    pub pinned_public_key: Option<vupdate_client::PublicKeyPin>,
    /// The state repo the server follows (its path, its branch, its history).
    pub repo: Arc<StateRepo>,
    /// The builder's work directory.
    pub work_directory: PathBuf,
    /// The instance named in the builder's log lines.
    pub instance: String,
}

/// Runs every build as a `vupdate builder` child process.
#[derive(Debug)]
pub struct ProcessRunner {
    program: BuilderProgram,
    /// Set by the server that runs the loop; a server started again replaces it.
    link: Mutex<Option<ServerLink>>,
}

impl ProcessRunner {
    /// A runner of `program`; it builds once a server has [attached](BuildRunner::attach)
    /// itself (builds before that fail, saying there is no builder token).
    pub fn new(program: BuilderProgram) -> ProcessRunner {
        ProcessRunner {
            program,
            link: Mutex::new(None),
        }
    }
}

impl BuildRunner for ProcessRunner {
    fn run(&self, build: Build, _state: Arc<State>, task: TaskContext) -> BuildFuture {
        // The loop calls `run_order`; without the commit the settings cannot be read.
        Box::pin(async move {
            let message = format!(
                "{}: the builder process needs the state commit of the build",
                describe(&build)
            );
            task.log(Level::Error, UNIT_BUILD, &message);
            Err(message)
        })
    }

    fn run_order(&self, order: BuildOrder, task: TaskContext) -> BuildFuture {
        let program = self.program.clone();
        let link = self
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(async move {
            let Some(link) = link else {
                let message = "no builder token: the server could not set up its builder account (see the server's log)".to_owned();
                task.log(Level::Error, UNIT_BUILD, &message);
                return Err(message);
            };
            let (author, comment) = requester(&link.repo, &order).await;
            let arguments = arguments(&program, &link, &order, &task, &author, &comment);
            let run = Run {
                build: &order.build,
                commit: &order.revision.id,
                token: &link.token,
                work_directory: &link.work_directory,
            };
            run_child(&program, run, arguments, &task).await
        })
    }

    fn run_for_consumer(&self, build: ConsumerBuild, task: TaskContext) -> BuildFuture {
        let program = self.program.clone();
        let link = self
            .link
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(async move {
            let Some(link) = link else {
                let message =
                    "this distribution's builder is not set up (see the server's log)".to_owned();
                task.log(Level::Error, UNIT_BUILD, &message);
                return Err(message);
            };
            let arguments = consumer_arguments(&program, &link, &build);
            let run = Run {
                build: &build.build,
                commit: &build.commit,
                token: build.token(),
                work_directory: &link.work_directory,
            };
            run_child(&program, run, arguments, &task).await
        })
    }

    fn attach(&self, server: &ServerLink) {
        // Builders a killed server left running would work beside the builds started now.
        let killed = lease::kill_leftovers(&server.work_directory);
        if !killed.is_empty() {
            tracing::warn!(tasks = ?killed, "stopped the builders of the tasks a restart interrupted");
        }
        // The token of an earlier start was revoked by this one: only the new link works.
        *self.link.lock().unwrap_or_else(PoisonError::into_inner) = Some(server.clone());
    }
}

/// The child's arguments: `[args…] builder build-…-version SERVICE VERSION… --…`.
fn arguments(
    program: &BuilderProgram,
    link: &ServerLink,
    order: &BuildOrder,
    task: &TaskContext,
    author: &str,
    comment: &str,
) -> Vec<OsString> {
    let mut args = command(program, &order.build);
    let mut option = |name: &str, value: OsString| {
        args.push(format!("--{name}").into());
        args.push(value);
    };
    option("distribution", link.url.clone().into());
    option("state-repo", link.repo.path().as_os_str().to_owned());
    option("branch", link.repo.branch().into());
    option("commit", order.revision.id.clone().into());
    option("task", task.id().into());
    option("work-dir", link.work_directory.as_os_str().to_owned());
    option("author", author.into());
    option("comment", comment.into());
    option("instance", link.instance.clone().into());
    if let Some(pin) = &link.pinned_public_key {
        option("pinned-public-key", pin.to_string().into());
    }
    args
}

/// The arguments of a build run for a consumer: its API gives the settings at its
/// commit, gets the log lines (into its task) and the image; the work directory is the
/// consumer's own under this builder's.
fn consumer_arguments(
    program: &BuilderProgram,
    link: &ServerLink,
    build: &ConsumerBuild,
) -> Vec<OsString> {
    let mut args = command(program, &build.build);
    let work = link.work_directory.join("consumers").join(&build.consumer);
    let mut option = |name: &str, value: OsString| {
        args.push(format!("--{name}").into());
        args.push(value);
    };
    option("distribution", build.url.clone().into());
    option("commit", build.commit.clone().into());
    option("task", build.task.clone().into());
    option("work-dir", work.into_os_string());
    option("author", build.author.clone().into());
    option("comment", build.comment.clone().into());
    option("instance", link.instance.clone().into());
    args
}

/// `[args…] builder build-… SERVICE VERSION…`: the command of a build.
fn command(program: &BuilderProgram, build: &Build) -> Vec<OsString> {
    let mut args: Vec<OsString> = program.args.clone();
    args.push("builder".into());
    match build {
        Build::Developer { service, version } => {
            args.extend(["build-developer-version".into(), service.to_string().into()]);
            args.push(version.to_string().into());
        }
        Build::Client {
            service,
            version,
            from,
        } => {
            args.extend(["build-client-version".into(), service.to_string().into()]);
            args.extend([from.to_string().into(), version.to_string().into()]);
        }
        Build::Generation {
            service, current, ..
        } => {
            args.extend(["build-client-generation".into(), service.to_string().into()]);
            args.push(current.developer.to_string().into());
        }
    }
    args
}

/// Who asked for the build and why: the author and summary of the commit that set the
/// desired version, found in the branch's history; the commit in force when the history
/// does not say (it is not the branch tip, or is too far back).
pub(crate) async fn requester(repo: &Arc<StateRepo>, order: &BuildOrder) -> (String, String) {
    let repo = Arc::clone(repo);
    let (build, in_force) = (order.build.clone(), order.revision.clone());
    let found = tokio::task::spawn_blocking(move || setter(&repo, &build, &in_force))
        .await
        .ok()
        .flatten();
    let revision = found.as_ref().unwrap_or(&order.revision);
    (
        format!("{} <{}>", revision.author.name, revision.author.email),
        revision.summary.clone(),
    )
}

/// The oldest revision of the newest run of history entries that all desire what `build`
/// builds, when the history starts at the commit in force.
fn setter(repo: &StateRepo, build: &Build, in_force: &Revision) -> Option<Revision> {
    let history = match repo.history(HISTORY_LIMIT) {
        Ok(history) => history,
        Err(error) => {
            tracing::warn!(%error, "cannot read the state history to name who asked for a build");
            return None;
        }
    };
    let tip = repo.head().ok()?;
    if tip.id != in_force.id {
        return None;
    }
    let mut found = None;
    for entry in &history {
        if !desires(entry, build) {
            break;
        }
        found = Some(entry.revision.clone());
    }
    found
}

/// Whether a history entry's desired lists ask for what `build` builds.
fn desires(entry: &HistoryEntry, build: &Build) -> bool {
    let Ok(desired) = &entry.desired else {
        return false;
    };
    match build {
        Build::Developer { service, version } => desired.developer.get(service) == Some(version),
        Build::Client {
            service, version, ..
        } => match desired.client.get(service) {
            Some(client) => client == version,
            // A `self` service without a client entry follows its developer version.
            None => {
                version.generation == 0
                    && desired.developer.get(service) == Some(&version.developer)
            }
        },
        // Asked for by the client settings, not a desired list: the commit in force asks.
        Build::Generation { .. } => false,
    }
}

/// What a child builds and with which token.
struct Run<'a> {
    build: &'a Build,
    /// The state commit whose settings it uses.
    commit: &'a str,
    /// The access token it talks to the distribution with (in its environment).
    token: &'a str,
    /// This distribution's builder work directory, where the child's lease is kept.
    work_directory: &'a Path,
}

/// Starts the child, streams its stderr into the task log, and ends it with the task.
async fn run_child(
    program: &BuilderProgram,
    run: Run<'_>,
    arguments: Vec<OsString>,
    task: &TaskContext,
) -> Result<(), String> {
    let what = describe(run.build);
    let mut child = tokio::process::Command::new(&program.program)
        .args(&arguments)
        .env(ACCESS_TOKEN_ENV, run.token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| {
            let message = format!(
                "cannot start the builder `{}`: {error}",
                program.program.display()
            );
            task.log(Level::Error, UNIT_BUILD, &message);
            message
        })?;
    let pid = child
        .id()
        .expect("a child that was just spawned and not waited for has a pid");
    let tree = TreeGuard::new(i32::try_from(pid).expect("Linux pids fit in i32"));
    // Removed when this function ends, whichever way: only a killed server leaves it.
    let _lease = lease::Lease::take(run.work_directory, task.id(), pid);
    task.log(
        Level::Info,
        UNIT_BUILD,
        &format!(
            "{what}: started the builder, process {pid}, at state commit {}",
            run.commit
        ),
    );
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut stderr_open = true;
    let mut last_error: Option<String> = None;
    let mut last_line: Option<String> = None;
    let mut panic: Option<String> = None;
    let mut panic_message_next = false;
    let mut snapshot = tokio::time::interval(SNAPSHOT_INTERVAL);
    let mut log_line = |line: String| {
        let level = level_of(&line);
        task.log(level, UNIT_BUILDER, &line);
        if level == Level::Error {
            last_error = Some(line.clone());
        }
        // A panic says where on one line and what on the next.
        if panic_message_next {
            panic_message_next = false;
            if let Some(location) = &mut panic {
                location.push(' ');
                location.push_str(line.trim());
            }
        }
        if line.contains(" panicked at ") {
            panic = Some(line.trim().to_owned());
            panic_message_next = true;
        }
        if !line.trim().is_empty() {
            last_line = Some(line);
        }
    };
    let status: ExitStatus = loop {
        tokio::select! {
            line = lines.next_line(), if stderr_open => match line {
                Ok(Some(line)) => log_line(line),
                Ok(None) | Err(_) => stderr_open = false,
            },
            status = child.wait() => match status {
                Ok(status) => break status,
                Err(error) => {
                    tree.kill_all();
                    return Err(format!("cannot wait for the builder process {pid}: {error}"));
                }
            },
            _ = snapshot.tick() => tree.refresh(),
            () = task.cancelled() => {
                task.log(Level::Warn, UNIT_BUILD, &format!("{what}: cancelled; stopping the builder process {pid} and its build commands"));
                tree.refresh();
                if !stop_group(&mut child, program.kill_grace).await {
                    task.log(Level::Warn, UNIT_BUILD, &format!("the builder did not stop within {:?}; killing it", program.kill_grace));
                }
                let mut killed = tree.kill_all();
                killed.insert(tree.leader());
                let _ = child.wait().await;
                task.log(Level::Warn, UNIT_BUILD, &format!("killed process groups {killed:?}"));
                return Err(crate::tasks::CANCELLED.to_owned());
            }
        }
    };
    // What the child left running (a build command of a crashed builder) goes too.
    tree.kill_all();
    // Its last words may still be in the pipe.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while stderr_open {
            match lines.next_line().await {
                Ok(Some(line)) => log_line(line),
                Ok(None) | Err(_) => stderr_open = false,
            }
        }
    })
    .await;
    if status.success() {
        task.log(
            Level::Info,
            UNIT_BUILD,
            &format!("{what}: the builder finished"),
        );
        return Ok(());
    }
    let ended = describe_status(status);
    let message = match last_error.or(panic).or(last_line) {
        Some(line) => line
            .strip_prefix("error: ")
            .map(str::to_owned)
            .unwrap_or(line),
        None => format!("the builder ended with {ended} and said nothing"),
    };
    task.log(
        Level::Error,
        UNIT_BUILD,
        &format!("{what}: the builder ended with {ended}"),
    );
    Err(message)
}

/// The level of a stderr line of the builder: its `error:` and `warning:` lines stand out.
fn level_of(line: &str) -> Level {
    if line.starts_with("error:") {
        Level::Error
    } else if line.starts_with("warning:") {
        Level::Warn
    } else {
        Level::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builders_error_lines_stand_out() {
        assert_eq!(level_of("error: step `building`: boom"), Level::Error);
        assert_eq!(level_of("warning: 3 lines lost"), Level::Warn);
        assert_eq!(level_of("cancelling the build"), Level::Info);
    }
}
