//! Op throughput on the device `vkgan devices` would pick (`VKGAN_DEVICE=N` to choose):
//! `cargo bench --bench ops`. `VKGAN_BENCH_FILTER=text` runs only the lines whose label contains
//! the text. Each op is compiled once, run once to warm up, then timed over repeated runs.

use std::time::{Duration, Instant};
use vkgan::autograd::{Tape, Var};
use vkgan::ops;
use vkgan::tensor::Tensor;
use vkgan::testing::values;
use vkgan::vk::{Context, ContextOptions};

fn main() {
    let device = std::env::var("VKGAN_DEVICE")
        .ok()
        .map(|d| d.parse().expect("VKGAN_DEVICE is a device index"));
    let ctx = Context::new(&ContextOptions::from_env(device).expect("VKGAN_ environment"))
        .expect("a Vulkan device");
    println!("device: {}", ctx.info().name);
    let filter = std::env::var("VKGAN_BENCH_FILTER").unwrap_or_default();
    elementwise_benches(&ctx, &filter);
    matmul_benches(&ctx, &filter);
    conv2d_benches(&ctx, &filter);
    modulated_conv_benches(&ctx, &filter);
}

/// Broadcast elementwise products at the shapes the 32x32 model's layers use, in ns per output
/// element (wall, and CPU time in brackets).
fn elementwise_benches(ctx: &Context, filter: &str) {
    let x: &[usize] = &[32, 64, 32, 32];
    let cases: [(&str, &[usize]); 4] = [
        ("same shape", x),
        ("per sample and channel", &[32, 64, 1, 1]),
        ("per channel", &[1, 64, 1, 1]),
        ("per sample and pixel", &[32, 1, 32, 32]),
    ];
    let n = x.iter().product::<usize>() as f64;
    let report = |label: &str, timing: Timing| {
        let cpu = timing
            .cpu
            .map_or(String::new(), |c| format!(" [{:.2} per CPU]", c / n * 1e9));
        println!("{label:<60} {:6.2} ns/element{cpu}", timing.wall / n * 1e9);
    };
    for (name, b) in cases {
        let label = format!("mul [32,64,32,32] by {name} {b:?}");
        if label.contains(filter) {
            report(
                &label,
                time_op(ctx, |t, v| ops::mul(t, v[0], v[1]), &[x, b]),
            );
        }
    }
    let label = "scale [32,64,32,32]";
    if label.contains(filter) {
        report(label, time_op(ctx, |t, v| ops::scale(t, v[0], 0.5), &[x]));
    }
    // What a dispatch costs beyond its work: a chain of dependent scales of 64 elements.
    let label = "dispatch: 256 dependent scales of [64]";
    if label.contains(filter) {
        let timing = time_op(
            ctx,
            |t, v| (0..256).fold(v[0], |y, _| ops::scale(t, y, 0.5)),
            &[&[64]],
        );
        report_per_dispatch(label, timing, 256);
    }
    // The same without the barriers: 256 scales of one input, summed pairwise at the end
    // (255 more dispatches, 8 barriers), so that what a barrier adds shows against the above.
    let label = "dispatch: 256 independent scales of [64], then a sum tree";
    if label.contains(filter) {
        let timing = time_op(
            ctx,
            |t, v| {
                let mut level: Vec<_> = (0..256).map(|i| ops::scale(t, v[0], i as f32)).collect();
                while level.len() > 1 {
                    level = level.chunks(2).map(|p| ops::add(t, p[0], p[1])).collect();
                }
                level[0]
            },
            &[&[64]],
        );
        report_per_dispatch(label, timing, 511);
    }
}

/// Prints what each of `dispatches` dispatches in `timing` took, wall and CPU, in us.
fn report_per_dispatch(label: &str, timing: Timing, dispatches: u32) {
    let per = |seconds: f64| seconds / dispatches as f64 * 1e6;
    let cpu = timing
        .cpu
        .map_or(String::new(), |c| format!(" [{:.1} per CPU]", per(c)));
    println!("{label:<60} {:6.1} us/dispatch{cpu}", per(timing.wall));
}

/// The mapping network's and linear layers' products, every transpose layout.
fn matmul_benches(ctx: &Context, filter: &str) {
    for (m, k, n) in [(32, 512, 512), (512, 512, 512)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let label = format!("matmul {m}x{k}x{n} ta={ta:<5} tb={tb:<5}");
            if !label.contains(filter) {
                continue;
            }
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let timing = time_op(ctx, |t, x| ops::matmul(t, x[0], x[1], ta, tb), &[&sa, &sb]);
            let flop = 2.0 * (m * k * n) as f64;
            let per_cpu = timing.cpu.map_or(String::new(), |c| {
                format!(" [{:.2} per CPU-second]", flop / c / 1e9)
            });
            println!(
                "{label} {:8.3} ms {:7.2} GFLOP/s{per_cpu}",
                timing.wall * 1e3,
                flop / timing.wall / 1e9
            );
        }
    }
}

/// CPU seconds this process (all its threads, lavapipe's workers included) has used, from
/// /proc/self/stat on Linux: on a shared machine that measures a CPU driver's work better than
/// the wall clock does. `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on every Linux configuration in practice.
    Some(ticks / 100.0)
}

/// Wall and CPU seconds per run.
#[derive(Clone, Copy, Default)]
struct Timing {
    wall: f64,
    cpu: Option<f64>,
}

/// Seconds per run of the program computing `out` from `leaves` (shapes given, random values).
fn time_op(
    ctx: &Context,
    build: impl FnOnce(&mut Tape, &[Var]) -> Var,
    leaf_shapes: &[&[usize]],
) -> Timing {
    time_outputs(ctx, |t, v| vec![build(t, v)], leaf_shapes, false)
}

/// As `time_op` for several outputs; with `grad`, the leaves require gradients.
fn time_outputs(
    ctx: &Context,
    build: impl FnOnce(&mut Tape, &[Var]) -> Vec<Var>,
    leaf_shapes: &[&[usize]],
    grad: bool,
) -> Timing {
    let mut t = Tape::new();
    let leaves: Vec<Var> = leaf_shapes.iter().map(|s| t.leaf(s, grad)).collect();
    let outputs = build(&mut t, &leaves);
    let tensors: Vec<Tensor> = leaf_shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.iter().product();
            Tensor::from_f32(ctx, s, &values(n, i as u64 + 1)).expect("upload")
        })
        .collect();
    let bound: Vec<(Var, &Tensor)> = leaves.iter().copied().zip(&tensors).collect();
    let mut program = t.compile(ctx, &outputs, &bound).expect("compile");
    program.run().expect("warm-up run");
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let mut runs = 0;
    while runs < 3 || (start.elapsed() < Duration::from_millis(500) && runs < 1000) {
        program.run().expect("run");
        runs += 1;
    }
    let cpu = cpu_start
        .zip(cpu_seconds())
        .map(|(a, b)| (b - a) / runs as f64);
    Timing {
        wall: start.elapsed().as_secs_f64() / runs as f64,
        cpu,
    }
}

/// GFLOP/s by wall clock, and per CPU-second in brackets where known.
fn rate(flop: f64, t: Timing) -> String {
    match t.cpu {
        Some(c) if c > 0.0 => format!("{:.2} [{:.2}]", flop / t.wall / 1e9, flop / c / 1e9),
        _ => format!("{:.2}", flop / t.wall / 1e9),
    }
}

/// (label, I, O, H, k, padding) at batch 32: the 32x32 model's convolutions.
const CONV_SHAPES: &[(&str, usize, usize, usize, usize, usize)] = &[
    ("D 3x3", 64, 64, 32, 3, 1),
    ("D 3x3", 64, 128, 32, 3, 1),
    ("D 3x3", 128, 128, 16, 3, 1),
    ("D 3x3", 128, 256, 16, 3, 1),
    ("D 3x3", 256, 256, 8, 3, 1),
    ("D 3x3", 256, 512, 8, 3, 1),
    ("D 3x3", 512, 512, 4, 3, 1),
    ("D final 3x3 p0", 513, 513, 4, 3, 0),
    ("D from_rgb 1x1", 3, 64, 32, 1, 0),
    ("D residual 1x1", 64, 128, 16, 1, 0),
    ("D residual 1x1", 128, 256, 8, 1, 0),
    ("D residual 1x1", 256, 512, 4, 1, 0),
    ("G 3x3", 256, 256, 4, 3, 1),
    ("G 3x3", 256, 128, 8, 3, 1),
    ("G 3x3", 128, 128, 8, 3, 1),
    ("G 3x3", 128, 64, 16, 3, 1),
    ("G 3x3", 64, 64, 16, 3, 1),
    ("G 3x3", 64, 32, 32, 3, 1),
    ("G 3x3", 32, 32, 32, 3, 1),
    ("G to_rgb 1x1", 32, 3, 32, 1, 0),
];

fn conv2d_benches(ctx: &Context, filter: &str) {
    const B: usize = 32;
    println!(
        "conv2d, batch {B}: GFLOP/s [per CPU-second] (2*B*O*I*k*k*Ho*Wo per run; padding taps \
         counted as work)"
    );
    println!(
        "{:<16} {:>4} {:>4} {:>3} {:>15} {:>15} {:>15}",
        "layer", "I", "O", "H", "forward", "input grad", "weight grad"
    );
    let mut totals = [Timing {
        wall: 0.0,
        cpu: Some(0.0),
    }; 3];
    let mut total_flop = 0.0;
    for &(label, i, o, h, k, p) in CONV_SHAPES {
        let line = format!("{label} {i} {o} {h}");
        if !line.contains(filter) {
            continue;
        }
        let ho = h + 2 * p + 1 - k;
        let x: &[usize] = &[B, i, h, h];
        let w: &[usize] = &[o, i, k, k];
        let g: &[usize] = &[B, o, ho, ho];
        let flop = (2 * B * o * i * k * k * ho * ho) as f64;
        let secs = [
            time_op(ctx, |t, v| ops::conv2d(t, v[0], v[1], None, p), &[x, w]),
            time_op(
                ctx,
                |t, v| ops::conv2d_input_grad(t, v[0], v[1], p),
                &[g, w],
            ),
            time_op(
                ctx,
                |t, v| ops::conv2d_weight_grad(t, v[0], v[1], p),
                &[x, g],
            ),
        ];
        for (total, s) in totals.iter_mut().zip(secs) {
            total.wall += s.wall;
            total.cpu = total.cpu.zip(s.cpu).map(|(a, b)| a + b);
        }
        total_flop += flop;
        println!(
            "{label:<16} {i:>4} {o:>4} {h:>3} {:>15} {:>15} {:>15}",
            rate(flop, secs[0]),
            rate(flop, secs[1]),
            rate(flop, secs[2])
        );
    }
    if total_flop > 0.0 {
        println!(
            "{:<30} {:>15} {:>15} {:>15}   (wall {:.3} s, {:.3} s, {:.3} s)",
            "all of the above",
            rate(total_flop, totals[0]),
            rate(total_flop, totals[1]),
            rate(total_flop, totals[2]),
            totals[0].wall,
            totals[1].wall,
            totals[2].wall
        );
    }
}

/// The generator's modulated 3x3 convolutions at batch 32 (the shared-weight form, with
/// demodulation), forward alone and forward + backward to x, styles and weights.
fn modulated_conv_benches(ctx: &Context, filter: &str) {
    const B: usize = 32;
    println!("modulated conv 3x3, batch {B}: GFLOP/s [per CPU-second] of the convolution's 2*B*O*I*9*H*W");
    println!(
        "{:<16} {:>4} {:>4} {:>3} {:>15} {:>22}",
        "layer", "I", "O", "H", "forward", "forward+backward (x3)"
    );
    for &(i, o, h) in &[
        (256, 256, 4),
        (256, 128, 8),
        (128, 128, 8),
        (128, 64, 16),
        (64, 64, 16),
        (64, 32, 32),
        (32, 32, 32),
    ] {
        let line = format!("G modconv {i} {o} {h}");
        if !line.contains(filter) {
            continue;
        }
        let shapes: [&[usize]; 3] = [&[B, i, h, h], &[B, i], &[o, i, 3, 3]];
        let flop = (2 * B * o * i * 9 * h * h) as f64;
        let forward = time_op(
            ctx,
            |t, v| vkgan::nn::layers::modulated_conv(t, v[0], v[1], v[2], true),
            &shapes,
        );
        let both = time_outputs(
            ctx,
            |t, v| {
                let y = vkgan::nn::layers::modulated_conv(t, v[0], v[1], v[2], true);
                let loss = ops::sum_all(t, y);
                let grads = t.grad(&[loss], v, None, false);
                grads.into_iter().flatten().collect()
            },
            &shapes,
            true,
        );
        println!(
            "{:<16} {i:>4} {o:>4} {h:>3} {:>15} {:>22}",
            "G modconv",
            rate(flop, forward),
            rate(3.0 * flop, both)
        );
    }
}
