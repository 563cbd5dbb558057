//! CRIU's cgroup image (cgroup.img), read and changed without CRIU's image definitions: a
//! small walker over the protobuf wire format that knows only the fields it needs
//! (images/cgroup.proto: cgroup_entry.controllers = 2; cg_controller_entry.cnames = 1,
//! dirs = 2; cgroup_dir_entry.children = 2, properties = 3; cgroup_prop_entry.name = 1,
//! value = 2).

use crate::error::{Error, Result};
use std::path::Path;

/// The file CRIU records cgroups in.
pub const CGROUP_IMAGE: &str = "cgroup.img";

/// Sets every `freezer.state` property of the freezer controller in the cgroup image `img`
/// from FROZEN to THAWED, in place (the two values have the same length, so every other byte
/// of the image stays as CRIU wrote it). Returns how many were changed.
pub fn thaw_in_image(img: &Path) -> Result<usize> {
    let mut data =
        std::fs::read(img).map_err(|e| Error::io(format!("reading {}", img.display()), e))?;
    let bad = |what: &str| Error::invalid(format!("{}: {what}", img.display()));
    let mut spots = vec![];
    for (s, e) in entries(&data).map_err(&bad)? {
        for (field, c) in fields(&data, s, e).map_err(&bad)? {
            // cgroup_entry.controllers = 2
            if field != 2 {
                continue;
            }
            let ctl = fields(&data, c.0, c.1).map_err(&bad)?;
            let is_freezer = ctl
                .iter()
                .any(|(f, s)| *f == 1 && &data[s.0..s.1] == b"freezer");
            if !is_freezer {
                continue;
            }
            // cg_controller_entry.dirs = 2
            for (_, d) in ctl.iter().filter(|(f, _)| *f == 2) {
                dir_props(&data, *d, &mut spots).map_err(&bad)?;
            }
        }
    }
    if !spots.is_empty() {
        // Only the values are written, in place, without truncating first: a write that fails
        // leaves the rest of CRIU's image as it was, never an empty or shortened file.
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(img)
            .map_err(|e| Error::io(format!("writing {}", img.display()), e))?;
        for &(s, e) in &spots {
            data[s..e].copy_from_slice(b"THAWED");
            f.write_all_at(&data[s..e], s as u64)
                .map_err(|e| Error::io(format!("writing {}", img.display()), e))?;
        }
    }
    Ok(spots.len())
}

/// In a cgroup_dir_entry, the value spans of `freezer.state` = FROZEN properties, children
/// included.
fn dir_props(data: &[u8], d: Span, spots: &mut Vec<Span>) -> Wire<()> {
    for (f, span) in fields(data, d.0, d.1)? {
        match f {
            // children
            2 => dir_props(data, span, spots)?,
            // properties: name = 1, value = 2
            3 => {
                let p = fields(data, span.0, span.1)?;
                let name = p
                    .iter()
                    .find(|(f, _)| *f == 1)
                    .map(|(_, s)| &data[s.0..s.1]);
                let value = p.iter().find(|(f, _)| *f == 2).map(|(_, s)| *s);
                if let (Some(b"freezer.state"), Some(v)) = (name, value) {
                    if &data[v.0..v.1] == b"FROZEN" {
                        spots.push(v);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A field's span in the image: start and end offsets.
type Span = (usize, usize);
/// What a malformed image is called.
pub(super) type Wire<T> = std::result::Result<T, &'static str>;

pub(super) fn varint(data: &[u8], at: &mut usize, end: usize) -> Wire<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if *at >= end {
            return Err("truncated varint");
        }
        let b = data[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long")
}

/// The length-delimited fields of the protobuf message in `data[start..end]`, as (field
/// number, span); other wire types are skipped.
fn fields(data: &[u8], start: usize, end: usize) -> Wire<Vec<(u64, Span)>> {
    let mut out = vec![];
    let mut at = start;
    while at < end {
        let key = varint(data, &mut at, end)?;
        match key & 7 {
            0 => {
                varint(data, &mut at, end)?;
            }
            1 => at += 8,
            2 => {
                let len = varint(data, &mut at, end)? as usize;
                if at + len > end {
                    return Err("field runs past its message");
                }
                out.push((key >> 3, (at, at + len)));
                at += len;
            }
            5 => at += 4,
            _ => return Err("unknown wire type"),
        }
    }
    if at != end {
        return Err("field runs past its message");
    }
    Ok(out)
}

/// The controllers of each hierarchy the image holds, as CRIU names them (`cnames`: "cpu",
/// "name=systemd", "" for cgroup2), one list per hierarchy.
pub fn controllers(img: &Path) -> Result<Vec<Vec<String>>> {
    // Read before CRIU runs, from images that may be an archive's: bounded, never a FIFO.
    let data = crate::paths::read_bytes_at_most(img, crate::paths::MAX_TEXT)
        .map_err(|e| Error::io(format!("reading {}", img.display()), e))?;
    let bad = |what: &str| Error::invalid(format!("{}: {what}", img.display()));
    let mut out = vec![];
    for (s, e) in entries(&data).map_err(&bad)? {
        for (field, c) in fields(&data, s, e).map_err(&bad)? {
            if field != 2 {
                continue;
            }
            let names = fields(&data, c.0, c.1)
                .map_err(&bad)?
                .into_iter()
                .filter(|(f, _)| *f == 1)
                .map(|(_, n)| String::from_utf8_lossy(&data[n.0..n.1]).into_owned())
                .collect();
            out.push(names);
        }
    }
    Ok(out)
}

/// Whether the image holds any cgroup directory (`cg_controller_entry.dirs`): CRIU records
/// none when it dumped in manage-cgroups-mode ignore, and then has none to create on restore.
pub fn holds_dirs(img: &Path) -> Result<bool> {
    let data = crate::paths::read_bytes_at_most(img, crate::paths::MAX_TEXT)
        .map_err(|e| Error::io(format!("reading {}", img.display()), e))?;
    let bad = |what: &str| Error::invalid(format!("{}: {what}", img.display()));
    for (s, e) in entries(&data).map_err(&bad)? {
        for (field, c) in fields(&data, s, e).map_err(&bad)? {
            if field == 2
                && fields(&data, c.0, c.1)
                    .map_err(&bad)?
                    .iter()
                    .any(|(f, _)| *f == 2)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The spans of the image's entries (after the two magic numbers, each a little-endian u32
/// size and a message).
pub(super) fn entries(data: &[u8]) -> Wire<Vec<Span>> {
    let mut at = 8;
    if data.len() < at {
        return Err("shorter than an image header");
    }
    let mut out = vec![];
    while at < data.len() {
        let size = data
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("truncated entry size")?;
        let end = at + 4 + size;
        if end > data.len() {
            return Err("truncated entry");
        }
        out.push((at + 4, end));
        at = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![((field << 3) | 2) as u8, body.len() as u8];
        v.extend_from_slice(body);
        v
    }
    fn prop(name: &str, value: &str) -> Vec<u8> {
        [ld(1, name.as_bytes()), ld(2, value.as_bytes())].concat()
    }
    fn image(ctls: &[Vec<u8>]) -> Vec<u8> {
        let entry: Vec<u8> = ctls.iter().flat_map(|c| ld(2, c)).collect();
        let mut v = 0x5456_4319u32.to_le_bytes().to_vec();
        v.extend(0x5938_3330u32.to_le_bytes());
        v.extend((entry.len() as u32).to_le_bytes());
        v.extend(entry);
        v
    }

    #[test]
    fn only_the_freezer_controllers_frozen_state_changes() {
        let freezer_dir = [
            ld(1, b"c1"),
            ld(3, &prop("freezer.state", "FROZEN")),
            ld(
                2,
                &[ld(1, b"sub"), ld(3, &prop("freezer.state", "FROZEN"))].concat(),
            ),
        ]
        .concat();
        let freezer = [ld(1, b"freezer"), ld(2, &freezer_dir)].concat();
        // Another controller with a property that merely looks the same stays as it is.
        let other = [
            ld(1, b"memory"),
            ld(
                2,
                &[ld(1, b"c1"), ld(3, &prop("freezer.state", "FROZEN"))].concat(),
            ),
        ]
        .concat();
        let img = image(&[other.clone(), freezer]);
        let dir = std::env::temp_dir().join(format!("ckpt-cgimage-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join(CGROUP_IMAGE);
        std::fs::write(&f, &img).unwrap();
        assert_eq!(thaw_in_image(&f).unwrap(), 2);
        let after = std::fs::read(&f).unwrap();
        assert_eq!(after.len(), img.len());
        let s = String::from_utf8_lossy(&after);
        assert_eq!(s.matches("THAWED").count(), 2);
        assert_eq!(s.matches("FROZEN").count(), 1);
        assert_eq!(after[..12], img[..12]);
        assert_eq!(thaw_in_image(&f).unwrap(), 0);
        assert_eq!(
            controllers(&f).unwrap(),
            [vec!["memory".to_string()], vec!["freezer".to_string()]]
        );
        std::fs::write(&f, &img[..img.len() - 3]).unwrap();
        assert!(thaw_in_image(&f).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
