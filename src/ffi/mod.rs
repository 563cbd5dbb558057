//! The C boundary: opaque handles, status codes and checked pointers over the safe core.
//!
//! Rules every function here keeps: no panic unwinds into C (each body runs under
//! `catch_unwind`), every pointer is checked before use, and a failing setter leaves the
//! options exactly as they were.

#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::{Code, Error};

pub mod archive;
pub mod error;
pub mod ops;
pub mod opts;
pub mod stats;

/// Result of every fallible call. A fixed-width integer, not a C enum, so its size never
/// depends on the compiler; the numbers below are stable across releases.
pub type ckpt_status = u32;

/// Success.
pub const CKPT_OK: ckpt_status = 0;
/// A required pointer argument was NULL.
pub const CKPT_ERR_NULL_ARGUMENT: ckpt_status = 1;
/// A string argument was not valid UTF-8.
pub const CKPT_ERR_INVALID_UTF8: ckpt_status = 2;
/// An argument was out of range or malformed.
pub const CKPT_ERR_INVALID_ARGUMENT: ckpt_status = 3;
/// A file descriptor argument was not open or not usable as asked.
pub const CKPT_ERR_BAD_FD: ckpt_status = 4;
/// The process or container is not in a state that allows the operation.
pub const CKPT_ERR_INVALID_STATE: ckpt_status = 5;
/// CRIU or the kernel lacks a feature the options need.
pub const CKPT_ERR_UNSUPPORTED: ckpt_status = 6;
/// A local file system or system call operation failed.
pub const CKPT_ERR_IO: ckpt_status = 7;
/// The criu binary could not be started (or the service could not be reached).
pub const CKPT_ERR_SPAWN: ckpt_status = 8;
/// CRIU sent a reply that breaks the RPC protocol.
pub const CKPT_ERR_PROTOCOL: ckpt_status = 9;
/// CRIU reported failure; the error carries its errno, log path and log excerpt.
pub const CKPT_ERR_CRIU: ckpt_status = 10;
/// CRIU exited or closed the connection before answering.
pub const CKPT_ERR_CRIU_DIED: ckpt_status = 11;
/// The operation timeout expired; criu was killed and reaped.
pub const CKPT_ERR_TIMEOUT: ckpt_status = 12;
/// A notification callback returned non-zero and CRIU aborted.
pub const CKPT_ERR_CALLBACK: ckpt_status = 13;
/// An internal error was caught at the boundary; please report it.
pub const CKPT_ERR_PANIC: ckpt_status = 14;
/// The requested item (a statistic, an image directory) does not exist.
pub const CKPT_ERR_NOT_FOUND: ckpt_status = 15;
/// A pid the restore needs is taken by another process.
pub const CKPT_ERR_PID_IN_USE: ckpt_status = 16;

pub(crate) fn status(code: Code) -> ckpt_status {
    code as ckpt_status
}

/// Runs `f`, turning a panic into `CKPT_ERR_PANIC` so it never unwinds into C.
pub(crate) fn guard(f: impl FnOnce() -> ckpt_status) -> ckpt_status {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(CKPT_ERR_PANIC)
}

/// Reads a caller's C string as UTF-8 text.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Error> {
    if p.is_null() {
        return Err(Error::new(Code::NullArgument, format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Error::new(Code::InvalidUtf8, format!("{what} is not valid UTF-8")))
}

/// Like `text`, but NULL is allowed and means "absent".
///
/// # Safety
/// As for `text`.
pub(crate) unsafe fn opt_text<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller's guarantee.
        unsafe { text(p, what) }.map(Some)
    }
}

/// Writes `v` through `out` when `out` is not NULL.
///
/// # Safety
/// `out` is NULL or valid for a write of `T`.
pub(crate) unsafe fn put<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and, per the caller, valid for writes.
        unsafe { out.write(v) };
    }
}

/// Moves `v` to the heap and hands the caller a pointer it later frees with the matching
/// `_free`; NULL `out` drops `v` at once.
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
pub(crate) unsafe fn give<T>(out: *mut *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and, per the caller, valid for writes.
        unsafe { out.write(Box::into_raw(Box::new(v))) };
    }
}

/// Frees what `give` handed out; NULL is a no-op.
///
/// # Safety
/// `p` is NULL or came from `give::<T>` and was not freed before.
pub(crate) unsafe fn take<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the caller, `p` came from Box::into_raw and is freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// The version of this library, e.g. "0.1.0". Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static English description of `status`, or of an unknown status for numbers this
/// library does not define. Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_status_str(status: ckpt_status) -> *const c_char {
    match Code::from_u32(status) {
        Some(c) => c.describe_c().as_ptr().cast(),
        None => c"unknown ckpt status".as_ptr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_codes() {
        let consts = [
            CKPT_OK,
            CKPT_ERR_NULL_ARGUMENT,
            CKPT_ERR_INVALID_UTF8,
            CKPT_ERR_INVALID_ARGUMENT,
            CKPT_ERR_BAD_FD,
            CKPT_ERR_INVALID_STATE,
            CKPT_ERR_UNSUPPORTED,
            CKPT_ERR_IO,
            CKPT_ERR_SPAWN,
            CKPT_ERR_PROTOCOL,
            CKPT_ERR_CRIU,
            CKPT_ERR_CRIU_DIED,
            CKPT_ERR_TIMEOUT,
            CKPT_ERR_CALLBACK,
            CKPT_ERR_PANIC,
            CKPT_ERR_NOT_FOUND,
            CKPT_ERR_PID_IN_USE,
        ];
        for (c, k) in Code::ALL.iter().zip(consts) {
            assert_eq!(*c as u32, k);
        }
        assert_eq!(consts.len(), Code::ALL.len());
    }
}
