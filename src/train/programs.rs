//! The four recorded training-step programs (D, D+R1, G, G+path length). Each is built once
//! per run and replayed every step: latents, noise and the path-length projection are
//! drawn on the device from (seed, stream, step), the optimizers and the EMA update run inside
//! the program, and the host only sets the step scalars and writes the real batch, the
//! crossover and two path-length numbers.
//!
//! With several ranks ([`HostInputs::split`]) each program stops at its gradients: they, and
//! the step's values the ranks must agree on (the path-length running sum, the mean w), are
//! packed into one flat tensor ([`Exchange`]), the host all-reduces it, and a second program
//! unpacks the averages and runs the optimizers and moving averages. Every random draw is
//! made for the whole global batch and cut to the rank's share ([`crate::dist::Shard`]), so a
//! sample sees what it would in a single-process run.

use super::augment::{self, AugParams, Augment};
use super::config::TrainConfig;
use super::state::TrainState;
use crate::autograd::{Program, Scalar, Tape, Var};
use crate::dist::{Shard, MBSTD_GROUP};
use crate::nn::augment::Augmentation;
use crate::nn::step::{d_step, g_step, Nets, PathLengthState, StepHyper, StepInputs};
use crate::nn::{Bound, Net, ParamStore};
use crate::ops::{self, Padding, RandomArg};
use crate::tensor::{numel, Tensor};
use crate::vk::{Context, VkError};

/// Host-written inputs shared by the programs.
pub struct HostInputs {
    /// One real batch [B,3,R,R] per micro-batch.
    pub real: Vec<Tensor>,
    /// One crossover [1] per micro-batch, for the D step and for the G step.
    pub crossover_d: Vec<Tensor>,
    pub crossover_g: Vec<Tensor>,
    /// [1] `1/(1 - beta^steps)` (0 before the first path-length step).
    pub plp_debias: Tensor,
    /// [1] 1 once the path-length mean exists, else 0.
    pub plp_enabled: Tensor,
    /// [1] the EMA decay of this step, and [1] one minus it (see `TrainConfig::ema_beta`).
    pub ema_beta: Tensor,
    pub ema_fresh: Tensor,
    /// Augmentation parameters per micro-batch, of the D step's reals and fakes and of the G
    /// step's fakes (empty when the run does not augment).
    pub aug_d_real: Vec<AugTensors>,
    pub aug_d_fake: Vec<AugTensors>,
    pub aug_g_fake: Vec<AugTensors>,
    /// This rank's share of every batch.
    pub shard: Shard,
    /// Record every step as gradients, exchange and update ([`Exchange`]): always with several
    /// ranks; with one, it must change nothing (a test holds it to that, bit for bit).
    pub split: bool,
}

/// One batch's augmentation parameters on the device (see [`crate::nn::augment`]).
pub struct AugTensors {
    padding: Padding,
    /// [B,2,3]
    theta: Tensor,
    /// [B,3,4]
    color: Tensor,
    /// [B,1,1,1] and [B,1,R,R] (DiffAugment).
    contrast: Option<Tensor>,
    mask: Option<Tensor>,
}

impl AugTensors {
    fn new(ctx: &Context, mode: Augment, b: usize, r: usize) -> Result<Self, VkError> {
        let diffaug = mode == Augment::Diffaug;
        Ok(AugTensors {
            padding: if diffaug {
                Padding::Zeros
            } else {
                Padding::Reflect
            },
            theta: Tensor::zeros(ctx, &[b, 2, 3])?,
            color: Tensor::zeros(ctx, &[b, 3, 4])?,
            contrast: diffaug
                .then(|| Tensor::zeros(ctx, &[b, 1, 1, 1]))
                .transpose()?,
            mask: diffaug
                .then(|| Tensor::zeros(ctx, &[b, 1, r, r]))
                .transpose()?,
        })
    }

    /// Uploads one draw.
    pub fn write(&self, params: &AugParams) -> Result<(), VkError> {
        self.theta.write(&params.theta)?;
        self.color.write(&params.color)?;
        if let (Some(t), Some(v)) = (&self.contrast, &params.contrast) {
            t.write(v)?;
        }
        if let (Some(t), Some(v)) = (&self.mask, &params.mask) {
            t.write(v)?;
        }
        Ok(())
    }

    /// Data leaves on `t` for these tensors.
    fn bind(&self, t: &mut Tape, leaves: &mut Vec<(Var, Tensor)>) -> Augmentation {
        let mut leaf = |tensor: &Tensor| {
            let v = t.leaf(tensor.shape(), false);
            leaves.push((v, tensor.clone()));
            v
        };
        Augmentation {
            theta: leaf(&self.theta),
            color: leaf(&self.color),
            contrast: self.contrast.as_ref().map(&mut leaf),
            mask: self.mask.as_ref().map(&mut leaf),
            padding: self.padding,
        }
    }
}

/// Streams of the host's augmentation draws (two each: uniform and normal), clear of the
/// device's training streams and of the sampler's.
const AUG_STREAM: u32 = 9_000_000;

/// Which batch an augmentation draw is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AugSide {
    DReal,
    DFake,
    GFake,
}

/// The stream of one micro-batch's draws for `side`.
pub fn aug_stream(side: AugSide, micro: usize) -> u32 {
    let (kind, which) = match side {
        AugSide::DReal => (KIND_D, 0),
        AugSide::DFake => (KIND_D, 1),
        AugSide::GFake => (KIND_G, 0),
    };
    AUG_STREAM + kind * 100_000 + micro as u32 * 10 + which * 2
}

impl HostInputs {
    /// Writes the EMA decay of step `idx`.
    pub fn set_ema_beta(&self, cfg: &TrainConfig, idx: u64) -> Result<(), VkError> {
        let beta = cfg.ema_beta(idx);
        self.ema_beta.write(&[beta])?;
        self.ema_fresh.write(&[1.0 - beta])
    }

    /// The inputs of `shard`'s share of each batch; `split` as [`HostInputs::split`] (forced
    /// on with several ranks).
    pub fn new(
        ctx: &Context,
        cfg: &TrainConfig,
        shard: Shard,
        split: bool,
    ) -> Result<Self, VkError> {
        let r = cfg.model.image_size;
        let b = shard.local(cfg.batch);
        let augs = || -> Result<Vec<AugTensors>, VkError> {
            if cfg.augment == Augment::None {
                return Ok(Vec::new());
            }
            (0..cfg.accumulate)
                .map(|_| AugTensors::new(ctx, cfg.augment, b, r))
                .collect()
        };
        let many = |shape: &[usize]| -> Result<Vec<Tensor>, VkError> {
            (0..cfg.accumulate)
                .map(|_| Tensor::zeros(ctx, shape))
                .collect()
        };
        Ok(HostInputs {
            real: many(&[b, 3, r, r])?,
            crossover_d: many(&[1])?,
            crossover_g: many(&[1])?,
            plp_debias: Tensor::zeros(ctx, &[1])?,
            plp_enabled: Tensor::zeros(ctx, &[1])?,
            ema_beta: Tensor::zeros(ctx, &[1])?,
            ema_fresh: Tensor::zeros(ctx, &[1])?,
            aug_d_real: augs()?,
            aug_d_fake: augs()?,
            aug_g_fake: augs()?,
            shard,
            split: split || shard.ranks > 1,
        })
    }

    /// Draws and uploads every augmentation of step `idx` for one program (`d` true: the D
    /// step's reals and fakes; else the G step's fakes) at probability `p`.
    pub fn set_augmentation(
        &self,
        cfg: &TrainConfig,
        idx: u64,
        p: f32,
        d: bool,
    ) -> Result<(), VkError> {
        if cfg.augment == Augment::None {
            return Ok(());
        }
        let (b, r) = (cfg.batch, cfg.model.image_size);
        let key = seed_key(cfg.seed);
        let sides: &[(AugSide, &Vec<AugTensors>)] = if d {
            &[
                (AugSide::DReal, &self.aug_d_real),
                (AugSide::DFake, &self.aug_d_fake),
            ]
        } else {
            &[(AugSide::GFake, &self.aug_g_fake)]
        };
        for &(side, tensors) in sides {
            for (micro, tensors) in tensors.iter().enumerate() {
                let stream = aug_stream(side, micro);
                let drawn = augment::draw(cfg.augment, p, key, stream, idx as u32, b, r);
                tensors.write(&share_of(drawn, self.shard, b))?;
            }
        }
        Ok(())
    }
}

/// `shard`'s rows of augmentation parameters drawn for a whole batch of `batch`.
fn share_of(p: AugParams, shard: Shard, batch: usize) -> AugParams {
    if shard.ranks == 1 {
        return p;
    }
    let rows = |v: &[f32]| shard.rows(v, batch);
    AugParams {
        theta: rows(&p.theta),
        color: rows(&p.color),
        contrast: p.contrast.as_deref().map(rows),
        mask: p.mask.as_deref().map(rows),
    }
}

/// `shard`'s rows of `x` ([batch, ...], drawn for the whole global batch), in local order
/// (see [`crate::dist`]).
fn take_share(t: &mut Tape, x: Var, shard: Shard) -> Var {
    if shard.ranks == 1 {
        return x;
    }
    let shape = t.shape(x).to_vec();
    let (batch, row) = (shape[0], numel(&shape[1..]));
    let (groups, first, count) = shard.groups(batch);
    let grid = ops::reshape(t, x, &[MBSTD_GROUP, groups, row]);
    let mine = ops::slice(t, grid, 1, first, count);
    let mut local = shape;
    local[0] = batch / shard.ranks;
    ops::reshape(t, mine, &local)
}

/// Random streams: a program kind, a micro-batch and a component never share one.
fn stream(kind: u32, micro: usize, component: u32) -> RandomArg {
    RandomArg::Fixed(kind * 100_000 + micro as u32 * 1000 + component)
}

const KIND_D: u32 = 1;
const KIND_G: u32 = 2;
const Z1: u32 = 1;
const Z2: u32 = 2;
const PLP_Y: u32 = 3;
const NOISE: u32 = 100;
/// Decay of the running mean of w (the official StyleGAN2's).
const W_AVG_BETA: f32 = 0.995;

/// The seed as the generator's 32-bit key.
pub fn seed_key(seed: u64) -> u32 {
    (seed as u32) ^ ((seed >> 32) as u32)
}

/// Device-drawn inputs of one micro-batch.
#[allow(clippy::too_many_arguments)]
fn random_inputs(
    t: &mut Tape,
    cfg: &TrainConfig,
    shard: Shard,
    kind: u32,
    micro: usize,
    rng: Scalar,
    crossover: Var,
    real: Var,
) -> StepInputs {
    let (b, d, r) = (cfg.batch, cfg.model.d_latent, cfg.model.image_size);
    let seed = RandomArg::Fixed(seed_key(cfg.seed));
    let normal = |t: &mut Tape, shape: &[usize], component: u32| {
        let whole = ops::random_normal(t, shape, seed, stream(kind, micro, component), rng);
        take_share(t, whole, shard)
    };
    let z1 = normal(t, &[b, d], Z1);
    let z2 = normal(t, &[b, d], Z2);
    let noise = (0..cfg.model.generator_blocks())
        .map(|i| {
            let res = 4 << i;
            let n1 = (i > 0).then(|| normal(t, &[b, 1, res, res], NOISE + 2 * i as u32));
            (n1, normal(t, &[b, 1, res, res], NOISE + 2 * i as u32 + 1))
        })
        .collect();
    let plp_y = normal(t, &[b, 3, r, r], PLP_Y);
    StepInputs {
        z1,
        z2,
        noise,
        crossover,
        real,
        plp_y,
        augment_real: None,
        augment_fake: None,
    }
}

fn hyper(cfg: &TrainConfig) -> StepHyper {
    StepHyper {
        r1_gamma: cfg.r1_gamma,
        r1_interval: cfg.r1_interval as usize,
        plp_beta: cfg.plp_beta,
    }
}

/// Leaves for the parameters of all three nets, gradients on `trained` only.
fn bind_all(t: &mut Tape, store: &ParamStore, trained: &[Net]) -> Bound {
    let all = [Net::Mapping, Net::Generator, Net::Discriminator];
    let frozen: Vec<Net> = all.into_iter().filter(|n| !trained.contains(n)).collect();
    let a = store.bind(t, trained, true);
    let b = store.bind(t, &frozen, false);
    a.merged(b)
}

/// A step's tape: all three networks bound (gradients on `trained`) with their device
/// tensors among the leaves, and the step scalar the random draws are keyed by.
fn step_tape(state: &TrainState, trained: &[Net]) -> (Tape, Bound, Scalar, Vec<(Var, Tensor)>) {
    let mut t = Tape::new();
    let bound = bind_all(&mut t, &state.params, trained);
    let rng_step = t.scalar(0);
    let leaves = bound_leaves(state, &bound);
    (t, bound, rng_step, leaves)
}

/// Sums per-micro-batch gradients (accumulation adds, as repeated `backward()` does).
fn accumulate(t: &mut Tape, per_micro: Vec<Vec<(String, Var)>>) -> Vec<(String, Var)> {
    let mut iter = per_micro.into_iter();
    let mut total = iter.next().expect("at least one micro-batch");
    for grads in iter {
        for ((_, acc), (_, g)) in total.iter_mut().zip(grads) {
            *acc = ops::add(t, *acc, g);
        }
    }
    total
}

/// Mean of scalar losses over micro-batches.
fn mean_of(t: &mut Tape, xs: &[Var]) -> Var {
    let mut acc = xs[0];
    for &x in &xs[1..] {
        acc = ops::add(t, acc, x);
    }
    ops::scale(t, acc, 1.0 / xs.len() as f32)
}

/// A split step's hand-over between its two programs (see the module header): the program
/// packs into `flat` the gradients (in the optimizers' order) and then `values`; the host
/// all-reduces `flat` and writes the averages back; `update` applies them.
pub struct Exchange {
    pub flat: Tensor,
    /// Leading elements of `flat` that are gradients (replaced where not finite).
    pub grad_len: usize,
    pub update: Program,
}

/// Ends the step's tape `t` at its gradients: packs `grads` and then `values` end to end into
/// a new flat tensor (the effect that fills it joins `outputs`), and builds the update program
/// over the parameters of `nets` with the packed tensor as a leaf. `update` gets the pieces
/// unpacked in the order they were packed, records the updates on the update tape (binding
/// its leaves) and returns them with whatever the caller wants back (its Adam step scalars).
#[allow(clippy::too_many_arguments)]
fn split<R>(
    ctx: &Context,
    t: &mut Tape,
    outputs: &mut Vec<Var>,
    state: &TrainState,
    nets: &[Net],
    grads: &[Var],
    values: &[Var],
    update: impl FnOnce(&mut Tape, &mut Vec<(Var, Tensor)>, &Bound, Vec<Var>) -> (Vec<Var>, R),
) -> Result<(Exchange, R), VkError> {
    let grad_len = grads.iter().map(|&g| t.numel(g)).sum();
    let shapes: Vec<Vec<usize>> = grads
        .iter()
        .chain(values)
        .map(|&v| t.shape(v).to_vec())
        .collect();
    let packed = t.no_grad(|t| {
        let parts: Vec<Var> = grads
            .iter()
            .chain(values)
            .map(|&v| {
                let n = t.numel(v);
                ops::reshape(t, v, &[n])
            })
            .collect();
        ops::concat(t, &parts, 0)
    });
    let flat = Tensor::zeros(ctx, &[t.numel(packed)])?;
    outputs.push(ops::assign(t, &flat, packed));

    let mut u = Tape::new();
    let bound = state.params.bind(&mut u, nets, false);
    let mut leaves = bound_leaves(state, &bound);
    let flat_leaf = u.leaf(flat.shape(), false);
    leaves.push((flat_leaf, flat.clone()));
    let mut at = 0;
    let pieces = shapes
        .iter()
        .map(|shape| {
            let n = numel(shape);
            let piece = ops::slice(&mut u, flat_leaf, 0, at, n);
            at += n;
            ops::reshape(&mut u, piece, shape)
        })
        .collect();
    let (updates, back) = update(&mut u, &mut leaves, &bound, pieces);
    let exchange = Exchange {
        flat,
        grad_len,
        update: compile(ctx, &u, &updates, &leaves)?,
    };
    Ok((exchange, back))
}

/// The device tensors of `bound`'s parameters, as leaves for `Tape::compile`.
fn bound_leaves(state: &TrainState, bound: &Bound) -> Vec<(Var, Tensor)> {
    state
        .params
        .bindings(bound)
        .into_iter()
        .map(|(v, t)| (v, t.clone()))
        .collect()
}

/// Named gradients paired with the optimizer parameters `names`, in that order.
fn named(names: &[String], vars: Vec<Var>) -> Vec<(String, Var)> {
    names.iter().cloned().zip(vars).collect()
}

fn compile(
    ctx: &Context,
    t: &Tape,
    outputs: &[Var],
    leaves: &[(Var, Tensor)],
) -> Result<Program, VkError> {
    let refs: Vec<(Var, &Tensor)> = leaves.iter().map(|(v, t)| (*v, t)).collect();
    t.compile(ctx, outputs, &refs)
}

/// A compiled D step.
pub struct DProgram {
    pub program: Program,
    /// With several ranks (or a forced split): the hand-over to the update program.
    pub exchange: Option<Exchange>,
    pub r1: bool,
    pub loss: Var,
    pub gp: Option<Var>,
    pub real_score: Var,
    pub fake_score: Var,
    /// D(real) [B,1] per micro-batch (ADA's statistic reads their signs).
    pub real_scores: Vec<Var>,
    pub rng_step: Scalar,
    /// The Adam step, in [`DProgram::updater`].
    pub adam_step: Scalar,
}

impl DProgram {
    /// The program the optimizer runs in.
    pub fn updater(&mut self) -> &mut Program {
        match &mut self.exchange {
            Some(e) => &mut e.update,
            None => &mut self.program,
        }
    }
}

pub fn build_d(
    ctx: &Context,
    state: &TrainState,
    host: &HostInputs,
    r1: bool,
) -> Result<DProgram, VkError> {
    let cfg = &state.cfg;
    let (mut t, bound, rng_step, mut leaves) = step_tape(state, &[Net::Discriminator]);
    let nets = Nets {
        store: &state.params,
        bound: &bound,
        cfg: &cfg.model,
    };
    let (mut losses, mut gps, mut reals, mut fakes, mut grads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut real_scores = Vec::new();
    for micro in 0..cfg.accumulate {
        let real = t.leaf(host.real[micro].shape(), r1);
        let crossover = t.leaf(&[1], false);
        leaves.push((real, host.real[micro].clone()));
        leaves.push((crossover, host.crossover_d[micro].clone()));
        let mut inputs = random_inputs(
            &mut t, cfg, host.shard, KIND_D, micro, rng_step, crossover, real,
        );
        if cfg.augment != Augment::None {
            inputs.augment_real = Some(host.aug_d_real[micro].bind(&mut t, &mut leaves));
            inputs.augment_fake = Some(host.aug_d_fake[micro].bind(&mut t, &mut leaves));
        }
        let step = d_step(&mut t, nets, &hyper(cfg), &inputs, r1, false);
        real_scores.push(step.d_real);
        losses.push(step.loss);
        gps.extend(step.gp);
        let rs = ops::mean_all(&mut t, step.d_real);
        let fs = ops::mean_all(&mut t, step.d_fake);
        reals.push(rs);
        fakes.push(fs);
        grads.push(step.grads);
    }
    let grads = accumulate(&mut t, grads);
    let loss = mean_of(&mut t, &losses);
    let gp = (!gps.is_empty()).then(|| mean_of(&mut t, &gps));
    let real_score = mean_of(&mut t, &reals);
    let fake_score = mean_of(&mut t, &fakes);
    let mut outputs = vec![loss, real_score, fake_score];
    outputs.extend(&real_scores);
    outputs.extend(gp);
    let (exchange, adam_step) = if host.split {
        let opt_d = &state.opt_d;
        let ordered = opt_d.order(&grads);
        let nets = [Net::Discriminator];
        let (exchange, step) = split(
            ctx,
            &mut t,
            &mut outputs,
            state,
            &nets,
            &ordered,
            &[],
            |u, leaves, bound, pieces| {
                let opt = opt_d.append(u, bound, &named(opt_d.names(), pieces));
                leaves.extend(opt.leaves.iter().cloned());
                (opt.updates, opt.step)
            },
        )?;
        (Some(exchange), step)
    } else {
        let opt = state.opt_d.append(&mut t, &bound, &grads);
        leaves.extend(opt.leaves.iter().cloned());
        outputs.extend(&opt.updates);
        (None, opt.step)
    };
    Ok(DProgram {
        program: compile(ctx, &t, &outputs, &leaves)?,
        exchange,
        r1,
        loss,
        gp,
        real_score,
        fake_score,
        real_scores,
        rng_step,
        adam_step,
    })
}

/// A compiled G step.
pub struct GProgram {
    pub program: Program,
    /// With several ranks (or a forced split): the hand-over to the update program.
    pub exchange: Option<Exchange>,
    pub plp: bool,
    pub loss: Var,
    pub penalty: Option<Var>,
    pub mean_norm: Option<Var>,
    pub rng_step: Scalar,
    /// The Adam steps, in [`GProgram::updater`].
    pub adam_g: Scalar,
    pub adam_m: Scalar,
}

impl GProgram {
    /// The program the optimizers run in.
    pub fn updater(&mut self) -> &mut Program {
        match &mut self.exchange {
            Some(e) => &mut e.update,
            None => &mut self.program,
        }
    }
}

/// How much of the old average an EMA update keeps: a constant, or the step's decay that the
/// host writes before every run (`beta`, `1 - beta`, both [1]).
#[derive(Clone, Copy)]
enum Decay {
    Fixed(f32),
    PerStep { beta: Var, fresh: Var },
}

/// `target <- beta * target + (1 - beta) * value`, as an effect on a persistent tensor;
/// binds the leaf that reads the old value.
fn ema_update(
    t: &mut Tape,
    leaves: &mut Vec<(Var, Tensor)>,
    target: &Tensor,
    value: Var,
    decay: Decay,
) -> Var {
    t.no_grad(|t| {
        let old = t.leaf(target.shape(), false);
        leaves.push((old, target.clone()));
        match decay {
            Decay::Fixed(beta) => {
                let kept = ops::scale(t, old, beta);
                let fresh = ops::scale(t, value, 1.0 - beta);
                let new = ops::add(t, kept, fresh);
                ops::assign(t, target, new)
            }
            Decay::PerStep { beta, fresh } => ops::ema_step(t, old, value, beta, fresh),
        }
    })
}

/// What a G step's updates read: the gradients by optimizer (generator, mapping), the mean w
/// of the step ([d]) and, with the path-length penalty, the new running sum ([1]).
struct GUpdateInputs {
    gen: Vec<(String, Var)>,
    map: Vec<(String, Var)>,
    w_mean: Var,
    plp_sum: Option<Var>,
}

/// The optimizer steps, the path-length state's update and the moving averages, in that
/// order (the EMA reads the new parameters), on `t`.
fn g_updates(
    t: &mut Tape,
    leaves: &mut Vec<(Var, Tensor)>,
    state: &TrainState,
    host: &HostInputs,
    bound: &Bound,
    inputs: GUpdateInputs,
) -> (Vec<Var>, Scalar, Scalar) {
    let opt_g = state.opt_g.append(t, bound, &inputs.gen);
    let opt_m = state.opt_m.append(t, bound, &inputs.map);
    leaves.extend(opt_g.leaves.iter().cloned());
    leaves.extend(opt_m.leaves.iter().cloned());
    let mut outputs = opt_g.updates;
    outputs.extend(opt_m.updates);
    if let Some(sum) = inputs.plp_sum {
        outputs.push(ops::assign(t, &state.plp_exp_sum_a, sum));
    }
    outputs.extend(ema_updates(t, leaves, state, host, bound, inputs.w_mean));
    (outputs, opt_g.step, opt_m.step)
}

pub fn build_g(
    ctx: &Context,
    state: &TrainState,
    host: &HostInputs,
    plp: bool,
) -> Result<GProgram, VkError> {
    let cfg = &state.cfg;
    let (mut t, bound, rng_step, mut leaves) = step_tape(state, &[Net::Generator, Net::Mapping]);
    let nets = Nets {
        store: &state.params,
        bound: &bound,
        cfg: &cfg.model,
    };
    let plp_state = plp.then(|| plp_leaves(&mut t, &mut leaves, state, host));
    let parts = g_parts(
        &mut t,
        &mut leaves,
        nets,
        cfg,
        host,
        rng_step,
        plp_state.as_ref(),
    );
    let grads = accumulate(&mut t, parts.grads);
    let loss = mean_of(&mut t, &parts.losses);
    let (gen_grads, map_grads): (Vec<_>, Vec<_>) = grads
        .into_iter()
        .partition(|(n, _)| n.starts_with(Net::Generator.prefix()));
    let mut outputs = vec![loss];
    let (mut penalty, mut mean_norm, mut plp_sum) = (None, None, None);
    if plp {
        let (p, norm_mean, sum) =
            plp_outputs(&mut t, &parts.penalties, &parts.new_sums, &parts.norms);
        outputs.extend([p, norm_mean]);
        penalty = Some(p);
        mean_norm = Some(norm_mean);
        plp_sum = Some(sum);
    }
    let w_mean = mean_w(&mut t, &parts.ws);
    let (exchange, adam_g, adam_m) = if host.split {
        let gen = state.opt_g.order(&gen_grads);
        let map = state.opt_m.order(&map_grads);
        let ordered: Vec<Var> = gen.iter().chain(&map).copied().collect();
        let values: Vec<Var> = std::iter::once(w_mean).chain(plp_sum).collect();
        let nets = [Net::Generator, Net::Mapping];
        let (exchange, (adam_g, adam_m)) = split(
            ctx,
            &mut t,
            &mut outputs,
            state,
            &nets,
            &ordered,
            &values,
            |u, leaves, bound, pieces| {
                let mut pieces = pieces.into_iter();
                let gen_u: Vec<Var> = pieces.by_ref().take(gen.len()).collect();
                let map_u: Vec<Var> = pieces.by_ref().take(map.len()).collect();
                let inputs = GUpdateInputs {
                    gen: named(state.opt_g.names(), gen_u),
                    map: named(state.opt_m.names(), map_u),
                    w_mean: pieces.next().expect("w is packed"),
                    plp_sum: pieces.next(),
                };
                let (updates, adam_g, adam_m) = g_updates(u, leaves, state, host, bound, inputs);
                (updates, (adam_g, adam_m))
            },
        )?;
        (Some(exchange), adam_g, adam_m)
    } else {
        let inputs = GUpdateInputs {
            gen: gen_grads,
            map: map_grads,
            w_mean,
            plp_sum,
        };
        let (updates, adam_g, adam_m) = g_updates(&mut t, &mut leaves, state, host, &bound, inputs);
        outputs.extend(updates);
        (None, adam_g, adam_m)
    };
    Ok(GProgram {
        program: compile(ctx, &t, &outputs, &leaves)?,
        exchange,
        plp,
        loss,
        penalty,
        mean_norm,
        rng_step,
        adam_g,
        adam_m,
    })
}

/// The path-length state's leaves: the running sum (persistent) and the two host numbers.
fn plp_leaves(
    t: &mut Tape,
    leaves: &mut Vec<(Var, Tensor)>,
    state: &TrainState,
    host: &HostInputs,
) -> PathLengthState {
    let s = PathLengthState {
        exp_sum_a: t.leaf(&[1], false),
        debias: t.leaf(&[1], false),
        enabled: t.leaf(&[1], false),
    };
    leaves.push((s.exp_sum_a, state.plp_exp_sum_a.clone()));
    leaves.push((s.debias, host.plp_debias.clone()));
    leaves.push((s.enabled, host.plp_enabled.clone()));
    s
}

/// What each micro-batch of a G step contributes, before they are combined.
#[derive(Default)]
struct GParts {
    losses: Vec<Var>,
    penalties: Vec<Var>,
    new_sums: Vec<Var>,
    norms: Vec<Var>,
    ws: Vec<Var>,
    grads: Vec<Vec<(String, Var)>>,
}

/// The G step of every micro-batch, on one tape.
fn g_parts(
    t: &mut Tape,
    leaves: &mut Vec<(Var, Tensor)>,
    nets: Nets,
    cfg: &TrainConfig,
    host: &HostInputs,
    rng_step: Scalar,
    plp_state: Option<&PathLengthState>,
) -> GParts {
    let mut parts = GParts::default();
    for micro in 0..cfg.accumulate {
        let crossover = t.leaf(&[1], false);
        leaves.push((crossover, host.crossover_g[micro].clone()));
        // The G step reads no real images; a placeholder keeps StepInputs whole.
        let real = crossover;
        let mut inputs =
            random_inputs(t, cfg, host.shard, KIND_G, micro, rng_step, crossover, real);
        if cfg.augment != Augment::None {
            inputs.augment_fake = Some(host.aug_g_fake[micro].bind(t, leaves));
        }
        let step = g_step(t, nets, &hyper(cfg), &inputs, plp_state, false);
        parts.losses.push(step.adversarial_loss);
        if let Some(p) = &step.plp {
            parts.penalties.push(p.penalty);
            parts.new_sums.push(p.new_exp_sum_a);
            parts.norms.push(p.norm);
        }
        parts.ws.push(step.w);
        parts.grads.push(step.grads);
    }
    parts
}

/// The path-length outputs over the micro-batches: (mean penalty, mean path norm, the new
/// running sum).
fn plp_outputs(
    t: &mut Tape,
    penalties: &[Var],
    new_sums: &[Var],
    norms: &[Var],
) -> (Var, Var, Var) {
    let p = mean_of(t, penalties);
    // The running sum moves once per step, by the mean over micro-batches.
    let sum = mean_of(t, new_sums);
    let norm_mean = t.no_grad(|t| {
        let means: Vec<Var> = norms.iter().map(|&n| ops::mean_all(t, n)).collect();
        mean_of(t, &means)
    });
    (p, norm_mean, sum)
}

/// The mean w over the step's latents `ws` ([d]).
fn mean_w(t: &mut Tape, ws: &[Var]) -> Var {
    t.no_grad(|t| {
        let all = mean_of(t, ws);
        ops::mean(t, all, &[0, 1], false)
    })
}

/// The moving averages' updates: of the generator's and mapping network's parameters, then of
/// w towards the step's mean `w_mean`.
fn ema_updates(
    t: &mut Tape,
    leaves: &mut Vec<(Var, Tensor)>,
    state: &TrainState,
    host: &HostInputs,
    bound: &Bound,
    w_mean: Var,
) -> Vec<Var> {
    let beta = t.leaf(&[1], false);
    let fresh = t.leaf(&[1], false);
    leaves.push((beta, host.ema_beta.clone()));
    leaves.push((fresh, host.ema_fresh.clone()));
    let decay = Decay::PerStep { beta, fresh };
    let mut updates = Vec::new();
    for net in [Net::Generator, Net::Mapping] {
        for (spec, _) in state.params.trainable(net) {
            let value = bound.get(&spec.name);
            let target = state.ema.get(&spec.name);
            updates.push(ema_update(t, leaves, target, value, decay));
        }
    }
    updates.push(ema_update(
        t,
        leaves,
        &state.w_avg,
        w_mean,
        Decay::Fixed(W_AVG_BETA),
    ));
    updates
}
