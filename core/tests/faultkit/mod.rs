//! Shared by the fault, hostile-input and concurrency tests: the scripted fake criu, leak
//! accounting (open fds, child processes), scratch directories and a real workload.
#![allow(dead_code)]

// Test binaries that load `common` too hold two copies of this small module; that is cheaper
// than making every user of faultkit load all of `common`.
#[allow(clippy::duplicate_mod)]
#[path = "../common/rewritten.rs"]
mod rewritten;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests that read the process-wide fd table, child list or environment take this lock, so
/// a neighbour test cannot open an fd or change the environment in the middle of a count.
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    /// This thread holds `SERIAL` (a `Serial` guard is alive): `TempDir`'s drop then takes
    /// nothing more.
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// `SERIAL`, held until dropped.
pub struct Serial(MutexGuard<'static, ()>);

impl Drop for Serial {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(false));
    }
}

pub fn serial() -> Serial {
    let g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    HOLDING.with(|h| h.set(true));
    Serial(g)
}

/// `serial()`, unless this thread holds it already.
fn serial_unless_held() -> Option<Serial> {
    (!HOLDING.with(|h| h.get())).then(serial)
}

/// `target/<profile>/examples/fake_criu`, built (or found fresh) by cargo once per test binary.
pub fn fake_criu() -> PathBuf {
    // Built once per test binary, never taken as found: a fake left in target/ by an older
    // tree would play scenarios this one no longer has (cargo makes it a no-op when fresh).
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/<test binary>
            let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
            // The fake is found fresh only when built with the dependencies' features unified
            // as the running `cargo test` unified them; otherwise cargo builds ckpt-core and
            // most of its dependencies again. The test command (scripts/test.d/10-rust.sh)
            // runs `cargo test --workspace` and says so with CKPT_TEST_WORKSPACE=1; a test run
            // by hand is usually `cargo test -p ckpt-core ...`.
            let mut build = Command::new(env!("CARGO"));
            build.arg("build");
            if std::env::var_os("CKPT_TEST_WORKSPACE").is_some_and(|v| v == "1") {
                build.arg("--workspace");
            } else {
                build.args(["-p", "ckpt-core"]);
            }
            build.args(["--example", "fake_criu", "--manifest-path"]);
            build.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let st = build.status().expect("cargo build --example fake_criu");
            assert!(st.success(), "building fake_criu failed");
            let fake = profile_dir.join("examples/fake_criu");
            assert!(fake.exists(), "{} is missing", fake.display());
            fake
        })
        .clone()
}

/// Sets (Some) or removes (None) environment variables the fake criu reads.
///
/// Callers hold `serial()`, and every test in these binaries that starts a process (and so
/// reads the environment) holds it too.
pub fn set_env(vars: &[(&str, Option<&str>)]) {
    for (k, v) in vars {
        // SAFETY: see above: no other thread of this test binary reads or writes the
        // environment while the serial lock is held.
        unsafe {
            match v {
                Some(v) => std::env::set_var(k, v),
                None => std::env::remove_var(k),
            }
        }
    }
}

/// Selects the fake's scenario and clears the other knobs.
pub fn scenario(name: &str) {
    set_env(&[
        ("CKPT_FAKE_SCENARIO", Some(name)),
        ("CKPT_FAKE_TRACE", None),
        ("CKPT_FAKE_MEM_TRACK", None),
        ("CKPT_FAKE_FAIL_AT", None),
    ]);
}

/// Options that run the fake criu with `dir` as the image directory and `timeout`.
pub fn fake_options(dir: &Path, timeout: Duration) -> ckpt::Options {
    let mut o = ckpt::Options::new();
    o.set_criu_path(fake_criu()).unwrap();
    o.set_image_path(dir).unwrap();
    o.set_timeout(Some(timeout));
    o
}

/// A checkpoint of this process with `o` that the fake finishes `sleep_ms` after `post-dump`,
/// past CRIU's point of no return: it succeeds (never turned into a failure), took at least
/// `sleep_ms`, says the deadline passed and the tree was killed, and leaks nothing. The
/// caller holds `serial()`.
pub fn assert_done_past_no_return(o: &ckpt::Options, sleep_ms: u64, what: &str) {
    scenario("slow-after-post-dump");
    set_env(&[("CKPT_FAKE_SLEEP_MS", Some(&sleep_ms.to_string()))]);
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let r = ckpt::ops::checkpoint(o, std::process::id() as i32);
    let took = t0.elapsed();
    set_env(&[("CKPT_FAKE_SLEEP_MS", None)]);
    snap.assert_clean(what);
    let st = r.expect("a dump past its point of no return is not turned into a failure");
    println!("answered after {took:?}; outcome {}", st.outcome);
    assert!(took >= Duration::from_millis(sleep_ms), "{took:?}");
    assert_eq!(st.get(ckpt::StatKey::PagesWritten), Some(7));
    assert_eq!(
        st.outcome,
        ckpt::error::outcome::DEADLINE_PASSED | ckpt::error::outcome::TREE_KILLED,
        "outcome {}",
        st.outcome
    );
}

/// This process's open descriptors, without the one used to list them.
pub fn open_fds() -> BTreeSet<i32> {
    let lister = format!("/proc/{}/fd", std::process::id());
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l != Path::new(&lister)))
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Every child of this process (any thread's), zombies included.
pub fn children() -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for t in std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
    {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// Open fds and children before an operation, to compare with after it.
pub struct Snapshot {
    fds: BTreeSet<i32>,
    kids: BTreeSet<i32>,
    /// When it was taken, in clock ticks after boot (the unit of /proc/PID/stat's start time).
    since: u64,
}

impl Snapshot {
    pub fn take() -> Snapshot {
        let fds = open_fds();
        Snapshot {
            fds,
            kids: children(),
            since: boot_ticks(),
        }
    }

    /// No descriptor left open and no child (running or zombie) left behind; nor any other
    /// process started since the snapshot that works in, or holds a file of, one of this
    /// test process's scratch directories (criu's helpers and the tasks of a tree it was
    /// restoring have its image directory as their working directory and its log open), nor
    /// a criu of this test run left to init. What is found is killed before the test fails.
    pub fn assert_clean(&self, what: &str) {
        self.assert_clean_within(what, Duration::from_secs(2));
    }

    /// `assert_clean`, giving other processes up to `bound` to go away.
    pub fn assert_clean_within(&self, what: &str, bound: Duration) {
        let fds = open_fds();
        let leaked: Vec<_> = fds.difference(&self.fds).collect();
        let links: Vec<String> = leaked
            .iter()
            .map(|fd| {
                let l = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
                format!("{fd} -> {}", l.display())
            })
            .collect();
        assert!(leaked.is_empty(), "{what}: fds left open: {links:?}");
        let kids = children();
        let extra: Vec<i32> = kids.difference(&self.kids).copied().collect();
        if !extra.is_empty() {
            let about: Vec<String> = extra.iter().map(|&p| describe(p)).collect();
            // Killed and reaped, so a failing test leaves nothing to the next.
            for &p in &extra {
                // SAFETY: kill(2) and waitpid(2) of a child this test left behind.
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                    libc::waitpid(p, std::ptr::null_mut(), libc::__WALL);
                }
            }
            let found = strays(&scratch_dirs(), self.since);
            for (pid, _) in &found {
                // SAFETY: kill(2) of a process this test run left behind.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
            let others: Vec<&String> = found.iter().map(|(_, w)| w).collect();
            panic!("{what}: children left behind: {about:#?}; other processes: {others:#?}");
        }
        assert_no_strays(what, self.since, bound);
    }
}

/// `pid`, its command line and its state, for a message.
fn describe(pid: i32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default();
    let state = stat_of(pid).map(|s| s.0).unwrap_or('?');
    format!("{pid} [{}] state {state}", cmd.trim())
}

/// Clock ticks since boot now, as /proc/PID/stat counts a process's start time.
pub fn boot_ticks() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ts.tv_sec as u64 * hz + ts.tv_nsec as u64 * hz / 1_000_000_000
}

/// The scratch directories of this test process: every `ckpt-<tag>-<pid>-<n>` in the
/// temporary directory, as both `TempDir`s (this one's and common's) name them.
pub fn scratch_dirs() -> Vec<PathBuf> {
    let me = format!("-{}", std::process::id());
    std::fs::read_dir(std::env::temp_dir())
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("ckpt-")
                        && name.rsplit_once('-').is_some_and(|(head, n)| {
                            head.ends_with(&me) && n.parse::<u32>().is_ok()
                        })
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// (state, ppid, pgrp, start time) of `pid`.
fn stat_of(pid: i32) -> Option<(char, i32, i32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((
        f.first()?.chars().next()?,
        f.get(1)?.parse().ok()?,
        f.get(2)?.parse().ok()?,
        f.get(19)?.parse().ok()?,
    ))
}

/// Processes started at or after `since` (boot ticks), other than this one, that work in or
/// hold a file under one of `dirs`, or that run criu, were left to init and belong to this
/// test run's process group (a neighbour's leftovers are not this test's): each with why.
pub fn strays(dirs: &[PathBuf], since: u64) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    // SAFETY: getpgrp has no preconditions and cannot fail.
    let group = unsafe { libc::getpgrp() };
    let under = |p: &Path| dirs.iter().any(|d| p.starts_with(d));
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut out = vec![];
    for pid in rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Some((state, ppid, pgrp, start)) = stat_of(pid) else {
            continue;
        };
        if pid == me || start < since || state == 'Z' || state == 'X' {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let mut why = vec![];
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
            if under(&cwd) {
                why.push(format!("works in {}", cwd.display()));
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for f in fds.flatten() {
                if let Ok(l) = std::fs::read_link(f.path()) {
                    if under(&l) {
                        why.push(format!("holds {}", l.display()));
                    }
                }
            }
        }
        if ppid == 1 && pgrp == group && cmd.starts_with("criu") {
            why.push("a criu left to init".into());
        }
        if !why.is_empty() {
            out.push((
                pid,
                format!(
                    "{pid} [{}] state {state}, parent {ppid}: {}",
                    cmd.trim(),
                    why.join(", ")
                ),
            ));
        }
    }
    out
}

/// Fails the test, after killing them, when `strays` finds any still there after `bound`
/// (a process killed just now may still be on its way out).
pub fn assert_no_strays(what: &str, since: u64, bound: Duration) {
    let dirs = scratch_dirs();
    let end = Instant::now() + bound;
    let mut found = strays(&dirs, since);
    while !found.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        found = strays(&dirs, since);
    }
    for (pid, _) in &found {
        // SAFETY: kill(2) of a process this test run left behind.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    let list: Vec<&String> = found.iter().map(|(_, w)| w).collect();
    assert!(list.is_empty(), "{what}: processes left behind: {list:#?}");
}

/// A fresh, empty directory under /tmp, removed by `Drop`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        // The base is read once: while a test points TMPDIR at its own scratch directory
        // (faults.rs), a neighbour's directory made inside it brought it back after its
        // removal, empty.
        static BASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let p = BASE.get_or_init(std::env::temp_dir).join(format!(
            "ckpt-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _g = serial_unless_held();
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    /// Removes the directory under the serial lock: `remove_dir_all` holds a descriptor of
    /// each directory it goes down into, and a test whose scratch directory outlived its lock
    /// (returned to the test body, as the iterative pre-dump tests' is) had those counted as
    /// leaked by the neighbour measuring at that moment (`fds left open: ["13 ->
    /// /tmp/ckpt-predump-…", "14 -> …/img"]`, under load).
    fn drop(&mut self) {
        let _g = serial_unless_held();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shell loop writing an increasing counter every 50 ms, in its own session with stdio on
/// /dev/null (what CRIU can dump without --shell-job). Killed and reaped on drop.
pub struct Counter {
    child: Child,
    pub file: PathBuf,
}

impl Counter {
    pub fn start(file: PathBuf) -> Counter {
        let script = format!(
            "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> {}; sleep 0.05; done",
            file.display()
        );
        let child = Command::new("setsid")
            .args(["sh", "-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start counter");
        let c = Counter { child, file };
        c.wait_above(0, 5000);
        c
    }

    /// The counter as the only process of a new private mount namespace holding a tmpfs at
    /// `mount_at`, with no descriptor from outside it (CRIU cannot dump a file of a mount the
    /// namespace does not have).
    pub fn start_in_mount_ns(file: PathBuf, mount_at: &Path) -> Counter {
        use std::os::unix::process::CommandExt;
        let script = format!(
            "exec </dev/null >/dev/null 2>&1; mount -t tmpfs ckpt-ext {}; \
             i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> {}; sleep 0.05; done",
            mount_at.display(),
            file.display()
        );
        let mut cmd = Command::new("setsid");
        cmd.args([
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: close_range is async-signal-safe and touches only the child's fd table.
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start counter in a mount namespace");
        let c = Counter { child, file };
        c.wait_above(0, 5000);
        c
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn value(&self) -> u64 {
        rewritten::read_number(&self.file).unwrap_or(0)
    }

    /// Waits until the counter exceeds `above`; panics after `ms`.
    pub fn wait_above(&self, above: u64, ms: u64) -> u64 {
        let end = Instant::now() + Duration::from_millis(ms);
        loop {
            let v = self.value();
            if v > above {
                return v;
            }
            assert!(
                Instant::now() < end,
                "counter {} stuck at {v} (process {} not running?)",
                self.file.display(),
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process keeps running: its counter moves on from where it is now.
    pub fn assert_alive(&self, what: &str) {
        let v = self.value();
        let end = Instant::now() + Duration::from_secs(5);
        while self.value() <= v {
            assert!(
                Instant::now() < end,
                "{what}: process {} stopped counting at {v}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The criu on PATH answers `--version` (the real one the suite installs).
pub fn real_criu_available() -> bool {
    Command::new("criu")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
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
