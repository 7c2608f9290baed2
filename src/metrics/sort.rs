//! Sorting each row of a matrix ascending, on the device, by a bitonic sorting network.
//!
//! `sort_rows(x)` of x [R, M] is [R, M], every row in ascending order. The kernel needs rows
//! of a power-of-two length P: the `SortRows` op first copies x into [R, P] with +inf in the
//! extra columns (they sort last), runs the network, and the existing `slice` op
//! takes the first M columns back. The network is Batcher's bitonic sort: stages k = 2, 4, ..,
//! P, each with compare-exchange steps of stride j = k/2, k/4, .., 1 between elements i and
//! i + j (i with bit j clear), ascending where bit k of i is clear, descending where set. Each
//! dispatch fuses up to four consecutive steps of a stage (16 elements per invocation, in
//! registers), so a row of 2^15 needs 36 dispatches instead of 120 (MAX_BITS = 4). Each dispatch reads one buffer and writes another (the op's output and
//! a scratch buffer, in turn): in place, with several elements per invocation, lavapipe
//! (Mesa 22.3) with two threads corrupted rows of 2^20 elements and more at random (seen with
//! an earlier indexing scheme; LP_NUM_THREADS=1 and ping-ponging each cured it), and
//! ping-ponging costs one scratch buffer. A fixed network: the
//! result, and which equal keys end where, does not depend on timing, so it is deterministic.
//! NaNs compare false and stay wherever the network leaves them; inputs here have none.
//!
//! No backward: the sliced Wasserstein distance that sorts is a metric, never differentiated
//! (a sort's gradient would be the permutation's transpose; nothing needs it).

use super::dispatch_items;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::ops::slice;
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::{BitonicPush, SortPadPush};
use crate::vk::{read, write};

/// Steps fused per dispatch: kernels bitonic_1..bitonic_4 hold 2^bits elements per invocation.
const MAX_BITS: u32 = 4;

/// Every row of x [R, M] sorted ascending.
pub fn sort_rows(t: &mut Tape, x: Var) -> Var {
    let s = t.shape(x).to_vec();
    assert!(s.len() == 2, "sort_rows takes [R, M], got {s:?}");
    let p = s[1].next_power_of_two();
    assert!(s[0] * p < 1 << 32, "sort_rows: {s:?} too large");
    let sorted = t.push(SortRows, &[x], &[s[0], p]);
    slice(t, sorted, 1, 0, s[1])
}

/// Rows of x [R, M] sorted, padded with +inf to [R, P], P the next power of two of M.
struct SortRows;

impl Op for SortRows {
    fn name(&self) -> &'static str {
        "sort_rows"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = inputs[0];
        let (r, m) = (x.shape[0], x.shape[1]);
        let p = m.next_power_of_two();
        let mut data = Vec::with_capacity(r * p);
        for row in x.data.chunks(m.max(1)).take(r) {
            let mut v = row.to_vec();
            v.sort_by(f64::total_cmp);
            v.resize(p, f64::INFINITY);
            data.extend(v);
        }
        CpuTensor::new(&[r, p], data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let (m, p) = (inputs[0].shape()[1], out.shape()[1]);
        let n = out.numel();
        let ctx = rec.context();
        let pad = SortPadPush {
            n: (n as u32).into(),
            cols_out: (p as u32).into(),
            cols_in: (m as u32).into(),
            stride_in: (m as u32).into(),
            offset: Default::default(),
        };
        // The passes: (k, lo, bits) per dispatch.
        let mut passes = Vec::new();
        let mut k = 2;
        while k <= p {
            // Steps with strides 2^top down to 1, top = log2(k) - 1, in groups of MAX_BITS.
            let mut top = k.trailing_zeros() as i32 - 1;
            while top >= 0 {
                let bits = MAX_BITS.min(top as u32 + 1);
                let lo = top as u32 + 1 - bits;
                passes.push((k, lo, bits));
                top -= bits as i32;
            }
            k *= 2;
        }
        // Ping-pong between `out` and a scratch buffer, never in place (see the module
        // header), starting where an even count of passes ends in `out`.
        let Some(scratch) = rec.tensor("scratch of the sort", out.shape()) else {
            return;
        };
        let (mut src, mut dst) = if passes.len() % 2 == 0 {
            (out, &scratch)
        } else {
            (&scratch, out)
        };
        dispatch_items(
            rec,
            &ctx.kernels().sort_pad,
            &[read(inputs[0].buffer()), write(src.buffer())],
            n,
            |offset| SortPadPush { offset, ..pad },
        );
        for (k, lo, bits) in passes {
            let push = BitonicPush {
                n: (n as u32).into(),
                p: (p as u32).into(),
                k: (k as u32).into(),
                lo: lo.into(),
                offset: Default::default(),
            };
            let kernels = ctx.kernels();
            let kernel = match bits {
                1 => &kernels.bitonic_1,
                2 => &kernels.bitonic_2,
                3 => &kernels.bitonic_3,
                _ => &kernels.bitonic_4,
            };
            dispatch_items(
                rec,
                kernel,
                &[read(src.buffer()), write(dst.buffer())],
                n >> bits,
                |offset| BitonicPush { offset, ..push },
            );
            std::mem::swap(&mut src, &mut dst);
        }
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Metric only (see the module header): no gradient flows through the sort.
        vec![None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{context, values};

    fn check(ctx: &crate::vk::Context, r: usize, m: usize, data: Vec<f32>) {
        let mut t = Tape::new();
        let x = t.leaf(&[r, m], false);
        let y = sort_rows(&mut t, x);
        let xv = CpuTensor::from_f32(&[r, m], &data);
        let want = &t.eval_cpu(&[y], &[(x, &xv)])[0];
        let xt = Tensor::from_cpu(ctx, &xv).unwrap();
        let got = &t.eval(ctx, &[y], &[(x, &xt)]).unwrap()[0];
        // A permutation of each row: exactly the reference.
        assert_eq!(got, &want.to_f32(), "[{r}, {m}]");
    }

    #[test]
    fn sort_matches_cpu_on_odd_and_power_of_two_sizes() {
        let ctx = context();
        for (i, (r, m)) in [
            (1, 1),
            (3, 2),
            (5, 13),
            (7, 37),
            (2, 64),
            (3, 1000),
            (1, 4096),
        ]
        .into_iter()
        .enumerate()
        {
            check(&ctx, r, m, values(r * m, 100 + i as u64));
        }
        // Many ties, and values of both signs around them.
        let ties: Vec<f32> = values(5 * 77, 9).iter().map(|v| v.round()).collect();
        check(&ctx, 5, 77, ties);
        // More items than 65535 workgroups of 64 take in one pass (see `dispatch_items`).
        check(&ctx, 129, 32768, values(129 * 32768, 3));
    }
}
