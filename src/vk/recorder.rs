//! The command-buffer graph. Dispatches are appended with the buffers they read and write; a
//! barrier goes in front of a dispatch only when it touches memory that an earlier dispatch
//! since the last barrier wrote (read-after-write, write-after-write) or read
//! (write-after-read). `finish` allocates descriptor sets once and yields a [`Graph`] that
//! replays any number of times. Push-constant words may be graph parameters: changing one
//! re-encodes the command buffer from the stored dispatch list (no hazard analysis, no
//! descriptor or memory allocation) before the next submission.
//!
//! Each dispatch runs the build of its kernel that the device's limits allow (see
//! `Context::limits`): texel-buffer I/O where every texel binding fits one view, the kernel's
//! storage-buffer build otherwise. A dispatch that no build can run (a storage binding past
//! maxStorageBufferRange, a grid past maxComputeWorkGroupCount) is an error naming the kernel,
//! the tensor and the limit, returned by `finish`.
//!
//! Profiling is opt-in per graph: with it on, the command buffer writes a timestamp after
//! each dispatch, and every run adds each dispatch's share (from the previous timestamp to
//! its own) to a per-dispatch total. Where the device overlaps dispatches that have no
//! barrier between them the split among them is approximate; the sum is the graph's time.

use super::buffer::Buffer;
use super::context::Context;
use super::kernels::{Io, Kernel, KernelBuilds, KernelSpec};
use super::limits::LimitsMode;
use super::push::PushBlock;
use super::VkError;
use ash::vk;
use std::collections::{HashMap, HashSet};

/// How a dispatch uses one of its buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

/// One storage-buffer binding of a dispatch, in binding order.
pub struct Binding<'a> {
    pub buffer: &'a Buffer,
    pub access: Access,
}

pub fn read(buffer: &Buffer) -> Binding<'_> {
    Binding {
        buffer,
        access: Access::Read,
    }
}

pub fn write(buffer: &Buffer) -> Binding<'_> {
    Binding {
        buffer,
        access: Access::Write,
    }
}

pub fn read_write(buffer: &Buffer) -> Binding<'_> {
    Binding {
        buffer,
        access: Access::ReadWrite,
    }
}

/// A graph parameter: a push-constant word the host may change between replays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param(usize);

/// One 32-bit push-constant word, as a push struct lays them out (`push::PushBlock::words`):
/// the typed fields (`push::U32`, `I32`, `F32`) are where values convert to words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    Lit(u32),
    Param(Param),
}

/// Workgroups for `invocations` threads of a kernel `local` wide. Past 65535 groups (the least
/// every device allows in x) the grid spills into y; shaders index with `flat_index()` from
/// `shaders/common/index.glsl` and bounds-check against their element count.
pub fn grid(invocations: u64, local: u32) -> [u32; 3] {
    const MAX_X: u64 = 65535;
    let groups = invocations.div_ceil(local as u64).max(1);
    if groups <= MAX_X {
        [groups as u32, 1, 1]
    } else {
        [MAX_X as u32, groups.div_ceil(MAX_X) as u32, 1]
    }
}

struct Dispatch {
    pipeline: vk::Pipeline,
    layout: vk::PipelineLayout,
    set_layout: vk::DescriptorSetLayout,
    buffers: Vec<vk::Buffer>,
    /// Per binding: floats per texel of a texel-buffer binding, with the buffer's bytes.
    texels: Vec<Option<(u32, u64)>>,
    words: Vec<Word>,
    groups: [u32; 3],
    barrier_before: bool,
    /// The build that runs.
    spec: &'static KernelSpec,
}

/// What one dispatch asks of the device: a GPU-free proxy for how well it can fill one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchShape {
    pub name: &'static str,
    /// Workgroups times invocations per workgroup.
    pub invocations: u64,
    /// Shared memory per workgroup.
    pub shared_bytes: u32,
}

/// Time spent in one kernel over the profiled runs of one or more graphs.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    pub name: &'static str,
    /// Dispatches timed (dispatches per run times runs).
    pub calls: u64,
    pub ns: f64,
}

/// Sums entries of the same kernel; the result is sorted by time, longest first.
pub fn merge_profiles(times: impl IntoIterator<Item = KernelTime>) -> Vec<KernelTime> {
    let mut merged: Vec<KernelTime> = Vec::new();
    for t in times {
        match merged.iter_mut().find(|m| m.name == t.name) {
            Some(m) => {
                m.calls += t.calls;
                m.ns += t.ns;
            }
            None => merged.push(t),
        }
    }
    merged.sort_by(|a, b| b.ns.total_cmp(&a.ns).then(a.name.cmp(b.name)));
    merged
}

/// The timestamp queries of a profiled graph: one before the first dispatch, one after each.
struct Profiler {
    pool: vk::QueryPool,
    /// Nanoseconds per dispatch, summed over the profiled runs.
    ns: Vec<f64>,
    runs: u64,
}

/// Builds a graph. Buffers bound to dispatches are kept alive by the graph.
pub struct Recorder {
    ctx: Context,
    dispatches: Vec<Dispatch>,
    keep: Vec<Buffer>,
    kept: HashSet<u64>,
    written: HashSet<u64>,
    read: HashSet<u64>,
    params: Vec<u32>,
    error: Option<VkError>,
}

impl Recorder {
    pub fn new(ctx: &Context) -> Self {
        Recorder {
            ctx: ctx.clone(),
            dispatches: Vec::new(),
            keep: Vec::new(),
            kept: HashSet::new(),
            written: HashSet::new(),
            read: HashSet::new(),
            params: Vec::new(),
            error: None,
        }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Defers an error (the first one wins) to [`Recorder::finish`], as failed pipelines are:
    /// ops record without a `Result`, so a failed allocation inside one ends up here.
    pub fn fail(&mut self, e: VkError) {
        self.error.get_or_insert(e);
    }

    /// A new graph parameter with its first value.
    pub fn param(&mut self, initial: u32) -> Param {
        self.params.push(initial);
        Param(self.params.len() - 1)
    }

    /// Appends a dispatch of `kernel` with the push struct of its push block. Panics when the
    /// bindings do not match what the shader declares: that is a bug in the op, not a runtime
    /// condition.
    ///
    /// A push struct of another kernel does not compile:
    ///
    /// ```compile_fail,E0308
    /// # use vkgan::vk::{push::CopyPush, Context, Recorder};
    /// # fn f(ctx: &Context, rec: &mut Recorder) {
    /// rec.dispatch(&ctx.kernels().fill, &[], &CopyPush { n: 1u32.into() }, [1, 1, 1]);
    /// # }
    /// ```
    pub fn dispatch<P: PushBlock>(
        &mut self,
        kernel: &Kernel<P>,
        bindings: &[Binding],
        push: &P,
        groups: [u32; 3],
    ) {
        self.dispatch_words(kernel, bindings, push.words(), groups)
    }

    fn dispatch_words(
        &mut self,
        kernel: &KernelBuilds,
        bindings: &[Binding],
        words: Vec<Word>,
        groups: [u32; 3],
    ) {
        let spec = kernel.spec;
        assert_eq!(
            bindings.len(),
            spec.bindings as usize,
            "kernel {} takes {} buffers",
            spec.name,
            spec.bindings
        );
        debug_assert_eq!(words.len() * 4, spec.push_bytes as usize, "{}", spec.name);
        for w in &words {
            if let Word::Param(p) = w {
                assert!(p.0 < self.params.len(), "parameter of another recorder");
            }
        }
        if groups.contains(&0) {
            return;
        }
        let spec = kernel.variant(self.io_for(kernel, bindings));
        if let Err(e) = self.check_limits(spec, bindings, groups) {
            self.error.get_or_insert(e);
            return;
        }
        let pipeline = match kernel.pipeline(&self.ctx.inner.device, spec) {
            Ok(p) => p,
            Err(e) => {
                self.error.get_or_insert(VkError::Vulkan(e));
                return;
            }
        };
        let hazard = self.track(bindings);
        self.dispatches.push(Dispatch {
            pipeline: pipeline.pipeline,
            layout: pipeline.layout,
            set_layout: pipeline.set_layout,
            buffers: bindings.iter().map(|b| b.buffer.handle()).collect(),
            texels: bindings
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    spec.texel_floats(i as u32)
                        .map(|floats| (floats, b.buffer.bytes()))
                })
                .collect(),
            words,
            groups,
            barrier_before: hazard,
            spec,
        });
    }

    /// Whether the dispatch needs a barrier before it (it reads or writes what a dispatch since
    /// the last barrier wrote, or writes what one read), noting what it reads and writes and
    /// keeping its buffers alive.
    fn track(&mut self, bindings: &[Binding]) -> bool {
        let hazard = bindings.iter().any(|b| {
            let key = b.buffer.key();
            let writes = b.access != Access::Read;
            self.written.contains(&key) || (writes && self.read.contains(&key))
        });
        if hazard {
            self.written.clear();
            self.read.clear();
        }
        for b in bindings {
            let key = b.buffer.key();
            if b.access != Access::Write {
                self.read.insert(key);
            }
            if b.access != Access::Read {
                self.written.insert(key);
            }
            if self.kept.insert(key) {
                self.keep.push(b.buffer.clone());
            }
        }
        hazard
    }

    /// Texel I/O when every texel binding of the kernel fits one view of the formats the
    /// device supports, storage I/O otherwise.
    fn io_for(&self, kernel: &KernelBuilds, bindings: &[Binding]) -> Io {
        let texel_bytes = self.ctx.limits().texel_bytes();
        let fits = kernel
            .spec
            .texels
            .iter()
            .all(|&(b, _)| bindings[b as usize].buffer.bytes() <= texel_bytes);
        if fits {
            Io::Texel
        } else {
            Io::Storage
        }
    }

    /// Whether the chosen build can run: storage bindings within maxStorageBufferRange and the
    /// grid within maxComputeWorkGroupCount.
    fn check_limits(
        &self,
        spec: &KernelSpec,
        bindings: &[Binding],
        groups: [u32; 3],
    ) -> Result<(), VkError> {
        let limits = self.ctx.limits();
        let mode = match self.ctx.limits_mode() {
            LimitsMode::Device => "",
            LimitsMode::Minimum => " (VKGAN_LIMITS=minimum)",
        };
        for (b, binding) in bindings.iter().enumerate() {
            let bytes = binding.buffer.bytes();
            let range = limits.max_storage_buffer_range as u64;
            if spec.texel_floats(b as u32).is_none() && bytes > range {
                return Err(VkError::PastLimit {
                    kernel: spec.name,
                    need: format!("tensor `{}` binds {bytes} bytes", spec.binding_names[b]),
                    limit: format!("maxStorageBufferRange of {range} bytes{mode}"),
                });
            }
        }
        for (axis, (&n, &max)) in groups.iter().zip(&limits.max_workgroup_count).enumerate() {
            if n > max {
                return Err(VkError::PastLimit {
                    kernel: spec.name,
                    need: format!("{n} workgroups along axis {axis}"),
                    limit: format!("maxComputeWorkGroupCount[{axis}] of {max}{mode}"),
                });
            }
        }
        Ok(())
    }

    /// Barriers so far (not counting the ones every graph has at its start and end).
    pub fn barrier_count(&self) -> usize {
        self.dispatches.iter().filter(|d| d.barrier_before).count()
    }

    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// Allocates descriptor sets and a command buffer; the graph is ready to run.
    pub fn finish(self) -> Result<Graph, VkError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let descriptor_pool = descriptor_pool(self.ctx.device(), &self.dispatches)?;
        // The graph owns everything made from here on, so a failure part-way frees it on drop.
        let mut graph = Graph {
            ctx: self.ctx,
            command_buffer: vk::CommandBuffer::null(),
            fence: vk::Fence::null(),
            descriptor_pool,
            sets: Vec::new(),
            views: Vec::new(),
            dispatches: self.dispatches,
            params: self.params,
            encoded: false,
            profiler: None,
            _keep: self.keep,
        };
        graph.allocate_sets()?;
        let views = graph.make_views()?;
        graph.write_descriptors(&views);
        graph.allocate_command_buffer()?;
        Ok(graph)
    }

    /// Records, runs once and waits: for one-off work.
    pub fn run(self) -> Result<(), VkError> {
        self.finish()?.run()
    }
}

/// A recorded graph, replayable.
pub struct Graph {
    ctx: Context,
    command_buffer: vk::CommandBuffer,
    fence: vk::Fence,
    descriptor_pool: vk::DescriptorPool,
    sets: Vec<vk::DescriptorSet>,
    views: Vec<vk::BufferView>,
    dispatches: Vec<Dispatch>,
    params: Vec<u32>,
    encoded: bool,
    profiler: Option<Profiler>,
    _keep: Vec<Buffer>,
}

impl Graph {
    pub fn set_param(&mut self, param: Param, value: u32) {
        if self.params[param.0] != value {
            self.params[param.0] = value;
            self.encoded = false;
        }
    }

    pub fn set_param_f32(&mut self, param: Param, value: f32) {
        self.set_param(param, value.to_bits());
    }

    pub fn barrier_count(&self) -> usize {
        self.dispatches.iter().filter(|d| d.barrier_before).count()
    }

    pub fn dispatch_count(&self) -> usize {
        self.dispatches.len()
    }

    /// Texel-buffer views the graph holds: one per distinct (buffer, texel format).
    pub fn view_count(&self) -> usize {
        self.views.len()
    }

    /// Kernel names in dispatch order (for profiles and tests).
    pub fn kernel_names(&self) -> Vec<&'static str> {
        self.dispatches.iter().map(|d| d.spec.name).collect()
    }

    /// Invocations and shared memory of each dispatch, in dispatch order.
    pub fn dispatch_shapes(&self) -> Vec<DispatchShape> {
        self.dispatches
            .iter()
            .map(|d| {
                let groups: u64 = d.groups.iter().map(|&g| g as u64).product();
                let local: u64 = d.spec.local_size.iter().map(|&l| l as u64).product();
                DispatchShape {
                    name: d.spec.name,
                    invocations: groups * local,
                    shared_bytes: d.spec.shared_bytes,
                }
            })
            .collect()
    }

    /// The I/O build of each dispatch's kernel, in dispatch order.
    pub fn kernel_io(&self) -> Vec<Io> {
        self.dispatches.iter().map(|d| d.spec.io).collect()
    }

    /// Submits the graph and waits for it to finish.
    pub fn run(&mut self) -> Result<(), VkError> {
        if !self.encoded {
            self.encode()?;
        }
        submit_and_wait(&self.ctx, self.command_buffer, self.fence)?;
        self.collect_timestamps()
    }

    /// Turns per-dispatch timing on or off (see the module notes); turning it on fails with
    /// `VkError::NoTimestamps` on a device whose compute queue cannot write timestamps.
    /// Totals start from zero when profiling is turned on.
    pub fn set_profiling(&mut self, on: bool) -> Result<(), VkError> {
        if on == self.profiler.is_some() {
            return Ok(());
        }
        let device = self.ctx.device();
        if let Some(p) = self.profiler.take() {
            // SAFETY: `run` waits for every submission, so no command buffer using the pool
            // is pending.
            unsafe { device.destroy_query_pool(p.pool, None) };
        } else {
            self.ctx.check_timestamps()?;
            let info = vk::QueryPoolCreateInfo::default()
                .query_type(vk::QueryType::TIMESTAMP)
                .query_count(self.dispatches.len() as u32 + 1);
            // SAFETY: valid device and create info.
            let pool = unsafe { device.create_query_pool(&info, None) }.map_err(VkError::Vulkan)?;
            self.profiler = Some(Profiler {
                pool,
                ns: vec![0.0; self.dispatches.len()],
                runs: 0,
            });
        }
        self.encoded = false;
        Ok(())
    }

    /// Time per kernel over the profiled runs so far, longest first (empty when profiling is
    /// off).
    pub fn profile(&self) -> Vec<KernelTime> {
        let Some(p) = &self.profiler else {
            return Vec::new();
        };
        merge_profiles(
            self.dispatches
                .iter()
                .zip(&p.ns)
                .map(|(d, &ns)| KernelTime {
                    name: d.spec.name,
                    calls: p.runs,
                    ns,
                }),
        )
    }

    /// Zeroes the profile totals (e.g. after warm-up runs).
    pub fn reset_profile(&mut self) {
        if let Some(p) = &mut self.profiler {
            p.ns.iter_mut().for_each(|t| *t = 0.0);
            p.runs = 0;
        }
    }

    fn collect_timestamps(&mut self) -> Result<(), VkError> {
        let Some(p) = &mut self.profiler else {
            return Ok(());
        };
        let mut stamps = vec![0u64; self.dispatches.len() + 1];
        // SAFETY: the pool holds exactly this many queries, all written by the submission that
        // was just waited for; 64-bit results fill `stamps` exactly.
        unsafe {
            self.ctx.device().get_query_pool_results(
                p.pool,
                0,
                &mut stamps,
                vk::QueryResultFlags::TYPE_64 | vk::QueryResultFlags::WAIT,
            )
        }
        .map_err(VkError::Vulkan)?;
        let bits = self.ctx.inner.timestamp_valid_bits;
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let period = self.ctx.info().timestamp_period_ns as f64;
        for (total, pair) in p.ns.iter_mut().zip(stamps.windows(2)) {
            *total += (pair[1].wrapping_sub(pair[0]) & mask) as f64 * period;
        }
        p.runs += 1;
        Ok(())
    }

    fn encode(&mut self) -> Result<(), VkError> {
        let device = &self.ctx.inner.device;
        let cmd = self.command_buffer;
        // SAFETY (whole block): the command buffer is not pending (every submission is waited
        // for), and every pipeline, layout, set, buffer and query it names is alive: kernels
        // live as long as the context, buffers are kept by the graph, the query pool (sized
        // for one query more than there are dispatches) is owned by it.
        unsafe {
            device
                .reset_command_buffer(cmd, vk::CommandBufferResetFlags::empty())
                .map_err(VkError::Vulkan)?;
            device
                .begin_command_buffer(cmd, &vk::CommandBufferBeginInfo::default())
                .map_err(VkError::Vulkan)?;
            let queries = self.profiler.as_ref().map(|p| p.pool);
            if let Some(pool) = queries {
                device.cmd_reset_query_pool(cmd, pool, 0, self.dispatches.len() as u32 + 1);
            }
            entry_barrier(device, cmd);
            let stamp = |query: usize| {
                if let Some(pool) = queries {
                    device.cmd_write_timestamp(
                        cmd,
                        vk::PipelineStageFlags::BOTTOM_OF_PIPE,
                        pool,
                        query as u32,
                    );
                }
            };
            stamp(0);
            let mut bound = vk::Pipeline::null();
            let mut words = Vec::new();
            for (i, (d, &set)) in self.dispatches.iter().zip(&self.sets).enumerate() {
                if d.barrier_before {
                    compute_barrier(device, cmd);
                }
                if d.pipeline != bound {
                    device.cmd_bind_pipeline(cmd, vk::PipelineBindPoint::COMPUTE, d.pipeline);
                    bound = d.pipeline;
                }
                device.cmd_bind_descriptor_sets(
                    cmd,
                    vk::PipelineBindPoint::COMPUTE,
                    d.layout,
                    0,
                    &[set],
                    &[],
                );
                if !d.words.is_empty() {
                    words.clear();
                    words.extend(d.words.iter().map(|w| match *w {
                        Word::Lit(v) => v,
                        Word::Param(p) => self.params[p.0],
                    }));
                    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
                    device.cmd_push_constants(
                        cmd,
                        d.layout,
                        vk::ShaderStageFlags::COMPUTE,
                        0,
                        &bytes,
                    );
                }
                device.cmd_dispatch(cmd, d.groups[0], d.groups[1], d.groups[2]);
                stamp(i + 1);
            }
            exit_barrier(device, cmd);
            device.end_command_buffer(cmd).map_err(VkError::Vulkan)?;
        }
        self.encoded = true;
        self.ctx.inner.stats.borrow_mut().encodings += 1;
        Ok(())
    }
}

/// A descriptor pool with one set per dispatch and a descriptor per binding, by type.
fn descriptor_pool(
    device: &ash::Device,
    dispatches: &[Dispatch],
) -> Result<vk::DescriptorPool, VkError> {
    let count = |texel: bool| {
        dispatches
            .iter()
            .flat_map(|d| &d.texels)
            .filter(|t| t.is_some() == texel)
            .count()
            .max(1) as u32
    };
    let sizes = [
        vk::DescriptorPoolSize::default()
            .ty(vk::DescriptorType::STORAGE_BUFFER)
            .descriptor_count(count(false)),
        vk::DescriptorPoolSize::default()
            .ty(vk::DescriptorType::STORAGE_TEXEL_BUFFER)
            .descriptor_count(count(true)),
    ];
    let pool_info = vk::DescriptorPoolCreateInfo::default()
        .max_sets(dispatches.len().max(1) as u32)
        .pool_sizes(&sizes);
    // SAFETY: valid device and create info.
    unsafe { device.create_descriptor_pool(&pool_info, None) }.map_err(VkError::Vulkan)
}

/// A view of the first `bytes` of `buffer` as texels of `floats` floats (1 or 4).
fn texel_view(
    device: &ash::Device,
    buffer: vk::Buffer,
    floats: u32,
    bytes: u64,
) -> Result<vk::BufferView, VkError> {
    let texels = bytes / (4 * floats as u64);
    let format = if floats == 4 {
        vk::Format::R32G32B32A32_SFLOAT
    } else {
        vk::Format::R32_SFLOAT
    };
    let info = vk::BufferViewCreateInfo::default()
        .buffer(buffer)
        .format(format)
        .offset(0)
        .range(texels * 4 * floats as u64);
    // SAFETY: the buffer is live (kept by the graph) and was created with storage-texel usage;
    // the range lies inside it.
    unsafe { device.create_buffer_view(&info, None) }.map_err(VkError::Vulkan)
}

/// The views of one dispatch's bindings: a texel view for each texel binding, none for the
/// storage ones.
type BindingViews = Vec<Option<vk::BufferView>>;

impl Graph {
    /// One descriptor set per dispatch, from the graph's pool.
    fn allocate_sets(&mut self) -> Result<(), VkError> {
        let layouts: Vec<_> = self.dispatches.iter().map(|d| d.set_layout).collect();
        if layouts.is_empty() {
            return Ok(());
        }
        let info = vk::DescriptorSetAllocateInfo::default()
            .descriptor_pool(self.descriptor_pool)
            .set_layouts(&layouts);
        // SAFETY: the pool was sized for exactly these sets.
        self.sets = unsafe { self.ctx.device().allocate_descriptor_sets(&info) }
            .map_err(VkError::Vulkan)?;
        self.ctx.inner.stats.borrow_mut().descriptor_sets += layouts.len() as u64;
        Ok(())
    }

    /// The views of every dispatch's bindings. One view per (buffer, texel format), shared by
    /// every binding that names it; the graph holds them.
    fn make_views(&mut self) -> Result<Vec<BindingViews>, VkError> {
        let max_texels = self.ctx.limits().max_texel_buffer_elements as u64;
        let mut made: HashMap<(vk::Buffer, u32), vk::BufferView> = HashMap::new();
        let mut views = Vec::new();
        for d in &self.dispatches {
            let mut row = Vec::new();
            for (&buffer, texel) in d.buffers.iter().zip(&d.texels) {
                let Some((floats, bytes)) = *texel else {
                    row.push(None);
                    continue;
                };
                if let Some(&view) = made.get(&(buffer, floats)) {
                    row.push(Some(view));
                    continue;
                }
                // `io_for` took the storage build for every binding past the limit.
                debug_assert!(
                    bytes / (4 * floats as u64) <= max_texels,
                    "texel view past the limit"
                );
                let view = texel_view(self.ctx.device(), buffer, floats, bytes)?;
                self.views.push(view);
                made.insert((buffer, floats), view);
                row.push(Some(view));
            }
            views.push(row);
        }
        Ok(views)
    }

    /// Points each dispatch's set at its buffers: texel bindings at their views, storage
    /// bindings at the whole buffer.
    fn write_descriptors(&self, views: &[BindingViews]) {
        let infos: Vec<Vec<vk::DescriptorBufferInfo>> = self
            .dispatches
            .iter()
            .map(|d| {
                d.buffers
                    .iter()
                    .map(|&b| {
                        vk::DescriptorBufferInfo::default()
                            .buffer(b)
                            .offset(0)
                            .range(vk::WHOLE_SIZE)
                    })
                    .collect()
            })
            .collect();
        let writes: Vec<_> = self
            .sets
            .iter()
            .zip(infos.iter().zip(views))
            .flat_map(|(&set, (infos, views))| {
                infos
                    .iter()
                    .zip(views)
                    .enumerate()
                    .map(move |(b, (info, view))| {
                        let write = vk::WriteDescriptorSet::default()
                            .dst_set(set)
                            .dst_binding(b as u32);
                        match view {
                            Some(view) => write
                                .descriptor_type(vk::DescriptorType::STORAGE_TEXEL_BUFFER)
                                .texel_buffer_view(std::slice::from_ref(view)),
                            None => write
                                .descriptor_type(vk::DescriptorType::STORAGE_BUFFER)
                                .buffer_info(std::slice::from_ref(info)),
                        }
                    })
            })
            .collect();
        // SAFETY: every set, view and buffer is live; the graph keeps the buffers and views.
        unsafe { self.ctx.device().update_descriptor_sets(&writes, &[]) };
    }

    /// The command buffer the graph is encoded into, and the fence its runs wait on.
    fn allocate_command_buffer(&mut self) -> Result<(), VkError> {
        let device = &self.ctx.inner.device;
        let alloc = vk::CommandBufferAllocateInfo::default()
            .command_pool(self.ctx.inner.command_pool)
            .level(vk::CommandBufferLevel::PRIMARY)
            .command_buffer_count(1);
        // SAFETY: valid device and pool.
        self.command_buffer =
            unsafe { device.allocate_command_buffers(&alloc) }.map_err(VkError::Vulkan)?[0];
        // SAFETY: valid device.
        self.fence = unsafe { device.create_fence(&vk::FenceCreateInfo::default(), None) }
            .map_err(VkError::Vulkan)?;
        Ok(())
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        let device = &self.ctx.inner.device;
        // SAFETY: `run` waits for every submission, so nothing here is pending.
        unsafe {
            if self.command_buffer != vk::CommandBuffer::null() {
                device.free_command_buffers(self.ctx.inner.command_pool, &[self.command_buffer]);
            }
            if self.fence != vk::Fence::null() {
                device.destroy_fence(self.fence, None);
            }
            device.destroy_descriptor_pool(self.descriptor_pool, None);
            for &view in &self.views {
                device.destroy_buffer_view(view, None);
            }
            if let Some(p) = self.profiler.take() {
                device.destroy_query_pool(p.pool, None);
            }
        }
    }
}

/// Orders the graph after all earlier submissions (their shader and transfer writes) and host
/// writes.
///
/// # Safety
/// `cmd` is recording.
unsafe fn entry_barrier(device: &ash::Device, cmd: vk::CommandBuffer) {
    let barrier = [vk::MemoryBarrier::default()
        .src_access_mask(
            vk::AccessFlags::SHADER_WRITE
                | vk::AccessFlags::TRANSFER_WRITE
                | vk::AccessFlags::HOST_WRITE,
        )
        .dst_access_mask(
            vk::AccessFlags::SHADER_READ
                | vk::AccessFlags::SHADER_WRITE
                | vk::AccessFlags::TRANSFER_READ
                | vk::AccessFlags::TRANSFER_WRITE,
        )];
    // SAFETY: per the function's contract.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::COMPUTE_SHADER
                | vk::PipelineStageFlags::TRANSFER
                | vk::PipelineStageFlags::HOST,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &barrier,
            &[],
            &[],
        )
    };
}

/// Makes everything the graph wrote visible to the host and to later transfers.
///
/// # Safety
/// `cmd` is recording.
unsafe fn exit_barrier(device: &ash::Device, cmd: vk::CommandBuffer) {
    let barrier = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::TRANSFER_WRITE)
        .dst_access_mask(vk::AccessFlags::HOST_READ | vk::AccessFlags::TRANSFER_READ)];
    // SAFETY: per the function's contract.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::COMPUTE_SHADER | vk::PipelineStageFlags::TRANSFER,
            vk::PipelineStageFlags::HOST | vk::PipelineStageFlags::TRANSFER,
            vk::DependencyFlags::empty(),
            &barrier,
            &[],
            &[],
        )
    };
}

/// A compute-to-compute dependency covering all memory.
///
/// # Safety
/// `cmd` is recording.
unsafe fn compute_barrier(device: &ash::Device, cmd: vk::CommandBuffer) {
    let barrier = [vk::MemoryBarrier::default()
        .src_access_mask(vk::AccessFlags::SHADER_WRITE | vk::AccessFlags::SHADER_READ)
        .dst_access_mask(vk::AccessFlags::SHADER_READ | vk::AccessFlags::SHADER_WRITE)];
    // SAFETY: per the function's contract.
    unsafe {
        device.cmd_pipeline_barrier(
            cmd,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::PipelineStageFlags::COMPUTE_SHADER,
            vk::DependencyFlags::empty(),
            &barrier,
            &[],
            &[],
        )
    };
}

fn submit_and_wait(ctx: &Context, cmd: vk::CommandBuffer, fence: vk::Fence) -> Result<(), VkError> {
    let device = &ctx.inner.device;
    let cmds = [cmd];
    let submit = [vk::SubmitInfo::default().command_buffers(&cmds)];
    // SAFETY: the command buffer is fully recorded and not pending; the fence is unsignalled
    // (it is reset after every wait).
    unsafe {
        device
            .queue_submit(ctx.inner.queue, &submit, fence)
            .map_err(VkError::Vulkan)?;
        device
            .wait_for_fences(&[fence], true, u64::MAX)
            .map_err(VkError::Vulkan)?;
        device.reset_fences(&[fence]).map_err(VkError::Vulkan)?;
    }
    ctx.inner.stats.borrow_mut().submissions += 1;
    Ok(())
}

/// Records `body` into a fresh command buffer between the entry and exit barriers, runs it
/// and waits.
pub(crate) fn one_shot(
    ctx: &Context,
    body: impl FnOnce(&ash::Device, vk::CommandBuffer),
) -> Result<(), VkError> {
    let device = &ctx.inner.device;
    let alloc = vk::CommandBufferAllocateInfo::default()
        .command_pool(ctx.inner.command_pool)
        .level(vk::CommandBufferLevel::PRIMARY)
        .command_buffer_count(1);
    // SAFETY: valid device and pool; the command buffer and fence are freed below after the
    // wait, so they are never destroyed while pending.
    unsafe {
        let cmd = device
            .allocate_command_buffers(&alloc)
            .map_err(VkError::Vulkan)?[0];
        let fence = device
            .create_fence(&vk::FenceCreateInfo::default(), None)
            .map_err(VkError::Vulkan)?;
        let result = (|| {
            device
                .begin_command_buffer(
                    cmd,
                    &vk::CommandBufferBeginInfo::default()
                        .flags(vk::CommandBufferUsageFlags::ONE_TIME_SUBMIT),
                )
                .map_err(VkError::Vulkan)?;
            entry_barrier(device, cmd);
            body(device, cmd);
            exit_barrier(device, cmd);
            device.end_command_buffer(cmd).map_err(VkError::Vulkan)?;
            submit_and_wait(ctx, cmd, fence)
        })();
        device.destroy_fence(fence, None);
        device.free_command_buffers(ctx.inner.command_pool, &[cmd]);
        result
    }
}
