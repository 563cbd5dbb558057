//! One request and the conversation that follows it: notifications acknowledged one by one
//! until CRIU's final answer, which is checked and turned into an error when it says failure.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Code, Error, Result};
use crate::logfile;
use crate::notify::Notification;
use crate::proto::{CriuReq, CriuReqType, CriuResp};
use crate::transport::{Connection, Reply};

/// Where CRIU's log for this request lands, to quote it when CRIU fails.
#[derive(Clone, Debug, Default)]
pub struct LogRef {
    /// The log's absolute path, as the error reports it.
    pub path: Option<PathBuf>,
    /// The directory holding the log, open, and the log's name in it: ckpt reads the log
    /// through this descriptor, which works where the absolute path is too long to open.
    pub at: Option<(Arc<OwnedFd>, std::ffi::OsString)>,
    /// CRIU writes its log to its standard error (log-to-stderr), which ckpt captures.
    pub on_stderr: bool,
    /// The log file as it was before criu started (None: absent): a log still the same
    /// afterwards is an earlier operation's, which CRIU never reached this time.
    pub(crate) before: Option<LogStamp>,
}

/// What tells one version of a log file from another: CRIU truncates and writes it, which
/// changes its size or modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogStamp {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl LogRef {
    /// A log named `name` in the directory `dir` (open as `fd`).
    pub fn in_dir(dir: &Path, fd: &OwnedFd, name: &std::ffi::OsStr) -> LogRef {
        let mut log = LogRef {
            path: Some(dir.join(name)),
            at: fd
                .try_clone()
                .ok()
                .map(|f| (Arc::new(f), name.to_os_string())),
            on_stderr: false,
            before: None,
        };
        log.before = log.stamp();
        log
    }

    fn stamp(&self) -> Option<LogStamp> {
        let st = match &self.at {
            Some((dir, name)) => nix::sys::stat::fstatat(
                dir.as_fd(),
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .ok()?,
            None => nix::sys::stat::lstat(self.path.as_deref()?).ok()?,
        };
        Some(LogStamp {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        })
    }

    /// Whether this operation's criu wrote the log: it exists and is not, unchanged, the file
    /// that was there before criu started.
    fn written(&self) -> bool {
        self.stamp().is_some_and(|now| Some(now) != self.before)
    }

    /// The excerpt of the log file, read through the directory descriptor when there is one.
    fn file_excerpt(&self) -> Option<String> {
        if !self.written() {
            return None;
        }
        match &self.at {
            Some((dir, name)) => logfile::excerpt_at(dir.as_fd(), name),
            None => self.path.as_deref().and_then(logfile::excerpt),
        }
    }

    fn file_exists(&self) -> bool {
        match &self.at {
            Some((dir, name)) => nix::sys::stat::fstatat(
                dir.as_fd(),
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .is_ok(),
            None => self.path.as_deref().is_some_and(Path::exists),
        }
    }

    /// The excerpt that explains a failure: from the log file, or from what criu wrote to its
    /// standard error when the log went there or could not be written.
    fn excerpt(&self, conn: &mut Connection) -> Option<String> {
        if !self.on_stderr {
            if let Some(e) = self.file_excerpt() {
                return Some(e);
            }
        }
        let text = conn.stderr_text()?;
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        logfile::excerpt_of(&lines)
    }
}

pub fn type_name(t: i32) -> String {
    CriuReqType::try_from(t)
        .map(|t| format!("{t:?}").to_uppercase())
        .unwrap_or_else(|_| format!("type {t}"))
}

fn strerror(errno: i32) -> String {
    nix::errno::Errno::from_raw(errno).desc().to_string()
}

/// Builds the error for a reply whose `success` is false, quoting CRIU's own words.
pub fn criu_failure(resp: &CriuResp, what: &str, log: &LogRef, conn: &mut Connection) -> Error {
    let errno = resp.cr_errno.unwrap_or(0);
    // CRIU may explain the failure on its standard error just after its reply (a log file it
    // could not create): read that to its end first.
    conn.stderr_to_end();
    let excerpt = log.excerpt(conn);
    // CRIU's cr_errmsg is its first error line, which here is often the harmless rlimit one;
    // prefer the first line of the log that is not noise.
    let reason = excerpt
        .as_deref()
        .and_then(logfile::cause_line)
        .filter(|l| !logfile::is_noise(l))
        .map(str::to_string)
        .or_else(|| {
            resp.cr_errmsg
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty() && !logfile::is_noise(m))
                .map(str::to_string)
        })
        // Before its log opens (a bad option in an RPC config file), CRIU speaks on stderr.
        .or_else(|| conn.stderr_last_line())
        .or_else(|| {
            // No log to quote (it lived in a directory that is gone, or CRIU could not write
            // it): say so rather than repeat CRIU's harmless first error line.
            let p = log.path.as_deref()?;
            (!log.file_exists()).then(|| format!("its log {} could not be read", p.display()))
        });
    // CRIU 4.x reports a pid that is taken as EEXIST from clone3 ("Can't fork for N: File
    // exists"). EEXIST alone is not enough: other restore steps fail with it too, so when the
    // log can be read it must name the fork.
    // A pid below the root is forked by the restored root itself, whose errno never reaches
    // CRIU's answer (cr_errno is 0): then the first error line, naming that fork, decides.
    let fork_taken = |l: &str| l.contains("Can't fork for ") && l.ends_with(": File exists");
    let pid_taken = what == "restore"
        && ((errno == libc::EEXIST
            && excerpt
                .as_deref()
                .is_none_or(|e| e.contains("Can't fork for")))
            || reason.as_deref().is_some_and(fork_taken));
    let mut msg = format!("criu {what} failed");
    if pid_taken {
        msg.push_str(": a pid recorded in the images is in use by another process");
    }
    if let Some(r) = &reason {
        msg.push_str(": ");
        msg.push_str(r);
    }
    if errno != 0 {
        msg.push_str(&format!(" (errno {errno}: {})", strerror(errno)));
    }
    let code = if pid_taken {
        Code::PidInUse
    } else {
        Code::Criu
    };
    Error {
        code,
        message: msg,
        criu_errno: errno,
        // CRIU answered, so it ran: the log is named when it wrote it, or when the message
        // says it could not be read.
        log_path: log
            .path
            .clone()
            .filter(|_| log.written() || !log.file_exists()),
        log_excerpt: excerpt,
        outcome: 0,
        pid: 0,
    }
}

/// Adds the log location and excerpt to an error raised while CRIU was running.
pub fn with_log(mut e: Error, log: &LogRef) -> Error {
    if e.log_path.is_none() && log.written() {
        e.log_path = log.path.clone();
    }
    if e.log_excerpt.is_none() {
        e.log_excerpt = log.file_excerpt();
    }
    e
}

/// `with_log`, also quoting criu's standard error when the log went there.
fn with_log_of(e: Error, log: &LogRef, conn: &mut Connection) -> Error {
    let mut e = with_log(e, log);
    if e.log_excerpt.is_none() && log.on_stderr {
        e.log_excerpt = log.excerpt(conn);
    }
    e
}

/// Sends `req` and serves notifications with `on_notify` until the final reply of type
/// `req.type`. A handler error is reported to CRIU (which then aborts) and returned in place
/// of CRIU's own failure, because it is the cause.
pub fn exchange(
    conn: &mut Connection,
    req: &CriuReq,
    what: &str,
    log: &LogRef,
    on_notify: &mut dyn FnMut(&Notification) -> Result<()>,
) -> Result<CriuResp> {
    let resp = converse(conn, req, log, on_notify)?;
    if resp.r#type != req.r#type {
        // CRIU answers a request it cannot parse with EMPTY and success=false.
        if !resp.success {
            return Err(criu_failure(&resp, what, log, conn));
        }
        return Err(with_log(
            Error::new(
                Code::Protocol,
                format!(
                    "criu answered a {} request with {}",
                    type_name(req.r#type),
                    type_name(resp.r#type)
                ),
            ),
            log,
        ));
    }
    if !resp.success {
        return Err(criu_failure(&resp, what, log, conn));
    }
    Ok(resp)
}

/// The raw conversation under `exchange`: sends `req`, acknowledges every notification, and
/// returns CRIU's final message as it came, whatever its type and success, for callers with
/// their own conventions (the libcriu-compatible library maps them to libcriu's codes). A
/// handler error is still reported to CRIU and returned once CRIU has answered.
pub fn converse(
    conn: &mut Connection,
    req: &CriuReq,
    log: &LogRef,
    on_notify: &mut dyn FnMut(&Notification) -> Result<()>,
) -> Result<CriuResp> {
    if conn.cancel_requested() {
        // Nothing was asked of CRIU yet in this conversation: it has nothing to undo.
        return Err(Error::new(
            Code::Cancelled,
            format!(
                "the operation was cancelled before the {} request was sent to criu",
                type_name(req.r#type)
            ),
        ));
    }
    conn.send(req).map_err(|e| with_log_of(e, log, conn))?;
    let mut aborted: Option<Error> = None;
    // A copy of each pty master CRIU hands over, held until CRIU answers. Were the console
    // peer's copy the last one, its close would hang the terminal up under CRIU: the hangup's
    // SIGCONT stops the root, which CRIU still traces, and CRIU 4.1 then either fails the
    // restore or waits for ever in its attach (the stop was already reaped). Held, the hangup
    // comes once the tree runs, as when a runtime closes a terminal after a restore.
    let mut masters: Vec<std::os::fd::OwnedFd> = Vec::new();
    loop {
        // Once a handler failed, its error is the cause, whatever criu does next.
        let Reply { resp, fds } = match conn.recv() {
            Ok(r) => r,
            Err(e) => return Err(with_log_of(aborted.unwrap_or(e), log, conn)),
        };
        if resp.r#type == CriuReqType::Notify as i32 {
            let Some(n) = resp.notify.as_ref() else {
                return Err(Error::new(
                    Code::Protocol,
                    "criu sent a NOTIFY without its body",
                ));
            };
            let script = n.script.as_deref().unwrap_or("");
            if script == crate::notify::ORPHAN_PTS_MASTER {
                // Cloned before the callback runs, which may close what it was handed.
                masters.extend(fds.first().and_then(|f| f.try_clone().ok()));
            }
            let ids: Vec<_> = fds
                .iter()
                .map(|f| crate::notify::file_id(f.as_fd()))
                .collect();
            let note = Notification {
                script,
                pid: n.pid.unwrap_or(0),
                fd: fds.first().map(|f| f.as_fd()),
            };
            let mut ok = if aborted.is_some() {
                false
            } else {
                match on_notify(&note) {
                    Ok(()) => true,
                    Err(e) => {
                        aborted = Some(e);
                        false
                    }
                }
            };
            let stop = conn.stop_requested();
            if let (true, Some(why)) = (ok, stop) {
                // The deadline passed, or the caller cancelled, while the notification was
                // handled (a slow callback): CRIU is told to abort, which it can still do
                // cleanly, rather than being killed in the middle of its work or allowed past
                // its point of no return.
                ok = false;
                conn.abort_after_deadline();
                let what = if why == Code::Cancelled {
                    "the operation was cancelled"
                } else {
                    "the operation timeout passed"
                };
                aborted = Some(Error::new(
                    why,
                    format!(
                        "{what} while the {script:?} notification was handled; CRIU was told \
                         to abort"
                    ),
                ));
            } else if ok
                && script == crate::notify::POST_DUMP
                && req.r#type == CriuReqType::Dump as i32
            {
                // Only a dump kills the tree after post-dump; a pre-dump round never does.
                // A lazy dump serves its pages after post-dump for as long as the restore
                // takes to fetch them, for ever if none comes: a cancel still stops criu
                // there (the tree, still seized, runs on once criu is gone).
                let lazy = req.opts.as_ref().and_then(|o| o.lazy_pages) == Some(true);
                conn.past_point_of_no_return(!lazy);
            } else if ok && script == crate::notify::PRE_DUMP {
                conn.holds_tree();
            } else if !ok && stop.is_some() {
                // A failing handler that also used up the time (or was cancelled meanwhile):
                // CRIU still gets to undo.
                conn.abort_after_deadline();
            }
            crate::notify::close_handed_fds(fds, &ids);
            let ack = CriuReq {
                r#type: CriuReqType::Notify as i32,
                notify_success: Some(ok),
                ..Default::default()
            };
            if let Err(e) = conn.send(&ack) {
                return Err(with_log_of(aborted.unwrap_or(e), log, conn));
            }
            continue;
        }
        if !fds.is_empty() {
            // Nothing but orphan-pts-master carries a descriptor; the stray ones close here.
            drop(fds);
        }
        // CRIU answered: it let go of the tree (an iterative dump's next round starts anew).
        conn.released_tree();
        if let Some(e) = aborted {
            return Err(with_log_of(e, log, conn));
        }
        return Ok(resp);
    }
}
