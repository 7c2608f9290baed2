//! The device limits vkgan's kernels and recorder must stay within, and the minimum-limits mode
//! that holds any device to the Vulkan 1.1 required minimums, so that the paths small devices
//! take (storage-buffer I/O past 65536 texels, grids folded at 65535 workgroups) run and are
//! tested on any device.

use ash::vk;

/// Which limits a context keeps to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimitsMode {
    /// What the device reports.
    #[default]
    Device,
    /// The Vulkan 1.1 required minimums (or the device's, where lower), whatever the device
    /// reports: `VKGAN_LIMITS=minimum`.
    Minimum,
}

impl LimitsMode {
    /// `VKGAN_LIMITS`: unset or `device` for the device's own limits, `minimum` for the
    /// Vulkan 1.1 minimums.
    pub fn from_env() -> Result<Self, String> {
        env_choice(
            "VKGAN_LIMITS",
            &[
                ("device", LimitsMode::Device),
                ("minimum", LimitsMode::Minimum),
            ],
        )
        .map(Option::unwrap_or_default)
    }

    pub fn label(self) -> &'static str {
        match self {
            LimitsMode::Device => "the device's",
            LimitsMode::Minimum => "Vulkan 1.1 minimums (VKGAN_LIMITS=minimum)",
        }
    }
}

/// The value of the environment variable `name` among `choices`; `None` when it is unset or
/// empty, an error naming the variable and the choices otherwise.
pub(crate) fn env_choice<T: Copy>(name: &str, choices: &[(&str, T)]) -> Result<Option<T>, String> {
    let value = match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(e) => return Err(format!("{name}: {e}")),
        Ok(v) if v.is_empty() => return Ok(None),
        Ok(v) => v,
    };
    match choices.iter().find(|(label, _)| *label == value) {
        Some(&(_, choice)) => Ok(Some(choice)),
        None => {
            let names: Vec<String> = choices.iter().map(|(l, _)| format!("`{l}`")).collect();
            Err(format!(
                "{name}={value:?} is not one of {}",
                names.join(", ")
            ))
        }
    }
}

/// The limits that decide how a kernel is dispatched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Texels in one storage texel buffer view.
    pub max_texel_buffer_elements: u32,
    /// Bytes of one storage-buffer binding.
    pub max_storage_buffer_range: u32,
    pub max_shared_memory: u32,
    pub max_workgroup_invocations: u32,
    pub max_workgroup_size: [u32; 3],
    pub max_workgroup_count: [u32; 3],
    pub max_push_constants: u32,
    /// Whether r32f and rgba32f both work as storage texel buffers (required by the spec, but
    /// checked, not assumed).
    pub texel_formats: bool,
    /// Whether compute shaders have subgroup arithmetic (Vulkan 1.1 guarantees only the basic
    /// subgroup operations).
    pub subgroup_arithmetic: bool,
}

impl Limits {
    /// The Vulkan 1.1 required minimums (the spec's "Required Limits" table).
    pub const VULKAN_1_1_MINIMUM: Limits = Limits {
        max_texel_buffer_elements: 65536,
        max_storage_buffer_range: 1 << 27,
        max_shared_memory: 16384,
        max_workgroup_invocations: 128,
        max_workgroup_size: [128, 128, 64],
        max_workgroup_count: [65535, 65535, 65535],
        max_push_constants: 128,
        texel_formats: true,
        subgroup_arithmetic: false,
    };

    pub(crate) fn reported(
        limits: &vk::PhysicalDeviceLimits,
        texel_formats: bool,
        subgroup_arithmetic: bool,
    ) -> Self {
        Limits {
            max_texel_buffer_elements: limits.max_texel_buffer_elements,
            max_storage_buffer_range: limits.max_storage_buffer_range,
            max_shared_memory: limits.max_compute_shared_memory_size,
            max_workgroup_invocations: limits.max_compute_work_group_invocations,
            max_workgroup_size: limits.max_compute_work_group_size,
            max_workgroup_count: limits.max_compute_work_group_count,
            max_push_constants: limits.max_push_constants_size,
            texel_formats,
            subgroup_arithmetic,
        }
    }

    /// The lower of each limit.
    pub fn min(&self, other: &Limits) -> Limits {
        let axes = |a: [u32; 3], b: [u32; 3]| [a[0].min(b[0]), a[1].min(b[1]), a[2].min(b[2])];
        Limits {
            max_texel_buffer_elements: self
                .max_texel_buffer_elements
                .min(other.max_texel_buffer_elements),
            max_storage_buffer_range: self
                .max_storage_buffer_range
                .min(other.max_storage_buffer_range),
            max_shared_memory: self.max_shared_memory.min(other.max_shared_memory),
            max_workgroup_invocations: self
                .max_workgroup_invocations
                .min(other.max_workgroup_invocations),
            max_workgroup_size: axes(self.max_workgroup_size, other.max_workgroup_size),
            max_workgroup_count: axes(self.max_workgroup_count, other.max_workgroup_count),
            max_push_constants: self.max_push_constants.min(other.max_push_constants),
            texel_formats: self.texel_formats && other.texel_formats,
            subgroup_arithmetic: self.subgroup_arithmetic && other.subgroup_arithmetic,
        }
    }

    /// The limits a context in `mode` keeps to on a device reporting these.
    pub fn in_mode(&self, mode: LimitsMode) -> Limits {
        match mode {
            LimitsMode::Device => *self,
            LimitsMode::Minimum => self.min(&Limits::VULKAN_1_1_MINIMUM),
        }
    }

    /// Bytes of an f32 tensor past which it moves through storage buffers instead of texel
    /// buffers (0: texel buffers are never used).
    pub fn texel_bytes(&self) -> u64 {
        if self.texel_formats {
            self.max_texel_buffer_elements as u64 * 4
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_mode_takes_the_lower_of_each_limit() {
        let big = Limits {
            max_texel_buffer_elements: 1 << 27,
            max_storage_buffer_range: u32::MAX,
            max_shared_memory: 49152,
            max_workgroup_invocations: 1024,
            max_workgroup_size: [1024, 1024, 64],
            max_workgroup_count: [u32::MAX >> 1, 65535, 65535],
            max_push_constants: 256,
            texel_formats: true,
            subgroup_arithmetic: true,
        };
        assert_eq!(big.in_mode(LimitsMode::Device), big);
        assert_eq!(big.in_mode(LimitsMode::Minimum), Limits::VULKAN_1_1_MINIMUM);
        let odd = Limits {
            max_shared_memory: 8192,
            texel_formats: false,
            ..Limits::VULKAN_1_1_MINIMUM
        };
        let min = odd.in_mode(LimitsMode::Minimum);
        assert_eq!(min.max_shared_memory, 8192);
        assert!(!min.texel_formats);
        assert_eq!(min.texel_bytes(), 0);
        assert_eq!(Limits::VULKAN_1_1_MINIMUM.texel_bytes(), 262144);
    }
}
