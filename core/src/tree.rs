//! Undoing a restore: finding the tree a failed restore left behind and killing it whole.
//!
//! A restored root is the caller's child (CRIU's rst_sibling), so its pid cannot be reused
//! before it is reaped. Its descendants are not: each is held by a pidfd from the moment it
//! is found, stopped so it cannot fork, and killed through that pidfd.

use std::time::{Duration, Instant};

use prost::Message;

use crate::sweep::{Sweep, pidfd_open};

/// Kills the tree rooted at `root`, a child of this process, whole: every descendant is
/// stopped (so none forks while the tree is walked), then every one is killed, and the root
/// is reaped. Descendants that become this process's children (it is a subreaper) are reaped
/// too; the others are reaped by their new parent.
pub fn kill_and_reap(root: i32) {
    if root <= 0 {
        return;
    }
    let mut sweep = Sweep::new();
    // The root is our unreaped child: its pid cannot have been reused.
    sweep.add(root, pidfd_open(root));
    sweep.stop_descendants();
    sweep.kill();
    sweep.reap_child(root);
    sweep.reap_rest(&[root]);
}

/// The root of a restored tree that is not this process's child (libcriu's `criu_restore`:
/// criu is its parent, then whoever inherits it), held by a pidfd taken while CRIU still
/// holds the tree, so the pid cannot name another process later. Only the drop-in uses it.
#[cfg(feature = "internals")]
pub struct HeldRoot {
    pid: i32,
    fd: std::os::fd::OwnedFd,
}

#[cfg(feature = "internals")]
impl HeldRoot {
    /// Holds `pid` by pidfd; None when it is gone or pidfds are missing (a bare pid of a
    /// process that is not this one's child could be reused: it is never signalled).
    pub fn hold(pid: i32) -> Option<HeldRoot> {
        let fd = pidfd_open(pid)?;
        Some(HeldRoot { pid, fd })
    }

    /// Kills the tree whole, as `kill_and_reap` does; the root and the others are reaped
    /// here only if they became this process's children (it is a subreaper), otherwise by
    /// their parents.
    pub fn kill_tree(self) {
        let mut sweep = Sweep::new();
        sweep.add(self.pid, Some(self.fd));
        sweep.stop_descendants();
        sweep.kill();
        sweep.reap_rest(&[]);
    }
}

/// The first entry of `pstree.img`: the root of the dumped tree, with the ids it needs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PstreeEntry {
    #[prost(uint32, tag = "1")]
    pub pid: u32,
    #[prost(uint32, tag = "2")]
    pub ppid: u32,
    #[prost(uint32, tag = "3")]
    pub pgid: u32,
    #[prost(uint32, tag = "4")]
    pub sid: u32,
    #[prost(uint32, repeated, packed = "false", tag = "5")]
    pub threads: Vec<u32>,
}

/// Every entry of `pstree.img` in `images` (CRIU's framing: two magic words, then each
/// entry as a u32 length and the message). Empty when the file cannot be read, or is no
/// regular file of at most 64 MiB: it is opened without waiting, as a FIFO in its place
/// blocked the restore for ever, before criu and its timeout.
pub fn read_pstree(images: &std::path::Path) -> Vec<PstreeEntry> {
    let Ok(b) = crate::paths::read_bytes_at_most(&images.join("pstree.img"), crate::paths::MAX_TEXT)
    else {
        return vec![];
    };
    let mut out = Vec::new();
    let mut at = 8;
    while at + 4 <= b.len() {
        let len = u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        at += 4;
        let Some(body) = b.get(at..at + len) else {
            break;
        };
        match PstreeEntry::decode(body) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
        at += len;
    }
    out
}

/// This thread's children now (criu and what it made our children with CLONE_PARENT).
pub fn thread_children() -> Vec<i32> {
    std::fs::read_to_string("/proc/thread-self/children")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The executable file `pid` runs, as (device, inode).
fn exe_id(pid: i32) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    Some((m.dev(), m.ino()))
}

/// What marks criu's own processes: its executable file (device, inode) and when it started
/// (clock ticks after boot). Both can be read from a zombie, but a zombie's executable
/// cannot: they are read while criu runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CriuId {
    exe: (u64, u64),
    pub(crate) started: u64,
}

fn cmdline(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline")).ok()
}

/// `criu`'s marks, while it runs (not once it is a zombie).
pub(crate) fn criu_id(criu: i32) -> Option<CriuId> {
    Some(CriuId {
        exe: exe_id(criu)?,
        started: crate::sweep::start_time(criu)?,
    })
}

/// The children of thread `tid` of this process that `criu` (stopped, or gone) made with
/// CLONE_PARENT and that still run criu's program: the root of a tree CRIU was restoring,
/// which stops running criu's program in CRIU's restorer, before `post-restore`. Only a child
/// started no earlier than criu, from the same executable file and with the same command
/// line (a copy of criu's memory) is taken for one, not one the caller started. `id` is
/// criu's marks. With `live`, the command line is read from the stopped criu now; criu gone,
/// it must carry the title criu gives itself once it reads a request ("criu: restore --rpc
/// -D ..."), which a copy of its memory made after that carries too.
pub(crate) fn made_by_criu(id: &CriuId, criu: i32, tid: i32, live: bool) -> Vec<i32> {
    let want = if live {
        match cmdline(criu) {
            Some(a) => Some(a),
            None => return vec![],
        }
    } else {
        None
    };
    let args_match = |c: i32| {
        cmdline(c).is_some_and(|a| match &want {
            Some(w) => a == *w,
            None => a.starts_with(RPC_TITLE),
        })
    };
    started_with_criu(tid, criu, id.started)
        .into_iter()
        .filter(|&c| exe_id(c) == Some(id.exe) && args_match(c))
        .collect()
}

/// The children of thread `tid` of this process, other than `criu`, that started no earlier
/// than criu (at `started`, clock ticks after boot): the only ones criu can have made with
/// CLONE_PARENT.
fn started_with_criu(tid: i32, criu: i32, started: u64) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|&c| c != criu)
        .filter(|&c| crate::sweep::start_time(c).is_some_and(|t| t >= started))
        .collect()
}

/// How criu serving RPC titles itself ("criu: restore --rpc -D ...").
const RPC_TITLE: &[u8] = b"criu: ";

/// What tells the root of a tree a restore builds as the spawning thread's child, whatever it
/// runs by then: the thread's children before criu started, and the root pid `pstree.img`
/// records (None when it could not be read). Taken before criu starts, so it needs nothing
/// from the images once criu runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreRoot {
    pub before: Vec<i32>,
    pub image_root: Option<u32>,
}

impl RestoreRoot {
    /// This thread's children now and the root pid of `pstree`, the images' entries as
    /// `read_pstree` returns them (the caller reads them once for all it needs them for).
    pub fn before_restore(pstree: &[PstreeEntry]) -> RestoreRoot {
        RestoreRoot {
            before: thread_children(),
            image_root: pstree.first().map(|e| e.pid),
        }
    }

    /// The root of the tree a failed restore left as this thread's child, to be killed: `known`
    /// (the root CRIU reported at `post-restore` or in its answer; 0: none) while it is still
    /// this thread's unreaped child (killed and reaped with criu, its pid may name another
    /// process now), else the new child `find_restored_root` finds by the images' root pid,
    /// read from `images` now when it could not be before criu started.
    pub fn after_failure(&self, known: i32, images: &std::path::Path) -> Option<i32> {
        if known > 0 {
            return Some(known).filter(|p| thread_children().contains(p));
        }
        let image_root = self
            .image_root
            .or_else(|| read_pstree(images).first().map(|e| e.pid));
        find_restored_root(&self.before, image_root)
    }
}

/// The root of the tree `hint` describes among the children of thread `tid` of this process,
/// once criu (`criu`, started at `criu_started` clock ticks after boot) is stopped or gone: a
/// child that was not there before criu started, started no earlier than criu, that is not
/// criu, and whose pid in its own pid namespace is the images' root pid (the rule
/// `find_restored_root` applies after a failed restore). It holds whatever the root runs by
/// then: CRIU's restorer switches its executable and its memory before `post-restore`.
pub(crate) fn restoring_root(
    hint: &RestoreRoot,
    criu: i32,
    criu_started: u64,
    tid: i32,
) -> Option<i32> {
    let want = hint.image_root? as i32;
    started_with_criu(tid, criu, criu_started)
        .into_iter()
        .filter(|c| !hint.before.contains(c))
        .find(|&c| inner_pid(c) == Some(want))
}

/// The pid `pid` has in its own (innermost) pid namespace.
fn inner_pid(pid: i32) -> Option<i32> {
    let status = crate::procstatus::Status::read(pid).ok()?;
    status.field("NSpid")?.split_whitespace().last()?.parse().ok()
}

/// The root of a tree a failed restore left as this thread's child: a child that was not
/// there before criu started (`before`) and whose pid, in its own pid namespace, is the
/// root pid recorded in the images. Without a readable pstree.img, no child is guessed at.
pub fn find_restored_root(before: &[i32], image_root: Option<u32>) -> Option<i32> {
    let want = image_root? as i32;
    thread_children()
        .into_iter()
        .filter(|c| !before.contains(c))
        .find(|c| inner_pid(*c) == Some(want))
}

/// How a pid is held by a process that will let it go without anyone's help but its
/// parent's: `Some(true)` a zombie, `Some(false)` a process being killed (SIGKILL pending,
/// or exiting), None neither (free, or a running process).
fn held_by_the_dying(id: i32) -> Option<bool> {
    let status = crate::procstatus::Status::read(id).ok()?;
    let field = |name: &str| status.field(name).unwrap_or("");
    let state = field("State");
    if state.starts_with('Z') || state.starts_with('X') {
        return Some(true);
    }
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    ["SigPnd", "ShdPnd"]
        .iter()
        .any(|f| u64::from_str_radix(field(f), 16).is_ok_and(|v| v & kill_bit != 0))
        .then_some(false)
}

/// Every pid, process group, session and thread id of `entries`, sorted, without 0 and 1.
fn ids_of(entries: &[PstreeEntry]) -> Vec<i32> {
    let mut ids: Vec<i32> = entries
        .iter()
        .flat_map(|e| {
            [e.pid, e.pgid, e.sid]
                .into_iter()
                .chain(e.threads.iter().copied())
        })
        .filter(|&i| i > 1)
        .map(|i| i as i32)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The zombies holding one of `entries`' ids whose parent is this process: only the caller
/// can free those (waitpid), and it cannot while it waits for the restore. Read from this
/// process's children (every thread's `children` file lists its zombies too), not from a
/// walk of every process's stat file, which took milliseconds on each restore; the walk
/// remains for kernels without those files.
pub fn zombie_children_holding(entries: &[PstreeEntry]) -> Vec<i32> {
    let me = std::process::id().to_string();
    let ids = ids_of(entries);
    let candidates = match own_children() {
        Some(c) => c
            .into_iter()
            .filter(|&p| ids.binary_search(&p).is_ok() || groups_in(p, &ids))
            .collect(),
        None => holders(&ids),
    };
    candidates
        .into_iter()
        .filter(|&p| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                return false;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut f = rest.split_whitespace();
            f.next() == Some("Z") && f.next() == Some(me.as_str())
        })
        .collect()
}

/// Every child of every thread of this process, zombies included; None when a thread's
/// `children` file cannot be read (a kernel without CONFIG_PROC_CHILDREN).
fn own_children() -> Option<Vec<i32>> {
    let mut out = vec![];
    for t in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let text = match std::fs::read_to_string(t.path().join("children")) {
            Ok(t) => t,
            // A thread that ended meanwhile has no children left to list.
            Err(_) if !t.path().exists() => continue,
            Err(_) => return None,
        };
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    Some(out)
}

/// Whether the process group or session of `p` is one of `ids`.
fn groups_in(p: i32, ids: &[i32]) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
        return false;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    // After the command name: state ppid pgrp session ...
    rest.split_whitespace()
        .skip(2)
        .take(2)
        .filter_map(|v| v.parse::<i32>().ok())
        .any(|v| ids.binary_search(&v).is_ok())
}

/// Every process whose pid, process group or session is one of `ids`.
fn holders(ids: &[i32]) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| ids.binary_search(&p).is_ok() || groups_in(p, ids))
        .collect()
}

/// Waits up to `bound` while any pid, process group or session id the images' tree needs
/// is held by a zombie or a dying process, and `stop` (the caller cancelled) stays false.
/// Returns the ids still held that way at the end (for the message when CRIU then fails).
pub fn wait_for_ids(entries: &[PstreeEntry], bound: Duration, stop: &dyn Fn() -> bool) -> Vec<i32> {
    let ids = ids_of(entries);
    let end = Instant::now() + bound;
    loop {
        // A process holds an id as its pid, or as its process group or session: a zombie
        // child of the dumped root keeps the root's session id taken too.
        let held: Vec<(i32, bool)> = holders(&ids)
            .into_iter()
            .filter_map(|p| held_by_the_dying(p).map(|z| (p, z)))
            .collect();
        if held.is_empty() || Instant::now() >= end || stop() {
            return held.into_iter().map(|(i, _)| i).collect();
        }
        // A process still alive but dying is waited for through its pidfd; a zombie's pid is
        // released when its parent reaps it, which no descriptor signals: poll for that.
        let step = end
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(10));
        match held
            .iter()
            .filter(|(_, z)| !z)
            .find_map(|&(i, _)| pidfd_open(i))
        {
            Some(fd) => {
                use std::os::fd::AsFd;
                let mut p = [nix::poll::PollFd::new(
                    fd.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                let ms = step.as_millis().max(1) as u16;
                let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(ms));
            }
            None => std::thread::sleep(step),
        }
    }
}
