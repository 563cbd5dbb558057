//! The pid a checkpoint is given must name a live process CRIU can dump. Three kinds of pid
//! CRIU turns into misleading errors ("No such process", or an abort reported as criu dying)
//! are refused here, before criu starts, each with what it is.

use super::*;

/// Bit of the `flags` field of /proc/PID/stat marking a kernel thread (PF_KTHREAD).
const PF_KTHREAD: u64 = 0x0020_0000;

/// What /proc says about `pid`: its thread group (process) id, state letter, flags and name.
struct ProcInfo {
    tgid: i32,
    state: char,
    flags: u64,
    comm: String,
}

fn read(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, after) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    // After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags, ...
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let flags = fields.get(6)?.parse().ok()?;
    let tgid = crate::procstatus::Status::read(pid)
        .ok()?
        .field("Tgid")?
        .parse()
        .ok()?;
    Some(ProcInfo {
        tgid,
        state,
        flags,
        comm,
    })
}

/// Refuses a thread that is not its process's leader, a zombie, and a kernel thread. A pid
/// /proc does not show is left to CRIU (the message then says the process does not exist).
pub(super) fn check(pid: i32) -> Result<()> {
    let Some(p) = read(pid) else {
        return Ok(());
    };
    if p.flags & PF_KTHREAD != 0 {
        return Err(Error::invalid(format!(
            "pid {pid} is a kernel thread ({}), which CRIU cannot checkpoint",
            p.comm
        )));
    }
    if p.tgid != pid {
        return Err(Error::invalid(format!(
            "pid {pid} is a thread of process {}, not a process: checkpoint process {} to take all its threads",
            p.tgid, p.tgid
        )));
    }
    if matches!(p.state, 'Z' | 'X') {
        return Err(Error::new(
            Code::InvalidState,
            format!(
                "process {pid} ({}) is a zombie: it has exited and only waits for its parent to reap it, so there is nothing to checkpoint",
                p.comm
            ),
        ));
    }
    Ok(())
}

/// Refuses an ancestor of this process: criu swrk is this process's child, so the tree of an
/// ancestor holds criu too, which CRIU refuses ("The criu itself is within dumped tree") only
/// after it has seized and stopped that tree, the caller's own; its message then quotes a
/// warning ("Unable to interrupt task"). This process's own pid is left to CRIU, which says
/// the same (the fault tests give it to the scripted criu as a pid that surely exists). A
/// `criu service` elsewhere is outside the tree: that is left to CRIU too.
pub(super) fn check_not_ancestor(pid: i32) -> Result<()> {
    let mut p = std::process::id() as i32;
    // A bounded walk up the ppid chain: init (1) or a pid namespace's edge (0) ends it.
    for _ in 0..4096 {
        let Some(parent) = parent_of(p) else {
            return Ok(());
        };
        if parent == pid {
            return Err(Error::invalid(format!(
                "pid {pid} is an ancestor of this process: criu, started as this process's child, would be inside the tree it dumps"
            )));
        }
        if parent <= 1 {
            return Ok(());
        }
        p = parent;
    }
    Ok(())
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after) = stat.rsplit_once(')')?;
    after.split_whitespace().nth(1)?.parse().ok()
}
