// The shared library carries its ABI version in its soname, so programs linked against it
// keep working across compatible releases and installs can keep several side by side.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libckpt.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
