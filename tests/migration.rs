//! Migration between two test "hosts": network namespaces joined by a veth pair, 10.99.N.1 on
//! host A and 10.99.N.2 on host B. Whatever runs on a host (the workload, criu, the page
//! server, the lazy-pages daemon) is started from a thread that entered that host's namespace.
//! The hosts share this machine's file system, so "sending the images over" is a copy.

#[path = "../core/tests/common/mod.rs"]
mod common;

use std::ffi::CString;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ckpt::{Code, StatKey, ops};
use ckpt_ffi::{error as cerr, ops as cops, opts as copts};
use common::*;

fn page_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("pages-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn migration_through_a_page_server() {
    if !criu_allowed("migration_through_a_page_server") {
        return;
    }
    let _s = serial();
    let hosts = Hosts::new("mig", 1);
    let dir = TempDir::new("mig");
    let src = dir.join("a-img");
    let dst = dir.join("b-img");
    let counter = dir.join("counter");

    // Host B receives the pages: a page server on its address, started through the C API as
    // a runtime would.
    let listen = format!("{}:27277", hosts.addr_b);
    let (server_pid, port) = hosts.b.run(|| c_page_server(&dst, &listen));
    let mut server = Proc::adopt(server_pid);
    assert_eq!(port, 27277);
    assert!(server.alive());

    // Host A runs the workload and dumps it, its memory going to B's page server.
    let c = counter.clone();
    let mut w = hosts.a.run(move || Proc::spawn(&mut counter_loop(&c)));
    wait_counter(&counter, 3);
    let mut o = options(&src);
    o.set_page_server(&format!("{}:{port}", hosts.addr_b))
        .unwrap();
    let wpid = w.pid;
    let st = hosts
        .a
        .run(|| ops::checkpoint(&o, wpid))
        .expect("dump to the page server");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    let at_dump = read_counter(&counter).unwrap();
    assert!(st.get(StatKey::PagesWritten).is_some_and(|n| n > 0));
    // The page server exits once the dump that fed it is over.
    server.wait_exit(WAIT);
    assert!(page_files(&src).is_empty(), "pages were written on host A");
    assert!(!page_files(&dst).is_empty(), "no pages arrived on host B");

    // The rest of the images travel separately; B restores.
    assert!(copy_images(&src, &dst) > 0);
    let r = hosts
        .b
        .run(|| ops::restore(&options(&dst)))
        .expect("restore on host B");
    let _p = Proc::adopt(r.pid);
    assert_eq!(r.pid, wpid);
    assert_eq!(netns_of(r.pid), hosts.b.inode(), "not restored on host B");
    assert_counter_continues(&counter, at_dump);
}

/// The counter loop as the init of its own pid namespace on `host`: (the loop, `unshare`).
/// A lazy dump keeps the source tree frozen, pids and all, until the other side has all its
/// pages, and a restore gives such a tree a fresh pid namespace: the two never claim the same
/// pid. In the tuple the loop comes first, so it is killed first when the test ends.
fn pidns_counter(host: &NetNs, counter: &Path) -> (Proc, Proc) {
    let c = counter.to_path_buf();
    let outer = host.run(move || {
        Proc::spawn(
            Command::new("unshare")
                // setsid: the tree's session leader must be inside its pid namespace.
                .args([
                    "--pid",
                    "--fork",
                    "setsid",
                    "sh",
                    "-c",
                    COUNTER_SCRIPT,
                    "counter",
                ])
                .arg(&c)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    });
    let root = Proc::adopt(first_child(outer.pid));
    assert_eq!(ns_pids(root.pid), [root.pid, 1]);
    (root, outer)
}

/// Waits for the one byte a status fd gets when its writer is ready.
fn wait_ready(fd: &OwnedFd, who: &str) {
    assert!(
        readable(fd.as_fd(), WAIT),
        "{who} never reported readiness on its status fd"
    );
    assert_eq!(read_byte(fd), Some(0), "{who} closed its status fd unready");
}

#[test]
fn lazy_migration_from_a_lazy_dump() {
    if !criu_allowed("lazy_migration_from_a_lazy_dump") {
        return;
    }
    let _s = serial();
    let hosts = Hosts::new("lazy", 2);
    let dir = TempDir::new("lazy");
    let src = dir.join("a-img");
    let dst = dir.join("b-img");
    let counter = dir.join("counter");
    let served = format!("{}:27278", hosts.addr_a);
    let (root, mut outer) = pidns_counter(&hosts.a, &counter);
    wait_counter(&counter, 3);

    // Host A: a lazy dump. It writes everything but the memory, says so on the status fd,
    // then serves the pages from its own page server until the restored side has them all.
    let (ready_r, ready_w) = pipe();
    let mut o = options(&src);
    o.set_lazy_pages(true);
    o.set_page_server(&served).unwrap();
    o.set_status_fd(ready_w).unwrap();
    let root_pid = root.pid;
    let dump = hosts.a.spawn(move || ops::checkpoint(&o, root_pid));
    wait_ready(&ready_r, "the lazy dump");
    let at_dump = read_counter(&counter).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        read_counter(&counter),
        Some(at_dump),
        "the source tree is not frozen"
    );
    assert!(copy_images(&src, &dst) > 0);

    // Host B: the lazy-pages daemon (ready once it says so on its status fd), then the
    // restore, whose memory arrives on demand through the daemon.
    let (daemon_r, daemon_w) = pipe();
    let mut o = options(&dst);
    o.set_page_server(&served).unwrap();
    o.set_status_fd(daemon_w).unwrap();
    let daemon_pid = hosts
        .b
        .run(|| ops::lazy_pages_daemon(&o))
        .expect("lazy-pages daemon");
    let mut daemon = Proc::adopt(daemon_pid);
    wait_ready(&daemon_r, "the lazy-pages daemon");
    let mut o = options(&dst);
    o.set_lazy_pages(true);
    // A lazy restore whose daemon dies hangs in CRIU (it waits for tasks it traces); ckpt's
    // operation timeout bounds it.
    o.set_timeout(Some(Duration::from_secs(10)));
    let restored = hosts.b.run(|| ops::restore(&o));
    let dumped = dump.join().expect("dump thread");

    match (dumped, restored) {
        (Ok(st), Ok(r)) => {
            let _p = Proc::adopt(r.pid);
            println!("lazy dump statistics: {:?}", st.values);
            assert_eq!(ns_pids(r.pid).last(), Some(&1), "no fresh pid namespace");
            assert_eq!(netns_of(r.pid), hosts.b.inode(), "not restored on host B");
            // No check on pages_lazy: after the transfer CRIU rewrites stats-dump with the
            // page counters at 0.
            daemon.wait_exit(WAIT);
            outer.wait_exit(WAIT);
            assert_counter_continues(&counter, at_dump);
        }
        (Err(e), _)
            if e.log_excerpt
                .as_deref()
                .is_some_and(|x| x.contains("page-pipe: splice")) =>
        {
            panic!(
                "lazy dump: CRIU's page server could not splice its page pipes; \
                 fs.pipe-max-size must be at least 4 MiB (scripts/setup.sh sets it): {e}"
            )
        }
        (Err(e), _) => panic!("lazy dump: {e}"),
        (Ok(_), Err(e)) => panic!("lazy restore: {e}"),
    }
}

#[test]
fn post_copy_restore_on_the_receiving_host() {
    if !criu_allowed("post_copy_restore_on_the_receiving_host") {
        return;
    }
    let _s = serial();
    let hosts = Hosts::new("pcopy", 3);
    let dir = TempDir::new("pcopy");
    let src = dir.join("a-img");
    let dst = dir.join("b-img");
    let counter = dir.join("counter");
    let (mut root, mut outer) = pidns_counter(&hosts.a, &counter);
    wait_counter(&counter, 3);

    // The memory goes to a page server on B, the rest is copied over.
    let mut o = options(&dst);
    o.set_page_server(&format!("{}:27279", hosts.addr_b))
        .unwrap();
    let started = hosts.b.run(|| ops::page_server(&o)).expect("page server");
    let (server_pid, port) = (started.pid, started.port);
    let mut server = Proc::adopt(server_pid);
    let mut o = options(&src);
    o.set_page_server(&format!("{}:{port}", hosts.addr_b))
        .unwrap();
    let root_pid = root.pid;
    hosts
        .a
        .run(|| ops::checkpoint(&o, root_pid))
        .expect("dump to the page server");
    outer.wait_exit(WAIT); // unshare reaped the loop
    root.mark_reaped();
    let at_dump = read_counter(&counter).unwrap();
    server.wait_exit(WAIT);
    assert!(copy_images(&src, &dst) > 0);

    // B restores lazily from its own images: the tree starts before its memory is in place,
    // and the daemon fills it in on demand.
    let (daemon_r, daemon_w) = pipe();
    let dst2 = dst.clone();
    // Through the C API: no page server set, so the daemon reads the pages from the images.
    let mut daemon = Proc::adopt(hosts.b.run(move || c_lazy_pages_daemon(&dst2, daemon_w)));
    wait_ready(&daemon_r, "the lazy-pages daemon");
    let mut o = options(&dst);
    o.set_lazy_pages(true);
    let r = hosts.b.run(|| ops::restore(&o)).expect("lazy restore");
    let _p = Proc::adopt(r.pid);
    assert_eq!(ns_pids(r.pid).last(), Some(&1), "no fresh pid namespace");
    assert_eq!(netns_of(r.pid), hosts.b.inode(), "not restored on host B");
    assert_counter_continues(&counter, at_dump);
    // Every page served, the daemon is done.
    assert_eq!(daemon.wait_exit(WAIT), 0, "the lazy-pages daemon failed");
    let log = std::fs::read_to_string(dst.join("lazy-pages.log")).unwrap_or_default();
    assert!(
        log.contains("UFFD transferred pages"),
        "no pages went through the daemon"
    );
}

fn c_str(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// `ckpt_page_server_start` on `images`, listening on `listen`: (server pid, port).
fn c_page_server(images: &Path, listen: &str) -> (i32, i32) {
    let img = c_str(images.to_str().unwrap());
    let ps = c_str(listen);
    let (mut pid, mut port) = (0, 0);
    let mut err = std::ptr::null_mut();
    let h = copts::ckpt_opts_new();
    // SAFETY: a live handle, NUL-terminated strings and valid out-pointers; the handle and
    // any error are freed once.
    let st = unsafe {
        assert_eq!(copts::ckpt_opts_set_image_path(h, img.as_ptr()), 0);
        assert_eq!(copts::ckpt_opts_set_page_server(h, ps.as_ptr()), 0);
        let st = cops::ckpt_page_server_start(h, &mut pid, &mut port, &mut err);
        if st != 0 {
            let m = std::ffi::CStr::from_ptr(cerr::ckpt_error_message(err));
            panic!("ckpt_page_server_start: {st}: {m:?}");
        }
        copts::ckpt_opts_free(h);
        st
    };
    assert_eq!(st, 0);
    assert!(pid > 0, "no page server pid");
    (pid, port)
}

/// `ckpt_lazy_pages_start` serving `images` from the images themselves, with `status` as its
/// status fd (ownership passes on); returns the daemon's pid.
fn c_lazy_pages_daemon(images: &Path, status: OwnedFd) -> i32 {
    let img = c_str(images.to_str().unwrap());
    let mut pid = 0;
    let mut err = std::ptr::null_mut();
    let h = copts::ckpt_opts_new();
    // SAFETY: as in c_page_server; the status fd's ownership passes to the handle.
    unsafe {
        assert_eq!(copts::ckpt_opts_set_image_path(h, img.as_ptr()), 0);
        assert_eq!(copts::ckpt_opts_set_status_fd(h, status.into_raw_fd()), 0);
        let st = cops::ckpt_lazy_pages_start(h, &mut pid, &mut err);
        if st != 0 {
            let m = std::ffi::CStr::from_ptr(cerr::ckpt_error_message(err));
            panic!("ckpt_lazy_pages_start: {st}: {m:?}");
        }
        copts::ckpt_opts_free(h);
    }
    pid
}

fn read_byte(fd: &OwnedFd) -> Option<u8> {
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a local buffer from a descriptor we own.
    let n = unsafe {
        libc::read(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            b.as_mut_ptr().cast(),
            1,
        )
    };
    (n == 1).then_some(b[0])
}

#[test]
fn page_server_and_lazy_daemon_refuse_bad_input() {
    let dir = TempDir::new("ps-args");
    let o = options(&dir.path);
    let e = ops::page_server(&o).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
    // Without images there is nothing to serve: refused before criu starts.
    let e = ops::lazy_pages_daemon(&o).unwrap_err();
    assert_eq!(e.code, Code::NotFound, "{e}");
    // A lazy dump needs a page server to serve its pages from.
    let mut o = options(&dir.path);
    o.set_lazy_pages(true);
    let e = ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
}
