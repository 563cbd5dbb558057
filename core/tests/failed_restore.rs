//! Failed restores with the real CRIU: whatever goes wrong after CRIU created the tree (a
//! timeout, a callback that fails or sleeps past the timeout, criu killed, a pid file that
//! cannot be written), the caller either finds the tree gone, killed whole and its root
//! reaped, or gets its pid with the error; never a silent orphan. Also the pid file against
//! planted symlinks, and the restore wait for a pid a zombie still holds.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ckpt::error::outcome;
use ckpt::{Code, Error, Options, ops};
use common::*;

/// A tree of two long-lived processes (a shell loop and a `sleep` it started), dumped, which
/// kills it; its pids are free again when this returns.
struct Dumped {
    dir: TempDir,
    pid: i32,
}

impl Dumped {
    fn images(&self) -> PathBuf {
        self.dir.join("img")
    }
}

const TREE_SCRIPT: &str =
    r#"sleep 1000 & i=0; while :; do i=$((i+1)); echo $i >> "$1"; sleep 0.05; done"#;

fn dumped_tree(tag: &str) -> Dumped {
    let dir = TempDir::new(tag);
    let counter = dir.join("counter");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", TREE_SCRIPT, "tree"])
        .arg(&counter)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut w = Proc::spawn(&mut cmd);
    wait_counter(&counter, 3);
    ops::checkpoint(&options(&dir.join("img")), w.pid).expect("checkpoint");
    w.wait_exit(WAIT);
    wait_pid_free(w.pid);
    Dumped { dir, pid: w.pid }
}

/// Live (not zombie) processes whose pid, process group or session is `sid`.
fn live_members(sid: i32) -> Vec<(i32, char)> {
    session_stats(sid)
        .into_iter()
        .filter(|(_, _, state, _)| *state != 'Z' && *state != 'X')
        .map(|(p, _, state, _)| (p, state))
        .collect()
}

/// After a failed restore: the root is reaped (no such pid at all, not even a zombie), and
/// nothing of the tree runs on, the root's `sleep` included.
fn assert_tree_gone(pid: i32, what: &str) {
    assert_eq!(
        proc_state(pid),
        None,
        "{what}: the restored root {pid} was not reaped"
    );
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live_members(pid);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what}: processes of the restored tree run on: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The error says the restored tree was killed and carries its pid.
fn assert_killed_and_told(e: &Error, pid: i32) {
    assert_eq!(e.pid, pid, "{e}");
    assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{e}");
    assert!(
        e.message
            .contains(&format!("the restored tree (pid {pid}) was killed")),
        "{e}"
    );
}

/// A callback that sleeps `ms` at `script`, or fails there when `ms` is 0.
fn slow_or_failing_at(script: &'static str, ms: u64) -> Arc<ckpt::options::NotifyFn> {
    Arc::new(move |n: &ckpt::Notification| {
        if n.script == script {
            if ms == 0 {
                return Err(format!("refusing {script}"));
            }
            std::thread::sleep(Duration::from_millis(ms));
        }
        Ok(())
    })
}

fn callback_fails_at(script: &'static str) {
    let _s = serial();
    let d = dumped_tree(script);
    let mut o = options(&d.images());
    o.set_notify(Some(slow_or_failing_at(script, 0)));
    let e = ops::restore(&o).unwrap_err();
    println!("callback fails at {script}: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Callback, "{e}");
    assert_killed_and_told(&e, d.pid);
    assert_tree_gone(d.pid, script);
}

#[test]
fn callback_failing_at_pre_resume_kills_the_restored_tree() {
    callback_fails_at("pre-resume");
}

#[test]
fn callback_failing_at_post_resume_kills_the_restored_tree() {
    callback_fails_at("post-resume");
}

#[test]
fn callback_failing_at_post_restore_kills_the_restored_tree() {
    callback_fails_at("post-restore");
}

#[test]
fn callback_sleeping_past_the_timeout_at_post_resume() {
    let _s = serial();
    let d = dumped_tree("slow-post-resume");
    let mut o = options(&d.images());
    o.set_timeout(Some(Duration::from_millis(1500)));
    o.set_notify(Some(slow_or_failing_at("post-resume", 1700)));
    let t0 = Instant::now();
    let e = ops::restore(&o).unwrap_err();
    println!(
        "slow post-resume: {:?}: {} after {:?}",
        e.code,
        e.message,
        t0.elapsed()
    );
    assert_eq!(e.code, Code::Timeout, "{e}");
    assert_killed_and_told(&e, d.pid);
    assert_tree_gone(d.pid, "slow post-resume");
}

#[test]
fn callback_sleeping_past_the_timeout_at_post_restore() {
    let _s = serial();
    let d = dumped_tree("slow-post-restore");
    let mut o = options(&d.images());
    o.set_timeout(Some(Duration::from_millis(1500)));
    o.set_notify(Some(slow_or_failing_at("post-restore", 1700)));
    let e = ops::restore(&o).unwrap_err();
    println!("slow post-restore: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Timeout, "{e}");
    assert_killed_and_told(&e, d.pid);
    assert_tree_gone(d.pid, "slow post-restore");
}

/// The pid of this thread's child named `criu`.
fn criu_child() -> Option<i32> {
    let kids = std::fs::read_to_string("/proc/thread-self/children").ok()?;
    kids.split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "criu")
        })
}

fn criu_killed_at(script: &'static str) {
    let _s = serial();
    let d = dumped_tree(&format!("kill-criu-{script}"));
    let mut o = options(&d.images());
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        if n.script == script {
            let criu = criu_child().ok_or("no criu child")?;
            // SAFETY: kill(2) of criu, our unreaped child.
            unsafe { libc::kill(criu, libc::SIGKILL) };
        }
        Ok(())
    })));
    let e = ops::restore(&o).unwrap_err();
    println!("criu killed at {script}: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::CriuDied, "{e}");
    assert_killed_and_told(&e, d.pid);
    assert_tree_gone(d.pid, script);
}

#[test]
fn criu_killed_at_post_restore() {
    criu_killed_at("post-restore");
}

#[test]
fn criu_killed_at_pre_resume() {
    criu_killed_at("pre-resume");
}

/// Timeouts that fire at many points of a real restore, in the middle of CRIU's own work:
/// after each, either the restore succeeded, or the tree is gone (root reaped, nothing left
/// running), with its pid in the error when there was one.
#[test]
fn timeouts_at_every_point_of_a_restore_leave_no_silent_tree() {
    let _s = serial();
    let d = dumped_tree("timeouts");
    let mut failures = 0;
    for ms in [5u64, 20, 40, 60, 80, 100, 120, 150, 200, 300] {
        let mut o = options(&d.images());
        o.set_timeout(Some(Duration::from_millis(ms)));
        match ops::restore(&o) {
            Ok(r) => {
                println!("timeout {ms} ms: restored (pid {})", r.pid);
                // Dropping it kills its process group, the `sleep` included.
                drop(Proc::adopt(r.pid));
            }
            Err(e) => {
                failures += 1;
                println!(
                    "timeout {ms} ms: {:?} pid={} outcome={}: {}",
                    e.code, e.pid, e.outcome, e.message
                );
                assert!(
                    matches!(e.code, Code::Timeout | Code::CriuDied),
                    "{ms} ms: {e}"
                );
                if e.pid != 0 {
                    assert_killed_and_told(&e, d.pid);
                }
                assert_tree_gone(d.pid, &format!("timeout {ms} ms"));
            }
        }
        wait_pid_free(d.pid);
    }
    assert!(
        failures > 0,
        "no timeout fired: the restore is too fast here"
    );
}

#[test]
fn pid_file_that_cannot_be_written_kills_the_whole_tree() {
    let _s = serial();
    let d = dumped_tree("pidfile-tree");
    let run = d.dir.sub("run");
    std::fs::create_dir(run.join("restored.pid")).unwrap();
    let mut o = options(&d.images());
    o.set_pid_file(run.join("restored.pid")).unwrap();
    let e = ops::restore(&o).unwrap_err();
    println!("pid file: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Io, "{e}");
    assert_killed_and_told(&e, d.pid);
    assert_tree_gone(d.pid, "unwritable pid file");
}

// ---- the pid file against planted symlinks ----

#[test]
fn pid_file_never_follows_planted_symlinks() {
    let _s = serial();
    let d = dumped_tree("pidfile-symlink");
    let run = d.dir.sub("run");
    let victim = d.dir.join("victim");
    let victim2 = d.dir.join("victim2");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::write(&victim2, "precious too\n").unwrap();
    let pid_file = run.join("restored.pid");
    // Every name an attacker could guess for the temporary: the old scheme
    // (.NAME.tmp.<pid>), and plausible others around this process's pid.
    let me = std::process::id();
    for guess in [
        format!(".restored.pid.tmp.{me}"),
        ".restored.pid.tmp".to_string(),
        format!(".restored.pid.{me}.tmp"),
        "restored.pid.tmp".to_string(),
    ] {
        std::os::unix::fs::symlink(&victim, run.join(guess)).unwrap();
    }
    // And the final name itself is a symlink to another victim.
    std::os::unix::fs::symlink(&victim2, &pid_file).unwrap();
    let mut o = options(&d.images());
    o.set_pid_file(pid_file.clone()).unwrap();
    let r = ops::restore(&o).expect("restore");
    let _p = Proc::adopt(r.pid);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(std::fs::read_to_string(&victim2).unwrap(), "precious too\n");
    let meta = std::fs::symlink_metadata(&pid_file).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the pid file is not a regular file"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        r.pid.to_string()
    );
    // Only the planted links and the pid file: no temporary was left.
    let extra: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "restored.pid" && !n.contains("tmp"))
        .collect();
    assert!(extra.is_empty(), "left behind: {extra:?}");
    let tmps = std::fs::read_dir(&run)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file() && e.file_name() != "restored.pid")
        .count();
    assert_eq!(tmps, 0, "a temporary file was left behind");
}

// ---- waiting for a pid a zombie holds (issue 14) ----

/// Dumps a counter that is this test's child and leaves the killed root unreaped (a zombie
/// holding its pid) until `reap_after` has passed, as a parent that reaps late would.
fn dump_leaving_a_zombie(
    tag: &str,
    reap_after: Duration,
) -> (TempDir, i32, std::thread::JoinHandle<()>) {
    let dir = TempDir::new(tag);
    let counter = dir.join("counter");
    let w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 3);
    ops::checkpoint(&options(&dir.join("img")), w.pid).expect("checkpoint");
    let pid = w.pid;
    std::mem::forget(w);
    wait_for("the dumped root to be a zombie", WAIT, || {
        (proc_state(pid) == Some('Z')).then_some(())
    });
    let reaper = std::thread::spawn(move || {
        std::thread::sleep(reap_after);
        let mut st = 0;
        // SAFETY: waitpid on our own zombie child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        reap_session(pid, WAIT);
    });
    (dir, pid, reaper)
}

fn pre_restore_counter(o: &mut Options) -> Arc<AtomicU32> {
    let n = Arc::new(AtomicU32::new(0));
    let n2 = n.clone();
    o.set_notify(Some(Arc::new(move |note: &ckpt::Notification| {
        if note.script == "pre-restore" {
            n2.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    })));
    n
}

#[test]
fn restore_wait_outlasts_a_zombie_holding_the_pid() {
    let _s = serial();
    let (dir, pid, reaper) = dump_leaving_a_zombie("restore-wait", Duration::from_millis(800));
    let mut o = options(&dir.join("img"));
    o.set_restore_wait(Some(Duration::from_secs(10)));
    let pre = pre_restore_counter(&mut o);
    let t0 = Instant::now();
    let r = ops::restore(&o).expect("a restore that waits for the zombie");
    let took = t0.elapsed();
    let _p = Proc::adopt(r.pid);
    reaper.join().unwrap();
    println!("restore waited for the zombie: {took:?}");
    assert_eq!(r.pid, pid);
    assert_eq!(
        pre.load(Ordering::SeqCst),
        1,
        "pre-restore fired more than once"
    );
    assert!(took >= Duration::from_millis(700), "{took:?}");
}

#[test]
fn without_restore_wait_the_zombie_makes_pid_in_use() {
    let _s = serial();
    let (dir, pid, reaper) = dump_leaving_a_zombie("no-restore-wait", Duration::from_secs(3));
    let mut o = options(&dir.join("img"));
    let pre = pre_restore_counter(&mut o);
    let e = ops::restore(&o).unwrap_err();
    reaper.join().unwrap();
    println!("no wait: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::PidInUse, "{e}");
    // Named as the caller's own zombie (found among this process's children).
    assert!(
        e.message
            .contains(&format!("process {pid}, a zombie child of this process")),
        "{e}"
    );
    assert_eq!(pre.load(Ordering::SeqCst), 1);
    assert_eq!(proc_state(pid), None);
}

#[test]
fn restore_wait_gives_up_at_its_bound() {
    let _s = serial();
    let (dir, _pid, reaper) = dump_leaving_a_zombie("restore-wait-bound", Duration::from_secs(4));
    let mut o = options(&dir.join("img"));
    o.set_restore_wait(Some(Duration::from_millis(500)));
    let t0 = Instant::now();
    let e = ops::restore(&o).unwrap_err();
    let took = t0.elapsed();
    reaper.join().unwrap();
    assert_eq!(e.code, Code::PidInUse, "{e}");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
