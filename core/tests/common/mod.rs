//! Helpers shared by the integration tests that run the real CRIU: scratch directories,
//! workloads started in their own session, guards that kill and reap whatever a test started
//! (also when it fails half-way), network namespaces and veth pairs, and polling with deadlines.
//!
//! Every guard cleans up in `Drop`, so a failing assertion never leaves a process, a network
//! namespace or a directory behind.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cgroup_sweep;
pub mod containers;
pub mod netlock;
pub mod rewritten;
pub mod unfreezable;
pub mod wl;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ckpt::Options;

/// How long any single wait in a test may take before the test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);
/// The operation timeout given to ckpt: criu is killed (and the test fails) past it.
pub const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// The `rpc.proto` that libcriu-dev ships ($CKPT_RPC_PROTO, as scripts/setup.sh installs it):
/// CRIU's own definition of the wire format, which the wire and option-coverage tests read.
pub fn rpc_proto() -> PathBuf {
    let p = std::env::var_os("CKPT_RPC_PROTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/opt/ckpt-deps/libcriu/usr/include/criu/rpc.proto".into());
    assert!(
        p.is_file(),
        "CRIU's rpc.proto not found at {} (set CKPT_RPC_PROTO or run scripts/setup.sh)",
        p.display()
    );
    p
}

/// Tests that restore processes, and so need the pids recorded in their images to be free,
/// take this lock so two of them never race for pids or CPU in the same test binary.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A unique name for this process and call: `<tag>-<pid>-<n>`.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private scratch directory, removed with everything in it on drop. Kept when
/// `CKPT_KEEP_TEST_DIRS` is set, to read CRIU's logs after a failure.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        become_subreaper();
        let path = std::env::temp_dir().join(format!("ckpt-{}", unique(tag)));
        fs::create_dir_all(&path).expect("creating a scratch directory");
        TempDir { path }
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }

    /// A subdirectory, created.
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.path.join(name);
        fs::create_dir_all(&p).expect("creating a scratch subdirectory");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("CKPT_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Reports what a test could not exercise on this machine and why. It goes straight to the
/// process's stderr, which the test harness does not capture, so it shows in every run.
pub fn not_exercised(what: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "NOT EXERCISED: {what}");
}

/// Polls `f` every 20 ms until it gives a value; panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Options for a test: the image path set, criu's time bounded.
pub fn options(images: &Path) -> Options {
    let mut o = Options::new();
    o.set_image_path(images).unwrap();
    o.set_timeout(Some(OP_TIMEOUT));
    o
}

/// A process a test started or restored. Dropping it kills it (and, through its process
/// group, what it started) and reaps it when it is a child of the test.
pub struct Proc {
    pub pid: i32,
    child: Option<Child>,
    reaped: bool,
}

/// Runs the child in a session of its own, so CRIU needs no shell-job mode for it.
fn own_session(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches nothing in the parent's memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Proc {
    /// Starts `cmd` in its own session, with stdin, stdout and stderr on /dev/null unless the
    /// command already says otherwise, and its working directory at `/`.
    pub fn spawn(cmd: &mut Command) -> Proc {
        become_subreaper();
        own_session(cmd);
        cmd.current_dir("/");
        // A program this test process has just written (a rootfs's busybox) is briefly open
        // for writing in the child of any fork another test thread makes meanwhile, until
        // that child execs: exec then fails with ETXTBSY, which passes by itself.
        let mut tries = 0;
        let child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => break r.expect("starting a workload"),
            }
        };
        Proc {
            pid: child.id() as i32,
            child: Some(child),
            reaped: false,
        }
    }

    /// A process this test did not spawn itself but that is its child (a restored tree).
    pub fn adopt(pid: i32) -> Proc {
        // kill(-0) would hit this test's own process group.
        assert!(pid > 0, "not a process id: {pid}");
        Proc {
            pid,
            child: None,
            reaped: false,
        }
    }

    /// A process that is not our child (a daemon criu started): killed on drop, not reaped.
    pub fn foreign(pid: i32) -> Proc {
        assert!(pid > 0, "not a process id: {pid}");
        Proc {
            pid,
            child: None,
            reaped: true,
        }
    }

    pub fn alive(&self) -> bool {
        // A zombie still answers kill(0): look at its state instead.
        match proc_state(self.pid) {
            None | Some('Z') | Some('X') => false,
            Some(_) => true,
        }
    }

    /// Waits (bounded) for the process to exit and reaps it; returns the raw wait status.
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        if self.reaped {
            wait_for("a foreign process to exit", timeout, || {
                (!self.alive()).then_some(())
            });
            return 0;
        }
        let pid = self.pid;
        let status = wait_for(&format!("pid {pid} to exit"), timeout, || {
            let mut st = 0;
            // SAFETY: waitpid by pid with a valid status pointer.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG | libc::__WALL) };
            match r {
                0 => None,
                r if r == pid => Some(st),
                // Not (yet) our child: a daemon whose parent, a criu, has not exited yet, so it
                // is not reparented to this subreaper. Wait for it to exit either way.
                _ => (!self.alive()).then_some(-1),
            }
        });
        self.reaped = true;
        if let Some(c) = self.child.as_mut() {
            // std's handle must not wait for the pid again; it has already been reaped.
            let _ = c.try_wait();
        }
        status
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        if !self.reaped {
            // SAFETY: plain kill(2) of a pid that is our unreaped child (it cannot be reused).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.wait_exit(WAIT);
        } else if self.alive() {
            // SAFETY: as above; a foreign daemon, checked alive just now.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }

    /// Forgets the process: it was reaped by someone else (e.g. it is a criu this test does
    /// not own).
    pub fn mark_reaped(&mut self) {
        self.reaped = true;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.reaped {
            // Kill the whole session's process group too: the shell loops start children.
            // SAFETY: kill(2) of our unreaped child's group and of the child itself.
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
                libc::kill(self.pid, libc::SIGKILL);
            }
            let mut st = 0;
            // SAFETY: blocking waitpid on our own child.
            unsafe { libc::waitpid(self.pid, &mut st, libc::__WALL) };
            self.reaped = true;
            reap_session(self.pid, Duration::from_secs(5));
        } else if self.child.is_none() && self.alive() {
            // SAFETY: kill(2) of a daemon this test started through criu.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}

/// Makes this test process the subreaper of everything it starts. When CRIU kills a dumped
/// tree, the root's children (the loop's `sleep`) are reparented here instead of to init, and
/// the test reaps their zombies at once. Init on this machine reaps them up to seconds later,
/// and until then their session id, the root's pid, stays taken: a restore fails with EEXIST.
pub fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            r,
            0,
            "PR_SET_CHILD_SUBREAPER: {}",
            std::io::Error::last_os_error()
        );
    });
}

/// (pid, ppid, state) of every process other than `pid` whose process group or session is
/// `pid`, plus `pid` itself when it exists.
fn session_members(pid: i32) -> Vec<(i32, i32, char)> {
    session_stats(pid)
        .into_iter()
        .map(|(p, ppid, state, _)| (p, ppid, state))
        .collect()
}

/// `session_members` with each one's whole /proc/PID/stat line: (pid, ppid, state, stat).
/// Zombies included.
pub fn session_stats(pid: i32) -> Vec<(i32, i32, char, String)> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // After the command name: state ppid pgrp session ...
            let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<i32>().ok());
            let member = p == pid || num(2) == Some(pid) || num(3) == Some(pid);
            let state = f.first()?.chars().next().unwrap_or('?');
            member.then(|| (p, num(1).unwrap_or(0), state, stat.clone()))
        })
        .collect()
}

/// Waits up to `timeout` until no process uses `pid` as its pid, process group or session,
/// reaping the zombies of that session that are children of this process (reparented ones,
/// and the root of a tree a failed restore left behind). False on timeout.
pub fn reap_session(pid: i32, timeout: Duration) -> bool {
    let me = std::process::id() as i32;
    let end = Instant::now() + timeout;
    loop {
        let members = session_members(pid);
        if members.is_empty() {
            return true;
        }
        for (p, ppid, state) in members {
            if ppid == me && state == 'Z' {
                let mut st = 0;
                // SAFETY: waitpid on a zombie child of ours, by pid.
                unsafe { libc::waitpid(p, &mut st, libc::WNOHANG | libc::__WALL) };
            }
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Like `reap_session`, and fails the test when the pid stays taken: call it after a dump
/// killed the tree rooted at `pid` (already reaped) and before restoring it.
pub fn wait_pid_free(pid: i32) {
    assert!(
        reap_session(pid, WAIT),
        "pid {pid} is still in use {WAIT:?} after its tree was killed: {:?}",
        session_members(pid)
    );
}

/// The state letter of `pid` in /proc, None when there is no such process.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// A shell loop that appends an ever-growing counter to its first argument, one number a
/// line, about 20 times a second. Each line is one small append, so a reader never sees half
/// a number.
pub const COUNTER_SCRIPT: &str =
    r#"i=0; while :; do i=$((i+1)); echo $i >> "$1"; sleep 0.05; done"#;

/// `sh` running `COUNTER_SCRIPT` on `file`, stdio on /dev/null.
pub fn counter_loop(file: &Path) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", COUNTER_SCRIPT, "counter"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Every number the counter wrote so far, in order.
pub fn counter_values(file: &Path) -> Vec<u64> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The counter's latest value; None before it wrote anything.
pub fn read_counter(file: &Path) -> Option<u64> {
    counter_values(file).last().copied()
}

/// Waits until the counter in `file` reaches at least `n`; returns the value seen.
pub fn wait_counter(file: &Path, n: u64) -> u64 {
    wait_for(
        &format!("the counter in {} to reach {n}", file.display()),
        WAIT,
        || read_counter(file).filter(|&v| v >= n),
    )
}

/// Checks that the counter in `file` went on from `at_dump` after a restore: it grows past
/// `at_dump + 5`, and every value it ever wrote is exactly one more than the one before, so it
/// neither started over nor skipped.
/// A counter loop that was dumped (and so killed) after counting a little.
pub struct Dumped {
    pub dir: TempDir,
    pub counter: PathBuf,
    pub at_dump: u64,
    pub pid: i32,
}

impl Dumped {
    pub fn images(&self) -> PathBuf {
        self.dir.join("img")
    }
}

/// Starts a counter loop, lets it count and dumps it, which kills it; waits until its pids
/// are free again so it can be restored.
pub fn dumped_counter(tag: &str) -> Dumped {
    let dir = TempDir::new(tag);
    let counter = dir.join("counter");
    let mut w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 3);
    ckpt::ops::checkpoint(&options(&dir.join("img")), w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    let at_dump = read_counter(&counter).expect("counter after dump");
    Dumped {
        dir,
        counter,
        at_dump,
        pid: w.pid,
    }
}

pub fn assert_counter_continues(file: &Path, at_dump: u64) {
    wait_counter(file, at_dump + 5);
    let v = counter_values(file);
    for w in v.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "the counter went from {} to {}: it did not carry on (dumped at {at_dump})",
            w[0],
            w[1]
        );
    }
    assert_eq!(v.first(), Some(&1));
}

/// A pipe whose both ends are close-on-exec: (read, write).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array on success.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The inode number of what `fd` refers to (a pipe's `pipe:[INODE]`).
pub fn inode(fd: BorrowedFd<'_>) -> u64 {
    let st = nix::sys::stat::fstat(fd).expect("fstat");
    st.st_ino
}

/// Waits until `fd` is readable, up to `timeout`; false on timeout.
pub fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    r > 0
}

/// Reads from `fd` until the text read so far contains `needle`; returns all of it.
pub fn read_until(fd: BorrowedFd<'_>, needle: &str) -> String {
    let end = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut f = fs::File::from(fd.try_clone_to_owned().expect("dup"));
    loop {
        if String::from_utf8_lossy(&got).contains(needle) {
            return String::from_utf8_lossy(&got).into_owned();
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || !readable(fd, left) {
            panic!(
                "timed out waiting for {needle:?}; read so far: {:?}",
                String::from_utf8_lossy(&got)
            );
        }
        let mut buf = [0u8; 512];
        match f.read(&mut buf) {
            Ok(0) => panic!(
                "end of file before {needle:?}; read so far: {:?}",
                String::from_utf8_lossy(&got)
            ),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// Writes all of `data` to `fd`.
pub fn write_all(fd: BorrowedFd<'_>, data: &[u8]) {
    let mut f = fs::File::from(fd.try_clone_to_owned().expect("dup"));
    f.write_all(data).expect("writing");
}

/// Runs a command to completion and panics with its output when it fails.
pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `ip` with `args`.
pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// A network namespace made for one test (`ip netns add`), with loopback up; deleted on drop
/// together with every interface in it.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        let name = format!("ckpt-{}", unique(tag));
        ip(&["netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip` inside this namespace (`ip -n NAME ...`).
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// The namespace's inode, as /proc/PID/ns/net shows it.
    pub fn inode(&self) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(self.path()).expect("netns file"))
    }

    /// Runs `f` on a new thread that has entered this namespace, so criu and any process
    /// that thread starts live in it. The calling thread stays where it is.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                enter_netns(&path);
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Like `run`, but returns at once with the thread's handle.
    pub fn spawn<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::thread::JoinHandle<R> {
        let path = self.path();
        std::thread::spawn(move || {
            enter_netns(&path);
            f()
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Moves the calling thread (only it) into the network namespace at `path`.
pub fn enter_netns(path: &Path) {
    let f = fs::File::open(path).expect("opening the netns file");
    // SAFETY: setns on a valid namespace descriptor; it affects only this thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
}

/// SIGKILLs every process in the network namespace `ns` and reaps the ones that are this
/// test's children: what a failed restore on that "host" may leave behind.
pub fn kill_netns_members(ns: &NetNs) {
    let inode = ns.inode();
    let me = std::process::id() as i32;
    let members: Vec<i32> = fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&p| p != me && netns_inode(p) == Some(inode))
                .collect()
        })
        .unwrap_or_default();
    for &p in &members {
        // SAFETY: kill(2) of a process in a namespace this test made.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    for p in members {
        let mut st = 0;
        // SAFETY: waitpid by pid; ECHILD for the ones that are not our children.
        unsafe { libc::waitpid(p, &mut st, libc::__WALL) };
    }
}

fn netns_inode(pid: i32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let s = link.to_string_lossy().into_owned();
    s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// The network namespace inode of `pid`.
pub fn netns_of(pid: i32) -> u64 {
    let link = fs::read_link(format!("/proc/{pid}/ns/net")).expect("reading /proc/PID/ns/net");
    let s = link.to_string_lossy();
    s.trim_start_matches("net:[")
        .trim_end_matches(']')
        .parse()
        .expect("netns inode")
}

/// Two test "hosts": network namespaces joined by a veth pair, `10.99.<net>.1` in `a` and
/// `10.99.<net>.2` in `b`. Both ends vanish with their namespaces.
pub struct Hosts {
    pub a: NetNs,
    pub b: NetNs,
    pub addr_a: String,
    pub addr_b: String,
}

impl Hosts {
    pub fn new(tag: &str, net: u8) -> Hosts {
        let a = NetNs::new(&format!("{tag}-a"));
        let b = NetNs::new(&format!("{tag}-b"));
        // Interface names are at most 15 bytes: derive short ones from the namespace names.
        let n = std::process::id() % 100_000;
        let va = format!("ck{n}a{net}");
        let vb = format!("ck{n}b{net}");
        ip(&[
            "link", "add", &va, "netns", &a.name, "type", "veth", "peer", "name", &vb, "netns",
            &b.name,
        ]);
        let addr_a = format!("10.99.{net}.1");
        let addr_b = format!("10.99.{net}.2");
        a.ip(&["addr", "add", &format!("{addr_a}/24"), "dev", &va]);
        b.ip(&["addr", "add", &format!("{addr_b}/24"), "dev", &vb]);
        a.ip(&["link", "set", &va, "up"]);
        b.ip(&["link", "set", &vb, "up"]);
        Hosts {
            a,
            b,
            addr_a,
            addr_b,
        }
    }
}

/// Copies every file of `from` that `to` lacks: the "send the images over" step of a
/// migration whose pages already went to the other side.
pub fn copy_images(from: &Path, to: &Path) -> usize {
    fs::create_dir_all(to).expect("creating the receiving image directory");
    let mut n = 0;
    for e in fs::read_dir(from).expect("reading the image directory") {
        let e = e.expect("directory entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_file()
            && e.file_name().to_string_lossy().ends_with(".img")
            && !dst.exists()
        {
            fs::copy(e.path(), &dst).expect("copying an image");
            n += 1;
        }
    }
    n
}

/// A pseudo-terminal: the master stays here, the slave is for a workload.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    pub fn open() -> Pty {
        // SAFETY: posix_openpt returns a new descriptor or -1.
        let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh descriptor we own.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: the master is a valid pty master; `name` is writable for its length.
        unsafe {
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        }
        // SAFETY: ptsname_r NUL-terminated the buffer.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_owned();
        Pty {
            master,
            slave: open_slave(&path),
        }
    }
}

fn open_slave(path: &CString) -> OwnedFd {
    // SAFETY: a NUL-terminated path; open returns a new descriptor or -1.
    let s = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    assert!(
        s >= 0,
        "opening {path:?}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a fresh descriptor we own.
    unsafe { OwnedFd::from_raw_fd(s) }
}

/// Starts `cmd` as a session leader whose controlling terminal is `slave` (its stdio).
pub fn spawn_on_tty(cmd: &mut Command, slave: &OwnedFd) -> Proc {
    let dup = |f: &OwnedFd| Stdio::from(f.try_clone().expect("dup"));
    become_subreaper();
    cmd.stdin(dup(slave)).stdout(dup(slave)).stderr(dup(slave));
    cmd.current_dir("/");
    // SAFETY: setsid and ioctl are async-signal-safe and touch only the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("starting a workload on a tty");
    Proc {
        pid: child.id() as i32,
        child: Some(child),
        reaped: false,
    }
}

/// The first child of `pid` (from /proc/PID/task/PID/children), once it has one.
pub fn first_child(pid: i32) -> i32 {
    wait_for(&format!("pid {pid} to start a child"), WAIT, || {
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// The `NSpid` line of /proc/PID/status: the pid in each nested pid namespace.
pub fn ns_pids(pid: i32) -> Vec<i32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("reading status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Duplicates `fd` into an owned descriptor.
pub fn dup(fd: &impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().expect("dup")
}

/// A raw descriptor number, for messages.
pub fn raw(fd: &impl AsRawFd) -> RawFd {
    fd.as_raw_fd()
}

/// Whether this test may drive the real CRIU, which needs root. Without root it says so on
/// standard error (written directly, so the test harness shows it even for a passing test) and
/// the test returns early; the test command, run as root, runs everything.
pub fn criu_allowed(test: &str) -> bool {
    use std::io::Write;
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: drives the real CRIU, which needs root (run the test command as root)"
    );
    false
}
