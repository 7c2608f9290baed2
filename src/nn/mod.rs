//! StyleGAN2's networks on the tape: configuration, parameters (reference names, safetensors),
//! layers, the three networks, losses and regularizers.

pub mod augment;
pub mod config;
pub mod layers;
pub mod losses;
pub mod networks;
pub mod params;
pub mod step;

pub use config::ModelConfig;
pub use networks::{discriminator, discriminator_features, generator, mapping, BlockNoise};
pub use params::{parameter_specs, Bound, Net, ParamError, ParamSpec, ParamStore};
