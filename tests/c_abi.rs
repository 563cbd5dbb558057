//! The C ABI driving real operations: the C-side counterparts of tests in core/tests (an
//! iterative pre-dump against the scripted fake criu, a restore, a pidfd store socket and the
//! LSM profile setter against the real CRIU), called as a C program would.

#[path = "../core/tests/common/mod.rs"]
mod common;
#[path = "../core/tests/faultkit/mod.rs"]
mod faultkit;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::MutexGuard;

use ckpt::{Code, StatKey};
use common::criu_allowed;
use common::{Proc, TempDir, assert_counter_continues, dumped_counter};
use faultkit::{Snapshot, fake_criu, scenario, set_env};

/// Both test kits' locks: the fault tests count this process's fds and children, the restores
/// need their pids free; neither may run beside the other.
fn serial() -> (MutexGuard<'static, ()>, faultkit::Serial) {
    (common::serial(), faultkit::serial())
}

fn read_trace(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (pid, rest) = l.split_once(' ').unwrap();
            (pid.to_string(), rest.to_string())
        })
        .collect()
}

fn criu() -> PathBuf {
    std::env::var_os("CKPT_CRIU")
        .map(PathBuf::from)
        .unwrap_or_else(|| "criu".into())
}

fn workdir(tag: &str) -> PathBuf {
    let d =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("c-abi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spawn_loop() -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "i=0; while :; do i=$((i+1)); sleep 0.05; done"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid and close_range are async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::close_range(3, u32::MAX, 0);
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    child
}

#[test]
fn lsm_profile_without_type_is_refused_by_the_c_setter() {
    let h = ckpt_ffi::opts::ckpt_opts_new();
    let s = CString::new("apparmor").unwrap();
    // SAFETY: a live handle and a NUL-terminated string.
    let st = unsafe { ckpt_ffi::opts::ckpt_opts_set_lsm_profile(h, s.as_ptr()) };
    assert_eq!(st, Code::InvalidArgument as u32);
    // SAFETY: the handle came from ckpt_opts_new and is freed once.
    unsafe { ckpt_ffi::opts::ckpt_opts_free(h) };
}

#[test]
fn iterative_predump_through_the_c_api() {
    use ckpt_ffi::error::{ckpt_error, ckpt_error_free};
    use ckpt_ffi::ops::ckpt_checkpoint_iterative;
    use ckpt_ffi::opts::*;
    use ckpt_ffi::stats::{ckpt_stats, ckpt_stats_free, ckpt_stats_get};
    use std::ffi::{CString, c_void};

    unsafe extern "C" fn go_on(ud: *mut c_void, round: u32, st: *const ckpt_stats) -> i32 {
        let mut pages = 0u64;
        // SAFETY: `st` is valid during the callback; `pages` is a local u64.
        unsafe { ckpt_stats_get(st, StatKey::PagesWritten as u32, &mut pages) };
        // SAFETY: `ud` is the Vec passed below, alive for the whole call.
        unsafe { (*(ud as *mut Vec<(u32, u64)>)).push((round, pages)) };
        i32::from(round < 1)
    }

    let _g = serial();
    scenario("predump");
    let dir = TempDir::new("predump-c");
    let trace = dir.join("trace");
    set_env(&[("CKPT_FAKE_TRACE", Some(trace.to_str().unwrap()))]);
    let fake = CString::new(fake_criu().to_str().unwrap()).unwrap();
    let img = CString::new(dir.join("img").to_str().unwrap()).unwrap();
    let mut seen: Vec<(u32, u64)> = Vec::new();
    let snap = Snapshot::take();
    // SAFETY: every pointer below is live for the calls; the handle is freed once.
    unsafe {
        let o = ckpt_opts_new();
        assert_eq!(ckpt_opts_set_criu_path(o, fake.as_ptr()), 0);
        assert_eq!(ckpt_opts_set_image_path(o, img.as_ptr()), 0);
        let mut stats: *mut ckpt_stats = std::ptr::null_mut();
        let mut err: *mut ckpt_error = std::ptr::null_mut();
        let st = ckpt_checkpoint_iterative(
            o,
            std::process::id() as i32,
            4,
            Some(go_on),
            (&mut seen as *mut Vec<(u32, u64)>).cast(),
            &mut stats,
            &mut err,
        );
        assert_eq!(st, 0);
        assert!(err.is_null());
        assert!(!stats.is_null());
        ckpt_stats_free(stats);
        ckpt_error_free(err);
        ckpt_opts_free(o);
    }
    snap.assert_clean("C iterative");
    assert_eq!(seen, vec![(1, 100)]);
    let t = read_trace(&trace);
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(
        t[2].1
            .starts_with("Dump dir=img parent=pre-1 track_mem=true"),
        "{t:?}"
    );
}

// ---- faults only the real CRIU produces ----

#[test]
fn restore_through_the_c_abi() {
    if !criu_allowed("restore_through_the_c_abi") {
        return;
    }
    use ckpt_ffi::{error as cerr, ops as cops, opts as copts, stats as cstats};
    let _s = serial();
    let d = dumped_counter("cabi");
    let pid_file = d.dir.join("c.pid");
    let h = copts::ckpt_opts_new();
    let img = CString::new(d.images().to_str().unwrap()).unwrap();
    let pf = CString::new(pid_file.to_str().unwrap()).unwrap();
    let mut pid = 0;
    let mut stats = std::ptr::null_mut();
    let mut err = std::ptr::null_mut();
    // SAFETY: a live handle, NUL-terminated strings and valid out-pointers throughout.
    unsafe {
        assert_eq!(copts::ckpt_opts_set_image_path(h, img.as_ptr()), 0);
        assert_eq!(copts::ckpt_opts_set_pid_file(h, pf.as_ptr()), 0);
        let st = cops::ckpt_restore(h, &mut pid, &mut stats, &mut err);
        if st != 0 {
            let m = std::ffi::CStr::from_ptr(cerr::ckpt_error_message(err));
            panic!("ckpt_restore: {st}: {m:?}");
        }
        assert!(err.is_null());
    }
    let _p = Proc::adopt(pid);
    assert_eq!(pid, d.pid);
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    let mut v = 0u64;
    // SAFETY: `stats` came from ckpt_restore; freed once below.
    unsafe {
        assert!(cstats::ckpt_stats_count(stats) > 0);
        assert_eq!(
            cstats::ckpt_stats_get(stats, StatKey::RestoreTimeUs as u32, &mut v),
            0
        );
        cstats::ckpt_stats_free(stats);
        copts::ckpt_opts_free(h);
    }
    assert!(v > 0);
    assert_counter_continues(&d.counter, d.at_dump);

    // A restore from a directory without images, through C: NotFound, with a message.
    let h = copts::ckpt_opts_new();
    let empty = CString::new(d.dir.sub("empty").to_str().unwrap()).unwrap();
    // SAFETY: as above.
    unsafe {
        copts::ckpt_opts_set_image_path(h, empty.as_ptr());
        let st = cops::ckpt_restore(h, &mut pid, std::ptr::null_mut(), &mut err);
        assert_eq!(st, Code::NotFound as u32);
        assert_eq!(pid, 0);
        assert_eq!(cerr::ckpt_error_code(err), st);
        cerr::ckpt_error_free(err);
        copts::ckpt_opts_free(h);
    }
}

/// `pidfd_store_sk` carries a number in the caller's descriptor table, which CRIU resolves with
/// pidfd_getfd. On its first use CRIU binds the socket to an abstract name and connects it to
/// itself; seeing that name on the caller's own socket proves CRIU took the right descriptor.
#[test]
fn pidfd_store_socket_reaches_real_criu() {
    if !criu_allowed("pidfd_store_socket_reaches_real_criu") {
        return;
    }
    use ckpt_ffi::opts::*;
    use ckpt_ffi::{CKPT_OK, error::*};
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrLike, UnixAddr, getsockname, socket,
    };
    use std::os::fd::AsRawFd;

    let _s = serial();
    let store = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let dir = workdir("pidfd-store");
    let images = CString::new(dir.join("images").to_str().unwrap()).unwrap();
    let criu_path = CString::new(criu().to_str().unwrap()).unwrap();
    let mut child = spawn_loop();
    let pid = child.id() as i32;

    let h = ckpt_opts_new();
    let mut err: *mut ckpt_error = std::ptr::null_mut();
    // SAFETY: `h` is live and used by this thread only; the strings are NUL-terminated and
    // outlive the calls; `err` is written by ckpt_checkpoint and freed below.
    let st = unsafe {
        assert_eq!(ckpt_opts_set_image_path(h, images.as_ptr()), CKPT_OK);
        assert_eq!(ckpt_opts_set_criu_path(h, criu_path.as_ptr()), CKPT_OK);
        assert_eq!(ckpt_opts_set_leave_running(h, true), CKPT_OK);
        assert_eq!(ckpt_opts_set_pidfd_store_sk(h, store.as_raw_fd()), CKPT_OK);
        ckpt_ffi::ops::ckpt_checkpoint(h, pid, std::ptr::null_mut(), &mut err)
    };
    let message = if err.is_null() {
        String::new()
    } else {
        // SAFETY: a live error from ckpt_checkpoint; the message is copied before the free.
        unsafe {
            let m = std::ffi::CStr::from_ptr(ckpt_error_message(err))
                .to_string_lossy()
                .into_owned();
            ckpt_error_free(err);
            m
        }
    };
    // SAFETY: live handle, freed once.
    unsafe { ckpt_opts_free(h) };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(st, CKPT_OK, "dump with a pidfd store failed: {message}");

    let name = getsockname::<UnixAddr>(store.as_raw_fd()).unwrap();
    let abstract_name = name
        .as_abstract()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    assert!(
        // CRIU names it "\0/criu-pidfd-store-<client pid>-<fd number>-<run id>".
        abstract_name.starts_with(&format!("/criu-pidfd-store-{}-", std::process::id())),
        "CRIU did not set up the caller's socket as its pidfd store (name {abstract_name:?}, family {:?})",
        name.family()
    );
    println!("CRIU bound the caller's pidfd store socket to @{abstract_name}");
    let _ = std::fs::remove_dir_all(&dir);
}
