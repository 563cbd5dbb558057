// libcriu's soname: programs linked against libcriu.so.2 and crun's dlopen("libcriu.so.2")
// find this library by that name when its directory comes first in the search path.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcriu.so.2");
    println!("cargo:rerun-if-changed=build.rs");
}
