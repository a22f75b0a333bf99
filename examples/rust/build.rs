// Finds the installed libflashport through pkg-config (or FLASHPORT_LIB_DIR) and links it with an rpath, so the
// example runs from any prefix without LD_LIBRARY_PATH.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLASHPORT_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let libdir = match std::env::var("FLASHPORT_LIB_DIR") {
        Ok(dir) => dir,
        Err(_) => {
            let output = Command::new("pkg-config")
                .args(["--variable=libdir", "flashport"])
                .output()
                .expect("running pkg-config (install it, or set FLASHPORT_LIB_DIR)");
            if !output.status.success() {
                panic!("pkg-config does not know flashport: set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig \
                        or FLASHPORT_LIB_DIR=<dir of libflashport.so>");
            }
            String::from_utf8(output.stdout).expect("pkg-config output").trim().to_string()
        }
    };
    println!("cargo:rustc-link-search=native={libdir}");
    println!("cargo:rustc-link-lib=dylib=flashport");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
}
