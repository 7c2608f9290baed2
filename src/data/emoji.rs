//! The embedded default dataset: 1,412 emoji from Google's Noto Emoji (Apache License 2.0,
//! Copyright Google Inc.; via the MIT-licensed `emoji-datasource-google` 16.0.0 package),
//! composited on white at 32x32.
//!
//! They ship as one atlas, `assets/emoji32.png`: an RGB PNG grid of 32x32 tiles, row-major,
//! [`ATLAS_COLUMNS`] to a row, the last row padded with white; `assets/emoji32.txt` names the
//! tiles (their code points), one per line, in order, and so gives the count. Both licence
//! notices are in `assets/`. Regenerate with
//! `cargo run --example pack_emoji -- /path/to/datasets` (the folder holding `emoji32/` and the
//! two licence files); see `assets/README.md`.

use super::{convert, DataError, Dataset};
use image::{ImageFormat, RgbImage};

/// Side of one tile, and the images' native size.
pub const TILE: usize = 32;
/// Tiles per atlas row.
pub const ATLAS_COLUMNS: usize = 38;

/// The atlas PNG as embedded.
pub static ATLAS_PNG: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/emoji32.png"));
/// One tile name (the emoji's code points) per line, in atlas order.
pub static MANIFEST: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/emoji32.txt"));

/// The tile names, in order.
pub fn names() -> Vec<&'static str> {
    MANIFEST.lines().filter(|l| !l.is_empty()).collect()
}

/// Splits the atlas into tiles: `(names, planar 8-bit 32x32 samples back to back)`.
pub fn tiles() -> Result<(Vec<&'static str>, Vec<u8>), DataError> {
    let names = names();
    let atlas = image::load_from_memory_with_format(ATLAS_PNG, ImageFormat::Png)
        .map_err(|e| DataError::BadAtlas(e.to_string()))?;
    let atlas = convert::rgb_on_white(&atlas);
    let rows = names.len().div_ceil(ATLAS_COLUMNS);
    let (w, h) = (atlas.width() as usize, atlas.height() as usize);
    if w != ATLAS_COLUMNS * TILE || h != rows * TILE {
        return Err(DataError::BadAtlas(format!(
            "{w}x{h} pixels, expected {}x{} for {} tiles",
            ATLAS_COLUMNS * TILE,
            rows * TILE,
            names.len()
        )));
    }
    let numel = 3 * TILE * TILE;
    let mut bytes = vec![0u8; names.len() * numel];
    for (i, out) in bytes.chunks_exact_mut(numel).enumerate() {
        let tile = tile(&atlas, i);
        convert::to_planar(&tile, out);
    }
    Ok((names, bytes))
}

fn tile(atlas: &RgbImage, i: usize) -> RgbImage {
    let (x, y) = ((i % ATLAS_COLUMNS) * TILE, (i / ATLAS_COLUMNS) * TILE);
    image::imageops::crop_imm(atlas, x as u32, y as u32, TILE as u32, TILE as u32).to_image()
}

/// The emoji as a (cached) dataset of `image_size x image_size` images, Lanczos3-resized from
/// 32x32 when `image_size != 32`.
pub fn dataset(image_size: usize) -> Result<Dataset, DataError> {
    if image_size == 0 {
        return Err(DataError::ZeroImageSize);
    }
    let (names, bytes) = tiles()?;
    let names: Vec<String> = names.into_iter().map(String::from).collect();
    if image_size == TILE {
        return Ok(Dataset::from_samples(TILE, names, bytes));
    }
    let numel = 3 * image_size * image_size;
    let tile_numel = 3 * TILE * TILE;
    let mut out = vec![0u8; names.len() * numel];
    // Resizing 1,412 tiles to 256x256 takes seconds on one core; split it across all of them.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = names.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (src, dst) in bytes
            .chunks(per * tile_numel)
            .zip(out.chunks_mut(per * numel))
        {
            s.spawn(move || {
                for (src, dst) in src
                    .chunks_exact(tile_numel)
                    .zip(dst.chunks_exact_mut(numel))
                {
                    let img = from_planar(src, TILE);
                    convert::to_planar(&convert::square(&img, image_size as u32), dst);
                }
            });
        }
    });
    Ok(Dataset::from_samples(image_size, names, out))
}

fn from_planar(src: &[u8], size: usize) -> RgbImage {
    let plane = size * size;
    RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let i = y as usize * size + x as usize;
        image::Rgb([src[i], src[plane + i], src[2 * plane + i]])
    })
}
