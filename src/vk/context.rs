//! The Vulkan instance, the chosen physical device, its compute queue and the validation layer.

use super::buffer::Pool;
use super::kernels::Kernels;
use super::limits::{env_choice, Limits, LimitsMode};
use super::VkError;
use ash::vk;
use std::cell::RefCell;
use std::ffi::{c_void, CStr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

const VALIDATION_LAYER: &CStr = c"VK_LAYER_KHRONOS_validation";

/// How to open a context.
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Index into the list `vkgan devices` prints; `None` picks the best by type.
    pub device: Option<usize>,
    /// Turn the Khronos validation layer on and record every message it reports.
    pub validate: bool,
    /// The device's limits, or the Vulkan 1.1 minimums whatever the device reports.
    pub limits: LimitsMode,
    /// The kernel family to use; `None` takes the device's (`DeviceInfo::kernel_family`).
    pub kernels: Option<KernelFamily>,
}

/// Which shapes of the hot kernels (convolutions and their gradients) a context records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFamily {
    /// Large register tiles (8 channels x 8 x 8 outputs an invocation, Winograd 3x3
    /// convolutions on 8 channels x 4 x 8) for llvmpipe: it runs a workgroup as one thread
    /// with SIMD lanes across invocations, so work per invocation is what feeds it, and its
    /// JIT compiles these tiles in seconds (twice the tile took minutes on some CPUs: figures
    /// in the README, Performance).
    Cpu,
    /// Small per-invocation tiles, many invocations: for GPUs, where registers are per thread,
    /// and for every other driver: other compilers (SwiftShader's JIT among them) take minutes
    /// and gigabytes on the Cpu family's unrolled tiles (figures in the README, Devices).
    Gpu,
}

impl KernelFamily {
    /// `VKGAN_KERNELS`: unset for the device's family, `cpu` or `gpu` to force one.
    pub fn from_env() -> Result<Option<Self>, String> {
        env_choice(
            "VKGAN_KERNELS",
            &[("cpu", KernelFamily::Cpu), ("gpu", KernelFamily::Gpu)],
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            KernelFamily::Cpu => "cpu",
            KernelFamily::Gpu => "gpu",
        }
    }
}

impl ContextOptions {
    /// Options from the environment: `VKGAN_VALIDATE=1` turns validation on,
    /// `VKGAN_LIMITS=minimum` holds the device to the Vulkan 1.1 minimum limits.
    pub fn from_env(device: Option<usize>) -> Result<Self, VkError> {
        let validate = std::env::var("VKGAN_VALIDATE").is_ok_and(|v| v == "1");
        let limits = LimitsMode::from_env().map_err(VkError::Environment)?;
        let kernels = KernelFamily::from_env().map_err(VkError::Environment)?;
        Ok(ContextOptions {
            device,
            validate,
            limits,
            kernels,
        })
    }
}

/// What `vkgan devices` prints about one physical device.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub index: usize,
    pub name: String,
    pub kind: DeviceKind,
    pub driver: String,
    /// Whether the driver is Mesa's llvmpipe (lavapipe).
    pub llvmpipe: bool,
    pub api_version: (u32, u32, u32),
    pub subgroup_size: u32,
    /// The limits the device reports (a context may keep to lower ones: `Context::limits`).
    pub limits: Limits,
    pub min_storage_buffer_offset_alignment: u64,
    pub timestamp_period_ns: f32,
    /// Whether every graphics and compute queue can write timestamps.
    pub timestamp_compute_and_graphics: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Discrete,
    Integrated,
    Virtual,
    Cpu,
    Other,
}

impl DeviceKind {
    fn from_vk(t: vk::PhysicalDeviceType) -> Self {
        match t {
            vk::PhysicalDeviceType::DISCRETE_GPU => DeviceKind::Discrete,
            vk::PhysicalDeviceType::INTEGRATED_GPU => DeviceKind::Integrated,
            vk::PhysicalDeviceType::VIRTUAL_GPU => DeviceKind::Virtual,
            vk::PhysicalDeviceType::CPU => DeviceKind::Cpu,
            _ => DeviceKind::Other,
        }
    }

    /// Lower is preferred when no device is named.
    fn preference(self) -> u32 {
        match self {
            DeviceKind::Discrete => 0,
            DeviceKind::Integrated => 1,
            DeviceKind::Virtual => 2,
            DeviceKind::Cpu => 3,
            DeviceKind::Other => 4,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DeviceKind::Discrete => "discrete GPU",
            DeviceKind::Integrated => "integrated GPU",
            DeviceKind::Virtual => "virtual GPU",
            DeviceKind::Cpu => "CPU",
            DeviceKind::Other => "other",
        }
    }
}

impl DeviceInfo {
    /// The kernel family this device runs unless told otherwise: the CPU family on llvmpipe,
    /// the GPU family everywhere else.
    pub fn kernel_family(&self) -> KernelFamily {
        if self.llvmpipe {
            KernelFamily::Cpu
        } else {
            KernelFamily::Gpu
        }
    }
}

/// Messages the validation layer reported, shared with its callback.
type ValidationLog = Arc<Mutex<Vec<String>>>;

/// An instance that lists devices; `Context::new` builds on it.
struct Instance {
    // Keeps the loader library loaded while the instance exists.
    _entry: ash::Entry,
    instance: ash::Instance,
    debug: Option<(ash::ext::debug_utils::Instance, vk::DebugUtilsMessengerEXT)>,
    log: Box<ValidationLog>,
}

impl Instance {
    fn new(validate: bool) -> Result<Self, VkError> {
        // SAFETY: loading the system Vulkan loader runs its initialisers; nothing else is loaded.
        let entry = unsafe { ash::Entry::load() }.map_err(|e| VkError::NoLoader(e.to_string()))?;
        // SAFETY: a plain query of the loader.
        let loader_version = unsafe { entry.try_enumerate_instance_version() }
            .map_err(VkError::Vulkan)?
            .unwrap_or(vk::API_VERSION_1_0);
        if loader_version < vk::API_VERSION_1_1 {
            return Err(VkError::TooOld("the Vulkan loader".into()));
        }
        let api = loader_version.min(vk::API_VERSION_1_3);
        let app = vk::ApplicationInfo::default()
            .application_name(c"vkgan")
            .engine_name(c"vkgan")
            .api_version(api);
        let mut layers = Vec::new();
        let mut extensions = Vec::new();
        if validate {
            // SAFETY: a plain query of the loader.
            let available =
                unsafe { entry.enumerate_instance_layer_properties() }.map_err(VkError::Vulkan)?;
            let found = available
                .iter()
                .any(|l| l.layer_name_as_c_str().is_ok_and(|n| n == VALIDATION_LAYER));
            if !found {
                return Err(VkError::NoValidationLayer);
            }
            layers.push(VALIDATION_LAYER.as_ptr());
            extensions.push(ash::ext::debug_utils::NAME.as_ptr());
        }
        let info = vk::InstanceCreateInfo::default()
            .application_info(&app)
            .enabled_layer_names(&layers)
            .enabled_extension_names(&extensions);
        // SAFETY: every pointer in `info` refers to locals that outlive the call.
        let instance = unsafe { entry.create_instance(&info, None) }.map_err(|e| match e {
            vk::Result::ERROR_INCOMPATIBLE_DRIVER => VkError::NoDevice,
            e => VkError::Vulkan(e),
        })?;
        let log: Box<ValidationLog> = Box::default();
        let debug = if validate {
            let utils = ash::ext::debug_utils::Instance::new(&entry, &instance);
            let info = vk::DebugUtilsMessengerCreateInfoEXT::default()
                .message_severity(
                    vk::DebugUtilsMessageSeverityFlagsEXT::ERROR
                        | vk::DebugUtilsMessageSeverityFlagsEXT::WARNING,
                )
                .message_type(
                    vk::DebugUtilsMessageTypeFlagsEXT::GENERAL
                        | vk::DebugUtilsMessageTypeFlagsEXT::VALIDATION
                        | vk::DebugUtilsMessageTypeFlagsEXT::PERFORMANCE,
                )
                .pfn_user_callback(Some(on_validation_message))
                .user_data(&*log as *const ValidationLog as *mut c_void);
            // SAFETY: the user-data pointer is the boxed log, which lives as long as the messenger
            // (it is dropped after the messenger is destroyed, in `Drop for Instance`).
            let messenger = unsafe { utils.create_debug_utils_messenger(&info, None) }
                .map_err(VkError::Vulkan)?;
            Some((utils, messenger))
        } else {
            None
        };
        Ok(Instance {
            _entry: entry,
            instance,
            debug,
            log,
        })
    }

    fn physical_devices(&self) -> Result<Vec<(vk::PhysicalDevice, DeviceInfo)>, VkError> {
        // SAFETY: the instance is alive.
        let devices =
            unsafe { self.instance.enumerate_physical_devices() }.map_err(VkError::Vulkan)?;
        if devices.is_empty() {
            return Err(VkError::NoDevice);
        }
        Ok(devices
            .into_iter()
            .enumerate()
            .map(|(index, pd)| (pd, self.describe(index, pd)))
            .collect())
    }

    fn describe(&self, index: usize, pd: vk::PhysicalDevice) -> DeviceInfo {
        // SAFETY: `pd` came from this instance.
        let props = unsafe { self.instance.get_physical_device_properties(pd) };
        let mut subgroup = vk::PhysicalDeviceSubgroupProperties::default();
        let mut driver = vk::PhysicalDeviceDriverProperties::default();
        let has_driver_props = props.api_version >= vk::API_VERSION_1_2;
        let mut props2 = vk::PhysicalDeviceProperties2::default().push_next(&mut subgroup);
        if has_driver_props {
            props2 = props2.push_next(&mut driver);
        }
        // SAFETY: the chained structs live until the call returns; the driver-properties struct
        // is only chained where the device's API version defines it.
        unsafe {
            self.instance
                .get_physical_device_properties2(pd, &mut props2)
        };
        let llvmpipe = has_driver_props && driver.driver_id == vk::DriverId::MESA_LLVMPIPE;
        let driver = if has_driver_props {
            let name = driver
                .driver_name_as_c_str()
                .map(|s| s.to_string_lossy().into_owned());
            let info = driver
                .driver_info_as_c_str()
                .map(|s| s.to_string_lossy().into_owned());
            match (name, info) {
                (Ok(n), Ok(i)) if !i.is_empty() => format!("{n} {i}"),
                (Ok(n), _) => n,
                _ => "unknown".into(),
            }
        } else {
            format!("version {:#x}", props.driver_version)
        };
        let limits = props.limits;
        let texel_formats = [vk::Format::R32_SFLOAT, vk::Format::R32G32B32A32_SFLOAT]
            .iter()
            .all(|&format| {
                // SAFETY: `pd` came from this instance.
                let props = unsafe {
                    self.instance
                        .get_physical_device_format_properties(pd, format)
                };
                props
                    .buffer_features
                    .contains(vk::FormatFeatureFlags::STORAGE_TEXEL_BUFFER)
            });
        DeviceInfo {
            index,
            name: props
                .device_name_as_c_str()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unnamed".into()),
            kind: DeviceKind::from_vk(props.device_type),
            driver,
            llvmpipe,
            api_version: (
                vk::api_version_major(props.api_version),
                vk::api_version_minor(props.api_version),
                vk::api_version_patch(props.api_version),
            ),
            subgroup_size: subgroup.subgroup_size,
            limits: Limits::reported(
                &limits,
                texel_formats,
                subgroup
                    .supported_operations
                    .contains(vk::SubgroupFeatureFlags::ARITHMETIC)
                    && subgroup
                        .supported_stages
                        .contains(vk::ShaderStageFlags::COMPUTE),
            ),
            min_storage_buffer_offset_alignment: limits.min_storage_buffer_offset_alignment,
            timestamp_period_ns: limits.timestamp_period,
            timestamp_compute_and_graphics: limits.timestamp_compute_and_graphics == vk::TRUE,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: everything created from the instance (devices) is gone by now: `Inner` drops
        // the device before its `Instance` field.
        unsafe {
            if let Some((utils, messenger)) = self.debug.take() {
                utils.destroy_debug_utils_messenger(messenger, None);
            }
            self.instance.destroy_instance(None);
        }
    }
}

unsafe extern "system" fn on_validation_message(
    severity: vk::DebugUtilsMessageSeverityFlagsEXT,
    _types: vk::DebugUtilsMessageTypeFlagsEXT,
    data: *const vk::DebugUtilsMessengerCallbackDataEXT<'_>,
    user: *mut c_void,
) -> vk::Bool32 {
    // SAFETY: the layer passes a valid callback-data struct for the duration of the call, and
    // `user` is the boxed log registered with the messenger, alive while the messenger is.
    let (message, log) = unsafe {
        let message = (*data)
            .message_as_c_str()
            .map(|m| m.to_string_lossy().into_owned())
            .unwrap_or_default();
        (message, &*(user as *const ValidationLog))
    };
    let line = format!("[{severity:?}] {message}");
    if std::env::var("VKGAN_VALIDATE_ECHO").is_ok() {
        eprintln!("vulkan validation: {line}");
    }
    if let Ok(mut log) = log.lock() {
        log.push(line);
    }
    vk::FALSE
}

/// Lists every Vulkan device and the index of the default one.
pub fn list_devices() -> Result<(Vec<DeviceInfo>, usize), VkError> {
    let instance = Instance::new(false)?;
    let devices: Vec<DeviceInfo> = instance
        .physical_devices()?
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let default = default_device(&devices);
    Ok((devices, default))
}

fn default_device(devices: &[DeviceInfo]) -> usize {
    devices
        .iter()
        .min_by_key(|d| (d.kind.preference(), d.index))
        .map(|d| d.index)
        .unwrap_or(0)
}

pub(crate) struct Inner {
    pub(crate) device: ash::Device,
    pub(crate) queue: vk::Queue,
    pub(crate) command_pool: vk::CommandPool,
    pub(crate) allocator: RefCell<Option<gpu_allocator::vulkan::Allocator>>,
    pub(crate) pool: RefCell<Pool>,
    pub(crate) kernels: Kernels,
    pub(crate) info: DeviceInfo,
    /// The limits kept to: the device's, or lower in minimum-limits mode.
    pub(crate) limits: Limits,
    pub(crate) limits_mode: LimitsMode,
    pub(crate) kernel_family: KernelFamily,
    pub(crate) stats: RefCell<Stats>,
    /// Meaningful bits of a timestamp on the compute queue (0: it cannot write timestamps).
    pub(crate) timestamp_valid_bits: u32,
    instance: Instance,
}

/// Counters that tests and benchmarks read to prove the hot loop allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Vulkan buffers created (a pooled buffer handed out again does not count).
    pub buffers_created: u64,
    /// Bytes of those buffers.
    pub bytes_created: u64,
    /// Descriptor sets allocated.
    pub descriptor_sets: u64,
    /// Command buffers recorded, counting every re-encoding of a replayed graph.
    pub encodings: u64,
    /// Submissions to the queue.
    pub submissions: u64,
    /// Bytes of Vulkan buffers that exist now: handed out, waiting in the pool, or staging.
    pub live_bytes: u64,
    /// The most `live_bytes` has been.
    pub peak_bytes: u64,
    /// Bytes of pooled buffers handed out now (held by a `Buffer`).
    pub in_use_bytes: u64,
    /// The most `in_use_bytes` has been.
    pub peak_in_use_bytes: u64,
}

impl Stats {
    pub(crate) fn buffer_created(&mut self, bytes: u64) {
        self.live_bytes += bytes;
        self.peak_bytes = self.peak_bytes.max(self.live_bytes);
    }

    pub(crate) fn buffer_destroyed(&mut self, bytes: u64) {
        self.live_bytes -= bytes;
    }

    pub(crate) fn buffer_taken(&mut self, bytes: u64) {
        self.in_use_bytes += bytes;
        self.peak_in_use_bytes = self.peak_in_use_bytes.max(self.in_use_bytes);
    }

    pub(crate) fn buffer_returned(&mut self, bytes: u64) {
        self.in_use_bytes -= bytes;
    }
}

/// The device everything runs on. Cheap to clone; single-threaded by design (the command stream
/// is one queue, and host-side data loading hands plain `Vec`s over).
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Rc<Inner>,
}

impl Context {
    pub fn new(options: &ContextOptions) -> Result<Self, VkError> {
        let instance = Instance::new(options.validate)?;
        let devices = instance.physical_devices()?;
        let infos: Vec<DeviceInfo> = devices.iter().map(|(_, d)| d.clone()).collect();
        let index = match options.device {
            Some(i) if i < devices.len() => i,
            Some(i) => return Err(VkError::BadDeviceIndex(i, devices.len())),
            None => default_device(&infos),
        };
        let (physical, info) = devices[index].clone();
        if info.api_version < (1, 1, 0) {
            return Err(VkError::TooOld(info.name));
        }
        // SAFETY: `physical` came from this instance.
        let families = unsafe {
            instance
                .instance
                .get_physical_device_queue_family_properties(physical)
        };
        let family = families
            .iter()
            .position(|f| f.queue_flags.contains(vk::QueueFlags::COMPUTE))
            .ok_or_else(|| VkError::NoComputeQueue(info.name.clone()))? as u32;
        let timestamp_valid_bits = families[family as usize].timestamp_valid_bits;
        let priorities = [1.0f32];
        let queue_info = [vk::DeviceQueueCreateInfo::default()
            .queue_family_index(family)
            .queue_priorities(&priorities)];
        let device_info = vk::DeviceCreateInfo::default().queue_create_infos(&queue_info);
        // SAFETY: the create info points at locals alive for the call.
        let device = unsafe {
            instance
                .instance
                .create_device(physical, &device_info, None)
        }
        .map_err(VkError::Vulkan)?;
        // SAFETY: family and index 0 were requested at device creation.
        let queue = unsafe { device.get_device_queue(family, 0) };
        let pool_info = vk::CommandPoolCreateInfo::default()
            .queue_family_index(family)
            .flags(vk::CommandPoolCreateFlags::RESET_COMMAND_BUFFER);
        // SAFETY: valid device and create info.
        let command_pool =
            unsafe { device.create_command_pool(&pool_info, None) }.map_err(VkError::Vulkan)?;
        let allocator =
            gpu_allocator::vulkan::Allocator::new(&gpu_allocator::vulkan::AllocatorCreateDesc {
                instance: instance.instance.clone(),
                device: device.clone(),
                physical_device: physical,
                debug_settings: Default::default(),
                buffer_device_address: false,
                allocation_sizes: Default::default(),
            })
            .map_err(|e| VkError::Allocation(e.to_string()))?;
        Ok(Context {
            inner: Rc::new(Inner {
                device,
                queue,
                command_pool,
                allocator: RefCell::new(Some(allocator)),
                pool: RefCell::new(Pool::default()),
                kernels: Kernels::default(),
                limits: info.limits.in_mode(options.limits),
                limits_mode: options.limits,
                kernel_family: options.kernels.unwrap_or(info.kernel_family()),
                info,
                stats: RefCell::default(),
                timestamp_valid_bits,
                instance,
            }),
        })
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.inner.info
    }

    /// The limits every dispatch keeps to (see `ContextOptions::limits`).
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn limits_mode(&self) -> LimitsMode {
        self.inner.limits_mode
    }

    /// The kernel family ops record (see `ContextOptions::kernels`).
    pub fn kernel_family(&self) -> KernelFamily {
        self.inner.kernel_family
    }

    pub fn stats(&self) -> Stats {
        *self.inner.stats.borrow()
    }

    /// Every validation message reported since the last call (empty when validation is off).
    pub fn take_validation_messages(&self) -> Vec<String> {
        self.inner
            .instance
            .log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    /// Whether the Khronos validation layer is on for this context.
    pub fn validating(&self) -> bool {
        self.inner.instance.debug.is_some()
    }

    /// Whether graphs on this device can be profiled (`Graph::set_profiling`); the error says
    /// why not.
    pub fn check_timestamps(&self) -> Result<(), VkError> {
        let info = &self.inner.info;
        if self.inner.timestamp_valid_bits == 0 || info.timestamp_period_ns <= 0.0 {
            return Err(VkError::NoTimestamps(format!(
                "{}: its compute queue family reports timestampValidBits = {} \
                 (timestampComputeAndGraphics = {}, timestampPeriod = {} ns)",
                info.name,
                self.inner.timestamp_valid_bits,
                info.timestamp_compute_and_graphics,
                info.timestamp_period_ns
            )));
        }
        Ok(())
    }

    pub(crate) fn device(&self) -> &ash::Device {
        &self.inner.device
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: the last `Context` clone is gone, and every buffer, graph and kernel holds a
        // clone, so nothing uses the device any more; objects are destroyed children first.
        unsafe {
            let _ = self.device.device_wait_idle();
            self.kernels.destroy(&self.device);
            if let Some(mut allocator) = self.allocator.borrow_mut().take() {
                self.pool.borrow_mut().destroy(&self.device, &mut allocator);
                drop(allocator);
            }
            self.device.destroy_command_pool(self.command_pool, None);
            self.device.destroy_device(None);
        }
    }
}

#[cfg(test)]
mod tests {
    /// The tests rely on the validation layer reporting misuse; make sure it does.
    #[test]
    fn validation_layer_reports_misuse() {
        let ctx = crate::testing::context();
        assert!(ctx.take_validation_messages().is_empty());
        // SAFETY: resetting zero fences breaks a valid-usage rule (fenceCount must be > 0) but
        // touches no object; drivers treat it as a no-op.
        let _ = unsafe { ctx.device().reset_fences(&[]) };
        let messages = ctx.take_validation_messages();
        assert!(
            messages.iter().any(|m| m.contains("fenceCount")),
            "the validation layer stayed silent: {messages:?}"
        );
    }
}
