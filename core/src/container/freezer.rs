//! Freezing a container's v1 freezer cgroup before CRIU starts, and what that means for the
//! images.
//!
//! CRIU writes FROZEN into the freezer cgroup and then checks it every 100 ms; when the first
//! check finds it still FREEZING (a task running or in the middle of a system call), the dump
//! waits 100 ms for nothing. Freezing it here, checking every millisecond, lets CRIU find the
//! cgroup FROZEN and seize the tasks at once. CRIU then records the state it found, FROZEN, as
//! the cgroup's `freezer.state` in cgroup.img and writes it back at the end of every restore
//! (criu/seize.c, criu/cgroup.c); since the container was THAWED before ckpt froze it, the
//! image is set back to THAWED after the dump, so a restore (ckpt's or `runc restore`'s)
//! leaves the container running, as CRIU's own freezing would have.

use crate::cancel::Cancel;
use crate::error::{Code, Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long ckpt waits for the cgroup to freeze before it gives up and leaves the freezing to
/// CRIU (which thaws and refreezes a v1 cgroup that stays FREEZING); also how long a cgroup
/// found FREEZING gets to settle before the checkpoint is refused.
const FREEZE_WAIT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(1);

/// What ends ckpt's wait for FROZEN before `FREEZE_WAIT`: the operation's deadline and its
/// cancellation token, checked at every poll.
pub struct Until<'a> {
    /// The operation's deadline.
    pub deadline: Option<Instant>,
    /// The operation's cancellation token.
    pub cancel: Option<&'a Cancel>,
}

impl Until<'_> {
    /// The error the operation fails with when the wait for `dir` must end now.
    fn stop(&self, dir: &Path) -> Result<()> {
        let (code, why) = if self.cancel.is_some_and(Cancel::is_triggered) {
            (Code::Cancelled, "the operation was cancelled")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            (Code::Timeout, "the operation timeout passed")
        } else {
            return Ok(());
        };
        Err(Error::new(
            code,
            format!(
                "{why} while ckpt waited on the container's freezer cgroup {} before criu started; the cgroup is left as the checkpoint found it (thawed again if ckpt had frozen it)",
                dir.display()
            ),
        ))
    }
}

/// A v1 freezer cgroup the checkpoint found THAWED: set back to THAWED when dropped (on every
/// path), whoever froze it meanwhile. CRIU takes the state it reads when it starts for the
/// container's own: found FROZEN or FREEZING, it records FROZEN and freezes the cgroup again at
/// the end of a leave-running dump (criu/seize.c `freeze_processes`, `freezer_restore_state`).
/// ckpt's own freezing is one such write; another's (a `runc pause`, or any other writer)
/// between ckpt's look and CRIU's would leave a running container frozen after a successful
/// checkpoint.
#[derive(Debug)]
pub struct Running {
    state_file: PathBuf,
    /// Whether ckpt froze it itself before CRIU (and it read FROZEN in time).
    pub froze: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.state_file, "THAWED");
    }
}

/// What a checkpoint found the container's v1 freezer cgroup in before CRIU.
#[derive(Debug)]
pub enum Start {
    /// THAWED: left THAWED at the end.
    Running(Running),
    /// FROZEN: a paused container, left FROZEN at the end.
    Paused(Paused),
}

fn read_state(f: &Path) -> Result<String> {
    std::fs::read_to_string(f)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io(format!("reading {}", f.display()), e))
}

/// The state (THAWED, FREEZING, FROZEN) of the v1 freezer cgroup `dir`; None when it cannot
/// be read (the hierarchy's root has none: it cannot be frozen).
pub fn state_v1(dir: &Path) -> Option<String> {
    read_state(&dir.join("freezer.state")).ok()
}

/// Whether the cgroup `dir` holds no task; None when its task list cannot be read.
pub fn holds_no_task(dir: &Path) -> Option<bool> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .ok()
        .map(|t| t.trim().is_empty())
}

/// The state of the freezer whose state file is `f` once it is not FREEZING, checked every
/// `POLL` for at most `FREEZE_WAIT`. FREEZING is someone else's freezing under way (a `runc
/// pause`), or one that cannot finish while a task of the cgroup sleeps where the freezer
/// cannot stop it: the container is neither running nor paused, and CRIU, which would take it
/// for paused, must not start. `until` ends the wait too.
fn settled(f: &Path, dir: &Path, until: &Until) -> Result<String> {
    let start = Instant::now();
    loop {
        let state = read_state(f)?;
        if state != "FREEZING" {
            return Ok(state);
        }
        until.stop(dir)?;
        if start.elapsed() > FREEZE_WAIT {
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "the container's freezer cgroup {} has been FREEZING for {} ms: someone else is pausing it, or a task in it cannot be frozen; it is neither running nor paused, and CRIU would take it for paused (recording FROZEN and leaving it frozen). Nothing was done: retry once it reads THAWED or FROZEN",
                    dir.display(),
                    FREEZE_WAIT.as_millis()
                ),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Looks at the v1 freezer cgroup `dir` once, waiting while it is FREEZING (see `settled`).
/// FROZEN: a paused container, kept paused. THAWED: ckpt freezes it, waiting for FROZEN at
/// most `FREEZE_WAIT` (if it does not freeze in time it is thawed again and CRIU freezes it
/// itself), and it is THAWED again when the returned guard is dropped. `Code::Cancelled` or
/// `Code::Timeout` when `until` ends a wait first, `Code::InvalidState` when it stays
/// FREEZING: the cgroup is then as it was found (THAWED again if ckpt had frozen it).
pub fn start_v1(dir: &Path, until: &Until) -> Result<Start> {
    let state_file = dir.join("freezer.state");
    match settled(&state_file, dir, until)?.as_str() {
        "FROZEN" => return Ok(Start::Paused(Paused { state_file })),
        "THAWED" => {}
        other => {
            return Err(Error::invalid(format!(
                "unknown freezer state {other:?} in {}",
                state_file.display()
            )));
        }
    }
    let mut running = Running {
        state_file,
        froze: false,
    };
    if std::fs::write(&running.state_file, "FROZEN").is_err() {
        // CRIU freezes it itself; it was THAWED, and ends so.
        return Ok(Start::Running(running));
    }
    let stop = || until.stop(dir);
    running.froze = frozen_within(&running.state_file, FREEZE_WAIT, &stop)?;
    if !running.froze {
        // CRIU freezes it itself, from THAWED, and thaws it at the end.
        let _ = std::fs::write(&running.state_file, "THAWED");
    }
    Ok(Start::Running(running))
}

/// Whether the freezer whose state file is `f` reports FROZEN within `wait`, checked every
/// `POLL`: writing FROZEN only starts the freeze (the cgroup reads FREEZING until every task
/// has stopped). `stop`'s error, checked at every poll, ends the wait.
fn frozen_within(f: &Path, wait: Duration, stop: &dyn Fn() -> Result<()>) -> Result<bool> {
    let start = Instant::now();
    loop {
        // First: a token triggered before the freeze stops it here too.
        stop()?;
        if read_state(f)? == "FROZEN" {
            return Ok(true);
        }
        if start.elapsed() > wait {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// A v1 freezer cgroup that was already FROZEN (a paused container) when the dump started;
/// frozen again when dropped if it is no longer. CRIU, finding it FROZEN, seizes the tasks,
/// thaws the cgroup to work on them and sets FROZEN back at the end, also when it fails; but
/// a criu killed in between (a timeout, a cancellation) leaves it THAWED: the paused container
/// would run while its runtime records it paused.
#[derive(Debug)]
pub struct Paused {
    state_file: PathBuf,
}

impl Drop for Paused {
    fn drop(&mut self) {
        if read_state(&self.state_file).map_or(true, |s| s != "FROZEN") {
            // Paused again before the call returns, not merely on its way there: the caller
            // (and its runtime's `resume`) must find the container as it left it.
            let _ = std::fs::write(&self.state_file, "FROZEN");
            let _ = frozen_within(&self.state_file, FREEZE_WAIT, &|| Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    //! The decisions on a stand-in `freezer.state` (a regular file keeps what is written, so
    //! ckpt's own freezing reads FROZEN at once); the kernel's cgroup is tested in
    //! core/tests/container_freezer_races.rs.
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str, state: &str) -> Dir {
            let d = std::env::temp_dir()
                .join(format!("ckpt-freezer-unit-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            let d = Dir(d);
            d.set(state);
            d
        }

        /// Replaces the state at once (a rename: a read never sees a half-written file).
        fn set(&self, state: &str) {
            let tmp = self.0.join("state.tmp");
            std::fs::write(&tmp, state).unwrap();
            std::fs::rename(&tmp, self.0.join("freezer.state")).unwrap();
        }

        fn state(&self) -> String {
            std::fs::read_to_string(self.0.join("freezer.state")).unwrap()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const NONE: Until = Until {
        deadline: None,
        cancel: None,
    };

    /// `start_v1` while another thread sets the state to `to` after 30 ms.
    fn settling(d: &Dir, to: &str) -> Result<Start> {
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                d.set(to);
            });
            start_v1(&d.0, &NONE)
        })
    }

    #[test]
    fn found_thawed_is_frozen_by_ckpt_and_thawed_whoever_froze_it_meanwhile() {
        let d = Dir::new("thawed", "THAWED\n");
        let s = start_v1(&d.0, &NONE).unwrap();
        assert!(matches!(&s, Start::Running(r) if r.froze), "{s:?}");
        assert_eq!(d.state(), "FROZEN");
        // Another's pause during the dump, or CRIU's FROZEN at its end.
        d.set("FROZEN\n");
        drop(s);
        assert_eq!(d.state(), "THAWED");
    }

    #[test]
    fn found_frozen_is_paused_and_kept_frozen() {
        let d = Dir::new("frozen", "FROZEN\n");
        let s = start_v1(&d.0, &NONE).unwrap();
        assert!(matches!(s, Start::Paused(_)), "{s:?}");
        // CRIU thaws it to work on the tasks; a criu killed then left it so.
        d.set("THAWED\n");
        drop(s);
        assert_eq!(d.state(), "FROZEN");
    }

    #[test]
    fn found_freezing_is_waited_on_and_taken_as_it_settles() {
        let d = Dir::new("to-frozen", "FREEZING\n");
        let s = settling(&d, "FROZEN\n").unwrap();
        assert!(matches!(s, Start::Paused(_)), "{s:?}");

        let d = Dir::new("to-thawed", "FREEZING\n");
        let s = settling(&d, "THAWED\n").unwrap();
        assert!(matches!(&s, Start::Running(r) if r.froze), "{s:?}");
        drop(s);
        assert_eq!(d.state(), "THAWED");
    }

    #[test]
    fn found_freezing_for_good_is_refused_untouched() {
        let d = Dir::new("stuck", "FREEZING\n");
        let start = Instant::now();
        let e = start_v1(&d.0, &NONE).unwrap_err();
        assert_eq!(e.code, Code::InvalidState, "{e:?}");
        assert!(e.message.contains("FREEZING"), "{e:?}");
        assert!(start.elapsed() >= FREEZE_WAIT);
        assert_eq!(d.state(), "FREEZING\n");
    }

    #[test]
    fn a_wait_on_freezing_ends_at_the_token_untouched() {
        let d = Dir::new("cancel", "FREEZING\n");
        let c = Cancel::new().unwrap();
        c.trigger();
        let until = Until {
            deadline: None,
            cancel: Some(&c),
        };
        let e = start_v1(&d.0, &until).unwrap_err();
        assert_eq!(e.code, Code::Cancelled, "{e:?}");
        assert_eq!(d.state(), "FREEZING\n");
        let until = Until {
            deadline: Some(Instant::now()),
            cancel: None,
        };
        let e = start_v1(&d.0, &until).unwrap_err();
        assert_eq!(e.code, Code::Timeout, "{e:?}");
        assert_eq!(d.state(), "FREEZING\n");
    }
}
