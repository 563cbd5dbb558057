//! The operations as C functions. Each checks its pointers, runs the safe core inside `boundary!`,
//! and hands results and errors to the caller through out-parameters it may leave NULL.

use std::ffi::c_void;

use super::error::{ckpt_error, report};
use super::opts::ckpt_opts;
use super::stats::ckpt_stats;
use super::{CKPT_ERR_NULL_ARGUMENT, Failure, ckpt_status, give, operation, put};
use ckpt::ops;
use ckpt::options::Options;
use ckpt::{Code, Error, Result};

/// Bits of `ckpt_feature_check`'s masks.
pub type ckpt_feature = u32;
/// Memory change tracking (soft-dirty), needed by pre-dump and parent images.
pub const CKPT_FEATURE_MEM_TRACK: ckpt_feature = 1;
/// Lazy pages (userfaultfd), needed by lazy migration.
pub const CKPT_FEATURE_LAZY_PAGES: ckpt_feature = 2;
/// Storing pidfds across pre-dumps for pid reuse detection.
pub const CKPT_FEATURE_PIDFD_STORE: ckpt_feature = 4;

/// Runs `f` on the options (defaults when `opts` is NULL and `nullable`), reporting an error
/// through `err`. On success `*err` is set to NULL.
fn run(
    opts: *const ckpt_opts,
    nullable: bool,
    err: *mut *mut ckpt_error,
    f: impl FnOnce(&Options) -> Result<()>,
) -> ckpt_status {
    operation(err, || {
        let defaults;
        // SAFETY: the caller passes NULL or a live handle.
        let o = match unsafe { opts.as_ref() } {
            Some(h) => &h.inner,
            None if nullable => {
                defaults = Options::new();
                &defaults
            }
            None => {
                return Err(Failure::new(
                    CKPT_ERR_NULL_ARGUMENT,
                    "options handle is NULL",
                ));
            }
        };
        Ok(f(o)?)
    })
}

/// Checkpoints the process tree rooted at `pid` with `opts`: a dump, or a single pre-dump when
/// the pre-dump flag is set. Everything that can be checked is checked before criu starts.
/// On success and when `stats` is not NULL, `*stats` receives CRIU's dump statistics, owned by
/// the caller (free with `ckpt_stats_free`). On failure and when `err` is not NULL, `*err`
/// receives the error, owned by the caller (free with `ckpt_error_free`); on success `*err`
/// is set to NULL. Blocks until CRIU is done; criu is reaped before this returns.
///
/// Thread cancellation is disabled for the length of this call and of every other blocking
/// operation (`ckpt_checkpoint_iterative`, `ckpt_restore`, `ckpt_criu_version`,
/// `ckpt_feature_check`, `ckpt_check`, `ckpt_page_server_start`, `ckpt_lazy_pages_start`),
/// callbacks included: a `pthread_cancel` that arrives meanwhile acts at the thread's first
/// cancellation point after the call returned, so the result is never lost halfway. With
/// `ckpt_opts_set_timeout_ms`, what each phase of a dump gives on timeout is in
/// docs/guarantees.md ("Timeouts and failed restores"); `ckpt_stats_outcome` and
/// `ckpt_error_outcome` say what happened to the tree.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_checkpoint(
    opts: *const ckpt_opts,
    pid: i32,
    stats: *mut *mut ckpt_stats,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a location valid for a pointer write.
    unsafe { put(stats, std::ptr::null_mut()) };
    run(opts, false, err, |o| {
        let s = ops::checkpoint(o, pid)?;
        // SAFETY: as above.
        unsafe { give(stats, ckpt_stats::of(s)) };
        Ok(())
    })
}

/// Decides after each pre-dump round whether to run another: non-zero goes on, 0 moves to the
/// final dump. `stats` is that round's statistics, valid during the call.
pub type ckpt_predump_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, round: u32, stats: *const ckpt_stats) -> i32,
>;

type PredumpFn = unsafe extern "C-unwind" fn(*mut c_void, u32, *const ckpt_stats) -> i32;

struct PredumpCall {
    f: PredumpFn,
    userdata: *mut c_void,
    round: u32,
    stats: *const ckpt_stats,
}

/// Calls the pre-dump callback in `ctx` (a PredumpCall), holding nothing to drop.
unsafe extern "C-unwind" fn predump_trampoline(ctx: *mut c_void) -> i32 {
    // SAFETY: `ctx` is the live PredumpCall passed by `ckpt_checkpoint_iterative`.
    let c = unsafe { &*(ctx as *const PredumpCall) };
    // SAFETY: the caller vouches for the callback with its userdata.
    unsafe { (c.f)(c.userdata, c.round, c.stats) }
}

/// Iterative migration on one CRIU connection: pre-dump rounds into `<image path>/pre-N`, each
/// on top of the last, while `go_on` returns non-zero (at most `max_rounds`; a NULL `go_on`
/// runs all of them), then the final dump into the image path with the last round as parent.
/// Refused with `CKPT_ERR_UNSUPPORTED` when CRIU lacks memory tracking. Ownership of `stats`
/// and `err` as for `ckpt_checkpoint`.
/// `go_on` must be safe to call with `userdata` during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_checkpoint_iterative(
    opts: *const ckpt_opts,
    pid: i32,
    max_rounds: u32,
    go_on: ckpt_predump_fn,
    userdata: *mut c_void,
    stats: *mut *mut ckpt_stats,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a location valid for a pointer write.
    unsafe { put(stats, std::ptr::null_mut()) };
    run(opts, false, err, |o| {
        if max_rounds == 0 {
            return Err(Error::invalid("max_rounds must be at least 1"));
        }
        let mut decide = |round: u32, s: &ckpt::Stats| match go_on {
            None => Ok(true),
            Some(f) => {
                let h = ckpt_stats::of(s.clone());
                let mut call = PredumpCall {
                    // SAFETY: the same function with the same C ABI; a thread exit inside it
                    // is stopped at the guard before it reaches a Rust frame.
                    f: unsafe {
                        std::mem::transmute::<
                            unsafe extern "C" fn(*mut c_void, u32, *const ckpt_stats) -> i32,
                            PredumpFn,
                        >(f)
                    },
                    userdata,
                    round,
                    stats: &h,
                };
                // SAFETY: the caller vouches for `go_on` with `userdata`; `call` is live.
                match unsafe {
                    ckpt::thread_exit::call(
                        predump_trampoline,
                        (&mut call as *mut PredumpCall).cast(),
                    )
                } {
                    Some(rc) => Ok(rc != 0),
                    None => Err(Error::new(
                        Code::Callback,
                        "the pre-dump callback ended its thread; no final dump was made",
                    )),
                }
            }
        };
        let s = ops::checkpoint_iterative_with(o, pid, max_rounds, &mut decide)?;
        // SAFETY: as above.
        unsafe { give(stats, ckpt_stats::of(s)) };
        Ok(())
    })
}

/// Restores the tree from the image path. The restored tree becomes a child of the calling
/// process (the caller must reap it); `*pid` receives its root pid, so `pid` must not be NULL
/// (`CKPT_ERR_NULL_ARGUMENT` before anything runs). Statistics and errors as for
/// `ckpt_checkpoint`. A pid file and console socket, when set, are served before this returns.
/// A restore that fails after CRIU created the tree (a timeout, a callback failing or ending
/// its thread at post-restore, pre-resume or post-resume, criu dying, a pid file that cannot
/// be written) never leaves that tree behind: ckpt kills it whole and reaps its root, and the
/// error says so (`CKPT_OUTCOME_RESTORED_KILLED`, the pid in `ckpt_error_pid`); `*pid` stays 0.
/// A container's checkpoint (a mount dumped as external, with no mapping given for its key) is
/// refused with `CKPT_ERR_INVALID_ARGUMENT` before criu starts: restore it with
/// `ckpt_container_restore`, or map each key (`ckpt_opts_add_ext_mount`).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_restore(
    opts: *const ckpt_opts,
    pid: *mut i32,
    stats: *mut *mut ckpt_stats,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or locations valid for writes.
    unsafe {
        put(stats, std::ptr::null_mut());
        put(pid, 0);
    }
    if pid.is_null() {
        // A restored tree is the caller's child to reap: never make one whose pid is dropped.
        // SAFETY: as above for `err`.
        return unsafe {
            report(
                err,
                &Failure::new(CKPT_ERR_NULL_ARGUMENT, "pid output pointer is NULL"),
            )
        };
    }
    run(opts, false, err, |o| {
        let r = ops::restore(o)?;
        // SAFETY: as above.
        unsafe { hand_restored(r, pid, stats) };
        Ok(())
    })
}

/// Hands a restore's result to the caller: the root pid through `pid`, the statistics with a
/// container restore's made cgroups (owned by the caller) through `stats`.
///
/// # Safety
/// `pid` and `stats` are NULL or valid for writes.
pub(crate) unsafe fn hand_restored(
    r: ckpt::ops::Restored,
    pid: *mut i32,
    stats: *mut *mut ckpt_stats,
) {
    // SAFETY: forwarded from the caller's guarantee.
    unsafe {
        put(pid, r.pid);
        if let Some(s) = ckpt_stats::of_restore(&r) {
            give(stats, s);
        }
    }
}

/// Asks CRIU for its version: `*version` = major*10000 + minor*100 + sublevel (40101 for 4.1.1).
/// `opts` may be NULL (criu from PATH). One short-lived criu, reaped before this returns; the
/// answer is kept on `opts`, so later calls with the same handle and criu path start none.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_criu_version(
    opts: *const ckpt_opts,
    version: *mut i32,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    if version.is_null() {
        // SAFETY: as above for `err`.
        return unsafe {
            report(
                err,
                &Failure::new(CKPT_ERR_NULL_ARGUMENT, "version output pointer is NULL"),
            )
        };
    }
    run(opts, true, err, |o| {
        let v = ops::version(o)?;
        // SAFETY: checked non-NULL above.
        unsafe { put(version, v.number()) };
        Ok(())
    })
}

/// Asks CRIU which features this kernel supports. `*supported` gets a `CKPT_FEATURE_*` bit for
/// each feature CRIU says works; `*answered` a bit for each feature CRIU gave an answer on.
/// These are CRIU's answers, never the question echoed. `opts` may be NULL. Always asks CRIU;
/// the answers are kept on `opts` for the checks operations make (see ckpt_checkpoint).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_feature_check(
    opts: *const ckpt_opts,
    supported: *mut ckpt_feature,
    answered: *mut ckpt_feature,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    if supported.is_null() && answered.is_null() {
        // SAFETY: as above for `err`.
        return unsafe {
            report(
                err,
                &Failure::new(
                    CKPT_ERR_NULL_ARGUMENT,
                    "both feature output pointers are NULL",
                ),
            )
        };
    }
    run(opts, true, err, |o| {
        let f = ops::feature_check(o)?;
        let mut yes = 0;
        let mut known = 0;
        for (bit, v) in [
            (CKPT_FEATURE_MEM_TRACK, f.mem_track),
            (CKPT_FEATURE_LAZY_PAGES, f.lazy_pages),
            (CKPT_FEATURE_PIDFD_STORE, f.pidfd_store),
        ] {
            if let Some(v) = v {
                known |= bit;
                if v {
                    yes |= bit;
                }
            }
        }
        // SAFETY: NULL or valid for writes, per the contract.
        unsafe {
            put(supported, yes);
            put(answered, known);
        }
        Ok(())
    })
}

/// CRIU's CHECK request: succeeds when CRIU finds the kernel fit for checkpoint/restore.
/// Without an image path on `opts`, CRIU writes `check.log` into a new private directory
/// `ckpt-check-*` of the temp dir, removed after a success, and after a failure unless CRIU
/// wrote its log there (the error's log path then names it).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_check(
    opts: *const ckpt_opts,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    run(opts, true, err, ops::check)
}

/// Starts a page server on the page-server address of `opts`, writing into the image path:
/// the receiving side of a migration. `*pid` and `*port` receive the server's pid and port
/// (each may be NULL); both are set to 0 first, and stay 0 when the call fails. The server is forked from criu, gets /dev/null as its standard streams, and exits after the
/// dump that feeds it; it listens by the time this returns. It is not the caller's child,
/// unless the caller is a child subreaper (PR_SET_CHILD_SUBREAPER): then the kernel hands it
/// to the caller once criu exits, and the caller reaps it when it exits. A server that fails
/// to start (its port is taken) is then a zombie child of the caller, to reap, when this
/// returns the failure. Otherwise init adopts and reaps both.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_page_server_start(
    opts: *const ckpt_opts,
    pid: *mut i32,
    port: *mut i32,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: NULL or valid for writes, per the contract.
    unsafe {
        put(pid, 0);
        put(port, 0);
    }
    run(opts, false, err, |o| {
        let started = ops::page_server(o)?;
        // SAFETY: NULL or valid for writes, per the contract.
        unsafe {
            put(pid, started.pid);
            put(port, started.port);
        }
        Ok(())
    })
}

/// Starts `criu lazy-pages` for the restoring side of a lazy restore: it serves pages to the
/// tree that `ckpt_restore` with lazy-pages set brings up, fetching them from the page server
/// of `opts` (the dumping side of a lazy migration) or, when no page server is set, reading
/// them from the image path. With a status fd set (`ckpt_opts_set_status_fd`), the daemon
/// writes one byte to it once it is ready for the restore, and the fd passes to the daemon.
/// The daemon is a child of the caller, who must reap it; it exits once every page is served.
/// `*pid` receives its pid; it is set to 0 first and stays 0 when the call fails.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_lazy_pages_start(
    opts: *const ckpt_opts,
    pid: *mut i32,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    if pid.is_null() {
        // SAFETY: as above for `err`.
        return unsafe {
            report(
                err,
                &Failure::new(CKPT_ERR_NULL_ARGUMENT, "pid output pointer is NULL"),
            )
        };
    }
    // A failure must not leave the caller's old value where a pid to reap is expected.
    // SAFETY: checked non-NULL above.
    unsafe { put(pid, 0) };
    run(opts, false, err, |o| {
        let p = ops::lazy_pages_daemon(o)?;
        // SAFETY: checked non-NULL above.
        unsafe { put(pid, p) };
        Ok(())
    })
}
