//! Import and restore: an archive from Podman, CRI-O or ckpt becomes a running container.
//! The archive is imported into a bundle directory ([`super::import()`]), the container gets its
//! root file system (the caller's directory, or an overlay over the image's root file system
//! with its upper layer in the bundle) with the archive's changes applied, the engine's
//! per-container files its mounts need, and then the container layer restores it
//! ([`crate::container::restore`]). Everything that can be checked on this host is checked
//! before CRIU starts.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::container::{self, HookFn, Plan, RestoreRequest};
use crate::error::{Code, Error, Result};
use crate::ops::Restored;
use crate::options::Options;

use super::import::{self, ImportOptions, Imported};
use super::reader::Limits;

/// Where the restored container's root file system comes from.
#[derive(Clone, Debug)]
pub enum NewRootfs {
    /// The caller's directory, used as it is: the archive's changes are applied to it.
    Dir(PathBuf),
    /// An overlay mounted on `BUNDLE/rootfs` over `lower` (the image's root file system,
    /// left untouched), its upper and work directories in the bundle; the archive's changes
    /// go to the upper layer.
    Overlay {
        /// The image's root file system.
        lower: PathBuf,
    },
}

/// What an import-and-restore needs.
pub struct ImportRestore {
    /// Where the archive is unpacked (new or empty): it becomes the container's OCI bundle
    /// (`config.json`, `checkpoint/`, the engine's files) and stays after the restore.
    pub bundle: PathBuf,
    /// The container's root file system.
    pub rootfs: NewRootfs,
    /// The new name (defaults as for [`ImportOptions`]).
    pub name: Option<String>,
    /// The new id (defaults as for [`ImportOptions`]).
    pub id: Option<String>,
    /// Namespace type and the path to join (`None`: a new one).
    pub namespaces: Vec<(String, Option<String>)>,
    /// What the archive may hold.
    pub limits: Limits,
    /// Keep the network namespace's contents (no empty_ns network).
    pub keep_network: bool,
    /// Descriptors for the restored init's stdin, stdout, stderr where they were pipes.
    pub stdio: [Option<OwnedFd>; 3],
    /// The runtime's hooks, as for [`container::RestoreRequest`].
    pub hooks: Option<Arc<HookFn>>,
}

/// A restored import.
#[derive(Debug)]
pub struct RestoredImport {
    /// The import: the bundle, the rewritten spec, what changed.
    pub imported: Imported,
    /// The container restore's plan.
    pub plan: Plan,
    /// The restored container's init (the caller's child).
    pub restored: Restored,
    /// The files ckpt provided for bind mounts whose source was the old container's.
    pub provided: Vec<String>,
}

const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Per-container files engines bind into a container (Podman's and CRI-O's userdata): files,
/// not directories, when ckpt has to make them.
const ENGINE_FILES: [&str; 5] = [
    "hosts",
    "hostname",
    "resolv.conf",
    ".containerenv",
    "run/.containerenv",
];

/// Imports `archive` into `req.bundle` and restores the container. The options' image path
/// is set to the bundle's `checkpoint/`. On failure the bundle directory is removed (emptied
/// when it existed before), the overlay is unmounted, and changes already applied to a
/// caller's rootfs directory stay.
pub fn restore(o: &mut Options, archive: &Path, req: ImportRestore) -> Result<RestoredImport> {
    // A token triggered before the call touches nothing; one triggered while the archive is
    // unpacked ends the import at the next entry.
    o.check_cancelled()?;
    let existed = req.bundle.exists();
    let bundle = req.bundle.clone();
    let mut mounted: Option<PathBuf> = None;
    // A panic of the caller's callback or hook comes back from the container restore once
    // that has cleaned up: the overlay and the bundle are undone as on a failure, then it goes
    // on in the caller.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        restore_into(o, archive, req, &mut mounted, existed)
    }))
    .unwrap_or_else(|p| {
        undo(&mut mounted, &bundle, existed);
        std::panic::resume_unwind(p)
    })
}

/// Detaches the overlay mounted for the restore, if any.
fn unmount(mounted: &mut Option<PathBuf>) {
    if let Some(m) = mounted.take() {
        let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// What a failed (or panicking) restore undoes: the overlay, and the bundle's contents.
fn undo(mounted: &mut Option<PathBuf>, bundle: &Path, existed: bool) {
    unmount(mounted);
    clean_bundle(bundle, existed);
}

fn clean_bundle(bundle: &Path, existed: bool) {
    if existed {
        if let Ok(it) = fs::read_dir(bundle) {
            for e in it.flatten() {
                let p = e.path();
                let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
            }
        }
    } else {
        let _ = fs::remove_dir_all(bundle);
    }
}

fn restore_into(
    o: &mut Options,
    archive: &Path,
    mut req: ImportRestore,
    mounted: &mut Option<PathBuf>,
    existed: bool,
) -> Result<RestoredImport> {
    check_rootfs_source(&req.rootfs)?;
    check_private_bundle(&req)?;
    check_namespace_paths(&req.namespaces)?;
    // config.json is written once, below, when the spec is complete.
    let (mut imp, joined) = import::import_unwritten(
        archive,
        &req.bundle,
        &ImportOptions {
            limits: req.limits,
            name: req.name.clone(),
            id: req.id.clone(),
            rootfs: None,
            namespaces: req.namespaces.clone(),
        },
        o.cancel(),
    )?;
    let prepared = (|| {
        o.check_cancelled()?;
        check_archived_namespaces(&joined, &req.namespaces)?;
        let rootfs = match &req.rootfs {
            NewRootfs::Dir(d) => d.clone(),
            NewRootfs::Overlay { lower } => {
                let merged = mount_overlay(&imp.dir, lower)?;
                *mounted = Some(merged.clone());
                merged
            }
        };
        imp.set_rootfs_unwritten(&rootfs, &req.limits)?;
        let mut provided = provide_engine_files(&mut imp, &req.limits)?;
        if let Some(line) = match_root_mode(&imp.images_dir, &rootfs, &req.limits)? {
            provided.push(line);
        }
        import::write_spec(&imp.dir, &imp.spec)?;
        Ok(provided)
    })();
    let provided = match prepared {
        Ok(p) => p,
        Err(e) => {
            undo(mounted, &req.bundle, existed);
            return Err(e);
        }
    };
    o.set_image_path(&imp.images_dir)?;
    let cr = RestoreRequest {
        bundle: imp.dir.clone(),
        keep_network: req.keep_network,
        stdio: std::mem::take(&mut req.stdio),
        hooks: req.hooks.clone(),
        criu_root: None,
    };
    match container::restore(o, cr) {
        Ok((plan, restored)) => {
            // The restored container's mount namespace holds its own reference to the
            // overlay: the host's mount is not needed any more.
            unmount(mounted);
            Ok(RestoredImport {
                imported: imp,
                plan,
                restored,
                provided,
            })
        }
        Err(mut e) => {
            undo(mounted, &req.bundle, existed);
            log_removed_with_bundle(&mut e, &req.bundle);
            Err(e)
        }
    }
}

/// CRIU's log lies in the bundle's `checkpoint/` unless a work path puts it elsewhere: once
/// the bundle is removed, the error must not name a log that is gone, and says how to keep it.
fn log_removed_with_bundle(e: &mut crate::error::Error, bundle: &Path) {
    if let Some(p) = e.log_path.take_if(|p| p.starts_with(bundle)) {
        e.message.push_str(&format!(
            "; CRIU's log {} was removed with the bundle directory (a work path, ckpt_opts_set_work_path; the command's --work-path, keeps it)",
            p.display()
        ));
    }
}

fn check_rootfs_source(r: &NewRootfs) -> Result<()> {
    let (p, what) = match r {
        NewRootfs::Dir(d) => (d, "the new rootfs"),
        NewRootfs::Overlay { lower } => (lower, "the image's rootfs (overlay lower layer)"),
    };
    if !p.is_absolute() {
        return Err(Error::invalid(format!(
            "{what} {} is not an absolute path",
            p.display()
        )));
    }
    if !p.is_dir() {
        return Err(Error::new(
            Code::NotFound,
            format!("{what} {} is not a directory", p.display()),
        ));
    }
    if let NewRootfs::Overlay { lower } = r {
        let s = lower.to_string_lossy();
        if s.contains([',', ':', '\\']) {
            return Err(Error::invalid(format!(
                "the image's rootfs {s} holds a character overlayfs options cannot carry (',', ':' or '\\\\')"
            )));
        }
    }
    Ok(())
}

/// With an overlay, the archive's files (setuid programs included) stay in the bundle's
/// upper layer after the restore: an existing bundle others may enter would let any local
/// user run them. A bundle ckpt creates is 0700 (`import`).
fn check_private_bundle(req: &ImportRestore) -> Result<()> {
    if !matches!(req.rootfs, NewRootfs::Overlay { .. }) {
        return Ok(());
    }
    match fs::symlink_metadata(&req.bundle) {
        Ok(md) if md.is_dir() && md.mode() & 0o077 != 0 => Err(Error::invalid(format!(
            "bundle {} has mode {:o}: the overlay's upper layer there holds the archive's files, setuid programs included, which other users could reach; give a new path (made 0700) or a directory of mode 0700",
            req.bundle.display(),
            md.mode() & 0o7777
        ))),
        _ => Ok(()),
    }
}

fn check_namespace_paths(ns: &[(String, Option<String>)]) -> Result<()> {
    for (t, p) in ns {
        let Some(p) = p else { continue };
        let st = nix::sys::statfs::statfs(Path::new(p)).map_err(|e| {
            Error::new(
                Code::NotFound,
                format!("the {t} namespace to join, {p}, is absent here: {e}"),
            )
        })?;
        if st.filesystem_type().0 as i64 != NSFS_MAGIC {
            return Err(Error::invalid(format!(
                "the {t} namespace to join, {p}, is not a namespace file (nsfs)"
            )));
        }
    }
    Ok(())
}

/// A network or pid namespace the archived container joined by path was dumped as external:
/// CRIU's images expect one to join, which must be named on this host.
/// `joined`: the namespaces the archived spec joined (`import::Joined`).
fn check_archived_namespaces(
    joined: &import::Joined,
    given: &[(String, Option<String>)],
) -> Result<()> {
    for (t, path) in joined {
        let t = t.as_str();
        if t != "network" && t != "pid" {
            continue;
        }
        let named = given.iter().any(|(gt, gp)| gt == t && gp.is_some());
        if !named {
            let here = if Path::new(path).exists() {
                "it exists here, but a namespace of the machine that wrote the archive is not joined by its name"
            } else {
                "that path is absent here"
            };
            return Err(Error::new(
                Code::NotFound,
                format!(
                    "the archived container joined the {t} namespace {path} ({here}); its checkpoint \
                     expects a {t} namespace to join on restore: name one (namespace {t}=PATH, e.g. \
                     one made with `ip netns add`)"
                ),
            ));
        }
    }
    Ok(())
}

/// Mounts an overlay over `lower` on `dir/rootfs`, its upper and work directories in `dir`.
fn mount_overlay(dir: &Path, lower: &Path) -> Result<PathBuf> {
    let upper = dir.join("rootfs-upper");
    let work = dir.join("rootfs-work");
    let merged = dir.join("rootfs");
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    // The root directory's mode and owner are the image's: CRIU checks the root's mode
    // against the checkpoint's.
    let md =
        fs::metadata(lower).map_err(|e| Error::io(format!("reading {}", lower.display()), e))?;
    for d in [&upper, &merged] {
        fs::set_permissions(d, fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(|e| Error::io(format!("setting the mode of {}", d.display()), e))?;
        std::os::unix::fs::chown(d, Some(md.uid()), Some(md.gid()))
            .map_err(|e| Error::io(format!("setting the owner of {}", d.display()), e))?;
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        Error::io(
            format!(
                "mounting an overlay over {} on {}",
                lower.display(),
                merged.display()
            ),
            io::Error::from(e),
        )
    })?;
    Ok(merged)
}

/// Gives the root directory the mode CRIU recorded for it: CRIU refuses a root whose mode
/// differs ("File . has bad mode"), and an image's root directory may not carry the mode
/// the engine's mount had.
fn match_root_mode(images: &Path, rootfs: &Path, limits: &Limits) -> Result<Option<String>> {
    let Some(want) = super::criu_image::root_mode(images, limits.max_document_bytes)? else {
        return Ok(None);
    };
    let md =
        fs::metadata(rootfs).map_err(|e| Error::io(format!("reading {}", rootfs.display()), e))?;
    if md.mode() & 0o7777 == want & 0o7777 {
        return Ok(None);
    }
    // The mode comes from the archive: one that lets others write the root, or a setuid or
    // setgid bit, is not given to a directory of this host (the caller's rootfs stays after
    // the restore, also a failed one).
    if want & 0o6022 != 0 {
        return Err(Error::invalid(format!(
            "the checkpoint records mode {:o} for the root directory, writable by others or setuid/setgid: {} is not given that mode",
            want & 0o7777,
            rootfs.display()
        )));
    }
    fs::set_permissions(rootfs, fs::Permissions::from_mode(want & 0o7777))
        .map_err(|e| Error::io(format!("setting the mode of {}", rootfs.display()), e))?;
    Ok(Some(format!(
        "/: mode {:o} -> {:o}, as the checkpoint recorded it",
        md.mode() & 0o7777,
        want & 0o7777
    )))
}

fn is_bind(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("bind")
        || m.get("options")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// The part of `source` after the directory named by `id`, as plain components.
fn after_id(source: &str, id: &str) -> Option<PathBuf> {
    let mut parts = Path::new(source).components();
    parts.find(|c| c.as_os_str() == id)?;
    let p: PathBuf = parts.collect();
    if p.as_os_str().is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(p)
}

/// A named volume absent here (`.../volumes/NAME/_data`, Podman's layout) whose contents the
/// archive carries (`volumes/NAME.tar`, written by `podman container checkpoint --export`
/// unless `--ignore-volumes`): unpacked into `BUNDLE/ctr-files/volumes/NAME`, checked as the
/// rootfs diff is, which becomes the mount's source. The new source and the line for
/// `provided`.
fn provide_volume(
    dir: &Path,
    files: &Path,
    src: &str,
    dest: &str,
    limits: &Limits,
) -> Result<Option<(std::path::PathBuf, String)>> {
    let p = Path::new(src);
    let (Some("_data"), Some(name)) = (
        p.file_name().and_then(|f| f.to_str()),
        p.parent()
            .filter(|v| v.parent().and_then(Path::file_name) == Some("volumes".as_ref()))
            .and_then(Path::file_name)
            .and_then(|n| n.to_str()),
    ) else {
        return Ok(None);
    };
    let tar = dir.join("volumes").join(format!("{name}.tar"));
    if name.is_empty() || name.starts_with('.') || !tar.is_file() {
        return Ok(None);
    }
    let target = files.join("volumes").join(name);
    fs::create_dir_all(&target)
        .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
    let f = fs::File::open(&tar).map_err(|e| Error::io(format!("opening {}", tar.display()), e))?;
    let n = super::rootfs::apply(&target, f, &[], limits.max_entries)?;
    let line = format!(
        "{dest}: {} (volume {name}, absent here: {n} entries of volumes/{name}.tar)",
        target.display()
    );
    Ok(Some((target, line)))
}

/// Bind mounts whose source is the engine's per-container file of the old container
/// (`/run/containers/.../ID/userdata/hosts`) get a source in the bundle: a copy of the old
/// one when it is still on this host, else one made the way engines make it (hostname,
/// hosts, resolv.conf from this host, an empty `.containerenv`, a directory for the rest;
/// `/dev/shm` gets `devshm-checkpoint.tar`'s contents). Other missing sources are left for
/// the container layer to refuse.
fn provide_engine_files(imp: &mut Imported, limits: &Limits) -> Result<Vec<String>> {
    // Only engine ids (at least 12 hex digits, Podman's and CRI-O's are 64) mark a source as
    // the container's own file: a short or odd id would match unrelated host paths.
    let ids: Vec<String> = [imp.config.id.clone(), imp.old_id.clone()]
        .into_iter()
        .flatten()
        .filter(|i| i.len() >= 12 && i.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    let hostname = imp
        .spec
        .get("hostname")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let files = imp.dir.join("ctr-files");
    let mut provided = Vec::new();
    let Some(mounts) = imp.spec.get_mut("mounts").and_then(Value::as_array_mut) else {
        return Ok(provided);
    };
    for m in mounts.iter_mut() {
        if !is_bind(m) {
            continue;
        }
        let (Some(src), Some(dest)) = (
            m.get("source").and_then(Value::as_str).map(str::to_string),
            m.get("destination")
                .and_then(Value::as_str)
                .map(str::to_string),
        ) else {
            continue;
        };
        if Path::new(&src).exists() {
            continue;
        }
        if let Some(line) = provide_volume(&imp.dir, &files, &src, &dest, limits)? {
            imp.spec_changes
                .push(format!("mount source {src:?} -> {:?}", line.0.display()));
            m["source"] = Value::String(line.0.to_string_lossy().into_owned());
            provided.push(line.1);
            continue;
        }
        let Some((id, rel)) = ids
            .iter()
            .find_map(|id| after_id(&src, id).map(|r| (id.clone(), r)))
        else {
            continue;
        };
        let target = files.join(&rel);
        if let Some(p) = target.parent() {
            fs::create_dir_all(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        }
        let old_src = imp
            .old_id
            .as_deref()
            .and_then(|old| super::idswap::in_path(&src, &id, old))
            // Only a regular file or a directory: the archive names the old id, and another
            // container's engine directory holds FIFOs (conmon's `ctl`, `winsz`), whose copy
            // would block the restore for ever.
            .filter(|s| *s != src)
            .filter(|s| fs::metadata(s).is_ok_and(|m| m.is_file() || m.is_dir()));
        let how = if let Some(old) = &old_src {
            if Path::new(old).is_dir() {
                fs::create_dir(&target)
                    .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
                format!("an empty directory (as {old})")
            } else {
                fs::copy(old, &target).map_err(|e| Error::io(format!("copying {old}"), e))?;
                format!("a copy of {old}")
            }
        } else {
            let name = rel.to_string_lossy();
            let base = rel
                .file_name()
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = ENGINE_FILES.iter().any(|f| name.ends_with(f));
            if file {
                let text = match base.as_str() {
                    "hostname" if !hostname.is_empty() => format!("{hostname}\n"),
                    "hosts" => {
                        let mut t = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
                        if !hostname.is_empty() {
                            t.push_str(&format!("127.0.1.1\t{hostname}\n"));
                        }
                        t
                    }
                    "resolv.conf" => fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
                    _ => String::new(),
                };
                fs::write(&target, text)
                    .map_err(|e| Error::io(format!("writing {}", target.display()), e))?;
                format!("made for {dest}")
            } else {
                fs::create_dir(&target)
                    .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
                format!("an empty directory for {dest}")
            }
        };
        let mut line = format!("{dest}: {} ({how})", target.display());
        if dest == "/dev/shm" && target.is_dir() {
            let tar = imp.dir.join("devshm-checkpoint.tar");
            if tar.is_file() {
                let f = fs::File::open(&tar)
                    .map_err(|e| Error::io("opening devshm-checkpoint.tar", e))?;
                let n = super::rootfs::apply(&target, f, &[], limits.max_entries)?;
                line.push_str(&format!(", {n} entries of devshm-checkpoint.tar"));
            }
        }
        imp.spec_changes
            .push(format!("mount source {src:?} -> {:?}", target.display()));
        m["source"] = Value::String(target.to_string_lossy().into_owned());
        provided.push(line);
    }
    Ok(provided)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_id_takes_plain_components_only() {
        let id = "0123456789abcdef";
        assert_eq!(
            after_id(&format!("/run/c/{id}/userdata/hosts"), id),
            Some(PathBuf::from("userdata/hosts"))
        );
        assert_eq!(after_id(&format!("/run/c/{id}"), id), None);
        assert_eq!(after_id(&format!("/run/c/{id}/../../etc/passwd"), id), None);
        assert_eq!(after_id("/run/c/other/hosts", id), None);
        assert_eq!(after_id(&format!("/run/c/x{id}/hosts"), id), None);
    }
}
