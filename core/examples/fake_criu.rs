//! A scripted stand-in for `criu swrk`, for fault injection in ckpt's tests only.
//!
//! Invoked as ckpt invokes criu (`fake_criu swrk 3`, the socket at fd 3), it plays the scenario
//! named by `CKPT_FAKE_SCENARIO`, which it inherits from the test through ckpt. With
//! `CKPT_FAKE_TRACE` set it appends one line per request it receives to that file, so a test
//! can check the exact sequence ckpt sent. Scenarios:
//!
//! - `exit-before-reply`: reads the request and exits with status 3.
//! - `exit-leave-holder`: forks a child that keeps the socket open for a few seconds, then exits
//!   with status 7 without replying (ckpt must notice the exit, not wait for end-of-file).
//! - `die-mid-notify`: sends a `pre-dump` notification and kills itself with SIGKILL.
//! - `garbage`: replies with bytes that are not a protobuf message.
//! - `wrong-type`: answers any request with a successful VERSION reply.
//! - `notify-no-body`: sends a NOTIFY reply without its notify body.
//! - `empty-record`: sends a zero-length record.
//! - `big-reply`: answers VERSION with a 1 MiB version name (raising its SO_SNDBUF to send it).
//! - `unexpected-fd`: a `post-dump` notification and the final reply each carry a descriptor.
//! - `many-fds`: the final reply carries 40 descriptors.
//! - `never-reply`: reads the request and sleeps.
//! - `report-fds`: fails the request with `cr_errmsg` = "fds: " and its open descriptors.
//! - `slow-after-post-dump`: sends `post-dump`; when it is acknowledged, takes
//!   `CKPT_FAKE_SLEEP_MS` (default 1500) to finish, then writes stats and succeeds; when it is
//!   refused, fails at once, as CRIU does after resuming the tree.
//! - `lazy-serving`: answers FEATURE_CHECK with lazy pages supported; on DUMP sends `post-dump`
//!   and, once it is acknowledged, serves pages to a restore that never comes: answers only
//!   after `CKPT_FAKE_SLEEP_MS` (default 60000), as a lazy dump does once its pages are fetched.
//! - `close-and-linger`: reads the request, closes its socket and sleeps for a minute.
//! - `restore-orphan`: on RESTORE, makes a sleeping process ckpt's child (CLONE_PARENT, as
//!   CRIU's rst_sibling does), records it as the root in `pstree.img`, and dies by SIGKILL.
//! - `predump`: a well-behaved peer for FEATURE_CHECK, PRE_DUMP and DUMP (see `predump`).
//! - `helper-never-reply`: reads the request, forks a helper that sleeps a minute (its pid in
//!   `helper.pid` in the image directory), and never replies.
//! - `helper-answer-linger`: forks such a helper, answers the request with success, and then
//!   neither reads nor exits for a minute (a page server it started must outlive it).

use std::fs::OpenOptions;
use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use ckpt::proto::{
    CriuFeatures, CriuNotify, CriuReq, CriuReqType, CriuResp, CriuVersion, DumpStatsEntry,
    StatsEntry,
};
use nix::sys::socket::{ControlMessage, MsgFlags, recv, send, sendmsg, setsockopt, sockopt};
use prost::Message;

const SOCK: RawFd = 3;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// One record from ckpt, or None at end-of-file.
fn read_req() -> Option<CriuReq> {
    let len = recv(SOCK, &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC).ok()?;
    if len == 0 {
        return None;
    }
    let mut buf = vec![0u8; len];
    let n = recv(SOCK, &mut buf, MsgFlags::empty()).ok()?;
    let req = CriuReq::decode(&buf[..n]).unwrap_or_else(|e| {
        eprintln!("fake_criu: undecodable request: {e}");
        std::process::exit(90)
    });
    trace(&describe(&req));
    Some(req)
}

fn send_raw(bytes: &[u8]) {
    if let Err(e) = send(SOCK, bytes, MsgFlags::MSG_NOSIGNAL) {
        eprintln!("fake_criu: send of {} bytes: {e}", bytes.len());
        std::process::exit(91);
    }
}

fn reply(resp: &CriuResp) {
    send_raw(&resp.encode_to_vec());
}

fn reply_with_fds(resp: &CriuResp, fds: &[RawFd]) {
    let body = resp.encode_to_vec();
    let iov = [IoSlice::new(&body)];
    if let Err(e) = sendmsg::<()>(
        SOCK,
        &iov,
        &[ControlMessage::ScmRights(fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    ) {
        eprintln!("fake_criu: sendmsg with {} fds: {e}", fds.len());
        std::process::exit(92);
    }
}

fn ok(ty: i32) -> CriuResp {
    CriuResp {
        r#type: ty,
        success: true,
        ..Default::default()
    }
}

fn fail(ty: i32, msg: String) -> CriuResp {
    CriuResp {
        r#type: ty,
        success: false,
        cr_errmsg: Some(msg),
        ..Default::default()
    }
}

fn notify(script: &str) -> CriuResp {
    CriuResp {
        r#type: CriuReqType::Notify as i32,
        success: true,
        notify: Some(CriuNotify {
            script: Some(script.into()),
            pid: Some(std::process::id() as i32),
        }),
        ..Default::default()
    }
}

/// Waits for ckpt to close the connection, so ckpt's reaping sees a prompt, clean exit.
fn drain_and_exit(code: i32) -> ! {
    while read_req().is_some() {}
    std::process::exit(code)
}

fn sleep_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn trace(line: &str) {
    if let Some(path) = env("CKPT_FAKE_TRACE") {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("trace file");
        writeln!(f, "{} {line}", std::process::id()).expect("trace write");
    }
}

/// Where a descriptor number of ckpt's (CRIU's images_dir_fd convention) points, as CRIU
/// itself would open it: through /proc/<peer>/fd.
fn peer_path(fd: i32) -> Option<PathBuf> {
    let ppid = nix::unistd::getppid();
    std::fs::read_link(format!("/proc/{ppid}/fd/{fd}")).ok()
}

fn dir_name(fd: i32) -> String {
    peer_path(fd)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| format!("<fd {fd} unresolvable>"))
}

fn describe(req: &CriuReq) -> String {
    let ty = CriuReqType::try_from(req.r#type)
        .map(|t| format!("{t:?}"))
        .unwrap_or_else(|_| format!("type{}", req.r#type));
    let Some(o) = &req.opts else {
        return ty;
    };
    format!(
        "{ty} dir={} parent={} track_mem={} pid={} log={} ext_mnt={}",
        dir_name(o.images_dir_fd),
        String::from_utf8_lossy(o.parent_img.as_deref().unwrap_or(b"-")),
        o.track_mem.map_or("-".into(), |b| b.to_string()),
        o.pid.unwrap_or(0),
        String::from_utf8_lossy(o.log_file.as_deref().unwrap_or(b"-")),
        o.ext_mnt.len(),
    )
}

/// The descriptors open in this process, except the one used to list them.
fn open_fds() -> Vec<RawFd> {
    let mut fds: Vec<RawFd> = Vec::new();
    let me = format!("/proc/{}/fd", std::process::id());
    for e in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        let Ok(n) = e.file_name().to_string_lossy().parse::<RawFd>() else {
            continue;
        };
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if target.to_string_lossy() != me {
            fds.push(n);
        }
    }
    fds.sort_unstable();
    fds
}

fn write_stats(dir_fd: i32, pages_written: u64) {
    let Some(dir) = peer_path(dir_fd) else {
        return;
    };
    let entry = StatsEntry {
        dump: Some(DumpStatsEntry {
            pages_written: Some(pages_written),
            ..Default::default()
        }),
        restore: None,
    };
    let body = entry.encode_to_vec();
    // CRIU's image framing: two magic words, then a u32 length and the message.
    let mut img = vec![0u8; 8];
    img.extend_from_slice(&(body.len() as u32).to_le_bytes());
    img.extend_from_slice(&body);
    let _ = std::fs::write(dir.join("stats-dump"), img);
}

/// Forks a child that sleeps a minute, as CRIU forks its helpers, and records its pid as
/// `helper.pid` in the request's image directory.
fn fork_helper(req: &CriuReq) {
    // SAFETY: single-threaded here; the child only sleeps and exits.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            std::thread::sleep(Duration::from_secs(60));
            std::process::exit(0)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let dir_fd = req.opts.as_ref().map_or(-1, |o| o.images_dir_fd);
            if let Some(dir) = peer_path(dir_fd) {
                let _ = std::fs::write(dir.join("helper.pid"), child.to_string());
            }
        }
        Err(e) => {
            eprintln!("fake_criu: fork: {e}");
            std::process::exit(94)
        }
    }
}

/// A well-behaved peer for the iterative pre-dump sequence. FEATURE_CHECK reports mem_track as
/// `CKPT_FAKE_MEM_TRACK` says (default yes). PRE_DUMP and DUMP succeed and leave a stats-dump
/// with pages_written = 100 * the request's number on this connection, except the request
/// numbered `CKPT_FAKE_FAIL_AT`, which fails.
fn predump() -> ! {
    let mem_track = env("CKPT_FAKE_MEM_TRACK").as_deref() != Some("0");
    let fail_at: Option<u32> = env("CKPT_FAKE_FAIL_AT").and_then(|v| v.parse().ok());
    let mut n = 0u32;
    while let Some(req) = read_req() {
        let ty = req.r#type;
        if ty == CriuReqType::FeatureCheck as i32 {
            reply(&CriuResp {
                r#type: ty,
                success: mem_track,
                features: Some(CriuFeatures {
                    mem_track: Some(mem_track),
                    lazy_pages: None,
                    pidfd_store: None,
                }),
                ..Default::default()
            });
            continue;
        }
        if ty != CriuReqType::PreDump as i32 && ty != CriuReqType::Dump as i32 {
            reply(&fail(
                ty,
                format!("fake criu: unexpected request type {ty}"),
            ));
            continue;
        }
        n += 1;
        if fail_at == Some(n) {
            reply(&CriuResp {
                cr_errno: Some(libc::EIO),
                ..fail(ty, format!("fake criu: request {n} fails as scripted"))
            });
            continue;
        }
        let dir_fd = req.opts.as_ref().map_or(-1, |o| o.images_dir_fd);
        write_stats(dir_fd, 100 * u64::from(n));
        reply(&ok(ty));
    }
    std::process::exit(0)
}

/// A process that ends up as ckpt's child, as a restored root does, and a pstree.img naming
/// it; then criu "dies" before it could say anything.
fn restore_orphan() -> ! {
    let req = read_req().unwrap_or_else(|| std::process::exit(93));
    // SAFETY: raw clone with CLONE_PARENT and no new stack: a fork whose parent is ours. The
    // child only blocks signals it may block and sleeps.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_PARENT | libc::SIGCHLD,
            0,
            0,
            0,
            0,
        )
    };
    if pid == 0 {
        // SAFETY: an all-ones mask; SIGKILL and SIGSTOP stay deliverable whatever is asked.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut set);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        sleep_forever()
    }
    if let Some(dir) = peer_path(req.opts.as_ref().map_or(-1, |o| o.images_dir_fd)) {
        // pstree entry: pid (1), ppid (2), pgid (3), sid (4) as varints.
        let pid = pid as u64;
        let mut body = Vec::new();
        for tag in [0x08u8, 0x10, 0x18, 0x20] {
            body.push(tag);
            prost::encoding::encode_varint(if tag == 0x10 { 0 } else { pid }, &mut body);
        }
        let mut img = vec![0u8; 8];
        img.extend_from_slice(&(body.len() as u32).to_le_bytes());
        img.extend_from_slice(&body);
        let _ = std::fs::write(dir.join("pstree.img"), img);
    }
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    sleep_forever()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("swrk")
        || args.get(2).map(String::as_str) != Some("3")
    {
        eprintln!("fake_criu: expected `swrk 3`, got {:?}", &args[1..]);
        std::process::exit(2);
    }
    let scenario = env("CKPT_FAKE_SCENARIO").unwrap_or_else(|| "predump".into());
    match scenario.as_str() {
        "exit-before-reply" => {
            read_req();
            std::process::exit(3)
        }
        "log-and-fail" | "fail-unlogged" => {
            // A CRIU that answers a failure, having logged why in the log the request names
            // (or, fail-unlogged, without writing it or saying why).
            let req = read_req().expect("a request");
            let o = req.opts.clone().unwrap_or_default();
            let name =
                String::from_utf8_lossy(o.log_file.as_deref().unwrap_or(b"criu.log")).into_owned();
            if let Some(dir) = peer_path(o.images_dir_fd).filter(|_| scenario == "log-and-fail") {
                let _ = std::fs::write(
                    dir.join(name),
                    "(00.000001) Error (fake): failing as scripted\n",
                );
            }
            let why = if scenario == "log-and-fail" {
                "failing as scripted"
            } else {
                ""
            };
            reply(&fail(req.r#type, why.into()));
            drain_and_exit(0)
        }
        "exit-leave-holder" => {
            read_req();
            // SAFETY: single-threaded here; the child only sleeps and exits.
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => {
                    std::thread::sleep(Duration::from_secs(5));
                    std::process::exit(0)
                }
                _ => std::process::exit(7),
            }
        }
        "die-mid-notify" => {
            read_req();
            reply(&notify("pre-dump"));
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            sleep_forever()
        }
        "garbage" => {
            read_req();
            send_raw(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff this is not protobuf");
            drain_and_exit(0)
        }
        "wrong-type" => {
            read_req();
            reply(&CriuResp {
                version: Some(CriuVersion {
                    major_number: 4,
                    minor_number: 1,
                    ..Default::default()
                }),
                ..ok(CriuReqType::Version as i32)
            });
            drain_and_exit(0)
        }
        "notify-no-body" => {
            read_req();
            reply(&ok(CriuReqType::Notify as i32));
            drain_and_exit(0)
        }
        "empty-record" => {
            read_req();
            send_raw(&[]);
            drain_and_exit(0)
        }
        "big-reply" => {
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            // SAFETY: fd 3 is the socket ckpt gave us; it stays open for the process's life.
            let sock = std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(SOCK) });
            let want = 4 << 20;
            if setsockopt(&*sock, sockopt::SndBufForce, &want).is_err() {
                let _ = setsockopt(&*sock, sockopt::SndBuf, &want);
            }
            reply(&CriuResp {
                version: Some(CriuVersion {
                    major_number: 4,
                    minor_number: 1,
                    sublevel: Some(1),
                    name: Some("x".repeat(1 << 20)),
                    ..Default::default()
                }),
                ..ok(req.r#type)
            });
            drain_and_exit(0)
        }
        "unexpected-fd" => {
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            let f = std::fs::File::open("/dev/null").expect("/dev/null");
            reply_with_fds(&notify("post-dump"), &[f.as_raw_fd()]);
            let ack = read_req();
            if ack.and_then(|a| a.notify_success) != Some(true) {
                std::process::exit(94);
            }
            reply_with_fds(&ok(req.r#type), &[f.as_raw_fd()]);
            drain_and_exit(0)
        }
        "many-fds" => {
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            let f = std::fs::File::open("/dev/null").expect("/dev/null");
            reply_with_fds(&ok(req.r#type), &[f.as_raw_fd(); 40]);
            drain_and_exit(0)
        }
        "never-reply" => {
            read_req();
            sleep_forever()
        }
        "report-fds" => {
            let fds = open_fds();
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            let list: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
            reply(&fail(req.r#type, format!("fds: {}", list.join(" "))));
            drain_and_exit(0)
        }
        "slow-after-post-dump" => {
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            reply(&notify("post-dump"));
            let ack = read_req().and_then(|a| a.notify_success);
            if ack != Some(true) {
                reply(&fail(req.r#type, "fake criu: post-dump refused".into()));
                drain_and_exit(0)
            }
            let ms = env("CKPT_FAKE_SLEEP_MS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1500);
            std::thread::sleep(Duration::from_millis(ms));
            write_stats(req.opts.as_ref().map_or(-1, |o| o.images_dir_fd), 7);
            reply(&ok(req.r#type));
            drain_and_exit(0)
        }
        "lazy-serving" => {
            while let Some(req) = read_req() {
                if req.r#type == CriuReqType::FeatureCheck as i32 {
                    reply(&CriuResp {
                        r#type: req.r#type,
                        success: true,
                        features: Some(CriuFeatures {
                            mem_track: None,
                            lazy_pages: Some(true),
                            pidfd_store: None,
                        }),
                        ..Default::default()
                    });
                    continue;
                }
                reply(&notify("post-dump"));
                if read_req().and_then(|a| a.notify_success) != Some(true) {
                    reply(&fail(req.r#type, "fake criu: post-dump refused".into()));
                    drain_and_exit(0)
                }
                let ms = env("CKPT_FAKE_SLEEP_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60000);
                std::thread::sleep(Duration::from_millis(ms));
                write_stats(req.opts.as_ref().map_or(-1, |o| o.images_dir_fd), 7);
                reply(&ok(req.r#type));
                drain_and_exit(0)
            }
            std::process::exit(0)
        }
        "close-and-linger" => {
            read_req();
            // SAFETY: closing our own socket, which nothing else in this process uses.
            unsafe { libc::close(SOCK) };
            std::thread::sleep(Duration::from_secs(60));
            std::process::exit(0)
        }
        "helper-never-reply" => {
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            fork_helper(&req);
            std::thread::sleep(Duration::from_secs(60));
            std::process::exit(0)
        }
        "helper-answer-linger" => {
            let req = read_req().unwrap_or_else(|| std::process::exit(93));
            fork_helper(&req);
            reply(&ok(req.r#type));
            std::thread::sleep(Duration::from_secs(60));
            std::process::exit(0)
        }
        "restore-orphan" => restore_orphan(),
        "predump" => predump(),
        other => {
            eprintln!("fake_criu: unknown scenario {other:?}");
            std::process::exit(2)
        }
    }
}
