//! Reading a runtime's state file (runc's `state.json`, crun's `status`) without trusting what
//! lies at its path: a FIFO there made the read wait for a writer for ever, and a huge file
//! was read whole into memory.

use crate::error::{Code, Error, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use std::io::Read;
use std::path::Path;

/// The largest state file read. runc's `state.json` is a few KiB (the container's config in
/// full; tens of KiB with a large seccomp profile), crun's `status` a few hundred bytes.
pub const MAX_BYTES: u64 = 4 << 20;

/// The text of the regular file at `path`, at most `MAX_BYTES` long. It is opened without
/// waiting (O_NONBLOCK: a FIFO does not block the open) and without following a symbolic link
/// in its last component (runtimes write these files in place or by rename, never as links);
/// anything but a regular file is refused, naming what it is.
pub fn read(path: &Path) -> Result<String> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| {
        let p = path.display();
        match e {
            nix::errno::Errno::ELOOP => {
                Error::invalid(format!("{p} is a symbolic link, not a regular file"))
            }
            nix::errno::Errno::ENOENT => Error::new(Code::NotFound, format!("{p}: {}", e.desc())),
            _ => Error::io(p, e.desc()),
        }
    })?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::io(path.display().to_string(), e))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if kind != SFlag::S_IFREG {
        let what = match kind {
            SFlag::S_IFIFO => "a FIFO",
            SFlag::S_IFDIR => "a directory",
            SFlag::S_IFSOCK => "a socket",
            SFlag::S_IFCHR => "a character device",
            SFlag::S_IFBLK => "a block device",
            _ => "not a file",
        };
        return Err(Error::invalid(format!(
            "{} is {what}, not a regular file",
            path.display()
        )));
    }
    let too_big = || {
        Error::invalid(format!(
            "{} is larger than {MAX_BYTES} bytes: not a runtime's state file",
            path.display()
        ))
    };
    if st.st_size as u64 > MAX_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    // Bounded also when the file grows after fstat.
    std::fs::File::from(fd)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path.display().to_string(), e))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8 text", path.display())))
}
