//! What the container layer knows before it decides anything: plain data, read from the host
//! by `read` (the only part that touches the file system) or built from recorded files by tests.

use super::cgroups::Membership;
use super::mountinfo::Mount;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A file's kind, as far as a mountpoint is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Anything but a directory.
    File,
    /// A directory.
    Dir,
}

/// The host ckpt runs on.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// ckpt's own mount table: the cgroup hierarchies and the sources of bind mounts.
    pub mounts: Vec<Mount>,
    /// `iptables-restore` was found on PATH (CRIU's iptables network lock runs it).
    pub iptables_restore: bool,
    /// runc's default CRIU configuration file, /etc/criu/runc.conf, exists.
    pub runc_conf: bool,
    /// /run is a tmpfs, where CRIU keeps its kernel-probe cache (/run/criu.kdat).
    pub run_tmpfs: bool,
}

/// The bundle: config.json and the rootfs it names.
#[derive(Clone, Debug)]
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Its config.json.
    pub spec: Spec,
    /// Absolute host path of the rootfs.
    pub rootfs: PathBuf,
}

/// The running container, read at checkpoint.
#[derive(Clone, Debug, Default)]
pub struct Running {
    /// The container's init.
    pub pid: i32,
    /// The init's mountinfo.
    pub mounts: Vec<Mount>,
    /// The init's /proc/PID/cgroup.
    pub cgroups: Vec<Membership>,
    /// The kind of each mountpoint and masked path that exists, as the container sees it.
    pub kinds: BTreeMap<String, Kind>,
    /// The inode of each namespace file config.json gives by path ("network" -> inode).
    pub ns_inodes: BTreeMap<String, u64>,
    /// config.json's mount destinations resolved inside the rootfs (symlinks followed there).
    pub resolved: BTreeMap<String, String>,
    /// What the init's descriptors 0, 1 and 2 point to (readlink of /proc/PID/fd/N).
    pub stdio: Vec<String>,
    /// The veth pairs between the container's own network namespace and the host; None when
    /// they could not be read (no sysfs in the container) or the namespace is not its own.
    pub veths: Option<Vec<super::veth::Veth>>,
}

/// Everything `plan::checkpoint` decides from.
#[derive(Clone, Debug)]
pub struct CheckpointFacts {
    /// The host.
    pub host: Host,
    /// The bundle.
    pub bundle: Bundle,
    /// The running container.
    pub running: Running,
}

/// One external mount, as recorded in the images at checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedMount {
    /// The mountpoint inside the container: CRIU's external mount key.
    pub mountpoint: String,
    /// The host path bound there.
    pub source: String,
    /// A file or a directory.
    pub kind: Kind,
    /// Why it is external: "spec", "discovered", "cgroup", "masked", "device".
    pub origin: String,
    /// For a cgroup mount: the hierarchy, as /proc/PID/cgroup names its controllers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hierarchy: Option<String>,
}

/// What the checkpoint leaves beside CRIU's images (`ckpt-container.json`), for the restore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's format version.
    pub version: u32,
    /// The external mounts.
    pub mounts: Vec<RecordedMount>,
    /// The container's cgroups, per hierarchy as /proc/PID/cgroup names it ("" for cgroup2).
    pub cgroups: Vec<(String, String)>,
    /// Hierarchies left out of the images (the container sat in their root).
    pub skipped_cgroups: Vec<String>,
    /// The network lock the dump used.
    pub network_lock: Option<String>,
    /// What the init's descriptors 0, 1 and 2 pointed to.
    pub stdio: Vec<String>,
    /// The veth pairs dumped with the network namespace's contents (kept network only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub veths: Vec<super::veth::Veth>,
}

/// The record's file in the image directory.
pub const RECORD_FILE: &str = "ckpt-container.json";
/// runc's record of the init's descriptors 0-2, in the image directory.
pub const DESCRIPTORS_FILE: &str = "descriptors.json";

/// Everything `plan::restore` decides from.
#[derive(Clone, Debug)]
pub struct RestoreFacts {
    /// The host.
    pub host: Host,
    /// The bundle restored into.
    pub bundle: Bundle,
    /// The checkpoint's record.
    pub record: Record,
    /// Which recorded mountpoints exist now, with their kind: in the rootfs, or in the source
    /// of the bind mount that holds them (`nested`).
    pub existing: BTreeMap<String, Kind>,
    /// Which host paths the restore needs (bind sources, cgroup directories) exist.
    pub host_exists: BTreeMap<String, bool>,
    /// Mountpoints of the spec's own file systems (tmpfs, proc, mqueue, ...; CRIU mounts
    /// them itself, they are not external) that are missing now: the destination as the
    /// spec writes it, and the host path where CRIU looks for it (in the rootfs, or in the
    /// source of the bind mount that holds it). runc makes these before its restore.
    pub missing_fs_mountpoints: Vec<(String, PathBuf)>,
    /// The directory the rootfs is bound on for CRIU (CRIU's root).
    pub criu_root: PathBuf,
    /// Which of descriptors 0, 1, 2 the caller hands to the restored init.
    pub stdio_given: [bool; 3],
    /// The hierarchies cgroup.img holds, each as its controller names (None: no image, or
    /// one ckpt could not read).
    pub image_controllers: Option<Vec<Vec<String>>>,
    /// Whether cgroup.img holds cgroup directories (Some(false): dumped in mode ignore, so
    /// CRIU creates no cgroup in any mode; None: no image, or one ckpt could not read).
    pub image_cgroup_dirs: Option<bool>,
    /// The caller wants callbacks at setup-namespaces and post-restore.
    pub hooks: bool,
    /// The images hold file locks: CRIU wrote `filelocks.img`, which a dump made with
    /// `file_locks` writes.
    pub image_file_locks: bool,
}
