//! `ckpt_opts`: the options handle and its setters. Every setter validates first and changes
//! nothing when it fails; the reason is kept on the handle for `ckpt_opts_last_error`.
//! Strings are copied: the caller keeps ownership of every string it passes.

use std::ffi::{CString, c_char, c_int, c_void};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use super::{CKPT_ERR_NULL_ARGUMENT, CKPT_OK, Failure, ckpt_status, opt_text, text};
use ckpt::notify::Notification;
use ckpt::options::{Options, check_text};
use ckpt::{Code, Error, Result};

/// Options for one or more operations. Create with `ckpt_opts_new`, free with
/// `ckpt_opts_free`. Setters need exclusive access; operations only read it, so one handle may
/// serve several threads at once after it is set up.
pub struct ckpt_opts {
    pub(crate) inner: Options,
    last_error: Option<CString>,
}

impl ckpt_opts {
    /// The options the setters filled in: lets Rust code (the tests among it) see exactly
    /// what a sequence of C calls produced.
    pub fn options(&self) -> &Options {
        &self.inner
    }
}

/// Applies `f` to the options behind `opts`, recording the outcome for `ckpt_opts_last_error`.
fn apply<E: Into<Failure>>(
    opts: *mut ckpt_opts,
    f: impl FnOnce(&mut Options) -> std::result::Result<(), E>,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a live handle from ckpt_opts_new.
    let Some(h) = (unsafe { opts.as_mut() }) else {
        return CKPT_ERR_NULL_ARGUMENT;
    };
    match f(&mut h.inner) {
        Ok(()) => {
            h.last_error = None;
            CKPT_OK
        }
        Err(e) => {
            let f: Failure = e.into();
            h.last_error = CString::new(f.error.message.replace('\0', " ")).ok();
            f.status
        }
    }
}

/// `apply` for setters taking one string.
fn apply_text(
    opts: *mut ckpt_opts,
    s: *const c_char,
    what: &str,
    f: impl FnOnce(&mut Options, &str) -> Result<()>,
) -> ckpt_status {
    // SAFETY: the caller passes NULL or a NUL-terminated string valid for the call.
    apply(opts, |o| -> std::result::Result<(), Failure> {
        Ok(f(o, unsafe { text(s, what) }?)?)
    })
}

/// The body of every yes/no setter: they cannot fail but for a NULL handle.
fn flag(
    opts: *mut ckpt_opts,
    value: bool,
    set: fn(&mut Options, bool) -> &mut Options,
) -> ckpt_status {
    apply(opts, |o| {
        set(o, value);
        Ok::<(), Failure>(())
    })
}

/// The body of the number setters that take any value.
fn number(
    opts: *mut ckpt_opts,
    value: u32,
    set: fn(&mut Options, u32) -> &mut Options,
) -> ckpt_status {
    apply(opts, |o| {
        set(o, value);
        Ok::<(), Failure>(())
    })
}

/// Duplicates a caller's descriptor (close-on-exec) after checking it is open; the caller
/// keeps its own.
fn dup_caller_fd(fd: c_int, what: &str) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(Error::new(Code::BadFd, format!("{what} {fd} is negative")));
    }
    let dup = nix::fcntl::fcntl(
        // SAFETY: the number is only duplicated here, never closed or kept.
        unsafe { BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
    )
    .map_err(|e| Error::new(Code::BadFd, format!("{what} {fd} is not open: {e}")))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// A new options handle with nothing set. NULL only when memory is exhausted. The caller owns
/// it and frees it with `ckpt_opts_free`.
#[unsafe(no_mangle)]
pub extern "C" fn ckpt_opts_new() -> *mut ckpt_opts {
    boundary! {
        Box::into_raw(Box::new(ckpt_opts {
            inner: Options::new(),
            last_error: None,
        }))
    }
}

/// Frees an options handle and closes the descriptors it owns (a status fd not yet used, the
/// duplicates of inherited fds). NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_free(opts: *mut ckpt_opts) {
    boundary! {
        // SAFETY: per the contract, `opts` came from ckpt_opts_new and is freed once.
        unsafe { super::take(opts) }
    }
}

/// Why the last setter called on `opts` failed, or NULL after a success. Owned by the handle;
/// valid until the next setter call on it or `ckpt_opts_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_last_error(opts: *const ckpt_opts) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live, per the contract.
        match unsafe { opts.as_ref() } {
            Some(h) => h
                .last_error
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr()),
            None => std::ptr::null(),
        }
    }
}

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

/// Checkpoint and restore established TCP connections (runc --tcp-established).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tcp_established(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tcp_established)
    }
}

/// Skip in-flight TCP connections (runc --tcp-skip-in-flight).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tcp_skip_in_flight(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tcp_skip_in_flight)
    }
}

/// Restore TCP connections closed (runc restore --tcp-close).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tcp_close(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tcp_close)
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

/// Allow external unix sockets (runc --ext-unix-sk).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_ext_unix_sk(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_ext_unix_sk)
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

/// Checkpoint and restore file locks (runc --file-locks).
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

/// The old boolean form of cgroup management (prefer manage_cgroups_mode).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_manage_cgroups(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_manage_cgroups)
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

/// Run CRIU in unprivileged mode (CAP_CHECKPOINT_RESTORE).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_unprivileged(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_unprivileged)
    }
}

/// Have CRIU print its statistics to its log.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_display_stats(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_display_stats)
    }
}

/// Have CRIU log to its standard error instead of the log file.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_log_to_stderr(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_log_to_stderr)
    }
}

/// Encrypt page-server traffic with TLS.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls(opts: *mut ckpt_opts, value: bool) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tls)
    }
}

/// Do not verify the TLS peer's common name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_no_cn_verify(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_tls_no_cn_verify)
    }
}

/// Directory for the image files (runc --image-path); created 0700 when missing on dump, must exist on restore.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_image_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "image path", |o, s| o.set_image_path(s))
    }
}

/// Directory for CRIU's log and work files (runc --work-path); created 0700 when missing. Default: the image path.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_work_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "work path", |o, s| o.set_work_path(s))
    }
}

/// Images of a previous pre-dump, relative to and inside the image path (runc --parent-path). Checked when the dump starts: it must exist, stay inside the image path, and CRIU must have memory tracking.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_parent_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "parent path", |o, s| o.set_parent_path(s))
    }
}

/// The criu binary to run: a path, or a name looked up in PATH. Default: `criu` from PATH.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_criu_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "criu path", |o, s| o.set_criu_path(s))
    }
}

/// On restore, write the restored root pid to this file (atomically, by rename) (runc --pid-file).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_pid_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "pid file", |o, s| o.set_pid_file(s))
    }
}

/// On restore, send the master of the restored tree's pty to this unix socket, as runc --console-socket does.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_console_socket(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "console socket", |o, s| {
            o.set_console_socket(s)
        })
    }
}

/// Talk to a running `criu service` on this unix socket instead of spawning `criu swrk`.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_service_address(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "service address", |o, s| {
            o.set_service_address(s)
        })
    }
}

/// The root directory of the tree (CRIU --root).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_root(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "root", |o, s| o.set_root(s))
    }
}

/// The freezer cgroup to freeze the tree with (CRIU --freeze-cgroup).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_freeze_cgroup(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "freeze cgroup", |o, s| o.set_freeze_cgroup(s))
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

/// A CRIU configuration file for this request (CRIU's RPC config file).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_config_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "config file", |o, s| o.set_config_file(s))
    }
}

/// Cgroup properties to restore, in CRIU's --cgroup-props syntax.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cgroup_props(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "cgroup props", |o, s| o.set_cgroup_props(s))
    }
}

/// A file of cgroup properties (CRIU --cgroup-props-file).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cgroup_props_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "cgroup props file", |o, s| {
            o.set_cgroup_props_file(s)
        })
    }
}

/// A prepared cgroup yard directory (CRIU --cgroup-yard).
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cgroup_yard(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "cgroup yard", |o, s| o.set_cgroup_yard(s))
    }
}

/// The TLS CA certificate file for the page server.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_cacert(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "TLS CA certificate", |o, s| {
            o.set_tls_cacert(s)
        })
    }
}

/// The TLS certificate revocation list file.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_cacrl(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "TLS CA CRL", |o, s| o.set_tls_cacrl(s))
    }
}

/// The TLS certificate file.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_cert(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "TLS certificate", |o, s| o.set_tls_cert(s))
    }
}

/// The TLS private key file.
/// The string is copied; NULL, empty, or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_tls_key(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "TLS key", |o, s| o.set_tls_key(s))
    }
}

/// The page server to send pages to, or to serve lazy pages on: "ADDRESS:PORT", IPv6 in brackets ("[::1]:27277"), port 1..65535 (runc --page-server).
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_page_server(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "page server", |o, s| o.set_page_server(s))
    }
}

/// Cgroup management: "soft", "full", "strict" or "ignore" (runc --manage-cgroups-mode); always sent explicitly, even "ignore".
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_manage_cgroups_mode(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "cgroups mode", |o, s| {
            o.set_manage_cgroups_mode(s)
        })
    }
}

/// How CRIU locks the network: "iptables", "nftables" or "skip".
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_network_lock(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "network lock method", |o, s| {
            o.set_network_lock(s)
        })
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

/// CRIU's log file name inside the work directory, without '/'. Default: dump.log, restore.log, ...
/// The string is copied; NULL or invalid UTF-8 is refused.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_log_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "log file name", |o, s| o.set_log_file(s))
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

/// Dump only these cgroup controllers (CRIU --cgroup-dump-controller).
/// Each call adds one entry; the string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_cgroup_dump_controller(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_text(opts, value, "cgroup controller", |o, s| {
            o.add_cgroup_dump_controller(s)
        })
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
        apply_text(opts, value, "mount point", |o, s| o.add_skip_mount(s))
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
        apply_text(opts, value, "irmap scan path", |o, s| {
            o.add_irmap_scan_path(s)
        })
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

/// CRIU's log verbosity, 0 (none) to 4 (debug). Default 4, as runc, so failures can be
/// explained from the log.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_log_level(opts: *mut ckpt_opts, level: i32) -> ckpt_status {
    boundary! {
        apply(opts, |o| o.set_log_level(level))
    }
}

/// CRIU's own timeout in seconds for freezing and collecting the tree (CRIU --timeout).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_criu_timeout(
    opts: *mut ckpt_opts,
    seconds: u32,
) -> ckpt_status {
    boundary! {
        number(opts, seconds, Options::set_criu_timeout)
    }
}

/// How long ckpt waits for CRIU to answer, in milliseconds, for each operation as a whole.
/// When it expires criu is killed and reaped and the call returns `CKPT_ERR_TIMEOUT`.
/// 0 (the default) waits for ever.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_timeout_ms(opts: *mut ckpt_opts, ms: u32) -> ckpt_status {
    boundary! {
        number(opts, ms, Options::set_timeout_ms)
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

/// CPU capabilities CRIU checks on restore, as CRIU's cpu_cap bit mask.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cpu_cap(opts: *mut ckpt_opts, mask: u32) -> ckpt_status {
    boundary! {
        number(opts, mask, Options::set_cpu_cap)
    }
}

/// A descriptor to signal readiness on (runc --status-fd): when CRIU reports `status-ready`
/// (a lazy-pages dump whose page server is listening), ckpt writes one `\0` byte to it and
/// closes it. It must be open for writing (O_WRONLY or O_RDWR) and not 0, 1 or 2.
/// Ownership passes to the options on success: ckpt closes it after writing, when it is
/// replaced, or in `ckpt_opts_free`. On failure the caller still owns it.
/// After a successful call the descriptor is the library's: the caller must not use or close it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_status_fd(opts: *mut ckpt_opts, fd: c_int) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            ckpt::options::check_writable_fd("status fd", fd)?;
            if o.owns_fd(fd) {
                return Err(Error::new(
                    Code::BadFd,
                    format!(
                        "status fd {fd} already belongs to these options; it is not the caller's to give"
                    ),
                ));
            }
            // SAFETY: checked open above, and not one the handle owns already; the caller hands
            // ownership over on success.
            o.set_status_fd(unsafe { OwnedFd::from_raw_fd(fd) })
        })
    }
}

/// CRIU's pidfd store for iterative pre-dumps: an AF_UNIX SOCK_DGRAM socket, the same one for
/// every iteration, in which CRIU keeps pidfds of the dumped tasks to detect pid reuse between
/// iterations. ckpt duplicates `fd`; the caller keeps its own.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_pidfd_store_sk(
    opts: *mut ckpt_opts,
    fd: c_int,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            let dup = dup_caller_fd(fd, "pidfd store socket")?;
            o.set_pidfd_store_sk(dup)
        })
    }
}

/// Maps an external mount: on dump, `key` is the mount point inside the tree and `value` the
/// name to record; on restore, `key` is that name and `value` the source path to mount
/// (runc's bind mounts). Both strings are copied.
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
                    text(key, "external mount key")?,
                    text(value, "external mount value")?,
                )
            };
            Ok(o.add_ext_mount(k, v)?)
        })
    }
}

/// Sets the cgroup root for a controller on restore; `ctrl` may be NULL for all controllers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_cgroup_root(
    opts: *mut ckpt_opts,
    ctrl: *const c_char,
    path: *const c_char,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let (c, p) = unsafe {
                (
                    opt_text(ctrl, "cgroup controller")?,
                    text(path, "cgroup root")?,
                )
            };
            Ok(o.add_cgroup_root(c, p)?)
        })
    }
}

/// A veth pair to restore: `if_in` inside the tree, `if_out` outside (deprecated by CRIU in
/// favour of `ckpt_opts_add_external`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_veth_pair(
    opts: *mut ckpt_opts,
    if_in: *const c_char,
    if_out: *const c_char,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let (a, b) = unsafe {
                (
                    text(if_in, "veth inside name")?,
                    text(if_out, "veth outside name")?,
                )
            };
            Ok(o.add_veth_pair(a, b)?)
        })
    }
}

/// An external unix socket by inode (deprecated by CRIU in favour of `ckpt_opts_add_external`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_unix_sk_ino(
    opts: *mut ckpt_opts,
    inode: u32,
) -> ckpt_status {
    boundary! {
        number(opts, inode, Options::add_unix_sk_ino)
    }
}

/// On restore, join an existing namespace instead of creating one: `ns` is one of net, pid,
/// mnt, ipc, uts, user, cgroup; `ns_file` its /proc/PID/ns/... path; `extra_opt` may be NULL.
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
                    text(ns_file, "namespace file")?,
                    opt_text(extra_opt, "extra option")?,
                )
            };
            Ok(o.add_join_ns(n, f, e)?)
        })
    }
}

/// On restore, give the restored tree the caller's descriptor `fd` where the images name
/// `key` (CRIU --inherit-fd, e.g. "pipe:[12345]"). ckpt duplicates `fd`; the caller keeps its
/// own. Inside criu the duplicate gets a number that collides with nothing else passed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_add_inherit_fd(
    opts: *mut ckpt_opts,
    key: *const c_char,
    fd: c_int,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| -> std::result::Result<(), Failure> {
            // SAFETY: NULL or NUL-terminated, per the contract.
            let k = unsafe { text(key, "inherit-fd key") }?;
            check_text("inherit-fd key", k)?;
            let dup = dup_caller_fd(fd, "inherit fd")?;
            Ok(o.add_inherit_fd(k, dup)?)
        })
    }
}

/// A notification as a callback sees it. Valid only during the callback.
pub struct ckpt_notification {
    script: CString,
    pid: i32,
    fd: c_int,
    error: std::cell::RefCell<Option<String>>,
}

/// Called for each notification CRIU sends (pre-dump, post-dump, network-lock,
/// network-unlock, setup-namespaces, post-restore, orphan-pts-master, status-ready, ...).
/// Return 0 to let CRIU go on; anything else aborts the operation, which then fails with
/// `CKPT_ERR_CALLBACK`. `userdata` is the pointer given to `ckpt_opts_set_notify`, untouched.
pub type ckpt_notify_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, notification: *const ckpt_notification) -> c_int,
>;

struct CNotify {
    cb: unsafe extern "C" fn(*mut c_void, *const ckpt_notification) -> c_int,
    userdata: *mut c_void,
}

// SAFETY: ckpt never dereferences `userdata`; the caller promises in `ckpt_opts_set_notify`
// that the callback may be called from the threads that run operations with this handle.
unsafe impl Send for CNotify {}
// SAFETY: as above; ckpt only passes the pointer back.
unsafe impl Sync for CNotify {}

impl CNotify {
    fn call(&self, n: &Notification) -> std::result::Result<(), String> {
        let note = ckpt_notification {
            script: CString::new(n.script).unwrap_or_default(),
            pid: n.pid,
            fd: n.fd.map_or(-1, |f| std::os::fd::AsRawFd::as_raw_fd(&f)),
            error: std::cell::RefCell::new(None),
        };
        // SAFETY: the caller registered this function and its userdata for exactly this call.
        let rc = unsafe { (self.cb)(self.userdata, &note) };
        if rc == 0 {
            Ok(())
        } else {
            Err(note
                .error
                .take()
                .unwrap_or_else(|| format!("the callback returned {rc}")))
        }
    }
}

/// Registers a notification callback with `userdata` passed back on every call; NULL `cb`
/// removes it. ckpt never reads `userdata`. The callback runs on the thread that called the
/// operation, and may run on several threads at once when the handle is shared.
/// `cb` must be safe to call with `userdata`, from any thread that runs an operation with this
/// handle, for as long as the handle is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_notify(
    opts: *mut ckpt_opts,
    cb: ckpt_notify_fn,
    userdata: *mut c_void,
) -> ckpt_status {
    boundary! {
        apply(opts, |o| {
            o.set_notify(cb.map(|cb| {
                let c = CNotify { cb, userdata };
                Arc::new(move |n: &Notification| c.call(n)) as Arc<ckpt::options::NotifyFn>
            }));
            Ok::<(), Failure>(())
        })
    }
}

/// The notification's name, e.g. "post-dump". Owned by the notification.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_script(n: *const ckpt_notification) -> *const c_char {
    boundary! {
        // SAFETY: NULL or live for the callback's duration, per the contract.
        unsafe { n.as_ref() }.map_or(std::ptr::null(), |n| n.script.as_ptr())
    }
}

/// The pid CRIU attached to the notification (the restored root on post-restore), else 0.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_pid(n: *const ckpt_notification) -> i32 {
    boundary! {
        // SAFETY: NULL or live for the callback's duration, per the contract.
        unsafe { n.as_ref() }.map_or(0, |n| n.pid)
    }
}

/// The descriptor that came with the notification (the pty master on orphan-pts-master), or
/// -1. Owned by ckpt and closed after the callback returns: `dup` it to keep it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_fd(n: *const ckpt_notification) -> c_int {
    boundary! { or -1 =>
        // SAFETY: NULL or live for the callback's duration, per the contract.
        unsafe { n.as_ref() }.map_or(-1, |n| n.fd)
    }
}

/// Sets the message the operation's error will carry when this callback returns non-zero.
/// The string is copied.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_notification_set_error(
    n: *const ckpt_notification,
    message: *const c_char,
) -> ckpt_status {
    boundary! {
        // SAFETY: NULL or live for the callback's duration, per the contract.
        let Some(n) = (unsafe { n.as_ref() }) else {
            return CKPT_ERR_NULL_ARGUMENT;
        };
        // SAFETY: NULL or NUL-terminated, per the contract.
        match unsafe { text(message, "message") } {
            Ok(m) => {
                *n.error.borrow_mut() = Some(m.to_string());
                CKPT_OK
            }
            Err(e) => e.status,
        }
    }
}
