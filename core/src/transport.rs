//! One connection to CRIU: a `criu swrk` child on a socketpair, or a running `criu service`.
//! Messages are whole SOCK_SEQPACKET records, sized by peeking so no reply is ever too large,
//! and descriptors CRIU passes with SCM_RIGHTS arrive close-on-exec and owned.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, connect, recv, send, setsockopt, socket,
    socketpair, sockopt,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use prost::Message;

use crate::cancel::Cancel;
use crate::criu_stderr::StderrTail;
use crate::error::{Code, Error, Result};
use crate::proto::{CriuReq, CriuResp};
use crate::spawn;

/// Descriptors CRIU may pass with one message; CRIU sends at most one today.
const MAX_FDS: usize = 16;
/// How long criu gets to exit on its own once its socket is closed before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long past the deadline (or a cancellation) ckpt lets criu go on while its code is in
/// a task of the tree it dumps, so that killing it does not take that task with it.
const PARASITE_WAIT: Duration = Duration::from_millis(500);
/// How often criu is stopped for a look at the tree meanwhile.
const PARASITE_LOOK: Duration = Duration::from_millis(2);

/// The wait, past the deadline or a cancellation, for criu's code to leave the tree.
struct ParasiteWait {
    why: Code,
    since: Instant,
    /// The tasks criu traces, read once: it seizes the whole tree when the dump begins.
    traced: Vec<i32>,
}

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

/// Receives one record into `buf` (sized by peeking). Returns its length, whether the control
/// data was truncated, and every descriptor the kernel installed, owned, even when it was
/// truncated: nix refuses to parse truncated control data, which would leave those open.
fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
) -> std::result::Result<(usize, bool, Vec<OwnedFd>), Errno> {
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut control =
        [0u64; (std::mem::size_of::<libc::cmsghdr>() + MAX_FDS * size_of::<RawFd>()).div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid empty header; the fields used are set below.
    let mut mhdr: libc::msghdr = unsafe { std::mem::zeroed() };
    mhdr.msg_iov = &mut iov;
    mhdr.msg_iovlen = 1;
    mhdr.msg_control = control.as_mut_ptr().cast();
    mhdr.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `mhdr` points to `iov`, `buf` and `control`, all live and writable for the call.
    let n = unsafe { libc::recvmsg(sock, &mut mhdr, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(Errno::last());
    }
    let mut fds = Vec::new();
    // SAFETY: the CMSG macros walk the control data the kernel just wrote, bounded by
    // msg_controllen; each SCM_RIGHTS payload holds cmsg_len - CMSG_LEN(0) bytes of fds, which
    // the kernel installed for this process and nothing else owns yet.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mhdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                let bytes = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..bytes / size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&mhdr, c);
        }
    }
    Ok((n as usize, mhdr.msg_flags & libc::MSG_CTRUNC != 0, fds))
}

impl Child {
    /// SIGKILL, through the pidfd when there is one: a caller's SIGCHLD handler may have reaped
    /// criu already, and its pid may since name another process.
    fn kill(&self) {
        match &self.pidfd {
            // SAFETY: pidfd_send_signal on a pidfd we own, without siginfo or flags.
            Some(p) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    p.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            },
            None => {
                let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }

    /// Waits for criu to exit, through the pidfd when there is one, so a pid that a caller's
    /// SIGCHLD handler reaped and the kernel gave to another child is never waited for.
    /// `None` when someone else reaped criu (ECHILD).
    fn wait(&self) -> Option<WaitStatus> {
        let Some(p) = &self.pidfd else {
            return loop {
                match waitpid(self.pid, Some(WaitPidFlag::__WALL)) {
                    Err(Errno::EINTR) => continue,
                    Ok(s) => break Some(s),
                    Err(_) => break None,
                }
            };
        };
        loop {
            // SAFETY: an all-zero siginfo_t is valid storage for waitid to fill.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid on a pidfd we own, writing only into `info`.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PIDFD,
                    p.as_raw_fd() as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::__WALL,
                )
            };
            if rc != 0 {
                if Errno::last() == Errno::EINTR {
                    continue;
                }
                return None;
            }
            // SAFETY: waitid succeeded for a child, so the SIGCHLD fields are set.
            let status = unsafe { info.si_status() };
            return match info.si_code {
                libc::CLD_EXITED => Some(WaitStatus::Exited(self.pid, status)),
                libc::CLD_KILLED | libc::CLD_DUMPED => {
                    nix::sys::signal::Signal::try_from(status).ok().map(|sig| {
                        WaitStatus::Signaled(self.pid, sig, info.si_code == libc::CLD_DUMPED)
                    })
                }
                _ => None,
            };
        }
    }
}

/// A live connection. Dropping it closes the socket and reaps criu, killing it if it lingers.
pub struct Connection {
    sock: Option<OwnedFd>,
    child: Option<Child>,
    deadline: Option<Instant>,
    stderr: Option<StderrTail>,
    timeout: Option<Duration>,
    /// The caller's deadline, kept once `past_point_of_no_return` moved `deadline` on.
    no_return: Option<Option<Instant>>,
    /// CRIU has the dumped tree in hand (`pre-dump` acknowledged): losing criu now may
    /// leave the tree stopped, frozen or with its network locked.
    holds_tree: bool,
    /// The caller's cancellation token, acted on like the deadline while `cancel_armed`.
    cancel: Option<Cancel>,
    /// Cleared where the deadline moves to the second period: from then on a trigger no
    /// longer stops criu, as the deadline no longer does.
    cancel_armed: bool,
    /// The thread that started criu: the parent of what criu makes with CLONE_PARENT.
    spawner: Option<libc::pid_t>,
    /// criu answered its latest request with success: what it started since may be meant to
    /// outlive it (a page server, a tree restored detached, exec-cmd), so killing criu no
    /// longer kills what it started.
    answered: bool,
    /// Children of the spawning thread that criu made (a restore's root, still being built)
    /// and that were killed with criu.
    swept: Vec<i32>,
    /// criu's marks, read while it ran: what tells the root it made apart once it is dead.
    criu_id: Option<crate::tree::CriuId>,
    /// For a restore that makes the tree this thread's child: what tells its root apart
    /// whatever it runs by then (`tree::restoring_root`).
    restore_root: Option<crate::tree::RestoreRoot>,
    /// Set while criu is let go on past the deadline or a cancellation (`PARASITE_WAIT`).
    parasite_wait: Option<ParasiteWait>,
    /// criu, stopped to be killed, was seen to hold none of its code in the tree it dumps.
    code_out_of_tree: bool,
}

/// What criu's standard streams are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// The caller's (a shell-job restore takes over the caller's terminal).
    Inherit,
    /// /dev/null, for a criu that leaves a daemon behind (a page server), which would
    /// otherwise hold the pipe after ckpt stopped reading it.
    Null,
    /// /dev/null, with standard error read by ckpt to quote when CRIU has no log to show.
    CaptureStderr,
    /// /dev/null, with standard error carrying CRIU's log (log-to-stderr): ckpt keeps its
    /// last MiB to excerpt when CRIU fails.
    CaptureLog,
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
    /// connection and the numbers the extra descriptors carry inside criu. `signals`: criu's
    /// signal mask and dispositions (ckpt resets them; libcriu's drop-in keeps the caller's).
    pub fn spawn_swrk(
        criu: &Path,
        extra_fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
        streams: Streams,
        signals: spawn::Signals,
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
        let (stderr, stderr_w) = match streams {
            Streams::CaptureStderr | Streams::CaptureLog => {
                let keep = if streams == Streams::CaptureLog {
                    crate::criu_stderr::KEEP_LOG
                } else {
                    crate::criu_stderr::KEEP
                };
                let (tail, w) = StderrTail::pipe_keeping(keep).map_err(|e| sys_err("pipe", e))?;
                (Some(tail), Some(w))
            }
            _ => (None, None),
        };
        let stdio = match (&stderr_w, streams) {
            (Some(w), _) => spawn::Stdio::NullStderrTo(w.as_fd()),
            (None, Streams::Inherit) => spawn::Stdio::Inherit,
            (None, _) => spawn::Stdio::Null,
        };
        let pid = spawn::spawn_signals(criu.as_os_str(), &args, &fds, stdio, signals)?;
        drop(theirs);
        drop(stderr_w);
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
                stderr,
                timeout,
                no_return: None,
                holds_tree: false,
                cancel: None,
                cancel_armed: false,
                // SAFETY: gettid has no preconditions and cannot fail.
                spawner: Some(unsafe { libc::gettid() }),
                answered: false,
                swept: vec![],
                criu_id: crate::tree::criu_id(pid.as_raw()),
                restore_root: None,
                parasite_wait: None,
                code_out_of_tree: false,
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
            stderr: None,
            timeout,
            no_return: None,
            holds_tree: false,
            cancel: None,
            cancel_armed: false,
            spawner: None,
            answered: false,
            swept: vec![],
            criu_id: None,
            restore_root: None,
            parasite_wait: None,
            code_out_of_tree: false,
        }
    }

    pub fn criu_pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.pid.as_raw())
    }

    /// Whether the operation deadline has passed.
    pub fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// This connection restores a tree that criu makes the spawning thread's child; `root`
    /// (taken before criu started) tells its root apart, so that killing criu stops and kills
    /// that root with it even once CRIU's restorer has switched its executable and memory.
    pub fn restoring(&mut self, root: crate::tree::RestoreRoot) {
        self.restore_root = Some(root);
    }

    /// Watches `cancel`: once it is triggered, the conversation stops as at the deadline.
    pub fn watch_cancel(&mut self, cancel: Option<&Cancel>) {
        self.cancel = cancel.cloned();
        self.cancel_armed = self.cancel.is_some();
    }

    /// Whether the caller's cancellation token was triggered while it still stops criu.
    pub fn cancel_requested(&self) -> bool {
        self.cancel_armed && self.cancel.as_ref().is_some_and(Cancel::is_triggered)
    }

    /// Why the conversation must stop now, if it must: the deadline passed
    /// ([`Code::Timeout`]) or the operation was cancelled ([`Code::Cancelled`]).
    pub fn stop_requested(&self) -> Option<Code> {
        if let Some(w) = &self.parasite_wait {
            Some(w.why)
        } else if self.deadline_passed() {
            Some(Code::Timeout)
        } else if self.cancel_requested() {
            Some(Code::Cancelled)
        } else {
            None
        }
    }

    /// How long CRIU gets to finish once the deadline no longer applies: to undo its work
    /// after ckpt told it to abort, or to answer after the point of no return. One more
    /// timeout period, at least `EXIT_GRACE`: killing criu there would leave the workload
    /// frozen, its network locked, or half killed.
    fn second_period(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t.max(EXIT_GRACE))
    }

    /// ckpt is telling CRIU to abort because the deadline passed or the operation was
    /// cancelled: CRIU gets a second period to undo what it did (resume or kill the tree) and
    /// answer, which a further trigger does not cut short.
    pub fn abort_after_deadline(&mut self) {
        self.deadline = self.second_period();
        self.cancel_armed = false;
        self.parasite_wait = None;
    }

    /// CRIU is past its point of no return (ckpt acknowledged `post-dump`): from now on the
    /// caller's deadline only marks the result, and CRIU gets a second period to answer. A
    /// cancel stops criu still unless `disarm_cancel` is false (a lazy dump, which waits for
    /// its restore after post-dump); the error then says the tree may have been killed.
    pub fn past_point_of_no_return(&mut self, disarm_cancel: bool) {
        if self.no_return.is_none() {
            self.no_return = Some(self.deadline);
            self.deadline = self.second_period();
            if disarm_cancel {
                self.cancel_armed = false;
            }
        }
    }

    /// CRIU is about to seize the tree it dumps (ckpt acknowledged `pre-dump`).
    pub fn holds_tree(&mut self) {
        self.holds_tree = true;
    }

    /// CRIU answered its request and no longer holds the tree.
    pub fn released_tree(&mut self) {
        self.holds_tree = false;
    }

    /// Whether CRIU went past its point of no return on this connection.
    pub fn is_past_point_of_no_return(&self) -> bool {
        self.no_return.is_some()
    }

    /// Whether the caller's deadline passed, or the caller cancelled, after the point of no
    /// return.
    pub fn deadline_passed_after_no_return(&self) -> bool {
        matches!(self.no_return, Some(Some(d)) if Instant::now() >= d)
            || (self.no_return.is_some() && self.cancel.as_ref().is_some_and(Cancel::is_triggered))
    }

    /// How long a criu that has gone quiet (closed its socket, answered) gets to exit
    /// before it is killed: `EXIT_GRACE`, but never past the deadline.
    fn grace(&self) -> Duration {
        match self.deadline {
            None => EXIT_GRACE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(EXIT_GRACE),
        }
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
        self.note_criu_id();
        let buf = req.encode_to_vec();
        if req.r#type != crate::proto::CriuReqType::Notify as i32 {
            self.answered = false;
        }
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
            // A zero-length record reads like end-of-file; only a hang-up is one.
            if self.peer_hung_up() {
                return Err(self.died("before replying"));
            }
            let _ = recv(sock, &mut [0u8; 1], MsgFlags::MSG_DONTWAIT);
            return Err(Error::new(Code::Protocol, "criu sent an empty message"));
        }
        let mut buf = vec![0u8; len];
        let (n, truncated, fds) = loop {
            match recv_with_fds(sock, &mut buf) {
                Ok(r) => break r,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys_err("receiving from criu", e)),
            }
        };
        // The descriptors that did arrive are owned by `fds` and close on return.
        // The kernel also truncates when it cannot install a descriptor for want of free
        // numbers: fewer than the buffer holds arrived.
        if truncated && fds.len() < MAX_FDS {
            return Err(Error::new(
                Code::Io,
                "out of file descriptors while receiving a descriptor from criu (EMFILE); raise RLIMIT_NOFILE or close descriptors",
            ));
        }
        if truncated {
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
        if resp.r#type != crate::proto::CriuReqType::Notify as i32 {
            self.answered = resp.success;
        }
        self.note_criu_id();
        Ok(Reply { resp, fds })
    }

    /// Reads criu's marks again as the conversation goes on: the program ckpt started may
    /// have been a wrapper that later became criu, and a read just after the spawn may have
    /// met the exec half done. Kept as they were once criu is a zombie.
    fn note_criu_id(&mut self) {
        if let Some(c) = self.child.as_ref().filter(|c| !c.reaped) {
            // An unreaped child: its pid is still its own.
            if let Some(id) = crate::tree::criu_id(c.pid.as_raw()) {
                self.criu_id = Some(id);
            }
        }
    }

    /// Whether criu closed its end: POLLHUP is set once the peer is gone.
    fn peer_hung_up(&self) -> bool {
        let Ok(sock) = self.sock() else {
            return true;
        };
        // POLLHUP is reported whatever was asked for.
        let mut pfd = [PollFd::new(sock, PollFlags::empty())];
        matches!(poll(&mut pfd, PollTimeout::ZERO), Ok(n) if n > 0)
            && pfd[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP))
    }

    fn wait_readable(&mut self) -> Result<()> {
        loop {
            if let Some(why) = self.stop_now() {
                return Err(self.stopped(why));
            }
            let left = match (&self.parasite_wait, self.deadline) {
                (Some(_), _) => Some(PARASITE_LOOK),
                (None, None) => None,
                (None, Some(d)) => Some(d.saturating_duration_since(Instant::now())),
            };
            let timeout = match left {
                None => PollTimeout::NONE,
                Some(left) => {
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
            let err_at = pfds.len();
            if let Some(e) = self.stderr.as_ref().and_then(|t| t.fd()) {
                pfds.push(PollFd::new(e, PollFlags::POLLIN));
            }
            // A trigger makes the eventfd readable and wakes this poll; the loop's first
            // check then stops criu.
            if let Some(c) = self.cancel.as_ref().filter(|_| self.cancel_armed) {
                pfds.push(PollFd::new(c.wake_fd(), PollFlags::POLLIN));
            }
            match poll(&mut pfds, timeout) {
                Ok(0) => continue,
                Ok(_) => {
                    let stderr_ready =
                        pfds.get(err_at).and_then(|p| p.revents()).is_some_and(|r| {
                            r.intersects(
                                PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
                            )
                        });
                    let s = pfds[0].revents().unwrap_or(PollFlags::empty());
                    let exited = pfds
                        .get(1)
                        .filter(|_| err_at > 1)
                        .and_then(|p| p.revents())
                        .is_some_and(|r| r.contains(PollFlags::POLLIN));
                    drop(pfds);
                    if stderr_ready {
                        if let Some(t) = self.stderr.as_mut() {
                            t.drain();
                        }
                    }
                    if s.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        return Ok(());
                    }
                    // criu exited, yet something it started may still hold its end of the
                    // socket: do not wait for an end-of-file that may never come.
                    if exited {
                        return Err(self.died("before replying"));
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(sys_err("poll", e)),
            }
        }
    }

    /// Why criu must be killed now, if it must: the deadline passed or the caller cancelled,
    /// and no task of a tree criu dumps holds criu's code, or `PARASITE_WAIT` ran out.
    fn stop_now(&mut self) -> Option<Code> {
        if let Some(w) = &self.parasite_wait {
            let why = w.why;
            let over = w.since.elapsed() >= PARASITE_WAIT;
            return (over || self.parasite_left()).then_some(why);
        }
        let why = if self.cancel_requested() {
            Code::Cancelled
        } else if self.deadline_passed() {
            Code::Timeout
        } else {
            return None;
        };
        if self.holds_tree && self.no_return.is_none() && self.restore_root.is_none() {
            if let Some(traced) = self.criu_holds_tree_with_its_code() {
                // criu goes on; it is stopped and looked at every `PARASITE_LOOK`.
                self.parasite_wait = Some(ParasiteWait {
                    why,
                    since: Instant::now(),
                    traced,
                });
                self.cancel_armed = false;
                return None;
            }
        }
        Some(why)
    }

    /// With criu stopped: the tasks it traces when one of them holds its code (criu is then
    /// let go on), None otherwise (criu stays stopped, to be killed).
    fn criu_holds_tree_with_its_code(&mut self) -> Option<Vec<i32>> {
        let child = self.child.as_ref().filter(|c| !c.reaped)?;
        let (criu, held) = (child.pid.as_raw(), &child.pidfd);
        if !crate::sweep::pause(criu, held) {
            return None;
        }
        let traced = crate::parasite::traced_by(criu);
        if crate::parasite::holding(&traced).is_empty() {
            self.code_out_of_tree = true;
            return None;
        }
        crate::sweep::resume(criu, held);
        Some(traced)
    }

    /// During `PARASITE_WAIT`: stops criu and looks again; true (criu left stopped, to be
    /// killed) once no traced task holds its code.
    fn parasite_left(&mut self) -> bool {
        let (Some(w), Some(child)) = (&self.parasite_wait, self.child.as_ref()) else {
            return true;
        };
        let (criu, held) = (child.pid.as_raw(), &child.pidfd);
        if child.reaped || !crate::sweep::pause(criu, held) {
            return true;
        }
        if crate::parasite::holding(&w.traced).is_empty() {
            self.code_out_of_tree = true;
            return true;
        }
        crate::sweep::resume(criu, held);
        false
    }

    /// What the wait for criu's code to leave the tree came to, for the error's message.
    fn parasite_wait_said(&mut self) -> String {
        let Some(w) = self.parasite_wait.take() else {
            return String::new();
        };
        let ms = w.since.elapsed().as_millis();
        match crate::parasite::holding(&w.traced).as_slice() {
            [] => format!(
                "; criu was let go on for {ms} ms until no task of the tree held its code, \
                 then killed"
            ),
            held => format!(
                "; criu's code was still in task(s) {held:?} after {ms} ms, when criu was \
                 killed: they may die"
            ),
        }
    }

    /// Kills and reaps criu because the deadline passed (`Code::Timeout`) or the caller
    /// cancelled (`Code::Cancelled`), and says what that means for the tree.
    fn stopped(&mut self, why: Code) -> Error {
        let pid = self.criu_pid();
        let waited = self.parasite_wait_said();
        self.kill_and_reap();
        let who = pid
            .map(|p| format!("criu (pid {p})"))
            .unwrap_or("criu".into());
        let msg = if why == Code::Cancelled {
            format!("the operation was cancelled; {who} was killed before it answered")
        } else {
            format!("{who} did not answer within the operation timeout and was killed")
        };
        let e = self.after_no_return(Error::new(why, msg + &waited));
        self.told_of_swept(e)
    }

    /// Says which tree criu was restoring as the caller's child was killed with it.
    fn told_of_swept(&self, mut e: Error) -> Error {
        if let Some(&p) = self.swept.first() {
            e.outcome |= crate::error::outcome::RESTORED_KILLED;
            e.pid = p;
            e.message
                .push_str(&format!("; the restored tree (pid {p}) was killed"));
        }
        e
    }

    /// An error that ends the conversation after the point of no return: the tree may have
    /// been killed in part, so the caller is told to look.
    fn after_no_return(&self, mut e: Error) -> Error {
        if !self.is_past_point_of_no_return() && self.holds_tree {
            e.outcome |= crate::error::outcome::TREE_STATE_UNKNOWN;
            e.message.push_str(
                "; criu had the tree in hand (seized, frozen or being dumped): CRIU did not \
                 kill it, but it may be left stopped, frozen (freeze-cgroup) or with its \
                 network locked",
            );
            if !self.code_out_of_tree {
                e.message
                    .push_str(", or have lost a task that held criu's parasite code");
            }
        }
        if self.is_past_point_of_no_return() {
            e.outcome |= crate::error::outcome::TREE_STATE_UNKNOWN;
            e.message.push_str(
                "; criu had been told to finish the dump (post-dump acknowledged), so the \
                 dumped tree may have been killed, in whole or in part",
            );
        }
        e
    }

    /// Builds the "criu went away" error, reaping criu to report how it ended.
    pub fn died(&mut self, when: &str) -> Error {
        self.sock = None;
        let how = match self.reap(Some(self.grace())) {
            Some(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
            Some(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
            _ => "closed the connection".to_string(),
        };
        self.take_down_orphaned_roots();
        let mut msg = format!("criu {how} {when}");
        if let Some(line) = self.stderr_last_line() {
            msg.push_str(&format!("; it said: {line}"));
        }
        let e = self.after_no_return(Error::new(Code::CriuDied, msg));
        self.told_of_swept(e)
    }

    fn kill_and_reap(&mut self) {
        // The socket closes only once criu and what it started are stopped: a task of a
        // tree being restored that read end-of-file on it could exit and leave its children
        // to init before they were found.
        self.take_down();
        self.sock = None;
        self.reap(None);
    }

    /// Kills criu and everything it started, and reaps criu. criu is stopped first, so it
    /// cannot fork again; then every process it started is found and stopped: its
    /// descendants (helpers it forked, a tree it restores detached) and, for a restore, the
    /// root it made the spawning thread's child (CLONE_PARENT) with that root's descendants.
    /// All are then killed, criu and those that are this process's children reaped. After
    /// criu answered a request with success, only criu is killed: what it started since
    /// (a page server, exec-cmd) is meant to outlive it.
    fn take_down(&mut self) -> Option<WaitStatus> {
        let answered = self.answered;
        let spawner = self.spawner;
        let child = self.child.as_mut()?;
        if child.reaped {
            return child.status;
        }
        let criu = child.pid.as_raw();
        let mut sweep = crate::sweep::Sweep::new();
        let mut roots = vec![];
        if answered {
            child.kill();
        } else {
            // The sweep signals criu through its pidfd, given back before criu is waited for.
            sweep.add(criu, child.pidfd.take());
            sweep.wait_stopped(&[criu]);
            // criu is stopped: it makes no more children of the spawning thread.
            let id = crate::tree::criu_id(criu).or_else(|| self.criu_id.clone());
            let started = id
                .as_ref()
                .map(|i| i.started)
                .or_else(|| crate::sweep::start_time(criu));
            // Only a restore has criu make children of the spawning thread (the tree's
            // root, CLONE_PARENT). Any other request's children of that thread are not
            // criu's: a subreaper adopts other programs' orphans there, another criu's
            // helper among them, which looks like criu's own.
            if let Some(r) = self.restore_root.as_ref() {
                let restore_root = started.map(|s| (r, s));
                roots = add_roots(&mut sweep, id.as_ref(), restore_root, criu, spawner, true);
            }
            sweep.stop_descendants();
            sweep.kill();
            child.pidfd = sweep.take(criu);
        }
        let status = child.wait();
        child.reaped = true;
        child.status = status;
        for &r in &roots {
            sweep.reap_child(r);
        }
        // criu is reaped: its children went to their new parent, which may be this process.
        roots.push(criu);
        sweep.reap_rest(&roots);
        roots.pop();
        self.swept.extend(roots);
        status
    }

    /// After criu died by itself before answering (killed by someone else, a crash): kills
    /// the root it had made the spawning thread's child (CLONE_PARENT) for a restore it never
    /// finished, with that root's descendants, and reaps the root. criu's own children went
    /// to their new parent and are out of reach. After a successful answer nothing is
    /// touched: what criu started is meant to outlive it.
    fn take_down_orphaned_roots(&mut self) {
        let Some(child) = self.child.as_ref().filter(|c| c.reaped) else {
            return;
        };
        // Only a restore's criu makes children of the spawning thread (see take_down).
        if self.answered || !self.swept.is_empty() || self.restore_root.is_none() {
            return;
        }
        let mut sweep = crate::sweep::Sweep::new();
        // criu is gone: its command line as it last ran is unknown (it retitles itself).
        let restore_root = self
            .restore_root
            .as_ref()
            .zip(self.criu_id.as_ref().map(|i| i.started));
        let roots = add_roots(
            &mut sweep,
            self.criu_id.as_ref(),
            restore_root,
            child.pid.as_raw(),
            self.spawner,
            false,
        );
        if roots.is_empty() {
            return;
        }
        sweep.stop_descendants();
        sweep.kill();
        for &r in &roots {
            sweep.reap_child(r);
        }
        sweep.reap_rest(&roots);
        self.swept.extend(roots);
    }

    /// Waits for criu to exit, up to `grace` (then kills it with what it started, see
    /// `take_down`), and records how it ended. A
    /// caller that reaps children itself (a SIGCHLD handler, SIG_IGN) makes waitpid fail with
    /// ECHILD: criu is gone either way, so that is not an error.
    fn reap(&mut self, grace: Option<Duration>) -> Option<WaitStatus> {
        let child = self.child.as_mut()?;
        if child.reaped {
            return child.status;
        }
        if let (Some(grace), Some(pidfd)) = (grace, child.pidfd.as_ref()) {
            // criu's standard error is read while it exits, so a criu still writing to it
            // never blocks on a full pipe until the grace runs out.
            let end = Instant::now() + grace;
            let exited = loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break false;
                }
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                let t = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
                let mut pfd = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
                if let Some(e) = self.stderr.as_ref().and_then(|t| t.fd()) {
                    pfd.push(PollFd::new(e, PollFlags::POLLIN));
                }
                match poll(&mut pfd, t) {
                    Err(Errno::EINTR) => continue,
                    Ok(_) if pfd[0].revents().is_some_and(|r| !r.is_empty()) => break true,
                    Ok(_) => {
                        drop(pfd);
                        match self.stderr.as_mut() {
                            Some(t) => t.drain(),
                            None => continue,
                        }
                    }
                    Err(_) => break true,
                }
            };
            if !exited {
                return self.take_down();
            }
        }
        let status = child.wait();
        child.reaped = true;
        child.status = status;
        status
    }

    /// The last line criu wrote to its standard error, when ckpt captured it.
    pub fn stderr_last_line(&mut self) -> Option<String> {
        self.stderr.as_mut().and_then(|t| t.last_line())
    }

    /// What ckpt kept of criu's standard error (its last bytes), when it captured it.
    pub fn stderr_text(&mut self) -> Option<String> {
        self.stderr.as_mut().map(|t| t.text())
    }

    /// Ends the conversation and waits for criu to exit (killing it after the grace), so
    /// everything it wrote to its standard error is read: CRIU may say why it failed there
    /// just after its reply ("Can't create log file ...").
    pub fn stderr_to_end(&mut self) {
        self.sock = None;
        self.reap(Some(EXIT_GRACE));
        if let Some(t) = self.stderr.as_mut() {
            t.drain();
        }
    }

    /// Closes the socket and reaps criu; returns how criu ended when ckpt could see it.
    pub fn finish(mut self) -> Option<WaitStatus> {
        self.sock = None;
        let grace = self.grace();
        self.reap(Some(grace))
    }
}

/// Stops, into `sweep`, the children criu (marked by `id`, with its current command line
/// when `live`) made thread `spawner` with CLONE_PARENT, and returns them: those still
/// running criu's program, and, for a restore (`restore_root`, with criu's start time), the
/// root of the tree whatever it runs by then. criu must be stopped or gone, so it makes no
/// more.
fn add_roots(
    sweep: &mut crate::sweep::Sweep,
    id: Option<&crate::tree::CriuId>,
    restore_root: Option<(&crate::tree::RestoreRoot, u64)>,
    criu: i32,
    spawner: Option<libc::pid_t>,
    live: bool,
) -> Vec<i32> {
    let Some(t) = spawner else {
        return vec![];
    };
    let mut found = id
        .map(|id| crate::tree::made_by_criu(id, criu, t, live))
        .unwrap_or_default();
    // A root in CRIU's restorer runs the restored program already; left out, it would run
    // on once criu is killed (detached from criu's ptrace, possibly half way through what
    // criu was doing to it) and could die and leave its children to init.
    if let Some(r) = restore_root.and_then(|(h, started)| crate::tree::restoring_root(h, criu, started, t)) {
        if !found.contains(&r) {
            found.push(r);
        }
    }
    let mut roots = vec![];
    for r in found {
        // An unreaped child of this process: its pid cannot have been reused.
        if let Some(h) = crate::sweep::hold(r) {
            sweep.add(r, h);
            roots.push(r);
        }
    }
    roots
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.sock = None;
        let grace = self.grace();
        self.reap(Some(grace));
    }
}
