//! The data module's tests: folders of mixed formats written to temporary directories, the
//! embedded emoji set, and the loader's order and resumption.

use super::*;
use crate::dist::Shard;
use image::{GrayImage, Rgb, RgbImage, Rgba, RgbaImage};
use std::sync::Arc;

/// A fresh folder under the system temp dir, removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("vkgan-data-{tag}-"))
            .tempdir()
            .unwrap();
        TempDir(dir)
    }

    fn root(&self) -> &Path {
        self.0.path()
    }

    /// `rel` under the folder, its parent folders made.
    fn path(&self, rel: &str) -> PathBuf {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }
}

fn solid(w: u32, h: u32, c: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(c))
}

/// Pixel (x, y) of planar sample `s` of side `n`, as 0..=255 values.
fn px(s: &[f32], n: usize, x: usize, y: usize) -> [f32; 3] {
    let i = y * n + x;
    [s[i], s[n * n + i], s[2 * n * n + i]].map(|v| v * 255.0)
}

fn assert_near(got: [f32; 3], want: [f32; 3], tol: f32, what: &str) {
    for c in 0..3 {
        assert!(
            (got[c] - want[c]).abs() <= tol,
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

/// A folder of every supported format, grey and RGBA images, a nested subfolder, a corrupt
/// file and a non-image file.
fn mixed_folder() -> TempDir {
    let t = TempDir::new("mixed");
    solid(8, 8, [10, 200, 30]).save(t.path("a.png")).unwrap();
    solid(8, 8, [200, 40, 90]).save(t.path("b.jpg")).unwrap();
    GrayImage::from_pixel(8, 8, image::Luma([77]))
        .save(t.path("grey.png"))
        .unwrap();
    let mut rgba = RgbaImage::from_pixel(8, 8, Rgba([255, 0, 0, 128]));
    rgba.put_pixel(0, 0, Rgba([0, 0, 0, 0]));
    rgba.put_pixel(1, 0, Rgba([0, 0, 255, 255]));
    rgba.save(t.path("rgba.png")).unwrap();
    solid(8, 8, [1, 2, 3]).save(t.path("sub/d.webp")).unwrap();
    solid(8, 8, [250, 128, 5])
        .save(t.path("sub/deeper/c.bmp"))
        .unwrap();
    solid(8, 8, [0, 0, 0])
        .save_with_format(t.path("UPPER.PNG"), image::ImageFormat::Png)
        .unwrap();
    fs::write(t.path("bad.png"), b"this is not a png at all").unwrap();
    fs::write(t.path("notes.txt"), b"ignored: not an image extension").unwrap();
    t
}

fn check_mixed(ds: &Dataset, t: &TempDir) {
    let names: Vec<&str> = (0..ds.len()).map(|i| ds.name(i)).collect();
    let want: Vec<String> = [
        "UPPER.PNG",
        "a.png",
        "b.jpg",
        "grey.png",
        "rgba.png",
        "sub/d.webp",
        "sub/deeper/c.bmp",
    ]
    .iter()
    .map(|r| t.root().join(r).display().to_string())
    .collect();
    assert_eq!(names, want);
    assert_eq!(ds.skipped(), 1);
    assert_eq!(ds.skipped_paths(), vec![t.root().join("bad.png")]);
    assert_eq!((ds.image_size(), ds.sample_len()), (8, 192));

    let img = |i: usize| ds.image(i);
    for i in 0..ds.len() {
        assert!(img(i).iter().all(|v| (0.0..=1.0).contains(v)));
    }
    assert_near(px(&img(0), 8, 3, 3), [0.0, 0.0, 0.0], 0.01, "UPPER.PNG");
    assert_near(px(&img(1), 8, 3, 3), [10.0, 200.0, 30.0], 0.01, "png");
    // JPEG is lossy (and subsamples chroma).
    assert_near(px(&img(2), 8, 3, 3), [200.0, 40.0, 90.0], 6.0, "jpg");
    assert_near(px(&img(3), 8, 5, 2), [77.0; 3], 0.01, "grey expanded");
    let rgba = img(4);
    // Half-transparent red on white: 255 * 127 / 255 + 0 * 128 / 255 = 127.
    assert_near(
        px(&rgba, 8, 4, 4),
        [255.0, 127.0, 127.0],
        0.0,
        "alpha on white",
    );
    assert_near(px(&rgba, 8, 0, 0), [255.0; 3], 0.01, "transparent is white");
    assert_near(px(&rgba, 8, 1, 0), [0.0, 0.0, 255.0], 0.01, "opaque kept");
    assert_near(
        px(&img(5), 8, 7, 7),
        [1.0, 2.0, 3.0],
        0.0,
        "webp (lossless)",
    );
    assert_near(px(&img(6), 8, 0, 7), [250.0, 128.0, 5.0], 0.01, "bmp");
}

#[test]
fn folder_of_mixed_formats_cached() {
    let t = mixed_folder();
    let ds = Dataset::from_dir(t.root(), 8).unwrap();
    assert!(ds.is_cached());
    check_mixed(&ds, &t);
}

#[test]
fn folder_of_mixed_formats_streaming() {
    let t = mixed_folder();
    let ds = Dataset::from_dir_with_cache_limit(t.root(), 8, 0).unwrap();
    assert!(!ds.is_cached());
    check_mixed(&ds, &t);
    let cached = Dataset::from_dir(t.root(), 8).unwrap();
    assert_eq!(ds.batch(3, 9, 5), cached.batch(3, 9, 5));
}

/// A file whose header is fine but whose data is cut short passes the streaming header check;
/// it is found when a batch needs it, counted, and replaced by the next image.
#[test]
fn streaming_replaces_a_truncated_file_deterministically() {
    let t = TempDir::new("trunc");
    for (i, c) in [[0u8, 0, 0], [100, 100, 100], [200, 200, 200]]
        .iter()
        .enumerate()
    {
        solid(16, 16, *c).save(t.path(&format!("{i}.png"))).unwrap();
    }
    let mut noisy = RgbImage::new(64, 64);
    for (x, y, p) in noisy.enumerate_pixels_mut() {
        *p = Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8]);
    }
    let mut bytes = Vec::new();
    noisy
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes.truncate(bytes.len() / 2);
    fs::write(t.path("1b.png"), &bytes).unwrap();

    let ds = Dataset::from_dir_with_cache_limit(t.root(), 4, 0).unwrap();
    assert_eq!((ds.len(), ds.skipped()), (4, 0));
    // Index 2 is 1b.png; it is replaced by index 3 (2.png).
    assert_eq!(ds.image(2), ds.image(3));
    assert_eq!(ds.skipped(), 1);
    assert_eq!(ds.skipped_paths(), vec![t.root().join("1b.png")]);
    // The cached path skips it up front instead.
    let cached = Dataset::from_dir(t.root(), 4).unwrap();
    assert_eq!((cached.len(), cached.skipped()), (3, 1));
}

#[test]
fn resize_shorter_side_then_centre_crop() {
    // Tall 20x60: thirds red / green / blue. Shorter side 20 -> 10 makes it 10x30 and the
    // centre crop keeps rows 10..20 of that, i.e. the green third.
    let mut tall = RgbImage::new(20, 60);
    for (_, y, p) in tall.enumerate_pixels_mut() {
        *p = Rgb(match y / 20 {
            0 => [255, 0, 0],
            1 => [0, 255, 0],
            _ => [0, 0, 255],
        });
    }
    let wide = image::imageops::rotate90(&tall);
    for (img, what) in [(tall, "tall"), (wide, "wide")] {
        let sq = square(&img, 10);
        assert_eq!(sq.dimensions(), (10, 10), "{what}");
        for y in 2..8 {
            for x in 0..10 {
                let p = sq.get_pixel(x, y);
                let p = if what == "wide" {
                    sq.get_pixel(y, x)
                } else {
                    p
                };
                assert!(
                    p[1] >= 250 && p[0] <= 5 && p[2] <= 5,
                    "{what} ({x},{y}): {p:?}"
                );
            }
        }
    }
    // Output sizes and truncation of the long side, both orientations and odd margins.
    for (w, h, n) in [
        (7, 3, 3),
        (3, 7, 3),
        (100, 33, 3),
        (33, 100, 5),
        (5, 5, 12),
        (9, 4, 1),
    ] {
        assert_eq!(square(&solid(w, h, [9, 9, 9]), n).dimensions(), (n, n));
    }
    // A flat image stays flat through Lanczos up- and downscaling.
    for n in [3, 16, 64] {
        let sq = square(&solid(31, 17, [12, 130, 250]), n);
        assert!(sq.pixels().all(|p| p.0 == [12, 130, 250]), "flat at {n}");
    }
    // Through a file: a 30x12 image at size 6 comes out 6x6.
    let t = TempDir::new("crop");
    solid(30, 12, [50, 60, 70]).save(t.path("w.png")).unwrap();
    let ds = Dataset::from_dir(t.root(), 6).unwrap();
    assert_eq!(ds.image(0).len(), 3 * 36);
    assert_near(
        px(&ds.image(0), 6, 5, 5),
        [50.0, 60.0, 70.0],
        0.0,
        "resized file",
    );
}

#[test]
fn shuffling_is_deterministic_and_drops_the_last_partial_batch() {
    let p = epoch_permutation(10, 42, 0);
    // Pinned, so a dependency update that changed the order would be noticed.
    assert_eq!(p, PINNED_PERMUTATION);
    assert_eq!(p, epoch_permutation(10, 42, 0));
    let mut sorted = p.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    assert_ne!(p, epoch_permutation(10, 42, 1));
    assert_ne!(p, epoch_permutation(10, 43, 0));
    assert_eq!(epoch_permutation(1, 5, 5), vec![0]);
    assert!(epoch_permutation(0, 5, 5).is_empty());

    // 10 images in batches of 3: 3 batches per epoch, perm[9] is left out of epoch 0.
    let batches: Vec<Vec<usize>> = (0..3).map(|s| batch_indices(10, 3, 42, s)).collect();
    assert_eq!(batches.concat(), p[..9].to_vec());
    let e1 = epoch_permutation(10, 42, 1);
    assert_eq!(batch_indices(10, 3, 42, 3), e1[..3].to_vec());
    assert_eq!(batch_indices(10, 3, 42, 5), e1[6..9].to_vec());
    assert_eq!(batch_indices(10, 10, 42, 7), epoch_permutation(10, 42, 7));
}

const PINNED_PERMUTATION: [usize; 10] = [6, 3, 2, 7, 8, 0, 9, 5, 1, 4];

/// Image `i` is filled with the value `i / 255` so batches can be read back as indices.
fn numbered(len: usize, size: usize) -> Arc<Dataset> {
    let numel = 3 * size * size;
    let bytes: Vec<u8> = (0..len).flat_map(|i| vec![i as u8; numel]).collect();
    let names = (0..len).map(|i| i.to_string()).collect();
    Arc::new(Dataset::from_samples(size, names, bytes))
}

#[test]
fn loader_matches_batch_and_resumes_at_any_step() {
    let ds = numbered(23, 3);
    let (bs, seed) = (5, 7);
    let mut loader =
        Loader::with_threads(Arc::clone(&ds), bs, seed, 0, 3, 2, Shard::whole()).unwrap();
    assert_eq!(loader.batches_per_epoch(), 4);
    let run: Vec<Batch> = (&mut loader).take(13).collect();
    assert_eq!(loader.step(), 13);
    for (k, b) in run.iter().enumerate() {
        let k = k as u64;
        assert_eq!((b.step, b.epoch, b.shape), (k, k / 4, [5, 3, 3, 3]));
        assert_eq!(b.indices, batch_indices(23, bs, seed, k));
        assert_eq!(b.data, ds.batch(bs, seed, k));
        let from_data: Vec<usize> = b
            .data
            .chunks(27)
            .map(|s| (s[0] * 255.0).round() as usize)
            .collect();
        assert_eq!(from_data, b.indices);
    }
    // Each epoch's 20 images are distinct.
    for e in run.chunks(4).filter(|e| e.len() == 4) {
        let mut seen: Vec<usize> = e.iter().flat_map(|b| b.indices.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 20);
    }
    drop(loader);

    // Resuming at step 6 (mid epoch 1) with another thread count gives the same stream.
    let resumed = Loader::with_threads(Arc::clone(&ds), bs, seed, 6, 2, 1, Shard::whole()).unwrap();
    assert_eq!(resumed.step(), 6);
    let tail: Vec<Batch> = resumed.take(7).collect();
    assert_eq!(tail, run[6..].to_vec());
    // And with the default threading.
    let mut d = Loader::new(Arc::clone(&ds), bs, seed, 12).unwrap();
    assert_eq!(d.next_batch().unwrap(), run[12]);
}

#[test]
fn each_rank_loads_its_share_of_the_global_batch() {
    let ds = numbered(40, 3);
    let (bs, seed) = (16, 3);
    let mut whole = Loader::new(Arc::clone(&ds), bs, seed, 1).unwrap();
    let global = whole.next_batch().unwrap();
    let numel = 27;
    for rank in 0..2 {
        let shard = Shard { rank, ranks: 2 };
        let mut mine = Loader::sharded(Arc::clone(&ds), bs, seed, 1, shard).unwrap();
        let b = mine.next_batch().unwrap();
        assert_eq!(b.shape, [8, 3, 3, 3]);
        for (l, &s) in shard.samples(bs).iter().enumerate() {
            assert_eq!(b.indices[l], global.indices[s]);
            assert_eq!(
                b.data[l * numel..(l + 1) * numel],
                global.data[s * numel..(s + 1) * numel]
            );
        }
    }
}

#[test]
fn loader_rejects_bad_batch_sizes() {
    let ds = numbered(4, 2);
    let err = Loader::new(Arc::clone(&ds), 5, 0, 0).err().unwrap();
    assert_eq!(
        err.to_string(),
        "batch size 5 is larger than the dataset (4 images)"
    );
    assert!(matches!(
        Loader::new(ds, 0, 0, 0),
        Err(DataError::ZeroBatchSize)
    ));
}

#[test]
fn loader_over_a_streaming_folder() {
    let t = TempDir::new("stream");
    for i in 0..9u8 {
        solid(12, 9, [i * 20, 255 - i * 20, i])
            .save(t.path(&format!("{i}.png")))
            .unwrap();
    }
    let streaming = Arc::new(Dataset::from_dir_with_cache_limit(t.root(), 4, 0).unwrap());
    let cached = Dataset::from_dir(t.root(), 4).unwrap();
    let loader = Loader::with_threads(streaming, 2, 1, 3, 2, 2, Shard::whole()).unwrap();
    for b in loader.take(9) {
        assert_eq!(b.data, cached.batch(2, 1, b.step));
    }
}

#[test]
fn embedded_emoji() {
    let ds = Dataset::open(&Source::Emoji, 32).unwrap();
    assert_eq!(ds.len(), 1412);
    assert_eq!(
        (ds.image_size(), ds.sample_len(), ds.skipped()),
        (32, 3072, 0)
    );
    assert!(ds.is_cached());
    assert_eq!(ds.name(0), "1f004");
    let mut names: Vec<&str> = (0..ds.len()).map(|i| ds.name(i)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 1412);
    let all = ds.batch(1412, 0, 0);
    assert!(all.iter().all(|v| (0.0..=1.0).contains(v)));
    // Every tile has content (no blank padding tile slipped in) and a white-ish border.
    for (i, s) in all.chunks(3072).enumerate() {
        let mean = s.iter().sum::<f32>() / 3072.0;
        assert!(mean < 0.97 && mean > 0.05, "tile {i} mean {mean}");
    }
    let mean = all.iter().map(|&v| f64::from(v)).sum::<f64>() / all.len() as f64;
    assert!((0.5..0.9).contains(&mean), "mean {mean}");

    for n in [16, 64] {
        let r = emoji::dataset(n).unwrap();
        assert_eq!(
            (r.len(), r.image_size(), r.sample_len()),
            (1412, n, 3 * n * n)
        );
        let s = r.image(100);
        assert!(s.iter().all(|v| (0.0..=1.0).contains(v)));
        // Downscaled/upscaled tile has about the same mean colour as the original.
        let m = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
        assert!((m(&s) - m(&ds.image(100))).abs() < 0.02, "size {n}");
    }
}

#[test]
fn saved_pngs_read_back_as_the_same_dataset() {
    let t = TempDir::new("save-pngs");
    let ds = Dataset::open(&Source::Emoji, 8).unwrap();
    let paths = ds.save_pngs(&t.root().join("out")).unwrap();
    assert_eq!(paths.len(), 1412);
    assert_eq!(paths[7].file_name().unwrap(), "00007.png");
    let back = Dataset::from_dir(&t.root().join("out"), 8).unwrap();
    assert_eq!((back.len(), back.skipped()), (1412, 0));
    // Same order, same bytes: every batch, and the metrics' fixed subset, are identical.
    assert_eq!(back.batch(1412, 0, 0), ds.batch(1412, 0, 0));
    assert_eq!(back.evenly_spaced(256), ds.evenly_spaced(256));
}

#[test]
fn errors_are_clear() {
    let t = TempDir::new("errors");
    let missing = t.root().join("nope");
    let e = Dataset::from_dir(&missing, 8).err().unwrap();
    assert!(matches!(e, DataError::NotFound(_)));
    assert_eq!(
        e.to_string(),
        format!("dataset folder {} does not exist", missing.display())
    );

    let empty = t.path("empty/x").parent().unwrap().to_path_buf();
    fs::create_dir_all(&empty).unwrap();
    fs::write(empty.join("readme.md"), b"no images here").unwrap();
    let e = Dataset::from_dir(&empty, 8).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "no images under {} (looked recursively for .jpg, .jpeg, .png, .webp, .bmp files)",
            empty.display()
        )
    );

    let broken = t.path("broken/x").parent().unwrap().to_path_buf();
    fs::create_dir_all(&broken).unwrap();
    fs::write(broken.join("a.jpg"), b"garbage").unwrap();
    let e = Dataset::from_dir(&broken, 8).err().unwrap();
    assert!(matches!(e, DataError::NoImages { skipped: 1, .. }));
    assert!(e
        .to_string()
        .ends_with("; 1 file had such an extension but did not decode)"));

    let file = t.path("file.png");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Dataset::from_dir(&file, 8),
        Err(DataError::NotADir(_))
    ));
    assert!(matches!(
        Dataset::from_dir(t.root(), 0),
        Err(DataError::ZeroImageSize)
    ));
    assert!(matches!(emoji::dataset(0), Err(DataError::ZeroImageSize)));
    for e in [
        Dataset::from_dir(&missing, 8).err().unwrap(),
        Dataset::from_dir(&broken, 8).err().unwrap(),
    ] {
        assert!(!e.to_string().contains('\n'));
    }
}

/// The first half of a JPEG decodes (the rest grey) without an error from the decoder; the
/// loader must not train on it silently.
#[test]
fn a_truncated_jpeg_is_skipped_with_a_reason() {
    let t = TempDir::new("trunc-jpeg");
    let mut noisy = RgbImage::new(64, 64);
    for (x, y, p) in noisy.enumerate_pixels_mut() {
        *p = Rgb([(x * 7 + y * 13) as u8, (x * y) as u8, (x ^ y) as u8]);
    }
    noisy.save(t.path("whole.jpg")).unwrap();
    let bytes = fs::read(t.path("whole.jpg")).unwrap();
    assert!(!convert::jpeg_is_truncated(&bytes));
    fs::write(t.path("half.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    let mut out = vec![0u8; 3 * 8 * 8];
    let why = convert::load_into(&t.path("half.jpg"), 8, &mut out).unwrap_err();
    assert!(why.contains("truncated JPEG"), "{why}");
    let ds = Dataset::from_dir(t.root(), 8).unwrap();
    assert_eq!((ds.len(), ds.skipped()), (1, 1));
    assert_eq!(ds.skipped_paths(), vec![t.root().join("half.jpg")]);
}

/// A symlinked subfolder is part of the dataset; a link back to an ancestor ends.
#[cfg(unix)]
#[test]
fn symlinked_folders_are_followed_once() {
    let t = TempDir::new("links");
    let elsewhere = TempDir::new("links-target");
    solid(8, 8, [1, 2, 3]).save(t.path("a.png")).unwrap();
    solid(8, 8, [4, 5, 6])
        .save(elsewhere.path("b.png"))
        .unwrap();
    std::os::unix::fs::symlink(elsewhere.root(), t.root().join("linked")).unwrap();
    std::os::unix::fs::symlink(t.root(), t.root().join("loop")).unwrap();
    let ds = Dataset::from_dir(t.root(), 8).unwrap();
    let names: Vec<&str> = (0..ds.len()).map(|i| ds.name(i)).collect();
    assert_eq!(ds.len(), 2, "{names:?}");
    assert!(names[1].ends_with("linked/b.png"), "{names:?}");
}

/// Every file of a streaming set failing to decode once training is under way is an error from
/// the loader, not a panic on a worker thread.
#[test]
fn a_streaming_set_that_stops_decoding_is_an_error() {
    let t = TempDir::new("stops");
    for i in 0..4u8 {
        solid(8, 8, [i, i, i])
            .save(t.path(&format!("{i}.png")))
            .unwrap();
    }
    let ds = Arc::new(Dataset::from_dir_with_cache_limit(t.root(), 8, 0).unwrap());
    for i in 0..4u8 {
        fs::write(t.path(&format!("{i}.png")), b"gone").unwrap();
    }
    let mut loader = Loader::new(ds, 4, 0, 0).unwrap();
    let err = loader.next_batch().unwrap_err();
    assert!(matches!(err, DataError::NoneDecode(_)), "{err}");
    assert!(err.to_string().contains("decodes any more"), "{err}");
}
