//! `vkgan interpolate`: a looping walk through the latents of a list of seeds, written as an
//! animation (see [`crate::outputs::animation`]) and optionally a strip of evenly spaced frames.
//!
//! The walk goes from each seed to the next and from the last back to the first, `frames`
//! frames a step: frame k of a step from seed a to seed b sits at t = k / frames, so each
//! seed's own image starts its step and the animation loops without a repeated frame. In w
//! space (the default) the mapping outputs of the seeds are interpolated linearly, then
//! truncated (truncation is affine, so this is also the line between the truncated w); in z
//! space the latents are interpolated along the great circle (slerp), then mapped and
//! truncated. By default every frame has the noise of the first seed, so only the styles move
//! and the fine detail does not flicker; with [`Noise::Walk`] the noise maps walk too, each
//! map along the great circle between the two seeds' maps (which keeps its variance, as two
//! independent Gaussian draws are nearly orthogonal and of nearly equal norm), so each seed's
//! frame is its `vkgan generate` image, for models that take much of their variety from the
//! noise. Either way the first frame is exactly `vkgan generate`'s image of the first seed at
//! the same truncation and scale, in either space (before a GIF's palette rounds it). Same
//! arguments, same bytes.

use super::generate::{check_truncation, figure_scale};
use super::load::LoadedGenerator;
use crate::outputs::animation::{AnimationWriter, Format};
use crate::outputs::images::{self, Batch, GridOptions};
use crate::train::sample::{self, Input, Sampler};
use crate::vk::Context;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Frames from one seed to the next by default: 2 seconds at the default 25 fps.
pub const DEFAULT_FRAMES: usize = 50;
/// Most frames from one seed to the next (40 seconds at 25 fps).
pub const MAX_STEP_FRAMES: usize = 1_000;
/// Most frames of a walk (6.7 minutes at 25 fps); also bounds the number of seeds.
pub const MAX_FRAMES: usize = 10_000;
/// Most pixels of all frames together (2^31: 10,000 frames of 460x460), which bounds the
/// time to encode and the size of the file.
pub const MAX_PIXELS: u64 = 1 << 31;
/// Frames in a strip.
pub const STRIP_FRAMES: usize = 8;
/// Frames generated per run of the sampler.
const BATCH: usize = 16;

/// Where the walk interpolates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Space {
    /// The mapping network's output, linearly.
    W,
    /// The latents, along the great circle.
    Z,
}

impl Space {
    pub fn name(self) -> &'static str {
        match self {
            Space::W => "w",
            Space::Z => "z",
        }
    }
}

/// What the noise maps do along a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Noise {
    /// The first seed's noise in every frame: only the styles move.
    #[default]
    Fixed,
    /// From each seed's noise to the next one's, along the great circle.
    Walk,
}

/// The point a fraction `t` of the way from `a` to `b` on the line; `a` and `b` exactly at 0
/// and 1.
pub fn lerp(a: &[f32], b: &[f32], t: f64) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "lerp of vectors of different lengths");
    // The endpoints as they are: a + 0 (b - a) can turn -0 into +0, and a + (b - a) need not
    // round to b.
    if t == 0.0 {
        return a.to_vec();
    }
    if t == 1.0 {
        return b.to_vec();
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 + t * (y as f64 - x as f64)) as f32)
        .collect()
}

/// Spherical interpolation: the point a fraction `t` of the angle from `a` to `b`, in their
/// plane, with the coefficients of Shoemake's slerp (so for `a` and `b` of equal norm the
/// path stays on that sphere); `a` and `b` exactly at 0 and 1. Parallel vectors (and a zero
/// vector) have no plane and the arc is the line: [`lerp`]. Opposite vectors have every plane
/// through them; the walk takes the one through `a`'s smallest coordinate axis, with the norm
/// going linearly from |a| to |b|.
pub fn slerp(a: &[f32], b: &[f32], t: f64) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "slerp of vectors of different lengths");
    if t == 0.0 {
        return a.to_vec();
    }
    if t == 1.0 {
        return b.to_vec();
    }
    let norm = |v: &[f32]| v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    if na == 0.0 || nb == 0.0 {
        return lerp(a, b, t);
    }
    // The angle from the chord between the unit vectors and their sum: exact to the last digits
    // near 0 and pi, where acos of the cosine loses half of them.
    let (mut chord, mut sum) = (0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (u, v) = (x as f64 / na, y as f64 / nb);
        chord += (u - v).powi(2);
        sum += (u + v).powi(2);
    }
    let omega = 2.0 * chord.sqrt().atan2(sum.sqrt());
    // Within this of 0 the arc and the line differ by less than f32 can show; within this of
    // pi the plane of the arc is no longer determined by a and b.
    const DEGENERATE: f64 = 1e-9;
    if omega < DEGENERATE || (std::f64::consts::PI - omega < DEGENERATE && a.len() < 2) {
        return lerp(a, b, t);
    }
    if std::f64::consts::PI - omega < DEGENERATE {
        return half_turn(a, na, nb, t);
    }
    let sin = omega.sin();
    let ca = ((1.0 - t) * omega).sin() / sin;
    let cb = (t * omega).sin() / sin;
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (ca * x as f64 + cb * y as f64) as f32)
        .collect()
}

/// The point at angle t*pi from `a` (norm `na`) towards the opposite direction, turning
/// through the unit vector p perpendicular to a that lies closest to a's smallest coordinate
/// axis, with norm (1 - t) na + t nb.
fn half_turn(a: &[f32], na: f64, nb: f64, t: f64) -> Vec<f32> {
    let unit: Vec<f64> = a.iter().map(|&x| x as f64 / na).collect();
    let axis = (0..unit.len())
        .min_by(|&i, &j| unit[i].abs().total_cmp(&unit[j].abs()))
        .expect("at least two coordinates");
    // Gram-Schmidt of that axis against a: |a_axis| <= 1/sqrt(d) < 1, so p is not zero.
    let mut p: Vec<f64> = unit.iter().map(|&u| -unit[axis] * u).collect();
    p[axis] += 1.0;
    let np = p.iter().map(|x| x * x).sum::<f64>().sqrt();
    let angle = t * std::f64::consts::PI;
    let r = (1.0 - t) * na + t * nb;
    unit.iter()
        .zip(&p)
        .map(|(&u, &q)| (r * (angle.cos() * u + angle.sin() * q / np)) as f32)
        .collect()
}

/// A looping walk through seeds.
#[derive(Clone, Debug)]
pub struct Walk {
    pub seeds: Vec<u64>,
    /// Frames from one seed to the next.
    pub frames: usize,
    pub space: Space,
    pub truncation: f32,
    pub noise: Noise,
}

impl Walk {
    /// Checks the walk: two seeds or more (it must come back), 1 to [`MAX_STEP_FRAMES`] frames
    /// a step, at most [`MAX_FRAMES`] in all, a finite truncation.
    pub fn new(seeds: Vec<u64>, frames: usize, space: Space, truncation: f32) -> Result<Walk> {
        if seeds.len() < 2 {
            bail!(
                "--seeds names one seed ({}): a walk needs two or more, to go through them \
                 and back to the first",
                seeds.first().map_or(String::new(), u64::to_string)
            );
        }
        if frames == 0 {
            bail!("--frames must be at least 1 (frames from one seed to the next)");
        }
        if frames > MAX_STEP_FRAMES {
            bail!("--frames {frames} is larger than the limit of {MAX_STEP_FRAMES}");
        }
        let total = seeds.len().saturating_mul(frames);
        if total > MAX_FRAMES {
            bail!(
                "the walk would have {total} frames ({} seeds x {frames}), more than the limit \
                 of {MAX_FRAMES}: give fewer seeds or --frames",
                seeds.len()
            );
        }
        check_truncation(truncation)?;
        Ok(Walk {
            seeds,
            frames,
            space,
            truncation,
            noise: Noise::Fixed,
        })
    }

    /// The same walk with the noise maps doing `noise`.
    pub fn with_noise(self, noise: Noise) -> Walk {
        Walk { noise, ..self }
    }

    /// Frames of the whole loop.
    pub fn len(&self) -> usize {
        self.seeds.len() * self.frames
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frame `i` lies a fraction t of the way from seed index a to seed index b:
    /// `(a, b, t)`.
    pub fn position(&self, i: usize) -> (usize, usize, f64) {
        let step = i / self.frames;
        let t = (i % self.frames) as f64 / self.frames as f64;
        (step, (step + 1) % self.seeds.len(), t)
    }

    /// The frames of a strip: [`STRIP_FRAMES`] (or every frame, if fewer) evenly spaced from
    /// the first.
    pub fn strip_frames(&self) -> Vec<usize> {
        let n = STRIP_FRAMES.min(self.len());
        (0..n).map(|k| k * self.len() / n).collect()
    }
}

/// Where and how a walk is written.
#[derive(Clone, Debug)]
pub struct WalkOutput {
    pub path: PathBuf,
    pub format: Format,
    /// Enlargement of every frame; default [`figure_scale`] (about 128 pixels).
    pub scale: Option<u32>,
    pub fps: u32,
    /// Also a PNG of [`Walk::strip_frames`] side by side, at the frames' scale.
    pub strip: Option<PathBuf>,
}

/// What [`write_walk`] wrote.
#[derive(Clone, Copy, Debug)]
pub struct WalkReport {
    pub frames: usize,
    /// Pixels a side of a frame.
    pub side: u32,
    pub scale: u32,
    /// Frames in the strip, if one was written.
    pub strip_frames: Option<usize>,
}

/// Renders `walk` with `gen` into `out`, a batch of frames at a time, encoding each as it
/// comes.
pub fn write_walk(
    ctx: &Context,
    gen: &LoadedGenerator,
    walk: &Walk,
    out: &WalkOutput,
) -> Result<WalkReport> {
    let r = gen.cfg.image_size;
    let d = gen.cfg.d_latent;
    let scale = figure_scale(r, out.scale);
    let side = r as u32 * scale;
    let pixels = walk.len() as u64 * side as u64 * side as u64;
    if pixels > MAX_PIXELS {
        bail!(
            "the walk would be {} frames of {side}x{side} pixels ({:.1} Gpixel), more than the \
             limit of {:.1}: give fewer frames or a smaller --scale",
            walk.len(),
            pixels as f64 / 1e9,
            MAX_PIXELS as f64 / 1e9
        );
    }
    // The keys the walk passes through: each seed's z, or its w.
    let z: Vec<f32> = walk
        .seeds
        .iter()
        .flat_map(|&s| sample::latent(s, d))
        .collect();
    let (keys, input) = match walk.space {
        Space::Z => (z, Input::Z),
        Space::W => (
            sample::map_latents(ctx, &gen.store, &gen.cfg, &z)?,
            Input::W,
        ),
    };
    let key = |i: usize| &keys[i * d..(i + 1) * d];
    let batch = walk.len().min(BATCH);
    let mut sampler = Sampler::with_input(ctx, &gen.store, &gen.cfg, &gen.w_avg, batch, input)?;
    let mut writer =
        AnimationWriter::create(out.format, &out.path, (side, side), walk.len(), out.fps)?;
    let strip_frames = walk.strip_frames();
    let per = 3 * r * r;
    let mut strip = Vec::with_capacity(strip_frames.len() * per);
    let frames: Vec<usize> = (0..walk.len()).collect();
    for chunk in frames.chunks(batch) {
        let mut latents = Vec::with_capacity(chunk.len() * d);
        for &i in chunk {
            let (a, b, t) = walk.position(i);
            latents.extend(match walk.space {
                Space::Z => slerp(key(a), key(b), t),
                Space::W => lerp(key(a), key(b), t),
            });
        }
        let shown = match walk.noise {
            Noise::Fixed => sampler.generate_latents(&latents, walk.seeds[0], walk.truncation)?,
            Noise::Walk => {
                let noise_of = |k: usize, i: usize, j: usize, r: usize| {
                    let (a, b, t) = walk.position(chunk[k]);
                    let from = sample::noise(walk.seeds[a], i, j, r);
                    slerp(&from, &sample::noise(walk.seeds[b], i, j, r), t)
                };
                sampler.generate_latents_with_noise(&latents, noise_of, walk.truncation)?
            }
        };
        let view = Batch::new(&shown, [chunk.len(), 3, r, r])?;
        for (j, &i) in chunk.iter().enumerate() {
            writer.push(&images::image(&view, j, scale)?)?;
            if strip_frames.contains(&i) {
                strip.extend_from_slice(&shown[j * per..(j + 1) * per]);
            }
        }
    }
    writer.finish()?;
    if let Some(path) = &out.strip {
        let view = Batch::new(&strip, [strip_frames.len(), 3, r, r])?;
        let opts = GridOptions {
            cols: Some(strip_frames.len()),
            scale,
            ..GridOptions::default()
        };
        images::save_png(path, &images::grid(&view, &opts)?)?;
    }
    Ok(WalkReport {
        frames: walk.len(),
        side,
        scale,
        strip_frames: out.strip.as_ref().map(|_| strip_frames.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[f32]) -> f64 {
        v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    fn angle(a: &[f32], b: &[f32]) -> f64 {
        (dot(a, b) / (norm(a) * norm(b))).clamp(-1.0, 1.0).acos()
    }

    #[test]
    fn endpoints_are_exact() {
        let a = [0.3f32, -0.0, 1e-7, -2.5];
        let b = [-1.1f32, 0.7, 3.0, 0.1];
        for f in [lerp, slerp] {
            assert_eq!(f(&a, &b, 0.0), a);
            assert_eq!(f(&a, &b, 1.0), b);
            // -0 stays -0 (bit for bit).
            assert_eq!(f(&a, &b, 0.0)[1].to_bits(), (-0.0f32).to_bits());
        }
    }

    #[test]
    fn lerp_is_the_line() {
        let got = lerp(&[0.0, 2.0], &[4.0, -2.0], 0.25);
        assert_eq!(got, [1.0, 1.0]);
    }

    #[test]
    fn slerp_keeps_equal_norms_and_moves_at_constant_angle() {
        let a = [3.0f32, 0.0, 4.0, 0.0];
        let b = [0.0f32, 5.0, 0.0, 0.0];
        let omega = angle(&a, &b);
        for t in [0.1, 0.25, 0.5, 0.9] {
            let p = slerp(&a, &b, t);
            assert!((norm(&p) - 5.0).abs() < 1e-5, "t {t}: norm {}", norm(&p));
            assert!((angle(&a, &p) - t * omega).abs() < 1e-6, "t {t}");
            assert!((angle(&p, &b) - (1.0 - t) * omega).abs() < 1e-6, "t {t}");
        }
        // 512 random-ish coordinates of two latents of equal norm.
        let z1: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 29.0)
            .collect();
        let z2: Vec<f32> = (0..512)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 27.0)
            .collect();
        let z2: Vec<f32> = z2
            .iter()
            .map(|&x| x * (norm(&z1) / norm(&z2)) as f32)
            .collect();
        let mid = slerp(&z1, &z2, 0.5);
        assert!((norm(&mid) / norm(&z1) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn parallel_and_zero_vectors_fall_back_to_the_line() {
        let a = [1.0f32, 2.0, -3.0];
        let b = [2.0f32, 4.0, -6.0];
        assert_eq!(slerp(&a, &b, 0.5), lerp(&a, &b, 0.5));
        assert_eq!(slerp(&a, &a, 0.3), a);
        let zero = [0.0f32; 3];
        assert_eq!(slerp(&zero, &a, 0.5), [0.5, 1.0, -1.5]);
    }

    #[test]
    fn opposite_vectors_turn_through_a_perpendicular() {
        let a = [1.0f32, -2.0, 0.5, 2.0];
        let b: Vec<f32> = a.iter().map(|x| -x).collect();
        for t in [0.25, 0.5, 0.75] {
            let p = slerp(&a, &b, t);
            assert!(p.iter().all(|x| x.is_finite()));
            assert!((norm(&p) - norm(&a)).abs() < 1e-5, "t {t}");
            let want = t * std::f64::consts::PI;
            assert!((angle(&a, &p) - want).abs() < 1e-5, "t {t}");
        }
        // Halfway is perpendicular to a, towards a's smallest axis (index 2).
        let mid = slerp(&a, &b, 0.5);
        assert!(dot(&mid, &a).abs() < 1e-5);
        assert!(mid[2] > 0.0);
        // The norm goes linearly between unequal norms.
        let c: Vec<f32> = a.iter().map(|x| -3.0 * x).collect();
        assert!((norm(&slerp(&a, &c, 0.5)) - 2.0 * norm(&a)).abs() < 1e-5);
        // One dimension has no perpendicular: the line (through 0).
        assert_eq!(slerp(&[2.0], &[-2.0], 0.5), [0.0]);
    }

    #[test]
    fn the_walk_loops_through_every_seed() {
        let walk = Walk::new(vec![4, 9, 2], 4, Space::W, 1.0).unwrap();
        assert_eq!(walk.len(), 12);
        assert_eq!(walk.position(0), (0, 1, 0.0));
        assert_eq!(walk.position(3), (0, 1, 0.75));
        assert_eq!(walk.position(4), (1, 2, 0.0));
        // The last frame is on the way back to the first seed, and not at it.
        assert_eq!(walk.position(11), (2, 0, 0.75));
        assert_eq!(walk.strip_frames(), [0, 1, 3, 4, 6, 7, 9, 10]);
        let short = Walk::new(vec![0, 1], 2, Space::Z, 0.5).unwrap();
        assert_eq!(short.strip_frames(), [0, 1, 2, 3]);
    }

    #[test]
    fn bad_walks_are_refused_with_the_reason() {
        let err = |seeds: Vec<u64>, frames: usize, psi: f32| {
            Walk::new(seeds, frames, Space::W, psi)
                .unwrap_err()
                .to_string()
        };
        let e = err(vec![7], 10, 1.0);
        assert!(
            e.contains("one seed (7)") && e.contains("two or more"),
            "{e}"
        );
        let e = err(vec![0, 1], 0, 1.0);
        assert!(e.contains("--frames must be at least 1"), "{e}");
        let e = err(vec![0, 1], 1001, 1.0);
        assert!(e.contains("limit of 1000"), "{e}");
        let e = err((0..20).collect(), 501, 1.0);
        assert!(
            e.contains("10020 frames") && e.contains("limit of 10000"),
            "{e}"
        );
        let e = err(vec![0, 1], 10, f32::NAN);
        assert!(e.contains("--truncation"), "{e}");
        Walk::new((0..10).collect(), 1000, Space::W, 1.0).unwrap();
    }
}
