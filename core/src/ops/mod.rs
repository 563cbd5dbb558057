//! The operations: checkpoint, pre-dump, restore, page server, lazy pages, version, features
//! and check. Each validates what it can before criu starts, then runs one CRIU conversation.

mod dump;
mod migrate;
mod query;
mod restore;

pub use dump::{checkpoint, checkpoint_iterative};
pub use migrate::{PageServerStarted, lazy_pages_daemon, page_server};
pub use query::{Features, Version, check, feature_check, version};
use query::{require_lazy_pages, require_mem_track};
use restore::send_console;
pub use restore::{Restored, restore};

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
use std::io::Write;
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
