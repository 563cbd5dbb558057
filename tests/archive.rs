//! The checkpoint archive: export, inspect and import round trips on image directories the
//! test builds (CRIU's framing, real pstree/core/stats records), every compression, the rootfs
//! diff from an overlay upper directory and from a lower layer, and hostile archives: each
//! a clear refusal that writes nothing outside the target directory.
//!
//! The interoperability proofs with real CRIU, Podman and checkpointctl are in
//! tests/archive_interop.rs.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ckpt::archive::criu_image::{self, CoreEntry, PstreeEntry, TaskCoreEntry};
use ckpt::archive::{
    self, Compression, EngineConfig, ExportRequest, ImportOptions, Limits, RootfsChanges,
};
use prost::Message;
use serde_json::json;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!(
            "ckpt-archive-{}-{tag}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// An image directory shaped like CRIU's: inventory, a two-process tree with core images,
/// pages, stats-dump, descriptors.json.
fn fake_images(dir: &Path, pages: usize) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("inventory.img"),
        criu_image::encode_image(criu_image::INVENTORY_MAGIC, &[vec![8, 2]]),
    )
    .unwrap();
    let procs = [(1u32, 0u32, "sh"), (7, 1, "sleep")];
    let recs: Vec<Vec<u8>> = procs
        .iter()
        .map(|(pid, ppid, _)| {
            PstreeEntry {
                pid: Some(*pid),
                ppid: Some(*ppid),
                pgid: Some(1),
                sid: Some(1),
                threads: vec![*pid],
            }
            .encode_to_vec()
        })
        .collect();
    fs::write(
        dir.join("pstree.img"),
        criu_image::encode_image(criu_image::PSTREE_MAGIC, &recs),
    )
    .unwrap();
    for (pid, _, comm) in procs {
        let c = CoreEntry {
            tc: Some(TaskCoreEntry {
                comm: Some(comm.into()),
            }),
        };
        fs::write(
            dir.join(format!("core-{pid}.img")),
            criu_image::encode_image(criu_image::CORE_MAGIC, &[c.encode_to_vec()]),
        )
        .unwrap();
    }
    let data: Vec<u8> = (0..pages * 4096).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(dir.join("pages-1.img"), data).unwrap();
    fs::write(
        dir.join("descriptors.json"),
        b"[\"/dev/null\",\"pipe:[1]\",\"pipe:[2]\"]",
    )
    .unwrap();
    fs::write(dir.join("dump.log"), b"log lines").unwrap();
    fs::write(
        dir.join("stats-dump"),
        criu_image::encode_stats_dump(&Default::default()),
    )
    .unwrap();
}

fn spec() -> serde_json::Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "cwd": "/"},
        "root": {"path": "/old/rootfs"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/run/netns/x"}]},
        "mounts": [{"destination": "/etc/hosts", "source": "/var/lib/c/OLDID/hosts", "type": "bind"}]
    })
}

/// A bundle in `s` with an empty rootfs and `spec` as its config.json.
fn bundle_with(s: &Scratch, spec: &serde_json::Value) -> PathBuf {
    let bundle = s.path().join("bundle");
    fs::create_dir_all(bundle.join("rootfs")).unwrap();
    fs::write(bundle.join("config.json"), spec.to_string()).unwrap();
    bundle
}

fn request(images: &Path, c: Compression) -> ExportRequest {
    ExportRequest {
        images_dir: images.to_path_buf(),
        spec: spec(),
        config: EngineConfig {
            name: Some("ckpt-archive-web".into()),
            id: Some("OLDID".into()),
            image_name: Some("localhost/busybox:latest".into()),
            ..Default::default()
        },
        compression: c,
        ..Default::default()
    }
}

#[test]
fn export_inspect_import_round_trip_every_compression() {
    let s = Scratch::new("rt");
    let images = s.path().join("images");
    fake_images(&images, 64);
    for (c, magic) in [
        (Compression::default(), &[0x28u8, 0xb5, 0x2f, 0xfd][..]),
        (Compression::Gzip { level: 1 }, &[0x1f, 0x8b][..]),
        (Compression::None, &b""[..]),
    ] {
        let out = s.path().join(format!("c-{}.tar.gz", c.name()));
        let (m, w) = archive::export(&request(&images, c), &out).unwrap();
        assert!(out.read_link().is_err());
        let bytes = fs::read(&out).unwrap();
        assert!(bytes.starts_with(magic), "{c:?}");
        assert_eq!(fs::metadata(&out).unwrap().mode() & 0o777, 0o600);
        assert_eq!(w.archive_bytes, bytes.len() as u64);
        assert!(m.notes.is_empty(), "{:?}", m.notes);
        // No partial file is left beside it.
        let leftovers: Vec<_> = fs::read_dir(s.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty());

        let i = archive::inspect(&out, &Limits::default()).unwrap();
        assert_eq!(i.name.as_deref(), Some("ckpt-archive-web"));
        assert_eq!(i.engine, "Podman");
        assert_eq!(i.compression, c.name());
        assert!(i.written_by.as_ref().unwrap().starts_with("ckpt "));
        let t = i.process_tree.as_ref().unwrap();
        assert_eq!((t.pid, t.comm.as_deref()), (1, Some("sh")));
        assert_eq!(t.children[0].comm.as_deref(), Some("sleep"));
        assert_eq!(i.sizes.pages, 64 * 4096);
        assert!(i.statistics.is_some());
        assert!(
            !i.files.iter().any(|f| f.ends_with("dump.log")),
            "logs stay out"
        );
        assert!(i.files.contains(&"stats-dump".to_string()));
        let text = i.to_text();
        assert!(text.contains("[7] sleep"), "{text}");

        let target = s.path().join(format!("imp-{}", c.name()));
        let imp = archive::import(
            &out,
            &target,
            &ImportOptions {
                name: Some("ckpt-archive-new".into()),
                rootfs: Some(s.path().join("newroot")),
                ..Default::default()
            },
        )
        .unwrap();
        for f in [
            "inventory.img",
            "pstree.img",
            "core-1.img",
            "pages-1.img",
            "descriptors.json",
        ] {
            assert_eq!(
                fs::read(imp.images_dir.join(f)).unwrap(),
                fs::read(images.join(f)).unwrap(),
                "{f}"
            );
        }
        assert_eq!(imp.old_name.as_deref(), Some("ckpt-archive-web"));
        assert_eq!(imp.config.name.as_deref(), Some("ckpt-archive-new"));
        let new_id = imp.config.id.clone().unwrap();
        assert_eq!(new_id.len(), 64);
        let written: serde_json::Value =
            serde_json::from_slice(&fs::read(&imp.spec_path).unwrap()).unwrap();
        assert_eq!(
            written["root"]["path"],
            s.path().join("newroot").to_str().unwrap()
        );
        assert!(written["linux"]["namespaces"][1].get("path").is_none());
        assert_eq!(
            written["mounts"][0]["source"],
            format!("/var/lib/c/{new_id}/hosts")
        );
        assert_eq!(written["annotations"]["io.container.manager"], "libpod");
    }
}

#[test]
fn export_refuses_incomplete_inputs() {
    let s = Scratch::new("bad-in");
    let images = s.path().join("images");
    fs::create_dir_all(&images).unwrap();
    let out = s.path().join("a.tar");
    let e = archive::export(&request(&images, Compression::None), &out).unwrap_err();
    assert!(e.message.contains("inventory.img"), "{e}");
    fake_images(&images, 1);
    let mut r = request(&images, Compression::None);
    r.spec = json!({"root": {}});
    let e = archive::export(&r, &out).unwrap_err();
    assert!(e.message.contains("\"process\""), "{e}");
    fs::create_dir(images.join("sub")).unwrap();
    let e = archive::export(&request(&images, Compression::None), &out).unwrap_err();
    assert!(e.message.contains("flat"), "{e}");
    assert!(!out.exists());
}

#[test]
fn stats_synthesized_when_the_image_directory_has_none() {
    let s = Scratch::new("stats");
    let images = s.path().join("images");
    fake_images(&images, 1);
    fs::remove_file(images.join("stats-dump")).unwrap();
    let mut r = request(&images, Compression::None);
    r.stats = Some(ckpt::Stats {
        values: vec![
            (ckpt::StatKey::FrozenTimeUs, 1234),
            (ckpt::StatKey::PagesWritten, 9),
        ],
        ..Default::default()
    });
    let out = s.path().join("a.tar");
    archive::export(&r, &out).unwrap();
    let i = archive::inspect(&out, &Limits::default()).unwrap();
    let st = i.statistics.unwrap();
    assert_eq!(st["frozen_time"], 1234);
    assert_eq!(st["pages_written"], 9);
    assert_eq!(st["pages_lazy"], 0);
}

#[test]
fn rootfs_diff_from_overlay_upper_and_from_lower_layer() {
    let s = Scratch::new("rootfs");
    let images = s.path().join("images");
    fake_images(&images, 1);
    let lower = s.path().join("lower");
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(lower.join("etc/keep"), b"k").unwrap();
    fs::write(lower.join("etc/gone"), b"g").unwrap();
    fs::create_dir_all(lower.join("opaque")).unwrap();
    fs::write(lower.join("opaque/hidden"), b"h").unwrap();
    // An upper directory as overlayfs leaves it: a new file, a changed file, a whiteout
    // (character device 0/0), an opaque directory.
    let upper = s.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/new"), b"new").unwrap();
    fs::write(upper.join("etc/keep"), b"changed").unwrap();
    fs::set_permissions(upper.join("etc/new"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("/etc/new", upper.join("etc/link")).unwrap();
    nix::sys::stat::mknod(
        &upper.join("etc/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .unwrap();
    fs::create_dir_all(upper.join("opaque")).unwrap();
    fs::write(upper.join("opaque/fresh"), b"f").unwrap();
    let c = std::ffi::CString::new(upper.join("opaque").to_str().unwrap()).unwrap();
    // SAFETY: valid C strings and buffer.
    let rc = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "setting the opaque xattr (needs root)");

    let mut r = request(&images, Compression::default());
    r.rootfs = Some(RootfsChanges::OverlayUpper {
        upper: upper.clone(),
        lower: Some(lower.clone()),
    });
    let out = s.path().join("a.tar.zst");
    let (m, _) = archive::export(&r, &out).unwrap();
    let d = m.rootfs_diff.as_ref().unwrap();
    assert_eq!(
        d.deleted,
        vec![PathBuf::from("etc/gone"), PathBuf::from("opaque/hidden")]
    );

    // Restore onto a copy of the lower layer: the result must equal lower + upper.
    let newroot = s.path().join("newroot");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&lower)
            .arg(&newroot)
            .status()
            .unwrap()
            .success()
    );
    let imp = archive::import(
        &out,
        &s.path().join("imp"),
        &ImportOptions {
            rootfs: Some(newroot.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(imp.deleted_applied, 2);
    assert_eq!(fs::read(newroot.join("etc/new")).unwrap(), b"new");
    assert_eq!(
        fs::metadata(newroot.join("etc/new")).unwrap().mode() & 0o7777,
        0o4755
    );
    assert_eq!(fs::read(newroot.join("etc/keep")).unwrap(), b"changed");
    assert_eq!(
        fs::read_link(newroot.join("etc/link")).unwrap(),
        Path::new("/etc/new")
    );
    assert!(!newroot.join("etc/gone").exists());
    assert!(!newroot.join("opaque/hidden").exists());
    assert_eq!(fs::read(newroot.join("opaque/fresh")).unwrap(), b"f");

    // The same changes found by comparing the container's rootfs with its lower layer.
    let mut r2 = request(&images, Compression::None);
    r2.rootfs = Some(RootfsChanges::CompareWithLower {
        rootfs: newroot.clone(),
        lower: lower.clone(),
    });
    let (m2, _) = archive::export(&r2, &s.path().join("b.tar")).unwrap();
    let d2 = m2.rootfs_diff.unwrap();
    assert_eq!(
        d2.deleted,
        vec![PathBuf::from("etc/gone"), PathBuf::from("opaque/hidden")]
    );
    for p in ["etc/new", "etc/keep", "etc/link", "opaque/fresh"] {
        assert!(
            d2.changed.contains(&PathBuf::from(p)),
            "{p} in {:?}",
            d2.changed
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile archives, built header by header.

fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let g = h.as_gnu_mut().unwrap();
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o600);
    h.set_cksum();
    h
}

struct Raw(Vec<u8>);

impl Raw {
    fn new() -> Raw {
        Raw(Vec::new())
    }
    fn entry(mut self, name: &str, kind: tar::EntryType, data: &[u8], link: &str) -> Raw {
        let h = raw_header(name.as_bytes(), kind, data.len() as u64, link.as_bytes());
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    fn file(self, name: &str, data: &[u8]) -> Raw {
        self.entry(name, tar::EntryType::Regular, data, "")
    }
    fn valid_base(self) -> Raw {
        self.file("config.dump", br#"{"name":"x","id":"y"}"#)
            .file("spec.dump", br#"{"root":{"path":"/r"},"process":{}}"#)
            .entry("checkpoint/", tar::EntryType::Directory, b"", "")
            .file("checkpoint/inventory.img", b"inv")
    }
    fn end(mut self) -> Vec<u8> {
        self.0.extend(std::iter::repeat_n(0u8, 1024));
        self.0
    }
}

/// Imports `bytes` into a fresh target inside a fresh sandbox; asserts the refusal mentions
/// `want`, that the target is gone and that nothing else appeared in the sandbox.
fn refused(s: &Scratch, tag: &str, bytes: &[u8], want: &str) {
    refused_with(s, tag, bytes, want, &Limits::default());
}

fn refused_with(s: &Scratch, tag: &str, bytes: &[u8], want: &str, limits: &Limits) {
    let sandbox = s.path().join(tag);
    fs::create_dir_all(&sandbox).unwrap();
    let a = sandbox.join("a.tar");
    fs::write(&a, bytes).unwrap();
    let target = sandbox.join("deep/target");
    fs::create_dir_all(sandbox.join("deep")).unwrap();
    let e = archive::import(
        &a,
        &target,
        &ImportOptions {
            limits: *limits,
            ..Default::default()
        },
    )
    .expect_err(tag);
    assert!(
        e.message.contains(want),
        "{tag}: wanted {want:?} in {:?}",
        e.message
    );
    assert!(!target.exists(), "{tag}: target left behind");
    let mut left: Vec<_> = fs::read_dir(&sandbox)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.tar", "deep"], "{tag}: wrote outside the target");
    assert_eq!(
        fs::read_dir(sandbox.join("deep")).unwrap().count(),
        0,
        "{tag}"
    );
    // Inspection refuses the same archive.
    assert!(
        archive::inspect(&a, limits).is_err(),
        "{tag}: inspect accepted it"
    );
}

#[test]
fn a_valid_raw_archive_imports() {
    let s = Scratch::new("rawok");
    let a = s.path().join("a.tar");
    fs::write(
        &a,
        Raw::new()
            .valid_base()
            .entry(
                "checkpoint/parent",
                tar::EntryType::Symlink,
                b"",
                "../pre-checkpoint",
            )
            .file("./ctr.log", b"log")
            .end(),
    )
    .unwrap();
    let imp = archive::import(&a, &s.path().join("t"), &ImportOptions::default()).unwrap();
    assert_eq!(imp.old_name.as_deref(), Some("x"));
    assert_eq!(imp.config.id.as_deref(), Some("y"), "id kept with the name");
    assert!(s.path().join("t/ctr.log").is_file());
}

#[test]
fn hostile_path_traversal_and_absolute_names() {
    let s = Scratch::new("trav");
    refused(
        &s,
        "dotdot",
        &Raw::new().valid_base().file("../evil", b"x").end(),
        "'..'",
    );
    refused(
        &s,
        "deepdotdot",
        &Raw::new()
            .valid_base()
            .file("checkpoint/../../evil", b"x")
            .end(),
        "'..'",
    );
    refused(
        &s,
        "abs",
        &Raw::new().valid_base().file("/tmp/evil", b"x").end(),
        "absolute",
    );
}

#[test]
fn hostile_links() {
    let s = Scratch::new("links");
    refused(
        &s,
        "symlink-out",
        &Raw::new()
            .valid_base()
            .entry("checkpoint/x", tar::EntryType::Symlink, b"", "../../..")
            .end(),
        "outside the archive",
    );
    refused(
        &s,
        "symlink-abs",
        &Raw::new()
            .valid_base()
            .entry("checkpoint/x", tar::EntryType::Symlink, b"", "/etc")
            .end(),
        "outside the archive",
    );
    // A link that stays inside, then a file written through it: refused, never followed.
    refused(
        &s,
        "through-link",
        &Raw::new()
            .valid_base()
            .entry("artifacts", tar::EntryType::Symlink, b"", "checkpoint")
            .file("artifacts/x", b"x")
            .end(),
        "symbolic link",
    );
    refused(
        &s,
        "hardlink-out",
        &Raw::new()
            .valid_base()
            .entry(
                "checkpoint/h",
                tar::EntryType::Link,
                b"",
                "../../etc/passwd",
            )
            .end(),
        "hard link out",
    );
    refused(
        &s,
        "hardlink-abs",
        &Raw::new()
            .valid_base()
            .entry("checkpoint/h", tar::EntryType::Link, b"", "/etc/passwd")
            .end(),
        "hard link out",
    );
    refused(
        &s,
        "hardlink-missing",
        &Raw::new()
            .valid_base()
            .entry(
                "checkpoint/h",
                tar::EntryType::Link,
                b"",
                "checkpoint/nothing",
            )
            .end(),
        "not an earlier file",
    );
}

#[test]
fn hostile_device_nodes_and_fifos() {
    let s = Scratch::new("dev");
    refused(
        &s,
        "chr",
        &Raw::new()
            .valid_base()
            .entry("checkpoint/null", tar::EntryType::Char, b"", "")
            .end(),
        "character device",
    );
    refused(
        &s,
        "blk",
        &Raw::new()
            .valid_base()
            .entry("checkpoint/sda", tar::EntryType::Block, b"", "")
            .end(),
        "block device",
    );
    refused(
        &s,
        "fifo",
        &Raw::new()
            .valid_base()
            .entry("checkpoint/p", tar::EntryType::Fifo, b"", "")
            .end(),
        "fifo",
    );
}

#[test]
fn hostile_archive_bombs_are_bounded() {
    let s = Scratch::new("bomb");
    // 64 MiB of zeros compress to a few kilobytes; the byte limit stops it before writing.
    let mut tar = tar::Builder::new(Vec::new());
    for (n, d) in [
        ("config.dump", &br#"{"name":"x"}"#[..]),
        ("spec.dump", br#"{"root":{},"process":{}}"#),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o600);
        tar.append_data(&mut h, n, d).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_size(64 << 20);
    h.set_mode(0o600);
    tar.append_data(
        &mut h,
        "checkpoint/pages-1.img",
        std::io::repeat(0).take_bytes(64 << 20),
    )
    .unwrap();
    let raw = tar.into_inner().unwrap();
    let z = zstd::encode_all(raw.as_slice(), 3).unwrap();
    assert!(z.len() < 1 << 20);
    let limits = Limits {
        max_bytes: 16 << 20,
        ..Default::default()
    };
    refused_with(&s, "bytes", &z, "limit", &limits);

    let mut many = Raw::new().valid_base();
    for i in 0..50 {
        many = many.file(&format!("checkpoint/f{i}"), b"");
    }
    let limits = Limits {
        max_entries: 20,
        ..Default::default()
    };
    refused_with(&s, "entries", &many.end(), "more than 20 entries", &limits);

    let big_doc = Raw::new()
        .file("config.dump", &vec![b' '; 4096])
        .file("spec.dump", b"{}")
        .entry("checkpoint/", tar::EntryType::Directory, b"", "")
        .file("checkpoint/inventory.img", b"i")
        .end();
    let limits = Limits {
        max_document_bytes: 1024,
        ..Default::default()
    };
    refused_with(&s, "doc", &big_doc, "limit for documents", &limits);
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, n: u64) -> std::io::Take<Self> {
        std::io::Read::take(self, n)
    }
}
impl<R: std::io::Read> TakeBytes for R {}

#[test]
fn hostile_wrong_layouts() {
    let s = Scratch::new("layout");
    refused(
        &s,
        "no-inventory",
        &Raw::new()
            .file("config.dump", b"{}")
            .file("spec.dump", b"{}")
            .entry("checkpoint/", tar::EntryType::Directory, b"", "")
            .end(),
        "checkpoint/inventory.img",
    );
    refused(
        &s,
        "no-config",
        &Raw::new()
            .file("spec.dump", b"{}")
            .file("checkpoint/inventory.img", b"i")
            .end(),
        "config.dump",
    );
    refused(
        &s,
        "images-at-top",
        &Raw::new().valid_base().file("pstree.img", b"p").end(),
        "images belong under checkpoint/",
    );
    refused(
        &s,
        "checkpoint-file",
        &Raw::new().file("checkpoint", b"x").end(),
        "not a directory",
    );
    refused(
        &s,
        "nested",
        &Raw::new()
            .valid_base()
            .file("checkpoint/sub/x.img", b"x")
            .end(),
        "flat",
    );
    refused(
        &s,
        "unknown-dir",
        &Raw::new()
            .valid_base()
            .entry("weird/", tar::EntryType::Directory, b"", "")
            .end(),
        "unknown top-level directory",
    );
    refused(
        &s,
        "dup",
        &Raw::new()
            .valid_base()
            .file("checkpoint/inventory.img", b"again")
            .end(),
        "twice",
    );
    refused(
        &s,
        "bad-json",
        &Raw::new()
            .file("config.dump", b"{nope")
            .file("spec.dump", b"{}")
            .file("checkpoint/inventory.img", b"i")
            .end(),
        "config.dump is not valid JSON",
    );
    refused(
        &s,
        "not-an-archive",
        b"hello world, not a tar at all",
        "not a checkpoint archive",
    );
    refused(&s, "empty", b"", "empty");
    refused(&s, "bzip2", b"BZh91AY&SY", "bzip2");
}

/// Cuts a real exported archive at offsets in every section (metadata, images, rootfs diff,
/// end block) for each compression; each cut is refused with the section named, and nothing
/// stays behind.
#[test]
fn hostile_truncation_at_every_section() {
    let s = Scratch::new("trunc");
    let images = s.path().join("images");
    fake_images(&images, 16);
    let upper = s.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/new"), vec![b'n'; 3000]).unwrap();
    for c in [
        Compression::None,
        Compression::default(),
        Compression::Gzip { level: 1 },
    ] {
        let mut r = request(&images, c);
        r.rootfs = Some(RootfsChanges::OverlayUpper {
            upper: upper.clone(),
            lower: None,
        });
        let out = s.path().join(format!("full-{}", c.name()));
        archive::export(&r, &out).unwrap();
        let full = fs::read(&out).unwrap();
        let plain = match c {
            Compression::None => full.clone(),
            _ => {
                let mut v = Vec::new();
                let mut d: Box<dyn std::io::Read> = match c {
                    Compression::Gzip { .. } => {
                        Box::new(flate2::read::GzDecoder::new(full.as_slice()))
                    }
                    _ => Box::new(zstd::Decoder::new(full.as_slice()).unwrap()),
                };
                d.read_to_end(&mut v).unwrap();
                v
            }
        };
        // Offsets in the uncompressed tar of: inside config.dump, inside pages-1.img, inside
        // rootfs-diff.tar, in the end block.
        let find = |needle: &[u8]| {
            plain
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        let cuts_plain = [
            512 + 10,
            find(b"checkpoint/pages-1.img") + 512 + 1000,
            find(b"rootfs-diff.tar") + 512 + 700,
            plain.len() - 1024 + 100,
            plain.len() - 1024,
        ];
        let cuts: Vec<(usize, &str)> = match c {
            Compression::None => vec![
                (cuts_plain[0], "metadata"),
                (cuts_plain[1], "CRIU images"),
                (cuts_plain[2], "rootfs diff"),
                (cuts_plain[4], "end-of-archive"),
                (find(b"checkpoint/pages-1.img"), "truncated"),
            ],
            // A compressed archive cut anywhere: the decoder or the tar reader says where.
            _ => vec![
                (full.len() / 4, "truncated"),
                (full.len() / 2, "truncated"),
                (full.len() - 4, "truncated"),
            ],
        };
        for (i, (at, want)) in cuts.iter().enumerate() {
            let tag = format!("{}-{i}", c.name());
            let e = {
                let sandbox = s.path().join(&tag);
                fs::create_dir_all(&sandbox).unwrap();
                let a = sandbox.join("a");
                fs::write(&a, &full[..*at]).unwrap();
                let t = sandbox.join("t");
                let e = archive::import(&a, &t, &ImportOptions::default()).expect_err(&tag);
                assert!(!t.exists(), "{tag}");
                e
            };
            assert!(
                e.message.contains(want)
                    || (c != Compression::None && e.message.contains("corrupt")),
                "{tag} cut at {at}: wanted {want:?} in {:?}",
                e.message
            );
        }
        // Corruption in the middle of a compressed stream is caught (zstd by its checksum,
        // gzip by its CRC).
        if c != Compression::None {
            let mut bad = full.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 0x55;
            let a = s.path().join(format!("bad-{}", c.name()));
            fs::write(&a, &bad).unwrap();
            assert!(
                archive::import(
                    &a,
                    &s.path().join(format!("badt-{}", c.name())),
                    &ImportOptions::default()
                )
                .is_err()
            );
        }
    }
}

#[test]
fn import_target_must_be_new_or_empty_and_is_kept_on_failure_empty() {
    let s = Scratch::new("target");
    let images = s.path().join("images");
    fake_images(&images, 1);
    let out = s.path().join("a.tar");
    archive::export(&request(&images, Compression::None), &out).unwrap();
    let t = s.path().join("t");
    fs::create_dir(&t).unwrap();
    fs::write(t.join("x"), b"x").unwrap();
    let e = archive::import(&out, &t, &ImportOptions::default()).unwrap_err();
    assert!(e.message.contains("not empty"));
    assert_eq!(fs::read(t.join("x")).unwrap(), b"x");
    fs::remove_file(t.join("x")).unwrap();
    archive::import(&out, &t, &ImportOptions::default()).unwrap();
    let _ = std::io::stdout().flush();
}

/// rootfs-diff.tar is checked as carefully as the archive: '..' and device nodes refused,
/// symbolic links inside the new rootfs resolved as a chroot would (an absolute link to /etc
/// leads to ROOTFS/etc, never the host's /etc).
#[test]
fn hostile_rootfs_diff() {
    let s = Scratch::new("rdiff");
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        (
            "dotdot",
            Raw::new().file("../../escape", b"x").end(),
            Some("'..'"),
        ),
        (
            "dev",
            Raw::new()
                .entry("dev/null", tar::EntryType::Char, b"", "")
                .end(),
            Some("character device"),
        ),
        (
            "link-abs",
            Raw::new()
                .entry(
                    "lib",
                    tar::EntryType::Symlink,
                    b"",
                    "/ckpt-archive-host-dir",
                )
                .file("lib/x", b"inside")
                .end(),
            None,
        ),
        (
            "link-up",
            Raw::new()
                .entry("up", tar::EntryType::Symlink, b"", "../../../..")
                .file("up/y", b"inside")
                .end(),
            None,
        ),
    ];
    for (tag, diff, want) in cases {
        let images = s.path().join(format!("{tag}-images"));
        fake_images(&images, 1);
        let out = s.path().join(format!("{tag}.tar"));
        archive::export(&request(&images, Compression::None), &out).unwrap();
        // Append rootfs-diff.tar to the exported archive by rebuilding it.
        let mut b = tar::Builder::new(Vec::new());
        let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let p = e.path().unwrap().into_owned();
            b.append_data(&mut h, p, &mut e).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(diff.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, "rootfs-diff.tar", diff.as_slice())
            .unwrap();
        fs::write(&out, b.into_inner().unwrap()).unwrap();
        let root = s.path().join(format!("{tag}-root"));
        fs::create_dir_all(&root).unwrap();
        let r = archive::import(
            &out,
            &s.path().join(format!("{tag}-t")),
            &ImportOptions {
                rootfs: Some(root.clone()),
                ..Default::default()
            },
        );
        match want {
            Some(w) => {
                let e = r.expect_err(tag);
                assert!(e.message.contains(w), "{tag}: {e}");
            }
            None => {
                r.unwrap();
            }
        }
    }
    assert!(!Path::new("/ckpt-archive-host-dir").exists());
    assert_eq!(
        fs::read(s.path().join("link-abs-root/ckpt-archive-host-dir/x")).unwrap(),
        b"inside"
    );
    assert_eq!(
        fs::read(s.path().join("link-up-root/y")).unwrap(),
        b"inside"
    );
    assert!(!s.path().join("escape").exists() && !Path::new("/escape").exists());
}

/// The C API: NULLs and bad values refused with a status and a message, never a crash; a
/// round trip through export, inspect and import; strings freed with their function.
#[test]
fn c_api_archive_round_trip_and_bad_input() {
    use ckpt_ffi::archive::*;
    use ckpt_ffi::error::{ckpt_error, ckpt_error_free, ckpt_error_message};
    use std::ffi::{CStr, CString};
    use std::ptr;

    let s = Scratch::new("capi");
    let images = s.path().join("images");
    fake_images(&images, 2);
    let spec_path = s.path().join("config.json");
    fs::write(&spec_path, serde_json::to_vec(&spec()).unwrap()).unwrap();
    let c = |x: &str| CString::new(x).unwrap();
    let path_c = |p: &Path| CString::new(p.to_str().unwrap()).unwrap();
    unsafe {
        // NULL handles and strings.
        ckpt_archive_opts_free(ptr::null_mut());
        ckpt_archive_string_free(ptr::null_mut());
        assert_eq!(
            ckpt_archive_opts_set_name(ptr::null_mut(), c("x").as_ptr()),
            1
        );
        assert!(ckpt_archive_opts_last_error(ptr::null()).is_null());
        let o = ckpt_archive_opts_new();
        assert_eq!(ckpt_archive_opts_set_name(o, ptr::null()), 1);
        assert_eq!(ckpt_archive_opts_set_name(o, c("").as_ptr()), 3);
        assert!(!ckpt_archive_opts_last_error(o).is_null());
        assert_eq!(ckpt_archive_opts_set_compression(o, c("lz4").as_ptr()), 3);
        assert_eq!(
            ckpt_archive_opts_set_spec_path(o, c("relative").as_ptr()),
            3
        );
        assert_eq!(
            ckpt_archive_opts_set_namespace(o, c("bogus").as_ptr(), ptr::null()),
            3
        );
        assert_eq!(ckpt_archive_opts_set_config_json(o, c("[1]").as_ptr()), 3);
        let bad_utf8 = [0xffu8, 0xfe, 0];
        assert_eq!(ckpt_archive_opts_set_name(o, bad_utf8.as_ptr().cast()), 2);
        let mut err: *mut ckpt_error = ptr::null_mut();
        // Export without a spec: refused with an error object.
        let out = s.path().join("c.tar.zst");
        assert_eq!(
            ckpt_archive_export(o, path_c(&images).as_ptr(), path_c(&out).as_ptr(), &mut err),
            3
        );
        assert!(
            CStr::from_ptr(ckpt_error_message(err))
                .to_str()
                .unwrap()
                .contains("spec")
        );
        ckpt_error_free(err);
        assert_eq!(
            ckpt_archive_export(
                ptr::null(),
                path_c(&images).as_ptr(),
                path_c(&out).as_ptr(),
                &mut err
            ),
            1
        );
        ckpt_error_free(err);

        assert_eq!(
            ckpt_archive_opts_set_name(o, c("ckpt-archive-capi").as_ptr()),
            0
        );
        assert!(ckpt_archive_opts_last_error(o).is_null());
        assert_eq!(
            ckpt_archive_opts_set_spec_path(o, path_c(&spec_path).as_ptr()),
            0
        );
        assert_eq!(
            ckpt_archive_opts_set_compression(o, c("gzip:3").as_ptr()),
            0
        );
        assert_eq!(
            ckpt_archive_opts_set_config_json(o, c(r#"{"createNetNS": true}"#).as_ptr()),
            0
        );
        assert_eq!(
            ckpt_archive_export(o, path_c(&images).as_ptr(), path_c(&out).as_ptr(), &mut err),
            0
        );
        assert!(err.is_null());

        let mut json: *mut std::ffi::c_char = ptr::null_mut();
        assert_eq!(
            ckpt_archive_inspect(ptr::null(), path_c(&out).as_ptr(), &mut json, &mut err),
            0
        );
        let v: serde_json::Value =
            serde_json::from_str(CStr::from_ptr(json).to_str().unwrap()).unwrap();
        ckpt_archive_string_free(json);
        assert_eq!(v["name"], "ckpt-archive-capi");
        assert_eq!(v["compression"], "gzip");
        assert_eq!(v["process_tree"]["comm"], "sh");

        let io = ckpt_archive_opts_new();
        assert_eq!(
            ckpt_archive_opts_set_name(io, c("ckpt-archive-capi-2").as_ptr()),
            0
        );
        assert_eq!(
            ckpt_archive_opts_set_namespace(
                io,
                c("network").as_ptr(),
                c("/proc/1/ns/net").as_ptr()
            ),
            0
        );
        let target = s.path().join("imp");
        assert_eq!(
            ckpt_archive_import(
                io,
                path_c(&out).as_ptr(),
                path_c(&target).as_ptr(),
                &mut json,
                &mut err
            ),
            0
        );
        let r: serde_json::Value =
            serde_json::from_str(CStr::from_ptr(json).to_str().unwrap()).unwrap();
        ckpt_archive_string_free(json);
        assert_eq!(r["name"], "ckpt-archive-capi-2");
        assert_eq!(r["old_name"], "ckpt-archive-capi");
        assert!(r["spec_changes"].to_string().contains("/proc/1/ns/net"));
        // A second import into the now non-empty directory fails; the result pointer is NULL.
        assert_eq!(
            ckpt_archive_import(
                io,
                path_c(&out).as_ptr(),
                path_c(&target).as_ptr(),
                &mut json,
                &mut err
            ),
            3
        );
        assert!(json.is_null());
        ckpt_error_free(err);

        // ckpt_archive_restore: every bad argument refused before anything is written.
        let copts = ckpt_ffi::opts::ckpt_opts_new();
        let bundle = s.path().join("restore-bundle");
        let mut pid = -1i32;
        let mut st: *mut ckpt_ffi::stats::ckpt_stats = ptr::null_mut();
        let mut restore = |ao: *const ckpt_archive_opts,
                           opts: *mut ckpt_ffi::opts::ckpt_opts,
                           archive: *const std::ffi::c_char,
                           bundle: *const std::ffi::c_char|
         -> (u32, String) {
            let mut e: *mut ckpt_error = ptr::null_mut();
            let mut j: *mut std::ffi::c_char = ptr::null_mut();
            let r = ckpt_archive_restore(
                ao,
                ptr::null_mut(),
                opts,
                archive,
                bundle,
                &mut pid,
                &mut st,
                &mut j,
                &mut e,
            );
            assert!(j.is_null() && st.is_null() && pid == 0);
            let m = if e.is_null() {
                String::new()
            } else {
                let m = CStr::from_ptr(ckpt_error_message(e))
                    .to_string_lossy()
                    .into_owned();
                ckpt_error_free(e);
                m
            };
            (r, m)
        };
        let (a, b) = (path_c(&out), path_c(&bundle));
        assert_eq!(restore(ptr::null(), copts, a.as_ptr(), b.as_ptr()).0, 1);
        assert_eq!(restore(io, ptr::null_mut(), a.as_ptr(), b.as_ptr()).0, 1);
        assert_eq!(restore(io, copts, ptr::null(), b.as_ptr()).0, 1);
        assert_eq!(restore(io, copts, a.as_ptr(), ptr::null()).0, 1);
        // A restore that could not hand over the restored init's pid is never started.
        let mut e: *mut ckpt_error = ptr::null_mut();
        assert_eq!(
            ckpt_archive_restore(
                io,
                ptr::null_mut(),
                copts,
                a.as_ptr(),
                b.as_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut e
            ),
            1
        );
        assert!(
            CStr::from_ptr(ckpt_error_message(e))
                .to_string_lossy()
                .contains("pid output pointer is NULL")
        );
        ckpt_error_free(e);
        assert!(!bundle.exists());
        let (r, m) = restore(io, copts, a.as_ptr(), b.as_ptr());
        assert_eq!(r, 3, "{m}");
        assert!(m.contains("no root file system"), "{m}");
        assert_ne!(ckpt_archive_opts_set_rootfs_image(io, ptr::null()), 0);
        assert_ne!(
            ckpt_archive_opts_set_rootfs_image(io, c("rel/dir").as_ptr()),
            0
        );
        assert!(!ckpt_archive_opts_last_error(io).is_null());
        let missing = s.path().join("no-such-image-rootfs");
        assert_eq!(
            ckpt_archive_opts_set_rootfs_image(io, path_c(&missing).as_ptr()),
            0
        );
        let (r, m) = restore(io, copts, a.as_ptr(), c("rel-bundle").as_ptr());
        assert_eq!(r, 3, "{m}");
        assert!(m.contains("not an absolute path"), "{m}");
        let (r, m) = restore(io, copts, a.as_ptr(), b.as_ptr());
        assert_ne!(r, 0);
        assert!(m.contains("no-such-image-rootfs"), "{m}");
        assert!(
            !bundle.exists(),
            "a refused restore wrote {}",
            bundle.display()
        );
        ckpt_ffi::opts::ckpt_opts_free(copts);

        // ckpt_archive_export_container: NULL handles, a container without a bundle.
        let cexp = s.path().join("cexp.tar.zst");
        let mut e: *mut ckpt_error = ptr::null_mut();
        let ch = ckpt_ffi::container::ckpt_container_new();
        assert_eq!(
            ckpt_archive_export_container(
                o,
                ptr::null(),
                path_c(&images).as_ptr(),
                path_c(&cexp).as_ptr(),
                &mut e
            ),
            1
        );
        ckpt_error_free(e);
        assert_eq!(
            ckpt_archive_export_container(
                ptr::null(),
                ch,
                path_c(&images).as_ptr(),
                path_c(&cexp).as_ptr(),
                &mut e
            ),
            1
        );
        ckpt_error_free(e);
        assert_eq!(
            ckpt_archive_export_container(
                o,
                ch,
                path_c(&images).as_ptr(),
                path_c(&cexp).as_ptr(),
                &mut e
            ),
            3
        );
        assert!(
            CStr::from_ptr(ckpt_error_message(e))
                .to_string_lossy()
                .contains("no bundle")
        );
        ckpt_error_free(e);
        assert!(!cexp.exists());
        ckpt_ffi::container::ckpt_container_free(ch);
        ckpt_archive_opts_free(io);
        ckpt_archive_opts_free(o);
    }
}

/// The events on the directory `inotify` watches, in order: (mask, name).
fn events(inotify: &std::os::fd::OwnedFd) -> Vec<(u32, String)> {
    use std::os::fd::AsRawFd;
    let mut out = vec![];
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: reads into a live buffer of its length from a descriptor we own.
        let n = unsafe { libc::read(inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return out;
        }
        let mut at = 0;
        while at + 16 <= n as usize {
            // struct inotify_event: wd, mask, cookie, len, then len bytes of NUL-padded name.
            let word = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
            let (mask, len) = (word(4), word(12) as usize);
            let name = &buf[at + 16..at + 16 + len];
            let name = name.split(|b| *b == 0).next().unwrap_or_default();
            out.push((mask, String::from_utf8_lossy(name).into_owned()));
            at += 16 + len;
        }
    }
}

/// Import and restore writes the bundle's config.json once, when the spec is complete (new
/// root, engine files provided), not after each change to it. The restore of these fake images
/// fails in the container layer, after the import: what counts is what reached the bundle
/// (inotify on it: the kernel merges identical events in a row, so creations and deletions are
/// watched too), and that the failure left the bundle empty.
#[test]
fn import_and_restore_writes_config_json_once() {
    use std::os::fd::FromRawFd;
    let s = Scratch::new("once");
    let images = s.path().join("images");
    fake_images(&images, 4);
    // The root's mode is read before the spec is written: none recorded.
    let fs_entry = criu_image::FsEntry {
        cwd_id: None,
        root_id: None,
    };
    fs::write(
        images.join("fs-1.img"),
        criu_image::encode_image(criu_image::FS_MAGIC, &[fs_entry.encode_to_vec()]),
    )
    .unwrap();
    let out = s.path().join("a.tar.zst");
    archive::export(&request(&images, Compression::default()), &out).unwrap();
    let bundle = s.path().join("bundle");
    let newroot = s.path().join("newroot");
    fs::create_dir_all(&bundle).unwrap();
    fs::create_dir_all(&newroot).unwrap();
    // SAFETY: inotify_init1 returns a new descriptor or -1.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    assert!(
        fd >= 0,
        "inotify_init1: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let inotify = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let dir = std::ffi::CString::new(bundle.to_str().unwrap()).unwrap();
    // SAFETY: a live inotify descriptor and a NUL-terminated path.
    let wd = unsafe {
        libc::inotify_add_watch(
            fd,
            dir.as_ptr(),
            libc::IN_CREATE | libc::IN_CLOSE_WRITE | libc::IN_DELETE,
        )
    };
    assert!(
        wd >= 0,
        "inotify_add_watch: {}",
        std::io::Error::last_os_error()
    );
    let mut o = ckpt::Options::new();
    let r = archive::restore::restore(
        &mut o,
        &out,
        archive::ImportRestore {
            bundle: bundle.clone(),
            rootfs: archive::NewRootfs::Dir(newroot.clone()),
            name: None,
            id: None,
            namespaces: vec![("network".into(), Some("/proc/self/ns/net".into()))],
            limits: Limits::default(),
            keep_network: false,
            stdio: [None, None, None],
            hooks: None,
        },
    );
    let seen = events(&inotify);
    let written: Vec<&str> = seen
        .iter()
        .filter(|(m, _)| m & libc::IN_CLOSE_WRITE != 0)
        .map(|(_, n)| n.as_str())
        .collect();
    let e = match r {
        Ok(_) => panic!("the restore of fake images succeeded"),
        Err(e) => e,
    };
    eprintln!("restore of fake images: {e}; files written in the bundle: {written:?}");
    let writes = written.iter().filter(|n| **n == "config.json").count();
    assert_eq!(writes, 1, "config.json written {writes} times: {written:?}");
    assert_eq!(
        fs::read_dir(&bundle).unwrap().count(),
        0,
        "the bundle is not empty"
    );
}

/// The four path setters of the archive options: NULL, bad UTF-8 and a relative path refused
/// with the status and message naming the option; an absolute path taken, the last error
/// cleared.
#[test]
fn c_api_archive_path_setters_refuse_null_bad_utf8_and_relative_paths() {
    use ckpt_ffi::archive::*;
    use std::ffi::{CStr, CString, c_char};
    use std::ptr;

    type Setter = unsafe extern "C" fn(*mut ckpt_archive_opts, *const c_char) -> u32;
    let setters: [(Setter, &str); 4] = [
        (ckpt_archive_opts_set_spec_path, "spec path"),
        (ckpt_archive_opts_set_work_path, "work path"),
        (ckpt_archive_opts_set_new_rootfs, "new rootfs"),
        (ckpt_archive_opts_set_rootfs_image, "image rootfs"),
    ];
    let relative = CString::new("rel/dir").unwrap();
    let absolute = CString::new("/abs/dir").unwrap();
    let bad_utf8 = [0xffu8, 0xfe, 0];
    unsafe {
        let o = ckpt_archive_opts_new();
        let last = || {
            CStr::from_ptr(ckpt_archive_opts_last_error(o))
                .to_str()
                .unwrap()
                .to_string()
        };
        for (set, what) in setters {
            assert_eq!(set(ptr::null_mut(), absolute.as_ptr()), 1, "{what}");
            assert_eq!(set(o, ptr::null()), 1, "{what}");
            assert!(last().contains(what), "{what}: {}", last());
            assert_eq!(set(o, bad_utf8.as_ptr().cast()), 2, "{what}");
            assert!(last().contains(what), "{what}: {}", last());
            assert_eq!(set(o, relative.as_ptr()), 3, "{what}");
            assert_eq!(
                last(),
                format!("{what} \"rel/dir\" is not an absolute path")
            );
            assert_eq!(set(o, absolute.as_ptr()), 0, "{what}");
            assert!(ckpt_archive_opts_last_error(o).is_null(), "{what}");
        }
        ckpt_archive_opts_free(o);
    }
}

/// A new container id is a name, not a path: it replaces the old id inside the spec's mount
/// sources and `linux.cgroupsPath`, so `../..` or `/` in it would point the restored
/// container's bind mounts and cgroups outside the engine's directories (a Podman
/// `cgroupsPath` of `/libpod_parent/libpod-ID` became `/libpod_parent/libpod-../../../tmp/x`).
#[test]
fn an_id_that_is_not_a_container_id_is_refused() {
    use ckpt_ffi::archive::*;
    use std::ffi::{CStr, CString};

    let s = Scratch::new("badid");
    let images = s.path().join("images");
    fake_images(&images, 2);
    let out = s.path().join("a.tar");
    archive::export(&request(&images, Compression::None), &out).unwrap();
    for bad in ["../../../tmp/x", "a/b", "..", ".", "x\ny"] {
        let target = s.path().join("t");
        let e = archive::import(
            &out,
            &target,
            &ImportOptions {
                id: Some(bad.into()),
                ..Default::default()
            },
        )
        .expect_err(bad);
        assert_eq!(e.code, ckpt::Code::InvalidArgument, "{bad}: {e}");
        assert!(e.message.contains("container id"), "{bad}: {e}");
        assert!(!target.exists(), "{bad}: the target stayed");
        let v = CString::new(bad).unwrap();
        // SAFETY: a live handle made here; every string is NUL-terminated.
        unsafe {
            let o = ckpt_archive_opts_new();
            assert_eq!(ckpt_archive_opts_set_id(o, c"good-id_1.2".as_ptr()), 0);
            assert_eq!(ckpt_archive_opts_set_id(o, v.as_ptr()), 3, "{bad}");
            let why = CStr::from_ptr(ckpt_archive_opts_last_error(o))
                .to_str()
                .unwrap();
            assert!(why.contains("container id"), "{bad}: {why}");
            ckpt_archive_opts_free(o);
        }
    }
    // Engine ids and runtime ids stay accepted.
    let target = s.path().join("ok");
    let imp = archive::import(
        &out,
        &target,
        &ImportOptions {
            id: Some("probe-c_1.a".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(imp.config.id.as_deref(), Some("probe-c_1.a"));
}

/// Imported under a new id, an archive whose old id is short ("a") gets the new id only where
/// engines write the id: as a whole path component of a mount source and as a delimited part of
/// `linux.cgroupsPath`. Every string that merely contains the letter (paths, the process's
/// arguments, other mounts, namespaces, annotations) stays as it was: the id used to be
/// replaced as a substring, in mount sources and the cgroup path, so "/var/lib/a/hosts"
/// became right but "/usr/share/zoneinfo" and "/libpod_parent/libpod-a" were corrupted.
#[test]
fn a_short_old_id_is_replaced_only_where_it_is_the_id() {
    let s = Scratch::new("shortid");
    let images = s.path().join("images");
    fake_images(&images, 2);
    let mut req = request(&images, Compression::None);
    req.config.id = Some("a".into());
    req.spec = json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh", "-c", "cat /var/a"], "cwd": "/var/a"},
        "root": {"path": "/var/lib/a/rootfs"},
        "annotations": {"a": "a/a"},
        "linux": {
            "cgroupsPath": "/libpod_parent/libpod-a",
            "namespaces": [{"type": "pid"}, {"type": "mount"}],
        },
        "mounts": [
            {"destination": "/etc/hosts", "source": "/var/lib/a/userdata/hosts", "type": "bind"},
            {"destination": "/etc/localtime", "source": "/usr/share/zoneinfo/Europe/Paris", "type": "bind"},
            {"destination": "/data", "source": "/srv/data-a/a.d", "type": "bind"},
            {"destination": "/a", "source": "tmpfs", "type": "tmpfs"},
        ],
    });
    let out = s.path().join("short.tar");
    archive::export(&req, &out).unwrap();
    let imp = archive::import(
        &out,
        &s.path().join("t"),
        &ImportOptions {
            id: Some("newid".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(imp.old_id.as_deref(), Some("a"));
    let w: serde_json::Value = serde_json::from_slice(&fs::read(&imp.spec_path).unwrap()).unwrap();
    assert_eq!(w["mounts"][0]["source"], "/var/lib/newid/userdata/hosts");
    assert_eq!(w["mounts"][1]["source"], "/usr/share/zoneinfo/Europe/Paris");
    assert_eq!(w["mounts"][2]["source"], "/srv/data-a/a.d");
    assert_eq!(w["mounts"][3]["source"], "tmpfs");
    assert_eq!(w["mounts"][3]["destination"], "/a");
    assert_eq!(w["linux"]["cgroupsPath"], "/libpod_parent/libpod-newid");
    assert_eq!(w["process"]["args"], json!(["sh", "-c", "cat /var/a"]));
    assert_eq!(w["process"]["cwd"], "/var/a");
    assert_eq!(w["root"]["path"], "/var/lib/a/rootfs");
    assert_eq!(w["annotations"]["a"], "a/a");
    assert_eq!(
        imp.spec_changes,
        vec![
            r#"mount source "/var/lib/a/userdata/hosts" -> "/var/lib/newid/userdata/hosts""#,
            r#"linux.cgroupsPath "/libpod_parent/libpod-a" -> "/libpod_parent/libpod-newid""#,
        ]
    );
}

/// An empty path given to an archive operation is refused with the parameter named, not
/// tried as a file name: the messages were "image directory : No such file or directory",
/// "opening : ..." and " names no file".
#[test]
fn c_api_archive_operations_refuse_empty_paths() {
    use ckpt_ffi::archive::*;
    use ckpt_ffi::error::{ckpt_error, ckpt_error_code, ckpt_error_free, ckpt_error_message};
    use std::ffi::{CStr, CString};
    use std::ptr;

    let s = Scratch::new("emptypath");
    let images = s.path().join("images");
    fake_images(&images, 2);
    let spec_path = s.path().join("config.json");
    fs::write(&spec_path, serde_json::to_vec(&spec()).unwrap()).unwrap();
    let out = s.path().join("a.tar");
    archive::export(&request(&images, Compression::None), &out).unwrap();
    let p = |p: &Path| CString::new(p.to_str().unwrap()).unwrap();
    let (images_c, out_c, spec_c) = (p(&images), p(&out), p(&spec_path));
    let target_c = p(&s.path().join("t"));
    let new_c = p(&s.path().join("new.tar"));
    let check = |what: &str, st: u32, e: *mut ckpt_error| {
        // SAFETY: e is the error the call just returned.
        let (code, msg) = unsafe {
            (
                ckpt_error_code(e),
                CStr::from_ptr(ckpt_error_message(e))
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        assert_eq!((st, code), (3, 3), "{what}: {msg}");
        assert!(msg.contains(what) && msg.contains("empty"), "{what}: {msg}");
        // SAFETY: as above; freed once.
        unsafe { ckpt_error_free(e) };
    };
    // SAFETY: live handles made here, NUL-terminated strings, out-pointers to locals.
    unsafe {
        let o = ckpt_archive_opts_new();
        assert_eq!(ckpt_archive_opts_set_spec_path(o, spec_c.as_ptr()), 0);
        let mut e: *mut ckpt_error = ptr::null_mut();
        let mut j: *mut std::ffi::c_char = ptr::null_mut();
        check(
            "image directory",
            ckpt_archive_export(o, c"".as_ptr(), new_c.as_ptr(), &mut e),
            e,
        );
        check(
            "archive path",
            ckpt_archive_export(o, images_c.as_ptr(), c"".as_ptr(), &mut e),
            e,
        );
        check(
            "archive path",
            ckpt_archive_import(o, c"".as_ptr(), target_c.as_ptr(), &mut j, &mut e),
            e,
        );
        check(
            "target directory",
            ckpt_archive_import(o, out_c.as_ptr(), c"".as_ptr(), &mut j, &mut e),
            e,
        );
        check(
            "archive path",
            ckpt_archive_inspect(o, c"".as_ptr(), &mut j, &mut e),
            e,
        );
        assert!(j.is_null());
        ckpt_archive_opts_free(o);
    }
    assert!(!s.path().join("new.tar").exists() && !s.path().join("t").exists());
}

/// `ckpt_archive_restore` consumes the container handle's stdio descriptors on every call,
/// also one that fails before the import (a NULL pid pointer, no root file system), as
/// `ckpt_container_restore` does: a caller retrying sets them again and knows it must. They
/// stayed on the handle when an argument check failed, and were closed once the import ran.
/// An archive and an image directory are files named by bytes, as every Linux path is:
/// `ckpt inspect` of `café.tar` saved by a Latin-1 system, or an export into such a
/// directory, was refused ("archive path is not valid UTF-8", `CKPT_ERR_INVALID_UTF8`), though
/// docs/go.md promises the archive functions' paths may hold such bytes. Export, check,
/// inspect and import now take them.
#[test]
fn c_api_archive_paths_need_not_be_utf8() {
    use ckpt_ffi::archive::*;
    use ckpt_ffi::error::{ckpt_error, ckpt_error_free, ckpt_error_message};
    use std::ffi::{CStr, CString, OsStr};
    use std::os::unix::ffi::OsStrExt;
    use std::ptr;

    let s = Scratch::new("latin1");
    let images = s.path().join(OsStr::from_bytes(b"imag\xe9s"));
    fake_images(&images, 2);
    let spec_path = s.path().join("config.json");
    fs::write(&spec_path, serde_json::to_vec(&spec()).unwrap()).unwrap();
    let out = s.path().join(OsStr::from_bytes(b"caf\xe9.tar"));
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let (images_c, out_c) = (c(&images), c(&out));
    let target_c = c(&s.path().join("t"));
    let ok = |what: &str, st: u32, e: *mut ckpt_error| {
        let msg = if e.is_null() {
            String::new()
        } else {
            // SAFETY: e is the error the call just returned, freed once here.
            unsafe {
                let m = CStr::from_ptr(ckpt_error_message(e))
                    .to_string_lossy()
                    .into_owned();
                ckpt_error_free(e);
                m
            }
        };
        assert_eq!(st, 0, "{what}: {msg}");
    };
    unsafe {
        let o = ckpt_archive_opts_new();
        assert_eq!(
            ckpt_archive_opts_set_spec_path(o, c(&spec_path).as_ptr()),
            0
        );
        let mut e: *mut ckpt_error = ptr::null_mut();
        let st = ckpt_archive_check_path(out_c.as_ptr(), &mut e);
        ok("check path", st, e);
        let st = ckpt_archive_export(o, images_c.as_ptr(), out_c.as_ptr(), &mut e);
        ok("export", st, e);
        let mut j: *mut std::ffi::c_char = ptr::null_mut();
        let st = ckpt_archive_inspect(o, out_c.as_ptr(), &mut j, &mut e);
        ok("inspect", st, e);
        ckpt_archive_string_free(j);
        let st = ckpt_archive_import(o, out_c.as_ptr(), target_c.as_ptr(), &mut j, &mut e);
        ok("import", st, e);
        ckpt_archive_string_free(j);
        ckpt_archive_opts_free(o);
    }
    assert!(s.path().join("t/checkpoint/inventory.img").is_file());
}

/// checkpointctl shows `config.dump`'s `createdTime` as the container's creation. A runc or
/// crun container found through its runtime's state (`ckpt checkpoint --export --runtime
/// runc ID`) whose spec has no engine annotation for it was recorded as created when it was
/// exported; the runtime's state says when it was created, and that is what goes in now.
#[test]
fn a_runtime_containers_archive_records_when_it_was_created() {
    use ckpt_ffi::archive::*;
    use ckpt_ffi::container::*;
    use std::ffi::{CStr, CString};
    use std::ptr;

    let s = Scratch::new("created");
    let images = s.path().join("images");
    fake_images(&images, 1);
    let bundle = bundle_with(&s, &spec());
    let root = s.path().join("runc");
    fs::create_dir_all(root.join("web")).unwrap();
    let created = "2026-11-30T13:23:33.187079358Z";
    let state = serde_json::json!({
        "id": "web",
        "init_process_pid": 4242,
        "created": created,
        "config": {"labels": [format!("bundle={}", bundle.display())]},
    });
    fs::write(root.join("web/state.json"), state.to_string()).unwrap();
    let c = |x: &str| CString::new(x).unwrap();
    let out = s.path().join("a.tar");
    unsafe {
        let ch = ckpt_container_new();
        let root_c = c(root.to_str().unwrap());
        assert_eq!(
            ckpt_container_set_runtime(ch, c("runc").as_ptr(), root_c.as_ptr(), c("web").as_ptr()),
            0
        );
        let o = ckpt_archive_opts_new();
        assert_eq!(ckpt_archive_opts_set_compression(o, c("none").as_ptr()), 0);
        let mut e = ptr::null_mut();
        let st = ckpt_archive_export_container(
            o,
            ch,
            c(images.to_str().unwrap()).as_ptr(),
            c(out.to_str().unwrap()).as_ptr(),
            &mut e,
        );
        assert_eq!(st, 0);
        let mut j: *mut std::ffi::c_char = ptr::null_mut();
        assert_eq!(
            ckpt_archive_inspect(o, c(out.to_str().unwrap()).as_ptr(), &mut j, &mut e),
            0
        );
        let v: serde_json::Value =
            serde_json::from_str(CStr::from_ptr(j).to_str().unwrap()).unwrap();
        ckpt_archive_string_free(j);
        ckpt_archive_opts_free(o);
        ckpt_container_free(ch);
        assert_eq!(v["created"], created, "{v}");
    }
}

/// A Podman container's named volume (a bind of `.../volumes/NAME/_data`) is carried as
/// Podman's own export carries it: its contents in `volumes/NAME.tar` and the volume in
/// `config.dump`'s `namedVolumes`, from which `podman container restore --import` recreates
/// it where it is gone. Before, neither went in, and Podman's restore of ckpt's archive
/// failed wherever the volume was missing ("runc: stat .../volumes/NAME/_data: no such file
/// or directory").
#[test]
fn a_podman_containers_named_volume_goes_into_the_archive() {
    use std::io::Read;
    let s = Scratch::new("volume");
    let images = s.path().join("images");
    fake_images(&images, 1);
    let data = s.path().join("storage/volumes/webdata/_data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("sub/f"), b"kept").unwrap();
    let mut spec = spec();
    spec["annotations"] = json!({"io.container.manager": "libpod"});
    spec["mounts"] = json!([{
        "destination": "/data",
        "type": "bind",
        "source": data,
        "options": ["rw", "rprivate", "nosuid", "nodev", "rbind"],
    }]);
    let bundle = bundle_with(&s, &spec);
    let mut req = ExportRequest {
        images_dir: images.clone(),
        compression: Compression::None,
        ..Default::default()
    };
    archive::container_export::fill_from_bundle(&mut req, &bundle).unwrap();
    let out = s.path().join("a.tar");
    archive::export(&req, &out).unwrap();
    let (mut config, mut vol) = (Vec::new(), Vec::new());
    for e in tar::Archive::new(fs::File::open(&out).unwrap())
        .entries()
        .unwrap()
    {
        let mut e = e.unwrap();
        let name = e.path().unwrap().into_owned();
        if name == Path::new("config.dump") {
            e.read_to_end(&mut config).unwrap();
        } else if name == Path::new("volumes/webdata.tar") {
            e.read_to_end(&mut vol).unwrap();
        }
    }
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(
        config["namedVolumes"],
        json!([{"volumeName": "webdata", "dest": "/data", "options": ["rw", "rprivate", "nosuid", "nodev", "rbind"]}]),
        "{config}"
    );
    let mut files = Vec::new();
    for e in tar::Archive::new(vol.as_slice()).entries().unwrap() {
        let mut e = e.unwrap();
        let mut b = Vec::new();
        e.read_to_end(&mut b).unwrap();
        files.push((e.path().unwrap().into_owned(), b));
    }
    assert!(
        files.contains(&(PathBuf::from("sub/f"), b"kept".to_vec())),
        "{files:?}"
    );
}

#[test]
fn c_api_archive_restore_consumes_the_stdio_descriptors_on_every_call() {
    use ckpt_ffi::archive::*;
    use ckpt_ffi::container::*;
    use ckpt_ffi::error::{ckpt_error, ckpt_error_free};
    use std::os::fd::AsRawFd;
    use std::ptr;

    let s = Scratch::new("stdio");
    let images = s.path().join("images");
    fake_images(&images, 2);
    let out = s.path().join("a.tar");
    archive::export(&request(&images, Compression::None), &out).unwrap();
    let p = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let (a, b) = (p(&out), p(&s.path().join("bundle")));
    // SAFETY: live handles made here, NUL-terminated strings, out-pointers to locals.
    unsafe {
        let ao = ckpt_archive_opts_new();
        let o = ckpt_ffi::opts::ckpt_opts_new();
        let c = ckpt_container_new();
        let mut pid = 0i32;
        for (what, with_pid) in [("a NULL pid pointer", false), ("no root file system", true)] {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
            assert_eq!(ckpt_container_set_stdio_fd(c, 1, w.as_raw_fd()), 0);
            drop(w);
            let mut e: *mut ckpt_error = ptr::null_mut();
            let st = ckpt_archive_restore(
                ao,
                c,
                o,
                a.as_ptr(),
                b.as_ptr(),
                if with_pid { &mut pid } else { ptr::null_mut() },
                ptr::null_mut(),
                ptr::null_mut(),
                &mut e,
            );
            assert_ne!(st, 0, "{what}");
            ckpt_error_free(e);
            // End of file: the handle's duplicate of the write end is closed.
            let mut buf = [0u8; 1];
            assert_eq!(
                nix::unistd::read(&r, &mut buf),
                Ok(0),
                "{what}: the stdio descriptor stayed on the handle"
            );
        }
        ckpt_container_free(c);
        ckpt_ffi::opts::ckpt_opts_free(o);
        ckpt_archive_opts_free(ao);
    }
}

/// A partial file left beside the target by an export that was killed (its name held that
/// process's pid) does not stop a later export whose process has the same pid (pid reuse;
/// a runtime that is pid 1 of its container always has the same one): the export used to fail
/// for ever with "creating .NAME.ckpt-partial-PID: File exists". Two threads exporting to one
/// target at once both succeed too, each archive whole.
#[test]
fn a_stale_partial_file_with_this_pid_does_not_block_an_export() {
    let s = Scratch::new("stale");
    let images = s.path().join("images");
    fake_images(&images, 2);
    let out = s.path().join("a.tar");
    let stale = s
        .path()
        .join(format!(".a.tar.ckpt-partial-{}", std::process::id()));
    fs::write(&stale, b"left by a killed export").unwrap();
    archive::export(&request(&images, Compression::None), &out)
        .unwrap_or_else(|e| panic!("export beside a stale partial file: {e}"));
    assert!(archive::inspect(&out, &Limits::default()).is_ok());
    assert_eq!(fs::read(&stale).unwrap(), b"left by a killed export");
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (images, out) = (images.clone(), out.clone());
            std::thread::spawn(move || archive::export(&request(&images, Compression::None), &out))
        })
        .collect();
    for t in threads {
        t.join()
            .unwrap()
            .unwrap_or_else(|e| panic!("concurrent export: {e}"));
    }
    assert!(archive::inspect(&out, &Limits::default()).is_ok());
    let partial: Vec<_> = fs::read_dir(s.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") && s.path().join(n) != stale)
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}

/// The archive is renamed into place: an existing path that is not a regular file (a
/// directory, a symbolic link, a fifo; a device node such as /dev/null alike) is refused before
/// anything is written, and left as it was.
#[test]
fn export_refuses_a_target_that_is_not_a_regular_file() {
    let s = Scratch::new("target");
    let images = s.path().join("images");
    fake_images(&images, 4);
    let dir = s.path().join("a-dir");
    fs::create_dir(&dir).unwrap();
    let link = s.path().join("link");
    std::os::unix::fs::symlink(s.path().join("elsewhere"), &link).unwrap();
    let fifo = s.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for target in [&dir, &link, &fifo] {
        let kind = fs::symlink_metadata(target).unwrap().file_type();
        let e = archive::export(&request(&images, Compression::None), target).unwrap_err();
        assert!(
            e.message.contains("is not a regular file"),
            "{}: {e}",
            target.display()
        );
        assert_eq!(fs::symlink_metadata(target).unwrap().file_type(), kind);
    }
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    assert!(!s.path().join("elsewhere").exists());
    // A regular file is replaced, as before.
    let file = s.path().join("old.tar");
    fs::write(&file, b"old").unwrap();
    archive::export(&request(&images, Compression::None), &file).unwrap();
    assert!(fs::metadata(&file).unwrap().len() > 3);
}
