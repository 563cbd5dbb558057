//! The operation timeout, phase by phase, and the descriptors a notification hands out.
//!
//! With the scripted fake criu: a deadline that passes after CRIU's point of no return (the
//! dump must not become a failure), a criu that closes its socket and lingers, a criu that
//! dies leaving a restored root behind, and a callback that closes the descriptor it was
//! lent. With the real CRIU: a callback sleeping past the timeout at post-dump (the tree must
//! not be lost), and a console socket whose listen backlog is full.

#[path = "../core/tests/common/mod.rs"]
mod common;
#[path = "../core/tests/faultkit/mod.rs"]
mod faultkit;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ckpt::error::outcome;
use ckpt::{Code, Options};
use faultkit::{
    Snapshot, TempDir, assert_done_past_no_return, fake_criu, fake_options, scenario, serial,
};

fn fake_opts(dir: &Path, timeout_ms: u64) -> Options {
    fake_options(dir, Duration::from_millis(timeout_ms))
}

#[test]
fn deadline_after_post_dump_waits_for_criu_and_says_so() {
    let _g = serial();
    let dir = TempDir::new("no-return");
    let o = fake_opts(dir.path(), 1000);
    assert_done_past_no_return(&o, 1500, "slow after post-dump");
}

#[test]
fn deadline_during_the_post_dump_callback_makes_criu_abort() {
    let _g = serial();
    scenario("slow-after-post-dump");
    let dir = TempDir::new("late-ack");
    let mut o = fake_opts(dir.path(), 500);
    o.set_notify(Some(Arc::new(|n: &ckpt::Notification| {
        if n.script == "post-dump" {
            std::thread::sleep(Duration::from_millis(700));
        }
        Ok(())
    })));
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    snap.assert_clean("late post-dump ack");
    println!("{:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Timeout, "{e}");
    assert!(e.message.contains("told to abort"), "{e}");
    assert_eq!(e.outcome, 0, "the tree was not killed: {e}");
}

#[test]
fn criu_that_closes_its_socket_and_lingers_is_bounded_by_the_timeout() {
    let _g = serial();
    scenario("close-and-linger");
    let dir = TempDir::new("linger");
    let o = fake_opts(dir.path(), 1000);
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    let took = t0.elapsed();
    snap.assert_clean("close and linger");
    println!("{:?}: {} after {took:?}", e.code, e.message);
    assert_eq!(e.code, Code::CriuDied, "{e}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[test]
fn criu_lost_with_the_tree_in_hand_says_the_state_is_unknown() {
    let _g = serial();
    scenario("die-mid-notify");
    let dir = TempDir::new("in-hand");
    let o = fake_opts(dir.path(), 20_000);
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    snap.assert_clean("criu died after pre-dump");
    println!("{:?} outcome={}: {}", e.code, e.outcome, e.message);
    assert_eq!(e.code, Code::CriuDied, "{e}");
    assert_eq!(e.outcome, outcome::TREE_STATE_UNKNOWN, "{e}");
    assert!(e.message.contains("had the tree in hand"), "{e}");
}

#[test]
fn criu_dying_mid_restore_leaves_no_silent_root() {
    let _g = serial();
    scenario("restore-orphan");
    let dir = TempDir::new("orphan");
    std::fs::write(dir.join("inventory.img"), b"").unwrap();
    let o = fake_opts(dir.path(), 20_000);
    let snap = Snapshot::take();
    let e = ckpt::ops::restore(&o).unwrap_err();
    snap.assert_clean("criu died mid-restore");
    println!("{:?} pid={}: {}", e.code, e.pid, e.message);
    assert_eq!(e.code, Code::CriuDied, "{e}");
    assert!(e.pid > 0, "{e}");
    assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{e}");
    assert!(
        !Path::new(&format!("/proc/{}", e.pid)).exists(),
        "the orphan {} was not reaped",
        e.pid
    );
}

// ---- a callback that closes the descriptor it was lent ----

/// The callback closes the notification's fd and opens /dev/zero, which takes the same
/// number; ckpt must leave that new file alone.
#[test]
fn callback_closing_the_notification_fd() {
    let _g = serial();
    scenario("unexpected-fd");
    let dir = TempDir::new("closed-fd");
    let mut o = fake_opts(dir.path(), 20_000);
    o.set_leave_running(true);
    let reused: Arc<Mutex<Option<OwnedFd>>> = Arc::new(Mutex::new(None));
    let r2 = reused.clone();
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        let Some(fd) = n.fd else { return Ok(()) };
        let num = fd.as_raw_fd();
        // SAFETY: closing the number ckpt lent, which the test then reopens; ckpt must notice.
        unsafe { libc::close(num) };
        let f = std::fs::File::open("/dev/zero").map_err(|e| e.to_string())?;
        let f = OwnedFd::from(f);
        if f.as_raw_fd() != num {
            return Err(format!("/dev/zero got {} rather than {num}", f.as_raw_fd()));
        }
        *r2.lock().unwrap() = Some(f);
        Ok(())
    })));
    let r = ckpt::ops::checkpoint(&o, std::process::id() as i32);
    r.expect("dump");
    let f = reused.lock().unwrap().take().expect("the callback ran");
    let link = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()));
    assert_eq!(
        link.ok().as_deref(),
        Some(Path::new("/dev/zero")),
        "ckpt closed a descriptor it no longer owned"
    );
}

unsafe extern "C" fn c_closes_fd(
    ud: *mut std::ffi::c_void,
    n: *const ckpt_ffi::opts::ckpt_notification,
) -> i32 {
    // SAFETY: `n` is live during the callback.
    let fd = unsafe { ckpt_ffi::opts::ckpt_notification_fd(n) };
    if fd < 0 {
        return 0;
    }
    // SAFETY: the test closes the lent number and reopens it, as a careless program would.
    let new = unsafe {
        libc::close(fd);
        libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
    };
    // SAFETY: `ud` is the i32 the test passed, alive for the whole call.
    unsafe { *(ud as *mut i32) = new };
    i32::from(new != fd)
}

#[test]
fn callback_closing_the_notification_fd_through_the_c_api() {
    use ckpt_ffi::error::{ckpt_error, ckpt_error_free, ckpt_error_message};
    use ckpt_ffi::ops::ckpt_checkpoint;
    use ckpt_ffi::opts::*;
    use std::ffi::CString;
    let _g = serial();
    scenario("unexpected-fd");
    let dir = TempDir::new("closed-fd-c");
    let fake = CString::new(fake_criu().to_str().unwrap()).unwrap();
    let img = CString::new(dir.path().to_str().unwrap()).unwrap();
    let mut new_fd: i32 = -1;
    // SAFETY: every pointer below is live for the calls; the handle is freed once.
    unsafe {
        let o = ckpt_opts_new();
        assert_eq!(ckpt_opts_set_criu_path(o, fake.as_ptr()), 0);
        assert_eq!(ckpt_opts_set_image_path(o, img.as_ptr()), 0);
        assert_eq!(
            ckpt_opts_set_notify(o, Some(c_closes_fd), (&mut new_fd as *mut i32).cast()),
            0
        );
        let mut err: *mut ckpt_error = std::ptr::null_mut();
        let st = ckpt_checkpoint(o, std::process::id() as i32, std::ptr::null_mut(), &mut err);
        if st != 0 {
            panic!(
                "{st}: {:?}",
                std::ffi::CStr::from_ptr(ckpt_error_message(err))
            );
        }
        ckpt_error_free(err);
        ckpt_opts_free(o);
    }
    assert!(new_fd >= 0);
    let link = std::fs::read_link(format!("/proc/self/fd/{new_fd}"));
    assert_eq!(link.ok().as_deref(), Some(Path::new("/dev/zero")));
    // SAFETY: the callback opened it for the test.
    drop(unsafe { OwnedFd::from_raw_fd(new_fd) });
}

// ---- with the real CRIU ----

/// A kill-mode dump whose callback sleeps past the timeout at post-dump: before the fix
/// ckpt acknowledged, CRIU killed the tree, and ckpt then reported a timeout. Now CRIU is
/// told to abort, the tree runs on, and the error says the timeout passed.
#[test]
fn real_dump_with_a_callback_sleeping_past_the_timeout_at_post_dump() {
    let _g = serial();
    let dir = common::TempDir::new("slow-post-dump");
    let c = faultkit::Counter::start(dir.join("counter"));
    let mut o = common::options(&dir.join("img"));
    o.set_timeout(Some(Duration::from_millis(1000)));
    o.set_notify(Some(Arc::new(|n: &ckpt::Notification| {
        if n.script == "post-dump" {
            std::thread::sleep(Duration::from_millis(1100));
        }
        Ok(())
    })));
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean("slow post-dump");
    println!("slow post-dump: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Timeout, "{e}");
    // CRIU was told not to go on, rather than criu being killed in a race with its kill of
    // the tree (which the workload lost in 3 of 40 runs before).
    assert!(e.message.contains("told to abort"), "{e}");
    assert_eq!(e.outcome & outcome::TREE_KILLED, 0, "{e}");
    c.assert_alive("after a post-dump that came too late");
}

/// A kill-mode dump that finishes in time says it killed the tree.
#[test]
fn real_kill_mode_dump_says_the_tree_was_killed() {
    let _g = serial();
    let dir = common::TempDir::new("killed");
    let c = faultkit::Counter::start(dir.join("counter"));
    let mut o = common::options(&dir.join("img"));
    o.set_timeout(Some(Duration::from_secs(30)));
    let st = ckpt::ops::checkpoint(&o, c.pid()).expect("dump");
    assert_eq!(st.outcome, outcome::TREE_KILLED);
    o.set_leave_running(true);
    drop(c);
    let c = faultkit::Counter::start(dir.join("counter2"));
    let st = ckpt::ops::checkpoint(&o, c.pid()).expect("dump");
    assert_eq!(st.outcome, 0);
}

/// A restore whose console socket's listen backlog is full: connect() would wait for ever;
/// the operation timeout bounds it, and the restored tree is undone.
#[test]
fn real_console_socket_with_a_full_backlog_is_bounded_by_the_timeout() {
    use std::process::Command;
    let _g = serial();
    let _s = common::serial();
    let dir = common::TempDir::new("backlog");
    let pty = common::Pty::open();
    let mut w = common::spawn_on_tty(Command::new("sh").args(["-c", "read l"]), &pty.slave);
    let images = dir.join("img");
    let mut o = common::options(&images);
    o.set_orphan_pts_master(true);
    common::wait_for("the shell to wait for input", common::WAIT, || {
        (common::proc_state(w.pid) == Some('S')).then_some(())
    });
    ckpt::ops::checkpoint(&o, w.pid).expect("checkpoint");
    w.wait_exit(common::WAIT);
    common::wait_pid_free(w.pid);
    drop(pty);

    // A listener with backlog 0 that never accepts, filled by connections of our own.
    let sock_path = dir.join("console.sock");
    let listener = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let addr = nix::sys::socket::UnixAddr::new(&sock_path).unwrap();
    nix::sys::socket::bind(listener.as_raw_fd(), &addr).unwrap();
    nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::new(0).unwrap()).unwrap();
    let mut fillers = Vec::new();
    loop {
        let s = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC | nix::sys::socket::SockFlag::SOCK_NONBLOCK,
            None,
        )
        .unwrap();
        match nix::sys::socket::connect(s.as_raw_fd(), &addr) {
            Ok(()) => fillers.push(s),
            Err(nix::errno::Errno::EAGAIN) => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(fillers.len() < 64, "the backlog never filled");
    }
    let mut o = common::options(&images);
    o.set_console_socket(sock_path).unwrap();
    o.set_timeout(Some(Duration::from_millis(1500)));
    let t0 = Instant::now();
    let e = ckpt::ops::restore(&o).unwrap_err();
    let took = t0.elapsed();
    println!(
        "full backlog: {:?} pid={}: {} after {took:?}",
        e.code, e.pid, e.message
    );
    assert_eq!(e.code, Code::Timeout, "{e}");
    assert!(e.message.contains("console socket"), "{e}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(
        common::reap_session(w.pid, common::WAIT),
        "the half-restored tree was left behind"
    );
    drop(fillers);
}

/// A process holding `mb` MiB of written memory and appending a counter to `file`.
fn big_workload(file: &Path, mb: usize) -> common::Proc {
    use std::process::{Command, Stdio};
    let script = format!(
        "import time,sys\nb=bytearray({mb}<<20)\nfor i in range(0,len(b),4096): b[i]=1\n\
         i=0\nwhile True:\n i+=1\n open(sys.argv[1],'a').write('%d\\n'%i)\n time.sleep(0.05)\n"
    );
    let p = common::Proc::spawn(
        Command::new("python3")
            .args(["-c", &script])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    common::wait_counter(file, 2);
    p
}

/// A kill-mode dump of a 128 MiB workload with timeouts around the dump's own duration. Before,
/// a timeout that fired while CRIU finished could report CKPT_ERR_TIMEOUT for a tree CRIU had
/// already killed. Now, for every timeout: success says the tree was killed; a timeout error
/// either leaves the workload running or says its state is unknown (criu lost with the tree
/// in hand); never a timeout for a workload that is silently gone.
#[test]
fn real_timeouts_around_a_big_dump_never_hide_a_killed_tree() {
    let _g = serial();
    let _s = common::serial();
    let dir = common::TempDir::new("big-dump");
    // How long a leave-running dump of this workload takes here.
    let f = dir.join("probe");
    let w = big_workload(&f, 128);
    let mut o = common::options(&dir.join("probe-img"));
    o.set_leave_running(true);
    let t0 = Instant::now();
    ckpt::ops::checkpoint(&o, w.pid).expect("probe dump");
    let full = t0.elapsed();
    drop(w);
    let _ = std::fs::remove_dir_all(dir.join("probe-img"));
    println!("a dump of 128 MiB takes {full:?} here");
    let mut seen = Vec::new();
    for pct in [30u32, 60, 80, 90, 100, 110, 130] {
        let file = dir.join(format!("counter-{pct}"));
        let mut w = big_workload(&file, 128);
        let mut o = common::options(&dir.join(format!("img-{pct}")));
        o.set_timeout(Some(full * pct / 100));
        let r = ckpt::ops::checkpoint(&o, w.pid);
        match &r {
            Ok(st) => {
                assert_ne!(st.outcome & outcome::TREE_KILLED, 0, "{pct}%");
                w.wait_exit(common::WAIT);
                seen.push(format!("{pct}%: ok, outcome {}", st.outcome));
            }
            Err(e) => {
                assert!(
                    matches!(e.code, Code::Timeout | Code::CriuDied),
                    "{pct}%: {e}"
                );
                if e.outcome & outcome::TREE_STATE_UNKNOWN == 0 {
                    let v = common::read_counter(&file).unwrap_or(0);
                    common::wait_counter(&file, v + 2);
                    assert!(w.alive(), "{pct}%: a timeout hid a killed tree: {e}");
                }
                std::thread::sleep(Duration::from_millis(300));
                seen.push(format!(
                    "{pct}%: {:?} outcome {} (workload {})",
                    e.code,
                    e.outcome,
                    if w.alive() { "running" } else { "gone" }
                ));
            }
        }
        drop(w);
        let _ = std::fs::remove_dir_all(dir.join(format!("img-{pct}")));
    }
    println!("{}", seen.join("; "));
}
