//! Multi-scale sliced Wasserstein distance (MS-SWD), Karras et al. 2018, section 5 and their
//! `sliced_wasserstein.py`: how far apart two image sets are in the statistics of their 7x7
//! neighbourhoods at each scale of a Laplacian pyramid.
//!
//! For each set of n images [n, 3, h, h] (both sets the same size):
//! 1. Laplacian pyramid ([`super::pyramid`]): levels at h, h/2, .. down to the last size that
//!    is at least `min_res` (16, as the reference; a 32x32 set has levels 32 and 16). An image
//!    smaller than `min_res` (at least 8) gets one level, itself.
//! 2. Descriptors ([`super::patches`]): `patches_per_image` random 7x7 patches per image and
//!    level (128), flattened to 147 values. The positions come from Philox keyed by the seed
//!    and the level, the same for both sets (the reference draws them afresh per batch;
//!    sharing them is what makes identical sets give exactly 0).
//! 3. Normalisation: each channel of a level's descriptors minus its mean and divided by its
//!    standard deviation, both over all patches and pixels of that level and set (the
//!    reference's `finalize_descriptors`; population std, the variance floored at 1e-12 so
//!    that a constant set gives zeros rather than NaN). Centring, then scaling and padding,
//!    are `channel_affine` passes ([`super::elementwise`]); the result is stored padded with
//!    a zero column to 148 values, so that the projection runs in the vec4 matmul kernel.
//! 4. Per level, `repeats` x `dirs_per_repeat` (4 x 128 = 512) random unit directions in
//!    R^147 (normal draws from Philox keyed by the seed and level, normalised): both sets are
//!    projected (`ops::matmul`, [D, 148] x [M, 148]ᵀ), each direction's M projections are
//!    sorted ([`super::sort`]), and the level's distance is the mean absolute difference of
//!    the sorted projections over all positions and directions: the 1-D Wasserstein-1
//!    distance between the projected empirical distributions, averaged over directions. The
//!    reference averages the per-repeat means; every repeat has the same number of
//!    directions, so that is the same as the mean over all of them, computed in one pass.
//! 5. Reported x 1e3 per level, as the reference reports, and their mean.
//!
//! Deterministic: the same seed gives the same patches and directions, every kernel is a
//! fixed sequence of f32 operations, so the same inputs give the same bits. Identical sets
//! give exactly 0 (identical descriptors, projections and sorts).
//!
//! A set's descriptors do not depend on the other set, so [`descriptors`] computes them once
//! (a training loop keeps the real set's) and [`distance`] compares two of them.

use super::elementwise::{abs_diff, channel_affine};
use super::patches::{patches, PatchKey, PATCH};
use super::pyramid::laplacian_pyramid;
use super::sort::sort_rows;
use crate::autograd::{Tape, Var};
use crate::ops;
use crate::tensor::Tensor;
use crate::vk::{Context, VkError};

/// Philox streams: patch positions and directions, each offset by the level.
const STREAM_PATCHES: u32 = 0x5357_4400;
const STREAM_DIRS: u32 = 0x5357_4500;
/// Descriptor width after padding 147 to a multiple of 4.
pub(crate) const PADDED: usize = 148;

/// The metric's parameters; `Default` is the reference's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwdConfig {
    pub patches_per_image: usize,
    pub repeats: usize,
    pub dirs_per_repeat: usize,
    /// The smallest pyramid level kept (at least 8).
    pub min_res: usize,
}

impl Default for SwdConfig {
    fn default() -> Self {
        SwdConfig {
            patches_per_image: 128,
            repeats: 4,
            dirs_per_repeat: 128,
            min_res: 16,
        }
    }
}

impl SwdConfig {
    /// Pyramid level sizes for h x h images: h, ceil(h/2), .. while at least `min_res`; one
    /// level (h) when h itself is smaller.
    pub fn level_sizes(&self, h: usize) -> Vec<usize> {
        assert!(self.min_res >= 8, "min_res must be at least 8");
        assert!(h >= 8, "SWD needs images of at least 8x8, got {h}");
        let mut sizes = vec![h];
        let mut s = h.div_ceil(2);
        while s >= self.min_res {
            sizes.push(s);
            s = s.div_ceil(2);
        }
        sizes
    }

    fn directions(&self) -> usize {
        self.repeats * self.dirs_per_repeat
    }
}

/// Distances x 1e3, one per pyramid level (finest first), and their mean.
#[derive(Clone, Debug, PartialEq)]
pub struct SwdReport {
    pub levels: Vec<f64>,
    pub mean: f64,
}

/// One image set's normalised descriptors, per level, on the device.
pub struct Descriptors {
    /// [images * patches_per_image, 148] per level, finest first.
    pub levels: Vec<Tensor>,
    pub images: usize,
    pub size: usize,
    pub seed: u64,
    pub config: SwdConfig,
}

/// Appends the descriptor extraction of images x [n, c, h, h] to a tape: one [M, 148] per
/// level. Shared by the device path and the CPU reference in the tests.
pub fn descriptor_graph(t: &mut Tape, x: Var, seed: u64, cfg: &SwdConfig) -> Vec<Var> {
    let s = t.shape(x).to_vec();
    assert!(
        s.len() == 4 && s[2] == s[3],
        "images must be [n, c, h, h], got {s:?}"
    );
    let levels = cfg.level_sizes(s[2]).len();
    let pyr = laplacian_pyramid(t, x, levels);
    pyr.into_iter()
        .enumerate()
        .map(|(l, level)| {
            let key = PatchKey {
                seed,
                stream: STREAM_PATCHES + l as u32,
            };
            let d = patches(t, level, cfg.patches_per_image, key);
            let rows = t.shape(d)[0];
            let len = PATCH * PATCH;
            let by_channel = ops::reshape(t, d, &[rows, s[1], len]);
            let mu = ops::mean(t, by_channel, &[0, 2], false);
            let ones = ops::ones(t, &[s[1]]);
            let centred = channel_affine(t, d, mu, ones, len, s[1] * len);
            let by_channel = ops::reshape(t, centred, &[rows, s[1], len]);
            let sq = ops::square(t, by_channel);
            let var = ops::mean(t, sq, &[0, 2], false);
            let var = ops::clamp_min(t, var, 1e-12);
            let inv = ops::rsqrt(t, var);
            let zeros = ops::zeros(t, &[s[1]]);
            channel_affine(t, centred, zeros, inv, len, PADDED)
        })
        .collect()
}

/// Appends level `l`'s distance (x 1e3, shape []) between descriptors a and b.
pub fn distance_graph(t: &mut Tape, a: Var, b: Var, l: usize, seed: u64, cfg: &SwdConfig) -> Var {
    let per_chunk = directions_per_chunk(t.shape(a)[0]);
    distance_graph_in_chunks(t, a, b, l, seed, cfg, per_chunk)
}

/// [`distance_graph`] projecting and sorting `per_chunk` directions at a time.
fn distance_graph_in_chunks(
    t: &mut Tape,
    a: Var,
    b: Var,
    l: usize,
    seed: u64,
    cfg: &SwdConfig,
    per_chunk: usize,
) -> Var {
    assert_eq!(t.shape(a), t.shape(b), "SWD compares equal-size sets");
    let dims = t.shape(a)[1];
    let dirs = ops::random_normal(
        t,
        &[cfg.directions(), dims - 1],
        seed as u32,
        STREAM_DIRS + l as u32,
        (seed >> 32) as u32,
    );
    let dirs = ops::l2_normalize_rows(t, dirs);
    let dirs = ops::pad_axis(t, dirs, 1, 0, dims);
    let (n_dirs, m) = (cfg.directions(), t.shape(a)[0]);
    let per_chunk = per_chunk.clamp(1, n_dirs);
    if per_chunk == n_dirs {
        let abs = sorted_abs_diff(t, dirs, a, b);
        let mean = ops::mean_all(t, abs);
        return ops::scale(t, mean, 1e3);
    }
    // Many patches: the directions in chunks, so that no projection or sort buffer passes
    // the binding range every device has; the sums add up to the same mean.
    let mut total = None;
    for start in (0..n_dirs).step_by(per_chunk) {
        let len = per_chunk.min(n_dirs - start);
        let chunk = ops::slice(t, dirs, 0, start, len);
        let abs = sorted_abs_diff(t, chunk, a, b);
        let sum = ops::sum_all(t, abs);
        total = Some(match total {
            Some(acc) => ops::add(t, acc, sum),
            None => sum,
        });
    }
    let total = total.expect("at least one direction");
    ops::scale(t, total, (1e3 / (n_dirs * m) as f64) as f32)
}

/// Directions whose projections of `m` descriptors, padded to a power of two for the sort,
/// fit in 2^27 bytes: Vulkan's minimum maxStorageBufferRange.
fn directions_per_chunk(m: usize) -> usize {
    ((1usize << 25) / m.next_power_of_two()).max(1)
}

/// |sort(dirs a^T) - sort(dirs b^T)| per direction and position.
fn sorted_abs_diff(t: &mut Tape, dirs: Var, a: Var, b: Var) -> Var {
    let proj_a = ops::matmul(t, dirs, a, false, true);
    let proj_b = ops::matmul(t, dirs, b, false, true);
    let sorted_a = sort_rows(t, proj_a);
    let sorted_b = sort_rows(t, proj_b);
    abs_diff(t, sorted_a, sorted_b)
}

fn check_images(images: &[f32], n: usize, h: usize) {
    assert!(n > 0, "SWD of an empty set");
    assert_eq!(
        images.len(),
        n * 3 * h * h,
        "images must be [n, 3, h, h] = [{n}, 3, {h}, {h}]"
    );
}

/// The descriptors of images [n, 3, h, h] (values as the model sees them; the metric is
/// invariant to a common affine change of both sets' values, since it normalises per set).
pub fn descriptors(
    ctx: &Context,
    images: &[f32],
    n: usize,
    h: usize,
    seed: u64,
    cfg: &SwdConfig,
) -> Result<Descriptors, VkError> {
    check_images(images, n, h);
    let mut t = Tape::new();
    let x = t.leaf(&[n, 3, h, h], false);
    let outs = descriptor_graph(&mut t, x, seed, cfg);
    let xt = Tensor::from_f32(ctx, &[n, 3, h, h], images)?;
    let mut program = t.compile(ctx, &outs, &[(x, &xt)])?;
    program.run()?;
    Ok(Descriptors {
        levels: outs.iter().map(|&v| program.tensor(v).clone()).collect(),
        images: n,
        size: h,
        seed,
        config: cfg.clone(),
    })
}

/// MS-SWD between two sets' descriptors (same seed, configuration and sizes).
pub fn distance(ctx: &Context, a: &Descriptors, b: &Descriptors) -> Result<SwdReport, VkError> {
    assert!(
        a.images == b.images && a.size == b.size,
        "SWD compares equal-size sets: {} images of {} vs {} of {}",
        a.images,
        a.size,
        b.images,
        b.size
    );
    assert!(
        a.seed == b.seed && a.config == b.config,
        "descriptors drawn with different seeds or configurations"
    );
    let mut t = Tape::new();
    let mut leaves = Vec::new();
    let mut outs = Vec::new();
    for (l, (ta, tb)) in a.levels.iter().zip(&b.levels).enumerate() {
        let va = t.leaf(ta.shape(), false);
        let vb = t.leaf(tb.shape(), false);
        outs.push(distance_graph(&mut t, va, vb, l, a.seed, &a.config));
        leaves.push((va, ta));
        leaves.push((vb, tb));
    }
    let values = t.eval(ctx, &outs, &leaves)?;
    Ok(report(values.iter().map(|v| v[0] as f64).collect()))
}

fn report(levels: Vec<f64>) -> SwdReport {
    let mean = levels.iter().sum::<f64>() / levels.len() as f64;
    SwdReport { levels, mean }
}

/// MS-SWD between image sets a and b, each [n, 3, h, h], with the reference's parameters.
pub fn swd(
    ctx: &Context,
    a: &[f32],
    b: &[f32],
    n: usize,
    h: usize,
    seed: u64,
) -> Result<SwdReport, VkError> {
    swd_with(ctx, a, b, n, h, seed, &SwdConfig::default())
}

/// [`swd`] with chosen parameters.
pub fn swd_with(
    ctx: &Context,
    a: &[f32],
    b: &[f32],
    n: usize,
    h: usize,
    seed: u64,
    cfg: &SwdConfig,
) -> Result<SwdReport, VkError> {
    let da = descriptors(ctx, a, n, h, seed, cfg)?;
    let db = descriptors(ctx, b, n, h, seed, cfg)?;
    distance(ctx, &da, &db)
}

/// The whole metric on the host, from the ops' f64 references: for tests on small sets.
pub fn swd_cpu(a: &[f32], b: &[f32], n: usize, h: usize, seed: u64, cfg: &SwdConfig) -> SwdReport {
    use crate::tensor::CpuTensor;
    check_images(a, n, h);
    check_images(b, n, h);
    let mut t = Tape::new();
    let xa = t.leaf(&[n, 3, h, h], false);
    let xb = t.leaf(&[n, 3, h, h], false);
    let da = descriptor_graph(&mut t, xa, seed, cfg);
    let db = descriptor_graph(&mut t, xb, seed, cfg);
    let outs: Vec<Var> = da
        .iter()
        .zip(&db)
        .enumerate()
        .map(|(l, (&va, &vb))| distance_graph(&mut t, va, vb, l, seed, cfg))
        .collect();
    let (ca, cb) = (
        CpuTensor::from_f32(&[n, 3, h, h], a),
        CpuTensor::from_f32(&[n, 3, h, h], b),
    );
    let values = t.eval_cpu(&outs, &[(xa, &ca), (xb, &cb)]);
    report(values.iter().map(|v| v.data[0]).collect())
}

#[cfg(test)]
mod tests;
