//! `ckpt_error`: the detail behind a failing status, owned by the caller once handed out.

use std::ffi::{CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::ptr;

use super::{Failure, ckpt_status, give, take};

/// Why an operation failed. Created by ckpt, owned by the caller, freed with
/// `ckpt_error_free`. Every string it returns lives as long as the error.
pub struct ckpt_error {
    code: ckpt_status,
    criu_errno: i32,
    outcome: u32,
    pid: i32,
    message: CString,
    log_path: Option<CString>,
    log_excerpt: Option<CString>,
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

impl ckpt_error {
    pub(crate) fn from_failure(f: &Failure) -> ckpt_error {
        let e = &f.error;
        ckpt_error {
            code: f.status,
            criu_errno: e.criu_errno,
            outcome: e.outcome,
            pid: e.pid,
            message: c_string(&e.message),
            // The path's own bytes: an image or work path need not be UTF-8, and a lossy
            // conversion names a file that does not exist.
            log_path: e.log_path.as_ref().map(|p| {
                CString::new(p.as_os_str().as_bytes())
                    .unwrap_or_else(|_| c_string(&p.to_string_lossy()))
            }),
            log_excerpt: e.log_excerpt.as_deref().map(c_string),
        }
    }
}

/// Hands `f` to the caller through `err` (when not NULL) and returns its status.
///
/// # Safety
/// `err` is NULL or valid for a pointer write.
pub(crate) unsafe fn report(err: *mut *mut ckpt_error, f: &Failure) -> ckpt_status {
    // SAFETY: forwarded from the caller's guarantee.
    unsafe { give(err, ckpt_error::from_failure(f)) };
    f.status
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

/// The status this error stands for; `CKPT_ERR_NULL_ARGUMENT` for a NULL error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_code(err: *const ckpt_error) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(super::CKPT_ERR_NULL_ARGUMENT, |e| e.code)
    }
}

/// One line saying what went wrong, quoting CRIU where CRIU failed. Owned by the error; valid
/// until `ckpt_error_free`. NULL only for a NULL error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_message(err: *const ckpt_error) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(ptr::null(), |e| e.message.as_ptr())
    }
}

/// CRIU's errno (`cr_errno`) for a CRIU failure; for `CKPT_ERR_SPAWN`, the errno of starting
/// criu (ENOENT for a missing binary); otherwise 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_criu_errno(err: *const ckpt_error) -> i32 {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(0, |e| e.criu_errno)
    }
}

/// Absolute path of CRIU's log for the failed operation, or NULL when CRIU did not get as far
/// as logging. Its bytes are those of the image or work path as set, UTF-8 or not. Owned by
/// the error; valid until `ckpt_error_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_log_path(err: *const ckpt_error) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(ptr::null(), |e| opt_ptr(&e.log_path))
    }
}

/// The lines of CRIU's log that explain the failure (its `Error` lines and the lines saying
/// something failed), each with a few lines of context before it, separated by "..." where
/// lines were skipped; lines CRIU writes on every run are left out, and a closing line
/// starting "(ckpt left out" counts them. NULL when nothing explains a failure. Owned by the
/// error; valid until `ckpt_error_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_log_excerpt(err: *const ckpt_error) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(ptr::null(), |e| opt_ptr(&e.log_excerpt))
    }
}

/// What happened to the workload, as `CKPT_OUTCOME_*` bits; 0 when nothing beyond the
/// status is to be said (and for a NULL error). See docs/guarantees.md, "Timeouts and failed
/// restores", for which bits each phase of a dump or restore gives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_outcome(err: *const ckpt_error) -> super::ckpt_outcome {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(0, |e| e.outcome)
    }
}

/// The root pid of the tree a failed restore had created, which ckpt then killed whole and
/// reaped (`CKPT_OUTCOME_RESTORED_KILLED`); 0 when the restore failed before CRIU created
/// a tree, for other operations, and for a NULL error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_pid(err: *const ckpt_error) -> i32 {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        unsafe { err.as_ref() }.map_or(0, |e| e.pid)
    }
}

/// Frees an error and every string it returned. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_error_free(err: *mut ckpt_error) {
    boundary! {
        // SAFETY: per the contract, `err` came from `give` and is freed once.
        unsafe { take(err) }
    }
}
