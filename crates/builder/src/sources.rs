//! Source and settings repositories: clone or fetch with gix, check the branch head out,
//! submodules with the `git` program, and the build tag.
//!
//! A repository lives in `<parent>/<name>` and is reused by later builds: it is fetched, and
//! the branch head is checked out afresh into an emptied work tree (everything but `.git`
//! is removed first), so a build never sees files of an earlier build or of an earlier
//! commit. A directory whose origin URL or branch differs from the settings, that is not a
//! repository, or whose fetch fails (a corrupt clone, a force-pushed history gix refuses)
//! is cloned again. A clone is made next to its place and renamed into it, so an
//! interrupted clone is never taken for a good one.
//!
//! gix cannot update submodules or push: `git submodule update --init --recursive` and
//! `git push` run the `git` program for those (through `crate::process::git`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::refs::transaction::PreviousValue;
use vupdate_state::model::GitRepository;

use crate::error::BuilderError;
use crate::process::{git, git_output};

/// How a checkout got its repository, for the build log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// An earlier clone was fetched.
    Reused,
    /// The repository was cloned; why an earlier clone was not used, if there was one.
    Cloned {
        /// Why the earlier directory was not reused (`None`: there was none).
        replaced: Option<String>,
    },
}

/// A repository checked out for a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The repository's name in the build settings.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The commit checked out (the branch head), as 40 hex digits.
    pub commit: String,
    /// The repository's work tree.
    pub work_tree: PathBuf,
    /// The part used by the build: the work tree or its `subDirectory`.
    pub directory: PathBuf,
    /// Whether an earlier clone was reused.
    pub fetched: Fetched,
}

/// Clones `repository` into `parent/<name>` or fetches an earlier clone there, checks its
/// branch head out and updates submodules when asked. Blocking: call from `spawn_blocking`.
/// `interrupt` stops a fetch or checkout in progress.
pub fn checkout(
    repository: &GitRepository,
    parent: &Path,
    interrupt: &AtomicBool,
) -> Result<Checkout, BuilderError> {
    let span =
        tracing::info_span!("checkout", repository = %repository.name, url = %repository.url);
    let _entered = span.enter();
    let fail = |step: &'static str| {
        move |reason: String| BuilderError::Git {
            name: repository.name.clone(),
            url: repository.url.clone(),
            branch: repository.branch.clone(),
            step,
            reason,
        }
    };
    check_name(&repository.name)?;
    if let Some(sub) = &repository.sub_directory {
        check_sub_directory(&repository.name, sub)?;
    }
    let work_tree = parent.join(&repository.name);
    let (repo, fetched) = match reusable(&work_tree, repository) {
        Ok(repo) => match fetch(&repo, repository, interrupt) {
            Ok(()) => (repo, Fetched::Reused),
            Err(_) if interrupt.load(std::sync::atomic::Ordering::Relaxed) => {
                return Err(fail("fetch")("interrupted".to_owned()));
            }
            Err(reason) => {
                tracing::warn!(%reason, "fetch failed, cloning again");
                let repo =
                    clone(repository, parent, &work_tree, interrupt).map_err(fail("clone"))?;
                let replaced = Some(format!("fetching the earlier clone failed: {reason}"));
                (repo, Fetched::Cloned { replaced })
            }
        },
        Err(replaced) => {
            let repo = clone(repository, parent, &work_tree, interrupt).map_err(fail("clone"))?;
            (repo, Fetched::Cloned { replaced })
        }
    };
    let tracking = format!("refs/remotes/origin/{}", repository.branch);
    let commit = repo
        .find_reference(tracking.as_str())
        .map_err(|_| format!("the remote has no branch `{}`", repository.branch))
        .and_then(|mut reference| {
            reference
                .peel_to_id()
                .map(|id| id.detach())
                .map_err(|e| e.to_string())
        })
        .map_err(fail("fetch"))?;
    check_out(&repo, &repository.branch, commit, &work_tree, interrupt)
        .map_err(fail("checkout"))?;
    if repository.clone_submodules && work_tree.join(".gitmodules").exists() {
        tracing::info!("updating submodules with the git program (gix cannot)");
        git(
            &work_tree,
            &["submodule", "update", "--init", "--recursive", "--force"],
        )
        .map_err(fail("submodule update"))?;
    }
    let directory = match &repository.sub_directory {
        Some(sub) => {
            let directory = work_tree.join(sub);
            if !directory.is_dir() {
                return Err(BuilderError::SubDirectoryMissing {
                    name: repository.name.clone(),
                    sub_directory: sub.clone(),
                    commit: commit.to_string(),
                });
            }
            directory
        }
        None => work_tree.clone(),
    };
    tracing::info!(%commit, "checked out");
    Ok(Checkout {
        name: repository.name.clone(),
        url: repository.url.clone(),
        commit: commit.to_string(),
        work_tree,
        directory,
        fetched,
    })
}

/// Tags `commit` in the checkout as `tag` and pushes the tag to the repository's origin.
/// Pushing a tag the origin already has at the same commit succeeds; at another commit it
/// fails, so a version number is never silently given to other sources.
pub fn tag_and_push(checkout: &Checkout, tag: &str) -> Result<(), BuilderError> {
    let fail = |reason: String| BuilderError::Tag {
        name: checkout.name.clone(),
        url: checkout.url.clone(),
        tag: tag.to_owned(),
        reason,
    };
    let repo = gix::open(&checkout.work_tree).map_err(|e| fail(e.to_string()))?;
    let commit =
        gix::ObjectId::from_hex(checkout.commit.as_bytes()).map_err(|e| fail(e.to_string()))?;
    // The local clone is the builder's own: a stale tag there from a failed build is replaced.
    repo.tag_reference(tag, commit, PreviousValue::Any)
        .map_err(|e| fail(e.to_string()))?;
    let refspec = format!("refs/tags/{tag}:refs/tags/{tag}");
    let refused = match git(
        &checkout.work_tree,
        &["push", "--quiet", "origin", &refspec],
    ) {
        Ok(()) => return Ok(()),
        Err(refused) => refused,
    };
    // Already there at this commit: a run of the same build pushed it before it was cut
    // (a server killed after the tag, a builder a new lease holder fenced off). The tag
    // says the same; refusing it would fail every later run of this version.
    let name = format!("refs/tags/{tag}");
    let remote = git_output(&checkout.work_tree, &["ls-remote", "origin", &name]);
    let there = remote.ok().and_then(|listed| {
        listed
            .lines()
            .find_map(|line| line.strip_suffix(name.as_str()))
            .map(|id| id.trim().to_owned())
    });
    match there {
        Some(id) if id == checkout.commit => Ok(()),
        _ => Err(fail(refused)),
    }
}

/// A repository name becomes a directory name: one plain path segment.
fn check_name(name: &str) -> Result<(), BuilderError> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']);
    if plain {
        Ok(())
    } else {
        Err(BuilderError::Settings(format!(
            "repository name `{name}` cannot be a directory name (one path segment, not `.` or `..`)"
        )))
    }
}

/// `subDirectory` names a folder inside the repository: relative, without `..`.
fn check_sub_directory(name: &str, sub: &str) -> Result<(), BuilderError> {
    let path = Path::new(sub);
    let inside = !sub.is_empty()
        && path.is_relative()
        && path.components().all(|part| {
            matches!(
                part,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
    if inside {
        Ok(())
    } else {
        Err(BuilderError::Settings(format!(
            "repository `{name}`: subDirectory `{sub}` must be a relative path inside the repository (no `..`)"
        )))
    }
}

/// The earlier clone at `work_tree` if it is one of the same URL and branch; otherwise why
/// not (`None`: nothing is there).
fn reusable(
    work_tree: &Path,
    repository: &GitRepository,
) -> Result<gix::Repository, Option<String>> {
    if !work_tree.exists() {
        return Err(None);
    }
    let repo = gix::open(work_tree).map_err(|e| Some(format!("not a repository: {e}")))?;
    let url = repo
        .find_remote("origin")
        .ok()
        .and_then(|remote| {
            remote
                .url(gix::remote::Direction::Fetch)
                .map(|url| url.to_bstring())
        })
        .ok_or_else(|| Some("it has no origin".to_owned()))?;
    if url.to_str().ok() != Some(repository.url.as_str()) {
        return Err(Some(format!(
            "its origin is {url}, the settings say {}",
            repository.url
        )));
    }
    let branch = repo
        .head_name()
        .ok()
        .flatten()
        .map(|name| name.shorten().to_string());
    if branch.as_deref() != Some(repository.branch.as_str()) {
        return Err(Some(format!(
            "it is on branch {}, the settings say {}",
            branch.as_deref().unwrap_or("(none)"),
            repository.branch
        )));
    }
    Ok(repo)
}

fn fetch(
    repo: &gix::Repository,
    repository: &GitRepository,
    interrupt: &AtomicBool,
) -> Result<(), String> {
    let spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", repository.branch);
    let spec = gix::refspec::parse(
        spec.as_bytes().as_bstr(),
        gix::refspec::parse::Operation::Fetch,
    )
    .map_err(|e| e.to_string())?
    .to_owned();
    let options = gix::remote::ref_map::Options {
        extra_refspecs: vec![spec],
        ..Default::default()
    };
    repo.find_remote("origin")
        .map_err(|e| e.to_string())?
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| e.to_string())?
        .prepare_fetch(gix::progress::Discard, options)
        .map_err(|e| e.to_string())?
        .receive(gix::progress::Discard, interrupt)
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn clone(
    repository: &GitRepository,
    parent: &Path,
    work_tree: &Path,
    interrupt: &AtomicBool,
) -> Result<gix::Repository, String> {
    std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let partial = parent.join(format!(".{}.partial", repository.name));
    let remove = |stale: &Path| match std::fs::remove_dir_all(stale) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("removing {}: {e}", stale.display())),
    };
    remove(&partial)?;
    let cloned = gix::prepare_clone(repository.url.as_str(), &partial)
        .map_err(|e| e.to_string())
        .and_then(|prepare| {
            prepare
                .with_ref_name(Some(repository.branch.as_str()))
                .map_err(|e| e.to_string())
        })
        .and_then(|mut prepare| {
            prepare
                .fetch_only(gix::progress::Discard, interrupt)
                .map_err(|e| e.to_string())
        });
    if let Err(reason) = cloned {
        let _ = remove(&partial);
        return Err(reason);
    }
    // The earlier directory goes only once its replacement is complete.
    remove(work_tree)?;
    std::fs::rename(&partial, work_tree).map_err(|e| {
        format!(
            "renaming {} to {}: {e}",
            partial.display(),
            work_tree.display()
        )
    })?;
    gix::open(work_tree).map_err(|e| e.to_string())
}

/// Points the local branch at `commit` and writes its tree into an emptied work tree.
fn check_out(
    repo: &gix::Repository,
    branch: &str,
    commit: gix::ObjectId,
    work_tree: &Path,
    interrupt: &AtomicBool,
) -> Result<(), String> {
    repo.reference(
        format!("refs/heads/{branch}"),
        commit,
        PreviousValue::Any,
        "vupdate builder: branch head",
    )
    .map_err(|e| e.to_string())?;
    let tree = repo
        .find_commit(commit)
        .map_err(|e| e.to_string())?
        .tree_id()
        .map_err(|e| e.to_string())?;
    empty_work_tree(work_tree).map_err(|e| format!("emptying {}: {e}", work_tree.display()))?;
    let mut index = repo.index_from_tree(&tree).map_err(|e| e.to_string())?;
    let mut options = repo
        .checkout_options(gix::worktree::stack::state::attributes::Source::IdMapping)
        .map_err(|e| e.to_string())?;
    options.destination_is_initially_empty = true;
    let objects = repo.objects.clone().into_arc().map_err(|e| e.to_string())?;
    let outcome = gix::worktree::state::checkout(
        &mut index,
        work_tree,
        objects,
        &gix::progress::Discard,
        &gix::progress::Discard,
        interrupt,
        options,
    )
    .map_err(|e| e.to_string())?;
    if interrupt.load(std::sync::atomic::Ordering::Relaxed) {
        return Err("interrupted".to_owned());
    }
    if let Some(error) = outcome.errors.first() {
        return Err(format!("{}: {}", error.path, error.error));
    }
    index.write(Default::default()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Removes everything in `work_tree` but `.git`.
fn empty_work_tree(work_tree: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(work_tree)? {
        let entry = entry?;
        if entry.file_name() == ".git" {
            continue;
        }
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// An interrupt flag that follows a cancellation token, for gix's blocking calls.
pub(crate) fn interrupt_flag(
    cancel: &tokio_util::sync::CancellationToken,
) -> (Arc<AtomicBool>, tokio_util::sync::DropGuard) {
    let flag = Arc::new(AtomicBool::new(false));
    let child = cancel.child_token();
    let watcher = {
        let flag = Arc::clone(&flag);
        let child = child.clone();
        async move {
            child.cancelled().await;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    tokio::spawn(watcher);
    (flag, child.drop_guard())
}
