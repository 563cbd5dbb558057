//! `ckpt_opts`: the options handle and its setters. Every setter validates first and changes
//! nothing when it fails; the reason is kept on the handle for `ckpt_opts_last_error`.
//! Strings are copied: the caller keeps ownership of every string it passes.

use std::ffi::{CString, OsStr, c_char, c_int, c_void};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use super::{
    CKPT_ERR_NULL_ARGUMENT, CKPT_OK, Failure, Settable, ckpt_status, opt_text, path, set_on, text,
};
use ckpt::notify::Notification;
use ckpt::options::{Options, check_text};
use ckpt::{Code, Error, Result};

/// Options for one or more operations. Create with `ckpt_opts_new`, free with
/// `ckpt_opts_free`. Setters need exclusive access; operations only read it, so one handle may
/// serve several threads at once after it is set up. Those operations share its image
/// directory: a checkpoint, pre-dump or page server locks it while it runs, and another one
/// writing it meanwhile gets `CKPT_ERR_INVALID_STATE`.
pub struct ckpt_opts {
    pub(crate) inner: Options,
    last_error: Option<CString>,
}

impl ckpt_opts {
    /// The options the setters filled in: lets Rust code (the tests among it) see exactly
    /// what a sequence of C calls produced.
    pub fn options(&self) -> &Options {
        &self.inner
    }
}

/// Applies `f` to the options behind `opts`, recording the outcome for `ckpt_opts_last_error`.
fn apply<E: Into<Failure>>(
    opts: *mut ckpt_opts,
    f: impl FnOnce(&mut Options) -> std::result::Result<(), E>,
) -> ckpt_status {
    set_on(opts, |h: &mut ckpt_opts| f(&mut h.inner))
}

impl Settable for ckpt_opts {
    fn last_error(&mut self) -> &mut Option<CString> {
        &mut self.last_error
    }
}

/// `apply` for setters taking one string.
fn apply_text(
    opts: *mut ckpt_opts,
    s: *const c_char,
    what: &str,
    f: impl FnOnce(&mut Options, &str) -> Result<()>,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    apply(opts, |o| -> std::result::Result<(), Failure> {
        Ok(f(o, unsafe { text(s, what) }?)?)
    })
}

/// `apply` for setters taking one path: any bytes (Linux paths need not be UTF-8; CRIU gets
/// them as they are), not empty; the UTF-8 rule stays for values CRIU reads as text.
fn apply_path(
    opts: *mut ckpt_opts,
    s: *const c_char,
    what: &str,
    f: impl FnOnce(&mut Options, &OsStr) -> Result<()>,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    apply(opts, |o| -> std::result::Result<(), Failure> {
        Ok(f(o, unsafe { path(s, what) }?)?)
    })
}

/// The body of every yes/no setter: they cannot fail but for a NULL handle.
fn flag(
    opts: *mut ckpt_opts,
    value: bool,
    set: fn(&mut Options, bool) -> &mut Options,
) -> ckpt_status {
    apply(opts, |o| {
        set(o, value);
        Ok::<(), Failure>(())
    })
}

/// The body of the number setters that take any value.
fn number(
    opts: *mut ckpt_opts,
    value: u32,
    set: fn(&mut Options, u32) -> &mut Options,
) -> ckpt_status {
    apply(opts, |o| {
        set(o, value);
        Ok::<(), Failure>(())
    })
}

/// Duplicates a caller's descriptor (close-on-exec) after checking it is open; the caller
/// keeps its own.
fn dup_caller_fd(fd: c_int, what: &str) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(Error::new(Code::BadFd, format!("{what} {fd} is negative")));
    }
    let dup = nix::fcntl::fcntl(
        // SAFETY: the number is only duplicated here, never closed or kept.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
    )
    .map_err(|e| Error::dup_failed(what, fd, e))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// A new options handle with nothing set. NULL only when memory is exhausted. The caller owns
/// it and frees it with `ckpt_opts_free`.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_opts_new() -> *mut ckpt_opts {
    boundary! {
        Box::into_raw(Box::new(ckpt_opts {
            inner: Options::new(),
            last_error: None,
        }))
    }
}

/// Frees an options handle and closes the descriptors it owns (a status fd not yet used, the
/// duplicates of inherited fds). NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_free(opts: *mut ckpt_opts) {
    boundary! {
        // SAFETY: per the contract, `opts` came from ckpt_opts_new and is freed once.
        unsafe { super::take(opts) }
    }
}

/// Why the last setter called on `opts` failed, or NULL after a success. Owned by the handle;
/// valid until the next setter call on it or `ckpt_opts_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_last_error(opts: *const ckpt_opts) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        match unsafe { opts.as_ref() } {
            Some(h) => h
                .last_error
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr()),
            None => std::ptr::null(),
        }
    }
}

// The setters, one module per domain, in the order the header lists them.
mod paths;

mod dump;

mod restore;

mod network;

mod cgroups;

mod tls;

mod fds;

mod notify;

pub use cgroups::*;
pub use dump::*;
pub use fds::*;
pub use network::*;
pub use notify::*;
pub use paths::*;
pub use restore::*;
pub use tls::*;
