//! /proc/PID/mountinfo as plain data.

use crate::error::{Error, Result};
use serde::Serialize;

/// One line of mountinfo: the fields the container layer decides on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The mount id.
    pub id: u32,
    /// The parent mount's id.
    pub parent: u32,
    /// "major:minor" of the mounted file system.
    pub dev: String,
    /// The directory of the file system mounted here (a bind mount's source inside its fs).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// The file system type.
    pub fs_type: String,
    /// The mount source.
    pub source: String,
    /// The super block's options.
    pub super_options: String,
    /// The mount is in a peer group or has a master (`shared:` or `master:` among mountinfo's
    /// optional fields): mount events propagate to or from it.
    pub propagated: bool,
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses /proc/PID/mountinfo text; a malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<Mount>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || Error::invalid(format!("malformed mountinfo line: {line:?}"));
            let f: Vec<&str> = line.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-").ok_or_else(bad)?;
            if sep < 6 || f.len() < sep + 4 {
                return Err(bad());
            }
            Ok(Mount {
                id: f[0].parse().map_err(|_| bad())?,
                parent: f[1].parse().map_err(|_| bad())?,
                dev: f[2].to_string(),
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                fs_type: f[sep + 1].to_string(),
                source: unescape(f[sep + 2]),
                super_options: f[sep + 3].to_string(),
                propagated: f[6..sep]
                    .iter()
                    .any(|o| o.starts_with("shared:") || o.starts_with("master:")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_escapes() {
        let m =
            parse("86 69 254:0 /tmp/a\\040b /data/file ro,relatime shared:1 - ext4 /dev/vda rw\n")
                .unwrap();
        assert_eq!(m[0].root, "/tmp/a b");
        assert_eq!(m[0].mount_point, "/data/file");
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(m[0].parent, 69);
        assert!(m[0].propagated);
        let m = parse("61 69 0:56 / /proc/acpi ro,relatime - tmpfs tmpfs ro\n").unwrap();
        assert!(!m[0].propagated);
        assert!(parse("1 2 3").is_err());
    }
}
