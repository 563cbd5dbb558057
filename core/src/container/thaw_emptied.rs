//! A paused container checkpointed without leave-running: CRIU dumps it, kills its tasks and
//! sets its v1 freezer cgroup back to FROZEN, as it found it. The cgroup is then empty and
//! FROZEN; a restore into it is refused (`frozen_target`), because restored tasks would freeze
//! there. Nothing in it can run any more, and the images record FROZEN, so a restore brings the
//! container back paused whatever the cgroup's state: ckpt thaws the emptied cgroup.

use super::freezer;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the killed tasks get to leave the cgroup.
const WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);

/// Thaws the v1 freezer cgroup `dir` once no task is left in it (waiting up to `WAIT` for the
/// killed ones to go); a cgroup that still holds a task (someone else's, which must stay
/// paused) or cannot be read stays as it is. True when it was thawed.
pub fn thaw(dir: &Path) -> bool {
    let start = Instant::now();
    loop {
        match freezer::holds_no_task(dir) {
            Some(true) => break,
            Some(false) if start.elapsed() < WAIT => std::thread::sleep(POLL),
            _ => return false,
        }
    }
    match freezer::state_v1(dir) {
        Some(s) if s != "THAWED" => std::fs::write(dir.join("freezer.state"), "THAWED").is_ok(),
        _ => false,
    }
}
