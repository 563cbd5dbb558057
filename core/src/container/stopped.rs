//! Refusing a container with a stopped task before a dump that freezes its v1 freezer cgroup.
//! CRIU seizes the tasks of a frozen cgroup with `PTRACE_SEIZE`; the kernel's attach to a task
//! in a job-control stop (SIGSTOP, SIGTSTP, ...) waits for that task to trap again, which a
//! frozen task never does: criu sleeps uninterruptibly in `ptrace_attach` with the container
//! frozen until the cgroup is thawed (measured with CRIU 4.1.1 on Linux 6.18, `runc checkpoint`
//! hangs the same way). ckpt used to wait there until its operation timeout, with an error
//! naming no cause; it now says which task is stopped before criu starts.

use crate::error::{Code, Error, Result};
use std::path::Path;

/// `InvalidState`, naming the first stopped task, when a task of the v1 freezer cgroup `dir`
/// is in a job-control stop (state `T` in `/proc/TID/status`). A cgroup that cannot be read
/// refuses nothing: the dump goes on as before.
pub fn refuse(dir: &Path) -> Result<()> {
    let Ok(tasks) = std::fs::read_to_string(dir.join("tasks")) else {
        return Ok(());
    };
    for tid in tasks.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if crate::procstatus::state(tid) == Some('T') {
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "task {tid} of the container (freezer cgroup {}) is stopped (SIGSTOP or another stop signal): CRIU cannot seize a stopped task in a frozen cgroup, its ptrace attach waits for the task for ever; continue it (SIGCONT) before the checkpoint",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_cgroup_refuses_nothing() {
        assert!(refuse(Path::new("/nonexistent/cgroup")).is_ok());
    }
}
