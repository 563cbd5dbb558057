//! The operations: checkpoint, pre-dump, restore, page server, lazy pages, version, features
//! and check. Each validates what it can before criu starts, then runs one CRIU conversation.

mod callback_panic;
mod dump;
mod ext_mounts;
mod migrate;
mod netunlock;
mod query;
mod restore;
mod rlimits;
mod target;

pub use dump::{checkpoint, checkpoint_iterative, checkpoint_iterative_with};
pub use migrate::{PageServerStarted, lazy_pages_daemon, page_server};
pub(crate) use query::Answers;
pub use query::{Features, Version, check, feature_check, version};
use query::{require_lazy_pages, require_mem_track};
use restore::send_console;
pub use restore::{Restored, restore};

/// Refuses, before criu starts, a pid a checkpoint cannot take: zero or negative, a thread
/// that is not its process's leader, a zombie, a kernel thread (the libcriu drop-in checks
/// with this too). A pid /proc does not show is left to CRIU.
pub fn check_dump_target(pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::invalid(format!("pid {pid} is not a process id")));
    }
    target::check(pid)
}

// What the operations share; each submodule takes it with `use super::*`.
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
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

pub(crate) fn criu_binary(o: &Options) -> &Path {
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
    } else if o.log_to_stderr == Some(true) {
        Streams::CaptureLog
    } else {
        Streams::CaptureStderr
    }
}

fn connect(o: &Options, op: Op, extra: &[BorrowedFd<'_>]) -> Result<(Connection, Vec<i32>)> {
    o.check_cancelled()?;
    let (mut conn, numbers) = match &o.service_address {
        Some(addr) if extra.is_empty() => {
            (Connection::connect_service(addr, o.op_timeout)?, vec![])
        }
        Some(_) => {
            return Err(Error::invalid(
                "inherited fds need criu swrk; a criu service cannot receive them",
            ));
        }
        None => Connection::spawn_swrk(
            criu_binary(o),
            extra,
            o.op_timeout,
            criu_streams(o, op),
            crate::spawn::Signals::Reset,
        )?,
    };
    conn.watch_cancel(o.cancel.as_ref());
    Ok((conn, numbers))
}

/// A request without options (VERSION, FEATURE_CHECK, CHECK) on its own connection.
fn simple(o: &Options, req: CriuReq, what: &str) -> Result<CriuResp> {
    let (mut conn, _) = connect(o, Op::Check, &[])?;
    let resp = session::exchange(&mut conn, &req, what, &LogRef::default(), &mut |_| Ok(()))?;
    conn.finish();
    Ok(resp)
}

/// The log `name` in `dir`, or criu's standard error with log-to-stderr.
fn log_ref(o: &Options, dir: &Dir, name: impl AsRef<std::ffi::OsStr>) -> LogRef {
    if o.log_to_stderr == Some(true) {
        LogRef {
            on_stderr: true,
            ..LogRef::default()
        }
    } else {
        LogRef::in_dir(&dir.path, &dir.fd, name.as_ref())
    }
}

/// Opened directories and the log location for one operation.
struct Workspace {
    images: Dir,
    work: Option<Dir>,
    log: LogRef,
    /// The image directory's write lock (dump, pre-dump, page server), released on drop.
    _lock: Option<paths::Flock>,
}

impl Workspace {
    fn open(o: &Options, op: Op, create: bool) -> Result<Workspace> {
        let images = paths::open_dir("image path", o.image_dir()?, create)?;
        // Two operations writing one image directory at once would mix their images.
        let lock = if matches!(op, Op::Dump | Op::PreDump | Op::PageServer) {
            Some(paths::lock_for_writing(&images)?)
        } else {
            None
        };
        let work = match &o.work_path {
            Some(w) => Some(paths::open_dir("work path", w, true)?),
            None => None,
        };
        let log_name = o.log_file.as_deref().unwrap_or(op.default_log().as_ref());
        let log = log_ref(o, work.as_ref().unwrap_or(&images), log_name);
        Ok(Workspace {
            images,
            work,
            log,
            _lock: lock,
        })
    }

    /// Where a log named `name` of this workspace lands.
    fn log_named(&self, o: &Options, name: &str) -> LogRef {
        log_ref(o, self.work.as_ref().unwrap_or(&self.images), name)
    }

    /// CRIU's statistics from the work directory (the image directory when none is set),
    /// read through its descriptor, and the image directory's bytes; the log ckpt named is
    /// left out of the image bytes when it lies there.
    fn stats(&self, restore: bool) -> Option<Stats> {
        let (stats_dir, log_here) = match &self.work {
            None => (
                &self.images,
                self.log.at.as_ref().map(|(_, name)| name.as_os_str()),
            ),
            Some(w) => (w, None),
        };
        stats::read_in(
            stats_dir.fd.as_fd(),
            self.images.fd.as_fd(),
            restore,
            log_here,
        )
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
    handle_notification_by(o, n, None)
}

/// `handle_notification`, with what ckpt waits for itself (the console socket's connect and
/// send) bounded by the operation's `deadline`.
fn handle_notification_by(
    o: &Options,
    n: &Notification,
    deadline: Option<std::time::Instant>,
) -> Result<()> {
    if n.script == notify::STATUS_READY {
        if let Some(fd) = o.take_status_fd() {
            // A reader that is gone gives EPIPE here, never SIGPIPE in the caller.
            crate::sigpipe::write_all(fd.as_fd(), &[0])
                .map_err(|e| Error::io("writing to the status fd", e))?;
        }
    }
    if n.script == notify::ORPHAN_PTS_MASTER {
        if let (Some(sock), Some(fd)) = (&o.console_socket, n.fd) {
            send_console(sock, fd, deadline)?;
        }
    }
    if let Some(cb) = &o.notify {
        callback_panic::call(|| cb(n)).map_err(|m| {
            Error::new(
                Code::Callback,
                format!("notification callback for {:?} failed: {m}", n.script),
            )
        })?;
    }
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
    run_watched(o, ws, op, ty, pid, inherit, what, None, &mut |_| {}).map(|(r, _)| r)
}

/// `run`, with `watch` seeing each notification before ckpt handles it, and the `outcome`
/// bits of a successful answer (`DEADLINE_PASSED` when CRIU answered after the deadline,
/// past its point of no return). `restoring` tells the root of a tree restored as the
/// caller's child, so that killing criu kills it too (`Connection::restoring`).
#[allow(clippy::too_many_arguments)]
fn run_watched(
    o: &Options,
    ws: &Workspace,
    op: Op,
    ty: CriuReqType,
    pid: Option<i32>,
    inherit: &[BorrowedFd<'_>],
    what: &str,
    restoring: Option<&crate::tree::RestoreRoot>,
    watch: &mut dyn FnMut(&Notification),
) -> Result<(CriuResp, u32)> {
    let deadline = o.op_timeout.map(|t| std::time::Instant::now() + t);
    let (mut conn, inherit_nos) = connect(o, op, inherit)?;
    if let Some(r) = restoring {
        conn.restoring(r.clone());
    }
    let req = CriuReq {
        r#type: ty as i32,
        opts: Some(request::build(o, op, pid, &ws.numbers(inherit_nos))),
        ..Default::default()
    };
    let resp = session::exchange(&mut conn, &req, what, &ws.log, &mut |n| {
        watch(n);
        handle_notification_by(o, n, deadline)
    })?;
    let outcome = if conn.deadline_passed_after_no_return() {
        crate::error::outcome::DEADLINE_PASSED
    } else {
        0
    };
    conn.finish();
    Ok((resp, outcome))
}
