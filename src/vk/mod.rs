//! The only module that touches Vulkan: device selection, pooled buffers, kernels and the
//! command-buffer recorder. Everything above it sees `Context`, `Buffer`, `Recorder` and
//! `Graph`, never an `ash` type.

mod buffer;
mod context;
mod kernels;
mod limits;
pub mod push;
mod recorder;

pub use buffer::Buffer;
pub use context::{
    list_devices, Context, ContextOptions, DeviceInfo, DeviceKind, KernelFamily, Stats,
};
pub use kernels::{Io, Kernel, KernelBuilds, KernelSpec, Kernels};
pub use limits::{Limits, LimitsMode};
pub use recorder::{
    grid, merge_profiles, read, read_write, write, Access, Binding, DispatchShape, Graph,
    KernelTime, Param, Recorder, Word,
};

use ash::vk;

/// What can go wrong talking to Vulkan. The first three are set-up problems a user fixes by
/// installing something; the CLI maps them to exit code 2 with the message below.
#[derive(Debug, thiserror::Error)]
pub enum VkError {
    #[error(
        "the Vulkan loader (libvulkan.so.1) is not installed ({0}); install it with \
         `sudo apt-get install libvulkan1 mesa-vulkan-drivers` (lavapipe runs Vulkan on the CPU)"
    )]
    NoLoader(String),
    #[error(
        "no Vulkan device found: no Vulkan driver is installed; for the CPU driver lavapipe run \
         `sudo apt-get install mesa-vulkan-drivers`, or install your GPU vendor's Vulkan driver"
    )]
    NoDevice,
    #[error(
        "validation requested but the Khronos validation layer is missing; install it with \
         `sudo apt-get install vulkan-validationlayers`"
    )]
    NoValidationLayer,
    #[error("device index {0} does not exist: there are {1} Vulkan devices (see `vkgan devices`)")]
    BadDeviceIndex(usize, usize),
    #[error("{0} supports only Vulkan 1.0; vkgan needs 1.1 or newer")]
    TooOld(String),
    #[error("{0} has no compute queue")]
    NoComputeQueue(String),
    #[error("device memory allocation failed: {0}")]
    Allocation(String),
    #[error("this device cannot time kernels (no timestamp queries on its compute queue): {0}")]
    NoTimestamps(String),
    #[error("{0}")]
    Environment(String),
    /// A dispatch that no build of its kernel can run within the limits in use.
    #[error("kernel {kernel}: {need}, past this device's {limit}")]
    PastLimit {
        kernel: &'static str,
        need: String,
        limit: String,
    },
    #[error("Vulkan call failed: {0}")]
    Vulkan(vk::Result),
}

impl VkError {
    /// True for problems with the installation rather than with a run.
    pub fn is_setup_problem(&self) -> bool {
        matches!(
            self,
            VkError::NoLoader(_)
                | VkError::NoDevice
                | VkError::NoValidationLayer
                | VkError::TooOld(_)
                | VkError::Environment(_)
        )
    }
}

impl Context {
    pub fn kernels(&self) -> &Kernels {
        &self.inner.kernels
    }
}

impl Buffer {
    /// A new buffer holding `data`.
    pub fn from_f32(ctx: &Context, data: &[f32]) -> Result<Self, VkError> {
        let buffer = Buffer::new(ctx, (data.len() * 4) as u64)?;
        buffer.write_f32(data)?;
        Ok(buffer)
    }

    pub fn write_f32(&self, data: &[f32]) -> Result<(), VkError> {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(&bytes)
    }

    pub fn read_f32(&self, len: usize) -> Result<Vec<f32>, VkError> {
        let bytes = self.read(len * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}
