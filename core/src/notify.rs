//! CRIU's notifications ("action scripts" in RPC form): what the caller's callback receives.

use std::os::fd::BorrowedFd;

/// One notification from CRIU. `fd` is set only for notifications that carry a descriptor
/// (`orphan-pts-master`); it stays owned by ckpt and is valid only while the callback runs.
#[derive(Debug)]
pub struct Notification<'a> {
    /// The notification's name, one of the constants below (CRIU may add others).
    pub script: &'a str,
    /// The pid CRIU gave with it (the restored tree's root on `setup-namespaces` and
    /// `post-restore`), else 0.
    pub pid: i32,
    /// The descriptor that came with it (`orphan-pts-master`: the pty master).
    pub fd: Option<BorrowedFd<'a>>,
}

// The names CRIU uses, in the order a dump or restore sends them.
/// Dump: the tree is frozen, its memory not yet written.
pub const PRE_DUMP: &str = "pre-dump";
/// Dump: the images are written; CRIU is about to resume or kill the tree. ckpt's point of no
/// return: a timeout or cancel after it no longer kills criu.
pub const POST_DUMP: &str = "post-dump";
/// Dump and restore: CRIU locks the tree's network.
pub const NETWORK_LOCK: &str = "network-lock";
/// Dump and restore: CRIU unlocks the tree's network.
pub const NETWORK_UNLOCK: &str = "network-unlock";
/// Restore: before CRIU starts restoring.
pub const PRE_RESTORE: &str = "pre-restore";
/// Restore: the root's namespaces exist; `pid` is the root (runc configures the network here).
pub const SETUP_NAMESPACES: &str = "setup-namespaces";
/// Restore: after `setup-namespaces`.
pub const POST_SETUP_NAMESPACES: &str = "post-setup-namespaces";
/// Restore: the tree is restored and about to be resumed.
pub const PRE_RESUME: &str = "pre-resume";
/// Restore: the tree is restored; `pid` is its root.
pub const POST_RESTORE: &str = "post-restore";
/// Restore: the tree was resumed.
pub const POST_RESUME: &str = "post-resume";
/// Restore: the pty master of an orphaned terminal rides in `fd`.
pub const ORPHAN_PTS_MASTER: &str = "orphan-pts-master";
/// A lazy-pages dump's page server is listening (ckpt writes and closes the status fd here,
/// see [`Options::set_status_fd`](crate::Options::set_status_fd)).
pub const STATUS_READY: &str = "status-ready";
/// Dump: CRIU asks its client about external files.
pub const QUERY_EXT_FILES: &str = "query-ext-files";

/// Device and inode of what `fd` names, None when it is not open.
#[doc(hidden)] // for the C boundaries
pub fn file_id(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u64, u64)> {
    nix::sys::stat::fstat(fd)
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

/// Closes the descriptors a notification carried, each only when its number still names the
/// file it named before the callback ran (`ids`, from `file_id`). A callback that closed one
/// (the header says ckpt owns it) may have let the number go to another file, possibly
/// another thread's: that one is left alone.
#[doc(hidden)] // for the C boundaries
pub fn close_handed_fds(fds: Vec<std::os::fd::OwnedFd>, ids: &[Option<(u64, u64)>]) {
    use std::os::fd::{AsFd, IntoRawFd};
    for (fd, id) in fds
        .into_iter()
        .zip(ids.iter().copied().chain(std::iter::repeat(None)))
    {
        if id.is_some() && file_id(fd.as_fd()) == id {
            drop(fd);
        } else {
            // Not ours any more: forget the number without closing it.
            let _ = fd.into_raw_fd();
        }
    }
}
