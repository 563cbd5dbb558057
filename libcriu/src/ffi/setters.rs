//! criu.h's setters, global (`criu_set_*`, on the shared options) and local
//! (`criu_local_set_*`, on a `criu_opts` handle). Each pair shares one safe body. Unlike
//! libcriu, every setter copies what it is given and frees what it replaces. Strings are sent
//! as the bytes they are (UTF-8 or not, as libcriu). A value refused here (NULL, empty, a log
//! name with '/', ...) returns -EINVAL and is remembered: the next operation that CRIU would
//! refuse fails the same way (-EBADE, errno EBADRQC) instead of running without it.

use std::ffi::{c_char, c_int, c_uint};

use super::{
    bytes, bytes_or_null, criu_opts, global_int, global_set, global_void, local_int, local_set,
    local_void, path_or_null,
};
use crate::opts::{Opt, Refused, SetResult, check_text};

/// `void criu_set_X(bool)` / `void criu_local_set_X(criu_opts *, bool)` for each flag of
/// criu_opts: sent explicitly, so `false` reaches CRIU too.
macro_rules! flags {
    ($($field:ident: $global:ident, $local:ident;)*) => {$(
        #[unsafe(no_mangle)]
        pub extern "C" fn $global(val: bool) {
            global_void(|o| o.rpc.$field = Some(val))
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn $local(opts: *mut criu_opts, val: bool) {
            local_void(opts, |o| o.rpc.$field = Some(val))
        }
    )*};
}

flags! {
    leave_running: criu_set_leave_running, criu_local_set_leave_running;
    ext_unix_sk: criu_set_ext_unix_sk, criu_local_set_ext_unix_sk;
    tcp_established: criu_set_tcp_established, criu_local_set_tcp_established;
    tcp_skip_in_flight: criu_set_tcp_skip_in_flight, criu_local_set_tcp_skip_in_flight;
    tcp_close: criu_set_tcp_close, criu_local_set_tcp_close;
    weak_sysctls: criu_set_weak_sysctls, criu_local_set_weak_sysctls;
    evasive_devices: criu_set_evasive_devices, criu_local_set_evasive_devices;
    shell_job: criu_set_shell_job, criu_local_set_shell_job;
    skip_file_rwx_check: criu_set_skip_file_rwx_check, criu_local_set_skip_file_rwx_check;
    unprivileged: criu_set_unprivileged, criu_local_set_unprivileged;
    orphan_pts_master: criu_set_orphan_pts_master, criu_local_set_orphan_pts_master;
    file_locks: criu_set_file_locks, criu_local_set_file_locks;
    track_mem: criu_set_track_mem, criu_local_set_track_mem;
    auto_dedup: criu_set_auto_dedup, criu_local_set_auto_dedup;
    force_irmap: criu_set_force_irmap, criu_local_set_force_irmap;
    link_remap: criu_set_link_remap, criu_local_set_link_remap;
    manage_cgroups: criu_set_manage_cgroups, criu_local_set_manage_cgroups;
    auto_ext_mnt: criu_set_auto_ext_mnt, criu_local_set_auto_ext_mnt;
    ext_sharing: criu_set_ext_sharing, criu_local_set_ext_sharing;
    ext_masters: criu_set_ext_masters, criu_local_set_ext_masters;
    mntns_compat_mode: criu_set_mntns_compat_mode, criu_local_set_mntns_compat_mode;
}

/// `void` setters of one number: `global, local (value: C type) => what it sets;`.
macro_rules! numbers {
    ($($global:ident, $local:ident ($v:ident: $ty:ty) => |$o:ident| $body:expr;)*) => {$(
        #[unsafe(no_mangle)]
        pub extern "C" fn $global($v: $ty) {
            global_void(|$o| $body)
        }

        #[unsafe(no_mangle)]
        pub extern "C" fn $local(opts: *mut criu_opts, $v: $ty) {
            local_void(opts, |$o| $body)
        }
    )*};
}

numbers! {
    criu_set_pid, criu_local_set_pid (v: c_int) => |o| o.rpc.pid = Some(v);
    criu_set_images_dir_fd, criu_local_set_images_dir_fd (v: c_int) => |o| o.rpc.images_dir_fd = v;
    criu_set_work_dir_fd, criu_local_set_work_dir_fd (v: c_int) => |o| o.rpc.work_dir_fd = Some(v);
    criu_set_log_level, criu_local_set_log_level (v: c_int) => |o| o.rpc.log_level = Some(v);
    criu_set_cpu_cap, criu_local_set_cpu_cap (v: c_uint) => |o| o.rpc.cpu_cap = Some(v);
    // Fixed: libcriu stores the timeout without marking it present, so CRIU never sees it.
    criu_set_timeout, criu_local_set_timeout (v: c_uint) => |o| o.rpc.timeout = Some(v);
    criu_set_ghost_limit, criu_local_set_ghost_limit (v: c_uint) => |o| o.rpc.ghost_limit = Some(v);
    criu_set_pidfd_store_sk, criu_local_set_pidfd_store_sk (v: c_int) =>
        |o| o.rpc.pidfd_store_sk = Some(v);
    // CRIU reads the namespace mask as unsigned; the bits pass through as they are.
    criu_set_empty_ns, criu_local_set_empty_ns (v: c_int) => |o| o.rpc.empty_ns = Some(v as u32);
    criu_set_service_fd, criu_local_set_service_fd (v: c_int) => |o| o.set_service_fd(v);
}

/// `enum criu_cg_mode` is int-sized in C. The setter returns nothing; a value CRIU would
/// refuse is remembered for the next operation.
#[unsafe(no_mangle)]
pub extern "C" fn criu_set_manage_cgroups_mode(mode: c_int) {
    global_set(CG_MODE, |o| o.set_manage_cgroups_mode(mode));
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_local_set_manage_cgroups_mode(opts: *mut criu_opts, mode: c_int) {
    local_set(opts, CG_MODE, |o| o.set_manage_cgroups_mode(mode));
}

const CG_MODE: Opt = Opt::One("manage_cgroups_mode");

/// `int` setters of one string, refused with -EINVAL (and remembered) when NULL, or when
/// empty where CRIU refuses the request for it (`put_text`, `push_text`, `set_log_file`):
/// `global, local, Opt => |options, bytes| what it does;` (`-` for a setter criu.h has only
/// in its local form).
macro_rules! strings {
    ($($global:tt, $local:ident, $opt:expr => |$o:ident, $s:ident| $body:expr;)*) => {$(
        strings!(@global $global, $opt, |$o, $s| $body);

        /// # Safety
        /// `s` is NULL or a NUL-terminated string valid for the call.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $local(opts: *mut criu_opts, s: *const c_char) -> c_int {
            // SAFETY: the caller's contract, stated above.
            let s = unsafe { bytes(s) };
            local_set(opts, $opt, |$o| s.and_then(|$s| $body))
        }
    )*};
    (@global -, $opt:expr, |$o:ident, $s:ident| $body:expr) => {};
    (@global $global:ident, $opt:expr, |$o:ident, $s:ident| $body:expr) => {
        /// # Safety
        /// `s` is NULL or a NUL-terminated string valid for the call.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $global(s: *const c_char) -> c_int {
            // SAFETY: the caller's contract, stated above.
            let s = unsafe { bytes(s) };
            global_set($opt, |$o| s.and_then(|$s| $body))
        }
    };
}

fn put(slot: &mut Option<Vec<u8>>, s: &[u8]) -> SetResult {
    *slot = Some(s.to_vec());
    Ok(())
}

fn push(list: &mut Vec<Vec<u8>>, s: &[u8]) -> SetResult {
    list.push(s.to_vec());
    Ok(())
}

/// `put` for an option CRIU 4.1.1 refuses the request for when empty (measured: `table
/// empty_accepted` lists the ones it accepts).
fn put_text(slot: &mut Option<Vec<u8>>, s: &[u8]) -> SetResult {
    check_text(s)?;
    put(slot, s)
}

fn push_text(list: &mut Vec<Vec<u8>>, s: &[u8]) -> SetResult {
    check_text(s)?;
    push(list, s)
}

use Opt::{List, One};

strings! {
    criu_set_parent_images, criu_local_set_parent_images, One("parent_img") =>
        |o, s| put_text(&mut o.rpc.parent_img, s);
    criu_set_log_file, criu_local_set_log_file, One("log_file") => |o, s| o.set_log_file(s);
    criu_set_root, criu_local_set_root, One("root") => |o, s| put(&mut o.rpc.root, s);
    criu_set_freeze_cgroup, criu_local_set_freeze_cgroup, One("freeze_cgroup") =>
        |o, s| put_text(&mut o.rpc.freeze_cgroup, s);
    criu_set_lsm_profile, criu_local_set_lsm_profile, One("lsm_profile") =>
        |o, s| put_text(&mut o.rpc.lsm_profile, s);
    criu_set_lsm_mount_context, criu_local_set_lsm_mount_context, One("lsm_mount_context") =>
        |o, s| put(&mut o.rpc.lsm_mount_context, s);
    criu_add_enable_fs, criu_local_add_enable_fs, List("enable_fs") =>
        |o, s| push(&mut o.rpc.enable_fs, s);
    criu_add_skip_mnt, criu_local_add_skip_mnt, List("skip_mnt") =>
        |o, s| push_text(&mut o.rpc.skip_mnt, s);
    criu_add_external, criu_local_add_external, List("external") =>
        |o, s| push(&mut o.rpc.external, s);
    -, criu_local_add_cg_props, One("cgroup_props") => |o, s| put(&mut o.rpc.cgroup_props, s);
    -, criu_local_add_cg_props_file, One("cgroup_props_file") =>
        |o, s| put_text(&mut o.rpc.cgroup_props_file, s);
    -, criu_local_add_cg_dump_controller, List("cgroup_dump_controller") =>
        |o, s| push(&mut o.rpc.cgroup_dump_controller, s);
    -, criu_local_add_cg_yard, One("cgroup_yard") => |o, s| put(&mut o.rpc.cgroup_yard, s);
}

// Its global setter is as the others'; only the local one checks its handle.
strings!(@global criu_add_irmap_path, IRMAP, |o, s| push(&mut o.rpc.irmap_scan_paths, s));

/// As libcriu, the one local setter that checks its handle: NULL `opts` is -1 (errno EINVAL).
///
/// # Safety
/// As `criu_add_irmap_path`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_add_irmap_path(
    opts: *mut criu_opts,
    s: *const c_char,
) -> c_int {
    if opts.is_null() {
        crate::outcome::set_errno(libc::EINVAL);
        return -1;
    }
    // SAFETY: the caller's contract, stated above.
    let s = unsafe { bytes(s) };
    local_set(opts, IRMAP, |o| {
        s.and_then(|s| push(&mut o.rpc.irmap_scan_paths, s))
    })
}

const IRMAP: Opt = List("irmap_scan_paths");

/// # Safety
/// `path` is NULL (`criu` from PATH) or a NUL-terminated string valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_set_service_binary(path: *const c_char) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let path = unsafe { path_or_null(path) };
    global_int(|o| o.set_service_binary(path))
}

/// # Safety
/// As `criu_set_service_binary`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_set_service_binary(
    opts: *mut criu_opts,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let path = unsafe { path_or_null(path) };
    local_int(opts, |o| o.set_service_binary(path))
}

/// # Safety
/// `path` is NULL (CRIU's default socket) or a NUL-terminated string valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_set_service_address(path: *const c_char) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let path = unsafe { path_or_null(path) };
    global_int(|o| o.set_service_address(path.map(Into::into)))
}

/// # Safety
/// As `criu_set_service_address`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_set_service_address(
    opts: *mut criu_opts,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let path = unsafe { path_or_null(path) };
    local_int(opts, |o| o.set_service_address(path.map(Into::into)))
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_add_unix_sk(inode: c_uint) -> c_int {
    global_set(List("unix_sk_ino"), |o| o.add_unix_sk(inode))
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_local_add_unix_sk(opts: *mut criu_opts, inode: c_uint) -> c_int {
    local_set(opts, List("unix_sk_ino"), |o| o.add_unix_sk(inode))
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_set_pre_dump_mode(mode: c_int) -> c_int {
    global_set(One("pre_dump_mode"), |o| o.set_pre_dump_mode(mode))
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_local_set_pre_dump_mode(opts: *mut criu_opts, mode: c_int) -> c_int {
    local_set(opts, One("pre_dump_mode"), |o| o.set_pre_dump_mode(mode))
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_set_network_lock(method: c_int) -> c_int {
    global_set(One("network_lock"), |o| o.set_network_lock(method))
}

#[unsafe(no_mangle)]
pub extern "C" fn criu_local_set_network_lock(opts: *mut criu_opts, method: c_int) -> c_int {
    local_set(opts, One("network_lock"), |o| o.set_network_lock(method))
}

/// Reads `argv[0..argc]` as bytes. `argc` 0 is an empty list whatever `argv` is (libcriu
/// reads nothing then); a negative `argc`, or NULL `argv` with arguments, is refused (libcriu
/// crashes).
///
/// # Safety
/// `argv` is NULL or points to `argc` pointers, each NULL or a NUL-terminated string.
unsafe fn argv_bytes(argc: c_int, argv: *const *const c_char) -> Result<Vec<Vec<u8>>, Refused> {
    if argc == 0 {
        return Ok(Vec::new());
    }
    if argv.is_null() || argc < 0 {
        return Err(Refused(libc::EINVAL));
    }
    (0..argc as usize)
        .map(|i| {
            // SAFETY: `argv` holds `argc` readable pointers (the caller's contract), and each
            // is checked by `bytes`.
            unsafe { bytes(*argv.add(i)) }.map(<[u8]>::to_vec)
        })
        .collect()
}

/// # Safety
/// `argv` points to `argc` NUL-terminated strings valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_set_exec_cmd(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let args = unsafe { argv_bytes(argc, argv) };
    global_set(One("exec_cmd"), |o| args.and_then(|a| o.set_exec_cmd(a)))
}

/// # Safety
/// As `criu_set_exec_cmd`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_set_exec_cmd(
    opts: *mut criu_opts,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let args = unsafe { argv_bytes(argc, argv) };
    local_set(opts, One("exec_cmd"), |o| {
        args.and_then(|a| o.set_exec_cmd(a))
    })
}

/// # Safety
/// `key` and `val` are NUL-terminated strings valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_add_ext_mount(key: *const c_char, val: *const c_char) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (k, v) = unsafe { (bytes(key), bytes(val)) };
    global_set(List("ext_mnt"), |o| o.add_ext_mount(k?, v?))
}

/// # Safety
/// As `criu_add_ext_mount`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_add_ext_mount(
    opts: *mut criu_opts,
    key: *const c_char,
    val: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (k, v) = unsafe { (bytes(key), bytes(val)) };
    local_set(opts, List("ext_mnt"), |o| o.add_ext_mount(k?, v?))
}

/// # Safety
/// `inside` and `outside` are NUL-terminated strings valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_add_veth_pair(
    inside: *const c_char,
    outside: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (i, x) = unsafe { (bytes(inside), bytes(outside)) };
    global_set(List("veths"), |o| o.add_veth_pair(i?, x?))
}

/// # Safety
/// As `criu_add_veth_pair`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_add_veth_pair(
    opts: *mut criu_opts,
    inside: *const c_char,
    outside: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (i, x) = unsafe { (bytes(inside), bytes(outside)) };
    local_set(opts, List("veths"), |o| o.add_veth_pair(i?, x?))
}

/// # Safety
/// `ctrl` is NULL (every controller) or a NUL-terminated string; `path` is a NUL-terminated
/// string; both valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_add_cg_root(ctrl: *const c_char, path: *const c_char) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (c, p) = unsafe { (bytes_or_null(ctrl), bytes(path)) };
    global_set(List("cg_root"), |o| o.add_cg_root(c?, p?))
}

/// # Safety
/// As `criu_add_cg_root`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_add_cg_root(
    opts: *mut criu_opts,
    ctrl: *const c_char,
    path: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (c, p) = unsafe { (bytes_or_null(ctrl), bytes(path)) };
    local_set(opts, List("cg_root"), |o| o.add_cg_root(c?, p?))
}

/// # Safety
/// `key` is a NUL-terminated string valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_add_inherit_fd(fd: c_int, key: *const c_char) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let k = unsafe { bytes(key) };
    global_set(List("inherit_fd"), |o| o.add_inherit_fd(fd, k?))
}

/// # Safety
/// As `criu_add_inherit_fd`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_add_inherit_fd(
    opts: *mut criu_opts,
    fd: c_int,
    key: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let k = unsafe { bytes(key) };
    local_set(opts, List("inherit_fd"), |o| o.add_inherit_fd(fd, k?))
}

/// Fixed: returns 0 on success (libcriu returns -ENOMEM even then).
///
/// # Safety
/// `address` is a NUL-terminated string valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_set_page_server_address_port(
    address: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let a = unsafe { bytes(address) };
    global_set(One("ps"), |o| o.set_page_server(a?, port))
}

/// # Safety
/// As `criu_set_page_server_address_port`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_set_page_server_address_port(
    opts: *mut criu_opts,
    address: *const c_char,
    port: c_int,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let a = unsafe { bytes(address) };
    local_set(opts, One("ps"), |o| o.set_page_server(a?, port))
}

/// As libcriu: a NULL namespace or namespace file is refused with -1 and nothing is stored
/// (libcriu checks for both and says so); the next operation goes on without it.
fn required(r: Result<&[u8], Refused>) -> Result<&[u8], Refused> {
    r.map_err(|_| Refused::LIBCRIU)
}

/// # Safety
/// `ns` and `ns_file` are NULL (refused with -1) or NUL-terminated strings, `extra_opt` is
/// NULL or one; all valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_join_ns_add(
    ns: *const c_char,
    ns_file: *const c_char,
    extra_opt: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (n, f, e) = unsafe { (bytes(ns), bytes(ns_file), bytes_or_null(extra_opt)) };
    global_set(List("join_ns"), |o| {
        o.join_ns_add(required(n)?, required(f)?, e?)
    })
}

/// # Safety
/// As `criu_join_ns_add`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn criu_local_join_ns_add(
    opts: *mut criu_opts,
    ns: *const c_char,
    ns_file: *const c_char,
    extra_opt: *const c_char,
) -> c_int {
    // SAFETY: the caller's contract, stated above.
    let (n, f, e) = unsafe { (bytes(ns), bytes(ns_file), bytes_or_null(extra_opt)) };
    local_set(opts, List("join_ns"), |o| {
        o.join_ns_add(required(n)?, required(f)?, e?)
    })
}
