//! `vkgan generate`: one PNG per seed (and optionally a grid of them), and the parsing of the
//! seed lists and truncation that `generate` and `mix` take.

use super::load::LoadedGenerator;
use crate::outputs::images::{self, Batch, GridOptions};
use crate::train::sample::Sampler;
use crate::vk::Context;
use anyhow::{anyhow, bail, Context as _, Result};
use std::path::{Path, PathBuf};

/// Most seeds one `generate` (or `--seeds` list) writes.
pub const MAX_SEEDS: usize = 10_000;
/// Most row or column seeds of a style-mixing figure (its cells are held in memory at once).
pub const MAX_MIX_SEEDS: usize = 32;
/// Largest `--scale`: a 256-pixel model's images at 64x are 16384 pixels a side already.
pub const MAX_SCALE: u32 = 64;

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

/// The enlargement of a figure (grid, mixing figure) of images of side `size`: `scale` when
/// given, else the pixel replication that shows each image at about 128 pixels, for viewing.
pub fn figure_scale(size: usize, scale: Option<u32>) -> u32 {
    scale.unwrap_or_else(|| (128 / size as u32).max(1))
}

/// One PNG per seed (`seed0007.png`) in `out` at the model's resolution times `scale` (1
/// unless given: what a metric or another tool expects), and optionally `grid.png`, enlarged
/// by [`figure_scale`].
pub fn write_images(
    ctx: &Context,
    gen: &LoadedGenerator,
    seeds: &[u64],
    truncation: f32,
    out: &Path,
    grid: bool,
    scale: Option<u32>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    let batch = seeds.len().min(16);
    let mut sampler = Sampler::new(ctx, &gen.store, &gen.cfg, &gen.w_avg, batch)?;
    let r = gen.cfg.image_size;
    let all = sampler.generate_all(seeds, truncation)?;
    let shown = Batch::new(&all, [seeds.len(), 3, r, r])?;
    let paths = images::save_each(out, &shown, scale.unwrap_or(1), |i| {
        format!("seed{:04}.png", seeds[i])
    })?;
    if grid {
        let opts = GridOptions {
            scale: figure_scale(r, scale),
            ..GridOptions::default()
        };
        images::save_png(&out.join("grid.png"), &images::grid(&shown, &opts)?)?;
    }
    Ok(paths)
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
