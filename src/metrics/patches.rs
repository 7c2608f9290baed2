//! Random 7x7 neighbourhoods of image batches: the descriptors of the sliced Wasserstein
//! distance.
//!
//! `patches(x, per_image, key)` of x [N, C, H, W] is [N * P, C * 49] (P = `per_image`): row
//! n * P + p is image n's patch p, columns ordered (c, dy, dx). The patch's top-left corner is
//! (y0, x0) = (mulhi(w0, H - 6), mulhi(w1, W - 6)) where
//! w = Philox4x32-10(counter [n, p, seed_hi, 0], key [seed_lo, stream]) and
//! mulhi(a, r) = (a r) >> 32: uniform (up to 2^-32) over the H - 6 rows and W - 6 columns where
//! a patch fits, as the reference's `randint(3, S - 3)` centres. Positions depend only on
//! (n, p, seed, stream) and the level's size, never on the pixels, so two image sets with the
//! same key are sampled at the same places: identical sets give identical descriptors.
//!
//! A gather for a metric that is never differentiated: the backward gives no gradient.

use super::dispatch_items;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::ops::philox4x32_10;
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::PatchesPush;
use crate::vk::{read, write};

/// Patch side.
pub const PATCH: usize = 7;

/// Where patches are drawn from: Philox key and counter words (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchKey {
    pub seed: u64,
    pub stream: u32,
}

/// Random 7x7 patches of each image of x [N, C, H, W], as rows [N * per_image, C * 49].
pub fn patches(t: &mut Tape, x: Var, per_image: usize, key: PatchKey) -> Var {
    let s = t.shape(x).to_vec();
    assert!(
        s.len() == 4 && s[2] >= PATCH && s[3] >= PATCH,
        "patches take [N, C, H, W] with H, W >= {PATCH}, got {s:?}"
    );
    assert!(per_image > 0, "patches: per_image must be positive");
    assert!(
        s[0] * per_image * s[1] * PATCH * PATCH < 1 << 32,
        "patches: output too large"
    );
    let out = [s[0] * per_image, s[1] * PATCH * PATCH];
    t.push(
        Patches {
            per_image,
            key,
            shape: s,
        },
        &[x],
        &out,
    )
}

/// Top-left corner of patch `p` of image `n` in an `h` x `w` image.
pub fn patch_corner(n: usize, p: usize, h: usize, w: usize, key: PatchKey) -> (usize, usize) {
    let r = philox4x32_10(
        [n as u32, p as u32, (key.seed >> 32) as u32, 0],
        [key.seed as u32, key.stream],
    );
    let mulhi = |a: u32, range: usize| ((a as u64 * range as u64) >> 32) as usize;
    (mulhi(r[0], h - (PATCH - 1)), mulhi(r[1], w - (PATCH - 1)))
}

struct Patches {
    per_image: usize,
    key: PatchKey,
    shape: Vec<usize>,
}

impl Op for Patches {
    fn name(&self) -> &'static str {
        "patches"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let x = inputs[0];
        let [n, c, h, w] = self.shape[..] else {
            unreachable!()
        };
        let mut data = Vec::with_capacity(n * self.per_image * c * PATCH * PATCH);
        for img in 0..n {
            for p in 0..self.per_image {
                let (y0, x0) = patch_corner(img, p, h, w, self.key);
                for ch in 0..c {
                    for dy in 0..PATCH {
                        for dx in 0..PATCH {
                            data.push(x.data[((img * c + ch) * h + y0 + dy) * w + x0 + dx]);
                        }
                    }
                }
            }
        }
        CpuTensor::new(&[n * self.per_image, c * PATCH * PATCH], data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let [n, c, h, w] = self.shape[..] else {
            unreachable!()
        };
        let count = n * self.per_image * c;
        let push = PatchesPush {
            n: (count as u32).into(),
            P: (self.per_image as u32).into(),
            C: (c as u32).into(),
            H: (h as u32).into(),
            W: (w as u32).into(),
            seed_lo: (self.key.seed as u32).into(),
            seed_hi: ((self.key.seed >> 32) as u32).into(),
            stream: self.key.stream.into(),
            offset: Default::default(),
        };
        let ctx = rec.context();
        dispatch_items(
            rec,
            &ctx.kernels().patches,
            &[read(inputs[0].buffer()), write(out.buffer())],
            count,
            |offset| PatchesPush { offset, ..push },
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        // Metric only (see the module header): no gradient flows through the sampling.
        vec![None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{context, random};

    #[test]
    fn patches_match_cpu_exactly_on_odd_sizes() {
        let ctx = context();
        for (shape, per) in [([3, 3, 11, 9], 5), ([2, 1, 7, 7], 3), ([1, 2, 8, 13], 17)] {
            let key = PatchKey {
                seed: 0x1234_5678_9abc_def0,
                stream: 3,
            };
            let mut t = Tape::new();
            let x = t.leaf(&shape, false);
            let y = patches(&mut t, x, per, key);
            let xv = random(&shape, 11);
            let want = &t.eval_cpu(&[y], &[(x, &xv)])[0];
            let xt = Tensor::from_cpu(&ctx, &xv).unwrap();
            let got = &t.eval(&ctx, &[y], &[(x, &xt)]).unwrap()[0];
            // A gather: bit for bit.
            assert_eq!(got, &want.to_f32(), "{shape:?}");
        }
    }

    /// Corners cover every position where a patch fits, and only those.
    #[test]
    fn corners_cover_the_valid_range() {
        let key = PatchKey { seed: 5, stream: 0 };
        let (h, w) = (12, 9);
        let mut seen = vec![false; (h - 6) * (w - 6)];
        for p in 0..2000 {
            let (y, x) = patch_corner(p % 7, p, h, w, key);
            assert!(y + PATCH <= h && x + PATCH <= w);
            seen[y * (w - 6) + x] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
