//! Starting a child with exactly the descriptors it should have, without copying the caller.
//!
//! glibc's posix_spawn runs the child on the caller's memory (CLONE_VM|CLONE_VFORK) until exec,
//! so starting criu costs the same from a 10 MiB caller and from an 8 GiB one, unlike fork.
//! nix wraps posix_spawn but not `addclosefrom_np`, which is what keeps every descriptor the
//! caller forgot to mark close-on-exec out of criu, so this talks to libc directly.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;

use nix::sys::signal::{SigSet, Signal};

use crate::error::{Code, Error, Result};

/// The first descriptor number handed to a child beyond stdio.
pub const FIRST_CHILD_FD: RawFd = 3;

struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> Result<FileActions> {
        // SAFETY: zeroed storage is what posix_spawn_file_actions_init expects to initialise.
        let mut fa: libc::posix_spawn_file_actions_t = unsafe { std::mem::zeroed() };
        // SAFETY: `fa` is valid, writable storage for the duration of the call.
        check(
            unsafe { libc::posix_spawn_file_actions_init(&mut fa) },
            "file actions",
        )?;
        Ok(FileActions(fa))
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed exactly once here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

struct Attr(libc::posix_spawnattr_t);

impl Attr {
    fn new() -> Result<Attr> {
        // SAFETY: zeroed storage is what posix_spawnattr_init expects to initialise.
        let mut a: libc::posix_spawnattr_t = unsafe { std::mem::zeroed() };
        // SAFETY: `a` is valid, writable storage for the duration of the call.
        check(
            unsafe { libc::posix_spawnattr_init(&mut a) },
            "spawn attributes",
        )?;
        Ok(Attr(a))
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed exactly once here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

fn check(rc: libc::c_int, what: &str) -> Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::new(
            Code::Spawn,
            format!("posix_spawn {what}: {}", nix::errno::Errno::from_raw(rc)),
        ))
    }
}

fn cstring(what: &str, s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes())
        .map_err(|_| Error::invalid(format!("{what} contains a NUL byte")))
}

/// What the child gets as standard input, output and error.
#[derive(Clone, Copy, Debug)]
pub enum Stdio<'a> {
    /// The caller's own streams (a shell-job restore takes over the caller's terminal).
    Inherit,
    /// /dev/null: criu logs to its file, and a library must not write to its caller's stdout.
    Null,
    /// /dev/null for input and output, standard error into this descriptor (a pipe ckpt reads).
    NullStderrTo(BorrowedFd<'a>),
}

/// The child's signal mask and dispositions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signals {
    /// Nothing blocked, every signal at its default: a caller that blocks signals (Go does)
    /// cannot leave criu deaf to them.
    Reset,
    /// As a fork and exec by the caller leaves them, the way libcriu starts criu: the calling
    /// thread's mask, and what the caller ignores stays ignored (a caller under nohup, or one
    /// that blocks SIGINT and SIGTERM to read them from a signalfd, keeps criu as immune to
    /// them as itself); except SIGCHLD, unblocked and at its default, without which criu
    /// cannot wait for its own children.
    // Only the libcriu drop-in asks for it, through the internals feature.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    AsCaller,
}

/// Starts `program` with `args` (argv[0] included). `fds[i]` becomes descriptor
/// `FIRST_CHILD_FD + i` in the child; every other descriptor above stderr is closed in it, and
/// its signal mask and dispositions are reset so a caller that blocks signals (Go does) cannot
/// leave criu deaf to them.
pub fn spawn(
    program: &OsStr,
    args: &[&OsStr],
    fds: &[BorrowedFd<'_>],
    stdio: Stdio<'_>,
) -> Result<libc::pid_t> {
    spawn_with(program, args, fds, stdio, false, Signals::Reset)
}

/// As `spawn`, with the signal mask and dispositions `signals` says.
pub fn spawn_signals(
    program: &OsStr,
    args: &[&OsStr],
    fds: &[BorrowedFd<'_>],
    stdio: Stdio<'_>,
    signals: Signals,
) -> Result<libc::pid_t> {
    spawn_with(program, args, fds, stdio, false, signals)
}

/// As `spawn`, with the child in a session of its own (setsid): a process that must outlive
/// its place in the caller's tree (libcriu's self-dump) then holds none of the caller's
/// session or process group numbers.
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // libcriu's
pub fn spawn_new_session(
    program: &OsStr,
    args: &[&OsStr],
    fds: &[BorrowedFd<'_>],
    stdio: Stdio<'_>,
) -> Result<libc::pid_t> {
    spawn_with(program, args, fds, stdio, true, Signals::Reset)
}

/// A close-on-exec copy of `fd` numbered above `last_target`.
fn dup_above(fd: BorrowedFd<'_>, last_target: RawFd) -> Result<OwnedFd> {
    let dup = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(last_target + 1))
        .map_err(|e| Error::dup_failed("descriptor", fd.as_raw_fd(), e))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

fn spawn_with(
    program: &OsStr,
    args: &[&OsStr],
    fds: &[BorrowedFd<'_>],
    stdio: Stdio<'_>,
    new_session: bool,
    signals: Signals,
) -> Result<libc::pid_t> {
    let last_target = FIRST_CHILD_FD + fds.len() as RawFd;
    // Copies above every target number, so one dup2 can never overwrite a source another needs.
    let sources = fds
        .iter()
        .map(|fd| dup_above(*fd, last_target))
        .collect::<Result<Vec<_>>>()?;

    let mut fa = FileActions::new()?;
    let null_up_to = match stdio {
        Stdio::Inherit => 0,
        Stdio::Null => 3,
        Stdio::NullStderrTo(_) => 2,
    };
    for fd in 0..null_up_to {
        // SAFETY: `fa` is initialised; the path is a NUL-terminated static string.
        check(
            unsafe {
                libc::posix_spawn_file_actions_addopen(
                    &mut fa.0,
                    fd,
                    c"/dev/null".as_ptr(),
                    libc::O_RDWR,
                    0,
                )
            },
            "open /dev/null",
        )?;
    }
    // Like the other sources, a copy above every target number.
    let stderr_src = match stdio {
        Stdio::NullStderrTo(fd) => Some(dup_above(fd, last_target)?),
        _ => None,
    };
    if let Some(src) = &stderr_src {
        // SAFETY: `fa` is initialised; both numbers are plain integers checked by the child.
        check(
            unsafe { libc::posix_spawn_file_actions_adddup2(&mut fa.0, src.as_raw_fd(), 2) },
            "dup2 stderr",
        )?;
    }
    for (i, src) in sources.iter().enumerate() {
        // SAFETY: `fa` is initialised; both numbers are plain integers checked by the child.
        check(
            unsafe {
                libc::posix_spawn_file_actions_adddup2(
                    &mut fa.0,
                    src.as_raw_fd(),
                    FIRST_CHILD_FD + i as RawFd,
                )
            },
            "dup2",
        )?;
    }
    // SAFETY: `fa` is initialised; closefrom acts only in the child.
    check(
        unsafe { libc::posix_spawn_file_actions_addclosefrom_np(&mut fa.0, last_target) },
        "closefrom",
    )?;

    let mut flags = (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short;
    if new_session {
        // libc declares this flag as c_short, the two above as c_int.
        flags |= libc::POSIX_SPAWN_SETSID;
    }
    let mut attr = Attr::new()?;
    let (mask, default) = match signals {
        Signals::Reset => (SigSet::empty(), SigSet::all()),
        Signals::AsCaller => {
            let mut mask = SigSet::thread_get_mask()
                .map_err(|e| Error::new(Code::Spawn, format!("signal mask: {e}")))?;
            mask.remove(Signal::SIGCHLD);
            let mut default = SigSet::empty();
            default.add(Signal::SIGCHLD);
            (mask, default)
        }
    };
    // SAFETY: `attr` is initialised; the sigset pointers are valid for the calls.
    unsafe {
        check(
            libc::posix_spawnattr_setsigmask(&mut attr.0, mask.as_ref()),
            "sigmask",
        )?;
        check(
            libc::posix_spawnattr_setsigdefault(&mut attr.0, default.as_ref()),
            "sigdefault",
        )?;
        check(libc::posix_spawnattr_setflags(&mut attr.0, flags), "flags")?;
    }

    let prog = cstring("criu path", program)?;
    let argv: Vec<CString> = args
        .iter()
        .map(|a| cstring("argument", a))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut argv_p: Vec<*mut libc::c_char> = argv.iter().map(|s| s.as_ptr().cast_mut()).collect();
    argv_p.push(ptr::null_mut());
    let mut envp_p: Vec<*mut libc::c_char> = envp.iter().map(|s| s.as_ptr().cast_mut()).collect();
    envp_p.push(ptr::null_mut());

    let mut pid: libc::pid_t = 0;
    let search_path = !program.as_bytes().contains(&b'/');
    // SAFETY: every pointer refers to storage that outlives the call: `prog`, `argv`, `envp`
    // and their NULL-terminated pointer arrays, and the initialised `fa` and `attr`.
    let rc = unsafe {
        if search_path {
            libc::posix_spawnp(
                &mut pid,
                prog.as_ptr(),
                &fa.0,
                &attr.0,
                argv_p.as_ptr(),
                envp_p.as_ptr(),
            )
        } else {
            libc::posix_spawn(
                &mut pid,
                prog.as_ptr(),
                &fa.0,
                &attr.0,
                argv_p.as_ptr(),
                envp_p.as_ptr(),
            )
        }
    };
    if rc != 0 {
        let errno = nix::errno::Errno::from_raw(rc);
        let mut e = Error::new(
            Code::Spawn,
            format!(
                "cannot start {}: {errno}{}",
                program.to_string_lossy(),
                where_searched(search_path, errno)
            ),
        );
        e.criu_errno = rc;
        return Err(e);
    }
    drop(sources);
    Ok(pid)
}

/// For a name not found on PATH, where it was looked for: a daemon's PATH (a service manager's,
/// or none at all) often lacks the directory criu is in, and "No such file or directory" alone
/// does not say that the name was searched for, nor where.
fn where_searched(search_path: bool, errno: nix::errno::Errno) -> String {
    if !search_path || errno != nix::errno::Errno::ENOENT {
        return String::new();
    }
    match std::env::var_os("PATH") {
        Some(p) => format!(
            " (not found in any directory of PATH={}; give its path instead)",
            p.to_string_lossy()
        ),
        // glibc's posix_spawnp searches /bin:/usr/bin without PATH.
        None => " (PATH is not set, so only /bin and /usr/bin were searched; give its path instead)"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_not_on_path_says_where_it_was_looked_for() {
        let e = spawn(
            OsStr::new("ckpt-no-such-program"),
            &[OsStr::new("ckpt-no-such-program")],
            &[],
            Stdio::Null,
        )
        .unwrap_err();
        assert_eq!(e.code, Code::Spawn);
        assert!(e.message.contains("not found in any directory of PATH="), "{e}");
        let e = spawn(OsStr::new("/nonexistent/x"), &[], &[], Stdio::Null).unwrap_err();
        assert!(!e.message.contains("PATH"), "{e}");
    }
}
