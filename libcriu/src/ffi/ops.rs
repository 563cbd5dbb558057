//! criu.h's life cycle, notification and operation functions.

use std::ffi::{c_int, c_void};

use super::{criu_opts, global_op, global_void, guard, key, local_op, local_void};
use crate::notify::{self, CriuNotifyC, NotifyCb};
use crate::ops::{self, Features, MoreCb};
use crate::opts::LibOpts;
use crate::outcome::{Failure, Outcome};
use crate::registry;

/// Resets the global options to libcriu's defaults. Always 0.
#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_init_opts() -> c_int {
    guard(-libc::EINVAL, || {
        registry::reset_global();
        0
    })
}

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_free_opts() {
    guard((), registry::free_global)
}

/// Frees `*o` when it is a live handle (libcriu frees whatever is there; an unknown pointer,
/// such as an uninitialised variable, is ignored here), then stores a new handle in `*o`.
///
/// # Safety
/// `o` is NULL (refused with -EINVAL) or points to a writable `criu_opts *`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn criu_local_init_opts(o: *mut *mut criu_opts) -> c_int {
    if o.is_null() {
        crate::outcome::set_errno(libc::EINVAL);
        return -libc::EINVAL;
    }
    // SAFETY: `o` is non-NULL and writable (the caller's contract); the old value is only
    // used as a key, never dereferenced.
    let old = unsafe { o.read() };
    guard(-libc::EINVAL, || {
        registry::free_handle(key(old));
        let new = registry::new_handle();
        // SAFETY: as above.
        unsafe { o.write(new as *mut criu_opts) };
        0
    })
}

/// Frees a handle; NULL, unknown and already freed pointers are ignored.
#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_local_free_opts(opts: *mut criu_opts) {
    guard((), || {
        registry::free_handle(key(opts));
    })
}

/// Resets a handle's service to `criu` from PATH. libcriu exports this internal function
/// (it frees the service string there); it is kept for symbol compatibility.
#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_free_service(opts: *mut criu_opts) {
    local_void(opts, |o| {
        let _ = o.set_service_binary(None);
    })
}

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_set_notify_cb(cb: Option<NotifyCb>) {
    global_void(|o| o.set_notify(cb))
}

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_local_set_notify_cb(opts: *mut criu_opts, cb: Option<NotifyCb>) {
    local_void(opts, |o| o.set_notify(cb))
}

/// The pid a notification carries, or 0.
///
/// # Safety
/// `na` is NULL or the argument this library passed to the running callback.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn criu_notify_pid(na: *mut CriuNotifyC) -> c_int {
    if na.is_null() {
        return 0;
    }
    // SAFETY: non-NULL, and by the contract it is the live CriuNotifyC of the current call.
    let n = unsafe { &*na };
    if n.has_pid != 0 { n.pid } else { 0 }
}

/// The orphaned pty master of the last `orphan-pts-master` notification on this thread, or
/// -1. The caller owns it from then on.
#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_get_orphan_pts_master_fd() -> c_int {
    guard(-1, notify::take_pts_master)
}

/// Declares the global and local form of an operation that takes only the options.
macro_rules! operation {
    ($global:ident, $local:ident, $f:path, uses_service_fd: $fd:expr) => {
        #[unsafe(no_mangle)]
        pub extern "C-unwind" fn $global() -> c_int {
            global_op($fd, $f)
        }

        #[unsafe(no_mangle)]
        pub extern "C-unwind" fn $local(opts: *mut criu_opts) -> c_int {
            local_op(opts, $fd, $f)
        }
    };
}

operation!(criu_check, criu_local_check, ops::check, uses_service_fd: true);
operation!(criu_dump, criu_local_dump, ops::dump, uses_service_fd: true);
operation!(criu_pre_dump, criu_local_pre_dump, ops::pre_dump, uses_service_fd: true);
operation!(criu_restore, criu_local_restore, ops::restore, uses_service_fd: true);
// Always swrk, as in libcriu: a service fd stays for the next operation.
operation!(criu_restore_child, criu_local_restore_child, ops::restore_child, uses_service_fd: false);
operation!(criu_get_version, criu_local_get_version, ops::version, uses_service_fd: true);

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_check_version(minimum: c_int) -> c_int {
    global_op(true, |o| ops::check_version(o, minimum))
}

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_local_check_version(opts: *mut criu_opts, minimum: c_int) -> c_int {
    local_op(opts, true, |o| ops::check_version(o, minimum))
}

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_dump_iters(more: Option<MoreCb>) -> c_int {
    global_op(true, |o| ops::dump_iters(o, more, &registry::global_copy))
}

#[unsafe(no_mangle)]
pub extern "C-unwind" fn criu_local_dump_iters(
    opts: *mut criu_opts,
    more: Option<MoreCb>,
) -> c_int {
    let current = || registry::with_handle(key(opts), |h| h.clone());
    local_op(opts, true, |o| ops::dump_iters(o, more, &current))
}

/// The `struct criu_feature_check` of criu.h: three C bools, read and written as bytes so a
/// caller's value other than 0 or 1 is not undefined behaviour here.
const KNOWN_FEATURES: usize = 3;

/// As libcriu: NULL, or a `size` larger than this criu.h's struct (a caller built against a
/// newer criu.h, asking about features this library cannot name), is refused with -1 and
/// nothing written. A smaller (older) struct gets the features it has; exactly `size` bytes
/// are read and written.
///
/// # Safety
/// `features` is NULL or points to `size` bytes readable and writable for the call.
unsafe fn feature_check_at(o: &LibOpts, features: *mut c_void, size: usize) -> Outcome {
    if features.is_null() || size > KNOWN_FEATURES {
        o.keep_service_fd();
        return Err(Failure::new(-1, libc::EINVAL));
    }
    // SAFETY: `features` is non-NULL and, by this function's contract, `size` bytes of it
    // are readable and writable for the call.
    let bytes = unsafe { std::slice::from_raw_parts_mut(features.cast::<u8>(), size) };
    let asked = |i: usize| bytes.get(i).is_some_and(|b| *b != 0);
    let ask = Features {
        mem_track: asked(0),
        lazy_pages: asked(1),
        pidfd_store: asked(2),
    };
    let got = ops::feature_check(o, ask)?;
    let answer = [got.mem_track, got.lazy_pages, got.pidfd_store];
    bytes.copy_from_slice(&answer.map(u8::from)[..size]);
    Ok(0)
}

/// # Safety
/// `features` is NULL (refused with -1) or points to `size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn criu_feature_check(features: *mut c_void, size: usize) -> c_int {
    // SAFETY: the caller's contract, stated above, is feature_check_at's.
    global_op(true, |o| unsafe { feature_check_at(o, features, size) })
}

/// # Safety
/// As `criu_feature_check`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn criu_local_feature_check(
    opts: *mut criu_opts,
    features: *mut c_void,
    size: usize,
) -> c_int {
    // SAFETY: the caller's contract, stated above, is feature_check_at's.
    local_op(opts, true, |o| unsafe {
        feature_check_at(o, features, size)
    })
}
