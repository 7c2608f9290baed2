//! Compiles every `shaders/*.comp` to SPIR-V (Vulkan 1.1, optimised, warnings as errors, includes
//! from `shaders/common`) and reflects what the runtime must check on every dispatch: the
//! bindings (their names, and which are storage texel buffers with which texel format), the
//! push-constant block (member names, offsets and types) and the workgroup size. The results
//! are `$OUT_DIR/kernels.rs`, one `KernelSpec` constant per kernel and build plus a `kernels!`
//! invocation that gives the runtime one struct field per kernel, so a missing shader is a
//! compile error; and `$OUT_DIR/push.rs`, one `#[repr(C)]` struct per push block that the ops
//! fill by member name, tied to its kernels' fields so that a struct of another kernel is a
//! compile error too.
//!
//! Variants are tables here, not markers in the shaders: a shader named in [`OP_VARIANTS`] is
//! one kernel per operation it selects with a define; one named in [`FUSED_VARIANTS`] is its
//! plain kernel plus one kernel per fusion, selected the same way; a kernel whose reflection shows
//! texel-buffer bindings (through `shaders/common/io.glsl`) is built once per row of
//! [`IO_VARIANTS`], and the recorder picks the texel build where the device allows the views
//! and the storage-buffer build where it does not.
//!
//! Every kernel must fit the Vulkan 1.1 required minimums, checked here so that no device can
//! refuse one: at most 128 push-constant bytes, 128 invocations per workgroup (128 x 128 x 64
//! per axis) and 16 KB of shared memory.

use shaderc_link as _;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One build of a shader from the same source.
struct Variant {
    /// Appended to the constant's name.
    suffix: &'static str,
    /// What `KernelSpec::io` says of it.
    io: &'static str,
    defines: &'static [&'static str],
}

/// The I/O variants of every kernel that declares its tensors through io.glsl.
const IO_VARIANTS: [Variant; 2] = [
    Variant {
        suffix: "",
        io: "Texel",
        defines: &[],
    },
    Variant {
        suffix: "_STORAGE",
        io: "Storage",
        defines: &["IO_STORAGE"],
    },
];

/// Shaders built once per operation, each build the kernel `<shader>_<op>` with `OP_<OP>`
/// defined. The op picks the kernel, so no opcode travels in the push block, no invocation
/// branches on one, and no Rust enum mirrors the shader's numbering. The builds of a shader
/// share one push struct, `<Shader>Push`.
const OP_VARIANTS: &[(&str, &[&str])] = &[
    ("binary_vec4", &["add", "sub", "mul", "div"]),
    ("color_matrix", &["forward", "transpose"]),
    ("cyclic", &["sum", "sum_squares", "expand"]),
    ("unary", UNARY_OPS),
    ("unary_vec4", UNARY_OPS),
];

/// The functions of shaders/common/unary_f.glsl, built both by unary.comp and unary_vec4.comp.
const UNARY_OPS: &[&str] = &[
    "scale",
    "add_scalar",
    "square",
    "sqrt",
    "rsqrt",
    "leaky_relu",
];

/// Shaders built as themselves and also once per fusion, each fused build the kernel
/// `<shader>_<fusion>` with `FUSE_<FUSION>` defined: the fusion folds a neighbouring
/// elementwise op into the kernel's loads or stores, so that its operand is never written out.
/// A fused build may bind more tensors after the plain one's; list it in [`PUSH_FAMILIES`] with
/// the plain kernel where the op records both with the same push values.
/// - `conv2d_gemm_scaled`, `conv2d_wgrad_gemm_scaled`: the input multiplied by a per-(image,
///   channel) scale as it is loaded (`ops::conv2d_scaled` and its weight gradient, the style
///   modulation).
/// - `adam_scaled`, `adam_vec4_scaled`: the gradient times the clipping factor as it is loaded
///   (`ops::adam_step_scaled`).
/// - `sum_axes*_mul`: the sum of a product, its second factor loaded beside the first
///   (`ops::mul_sum_to`, a broadcast product's backward).
/// - `conv2d_*_lrelu`: a leaky ReLU on the convolution's stores (`ops::conv2d_lrelu`, the
///   discriminator's layers).
/// - `conv2d_gemm_style`: the scaled load and a style block's whole output stage (demodulation,
///   noise, bias, leaky ReLU) on the stores (`ops::style_conv`, the generator without
///   gradients).
const FUSED_VARIANTS: &[(&str, &[&str])] = &[
    ("adam", &["scaled"]),
    ("adam_vec4", &["scaled"]),
    ("conv2d_gemm", &["scaled", "lrelu", "style"]),
    ("conv2d_w2", &["lrelu"]),
    ("conv2d_w2k1", &["lrelu"]),
    ("conv2d_w4", &["lrelu"]),
    ("conv2d_w4k1", &["lrelu"]),
    ("conv2d_w8", &["lrelu"]),
    ("conv2d_w8k1", &["lrelu"]),
    ("conv2d_wino8", &["lrelu"]),
    ("conv2d_wgrad_gemm", &["scaled"]),
    ("sum_axes", &["mul"]),
    ("sum_axes_subgroup", &["mul"]),
    ("sum_axes_tree", &["mul"]),
];

/// Kernels that an op chooses among at run time with one set of push values, so they share one
/// push struct: (struct, kernels). The build fails when their push blocks differ, or when a
/// kernel named here does not exist. Every other kernel's struct is named after it
/// (`conv2d_wpack` -> `Conv2dWpackPush`).
const PUSH_FAMILIES: &[(&str, &[&str])] = &[
    ("EmaPush", &["ema", "ema_vec4"]),
    (
        "AdamPush",
        &["adam", "adam_scaled", "adam_vec4", "adam_vec4_scaled"],
    ),
    (
        "Conv2dPush",
        &[
            "conv2d_gemm",
            "conv2d_gemm_lrelu",
            "conv2d_gemm_scaled",
            "conv2d_gemm_style",
            "conv2d_w2",
            "conv2d_w2_lrelu",
            "conv2d_w2k1",
            "conv2d_w2k1_lrelu",
            "conv2d_w4",
            "conv2d_w4_lrelu",
            "conv2d_w4k1",
            "conv2d_w4k1_lrelu",
            "conv2d_w8",
            "conv2d_w8_lrelu",
            "conv2d_w8k1",
            "conv2d_w8k1_lrelu",
            "conv2d_wino8",
            "conv2d_wino8_lrelu",
        ],
    ),
    (
        "Conv2dWgradPush",
        &[
            "conv2d_wgrad1",
            "conv2d_wgrad3",
            "conv2d_wgrad3_w4",
            "conv2d_wgrad_gemm",
            "conv2d_wgrad_gemm_scaled",
            "conv2d_wgrad_wino",
        ],
    ),
    (
        "BitonicPush",
        &["bitonic_1", "bitonic_2", "bitonic_3", "bitonic_4"],
    ),
    (
        "AffineResamplePush",
        &["affine_resample", "affine_resample_adjoint"],
    ),
    (
        "ResamplePush",
        &[
            "downsample",
            "downsample_adjoint",
            "upsample",
            "upsample_adjoint",
        ],
    ),
    ("PyramidPush", &["pyr_down", "pyr_up_sub"]),
    ("LreluGradPush", &["lrelu_grad", "lrelu_grad_vec4"]),
    (
        "UnaryPush",
        &[
            "unary_scale",
            "unary_vec4_scale",
            "unary_add_scalar",
            "unary_vec4_add_scalar",
            "unary_square",
            "unary_vec4_square",
            "unary_sqrt",
            "unary_vec4_sqrt",
            "unary_rsqrt",
            "unary_vec4_rsqrt",
            "unary_leaky_relu",
            "unary_vec4_leaky_relu",
        ],
    ),
    ("MatmulSmallPush", &["matmul_small", "matmul_gemm"]),
    (
        "SumAxesPush",
        &[
            "sum_axes",
            "sum_axes_mul",
            "sum_axes_subgroup",
            "sum_axes_subgroup_mul",
            "sum_axes_tree",
            "sum_axes_tree_mul",
        ],
    ),
];

/// Shaders compiled without spirv-opt, every build of them: its loop unroller needs gigabytes of
/// memory on the register-blocked convolution kernels (figures in the README, How it works);
/// these leave `[[unroll]]` to the driver's compiler, which unrolls them the same.
const UNOPTIMIZED: &[&str] = &[
    "conv2d_w2",
    "conv2d_w2k1",
    "conv2d_w4",
    "conv2d_w4k1",
    "conv2d_w8",
    "conv2d_w8k1",
    "conv2d_wgrad1",
    "conv2d_wgrad3",
    "conv2d_wgrad3_w4",
    "conv2d_wgrad_wino",
    "conv2d_wino8",
];

/// The Vulkan 1.1 required minimums a kernel is held to.
const MAX_PUSH_BYTES: u32 = 128;
const MAX_INVOCATIONS: u32 = 128;
const MAX_LOCAL_SIZE: [u32; 3] = [128, 128, 64];
const MAX_SHARED_BYTES: u32 = 16384;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let shader_dir = root.join("shaders");
    let common_dir = shader_dir.join("common");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=shaders/common");
    for entry in std::fs::read_dir(&common_dir).expect("shaders/common directory") {
        println!("cargo:rerun-if-changed={}", entry.unwrap().path().display());
    }
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&shader_dir)
        .expect("shaders/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "comp"))
        .collect();
    sources.sort();

    let compiler = Compiler {
        inner: shaderc::Compiler::new().expect("shaderc compiler"),
        root: root.clone(),
        common: common_dir,
        out: out.clone(),
    };
    let mut failures = Vec::new();
    let mut kernels = Vec::new();
    for path in &sources {
        println!("cargo:rerun-if-changed={}", path.display());
        match compiler.kernels(path) {
            Ok(k) => kernels.extend(k),
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        match generate(&kernels) {
            Ok((specs, push)) => {
                write_if_changed(&out.join("kernels.rs"), &specs);
                write_if_changed(&out.join("push.rs"), &push);
                return;
            }
            Err(e) => failures.push(e),
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    println!(
        "cargo:warning={} shader(s) failed to build; see the messages above",
        failures.len()
    );
    std::process::exit(1);
}

/// The text of kernels.rs and of push.rs.
fn generate(kernels: &[CompiledKernel]) -> Result<(String, String), String> {
    let types = push_types(kernels)?;
    let mut specs = String::new();
    let mut fields = String::new();
    for (k, ty) in kernels.iter().zip(&types) {
        specs.push_str(&k.specs);
        writeln!(
            fields,
            "    {} => {}: super::push::{ty},",
            k.name,
            k.name.to_uppercase()
        )
        .unwrap();
    }
    let mut push = String::new();
    let mut done = Vec::new();
    for (k, ty) in kernels.iter().zip(&types) {
        let Some(layout) = &k.push else { continue };
        if done.contains(ty) {
            continue;
        }
        done.push(ty.clone());
        let users: Vec<&str> = kernels
            .iter()
            .zip(&types)
            .filter(|(_, t)| *t == ty)
            .map(|(k, _)| k.name.as_str())
            .collect();
        push.push_str(&push_struct(ty, &users, layout));
    }
    Ok((format!("{specs}\nkernels! {{\n{fields}}}\n"), push))
}

/// Each kernel's push struct (see [`PUSH_FAMILIES`]), checking that the kernels sharing one
/// declare the same block.
fn push_types(kernels: &[CompiledKernel]) -> Result<Vec<String>, String> {
    for (family, members) in PUSH_FAMILIES {
        if let Some(missing) = members
            .iter()
            .find(|m| !kernels.iter().any(|k| k.name == **m))
        {
            return Err(format!(
                "build.rs: PUSH_FAMILIES names kernel {missing} for {family}, but there is none"
            ));
        }
    }
    let types: Vec<String> = kernels
        .iter()
        .map(|k| {
            if k.push.is_none() {
                return "NoPush".to_string();
            }
            let family = PUSH_FAMILIES
                .iter()
                .find(|(_, members)| members.contains(&k.name.as_str()));
            match family {
                Some((family, _)) => family.to_string(),
                None => format!("{}Push", camel_case(&k.shader)),
            }
        })
        .collect();
    for (i, a) in kernels.iter().enumerate() {
        let differs = (0..i).find(|&j| types[j] == types[i] && kernels[j].push != a.push);
        if let Some(j) = differs {
            return Err(format!(
                "kernels {} and {} share the push struct {} but declare different push blocks",
                kernels[j].name, a.name, types[i]
            ));
        }
    }
    Ok(types)
}

/// `conv2d_wgrad3_t4` -> `Conv2dWgrad3T4`.
fn camel_case(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Rust's strict and reserved keywords that could be a GLSL member name.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual",
    "where", "while", "yield",
];

fn field_name(member: &str) -> String {
    if RUST_KEYWORDS.contains(&member) {
        format!("r#{member}")
    } else {
        member.to_string()
    }
}

/// The struct of one push block: a field per member, in offset order, named as in the shader
/// (hence `non_snake_case`: `O4`, `HO`), and the `PushBlock` impl that lays the fields out at
/// their reflected offsets.
fn push_struct(ty: &str, users: &[&str], layout: &PushLayout) -> String {
    let kernels: Vec<String> = users.iter().map(|u| format!("`{u}`")).collect();
    let mut fields = String::new();
    let mut places = String::new();
    for m in &layout.members {
        let name = field_name(&m.name);
        let word = m.offset / 4;
        match m.len {
            None => {
                writeln!(fields, "    pub {name}: {},", m.kind).unwrap();
                writeln!(places, "        w[{word}] = self.{name}.0;").unwrap();
            }
            Some(len) => {
                writeln!(fields, "    pub {name}: [{}; {len}],", m.kind).unwrap();
                let end = word + len;
                writeln!(
                    places,
                    "        w[{word}..{end}].copy_from_slice(&self.{name}.map(|v| v.0));"
                )
                .unwrap();
            }
        }
    }
    let words = layout.bytes / 4;
    format!(
        "/// The push block of {}, member for member.\n\
         #[allow(non_snake_case)]\n\
         #[derive(Clone, Copy, Debug)]\n\
         pub struct {ty} {{\n{fields}}}\n\n\
         impl PushBlock for {ty} {{\n    \
             const BYTES: u32 = {};\n\n    \
             fn words(&self) -> Vec<Word> {{\n        \
                 let mut w = vec![Word::Lit(0); {words}];\n{places}        w\n    }}\n}}\n\n",
        kernels.join(", "),
        layout.bytes,
    )
}

/// A shader source file.
struct Source<'a> {
    /// The file's stem.
    shader: &'a str,
    /// Its path for messages.
    display: &'a str,
    text: &'a str,
    /// Its own `#define NAME <integer>` lines (not those of its includes), for
    /// `KernelSpec::define`: the ops size their dispatch grids by a kernel's tile defines, so
    /// the numbers are written once, in the shader.
    defines: Vec<(String, u32)>,
}

/// The `#define NAME <decimal integer>` lines of a shader's own text. A name defined twice
/// (say in two `#if` branches) is an error: this reads the text, not the preprocessed
/// source, so it cannot tell which definition a build takes.
fn integer_defines(source: &Source) -> Result<Vec<(String, u32)>, String> {
    let mut defines: Vec<(String, u32)> = Vec::new();
    for line in source.text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let (Some(name), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        if words.next().is_some_and(|w| !w.starts_with("//")) {
            continue;
        }
        let Ok(value) = value.parse() else {
            continue;
        };
        if defines.iter().any(|(n, _)| n == name) {
            return Err(format!(
                "{}: `#define {name}` appears twice; KernelSpec::define needs one value",
                source.display
            ));
        }
        defines.push((name.to_string(), value));
    }
    Ok(defines)
}

struct Compiler {
    inner: shaderc::Compiler,
    root: PathBuf,
    common: PathBuf,
    out: PathBuf,
}

/// A compiled kernel: its field name, the shader it is built from, its push block and the Rust
/// constants of its builds.
struct CompiledKernel {
    name: String,
    shader: String,
    push: Option<PushLayout>,
    specs: String,
}

impl Compiler {
    /// The kernels of one shader: one per operation where [`OP_VARIANTS`] lists it, else the
    /// plain one and one per fusion [`FUSED_VARIANTS`] lists.
    fn kernels(&self, path: &Path) -> Result<Vec<CompiledKernel>, String> {
        let shader = path.file_stem().unwrap().to_str().unwrap().to_string();
        let display = path
            .strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string();
        if !shader
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!("{display}: shader names must be lower_snake_case"));
        }
        let source = std::fs::read_to_string(path).unwrap();
        let mut source = Source {
            shader: &shader,
            display: &display,
            text: &source,
            defines: Vec::new(),
        };
        source.defines = integer_defines(&source)?;
        let listed = |table: &[(&str, &'static [&'static str])]| {
            table.iter().find(|(s, _)| *s == shader).map(|&(_, v)| v)
        };
        if let Some(ops) = listed(OP_VARIANTS) {
            return ops
                .iter()
                .map(|op| self.kernel(&source, Some((op, "OP"))))
                .collect();
        }
        let fusions = listed(FUSED_VARIANTS).unwrap_or(&[]);
        let mut kernels = vec![self.kernel(&source, None)?];
        for fusion in fusions {
            kernels.push(self.kernel(&source, Some((fusion, "FUSE")))?);
        }
        Ok(kernels)
    }

    /// One kernel with its I/O builds: the storage build too where the default one binds texel
    /// buffers. `select` is (name, prefix) of a build that defines `<PREFIX>_<NAME>` and is
    /// named `<shader>_<name>`.
    fn kernel(
        &self,
        source: &Source,
        select: Option<(&str, &str)>,
    ) -> Result<CompiledKernel, String> {
        let display = source.display;
        let name = match select {
            Some((build, _)) => format!("{}_{build}", source.shader),
            None => source.shader.to_string(),
        };
        let op_define = select.map(|(build, prefix)| format!("{prefix}_{}", build.to_uppercase()));
        let build = |variant| self.variant(&name, source, op_define.as_deref(), variant);
        let constant = name.to_uppercase();
        let (plain, plain_spec) = build(&IO_VARIANTS[0])?;
        let mut kernel = CompiledKernel {
            name: name.clone(),
            shader: source.shader.to_string(),
            push: plain.push.clone(),
            specs: String::new(),
        };
        if plain.texels.is_empty() {
            kernel.specs = spec_constant(
                &constant,
                &name,
                "Texel",
                &plain_spec,
                &plain,
                &source.defines,
                None,
            );
            return Ok(kernel);
        }
        let storage_variant = &IO_VARIANTS[1];
        let (storage, storage_spec) = build(storage_variant)?;
        if !storage.texels.is_empty() || storage.bindings != plain.bindings {
            return Err(format!(
                "{display}: its {} build still binds texel buffers or has other bindings; \
                 declare tensors through io.glsl's IN_/OUT_/INOUT_ macros only",
                storage_variant.io
            ));
        }
        // Both builds are one `Kernel` with one push struct: the blocks must be the same,
        // member for member.
        if storage.local_size != plain.local_size || storage.push != plain.push {
            return Err(format!(
                "{display}: its variants differ in workgroup size or push-constant block"
            ));
        }
        let storage_constant = format!("{constant}{}", storage_variant.suffix);
        kernel.specs = spec_constant(
            &storage_constant,
            &name,
            storage_variant.io,
            &storage_spec,
            &storage,
            &source.defines,
            None,
        );
        kernel.specs.push_str(&spec_constant(
            &constant,
            &name,
            IO_VARIANTS[0].io,
            &plain_spec,
            &plain,
            &source.defines,
            Some(&storage_constant),
        ));
        Ok(kernel)
    }

    /// Compiles one build, checks it against the device minimums and writes its SPIR-V.
    fn variant(
        &self,
        name: &str,
        source: &Source,
        op_define: Option<&str>,
        variant: &Variant,
    ) -> Result<(Reflection, PathBuf), String> {
        let label = if name == source.shader {
            source.display.to_string()
        } else {
            format!("{} as {name}", source.display)
        };
        let display = label.as_str();
        let mut options = shaderc::CompileOptions::new().unwrap();
        options.set_target_env(
            shaderc::TargetEnv::Vulkan,
            shaderc::EnvVersion::Vulkan1_1 as u32,
        );
        options.set_optimization_level(if UNOPTIMIZED.contains(&source.shader) {
            shaderc::OptimizationLevel::Zero
        } else {
            shaderc::OptimizationLevel::Performance
        });
        options.set_warnings_as_errors();
        // Keeps OpName and OpMemberName through spirv-opt: errors name a binding's tensor, and
        // the push structs take the members' names.
        options.set_generate_debug_info();
        for define in variant.defines.iter().copied().chain(op_define) {
            options.add_macro_definition(define, Some("1"));
        }
        let common = self.common.clone();
        options.set_include_callback(move |requested, _kind, _from, _depth| {
            let file = common.join(requested);
            std::fs::read_to_string(&file)
                .map(|content| shaderc::ResolvedInclude {
                    resolved_name: file.display().to_string(),
                    content,
                })
                .map_err(|e| format!("cannot include {requested}: {e}"))
        });
        let artifact = self
            .inner
            .compile_into_spirv(
                source.text,
                shaderc::ShaderKind::Compute,
                source.display,
                "main",
                Some(&options),
            )
            .map_err(|e| e.to_string())?;
        let reflection = reflect(artifact.as_binary()).map_err(|e| format!("{display}: {e}"))?;
        reflection
            .check_minimums()
            .map_err(|e| format!("{display} ({} I/O): {e}", variant.io))?;
        let spv = self
            .out
            .join(format!("{name}{}.spv", variant.suffix.to_lowercase()));
        std::fs::write(&spv, artifact.as_binary_u8()).unwrap();
        Ok((reflection, spv))
    }
}

fn spec_constant(
    constant: &str,
    name: &str,
    io: &str,
    spv: &Path,
    r: &Reflection,
    defines: &[(String, u32)],
    storage: Option<&str>,
) -> String {
    let storage = match storage {
        Some(s) => format!("Some(&{s})"),
        None => "None".into(),
    };
    format!(
        "pub const {constant}: KernelSpec = KernelSpec {{ name: {name:?}, io: Io::{io}, \
         spirv: include_bytes!({spv:?}), bindings: {}, binding_names: &{:?}, texels: &{:?}, \
         push_bytes: {}, local_size: {:?}, shared_bytes: {}, defines: &{:?}, \
         storage: {storage} }};\n",
        r.bindings,
        r.binding_names,
        r.texels,
        r.push_bytes,
        r.local_size,
        r.shared_bytes,
        defines,
        spv = spv.display().to_string(),
    )
}

fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
}

struct Reflection {
    bindings: u32,
    /// The tensor each binding holds, by binding: the texel buffer's variable or the storage
    /// block's first member.
    binding_names: Vec<String>,
    /// (binding, 1 for one float per texel or 4 for four) of each storage texel buffer.
    texels: Vec<(u32, u32)>,
    push_bytes: u32,
    push: Option<PushLayout>,
    local_size: [u32; 3],
    shared_bytes: u32,
}

/// A push-constant block as the shader declares it.
#[derive(Clone, Debug, PartialEq)]
struct PushLayout {
    bytes: u32,
    /// In offset order.
    members: Vec<PushMember>,
}

#[derive(Clone, Debug, PartialEq)]
struct PushMember {
    name: String,
    /// Bytes from the block's start.
    offset: u32,
    /// The Rust type of one element: `U32`, `I32` or `F32`.
    kind: &'static str,
    /// The length of an array member.
    len: Option<u32>,
}

impl Reflection {
    fn check_minimums(&self) -> Result<(), String> {
        let [x, y, z] = self.local_size;
        if x * y * z > MAX_INVOCATIONS || (0..3).any(|a| self.local_size[a] > MAX_LOCAL_SIZE[a]) {
            return Err(format!(
                "workgroup {x}x{y}x{z} is past the Vulkan 1.1 minimum of {MAX_INVOCATIONS} \
                 invocations ({:?} per axis)",
                MAX_LOCAL_SIZE
            ));
        }
        if self.push_bytes > MAX_PUSH_BYTES {
            return Err(format!(
                "{} push-constant bytes are past the Vulkan 1.1 minimum of {MAX_PUSH_BYTES}",
                self.push_bytes
            ));
        }
        if self.shared_bytes > MAX_SHARED_BYTES {
            return Err(format!(
                "{} bytes of shared memory are past the Vulkan 1.1 minimum of {MAX_SHARED_BYTES}",
                self.shared_bytes
            ));
        }
        Ok(())
    }
}

const OP_NAME: u32 = 5;
const OP_MEMBER_NAME: u32 = 6;
const OP_EXECUTION_MODE: u32 = 16;
const OP_TYPE_INT: u32 = 21;
const OP_TYPE_FLOAT: u32 = 22;
const OP_TYPE_VECTOR: u32 = 23;
const OP_TYPE_IMAGE: u32 = 25;
const OP_TYPE_ARRAY: u32 = 28;
const OP_TYPE_STRUCT: u32 = 30;
const OP_TYPE_POINTER: u32 = 32;
const OP_CONSTANT: u32 = 43;
const OP_VARIABLE: u32 = 59;
const OP_DECORATE: u32 = 71;
const OP_MEMBER_DECORATE: u32 = 72;
const MODE_LOCAL_SIZE: u32 = 17;
const DIM_BUFFER: u32 = 5;
const FORMAT_RGBA32F: u32 = 1;
const FORMAT_R32F: u32 = 3;
const DECORATION_ARRAY_STRIDE: u32 = 6;
const DECORATION_BINDING: u32 = 33;
const DECORATION_SET: u32 = 34;
const DECORATION_OFFSET: u32 = 35;
const STORAGE_WORKGROUP: u32 = 4;
const STORAGE_PUSH_CONSTANT: u32 = 9;

/// The SPIR-V declarations reflection needs, by result id.
#[derive(Default)]
struct Module {
    local_size: Option<[u32; 3]>,
    names: HashMap<u32, String>,
    member_names: HashMap<(u32, u32), String>,
    scalar_bytes: HashMap<u32, u32>,
    /// 32-bit scalar type -> its push struct field type.
    scalar_kinds: HashMap<u32, &'static str>,
    vectors: HashMap<u32, (u32, u32)>,
    structs: HashMap<u32, Vec<u32>>,
    /// Array type -> (element type, length constant).
    arrays: HashMap<u32, (u32, u32)>,
    array_strides: HashMap<u32, u32>,
    constants: HashMap<u32, u32>,
    offsets: HashMap<(u32, u32), u32>,
    /// Pointer type -> pointee type.
    pointers: HashMap<u32, u32>,
    /// Image type -> floats per texel, for storage texel buffers.
    texel_images: HashMap<u32, Result<u32, String>>,
    /// Variable -> (pointer type, storage class).
    variables: HashMap<u32, (u32, u32)>,
    /// (variable, binding) and (variable, set) decorations.
    binding_of: Vec<(u32, u32)>,
    set_of: Vec<(u32, u32)>,
}

/// A NUL-terminated SPIR-V literal string.
fn literal(words: &[u32]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Module {
    fn parse(words: &[u32]) -> Result<Module, String> {
        let mut m = Module::default();
        let mut i = 5;
        while i < words.len() {
            let count = (words[i] >> 16) as usize;
            let op = words[i] & 0xffff;
            if count == 0 || i + count > words.len() {
                return Err("malformed SPIR-V".into());
            }
            m.record(op, &words[i + 1..i + count]);
            i += count;
        }
        Ok(m)
    }

    fn record(&mut self, op: u32, args: &[u32]) {
        match op {
            OP_NAME => {
                self.names.insert(args[0], literal(&args[1..]));
            }
            OP_MEMBER_NAME => {
                self.member_names
                    .insert((args[0], args[1]), literal(&args[2..]));
            }
            OP_EXECUTION_MODE if args[1] == MODE_LOCAL_SIZE => {
                self.local_size = Some([args[2], args[3], args[4]])
            }
            OP_TYPE_INT | OP_TYPE_FLOAT => {
                self.scalar_bytes.insert(args[0], args[1] / 8);
                let kind = match (op, args.get(2)) {
                    (OP_TYPE_FLOAT, _) => "F32",
                    (_, Some(&1)) => "I32",
                    _ => "U32",
                };
                if args[1] == 32 {
                    self.scalar_kinds.insert(args[0], kind);
                }
            }
            OP_TYPE_VECTOR => {
                self.vectors.insert(args[0], (args[1], args[2]));
            }
            OP_TYPE_STRUCT => {
                self.structs.insert(args[0], args[1..].to_vec());
            }
            OP_TYPE_ARRAY => {
                self.arrays.insert(args[0], (args[1], args[2]));
            }
            OP_CONSTANT => {
                self.constants.insert(args[1], args[2]);
            }
            OP_DECORATE if args[1] == DECORATION_ARRAY_STRIDE => {
                self.array_strides.insert(args[0], args[2]);
            }
            OP_DECORATE if args[1] == DECORATION_BINDING => {
                self.binding_of.push((args[0], args[2]))
            }
            OP_DECORATE if args[1] == DECORATION_SET => self.set_of.push((args[0], args[2])),
            OP_MEMBER_DECORATE if args[2] == DECORATION_OFFSET => {
                self.offsets.insert((args[0], args[1]), args[3]);
            }
            OP_TYPE_POINTER => {
                self.pointers.insert(args[0], args[2]);
            }
            OP_TYPE_IMAGE if args[2] == DIM_BUFFER => {
                let floats = match (args[6], args[7]) {
                    (2, FORMAT_R32F) => Ok(1),
                    (2, FORMAT_RGBA32F) => Ok(4),
                    _ => {
                        Err("texel buffers must be storage images of format r32f or rgba32f".into())
                    }
                };
                self.texel_images.insert(args[0], floats);
            }
            OP_VARIABLE => {
                self.variables.insert(args[1], (args[0], args[2]));
            }
            _ => {}
        }
    }

    /// The members of push block `block`: 32-bit scalars or arrays of them, each named.
    fn push_layout(&self, block: u32) -> Result<PushLayout, String> {
        const SHAPES: &str = "push-constant members must be 32-bit scalars or arrays of them";
        let types = self.structs.get(&block).ok_or(SHAPES)?;
        let mut members = Vec::new();
        for (k, &ty) in types.iter().enumerate() {
            let k = k as u32;
            let name = self
                .member_names
                .get(&(block, k))
                .ok_or_else(|| format!("push-constant member {k} has no name"))?;
            let offset = *self
                .offsets
                .get(&(block, k))
                .ok_or_else(|| format!("push-constant member {name} has no offset"))?;
            let (kind, len) = match self.arrays.get(&ty) {
                Some(&(element, length)) if self.array_strides.get(&ty) == Some(&4) => (
                    self.scalar_kinds.get(&element),
                    Some(self.constants[&length]),
                ),
                Some(_) => (None, None),
                None => (self.scalar_kinds.get(&ty), None),
            };
            let kind = *kind.ok_or_else(|| format!("{name}: {SHAPES}"))?;
            if offset % 4 != 0 {
                return Err(format!("push-constant member {name} is not 4-byte aligned"));
            }
            members.push(PushMember {
                name: name.clone(),
                offset,
                kind,
                len,
            });
        }
        members.sort_by_key(|m| m.offset);
        Ok(PushLayout {
            bytes: self.size_of(block)?,
            members,
        })
    }

    /// Bytes of a type as laid out in memory: explicit strides and offsets where the type has
    /// them, tight packing otherwise (shared memory carries no layout decorations).
    fn size_of(&self, ty: u32) -> Result<u32, String> {
        if let Some(&s) = self.scalar_bytes.get(&ty) {
            Ok(s)
        } else if let Some(&(c, n)) = self.vectors.get(&ty) {
            Ok(self.size_of(c)? * n)
        } else if let Some(&(element, length)) = self.arrays.get(&ty) {
            let stride = match self.array_strides.get(&ty) {
                Some(&s) => s,
                None => self.size_of(element)?,
            };
            Ok(self.constants[&length] * stride)
        } else if let Some(members) = self.structs.get(&ty) {
            let mut end = 0;
            let mut packed = 0;
            for (k, &member) in members.iter().enumerate() {
                let size = self.size_of(member)?;
                packed += size;
                if let Some(&offset) = self.offsets.get(&(ty, k as u32)) {
                    end = end.max(offset + size);
                }
            }
            Ok(end.max(packed))
        } else {
            Err(
                "push constants and shared memory must be scalars, vectors, arrays or structs"
                    .into(),
            )
        }
    }
}

/// Reads the few facts the runtime checks out of a SPIR-V module.
fn reflect(words: &[u32]) -> Result<Reflection, String> {
    let m = Module::parse(words)?;
    if m.set_of.iter().any(|&(_, s)| s != 0) {
        return Err("every binding must be in descriptor set 0".into());
    }
    let mut bound: Vec<(u32, u32)> = m.binding_of.iter().map(|&(v, b)| (b, v)).collect();
    bound.sort_unstable();
    if bound.iter().enumerate().any(|(k, &(b, _))| b != k as u32) {
        let found: Vec<u32> = bound.iter().map(|&(b, _)| b).collect();
        return Err(format!(
            "bindings must be 0..n without gaps, found {found:?}"
        ));
    }
    let mut texels = Vec::new();
    let mut binding_names = Vec::new();
    for &(binding, variable) in &bound {
        let pointee = m.variables.get(&variable).map(|&(ty, _)| m.pointers[&ty]);
        let floats = pointee.and_then(|ty| m.texel_images.get(&ty));
        if let Some(floats) = floats {
            texels.push((binding, floats.clone()?));
        }
        // A texel buffer is named by its variable, a storage block by its first member.
        let name = match (floats, pointee) {
            (None, Some(block)) => m.member_names.get(&(block, 0)),
            _ => m.names.get(&variable),
        };
        binding_names.push(
            name.cloned()
                .unwrap_or_else(|| format!("binding {binding}")),
        );
    }
    let local_size = m.local_size.ok_or("no local_size declared")?;
    let mut push = None;
    let mut shared_bytes = 0;
    for &(ty, class) in m.variables.values() {
        match class {
            STORAGE_PUSH_CONSTANT => push = Some(m.push_layout(m.pointers[&ty])?),
            STORAGE_WORKGROUP => shared_bytes += m.size_of(m.pointers[&ty])?,
            _ => {}
        }
    }
    Ok(Reflection {
        bindings: bound.len() as u32,
        binding_names,
        texels,
        push_bytes: push.as_ref().map_or(0, |p: &PushLayout| p.bytes),
        push,
        local_size,
        shared_bytes,
    })
}
