//! Matrix product of two 2-D tensors, either of them read transposed in place.
//!
//! `matmul(a, b, ta, tb)` = op(a) op(b), where op(a) = a (shape [M,K]) or, with `ta`, aᵀ (a
//! stored [K,M]); op(b) = b ([K,N]) or, with `tb`, bᵀ (b stored [N,K]). The result is [M,N].
//! `matmul_scaled(.., alpha)` multiplies the product by a constant for free (the kernel
//! applies it at the store).
//!
//! Backward, with g = dL/dC [M,N] and C = alpha op(a) op(b):
//! - d op(a) = alpha g op(b)ᵀ, so da = alpha g op(b)ᵀ ([M,K]) or, with `ta`, alpha op(b) gᵀ
//!   ([K,M]);
//! - d op(b) = alpha op(a)ᵀ g, so db = alpha op(a)ᵀ g ([K,N]) or, with `tb`, alpha gᵀ op(a)
//!   ([N,K]).
//!
//! Each is another `matmul_scaled` with the transpose flags chosen so that no operand is ever
//! copied; the product is bilinear, so these are exact and differentiate again the same way.
//!
//! Kernels: in the CPU kernel family, `matmul` (register-blocked 8x4 tiles per invocation, vec4
//! loads) whenever the layout gives whole vec4s along the loaded axes, else `matmul_small` (one
//! element per invocation, strided scalar loads); in the GPU family `matmul_gemm` (32 x 64
//! tiles a workgroup through shared memory, strided loads) for every shape.

use super::group_count;
use crate::autograd::{CpuEnv, Op, Recording, Tape, Var};
use crate::tensor::{CpuTensor, Tensor};
use crate::vk::push::{MatmulPush, MatmulSmallPush};
use crate::vk::{grid, read, write, KernelFamily};

/// op(a) op(b) for 2-D `a`, `b`; `ta`/`tb` read the operand transposed.
pub fn matmul(t: &mut Tape, a: Var, b: Var, ta: bool, tb: bool) -> Var {
    matmul_scaled(t, a, b, ta, tb, 1.0)
}

/// `alpha` op(a) op(b).
pub fn matmul_scaled(t: &mut Tape, a: Var, b: Var, ta: bool, tb: bool, alpha: f32) -> Var {
    let op = Matmul { ta, tb, alpha };
    let (m, _, n) = op.dims(t.shape(a), t.shape(b));
    t.push(op, &[a, b], &[m, n])
}

struct Matmul {
    ta: bool,
    tb: bool,
    alpha: f32,
}

impl Matmul {
    /// (M, K, N) from the stored shapes; panics naming both shapes when they do not fit.
    fn dims(&self, a: &[usize], b: &[usize]) -> (usize, usize, usize) {
        assert!(
            a.len() == 2 && b.len() == 2,
            "matmul takes 2-D operands, got {a:?} and {b:?}"
        );
        let (m, k) = if self.ta { (a[1], a[0]) } else { (a[0], a[1]) };
        let (kb, n) = if self.tb { (b[1], b[0]) } else { (b[0], b[1]) };
        assert_eq!(
            k,
            kb,
            "matmul: inner sizes differ: {a:?}{} x {b:?}{}",
            if self.ta { "ᵀ" } else { "" },
            if self.tb { "ᵀ" } else { "" }
        );
        (m, k, n)
    }
}

impl Op for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn cpu(&self, inputs: &[&CpuTensor], _env: &CpuEnv) -> CpuTensor {
        let (a, b) = (inputs[0], inputs[1]);
        let (m, k, n) = self.dims(&a.shape, &b.shape);
        let at = |i: usize, p: usize| {
            if self.ta {
                a.data[p * m + i]
            } else {
                a.data[i * k + p]
            }
        };
        let bt = |p: usize, j: usize| {
            if self.tb {
                b.data[j * k + p]
            } else {
                b.data[p * n + j]
            }
        };
        let mut data = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
                data[i * n + j] = self.alpha as f64 * s;
            }
        }
        CpuTensor::new(&[m, n], data)
    }

    fn record(&self, rec: &mut Recording, inputs: &[&Tensor], out: &Tensor) {
        let (m, k, n) = self.dims(inputs[0].shape(), inputs[1].shape());
        if m == 0 || n == 0 {
            return;
        }
        let ctx = rec.context();
        let bindings = [
            read(inputs[0].buffer()),
            read(inputs[1].buffer()),
            write(out.buffer()),
        ];
        let whole_a = if self.ta { m % 4 == 0 } else { k % 4 == 0 };
        let whole_b = if self.tb { k % 4 == 0 } else { n % 4 == 0 };
        let k_ok = k % 4 == 0 || (self.ta && !self.tb);
        // Rows of C per invocation of the CPU family's register-blocked kernel.
        let row_tiles = m.div_ceil(ctx.kernels().matmul.spec.define("TM"));
        let gpu = ctx.kernel_family() == KernelFamily::Gpu;
        if !gpu && whole_a && whole_b && k_ok && row_tiles <= 65535 {
            let kernel = &ctx.kernels().matmul;
            let col_groups = n.div_ceil(4).div_ceil(kernel.spec.local_size[0] as usize);
            let push = MatmulPush {
                M: (m as u32).into(),
                N: (n as u32).into(),
                K: (k as u32).into(),
                ta: self.ta.into(),
                tb: self.tb.into(),
                alpha: self.alpha.into(),
            };
            rec.dispatch(
                kernel,
                &bindings,
                &push,
                [col_groups as u32, row_tiles as u32, 1],
            );
        } else {
            let kernel = if gpu {
                &ctx.kernels().matmul_gemm
            } else {
                &ctx.kernels().matmul_small
            };
            let (a_sm, a_sk) = if self.ta { (1, m) } else { (k, 1) };
            let (b_sk, b_sn) = if self.tb { (1, k) } else { (n, 1) };
            let u = |v: usize| (v as u32).into();
            let push = MatmulSmallPush {
                M: u(m),
                N: u(n),
                K: u(k),
                a_sm: u(a_sm),
                a_sk: u(a_sk),
                b_sk: u(b_sk),
                b_sn: u(b_sn),
                alpha: self.alpha.into(),
            };
            // matmul_gemm: BM rows x BN columns a workgroup.
            let groups = if gpu {
                let [bm, bn] = ["BM", "BN"].map(|d| kernel.spec.define(d));
                [group_count(n.div_ceil(bn)), group_count(m.div_ceil(bm)), 1]
            } else {
                grid((m * n) as u64, kernel.spec.local_size[0])
            };
            rec.dispatch(kernel, &bindings, &push, groups);
        }
    }

    fn backward(&self, t: &mut Tape, inputs: &[Var], _out: Var, g: Var) -> Vec<Option<Var>> {
        let (a, b) = (inputs[0], inputs[1]);
        let c = self.alpha;
        let da = if self.ta {
            matmul_scaled(t, b, g, self.tb, true, c)
        } else {
            matmul_scaled(t, g, b, false, !self.tb, c)
        };
        let db = if self.tb {
            matmul_scaled(t, g, a, true, self.ta, c)
        } else {
            matmul_scaled(t, a, g, !self.ta, false, c)
        };
        vec![Some(da), Some(db)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, OpCase};

    fn stored(rows: usize, cols: usize, transposed: bool) -> [usize; 2] {
        if transposed {
            [cols, rows]
        } else {
            [rows, cols]
        }
    }

    /// Every transpose combination of an [m,k] x [k,n] product.
    fn check_all_layouts(m: usize, k: usize, n: usize) {
        for ta in [false, true] {
            for tb in [false, true] {
                let sa = stored(m, k, ta);
                let sb = stored(k, n, tb);
                let name = format!("matmul ta={ta} tb={tb}");
                check_op(
                    OpCase::new(&name, &[&sa, &sb], move |t, x| {
                        matmul(t, x[0], x[1], ta, tb)
                    })
                    .tolerance(1e-5, 1e-4),
                );
            }
        }
    }

    #[test]
    fn odd_sizes_take_the_small_kernel() {
        for (m, k, n) in [(1, 1, 1), (7, 13, 5), (13, 1, 7), (1, 65, 13), (5, 7, 129)] {
            check_all_layouts(m, k, n);
        }
    }

    #[test]
    fn multiples_of_four_take_the_blocked_kernel() {
        // M not a multiple of the 8-row tile, N not a multiple of the 64 x 4 column group, and
        // the (ta, !tb) layout with an odd K (its remainder loop).
        for (m, k, n) in [(4, 4, 4), (12, 20, 8), (36, 16, 260), (20, 13, 12)] {
            check_all_layouts(m, k, n);
        }
    }

    #[test]
    fn mixed_kernels_in_one_graph() {
        // 129 x 64 x 65: some layouts blocked, their adjoints not; scaled.
        check_op(
            OpCase::new("matmul_scaled", &[&[129, 64], &[65, 64]], |t, x| {
                matmul_scaled(t, x[0], x[1], false, true, 0.125)
            })
            .tolerance(1e-5, 1e-4),
        );
    }

    /// The kernel a product of these stored shapes records.
    fn kernel_for(sa: [usize; 2], sb: [usize; 2], ta: bool, tb: bool) -> &'static str {
        crate::testing::recorded_kernels(&[&sa, &sb], |t, v| matmul(t, v[0], v[1], ta, tb))[0]
    }

    #[test]
    fn kernel_choice_follows_the_family_and_layout() {
        if crate::testing::context().kernel_family() == KernelFamily::Gpu {
            for (sa, sb, ta, tb) in [
                ([32, 512], [512, 512], false, true),
                ([12, 5], [5, 8], false, false),
            ] {
                assert_eq!(kernel_for(sa, sb, ta, tb), "matmul_gemm");
            }
            return;
        }
        // The mapping network's product and both of its adjoints are blocked.
        assert_eq!(kernel_for([32, 512], [512, 512], false, true), "matmul");
        assert_eq!(kernel_for([32, 512], [512, 512], false, false), "matmul");
        assert_eq!(kernel_for([32, 512], [32, 512], true, false), "matmul");
        assert_eq!(kernel_for([5, 12], [5, 8], true, false), "matmul");
        assert_eq!(kernel_for([12, 5], [5, 8], false, false), "matmul_small");
        assert_eq!(kernel_for([8, 12], [7, 12], false, true), "matmul");
        assert_eq!(kernel_for([8, 12], [12, 7], false, false), "matmul_small");
    }

    #[test]
    #[should_panic(expected = "inner sizes differ")]
    fn mismatched_inner_sizes_panic() {
        let mut t = Tape::new();
        let a = t.leaf(&[3, 4], true);
        let b = t.leaf(&[5, 2], true);
        matmul(&mut t, a, b, false, false);
    }
}
