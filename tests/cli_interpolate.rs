//! `vkgan interpolate` run as a user runs it, on a checkpoint of a tiny model (8x8 images)
//! trained for two steps by the test itself: the GIF, APNG and frame-folder outputs decoded
//! and compared with each other and with `vkgan generate`, and the refusals of bad walks.

#[path = "common/cli.rs"]
mod cli;

use cli::{checkpoint, decode, s, scratch, train, vkgan};
use image::{AnimationDecoder, RgbImage};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Trains the tiny model for two steps in `dir` and returns its checkpoint.
fn trained(dir: &Path) -> PathBuf {
    train(&["--out", s(dir), "--steps", "2", "--sample-every", "2"]).expect_ok();
    checkpoint(dir, 2)
}

/// The frames of a GIF, their delays in milliseconds, and whether it loops forever.
fn gif_frames(path: &Path) -> (Vec<RgbImage>, Vec<u32>, bool) {
    let file = BufReader::new(File::open(path).unwrap());
    let frames = image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    let delays = frames
        .iter()
        .map(|f| {
            let (n, d) = f.delay().numer_denom_ms();
            n / d
        })
        .collect();
    let images = frames
        .into_iter()
        .map(|f| image::DynamicImage::ImageRgba8(f.into_buffer()).to_rgb8())
        .collect();
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(File::open(path).unwrap()).unwrap();
    while decoder.read_next_frame().unwrap().is_some() {}
    (images, delays, decoder.repeat() == gif::Repeat::Infinite)
}

/// The frames of an APNG and its number of plays (0: forever).
fn apng_frames(path: &Path) -> (Vec<RgbImage>, u32) {
    let file = BufReader::new(File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let control = reader.info().animation_control.expect("an animated PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frames = (0..control.num_frames)
        .map(|_| {
            let info = reader.next_frame(&mut buf).unwrap();
            RgbImage::from_raw(info.width, info.height, buf[..info.buffer_size()].to_vec()).unwrap()
        })
        .collect();
    (frames, control.num_plays)
}

/// `vkgan generate` of `seed` with `extra` flags, decoded.
fn generated(ck: &Path, dir: &Path, seed: u64, extra: &[&str]) -> RgbImage {
    let seed_arg = seed.to_string();
    let args = [
        "generate",
        "--checkpoint",
        s(ck),
        "--seeds",
        &seed_arg,
        "--out",
        s(dir),
    ];
    vkgan(&[&args[..], extra].concat()).expect_ok();
    decode(&dir.join(format!("seed{seed:04}.png")))
}

#[test]
fn interpolate_writes_looping_animations_that_start_at_the_first_seed() {
    let tmp = scratch("interpolate");
    let ck = trained(&tmp.path().join("run"));
    let interpolate = |out: &Path, extra: &[&str]| {
        let args = ["interpolate", "--checkpoint", s(&ck), "--seeds", "0,3"];
        let out = ["--frames", "3", "--out", s(out)];
        vkgan(&[&args[..], extra, &out[..]].concat()).expect_ok()
    };

    // Two seeds, three frames from each to the next: six frames, 16x enlarged to 128 pixels.
    let gif = tmp.path().join("walk.gif");
    let strip = tmp.path().join("strip.png");
    let run = interpolate(&gif, &["--strip", s(&strip)]);
    assert!(
        run.stderr
            .contains("6 frames of 128x128 pixels, 2 seeds x 3 in w space, 25 fps"),
        "{run}"
    );
    assert!(run.stderr.contains("enlarged 16x for viewing"), "{run}");
    let (frames, delays, loops) = gif_frames(&gif);
    assert_eq!(frames.len(), 6);
    assert!(frames.iter().all(|f| f.dimensions() == (128, 128)));
    assert_eq!(delays, [40; 6]);
    assert!(loops, "the GIF loops forever");
    // The walk moves, and comes back: frame 3 is the second seed's, frame 5 on the way back.
    assert_ne!(frames[0], frames[3]);
    assert_ne!(frames[5], frames[0]);

    // The same command writes the same bytes.
    let again = tmp.path().join("again.gif");
    interpolate(&again, &[]);
    assert_eq!(std::fs::read(&gif).unwrap(), std::fs::read(&again).unwrap());

    // The first frame is `generate` of the first seed: same latent, same noise. An 8x8 image
    // has at most 64 colours, so the GIF's palette holds it exactly.
    let seed0 = generated(&ck, &tmp.path().join("gen"), 0, &["--scale", "16"]);
    assert_eq!(frames[0], seed0);

    // The strip: all six frames (fewer than eight) side by side with 2-pixel gutters.
    let strip = decode(&strip);
    assert_eq!(strip.dimensions(), (6 * 128 + 7 * 2, 128 + 2 * 2));
    for (k, frame) in frames.iter().enumerate() {
        let x0 = 2 + k as u32 * 130;
        assert_eq!(
            strip.get_pixel(x0 + 77, 2 + 50),
            frame.get_pixel(77, 50),
            "{k}"
        );
    }

    // APNG (from the extension) holds the same frames, losslessly, and loops forever.
    let apng = tmp.path().join("walk.png");
    interpolate(&apng, &[]);
    let (png_frames, plays) = apng_frames(&apng);
    assert_eq!(plays, 0);
    assert_eq!(png_frames, frames);

    // A folder of frames (no extension), at the model's own resolution with --scale 1.
    let folder = tmp.path().join("frames");
    let run = interpolate(&folder, &["--scale", "1"]);
    assert!(run.stderr.contains("of 8x8 pixels"), "{run}");
    assert!(!run.stderr.contains("enlarged"), "{run}");
    for (k, frame) in frames.iter().enumerate() {
        let small = decode(&folder.join(format!("frame{k:04}.png")));
        assert_eq!(small.dimensions(), (8, 8));
        assert_eq!(
            small.get_pixel(5, 3),
            frame.get_pixel(5 * 16, 3 * 16),
            "{k}"
        );
    }
    assert!(!folder.join("frame0006.png").exists());

    // In z space at truncation 0.7 the first frame is again `generate` of the first seed.
    let z = tmp.path().join("z.gif");
    let run = interpolate(
        &z,
        &["--space", "z", "--truncation", "0.7", "--format", "gif"],
    );
    assert!(run.stderr.contains("in z space"), "{run}");
    let (z_frames, _, _) = gif_frames(&z);
    let truncated = generated(
        &ck,
        &tmp.path().join("gen-trunc"),
        0,
        &["--scale", "16", "--truncation", "0.7"],
    );
    assert_eq!(z_frames[0], truncated);

    // With --noise walk each seed's frame is its own `generate` image, noise and all; with the
    // fixed noise the second seed's frame is not (it has the first seed's noise).
    let walked = tmp.path().join("walked.gif");
    interpolate(&walked, &["--noise", "walk"]);
    let (walked, _, _) = gif_frames(&walked);
    let seed3 = generated(&ck, &tmp.path().join("gen3"), 3, &["--scale", "16"]);
    assert_eq!(walked[0], seed0);
    assert_eq!(walked[3], seed3);
    assert_ne!(frames[3], seed3);
    assert_ne!(walked[1], frames[1], "the noise moves between the seeds");

    // Too many pixels for the walk: the limit is named, and nothing is written.
    let huge = tmp.path().join("huge.gif");
    vkgan(&[
        "interpolate",
        "--checkpoint",
        s(&ck),
        "--seeds",
        "0-9",
        "--frames",
        "1000",
        "--scale",
        "64",
        "--out",
        s(&huge),
    ])
    .expect_error(&["10000 frames of 512x512 pixels", "limit", "--scale"]);
    assert!(!huge.exists());
}

#[test]
fn bad_walks_are_one_line_errors_before_anything_is_loaded() {
    let tmp = scratch("interpolate-bad");
    // Every refusal comes before the checkpoint is read: this one does not exist.
    let ck = tmp.path().join("missing.safetensors");
    let out = tmp.path().join("walk.gif");
    let interpolate = |extra: &[&str]| {
        let args = ["interpolate", "--checkpoint", s(&ck)];
        vkgan(&[&args[..], extra].concat())
    };
    let gif = ["--out", s(&out)];
    interpolate(&[&["--seeds", "4"][..], &gif].concat())
        .expect_error(&["one seed (4)", "two or more"]);
    interpolate(&[&["--seeds", "0,1", "--frames", "0"][..], &gif].concat())
        .expect_error(&["--frames must be at least 1"]);
    interpolate(&[&["--seeds", "0,1", "--frames", "5000"][..], &gif].concat())
        .expect_error(&["--frames 5000", "limit of 1000"]);
    interpolate(&[&["--seeds", "0-99", "--frames", "101"][..], &gif].concat())
        .expect_error(&["10100 frames", "limit of 10000"]);
    interpolate(&[&["--seeds", "0-10000"][..], &gif].concat())
        .expect_error(&["10001 seeds", "limit of 10000"]);
    interpolate(&[&["--format", "webm"][..], &gif].concat())
        .expect_error(&["unknown animation format `webm`", "gif, apng or frames"]);
    let mp4 = tmp.path().join("walk.mp4");
    interpolate(&["--out", s(&mp4)]).expect_error(&["walk.mp4", "--format"]);
    interpolate(&[&["--truncation", "inf"][..], &gif].concat())
        .expect_error(&["--truncation", "finite"]);
    // With good arguments the missing checkpoint is what is reported.
    interpolate(&gif).expect_error(&["cannot load checkpoint", s(&ck)]);
    assert!(!out.exists() && !mp4.exists());
}
