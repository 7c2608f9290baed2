//! 2-D convolution (NCHW, stride 1, zero padding p, square kernel k in {1, 3}) and its two
//! gradients, each an op with its own backward so that everything differentiates again.
//!
//! Shapes: x [B,I,H,W], w [O,I,k,k], bias [O], y [B,O,Ho,Wo] with Ho = H+2p-k+1, Wo = W+2p-k+1.
//!
//! - `conv2d(x, w, bias, p)`:
//!   y[b,o,oy,ox] = bias[o] + sum_{i,ky,kx} x[b,i,oy+ky-p,ox+kx-p] w[o,i,ky,kx]
//!   (x is zero outside [0,H) x [0,W)).
//!   dx = conv2d_input_grad(g, w, p), dw = conv2d_weight_grad(x, g, p), dbias = sum(g, [0,2,3]).
//! - `conv2d_input_grad(g, w, p)` [B,I,H,W], the transposed convolution:
//!   dx[b,i,y,x] = sum_{o,ky,kx} g[b,o,y+p-ky,x+p-kx] w[o,i,ky,kx] (g zero outside [0,Ho)x[0,Wo)),
//!   which is a convolution of g with padding k-1-p and the kernel w'[i,o,ky,kx] =
//!   w[o,i,k-1-ky,k-1-kx]; the device runs it with the forward kernel.
//!   Bilinear in (g, w); for a cotangent G [B,I,H,W]:
//!   dg = conv2d(G, w, p), dw = conv2d_weight_grad(G, g, p).
//! - `conv2d_weight_grad(x, g, p)` [O,I,k,k]:
//!   dw[o,i,ky,kx] = sum_{b,oy,ox} g[b,o,oy,ox] x[b,i,oy+ky-p,ox+kx-p].
//!   Bilinear in (x, g); for a cotangent G [O,I,k,k]:
//!   dx = conv2d_input_grad(g, G, p), dg = conv2d(x, G, p).
//!
//! The three are one family under the pairing <G, conv2d(x, w)> (trilinear in G, x, w): each is
//! the derivative of that pairing with respect to one argument, so every second derivative is
//! again a member.
//!
//! - `equalized_conv2d(x, w, bias, p)` = conv2d(x, c w, bias, p) with c = 1/sqrt(I k k).
//! - `conv2d_lrelu(x, w, bias, p, s)` = leaky_relu(conv2d(x, w, bias, p), s), the activation
//!   applied as the kernels store (the pre-activation is never written out). Backward: with
//!   G = leaky_relu_grad(g, y, s) (y > 0 exactly where the pre-activation is, for s >= 0), as
//!   conv2d's with G for g; leaky_relu_grad is linear in g and gives y no gradient, so this
//!   differentiates again like conv2d.
//!
//! Kernels: `conv2d_w8` / `conv2d_w4` / `conv2d_w2` (shaders/common/conv2d_tile.glsl, by output
//! width; the `k1` builds for 1x1 kernels) compute register blocks
//! of output channels x neighbouring columns; on CPU drivers, 3x3 convolutions with outputs at
//! least 8 wide run `conv2d_wino8` (Winograd F(4x4, 3x3), shaders/common/conv2d_wino.glsl) on
//! kernels transformed by `conv2d_wino_pack`. The weight gradient sums per (16 output x 4
//! input channels for 3x3, 8 x 8 for 1x1) in registers over a split of the batch:
//! `conv2d_wgrad_wino` (Winograd F(2x2, 3x3) run backwards, 2x4 outputs a step, for planes more
//! than 4 wide), the direct `conv2d_wgrad3_w4` (4 columns a step, for narrower planes) and
//! `conv2d_wgrad1`; `conv2d_wgrad3` is the direct 3x3 form the tests hold the Winograd one to.
//! `conv2d_wgrad_reduce` adds the splits in order. All sums run in a fixed order: no atomics.

use super::fastdiv::magic;
use super::{dispatch_1d, group_count, leaky_relu_grad, scale, sum};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::{
    Conv2dPush, Conv2dWgradPush, Conv2dWgradReducePush, Conv2dWinoPackPush, Conv2dWpackPush, I32,
};
use crate::vk::{read, write, Buffer, Kernel, KernelFamily, Kernels};

/// y = conv2d(x, w) + bias (see the module header).
pub fn conv2d(t: &mut Tape, x: Var, w: Var, bias: Option<Var>, padding: usize) -> Var {
    conv2d_activated(t, x, w, bias, padding, None)
}

/// y = leaky_relu(conv2d(x, w) + bias, slope), in one kernel (see the module header).
pub fn conv2d_lrelu(
    t: &mut Tape,
    x: Var,
    w: Var,
    bias: Option<Var>,
    padding: usize,
    slope: f32,
) -> Var {
    assert!(slope >= 0.0, "conv2d_lrelu: slope {slope} < 0");
    conv2d_activated(t, x, w, bias, padding, Some(slope))
}

fn conv2d_activated(
    t: &mut Tape,
    x: Var,
    w: Var,
    bias: Option<Var>,
    padding: usize,
    slope: Option<f32>,
) -> Var {
    let out = forward_shape(t, x, w, padding, "conv2d");
    let mut inputs = vec![x, w];
    if let Some(b) = bias {
        assert_eq!(t.shape(b), [out[1]], "conv2d: bias shape");
        inputs.push(b);
    }
    t.push(Conv2d { padding, slope }, &inputs, &out)
}

/// The output shape of the convolution of x [B,I,H,W] by w [O,I,k,k]; panics, naming `what`,
/// on shapes the kernels do not take.
pub(super) fn forward_shape(t: &Tape, x: Var, w: Var, padding: usize, what: &str) -> [usize; 4] {
    let (xs, ws) = (t.shape(x), t.shape(w));
    assert!(
        xs.len() == 4 && ws.len() == 4,
        "{what} takes x [B,I,H,W] and w [O,I,k,k], got {xs:?} and {ws:?}"
    );
    let k = ws[2];
    assert_eq!(
        ws[1], xs[1],
        "{what}: x {xs:?} and w {ws:?} differ in channels"
    );
    check_kernel(k, ws[3], padding);
    assert!(
        xs[2] + 2 * padding >= k && xs[3] + 2 * padding >= k,
        "{what}: {k}x{k} kernel larger than the padded input {xs:?}"
    );
    [
        xs[0],
        ws[0],
        xs[2] + 2 * padding + 1 - k,
        xs[3] + 2 * padding + 1 - k,
    ]
}

/// The convolution with equalized learning rate: w is scaled by 1/sqrt(I k k) at use.
pub fn equalized_conv2d(t: &mut Tape, x: Var, w: Var, bias: Option<Var>, padding: usize) -> Var {
    let ws = t.shape(w).to_vec();
    assert_eq!(ws.len(), 4, "equalized_conv2d: w [O,I,k,k], got {ws:?}");
    let c = 1.0 / ((ws[1] * ws[2] * ws[3]) as f64).sqrt();
    let scaled = scale(t, w, c as f32);
    conv2d(t, x, scaled, bias, padding)
}

/// The gradient of conv2d with respect to its input x, for the output gradient g [B,O,Ho,Wo]
/// and kernel w [O,I,k,k]: [B,I,Ho-2p+k-1, Wo-2p+k-1].
pub fn conv2d_input_grad(t: &mut Tape, g: Var, w: Var, padding: usize) -> Var {
    let (gs, ws) = (t.shape(g).to_vec(), t.shape(w).to_vec());
    assert!(
        gs.len() == 4 && ws.len() == 4 && gs[1] == ws[0],
        "conv2d_input_grad: g {gs:?}, w {ws:?}"
    );
    let k = ws[2];
    check_kernel(k, ws[3], padding);
    assert!(
        gs[2] + k > 2 * padding + 1 && gs[3] + k > 2 * padding + 1,
        "conv2d_input_grad: g {gs:?} too small for padding {padding}"
    );
    let out = [
        gs[0],
        ws[1],
        gs[2] + k - 1 - 2 * padding,
        gs[3] + k - 1 - 2 * padding,
    ];
    t.push(Conv2dInputGrad { padding }, &[g, w], &out)
}

/// The gradient of conv2d with respect to its kernel, for the input x [B,I,H,W] and output
/// gradient g [B,O,Ho,Wo]: [O,I,k,k] with k = H+2p+1-Ho.
pub fn conv2d_weight_grad(t: &mut Tape, x: Var, g: Var, padding: usize) -> Var {
    let shape = weight_grad_shape(t, x, g, padding, "conv2d_weight_grad");
    t.push(Conv2dWeightGrad { padding }, &[x, g], &shape)
}

/// The kernel shape [O, I, k, k] of the weight gradient for x and g, both checked; `what` names
/// the op in a panic.
pub(super) fn weight_grad_shape(
    t: &Tape,
    x: Var,
    g: Var,
    padding: usize,
    what: &str,
) -> [usize; 4] {
    let (xs, gs) = (t.shape(x), t.shape(g));
    assert!(
        xs.len() == 4 && gs.len() == 4 && xs[0] == gs[0],
        "{what}: x {xs:?}, g {gs:?}"
    );
    let k = (xs[2] + 2 * padding + 1)
        .checked_sub(gs[2])
        .unwrap_or_else(|| panic!("{what}: g larger than the padded x"));
    assert_eq!(
        xs[3] + 2 * padding + 1 - gs[3],
        k,
        "{what}: x {xs:?} and g {gs:?} imply a non-square kernel"
    );
    check_kernel(k, k, padding);
    [gs[1], xs[1], k, k]
}

fn check_kernel(k: usize, k2: usize, padding: usize) {
    assert!(
        k == k2 && (k == 1 || k == 3),
        "conv2d supports square 1x1 and 3x3 kernels, got {k}x{k2}"
    );
    assert!(
        padding <= 1,
        "conv2d supports padding 0 and 1, got {padding}"
    );
}

/// Plain loops over
/// y[b,o,oy,ox] = sum_{i,ky,kx} x[b,i,oy+ky-p,ox+kx-p] w[o,i,ky,kx], the definition all three
/// references use: the forward computes y, the gradients scatter into x's or w's place.
/// `f` gets (x index, w index, y index) of every term.
pub(super) fn for_each_tap(
    xs: &[usize],
    ws: &[usize],
    p: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let (b_n, i_n, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let (o_n, k) = (ws[0], ws[2]);
    let (ho, wo) = (h + 2 * p + 1 - k, w + 2 * p + 1 - k);
    for b in 0..b_n {
        for o in 0..o_n {
            for oy in 0..ho {
                for ox in 0..wo {
                    let yi = ((b * o_n + o) * ho + oy) * wo + ox;
                    for i in 0..i_n {
                        for ky in 0..k {
                            let iy = (oy + ky) as isize - p as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            for kx in 0..k {
                                let ix = (ox + kx) as isize - p as isize;
                                if ix < 0 || ix >= w as isize {
                                    continue;
                                }
                                let xi = ((b * i_n + i) * h + iy as usize) * w + ix as usize;
                                let wi = ((o * i_n + i) * k + ky) * k + kx;
                                f(xi, wi, yi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Output sizes of the convolution of a [.., h, w] input by a k x k kernel.
pub(super) fn out_hw(h: usize, w: usize, k: usize, p: usize) -> (usize, usize) {
    (h + 2 * p + 1 - k, w + 2 * p + 1 - k)
}

/// What the GPU family's convolution folds into its loads and stores besides a leaky ReLU
/// (`TileConv::activation`); the CPU family's kernels fold neither.
#[derive(Clone, Copy, Default)]
pub(super) struct Fused<'a> {
    /// s [B, C]: every input element times s[b, c] as it is loaded (`conv2d_gemm_scaled`).
    pub(super) scale: Option<&'a Buffer>,
    /// With the scale and a slope: a style block's output stage as it stores
    /// (`conv2d_gemm_style`).
    pub(super) style: Option<StyleStage<'a>>,
}

/// A style block's output stage (ops::style_conv): d [B, O], the output bias [O] and the
/// optional (noise [B, 1, H, W], its scale [1]); the slope is the convolution's `activation`.
#[derive(Clone, Copy)]
pub(super) struct StyleStage<'a> {
    pub(super) d: &'a Buffer,
    pub(super) bias: &'a Buffer,
    pub(super) noise: Option<(&'a Buffer, &'a Buffer)>,
}

/// The forward kernel's problem:
/// out[b,o,oy,ox] = sum_{c,ky,kx} inp[b,c,oy+ky-pad,ox+kx-pad] * w[base + o so + c sc + ky sky + kx skx].
pub(super) struct TileConv {
    pub(super) b: usize,
    pub(super) c: usize,
    pub(super) o: usize,
    pub(super) in_hw: (usize, usize),
    pub(super) out_hw: (usize, usize),
    pub(super) k: usize,
    pub(super) pad: i32,
    /// base, so, sc, sky, skx
    pub(super) w_index: [i32; 5],
    /// The slope of a leaky ReLU applied to every output as it is stored.
    pub(super) activation: Option<f32>,
}

impl TileConv {
    /// The forward convolution of x `xs` by w `ws` ([O, I, k, k]) into an output of `out`.
    pub(super) fn forward(xs: &[usize], ws: &[usize], out: &[usize], padding: usize) -> Self {
        let (i_n, k) = (ws[1], ws[2]);
        let kk = (k * k) as i32;
        TileConv {
            b: xs[0],
            c: i_n,
            o: ws[0],
            in_hw: (xs[2], xs[3]),
            out_hw: (out[2], out[3]),
            k,
            pad: padding as i32,
            w_index: [0, i_n as i32 * kk, kk, k as i32, 1],
            activation: None,
        }
    }
}

// Tests can ask for the direct kernels on the CPU driver too, to cover both.
#[cfg(test)]
thread_local! {
    static DIRECT_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn direct_only() -> bool {
    DIRECT_ONLY.get()
}

#[cfg(not(test))]
fn direct_only() -> bool {
    false
}

/// Runs `f` with Winograd convolutions off on this thread.
#[cfg(test)]
fn with_direct_kernels(f: impl FnOnce()) {
    DIRECT_ONLY.set(true);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    DIRECT_ONLY.set(false);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Which algorithm a 3x3 convolution on an output plane at least 8 wide runs: Winograd
/// F(4x4, 3x3) in the CPU kernel family, where it does 36 products per 4x4 block and channel
/// instead of 144 and was measured faster on llvmpipe (the README has the figures), and the
/// direct kernel elsewhere, until GPUs are measured.
fn use_winograd(conv: &TileConv, family: KernelFamily) -> bool {
    conv.k == 3 && conv.out_hw.1 >= 8 && family == KernelFamily::Cpu && !direct_only()
}

/// Records `out` = the convolution `conv` of `inp` by `w` (+ bias), with the `fused` loads and
/// stores (GPU family only: the caller records those apart for the CPU family).
pub(super) fn record_tile_conv(
    rec: &mut Recording,
    conv: &TileConv,
    inp: &Buffer,
    w: &Buffer,
    bias: Option<&Buffer>,
    fused: Fused,
    out: &Buffer,
) {
    let Fused { scale, style } = fused;
    let ctx = rec.context();
    let kernels = ctx.kernels();
    let family = ctx.kernel_family();
    let winograd = use_winograd(conv, family);
    let (kernel, groups, tiles_x) = if family == KernelFamily::Gpu {
        let kernel = match (scale, conv.activation, style) {
            (None, None, None) => &kernels.conv2d_gemm,
            (Some(_), None, None) => &kernels.conv2d_gemm_scaled,
            (None, Some(_), None) => &kernels.conv2d_gemm_lrelu,
            (Some(_), Some(_), Some(_)) => &kernels.conv2d_gemm_style,
            _ => unreachable!("only a style stage both scales and activates, and it needs both"),
        };
        // BM output channels x BN output pixels a workgroup.
        let [bm, bn] = ["BM", "BN"].map(|d| kernel.spec.define(d));
        let pixels = conv.b * conv.out_hw.0 * conv.out_hw.1;
        let groups = [
            group_count(pixels.div_ceil(bn)),
            group_count(conv.o.div_ceil(bm)),
            1,
        ];
        (kernel, groups, 0)
    } else {
        assert!(
            scale.is_none() && style.is_none(),
            "the CPU family's convolutions fuse no scale nor style stage: record those apart"
        );
        // The plain build, or the one that applies the leaky ReLU as it stores.
        let build = |plain, lrelu| match conv.activation {
            None => plain,
            Some(_) => lrelu,
        };
        // The direct kernel's 3x3 builds, or its 1x1 ones: a build per kernel size (see
        // shaders/common/conv2d_tile.glsl for why).
        let direct = |k3: [_; 2], k1: [_; 2]| {
            let [plain, lrelu] = if conv.k == 1 { k1 } else { k3 };
            build(plain, lrelu)
        };
        let kernel = if winograd {
            build(&kernels.conv2d_wino8, &kernels.conv2d_wino8_lrelu)
        } else if conv.out_hw.1 >= 8 {
            direct(
                [&kernels.conv2d_w8, &kernels.conv2d_w8_lrelu],
                [&kernels.conv2d_w8k1, &kernels.conv2d_w8k1_lrelu],
            )
        } else if conv.out_hw.1 > 2 {
            direct(
                [&kernels.conv2d_w4, &kernels.conv2d_w4_lrelu],
                [&kernels.conv2d_w4k1, &kernels.conv2d_w4k1_lrelu],
            )
        } else {
            direct(
                [&kernels.conv2d_w2, &kernels.conv2d_w2_lrelu],
                [&kernels.conv2d_w2k1, &kernels.conv2d_w2k1_lrelu],
            )
        };
        // Output channels, rows and columns per invocation, as the shader defines them.
        let [to, th, tw] = ["TO", "TH", "TW"].map(|d| kernel.spec.define(d));
        let tiles_x = conv.out_hw.1.div_ceil(tw);
        let invocations = conv.b * conv.out_hw.0.div_ceil(th) * tiles_x;
        let local = kernel.spec.local_size[0] as usize;
        let groups = [
            group_count(invocations.div_ceil(local)),
            group_count(conv.o.div_ceil(to)),
            1,
        ];
        (kernel, groups, tiles_x)
    };
    let Some(packed) = pack_weights(rec, conv, w, winograd) else {
        return;
    };
    let u = |v: usize| (v as u32).into();
    let push = Conv2dPush {
        B: u(conv.b),
        C: u(conv.c),
        O: u(conv.o),
        H: u(conv.in_hw.0),
        W: u(conv.in_hw.1),
        HO: u(conv.out_hw.0),
        WO: u(conv.out_hw.1),
        K: u(conv.k),
        P: conv.pad.into(),
        has_bias: bias.is_some().into(),
        tiles_x: u(tiles_x),
        act_slope: conv.activation.unwrap_or(0.0).into(),
        has_noise: style.is_some_and(|st| st.noise.is_some()).into(),
    };
    // The style stage's bias takes the bias binding, which the convolution itself then leaves
    // unread (has_bias 0); without either, any buffer fills it.
    let bias = style.map(|st| st.bias).or(bias).unwrap_or(w);
    let mut bindings = vec![read(inp), read(&packed), read(bias), write(out)];
    bindings.extend(scale.map(read));
    if let Some(st) = style {
        // Without noise the kernel reads neither noise binding; d fills both.
        let (noise, noise_scale) = st.noise.unwrap_or((st.d, st.d));
        bindings.extend([read(st.d), read(noise), read(noise_scale)]);
    }
    rec.dispatch(kernel, &bindings, &push, groups);
}

/// The kernel `w` as the tile kernels read it: in blocks of 4 output channels
/// (`conv2d_wpack`), or for Winograd transformed (`conv2d_wino_pack`, which reads `w` in the
/// same strides). None when a scratch buffer could not be made (the recording has the error).
fn pack_weights(
    rec: &mut Recording,
    conv: &TileConv,
    w: &Buffer,
    winograd: bool,
) -> Option<Buffer> {
    let ctx = rec.context();
    let kernels = ctx.kernels();
    let u = |v: usize| (v as u32).into();
    let o4 = conv.o.div_ceil(4);
    let [w_base, w_so, w_sc, w_sky, w_skx] = conv.w_index.map(I32::from);
    let (o4_magic, o4_log) = magic(o4 as u32);
    if winograd {
        let pack = &kernels.conv2d_wino_pack;
        let wm = pack.spec.define("WM");
        debug_assert_eq!(wm, kernels.conv2d_wino8.spec.define("WM"));
        // (WM + 2)^2 transformed taps per input channel, each a texel of four output channels.
        let taps = (wm + 2) * (wm + 2);
        let transformed = rec.buffer("conv2d Winograd kernel", (conv.c * taps * o4 * 16) as u64)?;
        dispatch_1d(
            rec,
            pack,
            &[read(w), write(&transformed)],
            &Conv2dWinoPackPush {
                n: u(conv.c * o4),
                O: u(conv.o),
                O4: u(o4),
                w_base,
                w_so,
                w_sc,
                w_sky,
                w_skx,
                o4_magic: o4_magic.into(),
                o4_log: o4_log.into(),
            },
            conv.c * o4,
        );
        return Some(transformed);
    }
    let packed_len = conv.c * conv.k * conv.k * o4 * 4;
    let packed = rec.buffer("conv2d packed kernel", (packed_len * 4) as u64)?;
    let (k_magic, k_log) = magic(conv.k as u32);
    dispatch_1d(
        rec,
        &kernels.conv2d_wpack,
        &[read(w), write(&packed)],
        &Conv2dWpackPush {
            C: u(conv.c),
            O: u(conv.o),
            O4: u(o4),
            K: u(conv.k),
            w_base,
            w_so,
            w_sc,
            w_sky,
            w_skx,
            o4_magic: o4_magic.into(),
            k_magic: k_magic.into(),
            logs: (o4_log | k_log << 5).into(),
        },
        conv.c * conv.k * conv.k * o4,
    );
    Some(packed)
}

struct Conv2d {
    padding: usize,
    /// conv2d_lrelu's slope.
    slope: Option<f32>,
}

impl Op for Conv2d {
    fn name(&self) -> &'static str {
        match self.slope {
            None => "conv2d",
            Some(_) => "conv2d_lrelu",
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, w) = (inputs[0], inputs[1]);
        let k = w.shape[2];
        let (ho, wo) = out_hw(x.shape[2], x.shape[3], k, self.padding);
        let shape = [x.shape[0], w.shape[0], ho, wo];
        let mut y = vec![0.0; shape.iter().product()];
        if let Some(bias) = inputs.get(2) {
            for (idx, v) in y.iter_mut().enumerate() {
                *v = bias.data[(idx / (ho * wo)) % shape[1]];
            }
        }
        for_each_tap(&x.shape, &w.shape, self.padding, |xi, wi, yi| {
            y[yi] += x.data[xi] * w.data[wi]
        });
        if let Some(slope) = self.slope {
            for v in &mut y {
                if *v < 0.0 {
                    *v *= slope as f64;
                }
            }
        }
        CpuTensor::new(&shape, y)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let (xs, ws) = (inputs[0].shape(), inputs[1].shape());
        let mut conv = TileConv::forward(xs, ws, out.shape(), self.padding);
        conv.activation = self.slope;
        let bias = inputs.get(2).map(|b| b.buffer());
        record_tile_conv(
            rec,
            &conv,
            inputs[0].buffer(),
            inputs[1].buffer(),
            bias,
            Fused::default(),
            out.buffer(),
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], out: Var, g: Var) -> Vec<Option<Var>> {
        let (x, w) = (inputs[0], inputs[1]);
        let g = match self.slope {
            Some(slope) => leaky_relu_grad(t, g, out, slope),
            None => g,
        };
        let mut grads = vec![
            Some(conv2d_input_grad(t, g, w, self.padding)),
            Some(conv2d_weight_grad(t, x, g, self.padding)),
        ];
        if inputs.len() == 3 {
            grads.push(Some(sum(t, g, &[0, 2, 3], false)));
        }
        grads
    }
}

struct Conv2dInputGrad {
    padding: usize,
}

impl Op for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (g, w) = (inputs[0], inputs[1]);
        let k = w.shape[2];
        let h = g.shape[2] + k - 1 - 2 * self.padding;
        let wd = g.shape[3] + k - 1 - 2 * self.padding;
        let xs = [g.shape[0], w.shape[1], h, wd];
        let mut dx = vec![0.0; xs.iter().product()];
        for_each_tap(&xs, &w.shape, self.padding, |xi, wi, yi| {
            dx[xi] += g.data[yi] * w.data[wi]
        });
        CpuTensor::new(&xs, dx)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let (gs, ws) = (inputs[0].shape(), inputs[1].shape());
        let (i_n, k) = (ws[1], ws[2]);
        let kk = (k * k) as i32;
        let k32 = k as i32;
        // Output channel i, reduced channel o, taps flipped: w[o, i, k-1-ky, k-1-kx].
        let conv = TileConv {
            b: gs[0],
            c: ws[0],
            o: i_n,
            in_hw: (gs[2], gs[3]),
            out_hw: (out.shape()[2], out.shape()[3]),
            k,
            pad: k32 - 1 - self.padding as i32,
            w_index: [kk - 1, kk, i_n as i32 * kk, -k32, -1],
            activation: None,
        };
        record_tile_conv(
            rec,
            &conv,
            inputs[0].buffer(),
            inputs[1].buffer(),
            None,
            Fused::default(),
            out.buffer(),
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let (gy, w) = (inputs[0], inputs[1]);
        vec![
            Some(conv2d(t, g, w, None, self.padding)),
            Some(conv2d_weight_grad(t, g, gy, self.padding)),
        ]
    }
}

struct Conv2dWeightGrad {
    padding: usize,
}

/// The weight-gradient kernel for a k x k kernel over `c` input and `o` output channels and
/// output planes `wo` wide, with its workgroups along x and y (z is the batch split); `scaled`:
/// the GPU family's build that scales its input as it loads it.
fn wgrad_kernel(
    kernels: &Kernels,
    family: KernelFamily,
    (c, o, k, wo): (usize, usize, usize, usize),
    scaled: bool,
) -> WgradKernel<'_> {
    assert!(
        !scaled || family == KernelFamily::Gpu,
        "the CPU family's weight gradients fuse no scale: record the product apart"
    );
    // The CPU family's register tiles, and the output rows each of their loop steps covers
    // (two for the Winograd kernel's 2x2 blocks).
    let (kernel, rows) = match (k, family) {
        (_, KernelFamily::Gpu) => {
            let kernel = if scaled {
                &kernels.conv2d_wgrad_gemm_scaled
            } else {
                &kernels.conv2d_wgrad_gemm
            };
            // BM output channels x BN (input channel, tap) pairs a workgroup.
            let [bm, bn] = ["BM", "BN"].map(|d| kernel.spec.define(d));
            return WgradKernel {
                kernel,
                groups: [(c * k * k).div_ceil(bn), o.div_ceil(bm)],
                step: [1, 1],
            };
        }
        (3, _) if wo <= 4 => (&kernels.conv2d_wgrad3_w4, 1),
        (3, _) if direct_only() => (&kernels.conv2d_wgrad3, 1),
        (3, _) => (&kernels.conv2d_wgrad_wino, 2),
        _ => (&kernels.conv2d_wgrad1, 1),
    };
    // TO output x TC input channels an invocation, TW output columns a loop step.
    let [to, tc, tw] = ["TO", "TC", "TW"].map(|d| kernel.spec.define(d));
    let step = [rows, tw];
    let invocations = c.div_ceil(tc) * o.div_ceil(to);
    let local = kernel.spec.local_size[0] as usize;
    WgradKernel {
        kernel,
        groups: [invocations.div_ceil(local), 1],
        step,
    }
}

struct WgradKernel<'k> {
    kernel: &'k Kernel<Conv2dWgradPush>,
    /// Workgroups along x and y.
    groups: [usize; 2],
    /// Output rows x columns one pass of the kernel's innermost loop covers.
    step: [usize; 2],
}

/// lavapipe (Mesa 22.3) ends a shader's loops after 65,535 passes in all (README, How it
/// works); a split's images stay below that with some room.
const MAX_LOOP_PASSES: usize = 60_000;

/// Batch images per split of the weight gradient: enough invocations to fill the device (about
/// 2^16 for the GPU family; for the CPU family (llvmpipe), which runs a workgroup per thread
/// and a thread per core, four workgroups of 64 per core), and no split where the unsplit grid
/// already has that many. Every split costs memory for its partial sums and a pass over them,
/// and more splits than that did not make the step faster on llvmpipe. `passes_per_image` is
/// how many loop passes an invocation makes over one image.
fn wgrad_per_split(b: usize, invocations: usize, cpu: bool, passes_per_image: usize) -> usize {
    let target = if cpu {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        cores * 4 * 64
    } else {
        65536
    };
    let splits = (target / invocations.max(1)).clamp(1, b);
    let most = (MAX_LOOP_PASSES / passes_per_image.max(1)).max(1);
    b.div_ceil(splits).min(most)
}

impl Op for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (x, g) = (inputs[0], inputs[1]);
        let k = x.shape[2] + 2 * self.padding + 1 - g.shape[2];
        let ws = [g.shape[1], x.shape[1], k, k];
        let mut dw = vec![0.0; ws.iter().product()];
        for_each_tap(&x.shape, &ws, self.padding, |xi, wi, yi| {
            dw[wi] += g.data[yi] * x.data[xi]
        });
        CpuTensor::new(&ws, dw)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        record_weight_grad(rec, inputs[0], None, inputs[1], out, self.padding);
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let (x, gy) = (inputs[0], inputs[1]);
        vec![
            Some(conv2d_input_grad(t, gy, g, self.padding)),
            Some(conv2d(t, x, g, None, self.padding)),
        ]
    }
}

/// Records the weight gradient `out` of the convolution of x (times `scale` [B, C] as it loads,
/// GPU family only) with output gradient g, batch split and reduced as the grid needs.
pub(super) fn record_weight_grad(
    rec: &mut Recording,
    x: &Tensor,
    scale: Option<&Buffer>,
    g: &Tensor,
    out: &Tensor,
    padding: usize,
) {
    let (xs, gs) = (x.shape(), g.shape());
    let (b, c, o) = (xs[0], xs[1], gs[1]);
    let k = out.shape()[2];
    let ctx = rec.context();
    let family = ctx.kernel_family();
    let WgradKernel {
        kernel,
        groups: [gx, gy],
        step,
    } = wgrad_kernel(ctx.kernels(), family, (c, o, k, gs[3]), scale.is_some());
    let invocations = gx * gy * kernel.spec.local_size[0] as usize;
    let passes = gs[2].div_ceil(step[0]) * gs[3].div_ceil(step[1]);
    let per_split = wgrad_per_split(b, invocations, family == KernelFamily::Cpu, passes);
    let splits = b.div_ceil(per_split);
    let n = out.numel();
    let part = if splits > 1 {
        let Some(part) = rec.buffer("conv2d_weight_grad scratch", (n * splits * 4) as u64) else {
            return;
        };
        Some(part)
    } else {
        None
    };
    let u = |v: usize| (v as u32).into();
    let push = Conv2dWgradPush {
        B: u(b),
        C: u(c),
        O: u(o),
        H: u(xs[2]),
        W: u(xs[3]),
        HO: u(gs[2]),
        WO: u(gs[3]),
        P: (padding as i32).into(),
        per_split: u(per_split),
    };
    let groups = [group_count(gx), group_count(gy), group_count(splits)];
    let target = part.as_ref().unwrap_or(out.buffer());
    let mut bindings = vec![read(x.buffer()), read(g.buffer()), write(target)];
    bindings.extend(scale.map(read));
    rec.dispatch(kernel, &bindings, &push, groups);
    if let Some(part) = &part {
        dispatch_1d(
            rec,
            &ctx.kernels().conv2d_wgrad_reduce,
            &[read(part), write(out.buffer())],
            &Conv2dWgradReducePush {
                n: u(n),
                splits: u(splits),
            },
            n,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    // f32 sums of up to I*k*k = 63 products of values in [-2, 2].
    const ATOL: f64 = 2e-5;
    const RTOL: f64 = 2e-4;

    fn case(name: &str, x: [usize; 4], o: usize, k: usize, p: usize, bias: bool) -> OpCase {
        let w = [o, x[1], k, k];
        let b = [o];
        let shapes: Vec<&[usize]> = if bias { vec![&x, &w, &b] } else { vec![&x, &w] };
        let name = format!("{name} k{k} p{p} bias {bias}");
        OpCase::new(&name, &shapes, move |t, v| {
            conv2d(t, v[0], v[1], v.get(2).copied(), p)
        })
        .tolerance(ATOL, RTOL)
    }

    /// Checks a case with the kernels this device picks and again with the direct ones only
    /// (on lavapipe the first are Winograd kernels wherever they apply).
    fn check_both(make: impl Fn() -> OpCase) {
        check_op(make());
        with_direct_kernels(|| check_op(make()));
    }

    #[test]
    fn conv2d_odd_sizes_3x3() {
        // 5 input channels: the Winograd kernel's last two-channel step has a spare channel.
        for p in [0, 1] {
            for bias in [false, true] {
                check_both(|| case("conv2d", [3, 5, 9, 9], 7, 3, p, bias));
            }
        }
    }

    /// The first kernel a 3x3 convolution of x [2,4,h,w] with padding 1 records after packing
    /// its weights.
    fn conv_kernel(h: usize, w: usize) -> &'static str {
        kernel_of_size(3, h, w)
    }

    /// As `conv_kernel` for a k x k kernel with padding (k - 1) / 2.
    fn kernel_of_size(k: usize, h: usize, w: usize) -> &'static str {
        let names = crate::testing::recorded_kernels(&[&[2, 4, h, w], &[3, 4, k, k]], |t, v| {
            conv2d(t, v[0], v[1], None, (k - 1) / 2)
        });
        names.into_iter().find(|n| !n.ends_with("pack")).unwrap()
    }

    #[test]
    fn one_by_one_kernels_take_their_own_builds() {
        if crate::testing::context().kernel_family() == KernelFamily::Gpu {
            assert_eq!(kernel_of_size(1, 8, 8), "conv2d_gemm");
            return;
        }
        for (w, name) in [(8, "conv2d_w8k1"), (5, "conv2d_w4k1"), (2, "conv2d_w2k1")] {
            assert_eq!(kernel_of_size(1, 3, w), name, "width {w}");
        }
    }

    #[test]
    fn kernel_choice_follows_the_family_and_width() {
        let family = crate::testing::context().kernel_family();
        if family == KernelFamily::Gpu {
            for (h, w) in [(8, 8), (3, 19), (8, 7), (2, 2)] {
                assert_eq!(conv_kernel(h, w), "conv2d_gemm", "{h}x{w}");
            }
            return;
        }
        assert_eq!(conv_kernel(8, 8), "conv2d_wino8");
        assert_eq!(conv_kernel(3, 19), "conv2d_wino8");
        assert_eq!(conv_kernel(8, 7), "conv2d_w4");
        with_direct_kernels(|| assert_eq!(conv_kernel(8, 8), "conv2d_w8"));
        assert_eq!(
            conv_kernel(8, 8),
            "conv2d_wino8",
            "the override ends with its closure"
        );
    }

    #[test]
    fn each_family_has_its_weight_gradient_kernels() {
        let ctx = crate::testing::context();
        let names = |family| {
            [(3, 8), (3, 4), (1, 8)].map(|(k, wo)| {
                wgrad_kernel(ctx.kernels(), family, (5, 7, k, wo), false)
                    .kernel
                    .spec
                    .name
            })
        };
        assert_eq!(
            names(KernelFamily::Cpu),
            ["conv2d_wgrad_wino", "conv2d_wgrad3_w4", "conv2d_wgrad1"]
        );
        assert_eq!(
            names(KernelFamily::Gpu),
            [
                "conv2d_wgrad_gemm",
                "conv2d_wgrad_gemm",
                "conv2d_wgrad_gemm"
            ]
        );
    }

    /// The fused leaky ReLU, to second order, on the Winograd, direct and 1x1 kernels.
    #[test]
    fn conv2d_lrelu_matches_cpu_with_gradients() {
        for (x, k, p) in [
            ([2, 5, 9, 9], 3, 1),
            ([2, 3, 5, 4], 3, 0),
            ([2, 5, 6, 6], 1, 0),
        ] {
            let w = [7, x[1], k, k];
            check_both(|| {
                OpCase::new(
                    &format!("conv2d_lrelu k{k} p{p} {x:?}"),
                    &[&x, &w, &[7]],
                    move |t, v| conv2d_lrelu(t, v[0], v[1], Some(v[2]), p, 0.2),
                )
                .tolerance(ATOL, RTOL)
            });
        }
    }

    #[test]
    fn conv2d_odd_sizes_1x1() {
        for p in [0, 1] {
            for bias in [false, true] {
                check_op(case("conv2d", [3, 5, 9, 9], 7, 1, p, bias));
            }
        }
        // The 4- and 2-wide 1x1 builds.
        check_op(case("conv2d", [3, 5, 4, 3], 7, 1, 0, true));
        check_op(case("conv2d", [3, 5, 2, 2], 7, 1, 0, false));
    }

    #[test]
    fn conv2d_wide_and_non_square() {
        // Columns past one 8-wide block, a ragged last block, H != W.
        check_both(|| case("conv2d", [2, 3, 5, 19], 5, 3, 1, true));
        check_both(|| case("conv2d", [2, 3, 6, 11], 9, 3, 0, false));
    }

    #[test]
    fn conv2d_many_channel_blocks() {
        // 37 channels: three blocks of 16 for the 8-wide and the narrow kernel, a ragged one last.
        check_both(|| case("conv2d", [2, 3, 3, 9], 37, 3, 1, true));
        check_op(case("conv2d", [2, 3, 5, 4], 37, 3, 1, false));
    }

    #[test]
    fn conv2d_final_discriminator_shape() {
        // 4x4 -> 2x2 with padding 0, like the discriminator's last conv (513 channels there).
        check_op(case("conv2d", [4, 9, 4, 4], 9, 3, 0, true));
    }

    #[test]
    fn gradient_ops_directly() {
        // Input planes 7 and 10 wide: the narrow kernel and, for 3x3, the Winograd one (whose
        // input is g, padded by 2 when p = 0).
        for (k, p, h) in [
            (3, 1, 7),
            (3, 0, 7),
            (1, 0, 7),
            (1, 1, 7),
            (3, 1, 10),
            (3, 0, 10),
        ] {
            let ho = h + 2 * p + 1 - k;
            check_both(|| {
                OpCase::new(
                    &format!("conv2d_input_grad k{k} p{p} {h}x{h}"),
                    &[&[3, 5, ho, ho], &[5, 4, k, k]],
                    move |t, v| conv2d_input_grad(t, v[0], v[1], p),
                )
                .tolerance(ATOL, RTOL)
            });
            if h != 7 {
                continue;
            }
            check_both(|| {
                OpCase::new(
                    &format!("conv2d_weight_grad k{k} p{p}"),
                    &[&[3, 4, 7, 7], &[3, 5, ho, ho]],
                    move |t, v| conv2d_weight_grad(t, v[0], v[1], p),
                )
                .tolerance(ATOL, RTOL)
            });
        }
    }

    #[test]
    fn weight_gradient_splits_stay_under_the_loop_limit() {
        // 256x256 planes in steps of 2x4 outputs: 8,192 passes an image.
        let passes = 128 * 64;
        let per_split = wgrad_per_split(256, 1, true, passes);
        assert!(per_split * passes <= MAX_LOOP_PASSES, "{per_split}");
        assert_eq!(
            wgrad_per_split(256, 1, true, 1),
            1,
            "splits fill the cores first"
        );
        assert_eq!(
            wgrad_per_split(3, 1, true, 100_000),
            1,
            "one image is the least"
        );
    }

    #[test]
    fn single_image_weight_gradient_is_unsplit() {
        check_op(case("conv2d", [1, 6, 5, 5], 3, 3, 1, true));
    }

    #[test]
    fn equalized_conv2d_scales_the_kernel() {
        check_op(
            OpCase::new(
                "equalized_conv2d",
                &[&[2, 5, 6, 6], &[3, 5, 3, 3], &[3]],
                |t, v| equalized_conv2d(t, v[0], v[1], Some(v[2]), 1),
            )
            .tolerance(ATOL, RTOL),
        );
    }
}

#[cfg(test)]
mod full_size_tests {
    use super::*;
    use crate::testing::{assert_close, context, random};

    /// The discriminator's first block at batch 32: each invocation's loops run long here,
    /// which is where lavapipe's 65535-iteration loop limit would cut a reduction short.
    #[test]
    fn training_sized_convolutions_match_the_cpu() {
        training_sized_convolutions();
        super::with_direct_kernels(training_sized_convolutions);
    }

    fn training_sized_convolutions() {
        let ctx = context();
        for (k, p) in [(3, 1), (1, 0)] {
            let (b, i, o, h) = (32, 8, 16, 32);
            let mut t = Tape::new();
            let x = t.leaf(&[b, i, h, h], false);
            let w = t.leaf(&[o, i, k, k], false);
            let g = t.leaf(&[b, o, h, h], false);
            let y = conv2d(&mut t, x, w, None, p);
            let dx = conv2d_input_grad(&mut t, g, w, p);
            let dw = conv2d_weight_grad(&mut t, x, g, p);
            let values = [
                random(&[b, i, h, h], 1),
                random(&[o, i, k, k], 2),
                random(&[b, o, h, h], 3),
            ];
            let device: Vec<Tensor> = values
                .iter()
                .map(|v| Tensor::from_cpu(&ctx, v).unwrap())
                .collect();
            let leaves = [(x, &device[0]), (w, &device[1]), (g, &device[2])];
            let got = t.eval(&ctx, &[y, dx, dw], &leaves).unwrap();
            let cpu_leaves = [(x, &values[0]), (w, &values[1]), (g, &values[2])];
            let want = t.eval_cpu(&[y, dx, dw], &cpu_leaves);
            for (what, (g, c)) in ["forward", "input grad", "weight grad"]
                .iter()
                .zip(got.iter().zip(&want))
            {
                assert_close(g, &c.data, 1e-5, 1e-4, &format!("k{k}: {what}"));
            }
        }
    }
}
