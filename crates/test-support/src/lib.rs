//! Test helpers for vupdate: real Git repositories, built with the `git` program in
//! temporary directories, so tests exercise what users run.
//!
//! Every `git` run is isolated from the machine: no system or global configuration
//! (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`), no prompts, a fixed identity, and
//! commit dates that start at a fixed instant and advance one minute per commit, so ids
//! and history order are reproducible. Helpers panic with git's output on failure: they
//! are for tests only.
//!
//! [`Patience`] waits for what another process or task does, by looking again up to a
//! limit (never by sleeping and hoping). [`machine::describe`] names the machine a
//! benchmark ran on.
//!
//! ```no_run
//! use vupdate_test_support::{GitRepo, Person};
//! let remote = GitRepo::init_bare();
//! let repo = GitRepo::init();
//! repo.write("vupdate.yaml", "schema: 1\n");
//! let first = repo.commit("start", &Person::alice());
//! repo.add_remote("origin", &remote);
//! repo.push("origin", "main");
//! assert_eq!(remote.rev_parse("main"), first);
//! ```

mod files;
pub mod http;
pub mod machine;
pub mod servers;
mod wait;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub use files::files_containing;
pub use wait::Patience;

/// The branch every repository starts on.
pub const MAIN: &str = "main";

/// First commit time of every repository (2026-01-01T00:00:00Z), in seconds since the epoch.
const EPOCH: i64 = 1_767_225_600;

/// An author of test commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Name.
    pub name: String,
    /// E-mail.
    pub email: String,
}

impl Person {
    /// A person with this name and e-mail.
    pub fn new(name: &str, email: &str) -> Self {
        Person {
            name: name.to_owned(),
            email: email.to_owned(),
        }
    }

    /// Alice, the usual author.
    pub fn alice() -> Self {
        Person::new("Alice Example", "alice@example.com")
    }

    /// Bob, the other author (e.g. the one who pushes first).
    pub fn bob() -> Self {
        Person::new("Bob Example", "bob@example.com")
    }
}

/// A Git repository in a temporary directory, removed when dropped.
#[derive(Debug)]
pub struct GitRepo {
    dir: TempDir,
    path: PathBuf,
    bare: bool,
    commits: Cell<i64>,
}

impl GitRepo {
    /// A new repository with a work tree, on branch `main`, with no commit.
    pub fn init() -> Self {
        let repo = GitRepo::empty(false);
        repo.git(&["init", "--quiet", "--initial-branch", MAIN, "."]);
        repo
    }

    /// A new bare repository (a "remote"), on branch `main`, with no commit.
    pub fn init_bare() -> Self {
        let repo = GitRepo::empty(true);
        repo.git(&["init", "--quiet", "--bare", "--initial-branch", MAIN, "."]);
        repo
    }

    /// A clone of `remote` with a work tree (its `origin` is `remote`).
    pub fn clone_from(remote: &GitRepo) -> Self {
        let repo = GitRepo::empty(false);
        let source = remote.path.to_string_lossy().into_owned();
        repo.git(&["clone", "--quiet", &source, "."]);
        repo
    }

    /// A bare clone of `remote` (its `origin` is `remote`).
    pub fn clone_bare_from(remote: &GitRepo) -> Self {
        let repo = GitRepo::empty(true);
        let source = remote.path.to_string_lossy().into_owned();
        repo.git(&["clone", "--quiet", "--bare", &source, "."]);
        // A bare clone has no fetch refspec; give it the usual one so fetches track the remote.
        repo.git(&[
            "config",
            "remote.origin.fetch",
            "+refs/heads/*:refs/remotes/origin/*",
        ]);
        repo
    }

    fn empty(bare: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vupdate-git-")
            .tempdir()
            .expect("create a temp dir");
        // Canonical, so paths compare equal to what git prints (macOS /private/var, symlinks).
        let path = dir.path().canonicalize().expect("canonical temp dir");
        GitRepo {
            dir,
            path,
            bare,
            commits: Cell::new(0),
        }
    }

    /// The repository's directory (the work tree, or the bare repository itself).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a bare repository.
    pub fn is_bare(&self) -> bool {
        self.bare
    }

    /// Writes a file of the work tree (creating folders), relative to its root.
    pub fn write(&self, relative: &str, content: &str) -> &Self {
        assert!(
            !self.bare,
            "a bare repository has no work tree to write {relative} in"
        );
        let path = self.path.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Writes several files.
    pub fn write_all(&self, files: &[(&str, &str)]) -> &Self {
        for (relative, content) in files {
            self.write(relative, content);
        }
        self
    }

    /// Reads a file of the work tree.
    pub fn read(&self, relative: &str) -> String {
        let path = self.path.join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Removes a file of the work tree.
    pub fn remove(&self, relative: &str) -> &Self {
        let path = self.path.join(relative);
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
        self
    }

    /// Copies a directory's files into the work tree (e.g. `examples/state-repo`).
    pub fn copy_dir(&self, from: &Path, to: &str) -> &Self {
        for entry in
            std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
        {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let target = if to.is_empty() {
                name.clone()
            } else {
                format!("{to}/{name}")
            };
            if entry.path().is_dir() {
                self.copy_dir(&entry.path(), &target);
            } else {
                let content = std::fs::read_to_string(entry.path()).expect("text file");
                self.write(&target, &content);
            }
        }
        self
    }

    /// Stages everything and commits it as `author` (also the committer); returns the id.
    pub fn commit(&self, message: &str, author: &Person) -> String {
        self.git(&["add", "--all"]);
        let n = self.commits.get();
        self.commits.set(n + 1);
        let date = format!("@{} +0000", EPOCH + 60 * n);
        let output = self.run(
            &[
                "commit",
                "--quiet",
                "--allow-empty",
                "--no-verify",
                "-m",
                message,
            ],
            &[
                ("GIT_AUTHOR_NAME", &author.name),
                ("GIT_AUTHOR_EMAIL", &author.email),
                ("GIT_COMMITTER_NAME", &author.name),
                ("GIT_COMMITTER_EMAIL", &author.email),
                ("GIT_AUTHOR_DATE", &date),
                ("GIT_COMMITTER_DATE", &date),
            ],
        );
        check(&output, "commit");
        self.rev_parse("HEAD")
    }

    /// Writes files and commits them in one step; returns the commit id.
    pub fn commit_files(&self, files: &[(&str, &str)], message: &str, author: &Person) -> String {
        self.write_all(files);
        self.commit(message, author)
    }

    /// Creates a branch at the current commit.
    pub fn branch(&self, name: &str) -> &Self {
        self.git(&["branch", name]);
        self
    }

    /// Checks out a branch or commit.
    pub fn checkout(&self, rev: &str) -> &Self {
        self.git(&["checkout", "--quiet", rev]);
        self
    }

    /// Adds a remote pointing at another test repository.
    pub fn add_remote(&self, name: &str, remote: &GitRepo) -> &Self {
        let url = remote.path.to_string_lossy().into_owned();
        self.git(&["remote", "add", name, &url]);
        self
    }

    /// Pushes a branch to a remote (fails the test if rejected).
    pub fn push(&self, remote: &str, branch: &str) -> &Self {
        self.git(&["push", "--quiet", remote, &format!("{branch}:{branch}")]);
        self
    }

    /// The full id of a revision.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", &format!("{rev}^{{commit}}")])
            .trim()
            .to_owned()
    }

    /// A file's content at a revision (`git show REV:PATH`).
    pub fn show(&self, rev: &str, path: &str) -> String {
        self.git(&["show", &format!("{rev}:{path}")])
    }

    /// `git status --porcelain` (empty when the work tree and index are clean).
    pub fn status(&self) -> String {
        self.git(&["status", "--porcelain"])
    }

    /// The lines that changed between two revisions (`-`/`+` lines of a zero-context diff,
    /// without the `---`/`+++` headers).
    pub fn changed_lines(&self, from: &str, to: &str) -> Vec<String> {
        self.git(&["diff", "--unified=0", "--no-color", from, to])
            .lines()
            .filter(|l| {
                (l.starts_with('-') || l.starts_with('+'))
                    && !l.starts_with("---")
                    && !l.starts_with("+++")
            })
            .map(str::to_owned)
            .collect()
    }

    /// Runs `git` with `args` in the repository and returns its stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.run(args, &[]);
        check(&output, &args.join(" "));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `git` with `args` and extra environment; returns the raw output, success or not.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("git");
        command.current_dir(&self.path).args(args);
        isolate(&mut command);
        for (key, value) in env {
            command.env(key, value);
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("cannot run git (is it installed?): {e}"))
    }

    /// Keeps the directory on disk after the test, for debugging; returns its path.
    pub fn keep(self) -> PathBuf {
        let path = self.path.clone();
        let _ = self.dir.keep();
        path
    }
}

/// Isolates a `git` command from the machine's configuration and environment.
pub fn isolate(command: &mut Command) {
    command
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("LC_ALL", "C");
}

fn check(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "git {what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_branches_and_a_bare_remote() {
        let remote = GitRepo::init_bare();
        let repo = GitRepo::init();
        let first = repo.commit_files(&[("a.txt", "one\n")], "first", &Person::alice());
        let second = repo.commit_files(&[("a.txt", "two\n")], "second", &Person::bob());
        assert_ne!(first, second);
        assert_eq!(
            repo.git(&["log", "-1", "--format=%an <%ae> %at", "HEAD"])
                .trim(),
            "Bob Example <bob@example.com> 1767225660"
        );
        assert_eq!(repo.changed_lines(&first, &second), ["-one", "+two"]);
        repo.add_remote("origin", &remote).push("origin", MAIN);
        assert_eq!(remote.rev_parse(MAIN), second);
        let clone = GitRepo::clone_from(&remote);
        assert_eq!(clone.read("a.txt"), "two\n");
        assert_eq!(clone.status(), "");
        let bare = GitRepo::clone_bare_from(&remote);
        assert!(bare.is_bare());
        assert_eq!(bare.show(MAIN, "a.txt"), "two\n");
        repo.branch("side").checkout("side");
        assert_eq!(repo.git(&["branch", "--show-current"]).trim(), "side");
    }
}
