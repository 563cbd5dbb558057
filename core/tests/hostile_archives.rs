//! Hostile checkpoint archives, as an attacker who writes an archive an administrator then
//! imports as root: what the import leaves on the host must not hand local users the
//! container's memory or a setuid program.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ckpt::archive::{self, ImportOptions};
use common::TempDir;

fn entry<W: std::io::Write>(b: &mut tar::Builder<W>, name: &str, mode: u32, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

fn dir(b: &mut tar::Builder<fs::File>, name: &str) {
    let mut h = tar::Header::new_gnu();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Directory);
    b.append_data(&mut h, name, &[][..]).unwrap();
}

/// The engine's two files: its container config (`config.dump`) and the spec (`spec.dump`).
fn engine_files(
    b: &mut tar::Builder<fs::File>,
    config: &serde_json::Value,
    spec: &serde_json::Value,
) {
    entry(b, "config.dump", 0o644, config.to_string().as_bytes());
    entry(b, "spec.dump", 0o644, spec.to_string().as_bytes());
}

fn probe_config() -> serde_json::Value {
    serde_json::json!({"id": "probe", "name": "probe"})
}

/// The smallest archived spec: a shell in `rootfs`.
fn sh_spec() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"]},
    })
}

/// An archive at `path` with the engine's files (the probe's config, `spec`) and a checkpoint
/// directory holding a stand-in inventory.img; the caller adds the rest and finishes it.
fn probe_archive(path: &Path, spec: &serde_json::Value) -> tar::Builder<fs::File> {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    engine_files(&mut b, &probe_config(), spec);
    dir(&mut b, "checkpoint");
    entry(&mut b, "checkpoint/inventory.img", 0o644, b"inv");
    b
}

/// A checkpoint's `descriptors.json` whose stdio was /dev/null.
fn descriptors(b: &mut tar::Builder<fs::File>) {
    entry(
        b,
        "checkpoint/descriptors.json",
        0o644,
        br#"["/dev/null","/dev/null","/dev/null"]"#,
    );
}

/// An archive whose images are world-readable files (CRIU's pages hold the container's
/// memory) and whose rootfs diff holds a setuid-root program.
fn archive_with_secrets(path: &Path) {
    let mut diff = tar::Builder::new(Vec::new());
    entry(&mut diff, "bin/rootshell", 0o4755, b"\x7fELF");
    let diff = diff.into_inner().unwrap();
    let mut b = probe_archive(path, &sh_spec());
    entry(
        &mut b,
        "checkpoint/pages-1.img",
        0o644,
        b"the container's secret memory",
    );
    entry(&mut b, "rootfs-diff.tar", 0o644, &diff);
    b.finish().unwrap();
}

/// The directory an import creates holds CRIU's images (the container's memory, its open
/// files' contents) and, for an import and restore with `--rootfs-image`, the overlay whose
/// upper layer holds the archive's files, setuid programs included: created 0700, as ckpt's
/// image directories are. Before, it was 0755 (the umask's): any local user could read the
/// pages and run the archive's setuid-root program through it.
#[test]
fn an_import_target_ckpt_creates_is_private() {
    let t = TempDir::new("probe-sec");
    let a = t.join("a.tar");
    archive_with_secrets(&a);
    // The umask root's shells usually have; the test must not depend on the harness's.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o022) };
    let target = t.join("imported");
    let r = archive::import(&a, &target, &ImportOptions::default());
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    r.unwrap();
    let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "import target created {mode:o}");
}

/// The archived spec's `org.criu.config` annotation names a CRIU configuration file, which
/// CRIU reads as root and whose `action-script` lines it runs as shell commands: an archive
/// naming a file it can place or guess (its own extra files land at a known place in the
/// import directory; a local user's file in /tmp) ran commands as root on the restoring host.
/// The import drops it, as it drops the archive's namespace paths (both name things of the
/// machine that wrote it), and says so; the caller's own configuration file still applies.
#[test]
fn an_archives_criu_config_annotation_does_not_reach_criu() {
    let t = TempDir::new("probe-sec");
    let evil = t.join("evil.conf");
    fs::write(&evil, "action-script \"touch /probe-sec-pwned\"\n").unwrap();
    let a = t.join("a.tar");
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "annotations": {"org.criu.config": evil, "keep": "me"},
    });
    let mut b = probe_archive(&a, &spec);
    descriptors(&mut b);
    b.finish().unwrap();
    drop(b);
    let rootfs = t.sub("rootfs");
    let imp = archive::import(
        &a,
        &t.join("bundle"),
        &ImportOptions {
            rootfs: Some(rootfs),
            ..Default::default()
        },
    )
    .unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&imp.spec_path).unwrap()).unwrap();
    assert_eq!(written["annotations"]["keep"], "me");
    assert!(
        written["annotations"].get("org.criu.config").is_none(),
        "the archive's CRIU configuration file reached config.json: {written}"
    );
    assert!(
        imp.spec_changes
            .iter()
            .any(|c| c.contains("org.criu.config")),
        "{:?}",
        imp.spec_changes
    );
    let o = common::options(&imp.images_dir);
    let p = ckpt::container::plan_restore(
        &o,
        &ckpt::container::RestoreRequest {
            bundle: imp.dir.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let json = p.to_json();
    assert!(
        !json.contains("evil.conf"),
        "the restore gives CRIU the archive's configuration file: {json}"
    );
}

/// CRIU images of one task whose root directory is recorded with `root_mode`, and
/// `files_img_padding` zero-length records after it in files.img.
fn images_with_root_mode(b: &mut tar::Builder<fs::File>, root_mode: u32, files_img_padding: usize) {
    use ckpt::archive::criu_image::{self as ci, FileEntry, FsEntry, PstreeEntry, RegFileEntry};
    use prost::Message;
    dir(b, "checkpoint");
    entry(
        b,
        "checkpoint/inventory.img",
        0o644,
        &ci::encode_image(ci::INVENTORY_MAGIC, &[vec![8, 2]]),
    );
    let pstree = PstreeEntry {
        pid: Some(1),
        ppid: Some(0),
        pgid: Some(1),
        sid: Some(1),
        threads: vec![1],
    };
    entry(
        b,
        "checkpoint/pstree.img",
        0o644,
        &ci::encode_image(ci::PSTREE_MAGIC, &[pstree.encode_to_vec()]),
    );
    let fs_entry = FsEntry {
        cwd_id: Some(5),
        root_id: Some(5),
    };
    entry(
        b,
        "checkpoint/fs-1.img",
        0o644,
        &ci::encode_image(ci::FS_MAGIC, &[fs_entry.encode_to_vec()]),
    );
    let root = FileEntry {
        r#type: Some(1),
        id: Some(5),
        reg: Some(RegFileEntry {
            id: Some(5),
            name: Some("/".into()),
            mode: Some(0o040000 | root_mode),
        }),
    };
    let mut files = ci::encode_image(ci::FILES_MAGIC, &[root.encode_to_vec()]);
    files.resize(files.len() + 4 * files_img_padding, 0);
    entry(b, "checkpoint/files.img", 0o644, &files);
    descriptors(b);
}

fn container_archive(path: &Path, root_mode: u32, files_img_padding: usize) {
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
    });
    engine_files(&mut b, &probe_config(), &spec);
    images_with_root_mode(&mut b, root_mode, files_img_padding);
    b.finish().unwrap();
}

fn restore_request(bundle: &Path, rootfs: &Path) -> archive::ImportRestore {
    archive::ImportRestore {
        bundle: bundle.to_path_buf(),
        rootfs: archive::NewRootfs::Dir(rootfs.to_path_buf()),
        name: None,
        id: None,
        namespaces: vec![],
        limits: Default::default(),
        keep_network: false,
        stdio: [None, None, None],
        hooks: None,
    }
}

/// The checkpoint's images say which mode the root directory had, and the restore gives the
/// caller's `--rootfs` directory that mode (CRIU refuses another). An archive recording a
/// world-writable or setuid root (07777) made root chmod the caller's directory so, which then
/// stayed after the failed restore: any local user could write the container's root. Such a
/// mode is refused before the directory is touched.
#[test]
fn an_archive_cannot_make_the_callers_rootfs_world_writable() {
    if !common::containers::root("archive restores need root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let a = t.join("a.tar");
    container_archive(&a, 0o7777, 0);
    let rootfs = t.sub("rootfs");
    fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755)).unwrap();
    let mut o = common::options(&t.join("unused"));
    let Err(e) = archive::restore::restore(&mut o, &a, restore_request(&t.join("bundle"), &rootfs))
    else {
        panic!("the restore must fail")
    };
    let mode = fs::metadata(&rootfs).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "the rootfs became {mode:o} ({e})");
    assert!(e.message.contains("7777"), "{e}");
}

/// The restore reads pstree.img, fs-PID.img and files.img into memory to find the root's mode:
/// each is bounded by `Limits::max_document_bytes` like the archive's other documents. Before,
/// they were read whole: a files.img of zeros, which compresses to nearly nothing, took as
/// much memory as the disk had room for.
#[test]
fn the_images_the_restore_reads_into_memory_are_bounded() {
    if !common::containers::root("archive restores need root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let a = t.join("a.tar");
    // 2 MiB of empty records after the root's entry, against a limit of 1 MiB.
    container_archive(&a, 0o755, 512 << 10);
    let rootfs = t.sub("rootfs");
    let mut req = restore_request(&t.join("bundle"), &rootfs);
    req.limits.max_document_bytes = 1 << 20;
    let mut o = common::options(&t.join("unused"));
    let Err(e) = archive::restore::restore(&mut o, &a, req) else {
        panic!("the restore must fail")
    };
    assert!(
        e.message.contains("files.img") && e.message.contains("larger than"),
        "{e}"
    );
}

/// The container owns its upper directory and runs on while a leave-running checkpoint is
/// exported: between the walk that lists its changes and the packing of `rootfs-diff.tar` it
/// can turn a file, or a directory above one, into a symbolic link to a host path. Packing
/// reads each entry without following any link (as the walk saw it, or not at all): before,
/// root copied the host file the link named into the archive.
#[test]
fn an_exported_rootfs_diff_never_follows_links_planted_after_the_walk() {
    use ckpt::archive::RootfsChanges;
    let t = TempDir::new("probe-sec");
    let secret = t.sub("host");
    fs::write(secret.join("x"), "host-secret").unwrap();
    for swap in ["file", "parent"] {
        let upper = t.sub(&format!("upper-{swap}"));
        fs::create_dir(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/x"), "container's own").unwrap();
        let d = RootfsChanges::OverlayUpper {
            upper: upper.clone(),
            lower: None,
        }
        .collect()
        .unwrap();
        match swap {
            "file" => {
                fs::remove_file(upper.join("etc/x")).unwrap();
                std::os::unix::fs::symlink(secret.join("x"), upper.join("etc/x")).unwrap();
            }
            _ => {
                fs::rename(upper.join("etc"), upper.join("etc.old")).unwrap();
                std::os::unix::fs::symlink(&secret, upper.join("etc")).unwrap();
            }
        }
        let tar = d.write_tar(Vec::new());
        if let Ok(bytes) = &tar {
            assert!(
                !bytes.windows(11).any(|w| w == b"host-secret"),
                "{swap}: the host file went into rootfs-diff.tar"
            );
        }
        // A file replaced by a link may be packed as that link; a directory above it
        // replaced by one fails the export (the entry is no longer where the walk saw it).
        if swap == "parent" {
            assert!(tar.is_err(), "{swap}: packed through a link");
        }
    }
}

/// An existing empty import directory is used as it is: one that another user owns, or that
/// others may write (the command's default, `FILE.d`, beside an archive in /tmp, can be made
/// by anyone first), would hand that user CRIU's images (the container's memory) and let them
/// change the images root restores, or plant links while the import writes. Refused before
/// anything is written; before, the import went ahead.
#[test]
fn an_import_into_a_directory_others_control_is_refused() {
    if !common::containers::root("chown needs root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let a = t.join("a.tar");
    archive_with_secrets(&a);
    for (what, owner, mode) in [
        ("owned by another user", Some(65534), 0o700),
        ("writable by others", None, 0o777),
        ("writable by its group", None, 0o770),
    ] {
        let target = t.sub(&format!("target-{mode:o}"));
        std::os::unix::fs::chown(&target, owner, None).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(mode)).unwrap();
        match archive::import(&a, &target, &ImportOptions::default()) {
            Ok(_) => panic!("an import into a directory {what} went ahead"),
            Err(e) => assert!(
                e.code == ckpt::Code::InvalidArgument && e.message.contains("others"),
                "{what}: {e}"
            ),
        }
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "{what}");
    }
    // The caller's own private directory is fine.
    let target = t.sub("mine");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
    archive::import(&a, &target, &ImportOptions::default()).unwrap();
}

/// With `--rootfs-image` the archive's files (its rootfs diff, setuid programs included) land
/// in the overlay's upper layer inside the bundle, and stay there after the restore: an
/// existing bundle directory others may enter (root's 0755) would let any local user run the
/// archive's setuid-root program from `BUNDLE/rootfs-upper`. Refused before anything is
/// written; before, the import went ahead.
#[test]
fn an_overlay_restore_into_a_bundle_others_can_enter_is_refused() {
    if !common::containers::root("archive restores need root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let a = t.join("a.tar");
    container_archive(&a, 0o755, 0);
    let bundle = t.sub("bundle");
    fs::set_permissions(&bundle, fs::Permissions::from_mode(0o755)).unwrap();
    let mut req = restore_request(&bundle, Path::new("/"));
    req.rootfs = archive::NewRootfs::Overlay {
        lower: t.sub("lower"),
    };
    let mut o = common::options(&t.join("unused"));
    let Err(e) = archive::restore::restore(&mut o, &a, req) else {
        panic!("the restore must fail")
    };
    assert!(
        e.code == ckpt::Code::InvalidArgument && e.message.contains("0700"),
        "{e}"
    );
    assert_eq!(fs::read_dir(&bundle).unwrap().count(), 0);
}

/// A bind source naming the old container's per-container file (`.../OLDID/userdata/...`,
/// absent here under the new id) gets a copy of that file when it is on this host. The
/// archive chooses the old id: naming a running container's, and a FIFO of its engine
/// directory (Podman's conmon keeps `userdata/ctl` and `winsz` there), the copy opened the
/// FIFO and blocked the restore for ever (stealing what the engine writes into it). Only
/// regular files are copied.
#[test]
fn an_archive_cannot_make_the_restore_read_another_containers_fifo() {
    if !common::containers::root("archive restores need root") {
        return;
    }
    let t = TempDir::new("probe-sec");
    let old_id = "0123456789abcdef0123";
    let engine = t.sub(&format!("{old_id}/userdata"));
    let fifo = engine.join("ctl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let a = t.join("a.tar");
    let mut b = tar::Builder::new(fs::File::create(&a).unwrap());
    let config = serde_json::json!({"id": old_id, "name": "probe"});
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
        "mounts": [{"destination": "/run/ctl", "type": "bind", "source": fifo, "options": ["rbind"]}],
        "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]},
    });
    engine_files(&mut b, &config, &spec);
    images_with_root_mode(&mut b, 0o755, 0);
    b.finish().unwrap();
    drop(b);
    let rootfs = t.sub("rootfs");
    let bundle = t.join("bundle");
    let archive = a.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut req = restore_request(&bundle, &rootfs);
        req.id = Some("fedcba9876543210fedc".into());
        let mut o = common::options(&bundle.join("unused"));
        let r = archive::restore::restore(&mut o, &archive, req).map(|_| ());
        let _ = tx.send(r);
    });
    let r = rx.recv_timeout(std::time::Duration::from_secs(10));
    if r.is_err() {
        // Unblock the copy before failing, so no thread is left behind.
        let _ = fs::OpenOptions::new().write(true).open(&fifo);
        panic!("the restore blocked on the other container's FIFO");
    }
}

/// `ckpt inspect` builds the process tree from `pstree.img`, which the archive's writer
/// chose: records that repeat pids and name each other as parents (1 → 2 → 1 → 2 ...) made
/// every node gain every duplicate as a child again, to a depth of 4096, so inspecting a
/// 1 KiB archive never ended. Each pid appears once in the tree.
#[test]
fn an_archives_process_tree_cannot_make_inspection_explode() {
    use ckpt::archive::criu_image::{PSTREE_MAGIC, PstreeEntry, encode_image};
    use prost::Message;
    let t = TempDir::new("probe-pstree");
    let a = t.join("a.tar");
    let mut b = probe_archive(&a, &sh_spec());
    let task = |pid, ppid| {
        PstreeEntry {
            pid: Some(pid),
            ppid: Some(ppid),
            pgid: Some(1),
            sid: Some(1),
            threads: vec![pid],
        }
        .encode_to_vec()
    };
    let mut recs = vec![task(1, 0)];
    for _ in 0..3 {
        recs.push(task(2, 1));
        recs.push(task(1, 2));
    }
    let img = encode_image(PSTREE_MAGIC, &recs);
    entry(&mut b, "checkpoint/pstree.img", 0o644, &img);
    b.finish().unwrap();
    drop(b);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(archive::inspect(&a, &archive::Limits::default()));
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("inspecting a 1 KiB archive did not end");
    let tree = r.unwrap().process_tree.expect("a process tree");
    assert_eq!(tree.pid, 1);
    assert_eq!(tree.children.len(), 1, "{tree:?}");
    assert_eq!(tree.children[0].pid, 2);
    assert!(tree.children[0].children.is_empty(), "{tree:?}");
}

/// The tar reader takes a GNU long-name or long-link entry, and a PAX header, whole into
/// memory before it shows the entry they describe, whatever size they declare: a 100 KiB
/// zstd archive declaring a 256 MiB name made inspection and import hold all of it (one
/// declaring 64 GiB exhausted the machine's memory), since the entry and byte bounds only
/// apply to entries. What the reader consumes to reach the next entry is now bounded by the
/// document limit.
#[test]
fn a_huge_name_or_pax_header_is_bounded_before_it_is_read() {
    use std::io::Write;
    let t = TempDir::new("probe-longname");
    for (tag, kind) in [
        ("gnu", tar::EntryType::GNULongName),
        ("pax", tar::EntryType::XHeader),
    ] {
        let a = t.join(format!("{tag}.tar.zst"));
        let mut z = zstd::Encoder::new(fs::File::create(&a).unwrap(), 1).unwrap();
        let size: u64 = 256 << 20;
        let mut h = tar::Header::new_gnu();
        h.set_path("././@LongLink").unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        z.write_all(h.as_bytes()).unwrap();
        // A PAX record that never ends, or a name of 256 MiB.
        let fill = if kind == tar::EntryType::XHeader {
            b'9'
        } else {
            b'a'
        };
        std::io::copy(
            &mut std::io::Read::take(std::io::repeat(fill), size),
            &mut z,
        )
        .unwrap();
        let mut f = tar::Header::new_gnu();
        f.set_path("config.dump").unwrap();
        f.set_size(0);
        f.set_cksum();
        z.write_all(f.as_bytes()).unwrap();
        z.write_all(&[0u8; 1024]).unwrap();
        z.finish().unwrap();
        let limits = archive::Limits {
            max_document_bytes: 1 << 20,
            ..Default::default()
        };
        let e = archive::inspect(&a, &limits).expect_err(tag);
        assert!(
            e.message.contains("limit") && e.message.contains("1048576"),
            "{tag}: {e}"
        );
    }
}
