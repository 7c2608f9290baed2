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

type Build = fn(&mut Tape, &[Var]) -> Var;

fn main() -> anyhow::Result<()> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    let ctx = Context::new(&ContextOptions::from_env(None)?)?;
    println!("device: {}", ctx.info().name);
    // Shapes that pick each convolution build (see ops::conv2d's kernel choice): 3x3 on a
    // plane 8 wide takes the Winograd build, on 4 wide the 4-column tile; 1x1 by width alike.
    let cases: &[(&str, &[&[usize]], Build)] = &[
        (
            "conv2d 3x3 8x8",
            &[&[2, 16, 8, 8], &[16, 16, 3, 3]],
            |t, v| ops::conv2d(t, v[0], v[1], None, 1),
        ),
        (
            "conv2d_lrelu 3x3 8x8",
            &[&[2, 16, 8, 8], &[16, 16, 3, 3]],
            |t, v| ops::conv2d_lrelu(t, v[0], v[1], None, 1, 0.2),
        ),
        (
            "conv2d 3x3 4x4",
            &[&[2, 16, 4, 4], &[16, 16, 3, 3]],
            |t, v| ops::conv2d(t, v[0], v[1], None, 1),
        ),
        (
            "conv2d 1x1 8x8",
            &[&[2, 16, 8, 8], &[16, 16, 1, 1]],
            |t, v| ops::conv2d(t, v[0], v[1], None, 0),
        ),
        (
            "conv2d_lrelu 1x1 8x8",
            &[&[2, 16, 8, 8], &[16, 16, 1, 1]],
            |t, v| ops::conv2d_lrelu(t, v[0], v[1], None, 0, 0.2),
        ),
        (
            "conv2d 1x1 4x4",
            &[&[2, 16, 4, 4], &[16, 16, 1, 1]],
            |t, v| ops::conv2d(t, v[0], v[1], None, 0),
        ),
        (
            "input grad 3x3 8x8",
            &[&[2, 16, 8, 8], &[16, 16, 3, 3]],
            |t, v| ops::conv2d_input_grad(t, v[0], v[1], 1),
        ),
        (
            "weight grad 3x3 8x8",
            &[&[2, 16, 8, 8], &[2, 16, 8, 8]],
            |t, v| ops::conv2d_weight_grad(t, v[0], v[1], 1),
        ),
        (
            "weight grad 3x3 4x4",
            &[&[2, 16, 4, 4], &[2, 16, 4, 4]],
            |t, v| ops::conv2d_weight_grad(t, v[0], v[1], 1),
        ),
        (
            "weight grad 1x1 8x8",
            &[&[2, 16, 8, 8], &[2, 16, 8, 8]],
            |t, v| ops::conv2d_weight_grad(t, v[0], v[1], 0),
        ),
    ];
    for &(label, shapes, build) in cases {
        if !label.contains(filter.as_str()) {
            continue;
        }
        let mut t = Tape::new();
        let leaves: Vec<Var> = shapes.iter().map(|s| t.leaf(s, false)).collect();
        let out = build(&mut t, &leaves);
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
