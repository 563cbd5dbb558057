//! Where options live: libcriu's one global set, used by the `criu_*` functions, and the
//! `criu_opts` handles of the `criu_local_*` functions.
//!
//! The global set is shared by every thread, as in libcriu, but behind a mutex: libcriu's
//! unguarded global pointer lets one thread free or rebuild it under another. Operations copy
//! the options and release the lock before talking to CRIU, so a slow dump never blocks other
//! threads and a callback may call setters.
//!
//! A `criu_opts *` given to C is a key into a table, never dereferenced: an unknown, stale or
//! doubly freed pointer is recognised and ignored instead of corrupting memory. The table's
//! lock also guards the handles' options (held only while a setter runs or an operation
//! copies them).
//!
//! libcriu has no lock, so its callers may fork at any moment and use libcriu in the child. A
//! fork copies a lock held by another thread, which the child does not have, held for ever:
//! the child's first call would wait for ever. So `pthread_atfork` handlers (see `fork_safety`)
//! take both locks before every fork and release them after it, in the parent and in the
//! child, which so gets options no thread was changing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::notify::NotifyCb;
use crate::opts::{LibOpts, Source};

static GLOBAL: Mutex<Option<LibOpts>> = Mutex::new(None);
static HANDLES: Mutex<BTreeMap<usize, Box<LibOpts>>> = Mutex::new(BTreeMap::new());

/// A panic cannot leave options half-set (setters assign whole values), so a poisoned lock
/// still guards consistent data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` on the global options, creating libcriu's defaults if criu_init_opts was not
/// called (libcriu would crash on its NULL pointer instead).
pub fn with_global<R>(f: impl FnOnce(&mut LibOpts) -> R) -> R {
    let mut g = lock(&GLOBAL);
    f(g.get_or_insert_with(LibOpts::new))
}

/// A copy of the global options as they are; None after criu_free_opts (no defaults are
/// made here, unlike `with_global`).
pub fn global_copy() -> Option<LibOpts> {
    lock(&GLOBAL).clone()
}

/// The notification callback the options `source` names hold now; None when they are gone
/// (freed, or `Source::None`).
pub fn current_notify(source: Source) -> Option<Option<NotifyCb>> {
    match source {
        Source::None => None,
        Source::Global => lock(&GLOBAL).as_ref().map(|o| o.notify),
        Source::Handle(key) => with_handle(key, |o| o.notify),
    }
}

/// criu_init_opts: back to the defaults.
pub fn reset_global() {
    *lock(&GLOBAL) = Some(LibOpts::new());
}

/// criu_free_opts.
pub fn free_global() {
    *lock(&GLOBAL) = None;
}

/// The first handle number. Numbers are never reused: an address would be (the allocator
/// hands a freed handle's memory to the next one), and a freed pointer freed again would then
/// free the handle made after it. Above every user-space address (non-canonical on x86-64,
/// kernel space on 32-bit Linux), so no heap or stack pointer, say an uninitialised variable
/// handed to criu_local_init_opts, is ever taken for a handle.
const FIRST_KEY: usize = usize::MAX - (usize::MAX >> 2);
static NEXT_KEY: AtomicUsize = AtomicUsize::new(FIRST_KEY);

/// A new handle; the returned number is the `criu_opts *` C sees (never given out before).
pub fn new_handle() -> usize {
    // Steps of 16 keep the number aligned like a real allocation.
    let key = NEXT_KEY.fetch_add(16, Ordering::Relaxed);
    lock(&HANDLES).insert(key, Box::new(LibOpts::new()));
    key
}

/// Forgets a handle; false when `key` is not a live handle.
pub fn free_handle(key: usize) -> bool {
    lock(&HANDLES).remove(&key).is_some()
}

/// Runs `f` on a handle's options; None when `key` is not a live handle. `f` runs under the
/// table's lock: it is a setter or an operation's copy, never a call to CRIU or the caller.
pub fn with_handle<R>(key: usize, f: impl FnOnce(&mut LibOpts) -> R) -> Option<R> {
    lock(&HANDLES).get_mut(&key).map(|o| f(o))
}

/// Frees everything when the library is unloaded (dlclose) or the process exits, so a
/// program that loads the library per operation, as crun does, does not accumulate options
/// that no code can reach any more. A lock held at that moment (a thread still inside the
/// library) is left alone rather than waited for.
extern "C" fn unload() {
    if let Ok(mut g) = GLOBAL.try_lock() {
        g.take();
    }
    if let Ok(mut h) = HANDLES.try_lock() {
        std::mem::take(&mut *h);
    }
}

#[used]
#[unsafe(link_section = ".fini_array")]
static UNLOAD: extern "C" fn() = unload;

/// Both locks, as held across a fork: taken in the order every other path takes them (each
/// path takes at most one, so any order is deadlock-free), released handles first.
pub(crate) struct Locked {
    _handles: MutexGuard<'static, BTreeMap<usize, Box<LibOpts>>>,
    _global: MutexGuard<'static, Option<LibOpts>>,
}

/// Takes both locks (see `fork_safety`).
pub(crate) fn lock_all() -> Locked {
    let global = lock(&GLOBAL);
    Locked {
        _handles: lock(&HANDLES),
        _global: global,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_checked() {
        let k = new_handle();
        assert!(with_handle(k, |o| o.rpc.images_dir_fd).is_some());
        assert!(free_handle(k));
        assert!(!free_handle(k));
        assert!(with_handle(k, |_| ()).is_none());
        assert!(with_handle(0, |_| ()).is_none());
    }

    #[test]
    fn a_freed_handle_s_number_is_not_given_again() {
        let k = new_handle();
        assert!(free_handle(k));
        let k2 = new_handle();
        assert_ne!(k, k2);
        assert!(!free_handle(k));
        assert!(with_handle(k2, |_| ()).is_some());
        assert!(free_handle(k2));
    }
}
