// The shared library carries its ABI version in its soname, so programs linked against it
// keep working across compatible releases and installs can keep several side by side.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libckpt.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}

fn thread_exit_shim() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let src = "src/thread_exit.c";
    println!("cargo:rerun-if-changed={src}");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let obj = out.join("thread_exit.o");
    let st = std::process::Command::new(&cc)
        .args([
            "-c",
            "-O2",
            "-fPIC",
            "-fno-exceptions",
            "-Wall",
            "-Werror",
            src,
            "-o",
        ])
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(st.success(), "{cc} failed on {src}");
    let lib = out.join("libckpt_thread_exit.a");
    let _ = std::fs::remove_file(&lib);
    let ar = std::env::var("AR").unwrap_or_else(|_| "ar".into());
    let st = std::process::Command::new(&ar)
        .arg("crs")
        .arg(&lib)
        .arg(&obj)
        .status()
        .unwrap_or_else(|e| panic!("running {ar}: {e}"));
    assert!(st.success(), "{ar} failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=ckpt_thread_exit");
}
