//! Writing to a pipe whose reader may be gone without raising SIGPIPE in the caller: a library
//! must never kill its host with a signal the host did not ask for. Sockets get MSG_NOSIGNAL;
//! a pipe has no such flag, so SIGPIPE is blocked for this thread around the write, and the
//! one the write raised is taken off the thread's pending set, unless the caller already had
//! one pending (that one is the caller's and stays).

use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

/// Writes all of `buf` to `fd`; a reader that is gone gives `EPIPE`, never a signal.
pub fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), Errno> {
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe), Some(&mut old))?;
    // Pending for this thread or the process before the write: not ours to consume.
    let pending_before = sigpipe_pending();
    let mut result = Ok(());
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => continue,
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result == Err(Errno::EPIPE) && !pending_before {
        consume_pending(&pipe);
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    result
}

/// Takes a pending SIGPIPE off the thread's set without waiting.
fn consume_pending(set: &SigSet) {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        // SAFETY: sigtimedwait reads the set and the zero timeout, both live for the call, and
        // writes no siginfo (NULL).
        let rc = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &zero) };
        if rc >= 0 || Errno::last() != Errno::EINTR {
            return;
        }
    }
}

fn sigpipe_pending() -> bool {
    // SAFETY: an all-zero sigset_t is valid storage for sigpending to fill.
    let mut s: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigpending writes only into `s`; sigismember only reads it.
    unsafe { libc::sigpending(&mut s) == 0 && libc::sigismember(&s, libc::SIGPIPE) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Rust ignores SIGPIPE in its own programs, so this test restores the default
    /// disposition in a forked child and checks that the child survives the write.
    #[test]
    fn a_gone_reader_gives_epipe_not_a_signal() {
        // SAFETY: the child only calls async-signal-safe functions (signal, pipe, close,
        // write, sigprocmask, sigpending, sigtimedwait, _exit) before it exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: see above.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut p = [0; 2];
                if libc::pipe(p.as_mut_ptr()) != 0 {
                    libc::_exit(2);
                }
                libc::close(p[0]);
                let w = BorrowedFd::borrow_raw(p[1]);
                let code = match write_all(w.as_fd(), b"\0") {
                    Err(Errno::EPIPE) => {
                        let mut s = std::mem::zeroed::<libc::sigset_t>();
                        libc::sigpending(&mut s);
                        // Nothing left pending once the mask is back.
                        if libc::sigismember(&s, libc::SIGPIPE) == 1 {
                            4
                        } else {
                            0
                        }
                    }
                    _ => 3,
                };
                libc::_exit(code);
            }
        }
        let mut status = 0;
        // SAFETY: waiting for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child ended with status {status:#x}"
        );
    }
}
