//! The discriminator and generator steps of the reference training loop, built on a tape so
//! that each kind (D, D+R1, G, G+path length) is recorded once and replayed.
//!
//! D step: `fake = G(w, noise)` without gradient; `loss = hinge(D(real), D(fake))`, plus
//! `0.5 * gamma * gp * interval` on R1 steps; gradients for D's parameters. Off R1 steps D
//! judges the fakes and reals in one pass over both batches (two minibatch-stddev segments),
//! which computes the same function with half the dispatches.
//! G step: `fake = G(w, noise)`; `loss = -mean(D(fake))`, plus the path-length penalty on PLP
//! steps; gradients for the generator's and mapping network's parameters only (D's are bound
//! without gradients, so none of its weight gradients are computed).
//!
//! With augmentation (ADA, DiffAugment) every image D sees, real or fake, in either step, is
//! augmented first, and R1 differentiates through the augmentation to the real images.
//!
//! The inputs (latents, noise, crossover, real batch, path-length projection, augmentation
//! parameters) are `Var`s the caller makes: leaves bound to uploaded tensors in the golden test, device-side random fills
//! in training.

use super::augment::{augment, Augmentation};
use super::config::ModelConfig;
use super::losses;
use super::networks::{discriminator, discriminator_of_segments, generator, mapping, BlockNoise};
use super::params::{Bound, Net, ParamStore};
use crate::autograd::{Tape, Var};
use crate::ops;

/// The hyper-parameters the steps use.
#[derive(Clone, Debug)]
pub struct StepHyper {
    /// R1 weight (gamma).
    pub r1_gamma: f32,
    /// Steps between R1 penalties (lazy regularization scales the penalty by it).
    pub r1_interval: usize,
    /// Decay of the path-length running mean.
    pub plp_beta: f32,
}

impl StepHyper {
    /// What R1's penalty is weighted by in the D loss: `0.5 * gamma * interval` (lazy
    /// regularization scales it by the steps between penalties).
    pub fn r1_weight(&self) -> f32 {
        0.5 * self.r1_gamma * self.r1_interval as f32
    }
}

/// The networks a step runs: parameters on the device, their leaves on this step's tape, and
/// the sizes.
#[derive(Clone, Copy)]
pub struct Nets<'a> {
    pub store: &'a ParamStore,
    pub bound: &'a Bound,
    pub cfg: &'a ModelConfig,
}

/// What a step reads besides parameters.
#[derive(Clone, Debug)]
pub struct StepInputs {
    pub z1: Var,
    pub z2: Var,
    pub noise: Vec<BlockNoise>,
    /// [1]: blocks below it take M(z1), the rest M(z2).
    pub crossover: Var,
    /// [B,3,R,R] in [0,1]; must require a gradient for R1.
    pub real: Var,
    /// [B,3,R,R] projection of the path-length penalty.
    pub plp_y: Var,
    /// The augmentations of the real images (D step) and of the fakes (each step draws its
    /// own), when the run augments.
    pub augment_real: Option<Augmentation>,
    pub augment_fake: Option<Augmentation>,
}

/// The images, augmented by `a` when given.
fn augmented(t: &mut Tape, x: Var, a: Option<&Augmentation>) -> Var {
    match a {
        Some(a) => augment(t, x, a),
        None => x,
    }
}

/// D of the images, augmented by `a` when given.
fn judge(t: &mut Tape, p: &Bound, cfg: &ModelConfig, x: Var, a: Option<&Augmentation>) -> Var {
    let x = augmented(t, x, a);
    discriminator(t, p, cfg, x)
}

/// (D(fake), D(real)), each augmented by its own augmentation when given, in one pass over
/// both batches laid end to end (two segments, so each keeps its own minibatch statistics).
fn judge_both(t: &mut Tape, nets: Nets, fake: Var, real: Var, inputs: &StepInputs) -> (Var, Var) {
    let batch = t.shape(fake)[0];
    assert_eq!(batch, t.shape(real)[0], "as many fakes as reals");
    let fake = augmented(t, fake, inputs.augment_fake.as_ref());
    let real = augmented(t, real, inputs.augment_real.as_ref());
    let both = ops::concat(t, &[fake, real], 0);
    let scores = discriminator_of_segments(t, nets.bound, nets.cfg, both, 2);
    (
        ops::slice(t, scores, 0, 0, batch),
        ops::slice(t, scores, 0, batch, batch),
    )
}

/// The styles [n_blocks,B,d] of a step: mapped latents picked per block by the crossover.
pub fn styles(t: &mut Tape, p: &Bound, cfg: &ModelConfig, inputs: &StepInputs) -> Var {
    let w1 = mapping(t, p, cfg, inputs.z1);
    let w2 = mapping(t, p, cfg, inputs.z2);
    ops::select_blocks(t, w1, w2, inputs.crossover, cfg.generator_blocks())
}

/// Nodes of a recorded D step.
pub struct DStep {
    pub fake: Var,
    pub d_fake: Var,
    pub d_real: Var,
    pub gp: Option<Var>,
    pub loss: Var,
    /// (parameter name, gradient of the loss) for every trainable D parameter.
    pub grads: Vec<(String, Var)>,
    /// Gradients of gp alone, when asked for (the golden test compares them).
    pub gp_grads: Vec<(String, Var)>,
}

/// Appends a D step. `nets.bound` binds all three networks; only D's leaves require gradients.
pub fn d_step(
    t: &mut Tape,
    nets: Nets,
    hyper: &StepHyper,
    inputs: &StepInputs,
    r1: bool,
    report_gp_grads: bool,
) -> DStep {
    let Nets {
        store,
        bound: p,
        cfg,
    } = nets;
    let fake = t.no_grad(|t| {
        let w = styles(t, p, cfg, inputs);
        generator(t, p, cfg, w, &inputs.noise)
    });
    let fake = t.detach(fake);
    // R1 differentiates D(real) alone with respect to the reals, twice over: through a joint
    // pass it would carry the fakes' half of every activation along for nothing.
    let (d_fake, d_real) = if r1 {
        (
            judge(t, p, cfg, fake, inputs.augment_fake.as_ref()),
            judge(t, p, cfg, inputs.real, inputs.augment_real.as_ref()),
        )
    } else {
        judge_both(t, nets, fake, inputs.real, inputs)
    };
    let mut loss = losses::discriminator_hinge(t, d_real, d_fake);
    let params = p.under(Net::Discriminator.prefix(), store);
    let leaves: Vec<Var> = params.iter().map(|(_, v)| *v).collect();
    let mut gp = None;
    let mut gp_grads = Vec::new();
    if r1 {
        let penalty = losses::r1_penalty(t, d_real, inputs.real);
        let weighted = ops::scale(t, penalty, hyper.r1_weight());
        loss = ops::add(t, loss, weighted);
        gp = Some(penalty);
        if report_gp_grads {
            gp_grads = named(&params, t.grad(&[penalty], &leaves, None, false), t);
        }
    }
    let grads = named(&params, t.grad(&[loss], &leaves, None, false), t);
    DStep {
        fake,
        d_fake,
        d_real,
        gp,
        loss,
        grads,
        gp_grads,
    }
}

/// Nodes of a recorded G step.
pub struct GStep {
    pub w: Var,
    pub fake: Var,
    pub d_fake: Var,
    /// `-mean(D(fake))` alone.
    pub adversarial_loss: Var,
    /// What is differentiated: the adversarial loss plus the path-length penalty.
    pub loss: Var,
    pub plp: Option<PathLength>,
    /// (parameter name, gradient) for every trainable generator and mapping parameter.
    pub grads: Vec<(String, Var)>,
    pub plp_grads: Vec<(String, Var)>,
}

/// The path-length part of a G step.
pub struct PathLength {
    /// [B] per-sample norms.
    pub norm: Var,
    /// [1] the penalty (zero on the first PLP step, when there is no running mean yet).
    pub penalty: Var,
    /// [1] the running sum after this step (to be stored back into the state).
    pub new_exp_sum_a: Var,
}

/// Path-length state the G step reads: leaves bound to device tensors the trainer keeps.
pub struct PathLengthState {
    /// [1] the exponential running sum of mean norms.
    pub exp_sum_a: Var,
    /// [1] `1 / (1 - beta^steps)` when steps > 0, else 0: written by the host, which counts
    /// PLP steps.
    pub debias: Var,
    /// [1] 1 when steps > 0, else 0 (no running mean yet: the penalty and its gradient are 0).
    pub enabled: Var,
}

/// Appends a G step. `nets.bound` binds all three networks; D's leaves must not require
/// gradients.
pub fn g_step(
    t: &mut Tape,
    nets: Nets,
    hyper: &StepHyper,
    inputs: &StepInputs,
    plp_state: Option<&PathLengthState>,
    report_plp_grads: bool,
) -> GStep {
    let Nets {
        store,
        bound: p,
        cfg,
    } = nets;
    let w = styles(t, p, cfg, inputs);
    let fake = generator(t, p, cfg, w, &inputs.noise);
    let d_fake = judge(t, p, cfg, fake, inputs.augment_fake.as_ref());
    let adversarial_loss = losses::generator_loss(t, d_fake);
    let mut loss = adversarial_loss;
    let mut params = p.under(Net::Generator.prefix(), store);
    params.extend(p.under(Net::Mapping.prefix(), store));
    let leaves: Vec<Var> = params.iter().map(|(_, v)| *v).collect();
    let mut plp = None;
    let mut plp_grads = Vec::new();
    if let Some(state) = plp_state {
        let norm = losses::path_lengths(t, fake, w, inputs.plp_y);
        let a = ops::mul(t, state.exp_sum_a, state.debias);
        let penalty = losses::path_length_penalty(t, norm, a);
        let penalty = ops::mul(t, penalty, state.enabled);
        let penalty = ops::reshape(t, penalty, &[1]);
        loss = ops::add(t, loss, penalty);
        let new_exp_sum_a = t.no_grad(|t| {
            let mean = ops::mean_all(t, norm);
            let old = ops::scale(t, state.exp_sum_a, hyper.plp_beta);
            let fresh = ops::scale(t, mean, 1.0 - hyper.plp_beta);
            ops::add(t, old, fresh)
        });
        if report_plp_grads {
            plp_grads = named(&params, t.grad(&[penalty], &leaves, None, false), t);
        }
        plp = Some(PathLength {
            norm,
            penalty,
            new_exp_sum_a,
        });
    }
    let grads = named(&params, t.grad(&[loss], &leaves, None, false), t);
    GStep {
        w,
        fake,
        d_fake,
        adversarial_loss,
        loss,
        plp,
        grads,
        plp_grads,
    }
}

/// Pairs gradients with parameter names; a parameter the loss does not reach gets zeros
/// (as PyTorch's `allow_unused` with zeros).
fn named(params: &[(String, Var)], grads: Vec<Option<Var>>, t: &mut Tape) -> Vec<(String, Var)> {
    params
        .iter()
        .zip(grads)
        .map(|((name, leaf), g)| {
            let g = g.unwrap_or_else(|| {
                let shape = t.shape(*leaf).to_vec();
                ops::zeros(t, &shape)
            });
            (name.clone(), g)
        })
        .collect()
}
