//! Turning one decoded image into a training sample: 8-bit RGB on white, shorter side resized to
//! the training size, centre-cropped square, stored planar ([3, N, N], channel-major).

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageReader, RgbImage};
use std::path::Path;

/// The filter used to resize images to the training size: Lanczos3, as PIL's `LANCZOS` that the
/// reference's torchvision pipeline uses. `image` widens the kernel when downscaling, so large
/// photos are properly low-pass filtered rather than aliased.
pub const RESIZE_FILTER: FilterType = FilterType::Lanczos3;

/// Flattens a decoded image to 8-bit RGB: grey is expanded to three equal channels, alpha is
/// composited on white (`c * a + 1 * (1 - a)`, rounded), higher bit depths are scaled to 8 bits.
pub fn rgb_on_white(img: &DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = u32::from(p[3]);
        for c in 0..3 {
            o[c] = ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
}

/// Resizes `img` so its shorter side is `size` (the longer side to `size * long / short`,
/// truncated as torchvision's `Resize(int)` does) and crops the centre `size x size` square; an
/// odd margin puts the extra pixel at the right/bottom.
pub fn square(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let long = |l: u32, s: u32| ((u64::from(size) * u64::from(l) / u64::from(s)) as u32).max(size);
    let (nw, nh) = if w <= h {
        (size, long(h, w))
    } else {
        (long(w, h), size)
    };
    let resized = if (nw, nh) == (w, h) {
        img.clone()
    } else {
        imageops::resize(img, nw, nh, RESIZE_FILTER)
    };
    if (nw, nh) == (size, size) {
        return resized;
    }
    imageops::crop_imm(&resized, (nw - size) / 2, (nh - size) / 2, size, size).to_image()
}

/// Writes a `size x size` RGB image channel-major into `out` (length `3 * size * size`).
pub fn to_planar(img: &RgbImage, out: &mut [u8]) {
    let plane = (img.width() * img.height()) as usize;
    debug_assert_eq!(out.len(), 3 * plane);
    for (i, p) in img.pixels().enumerate() {
        out[i] = p[0];
        out[plane + i] = p[1];
        out[2 * plane + i] = p[2];
    }
}

/// Decodes the file at `path` (format sniffed from its content, so a misnamed file still
/// loads) and writes the planar `size x size` sample into `out`. The error is one line.
pub fn load_into(path: &Path, size: u32, out: &mut [u8]) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if jpeg_is_truncated(&bytes) {
        return Err("truncated JPEG (no end-of-image marker after its last scan)".into());
    }
    let img = ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| one_line(&e.to_string()))?;
    if img.width() == 0 || img.height() == 0 {
        return Err("image is empty (0 pixels)".into());
    }
    to_planar(&square(&rgb_on_white(&img), size), out);
    Ok(())
}

/// Reads only the header of the file at `path`: cheap, and enough to skip non-images and
/// truncated headers before training when images are decoded lazily.
pub fn probe(path: &Path) -> Result<(), String> {
    let (w, h) = ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| one_line(&e.to_string()))?;
    if w == 0 || h == 0 {
        return Err("image is empty (0 pixels)".into());
    }
    Ok(())
}

/// Whether `bytes` is a JPEG whose end-of-image marker (FF D9) is missing after the start of
/// its last scan (FF DA). The decoder accepts such a file and fills what is missing with grey,
/// which would train on half-grey images without a word. Entropy-coded data cannot hold either
/// marker (an FF there is followed by 00 or a restart marker), so an EXIF thumbnail's own
/// markers (before the main scans) or data appended after the end marker do not fool the check.
pub fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_scan {
        Some(at) => !bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]),
        // No scan at all: the decoder reports that itself.
        None => false,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
