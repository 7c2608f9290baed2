//! Everything a training run is configured by. Stored as JSON in every checkpoint, so that
//! `--resume` continues with exactly the run's settings.

use super::augment::Augment;
use crate::nn::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest batch (images per micro-batch).
pub const MAX_BATCH: usize = 4096;
/// Most micro-batches per optimizer step.
pub const MAX_ACCUMULATE: usize = 1024;
/// Most images per optimizer step (batch times accumulation): each micro-batch has its own
/// host and device buffers.
pub const MAX_IMAGES_PER_STEP: usize = 65536;
/// Most training steps: step indices reach the shaders' random streams as 32-bit values.
pub const MAX_STEPS: u64 = 1_000_000_000;
/// Most images on each side of an MS-SWD measurement.
pub const MAX_SWD_NUM: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    /// None: the embedded emoji set.
    pub data: Option<PathBuf>,
    pub batch: usize,
    /// Gradient accumulation: micro-batches of `batch` per optimizer step.
    pub accumulate: usize,
    pub steps: u64,
    pub lr: f32,
    pub mapping_lr: f32,
    pub betas: (f32, f32),
    pub adam_eps: f32,
    /// Maximum global gradient norm, per network.
    pub clip: f32,
    pub r1_gamma: f32,
    pub r1_interval: u64,
    pub plp_interval: u64,
    /// The path-length penalty starts after this many steps.
    pub plp_after: u64,
    pub plp_beta: f32,
    pub style_mixing_prob: f32,
    /// Half-life of the generator's exponential moving average, in thousands of images.
    pub ema_kimg: f32,
    /// The half-life is at most this fraction of the images seen so far (NVlabs'
    /// `ema_rampup`), so that the average of a young run is not dominated by its random start.
    /// 0: no ramp (runs from before the ramp existed read as 0 and resume unchanged).
    #[serde(default)]
    pub ema_rampup: f32,
    pub seed: u64,
    /// Augmentation of the discriminator's inputs (runs from before it existed: none).
    #[serde(default)]
    pub augment: Augment,
    /// ADA's target for r_t = E[sign(D(real))].
    #[serde(default = "default_ada_target")]
    pub ada_target: f32,
    /// Steps between adjustments of ADA's p.
    #[serde(default = "default_ada_interval")]
    pub ada_interval: u64,
    /// Thousands of images over which p can move from 0 to 1.
    #[serde(default = "default_ada_kimg")]
    pub ada_kimg: f32,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Checkpoints kept (older ones are deleted once a newer one is safely written).
    pub keep_checkpoints: usize,
    /// Steps between MS-SWD measurements of the EMA generator against the data (0: never).
    #[serde(default)]
    pub swd_every: u64,
    /// Images on each side of those measurements.
    #[serde(default = "default_swd_num")]
    pub swd_num: usize,
    /// The checkpoint file whose weights the run started from (`--init-from`), or None for
    /// weights initialised from the seed. A record only: resuming restores every weight from
    /// the run's own checkpoint and never reads this file (older runs read as None).
    #[serde(default)]
    pub init_from: Option<PathBuf>,
}

fn default_swd_num() -> usize {
    256
}

/// NVlabs' ADA settings.
fn default_ada_target() -> f32 {
    0.6
}

fn default_ada_interval() -> u64 {
    4
}

fn default_ada_kimg() -> f32 {
    500.0
}

impl Default for TrainConfig {
    /// The reference's defaults (experiment.py), with the official StyleGAN2's EMA half-life.
    fn default() -> Self {
        TrainConfig {
            model: ModelConfig::default(),
            data: None,
            batch: 32,
            accumulate: 1,
            steps: 150_000,
            lr: 1e-3,
            mapping_lr: 1e-5,
            betas: (0.0, 0.99),
            adam_eps: 1e-8,
            clip: 1.0,
            r1_gamma: 10.0,
            r1_interval: 4,
            plp_interval: 32,
            plp_after: 5000,
            plp_beta: 0.99,
            style_mixing_prob: 0.9,
            ema_kimg: 10.0,
            ema_rampup: 0.05,
            seed: 0,
            augment: Augment::None,
            ada_target: default_ada_target(),
            ada_interval: default_ada_interval(),
            ada_kimg: default_ada_kimg(),
            sample_every: 500,
            checkpoint_every: 2000,
            keep_checkpoints: 3,
            swd_every: 0,
            swd_num: default_swd_num(),
            init_from: None,
        }
    }
}

impl TrainConfig {
    /// A description of the first invalid setting, if any.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        self.check_sizes()?;
        self.check_finite()?;
        self.check_ranges()
    }

    /// The batch, accumulation, step and SWD counts against their limits.
    fn check_sizes(&self) -> Result<(), String> {
        if self.batch == 0 || self.batch % 4 != 0 {
            return Err(format!(
                "batch {} must be a positive multiple of 4 (the minibatch-stddev group)",
                self.batch
            ));
        }
        let bounded = [
            ("batch", self.batch as u64, MAX_BATCH as u64),
            ("accumulate", self.accumulate as u64, MAX_ACCUMULATE as u64),
            ("steps", self.steps, MAX_STEPS),
            ("swd-num", self.swd_num as u64, MAX_SWD_NUM as u64),
        ];
        for (name, v, max) in bounded {
            if v > max {
                return Err(format!("--{name} {v} is larger than the limit of {max}"));
            }
        }
        // Both factors are bounded above, so the product cannot overflow.
        let images = self.batch * self.accumulate;
        if images > MAX_IMAGES_PER_STEP {
            return Err(format!(
                "--batch {} times --accumulate {} is {images} images per step, more than the \
                 limit of {MAX_IMAGES_PER_STEP}",
                self.batch, self.accumulate
            ));
        }
        Ok(())
    }

    fn check_finite(&self) -> Result<(), String> {
        // Every float must be finite: NaN compares false with everything, so a range check
        // alone lets it through (and silently disables whatever it scales), and an infinite
        // rate passes "positive" but poisons the first step.
        let floats = [
            ("lr", self.lr),
            ("mapping-lr", self.mapping_lr),
            ("betas", self.betas.0),
            ("betas", self.betas.1),
            ("adam-eps", self.adam_eps),
            ("clip", self.clip),
            ("r1-gamma", self.r1_gamma),
            ("plp-beta", self.plp_beta),
            ("style-mixing-prob", self.style_mixing_prob),
            ("ema-kimg", self.ema_kimg),
            ("ema-rampup", self.ema_rampup),
            ("ada-target", self.ada_target),
            ("ada-kimg", self.ada_kimg),
        ];
        for (name, v) in floats {
            if !v.is_finite() {
                return Err(format!("--{name} {v} must be a finite number"));
            }
        }
        Ok(())
    }

    /// Each setting within the range where it means something.
    fn check_ranges(&self) -> Result<(), String> {
        let positive = [
            ("accumulate", self.accumulate as f64),
            ("steps", self.steps as f64),
            ("r1-interval", self.r1_interval as f64),
            ("plp-interval", self.plp_interval as f64),
            ("sample-every", self.sample_every as f64),
            ("checkpoint-every", self.checkpoint_every as f64),
            ("lr", self.lr as f64),
            ("ema-kimg", self.ema_kimg as f64),
            ("ada-interval", self.ada_interval as f64),
            ("ada-kimg", self.ada_kimg as f64),
            ("adam-eps", self.adam_eps as f64),
            ("clip", self.clip as f64),
        ];
        for (name, v) in positive {
            if v <= 0.0 {
                return Err(format!("--{name} must be positive"));
            }
        }
        if !(0.0..1.0).contains(&self.betas.0) || !(0.0..1.0).contains(&self.betas.1) {
            return Err("--betas must both lie in [0, 1)".into());
        }
        if self.swd_every > 0 && self.swd_num < 2 {
            return Err("--swd-num must be at least 2".into());
        }
        if !(0.0..=1.0).contains(&self.style_mixing_prob) {
            return Err("--style-mixing-prob must lie in [0, 1]".into());
        }
        if !(0.0..1.0).contains(&self.plp_beta) {
            return Err("--plp-beta must lie in [0, 1)".into());
        }
        if !(-1.0..=1.0).contains(&self.ada_target) {
            return Err("--ada-target must lie in [-1, 1] (it is a mean of signs)".into());
        }
        if self.ema_rampup < 0.0 {
            return Err("--ema-rampup must not be negative (0: no ramp)".into());
        }
        if self.mapping_lr < 0.0 || self.r1_gamma < 0.0 {
            return Err("--mapping-lr and --r1-gamma must not be negative".into());
        }
        Ok(())
    }

    /// The EMA decay of step `idx` (from 0): half-life `ema_kimg` thousand images, or
    /// `ema_rampup` times the images seen before the step when that is less. The first step
    /// of a ramped run has decay 0: the average starts as the first updated weights.
    pub fn ema_beta(&self, idx: u64) -> f32 {
        let per_step = (self.batch * self.accumulate) as f64;
        let mut half_life = self.ema_kimg as f64 * 1000.0;
        if self.ema_rampup > 0.0 {
            half_life = half_life.min(idx as f64 * per_step * self.ema_rampup as f64);
        }
        if half_life <= 0.0 {
            return 0.0;
        }
        0.5f64.powf(per_step / half_life) as f32
    }

    /// Whether step `idx` (from 0) carries the R1 penalty.
    pub fn r1_at(&self, idx: u64) -> bool {
        self.r1_gamma > 0.0 && (idx + 1) % self.r1_interval == 0
    }

    /// Whether step `idx` carries the path-length penalty.
    pub fn plp_at(&self, idx: u64) -> bool {
        idx > self.plp_after && (idx + 1) % self.plp_interval == 0
    }
}

/// Named settings for common cases; the defaults stay the reference's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The reference's defaults.
    Reference,
    /// Small and fast: visible learning on a 2-core CPU through lavapipe within minutes.
    Quick,
}

impl Preset {
    pub fn config(self) -> TrainConfig {
        match self {
            Preset::Reference => TrainConfig::default(),
            Preset::Quick => TrainConfig {
                model: ModelConfig {
                    image_size: 16,
                    d_latent: 64,
                    mapping_layers: 2,
                    g_features: 16,
                    g_max_features: 64,
                    d_features: 16,
                    d_max_features: 64,
                },
                batch: 16,
                steps: 1500,
                lr: 2e-3,
                mapping_lr: 2e-4,
                plp_after: 500,
                plp_interval: 8,
                ema_kimg: 1.0,
                sample_every: 100,
                checkpoint_every: 250,
                swd_every: 250,
                ..TrainConfig::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ema_half_life_ramps_with_the_images_seen() {
        let cfg = super::TrainConfig {
            batch: 32,
            ema_kimg: 10.0,
            ema_rampup: 0.05,
            ..super::TrainConfig::default()
        };
        // Step 0: no images seen, the average takes the weights.
        assert_eq!(cfg.ema_beta(0), 0.0);
        // Step 100: 3,200 images seen, half-life 160 images: 0.5^(32/160).
        assert!((cfg.ema_beta(100) - 0.5f32.powf(0.2)).abs() < 1e-7);
        // From 200,000 images on, the full 10 kimg.
        let full = 0.5f64.powf(32.0 / 10_000.0) as f32;
        assert_eq!(cfg.ema_beta(6250), full);
        assert_eq!(cfg.ema_beta(1_000_000), full);
        let flat = super::TrainConfig {
            ema_rampup: 0.0,
            ..cfg.clone()
        };
        assert_eq!(
            flat.ema_beta(0),
            full,
            "no ramp: the full half-life at once"
        );
        // A config saved before the ramp existed reads as no ramp.
        let mut old = serde_json::to_value(&cfg).unwrap();
        old.as_object_mut().unwrap().remove("ema_rampup");
        let old: super::TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.ema_rampup, 0.0);
    }

    use super::*;

    fn refused(f: impl Fn(&mut TrainConfig)) -> String {
        let mut c = Preset::Quick.config();
        f(&mut c);
        c.validate().unwrap_err()
    }

    #[test]
    fn sizes_are_bounded_with_the_limit_named() {
        let e = refused(|c| c.accumulate = 1_000_000);
        assert!(
            e.contains("--accumulate 1000000") && e.contains("limit of 1024"),
            "{e}"
        );
        let e = refused(|c| c.batch = 1 << 20);
        assert!(e.contains("--batch 1048576") && e.contains("4096"), "{e}");
        let e = refused(|c| c.steps = u64::MAX);
        assert!(e.contains("--steps") && e.contains("limit"), "{e}");
        let e = refused(|c| c.swd_num = usize::MAX);
        assert!(e.contains("--swd-num"), "{e}");
        let e = refused(|c| {
            c.batch = 4096;
            c.accumulate = 1024;
        });
        assert!(e.contains("images per step"), "{e}");
        let e = refused(|c| c.model.mapping_layers = 100_000_000);
        assert!(e.contains("mapping_layers 100000000"), "{e}");
        assert!(Preset::Quick.config().validate().is_ok());
        assert!(TrainConfig::default().validate().is_ok());
    }

    #[test]
    fn non_finite_values_are_refused() {
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = refused(|c| c.r1_gamma = v);
            assert!(e.contains("--r1-gamma") && e.contains("finite"), "{e}");
            let e = refused(|c| c.lr = v);
            assert!(e.contains("--lr") && e.contains("finite"), "{e}");
            let e = refused(|c| c.mapping_lr = v);
            assert!(e.contains("--mapping-lr"), "{e}");
            let e = refused(|c| c.ema_kimg = v);
            assert!(e.contains("--ema-kimg"), "{e}");
            let e = refused(|c| c.adam_eps = v);
            assert!(e.contains("--adam-eps"), "{e}");
            let e = refused(|c| c.betas.1 = v);
            assert!(e.contains("--betas"), "{e}");
        }
    }
}
