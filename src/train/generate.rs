//! Loading a generator from a checkpoint — vkgan's own, or a PyTorch reference state dict saved
//! with safetensors (`mapping_network.` / `generator.` / `discriminator.` prefixes) — and the
//! image files `vkgan generate` and `vkgan mix` write.

use super::checkpoint::{self, Checkpoint};
use super::images::{self, Batch, GridOptions};
use super::sample::Sampler;
use super::state::TrainState;
use crate::nn::{ModelConfig, Net, ParamError, ParamStore};
use crate::tensor::Tensor;
use crate::vk::Context;
use anyhow::{anyhow, bail, Context as _, Result};
use image::RgbImage;
use std::path::Path;

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
pub fn read_checkpoint(path: &Path) -> Result<(std::path::PathBuf, Checkpoint, Vec<String>)> {
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
    let latest = checkpoint::latest(&dir)
        .with_context(|| format!("cannot load a checkpoint from {}", dir.display()))?
        .ok_or_else(|| anyhow!("no checkpoint in {}", dir.display()))?;
    let skipped = latest.skipped.iter().map(|e| e.to_string()).collect();
    Ok((latest.path, latest.checkpoint, skipped))
}

/// Reads the checkpoint `path` names (see [`read_checkpoint`]) and builds its generator.
pub fn load_generator(ctx: &Context, path: &Path) -> Result<LoadedGenerator> {
    let (path, ck, skipped) = read_checkpoint(path)?;
    let path = &path;
    let cfg = match TrainState::config_of(&ck) {
        Ok(train) => train.model,
        Err(_) => infer_config(&ck)?,
    };
    cfg.validate()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let used_ema = ck.tensors.contains_key("ema.generator.initial_constant");
    let store = ParamStore::from_fn(ctx, &cfg, |spec| -> Result<Vec<f32>> {
        let ema_name = format!("ema.{}", spec.name);
        let gen_side = Net::of(&spec.name) != Some(Net::Discriminator) && spec.trainable;
        let name = if used_ema && gen_side {
            ema_name.as_str()
        } else {
            spec.name.as_str()
        };
        let (shape, data) = ck
            .f32(name)
            .map_err(|_| anyhow!("{}: {}", path.display(), ParamError::Missing(name.into())))?;
        if shape != spec.shape.as_slice() {
            bail!(
                "{}: {}",
                path.display(),
                ParamError::Shape {
                    name: name.into(),
                    found: shape.to_vec(),
                    expected: spec.shape.clone(),
                }
            );
        }
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

/// The mean of w over 4096 latents.
fn estimate_w_avg(ctx: &Context, store: &ParamStore, cfg: &ModelConfig) -> Result<Tensor> {
    use crate::autograd::Tape;
    let n = 4096;
    let mut t = Tape::new();
    let bound = store.bind(&mut t, &[Net::Mapping], false);
    let z = crate::ops::random_normal(&mut t, &[n, cfg.d_latent], 0x5EED, 1, 0);
    let w = crate::nn::mapping(&mut t, &bound, cfg, z);
    let mean = crate::ops::mean(&mut t, w, &[0], false);
    let leaves: Vec<_> = store.bindings(&bound);
    let values = t.eval(ctx, &[mean], &leaves)?.remove(0);
    Ok(Tensor::from_f32(ctx, &[cfg.d_latent], &values)?)
}

/// Most seeds one `generate` (or `--seeds` list) writes.
pub const MAX_SEEDS: usize = 10_000;
/// Most row or column seeds of a style-mixing figure (its cells are held in memory at once).
pub const MAX_MIX_SEEDS: usize = 32;

/// Parses "0-15", "3", "1,5,9" or combinations like "0-3,10", of at most [`MAX_SEEDS`] seeds.
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    parse_seeds_at_most(text, MAX_SEEDS)
}

/// As [`parse_seeds`], with at most `max` seeds; the count is checked before any is stored.
pub fn parse_seeds_at_most(text: &str, max: usize) -> Result<Vec<u64>> {
    let bad = || anyhow!("bad seed list `{text}`: use forms like 0-15, 3 or 1,5,9");
    let mut ranges = Vec::new();
    let mut count: u64 = 0;
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b): (u64, u64) = match part.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let a = part.parse().map_err(|_| bad())?;
                (a, a)
            }
        };
        if b < a {
            return Err(bad());
        }
        count = count.saturating_add((b - a).saturating_add(1));
        ranges.push((a, b));
    }
    if count > max as u64 {
        bail!("seed list `{text}` names {count} seeds, more than the limit of {max}");
    }
    if ranges.is_empty() {
        bail!("no seeds given");
    }
    Ok(ranges.into_iter().flat_map(|(a, b)| a..=b).collect())
}

/// Refuses a truncation psi that is not a finite number: NaN or infinity make every image
/// black without any other sign of trouble.
pub fn check_truncation(psi: f32) -> Result<()> {
    if !psi.is_finite() {
        bail!("--truncation {psi} must be a finite number (1 = no truncation)");
    }
    Ok(())
}

fn upscale(size: usize) -> u32 {
    (128 / size as u32).max(1)
}

/// One PNG per seed (`seed0007.png`) in `out`, and optionally `grid.png`.
pub fn write_images(
    ctx: &Context,
    gen: &LoadedGenerator,
    seeds: &[u64],
    truncation: f32,
    out: &Path,
    grid: bool,
) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let batch = seeds.len().min(16);
    let mut sampler = Sampler::new(ctx, &gen.store, &gen.cfg, &gen.w_avg, batch)?;
    let r = gen.cfg.image_size;
    let all = sampler.generate_all(seeds, truncation)?;
    let shown = Batch::new(&all, [seeds.len(), 3, r, r])?;
    let paths = images::save_each(out, &shown, upscale(r), |i| {
        format!("seed{:04}.png", seeds[i])
    })?;
    if grid {
        let opts = GridOptions {
            scale: upscale(r),
            ..GridOptions::default()
        };
        images::save_png(&out.join("grid.png"), &images::grid(&shown, &opts)?)?;
    }
    Ok(paths)
}

/// The style-mixing figure: the first row shows the column seeds, the first column the row
/// seeds; cell (i, j) takes its coarse styles (blocks below `crossover`) from row seed i and
/// the rest from column seed j.
pub fn mixing_figure(
    ctx: &Context,
    gen: &LoadedGenerator,
    rows: &[u64],
    cols: &[u64],
    crossover: usize,
    truncation: f32,
) -> Result<RgbImage> {
    let r = gen.cfg.image_size;
    let per = 3 * r * r;
    let batch = cols.len().max(rows.len()).min(16);
    let mut sampler = Sampler::new(ctx, &gen.store, &gen.cfg, &gen.w_avg, batch)?;
    let col_images = sampler.generate_all(cols, truncation)?;
    let row_images = sampler.generate_all(rows, truncation)?;
    // (rows + 1) x (cols + 1) cells, the corner white.
    let mut cells = vec![1.0f32; (rows.len() + 1) * (cols.len() + 1) * per];
    let put = |cells: &mut Vec<f32>, cell: usize, img: &[f32]| {
        cells[cell * per..(cell + 1) * per].copy_from_slice(img);
    };
    for (j, img) in col_images.chunks(per).enumerate() {
        put(&mut cells, 1 + j, img);
    }
    for (i, &row) in rows.iter().enumerate() {
        put(
            &mut cells,
            (i + 1) * (cols.len() + 1),
            &row_images[i * per..(i + 1) * per],
        );
        let mut mixed = Vec::new();
        for chunk in cols.chunks(batch) {
            let coarse = vec![row; chunk.len()];
            mixed.extend(sampler.generate(&coarse, Some(chunk), crossover, truncation)?);
        }
        for (j, img) in mixed.chunks(per).enumerate() {
            put(&mut cells, (i + 1) * (cols.len() + 1) + 1 + j, img);
        }
    }
    let n = (rows.len() + 1) * (cols.len() + 1);
    let shown = Batch::new(&cells, [n, 3, r, r])?;
    let opts = GridOptions {
        cols: Some(cols.len() + 1),
        scale: upscale(r),
        ..GridOptions::default()
    };
    Ok(images::grid(&shown, &opts)?)
}

/// MS-SWD between `num` images of the checkpoint's generator (seeds 0..num) and `num` real
/// images (an evenly spaced subset of `dataset`), at resolution `gen.cfg.image_size`.
pub fn swd_against(
    ctx: &Context,
    gen: &LoadedGenerator,
    dataset: &crate::data::Dataset,
    num: usize,
    seed: u64,
) -> Result<crate::metrics::SwdReport> {
    if dataset.len() < num {
        bail!(
            "the dataset has {} images; --num {num} needs at least as many",
            dataset.len()
        );
    }
    let r = gen.cfg.image_size;
    let mut sampler = Sampler::new(ctx, &gen.store, &gen.cfg, &gen.w_avg, num.min(32))?;
    let seeds: Vec<u64> = (0..num as u64).collect();
    let fakes = sampler.generate_all(&seeds, 1.0)?;
    let reals = dataset.evenly_spaced(num);
    Ok(crate::metrics::swd(ctx, &reals, &fakes, num, r, seed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists() {
        assert_eq!(parse_seeds("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_seeds("5").unwrap(), vec![5]);
        assert_eq!(parse_seeds("1,5,9-10").unwrap(), vec![1, 5, 9, 10]);
        for bad in ["", "a", "3-1", "1-", "-"] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_lists_are_bounded_with_the_limit_named() {
        let e = parse_seeds("0-100000").unwrap_err().to_string();
        assert!(
            e.contains("100001 seeds") && e.contains("limit of 10000"),
            "{e}"
        );
        let e = parse_seeds("0-18446744073709551615")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit of 10000"), "{e}");
        assert_eq!(parse_seeds("0-9999").unwrap().len(), 10_000);
        let e = parse_seeds_at_most("0-32", MAX_MIX_SEEDS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit of 32"), "{e}");
    }

    #[test]
    fn non_finite_truncation_is_refused() {
        for psi in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = check_truncation(psi).unwrap_err().to_string();
            assert!(e.contains("--truncation") && e.contains("finite"), "{e}");
        }
        check_truncation(0.5).unwrap();
    }
}
