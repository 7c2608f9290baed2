//! `vkgan train --init-from` (fine-tuning): a new run from a vkgan checkpoint, a run directory
//! or a PyTorch reference state dict starts with the checkpoint's weights (and moving average,
//! and w_avg) and fresh optimizer state at step 0, writes its own checkpoints from step 1,
//! refuses size flags that disagree with the checkpoint and a combination with --resume, and
//! resumes bit-exactly without reading the file it started from again.

#[path = "common/cli.rs"]
mod cli;
mod common;

use cli::{assert_bit_identical, checkpoint, checkpoint_steps, s, scratch, train, PENALTIES};
use safetensors::{serialize_to_file, tensor::TensorView, Dtype};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use vkgan::nn::{ModelConfig, Net};
use vkgan::persist::checkpoint::{read, Checkpoint, TensorData};
use vkgan::train::config::{Preset, TrainConfig};
use vkgan::train::init::InitSource;
use vkgan::train::state::TrainState;

/// The sizes of the tiny model of `cli::TINY`.
fn tiny() -> ModelConfig {
    vkgan::testing::tiny_model()
}

/// A tiny run of 2 steps in `dir`: its checkpoint at step 2 is the source of the tests.
fn source_run(dir: &Path) -> PathBuf {
    train(&[
        "--out",
        s(dir),
        "--steps",
        "2",
        "--sample-every",
        "2",
        "--seed",
        "7",
    ])
    .expect_ok();
    checkpoint(dir, 2)
}

fn f32s<'a>(ck: &'a Checkpoint, name: &str) -> &'a [f32] {
    ck.f32(name).unwrap_or_else(|e| panic!("{name}: {e}")).1
}

/// Whether a tensor name is one of the three networks' parameters (the state dict's names).
fn is_network(name: &str) -> bool {
    Net::of(name).is_some()
}

/// The state dict the PyTorch reference would save for `ck`'s weights: the networks' tensors
/// under their own names, no moving average, optimizer state, w_avg or metadata.
fn state_dict(ck: &Checkpoint, path: &Path, leave_out: Option<&str>) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = ck
        .tensors
        .iter()
        .filter(|(name, _)| is_network(name) && Some(name.as_str()) != leave_out)
        .map(|(name, t)| {
            let TensorData::F32(v) = &t.data else {
                panic!("{name} is not f32")
            };
            let b = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (name.clone(), t.shape.clone(), b)
        })
        .collect();
    let views: HashMap<String, TensorView> = bytes
        .iter()
        .map(|(name, shape, b)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), b).unwrap();
            (name.clone(), view)
        })
        .collect();
    serialize_to_file(views, &None, path).unwrap();
}

/// Every tensor of `ck` that is an optimizer moment or counter is zero.
fn adam_is_fresh(ck: &Checkpoint) -> bool {
    let moments: Vec<_> = ck
        .tensors
        .keys()
        .filter(|n| n.starts_with("adam."))
        .collect();
    !moments.is_empty()
        && moments
            .iter()
            .all(|n| f32s(ck, n).iter().all(|&x| x == 0.0))
        && [
            "adam_steps.d",
            "adam_steps.g",
            "adam_steps.m",
            "step",
            "plp_steps",
        ]
        .iter()
        .all(|k| ck.meta(k).unwrap() == "0")
        && f32s(ck, "plp.exp_sum_a") == [0.0]
}

#[test]
fn a_new_run_starts_from_the_checkpoints_weights_and_fresh_optimizer_state() {
    let tmp = scratch("init-from");
    let src_dir = tmp.path().join("src");
    let src_path = source_run(&src_dir);
    let src = read(&src_path).unwrap();

    // A run directory resolves to its newest checkpoint, with the run's sizes and step.
    let source = InitSource::read(&src_dir).unwrap();
    assert_eq!(source.path, src_path);
    assert_eq!(source.model, tiny());
    assert_eq!(source.step, Some(2));
    assert!(source.has_ema());

    // The state: the networks, their moving average and w_avg exactly the checkpoint's; Adam,
    // the path-length mean and the step at zero; the run's own settings.
    let base = TrainConfig {
        seed: 99,
        ..Preset::Quick.config()
    };
    let cfg = source.train_config(base, &tiny()).unwrap();
    assert_eq!(cfg.model, tiny());
    assert_eq!((cfg.seed, cfg.batch), (99, 16));
    assert_eq!(cfg.init_from.as_deref(), Some(src_path.as_path()));
    let ctx = common::context();
    let state = TrainState::init_from(&ctx, &cfg, &source.checkpoint).unwrap();
    assert_eq!(state.step, 0);
    let ck = state.to_checkpoint().unwrap();
    assert_eq!(
        ck.tensors.keys().collect::<Vec<_>>(),
        src.tensors.keys().collect::<Vec<_>>()
    );
    for name in src.tensors.keys() {
        if name.starts_with("adam.") || name == "plp.exp_sum_a" {
            continue;
        }
        assert_eq!(f32s(&ck, name), f32s(&src, name), "{name}");
    }
    assert!(adam_is_fresh(&ck), "{:?}", ck.metadata);
    assert!(
        f32s(&src, "adam.generator.initial_constant.v")
            .iter()
            .any(|&x| x != 0.0),
        "the source's moments are not zero, so the test tells them apart"
    );
    assert_eq!(TrainState::config_of(&ck).unwrap(), cfg);

    // The command: a new run that says where it started from, records it, and writes its own
    // checkpoints from step 1.
    let out = tmp.path().join("tuned");
    let run = train(&[
        "--init-from",
        s(&src_dir),
        "--out",
        s(&out),
        "--steps",
        "2",
        "--checkpoint-every",
        "1",
        "--sample-every",
        "1",
    ])
    .expect_ok();
    let announced = run
        .stderr
        .lines()
        .find(|l| l.starts_with("training "))
        .unwrap_or_else(|| panic!("no announcement:\n{run}"));
    assert!(
        announced.contains(&format!("initialised from {} (step 2)", s(&src_path))),
        "{run}"
    );
    assert_eq!(checkpoint_steps(&out), vec![1, 2]);
    let first = read(&checkpoint(&out, 1)).unwrap();
    assert_eq!(first.meta("step").unwrap(), "1");
    assert_eq!(first.meta("adam_steps.g").unwrap(), "1");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let absolute = std::path::absolute(&src_path).unwrap();
    assert_eq!(config["init_from"], s(&absolute));
    assert_eq!(
        TrainState::config_of(&first).unwrap().init_from.as_deref(),
        Some(absolute.as_path())
    );
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2, "{metrics}");

    // Through the command too the weights are the checkpoint's: one step at a vanishing
    // learning rate leaves every one of them where it was (a fresh run's would be far off).
    let still = tmp.path().join("still");
    train(&[
        "--init-from",
        s(&src_path),
        "--out",
        s(&still),
        "--steps",
        "1",
        "--lr",
        "1e-30",
        "--mapping-lr",
        "0",
    ])
    .expect_ok();
    let after = read(&checkpoint(&still, 1)).unwrap();
    for (name, t) in &src.tensors {
        if !is_network(name) || !matches!(t.data, TensorData::F32(_)) {
            continue;
        }
        for (a, b) in f32s(&after, name).iter().zip(f32s(&src, name)) {
            assert!((a - b).abs() <= 1e-6, "{name}: {a} after one step from {b}");
        }
    }
}

#[test]
fn a_pytorch_state_dict_initialises_a_run() {
    let tmp = scratch("init-from-pt");
    let src = read(&source_run(&tmp.path().join("src"))).unwrap();
    let dict = tmp.path().join("reference.safetensors");
    state_dict(&src, &dict, None);

    let source = InitSource::read(&dict).unwrap();
    assert_eq!(source.model, tiny(), "sizes inferred from the shapes");
    assert_eq!(source.step, None);
    assert!(!source.has_ema());
    let cfg = source
        .train_config(Preset::Quick.config(), &tiny())
        .unwrap();
    let ctx = common::context();
    let state = TrainState::init_from(&ctx, &cfg, &source.checkpoint).unwrap();
    let ck = state.to_checkpoint().unwrap();
    for (name, t) in &src.tensors {
        if !is_network(name) {
            continue;
        }
        assert_eq!(f32s(&ck, name), f32s(&src, name), "{name}");
        // No moving average in the file: it starts as the weights.
        let ema = format!("ema.{name}");
        if ck.tensors.contains_key(&ema) {
            assert_eq!(f32s(&ck, &ema), f32s(&src, name), "{ema}");
        }
        assert!(matches!(t.data, TensorData::F32(_)));
    }
    // No running mean of w either: estimated from the mapping network, so finite and not the
    // zeros a fresh run starts with.
    let w_avg = f32s(&ck, "w_avg");
    assert_eq!(w_avg.len(), 8);
    assert!(w_avg.iter().all(|x| x.is_finite()) && w_avg.iter().any(|&x| x != 0.0));
    assert!(adam_is_fresh(&ck));

    let out = tmp.path().join("tuned");
    let run = train(&["--init-from", s(&dict), "--out", s(&out), "--steps", "1"]).expect_ok();
    assert!(
        run.stderr.contains(&format!(
            "initialised from {} (a PyTorch state dict)",
            s(&dict)
        )),
        "{run}"
    );
    assert_eq!(checkpoint_steps(&out), vec![1]);
    // The sizes are the inferred ones even without the size flags (the preset's differ).
    let bare = tmp.path().join("bare");
    cli::vkgan(&[
        "train",
        "--preset",
        "quick",
        "--batch",
        "4",
        "--init-from",
        s(&dict),
        "--out",
        s(&bare),
        "--steps",
        "1",
        "--no-progress",
    ])
    .expect_ok();
    let cfg = TrainState::config_of(&read(&checkpoint(&bare, 1)).unwrap()).unwrap();
    assert_eq!(cfg.model, tiny());
}

#[test]
fn bad_init_from_inputs_are_one_line_errors_that_write_nothing() {
    let tmp = scratch("init-from-bad");
    let src_dir = tmp.path().join("src");
    let src_path = source_run(&src_dir);
    let out = tmp.path().join("out");
    let init = |from: &Path, extra: &[&str]| {
        let mut args = vec!["--init-from", s(from), "--out", s(&out), "--steps", "2"];
        args.extend_from_slice(extra);
        train(&args)
    };

    // Size flags that disagree with the checkpoint, named with both values.
    init(&src_path, &["--image-size", "16"]).expect_error(&[
        "--image-size 16 does not match the checkpoint's 8",
        s(&src_path),
    ]);
    init(&src_dir, &["--d-latent", "16"]).expect_error(&["--d-latent 16", "checkpoint's 8"]);
    init(&src_dir, &["--g-max-features", "4"])
        .expect_error(&["--g-max-features 4", "checkpoint's 8"]);
    // With --resume.
    cli::vkgan(&[
        "train",
        "--resume",
        s(&src_dir),
        "--init-from",
        s(&src_path),
    ])
    .expect_error(&["--init-from cannot be combined with --resume"]);
    // A missing file, a truncated one, a folder without checkpoints, a file that is not a
    // StyleGAN2 checkpoint and a state dict that lacks a tensor.
    let missing = tmp.path().join("missing.safetensors");
    init(&missing, &[]).expect_error(&["--init-from", s(&missing)]);
    let bytes = std::fs::read(&src_path).unwrap();
    let truncated = tmp.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    init(&truncated, &[]).expect_error(&[s(&truncated), "truncated"]);
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    init(&empty, &[]).expect_error(&["no checkpoint in", s(&empty)]);
    let other = tmp.path().join("other.safetensors");
    let mut ck = Checkpoint::new();
    ck.insert_f32("weights", &[2], vec![1.0, 2.0]).unwrap();
    vkgan::persist::checkpoint::write(&other, &ck).unwrap();
    init(&other, &[]).expect_error(&["not a StyleGAN2 checkpoint", s(&other)]);
    let partial = tmp.path().join("partial.safetensors");
    let gone = "generator.blocks.0.style_block2.bias";
    state_dict(&read(&src_path).unwrap(), &partial, Some(gone));
    init(&partial, &[]).expect_error(&[gone, s(&partial)]);
    assert!(!out.exists(), "a failed start left {}", out.display());

    // A run directory cannot be started over by a new run.
    train(&[
        "--init-from",
        s(&src_path),
        "--out",
        s(&src_dir),
        "--steps",
        "2",
    ])
    .expect_error(&["already holds a training run"]);
    assert_eq!(std::fs::read(&src_path).unwrap(), bytes);
}

/// As in cli_train.rs: R1 and path-length steps within the window from step 3 to 6.

#[test]
fn a_resumed_init_from_run_is_bit_exact_and_never_rereads_its_source() {
    let tmp = scratch("init-from-resume");
    let src_dir = tmp.path().join("src");
    let src_path = source_run(&src_dir);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let tuned = |out: &Path, steps: &str| {
        let mut args = PENALTIES.to_vec();
        args.extend([
            "--init-from",
            s(&src_path),
            "--out",
            s(out),
            "--steps",
            steps,
        ]);
        train(&args).expect_ok()
    };
    tuned(&a, "6");
    tuned(&b, "3");
    assert_eq!(checkpoint_steps(&b), vec![3]);

    // The source is gone (a corrupt file in its place): the resumed run restores everything
    // from its own checkpoint.
    std::fs::write(&src_path, b"not a checkpoint any more").unwrap();
    let run =
        cli::vkgan(&["train", "--resume", s(&b), "--steps", "6", "--no-progress"]).expect_ok();
    assert!(!run.stderr.contains("initialised from"), "{run}");
    assert!(!run.stderr.contains("warning"), "{run}");

    let ca = read(&checkpoint(&a, 6)).unwrap();
    let cb = read(&checkpoint(&b, 6)).unwrap();
    assert_bit_identical(&ca, &cb);
    let cfg = TrainState::config_of(&cb).unwrap();
    assert_eq!(
        cfg.init_from,
        Some(std::path::absolute(&src_path).unwrap()),
        "the resumed run keeps its record"
    );
}
