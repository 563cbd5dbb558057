//! A task the v1 freezer cannot freeze, so a cgroup holding it reads FREEZING for as long as
//! the task lives: it reads, through process_vm_readv, a page of its own registered with a
//! userfaultfd nobody serves. The kernel's fault handler waits for that page in a killable,
//! not freezable, sleep (uffd's `handle_userfault` under get_user_pages), which the freezer's
//! fake signal does not wake; SIGKILL does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::not_exercised;

// linux/userfaultfd.h, which the libc crate does not carry.
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// The forked child's whole life: raw system calls only (no allocation, no lock), since the
/// test process that forked it has other threads. Exits 2 when userfaultfd is unavailable.
fn stuck_child() -> ! {
    // SAFETY: each call gets live, correctly sized arguments; the page is this process's own
    // fresh mapping; nothing here allocates or takes a lock, so it is safe after fork.
    unsafe {
        let uffd = libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) as libc::c_int;
        if uffd < 0 {
            libc::_exit(2);
        }
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        if libc::ioctl(uffd, UFFDIO_API, &mut api) != 0 {
            libc::_exit(2);
        }
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page == libc::MAP_FAILED {
            libc::_exit(2);
        }
        let mut reg = UffdioRegister {
            start: page as u64,
            len: 4096,
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        if libc::ioctl(uffd, UFFDIO_REGISTER, &mut reg) != 0 {
            libc::_exit(2);
        }
        let mut buf = [0u8; 16];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: page,
            iov_len: buf.len(),
        };
        libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0);
        libc::_exit(3);
    }
}

/// The unfreezable task, a child of the test; thawed out of its cgroup, killed and reaped on
/// drop.
pub struct Unfreezable {
    pub pid: i32,
    state_file: Option<PathBuf>,
}

impl Unfreezable {
    /// Starts it and waits until it sleeps in the fault handler; `None` (said) where
    /// userfaultfd is not available.
    pub fn start() -> Option<Unfreezable> {
        // SAFETY: the child runs only `stuck_child`, which is safe after fork (see there).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            stuck_child();
        }
        let u = Unfreezable {
            pid,
            state_file: None,
        };
        let end = Instant::now() + super::WAIT;
        loop {
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            if wchan == "handle_userfault" {
                return Some(u);
            }
            let mut status = 0;
            // SAFETY: waits without blocking for our own child, into a live int.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                std::mem::forget(u);
                not_exercised(&format!(
                    "no task stuck in a userfaultfd fault (the child exited, status {status:#x}): \
                     a freezer that never reads FROZEN was not tried"
                ));
                return None;
            }
            assert!(
                Instant::now() < end,
                "the child never slept in handle_userfault (wchan {wchan:?})"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Moves it into the v1 freezer cgroup `dir`, which then can no longer reach FROZEN.
    pub fn join(&mut self, dir: &Path) {
        std::fs::write(dir.join("cgroup.procs"), self.pid.to_string())
            .unwrap_or_else(|e| panic!("moving {} into {}: {e}", self.pid, dir.display()));
        self.state_file = Some(dir.join("freezer.state"));
    }
}

impl Drop for Unfreezable {
    fn drop(&mut self) {
        // A task in a freezing cgroup may freeze on its way out: thawed first.
        if let Some(f) = &self.state_file {
            let _ = std::fs::write(f, "THAWED");
        }
        // SAFETY: kills and reaps our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}
