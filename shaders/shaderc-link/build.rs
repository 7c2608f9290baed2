//! Debian's `libshaderc_combined.a` lacks glslang, and `libshaderc.so` leaves glslang symbols
//! undefined; linking glslang's static libraries after it resolves them. A crate cannot add link
//! libraries to its own build script, but a build-dependency's directives do reach it.

use std::path::Path;

const GLSLANG_LIBS: &[&str] = &[
    "glslang",
    "MachineIndependent",
    "GenericCodeGen",
    "OSDependent",
    "OGLCompiler",
    "HLSL",
    "SPIRV",
    "SPIRV-Tools-opt",
    "SPIRV-Tools",
    "glslang-default-resource-limits",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let triple = format!("{arch}-{os}-gnu");
    for dir in [format!("/usr/lib/{triple}"), "/usr/lib".to_string(), "/usr/local/lib".to_string()] {
        let dir = Path::new(&dir);
        if !dir.join("libglslang.a").exists() {
            continue;
        }
        println!("cargo:rustc-link-search=native={}", dir.display());
        for lib in GLSLANG_LIBS {
            if dir.join(format!("lib{lib}.a")).exists() {
                println!("cargo:rustc-link-lib=static={lib}");
            }
        }
        return;
    }
}
