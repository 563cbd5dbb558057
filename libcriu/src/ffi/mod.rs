//! The C boundary: criu.h's functions, each a thin wrapper over the safe code. Rules every
//! function here keeps: no panic unwinds into C (bodies run under `catch_unwind`), every
//! pointer is checked before use, `criu_opts *` is looked up rather than dereferenced, and a
//! refused setting leaves the options as they were.

#![allow(non_camel_case_types)]

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStringExt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::opts::{LibOpts, Opt, Refused, SetResult, Source};
use crate::outcome::{self, Outcome, set_errno};
use crate::registry;

pub mod ops;
pub mod setters;

/// libcriu's opaque option set. Pointers to it are keys into this library's table.
#[repr(C)]
pub struct criu_opts {
    _private: [u8; 0],
}

/// What a caught panic returns: no libcriu code means "internal error", so the closest,
/// -EINVAL, with errno ENOTRECOVERABLE to tell it apart.
const PANIC: Refused = Refused(libc::ENOTRECOVERABLE);

/// `const char *criu_lib_version`, as libcriu exports it: the CRIU version whose criu.h this
/// library implements.
#[repr(transparent)]
pub struct StaticCStr(*const c_char);

// SAFETY: the pointer refers to an immutable static string, readable from any thread.
unsafe impl Sync for StaticCStr {}

#[unsafe(no_mangle)]
pub static criu_lib_version: StaticCStr = StaticCStr(c"4.1.1".as_ptr());

fn key(opts: *mut criu_opts) -> usize {
    opts as usize
}

/// Runs `f`, turning a panic into `on_panic` so it never unwinds into C.
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// libcriu's int convention for setters: 0, or a negated errno with errno set.
fn set_int(f: impl FnOnce() -> SetResult) -> c_int {
    match guard(Err(PANIC), f) {
        Ok(()) => 0,
        Err(Refused::LIBCRIU) => {
            set_errno(libc::EINVAL);
            -1
        }
        Err(Refused(e)) => {
            set_errno(e);
            if e == libc::ENOTRECOVERABLE {
                -libc::EINVAL
            } else {
                -e
            }
        }
    }
}

fn global_int(f: impl FnOnce(&mut LibOpts) -> SetResult) -> c_int {
    set_int(|| registry::with_global(f))
}

fn local_int(opts: *mut criu_opts, f: impl FnOnce(&mut LibOpts) -> SetResult) -> c_int {
    set_int(|| registry::with_handle(key(opts), f).unwrap_or(Err(Refused(libc::EINVAL))))
}

/// A setter of `opt` on the global options: a refused value is remembered (see
/// `LibOpts::refused`).
fn global_set(opt: Opt, f: impl FnOnce(&mut LibOpts) -> SetResult) -> c_int {
    global_int(|o| o.apply(opt, f))
}

fn local_set(opts: *mut criu_opts, opt: Opt, f: impl FnOnce(&mut LibOpts) -> SetResult) -> c_int {
    local_int(opts, |o| o.apply(opt, f))
}

fn global_void(f: impl FnOnce(&mut LibOpts)) {
    guard((), || registry::with_global(f))
}

fn local_void(opts: *mut criu_opts, f: impl FnOnce(&mut LibOpts)) {
    guard((), || {
        registry::with_handle(key(opts), f);
    })
}

/// An operation on the global options: runs on a copy taken under the lock. `fd_use` says
/// whether the operation uses (and so consumes) a service fd; one it did not use is closed or
/// handed back (`service_fd::settle`).
fn global_op(fd_use: bool, f: impl FnOnce(&LibOpts) -> Outcome) -> c_int {
    op(|| {
        let mut o = registry::with_global(|o| o.for_operation(fd_use));
        o.source = Source::Global;
        let r = f(&o);
        if let Some(fd) = settled(fd_use, &o) {
            registry::with_global(|g| g.hand_back_service_fd(fd));
        }
        r
    })
}

fn local_op(opts: *mut criu_opts, fd_use: bool, f: impl FnOnce(&LibOpts) -> Outcome) -> c_int {
    op(
        || match registry::with_handle(key(opts), |o| o.for_operation(fd_use)) {
            Some(mut o) => {
                o.source = Source::Handle(key(opts));
                let r = f(&o);
                if let Some(fd) = settled(fd_use, &o) {
                    registry::with_handle(key(opts), |h| h.hand_back_service_fd(fd));
                }
                r
            }
            None => Err(outcome::Failure::invalid()),
        },
    )
}

/// criu_restore_child (`fd_use` false) leaves the service fd where it is.
fn settled(fd_use: bool, o: &LibOpts) -> Option<std::os::fd::RawFd> {
    if fd_use {
        crate::service_fd::settle(o)
    } else {
        None
    }
}

/// Cancellation is deferred for the operation's length; a callback that ended its thread
/// (pthread_exit) has that exit resumed here, once criu is reaped and descriptors closed.
/// Every caller up to the C entry point holds nothing to drop when this returns, and the
/// entry points are `extern "C-unwind"`, so the exit unwinds from here to the thread's start.
fn op(f: impl FnOnce() -> Outcome) -> c_int {
    let panicked = Err(outcome::Failure::new(-libc::EINVAL, libc::ENOTRECOVERABLE));
    let no_cancel = ckpt::thread_exit::NoCancel::new();
    let r = outcome::to_c(guard(panicked, f));
    drop(no_cancel);
    ckpt::thread_exit::resume_pending_exit();
    r
}

/// A caller's C string for CRIU: its bytes, as libcriu sends them (CRIU's strings are bytes on
/// the wire, and Linux paths need not be UTF-8). NULL is refused with EINVAL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn bytes<'a>(p: *const c_char) -> Result<&'a [u8], Refused> {
    if p.is_null() {
        return Err(Refused(libc::EINVAL));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// Like `bytes`, but NULL is allowed (None).
///
/// # Safety
/// As `bytes`.
unsafe fn bytes_or_null<'a>(p: *const c_char) -> Result<Option<&'a [u8]>, Refused> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: as this function's contract.
    unsafe { bytes(p) }.map(Some)
}

/// A path used locally (never sent to CRIU); NULL is None.
///
/// # Safety
/// As `bytes`.
unsafe fn path_or_null(p: *const c_char) -> Option<OsString> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    let c = unsafe { CStr::from_ptr(p) };
    Some(OsString::from_vec(c.to_bytes().to_vec()))
}
