//! Descriptors handed to ckpt or CRIU.

use super::*;

/// A descriptor to signal readiness on (runc --status-fd): when CRIU reports `status-ready`
/// (a lazy-pages dump whose page server is listening), ckpt writes one `\0` byte to it and
/// closes it. It must be open for writing (O_WRONLY or O_RDWR) and not 0, 1 or 2.
/// Ownership passes to the options on success: ckpt closes it after writing, when it is
/// replaced, or in `ckpt_opts_free`. On failure the caller still owns it.
/// After a successful call the descriptor is the library's: the caller must not use or close it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_status_fd(opts: *mut ckpt_opts, fd: c_int) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            ckpt::options::check_writable_fd("status fd", fd)?;
            if o.owns_fd(fd) {
                return Err(Error::new(
                    Code::BadFd,
                    format!(
                        "status fd {fd} already belongs to these options; it is not the caller's to give"
                    ),
                ));
            }
            // SAFETY: checked open above, and not one the handle owns already; the caller hands
            // ownership over on success.
            o.set_status_fd(unsafe { OwnedFd::from_raw_fd(fd) })
        })
    }
}

/// `ckpt_opts_set_status_fd`, except that ckpt duplicates `fd` (close-on-exec) and the caller
/// keeps its own, open and usable, whatever the outcome: ckpt writes to and closes only its
/// duplicate. The same checks apply, to `fd`, with the same statuses and messages. For
/// callers that cannot hand a descriptor over (a Go `*os.File` the runtime still owns).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_status_fd_dup(
    opts: *mut ckpt_opts,
    fd: c_int,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            ckpt::options::check_writable_fd("status fd", fd)?;
            let dup = dup_caller_fd(fd, "status fd")?;
            o.set_status_fd(dup)
        })
    }
}

/// CRIU's pidfd store for iterative pre-dumps: an AF_UNIX SOCK_DGRAM socket, the same one for
/// every iteration, in which CRIU keeps pidfds of the dumped tasks to detect pid reuse between
/// iterations. ckpt duplicates `fd`; the caller keeps its own.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_pidfd_store_sk(
    opts: *mut ckpt_opts,
    fd: c_int,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            let dup = dup_caller_fd(fd, "pidfd store socket")?;
            o.set_pidfd_store_sk(dup)
        })
    }
}

/// On restore, give the restored tree the caller's descriptor `fd` where the images name
/// `key` (CRIU --inherit-fd, e.g. "pipe:[12345]"). ckpt duplicates `fd`; the caller keeps its
/// own. Inside criu the duplicate gets a number that collides with nothing else passed.
/// At most 1000 per handle: past about 1014, CRIU's own descriptors pass 1023 and it aborts
/// (its nftables probe uses select(), limited to FD_SETSIZE); the 1001st is refused with
/// `CKPT_ERR_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_inherit_fd(
    opts: *mut ckpt_opts,
    key: *const c_char,
    fd: c_int,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let k = unsafe { text(key, "inherit-fd key") }?;
            check_text("inherit-fd key", k)?;
            let dup = dup_caller_fd(fd, "inherit fd")?;
            Ok(o.add_inherit_fd(k, dup)?)
        })
    }
}
