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
