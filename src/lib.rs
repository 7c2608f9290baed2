//! vkgan: StyleGAN2 training and image generation on any Vulkan 1.1+ device.
//!
//! Layers, each importing only those below it:
//! `vk` (the only Vulkan code) <- `tensor` <- `ops` <-> `autograd` (the tape calls `ops::add`
//! to sum gradients; ops build their backward on the tape) <- `nn` (the networks) and `metrics`
//! (the multi-scale sliced Wasserstein distance, tapes of ops plus its own non-differentiable
//! ones) <- `train` (the training job on the device) <- `infer` (the commands that use a
//! generator, and the training-step benchmark). Four modules stand apart and need no Vulkan:
//! `dist` (the ranks of a data-parallel job, their shares of a batch and their collectives),
//! `data` (image folders and the embedded emoji set, as shuffled batches), `persist`
//! (checkpoints, the one safetensors reader, crash-safe files; `nn` loads parameters through
//! it) and `outputs` (image grids, plots and the run log, from host data).

pub mod autograd;
pub mod data;
pub mod dist;
pub mod infer;
pub mod metrics;
pub mod nn;
pub mod ops;
pub mod outputs;
pub mod persist;
pub mod tensor;
pub mod train;
pub mod vk;

#[doc(hidden)]
pub mod testing;
