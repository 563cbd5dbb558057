//! Notifications as libcriu hands them to C: the callback receives the action name and a
//! `criu_notify_arg_t`, which criu.h declares as protobuf-c's `CriuNotify *`. Programs read it
//! with `criu_notify_pid` or, since the type is public, directly (`na->pid`), so the value
//! passed has protobuf-c's layout.
//!
//! The orphaned pty master that CRIU sends with `orphan-pts-master` is kept per thread (the
//! callback runs on the thread that started the operation) until the program takes it with
//! `criu_get_orphan_pts_master_fd`; from then on it is the program's to close, as in libcriu.
//! One the program never took is closed when the next one arrives, instead of leaking.

use std::cell::Cell;
use std::ffi::{CString, c_char, c_int, c_uint, c_void};
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};

/// The C callback: `int (*cb)(char *action, criu_notify_arg_t na)`.
pub type NotifyCb = unsafe extern "C" fn(action: *mut c_char, na: *mut CriuNotifyC) -> c_int;

/// protobuf-c's `CriuNotify`: a `ProtobufCMessage` header (descriptor, n_unknown_fields,
/// unknown_fields), then `char *script`, `protobuf_c_boolean has_pid`, `int32_t pid`. The
/// descriptor is NULL: this library does not link protobuf-c, so the value cannot be packed or
/// freed with protobuf-c's functions (libcriu never asked programs to do either).
#[repr(C)]
pub struct CriuNotifyC {
    pub descriptor: *const c_void,
    pub n_unknown_fields: c_uint,
    pub unknown_fields: *mut c_void,
    pub script: *mut c_char,
    pub has_pid: c_int,
    pub pid: i32,
}

thread_local! {
    // Plain integers: a thread-local without a destructor leaves nothing behind at thread
    // exit or dlclose, which is what lets crun unload this library after every operation.
    static PTS_FD: Cell<RawFd> = const { Cell::new(-1) };
    static PTS_TAKEN: Cell<bool> = const { Cell::new(true) };
}

/// Keeps a duplicate of the pty master CRIU sent, closing one the program never took.
pub fn keep_pts_master(fd: BorrowedFd<'_>) {
    let Ok(dup) = fd.try_clone_to_owned() else {
        return;
    };
    let old = PTS_FD.with(|c| c.replace(dup.into_raw_fd()));
    let old_was_taken = PTS_TAKEN.with(|t| t.replace(false));
    if old >= 0 && !old_was_taken {
        // SAFETY: `old` came from into_raw_fd above on an earlier call and was never handed
        // to the program (PTS_TAKEN was false), so this library still owns it.
        unsafe { libc::close(old) };
    }
}

/// `criu_get_orphan_pts_master_fd`: the last master received on this thread, or -1. The
/// program owns it from now on.
pub fn take_pts_master() -> RawFd {
    PTS_TAKEN.with(|t| t.set(true));
    PTS_FD.with(|c| c.get())
}

/// Calls the program's callback for one notification; its return value is the answer
/// (0 goes on, anything else makes CRIU abort and becomes the operation's result).
pub fn call(cb: NotifyCb, script: &str, pid: Option<i32>) -> c_int {
    // CRIU's script names never hold NUL; one that did could not be passed to C anyway.
    let Ok(action) = CString::new(script) else {
        return -libc::EBADMSG;
    };
    // A plain byte buffer, not CString::into_raw: the action is `char *`, and a callback that
    // writes into it must not change what is freed afterwards.
    let mut action = action.into_bytes_with_nul();
    let action_p: *mut c_char = action.as_mut_ptr().cast();
    let mut arg = CriuNotifyC {
        descriptor: std::ptr::null(),
        n_unknown_fields: 0,
        unknown_fields: std::ptr::null_mut(),
        script: action_p,
        has_pid: c_int::from(pid.is_some()),
        pid: pid.unwrap_or(0),
    };
    let mut call = Call {
        // SAFETY: the same function with the same C ABI; a thread exit inside it is stopped
        // at ckpt's guard before it reaches a Rust frame.
        cb: unsafe { std::mem::transmute::<NotifyCb, NotifyCbUnwind>(cb) },
        action: action_p,
        arg: &mut arg,
    };
    // SAFETY: `trampoline` takes exactly this Call, live for the call; `cb` is the function
    // the program registered with this signature; the action is a NUL-terminated buffer and
    // `arg` a live CriuNotifyC, both valid for the call.
    let ret = unsafe { ckpt::thread_exit::call(trampoline, (&mut call as *mut Call).cast()) };
    drop(action);
    // A callback that ended its thread: CRIU is told to abort; the exit resumes at the end
    // of the operation.
    ret.unwrap_or(-libc::ECANCELED)
}

type NotifyCbUnwind = unsafe extern "C-unwind" fn(*mut c_char, *mut CriuNotifyC) -> c_int;

struct Call {
    cb: NotifyCbUnwind,
    action: *mut c_char,
    arg: *mut CriuNotifyC,
}

/// Calls the callback in `ctx` (a Call), holding nothing to drop: a thread exit in the
/// callback unwinds through this frame to ckpt's guard.
unsafe extern "C-unwind" fn trampoline(ctx: *mut c_void) -> c_int {
    // SAFETY: `ctx` is the live Call that `call` passed.
    let c = unsafe { &*(ctx as *const Call) };
    // SAFETY: as in `call`.
    unsafe { (c.cb)(c.action, c.arg) }
}
