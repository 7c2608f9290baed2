//! The sizes of the three networks, and the feature counts derived from them exactly as the
//! reference derives them.

use serde::{Deserialize, Serialize};

/// Largest latent size and feature count of any layer. Generous (the reference uses 512) but
/// finite, so that a typo or a hostile checkpoint config is refused before anything is allocated.
pub const MAX_FEATURES: usize = 4096;
/// Most mapping-network layers (the reference uses 8).
pub const MAX_MAPPING_LAYERS: usize = 64;
/// Most parameters of the three networks together: 2^28 (1 GiB of f32; a run holds about four
/// copies with the EMA and Adam's moments). The reference's 32x32 model has about 25 million.
pub const MAX_PARAMETERS: usize = 1 << 28;

/// Every size of the mapping network, generator and discriminator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Output resolution: a power of two from 8 to 256.
    pub image_size: usize,
    pub d_latent: usize,
    pub mapping_layers: usize,
    pub g_features: usize,
    pub g_max_features: usize,
    pub d_features: usize,
    pub d_max_features: usize,
}

impl Default for ModelConfig {
    /// The reference's defaults (experiment.py): 32x32, d_latent 512, 8 mapping layers,
    /// generator features 32..512, discriminator features 64..512.
    fn default() -> Self {
        ModelConfig {
            image_size: 32,
            d_latent: 512,
            mapping_layers: 8,
            g_features: 32,
            g_max_features: 512,
            d_features: 64,
            d_max_features: 512,
        }
    }
}

impl ModelConfig {
    /// A description of the first invalid field, if any.
    pub fn validate(&self) -> Result<(), String> {
        if !self.image_size.is_power_of_two() || !(8..=256).contains(&self.image_size) {
            return Err(format!(
                "image size {} must be a power of two from 8 to 256",
                self.image_size
            ));
        }
        let mapping = [("mapping_layers", self.mapping_layers, MAX_MAPPING_LAYERS)];
        let features = [
            ("d_latent", self.d_latent),
            ("g_features", self.g_features),
            ("g_max_features", self.g_max_features),
            ("d_features", self.d_features),
            ("d_max_features", self.d_max_features),
        ]
        .map(|(name, v)| (name, v, MAX_FEATURES));
        for (name, v, max) in mapping.into_iter().chain(features) {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
            if v > max {
                return Err(format!("{name} {v} is larger than the limit of {max}"));
            }
        }
        // Only now is the spec list itself bounded (at most 64 mapping layers, 7 blocks).
        let parameters: usize = crate::nn::parameter_specs(self)
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        if parameters > MAX_PARAMETERS {
            return Err(format!(
                "the model has {parameters} parameters, more than the limit of {MAX_PARAMETERS}"
            ));
        }
        Ok(())
    }

    pub fn log_resolution(&self) -> usize {
        self.image_size.trailing_zeros() as usize
    }

    /// Generator features per block, from 4x4 up: `min(max, n * 2^i)` for i = log_res-2 .. 0.
    pub fn generator_features(&self) -> Vec<usize> {
        (0..=self.log_resolution() - 2)
            .rev()
            .map(|i| (self.g_features << i).min(self.g_max_features))
            .collect()
    }

    /// One style per generator block (resolutions 4, 8, ..., image_size).
    pub fn generator_blocks(&self) -> usize {
        self.log_resolution() - 1
    }

    /// Discriminator features: `min(max, n * 2^i)` for i = 0 .. log_res-2.
    pub fn discriminator_features(&self) -> Vec<usize> {
        (0..self.log_resolution() - 1)
            .map(|i| (self.d_features << i).min(self.d_max_features))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_match_the_reference() {
        let c = ModelConfig::default();
        assert_eq!(c.generator_features(), vec![256, 128, 64, 32]);
        assert_eq!(c.generator_blocks(), 4);
        assert_eq!(c.discriminator_features(), vec![64, 128, 256, 512]);
        let tiny = ModelConfig {
            image_size: 16,
            d_latent: 32,
            mapping_layers: 2,
            g_features: 8,
            g_max_features: 32,
            d_features: 8,
            d_max_features: 32,
        };
        assert_eq!(tiny.generator_features(), vec![32, 16, 8]);
        assert_eq!(tiny.discriminator_features(), vec![8, 16, 32]);
    }

    #[test]
    fn rejects_bad_sizes() {
        for size in [0, 4, 24, 512] {
            let c = ModelConfig {
                image_size: size,
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{size}");
        }
    }

    #[test]
    fn sizes_are_bounded_before_anything_is_allocated() {
        let huge = |f: fn(&mut ModelConfig)| {
            let mut c = ModelConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        let e = huge(|c| c.mapping_layers = 100_000_000);
        assert!(
            e.contains("mapping_layers 100000000") && e.contains("limit of 64"),
            "{e}"
        );
        let e = huge(|c| c.d_latent = 1 << 40);
        assert!(e.contains("d_latent") && e.contains("4096"), "{e}");
        let e = huge(|c| c.g_max_features = usize::MAX);
        assert!(e.contains("g_max_features"), "{e}");
        let e = huge(|c| {
            c.image_size = 256;
            c.g_features = 4096;
            c.g_max_features = 4096;
        });
        assert!(e.contains("parameters") && e.contains("limit"), "{e}");
        assert!(ModelConfig::default().validate().is_ok());
    }
}
