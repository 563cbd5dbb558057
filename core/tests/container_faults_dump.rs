//! A leave-running runc container checkpoint under faults at each of its notifications, with
//! CRIU's iptables network lock so that `network-lock` and `network-unlock` are sent: the
//! runtime's callback failing, cancelling, or sleeping past the timeout, and criu killed
//! (SIGKILL, by an action script). Whatever the caller is told, the container must run on
//! untouched (leave-running: nothing may kill it): THAWED, counting, untraced, its network
//! unlocked; and nothing of the checkpoint may be left (no child, no criu, no staged file of
//! ckpt's). Real runc, CRIU and iptables; needs root.

mod common;
#[path = "container_faults/failing.rs"]
mod failing;
mod faultkit;

use ckpt::error::outcome;
use ckpt::{Cancel, Code, Options, container};
use common::containers::{Counting, advancing, runc_ready};
use common::{not_exercised, options};
use failing::{killing_config, refusing_at};
use faultkit::Snapshot;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The dump's notifications with the iptables lock, in order.
const POINTS: [&str; 4] = ["pre-dump", "network-lock", "post-dump", "network-unlock"];

/// How a case arms the options.
type Arm = Box<dyn FnOnce(&mut Options)>;

/// CRIU's lock rules in the container's network namespace, if any.
fn locked(pid: i32) -> Option<String> {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "iptables", "-w", "-S"])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.contains("CRIU").then_some(s)
}

/// The container after the checkpoint: running, untouched.
fn assert_running(c: &Counting, what: &str) {
    assert_eq!(c.freezer(), "THAWED", "{what}: the freezer cgroup");
    assert!(
        Path::new(&format!("/proc/{}", c.pid)).exists(),
        "{what}: the container's init is gone"
    );
    assert_eq!(locked(c.pid), None, "{what}: the network is left locked");
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid)).unwrap();
    assert!(
        status.contains("TracerPid:\t0"),
        "{what}: the init is traced"
    );
    assert!(advancing(&c.bundle), "{what}: the container does not count");
}

fn on_notification(at: &str, f: impl Fn() + Send + Sync + 'static) -> Arc<ckpt::options::NotifyFn> {
    let a = at.to_string();
    Arc::new(move |n: &ckpt::Notification| {
        if n.script == a {
            f();
        }
        Ok(())
    })
}

#[test]
fn leave_running_container_checkpoints_failing_at_every_notification_leave_it_running() {
    if !runc_ready()
        || !common::criu_allowed(
            "leave_running_container_checkpoints_failing_at_every_notification_leave_it_running",
        )
    {
        return;
    }
    if Command::new("nsenter").arg("--version").output().is_err() {
        not_exercised("no nsenter to read the container's iptables rules");
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "2");
    let mut n = 0;
    for at in POINTS {
        let a = at.to_string();
        let cases: Vec<(&str, Arm)> = vec![
            (
                "callback failing",
                Box::new(move |o: &mut Options| {
                    o.set_notify(Some(refusing_at(&a)));
                }),
            ),
            (
                "cancelled from the callback",
                Box::new(move |o: &mut Options| {
                    let cancel = Cancel::new().unwrap();
                    o.set_cancel(Some(&cancel));
                    o.set_notify(Some(on_notification(at, move || cancel.trigger())));
                }),
            ),
            ("criu killed", {
                let conf = killing_config(&c.work, at);
                Box::new(move |o: &mut Options| {
                    o.set_config_file(&conf).unwrap();
                })
            }),
        ];
        let mut cases = cases;
        if at == "post-dump" {
            cases.push((
                "callback sleeping past the timeout",
                Box::new(move |o: &mut Options| {
                    o.set_timeout(Some(Duration::from_millis(1000)));
                    o.set_notify(Some(on_notification(at, || {
                        std::thread::sleep(Duration::from_millis(1200))
                    })));
                }),
            ));
        }
        for (how, arm) in cases {
            n += 1;
            let what = format!("{how} at {at}");
            let images = c.work.join(format!("images-{n}"));
            let mut o = options(&images);
            o.set_leave_running(true);
            o.set_network_lock("iptables").unwrap();
            arm(&mut o);
            let snap = Snapshot::take();
            let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
            snap.assert_clean(&what);
            match &r {
                Ok((_, s)) => {
                    eprintln!("{what}: succeeded, outcome {}", s.outcome);
                    // Only past the point of no return (post-dump answered) may a stopped
                    // checkpoint finish, and it then says the deadline passed.
                    assert_eq!(at, "network-unlock", "{what}: succeeded");
                    assert!(s.outcome & outcome::DEADLINE_PASSED != 0, "{what}");
                }
                Err(e) => {
                    eprintln!("{what}: {:?} outcome {}: {}", e.code, e.outcome, e.message);
                    let want = match how {
                        "callback failing" => Code::Callback,
                        "cancelled from the callback" => Code::Cancelled,
                        "criu killed" => Code::CriuDied,
                        _ => Code::Timeout,
                    };
                    assert_eq!(e.code, want, "{what}: {e:?}");
                    assert_eq!(e.outcome & outcome::TREE_KILLED, 0, "{what}: {e:?}");
                }
            }
            let staged: Vec<String> = std::fs::read_dir(&images)
                .map(|rd| {
                    rd.flatten()
                        .map(|d| d.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.contains(".ckpt-"))
                        .collect()
                })
                .unwrap_or_default();
            assert!(staged.is_empty(), "{what}: staged files left: {staged:?}");
            assert_running(&c, &what);
        }
    }
}

/// A leave-running checkpoint cancelled while CRIU's parasite code runs in the container's
/// init (its memfd, `CRIUMFD`, is mapped there). Killed there, criu took the init with it
/// (the init cannot go back to its own code), and the container died about every other
/// time. ckpt now lets criu go on, stopping it every 2 ms for a look, until no task holds its
/// code, and only then kills it: the container runs on, and the error says how long criu was
/// let go on. Should an init still die with criu, the error must say the container is gone,
/// and never say so of a container that runs on.
#[test]
fn a_cancel_while_criu_code_runs_in_the_init_does_not_take_the_container() {
    if !runc_ready()
        || !common::criu_allowed(
            "a_cancel_while_criu_code_runs_in_the_init_does_not_take_the_container",
        )
    {
        return;
    }
    let _g = common::serial();
    let c = Counting::start("ckpt-probefaults", "17");
    let mut waited = 0;
    for round in 0..6 {
        let cancel = Cancel::new().unwrap();
        let mut o = options(&c.work.join(format!("images-{round}")));
        o.set_leave_running(true);
        o.set_cancel(Some(&cancel));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (done, cancel, maps) = (
                done.clone(),
                cancel.clone(),
                format!("/proc/{}/maps", c.pid),
            );
            // A criu killed earlier may have left its memfd mapped in a surviving init:
            // only a new mapping is this dump's parasite.
            let mapped = move || {
                std::fs::read_to_string(&maps)
                    .map(|m| m.lines().filter(|l| l.contains("CRIUMFD")).count())
                    .unwrap_or(0)
            };
            let before = mapped();
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if mapped() > before {
                        cancel.trigger();
                        return true;
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
                false
            })
        };
        let snap = Snapshot::take();
        let r = container::checkpoint(&mut o, &c.bundle, c.pid, false);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let caught = watcher.join().unwrap();
        snap.assert_clean(&format!("cut {round}"));
        let said_gone = matches!(&r, Err(e) if e.message.contains("the container is gone"));
        let state = std::fs::read_to_string(format!("/proc/{}/stat", c.pid))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.trim().chars().next())
            });
        let dead = matches!(state, None | Some('Z' | 'X'));
        eprintln!(
            "cut {round}: parasite seen {caught}, init dead {dead}: {:?}",
            r.as_ref()
                .err()
                .map(|e| (e.code, e.outcome, e.message.clone()))
        );
        assert_eq!(said_gone, dead, "cut {round}: init {state:?}, result {r:?}");
        assert!(!dead, "cut {round}: the init died with criu: {r:?}");
        assert!(
            advancing(&c.bundle),
            "cut {round}: the container does not count"
        );
        if caught {
            waited += 1;
            assert!(
                matches!(&r, Err(e) if e.code == Code::Cancelled
                    && e.message.contains("until no task of the tree held its code")),
                "cut {round}: {r:?}"
            );
        }
    }
    if waited == 0 {
        not_exercised("no cancellation caught CRIU's parasite in the container's init");
    }
}
