//! `noise_inject(x, noise, scale)`: `y = x + scale[0] * noise`, x `[B,C,H,W]`, noise
//! `[B,1,H,W]` (broadcast over channels), scale `[1]` (StyleGAN2's `scale_noise`).
//!
//! Composed of `mul` and `add` with broadcasting, so the derivatives are theirs:
//! `dx = g`, `dnoise = scale * sum_c g`, `dscale = sum(g * noise)`.

use super::{add, mul};
use crate::autograd::{Tape, Var};

/// See the module header.
pub fn noise_inject(t: &mut Tape, x: Var, noise: Var, scale: Var) -> Var {
    let (sx, sn) = (t.shape(x).to_vec(), t.shape(noise).to_vec());
    assert!(
        sx.len() == 4 && sn == [sx[0], 1, sx[2], sx[3]] && t.shape(scale) == [1],
        "noise_inject: x {sx:?}, noise {sn:?} (want [B, 1, H, W]), scale {:?} (want [1])",
        t.shape(scale)
    );
    let scaled = mul(t, noise, scale);
    add(t, x, scaled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    #[test]
    fn noise_inject_matches_cpu_with_gradients() {
        for (b, c, h, w) in [(3, 5, 7, 9), (2, 1, 1, 3)] {
            check_op(OpCase::new(
                "noise_inject",
                &[&[b, c, h, w], &[b, 1, h, w], &[1]],
                |t, v| noise_inject(t, v[0], v[1], v[2]),
            ));
        }
    }
}
