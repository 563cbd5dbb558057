//! Hostile input: paths that try to leave the image directory, log names with '/', status fds
//! that are not the caller's to give, and every input in fuzz/regressions/ replayed through
//! the fuzz harness (so each crash the fuzzers ever found stays fixed, on stable Rust).

#[path = "../core/tests/faultkit/mod.rs"]
mod faultkit;
#[path = "../fuzz/harness.rs"]
mod harness;

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ckpt::{Code, Options};
use ckpt_ffi::opts::*;
use faultkit::{Snapshot, TempDir, fake_criu, scenario, serial, set_env};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn image_and_work_directories_are_created_private() {
    let _g = serial();
    scenario("report-fds");
    let dir = TempDir::new("private");
    let img = dir.join("a/b/img");
    let work = dir.join("w/work");
    let o = {
        let mut o = Options::new();
        o.set_criu_path(fake_criu()).unwrap();
        o.set_image_path(&img).unwrap();
        o.set_work_path(&work).unwrap();
        o
    };
    // Even with a permissive umask: the mode is ckpt's, not the caller's umask's.
    // SAFETY: umask only changes this process's file creation mask; restored below.
    let old = unsafe { libc::umask(0) };
    let r = ckpt::ops::checkpoint(&o, std::process::id() as i32);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    assert!(r.is_err(), "the fake fails every request");
    for p in [dir.join("a"), dir.join("a/b"), img, dir.join("w"), work] {
        assert_eq!(mode(&p), 0o700, "{}", p.display());
    }
}

/// Runs a dump with `parent` against the fake peer; returns the error (if any) and the
/// requests the fake received.
fn dump_with_parent(dir: &TempDir, parent: &str) -> (Option<ckpt::Error>, String) {
    scenario("predump");
    let trace = dir.join(format!("trace-{}", parent.replace('/', "_")));
    set_env(&[("CKPT_FAKE_TRACE", Some(trace.to_str().unwrap()))]);
    let o = {
        let mut o = Options::new();
        o.set_criu_path(fake_criu()).unwrap();
        o.set_image_path(dir.join("img")).unwrap();
        o.set_parent_path(parent).unwrap();
        o
    };
    let snap = Snapshot::take();
    let r = ckpt::ops::checkpoint(&o, std::process::id() as i32);
    snap.assert_clean(parent);
    (r.err(), std::fs::read_to_string(&trace).unwrap_or_default())
}

#[test]
fn parent_path_cannot_escape_the_image_directory() {
    let _g = serial();
    let dir = TempDir::new("parent");
    let img = dir.join("img");
    std::fs::create_dir_all(img.join("pre-1/nested")).unwrap();
    std::fs::create_dir_all(dir.join("outside")).unwrap();
    std::fs::write(img.join("a-file"), b"").unwrap();
    let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, img.join(name));
    link(&dir.join("outside"), "escape-abs").unwrap();
    link(Path::new("../outside"), "escape-rel").unwrap();
    link(Path::new("."), "self").unwrap();
    link(Path::new("pre-1"), "inside").unwrap();
    link(Path::new("pre-1/nested/../../../outside"), "escape-deep").unwrap();

    let refused = [
        ("../outside", Code::InvalidArgument),
        ("pre-1/../../outside", Code::InvalidArgument),
        ("pre-1/..", Code::InvalidArgument),
        ("/tmp", Code::InvalidArgument),
        ("escape-abs", Code::InvalidArgument),
        ("escape-rel", Code::InvalidArgument),
        ("escape-deep", Code::InvalidArgument),
        ("self", Code::InvalidArgument),
        (".", Code::InvalidArgument),
        ("a-file", Code::InvalidArgument),
        ("missing", Code::NotFound),
    ];
    for (parent, code) in refused {
        let (e, trace) = dump_with_parent(&dir, parent);
        let e = e.unwrap_or_else(|| panic!("parent {parent:?} was accepted"));
        println!("parent {parent:?}: {:?}: {}", e.code, e.message);
        assert_eq!(e.code, code, "{parent:?}: {e}");
        assert!(trace.is_empty(), "{parent:?}: criu ran: {trace}");
    }
    for parent in ["pre-1", "inside", "pre-1/nested"] {
        let (e, trace) = dump_with_parent(&dir, parent);
        assert!(e.is_none(), "{parent:?}: {e:?}");
        assert!(
            trace.contains(&format!("Dump dir=img parent={parent} ")),
            "{trace}"
        );
    }
}

/// Calls a text setter through the C API with raw bytes (NUL added), returning the status
/// and the handle's last error.
fn set_text(
    f: unsafe extern "C" fn(*mut ckpt_opts, *const std::ffi::c_char) -> u32,
    bytes: Option<&[u8]>,
) -> (u32, String) {
    let c = bytes.map(|b| CString::new(b).unwrap());
    // SAFETY: a fresh handle, a NUL-terminated string or NULL, freed at the end.
    unsafe {
        let o = ckpt_opts_new();
        let st = f(o, c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()));
        let m = ckpt_opts_last_error(o);
        let msg = if m.is_null() {
            String::new()
        } else {
            CStr::from_ptr(m).to_string_lossy().into_owned()
        };
        ckpt_opts_free(o);
        (st, msg)
    }
}

#[test]
fn log_file_name_has_no_slash() {
    let _g = serial();
    let cases: [(Option<&[u8]>, u32); 7] = [
        (Some(b"a/b.log"), Code::InvalidArgument as u32),
        (Some(b"/var/log/x.log"), Code::InvalidArgument as u32),
        (Some(b"../x.log"), Code::InvalidArgument as u32),
        (Some(b".."), Code::InvalidArgument as u32),
        (Some(b"."), Code::InvalidArgument as u32),
        (Some(b""), Code::InvalidArgument as u32),
        (None, ckpt_ffi::CKPT_ERR_NULL_ARGUMENT),
    ];
    for (bytes, want) in cases {
        let (st, msg) = set_text(ckpt_opts_set_log_file, bytes);
        println!("log file {bytes:?}: {st}: {msg}");
        assert_eq!(st, want, "{bytes:?}: {msg}");
        assert!(!msg.is_empty());
    }
    assert_eq!(set_text(ckpt_opts_set_log_file, Some(b"dump-1.log")).0, 0);
    // A file name is bytes: one that is not UTF-8 is a name like any other.
    assert_eq!(set_text(ckpt_opts_set_log_file, Some(b"\xff\xfe.log")).0, 0);
}

fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only inspects the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

#[test]
fn status_fd_that_is_not_the_callers_to_give_is_refused() {
    let _g = serial();
    let (pr, pw) = nix::unistd::pipe().unwrap();
    let ro = std::fs::File::open("/dev/null").unwrap();
    let closed = {
        let f = std::fs::File::open("/dev/null").unwrap();
        f.as_raw_fd()
    };
    // SAFETY: a fresh handle used only here and freed once; fds are checked by ckpt.
    unsafe {
        let o = ckpt_opts_new();
        for (fd, why) in [
            (-1, "negative"),
            (0, "stdin"),
            (1, "stdout"),
            (2, "stderr"),
            (closed, "not open"),
            (ro.as_raw_fd(), "read-only"),
            (pr.as_raw_fd(), "read end of a pipe"),
        ] {
            let st = ckpt_opts_set_status_fd(o, fd);
            let msg = CStr::from_ptr(ckpt_opts_last_error(o)).to_string_lossy();
            println!("status fd {fd} ({why}): {st}: {msg}");
            assert_eq!(st, Code::BadFd as u32, "{why}");
        }
        assert!(fd_is_open(0) && fd_is_open(1) && fd_is_open(2));

        // The write end is the caller's to give, once.
        let w = pw.into_raw_fd();
        assert_eq!(ckpt_opts_set_status_fd(o, w), 0);
        let st = ckpt_opts_set_status_fd(o, w);
        let msg = CStr::from_ptr(ckpt_opts_last_error(o)).to_string_lossy();
        println!("status fd {w} given twice: {st}: {msg}");
        assert_eq!(st, Code::BadFd as u32, "given twice");
        assert!(
            fd_is_open(w),
            "the handle's status fd was closed by a refused call"
        );

        // The duplicates ckpt makes of inherited fds are the handle's, not the caller's.
        let (sr, sw) = nix::unistd::pipe().unwrap();
        let mut dups = Vec::new();
        for (i, fd) in [sr.as_raw_fd(), sw.as_raw_fd()].into_iter().enumerate() {
            let before = faultkit::open_fds();
            let k = CString::new(format!("pipe:[{i}]")).unwrap();
            assert_eq!(ckpt_opts_add_inherit_fd(o, k.as_ptr(), fd), 0);
            dups.push(*faultkit::open_fds().difference(&before).next().unwrap());
        }
        drop((sr, sw));
        for d in &dups {
            let st = ckpt_opts_set_status_fd(o, *d);
            let msg = CStr::from_ptr(ckpt_opts_last_error(o)).to_string_lossy();
            println!("status fd {d} (the handle's duplicate of an inherited fd): {st}: {msg}");
            assert_eq!(st, Code::BadFd as u32);
        }

        // Freeing closes what the handle owns, once: a file opened now is not touched.
        let bystander = std::fs::File::open("/dev/null").unwrap();
        ckpt_opts_free(o);
        assert!(fd_is_open(bystander.as_raw_fd()));
        assert!(!fd_is_open(w), "the status fd is closed with the handle");
        assert!(dups.iter().all(|d| !fd_is_open(*d)));
    }
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for p in &files {
        let data = std::fs::read(p).unwrap();
        println!("replaying {}", p.display());
        f(&data);
    }
    files.len()
}

#[test]
fn fuzz_regressions_replay() {
    // The harness counts this process's descriptors: no other test may open any meanwhile.
    let _g = serial();
    let n = replay("replies", harness::replies) + replay("c_api", harness::c_api);
    println!("{n} regression inputs replayed");
    assert!(n > 0);
}
