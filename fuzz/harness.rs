//! What the fuzz targets run, shared with tests/hostile.rs, which replays every input in
//! fuzz/regressions/ through the same code on stable Rust.
//!
//! - `replies`: bytes as CRIU's replies. The input is cut into records, queued on a socket
//!   pair, some with descriptors attached, and ckpt's real transport and session read them
//!   after sending a request: no panic, no hang, no descriptor left open, and success only for
//!   a final reply that is of the request's type and says success.
//! - `c_api`: bytes as a sequence of C API calls on one options handle (setters with arbitrary
//!   bytes, NULL pointers, odd descriptors), then the request ckpt would send is built and
//!   round-tripped through protobuf: no panic (a caught panic returns CKPT_ERR_PANIC, which is
//!   a failure too), and no setter that failed may have changed anything.
#![allow(dead_code)]

use std::ffi::{CStr, c_char};
use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use ckpt::error::{Code, Error};
use ckpt::proto::{CriuOpts, CriuReq, CriuReqType, CriuResp};
use ckpt::request::{FdNumbers, Op};
use ckpt::session::{self, LogRef};
use ckpt::transport::Connection;
use ckpt_ffi::opts::*;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, Shutdown, SockFlag, SockType, sendmsg, shutdown,
    socketpair,
};
use prost::Message;

/// More records than any real conversation has; bounded so queued acknowledgements never fill
/// the peer's receive buffer (ckpt's send would then wait for ever: nobody reads them).
const MAX_RECORDS: usize = 64;

fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

const REQUEST_TYPES: [CriuReqType; 6] = [
    CriuReqType::Dump,
    CriuReqType::Restore,
    CriuReqType::PreDump,
    CriuReqType::Version,
    CriuReqType::FeatureCheck,
    CriuReqType::PageServer,
];

/// Input: one flags byte (request type, which notification the callback fails), then records,
/// each a u16 head (low 10 bits: length; bit 15: descriptors attached, bits 10-14: how many
/// beyond one) and that many bytes.
pub fn replies(data: &[u8]) {
    let _ = CriuResp::decode(data);
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let before = open_fd_count();
    {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let null = File::open("/dev/null").expect("/dev/null");
        let null_fds = [null.as_raw_fd(); 32];
        let mut n = 0;
        while rest.len() >= 2 && n < MAX_RECORDS {
            let head = u16::from_le_bytes([rest[0], rest[1]]);
            rest = &rest[2..];
            let len = usize::from(head & 0x3ff).min(rest.len());
            let (rec, tail) = rest.split_at(len);
            rest = tail;
            let nfds = if head & 0x8000 != 0 {
                1 + usize::from((head >> 10) & 0x1f)
            } else {
                0
            };
            let iov = [IoSlice::new(rec)];
            let fds: &[RawFd] = &null_fds[..nfds];
            let cmsg = [ControlMessage::ScmRights(fds)];
            let cmsgs: &[ControlMessage<'_>] = if nfds > 0 { &cmsg } else { &[] };
            if sendmsg::<()>(
                theirs.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .is_err()
            {
                break;
            }
            n += 1;
        }
        // No more replies: ckpt reads end-of-data after the queued records, never waits.
        shutdown(theirs.as_raw_fd(), Shutdown::Write).expect("shutdown");
        let mut conn = Connection::from_socket(ours, Some(Duration::from_secs(5)));
        let ty = REQUEST_TYPES[usize::from(flags & 0x0f) % REQUEST_TYPES.len()];
        let req = CriuReq {
            r#type: ty as i32,
            opts: Some(CriuOpts::default()),
            ..Default::default()
        };
        let fail_at = u32::from(flags >> 4);
        let mut seen = 0u32;
        let r = session::exchange(&mut conn, &req, "dump", &LogRef::default(), &mut |n| {
            seen += 1;
            let _ = (n.script.len(), n.pid);
            if let Some(fd) = n.fd {
                drop(
                    fd.try_clone_to_owned()
                        .map_err(|e| Error::io("duplicating a descriptor", e))?,
                );
            }
            if seen == fail_at {
                return Err(Error::new(Code::Callback, "the fuzzer's callback fails"));
            }
            Ok(())
        });
        match &r {
            Ok(resp) => {
                assert_eq!(resp.r#type, req.r#type, "success with another type");
                assert!(resp.success, "success from a failure reply");
                assert!(
                    fail_at == 0 || seen < fail_at,
                    "success after an aborted callback"
                );
            }
            Err(e) => assert!(!e.message.is_empty()),
        }
    }
    assert_eq!(open_fd_count(), before, "descriptors left open");
}

/// Reads fuzz input as C API calls.
struct Calls<'a> {
    data: &'a [u8],
    /// Owned NUL-terminated copies handed to the setters; kept until the end, as a caller would.
    strings: Vec<Vec<u8>>,
}

impl<'a> Calls<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.data.get(..4)?;
        let v = u32::from_le_bytes(b.try_into().ok()?);
        self.data = &self.data[4..];
        Some(v)
    }

    /// A string argument: a length byte (0xff: NULL) and that many arbitrary bytes, which may
    /// hold NULs (the C string then ends early) and invalid UTF-8.
    fn text(&mut self) -> *const c_char {
        let Some(len) = self.byte() else {
            return std::ptr::null();
        };
        if len == 0xff {
            return std::ptr::null();
        }
        let len = usize::from(len).min(self.data.len());
        let mut s = self.data[..len].to_vec();
        self.data = &self.data[len..];
        s.push(0);
        self.strings.push(s);
        self.strings.last().unwrap().as_ptr().cast()
    }
}

/// A descriptor argument from a small set: invalid numbers, the standard streams, and
/// descriptors this harness owns. Never an arbitrary number: ckpt takes ownership of a status
/// fd and would close one of the fuzzer's own.
fn fd_arg(sel: u8, mine: &[RawFd]) -> RawFd {
    match sel % 8 {
        0 => -1,
        1 => 0,
        2 => 1,
        3 => 2,
        4 => 1_000_000,
        5 => i32::MIN,
        _ => mine[usize::from(sel) % mine.len()],
    }
}

type TextSetter = unsafe extern "C" fn(*mut ckpt_opts, *const c_char) -> u32;
type BoolSetter = unsafe extern "C" fn(*mut ckpt_opts, bool) -> u32;
type U32Setter = unsafe extern "C" fn(*mut ckpt_opts, u32) -> u32;
type PairSetter = unsafe extern "C" fn(*mut ckpt_opts, *const c_char, *const c_char) -> u32;

const TEXT: &[TextSetter] = &[
    ckpt_opts_set_image_path,
    ckpt_opts_set_work_path,
    ckpt_opts_set_parent_path,
    ckpt_opts_set_criu_path,
    ckpt_opts_set_pid_file,
    ckpt_opts_set_console_socket,
    ckpt_opts_set_service_address,
    ckpt_opts_set_root,
    ckpt_opts_set_freeze_cgroup,
    ckpt_opts_set_lsm_mount_context,
    ckpt_opts_set_config_file,
    ckpt_opts_set_cgroup_props,
    ckpt_opts_set_cgroup_props_file,
    ckpt_opts_set_cgroup_yard,
    ckpt_opts_set_tls_cacert,
    ckpt_opts_set_tls_cacrl,
    ckpt_opts_set_tls_cert,
    ckpt_opts_set_tls_key,
    ckpt_opts_set_page_server,
    ckpt_opts_set_manage_cgroups_mode,
    ckpt_opts_set_network_lock,
    ckpt_opts_set_container_status,
    ckpt_opts_set_log_file,
    ckpt_opts_set_lsm_profile,
    ckpt_opts_set_pre_dump_mode,
    ckpt_opts_add_empty_ns,
    ckpt_opts_add_external,
    ckpt_opts_add_cgroup_dump_controller,
    ckpt_opts_add_skip_mount,
    ckpt_opts_add_enable_fs,
    ckpt_opts_add_irmap_scan_path,
    ckpt_opts_add_exec_cmd,
];

const BOOL: &[BoolSetter] = &[
    ckpt_opts_set_leave_running,
    ckpt_opts_set_leave_stopped,
    ckpt_opts_set_tcp_established,
    ckpt_opts_set_tcp_skip_in_flight,
    ckpt_opts_set_tcp_close,
    ckpt_opts_set_link_remap,
    ckpt_opts_set_ext_unix_sk,
    ckpt_opts_set_shell_job,
    ckpt_opts_set_lazy_pages,
    ckpt_opts_set_file_locks,
    ckpt_opts_set_pre_dump,
    ckpt_opts_set_track_mem,
    ckpt_opts_set_auto_dedup,
    ckpt_opts_set_evasive_devices,
    ckpt_opts_set_force_irmap,
    ckpt_opts_set_auto_ext_mnt,
    ckpt_opts_set_ext_sharing,
    ckpt_opts_set_ext_masters,
    ckpt_opts_set_weak_sysctls,
    ckpt_opts_set_orphan_pts_master,
    ckpt_opts_set_manage_cgroups,
    ckpt_opts_set_mntns_compat_mode,
    ckpt_opts_set_skip_file_rwx_check,
    ckpt_opts_set_unprivileged,
    ckpt_opts_set_display_stats,
    ckpt_opts_set_log_to_stderr,
    ckpt_opts_set_tls,
    ckpt_opts_set_tls_no_cn_verify,
];

const U32: &[U32Setter] = &[
    ckpt_opts_set_criu_timeout,
    ckpt_opts_set_timeout_ms,
    ckpt_opts_set_ghost_limit,
    ckpt_opts_set_cpu_cap,
    ckpt_opts_add_unix_sk_ino,
];

const PAIR: &[PairSetter] = &[
    ckpt_opts_add_ext_mount,
    ckpt_opts_add_cgroup_root,
    ckpt_opts_add_veth_pair,
];

/// The request ckpt would send for these options, as bytes.
fn request_bytes(o: &ckpt::Options, op: Op) -> Vec<u8> {
    let fds = FdNumbers {
        images_dir: 100,
        work_dir: Some(101),
        inherit: (0..o.inherit_fd_count() as i32).map(|i| 4 + i).collect(),
    };
    ckpt::request::build(o, op, Some(1), &fds).encode_to_vec()
}

pub fn c_api(data: &[u8]) {
    let before = open_fd_count();
    let (pr, pw) = nix::unistd::pipe().expect("pipe");
    let mine = [pr.as_raw_fd(), pw.as_raw_fd()];
    let mut calls = Calls {
        data,
        strings: Vec::new(),
    };
    let o = ckpt_opts_new();
    assert!(!o.is_null());
    let mut status_fd_given = false;
    while let Some(op) = calls.byte() {
        // SAFETY: `o` is live; strings live in `calls.strings` until the end.
        let before_req = request_bytes(unsafe { &*o }.options(), Op::Dump);
        // SAFETY: as above; every pointer is NULL or a NUL-terminated copy.
        let st = unsafe {
            match op % 8 {
                0 | 1 => {
                    let i = usize::from(calls.byte().unwrap_or(0)) % TEXT.len();
                    let s = calls.text();
                    TEXT[i](o, s)
                }
                2 => {
                    let b = calls.byte().unwrap_or(0);
                    BOOL[usize::from(b >> 1) % BOOL.len()](o, b & 1 == 1)
                }
                3 => {
                    let i = usize::from(calls.byte().unwrap_or(0)) % U32.len();
                    U32[i](o, calls.u32().unwrap_or(0))
                }
                4 => {
                    let i = usize::from(calls.byte().unwrap_or(0)) % PAIR.len();
                    let (a, b) = (calls.text(), calls.text());
                    PAIR[i](o, a, b)
                }
                5 => {
                    let (a, b, c) = (calls.text(), calls.text(), calls.text());
                    ckpt_opts_add_join_ns(o, a, b, c)
                }
                6 => {
                    let sel = calls.byte().unwrap_or(0);
                    let k = calls.text();
                    let fd = fd_arg(sel, &mine);
                    match sel >> 6 {
                        0 => ckpt_opts_add_inherit_fd(o, k, fd),
                        1 => ckpt_opts_set_pidfd_store_sk(o, fd),
                        // The duplicating form never takes the fuzzer's descriptor.
                        3 => ckpt_opts_set_status_fd_dup(o, fd),
                        _ => {
                            let st = ckpt_opts_set_status_fd(o, fd);
                            if st == 0 && fd == pw.as_raw_fd() {
                                status_fd_given = true;
                            }
                            st
                        }
                    }
                }
                _ => ckpt_opts_set_log_level(o, calls.u32().unwrap_or(0) as i32),
            }
        };
        assert_ne!(st, 14, "CKPT_ERR_PANIC from a setter");
        // SAFETY: `o` is live; the message is owned by it until the next setter call.
        let msg = unsafe { ckpt_opts_last_error(o) };
        if st == 0 {
            assert!(msg.is_null());
        } else {
            assert!(!msg.is_null(), "status {st} without a message");
            // SAFETY: non-NULL and owned by the live handle.
            assert!(!unsafe { CStr::from_ptr(msg) }.to_bytes().is_empty());
            // SAFETY: `o` is live.
            let after = request_bytes(unsafe { &*o }.options(), Op::Dump);
            assert!(before_req == after, "a failed setter changed the request");
        }
    }
    // SAFETY: `o` is live.
    let opts = unsafe { &*o }.options();
    for op in [
        Op::Dump,
        Op::PreDump,
        Op::Restore,
        Op::PageServer,
        Op::Check,
    ] {
        let bytes = request_bytes(opts, op);
        let back = CriuOpts::decode(bytes.as_slice()).expect("ckpt's own request decodes");
        assert_eq!(back.encode_to_vec(), bytes, "request does not round-trip");
        if let Some(l) = &back.log_file {
            assert!(!l.contains(&b'/'), "log file {l:?} has a '/'");
        }
    }
    // SAFETY: freed once; closes whatever descriptors the handle took.
    unsafe { ckpt_opts_free(o) };
    if status_fd_given {
        // The handle owned and closed the write end: forget ours so it is not closed twice.
        std::mem::forget(pw);
    } else {
        drop(pw);
    }
    drop(pr);
    drop(calls.strings);
    assert_eq!(open_fd_count(), before, "descriptors left open");
}
