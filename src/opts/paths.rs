//! Where and how criu runs: paths, logging, timeouts, CRIU's configuration.

use super::*;

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
/// When true, no log file is named (CRIU would ignore this flag otherwise): criu's standard
/// error is a pipe ckpt reads, it keeps the last MiB, and a failure's
/// `ckpt_error_log_excerpt` quotes it (`ckpt_error_log_path` is then NULL). With a shell
/// job criu's standard error is the caller's; a page server's is /dev/null, so its log is
/// lost.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_log_to_stderr(
    opts: *mut ckpt_opts,
    value: bool,
) -> ckpt_status {
    boundary! {
        flag(opts, value, Options::set_log_to_stderr)
    }
}

/// Directory for the image files (runc --image-path); created 0700 when missing on dump, must exist on restore.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_image_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "image path", |o, s| o.set_image_path(s))
    }
}

/// Directory for CRIU's log and work files (runc --work-path); created 0700 when missing. Default: the image path.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_work_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "work path", |o, s| o.set_work_path(s))
    }
}

/// Images of a previous pre-dump, relative to and inside the image path (runc --parent-path). Checked when the dump starts: it must exist, stay inside the image path, and CRIU must have memory tracking.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_parent_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "parent path", |o, s| o.set_parent_path(s))
    }
}

/// The criu binary to run: a path, or a name looked up in PATH. Default: `criu` from PATH.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_criu_path(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "criu path", |o, s| o.set_criu_path(s))
    }
}

/// Talk to a running `criu service` on this unix socket instead of spawning `criu swrk`.
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_service_address(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "service address", |o, s| {
            o.set_service_address(s)
        })
    }
}

/// A CRIU configuration file for this request (CRIU's RPC config file).
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_config_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "config file", |o, s| o.set_config_file(s))
    }
}

/// CRIU's log file name inside the work directory, without '/'. Default: dump.log, restore.log, ...
/// The string is copied; NULL, empty, `.`, `..` or a name with '/' is refused
/// (`CKPT_ERR_INVALID_ARGUMENT`, NULL `CKPT_ERR_NULL_ARGUMENT`); a name is bytes and need not be
/// UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_log_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "log file name", |o, s| o.set_log_file(s))
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
/// When it expires criu is killed and reaped and the call returns `CKPT_ERR_TIMEOUT`. A
/// container checkpoint counts it from ckpt's own freezing of the container's cgroup, before
/// criu starts. 0 (the default) waits for ever.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_timeout_ms(opts: *mut ckpt_opts, ms: u32) -> ckpt_status {
    boundary! {
        number(opts, ms, Options::set_timeout_ms)
    }
}
