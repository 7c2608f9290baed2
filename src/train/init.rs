//! Where a fine-tuning run (`vkgan train --init-from`) takes its weights from: the checkpoint
//! read (a vkgan checkpoint, the newest readable one of a run directory, or a PyTorch
//! reference state dict), its sizes, and whether the model-size flags agree with them. The
//! run itself is a new one, with its own settings, seed, data, step count and output; its
//! state is built by [`TrainState::init_from`].

use super::config::TrainConfig;
use super::state::TrainState;
use crate::infer::load::{infer_config, read_checkpoint};
use crate::nn::{parameter_specs, ModelConfig};
use crate::persist::checkpoint::Checkpoint;
use anyhow::{anyhow, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The fields of [`ModelConfig`], in the order of their flags (`image_size` is
/// `--image-size`).
const SIZE_FIELDS: [&str; 7] = [
    "image_size",
    "d_latent",
    "mapping_layers",
    "g_features",
    "g_max_features",
    "d_features",
    "d_max_features",
];

/// The checkpoint a new run starts from, read and checked.
pub struct InitSource {
    /// The file read (for a run directory, its newest checkpoint that reads).
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
    /// Its sizes: a vkgan checkpoint's stored ones, or inferred from a state dict's shapes.
    pub model: ModelConfig,
    /// The step of the vkgan run it was saved at; None for a reference state dict.
    pub step: Option<u64>,
    /// Newer checkpoints of the run directory that did not read (why, naming each file).
    pub skipped: Vec<String>,
}

impl InitSource {
    /// Reads the checkpoint `path` names, as `generate --checkpoint` resolves it, and checks on
    /// the host that it holds every tensor a run of its sizes starts from.
    pub fn read(path: &Path) -> Result<Self> {
        let (path, checkpoint, skipped) = read_checkpoint(path)?;
        let stored = TrainState::config_of(&checkpoint).ok();
        let model = match &stored {
            Some(cfg) => cfg.model.clone(),
            None => infer_config(&checkpoint).map_err(|e| anyhow!("{}: {e}", path.display()))?,
        };
        model
            .validate()
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        TrainState::check_init(&checkpoint, &model)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let step = match stored {
            Some(_) => checkpoint.meta_parse("step").ok(),
            None => None,
        };
        Ok(InitSource {
            path,
            checkpoint,
            model,
            step,
            skipped,
        })
    }

    /// Whether the moving average comes from the checkpoint (else it starts as a copy of the
    /// generator's weights).
    pub fn has_ema(&self) -> bool {
        super::state::has_ema(&self.checkpoint)
    }

    /// The run's settings: `base` (the preset with the flags applied) with the checkpoint's
    /// sizes and the file it starts from. `wanted` is the checkpoint's sizes with the
    /// model-size flags the user gave applied; see [`InitSource::check_sizes`].
    pub fn train_config(&self, base: TrainConfig, wanted: &ModelConfig) -> Result<TrainConfig> {
        self.check_sizes(wanted).map_err(|e| anyhow!(e))?;
        let path = std::path::absolute(&self.path).unwrap_or_else(|_| self.path.clone());
        Ok(TrainConfig {
            model: self.model.clone(),
            init_from: Some(path),
            ..base
        })
    }

    /// Whether the sizes `wanted` (the checkpoint's, with the model-size flags given applied)
    /// describe the checkpoint's networks: an error naming the first flag that would change
    /// them, with its value and the checkpoint's. A flag that differs from the checkpoint's
    /// value without changing any tensor (such as a feature maximum above every block's count,
    /// which a state dict's inferred sizes cannot tell apart) is accepted.
    pub fn check_sizes(&self, wanted: &ModelConfig) -> Result<(), String> {
        let json = |m: &ModelConfig| serde_json::to_value(m).expect("a ModelConfig serializes");
        let (ours, theirs) = (json(&self.model), json(wanted));
        let (Value::Object(ours_map), Value::Object(theirs_map)) = (&ours, &theirs) else {
            unreachable!("a ModelConfig serializes to an object");
        };
        assert_eq!(ours_map.len(), SIZE_FIELDS.len(), "every size is checked");
        let mut given = Vec::new();
        for field in SIZE_FIELDS {
            let (have, want) = (&ours_map[field], &theirs_map[field]);
            if want == have {
                continue;
            }
            let flag = format!("--{}", field.replace('_', "-"));
            let mut one = ours.clone();
            one[field] = want.clone();
            let one: ModelConfig = serde_json::from_value(one).expect("the same fields");
            if !same_networks(&self.model, &one) {
                return Err(format!(
                    "{flag} {want} does not match the checkpoint's {have} ({}): a run started \
                     with --init-from has its checkpoint's model sizes",
                    self.path.display()
                ));
            }
            given.push(flag);
        }
        if !same_networks(&self.model, wanted) {
            return Err(format!(
                "{} together do not match the checkpoint's model sizes ({}): a run started \
                 with --init-from has its checkpoint's",
                given.join(" and "),
                self.path.display()
            ));
        }
        Ok(())
    }

    /// `PATH (step N)` for a vkgan checkpoint, `PATH (a PyTorch state dict)` for one without
    /// a run's metadata: for the announcement of the run.
    pub fn describe(&self) -> String {
        match self.step {
            Some(step) => format!("{} (step {step})", self.path.display()),
            None => format!("{} (a PyTorch state dict)", self.path.display()),
        }
    }
}

/// Whether two sizes give the same tensors: names and shapes of every parameter (the networks
/// are built from those alone). A configuration that is invalid gives none.
fn same_networks(a: &ModelConfig, b: &ModelConfig) -> bool {
    if b.validate().is_err() {
        return false;
    }
    let shapes = |m: &ModelConfig| -> Vec<(String, Vec<usize>)> {
        parameter_specs(m)
            .into_iter()
            .map(|s| (s.name, s.shape))
            .collect()
    };
    shapes(a) == shapes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(model: ModelConfig) -> InitSource {
        InitSource {
            path: "ck.safetensors".into(),
            checkpoint: Checkpoint::new(),
            model,
            step: None,
            skipped: Vec::new(),
        }
    }

    fn tiny() -> ModelConfig {
        crate::testing::tiny_model()
    }

    #[test]
    fn a_size_flag_that_changes_the_networks_is_refused_naming_both_values() {
        let src = source(tiny());
        assert_eq!(src.check_sizes(&tiny()), Ok(()));
        let e = src
            .check_sizes(&ModelConfig {
                image_size: 16,
                ..tiny()
            })
            .unwrap_err();
        assert!(
            e.starts_with("--image-size 16 does not match the checkpoint's 8 (ck.safetensors)"),
            "{e}"
        );
        let e = src
            .check_sizes(&ModelConfig {
                d_latent: 16,
                ..tiny()
            })
            .unwrap_err();
        assert!(e.starts_with("--d-latent 16 "), "{e}");
        // Invalid sizes cannot match either.
        let e = src
            .check_sizes(&ModelConfig {
                image_size: 7,
                ..tiny()
            })
            .unwrap_err();
        assert!(e.starts_with("--image-size 7 "), "{e}");
        // Several: the first in the flags' order.
        let e = src
            .check_sizes(&ModelConfig {
                g_features: 2,
                d_features: 2,
                ..tiny()
            })
            .unwrap_err();
        assert!(e.starts_with("--g-features 2 "), "{e}");
    }

    #[test]
    fn an_equivalent_size_flag_is_accepted() {
        // 8x8: generator features [min(8, max), min(4, max)], so any maximum from 8 up gives
        // the same tensors.
        let src = source(tiny());
        let wanted = ModelConfig {
            g_max_features: 512,
            d_max_features: 512,
            ..tiny()
        };
        assert_eq!(src.check_sizes(&wanted), Ok(()));
        let cfg = src.train_config(TrainConfig::default(), &wanted).unwrap();
        assert_eq!(cfg.model, tiny(), "the run has the checkpoint's sizes");
        let recorded = cfg.init_from.unwrap();
        assert!(recorded.is_absolute() && recorded.ends_with("ck.safetensors"));
        // A lower maximum clips a block: refused.
        let e = src
            .check_sizes(&ModelConfig {
                g_max_features: 4,
                ..tiny()
            })
            .unwrap_err();
        assert!(e.starts_with("--g-max-features 4 "), "{e}");
    }
}
