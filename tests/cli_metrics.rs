//! `vkgan metrics` run as a user runs it: one JSON line, deterministic for a seed; and the
//! learning check: a small model trained for 300 steps on the embedded set scores clearly
//! better (lower SWD) than the same run after its first step.

#[path = "common/cli.rs"]
mod cli;

use cli::{checkpoint, s, scratch, train, vkgan};

fn swd_json(ck: &std::path::Path, seed: &str) -> serde_json::Value {
    let run = vkgan(&[
        "metrics",
        "--checkpoint",
        s(ck),
        "--num",
        "64",
        "--seed",
        seed,
        "--json",
    ])
    .expect_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line of JSON:\n{}", run.stdout);
    serde_json::from_str(lines[0]).expect("valid JSON")
}

#[test]
fn metrics_prints_one_deterministic_json_line() {
    let dir = scratch("metrics");
    train(&[
        "--out",
        s(dir.path()),
        "--steps",
        "2",
        "--sample-every",
        "2",
    ])
    .expect_ok();
    let ck = checkpoint(dir.path(), 2);
    let a = swd_json(&ck, "3");
    let levels = a["swd_levels"].as_array().expect("swd_levels is a list");
    assert!(!levels.is_empty());
    let mean = a["swd_mean"].as_f64().expect("swd_mean is a number");
    let level_mean = levels.iter().map(|v| v.as_f64().unwrap()).sum::<f64>() / levels.len() as f64;
    assert!(
        (mean - level_mean).abs() <= 1e-6 * mean.abs().max(1.0),
        "{a}"
    );
    assert!(mean.is_finite() && mean > 0.0, "{a}");
    assert_eq!(swd_json(&ck, "3"), a, "same seed, same result");
    vkgan(&["metrics", "--checkpoint", s(&ck), "--num", "100000"]).expect_error(&["--num 100000"]);
}

#[test]
fn training_lowers_swd_clearly() {
    let dir = scratch("learning");
    let out = s(dir.path()).to_string();
    let small = [
        "--preset",
        "quick",
        "--image-size",
        "8",
        "--batch",
        "8",
        "--d-latent",
        "16",
        "--mapping-layers",
        "1",
        "--g-features",
        "8",
        "--g-max-features",
        "16",
        "--d-features",
        "8",
        "--d-max-features",
        "16",
        "--no-progress",
        "--sample-every",
        "300",
        "--checkpoint-every",
        "300",
        "--out",
        &out,
    ];
    let mut first: Vec<&str> = vec!["train"];
    first.extend(small);
    first.extend(["--steps", "1"]);
    vkgan(&first).expect_ok();
    vkgan(&["train", "--resume", &out, "--steps", "300", "--no-progress"]).expect_ok();
    let swd = |step| {
        swd_json(&checkpoint(dir.path(), step), "0")["swd_mean"]
            .as_f64()
            .unwrap()
    };
    let (start, end) = (swd(1), swd(300));
    // Measured on lavapipe: 724.9 after step 1, 502.1 after step 300.
    assert!(end < 0.8 * start, "SWD went from {start:.1} to {end:.1}");
}

#[test]
fn training_logs_swd_at_its_interval_and_plots_it() {
    let dir = scratch("swd-every");
    let out = s(dir.path()).to_string();
    train(&[
        "--out",
        &out,
        "--steps",
        "6",
        "--swd-every",
        "2",
        "--swd-num",
        "32",
    ])
    .expect_ok();
    let log = vkgan::outputs::run_log::read(&dir.path().join("metrics.jsonl")).unwrap();
    let swd_steps: Vec<u64> = log
        .records
        .iter()
        .filter(|r| {
            r.values
                .get("swd")
                .is_some_and(|v| v.is_finite() && *v > 0.0)
        })
        .map(|r| r.step)
        .collect();
    assert_eq!(swd_steps, vec![1, 3, 5], "SWD after every second step");
    let plot = image::open(dir.path().join("swd.png")).expect("swd.png decodes");
    assert!(plot.width() > 100 && plot.height() > 100);
}
