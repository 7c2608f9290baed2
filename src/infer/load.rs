//! A generator from a checkpoint, ready to sample: vkgan's own checkpoint (its moving-average
//! weights when it has them), the newest readable one of a run directory, or a PyTorch
//! reference state dict saved with safetensors (`mapping_network.` / `generator.` /
//! `discriminator.` prefixes), whose sizes are inferred from its tensor shapes.

use crate::nn::{ModelConfig, Net, ParamStore};
use crate::persist::checkpoint::{self, Checkpoint};
use crate::persist::run_dir;
use crate::tensor::Tensor;
use crate::train::sample::estimate_w_avg;
use crate::train::state::TrainState;
use crate::vk::Context;
use anyhow::{anyhow, Context as _, Result};
use std::path::{Path, PathBuf};

/// The generator of a checkpoint, ready to sample.
pub struct LoadedGenerator {
    pub cfg: ModelConfig,
    /// The EMA weights when the checkpoint has them.
    pub store: ParamStore,
    pub w_avg: Tensor,
    pub used_ema: bool,
    /// Newer checkpoints of the run directory that did not read (why, naming each file).
    pub skipped: Vec<String>,
}

/// Infers the sizes of a reference state dict from its tensor shapes.
pub fn infer_config(ck: &Checkpoint) -> Result<ModelConfig> {
    let shape = |name: &str| -> Result<Vec<usize>> {
        Ok(ck
            .f32(name)
            .map_err(|_| anyhow!("not a StyleGAN2 checkpoint: `{name}` is missing"))?
            .0
            .to_vec())
    };
    let d_latent = shape("mapping_network.net.0.weight.weight")?[1];
    let mapping_layers = (0..)
        .take_while(|i| {
            ck.tensors
                .contains_key(&format!("mapping_network.net.{}.weight.weight", 2 * i))
        })
        .count();
    let g_blocks = (0..)
        .take_while(|i| {
            ck.tensors
                .contains_key(&format!("generator.blocks.{i}.to_rgb.bias"))
        })
        .count();
    let image_size = 4usize << g_blocks;
    let g_first = shape("generator.initial_constant")?[1];
    let g_last = if g_blocks == 0 {
        g_first
    } else {
        shape(&format!(
            "generator.blocks.{}.to_rgb.conv.weight.weight",
            g_blocks - 1
        ))?[1]
    };
    let d_first = shape("discriminator.from_rgb.0.weight.weight")?[0];
    let d_last = shape("discriminator.conv.weight.weight")?[0] - 1;
    Ok(ModelConfig {
        image_size,
        d_latent,
        mapping_layers,
        g_features: g_last,
        g_max_features: g_first,
        d_features: d_first,
        d_max_features: d_last,
    })
}

/// The checkpoint `path` names, read: a file, or the newest checkpoint of a run directory (or
/// of its `checkpoints/` folder) that reads back intact, as `--resume` picks it. Also returns
/// the newer files of that directory that did not read, so the caller can name them.
pub fn read_checkpoint(path: &Path) -> Result<(PathBuf, Checkpoint, Vec<String>)> {
    if !path.is_dir() {
        // A missing or unreadable file is reported by the checkpoint reader, naming it.
        let ck = checkpoint::read(path).context("cannot load checkpoint")?;
        return Ok((path.to_path_buf(), ck, Vec::new()));
    }
    let sub = path.join("checkpoints");
    let dir = if sub.is_dir() {
        sub
    } else {
        path.to_path_buf()
    };
    let latest = run_dir::latest(&dir)
        .with_context(|| format!("cannot load a checkpoint from {}", dir.display()))?
        .ok_or_else(|| anyhow!("no checkpoint in {}", dir.display()))?;
    let skipped = latest.skipped.iter().map(|e| e.to_string()).collect();
    Ok((latest.path, latest.checkpoint, skipped))
}

/// Which of a checkpoint's generator weights to sample with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// The moving average when the checkpoint has one (what `generate` shows by default).
    Ema,
    /// The weights the optimizer trained.
    Raw,
}

impl Weights {
    /// [`Weights::Raw`] when `raw` (a command's `--raw`), else [`Weights::Ema`].
    pub fn raw_if(raw: bool) -> Weights {
        if raw {
            Weights::Raw
        } else {
            Weights::Ema
        }
    }
}

/// Reads the checkpoint `path` names (see [`read_checkpoint`]) and builds its generator from
/// the moving-average weights when it has them.
pub fn load_generator(ctx: &Context, path: &Path) -> Result<LoadedGenerator> {
    load_generator_with(ctx, path, Weights::Ema)
}

/// As [`load_generator`], with the choice of weights.
pub fn load_generator_with(
    ctx: &Context,
    path: &Path,
    weights: Weights,
) -> Result<LoadedGenerator> {
    let (path, ck, skipped) = read_checkpoint(path)?;
    let path = &path;
    let cfg = match TrainState::config_of(&ck) {
        Ok(train) => train.model,
        Err(_) => infer_config(&ck)?,
    };
    cfg.validate()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let used_ema =
        weights == Weights::Ema && ck.tensors.contains_key("ema.generator.initial_constant");
    let store = ParamStore::from_fn(ctx, &cfg, |spec| -> Result<Vec<f32>> {
        let ema_name = format!("ema.{}", spec.name);
        let gen_side = Net::of(&spec.name) != Some(Net::Discriminator) && spec.trainable;
        let name = if used_ema && gen_side {
            ema_name.as_str()
        } else {
            spec.name.as_str()
        };
        let data = ck
            .parameter(name, &spec.shape)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        Ok(data.to_vec())
    })?;
    let w_avg = match ck.f32("w_avg") {
        Ok((_, data)) => Tensor::from_f32(ctx, &[cfg.d_latent], data)?,
        // A reference export has no running mean: estimate it from many latents.
        Err(_) => estimate_w_avg(ctx, &store, &cfg)?,
    };
    Ok(LoadedGenerator {
        cfg,
        store,
        w_avg,
        used_ema,
        skipped,
    })
}
