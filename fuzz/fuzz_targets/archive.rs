//! Checkpoint archives from arbitrary bytes: inspection and import must refuse or accept,
//! never panic, and an import must write nothing outside its target directory.
#![no_main]

use std::fs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = std::env::temp_dir().join(format!("ckpt-archive-fuzz-{}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).unwrap();
    let a = base.join("a");
    fs::write(&a, data).unwrap();
    let limits = ckpt::archive::Limits {
        max_entries: 256,
        max_bytes: 1 << 20,
        max_document_bytes: 1 << 16,
    };
    let _ = ckpt::archive::inspect(&a, &limits);
    let target = base.join("t");
    let opts = ckpt::archive::ImportOptions { limits, ..Default::default() };
    let ok = ckpt::archive::import(&a, &target, &opts).is_ok();
    let mut names: Vec<_> = fs::read_dir(&base).unwrap().flatten().map(|e| e.file_name()).collect();
    names.sort();
    let want: &[&str] = if ok { &["a", "t"] } else { &["a"] };
    assert_eq!(names, want, "import wrote outside its target");
    let _ = fs::remove_dir_all(&base);
});
