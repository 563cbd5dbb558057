//! Restores: the tree comes back as the caller's child, with its pid file and console.

use super::*;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

/// A restored tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The root of the restored tree: a child of the calling process, which reaps it.
    pub pid: i32,
    /// CRIU's restore statistics, when it wrote them.
    pub stats: Option<Stats>,
    /// Container restores (`container::restore`, an archive's restore): the cgroup directories
    /// created for this restore (by ckpt or CRIU), which the caller removes after the container
    /// is gone, deepest first (each listed after every one below it). Empty for a process
    /// restore and when every cgroup existed before.
    pub made_cgroups: Vec<PathBuf>,
}

/// Passes the pty master to the runtime's console socket, as runc does (the message body is
/// the terminal's name, the descriptor rides in SCM_RIGHTS).
/// With a `deadline`, neither the connect (a listener whose backlog is full) nor the send
/// waits past it (SO_SNDTIMEO bounds both on a unix socket).
pub(super) fn send_console(
    path: &Path,
    fd: BorrowedFd<'_>,
    deadline: Option<std::time::Instant>,
) -> Result<()> {
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
    if let Some(d) = deadline {
        let left = d.saturating_duration_since(std::time::Instant::now());
        // A zero timeout would mean "for ever": a deadline already past gets 1 ms.
        let left = left.max(std::time::Duration::from_millis(1));
        let tv = nix::sys::time::TimeVal::new(
            left.as_secs() as libc::time_t,
            left.subsec_micros() as libc::suseconds_t,
        );
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SendTimeout, &tv)
            .map_err(|e| Error::io("console socket", e))?;
    }
    connect(sock.as_raw_fd(), &addr).map_err(|e| {
        if e == nix::errno::Errno::EAGAIN && deadline.is_some() {
            return Error::new(
                Code::Timeout,
                format!(
                    "connecting to console socket {}: nobody accepted the connection within \
                     the operation timeout",
                    path.display()
                ),
            );
        }
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
        // A console peer that closes at once gives EPIPE, never SIGPIPE in the caller.
        MsgFlags::MSG_NOSIGNAL,
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

/// The console socket must be a unix socket already, as runc's restore dials it before CRIU
/// starts: a path that is missing or not a socket is refused before criu runs, instead of
/// failing once CRIU has built the tree (which then has to be killed). A socket nobody
/// listens on is still found only when ckpt connects, at `orphan-pts-master`.
fn check_console_socket(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let md = std::fs::metadata(path).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            Code::NotFound
        } else {
            Code::Io
        };
        Error::new(code, format!("console socket {}: {e}", path.display()))
    })?;
    if !md.file_type().is_socket() {
        return Err(Error::invalid(format!(
            "console socket {} is not a unix socket",
            path.display()
        )));
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
    let fail = |e: std::io::Error| Error::io(format!("writing pid file {}", path.display()), e);
    // The directory may be writable by others (a runtime's state directory): the temporary
    // gets a name nobody can guess and is created new, never through a planted symlink or
    // into an existing file; rename then replaces whatever is at the final name, symlinks
    // included, with this regular file.
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), random_hex()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    };
    file.write_all(pid.to_string().as_bytes())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })
}

/// 128 random bits as hex, from the kernel's generator.
fn random_hex() -> String {
    let mut b = [0u8; 16];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
        if n > 0 {
            got += n as usize;
        } else if nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            // No entropy source at all: fall back to what is at hand; O_EXCL and O_NOFOLLOW
            // still refuse a name someone planted.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            return format!("{:x}{:x}{:x}", std::process::id(), t.as_nanos(), got);
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A failed restore never leaves a tree the caller was not told about: the tree CRIU made
/// (its root known from `post-restore` or the answer, else found among this thread's new
/// children by the root pid of the images, as read before criu started, else now) is killed
/// whole and its root reaped, and the error says so and carries the pid.
fn undo(mut e: Error, known: i32, root: &crate::tree::RestoreRoot, images: &Path) -> Error {
    if let Some(p) = root.after_failure(known, images) {
        crate::tree::kill_and_reap(p);
        e.outcome |= crate::error::outcome::RESTORED_KILLED;
        e.pid = p;
        e.message
            .push_str(&format!("; the restored tree (pid {p}) was killed"));
    }
    e
}

/// A taken pid that is the caller's own unreaped zombie (a runtime that started the workload
/// and has not waited for it since the dump killed it) is named, with what frees it: no
/// restore wait can outlast it, and "another process" would send the caller looking elsewhere.
fn name_zombie_children(e: &mut Error, zombies: &[i32]) {
    for z in zombies {
        e.message.push_str(&format!(
            "; process {z}, a zombie child of this process, holds it: reap it (waitpid) before restoring"
        ));
    }
}

/// Restores from the image path. The restored tree becomes a child of the calling process;
/// the caller reaps it. A panic in the notification callback fails the restore as a failing
/// callback does (the tree killed and reaped), then goes on in the caller.
pub fn restore(o: &Options) -> Result<Restored> {
    super::callback_panic::resumed_after(|| restore_inner(o))
}

fn restore_inner(o: &Options) -> Result<Restored> {
    o.check_cancelled()?;
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
    super::ext_mounts::refuse_unmapped(o, &ws.images.path)?;
    if let Some(pf) = &o.pid_file {
        check_pid_file(pf)?;
    }
    if let Some(cs) = &o.console_socket {
        check_console_socket(cs)?;
    }
    if o.lazy_pages == Some(true) {
        require_lazy_pages(o)?;
    }
    let inherit: Vec<BorrowedFd<'_>> = o.inherit_fds.iter().map(|(_, fd)| fd.as_fd()).collect();
    let images = ws.images.path.as_path();
    // Read once, for the wait, the root's marks and the zombies below.
    let pstree = crate::tree::read_pstree(images);
    if let Some(bound) = o.restore_wait {
        // Once, before criu starts, so `pre-restore` fires once; CRIU itself then reports a
        // pid still taken as CKPT_ERR_PID_IN_USE.
        let cancelled = || o.cancel.as_ref().is_some_and(crate::Cancel::is_triggered);
        crate::tree::wait_for_ids(&pstree, bound, &cancelled);
        // A cancel during the wait ends the restore here, before criu starts.
        o.check_cancelled()?;
    }
    // Taken before criu starts: what tells the root CRIU makes this thread's child, for
    // killing it with criu (the connection) and for undoing a failed restore.
    let root = crate::tree::RestoreRoot::before_restore(&pstree);
    // Taken before criu runs: a root CRIU half-built and lost is a zombie child of the
    // caller's too, and an orphan of the old tree may die meanwhile; neither is to blame.
    let zombies = crate::tree::zombie_children_holding(&pstree);
    let mut reported = 0;
    let r = run_watched(
        o,
        &ws,
        Op::Restore,
        CriuReqType::Restore,
        None,
        &inherit,
        "restore",
        Some(&root),
        &mut |n| {
            if n.script == notify::POST_RESTORE && n.pid > 0 {
                reported = n.pid;
            }
        },
    );
    let resp = match r {
        Ok((resp, _)) => resp,
        Err(mut e) => {
            if e.code == Code::PidInUse {
                name_zombie_children(&mut e, &zombies);
            }
            return Err(undo(e, reported, &root, images));
        }
    };
    let Some(pid) = resp.restore.map(|r| r.pid).filter(|p| *p > 0) else {
        let e = Error::new(Code::Protocol, "criu answered RESTORE without a pid");
        return Err(undo(e, reported, &root, images));
    };
    if let Some(pf) = &o.pid_file {
        if let Err(e) = write_pid_file(pf, pid) {
            // As runc does: a restore whose pid cannot be recorded is undone, so no tree
            // runs that the runtime does not know about.
            return Err(undo(e, pid, &root, images));
        }
    }
    Ok(Restored {
        pid,
        stats: ws.stats(true),
        made_cgroups: vec![],
    })
}
