//! Restoring: the restored tree's surroundings.

use super::*;

/// Skip sysctls that this kernel lacks on restore.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_weak_sysctls(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_weak_sysctls)
    }
}

/// Have CRIU pass the master of an orphaned pty back on restore.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_orphan_pts_master(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_orphan_pts_master)
    }
}

/// On restore, write the restored root pid to this file (atomically, by rename) (runc --pid-file).
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_pid_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "pid file", |o, s| o.set_pid_file(s))
    }
}

/// On restore, send the master of the restored tree's pty to this unix socket, as runc --console-socket does.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
/// CRIU sends a master only when the images hold a terminal whose master was outside the tree
/// (`orphan-pts-master`): for images without one, `ckpt_restore` never connects to the socket
/// and succeeds, so a listener must bound its wait by the restore's return. The path must be a
/// unix socket when the restore starts, as runc dials it before its restore: a missing path
/// (`CKPT_ERR_NOT_FOUND`) or one that is not a socket (`CKPT_ERR_INVALID_ARGUMENT`) is refused
/// before criu starts. `ckpt_container_restore` refuses the socket before CRIU (`CKPT_ERR_INVALID_ARGUMENT`) for a
/// container whose `process.terminal` is not true. The peer owns the master it receives; ckpt
/// keeps a copy of its own until the restore returns, so a peer that closes the master at once
/// hangs the terminal up only once the tree runs (its processes then get SIGHUP), never while
/// CRIU still builds the tree.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_console_socket(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "console socket", |o, s| {
            o.set_console_socket(s)
        })
    }
}

/// The root directory of the tree (CRIU --root).
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_root(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "root", |o, s| o.set_root(s))
    }
}

/// The SELinux mount context for restored mounts (runc --lsm-mount-context).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_lsm_mount_context(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "lsm mount context", |o, s| {
            o.set_lsm_mount_context(s)
        })
    }
}

/// On restore, the LSM profile as TYPE:NAME, e.g. "apparmor:my-profile" (runc --lsm-profile).
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_lsm_profile(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "lsm profile", |o, s| o.set_lsm_profile(s))
    }
}

/// Leave this namespace empty on restore; only "network" is accepted, as in runc (runc --empty-ns). The network namespace is not emptied unless asked.
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_empty_ns(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "namespace", |o, s| o.add_empty_ns(s))
    }
}

/// Append one word of the command CRIU execs after restore (CRIU --exec-cmd).
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_exec_cmd(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "exec command word", |o, s| o.add_exec_cmd(s))
    }
}

/// CPU capabilities CRIU checks on restore, as CRIU's cpu_cap bit mask.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cpu_cap(opts: *mut ckpt_opts, mask: u32) -> ckpt_status {
    boundary! {
        number(opts, mask, Options::set_cpu_cap)
    }
}

/// Restore: how long to wait, in milliseconds, before criu starts, for a pid the images need
/// that a zombie or a dying process still holds. Right after a dump that killed the tree, its
/// root stays a zombie until its parent (often init) reaps it, and a restore at once fails
/// with `CKPT_ERR_PID_IN_USE`. ckpt waits once, before CRIU runs, so the `pre-restore`
/// notification fires once. A pid held by a running process is not waited for. 0 (the
/// default) does not wait. The wait counts towards neither the operation timeout nor CRIU.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_restore_wait_ms(
    opts: *mut ckpt_opts,
    ms: u32,
) -> ckpt_status {
    boundary! {
        number(opts, ms, Options::set_restore_wait_ms)
    }
}

/// On restore, join an existing namespace instead of creating one: `ns` is one of net, pid,
/// mnt, ipc, uts, user, cgroup; `ns_file` its /proc/PID/ns/... path (bytes, need not be
/// UTF-8); `extra_opt` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_join_ns(
    opts: *mut ckpt_opts,
    ns: *const c_char,
    ns_file: *const c_char,
    extra_opt: *const c_char,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let (n, f, e) = unsafe {
                (
                    text(ns, "namespace")?,
                    path(ns_file, "namespace file")?,
                    opt_text(extra_opt, "extra option")?,
                )
            };
            Ok(o.add_join_ns(n, f, e)?)
        })
    }
}
