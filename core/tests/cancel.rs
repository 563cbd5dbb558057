//! Cancellation with the real CRIU: a token triggered before the call fails it at once; a
//! trigger from another thread while CRIU works stops criu the way the operation timeout
//! does: a leave-running dump leaves the process running and not stopped, a restore's tree
//! is killed and its pid reported, criu is always reaped.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ckpt::error::outcome;
use ckpt::{Cancel, Code, Notification, ops};
use common::*;

/// A callback that, at `script`, tells the test thread (which then triggers the token from
/// its own thread) and sleeps so the trigger lands while the notification is handled.
fn announce_at(script: &'static str, tx: mpsc::Sender<i32>) -> Arc<ckpt::options::NotifyFn> {
    let tx = std::sync::Mutex::new(tx);
    Arc::new(move |n: &Notification| {
        if n.script == script {
            let _ = tx.lock().unwrap().send(n.pid);
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(())
    })
}

/// Triggers `cancel` from a thread of its own once `rx` says the operation reached its point.
fn trigger_on(rx: mpsc::Receiver<i32>, cancel: &Cancel) -> std::thread::JoinHandle<bool> {
    let c = cancel.clone();
    std::thread::spawn(move || {
        let got = rx.recv_timeout(Duration::from_secs(60)).is_ok();
        c.trigger();
        got
    })
}

/// No child of this thread named criu is left (criu was reaped).
fn assert_no_criu_child() {
    let kids = std::fs::read_to_string("/proc/thread-self/children").unwrap_or_default();
    for k in kids.split_whitespace() {
        let comm = std::fs::read_to_string(format!("/proc/{k}/comm")).unwrap_or_default();
        assert_ne!(comm.trim(), "criu", "criu {k} was left behind");
    }
}

/// Running or sleeping, never stopped or traced (CRIU seizes with ptrace).
fn assert_running(pid: i32, what: &str) {
    // A running process passes through D (disk wait, writing its counter) on a loaded
    // machine; a stopped, traced or frozen one stays out of R and S.
    let mut st = proc_state(pid);
    for _ in 0..20 {
        if matches!(st, Some('R') | Some('S')) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        st = proc_state(pid);
    }
    assert!(
        matches!(st, Some('R') | Some('S')),
        "{what}: process {pid} is in state {st:?}"
    );
}

#[test]
fn a_token_triggered_before_the_call_fails_it_at_once() {
    if !criu_allowed("a_token_triggered_before_the_call_fails_it_at_once") {
        return;
    }
    let dir = TempDir::new("cancel-before");
    let counter = dir.join("counter");
    let w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 2);
    let cancel = Cancel::new().unwrap();
    cancel.trigger();
    cancel.trigger();
    assert!(cancel.is_triggered());
    let mut o = options(&dir.join("img"));
    o.set_cancel(Some(&cancel));
    let t0 = Instant::now();
    let e = ops::checkpoint(&o, w.pid).unwrap_err();
    assert_eq!(e.code, Code::Cancelled, "{e}");
    assert_eq!(e.outcome, 0, "{e}");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert!(!dir.join("img").exists(), "the image directory was created");
    println!("before a dump: {e}");
    let e = ops::restore(&o).unwrap_err();
    assert_eq!(e.code, Code::Cancelled, "{e}");
    let e = ops::checkpoint_iterative(&o, w.pid, 3, &mut |_, _| true).unwrap_err();
    assert_eq!(e.code, Code::Cancelled, "{e}");
    let e = ops::check(&o).unwrap_err();
    assert_eq!(e.code, Code::Cancelled, "{e}");
    assert!(w.alive());
    // Removed again, the token no longer stops anything.
    o.set_cancel(None);
    o.set_leave_running(true);
    ops::checkpoint(&o, w.pid).expect("dump without the token");
    assert!(w.alive());
}

#[test]
fn cancel_during_a_leave_running_dump_leaves_the_process_running() {
    if !criu_allowed("cancel_during_a_leave_running_dump_leaves_the_process_running") {
        return;
    }
    for script in ["pre-dump", "post-dump"] {
        let dir = TempDir::new("cancel-dump");
        let counter = dir.join("counter");
        let w = Proc::spawn(&mut counter_loop(&counter));
        wait_counter(&counter, 2);
        let cancel = Cancel::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut o = options(&dir.join("img"));
        o.set_leave_running(true);
        o.set_cancel(Some(&cancel));
        o.set_notify(Some(announce_at(script, tx)));
        let t = trigger_on(rx, &cancel);
        let e = ops::checkpoint(&o, w.pid).unwrap_err();
        assert!(t.join().unwrap(), "{script} never came");
        println!(
            "cancelled at {script}: {:?} outcome {}: {e}",
            e.code, e.outcome
        );
        assert_eq!(e.code, Code::Cancelled, "{e}");
        assert!(e.message.contains("told to abort"), "{e}");
        assert_eq!(e.outcome & outcome::TREE_KILLED, 0, "{e}");
        assert_no_criu_child();
        assert!(w.alive(), "{script}: the workload is gone");
        let v = read_counter(&counter).unwrap();
        wait_counter(&counter, v + 3);
        assert_running(w.pid, script);
    }
}

/// A process holding `mb` MiB of written memory, counting into `file`.
fn big_workload(file: &Path, mb: usize) -> Proc {
    use std::process::{Command, Stdio};
    let script = format!(
        "import time,sys\nb=bytearray({mb}<<20)\nfor i in range(0,len(b),4096): b[i]=1\n\
         i=0\nwhile True:\n i+=1\n open(sys.argv[1],'a').write('%d\\n'%i)\n time.sleep(0.05)\n"
    );
    let p = Proc::spawn(
        Command::new("python3")
            .args(["-c", &script])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    wait_counter(file, 2);
    p
}

/// A trigger from another thread while criu is busy dumping (no notification pending): criu
/// is killed as at a timeout, and the error says what that means for the tree; a process
/// not reported as possibly harmed runs on.
#[test]
fn cancel_while_criu_dumps_stops_it_as_the_timeout_does() {
    if !criu_allowed("cancel_while_criu_dumps_stops_it_as_the_timeout_does") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("cancel-busy");
    let f = dir.join("probe");
    let w = big_workload(&f, 128);
    let mut o = options(&dir.join("probe-img"));
    o.set_leave_running(true);
    let t0 = Instant::now();
    ops::checkpoint(&o, w.pid).expect("probe dump");
    let full = t0.elapsed();
    drop(w);
    println!("a leave-running dump of 128 MiB takes {full:?} here");
    let mut seen = vec![];
    for pct in [20u32, 50, 80] {
        let file = dir.join(format!("counter-{pct}"));
        let w = big_workload(&file, 128);
        let cancel = Cancel::new().unwrap();
        let mut o = options(&dir.join(format!("img-{pct}")));
        o.set_leave_running(true);
        o.set_cancel(Some(&cancel));
        let c = cancel.clone();
        let after = full * pct / 100;
        let t = std::thread::spawn(move || {
            std::thread::sleep(after);
            c.trigger();
        });
        let t0 = Instant::now();
        let r = ops::checkpoint(&o, w.pid);
        let took = t0.elapsed();
        t.join().unwrap();
        assert_no_criu_child();
        match r {
            Ok(st) => {
                assert_eq!(st.outcome & outcome::TREE_KILLED, 0);
                seen.push(format!("{pct}%: finished first in {took:?}"));
            }
            Err(e) => {
                assert_eq!(e.code, Code::Cancelled, "{pct}%: {e}");
                assert!(
                    took < after + Duration::from_secs(2),
                    "{pct}%: took {took:?}"
                );
                if e.outcome & outcome::TREE_STATE_UNKNOWN == 0 {
                    assert!(w.alive(), "{pct}%: {e}");
                    let v = read_counter(&file).unwrap_or(0);
                    wait_counter(&file, v + 2);
                    assert_running(w.pid, &format!("{pct}%"));
                }
                std::thread::sleep(Duration::from_millis(300));
                seen.push(format!(
                    "{pct}%: cancelled after {took:?}, outcome {} (workload {}, state {:?}): {}",
                    e.outcome,
                    if w.alive() { "running" } else { "gone" },
                    proc_state(w.pid),
                    e.message
                ));
            }
        }
        drop(w);
    }
    println!("{}", seen.join("\n"));
}

/// The restored tree's root and the members still alive of its session.
fn assert_tree_gone(pid: i32) {
    assert_eq!(
        proc_state(pid),
        None,
        "the restored root {pid} was not reaped"
    );
}

#[test]
fn cancel_during_a_restore_kills_the_restored_tree_and_reports_its_pid() {
    if !criu_allowed("cancel_during_a_restore_kills_the_restored_tree_and_reports_its_pid") {
        return;
    }
    let _s = serial();
    for script in ["post-restore", "pre-resume"] {
        let d = dumped_counter(&format!("cancel-restore-{script}"));
        let cancel = Cancel::new().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut o = options(&d.images());
        o.set_cancel(Some(&cancel));
        o.set_notify(Some(announce_at(script, tx)));
        let t = trigger_on(rx, &cancel);
        let e = ops::restore(&o).unwrap_err();
        assert!(t.join().unwrap(), "{script} never came");
        println!(
            "restore cancelled at {script}: {:?} outcome {}: {e}",
            e.code, e.outcome
        );
        assert_eq!(e.code, Code::Cancelled, "{e}");
        assert_eq!(e.pid, d.pid, "{e}");
        assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{e}");
        assert!(
            e.message
                .contains(&format!("the restored tree (pid {}) was killed", d.pid)),
            "{e}"
        );
        assert_no_criu_child();
        assert_tree_gone(d.pid);
        wait_pid_free(d.pid);
    }
}

/// A cancel while the restore waits (`set_restore_wait`) for a pid a zombie holds ends the
/// wait at once: the restore fails with `Cancelled` before criu starts, long before the bound.
#[test]
fn cancel_during_the_restore_wait_ends_it() {
    if !criu_allowed("cancel_during_the_restore_wait_ends_it") {
        return;
    }
    let _s = serial();
    let dir = TempDir::new("cancel-wait");
    let counter = dir.join("counter");
    let mut w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 2);
    ops::checkpoint(&options(&dir.join("img")), w.pid).expect("checkpoint");
    // The dumped root is a zombie child of this test until reaped: it holds its pid.
    wait_for("the dumped root to be a zombie", WAIT, || {
        (proc_state(w.pid) == Some('Z')).then_some(())
    });
    let cancel = Cancel::new().unwrap();
    let mut o = options(&dir.join("img"));
    o.set_restore_wait_ms(10_000);
    o.set_cancel(Some(&cancel));
    let c = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c.trigger();
    });
    let t0 = Instant::now();
    let e = ops::restore(&o).unwrap_err();
    let took = t0.elapsed();
    t.join().unwrap();
    println!("restore wait cancelled after {took:?}: {e}");
    assert_eq!(e.code, Code::Cancelled, "{e}");
    assert_eq!(e.outcome, 0, "{e}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(proc_state(w.pid), Some('Z'), "the zombie was not touched");
    assert_no_criu_child();
    w.wait_exit(WAIT);
}
