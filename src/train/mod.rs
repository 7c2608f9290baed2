//! Training: the optimizer recorded into the step (`optim`), and the host-side outputs of
//! `vkgan train` / `vkgan generate`: checkpoints, sample images, loss plots and the metrics log.
//! The output modules never touch Vulkan: they take host data (`Vec<f32>`, names, shapes), so
//! they are tested without a device.

mod atomic;
pub mod bench;
pub mod checkpoint;
pub mod config;
mod font;
pub mod generate;
pub mod images;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod programs;
pub mod run;
pub mod sample;
pub mod state;
