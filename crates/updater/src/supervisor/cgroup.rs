//! A cgroup per service, where the machine gives a writable one: the exact set of its
//! processes, whatever they fork or `setsid`, and a kill that misses none of them.
//!
//! The unified (v2) hierarchy is preferred (`cgroup.kill` kills all at once); otherwise a
//! v1 `pids` or `freezer` hierarchy, killed by reading `cgroup.procs` until it is empty.
//! A service's cgroup is `<mount>/<updater's own cgroup>/vupdate/<name>`, so a
//! delegated subtree (systemd `Delegate=yes`) works; the name is the instance and a hash
//! of its directory, so two updaters (or tests) with the same service names do not share.
//! Memory is still measured from `/proc` (resident pages, not the page cache a v2
//! `memory.current` would count), so the cgroup only decides membership and killing. Anything that fails here falls back to
//! the process group and tree walking; the caller logs why.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

/// Whether services are put in cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupMode {
    /// Use a writable cgroup hierarchy when the machine has one, else fall back.
    #[default]
    Auto,
    /// Never: process group, child subreaper and tree walking only.
    Off,
}

/// Which cgroup hierarchy a [`Cgroup`] lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// The unified hierarchy (`cgroup2`).
    V2,
    /// A legacy hierarchy (`pids` or `freezer` controller).
    V1,
}

/// One service's cgroup directory.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    version: CgroupVersion,
}

impl Cgroup {
    /// Creates (or reuses) the cgroup `name`, or says why none can be had here.
    pub fn create(name: &str) -> io::Result<Cgroup> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        let own = fs::read_to_string("/proc/self/cgroup")?;
        let mut last_error =
            io::Error::new(io::ErrorKind::NotFound, "no cgroup hierarchy is mounted");
        for (base, version) in candidate_bases(&mountinfo, &own) {
            let path = base.join("vupdate").join(name);
            match fs::create_dir_all(&path).and_then(|()| check_writable(&path)) {
                Ok(()) => return Ok(Cgroup { path, version }),
                Err(error) => {
                    last_error =
                        io::Error::new(error.kind(), format!("{}: {error}", path.display()))
                }
            }
        }
        Err(last_error)
    }

    /// The cgroup a run handed over from the previous updater process lives in.
    pub(crate) fn existing(path: PathBuf, version: CgroupVersion) -> Cgroup {
        Cgroup { path, version }
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hierarchy it lives in.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Moves process `pid` (and so its future children) into the cgroup.
    pub fn add(&self, pid: u32) -> io::Result<()> {
        fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// The processes in the cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.path.join("cgroup.procs"))
            .map(|text| {
                text.lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends SIGKILL to every process in the cgroup.
    pub fn kill_all(&self) {
        let kill_file = self.path.join("cgroup.kill");
        if self.version == CgroupVersion::V2 && fs::write(&kill_file, "1").is_ok() {
            return;
        }
        for pid in self.pids() {
            vupdate_process::signal(pid, Signal::SIGKILL);
        }
    }

    /// Removes the cgroup directory; it fails while processes remain.
    pub fn remove(&self) -> io::Result<()> {
        fs::remove_dir(&self.path)
    }
}

/// The cgroup name of the service whose directory is `root`: `<instance>-<hash>`.
pub(crate) fn cgroup_name(instance: &str, root: &Path) -> String {
    // FNV-1a: stable across builds and runs, unlike the std hasher.
    let hash = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{instance}-{:08x}", hash as u32)
}

fn check_writable(path: &Path) -> io::Result<()> {
    let procs = path.join("cgroup.procs");
    fs::OpenOptions::new().write(true).open(&procs).map(drop)
}

/// The directories where service cgroups may go, best first: the unified hierarchy, then
/// the v1 `pids` and `freezer` hierarchies, each below the updater's own cgroup.
pub(crate) fn candidate_bases(mountinfo: &str, own_cgroups: &str) -> Vec<(PathBuf, CgroupVersion)> {
    let mut bases = Vec::new();
    let own_path = |wanted: &dyn Fn(&str, &str) -> bool| {
        own_cgroups.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            wanted(id, controllers).then(|| path.trim_start_matches('/').to_owned())
        })
    };
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let after: Vec<&str> = after.split(' ').collect();
        let (Some(mount_point), Some(fs_type)) = (fields.get(4), after.first()) else {
            continue;
        };
        let options = after.get(2).copied().unwrap_or("");
        if *fs_type == "cgroup2" {
            if let Some(own) = own_path(&|id, controllers| id == "0" && controllers.is_empty()) {
                bases.insert(0, (Path::new(mount_point).join(own), CgroupVersion::V2));
            }
        } else if *fs_type == "cgroup" {
            for controller in ["pids", "freezer"] {
                if options.split(',').any(|option| option == controller)
                    && let Some(own) =
                        own_path(&|_, controllers| controllers.split(',').any(|c| c == controller))
                {
                    bases.push((Path::new(mount_point).join(own), CgroupVersion::V1));
                }
            }
        }
    }
    bases
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer";

    #[test]
    fn prefers_the_unified_hierarchy_below_the_own_cgroup() {
        let own = "8:pids:/system.slice/vupdate.service\n6:freezer:/\n4:memory:/x\n0::/system.slice/vupdate.service\n";
        let bases = candidate_bases(HYBRID_MOUNTINFO, own);
        assert_eq!(
            bases,
            vec![
                (
                    PathBuf::from("/sys/fs/cgroup/unified/system.slice/vupdate.service"),
                    CgroupVersion::V2
                ),
                (
                    PathBuf::from("/sys/fs/cgroup/pids/system.slice/vupdate.service"),
                    CgroupVersion::V1
                ),
                (PathBuf::from("/sys/fs/cgroup/freezer/"), CgroupVersion::V1),
            ]
        );
    }

    #[test]
    fn finds_nothing_without_cgroup_mounts() {
        let mountinfo = "22 1 8:1 / / rw - ext4 /dev/sda1 rw";
        assert!(candidate_bases(mountinfo, "0::/\n").is_empty());
    }
}
