//! Checkpointing: what happens to the tree, memory, files and mounts.

use super::*;

/// Leave the tree running after the dump (runc --leave-running).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_leave_running(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_leave_running)
    }
}

/// Leave the tree stopped after the dump instead of killing or resuming it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_leave_stopped(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_leave_stopped)
    }
}

/// Allow link remaps of deleted-but-open files (runc --link-remap).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_link_remap(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_link_remap)
    }
}

/// Allow a tree attached to a shell's session and terminal (runc --shell-job).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_shell_job(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_shell_job)
    }
}

/// Dump or restore with lazy pages served over the page server (runc --lazy-pages).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_lazy_pages(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_lazy_pages)
    }
}

/// Checkpoint and restore file locks (runc --file-locks). A container restore whose images
/// hold file locks sets it by itself when it was not set (see docs/containers.md).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_file_locks(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_file_locks)
    }
}

/// Make `ckpt_checkpoint` a single pre-dump (runc --pre-dump); needs memory tracking.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_pre_dump(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_pre_dump)
    }
}

/// Ask CRIU to track memory changes for a later incremental dump.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_track_mem(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_track_mem)
    }
}

/// Deduplicate pages against the parent images (runc --auto-dedup).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_auto_dedup(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_auto_dedup)
    }
}

/// Let CRIU use any path to a device file when the original is gone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_evasive_devices(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_evasive_devices)
    }
}

/// Force resolving inotify and fsnotify watch names.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_force_irmap(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_force_irmap)
    }
}

/// Let CRIU treat mounts from outside the mount namespace as external.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_auto_ext_mnt(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_auto_ext_mnt)
    }
}

/// Allow external mounts' sharing groups.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_ext_sharing(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_ext_sharing)
    }
}

/// Allow external mounts' master groups.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_ext_masters(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_ext_masters)
    }
}

/// Restore mount namespaces in CRIU's compatibility mode.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_mntns_compat_mode(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_mntns_compat_mode)
    }
}

/// Skip checking file permissions on restore.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_skip_file_rwx_check(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_skip_file_rwx_check)
    }
}

/// The container's state as the runtime sees it: "created", "running", "paused" or "stopped". A checkpoint of a created or stopped container is refused; with a status set, a pid that no longer exists or is a zombie counts as stopped.
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_container_status(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "container status", |o, s| {
            o.set_container_status(s)
        })
    }
}

/// How pre-dump reads memory: "splice" or "read".
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_pre_dump_mode(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "pre-dump mode", |o, s| o.set_pre_dump_mode(s))
    }
}

/// Mark a resource external, in CRIU's --external syntax, e.g. "net[4026531992]:extRootNetNS".
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_external(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "external resource", |o, s| o.add_external(s))
    }
}

/// Do not dump this mount point (CRIU --skip-mnt).
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_skip_mount(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "mount point", |o, s| o.add_skip_mount(s))
    }
}

/// Dump mounts of this file system type's contents (CRIU --enable-fs).
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_enable_fs(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "file system", |o, s| o.add_enable_fs(s))
    }
}

/// Where to look for inotify watch targets (CRIU --irmap-scan-path).
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_irmap_scan_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "irmap scan path", |o, s| {
            o.add_irmap_scan_path(s)
        })
    }
}

/// The largest ghost (deleted but open) file CRIU may store, in bytes (CRIU --ghost-limit).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_ghost_limit(
    opts: *mut ckpt_opts,
    bytes: u32,
) -> ckpt_status {
    boundary! {
        number(opts, bytes, Options::set_ghost_limit)
    }
}

/// Maps an external mount: on dump, `key` is the mount point inside the tree and `value` the
/// name to record; on restore, `key` is that name and `value` the source path to mount
/// (runc's bind mounts). Both strings are copied; they are paths or names, bytes that need
/// not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_ext_mount(
    opts: *mut ckpt_opts,
    key: *const c_char,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let (k, v) = unsafe {
                (
                    path(key, "external mount key")?,
                    path(value, "external mount value")?,
                )
            };
            Ok(o.add_ext_mount(k, v)?)
        })
    }
}
