//! vkgan: StyleGAN2 training and image generation on any Vulkan 1.1+ device.
//!
//! Layers, each importing only those below it:
//! `vk` (the only Vulkan code) <- `tensor` <- `ops` <-> `autograd` (the tape calls `ops::add`
//! to sum gradients; ops build their backward on the tape). `data` (image folders and the
//! embedded emoji set, as shuffled batches) stands apart and needs no Vulkan. `metrics`
//! (the multi-scale sliced Wasserstein distance) builds tapes of ops plus its own
//! non-differentiable ones.

pub mod autograd;
pub mod data;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod tensor;
pub mod train;
pub mod vk;

#[doc(hidden)]
pub mod testing;
