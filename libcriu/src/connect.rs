//! Reaching CRIU the way the options say: `criu swrk` started through ckpt's posix_spawn (never
//! a fork of the caller, so the cost does not grow with the caller's memory, and only the
//! descriptors the request names reach criu), a running `criu service` socket, or a socket the
//! caller connected itself.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use ckpt::transport::Connection;
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket, socketpair};

use crate::opts::{DEFAULT_SERVICE_BINARY, LibOpts, Service, fd_is_open};
use crate::outcome::Failure;
use crate::service_fd::FdClaim;

/// What the connection is for, where that changes how criu is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Anything but the two cases below.
    Plain,
    /// A dump of the calling process itself (no pid set): criu must not be its child, or
    /// the dumped tree would contain criu.
    SelfDump,
    /// criu_restore_child: only swrk can make the restored tree the caller's child, so a
    /// service socket or fd is set aside for `criu` from PATH, as libcriu does.
    RestoreChild,
}

/// A connection and the numbers the inherited descriptors carry on the CRIU side.
pub struct Link {
    pub conn: Connection,
    pub inherit_numbers: Vec<RawFd>,
}

pub fn open(o: &LibOpts, purpose: Purpose) -> Result<Link, Failure> {
    let binary = match (&o.service, purpose) {
        // libcriu would exec the name it was given, criu_restore_child too, and fail.
        (Service::RefusedBinary, _) => return Err(Failure::new(-libc::ECOMM, libc::EINVAL)),
        // libcriu's connect fails; its criu_restore_child ignores the address (below).
        (Service::RefusedAddress, p) if p != Purpose::RestoreChild => {
            return Err(Failure::new(-libc::ECONNREFUSED, libc::EINVAL));
        }
        (Service::Binary(b), _) => Some(b.as_os_str()),
        (_, Purpose::RestoreChild) => Some(OsStr::new(DEFAULT_SERVICE_BINARY)),
        _ => None,
    };
    if let Service::Fd(Some(_)) = o.service {
        // Whether it is open or not, this is libcriu's connect: the fd is this operation's.
        o.fd_claim.set(FdClaim::Used);
    }
    let callers_numbers = || o.inherit.iter().map(|(fd, _)| *fd).collect();
    match binary {
        Some(b) if purpose == Purpose::SelfDump => Ok(Link {
            conn: detached_swrk(b)?,
            inherit_numbers: callers_numbers(),
        }),
        Some(b) => swrk(b, o),
        None => match &o.service {
            Service::Socket(path) => Ok(Link {
                conn: Connection::from_socket(connect_socket(path)?, None),
                inherit_numbers: callers_numbers(),
            }),
            Service::Fd(Some(fd)) if fd_is_open(*fd) => Ok(Link {
                // SAFETY: the caller handed this open descriptor over with criu_set_service_fd;
                // like libcriu, the operation owns it and closes it when done, and
                // `for_operation` made sure no later operation uses the number again.
                conn: Connection::from_socket(unsafe { OwnedFd::from_raw_fd(*fd) }, None),
                inherit_numbers: callers_numbers(),
            }),
            // As libcriu, whose request then cannot be written to the number.
            Service::Fd(Some(_)) | Service::FdUsed => Err(Failure::new(-libc::ECOMM, libc::EBADF)),
            _ => Err(Failure::new(-libc::ECONNREFUSED, libc::EBADF)),
        },
    }
}

fn swrk(binary: &OsStr, o: &LibOpts) -> Result<Link, Failure> {
    let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(o.inherit.len());
    for (fd, _) in &o.inherit {
        // libcriu passes the number on and CRIU fails the request (-EBADE); criu is not
        // even started here.
        if !fd_is_open(*fd) {
            return Err(Failure::new(-libc::EBADE, libc::EBADF));
        }
        // SAFETY: the descriptor is open (checked just above) and stays the caller's; it is
        // only duplicated into criu while this call runs.
        fds.push(unsafe { BorrowedFd::borrow_raw(*fd) });
    }
    let (conn, inherit_numbers) = Connection::spawn_swrk(
        Path::new(binary),
        &fds,
        None,
        ckpt::transport::Streams::Inherit,
        // As libcriu's criu, which its caller forks and execs: a caller that ignores or blocks
        // SIGHUP, SIGINT or SIGTERM (nohup, a signalfd) does not have criu killed by them.
        ckpt::spawn::Signals::AsCaller,
    )
    .map_err(|e| Failure::spawn(&e))?;
    Ok(Link {
        conn,
        inherit_numbers,
    })
}

/// Starts `criu swrk` through `sh -c '... &'` in a session of its own: sh exits at once, so
/// criu is re-parented (to init or the nearest subreaper) and the caller's tree, which CRIU is
/// about to dump, does not contain it; nor does criu hold the caller's session or process
/// group number, which would keep a restore of the caller from reusing it. This is libcriu's
/// `daemon()` without forking the caller.
fn detached_swrk(binary: &OsStr) -> Result<Connection, Failure> {
    // sh would only report a missing binary on stderr, and criu's socket would just close.
    if !executable(binary) {
        return Err(Failure::new(-libc::ECOMM, libc::ENOENT));
    }
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Failure::new(-libc::ECONNREFUSED, e as i32))?;
    let args: [&OsStr; 4] = [
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new("\"$0\" swrk 3 </dev/null &"),
        binary,
    ];
    let sh = ckpt::spawn::spawn_new_session(
        OsStr::new("/bin/sh"),
        &args,
        &[theirs.as_fd()],
        ckpt::spawn::Stdio::Inherit,
    )
    .map_err(|e| Failure::connect(&e))?;
    drop(theirs);
    reap(sh);
    Ok(Connection::from_socket(ours, None))
}

/// Whether `binary` names an executable file, directly or (without '/') through PATH, as
/// execvp would find it.
fn executable(binary: &OsStr) -> bool {
    use nix::unistd::{AccessFlags, access};
    use std::os::unix::ffi::OsStrExt;
    let ok = |p: &Path| access(p, AccessFlags::X_OK).is_ok() && p.is_file();
    if binary.as_bytes().contains(&b'/') {
        return ok(Path::new(binary));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| ok(&dir.join(binary))))
}

/// Waits for the short-lived sh. ECHILD (the caller reaps children itself) is fine.
fn reap(pid: libc::pid_t) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    while let Err(Errno::EINTR) =
        waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::__WALL))
    {}
}

/// Connects to a `criu service` socket, keeping connect's errno for the caller.
fn connect_socket(path: &Path) -> Result<OwnedFd, Failure> {
    let refused = |e: Errno| Failure::new(-libc::ECONNREFUSED, e as i32);
    let sock = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(refused)?;
    let addr = UnixAddr::new(path).map_err(refused)?;
    loop {
        match connect(sock.as_raw_fd(), &addr) {
            Ok(()) => return Ok(sock),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(refused(e)),
        }
    }
}
