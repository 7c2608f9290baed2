//! vkgan: StyleGAN2 training and image generation on any Vulkan 1.1+ device.
//!
//! Layers, each importing only those below it: `vk` (the only Vulkan code) <- `tensor`.

pub mod vk;
