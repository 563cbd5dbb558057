//! A tree with a process of another user (a container whose `process.user` is not root) is
//! dumped by CRIU only when the dumper may read that process's resource limits (`prlimit`),
//! which takes `CAP_SYS_RESOURCE`. Where ckpt runs without it (this project's machine drops it
//! from root's bounding set) the dump is refused before criu starts, naming the process and the
//! capability; CRIU failed late with "Can't get rlimit 0: Operation not permitted". Where ckpt
//! has it, the dump is made. Needs root; the container case needs runc.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ckpt::error::Code;
use common::containers::{Counting, advancing, root, runc_ready};
use common::*;

fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 24) != 0)
}

#[test]
fn a_process_of_another_user_is_refused_without_cap_sys_resource() {
    if !root("dumping another user's process needs root") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("other-user");
    let mut cmd = Command::new("sleep");
    cmd.arg("60").uid(65534).gid(65534);
    let mut w = Proc::spawn(&mut cmd);
    let images = dir.join("img");
    let mut o = options(&images);
    o.set_leave_running(true);
    let r = ckpt::ops::checkpoint(&o, w.pid);
    if has_cap_sys_resource() {
        not_exercised(
            "the refusal: this process has CAP_SYS_RESOURCE, so CRIU can read the limits and the dump is made",
        );
        r.expect("a dump with CAP_SYS_RESOURCE");
    } else {
        let e = r.expect_err("refused without CAP_SYS_RESOURCE");
        assert_eq!(e.code, Code::Unsupported, "{e}");
        let m = e.to_string();
        assert!(
            m.contains(&format!("pid {}", w.pid))
                && m.contains("uid 65534")
                && m.contains("CAP_SYS_RESOURCE"),
            "{m}"
        );
        assert!(
            !images.join("dump.log").exists(),
            "criu was started: {}",
            images.display()
        );
    }
    assert!(
        Path::new(&format!("/proc/{}", w.pid)).exists(),
        "the process runs on"
    );
    w.kill();
}

/// The same for a runc container whose process runs as uid 65534: ckpt's container layer
/// refuses before criu, and the container stays thawed and counting.
#[test]
fn a_container_of_another_user_is_refused_without_cap_sys_resource() {
    if !runc_ready() {
        return;
    }
    if has_cap_sys_resource() {
        not_exercised(
            "the container's refusal: this process has CAP_SYS_RESOURCE, so CRIU can dump it",
        );
        return;
    }
    let _s = serial();
    let c = Counting::start_as("ckpt-other-user", "c", 65534);
    let images = c.work.join("img");
    let e = ckpt::container::checkpoint(&mut options(&images), &c.bundle, c.pid, false)
        .expect_err("refused without CAP_SYS_RESOURCE");
    assert_eq!(e.code, Code::Unsupported, "{e}");
    assert!(e.to_string().contains("CAP_SYS_RESOURCE"), "{e}");
    assert!(!images.join("dump.log").exists(), "criu was started");
    assert_eq!(c.freezer(), "THAWED");
    std::thread::sleep(Duration::from_millis(100));
    assert!(advancing(&c.bundle), "the container counts on");
}
