//! Files that must survive a crash and be read back exactly: crash-safe replacement of a file
//! (`atomic`), checkpoints as safetensors files (`checkpoint`: the crate's one reader and
//! writer of the format, with one error type) and the checkpoint files of a run directory
//! (`run_dir`: names, retention, the newest readable one). No Vulkan here: everything works on
//! host data.

pub(crate) mod atomic;
pub mod checkpoint;
pub mod run_dir;
