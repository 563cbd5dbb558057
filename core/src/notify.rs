//! CRIU's notifications ("action scripts" in RPC form): what the caller's callback receives.

use std::os::fd::BorrowedFd;

/// One notification from CRIU. `fd` is set only for notifications that carry a descriptor
/// (`orphan-pts-master`); it stays owned by ckpt and is valid only while the callback runs.
#[derive(Debug)]
pub struct Notification<'a> {
    pub script: &'a str,
    pub pid: i32,
    pub fd: Option<BorrowedFd<'a>>,
}

/// The names CRIU uses, in the order a dump or restore sends them.
pub const PRE_DUMP: &str = "pre-dump";
pub const POST_DUMP: &str = "post-dump";
pub const NETWORK_LOCK: &str = "network-lock";
pub const NETWORK_UNLOCK: &str = "network-unlock";
pub const PRE_RESTORE: &str = "pre-restore";
pub const SETUP_NAMESPACES: &str = "setup-namespaces";
pub const POST_SETUP_NAMESPACES: &str = "post-setup-namespaces";
pub const PRE_RESUME: &str = "pre-resume";
pub const POST_RESTORE: &str = "post-restore";
pub const POST_RESUME: &str = "post-resume";
pub const ORPHAN_PTS_MASTER: &str = "orphan-pts-master";
pub const STATUS_READY: &str = "status-ready";
pub const QUERY_EXT_FILES: &str = "query-ext-files";

/// Device and inode of what `fd` names, None when it is not open.
pub fn file_id(fd: std::os::fd::BorrowedFd<'_>) -> Option<(u64, u64)> {
    nix::sys::stat::fstat(fd)
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

/// Closes the descriptors a notification carried, each only when its number still names the
/// file it named before the callback ran (`ids`, from `file_id`). A callback that closed one
/// (the header says ckpt owns it) may have let the number go to another file, possibly
/// another thread's: that one is left alone.
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
