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

/// Holds the init by pidfd before the dump, so its pid cannot name another process later.
pub fn hold(pid: i32) -> Option<OwnedFd> {
    crate::sweep::pidfd_open(pid)
}

/// Whether the held init has exited, waiting up to `WAIT`.
pub fn died(init: &OwnedFd) -> bool {
    let mut p = [nix::poll::PollFd::new(
        init.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = u16::try_from(WAIT.as_millis()).unwrap_or(u16::MAX);
    matches!(nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms)), Ok(n) if n > 0)
}
