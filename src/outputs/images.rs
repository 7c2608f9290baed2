//! Image batches to PNG files: one file per image, or a grid of the whole batch.
//!
//! A batch is `[B, C, H, W]` f32 in planar (NCHW) layout with C = 3 (RGB) or 1 (grey, replicated
//! to RGB), values nominally in [0, 1]. Values are clamped to [0, 1] and quantized with
//! `round(v * 255)`; NaN becomes 0. Mapping the generator's [-1, 1] output to [0, 1] is the
//! caller's job. An integer `scale` enlarges each image by pixel replication (nearest neighbour),
//! so 32x32 samples are visible.
//!
//! A grid has `cols` cells per row (default: the smallest square that holds the batch) and a
//! `gutter`-pixel border between cells and around the edge, in `gutter_colour`; cells past the
//! end of the batch stay gutter-coloured. [`pair_grid`] puts two grids side by side (fakes |
//! reals) with a wider gap between them. PNGs are written atomically (temporary file, fsync,
//! rename).

use std::io;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};

use crate::persist::atomic;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image batch of shape {shape:?} needs {expected} values but {actual} were given")]
    Length {
        shape: [usize; 4],
        expected: usize,
        actual: usize,
    },
    #[error("image batch of shape {0:?}: channels must be 3 (RGB) or 1 (grey)")]
    Channels([usize; 4]),
    #[error("image of {width}x{height} pixels (after scaling) is too large")]
    TooLarge { width: usize, height: usize },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Default gutter colour: dark grey, distinct from both black and white samples.
pub const GUTTER_COLOUR: [u8; 3] = [40, 40, 40];

/// A borrowed `[B, C, H, W]` batch whose length has been checked against its shape.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    data: &'a [f32],
    shape: [usize; 4],
}

impl<'a> Batch<'a> {
    pub fn new(data: &'a [f32], shape: [usize; 4]) -> Result<Self, ImageError> {
        let [_, c, _, _] = shape;
        if c != 1 && c != 3 {
            return Err(ImageError::Channels(shape));
        }
        let expected = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX);
        if expected != data.len() {
            return Err(ImageError::Length {
                shape,
                expected,
                actual: data.len(),
            });
        }
        Ok(Batch { data, shape })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    pub fn height(&self) -> usize {
        self.shape[2]
    }

    pub fn width(&self) -> usize {
        self.shape[3]
    }

    /// The RGB value of pixel (y, x) of image `i`.
    fn pixel(&self, i: usize, y: usize, x: usize) -> [u8; 3] {
        let [_, c, h, w] = self.shape;
        let plane = h * w;
        let base = i * c * plane + y * w + x;
        if c == 1 {
            let v = to_u8(self.data[base]);
            [v, v, v]
        } else {
            [
                to_u8(self.data[base]),
                to_u8(self.data[base + plane]),
                to_u8(self.data[base + 2 * plane]),
            ]
        }
    }

    /// Draws image `i`, enlarged `scale` times, with its top-left corner at (x0, y0).
    fn blit(&self, i: usize, scale: u32, img: &mut RgbImage, x0: u32, y0: u32) {
        for y in 0..self.height() {
            for x in 0..self.width() {
                let p = Rgb(self.pixel(i, y, x));
                for dy in 0..scale {
                    for dx in 0..scale {
                        img.put_pixel(x0 + x as u32 * scale + dx, y0 + y as u32 * scale + dy, p);
                    }
                }
            }
        }
    }
}

/// [0, 1] -> [0, 255], clamped; NaN -> 0.
pub fn to_u8(v: f32) -> u8 {
    if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    }
}

/// Checks a canvas size against `u32` and a sane pixel budget (1 Gpixel) before allocating.
fn canvas(width: usize, height: usize, fill: [u8; 3]) -> Result<RgbImage, ImageError> {
    let too_large = ImageError::TooLarge { width, height };
    let w = u32::try_from(width).map_err(|_| ImageError::TooLarge { width, height })?;
    let h = u32::try_from(height).map_err(|_| ImageError::TooLarge { width, height })?;
    if width.checked_mul(height).is_none_or(|n| n > 1 << 30) {
        return Err(too_large);
    }
    Ok(RgbImage::from_pixel(w, h, Rgb(fill)))
}

/// Image `i` of the batch as an RGB image enlarged `scale` times (0 is treated as 1).
pub fn image(batch: &Batch, i: usize, scale: u32) -> Result<RgbImage, ImageError> {
    assert!(i < batch.len(), "image {i} of a batch of {}", batch.len());
    let scale = scale.max(1);
    let s = scale as usize;
    let mut img = canvas(batch.width() * s, batch.height() * s, [0; 3])?;
    batch.blit(i, scale, &mut img, 0, 0);
    Ok(img)
}

#[derive(Clone, Copy, Debug)]
pub struct GridOptions {
    /// Cells per row; `None` picks `ceil(sqrt(B))`.
    pub cols: Option<usize>,
    /// Integer enlargement of every image (nearest neighbour); 0 is treated as 1.
    pub scale: u32,
    /// Pixels between cells and around the edge (not scaled).
    pub gutter: u32,
    pub gutter_colour: [u8; 3],
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            cols: None,
            scale: 1,
            gutter: 2,
            gutter_colour: GUTTER_COLOUR,
        }
    }
}

impl GridOptions {
    fn cols_for(&self, n: usize) -> usize {
        match self.cols {
            Some(c) => c.max(1),
            None => (1..).find(|c| c * c >= n).unwrap_or(1),
        }
    }
}

/// (columns, rows) of the grid for `n` images.
pub fn grid_dims(n: usize, opts: &GridOptions) -> (usize, usize) {
    let cols = opts.cols_for(n);
    (cols, n.div_ceil(cols).max(1))
}

/// Cell size and canvas size of a grid.
fn grid_geometry(batch: &Batch, opts: &GridOptions) -> (usize, usize, usize, usize) {
    let (cols, rows) = grid_dims(batch.len(), opts);
    let s = opts.scale.max(1) as usize;
    let g = opts.gutter as usize;
    let (cw, ch) = (batch.width() * s, batch.height() * s);
    (
        cw,
        ch,
        cols * cw + (cols + 1) * g,
        rows * ch + (rows + 1) * g,
    )
}

fn draw_grid(batch: &Batch, opts: &GridOptions, img: &mut RgbImage, x0: u32) {
    let (cols, _) = grid_dims(batch.len(), opts);
    let (cw, ch, _, _) = grid_geometry(batch, opts);
    let g = opts.gutter as usize;
    for i in 0..batch.len() {
        let (r, c) = (i / cols, i % cols);
        let x = x0 + (g + c * (cw + g)) as u32;
        let y = (g + r * (ch + g)) as u32;
        batch.blit(i, opts.scale.max(1), img, x, y);
    }
}

/// The whole batch as one grid image.
pub fn grid(batch: &Batch, opts: &GridOptions) -> Result<RgbImage, ImageError> {
    let (_, _, w, h) = grid_geometry(batch, opts);
    let mut img = canvas(w, h, opts.gutter_colour)?;
    draw_grid(batch, opts, &mut img, 0);
    Ok(img)
}

/// Extra gap between the two halves of a [`pair_grid`], on top of each half's own border.
pub fn pair_gap(opts: &GridOptions) -> u32 {
    (2 * opts.gutter).max(4)
}

/// Two grids side by side (e.g. fakes | reals), each laid out with `opts`, separated by
/// [`pair_gap`] extra gutter-coloured pixels.
pub fn pair_grid(left: &Batch, right: &Batch, opts: &GridOptions) -> Result<RgbImage, ImageError> {
    let (_, _, lw, lh) = grid_geometry(left, opts);
    let (_, _, rw, rh) = grid_geometry(right, opts);
    let gap = pair_gap(opts) as usize;
    let mut img = canvas(lw + gap + rw, lh.max(rh), opts.gutter_colour)?;
    draw_grid(left, opts, &mut img, 0);
    draw_grid(right, opts, &mut img, (lw + gap) as u32);
    Ok(img)
}

/// Writes `img` as a PNG at `path` atomically.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<(), ImageError> {
    atomic::replace_file(path, |tmp| {
        img.save_with_format(tmp, ImageFormat::Png)
            .map_err(|e| match e {
                image::ImageError::IoError(e) => e,
                other => io::Error::other(other),
            })
    })
    .map_err(|source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes one PNG per image into `dir` (created if needed), named by `name(i)` (which should end
/// in `.png`), and returns the paths in batch order.
pub fn save_each(
    dir: &Path,
    batch: &Batch,
    scale: u32,
    name: impl Fn(usize) -> String,
) -> Result<Vec<PathBuf>, ImageError> {
    std::fs::create_dir_all(dir).map_err(|source| ImageError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    (0..batch.len())
        .map(|i| {
            let path = dir.join(name(i));
            save_png(&path, &image(batch, i, scale)?)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::atomic::test_dir::names_in;

    /// Image i, channel c, pixel (y, x) has a value that identifies all four.
    fn value(i: usize, c: usize, y: usize, x: usize) -> f32 {
        ((i * 7 + c * 3 + y * 5 + x) % 11) as f32 / 10.0
    }

    fn batch_data(b: usize, h: usize, w: usize) -> Vec<f32> {
        let mut v = Vec::new();
        for i in 0..b {
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        v.push(value(i, c, y, x));
                    }
                }
            }
        }
        v
    }

    fn expected(i: usize, y: usize, x: usize) -> [u8; 3] {
        [0, 1, 2].map(|c| to_u8(value(i, c, y, x)))
    }

    #[test]
    fn quantization_clamps() {
        assert_eq!(to_u8(-3.0), 0);
        assert_eq!(to_u8(0.0), 0);
        assert_eq!(to_u8(0.5), 128);
        assert_eq!(to_u8(1.0), 255);
        assert_eq!(to_u8(7.0), 255);
        assert_eq!(to_u8(f32::NAN), 0);
        assert_eq!(to_u8(f32::INFINITY), 255);
    }

    #[test]
    fn shape_errors() {
        assert!(matches!(
            Batch::new(&[0.0; 11], [1, 3, 2, 2]),
            Err(ImageError::Length { expected: 12, .. })
        ));
        assert!(matches!(
            Batch::new(&[0.0; 8], [1, 2, 2, 2]),
            Err(ImageError::Channels(_))
        ));
    }

    #[test]
    fn each_image_decodes_with_right_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let (b, h, w) = (3, 5, 7);
        let data = batch_data(b, h, w);
        let batch = Batch::new(&data, [b, 3, h, w]).unwrap();
        let paths = save_each(&dir.path().join("out"), &batch, 3, |i| {
            format!("seed{i:04}.png")
        })
        .unwrap();
        assert_eq!(paths.len(), 3);
        assert!(paths[2].ends_with("out/seed0002.png"));
        for (i, p) in paths.iter().enumerate() {
            let img = image::open(p).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (21, 15));
            for y in 0..h {
                for x in 0..w {
                    for (dy, dx) in [(0, 0), (2, 2), (1, 2)] {
                        let px = img.get_pixel(x as u32 * 3 + dx, y as u32 * 3 + dy).0;
                        assert_eq!(px, expected(i, y, x), "image {i} ({y},{x})");
                    }
                }
            }
        }
    }

    #[test]
    fn grid_layout_and_gutter() {
        let dir = tempfile::tempdir().unwrap();
        let (b, h, w) = (5, 4, 6);
        let data = batch_data(b, h, w);
        let batch = Batch::new(&data, [b, 3, h, w]).unwrap();
        let opts = GridOptions {
            cols: Some(3),
            scale: 2,
            ..Default::default()
        };
        assert_eq!(grid_dims(5, &opts), (3, 2));
        let path = dir.path().join("grid.png");
        save_png(&path, &grid(&batch, &opts).unwrap()).unwrap();
        assert_eq!(names_in(dir.path()), vec!["grid.png"]);
        let img = image::open(&path).unwrap().to_rgb8();
        // 3 cells of 12 px + 4 gutters of 2; 2 rows of 8 px + 3 gutters.
        assert_eq!(img.dimensions(), (3 * 12 + 4 * 2, 2 * 8 + 3 * 2));
        let g = GUTTER_COLOUR;
        assert_eq!(img.get_pixel(0, 0).0, g);
        assert_eq!(img.get_pixel(1, 5).0, g);
        assert_eq!(img.get_pixel(14, 5).0, g); // between columns 0 and 1
        assert_eq!(img.get_pixel(5, 10).0, g); // between rows 0 and 1

        // Cell (row 1, col 1) is image 4; its pixel (y=3, x=5) covers scaled rows 6..8 and
        // columns 10..12 of the cell.
        let (x0, y0) = (2 + (12 + 2), 2 + (8 + 2));
        assert_eq!(
            img.get_pixel(x0 + 5 * 2 + 1, y0 + 3 * 2 + 1).0,
            expected(4, 3, 5)
        );
        assert_eq!(img.get_pixel(2, 2).0, expected(0, 0, 0));
        // The sixth cell is empty.
        assert_eq!(img.get_pixel(2 + 2 * 14 + 3, 12 + 3).0, g);
    }

    #[test]
    fn default_cols_is_square_and_grey_replicates() {
        let data: Vec<f32> = (0..10 * 2 * 2).map(|i| (i % 4) as f32 / 3.0).collect();
        let batch = Batch::new(&data, [10, 1, 2, 2]).unwrap();
        let opts = GridOptions::default();
        assert_eq!(grid_dims(10, &opts), (4, 3));
        let img = grid(&batch, &opts).unwrap();
        assert_eq!(img.dimensions(), (4 * 2 + 5 * 2, 3 * 2 + 4 * 2));
        assert_eq!(img.get_pixel(3, 3).0, [255, 255, 255]); // value 3/3
        assert_eq!(img.get_pixel(2, 2).0, [0, 0, 0]);
    }

    #[test]
    fn pair_grid_halves() {
        let (h, w) = (3, 3);
        let fakes = vec![1.0f32; 4 * 3 * h * w];
        let reals = vec![0.0f32; 4 * 3 * h * w];
        let fb = Batch::new(&fakes, [4, 3, h, w]).unwrap();
        let rb = Batch::new(&reals, [4, 3, h, w]).unwrap();
        let opts = GridOptions {
            cols: Some(2),
            scale: 2,
            gutter: 2,
            gutter_colour: [0, 0, 255],
        };
        let img = pair_grid(&fb, &rb, &opts).unwrap();
        let half = 2 * 6 + 3 * 2;
        let gap = pair_gap(&opts);
        assert_eq!(img.dimensions(), (2 * half + gap, half));
        assert_eq!(img.get_pixel(2, 2).0, [255, 255, 255]); // fake
        assert_eq!(img.get_pixel(half + gap + 2, 2).0, [0, 0, 0]); // real
        for x in half - 2..half + gap + 2 {
            assert_eq!(img.get_pixel(x, 5).0, [0, 0, 255], "x {x}");
        }
    }
}
