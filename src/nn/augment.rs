//! The discriminator's input augmentation on the tape: `augment(x)` for images x [B,3,R,R] in
//! [0, 1], with per-image parameters the host draws every step (see
//! [`crate::train::augment`]) bound as data leaves. In order:
//!
//! - colour: x ← M[:, :3] x + M[:, 3] per pixel ([`ops::color_matrix`], M [B,3,4]);
//! - contrast (DiffAugment): x ← c x + (1 - c) mean(x) per image (c [B,1,1,1], the mean over
//!   channels and pixels);
//! - geometry: x ← bilinear resample of x at θ (output to input, [B,2,3]) with reflected or
//!   zero edges ([`ops::affine_resample`]);
//! - cutout (DiffAugment): x ← x m (m [B,1,R,R] of 0 and 1).
//!
//! Every stage is linear in x (affine for the colour offset), so gradients pass through to the
//! un-augmented images: R1 on augmented reals is the gradient of D(augment(x)) with respect
//! to x, and is differentiated again for D's update. The parameters get no gradient. Colour
//! and geometry commute (bilinear weights sum to 1 and reflection copies pixels), so the
//! order matters only for DiffAugment's zero fill, which its paper applies after colour.

use crate::autograd::{Tape, Var};
use crate::ops::{self, Padding};

/// One batch's augmentation parameters, as leaves of the tape.
#[derive(Clone, Copy, Debug)]
pub struct Augmentation {
    pub color: Var,
    pub contrast: Option<Var>,
    pub theta: Var,
    pub padding: Padding,
    pub mask: Option<Var>,
}

/// The augmented images, see the module header.
pub fn augment(t: &mut Tape, x: Var, a: &Augmentation) -> Var {
    let mut x = ops::color_matrix(t, x, a.color);
    if let Some(c) = a.contrast {
        let mean = ops::mean(t, x, &[1, 2, 3], true);
        let kept = ops::mul(t, x, c);
        let one_minus = ops::neg(t, c);
        let one_minus = ops::add_scalar(t, one_minus, 1.0);
        let pulled = ops::mul(t, mean, one_minus);
        x = ops::add(t, kept, pulled);
    }
    x = ops::affine_resample(t, x, a.theta, a.padding);
    if let Some(m) = a.mask {
        x = ops::mul(t, x, m);
    }
    x
}
