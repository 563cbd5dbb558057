//! libcriu's return conventions. An operation returns 0 or a positive value on success and a
//! negated errno naming the stage that failed, with `errno` set to the cause:
//!
//! | return        | stage                                  | errno                          |
//! |---------------|----------------------------------------|--------------------------------|
//! | -EBADE        | CRIU answered: the operation failed     | CRIU's cr_errno (0 if none)    |
//! | -ECONNREFUSED | a criu service could not be reached, or | why (ENOENT, ECONNREFUSED,     |
//! |               | no descriptor was left to start criu    | EMFILE...)                     |
//! | -ECOMM        | criu could not be started, or sending   | ENOENT, EBADF, ECONNRESET, EIO |
//! |               | to or hearing from CRIU failed          |                                |
//! | -EINVAL       | CRIU does not know the request, or the  | cr_errno / EINVAL              |
//! |               | call's arguments are unusable           |                                |
//! | -EBADMSG      | CRIU answered another request type      | EBADMSG or cr_errno            |

use ckpt::{Code, Error};

/// A failed operation: the value returned to C and the errno set with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub ret: i32,
    pub errno: i32,
}

impl Failure {
    pub fn new(ret: i32, errno: i32) -> Failure {
        Failure { ret, errno }
    }

    pub fn invalid() -> Failure {
        Failure::new(-libc::EINVAL, libc::EINVAL)
    }

    /// criu could not be started or reached; `e` says why.
    pub fn connect(e: &Error) -> Failure {
        let errno = match e.code {
            _ if e.criu_errno > 0 => e.criu_errno,
            // ckpt names a full descriptor table in its message (EMFILE, ENFILE).
            Code::Io if e.message.contains("EMFILE") => libc::EMFILE,
            Code::Io if e.message.contains("ENFILE") => libc::ENFILE,
            Code::BadFd => libc::EBADF,
            Code::InvalidArgument => libc::EINVAL,
            _ => libc::ECONNREFUSED,
        };
        Failure::new(-libc::ECONNREFUSED, errno)
    }

    /// criu could not be started. libcriu forks first and learns of a failed exec only when
    /// criu's socket closes: -ECOMM. A socketpair or fork that fails before (no descriptor or
    /// memory left) is libcriu's failure to connect: -ECONNREFUSED. The errno here says why
    /// (ENOENT, EACCES, EMFILE...), where libcriu's is 0 or left over.
    pub fn spawn(e: &Error) -> Failure {
        let errno = Failure::connect(e).errno;
        Failure::new(Failure::no_resources(errno), errno)
    }

    /// What libcriu returns when the caller's process lacks `errno`'s resource before criu
    /// runs: -ECONNREFUSED for a full descriptor table or no memory or process left, else
    /// -ECOMM.
    pub fn no_resources(errno: i32) -> i32 {
        match errno {
            libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EAGAIN => -libc::ECONNREFUSED,
            _ => -libc::ECOMM,
        }
    }

    /// The conversation broke off (ckpt's transport or session reported `e`). Bytes that
    /// are no CRIU message are, as in libcriu (which fails to unpack them), -ECOMM; errno
    /// says EBADMSG.
    pub fn talk(e: &Error) -> Failure {
        match e.code {
            Code::Protocol => Failure::new(-libc::ECOMM, libc::EBADMSG),
            Code::Timeout => Failure::new(-libc::ECOMM, libc::ETIMEDOUT),
            Code::CriuDied => Failure::new(-libc::ECOMM, libc::ECONNRESET),
            _ => Failure::new(-libc::ECOMM, libc::EIO),
        }
    }
}

pub type Outcome = Result<i32, Failure>;

/// Stores `errno` for the calling thread, as libcriu does before every return.
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns this thread's errno slot, always valid to write.
    unsafe { *libc::__errno_location() = e };
}

/// The C view of an outcome: the return value, with errno set (0 on success, as libcriu).
pub fn to_c(o: Outcome) -> i32 {
    match o {
        Ok(v) => {
            set_errno(0);
            v
        }
        Err(f) => {
            set_errno(f.errno);
            f.ret
        }
    }
}
