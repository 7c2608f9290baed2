//! Support for the test suites (unit tests here and the integration tests under tests/): a
//! validated device context and the generic op check every op's tests run.
//!
//! `check_op` takes a function of some input tensors built from ops and checks, for random
//! inputs in [-2, 2]:
//! 1. forward: the device result against the f64 CPU reference;
//! 2. backward: the gradient of `<y, u>` (u a random cotangent), computed by the tape on the
//!    device, against the same gradient graph on the CPU;
//! 3. the CPU gradient against central finite differences of the CPU forward, in f64;
//! 4. double backward: the gradient of `h = sum_i <dy/dx_i, v_i>` with respect to the inputs
//!    and to u, on the device against the CPU, and on the CPU against finite differences of
//!    h (which is itself evaluated through the first gradient graph).

use crate::autograd::{Tape, Var};
use crate::ops;
use crate::tensor::{numel, CpuTensor, Tensor};
use crate::vk::{Context, ContextOptions, KernelFamily, LimitsMode};
use std::mem::ManuallyDrop;
use std::sync::{Mutex, MutexGuard};

/// The sizes of the smallest model the tests train (`tests/common/cli.rs`'s `TINY` flags):
/// 8x8 images, a few features, a step in milliseconds on lavapipe.
pub fn tiny_model() -> crate::nn::ModelConfig {
    crate::nn::ModelConfig {
        image_size: 8,
        d_latent: 8,
        mapping_layers: 1,
        g_features: 4,
        g_max_features: 8,
        d_features: 4,
        d_max_features: 8,
    }
}

/// A context on the test device with validation on; dropping it fails the test if the
/// validation layer reported anything.
pub struct ValidatedContext {
    ctx: ManuallyDrop<Context>,
}

/// Held while a test creates its instance and device, and while it drops its context, which
/// destroys them where the context is the last clone (tests make it before their tensors, so
/// it is dropped after them). The test harness runs tests on parallel threads, each with its
/// own device, and SwiftShader is reported to crash
/// sporadically when devices are created and destroyed concurrently (gfx-rs/wgpu issues
/// #3944 and #10010); its op-test process has died twice of a SIGSEGV at address 0 inside
/// SwiftShader (README, Performance). The Vulkan spec allows the concurrency; this only keeps
/// the suite off a driver's untested path.
static DEVICE_LIFETIMES: Mutex<()> = Mutex::new(());

fn device_lifetime_lock() -> MutexGuard<'static, ()> {
    // A test that panicked while holding it left no state behind to distrust.
    DEVICE_LIFETIMES.lock().unwrap_or_else(|e| e.into_inner())
}

impl std::ops::Deref for ValidatedContext {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.ctx
    }
}

impl Drop for ValidatedContext {
    fn drop(&mut self) {
        let messages = self.ctx.take_validation_messages();
        {
            let _lifetime = device_lifetime_lock();
            // SAFETY: the context is dropped here once and never used again.
            unsafe { ManuallyDrop::drop(&mut self.ctx) };
        }
        if !messages.is_empty() && !std::thread::panicking() {
            panic!("Vulkan validation reported:\n{}", messages.join("\n"));
        }
    }
}

/// The device tests run on (`VKGAN_TEST_DEVICE=N` to choose, `VKGAN_LIMITS=minimum` for the
/// Vulkan 1.1 minimum limits, `VKGAN_KERNELS=cpu|gpu` to force a kernel family), validation
/// required.
pub fn context() -> ValidatedContext {
    context_with_limits(LimitsMode::from_env().unwrap_or_else(|e| panic!("{e}")))
}

/// The test device (as `context`) keeping to the limits of `limits`.
pub fn context_with_limits(limits: LimitsMode) -> ValidatedContext {
    context_with(
        limits,
        KernelFamily::from_env().unwrap_or_else(|e| panic!("{e}")),
    )
}

/// The test device (as `context`) keeping to `limits` and recording `kernels` (`None`: the
/// device's family).
pub fn context_with(limits: LimitsMode, kernels: Option<KernelFamily>) -> ValidatedContext {
    let device = std::env::var("VKGAN_TEST_DEVICE")
        .ok()
        .map(|d| d.parse().expect("VKGAN_TEST_DEVICE is a device index"));
    let created = {
        let _lifetime = device_lifetime_lock();
        Context::new(&ContextOptions {
            device,
            validate: true,
            limits,
            kernels,
        })
    };
    let ctx = created
        .unwrap_or_else(|e| panic!("tests need a Vulkan device with validation layers: {e}"));
    assert!(ctx.validating());
    ValidatedContext {
        ctx: ManuallyDrop::new(ctx),
    }
}

/// The kernel families a test of a fused convolution records: the one `VKGAN_KERNELS` forces;
/// unforced, both on llvmpipe, where either can be the default, and elsewhere the GPU family
/// alone, the one any other device runs. (The CPU family's register tiles are tuned to
/// llvmpipe's compiler; SwiftShader's JIT takes minutes and 17 GB of memory to build them,
/// which the suite cannot afford; see README, Devices.)
pub fn convolution_families() -> Vec<KernelFamily> {
    if let Some(forced) = KernelFamily::from_env().unwrap_or_else(|e| panic!("{e}")) {
        return vec![forced];
    }
    if context().info().llvmpipe {
        vec![KernelFamily::Cpu, KernelFamily::Gpu]
    } else {
        vec![KernelFamily::Gpu]
    }
}

/// For a fused op's tests, on `family`'s kernels: `build` makes (fused, unfused) from leaves
/// of `shapes`, leaf k holding `values(.., seed + k)`. Returns the kernels the fused output
/// alone records, in dispatch order, and both outputs' values.
pub fn fused_and_unfused(
    family: KernelFamily,
    shapes: &[&[usize]],
    seed: u64,
    build: impl FnOnce(&mut Tape, &[Var]) -> (Var, Var),
) -> (Vec<&'static str>, Vec<f32>, Vec<f32>) {
    let ctx = context_with(
        LimitsMode::from_env().unwrap_or_else(|e| panic!("{e}")),
        Some(family),
    );
    let mut t = Tape::new();
    let leaves: Vec<Var> = shapes.iter().map(|s| t.leaf(s, false)).collect();
    let (fused, unfused) = build(&mut t, &leaves);
    let tensors: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, s)| Tensor::from_f32(&ctx, s, &values(numel(s), seed + k as u64)).unwrap())
        .collect();
    let bound: Vec<(Var, &Tensor)> = leaves.iter().copied().zip(&tensors).collect();
    let names = t
        .compile(&ctx, &[fused], &bound)
        .unwrap()
        .graph()
        .kernel_names();
    let mut got = t.eval(&ctx, &[fused, unfused], &bound).unwrap();
    let unfused_values = got.pop().unwrap();
    (names, got.pop().unwrap(), unfused_values)
}

/// Deterministic values in [-2, 2].
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0) as f32
        })
        .collect()
}

/// A random tensor in [-2, 2] (f32-representable values, so device and CPU see the same).
pub fn random(shape: &[usize], seed: u64) -> CpuTensor {
    CpuTensor::from_f32(shape, &values(numel(shape), seed))
}

/// `|g - c| <= atol * max(1, max|c|) + rtol |c|` everywhere, else a panic naming the worst
/// element.
/// The kernels, in dispatch order, of the graph that computes `build` from leaves of these
/// shapes (for tests of which kernel an op picks).
pub fn recorded_kernels(
    shapes: &[&[usize]],
    build: impl FnOnce(&mut Tape, &[Var]) -> Var,
) -> Vec<&'static str> {
    let ctx = context();
    let mut t = Tape::new();
    let leaves: Vec<Var> = shapes.iter().map(|s| t.leaf(s, false)).collect();
    let y = build(&mut t, &leaves);
    let tensors: Vec<Tensor> = shapes
        .iter()
        .map(|s| Tensor::zeros(&ctx, s).unwrap())
        .collect();
    let bound: Vec<(Var, &Tensor)> = leaves.iter().copied().zip(&tensors).collect();
    let program = t.compile(&ctx, &[y], &bound).unwrap();
    program.graph().kernel_names()
}

pub fn assert_close(got: &[f32], want: &[f64], atol: f64, rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &c)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        // A non-finite value counts as infinitely wrong.
        let excess = if g.is_finite() {
            (g - c).abs() - (atol * scale + rtol * c.abs())
        } else {
            f64::INFINITY
        };
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: element {i} of {} is {} but the reference is {} (atol {atol} x {scale:.3}, \
             rtol {rtol})",
            got.len(),
            got[i],
            want[i]
        );
    }
}

type Build = Box<dyn Fn(&mut Tape, &[Var]) -> Var>;

/// A scalar function of bound leaf values, evaluated on the CPU.
type LeafFn<'a> = dyn Fn(&[(Var, &CpuTensor)]) -> f64 + 'a;

/// One case for `check_op`.
pub struct OpCase {
    name: String,
    inputs: Vec<CpuTensor>,
    differentiable: Vec<bool>,
    build: Build,
    atol: f64,
    rtol: f64,
    /// The kernel family the device checks record; None: `context()`'s.
    family: Option<KernelFamily>,
}

/// Finite-difference tolerance, relative to the largest gradient magnitude.
const FD_TOL: f64 = 1e-6;

impl OpCase {
    /// Random inputs of `shapes`, all differentiable.
    pub fn new(
        name: &str,
        shapes: &[&[usize]],
        build: impl Fn(&mut Tape, &[Var]) -> Var + 'static,
    ) -> Self {
        let seed = name
            .bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        OpCase {
            name: format!("{name} {shapes:?}"),
            inputs: shapes
                .iter()
                .enumerate()
                .map(|(i, s)| random(s, seed + i as u64 * 1000 + numel(s) as u64))
                .collect(),
            differentiable: vec![true; shapes.len()],
            build: Box::new(build),
            atol: 1e-5,
            rtol: 1e-4,
            family: None,
        }
    }

    /// Records the device checks with `family`'s kernels whatever the device's family.
    pub fn kernels(mut self, family: KernelFamily) -> Self {
        self.name = format!("{} ({family:?} kernels)", self.name);
        self.family = Some(family);
        self
    }

    /// Device-vs-CPU tolerance (`atol` is scaled by the reference's largest magnitude).
    pub fn tolerance(mut self, atol: f64, rtol: f64) -> Self {
        self.atol = atol;
        self.rtol = rtol;
        self
    }

    /// Replaces input `i`'s values.
    pub fn input(mut self, i: usize, value: CpuTensor) -> Self {
        assert_eq!(value.shape, self.inputs[i].shape, "input {i} shape");
        self.inputs[i] = value;
        self
    }

    /// Input `i` takes no gradient (an index, a selector, a constant).
    pub fn constant(mut self, i: usize) -> Self {
        self.differentiable[i] = false;
        self
    }
}

/// Runs all four checks of the module header on `case`.
pub fn check_op(case: OpCase) {
    let mut t = Tape::new();
    let g = CheckGraph::build(&mut t, &case);
    let cpu_bindings: Vec<(Var, &CpuTensor)> = g.cpu_leaves.iter().map(|(v, c)| (*v, c)).collect();
    check_device(&t, &case, &g, &cpu_bindings);
    check_first_order_fd(&t, &case, &g, &cpu_bindings);
    check_second_order_fd(&t, &case, &g, &cpu_bindings);
}

/// The tape `check_op` evaluates: y = op(xs), its first gradient against the cotangent u, and
/// the gradient of h = sum_i <dy/dx_i, v_i> with respect to the inputs and u.
struct CheckGraph {
    xs: Vec<Var>,
    y: Var,
    u: Var,
    /// The differentiable inputs.
    diff: Vec<Var>,
    first: Vec<Option<Var>>,
    h: Option<Var>,
    /// `diff` and then u.
    second_wrt: Vec<Var>,
    second: Vec<Option<Var>>,
    /// Values of xs, then u, then the v_i.
    cpu_leaves: Vec<(Var, CpuTensor)>,
}

impl CheckGraph {
    fn build(t: &mut Tape, case: &OpCase) -> Self {
        let xs: Vec<Var> = case
            .inputs
            .iter()
            .zip(&case.differentiable)
            .map(|(x, &d)| t.leaf(&x.shape, d))
            .collect();
        let y = (case.build)(t, &xs);
        let y_shape = t.shape(y).to_vec();
        let u_value = random(&y_shape, 99);
        let u = t.leaf(&y_shape, true);
        let diff: Vec<Var> = xs
            .iter()
            .zip(&case.differentiable)
            .filter(|(_, &d)| d)
            .map(|(&x, _)| x)
            .collect();
        let first = t.grad(&[y], &diff, Some(&[u]), true);

        // h = sum_i <g_i, v_i> over the inputs that got a gradient.
        let mut v_leaves = Vec::new();
        let mut h = None;
        for (k, g) in first.iter().enumerate() {
            if let Some(g) = *g {
                let shape = t.shape(g).to_vec();
                let v = t.leaf(&shape, false);
                v_leaves.push((v, random(&shape, 500 + k as u64)));
                let gv = ops::mul(t, g, v);
                let s = ops::sum_all(t, gv);
                h = Some(match h {
                    Some(acc) => ops::add(t, acc, s),
                    None => s,
                });
            }
        }
        let mut second_wrt = diff.clone();
        second_wrt.push(u);
        let second = match h {
            Some(h) => t.grad(&[h], &second_wrt, None, false),
            None => Vec::new(),
        };
        let mut cpu_leaves: Vec<(Var, CpuTensor)> =
            xs.iter().copied().zip(case.inputs.clone()).collect();
        cpu_leaves.push((u, u_value));
        cpu_leaves.extend(v_leaves);
        CheckGraph {
            xs,
            y,
            u,
            diff,
            first,
            h,
            second_wrt,
            second,
            cpu_leaves,
        }
    }
}

/// Everything on the device in one program, against the CPU.
fn check_device(t: &Tape, case: &OpCase, g: &CheckGraph, cpu_bindings: &[(Var, &CpuTensor)]) {
    let ctx = match case.family {
        Some(family) => context_with(
            LimitsMode::from_env().unwrap_or_else(|e| panic!("{e}")),
            Some(family),
        ),
        None => context(),
    };
    let mut outputs = vec![g.y];
    outputs.extend(g.first.iter().flatten());
    outputs.extend(g.second.iter().flatten());
    let device_leaves: Vec<(Var, Tensor)> = g
        .cpu_leaves
        .iter()
        .map(|(v, c)| (*v, Tensor::from_cpu(&ctx, c).unwrap()))
        .collect();
    let bindings: Vec<(Var, &Tensor)> = device_leaves.iter().map(|(v, t)| (*v, t)).collect();
    let gpu = t.eval(&ctx, &outputs, &bindings).unwrap();
    let cpu = t.eval_cpu(&outputs, cpu_bindings);
    let firsts = g.first.iter().flatten().count();
    for (k, (got, want)) in gpu.iter().zip(&cpu).enumerate() {
        let what = match k {
            0 => "forward".to_string(),
            k if k <= firsts => format!("gradient #{k}"),
            k => format!("second-order gradient #{}", k - firsts),
        };
        assert_close(
            got,
            &want.data,
            case.atol,
            case.rtol,
            &format!("{}: device {what}", case.name),
        );
    }
}

/// Values on the CPU of the gradients in `grads` (None where there is no gradient).
fn cpu_values(
    t: &Tape,
    grads: &[Option<Var>],
    cpu_bindings: &[(Var, &CpuTensor)],
) -> Vec<Option<CpuTensor>> {
    let present: Vec<Var> = grads.iter().flatten().copied().collect();
    let mut vals = t.eval_cpu(&present, cpu_bindings).into_iter();
    grads
        .iter()
        .map(|g| g.map(|_| vals.next().unwrap()))
        .collect()
}

/// Finite differences of F(x) = <y(x), u> against the CPU first gradient.
fn check_first_order_fd(
    t: &Tape,
    case: &OpCase,
    g: &CheckGraph,
    cpu_bindings: &[(Var, &CpuTensor)],
) {
    let u_value = &g.cpu_leaves[g.xs.len()].1;
    debug_assert!(g.cpu_leaves[g.xs.len()].0 == g.u);
    let f = |leaves: &[(Var, &CpuTensor)]| -> f64 {
        let out = t.eval_cpu(&[g.y], leaves);
        out[0]
            .data
            .iter()
            .zip(&u_value.data)
            .map(|(a, b)| a * b)
            .sum()
    };
    let first_cpu = cpu_values(t, &g.first, cpu_bindings);
    for (k, &x) in g.diff.iter().enumerate() {
        let slot = g.xs.iter().position(|&v| v == x).unwrap();
        let analytic = first_cpu[k].clone();
        check_fd(
            &case.name,
            "gradient",
            &g.cpu_leaves,
            slot,
            analytic,
            FD_TOL,
            &f,
        );
    }
}

/// Finite differences of h against the CPU second gradient (inputs, then u).
fn check_second_order_fd(
    t: &Tape,
    case: &OpCase,
    g: &CheckGraph,
    cpu_bindings: &[(Var, &CpuTensor)],
) {
    let Some(h) = g.h else {
        return;
    };
    let fh = |leaves: &[(Var, &CpuTensor)]| -> f64 { t.eval_cpu(&[h], leaves)[0].data[0] };
    let second_cpu = cpu_values(t, &g.second, cpu_bindings);
    for (k, &x) in g.second_wrt.iter().enumerate() {
        let slot = g.cpu_leaves.iter().position(|(v, _)| *v == x).unwrap();
        check_fd(
            &case.name,
            "second-order gradient",
            &g.cpu_leaves,
            slot,
            second_cpu[k].clone(),
            FD_TOL,
            &fh,
        );
    }
}

/// Central differences of `f` at a few elements of leaf `slot`, against `analytic` (None
/// means zero).
fn check_fd(
    name: &str,
    what: &str,
    leaves: &[(Var, CpuTensor)],
    slot: usize,
    analytic: Option<CpuTensor>,
    tol: f64,
    f: &LeafFn,
) {
    let n = leaves[slot].1.numel();
    let mut picks: Vec<usize> = vec![0, n - 1, n / 2, n / 3, (2 * n) / 3, (n * 7) / 11];
    picks.sort_unstable();
    picks.dedup();
    let scale = analytic
        .as_ref()
        .map_or(1.0, |a| a.data.iter().fold(1.0f64, |m, v| m.max(v.abs())));
    for j in picks {
        let eps = 1e-6 * leaves[slot].1.data[j].abs().max(1.0);
        let eval_at = |delta: f64| {
            let mut moved = leaves[slot].1.clone();
            moved.data[j] += delta;
            let bound: Vec<(Var, &CpuTensor)> = leaves
                .iter()
                .enumerate()
                .map(|(i, (v, c))| (*v, if i == slot { &moved } else { c }))
                .collect();
            f(&bound)
        };
        let numeric = (eval_at(eps) - eval_at(-eps)) / (2.0 * eps);
        let exact = analytic.as_ref().map_or(0.0, |a| a.data[j]);
        assert!(
            (numeric - exact).abs() <= tol * scale + 1e-6 * numeric.abs(),
            "{name}: {what} of leaf {slot} element {j}: tape {exact}, finite differences {numeric}"
        );
    }
}
