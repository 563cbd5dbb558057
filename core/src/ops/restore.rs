//! Restores: the tree comes back as the caller's child, with its pid file and console.

use super::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub pid: i32,
    pub stats: Option<Stats>,
}

/// Passes the pty master to the runtime's console socket, as runc does (the message body is
/// the terminal's name, the descriptor rides in SCM_RIGHTS).
pub(super) fn send_console(path: &Path, fd: BorrowedFd<'_>) -> Result<()> {
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
