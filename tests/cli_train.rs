//! `vkgan train` run as a user runs it: what a run writes, bit-exact resume, and a clear
//! one-line error for every bad input, given before any work. A tiny model (8x8 images, a few
//! channels) keeps each test to a few seconds on lavapipe.

#[path = "common/cli.rs"]
mod cli;

use cli::{
    assert_bit_identical, checkpoint, checkpoint_steps, decode, one_step_with_rampup, s, scratch,
    train, write_png, PENALTIES,
};
use std::path::Path;
use std::time::Instant;
use vkgan::persist::checkpoint::{read, TensorData};
use vkgan::train::state::TrainState;

/// Five images of assorted shapes (resized and cropped by the loader) and one file with an
/// image extension that does not decode.
fn image_folder(dir: &Path) {
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    write_png(&dir.join("a.png"), 12, 10, 0);
    write_png(&dir.join("b.png"), 8, 8, 1);
    write_png(&dir.join("c.png"), 9, 17, 2);
    write_png(&dir.join("nested/d.png"), 16, 16, 3);
    write_png(&dir.join("nested/e.png"), 30, 8, 4);
    std::fs::write(dir.join("broken.png"), b"this is not a PNG").unwrap();
    std::fs::write(dir.join("notes.txt"), b"not an image, not counted").unwrap();
}

/// Every f32 value of a checkpoint is finite.
fn all_finite(path: &Path) -> bool {
    read(path).unwrap().tensors.values().all(|t| match &t.data {
        TensorData::F32(v) => v.iter().all(|x| x.is_finite()),
        _ => true,
    })
}

#[test]
fn training_on_a_folder_writes_every_output() {
    let tmp = scratch("train-folder");
    let data = tmp.path().join("data");
    image_folder(&data);
    let out = tmp.path().join("run");
    let run = train(&[
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--steps",
        "6",
        "--sample-every",
        "3",
        "--checkpoint-every",
        "2",
        "--keep-checkpoints",
        "2",
    ])
    .expect_ok();

    // The corrupt file is skipped with a warning naming it, and counted.
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{run}");
    assert!(warnings[0].contains("broken.png"), "{run}");
    assert!(
        run.stderr.contains("5 images") && run.stderr.contains("1 file skipped"),
        "no image count:\n{run}"
    );

    // Samples: one per interval and the latest, each a decodable grid of fakes | reals.
    for name in ["samples/step-00000003.png", "samples/step-00000006.png"] {
        let img = decode(&out.join(name));
        assert!(img.width() > img.height() && img.height() >= 128, "{name}");
    }
    assert_eq!(
        decode(&out.join("samples.png")),
        decode(&out.join("samples/step-00000006.png"))
    );
    let plot = decode(&out.join("loss.png"));
    assert!(plot.width() >= 200 && plot.height() >= 100);

    // One metrics line per step, in order, with finite losses.
    let text = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "{text}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["step"], i as u64, "{text}");
        for key in ["d_loss", "g_loss", "d_real", "d_fake"] {
            let v = line[key].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite(), "{key} at step {i}: {text}");
        }
    }

    // The configuration as run.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["image_size"], 8);
    assert_eq!(config["model"]["g_max_features"], 8);
    assert_eq!(config["batch"], 4);
    assert_eq!(config["steps"], 6);
    assert_eq!(config["data"], s(&data));

    // Checkpoints at 2, 4 and 6, of which the newest two are kept; they load, with the run's
    // configuration and step.
    assert_eq!(checkpoint_steps(&out), vec![4, 6]);
    for step in [4, 6] {
        let ck = read(&checkpoint(&out, step)).unwrap();
        assert_eq!(ck.meta_parse::<u64>("step").unwrap(), step);
        let cfg = TrainState::config_of(&ck).unwrap();
        assert_eq!(cfg.model.image_size, 8);
        assert_eq!(cfg.data.as_deref(), Some(data.as_path()));
        assert!(ck.tensors.contains_key("generator.initial_constant"));
        assert!(ck.tensors.contains_key("ema.generator.initial_constant"));
        assert!(all_finite(&checkpoint(&out, step)));
    }
    assert!(!out.join(".vkgan-write-test").exists());
}

#[test]
fn training_on_the_embedded_emoji_set() {
    let tmp = scratch("train-emoji");
    let out = tmp.path().join("run");
    let run = train(&["--out", s(&out), "--steps", "2", "--sample-every", "2"]).expect_ok();
    assert!(run.stderr.contains("embedded emoji"), "{run}");
    assert!(!run.stderr.contains("warning"), "{run}");
    decode(&out.join("samples.png"));
    decode(&out.join("loss.png"));
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert_eq!(checkpoint_steps(&out), vec![2]);
    let cfg = TrainState::config_of(&read(&checkpoint(&out, 2)).unwrap()).unwrap();
    assert_eq!(cfg.data, None);
}

#[test]
fn resumed_training_is_bit_exact() {
    let tmp = scratch("resume");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut args = PENALTIES.to_vec();
    args.extend(["--out", s(&a), "--steps", "6"]);
    train(&args).expect_ok();

    let mut args = PENALTIES.to_vec();
    args.extend(["--out", s(&b), "--steps", "3"]);
    train(&args).expect_ok();
    assert_eq!(checkpoint_steps(&b), vec![3]);
    let run =
        cli::vkgan(&["train", "--resume", s(&b), "--steps", "6", "--no-progress"]).expect_ok();
    assert!(!run.stderr.contains("warning"), "{run}");

    let ca = read(&checkpoint(&a, 6)).unwrap();
    let cb = read(&checkpoint(&b, 6)).unwrap();
    assert_bit_identical(&ca, &cb);
    assert_eq!(ca.meta("plp_steps").unwrap(), "2");

    // The metrics of the resumed run continue where they stopped and match the uninterrupted
    // run's values.
    let values = |dir: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("time");
                v
            })
            .collect()
    };
    assert_eq!(values(&a), values(&b));
    assert!(values(&a)[5].get("path_length_penalty").is_some());
    assert!(values(&a)[5].get("r1").is_some());
}

#[test]
fn bad_training_inputs_are_one_line_errors_before_any_work() {
    let tmp = scratch("bad-train");
    let out = tmp.path().join("out");
    let out_s = s(&out).to_string();
    let with_out = |extra: &[&str]| {
        let mut args = vec!["--out", out_s.as_str(), "--steps", "2"];
        args.extend_from_slice(extra);
        train(&args)
    };

    // A folder with files but no images.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), b"hello").unwrap();
    with_out(&["--data", s(&empty)]).expect_error(&["no images under", s(&empty)]);
    // Only undecodable images.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("x.jpg"), b"nope").unwrap();
    with_out(&["--data", s(&broken)]).expect_error(&["no images under", "did not decode"]);
    // Fewer images than one batch.
    let few = tmp.path().join("few");
    std::fs::create_dir_all(&few).unwrap();
    for k in 0..3 {
        write_png(&few.join(format!("{k}.png")), 8, 8, k);
    }
    with_out(&["--data", s(&few)]).expect_error(&["3 images", "batch of 4"]);
    // A missing folder, and a file given as the folder.
    let missing = tmp.path().join("missing");
    with_out(&["--data", s(&missing)]).expect_error(&[s(&missing), "does not exist"]);
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    with_out(&["--data", s(&file)]).expect_error(&[s(&file), "not a directory"]);
    // Sizes.
    with_out(&["--image-size", "24"]).expect_error(&["image size 24", "power of two"]);
    with_out(&["--image-size", "512"]).expect_error(&["image size 512", "8 to 256"]);
    with_out(&["--batch", "6"]).expect_error(&["batch 6", "multiple of 4"]);
    with_out(&["--lr", "0"]).expect_error(&["--lr"]);
    // None of these created the output directory.
    assert!(!out.exists(), "a failed start left {}", out.display());

    // An output directory that cannot be created: a path under a regular file.
    let under_file = file.join("run");
    train(&["--out", s(&under_file), "--steps", "2"])
        .expect_error(&["cannot create output directory", s(&under_file)]);

    // Resuming a directory without checkpoints, or one that does not exist.
    let bare = tmp.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    cli::vkgan(&["train", "--resume", s(&bare)]).expect_error(&["no checkpoint to resume"]);
    cli::vkgan(&["train", "--resume", s(&missing)]).expect_error(&[s(&missing)]);
}

#[test]
fn resume_refuses_changed_settings_and_reports_corrupt_checkpoints() {
    let tmp = scratch("resume-bad");
    let run_dir = tmp.path().join("run");
    train(&[
        "--out",
        s(&run_dir),
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--sample-every",
        "4",
    ])
    .expect_ok();
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", s(&run_dir), "--no-progress"];
        args.extend_from_slice(extra);
        cli::vkgan(&args)
    };
    let before = std::fs::read(checkpoint(&run_dir, 4)).unwrap();
    resume(&["--g-features", "8"]).expect_error(&["model.g_features", "--steps"]);
    resume(&["--image-size", "16"]).expect_error(&["model.image_size"]);
    resume(&["--lr", "0.01"]).expect_error(&["`lr`"]);
    resume(&["--preset", "quick"]).expect_error(&["preset"]);
    let elsewhere = tmp.path().join("elsewhere");
    resume(&["--out", s(&elsewhere), "--steps", "6"]).expect_error(&["--out", "--resume"]);
    assert!(!elsewhere.exists());
    // The refusals left the run as it was.
    assert_eq!(std::fs::read(checkpoint(&run_dir, 4)).unwrap(), before);
    assert_eq!(checkpoint_steps(&run_dir), vec![2, 4]);

    // Already at the requested step: nothing to do, and nothing written.
    let run = resume(&["--steps", "4"]).expect_ok();
    assert!(run.stderr.contains("nothing to do"), "{run}");

    // A truncated newest checkpoint is reported and the one before it resumed.
    std::fs::write(checkpoint(&run_dir, 4), &before[..before.len() / 2]).unwrap();
    let run = resume(&["--steps", "4"]).expect_ok();
    let warning = run
        .stderr
        .lines()
        .find(|l| l.starts_with("warning"))
        .unwrap_or_else(|| panic!("no warning about the corrupt checkpoint:\n{run}"));
    assert!(warning.contains("checkpoint-00000004"), "{run}");
    assert_eq!(checkpoint_steps(&run_dir), vec![2, 4]);
    assert!(all_finite(&checkpoint(&run_dir, 4)));
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint() {
    // An absurd learning rate: Adam moves every weight by about 1e6 per step, so within a few
    // steps the discriminator's scores overflow float32.
    let tmp = scratch("nan");
    let out = tmp.path().join("run");
    let run = train(&[
        "--out",
        s(&out),
        "--steps",
        "20",
        "--lr",
        "1e6",
        "--checkpoint-every",
        "1",
        "--keep-checkpoints",
        "2",
        "--sample-every",
        "20",
    ]);
    let line = run.expect_error(&["became", "training stopped", "the last good checkpoint is"]);
    let step: u64 = line
        .split("at step ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step in {line}"));
    assert!(
        (2..=20).contains(&step),
        "diverged at step {step}: pick another --lr"
    );
    // Steps are counted from 1, as the console and the checkpoint names count them, so the
    // newest checkpoint is the one of the step before, intact and finite, and metrics.jsonl
    // ends with that last good step.
    let good = step - 1;
    assert_eq!(checkpoint_steps(&out).last(), Some(&good), "{run}");
    assert!(line.contains(s(&checkpoint(&out, good))), "{line}");
    assert!(all_finite(&checkpoint(&out, good)));
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count() as u64, good, "{metrics}");
}

#[test]
fn a_run_diverging_at_once_says_no_checkpoint_was_written() {
    // At 1e9 the discriminator's first update already overflows the generator's loss.
    let tmp = scratch("nan-at-once");
    let out = tmp.path().join("run");
    train(&["--out", s(&out), "--steps", "4", "--lr", "1e9"])
        .expect_error(&["at step 1;", "no checkpoint had been written"]);
    assert!(checkpoint_steps(&out).is_empty());
}

#[test]
fn a_fresh_run_never_overwrites_an_existing_one() {
    let dir = scratch("no-overwrite");
    let out = s(dir.path()).to_string();
    train(&["--out", &out, "--steps", "2", "--sample-every", "2"]).expect_ok();
    let ck = checkpoint(dir.path(), 2);
    let before = std::fs::read(&ck).unwrap();
    let metrics = std::fs::read(dir.path().join("metrics.jsonl")).unwrap();
    train(&["--out", &out, "--steps", "2", "--sample-every", "2"])
        .expect_error(&["already holds a training run", "--resume"]);
    assert_eq!(
        std::fs::read(&ck).unwrap(),
        before,
        "the checkpoint was touched"
    );
    assert_eq!(
        std::fs::read(dir.path().join("metrics.jsonl")).unwrap(),
        metrics
    );
}

/// The moving average's ramp: after the first step of a ramped run it is the updated weights
/// themselves (decay 0), where an unramped run's average has barely left the initial ones.
#[test]
fn the_ema_ramp_starts_the_average_at_the_trained_weights() {
    let tmp = scratch("train-ema-rampup");
    let f32s =
        |ck: &vkgan::persist::checkpoint::Checkpoint, name: &str| ck.f32(name).unwrap().1.to_vec();
    for (rampup, same) in [("0.05", true), ("0", false)] {
        let out = tmp.path().join(format!("run-{rampup}"));
        let ck = read(&one_step_with_rampup(&out, rampup)).unwrap();
        for name in [
            "generator.initial_constant",
            "mapping_network.net.0.weight.weight",
        ] {
            let (weights, average) = (f32s(&ck, name), f32s(&ck, &format!("ema.{name}")));
            assert_eq!(weights == average, same, "--ema-rampup {rampup}: {name}");
        }
    }
}

/// One `--no-progress` line: `step 500/1500: D 1.3862  G 0.6931  18.2 img/s  8.0 kimg  ETA
/// 14m39s`, read field by field so that a change of its format fails here.
#[derive(Debug)]
struct Progress {
    step: u64,
    total: u64,
    images_per_second: f64,
    kimg: f64,
    seconds_left: u64,
}

fn progress(line: &str) -> Progress {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let fail = || -> ! { panic!("not a progress line: {line}") };
    let ["step", counter, "D", d, "G", g, rate, "img/s", kimg, "kimg", "ETA", left] = fields[..]
    else {
        fail()
    };
    let (step, total) = counter
        .strip_suffix(':')
        .and_then(|c| c.split_once('/'))
        .unwrap_or_else(|| fail());
    for loss in [d, g] {
        assert!(loss.parse::<f32>().is_ok_and(f32::is_finite), "{line}");
    }
    Progress {
        step: step.parse().unwrap_or_else(|_| fail()),
        total: total.parse().unwrap_or_else(|_| fail()),
        images_per_second: rate.parse().unwrap_or_else(|_| fail()),
        kimg: kimg.parse().unwrap_or_else(|_| fail()),
        seconds_left: duration_seconds(left).unwrap_or_else(|| fail()),
    }
}

/// `12s`, `3m05s`, `1h02m` or `2d03h` in seconds.
fn duration_seconds(text: &str) -> Option<u64> {
    let mut seconds = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        seconds += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    number.is_empty().then_some(seconds)
}

/// The progress lines of a run, and how long the whole command took.
fn progress_lines(args: &[&str]) -> (Vec<Progress>, f64) {
    let began = Instant::now();
    let run = train(args).expect_ok();
    let wall = began.elapsed().as_secs_f64();
    let lines = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("step "))
        .map(progress)
        .collect();
    (lines, wall)
}

#[test]
fn log_lines_show_images_per_second_kimg_and_the_time_left() {
    let tmp = scratch("progress");
    let out = tmp.path().join("run");
    let batch = 32;
    let (lines, wall) = progress_lines(&[
        "--out",
        s(&out),
        "--batch",
        "32",
        "--steps",
        "30",
        "--sample-every",
        "10",
    ]);
    assert_eq!(
        lines.iter().map(|p| (p.step, p.total)).collect::<Vec<_>>(),
        [(10, 30), (20, 30), (30, 30)],
        "{lines:?}"
    );
    for p in &lines {
        // Thousands of images seen, to a tenth.
        let kimg = (p.step * batch) as f64 / 1000.0;
        assert!((p.kimg - kimg).abs() < 0.051, "{p:?}");
        // The rate is over the steps since the first one ended: they took no longer than the
        // whole command.
        assert!(p.images_per_second > 0.0, "{p:?}");
        let measured = ((p.step - 1) * batch) as f64;
        assert!(
            measured / p.images_per_second <= wall,
            "{p:?} in {wall:.1} s"
        );
        // The time left is the remaining images at that rate (both rounded), and the
        // remaining steps took place within the command.
        let left = ((p.total - p.step) * batch) as f64 / p.images_per_second;
        assert!((p.seconds_left as f64 - left).abs() <= 1.0, "{p:?}");
        assert!(p.seconds_left as f64 <= wall + 1.0, "{p:?} in {wall:.1} s");
    }
    assert_eq!(lines[2].seconds_left, 0);

    // A resumed run counts the images of the whole run (1.28 thousand, not the 0.32 since it
    // resumed).
    let run = cli::vkgan(&[
        "train",
        "--resume",
        s(&out),
        "--steps",
        "40",
        "--no-progress",
    ])
    .expect_ok();
    let resumed: Vec<Progress> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("step "))
        .map(progress)
        .collect();
    assert_eq!(resumed.len(), 1, "{run}");
    assert_eq!((resumed[0].step, resumed[0].kimg), (40, 1.3), "{run}");
}

/// The metrics.jsonl records of a run, without their times.
fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Augmentation: ADA is the default for a small dataset and says so; at p = 0 (before its
/// first adjustment) it changes nothing, bit for bit, R1 included; p then follows r_t into
/// metrics.jsonl and ada.png; DiffAugment trains and changes the result.
#[test]
fn augmentation_is_ada_by_default_exact_at_p_zero_and_adapts() {
    let tmp = scratch("train-augment");
    let dir = |name: &str| tmp.path().join(name);
    let run_with = |name: &str, extra: &[&str]| {
        let out = dir(name);
        let mut args = vec![
            "--out",
            s(&out),
            "--sample-every",
            "2",
            "--r1-interval",
            "1",
        ];
        args.extend(extra);
        train(&args).expect_ok()
    };
    let run = run_with("default", &["--steps", "2"]);
    assert!(
        run.stderr.contains("augmenting with ADA (target r_t 0.6)"),
        "{run}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir("default").join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["augment"], "ada");
    run_with("none", &["--steps", "2", "--augment", "none"]);
    let (ada, none) = (
        read(&checkpoint(&dir("default"), 2)).unwrap(),
        read(&checkpoint(&dir("none"), 2)).unwrap(),
    );
    for (name, t) in &none.tensors {
        assert_eq!(
            &ada.tensors[name], t,
            "{name}: ADA at p = 0 must be the identity"
        );
    }
    assert_eq!(ada.meta("ada.p").unwrap(), "0");

    // p moves by 4 images (the tiny batch) x 1 step / 100 images = 0.04 an adjustment.
    run_with(
        "adapting",
        &[
            "--steps",
            "6",
            "--augment",
            "ada",
            "--ada-kimg",
            "0.1",
            "--ada-interval",
            "1",
        ],
    );
    let log = records(&dir("adapting"));
    let p: Vec<f64> = log.iter().map(|r| r["ada_p"].as_f64().unwrap()).collect();
    for r in &log {
        let rt = r["ada_rt"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&rt), "{r}");
    }
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "{p:?}");
    for w in p.windows(2) {
        let moved = (w[1] - w[0]).abs();
        assert!(
            moved < 1e-6 || (moved - 0.04).abs() < 1e-6 || w[1] == 0.0 || w[1] == 1.0,
            "{p:?}"
        );
    }
    assert!(p.iter().any(|&p| p > 0.0), "p never moved: {p:?}");
    decode(&dir("adapting").join("ada.png"));

    run_with("diffaug", &["--steps", "2", "--augment", "diffaug"]);
    let diffaug = read(&checkpoint(&dir("diffaug"), 2)).unwrap();
    let name = "discriminator.final.weight.weight";
    assert_ne!(diffaug.tensors[name], none.tensors[name]);
    assert!(records(&dir("diffaug"))[0].get("ada_p").is_none());
    assert!(!dir("diffaug").join("ada.png").exists());
}

/// Without the `mpi` feature, a process an MPI launcher started as one of several ranks must
/// not train alone (N such runs would write over each other).
#[cfg(not(feature = "mpi"))]
#[test]
fn ranks_of_a_build_without_mpi_refuse_to_train() {
    let out = scratch("no-mpi");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_vkgan"))
        .args(["train", "--steps", "1", "--out", s(out.path())])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("built without the `mpi` feature"),
        "{stderr}"
    );
    assert!(checkpoint_steps(out.path()).is_empty());
}
