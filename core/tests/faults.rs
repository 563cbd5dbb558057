//! Faults from CRIU. A scripted fake criu (examples/fake_criu.rs) plays one misbehaviour per
//! test; each must end in a specific status and message with no fd left open, no child left
//! behind and no crash. Then the faults only the real CRIU can produce: a failing notification
//! callback, a full or vanished image directory, and a request with 10,000 external mounts.

mod faultkit;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ckpt::{Code, Error, Options, StatKey};
use faultkit::{
    Counter, Snapshot, TempDir, criu_allowed, fake_criu, fake_options, scenario, serial, set_env,
};

/// Options for a dump of `pid` into `dir` by the fake criu.
fn fake_opts(dir: &Path) -> Options {
    fake_options(dir, Duration::from_secs(20))
}

/// Runs a dump against the fake playing `name`, checks it leaked nothing, returns the error.
fn dump_fails(name: &str) -> Error {
    let _g = serial();
    scenario(name);
    let dir = TempDir::new("faults");
    let o = fake_opts(dir.path());
    let snap = Snapshot::take();
    let r = ckpt::ops::checkpoint(&o, std::process::id() as i32);
    snap.assert_clean(name);
    let e = r.expect_err("the fake's misbehaviour must fail the dump");
    println!("{name}: {:?}: {}", e.code, e.message);
    e
}

#[test]
fn criu_exits_before_replying() {
    let e = dump_fails("exit-before-reply");
    assert_eq!(e.code, Code::CriuDied);
    assert!(
        e.message.contains("exited with status 3 before replying"),
        "{e}"
    );
}

#[test]
fn criu_exits_while_its_child_holds_the_socket() {
    let _g = serial();
    scenario("exit-leave-holder");
    let dir = TempDir::new("faults");
    let o = fake_opts(dir.path());
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).expect_err("exits");
    let took = t0.elapsed();
    // The holder is criu's own child, left to init when criu exited by itself, which ckpt
    // cannot reach (it kills what criu started only when it kills criu): it is gone once
    // its 5 s are up.
    snap.assert_clean_within("exit-leave-holder", Duration::from_secs(10));
    println!(
        "exit-leave-holder: {:?}: {} after {took:?}",
        e.code, e.message
    );
    assert_eq!(e.code, Code::CriuDied);
    assert!(e.message.contains("exited with status 7"), "{e}");
    // The leftover holds the socket for 5 s: ckpt must go by criu's exit, not by end-of-file.
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn criu_dies_in_the_middle_of_a_notification() {
    let e = dump_fails("die-mid-notify");
    assert_eq!(e.code, Code::CriuDied);
    assert!(e.message.contains("SIGKILL"), "{e}");
}

#[test]
fn reply_that_is_not_protobuf() {
    let e = dump_fails("garbage");
    assert_eq!(e.code, Code::Protocol);
    assert!(e.message.contains("not a CRIU response"), "{e}");
}

#[test]
fn reply_of_the_wrong_type() {
    let e = dump_fails("wrong-type");
    assert_eq!(e.code, Code::Protocol);
    assert!(
        e.message.contains("answered a DUMP request with VERSION"),
        "{e}"
    );
}

#[test]
fn notify_without_body() {
    let e = dump_fails("notify-no-body");
    assert_eq!(e.code, Code::Protocol);
    assert!(e.message.contains("NOTIFY without its body"), "{e}");
}

#[test]
fn empty_record() {
    let e = dump_fails("empty-record");
    assert_eq!(e.code, Code::Protocol);
    assert!(e.message.contains("empty message"), "{e}");
}

#[test]
fn more_descriptors_than_any_reply_carries() {
    let e = dump_fails("many-fds");
    assert_eq!(e.code, Code::Protocol);
    assert!(e.message.contains("descriptors"), "{e}");
}

#[test]
fn criu_never_replies_and_the_timeout_fires() {
    let _g = serial();
    scenario("never-reply");
    let dir = TempDir::new("faults");
    let mut o = fake_opts(dir.path());
    o.set_timeout(Some(Duration::from_millis(400)));
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    let took = t0.elapsed();
    snap.assert_clean("never-reply");
    println!("never-reply: {:?}: {} after {took:?}", e.code, e.message);
    assert_eq!(e.code, Code::Timeout);
    assert!(e.message.contains("was killed"), "{e}");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn reply_of_one_mebibyte() {
    let _g = serial();
    scenario("big-reply");
    let o = {
        let mut o = Options::new();
        o.set_criu_path(fake_criu()).unwrap();
        o
    };
    let snap = Snapshot::take();
    let v = ckpt::ops::version(&o).expect("a 1 MiB reply must be received whole");
    snap.assert_clean("big-reply");
    assert_eq!(v.number(), 40101);
    assert_eq!(v.name.map(|n| n.len()), Some(1 << 20));
}

#[test]
fn unexpected_descriptors_are_closed() {
    let _g = serial();
    scenario("unexpected-fd");
    let dir = TempDir::new("faults");
    let mut o = fake_opts(dir.path());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        s2.lock()
            .unwrap()
            .push((n.script.to_string(), n.fd.is_some()));
        Ok(())
    })));
    let snap = Snapshot::take();
    let r = ckpt::ops::checkpoint(&o, std::process::id() as i32);
    snap.assert_clean("unexpected-fd");
    r.expect("stray descriptors are closed, not fatal");
    assert_eq!(*seen.lock().unwrap(), vec![("post-dump".to_string(), true)]);
}

#[test]
fn criu_binary_missing() {
    let _g = serial();
    let dir = TempDir::new("faults");
    let mut o = fake_opts(dir.path());
    o.set_criu_path("/nonexistent/criu").unwrap();
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    snap.assert_clean("missing criu");
    assert_eq!(e.code, Code::Spawn);
    assert!(e.message.contains("cannot start /nonexistent/criu"), "{e}");
}

/// Opens /dev/null without O_CLOEXEC, as careless callers (and old C code) do.
fn leaky_fd() -> OwnedFd {
    // SAFETY: plain open(2) of a constant path; the result is checked before use.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    // SAFETY: a fresh descriptor nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The descriptor list the fake reports in its error message.
fn reported_fds(e: &Error) -> String {
    let m = &e.message;
    let at = m
        .find("fds:")
        .unwrap_or_else(|| panic!("no fd report in {m:?}"));
    m[at..].trim_end().to_string()
}

#[test]
fn only_the_socket_reaches_criu_on_dump() {
    let _g = serial();
    scenario("report-fds");
    let dir = TempDir::new("faults");
    let o = fake_opts(dir.path());
    let leaky = leaky_fd();
    // And one far above the socket's number, where a naive close loop might stop short.
    // SAFETY: dup2 onto an unused number; the result is owned below.
    let high = unsafe { libc::dup2(leaky.as_raw_fd(), 900) };
    assert_eq!(high, 900);
    // SAFETY: fd 900 is the duplicate just made.
    let high = unsafe { OwnedFd::from_raw_fd(high) };
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    drop((leaky, high));
    assert_eq!(reported_fds(&e), "fds: 0 1 2 3");
}

#[test]
fn only_the_socket_and_inherited_fds_reach_criu_on_restore() {
    let _g = serial();
    scenario("report-fds");
    let dir = TempDir::new("faults");
    std::fs::write(dir.join("inventory.img"), b"").unwrap();
    let mut o = fake_opts(dir.path());
    let (r, w) = nix::unistd::pipe().unwrap();
    o.add_inherit_fd("pipe:[1]", r).unwrap();
    o.add_inherit_fd("pipe:[2]", w).unwrap();
    let leaky = leaky_fd();
    let e = ckpt::ops::restore(&o).unwrap_err();
    drop(leaky);
    assert_eq!(reported_fds(&e), "fds: 0 1 2 3 4 5");
}

// ---- iterative pre-dump: the request sequence against a scripted peer ----

fn read_trace(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (pid, rest) = l.split_once(' ').unwrap();
            (pid.to_string(), rest.to_string())
        })
        .collect()
}

struct PreDumpRun {
    result: ckpt::Result<ckpt::Stats>,
    trace: Vec<(String, String)>,
    rounds_seen: Vec<(u32, Option<u64>)>,
    image_dir: TempDir,
}

fn iterative(env: &[(&str, Option<&str>)], max_rounds: u32, stop_after: u32) -> PreDumpRun {
    let _g = serial();
    scenario("predump");
    let image_dir = TempDir::new("predump");
    let trace = image_dir.join("trace");
    let img = image_dir.join("img");
    set_env(&[("CKPT_FAKE_TRACE", Some(trace.to_str().unwrap()))]);
    set_env(env);
    let o = fake_opts(&img);
    let mut rounds_seen = Vec::new();
    let snap = Snapshot::take();
    let result = ckpt::ops::checkpoint_iterative(
        &o,
        std::process::id() as i32,
        max_rounds,
        &mut |round, st| {
            rounds_seen.push((round, st.get(StatKey::PagesWritten)));
            round < stop_after
        },
    );
    snap.assert_clean("iterative pre-dump");
    PreDumpRun {
        result,
        trace: read_trace(&trace),
        rounds_seen,
        image_dir,
    }
}

fn expected_line(ty: &str, dir: &str, parent: &str, log: &str) -> String {
    format!(
        "{ty} dir={dir} parent={parent} track_mem=true pid={} log={log} ext_mnt=0",
        std::process::id()
    )
}

#[test]
fn iterative_predump_sequence_with_callback_deciding() {
    let run = iterative(&[], 5, 2);
    let stats = run.result.expect("iterative dump");
    let t = &run.trace;
    for (pid, line) in t {
        println!("fake criu {pid}: {line}");
    }
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[0].1, "FeatureCheck");
    let lines: Vec<&str> = t[1..].iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        lines,
        vec![
            expected_line("PreDump", "pre-1", "-", "pre-dump-1.log"),
            expected_line("PreDump", "pre-2", "../pre-1", "pre-dump-2.log"),
            expected_line("Dump", "img", "pre-2", "dump.log"),
        ]
    );
    // One connection for the rounds and the dump; the feature check had its own criu.
    assert!(t[1].0 == t[2].0 && t[2].0 == t[3].0, "{t:?}");
    assert_ne!(t[0].0, t[1].0);
    // The callback saw each round's own statistics.
    assert_eq!(run.rounds_seen, vec![(1, Some(100)), (2, Some(200))]);
    assert_eq!(stats.get(StatKey::PagesWritten), Some(300));
    for d in ["img", "img/pre-1", "img/pre-2"] {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(run.image_dir.join(d)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700, "{d}");
    }
}

#[test]
fn iterative_predump_stops_at_max_rounds() {
    let run = iterative(&[], 3, u32::MAX);
    run.result.expect("iterative dump");
    let lines: Vec<&str> = run.trace[1..].iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        lines,
        vec![
            expected_line("PreDump", "pre-1", "-", "pre-dump-1.log"),
            expected_line("PreDump", "pre-2", "../pre-1", "pre-dump-2.log"),
            expected_line("PreDump", "pre-3", "../pre-2", "pre-dump-3.log"),
            expected_line("Dump", "img", "pre-3", "dump.log"),
        ]
    );
    // Asked after rounds 1 and 2 only: after the last allowed round there is nothing to decide.
    assert_eq!(run.rounds_seen.len(), 2);
}

#[test]
fn iterative_predump_refused_without_memory_tracking() {
    let run = iterative(&[("CKPT_FAKE_MEM_TRACK", Some("0"))], 3, u32::MAX);
    let e = run.result.unwrap_err();
    assert_eq!(e.code, Code::Unsupported);
    assert!(e.message.contains("memory change tracking"), "{e}");
    assert_eq!(run.trace.len(), 1, "{:?}", run.trace);
    assert_eq!(run.trace[0].1, "FeatureCheck");
}

#[test]
fn iterative_predump_round_failure_stops_the_sequence() {
    let run = iterative(&[("CKPT_FAKE_FAIL_AT", Some("2"))], 5, u32::MAX);
    let e = run.result.unwrap_err();
    assert_eq!(e.code, Code::Criu);
    assert!(e.message.contains("request 2 fails as scripted"), "{e}");
    assert_eq!(e.criu_errno, libc::EIO);
    assert_eq!(
        run.trace.len(),
        3,
        "no DUMP after a failed round: {:?}",
        run.trace
    );
    assert_eq!(run.rounds_seen.len(), 1);
}

/// A scratch directory that outlives its test's lock (`iterative` returns its own to the test
/// body) is removed under the lock. Removed beside it, it had `remove_dir_all`'s descriptors of
/// `/tmp/ckpt-predump-N` and its `img` counted as leaked by the neighbour measuring then.
#[test]
fn a_scratch_directory_is_removed_under_the_serial_lock() {
    let dir = TempDir::new("predump");
    std::fs::create_dir_all(dir.join("img/pre-1")).unwrap();
    let path = dir.path().to_path_buf();
    let g = serial();
    let before = faultkit::open_fds();
    let t = std::thread::spawn(move || drop(dir));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        path.join("img/pre-1").is_dir(),
        "removed while another test held the lock"
    );
    assert_eq!(faultkit::open_fds(), before);
    drop(g);
    t.join().unwrap();
    assert!(!path.exists(), "{} was not removed", path.display());
}

/// Every entry point that opens the image or work directory, called back to back: each has
/// closed every descriptor and reaped every child by the time it returns, counted at once
/// after it, with no grace, on success and on failure alike (the fake answers DUMP and
/// PRE_DUMP, and fails the others). Bounded to about a second and a half.
#[test]
fn back_to_back_calls_close_everything_before_returning() {
    let _g = serial();
    scenario("predump");
    let dir = TempDir::new("back-to-back");
    let pid = std::process::id() as i32;
    let end = Instant::now() + Duration::from_millis(1500);
    let mut calls = 0;
    for i in 0.. {
        if i >= 3 && Instant::now() >= end {
            break;
        }
        let img = dir.join(format!("img-{i}"));
        let mut o = fake_opts(&img);
        o.set_work_path(dir.join(format!("work-{i}"))).unwrap();
        let mut ps = fake_opts(&img);
        ps.set_page_server("127.0.0.1:1").unwrap();
        let mut single = fake_opts(&img);
        single.set_pre_dump(true);
        let mut on_parent = fake_opts(&img);
        on_parent.set_parent_path("pre-1").unwrap();
        type Call<'a> = (&'a str, Box<dyn Fn() -> bool + 'a>);
        let ops: Vec<Call<'_>> = vec![
            (
                "checkpoint_iterative",
                Box::new(|| ckpt::ops::checkpoint_iterative(&o, pid, 3, &mut |_, _| true).is_ok()),
            ),
            (
                "checkpoint on a parent",
                Box::new(|| ckpt::ops::checkpoint(&on_parent, pid).is_ok()),
            ),
            (
                "checkpoint",
                Box::new(|| ckpt::ops::checkpoint(&o, pid).is_ok()),
            ),
            (
                "single pre-dump",
                Box::new(|| ckpt::ops::checkpoint(&single, pid).is_ok()),
            ),
            ("restore", Box::new(|| ckpt::ops::restore(&o).is_ok())),
            (
                "page server",
                Box::new(|| ckpt::ops::page_server(&ps).is_ok()),
            ),
            ("check", Box::new(|| ckpt::ops::check(&o).is_ok())),
        ];
        for (what, call) in &ops {
            let fds = faultkit::open_fds();
            let kids = faultkit::children();
            let ok = call();
            let left: Vec<String> = faultkit::open_fds()
                .difference(&fds)
                .map(|fd| {
                    let l = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
                    format!("{fd} -> {}", l.display())
                })
                .collect();
            assert!(
                left.is_empty(),
                "{what} (call {i}, ok {ok}): fds left open: {left:?}"
            );
            assert_eq!(
                faultkit::children(),
                kids,
                "{what} (call {i}): children left"
            );
            if i == 0 {
                println!("{what}: {}", if ok { "succeeded" } else { "failed" });
            }
            calls += 1;
        }
    }
    println!("{calls} calls, each clean at once");
}

fn real_opts(img: &Path) -> Options {
    let mut o = Options::new();
    o.set_image_path(img).unwrap();
    o.set_timeout(Some(Duration::from_secs(60)));
    o
}

/// A callback that fails at `fail_at` aborts the dump; the process keeps running.
fn callback_abort(fail_at: &'static str, leave_running: bool) {
    let _g = serial();
    let dir = TempDir::new("cb-abort");
    let c = Counter::start(dir.join("counter"));
    let mut o = real_opts(&dir.join("img"));
    o.set_leave_running(leave_running);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        s2.lock().unwrap().push(n.script.to_string());
        if n.script == fail_at {
            Err(format!("refusing {fail_at}"))
        } else {
            Ok(())
        }
    })));
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean("callback abort");
    println!(
        "abort at {fail_at}: notifications {:?}; {:?}: {}",
        seen.lock().unwrap(),
        e.code,
        e.message
    );
    assert_eq!(e.code, Code::Callback, "{e}");
    assert!(e.message.contains(&format!("refusing {fail_at}")), "{e}");
    c.assert_alive("after an aborted dump");
}

#[test]
fn failing_callback_at_pre_dump_aborts_and_process_runs_on() {
    if !criu_allowed("failing_callback_at_pre_dump_aborts_and_process_runs_on") {
        return;
    }
    callback_abort("pre-dump", false);
}

#[test]
fn failing_callback_at_post_dump_aborts_and_process_runs_on() {
    if !criu_allowed("failing_callback_at_post_dump_aborts_and_process_runs_on") {
        return;
    }
    // Without leave-running: CRIU would kill the tree after a successful dump.
    callback_abort("post-dump", false);
}

#[test]
fn image_directory_fills_up() {
    if !criu_allowed("image_directory_fills_up") {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("enospc");
    let img = dir.join("img");
    std::fs::create_dir(&img).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "ckpt-enospc"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success(), "mount tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _u = Unmount(&img);
    let c = Counter::start(dir.join("counter"));
    let mut o = real_opts(&img);
    // The log goes elsewhere so CRIU can still say what went wrong.
    o.set_work_path(dir.join("work")).unwrap();
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean("full image dir");
    println!("full image dir: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Criu, "{e}");
    assert!(
        e.log_excerpt
            .as_deref()
            .unwrap_or("")
            .contains("No space left"),
        "{e}: {:?}",
        e.log_excerpt
    );
    c.assert_alive("after ENOSPC");
}

#[test]
fn image_directory_disappears_during_the_dump() {
    if !criu_allowed("image_directory_disappears_during_the_dump") {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("vanish");
    let img = dir.join("img");
    let c = Counter::start(dir.join("counter"));
    let mut o = real_opts(&img);
    let gone = img.clone();
    o.set_notify(Some(Arc::new(move |n: &ckpt::Notification| {
        if n.script == "pre-dump" {
            std::fs::remove_dir_all(&gone).map_err(|e| e.to_string())?;
        }
        Ok(())
    })));
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, c.pid()).unwrap_err();
    snap.assert_clean("vanished image dir");
    println!("vanished image dir: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Criu, "{e}");
    c.assert_alive("after the image dir vanished");
}

#[test]
fn ten_thousand_external_mounts_reach_criu() {
    if !criu_allowed("ten_thousand_external_mounts_reach_criu") {
        return;
    }
    let _g = serial();
    let dir = TempDir::new("extmnt");
    let ext = dir.join("ext");
    std::fs::create_dir(&ext).unwrap();
    // The process has its own mount namespace with a tmpfs at `ext`, so CRIU dumps the mounts
    // and looks `ext` up in the external mount map: the 10,000th entry names it.
    let c = Counter::start_in_mount_ns(dir.join("counter"), &ext);
    let mut o = real_opts(&dir.join("img"));
    o.set_leave_running(true);
    for i in 0..9_999 {
        o.add_ext_mount(
            format!("/ckpt/test/external/mount/point/number/{i:05}"),
            format!("ckpt-test-external-mount-name-{i:05}"),
        )
        .unwrap();
    }
    o.add_ext_mount(ext.to_str().unwrap(), "ckpt-test-the-last-of-10000")
        .unwrap();
    let snap = Snapshot::take();
    let r = ckpt::ops::checkpoint(&o, c.pid());
    snap.assert_clean("10k ext mounts");
    if let Err(e) = &r {
        panic!("dump with 10,000 external mounts: {e}\n{:?}", e.log_excerpt);
    }
    let log = std::fs::read_to_string(dir.join("img/dump.log")).unwrap();
    let want = format!(
        "Found ckpt-test-the-last-of-10000 mapping for .{} mountpoint",
        ext.display()
    );
    assert!(log.contains(&want), "CRIU's log lacks {want:?}");
    println!("10k ext mounts: CRIU's log says {want:?}");
    c.assert_alive("after the dump");
}

/// The pid the fake wrote to `helper.pid` in `dir`, and whether that process still runs.
fn helper_of(dir: &TempDir) -> (i32, bool) {
    let pid: i32 = std::fs::read_to_string(dir.join("helper.pid"))
        .expect("the fake's helper.pid")
        .trim()
        .parse()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim().chars().next());
    (pid, matches!(state, Some(s) if s != 'Z' && s != 'X'))
}

/// A criu that forked a helper and never answers is killed at the deadline, and its helper
/// with it. Before, the helper ran on under init.
#[test]
fn the_helper_of_a_criu_killed_at_the_deadline_goes_with_it() {
    let _g = serial();
    scenario("helper-never-reply");
    let dir = TempDir::new("faults");
    let o = fake_options(dir.path(), Duration::from_millis(500));
    let snap = Snapshot::take();
    let e = ckpt::ops::checkpoint(&o, std::process::id() as i32).unwrap_err();
    let (helper, alive) = helper_of(&dir);
    snap.assert_clean("helper-never-reply");
    println!("helper-never-reply: {:?}: {}", e.code, e.message);
    assert_eq!(e.code, Code::Timeout, "{e}");
    assert!(!alive, "criu's helper {helper} runs on");
}

/// After criu answered with success, what it started may be meant to outlive it (a page
/// server): a criu that then lingers past its grace is killed alone, its helper left running.
#[test]
fn a_criu_lingering_after_a_successful_answer_is_killed_alone() {
    let _g = serial();
    scenario("helper-answer-linger");
    let dir = TempDir::new("faults");
    let o = fake_options(dir.path(), Duration::from_millis(1000));
    let snap = Snapshot::take();
    let t0 = Instant::now();
    let r = ckpt::ops::checkpoint(&o, std::process::id() as i32);
    let took = t0.elapsed();
    let (helper, alive) = helper_of(&dir);
    if alive {
        // SAFETY: kill(2) of the fake's helper, which holds its pid while it runs (checked
        // just above).
        unsafe { libc::kill(helper, libc::SIGKILL) };
    }
    snap.assert_clean("helper-answer-linger");
    println!(
        "helper-answer-linger: {:?} after {took:?}",
        r.as_ref().map(|_| ())
    );
    r.expect("criu answered success");
    assert!(alive, "the helper criu left on purpose was killed with it");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// A failed CHECK without an image path keeps its private directory only when CRIU wrote its
/// log there: a criu that failed before logging left an empty `ckpt-check-*` directory in the
/// temp dir at every call, and the error named a log in it.
#[test]
fn a_failed_check_keeps_its_directory_only_with_a_log() {
    let _g = serial();
    let tmp = TempDir::new("fold-checkdir");
    let checks = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("/ckpt-check-"))
            .collect()
    };
    let tmpdir = tmp.path().to_string_lossy().into_owned();
    set_env(&[("TMPDIR", Some(&tmpdir))]);
    let mut o = Options::new();
    o.set_criu_path(fake_criu()).unwrap();
    o.set_timeout(Some(Duration::from_secs(20)));
    scenario("exit-before-reply");
    let e = ckpt::ops::check(&o).expect_err("criu exits before replying");
    let mut left = checks();
    // CRIU answered, saying nothing, and its log is not there: the message said it could not
    // be read, naming it in the directory that is then removed.
    scenario("fail-unlogged");
    let unlogged = ckpt::ops::check(&o).expect_err("criu fails, without a log");
    left.extend(checks());
    scenario("log-and-fail");
    let logged = ckpt::ops::check(&o).expect_err("criu fails, with a log");
    let kept = checks();
    set_env(&[("TMPDIR", None)]);
    println!("no log: {e:?}\nunlogged: {unlogged:?}\nlogged: {logged:?}");
    assert_eq!(e.code, Code::CriuDied, "{e}");
    assert_eq!(unlogged.code, Code::Criu, "{unlogged}");
    assert!(
        left.is_empty(),
        "an empty check directory was kept: {left:?}"
    );
    for e in [&e, &unlogged] {
        assert!(
            e.log_path.is_none() && !e.message.contains("/ckpt-check-"),
            "the error names a removed directory: {e:?}"
        );
    }
    assert!(unlogged.message.contains("it wrote no log"), "{unlogged}");
    assert_eq!(kept.len(), 1, "{kept:?}");
    let log = logged.log_path.clone().expect("the kept log is named");
    assert!(log.starts_with(&kept[0]) && log.is_file(), "{logged:?}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("failing as scripted")
    );
}
