//! Restore against the real CRIU: each test checkpoints a real process, restores it, and checks
//! that the restored process carries on from where it was (a counter goes on from its value,
//! a conversation from its last line). Errors are checked for their code, their words and,
//! where CRIU ran, CRIU's log excerpt.
//!
//! The tests take `serial()`: each restores pids recorded in its images, and two restores at
//! once on two cores also make the timing checks flaky.

mod common;

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ckpt::{Code, Options, StatKey, ops};
use common::*;

/// The lines the counter appended after its first `skip` lines go on from `at_dump`: the
/// restored loop neither started over nor skipped a number.
fn assert_resumed(counter: &Path, skip: usize, at_dump: u64) {
    wait_for("the restored counter to count on", WAIT, || {
        (counter_values(counter).len() >= skip + 5).then_some(())
    });
    let after: Vec<u64> = counter_values(counter).into_iter().skip(skip).collect();
    let want: Vec<u64> = (at_dump + 1..).take(after.len()).collect();
    assert_eq!(
        after, want,
        "after the restore the counter did not go on from {at_dump}"
    );
}

#[test]
fn shell_loop_carries_on_and_reports_restore_stats() {
    if !criu_allowed("shell_loop_carries_on_and_reports_restore_stats") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("loop");
    let r = ops::restore(&options(&d.images())).expect("restore");
    let _p = Proc::adopt(r.pid);
    assert_eq!(r.pid, d.pid, "the restored tree keeps its pid");
    assert_eq!(
        proc_state(r.pid).map(|_| parent_of(r.pid)),
        Some(std::process::id() as i32),
        "the restored tree is a child of the caller"
    );
    assert_counter_continues(&d.counter, d.at_dump);
    let st = r.stats.expect("restore statistics (stats-restore)");
    println!("restore statistics: {:?}", st.values);
    assert!(st.get(StatKey::RestoreTimeUs).is_some_and(|v| v > 0));
    assert!(st.get(StatKey::ForkingTimeUs).is_some());
    assert!(st.get(StatKey::PagesRestored).is_some_and(|v| v > 0));
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(')').expect("stat format").1;
    after
        .split_whitespace()
        .nth(1)
        .expect("ppid")
        .parse()
        .expect("ppid")
}

#[test]
fn same_images_restore_twice() {
    if !criu_allowed("same_images_restore_twice") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("twice");
    let mut first = Proc::adopt(ops::restore(&options(&d.images())).expect("restore 1").pid);
    assert_resumed(&d.counter, d.at_dump as usize, d.at_dump);
    first.kill();
    wait_pid_free(d.pid);
    let lines = counter_values(&d.counter).len();
    let r = ops::restore(&options(&d.images())).expect("restore 2");
    let _second = Proc::adopt(r.pid);
    assert_eq!(r.pid, d.pid);
    // The second tree starts again from the dump, not from where the first one was killed.
    assert_resumed(&d.counter, lines, d.at_dump);
}

#[test]
fn pid_file_is_written_atomically() {
    if !criu_allowed("pid_file_is_written_atomically") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("pidfile");
    let run = d.dir.sub("run");
    let pid_file = run.join("restored.pid");
    // A stale file is replaced, never appended to.
    std::fs::write(&pid_file, "999999\n").unwrap();
    let mut o = options(&d.images());
    o.set_pid_file(&pid_file).unwrap();
    let r = ops::restore(&o).expect("restore");
    let _p = Proc::adopt(r.pid);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        r.pid.to_string()
    );
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["restored.pid"], "a temporary file was left behind");
    assert_counter_continues(&d.counter, d.at_dump);
}

#[test]
fn pid_file_in_a_missing_directory_is_refused_before_criu_runs() {
    if !criu_allowed("pid_file_in_a_missing_directory_is_refused_before_criu_runs") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("pidfile-bad");
    let mut o = options(&d.images());
    o.set_pid_file(d.dir.join("no-such-dir/restored.pid"))
        .unwrap();
    let e = ops::restore(&o).unwrap_err();
    assert_eq!(e.code, Code::NotFound, "{e}");
    assert!(e.message.contains("pid file"), "{e}");
    assert!(
        !d.images().join("restore.log").exists(),
        "criu ran although the pid file could not be written"
    );
    assert!(
        proc_state(d.pid).is_none(),
        "a restored process was left behind"
    );
}

#[test]
fn pid_file_that_cannot_be_written_undoes_the_restore() {
    if !criu_allowed("pid_file_that_cannot_be_written_undoes_the_restore") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("pidfile-late");
    // The directory exists, but the name is taken by a directory: the rename fails only
    // after CRIU restored the tree.
    let run = d.dir.sub("run");
    std::fs::create_dir(run.join("restored.pid")).unwrap();
    let mut o = options(&d.images());
    o.set_pid_file(run.join("restored.pid")).unwrap();
    let e = ops::restore(&o).unwrap_err();
    assert_eq!(e.code, Code::Io, "{e}");
    assert!(e.message.contains(&format!("pid {}", d.pid)), "{e}");
    assert!(e.message.contains("killed"), "{e}");
    assert!(
        reap_session(d.pid, WAIT),
        "the restored tree outlived the failed pid file"
    );
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["restored.pid"], "a temporary file was left behind");
}

#[test]
fn pipes_reattached_through_inherited_fds() {
    if !criu_allowed("pipes_reattached_through_inherited_fds") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("pipes");
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    // What CRIU records for the process's stdin and stdout: the pipes, by inode.
    let in_key = format!("pipe:[{}]", inode(in_r.as_fd()));
    let out_key = format!("pipe:[{}]", inode(out_w.as_fd()));
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        r#"i=0; while read l; do i=$((i+1)); echo "$i $l"; done"#,
    ])
    .stdin(Stdio::from(in_r))
    .stdout(Stdio::from(out_w))
    .stderr(Stdio::null());
    let mut w = Proc::spawn(&mut cmd);
    drop(cmd); // our copies of the child's ends
    write_all(in_w.as_fd(), b"one\n");
    read_until(out_r.as_fd(), "1 one\n");
    write_all(in_w.as_fd(), b"two\n");
    read_until(out_r.as_fd(), "2 two\n");

    let images = dir.join("img");
    ops::checkpoint(&options(&images), w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);

    // New pipes take the place of the old ones, as a runtime's new stdio does.
    let (in2_r, in2_w) = pipe();
    let (out2_r, out2_w) = pipe();
    let mut o = options(&images);
    o.add_inherit_fd(&in_key, in2_r).unwrap();
    o.add_inherit_fd(&out_key, out2_w).unwrap();
    let r = ops::restore(&o).expect("restore");
    let _p = Proc::adopt(r.pid);
    drop(o); // the restored process holds the other ends now
    write_all(in2_w.as_fd(), b"three\n");
    let got = read_until(out2_r.as_fd(), "3 three\n");
    assert_eq!(got, "3 three\n");
    // The old stdout pipe lost its only writer with the dumped process: the restored one
    // writes to the new pipe only.
    assert!(readable(out_r.as_fd(), WAIT));
    let mut b = [0u8; 16];
    // SAFETY: reading into a local buffer from a descriptor we own.
    let n = unsafe { libc::read(out_r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
    assert_eq!(n, 0, "the old stdout pipe still has a writer");
}

#[test]
fn pty_master_reaches_the_console_socket() {
    if !criu_allowed("pty_master_reaches_the_console_socket") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("pty");
    let pty = Pty::open();
    let mut w = spawn_on_tty(
        Command::new("sh").args([
            "-c",
            r#"i=0; while read l; do i=$((i+1)); echo "n=$i $l"; done"#,
        ]),
        &pty.slave,
    );
    let Pty { master, slave } = pty;
    drop(slave);
    write_all(master.as_fd(), b"one\n");
    read_until(master.as_fd(), "n=1 one");

    let images = dir.join("img");
    let mut o = options(&images);
    // runc dumps with orphan-pts-master: the master is outside the tree.
    o.set_orphan_pts_master(true);
    ops::checkpoint(&o, w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    drop(master);

    let sock_path = dir.join("console.sock");
    let listener = UnixListener::bind(&sock_path).expect("console socket");
    let mut o = options(&images);
    o.set_console_socket(sock_path).unwrap();
    let r = ops::restore(&o).expect("restore");
    let _p = Proc::adopt(r.pid);
    let (conn, _) = listener.accept().expect("accept on the console socket");
    let (name, new_master) = recv_fd(conn.as_fd());
    assert_eq!(name, "/dev/ptmx");
    write_all(new_master.as_fd(), b"two\n");
    read_until(new_master.as_fd(), "n=2 two");
}

/// Receives one message and the descriptor it carries (SCM_RIGHTS).
fn recv_fd(sock: std::os::fd::BorrowedFd<'_>) -> (String, OwnedFd) {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    assert!(
        readable(sock, WAIT),
        "nothing arrived on the console socket"
    );
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 2]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed these descriptors for us just now.
            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
        }
    }
    let n = msg.bytes;
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    (name, fd.expect("a descriptor with the message"))
}

/// A shell blocked reading its pty, dumped with `orphan-pts-master` (the master outside the
/// tree, as runc dumps a terminal container) and gone, its pty closed: the scratch directory
/// and the images in it, and the shell's pid.
fn dumped_shell_on_a_pty(tag: &str) -> (TempDir, std::path::PathBuf, i32) {
    let dir = TempDir::new(tag);
    let pty = Pty::open();
    let mut w = spawn_on_tty(Command::new("sh").args(["-c", "read l"]), &pty.slave);
    let images = dir.join("img");
    let mut o = options(&images);
    o.set_orphan_pts_master(true);
    // The shell has to be blocked in read before it is dumped.
    wait_for("the shell to wait for input", WAIT, || {
        (proc_state(w.pid) == Some('S')).then_some(())
    });
    ops::checkpoint(&o, w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    drop(pty);
    (dir, images, w.pid)
}

#[test]
fn console_socket_that_nobody_listens_on_fails_the_restore() {
    if !criu_allowed("console_socket_that_nobody_listens_on_fails_the_restore") {
        return;
    }
    let _s = serial();
    let (dir, images, pid) = dumped_shell_on_a_pty("pty-nosock");
    let mut o = options(&images);
    // A unix socket bound but never listening: the path is a socket (so it passes the check
    // before criu), and connect() is refused once CRIU has made the tree.
    let sock_path = dir.join("nobody-here.sock");
    let _bound = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    o.set_console_socket(&sock_path).unwrap();
    let e = ops::restore(&o).unwrap_err();
    assert_eq!(e.code, Code::Io, "{e}");
    assert!(e.message.contains("console socket"), "{e}");
    // CRIU was told the notification failed and undid the restore.
    assert!(
        reap_session(pid, WAIT),
        "the half-restored tree was left behind"
    );
}

/// A console peer that takes the pty master and closes it at once. Had ckpt closed its own
/// copy as soon as it sent it, the terminal would hang up while CRIU still traces the tree:
/// the hangup's SIGCONT stops the root, and CRIU 4.1 fails the restore ("stopped by signal
/// 5") or waits for ever for a stop it already reaped. ckpt holds the master until CRIU
/// answers: the restore succeeds and the tree sees the hangup once it runs.
#[test]
fn console_peer_that_drops_the_master_at_once_does_not_stall_the_restore() {
    if !criu_allowed("console_peer_that_drops_the_master_at_once_does_not_stall_the_restore") {
        return;
    }
    let _s = serial();
    let (dir, images, _) = dumped_shell_on_a_pty("pty-dropped");

    let sock_path = dir.join("console.sock");
    let listener = UnixListener::bind(&sock_path).expect("console socket");
    let peer = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept on the console socket");
        let (name, master) = recv_fd(conn.as_fd());
        drop(master);
        name
    });
    let mut o = options(&images);
    o.set_console_socket(&sock_path).unwrap();
    let timeout = Duration::from_secs(30);
    o.set_timeout(Some(timeout));
    let t0 = Instant::now();
    let r = ops::restore(&o);
    let took = t0.elapsed();
    assert_eq!(peer.join().unwrap(), "/dev/ptmx");
    let r = r.unwrap_or_else(|e| panic!("restore after {took:?}: {e}"));
    let mut p = Proc::adopt(r.pid);
    assert!(took < timeout / 2, "the restore took {took:?}");
    // The terminal hung up once the tree ran: the shell ends by SIGHUP.
    let st = p.wait_exit(WAIT);
    assert!(
        libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGHUP,
        "the restored shell did not end by the hangup: wait status {st:#x}"
    );
}

/// A console socket path that is missing or not a socket is refused before criu starts (runc
/// dials it before its restore too): the criu path here does not exist, so any attempt to run
/// criu would fail with another message.
#[test]
fn console_socket_missing_or_not_a_socket_is_refused_before_criu() {
    let dir = TempDir::new("console-precheck");
    let images = dir.join("img");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("inventory.img"), b"").unwrap();
    let plain = dir.join("plain-file");
    std::fs::write(&plain, b"").unwrap();
    for (path, code, says) in [
        (dir.join("missing.sock"), Code::NotFound, "No such file"),
        (plain, Code::InvalidArgument, "is not a unix socket"),
    ] {
        let mut o = options(&images);
        o.set_criu_path("/nonexistent/criu").unwrap();
        o.set_console_socket(&path).unwrap();
        let e = ops::restore(&o).unwrap_err();
        assert_eq!(e.code, code, "{e}");
        assert!(
            e.message.contains("console socket") && e.message.contains(says),
            "{e}"
        );
        assert!(e.log_path.is_none(), "criu ran: {e}");
    }
}

#[test]
fn file_lock_is_held_again_after_restore() {
    if !criu_allowed("file_lock_is_held_again_after_restore") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("flock");
    let counter = dir.join("counter");
    let lock = dir.join("lock");
    let mut w = Proc::spawn(
        Command::new("sh")
            .arg("-c")
            .arg(
                r#"exec 9>>"$2"; flock -x 9 || exit 1
                   i=0; while :; do i=$((i+1)); echo $i >> "$1"; sleep 0.05; done"#,
            )
            .args([
                "flock-loop",
                counter.to_str().unwrap(),
                lock.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_counter(&counter, 3);
    assert!(!try_flock(&lock), "the workload does not hold its lock");
    let images = dir.join("img");
    let mut o = options(&images);
    o.set_file_locks(true);
    ops::checkpoint(&o, w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    let at_dump = read_counter(&counter).unwrap();
    assert!(try_flock(&lock), "the lock outlived the dumped process");

    let r = ops::restore(&o).expect("restore");
    let _p = Proc::adopt(r.pid);
    assert!(
        !try_flock(&lock),
        "the restored process does not hold the lock"
    );
    assert_counter_continues(&counter, at_dump);
    assert!(!try_flock(&lock), "the restored process lost the lock");
}

/// Tries to take (and at once releases) an exclusive flock on `path`; false when another
/// open file holds it.
fn try_flock(path: &Path) -> bool {
    let f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("opening the lock file");
    // SAFETY: flock on a descriptor we own; LOCK_NB never blocks.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    r == 0
}

/// Two processes talking over TCP on loopback: the child counts and sends each number, the
/// parent appends what it receives to the counter file and acknowledges it.
const TCP_PAIR: &str = r#"
import os, socket, sys, time
out = sys.argv[1]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
cli = socket.create_connection(srv.getsockname())
conn, _ = srv.accept()
srv.close()
if os.fork() == 0:
    conn.close()
    i = 0
    while True:
        i += 1
        cli.sendall(b"%d\n" % i)
        if cli.recv(1) != b"k":
            os._exit(1)
        time.sleep(0.05)
cli.close()
f = conn.makefile("rb")
while True:
    line = f.readline()
    if not line:
        sys.exit(1)
    with open(out, "ab") as o:
        o.write(line)
    conn.sendall(b"k")
"#;

fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

#[test]
fn tcp_connection_kept_with_tcp_established() {
    if !criu_allowed("tcp_connection_kept_with_tcp_established") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("tcp");
    // A network namespace of its own keeps CRIU's network-lock rules off the host.
    let ns = NetNs::new("tcp");
    let counter = dir.join("counter");
    let images = dir.join("img");
    let c2 = counter.clone();
    let mut w = ns.run(move || {
        Proc::spawn(
            Command::new(python())
                .args(["-c", TCP_PAIR])
                .arg(&c2)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    });
    wait_counter(&counter, 3);
    let mut o = options(&images);
    o.set_tcp_established(true);
    let wpid = w.pid;
    match ns.run(|| ops::checkpoint(&o, wpid)) {
        Err(e)
            if e.log_excerpt
                .as_deref()
                .is_some_and(|x| x.contains("Can't get 1:16 opt")) =>
        {
            // Linux 6.16 restricted SO_PASSCRED and SO_PASSSEC to unix, netlink and bluetooth
            // sockets; CRIU 4.1.1 still reads them from every socket and gives up on inet ones.
            not_exercised(
                "restore of an established TCP connection (tcp-established). CRIU 4.1.1 cannot \
                 dump an inet socket on this kernel: it reads SO_PASSCRED and SO_PASSSEC from \
                 every socket, and Linux 6.16 made them EOPNOTSUPP outside unix, netlink and \
                 bluetooth sockets. Checked instead: the dump fails with a clear CRIU error \
                 and its log, and the tree and its connection keep running.",
            );
            assert_eq!(e.code, Code::Criu, "{e}");
            assert!(e.message.contains("Can't get 1:16 opt"), "{e}");
            // CRIU unfroze the tree: the connection still carries the counter.
            let now = read_counter(&counter).unwrap();
            wait_counter(&counter, now + 3);
            assert!(w.alive());
            return;
        }
        r => r.expect("checkpoint"),
    };
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    let at_dump = read_counter(&counter).unwrap();
    let r = ns.run(|| ops::restore(&o)).expect("restore");
    let _p = Proc::adopt(r.pid);
    assert_eq!(netns_of(r.pid), ns.inode());
    assert_counter_continues(&counter, at_dump);
}

#[test]
fn pid_in_use_is_its_own_error_with_criu_log() {
    if !criu_allowed("pid_in_use_is_its_own_error_with_criu_log") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("pidinuse");
    let counter = dir.join("counter");
    let w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 2);
    let mut o = options(&dir.join("img"));
    o.set_leave_running(true);
    ops::checkpoint(&o, w.pid).expect("checkpoint");
    assert!(w.alive());
    let e = ops::restore(&options(&dir.join("img"))).unwrap_err();
    println!(
        "pid in use: {e}\n{}",
        e.log_excerpt.as_deref().unwrap_or("")
    );
    assert_eq!(e.code, Code::PidInUse, "{e}");
    assert_eq!(e.criu_errno, libc::EEXIST);
    assert!(e.message.contains(&w.pid.to_string()), "{e}");
    assert!(e.message.contains("in use"), "{e}");
    let excerpt = e.log_excerpt.expect("CRIU's log excerpt");
    assert!(excerpt.contains("File exists"), "{excerpt}");
    assert!(e.log_path.is_some_and(|p| p.ends_with("restore.log")));
    assert!(w.alive(), "the running original was disturbed");
}

#[test]
fn lsm_profile_without_type_is_refused_by_the_setter() {
    let mut o = Options::new();
    for bad in ["apparmor", "apparmor:", ":name", ""] {
        let e = o.set_lsm_profile(bad).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{bad:?}: {e}");
    }
    assert!(o.lsm_profile().is_none(), "a refused value was kept");
}

#[test]
fn nonexistent_lsm_profile_fails_in_criu_with_its_log() {
    if !criu_allowed("nonexistent_lsm_profile_fails_in_criu_with_its_log") {
        return;
    }
    let _s = serial();
    let d = dumped_counter("lsm");
    let mut o = options(&d.images());
    o.set_lsm_profile("apparmor:ckpt-test-no-such-profile")
        .unwrap();
    let e = ops::restore(&o).unwrap_err();
    println!("lsm: {e}\n{}", e.log_excerpt.as_deref().unwrap_or(""));
    assert_eq!(e.code, Code::Criu, "{e}");
    let excerpt = e.log_excerpt.expect("CRIU's log excerpt");
    assert!(excerpt.to_lowercase().contains("apparmor"), "{excerpt}");
    assert!(
        reap_session(d.pid, WAIT),
        "a half-restored tree was left behind"
    );
}

#[test]
fn empty_or_missing_directory_is_not_found_before_criu_runs() {
    let dir = TempDir::new("empty");
    let e = ops::restore(&options(&dir.path)).unwrap_err();
    assert_eq!(e.code, Code::NotFound, "{e}");
    assert!(e.message.contains("inventory.img"), "{e}");
    assert!(e.log_excerpt.is_none() && e.criu_errno == 0);
    assert!(!dir.join("restore.log").exists(), "criu ran");
    let e = ops::restore(&options(&dir.join("missing"))).unwrap_err();
    assert_eq!(e.code, Code::NotFound, "{e}");
    assert!(
        !dir.join("missing").exists(),
        "restore created the image path"
    );
    let e = ops::restore(&Options::new()).unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e}");
}
