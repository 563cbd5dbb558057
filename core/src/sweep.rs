//! Taking process trees down whole.
//!
//! Every process found is held by a pidfd from the moment it is found, sent SIGSTOP, and
//! read for children only once it has stopped: a signal is delivered asynchronously, and a
//! process still running could fork a child after its children were read. Once every process
//! of the trees is stopped, so none can fork or exit and leave its children to init, all are
//! killed together; those that are this process's children are then reaped.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long the killed processes get to exit before ckpt stops watching them.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// How long the processes just sent SIGSTOP get to stop. A process stops when it next
/// leaves the kernel; one in an uninterruptible wait longer than this is read as it is.
const STOP_WAIT: Duration = Duration::from_secs(2);

pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a fresh descriptor (close-on-exec by definition) that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A process of a tree: by pidfd, or by pid where pidfds are missing (valgrind, old
/// kernels); a stopped process cannot exit and free its pid, so the pid stays its own.
pub(crate) type Held = Option<OwnedFd>;

/// Holds `pid`: None when there is no such process.
pub(crate) fn hold(pid: i32) -> Option<Held> {
    match pidfd_open(pid) {
        Some(fd) => Some(Some(fd)),
        None if nix::errno::Errno::last() == nix::errno::Errno::ESRCH => None,
        None => Some(None),
    }
}

/// Sends `sig`; true when the process still held its pid (running, stopped or a zombie).
fn signal(pid: i32, held: &Held, sig: i32) -> bool {
    let rc = match held {
        // SAFETY: pidfd_send_signal on a pidfd we own, without siginfo or flags.
        Some(fd) => unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        },
        // SAFETY: plain kill(2); see `Held` for why the pid is still this process's.
        None => libc::c_long::from(unsafe { libc::kill(pid, sig) }),
    };
    rc == 0
}

/// Waits, up to `bound`, until every process of `pids` has stopped; true when they have.
fn wait_halted(pids: &[i32], bound: Duration) -> bool {
    let end = Instant::now() + bound;
    let mut step = Duration::from_micros(100);
    loop {
        if pids.iter().all(|&p| halted(p)) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(step);
        step = (step * 2).min(Duration::from_millis(10));
    }
}

/// Stops `pid` (held by `held`) for a look at what it is doing, waiting up to `STOP_WAIT`;
/// true once it has stopped. `resume` lets it go on.
pub(crate) fn pause(pid: i32, held: &Held) -> bool {
    signal(pid, held, libc::SIGSTOP) && wait_halted(&[pid], STOP_WAIT)
}

/// Lets a process `pause` stopped go on.
pub(crate) fn resume(pid: i32, held: &Held) {
    signal(pid, held, libc::SIGCONT);
}

/// The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The parent of `pid`, when it exists.
fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The time `pid` started, in clock ticks after boot.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// Whether `pid` no longer runs: stopped, in a trace stop, a zombie, or gone.
fn halted(pid: i32) -> bool {
    let state = stat_fields(pid).and_then(|f| f.first().and_then(|s| s.chars().next()));
    // A task of a frozen v1 freezer cgroup cannot stop, fork or exit until it thaws.
    matches!(state, None | Some('T' | 't' | 'Z' | 'X' | 'x'))
        || (state == Some('D') && crate::frozen::is_frozen(pid))
}

/// The children of every thread of `pid`.
pub(crate) fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return vec![];
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Processes being taken down together.
#[derive(Default)]
pub(crate) struct Sweep {
    held: BTreeMap<i32, Held>,
}

impl Sweep {
    pub fn new() -> Sweep {
        Sweep::default()
    }

    /// Stops `pid` (held by `held`) and takes it into the sweep, with everything below it
    /// once `stop_descendants` runs.
    pub fn add(&mut self, pid: i32, held: Held) {
        if pid > 0 && !self.held.contains_key(&pid) {
            signal(pid, &held, libc::SIGSTOP);
            self.held.insert(pid, held);
        }
    }

    /// Gives back what holds `pid`, which stays in the sweep only by number.
    pub fn take(&mut self, pid: i32) -> Held {
        self.held.get_mut(&pid).and_then(Option::take)
    }

    /// Waits, up to `STOP_WAIT`, until every process of `pids` has stopped.
    pub fn wait_stopped(&self, pids: &[i32]) {
        wait_halted(pids, STOP_WAIT);
    }

    /// Finds and stops every descendant of the processes taken so far: each is stopped, and
    /// its children are read only once it has, until a pass finds nobody new.
    pub fn stop_descendants(&mut self) {
        let mut fresh: Vec<i32> = self.held.keys().copied().collect();
        for _ in 0..1000 {
            if fresh.is_empty() {
                break;
            }
            self.wait_stopped(&fresh);
            let mut next = vec![];
            for p in fresh {
                let kids = children(p);
                // A process that still holds its pid after the read was the one read: a
                // pid is not reused while its process (stopped, or a zombie) holds it.
                if !self.held.get(&p).is_some_and(|h| signal(p, h, 0)) {
                    continue;
                }
                for c in kids {
                    if self.held.contains_key(&c) {
                        continue;
                    }
                    let Some(h) = hold(c) else { continue };
                    // The pidfd names p's child only if that child still holds the pid
                    // now: a child that exited and was reaped at once (SIGCHLD ignored)
                    // may have given its pid to a stranger.
                    if parent(c) != Some(p) || !signal(c, &h, 0) {
                        continue;
                    }
                    self.add(c, h);
                    next.push(c);
                }
            }
            fresh = next;
        }
    }

    /// SIGKILLs every process taken; one in a frozen v1 freezer cgroup is then moved out of
    /// it, alone, so that it dies (see `frozen`).
    pub fn kill(&self) {
        let release = crate::frozen::Release::default();
        for (pid, h) in &self.held {
            if signal(*pid, h, libc::SIGKILL) {
                release.pid(*pid);
            }
        }
    }

    /// Reaps `pid`, a child of this process, waiting for it to exit.
    pub fn reap_child(&self, pid: i32) {
        let fd = self.held.get(&pid).and_then(|h| h.as_ref());
        loop {
            // SAFETY: an all-zero siginfo_t is valid storage for waitid to fill.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid on our own child, by pidfd or by pid, writing only into `info`.
            let rc = unsafe {
                match fd {
                    Some(fd) => libc::waitid(
                        libc::P_PIDFD,
                        fd.as_raw_fd() as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::__WALL,
                    ),
                    None => libc::waitid(
                        libc::P_PID,
                        pid as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::__WALL,
                    ),
                }
            };
            if rc == 0 || nix::errno::Errno::last() != nix::errno::Errno::EINTR {
                return;
            }
        }
    }

    /// Waits (bounded) for every process taken but those of `skip` to exit, and reaps each
    /// that became this process's child (it is a subreaper); the others are reaped by their
    /// parents.
    pub fn reap_rest(&self, skip: &[i32]) {
        let end = Instant::now() + EXIT_WAIT;
        for (_, h) in self.held.iter().filter(|(p, _)| !skip.contains(p)) {
            if let Some(fd) = h {
                wait_exit(fd, end);
                try_reap(fd);
            }
        }
    }
}

fn wait_exit(fd: &OwnedFd, end: Instant) {
    let left = end.saturating_duration_since(Instant::now());
    let ms = left.as_millis().min(i32::MAX as u128) as i32;
    let mut p = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(
        &mut p,
        nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::ZERO),
    );
}

/// Reaps the process when it became our child and has exited; ECHILD otherwise, which is fine.
fn try_reap(fd: &OwnedFd) {
    // SAFETY: an all-zero siginfo_t is valid storage for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid by pidfd, without blocking, writing only into `info`.
    unsafe {
        libc::waitid(
            libc::P_PIDFD,
            fd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::__WALL,
        )
    };
}
