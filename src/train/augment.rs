//! Augmentation of every image the discriminator sees, for small datasets: the parameters
//! drawn on the host per image and step, and the controller of ADA's probability p. The ops
//! that apply them on the tape are in [`crate::nn::augment`].
//!
//! **ADA** (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data",
//! the `bgc` pipeline of NVlabs' `augment.py`). Each stage is applied to an image with
//! probability p (the rotations with 1 - sqrt(1 - p), as there are two), and the geometric
//! stages compose into one output-to-input matrix G⁻¹ (centred pixel coordinates):
//!
//! - x-flip (scale x by ±1), a rotation by a multiple of 90°, an integer translation of up to
//!   ±12.5% of the side (rounded to pixels); isotropic scale 2^N(0, 0.2²), a rotation uniform
//!   in (-π, π), anisotropic scale 2^N(0, 0.2²) in x against its inverse in y, another rotation,
//!   a fractional translation N(0, 0.125²) of the side;
//! - resampled bilinearly with reflected edges ([`crate::ops::affine_resample`]); NVlabs
//!   resamples at twice the resolution through a windowed sinc, which aliases less when the
//!   scale shrinks the image; here the bilinear filter is the whole filter.
//!
//! The colour stages compose into one affine 4x4 matrix C on (r, g, b, 1), built as NVlabs
//! builds it for images in [-1, 1] and conjugated to vkgan's [0, 1] (C' = A⁻¹ C A with
//! A x = 2x - 1): brightness + N(0, 0.2²), contrast x 2^N(0, 0.5²), luma flip (reflection
//! through the plane orthogonal to the grey axis v = (1,1,1)/√3), hue rotation about v uniform
//! in (-π, π), saturation x 2^N(0, 1) away from v.
//!
//! p follows the overfitting heuristic r_t = E[sign(D(real))] over `ada_interval` steps: p
//! moves by sign(r_t - target) x (images in those steps) / (ada_kimg x 1000), kept in [0, 1].
//!
//! **DiffAugment** (Zhao et al. 2020, `color,translation,cutout`), every image always:
//! brightness + U(-0.5, 0.5) (in [-1, 1] units), saturation x U(0, 2) about the pixel's
//! channel mean, contrast x U(0.5, 1.5) about the image's mean, an integer translation of up
//! to ±1/8 of the side with zero fill, and a cutout square of half the side at a uniform
//! position set to zero.
//!
//! Every draw is keyed by (seed, step, program, micro-batch, real or fake), so a resumed run
//! draws what an uninterrupted one would.

use crate::ops;
use serde::{Deserialize, Serialize};

/// Which augmentation the discriminator's inputs get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// None (runs from before augmentation existed read as this).
    #[default]
    None,
    /// Adaptive discriminator augmentation.
    Ada,
    /// DiffAugment: colour, translation and cutout on every image.
    Diffaug,
}

impl Augment {
    pub fn name(self) -> &'static str {
        match self {
            Augment::None => "none",
            Augment::Ada => "ada",
            Augment::Diffaug => "diffaug",
        }
    }

    /// What a run without `--augment` uses: ADA below this many images, none from there on
    /// (the paper's datasets of 30k images and more gain little from it).
    pub fn default_for(images: usize) -> Augment {
        if images < ADA_BELOW_IMAGES {
            Augment::Ada
        } else {
            Augment::None
        }
    }
}

/// Datasets with fewer images get ADA by default.
pub const ADA_BELOW_IMAGES: usize = 30_000;

/// The parameters of one batch's augmentation, as the tape's data leaves take them.
#[derive(Clone, Debug, PartialEq)]
pub struct AugParams {
    /// [B, 2, 3] output-to-input matrices in centred pixel units.
    pub theta: Vec<f32>,
    /// [B, 3, 4] colour matrices on (r, g, b, 1), images in [0, 1].
    pub color: Vec<f32>,
    /// [B] contrast factors about each image's mean (DiffAugment only).
    pub contrast: Option<Vec<f32>>,
    /// [B, 1, R, R] cutout masks of 0 and 1 (DiffAugment only).
    pub mask: Option<Vec<f32>>,
}

/// Uniform and normal draws per image: more than any pipeline takes, so a stage added later
/// does not shift the others' draws.
const DRAWS: usize = 32;

/// The draws of one image.
struct Draws<'a> {
    uniform: &'a [f32],
    normal: &'a [f32],
}

impl Draws<'_> {
    fn u(&self, i: usize) -> f64 {
        self.uniform[i] as f64
    }
    fn n(&self, i: usize) -> f64 {
        self.normal[i] as f64
    }
    /// An integer uniform in 0..k from uniform draw i.
    fn int(&self, i: usize, k: usize) -> f64 {
        ((self.u(i) * k as f64).floor()).min(k as f64 - 1.0)
    }
}

/// Parameters for a batch of `batch` images of side `r` at step `step`; `stream` names the
/// program, micro-batch and side (real or fake) so that no two batches share draws.
pub fn draw(
    mode: Augment,
    p: f32,
    key: u32,
    stream: u32,
    step: u32,
    batch: usize,
    r: usize,
) -> AugParams {
    let uniform = ops::random_fill_cpu(batch * DRAWS, false, key, stream, step);
    let normal = ops::random_fill_cpu(batch * DRAWS, true, key, stream + 1, step);
    let draws = |k: usize| Draws {
        uniform: &uniform[k * DRAWS..(k + 1) * DRAWS],
        normal: &normal[k * DRAWS..(k + 1) * DRAWS],
    };
    let mut params = AugParams {
        theta: Vec::with_capacity(batch * 6),
        color: Vec::with_capacity(batch * 12),
        contrast: (mode == Augment::Diffaug).then(|| Vec::with_capacity(batch)),
        mask: (mode == Augment::Diffaug).then(|| Vec::with_capacity(batch * r * r)),
    };
    for k in 0..batch {
        let d = draws(k);
        let (theta, color) = match mode {
            Augment::None => (IDENTITY3, IDENTITY4),
            Augment::Ada => (ada_geometry(&d, p as f64, r), ada_color(&d, p as f64)),
            Augment::Diffaug => {
                let (theta, color, contrast) = diffaug(&d, r);
                params
                    .contrast
                    .as_mut()
                    .expect("diffaug")
                    .push(contrast as f32);
                params.mask.as_mut().expect("diffaug").extend(cutout(&d, r));
                (theta, color)
            }
        };
        params
            .theta
            .extend(theta[..2].iter().flatten().map(|&v| v as f32));
        params
            .color
            .extend(color[..3].iter().flatten().map(|&v| v as f32));
    }
    params
}

type M3 = [[f64; 3]; 3];
type M4 = [[f64; 4]; 4];

const IDENTITY3: M3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
const IDENTITY4: M4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

fn mul3(a: &M3, b: &M3) -> M3 {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn mul4(a: &M4, b: &M4) -> M4 {
    let mut m = [[0.0; 4]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn translate2(tx: f64, ty: f64) -> M3 {
    [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]
}

fn scale2(sx: f64, sy: f64) -> M3 {
    [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]
}

fn rotate2(a: f64) -> M3 {
    let (s, c) = a.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

/// The value `v` when the gate draw falls below `p`, else `off` (the stage is skipped).
fn gated(gate: f64, p: f64, v: f64, off: f64) -> f64 {
    if gate < p {
        v
    } else {
        off
    }
}

/// ADA's geometric stages as one output-to-input matrix (NVlabs composes the inverses of
/// the forward transforms in this order).
fn ada_geometry(d: &Draws, p: f64, r: usize) -> M3 {
    let side = r as f64;
    let p_rot = 1.0 - (1.0 - p).max(0.0).sqrt();
    let mut g = IDENTITY3;
    // x-flip: scale x by 1 - 2i, its own inverse.
    let i = gated(d.u(0), p, d.int(13, 2), 0.0);
    g = mul3(&g, &scale2(1.0 - 2.0 * i, 1.0));
    // Rotation by i quarter turns: the inverse of rotating by -i quarter turns.
    let i = gated(d.u(1), p, d.int(14, 4), 0.0);
    g = mul3(&g, &rotate2(std::f64::consts::FRAC_PI_2 * i));
    // Integer translation of up to 1/8 of the side.
    let tx = gated(d.u(2), p, (d.u(15) * 2.0 - 1.0) * 0.125, 0.0);
    let ty = gated(d.u(2), p, (d.u(16) * 2.0 - 1.0) * 0.125, 0.0);
    g = mul3(&g, &translate2(-(tx * side).round(), -(ty * side).round()));
    // Isotropic scale.
    let s = gated(d.u(3), p, (d.n(0) * 0.2).exp2(), 1.0);
    g = mul3(&g, &scale2(1.0 / s, 1.0 / s));
    // Rotation before the anisotropic scale.
    let a = gated(
        d.u(4),
        p_rot,
        (d.u(17) * 2.0 - 1.0) * std::f64::consts::PI,
        0.0,
    );
    g = mul3(&g, &rotate2(a));
    // Anisotropic scale.
    let s = gated(d.u(5), p, (d.n(1) * 0.2).exp2(), 1.0);
    g = mul3(&g, &scale2(1.0 / s, s));
    // Rotation after it.
    let a = gated(
        d.u(6),
        p_rot,
        (d.u(18) * 2.0 - 1.0) * std::f64::consts::PI,
        0.0,
    );
    g = mul3(&g, &rotate2(a));
    // Fractional translation.
    let tx = gated(d.u(7), p, d.n(2) * 0.125, 0.0);
    let ty = gated(d.u(7), p, d.n(3) * 0.125, 0.0);
    mul3(&g, &translate2(-tx * side, -ty * side))
}

/// ADA's colour stages as one matrix on (r, g, b, 1) for images in [0, 1].
fn ada_color(d: &Draws, p: f64) -> M4 {
    let v = [1.0 / 3f64.sqrt(); 3];
    let outer = |s: f64| -> M4 {
        let mut m = [[0.0; 4]; 4];
        for (i, row) in m.iter_mut().take(3).enumerate() {
            for (j, x) in row.iter_mut().take(3).enumerate() {
                *x = s * v[i] * v[j];
            }
        }
        m
    };
    let plus = |a: M4, b: M4| -> M4 {
        let mut m = a;
        for i in 0..4 {
            for j in 0..4 {
                m[i][j] += b[i][j];
            }
        }
        m
    };
    let mut c = IDENTITY4;
    let b = gated(d.u(8), p, d.n(4) * 0.2, 0.0);
    let mut t = IDENTITY4;
    (0..3).for_each(|i| t[i][3] = b);
    c = mul4(&t, &c);
    let k = gated(d.u(9), p, (d.n(5) * 0.5).exp2(), 1.0);
    let mut s = IDENTITY4;
    (0..3).for_each(|i| s[i][i] = k);
    c = mul4(&s, &c);
    let i = gated(d.u(10), p, d.int(19, 2), 0.0);
    c = mul4(&plus(IDENTITY4, outer(-2.0 * i)), &c);
    let a = gated(
        d.u(11),
        p,
        (d.u(20) * 2.0 - 1.0) * std::f64::consts::PI,
        0.0,
    );
    c = mul4(&rotate_about(v, a), &c);
    let k = gated(d.u(12), p, d.n(6).exp2(), 1.0);
    // v vᵀ + (I - v vᵀ) k, on the colour part.
    let mut sat = outer(1.0 - k);
    (0..3).for_each(|i| sat[i][i] += k);
    sat[3][3] = 1.0;
    c = mul4(&sat, &c);
    to_unit_range(&c)
}

/// Rotation by `a` about the unit axis `v` (Rodrigues), on the colour part.
fn rotate_about(v: [f64; 3], a: f64) -> M4 {
    let (s, c) = a.sin_cos();
    let [x, y, z] = v;
    let k = 1.0 - c;
    [
        [c + x * x * k, x * y * k - z * s, x * z * k + y * s, 0.0],
        [y * x * k + z * s, c + y * y * k, y * z * k - x * s, 0.0],
        [z * x * k - y * s, z * y * k + x * s, c + z * z * k, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// A colour matrix for images in [-1, 1] as one for images in [0, 1]: A⁻¹ C A, A x = 2x - 1.
fn to_unit_range(c: &M4) -> M4 {
    let mut a = IDENTITY4;
    let mut a_inv = IDENTITY4;
    for i in 0..3 {
        a[i][i] = 2.0;
        a[i][3] = -1.0;
        a_inv[i][i] = 0.5;
        a_inv[i][3] = 0.5;
    }
    mul4(&a_inv, &mul4(c, &a))
}

/// DiffAugment's translation (as an output-to-input matrix), its brightness and saturation
/// (as a colour matrix) and its contrast factor.
fn diffaug(d: &Draws, r: usize) -> (M3, M4, f64) {
    let shift = (r as f64 * 0.125 + 0.5).floor();
    let span = 2 * shift as usize + 1;
    let tx = d.int(3, span) - shift;
    let ty = d.int(4, span) - shift;
    // Brightness in [-1, 1] units is half as much in [0, 1].
    let b = (d.u(0) - 0.5) * 0.5;
    let s = d.u(1) * 2.0;
    let mut color = IDENTITY4;
    for (i, row) in color.iter_mut().take(3).enumerate() {
        for (j, x) in row.iter_mut().take(3).enumerate() {
            *x = (1.0 - s) / 3.0 + if i == j { s } else { 0.0 };
        }
        // Saturation after brightness: the offset b passes through s I + (1 - s)/3 J as b.
        row[3] = b;
    }
    (translate2(tx, ty), color, d.u(2) + 0.5)
}

/// DiffAugment's cutout: 1 everywhere but a square of half the side, centred at a uniform
/// position (clipped at the edges), which is 0.
fn cutout(d: &Draws, r: usize) -> Vec<f32> {
    let size = (r as f64 * 0.5 + 0.5).floor() as i64;
    let positions = r + (1 - (size as usize % 2));
    let cy = d.int(5, positions) as i64 - size / 2;
    let cx = d.int(6, positions) as i64 - size / 2;
    let mut mask = vec![1.0f32; r * r];
    for y in cy.max(0)..(cy + size).min(r as i64) {
        for x in cx.max(0)..(cx + size).min(r as i64) {
            mask[y as usize * r + x as usize] = 0.0;
        }
    }
    mask
}

/// ADA's probability and the statistic it follows, carried in the checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AdaState {
    pub p: f32,
    /// Σ sign(D(real)) and the number of scores since the last adjustment.
    pub sign_sum: f64,
    pub sign_count: u64,
    /// r_t of the last adjustment (0 before the first).
    pub last_rt: f32,
}

/// How p is adjusted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaTuning {
    pub target: f32,
    /// Steps between adjustments.
    pub interval: u64,
    /// Thousands of images for p to move by 1.
    pub kimg: f32,
    /// Images per step.
    pub images_per_step: u64,
}

impl AdaState {
    /// Takes one step's real scores; after every `interval`-th step (`idx` from 0) adjusts p
    /// and returns the r_t it followed.
    pub fn observe(&mut self, tuning: &AdaTuning, idx: u64, real_scores: &[f32]) -> Option<f32> {
        let sum = AdaState::sign_sum(real_scores);
        self.observe_signs(tuning, idx, sum, real_scores.len() as u64)
    }

    /// The sum of the signs of `scores` (0 for a score of 0).
    pub fn sign_sum(scores: &[f32]) -> f64 {
        scores
            .iter()
            .map(|&s| {
                if s > 0.0 {
                    1.0
                } else if s < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            })
            .sum()
    }

    /// As [`AdaState::observe`], from the signs' sum over `count` scores (what the ranks of
    /// a data-parallel run add up).
    pub fn observe_signs(
        &mut self,
        tuning: &AdaTuning,
        idx: u64,
        sign_sum: f64,
        count: u64,
    ) -> Option<f32> {
        self.sign_sum += sign_sum;
        self.sign_count += count;
        if (idx + 1) % tuning.interval != 0 || self.sign_count == 0 {
            return None;
        }
        let rt = self.sign_sum / self.sign_count as f64;
        let images = (tuning.images_per_step * tuning.interval) as f64;
        let step = images / (tuning.kimg as f64 * 1000.0);
        let direction = (rt - tuning.target as f64).signum();
        let moved = if rt == tuning.target as f64 {
            0.0
        } else {
            direction * step
        };
        self.p = (self.p as f64 + moved).clamp(0.0, 1.0) as f32;
        self.sign_sum = 0.0;
        self.sign_count = 0;
        self.last_rt = rt as f32;
        Some(rt as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply3(m: &[f32], u: f64, v: f64) -> (f64, f64) {
        let m: Vec<f64> = m.iter().map(|&x| x as f64).collect();
        (m[0] * u + m[1] * v + m[2], m[3] * u + m[4] * v + m[5])
    }

    #[test]
    fn p_zero_and_no_augmentation_are_the_identity() {
        for mode in [Augment::None, Augment::Ada] {
            let a = draw(mode, 0.0, 1, 9_000_000, 3, 5, 16);
            assert_eq!(
                a.theta,
                [1.0, 0.0, 0.0, 0.0, 1.0, 0.0].repeat(5),
                "{mode:?}"
            );
            let id = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
            assert_eq!(a.color, id.repeat(5), "{mode:?}");
            assert!(a.contrast.is_none() && a.mask.is_none());
        }
    }

    #[test]
    fn draws_are_keyed_by_step_and_stream() {
        let a = draw(Augment::Ada, 0.8, 1, 9_000_000, 3, 4, 16);
        assert_eq!(a, draw(Augment::Ada, 0.8, 1, 9_000_000, 3, 4, 16));
        assert_ne!(a, draw(Augment::Ada, 0.8, 1, 9_000_000, 4, 4, 16));
        assert_ne!(a, draw(Augment::Ada, 0.8, 1, 9_000_010, 3, 4, 16));
        // A batch's first images do not depend on its size.
        let longer = draw(Augment::Ada, 0.8, 1, 9_000_000, 3, 8, 16);
        assert_eq!(a.theta[..], longer.theta[..24]);
    }

    /// At p = 1 every stage runs: the matrices are proper (no NaN), the colour matrix keeps
    /// grey grey when only brightness and contrast act, and the geometry keeps the scale
    /// within what the draws allow.
    #[test]
    fn ada_at_full_probability_draws_sane_transforms() {
        let a = draw(Augment::Ada, 1.0, 7, 9_000_000, 11, 256, 32);
        assert!(a.theta.iter().chain(&a.color).all(|v| v.is_finite()));
        let mut flips = 0;
        for m in a.theta.chunks(6) {
            let det = m[0] as f64 * m[4] as f64 - m[1] as f64 * m[3] as f64;
            // |det| is 1/s² of the isotropic scale (the anisotropic one keeps area): within
            // 2^±4σ of 1 for σ = 0.2, almost surely.
            assert!(det.abs() > 0.1 && det.abs() < 10.0, "{det}");
            flips += (det < 0.0) as usize;
        }
        // About half the images are mirrored.
        assert!((80..176).contains(&flips), "{flips} of 256 mirrored");
    }

    #[test]
    fn the_colour_matrix_works_in_unit_range_images() {
        // A pure brightness shift b in [-1, 1] units moves a [0, 1] image by b/2.
        let mut c = IDENTITY4;
        (0..3).for_each(|i| c[i][3] = 0.4);
        let m = to_unit_range(&c);
        assert!((m[0][3] - 0.2).abs() < 1e-12 && (m[0][0] - 1.0).abs() < 1e-12);
        // A contrast k in [-1, 1] units scales about 0.5 in [0, 1].
        let mut c = IDENTITY4;
        (0..3).for_each(|i| c[i][i] = 2.0);
        let m = to_unit_range(&c);
        let grey = 0.5 * m[0][0] + m[0][3];
        assert!((grey - 0.5).abs() < 1e-12);
        // Luma flip maps black to white and keeps the hue axis' orthogonal part.
        let v = [1.0 / 3f64.sqrt(); 3];
        let mut flip = IDENTITY4;
        for i in 0..3 {
            for j in 0..3 {
                flip[i][j] -= 2.0 * v[i] * v[j];
            }
        }
        let m = to_unit_range(&flip);
        let black_to: f64 = m[0][3];
        assert!((black_to - 1.0).abs() < 1e-12, "{black_to}");
        // A hue rotation keeps grey.
        let m = to_unit_range(&rotate_about(v, 1.0));
        let g: f64 = (0..3).map(|j| m[0][j] * 0.3).sum::<f64>() + m[0][3];
        assert!((g - 0.3).abs() < 1e-12);
    }

    #[test]
    fn an_x_flip_alone_mirrors_about_the_centre() {
        // Gate 0 open, every other gate shut, flip draw 1.
        let mut uniform = vec![0.99f32; DRAWS];
        uniform[0] = 0.0;
        uniform[13] = 0.75;
        let normal = vec![0.0f32; DRAWS];
        let d = Draws {
            uniform: &uniform,
            normal: &normal,
        };
        let g = ada_geometry(&d, 0.5, 16);
        let flat: Vec<f32> = g[..2].iter().flatten().map(|&v| v as f32).collect();
        assert_eq!(apply3(&flat, 3.5, -2.5), (-3.5, -2.5));
    }

    #[test]
    fn diffaug_translates_by_whole_pixels_and_cuts_half_the_side() {
        let a = draw(Augment::Diffaug, 0.0, 3, 9_000_000, 0, 64, 16);
        for m in a.theta.chunks(6) {
            assert_eq!(&m[..2], &[1.0, 0.0]);
            assert_eq!(&m[3..5], &[0.0, 1.0]);
            for t in [m[2], m[5]] {
                assert!(t.fract() == 0.0 && t.abs() <= 2.0, "{t}");
            }
        }
        for mask in a.mask.as_ref().unwrap().chunks(256) {
            let zeros = mask.iter().filter(|&&v| v == 0.0).count();
            // An 8x8 square, clipped at the edges to no less than 4x4.
            assert!((16..=64).contains(&zeros), "{zeros}");
        }
        for &c in a.contrast.as_ref().unwrap() {
            assert!((0.5..1.5).contains(&c));
        }
    }

    #[test]
    fn p_follows_the_sign_of_real_scores() {
        let tuning = AdaTuning {
            target: 0.6,
            interval: 4,
            kimg: 1.0,
            images_per_step: 10,
        };
        let mut ada = AdaState::default();
        // Overfitting: every real score positive, r_t = 1 > 0.6: p rises by 40/1000 after
        // every fourth step.
        for idx in 0..3 {
            assert_eq!(ada.observe(&tuning, idx, &[1.0; 10]), None);
        }
        assert_eq!(ada.observe(&tuning, 3, &[1.0; 10]), Some(1.0));
        assert!((ada.p - 0.04).abs() < 1e-7, "{}", ada.p);
        // Scores 7 positive to 3 negative (r_t = 0.4 < 0.6): p falls back, never below 0.
        let mixed = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0];
        for idx in 4..8 {
            ada.observe(&tuning, idx, &mixed);
        }
        assert!(ada.p.abs() < 1e-7 && ada.p >= 0.0, "{}", ada.p);
        for idx in 8..12 {
            ada.observe(&tuning, idx, &[-1.0; 10]);
        }
        assert_eq!(ada.p, 0.0);
        assert_eq!(ada.last_rt, -1.0);
    }
}
