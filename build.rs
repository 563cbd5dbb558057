// The shared library carries its ABI version in its soname, so programs linked against it
// keep working across compatible releases and installs can keep several side by side.
// Only with the C API: cargo hands a dependency's cdylib link args to the cdylibs that depend
// on it, and libcriu.so.2 (built on this crate without `capi`) must keep its own soname.
fn main() {
    if std::env::var_os("CARGO_FEATURE_CAPI").is_some() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libckpt.so.0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
