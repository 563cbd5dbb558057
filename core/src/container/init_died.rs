//! Whether a container's init died with a criu that was lost while it held the container. A
//! task whose criu is killed (the operation timeout, a cancellation) while criu's parasite code
//! runs in it cannot go back to its own code and dies; when that task is the container's init,
//! the whole container (its pid namespace) goes with it. The error then says so, instead of
//! only that the tree's state is unknown.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// How long the init gets to be seen dead: a task left by its dead criu mid-parasite is
/// already exiting when ckpt gets criu's status (measured here: dying at once, a zombie
/// 20 ms later).
const WAIT: Duration = Duration::from_millis(100);

/// The container's init, held from before the dump by a pidfd, so its pid cannot name another
/// process later.
pub struct Held {
    fd: OwnedFd,
    pid: i32,
}

/// What became of the init after criu was lost.
#[derive(Debug, PartialEq, Eq)]
pub enum Fate {
    /// It runs on, or nothing shows otherwise.
    Unknown,
    /// It has exited: the container is gone.
    Died,
    /// It is frozen (a paused container) with its program counter inside CRIU's parasite code
    /// (the memfd CRIU maps, named `CRIUMFD`): it cannot go back to its own code and dies once
    /// the container is resumed. A mapping alone says nothing: a criu killed before it ran the
    /// parasite leaves the mapping and a task that runs on.
    DiesWhenThawed,
}

/// A pidfd on `pid`, taken before the dump; None when it cannot be opened.
pub fn hold(pid: i32) -> Option<Held> {
    Some(Held {
        fd: crate::sweep::pidfd_open(pid)?,
        pid,
    })
}

/// The held init's fate, waiting up to `WAIT` for it to exit.
pub fn fate(init: &Held) -> Fate {
    let mut p = [nix::poll::PollFd::new(
        init.fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = u16::try_from(WAIT.as_millis()).unwrap_or(u16::MAX);
    if matches!(nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms)), Ok(n) if n > 0) {
        return Fate::Died;
    }
    // The pidfd still names the init (it has not exited), so its /proc entry is its own.
    if crate::frozen::is_frozen(init.pid) && in_parasite(init.pid) {
        return Fate::DiesWhenThawed;
    }
    Fate::Unknown
}

/// Whether `pid`'s user-space program counter lies in a `CRIUMFD` mapping.
fn in_parasite(pid: i32) -> bool {
    let Some(pc) = crate::parasite::program_counter(pid) else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|m| {
        crate::parasite::criumfd_ranges(&m)
            .into_iter()
            .any(|(a, b)| (a..b).contains(&pc))
    })
}
