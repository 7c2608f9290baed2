//! Elementwise unary ops sharing one shader body (a kernel per op and I/O width, built from
//! shaders/unary.comp and shaders/unary_vec4.comp),
//! and the leaky-relu backward.
//!
//! - `scale(x, c)` = c x;             dx = c g
//! - `add_scalar(x, c)` = x + c;      dx = g
//! - `neg(x)` = -x                    (scale by -1)
//! - `square(x)` = x^2;               dx = 2 x g
//! - `sqrt(x)`;                       dx = g / (2 sqrt x)
//! - `rsqrt(x)` = x^(-1/2);           dx = -g x^(-3/2) / 2 = -g y^3 / 2
//! - `leaky_relu(x, s)` = x if x > 0 else s x (relu: s = 0; at 0 the slope is s);
//!   dx = leaky_relu_grad(g, x, s) = g if x > 0 else s g
//! - `leaky_relu_grad(g, x, s)`: linear in g, so dg = leaky_relu_grad(gg, x, s); its
//!   derivative in x is zero almost everywhere (a step function), so x gets no gradient.
//!   This is exact, not a detach: d/dx of g * step(x) vanishes wherever it exists.

use super::{by_width, dispatch_1d, mul};
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::{LreluGradPush, UnaryPush};
use crate::vk::{read, write, Kernel, Kernels};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Func {
    Scale,
    AddScalar,
    Square,
    Sqrt,
    Rsqrt,
    LeakyRelu,
}

impl Func {
    /// The build for a tensor of `n` elements (unary_vec4.comp or unary.comp, see `by_width`).
    fn kernel(self, kernels: &Kernels, n: usize) -> &Kernel<UnaryPush> {
        let [plain, vec4] = match self {
            Func::Scale => [&kernels.unary_scale, &kernels.unary_vec4_scale],
            Func::AddScalar => [&kernels.unary_add_scalar, &kernels.unary_vec4_add_scalar],
            Func::Square => [&kernels.unary_square, &kernels.unary_vec4_square],
            Func::Sqrt => [&kernels.unary_sqrt, &kernels.unary_vec4_sqrt],
            Func::Rsqrt => [&kernels.unary_rsqrt, &kernels.unary_vec4_rsqrt],
            Func::LeakyRelu => [&kernels.unary_leaky_relu, &kernels.unary_vec4_leaky_relu],
        };
        by_width(n, plain, vec4)
    }
}

struct Unary {
    f: Func,
    c: f32,
}

fn unary(t: &mut Tape, f: Func, c: f32, x: Var) -> Var {
    let shape = t.shape(x).to_vec();
    t.push(Unary { f, c }, &[x], &shape)
}

pub fn scale(t: &mut Tape, x: Var, c: f32) -> Var {
    unary(t, Func::Scale, c, x)
}

pub fn add_scalar(t: &mut Tape, x: Var, c: f32) -> Var {
    unary(t, Func::AddScalar, c, x)
}

pub fn neg(t: &mut Tape, x: Var) -> Var {
    scale(t, x, -1.0)
}

pub fn square(t: &mut Tape, x: Var) -> Var {
    unary(t, Func::Square, 0.0, x)
}

pub fn sqrt(t: &mut Tape, x: Var) -> Var {
    unary(t, Func::Sqrt, 0.0, x)
}

pub fn rsqrt(t: &mut Tape, x: Var) -> Var {
    unary(t, Func::Rsqrt, 0.0, x)
}

pub fn relu(t: &mut Tape, x: Var) -> Var {
    leaky_relu(t, x, 0.0)
}

pub fn leaky_relu(t: &mut Tape, x: Var, slope: f32) -> Var {
    unary(t, Func::LeakyRelu, slope, x)
}

/// `g` where x > 0, `slope * g` elsewhere.
pub fn leaky_relu_grad(t: &mut Tape, g: Var, x: Var, slope: f32) -> Var {
    assert_eq!(t.shape(g), t.shape(x), "leaky_relu_grad shapes");
    let shape = t.shape(x).to_vec();
    t.push(LeakyReluGrad { slope }, &[g, x], &shape)
}

impl Op for Unary {
    fn name(&self) -> &'static str {
        match self.f {
            Func::Scale => "scale",
            Func::AddScalar => "add_scalar",
            Func::Square => "square",
            Func::Sqrt => "sqrt",
            Func::Rsqrt => "rsqrt",
            Func::LeakyRelu => "leaky_relu",
        }
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let c = self.c as f64;
        inputs[0].map(|v| match self.f {
            Func::Scale => v * c,
            Func::AddScalar => v + c,
            Func::Square => v * v,
            Func::Sqrt => v.sqrt(),
            Func::Rsqrt => 1.0 / v.sqrt(),
            Func::LeakyRelu => {
                if v > 0.0 {
                    v
                } else {
                    v * c
                }
            }
        })
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let ctx = rec.context();
        dispatch_1d(
            rec,
            self.f.kernel(ctx.kernels(), n),
            &[read(inputs[0].buffer()), write(out.buffer())],
            &UnaryPush {
                n: (n as u32).into(),
                c: self.c.into(),
            },
            n.div_ceil(4),
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], out: Var, g: Var) -> Vec<Option<Var>> {
        let x = inputs[0];
        let dx = match self.f {
            Func::Scale => scale(t, g, self.c),
            Func::AddScalar => g,
            Func::Square => {
                let two_x = scale(t, x, 2.0);
                mul(t, g, two_x)
            }
            Func::Sqrt => {
                let r = rsqrt(t, x);
                let half_r = scale(t, r, 0.5);
                mul(t, g, half_r)
            }
            Func::Rsqrt => {
                let y2 = square(t, out);
                let y3 = mul(t, y2, out);
                let k = scale(t, y3, -0.5);
                mul(t, g, k)
            }
            Func::LeakyRelu => leaky_relu_grad(t, g, x, self.c),
        };
        vec![Some(dx)]
    }
}

struct LeakyReluGrad {
    slope: f32,
}

impl Op for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "leaky_relu_grad"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (g, x) = (inputs[0], inputs[1]);
        let data = g
            .data
            .iter()
            .zip(&x.data)
            .map(|(&g, &x)| if x > 0.0 { g } else { g * self.slope as f64 })
            .collect();
        CpuTensor::new(&g.shape, data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let n = out.numel();
        let ctx = rec.context();
        let kernels = ctx.kernels();
        dispatch_1d(
            rec,
            by_width(n, &kernels.lrelu_grad, &kernels.lrelu_grad_vec4),
            &[
                read(inputs[0].buffer()),
                read(inputs[1].buffer()),
                write(out.buffer()),
            ],
            &LreluGradPush {
                n: (n as u32).into(),
                slope: self.slope.into(),
            },
            n.div_ceil(4),
        );
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        // Zero almost everywhere in x (see the module header).
        vec![Some(leaky_relu_grad(t, g, inputs[1], self.slope)), None]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;
    use crate::testing::{check_op, OpCase};

    // Lengths off a multiple of 4 (unary.comp) and on one (unary_vec4.comp).
    const SHAPES: [&[usize]; 5] = [&[1], &[7, 9], &[3, 5, 67], &[4], &[2, 3, 4, 6]];

    #[test]
    fn each_op_runs_the_kernel_built_for_it() {
        let ctx = crate::testing::context();
        for f in [
            Func::Scale,
            Func::AddScalar,
            Func::Square,
            Func::Sqrt,
            Func::Rsqrt,
            Func::LeakyRelu,
        ] {
            let op = Unary { f, c: 0.0 };
            assert_eq!(
                f.kernel(ctx.kernels(), 7).spec.name,
                format!("unary_{}", op.name())
            );
            assert_eq!(
                f.kernel(ctx.kernels(), 8).spec.name,
                format!("unary_vec4_{}", op.name())
            );
        }
    }

    #[test]
    fn smooth_unary_ops() {
        for shape in SHAPES {
            check_op(OpCase::new("scale", &[shape], |t, x| scale(t, x[0], -1.7)));
            check_op(OpCase::new("add_scalar", &[shape], |t, x| {
                add_scalar(t, x[0], 0.3)
            }));
            check_op(OpCase::new("neg", &[shape], |t, x| neg(t, x[0])));
            check_op(OpCase::new("square", &[shape], |t, x| square(t, x[0])));
        }
    }

    #[test]
    fn roots_on_positive_inputs() {
        // x^2 + 0.5 keeps the argument positive and away from the pole.
        for shape in SHAPES {
            check_op(OpCase::new("sqrt", &[shape], |t, x| {
                let p = ops::square(t, x[0]);
                let p = ops::add_scalar(t, p, 0.5);
                sqrt(t, p)
            }));
            check_op(OpCase::new("rsqrt", &[shape], |t, x| {
                let p = ops::square(t, x[0]);
                let p = ops::add_scalar(t, p, 0.5);
                rsqrt(t, p)
            }));
        }
    }

    #[test]
    fn relu_and_leaky_relu() {
        for shape in SHAPES {
            check_op(OpCase::new("relu", &[shape], |t, x| relu(t, x[0])));
            check_op(OpCase::new("leaky_relu", &[shape], |t, x| {
                leaky_relu(t, x[0], 0.2)
            }));
            // A second-order path through the gradient: d/dx of lrelu'(x) * x^2.
            check_op(OpCase::new("leaky_relu_grad", &[shape, shape], |t, x| {
                let sq = ops::square(t, x[0]);
                leaky_relu_grad(t, sq, x[1], 0.2)
            }));
        }
    }
}
