//! Dense layers composed from matmul and elementwise ops (so every derivative, of any order,
//! comes from theirs).
//!
//! - `equalized_linear(x, W, bias)`: x [B,in], W [out,in], bias [out];
//!   y = x (c W)ᵀ + bias with c = 1/sqrt(in) (StyleGAN2's equalized learning rate: W is stored
//!   N(0,1) and scaled at use). Computed as `matmul_scaled(x, W, tb, c)`, so the scale costs
//!   nothing and W is never copied or transposed; dx = c g W, dW = c gᵀ x, dbias = sum_b g.
//! - `l2_normalize_rows(x)`: x [B,d] -> x_b / max(||x_b||_2, 1e-12) (PyTorch's F.normalize
//!   over dim 1). Computed as x / sqrt(max(sum_j x_bj^2, 1e-24)), which is the same number
//!   (sqrt is monotonic) but keeps sqrt away from 0, so a zero row gets the finite first
//!   gradient g / 1e-12 (as PyTorch gives) instead of 0 * inf. Its second derivatives scale
//!   like 1/n^4 = 1e48, past f32's range, so they are not finite on a zero row (nor are
//!   PyTorch's); a row of any ordinary size has all of them. Derivatives: dx = g/n - x <g, x>/n^3 (n the clamped norm, the
//!   second term absent where clamped), formed by the tape from div, sqrt, clamp_min, sum and
//!   square.

use super::{add, clamp_min, div, matmul_scaled, sqrt, square, sum};
use crate::autograd::{Tape, Var};

/// y = x (W / sqrt(in))ᵀ + bias; x [B,in], W [out,in], bias [out].
pub fn equalized_linear(t: &mut Tape, x: Var, weight: Var, bias: Option<Var>) -> Var {
    let (xs, ws) = (t.shape(x).to_vec(), t.shape(weight).to_vec());
    assert!(
        xs.len() == 2 && ws.len() == 2 && xs[1] == ws[1],
        "equalized_linear: x {xs:?} and weight {ws:?} must be [B,in] and [out,in]"
    );
    let c = 1.0 / (ws[1] as f32).sqrt();
    let y = matmul_scaled(t, x, weight, false, true, c);
    match bias {
        Some(b) => {
            assert_eq!(t.shape(b), [ws[0]], "equalized_linear: bias shape");
            add(t, y, b)
        }
        None => y,
    }
}

/// Each row of x [B,d] divided by max(its L2 norm, 1e-12).
pub fn l2_normalize_rows(t: &mut Tape, x: Var) -> Var {
    assert_eq!(t.shape(x).len(), 2, "l2_normalize_rows takes [B,d]");
    let sq = square(t, x);
    let ss = sum(t, sq, &[1], true);
    let ss = clamp_min(t, ss, 1e-24);
    let norm = sqrt(t, ss);
    div(t, x, norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use crate::testing::{assert_close, check_op, random, OpCase};

    #[test]
    fn equalized_linear_with_and_without_bias() {
        for (b, i, o) in [(1, 1, 1), (7, 13, 5), (5, 64, 12), (3, 65, 129)] {
            check_op(OpCase::new(
                "equalized_linear",
                &[&[b, i], &[o, i], &[o]],
                |t, x| equalized_linear(t, x[0], x[1], Some(x[2])),
            ));
            check_op(OpCase::new(
                "equalized_linear nobias",
                &[&[b, i], &[o, i]],
                |t, x| equalized_linear(t, x[0], x[1], None),
            ));
        }
    }

    #[test]
    fn l2_normalize_rows_matches_its_definition() {
        for shape in [&[1, 1][..], &[7, 13], &[4, 512]] {
            check_op(OpCase::new("l2_normalize_rows", &[shape], |t, x| {
                l2_normalize_rows(t, x[0])
            }));
        }
    }

    #[test]
    fn l2_normalize_rows_maps_a_zero_row_to_zero_with_a_finite_gradient() {
        // Row 1 is zero: clamped, so it maps to 0 and passes g / 1e-12 through (as PyTorch
        // does). Finite differences do not apply there (the clamped region is 1e-12 wide), so
        // this checks device against CPU and the closed form. First order only: the zero row's
        // second derivatives are ~1e48, beyond f32 (see the module header).
        let ctx = crate::testing::context();
        let mut x = random(&[3, 5], 42);
        x.data[5..10].fill(0.0);
        let u = random(&[3, 5], 43);
        let mut t = Tape::new();
        let (xv, uv) = (t.leaf(&[3, 5], true), t.leaf(&[3, 5], false));
        let y = l2_normalize_rows(&mut t, xv);
        let yu = crate::ops::mul(&mut t, y, uv);
        let f = crate::ops::sum_all(&mut t, yu);
        let g = t.grad(&[f], &[xv], None, false)[0].unwrap();
        let cpu = t.eval_cpu(&[y, g], &[(xv, &x), (uv, &u)]);
        let (xd, ud) = (
            Tensor::from_cpu(&ctx, &x).unwrap(),
            Tensor::from_cpu(&ctx, &u).unwrap(),
        );
        let dev = t.eval(&ctx, &[y, g], &[(xv, &xd), (uv, &ud)]).unwrap();
        assert_close(&dev[0], &cpu[0].data, 1e-5, 1e-4, "zero row: forward");
        assert_close(&dev[1], &cpu[1].data, 1e-5, 1e-4, "zero row: gradient");
        for j in 5..10 {
            assert_eq!(cpu[0].data[j], 0.0);
            let want = u.data[j] / 1e-12;
            assert!((cpu[1].data[j] - want).abs() <= 1e-6 * want.abs());
        }
    }
}
