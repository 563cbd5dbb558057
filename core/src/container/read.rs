//! Reading the host into facts: the only part of the layer's decisions that touches the file
//! system. Every failure names the file and what was wrong with it, before CRIU starts.

use super::facts::*;
use super::{cgroups, created, mountinfo, rootfs};
use crate::error::{Code, Error, Result};
use oci_spec::runtime::Spec;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn read_text(path: &Path, what: &str) -> Result<String> {
    crate::paths::read_small(path).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            Code::NotFound
        } else {
            Code::Io
        };
        Error::new(code, format!("{what} {}: {e}", path.display()))
    })
}

/// The `org.criu.config` annotation names a file CRIU reads with ckpt's privileges, running
/// its `action-script` lines as shell commands: honoured only when config.json and that file
/// belong to root or to ckpt's own user and no one else may write them. Otherwise the owner
/// of a bundle (a rootless container's, in its user's directory) ran commands as root.
fn check_criu_config(config: &Path, spec: &Spec) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(file) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(super::plan::CONFIG_ANNOTATION))
        .filter(|v| !v.is_empty())
    else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for p in [config, Path::new(file)] {
        let md = std::fs::metadata(p).map_err(|e| {
            Error::io(
                format!(
                    "the {} annotation of {}: {}",
                    super::plan::CONFIG_ANNOTATION,
                    config.display(),
                    p.display()
                ),
                e,
            )
        })?;
        if (md.uid() != 0 && md.uid() != me) || md.mode() & 0o022 != 0 {
            return Err(Error::invalid(format!(
                "the {} annotation of {} names CRIU configuration file {file}, but {} belongs to uid {} with mode {:o}: CRIU would run that file's action scripts with ckpt's privileges; it must belong to root (or ckpt's user) and be writable by no one else",
                super::plan::CONFIG_ANNOTATION,
                config.display(),
                p.display(),
                md.uid(),
                md.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// config.json and the rootfs of a bundle.
pub fn bundle(dir: &Path) -> Result<Bundle> {
    if !dir.is_dir() {
        return Err(Error::new(
            Code::NotFound,
            format!("bundle {} is not a directory", dir.display()),
        ));
    }
    let config = dir.join("config.json");
    if !config.exists() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "{} does not exist: {} is not an OCI bundle",
                config.display(),
                dir.display()
            ),
        ));
    }
    let text = read_text(&config, "reading")?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(format!(
            "{} is not a valid OCI runtime spec: {e}",
            config.display()
        ))
    })?;
    check_criu_config(&config, &spec)?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| Error::invalid(format!("{} has no root.path", config.display())))?;
    let rootfs = if root.is_absolute() {
        root
    } else {
        dir.join(root)
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            Error::new(
                Code::NotFound,
                format!(
                    "rootfs {} (root.path of {}) does not exist or is not a directory",
                    rootfs.display(),
                    config.display()
                ),
            )
        })?;
    let spec = real_bind_sources(dir, &rootfs, spec);
    Ok(Bundle {
        dir: dir.to_path_buf(),
        spec,
        rootfs,
    })
}

/// The spec with each bind mount's source as the runtime mounted it: relative to the bundle
/// (where runc and crun run) and with its symbolic links resolved, as mount(2) resolved them.
/// CRIU refuses a symbolic link as an external mount's source ("Failed to move_mount ...:
/// Invalid argument"). A source that does not exist is kept as written, for the refusal that
/// names it. Nor is a source whose path passes through the rootfs resolved: the container
/// may have replaced what the runtime mounted there with a link to anywhere on the host.
fn real_bind_sources(dir: &Path, rootfs: &Path, mut spec: Spec) -> Spec {
    let Some(mounts) = spec.mounts().clone() else {
        return spec;
    };
    let mounts = mounts
        .into_iter()
        .map(|mut m| {
            if super::plan::is_bind(&m) {
                let real = m
                    .source()
                    .as_ref()
                    .map(|s| dir.join(s))
                    .filter(|s| !through_rootfs(s, rootfs))
                    .and_then(|s| std::fs::canonicalize(s).ok());
                if real.is_some() {
                    m.set_source(real);
                }
            }
            m
        })
        .collect();
    spec.set_mounts(Some(mounts));
    spec
}

/// Whether resolving `path` walks through `rootfs`: some prefix of it (links in the prefix
/// resolved) is the rootfs directory.
fn through_rootfs(path: &Path, rootfs: &Path) -> bool {
    let Ok(want) = std::fs::metadata(rootfs) else {
        return false;
    };
    path.ancestors()
        .any(|a| std::fs::metadata(a).is_ok_and(|m| (m.dev(), m.ino()) == (want.dev(), want.ino())))
}

/// Reads the host: ckpt's own mount table, iptables-restore, runc.conf, /run's type.
pub fn host() -> Result<Host> {
    let mounts = mountinfo::parse(&read_text(Path::new("/proc/self/mountinfo"), "reading")?)?;
    let iptables_restore = super::netlock::on_path("iptables-restore").is_some();
    Ok(Host {
        mounts,
        iptables_restore,
        runc_conf: Path::new(super::plan::RUNC_CONF).exists(),
        run_tmpfs: nix::sys::statfs::statfs("/run")
            .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            .unwrap_or(false),
    })
}

fn kind_of(p: &Path) -> Option<Kind> {
    std::fs::metadata(p)
        .ok()
        .map(|m| if m.is_dir() { Kind::Dir } else { Kind::File })
}

/// Checks that `pid` is the init of the container whose bundle is `b`.
fn check_init(b: &Bundle, pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::invalid(format!("pid {pid} is not a process id")));
    }
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !proc.exists() {
        return Err(Error::new(
            Code::NotFound,
            format!("process {pid} does not exist"),
        ));
    }
    // A zombie's /proc entries cannot be followed: say what it is, not that a read failed.
    let stat = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.split_whitespace().next());
    if matches!(state, Some("Z" | "X")) {
        return Err(Error::new(
            Code::InvalidState,
            format!(
                "process {pid} has exited (a zombie not yet reaped): the container is not running"
            ),
        ));
    }
    created::refuse(created::Seen::Init(pid))?;
    let root = std::fs::metadata(proc.join("root"))
        .map_err(|e| Error::io(format!("reading the root of process {pid}"), e))?;
    let want = std::fs::metadata(&b.rootfs).map_err(|e| Error::io("reading the rootfs", e))?;
    if (root.dev(), root.ino()) != (want.dev(), want.ino()) {
        return Err(Error::new(
            Code::InvalidState,
            format!(
                "process {pid} is not in the container of bundle {}: its root directory is not the rootfs {}",
                b.dir.display(),
                b.rootfs.display()
            ),
        ));
    }
    // Every runc and crun container has a mount namespace of its own. A process in ckpt's
    // (a host daemon, pid 1, ckpt's caller, a process merely chrooted into the rootfs), or a
    // rootfs that is ckpt's own root, is no container's init, whatever the bundle says: a
    // checkpoint kills the tree it dumps.
    let own_root = std::fs::metadata("/").map_err(|e| Error::io("reading /", e))?;
    let same_mnt = match (
        std::fs::metadata(proc.join("ns/mnt")),
        std::fs::metadata("/proc/self/ns/mnt"),
    ) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Error::io(
                format!("reading the mount namespace of process {pid}"),
                e,
            ));
        }
    };
    if same_mnt || (own_root.dev(), own_root.ino()) == (want.dev(), want.ino()) {
        return Err(Error::new(
            Code::InvalidState,
            format!(
                "process {pid} is not a container's init: {}",
                if same_mnt {
                    "it shares ckpt's own mount namespace"
                } else {
                    "the bundle's rootfs is ckpt's own root directory"
                }
            ),
        ));
    }
    let pidns = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .into_iter()
        .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid);
    if let Some(path) = pidns.as_ref().and_then(|n| n.path().as_ref()) {
        // A pid namespace joined by path (another container's, a pod's) has its own init
        // already; the container's init is the one process of the container whose parent, the
        // runtime or whoever inherited it, is outside that namespace.
        let status = read_text(&proc.join("status"), "reading")?;
        let ppid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        let ns = |p: &str| std::fs::metadata(format!("/proc/{p}/ns/pid")).map(|m| m.ino());
        if ppid != "0"
            && ns(&ppid)
                .ok()
                .is_some_and(|i| Some(i) == ns(&pid.to_string()).ok())
        {
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "process {pid} is not the container's init: its parent {ppid} is in the same pid namespace (the one config.json joins, {}), where the container's init has a parent outside it",
                    path.display()
                ),
            ));
        }
    } else if pidns.is_some() {
        let status = read_text(&proc.join("status"), "reading")?;
        let inner = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last().map(str::to_string));
        if inner.as_deref() != Some("1") {
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "process {pid} is not the container's init: it is pid {} in the container's pid namespace, not 1",
                    inner.unwrap_or_else(|| "?".into())
                ),
            ));
        }
    }
    Ok(())
}

/// What a checkpoint decides from: the bundle, the host and the running init `pid`.
pub fn checkpoint_facts(bundle_dir: &Path, pid: i32) -> Result<CheckpointFacts> {
    let b = bundle(bundle_dir)?;
    check_init(&b, pid)?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let mounts = mountinfo::parse(&read_text(&proc.join("mountinfo"), "reading")?)?;
    let cgroups = cgroups::parse(&read_text(&proc.join("cgroup"), "reading")?)?;
    let croot = proc.join("root");
    let mut kinds = BTreeMap::new();
    let linux = b.spec.linux().clone().unwrap_or_default();
    let masked = linux.masked_paths().clone().unwrap_or_default();
    for p in mounts.iter().map(|m| m.mount_point.clone()).chain(masked) {
        if let Some(k) = kind_of(&rootfs::host_path(&croot, &p)) {
            kinds.insert(p, k);
        }
    }
    let mut ns_inodes = BTreeMap::new();
    for n in linux.namespaces().clone().unwrap_or_default() {
        if let Some(p) = n.path() {
            let md = std::fs::metadata(p).map_err(|e| {
                Error::new(
                    Code::NotFound,
                    format!("{} namespace {} of config.json: {e}", n.typ(), p.display()),
                )
            })?;
            ns_inodes.insert(n.typ().to_string(), md.ino());
        }
    }
    let mut resolved = BTreeMap::new();
    for m in b.spec.mounts().clone().unwrap_or_default() {
        let d = m.destination().to_string_lossy().into_owned();
        resolved.insert(d.clone(), rootfs::resolve_in(&croot, &d)?);
    }
    let stdio = (0..3)
        .map(|i| {
            std::fs::read_link(proc.join(format!("fd/{i}")))
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let own_net = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network && n.path().is_none());
    let veths = if own_net {
        super::veth::read(pid)
    } else {
        None
    };
    Ok(CheckpointFacts {
        host: host()?,
        bundle: b,
        running: Running {
            pid,
            mounts,
            cgroups,
            kinds,
            ns_inodes,
            resolved,
            stdio,
            veths,
        },
    })
}

/// The record a checkpoint left in `images`: ckpt's own, or one derived from what `runc
/// checkpoint` leaves (descriptors.json) and the spec.
pub fn record(images: &Path, b: &Bundle, host: &Host) -> Result<Record> {
    let own = images.join(RECORD_FILE);
    if own.exists() {
        let text = read_text(&own, "reading")?;
        return serde_json::from_str(&text).map_err(|e| {
            Error::invalid(format!(
                "{} is not ckpt's container record: {e}",
                own.display()
            ))
        });
    }
    if !images.join("inventory.img").exists() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "image path {} holds no checkpoint (inventory.img is missing)",
                images.display()
            ),
        ));
    }
    let desc = images.join(DESCRIPTORS_FILE);
    // Every runtime writes descriptors.json beside a container's images (runc, crun, Podman,
    // CRI-O; ckpt writes its record too). Without either, the images are a process tree's:
    // CRIU restores that tree as it was, outside the bundle, and the restore would report a
    // container that is not there.
    if !desc.exists() {
        return Err(Error::invalid(format!(
            "image path {} holds a process tree's checkpoint, not a container's (neither {RECORD_FILE} nor \
             {DESCRIPTORS_FILE} is there): restore it without a bundle",
            images.display()
        )));
    }
    let stdio: Vec<String> = serde_json::from_str(&read_text(&desc, "reading")?).map_err(|e| {
        Error::invalid(format!(
            "{} is not runc's descriptors.json: {e}",
            desc.display()
        ))
    })?;
    let kinds = b
        .spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| {
            let s = m.source().as_ref()?;
            Some((s.to_string_lossy().into_owned(), kind_of(s)?))
        })
        .collect();
    Ok(super::plan::record_from_runc(
        &b.spec,
        &host.mounts,
        stdio,
        &kinds,
    ))
}

/// The spec's own file system mounts (not binds, not among the record's external mounts)
/// whose mountpoint is missing: a runtime made it in the rootfs when the container started,
/// and a fresh copy of the image, or an engine's archive without the root file system's
/// changes, lacks it; CRIU then fails with "Can't stat mountpoint".
fn missing_fs_mountpoints(
    b: &Bundle,
    record: &Record,
    binds: &[super::nested::Bind],
) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for m in b.spec.mounts().clone().unwrap_or_default() {
        let dest = m.destination().to_string_lossy().into_owned();
        let bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .as_ref()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
        if bind || record.mounts.iter().any(|r| r.mountpoint == dest) {
            continue;
        }
        let (top, rel) = match super::nested::enclosing(&dest, binds) {
            Some((bind, rest)) => (PathBuf::from(&bind.source), format!("/{rest}")),
            None => (b.rootfs.clone(), dest.clone()),
        };
        let host = rootfs::host_path(&top, &rootfs::resolve_in(&top, &rel)?);
        if std::fs::symlink_metadata(&host).is_err() {
            out.push((dest, host));
        }
    }
    Ok(out)
}

/// What a restore decides from.
pub fn restore_facts(
    bundle_dir: &Path,
    images: &Path,
    criu_root: PathBuf,
    stdio_given: [bool; 3],
    hooks: bool,
) -> Result<RestoreFacts> {
    let b = bundle(bundle_dir)?;
    let host = host()?;
    let record = record(images, &b, &host)?;
    let mut existing = BTreeMap::new();
    let mut host_exists = BTreeMap::new();
    let spec_mounts = b.spec.mounts().clone().unwrap_or_default();
    let binds = super::nested::binds(&record, |mp| {
        spec_mounts
            .iter()
            .find(|s| s.destination().to_string_lossy() == mp)
            .and_then(|s| s.source().as_ref())
            .map(|x| x.to_string_lossy().into_owned())
    });
    for m in &record.mounts {
        // A mountpoint under a bind mount is looked for in that bind's source.
        let (top, rel) = match super::nested::enclosing(&m.mountpoint, &binds) {
            Some((bind, rest)) => (PathBuf::from(&bind.source), format!("/{rest}")),
            None => (b.rootfs.clone(), m.mountpoint.clone()),
        };
        let inner = rootfs::resolve_in(&top, &rel)?;
        if let Some(k) = kind_of(&rootfs::host_path(&top, &inner)) {
            existing.insert(m.mountpoint.clone(), k);
        }
        host_exists.insert(m.source.clone(), Path::new(&m.source).exists());
    }
    for m in b.spec.mounts().clone().unwrap_or_default() {
        if let Some(s) = m.source() {
            host_exists.insert(s.to_string_lossy().into_owned(), s.exists());
        }
    }
    // The container's cgroup in each hierarchy, which the plan binds the cgroup mounts from:
    // CRIU creates it only in some cgroup modes.
    let cg_path = b
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|x| x.to_string_lossy().into_owned());
    for h in cgroups::hierarchies(&host.mounts) {
        for path in record
            .cgroups
            .iter()
            .map(|(_, p)| p)
            .chain(cg_path.as_ref())
        {
            if let Some(d) = h.host_dir(path) {
                let there = Path::new(&d).exists();
                host_exists.insert(d, there);
            }
        }
    }
    let missing_fs_mountpoints = missing_fs_mountpoints(&b, &record, &binds)?;
    let img = images.join(super::cgimage::CGROUP_IMAGE);
    let image_controllers = img
        .exists()
        .then(|| super::cgimage::controllers(&img).ok())
        .flatten();
    let image_cgroup_dirs = img
        .exists()
        .then(|| super::cgimage::holds_dirs(&img).ok())
        .flatten();
    Ok(RestoreFacts {
        host,
        bundle: b,
        record,
        image_controllers,
        image_cgroup_dirs,
        existing,
        host_exists,
        missing_fs_mountpoints,
        criu_root,
        stdio_given,
        hooks,
        image_file_locks: images.join(FILE_LOCKS_IMAGE).exists(),
    })
}

/// CRIU's image of the file locks a dump with `file_locks` found.
const FILE_LOCKS_IMAGE: &str = "filelocks.img";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sources_are_resolved_outside_the_rootfs_only() {
        let d = std::env::temp_dir().join(format!(
            "ckpt-containers-{}-bind-sources",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("rootfs/etc")).unwrap();
        std::fs::create_dir_all(d.join("host-dir")).unwrap();
        std::os::unix::fs::symlink("host-dir", d.join("link-dir")).unwrap();
        // What a container could plant at a source the runtime bound from its own rootfs.
        std::os::unix::fs::symlink("/etc", d.join("rootfs/etc/planted")).unwrap();
        let planted = d.join("rootfs/etc/planted");
        let spec = serde_json::json!({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/a", "type": "bind", "source": d.join("link-dir"), "options": ["rbind"]},
                {"destination": "/b", "type": "bind", "source": "link-dir", "options": ["rbind"]},
                {"destination": "/c", "type": "bind", "source": planted, "options": ["rbind"]},
                {"destination": "/d", "type": "bind", "source": d.join("missing"), "options": ["rbind"]}]});
        std::fs::write(d.join("config.json"), spec.to_string()).unwrap();
        let b = bundle(&d).unwrap();
        let sources: Vec<PathBuf> = b
            .spec
            .mounts()
            .clone()
            .unwrap()
            .iter()
            .map(|m| m.source().clone().unwrap())
            .collect();
        let real = std::fs::canonicalize(d.join("host-dir")).unwrap();
        assert_eq!(
            sources,
            [real.clone(), real, planted, d.join("missing")],
            "links resolved outside the rootfs only"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
