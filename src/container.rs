//! The container layer as C functions: a `ckpt_container` handle names the container (bundle
//! and init pid, or a runtime's container id); the operations take it with a `ckpt_opts` for
//! the user's flags and report through the same error object and statistics as the rest.

use std::ffi::{CString, c_char, c_int};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use super::error::ckpt_error;
use super::opts::ckpt_opts;
use super::stats::ckpt_stats;
use super::{CKPT_ERR_NULL_ARGUMENT, Failure, ckpt_status, give, opt_text, put, take, text};
use super::{Settable, operation, set_on};
use ckpt::container::{self, RestoreRequest};
use ckpt::{Code, Error, Result};

/// A container to checkpoint or restore: its bundle, its init's pid (checkpoint), the
/// descriptors for its stdio (restore) and whether its network namespace keeps its contents.
/// Create with `ckpt_container_new`, free with `ckpt_container_free`.
pub struct ckpt_container {
    bundle: Option<PathBuf>,
    pid: i32,
    keep_network: bool,
    /// The runtime named by `ckpt_container_set_runtime`: the images are keyed for its restore.
    runtime: Option<String>,
    /// When the runtime created the container, from its state (for an archive's config.dump).
    created: Option<String>,
    stdio: [Option<OwnedFd>; 3],
    last_error: Option<CString>,
}

/// A new container handle with nothing set. The caller owns it (free with
/// `ckpt_container_free`).
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_container_new() -> *mut ckpt_container {
    boundary! {
        Box::into_raw(Box::new(ckpt_container {
            bundle: None,
            pid: 0,
            keep_network: false,
            runtime: None,
            created: None,
            stdio: [None, None, None],
            last_error: None,
        }))
    }
}

/// Frees a container handle and the descriptors it holds; NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_free(c: *mut ckpt_container) {
    boundary! {
        // SAFETY: per the contract.
        unsafe { take(c) }
    }
}

impl ckpt_container {
    /// What a restore from an archive takes from the handle: keep-network and the stdio
    /// descriptors (consumed).
    pub(crate) fn take_restore_parts(&mut self) -> (bool, [Option<OwnedFd>; 3]) {
        (self.keep_network, std::mem::take(&mut self.stdio))
    }

    /// When the runtime created the container, when it was found from the runtime's state.
    pub(crate) fn created(&self) -> Option<&str> {
        self.created.as_deref()
    }

    /// The container's bundle, as set or found from the runtime's state.
    pub(crate) fn bundle_path(&self) -> Option<&std::path::Path> {
        self.bundle.as_deref()
    }
}

impl Settable for ckpt_container {
    fn last_error(&mut self) -> &mut Option<CString> {
        &mut self.last_error
    }
}

fn with(
    c: *mut ckpt_container,
    f: impl FnOnce(&mut ckpt_container) -> std::result::Result<(), Failure>,
) -> ckpt_status {
    set_on(c, f)
}

/// Why the last setter on `c` failed, or NULL after a success (or for a NULL `c`). Valid until
/// the next call on `c`; owned by the handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_last_error(c: *const ckpt_container) -> *const c_char {
    boundary! {
        // SAFETY: per the contract.
        match unsafe { c.as_ref() }.and_then(|h| h.last_error.as_ref()) {
            Some(s) => s.as_ptr(),
            None => std::ptr::null(),
        }
    }
}

/// The bundle directory (holding config.json). Copied; checked when an operation runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_set_bundle(
    c: *mut ckpt_container,
    dir: *const c_char,
) -> ckpt_status {
    boundary! {
        with(c, |h| {
            // SAFETY: per the contract.
            let d = unsafe { text(dir, "bundle") }?;
            ckpt::options::check_text("bundle", d)?;
            h.bundle = Some(d.into());
            // Another bundle may be another container: the runtime's creation time is not its.
            h.created = None;
            Ok(())
        })
    }
}

/// The container's init pid, as the host sees it (checkpoint).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_set_pid(c: *mut ckpt_container, pid: i32) -> ckpt_status {
    boundary! {
        with(c, |h| {
            if pid <= 0 {
                return Err(Error::invalid(format!("pid {pid} is not a process id")).into());
            }
            h.pid = pid;
            Ok(())
        })
    }
}

/// Finds container `id` of `runtime` ("runc" or "crun") in the runtime's state under `root`
/// (NULL: /run/runc or /run/crun; an empty string is refused) and sets the bundle and pid from it; a checkpoint then keys
/// its images so that runtime's own restore accepts them. A container created but not yet
/// started (the runtime's `exec.fifo` still there) is refused with `CKPT_ERR_INVALID_STATE`:
/// its pid is the runtime's own init. The state file (runc's `state.json`, crun's `status`)
/// must be a regular file of at most 4 MiB: a FIFO, directory, socket, device or symbolic link
/// there, or a larger file, is refused at once with `CKPT_ERR_INVALID_ARGUMENT` naming it
/// (never waited on). Nothing changes when it fails.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_set_runtime(
    c: *mut ckpt_container,
    runtime: *const c_char,
    root: *const c_char,
    id: *const c_char,
) -> ckpt_status {
    boundary! {
        with(c, |h| {
            // SAFETY: per the contract.
            let (rt, root, id) = unsafe {
                (
                    text(runtime, "runtime")?,
                    opt_text(root, "state root")?,
                    text(id, "container id")?,
                )
            };
            let l = container::runtime::locate(rt, root.map(std::path::Path::new), id)?;
            h.bundle = Some(l.bundle);
            h.pid = l.pid;
            h.runtime = Some(rt.to_string());
            h.created = l.created;
            Ok(())
        })
    }
}

/// Keep the network namespace's contents (default: it is dumped and restored empty, as runc).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_set_keep_network(
    c: *mut ckpt_container,
    keep: bool,
) -> ckpt_status {
    boundary! {
        with(c, |h| {
            h.keep_network = keep;
            Ok(())
        })
    }
}

/// For restore: the descriptor the restored init gets as its stdin (0), stdout (1) or stderr
/// (2) where that was a pipe at checkpoint (descriptors.json). ckpt duplicates `fd`; the caller
/// keeps its own.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_container_set_stdio_fd(
    c: *mut ckpt_container,
    which: c_int,
    fd: c_int,
) -> ckpt_status {
    boundary! {
        with(c, |h| {
            if !(0..=2).contains(&which) {
                return Err(Error::invalid(format!(
                    "stdio number {which} is not 0, 1 or 2"
                ))
                .into());
            }
            if fd < 0 {
                return Err(Error::new(
                    Code::BadFd,
                    format!("stdio fd {fd} is negative"),
                )
                .into());
            }
            let dup = nix::fcntl::fcntl(
                // SAFETY: the number is only duplicated here, never closed or kept.
                unsafe { BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
            )
            .map_err(|e| Error::new(Code::BadFd, format!("stdio fd {fd} is not open: {e}")))?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nobody else owns.
            h.stdio[which as usize] = Some(unsafe { OwnedFd::from_raw_fd(dup) });
            Ok(())
        })
    }
}

/// Runs `f` with the container and the options as an operation (see `operation`).
fn run(
    c: *mut ckpt_container,
    opts: *mut ckpt_opts,
    err: *mut *mut ckpt_error,
    f: impl FnOnce(&mut ckpt_container, &mut ckpt::Options) -> Result<()>,
) -> ckpt_status {
    operation(err, || {
        // SAFETY: the caller passes NULL or live handles used by no other thread.
        match unsafe { (c.as_mut(), opts.as_mut()) } {
            (Some(h), Some(o)) => Ok(f(h, &mut o.inner)?),
            _ => Err(Failure::new(
                CKPT_ERR_NULL_ARGUMENT,
                "container or options handle is NULL",
            )),
        }
    })
}

fn bundle(h: &ckpt_container) -> Result<PathBuf> {
    h.bundle
        .clone()
        .ok_or_else(|| Error::invalid("the container has no bundle: call ckpt_container_set_bundle or ckpt_container_set_runtime"))
}

fn pid(h: &ckpt_container) -> Result<i32> {
    if h.pid > 0 {
        Ok(h.pid)
    } else {
        Err(Error::invalid(
            "the container has no init pid: call ckpt_container_set_pid or ckpt_container_set_runtime",
        ))
    }
}

fn request(h: &mut ckpt_container) -> Result<RestoreRequest> {
    Ok(RestoreRequest {
        bundle: bundle(h)?,
        keep_network: h.keep_network,
        stdio: std::mem::take(&mut h.stdio),
        hooks: None,
        criu_root: None,
    })
}

/// Checkpoints the container into the options' image path, with the container-level CRIU
/// options worked out from the bundle and the running init (docs/containers.md), beside the
/// user's flags in `opts`. Writes descriptors.json and ckpt-container.json into the image
/// path. `opts` is changed during the call (the container-level options are set on it, then
/// put back) and left as it was: like a setter, the call needs `opts` to itself, so no other
/// thread may use it meanwhile. A second checkpoint of the same container (its freezer
/// cgroup) while one runs, in any process, is refused with `CKPT_ERR_INVALID_STATE` before it
/// touches the container, and so is one whose v1 freezer cgroup stays FREEZING for a second
/// (neither running nor paused: someone else is freezing it). A container found THAWED is
/// left THAWED on every path, whoever froze it meanwhile; one found FROZEN (paused) stays
/// FROZEN. A container created but not started (its init holds the runtime's `exec.fifo`, or
/// still runs the runtime's own binary 500 ms on, as one just started may) is refused with
/// `CKPT_ERR_INVALID_STATE` before CRIU, as is one with a stopped task (SIGSTOP) in its v1
/// freezer cgroup, whose dump CRIU could never finish, and a terminal container whose
/// terminal was hung up (its master closed: `/dev/console` is bound from a pts that no longer
/// exists, which no restore can bring back). Statistics and errors as for
/// `ckpt_checkpoint`; when CRIU refuses a unix socket connected to one outside the container
/// (no `ckpt_opts_set_ext_unix_sk`, a stream connection, a peer outside the container's
/// network namespace), the message adds which socket it is and what can be done
/// (docs/containers.md, "Resources outside the container").
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_container_checkpoint(
    c: *mut ckpt_container,
    opts: *mut ckpt_opts,
    stats: *mut *mut ckpt_stats,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a location valid for a pointer write.
    unsafe { put(stats, std::ptr::null_mut()) };
    run(c, opts, err, |h, o| {
        let (_, s) = container::checkpoint_for(
            o,
            &bundle(h)?,
            pid(h)?,
            h.keep_network,
            h.runtime.as_deref(),
        )?;
        // SAFETY: as above.
        unsafe { give(stats, ckpt_stats::of(s)) };
        Ok(())
    })
}

/// Restores the checkpoint in the options' image path into the container's bundle: the rootfs
/// bound for CRIU, missing mountpoints created, the external mounts, namespaces, cgroups and
/// stdio worked out from the bundle and the checkpoint's record (or runc's descriptors.json).
/// The restored init becomes the caller's child; `*pid` receives it, so `pid` must not be NULL
/// (`CKPT_ERR_NULL_ARGUMENT` before anything runs; the stdio descriptors are still consumed).
/// The stdio descriptors set
/// on `c` are consumed (closed by the handle) by any call on a handle with a bundle, also one
/// that fails: set them again before retrying. The runtime's hooks run from
/// `ckpt_opts_set_notify`'s callback at `setup-namespaces` and `post-restore`. A terminal
/// container (`process.terminal`) needs a console socket (`ckpt_opts_set_console_socket`) or
/// a notification callback to receive its new terminal master; without either it is refused
/// before CRIU starts (`CKPT_ERR_INVALID_ARGUMENT`); so is a console socket set for a container
/// without a terminal, which nothing would ever be sent to. A container whose v1 cgroups
/// (`linux.cgroupsPath`) already hold processes, another container running there, is refused
/// before CRIU starts (`CKPT_ERR_INVALID_STATE`), and so is a restore into a v1 freezer cgroup
/// that is not THAWED (a paused container's), where the restored tasks would freeze for good,
/// a restore of a bundle another restore (in any process) is restoring at that time, and a
/// user-namespaced container's restore from an image directory another such restore is using
/// (it has given the directory to that container's root for its length). `opts` needs to be the call's alone, as for `ckpt_container_checkpoint`. Statistics and
/// errors as for `ckpt_restore` (when CRIU fails on a file open at the checkpoint whose size
/// changed since, or on a unix socket outside the container it cannot connect again, the
/// message adds which host file or socket it is and what can be done); `*stats` also lists the cgroup directories created for this
/// restore (`ckpt_stats_made_cgroup_count`, `ckpt_stats_made_cgroup_at`), which the caller
/// removes after the container is gone, deepest first (a failed restore removes them itself).
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_container_restore(
    c: *mut ckpt_container,
    opts: *mut ckpt_opts,
    pid: *mut i32,
    stats: *mut *mut ckpt_stats,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or locations valid for writes.
    unsafe {
        put(stats, std::ptr::null_mut());
        put(pid, 0);
    }
    if pid.is_null() || opts.is_null() {
        // A restored init is the caller's child to reap: never make one whose pid is dropped.
        // Either refusal consumes the stdio descriptors, as every other one does.
        // SAFETY: NULL or a live handle used by no other thread, per the contract.
        if let Some(h) = unsafe { c.as_mut() } {
            drop(h.take_restore_parts());
        }
        let why = if pid.is_null() {
            "pid output pointer is NULL"
        } else {
            "container or options handle is NULL"
        };
        // SAFETY: `err` is NULL or valid for a pointer write, per the contract.
        return unsafe { super::error::report(err, &Failure::new(CKPT_ERR_NULL_ARGUMENT, why)) };
    }
    run(c, opts, err, |h, o| {
        let (_, r) = container::restore(o, request(h)?)?;
        // SAFETY: as above.
        unsafe { super::ops::hand_restored(r, pid, stats) };
        Ok(())
    })
}

/// Explains, without doing anything: the checkpoint (`restore` false) or restore (true) the
/// container layer would run, as JSON: every CRIU option with the reason it was derived, the
/// host actions, the notes. `*json` receives a string the caller frees with
/// `ckpt_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn ckpt_container_explain(
    c: *mut ckpt_container,
    opts: *mut ckpt_opts,
    restore: bool,
    json: *mut *mut c_char,
    err: *mut *mut ckpt_error,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a location valid for a pointer write.
    unsafe { put(json, std::ptr::null_mut()) };
    run(c, opts, err, |h, o| {
        let p = if restore {
            let req = RestoreRequest {
                bundle: bundle(h)?,
                keep_network: h.keep_network,
                stdio: [0, 1, 2].map(|i| h.stdio[i].as_ref().and_then(|f| f.try_clone().ok())),
                hooks: None,
                criu_root: None,
            };
            container::plan_restore(o, &req)?
        } else {
            container::plan_checkpoint_for(
                o,
                &bundle(h)?,
                pid(h)?,
                h.keep_network,
                h.runtime.as_deref(),
            )?
        };
        let s = CString::new(p.to_json())
            .map_err(|_| Error::invalid("explain output holds a NUL byte"))?;
        // SAFETY: as above.
        unsafe { super::give_string(json, s) };
        Ok(())
    })
}

/// Frees a string ckpt returned (`ckpt_container_explain`); NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_string_free(s: *mut c_char) {
    boundary! {
        if !s.is_null() {
            // SAFETY: per the contract, it came from CString::into_raw.
            drop(unsafe { CString::from_raw(s) });
        }
    }
}
