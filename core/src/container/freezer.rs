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
/// CRIU (which thaws and refreezes a v1 cgroup that stays FREEZING).
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
                "{why} while ckpt waited for the container's freezer cgroup {} to freeze, before criu started; the cgroup was thawed again",
                dir.display()
            ),
        ))
    }
}

/// A v1 freezer cgroup ckpt froze; thawed when dropped (on every path).
#[derive(Debug)]
pub struct Frozen {
    state_file: PathBuf,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.state_file, "THAWED");
    }
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

/// Freezes the v1 freezer cgroup `dir` when it is THAWED, waiting for FROZEN at most
/// `FREEZE_WAIT`. `None`: the cgroup was not THAWED (a paused container: CRIU records that
/// state as it is), or it did not freeze in time (thawed again; CRIU freezes it itself).
/// `Code::Cancelled` or `Code::Timeout` when `until` ends the wait first: the cgroup is
/// thawed again before this returns.
pub fn freeze_v1(dir: &Path, until: &Until) -> Result<Option<Frozen>> {
    let state_file = dir.join("freezer.state");
    if read_state(&state_file)? != "THAWED" {
        return Ok(None);
    }
    std::fs::write(&state_file, "FROZEN")
        .map_err(|e| Error::io(format!("freezing {}", dir.display()), e))?;
    let frozen = Frozen { state_file };
    let stop = || until.stop(dir);
    Ok(frozen_within(&frozen.state_file, FREEZE_WAIT, &stop)?.then_some(frozen))
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

/// `Some` when the v1 freezer cgroup `dir` is FROZEN now: kept so when dropped.
pub fn paused_v1(dir: &Path) -> Option<Paused> {
    let state_file = dir.join("freezer.state");
    (read_state(&state_file).ok()? == "FROZEN").then_some(Paused { state_file })
}
