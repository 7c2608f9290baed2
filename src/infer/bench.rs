//! `vkgan bench`: training-step throughput on synthetic data, comparable with the PyTorch
//! reference's `scripts/torch_step_bench.py`. A random real batch is written once; the plain
//! step (D program, then G program) and the regularized step (D with R1, then G with the
//! path-length penalty, both forced on every step) are each timed over `steps` steps after
//! `warmup` untimed ones. The four programs stay alive together, as in `vkgan train`, so the
//! peak of device memory is what a training run needs. With profiling on, every dispatch is
//! timed with timestamp queries (which costs a little time of its own) and the kernels are
//! summed by name.

use crate::ops;
use crate::train::config::TrainConfig;
use crate::train::programs::{build_d, build_g, seed_key, DProgram, GProgram, HostInputs};
use crate::train::state::TrainState;
use crate::vk::{merge_profiles, Context, DispatchShape, KernelTime, LimitsMode, VkError};
use serde::Serialize;
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Timed steps of each kind.
    pub steps: u64,
    /// Untimed steps of each kind before the timed ones.
    pub warmup: u64,
    /// Time every kernel with timestamp queries.
    pub profile: bool,
}

/// What `vkgan bench` measured.
#[derive(Clone, Debug)]
pub struct BenchReport {
    pub device: String,
    pub driver: String,
    /// The kernel family that ran (`cpu` or `gpu`).
    pub kernels: &'static str,
    /// The limits kept to (`device` or `minimum`).
    pub limits: &'static str,
    pub image_size: usize,
    pub batch: usize,
    pub d_latent: usize,
    pub steps: u64,
    /// Seconds to build (record and compile) the four programs.
    pub build_s: f64,
    pub plain_s_per_step: f64,
    pub regularized_s_per_step: f64,
    /// The most bytes of Vulkan buffers alive at once (pooled ones included).
    pub peak_device_bytes: u64,
    /// The most bytes of buffers handed out at once.
    pub peak_in_use_bytes: u64,
    /// Per kernel over the timed steps (empty without profiling).
    pub plain_profile: Vec<KernelTime>,
    pub regularized_profile: Vec<KernelTime>,
    /// What every dispatch of each step asks of the device.
    pub plain_shapes: Vec<DispatchShape>,
    pub regularized_shapes: Vec<DispatchShape>,
}

impl BenchReport {
    pub fn plain_img_per_s(&self) -> f64 {
        self.batch as f64 / self.plain_s_per_step
    }

    pub fn regularized_img_per_s(&self) -> f64 {
        self.batch as f64 / self.regularized_s_per_step
    }

    /// One line of JSON: the four fields the comparison script reads first, then the rest.
    pub fn to_json(&self) -> String {
        let line = BenchLine {
            device: &self.device,
            plain_img_per_s: decimals(self.plain_img_per_s(), 4),
            regularized_img_per_s: decimals(self.regularized_img_per_s(), 4),
            peak_device_bytes: self.peak_device_bytes,
            driver: &self.driver,
            kernels: self.kernels,
            limits: self.limits,
            image_size: self.image_size,
            batch: self.batch,
            d_latent: self.d_latent,
            steps: self.steps,
            plain_s_per_step: decimals(self.plain_s_per_step, 4),
            regularized_s_per_step: decimals(self.regularized_s_per_step, 4),
            peak_in_use_bytes: self.peak_in_use_bytes,
            build_s: decimals(self.build_s, 3),
        };
        serde_json::to_string(&line).expect("a bench report serialises")
    }
}

/// The JSON line of a [`BenchReport`]; serde writes the fields in this order, which
/// `scripts/bench_compare.py` and `tests/cli_bench.rs` rely on.
#[derive(Serialize)]
struct BenchLine<'a> {
    device: &'a str,
    plain_img_per_s: f64,
    regularized_img_per_s: f64,
    peak_device_bytes: u64,
    driver: &'a str,
    kernels: &'a str,
    limits: &'a str,
    image_size: usize,
    batch: usize,
    d_latent: usize,
    steps: u64,
    plain_s_per_step: f64,
    regularized_s_per_step: f64,
    peak_in_use_bytes: u64,
    build_s: f64,
}

/// `x` rounded to `places` decimals: timings are not precise beyond that, and more digits only
/// make the line harder to read.
fn decimals(x: f64, places: usize) -> f64 {
    format!("{x:.places$}").parse().unwrap_or(x)
}

/// A table of `shapes` per kernel (dispatches, invocations per dispatch from least to most, all
/// invocations, shared memory per workgroup), most invocations first: how much parallel work
/// each kernel offers a device, which a GPU needs by the tens of thousands to fill itself.
pub fn shape_table(shapes: &[DispatchShape]) -> String {
    let mut rows: Vec<(&str, u64, u64, u64, u64, u32)> = Vec::new();
    for s in shapes {
        match rows.iter_mut().find(|r| r.0 == s.name) {
            Some(r) => {
                r.1 += 1;
                r.2 = r.2.min(s.invocations);
                r.3 = r.3.max(s.invocations);
                r.4 += s.invocations;
            }
            None => rows.push((
                s.name,
                1,
                s.invocations,
                s.invocations,
                s.invocations,
                s.shared_bytes,
            )),
        }
    }
    rows.sort_by(|a, b| b.4.cmp(&a.4).then(a.0.cmp(b.0)));
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(6).max(6);
    let mut out = format!(
        "{:width$} {:>10} {:>12} {:>12} {:>14} {:>8}\n",
        "kernel", "dispatches", "least", "most", "invocations", "shared"
    );
    for (name, n, least, most, total, shared) in rows {
        out.push_str(&format!(
            "{name:width$} {n:>10} {least:>12} {most:>12} {total:>14} {shared:>8}\n"
        ));
    }
    out
}

/// A table of `profile` (kernel, calls, ms, share of the total), longest first.
pub fn profile_table(profile: &[KernelTime]) -> String {
    let total: f64 = profile.iter().map(|t| t.ns).sum();
    let width = profile
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = format!(
        "{:<width$} {:>8} {:>12} {:>7}\n",
        "kernel", "calls", "ms", "%"
    );
    for t in profile {
        let share = if total > 0.0 {
            100.0 * t.ns / total
        } else {
            0.0
        };
        out += &format!(
            "{:<width$} {:>8} {:>12.3} {:>7.2}\n",
            t.name,
            t.calls,
            t.ns / 1e6,
            share
        );
    }
    out += &format!(
        "{:<width$} {:>8} {:>12.3} {:>7.2}\n",
        "total",
        "",
        total / 1e6,
        100.0
    );
    out
}

/// One step's pair of programs and the host scalars they need.
struct Step {
    d: DProgram,
    g: GProgram,
}

impl Step {
    fn run(&mut self, state: &mut TrainState, idx: u32) -> Result<(), VkError> {
        let d = &mut self.d;
        d.program.set_scalar(d.rng_step, idx);
        d.program.set_scalar(d.adam_step, state.opt_d.advance());
        d.program.run()?;
        let g = &mut self.g;
        g.program.set_scalar(g.rng_step, idx);
        g.program.set_scalar(g.adam_g, state.opt_g.advance());
        g.program.set_scalar(g.adam_m, state.opt_m.advance());
        g.program.run()
    }

    fn set_profiling(&mut self, on: bool) -> Result<(), VkError> {
        self.d.program.graph_mut().set_profiling(on)?;
        self.g.program.graph_mut().set_profiling(on)
    }

    fn reset_profile(&mut self) {
        self.d.program.graph_mut().reset_profile();
        self.g.program.graph_mut().reset_profile();
    }

    fn shapes(&self) -> Vec<DispatchShape> {
        let mut shapes = self.d.program.graph().dispatch_shapes();
        shapes.extend(self.g.program.graph().dispatch_shapes());
        shapes
    }

    fn profile(&self) -> Vec<KernelTime> {
        merge_profiles(
            self.d
                .program
                .graph()
                .profile()
                .into_iter()
                .chain(self.g.program.graph().profile()),
        )
    }

    /// Warms up, then times `steps` steps; returns seconds per step.
    fn time(
        &mut self,
        state: &mut TrainState,
        options: &BenchOptions,
        next_idx: &mut u32,
    ) -> Result<f64, VkError> {
        for _ in 0..options.warmup {
            self.run(state, *next_idx)?;
            *next_idx += 1;
        }
        self.reset_profile();
        let began = Instant::now();
        for _ in 0..options.steps {
            self.run(state, *next_idx)?;
            *next_idx += 1;
        }
        Ok(began.elapsed().as_secs_f64() / options.steps as f64)
    }
}

/// Measures `cfg`'s training steps on `ctx` (a fresh context, so that the memory peak is this
/// run's). Fails with `VkError::NoTimestamps` up front when profiling is asked of a device
/// that cannot do it.
pub fn bench(
    ctx: &Context,
    cfg: &TrainConfig,
    options: &BenchOptions,
) -> Result<BenchReport, VkError> {
    assert!(options.steps > 0, "at least one timed step");
    if options.profile {
        ctx.check_timestamps()?;
    }
    let mut state = TrainState::new(ctx, cfg)?;
    let host = HostInputs::new(ctx, cfg, crate::dist::Shard::whole(), false)?;
    let (b, r) = (cfg.batch, cfg.model.image_size);
    let seed = seed_key(cfg.seed);
    for (micro, real) in host.real.iter().enumerate() {
        let uniform = ops::random_fill_cpu(b * 3 * r * r, false, seed, 7_000_000, micro as u32);
        real.write(&uniform.iter().map(|u| 2.0 * u - 1.0).collect::<Vec<_>>())?;
    }
    // Style mixing on, half the blocks from each latent (the reference draws the crossover
    // at random every step; its position does not change the work).
    let crossover = (cfg.model.generator_blocks() / 2) as f32;
    for t in host.crossover_d.iter().chain(&host.crossover_g) {
        t.write(&[crossover])?;
    }
    // The path-length penalty with its running mean in use, as from its second step on.
    host.plp_debias.write(&[1.0 / (1.0 - cfg.plp_beta)])?;
    host.plp_enabled.write(&[1.0])?;
    // The average at its full half-life, as after the ramp.
    host.set_ema_beta(cfg, u64::from(u32::MAX))?;
    host.set_augmentation(cfg, 0, 0.5, true)?;
    host.set_augmentation(cfg, 0, 0.5, false)?;

    let mut next_idx = 0u32;
    let began = Instant::now();
    let mut plain = Step {
        d: build_d(ctx, &state, &host, false)?,
        g: build_g(ctx, &state, &host, false)?,
    };
    let mut build_s = began.elapsed().as_secs_f64();
    if options.profile {
        plain.set_profiling(true)?;
    }
    let plain_s = plain.time(&mut state, options, &mut next_idx)?;

    let began = Instant::now();
    let mut regularized = Step {
        d: build_d(ctx, &state, &host, true)?,
        g: build_g(ctx, &state, &host, true)?,
    };
    build_s += began.elapsed().as_secs_f64();
    if options.profile {
        regularized.set_profiling(true)?;
    }
    let regularized_s = regularized.time(&mut state, options, &mut next_idx)?;

    let info = ctx.info();
    let stats = ctx.stats();
    Ok(BenchReport {
        device: info.name.clone(),
        driver: info.driver.clone(),
        kernels: ctx.kernel_family().label(),
        limits: match ctx.limits_mode() {
            LimitsMode::Device => "device",
            LimitsMode::Minimum => "minimum",
        },
        image_size: r,
        batch: b * cfg.accumulate,
        d_latent: cfg.model.d_latent,
        steps: options.steps,
        build_s,
        plain_s_per_step: plain_s,
        regularized_s_per_step: regularized_s,
        peak_device_bytes: stats.peak_bytes,
        peak_in_use_bytes: stats.peak_in_use_bytes,
        plain_profile: plain.profile(),
        regularized_profile: regularized.profile(),
        plain_shapes: plain.shapes(),
        regularized_shapes: regularized.shapes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelConfig;

    /// A tiny configuration end to end with profiling: both step kinds time, every kernel of
    /// the programs appears, and the JSON line starts with the fields the script reads.
    #[test]
    fn tiny_bench_reports_throughput_memory_and_profile() {
        let ctx = crate::testing::context();
        let cfg = TrainConfig {
            model: ModelConfig {
                image_size: 8,
                d_latent: 16,
                mapping_layers: 2,
                g_features: 4,
                g_max_features: 8,
                d_features: 4,
                d_max_features: 8,
            },
            batch: 4,
            ..TrainConfig::default()
        };
        let options = BenchOptions {
            steps: 2,
            warmup: 1,
            profile: true,
        };
        let report = bench(&ctx, &cfg, &options).unwrap();
        assert!(report.plain_img_per_s() > 0.0 && report.regularized_img_per_s() > 0.0);
        assert!(report.peak_device_bytes >= report.peak_in_use_bytes);
        assert!(report.peak_in_use_bytes > 0);
        for profile in [&report.plain_profile, &report.regularized_profile] {
            assert!(
                profile.iter().any(|t| t.name == "adam_scaled"),
                "{profile:?}"
            );
            assert!(profile.iter().all(|t| t.ns >= 0.0 && t.calls > 0));
        }
        // Only the regularized step differentiates twice, so it runs more kernels.
        let calls = |p: &[KernelTime]| p.iter().map(|t| t.calls).sum::<u64>();
        assert!(calls(&report.regularized_profile) > calls(&report.plain_profile));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert!(json["plain_img_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(json["peak_device_bytes"], report.peak_device_bytes);
        assert!(report.to_json().starts_with("{\"device\":"));
        let table = profile_table(&report.plain_profile);
        assert!(table.contains("adam") && table.contains("total"));
    }
}
