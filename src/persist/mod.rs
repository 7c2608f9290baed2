//! Files that must survive a crash and be read back exactly: crash-safe replacement of a file
//! (`atomic`), and checkpoints (`checkpoint`): the one safetensors reader and writer of the
//! crate, with one error type, and the checkpoint files of a run directory. No Vulkan here:
//! everything works on host data.

pub(crate) mod atomic;
pub mod checkpoint;
