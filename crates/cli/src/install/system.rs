//! The running system's side of an installation: whether systemd runs it, the system
//! user, and `systemctl`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};

use super::files::Root;
use crate::exit::InvalidInput;

/// Refuses an install on the running system by a user other than root, or (unless
/// `no_start`) on a machine without systemd, saying how `run` starts it otherwise.
pub fn check_can_install(root: &Root, no_start: bool, run: &str) -> anyhow::Result<()> {
    if !root.is_system() {
        return Ok(());
    }
    if !is_root() {
        bail!(InvalidInput::new(
            "run the install as root (sudo), or give --root DIR to write into a directory"
        ));
    }
    if !no_start && !systemd_runs() {
        bail!(InvalidInput::new(format!(
            "this machine does not run systemd (no /run/systemd/system): nothing was installed; \
             give --no-start to write the files anyway and start `{run}` by other means"
        )));
    }
    Ok(())
}

/// The bytes of this program, which an install copies.
pub fn this_program() -> anyhow::Result<Vec<u8>> {
    std::fs::read(std::env::current_exe().context("cannot find this program's own executable")?)
        .context("cannot read this program's own executable")
}

/// On the running system, the uid and gid of the system user `user` (made, with `home`,
/// when missing); `None` under another root, where no user is made.
pub fn owner(root: &Root, user: &str, home: &Path) -> anyhow::Result<Option<(u32, u32)>> {
    if !root.is_system() {
        return Ok(None);
    }
    if ensure_user(user, home)? {
        println!("created the system user `{user}`");
    }
    user_ids(user)
}

/// Enables `unit` and restarts it when the installation `changed` anything, else
/// starts it (a no-op when it runs); prints which.
pub fn enable_and_start(unit: &str, changed: bool) -> anyhow::Result<()> {
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", unit])?;
    if changed {
        systemctl(&["restart", unit])?;
        println!("started {unit}; follow it with: journalctl -u {unit} -f");
    } else {
        systemctl(&["start", unit])?;
        println!("nothing changed; {unit} is running");
    }
    Ok(())
}

/// Whether systemd is this machine's init (what `sd_booted(3)` checks).
pub fn systemd_runs() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .is_ok_and(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
}

/// The uid and gid of `user`, from `/etc/passwd`.
pub fn user_ids(user: &str) -> anyhow::Result<Option<(u32, u32)>> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    Ok(passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(user)).then_some(())?;
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    }))
}

/// Creates the system user `user` (with its own group, no login, `home` as its home)
/// unless it exists; true when it was created.
pub fn ensure_user(user: &str, home: &Path) -> anyhow::Result<bool> {
    if user_ids(user)?.is_some() {
        return Ok(false);
    }
    run(Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home", "--shell"])
        .arg(if Path::new("/usr/sbin/nologin").exists() {
            "/usr/sbin/nologin"
        } else {
            "/bin/false"
        })
        .arg("--home-dir")
        .arg(home)
        .arg(user))?;
    Ok(true)
}

/// Removes the system user `user` (and its group).
#[cfg(feature = "updater")]
pub fn remove_user(user: &str) -> anyhow::Result<()> {
    run(Command::new("userdel").arg(user))
}

/// `systemctl ARGS...`.
pub fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("systemctl").args(args))
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}").replace('"', "");
    let output = command
        .output()
        .with_context(|| format!("cannot run `{shown}`"))?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
