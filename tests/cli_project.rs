//! `vkgan project` as a user runs it: a generated image projected back onto the generator of
//! the tiny model (trained for two steps by the test) is recovered closely, the outputs open,
//! the run is deterministic, and bad input is a one-line error.

#[path = "common/cli.rs"]
mod cli;

use cli::{checkpoint, decode, s, scratch, train, vkgan, write_png};
use image::RgbImage;
use vkgan::persist::checkpoint::{read, TensorData};

/// Mean squared difference of two images of one size, in [0, 1] units.
fn mse(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let n = a.as_raw().len() as f64;
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| ((x as f64 - y as f64) / 255.0).powi(2))
        .sum::<f64>()
        / n
}

#[test]
fn a_generated_image_projects_back_closely_and_deterministically() {
    let tmp = scratch("project");
    let run_dir = tmp.path().join("run");
    train(&["--out", s(&run_dir), "--steps", "2", "--sample-every", "2"]).expect_ok();
    let ck = checkpoint(&run_dir, 2);
    let generated = tmp.path().join("generated");
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "3,4",
        "--out",
        s(&generated),
    ])
    .expect_ok();
    let target = generated.join("seed0003.png");
    let project = |out: &std::path::Path| {
        vkgan(&[
            "project",
            "--checkpoint",
            s(&ck),
            "--target",
            s(&target),
            "--steps",
            "150",
            "--out",
            s(out),
        ])
        .expect_ok()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let run = project(&a);
    assert!(run.stderr.contains("step 150/150: pixel mse"), "{run}");
    project(&b);
    for name in [
        "target.png",
        "projected.png",
        "progress.png",
        "w.safetensors",
    ] {
        assert_eq!(
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
            "{name} differs between two identical runs"
        );
    }

    let wanted = decode(&target);
    assert_eq!(
        decode(&a.join("target.png")),
        wanted,
        "the target as loaded"
    );
    let projected = decode(&a.join("projected.png"));
    assert_eq!(projected.dimensions(), (8, 8), "the model's resolution");
    // Closely: nearer the target than another seed's image by a wide margin.
    let other = mse(&decode(&generated.join("seed0004.png")), &wanted);
    let found = mse(&projected, &wanted);
    assert!(
        found < 0.1 * other,
        "projected mse {found:.5} against {other:.5} for another seed"
    );
    // Target, then 7 snapshots and the final image, ~128 pixels each with 2-pixel gutters.
    assert_eq!(
        decode(&a.join("progress.png")).dimensions(),
        (9 * 128 + 10 * 2, 128 + 2 * 2)
    );

    let w = read(&a.join("w.safetensors")).unwrap();
    let shape_of = |name: &str| w.tensors[name].shape.clone();
    assert_eq!(shape_of("w"), [1, 8]);
    assert_eq!(shape_of("ws"), [2, 8], "one w per generator block");
    assert_eq!(shape_of("noise.0.2"), [4, 4]);
    assert_eq!(shape_of("noise.1.1"), [8, 8]);
    assert_eq!(shape_of("noise.1.2"), [8, 8]);
    let TensorData::F32(values) = &w.tensors["w"].data else {
        panic!("w is f32")
    };
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
}

#[test]
fn bad_projection_input_is_a_one_line_error() {
    let tmp = scratch("project-errors");
    let run_dir = tmp.path().join("run");
    train(&["--out", s(&run_dir), "--steps", "1", "--sample-every", "1"]).expect_ok();
    let ck = checkpoint(&run_dir, 1);
    let target = tmp.path().join("t.png");
    write_png(&target, 20, 12, 90);
    let out = tmp.path().join("out");
    let with = |extra: &[&str]| {
        let mut args = vec!["project", "--checkpoint", s(&ck), "--out", s(&out)];
        args.extend(extra);
        vkgan(&args)
    };
    let missing = tmp.path().join("missing.png");
    with(&["--target", s(&missing)]).expect_error(&["cannot read target image", "missing.png"]);
    let not_image = tmp.path().join("notes.png");
    std::fs::write(&not_image, "not a picture").unwrap();
    with(&["--target", s(&not_image)]).expect_error(&["cannot read target image", "notes.png"]);
    with(&["--target", s(&target), "--steps", "0"]).expect_error(&["--steps 0"]);
    with(&["--target", s(&target), "--lr", "NaN"]).expect_error(&["--lr NaN"]);
    with(&["--target", s(&target), "--feature-weight=-1"]).expect_error(&["--feature-weight -1"]);
    assert!(
        !out.join("w.safetensors").exists(),
        "nothing written on error"
    );
    // A target of another size and shape is resized and cropped like training data.
    with(&["--target", s(&target), "--steps", "3"]).expect_ok();
    assert_eq!(decode(&out.join("target.png")).dimensions(), (8, 8));
}
