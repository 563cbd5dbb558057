//! Undoing CRIU's iptables network lock in a container's network namespace after a criu that
//! died (or was killed: a timeout, a cancellation) between locking and unlocking. CRIU locks
//! the namespace of a tree that has its own (a `CRIU` chain that drops every packet without
//! its mark, jumped to from INPUT and OUTPUT) and removes it itself when a dump ends, also a
//! failed one; a criu that is gone removes nothing, and the container ran on with its network
//! dead. ckpt then removes the chain as CRIU would: for every dump, a container's or a process
//! tree's (`ops::netunlock`).

use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What CRIU feeds `iptables-restore --noflush` to unlock (criu/net.c), for IPv4 and IPv6.
const UNLOCK: &str =
    "*filter\n:CRIU - [0:0]\n-D INPUT -j CRIU\n-D OUTPUT -j CRIU\n-X CRIU\nCOMMIT\n";

/// How long one `iptables-restore` may take (it waits up to 2 s for the xtables lock).
const BOUND: Duration = Duration::from_secs(3);

/// The first `name` in a directory of $PATH.
pub(super) fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.exists())
}

/// Removes CRIU's lock from the network namespace of `pid`, if it is there; true when a lock
/// was removed. Does nothing when `pid` shares ckpt's own network namespace (CRIU locks only
/// a namespace of the tree's own), and never touches ckpt's thread: the tools run from a
/// thread of their own that joined the container's namespace.
pub fn undo_iptables(pid: i32) -> bool {
    let Ok(ns) = std::fs::File::open(format!("/proc/{pid}/ns/net")) else {
        return false;
    };
    let ours = std::fs::metadata("/proc/self/ns/net").map(|m| m.ino()).ok();
    if ns.metadata().map(|m| m.ino()).ok() == ours {
        return false;
    }
    let tools: Vec<PathBuf> = ["iptables-restore", "ip6tables-restore"]
        .iter()
        .filter_map(|t| on_path(t))
        .collect();
    if tools.is_empty() {
        return false;
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            // Only this thread enters the container's network namespace; what it starts
            // is born there.
            // SAFETY: setns on a descriptor this function owns; it changes this thread's
            // network namespace only, and the thread ends after the tools ran.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return false;
            }
            let mut removed = false;
            for t in &tools {
                removed |= run(t);
            }
            removed
        })
        .join()
        .unwrap_or(false)
    })
}

/// Runs `tool -w 2 --noflush /dev/fd/3` with the unlock rules on descriptor 3; true when it
/// succeeded (the chain was there: without it, `-D` fails and nothing changes).
fn run(tool: &Path) -> bool {
    let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return false;
    };
    // The rules fit in the pipe, so this never waits.
    if std::fs::File::from(w).write_all(UNLOCK.as_bytes()).is_err() {
        return false;
    }
    let args: [&OsStr; 5] = [
        tool.as_os_str(),
        OsStr::new("-w"),
        OsStr::new("2"),
        OsStr::new("--noflush"),
        OsStr::new("/dev/fd/3"),
    ];
    let Ok(child) = crate::spawn::spawn(
        tool.as_os_str(),
        &args,
        &[r.as_fd()],
        crate::spawn::Stdio::Null,
    ) else {
        return false;
    };
    drop(r);
    let child = Pid::from_raw(child);
    let end = Instant::now() + BOUND;
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(WaitStatus::StillAlive) => {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = waitpid(child, None);
                return false;
            }
            Ok(WaitStatus::Exited(_, code)) => return code == 0,
            Err(nix::errno::Errno::EINTR) => {}
            // Killed by a signal, or reaped by the caller (SIGCHLD ignored): the outcome is
            // unknown, and the chain, if left, is reported by nothing worse than before.
            _ => return false,
        }
    }
}
