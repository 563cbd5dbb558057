//! The safe core as a Rust runtime uses it: what its types promise (Send, Sync, an error
//! usable with `?` and `Box<dyn Error + Send + Sync>`), and bad input of every kind, which
//! must give an error, never a panic. Needs neither root nor CRIU: the operations here fail
//! before criu starts, or run `/bin/true` in its place.

use ckpt::archive::{self, Compression, ExportRequest};
use ckpt::{Code, Options, ops};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A scratch directory, removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("ckpt-rust-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}

#[test]
fn handles_are_send_and_sync_and_the_error_is_a_std_error() {
    fn send_sync<T: Send + Sync>() {}
    fn std_error<T: std::error::Error + Send + Sync + 'static>() {}
    send_sync::<Options>();
    send_sync::<ckpt::Cancel>();
    send_sync::<ckpt::Stats>();
    send_sync::<ckpt::Restored>();
    send_sync::<ckpt::Version>();
    send_sync::<ckpt::Features>();
    send_sync::<ckpt::PageServerStarted>();
    send_sync::<ckpt::container::Plan>();
    send_sync::<ckpt::container::RestoreRequest>();
    send_sync::<archive::ImportRestore>();
    send_sync::<archive::Imported>();
    std_error::<ckpt::Error>();
    // `?` into a boxed error keeps the ckpt::Error, code and all.
    let boxed = (|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Options::new().set_image_path("")?;
        Ok(())
    })()
    .unwrap_err();
    let e = boxed.downcast_ref::<ckpt::Error>().expect("a ckpt::Error");
    assert_eq!(e.code, Code::InvalidArgument);
}

/// A timeout or restore wait too long to add to the clock (`Duration::MAX`, as a Rust caller
/// may write for "no limit") is an effectively endless wait, not an overflow panic when the
/// operation computes its deadline.
#[test]
fn an_endless_timeout_does_not_overflow_the_deadline() {
    let mut o = Options::new();
    o.set_criu_path("/bin/true").unwrap();
    for t in [Duration::MAX, Duration::from_secs(u64::MAX)] {
        o.set_timeout(Some(t));
        let e = ops::version(&o).expect_err("/bin/true is not criu");
        assert_eq!(e.code, Code::CriuDied, "{e:?}");
    }
    // The restore wait runs before criu starts, over the ids of the images' process tree.
    let dir = scratch("endless-wait");
    std::fs::write(dir.join("inventory.img"), b"").unwrap();
    o.set_image_path(&*dir).unwrap();
    o.set_restore_wait(Some(Duration::MAX));
    assert!(o.restore_wait().is_some());
    let e = ops::restore(&o).expect_err("/bin/true is not criu");
    assert_eq!(e.code, Code::CriuDied, "{e:?}");
}

/// CRIU's version numbers come from CRIU's reply (or from a caller): any i32 gives a number,
/// never an arithmetic overflow.
#[test]
fn any_version_gives_a_number() {
    let v = ckpt::Version {
        major: i32::MAX,
        minor: i32::MAX,
        sublevel: i32::MAX,
        extra: 0,
        gitid: None,
        name: None,
    };
    assert_eq!(v.number(), i32::MAX);
    let v = ckpt::Version {
        major: i32::MIN,
        minor: -1,
        sublevel: -1,
        ..v
    };
    assert_eq!(v.number(), i32::MIN);
    let v = ckpt::Version {
        major: 4,
        minor: 1,
        sublevel: 1,
        ..v
    };
    assert_eq!(v.number(), 40101);
}

/// Strings reach CRIU as C strings: a NUL byte would cut them short there. Every setter that
/// takes one refuses it, with the setter's words, and changes nothing.
#[test]
fn strings_with_a_nul_byte_are_refused_by_every_setter() {
    let mut o = Options::new();
    let bad = |r: ckpt::Result<()>| {
        let e = r.expect_err("a NUL byte was accepted");
        assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
        assert!(e.message.contains("NUL"), "{e:?}");
    };
    bad(o.set_page_server("host\0:1"));
    // The others, which refused it already.
    type PathSetter = fn(&mut Options, &str) -> ckpt::Result<()>;
    let path_setters: [(&str, PathSetter); 22] = [
        ("image path", |o, v| o.set_image_path(v)),
        ("work path", |o, v| o.set_work_path(v)),
        ("parent path", |o, v| o.set_parent_path(v)),
        ("criu path", |o, v| o.set_criu_path(v)),
        ("pid file", |o, v| o.set_pid_file(v)),
        ("console socket", |o, v| o.set_console_socket(v)),
        ("service address", |o, v| o.set_service_address(v)),
        ("root", |o, v| o.set_root(v)),
        ("freeze cgroup", |o, v| o.set_freeze_cgroup(v)),
        ("config file", |o, v| o.set_config_file(v)),
        ("cgroup props file", |o, v| o.set_cgroup_props_file(v)),
        ("cgroup yard", |o, v| o.set_cgroup_yard(v)),
        ("tls cacert", |o, v| o.set_tls_cacert(v)),
        ("tls cacrl", |o, v| o.set_tls_cacrl(v)),
        ("tls cert", |o, v| o.set_tls_cert(v)),
        ("tls key", |o, v| o.set_tls_key(v)),
        ("skip mount", |o, v| o.add_skip_mount(v)),
        ("irmap scan path", |o, v| o.add_irmap_scan_path(v)),
        ("log file", |o, v| o.set_log_file(v)),
        ("ext mount key", |o, v| o.add_ext_mount(v, "x")),
        ("ext mount value", |o, v| o.add_ext_mount("/x", v)),
        ("join-ns file", |o, v| o.add_join_ns("net", v, None)),
    ];
    let text_setters: [(&str, PathSetter); 9] = [
        ("lsm profile", |o, v| o.set_lsm_profile(v)),
        ("lsm mount context", |o, v| o.set_lsm_mount_context(v)),
        ("cgroup props", |o, v| o.set_cgroup_props(v)),
        ("cgroup dump controller", |o, v| {
            o.add_cgroup_dump_controller(v)
        }),
        ("enable fs", |o, v| o.add_enable_fs(v)),
        ("exec cmd", |o, v| o.add_exec_cmd(v)),
        ("external", |o, v| o.add_external(v)),
        ("veth inside", |o, v| o.add_veth_pair(v, "y")),
        ("veth outside", |o, v| o.add_veth_pair("x", v)),
    ];
    for (what, set) in path_setters.iter().chain(&text_setters) {
        let e = set(&mut o, "a:b\0c").expect_err(what);
        assert_eq!(e.code, Code::InvalidArgument, "{what}: {e:?}");
    }
    let key = std::fs::File::open("/dev/null").unwrap().into();
    bad(o.add_inherit_fd("pipe:[1]\0", key));
    bad(o.add_join_ns("net", "/proc/self/ns/net", Some("a\0b")));
    bad(o.add_cgroup_root(Some("cpu\0"), "/x"));
    // An empty controller names none: NULL (None) is the way to say "every controller".
    let e = o.add_cgroup_root(Some(""), "/x").unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
    // Nothing was half-applied: the good forms still work.
    o.set_page_server("host:1").unwrap();
    o.add_join_ns("net", "/proc/self/ns/net", None).unwrap();
    o.add_cgroup_root(Some("cpu"), "/x").unwrap();
    o.add_cgroup_root(None, "/x").unwrap();
}

/// `Compression` is a plain enum a caller can build without `Compression::parse`: a level
/// out of range is refused by the export, not a panic inside the compressor.
#[test]
fn an_export_with_a_compression_level_out_of_range_is_refused() {
    let dir = scratch("levels");
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    // Enough of a checkpoint for the export's plan: the level is what is wrong.
    std::fs::write(images.join("inventory.img"), b"").unwrap();
    std::fs::write(images.join("pstree.img"), b"").unwrap();
    for c in [
        Compression::Gzip { level: 10 },
        Compression::Gzip { level: u32::MAX },
        Compression::Zstd { level: 23 },
        Compression::Zstd { level: i32::MIN },
    ] {
        let req = ExportRequest {
            images_dir: images.clone(),
            spec: serde_json::json!({"root": {"path": "rootfs"}, "process": {}}),
            compression: c,
            ..Default::default()
        };
        let out = dir.join("out.tar");
        let e = archive::export(&req, &out).expect_err("an impossible level was accepted");
        assert_eq!(e.code, Code::InvalidArgument, "{c:?}: {e:?}");
        assert!(!Path::new(&out).exists(), "{c:?} left {}", out.display());
    }
}

/// Pids and names that cannot be a target are refused as invalid arguments, before anything
/// reads /proc or a runtime's state with them.
#[test]
fn impossible_targets_are_invalid_arguments() {
    for pid in [0, -1, i32::MIN] {
        let e = ops::check_dump_target(pid).expect_err("not a process id");
        assert_eq!(e.code, Code::InvalidArgument, "{pid}: {e:?}");
    }
    // A thread of this process that is not its leader.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, wait) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() }).unwrap();
        let _ = wait.recv();
    });
    let tid = rx.recv().unwrap();
    let e = ops::check_dump_target(tid).expect_err("a thread");
    assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
    drop(stop);
    t.join().unwrap();
    use ckpt::container::runtime::locate;
    let root = scratch("locate");
    for (r, id) in [(Some(&*root), "a\0b"), (Some(Path::new("/run/\0x")), "x")] {
        let e = locate("runc", r, id).expect_err("a NUL byte");
        assert_eq!(e.code, Code::InvalidArgument, "{r:?} {id:?}: {e:?}");
    }
}

/// `checkpoint_for` keys the images for the runtime named: a name it has no keys for is
/// refused, as the C API's `ckpt_container_set_runtime` refuses it, and never quietly taken
/// for runc.
#[test]
fn a_container_runtime_without_known_keys_is_refused() {
    let dir = scratch("runtime");
    let mut o = Options::new();
    o.set_image_path(dir.join("images")).unwrap();
    for rt in ["youki", "Crun", "", "runc\0"] {
        let e = ckpt::container::plan_checkpoint_for(&o, &dir, 1, false, Some(rt))
            .expect_err("an unknown runtime");
        assert_eq!(e.code, Code::InvalidArgument, "{rt:?}: {e:?}");
        let e = ckpt::container::checkpoint_for(&mut o, &dir, 1, false, Some(rt))
            .expect_err("an unknown runtime");
        assert_eq!(e.code, Code::InvalidArgument, "{rt:?}: {e:?}");
    }
    assert!(
        !dir.join("images").exists(),
        "a refused checkpoint made its image path"
    );
}

/// `max_rounds` 0 is refused, as `ckpt_checkpoint_iterative` refuses it in C, before anything
/// is created or started; it ran one pre-dump round.
#[test]
fn an_iterative_checkpoint_of_zero_rounds_is_refused() {
    let dir = scratch("rounds");
    let mut o = Options::new();
    o.set_image_path(dir.join("images")).unwrap();
    o.set_criu_path("/bin/true").unwrap();
    let pid = std::process::id() as i32;
    let e = ops::checkpoint_iterative(&o, pid, 0, &mut |_, _| true).expect_err("0 rounds");
    assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
    assert!(e.message.contains("max_rounds"), "{e:?}");
    assert!(
        !dir.join("images").exists(),
        "a refused checkpoint made its image path"
    );
}

/// A container restore's `criu_root` is checked before anything is read or made: empty, with
/// a NUL byte, or relative (which CRIU resolved against its own working directory, failing
/// only after it had created the tree) is an invalid argument.
#[test]
fn a_container_restore_refuses_an_unusable_criu_root() {
    let dir = scratch("criu-root");
    let mut o = Options::new();
    o.set_image_path(dir.join("images")).unwrap();
    for root in ["", "/tmp/x\0y", "relative/root"] {
        let req = || ckpt::container::RestoreRequest {
            bundle: dir.join("no-bundle"),
            criu_root: Some(root.into()),
            ..Default::default()
        };
        let e = ckpt::container::plan_restore(&o, &req()).expect_err("a bad criu_root");
        assert_eq!(e.code, Code::InvalidArgument, "{root:?}: {e:?}");
        let e = ckpt::container::restore(&mut o, req()).expect_err("a bad criu_root");
        assert_eq!(e.code, Code::InvalidArgument, "{root:?}: {e:?}");
    }
    assert!(!Path::new("relative").exists());
}

fn export_dir(name: &str) -> (Scratch, ExportRequest) {
    let dir = scratch(name);
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("inventory.img"), b"").unwrap();
    std::fs::write(images.join("pstree.img"), b"").unwrap();
    let req = ExportRequest {
        images_dir: images,
        spec: serde_json::json!({"root": {"path": "rootfs"}, "process": {}}),
        ..Default::default()
    };
    (dir, req)
}

/// The engine config's id and name are checked by the export as `ckpt_archive_opts_set_id`
/// and `_set_name` check them in C: an id that is no name (empty, `..`, a `/`, a NUL) or an
/// empty name is refused, and no archive is written.
#[test]
fn an_export_refuses_an_id_or_name_the_c_setters_refuse() {
    let (dir, base) = export_dir("export-ids");
    let out = dir.join("out.tar");
    for (id, name) in [
        (Some("../../x"), None),
        (Some("a\0b"), None),
        (Some(""), None),
        (None, Some("")),
        (None, Some("a\0")),
    ] {
        let mut req = base.clone();
        req.config.id = id.map(str::to_string);
        req.config.name = name.map(str::to_string);
        let e = archive::export(&req, &out).expect_err("a bad id or name");
        assert_eq!(e.code, Code::InvalidArgument, "{id:?} {name:?}: {e:?}");
        assert!(!out.exists());
    }
}

/// The default name is `ckpt-` and the id's first 12 characters: an id of multi-byte
/// characters gives a name cut at a character, not a panic at byte 12.
#[test]
fn the_default_name_cuts_a_multibyte_id_at_a_character() {
    let (dir, mut req) = export_dir("export-utf8");
    req.config.id = Some("aéééééééééééé".to_string());
    let (m, _) = archive::export(&req, &dir.join("out.tar")).expect("export");
    assert_eq!(m.container_name, "ckpt-aééééééééééé");
}

/// A manifest is plain data with public fields: one changed by hand to name a rootfs diff it
/// does not carry is refused by the writer, not a panic half-way through the archive.
#[test]
fn a_manifest_naming_a_diff_it_lacks_is_refused() {
    use ckpt::archive::manifest::{Entry, Source};
    let (dir, req) = export_dir("manifest");
    let mut m = archive::manifest::plan(&req).expect("plan");
    m.entries.push(Entry {
        name: "rootfs-diff.tar".into(),
        source: Source::RootfsDiff {
            from: dir.to_path_buf(),
            changed: 1,
        },
        size: 0,
        mode: 0o600,
        mtime: 0,
        reason: "by hand".into(),
    });
    let out = dir.join("out.tar");
    let e = archive::writer::write(&m, &out).expect_err("no diff to write");
    assert_eq!(e.code, Code::InvalidArgument, "{e:?}");
    assert!(!out.exists());
}
