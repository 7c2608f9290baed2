//! Losses and regularizers of the reference training loop.
//!
//! - Discriminator hinge: `mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`.
//! - Generator: `-mean(D(G(w)))`.
//! - R1: `gp = mean_b ||dD(x)/dx_b||^2`, the gradient of `sum_b D(x_b)` taken with
//!   `create_graph`, so that the penalty's own gradient reaches D's weights.
//! - Path length: `out = sum(G(w) * y) / sqrt(H W)`, `g = d out / d w` (kept differentiable),
//!   `norm[b] = sqrt(mean_blocks(sum_d g[block,b,:]^2))` per sample (the paper's definition),
//!   `plp = mean_b (norm[b] - a)^2` with `a` the debiased running mean of the norms.

use crate::autograd::{Tape, Var};
use crate::ops;

pub fn discriminator_hinge(t: &mut Tape, d_real: Var, d_fake: Var) -> Var {
    let one_minus = {
        let n = ops::neg(t, d_real);
        ops::add_scalar(t, n, 1.0)
    };
    let real_term = ops::relu(t, one_minus);
    let real_term = ops::mean_all(t, real_term);
    let one_plus = ops::add_scalar(t, d_fake, 1.0);
    let fake_term = ops::relu(t, one_plus);
    let fake_term = ops::mean_all(t, fake_term);
    ops::add(t, real_term, fake_term)
}

pub fn generator_loss(t: &mut Tape, d_fake: Var) -> Var {
    let m = ops::mean_all(t, d_fake);
    ops::neg(t, m)
}

/// The R1 penalty of scores `d_real` at images `real` (which must require a gradient).
pub fn r1_penalty(t: &mut Tape, d_real: Var, real: Var) -> Var {
    let g = t.grad(&[d_real], &[real], None, true)[0]
        .expect("the discriminator's score depends on its input");
    let batch = t.shape(real)[0];
    let g2 = ops::square(t, g);
    let total = ops::sum_all(t, g2);
    ops::scale(t, total, 1.0 / batch as f32)
}

/// Per-sample path lengths `norm` [B] of the generator output `fake` [B,3,H,W] with respect to
/// the styles `w` [n_blocks,B,d], projected on `y` (shaped like `fake`).
pub fn path_lengths(t: &mut Tape, fake: Var, w: Var, y: Var) -> Var {
    let shape = t.shape(fake).to_vec();
    let (h, wd) = (shape[2], shape[3]);
    let fy = ops::mul(t, fake, y);
    let out = ops::sum_all(t, fy);
    let out = ops::scale(t, out, 1.0 / ((h * wd) as f32).sqrt());
    let g = t.grad(&[out], &[w], None, true)[0].expect("the images depend on the styles");
    let g2 = ops::square(t, g);
    let per_block = ops::sum(t, g2, &[2], false); // [n_blocks, B]
    let mean = ops::mean(t, per_block, &[0], false); // [B]
    ops::sqrt(t, mean)
}

/// `mean_b (norm[b] - a)^2` for a target `a` of shape [1].
pub fn path_length_penalty(t: &mut Tape, norm: Var, a: Var) -> Var {
    let diff = ops::sub(t, norm, a);
    let sq = ops::square(t, diff);
    ops::mean_all(t, sq)
}
