//! What each convolution kernel's first dispatch costs beyond its later ones: on CPU drivers
//! that is the kernel's JIT compile (lavapipe compiles a kernel the first time a queue runs
//! it, and keeps the code in Mesa's disk cache for later processes).
//!
//! ```sh
//! MESA_SHADER_CACHE_DISABLE=true cargo run --release --example first_dispatch [FILTER]
//! ```
//! Each line is one op at a small shape in a program of its own, run twice with timestamp
//! queries: the kernels it dispatched, and per kernel the first run's time and the second's.
//! Without the cache variable, a kernel Mesa has already compiled shows no difference. A
//! `FILTER` runs only the ops whose label contains it.

use std::time::Instant;
use vkgan::autograd::{Tape, Var};
use vkgan::ops;
use vkgan::tensor::Tensor;
use vkgan::testing::values;
use vkgan::vk::{Context, ContextOptions};

/// The op a case runs; its inputs follow from the kernel size and plane width.
#[derive(Clone, Copy)]
enum Conv {
    Forward,
    Lrelu,
    InputGrad,
    WeightGrad,
}

impl Conv {
    fn label(self) -> &'static str {
        match self {
            Conv::Forward => "conv2d",
            Conv::Lrelu => "conv2d_lrelu",
            Conv::InputGrad => "input grad",
            Conv::WeightGrad => "weight grad",
        }
    }

    /// The leaf shapes for a k x k kernel on 16-channel planes `width` wide, batch 2.
    fn shapes(self, k: usize, width: usize) -> Vec<Vec<usize>> {
        let plane = vec![2, 16, width, width];
        let second = match self {
            Conv::WeightGrad => plane.clone(),
            _ => vec![16, 16, k, k],
        };
        vec![plane, second]
    }

    fn build(self, t: &mut Tape, v: &[Var], k: usize) -> Var {
        let p = k / 2;
        match self {
            Conv::Forward => ops::conv2d(t, v[0], v[1], None, p),
            Conv::Lrelu => ops::conv2d_lrelu(t, v[0], v[1], None, p, 0.2),
            Conv::InputGrad => ops::conv2d_input_grad(t, v[0], v[1], p),
            Conv::WeightGrad => ops::conv2d_weight_grad(t, v[0], v[1], p),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let ctx = Context::new(&ContextOptions::from_env(None)?)?;
    println!("device: {}", ctx.info().name);
    // (op, kernel size, plane width): shapes that pick each convolution build (see
    // ops::conv2d's kernel choice): 3x3 on a plane 8 wide takes the Winograd build, on 4 wide
    // the 4-column tile; 1x1 by width alike.
    let cases = [
        (Conv::Forward, 3, 8),
        (Conv::Lrelu, 3, 8),
        (Conv::Forward, 3, 4),
        (Conv::Forward, 1, 8),
        (Conv::Lrelu, 1, 8),
        (Conv::Forward, 1, 4),
        (Conv::InputGrad, 3, 8),
        (Conv::WeightGrad, 3, 8),
        (Conv::WeightGrad, 3, 4),
        (Conv::WeightGrad, 1, 8),
    ];
    for (conv, k, width) in cases {
        let label = format!("{} {k}x{k} {width}x{width}", conv.label());
        if !label.contains(filter.as_str()) {
            continue;
        }
        let shapes = conv.shapes(k, width);
        let mut t = Tape::new();
        let leaves: Vec<Var> = shapes.iter().map(|s| t.leaf(s, false)).collect();
        let out = conv.build(&mut t, &leaves, k);
        let tensors = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| Tensor::from_f32(&ctx, s, &values(s.iter().product(), i as u64 + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        let bound: Vec<(Var, &Tensor)> = leaves.iter().copied().zip(&tensors).collect();
        let mut program = t.compile(&ctx, &[out], &bound)?;
        program.graph_mut().set_profiling(true)?;
        let mut runs = Vec::new();
        for _ in 0..2 {
            let start = Instant::now();
            program.graph_mut().reset_profile();
            program.run()?;
            runs.push((start.elapsed().as_secs_f64(), program.graph().profile()));
        }
        let [(first_s, first), (second_s, second)] = <[_; 2]>::try_from(runs).expect("two runs");
        println!("{label}: first run {first_s:.2} s, second {second_s:.3} s");
        for k in &first {
            let later = second
                .iter()
                .find(|s| s.name == k.name)
                .map_or(0.0, |s| s.ns);
            println!(
                "    {:<24} {:>10.1} ms first, {:>8.2} ms second",
                k.name,
                k.ns / 1e6,
                later / 1e6
            );
        }
    }
    Ok(())
}
