//! The training loop: data in, recorded steps replayed, progress, metrics, samples, loss plot
//! and checkpoints out. Stopping (the `stop` flag: SIGINT or SIGTERM in the CLI) finishes the
//! current step and writes a checkpoint; a stop before the first step writes nothing. A
//! non-finite loss stops with an error naming the step (counted from 1, as the console and the
//! checkpoint names count; metrics.jsonl's `step` is that minus one) and the last good
//! checkpoint, and writes nothing, so that checkpoint stays the newest. Whenever a step writes
//! both, the checkpoint is written before samples and plots: it is what cannot be redone, so a
//! full disk or a broken plot must not cost it.

use super::config::TrainConfig;
use super::programs::{build_d, build_g, seed_key, DProgram, GProgram, HostInputs};
use super::sample::Sampler;
use super::state::TrainState;
use crate::data::{Dataset, Loader, Source};
use crate::ops;
use crate::outputs::images::{self, Batch, GridOptions};
use crate::outputs::plot::{self, PlotOptions};
use crate::outputs::run_log::{self, RunLogWriter};
use crate::persist::checkpoint;
use crate::vk::Context;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Samples in the training grid.
const SAMPLES: usize = 16;
/// Host stream of the style-mixing draws.
const MIXING_STREAM: u32 = 9_000_000;

/// How to run, beyond the configuration.
pub struct RunOptions {
    pub out: PathBuf,
    /// Show a progress bar (else one line per sample interval).
    pub progress: bool,
    /// Set to stop after the current step.
    pub stop: Arc<AtomicBool>,
}

/// What a finished (or stopped) run reports.
pub struct RunSummary {
    pub steps_done: u64,
    pub last_checkpoint: Option<PathBuf>,
    pub stopped_early: bool,
}

impl RunSummary {
    /// The closing lines of a run, naming only files this run actually wrote.
    pub fn report(&self, out: &Path) -> Vec<String> {
        if self.steps_done == 0 {
            return vec![
                "stopped before the first step: no step ran, and no checkpoint or samples were \
                 written"
                    .into(),
            ];
        }
        let mut lines = Vec::new();
        if let Some(path) = &self.last_checkpoint {
            lines.push(format!("checkpoint: {}", path.display()));
        }
        // Every run with a step writes the grid at its last step, or when stopped.
        lines.push(format!("samples: {}", out.join("samples.png").display()));
        lines
    }
}

pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The crossover of step `idx` for micro-batch `micro` and program kind `kind`: with
/// probability `style_mixing_prob` a uniform block index, else `n_blocks` (one w for all).
fn crossover(cfg: &TrainConfig, idx: u64, kind: u32, micro: usize) -> f32 {
    let stream = MIXING_STREAM + kind * 1000 + micro as u32;
    let u = ops::random_fill_cpu(2, false, seed_key(cfg.seed), stream, idx as u32);
    let nb = cfg.model.generator_blocks();
    if u[0] < cfg.style_mixing_prob {
        ((u[1] * nb as f32) as usize).min(nb - 1) as f32
    } else {
        nb as f32
    }
}

/// The training images of `cfg`, checked to fill at least one batch. Opened before anything
/// else a run does, so that a bad dataset is reported before any output is written.
pub fn open_dataset(cfg: &TrainConfig) -> Result<Arc<Dataset>> {
    let source = match &cfg.data {
        Some(dir) => Source::Dir(dir.clone()),
        None => Source::Emoji,
    };
    let dataset = Dataset::open(&source, cfg.model.image_size)?;
    if dataset.len() < cfg.batch {
        bail!(
            "the dataset has {} images, fewer than one batch of {}",
            dataset.len(),
            cfg.batch
        );
    }
    Ok(Arc::new(dataset))
}

/// Trains from `state` (fresh or restored, on `ctx`) on `dataset` (from [`open_dataset`])
/// until `cfg.steps`.
pub fn train(
    ctx: &Context,
    state: TrainState,
    dataset: Arc<Dataset>,
    options: &RunOptions,
) -> Result<RunSummary> {
    let out = &options.out;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create output directory {}", out.display()))?;
    run_loop(ctx, state, dataset, options)
}

fn run_loop(
    ctx: &Context,
    state: TrainState,
    dataset: Arc<Dataset>,
    options: &RunOptions,
) -> Result<RunSummary> {
    let mut state = state;
    let cfg = state.cfg.clone();
    let out = &options.out;
    let host = HostInputs::new(ctx, &cfg)?;
    let mut d_plain: Option<DProgram> = None;
    let mut d_r1: Option<DProgram> = None;
    let mut g_plain: Option<GProgram> = None;
    let mut g_plp: Option<GProgram> = None;
    let mut sampler = Sampler::new(ctx, &state.ema, &cfg.model, &state.w_avg, SAMPLES)?;
    let reals: Vec<f32> = (0..SAMPLES.min(dataset.len()))
        .flat_map(|i| dataset.image(i))
        .collect();
    // Computed at the first measurement, so a run that measures none pays nothing.
    let mut swd_reals = None;
    let start = state.step;
    let mut loader = Loader::new(dataset, cfg.batch, cfg.seed, start * cfg.accumulate as u64)?;
    let metrics_path = out.join("metrics.jsonl");
    if options.stop.load(Ordering::SeqCst) {
        return Ok(RunSummary {
            steps_done: 0,
            last_checkpoint: None,
            stopped_early: true,
        });
    }
    let mut log = if start == 0 {
        RunLogWriter::create(&metrics_path)?
    } else {
        RunLogWriter::resume(&metrics_path, start)?
    };
    let ckpt_dir = checkpoint_dir(out);
    let bar = progress_bar(options.progress, start, cfg.steps);
    let began = Instant::now();
    let mut last_checkpoint = None;
    let mut stopped_early = false;
    for idx in start..cfg.steps {
        if options.stop.load(Ordering::SeqCst) {
            stopped_early = true;
            break;
        }
        for micro in 0..cfg.accumulate {
            let batch = loader.next_batch()?;
            host.real[micro].write(&batch.data)?;
            host.crossover_d[micro].write(&[crossover(&cfg, idx, 0, micro)])?;
            host.crossover_g[micro].write(&[crossover(&cfg, idx, 1, micro)])?;
        }
        let r1 = cfg.r1_at(idx);
        let slot = if r1 { &mut d_r1 } else { &mut d_plain };
        if slot.is_none() {
            *slot = Some(build_d(ctx, &state, &host, r1)?);
        }
        let d = slot.as_mut().unwrap();
        d.program.set_scalar(d.rng_step, idx as u32);
        d.program.set_scalar(d.adam_step, state.opt_d.advance());
        d.program.run()?;
        let d_loss = d.program.read(d.loss)?[0];
        let gp = match d.gp {
            Some(v) => Some(d.program.read(v)?[0]),
            None => None,
        };
        let real_score = d.program.read(d.real_score)?[0];
        let fake_score = d.program.read(d.fake_score)?[0];

        let plp = cfg.plp_at(idx);
        if plp {
            let (debias, enabled) = if state.plp_steps > 0 {
                let b = cfg.plp_beta as f64;
                ((1.0 / (1.0 - b.powi(state.plp_steps as i32))) as f32, 1.0)
            } else {
                (0.0, 0.0)
            };
            host.plp_debias.write(&[debias])?;
            host.plp_enabled.write(&[enabled])?;
        }
        let slot = if plp { &mut g_plp } else { &mut g_plain };
        if slot.is_none() {
            *slot = Some(build_g(ctx, &state, &host, plp)?);
        }
        let g = slot.as_mut().unwrap();
        g.program.set_scalar(g.rng_step, idx as u32);
        g.program.set_scalar(g.adam_g, state.opt_g.advance());
        g.program.set_scalar(g.adam_m, state.opt_m.advance());
        g.program.run()?;
        let g_loss = g.program.read(g.loss)?[0];
        let penalty = match g.penalty {
            Some(v) => Some(g.program.read(v)?[0]),
            None => None,
        };
        if plp {
            state.plp_steps += 1;
        }
        state.step = idx + 1;

        let mut values: Vec<(&str, f64)> = vec![
            ("d_loss", d_loss as f64),
            ("g_loss", g_loss as f64),
            ("d_real", real_score as f64),
            ("d_fake", fake_score as f64),
        ];
        if let Some(gp) = gp {
            values.push(("r1", gp as f64));
        }
        if let Some(p) = penalty {
            values.push(("path_length_penalty", p as f64));
        }
        if cfg.swd_every > 0 && (idx + 1) % cfg.swd_every == 0 {
            if swd_reals.is_none() {
                swd_reals = Some(real_descriptors(ctx, loader.dataset(), &cfg)?);
            }
            let reals = swd_reals.as_ref().expect("just computed");
            values.push(("swd", swd_now(ctx, &mut sampler, reals, &cfg)?));
        }
        if let Some(&(name, value)) = values.iter().find(|(_, v)| !v.is_finite()) {
            let last_good = checkpoint::list(&ckpt_dir)?
                .into_iter()
                .rev()
                .find(|(step, _)| *step <= idx);
            let kept = match last_good {
                Some((_, path)) => format!("the last good checkpoint is {}", path.display()),
                None => "no checkpoint had been written yet".into(),
            };
            let step = idx + 1;
            bail!("the {name} became {value} at step {step}; training stopped ({kept})");
        }
        log.log(idx, &values)?;
        if let Some(bar) = &bar {
            bar.set_position(idx + 1);
            bar.set_message(format!("D {d_loss:.3}  G {g_loss:.3}"));
        }
        let done = idx + 1;
        let last = done == cfg.steps;
        if done % cfg.checkpoint_every == 0 || last {
            last_checkpoint = Some(save(&state, &ckpt_dir, cfg.keep_checkpoints)?);
        }
        if done % cfg.sample_every == 0 || last {
            write_samples(&mut sampler, &reals, &cfg, out, done)?;
            write_plot(&metrics_path, out)?;
            if bar.is_none() {
                let rate = (done - start) as f64 * (cfg.batch * cfg.accumulate) as f64
                    / began.elapsed().as_secs_f64();
                eprintln!(
                    "step {done}/{}: D {d_loss:.4}  G {g_loss:.4}  {rate:.1} img/s",
                    cfg.steps
                );
            }
        }
    }
    if stopped_early && state.step == start && start == 0 {
        // Stopped before the first step of a fresh run: the metrics file is the empty one made
        // above, and leaving it would make the directory look like a run that must be resumed.
        drop(log);
        let _ = std::fs::remove_file(&metrics_path);
    }
    if stopped_early && state.step > start {
        last_checkpoint = Some(save(&state, &ckpt_dir, cfg.keep_checkpoints)?);
        write_samples(&mut sampler, &reals, &cfg, out, state.step)?;
        write_plot(&metrics_path, out)?;
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(RunSummary {
        steps_done: state.step - start,
        last_checkpoint,
        stopped_early,
    })
}

fn progress_bar(show: bool, start: u64, total: u64) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_position(start);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] step {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    Some(bar)
}

fn save(state: &TrainState, dir: &Path, keep: usize) -> Result<PathBuf> {
    let ck = state.to_checkpoint()?;
    Ok(checkpoint::save(dir, state.step, &ck, keep)?)
}

fn write_samples(
    sampler: &mut Sampler,
    reals: &[f32],
    cfg: &TrainConfig,
    out: &Path,
    step: u64,
) -> Result<()> {
    let seeds: Vec<u64> = (0..sampler.batch_size() as u64).collect();
    let fakes = sampler.generate(&seeds, None, 0, 1.0)?;
    let r = cfg.model.image_size;
    let fake = Batch::new(&fakes, [seeds.len(), 3, r, r])?;
    let real = Batch::new(reals, [reals.len() / (3 * r * r), 3, r, r])?;
    let opts = GridOptions {
        scale: (128 / r as u32).max(1),
        ..GridOptions::default()
    };
    let grid = images::pair_grid(&fake, &real, &opts)?;
    let dir = out.join("samples");
    std::fs::create_dir_all(&dir)?;
    images::save_png(&dir.join(format!("step-{step:08}.png")), &grid)?;
    images::save_png(&out.join("samples.png"), &grid)?;
    Ok(())
}

/// Seed of the SWD patch positions and projections during training.
const SWD_SEED: u64 = 0;
/// Generator seeds of the SWD images (apart from the sample grid's).
const SWD_FIRST_SEED: u64 = 1 << 32;

/// Descriptors of `swd_num` real images (all of them in a smaller set), evenly spaced
/// through the set, computed once.
fn real_descriptors(
    ctx: &Context,
    dataset: &Dataset,
    cfg: &TrainConfig,
) -> Result<crate::metrics::Descriptors> {
    let n = cfg.swd_num.min(dataset.len());
    let reals = dataset.evenly_spaced(n);
    let swd_cfg = crate::metrics::SwdConfig::default();
    let size = cfg.model.image_size;
    Ok(crate::metrics::descriptors(
        ctx, &reals, n, size, SWD_SEED, &swd_cfg,
    )?)
}

/// MS-SWD (mean over levels, x1e3) of the EMA generator against the real descriptors.
fn swd_now(
    ctx: &Context,
    sampler: &mut Sampler,
    reals: &crate::metrics::Descriptors,
    cfg: &TrainConfig,
) -> Result<f64> {
    let n = reals.images;
    let seeds: Vec<u64> = (SWD_FIRST_SEED..SWD_FIRST_SEED + n as u64).collect();
    let fakes = sampler.generate_all(&seeds, 1.0)?;
    let swd_cfg = crate::metrics::SwdConfig::default();
    let size = cfg.model.image_size;
    let fake = crate::metrics::descriptors(ctx, &fakes, n, size, SWD_SEED, &swd_cfg)?;
    Ok(crate::metrics::distance(ctx, reals, &fake)?.mean)
}

/// `loss.png` from every logged loss, and `swd.png` when SWD was measured.
fn write_plot(metrics_path: &Path, out: &Path) -> Result<()> {
    let log = run_log::read(metrics_path)?;
    let (swd, losses): (Vec<_>, Vec<_>) = run_log::series(&log.records)
        .into_iter()
        .partition(|s| s.name == "swd");
    let opts = PlotOptions {
        title: Some("vkgan training losses".into()),
        clip_percentile: Some(1.0),
        ..PlotOptions::default()
    };
    plot::save(&out.join("loss.png"), &losses, &opts)?;
    if !swd.is_empty() {
        let opts = PlotOptions {
            title: Some("MS-SWD x1e3 of the EMA generator (lower is better)".into()),
            ..PlotOptions::default()
        };
        plot::save(&out.join("swd.png"), &swd, &opts)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::ModelConfig;
    use crate::persist::atomic::test_dir::TestDir;

    #[test]
    fn a_stop_before_the_first_step_writes_and_claims_nothing() {
        let ctx = crate::testing::context();
        let cfg = TrainConfig {
            model: ModelConfig {
                image_size: 8,
                d_latent: 8,
                mapping_layers: 1,
                g_features: 4,
                g_max_features: 8,
                d_features: 4,
                d_max_features: 8,
            },
            batch: 4,
            steps: 3,
            ..TrainConfig::default()
        };
        let dir = TestDir::new("stop-first");
        let dataset = open_dataset(&cfg).unwrap();
        let state = TrainState::new(&ctx, &cfg).unwrap();
        let options = RunOptions {
            out: dir.path().to_path_buf(),
            progress: false,
            stop: Arc::new(AtomicBool::new(true)),
        };
        let summary = train(&ctx, state, dataset, &options).unwrap();
        assert_eq!(summary.steps_done, 0);
        assert!(summary.stopped_early && summary.last_checkpoint.is_none());
        assert!(dir.files().is_empty(), "{:?}", dir.files());
        let report = summary.report(dir.path()).join("\n");
        assert!(report.contains("no step ran"), "{report}");
        assert!(!report.contains("samples.png"), "{report}");
    }
}
