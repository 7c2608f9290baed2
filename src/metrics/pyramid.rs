//! Laplacian pyramid of image batches, the multi-scale part of the sliced Wasserstein distance.
//!
//! The filter is the standard 5-tap binomial Gaussian b = [1, 4, 6, 4, 1] / 16, applied in
//! both axes (the 5x5 kernel b bᵀ), with mirror boundaries (index -1 reads 1, index S reads
//! S - 2: scipy.ndimage's 'mirror', OpenCV's default), as Karras et al.'s reference does
//! (their `pyr_down`/`pyr_up` match `cv2.pyrDown`/`cv2.pyrUp`). Each is one small shader that
//! applies all 25 taps per output; composing the existing resampling ops was not an option,
//! since StyleGAN2's `downsample` is a different (4-tap, replicating) filter.
//!
//! On planes x [H, W] (any leading axes):
//! - `pyr_down(x)[y, x] = sum_{i,j in -2..=2} b_i b_j x[m(2y + i), m(2x + j)]`, of size
//!   ceil(H/2) x ceil(W/2);
//! - `up(d)` for a target H x W: u[Y, X] = d[Y/2, X/2] where Y and X are both even, else 0;
//!   `up(d)[y, x] = 4 sum_{i,j} b_i b_j u[m(y + i), m(x + j)]` (the 4 restores the mean that the
//!   zeros took out). For even sizes this is exactly `cv2.pyrUp`; odd sizes extend it the
//!   natural way (the last even row or column is the last sample of d);
//! - `laplacian_level(x, d) = x - up(d)` with d = pyr_down(x).
//!
//! `laplacian_pyramid(x, levels)` = [x - up(g1), g1 - up(g2), ..., g_{L-1}] with
//! g_{l+1} = pyr_down(g_l): all levels but the last are band-pass, the last is the Gaussian
//! residual, as in the reference. Sizes must be at least 3 (the mirror reaches two pixels).
//!
//! These ops exist for a metric that is never differentiated: their backward gives no gradient
//! (they are linear, so one could be written, but nothing needs it).

use super::dispatch_items;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::{PyramidPush, U32};
use crate::vk::{read, write};

const B: [f64; 5] = [1.0, 4.0, 6.0, 4.0, 1.0];

fn mirror(i: isize, size: usize) -> usize {
    let s = size as isize;
    (if i < 0 {
        -i
    } else if i >= s {
        2 * s - 2 - i
    } else {
        i
    }) as usize
}

fn half(s: usize) -> usize {
    s.div_ceil(2)
}

/// The push block of both pyramid kernels for the slice from item `offset`: n, the input
/// plane's H and W, and their halves.
fn plane_push(shape: &[usize], n: usize) -> impl Fn(U32) -> PyramidPush {
    let (_, h, w) = planes(shape);
    let u = |v: usize| U32::from(v as u32);
    let push = PyramidPush {
        n: u(n),
        H: u(h),
        W: u(w),
        h: u(half(h)),
        w: u(half(w)),
        offset: U32::default(),
    };
    move |offset: U32| PyramidPush { offset, ..push }
}

fn planes(shape: &[usize]) -> (usize, usize, usize) {
    let r = shape.len();
    assert!(r >= 2, "pyramid ops take [.., H, W], got {shape:?}");
    let (h, w) = (shape[r - 2], shape[r - 1]);
    assert!(
        h >= 3 && w >= 3,
        "pyramid ops need H, W >= 3, got {shape:?}"
    );
    (shape[..r - 2].iter().product(), h, w)
}

/// One Gaussian pyramid step: blur with the 5x5 binomial filter and keep even positions.
pub fn pyr_down(t: &mut Tape, x: Var) -> Var {
    let shape = t.shape(x).to_vec();
    planes(&shape);
    let r = shape.len();
    let mut out = shape.clone();
    out[r - 2] = half(shape[r - 2]);
    out[r - 1] = half(shape[r - 1]);
    t.push(PyrDown, &[x], &out)
}

/// `x - up(d)`: the band-pass level of `x` given its next Gaussian level `d = pyr_down(x)`.
pub fn laplacian_level(t: &mut Tape, x: Var, d: Var) -> Var {
    let (xs, ds) = (t.shape(x).to_vec(), t.shape(d).to_vec());
    let r = xs.len();
    planes(&xs);
    assert!(
        ds.len() == r
            && ds[..r - 2] == xs[..r - 2]
            && ds[r - 2..] == [half(xs[r - 2]), half(xs[r - 1])],
        "laplacian_level: d {ds:?} is not the next level of x {xs:?}"
    );
    t.push(PyrUpSub, &[x, d], &xs)
}

/// `levels` levels: band-pass levels from full resolution down, then the Gaussian residual.
pub fn laplacian_pyramid(t: &mut Tape, x: Var, levels: usize) -> Vec<Var> {
    assert!(levels >= 1, "a pyramid has at least one level");
    let mut out = Vec::with_capacity(levels);
    let mut g = x;
    for _ in 1..levels {
        let next = pyr_down(t, g);
        out.push(laplacian_level(t, g, next));
        g = next;
    }
    out.push(g);
    out
}

struct PyrDown;

impl Op for PyrDown {
    fn name(&self) -> &'static str {
        "pyr_down"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = inputs[0];
        let (p, h, w) = planes(&x.shape);
        let (oh, ow) = (half(h), half(w));
        let mut data = Vec::with_capacity(p * oh * ow);
        for plane in 0..p {
            let at = |r: usize, c: usize| x.data[(plane * h + r) * w + c];
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = 0.0;
                    for (i, bi) in B.iter().enumerate() {
                        let r = mirror(2 * y as isize + i as isize - 2, h);
                        for (j, bj) in B.iter().enumerate() {
                            let c = mirror(2 * xx as isize + j as isize - 2, w);
                            acc += bi * bj * at(r, c);
                        }
                    }
                    data.push(acc / 256.0);
                }
            }
        }
        let mut shape = x.shape.clone();
        let r = shape.len();
        shape[r - 2] = oh;
        shape[r - 1] = ow;
        CpuTensor::new(&shape, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let push = plane_push(inputs[0].shape(), n);
        let ctx = rec.context();
        dispatch_items(
            rec,
            &ctx.kernels().pyr_down,
            &[read(inputs[0].buffer()), write(out.buffer())],
            n,
            push,
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Metric only (see the module header): no gradient flows through the pyramid.
        vec![None]
    }
}

struct PyrUpSub;

impl Op for PyrUpSub {
    fn name(&self) -> &'static str {
        "laplacian_level"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, d) = (inputs[0], inputs[1]);
        let (p, h, w) = planes(&x.shape);
        let (dh, dw) = (half(h), half(w));
        let mut data = Vec::with_capacity(p * h * w);
        for plane in 0..p {
            // The zero-stuffed image u of size h x w.
            let u = |r: usize, c: usize| {
                if r % 2 == 0 && c % 2 == 0 {
                    d.data[(plane * dh + r / 2) * dw + c / 2]
                } else {
                    0.0
                }
            };
            for y in 0..h {
                for xx in 0..w {
                    let mut acc = 0.0;
                    for (i, bi) in B.iter().enumerate() {
                        let r = mirror(y as isize + i as isize - 2, h);
                        for (j, bj) in B.iter().enumerate() {
                            let c = mirror(xx as isize + j as isize - 2, w);
                            acc += bi * bj * u(r, c);
                        }
                    }
                    data.push(x.data[(plane * h + y) * w + xx] - 4.0 * acc / 256.0);
                }
            }
        }
        CpuTensor::new(&x.shape, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let push = plane_push(inputs[0].shape(), n);
        let ctx = rec.context();
        dispatch_items(
            rec,
            &ctx.kernels().pyr_up_sub,
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                write(out.buffer()),
            ],
            n,
            push,
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Metric only (see the module header): no gradient flows through the pyramid.
        vec![None, None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, context, random};

    /// Device against the CPU reference for every level of a pyramid of an odd-sized batch.
    #[test]
    fn pyramid_matches_cpu_on_odd_sizes() {
        let ctx = context();
        for (shape, levels) in [
            (vec![2, 3, 13, 11], 3),
            (vec![1, 3, 7, 9], 2),
            (vec![3, 1, 16, 16], 3),
            (vec![1, 2, 3, 5], 2),
        ] {
            let mut t = Tape::new();
            let x = t.leaf(&shape, false);
            let pyr = laplacian_pyramid(&mut t, x, levels);
            let xv = random(&shape, 7);
            let want = t.eval_cpu(&pyr, &[(x, &xv)]);
            let xt = Tensor::from_cpu(&ctx, &xv).unwrap();
            let got = t.eval(&ctx, &pyr, &[(x, &xt)]).unwrap();
            for (l, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_close(g, &w.data, 1e-6, 1e-5, &format!("{shape:?} level {l}"));
            }
        }
    }

    /// What the reference's `pyr_down` (scipy convolve, mode 'mirror', then [::2, ::2]) gives
    /// on a small even image, worked through independently: a constant stays constant, and a
    /// single impulse at (0, 0) spreads as b_i b_j / 256 with the mirror folding taps.
    #[test]
    fn pyr_down_keeps_constants_and_folds_edges() {
        let mut t = Tape::new();
        let x = t.leaf(&[1, 1, 4, 4], false);
        let d = pyr_down(&mut t, x);
        let ones = CpuTensor::full(&[1, 1, 4, 4], 1.0);
        let got = &t.eval_cpu(&[d], &[(x, &ones)])[0];
        assert!(got.data.iter().all(|&v| (v - 1.0).abs() < 1e-12));
        let mut imp = CpuTensor::full(&[1, 1, 4, 4], 0.0);
        imp.data[0] = 1.0;
        let got = &t.eval_cpu(&[d], &[(x, &imp)])[0];
        // Output (0, 0) sees input 0 at tap 0 only: 6 * 6 / 256. Output (0, 1) samples
        // column 2, whose taps -2 reach column 0 once: 6 * 1 / 256.
        assert!((got.data[0] - 36.0 / 256.0).abs() < 1e-12);
        assert!((got.data[1] - 6.0 / 256.0).abs() < 1e-12);
        assert!((got.data[3] - 1.0 / 256.0).abs() < 1e-12);
    }

    /// up(down(x)) of a constant is the constant, so its band-pass level is zero.
    #[test]
    fn laplacian_of_constant_is_zero() {
        for shape in [[1, 1, 8, 8], [1, 1, 9, 7]] {
            let mut t = Tape::new();
            let x = t.leaf(&shape, false);
            let pyr = laplacian_pyramid(&mut t, x, 2);
            let c = CpuTensor::full(&shape, 0.75);
            let got = t.eval_cpu(&pyr, &[(x, &c)]);
            assert!(got[0].data.iter().all(|v| v.abs() < 1e-12), "{shape:?}");
            assert!(got[1].data.iter().all(|v| (v - 0.75).abs() < 1e-12));
        }
    }
}
