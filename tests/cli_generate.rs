//! `vkgan generate` and `vkgan mix` run as a user runs them, on a checkpoint of a tiny model
//! trained for two steps by the test itself.

#[path = "common/cli.rs"]
mod cli;

use cli::{checkpoint, decode, one_step_with_rampup, s, scratch, train, vkgan};
use image::RgbImage;
use std::path::{Path, PathBuf};
use vkgan::persist::checkpoint::{read, write, Checkpoint, TensorData};

/// Trains the tiny model for two steps in `dir` and returns its checkpoint.
fn trained(dir: &Path) -> PathBuf {
    train(&["--out", s(dir), "--steps", "2", "--sample-every", "2"]).expect_ok();
    checkpoint(dir, 2)
}

/// Asserts that `figure` holds `image` enlarged `scale` times by pixel replication, with its
/// top-left corner at `at`.
fn assert_enlarged(figure: &RgbImage, at: (u32, u32), image: &RgbImage, scale: u32) {
    let (w, h) = image.dimensions();
    for y in 0..h * scale {
        for x in 0..w * scale {
            assert_eq!(
                figure.get_pixel(at.0 + x, at.1 + y),
                image.get_pixel(x / scale, y / scale),
                "pixel ({x}, {y}) of the image at {at:?}, enlarged {scale}x"
            );
        }
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn generate_is_reproducible_and_independent_of_the_batch() {
    let tmp = scratch("generate");
    let ck = trained(&tmp.path().join("run"));
    let (one, two, single) = (
        tmp.path().join("one"),
        tmp.path().join("two"),
        tmp.path().join("single"),
    );
    for out in [&one, &two] {
        let run = vkgan(
            &["generate", "--checkpoint", s(&ck), "--seeds", "0-3"]
                .into_iter()
                .chain(["--out", s(out)])
                .collect::<Vec<_>>(),
        )
        .expect_ok();
        assert!(run.stderr.contains("wrote 4 images of 8x8 pixels"), "{run}");
    }
    let names = [
        "seed0000.png",
        "seed0001.png",
        "seed0002.png",
        "seed0003.png",
    ];
    assert_eq!(files(&one), names);
    for name in names {
        let a = std::fs::read(one.join(name)).unwrap();
        assert_eq!(a, std::fs::read(two.join(name)).unwrap(), "{name}");
        // The model's own resolution, as a metric or a dataset wants it.
        let img = decode(&one.join(name));
        assert_eq!(img.dimensions(), (8, 8));
    }
    // Different seeds give different images.
    assert_ne!(decode(&one.join(names[0])), decode(&one.join(names[1])));

    // Seed 2 alone (a batch of one) is the same picture as seed 2 in a batch of four.
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "2",
        "--grid",
        "--out",
        s(&single),
    ])
    .expect_ok();
    assert_eq!(files(&single), ["grid.png", "seed0002.png"]);
    assert_eq!(
        decode(&single.join("seed0002.png")),
        decode(&one.join("seed0002.png"))
    );
    assert_eq!(decode(&single.join("grid.png")).dimensions(), (132, 132));

    // A grid of four: 2x2 cells of 128 pixels with 2-pixel gutters.
    let gridded = tmp.path().join("grid");
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "0-3",
        "--grid",
        "--out",
        s(&gridded),
    ])
    .expect_ok();
    let grid = decode(&gridded.join("grid.png"));
    assert_eq!(grid.dimensions(), (2 * 128 + 3 * 2, 2 * 128 + 3 * 2));
    // Its bottom-left cell is seed 2, enlarged 16 times.
    let seed2 = decode(&one.join("seed0002.png"));
    assert_enlarged(&grid, (2, 2 + 128 + 2), &seed2, 16);

    // --scale enlarges the per-seed images and the grid alike.
    let scaled = tmp.path().join("scaled");
    let run = vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "2",
        "--scale",
        "3",
        "--grid",
        "--out",
        s(&scaled),
    ])
    .expect_ok();
    assert!(run.stderr.contains("of 24x24 pixels"), "{run}");
    let big = decode(&scaled.join("seed0002.png"));
    assert_eq!(big.dimensions(), (24, 24));
    assert_enlarged(&big, (0, 0), &seed2, 3);
    assert_eq!(decode(&scaled.join("grid.png")).dimensions(), (28, 28));

    // Truncation 0 puts every seed at the average w; only the noise still differs.
    let truncated = tmp.path().join("truncated");
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "0,1",
        "--truncation",
        "0",
        "--out",
        s(&truncated),
    ])
    .expect_ok();
    assert_eq!(files(&truncated), ["seed0000.png", "seed0001.png"]);
}

#[test]
fn mix_writes_a_figure_of_the_right_size() {
    let tmp = scratch("mix");
    let ck = trained(&tmp.path().join("run"));
    // Rows 0-1 and columns 2-4 into `out`, with `extra` flags.
    let mix = |out: &Path, extra: &[&str]| {
        let args = [
            "mix",
            "--checkpoint",
            s(&ck),
            "--rows",
            "0-1",
            "--cols",
            "2-4",
        ];
        let out = ["--out", s(out)];
        vkgan(&[&args[..], extra, &out[..]].concat()).expect_ok()
    };
    let figure = tmp.path().join("mixing.png");
    let run = mix(&figure, &[]);
    assert!(run.stderr.contains("wrote"), "{run}");
    // (2 + 1) rows x (3 + 1) columns of 128-pixel cells with 2-pixel gutters.
    let img = decode(&figure);
    assert_eq!(img.dimensions(), (4 * 128 + 5 * 2, 3 * 128 + 4 * 2));
    // The first row shows the column seeds as `generate` draws them.
    let gen = tmp.path().join("gen");
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "3",
        "--out",
        s(&gen),
    ])
    .expect_ok();
    let seed3 = decode(&gen.join("seed0003.png"));
    assert_enlarged(&img, (2 + 2 * (128 + 2), 2), &seed3, 16);
    // --scale 1: the model's resolution, 8-pixel cells.
    let native = tmp.path().join("native.png");
    mix(&native, &["--scale", "1"]);
    assert_eq!(decode(&native).dimensions(), (4 * 8 + 5 * 2, 3 * 8 + 4 * 2));
    // The generator has one block at 4x4 and one at 8x8: crossover 3 is out of range.
    vkgan(&[
        "mix",
        "--checkpoint",
        s(&ck),
        "--crossover",
        "3",
        "--out",
        s(&tmp.path().join("x.png")),
    ])
    .expect_error(&["--crossover 3", "2 blocks"]);
}

#[test]
fn bad_checkpoints_and_arguments_are_one_line_errors() {
    let tmp = scratch("generate-bad");
    let ck = trained(&tmp.path().join("run"));
    let out = tmp.path().join("out");
    let generate = |checkpoint: &Path, extra: &[&str]| {
        let mut args = vec!["generate", "--checkpoint", s(checkpoint), "--out", s(&out)];
        args.extend_from_slice(extra);
        vkgan(&args)
    };

    // A missing file.
    let missing = tmp.path().join("missing.safetensors");
    let line = generate(&missing, &[]).expect_error(&["cannot load checkpoint", s(&missing)]);
    // The cause once, not repeated by the error chain.
    assert_eq!(line.matches("(os error 2)").count(), 1, "{line}");
    assert_eq!(line.matches(s(&missing)).count(), 1, "{line}");
    // A truncated copy.
    let bytes = std::fs::read(&ck).unwrap();
    let truncated = tmp.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    generate(&truncated, &[]).expect_error(&["truncated or corrupt"]);
    // Flipped data bytes (the header intact): the checksum catches them.
    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 5] ^= 0x55;
    let flipped_path = tmp.path().join("flipped.safetensors");
    std::fs::write(&flipped_path, &flipped).unwrap();
    generate(&flipped_path, &[]).expect_error(&["checksum mismatch"]);
    // Not a checkpoint at all.
    let text = tmp.path().join("text.safetensors");
    std::fs::write(&text, b"hello").unwrap();
    generate(&text, &[]).expect_error(&["truncated or corrupt"]);

    // A safetensors file that is not a StyleGAN2 state.
    let mut other = Checkpoint::new();
    other.insert_f32("weight", &[2, 2], vec![1.0; 4]).unwrap();
    let other_path = tmp.path().join("other.safetensors");
    write(&other_path, &other).unwrap();
    generate(&other_path, &[]).expect_error(&["not a StyleGAN2 checkpoint"]);

    // A checkpoint whose stored configuration does not match its tensors (here: the config
    // says 16-dimensional latents, the tensors have 8): the error names a tensor.
    let mut mismatched = read(&ck).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(mismatched.meta("config").unwrap()).unwrap();
    cfg["model"]["d_latent"] = 16.into();
    mismatched.set_meta("config", cfg.to_string());
    let mismatched_path = tmp.path().join("mismatched.safetensors");
    write(&mismatched_path, &mismatched).unwrap();
    generate(&mismatched_path, &[]).expect_error(&["mismatched.safetensors", "shape"]);

    // A checkpoint with a tensor missing.
    let mut partial = read(&ck).unwrap();
    partial.tensors.remove("ema.generator.initial_constant");
    partial.tensors.remove("generator.initial_constant");
    let partial_path = tmp.path().join("partial.safetensors");
    write(&partial_path, &partial).unwrap();
    generate(&partial_path, &[]).expect_error(&["generator.initial_constant"]);

    // Bad seed lists and an output under a regular file.
    generate(&ck, &["--seeds", "3-1"]).expect_error(&["bad seed list"]);
    generate(&ck, &["--seeds", "x"]).expect_error(&["bad seed list"]);
    assert!(!out.exists());
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    vkgan(&[
        "generate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "0",
        "--out",
        s(&file.join("x")),
    ])
    .expect_error(&["cannot create output directory"]);

    // The checkpoint itself was only read.
    assert_eq!(std::fs::read(&ck).unwrap(), bytes);
    let ck_data = read(&ck).unwrap();
    assert!(matches!(
        ck_data.tensors["w_avg"].data,
        TensorData::F32(ref v) if v.iter().all(|x| x.is_finite())
    ));
}

/// `--raw` samples the trained weights: the same images as the average where the two are
/// equal (one step of a ramped run), other images where they are not.
#[test]
fn generate_raw_uses_the_trained_weights() {
    let tmp = scratch("generate-raw");
    let mut images = Vec::new();
    for rampup in ["0.05", "0"] {
        let out = tmp.path().join(format!("run-{rampup}"));
        let ck = one_step_with_rampup(&out, rampup);
        let pair: Vec<RgbImage> = [None, Some("--raw")]
            .into_iter()
            .map(|raw| {
                let dir = out.join(if raw.is_some() { "raw" } else { "ema" });
                let mut args = vec!["generate", "--checkpoint", s(&ck), "--seeds", "5"];
                args.extend(["--out", s(&dir)]);
                args.extend(raw);
                vkgan(&args).expect_ok();
                decode(&dir.join("seed0005.png"))
            })
            .collect();
        images.push(pair);
    }
    assert_eq!(
        images[0][0], images[0][1],
        "ramped: the average is the weights"
    );
    assert_ne!(images[1][0], images[1][1], "unramped: the average lags");
}
