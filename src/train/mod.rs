//! Host-side outputs of `vkgan train` / `vkgan generate`: checkpoints, sample images, loss plots
//! and the metrics log. Nothing here touches Vulkan: everything takes host data (`Vec<f32>`, names,
//! shapes), so these pieces are tested without a device.

mod atomic;
pub mod checkpoint;
mod font;
pub mod images;
pub mod metrics;
pub mod plot;
