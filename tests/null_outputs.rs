//! An output pointer passed as NULL ("may be NULL when the caller does not want the value")
//! must not leak what would have gone there. `ckpt_archive_inspect`, `ckpt_archive_import`
//! (and `ckpt_archive_restore`, `ckpt_container_explain`) made their JSON string and, with a
//! NULL pointer to put it in, dropped the only pointer to it: the whole document leaked on
//! every call. A counting allocator measures the bytes still allocated after repeated calls;
//! this binary holds this one test, so nothing else allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicIsize, Ordering};

use ckpt::archive::criu_image::{self, CoreEntry, PstreeEntry, TaskCoreEntry};
use ckpt::archive::{self, Compression, EngineConfig, ExportRequest};
use ckpt_ffi::archive::*;
use prost::Message;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as the caller's contract.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: as the caller's contract.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as the caller's contract.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn images(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let w = |n: &str, b: Vec<u8>| std::fs::write(dir.join(n), b).unwrap();
    w(
        "inventory.img",
        criu_image::encode_image(criu_image::INVENTORY_MAGIC, &[vec![8, 2]]),
    );
    let root = PstreeEntry {
        pid: Some(1),
        ppid: Some(0),
        pgid: Some(1),
        sid: Some(1),
        threads: vec![1],
    };
    w(
        "pstree.img",
        criu_image::encode_image(criu_image::PSTREE_MAGIC, &[root.encode_to_vec()]),
    );
    let core = CoreEntry {
        tc: Some(TaskCoreEntry {
            comm: Some("sh".into()),
        }),
    };
    w(
        "core-1.img",
        criu_image::encode_image(criu_image::CORE_MAGIC, &[core.encode_to_vec()]),
    );
    w("pages-1.img", vec![7; 4096]);
}

/// Bytes still allocated after `n` calls of `f`, after two calls to warm up.
fn growth(n: usize, mut f: impl FnMut(usize)) -> isize {
    f(usize::MAX - 1);
    f(usize::MAX);
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..n {
        f(i);
    }
    LIVE.load(Ordering::Relaxed) - before
}

#[test]
fn null_json_outputs_do_not_leak() {
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let scratch =
        Scratch(std::env::temp_dir().join(format!("ckpt-null-outputs-{}", std::process::id())));
    let dir = scratch.0.clone();
    let _ = std::fs::remove_dir_all(&dir);
    images(&dir.join("images"));
    let out = dir.join("a.tar");
    let req = ExportRequest {
        images_dir: dir.join("images"),
        spec: serde_json::json!({"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"},
            "root": {"path": "/old/rootfs"}}),
        config: EngineConfig {
            name: Some("ckpt-null-outputs".into()),
            id: Some("0123456789ab".into()),
            ..Default::default()
        },
        compression: Compression::None,
        ..Default::default()
    };
    archive::export(&req, &out).unwrap();
    let a = CString::new(out.to_str().unwrap()).unwrap();
    let target = |i: usize| CString::new(dir.join(format!("t{i}")).to_str().unwrap()).unwrap();
    // SAFETY: live handles made here, NUL-terminated strings, out-pointers NULL or to locals.
    unsafe {
        let o = ckpt_archive_opts_new();
        let mut j: *mut c_char = ptr::null_mut();
        assert_eq!(
            ckpt_archive_inspect(o, a.as_ptr(), &mut j, ptr::null_mut()),
            0
        );
        let inspect_len = CStr::from_ptr(j).to_bytes().len() as isize;
        ckpt_archive_string_free(j);
        let t = target(0);
        assert_eq!(
            ckpt_archive_import(o, a.as_ptr(), t.as_ptr(), &mut j, ptr::null_mut()),
            0
        );
        let import_len = CStr::from_ptr(j).to_bytes().len() as isize;
        ckpt_archive_string_free(j);

        let n = 20;
        let g = growth(n, |_| {
            assert_eq!(
                ckpt_archive_inspect(o, a.as_ptr(), ptr::null_mut(), ptr::null_mut()),
                0
            );
        });
        assert!(
            g < inspect_len * n as isize / 4,
            "{g} bytes still allocated after {n} inspections with a NULL json pointer (the document is {inspect_len} bytes)"
        );
        let g = growth(n, |i| {
            let d = dir.join(format!("n{i}"));
            let t = CString::new(d.to_str().unwrap()).unwrap();
            assert_eq!(
                ckpt_archive_import(o, a.as_ptr(), t.as_ptr(), ptr::null_mut(), ptr::null_mut()),
                0
            );
            drop(t);
            let _ = std::fs::remove_dir_all(&d);
        });
        assert!(
            g < import_len * n as isize / 4,
            "{g} bytes still allocated after {n} imports with a NULL result pointer (the document is {import_len} bytes)"
        );
        ckpt_archive_opts_free(o);
    }
}
