//! The decisions: from facts (plain data) to the complete CRIU request and the host actions
//! around it, each with the reason it was derived. Pure: no file system, no clock, no process.

use super::cgroups;
use super::facts::*;
use super::mountinfo::Mount;
use crate::error::{Code, Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One CRIU option the layer sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "option", content = "value", rename_all = "snake_case")]
pub enum Criu {
    /// `root`: the container's root file system (on restore, where it is bound for CRIU).
    Root(String),
    /// `ext_mount`: a mount CRIU leaves to the runtime, by key.
    ExtMount {
        /// The mountpoint (dump) or the key the images name (restore).
        key: String,
        /// The key (dump) or the host source to mount (restore).
        val: String,
    },
    /// `external`: a resource CRIU leaves to the runtime (a namespace, a device, ...).
    External(String),
    /// `freeze_cgroup`: the cgroup CRIU freezes the tree through.
    FreezeCgroup(String),
    /// `manage_cgroups_mode`.
    ManageCgroupsMode(String),
    /// `cgroup_root`: where a hierarchy's cgroups are restored.
    CgroupRoot {
        /// The hierarchy's controllers, as /proc/PID/cgroup names them.
        controller: String,
        /// The cgroup path inside the hierarchy.
        path: String,
    },
    /// `cgroup_dump_controller`: a controller whose cgroups are dumped.
    CgroupDumpController(String),
    /// `cgroup_yard`: the host's cgroup mounts, used by CRIU instead of mounting its own.
    CgroupYard(String),
    /// `empty_ns`: a namespace restored empty.
    EmptyNs(String),
    /// `join_ns`: an existing namespace the restored tree joins.
    JoinNs {
        /// The namespace type (`net`, `ipc`, ...).
        ns: String,
        /// Its file (`/proc/PID/ns/...` or a bind mount of one).
        file: String,
    },
    /// `inherit_fd`: a descriptor given to the restored tree where the images name `key`.
    InheritFd {
        /// The file as the images name it (`pipe:[123]`, `extRootNetNS`, ...).
        key: String,
        /// Where the descriptor comes from.
        from: FdSource,
    },
    /// `evasive_devices`.
    EvasiveDevices(bool),
    /// `orphan_pts_master`: the terminal master is sent to the caller on restore.
    OrphanPtsMaster(bool),
    /// `file_locks`: the file locks the images hold are restored (the caller's own choice
    /// wins).
    FileLocks(bool),
    /// `network_lock`.
    NetworkLock(String),
    /// `config_file`: the container's CRIU configuration file.
    ConfigFile(String),
    /// `veths`: a veth pair CRIU creates on restore.
    VethPair {
        /// The interface's name inside the container.
        inside: String,
        /// `NAME[@BRIDGE]` outside it.
        outside: String,
    },
}

/// runc's default CRIU configuration file.
pub const RUNC_CONF: &str = "/etc/criu/runc.conf";
/// The annotation that names a container's CRIU configuration file (runc's and crun's).
pub const CONFIG_ANNOTATION: &str = "org.criu.config";

/// Where an inherited descriptor comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FdSource {
    /// A namespace file, opened read-only when the plan is carried out.
    NamespaceFile(String),
    /// The caller's descriptor for the restored init's stdin (0), stdout (1) or stderr (2).
    Stdio(u8),
}

/// Something done on the host around the CRIU call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A file written into the image directory before the dump (removed if the dump fails).
    WriteImageFile {
        /// The file's name in the image directory.
        name: String,
    },
    /// A missing mountpoint created in the rootfs (removed if the restore fails), resolved
    /// inside `within` as a chroot would when it is created (`inroot`).
    CreateMountpoint {
        /// The mountpoint on the host when no symbolic link redirects it.
        path: PathBuf,
        /// A file or a directory.
        kind: Kind,
        /// The directory it must stay in: the rootfs, or the source of the bind mount that
        /// holds it.
        within: PathBuf,
        /// Its path inside `within` ("/a/b").
        inner: String,
    },
    /// The rootfs bound (recursively) on CRIU's root, unmounted and removed afterwards.
    BindRootfs {
        /// The rootfs.
        source: PathBuf,
        /// CRIU's root.
        target: PathBuf,
        /// `root.readonly` of config.json: the bind is made read-only. CRIU restores the
        /// container on this mount as its `/` and never changes the root mount's flags.
        readonly: bool,
    },
    /// The caller's hook callback runs when CRIU reports this stage.
    Callback {
        /// The notification it runs at.
        at: String,
    },
    /// The v1 freezer cgroup frozen by ckpt before CRIU starts (when it is THAWED), thawed
    /// afterwards, and its `freezer.state` in cgroup.img set back to THAWED.
    FreezeFirst {
        /// The freezer cgroup's directory.
        cgroup: String,
    },
    /// A tmpfs CRIU would tar: when it is empty once the container is frozen, dumped as an
    /// external mount and recorded at post-dump as CRIU records an empty tmpfs (`emptyfs`).
    EmptyTmpfs {
        /// Its mountpoint inside the container.
        mountpoint: String,
        /// Its mount id in the init's mountinfo.
        mount_id: u32,
    },
    /// While criu restores, a thread of ckpt moves itself, every few ms, into the cgroup it
    /// is already in, so that CRIU's first `cgroup.procs` write finds the kernel's cgroup
    /// migration lock warm (`cgroup_warm`).
    WarmCgroupLock,
}

/// One decision of a plan and why it was made.
#[derive(Clone, Debug, Serialize)]
pub struct Step<T> {
    /// The CRIU option set or the host action taken.
    #[serde(flatten)]
    pub what: T,
    /// Where it comes from: the line of config.json, the mount, the runtime's choice.
    pub reason: String,
}

/// What the layer would do: `explain` prints it, `act` carries it out.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// `checkpoint` or `restore`.
    pub operation: &'static str,
    /// The CRIU options the layer sets, on top of the caller's.
    pub criu: Vec<Step<Criu>>,
    /// What is done on the host around the CRIU call.
    pub actions: Vec<Step<Action>>,
    /// Decisions that set nothing (so a reader sees they were considered).
    pub notes: Vec<String>,
    /// checkpoint: what goes into ckpt-container.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Record>,
    /// checkpoint: descriptors.json, in runc's format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub descriptors: Option<Vec<String>>,
}

/// One of a plan's cgroup roots on this host.
pub struct RootDir<'a> {
    /// Its hierarchy's controllers, as /proc/PID/cgroup names them.
    pub controllers: &'a str,
    /// Its path inside the hierarchy (config.json's cgroupsPath).
    pub path: &'a str,
    /// Its directory on this host (it may not exist yet).
    pub dir: String,
}

impl Plan {
    /// The host directory of each of the plan's cgroup roots whose hierarchy is mounted in
    /// `mounts`: what a restore checks or prepares before CRIU puts the container there.
    pub fn cgroup_root_dirs(&self, mounts: &[Mount]) -> Vec<RootDir<'_>> {
        let hs = cgroups::hierarchies(mounts);
        self.criu
            .iter()
            .filter_map(|s| match &s.what {
                Criu::CgroupRoot { controller, path } => Some(RootDir {
                    controllers: controller,
                    path,
                    dir: cgroups::find(&hs, controller)?.host_dir(path)?,
                }),
                _ => None,
            })
            .collect()
    }

    fn new(operation: &'static str) -> Plan {
        Plan {
            operation,
            criu: vec![],
            actions: vec![],
            notes: vec![],
            record: None,
            descriptors: None,
        }
    }
    fn set(&mut self, what: Criu, reason: impl Into<String>) {
        self.criu.push(Step {
            what,
            reason: reason.into(),
        });
    }
    fn act(&mut self, what: Action, reason: impl Into<String>) {
        self.actions.push(Step {
            what,
            reason: reason.into(),
        });
    }

    /// The plan as pretty JSON: the explain output.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// What the caller asked for that changes decisions (from its options and the request).
#[derive(Clone, Debug, Default)]
pub struct Wants {
    /// The caller's tcp_established.
    pub tcp_established: bool,
    /// The caller's network lock; None: chosen here.
    pub network_lock: Option<String>,
    /// The caller's cgroup mode; None: soft.
    pub manage_cgroups_mode: Option<String>,
    /// Keep the network namespace's contents (no empty_ns network).
    pub keep_network: bool,
    /// The runtime that started the container ("runc", "crun"), when the caller knows it
    /// (`--runtime`): the images are keyed so that runtime's own restore accepts them.
    pub runtime: Option<String>,
    /// The caller gave veth pairs of its own (they replace the ones found at checkpoint).
    pub caller_veths: bool,
}

pub(super) fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<String>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
        .iter()
        .map(|n| {
            (
                n.typ(),
                n.path().as_ref().map(|p| p.to_string_lossy().into_owned()),
            )
        })
        .collect()
}

fn has_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|(x, _)| *x == t)
}

fn masked_paths(spec: &Spec) -> Vec<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
}

fn device_paths(spec: &Spec) -> Vec<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default()
        .iter()
        .map(|d| d.path().to_string_lossy().into_owned())
        .collect()
}

fn terminal(spec: &Spec) -> bool {
    spec.process().as_ref().and_then(|p| p.terminal()) == Some(true)
}

/// A mount whose source the container can reach through another of its own mounts (a bind
/// within the container, like /proc/bus over /proc) is CRIU's to handle.
fn reachable_inside(m: &Mount, all: &[Mount]) -> bool {
    all.iter().any(|o| {
        o.id != m.id
            && o.dev == m.dev
            && (o.root == "/" || m.root == o.root || m.root.starts_with(&format!("{}/", o.root)))
            && !(o.root == m.root && o.mount_point > m.mount_point && o.id > m.id)
    })
}

/// The host path of a container mount's source, from the host's mount of the same file
/// system with the longest root that contains it.
fn host_source(m: &Mount, host: &[Mount]) -> Option<String> {
    host.iter()
        .filter(|h| {
            h.dev == m.dev
                && (h.root == "/"
                    || m.root == h.root
                    || m.root.starts_with(&format!("{}/", h.root)))
        })
        .max_by_key(|h| h.root.len())
        .map(|h| {
            let rel = if h.root == "/" {
                m.root.as_str()
            } else {
                &m.root[h.root.len()..]
            };
            let base = h.mount_point.trim_end_matches('/');
            if rel.is_empty() || rel == "/" {
                if base.is_empty() {
                    "/".into()
                } else {
                    base.to_string()
                }
            } else {
                format!("{base}{rel}")
            }
        })
}

/// The key a masked file's mount is dumped under. runc 1.1.5 restores with the one mapping
/// `/dev/null` -> `/dev/null`; crun 1.21 with one mapping per masked file, its path ->
/// `/dev/null`. One key per mount: the runtime that started the container decides.
fn masked_key(mp: &str, w: &Wants) -> (String, &'static str) {
    if w.runtime.as_deref() == Some("crun") {
        (
            mp.to_string(),
            "keyed by its own path, as crun 1.21 dumps it, so `crun restore` finds it",
        )
    } else {
        (
            "/dev/null".into(),
            "keyed /dev/null, as runc dumps it, so `runc restore` finds it",
        )
    }
}

fn lock_choice(host: &Host, w: &Wants, net_state_kept: bool) -> (String, String) {
    if let Some(l) = &w.network_lock {
        return (l.clone(), "asked by the caller".into());
    }
    if !w.tcp_established && !net_state_kept {
        return (
            "skip".into(),
            "no established TCP connection is checkpointed (tcp-established is off) and the \
             network namespace's state is not carried over, so locking it protects nothing; \
             iptables-restore costs tens of ms per dump and restore"
                .into(),
        );
    }
    if host.iptables_restore {
        (
            "iptables".into(),
            "TCP state is carried over and iptables-restore is on PATH".into(),
        )
    } else {
        (
            "nftables".into(),
            "TCP state is carried over and iptables-restore is not on PATH; CRIU locks with its own libnftables"
                .into(),
        )
    }
}

/// Says so when CRIU cannot keep its kernel-probe cache: every criu start then probes again.
fn kdat_note(p: &mut Plan, host: &Host) {
    if !host.run_tmpfs {
        p.notes.push(
            "/run is not a tmpfs: CRIU keeps its kernel-probe cache (/run/criu.kdat) only on a tmpfs, so every criu start probes the kernel again (iptables, ip6tables, a network namespace; 60-70 ms on the machine docs/containers.md measured)"
                .into(),
        );
    }
}

/// CRIU's configuration file: the container's annotation, else runc's default when it exists.
fn config_file(p: &mut Plan, spec: &Spec, host: &Host) {
    let ann = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(CONFIG_ANNOTATION))
        .filter(|v| !v.is_empty());
    if let Some(f) = ann {
        p.set(
            Criu::ConfigFile(f.clone()),
            format!("the {CONFIG_ANNOTATION} annotation of config.json"),
        );
    } else if host.runc_conf {
        p.set(
            Criu::ConfigFile(RUNC_CONF.into()),
            format!("{RUNC_CONF} exists: runc's default CRIU configuration for containers"),
        );
    }
}

fn cgroup_mode(p: &mut Plan, w: &Wants) -> String {
    let (mode, why) = match &w.manage_cgroups_mode {
        Some(m) => (m.clone(), "asked by the caller".to_string()),
        None => (
            "soft".to_string(),
            "as runc: CRIU dumps the container's cgroups and, on restore, creates missing ones and sets their properties".to_string(),
        ),
    };
    p.set(Criu::ManageCgroupsMode(mode.clone()), why);
    mode
}

/// CRIU's directory name for a hierarchy in a cgroup yard (criu/cgroup.c): "name=" dropped,
/// "unified" for cgroup2, the controllers joined by commas.
fn yard_name(cnames: &[String]) -> String {
    cnames
        .iter()
        .map(|n| {
            if n.is_empty() {
                "unified"
            } else {
                n.strip_prefix("name=").unwrap_or(n)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A host directory under which every hierarchy in `wanted` (each as its controller names)
/// is already mounted, from its root, where CRIU looks for it in a cgroup yard; None when
/// one is missing, mounted elsewhere or from below its root.
fn host_yard(hs: &[cgroups::Hierarchy], wanted: &[Vec<String>]) -> Option<String> {
    let mut yard: Option<String> = None;
    for cnames in wanted {
        let h = cgroups::find(hs, &cnames.join(","))?;
        let name = yard_name(cnames);
        let dir = h.mount_point.strip_suffix(&format!("/{name}"))?;
        if h.root != "/" || dir.is_empty() || yard.as_deref().is_some_and(|y| y != dir) {
            return None;
        }
        yard = Some(dir.to_string());
    }
    yard
}

/// CRIU mounts every hierarchy it dumps or restores afresh (a cgroup2 mount takes about
/// 10 ms here); the host's own mounts serve as CRIU's cgroup yard when they are laid out
/// the way CRIU expects one.
fn cgroup_yard(p: &mut Plan, hs: &[cgroups::Hierarchy], wanted: &[Vec<String>], what: &str) {
    if wanted.is_empty() {
        return;
    }
    match host_yard(hs, wanted) {
        Some(y) => p.set(
            Criu::CgroupYard(y.clone()),
            format!(
                "every hierarchy {what} is mounted under {y} from its root, named as CRIU names them in a cgroup yard: CRIU uses those mounts instead of mounting each hierarchy again (a cgroup2 mount costs about 10 ms)"
            ),
        ),
        None => p.notes.push(format!(
            "not every hierarchy {what} is mounted under one directory the way CRIU expects a cgroup yard: CRIU mounts them itself"
        )),
    }
}

/// A terminal whose master was closed: devpts removed its pts node, and the container's
/// `/dev/console`, bound from it, shows a deleted root (mountinfo's `/0//deleted`). CRIU dumps
/// it and records the bind as of a deleted file, which it then tries to re-create in the new
/// devpts on restore, and fails ("Can't re-create deleted file .../0: File exists"; runc 1.1.5
/// the same, after its checkpoint killed the container): refused before anything is done.
fn hung_up_terminal(m: &Mount) -> Result<()> {
    if m.fs_type != "devpts" || !m.root.ends_with("//deleted") {
        return Ok(());
    }
    let pts = m.root.trim_end_matches("//deleted");
    Err(Error::new(
        Code::InvalidState,
        format!(
            "{} of the container is bound from its terminal's pts {pts}, which no longer exists: the terminal was hung up (its master, the one sent to the console socket, was closed). CRIU would dump it, but no restore can bring that mount back (CRIU fails \"Can't re-create deleted file\"; runc checkpoint dumps it, and kills the container, and runc restore fails so); keep the terminal master open until the checkpoint",
            m.mount_point
        ),
    ))
}

/// The checkpoint plan for a running container.
pub fn checkpoint(f: &CheckpointFacts, w: &Wants) -> Result<Plan> {
    let mut p = Plan::new("checkpoint");
    let spec = &f.bundle.spec;
    let rootfs = f.bundle.rootfs.to_string_lossy().into_owned();
    let r = &f.running;
    let hs = cgroups::hierarchies(&f.host.mounts);
    let mut rec = Record {
        version: 1,
        stdio: r.stdio.clone(),
        ..Default::default()
    };
    p.set(
        Criu::Root(rootfs.clone()),
        format!("root.path of config.json: the rootfs {rootfs}"),
    );

    // Mounts: every mount of the container is classified; those whose source lies outside
    // the container are external, keyed by their mountpoint.
    let spec_mounts = spec.mounts().clone().unwrap_or_default();
    let masked = masked_paths(spec);
    let devices = device_paths(spec);
    let cgroupns = has_ns(spec, LinuxNamespaceType::Cgroup);
    let mut masked_file = false;
    for m in &r.mounts {
        let mp = &m.mount_point;
        if mp == "/" {
            continue;
        }
        hung_up_terminal(m)?;
        let kind = r.kinds.get(mp).copied().unwrap_or(Kind::Dir);
        let spec_mount = spec_mounts.iter().find(|s| {
            let d = s.destination().to_string_lossy();
            r.resolved
                .get(d.as_ref())
                .map(String::as_str)
                .unwrap_or(d.as_ref())
                == mp
        });
        let hierarchy = (m.fs_type == "cgroup")
            .then(|| {
                hs.iter()
                    .find(|h| h.dev == m.dev)
                    .map(|h| h.controllers.clone())
            })
            .flatten();
        let mut external = |p: &mut Plan, source: String, origin: &str, why: String| {
            p.set(
                Criu::ExtMount {
                    key: mp.clone(),
                    val: mp.clone(),
                },
                why,
            );
            rec.mounts.push(RecordedMount {
                mountpoint: mp.clone(),
                source,
                kind,
                origin: origin.into(),
                hierarchy: hierarchy.clone(),
            });
        };
        if let Some(s) = spec_mount.filter(|s| is_bind(s)) {
            let src = s
                .source()
                .as_ref()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default();
            let d = s.destination().to_string_lossy();
            let how = if d.as_ref() == mp {
                String::new()
            } else {
                format!(" (destination {d} resolves to {mp} inside the rootfs)")
            };
            let origin = if devices.iter().any(|x| x == mp) || m.fs_type == "devtmpfs" {
                "device"
            } else {
                "spec"
            };
            external(
                &mut p,
                src.clone(),
                origin,
                format!("bind mount of {src} ({kind:?}) on {mp} in config.json{how}")
                    .to_lowercase_kind(),
            );
            continue;
        }
        if m.fs_type == "cgroup" {
            if cgroupns {
                p.notes.push(format!(
                    "cgroup v1 mount {mp}: not external, the container has a cgroup namespace"
                ));
                continue;
            }
            let h = hs.iter().find(|h| h.dev == m.dev);
            let Some(src) = h.and_then(|h| h.host_dir(&m.root)) else {
                return Err(Error::new(
                    Code::InvalidState,
                    format!(
                        "cgroup mount {mp} of the container (device {}) is not a hierarchy mounted on this host",
                        m.dev
                    ),
                ));
            };
            external(
                &mut p,
                src.clone(),
                "cgroup",
                format!("cgroup v1 mount {mp}: a bind of the host's {src} (no cgroup namespace)"),
            );
            continue;
        }
        if m.fs_type == "cgroup2" {
            p.notes.push(format!(
                "cgroup2 mount {mp}: nothing to declare, CRIU mounts cgroup2 itself"
            ));
            continue;
        }
        if masked.iter().any(|x| x == mp) {
            if kind == Kind::File {
                masked_file = true;
                let (val, how) = masked_key(mp, w);
                p.set(
                    Criu::ExtMount {
                        key: mp.clone(),
                        val,
                    },
                    format!("masked path {mp} (a file) has /dev/null bound over it; {how}"),
                );
                rec.mounts.push(RecordedMount {
                    mountpoint: mp.clone(),
                    source: "/dev/null".into(),
                    kind,
                    origin: "masked".into(),
                    hierarchy: None,
                });
            } else {
                p.notes.push(format!(
                    "masked path {mp} (a directory) is an empty read-only {}: not external (`runc restore` would map nothing to it), CRIU restores it itself",
                    m.fs_type
                ));
            }
            continue;
        }
        if spec_mount.is_some() || reachable_inside(m, &r.mounts) {
            continue;
        }
        // Not in config.json and from outside the container: a hook's or CDI's mount.
        let Some(src) = host_source(m, &f.host.mounts) else {
            return Err(Error::new(
                Code::InvalidState,
                format!(
                    "mount {mp} of the container is not in config.json and its source ({} {}) is not mounted on this host",
                    m.dev, m.root
                ),
            ));
        };
        let origin = if m.fs_type == "devtmpfs" {
            "device"
        } else {
            "discovered"
        };
        external(
            &mut p,
            src.clone(),
            origin,
            format!(
                "mount {mp} is not in config.json (added by a hook or CDI): a bind of the host's {src}, found in the container's mountinfo"
            ),
        );
    }
    let _ = masked_file;
    let declared = |mp: &str| {
        p.criu
            .iter()
            .any(|c| matches!(&c.what, Criu::ExtMount { key, .. } if key == mp))
    };
    // In a user namespace CRIU's tar records owners as the namespace sees them: left to CRIU.
    let userns = has_ns(spec, LinuxNamespaceType::User);
    let empty: Vec<(String, u32)> = super::emptyfs::candidates(&r.mounts, &declared)
        .into_iter()
        .filter(|_| !userns)
        .map(|m| (m.mount_point.clone(), m.id))
        .collect();
    for (mountpoint, mount_id) in empty {
        p.act(
            Action::EmptyTmpfs {
                mountpoint: mountpoint.clone(),
                mount_id,
            },
            format!(
                "tmpfs {mountpoint} (mounted once, nothing below it): if it is empty once the container is frozen, ckpt declares it external for the dump, so CRIU runs no tar for it (a tar, sh and gzip: about 5 ms), and at post-dump writes what CRIU's tar writes for an empty tmpfs (its root directory's mode, owner and time) and drops the key from the mount's entry; every restore reads it as CRIU's own"
            ),
        );
    }
    for d in &devices {
        if !rec.mounts.iter().any(|m| &m.mountpoint == d) {
            p.notes.push(format!(
                "device {d} of linux.devices is a node in the rootfs, not a mount: nothing to declare"
            ));
        }
    }

    // Namespaces given by path: CRIU leaves them alone and expects them back on restore.
    let mut net_state_kept = w.keep_network;
    for (t, path) in namespaces(spec) {
        let (name, key) = match (t, &path) {
            (LinuxNamespaceType::Network, _) => ("net", "extRootNetNS"),
            (LinuxNamespaceType::Pid, _) => ("pid", "extRootPidNS"),
            (LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts | LinuxNamespaceType::User, _)
            | (_, None) => continue,
            // The restore refuses it (below); a dump would kill a container nothing restores.
            (_, Some(path)) => {
                return Err(Error::new(
                    Code::Unsupported,
                    format!(
                        "{t} namespace given by path {path}: CRIU cannot restore into an existing {t} namespace, so this container's checkpoint could not be restored"
                    ),
                ));
            }
        };
        let Some(path) = path else { continue };
        let tname = t.to_string();
        let ino = r
            .ns_inodes
            .get(&tname)
            .or_else(|| r.ns_inodes.get(name))
            .copied()
            .ok_or_else(|| {
                Error::new(
                    Code::NotFound,
                    format!("{tname} namespace {path} of config.json could not be read"),
                )
            })?;
        p.set(
            Criu::External(format!("{name}[{ino}]:{key}")),
            format!("{tname} namespace given by path {path} (inode {ino}): dumped as external, joined again on restore"),
        );
        if t == LinuxNamespaceType::Network {
            net_state_kept = true;
        }
    }
    let own_net = namespaces(spec)
        .iter()
        .any(|(t, p)| *t == LinuxNamespaceType::Network && p.is_none());
    if own_net && !w.keep_network {
        p.set(
            Criu::EmptyNs("network".into()),
            "the container's network namespace is the runtime's to set up (as runc): its interfaces are not dumped",
        );
    } else if !own_net {
        net_state_kept = true;
    }
    if own_net {
        let (kept, notes) = super::veth::on_checkpoint(r.veths.as_deref(), w.keep_network);
        rec.veths = kept;
        p.notes.extend(notes);
    }

    // Cgroups: only the container's own. A hierarchy where the init sits in the root would
    // make CRIU dump (and on restore recreate, nested) the host's whole tree.
    let mode = cgroup_mode(&mut p, w);
    let mut own: Vec<String> = vec![];
    for c in &r.cgroups {
        let shown = if c.controllers.is_empty() {
            "cgroup2".to_string()
        } else {
            c.controllers.clone()
        };
        if cgroups::find(&hs, &c.controllers).is_none() {
            p.notes.push(format!(
                "hierarchy {shown} is not mounted on the host: CRIU skips it"
            ));
            continue;
        }
        if c.path == "/" {
            rec.skipped_cgroups.push(c.controllers.clone());
            p.notes.push(format!(
                "hierarchy {shown}: the container is in its root cgroup; left out so CRIU does not dump the host's whole tree"
            ));
        } else {
            own.push(c.controllers.clone());
            rec.cgroups.push((c.controllers.clone(), c.path.clone()));
        }
    }
    if mode != "ignore" {
        if own.is_empty() {
            return Err(Error::new(
                Code::InvalidState,
                "the container's init is in the root cgroup of every hierarchy: CRIU would dump and recreate the host's whole cgroup tree; put the container in a cgroup of its own (linux.cgroupsPath) or set manage-cgroups-mode ignore",
            ));
        }
        if !rec.skipped_cgroups.is_empty() {
            if own.iter().any(|c| c.is_empty()) {
                return Err(Error::new(
                    Code::InvalidState,
                    "the container is in its own cgroup2 cgroup but in the root of a v1 hierarchy; CRIU cannot be restricted to the cgroup2 hierarchy by name: set manage-cgroups-mode ignore",
                ));
            }
            for c in &own {
                p.set(
                    Criu::CgroupDumpController(c.clone()),
                    format!("the container has a cgroup of its own in hierarchy {c}; only such hierarchies are dumped"),
                );
            }
        }
    }
    if mode != "ignore" {
        let dumped: Vec<Vec<String>> = r
            .cgroups
            .iter()
            .filter(|c| rec.skipped_cgroups.is_empty() || own.contains(&c.controllers))
            .map(|c| c.controllers.split(',').map(String::from).collect())
            .collect();
        cgroup_yard(
            &mut p,
            &hs,
            &dumped,
            "the container's cgroups are dumped from",
        );
    }
    let freezer = r
        .cgroups
        .iter()
        .filter(|c| c.path != "/")
        .filter_map(|c| {
            let h = cgroups::find(&hs, &c.controllers)?;
            let v1 = c.controllers.split(',').any(|x| x == "freezer");
            (v1 || h.is_v2()).then(|| (v1, h.host_dir(&c.path)))
        })
        .max_by_key(|(v1, _)| *v1);
    match freezer {
        Some((v1, Some(dir))) => {
            p.set(
                Criu::FreezeCgroup(dir.clone()),
                format!(
                    "the container's {} freezer cgroup: CRIU freezes the whole container at once",
                    if v1 { "v1" } else { "cgroup2" }
                ),
            );
            if v1 {
                p.act(
                    Action::FreezeFirst { cgroup: dir.clone() },
                    "CRIU checks a v1 freezer every 100 ms after writing FROZEN (a dump often waits 100 ms for nothing): when the cgroup is THAWED, ckpt freezes it first, checking every millisecond, thaws it after the dump, and sets the freezer.state CRIU recorded back to THAWED in cgroup.img (so every restore leaves the container running), whoever froze it meanwhile; a FROZEN one is a paused container, kept FROZEN; one that stays FREEZING for 1 s is refused before CRIU, which would take it for paused",
                );
            }
        }
        _ => p.notes.push(
            "no freezer cgroup of the container's own: CRIU stops the tasks one by one".into(),
        ),
    }

    let (lock, why) = lock_choice(&f.host, w, net_state_kept);
    p.set(Criu::NetworkLock(lock.clone()), why);
    rec.network_lock = Some(lock);
    config_file(&mut p, spec, &f.host);
    kdat_note(&mut p, &f.host);
    if terminal(spec) {
        p.set(
            Criu::OrphanPtsMaster(true),
            "process.terminal: the container's terminal master is held by the runtime, outside the tree",
        );
    }
    p.act(
        Action::WriteImageFile { name: DESCRIPTORS_FILE.into() },
        "runc's descriptors.json: what the init's stdin, stdout and stderr were, so `runc restore` can reconnect them",
    );
    p.act(
        Action::WriteImageFile { name: RECORD_FILE.into() },
        "the external mounts with their sources and kinds, the cgroups and the network lock, for the restore",
    );
    p.descriptors = Some(r.stdio.clone());
    p.record = Some(rec);
    Ok(p)
}

trait LowerKind {
    fn to_lowercase_kind(self) -> String;
}
impl LowerKind for String {
    fn to_lowercase_kind(self) -> String {
        self.replace("(File)", "(a file)")
            .replace("(Dir)", "(a directory)")
    }
}

fn under_container_fs(spec: &Spec, mp: &str) -> Option<String> {
    // Mountpoints under a file system the runtime makes fresh (tmpfs, proc, sysfs, cgroup) are
    // not in the rootfs: nothing to create there.
    spec.mounts()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            matches!(
                m.typ().as_deref(),
                Some("tmpfs" | "proc" | "sysfs" | "cgroup" | "cgroup2" | "devpts" | "mqueue")
            )
        })
        .map(|m| m.destination().to_string_lossy().into_owned())
        .find(|d| mp.starts_with(&format!("{}/", d.trim_end_matches('/'))))
}

/// The restore plan for a bundle and the record its checkpoint left.
pub fn restore(f: &RestoreFacts, w: &Wants) -> Result<Plan> {
    let mut p = Plan::new("restore");
    let spec = &f.bundle.spec;
    let rec = &f.record;
    let hs = cgroups::hierarchies(&f.host.mounts);
    let root = f.criu_root.clone();
    p.act(
        Action::BindRootfs {
            source: f.bundle.rootfs.clone(),
            target: root.clone(),
            readonly: spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
        },
        "CRIU's root must be a mountpoint: the rootfs is bound there (as runc's criu-root), and unbound afterwards; CRIU restores the container's `/` on this mount as it is, so it is made read-only when config.json's root.readonly is true",
    );
    p.set(
        Criu::Root(root.to_string_lossy().into_owned()),
        format!("the rootfs {} as bound for CRIU", f.bundle.rootfs.display()),
    );
    let spec_mounts = spec.mounts().clone().unwrap_or_default();
    let cg_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|x| x.to_string_lossy().into_owned())
        .filter(|x| x.starts_with('/'));
    // Each becomes a directory ckpt (the cpuset parents) and CRIU create, fill and remove as
    // root: a `..` would lead out of the hierarchy, anywhere on the host.
    if let Some(c) = &cg_path {
        cgroups::check_path("linux.cgroupsPath of config.json", c)?;
    }
    for (c, path) in &rec.cgroups {
        cgroups::check_path(
            &format!("the checkpoint's cgroup of hierarchy {c:?} ({RECORD_FILE})"),
            path,
        )?;
    }
    let cg_of = |recorded: &str| cg_path.clone().unwrap_or_else(|| recorded.to_string());
    let mut masked_file = false;
    let binds = super::nested::binds(rec, |mp| {
        spec_mounts
            .iter()
            .find(|s| s.destination().to_string_lossy() == mp && is_bind(s))
            .and_then(|s| s.source().as_ref())
            .map(|x| x.to_string_lossy().into_owned())
    });
    for m in &rec.mounts {
        let mp = &m.mountpoint;
        let source = match m.origin.as_str() {
            "masked" => {
                // Images keyed by the path (crun's dump) find this one; runc's form, keyed
                // /dev/null, finds the one below. An unused mapping is harmless.
                masked_file = true;
                p.set(
                    Criu::ExtMount {
                        key: mp.clone(),
                        val: "/dev/null".into(),
                    },
                    format!("masked file {mp}: /dev/null bound over it again (images keyed by its path, as crun dumps them)"),
                );
                continue;
            }
            "cgroup" => {
                // The container's cgroup in that hierarchy, as the spec names it now.
                let h = m.hierarchy.as_deref().and_then(|c| cgroups::find(&hs, c));
                let recorded = m.hierarchy.as_deref().and_then(|hc| {
                    rec.cgroups.iter().find(|(c, _)| {
                        cgroups::find(&hs, c).map(|x| &x.dev) == h.map(|x| &x.dev) && !hc.is_empty()
                    })
                });
                match (h, recorded) {
                    (Some(h), Some((_, path))) => {
                        h.host_dir(&cg_of(path)).unwrap_or(m.source.clone())
                    }
                    _ => m.source.clone(),
                }
            }
            "spec" | "device" => spec_mounts
                .iter()
                .find(|s| s.destination().to_string_lossy() == mp.as_str() && is_bind(s))
                .and_then(|s| {
                    s.source()
                        .as_ref()
                        .map(|x| x.to_string_lossy().into_owned())
                })
                .unwrap_or(m.source.clone()),
            _ => m.source.clone(),
        };
        if m.origin == "cgroup" {
            let mode = w.manage_cgroups_mode.as_deref().unwrap_or("soft");
            let creates_none = if matches!(mode, "ignore" | "none" | "props") {
                Some(format!(
                    "with manage-cgroups-mode {mode} CRIU creates no cgroup: create the container's cgroups first, or restore with mode soft, full or strict"
                ))
            } else if f.image_cgroup_dirs == Some(false) {
                Some("the images hold no cgroup (checkpointed in manage-cgroups-mode ignore), so CRIU has none to create: create the container's cgroups first, in every hierarchy, cgroup2 included".to_string())
            } else {
                None
            };
            if let (Some(why), Some(false)) = (creates_none, f.host_exists.get(&source)) {
                // CRIU failed on it with "Failed to open_tree ...: No such file or directory",
                // or with "Can't move 1 into ...".
                return Err(Error::new(
                    Code::NotFound,
                    format!(
                        "the container's cgroup {source} (bound on {mp}) does not exist, and {why}"
                    ),
                ));
            }
            if f.host_exists.get(&source) != Some(&true) {
                p.notes.push(format!(
                    "cgroup {source} (bound on {mp}) does not exist yet: CRIU creates it from the images, with its properties, before it mounts it"
                ));
            }
        } else if f.host_exists.get(&source) == Some(&false) {
            return Err(Error::new(
                Code::NotFound,
                format!(
                    "the source {source} of external mount {mp} ({}) does not exist on this host",
                    m.origin
                ),
            ));
        }
        p.set(
            Criu::ExtMount {
                key: mp.clone(),
                val: source.clone(),
            },
            format!("external mount {mp} ({}) is bound from {source}", m.origin),
        );
        if m.origin != "cgroup" && !f.existing.contains_key(mp) {
            if let Some(under) = under_container_fs(spec, mp) {
                p.notes.push(format!("mountpoint {mp} is missing but lies under {under}, which the restore recreates: not created in the rootfs"));
            } else {
                let (within, inner, inside) =
                    super::nested::host_mountpoint(&f.bundle.rootfs, mp, &binds);
                let path = within.join(lexical_inside(&inner));
                let place = match inside {
                    Some(b) => format!(
                        "lies under bind mount {} and is missing from its source {}, where CRIU finds it once that bind is mounted",
                        b.mountpoint, b.source
                    ),
                    None => "is missing from the rootfs".into(),
                };
                p.act(
                    Action::CreateMountpoint {
                        path,
                        kind: m.kind,
                        within,
                        inner,
                    },
                    format!("mountpoint {mp} {place}; created as a {} as recorded at checkpoint (removed if the restore fails)", if m.kind == Kind::File { "file" } else { "directory" }),
                );
            }
        }
    }
    for (dest, path) in &f.missing_fs_mountpoints {
        if let Some(under) = under_container_fs(spec, dest) {
            p.notes.push(format!("mountpoint {dest} is missing but lies under {under}, which the restore recreates: not created in the rootfs"));
            continue;
        }
        // Made through `inroot`, inside the rootfs or the bind's source like the recorded
        // ones: the container may have planted links on the way.
        let (within, inner, _) = super::nested::host_mountpoint(&f.bundle.rootfs, dest, &binds);
        p.act(
            Action::CreateMountpoint {
                path: path.clone(),
                kind: Kind::Dir,
                within,
                inner,
            },
            format!("mountpoint {dest} of the spec's own file system is missing ({} lacks it); created as a directory, as runc makes every mountpoint before its restore (removed if the restore fails)", path.display()),
        );
    }
    if masked_file {
        p.set(
            Criu::ExtMount {
                key: "/dev/null".into(),
                val: "/dev/null".into(),
            },
            "masked files were dumped as external mounts of /dev/null (images keyed /dev/null, as runc dumps them)",
        );
    }
    p.set(
        Criu::EvasiveDevices(true),
        "device nodes may differ between checkpoint and restore hosts: CRIU uses any node with the same device number",
    );

    let mut net_state_kept = w.keep_network;
    let mut own_net = false;
    for (t, path) in namespaces(spec) {
        let tname = t.to_string();
        match (t, path) {
            (LinuxNamespaceType::Network, None) => own_net = true,
            (LinuxNamespaceType::Network | LinuxNamespaceType::Pid, Some(path)) => {
                let key = if t == LinuxNamespaceType::Network {
                    "extRootNetNS"
                } else {
                    "extRootPidNS"
                };
                p.set(
                    Criu::InheritFd {
                        key: key.into(),
                        from: FdSource::NamespaceFile(path.clone()),
                    },
                    format!("{tname} namespace given by path {path}: the restored tree joins it"),
                );
                if t == LinuxNamespaceType::Network {
                    net_state_kept = true;
                }
            }
            (
                LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts | LinuxNamespaceType::User,
                Some(path),
            ) => {
                p.set(
                    Criu::JoinNs {
                        ns: tname.clone(),
                        file: path.clone(),
                    },
                    format!("{tname} namespace given by path {path} is joined"),
                );
            }
            (_, Some(path)) => {
                return Err(Error::new(
                    Code::Unsupported,
                    format!(
                        "{tname} namespace given by path {path}: CRIU cannot restore into an existing {tname} namespace"
                    ),
                ));
            }
            _ => {}
        }
    }
    if own_net && !w.keep_network {
        p.set(
            Criu::EmptyNs("network".into()),
            "the container's network namespace is restored empty (loopback only); its interfaces are the runtime's to set up",
        );
    } else if !own_net {
        net_state_kept = true;
    }
    if own_net && w.keep_network {
        let (pairs, notes) = super::veth::on_restore(&rec.veths, w.caller_veths);
        for (v, why) in pairs {
            p.set(
                Criu::VethPair {
                    inside: v.inside.clone(),
                    outside: v.outside_value(),
                },
                why,
            );
        }
        p.notes.extend(notes);
    }

    let mode = cgroup_mode(&mut p, w);
    if mode != "ignore" {
        for (c, path) in &rec.cgroups {
            if c.is_empty() {
                p.notes.push(format!(
                    "cgroup2 cgroup {path}: CRIU restores it where it was dumped (no controller name to give a root for)"
                ));
                continue;
            }
            let target = cg_of(path);
            let why = if cg_path.is_some() {
                format!("linux.cgroupsPath of config.json ({target})")
            } else {
                format!("the container's cgroup at checkpoint ({target})")
            };
            p.set(
                Criu::CgroupRoot {
                    controller: c.clone(),
                    path: target,
                },
                why,
            );
        }
        if let Some(ctls) = &f.image_controllers {
            cgroup_yard(&mut p, &hs, ctls, "the images hold cgroups of");
        }
        if p.criu.iter().any(|s| matches!(s.what, Criu::CgroupYard(_))) {
            p.act(
                Action::WarmCgroupLock,
                "CRIU, using the host's mounts as its cgroup yard, mounts no hierarchy, so its first write of the restored init to a cgroup.procs would wait for an RCU grace period (about 8 ms here) to take the kernel's cgroup migration lock: ckpt keeps that lock warm with moves of nothing while criu runs",
            );
        }
    }
    let (lock, why) = match &rec.network_lock {
        Some(l) if w.network_lock.is_none() => (
            l.clone(),
            "the method the checkpoint locked the network with".to_string(),
        ),
        _ => lock_choice(&f.host, w, net_state_kept),
    };
    p.set(Criu::NetworkLock(lock), why);
    config_file(&mut p, spec, &f.host);
    kdat_note(&mut p, &f.host);
    if terminal(spec) {
        p.set(
            Criu::OrphanPtsMaster(true),
            "process.terminal: CRIU hands the new terminal master to the console socket",
        );
    }
    if f.image_file_locks {
        p.set(
            Criu::FileLocks(true),
            "the images hold file locks (filelocks.img): without file_locks CRIU restores the files but not their locks, and says nothing",
        );
    }
    for (i, d) in rec.stdio.iter().enumerate().take(3) {
        let name = ["stdin", "stdout", "stderr"][i];
        if d.starts_with("pipe:") {
            if !f.stdio_given[i] {
                return Err(Error::invalid(format!(
                    "the container's {name} was {d} at checkpoint: pass a descriptor for it (the restored process is reconnected to it)"
                )));
            }
            p.set(
                Criu::InheritFd {
                    key: d.clone(),
                    from: FdSource::Stdio(i as u8),
                },
                format!("the container's {name} was {d} (descriptors.json): reconnected to the caller's descriptor"),
            );
        }
    }
    if f.hooks {
        for at in ["setup-namespaces", "post-restore"] {
            p.act(
                Action::Callback { at: at.into() },
                "the runtime's hooks (prestart/createRuntime at setup-namespaces, poststart at post-restore)",
            );
        }
    }
    Ok(p)
}

/// The record of a checkpoint `runc checkpoint` made (it leaves only descriptors.json): what
/// runc 1.1.5 declares external, derived from the spec as runc derives it. `kinds` holds the
/// kind of each bind source that exists.
pub fn record_from_runc(
    spec: &Spec,
    host_mounts: &[Mount],
    stdio: Vec<String>,
    kinds: &std::collections::BTreeMap<String, Kind>,
) -> Record {
    let mut rec = Record {
        version: 1,
        stdio,
        // runc 1.1.5 sends no network lock: CRIU's default, iptables.
        network_lock: Some("iptables".into()),
        ..Default::default()
    };
    let mounts = spec.mounts().clone().unwrap_or_default();
    for m in mounts.iter().filter(|m| is_bind(m)) {
        let src = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        rec.mounts.push(RecordedMount {
            mountpoint: m.destination().to_string_lossy().into_owned(),
            kind: kinds.get(&src).copied().unwrap_or(Kind::Dir),
            source: src,
            origin: "spec".into(),
            hierarchy: None,
        });
    }
    let hs = cgroups::hierarchies(host_mounts);
    let cg_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cgroupns = has_ns(spec, LinuxNamespaceType::Cgroup);
    for m in mounts
        .iter()
        .filter(|m| m.typ().as_deref() == Some("cgroup"))
    {
        for h in &hs {
            rec.cgroups.push((h.controllers.clone(), cg_path.clone()));
            if h.is_v2() || cgroupns {
                continue;
            }
            let base = h.mount_point.rsplit('/').next().unwrap_or_default();
            rec.mounts.push(RecordedMount {
                mountpoint: format!(
                    "{}/{base}",
                    m.destination().to_string_lossy().trim_end_matches('/')
                ),
                source: h.host_dir(&cg_path).unwrap_or_default(),
                kind: Kind::Dir,
                origin: "cgroup".into(),
                hierarchy: Some(h.controllers.clone()),
            });
        }
    }
    // runc keys every masked file /dev/null, crun by its path: each one is mapped on restore
    // (a directory among them maps nothing: CRIU dumped its tmpfs itself).
    for m in masked_paths(spec) {
        rec.mounts.push(RecordedMount {
            mountpoint: m,
            source: "/dev/null".into(),
            kind: Kind::File,
            origin: "masked".into(),
            hierarchy: None,
        });
    }
    rec
}

/// `inner` ("/a/../b") as a relative path with its `..` applied and stopping at the top, as a
/// chroot resolves it (symbolic links aside): "b".
fn lexical_inside(inner: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(inner).components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_bound_from_a_deleted_pts_is_refused() {
        let line = |root: &str| {
            format!("48 72 0:43 {root} /dev/console rw,nosuid - devpts devpts rw,gid=5\n")
        };
        let gone = super::super::mountinfo::parse(&line("/0//deleted")).unwrap();
        let e = hung_up_terminal(&gone[0]).unwrap_err();
        assert_eq!(e.code, Code::InvalidState);
        assert!(
            e.message
                .starts_with("/dev/console of the container is bound from its terminal's pts /0,"),
            "{}",
            e.message
        );
        let live = super::super::mountinfo::parse(&line("/0")).unwrap();
        assert!(hung_up_terminal(&live[0]).is_ok());
    }
}
