//! Soak: several runc containers checkpointed and restored at once, for many rounds, by one
//! long-lived process, printing what the process and the machine hold after each stretch, so
//! that growth shows (the figures should stay flat).
//!
//! 1. `CKPT_SOAK_CONTAINERS` busybox runc containers (default 4), one thread and one options
//!    handle each, every container in a cgroup of its own.
//! 2. Leave-running: each thread checkpoints its container `CKPT_SOAK_LEAVE` times (default 30;
//!    4 x 30 = 120 checkpoints). Each image directory must hold its own container's cgroup
//!    and none of the others' (no cross-talk); each container must count on.
//! 3. Cycles: each thread checkpoints its container (it stops), restores it and checks that it
//!    counts on from where it was, `CKPT_SOAK_CYCLES` times (default 30). The restored init is
//!    this process's child; the next checkpoint kills it and the thread reaps it, as a runtime
//!    does.
//!
//! With `CKPT_SOAK_POD=1` the containers' cgroups are `/probe-soak-<pid>-pod/<id>`, and
//! in every cycle, once all are checkpointed, the pod's cgroups are removed, so that all the
//! restores make the pod's parent cgroup at once (a node restoring a pod).
//!
//! Figures, after setup and every `CKPT_SOAK_EVERY` rounds (default 10): this process's open
//! fds, threads, RSS (kB), children (and zombies among them); the machine's cgroup directories
//! (`/sys/fs/cgroup/*/*`), those named for this run, mounts in this mount namespace, named
//! network namespaces, entries in /tmp (all, and ckpt's own of this process: `ckpt-*-<pid>-*`)
//! and /run (two levels), criu processes (all, and those that are this process's children). Other work on the machine moves the machine's figures;
//! the ones named for this run and this process's own should not move.
//!
//! Run as root after scripts/setup.sh: `cargo run --release -p ckpt-core --example soak`.
//! Everything is named `probe-soak-<pid>` and removed at the end, also after a failure.

#[path = "../core/tests/common/mod.rs"]
mod common;
use common::containers::{
    busybox_rootfs, cgroups_in_images, read_pid, restore_bundle, runc_at, script_spec,
};
use common::options;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ckpt::container;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn count_dir(p: &Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

/// What the process and the machine hold at one moment.
#[derive(Clone, Debug)]
struct Figures {
    fds: usize,
    threads: usize,
    rss_kb: usize,
    children: usize,
    zombies: usize,
    cgroups: usize,
    our_cgroups: usize,
    mounts: usize,
    our_mounts: usize,
    netns: usize,
    tmp: usize,
    ckpt_tmp: usize,
    run: usize,
    criu: usize,
    our_criu: usize,
}

fn status_field(pid: &str, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
}

fn children_of_self() -> Vec<i32> {
    let mut v = vec![];
    if let Ok(d) = std::fs::read_dir("/proc/self/task") {
        for t in d.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    v
}

fn cgroup_dirs(needle: &str) -> (usize, usize) {
    let (mut all, mut ours) = (0, 0);
    fn walk(d: &Path, needle: &str, depth: usize, all: &mut usize, ours: &mut usize) {
        let Ok(it) = std::fs::read_dir(d) else { return };
        for e in it.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if depth == 1 {
                *all += 1;
            }
            if e.file_name().to_string_lossy().contains(needle) {
                *ours += 1;
            }
            if depth < 6 {
                walk(&e.path(), needle, depth + 1, all, ours);
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), needle, 0, &mut all, &mut ours);
    (all, ours)
}

fn figures(tag: &str) -> Figures {
    let me = std::process::id() as i32;
    let children = children_of_self();
    let zombies = children
        .iter()
        .filter(|p| status_field(&p.to_string(), "State:").is_some_and(|s| s.starts_with('Z')))
        .count();
    let (cgroups, our_cgroups) = cgroup_dirs(tag);
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let run = std::fs::read_dir("/run")
        .map(|d| {
            d.flatten()
                .map(|e| {
                    1 + if e.file_type().is_ok_and(|t| t.is_dir()) {
                        count_dir(&e.path())
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0);
    let (mut criu, mut our_criu) = (0, 0);
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "criu") {
            criu += 1;
            if status_field(&n, "PPid:").is_some_and(|p| p == me.to_string()) {
                our_criu += 1;
            }
        }
    }
    Figures {
        fds: count_dir(Path::new("/proc/self/fd")),
        threads: status_field("self", "Threads:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        rss_kb: status_field("self", "VmRSS:")
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0),
        children: children.len(),
        zombies,
        cgroups,
        our_cgroups,
        mounts: mi.lines().count(),
        our_mounts: mi.lines().filter(|l| l.contains(tag)).count(),
        netns: count_dir(Path::new("/run/netns")),
        tmp: count_dir(Path::new("/tmp")),
        // ckpt's own temporary entries of this process (CRIU's restore roots, checks).
        ckpt_tmp: std::fs::read_dir(std::env::temp_dir())
            .map(|d| {
                d.flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with("ckpt-") && n.contains(&format!("-{me}-"))
                    })
                    .count()
            })
            .unwrap_or(0),
        run,
        criu,
        our_criu,
    }
}

fn header() {
    println!(
        "{:<22} {:>4} {:>4} {:>7} {:>5} {:>5} {:>7} {:>5} {:>6} {:>5} {:>5} {:>5} {:>7} {:>5} {:>5} {:>5}",
        "point",
        "fds",
        "thr",
        "rss_kb",
        "kids",
        "zomb",
        "cgroups",
        "ourcg",
        "mounts",
        "ourmt",
        "netns",
        "tmp",
        "ckpttmp",
        "run",
        "criu",
        "ourcr"
    );
}

fn row(point: &str, f: &Figures) {
    println!(
        "{:<22} {:>4} {:>4} {:>7} {:>5} {:>5} {:>7} {:>5} {:>6} {:>5} {:>5} {:>5} {:>7} {:>5} {:>5} {:>5}",
        point,
        f.fds,
        f.threads,
        f.rss_kb,
        f.children,
        f.zombies,
        f.cgroups,
        f.our_cgroups,
        f.mounts,
        f.our_mounts,
        f.netns,
        f.tmp,
        f.ckpt_tmp,
        f.run,
        f.criu,
        f.our_criu
    );
}

struct Ctr {
    id: String,
    work: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    pid: i32,
}

fn counter(bundle: &Path) -> u64 {
    std::fs::read_to_string(bundle.join("rootfs/counter"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn advancing(bundle: &Path) -> bool {
    let c0 = counter(bundle);
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
        if counter(bundle) > c0 {
            return true;
        }
    }
    false
}

fn start(base: &Path, tag: &str, n: usize, pod: bool) -> Ctr {
    let id = format!("{tag}-c{n}");
    let work = base.join(&id);
    let bundle = work.join("bundle");
    busybox_rootfs(
        &bundle.join("rootfs"),
        &["bin", "proc", "sys", "dev", "tmp"],
        &["sh", "sleep", "printf"],
    );
    let cgroup = if pod {
        format!("{tag}-pod/{id}")
    } else {
        id.clone()
    };
    let spec = script_spec(
        "runc",
        &bundle,
        "i=0; while :; do i=$((i+1)); printf '%8d\\n' $i 1<> /counter; sleep 0.05; done",
        &cgroup,
    );
    std::fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    let state = work.join("runc-state");
    let pidfile = work.join("init.pid");
    assert!(
        runc_at(
            &state,
            &[
                "run",
                "-d",
                "--pid-file",
                pidfile.to_str().unwrap(),
                "--bundle",
                bundle.to_str().unwrap(),
                &id,
            ],
        ),
        "runc run {id}"
    );
    let pid = read_pid(&pidfile);
    let c = Ctr {
        id,
        work,
        bundle,
        state,
        pid,
    };
    assert!(advancing(&c.bundle), "{} does not count", c.id);
    c
}

fn reap(pid: i32) {
    // SAFETY: waitpid on a pid this process restored (its child); no memory is shared.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

/// A checkpoint that stops the container, into a fresh `images`; the counter at the dump.
fn checkpoint_stop(
    c: &Ctr,
    images: &Path,
    pid: i32,
    times: &Mutex<(Vec<f64>, Vec<f64>, Vec<f64>)>,
) -> ckpt::Result<u64> {
    let _ = std::fs::remove_dir_all(images);
    let mut o = options(images);
    let t = Instant::now();
    container::checkpoint(&mut o, &c.bundle, pid, false)?;
    times.lock().unwrap().1.push(t.elapsed().as_secs_f64());
    Ok(counter(&c.bundle))
}

/// Removes every cgroup directory whose path contains `needle`, deepest first, retrying
/// while killed tasks leave.
fn remove_cgroups_named(needle: &str) {
    let mut found = vec![];
    fn walk(d: &Path, needle: &str, out: &mut Vec<PathBuf>, depth: usize) {
        if depth > 6 {
            return;
        }
        let Ok(it) = std::fs::read_dir(d) else { return };
        for e in it.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&e.path(), needle, out, depth + 1);
                if e.path().to_string_lossy().contains(needle) {
                    out.push(e.path());
                }
            }
        }
    }
    walk(Path::new("/sys/fs/cgroup"), needle, &mut found, 0);
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in found {
        for _ in 0..20 {
            if std::fs::remove_dir(&p).is_ok() || !p.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn cleanup(base: &Path, tag: &str, restored: &Mutex<Vec<i32>>) {
    for p in restored.lock().unwrap().drain(..) {
        // SAFETY: kill and reap a tree this process restored.
        unsafe { libc::kill(p, libc::SIGKILL) };
        reap(p);
    }
    if let Ok(d) = std::fs::read_dir(base) {
        for e in d.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = std::fs::write(
                format!("/sys/fs/cgroup/freezer/{id}/freezer.state"),
                "THAWED",
            );
            runc_at(&e.path().join("runc-state"), &["delete", "-f", &id]);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    // Every hierarchy, CRIU's nested copies and the pod's included.
    remove_cgroups_named(tag);
    let _ = std::fs::remove_dir_all(base);
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("soak: needs root (runc, criu)");
        std::process::exit(2);
    }
    let n = env_usize("CKPT_SOAK_CONTAINERS", 4);
    let leave = env_usize("CKPT_SOAK_LEAVE", 30);
    let cycles = env_usize("CKPT_SOAK_CYCLES", 30);
    let every = env_usize("CKPT_SOAK_EVERY", 10).max(1);
    let tag = format!("probe-soak-{}", std::process::id());
    let base = std::env::temp_dir().join(&tag);
    std::fs::create_dir_all(&base).unwrap();
    let restored = Mutex::new(Vec::<i32>::new());
    let failed = std::sync::atomic::AtomicBool::new(false);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run(&base, &tag, n, leave, cycles, every, &restored, &failed)
    }));
    cleanup(&base, &tag, &restored);
    let after = figures(&tag);
    header();
    row("after cleanup", &after);
    if result.is_err() || failed.load(std::sync::atomic::Ordering::Relaxed) {
        println!("SOAK FAILED");
        std::process::exit(1);
    }
}

/// Called by every container's thread (`i`): once all are here, the first takes the figures
/// into `table` as `point`, with no operation running; then all go on.
fn figures_between(
    barrier: &std::sync::Barrier,
    table: &Mutex<BTreeMap<String, Figures>>,
    i: usize,
    tag: &str,
    point: String,
) {
    barrier.wait();
    if i == 0 {
        table.lock().unwrap().insert(point, figures(tag));
    }
    barrier.wait();
}

#[allow(clippy::too_many_arguments)]
fn run(
    base: &Path,
    tag: &str,
    n: usize,
    leave: usize,
    cycles: usize,
    every: usize,
    restored: &Mutex<Vec<i32>>,
    failed: &std::sync::atomic::AtomicBool,
) {
    let before = figures(tag);
    let pod = std::env::var_os("CKPT_SOAK_POD").is_some_and(|v| v == "1");
    let ctrs: Vec<Ctr> = (0..n).map(|i| start(base, tag, i, pod)).collect();
    println!(
        "soak: {n} containers{}, {leave} leave-running checkpoints and {cycles} checkpoint/restore cycles each",
        if pod {
            " in one pod (cgroups /POD/ID, removed before every restore)"
        } else {
            ""
        }
    );
    header();
    row("before containers", &before);
    row("containers started", &figures(tag));
    let table = Mutex::new(BTreeMap::<String, Figures>::new());
    let times = Mutex::new((Vec::<f64>::new(), Vec::<f64>::new(), Vec::<f64>::new()));
    // Every `every` rounds all threads wait, so the figures are taken with no operation running.
    let barrier = std::sync::Barrier::new(n);
    let fail = |msg: String| {
        eprintln!("FAIL {msg}");
        failed.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    // Phase 1: leave-running checkpoints, all containers at once.
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (i, c) in ctrs.iter().enumerate() {
            let (table, times, fail, barrier) = (&table, &times, &fail, &barrier);
            s.spawn(move || {
                let mut o = options(&c.work.join("lr"));
                o.set_leave_running(true);
                for r in 1..=leave {
                    let images = c.work.join(format!("lr-{r}"));
                    o.set_image_path(&images).unwrap();
                    let t = Instant::now();
                    match container::checkpoint(&mut o, &c.bundle, c.pid, false) {
                        Ok(_) => {
                            times.lock().unwrap().0.push(t.elapsed().as_secs_f64());
                            let pod_cg = format!("{tag}-pod");
                            let cg: Vec<String> = cgroups_in_images(&images, tag)
                                .into_iter()
                                .filter(|n| *n != pod_cg)
                                .collect();
                            if cg != [c.id.clone()] {
                                fail(format!("{}: round {r}: cgroup.img names {cg:?}", c.id));
                            }
                        }
                        Err(e) => fail(format!("{} leave-running round {r}: {e}", c.id)),
                    }
                    let _ = std::fs::remove_dir_all(&images);
                    if r % every == 0 {
                        figures_between(barrier, table, i, tag, format!("1 leave-running {r:>3}"));
                    }
                }
                if !advancing(&c.bundle) {
                    fail(format!("{}: does not count after leave-running", c.id));
                }
            });
        }
    });
    let lr_time = t0.elapsed();
    for (k, f) in table.lock().unwrap().iter() {
        row(k, f);
    }
    table.lock().unwrap().clear();
    // Phase 2: checkpoint (the container stops), restore, count on; all containers at once.
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (i, c) in ctrs.iter().enumerate() {
            let (table, times, fail, barrier) = (&table, &times, &fail, &barrier);
            s.spawn(move || {
                let images = c.work.join("cycle");
                let mut dead = false;
                let mut from_runc = true;
                let mut live: Option<i32> = None;
                for r in 1..=cycles {
                    if r % every == 0 {
                        figures_between(barrier, table, i, tag, format!("2 cycles {:>3}", r - 1));
                    }
                    let at_dump = if dead {
                        0
                    } else {
                        match checkpoint_stop(c, &images, live.unwrap_or(c.pid), times) {
                            Ok(n) => n,
                            Err(e) => {
                                fail(format!("{} cycle {r} checkpoint: {e}", c.id));
                                dead = true;
                                0
                            }
                        }
                    };
                    if let Some(p) = live.take() {
                        reap(p);
                        restored.lock().unwrap().retain(|q| *q != p);
                    }
                    if from_runc {
                        // runc's record of the stopped container, which holds its id.
                        runc_at(&c.state, &["delete", "-f", &c.id]);
                        from_runc = false;
                    }
                    if pod {
                        // Every container of the pod is stopped: the pod's cgroups go, and
                        // all restores below find its parent missing at once.
                        barrier.wait();
                        if i == 0 {
                            remove_cgroups_named(&format!("{tag}-pod"));
                        }
                        barrier.wait();
                    }
                    if dead {
                        continue;
                    }
                    let mut o = options(&images);
                    let t = Instant::now();
                    match restore_bundle(&mut o, &c.bundle) {
                        Ok((_, rs)) => {
                            times.lock().unwrap().2.push(t.elapsed().as_secs_f64());
                            restored.lock().unwrap().push(rs.pid);
                            live = Some(rs.pid);
                        }
                        Err(e) => {
                            fail(format!("{} cycle {r} restore: {e}", c.id));
                            dead = true;
                            continue;
                        }
                    }
                    if !advancing(&c.bundle) || counter(&c.bundle) < at_dump {
                        fail(format!("{} cycle {r}: does not count on", c.id));
                        dead = true;
                    }
                }
            });
        }
    });
    let cy_time = t0.elapsed();
    table
        .lock()
        .unwrap()
        .insert(format!("2 cycles {cycles:>3}"), figures(tag));
    for (k, f) in table.lock().unwrap().iter() {
        row(k, f);
    }
    let mut t = times.lock().unwrap();
    println!(
        "leave-running: {} checkpoints in {:.1} s, median {:.0} ms; cycles: {} checkpoints (median {:.0} ms) and {} restores (median {:.0} ms) in {:.1} s",
        t.0.len(),
        lr_time.as_secs_f64(),
        median(&mut t.0) * 1e3,
        t.1.len(),
        median(&mut t.1) * 1e3,
        t.2.len(),
        median(&mut t.2) * 1e3,
        cy_time.as_secs_f64()
    );
}
