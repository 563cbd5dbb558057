//! A dump CRIU cannot make for want of a capability, refused before criu starts: CRIU reads
//! every dumped process's resource limits with `prlimit`, which the kernel allows on another
//! user's process only with `CAP_SYS_RESOURCE` in that process's user namespace
//! (kernel/sys.c `check_prlimit_permission`). Where root runs without it (a sandbox that
//! drops it from the bounding set, as on the machine ckpt is developed on), a tree with a
//! process of another uid or gid (a container whose `process.user` is not root) fails in
//! CRIU with "Can't get rlimit 0: Operation not permitted", after the tree was frozen and
//! CRIU's parasite had been in it.

use std::fs;

use crate::error::{Code, Error, Result};
use crate::procstatus::Status;

const CAP_SYS_RESOURCE: u32 = 24;

/// The real, effective and saved ids of the `Uid` or `Gid` line of /proc/PID/status.
fn ids(status: &Status, key: &str) -> Option<[u32; 3]> {
    let mut it = status
        .field(key)?
        .split_whitespace()
        .map(|x| x.parse::<u32>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

fn has_cap_sys_resource(status: &Status) -> bool {
    status
        .field("CapEff")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

fn user_ns(pid: &str) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/user")).ok()
}

/// The pids of the tree rooted at `root` (children of every thread), root first. Processes
/// that vanish meanwhile are skipped: CRIU reports a tree that changed itself.
fn tree(root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() && out.len() < 100_000 {
        out.extend(crate::sweep::children(out[i]));
        i += 1;
    }
    out
}

/// Refuses the dump of `root`'s tree when this process lacks `CAP_SYS_RESOURCE` and a process
/// of the tree, in this process's user namespace, has a real, effective or saved uid or gid
/// other than this process's real ones: CRIU (started by ckpt with the same credentials)
/// could not read its resource limits. A process in another user namespace is left to CRIU
/// (the namespace's owner may hold every capability in it).
pub fn check(root: i32) -> Result<()> {
    let own = Status::read("self").map_err(|e| Error::io("reading /proc/self/status", e))?;
    if has_cap_sys_resource(&own) {
        return Ok(());
    }
    let (Some(uid), Some(gid)) = (ids(&own, "Uid"), ids(&own, "Gid")) else {
        return Ok(());
    };
    let ns = user_ns("self");
    for p in tree(root) {
        let Ok(st) = Status::read(p) else {
            continue;
        };
        if user_ns(&p.to_string()) != ns {
            continue;
        }
        let (Some(pu), Some(pg)) = (ids(&st, "Uid"), ids(&st, "Gid")) else {
            continue;
        };
        if pu.iter().any(|u| *u != uid[0]) || pg.iter().any(|g| *g != gid[0]) {
            return Err(Error::new(
                Code::Unsupported,
                format!(
                    "pid {p} of the tree runs as uid {} gid {} and this process (uid {}) lacks CAP_SYS_RESOURCE: CRIU reads every process's resource limits (prlimit), which the kernel allows on another user's process only with that capability, and would fail with \"Can't get rlimit 0: Operation not permitted\"",
                    pu[1], pg[1], uid[0]
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
    fn reads_ids_and_the_capability() {
        let st = &Status::of(
            "Name:\tsh\nUid:\t0\t65534\t0\t0\nGid:\t1\t2\t3\t4\nCapEff:\t000001fffeffffff\n",
        );
        assert_eq!(ids(st, "Uid"), Some([0, 65534, 0]));
        assert_eq!(ids(st, "Gid"), Some([1, 2, 3]));
        assert!(!has_cap_sys_resource(st));
        assert!(has_cap_sys_resource(&Status::of(
            "CapEff:\t000001ffffffffff\n"
        )));
        assert_eq!(ids(&Status::of("Uid:\tx\n"), "Uid"), None);
    }
}
