//! CRIU's RPC messages (`rpc.proto`, CRIU 4.1) and dump/restore statistics (`stats.proto`),
//! written as prost derives so the crate needs no protoc at build time.
//!
//! Field numbers and types must match CRIU's files exactly: `tests/wire.rs` decodes what these
//! structs encode with descriptors compiled from the `rpc.proto` that libcriu-dev installs.
//! CRIU's `string` fields of the request messages are `bytes` here: the same on the wire, and
//! CRIU (protobuf-c) never checks UTF-8, so paths that are not UTF-8 reach it as libcriu sends
//! them. Answers keep `string`.
//! proto2 semantics: every optional scalar is an `Option`, so an explicit `false` or `0` goes on
//! the wire when set and nothing goes when unset.

#![allow(missing_docs)]

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuPageServerInfo {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub address: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "2")]
    pub port: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    pub pid: Option<i32>,
    #[prost(int32, optional, tag = "4")]
    pub fd: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuVethPair {
    #[prost(bytes = "vec", required, tag = "1")]
    pub if_in: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "2")]
    pub if_out: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExtMountMap {
    #[prost(bytes = "vec", required, tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "2")]
    pub val: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinNamespace {
    #[prost(bytes = "vec", required, tag = "1")]
    pub ns: Vec<u8>,
    #[prost(bytes = "vec", required, tag = "2")]
    pub ns_file: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub extra_opt: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InheritFd {
    #[prost(bytes = "vec", required, tag = "1")]
    pub key: Vec<u8>,
    #[prost(int32, required, tag = "2")]
    pub fd: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CgroupRoot {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub ctrl: Option<Vec<u8>>,
    #[prost(bytes = "vec", required, tag = "2")]
    pub path: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UnixSk {
    #[prost(uint32, required, tag = "1")]
    pub inode: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CriuCgMode {
    Ignore = 0,
    CgNone = 1,
    Props = 2,
    Soft = 3,
    Full = 4,
    Strict = 5,
    Default = 6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CriuNetworkLockMethod {
    Iptables = 1,
    Nftables = 2,
    Skip = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CriuPreDumpMode {
    Splice = 1,
    VmRead = 2,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuOpts {
    #[prost(int32, required, tag = "1")]
    pub images_dir_fd: i32,
    /// A path CRIU opens itself, used only when images_dir_fd is -1.
    #[prost(bytes = "vec", optional, tag = "68")]
    pub images_dir: Option<Vec<u8>>,
    #[prost(int32, optional, tag = "2")]
    pub pid: Option<i32>,
    #[prost(bool, optional, tag = "3")]
    pub leave_running: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    pub ext_unix_sk: Option<bool>,
    #[prost(bool, optional, tag = "5")]
    pub tcp_established: Option<bool>,
    #[prost(bool, optional, tag = "6")]
    pub evasive_devices: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    pub shell_job: Option<bool>,
    #[prost(bool, optional, tag = "8")]
    pub file_locks: Option<bool>,
    #[prost(int32, optional, tag = "9")]
    pub log_level: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "10")]
    pub log_file: Option<Vec<u8>>,
    #[prost(message, optional, tag = "11")]
    pub ps: Option<CriuPageServerInfo>,
    #[prost(bool, optional, tag = "12")]
    pub notify_scripts: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "13")]
    pub root: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "14")]
    pub parent_img: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "15")]
    pub track_mem: Option<bool>,
    #[prost(bool, optional, tag = "16")]
    pub auto_dedup: Option<bool>,
    #[prost(int32, optional, tag = "17")]
    pub work_dir_fd: Option<i32>,
    #[prost(bool, optional, tag = "18")]
    pub link_remap: Option<bool>,
    #[prost(message, repeated, tag = "19")]
    pub veths: Vec<CriuVethPair>,
    #[prost(uint32, optional, tag = "20")]
    pub cpu_cap: Option<u32>,
    #[prost(bool, optional, tag = "21")]
    pub force_irmap: Option<bool>,
    #[prost(bytes = "vec", repeated, tag = "22")]
    pub exec_cmd: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "23")]
    pub ext_mnt: Vec<ExtMountMap>,
    #[prost(bool, optional, tag = "24")]
    pub manage_cgroups: Option<bool>,
    #[prost(message, repeated, tag = "25")]
    pub cg_root: Vec<CgroupRoot>,
    #[prost(bool, optional, tag = "26")]
    pub rst_sibling: Option<bool>,
    #[prost(message, repeated, tag = "27")]
    pub inherit_fd: Vec<InheritFd>,
    #[prost(bool, optional, tag = "28")]
    pub auto_ext_mnt: Option<bool>,
    #[prost(bool, optional, tag = "29")]
    pub ext_sharing: Option<bool>,
    #[prost(bool, optional, tag = "30")]
    pub ext_masters: Option<bool>,
    #[prost(bytes = "vec", repeated, tag = "31")]
    pub skip_mnt: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "32")]
    pub enable_fs: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "33")]
    pub unix_sk_ino: Vec<UnixSk>,
    #[prost(enumeration = "CriuCgMode", optional, tag = "34")]
    pub manage_cgroups_mode: Option<i32>,
    #[prost(uint32, optional, tag = "35")]
    pub ghost_limit: Option<u32>,
    #[prost(bytes = "vec", repeated, tag = "36")]
    pub irmap_scan_paths: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "37")]
    pub external: Vec<Vec<u8>>,
    #[prost(uint32, optional, tag = "38")]
    pub empty_ns: Option<u32>,
    #[prost(message, repeated, tag = "39")]
    pub join_ns: Vec<JoinNamespace>,
    #[prost(bytes = "vec", optional, tag = "41")]
    pub cgroup_props: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "42")]
    pub cgroup_props_file: Option<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "43")]
    pub cgroup_dump_controller: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "44")]
    pub freeze_cgroup: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "45")]
    pub timeout: Option<u32>,
    #[prost(bool, optional, tag = "46")]
    pub tcp_skip_in_flight: Option<bool>,
    #[prost(bool, optional, tag = "47")]
    pub weak_sysctls: Option<bool>,
    #[prost(bool, optional, tag = "48")]
    pub lazy_pages: Option<bool>,
    #[prost(int32, optional, tag = "49")]
    pub status_fd: Option<i32>,
    #[prost(bool, optional, tag = "50")]
    pub orphan_pts_master: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "51")]
    pub config_file: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "52")]
    pub tcp_close: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "53")]
    pub lsm_profile: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "54")]
    pub tls_cacert: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "55")]
    pub tls_cacrl: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "56")]
    pub tls_cert: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "57")]
    pub tls_key: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "58")]
    pub tls: Option<bool>,
    #[prost(bool, optional, tag = "59")]
    pub tls_no_cn_verify: Option<bool>,
    #[prost(bytes = "vec", optional, tag = "60")]
    pub cgroup_yard: Option<Vec<u8>>,
    #[prost(enumeration = "CriuPreDumpMode", optional, tag = "61")]
    pub pre_dump_mode: Option<i32>,
    #[prost(int32, optional, tag = "62")]
    pub pidfd_store_sk: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "63")]
    pub lsm_mount_context: Option<Vec<u8>>,
    #[prost(enumeration = "CriuNetworkLockMethod", optional, tag = "64")]
    pub network_lock: Option<i32>,
    #[prost(bool, optional, tag = "65")]
    pub mntns_compat_mode: Option<bool>,
    #[prost(bool, optional, tag = "66")]
    pub skip_file_rwx_check: Option<bool>,
    #[prost(bool, optional, tag = "67")]
    pub unprivileged: Option<bool>,
    #[prost(bool, optional, tag = "69")]
    pub leave_stopped: Option<bool>,
    #[prost(bool, optional, tag = "70")]
    pub display_stats: Option<bool>,
    #[prost(bool, optional, tag = "71")]
    pub log_to_stderr: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuDumpResp {
    #[prost(bool, optional, tag = "1")]
    pub restored: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuRestoreResp {
    #[prost(int32, required, tag = "1")]
    pub pid: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuNotify {
    #[prost(string, optional, tag = "1")]
    pub script: Option<String>,
    #[prost(int32, optional, tag = "2")]
    pub pid: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CriuReqType {
    Empty = 0,
    Dump = 1,
    Restore = 2,
    Check = 3,
    PreDump = 4,
    PageServer = 5,
    Notify = 6,
    CpuinfoDump = 7,
    CpuinfoCheck = 8,
    FeatureCheck = 9,
    Version = 10,
    WaitPid = 11,
    PageServerChld = 12,
    SinglePreDump = 13,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuFeatures {
    #[prost(bool, optional, tag = "1")]
    pub mem_track: Option<bool>,
    #[prost(bool, optional, tag = "2")]
    pub lazy_pages: Option<bool>,
    #[prost(bool, optional, tag = "3")]
    pub pidfd_store: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuReq {
    #[prost(enumeration = "CriuReqType", required, tag = "1")]
    pub r#type: i32,
    #[prost(message, optional, tag = "2")]
    pub opts: Option<CriuOpts>,
    #[prost(bool, optional, tag = "3")]
    pub notify_success: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    pub keep_open: Option<bool>,
    #[prost(message, optional, tag = "5")]
    pub features: Option<CriuFeatures>,
    #[prost(uint32, optional, tag = "6")]
    pub pid: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuResp {
    #[prost(enumeration = "CriuReqType", required, tag = "1")]
    pub r#type: i32,
    #[prost(bool, required, tag = "2")]
    pub success: bool,
    #[prost(message, optional, tag = "3")]
    pub dump: Option<CriuDumpResp>,
    #[prost(message, optional, tag = "4")]
    pub restore: Option<CriuRestoreResp>,
    #[prost(message, optional, tag = "5")]
    pub notify: Option<CriuNotify>,
    #[prost(message, optional, tag = "6")]
    pub ps: Option<CriuPageServerInfo>,
    #[prost(int32, optional, tag = "7")]
    pub cr_errno: Option<i32>,
    #[prost(message, optional, tag = "8")]
    pub features: Option<CriuFeatures>,
    #[prost(string, optional, tag = "9")]
    pub cr_errmsg: Option<String>,
    #[prost(message, optional, tag = "10")]
    pub version: Option<CriuVersion>,
    #[prost(int32, optional, tag = "11")]
    pub status: Option<i32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CriuVersion {
    #[prost(int32, required, tag = "1")]
    pub major_number: i32,
    #[prost(int32, required, tag = "2")]
    pub minor_number: i32,
    #[prost(string, optional, tag = "3")]
    pub gitid: Option<String>,
    #[prost(int32, optional, tag = "4")]
    pub sublevel: Option<i32>,
    #[prost(int32, optional, tag = "5")]
    pub extra: Option<i32>,
    #[prost(string, optional, tag = "6")]
    pub name: Option<String>,
}

/// `stats.proto`: what CRIU writes to `stats-dump` / `stats-restore` in the image directory.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DumpStatsEntry {
    #[prost(uint32, optional, tag = "1")]
    pub freezing_time: Option<u32>,
    #[prost(uint32, optional, tag = "2")]
    pub frozen_time: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    pub memdump_time: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pub memwrite_time: Option<u32>,
    #[prost(uint64, optional, tag = "5")]
    pub pages_scanned: Option<u64>,
    #[prost(uint64, optional, tag = "6")]
    pub pages_skipped_parent: Option<u64>,
    #[prost(uint64, optional, tag = "7")]
    pub pages_written: Option<u64>,
    #[prost(uint32, optional, tag = "8")]
    pub irmap_resolve: Option<u32>,
    #[prost(uint64, optional, tag = "9")]
    pub pages_lazy: Option<u64>,
    #[prost(uint64, optional, tag = "10")]
    pub page_pipes: Option<u64>,
    #[prost(uint64, optional, tag = "11")]
    pub page_pipe_bufs: Option<u64>,
    #[prost(uint64, optional, tag = "12")]
    pub shpages_scanned: Option<u64>,
    #[prost(uint64, optional, tag = "13")]
    pub shpages_skipped_parent: Option<u64>,
    #[prost(uint64, optional, tag = "14")]
    pub shpages_written: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RestoreStatsEntry {
    #[prost(uint64, optional, tag = "1")]
    pub pages_compared: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub pages_skipped_cow: Option<u64>,
    #[prost(uint32, optional, tag = "3")]
    pub forking_time: Option<u32>,
    #[prost(uint32, optional, tag = "4")]
    pub restore_time: Option<u32>,
    #[prost(uint64, optional, tag = "5")]
    pub pages_restored: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatsEntry {
    #[prost(message, optional, tag = "1")]
    pub dump: Option<DumpStatsEntry>,
    #[prost(message, optional, tag = "2")]
    pub restore: Option<RestoreStatsEntry>,
}
