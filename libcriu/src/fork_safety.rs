//! A fork never copies this library's locks held. libcriu keeps its options in plain memory,
//! so its callers may fork while another thread is inside a setter or an operation and use
//! libcriu in the child. This library guards the options with locks (see `registry`); a lock
//! another thread held at the fork stays held for ever in the child, which has only the
//! forking thread, and the child's first call would block for ever.
//!
//! `pthread_atfork` handlers, registered when the library is loaded: before a fork the forking
//! thread takes both locks (waiting for a setter to finish, or an operation to copy its
//! options: never for CRIU), and after it releases them, in the parent and in the child.
//! glibc's `pthread_atfork` registers them for this object (its `__dso_handle`) and removes
//! them when it is unloaded, so a `dlclose`d library leaves no handler behind. `posix_spawn`
//! (how this library starts criu) runs no fork handlers.

use std::sync::{Mutex, PoisonError};

use crate::registry::{self, Locked};

/// The locks the forking thread holds between `prepare` and `parent` / `child`.
struct Held {
    _locked: Locked,
}

// SAFETY: a Held is made by `prepare` and dropped by `parent` or `child`, which glibc runs in
// the thread that called fork (in the child, that thread's copy): the guards are released by
// the thread that took them, never by another.
unsafe impl Send for Held {}

/// Touched only by a thread that holds both registry locks, so never contended; free at
/// every fork (`prepare` releases it before returning).
static HELD: Mutex<Option<Held>> = Mutex::new(None);

fn store(h: Option<Held>) -> Option<Held> {
    std::mem::replace(&mut *HELD.lock().unwrap_or_else(PoisonError::into_inner), h)
}

extern "C" fn prepare() {
    let locked = registry::lock_all();
    store(Some(Held { _locked: locked }));
}

extern "C" fn after() {
    drop(store(None));
}

/// Registers the handlers when the library is loaded (`.init_array`: at program start for a
/// linked library, in `dlopen` for a loaded one).
extern "C" fn register() {
    // SAFETY: the three functions live as long as this object, and glibc unregisters them
    // when it is unloaded (registered with this object's handle, see the module comment).
    // Failure (ENOMEM) leaves forks as without handlers; there is no one to tell.
    unsafe {
        libc::pthread_atfork(Some(prepare), Some(after), Some(after));
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER: extern "C" fn() = register;
