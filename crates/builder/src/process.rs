//! Runs one build command: its own process group, output streamed line by line into the
//! log, `exitCode` and `outputMatch` checked, and the whole group killed on cancellation.
//!
//! This is the one place the builder starts programs: build commands here, and the few
//! `git` steps gix cannot do ([`git`]), so process groups, the environment and the cleanup
//! are the same for every step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;
use vupdate_core::log::Level;
use vupdate_core::update::Command;
use vupdate_process::{describe_status, kill_group, stop_group};

use crate::error::BuilderError;
use crate::log::{BuildLog, UNIT_BUILD, UNIT_PROCESS};

/// How much output is kept for `outputMatch`; beyond it the oldest text is dropped.
const OUTPUT_CAP: usize = 16 * 1024 * 1024;
/// How many lines of output an error message quotes.
const TAIL_LINES: usize = 20;
/// How long output may keep coming after the command ended and its group was killed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// One command of a build, with its macros already expanded.
pub(crate) struct Step<'a> {
    /// The step's name in messages (`buildCommands[0]`).
    pub name: String,
    /// The command.
    pub command: &'a Command,
    /// The directory the command's `directory` is relative to.
    pub base_directory: &'a Path,
    /// Environment from the build settings; the command's own `env` wins over it.
    pub environment: &'a BTreeMap<String, String>,
}

impl Step<'_> {
    fn command_line(&self) -> String {
        std::iter::once(self.command.command.as_str())
            .chain(self.command.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn directory(&self) -> PathBuf {
        match &self.command.directory {
            Some(directory) => self.base_directory.join(directory),
            None => self.base_directory.to_path_buf(),
        }
    }
}

/// Runs `step` to its end, or until `cancel` fires, then kills its process group: SIGTERM,
/// `grace`, SIGKILL. Also kills what the command left running in its group when it ends,
/// so no build step outlives its build.
pub(crate) async fn run(
    step: &Step<'_>,
    log: &dyn BuildLog,
    cancel: &CancellationToken,
    grace: Duration,
) -> Result<(), BuilderError> {
    let command_line = step.command_line();
    let directory = step.directory();
    log.line(
        Level::Info,
        UNIT_BUILD,
        &format!(
            "{}: running `{command_line}` in {}",
            step.name,
            directory.display()
        ),
    );
    let mut program = PathBuf::from(&step.command.command);
    if program.is_relative() && step.command.command.contains('/') {
        // `./build.sh` means the one in the command's directory, whatever the platform does.
        program = directory.join(program);
    }
    let mut child = tokio::process::Command::new(&program)
        .args(&step.command.args)
        .current_dir(&directory)
        .envs(step.environment)
        .envs(&step.command.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BuilderError::Spawn {
            step: step.name.clone(),
            command: command_line.clone(),
            directory: directory.clone(),
            error: source,
        })?;
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .expect("a child that was just spawned and not waited for has a pid");
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");

    let mut output = Output::default();
    let status = tokio::select! {
        status = stream_until_exit(&mut child, stdout, stderr, log, &mut output, group) => status,
        () = cancel.cancelled() => {
            stop_group(&mut child, grace).await;
            let _ = child.wait().await;
            log.line(Level::Warn, UNIT_BUILD, &format!("{}: cancelled, `{command_line}` and its process group killed", step.name));
            return Err(BuilderError::Cancelled { step: step.name.clone() });
        }
    };
    let status = status.map_err(BuilderError::io(
        "waiting for the build command in",
        &directory,
    ))?;
    let described = describe_status(status);
    log.line(
        Level::Info,
        UNIT_PROCESS,
        &format!("`{command_line}` terminated with {described}"),
    );
    if let Some(expected) = step.command.exit_code
        && status.code() != Some(expected)
    {
        return Err(BuilderError::ExitCode {
            step: step.name.clone(),
            command: command_line,
            status: described,
            expected,
            tail: output.tail(),
        });
    }
    if step.command.exit_code.is_none() && !status.success() {
        // The original did not check an exit code left out either; say so, so a broken build
        // is easy to spot in the log.
        log.line(
            Level::Warn,
            UNIT_BUILD,
            &format!(
                "{}: `{command_line}` ended with {described}; not checked, as it gives no exitCode",
                step.name
            ),
        );
    }
    if let Some(pattern) = &step.command.output_match
        && !pattern.is_match(&output.text)
    {
        return Err(BuilderError::OutputMismatch {
            step: step.name.clone(),
            command: command_line,
            pattern: pattern.as_str().to_owned(),
            tail: output.tail(),
        });
    }
    Ok(())
}

/// Runs the `git` program in `directory` to its end; the error is its stderr. For the steps
/// gix cannot do (push, submodules), short and not cancellable.
pub(crate) fn git(directory: &Path, args: &[&str]) -> Result<(), String> {
    git_output(directory, args).map(drop)
}

/// [`git`], returning what it printed on stdout.
pub(crate) fn git_output(directory: &Path, args: &[&str]) -> Result<String, String> {
    let output = std::process::Command::new("git")
        .current_dir(directory)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`git {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The output kept for `outputMatch` and error messages.
#[derive(Default)]
struct Output {
    text: String,
}

impl Output {
    fn push(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
        if self.text.len() > OUTPUT_CAP {
            let mut cut = self.text.len() - OUTPUT_CAP / 2;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
    }

    fn tail(&self) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        if lines.is_empty() {
            "(no output)".to_owned()
        } else {
            lines[start..].join("\n")
        }
    }
}

/// Streams both pipes into the log as lines arrive until the command ends; then kills what
/// is left of its group and takes the rest of the output.
async fn stream_until_exit(
    child: &mut Child,
    stdout: impl AsyncRead + Unpin,
    stderr: impl AsyncRead + Unpin,
    log: &dyn BuildLog,
    output: &mut Output,
    group: i32,
) -> std::io::Result<ExitStatus> {
    let mut stdout = BufReader::new(stdout);
    let mut stderr = BufReader::new(stderr);
    let (mut out_buffer, mut err_buffer) = (Vec::new(), Vec::new());
    let (mut out_open, mut err_open) = (true, true);
    let mut status = None;
    let mut emit = |buffer: &mut Vec<u8>| {
        let line = String::from_utf8_lossy(buffer);
        let line = line.trim_end_matches(['\n', '\r']);
        log.line(Level::Info, UNIT_PROCESS, line);
        output.push(line);
        buffer.clear();
    };
    while status.is_none() && (out_open || err_open) {
        tokio::select! {
            read = stdout.read_until(b'\n', &mut out_buffer), if out_open => {
                if read? == 0 { out_open = false; if !out_buffer.is_empty() { emit(&mut out_buffer); } } else { emit(&mut out_buffer); }
            }
            read = stderr.read_until(b'\n', &mut err_buffer), if err_open => {
                if read? == 0 { err_open = false; if !err_buffer.is_empty() { emit(&mut err_buffer); } } else { emit(&mut err_buffer); }
            }
            exited = child.wait() => status = Some(exited?),
        }
    }
    let status = match status {
        Some(status) => status,
        None => child.wait().await?,
    };
    // Background processes the command started would keep the pipes open forever.
    kill_group(group);
    let drain = async {
        while out_open || err_open {
            tokio::select! {
                read = stdout.read_until(b'\n', &mut out_buffer), if out_open => {
                    if read? == 0 { out_open = false; if !out_buffer.is_empty() { emit(&mut out_buffer); } } else { emit(&mut out_buffer); }
                }
                read = stderr.read_until(b'\n', &mut err_buffer), if err_open => {
                    if read? == 0 { err_open = false; if !err_buffer.is_empty() { emit(&mut err_buffer); } } else { emit(&mut err_buffer); }
                }
            }
        }
        Ok::<(), std::io::Error>(())
    };
    // A process that left the group (setsid) may hold a pipe: stop reading after a while.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_the_last_lines_for_messages() {
        let mut output = Output::default();
        for i in 0..30 {
            output.push(&format!("line {i}"));
        }
        let tail = output.tail();
        assert!(tail.starts_with("line 10\n"), "{tail}");
        assert!(tail.ends_with("line 29"), "{tail}");
        assert_eq!(Output::default().tail(), "(no output)");
    }

    #[test]
    fn output_is_capped_at_a_char_boundary() {
        let mut output = Output::default();
        let line = "é".repeat(1024 * 1024);
        for _ in 0..10 {
            output.push(&line);
        }
        assert!(output.text.len() <= OUTPUT_CAP);
        assert!(output.text.ends_with("é\n"));
    }
}
