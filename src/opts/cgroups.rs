//! Control groups.

use super::*;

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

/// The freezer cgroup to freeze the tree with (CRIU --freeze-cgroup).
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_freeze_cgroup(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "freeze cgroup", |o, s| o.set_freeze_cgroup(s))
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
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cgroup_props_file(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "cgroup props file", |o, s| {
            o.set_cgroup_props_file(s)
        })
    }
}

/// A prepared cgroup yard directory (CRIU --cgroup-yard).
/// The string is copied; NULL or empty is refused; a path is bytes and need not be UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ckpt_opts_set_cgroup_yard(
    opts: *mut ckpt_opts,
    value: *const c_char,
) -> ckpt_status {
    boundary! {
        apply_path(opts, value, "cgroup yard", |o, s| o.set_cgroup_yard(s))
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

/// Sets the cgroup root for a controller on restore; `ctrl` may be NULL for all controllers
/// (an empty `ctrl` names none and is refused). `path` is bytes and need not be UTF-8; `ctrl`
/// must be.
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
                    crate::path(path, "cgroup root")?,
                )
            };
            Ok(o.add_cgroup_root(c, p)?)
        })
    }
}
