//! Running `installCommands` and `postInstallCommands`: one after another, each in its own
//! process group with the service's command marker, output into the service's log, checked
//! against `exitCode` and `outputMatch`, and killed tree-wide past a timeout. What a
//! command leaves running when it ends is killed too ([`Leftovers`] says how it is found).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use vupdate_core::update::Command;

use crate::Error;
use crate::layout::OWNER_ENV;
use crate::logs::LogPipeline;
use crate::spawn::{ProcessSpec, spawn};
use crate::supervisor::leader::Leader;
use crate::supervisor::stop::end_tree;
use crate::supervisor::tree::TreeTracker;

/// The most output kept per command to match `outputMatch` against.
const MAX_CAPTURE: usize = 1024 * 1024;

/// How long a command's output pipes may stay open after it exited before something else
/// is taken to hold them (a process it left, perhaps outside its group).
const OUTPUT_CLOSE: Duration = Duration::from_millis(100);

/// How what a command leaves running is looked for once it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leftovers {
    /// Every process of the machine is read for the command's marker: finds even a process
    /// that left the command's group (`setsid`) and closed its output. For install
    /// commands, which run seldom.
    Scan,
    /// The command's process group and output pipes are looked at, and the machine is read
    /// (as [`Leftovers::Scan`]) only when either is still in use: cheap enough for a health
    /// probe every second. A process that leaves the group and closes the pipes is missed.
    Group,
}

/// Where and how commands run.
#[derive(Debug, Clone)]
pub(crate) struct CommandContext<'a> {
    /// `service[-role]`, for errors.
    pub instance: &'a str,
    /// The directory commands run in (and their `directory` is relative to).
    pub base: &'a Path,
    /// The marker value of the service's commands.
    pub owner: &'a str,
    /// Where their output goes.
    pub pipeline: &'a Arc<LogPipeline>,
    /// How long one command may run.
    pub timeout: Duration,
    /// How what a command leaves running is found.
    pub leftovers: Leftovers,
}

/// Runs `commands` (macros expanded) in order; `field` names the list in errors
/// (`installCommands`). Stops at the first that fails.
pub(crate) async fn run_commands(
    context: &CommandContext<'_>,
    field: &str,
    commands: &[Command],
) -> Result<(), Error> {
    for (index, command) in commands.iter().enumerate() {
        let field = format!("{field}[{index}]");
        tracing::info!(%field, command = %command.command, "running");
        run_one(context, &field, command).await?;
    }
    Ok(())
}

async fn run_one(
    context: &CommandContext<'_>,
    field: &str,
    command: &Command,
) -> Result<(), Error> {
    let failed = |message: String| Error::Command {
        instance: context.instance.to_owned(),
        field: field.to_owned(),
        command: command.command.clone(),
        message,
    };
    let directory = match &command.directory {
        Some(directory) => context.base.join(directory),
        None => context.base.to_owned(),
    };
    let spawned = spawn(
        ProcessSpec {
            instance: context.instance,
            program: &command.command,
            args: &command.args,
            directory: &directory,
            owner: context.owner,
            cgroup_procs: None,
        },
        command.env.iter(),
    )?;
    let pid = spawned.pid;
    let group = i32::try_from(pid).expect("Linux pids fit in i32");
    let stdout = capture(spawned.stdout, context.pipeline.clone(), pid);
    let stderr = capture(spawned.stderr, context.pipeline.clone(), pid);
    let mut output = tokio::spawn(async move {
        let mut output = stdout.await.unwrap_or_default();
        output.push_str(&stderr.await.unwrap_or_default());
        output
    });
    let mut tree = TreeTracker::new(group, format!("{OWNER_ENV}={}", context.owner));
    let mut leader = Leader::Spawned(spawned.child);
    let waited = tokio::time::timeout(context.timeout, leader.wait()).await;
    let status = match waited {
        Ok(status) => status.map_err(|error| failed(format!("cannot wait for it: {error}")))?,
        Err(_) => {
            end_tree(
                &mut tree,
                None,
                Some(&mut leader),
                Signal::SIGTERM,
                // The grace never exceeds the timeout, so a hung command holds the install at most twice it.
                context.timeout.min(Duration::from_secs(5)),
            )
            .await;
            return Err(failed(format!(
                "still running after {} s; killed",
                context.timeout.as_secs()
            )));
        }
    };
    // The group is checked right after its leader was reaped: its pid is not handed out
    // again until the kernel's pids wrap around, so the group cannot be someone else's yet.
    let finished = match context.leftovers {
        Leftovers::Group if vupdate_process::group_is_empty(group) => {
            tokio::time::timeout(OUTPUT_CLOSE, &mut output).await.ok()
        }
        Leftovers::Group | Leftovers::Scan => None,
    };
    if finished.is_none() {
        // A command must not leave processes behind (they would outlive the install).
        end_tree(&mut tree, None, None, Signal::SIGKILL, Duration::ZERO).await;
    }
    let output = match finished {
        Some(output) => output,
        None => output.await,
    }
    .unwrap_or_default();
    if let Some(expected) = command.exit_code
        && status.code() != Some(expected)
    {
        return Err(failed(format!(
            "ended with {status}, expected exit code {expected}"
        )));
    }
    if let Some(pattern) = &command.output_match
        && !pattern.is_match(&output)
    {
        return Err(failed(format!(
            "its output does not match outputMatch `{}`",
            pattern.as_str()
        )));
    }
    Ok(())
}

/// Reads one pipe into the log pipeline while keeping up to [`MAX_CAPTURE`] bytes of it.
fn capture(
    reader: impl AsyncRead + Unpin + Send + 'static,
    pipeline: Arc<LogPipeline>,
    pid: u32,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut reader = reader;
        let mut kept = Vec::new();
        let mut pending = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let read = match reader.read(&mut chunk).await {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(%error, pid, "reading a command's output failed");
                    0
                }
            };
            let bytes = &chunk[..read];
            if kept.len() < MAX_CAPTURE {
                let room = MAX_CAPTURE - kept.len();
                kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            pending.extend_from_slice(bytes);
            let end = if read == 0 {
                pending.len()
            } else {
                pending
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |at| at + 1)
            };
            if end > 0 {
                let text = String::from_utf8_lossy(&pending[..end]).into_owned();
                pipeline.push_lines(text.lines(), chrono::Utc::now().naive_utc(), pid);
                pipeline.flush();
                pending.drain(..end);
            }
            if read == 0 {
                return String::from_utf8_lossy(&kept).into_owned();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogOptions;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args = vec!["-c".to_owned(), script.to_owned()];
        command
    }

    #[tokio::test]
    async fn commands_run_in_order_and_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        let pipeline = Arc::new(LogPipeline::new(None, LogOptions::default()));
        let context = CommandContext {
            instance: "svc",
            base: dir.path(),
            owner: "test-owner",
            pipeline: &pipeline,
            timeout: Duration::from_secs(60),
            leftovers: Leftovers::Scan,
        };
        let mut in_sub = sh("pwd > ../where; echo done");
        in_sub.directory = Some("sub".to_owned());
        in_sub.exit_code = Some(0);
        in_sub.output_match = Some(vupdate_core::update::Pattern::new("^done").expect("regex"));
        run_commands(
            &context,
            "installCommands",
            &[sh("echo first > order"), in_sub],
        )
        .await
        .expect("commands pass");
        let where_ = std::fs::read_to_string(dir.path().join("where")).expect("where");
        assert!(where_.trim_end().ends_with("/sub"), "{where_}");
        assert!(
            pipeline
                .tail()
                .iter()
                .any(|line| line.ends_with("INFO PLAIN done"))
        );

        // (command, what the error says)
        let mut wrong_code = sh("exit 4");
        wrong_code.exit_code = Some(0);
        let mut wrong_output = sh("echo nope");
        wrong_output.output_match = Some(vupdate_core::update::Pattern::new("yes").expect("regex"));
        for (command, expected) in [
            (
                wrong_code,
                "installCommands[1] `sh`: ended with exit status: 4, expected exit code 0",
            ),
            (wrong_output, "does not match outputMatch `yes`"),
            (Command::new("./missing.sh"), "cannot start `./missing.sh`"),
        ] {
            let error = run_commands(&context, "installCommands", &[sh("true"), command])
                .await
                .expect_err("fails");
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[tokio::test]
    async fn a_command_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = Arc::new(LogPipeline::new(None, LogOptions::default()));
        let context = CommandContext {
            instance: "svc",
            base: dir.path(),
            owner: "slow-owner",
            pipeline: &pipeline,
            timeout: Duration::from_secs(2),
            leftovers: Leftovers::Scan,
        };
        let command = sh("trap '' TERM; sleep 1000 & echo $! > child.pid; wait");
        let error = run_commands(&context, "postInstallCommands", &[command])
            .await
            .expect_err("times out");
        assert!(error.to_string().contains("still running after"), "{error}");
        let child: i32 = std::fs::read_to_string(dir.path().join("child.pid"))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid");
        let gone = vupdate_process::table::read(child).is_none_or(|info| info.is_zombie());
        assert!(gone, "the command's child survived");
    }
}
