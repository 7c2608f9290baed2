//! `minibatch_stddev(x, G, S)`: StyleGAN2's discriminator feature, `[B,C,H,W] -> [B,C+1,H,W]`.
//!
//! The batch holds S segments of `B/S` samples laid end to end, each judged as if alone (S = 2
//! when the discriminator step runs its fakes and reals as one batch). View segment k as
//! `r_k = [G, M]` with `M = B/(S G)*C*H*W` (row g holds the segment's samples
//! `g*B/(S G) .. (g+1)*B/(S G) - 1`), `var_k[m] = sum_g (r_k[g,m] - mean_g r_k[.,m])^2 / (G-1)`
//! (Bessel), `std_k = sqrt(var_k + 1e-8)`, `s_k = mean_m std_k[m]` (one scalar a segment), and
//! the output is x with a constant channel `s_k` appended to every sample of segment k.
//!
//! Composed of reshape, mean, sub, square, sum, scale, add_scalar, sqrt, expand and concat,
//! which carry all derivatives (concat's gradient is two slices, whose gradients pad them back).

use super::{add_scalar, concat, expand, mean, reshape, scale, sqrt, square, sub, sum};
use crate::autograd::{Tape, Var};

/// See the module header. `x` is `[B, C, H, W]` with B divisible by `segments * group_size`
/// (`group_size` >= 2, `segments` >= 1).
pub fn minibatch_stddev(t: &mut Tape, x: Var, group_size: usize, segments: usize) -> Var {
    let shape = t.shape(x).to_vec();
    assert!(
        shape.len() == 4
            && group_size >= 2
            && segments >= 1
            && shape[0] % (segments * group_size) == 0,
        "minibatch_stddev of {shape:?} with group size {group_size} in {segments} segment(s): \
         needs [B, C, H, W] with B divisible by the segments times a group size of at least 2"
    );
    let (b, h, w) = (shape[0], shape[2], shape[3]);
    let per_row = t.numel(x) / (segments * group_size);
    let rows = reshape(t, x, &[segments, group_size, per_row]);
    let mu = mean(t, rows, &[1], true);
    let centred = sub(t, rows, mu);
    let sq = square(t, centred);
    let ss = sum(t, sq, &[1], false);
    let var = scale(t, ss, 1.0 / (group_size - 1) as f32);
    let var = add_scalar(t, var, 1e-8);
    let std = sqrt(t, var);
    let s = mean(t, std, &[1], false);
    let s = reshape(t, s, &[segments, 1, 1, 1, 1]);
    let channel = expand(t, s, &[segments, b / segments, 1, h, w]);
    let channel = reshape(t, channel, &[b, 1, h, w]);
    concat(t, &[x, channel], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, random, OpCase};

    #[test]
    fn minibatch_stddev_matches_cpu_with_gradients() {
        for shape in [&[8, 3, 5, 7][..], &[12, 5, 3, 1], &[4, 1, 1, 1]] {
            check_op(OpCase::new("minibatch_stddev", &[shape], |t, x| {
                minibatch_stddev(t, x[0], 4, 1)
            }));
        }
        for shape in [&[16, 3, 2, 3][..], &[8, 2, 1, 1]] {
            check_op(OpCase::new(
                "minibatch_stddev_segments",
                &[shape],
                |t, x| minibatch_stddev(t, x[0], 4, 2),
            ));
        }
    }

    /// The spec's formula in plain loops, against the composed op's CPU evaluation.
    #[test]
    fn matches_the_formula() {
        let shape = [12, 3, 5, 7];
        let x = random(&shape, 3);
        let (g, m) = (4, x.numel() / 4);
        let mut total = 0.0;
        for j in 0..m {
            let col: Vec<f64> = (0..g).map(|r| x.data[r * m + j]).collect();
            let mu = col.iter().sum::<f64>() / g as f64;
            let var = col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / (g - 1) as f64;
            total += (var + 1e-8).sqrt();
        }
        let s = total / m as f64;
        let mut t = Tape::new();
        let leaf = t.leaf(&shape, false);
        let y = minibatch_stddev(&mut t, leaf, 4, 1);
        assert_eq!(t.shape(y), &[12, 4, 5, 7]);
        let out = t.eval_cpu(&[y], &[(leaf, &x)]).remove(0);
        let hw = 35;
        for b in 0..12 {
            for c in 0..4 {
                for p in 0..hw {
                    let got = out.data[(b * 4 + c) * hw + p];
                    let want = if c < 3 {
                        x.data[(b * 3 + c) * hw + p]
                    } else {
                        s
                    };
                    // The ops take their constants (1/(G-1), 1e-8) as f32: 1/3 is off by ~3e-8.
                    assert!(
                        (got - want).abs() < 1e-7 * want.abs().max(1.0),
                        "[{b},{c},{p}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// Two segments give each half of the batch what it gets alone.
    #[test]
    fn segments_are_judged_apart() {
        let shape = [16, 3, 2, 5];
        let x = random(&shape, 7);
        let mut t = Tape::new();
        let leaf = t.leaf(&shape, false);
        let both = minibatch_stddev(&mut t, leaf, 4, 2);
        let halves: Vec<Var> = (0..2)
            .map(|k| {
                let half = crate::ops::slice(&mut t, leaf, 0, 8 * k, 8);
                minibatch_stddev(&mut t, half, 4, 1)
            })
            .collect();
        let alone = crate::ops::concat(&mut t, &halves, 0);
        let out = t.eval_cpu(&[both, alone], &[(leaf, &x)]);
        assert_eq!(out[0].shape, out[1].shape);
        let s: Vec<f64> = [0, 8]
            .iter()
            .map(|b| out[1].data[(b * 4 + 3) * 10])
            .collect();
        assert!(
            (s[0] - s[1]).abs() > 1e-3,
            "the halves' statistics differ: {s:?}"
        );
        for (i, (a, b)) in out[0].data.iter().zip(&out[1].data).enumerate() {
            assert!((a - b).abs() < 1e-12, "[{i}]: {a} vs {b}");
        }
    }
}
