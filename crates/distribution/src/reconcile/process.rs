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
//! their own. So the runner keeps a snapshot, refreshed every second, of the process
//! groups of every descendant of the child. A cancelled task sends SIGTERM to the child's
//! group (the child then stops its build command), waits `kill_grace`, and sends SIGKILL to
//! every group of the snapshot; when the child ends on its own, what it left behind is
//! killed the same way. Dropping the build (the task aborted) does the same at once.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use vupdate_core::log::Level;
use vupdate_core::reconcile::Build;
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
    /// The server's certificate, for a child talking HTTPS to it.
    pub ca_file: Option<PathBuf>,
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
            };
            run_child(&program, run, arguments, &task).await
        })
    }

    fn attach(&self, server: &ServerLink) {
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
    if let Some(ca_file) = &link.ca_file {
        option("ca-file", ca_file.as_os_str().to_owned());
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
    let tree = Tree::new(pid);
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
                let _ = killpg(tree.leader(), Signal::SIGTERM);
                if tokio::time::timeout(program.kill_grace, child.wait()).await.is_err() {
                    task.log(Level::Warn, UNIT_BUILD, &format!("the builder did not stop within {:?}; killing it", program.kill_grace));
                }
                let killed = tree.kill_all();
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

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_owned(),
    }
}

/// The child's process tree: every process its descendants were seen as (pid, group and
/// start time, so a pid reused since is never killed). Killing on drop makes an aborted
/// build leave nothing running.
struct Tree {
    leader: u32,
    seen: Mutex<BTreeMap<i32, Seen>>,
    killed: std::sync::atomic::AtomicBool,
}

/// A process as `/proc/<pid>/stat` showed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    parent: i32,
    group: i32,
    start: u64,
}

impl Tree {
    fn new(leader: u32) -> Tree {
        let seen: BTreeMap<i32, Seen> = stat_of(leader as i32)
            .map(|seen| (leader as i32, seen))
            .into_iter()
            .collect();
        let tree = Tree {
            leader,
            seen: Mutex::new(seen),
            killed: std::sync::atomic::AtomicBool::new(false),
        };
        tree.refresh();
        tree
    }

    fn leader(&self) -> Pid {
        Pid::from_raw(self.leader as i32)
    }

    /// Adds the leader's current descendants.
    fn refresh(&self) {
        let found = descendants(self.leader as i32);
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(found);
    }

    /// SIGKILL to every process seen that is still the same process, and to its group;
    /// returns the groups.
    fn kill_all(&self) -> BTreeSet<i32> {
        self.refresh();
        self.killed.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut groups = BTreeSet::new();
        for (pid, then) in seen {
            let same = stat_of(pid).is_some_and(|now| now.start == then.start);
            if !same {
                continue;
            }
            // The group first: it also holds what started after the last snapshot.
            let _ = killpg(Pid::from_raw(then.group), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            groups.insert(then.group);
        }
        groups
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if !self.killed.load(std::sync::atomic::Ordering::SeqCst) {
            self.kill_all();
        }
    }
}

/// Every descendant of `root`, read from `/proc`.
fn descendants(root: i32) -> Vec<(i32, Seen)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: BTreeMap<i32, Vec<(i32, Seen)>> = BTreeMap::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(seen) = stat_of(pid) {
            children.entry(seen.parent).or_default().push((pid, seen));
        }
    }
    let mut found = Vec::new();
    let mut pending = vec![root];
    while let Some(parent) = pending.pop() {
        for &(pid, seen) in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            found.push((pid, seen));
            pending.push(pid);
        }
    }
    found
}

/// Process `pid` as `/proc/<pid>/stat` shows it now, if it exists.
fn stat_of(pid: i32) -> Option<Seen> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parent, group and start time of a `/proc/<pid>/stat` line (fields 4, 5 and 22, after
/// the command name in parentheses, which may itself hold spaces and parentheses).
fn parse_stat(stat: &str) -> Option<Seen> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Seen {
        parent: fields.get(1)?.parse().ok()?,
        group: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_parent_group_and_start_time() {
        let line =
            "4242 (sh) S 4200 4242 4200 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 2498560 214";
        assert_eq!(
            parse_stat(line),
            Some(Seen {
                parent: 4200,
                group: 4242,
                start: 123456
            })
        );
        let odd = "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        assert_eq!(parse_stat(odd).map(|s| (s.parent, s.start)), Some((1, 99)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (init) S 0 1"), None);
    }

    #[test]
    fn the_builders_error_lines_stand_out() {
        assert_eq!(level_of("error: step `building`: boom"), Level::Error);
        assert_eq!(level_of("warning: 3 lines lost"), Level::Warn);
        assert_eq!(level_of("cancelling the build"), Level::Info);
    }

    #[test]
    fn the_descendants_of_this_process_include_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let found = descendants(std::process::id() as i32);
        let pid = child.id() as i32;
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.iter().any(|(p, _)| *p == pid), "{found:?}");
    }
}
