//! Empty tmpfs mounts of a container, checkpointed without CRIU's tar.
//!
//! CRIU saves every tmpfs it dumps with `tar --create --gzip` (a fork of criu, tar, sh and
//! gzip: about 5 ms each on the machine docs/containers.md measured), also the empty ones:
//! runc's read-only tmpfs over each masked directory and, usually, /dev/shm. For such a
//! mount, once the container is frozen and its directory found empty, ckpt declares it an
//! external mount for the dump (CRIU then runs no tar for it) under a key of its own, and at
//! CRIU's post-dump notification, before CRIU resumes or kills the tree, turns the images
//! back into what CRIU itself writes for it: the mount's entry without that key (CRIU records
//! an external mount like any other, plus the key), and its content, a gzipped tar holding
//! only the directory `./` with its mode, owner and time, in `tmpfs-dev-<dev>.tar.gz.img`.
//! Every restore (CRIU's, through runc, crun or ckpt) then reads the images as if CRIU had
//! tarred the mount. Images: images/mnt.proto, mnt_entry.root_dev = 3, ext_key = 18.

use super::cgimage::{Wire, entries, varint};
use super::mountinfo::Mount;
use crate::error::{Error, Result};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The external-mount keys ckpt gives these mounts for the dump; none is left in the images.
pub const KEY_PREFIX: &str = "ckpt-empty-tmpfs:";

/// The container's tmpfs mounts that CRIU would tar itself and that may be empty: a whole
/// file system (its root mounted), mounted once in the container, with nothing mounted on or
/// below it, in no peer group and with no master (an external mount that propagates is
/// handled differently by CRIU). `external` says which mountpoints are already external.
pub fn candidates<'a>(mounts: &'a [Mount], external: &dyn Fn(&str) -> bool) -> Vec<&'a Mount> {
    mounts
        .iter()
        .filter(|m| {
            m.fs_type == "tmpfs"
                && m.root == "/"
                && m.mount_point != "/"
                && !m.propagated
                && !external(&m.mount_point)
                && !mounts.iter().any(|o| o.id != m.id && o.dev == m.dev)
                && !mounts.iter().any(|o| o.parent == m.id && o.id != m.id)
        })
        .collect()
}

/// A candidate found empty while the container was frozen: what its tar records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Empty {
    /// Its mountpoint inside the container.
    pub mountpoint: String,
    /// The external-mount key it is dumped under.
    pub key: String,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// The mount id of the file open as `fd` (from /proc/self/fdinfo).
fn mount_id(fd: i32) -> Option<u32> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Looks at mount `mount_id` on `mountpoint` of process `pid` (the container's init, frozen):
/// `Some` when it is that mount's root directory and it holds nothing.
pub fn check(pid: i32, mountpoint: &str, mount_id_wanted: u32) -> Option<Empty> {
    let path = format!("/proc/{pid}/root{mountpoint}");
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(&path)
        .ok()?;
    // A path that led elsewhere (a component replaced by a symlink) is not the mount.
    if mount_id(dir.as_raw_fd())? != mount_id_wanted {
        return None;
    }
    let md = dir.metadata().ok()?;
    if !md.is_dir() {
        return None;
    }
    let mut names = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
    if names.next().is_some() {
        return None;
    }
    Some(Empty {
        mountpoint: mountpoint.to_string(),
        key: format!("{KEY_PREFIX}{mountpoint}"),
        mode: md.mode() & 0o7777,
        uid: u64::from(md.uid()),
        gid: u64::from(md.gid()),
        mtime: u64::try_from(md.mtime()).unwrap_or(0),
    })
}

/// The content CRIU's tar gives an empty directory: the entry `./` alone, gzipped.
fn tar_of(e: &Empty) -> std::io::Result<Vec<u8>> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..2].copy_from_slice(b"./");
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(e.mtime);
    h.set_size(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::io::empty())?;
    Ok(gzip_stored(&b.into_inner()?))
}

/// `data` as a gzip stream of stored (uncompressed) deflate blocks: 1.5 KB of tar needs no
/// compressor, whose set-up cost more than the rest of this module together.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    // Magic, deflate, no flags, no time, no extra flags, unknown OS.
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut blocks = data.chunks(usize::from(u16::MAX)).peekable();
    if data.is_empty() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        // BFINAL on the last block; BTYPE 00 (stored); then LEN and its complement.
        out.push(u8::from(blocks.peek().is_none()));
        let len = b.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.extend(crc.sum().to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// A span of bytes in the image: start and end offsets.
type Span = (usize, usize);

/// The fields of the protobuf message in `data[start..end]`: number, the span of the whole
/// field (key and value) and the span of its value (for a length-delimited field, its bytes).
fn field_spans(data: &[u8], start: usize, end: usize) -> Wire<Vec<(u64, Span, Span)>> {
    let mut out = vec![];
    let mut at = start;
    while at < end {
        let from = at;
        let key = varint(data, &mut at, end)?;
        let mut value_at = at;
        match key & 7 {
            0 => {
                varint(data, &mut at, end)?;
            }
            1 => at += 8,
            2 => {
                let len = varint(data, &mut at, end)? as usize;
                value_at = at;
                at += len;
            }
            5 => at += 4,
            _ => return Err("unknown wire type"),
        }
        if at > end {
            return Err("field runs past its message");
        }
        out.push((key >> 3, (from, at), (value_at, at)));
    }
    Ok(out)
}

/// In the mount entry `data[s..e]`: when its ext_key is one of `keys`, which one, the
/// mount's root_dev, and the span of the ext_key field.
fn keyed(data: &[u8], s: usize, e: usize, keys: &[&str]) -> Wire<Option<(usize, u64, Span)>> {
    let mut found = None;
    let mut dev = None;
    for (n, whole, value) in field_spans(data, s, e)? {
        match n {
            3 => dev = Some(varint(data, &mut value.0.clone(), value.1)?),
            18 => {
                let text = &data[value.0..value.1];
                if let Some(i) = keys.iter().position(|k| k.as_bytes() == text) {
                    found = Some((i, whole));
                }
            }
            _ => {}
        }
    }
    match (found, dev) {
        (Some((i, span)), Some(d)) => Ok(Some((i, d, span))),
        (Some(_), None) => Err("a mount entry without root_dev"),
        _ => Ok(None),
    }
}

/// Writes `data` into the file `name` of `dir`, mode 0644 as CRIU's images; a file of that
/// name (an earlier checkpoint's, in the same directory) is replaced, as CRIU replaces its own.
fn create(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let p = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&p)
        .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
    f.write_all(data)
        .map_err(|e| Error::io(format!("writing {}", p.display()), e))
}

/// After the dump: turns each of `empties`, dumped as an external mount, into CRIU's own
/// record of a tmpfs (see the module's comment) in the images in `images`. Only mount images
/// written since `since` are read (an earlier, failed checkpoint in the same directory may
/// have left one of another mount namespace). Each must be found exactly once. On failure
/// nothing of CRIU's is changed and the files written are removed.
pub fn fill(images: &Path, empties: &[Empty], since: Option<std::time::SystemTime>) -> Result<()> {
    if empties.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = empties.iter().map(|e| e.key.as_str()).collect();
    let mut seen = vec![0usize; keys.len()];
    let mut rewrites: Vec<(std::path::PathBuf, Vec<u8>)> = vec![];
    let mut tars: Vec<(String, Vec<u8>)> = vec![];
    let list = std::fs::read_dir(images)
        .map_err(|e| Error::io(format!("reading {}", images.display()), e))?;
    for ent in list {
        let ent = ent.map_err(|e| Error::io(format!("reading {}", images.display()), e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("mountpoints-") && name.ends_with(".img")) {
            continue;
        }
        let path = ent.path();
        let stale = since.is_some_and(|t| {
            ent.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m < t)
        });
        if stale {
            continue;
        }
        let data = std::fs::read(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let bad = |what: &str| Error::invalid(format!("{}: {what}", path.display()));
        let mut out = data[..8.min(data.len())].to_vec();
        let mut changed = false;
        for (s, e) in entries(&data).map_err(&bad)? {
            let mut entry = data[s..e].to_vec();
            if let Some((i, dev, (ks, ke))) = keyed(&data, s, e, &keys).map_err(&bad)? {
                entry.drain(ks - s..ke - s);
                seen[i] += 1;
                changed = true;
                let tar = tar_of(&empties[i])
                    .map_err(|e| Error::io("making the tar of an empty tmpfs".to_string(), e))?;
                tars.push((format!("tmpfs-dev-{dev}.tar.gz.img"), tar));
            }
            out.extend((entry.len() as u32).to_le_bytes());
            out.extend(entry);
        }
        if changed {
            rewrites.push((path, out));
        }
    }
    if let Some(i) = seen.iter().position(|&n| n != 1) {
        return Err(Error::invalid(format!(
            "the dump's mount images hold the empty tmpfs {} {} times, not once",
            empties[i].mountpoint, seen[i]
        )));
    }
    // The tars and the new mount images are written beside CRIU's under names of their own
    // first; CRIU's mount images are replaced only once all of them are written.
    let mut written: Vec<String> = vec![];
    let result = (|| {
        for (name, tar) in &tars {
            create(images, name, tar)?;
            written.push(name.clone());
        }
        let mut staged = vec![];
        for (path, out) in &rewrites {
            let tmp = format!(
                ".{}.ckpt-{}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            );
            create(images, &tmp, out)?;
            written.push(tmp.clone());
            staged.push((images.join(tmp), path));
        }
        for (tmp, path) in staged {
            std::fs::rename(&tmp, path)
                .map_err(|e| Error::io(format!("replacing {}", path.display()), e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for n in written {
            let _ = std::fs::remove_file(images.join(n));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(field: u64, wire: u64) -> Vec<u8> {
        let mut k = (field << 3) | wire;
        let mut v = vec![];
        while k >= 0x80 {
            v.push((k as u8) | 0x80);
            k >>= 7;
        }
        v.push(k as u8);
        v
    }
    fn ld(field: u64, body: &[u8]) -> Vec<u8> {
        let mut v = key(field, 2);
        v.push(body.len() as u8);
        v.extend_from_slice(body);
        v
    }
    fn num(field: u64, n: u8) -> Vec<u8> {
        let mut v = key(field, 0);
        v.push(n);
        v
    }
    fn image(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut v = 0x5456_4319u32.to_le_bytes().to_vec();
        v.extend(0x5657_3135u32.to_le_bytes());
        for e in entries {
            v.extend((e.len() as u32).to_le_bytes());
            v.extend(e);
        }
        v
    }
    fn empty(mp: &str) -> Empty {
        Empty {
            mountpoint: mp.into(),
            key: format!("{KEY_PREFIX}{mp}"),
            mode: 0o1777,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
        }
    }

    fn keyed_again() -> Vec<u8> {
        [
            num(3, 56),
            ld(18, format!("{KEY_PREFIX}/proc/acpi").as_bytes()),
        ]
        .concat()
    }

    #[test]
    fn the_key_goes_and_the_tar_of_an_empty_directory_comes() {
        let dir = std::env::temp_dir().join(format!("ckpt-emptyfs-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = [num(1, 7), num(2, 60), num(3, 51), ld(7, b"dev")].concat();
        let keyed = [
            num(1, 7),
            num(2, 61),
            num(3, 56),
            ld(7, b"proc/acpi"),
            ld(18, format!("{KEY_PREFIX}/proc/acpi").as_bytes()),
            num(17, 1),
        ]
        .concat();
        let other = [num(3, 9), ld(18, b"/dev/null")].concat();
        let img = dir.join("mountpoints-13.img");
        std::fs::write(&img, image(&[plain.clone(), keyed, other.clone()])).unwrap();
        let t0 = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        fill(&dir, &[empty("/proc/acpi")], Some(t0)).unwrap();
        let want = [
            num(1, 7),
            num(2, 61),
            num(3, 56),
            ld(7, b"proc/acpi"),
            num(17, 1),
        ]
        .concat();
        assert_eq!(std::fs::read(&img).unwrap(), image(&[plain, want, other]));
        let tar = std::fs::File::open(dir.join("tmpfs-dev-56.tar.gz.img")).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tar));
        let names: Vec<(Vec<u8>, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path_bytes().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [(b"./".to_vec(), 0o1777, 1_700_000_000)]);
        // A key the images do not hold, or hold twice, fails and changes nothing.
        let before = std::fs::read(&img).unwrap();
        assert!(fill(&dir, &[empty("/sys/firmware")], None).is_err());
        assert_eq!(std::fs::read(&img).unwrap(), before);
        // A mount image older than the dump is not read: the key is not found.
        std::fs::write(&img, image(&[keyed_again()])).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        assert!(fill(&dir, &[empty("/proc/acpi")], Some(later)).is_err());
        fill(&dir, &[empty("/proc/acpi")], None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stored_gzip_reads_back() {
        use std::io::Read;
        for n in [0usize, 1, 1536, 65535, 65536, 200_000] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut back = vec![];
            flate2::read::GzDecoder::new(&gzip_stored(&data)[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{n} bytes");
        }
    }

    #[test]
    fn candidates_are_whole_private_tmpfs_mounts_with_nothing_below() {
        let m = super::super::mountinfo::parse(
            "1 0 8:1 / / rw - ext4 /dev/vda rw\n\
             2 1 0:51 / /dev rw - tmpfs tmpfs rw\n\
             3 2 0:52 / /dev/shm rw - tmpfs shm rw\n\
             4 1 0:56 / /proc/acpi ro - tmpfs tmpfs ro\n\
             5 1 0:51 /null /proc/keys rw - tmpfs tmpfs rw\n\
             6 1 0:57 / /shared rw shared:3 - tmpfs tmpfs rw\n\
             7 1 0:58 / /bound rw - tmpfs tmpfs rw\n",
        )
        .unwrap();
        let got: Vec<&str> = candidates(&m, &|mp| mp == "/bound")
            .iter()
            .map(|m| m.mount_point.as_str())
            .collect();
        assert_eq!(got, ["/dev/shm", "/proc/acpi"]);
    }
}
