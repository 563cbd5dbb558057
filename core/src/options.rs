//! The options a runtime sets before a checkpoint or restore, each validated when it is set so a
//! bad value is reported at the setter that took it and never half-applied.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::notify::Notification;
use crate::proto::{CriuCgMode, CriuNetworkLockMethod, CriuPreDumpMode};

/// runc's `--manage-cgroups-mode`, plus the CRIU modes runc does not offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CgroupsMode {
    Ignore,
    None,
    Props,
    Soft,
    Full,
    Strict,
    Default,
}

impl CgroupsMode {
    pub fn parse(s: &str) -> Result<CgroupsMode> {
        Ok(match s {
            "soft" => CgroupsMode::Soft,
            "full" => CgroupsMode::Full,
            "strict" => CgroupsMode::Strict,
            "ignore" => CgroupsMode::Ignore,
            "none" => CgroupsMode::None,
            "props" => CgroupsMode::Props,
            "default" => CgroupsMode::Default,
            _ => {
                return Err(Error::invalid(format!(
                    "invalid manage-cgroups-mode {s:?}: expected soft, full, strict or ignore"
                )));
            }
        })
    }

    pub(crate) fn to_proto(self) -> CriuCgMode {
        match self {
            CgroupsMode::Ignore => CriuCgMode::Ignore,
            CgroupsMode::None => CriuCgMode::CgNone,
            CgroupsMode::Props => CriuCgMode::Props,
            CgroupsMode::Soft => CriuCgMode::Soft,
            CgroupsMode::Full => CriuCgMode::Full,
            CgroupsMode::Strict => CriuCgMode::Strict,
            CgroupsMode::Default => CriuCgMode::Default,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetworkLock {
    Iptables,
    Nftables,
    Skip,
}

impl NetworkLock {
    pub fn parse(s: &str) -> Result<NetworkLock> {
        match s {
            "iptables" => Ok(NetworkLock::Iptables),
            "nftables" => Ok(NetworkLock::Nftables),
            "skip" => Ok(NetworkLock::Skip),
            _ => Err(Error::invalid(format!(
                "invalid network lock method {s:?}: expected iptables, nftables or skip"
            ))),
        }
    }

    pub(crate) fn to_proto(self) -> CriuNetworkLockMethod {
        match self {
            NetworkLock::Iptables => CriuNetworkLockMethod::Iptables,
            NetworkLock::Nftables => CriuNetworkLockMethod::Nftables,
            NetworkLock::Skip => CriuNetworkLockMethod::Skip,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreDumpMode {
    Splice,
    VmRead,
}

impl PreDumpMode {
    pub fn parse(s: &str) -> Result<PreDumpMode> {
        match s {
            "splice" => Ok(PreDumpMode::Splice),
            "read" | "vm_read" => Ok(PreDumpMode::VmRead),
            _ => Err(Error::invalid(format!(
                "invalid pre-dump mode {s:?}: expected splice or read"
            ))),
        }
    }

    pub(crate) fn to_proto(self) -> CriuPreDumpMode {
        match self {
            PreDumpMode::Splice => CriuPreDumpMode::Splice,
            PreDumpMode::VmRead => CriuPreDumpMode::VmRead,
        }
    }
}

/// The container's state as the runtime sees it; CRIU cannot dump a container that is not
/// running or paused, and saying so before criu starts gives a clearer error than CRIU would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Created but not started: nothing to checkpoint yet.
    Created,
    /// Running: a checkpoint may proceed.
    Running,
    /// Paused (its freezer cgroup frozen): a checkpoint may proceed.
    Paused,
    /// Stopped: nothing to checkpoint.
    Stopped,
}

impl ContainerStatus {
    /// `created`, `running`, `paused` or `stopped`, as runc's and crun's state says it.
    pub fn parse(s: &str) -> Result<ContainerStatus> {
        match s {
            "created" => Ok(ContainerStatus::Created),
            "running" => Ok(ContainerStatus::Running),
            "paused" => Ok(ContainerStatus::Paused),
            "stopped" => Ok(ContainerStatus::Stopped),
            _ => Err(Error::invalid(format!(
                "invalid container status {s:?}: expected created, running, paused or stopped"
            ))),
        }
    }

    /// The word `parse` takes.
    pub fn name(self) -> &'static str {
        match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Stopped => "stopped",
        }
    }
}

/// `ADDRESS:PORT` of a page server, as runc's `--page-server` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PageServer {
    pub address: String,
    pub port: u16,
}

impl PageServer {
    /// Accepts `host:port`, `1.2.3.4:port` and `[v6]:port`. Port 0 is refused: runc silently
    /// ignores it, which turns a typo into a local dump.
    pub fn parse(s: &str) -> Result<PageServer> {
        let bad = |why: &str| Error::invalid(format!("invalid page-server {s:?}: {why}"));
        let (address, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected ADDRESS:PORT"))?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("the address in brackets is not an IPv6 address"));
            }
            (addr, port)
        } else {
            let (addr, port) = s
                .rsplit_once(':')
                .ok_or_else(|| bad("expected ADDRESS:PORT"))?;
            if addr.contains(':') {
                return Err(bad(
                    "an IPv6 address must be written in brackets, as [::1]:27277",
                ));
            }
            (addr, port)
        };
        if address.is_empty() {
            return Err(bad("the address is empty"));
        }
        let port: u32 = port.parse().map_err(|_| bad("the port is not a number"))?;
        if !(1..=65535).contains(&port) {
            return Err(bad("the port must be in 1..65535"));
        }
        Ok(PageServer {
            address: address.to_string(),
            port: port as u16,
        })
    }
}

/// Namespaces CRIU can leave empty on restore (`--empty-ns`); runc accepts only `network`.
pub(crate) fn parse_empty_ns(s: &str) -> Result<u32> {
    match s {
        "network" | "net" => Ok(libc::CLONE_NEWNET as u32),
        _ => Err(Error::invalid(format!(
            "invalid empty-ns {s:?}: only \"network\" is supported"
        ))),
    }
}

/// A caller-supplied notification handler. It returns `Err(message)` to abort the operation.
pub type NotifyFn = dyn Fn(&Notification) -> std::result::Result<(), String> + Send + Sync;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JoinNs {
    pub ns: String,
    pub ns_file: PathBuf,
    pub extra_opt: Option<String>,
}

/// Every setting ckpt knows, each set through a method that checks the value first and changes
/// nothing when it refuses it. A setting never set is left out of the request, and CRIU applies
/// its own default (proto2 tells unset from false); set, it is sent, `false` included.
///
/// The methods are named after the C setters without their `ckpt_opts_` prefix
/// (`ckpt_opts_set_leave_running` is [`Options::set_leave_running`]); their documentation is
/// in include/ckpt.h and the README's option table.
#[derive(Default)]
pub struct Options {
    pub(crate) criu_path: Option<PathBuf>,
    pub(crate) image_path: Option<PathBuf>,
    pub(crate) work_path: Option<PathBuf>,
    pub(crate) parent_path: Option<PathBuf>,
    pub(crate) log_file: Option<OsString>,
    pub(crate) log_level: Option<i32>,
    pub(crate) root: Option<PathBuf>,

    pub(crate) leave_running: Option<bool>,
    pub(crate) leave_stopped: Option<bool>,
    pub(crate) tcp_established: Option<bool>,
    pub(crate) tcp_skip_in_flight: Option<bool>,
    pub(crate) tcp_close: Option<bool>,
    pub(crate) link_remap: Option<bool>,
    pub(crate) ext_unix_sk: Option<bool>,
    pub(crate) shell_job: Option<bool>,
    pub(crate) lazy_pages: Option<bool>,
    pub(crate) file_locks: Option<bool>,
    pub(crate) pre_dump: Option<bool>,
    pub(crate) track_mem: Option<bool>,
    pub(crate) auto_dedup: Option<bool>,
    pub(crate) evasive_devices: Option<bool>,
    pub(crate) force_irmap: Option<bool>,
    pub(crate) auto_ext_mnt: Option<bool>,
    pub(crate) ext_sharing: Option<bool>,
    pub(crate) ext_masters: Option<bool>,
    pub(crate) weak_sysctls: Option<bool>,
    pub(crate) orphan_pts_master: Option<bool>,
    pub(crate) manage_cgroups: Option<bool>,
    pub(crate) mntns_compat_mode: Option<bool>,
    pub(crate) skip_file_rwx_check: Option<bool>,
    pub(crate) unprivileged: Option<bool>,
    pub(crate) display_stats: Option<bool>,
    pub(crate) log_to_stderr: Option<bool>,
    pub(crate) tls: Option<bool>,
    pub(crate) tls_no_cn_verify: Option<bool>,

    pub(crate) page_server: Option<PageServer>,
    pub(crate) manage_cgroups_mode: Option<CgroupsMode>,
    pub(crate) network_lock: Option<NetworkLock>,
    pub(crate) pre_dump_mode: Option<PreDumpMode>,
    pub(crate) empty_ns: u32,
    pub(crate) container_status: Option<ContainerStatus>,

    pub(crate) ext_mounts: Vec<(OsString, OsString)>,
    pub(crate) externals: Vec<String>,
    pub(crate) freeze_cgroup: Option<PathBuf>,
    pub(crate) cgroup_roots: Vec<(Option<String>, PathBuf)>,
    pub(crate) cgroup_props: Option<String>,
    pub(crate) cgroup_props_file: Option<PathBuf>,
    pub(crate) cgroup_dump_controllers: Vec<String>,
    pub(crate) cgroup_yard: Option<PathBuf>,
    pub(crate) skip_mounts: Vec<PathBuf>,
    pub(crate) enable_fs: Vec<String>,
    pub(crate) irmap_scan_paths: Vec<PathBuf>,
    pub(crate) exec_cmd: Vec<String>,
    pub(crate) veths: Vec<(String, String)>,
    pub(crate) unix_sk_inodes: Vec<u32>,
    pub(crate) join_ns: Vec<JoinNs>,
    pub(crate) inherit_fds: Vec<(String, OwnedFd)>,
    pub(crate) lsm_profile: Option<String>,
    pub(crate) lsm_mount_context: Option<String>,
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) ghost_limit: Option<u32>,
    pub(crate) cpu_cap: Option<u32>,
    pub(crate) criu_timeout: Option<u32>,
    pub(crate) tls_cacert: Option<PathBuf>,
    pub(crate) tls_cacrl: Option<PathBuf>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,

    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) console_socket: Option<PathBuf>,
    /// How long ckpt waits for CRIU before killing it; `None` waits for ever.
    pub(crate) op_timeout: Option<Duration>,
    /// Owned by the options once set: written with one `\0` and closed on `status-ready`.
    pub(crate) status_fd: Mutex<Option<OwnedFd>>,
    /// CRIU's pidfd store (an AF_UNIX SOCK_DGRAM socket): sent by its number in this process,
    /// where CRIU takes it with pidfd_getfd; kept for every iteration of a pre-dump series.
    pub(crate) pidfd_store_sk: Option<OwnedFd>,
    pub(crate) notify: Option<Arc<NotifyFn>>,
    /// A running `criu service` socket to use instead of spawning `criu swrk`.
    pub(crate) service_address: Option<PathBuf>,
    /// Restore: how long to wait, before criu starts, for a pid the images need that a
    /// zombie or a dying process still holds (the root of a tree a dump just killed).
    pub(crate) restore_wait: Option<Duration>,
    /// CRIU's version and feature answers, asked once per handle (ops::query).
    pub(crate) criu_answers: Mutex<crate::ops::Answers>,
    /// Asks the running operation to stop (see [`crate::Cancel`]).
    pub(crate) cancel: Option<crate::cancel::Cancel>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("criu_path", &self.criu_path)
            .field("image_path", &self.image_path)
            .field("work_path", &self.work_path)
            .field("parent_path", &self.parent_path)
            .finish_non_exhaustive()
    }
}

/// The most inherited fds ckpt passes. They are criu's descriptors 4 and up; once CRIU's own
/// descriptors pass 1023, criu aborts in its nftables probe, whose select() cannot watch a
/// descriptor of 1024 or above (FD_SETSIZE). A plain restore here takes 1014 and aborts with
/// 1015; the rest is a margin for what other options make CRIU open.
pub const MAX_INHERIT_FDS: usize = 1000;

/// The longest operation timeout or restore wait ckpt keeps (2^32 - 1 seconds, about 136
/// years): longer ones are cut to it, so a deadline counted from the monotonic clock never
/// overflows `Instant` (`Duration::MAX` would, and panic).
pub const MAX_WAIT: Duration = Duration::from_secs(u32::MAX as u64);

/// Rejects what CRIU would misread: an empty value, or a path with a NUL byte.
#[doc(hidden)] // for the C API, which checks a key before it duplicates a descriptor
pub fn check_text(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if s.contains('\0') {
        return Err(Error::invalid(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

/// Rejects an empty path. Paths are bytes (a C string cannot hold NUL): they need not be UTF-8,
/// and CRIU receives them as they are.
pub fn check_path(what: &str, p: &OsStr) -> Result<()> {
    if p.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if p.as_encoded_bytes().contains(&0) {
        return Err(Error::invalid(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

impl Options {
    /// Options with nothing set: each CRIU option left to CRIU's default, no timeout.
    pub fn new() -> Options {
        Options::default()
    }

    /// The page server to send pages to, or to serve lazy pages on: `ADDRESS:PORT`, IPv6 in
    /// brackets (`[::1]:27277`), port 1..65535 (runc `--page-server`).
    pub fn set_page_server(&mut self, s: &str) -> Result<()> {
        check_text("page-server", s)?;
        self.page_server = Some(PageServer::parse(s)?);
        Ok(())
    }

    /// Cgroup management: `soft`, `full`, `strict` or `ignore` (runc
    /// `--manage-cgroups-mode`), and CRIU's `none`, `props` and `default`.
    pub fn set_manage_cgroups_mode(&mut self, s: &str) -> Result<()> {
        self.manage_cgroups_mode = Some(CgroupsMode::parse(s)?);
        Ok(())
    }

    /// A namespace to leave empty on restore; only `network` is accepted, as in runc (runc
    /// `--empty-ns`).
    pub fn add_empty_ns(&mut self, s: &str) -> Result<()> {
        self.empty_ns |= parse_empty_ns(s)?;
        Ok(())
    }

    /// The container's state as the runtime sees it (see [`ContainerStatus::parse`]). A
    /// checkpoint of a created or stopped container is refused before criu starts; with a
    /// status set, a pid that no longer exists or is a zombie counts as stopped.
    pub fn set_container_status(&mut self, s: &str) -> Result<()> {
        self.container_status = Some(ContainerStatus::parse(s)?);
        Ok(())
    }

    /// How CRIU locks the network: `iptables`, `nftables` or `skip`.
    pub fn set_network_lock(&mut self, s: &str) -> Result<()> {
        self.network_lock = Some(NetworkLock::parse(s)?);
        Ok(())
    }

    /// CRIU refuses subdirectories in the log name; refusing them here keeps the log inside the
    /// work directory, where ckpt reads it back for the error excerpt.
    /// A file name, not necessarily UTF-8.
    pub fn set_log_file(&mut self, name: impl AsRef<OsStr>) -> Result<()> {
        let name = name.as_ref();
        check_path("log file name", name)?;
        if name.as_encoded_bytes().contains(&b'/') || name == "." || name == ".." {
            return Err(Error::invalid(format!(
                "log file name {name:?} must be a plain file name without '/'; it is created in the work directory"
            )));
        }
        self.log_file = Some(name.to_os_string());
        Ok(())
    }

    /// CRIU's log verbosity, 0 (none) to 4 (debug). Default 4, as runc, so that a failure
    /// can be explained from the log.
    pub fn set_log_level(&mut self, level: i32) -> Result<()> {
        if !(0..=4).contains(&level) {
            return Err(Error::invalid(format!(
                "log level {level} is out of range 0..4"
            )));
        }
        self.log_level = Some(level);
        Ok(())
    }

    /// lsm-profile is `TYPE:NAME` (apparmor:foo, selinux:...), as runc passes it.
    pub fn set_lsm_profile(&mut self, s: &str) -> Result<()> {
        check_text("lsm-profile", s)?;
        match s.split_once(':') {
            Some((t, n)) if !t.is_empty() && !n.is_empty() => {
                self.lsm_profile = Some(s.to_string());
                Ok(())
            }
            _ => Err(Error::invalid(format!(
                "invalid lsm-profile {s:?}: expected TYPE:NAME, e.g. apparmor:my-profile"
            ))),
        }
    }

    /// Key and value are mount points, paths or names: bytes, not necessarily UTF-8.
    pub fn add_ext_mount(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> Result<()> {
        let (key, val) = (key.as_ref(), val.as_ref());
        check_path("external mount key", key)?;
        check_path("external mount value", val)?;
        self.ext_mounts
            .push((key.to_os_string(), val.to_os_string()));
        Ok(())
    }

    /// Marks a resource external, in CRIU's `--external` syntax, e.g.
    /// `net[4026531992]:extRootNetNS`.
    pub fn add_external(&mut self, s: &str) -> Result<()> {
        check_text("external resource", s)?;
        self.externals.push(s.to_string());
        Ok(())
    }

    /// The status fd must be open for writing. It must not be standard input, output or error:
    /// the library closes the fd once written, and closing the caller's stdio is never wanted.
    /// The descriptor is moved in: refused, it is closed with the error (pass
    /// `fd.try_clone()?` to keep one), unlike the C setter, which leaves it to the caller.
    pub fn set_status_fd(&mut self, fd: OwnedFd) -> Result<()> {
        check_writable_fd("status fd", fd.as_raw_fd())?;
        *self.status_fd.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(fd);
        Ok(())
    }

    /// CRIU refuses anything but a connectionless unix socket for its pidfd store; saying so
    /// here names the setter instead of failing inside a pre-dump. The socket is moved in, and
    /// closed when refused.
    pub fn set_pidfd_store_sk(&mut self, fd: OwnedFd) -> Result<()> {
        use crate::error::Code;
        use nix::sys::socket::{AddressFamily, SockType, SockaddrLike, SockaddrStorage, sockopt};
        let bad = |why: String| Error::new(Code::BadFd, format!("pidfd store socket: {why}"));
        let ty = nix::sys::socket::getsockopt(&fd, sockopt::SockType)
            .map_err(|e| bad(format!("not a socket ({e})")))?;
        let family = nix::sys::socket::getsockname::<SockaddrStorage>(fd.as_raw_fd())
            .map_err(|e| bad(format!("not a socket ({e})")))?
            .family();
        if ty != SockType::Datagram || family != Some(AddressFamily::Unix) {
            return Err(bad(format!(
                "must be an AF_UNIX SOCK_DGRAM socket, not {family:?} {ty:?}"
            )));
        }
        self.pidfd_store_sk = Some(fd);
        Ok(())
    }

    /// On restore, gives the restored tree `fd` where the images name `key` (CRIU
    /// `--inherit-fd`, e.g. `pipe:[12345]`). The options own `fd` from now on (refused, it is
    /// closed). At most [`MAX_INHERIT_FDS`]; one more is refused.
    pub fn add_inherit_fd(&mut self, key: &str, fd: OwnedFd) -> Result<()> {
        check_text("inherit-fd key", key)?;
        if self.inherit_fds.len() >= MAX_INHERIT_FDS {
            return Err(Error::invalid(format!(
                "too many inherited fds: ckpt passes at most {MAX_INHERIT_FDS}. They reach criu \
                 as descriptors 4 and up, and with about 1015 CRIU's own descriptors pass 1023, \
                 which its nftables probe cannot select() on (FD_SETSIZE 1024): CRIU aborts"
            )));
        }
        self.inherit_fds.push((key.to_string(), fd));
        Ok(())
    }

    /// On restore, joins an existing namespace instead of creating one: `ns` is one of net,
    /// pid, mnt, ipc, uts, user, cgroup; `ns_file` its `/proc/PID/ns/...` path; `extra_opt`
    /// CRIU's extra option for it (for user: `UID,GID`).
    pub fn add_join_ns(
        &mut self,
        ns: &str,
        ns_file: impl AsRef<OsStr>,
        extra_opt: Option<&str>,
    ) -> Result<()> {
        let ns_file = ns_file.as_ref();
        const KNOWN: [&str; 7] = ["net", "pid", "mnt", "ipc", "uts", "user", "cgroup"];
        if !KNOWN.contains(&ns) {
            return Err(Error::invalid(format!(
                "invalid namespace {ns:?} to join: expected one of {}",
                KNOWN.join(", ")
            )));
        }
        check_path("join-ns file", ns_file)?;
        if let Some(e) = extra_opt {
            if e.contains('\0') {
                return Err(Error::invalid("join-ns extra option contains a NUL byte"));
            }
        }
        self.join_ns.push(JoinNs {
            ns: ns.to_string(),
            ns_file: PathBuf::from(ns_file),
            extra_opt: extra_opt.map(str::to_string),
        });
        Ok(())
    }

    /// Paths are bytes: not necessarily UTF-8; not empty, without NUL bytes.
    fn set_path(slot: &mut Option<PathBuf>, what: &str, s: impl AsRef<OsStr>) -> Result<()> {
        let s = s.as_ref();
        check_path(what, s)?;
        *slot = Some(PathBuf::from(s));
        Ok(())
    }

    fn set_text(slot: &mut Option<String>, what: &str, s: &str) -> Result<()> {
        check_text(what, s)?;
        *slot = Some(s.to_string());
        Ok(())
    }

    fn push_text(list: &mut Vec<String>, what: &str, s: &str) -> Result<()> {
        check_text(what, s)?;
        list.push(s.to_string());
        Ok(())
    }
}

/// The yes/no settings: each sends its CRIU flag, `false` included, once set.
/// The yes/no options, once each: the setter and, for those that are `criu_opts` fields
/// (all but the ones after `not sent:`), the copy into the request (`copy_flags`). A new
/// yes/no option of CRIU is a line here and its field above; request.rs needs nothing.
macro_rules! flags {
    ($($name:ident => $field:ident),* $(,)?; not sent: $($lname:ident => $lfield:ident),* $(,)?) => {
        impl Options {
            $(
                #[doc = concat!("Sets CRIU's `", stringify!($field), "`.")]
                pub fn $name(&mut self, value: bool) -> &mut Self {
                    self.$field = Some(value);
                    self
                }
            )*
            $(
                #[doc = concat!("Sets `", stringify!($lfield), "`, which ckpt acts on itself.")]
                pub fn $lname(&mut self, value: bool) -> &mut Self {
                    self.$lfield = Some(value);
                    self
                }
            )*

            /// Copies every yes/no option that is a `criu_opts` field into `r`, unset ones as
            /// unset, so `false` reaches CRIU only when it was set.
            pub(crate) fn copy_flags(&self, r: &mut crate::proto::CriuOpts) {
                $(r.$field = self.$field;)*
            }
        }
    };
}

flags!(
    set_leave_running => leave_running,
    set_leave_stopped => leave_stopped,
    set_tcp_established => tcp_established,
    set_tcp_skip_in_flight => tcp_skip_in_flight,
    set_tcp_close => tcp_close,
    set_link_remap => link_remap,
    set_ext_unix_sk => ext_unix_sk,
    set_shell_job => shell_job,
    set_lazy_pages => lazy_pages,
    set_file_locks => file_locks,
    set_track_mem => track_mem,
    set_auto_dedup => auto_dedup,
    set_evasive_devices => evasive_devices,
    set_force_irmap => force_irmap,
    set_auto_ext_mnt => auto_ext_mnt,
    set_ext_sharing => ext_sharing,
    set_ext_masters => ext_masters,
    set_weak_sysctls => weak_sysctls,
    set_orphan_pts_master => orphan_pts_master,
    set_manage_cgroups => manage_cgroups,
    set_mntns_compat_mode => mntns_compat_mode,
    set_skip_file_rwx_check => skip_file_rwx_check,
    set_unprivileged => unprivileged,
    set_display_stats => display_stats,
    set_log_to_stderr => log_to_stderr,
    set_tls => tls,
    set_tls_no_cn_verify => tls_no_cn_verify;
    not sent:
    // A request type, not a field: ckpt_checkpoint sends SINGLE_PRE_DUMP instead of DUMP.
    set_pre_dump => pre_dump,
);

/// Path settings (bytes, not necessarily UTF-8; not empty, no NUL byte).
macro_rules! paths {
    ($($name:ident => $field:ident, $what:literal),* $(,)?) => {
        impl Options {$(
            #[doc = concat!("Sets the ", $what, ".")]
            pub fn $name(&mut self, path: impl AsRef<Path>) -> Result<()> {
                Options::set_path(&mut self.$field, $what, path.as_ref())
            }
        )*}
    };
}

paths!(
    set_image_path => image_path, "image path",
    set_work_path => work_path, "work path",
    set_parent_path => parent_path, "parent path",
    set_criu_path => criu_path, "criu path",
    set_pid_file => pid_file, "pid file",
    set_console_socket => console_socket, "console socket",
    set_service_address => service_address, "service address",
    set_root => root, "root",
    set_freeze_cgroup => freeze_cgroup, "freeze cgroup",
    set_config_file => config_file, "config file",
    set_cgroup_props_file => cgroup_props_file, "cgroup props file",
    set_cgroup_yard => cgroup_yard, "cgroup yard",
    set_tls_cacert => tls_cacert, "TLS CA certificate",
    set_tls_cacrl => tls_cacrl, "TLS CA CRL",
    set_tls_cert => tls_cert, "TLS certificate",
    set_tls_key => tls_key, "TLS key",
);

/// Text settings (not empty, no NUL byte).
macro_rules! texts {
    ($($name:ident => $field:ident, $what:literal),* $(,)?) => {
        impl Options {$(
            #[doc = concat!("Sets the ", $what, ".")]
            pub fn $name(&mut self, value: &str) -> Result<()> {
                Options::set_text(&mut self.$field, $what, value)
            }
        )*}
    };
}

texts!(
    set_lsm_mount_context => lsm_mount_context, "lsm mount context",
    set_cgroup_props => cgroup_props, "cgroup props",
);

/// List settings, one item per call (not empty, no NUL byte).
macro_rules! lists {
    ($($name:ident => $field:ident, $what:literal),* $(,)?) => {
        impl Options {$(
            #[doc = concat!("Adds a ", $what, ".")]
            pub fn $name(&mut self, value: &str) -> Result<()> {
                Options::push_text(&mut self.$field, $what, value)
            }
        )*}
    };
}

lists!(
    add_cgroup_dump_controller => cgroup_dump_controllers, "cgroup controller",
    add_enable_fs => enable_fs, "file system",
    add_exec_cmd => exec_cmd, "exec command word",
);

/// Lists of paths, one item per call (bytes; not empty, no NUL byte).
macro_rules! path_lists {
    ($($name:ident => $field:ident, $what:literal),* $(,)?) => {
        impl Options {$(
            #[doc = concat!("Adds a ", $what, ".")]
            pub fn $name(&mut self, path: impl AsRef<Path>) -> Result<()> {
                let path = path.as_ref();
                check_path($what, path.as_os_str())?;
                self.$field.push(path.to_path_buf());
                Ok(())
            }
        )*}
    };
}

path_lists!(
    add_skip_mount => skip_mounts, "mount point",
    add_irmap_scan_path => irmap_scan_paths, "irmap scan path",
);

impl Options {
    /// How pre-dump reads memory: `splice` or `read`.
    pub fn set_pre_dump_mode(&mut self, s: &str) -> Result<()> {
        self.pre_dump_mode = Some(PreDumpMode::parse(s)?);
        Ok(())
    }

    /// CRIU's own timeout for freezing and collecting the tree, in seconds (CRIU --timeout).
    pub fn set_criu_timeout(&mut self, seconds: u32) -> &mut Self {
        self.criu_timeout = Some(seconds);
        self
    }

    /// How long ckpt waits for CRIU, for each operation as a whole; `None` (or zero) waits
    /// for ever. When it expires criu is killed, with every process it started, and reaped,
    /// and the operation fails with [`Code::Timeout`](crate::Code::Timeout). A container
    /// checkpoint counts it from ckpt's own freezing of the container's cgroup, before criu
    /// starts. A timeout above [`MAX_WAIT`] (such as `Duration::MAX`) is taken as `MAX_WAIT`.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.op_timeout = timeout.filter(|t| !t.is_zero()).map(|t| t.min(MAX_WAIT));
        self
    }

    /// [`Options::set_timeout`] in milliseconds, as the C setter takes it; 0 waits for ever.
    pub fn set_timeout_ms(&mut self, ms: u32) -> &mut Self {
        self.set_timeout(Some(Duration::from_millis(u64::from(ms))))
    }

    /// Restore: how long to wait, before criu starts, for a pid the images need that a zombie
    /// or a dying process still holds (the root of a tree a dump just killed); `None` or zero
    /// does not wait; above [`MAX_WAIT`] it is taken as `MAX_WAIT`. See
    /// `ckpt_opts_set_restore_wait_ms` in include/ckpt.h.
    pub fn set_restore_wait(&mut self, wait: Option<Duration>) -> &mut Self {
        self.restore_wait = wait.filter(|w| !w.is_zero()).map(|w| w.min(MAX_WAIT));
        self
    }

    /// [`Options::set_restore_wait`] in milliseconds, as the C setter takes it.
    pub fn set_restore_wait_ms(&mut self, ms: u32) -> &mut Self {
        self.set_restore_wait(Some(Duration::from_millis(u64::from(ms))))
    }

    /// The largest ghost (deleted but open) file CRIU may store, in bytes.
    pub fn set_ghost_limit(&mut self, bytes: u32) -> &mut Self {
        self.ghost_limit = Some(bytes);
        self
    }

    /// CPU capabilities CRIU checks on restore, as CRIU's cpu_cap bit mask.
    pub fn set_cpu_cap(&mut self, mask: u32) -> &mut Self {
        self.cpu_cap = Some(mask);
        self
    }

    /// Sets the cgroup root for a controller on restore; `None` for all controllers (an
    /// empty controller name is refused: it names none).
    pub fn add_cgroup_root(
        &mut self,
        controller: Option<&str>,
        path: impl AsRef<Path>,
    ) -> Result<()> {
        let path = path.as_ref();
        if let Some(c) = controller {
            check_text("cgroup controller", c)?;
        }
        check_path("cgroup root", path.as_os_str())?;
        self.cgroup_roots
            .push((controller.map(str::to_string), path.to_path_buf()));
        Ok(())
    }

    /// A veth pair to restore: `inside` the tree, `outside` it.
    pub fn add_veth_pair(&mut self, inside: &str, outside: &str) -> Result<()> {
        check_text("veth inside name", inside)?;
        check_text("veth outside name", outside)?;
        self.veths.push((inside.to_string(), outside.to_string()));
        Ok(())
    }

    /// An external unix socket by inode: dumped though its peer is not (one end of a stream
    /// connection included); its restore needs a descriptor connected to the peer, inherited
    /// as `socket:[INODE]`. CRIU reads the inodes only with ext_unix_sk sent: left unset,
    /// ckpt sends it on for them (`ckpt_opts_add_unix_sk_ino` in include/ckpt.h).
    pub fn add_unix_sk_ino(&mut self, inode: u32) -> &mut Self {
        self.unix_sk_inodes.push(inode);
        self
    }

    /// Called for each notification CRIU sends; returning `Err(message)` aborts the operation
    /// with [`Code::Callback`](crate::Code::Callback). A panic in it aborts the operation the
    /// same way, with the same cleanup (criu reaped, a restored tree killed, a container
    /// thawed and its options put back), and then goes on in the caller. `None` removes it.
    pub fn set_notify(&mut self, notify: Option<Arc<NotifyFn>>) -> &mut Self {
        self.notify = notify;
        self
    }

    /// The token that stops an operation run with these options, from another thread: a
    /// trigger before the operation starts fails it at once with
    /// [`Code::Cancelled`](crate::Code::Cancelled), and a trigger while it runs stops criu
    /// the way the operation timeout does (docs/guarantees.md). `None` removes it.
    pub fn set_cancel(&mut self, cancel: Option<&crate::cancel::Cancel>) -> &mut Self {
        self.cancel = cancel.cloned();
        self
    }

    /// Whether `fd` is a descriptor these options own (a status fd, a pidfd store socket, an
    /// inherited fd's duplicate): handing it over again would close it twice.
    pub fn owns_fd(&mut self, fd: RawFd) -> bool {
        let status = self.status_fd.get_mut().unwrap_or_else(|p| p.into_inner());
        status.as_ref().is_some_and(|s| s.as_raw_fd() == fd)
            || self.inherit_fds.iter().any(|(_, f)| f.as_raw_fd() == fd)
            || self
                .pidfd_store_sk
                .as_ref()
                .is_some_and(|f| f.as_raw_fd() == fd)
    }

    /// Adds an inherited fd past the setter's limit, so a test can show what CRIU does there.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn add_inherit_fd_unchecked(&mut self, key: &str, fd: OwnedFd) {
        self.inherit_fds.push((key.to_string(), fd));
    }

    /// The root set with [`Options::set_root`].
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// How many external mount maps are set.
    pub fn ext_mount_count(&self) -> usize {
        self.ext_mounts.len()
    }

    /// The restore wait, as [`Options::set_restore_wait`] kept it.
    pub fn restore_wait(&self) -> Option<Duration> {
        self.restore_wait
    }

    /// The image path set with [`Options::set_image_path`].
    pub fn image_path(&self) -> Option<&Path> {
        self.image_path.as_deref()
    }

    /// The work path set with [`Options::set_work_path`].
    pub fn work_path(&self) -> Option<&Path> {
        self.work_path.as_deref()
    }

    /// The criu binary set with [`Options::set_criu_path`]; unset, `criu` is looked up in
    /// `PATH`.
    pub fn criu_path(&self) -> Option<&Path> {
        self.criu_path.as_deref()
    }

    /// The pid file set with [`Options::set_pid_file`].
    pub fn pid_file(&self) -> Option<&Path> {
        self.pid_file.as_deref()
    }

    /// The console socket set with [`Options::set_console_socket`].
    pub fn console_socket(&self) -> Option<&Path> {
        self.console_socket.as_deref()
    }

    /// The `criu service` socket set with [`Options::set_service_address`].
    pub fn service_address(&self) -> Option<&Path> {
        self.service_address.as_deref()
    }

    /// The operation timeout, as [`Options::set_timeout`] kept it.
    pub fn timeout(&self) -> Option<Duration> {
        self.op_timeout
    }

    /// The container status set with [`Options::set_container_status`].
    pub fn container_status(&self) -> Option<ContainerStatus> {
        self.container_status
    }

    /// Whether [`Options::set_pre_dump`] was set, and to what.
    pub fn pre_dump(&self) -> Option<bool> {
        self.pre_dump
    }

    /// The LSM profile set with [`Options::set_lsm_profile`].
    pub fn lsm_profile(&self) -> Option<&str> {
        self.lsm_profile.as_deref()
    }

    /// The cancellation token set with [`Options::set_cancel`].
    pub fn cancel(&self) -> Option<&crate::cancel::Cancel> {
        self.cancel.as_ref()
    }

    /// Fails with [`Code::Cancelled`](crate::Code::Cancelled) once the token is triggered.
    pub(crate) fn check_cancelled(&self) -> Result<()> {
        self.cancel.as_ref().map_or(Ok(()), |c| c.check())
    }

    /// Whether a notification callback is set.
    pub fn has_notify(&self) -> bool {
        self.notify.is_some()
    }

    /// Whether a pidfd store socket is set.
    pub fn has_pidfd_store_sk(&self) -> bool {
        self.pidfd_store_sk.is_some()
    }

    /// How many inherited fds are set.
    pub fn inherit_fd_count(&self) -> usize {
        self.inherit_fds.len()
    }

    pub(crate) fn image_dir(&self) -> Result<&Path> {
        self.image_path
            .as_deref()
            .ok_or_else(|| Error::invalid("image path is not set"))
    }

    pub(crate) fn take_status_fd(&self) -> Option<OwnedFd> {
        self.status_fd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Whether a status fd is set and not yet written (it is written and closed on CRIU's
    /// `status-ready`).
    pub fn has_status_fd(&self) -> bool {
        self.status_fd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

/// Checks that `fd` is open and writable and is not one of the standard streams.
#[doc(hidden)] // for the C API, which checks a descriptor before it takes ownership
pub fn check_writable_fd(what: &str, fd: RawFd) -> Result<()> {
    use crate::error::Code;
    if fd < 0 {
        return Err(Error::new(Code::BadFd, format!("{what} {fd} is negative")));
    }
    if fd <= 2 {
        return Err(Error::new(
            Code::BadFd,
            format!(
                "{what} {fd} is standard input, output or error; pass a dedicated pipe or file"
            ),
        ));
    }
    // SAFETY: the fd is only inspected with F_GETFL, never closed or used beyond this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let flags = nix::fcntl::fcntl(borrowed, nix::fcntl::FcntlArg::F_GETFL)
        .map_err(|e| Error::new(Code::BadFd, format!("{what} {fd} is not open: {e}")))?;
    let acc = flags & libc::O_ACCMODE;
    if acc != libc::O_WRONLY && acc != libc::O_RDWR {
        return Err(Error::new(
            Code::BadFd,
            format!("{what} {fd} is not open for writing"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_server_forms() {
        assert_eq!(
            PageServer::parse("127.0.0.1:27277").unwrap(),
            PageServer {
                address: "127.0.0.1".into(),
                port: 27277
            }
        );
        assert_eq!(PageServer::parse("[::1]:1").unwrap().address, "::1");
        assert_eq!(PageServer::parse("host.example:65535").unwrap().port, 65535);
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4:0",
            "1.2.3.4:65536",
            ":80",
            "::1:80",
            "[::1]80",
            "[::1",
            "[zz]:80",
            "1.2.3.4:x",
            "1.2.3.4:-1",
        ] {
            assert!(PageServer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cgroup_modes_and_empty_ns() {
        assert_eq!(CgroupsMode::parse("soft").unwrap(), CgroupsMode::Soft);
        assert!(CgroupsMode::parse("SOFT").is_err());
        assert_eq!(
            parse_empty_ns("network").unwrap(),
            libc::CLONE_NEWNET as u32
        );
        assert!(parse_empty_ns("pid").is_err());
    }

    #[test]
    fn log_file_and_lsm() {
        let mut o = Options::new();
        assert!(o.set_log_file("a/b").is_err());
        assert!(o.set_log_file("..").is_err());
        assert!(o.set_log_file("").is_err());
        o.set_log_file("x.log").unwrap();
        assert!(o.set_lsm_profile("apparmor").is_err());
        assert!(o.set_lsm_profile(":x").is_err());
        o.set_lsm_profile("apparmor:p").unwrap();
    }
}
