//! Concurrency with the real CRIU: 8 threads, each with its own options handle, checkpoint 8
//! different processes 20 times each; and callers that handle SIGCHLD themselves (a reaping
//! handler, SIG_IGN), as Go's runtime and many daemons do.

mod faultkit;

use std::path::Path;
use std::time::{Duration, Instant};

use ckpt::{Code, Options};
use faultkit::{Counter, Snapshot, TempDir, criu_allowed, fake_criu, scenario, serial};

const THREADS: usize = 8;
const ROUNDS: usize = 20;

/// The root pid recorded in `pstree.img`: the first PstreeEntry's field 1.
fn pstree_root(img: &Path) -> Option<u32> {
    let bytes = std::fs::read(img.join("pstree.img")).ok()?;
    // Two magic words, a u32 record length, then the PstreeEntry; `pid` is field 1, a varint.
    let entry = bytes.get(12..)?;
    if *entry.first()? != 0x08 {
        return None;
    }
    let mut v: u32 = 0;
    for (i, b) in entry[1..].iter().take(5).enumerate() {
        v |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The pids of the `core-PID.img` files in `img`.
fn core_pids(img: &Path) -> Vec<i32> {
    std::fs::read_dir(img)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_prefix("core-")?.strip_suffix(".img")?.parse().ok()
        })
        .collect()
}

#[test]
fn eight_threads_twenty_checkpoints_each() {
    if !criu_allowed("eight_threads_twenty_checkpoints_each") {
        return;
    }
    let _g = serial();
    let base = TempDir::new("conc");
    let counters: Vec<Counter> = (0..THREADS)
        .map(|t| Counter::start(base.join(format!("counter-{t}"))))
        .collect();
    let all_pids: Vec<i32> = counters.iter().map(Counter::pid).collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = counters
            .iter()
            .enumerate()
            .map(|(t, c)| {
                let base = base.path();
                let all_pids = &all_pids;
                s.spawn(move || {
                    let mut o = Options::new();
                    o.set_leave_running(true);
                    o.set_timeout(Some(Duration::from_secs(120)));
                    for r in 0..ROUNDS {
                        let img = base.join(format!("t{t}/r{r}"));
                        o.set_image_path(&img).unwrap();
                        if let Err(e) = ckpt::ops::checkpoint(&o, c.pid()) {
                            panic!("thread {t} round {r}: {e}\n{:?}", e.log_excerpt);
                        }
                        assert_eq!(
                            pstree_root(&img),
                            Some(c.pid() as u32),
                            "thread {t} round {r}: pstree root"
                        );
                        let cores = core_pids(&img);
                        assert!(cores.contains(&c.pid()), "thread {t} round {r}: {cores:?}");
                        for other in all_pids.iter().filter(|p| **p != c.pid()) {
                            assert!(
                                !cores.contains(other),
                                "thread {t} round {r}: holds another thread's process {other}"
                            );
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("checkpoint thread");
        }
    });
    println!(
        "{} checkpoints by {THREADS} threads in {:?}",
        THREADS * ROUNDS,
        t0.elapsed()
    );
    for c in &counters {
        c.assert_alive("after 20 leave-running checkpoints");
    }
}

// ---- callers that handle SIGCHLD themselves ----

extern "C" fn reap_all(_: libc::c_int) {
    // What many daemons do: reap every child that exited, whoever started it.
    // SAFETY: waitpid is async-signal-safe; errno is saved and restored around it.
    unsafe {
        let errno = *libc::__errno_location();
        while libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) > 0 {}
        *libc::__errno_location() = errno;
    }
}

/// Installs `handler` for SIGCHLD and restores the previous disposition on drop.
struct SigchldGuard(libc::sigaction);

impl SigchldGuard {
    fn install(handler: libc::sighandler_t) -> SigchldGuard {
        // SAFETY: sigaction with valid, zero-initialised structs; SA_RESTART like most daemons.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = handler;
            new.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGCHLD, &new, &mut old), 0);
            SigchldGuard(old)
        }
    }
}

impl Drop for SigchldGuard {
    fn drop(&mut self) {
        // SAFETY: restores the disposition saved in `install`.
        unsafe { libc::sigaction(libc::SIGCHLD, &self.0, std::ptr::null_mut()) };
    }
}

/// With SIGCHLD handled by the caller: a real dump succeeds and holds the process, a criu that
/// dies is reported as dead, a timeout still kills criu, and nothing is left behind.
fn with_sigchld(handler: libc::sighandler_t, what: &str) {
    let _g = serial();
    // Built before the disposition changes: cargo is the test's own child, and an ignored
    // SIGCHLD (or a handler that reaps everything) would take its exit status from us.
    let fake = fake_criu();
    let _h = SigchldGuard::install(handler);
    let dir = TempDir::new("sigchld");
    let c = Counter::start(dir.join("counter"));

    for r in 0..3 {
        let img = dir.join(format!("img{r}"));
        let o = {
            let mut o = Options::new();
            o.set_image_path(&img).unwrap();
            o.set_leave_running(true);
            o.set_timeout(Some(Duration::from_secs(60)));
            o
        };
        let snap = Snapshot::take();
        ckpt::ops::checkpoint(&o, c.pid()).unwrap_or_else(|e| panic!("{what}: dump: {e}"));
        snap.assert_clean(what);
        assert_eq!(pstree_root(&img), Some(c.pid() as u32), "{what}");
    }
    let v = ckpt::ops::version(&Options::new()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(v.number() / 100, 401, "{what}");
    c.assert_alive(what);

    scenario("exit-before-reply");
    let o = {
        let mut o = Options::new();
        o.set_criu_path(&fake).unwrap();
        o.set_image_path(dir.join("fake")).unwrap();
        o
    };
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean(what);
    println!("{what}: criu exit: {}", e.message);
    assert_eq!(e.code, Code::CriuDied, "{what}: {e}");

    scenario("never-reply");
    let mut o = o;
    o.set_timeout(Some(Duration::from_millis(300)));
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean(what);
    assert_eq!(e.code, Code::Timeout, "{what}: {e}");
}

#[test]
fn caller_reaps_children_in_a_sigchld_handler() {
    if !criu_allowed("caller_reaps_children_in_a_sigchld_handler") {
        return;
    }
    with_sigchld(
        reap_all as *const () as libc::sighandler_t,
        "SIGCHLD handler",
    );
}

#[test]
fn caller_ignores_sigchld() {
    if !criu_allowed("caller_ignores_sigchld") {
        return;
    }
    with_sigchld(libc::SIG_IGN, "SIGCHLD ignored");
}

/// One options handle shared by 8 threads, each checkpointing its own process into the one
/// image directory the handle names: the directory's lock lets one dump write at a time, and
/// the others are refused with `InvalidState` instead of mixing their images into it.
#[test]
fn eight_threads_sharing_one_handle_and_one_image_directory() {
    let _g = serial();
    let base = TempDir::new("faultsb-shared");
    let img = base.join("img");
    let counters: Vec<Counter> = (0..THREADS)
        .map(|t| Counter::start(base.join(format!("counter-{t}"))))
        .collect();
    let o = {
        let mut o = Options::new();
        o.set_image_path(img.clone()).unwrap();
        o.set_leave_running(true);
        o.set_timeout(Some(Duration::from_secs(60)));
        o
    };
    let start = std::sync::Barrier::new(THREADS);
    let snap = Snapshot::take();
    let results: Vec<(i32, Instant, Instant, ckpt::Result<ckpt::Stats>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = counters
                .iter()
                .map(|c| {
                    let (o, start) = (&o, &start);
                    s.spawn(move || {
                        start.wait();
                        let t0 = Instant::now();
                        let r = ckpt::ops::checkpoint(o, c.pid());
                        (c.pid(), t0, Instant::now(), r)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
    snap.assert_clean("shared handle");
    let ok: Vec<_> = results.iter().filter(|r| r.3.is_ok()).collect();
    let refused: Vec<_> = results.iter().filter(|r| r.3.is_err()).collect();
    for (pid, _, _, r) in &refused {
        let e = r.as_ref().unwrap_err();
        assert_eq!(e.code, Code::InvalidState, "pid {pid}: {e}");
        assert!(
            e.message.contains("in use by another checkpoint"),
            "pid {pid}: {e}"
        );
    }
    println!(
        "8 threads, one handle, one image directory: {} dumps succeeded, {} refused: {}",
        ok.len(),
        refused.len(),
        refused
            .first()
            .map_or(String::new(), |r| r.3.as_ref().unwrap_err().message.clone())
    );
    assert!(!ok.is_empty(), "at least one dump succeeds");
    assert!(
        !refused.is_empty(),
        "8 dumps started together all got through"
    );
    // The successful dumps never overlapped: each held the directory alone.
    for a in &ok {
        for b in &ok {
            if a.0 != b.0 {
                assert!(
                    a.2 <= b.1 || b.2 <= a.1,
                    "dumps of {} and {} overlapped",
                    a.0,
                    b.0
                );
            }
        }
    }
    // The directory holds the last successful dump, whole.
    let last = ok.iter().max_by_key(|r| r.2).unwrap();
    assert_eq!(pstree_root(&img), Some(last.0 as u32));
    assert!(core_pids(&img).contains(&last.0));
    for c in &counters {
        c.assert_alive("after the shared-handle dumps");
    }
}
