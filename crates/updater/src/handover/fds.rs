//! Pipe read ends across `execve`, without `unsafe`: a descriptor is inherited by clearing
//! its close-on-exec flag (`fcntl`), and taken back after `execve` by opening
//! `/proc/self/fd/N` (a new descriptor on the same pipe, with close-on-exec set) and
//! closing `N`. Every descriptor number is checked against the pipe's inode first, so a
//! number that now names something else is never taken.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

/// The inode of the pipe `fd` is an end of, from its `/proc/self/fd` link (`pipe:[N]`).
pub(crate) fn pipe_inode(fd: RawFd) -> io::Result<u64> {
    let link = fs::read_link(format!("/proc/self/fd/{fd}"))?;
    let text = link.to_string_lossy();
    text.strip_prefix("pipe:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("descriptor {fd} is `{text}`, not a pipe"),
            )
        })
}

/// Sets whether `fd` is inherited by the program an `execve` runs.
pub(crate) fn set_inherited(fd: impl AsFd, inherited: bool) -> io::Result<()> {
    let flags = if inherited {
        FdFlag::empty()
    } else {
        FdFlag::FD_CLOEXEC
    };
    fcntl(fd, FcntlArg::F_SETFD(flags))?;
    Ok(())
}

/// A new read end (close-on-exec) of the pipe with `inode` that descriptor `fd` is an end
/// of; refused when `fd` is not that pipe.
pub(crate) fn reopen(fd: RawFd, inode: u64) -> io::Result<OwnedFd> {
    let found = pipe_inode(fd)?;
    if found != inode {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is pipe {found}, not pipe {inode}"),
        ));
    }
    // Non-blocking, so the open never waits for a writer (the service may be gone).
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(format!("/proc/self/fd/{fd}"))?;
    Ok(OwnedFd::from(file))
}

/// Takes the inherited descriptor `fd` of pipe `inode`: a new close-on-exec read end, and
/// `fd` closed, so programs this process starts never inherit it.
pub(crate) fn take_inherited(fd: RawFd, inode: u64) -> io::Result<OwnedFd> {
    let owned = reopen(fd, inode)?;
    nix::unistd::close(fd)?;
    Ok(owned)
}

/// A descriptor of this process on the pipe `inode`, if it holds one.
pub(crate) fn find_pipe(inode: u64) -> Option<RawFd> {
    fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<RawFd>().ok())
        .find(|fd| pipe_inode(*fd).is_ok_and(|found| found == inode))
}

/// The descriptor number of `fd`, as the next process will see it.
pub(crate) fn number(fd: &OwnedFd) -> i32 {
    fd.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_pipe_is_reopened_by_inode_and_its_buffer_is_kept() {
        let (reader, writer) = std::io::pipe().expect("pipe");
        let (reader, mut writer): (OwnedFd, _) = (reader.into(), writer);
        writer.write_all(b"waiting in the pipe\n").expect("write");
        let raw = reader.as_raw_fd();
        let inode = pipe_inode(raw).expect("inode");
        // Both ends of a pipe name its inode.
        let found = find_pipe(inode).expect("this process holds the pipe");
        assert!(found == raw || found == writer.as_raw_fd(), "{found}");
        // Another number, or another pipe, is refused.
        let (other, _keep) = std::io::pipe().expect("pipe");
        let other: OwnedFd = other.into();
        assert!(reopen(other.as_raw_fd(), inode).is_err());
        set_inherited(&reader, true).expect("clear close-on-exec");
        let flags = fcntl(&reader, FcntlArg::F_GETFD).expect("flags");
        assert_eq!(flags & FdFlag::FD_CLOEXEC.bits(), 0);
        let taken = reopen(raw, inode).expect("reopen");
        drop(reader);
        let flags = fcntl(&taken, FcntlArg::F_GETFD).expect("flags");
        assert_ne!(
            flags & FdFlag::FD_CLOEXEC.bits(),
            0,
            "the new end is close-on-exec"
        );
        drop(writer);
        let mut text = String::new();
        std::fs::File::from(taken)
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "waiting in the pipe\n");
    }
}
