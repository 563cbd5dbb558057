//! libcriu's option set: CRIU's `criu_opts` message as the caller builds it, plus how to reach
//! CRIU and the notification callback. Setters validate what they can, replace what they set
//! (a string set twice frees the first copy, unlike libcriu) and never leave a half-applied
//! value behind.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use ckpt::proto::{
    CgroupRoot, CriuOpts, CriuPageServerInfo, CriuVethPair, ExtMountMap, JoinNamespace, UnixSk,
};

use crate::notify::NotifyCb;
use crate::outcome::Failure;
use crate::service_fd::{Claim, FdClaim};

/// The binary libcriu runs when nothing else is set: `criu` from PATH.
pub const DEFAULT_SERVICE_BINARY: &str = "criu";
/// Where `criu service` listens by default (CRIU's CR_DEFAULT_SERVICE_ADDRESS).
pub const DEFAULT_SERVICE_ADDRESS: &str = "/var/run/criu_service.socket";

/// How operations reach CRIU (libcriu's `enum criu_service_comm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    /// `criu swrk` started for each operation (CRIU_COMM_BIN).
    Binary(OsString),
    /// A running `criu service` socket (CRIU_COMM_SK).
    Socket(PathBuf),
    /// A socket the caller connected to CRIU itself (CRIU_COMM_FD); `None` for a negative
    /// number. As in libcriu, the next operation uses it and closes it.
    Fd(Option<RawFd>),
    /// The fd an earlier operation used and closed. libcriu keeps the number and writes the
    /// next request to it, which fails (-ECOMM); this library fails the same way without
    /// touching the number, which may name another descriptor by then.
    FdUsed,
    /// The caller named a binary this library refused (empty): operations fail as libcriu's
    /// exec of it does (-ECOMM) rather than run another criu, criu_restore_child included.
    RefusedBinary,
    /// The caller named a socket address this library refused (empty, or too long for a
    /// socket address): operations fail to connect, as libcriu's do (-ECONNREFUSED), except
    /// criu_restore_child, which starts `criu` from PATH whenever a service is set, as in
    /// libcriu.
    RefusedAddress,
}

/// A setter's refusal, as the errno libcriu's int-returning setters report negated.
/// `Refused::LIBCRIU` is libcriu's own refusal (it returns -1 and stores nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused(pub i32);

impl Refused {
    /// libcriu itself refuses the value (network lock, pre-dump mode, inherit fd for a
    /// service): -1, nothing stored, nothing remembered.
    pub const LIBCRIU: Refused = Refused(-1);
}

pub type SetResult = Result<(), Refused>;

fn invalid() -> Refused {
    Refused(libc::EINVAL)
}

/// What CRIU receives in a protobuf string: any bytes (CRIU never checks UTF-8; Linux paths
/// are bytes), but not empty.
pub fn check_text(s: &[u8]) -> SetResult {
    if s.is_empty() { Err(invalid()) } else { Ok(()) }
}

/// The option a setter changes, so a value this library refused is remembered until the
/// option is set again (`One`) or for good (`List`: the refused item stays "in" the list, as
/// it would in libcriu's), and the next operation fails as CRIU would fail it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    One(&'static str),
    List(&'static str),
}

/// Which options an operation's copy was taken from (`Source::None` in the options
/// themselves), so the operation can read what the caller sets on them while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    #[default]
    None,
    Global,
    Handle(usize),
}

#[derive(Clone)]
pub struct LibOpts {
    pub rpc: CriuOpts,
    pub notify: Option<NotifyCb>,
    pub service: Service,
    /// (caller's fd, key): criu receives each descriptor at a number of its own, which
    /// replaces the caller's number in the request.
    pub inherit: Vec<(RawFd, Vec<u8>)>,
    /// Options set to a value this library refused. libcriu stores such values and CRIU then
    /// refuses the whole request; dropping them instead would turn a request CRIU refuses
    /// into one it carries out with defaults (a dump!). So while any is here, every
    /// operation CRIU applies options to fails as CRIU would: -EBADE, errno EBADRQC.
    pub refused: BTreeSet<&'static str>,
    /// In an operation's copy: what the operation did with a service fd it was handed
    /// (`service_fd::settle`).
    pub fd_claim: Claim,
    /// In an operation's copy: the options it was taken from.
    pub source: Source,
}

impl Default for LibOpts {
    fn default() -> LibOpts {
        LibOpts::new()
    }
}

impl LibOpts {
    /// libcriu's defaults: images_dir_fd -1 (unset), swrk with `criu` from PATH.
    pub fn new() -> LibOpts {
        LibOpts {
            rpc: CriuOpts {
                images_dir_fd: -1,
                ..Default::default()
            },
            notify: None,
            service: Service::Binary(DEFAULT_SERVICE_BINARY.into()),
            inherit: Vec::new(),
            refused: BTreeSet::new(),
            fd_claim: Claim::default(),
            source: Source::None,
        }
    }

    /// Runs a setter of `opt` and remembers whether the option now holds a refused value.
    pub fn apply(&mut self, opt: Opt, f: impl FnOnce(&mut LibOpts) -> SetResult) -> SetResult {
        let r = f(self);
        match (r, opt) {
            (Ok(()), Opt::One(name)) => {
                self.refused.remove(name);
            }
            (Err(Refused::LIBCRIU), _) | (Ok(()), Opt::List(_)) => {}
            (Err(_), Opt::One(name) | Opt::List(name)) => {
                self.refused.insert(name);
            }
        }
        r
    }

    /// The failure of an operation CRIU applies these options to, when one holds a refused
    /// value: what CRIU answers a request whose options it cannot accept.
    pub fn refusal(&self) -> Option<Failure> {
        (!self.refused.is_empty()).then(|| Failure::new(-libc::EBADE, libc::EBADRQC))
    }

    /// A copy for one operation, so the caller's callback may change these options while the
    /// operation runs. When the operation uses the service fd, the fd is handed to the copy and
    /// forgotten here: the operation closes it, as libcriu does, and a second use must not
    /// close a number since reused. (criu_restore_child never uses it.)
    pub fn for_operation(&mut self, uses_service_fd: bool) -> LibOpts {
        let mut copy = self.clone();
        copy.fd_claim = Claim::default();
        if let (Service::Fd(Some(_)), true) = (&self.service, uses_service_fd) {
            self.service = Service::FdUsed;
        }
        copy
    }

    /// Takes back a service fd an operation did not use (libcriu's own argument checks
    /// failed before it connected), unless another service was set meanwhile.
    pub fn hand_back_service_fd(&mut self, fd: RawFd) {
        if self.service == Service::FdUsed {
            self.service = Service::Fd(Some(fd));
        }
    }

    /// libcriu's own argument checks fail before it connects: the service fd, if any, stays
    /// for the next operation.
    pub fn keep_service_fd(&self) {
        self.fd_claim.set(FdClaim::Kept);
    }

    /// A refused binary or address is kept as such (`Service::RefusedBinary`,
    /// `Service::RefusedAddress`): no operation then reaches another CRIU than libcriu's would.
    pub fn set_service_binary(&mut self, path: Option<OsString>) -> SetResult {
        let path = path.unwrap_or_else(|| DEFAULT_SERVICE_BINARY.into());
        if path.is_empty() {
            self.service = Service::RefusedBinary;
            return Err(invalid());
        }
        self.service = Service::Binary(path);
        Ok(())
    }

    pub fn set_service_address(&mut self, path: Option<PathBuf>) -> SetResult {
        let path = path.unwrap_or_else(|| DEFAULT_SERVICE_ADDRESS.into());
        // sun_path holds 107 bytes and the NUL; libcriu refuses longer paths when connecting.
        let len = path.as_os_str().len();
        if len == 0 || len >= 108 {
            self.service = Service::RefusedAddress;
            return Err(invalid());
        }
        self.service = Service::Socket(path);
        Ok(())
    }

    pub fn set_service_fd(&mut self, fd: RawFd) {
        self.service = Service::Fd((fd >= 0).then_some(fd));
    }

    pub fn set_notify(&mut self, cb: Option<NotifyCb>) {
        self.notify = cb;
        // libcriu asks for notifications as soon as a callback is set (even a NULL one).
        self.rpc.notify_scripts = Some(true);
    }

    /// CRIU refuses a log name with '/' (it writes the log in the work directory); saying so
    /// here names the mistake at the call that made it.
    pub fn set_log_file(&mut self, name: &[u8]) -> SetResult {
        check_text(name)?;
        if name.contains(&b'/') {
            return Err(invalid());
        }
        self.rpc.log_file = Some(name.to_vec());
        Ok(())
    }

    /// `criu_add_unix_sk`: turns ext_unix_sk on when unset; refused with -1 (and the list
    /// dropped) when the caller switched ext_unix_sk off, as libcriu does.
    pub fn add_unix_sk(&mut self, inode: u32) -> SetResult {
        match self.rpc.ext_unix_sk {
            None => self.rpc.ext_unix_sk = Some(true),
            Some(false) => {
                self.rpc.unix_sk_ino.clear();
                return Err(Refused::LIBCRIU);
            }
            Some(true) => {}
        }
        self.rpc.unix_sk_ino.push(UnixSk { inode });
        Ok(())
    }

    /// As libcriu: no arguments means no command (CRIU runs one only when the list is not
    /// empty), and an empty argument is sent as it is (CRIU accepts the request; only its
    /// exec after the restore fails, leaving the restored tree running).
    pub fn set_exec_cmd(&mut self, argv: Vec<Vec<u8>>) -> SetResult {
        self.rpc.exec_cmd = argv;
        Ok(())
    }

    pub fn add_ext_mount(&mut self, key: &[u8], val: &[u8]) -> SetResult {
        // CRIU refuses an empty key, not an empty value.
        check_text(key)?;
        self.rpc.ext_mnt.push(ExtMountMap {
            key: key.into(),
            val: val.into(),
        });
        Ok(())
    }

    pub fn add_veth_pair(&mut self, inside: &[u8], outside: &[u8]) -> SetResult {
        self.rpc.veths.push(CriuVethPair {
            if_in: inside.into(),
            if_out: outside.into(),
        });
        Ok(())
    }

    pub fn add_cg_root(&mut self, ctrl: Option<&[u8]>, path: &[u8]) -> SetResult {
        self.rpc.cg_root.push(CgroupRoot {
            ctrl: ctrl.map(<[u8]>::to_vec),
            path: path.into(),
        });
        Ok(())
    }

    /// As libcriu: only swrk can pass descriptors (-1 for a service, nothing stored), and the
    /// descriptor is not checked here; an operation with one that is not open fails then.
    pub fn add_inherit_fd(&mut self, fd: RawFd, key: &[u8]) -> SetResult {
        if !matches!(self.service, Service::Binary(_) | Service::RefusedBinary) {
            return Err(Refused::LIBCRIU);
        }
        // Fixed: past ckpt's limit CRIU aborts in its nftables probe (FD_SETSIZE).
        if self.inherit.len() >= ckpt::options::MAX_INHERIT_FDS {
            return Err(Refused(libc::EMFILE));
        }
        self.inherit.push((fd, key.into()));
        Ok(())
    }

    /// Fixed: libcriu returns -ENOMEM here even when it succeeded.
    pub fn set_page_server(&mut self, address: &[u8], port: i32) -> SetResult {
        check_text(address)?;
        if !(1..=65535).contains(&port) {
            return Err(invalid());
        }
        self.rpc.ps = Some(CriuPageServerInfo {
            address: Some(address.into()),
            port: Some(port),
            pid: None,
            fd: None,
        });
        Ok(())
    }

    /// As libcriu: another value is refused with -1 and nothing is stored.
    pub fn set_pre_dump_mode(&mut self, mode: i32) -> SetResult {
        // criu.h: CRIU_PRE_DUMP_SPLICE = 1, CRIU_PRE_DUMP_READ = 2.
        if !(1..=2).contains(&mode) {
            return Err(Refused::LIBCRIU);
        }
        self.rpc.pre_dump_mode = Some(mode);
        Ok(())
    }

    /// As libcriu: another value is refused with -1 and nothing is stored.
    pub fn set_network_lock(&mut self, method: i32) -> SetResult {
        // criu.h: IPTABLES = 1, NFTABLES = 2, SKIP = 3.
        if !(1..=3).contains(&method) {
            return Err(Refused::LIBCRIU);
        }
        self.rpc.network_lock = Some(method);
        Ok(())
    }

    /// libcriu sends any number and CRIU refuses one outside `enum criu_cg_mode`; the setter
    /// returns nothing, so the refusal is remembered for the next operation.
    pub fn set_manage_cgroups_mode(&mut self, mode: i32) -> SetResult {
        if !(0..=6).contains(&mode) {
            return Err(invalid());
        }
        self.rpc.manage_cgroups_mode = Some(mode);
        Ok(())
    }

    pub fn join_ns_add(&mut self, ns: &[u8], ns_file: &[u8], extra: Option<&[u8]>) -> SetResult {
        check_text(ns)?;
        check_text(ns_file)?;
        self.rpc.join_ns.push(JoinNamespace {
            ns: ns.into(),
            ns_file: ns_file.into(),
            extra_opt: extra.map(<[u8]>::to_vec),
        });
        Ok(())
    }
}

/// Whether `fd` names an open descriptor in this process.
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor flags; an invalid number yields EBADF.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_libcriu() {
        let o = LibOpts::new();
        assert_eq!(o.rpc.images_dir_fd, -1);
        assert_eq!(o.service, Service::Binary("criu".into()));
        assert_eq!(o.rpc.notify_scripts, None);
    }

    #[test]
    fn service_fd_is_used_once() {
        let mut o = LibOpts::new();
        o.set_service_fd(7);
        assert_eq!(o.for_operation(false).service, Service::Fd(Some(7)));
        assert_eq!(o.service, Service::Fd(Some(7)));
        let op = o.for_operation(true);
        assert_eq!(op.service, Service::Fd(Some(7)));
        assert_eq!(o.service, Service::FdUsed);
        o.set_service_fd(-1);
        o.for_operation(true);
        assert_eq!(o.service, Service::Fd(None));
    }

    #[test]
    fn setters_refuse_bad_values() {
        let mut o = LibOpts::new();
        o.set_log_file(b"dump.log").unwrap();
        assert_eq!(o.set_log_file(b"a/b.log"), Err(Refused(libc::EINVAL)));
        assert_eq!(o.set_log_file(b""), Err(Refused(libc::EINVAL)));
        assert_eq!(o.set_log_file(b"caf\xe9.log"), Ok(()));
        assert_eq!(o.rpc.log_file.as_deref(), Some(&b"caf\xe9.log"[..]));
        assert!(o.set_page_server(b"127.0.0.1", 0).is_err());
        assert!(o.set_page_server(b"127.0.0.1", 65536).is_err());
        assert!(o.set_page_server(b"", 1).is_err());
        assert_eq!(o.set_page_server(b"127.0.0.1", 27277), Ok(()));
        assert_eq!(o.set_pre_dump_mode(3), Err(Refused::LIBCRIU));
        assert_eq!(o.set_network_lock(0), Err(Refused::LIBCRIU));
        o.set_manage_cgroups_mode(3).unwrap();
        assert!(o.set_manage_cgroups_mode(42).is_err());
        assert_eq!(o.rpc.manage_cgroups_mode, Some(3));
        assert_eq!(o.set_exec_cmd(vec![b"true".to_vec()]), Ok(()));
        assert_eq!(o.set_exec_cmd(vec![]), Ok(()));
        assert!(o.rpc.exec_cmd.is_empty());
        assert!(o.set_service_address(Some("x".repeat(108).into())).is_err());
        assert_eq!(o.service, Service::RefusedAddress);
        assert!(o.set_service_binary(Some("".into())).is_err());
        assert_eq!(o.service, Service::RefusedBinary);
    }

    #[test]
    fn a_refused_value_is_remembered_until_replaced() {
        let mut o = LibOpts::new();
        let log = Opt::One("log_file");
        assert!(o.apply(log, |o| o.set_log_file(b"../x.log")).is_err());
        assert_eq!(o.refusal(), Some(Failure::new(-libc::EBADE, libc::EBADRQC)));
        o.apply(log, |o| o.set_log_file(b"x.log")).unwrap();
        assert_eq!(o.refusal(), None);
        // libcriu's own refusals store nothing and are not remembered.
        assert!(
            o.apply(Opt::One("network_lock"), |o| o.set_network_lock(7))
                .is_err()
        );
        assert_eq!(o.refusal(), None);
        // A refused item of a list stays refused.
        let ext = Opt::List("ext_mnt");
        assert!(o.apply(ext, |o| o.add_ext_mount(b"", b"x")).is_err());
        o.apply(ext, |o| o.add_ext_mount(b"k", b"v")).unwrap();
        assert!(o.refusal().is_some());
    }

    #[test]
    fn unix_sk_follows_ext_unix_sk() {
        let mut o = LibOpts::new();
        o.add_unix_sk(5).unwrap();
        assert_eq!(o.rpc.ext_unix_sk, Some(true));
        o.rpc.ext_unix_sk = Some(false);
        assert!(o.add_unix_sk(6).is_err());
        assert!(o.rpc.unix_sk_ino.is_empty());
    }

    #[test]
    fn inherit_fd_needs_swrk() {
        let mut o = LibOpts::new();
        assert_eq!(o.add_inherit_fd(1_000_000, b"k"), Ok(()));
        assert_eq!(o.add_inherit_fd(0, b"k"), Ok(()));
        o.set_service_address(None).unwrap();
        assert_eq!(o.add_inherit_fd(0, b"k"), Err(Refused::LIBCRIU));
    }

    #[test]
    fn inherit_fds_stop_at_criu_s_limit() {
        let mut o = LibOpts::new();
        for _ in 0..ckpt::options::MAX_INHERIT_FDS {
            o.add_inherit_fd(0, b"k").unwrap();
        }
        assert_eq!(o.add_inherit_fd(0, b"k"), Err(Refused(libc::EMFILE)));
        assert_eq!(o.inherit.len(), ckpt::options::MAX_INHERIT_FDS);
        // Remembered, as the setter's refusals are: no restore runs without that descriptor.
        assert_eq!(o.refusal(), None);
        assert!(
            o.apply(Opt::List("inherit_fd"), |o| o.add_inherit_fd(0, b"k"))
                .is_err()
        );
        assert_eq!(o.refusal(), Some(Failure::new(-libc::EBADE, libc::EBADRQC)));
    }
}
