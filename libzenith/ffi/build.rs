//! Gives the shared library its soname, so programs linked against `libzenith.so` record
//! `libzenith.so.<major>` and keep working across compatible upgrades.

fn main() {
    let major =
        std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzenith.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
