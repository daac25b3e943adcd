//! The newest commit of a service's first source repository, which the dashboard offers
//! as the comment of a developer build ("last commit comment", as the original did).
//!
//! The branch is read with the `git` program, so the machine's credential helpers apply
//! as for builds: a shallow, blob-less bare clone of that one branch into a temporary
//! folder (removed afterwards), then `git log -1`. Nothing is kept; a build clones its
//! sources itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::http::ApiError;

/// How long reading a remote branch may take.
const LIMIT: Duration = Duration::from_secs(60);

/// A commit of a source repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCommit {
    /// The commit id.
    pub id: String,
    /// Its author's name.
    pub author: String,
    /// When it was authored.
    pub time: DateTime<Utc>,
    /// Its whole message.
    pub message: String,
}

/// The newest commit of `branch` in the repository at `url`.
pub async fn last_commit(url: &str, branch: &str) -> Result<SourceCommit, ApiError> {
    let dir = scratch_dir()?;
    let result = tokio::time::timeout(LIMIT, read(url, branch, &dir)).await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    result.map_err(|_| {
        ApiError::invalid(
            "SOURCE_UNREACHABLE",
            format!("reading branch `{branch}` of `{url}` took more than {LIMIT:?}"),
        )
    })?
}

async fn read(url: &str, branch: &str, dir: &Path) -> Result<SourceCommit, ApiError> {
    git(
        None,
        &[
            "clone",
            "--quiet",
            "--bare",
            "--depth",
            "1",
            "--single-branch",
            "--no-tags",
            "--filter=blob:none",
            "--branch",
            branch,
            "--",
            url,
        ],
        Some(dir),
    )
    .await
    .map_err(|stderr| {
        ApiError::invalid(
            "SOURCE_UNREACHABLE",
            format!("cannot read branch `{branch}` of `{url}`: {stderr}"),
        )
    })?;
    let text = git(
        Some(dir),
        &["log", "-1", "--format=%H%x00%an%x00%aI%x00%B"],
        None,
    )
    .await
    .map_err(ApiError::internal)?;
    parse_log(&text)
        .ok_or_else(|| ApiError::internal(format!("unexpected `git log` output: {text}")))
}

/// Reads `%H%x00%an%x00%aI%x00%B`.
fn parse_log(text: &str) -> Option<SourceCommit> {
    let mut parts = text.splitn(4, '\0');
    let id = parts.next()?.trim().to_owned();
    let author = parts.next()?.to_owned();
    let time = DateTime::parse_from_rfc3339(parts.next()?)
        .ok()?
        .with_timezone(&Utc);
    let message = parts.next()?.trim_end().to_owned();
    (!id.is_empty()).then_some(SourceCommit {
        id,
        author,
        time,
        message,
    })
}

/// Runs `git` (in `cwd`, with `target` appended as the last argument); its stdout, or its
/// stderr when it fails.
async fn git(cwd: Option<&Path>, args: &[&str], target: Option<&Path>) -> Result<String, String> {
    let mut command = tokio::process::Command::new("git");
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(target) = target {
        command.arg(target);
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command
        .output()
        .await
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// A fresh folder name under the system's temporary folder.
fn scratch_dir() -> Result<PathBuf, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(std::env::temp_dir().join(format!("vupdate-source-{}", hex::encode(bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_log_output_is_read_with_a_multi_line_message() {
        let text =
            "abc123\0Alice\x002026-12-01T10:00:00+01:00\0Fix the parser\n\nIt failed on tabs.\n\n";
        let commit = parse_log(text).expect("parsed");
        assert_eq!(commit.id, "abc123");
        assert_eq!(commit.author, "Alice");
        assert_eq!(commit.time.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        assert_eq!(commit.message, "Fix the parser\n\nIt failed on tabs.");
        assert!(parse_log("garbage").is_none());
    }

    #[tokio::test]
    async fn the_newest_commit_of_a_branch_is_read_and_nothing_is_left() {
        let repo = vupdate_test_support::GitRepo::init();
        repo.write("a.txt", "1");
        repo.commit("first", &vupdate_test_support::Person::alice());
        repo.write("a.txt", "2");
        let id = repo.commit(
            "Second: the one\n\nwith a body",
            &vupdate_test_support::Person::alice(),
        );
        let url = repo.path().display().to_string();
        let commit = last_commit(&url, "main").await.expect("read");
        assert_eq!(commit.id, id);
        assert_eq!(commit.message, "Second: the one\n\nwith a body");
        let error = last_commit(&url, "no-such-branch")
            .await
            .expect_err("refused");
        assert_eq!(error.code(), "SOURCE_UNREACHABLE");
        assert!(
            error.message().contains("no-such-branch"),
            "{}",
            error.message()
        );
    }
}
