//! `vkgan mix`: the style-mixing figure of a generator.

use super::generate::figure_scale;
use super::load::LoadedGenerator;
use crate::outputs::images::{self, Batch, GridOptions};
use crate::train::sample::Sampler;
use crate::vk::Context;
use anyhow::Result;
use image::RgbImage;

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
    scale: Option<u32>,
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
        scale: figure_scale(r, scale),
        ..GridOptions::default()
    };
    Ok(images::grid(&shown, &opts)?)
}
