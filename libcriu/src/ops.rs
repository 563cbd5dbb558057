//! The operations of criu.h, each one CRIU conversation through ckpt's transport and session,
//! with libcriu's return values (see `outcome`). Each runs on its own copy of the options, so
//! a notification callback may call any function of this library, setters included.

use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd;

use ckpt::proto::{CriuFeatures, CriuReq, CriuReqType, CriuResp};
use ckpt::session::{self, LogRef};
use ckpt::{Code, Error};

use crate::connect::{self, Link, Purpose};
use crate::notify;
use crate::opts::{LibOpts, Service};
use crate::outcome::{Failure, Outcome};

/// `int (*more)(criu_predump_info pi)` of criu_dump_iters.
pub type MoreCb = unsafe extern "C" fn(pi: *mut c_void) -> c_int;

/// The answer to a feature check: what CRIU said for each feature asked about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub mem_track: bool,
    pub lazy_pages: bool,
    pub pidfd_store: bool,
}

fn request(o: &LibOpts, ty: CriuReqType, link: &Link, with_opts: bool) -> CriuReq {
    let opts = with_opts.then(|| {
        let mut rpc = o.rpc.clone();
        rpc.inherit_fd = o
            .inherit
            .iter()
            .zip(&link.inherit_numbers)
            .map(|((_, key), &fd)| ckpt::proto::InheritFd {
                key: key.clone(),
                fd,
            })
            .collect();
        rpc
    });
    CriuReq {
        r#type: ty as i32,
        opts,
        ..Default::default()
    }
}

/// Sends `req` and serves notifications until CRIU's final answer, which is checked against
/// libcriu's conventions. A callback that returns non-zero makes CRIU abort; its value is
/// the operation's result, as in libcriu.
fn talk(o: &LibOpts, link: &mut Link, req: &CriuReq) -> Result<CriuResp, Failure> {
    talk_watching(o, link, req, &mut |_| {})
}

/// `talk`, with `watch` seeing each notification first.
fn talk_watching(
    o: &LibOpts,
    link: &mut Link,
    req: &CriuReq,
    watch: &mut dyn FnMut(&ckpt::Notification),
) -> Result<CriuResp, Failure> {
    let mut callback_ret: c_int = 0;
    let r = session::converse(&mut link.conn, req, &LogRef::default(), &mut |n| {
        watch(n);
        if let Some(fd) = n.fd {
            notify::keep_pts_master(fd);
        }
        // As libcriu, which reads the callback from the options at each notification: one
        // the caller set meanwhile (from a callback) answers from then on.
        let cb = crate::registry::current_notify(o.source).unwrap_or(o.notify);
        let Some(cb) = cb else {
            return Ok(());
        };
        let pid = (n.pid != 0).then_some(n.pid);
        match notify::call(cb, n.script, pid) {
            0 => Ok(()),
            r => {
                callback_ret = r;
                Err(Error::new(
                    Code::Callback,
                    format!("callback for {} returned {r}", n.script),
                ))
            }
        }
    });
    let resp = match r {
        Ok(resp) => resp,
        Err(_) if callback_ret != 0 => {
            return Err(Failure::new(callback_ret, libc::ECANCELED));
        }
        Err(e) => return Err(Failure::talk(&e)),
    };
    check_reply(req.r#type, resp)
}

fn check_reply(ty: i32, resp: CriuResp) -> Result<CriuResp, Failure> {
    let errno = resp.cr_errno.unwrap_or(0);
    let or = |fallback: i32| if errno != 0 { errno } else { fallback };
    if resp.r#type != ty {
        // CRIU answers a request type it does not know with EMPTY and success=false.
        if resp.r#type == CriuReqType::Empty as i32 && !resp.success {
            return Err(Failure::new(-libc::EINVAL, or(libc::EINVAL)));
        }
        return Err(Failure::new(-libc::EBADMSG, or(libc::EBADMSG)));
    }
    if !resp.success {
        return Err(Failure::new(-libc::EBADE, errno));
    }
    Ok(resp)
}

/// One request on its own connection.
fn single(
    o: &LibOpts,
    ty: CriuReqType,
    purpose: Purpose,
    with_opts: bool,
) -> Result<CriuResp, Failure> {
    let mut link = connect::open(o, purpose)?;
    let req = request(o, ty, &link, with_opts);
    let resp = talk(o, &mut link, &req);
    link.conn.finish();
    resp
}

/// Fixed: libcriu sends CHECK without options, and CRIU 4.1's check child then crashes
/// (SIGSEGV), so libcriu's criu_check always fails. CRIU needs options with an images
/// directory, which in CHECK mode it only changes into; when the caller set none, `/` serves,
/// and the log goes to stderr rather than into `/`.
pub fn check(o: &LibOpts) -> Outcome {
    applies(o)?;
    let mut o = o.clone();
    let _root = if o.rpc.images_dir_fd < 0 {
        let root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        // A full descriptor table: libcriu's socketpair would fail the same way.
        .map_err(|e| Failure::new(Failure::no_resources(e as i32), e as i32))?;
        o.rpc.images_dir_fd = root.as_raw_fd();
        if o.rpc.work_dir_fd.is_none() {
            o.rpc.log_file = None;
            o.rpc.log_to_stderr = Some(true);
        }
        Some(root)
    } else {
        None
    };
    single(&o, CriuReqType::Check, Purpose::Plain, true).map(|_| 0)
}

/// CRIU applies the options of CHECK, DUMP, PRE_DUMP and RESTORE (not of VERSION or
/// FEATURE_CHECK) and refuses the whole request when one is wrong; an option holding a value
/// this library refused gets the same answer before criu is even started.
fn applies(o: &LibOpts) -> Result<(), Failure> {
    o.refusal().map_or(Ok(()), Err)
}

/// Fixed: a thread that is not its process's leader, a zombie or a kernel thread is refused
/// before criu starts (-EINVAL, errno EINVAL), where CRIU says "No such process" or aborts.
fn check_target(o: &LibOpts) -> Result<(), Failure> {
    match o.rpc.pid {
        Some(pid) if pid > 0 => ckpt::ops::check_dump_target(pid).map_err(|_| Failure::invalid()),
        _ => Ok(()),
    }
}

pub fn dump(o: &LibOpts) -> Outcome {
    applies(o)?;
    check_target(o)?;
    let self_dump = o.rpc.pid.is_none() && matches!(o.service, Service::Binary(_));
    let purpose = if self_dump {
        Purpose::SelfDump
    } else {
        Purpose::Plain
    };
    let resp = single(o, CriuReqType::Dump, purpose, true)?;
    // In a process restored from a self-dump, CRIU's answer says "restored".
    let restored = resp.dump.and_then(|d| d.restored).unwrap_or(false);
    Ok(i32::from(restored))
}

/// Asks CRIU whether it can track memory changes; `keep_open` keeps the connection for the
/// requests that follow.
fn ask_mem_track(link: &mut Link, keep_open: bool) -> Result<(), Failure> {
    let req = CriuReq {
        r#type: CriuReqType::FeatureCheck as i32,
        keep_open: keep_open.then_some(true),
        features: Some(CriuFeatures {
            mem_track: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let resp = session::converse(&mut link.conn, &req, &LogRef::default(), &mut |_| Ok(()))
        .map_err(|e| Failure::talk(&e))?;
    let resp = check_reply(req.r#type, resp)?;
    if resp.features.and_then(|f| f.mem_track) != Some(true) {
        return Err(Failure::new(-libc::EBADE, libc::EOPNOTSUPP));
    }
    Ok(())
}

/// A connection for pre-dumps. CRIU's pre-dump needs the kernel's memory change tracking;
/// without it CRIU hits an internal BUG. Asking first turns that into a clear refusal: -EBADE
/// with errno EOPNOTSUPP. The question goes on a connection of its own (closing one that was
/// kept open makes criu complain on stderr), except with a caller's fd, which is all there is.
fn pre_dump_link(o: &LibOpts) -> Result<Link, Failure> {
    if matches!(o.service, Service::Fd(_) | Service::FdUsed) {
        let mut link = connect::open(o, Purpose::Plain)?;
        ask_mem_track(&mut link, true)?;
        return Ok(link);
    }
    let mut probe = connect::open(o, Purpose::Plain)?;
    let r = ask_mem_track(&mut probe, false);
    probe.conn.finish();
    r?;
    connect::open(o, Purpose::Plain)
}

pub fn pre_dump(o: &LibOpts) -> Outcome {
    applies(o)?;
    check_target(o)?;
    let mut link = pre_dump_link(o)?;
    let req = request(o, CriuReqType::SinglePreDump, &link, true);
    let r = talk(o, &mut link, &req);
    link.conn.finish();
    r.map(|_| 0)
}

/// Pre-dump rounds while `more` returns a positive value, then the dump, on one connection.
/// As in libcriu, a self-dump cannot iterate and `more` is required.
///
/// libcriu sends its options object itself with every request, so what `more` sets on them
/// (the next round's images directory and its parent, as CRIU's own `test_iters` does) goes
/// with the next pre-dump and the final dump. `current` reads the caller's options again after
/// each call of `more` (None: they were freed meanwhile, and the last ones serve).
pub fn dump_iters(
    o: &LibOpts,
    more: Option<MoreCb>,
    current: &dyn Fn() -> Option<LibOpts>,
) -> Outcome {
    let (Some(more), Some(_)) = (more, o.rpc.pid) else {
        o.keep_service_fd();
        return Err(Failure::invalid());
    };
    applies(o)?;
    check_target(o)?;
    let mut link = pre_dump_link(o)?;
    let mut req = request(o, CriuReqType::PreDump, &link, true);
    let mut opts = o.clone();
    let r = (|| {
        loop {
            talk(&opts, &mut link, &req)?;
            // SAFETY: `more` is the program's callback with criu.h's signature; libcriu
            // passes NULL for the (unimplemented) pre-dump statistics, and so does this. The
            // same function with the same C ABI, called through ckpt's thread-exit guard.
            let more_unwind = unsafe {
                std::mem::transmute::<MoreCb, unsafe extern "C-unwind" fn(*mut c_void) -> c_int>(
                    more,
                )
            };
            // SAFETY: as above; the callback gets NULL, as in libcriu.
            let Some(go_on) =
                (unsafe { ckpt::thread_exit::call(more_unwind, std::ptr::null_mut()) })
            else {
                // It ended its thread: no final dump; the exit resumes at the entry point.
                return Err(Failure::new(-libc::ECANCELED, libc::ECANCELED));
            };
            if go_on < 0 {
                return Err(Failure::new(go_on, 0));
            }
            if let Some(now) = current() {
                opts = LibOpts {
                    source: opts.source,
                    ..now
                };
            }
            // A value refused meanwhile: CRIU would refuse this round's request.
            applies(&opts)?;
            // Options reset meanwhile (criu_init_opts) have no pid: CRIU would dump the caller.
            if opts.rpc.pid.is_none() {
                return Err(Failure::invalid());
            }
            if go_on == 0 {
                break;
            }
            req = request(&opts, CriuReqType::PreDump, &link, true);
        }
        let req = request(&opts, CriuReqType::Dump, &link, true);
        talk(&opts, &mut link, &req).map(|_| 0)
    })();
    link.conn.finish();
    r
}

fn restored_pid(resp: CriuResp) -> Outcome {
    resp.restore
        .map(|r| r.pid)
        .ok_or(Failure::new(-libc::EBADMSG, libc::EBADMSG))
}

/// The tree is criu's child, not the caller's. Fixed: a restore that fails once CRIU has
/// made the tree (a callback failing at pre-resume or post-resume, which CRIU ignores and
/// finishes; criu dying) returned an error while the tree ran on, its pid never told. When
/// `post-restore` named the root (notifications are asked for when a callback is set), the
/// tree is killed whole.
pub fn restore(o: &LibOpts) -> Outcome {
    applies(o)?;
    let mut link = connect::open(o, Purpose::Plain)?;
    let req = request(o, CriuReqType::Restore, &link, true);
    let mut root = None;
    let r = talk_watching(o, &mut link, &req, &mut |n| {
        if n.script == ckpt::notify::POST_RESTORE && n.pid > 0 {
            root = ckpt::tree::HeldRoot::hold(n.pid);
        }
    });
    link.conn.finish();
    let r = r.and_then(restored_pid);
    if r.is_err() {
        if let Some(root) = root {
            root.kill_tree();
        }
    }
    r
}

/// The restored tree becomes a child of the caller (CRIU's rst_sibling). Fixed: a restore
/// that fails after CRIU made the tree (a callback failing at post-restore, pre-resume or
/// post-resume, which CRIU itself ignores for the last two; criu dying) left the tree running
/// as the caller's child while the call returned an error. It is killed whole and its root
/// reaped, as in ckpt_restore.
pub fn restore_child(o: &LibOpts) -> Outcome {
    applies(o)?;
    let mut o = o.clone();
    o.rpc.rst_sibling = Some(true);
    // Taken before criu starts: what tells the root CRIU makes this thread's child, for
    // killing it with a criu that lingers or dies (the connection) and for undoing a failure.
    let images = std::path::PathBuf::from(format!("/proc/self/fd/{}", o.rpc.images_dir_fd));
    let hint = ckpt::tree::RestoreRoot::before_restore(&ckpt::tree::read_pstree(&images));
    // libcriu returns -1 when it cannot start criu's swrk (its socketpair or fork failed),
    // not the -ECONNREFUSED of its other operations.
    let mut link = connect::open(&o, Purpose::RestoreChild).map_err(|f| {
        if f.ret == -libc::ECONNREFUSED {
            Failure::new(-1, f.errno)
        } else {
            f
        }
    })?;
    link.conn.restoring(hint.clone());
    let req = request(&o, CriuReqType::Restore, &link, true);
    let mut root = 0;
    let r = talk_watching(&o, &mut link, &req, &mut |n| {
        if n.script == ckpt::notify::POST_RESTORE && n.pid > 0 {
            root = n.pid;
        }
    });
    link.conn.finish();
    let r = r.and_then(restored_pid);
    if r.is_err() {
        if let Some(p) = hint.after_failure(root, &images) {
            ckpt::tree::kill_and_reap(p);
        }
    }
    r
}

/// major*10000 + minor*100 + sublevel; a build from git counts as the next minor release, as
/// in libcriu (and runc).
pub fn version(o: &LibOpts) -> Outcome {
    let resp = single(o, CriuReqType::Version, Purpose::Plain, true)?;
    let v = resp
        .version
        .ok_or(Failure::new(-libc::EBADMSG, libc::EBADMSG))?;
    let mut n = v.major_number * 10000 + v.minor_number * 100 + v.sublevel.unwrap_or(0);
    if v.gitid.is_some() {
        n = n - n % 100 + 100;
    }
    Ok(n)
}

/// 1 when CRIU is at least `minimum`, 0 when older, the failure otherwise.
pub fn check_version(o: &LibOpts, minimum: i32) -> Outcome {
    version(o).map(|v| i32::from(v >= minimum))
}

/// Asks CRIU about the features set in `ask`; a feature not asked about answers false.
pub fn feature_check(o: &LibOpts, ask: Features) -> Result<Features, Failure> {
    let mut link = connect::open(o, Purpose::Plain)?;
    let mut req = request(o, CriuReqType::FeatureCheck, &link, true);
    req.features = Some(CriuFeatures {
        mem_track: ask.mem_track.then_some(true),
        lazy_pages: ask.lazy_pages.then_some(true),
        pidfd_store: ask.pidfd_store.then_some(true),
    });
    let resp = talk(o, &mut link, &req);
    link.conn.finish();
    let f = resp?
        .features
        .ok_or(Failure::new(-libc::EBADMSG, libc::EBADMSG))?;
    Ok(Features {
        mem_track: ask.mem_track && f.mem_track == Some(true),
        lazy_pages: ask.lazy_pages && f.lazy_pages == Some(true),
        pidfd_store: ask.pidfd_store && f.pidfd_store == Some(true),
    })
}
