//! Turning validated options into CRIU's `criu_opts`: a pure mapping, so every field can be
//! checked without running CRIU.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use crate::options::Options;
use crate::proto::{
    CgroupRoot, CriuOpts, CriuPageServerInfo, CriuVethPair, ExtMountMap, InheritFd, JoinNamespace,
    UnixSk,
};

/// Descriptor numbers the request refers to: the image and work directories are numbers in the
/// caller (CRIU opens them through /proc/<peer>/fd), inherited fds are numbers inside criu.
#[derive(Clone, Debug, Default)]
pub struct FdNumbers {
    pub images_dir: RawFd,
    pub work_dir: Option<RawFd>,
    pub inherit: Vec<RawFd>,
}

/// Which operation the request is for; it decides the log name and the flags that only make
/// sense one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Dump,
    PreDump,
    Restore,
    PageServer,
    Check,
}

impl Op {
    pub fn default_log(self) -> &'static str {
        match self {
            Op::Dump => "dump.log",
            Op::PreDump => "pre-dump.log",
            Op::Restore => "restore.log",
            Op::PageServer => "page-server.log",
            Op::Check => "check.log",
        }
    }
}

/// runc asks for verbose logs so a failure can be explained from them; ckpt does the same.
pub const DEFAULT_LOG_LEVEL: i32 = 4;

/// Notifications cost a round trip each (a dump sends at least four), so they are asked for
/// only when something consumes them: the caller's callback, the status fd (status-ready), a
/// lazy dump, or the console socket (orphan-pts-master). Every one that arrives is acknowledged.
pub fn wants_notifications(o: &Options) -> bool {
    o.notify.is_some()
        || o.has_status_fd()
        || o.lazy_pages == Some(true)
        || o.console_socket.is_some()
        || o.orphan_pts_master == Some(true)
}

/// CRIU's strings travel as bytes: text and paths (`OsStr`, not always UTF-8) alike.
fn b(v: impl AsRef<OsStr>) -> Vec<u8> {
    v.as_ref().as_bytes().to_vec()
}

fn s<T: AsRef<OsStr>>(v: &Option<T>) -> Option<Vec<u8>> {
    v.as_ref().map(b)
}

fn list<T: AsRef<OsStr>>(v: &[T]) -> Vec<Vec<u8>> {
    v.iter().map(b).collect()
}

/// A dump under a timeout or a cancellation token also asks for them: `pre-dump` and
/// `post-dump` mark when CRIU has the tree in hand and when it passes its point of no return,
/// which decide what stopping criu means for the workload (docs/guarantees.md, "Timeouts and
/// failed restores"). Without them a cancel in the last instant would find the tree killed
/// and report nothing about it.
pub fn watches_point_of_no_return(o: &Options, op: Op) -> bool {
    op == Op::Dump && (o.op_timeout.is_some() || o.cancel.is_some())
}

pub fn build(o: &Options, op: Op, pid: Option<i32>, fds: &FdNumbers) -> CriuOpts {
    let mut r = CriuOpts {
        images_dir_fd: fds.images_dir,
        // The directory always travels as a descriptor (images_dir_fd).
        images_dir: None,
        work_dir_fd: fds.work_dir,
        pid,
        // CRIU ignores log_to_stderr when a log file is named: with it, none is.
        log_file: (o.log_to_stderr != Some(true))
            .then(|| b(o.log_file.as_deref().unwrap_or(op.default_log().as_ref()))),
        log_level: Some(o.log_level.unwrap_or(DEFAULT_LOG_LEVEL)),
        // Never for a page server: its server process sends status-ready on the RPC socket
        // after criu has already answered, when nobody is left to acknowledge it, and then
        // gives up. Its answer alone says that it listens.
        notify_scripts: (op != Op::PageServer
            && (wants_notifications(o) || watches_point_of_no_return(o, op)))
        .then_some(true),
        root: s(&o.root),
        parent_img: s(&o.parent_path),
        tls_cacert: s(&o.tls_cacert),
        tls_cacrl: s(&o.tls_cacrl),
        tls_cert: s(&o.tls_cert),
        tls_key: s(&o.tls_key),
        ps: o.page_server.as_ref().map(|p| CriuPageServerInfo {
            address: Some(b(&p.address)),
            port: Some(i32::from(p.port)),
            pid: None,
            fd: None,
        }),
        // Sent even when it is IGNORE (0): proto2 keeps an explicit zero apart from "unset".
        manage_cgroups_mode: o.manage_cgroups_mode.map(|m| m.to_proto() as i32),
        network_lock: o.network_lock.map(|m| m.to_proto() as i32),
        pre_dump_mode: o.pre_dump_mode.map(|m| m.to_proto() as i32),
        empty_ns: (o.empty_ns != 0).then_some(o.empty_ns),
        ext_mnt: o
            .ext_mounts
            .iter()
            .map(|(k, v)| ExtMountMap {
                key: b(k),
                val: b(v),
            })
            .collect(),
        external: list(&o.externals),
        freeze_cgroup: s(&o.freeze_cgroup),
        cg_root: o
            .cgroup_roots
            .iter()
            .map(|(ctrl, path)| CgroupRoot {
                ctrl: s(ctrl),
                path: b(path),
            })
            .collect(),
        cgroup_props: s(&o.cgroup_props),
        cgroup_props_file: s(&o.cgroup_props_file),
        cgroup_dump_controller: list(&o.cgroup_dump_controllers),
        cgroup_yard: s(&o.cgroup_yard),
        skip_mnt: list(&o.skip_mounts),
        enable_fs: list(&o.enable_fs),
        irmap_scan_paths: list(&o.irmap_scan_paths),
        exec_cmd: list(&o.exec_cmd),
        veths: o
            .veths
            .iter()
            .map(|(a, x)| CriuVethPair {
                if_in: b(a),
                if_out: b(x),
            })
            .collect(),
        unix_sk_ino: o
            .unix_sk_inodes
            .iter()
            .map(|&inode| UnixSk { inode })
            .collect(),
        join_ns: o
            .join_ns
            .iter()
            .map(|j| JoinNamespace {
                ns: b(&j.ns),
                ns_file: b(&j.ns_file),
                extra_opt: s(&j.extra_opt),
            })
            .collect(),
        inherit_fd: o
            .inherit_fds
            .iter()
            .zip(&fds.inherit)
            .map(|((key, _), &fd)| InheritFd { key: b(key), fd })
            .collect(),
        rst_sibling: (op == Op::Restore).then_some(true),
        lsm_profile: s(&o.lsm_profile),
        lsm_mount_context: s(&o.lsm_mount_context),
        config_file: s(&o.config_file),
        ghost_limit: o.ghost_limit,
        cpu_cap: o.cpu_cap,
        timeout: o.criu_timeout,
        status_fd: None,
        // A number in the caller, like images_dir_fd: CRIU takes the socket with pidfd_getfd.
        pidfd_store_sk: o.pidfd_store_sk.as_ref().map(AsRawFd::as_raw_fd),
        // The yes/no options come from the one table in options.rs (`flags!`).
        ..Default::default()
    };
    o.copy_flags(&mut r);
    // Three of them have defaults of ckpt's own when the caller left them unset.
    // CRIU reads the unix socket inodes only when ext_unix_sk is sent: without it a socket the
    // caller named was refused as "External socket is used". libcriu turns it on for them.
    r.ext_unix_sk = o
        .ext_unix_sk
        .or((!o.unix_sk_inodes.is_empty()).then_some(true));
    r.track_mem = o.track_mem.or(if o.pre_dump == Some(true) || o.parent_path.is_some() {
        Some(true)
    } else {
        None
    });
    r.orphan_pts_master = o.orphan_pts_master.or(
        if o.console_socket.is_some() && op == Op::Restore {
            Some(true)
        } else {
            None
        },
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_socket_inodes_turn_ext_unix_sk_on_unless_set() {
        let sent = |o: &Options| build(o, Op::Dump, Some(1), &FdNumbers::default()).ext_unix_sk;
        let mut o = Options::new();
        assert_eq!(sent(&o), None);
        o.add_unix_sk_ino(5);
        assert_eq!(sent(&o), Some(true), "CRIU reads the inodes only with it");
        o.set_ext_unix_sk(false);
        assert_eq!(sent(&o), Some(false), "the caller's choice wins");
    }
}
