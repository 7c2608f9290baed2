//! `vkgan project`: the latent w (and the noise maps) that make a generator draw a given image,
//! found by gradient descent through the tape, in the manner of NVlabs' `projector.py`.
//!
//! The generator takes one w for every block (the space `generate` samples in), and the loss
//! of an image x = G(w, n) against the target y is
//!
//! - L = mean((x - y)^2) + λ_f Σ_l mean((φ_l(x) - φ_l(y))^2) / mean(φ_l(y)^2) + λ_n Σ_maps R(n)
//!
//! where φ_l are the discriminator's activations at each resolution (its from_rgb output and
//! every residual block's), each term normalised by the target's own energy so that every
//! resolution counts alike, and R is NVlabs' noise regulariser: over a pyramid of the map
//! (halved by the blur-downsample while at least 8 pixels a side), the squared mean product
//! of neighbours one pixel apart, across and down (neighbours within the map; NVlabs' roll
//! wraps around). R keeps the optimised noise white, so it cannot smuggle the image in.
//!
//! The schedule is the projector's: Adam (0.9, 0.999) on w and the noise, starting from the
//! generator's mean w and unit Gaussian noise; the learning rate ramps up over the first 5%
//! of the steps and down by a half cosine over the last 25%; w is perturbed by Gaussian noise
//! of standard deviation 0.05 σ_w max(0, 1 - t/0.75)^2 (σ_w: the spread of w over many
//! latents, t: the fraction of steps done) so that the early steps explore; after every step
//! each noise map is renormalised to zero mean and unit variance. The gradient comes from the
//! device program; the update of these few thousand numbers runs on the host, with the same
//! Adam reference the training optimizer is tested against.

use super::load::LoadedGenerator;
use crate::autograd::{Program, Tape, Var};
use crate::nn::{self, Bound, ModelConfig, Net};
use crate::ops::{self, Adam};
use crate::outputs::images::{self, Batch, GridOptions};
use crate::persist::checkpoint::{self, Checkpoint, TensorData};
use crate::tensor::Tensor;
use crate::train::sample;
use crate::vk::{Context, VkError};
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// Most optimisation steps one projection takes.
pub const MAX_PROJECT_STEPS: usize = 100_000;

/// Latents drawn to measure the spread σ_w of w.
const W_STD_SAMPLES: usize = 2048;
/// Streams of the projector's draws (keyed by `ProjectOptions::seed`).
const INIT_NOISE_STREAM: u32 = 8_000_001;
const W_NOISE_STREAM: u32 = 8_000_100;
const W_STD_STREAM: u32 = 8_000_200;

/// How a projection runs.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectOptions {
    pub steps: usize,
    /// Peak learning rate of Adam.
    pub lr: f32,
    /// λ_f: weight of the discriminator-feature distance (0: pixels alone).
    pub feature_weight: f32,
    /// λ_n: weight of the noise regulariser.
    pub noise_weight: f32,
    /// Optimise the noise maps as well as w (else they stay at their initial draw).
    pub optimize_noise: bool,
    /// Seed of the initial noise and of the perturbations of w.
    pub seed: u64,
}

impl Default for ProjectOptions {
    /// NVlabs' projector's settings, and a feature weight that balances the pixel term on the
    /// models tried.
    fn default() -> Self {
        ProjectOptions {
            steps: 1000,
            lr: 0.1,
            feature_weight: 0.1,
            noise_weight: 1e5,
            optimize_noise: true,
            seed: 0,
        }
    }
}

impl ProjectOptions {
    /// A one-line error naming the first setting out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0 || self.steps > MAX_PROJECT_STEPS {
            return Err(format!(
                "--steps {} must be between 1 and {MAX_PROJECT_STEPS}",
                self.steps
            ));
        }
        for (flag, v) in [
            ("--lr", self.lr),
            ("--feature-weight", self.feature_weight),
            ("--noise-weight", self.noise_weight),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("{flag} {v} must be a finite number, 0 or more"));
            }
        }
        if self.lr == 0.0 {
            return Err("--lr 0 would never move w".into());
        }
        Ok(())
    }

    /// The learning rate at step `i` of `steps` (ramp up, hold, cosine ramp down).
    pub fn lr_at(&self, i: usize) -> f32 {
        let t = i as f64 / self.steps as f64;
        let down = ((1.0 - t) / 0.25).min(1.0);
        let down = 0.5 - 0.5 * (down * std::f64::consts::PI).cos();
        let up = (t / 0.05).min(1.0);
        (self.lr as f64 * down * up) as f32
    }

    /// The standard deviation of the perturbation of w at step `i`, as a fraction of σ_w.
    pub fn w_noise_at(&self, i: usize) -> f32 {
        let t = i as f32 / self.steps as f32;
        0.05 * (1.0 - t / 0.75).max(0.0).powi(2)
    }
}

/// The loss terms of one step, before weighting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    pub step: usize,
    /// mean((x - y)^2), x and y in [0, 1].
    pub pixel: f32,
    /// Σ_l of the normalised feature distances.
    pub feature: f32,
    /// Σ_maps R(n).
    pub noise: f32,
}

/// What a projection found.
pub struct Projection {
    /// w [d], the same for every block.
    pub w: Vec<f32>,
    /// Noise maps per block: (n1, n2) as the generator takes them, each [r*r].
    pub noise: Vec<(Option<Vec<f32>>, Vec<f32>)>,
    /// G(w, noise), [3, R, R] in [0, 1] before clamping.
    pub image: Vec<f32>,
    /// One entry per step.
    pub losses: Vec<StepLoss>,
    /// (step, image) at evenly spaced steps, the last one the final image.
    pub snapshots: Vec<(usize, Vec<f32>)>,
}

/// The device program of one step: leaves written by the host, the outputs read back.
struct StepProgram {
    program: Program,
    w: Tensor,
    noise: Vec<Tensor>,
    image: Var,
    terms: [Var; 3],
    w_grad: Var,
    noise_grads: Vec<Var>,
}

/// Finds w (and the noise) such that `gen` draws `target`, [3, R, R] in [0, 1]. `on_step` is
/// called after every step (for progress); `snapshots` images are kept along the way.
pub fn project(
    ctx: &Context,
    gen: &LoadedGenerator,
    target: &[f32],
    options: &ProjectOptions,
    snapshots: usize,
    mut on_step: impl FnMut(&StepLoss),
) -> anyhow::Result<Projection> {
    options.validate().map_err(anyhow::Error::msg)?;
    let cfg = &gen.cfg;
    let r = cfg.image_size;
    anyhow::ensure!(
        target.len() == 3 * r * r,
        "the target has {} values; a {r}x{r} RGB image has {}",
        target.len(),
        3 * r * r
    );
    let d = cfg.d_latent;
    let w_avg = gen.w_avg.to_vec()?;
    let w_std = w_spread(ctx, gen, &w_avg)?;
    let target_features = features_of(ctx, gen, target)?;
    let mut step = StepProgram::new(ctx, gen, target, &target_features, options)?;

    let mut w = w_avg.clone();
    let (mut w_m, mut w_v) = (vec![0.0f64; d], vec![0.0f64; d]);
    let key = crate::train::programs::seed_key(options.seed);
    let mut noise: Vec<Vec<f32>> = noise_sizes(cfg)
        .iter()
        .enumerate()
        .map(|(k, &side)| {
            ops::random_fill_cpu(side * side, true, key, INIT_NOISE_STREAM + k as u32, 0)
        })
        .collect();
    let mut noise_m: Vec<Vec<f64>> = noise.iter().map(|n| vec![0.0; n.len()]).collect();
    let mut noise_v = noise_m.clone();
    let snapshot_at = snapshot_steps(options.steps, snapshots);
    let mut losses = Vec::with_capacity(options.steps);
    let mut kept = Vec::new();
    for i in 0..options.steps {
        let jitter = ops::random_fill_cpu(d, true, key, W_NOISE_STREAM, i as u32);
        let sigma = w_std * options.w_noise_at(i);
        let perturbed: Vec<f32> = w.iter().zip(&jitter).map(|(a, b)| a + sigma * b).collect();
        step.w.write(&perturbed)?;
        for (tensor, values) in step.noise.iter().zip(&noise) {
            tensor.write(values)?;
        }
        step.program.run()?;
        let [pixel, feature, noise_reg] = step.terms.map(|v| step.program.read(v));
        let loss = StepLoss {
            step: i,
            pixel: pixel?[0],
            feature: feature?[0],
            noise: noise_reg?[0],
        };
        if snapshot_at.contains(&i) {
            kept.push((i, step.program.read(step.image)?));
        }
        let adam = Adam {
            lr: options.lr_at(i),
            ..Adam::default()
        };
        adam_update(
            adam,
            i,
            &mut w,
            &mut w_m,
            &mut w_v,
            &step.program.read(step.w_grad)?,
        );
        if options.optimize_noise {
            for (k, grad) in step.noise_grads.iter().enumerate() {
                let g = step.program.read(*grad)?;
                adam_update(adam, i, &mut noise[k], &mut noise_m[k], &mut noise_v[k], &g);
                renormalize(&mut noise[k]);
            }
        }
        losses.push(loss);
        on_step(&loss);
    }
    // The final image is drawn from the final w, without the perturbation.
    step.w.write(&w)?;
    for (tensor, values) in step.noise.iter().zip(&noise) {
        tensor.write(values)?;
    }
    step.program.run()?;
    let final_image = step.program.read(step.image)?;
    kept.push((options.steps, final_image.clone()));
    Ok(Projection {
        w,
        noise: pair_noise(cfg, noise),
        image: final_image,
        losses,
        snapshots: kept,
    })
}

/// `count` steps spread over `0..steps`, the first always among them.
fn snapshot_steps(steps: usize, count: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let mut at: Vec<usize> = (0..count).map(|k| k * steps / count).collect();
    at.dedup();
    at
}

/// One Adam step on host values (the device optimizer's reference, in f64).
fn adam_update(adam: Adam, i: usize, p: &mut [f32], m: &mut [f64], v: &mut [f64], g: &[f32]) {
    let mut p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
    let g64: Vec<f64> = g.iter().map(|&x| x as f64).collect();
    ops::adam_cpu(adam, i as u32 + 1, &mut p64, m, v, &g64);
    for (a, b) in p.iter_mut().zip(p64) {
        *a = b as f32;
    }
}

/// Zero mean, unit variance (a constant map stays at zero).
fn renormalize(n: &mut [f32]) {
    let len = n.len() as f64;
    let mean = n.iter().map(|&x| x as f64).sum::<f64>() / len;
    let var = n.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / len;
    let inv = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    for x in n {
        *x = ((*x as f64 - mean) * inv) as f32;
    }
}

/// The side of every noise map, in the generator's order: block 0's n2, then n1 and n2 of
/// every later block.
fn noise_sizes(cfg: &ModelConfig) -> Vec<usize> {
    let mut sides = vec![4];
    for i in 1..cfg.generator_blocks() {
        sides.extend([4 << i, 4 << i]);
    }
    sides
}

/// The flat list of [`noise_sizes`] back into the generator's pairs (n1, n2) per block.
fn pair_noise<T>(cfg: &ModelConfig, flat: impl IntoIterator<Item = T>) -> Vec<(Option<T>, T)> {
    let mut it = flat.into_iter();
    let mut pairs = vec![(None, it.next().expect("block 0's noise"))];
    for _ in 1..cfg.generator_blocks() {
        let n1 = it.next().expect("n1");
        let n2 = it.next().expect("n2");
        pairs.push((Some(n1), n2));
    }
    pairs
}

/// σ_w: the root mean squared distance of w from `w_avg` over many latents, summed over the
/// dimensions as NVlabs measures it.
fn w_spread(ctx: &Context, gen: &LoadedGenerator, w_avg: &[f32]) -> Result<f32, VkError> {
    let d = gen.cfg.d_latent;
    // The host's twin of the device's normal draws (the same bits, up to an ulp of sqrt).
    let z = ops::random_fill_cpu(W_STD_SAMPLES * d, true, 0x5EED, W_STD_STREAM, 0);
    let values = sample::map_latents(ctx, &gen.store, &gen.cfg, &z)?;
    let total: f64 = values
        .chunks(d)
        .map(|row| {
            row.iter()
                .zip(w_avg)
                .map(|(a, b)| (*a as f64 - *b as f64).powi(2))
                .sum::<f64>()
        })
        .sum();
    Ok((total / W_STD_SAMPLES as f64).sqrt() as f32)
}

/// φ_l(target) for every l, each [1, C, r, r] flattened.
fn features_of(
    ctx: &Context,
    gen: &LoadedGenerator,
    target: &[f32],
) -> Result<Vec<Vec<f32>>, VkError> {
    let r = gen.cfg.image_size;
    let mut t = Tape::new();
    let bound = gen.store.bind(&mut t, &[Net::Discriminator], false);
    let y = t.leaf(&[1, 3, r, r], false);
    let feats = nn::discriminator_features(&mut t, &bound, &gen.cfg, y);
    let target = Tensor::from_f32(ctx, &[1, 3, r, r], target)?;
    let mut leaves = gen.store.bindings(&bound);
    leaves.push((y, &target));
    t.eval(ctx, &feats, &leaves)
}

impl StepProgram {
    fn new(
        ctx: &Context,
        gen: &LoadedGenerator,
        target: &[f32],
        target_features: &[Vec<f32>],
        options: &ProjectOptions,
    ) -> Result<Self, VkError> {
        let cfg = &gen.cfg;
        let (r, d, nb) = (cfg.image_size, cfg.d_latent, cfg.generator_blocks());
        let mut t = Tape::new();
        let bound = gen
            .store
            .bind(&mut t, &[Net::Generator, Net::Discriminator], false);
        let mut data: Vec<(Var, Tensor)> = Vec::new();
        let mut leaf = |t: &mut Tape, tensor: Tensor, grad: bool| {
            let v = t.leaf(tensor.shape(), grad);
            data.push((v, tensor.clone()));
            (v, tensor)
        };
        let (w_var, w) = leaf(&mut t, Tensor::zeros(ctx, &[1, 1, d])?, true);
        let mut noise_vars = Vec::new();
        let mut noise = Vec::new();
        for side in noise_sizes(cfg) {
            let (v, tensor) = leaf(
                &mut t,
                Tensor::zeros(ctx, &[1, 1, side, side])?,
                options.optimize_noise,
            );
            noise_vars.push(v);
            noise.push(tensor);
        }
        let (y, _) = leaf(&mut t, Tensor::from_f32(ctx, &[1, 3, r, r], target)?, false);
        let mut target_vars = Vec::new();
        for (values, shape) in target_features.iter().zip(feature_shapes(cfg)) {
            target_vars.push(leaf(&mut t, Tensor::from_f32(ctx, &shape, values)?, false).0);
        }

        let ws = ops::expand(&mut t, w_var, &[nb, 1, d]);
        let block_noise: Vec<nn::BlockNoise> = pair_noise(cfg, noise_vars.iter().copied());
        let x = nn::generator(&mut t, &bound, cfg, ws, &block_noise);
        let pixel = squared_distance(&mut t, x, y);
        let feature = feature_distance(&mut t, &bound, cfg, x, &target_vars, target_features);
        let noise_reg = noise_regularizer(&mut t, &noise_vars);
        let weighted_f = ops::scale(&mut t, feature, options.feature_weight);
        let weighted_n = ops::scale(&mut t, noise_reg, options.noise_weight);
        let loss = ops::add(&mut t, pixel, weighted_f);
        let loss = ops::add(&mut t, loss, weighted_n);
        let mut wrt = vec![w_var];
        if options.optimize_noise {
            wrt.extend(&noise_vars);
        }
        let grads = t.grad(&[loss], &wrt, None, false);
        // An input the loss does not reach (a zero feature weight still reaches w through
        // the pixels) would have no gradient; every one here does.
        let grads: Vec<Var> = grads
            .into_iter()
            .map(|g| g.expect("the loss depends on w and on every noise map"))
            .collect();
        let mut outputs = vec![x, pixel, feature, noise_reg];
        outputs.extend(&grads);
        let mut leaves = gen.store.bindings(&bound);
        leaves.extend(data.iter().map(|(v, t)| (*v, t)));
        let program = t.compile(ctx, &outputs, &leaves)?;
        Ok(StepProgram {
            program,
            w,
            noise,
            image: x,
            terms: [pixel, feature, noise_reg],
            w_grad: grads[0],
            noise_grads: grads[1..].to_vec(),
        })
    }
}

/// The shapes of the discriminator's feature maps for one image, as
/// [`nn::discriminator_features`] returns them.
fn feature_shapes(cfg: &ModelConfig) -> Vec<Vec<usize>> {
    cfg.discriminator_features()
        .iter()
        .enumerate()
        .map(|(i, &c)| vec![1, c, cfg.image_size >> i, cfg.image_size >> i])
        .collect()
}

/// mean((a - b)^2) as a [1] value.
fn squared_distance(t: &mut Tape, a: Var, b: Var) -> Var {
    let diff = ops::sub(t, a, b);
    let sq = ops::square(t, diff);
    let m = ops::mean_all(t, sq);
    ops::reshape(t, m, &[1])
}

/// Σ_l mean((φ_l(x) - φ_l(y))^2) / mean(φ_l(y)^2), the target's energies known on the host.
fn feature_distance(
    t: &mut Tape,
    bound: &Bound,
    cfg: &ModelConfig,
    x: Var,
    target_vars: &[Var],
    target_features: &[Vec<f32>],
) -> Var {
    let feats = nn::discriminator_features(t, bound, cfg, x);
    let mut total = None;
    for ((&f, &y), values) in feats.iter().zip(target_vars).zip(target_features) {
        let energy = values.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / values.len() as f64;
        // A layer the target leaves dark (all zero after the leaky relu: rare) is compared
        // unnormalised rather than divided by zero.
        let inv = if energy > 1e-12 { 1.0 / energy } else { 1.0 };
        let dist = squared_distance(t, f, y);
        let term = ops::scale(t, dist, inv as f32);
        total = Some(match total {
            Some(acc) => ops::add(t, acc, term),
            None => term,
        });
    }
    total.expect("the discriminator has at least one feature map")
}

/// Σ_maps Σ_levels (mean(n_{y,x} n_{y,x+1}))^2 + (mean(n_{y,x} n_{y+1,x}))^2, the pyramid
/// halving each map while its side is at least 8.
fn noise_regularizer(t: &mut Tape, maps: &[Var]) -> Var {
    let mut total = None;
    let mut add = |t: &mut Tape, term: Var| {
        total = Some(match total {
            Some(acc) => ops::add(t, acc, term),
            None => term,
        });
    };
    for &map in maps {
        let mut n = map;
        loop {
            let side = t.shape(n)[3];
            for axis in [2, 3] {
                let a = ops::slice(t, n, axis, 0, side - 1);
                let b = ops::slice(t, n, axis, 1, side - 1);
                let prod = ops::mul(t, a, b);
                let m = ops::mean_all(t, prod);
                let m = ops::reshape(t, m, &[1]);
                let sq = ops::square(t, m);
                add(t, sq);
            }
            if side < 16 {
                break;
            }
            n = ops::downsample(t, n);
        }
    }
    total.expect("every generator has noise maps")
}

/// The target of a projection: the image file at `path` as the training data would hold it
/// (on white, shorter side resized to `size`, centre-cropped), [3, size, size] in [0, 1].
pub fn load_target(path: &Path, size: usize) -> anyhow::Result<Vec<f32>> {
    let mut bytes = vec![0u8; 3 * size * size];
    crate::data::load_into(path, size as u32, &mut bytes)
        .map_err(|why| anyhow::anyhow!("cannot read target image {}: {why}", path.display()))?;
    Ok(bytes.iter().map(|&b| b as f32 / 255.0).collect())
}

/// Writes a projection into `dir`: `target.png` and `projected.png` at the model's resolution
/// times `scale`, `progress.png` (the target, then the snapshots left to right, enlarged by
/// `strip_scale`), and `w.safetensors` (w as [1, d] under `w`, the same w repeated for every
/// block as [n_blocks, d] under `ws`, and the noise maps under `noise.<block>.<1|2>`, each
/// [r, r]). Returns the paths written.
pub fn save(
    dir: &Path,
    cfg: &ModelConfig,
    target: &[f32],
    projection: &Projection,
    scale: u32,
    strip_scale: u32,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create output directory {}", dir.display()))?;
    let r = cfg.image_size;
    let mut written = Vec::new();
    for (name, values) in [
        ("target.png", target),
        ("projected.png", &projection.image[..]),
    ] {
        let batch = Batch::new(values, [1, 3, r, r])?;
        let path = dir.join(name);
        images::save_png(&path, &images::image(&batch, 0, scale)?)?;
        written.push(path);
    }
    let mut strip = target.to_vec();
    for (_, image) in &projection.snapshots {
        strip.extend(image);
    }
    let cells = 1 + projection.snapshots.len();
    let batch = Batch::new(&strip, [cells, 3, r, r])?;
    let opts = GridOptions {
        cols: Some(cells),
        scale: strip_scale,
        ..GridOptions::default()
    };
    let path = dir.join("progress.png");
    images::save_png(&path, &images::grid(&batch, &opts)?)?;
    written.push(path);

    let d = cfg.d_latent;
    let nb = cfg.generator_blocks();
    let mut ck = Checkpoint::new();
    ck.insert("w", &[1, d], TensorData::F32(projection.w.clone()))?;
    let ws = projection.w.repeat(nb);
    ck.insert("ws", &[nb, d], TensorData::F32(ws))?;
    for (i, (n1, n2)) in projection.noise.iter().enumerate() {
        let side = 4 << i;
        if let Some(n1) = n1 {
            ck.insert(
                format!("noise.{i}.1"),
                &[side, side],
                TensorData::F32(n1.clone()),
            )?;
        }
        ck.insert(
            format!("noise.{i}.2"),
            &[side, side],
            TensorData::F32(n2.clone()),
        )?;
    }
    if let Some(last) = projection.losses.last() {
        ck.metadata
            .insert("steps".into(), projection.losses.len().to_string());
        ck.metadata
            .insert("final_pixel_mse".into(), last.pixel.to_string());
        ck.metadata
            .insert("final_feature_distance".into(), last.feature.to_string());
    }
    let path = dir.join("w.safetensors");
    checkpoint::write(&path, &ck)?;
    written.push(path);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_ramps_up_holds_and_ramps_down() {
        let o = ProjectOptions {
            steps: 1000,
            ..ProjectOptions::default()
        };
        assert_eq!(o.lr_at(0), 0.0);
        assert!((o.lr_at(25) - 0.05).abs() < 1e-6, "{}", o.lr_at(25));
        assert!((o.lr_at(500) - 0.1).abs() < 1e-7);
        assert!((o.lr_at(875) - 0.05).abs() < 1e-6, "{}", o.lr_at(875));
        assert!(o.lr_at(999) < 1e-3);
        assert!((o.w_noise_at(0) - 0.05).abs() < 1e-7);
        assert_eq!(o.w_noise_at(750), 0.0);
        assert_eq!(o.w_noise_at(900), 0.0);
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = |o: ProjectOptions, needle: &str| {
            let e = o.validate().unwrap_err();
            assert!(e.contains(needle), "{e}");
        };
        let d = ProjectOptions::default;
        bad(ProjectOptions { steps: 0, ..d() }, "--steps 0");
        bad(
            ProjectOptions {
                lr: f32::NAN,
                ..d()
            },
            "--lr NaN",
        );
        bad(ProjectOptions { lr: 0.0, ..d() }, "--lr 0");
        bad(
            ProjectOptions {
                noise_weight: -1.0,
                ..d()
            },
            "--noise-weight -1",
        );
        d().validate().unwrap();
    }

    #[test]
    fn renormalized_maps_have_zero_mean_and_unit_variance() {
        let mut n: Vec<f32> = (0..64)
            .map(|i| (i as f32 * 0.37).sin() * 3.0 + 2.0)
            .collect();
        renormalize(&mut n);
        let mean = n.iter().sum::<f32>() / 64.0;
        let var = n.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 64.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
        let mut flat = vec![5.0f32; 16];
        renormalize(&mut flat);
        assert!(flat.iter().all(|&x| x == 0.0));
    }

    /// With the noise held at the draw that made the target, w alone brings the image back:
    /// the target here is itself G(w*, n) for a w* the projector never saw.
    #[test]
    fn an_image_the_generator_can_draw_is_recovered_from_w_alone() {
        let ctx = crate::testing::context();
        let cfg = ModelConfig {
            image_size: 8,
            d_latent: 16,
            mapping_layers: 2,
            g_features: 8,
            g_max_features: 16,
            d_features: 8,
            d_max_features: 16,
        };
        let gen = LoadedGenerator {
            store: crate::nn::ParamStore::init(&ctx, &cfg, 3).unwrap(),
            w_avg: Tensor::zeros(&ctx, &[cfg.d_latent]).unwrap(),
            cfg,
            used_ema: false,
            skipped: Vec::new(),
        };
        let fixed = ProjectOptions {
            optimize_noise: false,
            seed: 5,
            ..ProjectOptions::default()
        };
        // Any image gives a w* and its image; that image is the target.
        let grey = vec![0.5f32; 3 * 64];
        let made = project(
            &ctx,
            &gen,
            &grey,
            &ProjectOptions {
                steps: 30,
                ..fixed.clone()
            },
            0,
            |_| (),
        )
        .unwrap();
        let target = made.image;
        let found = project(
            &ctx,
            &gen,
            &target,
            &ProjectOptions {
                steps: 300,
                ..fixed
            },
            2,
            |_| (),
        )
        .unwrap();
        let start = found.losses[0].pixel;
        let end = squared(&found.image, &target);
        assert!(end < 1e-4 * start, "pixel mse {start} -> {end}");
        assert_eq!(found.noise, made.noise, "fixed noise is the seed's draw");
        assert_eq!(
            found.snapshots.iter().map(|s| s.0).collect::<Vec<_>>(),
            [0, 150, 300]
        );
    }

    fn squared(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>() / a.len() as f32
    }

    #[test]
    fn snapshots_are_evenly_spaced_from_the_first_step() {
        assert_eq!(snapshot_steps(100, 4), vec![0, 25, 50, 75]);
        assert_eq!(snapshot_steps(3, 8), vec![0, 1, 2]);
        assert!(snapshot_steps(10, 0).is_empty());
    }
}
