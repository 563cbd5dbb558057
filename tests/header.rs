//! The committed include/ckpt.h must be exactly what cbindgen makes of the sources today.

#[test]
fn header_is_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen failed on the sources")
        .write(&mut fresh);
    let committed = std::fs::read(root.join("include/ckpt.h")).expect("include/ckpt.h");
    assert!(
        fresh == committed,
        "include/ckpt.h is stale: run scripts/gen-header.sh and commit the result"
    );
}
