//! When ckpt kills criu (the operation timeout, a cancellation), it kills what criu started
//! with it: the helpers criu forked (an action script and its children, kerndat's probes,
//! a namespace helper) and, in a restore, the tree criu was building as the caller's child.
//! Before, criu alone was killed, and its helpers ran on under init with the image
//! directory as their working directory and its log open. Real CRIU; needs root.
//!
//! Every test checks, through the leak accounting (`Snapshot`), that afterwards no process
//! works in or holds a file of the test's scratch directories and no criu of this run was
//! left to init; the workload of a dump runs on.

mod common;
mod faultkit;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ckpt::error::outcome;
use ckpt::{Cancel, Code, Options, ops};
use common::{Proc, TempDir, counter_loop, options, proc_state, read_counter, wait_counter};
use faultkit::Snapshot;

/// A CRIU configuration file in `dir` naming an action script that, at `action`, starts a
/// `sleep` and waits for it (so criu waits for them both), after writing its pid to
/// `started`. Returns (config file, started marker).
fn hanging_action(dir: &Path, action: &str) -> (PathBuf, PathBuf) {
    let started = dir.join("hang.started");
    let body = format!("echo $$ > {}\nsleep 1000 &\nwait\n", started.display());
    (action_config(dir, "hang.sh", action, &body), started)
}

/// Writes the action script `name` in `dir`, running `body` (shell) at `action` only, and a
/// CRIU configuration file naming it; returns the configuration file.
fn action_config(dir: &Path, name: &str, action: &str, body: &str) -> PathBuf {
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = {action} ] || exit 0\n{body}"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = dir.join("criu.conf");
    std::fs::write(&conf, format!("action-script {}\n", script.display())).unwrap();
    conf
}

/// The pid of the action script once it started (it wrote its marker).
fn script_started(started: &Path) -> i32 {
    common::wait_for("the action script to start", common::WAIT, || {
        std::fs::read_to_string(started)
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

/// Triggers `cancel` from another thread once the action script started.
fn cancel_once_started(started: PathBuf, cancel: &Cancel) -> std::thread::JoinHandle<()> {
    let c = cancel.clone();
    std::thread::spawn(move || {
        script_started(&started);
        c.trigger();
    })
}

/// How an operation is stopped: the timeout, or a cancellation once the script started.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Timeout,
    Cancel,
}

impl Stop {
    fn code(self) -> Code {
        match self {
            Stop::Timeout => Code::Timeout,
            Stop::Cancel => Code::Cancelled,
        }
    }

    /// Arms `o`; the handle joins the cancelling thread.
    fn arm(self, o: &mut Options, started: &Path) -> Option<std::thread::JoinHandle<()>> {
        match self {
            Stop::Timeout => {
                o.set_timeout(Some(Duration::from_millis(1500)));
                None
            }
            Stop::Cancel => {
                let cancel = Cancel::new().unwrap();
                o.set_cancel(Some(&cancel));
                Some(cancel_once_started(started.to_path_buf(), &cancel))
            }
        }
    }
}

/// The action script is there (its marker), and neither it nor its `sleep` runs any more.
fn assert_script_gone(started: &Path, what: &str) {
    let pid: i32 = std::fs::read_to_string(started)
        .unwrap_or_else(|_| panic!("{what}: the action script never ran"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        !matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X'),
        "{what}: the action script {pid} runs on"
    );
}

/// A dump whose criu waits for its action script at `pre-dump` is stopped: the script and
/// its `sleep` go with criu, the workload runs on.
fn dump_stopped_while_a_helper_runs(stop: Stop) {
    let _s = common::serial();
    let dir = TempDir::new("reaper-dump");
    let counter = dir.join("counter");
    let w = Proc::spawn(&mut counter_loop(&counter));
    wait_counter(&counter, 2);
    let (conf, started) = hanging_action(&dir.path, "pre-dump");
    let mut o = options(&dir.join("img"));
    o.set_leave_running(true);
    o.set_config_file(&conf).unwrap();
    let t = stop.arm(&mut o, &started);
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ops::checkpoint(&o, w.pid).unwrap_err();
    let took = t0.elapsed();
    if let Some(t) = t {
        t.join().unwrap();
    }
    println!("dump, {stop:?}: {:?} after {took:?}: {e}", e.code);
    snap.assert_clean(&format!("dump stopped by {stop:?}"));
    assert_eq!(e.code, stop.code(), "{e}");
    assert_script_gone(&started, &format!("dump, {stop:?}"));
    assert!(w.alive(), "the workload is gone: {e}");
    let v = read_counter(&counter).unwrap_or(0);
    wait_counter(&counter, v + 2);
}

#[test]
fn a_dump_cut_by_the_timeout_while_criu_runs_a_helper_leaves_no_helper() {
    if common::criu_allowed("a_dump_cut_by_the_timeout_while_criu_runs_a_helper_leaves_no_helper") {
        dump_stopped_while_a_helper_runs(Stop::Timeout);
    }
}

#[test]
fn a_dump_cancelled_while_criu_runs_a_helper_leaves_no_helper() {
    if common::criu_allowed("a_dump_cancelled_while_criu_runs_a_helper_leaves_no_helper") {
        dump_stopped_while_a_helper_runs(Stop::Cancel);
    }
}

/// A restore whose criu waits for its action script at `action` is stopped: the script and
/// its `sleep` go with criu; a tree CRIU had made is killed whole and its root reaped.
/// Returns the error.
fn restore_stopped_while_a_helper_runs(
    d: &common::Dumped,
    action: &str,
    stop: Stop,
) -> ckpt::Error {
    let scripts = d.dir.sub(&format!("scripts-{action}-{stop:?}"));
    let (conf, started) = hanging_action(&scripts, action);
    let mut o = options(&d.images());
    o.set_config_file(&conf).unwrap();
    let t = stop.arm(&mut o, &started);
    let snap = Snapshot::take();
    let e = ops::restore(&o).unwrap_err();
    if let Some(t) = t {
        t.join().unwrap();
    }
    println!(
        "restore, {stop:?} at {action}: {:?} pid={} outcome={}: {e}",
        e.code, e.pid, e.outcome
    );
    snap.assert_clean(&format!("restore stopped by {stop:?} at {action}"));
    assert_eq!(e.code, stop.code(), "{e}");
    assert_script_gone(&started, &format!("restore, {stop:?} at {action}"));
    assert_eq!(
        proc_state(d.pid),
        None,
        "the restored root {} is there",
        d.pid
    );
    common::wait_pid_free(d.pid);
    e
}

#[test]
fn a_restore_cut_while_criu_runs_a_helper_leaves_no_helper() {
    if !common::criu_allowed("a_restore_cut_while_criu_runs_a_helper_leaves_no_helper") {
        return;
    }
    let _s = common::serial();
    let d = common::dumped_counter("reaper-restore");
    for stop in [Stop::Timeout, Stop::Cancel] {
        // Before CRIU forks anything of the tree.
        let e = restore_stopped_while_a_helper_runs(&d, "pre-restore", stop);
        assert_eq!(e.pid, 0, "{e}");
        // After the tree is restored, when ckpt knows its root from post-restore.
        let e = restore_stopped_while_a_helper_runs(&d, "post-restore", stop);
        assert_eq!(e.pid, d.pid, "{e}");
        assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{e}");
        assert!(
            e.message
                .contains(&format!("the restored tree (pid {}) was killed", d.pid)),
            "{e}"
        );
    }
}

/// A counting tree with a UTS namespace of its own, dumped (and so gone): restoring it makes
/// CRIU run `setup-namespaces` once it has forked the root.
fn dumped_in_a_uts_namespace(tag: &str) -> common::Dumped {
    let dir = TempDir::new(tag);
    let counter = dir.join("counter");
    let mut cmd = Command::new("unshare");
    cmd.args(["-u", "sh", "-c", common::COUNTER_SCRIPT, "counter"])
        .arg(&counter)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut w = Proc::spawn(&mut cmd);
    wait_counter(&counter, 2);
    ops::checkpoint(&options(&dir.join("img")), w.pid).expect("checkpoint");
    w.wait_exit(common::WAIT);
    common::wait_pid_free(w.pid);
    common::Dumped {
        at_dump: read_counter(&counter).unwrap_or(0),
        counter,
        pid: w.pid,
        dir,
    }
}

/// A tree with a UTS namespace of its own makes CRIU stop at `setup-namespaces` once it has
/// forked the root (the caller's child, through CLONE_PARENT, still running criu's program):
/// stopped there, criu, its script and that root are all killed, and the root's pid is
/// reported.
#[test]
fn a_restore_cut_while_criu_builds_the_tree_kills_the_root_it_made() {
    if !common::criu_allowed("a_restore_cut_while_criu_builds_the_tree_kills_the_root_it_made") {
        return;
    }
    let _s = common::serial();
    let d = dumped_in_a_uts_namespace("reaper-uts");
    for stop in [Stop::Timeout, Stop::Cancel] {
        let e = restore_stopped_while_a_helper_runs(&d, "setup-namespaces", stop);
        assert_eq!(e.pid, d.pid, "{e}");
        assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{e}");
    }
    // The images still restore.
    let r = ops::restore(&options(&d.images())).expect("restore after the cut ones");
    drop(Proc::adopt(r.pid));
}

/// Timeouts that cut a real restore at many points of CRIU's own work (its kerndat probes,
/// forking the tree, the restorer): afterwards nothing criu started runs, the tree is gone,
/// or the restore succeeded.
#[test]
fn restores_cut_at_many_points_leave_nothing_of_criu() {
    if !common::criu_allowed("restores_cut_at_many_points_leave_nothing_of_criu") {
        return;
    }
    let _s = common::serial();
    let d = common::dumped_counter("reaper-points");
    let mut seen = vec![];
    for ms in (10u64..=150).step_by(5) {
        let mut o = options(&d.images());
        o.set_timeout(Some(Duration::from_millis(ms)));
        let snap = Snapshot::take();
        match ops::restore(&o) {
            Ok(r) => {
                drop(Proc::adopt(r.pid));
                seen.push(format!("{ms}: ok"));
            }
            Err(e) => {
                assert!(
                    matches!(e.code, Code::Timeout | Code::CriuDied),
                    "{ms} ms: {e}"
                );
                seen.push(format!("{ms}: {:?} pid {}", e.code, e.pid));
            }
        }
        snap.assert_clean(&format!("restore cut at {ms} ms"));
        common::wait_pid_free(d.pid);
    }
    println!("{}", seen.join("; "));
}

use common::containers::Counting as Ctr;

/// Container dumps cut by short timeouts and cancellations, while criu forks its helpers (it
/// dumps the container's namespaces from a child of its own): nothing criu started is left,
/// and the container counts on.
#[test]
fn container_dumps_cut_short_leave_nothing_of_criu() {
    if !common::containers::runc_ready() {
        return;
    }
    let _s = common::serial();
    let mut c = Ctr::start("reaper", "dump");
    let img = TempDir::new("reaper-ctr");
    let mut seen = vec![];
    for (i, ms) in [10u64, 20, 40, 60, 80, 100, 130, 160, 200, 250, 300]
        .into_iter()
        .enumerate()
    {
        for stop in [Stop::Timeout, Stop::Cancel] {
            let mut o = options(&img.join(format!("img-{i}-{stop:?}")));
            o.set_leave_running(true);
            let cancel = Cancel::new().unwrap();
            match stop {
                Stop::Timeout => {
                    o.set_timeout(Some(Duration::from_millis(ms)));
                }
                Stop::Cancel => {
                    o.set_cancel(Some(&cancel));
                }
            }
            let snap = Snapshot::take();
            let r = std::thread::scope(|s| {
                if let Stop::Cancel = stop {
                    s.spawn(|| {
                        std::thread::sleep(Duration::from_millis(ms));
                        cancel.trigger();
                    });
                }
                ckpt::container::checkpoint(&mut o, &c.bundle, c.pid, false)
            });
            let what = format!("container dump, {stop:?} at {ms} ms");
            snap.assert_clean(&what);
            match r {
                Ok(_) => seen.push(format!("{ms} {stop:?}: done")),
                Err(e) => {
                    assert_eq!(e.code, stop.code(), "{what}: {e:?}");
                    seen.push(format!("{ms} {stop:?}: outcome {}", e.outcome));
                    // A cut while CRIU's parasite code ran in the init killed the container,
                    // and the error says so (core/tests/container_faults_dump.rs): a new one.
                    if e.message.contains("the container is gone") {
                        seen.push("the container died with criu".into());
                        c = Ctr::start("reaper", &format!("dump-{i}-{stop:?}"));
                        continue;
                    }
                }
            }
            assert!(
                common::containers::advancing(&c.bundle),
                "{what}: the container does not count"
            );
        }
    }
    println!("{}", seen.join("; "));
}

/// A CRIU configuration file in `dir` naming an action script that, at `action`, runs
/// `first` (shell), then kills its parent (criu, checked by name) with SIGKILL, after writing
/// criu's pid to `killed`: criu dies by itself as far as ckpt can tell. Returns (config
/// file, marker).
fn criu_killing_action(dir: &Path, action: &str, first: &str) -> (PathBuf, PathBuf) {
    let killed = dir.join("criu.killed");
    let body = format!(
        "[ \"$(cat /proc/$PPID/comm)\" = criu ] || exit 0\n{first}\necho $PPID $$ > {}\nkill -9 $PPID\n",
        killed.display()
    );
    (action_config(dir, "kill-criu.sh", action, &body), killed)
}

/// criu killed by someone else (SIGKILL) at `setup-namespaces`, once it has forked the root
/// of a tree with a UTS namespace of its own (the caller's child, through CLONE_PARENT, still
/// running criu's program, before `post-restore`): the error is CRIU_DIED, the root is killed
/// whole and reaped, its pid reported, and nothing is left. With `hide_pstree`, the script
/// also moves `pstree.img` away (CRIU has read it by then), so the root is found from criu
/// alone, not from the images.
fn restore_whose_criu_dies_while_building_the_tree(hide_pstree: bool) {
    let _s = common::serial();
    let d = dumped_in_a_uts_namespace("reaper-died");
    let scripts = d.dir.sub("scripts-died");
    let pstree = d.images().join("pstree.img");
    let away = d.images().join("pstree.img.away");
    let first = if hide_pstree {
        format!("mv {} {}", pstree.display(), away.display())
    } else {
        String::new()
    };
    let (conf, killed) = criu_killing_action(&scripts, "setup-namespaces", &first);
    let mut o = options(&d.images());
    o.set_config_file(&conf).unwrap();
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ops::restore(&o).unwrap_err();
    let what =
        format!("restore whose criu died at setup-namespaces (pstree.img hidden: {hide_pstree})");
    println!(
        "{what}: {:?} pid={} outcome={} after {:?}: {e}",
        e.code,
        e.pid,
        e.outcome,
        t0.elapsed()
    );
    if hide_pstree {
        std::fs::rename(&away, &pstree).expect("pstree.img was moved away");
    }
    let marker = std::fs::read_to_string(&killed).unwrap_or_default();
    let ids: Vec<i32> = marker
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(
        ids.len(),
        2,
        "{what}: the action script did not kill criu: {e}"
    );
    // The script, criu's child, went to this (subreaping) process when criu died: it is the
    // test's own doing, reaped here; ECHILD if it went elsewhere.
    // SAFETY: waitpid(2) of the script's pid, without status.
    unsafe { libc::waitpid(ids[1], std::ptr::null_mut(), libc::__WALL) };
    snap.assert_clean(&what);
    assert_eq!(e.code, Code::CriuDied, "{e}");
    assert_eq!(e.pid, d.pid, "{e}");
    assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{e}");
    assert!(
        e.message
            .contains(&format!("the restored tree (pid {}) was killed", d.pid)),
        "{e}"
    );
    assert_eq!(
        proc_state(d.pid),
        None,
        "the restored root {} is there",
        d.pid
    );
    common::wait_pid_free(d.pid);
    // The images still restore.
    let r = ops::restore(&options(&d.images())).expect("restore after criu died");
    drop(Proc::adopt(r.pid));
}

#[test]
fn a_restore_whose_criu_dies_while_building_the_tree_kills_the_root_it_made() {
    if common::criu_allowed(
        "a_restore_whose_criu_dies_while_building_the_tree_kills_the_root_it_made",
    ) {
        restore_whose_criu_dies_while_building_the_tree(false);
    }
}

#[test]
fn a_restore_whose_criu_dies_kills_the_root_it_made_without_the_images() {
    if common::criu_allowed("a_restore_whose_criu_dies_kills_the_root_it_made_without_the_images") {
        restore_whose_criu_dies_while_building_the_tree(true);
    }
}
