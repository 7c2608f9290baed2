//! The mapping network, the generator and the discriminator, as the reference builds them.

use super::config::ModelConfig;
use super::layers::{
    equalized_conv, equalized_conv_lrelu, equalized_linear, style_block, to_rgb, LRELU_SLOPE,
};
use super::params::Bound;
use crate::autograd::{Tape, Var};
use crate::ops;

/// z [B,d] -> w [B,d]: normalise each row, then `mapping_layers` x (linear, leaky relu).
pub fn mapping(t: &mut Tape, p: &Bound, cfg: &ModelConfig, z: Var) -> Var {
    let mut x = ops::l2_normalize_rows(t, z);
    for i in 0..cfg.mapping_layers {
        x = equalized_linear(t, p, &format!("mapping_network.net.{}", 2 * i), x);
        x = ops::leaky_relu(t, x, LRELU_SLOPE);
    }
    x
}

/// Noise inputs of one generator block: `(n1, n2)`, each [B,1,r,r]; block 0 has no n1.
pub type BlockNoise = (Option<Var>, Var);

/// w [n_blocks,B,d] and one noise pair per block -> images [B,3,R,R] (no tanh, no clamp).
pub fn generator(t: &mut Tape, p: &Bound, cfg: &ModelConfig, w: Var, noise: &[BlockNoise]) -> Var {
    let n_blocks = cfg.generator_blocks();
    assert_eq!(t.shape(w)[0], n_blocks, "one style per generator block");
    assert_eq!(noise.len(), n_blocks, "one noise pair per generator block");
    let batch = t.shape(w)[1];
    let d = cfg.d_latent;
    let style = |t: &mut Tape, i: usize| {
        let wi = ops::slice(t, w, 0, i, 1);
        ops::reshape(t, wi, &[batch, d])
    };
    let constant = p.get("generator.initial_constant");
    let f0 = t.shape(constant)[1];
    let mut x = ops::expand(t, constant, &[batch, f0, 4, 4]);
    let w0 = style(t, 0);
    x = style_block(t, p, "generator.style_block", x, w0, Some(noise[0].1));
    let mut rgb = to_rgb(t, p, "generator.to_rgb", x, w0);
    for (i, &(n1, n2)) in noise.iter().enumerate().skip(1) {
        let wi = style(t, i);
        let prefix = format!("generator.blocks.{}", i - 1);
        x = ops::upsample(t, x);
        x = style_block(t, p, &format!("{prefix}.style_block1"), x, wi, n1);
        x = style_block(t, p, &format!("{prefix}.style_block2"), x, wi, Some(n2));
        let rgb_i = to_rgb(t, p, &format!("{prefix}.to_rgb"), x, wi);
        let up = ops::upsample(t, rgb);
        rgb = ops::add(t, up, rgb_i);
    }
    rgb
}

/// Images [B,3,R,R] -> scores [B,1].
pub fn discriminator(t: &mut Tape, p: &Bound, cfg: &ModelConfig, image: Var) -> Var {
    discriminator_of_segments(t, p, cfg, image, 1)
}

/// Scores [B,1] of `segments` batches of images laid end to end in `image` [B,3,R,R], each
/// judged as if alone: only the minibatch-stddev head mixes samples, and it keeps to its
/// segment. One pass over both of the discriminator step's batches instead of two halves the
/// dispatches, which is what small models spend their time on.
pub fn discriminator_of_segments(
    t: &mut Tape,
    p: &Bound,
    cfg: &ModelConfig,
    image: Var,
    segments: usize,
) -> Var {
    let features = discriminator_features(t, p, cfg, image);
    let mut x = *features.last().expect("from_rgb gives the first features");
    x = ops::minibatch_stddev(t, x, 4, segments);
    x = equalized_conv(t, p, "discriminator.conv", x, 0);
    let batch = t.shape(x)[0];
    let flat: usize = t.shape(x)[1..].iter().product();
    x = ops::reshape(t, x, &[batch, flat]);
    equalized_linear(t, p, "discriminator.final", x)
}

/// The discriminator's activations before its minibatch-stddev head: from_rgb's output, then
/// each residual block's, from full resolution down to 4x4. Every one is a function of its own
/// image alone, which is what lets `vkgan project` compare images by them.
pub fn discriminator_features(t: &mut Tape, p: &Bound, cfg: &ModelConfig, image: Var) -> Vec<Var> {
    let features = cfg.discriminator_features();
    let mut x = ops::add_scalar(t, image, -0.5);
    x = equalized_conv_lrelu(t, p, "discriminator.from_rgb.0", x, 0);
    let mut out = vec![x];
    for i in 0..features.len() - 1 {
        let prefix = format!("discriminator.blocks.{i}");
        let down = ops::downsample(t, x);
        let residual = equalized_conv(t, p, &format!("{prefix}.residual.1"), down, 0);
        x = equalized_conv_lrelu(t, p, &format!("{prefix}.block.0"), x, 1);
        x = equalized_conv_lrelu(t, p, &format!("{prefix}.block.2"), x, 1);
        x = ops::downsample(t, x);
        x = ops::add(t, x, residual);
        x = ops::scale(t, x, std::f32::consts::FRAC_1_SQRT_2);
        out.push(x);
    }
    out
}
