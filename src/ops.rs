//! The operations: checkpoint, pre-dump, restore, page server, lazy pages, version, features
//! and check. Each validates what it can before criu starts, then runs one CRIU conversation.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Code, Error, Result};
use crate::notify::{self, Notification};
use crate::options::{ContainerStatus, Options};
use crate::paths::{self, Dir};
use crate::proto::{CriuFeatures, CriuReq, CriuReqType, CriuResp};
use crate::request::{self, FdNumbers, Op};
use crate::session::{self, LogRef};
use crate::spawn::Stdio;
use crate::stats::{self, Stats};
use crate::transport::{Connection, Streams};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: i32,
    pub minor: i32,
    pub sublevel: i32,
    pub extra: i32,
    pub gitid: Option<String>,
    pub name: Option<String>,
}

impl Version {
    /// major*10000 + minor*100 + sublevel, as libcriu's criu_get_version.
    pub fn number(&self) -> i32 {
        self.major * 10000 + self.minor * 100 + self.sublevel
    }
}

/// What CRIU answered for each feature; `None` where it gave no answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub mem_track: Option<bool>,
    pub lazy_pages: Option<bool>,
    pub pidfd_store: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub pid: i32,
    pub stats: Option<Stats>,
}

pub fn criu_binary(o: &Options) -> &Path {
    o.criu_path.as_deref().unwrap_or(Path::new("criu"))
}

/// criu gets /dev/null as its standard streams, so nothing it prints lands on the caller's,
/// and ckpt reads its standard error to quote what CRIU says before its log opens. A shell job
/// is the exception: a restored shell job takes over the caller's terminal, as with runc's
/// --shell-job. A page server outlives the call, so its stderr is not a pipe ckpt would close.
fn criu_streams(o: &Options, op: Op) -> Streams {
    if o.shell_job == Some(true) {
        Streams::Inherit
    } else if op == Op::PageServer {
        Streams::Null
    } else {
        Streams::CaptureStderr
    }
}

fn connect(o: &Options, op: Op, extra: &[BorrowedFd<'_>]) -> Result<(Connection, Vec<i32>)> {
    match &o.service_address {
        Some(addr) if extra.is_empty() => {
            Ok((Connection::connect_service(addr, o.op_timeout)?, vec![]))
        }
        Some(_) => Err(Error::invalid(
            "inherited fds need criu swrk; a criu service cannot receive them",
        )),
        None => Connection::spawn_swrk(criu_binary(o), extra, o.op_timeout, criu_streams(o, op)),
    }
}

/// A request without options (VERSION, FEATURE_CHECK, CHECK) on its own connection.
fn simple(o: &Options, req: CriuReq, what: &str) -> Result<CriuResp> {
    let (mut conn, _) = connect(o, Op::Check, &[])?;
    let resp = session::exchange(&mut conn, &req, what, &LogRef::default(), &mut |_| Ok(()))?;
    conn.finish();
    Ok(resp)
}

pub fn version(o: &Options) -> Result<Version> {
    let req = CriuReq {
        r#type: CriuReqType::Version as i32,
        ..Default::default()
    };
    let resp = simple(o, req, "version")?;
    let v = resp
        .version
        .ok_or_else(|| Error::new(Code::Protocol, "criu answered VERSION without a version"))?;
    Ok(Version {
        major: v.major_number,
        minor: v.minor_number,
        sublevel: v.sublevel.unwrap_or(0),
        extra: v.extra.unwrap_or(0),
        gitid: v.gitid,
        name: v.name,
    })
}

/// Asks CRIU about every feature it can check; the answer is CRIU's, never the question echoed.
pub fn feature_check(o: &Options) -> Result<Features> {
    let ask = CriuFeatures {
        mem_track: Some(true),
        lazy_pages: Some(true),
        pidfd_store: Some(true),
    };
    feature_query(o, ask)
}

fn feature_query(o: &Options, ask: CriuFeatures) -> Result<Features> {
    let req = CriuReq {
        r#type: CriuReqType::FeatureCheck as i32,
        features: Some(ask),
        ..Default::default()
    };
    // CRIU reports a missing feature as success=false with the features filled in; read them
    // from the reply either way.
    let (mut conn, _) = connect(o, Op::Check, &[])?;
    conn.send(&req)?;
    let reply = conn.recv()?;
    let f = reply.resp.features.clone().ok_or_else(|| {
        if reply.resp.success {
            Error::new(
                Code::Protocol,
                "criu answered FEATURE_CHECK without features",
            )
        } else {
            session::criu_failure(&reply.resp, "feature check", &LogRef::default(), &mut conn)
        }
    })?;
    conn.finish();
    Ok(Features {
        mem_track: f.mem_track,
        lazy_pages: f.lazy_pages,
        pidfd_store: f.pidfd_store,
    })
}

/// CRIU's CHECK request: does this kernel have what CRIU needs?
pub fn check(o: &Options) -> Result<()> {
    // CRIU 4.1.1 serves CHECK over RPC only with options naming an images directory, where
    // it writes check.log (a request without options crashes its worker). Use the caller's
    // image path when set, else a private temporary directory, kept only when the check
    // fails so the log can be read.
    if o.image_path.is_some() {
        let ws = Workspace::open(o, Op::Check, true)?;
        return run(o, &ws, Op::Check, CriuReqType::Check, None, &[], "check").map(drop);
    }
    let tmp = fresh_temp_dir("ckpt-check")?;
    let images = paths::open_dir("check directory", &tmp, false)?;
    let log_name = o.log_file.as_deref().unwrap_or(Op::Check.default_log());
    let ws = Workspace {
        log: LogRef {
            path: Some(images.path.join(log_name)),
        },
        images,
        work: None,
    };
    run(o, &ws, Op::Check, CriuReqType::Check, None, &[], "check")?;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// A new directory, mode 0700, in the temporary directory. mkdir fails on any existing name,
/// symlinks included, so the directory is always one this call created. The name comes from
/// the pid, the thread and the clock, so no process-wide counter is needed.
fn fresh_temp_dir(prefix: &str) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}-{tid}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::io(
        format!("creating a {prefix} directory"),
        last.map_or_else(|| "no attempt".to_string(), |e| e.to_string()),
    ))
}

fn require_mem_track(o: &Options, why: &str) -> Result<()> {
    let f = feature_query(
        o,
        CriuFeatures {
            mem_track: Some(true),
            ..Default::default()
        },
    )?;
    if f.mem_track != Some(true) {
        return Err(Error::new(
            Code::Unsupported,
            format!(
                "{why} needs memory change tracking, which CRIU reports unavailable on this kernel (soft-dirty bits, CONFIG_MEM_SOFT_DIRTY)"
            ),
        ));
    }
    Ok(())
}

fn require_lazy_pages(o: &Options) -> Result<()> {
    let f = feature_query(
        o,
        CriuFeatures {
            lazy_pages: Some(true),
            ..Default::default()
        },
    )?;
    if f.lazy_pages != Some(true) {
        return Err(Error::new(
            Code::Unsupported,
            "lazy-pages needs userfaultfd support, which CRIU reports unavailable on this kernel",
        ));
    }
    Ok(())
}

/// The state of `pid` as /proc shows it: None when it does not exist.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

fn check_dump_state(o: &Options, pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::invalid(format!("pid {pid} is not a process id")));
    }
    let Some(status) = o.container_status else {
        return Ok(());
    };
    let status = match proc_state(pid) {
        None | Some('Z') | Some('X') => ContainerStatus::Stopped,
        _ => status,
    };
    match status {
        ContainerStatus::Created | ContainerStatus::Stopped => Err(Error::new(
            Code::InvalidState,
            format!(
                "container cannot be checkpointed in {} state",
                status.name()
            ),
        )),
        ContainerStatus::Running | ContainerStatus::Paused => Ok(()),
    }
}

/// Opened directories and the log location for one operation.
struct Workspace {
    images: Dir,
    work: Option<Dir>,
    log: LogRef,
}

impl Workspace {
    fn open(o: &Options, op: Op, create: bool) -> Result<Workspace> {
        let images = paths::open_dir("image path", o.image_dir()?, create)?;
        let work = match &o.work_path {
            Some(w) => Some(paths::open_dir("work path", w, true)?),
            None => None,
        };
        let log_dir = work.as_ref().map_or(&images.path, |w| &w.path);
        let log_name = o.log_file.as_deref().unwrap_or(op.default_log());
        let log = LogRef {
            path: Some(log_dir.join(log_name)),
        };
        Ok(Workspace { images, work, log })
    }

    fn numbers(&self, inherit: Vec<i32>) -> FdNumbers {
        FdNumbers {
            images_dir: self.images.fd.as_raw_fd(),
            work_dir: self.work.as_ref().map(|w| w.fd.as_raw_fd()),
            inherit,
        }
    }
}

/// What ckpt itself does on each notification before the caller's callback sees it.
fn handle_notification(o: &Options, n: &Notification) -> Result<()> {
    if n.script == notify::STATUS_READY {
        if let Some(fd) = o.take_status_fd() {
            let mut f = std::fs::File::from(fd);
            f.write_all(&[0])
                .map_err(|e| Error::io("writing to the status fd", e))?;
        }
    }
    if n.script == notify::ORPHAN_PTS_MASTER {
        if let (Some(sock), Some(fd)) = (&o.console_socket, n.fd) {
            send_console(sock, fd)?;
        }
    }
    if let Some(cb) = &o.notify {
        cb(n).map_err(|m| {
            Error::new(
                Code::Callback,
                format!("notification callback for {:?} failed: {m}", n.script),
            )
        })?;
    }
    Ok(())
}

/// Passes the pty master to the runtime's console socket, as runc does (the message body is
/// the terminal's name, the descriptor rides in SCM_RIGHTS).
fn send_console(path: &Path, fd: BorrowedFd<'_>) -> Result<()> {
    use nix::sys::socket::{
        AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, connect, sendmsg,
        socket,
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::io("console socket", e))?;
    let addr = UnixAddr::new(path)
        .map_err(|e| Error::invalid(format!("invalid console socket {}: {e}", path.display())))?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| {
        Error::io(
            format!("connecting to console socket {}", path.display()),
            e,
        )
    })?;
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::io("sending the pty master to the console socket", e))?;
    Ok(())
}

fn run(
    o: &Options,
    ws: &Workspace,
    op: Op,
    ty: CriuReqType,
    pid: Option<i32>,
    inherit: &[BorrowedFd<'_>],
    what: &str,
) -> Result<CriuResp> {
    let (mut conn, inherit_nos) = connect(o, op, inherit)?;
    let req = CriuReq {
        r#type: ty as i32,
        opts: Some(request::build(o, op, pid, &ws.numbers(inherit_nos))),
        ..Default::default()
    };
    let resp = session::exchange(&mut conn, &req, what, &ws.log, &mut |n| {
        handle_notification(o, n)
    })?;
    conn.finish();
    Ok(resp)
}

fn validate_dump(o: &Options, pid: i32) -> Result<()> {
    check_dump_state(o, pid)?;
    if o.lazy_pages == Some(true) && o.page_server.is_none() {
        return Err(Error::invalid(
            "lazy-pages needs a page-server ADDRESS:PORT to serve the pages from",
        ));
    }
    Ok(())
}

/// Checkpoints the tree rooted at `pid` (a single pre-dump when the pre-dump flag is set) and
/// returns CRIU's statistics for it.
pub fn checkpoint(o: &Options, pid: i32) -> Result<Stats> {
    validate_dump(o, pid)?;
    let ws = Workspace::open(
        o,
        if o.pre_dump == Some(true) {
            Op::PreDump
        } else {
            Op::Dump
        },
        true,
    )?;
    if let Some(parent) = &o.parent_path {
        paths::check_parent(&ws.images.path, parent)?;
    }
    if o.pre_dump == Some(true) {
        require_mem_track(o, "pre-dump")?;
    } else if o.parent_path.is_some() {
        require_mem_track(o, "a dump on top of a parent image (parent-path)")?;
    }
    if o.lazy_pages == Some(true) {
        require_lazy_pages(o)?;
    }
    let (op, ty, what) = if o.pre_dump == Some(true) {
        (Op::PreDump, CriuReqType::SinglePreDump, "pre-dump")
    } else {
        (Op::Dump, CriuReqType::Dump, "dump")
    };
    run(o, &ws, op, ty, Some(pid), &[], what).map_err(|e| explain_missing(e, pid))?;
    Ok(stats::read(&ws.images.path, false).unwrap_or_default())
}

/// CRIU logs a vanished pid only as fallout ("Unable to detach from N"); when the process is
/// gone, say so first. The log path and excerpt stay as CRIU left them.
fn explain_missing(mut e: Error, pid: i32) -> Error {
    if e.code == Code::Criu && proc_state(pid).is_none() {
        e.message = format!("process {pid} does not exist: {}", e.message);
    }
    e
}

/// Iterative migration on one connection: PRE_DUMP rounds, each in `image_path/pre-N` on top
/// of the one before, while `go_on(round, stats)` says so (at most `max_rounds`), then the
/// final DUMP in the image path with the last round as its parent.
pub fn checkpoint_iterative(
    o: &Options,
    pid: i32,
    max_rounds: u32,
    go_on: &mut dyn FnMut(u32, &Stats) -> bool,
) -> Result<Stats> {
    validate_dump(o, pid)?;
    let final_ws = Workspace::open(o, Op::Dump, true)?;
    require_mem_track(o, "iterative pre-dump")?;
    let (mut conn, _) = connect(o, Op::PreDump, &[])?;
    let mut parent: Option<String> = None;
    let mut round = 0;
    loop {
        round += 1;
        let dir_name = format!("pre-{round}");
        let dir = paths::open_dir(
            "pre-dump image path",
            &final_ws.images.path.join(&dir_name),
            true,
        )?;
        let mut req_opts = request::build(
            o,
            Op::PreDump,
            Some(pid),
            &FdNumbers {
                images_dir: dir.fd.as_raw_fd(),
                work_dir: final_ws.work.as_ref().map(|w| w.fd.as_raw_fd()),
                inherit: vec![],
            },
        );
        req_opts.parent_img = parent.as_ref().map(|p| format!("../{p}"));
        req_opts.track_mem = Some(true);
        req_opts.log_file = Some(format!("pre-dump-{round}.log"));
        let log = LogRef {
            path: Some(
                final_ws
                    .work
                    .as_ref()
                    .map_or(&final_ws.images.path, |w| &w.path)
                    .join(format!("pre-dump-{round}.log")),
            ),
        };
        let req = CriuReq {
            r#type: CriuReqType::PreDump as i32,
            opts: Some(req_opts),
            ..Default::default()
        };
        session::exchange(&mut conn, &req, "pre-dump", &log, &mut |n| {
            handle_notification(o, n)
        })?;
        let st = stats::read(&dir.path, false).unwrap_or_default();
        parent = Some(dir_name);
        if round >= max_rounds || !go_on(round, &st) {
            break;
        }
    }
    let mut req_opts = request::build(o, Op::Dump, Some(pid), &final_ws.numbers(vec![]));
    req_opts.parent_img = parent;
    req_opts.track_mem = Some(true);
    let req = CriuReq {
        r#type: CriuReqType::Dump as i32,
        opts: Some(req_opts),
        ..Default::default()
    };
    session::exchange(&mut conn, &req, "dump", &final_ws.log, &mut |n| {
        handle_notification(o, n)
    })?;
    conn.finish();
    Ok(stats::read(&final_ws.images.path, false).unwrap_or_default())
}

/// The pid file is written only after CRIU restored the tree, when a failure means killing
/// it again: its directory is checked before criu starts.
fn check_pid_file(path: &Path) -> Result<()> {
    if path.file_name().is_none() {
        return Err(Error::invalid(format!(
            "pid file {} has no file name",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "the directory of pid file {} does not exist",
                path.display()
            ),
        ));
    }
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("pid-file has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, pid.to_string())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("writing pid file {}", path.display()), e)
        })
}

/// Kills and reaps the root of a restored tree, our child by CRIU's rst_sibling.
fn kill_restored(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::__WALL));
}

/// Restores from the image path. The restored tree becomes a child of the calling process;
/// the caller reaps it.
pub fn restore(o: &Options) -> Result<Restored> {
    let ws = Workspace::open(o, Op::Restore, false)?;
    if !ws.images.path.join("inventory.img").exists() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "image path {} holds no checkpoint (inventory.img is missing)",
                ws.images.path.display()
            ),
        ));
    }
    if let Some(pf) = &o.pid_file {
        check_pid_file(pf)?;
    }
    if o.lazy_pages == Some(true) {
        require_lazy_pages(o)?;
    }
    let inherit: Vec<BorrowedFd<'_>> = o.inherit_fds.iter().map(|(_, fd)| fd.as_fd()).collect();
    let resp = run(
        o,
        &ws,
        Op::Restore,
        CriuReqType::Restore,
        None,
        &inherit,
        "restore",
    )?;
    let pid = resp
        .restore
        .map(|r| r.pid)
        .ok_or_else(|| Error::new(Code::Protocol, "criu answered RESTORE without a pid"))?;
    if let Some(pf) = &o.pid_file {
        if let Err(mut e) = write_pid_file(pf, pid) {
            // As runc does: a restore whose pid cannot be recorded is undone, so no tree
            // runs that the runtime does not know about.
            kill_restored(pid);
            e.message
                .push_str(&format!("; the restored tree (pid {pid}) was killed"));
            return Err(e);
        }
    }
    Ok(Restored {
        pid,
        stats: stats::read(&ws.images.path, true),
    })
}

/// Starts a page server (the receiving side of a migration) on the page-server address;
/// returns its pid and the port it listens on (the one asked for). The server is forked from
/// criu, so it is not the caller's child; it runs in the caller's session with criu's stdio,
/// outlives criu, and exits when the dump that feeds it is done.
pub fn page_server(o: &Options) -> Result<(i32, i32)> {
    if o.page_server.is_none() {
        return Err(Error::invalid(
            "a page server needs a page-server ADDRESS:PORT to listen on",
        ));
    }
    let ws = Workspace::open(o, Op::PageServer, true)?;
    let (mut conn, _) = connect(o, Op::PageServer, &[])?;
    // PAGE_SERVER_CHLD rather than PAGE_SERVER: CRIU 4.x answers PAGE_SERVER with pid 0 (the
    // daemonised server's pid is lost in cr_page_server), while it answers PAGE_SERVER_CHLD
    // with the pid of the process that serves.
    let req = CriuReq {
        r#type: CriuReqType::PageServerChld as i32,
        opts: Some(request::build(o, Op::PageServer, None, &ws.numbers(vec![]))),
        ..Default::default()
    };
    let resp = session::converse(&mut conn, &req, &ws.log, &mut |n| handle_notification(o, n))?;
    if !resp.success {
        return Err(session::criu_failure(
            &resp,
            "page-server",
            &ws.log,
            &mut conn,
        ));
    }
    conn.finish();
    // CRIU answers both forms with the type PAGE_SERVER.
    let answered = [CriuReqType::PageServer as i32, req.r#type];
    if !answered.contains(&resp.r#type) {
        return Err(Error::new(
            Code::Protocol,
            format!(
                "criu answered a PAGE_SERVER_CHLD request with {}",
                session::type_name(resp.r#type)
            ),
        ));
    }
    let ps = resp.ps.ok_or_else(|| {
        Error::new(
            Code::Protocol,
            "criu answered PAGE_SERVER_CHLD without its address",
        )
    })?;
    match (ps.pid, ps.port) {
        (Some(pid), Some(port)) if pid > 0 && port > 0 => Ok((pid, port)),
        _ => Err(Error::new(
            Code::Protocol,
            format!(
                "criu answered PAGE_SERVER_CHLD without a pid and port ({:?}, {:?})",
                ps.pid, ps.port
            ),
        )),
    }
}

/// Starts `criu lazy-pages` for the restoring side of a lazy restore: it hands the restored
/// tree its memory on demand, fetched from the dumping side's page server when a page-server
/// address is set (lazy migration), else read from the image path (post-copy restore of local
/// images). The daemon is a child of the caller, who reaps it; it exits once every page has
/// been served. With a status fd set, the daemon writes one byte to it once it listens for the
/// restore (CRIU's `--status-fd`): start the lazy restore only then. The status fd passes to
/// the daemon. Its log is `lazy-pages.log` in the work directory.
pub fn lazy_pages_daemon(o: &Options) -> Result<i32> {
    let images = paths::open_dir("image path", o.image_dir()?, false)?;
    // It reads pstree.img at once and dies without it: say so here instead.
    if !images.path.join("inventory.img").exists() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "image path {} holds no checkpoint (inventory.img is missing)",
                images.path.display()
            ),
        ));
    }
    let work: PathBuf = o.work_path.clone().unwrap_or_else(|| images.path.clone());
    let port = o.page_server.as_ref().map(|ps| ps.port.to_string());
    let verbosity = format!("-v{}", o.log_level.unwrap_or(request::DEFAULT_LOG_LEVEL));
    let mut args: Vec<&OsStr> = vec![OsStr::new("criu"), OsStr::new("lazy-pages")];
    if let (Some(ps), Some(port)) = (&o.page_server, &port) {
        args.extend([
            OsStr::new("--page-server"),
            OsStr::new("--address"),
            OsStr::new(&ps.address),
            OsStr::new("--port"),
            OsStr::new(port),
        ]);
    }
    args.extend([
        OsStr::new("-D"),
        images.path.as_os_str(),
        OsStr::new("-W"),
        work.as_os_str(),
        OsStr::new("-o"),
        OsStr::new("lazy-pages.log"),
        OsStr::new(&verbosity),
    ]);
    // The status fd becomes the daemon's fd 3 (spawn's first extra descriptor).
    let status = o.take_status_fd();
    let status_no = crate::spawn::FIRST_CHILD_FD.to_string();
    if status.is_some() {
        args.push(OsStr::new("--status-fd"));
        args.push(OsStr::new(&status_no));
    }
    let fds: Vec<BorrowedFd<'_>> = status.iter().map(|f| f.as_fd()).collect();
    crate::spawn::spawn(criu_binary(o).as_os_str(), &args, &fds, Stdio::Null)
}

/// For notifications that hand over a descriptor: a duplicate the caller owns.
pub fn dup_fd(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned()
        .map_err(|e| Error::io("duplicating a descriptor", e))
}
