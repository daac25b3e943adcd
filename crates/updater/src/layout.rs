//! The directory of one service on the VM, `<workDirectory>/<service[-role]>/`:
//!
//! | path | holds |
//! | --- | --- |
//! | `current/` | the installed version, where it runs |
//! | `previous/` | the version before it, kept for rollback |
//! | `new/` | a version unpacked and being installed |
//! | `.new.partial/` | an unpack in progress (never read; removed at recovery) |
//! | `.trash/` | directories being deleted (renamed here first, so a deletion is atomic) |
//! | `images/<version>.zip` | downloaded images, kept until their install ends |
//! | `journal.json` | the install journal (see [`crate::install`]) |
//! | `faults/` | fault reports not yet uploaded |
//! | `log.history/<version>-<time>/` | the `writeLogs` files of versions that were replaced |
//! | `spool/` | log lines not yet uploaded |
//! | `.lock` | held by the updater that runs this service |
//!
//! Every version directory carries [`VERSION_FILE`] naming its version, written before
//! the directory gets its final name, so a directory's content is known from the
//! directory itself and never from a guess.

use std::path::{Path, PathBuf};

use vupdate_core::service::ServiceInstance;
use vupdate_core::version::ClientVersion;

/// The file in each version directory that names its version.
pub const VERSION_FILE: &str = ".vupdate-version";

/// The environment variable that marks every process the updater starts for a service,
/// so its processes are found again even when they left its process group or the updater
/// restarted.
pub const OWNER_ENV: &str = "VUPDATE_OWNER";

/// The paths of one service's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceDir {
    root: PathBuf,
    instance: ServiceInstance,
}

impl ServiceDir {
    /// The directory of `instance` under `work_dir` (which should be absolute, so the
    /// ownership marker is the same whatever the updater's working directory).
    pub fn new(work_dir: &Path, instance: ServiceInstance) -> Self {
        ServiceDir {
            root: work_dir.join(instance.to_string()),
            instance,
        }
    }

    /// The service and role.
    pub fn instance(&self) -> &ServiceInstance {
        &self.instance
    }

    /// `service[-role]`.
    pub fn name(&self) -> String {
        self.instance.to_string()
    }

    /// The service's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `current/`.
    pub fn current(&self) -> PathBuf {
        self.root.join("current")
    }

    /// `previous/`.
    pub fn previous(&self) -> PathBuf {
        self.root.join("previous")
    }

    /// `new/`.
    pub fn new_dir(&self) -> PathBuf {
        self.root.join("new")
    }

    /// `.new.partial/`.
    pub fn partial(&self) -> PathBuf {
        self.root.join(".new.partial")
    }

    /// `.trash/`.
    pub fn trash(&self) -> PathBuf {
        self.root.join(".trash")
    }

    /// `images/`.
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `images/<version>.zip`, where an image source puts the image of `version`.
    pub fn image(&self, version: &ClientVersion) -> PathBuf {
        self.images().join(format!("{version}.zip"))
    }

    /// `journal.json`.
    pub fn journal(&self) -> PathBuf {
        self.root.join("journal.json")
    }

    /// `faults/`.
    pub fn faults(&self) -> PathBuf {
        self.root.join("faults")
    }

    /// `log.history/`.
    pub fn log_history(&self) -> PathBuf {
        self.root.join("log.history")
    }

    /// `spool/`.
    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// `.lock`.
    pub fn lock(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// The marker value of the service's runs.
    pub fn run_owner(&self) -> String {
        self.root.display().to_string()
    }

    /// The marker value of its install and post-install commands.
    pub fn command_owner(&self) -> String {
        format!("{}#commands", self.root.display())
    }
}
