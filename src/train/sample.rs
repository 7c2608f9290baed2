//! Images from a generator: the program behind training samples, `vkgan generate`, `mix` and
//! `interpolate`. Every image is a function of its seed alone: its latent
//! and its noise are drawn on the host from the counter-based generator keyed by that seed (the
//! same bits the device would draw), so seed 7 gives the same image in any batch, on any run
//! and device. A sampler can also take explicit latents (z, or w with [`Input::W`]) with the
//! noise of one seed, for walks between seeds.

use crate::autograd::{Program, Tape, Var};
use crate::nn::{self, ModelConfig, Net, ParamStore};
use crate::ops;
use crate::tensor::Tensor;
use crate::vk::{Context, VkError};

/// Streams of the per-seed draws.
const Z_STREAM: u32 = 7_000_001;
const NOISE_STREAM: u32 = 7_000_100;

/// The latent of a seed, [d].
pub fn latent(seed: u64, d: usize) -> Vec<f32> {
    ops::random_fill_cpu(d, true, crate::train::programs::seed_key(seed), Z_STREAM, 0)
}

/// The noise of a seed for block `i` and input `j` (0 or 1), [r*r].
pub fn noise(seed: u64, i: usize, j: usize, r: usize) -> Vec<f32> {
    let stream = NOISE_STREAM + 2 * i as u32 + j as u32;
    ops::random_fill_cpu(
        r * r,
        true,
        crate::train::programs::seed_key(seed),
        stream,
        0,
    )
}

/// What a [`Sampler`] takes per image: a latent z (mapped on the device), or a mapping output
/// w (see [`map_latents`]) given directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Z,
    W,
}

/// The mapping network's output w [k, d] for the latents `z` [k, d], as a [`Sampler`] with
/// [`Input::Z`] computes it (before truncation).
pub fn map_latents(
    ctx: &Context,
    store: &ParamStore,
    cfg: &ModelConfig,
    z: &[f32],
) -> Result<Vec<f32>, VkError> {
    let d = cfg.d_latent;
    assert!(
        !z.is_empty() && z.len() % d == 0,
        "latents of {d} values each"
    );
    let mut t = Tape::new();
    let bound = store.bind(&mut t, &[Net::Mapping], false);
    let zv = t.leaf(&[z.len() / d, d], false);
    let w = nn::mapping(&mut t, &bound, cfg, zv);
    let zt = Tensor::from_f32(ctx, &[z.len() / d, d], z)?;
    let mut leaves = store.bindings(&bound);
    leaves.push((zv, &zt));
    Ok(t.eval(ctx, &[w], &leaves)?.remove(0))
}

/// The mean of w over 4096 latents of a fixed seed: the truncation centre of a checkpoint
/// that carries no running mean (a PyTorch reference state dict).
pub fn estimate_w_avg(
    ctx: &Context,
    store: &ParamStore,
    cfg: &ModelConfig,
) -> Result<Tensor, VkError> {
    let n = 4096;
    let mut t = Tape::new();
    let bound = store.bind(&mut t, &[Net::Mapping], false);
    let z = ops::random_normal(&mut t, &[n, cfg.d_latent], 0x5EED, 1, 0);
    let w = nn::mapping(&mut t, &bound, cfg, z);
    let mean = ops::mean(&mut t, w, &[0], false);
    let leaves: Vec<_> = store.bindings(&bound);
    let values = t.eval(ctx, &[mean], &leaves)?.remove(0);
    Tensor::from_f32(ctx, &[cfg.d_latent], &values)
}

/// A compiled generator for batches of `n` images with styles per block from two latents.
pub struct Sampler {
    program: Program,
    images: Var,
    n: usize,
    cfg: ModelConfig,
    input: Input,
    /// The two latents of every image ([n, d] each): z, or w with [`Input::W`].
    in1: Tensor,
    in2: Tensor,
    crossover: Tensor,
    psi: Tensor,
    noise: Vec<(Option<Tensor>, Tensor)>,
}

impl Sampler {
    /// `store`'s mapping network and generator (the EMA copy, usually); `w_avg` [d] is the
    /// truncation centre. Takes latents z.
    pub fn new(
        ctx: &Context,
        store: &ParamStore,
        cfg: &ModelConfig,
        w_avg: &Tensor,
        n: usize,
    ) -> Result<Self, VkError> {
        Self::with_input(ctx, store, cfg, w_avg, n, Input::Z)
    }

    /// As [`Sampler::new`], taking `input` per image. With [`Input::W`] the program is the
    /// same but for the mapping network, so a w from [`map_latents`] gives the image its z
    /// gives.
    pub fn with_input(
        ctx: &Context,
        store: &ParamStore,
        cfg: &ModelConfig,
        w_avg: &Tensor,
        n: usize,
        input: Input,
    ) -> Result<Self, VkError> {
        let d = cfg.d_latent;
        let nb = cfg.generator_blocks();
        let mut t = Tape::new();
        let bound = store.bind(&mut t, &[Net::Mapping, Net::Generator], false);
        let mut leaves: Vec<(Var, Tensor)> = store
            .bindings(&bound)
            .into_iter()
            .map(|(v, t)| (v, t.clone()))
            .collect();
        let mut leaf = |t: &mut Tape, tensor: Tensor| {
            let v = t.leaf(tensor.shape(), false);
            leaves.push((v, tensor.clone()));
            (v, tensor)
        };
        let (in1v, in1) = leaf(&mut t, Tensor::zeros(ctx, &[n, d])?);
        let (in2v, in2) = leaf(&mut t, Tensor::zeros(ctx, &[n, d])?);
        let (cv, crossover) = leaf(&mut t, Tensor::from_f32(ctx, &[1], &[nb as f32])?);
        let (psiv, psi) = leaf(&mut t, Tensor::from_f32(ctx, &[1], &[1.0])?);
        let (avgv, _) = leaf(&mut t, w_avg.clone());
        let mut noise = Vec::new();
        let mut noise_vars = Vec::new();
        for i in 0..nb {
            let r = 4 << i;
            let n1 = if i > 0 {
                Some(leaf(&mut t, Tensor::zeros(ctx, &[n, 1, r, r])?))
            } else {
                None
            };
            let n2 = leaf(&mut t, Tensor::zeros(ctx, &[n, 1, r, r])?);
            noise_vars.push((n1.as_ref().map(|x| x.0), n2.0));
            noise.push((n1.map(|x| x.1), n2.1));
        }
        let (w1, w2) = match input {
            Input::Z => (
                nn::mapping(&mut t, &bound, cfg, in1v),
                nn::mapping(&mut t, &bound, cfg, in2v),
            ),
            Input::W => (in1v, in2v),
        };
        let w = ops::select_blocks(&mut t, w1, w2, cv, nb);
        // Truncation: w_avg + psi (w - w_avg).
        let centred = ops::sub(&mut t, w, avgv);
        let scaled = ops::mul(&mut t, centred, psiv);
        let w = ops::add(&mut t, scaled, avgv);
        let images = nn::generator(&mut t, &bound, cfg, w, &noise_vars);
        let refs: Vec<(Var, &Tensor)> = leaves.iter().map(|(v, t)| (*v, t)).collect();
        Ok(Sampler {
            program: t.compile(ctx, &[images], &refs)?,
            images,
            n,
            cfg: cfg.clone(),
            input,
            in1,
            in2,
            crossover,
            psi,
            noise,
        })
    }

    pub fn batch_size(&self) -> usize {
        self.n
    }

    /// Images for any number of `seeds`, generated a batch at a time (no style mixing).
    pub fn generate_all(&mut self, seeds: &[u64], truncation: f32) -> Result<Vec<f32>, VkError> {
        let mut out = Vec::with_capacity(seeds.len() * 3 * self.cfg.image_size.pow(2));
        for chunk in seeds.chunks(self.n) {
            out.extend(self.generate(chunk, None, 0, truncation)?);
        }
        Ok(out)
    }

    /// Images [k,3,R,R] for `seeds` (k of them, at most n; the rest of the batch repeats the
    /// last seed). With `fine_seeds`, block styles from `crossover` on come from those seeds
    /// instead (style mixing: coarse from `seeds`, fine from `fine_seeds`). Needs
    /// [`Input::Z`].
    pub fn generate(
        &mut self,
        seeds: &[u64],
        fine_seeds: Option<&[u64]>,
        crossover: usize,
        truncation: f32,
    ) -> Result<Vec<f32>, VkError> {
        assert_eq!(self.input, Input::Z, "images by seed take latents z");
        assert!(
            !seeds.is_empty() && seeds.len() <= self.n,
            "1..={} seeds per batch",
            self.n
        );
        let d = self.cfg.d_latent;
        let pick = |k: usize, list: &[u64]| list[k.min(list.len() - 1)];
        let fine = fine_seeds.unwrap_or(seeds);
        let mut z1 = Vec::with_capacity(self.n * d);
        let mut z2 = Vec::with_capacity(self.n * d);
        for k in 0..self.n {
            z1.extend(latent(pick(k, seeds), d));
            z2.extend(latent(pick(k, fine), d));
        }
        let nb = self.cfg.generator_blocks();
        let c = if fine_seeds.is_some() {
            crossover.min(nb)
        } else {
            nb
        };
        self.run(
            &z1,
            &z2,
            c,
            truncation,
            |k, i, j, r| noise(pick(k, seeds), i, j, r),
            seeds.len(),
        )
    }

    /// Images [k,3,R,R] for the k latents `latents` ([k, d]: z or w as the sampler was built,
    /// k at most n), every one with the noise of `noise_seed` and no style mixing.
    pub fn generate_latents(
        &mut self,
        latents: &[f32],
        noise_seed: u64,
        truncation: f32,
    ) -> Result<Vec<f32>, VkError> {
        let same = |_, i, j, r| noise(noise_seed, i, j, r);
        self.generate_latents_with_noise(latents, same, truncation)
    }

    /// As [`Sampler::generate_latents`], image k's noise for block i, input j (side r) given
    /// by `noise_of(k, i, j, r)` ([r*r]) instead of one seed's.
    pub fn generate_latents_with_noise(
        &mut self,
        latents: &[f32],
        noise_of: impl Fn(usize, usize, usize, usize) -> Vec<f32>,
        truncation: f32,
    ) -> Result<Vec<f32>, VkError> {
        let d = self.cfg.d_latent;
        let k = latents.len() / d;
        assert!(
            latents.len() % d == 0 && (1..=self.n).contains(&k),
            "1..={} latents of {d} values per batch",
            self.n
        );
        // The rest of the batch repeats the last latent, as `generate` repeats the last seed.
        let mut all = Vec::with_capacity(self.n * d);
        all.extend_from_slice(latents);
        for _ in k..self.n {
            all.extend_from_slice(&latents[(k - 1) * d..]);
        }
        let nb = self.cfg.generator_blocks();
        let last = k - 1;
        self.run(
            &all,
            &all,
            nb,
            truncation,
            |m, i, j, r| noise_of(m.min(last), i, j, r),
            k,
        )
    }

    /// Runs the program on latents `in1`, `in2` ([n, d] each), blocks below `crossover` styled
    /// by `in1`, image k's noise for block i, input j being `noise_of(k, i, j, r)`; returns
    /// the first `keep` images.
    fn run(
        &mut self,
        in1: &[f32],
        in2: &[f32],
        crossover: usize,
        truncation: f32,
        noise_of: impl Fn(usize, usize, usize, usize) -> Vec<f32>,
        keep: usize,
    ) -> Result<Vec<f32>, VkError> {
        self.in1.write(in1)?;
        self.in2.write(in2)?;
        self.crossover.write(&[crossover as f32])?;
        self.psi.write(&[truncation])?;
        for (i, (n1, n2)) in self.noise.iter().enumerate() {
            let r = 4 << i;
            for (j, tensor) in [(0, n1.as_ref()), (1, Some(n2))] {
                if let Some(tensor) = tensor {
                    let mut data = Vec::with_capacity(self.n * r * r);
                    for k in 0..self.n {
                        data.extend(noise_of(k, i, j, r));
                    }
                    tensor.write(&data)?;
                }
            }
        }
        self.program.run()?;
        let all = self.program.read(self.images)?;
        let per = 3 * self.cfg.image_size * self.cfg.image_size;
        Ok(all[..keep * per].to_vec())
    }
}
