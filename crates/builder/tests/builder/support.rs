//! Shared helpers: source repositories pushed to bare remotes, requests, and image reading.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use vupdate_builder::{BuildLog, Builder, BuilderOptions, DeveloperRequest, MemoryLog};
use vupdate_core::log::Level;
use vupdate_state::model::{DeveloperBuild, GitRepository};
use vupdate_test_support::{GitRepo, MAIN, Person};

/// A source repository: a work tree to commit in and the bare remote the builder clones.
pub struct Source {
    /// Where commits are made.
    pub work: GitRepo,
    /// The remote the builder clones from and pushes tags to.
    pub remote: GitRepo,
}

impl Source {
    /// A repository holding `files` (path, content, executable?) in one commit, pushed.
    pub fn new(files: &[(&str, &str, bool)]) -> Source {
        let remote = GitRepo::init_bare();
        let work = GitRepo::init();
        let source = Source { work, remote };
        source.commit(files, "first");
        source.work.add_remote("origin", &source.remote);
        source.work.push("origin", MAIN);
        source
    }

    /// Commits `files` (and pushes when the remote is set up); returns the commit id.
    pub fn commit(&self, files: &[(&str, &str, bool)], message: &str) -> String {
        for (path, content, executable) in files {
            self.work.write(path, content);
            if *executable {
                chmod(&self.work.path().join(path), 0o755);
            }
        }
        let id = self.work.commit(message, &Person::alice());
        if self.work.git(&["remote"]).contains("origin") {
            self.work.push("origin", MAIN);
        }
        id
    }

    /// The URL the builder is given.
    pub fn url(&self) -> String {
        self.remote.path().to_string_lossy().into_owned()
    }

    /// The repository as build settings name it.
    pub fn repository(&self, name: &str) -> GitRepository {
        GitRepository {
            name: name.to_owned(),
            url: self.url(),
            branch: MAIN.to_owned(),
            clone_submodules: true,
            sub_directory: None,
        }
    }

    /// The commit a tag names in the remote, if the remote has the tag.
    pub fn remote_tag(&self, tag: &str) -> Option<String> {
        let output = self.remote.run(
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/tags/{tag}^{{commit}}"),
            ],
            &[],
        );
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// Sets a file's mode.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A builder in a fresh temp dir, with a short kill grace so cancel tests stay quick.
pub fn builder() -> (tempfile::TempDir, Builder) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = BuilderOptions {
        kill_grace: std::time::Duration::from_millis(300),
        ..BuilderOptions::default()
    };
    let builder = Builder::with_options(dir.path().join("work"), options);
    (dir, builder)
}

/// A developer build request for `service` at `version` from `sources`.
pub fn request(service: &str, version: &str, sources: Vec<GitRepository>) -> DeveloperRequest {
    DeveloperRequest {
        service: service.parse().expect("service name"),
        version: version.parse().expect("developer version"),
        settings: DeveloperBuild {
            sources,
            ..DeveloperBuild::default()
        },
        private_files: None,
    }
}

/// A log kept in memory, shared with the build.
pub fn memory_log() -> (Arc<MemoryLog>, Arc<dyn BuildLog>) {
    let log = Arc::new(MemoryLog::new());
    let shared: Arc<dyn BuildLog> = log.clone();
    (log, shared)
}

/// Whether the log has a line with `unit` whose message contains `text`.
pub fn logged(log: &MemoryLog, level: Level, unit: &str, text: &str) -> bool {
    log.lines()
        .iter()
        .any(|(l, u, message)| *l == level && u == unit && message.contains(text))
}

/// A file of an image: its unix permission bits and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Permission bits (`0o755`).
    pub mode: u32,
    /// The bytes.
    pub content: Vec<u8>,
}

impl Entry {
    /// A text file with `mode`.
    pub fn text(mode: u32, content: &str) -> Entry {
        Entry {
            mode,
            content: content.as_bytes().to_vec(),
        }
    }
}

/// The files of a zip (directories left out), read with the zip crate directly.
pub fn read_zip(path: &Path) -> BTreeMap<String, Entry> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut archive = zip::ZipArchive::new(file).expect("a readable zip");
    let mut files = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).expect("entry");
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().expect("a UTF-8 name").into_owned();
        let mode = entry.unix_mode().expect("a unix mode") & 0o777;
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("read entry");
        files.insert(name, Entry { mode, content });
    }
    files
}

/// Shows an image's files as text, for failure messages.
pub fn show(files: &BTreeMap<String, Entry>) -> String {
    files
        .iter()
        .map(|(path, entry)| {
            format!(
                "{path} ({:o}):\n{}",
                entry.mode,
                String::from_utf8_lossy(&entry.content)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// No zip (final or partial) is left in `directory`.
pub fn no_zips(directory: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return true;
    };
    entries.filter_map(Result::ok).all(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        !name.ends_with(".zip") && !name.ends_with(".zip.partial")
    })
}
