//! What criu writes to its standard error, kept while it runs. CRIU reports what happens
//! before its log file opens (a bad option in an RPC config file, a binary that is not criu)
//! only there; ckpt quotes it when there is no log to quote. The pipe is drained whenever ckpt
//! waits for criu, so criu never blocks on it, and only the tail is kept.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

/// The most of criu's standard error that is kept (its last bytes).
pub const KEEP: usize = 8 * 1024;
/// What is kept when criu's standard error carries its whole log (log-to-stderr).
pub const KEEP_LOG: usize = 1024 * 1024;

pub struct StderrTail {
    read: Option<OwnedFd>,
    tail: Vec<u8>,
    keep: usize,
}

impl StderrTail {
    /// A pipe for criu's stderr: the read end stays here (non-blocking), the write end goes to
    /// the child and is closed in this process once criu has started. O_NONBLOCK is set on the
    /// read end alone: pipe2 would set it on both, and a criu (or a helper it starts) writing
    /// more than the pipe holds would then fail with EAGAIN instead of waiting for ckpt to read.
    #[cfg(test)]
    pub fn pipe() -> nix::Result<(StderrTail, OwnedFd)> {
        StderrTail::pipe_keeping(KEEP)
    }

    /// As `pipe`, keeping the last `keep` bytes.
    pub fn pipe_keeping(keep: usize) -> nix::Result<(StderrTail, OwnedFd)> {
        use nix::fcntl::{FcntlArg, fcntl};
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let fl = OFlag::from_bits_truncate(fcntl(&r, FcntlArg::F_GETFL)?);
        fcntl(&r, FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
        Ok((
            StderrTail {
                read: Some(r),
                tail: Vec::new(),
                keep,
            },
            w,
        ))
    }

    /// The read end while it is open, for poll.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.read.as_ref().map(|f| f.as_fd())
    }

    /// Reads what is there without blocking; closes the pipe at end-of-file.
    pub fn drain(&mut self) {
        let Some(fd) = &self.read else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.read = None;
                    return;
                }
                Ok(n) => {
                    self.tail.extend_from_slice(&buf[..n]);
                    if self.tail.len() > self.keep {
                        self.tail.drain(..self.tail.len() - self.keep);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Everything kept so far (the last bytes criu wrote), as text.
    pub fn text(&mut self) -> String {
        self.drain();
        String::from_utf8_lossy(&self.tail).into_owned()
    }

    /// The last non-empty line criu wrote, if any.
    pub fn last_line(&mut self) -> Option<String> {
        self.drain();
        String::from_utf8_lossy(&self.tail)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn keeps_the_tail_and_the_last_line() {
        let (mut t, w) = StderrTail::pipe().unwrap();
        let mut f = std::fs::File::from(w);
        for i in 0..2000 {
            writeln!(f, "line {i}").unwrap();
        }
        writeln!(f, "criu: unrecognized option '--nope'\n").unwrap();
        drop(f);
        assert_eq!(
            t.last_line().as_deref(),
            Some("criu: unrecognized option '--nope'")
        );
        assert!(t.tail.len() <= KEEP);
        assert!(t.fd().is_none(), "closed at end-of-file");
    }

    #[test]
    fn only_the_read_end_is_non_blocking() {
        use nix::fcntl::{FcntlArg, fcntl};
        let (t, w) = StderrTail::pipe().unwrap();
        let flags =
            |fd: BorrowedFd<'_>| OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        assert!(flags(t.fd().unwrap()).contains(OFlag::O_NONBLOCK));
        assert!(
            !flags(w.as_fd()).contains(OFlag::O_NONBLOCK),
            "criu's end blocks"
        );
    }
}
