//! The checkpoint files of a run directory: named `checkpoint-<step, 8 digits>.safetensors`,
//! listed by step, saved with retention, and the newest readable one found. [`save`] writes
//! through [`super::atomic`], and only after the new file is in place does it delete older
//! checkpoints beyond the retention count. [`latest`] returns the newest checkpoint that reads
//! back intact, skipping (and reporting) corrupt ones. One writer per directory is assumed.

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::atomic;
use super::checkpoint::{io_err, read, write, Checkpoint, CheckpointError};

const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".safetensors";

/// Metadata key [`save`] fills with the step.
pub const STEP_KEY: &str = "step";

/// `dir/checkpoint-<step padded to 8 digits>.safetensors`.
pub fn checkpoint_path(dir: &Path, step: u64) -> PathBuf {
    dir.join(format!("{PREFIX}{step:08}{SUFFIX}"))
}

/// The step in a checkpoint file name, or `None` for any other file (temporaries included).
pub fn step_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checkpoint files in `dir`, sorted by step (oldest first). A missing directory has none.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, CheckpointError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        if let Some(step) = step_of(&path) {
            found.push((step, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Writes `ckpt` as the checkpoint for `step` in `dir` (created if needed; the step is also put
/// in the metadata under [`STEP_KEY`]), then keeps the newest `keep` checkpoints with a step
/// up to `step` and deletes older ones (`keep == 0` keeps all). Checkpoints with a larger step
/// (left by an abandoned run) are not touched. Temporary files left by an earlier crash are
/// removed. Returns the new file's path.
pub fn save(
    dir: &Path,
    step: u64,
    ckpt: &Checkpoint,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    remove_stale_temps(dir)?;
    let path = checkpoint_path(dir, step);
    let mut ckpt = Cow::Borrowed(ckpt);
    if ckpt.metadata.get(STEP_KEY).map(String::as_str) != Some(&step.to_string()) {
        ckpt.to_mut().set_meta(STEP_KEY, step);
    }
    write(&path, &ckpt)?;
    if keep > 0 {
        let older: Vec<_> = list(dir)?.into_iter().filter(|(s, _)| *s < step).collect();
        // The new file is one of the `keep`.
        let drop_count = older.len().saturating_sub(keep - 1);
        for (_, old) in &older[..drop_count] {
            match fs::remove_file(old) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(old)(e)),
            }
        }
        if drop_count > 0 {
            atomic::sync_dir(dir).map_err(io_err(dir))?;
        }
    }
    Ok(path)
}

fn remove_stale_temps(dir: &Path) -> Result<(), CheckpointError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!(".{PREFIX}")) && name.contains(atomic::TEMP_MARKER) {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// The newest checkpoint in a directory that reads back intact.
#[derive(Debug)]
pub struct Latest {
    pub step: u64,
    pub path: PathBuf,
    pub checkpoint: Checkpoint,
    /// Newer checkpoint files that failed to read, newest first, so the caller can warn.
    pub skipped: Vec<CheckpointError>,
}

/// Finds the newest valid checkpoint in `dir`; `Ok(None)` when it holds no checkpoint file.
/// When there are some but none reads, the error ([`CheckpointError::NoneReadable`]) names the
/// newest and why it failed, rather than claiming there is no checkpoint.
pub fn latest(dir: &Path) -> Result<Option<Latest>, CheckpointError> {
    let mut skipped = Vec::new();
    let files = list(dir)?;
    if files.is_empty() {
        return Ok(None);
    }
    for (step, path) in files.into_iter().rev() {
        match read(&path) {
            Ok(checkpoint) => {
                return Ok(Some(Latest {
                    step,
                    path,
                    checkpoint,
                    skipped,
                }))
            }
            Err(e) => skipped.push(e),
        }
    }
    Err(CheckpointError::NoneReadable {
        dir: dir.to_path_buf(),
        count: skipped.len(),
        newest: Box::new(skipped.remove(0)),
    })
}

#[cfg(test)]
mod tests {
    use super::super::atomic::test_dir::names_in;
    use super::super::checkpoint::tests::sample;
    use super::*;
    use safetensors::SafeTensors;

    #[test]
    fn round_trip_tensors_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let c = sample(3);
        let path = save(dir.path(), 3, &c, 2).unwrap();
        assert_eq!(path, dir.path().join("checkpoint-00000003.safetensors"));
        let back = read(&path).unwrap();
        let mut expected = c.clone();
        expected.set_meta(STEP_KEY, 3);
        assert_eq!(back, expected);
        assert_eq!(back.meta_parse::<u64>("step").unwrap(), 3);
        assert_eq!(back.meta_parse::<u64>("seed").unwrap(), 12345);
        assert_eq!(back.u64("counters").unwrap().1, &[u64::MAX, 3]);
        assert_eq!(back.f32("scalar").unwrap(), (&[][..], &[7.5f32][..]));
        // -0.0 must survive bit-exactly.
        assert_eq!(
            back.f32("G.bias").unwrap().1[1].to_bits(),
            (-0.0f32).to_bits()
        );
        assert!(matches!(
            back.u32("G.bias"),
            Err(CheckpointError::WrongDtype { .. })
        ));
        assert!(matches!(
            back.f32("nope"),
            Err(CheckpointError::MissingTensor(_))
        ));
        assert!(matches!(
            back.meta_parse::<u64>("config"),
            Err(CheckpointError::BadMetadata { .. })
        ));
        // Plain safetensors readers see the same data.
        let bytes = fs::read(&path).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("G.conv.weight").unwrap().shape(), &[2, 3, 5]);
    }

    #[test]
    fn atomic_save_leaves_no_temp_files_and_retention_keeps_k() {
        let dir = tempfile::tempdir().unwrap();
        // A temp file from a "crashed" earlier writer gets cleaned up.
        fs::write(
            dir.path()
                .join(".checkpoint-00000001.safetensors.tmp-99999"),
            b"torn",
        )
        .unwrap();
        fs::write(dir.path().join("notes.txt"), b"keep me").unwrap();
        for step in [0u64, 100, 200, 300, 400, 500] {
            save(dir.path(), step, &sample(step), 3).unwrap();
            assert!(
                names_in(dir.path()).iter().all(|f| !f.contains(".tmp-")),
                "{:?}",
                names_in(dir.path())
            );
        }
        assert_eq!(
            names_in(dir.path()),
            vec![
                "checkpoint-00000300.safetensors",
                "checkpoint-00000400.safetensors",
                "checkpoint-00000500.safetensors",
                "notes.txt",
            ]
        );
        let l = latest(dir.path()).unwrap().unwrap();
        assert_eq!(l.step, 500);
        assert!(l.skipped.is_empty());
        assert_eq!(l.checkpoint.u64("counters").unwrap().1, &[u64::MAX, 500]);

        // keep == 1 leaves only the newest; keep == 0 keeps everything.
        save(dir.path(), 600, &sample(600), 1).unwrap();
        let steps: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(steps, vec![600]);
        for step in [700, 800, 900] {
            save(dir.path(), step, &sample(step), 0).unwrap();
        }
        assert_eq!(list(dir.path()).unwrap().len(), 4);
    }

    #[test]
    fn retention_leaves_newer_steps_alone() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10u64, 20, 30] {
            save(dir.path(), step, &sample(step), 0).unwrap();
        }
        save(dir.path(), 15, &sample(15), 1).unwrap();
        let steps: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(steps, vec![15, 20, 30]);
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors_and_latest_skips_them() {
        let dir = tempfile::tempdir().unwrap();
        let good = save(dir.path(), 1, &sample(1), 0).unwrap();
        let bytes = fs::read(&good).unwrap();

        // Truncated at many points: always a clean error.
        for cut in [0, 3, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            let p = checkpoint_path(dir.path(), 2);
            fs::write(&p, &bytes[..cut]).unwrap();
            let err = read(&p).unwrap_err();
            assert!(
                matches!(err, CheckpointError::Corrupt { .. }),
                "cut {cut}: {err}"
            );
            assert!(err.to_string().contains("checkpoint-00000002"), "{err}");
        }

        // One flipped bit in the tensor data: caught by the checksum.
        let mut flipped = bytes.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 0x10;
        let p3 = checkpoint_path(dir.path(), 3);
        fs::write(&p3, &flipped).unwrap();
        let err = read(&p3).unwrap_err();
        assert!(matches!(err, CheckpointError::Checksum { .. }), "{err}");

        // Garbage header bytes.
        let mut garbage = bytes.clone();
        garbage[10] = 0xff;
        let p4 = checkpoint_path(dir.path(), 4);
        fs::write(&p4, &garbage).unwrap();
        assert!(matches!(
            read(&p4).unwrap_err(),
            CheckpointError::Corrupt { .. }
        ));

        // Missing file: an I/O error naming the path.
        let err = read(&dir.path().join("checkpoint-00000099.safetensors")).unwrap_err();
        assert!(matches!(err, CheckpointError::Io { .. }));

        let l = latest(dir.path()).unwrap().unwrap();
        assert_eq!(l.step, 1);
        assert_eq!(l.skipped.len(), 3);
    }

    #[test]
    fn latest_of_missing_or_empty_dir_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(latest(dir.path()).unwrap().is_none());
        assert!(latest(&dir.path().join("missing")).unwrap().is_none());
    }

    #[test]
    fn file_names() {
        let d = Path::new("/runs/x");
        assert_eq!(
            checkpoint_path(d, 42),
            Path::new("/runs/x/checkpoint-00000042.safetensors")
        );
        assert_eq!(step_of(&checkpoint_path(d, 123_456_789)), Some(123_456_789));
        assert_eq!(
            step_of(Path::new(".checkpoint-00000042.safetensors.tmp-1")),
            None
        );
        assert_eq!(step_of(Path::new("checkpoint-.safetensors")), None);
        assert_eq!(step_of(Path::new("checkpoint-12a.safetensors")), None);
    }

    #[test]
    fn latest_names_the_newest_unreadable_file_when_none_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = save(dir.path(), 5, &sample(5), 0).unwrap();
        fs::write(&p, b"garbage").unwrap();
        let err = latest(dir.path()).unwrap_err();
        assert!(
            matches!(err, CheckpointError::NoneReadable { count: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("checkpoint-00000005"), "{err}");
    }
}
