//! Starting a program this process may just have written.

/// How many times a spawn refused with "Text file busy" is tried.
const BUSY_ATTEMPTS: u32 = 10;
/// The pause between those tries.
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// `command.spawn()`, tried again a few times on `ETXTBSY`: a program this process just
/// wrote (an updater's install, a distribution's self-update) stays open for writing in
/// any child another task forked meanwhile, until that child execs (its copy of the
/// descriptor closes then) — microseconds, but a start refused for it would count as the
/// new version failing.
pub fn spawn_when_not_busy(
    command: &mut tokio::process::Command,
) -> std::io::Result<tokio::process::Child> {
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Err(error)
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && attempt < BUSY_ATTEMPTS =>
            {
                attempt += 1;
                std::thread::sleep(BUSY_PAUSE);
            }
            spawned => return spawned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_program_busy_for_a_moment_starts_and_one_busy_for_good_says_so() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let program = dir.path().join("server");
        std::fs::write(&program, "#!/bin/sh\nexit 0\n").expect("write");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let open_for_writing = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&program)
                .expect("open")
        };
        let mut command = tokio::process::Command::new(&program);

        // Held open for writing (as a child forked while it was written holds it) and let go
        // a moment later.
        let writer = open_for_writing();
        let release = std::thread::spawn(move || {
            std::thread::sleep(BUSY_PAUSE * 3);
            drop(writer);
        });
        let mut child = spawn_when_not_busy(&mut command).expect("started once let go");
        assert!(child.wait().await.expect("wait").success());
        release.join().expect("released");

        let _writer = open_for_writing();
        let error = spawn_when_not_busy(&mut command).expect_err("busy for good");
        assert_eq!(error.kind(), std::io::ErrorKind::ExecutableFileBusy);
    }
}
