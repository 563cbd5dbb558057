//! A plan's CRIU options put on the caller's `Options`, and taken off again afterwards: the
//! one place that reads and writes `Options` fields directly.

use super::plan::{Criu, FdSource, Plan, Wants};
use crate::error::{Error, Result};
use crate::options::{CgroupsMode, NetworkLock, Options};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// What the caller's options ask that changes the layer's decisions.
pub fn wants(o: &Options, keep_network: bool) -> Wants {
    Wants {
        tcp_established: o.tcp_established == Some(true),
        network_lock: o.network_lock.map(|l| match l {
            NetworkLock::Iptables => "iptables".into(),
            NetworkLock::Nftables => "nftables".into(),
            NetworkLock::Skip => "skip".into(),
        }),
        manage_cgroups_mode: o.manage_cgroups_mode.map(|m| {
            match m {
                CgroupsMode::Soft => "soft",
                CgroupsMode::Full => "full",
                CgroupsMode::Strict => "strict",
                CgroupsMode::Ignore => "ignore",
                CgroupsMode::None => "none",
                CgroupsMode::Props => "props",
                CgroupsMode::Default => "default",
            }
            .to_string()
        }),
        keep_network,
        runtime: None,
        caller_veths: !o.veths.is_empty(),
    }
}

/// The fields a plan may change, as they were before.
pub struct Saved {
    root: Option<PathBuf>,
    ext_mounts: usize,
    externals: usize,
    freeze_cgroup: Option<PathBuf>,
    manage_cgroups_mode: Option<CgroupsMode>,
    cgroup_roots: usize,
    cgroup_dump_controllers: usize,
    cgroup_yard: Option<PathBuf>,
    empty_ns: u32,
    join_ns: usize,
    inherit_fds: usize,
    evasive_devices: Option<bool>,
    orphan_pts_master: Option<bool>,
    file_locks: Option<bool>,
    network_lock: Option<NetworkLock>,
    config_file: Option<PathBuf>,
    veths: usize,
}

/// What `apply` changes on the options, saved for `revert`.
pub fn save(o: &Options) -> Saved {
    Saved {
        root: o.root.clone(),
        ext_mounts: o.ext_mounts.len(),
        externals: o.externals.len(),
        freeze_cgroup: o.freeze_cgroup.clone(),
        manage_cgroups_mode: o.manage_cgroups_mode,
        cgroup_roots: o.cgroup_roots.len(),
        cgroup_dump_controllers: o.cgroup_dump_controllers.len(),
        cgroup_yard: o.cgroup_yard.clone(),
        empty_ns: o.empty_ns,
        join_ns: o.join_ns.len(),
        inherit_fds: o.inherit_fds.len(),
        evasive_devices: o.evasive_devices,
        orphan_pts_master: o.orphan_pts_master,
        file_locks: o.file_locks,
        network_lock: o.network_lock,
        config_file: o.config_file.clone(),
        veths: o.veths.len(),
    }
}

/// Puts the options back as `save` found them (dropping the descriptors the plan added).
pub fn revert(o: &mut Options, s: Saved) {
    o.root = s.root;
    o.ext_mounts.truncate(s.ext_mounts);
    o.externals.truncate(s.externals);
    o.freeze_cgroup = s.freeze_cgroup;
    o.manage_cgroups_mode = s.manage_cgroups_mode;
    o.cgroup_roots.truncate(s.cgroup_roots);
    o.cgroup_dump_controllers
        .truncate(s.cgroup_dump_controllers);
    o.cgroup_yard = s.cgroup_yard;
    o.empty_ns = s.empty_ns;
    o.join_ns.truncate(s.join_ns);
    o.inherit_fds.truncate(s.inherit_fds);
    o.evasive_devices = s.evasive_devices;
    o.orphan_pts_master = s.orphan_pts_master;
    o.file_locks = s.file_locks;
    o.network_lock = s.network_lock;
    o.config_file = s.config_file;
    o.veths.truncate(s.veths);
}

/// Sets every CRIU option of the plan. `stdio` holds the caller's descriptors for the restored
/// init's stdin, stdout and stderr (taken when the plan uses them).
pub fn apply(p: &Plan, o: &mut Options, stdio: &mut [Option<OwnedFd>; 3]) -> Result<()> {
    for step in &p.criu {
        match &step.what {
            Criu::Root(r) => {
                o.set_root(r)?;
            }
            Criu::ExtMount { key, val } => o.add_ext_mount(key, val)?,
            Criu::External(e) => o.add_external(e)?,
            Criu::FreezeCgroup(f) => {
                o.set_freeze_cgroup(f)?;
            }
            Criu::ManageCgroupsMode(m) => o.set_manage_cgroups_mode(m)?,
            Criu::CgroupRoot { controller, path } => {
                o.add_cgroup_root(Some(controller), path)?;
            }
            Criu::CgroupDumpController(c) => {
                crate::options::check_text("cgroup dump controller", c)?;
                o.cgroup_dump_controllers.push(c.clone());
            }
            // The caller's own yard wins.
            Criu::CgroupYard(y) if o.cgroup_yard.is_none() => {
                o.set_cgroup_yard(y)?;
            }
            Criu::CgroupYard(_) => {}
            Criu::EmptyNs(n) => o.add_empty_ns(n)?,
            Criu::JoinNs { ns, file } => o.add_join_ns(ns, file, None)?,
            Criu::InheritFd { key, from } => {
                let fd: OwnedFd = match from {
                    FdSource::NamespaceFile(path) => std::fs::File::open(path)
                        .map_err(|e| Error::io(format!("opening namespace file {path}"), e))?
                        .into(),
                    FdSource::Stdio(i) => stdio[*i as usize].take().ok_or_else(|| {
                        Error::invalid(format!("no descriptor given for the container's fd {i}"))
                    })?,
                };
                o.add_inherit_fd(key, fd)?;
            }
            Criu::EvasiveDevices(b) => o.evasive_devices = Some(*b),
            Criu::OrphanPtsMaster(b) => o.orphan_pts_master = Some(*b),
            // The caller's own choice wins.
            Criu::FileLocks(b) if o.file_locks.is_none() => o.file_locks = Some(*b),
            Criu::FileLocks(_) => {}
            Criu::NetworkLock(l) => o.set_network_lock(l)?,
            // The caller's own configuration file wins over the container's.
            Criu::ConfigFile(f) if o.config_file.is_none() => {
                o.set_config_file(f)?;
            }
            Criu::ConfigFile(_) => {}
            Criu::VethPair { inside, outside } => o.add_veth_pair(inside, outside)?,
        }
    }
    Ok(())
}
