//! Packs the 32x32 Noto Emoji PNGs into the atlas vkgan embeds as its default dataset.
//!
//! ```sh
//! cargo run --example pack_emoji -- DATASETS [OUT]
//! ```
//! `DATASETS` holds `emoji32/*.png` (1,412 32x32 images named by code point),
//! `LICENSE-noto-emoji-Apache-2.0.txt` and `LICENSE-emoji-datasource.txt`; `OUT` defaults to
//! `assets`. Writes `OUT/emoji32.png` (tiles in sorted file-name order, row-major,
//! `vkgan::data::emoji::ATLAS_COLUMNS` per row, padding white, any alpha composited on white),
//! `OUT/emoji32.txt` (the tile names, one a line) and copies both licence files verbatim. The
//! output depends only on the inputs, so rerunning it reproduces the committed files.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use std::path::PathBuf;
use vkgan::data::emoji::{ATLAS_COLUMNS, TILE};
use vkgan::data::rgb_on_white;

const LICENSES: [&str; 2] = [
    "LICENSE-noto-emoji-Apache-2.0.txt",
    "LICENSE-emoji-datasource.txt",
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let src = PathBuf::from(args.next().ok_or_else(|| {
        anyhow::anyhow!(
            "usage: pack_emoji DATASETS [OUT] (DATASETS holds emoji32/ and the licences)"
        )
    })?);
    let out = args
        .next()
        .map_or_else(|| PathBuf::from("assets"), PathBuf::from);

    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join("emoji32"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "png"));
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no PNGs in {}",
        src.join("emoji32").display()
    );

    let rows = files.len().div_ceil(ATLAS_COLUMNS);
    let tile = TILE as u32;
    let mut atlas = RgbImage::from_pixel(
        ATLAS_COLUMNS as u32 * tile,
        rows as u32 * tile,
        image::Rgb([255, 255, 255]),
    );
    let mut names = String::new();
    for (i, f) in files.iter().enumerate() {
        let img = rgb_on_white(&image::open(f)?);
        anyhow::ensure!(
            img.dimensions() == (tile, tile),
            "{} is {:?}, expected {TILE}x{TILE}",
            f.display(),
            img.dimensions()
        );
        let (x, y) = (
            (i % ATLAS_COLUMNS) as i64 * TILE as i64,
            (i / ATLAS_COLUMNS) as i64 * TILE as i64,
        );
        image::imageops::replace(&mut atlas, &img, x, y);
        names.push_str(&f.file_stem().unwrap().to_string_lossy());
        names.push('\n');
    }

    std::fs::create_dir_all(&out)?;
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(
            atlas.as_raw(),
            atlas.width(),
            atlas.height(),
            ExtendedColorType::Rgb8,
        )?;
    std::fs::write(out.join("emoji32.png"), &png)?;
    std::fs::write(out.join("emoji32.txt"), names)?;
    for l in LICENSES {
        // Read and write rather than copy, so a read-only source does not make read-only files.
        std::fs::write(out.join(l), std::fs::read(src.join(l))?)?;
    }
    println!(
        "{} tiles -> {} ({}x{}, {} bytes)",
        files.len(),
        out.join("emoji32.png").display(),
        atlas.width(),
        atlas.height(),
        png.len()
    );
    Ok(())
}
