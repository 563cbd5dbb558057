//! A container created but not started: its init is still the runtime's own process, waiting
//! on the runtime's `exec.fifo` until `start`, and not the container's program. CRIU fails on
//! it late, with an error about mounts that says nothing of the cause ("Can't lookup mount=N
//! for fd=-3 path=/"), so a checkpoint refuses it first, with one message whatever gave it
//! away.

use crate::error::{Code, Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a checkpoint knows of the container to tell.
pub enum Seen<'a> {
    /// The runtime's state directory of the container (runc's and crun's keep `exec.fifo`
    /// there until `start`).
    StateDir(&'a Path),
    /// The process given as the container's init.
    Init(i32),
}

/// Refuses (`InvalidState`) a container created but not started: its state directory still
/// holds `exec.fifo`, or its init holds an `exec.fifo` open or runs the runtime's binary (still
/// after `EXEC_WAIT`, when it holds no fifo).
pub fn refuse(seen: Seen<'_>) -> Result<()> {
    let evidence = match seen {
        Seen::StateDir(dir) => {
            let fifo = dir.join("exec.fifo");
            fifo.symlink_metadata()
                .is_ok()
                .then(|| format!("{} exists", fifo.display()))
        }
        Seen::Init(pid) => {
            let proc = PathBuf::from(format!("/proc/{pid}"));
            held_exec_fifo(&proc)
                .map(|f| format!("process {pid} holds {}", f.display()))
                .or_else(|| {
                    let exe = runtime_exe_after_exec_wait(&proc)?;
                    Some(format!(
                        "process {pid} runs the runtime's binary ({exe}), not a program of the rootfs"
                    ))
                })
        }
    };
    match evidence {
        None => Ok(()),
        Some(why) => Err(Error::new(
            Code::InvalidState,
            format!(
                "the container is created but not started ({why}): only a running container can be checkpointed; start it first"
            ),
        )),
    }
}

/// How long an init that runs the runtime's binary without holding `exec.fifo` is given to
/// exec the container's program: once `start` (or `run -d`) returns, the init has passed the
/// fifo but may not have exec'd yet (runc loads seccomp and closes descriptors in between), and
/// a checkpoint made at once, as a runtime may do, saw it in that moment.
const EXEC_WAIT: Duration = Duration::from_millis(500);

/// The runtime binary `proc` still runs after waiting up to `EXEC_WAIT` for it to exec
/// another program; None once it runs one (or is gone, which later checks report).
fn runtime_exe_after_exec_wait(proc: &Path) -> Option<String> {
    let end = Instant::now() + EXEC_WAIT;
    loop {
        let exe = std::fs::read_link(proc.join("exe")).ok()?;
        let exe = exe.to_string_lossy().into_owned();
        if !is_runtime_exe(&exe) || Instant::now() >= end {
            return is_runtime_exe(&exe).then_some(exe);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The runtime's `exec.fifo` when the process behind `proc` holds it open: runc's and crun's
/// init of a created container waits on it until `start`. A descriptor that cannot be read is
/// not such a fifo.
fn held_exec_fifo(proc: &Path) -> Option<PathBuf> {
    std::fs::read_dir(proc.join("fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .find(|target| target.is_absolute() && target.file_name() == Some("exec.fifo".as_ref()))
}

/// Whether `exe` (a process's `/proc/PID/exe` link) is the runtime's binary as its init of a
/// created container runs it: cloned where no path of the host reaches it (the link reads
/// "/", which no program can be) or into runc's memfd, never a program of the rootfs.
pub fn is_runtime_exe(exe: &str) -> bool {
    exe == "/" || exe.starts_with("/memfd:runc_cloned")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_binaries_are_told_from_programs() {
        assert!(is_runtime_exe("/"));
        assert!(is_runtime_exe("/memfd:runc_cloned:/usr/bin/runc (deleted)"));
        assert!(!is_runtime_exe("/bin/busybox"));
        assert!(!is_runtime_exe("/memfd:other (deleted)"));
        assert!(!is_runtime_exe("/usr/bin/runc"));
    }
}
