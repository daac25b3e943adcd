//! The one place this crate runs the `git` program: push (gix has none), bringing a
//! checked-out work tree to a new commit, http(s) fetches, and the first bare clone of a
//! remote state repo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::StateError;

/// How a `git` run ended: success, or failure with what it printed.
pub(crate) enum Ran {
    Ok,
    Failed(String),
}

/// Runs `git` with `args` in `dir`, isolated from variables that would point it elsewhere.
fn run(dir: &Path, args: &[&str]) -> Result<Ran, StateError> {
    // Spawning in a missing folder fails with "No such file or directory", which reads as
    // a missing git: say which folder is missing instead.
    if !dir.is_dir() {
        return Err(StateError::GitDirectory {
            args: args.join(" "),
            dir: dir.to_path_buf(),
        });
    }
    let output: Output = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| StateError::GitProgram {
            args: args.join(" "),
            error: source,
        })?;
    if output.status.success() {
        return Ok(Ran::Ok);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut said: String = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `--porcelain` push reports each ref's fate on stdout: keep the rejected lines.
    for line in stdout.lines().filter(|l| l.starts_with('!')) {
        if !said.is_empty() {
            said.push('\n');
        }
        said.push_str(line.trim());
    }
    if said.is_empty() {
        said = format!("git exited with {}", output.status);
    }
    Ok(Ran::Failed(said))
}

/// Pushes `new` to `remote`'s `branch`, only if the remote still has `old` there (a
/// compare-and-swap on the remote), atomically.
pub(crate) fn push(
    git_dir: &Path,
    remote: &str,
    branch: &str,
    old: &str,
    new: &str,
) -> Result<Ran, StateError> {
    let lease = format!("--force-with-lease=refs/heads/{branch}:{old}");
    let refspec = format!("{new}:refs/heads/{branch}");
    run(
        git_dir,
        &["push", "--porcelain", "--atomic", &lease, remote, &refspec],
    )
}

/// Clones `url` bare into `target` (which must not exist) with the usual fetch refspec,
/// which a bare clone lacks, so `origin/<branch>` tracking refs work as in any clone.
pub(crate) fn clone_bare(url: &str, target: &str, cwd: &Path) -> Result<Ran, StateError> {
    match run(cwd, &["clone", "--quiet", "--bare", url, target])? {
        Ran::Ok => run(
            Path::new(target),
            &[
                "config",
                "remote.origin.fetch",
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        ),
        failed => Ok(failed),
    }
}

/// Fetches `refspec` from `remote` (used for http(s) remotes, see `StateRepo::fetch`).
pub(crate) fn fetch(git_dir: &Path, remote: &str, refspec: &str) -> Result<Ran, StateError> {
    run(git_dir, &["fetch", "--quiet", "--no-tags", remote, refspec])
}

/// Moves the index and files of `workdir` from tree-ish `old` to `new`, refusing (and
/// changing nothing) when a file that differs between them has local changes.
pub(crate) fn advance_work_tree(workdir: &Path, old: &str, new: &str) -> Result<(), StateError> {
    // read-tree trusts the index's stat data: refresh it so unchanged files count as clean.
    // Its exit status only says whether files are modified, which read-tree then judges.
    let _ = run(workdir, &["update-index", "-q", "--refresh"])?;
    match run(workdir, &["read-tree", "-m", "-u", old, new])? {
        Ran::Ok => Ok(()),
        Ran::Failed(reason) => Err(StateError::WorkTree {
            workdir: PathBuf::from(workdir),
            reason,
        }),
    }
}
