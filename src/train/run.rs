//! The training loop: data in, recorded steps replayed, progress, the run log, snapshots and
//! checkpoints out. Stopping (the `stop` flag: SIGINT or SIGTERM in the CLI) finishes the
//! current step and writes a checkpoint; a stop before the first step writes nothing. A
//! non-finite loss stops with an error naming the step (counted from 1, as the console and the
//! checkpoint names count; metrics.jsonl's `step` is that minus one) and the last good
//! checkpoint, and writes nothing, so that checkpoint stays the newest. Whenever a step writes
//! both, the checkpoint is written before samples and plots: it is what cannot be redone, so a
//! full disk or a broken plot must not cost it.
//!
//! With several ranks ([`World`]) every rank runs the same loop on its share of each batch,
//! and the steps' all-reduces keep them in lock-step: the losses, scores and ADA's signs are
//! reduced with the gradients, so every rank sees the same values and takes the same
//! decisions; a stop requested on any rank travels in the D step's all-reduce, so all stop
//! after the same step. Rank 0 alone writes the run log, samples, plots and checkpoints, and
//! at every checkpoint the ranks prove that their states are still identical.

use super::augment::{AdaState, AdaTuning, Augment};
use super::config::TrainConfig;
use super::exchange::{self, ExchangeCost, HostValues};
use super::programs::{build_d, build_g, seed_key, DProgram, GProgram, HostInputs};
use super::progress::{Status, Throughput};
use super::snapshots::Snapshots;
use super::state::{state_fingerprint, TrainState};
use crate::data::{Dataset, Loader, Source};
use crate::dist::World;
use crate::ops;
use crate::outputs::run_log::RunLogWriter;
use crate::persist::run_dir;
use crate::vk::{Context, DeviceKind};
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Host stream of the style-mixing draws.
const MIXING_STREAM: u32 = 9_000_000;

/// How to run, beyond the configuration.
pub struct RunOptions {
    pub out: PathBuf,
    /// Show a progress bar (else one line per sample interval); both show
    /// [`super::progress::Status`].
    pub progress: bool,
    /// Set to stop after the current step.
    pub stop: Arc<AtomicBool>,
    /// Split every step into gradients, exchange and update even on one rank (several ranks
    /// always do): for the test that holds the split to the fused step's bits.
    pub split: bool,
}

/// What a finished (or stopped) run reports.
pub struct RunSummary {
    pub steps_done: u64,
    pub last_checkpoint: Option<PathBuf>,
    /// With several ranks: what the all-reduces cost.
    pub exchange: Option<String>,
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
        lines.extend(self.exchange.clone());
        // Every run with a step writes the grid at its last step, or when stopped.
        lines.push(format!("samples: {}", out.join("samples.png").display()));
        lines
    }
}

pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Where a run goes when no directory is named: `runs/<YYYYmmdd-HHMMSS, UTC>`, so that runs
/// sort by when they started.
pub fn default_out_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(utc_timestamp(secs))
}

/// `YYYYmmdd-HHMMSS` in UTC (days-to-civil conversion of the proleptic Gregorian calendar).
fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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
/// until `cfg.steps`, as this process's rank of `world`.
pub fn train(
    ctx: &Context,
    state: TrainState,
    dataset: Arc<Dataset>,
    options: &RunOptions,
    world: &World,
) -> Result<RunSummary> {
    let out = &options.out;
    if world.is_root() {
        std::fs::create_dir_all(out)
            .with_context(|| format!("cannot create output directory {}", out.display()))?;
    }
    let run = Run::new(ctx, state, dataset, options, world)?;
    if world.size() == 1 && options.stop.load(Ordering::SeqCst) {
        return Ok(RunSummary {
            steps_done: 0,
            last_checkpoint: None,
            exchange: None,
        });
    }
    run.steps(&options.stop, options.progress)
}

/// The four step programs, each recorded the first time a step needs it.
#[derive(Default)]
struct Programs {
    d_plain: Option<DProgram>,
    d_r1: Option<DProgram>,
    g_plain: Option<GProgram>,
    g_plp: Option<GProgram>,
}

/// What one step measured: the losses for the console, every value for the run log.
struct Measured {
    d_loss: f32,
    g_loss: f32,
    values: Vec<(&'static str, f64)>,
    /// With several ranks: some rank asked to stop, so all stop after this step.
    stop: bool,
}

/// What a D step measured, reduced over the ranks.
struct DMeasured {
    loss: f32,
    gp: Option<f32>,
    real_score: f32,
    fake_score: f32,
    stop: bool,
}

/// A run in progress.
struct Run<'a> {
    ctx: &'a Context,
    cfg: TrainConfig,
    out: &'a Path,
    ckpt_dir: PathBuf,
    state: TrainState,
    host: HostInputs,
    programs: Programs,
    /// Rank 0's samples, plots and MS-SWD (other ranks write nothing).
    snapshots: Option<Snapshots>,
    loader: Loader,
    /// The step the run (re)started at.
    start: u64,
    world: &'a World,
    cost: ExchangeCost,
}

impl<'a> Run<'a> {
    fn new(
        ctx: &'a Context,
        state: TrainState,
        dataset: Arc<Dataset>,
        options: &'a RunOptions,
        world: &'a World,
    ) -> Result<Self> {
        let out = &options.out;
        let cfg = state.cfg.clone();
        let shard = world.shard();
        let host = HostInputs::new(ctx, &cfg, shard, options.split)?;
        let snapshots = if world.is_root() {
            Some(Snapshots::new(
                ctx,
                &state,
                &dataset,
                out.join("metrics.jsonl"),
            )?)
        } else {
            None
        };
        let start = state.step;
        let first_batch = start * cfg.accumulate as u64;
        let loader = Loader::sharded(dataset, cfg.batch, cfg.seed, first_batch, shard)?;
        Ok(Run {
            ctx,
            ckpt_dir: checkpoint_dir(out),
            cfg,
            out,
            state,
            host,
            programs: Programs::default(),
            snapshots,
            loader,
            start,
            world,
            cost: ExchangeCost::default(),
        })
    }

    /// Runs steps until the last or until `stop` is set.
    fn steps(mut self, stop: &AtomicBool, progress: bool) -> Result<RunSummary> {
        let (start, total) = (self.start, self.cfg.steps);
        let root = self.world.is_root();
        // Rank 0's run log (the other ranks keep none).
        let log_path = self.snapshots.as_ref().map(|s| s.log_path().to_path_buf());
        let mut log = match &log_path {
            None => None,
            Some(path) if start == 0 => Some(RunLogWriter::create(path)?),
            Some(path) => Some(RunLogWriter::resume(path, start)?),
        };
        let bar = progress_bar(progress && root, start, total);
        let images_per_step = (self.cfg.batch * self.cfg.accumulate) as u64;
        let mut rate = Throughput::new(images_per_step, start, Instant::now());
        let mut last_checkpoint = None;
        let mut stopped_early = false;
        let alone = self.world.size() == 1;
        // The first step records the programs and the driver compiles their kernels as they
        // first run: seconds on a GPU or a warm Mesa cache, but over a minute on a CPU driver
        // the first time on a machine, which would otherwise look like a hang.
        let compiling = "compiling the kernels (on a CPU driver over a minute the first time \
                         on a machine; Mesa caches them for later runs)";
        if let Some(bar) = &bar {
            bar.set_message(compiling);
        } else if root && start < total && self.ctx.info().kind == DeviceKind::Cpu {
            eprintln!("{compiling}");
        }
        for idx in start..total {
            // Alone, a stop is seen before the step; with several ranks it travels in the
            // step's all-reduce, so that all stop after the same step.
            if alone && stop.load(Ordering::SeqCst) {
                stopped_early = true;
                break;
            }
            let m = self.step(idx, stop)?;
            let done = idx + 1;
            rate.record(done, Instant::now());
            if let Some(log) = &mut log {
                log.log(idx, &m.values)?;
            }
            let status = Status::new(&rate, done, total, m.d_loss, m.g_loss);
            if let Some(bar) = &bar {
                bar.set_position(done);
                bar.set_message(status.to_string());
            }
            let last = done == total;
            if done % self.cfg.checkpoint_every == 0 || last {
                last_checkpoint = self.save()?;
            }
            if done % self.cfg.sample_every == 0 || last {
                if let Some(snapshots) = &mut self.snapshots {
                    snapshots.write(&self.cfg, self.out, done)?;
                }
                if bar.is_none() && root {
                    eprintln!("step {done}/{total}: {status}");
                }
            }
            if m.stop && !last {
                stopped_early = true;
                break;
            }
        }
        if let Some(path) = log_path.filter(|_| stopped_early && self.state.step == 0) {
            // Stopped before the first step of a fresh run: the log is the empty one made
            // above, and leaving it would make the directory look like a run that must be
            // resumed.
            drop(log);
            let _ = std::fs::remove_file(path);
        }
        if stopped_early && self.state.step > start {
            last_checkpoint = self.save()?;
            if let Some(snapshots) = &mut self.snapshots {
                snapshots.write(&self.cfg, self.out, self.state.step)?;
            }
        }
        if let Some(bar) = bar {
            bar.finish();
        }
        let steps_done = self.state.step - start;
        Ok(RunSummary {
            steps_done,
            last_checkpoint,
            exchange: self.cost.report(steps_done, self.world.size()),
        })
    }

    /// Step `idx`: the D program, then the G program, then the values they measured (and
    /// MS-SWD when due), refused if any is not finite.
    fn step(&mut self, idx: u64, stop: &AtomicBool) -> Result<Measured> {
        self.load_batches(idx)?;
        let d = self.run_d(idx, stop.load(Ordering::SeqCst))?;
        let (g_loss, penalty) = self.run_g(idx)?;
        let mut values: Vec<(&'static str, f64)> = vec![
            ("d_loss", d.loss as f64),
            ("g_loss", g_loss as f64),
            ("d_real", d.real_score as f64),
            ("d_fake", d.fake_score as f64),
        ];
        if let Some(gp) = d.gp {
            values.push(("r1", gp as f64));
        }
        if let Some(p) = penalty {
            values.push(("path_length_penalty", p as f64));
        }
        if self.cfg.augment == Augment::Ada {
            // p as the next step will use it, and the r_t it last followed.
            values.push(("ada_p", self.state.ada.p as f64));
            values.push(("ada_rt", self.state.ada.last_rt as f64));
        }
        if self.cfg.swd_every > 0 && (idx + 1) % self.cfg.swd_every == 0 {
            if let Some(snapshots) = &mut self.snapshots {
                let swd = snapshots.swd(self.ctx, self.loader.dataset(), &self.cfg)?;
                values.push(("swd", swd));
            }
        }
        self.check_finite(idx, &values)?;
        Ok(Measured {
            d_loss: d.loss,
            g_loss,
            values,
            stop: d.stop,
        })
    }

    /// Writes every micro-batch's real images and crossovers for step `idx`.
    fn load_batches(&mut self, idx: u64) -> Result<()> {
        for micro in 0..self.cfg.accumulate {
            let batch = self.loader.next_batch()?;
            self.host.real[micro].write(&batch.data)?;
            self.host.crossover_d[micro].write(&[crossover(&self.cfg, idx, 0, micro)])?;
            self.host.crossover_g[micro].write(&[crossover(&self.cfg, idx, 1, micro)])?;
        }
        Ok(())
    }

    /// The D step; `stop` is this rank's wish to stop after it (with several ranks, what
    /// comes back is whether any rank wished it).
    fn run_d(&mut self, idx: u64, stop: bool) -> Result<DMeasured> {
        let r1 = self.cfg.r1_at(idx);
        let slot = if r1 {
            &mut self.programs.d_r1
        } else {
            &mut self.programs.d_plain
        };
        if slot.is_none() {
            *slot = Some(build_d(self.ctx, &self.state, &self.host, r1)?);
        }
        let d = slot.as_mut().expect("just built");
        self.host
            .set_augmentation(&self.cfg, idx, self.state.ada.p, true)?;
        d.program.set_scalar(d.rng_step, idx as u32);
        let adam_step = self.state.opt_d.advance();
        let scalar = d.adam_step;
        d.updater().set_scalar(scalar, adam_step);
        d.program.run()?;
        let mut m = DMeasured {
            loss: d.program.read(d.loss)?[0],
            gp: match d.gp {
                Some(v) => Some(d.program.read(v)?[0]),
                None => None,
            },
            real_score: d.program.read(d.real_score)?[0],
            fake_score: d.program.read(d.fake_score)?[0],
            stop: false,
        };
        let mut signs = (0.0, 0);
        if self.cfg.augment == Augment::Ada {
            for &v in &d.real_scores {
                let scores = d.program.read(v)?;
                signs.0 += AdaState::sign_sum(&scores);
                signs.1 += scores.len() as u64;
            }
        }
        if let Some(ex) = &mut d.exchange {
            let mut averaged = vec![m.loss, m.real_score, m.fake_score];
            averaged.extend(m.gp);
            let summed = [signs.0 as f32, signs.1 as f32, stop as u32 as f32];
            let host = HostValues {
                averaged: &averaged,
                summed: &summed,
            };
            let r = exchange::all_reduce(self.world, ex, host, &mut self.cost)?;
            ex.update.run()?;
            (m.loss, m.real_score, m.fake_score) = (r.averaged[0], r.averaged[1], r.averaged[2]);
            m.gp = m.gp.map(|_| r.averaged[3]);
            // Sums of ±1 and counts below 2^24 are exact in f32.
            signs = (r.summed[0] as f64, r.summed[1] as u64);
            m.stop = r.summed[2] > 0.0;
        }
        if self.cfg.augment == Augment::Ada {
            let tuning = AdaTuning {
                target: self.cfg.ada_target,
                interval: self.cfg.ada_interval,
                kimg: self.cfg.ada_kimg,
                images_per_step: (self.cfg.batch * self.cfg.accumulate) as u64,
            };
            self.state.ada.observe_signs(&tuning, idx, signs.0, signs.1);
        }
        Ok(m)
    }

    /// The G step: (loss, path-length penalty when it ran). Advances the state to `idx + 1`.
    fn run_g(&mut self, idx: u64) -> Result<(f32, Option<f32>)> {
        let plp = self.cfg.plp_at(idx);
        if plp {
            let (debias, enabled) = if self.state.plp_steps > 0 {
                let b = self.cfg.plp_beta as f64;
                (
                    (1.0 / (1.0 - b.powi(self.state.plp_steps as i32))) as f32,
                    1.0,
                )
            } else {
                (0.0, 0.0)
            };
            self.host.plp_debias.write(&[debias])?;
            self.host.plp_enabled.write(&[enabled])?;
        }
        let slot = if plp {
            &mut self.programs.g_plp
        } else {
            &mut self.programs.g_plain
        };
        if slot.is_none() {
            *slot = Some(build_g(self.ctx, &self.state, &self.host, plp)?);
        }
        let g = slot.as_mut().expect("just built");
        self.host.set_ema_beta(&self.cfg, idx)?;
        self.host
            .set_augmentation(&self.cfg, idx, self.state.ada.p, false)?;
        g.program.set_scalar(g.rng_step, idx as u32);
        let (step_g, step_m) = (self.state.opt_g.advance(), self.state.opt_m.advance());
        let (scalar_g, scalar_m) = (g.adam_g, g.adam_m);
        g.updater().set_scalar(scalar_g, step_g);
        g.updater().set_scalar(scalar_m, step_m);
        g.program.run()?;
        let mut loss = g.program.read(g.loss)?[0];
        let mut penalty = match g.penalty {
            Some(v) => Some(g.program.read(v)?[0]),
            None => None,
        };
        if let Some(ex) = &mut g.exchange {
            let mut averaged = vec![loss];
            averaged.extend(penalty);
            let host = HostValues {
                averaged: &averaged,
                summed: &[],
            };
            let r = exchange::all_reduce(self.world, ex, host, &mut self.cost)?;
            ex.update.run()?;
            loss = r.averaged[0];
            penalty = penalty.map(|_| r.averaged[1]);
        }
        if plp {
            self.state.plp_steps += 1;
        }
        self.state.step = idx + 1;
        Ok((loss, penalty))
    }

    /// An error naming the first non-finite value of step `idx` and the checkpoint that stays
    /// the newest.
    fn check_finite(&self, idx: u64, values: &[(&str, f64)]) -> Result<()> {
        let Some(&(name, value)) = values.iter().find(|(_, v)| !v.is_finite()) else {
            return Ok(());
        };
        let last_good = run_dir::list(&self.ckpt_dir)
            .unwrap_or_default()
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

    /// Rank 0 writes the checkpoint of the current step; with several ranks, every rank first
    /// proves its state identical to rank 0's, which the lock-step promises.
    fn save(&self) -> Result<Option<PathBuf>> {
        let ck = self.state.to_checkpoint()?;
        if self.world.size() > 1 {
            let what = format!("state after step {}", self.state.step);
            let fingerprint = state_fingerprint(&ck);
            self.world
                .agree("has left lock-step", &[(what.as_str(), fingerprint)])?;
        }
        if !self.world.is_root() {
            return Ok(None);
        }
        let keep = self.cfg.keep_checkpoints;
        Ok(Some(run_dir::save(
            &self.ckpt_dir,
            self.state.step,
            &ck,
            keep,
        )?))
    }
}

/// A bar of steps followed by the [`Status`] fields, which the loop sets as its message.
fn progress_bar(show: bool, start: u64, total: u64) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_position(start);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:20}] step {pos}/{len}: {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::atomic::test_dir::names_in;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(0), "19700101-000000");
        assert_eq!(utc_timestamp(1_795_901_696), "20261128-213456");
        assert_eq!(utc_timestamp(951_827_696), "20000229-123456");
    }

    /// The last checkpoint's bytes of a run of `cfg` with every step split or fused.
    fn last_checkpoint_bytes(cfg: &TrainConfig, split: bool) -> Vec<u8> {
        let ctx = crate::testing::context();
        let dir = tempfile::tempdir().unwrap();
        let state = TrainState::new(&ctx, cfg).unwrap();
        let options = RunOptions {
            out: dir.path().to_path_buf(),
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            split,
        };
        let dataset = open_dataset(cfg).unwrap();
        let summary = train(&ctx, state, dataset, &options, &World::single()).unwrap();
        std::fs::read(summary.last_checkpoint.unwrap()).unwrap()
    }

    #[test]
    fn a_split_step_on_one_rank_is_the_fused_step_bit_for_bit() {
        // R1 and path length on every step from the second (its first only starts the mean),
        // ADA moving p by 0.8 a step so that augmentation runs: everything a rank exchanges.
        let cfg = TrainConfig {
            model: crate::testing::tiny_model(),
            batch: 8,
            steps: 4,
            r1_interval: 1,
            plp_after: 0,
            plp_interval: 1,
            augment: Augment::Ada,
            ada_interval: 1,
            ada_kimg: 0.01,
            ada_target: -1.0,
            sample_every: 100,
            checkpoint_every: 100,
            ..TrainConfig::default()
        };
        let fused = last_checkpoint_bytes(&cfg, false);
        let split = last_checkpoint_bytes(&cfg, true);
        assert!(fused == split, "the split step changed the checkpoint");
        let ck = crate::persist::checkpoint::from_bytes(&fused).unwrap();
        let p: f32 = ck.meta_parse("ada.p").unwrap();
        assert!(p > 0.5, "ADA's p stayed at {p}: augmentation did not run");
    }

    #[test]
    fn a_stop_before_the_first_step_writes_and_claims_nothing() {
        let ctx = crate::testing::context();
        let cfg = TrainConfig {
            model: crate::testing::tiny_model(),
            batch: 4,
            steps: 3,
            ..TrainConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let dataset = open_dataset(&cfg).unwrap();
        let state = TrainState::new(&ctx, &cfg).unwrap();
        let options = RunOptions {
            out: dir.path().to_path_buf(),
            progress: false,
            stop: Arc::new(AtomicBool::new(true)),
            split: false,
        };
        let summary = train(&ctx, state, dataset, &options, &World::single()).unwrap();
        assert_eq!(summary.steps_done, 0);
        assert!(summary.last_checkpoint.is_none());
        assert!(
            names_in(dir.path()).is_empty(),
            "{:?}",
            names_in(dir.path())
        );
        let report = summary.report(dir.path()).join("\n");
        assert!(report.contains("no step ran"), "{report}");
        assert!(!report.contains("samples.png"), "{report}");
    }
}
