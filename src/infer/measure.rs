//! `vkgan metrics`: MS-SWD between a generator's images and real ones.

use super::load::LoadedGenerator;
use crate::data::Dataset;
use crate::metrics::{self, SwdReport};
use crate::train::sample::Sampler;
use crate::vk::Context;
use anyhow::{bail, Result};

/// MS-SWD between `num` images of the checkpoint's generator (seeds 0..num) and `num` real
/// images (an evenly spaced subset of `dataset`), at resolution `gen.cfg.image_size`.
pub fn swd_against(
    ctx: &Context,
    gen: &LoadedGenerator,
    dataset: &Dataset,
    num: usize,
    seed: u64,
) -> Result<SwdReport> {
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
    Ok(metrics::swd(ctx, &reals, &fakes, num, r, seed)?)
}
