//! What went wrong, in a form both Rust and C callers can act on: a stable code, a sentence,
//! CRIU's errno and, when CRIU ran, where its log is and the part of it that explains the failure.

use std::fmt;
use std::path::PathBuf;

/// What kind of failure an [`Error`] is. Stable numbers: the C API hands them out as its
/// `ckpt_status` values, which it extends with the statuses only C can meet (a NULL pointer,
/// a string that is not UTF-8, a panic caught at the boundary: 1, 2 and 14).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Code {
    /// An argument was out of range or malformed (an empty path, a NUL byte, an unknown mode).
    InvalidArgument = 3,
    /// A file descriptor argument was not open or not usable as asked.
    BadFd = 4,
    /// The process or container is not in a state that allows the operation.
    InvalidState = 5,
    /// CRIU or the kernel lacks a feature the options need.
    Unsupported = 6,
    /// A local file system or system call operation failed.
    Io = 7,
    /// The criu binary could not be started (or the service could not be reached).
    Spawn = 8,
    /// CRIU sent a reply that breaks the RPC protocol.
    Protocol = 9,
    /// CRIU reported failure; the error carries its errno, log path and log excerpt.
    Criu = 10,
    /// CRIU exited or closed the connection before answering.
    CriuDied = 11,
    /// The operation timeout expired; criu was killed and reaped (or had not started: a
    /// container checkpoint still waiting on its freezer cgroup, left as it was found: thawed
    /// again if ckpt froze it).
    Timeout = 12,
    /// A notification callback returned an error and CRIU aborted.
    Callback = 13,
    /// The requested item (a statistic, an image directory) does not exist.
    NotFound = 15,
    /// A pid the restore needs is taken by another process.
    PidInUse = 16,
    /// The operation's cancellation token was triggered (`Options::set_cancel`): before the
    /// operation started, while a container checkpoint waited on its freezer cgroup (before
    /// criu started; the cgroup left as it was found: thawed again if ckpt froze it), or while
    /// it ran, when criu was stopped as at a timeout.
    Cancelled = 17,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 14] = [
        Code::InvalidArgument,
        Code::BadFd,
        Code::InvalidState,
        Code::Unsupported,
        Code::Io,
        Code::Spawn,
        Code::Protocol,
        Code::Criu,
        Code::CriuDied,
        Code::Timeout,
        Code::Callback,
        Code::NotFound,
        Code::PidInUse,
        Code::Cancelled,
    ];
}

/// What happened to the workload, beyond the status: bits that may be set on an error and on
/// a dump's statistics (`ckpt_outcome` in C). Stable numbers.
pub mod outcome {
    /// The operation timeout passed, or the cancellation token was triggered, after CRIU's
    /// point of no return (the `post-dump` notification acknowledged): ckpt waited for CRIU's
    /// answer instead of killing criu.
    pub const DEADLINE_PASSED: u32 = 1;
    /// The dump was written and CRIU killed the dumped tree (kill mode, no leave-running).
    pub const TREE_KILLED: u32 = 2;
    /// criu was lost (killed at a deadline, or died) while it had the dumped tree in hand:
    /// after `pre-dump` the tree may be left stopped, frozen or with its network locked;
    /// after `post-dump` it may have been killed, in whole or in part. Check the process.
    pub const TREE_STATE_UNKNOWN: u32 = 4;
    /// The restore failed after CRIU had created the tree: ckpt killed that tree whole and
    /// reaped its root. The error's pid is the root's pid.
    pub const RESTORED_KILLED: u32 = 8;
    /// Every bit above.
    #[allow(dead_code)] // for the C crate's check of its constants
    pub const ALL: u32 = DEADLINE_PASSED | TREE_KILLED | TREE_STATE_UNKNOWN | RESTORED_KILLED;
}

/// A failed operation or a refused setting. `Display` prints the message and, when CRIU ran,
/// the log path; the fields carry the rest (CRIU's errno, the log excerpt, what happened to
/// the workload). It is a `std::error::Error + Send + Sync + 'static`, so `?` takes it into
/// `Box<dyn Error + Send + Sync>` or `anyhow::Error`, from which `downcast_ref::<ckpt::Error>()`
/// gets it back whole.
///
/// ```
/// let e = ckpt::Options::new().set_image_path("").unwrap_err();
/// assert_eq!(e.code, ckpt::Code::InvalidArgument);
/// assert_eq!(e.to_string(), "image path is empty");
/// assert_eq!(e.outcome & ckpt::outcome::ALL, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// What kind of failure this is: a stable code.
    pub code: Code,
    /// One line naming the cause (when CRIU failed, with the line of its log that says why).
    pub message: String,
    /// CRIU's `cr_errno` when CRIU reported one, else 0.
    pub criu_errno: i32,
    /// Where CRIU's log of the operation is, when CRIU ran and wrote one.
    pub log_path: Option<PathBuf>,
    /// The lines of CRIU's log that explain the failure, with a little context before each
    /// (see `logfile::excerpt_of`).
    pub log_excerpt: Option<String>,
    /// [`outcome`] bits: what happened to the workload.
    pub outcome: u32,
    /// The root pid of the restored tree the failed restore left (killed, with
    /// `outcome::RESTORED_KILLED`), else 0.
    pub pid: i32,
}

impl Error {
    /// An error with `code` and `message` and nothing else.
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            criu_errno: 0,
            log_path: None,
            log_excerpt: None,
            outcome: 0,
            pid: 0,
        }
    }

    /// A [`Code::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Code::InvalidArgument, message)
    }

    /// A [`Code::Io`] error: `context: err`.
    pub fn io(context: impl fmt::Display, err: impl fmt::Display) -> Error {
        Error::new(Code::Io, format!("{context}: {err}"))
    }

    /// Duplicating descriptor `fd` failed. Running out of descriptors (EMFILE, ENFILE) is
    /// ckpt's own trouble, not a fault of the caller's descriptor: `Io`, naming the limit.
    /// Anything else means the descriptor itself is unusable: `BadFd`.
    #[doc(hidden)] // for the C boundary; its nix::errno::Errno is no type of this API
    pub fn dup_failed(what: impl fmt::Display, fd: i32, errno: nix::errno::Errno) -> Error {
        use nix::errno::Errno;
        match errno {
            Errno::EMFILE | Errno::ENFILE => Error::new(
                Code::Io,
                format!(
                    "out of file descriptors while duplicating {what} {fd} ({errno}); raise RLIMIT_NOFILE or close descriptors"
                ),
            ),
            _ => Error::new(Code::BadFd, format!("{what} {fd} is not open: {errno}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(p) = &self.log_path {
            write!(f, " (log: {})", p.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// `std::result::Result` with ckpt's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
