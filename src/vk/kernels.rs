//! Compute kernels: one per `shaders/*.comp`, compiled by build.rs, turned into a pipeline the
//! first time a context dispatches it (so a test that uses two kernels does not pay for sixty).
//! A kernel that moves its tensors through texel buffers also has a storage-buffer build of
//! the same source (shaders/common/io.glsl); each has its own pipeline, made on first use.
//! A kernel's type names its push struct (see `push`), so each dispatch is checked against the
//! shader's push block at compile time.

use super::push::PushBlock;
use ash::vk;
use std::cell::OnceCell;
use std::marker::PhantomData;

/// How a kernel build reads and writes its tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Io {
    /// Through storage texel buffers where the shader declares them (the default build).
    Texel,
    /// Through storage buffers only (the `IO_STORAGE` build).
    Storage,
}

/// What build.rs learned about one build of a shader.
#[derive(Debug)]
pub struct KernelSpec {
    pub name: &'static str,
    pub io: Io,
    pub spirv: &'static [u8],
    /// Buffers at bindings 0..bindings of set 0: storage buffers, except those listed in
    /// `texels`.
    pub bindings: u32,
    /// The tensor each binding holds, as the shader names it (for error messages).
    pub binding_names: &'static [&'static str],
    /// (binding, floats per texel: 1 or 4) of each binding that is a storage texel buffer
    /// (`layout(r32f) uniform imageBuffer`, or rgba32f). lavapipe moves texels with
    /// straight-line vector code but storage-buffer elements in a per-lane loop with a branch
    /// each, so the hot kernels read and write through texel views (the README has the
    /// figures).
    pub texels: &'static [(u32, u32)],
    pub push_bytes: u32,
    pub local_size: [u32; 3],
    /// Bytes of workgroup shared memory the kernel declares.
    pub shared_bytes: u32,
    /// The `#define NAME <integer>` lines of the kernel's own shader file (build.rs), such as
    /// a register tile's TO / TH / TW: what the ops size their grids by.
    pub defines: &'static [(&'static str, u32)],
    /// The storage-buffer build, for a kernel with texel bindings (same bindings, push block
    /// and workgroup size).
    pub storage: Option<&'static KernelSpec>,
}

impl KernelSpec {
    /// Floats per texel when `binding` is a texel buffer.
    pub fn texel_floats(&self, binding: u32) -> Option<u32> {
        self.texels
            .iter()
            .find(|&&(b, _)| b == binding)
            .map(|&(_, floats)| floats)
    }

    /// The value the shader `#define`s `name` to. Panics when it defines none: an op asks only
    /// for the defines of the kernels it dispatches, so that is a mismatch between the two.
    pub fn define(&self, name: &str) -> usize {
        match self.defines.iter().find(|&&(n, _)| n == name) {
            Some(&(_, value)) => value as usize,
            None => panic!("shader {} has no `#define {name} <integer>`", self.name),
        }
    }

    pub(crate) fn descriptor_type(&self, binding: u32) -> vk::DescriptorType {
        match self.texel_floats(binding) {
            Some(_) => vk::DescriptorType::STORAGE_TEXEL_BUFFER,
            None => vk::DescriptorType::STORAGE_BUFFER,
        }
    }
}

pub(crate) struct Pipeline {
    pub(crate) pipeline: vk::Pipeline,
    pub(crate) layout: vk::PipelineLayout,
    pub(crate) set_layout: vk::DescriptorSetLayout,
    module: vk::ShaderModule,
}

/// A kernel of one context, whatever its push block: its builds and their pipelines.
pub struct KernelBuilds {
    /// The default build; its `storage` names the other one, if any.
    pub spec: &'static KernelSpec,
    /// Pipelines of the default and of the storage build.
    pipelines: [OnceCell<Pipeline>; 2],
}

/// A kernel whose push block is `P`. It dereferences to its [`KernelBuilds`].
pub struct Kernel<P> {
    builds: KernelBuilds,
    push: PhantomData<fn(&P)>,
}

impl<P: PushBlock> Kernel<P> {
    fn new(spec: &'static KernelSpec) -> Self {
        assert_eq!(P::BYTES, spec.push_bytes, "{}: push struct size", spec.name);
        Kernel {
            builds: KernelBuilds {
                spec,
                pipelines: Default::default(),
            },
            push: PhantomData,
        }
    }
}

impl<P> std::ops::Deref for Kernel<P> {
    type Target = KernelBuilds;

    fn deref(&self) -> &KernelBuilds {
        &self.builds
    }
}

impl KernelBuilds {
    /// The build that does `io`: the storage build when asked for and the kernel has one.
    pub fn variant(&self, io: Io) -> &'static KernelSpec {
        match (io, self.spec.storage) {
            (Io::Storage, Some(storage)) => storage,
            _ => self.spec,
        }
    }

    pub(crate) fn pipeline(
        &self,
        device: &ash::Device,
        spec: &'static KernelSpec,
    ) -> Result<&Pipeline, vk::Result> {
        let cell = &self.pipelines[usize::from(!std::ptr::eq(spec, self.spec))];
        if let Some(p) = cell.get() {
            return Ok(p);
        }
        let built = build_pipeline(device, spec)?;
        Ok(cell.get_or_init(|| built))
    }

    /// # Safety
    /// No command buffer using the pipelines may be pending.
    unsafe fn destroy(&self, device: &ash::Device) {
        for p in self.pipelines.iter().filter_map(OnceCell::get) {
            // SAFETY: per the function's contract.
            unsafe {
                device.destroy_pipeline(p.pipeline, None);
                device.destroy_pipeline_layout(p.layout, None);
                device.destroy_descriptor_set_layout(p.set_layout, None);
                device.destroy_shader_module(p.module, None);
            }
        }
    }
}

fn build_pipeline(device: &ash::Device, spec: &KernelSpec) -> Result<Pipeline, vk::Result> {
    let code = ash::util::read_spv(&mut std::io::Cursor::new(spec.spirv))
        .expect("build.rs wrote whole SPIR-V words");
    let bindings: Vec<_> = (0..spec.bindings)
        .map(|b| {
            vk::DescriptorSetLayoutBinding::default()
                .binding(b)
                .descriptor_type(spec.descriptor_type(b))
                .descriptor_count(1)
                .stage_flags(vk::ShaderStageFlags::COMPUTE)
        })
        .collect();
    // SAFETY (whole block): every create info points at locals that outlive its call, and every
    // handle passed in was created on `device` just above.
    unsafe {
        let module = device
            .create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&code), None)?;
        let set_layout = device.create_descriptor_set_layout(
            &vk::DescriptorSetLayoutCreateInfo::default().bindings(&bindings),
            None,
        )?;
        let ranges = [vk::PushConstantRange::default()
            .stage_flags(vk::ShaderStageFlags::COMPUTE)
            .size(spec.push_bytes)];
        let set_layouts = [set_layout];
        let mut layout_info = vk::PipelineLayoutCreateInfo::default().set_layouts(&set_layouts);
        if spec.push_bytes > 0 {
            layout_info = layout_info.push_constant_ranges(&ranges);
        }
        let layout = device.create_pipeline_layout(&layout_info, None)?;
        let stage = vk::PipelineShaderStageCreateInfo::default()
            .stage(vk::ShaderStageFlags::COMPUTE)
            .module(module)
            .name(c"main");
        let info = [vk::ComputePipelineCreateInfo::default()
            .stage(stage)
            .layout(layout)];
        let pipeline = device
            .create_compute_pipelines(vk::PipelineCache::null(), &info, None)
            .map_err(|(_, e)| e)?[0];
        Ok(Pipeline {
            pipeline,
            layout,
            set_layout,
            module,
        })
    }
}

macro_rules! kernels {
    ($($field:ident => $spec:ident: $push:ty,)*) => {
        /// Every kernel, one field per shader in `shaders/` (one per operation for the shaders
        /// in build.rs's `OP_VARIANTS`).
        pub struct Kernels {
            $(pub $field: Kernel<$push>,)*
        }

        impl Default for Kernels {
            fn default() -> Self {
                Kernels { $($field: Kernel::new(&$spec),)* }
            }
        }

        impl Kernels {
            pub fn all(&self) -> Vec<&KernelBuilds> {
                vec![$(&*self.$field,)*]
            }
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

impl Kernels {
    /// # Safety
    /// No command buffer using any kernel may be pending.
    pub(crate) unsafe fn destroy(&self, device: &ash::Device) {
        for k in self.all() {
            // SAFETY: per the function's contract.
            unsafe { k.destroy(device) };
        }
    }
}
