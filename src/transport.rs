//! One connection to CRIU: a `criu swrk` child on a socketpair, or a running `criu service`.
//! Messages are whole SOCK_SEQPACKET records, sized by peeking so no reply is ever too large,
//! and descriptors CRIU passes with SCM_RIGHTS arrive close-on-exec and owned.

use std::ffi::OsStr;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr, connect, recv,
    recvmsg, send, setsockopt, socket, socketpair, sockopt,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use prost::Message;

use crate::error::{Code, Error, Result};
use crate::proto::{CriuReq, CriuResp};
use crate::spawn;

/// Descriptors CRIU may pass with one message; CRIU sends at most one today.
const MAX_FDS: usize = 16;
/// How long criu gets to exit on its own once its socket is closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// A reply and whatever descriptors came with it.
pub struct Reply {
    pub resp: CriuResp,
    pub fds: Vec<OwnedFd>,
}

struct Child {
    pid: Pid,
    pidfd: Option<OwnedFd>,
    reaped: bool,
    status: Option<WaitStatus>,
}

/// A live connection. Dropping it closes the socket and reaps criu, killing it if it lingers.
pub struct Connection {
    sock: Option<OwnedFd>,
    child: Option<Child>,
    deadline: Option<Instant>,
}

fn pidfd_open(pid: Pid) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh descriptor (close-on-exec by definition) we now own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn sys_err(what: &str, e: Errno) -> Error {
    Error::new(Code::Io, format!("{what}: {e}"))
}

impl Connection {
    /// Spawns `criu swrk 3` with the socket at fd 3 and `extra_fds` at 4, 5, ...; returns the
    /// connection and the numbers the extra descriptors carry inside criu.
    pub fn spawn_swrk(
        criu: &Path,
        extra_fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<(Connection, Vec<RawFd>)> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| sys_err("socketpair", e))?;
        let mut fds: Vec<BorrowedFd<'_>> = vec![theirs.as_fd()];
        fds.extend_from_slice(extra_fds);
        let sock_no = spawn::FIRST_CHILD_FD.to_string();
        let args: [&OsStr; 3] = [OsStr::new("criu"), OsStr::new("swrk"), OsStr::new(&sock_no)];
        let pid = spawn::spawn(criu.as_os_str(), &args, &fds)?;
        drop(theirs);
        let pid = Pid::from_raw(pid);
        let numbers = (0..extra_fds.len())
            .map(|i| spawn::FIRST_CHILD_FD + 1 + i as RawFd)
            .collect();
        Ok((
            Connection {
                sock: Some(ours),
                child: Some(Child {
                    pidfd: pidfd_open(pid),
                    pid,
                    reaped: false,
                    status: None,
                }),
                deadline: timeout.map(|t| Instant::now() + t),
            },
            numbers,
        ))
    }

    /// Connects to a `criu service` listening on a unix SOCK_SEQPACKET socket.
    pub fn connect_service(path: &Path, timeout: Option<Duration>) -> Result<Connection> {
        let sock = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| sys_err("socket", e))?;
        let addr = UnixAddr::new(path).map_err(|e| {
            Error::invalid(format!("invalid service address {}: {e}", path.display()))
        })?;
        connect(sock.as_raw_fd(), &addr).map_err(|e| {
            Error::new(
                Code::Spawn,
                format!("cannot connect to criu service at {}: {e}", path.display()),
            )
        })?;
        Ok(Connection::from_socket(sock, timeout))
    }

    /// Uses a socket the caller already connected to CRIU (libcriu's `criu_set_service_fd`).
    pub fn from_socket(sock: OwnedFd, timeout: Option<Duration>) -> Connection {
        Connection {
            sock: Some(sock),
            child: None,
            deadline: timeout.map(|t| Instant::now() + t),
        }
    }

    pub fn criu_pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.pid.as_raw())
    }

    fn sock(&self) -> Result<BorrowedFd<'_>> {
        self.sock
            .as_ref()
            .map(|s| s.as_fd())
            .ok_or_else(|| Error::new(Code::CriuDied, "connection to criu is closed"))
    }

    /// Sends one request. The send buffer grows to fit it, so a request with thousands of
    /// external mounts still goes as one record.
    pub fn send(&mut self, req: &CriuReq) -> Result<()> {
        let buf = req.encode_to_vec();
        let sock = self.sock()?;
        let want = buf.len() * 2 + 4096;
        if want > 200 * 1024 && setsockopt(&sock, sockopt::SndBufForce, &want).is_err() {
            let _ = setsockopt(&sock, sockopt::SndBuf, &want);
        }
        loop {
            match send(sock.as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL) {
                Ok(n) if n == buf.len() => return Ok(()),
                Ok(n) => {
                    return Err(Error::new(
                        Code::Protocol,
                        format!("short send to criu: {n} of {} bytes", buf.len()),
                    ));
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EPIPE | Errno::ECONNRESET) => {
                    return Err(self.died("while ckpt was sending a request"));
                }
                Err(e) => return Err(sys_err("sending to criu", e)),
            }
        }
    }

    /// Waits for and decodes one reply, honouring the operation deadline.
    pub fn recv(&mut self) -> Result<Reply> {
        self.wait_readable()?;
        let sock = self.sock()?.as_raw_fd();
        let len = loop {
            match recv(sock, &mut [], MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC) {
                Ok(n) => break n,
                Err(Errno::EINTR) => continue,
                Err(Errno::ECONNRESET) => return Err(self.died("before replying")),
                Err(e) => return Err(sys_err("receiving from criu", e)),
            }
        };
        if len == 0 {
            return Err(self.died("before replying"));
        }
        let mut buf = vec![0u8; len];
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (n, flags, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(sock, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(msg) => {
                    let mut fds = Vec::new();
                    for c in msg
                        .cmsgs()
                        .map_err(|e| sys_err("reading control data", e))?
                    {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: the kernel installed this descriptor for us just now.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break (msg.bytes, msg.flags, fds);
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys_err("receiving from criu", e)),
            }
        };
        if flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(Error::new(
                Code::Protocol,
                format!("criu sent more than {MAX_FDS} descriptors with one message"),
            ));
        }
        let resp = CriuResp::decode(&buf[..n]).map_err(|e| {
            Error::new(
                Code::Protocol,
                format!("criu sent {n} bytes that are not a CRIU response: {e}"),
            )
        })?;
        Ok(Reply { resp, fds })
    }

    fn wait_readable(&mut self) -> Result<()> {
        loop {
            let timeout = match self.deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(self.timed_out());
                    }
                    PollTimeout::try_from(left.as_millis().clamp(1, i32::MAX as u128) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let sock = self.sock()?;
            let pidfd = self.child.as_ref().and_then(|c| c.pidfd.as_ref());
            let mut pfds = vec![PollFd::new(sock, PollFlags::POLLIN)];
            if let Some(p) = pidfd {
                pfds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut pfds, timeout) {
                Ok(0) => continue,
                Ok(_) => {
                    let s = pfds[0].revents().unwrap_or(PollFlags::empty());
                    if s.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        return Ok(());
                    }
                    // criu exited, yet something it started may still hold its end of the
                    // socket: do not wait for an end-of-file that may never come.
                    let exited = pfds
                        .get(1)
                        .and_then(|p| p.revents())
                        .is_some_and(|r| r.contains(PollFlags::POLLIN));
                    if exited {
                        return Err(self.died("before replying"));
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys_err("poll", e)),
            }
        }
    }

    fn timed_out(&mut self) -> Error {
        let pid = self.criu_pid();
        self.kill_and_reap();
        let who = pid
            .map(|p| format!("criu (pid {p})"))
            .unwrap_or("criu".into());
        Error::new(
            Code::Timeout,
            format!("{who} did not answer within the operation timeout and was killed"),
        )
    }

    /// Builds the "criu went away" error, reaping criu to report how it ended.
    pub fn died(&mut self, when: &str) -> Error {
        self.sock = None;
        let how = match self.reap(Some(EXIT_GRACE)) {
            Some(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
            Some(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
            _ => "closed the connection".to_string(),
        };
        Error::new(Code::CriuDied, format!("criu {how} {when}"))
    }

    fn kill_and_reap(&mut self) {
        self.sock = None;
        if let Some(c) = &self.child {
            if !c.reaped {
                let _ = nix::sys::signal::kill(c.pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        self.reap(None);
    }

    /// Waits for criu to exit, up to `grace` (then kills it), and records how it ended. A
    /// caller that reaps children itself (a SIGCHLD handler, SIG_IGN) makes waitpid fail with
    /// ECHILD: criu is gone either way, so that is not an error.
    fn reap(&mut self, grace: Option<Duration>) -> Option<WaitStatus> {
        let child = self.child.as_mut()?;
        if child.reaped {
            return child.status;
        }
        if let (Some(grace), Some(pidfd)) = (grace, child.pidfd.as_ref()) {
            let mut pfd = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let ms = grace.as_millis().min(i32::MAX as u128) as i32;
            let t = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
            let ready = loop {
                match poll(&mut pfd, t) {
                    Err(Errno::EINTR) => continue,
                    Ok(n) => break n > 0,
                    Err(_) => break true,
                }
            };
            if !ready {
                let _ = nix::sys::signal::kill(child.pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        let status = loop {
            match waitpid(child.pid, Some(WaitPidFlag::__WALL)) {
                Err(Errno::EINTR) => continue,
                Ok(s) => break Some(s),
                Err(_) => break None,
            }
        };
        child.reaped = true;
        child.status = status;
        status
    }

    /// Closes the socket and reaps criu; returns how criu ended when ckpt could see it.
    pub fn finish(mut self) -> Option<WaitStatus> {
        self.sock = None;
        self.reap(Some(EXIT_GRACE))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.sock = None;
        self.reap(Some(EXIT_GRACE));
    }
}

/// Unused-argument helper for callers that pass no extra descriptors.
pub fn no_fds<'a>() -> &'a [BorrowedFd<'a>] {
    &[]
}

/// Path bytes for messages, lossy only in what is shown.
pub fn show(p: &Path) -> String {
    String::from_utf8_lossy(p.as_os_str().as_bytes()).into_owned()
}
