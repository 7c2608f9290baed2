//! Counter-based random fill: `random_uniform(shape, seed, stream, step)` in [0, 1) and
//! `random_normal(shape, seed, stream, step)` (mean 0, variance 1). Leaves of the gradient:
//! no inputs, so no backward.
//!
//! Every element is a pure function of (seed, stream, step, flat index), the same on every
//! device and on the host:
//! - element i belongs to block j = i / 4, lane l = i % 4; the block is
//!   `w = philox4x32_10(counter [j, step, 0, 0], key [seed, stream])` (Philox4x32-10, Salmon et
//!   al., SC 2011), so a tensor's first elements do not depend on its size;
//! - uniform: element i is `(w[l] >> 8) * 2^-24`, exact in f32;
//! - normal: lanes 0 and 1 are the Box-Muller pair of words (w[0], w[1]), lanes 2 and 3 that of
//!   (w[2], w[3]): `u1 = ((a >> 8) + 1) 2^-24` in (0, 1], angle `2 pi (b >> 8) / 2^24`,
//!   z = sqrt(-2 ln u1) (cos, sin)(angle). ln, sin and cos are polynomials evaluated in f32 with
//!   correctly rounded operations only (`shaders/common/philox.glsl` documents them), so the
//!   device reproduces the host's bits; sqrt may differ by an ulp or two on devices whose sqrt
//!   is not correctly rounded (Vulkan allows that), which bounds the disagreement by about
//!   5e-7 relative.
//!
//! seed, stream and step are 32-bit words, each either fixed when the op is built or a tape
//! `Scalar`, so that a compiled program draws fresh numbers when the host changes the step,
//! without recompiling. Uniform and normal draws with the same (seed, stream, step) reuse the
//! same words: give them different streams.

use super::dispatch_1d;
use crate::autograd::{CpuEnv, Op, Recording, Scalar, Tape, Var};
use crate::tensor::{numel, CpuTensor, Tensor};
use crate::vk::push::{RandomPush, U32};
use crate::vk::write;

/// A 32-bit word an op reads: fixed at build time, or a tape scalar changeable per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomArg {
    Fixed(u32),
    Scalar(Scalar),
}

impl From<u32> for RandomArg {
    fn from(v: u32) -> Self {
        RandomArg::Fixed(v)
    }
}

impl From<Scalar> for RandomArg {
    fn from(s: Scalar) -> Self {
        RandomArg::Scalar(s)
    }
}

impl RandomArg {
    fn push(self, rec: &Recording) -> U32 {
        match self {
            RandomArg::Fixed(v) => v.into(),
            RandomArg::Scalar(s) => rec.param(s).into(),
        }
    }

    fn value(self, env: &CpuEnv) -> u32 {
        match self {
            RandomArg::Fixed(v) => v,
            RandomArg::Scalar(s) => env.scalar(s),
        }
    }
}

/// Uniform samples in [0, 1) (multiples of 2^-24).
pub fn random_uniform(
    t: &mut Tape,
    shape: &[usize],
    seed: impl Into<RandomArg>,
    stream: impl Into<RandomArg>,
    step: impl Into<RandomArg>,
) -> Var {
    random(t, shape, false, seed.into(), stream.into(), step.into())
}

/// Standard normal samples.
pub fn random_normal(
    t: &mut Tape,
    shape: &[usize],
    seed: impl Into<RandomArg>,
    stream: impl Into<RandomArg>,
    step: impl Into<RandomArg>,
) -> Var {
    random(t, shape, true, seed.into(), stream.into(), step.into())
}

fn random(
    t: &mut Tape,
    shape: &[usize],
    normal: bool,
    seed: RandomArg,
    stream: RandomArg,
    step: RandomArg,
) -> Var {
    assert!(
        numel(shape) < (1usize << 32),
        "random fill of {shape:?}: more than 2^32 elements"
    );
    t.push(
        Random {
            normal,
            seed,
            stream,
            step,
            shape: shape.to_vec(),
        },
        &[],
        shape,
    )
}

struct Random {
    normal: bool,
    seed: RandomArg,
    stream: RandomArg,
    step: RandomArg,
    shape: Vec<usize>,
}

impl Op for Random {
    fn name(&self) -> &'static str {
        if self.normal {
            "random_normal"
        } else {
            "random_uniform"
        }
    }

    fn cpu(&self, _inputs: &[&CpuTensor], env: &CpuEnv) -> CpuTensor {
        let (seed, stream, step) = (
            self.seed.value(env),
            self.stream.value(env),
            self.step.value(env),
        );
        let data = random_fill_cpu(numel(&self.shape), self.normal, seed, stream, step);
        CpuTensor::from_f32(&self.shape, &data)
    }

    fn record(&self, rec: &mut Recording, _inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let push = RandomPush {
            n: (n as u32).into(),
            seed: self.seed.push(rec),
            stream: self.stream.push(rec),
            step: self.step.push(rec),
            normal: self.normal.into(),
        };
        let ctx = rec.context();
        dispatch_1d(
            rec,
            &ctx.kernels().random,
            &[write(out.buffer())],
            &push,
            n.div_ceil(4),
        );
    }

    fn backward(&self, _t: &mut Tape, _i: &[Var], _o: Var, _g: Var) -> Vec<Option<Var>> {
        Vec::new()
    }
}

/// The host's twin of the `random` shader: `n` uniform or normal samples, bit for bit what
/// the device writes (up to the sqrt caveat in the module header).
pub fn random_fill_cpu(n: usize, normal: bool, seed: u32, stream: u32, step: u32) -> Vec<f32> {
    (0..n)
        .step_by(4)
        .flat_map(|base| {
            let w = philox4x32_10([(base / 4) as u32, step, 0, 0], [seed, stream]);
            let r = if normal {
                let (a, b) = (normal_pair(w[0], w[1]), normal_pair(w[2], w[3]));
                [a[0], a[1], b[0], b[1]]
            } else {
                w.map(uniform)
            };
            r.into_iter().take(n - base)
        })
        .collect()
}

const PHILOX_M0: u32 = 0xD251_1F53;
const PHILOX_M1: u32 = 0xCD9E_8D57;
const PHILOX_W0: u32 = 0x9E37_79B9;
const PHILOX_W1: u32 = 0xBB67_AE85;

/// Philox4x32 with 10 rounds.
pub fn philox4x32_10(mut ctr: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            key[0] = key[0].wrapping_add(PHILOX_W0);
            key[1] = key[1].wrapping_add(PHILOX_W1);
        }
        let p0 = PHILOX_M0 as u64 * ctr[0] as u64;
        let p1 = PHILOX_M1 as u64 * ctr[2] as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        ctr = [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0];
    }
    ctr
}

fn f(bits: u32) -> f32 {
    f32::from_bits(bits)
}

/// 2^-24.
const TWO_M24: u32 = 0x3380_0000;

fn uniform(w: u32) -> f32 {
    (w >> 8) as f32 * f(TWO_M24)
}

/// ln(u) for u in (0, 1]; the same operations, in the same order, as `philox_ln`.
fn ln(u: f32) -> f32 {
    let b = u.to_bits();
    let mut e = (b >> 23) as i32 - 127;
    let mut m = f((b & 0x7F_FFFF) | 0x3F80_0000);
    if m > f(0x3FB5_04F3) {
        m *= 0.5;
        e += 1;
    }
    let x = m - 1.0;
    let mut h = f(0x3D8E_C753);
    for c in [
        0xBDEB_1ADE,
        0x3DEF_5141,
        0xBDFE_7A63,
        0x3E11_E90D,
        0xBE2A_ADA5,
        0x3E4C_CEAD,
        0xBE7F_FFFE,
        0x3EAA_AAAA,
    ] {
        h = h * x + f(c);
    }
    let x2 = x * x;
    let fe = e as f32;
    let mut y = x2 * x * h;
    y += fe * f(0x35BF_BE8E);
    y -= 0.5 * x2;
    let r = x + y;
    r + fe * f(0x3F31_7200)
}

/// The Box-Muller pair of `philox_normal_pair`.
fn normal_pair(a: u32, b: u32) -> [f32; 2] {
    let u1 = ((a >> 8) + 1) as f32 * f(TWO_M24);
    let radius = (-2.0 * ln(u1)).sqrt();
    let k = b >> 8;
    let q = k >> 22;
    let x = (k & 0x3F_FFFF) as f32 * f(0x3480_0000) - 0.5;
    let x2 = x * x;
    let mut s = f(0x3928_3C1A);
    for c in [0xBB99_6966, 0x3DA3_35E3, 0xBF25_5DE7, 0x3FC9_0FDB] {
        s = s * x2 + f(c);
    }
    s *= x;
    let mut c = f(0xB7D3_68F9);
    for k in [0x3A70_FA83, 0xBCAA_E9E4, 0x3E81_E0F8, 0xBF9D_E9E6] {
        c = c * x2 + f(k);
    }
    c = c * x2 + 1.0;
    let cq = (c - s) * f(0x3F35_04F3);
    let sq = (c + s) * f(0x3F35_04F3);
    let cs = match q {
        0 => [cq, sq],
        1 => [-sq, cq],
        2 => [-cq, -sq],
        _ => [sq, -cq],
    };
    [radius * cs[0], radius * cs[1]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, check_op, context, OpCase};

    #[test]
    fn philox_known_answers() {
        // The known-answer vectors published with Random123 (kat_vectors, philox4x32 10).
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD]
        );
        assert_eq!(
            philox4x32_10(
                [0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344],
                [0xA409_3822, 0x299F_31D0]
            ),
            [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1]
        );
    }

    #[test]
    fn host_transcendentals_are_accurate() {
        for k in (1u32..=1 << 24)
            .step_by(997)
            .chain([1, 2, 3, 1 << 23, 1 << 24])
        {
            let u = k as f32 * f(TWO_M24);
            let err = (ln(u) as f64 - (u as f64).ln()).abs();
            assert!(
                err <= 4e-7 * (u as f64).ln().abs().max(1.0),
                "ln({u}): {err}"
            );
        }
        // u1 = 1 gives radius 0; a fixed u1 isolates the angle.
        assert_eq!(normal_pair(0xFFFF_FF00, 0x1234_5600), [0.0, 0.0]);
        let u1 = ((0x4000_0000u32 >> 8) + 1) as f64 / (1u64 << 24) as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        for k in (0u32..1 << 24)
            .step_by(1013)
            .chain([0, 1 << 22, (1 << 24) - 1])
        {
            let angle = std::f64::consts::TAU * k as f64 / (1u64 << 24) as f64;
            let z = normal_pair(0x4000_0000, k << 8);
            assert!((z[0] as f64 - r * angle.cos()).abs() < 5e-7, "cos at {k}");
            assert!((z[1] as f64 - r * angle.sin()).abs() < 5e-7, "sin at {k}");
        }
    }

    #[test]
    fn random_ops_match_cpu() {
        for shape in [&[1][..], &[7], &[3, 5, 7], &[1009, 3]] {
            let s = shape.to_vec();
            check_op(
                OpCase::new("random_uniform", &[], move |t, _| {
                    let seed = t.scalar(1234);
                    let step = t.scalar(17);
                    random_uniform(t, &s, seed, 3, step)
                })
                .tolerance(0.0, 0.0),
            );
            let s = shape.to_vec();
            check_op(
                OpCase::new("random_normal", &[], move |t, _| {
                    let seed = t.scalar(99);
                    let step = t.scalar(5);
                    random_normal(t, &s, seed, 4, step)
                })
                .tolerance(2e-7, 1e-6),
            );
        }
    }

    /// Draws uniform and normal samples on the device, replaying one program for several
    /// (seed, stream, step) settings.
    fn device_draws(n: usize, settings: &[(u32, u32, u32)]) -> Vec<(Vec<f32>, Vec<f32>)> {
        let ctx = context();
        let mut t = Tape::new();
        let seed = t.scalar(0);
        let stream = t.scalar(0);
        let step = t.scalar(0);
        let u = random_uniform(&mut t, &[n], seed, stream, step);
        let z = random_normal(&mut t, &[n], seed, stream, step);
        let mut program = t.compile(&ctx, &[u, z], &[]).unwrap();
        settings
            .iter()
            .map(|&(a, b, c)| {
                program.set_scalar(seed, a);
                program.set_scalar(stream, b);
                program.set_scalar(step, c);
                program.run().unwrap();
                (program.read(u).unwrap(), program.read(z).unwrap())
            })
            .collect()
    }

    #[test]
    fn draws_match_host_and_replay_with_new_scalars() {
        let n = 100_003;
        let settings = [(7, 0, 1), (7, 0, 2), (7, 1, 1), (8, 0, 1), (7, 0, 1)];
        let draws = device_draws(n, &settings);
        let mut identical = 0usize;
        for (&(seed, stream, step), (u, z)) in settings.iter().zip(&draws) {
            let cu = random_fill_cpu(n, false, seed, stream, step);
            let cz = random_fill_cpu(n, true, seed, stream, step);
            assert_eq!(u, &cu, "uniform draws are bit-exact");
            let cz64: Vec<f64> = cz.iter().map(|&v| v as f64).collect();
            assert_close(z, &cz64, 2e-7, 1e-6, "normal draws against the host");
            identical += z.iter().zip(&cz).filter(|(a, b)| a == b).count();
        }
        println!(
            "normal draws bit-identical to the host: {identical} of {}",
            n * settings.len()
        );
        // The same settings give the same bits; any change of seed, stream or step changes
        // (nearly) every element.
        assert_eq!(draws[0], draws[4]);
        for k in 1..4 {
            let same_u = draws[0].0.iter().zip(&draws[k].0).filter(|(a, b)| a == b);
            let same_z = draws[0].1.iter().zip(&draws[k].1).filter(|(a, b)| a == b);
            assert!(same_u.count() < 50, "setting {k} repeats uniform draws");
            assert!(same_z.count() < 50, "setting {k} repeats normal draws");
        }
    }

    #[test]
    fn two_programs_draw_the_same_bits() {
        let a = device_draws(4097, &[(3, 9, 11)]);
        let b = device_draws(4097, &[(3, 9, 11)]);
        assert_eq!(a, b);
    }

    #[test]
    fn sample_moments() {
        let n = 100_000;
        let draws = device_draws(n, &[(2024, 0, 1)]);
        let (u, z) = &draws[0];
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let mean = |x: &[f32]| x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        let var = |x: &[f32], m: f64| {
            x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / (n - 1) as f64
        };
        // Standard errors: uniform mean 0.0009, variance 0.00026; normal mean 0.0032,
        // variance 0.0045. Bounds at about 5 standard errors.
        let (mu, mz) = (mean(u), mean(z));
        let (vu, vz) = (var(u, mu), var(z, mz));
        println!("uniform mean {mu:.5} var {vu:.5}; normal mean {mz:.5} var {vz:.5}");
        assert!((mu - 0.5).abs() < 0.0045, "uniform mean {mu}");
        assert!((vu - 1.0 / 12.0).abs() < 0.0013, "uniform variance {vu}");
        assert!(mz.abs() < 0.016, "normal mean {mz}");
        assert!((vz - 1.0).abs() < 0.023, "normal variance {vz}");
        // Tails: P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027.
        let frac = |c: f32| z.iter().filter(|v| v.abs() > c).count() as f64 / n as f64;
        assert!(
            (frac(2.0) - 0.0455).abs() < 0.0035,
            "P(|z|>2) = {}",
            frac(2.0)
        );
        assert!(
            (frac(3.0) - 0.0027).abs() < 0.0008,
            "P(|z|>3) = {}",
            frac(3.0)
        );
        // Each decile of the uniform draws holds a tenth of them.
        let mut bins = [0usize; 10];
        for &v in u {
            bins[(v * 10.0) as usize] += 1;
        }
        for (b, &c) in bins.iter().enumerate() {
            assert!((c as f64 - 10_000.0).abs() < 500.0, "decile {b}: {c}");
        }
    }
}
