//! Reading a runtime's state file (runc's `state.json`, crun's `status`) without trusting what
//! lies at its path: a FIFO there made the read wait for a writer for ever, and a huge file
//! was read whole into memory.

use crate::error::{Code, Error, Result};
use crate::paths::Unread;
use nix::errno::Errno;
use std::path::Path;

/// The largest state file read. runc's `state.json` is a few KiB (the container's config in
/// full; tens of KiB with a large seccomp profile), crun's `status` a few hundred bytes.
pub const MAX_BYTES: u64 = 4 << 20;

/// The text of the regular file at `path`, at most `MAX_BYTES` long. It is opened without
/// waiting (O_NONBLOCK: a FIFO does not block the open) and without following a symbolic link
/// in its last component (runtimes write these files in place or by rename, never as links);
/// anything but a regular file is refused, naming what it is.
pub fn read(path: &Path) -> Result<String> {
    let bytes = crate::paths::read_regular(path, MAX_BYTES, false).map_err(|u| {
        let p = path.display();
        match u {
            Unread::Open(e) => match e.raw_os_error().map(Errno::from_raw) {
                Some(Errno::ELOOP) => {
                    Error::invalid(format!("{p} is a symbolic link, not a regular file"))
                }
                Some(Errno::ENOENT) => {
                    Error::new(Code::NotFound, format!("{p}: {}", Errno::ENOENT.desc()))
                }
                Some(errno) => Error::io(p, errno.desc()),
                None => Error::io(p, e),
            },
            Unread::Read(e) => Error::io(p, e),
            Unread::NotRegular(t) => {
                let what = crate::paths::file_kind(&t);
                Error::invalid(format!("{p} is {what}, not a regular file"))
            }
            Unread::TooLarge => Error::invalid(format!(
                "{p} is larger than {MAX_BYTES} bytes: not a runtime's state file"
            )),
        }
    })?;
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8 text", path.display())))
}
