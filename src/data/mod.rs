//! Training data: a [`Dataset`] of square RGB images and a [`Loader`] that streams shuffled
//! `[B, 3, N, N]` f32 batches from it on background threads.
//!
//! # Sources
//! - A folder ([`Source::Dir`]): every `.jpg`, `.jpeg`, `.png`, `.webp` and `.bmp` file under it
//!   (extension case-insensitive), recursively, in sorted path order. Symbolic links to files and
//!   to folders are followed, each folder visited once (so a link cycle ends). A file that does
//!   not decode, or a JPEG cut short (no end-of-image marker after its last scan: the decoder
//!   would fill the missing part with grey), is skipped with one warning line on stderr and
//!   counted ([`Dataset::skipped`]).
//! - The embedded default set ([`Source::Emoji`]): 1,412 Noto Emoji images at 32x32 packed into
//!   `assets/emoji32.png` inside the binary (see [`emoji`]).
//!
//! # One sample
//! Decoded (format sniffed from the content), flattened to RGB (grey expanded, alpha composited
//! on white), shorter side resized to `N` with Lanczos3, centre-cropped to `N x N`, and handed
//! out as f32 in `[0, 1]`, channel-major `[3, N, N]`. The model's `[-1, 1]` scaling is the
//! trainer's business.
//!
//! # Memory policy
//! The resized samples are kept as 8-bit planar RGB (`3 * N * N` bytes each; a quarter of f32,
//! and lossless, since resizing already rounds to 8 bits). If that fits in the cache limit
//! ([`DEFAULT_CACHE_LIMIT`], 2 GiB: e.g. 70k images at 64x64, or 10k at 256x256), every image is
//! decoded once, up front, on all cores, and batches are plain copies. Otherwise the dataset
//! streams: up front only each file's header is read (to skip non-images), and the loader's
//! worker threads decode and resize each batch's files when they prefetch it. A file that passes
//! the header check but fails to decode later is warned about once, counted, and replaced in its
//! batch by the next image in path order that decodes, so runs stay reproducible. The embedded
//! emoji set is always cached (4.3 MB at 32x32).
//!
//! # Order
//! See [`Loader`]: each epoch is a permutation drawn from `(seed, epoch)`, the last partial
//! batch is dropped, and step `k`'s batch is a pure function of `(dataset, batch size, seed, k)`,
//! so a run resumed at step `k` sees exactly the batches an uninterrupted one would.

mod convert;
pub mod emoji;
mod loader;

pub use convert::{load_into, rgb_on_white, square, RESIZE_FILTER};
pub use loader::{batch_indices, epoch_permutation, Batch, Loader};

use crate::dist::Fingerprint;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The file extensions a folder dataset picks up (compared case-insensitively).
pub const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Decoded datasets up to this many bytes (8-bit planar samples) are kept in memory.
pub const DEFAULT_CACHE_LIMIT: usize = 2 << 30;

/// Why a dataset could not be opened or a loader started. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("dataset folder {} does not exist", .0.display())]
    NotFound(PathBuf),
    #[error("dataset path {} is not a folder", .0.display())]
    NotADir(PathBuf),
    #[error("cannot read dataset folder {}: {source}", .path.display())]
    Unreadable { path: PathBuf, source: io::Error },
    #[error(
        "no images under {} (looked recursively for .jpg, .jpeg, .png, .webp, .bmp files{})",
        .path.display(),
        skipped_note(*.skipped)
    )]
    NoImages { path: PathBuf, skipped: usize },
    #[error("image size must be at least 1 pixel")]
    ZeroImageSize,
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    #[error("batch size {batch} is larger than the dataset ({len} images)")]
    BatchTooLarge { batch: usize, len: usize },
    #[error("no image under {} decodes any more (every file failed to decode while training)", .0.display())]
    NoneDecode(PathBuf),
    #[error("a data loader thread died (see its message above)")]
    LoaderDied,
    #[error("the embedded emoji atlas is corrupt: {0}")]
    BadAtlas(String),
}

fn skipped_note(skipped: usize) -> String {
    match skipped {
        0 => String::new(),
        1 => "; 1 file had such an extension but did not decode".into(),
        n => format!("; {n} files had such extensions but did not decode"),
    }
}

/// Where the training images come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The 1,412 Noto Emoji images embedded in the binary.
    Emoji,
    /// Every image under a folder, recursively.
    Dir(PathBuf),
}

enum Store {
    /// Every sample, planar 8-bit, back to back.
    Cached(Vec<u8>),
    /// Samples are decoded from `paths` when a batch needs them.
    Streaming,
}

/// A fixed, ordered set of square RGB images of one size. `Send + Sync`: loaders share it
/// through an `Arc`.
pub struct Dataset {
    size: usize,
    names: Vec<String>,
    paths: Vec<PathBuf>,
    store: Store,
    skipped: Vec<PathBuf>,
    /// Streaming only: indices whose files passed the header check but failed to decode.
    late_failures: Mutex<BTreeSet<usize>>,
}

impl Dataset {
    /// Opens a source with the default memory policy.
    pub fn open(source: &Source, image_size: usize) -> Result<Dataset, DataError> {
        match source {
            Source::Emoji => emoji::dataset(image_size),
            Source::Dir(dir) => Dataset::from_dir(dir, image_size),
        }
    }

    /// Every image under `dir`, recursively; see the module docs.
    pub fn from_dir(dir: &Path, image_size: usize) -> Result<Dataset, DataError> {
        Dataset::from_dir_with_cache_limit(dir, image_size, DEFAULT_CACHE_LIMIT)
    }

    /// As [`Dataset::from_dir`], caching the decoded samples only if they fit in `cache_limit`
    /// bytes (`0` always streams).
    pub fn from_dir_with_cache_limit(
        dir: &Path,
        image_size: usize,
        cache_limit: usize,
    ) -> Result<Dataset, DataError> {
        if image_size == 0 {
            return Err(DataError::ZeroImageSize);
        }
        let files = scan(dir)?;
        let numel = 3 * image_size * image_size;
        let cache = files.len().saturating_mul(numel) <= cache_limit && cache_limit > 0;
        let (paths, store, skipped) = if cache {
            let (kept, bytes, skipped) = decode_all(&files, image_size);
            (kept, Store::Cached(bytes), skipped)
        } else {
            let (kept, skipped) = probe_all(&files);
            (kept, Store::Streaming, skipped)
        };
        for (path, why) in &skipped {
            eprintln!("warning: skipping {}: {why}", path.display());
        }
        if paths.is_empty() {
            return Err(DataError::NoImages {
                path: dir.to_path_buf(),
                skipped: skipped.len(),
            });
        }
        Ok(Dataset {
            size: image_size,
            names: paths.iter().map(|p| p.display().to_string()).collect(),
            paths,
            store,
            skipped: skipped.into_iter().map(|(p, _)| p).collect(),
            late_failures: Mutex::new(BTreeSet::new()),
        })
    }

    /// A cached dataset from samples already decoded: `bytes` holds `names.len()` planar
    /// `[3, size, size]` 8-bit images.
    pub(crate) fn from_samples(size: usize, names: Vec<String>, bytes: Vec<u8>) -> Dataset {
        assert_eq!(bytes.len(), names.len() * 3 * size * size);
        Dataset {
            size,
            names,
            paths: Vec::new(),
            store: Store::Cached(bytes),
            skipped: Vec::new(),
            late_failures: Mutex::new(BTreeSet::new()),
        }
    }

    /// Number of usable images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The side `N` of every sample.
    pub fn image_size(&self) -> usize {
        self.size
    }

    /// Floats in one sample: `3 * N * N`.
    pub fn sample_len(&self) -> usize {
        3 * self.size * self.size
    }

    /// Image `i`'s file path, or its name for the embedded set.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Whether every sample is decoded in memory (see the module docs' memory policy).
    pub fn is_cached(&self) -> bool {
        matches!(self.store, Store::Cached(_))
    }

    /// Files with an image extension that did not decode, so far (streaming datasets can find
    /// more while training).
    pub fn skipped(&self) -> usize {
        self.skipped.len() + self.late_failures.lock().unwrap().len()
    }

    /// The paths counted by [`Dataset::skipped`], sorted.
    pub fn skipped_paths(&self) -> Vec<PathBuf> {
        let late = self.late_failures.lock().unwrap();
        let mut all = self.skipped.clone();
        all.extend(late.iter().map(|&i| self.paths[i].clone()));
        all.sort();
        all
    }

    /// `n` samples spread evenly through the set (sample `k * len / n` for k < n), one after
    /// another as `[n, 3, N, N]`: a fixed subset for metrics.
    pub fn evenly_spaced(&self, n: usize) -> Vec<f32> {
        (0..n)
            .flat_map(|k| self.image(k * self.len() / n))
            .collect()
    }

    /// Writes every sample to `dir` (created if missing) as an 8-bit RGB PNG named by its
    /// zero-padded index (`00000.png`, ...), so that sorted path order is dataset order and
    /// [`Dataset::from_dir`] at the same size reads the folder back bit for bit (the files are
    /// already `N x N`, so nothing is resized again). This is how another trainer, such as the
    /// PyTorch reference, gets exactly the images vkgan trains on. Returns the paths.
    pub fn save_pngs(&self, dir: &Path) -> Result<Vec<PathBuf>, image::ImageError> {
        fs::create_dir_all(dir)?;
        let digits = self.len().to_string().len().max(5);
        let (n, plane) = (self.size, self.size * self.size);
        let mut paths = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let s = self.image(i);
            // Samples are k/255 for 8-bit k, so rounding recovers k exactly.
            let byte = |v: f32| (v * 255.0).round() as u8;
            let img = image::RgbImage::from_fn(n as u32, n as u32, |x, y| {
                let j = y as usize * n + x as usize;
                image::Rgb([byte(s[j]), byte(s[plane + j]), byte(s[2 * plane + j])])
            });
            let path = dir.join(format!("{i:0digits$}.png"));
            img.save_with_format(&path, image::ImageFormat::Png)?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Sample `i` as `[3, N, N]` floats in `[0, 1]`.
    pub fn image(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0; self.sample_len()];
        self.fill(&[i], &mut out);
        out
    }

    /// Step `step`'s batch, `[batch_size, 3, N, N]`, exactly as a [`Loader`] with the same
    /// batch size and seed yields it, computed on the calling thread. Panics if `batch_size` is
    /// 0 or larger than the dataset ([`Loader::new`] checks these and returns an error).
    pub fn batch(&self, batch_size: usize, seed: u64, step: u64) -> Vec<f32> {
        let indices = batch_indices(self.len(), batch_size, seed, step);
        let mut out = vec![0.0; indices.len() * self.sample_len()];
        self.fill(&indices, &mut out);
        out
    }

    /// A hash of what the set holds: its names in order, image size and pixels (for a
    /// streaming set, its files' lengths instead of their pixels). The ranks of a
    /// data-parallel job compare it before they train.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fingerprint::default().bytes(&(self.size as u64).to_le_bytes());
        for name in &self.names {
            h = h.bytes(name.as_bytes()).bytes(&[0]);
        }
        match &self.store {
            Store::Cached(bytes) => h.bytes(bytes).value(),
            Store::Streaming => self
                .paths
                .iter()
                .fold(h, |h, p| {
                    let len = std::fs::metadata(p).map_or(u64::MAX, |m| m.len());
                    h.bytes(&len.to_le_bytes())
                })
                .value(),
        }
    }

    /// Writes the samples `indices` back to back into `out` (`indices.len() * 3 * N * N`).
    /// Panics where [`Dataset::try_fill`] fails, which only a streaming dataset whose every
    /// file stopped decoding can.
    pub fn fill(&self, indices: &[usize], out: &mut [f32]) {
        if let Err(e) = self.try_fill(indices, out) {
            panic!("{e}");
        }
    }

    /// As [`Dataset::fill`], with an error when no image of a streaming dataset decodes.
    pub fn try_fill(&self, indices: &[usize], out: &mut [f32]) -> Result<(), DataError> {
        let numel = self.sample_len();
        assert_eq!(out.len(), indices.len() * numel);
        let mut scratch = Vec::new();
        for (&i, dst) in indices.iter().zip(out.chunks_exact_mut(numel)) {
            let src = match &self.store {
                Store::Cached(bytes) => &bytes[i * numel..(i + 1) * numel],
                Store::Streaming => {
                    scratch.resize(numel, 0);
                    self.decode_streaming(i, &mut scratch)?;
                    &scratch[..]
                }
            };
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f32::from(s) / 255.0;
            }
        }
        Ok(())
    }

    /// Decodes image `i`, or, if it fails, the next one in path order that decodes.
    fn decode_streaming(&self, i: usize, out: &mut [u8]) -> Result<(), DataError> {
        let n = self.len();
        for j in (0..n).map(|k| (i + k) % n) {
            if self.late_failures.lock().unwrap().contains(&j) {
                continue;
            }
            match convert::load_into(&self.paths[j], self.size as u32, out) {
                Ok(()) => return Ok(()),
                Err(why) => {
                    if self.late_failures.lock().unwrap().insert(j) {
                        eprintln!(
                            "warning: skipping {}: {why} (replaced by the next image)",
                            self.paths[j].display()
                        );
                    }
                }
            }
        }
        let dir = self
            .paths
            .first()
            .and_then(|p| p.parent())
            .unwrap_or(Path::new("."));
        Err(DataError::NoneDecode(dir.to_path_buf()))
    }
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Every file under `dir` with an image extension, sorted.
fn scan(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let meta = fs::metadata(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => DataError::NotFound(dir.to_path_buf()),
        _ => DataError::Unreadable {
            path: dir.to_path_buf(),
            source: e,
        },
    })?;
    if !meta.is_dir() {
        return Err(DataError::NotADir(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    // Canonical paths of the folders queued so far: a link back to an ancestor is not followed
    // twice, so link cycles end.
    let mut seen = BTreeSet::new();
    seen.extend(fs::canonicalize(dir).ok());
    while let Some(d) = pending.pop() {
        let unreadable = |e| DataError::Unreadable {
            path: d.clone(),
            source: e,
        };
        for entry in fs::read_dir(&d).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let path = entry.path();
            let kind = entry.file_type().map_err(unreadable)?;
            let is_dir = kind.is_dir()
                || (kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_dir()));
            if is_dir {
                if fs::canonicalize(&path).map_or(true, |c| seen.insert(c)) {
                    pending.push(path);
                }
            } else if is_image_name(&path)
                && (kind.is_file() || fs::metadata(&path).is_ok_and(|m| m.is_file()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

type Skipped = Vec<(PathBuf, String)>;

fn workers_for(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(jobs).max(1)
}

/// Decodes every file into one planar 8-bit buffer on all cores; returns the files that decoded
/// (in order), their samples, and the ones that did not with the reason.
fn decode_all(files: &[PathBuf], size: usize) -> (Vec<PathBuf>, Vec<u8>, Skipped) {
    let numel = 3 * size * size;
    let mut bytes = vec![0u8; files.len() * numel];
    let threads = workers_for(files.len());
    let mut ok = vec![Ok(()); files.len()];
    {
        // Interleaved so that slow files (large photos) spread across threads.
        type Job<'a> = (usize, &'a mut [u8], &'a mut Result<(), String>);
        let mut shares: Vec<Vec<Job>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, (slot, res)) in bytes.chunks_exact_mut(numel).zip(&mut ok).enumerate() {
            shares[i % threads].push((i, slot, res));
        }
        std::thread::scope(|s| {
            for share in shares {
                s.spawn(move || {
                    for (i, slot, res) in share {
                        *res = convert::load_into(&files[i], size as u32, slot);
                    }
                });
            }
        });
    }
    let mut kept = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (i, res) in ok.into_iter().enumerate() {
        match res {
            Ok(()) => {
                let k = kept.len();
                if k != i {
                    bytes.copy_within(i * numel..(i + 1) * numel, k * numel);
                }
                kept.push(files[i].clone());
            }
            Err(why) => skipped.push((files[i].clone(), why)),
        }
    }
    bytes.truncate(kept.len() * numel);
    bytes.shrink_to_fit();
    (kept, bytes, skipped)
}

/// Header check of every file (for streaming datasets).
fn probe_all(files: &[PathBuf]) -> (Vec<PathBuf>, Skipped) {
    let mut kept = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for f in files {
        match convert::probe(f) {
            Ok(()) => kept.push(f.clone()),
            Err(why) => skipped.push((f.clone(), why)),
        }
    }
    (kept, skipped)
}

#[cfg(test)]
mod tests;
