//! Everything a training run is configured by. Stored as JSON in every checkpoint, so that
//! `--resume` continues with exactly the run's settings.

use crate::nn::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    pub seed: u64,
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
}

fn default_swd_num() -> usize {
    256
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
            seed: 0,
            sample_every: 500,
            checkpoint_every: 2000,
            keep_checkpoints: 3,
            swd_every: 0,
            swd_num: default_swd_num(),
        }
    }
}

impl TrainConfig {
    /// A description of the first invalid setting, if any.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate()?;
        if self.batch == 0 || self.batch % 4 != 0 {
            return Err(format!(
                "batch {} must be a positive multiple of 4 (the minibatch-stddev group)",
                self.batch
            ));
        }
        let positive = [
            ("accumulate", self.accumulate as f64),
            ("steps", self.steps as f64),
            ("r1-interval", self.r1_interval as f64),
            ("plp-interval", self.plp_interval as f64),
            ("sample-every", self.sample_every as f64),
            ("checkpoint-every", self.checkpoint_every as f64),
            ("lr", self.lr as f64),
            ("ema-kimg", self.ema_kimg as f64),
        ];
        for (name, v) in positive {
            if v.is_nan() || v <= 0.0 {
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
        if self.mapping_lr.is_nan() || self.mapping_lr < 0.0 || self.r1_gamma < 0.0 {
            return Err("--mapping-lr and --r1-gamma must not be negative".into());
        }
        Ok(())
    }

    /// The EMA decay per step: half-life `ema_kimg` thousand images.
    pub fn ema_beta(&self) -> f32 {
        let images = (self.batch * self.accumulate) as f64;
        0.5f64.powf(images / (self.ema_kimg as f64 * 1000.0)) as f32
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
