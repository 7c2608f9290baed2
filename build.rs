//! Compiles every `shaders/*.comp` to SPIR-V (Vulkan 1.1, optimised, warnings as errors, includes
//! from `shaders/common`) and reflects what the runtime must check on every dispatch: the number
//! of bindings and which of them are read-only texel buffers (with their texel format), the
//! push-constant size and the workgroup size. The result is
//! `$OUT_DIR/kernels.rs`, one `KernelSpec` constant per shader plus a `kernels!` invocation that
//! gives the runtime one struct field per shader, so a missing shader is a compile error.

use shaderc_link as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let shader_dir = root.join("shaders");
    let common_dir = shader_dir.join("common");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=shaders/common");

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&shader_dir)
        .expect("shaders/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "comp"))
        .collect();
    sources.sort();
    for entry in std::fs::read_dir(&common_dir).expect("shaders/common directory") {
        println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
    }

    let compiler = shaderc::Compiler::new().expect("shaderc compiler");
    let mut failures = Vec::new();
    let mut specs = String::new();
    let mut fields = String::new();
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            failures.push(format!(
                "{}: shader names must be lower_snake_case",
                path.display()
            ));
            continue;
        }
        let source = std::fs::read_to_string(path).unwrap();
        let mut options = shaderc::CompileOptions::new().unwrap();
        options.set_target_env(
            shaderc::TargetEnv::Vulkan,
            shaderc::EnvVersion::Vulkan1_1 as u32,
        );
        // spirv-opt's unroller needs GBs of memory on the register-blocked convolution kernels
        // (13.8 GB peak for the whole build script with it, 0.5 GB without); those ask for no
        // optimization and leave [[unroll]] to the driver's compiler, which unrolls them the
        // same (step time unchanged on llvmpipe).
        options.set_optimization_level(if source.contains("// spirv-opt: none") {
            shaderc::OptimizationLevel::Zero
        } else {
            shaderc::OptimizationLevel::Performance
        });
        options.set_warnings_as_errors();
        let common = common_dir.clone();
        options.set_include_callback(move |requested, _kind, _from, _depth| {
            let file = common.join(requested);
            std::fs::read_to_string(&file)
                .map(|content| shaderc::ResolvedInclude {
                    resolved_name: file.display().to_string(),
                    content,
                })
                .map_err(|e| format!("cannot include {requested}: {e}"))
        });
        let display = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        let artifact = match compiler.compile_into_spirv(
            &source,
            shaderc::ShaderKind::Compute,
            &display,
            "main",
            Some(&options),
        ) {
            Ok(a) => a,
            Err(e) => {
                failures.push(e.to_string());
                continue;
            }
        };
        let words = artifact.as_binary();
        let reflection = match reflect(words) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{display}: {e}"));
                continue;
            }
        };
        let spv = out.join(format!("{name}.spv"));
        std::fs::write(&spv, artifact.as_binary_u8()).unwrap();
        let constant = name.to_uppercase();
        writeln!(
            specs,
            "pub const {constant}: KernelSpec = KernelSpec {{ name: {name:?}, spirv: include_bytes!({spv:?}), \
             bindings: {}, texels: &{:?}, push_bytes: {}, local_size: {:?} }};",
            reflection.bindings,
            reflection.texels,
            reflection.push_bytes,
            reflection.local_size,
            spv = spv.display().to_string(),
        )
        .unwrap();
        writeln!(fields, "    {name} => {constant},").unwrap();
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("{f}");
        }
        println!(
            "cargo:warning={} shader(s) failed to compile; see the messages above",
            failures.len()
        );
        std::process::exit(1);
    }
    let generated = format!("{specs}\nkernels! {{\n{fields}}}\n");
    write_if_changed(&out.join("kernels.rs"), &generated);
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

struct Reflection {
    bindings: u32,
    /// (binding, 1 for one float per texel or 4 for four) of each storage texel buffer.
    texels: Vec<(u32, u32)>,
    push_bytes: u32,
    local_size: [u32; 3],
}

/// Reads the few facts the runtime checks out of a SPIR-V module.
fn reflect(words: &[u32]) -> Result<Reflection, String> {
    const OP_EXECUTION_MODE: u32 = 16;
    const OP_TYPE_INT: u32 = 21;
    const OP_TYPE_FLOAT: u32 = 22;
    const OP_TYPE_VECTOR: u32 = 23;
    const OP_TYPE_ARRAY: u32 = 28;
    const OP_TYPE_IMAGE: u32 = 25;
    const DIM_BUFFER: u32 = 5;
    const FORMAT_RGBA32F: u32 = 1;
    const FORMAT_R32F: u32 = 3;
    const OP_TYPE_STRUCT: u32 = 30;
    const OP_CONSTANT: u32 = 43;
    const OP_TYPE_POINTER: u32 = 32;
    const OP_VARIABLE: u32 = 59;
    const OP_DECORATE: u32 = 71;
    const OP_MEMBER_DECORATE: u32 = 72;
    const MODE_LOCAL_SIZE: u32 = 17;
    const DECORATION_BINDING: u32 = 33;
    const DECORATION_SET: u32 = 34;
    const DECORATION_OFFSET: u32 = 35;
    const DECORATION_ARRAY_STRIDE: u32 = 6;
    const STORAGE_PUSH_CONSTANT: u32 = 9;

    use std::collections::HashMap;
    let mut bindings = Vec::new();
    let mut sets = Vec::new();
    let mut local_size = None;
    let mut scalar_bytes: HashMap<u32, u32> = HashMap::new();
    let mut vectors: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut structs: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut arrays: HashMap<u32, u32> = HashMap::new();
    let mut array_strides: HashMap<u32, u32> = HashMap::new();
    let mut constants: HashMap<u32, u32> = HashMap::new();
    let mut offsets: HashMap<(u32, u32), u32> = HashMap::new();
    let mut pointers: HashMap<u32, u32> = HashMap::new();
    let mut push_pointer = None;
    // Image type id -> floats per texel, for storage texel buffers.
    let mut texel_images: HashMap<u32, Result<u32, String>> = HashMap::new();
    // Variable id -> its pointer type id; binding decorations by variable.
    let mut variables: HashMap<u32, u32> = HashMap::new();
    let mut binding_of: Vec<(u32, u32)> = Vec::new();
    let mut i = 5;
    while i < words.len() {
        let count = (words[i] >> 16) as usize;
        let op = words[i] & 0xffff;
        if count == 0 || i + count > words.len() {
            return Err("malformed SPIR-V".into());
        }
        let args = &words[i + 1..i + count];
        match op {
            OP_EXECUTION_MODE if args[1] == MODE_LOCAL_SIZE => {
                local_size = Some([args[2], args[3], args[4]])
            }
            OP_TYPE_INT | OP_TYPE_FLOAT => {
                scalar_bytes.insert(args[0], args[1] / 8);
            }
            OP_TYPE_VECTOR => {
                vectors.insert(args[0], (args[1], args[2]));
            }
            OP_TYPE_STRUCT => {
                structs.insert(args[0], args[1..].to_vec());
            }
            OP_TYPE_ARRAY => {
                arrays.insert(args[0], args[2]);
            }
            OP_CONSTANT => {
                constants.insert(args[1], args[2]);
            }
            OP_DECORATE if args[1] == DECORATION_ARRAY_STRIDE => {
                array_strides.insert(args[0], args[2]);
            }
            OP_TYPE_POINTER => {
                pointers.insert(args[0], args[2]);
            }
            OP_TYPE_IMAGE if args[2] == DIM_BUFFER => {
                let floats = match (args[6], args[7]) {
                    (2, FORMAT_R32F) => Ok(1),
                    (2, FORMAT_RGBA32F) => Ok(4),
                    _ => {
                        Err("texel buffers must be storage images of format r32f or rgba32f".into())
                    }
                };
                texel_images.insert(args[0], floats);
            }
            OP_VARIABLE if args[2] == STORAGE_PUSH_CONSTANT => push_pointer = Some(args[0]),
            OP_VARIABLE => {
                variables.insert(args[1], args[0]);
            }
            OP_DECORATE if args[1] == DECORATION_BINDING => {
                bindings.push(args[2]);
                binding_of.push((args[0], args[2]));
            }
            OP_DECORATE if args[1] == DECORATION_SET => sets.push(args[2]),
            OP_MEMBER_DECORATE if args[2] == DECORATION_OFFSET => {
                offsets.insert((args[0], args[1]), args[3]);
            }
            _ => {}
        }
        i += count;
    }
    if sets.iter().any(|&s| s != 0) {
        return Err("every binding must be in descriptor set 0".into());
    }
    bindings.sort_unstable();
    if bindings.iter().enumerate().any(|(k, &b)| b != k as u32) {
        return Err(format!(
            "bindings must be 0..n without gaps, found {bindings:?}"
        ));
    }
    let mut texels = Vec::new();
    for &(variable, binding) in &binding_of {
        let pointee = variables.get(&variable).and_then(|ty| pointers.get(ty));
        if let Some(floats) = pointee.and_then(|ty| texel_images.get(ty)) {
            texels.push((binding, floats.clone()?));
        }
    }
    texels.sort_unstable();
    let local_size = local_size.ok_or("no local_size declared")?;
    let mut push_bytes = 0;
    if let Some(pointer) = push_pointer {
        let block = pointers[&pointer];
        let members = structs
            .get(&block)
            .ok_or("push constants must be a block")?;
        for (m, ty) in members.iter().enumerate() {
            let size = if let Some(&s) = scalar_bytes.get(ty) {
                s
            } else if let Some(&(c, n)) = vectors.get(ty) {
                scalar_bytes[&c] * n
            } else if let Some(length) = arrays.get(ty) {
                constants[length] * array_strides[ty]
            } else {
                return Err("push-constant members must be scalars, vectors or arrays".into());
            };
            push_bytes = push_bytes.max(offsets[&(block, m as u32)] + size);
        }
    }
    Ok(Reflection {
        bindings: bindings.len() as u32,
        texels,
        push_bytes,
        local_size,
    })
}
