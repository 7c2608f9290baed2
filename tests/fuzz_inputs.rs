//! A bounded fuzz test over the two kinds of files users hand vkgan: checkpoints and images.
//! Several hundred deterministic mutations of a valid checkpoint and of valid PNG and JPEG
//! files must each give a clean result (a value or an error, never a panic), and reading one
//! must never allocate much more than the file's own size: a counting allocator measures the
//! peak. A few seconds in all.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use vkgan::data::Dataset;
use vkgan::persist::checkpoint::{self, Checkpoint};
use vkgan::train::config::Preset;
use vkgan::train::state::TrainState;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = LIVE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; only
// counters are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System.alloc` shares.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc`/`realloc`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new_size` is the caller's, valid for `realloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning whether it panicked and the most bytes it had allocated at once on top
/// of what was live before.
fn measured(f: impl FnOnce()) -> (bool, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let panicked = catch_unwind(AssertUnwindSafe(f)).is_err();
    (panicked, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

/// A checkpoint shaped like vkgan's: f32 weights, u32/u64 counters, the config as JSON.
fn valid_checkpoint(path: &Path) -> Vec<u8> {
    let mut ck = Checkpoint::new();
    for i in 0..12 {
        let n = 64 + 37 * i;
        let data = (0..n).map(|k| (k as f32 * 0.01).sin()).collect();
        ck.insert_f32(format!("generator.blocks.{i}.weight"), &[n], data)
            .unwrap();
    }
    ck.insert_u32("rng", &[4], vec![1, 2, 3, 4]).unwrap();
    ck.insert_u64("counters", &[2], vec![7, 9]).unwrap();
    let cfg = serde_json::to_string(&Preset::Quick.config()).unwrap();
    ck.set_meta("config", cfg);
    ck.set_meta("step", 8);
    checkpoint::write(path, &ck).unwrap();
    std::fs::read(path).unwrap()
}

/// One mutation of `bytes`: flipped bits, overwritten runs, digits changed inside the header
/// (shapes and offsets), a new length field, truncation, insertion or duplication.
fn mutate(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let header_end = (8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize).min(b.len());
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..7) {
            0 => {
                let i = rng.gen_range(0..b.len());
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let i = rng.gen_range(0..b.len());
                let n = rng.gen_range(1..16).min(b.len() - i);
                rng.fill(&mut b[i..i + n]);
            }
            2 => {
                // Shapes and offsets: the mutations that reach the size checks.
                let digits: Vec<usize> = (8..header_end.min(b.len()))
                    .filter(|&i| b[i].is_ascii_digit())
                    .collect();
                if let Some(&i) = digits.get(rng.gen_range(0..digits.len().max(1))) {
                    let big: &[u8] = [&b"9"[..], b"99999999999", b"0", b"18446744073709551615"]
                        [rng.gen_range(0..4)];
                    b.splice(i..i + 1, big.iter().copied());
                }
            }
            3 => {
                let len: u64 = match rng.gen_range(0..3) {
                    0 => rng.gen(),
                    1 => rng.gen_range(0..1 << 24),
                    _ => (header_end as u64)
                        .wrapping_sub(16)
                        .wrapping_add(rng.gen_range(0..16)),
                };
                b[..8].copy_from_slice(&len.to_le_bytes());
            }
            4 => b.truncate(rng.gen_range(0..b.len())),
            5 => {
                let i = rng.gen_range(0..=b.len());
                let extra: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
                b.splice(i..i, extra);
            }
            _ => {
                let i = rng.gen_range(0..b.len());
                let j = rng.gen_range(i..b.len());
                let copy = b[i..j].to_vec();
                b.extend_from_slice(&copy);
            }
        }
        if b.len() < 9 {
            break;
        }
    }
    b
}

#[test]
fn mutated_checkpoints_and_images_give_clean_errors_in_bounded_memory() {
    let dir = tempfile::Builder::new()
        .prefix("vkgan-fuzz-inputs-")
        .tempdir()
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(15);

    // Checkpoints.
    let good_path = dir.path().join("good.safetensors");
    let good = valid_checkpoint(&good_path);
    let path = dir.path().join("mutated.safetensors");
    let (mut ok, mut refused) = (0, 0);
    for case in 0..600 {
        let bytes = mutate(&mut rng, &good);
        std::fs::write(&path, &bytes).unwrap();
        let mut outcome = None;
        let (panicked, peak) = measured(|| {
            outcome = Some(checkpoint::read(&path).map(|ck| {
                // What `generate` and `--resume` do next with a checkpoint that reads.
                if let Ok(cfg) = TrainState::config_of(&ck) {
                    let _ = cfg.validate();
                }
            }))
        });
        assert!(!panicked, "case {case}: reading panicked");
        // The body and its decoded tensors, plus the bounded header and its parse.
        let bound = 3 * bytes.len() + 16 * checkpoint::MAX_HEADER_BYTES as usize;
        assert!(
            peak <= bound,
            "case {case}: {peak} bytes allocated reading a {}-byte file",
            bytes.len()
        );
        match outcome.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains('\n'), "case {case}: not one line: {text}");
                assert!(text.contains("mutated.safetensors"), "case {case}: {text}");
                refused += 1;
            }
        }
    }
    // The checksum catches data bytes, so nearly every mutation is refused.
    assert!(refused > 500, "{ok} read, {refused} refused");

    // Images: mutated PNGs and JPEGs in one folder, decoded as a training set.
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let photo = image::RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, (x * y) as u8])
    });
    let mut encoded = Vec::new();
    for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let mut bytes = Vec::new();
        photo
            .write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .unwrap();
        encoded.push((bytes, format.extensions_str()[0]));
    }
    let count = 160;
    for i in 0..count {
        let (bytes, ext) = &encoded[i % 2];
        let mutated = mutate_image(&mut rng, bytes);
        std::fs::write(images.join(format!("{i:03}.{ext}")), mutated).unwrap();
    }
    let mut opened = None;
    let (panicked, peak) = measured(|| opened = Some(Dataset::from_dir(&images, 8)));
    assert!(!panicked, "decoding panicked");
    // The decoded set itself is tiny (160 x 192 bytes); a bound of 256 MiB leaves room for
    // the decoders' own buffers on every core, and catches a size field taken at its word.
    assert!(
        peak < 256 << 20,
        "{peak} bytes allocated decoding {count} small images"
    );
    match opened.unwrap() {
        Ok(ds) => assert_eq!(ds.len() + ds.skipped(), count),
        Err(e) => assert!(e.to_string().contains("no images under"), "{e}"),
    }
}

/// Mutations of an image file; the first 8 bytes (the signature) are kept half the time so
/// that the decoders get past sniffing and reach the size fields.
fn mutate_image(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let from = if rng.gen_bool(0.5) { 8 } else { 0 };
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..4) {
            0 => {
                let i = rng.gen_range(from..b.len());
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                // Header fields (dimensions, lengths) sit near the start.
                let i = rng.gen_range(from..b.len().min(40));
                b[i] = 0xFF;
            }
            2 => b.truncate(rng.gen_range(from.max(1)..b.len())),
            _ => {
                let i = rng.gen_range(from..b.len());
                let n = rng.gen_range(1..8).min(b.len() - i);
                rng.fill(&mut b[i..i + n]);
            }
        }
    }
    b
}
