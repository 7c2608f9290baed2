//! Op throughput on the default device (`VKGAN_BENCH_DEVICE=N` to choose another):
//! `cargo bench --bench ops`. Each case compiles one op into a program and times replays of it.

use std::time::{Duration, Instant};
use vkgan::autograd::Tape;
use vkgan::ops;
use vkgan::tensor::{CpuTensor, Tensor};
use vkgan::vk::{Context, ContextOptions};

/// Process CPU time (user + system) in seconds, from /proc (Linux; 0 elsewhere): on a shared
/// machine CPU seconds per run are steadier than wall time.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / 100.0
}

/// Wall seconds per replay of `build`'s output over leaves of `shapes` (the median of replays
/// timed until about half a second has passed), and CPU seconds per replay (the mean).
fn time_op(
    ctx: &Context,
    shapes: &[&[usize]],
    build: impl Fn(&mut Tape, &[vkgan::autograd::Var]) -> vkgan::autograd::Var,
) -> (f64, f64) {
    let mut t = Tape::new();
    let leaves: Vec<_> = shapes.iter().map(|s| t.leaf(s, false)).collect();
    let y = build(&mut t, &leaves);
    let tensors: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n: usize = s.iter().product();
            let data = (0..n).map(|j| ((j * 7 + i) % 13) as f64 / 13.0 - 0.5);
            Tensor::from_cpu(ctx, &CpuTensor::new(s, data.collect())).unwrap()
        })
        .collect();
    let bound: Vec<_> = leaves.iter().copied().zip(&tensors).collect();
    let mut program = t.compile(ctx, &[y], &bound).unwrap();
    program.run().unwrap();
    let mut times = Vec::new();
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    while times.len() < 3 || start.elapsed() < Duration::from_millis(500) {
        let t0 = Instant::now();
        program.run().unwrap();
        times.push(t0.elapsed().as_secs_f64());
    }
    let cpu = (cpu_seconds() - cpu0) / times.len() as f64;
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], cpu)
}

fn bench_matmul(ctx: &Context) {
    for (m, k, n) in [(32, 512, 512), (512, 512, 512)] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let sa = if ta { [k, m] } else { [m, k] };
            let sb = if tb { [n, k] } else { [k, n] };
            let (s, cpu) = time_op(ctx, &[&sa, &sb], |t, x| ops::matmul(t, x[0], x[1], ta, tb));
            let flop = 2.0 * (m * k * n) as f64;
            println!(
                "matmul {m}x{k}x{n} ta={ta:<5} tb={tb:<5} {:8.3} ms {:7.2} GFLOP/s \
                 (per CPU-second: {:7.2})",
                s * 1e3,
                flop / s / 1e9,
                flop / cpu / 1e9
            );
        }
    }
}

fn main() {
    let device = std::env::var("VKGAN_BENCH_DEVICE")
        .ok()
        .map(|d| d.parse().expect("VKGAN_BENCH_DEVICE is a device index"));
    let ctx = Context::new(&ContextOptions {
        device,
        validate: false,
    })
    .expect("a Vulkan device");
    println!("device: {}", ctx.info().name);
    bench_matmul(&ctx);
}
