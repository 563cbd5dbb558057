//! Keeps the kernel's cgroup migration lock warm while CRIU restores, so that CRIU's first
//! write to a `cgroup.procs` (putting the restored init into its cgroups) does not wait.
//!
//! Every write of a pid to `cgroup.procs` or `tasks` takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing, a per-cpu rw-semaphore whose writer first waits for
//! an RCU grace period (about 8 ms here) unless another writer left it less than a grace period
//! ago. CRIU given the host's mounts as its cgroup yard mounts nothing, so its first
//! `cgroup.procs` write pays that wait (where CRIU mounting its own cgroup2 paid it in the
//! mount). From its own thread, every few ms while criu runs, ckpt moves that thread into the
//! cgroup it already is in: a move of nothing, which keeps the lock's fast path open.
//!
//! Best effort: when the thread cannot be started, a write fails, or the caller's process has
//! been moved to another cgroup meanwhile, nothing (more) is warmed and the restore goes on as
//! before. The thread is told to stop and joined when the `Warm` is
//! dropped, on every path of the restore; it holds one descriptor (close-on-exec), closed as
//! it ends.

use super::cgroups::Hierarchy;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

/// Between two writes: under the grace period (5-12 ms measured here), so the lock never goes
/// cold while criu runs; one write while it is warm costs about 0.03 ms.
pub const PERIOD: Duration = Duration::from_millis(3);

/// The running warm-up; dropping it stops and joins the thread.
pub struct Warm {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl Warm {
    /// Starts the warm-up over the host's hierarchies `hs` (those mounted from their root
    /// are used). None when no thread could be started.
    pub fn start(hs: &[Hierarchy]) -> Option<Warm> {
        let roots: Vec<(String, String)> = hs
            .iter()
            .filter(|h| h.root == "/")
            .map(|h| (h.controllers.clone(), h.mount_point.clone()))
            .collect();
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ckpt-cgroup-warm".into())
            .spawn(move || run(&roots, &rx))
            .ok()?;
        Some(Warm {
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stops and joins the thread: how many writes it made.
    pub fn finish(mut self) -> u32 {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> u32 {
        // Closing the channel wakes the thread at once; a write in progress ends when the
        // kernel's lock lets it (it waits at most for what CRIU's own writes wait for: a
        // grace period for the first write, so a restore failing before criu starts may
        // return that much later).
        drop(self.stop.take());
        self.thread
            .take()
            .map(|t| t.join().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The thread: finds its own cgroup in one hierarchy and writes its tid there until told to
/// stop, until a write fails, or once this thread or the process's leader is no longer where
/// it was when the thread started; returns how many writes it made.
fn run(roots: &[(String, String)], stop: &mpsc::Receiver<()>) -> u32 {
    let Some(own) = own_file(roots) else {
        return 0;
    };
    let Ok(f) = std::fs::OpenOptions::new().write(true).open(&own.file) else {
        return 0;
    };
    // Whoever moves the caller's process (a `cgroup.procs` write moves every thread) leaves
    // this thread's file pointing at the old cgroup: a write there would move this thread
    // back, out of where the rest of the process now is, and keep the old cgroup from being
    // removed. The leader stands for the process; each write is preceded by a look, so such a
    // move is answered by the thread ending within one period.
    let leader = cgroup_in("/proc/self/cgroup", &own.controllers);
    let unmoved = || {
        cgroup_in("/proc/thread-self/cgroup", &own.controllers).as_ref() == Some(&own.cgroup)
            && cgroup_in("/proc/self/cgroup", &own.controllers) == leader
    };
    let tid = nix::unistd::gettid().to_string();
    let mut n = 0;
    loop {
        if !unmoved() || f.write_at(tid.as_bytes(), 0).is_err() {
            return n;
        }
        n += 1;
        match stop.recv_timeout(PERIOD) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return n,
        }
    }
}

/// The cgroup a thread is in, in one hierarchy.
#[derive(Debug)]
pub struct Own {
    /// The hierarchy's controllers as `/proc/*/cgroup` names them ("" for cgroup2).
    pub controllers: String,
    /// The cgroup's path in the hierarchy.
    pub cgroup: String,
    /// The file whose write of a tid moves that thread into the cgroup.
    pub file: std::path::PathBuf,
}

/// The `(controllers, cgroup)` lines of a `/proc/*/cgroup` text.
fn lines(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| {
        let mut it = l.splitn(3, ':');
        let _id = it.next()?;
        Some((it.next()?, it.next()?))
    })
}

/// The cgroup that the `/proc/*/cgroup` file `f` names in the hierarchy of `controllers`.
fn cgroup_in(f: &str, controllers: &str) -> Option<String> {
    let text = std::fs::read_to_string(f).ok()?;
    lines(&text)
        .find(|(c, _)| *c == controllers)
        .map(|(_, p)| p.to_string())
}

/// The file that moves this thread alone into the cgroup it is in: `tasks` of a v1
/// hierarchy (a named one first: it has no controller to attach), else `cgroup.threads` of
/// cgroup2. A pid of 0 would not take the lock, so the thread's own tid is written.
pub fn own_file(roots: &[(String, String)]) -> Option<Own> {
    let text = std::fs::read_to_string("/proc/thread-self/cgroup").ok()?;
    let mine: Vec<(&str, &str)> = lines(&text).collect();
    let rank = |c: &str| {
        if c.starts_with("name=") {
            0
        } else if c.is_empty() {
            2
        } else {
            1
        }
    };
    let mut best: Option<(u8, Own)> = None;
    for (controllers, at) in roots {
        let Some((_, path)) = mine.iter().find(|(c, _)| c == controllers) else {
            continue;
        };
        if !path.starts_with('/') || path.split('/').any(|p| p == "..") {
            continue;
        }
        let file = if controllers.is_empty() {
            "cgroup.threads"
        } else {
            "tasks"
        };
        let p = std::path::Path::new(at)
            .join(path.trim_start_matches('/'))
            .join(file);
        let r = rank(controllers);
        if best.as_ref().is_none_or(|(b, _)| r < *b) {
            let own = Own {
                controllers: controllers.clone(),
                cgroup: path.to_string(),
                file: p,
            };
            best = Some((r, own));
        }
    }
    best.map(|(_, o)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that start a warm-up, one at a time: one moves the whole process.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }

    fn host() -> Vec<Hierarchy> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        super::super::cgroups::hierarchies(&super::super::mountinfo::parse(&mi).unwrap())
    }

    #[test]
    fn picks_a_named_v1_hierarchy_then_v1_then_cgroup2() {
        let hs = host();
        let roots: Vec<(String, String)> = hs
            .iter()
            .filter(|h| h.root == "/")
            .map(|h| (h.controllers.clone(), h.mount_point.clone()))
            .collect();
        let Some(own) = own_file(&roots) else {
            eprintln!("no cgroup hierarchy mounted from its root here: not exercised");
            return;
        };
        let p = own.file;
        let named = hs.iter().any(|h| h.controllers.starts_with("name="));
        let v1 = hs.iter().any(|h| !h.controllers.is_empty());
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, if v1 { "tasks" } else { "cgroup.threads" }, "{p:?}");
        if named {
            let h = hs
                .iter()
                .find(|h| h.controllers.starts_with("name="))
                .unwrap();
            assert!(p.starts_with(&h.mount_point), "{p:?}");
        }
        assert!(own_file(&[]).is_none());
        // A hierarchy this thread has no cgroup in is not used.
        let bad = vec![("name=nope".to_string(), "/nonexistent".to_string())];
        assert!(own_file(&bad).is_none());
    }

    /// The warm-up moves nothing (every thread of this process stays in its cgroups), stops
    /// at once when dropped, and leaves no thread or descriptor behind; a hierarchy that
    /// cannot be written ends it quietly.
    #[test]
    fn moves_nothing_and_leaves_nothing() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let cg = |t: &str| std::fs::read_to_string(format!("/proc/self/task/{t}/cgroup")).ok();
        let before_threads = threads();
        let before_fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let me = cg(&nix::unistd::gettid().to_string()).unwrap();
        let hs = host();
        let w = Warm::start(&hs).expect("thread");
        // The first write waits for a grace period (about 8 ms, more under load).
        std::thread::sleep(Duration::from_millis(100));
        let t0 = std::time::Instant::now();
        let writes = w.finish();
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "stopping took {:?}",
            t0.elapsed()
        );
        if hs.iter().any(|h| h.root == "/") {
            assert!(writes >= 2, "{writes} writes");
        }
        assert_eq!(cg(&nix::unistd::gettid().to_string()).unwrap(), me);
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            me,
            "the process moved"
        );
        // Other tests of this binary may start threads meanwhile: allow for them, but the
        // warm-up's own thread is gone (joined).
        assert!(threads() <= before_threads + 2);
        assert!(std::fs::read_dir("/proc/self/fd").unwrap().count() <= before_fds + 2);
        // Hierarchies that do not exist: the thread ends at once, nothing is written.
        let fake = vec![Hierarchy {
            controllers: "name=ckpt-none".into(),
            mount_point: "/nonexistent-ckpt".into(),
            root: "/".into(),
            dev: "0:0".into(),
        }];
        let w = Warm::start(&fake).expect("thread");
        std::thread::sleep(Duration::from_millis(20));
        let t0 = std::time::Instant::now();
        assert_eq!(w.finish(), 0);
        assert!(t0.elapsed() < Duration::from_millis(100));
        // Dropped without finish: stopped and joined all the same.
        drop(Warm::start(&hs).expect("thread"));
        assert!(threads() <= before_threads + 2);
    }
    /// The caller's process moved to another cgroup while the warm-up runs (a `cgroup.procs`
    /// write, as a service manager does): the thread does not move itself back into the old
    /// cgroup, which is left empty and removable, and it ends by itself.
    #[test]
    fn a_process_moved_elsewhere_is_not_followed_back() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let hs = host();
        let Some(h) = hs
            .iter()
            .find(|h| h.root == "/" && h.controllers.starts_with("name="))
        else {
            eprintln!("no named v1 hierarchy mounted from its root here: not exercised");
            return;
        };
        let Some(home) = cgroup_in("/proc/self/cgroup", &h.controllers) else {
            eprintln!(
                "this process is in no cgroup of {}: not exercised",
                h.controllers
            );
            return;
        };
        let at = |name: &str| {
            std::path::Path::new(&h.mount_point)
                .join(format!("ckpt-rev-warm-{}-{name}", std::process::id()))
        };
        let home_dir = std::path::Path::new(&h.mount_point).join(home.trim_start_matches('/'));
        let (a, b) = (at("a"), at("b"));
        let move_to = |d: &std::path::Path| {
            std::fs::write(d.join("cgroup.procs"), std::process::id().to_string()).unwrap()
        };
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        move_to(&a);
        let w = Warm::start(&hs).expect("thread");
        std::thread::sleep(Duration::from_millis(50));
        move_to(&b);
        // Several periods: a thread that followed its old file back would be in `a` now.
        std::thread::sleep(Duration::from_millis(50));
        let left_in_a = std::fs::read_to_string(a.join("tasks")).unwrap();
        let t0 = std::time::Instant::now();
        let writes = w.finish();
        let stop = t0.elapsed();
        move_to(&home_dir);
        let removed = (std::fs::remove_dir(&a), std::fs::remove_dir(&b));
        assert_eq!(left_in_a, "", "a thread went back to the old cgroup");
        assert!(writes >= 2, "{writes} writes");
        assert!(stop < Duration::from_millis(100), "stopping took {stop:?}");
        assert!(removed.0.is_ok() && removed.1.is_ok(), "{removed:?}");
    }
}
