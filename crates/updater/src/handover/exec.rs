//! Replacing the updater process with another program (`execve`: same pid, same children,
//! inherited descriptors kept), and the environment that goes with it.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::file::ExecTarget;
use super::{FAILED_ENV, HANDOVER_ENV, HANDOVER_VARIABLES};

/// This process's arguments (without the program name) and environment (without the
/// handover variables), as an [`ExecTarget`] running `program`; `None` when an argument
/// is not UTF-8 (the handover file is JSON). Environment entries that are not UTF-8 are
/// left out.
pub(crate) fn this_process(program: &Path) -> Option<ExecTarget> {
    let args = this_process_args()?;
    let env = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| !HANDOVER_VARIABLES.contains(&name.as_str()))
        .collect();
    Some(ExecTarget {
        program: program.to_owned(),
        args,
        env,
    })
}

/// This process's arguments, without the program name; `None` when one is not UTF-8.
pub(crate) fn this_process_args() -> Option<Vec<String>> {
    std::env::args_os()
        .skip(1)
        .map(|arg| arg.into_string().ok())
        .collect()
}

/// Replaces this process with `target`, telling it where the handover file is and, for a
/// fallback, why the handover failed. Returns only when `execve` failed.
pub(crate) fn exec(target: &ExecTarget, handover: &Path, failure: Option<&str>) -> io::Error {
    // Not a service: this process becomes the program, so crate::spawn does not apply.
    #[allow(clippy::disallowed_methods)]
    let mut command = std::process::Command::new(&target.program);
    command
        .args(&target.args)
        .env_clear()
        .envs(target.env.iter().map(|(name, value)| (name, value)))
        .env(HANDOVER_ENV, handover);
    if let Some(failure) = failure {
        command.env(FAILED_ENV, failure);
    }
    command.exec()
}
