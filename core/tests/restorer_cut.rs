//! A restore cut while the root of the tree sits in CRIU's restorer (issue #9): by then the
//! root (the caller's child, through CLONE_PARENT) no longer runs criu's executable (CRIU's
//! restorer set its exe link) and carries its restored memory, but criu has not yet sent
//! `post-restore`. A watcher thread hits that window exactly: it waits until the restoring
//! thread has a new child whose pid in its own pid namespace is the images' root pid and
//! whose executable is no longer criu's, then stops criu (SIGSTOP) so the restore cannot get
//! past it; the operation is then cut by a cancellation or by its timeout (or criu is killed
//! there, as by someone else). Afterwards no process of the restored tree is left (neither
//! the root nor its children), no criu, the caller is told the root's pid, and the images
//! restore again.
//!
//! Before, that root was left out of what ckpt stops and kills with criu: it ran on, detached
//! from criu's ptrace, until ckpt looked for it again by the images' root pid after criu was
//! reaped. Killed in the last part of the restore (criu holding the tasks stopped and
//! working on them through ptrace), the root died by itself in that gap (SIGSEGV) and its
//! child, the counter's `sleep`, went on under the caller, a subreaper (seen in about one
//! run of `killed_criu.rs` in five, and in 2 of about 1,070 restores cut by timeouts of
//! 35-90 ms in a loop like its). Here the watcher also moves `pstree.img` away once criu is
//! stopped (CRIU read it long before), so the later search by the images' root pid finds
//! nothing either: the root and its child ran on, unreported, every time. Real CRIU; needs
//! root.

mod common;
mod faultkit;
#[path = "container_faults/leftovers.rs"]
mod leftovers;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ckpt::error::outcome;
use ckpt::{Cancel, Code, Options, ops};
use common::{Proc, options, proc_state};
use faultkit::Snapshot;

/// (device, inode) of the executable `pid` runs.
fn exe_of(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((m.dev(), m.ino()))
}

/// (device, inode) of `criu` as ckpt finds it (on PATH, as the tests' options leave it).
fn criu_exe() -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let bin = std::env::split_paths(&path)
        .map(|d| d.join("criu"))
        .find(|p| p.is_file())
        .expect("criu on PATH");
    let m = std::fs::metadata(bin).unwrap();
    (m.dev(), m.ino())
}

/// The children of thread `tid` of this process.
fn thread_children(tid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The last pid of the `NSpid` line: the pid in the process's own pid namespace.
fn inner_pid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// What the watcher saw and did.
#[derive(Debug, Clone, Copy)]
struct Caught {
    criu: i32,
    root: i32,
}

/// Watches thread `tid`'s children that are not in `before`. Once one of them has
/// `image_root` as its pid in its own pid namespace and runs neither criu's executable nor
/// this test's (the restored program: CRIU's restorer has set the root's exe link), calls
/// `act` with the one that runs criu's executable (criu) and returns both. None when
/// `give_up` is set first or after `bound`.
fn catch_the_root_in_the_restorer(
    tid: i32,
    before: &[i32],
    image_root: i32,
    give_up: &AtomicBool,
    bound: Duration,
    act: &dyn Fn(i32),
) -> Option<Caught> {
    let criu_exe = criu_exe();
    let own_exe = exe_of(std::process::id() as i32);
    let end = Instant::now() + bound;
    while !give_up.load(Ordering::Relaxed) && Instant::now() < end {
        let kids: Vec<i32> = thread_children(tid)
            .into_iter()
            .filter(|k| !before.contains(k))
            .collect();
        let root = kids.iter().copied().find(|&k| {
            inner_pid(k) == Some(image_root)
                && exe_of(k).is_some_and(|e| e != criu_exe && Some(e) != own_exe)
        });
        if let Some(root) = root {
            let criu: Vec<i32> = kids
                .iter()
                .copied()
                .filter(|&k| k != root && exe_of(k) == Some(criu_exe))
                .collect();
            // criu gone already: the restore got past the window unseen.
            let [criu] = criu[..] else {
                return None;
            };
            act(criu);
            return Some(Caught { criu, root });
        }
        std::thread::yield_now();
    }
    None
}

/// How the restore is cut once the root is in CRIU's restorer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cut {
    /// criu stopped, then a cancellation triggered by the watcher.
    Cancel,
    /// criu stopped, then the operation's own timeout.
    Timeout,
    /// criu killed (SIGKILL), as by someone else: it dies before it answered.
    KillCriu,
}

impl Cut {
    fn code(self) -> Code {
        match self {
            Cut::Cancel => Code::Cancelled,
            Cut::Timeout => Code::Timeout,
            Cut::KillCriu => Code::CriuDied,
        }
    }
}

/// Processes (other than zombies) whose session or process group is `sid`, or that are
/// `sid` itself: what is left of a restored tree that ran in a session of its own.
fn session_members(sid: i32) -> Vec<String> {
    common::session_stats(sid)
        .into_iter()
        .filter(|(_, _, state, _)| *state != 'Z')
        .map(|(p, _, _, stat)| format!("{p} [{}]", stat.trim()))
        .collect()
}

/// One restore of the images in `images` with `o`, cut `cut` once the root whose inner pid
/// is `image_root` sits in CRIU's restorer; with `hide`, `pstree.img` is moved away then
/// (and back once the call returned). Returns what the watcher caught (None: the restore
/// never reached the window), the result, and whether ckpt saw `post-restore` (then CRIU
/// got past the window before criu was stopped).
fn cut_in_the_restorer(
    o: &mut Options,
    images: &Path,
    cut: Cut,
    hide: bool,
    image_root: i32,
    restore: &dyn Fn(&mut Options) -> ckpt::Result<i32>,
) -> (Option<Caught>, ckpt::Result<i32>, bool) {
    let cancel = Cancel::new().unwrap();
    match cut {
        Cut::Cancel => {
            o.set_cancel(Some(&cancel));
        }
        Cut::Timeout => {
            o.set_timeout(Some(Duration::from_secs(3)));
        }
        Cut::KillCriu => {}
    }
    let post_restore = Arc::new(AtomicBool::new(false));
    let seen = post_restore.clone();
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        if n.script == ckpt::notify::POST_RESTORE {
            seen.store(true, Ordering::SeqCst);
        }
        Ok(())
    })));
    let pstree = images.join("pstree.img");
    let away = images.join("pstree.img.away");
    let act = |criu: i32| {
        let sig = match cut {
            Cut::KillCriu => libc::SIGKILL,
            _ => libc::SIGSTOP,
        };
        if hide && sig == libc::SIGKILL {
            std::fs::rename(&pstree, &away).unwrap();
        }
        // SAFETY: kill(2) of criu, an unreaped child of this process (its pid is its own).
        unsafe { libc::kill(criu, sig) };
        if hide && sig == libc::SIGSTOP {
            std::fs::rename(&pstree, &away).unwrap();
        }
    };
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let before = thread_children(tid);
    let done = AtomicBool::new(false);
    let (caught, r) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let c = catch_the_root_in_the_restorer(
                tid,
                &before,
                image_root,
                &done,
                Duration::from_secs(30),
                &act,
            );
            if c.is_some() && cut == Cut::Cancel {
                // The root stays in its restorer while criu is stopped.
                std::thread::sleep(Duration::from_millis(100));
                cancel.trigger();
            }
            c
        });
        let r = restore(o);
        done.store(true, Ordering::Relaxed);
        (w.join().unwrap(), r)
    });
    if hide && caught.is_some() {
        std::fs::rename(&away, &pstree).unwrap();
    }
    (caught, r, post_restore.load(Ordering::SeqCst))
}

/// The process-level restore of a counting loop (a `sh` root and its `sleep`), cut `cut`
/// while the root is in CRIU's restorer, `pstree.img` moved away then with `hide`.
fn process_restore_cut_in_the_restorer(cut: Cut, hide: bool) {
    let _s = common::serial();
    let d = common::dumped_counter(&format!("fix9-restorer-{cut:?}"));
    let mut hit = 0;
    for attempt in 0..8 {
        let mut o = options(&d.images());
        let snap = Snapshot::take();
        let t0 = Instant::now();
        let (caught, r, post_restore) =
            cut_in_the_restorer(&mut o, &d.images(), cut, hide, d.pid, &|o| {
                ops::restore(o).map(|r| r.pid)
            });
        // The options hold the cancellation token's descriptor.
        drop(o);
        let what = format!(
            "restore cut by {cut:?} in the restorer (pstree.img hidden: {hide}), attempt {attempt}"
        );
        println!(
            "{what}: caught {caught:?}, post-restore seen {post_restore}, after {:?}: {:?}",
            t0.elapsed(),
            r.as_ref()
                .map_err(|e| (e.code, e.pid, e.outcome, e.message.clone()))
        );
        // A restore the watcher did not stop before CRIU's answer succeeded: its tree is
        // this test's to kill.
        if let Ok(pid) = &r {
            drop(Proc::adopt(*pid));
        }
        // Nothing of the tree, and no criu, is left, whatever the watcher caught.
        snap.assert_clean(&what);
        let left = session_members(d.pid);
        assert!(
            left.is_empty(),
            "{what}: left of the restored tree: {left:?}"
        );
        common::wait_pid_free(d.pid);
        let Some(c) = caught else {
            continue;
        };
        assert_eq!(proc_state(c.criu), None, "{what}: criu {} is there", c.criu);
        if post_restore {
            // CRIU got past the window before criu was stopped (a busy machine): ckpt knew
            // the root from `post-restore`, or CRIU had answered.
            continue;
        }
        let e = r.expect_err("a restore whose criu was stopped or killed cannot succeed");
        assert_eq!(e.code, cut.code(), "{what}: {e}");
        assert_eq!(
            proc_state(c.root),
            None,
            "{what}: the root {} is there",
            c.root
        );
        hit += 1;
        assert_eq!(
            e.pid, d.pid,
            "{what}: the caller is not told of the root: {e}"
        );
        assert_ne!(e.outcome & outcome::RESTORED_KILLED, 0, "{what}: {e}");
        assert!(
            e.message
                .contains(&format!("the restored tree (pid {}) was killed", d.pid)),
            "{what}: {e}"
        );
        if hit == 2 {
            break;
        }
    }
    assert!(
        hit > 0,
        "no attempt cut the restore inside the restorer window"
    );
    // The pids are free again: the images restore.
    let r = ops::restore(&options(&d.images())).expect("restore after the cut ones");
    drop(Proc::adopt(r.pid));
}

#[test]
fn a_restore_cancelled_while_the_root_is_in_the_restorer_leaves_nothing() {
    if common::criu_allowed("a_restore_cancelled_while_the_root_is_in_the_restorer_leaves_nothing")
    {
        process_restore_cut_in_the_restorer(Cut::Cancel, false);
        process_restore_cut_in_the_restorer(Cut::Cancel, true);
    }
}

#[test]
fn a_restore_timed_out_while_the_root_is_in_the_restorer_leaves_nothing() {
    if common::criu_allowed("a_restore_timed_out_while_the_root_is_in_the_restorer_leaves_nothing")
    {
        process_restore_cut_in_the_restorer(Cut::Timeout, true);
    }
}

#[test]
fn a_restore_whose_criu_dies_while_the_root_is_in_the_restorer_leaves_nothing() {
    if common::criu_allowed(
        "a_restore_whose_criu_dies_while_the_root_is_in_the_restorer_leaves_nothing",
    ) {
        process_restore_cut_in_the_restorer(Cut::KillCriu, true);
    }
}

/// A runc container's restore (its init is pid 1 in a pid namespace of its own, a `sh` loop
/// with its `sleep`) cut `cut` while the init is in CRIU's restorer, `pstree.img` moved away
/// then: nothing of the container is left (no process in its cgroups, no cgroup, CRIU's root
/// unbound, no child, no criu), the caller gets the init's pid, and the images restore again.
fn container_restore_cut_in_the_restorer(cut: Cut) {
    use ckpt::container;
    use common::containers::{Counting, runc_ready};
    if !runc_ready() {
        return;
    }
    let _s = common::serial();
    let c = Counting::start("fix9-rst", &format!("{cut:?}"));
    let images = c.work.join("images");
    let mut o = options(&images);
    container::checkpoint(&mut o, &c.bundle, c.pid, false)
        .unwrap_or_else(|e| panic!("checkpoint: {e:?}"));
    c.remove_dumped();
    let restore = |o: &mut Options| {
        let req = container::RestoreRequest {
            bundle: c.bundle.clone(),
            ..Default::default()
        };
        container::restore(o, req).map(|(_, r)| r.pid)
    };
    let mut hit = 0;
    let mut bad = vec![];
    for attempt in 0..8 {
        let mut o = options(&images);
        let snap = Snapshot::take();
        let t0 = Instant::now();
        let (caught, r, post_restore) =
            cut_in_the_restorer(&mut o, &images, cut, true, 1, &restore);
        drop(o);
        let what = format!("container restore cut by {cut:?} in the restorer, attempt {attempt}");
        println!(
            "{what}: caught {caught:?}, post-restore seen {post_restore}, after {:?}: {:?}",
            t0.elapsed(),
            r.as_ref()
                .map_err(|e| (e.code, e.pid, e.outcome, e.message.clone()))
        );
        let e = match r {
            Ok(pid) => {
                // Got past the window unseen: the container runs, this test's to remove.
                c.remove_restored(pid);
                snap.assert_clean(&what);
                continue;
            }
            Err(e) => e,
        };
        bad.extend(leftovers::leftovers(&c.id, &e, &snap, &what));
        let Some(caught) = caught else {
            continue;
        };
        if post_restore {
            continue;
        }
        hit += 1;
        if e.code != cut.code() {
            bad.push(format!("{what}: {:?}, not {:?}: {e}", e.code, cut.code()));
        }
        if e.pid != caught.root || e.outcome & outcome::RESTORED_KILLED == 0 {
            bad.push(format!(
                "{what}: the caller is not told of the init {}: {e}",
                caught.root
            ));
        }
        if hit == 2 {
            break;
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        hit > 0,
        "no attempt cut the container restore inside the restorer window"
    );
    let mut o = options(&images);
    let pid = restore(&mut o).expect("restore after the cut ones");
    assert!(
        common::containers::advancing(&c.bundle),
        "the restored container does not count"
    );
    c.remove_restored(pid);
}

#[test]
fn a_container_restore_cancelled_while_its_init_is_in_the_restorer_leaves_nothing() {
    if common::criu_allowed(
        "a_container_restore_cancelled_while_its_init_is_in_the_restorer_leaves_nothing",
    ) {
        container_restore_cut_in_the_restorer(Cut::Cancel);
    }
}

#[test]
fn a_container_restore_whose_criu_dies_while_its_init_is_in_the_restorer_leaves_nothing() {
    if common::criu_allowed(
        "a_container_restore_whose_criu_dies_while_its_init_is_in_the_restorer_leaves_nothing",
    ) {
        container_restore_cut_in_the_restorer(Cut::KillCriu);
    }
}
