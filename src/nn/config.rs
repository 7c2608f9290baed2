//! The sizes of the three networks, and the feature counts derived from them exactly as the
//! reference derives them.

use serde::{Deserialize, Serialize};

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
        for (name, v) in [
            ("d_latent", self.d_latent),
            ("mapping_layers", self.mapping_layers),
            ("g_features", self.g_features),
            ("g_max_features", self.g_max_features),
            ("d_features", self.d_features),
            ("d_max_features", self.d_max_features),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
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
}
