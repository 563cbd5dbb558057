//! The C boundary: opaque handles, status codes and checked pointers over the safe core.
//!
//! Rules every function here keeps: no panic unwinds into C (each body runs inside
//! `boundary!`), every pointer is checked before use, and a failing setter leaves the
//! options exactly as they were.

#![allow(non_camel_case_types)]
// The conventions every exported function keeps (NULL, ownership, threads) are stated once, in
// the banner of include/ckpt.h (cbindgen.toml); each function documents only what is its own.
#![allow(clippy::missing_safety_doc)]

/// The panic boundary every exported function's body runs in: a panic is caught and the
/// function returns the failure value of its return type ([`OnPanic`]), or the value after
/// `or` where the type's failure value does not fit (`ckpt_notification_fd` answers -1).
macro_rules! boundary {
    (or $default:expr => $($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => v,
            Err(_) => $default,
        }
    };
    ($($body:tt)*) => {
        boundary!(or $crate::OnPanic::on_panic() => $($body)*)
    };
}

use std::ffi::{CStr, c_char};

use ckpt::{Code, Error};

pub mod archive;
pub mod cancel;
pub mod container;
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
/// The operation timeout expired; criu was killed and reaped (or had not started: a
/// container checkpoint still waiting on its freezer cgroup, left as it was found: thawed
/// again if ckpt froze it).
pub const CKPT_ERR_TIMEOUT: ckpt_status = 12;
/// A notification callback returned non-zero and CRIU aborted.
pub const CKPT_ERR_CALLBACK: ckpt_status = 13;
/// An internal error was caught at the boundary; please report it.
pub const CKPT_ERR_PANIC: ckpt_status = 14;
/// The requested item (a statistic, an image directory) does not exist.
pub const CKPT_ERR_NOT_FOUND: ckpt_status = 15;
/// A pid the restore needs is taken by another process.
pub const CKPT_ERR_PID_IN_USE: ckpt_status = 16;
/// The operation's cancellation token was triggered (`ckpt_cancel_trigger`): before it
/// started, while a container checkpoint waited on its freezer cgroup (before criu started;
/// the cgroup left as it was found: thawed again if ckpt froze it), or while it ran, when
/// criu was stopped as at a timeout.
pub const CKPT_ERR_CANCELLED: ckpt_status = 17;

/// Bits saying what happened to the workload (`ckpt_error_outcome`, `ckpt_stats_outcome`).
/// Stable numbers; new bits may be added.
pub type ckpt_outcome = u32;
/// The operation timeout passed, or the operation was cancelled (`ckpt_cancel_trigger`),
/// after CRIU's point of no return (the `post-dump` notification acknowledged): ckpt waited
/// for CRIU's answer rather than kill criu, and the result is CRIU's. On a successful dump's
/// statistics, the dump is complete.
pub const CKPT_OUTCOME_DEADLINE_PASSED: ckpt_outcome = 1;
/// The dump was written and CRIU killed the dumped tree (a dump without leave-running).
pub const CKPT_OUTCOME_TREE_KILLED: ckpt_outcome = 2;
/// criu was lost (killed at a deadline, or died) while it had the dumped tree in hand: after
/// `pre-dump`, the tree may be left stopped, frozen or with its network locked; after
/// `post-dump`, it may have been killed, in whole or in part. Check the process, and keep
/// the images.
pub const CKPT_OUTCOME_TREE_STATE_UNKNOWN: ckpt_outcome = 4;
/// A restore failed after CRIU had created the tree: ckpt killed that tree whole and reaped
/// its root, whose pid `ckpt_error_pid` gives.
pub const CKPT_OUTCOME_RESTORED_KILLED: ckpt_outcome = 8;

/// What `ckpt_status_str` says of each status, by number: one table, checked against the
/// constants above and the core's codes by the tests below.
/// cbindgen:ignore
const STATUS_TEXT: [&std::ffi::CStr; 18] = [
    c"success",
    c"a required pointer argument was NULL",
    c"a string argument was not valid UTF-8 or held a NUL byte",
    c"an argument was out of range or malformed",
    c"a file descriptor argument was not open or not usable",
    c"the process or container is not in a state that allows this",
    c"CRIU or the kernel lacks a feature this needs",
    c"a local file system or system call operation failed",
    c"the criu binary could not be started",
    c"CRIU sent a reply that breaks the RPC protocol",
    c"CRIU reported that the operation failed",
    c"CRIU exited or closed the connection before replying",
    c"the operation timed out; criu was killed",
    c"a notification callback aborted the operation",
    c"an internal error was caught at the API boundary",
    c"the requested item does not exist",
    c"a pid needed by the restore is already in use",
    c"the operation was cancelled",
];

pub(crate) fn status(code: Code) -> ckpt_status {
    code as ckpt_status
}

/// A failure on its way to C: its status and the core's error behind it. The statuses only C
/// can meet (a NULL pointer, bad UTF-8, a caught panic) are made here, with a message.
pub(crate) struct Failure {
    pub(crate) status: ckpt_status,
    pub(crate) error: Error,
}

impl Failure {
    pub(crate) fn new(status: ckpt_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            error: Error::invalid(message),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            status: status(error.code),
            error,
        }
    }
}

/// What an exported function returns when its body panics.
pub(crate) trait OnPanic {
    fn on_panic() -> Self;
}

/// `ckpt_status`: the panic is reported as such.
impl OnPanic for u32 {
    fn on_panic() -> u32 {
        CKPT_ERR_PANIC
    }
}

/// Getters of numbers (a CRIU errno, a pid, a count): 0, "none".
impl OnPanic for i32 {
    fn on_panic() -> i32 {
        0
    }
}

impl OnPanic for usize {
    fn on_panic() -> usize {
        0
    }
}

/// Getters of strings and constructors: NULL.
impl<T> OnPanic for *const T {
    fn on_panic() -> *const T {
        std::ptr::null()
    }
}

impl<T> OnPanic for *mut T {
    fn on_panic() -> *mut T {
        std::ptr::null_mut()
    }
}

/// The `_free` functions: nothing to report.
impl OnPanic for () {
    fn on_panic() {}
}

/// Reads a caller's C string as UTF-8 text.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::new(
            CKPT_ERR_NULL_ARGUMENT,
            format!("{what} is NULL"),
        ));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Failure::new(CKPT_ERR_INVALID_UTF8, format!("{what} is not valid UTF-8")))
}

/// Reads a caller's C string as a path: any bytes (Linux paths need not be UTF-8; CRIU gets
/// them as they are). NULL is refused.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
pub(crate) unsafe fn path<'a>(
    p: *const c_char,
    what: &str,
) -> Result<&'a std::ffi::OsStr, Failure> {
    use std::os::unix::ffi::OsStrExt;
    if p.is_null() {
        return Err(Failure::new(
            CKPT_ERR_NULL_ARGUMENT,
            format!("{what} is NULL"),
        ));
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity.
    let c = unsafe { CStr::from_ptr(p) };
    Ok(std::ffi::OsStr::from_bytes(c.to_bytes()))
}

/// Like `text`, but NULL is allowed and means "absent".
///
/// # Safety
/// As for `text`.
pub(crate) unsafe fn opt_text<'a>(
    p: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, Failure> {
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

/// Hands the caller a C string it later frees with `ckpt_string_free` or
/// `ckpt_archive_string_free`; NULL `out` drops `s` at once (the caller did not want it).
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
pub(crate) unsafe fn give_string(out: *mut *mut c_char, s: std::ffi::CString) {
    if !out.is_null() {
        // SAFETY: non-NULL and, per the caller, valid for writes.
        unsafe { out.write(s.into_raw()) };
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

/// A handle whose setters keep why the last one failed (`ckpt_opts_last_error`,
/// `ckpt_container_last_error`, `ckpt_archive_opts_last_error`).
pub(crate) trait Settable {
    fn last_error(&mut self) -> &mut Option<std::ffi::CString>;
}

/// The body of every setter: applies `f` to the handle behind `h` (NULL: NULL argument),
/// keeping the failure's message on the handle, or clearing it on success.
pub(crate) fn set_on<H: Settable, E: Into<Failure>>(
    h: *mut H,
    f: impl FnOnce(&mut H) -> std::result::Result<(), E>,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a live handle used by no other thread.
    let Some(h) = (unsafe { h.as_mut() }) else {
        return CKPT_ERR_NULL_ARGUMENT;
    };
    match f(h).map_err(Into::into) {
        Ok(()) => {
            *h.last_error() = None;
            CKPT_OK
        }
        Err(e) => {
            *h.last_error() = std::ffi::CString::new(e.error.message.replace('\0', " ")).ok();
            e.status
        }
    }
}

/// The body of every operation: `f` runs inside `boundary!` with thread cancellation off, its
/// error (or a caught panic) reaches the caller through `err`, and a callback that ended its
/// thread (pthread_exit, cancellation) has that exit resumed here, once criu is reaped and
/// every descriptor closed. Never itself inside a `boundary!`: that would catch the resumed
/// exit's forced unwind, and glibc aborts the process.
pub(crate) fn operation(
    err: *mut *mut error::ckpt_error,
    f: impl FnOnce() -> std::result::Result<(), Failure>,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a location valid for a pointer write.
    unsafe { put(err, std::ptr::null_mut()) };
    let no_cancel = ckpt::thread_exit::NoCancel::new();
    let st = boundary! {
        match f() {
            Ok(()) => CKPT_OK,
            // SAFETY: as above for `err`.
            Err(e) => unsafe { error::report(err, &e) },
        }
    };
    if st == CKPT_ERR_PANIC {
        // SAFETY: as above for `err`.
        unsafe {
            error::report(
                err,
                &Failure::new(CKPT_ERR_PANIC, "internal error caught at the API boundary"),
            )
        };
    }
    drop(no_cancel);
    if ckpt::thread_exit::exit_pending() {
        // A callback ended the thread: nobody is left to read or free the error.
        if !err.is_null() {
            // SAFETY: `err` is valid for reads and writes per the contract, and holds NULL or
            // the error handed out above, which nobody else has seen.
            unsafe {
                take(*err);
                *err = std::ptr::null_mut();
            }
        }
        ckpt::thread_exit::resume_pending_exit();
    }
    st
}

/// The version of this library, e.g. "0.1.0". Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_version() -> *const c_char {
    boundary! {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }
}

/// A static English description of `status`, or of an unknown status for numbers this
/// library does not define. Static storage: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_status_str(status: ckpt_status) -> *const c_char {
    boundary! {
        STATUS_TEXT
            .get(status as usize)
            .map_or(c"unknown ckpt status".as_ptr(), |t| t.as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every exported function's body is one `boundary!`, so no panic can reach C.
    #[test]
    fn every_exported_function_runs_inside_the_boundary() {
        let sources = [
            ("lib.rs", include_str!("lib.rs")),
            ("error.rs", include_str!("error.rs")),
            ("ops.rs", include_str!("ops.rs")),
            ("container.rs", include_str!("container.rs")),
            ("archive.rs", include_str!("archive.rs")),
            ("cancel.rs", include_str!("cancel.rs")),
            ("opts/mod.rs", include_str!("opts/mod.rs")),
            ("opts/paths.rs", include_str!("opts/paths.rs")),
            ("opts/dump.rs", include_str!("opts/dump.rs")),
            ("opts/restore.rs", include_str!("opts/restore.rs")),
            ("opts/network.rs", include_str!("opts/network.rs")),
            ("opts/cgroups.rs", include_str!("opts/cgroups.rs")),
            ("opts/tls.rs", include_str!("opts/tls.rs")),
            ("opts/fds.rs", include_str!("opts/fds.rs")),
            ("opts/notify.rs", include_str!("opts/notify.rs")),
            ("stats.rs", include_str!("stats.rs")),
        ];
        let mut seen = 0;
        for (file, text) in sources {
            // Both ABIs: "C-unwind" is for the operations, which let a callback's thread
            // exit pass once criu is reaped.
            let starts = text
                .match_indices("extern \"C\" fn ckpt_")
                .chain(text.match_indices("extern \"C-unwind\" fn ckpt_"));
            for (at, _) in starts {
                let body = &text[at..];
                let body = &body[body.find("{\n").expect("a body") + 2..];
                let first = body.trim_start();
                // An operation (the "C-unwind" ones) hands its body to `run`, which runs it
                // inside `boundary!` and resumes a callback's thread exit outside it: a
                // boundary around `run` would catch that forced unwind, and glibc aborts.
                let end = body.find("\n}\n").unwrap_or(body.len());
                let operation = text[..at].ends_with("\"C-unwind\" fn ")
                    || text[at..].starts_with("extern \"C-unwind\"");
                if operation {
                    assert!(
                        !first.starts_with("boundary! {") && body[..end].contains("run("),
                        "{file}: {} must call run() outside any boundary!",
                        &text[at..at + 60.min(text.len() - at)]
                    );
                    seen += 1;
                    continue;
                }
                assert!(
                    first.starts_with("boundary! {"),
                    "{file}: {} does not start with boundary!",
                    &text[at..at + 60.min(text.len() - at)]
                );
                seen += 1;
            }
        }
        assert!(seen > 100, "only {seen} exported functions found");
    }

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
            CKPT_ERR_CANCELLED,
        ];
        // Numbered 0, 1, 2...: each is its index in STATUS_TEXT.
        for (i, k) in consts.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        assert_eq!(consts.len(), STATUS_TEXT.len());
        // Every core code is one of them, and none of the C-only ones.
        let c_only = [
            CKPT_OK,
            CKPT_ERR_NULL_ARGUMENT,
            CKPT_ERR_INVALID_UTF8,
            CKPT_ERR_PANIC,
        ];
        for c in Code::ALL {
            assert!(
                consts.contains(&status(c)) && !c_only.contains(&status(c)),
                "{c:?}"
            );
        }
        assert_eq!(Code::ALL.len() + c_only.len(), consts.len());
    }

    #[test]
    fn outcome_constants_match() {
        use ckpt::error::outcome;
        assert_eq!(CKPT_OUTCOME_DEADLINE_PASSED, outcome::DEADLINE_PASSED);
        assert_eq!(CKPT_OUTCOME_TREE_KILLED, outcome::TREE_KILLED);
        assert_eq!(CKPT_OUTCOME_TREE_STATE_UNKNOWN, outcome::TREE_STATE_UNKNOWN);
        assert_eq!(CKPT_OUTCOME_RESTORED_KILLED, outcome::RESTORED_KILLED);
    }
}
