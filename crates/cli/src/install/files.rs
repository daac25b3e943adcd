//! Writing an installation's files under a root (`/`, or a `--root` DESTDIR), all or
//! nothing: each file is written to a temporary name beside it and renamed into place;
//! a file that is already as wanted is left alone (so a second install changes nothing),
//! and when a step fails, [`Changes::undo`] puts back what the earlier steps replaced and
//! removes what they created.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// `text` as a YAML string, for the configs an install writes (JSON's quoting is YAML's
/// double-quoted style).
pub fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// The root an installation is written under.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// The root at `path` (`/` for the running system).
    pub fn new(path: PathBuf) -> Root {
        Root(path)
    }

    /// The root's own path.
    #[cfg(feature = "distribution")]
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Whether this is the running system (users, systemd and ownership apply).
    pub fn is_system(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// Where the absolute `path` of the installed system is under this root.
    pub fn at(&self, path: &Path) -> PathBuf {
        self.0.join(path.strip_prefix("/").unwrap_or(path))
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did not exist.
    Created,
    /// It existed with other content or mode.
    Changed,
    /// It was already as wanted.
    Unchanged,
}

impl Outcome {
    /// The word printed for it.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Changed => "changed",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// What an installation changed so far, to undo on failure.
#[derive(Debug, Default)]
pub struct Changes {
    /// Files replaced, with their earlier content and mode.
    replaced: Vec<(PathBuf, Vec<u8>, u32)>,
    /// Files and directories created, in order.
    created: Vec<PathBuf>,
}

impl Changes {
    /// Makes `dir` and its missing parents with `mode`, remembering what it created.
    pub fn dir(&mut self, dir: &Path, mode: u32) -> anyhow::Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(path) = at {
            if path.exists() {
                break;
            }
            missing.push(path.to_path_buf());
            at = path.parent();
        }
        for path in missing.into_iter().rev() {
            fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            self.created.push(path);
        }
        Ok(())
    }

    /// Puts `content` at `path` with `mode` (and `owner` when given), unless it is already so.
    pub fn file(
        &mut self,
        path: &Path,
        content: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> anyhow::Result<Outcome> {
        let before = match fs::read(path) {
            Ok(bytes) => {
                let old_mode = fs::metadata(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .permissions()
                    .mode()
                    & 0o7777;
                if bytes == content && old_mode == mode {
                    return Ok(Outcome::Unchanged);
                }
                Some((bytes, old_mode))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        if let Some(parent) = path.parent() {
            self.dir(parent, 0o755)?;
        }
        write_atomically(path, content, mode, owner)?;
        Ok(match before {
            Some((bytes, old_mode)) => {
                self.replaced.push((path.to_path_buf(), bytes, old_mode));
                Outcome::Changed
            }
            None => {
                self.created.push(path.to_path_buf());
                Outcome::Created
            }
        })
    }

    /// Counts `path`, made by another writer during this installation, as created: an
    /// undo removes it.
    #[cfg(feature = "distribution")]
    pub fn adopt(&mut self, path: &Path) {
        self.created.push(path.to_path_buf());
    }

    /// Whether anything was written.
    pub fn any(&self) -> bool {
        !self.replaced.is_empty() || !self.created.is_empty()
    }

    /// Puts back what was replaced and removes what was created (newest first).
    pub fn undo(self) {
        for (path, bytes, mode) in self.replaced.into_iter().rev() {
            if let Err(error) = write_atomically(&path, &bytes, mode, None) {
                eprintln!("warning: cannot put back {}: {error:#}", path.display());
            }
        }
        for path in self.created.into_iter().rev() {
            let removed = if path.is_dir() {
                fs::remove_dir(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(error) = removed {
                eprintln!("warning: cannot remove {}: {error}", path.display());
            }
        }
    }
}

fn write_atomically(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let temporary = path.with_file_name(format!(".{}.vupdate-new", name.to_string_lossy()));
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        // The mode given to `open` is masked by the umask; this one is not.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.write_all(content)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_already_as_wanted_is_left_alone_and_undo_restores_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Root::new(dir.path().to_path_buf());
        let kept = root.at(Path::new("/etc/vupdate/kept"));
        let replaced = root.at(Path::new("/etc/vupdate/replaced"));
        let mut first = Changes::default();
        assert_eq!(
            first.file(&kept, b"a", 0o600, None).expect("write"),
            Outcome::Created
        );
        first.file(&replaced, b"old", 0o644, None).expect("write");
        let mut second = Changes::default();
        assert_eq!(
            second.file(&kept, b"a", 0o600, None).expect("write"),
            Outcome::Unchanged
        );
        assert_eq!(
            second.file(&replaced, b"new", 0o644, None).expect("write"),
            Outcome::Changed
        );
        let created = root.at(Path::new("/usr/local/bin/new"));
        second.file(&created, b"x", 0o755, None).expect("write");
        second.undo();
        assert_eq!(fs::read(&replaced).expect("read"), b"old");
        assert!(!created.exists() && !root.at(Path::new("/usr")).exists());
        let mode = fs::metadata(&kept).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
