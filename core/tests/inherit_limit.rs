//! CRIU's limit on inherited fds. They reach criu as descriptors 4 and up; once CRIU's own
//! descriptors pass 1023, its nftables probe (select(), FD_SETSIZE 1024) aborts. Measured
//! here: a plain restore takes 1014 and aborts with 1015. The setter refuses the 1001st,
//! keeping a margin for the descriptors other options make CRIU open (a work directory, ...).

mod faultkit;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use ckpt::{Code, Options};
use faultkit::{Counter, TempDir, serial};

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
fn the_setter_refuses_the_1001st() {
    let mut o = Options::new();
    for i in 0..ckpt::options::MAX_INHERIT_FDS {
        o.add_inherit_fd(&format!("ckpt-unused-{i}"), dev_null())
            .unwrap();
    }
    let e = o.add_inherit_fd("one-too-many", dev_null()).unwrap_err();
    println!("the 1001st inherited fd: {}", e.message);
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(
        e.message.contains("at most 1000") && e.message.contains("FD_SETSIZE"),
        "{e}"
    );
    assert_eq!(o.inherit_fd_count(), 1000, "nothing half-applied");
}

/// Waits until no process has `pid`, reaping what this process may reap.
fn wait_pid_free(pid: i32) {
    let end = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: reaping any exited child of ours without blocking.
        unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG | libc::__WALL) };
        assert!(Instant::now() < end, "pid {pid} stays taken");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The limit is CRIU's: a restore with as many inherited fds as the setter allows succeeds,
/// with a work directory of its own too; one with 1015 (put in past the setter) aborts in
/// CRIU's nftables probe.
#[test]
fn criu_takes_the_setters_limit_and_aborts_past_it() {
    let _g = serial();
    let dir = TempDir::new("faultsb-inherit");
    let img = dir.join("img");
    let c = Counter::start(dir.join("counter"));
    let pid = c.pid();
    let o = {
        let mut o = Options::new();
        o.set_image_path(img.clone()).unwrap();
        o.set_timeout(Some(Duration::from_secs(60)));
        o
    };
    ckpt::ops::checkpoint(&o, pid).expect("dump");
    drop(c); // reaps the dumped process
    wait_pid_free(pid);

    let restore = |n: usize| {
        let mut o = {
            let mut o = Options::new();
            o.set_image_path(img.clone()).unwrap();
            o.set_timeout(Some(Duration::from_secs(60)));
            o.set_log_file(format!("restore-{n}.log")).unwrap();
            o.set_work_path(dir.join("work")).unwrap();
            o
        };
        for i in 0..n {
            o.add_inherit_fd_unchecked(&format!("ckpt-unused-{i}"), dev_null());
        }
        // The dumped tree's other pids (its sleep) stay taken until init reaps them.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match ckpt::ops::restore(&o) {
                Err(e) if e.code == Code::PidInUse && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                r => return r,
            }
        }
    };
    let max = ckpt::options::MAX_INHERIT_FDS;
    let r = restore(max).expect("a restore with the most inherited fds the setter allows");
    // SAFETY: the restored tree is our child; kill and reap it.
    unsafe {
        libc::kill(r.pid, libc::SIGKILL);
        libc::waitpid(r.pid, std::ptr::null_mut(), 0);
    }
    wait_pid_free(r.pid);
    println!(
        "restore with {max} inherited fds and a work directory: pid {}",
        r.pid
    );
    let e = restore(1015).expect_err("1015 inherited fds");
    println!(
        "restore with 1015 inherited fds: {:?}: {}",
        e.code, e.message
    );
    assert!(
        e.message.contains("status=6")
            || e.log_excerpt.as_deref().unwrap_or("").contains("nftables"),
        "CRIU aborts in its nftables probe: {e}"
    );
    wait_pid_free(pid);
}
