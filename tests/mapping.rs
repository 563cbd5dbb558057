//! Option-to-request mapping, through the C ABI: every `ckpt_opts_set_*`/`ckpt_opts_add_*`
//! setter, called as a C program would, lands in its `criu_opts` field (via `request::build`)
//! with the right value and nothing else changes; unset fields stay unset (proto2: absent on
//! the wire); a bad value returns its error status, records a message, and leaves the handle
//! exactly as it was. Setters with no `criu_opts` field (paths, pid file, timeouts...) are
//! checked on the options behind the handle.
//!
//! Two coverage checks keep this honest: every setter in include/ckpt.h has a case here, and
//! every `criu_opts` field is reached by some case or is one that ckpt fills itself.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use ckpt::options::Options;
use ckpt::proto::{
    CgroupRoot, CriuCgMode, CriuNetworkLockMethod, CriuOpts, CriuPageServerInfo, CriuPreDumpMode,
    CriuVethPair, ExtMountMap, InheritFd, JoinNamespace, UnixSk,
};
use ckpt::request::{self, FdNumbers, Op};
use ckpt_ffi::cancel::*;
use ckpt_ffi::opts::*;
use ckpt_ffi::*;

type Raw = *mut ckpt_opts;
type Call = Box<dyn Fn(Raw) -> ckpt_status>;

const PID: i32 = 4242;
/// The numbers the operations would pass; inherited fds get 4.. inside criu.
fn fds() -> FdNumbers {
    FdNumbers {
        images_dir: 9,
        work_dir: Some(10),
        inherit: vec![4, 5, 6],
    }
}

fn build(h: Raw, op: Op) -> CriuOpts {
    // SAFETY: `h` is a live handle from ckpt_opts_new, used by this thread only.
    let o = unsafe { &*h }.options();
    request::build(o, op, Some(PID), &fds())
}

/// notify_scripts follows what consumes notifications (see `notify_scripts_*` below), not any
/// one setter, so the per-setter comparisons leave it out.
fn comparable(mut c: CriuOpts) -> CriuOpts {
    c.notify_scripts = None;
    c
}

fn last_error(h: Raw) -> Option<String> {
    // SAFETY: live handle; the string is copied before the next call on it.
    let p = unsafe { ckpt_opts_last_error(h) };
    // SAFETY: non-NULL results are NUL-terminated strings owned by the handle.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Field-by-field differences of two requests, for readable failures.
fn diff(want: &CriuOpts, got: &CriuOpts) -> String {
    let mut out = String::new();
    for ((name, w), (_, g)) in field_names(want).into_iter().zip(field_names(got)) {
        if w != g {
            out += &format!("\n    {name}: want {w}, got {g}");
        }
    }
    out
}

/// A C string argument: text, invalid UTF-8, or NULL.
enum Arg {
    Text(&'static str),
    Bytes(&'static [u8]),
    Null,
}

impl Arg {
    fn c(&self) -> Option<CString> {
        match self {
            Arg::Text(s) => Some(CString::new(*s).unwrap()),
            Arg::Bytes(b) => Some(CString::new(*b).unwrap()),
            Arg::Null => None,
        }
    }
}

fn ptr(c: &Option<CString>) -> *const c_char {
    c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

struct Bad {
    what: String,
    call: Call,
    status: ckpt_status,
}

struct Case {
    setter: &'static str,
    what: String,
    op: Op,
    call: Call,
    /// The request fields this value changes, applied to the request of an empty handle.
    expect: Box<dyn Fn(&mut CriuOpts)>,
    /// What the options must hold afterwards, for settings that are not request fields.
    holds: Box<dyn Fn(&Options) -> bool>,
    bad: Vec<Bad>,
}

impl Case {
    fn new(
        setter: &'static str,
        what: impl Into<String>,
        call: impl Fn(Raw) -> ckpt_status + 'static,
        expect: impl Fn(&mut CriuOpts) + 'static,
    ) -> Case {
        Case {
            setter,
            what: what.into(),
            op: Op::Dump,
            call: Box::new(call),
            expect: Box::new(expect),
            holds: Box::new(|_| true),
            bad: Vec::new(),
        }
    }

    fn on(mut self, op: Op) -> Case {
        self.op = op;
        self
    }

    fn holds(mut self, f: impl Fn(&Options) -> bool + 'static) -> Case {
        self.holds = Box::new(f);
        self
    }

    fn bad(
        mut self,
        what: impl Into<String>,
        status: ckpt_status,
        call: impl Fn(Raw) -> ckpt_status + 'static,
    ) -> Case {
        self.bad.push(Bad {
            what: what.into(),
            call: Box::new(call),
            status,
        });
        self
    }
}

type TextFn = unsafe extern "C" fn(*mut ckpt_opts, *const c_char) -> ckpt_status;
type BoolFn = unsafe extern "C" fn(*mut ckpt_opts, bool) -> ckpt_status;
type U32Fn = unsafe extern "C" fn(*mut ckpt_opts, u32) -> ckpt_status;

fn call_text(f: TextFn, arg: Arg) -> impl Fn(Raw) -> ckpt_status {
    move |h| {
        let c = arg.c();
        // SAFETY: `h` is NULL or live; the string is NULL or NUL-terminated for the call.
        unsafe { f(h, ptr(&c)) }
    }
}

/// Setters of paths. Linux paths are bytes: these take invalid UTF-8 and CRIU gets it as it
/// is (`path_setters_take_bytes_that_are_not_utf8`); every other string setter refuses it.
const PATH_SETTERS: &[&str] = &[
    "ckpt_opts_set_image_path",
    "ckpt_opts_set_work_path",
    "ckpt_opts_set_parent_path",
    "ckpt_opts_set_criu_path",
    "ckpt_opts_set_pid_file",
    "ckpt_opts_set_console_socket",
    "ckpt_opts_set_service_address",
    "ckpt_opts_set_root",
    "ckpt_opts_set_freeze_cgroup",
    "ckpt_opts_set_config_file",
    "ckpt_opts_set_cgroup_props_file",
    "ckpt_opts_set_cgroup_yard",
    "ckpt_opts_set_tls_cacert",
    "ckpt_opts_set_tls_cacrl",
    "ckpt_opts_set_tls_cert",
    "ckpt_opts_set_tls_key",
    "ckpt_opts_set_log_file",
    "ckpt_opts_add_skip_mount",
    "ckpt_opts_add_irmap_scan_path",
];

/// A one-string setter: the good value, plus NULL, invalid UTF-8 (unless it sets a path) and
/// "" refused, plus `extra` bad values refused as invalid arguments.
fn text(
    setter: &'static str,
    f: TextFn,
    good: &'static str,
    expect: impl Fn(&mut CriuOpts) + 'static,
    extra: &[&'static str],
) -> Case {
    let mut c = Case::new(
        setter,
        format!("{good:?}"),
        call_text(f, Arg::Text(good)),
        expect,
    )
    .bad("NULL", CKPT_ERR_NULL_ARGUMENT, call_text(f, Arg::Null));
    if !PATH_SETTERS.contains(&setter) {
        c = c.bad(
            "invalid UTF-8",
            CKPT_ERR_INVALID_UTF8,
            call_text(f, Arg::Bytes(b"a\xff")),
        );
    }
    c = c.bad(
        "\"\"",
        CKPT_ERR_INVALID_ARGUMENT,
        call_text(f, Arg::Text("")),
    );
    for &v in extra {
        c = c.bad(
            format!("{v:?}"),
            CKPT_ERR_INVALID_ARGUMENT,
            call_text(f, Arg::Text(v)),
        );
    }
    c
}

/// A bool setter, both values: `false` must be sent as an explicit false.
fn boolean(
    setter: &'static str,
    f: BoolFn,
    field: fn(&mut CriuOpts) -> &mut Option<bool>,
) -> Vec<Case> {
    [true, false]
        .into_iter()
        .map(|v| {
            Case::new(
                setter,
                v.to_string(),
                // SAFETY: `h` is NULL or a live handle.
                move |h| unsafe { f(h, v) },
                move |o| *field(o) = Some(v),
            )
        })
        .collect()
}

fn number(
    setter: &'static str,
    f: U32Fn,
    v: u32,
    expect: impl Fn(&mut CriuOpts) + 'static,
) -> Case {
    // SAFETY: `h` is NULL or a live handle.
    Case::new(setter, v.to_string(), move |h| unsafe { f(h, v) }, expect)
}

/// A pipe whose ends the test owns.
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

/// A new descriptor for `fd`, which the caller then owns.
fn dup(fd: c_int) -> c_int {
    // SAFETY: dup only reads the descriptor table; the result is checked.
    let d = unsafe { libc::dup(fd) };
    assert!(d >= 0, "dup({fd}) failed");
    d
}

/// A descriptor number that is certainly not open in this process.
const CLOSED_FD: c_int = 999_999;

fn with_fd(f: unsafe extern "C" fn(*mut ckpt_opts, c_int) -> ckpt_status, fd: c_int) -> Call {
    // SAFETY: `h` is NULL or live; `fd` is only inspected or duplicated by the setter.
    Box::new(move |h| unsafe { f(h, fd) })
}

unsafe extern "C" fn notify_cb(_: *mut c_void, _: *const ckpt_notification) -> c_int {
    0
}

/// `setter => field on Op` rows: the setter's name comes from the function itself, so a row
/// cannot name one function and call another.
macro_rules! setters {
    ($f:ty, $t:ty; $($setter:ident => $field:ident on $op:ident),* $(,)?) => {{
        let rows: Vec<(&'static str, $f, fn(&mut CriuOpts) -> &mut $t, Op)> = vec![$(
            (stringify!($setter), $setter as $f, |o: &mut CriuOpts| &mut o.$field, Op::$op)
        ),*];
        rows
    }};
}

fn cases() -> Vec<Case> {
    let inval = CKPT_ERR_INVALID_ARGUMENT;
    let mut v: Vec<Case> = Vec::new();

    // Booleans: runc's flags and the rest of criu_opts' switches, each on the operation it is
    // meant for.
    let bools = setters![BoolFn, Option<bool>;
        ckpt_opts_set_leave_running => leave_running on Dump,
        ckpt_opts_set_leave_stopped => leave_stopped on Dump,
        ckpt_opts_set_tcp_established => tcp_established on Dump,
        ckpt_opts_set_tcp_skip_in_flight => tcp_skip_in_flight on Dump,
        ckpt_opts_set_tcp_close => tcp_close on Dump,
        ckpt_opts_set_tcp_close => tcp_close on Restore,
        ckpt_opts_set_link_remap => link_remap on Dump,
        ckpt_opts_set_ext_unix_sk => ext_unix_sk on Dump,
        ckpt_opts_set_shell_job => shell_job on Dump,
        ckpt_opts_set_lazy_pages => lazy_pages on Dump,
        ckpt_opts_set_file_locks => file_locks on Dump,
        ckpt_opts_set_track_mem => track_mem on PreDump,
        ckpt_opts_set_auto_dedup => auto_dedup on Dump,
        ckpt_opts_set_auto_dedup => auto_dedup on Restore,
        ckpt_opts_set_evasive_devices => evasive_devices on Dump,
        ckpt_opts_set_force_irmap => force_irmap on Dump,
        ckpt_opts_set_auto_ext_mnt => auto_ext_mnt on Dump,
        ckpt_opts_set_ext_sharing => ext_sharing on Dump,
        ckpt_opts_set_ext_masters => ext_masters on Dump,
        ckpt_opts_set_weak_sysctls => weak_sysctls on Restore,
        ckpt_opts_set_orphan_pts_master => orphan_pts_master on Restore,
        ckpt_opts_set_manage_cgroups => manage_cgroups on Dump,
        ckpt_opts_set_mntns_compat_mode => mntns_compat_mode on Restore,
        ckpt_opts_set_skip_file_rwx_check => skip_file_rwx_check on Restore,
        ckpt_opts_set_unprivileged => unprivileged on Dump,
        ckpt_opts_set_display_stats => display_stats on Dump,
        ckpt_opts_set_tls => tls on PageServer,
        ckpt_opts_set_tls_no_cn_verify => tls_no_cn_verify on Dump,
    ];
    for (name, f, field, op) in bools {
        v.extend(boolean(name, f, field).into_iter().map(|c| c.on(op)));
    }

    // log-to-stderr: CRIU ignores it when a log file is named, so true names none.
    v.push(Case::new(
        "ckpt_opts_set_log_to_stderr",
        "true",
        // SAFETY: `h` is NULL or a live handle.
        |h| unsafe { ckpt_opts_set_log_to_stderr(h, true) },
        |o| {
            o.log_to_stderr = Some(true);
            o.log_file = None;
        },
    ));
    v.push(Case::new(
        "ckpt_opts_set_log_to_stderr",
        "false",
        // SAFETY: `h` is NULL or a live handle.
        |h| unsafe { ckpt_opts_set_log_to_stderr(h, false) },
        |o| o.log_to_stderr = Some(false),
    ));

    // pre-dump: a pre-dump needs CRIU's memory tracking, so it turns track_mem on; false is
    // a plain dump and adds nothing.
    v.push(
        Case::new(
            "ckpt_opts_set_pre_dump",
            "true",
            // SAFETY: `h` is NULL or a live handle.
            |h| unsafe { ckpt_opts_set_pre_dump(h, true) },
            |o| o.track_mem = Some(true),
        )
        .on(Op::PreDump)
        .holds(|o| o.pre_dump() == Some(true)),
    );
    v.push(
        Case::new(
            "ckpt_opts_set_pre_dump",
            "false",
            // SAFETY: `h` is NULL or a live handle.
            |h| unsafe { ckpt_opts_set_pre_dump(h, false) },
            |_| {},
        )
        .holds(|o| o.pre_dump() == Some(false)),
    );

    // Paths that become descriptors or stay in ckpt.
    v.push(
        text(
            "ckpt_opts_set_image_path",
            ckpt_opts_set_image_path,
            "/tmp/img",
            |_| {},
            &[],
        )
        .holds(|o| o.image_path() == Some(Path::new("/tmp/img"))),
    );
    v.push(
        text(
            "ckpt_opts_set_work_path",
            ckpt_opts_set_work_path,
            "/tmp/work",
            |_| {},
            &[],
        )
        .holds(|o| o.work_path() == Some(Path::new("/tmp/work"))),
    );
    v.push(
        text(
            "ckpt_opts_set_criu_path",
            ckpt_opts_set_criu_path,
            "/usr/sbin/criu",
            |_| {},
            &[],
        )
        .holds(|o| o.criu_path() == Some(Path::new("/usr/sbin/criu"))),
    );
    v.push(
        text(
            "ckpt_opts_set_pid_file",
            ckpt_opts_set_pid_file,
            "/run/ct.pid",
            |_| {},
            &[],
        )
        .on(Op::Restore)
        .holds(|o| o.pid_file() == Some(Path::new("/run/ct.pid"))),
    );
    v.push(
        text(
            "ckpt_opts_set_service_address",
            ckpt_opts_set_service_address,
            "/run/criu.sock",
            |_| {},
            &[],
        )
        .holds(|o| o.service_address() == Some(Path::new("/run/criu.sock"))),
    );
    // A console socket on restore asks CRIU for the orphaned pty master.
    v.push(
        text(
            "ckpt_opts_set_console_socket",
            ckpt_opts_set_console_socket,
            "/run/console.sock",
            |o| o.orphan_pts_master = Some(true),
            &[],
        )
        .on(Op::Restore)
        .holds(|o| o.console_socket() == Some(Path::new("/run/console.sock"))),
    );
    v.push(
        text(
            "ckpt_opts_set_console_socket",
            ckpt_opts_set_console_socket,
            "/run/console.sock",
            |_| {},
            &[],
        )
        .holds(|o| o.console_socket().is_some()),
    );
    // parent-path: relative, and a pre-dump's parent needs memory tracking.
    v.push(text(
        "ckpt_opts_set_parent_path",
        ckpt_opts_set_parent_path,
        "../pre1",
        |o| {
            o.parent_img = Some("../pre1".into());
            o.track_mem = Some(true);
        },
        &[],
    ));

    // Plain strings, copied into their field.
    let strings = setters![TextFn, Option<Vec<u8>>;
        ckpt_opts_set_root => root on Restore,
        ckpt_opts_set_freeze_cgroup => freeze_cgroup on Dump,
        ckpt_opts_set_lsm_mount_context => lsm_mount_context on Restore,
        ckpt_opts_set_config_file => config_file on Dump,
        ckpt_opts_set_cgroup_props => cgroup_props on Restore,
        ckpt_opts_set_cgroup_props_file => cgroup_props_file on Restore,
        ckpt_opts_set_cgroup_yard => cgroup_yard on Restore,
        ckpt_opts_set_tls_cacert => tls_cacert on Dump,
        ckpt_opts_set_tls_cacrl => tls_cacrl on Dump,
        ckpt_opts_set_tls_cert => tls_cert on Dump,
        ckpt_opts_set_tls_key => tls_key on Dump,
        ckpt_opts_set_lsm_profile => lsm_profile on Restore,
        ckpt_opts_set_log_file => log_file on Dump,
    ];
    for (name, f, field, op) in strings {
        let (good, extra): (&'static str, &[&'static str]) = match name {
            "ckpt_opts_set_lsm_profile" => {
                ("apparmor:ct-profile", &["apparmor", ":x", "apparmor:"])
            }
            "ckpt_opts_set_log_file" => ("mine.log", &["a/b", "..", ".", "/abs.log"]),
            "ckpt_opts_set_freeze_cgroup" => ("/sys/fs/cgroup/freezer/ct", &[]),
            _ => ("value-\u{e9}", &[]),
        };
        v.push(text(name, f, good, move |o| *field(o) = Some(good.into()), extra).on(op));
    }

    // Parsed strings: each accepted spelling, each refusal.
    v.push(text(
        "ckpt_opts_set_page_server",
        ckpt_opts_set_page_server,
        "127.0.0.1:27277",
        |o| {
            o.ps = Some(CriuPageServerInfo {
                address: Some("127.0.0.1".into()),
                port: Some(27277),
                pid: None,
                fd: None,
            })
        },
        &[
            "1.2.3.4:0",
            "1.2.3.4:65536",
            "1.2.3.4",
            ":80",
            "::1:80",
            "[::1]80",
            "[::1",
            "[zz]:80",
            "host:x",
            "host:-1",
        ],
    ));
    v.push(text(
        "ckpt_opts_set_page_server",
        ckpt_opts_set_page_server,
        "[::1]:1",
        |o| {
            o.ps = Some(CriuPageServerInfo {
                address: Some("::1".into()),
                port: Some(1),
                pid: None,
                fd: None,
            })
        },
        &[],
    ));
    v.push(text(
        "ckpt_opts_set_page_server",
        ckpt_opts_set_page_server,
        "host.example:65535",
        |o| {
            o.ps = Some(CriuPageServerInfo {
                address: Some("host.example".into()),
                port: Some(65535),
                pid: None,
                fd: None,
            })
        },
        &[],
    ));
    for (mode, n) in [
        ("ignore", CriuCgMode::Ignore),
        ("soft", CriuCgMode::Soft),
        ("full", CriuCgMode::Full),
        ("strict", CriuCgMode::Strict),
    ] {
        // IGNORE is 0 and still sent: proto2 keeps it apart from "unset".
        v.push(text(
            "ckpt_opts_set_manage_cgroups_mode",
            ckpt_opts_set_manage_cgroups_mode,
            mode,
            move |o| o.manage_cgroups_mode = Some(n as i32),
            &["SOFT", "Ignore", "bogus", " soft"],
        ));
    }
    for (m, n) in [
        ("iptables", CriuNetworkLockMethod::Iptables),
        ("nftables", CriuNetworkLockMethod::Nftables),
        ("skip", CriuNetworkLockMethod::Skip),
    ] {
        v.push(text(
            "ckpt_opts_set_network_lock",
            ckpt_opts_set_network_lock,
            m,
            move |o| o.network_lock = Some(n as i32),
            &["IPTABLES", "nft", "none"],
        ));
    }
    for (m, n) in [
        ("splice", CriuPreDumpMode::Splice),
        ("read", CriuPreDumpMode::VmRead),
    ] {
        v.push(
            text(
                "ckpt_opts_set_pre_dump_mode",
                ckpt_opts_set_pre_dump_mode,
                m,
                move |o| o.pre_dump_mode = Some(n as i32),
                &["mmap", "SPLICE"],
            )
            .on(Op::PreDump),
        );
    }
    for (s, want) in [
        ("created", ckpt::options::ContainerStatus::Created),
        ("running", ckpt::options::ContainerStatus::Running),
        ("paused", ckpt::options::ContainerStatus::Paused),
        ("stopped", ckpt::options::ContainerStatus::Stopped),
    ] {
        v.push(
            text(
                "ckpt_opts_set_container_status",
                ckpt_opts_set_container_status,
                s,
                |_| {},
                &["Running", "frozen"],
            )
            .holds(move |o| o.container_status() == Some(want)),
        );
    }
    v.push(
        text(
            "ckpt_opts_add_empty_ns",
            ckpt_opts_add_empty_ns,
            "network",
            |o| o.empty_ns = Some(libc::CLONE_NEWNET as u32),
            &["pid", "NETWORK", "ipc"],
        )
        .on(Op::Restore),
    );

    // Lists: one entry per call, in call order.
    let lists = setters![TextFn, Vec<Vec<u8>>;
        ckpt_opts_add_external => external on Dump,
        ckpt_opts_add_cgroup_dump_controller => cgroup_dump_controller on Dump,
        ckpt_opts_add_skip_mount => skip_mnt on Dump,
        ckpt_opts_add_enable_fs => enable_fs on Dump,
        ckpt_opts_add_irmap_scan_path => irmap_scan_paths on Dump,
        ckpt_opts_add_exec_cmd => exec_cmd on Restore,
    ];
    for (name, f, field, op) in lists {
        let good = "net[4026531992]:extRootNetNS";
        v.push(text(name, f, good, move |o| *field(o) = vec![good.into()], &[]).on(op));
        // Two calls keep both, in order.
        v.push(
            Case::new(
                name,
                "two entries",
                move |h| {
                    let st = call_text(f, Arg::Text("first"))(h);
                    if st != CKPT_OK {
                        return st;
                    }
                    call_text(f, Arg::Text("second"))(h)
                },
                move |o| *field(o) = vec!["first".into(), "second".into()],
            )
            .on(op),
        );
    }

    // Numbers.
    // SAFETY (all closures below): `h` is NULL or a live handle.
    v.push(
        Case::new(
            "ckpt_opts_set_log_level",
            "0",
            |h| unsafe { ckpt_opts_set_log_level(h, 0) },
            |o| o.log_level = Some(0),
        )
        .bad("-1", inval, |h| unsafe { ckpt_opts_set_log_level(h, -1) })
        .bad("5", inval, |h| unsafe { ckpt_opts_set_log_level(h, 5) })
        .bad("i32::MIN", inval, |h| unsafe {
            ckpt_opts_set_log_level(h, i32::MIN)
        }),
    );
    v.push(Case::new(
        "ckpt_opts_set_log_level",
        "2",
        |h| unsafe { ckpt_opts_set_log_level(h, 2) },
        |o| o.log_level = Some(2),
    ));
    v.push(number(
        "ckpt_opts_set_criu_timeout",
        ckpt_opts_set_criu_timeout,
        0,
        |o| o.timeout = Some(0),
    ));
    v.push(number(
        "ckpt_opts_set_criu_timeout",
        ckpt_opts_set_criu_timeout,
        30,
        |o| o.timeout = Some(30),
    ));
    v.push(number(
        "ckpt_opts_set_ghost_limit",
        ckpt_opts_set_ghost_limit,
        0,
        |o| o.ghost_limit = Some(0),
    ));
    v.push(number(
        "ckpt_opts_set_ghost_limit",
        ckpt_opts_set_ghost_limit,
        u32::MAX,
        |o| o.ghost_limit = Some(u32::MAX),
    ));
    v.push(
        number("ckpt_opts_set_cpu_cap", ckpt_opts_set_cpu_cap, 0, |o| {
            o.cpu_cap = Some(0)
        })
        .on(Op::Restore),
    );
    v.push(
        number(
            "ckpt_opts_set_cpu_cap",
            ckpt_opts_set_cpu_cap,
            0xffff_ffff,
            |o| o.cpu_cap = Some(0xffff_ffff),
        )
        .on(Op::Restore),
    );
    v.push(number(
        "ckpt_opts_add_unix_sk_ino",
        ckpt_opts_add_unix_sk_ino,
        123_456,
        // CRIU reads the inodes only with ext_unix_sk, which ckpt then sends on.
        |o| {
            o.unix_sk_ino = vec![UnixSk { inode: 123_456 }];
            o.ext_unix_sk = Some(true);
        },
    ));
    v.push(
        number(
            "ckpt_opts_set_timeout_ms",
            ckpt_opts_set_timeout_ms,
            1500,
            |_| {},
        )
        .holds(|o| o.timeout() == Some(std::time::Duration::from_millis(1500))),
    );
    v.push(
        number(
            "ckpt_opts_set_timeout_ms",
            ckpt_opts_set_timeout_ms,
            0,
            |_| {},
        )
        .holds(|o| o.timeout().is_none()),
    );
    v.push(
        number(
            "ckpt_opts_set_restore_wait_ms",
            ckpt_opts_set_restore_wait_ms,
            2500,
            |_| {},
        )
        .holds(|o| o.restore_wait() == Some(std::time::Duration::from_millis(2500))),
    );
    v.push(
        number(
            "ckpt_opts_set_restore_wait_ms",
            ckpt_opts_set_restore_wait_ms,
            0,
            |_| {},
        )
        .holds(|o| o.restore_wait().is_none()),
    );

    // Pairs and triples.
    type Pair = unsafe extern "C" fn(*mut ckpt_opts, *const c_char, *const c_char) -> ckpt_status;
    fn pair(f: Pair, a: Arg, b: Arg) -> impl Fn(Raw) -> ckpt_status {
        move |h| {
            let (a, b) = (a.c(), b.c());
            // SAFETY: `h` is NULL or live; the strings are NULL or NUL-terminated.
            unsafe { f(h, ptr(&a), ptr(&b)) }
        }
    }
    /// `paths`: which of the two arguments are paths, and so take invalid UTF-8.
    fn pair_bad(c: Case, f: Pair, nullable_first: bool, paths: (bool, bool)) -> Case {
        let mut c = c
            .bad(
                "NULL second",
                CKPT_ERR_NULL_ARGUMENT,
                pair(f, Arg::Text("a"), Arg::Null),
            )
            .bad(
                "\"\" second",
                CKPT_ERR_INVALID_ARGUMENT,
                pair(f, Arg::Text("a"), Arg::Text("")),
            );
        if !paths.0 {
            c = c.bad(
                "invalid UTF-8 first",
                CKPT_ERR_INVALID_UTF8,
                pair(f, Arg::Bytes(b"\xfe"), Arg::Text("b")),
            );
        }
        if !paths.1 {
            c = c.bad(
                "invalid UTF-8 second",
                CKPT_ERR_INVALID_UTF8,
                pair(f, Arg::Text("a"), Arg::Bytes(b"\xfe")),
            );
        }
        if !nullable_first {
            c = c
                .bad(
                    "NULL first",
                    CKPT_ERR_NULL_ARGUMENT,
                    pair(f, Arg::Null, Arg::Text("b")),
                )
                .bad(
                    "\"\" first",
                    CKPT_ERR_INVALID_ARGUMENT,
                    pair(f, Arg::Text(""), Arg::Text("b")),
                );
        }
        c
    }
    v.push(pair_bad(
        Case::new(
            "ckpt_opts_add_ext_mount",
            "/etc/hosts -> hosts",
            pair(
                ckpt_opts_add_ext_mount,
                Arg::Text("/etc/hosts"),
                Arg::Text("hosts"),
            ),
            |o| {
                o.ext_mnt = vec![ExtMountMap {
                    key: "/etc/hosts".into(),
                    val: "hosts".into(),
                }]
            },
        ),
        ckpt_opts_add_ext_mount,
        false,
        (true, true),
    ));
    v.push(pair_bad(
        Case::new(
            "ckpt_opts_add_cgroup_root",
            "NULL controller",
            pair(ckpt_opts_add_cgroup_root, Arg::Null, Arg::Text("/ct")),
            |o| {
                o.cg_root = vec![CgroupRoot {
                    ctrl: None,
                    path: "/ct".into(),
                }]
            },
        )
        .on(Op::Restore),
        ckpt_opts_add_cgroup_root,
        true,
        (false, true),
    ));
    v.push(
        Case::new(
            "ckpt_opts_add_cgroup_root",
            "cpu controller",
            pair(
                ckpt_opts_add_cgroup_root,
                Arg::Text("cpu"),
                Arg::Text("/ct"),
            ),
            |o| {
                o.cg_root = vec![CgroupRoot {
                    ctrl: Some("cpu".into()),
                    path: "/ct".into(),
                }]
            },
        )
        .on(Op::Restore),
    );
    v.push(pair_bad(
        Case::new(
            "ckpt_opts_add_veth_pair",
            "eth0 -> veth1",
            pair(
                ckpt_opts_add_veth_pair,
                Arg::Text("eth0"),
                Arg::Text("veth1"),
            ),
            |o| {
                o.veths = vec![CriuVethPair {
                    if_in: "eth0".into(),
                    if_out: "veth1".into(),
                }]
            },
        )
        .on(Op::Restore),
        ckpt_opts_add_veth_pair,
        false,
        (false, false),
    ));

    fn join(ns: Arg, file: Arg, extra: Arg) -> impl Fn(Raw) -> ckpt_status {
        move |h| {
            let (a, b, c) = (ns.c(), file.c(), extra.c());
            // SAFETY: `h` is NULL or live; the strings are NULL or NUL-terminated.
            unsafe { ckpt_opts_add_join_ns(h, ptr(&a), ptr(&b), ptr(&c)) }
        }
    }
    v.push(
        Case::new(
            "ckpt_opts_add_join_ns",
            "net, no extra",
            join(Arg::Text("net"), Arg::Text("/proc/1/ns/net"), Arg::Null),
            |o| {
                o.join_ns = vec![JoinNamespace {
                    ns: "net".into(),
                    ns_file: "/proc/1/ns/net".into(),
                    extra_opt: None,
                }]
            },
        )
        .on(Op::Restore)
        .bad(
            "ns \"bogus\"",
            inval,
            join(Arg::Text("bogus"), Arg::Text("/x"), Arg::Null),
        )
        .bad(
            "ns \"NET\"",
            inval,
            join(Arg::Text("NET"), Arg::Text("/x"), Arg::Null),
        )
        .bad(
            "NULL ns",
            CKPT_ERR_NULL_ARGUMENT,
            join(Arg::Null, Arg::Text("/x"), Arg::Null),
        )
        .bad(
            "NULL file",
            CKPT_ERR_NULL_ARGUMENT,
            join(Arg::Text("net"), Arg::Null, Arg::Null),
        )
        .bad(
            "\"\" file",
            inval,
            join(Arg::Text("net"), Arg::Text(""), Arg::Null),
        )
        .bad(
            "invalid UTF-8 extra",
            CKPT_ERR_INVALID_UTF8,
            join(Arg::Text("net"), Arg::Text("/x"), Arg::Bytes(b"\xff")),
        ),
    );
    v.push(
        Case::new(
            "ckpt_opts_add_join_ns",
            "user with extra",
            join(
                Arg::Text("user"),
                Arg::Text("/proc/1/ns/user"),
                Arg::Text("0,0"),
            ),
            |o| {
                o.join_ns = vec![JoinNamespace {
                    ns: "user".into(),
                    ns_file: "/proc/1/ns/user".into(),
                    extra_opt: Some("0,0".into()),
                }]
            },
        )
        .on(Op::Restore),
    );

    // Descriptors: checked when set, duplicated or owned as documented.
    let (r, w) = pipe();
    let (rn, wn) = (r.as_raw_fd(), w.as_raw_fd());
    // Kept open for the whole test: the cases refer to these numbers.
    std::mem::forget((r, w));
    v.push(
        Case::new(
            "ckpt_opts_add_inherit_fd",
            "pipe:[1] -> criu fd 4",
            move |h| {
                let k = CString::new("pipe:[1]").unwrap();
                // SAFETY: `h` is NULL or live; `k` is NUL-terminated; the fd is only duplicated.
                unsafe { ckpt_opts_add_inherit_fd(h, k.as_ptr(), rn) }
            },
            |o| {
                o.inherit_fd = vec![InheritFd {
                    key: "pipe:[1]".into(),
                    fd: 4,
                }]
            },
        )
        .on(Op::Restore)
        .holds(|o| o.inherit_fd_count() == 1)
        .bad("NULL key", CKPT_ERR_NULL_ARGUMENT, move |h| unsafe {
            ckpt_opts_add_inherit_fd(h, std::ptr::null(), rn)
        })
        .bad("\"\" key", inval, move |h| unsafe {
            ckpt_opts_add_inherit_fd(h, c"".as_ptr(), rn)
        })
        .bad(
            "invalid UTF-8 key",
            CKPT_ERR_INVALID_UTF8,
            move |h| unsafe { ckpt_opts_add_inherit_fd(h, c"\xff".as_ptr(), rn) },
        )
        .bad("fd -1", CKPT_ERR_BAD_FD, |h| unsafe {
            ckpt_opts_add_inherit_fd(h, c"k".as_ptr(), -1)
        })
        .bad("a closed fd", CKPT_ERR_BAD_FD, |h| unsafe {
            ckpt_opts_add_inherit_fd(h, c"k".as_ptr(), CLOSED_FD)
        }),
    );
    v.push(
        Case::new(
            "ckpt_opts_add_inherit_fd",
            "two fds, numbered in order",
            move |h| {
                // SAFETY: as above.
                let st = unsafe { ckpt_opts_add_inherit_fd(h, c"pipe:[1]".as_ptr(), rn) };
                if st != CKPT_OK {
                    return st;
                }
                // SAFETY: as above.
                unsafe { ckpt_opts_add_inherit_fd(h, c"pipe:[2]".as_ptr(), wn) }
            },
            |o| {
                o.inherit_fd = vec![
                    InheritFd {
                        key: "pipe:[1]".into(),
                        fd: 4,
                    },
                    InheritFd {
                        key: "pipe:[2]".into(),
                        fd: 5,
                    },
                ]
            },
        )
        .on(Op::Restore),
    );

    // The status fd is ckpt's to write on status-ready: it is never sent to CRIU.
    let (_, sw) = pipe();
    let swn = sw.as_raw_fd();
    std::mem::forget(sw);
    let (sr, _) = pipe();
    let srn = sr.as_raw_fd();
    std::mem::forget(sr);
    // Ownership passes on success, so each handle gets its own write end: a fresh dup (the
    // NULL-handle call passes the original, which a refusal leaves alone).
    let give_write_end = move |h: Raw| {
        let fd = if h.is_null() { swn } else { dup(swn) };
        // SAFETY: `h` is NULL or live; `fd` is ours to hand over.
        let st = unsafe { ckpt_opts_set_status_fd(h, fd) };
        if st != CKPT_OK && fd != swn {
            // SAFETY: the refused duplicate is still ours.
            unsafe { libc::close(fd) };
        }
        st
    };
    v.push(
        Case::new(
            "ckpt_opts_set_status_fd",
            "a pipe's write end",
            give_write_end,
            |_| {},
        )
        .holds(|o| o.has_status_fd())
        .bad(
            "fd -1",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd, -1),
        )
        .bad("fd 0", CKPT_ERR_BAD_FD, with_fd(ckpt_opts_set_status_fd, 0))
        .bad("fd 1", CKPT_ERR_BAD_FD, with_fd(ckpt_opts_set_status_fd, 1))
        .bad("fd 2", CKPT_ERR_BAD_FD, with_fd(ckpt_opts_set_status_fd, 2))
        .bad(
            "a read end",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd, srn),
        )
        .bad(
            "a closed fd",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd, CLOSED_FD),
        ),
    );

    // The duplicating form: the caller's descriptor stays open whatever happens.
    v.push(
        Case::new(
            "ckpt_opts_set_status_fd_dup",
            "a pipe's write end, duplicated",
            with_fd(ckpt_opts_set_status_fd_dup, swn),
            |_| {},
        )
        // SAFETY: F_GETFD only inspects the number.
        .holds(move |o| o.has_status_fd() && unsafe { libc::fcntl(swn, libc::F_GETFD) } >= 0)
        .bad(
            "fd -1",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd_dup, -1),
        )
        .bad(
            "fd 0",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd_dup, 0),
        )
        .bad(
            "fd 1",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd_dup, 1),
        )
        .bad(
            "fd 2",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd_dup, 2),
        )
        .bad(
            "a read end",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd_dup, srn),
        )
        .bad(
            "a closed fd",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_status_fd_dup, CLOSED_FD),
        ),
    );

    // The pidfd store socket travels by its number in this process (CRIU uses pidfd_getfd).
    let dgram = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let stream = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let inet = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let (dn, sn, inn) = (dgram.as_raw_fd(), stream.as_raw_fd(), inet.as_raw_fd());
    std::mem::forget((dgram, stream, inet));
    v.push(
        Case::new(
            "ckpt_opts_set_pidfd_store_sk",
            "an AF_UNIX SOCK_DGRAM socket",
            with_fd(ckpt_opts_set_pidfd_store_sk, dn),
            // The number is the handle's duplicate: whatever it is, it is sent, not the caller's.
            |o| o.pidfd_store_sk = Some(-2),
        )
        .on(Op::PreDump)
        .holds(|o| o.has_pidfd_store_sk())
        .bad(
            "fd -1",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_pidfd_store_sk, -1),
        )
        .bad(
            "a closed fd",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_pidfd_store_sk, CLOSED_FD),
        )
        .bad(
            "a pipe",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_pidfd_store_sk, srn),
        )
        .bad(
            "a stream socket",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_pidfd_store_sk, sn),
        )
        .bad(
            "an AF_INET socket",
            CKPT_ERR_BAD_FD,
            with_fd(ckpt_opts_set_pidfd_store_sk, inn),
        ),
    );

    // The notification callback: registering one asks CRIU for notifications; NULL removes it.
    v.push(
        Case::new(
            "ckpt_opts_set_notify",
            "a callback",
            // SAFETY: `h` is NULL or live; the callback is safe to call with any userdata.
            |h| unsafe { ckpt_opts_set_notify(h, Some(notify_cb), std::ptr::null_mut()) },
            |_| {},
        )
        .holds(|o| o.has_notify()),
    );
    v.push(
        Case::new(
            "ckpt_opts_set_notify",
            "NULL removes it",
            // SAFETY: as above.
            |h| unsafe {
                ckpt_opts_set_notify(h, Some(notify_cb), std::ptr::null_mut());
                ckpt_opts_set_notify(h, None, std::ptr::null_mut())
            },
            |_| {},
        )
        .holds(|o| !o.has_notify()),
    );

    // A cancellation token: held by the options (the caller's handle may go first), never
    // sent to CRIU; NULL detaches it.
    v.push(
        Case::new(
            "ckpt_opts_set_cancel",
            "a token",
            // SAFETY: `h` is NULL or live; the token is live until freed here, and the options
            // keep their own reference.
            |h| unsafe {
                let c = ckpt_ffi::cancel::ckpt_cancel_new();
                let st = ckpt_ffi::cancel::ckpt_opts_set_cancel(h, c);
                ckpt_ffi::cancel::ckpt_cancel_free(c);
                st
            },
            |_| {},
        )
        .holds(|o| o.cancel().is_some_and(|c| !c.is_triggered())),
    );
    v.push(
        Case::new(
            "ckpt_opts_set_cancel",
            "NULL detaches it",
            // SAFETY: as above.
            |h| unsafe {
                let c = ckpt_ffi::cancel::ckpt_cancel_new();
                ckpt_ffi::cancel::ckpt_opts_set_cancel(h, c);
                ckpt_ffi::cancel::ckpt_cancel_free(c);
                ckpt_ffi::cancel::ckpt_opts_set_cancel(h, std::ptr::null())
            },
            |_| {},
        )
        .holds(|o| o.cancel().is_none()),
    );

    v
}

/// The request `c` should produce on a fresh handle, with the duplicate fd numbers (which
/// the test cannot know) taken from what was built.
fn want_for(c: &Case, base: &CriuOpts, got: &CriuOpts) -> CriuOpts {
    let mut want = base.clone();
    (c.expect)(&mut want);
    if want.pidfd_store_sk == Some(-2) {
        assert!(
            got.pidfd_store_sk.is_some_and(|n| n > 2),
            "pidfd_store_sk not sent as a descriptor number: {:?}",
            got.pidfd_store_sk
        );
        want.pidfd_store_sk = got.pidfd_store_sk;
    }
    want
}

#[test]
fn every_setter_lands_in_its_field_and_bad_values_change_nothing() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for c in cases() {
        let name = format!("{}({})", c.setter, c.what);
        let h = ckpt_opts_new();
        assert!(!h.is_null());
        let base = comparable(build(h, c.op));

        let st = (c.call)(h);
        if st != CKPT_OK {
            failures.push(format!("{name}: returned {st}: {:?}", last_error(h)));
            // SAFETY: live handle from ckpt_opts_new, freed once.
            unsafe { ckpt_opts_free(h) };
            continue;
        }
        if let Some(e) = last_error(h) {
            failures.push(format!("{name}: succeeded but left the error {e:?}"));
        }
        let got = comparable(build(h, c.op));
        let want = want_for(&c, &base, &got);
        if got != want {
            failures.push(format!("{name}: request differs:{}", diff(&want, &got)));
        }
        // SAFETY: live handle.
        if !(c.holds)(unsafe { &*h }.options()) {
            failures.push(format!("{name}: the options do not hold the value"));
        }

        for b in &c.bad {
            let bad_name = format!("{} with {}", c.setter, b.what);
            // After a good value: the bad one changes nothing and says why.
            let st = (b.call)(h);
            if st != b.status {
                failures.push(format!(
                    "{bad_name}: returned {st}, expected {} ({:?})",
                    b.status,
                    last_error(h)
                ));
            }
            match last_error(h) {
                Some(e) if !e.trim().is_empty() => {}
                other => failures.push(format!("{bad_name}: no error message ({other:?})")),
            }
            let after = comparable(build(h, c.op));
            if after != got {
                failures.push(format!(
                    "{bad_name}: changed the request:{}",
                    diff(&got, &after)
                ));
            }
            // SAFETY: live handle.
            if !(c.holds)(unsafe { &*h }.options()) {
                failures.push(format!("{bad_name}: changed the options"));
            }
            // On an empty handle: still nothing set.
            let fresh = ckpt_opts_new();
            let st = (b.call)(fresh);
            let built = comparable(build(fresh, c.op));
            if st != b.status || built != base {
                failures.push(format!(
                    "{bad_name} on an empty handle: returned {st}, request changed:{}",
                    diff(&base, &built)
                ));
            }
            // SAFETY: live handle from ckpt_opts_new, freed once.
            unsafe { ckpt_opts_free(fresh) };
        }
        // A later success clears the recorded error.
        if !c.bad.is_empty() && (c.call)(h) == CKPT_OK && last_error(h).is_some() {
            failures.push(format!(
                "{name}: a success after a failure kept the old error"
            ));
        }
        // SAFETY: live handle from ckpt_opts_new, freed once.
        unsafe { ckpt_opts_free(h) };

        // A NULL handle is refused, never dereferenced.
        let st = (c.call)(std::ptr::null_mut());
        if st != CKPT_ERR_NULL_ARGUMENT {
            failures.push(format!("{name} on a NULL handle: returned {st}"));
        }
        checked += 1 + c.bad.len();
    }
    assert!(
        failures.is_empty(),
        "{} mapping failures:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    println!("{checked} setter calls checked");
}

/// Every setter the header declares has a case above, and every case names a real setter.
#[test]
fn every_setter_in_the_header_is_covered() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/ckpt.h"))
            .unwrap();
    let declared: BTreeSet<String> = header
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("ckpt_opts_set_") || w.starts_with("ckpt_opts_add_"))
        .map(str::to_string)
        .collect();
    let covered: BTreeSet<String> = cases().iter().map(|c| c.setter.to_string()).collect();
    let missing: Vec<_> = declared.difference(&covered).collect();
    let unknown: Vec<_> = covered.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "setters without a mapping case: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "cases for setters not in include/ckpt.h: {unknown:?}"
    );
    println!("{} setters covered", declared.len());
}

/// The criu_opts fields ckpt fills itself; `ckpt_managed_fields` checks each.
const MANAGED: [&str; 7] = [
    "images_dir_fd",
    "images_dir",
    "work_dir_fd",
    "pid",
    "notify_scripts",
    "rst_sibling",
    "status_fd",
];

fn field_names(c: &CriuOpts) -> Vec<(String, String)> {
    // `{:#?}` puts each top-level field on its own line, indented by four spaces.
    let mut out: Vec<(String, String)> = Vec::new();
    for line in format!("{c:#?}").lines().skip(1) {
        if let Some(rest) = line.strip_prefix("    ")
            && !rest.starts_with(' ')
            && let Some((name, value)) = rest.split_once(": ")
        {
            out.push((name.to_string(), value.to_string()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line.trim());
        }
    }
    out
}

/// Every criu_opts field is changed by at least one setter case, or is filled by ckpt.
#[test]
fn every_criu_opts_field_is_reached() {
    let mut reached = BTreeSet::new();
    for c in cases() {
        let base = CriuOpts::default();
        let mut want = base.clone();
        (c.expect)(&mut want);
        for ((n, a), (_, b)) in field_names(&base).into_iter().zip(field_names(&want)) {
            if a != b {
                reached.insert(n);
            }
        }
    }
    let all: Vec<String> = field_names(&CriuOpts::default())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(all.len() > 60, "could not read CriuOpts' fields: {all:?}");
    let unreached: Vec<_> = all
        .iter()
        .filter(|n| !reached.contains(*n) && !MANAGED.contains(&n.as_str()))
        .collect();
    assert!(
        unreached.is_empty(),
        "criu_opts fields no setter reaches: {unreached:?}"
    );
    for m in MANAGED {
        assert!(
            all.iter().any(|n| n == m),
            "MANAGED names {m}, which CriuOpts lacks"
        );
    }
}

/// What ckpt fills itself, and that nothing else is set on an empty handle.
#[test]
fn ckpt_managed_fields() {
    let h = ckpt_opts_new();
    for (op, log) in [
        (Op::Dump, "dump.log"),
        (Op::PreDump, "pre-dump.log"),
        (Op::Restore, "restore.log"),
        (Op::PageServer, "page-server.log"),
        (Op::Check, "check.log"),
    ] {
        let got = comparable(build(h, op));
        let want = CriuOpts {
            images_dir_fd: 9,
            work_dir_fd: Some(10),
            pid: Some(PID),
            log_file: Some(log.into()),
            log_level: Some(request::DEFAULT_LOG_LEVEL),
            // The restored tree becomes the caller's child.
            rst_sibling: (op == Op::Restore).then_some(true),
            ..Default::default()
        };
        assert_eq!(
            got,
            want,
            "{op:?} from an empty handle:{}",
            diff(&want, &got)
        );
        // Unset really is unset: no explicit zero for anything ckpt was not given.
        assert_eq!(got.manage_cgroups_mode, None);
        assert_eq!(got.empty_ns, None);
        assert_eq!(
            got.images_dir, None,
            "the directory travels as images_dir_fd"
        );
        assert_eq!(got.status_fd, None);
        assert_eq!(got.pidfd_store_sk, None);
    }
    // A log file name replaces the per-operation default everywhere.
    // SAFETY: live handle; NUL-terminated literal.
    assert_eq!(
        unsafe { ckpt_opts_set_log_file(h, c"x.log".as_ptr()) },
        CKPT_OK
    );
    for op in [Op::Dump, Op::Restore, Op::PreDump] {
        assert_eq!(build(h, op).log_file.as_deref(), Some(&b"x.log"[..]));
    }
    // An explicit track_mem(false) wins over the parent path's default.
    // SAFETY: live handle; NUL-terminated literals.
    unsafe {
        assert_eq!(ckpt_opts_set_parent_path(h, c"../p".as_ptr()), CKPT_OK);
        assert_eq!(build(h, Op::Dump).track_mem, Some(true));
        assert_eq!(ckpt_opts_set_track_mem(h, false), CKPT_OK);
        assert_eq!(build(h, Op::Dump).track_mem, Some(false));
        ckpt_opts_free(h);
    }
    // The status fd is written by ckpt on status-ready, never handed to CRIU.
    let h = ckpt_opts_new();
    let (_r, w) = pipe();
    let fd = dup(w.as_raw_fd());
    // SAFETY: live handle; `fd` is ours to hand over.
    assert_eq!(unsafe { ckpt_opts_set_status_fd(h, fd) }, CKPT_OK);
    assert_eq!(build(h, Op::Dump).status_fd, None);
    // SAFETY: live handle, freed once.
    unsafe { ckpt_opts_free(h) };
}

/// Notifications are asked for whenever something consumes them.
#[test]
fn notify_scripts_follow_their_consumers() {
    let h = ckpt_opts_new();
    // SAFETY: live handle; the callback is safe to call with any userdata.
    assert_eq!(
        unsafe { ckpt_opts_set_notify(h, Some(notify_cb), std::ptr::null_mut()) },
        CKPT_OK
    );
    for op in [Op::Dump, Op::PreDump, Op::Restore] {
        assert_eq!(
            build(h, op).notify_scripts,
            Some(true),
            "{op:?} with a callback"
        );
    }
    // SAFETY: live handle, freed once.
    unsafe { ckpt_opts_free(h) };

    let h = ckpt_opts_new();
    let (_r, w) = pipe();
    let fd = dup(w.as_raw_fd());
    // SAFETY: live handle; `fd` is ours to hand over.
    assert_eq!(unsafe { ckpt_opts_set_status_fd(h, fd) }, CKPT_OK);
    assert_eq!(
        build(h, Op::Dump).notify_scripts,
        Some(true),
        "status-ready needs notifications"
    );
    // SAFETY: live handle, freed once.
    unsafe { ckpt_opts_free(h) };

    let h = ckpt_opts_new();
    // SAFETY: live handle; NUL-terminated literal.
    assert_eq!(
        unsafe { ckpt_opts_set_console_socket(h, c"/run/c.sock".as_ptr()) },
        CKPT_OK
    );
    assert_eq!(
        build(h, Op::Restore).notify_scripts,
        Some(true),
        "orphan-pts-master needs notifications"
    );
    // SAFETY: live handle, freed once.
    unsafe { ckpt_opts_free(h) };
    // A dump under a timeout watches for pre-dump and post-dump.
    let h = ckpt_opts_new();
    // SAFETY: live handle.
    assert_eq!(unsafe { ckpt_opts_set_timeout_ms(h, 1000) }, CKPT_OK);
    assert_eq!(build(h, Op::Dump).notify_scripts, Some(true), "kill mode");
    assert_eq!(build(h, Op::PreDump).notify_scripts, None, "pre-dump");
    assert_eq!(build(h, Op::Restore).notify_scripts, None, "restore");
    // SAFETY: live handle.
    assert_eq!(unsafe { ckpt_opts_set_leave_running(h, true) }, CKPT_OK);
    assert_eq!(
        build(h, Op::Dump).notify_scripts,
        Some(true),
        "leave-running"
    );
    // SAFETY: live handle, freed once.
    unsafe { ckpt_opts_free(h) };
    // So does a dump under a cancellation token: a cancel after CRIU killed the tree must be
    // told from one before it had.
    let h = ckpt_opts_new();
    let c = ckpt_cancel_new();
    // SAFETY: live handles; the options keep their own reference to the token.
    assert_eq!(unsafe { ckpt_opts_set_cancel(h, c) }, CKPT_OK);
    assert_eq!(build(h, Op::Dump).notify_scripts, Some(true), "cancel");
    assert_eq!(
        build(h, Op::Restore).notify_scripts,
        None,
        "cancel, restore"
    );
    // SAFETY: live handles, each freed once.
    unsafe {
        ckpt_cancel_free(c);
        ckpt_opts_free(h);
    }
}

/// Linux paths are bytes: every path setter takes one that is not UTF-8, and the bytes reach
/// the request (or the option ckpt uses itself) unchanged. Text CRIU reads as text (lsm
/// profile, page server, cgroup controllers, ...) still refuses it (the cases above).
#[test]
fn path_setters_take_bytes_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    type Check = fn(&Options, &CriuOpts) -> Option<Vec<u8>>;
    fn p(v: Option<&std::path::Path>) -> Option<Vec<u8>> {
        v.map(|p| p.as_os_str().as_bytes().to_vec())
    }
    let raw = b"/x/caf\xe9";
    let rows: Vec<(&str, TextFn, Check)> = vec![
        (
            "ckpt_opts_set_image_path",
            ckpt_opts_set_image_path,
            |o, _| p(o.image_path()),
        ),
        (
            "ckpt_opts_set_work_path",
            ckpt_opts_set_work_path,
            |o, _| p(o.work_path()),
        ),
        (
            "ckpt_opts_set_criu_path",
            ckpt_opts_set_criu_path,
            |o, _| p(o.criu_path()),
        ),
        ("ckpt_opts_set_pid_file", ckpt_opts_set_pid_file, |o, _| {
            p(o.pid_file())
        }),
        (
            "ckpt_opts_set_console_socket",
            ckpt_opts_set_console_socket,
            |o, _| p(o.console_socket()),
        ),
        (
            "ckpt_opts_set_service_address",
            ckpt_opts_set_service_address,
            |o, _| p(o.service_address()),
        ),
        ("ckpt_opts_set_root", ckpt_opts_set_root, |_, r| {
            r.root.clone()
        }),
        (
            "ckpt_opts_set_freeze_cgroup",
            ckpt_opts_set_freeze_cgroup,
            |_, r| r.freeze_cgroup.clone(),
        ),
        (
            "ckpt_opts_set_config_file",
            ckpt_opts_set_config_file,
            |_, r| r.config_file.clone(),
        ),
        (
            "ckpt_opts_set_cgroup_props_file",
            ckpt_opts_set_cgroup_props_file,
            |_, r| r.cgroup_props_file.clone(),
        ),
        (
            "ckpt_opts_set_cgroup_yard",
            ckpt_opts_set_cgroup_yard,
            |_, r| r.cgroup_yard.clone(),
        ),
        (
            "ckpt_opts_set_tls_cacert",
            ckpt_opts_set_tls_cacert,
            |_, r| r.tls_cacert.clone(),
        ),
        (
            "ckpt_opts_set_tls_cacrl",
            ckpt_opts_set_tls_cacrl,
            |_, r| r.tls_cacrl.clone(),
        ),
        ("ckpt_opts_set_tls_cert", ckpt_opts_set_tls_cert, |_, r| {
            r.tls_cert.clone()
        }),
        ("ckpt_opts_set_tls_key", ckpt_opts_set_tls_key, |_, r| {
            r.tls_key.clone()
        }),
        (
            "ckpt_opts_add_skip_mount",
            ckpt_opts_add_skip_mount,
            |_, r| r.skip_mnt.first().cloned(),
        ),
        (
            "ckpt_opts_add_irmap_scan_path",
            ckpt_opts_add_irmap_scan_path,
            |_, r| r.irmap_scan_paths.first().cloned(),
        ),
    ];
    let mut covered: BTreeSet<&str> = rows.iter().map(|r| r.0).collect();
    covered.insert("ckpt_opts_set_log_file");
    covered.insert("ckpt_opts_set_parent_path");
    assert_eq!(
        covered,
        PATH_SETTERS.iter().copied().collect(),
        "every path setter is checked here"
    );
    let value = CString::new(&raw[..]).unwrap();
    for (name, f, check) in rows {
        let h = ckpt_opts_new();
        // SAFETY: live handle; NUL-terminated string.
        let st = unsafe { f(h, value.as_ptr()) };
        assert_eq!(st, CKPT_OK, "{name}: {:?}", last_error(h));
        // SAFETY: live handle, this thread only.
        let o = unsafe { &*h }.options();
        let req = request::build(o, Op::Dump, Some(PID), &fds());
        assert_eq!(check(o, &req).as_deref(), Some(&raw[..]), "{name}");
        // SAFETY: freed once.
        unsafe { ckpt_opts_free(h) };
    }
    // The log name and the parent path (relative, inside the image directory).
    let h = ckpt_opts_new();
    // SAFETY: live handle; NUL-terminated literals.
    unsafe {
        assert_eq!(ckpt_opts_set_log_file(h, c"caf\xe9.log".as_ptr()), CKPT_OK);
        assert_eq!(ckpt_opts_set_parent_path(h, c"../pr\xe9".as_ptr()), CKPT_OK);
    }
    let req = build(h, Op::Dump);
    assert_eq!(req.log_file.as_deref(), Some(&b"caf\xe9.log"[..]));
    assert_eq!(req.parent_img.as_deref(), Some(&b"../pr\xe9"[..]));
    // Joined namespaces' files and external mounts are paths too.
    // SAFETY: live handle; NUL-terminated literals.
    unsafe {
        assert_eq!(
            ckpt_opts_add_join_ns(h, c"net".as_ptr(), c"/run/n\xe9".as_ptr(), std::ptr::null()),
            CKPT_OK
        );
        assert_eq!(
            ckpt_opts_add_ext_mount(h, c"/m\xe9".as_ptr(), c"/h\xe9".as_ptr()),
            CKPT_OK
        );
        assert_eq!(
            ckpt_opts_add_cgroup_root(h, std::ptr::null(), c"/c\xe9".as_ptr()),
            CKPT_OK
        );
    }
    let req = build(h, Op::Restore);
    assert_eq!(req.join_ns[0].ns_file, b"/run/n\xe9");
    assert_eq!(req.ext_mnt[0].key, b"/m\xe9");
    assert_eq!(req.ext_mnt[0].val, b"/h\xe9");
    assert_eq!(req.cg_root[0].path, b"/c\xe9");
    // SAFETY: freed once.
    unsafe { ckpt_opts_free(h) };
}
