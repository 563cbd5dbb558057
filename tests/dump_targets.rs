//! Pids a checkpoint cannot take, refused before criu starts with a message that says what
//! the pid is: a thread that is not its process's leader, a zombie, a kernel thread. Each
//! also through the C API. Real processes; criu never runs, so no image directory is written.

#[path = "../core/tests/faultkit/mod.rs"]
mod faultkit;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckpt::{Code, Error, Options};
use faultkit::{Snapshot, TempDir, serial};

fn dump(pid: i32) -> Error {
    let dir = TempDir::new("faultsb-target");
    let img = dir.join("img");
    let o = {
        let mut o = Options::new();
        o.set_image_path(img.clone()).unwrap();
        o.set_timeout(Some(Duration::from_secs(30)));
        o
    };
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, pid).expect_err("the dump must be refused");
    snap.assert_clean("refused dump");
    assert!(
        !img.join("dump.log").exists(),
        "criu ran for pid {pid}: {e}"
    );
    // The C API gives the same status.
    let c_img = std::ffi::CString::new(dir.join("c-img").to_str().unwrap()).unwrap();
    // SAFETY: a fresh handle, live strings, freed once.
    unsafe {
        use ckpt_ffi::opts::*;
        let h = ckpt_opts_new();
        assert_eq!(ckpt_opts_set_image_path(h, c_img.as_ptr()), 0);
        let mut err = std::ptr::null_mut();
        let st = ckpt_ffi::ops::ckpt_checkpoint(h, pid, std::ptr::null_mut(), &mut err);
        assert_eq!(st, e.code as u32, "C API for pid {pid}");
        ckpt_ffi::error::ckpt_error_free(err);
        ckpt_opts_free(h);
    }
    e
}

fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_thread_that_is_not_the_leader() {
    let _g = serial();
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import threading, time\n\
             threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n\
             time.sleep(60)",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let end = Instant::now() + Duration::from_secs(10);
    let tid = loop {
        let tids: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|&t| t != pid)
            .collect();
        if let Some(&t) = tids.first() {
            break t;
        }
        assert!(Instant::now() < end, "python started no thread");
        std::thread::sleep(Duration::from_millis(20));
    };
    let e = dump(tid);
    let _ = child.kill();
    let _ = child.wait();
    println!("thread {tid} of {pid}: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(
        e.message
            .contains(&format!("is a thread of process {pid}, not a process")),
        "{e}"
    );
}

#[test]
fn a_zombie() {
    let _g = serial();
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    let end = Instant::now() + Duration::from_secs(10);
    while state(pid) != Some('Z') {
        assert!(Instant::now() < end, "true did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let e = dump(pid);
    child.wait().unwrap();
    println!("zombie {pid}: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::InvalidState, "{e}");
    assert!(e.message.contains("is a zombie"), "{e}");
}

#[test]
fn a_kernel_thread() {
    let _g = serial();
    // kthreadd is pid 2 in the initial pid namespace; this test runs there.
    let e = dump(2);
    println!("kernel thread 2: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    assert!(e.message.contains("is a kernel thread (kthreadd)"), "{e}");
}
