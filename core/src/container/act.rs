//! Carrying out a plan around the core's dump and restore: prepare, run, and undo what was
//! prepared on every path.

use super::facts::{DESCRIPTORS_FILE, RECORD_FILE, RestoreFacts};
use super::plan::{Action, Plan};
use super::put_back::PutBack;
use super::{
    apply, cgimage, cgroup_warm, cgroups, cpuset_parents, emptyfs, external, freezer,
    frozen_target, init_died, inroot, made_cgroups, occupied, plan, read, stopped, thaw_emptied,
};
use crate::error::{Code, Error, Result};
use crate::notify::{self, Notification};
use crate::ops::{self, Restored};
use crate::options::{NotifyFn, Options};
use crate::stats::Stats;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The runtime's hooks: called with the stage ("setup-namespaces", "post-restore") and the
/// restored init's pid; an `Err` aborts the restore.
pub type HookFn = dyn Fn(&str, i32) -> std::result::Result<(), String> + Send + Sync;

/// What a container restore needs beyond the options.
#[derive(Default)]
pub struct RestoreRequest {
    /// The OCI bundle: `config.json` and the rootfs it names.
    pub bundle: PathBuf,
    /// Keep the network namespace's contents (no empty_ns network).
    pub keep_network: bool,
    /// Descriptors for the restored init's stdin, stdout, stderr where they were pipes.
    pub stdio: [Option<OwnedFd>; 3],
    /// The runtime's hooks, run at `setup-namespaces` and `post-restore`.
    pub hooks: Option<Arc<HookFn>>,
    /// Where the rootfs is bound for CRIU: an absolute path; default: a fresh directory
    /// under the temp dir.
    pub criu_root: Option<PathBuf>,
}

/// The plan for checkpointing the container of `bundle` whose init is `pid`.
pub fn plan_checkpoint(o: &Options, bundle: &Path, pid: i32, keep_network: bool) -> Result<Plan> {
    plan_checkpoint_for(o, bundle, pid, keep_network, None)
}

/// As `plan_checkpoint`, for a container `runtime` ("runc", "crun") started: the images are
/// keyed so that runtime's own restore accepts them (None: runc's keys). Another name is
/// refused, as `runtime::locate` refuses it: its keys are unknown.
pub fn plan_checkpoint_for(
    o: &Options,
    bundle: &Path,
    pid: i32,
    keep_network: bool,
    runtime: Option<&str>,
) -> Result<Plan> {
    if let Some(rt) = runtime.filter(|rt| !matches!(*rt, "runc" | "crun")) {
        return Err(Error::invalid(format!(
            "unknown runtime {rt:?}: expected runc or crun (None keys the images as runc does)"
        )));
    }
    let facts = read::checkpoint_facts(bundle, pid)?;
    let mut w = apply::wants(o, keep_network);
    w.runtime = runtime.map(str::to_string);
    plan::checkpoint(&facts, &w)
}

/// `root` in a new directory of the temp dir, which the restore makes private (see
/// `private_parent`).
fn default_criu_root() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir()
        .join(format!("ckpt-criu-root-{}-{nanos}", std::process::id()))
        .join("root")
}

/// Makes `dir`, the parent of CRIU's root, mode 0700: the rootfs bound below it holds the
/// container's files, setuid programs the container's root made included, which a local
/// user could run through a path in the world-readable temp dir for as long as the restore
/// lasts. A container with a user namespace gets it owned by its root's host ids, which
/// CRIU's restore, acting as that root, passes through.
fn private_parent(dir: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    if let Some((uid, gid)) = owner {
        if let Err(e) = std::os::unix::fs::chown(dir, Some(uid), Some(gid)) {
            let _ = std::fs::remove_dir(dir);
            return Err(Error::io(
                format!("giving {} to the container's root", dir.display()),
                e,
            ));
        }
    }
    Ok(())
}

/// The host uid and gid of the container's root, when it has a user namespace of its own.
fn userns_root(spec: &oci_spec::runtime::Spec) -> Option<(u32, u32)> {
    let l = spec.linux().as_ref()?;
    let host = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        m.as_ref()?
            .iter()
            .find(|x| x.container_id() == 0)
            .map(|x| x.host_id())
    };
    Some((host(l.uid_mappings())?, host(l.gid_mappings())?))
}

/// The plan for restoring the checkpoint in the options' image path into `req.bundle`.
pub fn plan_restore(o: &Options, req: &RestoreRequest) -> Result<Plan> {
    plan::restore(&restore_facts(o, req)?, &apply::wants(o, req.keep_network))
}

/// What a restore plan is made from: the bundle, the host, the checkpoint's record.
fn restore_facts(o: &Options, req: &RestoreRequest) -> Result<RestoreFacts> {
    if let Some(r) = &req.criu_root {
        // CRIU resolves a relative root against its own working directory, and fails only
        // once it has created the tree.
        crate::options::check_path("CRIU's root (criu_root)", r.as_os_str())?;
        if !r.is_absolute() {
            return Err(Error::invalid(format!(
                "CRIU's root (criu_root) {} is not an absolute path",
                r.display()
            )));
        }
    }
    let images = o.image_dir()?;
    let given = [0, 1, 2].map(|i| req.stdio[i].is_some());
    let root = req.criu_root.clone().unwrap_or_else(default_criu_root);
    read::restore_facts(&req.bundle, images, root, given, req.hooks.is_some())
}

/// Checkpoints the container: descriptors.json and ckpt-container.json beside CRIU's images.
/// `o` is taken mutable because the plan's CRIU options are put on it for the dump; they are
/// taken off again before this returns, on every path, leaving `o` as the caller set it.
pub fn checkpoint(
    o: &mut Options,
    bundle: &Path,
    pid: i32,
    keep_network: bool,
) -> Result<(Plan, Stats)> {
    checkpoint_for(o, bundle, pid, keep_network, None)
}

/// As `checkpoint`, for a container `runtime` started (see `plan_checkpoint_for`).
pub fn checkpoint_for(
    o: &mut Options,
    bundle: &Path,
    pid: i32,
    keep_network: bool,
    runtime: Option<&str>,
) -> Result<(Plan, Stats)> {
    o.check_cancelled()?;
    let p = plan_checkpoint_for(o, bundle, pid, keep_network, runtime)?;
    let _busy = lock_freezer(&p)?;
    if let Some(cg) = freeze_first(&p) {
        stopped::refuse(Path::new(cg))?;
    }
    let images = o.image_dir()?.to_path_buf();
    let dir = crate::paths::open_dir("image path", &images, true)?;
    // ckpt's files are written under temporary names before the dump (so a directory that
    // cannot take them fails before CRIU runs) and renamed into place only once the dump
    // succeeded: a checkpoint that fails, before CRIU or in it, leaves the files of an earlier
    // checkpoint in this directory as they were, also those of another checkpoint that holds
    // the directory's lock.
    let mut staged = Staged(vec![]);
    let lazy_dump = o.lazy_pages == Some(true);
    let result = (|| {
        let files = [
            (DESCRIPTORS_FILE, serde_json::to_string(&p.descriptors)),
            (RECORD_FILE, serde_json::to_string_pretty(&p.record)),
        ];
        for (name, text) in files {
            let text = text.map_err(|e| Error::invalid(format!("encoding {name}: {e}")))?;
            let tmp = stage(&dir.path, name, &text)?;
            staged.0.push((tmp, dir.path.join(name)));
        }
        // A lazy dump answers only once the restoring side has fetched every page, and that
        // restore reads the images, ckpt's files included, from CRIU's status-ready on:
        // they are placed at post-dump, which CRIU reports before it.
        let lazy = lazy_dump.then(|| staged.0.clone());
        let mut o = PutBack::new(o);
        apply::apply(&p, &mut o, &mut [None, None, None])
            .and_then(|_| dump(&p, &mut o, pid, &images, lazy))
    })();
    // When the workload may be gone (killed by a dump that wrote its images, or in an unknown
    // state), the images are all that is left of it: keep them whole.
    let gone = crate::error::outcome::TREE_KILLED | crate::error::outcome::TREE_STATE_UNKNOWN;
    let keep = match &result {
        Ok(_) => true,
        Err(e) => e.outcome & gone != 0,
    };
    let mut placed: Result<()> = Ok(());
    for (tmp, target) in std::mem::take(&mut staged.0) {
        // Placed at post-dump already (a lazy dump).
        if keep && placed.is_ok() && (!lazy_dump || tmp.exists()) {
            placed = std::fs::rename(&tmp, &target).map_err(|e| {
                Error::io(
                    format!("renaming {} to {}", tmp.display(), target.display()),
                    e,
                )
            });
        }
        let _ = std::fs::remove_file(&tmp);
    }
    match (result, placed) {
        (Ok(stats), Ok(())) => Ok((p, stats)),
        (Ok(stats), Err(mut e)) => {
            // What the dump did to the workload (killed it, unless leave-running) stands.
            e.outcome = stats.outcome;
            Err(e)
        }
        (Err(mut e), _) => {
            let mounts = p
                .record
                .as_ref()
                .map(|r| r.mounts.as_slice())
                .unwrap_or(&[]);
            external::explain(&mut e, mounts);
            Err(e)
        }
    }
}

/// ckpt's files written under temporary names, removed when dropped (a panic in the caller's
/// callback included) unless they were renamed into place.
struct Staged(Vec<(PathBuf, PathBuf)>);

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in self.0.drain(..) {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Writes `text` into a new file beside `name` in `dir`, under a name no other operation
/// uses, and returns its path.
fn stage(dir: &Path, name: &str, text: &str) -> Result<PathBuf> {
    use std::io::Write;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut n = 0u32;
    loop {
        let tmp = dir.join(format!(".{name}.ckpt-{}-{nanos}-{n}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp);
        match f {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            f => {
                return f
                    .and_then(|mut f| f.write_all(text.as_bytes()))
                    .map(|_| tmp.clone())
                    .map_err(|e| {
                        let _ = std::fs::remove_file(&tmp);
                        Error::io(format!("writing {}", tmp.display()), e)
                    });
            }
        }
    }
}

/// Takes the advisory lock (flock, never waiting) on the container's v1 freezer cgroup
/// directory for the length of a checkpoint. Two checkpoints of one container at once each
/// freeze and thaw that cgroup around the other's dump: one took the other's freezing for a
/// paused container and recorded FROZEN, the container was left FROZEN, and a dump whose
/// parasite was frozen waited for ever.
fn lock_freezer(p: &Plan) -> Result<Option<crate::paths::Flock>> {
    let Some(cg) = freeze_first(p) else {
        return Ok(None);
    };
    try_lock_busy(Path::new(cg), || {
        format!("the container (freezer cgroup {cg}) is being checkpointed by another operation")
    })
}

/// The container's v1 freezer cgroup, when the plan has one.
fn freeze_first(p: &Plan) -> Option<&String> {
    p.actions.iter().find_map(|a| match &a.what {
        Action::FreezeFirst { cgroup } => Some(cgroup),
        _ => None,
    })
}

/// Takes the advisory lock (flock, never waiting) on the bundle directory for the length of a
/// restore. Two restores of one bundle at once each found the container's cgroups empty
/// before CRIU ran, and both restored it: two copies of the container in one set of cgroups,
/// writing one root file system.
fn lock_bundle(bundle: &Path) -> Result<Option<crate::paths::Flock>> {
    try_lock_busy(bundle, || {
        format!(
            "the container of bundle {} is being restored by another operation",
            bundle.display()
        )
    })
}

/// The flock of `dir`, never waiting; `InvalidState` with the message `busy` when another
/// operation holds it. A directory that cannot be opened, or a file system that cannot lock,
/// leaves the container unguarded, as before the locks: no lock and no error.
fn try_lock_busy(dir: &Path, busy: impl FnOnce() -> String) -> Result<Option<crate::paths::Flock>> {
    let Ok(f) = std::fs::File::open(dir) else {
        return Ok(None);
    };
    match crate::paths::try_lock(std::os::fd::AsFd::as_fd(&f)) {
        Ok(Some(l)) => Ok(Some(l)),
        Ok(None) => Err(Error::new(crate::error::Code::InvalidState, busy())),
        Err(_) => Ok(None),
    }
}

/// The dump itself, with the container's v1 freezer cgroup frozen first when the plan says so.
/// The operation's deadline counts from that freezing on: criu gets what is left of it. The
/// timeout and callback set on `o` here are put back by the caller's `PutBack`.
/// `lazy` (a lazy-pages dump) holds ckpt's staged files, renamed into place at post-dump with
/// the images completed there, since the restore reads them before CRIU answers.
fn dump(
    p: &Plan,
    o: &mut Options,
    pid: i32,
    images: &Path,
    lazy: Option<Vec<(PathBuf, PathBuf)>>,
) -> Result<Stats> {
    let first = p.actions.iter().find_map(|a| match &a.what {
        Action::FreezeFirst { cgroup } if o.pre_dump != Some(true) => Some(cgroup),
        _ => None,
    });
    let timeout = o.op_timeout;
    let init = init_died::hold(pid);
    let until = freezer::Until {
        deadline: timeout.map(|t| Instant::now() + t),
        cancel: o.cancel.as_ref(),
    };
    let start = match first.map(|c| freezer::start_v1(Path::new(c), &until)) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) if matches!(e.code, Code::Cancelled | Code::Timeout | Code::InvalidState) => {
            return Err(e);
        }
        // Any other trouble reading or freezing leaves the freezing to CRIU, as without this
        // step.
        _ => None,
    };
    let (running, paused) = match start {
        Some(freezer::Start::Running(r)) => (Some(r), None),
        // A paused container stays paused whatever becomes of criu.
        Some(freezer::Start::Paused(p)) => (None, Some(p)),
        None => (None, None),
    };
    let froze = running.as_ref().is_some_and(|r| r.froze);
    if let (Some(_), Some(d)) = (first, until.deadline) {
        // A deadline that passed as the cgroup froze still gives criu a moment: zero would
        // mean no timeout.
        let left = d.saturating_duration_since(Instant::now());
        o.op_timeout = Some(left.max(Duration::from_millis(1)));
    }
    // Empty tmpfs mounts are looked at only in a frozen container, which cannot fill them.
    let empties = if froze || paused.is_some() {
        empty_tmpfs(p, pid)
    } else {
        vec![]
    };
    // A dump that leaves the container running gets its images completed after CRIU's
    // answer (no notifications: each is a round trip); one that kills the container, at
    // post-dump, while a failure can still leave it running.
    let after_answer = o.leave_running == Some(true) && lazy.is_none();
    // File times lag the clock by up to a scheduler tick: a second's margin.
    let since = std::time::SystemTime::now() - Duration::from_secs(1);
    let found_running = running.is_some();
    let r = with_empty_tmpfs(o, &empties, images, !after_answer, since)
        .map(|_| {
            if let Some(files) = &lazy {
                finish_at_post_dump(o, images, found_running, files.clone());
            }
        })
        .and_then(|_| ops::checkpoint(o, pid));
    // A container found running is left running, whoever froze it meanwhile.
    let was_running = running.is_some();
    drop(running);
    let was_paused = paused.is_some();
    drop(paused);
    let stats = r.map_err(|e| init_gone(init.as_ref(), pid, e))?;
    if was_paused
        && stats.outcome & crate::error::outcome::TREE_KILLED != 0
        && let Some(c) = first
    {
        // The paused container is gone; its images say FROZEN, so a restore brings it back
        // paused: the empty cgroup it leaves must not stay FROZEN, where a restore into it
        // would freeze (and is refused).
        thaw_emptied::thaw(Path::new(c));
    }
    if after_answer {
        emptyfs::fill(images, &empties, Some(since)).map_err(|e| {
            let mut err = Error::new(
                e.code,
                format!(
                    "the dump succeeded and the container runs on, but the images of its empty tmpfs mounts could not be completed (a restore would find no mapping for them): {e}"
                ),
            );
            err.outcome = stats.outcome;
            err
        })?;
    }
    let img = images.join(cgimage::CGROUP_IMAGE);
    if was_running && img.exists() && lazy.is_none() {
        cgimage::thaw_in_image(&img).map_err(|e| {
            let mut err = Error::new(
                e.code,
                format!(
                    "the dump succeeded, but the FROZEN freezer state recorded in {} for a container found running (ckpt's own freezing, or another's meanwhile) could not be set back to THAWED (a restore would leave the container frozen): {e}",
                    img.display()
                ),
            );
            // What the dump did to the workload (killed it, unless leave-running) stands.
            err.outcome = stats.outcome;
            err
        })?;
    }
    Ok(stats)
}

/// For a lazy dump: at post-dump, after the empty tmpfs mounts are completed, sets the freezer
/// state recorded for a container found running back to THAWED and renames ckpt's staged
/// files into place, as `checkpoint_for` and `dump` do after the answer otherwise; a failure
/// fails the dump with the container left as it was.
fn finish_at_post_dump(
    o: &mut Options,
    images: &Path,
    found_running: bool,
    files: Vec<(PathBuf, PathBuf)>,
) {
    let next = o.notify.clone();
    let img = images.join(cgimage::CGROUP_IMAGE);
    let f: Arc<NotifyFn> = Arc::new(move |n: &Notification<'_>| {
        if let Some(cb) = &next {
            cb(n)?;
        }
        if n.script != notify::POST_DUMP {
            return Ok(());
        }
        if found_running && img.exists() {
            cgimage::thaw_in_image(&img).map_err(|e| {
                format!(
                    "setting the freezer state recorded in {} back to THAWED: {}",
                    img.display(),
                    e.message
                )
            })?;
        }
        for (tmp, target) in &files {
            std::fs::rename(tmp, target)
                .map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), target.display()))?;
        }
        Ok(())
    });
    o.notify = Some(f);
}

/// A criu lost while it held the container (`TREE_STATE_UNKNOWN`) may have taken the
/// container's init with it (see `init_died`), or killed it past `post-dump` without
/// leave-running: then the error says the container is gone.
fn init_gone(init: Option<&init_died::Held>, pid: i32, mut e: Error) -> Error {
    let unknown = e.outcome & crate::error::outcome::TREE_STATE_UNKNOWN != 0;
    match init.filter(|_| unknown).map(init_died::fate) {
        Some(init_died::Fate::Died) => e.message.push_str(&format!(
            "; the container's init (pid {pid}) is dead: the container is gone"
        )),
        Some(init_died::Fate::DiesWhenThawed) => e.message.push_str(&format!(
            "; the container is frozen and its init (pid {pid}) still holds CRIU's parasite code: it dies, and the container with it, once the container is resumed"
        )),
        _ => {}
    }
    e
}

/// The plan's empty-tmpfs candidates that are empty now (the container frozen).
fn empty_tmpfs(p: &Plan, pid: i32) -> Vec<emptyfs::Empty> {
    p.actions
        .iter()
        .filter_map(|a| match &a.what {
            Action::EmptyTmpfs {
                mountpoint,
                mount_id,
            } => emptyfs::check(pid, mountpoint, *mount_id),
            _ => None,
        })
        .collect()
}

/// Declares each of `empties` external for the dump; with `at_post_dump`, records it as
/// CRIU's own tmpfs at post-dump, before CRIU resumes or kills the tree (a failure there fails
/// the dump with the container left running), calling the caller's own callback, if any,
/// after. The options are put back by the caller's `PutBack`.
fn with_empty_tmpfs(
    o: &mut Options,
    empties: &[emptyfs::Empty],
    images: &Path,
    at_post_dump: bool,
    since: std::time::SystemTime,
) -> Result<()> {
    for e in empties {
        o.add_ext_mount(&e.mountpoint, &e.key)?;
    }
    if empties.is_empty() || !at_post_dump {
        return Ok(());
    }
    let next = o.notify.clone();
    let empties = empties.to_vec();
    let images = images.to_path_buf();
    let f: Arc<NotifyFn> = Arc::new(move |n: &Notification<'_>| {
        if n.script == notify::POST_DUMP {
            emptyfs::fill(&images, &empties, Some(since)).map_err(|e| e.message)?;
        }
        match &next {
            Some(cb) => cb(n),
            None => Ok(()),
        }
    });
    o.notify = Some(f);
    Ok(())
}

/// What was prepared, to be undone: by `undo`, or as after a failure when dropped without it
/// (a panic in the caller's hook).
#[derive(Default)]
struct Prepared {
    bound: Option<PathBuf>,
    root_dir: Option<PathBuf>,
    /// The private directory made to hold `root_dir` (ckpt's default CRIU root).
    root_parent: Option<PathBuf>,
    /// Who gets `root_parent`: the host ids of a user-namespaced container's root.
    root_owner: Option<(u32, u32)>,
    created: Vec<inroot::Created>,
    /// Cgroups CRIU will make (they were missing before it ran).
    cgroups: Vec<made_cgroups::Missing>,
}

impl Prepared {
    fn undo(&mut self, failed: bool) {
        if let Some(t) = self.bound.take() {
            let _ = nix::mount::umount2(&t, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(d) = self.root_dir.take() {
            let _ = std::fs::remove_dir(d);
        }
        if let Some(d) = self.root_parent.take() {
            let _ = std::fs::remove_dir(d);
        }
        // Mountpoints and cgroups stay on success: the restored container uses them (removing
        // a mountpoint would detach the container's mount on it).
        if failed {
            for c in self.created.drain(..).rev() {
                inroot::remove(&c);
            }
            // The failed restore's tree is gone (killed and reaped), so they are empty.
            made_cgroups::remove(&made_cgroups::tops(&self.cgroups));
        }
        self.created.clear();
        self.cgroups.clear();
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self.undo(true);
    }
}

fn prepare(p: &Plan, prep: &mut Prepared) -> Result<()> {
    for step in &p.actions {
        match &step.what {
            Action::BindRootfs {
                source,
                target,
                readonly,
            } => {
                if let Some(parent) = target.parent().filter(|d| !d.exists()) {
                    private_parent(parent, prep.root_owner)?;
                    prep.root_parent = Some(parent.to_path_buf());
                }
                std::fs::create_dir(target).map_err(|e| {
                    Error::io(format!("creating CRIU's root {}", target.display()), e)
                })?;
                prep.root_dir = Some(target.clone());
                // The kernel ignores the type of a bind mount; a name (runc's) rather than
                // NULL keeps valgrind's mount(2) check quiet in the C tests.
                nix::mount::mount(
                    Some(source.as_path()),
                    target.as_path(),
                    Some("bind"),
                    nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| {
                    Error::io(
                        format!(
                            "binding the rootfs {} on {}",
                            source.display(),
                            target.display()
                        ),
                        e,
                    )
                })?;
                prep.bound = Some(target.clone());
                if *readonly {
                    // Only the top mount, as the runtime made it: mounts below keep their own
                    // flags.
                    nix::mount::mount(
                        None::<&str>,
                        target.as_path(),
                        None::<&str>,
                        nix::mount::MsFlags::MS_BIND
                            | nix::mount::MsFlags::MS_REMOUNT
                            | nix::mount::MsFlags::MS_RDONLY,
                        None::<&str>,
                    )
                    .map_err(|e| {
                        Error::io(
                            format!("making CRIU's root {} read-only", target.display()),
                            e,
                        )
                    })?;
                }
            }
            Action::CreateMountpoint {
                kind,
                within,
                inner,
                ..
            } => inroot::create(within, inner, *kind, &mut prep.created)?,
            Action::WriteImageFile { .. }
            | Action::Callback { .. }
            | Action::FreezeFirst { .. }
            | Action::EmptyTmpfs { .. }
            | Action::WarmCgroupLock => {}
        }
    }
    Ok(())
}

/// Restores the checkpoint in the options' image path into the bundle's container. The
/// restored init becomes the caller's child. `Restored::made_cgroups` lists the cgroup
/// directories created for this restore, which the caller removes after the container is
/// gone, deepest first (a failed restore removes them itself). As for [`checkpoint`], the
/// plan's options are put on `o` for the call and taken off again.
pub fn restore(o: &mut Options, mut req: RestoreRequest) -> Result<(Plan, Restored)> {
    o.check_cancelled()?;
    if req.criu_root.is_none() {
        req.criu_root = Some(default_criu_root());
    }
    let facts = restore_facts(o, &req)?;
    let p = plan::restore(&facts, &apply::wants(o, req.keep_network))?;
    // Worked out once for every step below that checks or prepares them.
    let roots = p.cgroup_root_dirs(&facts.host.mounts);
    frozen_target::refuse(&roots)?;
    // CRIU hands the new terminal master over once, at orphan-pts-master: with nothing to take
    // it, ckpt closes it, the container's terminal hangs up and no one can reach it again.
    let terminal = p
        .criu
        .iter()
        .any(|s| s.what == plan::Criu::OrphanPtsMaster(true));
    if terminal && o.console_socket.is_none() && o.notify.is_none() {
        return Err(Error::invalid(
            "the container has a terminal (process.terminal in config.json): give a console socket (ckpt_opts_set_console_socket; the command's --console-socket) to receive its new terminal master, or a notification callback to take it at orphan-pts-master",
        ));
    }
    // Without a terminal CRIU has no master to send, so a runtime's listener on the socket
    // would wait for ever: refused, as runc refuses a console socket without a tty.
    if !terminal && o.console_socket.is_some() {
        return Err(Error::invalid(
            "a console socket was given (ckpt_opts_set_console_socket; the command's --console-socket) but the container has no terminal (process.terminal in config.json is not true): nothing would ever be sent to it",
        ));
    }
    // Held to the end: the occupied check below and CRIU's restore are one step for another
    // restore of the same bundle.
    let _restoring = lock_bundle(&req.bundle)?;
    occupied::refuse(&roots)?;
    let mut prep = Prepared::default();
    prep.root_owner = userns_root(&facts.bundle.spec);
    let mut o = PutBack::new(o);
    let old_notify = o.notify.clone();
    let result = (|| {
        prep.cgroups = made_cgroups::missing_dirs(&roots, &facts);
        cpuset_parents::make(&roots)?;
        prepare(&p, &mut prep)?;
        apply::apply(&p, &mut o, &mut req.stdio)?;
        if let Some(h) = req.hooks.clone() {
            let next = old_notify.clone();
            let f: Arc<NotifyFn> = Arc::new(move |n: &Notification<'_>| {
                if n.script == notify::SETUP_NAMESPACES || n.script == notify::POST_RESTORE {
                    h(n.script, n.pid)?;
                }
                match &next {
                    Some(cb) => cb(n),
                    None => Ok(()),
                }
            });
            o.notify = Some(f);
        }
        // Put back when the restore is over, whatever its result.
        let _readable = match o.image_path.as_deref() {
            Some(images) => Some(super::userns_images::let_read(images, prep.root_owner)?),
            None => None,
        };
        // Stopped and joined as the restore returns, on every path.
        let _warm = p
            .actions
            .iter()
            .any(|a| a.what == Action::WarmCgroupLock)
            .then(|| cgroup_warm::Warm::start(&cgroups::hierarchies(&facts.host.mounts)))
            .flatten();
        ops::restore(&o)
    })();
    drop(o);
    // Read before `undo`, which forgets them.
    let made = match &result {
        Ok(_) => made_cgroups::created(&prep.cgroups),
        Err(_) => vec![],
    };
    prep.undo(result.is_err());
    let result = result.map_err(|mut e| {
        external::explain(&mut e, &facts.record.mounts);
        e
    });
    result.map(|mut r| {
        r.made_cgroups = made;
        (p, r)
    })
}
