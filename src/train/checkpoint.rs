//! Training checkpoints as safetensors files.
//!
//! A [`Checkpoint`] is a set of named tensors (f32 parameters and optimizer moments; u32/u64 for
//! values that must resume bit-exactly, such as RNG states and counters) plus string metadata
//! (step, seed, the full config JSON, ...). The file format is plain safetensors, so other tools
//! can read it; two reserved metadata keys are added:
//!
//! - `vkgan.format`: the layout version of this writer (`1`);
//! - `vkgan.checksum`: a 64-bit hash of every tensor's name, dtype, shape and bytes, checked on
//!   read. Safetensors itself detects truncation and a broken header but not flipped data bytes.
//!
//! Files written elsewhere (without a checksum) are read without that check. Reserved keys are
//! stripped from [`Checkpoint::metadata`] on read.
//!
//! In a run directory the files are named `checkpoint-<step, 8 digits>.safetensors`. [`save`]
//! writes through [`super::atomic`] (temporary sibling, fsync, rename, directory fsync), and only
//! after the new file is in place does it delete older checkpoints beyond the retention count.
//! [`latest`] returns the newest checkpoint that reads back intact, skipping (and reporting)
//! corrupt ones. One writer per directory is assumed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use safetensors::tensor::{Dtype, SafeTensors, View};

use super::atomic;

const FORMAT_KEY: &str = "vkgan.format";
const CHECKSUM_KEY: &str = "vkgan.checksum";
const FORMAT_VERSION: &str = "1";
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".safetensors";

/// Metadata key [`save`] fills with the step.
pub const STEP_KEY: &str = "step";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a valid safetensors file ({reason}); it is probably truncated or corrupt", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: checksum mismatch (stored {stored}, computed {computed:016x}); the tensor data is corrupt", path.display())]
    Checksum {
        path: PathBuf,
        stored: String,
        computed: u64,
    },
    #[error("{}: tensor '{name}' has dtype {dtype}; only F32, U32 and U64 are supported", path.display())]
    UnsupportedDtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("tensor '{name}': shape {shape:?} holds {expected} values but {actual} were given")]
    ShapeMismatch {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("tensor '{0}' is already in the checkpoint")]
    DuplicateTensor(String),
    #[error("checkpoint has no tensor '{0}'")]
    MissingTensor(String),
    #[error("tensor '{name}' holds {found} values, not {expected}")]
    WrongDtype {
        name: String,
        found: &'static str,
        expected: &'static str,
    },
    #[error("checkpoint has no metadata key '{0}'")]
    MissingMetadata(String),
    #[error("metadata '{key}' = {value:?} is not a valid {ty}")]
    BadMetadata {
        key: String,
        value: String,
        ty: &'static str,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The values of one tensor, in the element type they are stored with.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::U32(v) => v.len(),
            TensorData::U64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn kind(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "f32",
            TensorData::U32(_) => "u32",
            TensorData::U64(_) => "u64",
        }
    }

    fn dtype(&self) -> Dtype {
        match self {
            TensorData::F32(_) => Dtype::F32,
            TensorData::U32(_) => Dtype::U32,
            TensorData::U64(_) => Dtype::U64,
        }
    }

    /// Little-endian bytes, as safetensors stores them.
    fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    fn byte_len(&self) -> usize {
        self.len() * self.dtype().size()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Tensors by name (sorted, so iteration order is stable) and string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: HashMap<String, String>,
}

impl Checkpoint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tensor; its value count must match the shape (an empty shape is a scalar).
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        data: TensorData,
    ) -> Result<(), CheckpointError> {
        let name = name.into();
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(CheckpointError::ShapeMismatch {
                name,
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        if self.tensors.contains_key(&name) {
            return Err(CheckpointError::DuplicateTensor(name));
        }
        self.tensors.insert(
            name,
            Tensor {
                shape: shape.to_vec(),
                data,
            },
        );
        Ok(())
    }

    pub fn insert_f32(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        data: Vec<f32>,
    ) -> Result<(), CheckpointError> {
        self.insert(name, shape, TensorData::F32(data))
    }

    pub fn insert_u32(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        data: Vec<u32>,
    ) -> Result<(), CheckpointError> {
        self.insert(name, shape, TensorData::U32(data))
    }

    pub fn insert_u64(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        data: Vec<u64>,
    ) -> Result<(), CheckpointError> {
        self.insert(name, shape, TensorData::U64(data))
    }

    fn tensor(&self, name: &str) -> Result<&Tensor, CheckpointError> {
        self.tensors
            .get(name)
            .ok_or_else(|| CheckpointError::MissingTensor(name.to_string()))
    }

    fn wrong(&self, name: &str, t: &Tensor, expected: &'static str) -> CheckpointError {
        CheckpointError::WrongDtype {
            name: name.to_string(),
            found: t.data.kind(),
            expected,
        }
    }

    /// Shape and values of an f32 tensor.
    pub fn f32(&self, name: &str) -> Result<(&[usize], &[f32]), CheckpointError> {
        let t = self.tensor(name)?;
        match &t.data {
            TensorData::F32(v) => Ok((&t.shape, v)),
            _ => Err(self.wrong(name, t, "f32")),
        }
    }

    pub fn u32(&self, name: &str) -> Result<(&[usize], &[u32]), CheckpointError> {
        let t = self.tensor(name)?;
        match &t.data {
            TensorData::U32(v) => Ok((&t.shape, v)),
            _ => Err(self.wrong(name, t, "u32")),
        }
    }

    pub fn u64(&self, name: &str) -> Result<(&[usize], &[u64]), CheckpointError> {
        let t = self.tensor(name)?;
        match &t.data {
            TensorData::U64(v) => Ok((&t.shape, v)),
            _ => Err(self.wrong(name, t, "u64")),
        }
    }

    /// Sets a metadata entry; numbers go through `to_string`, which round-trips exactly for
    /// integers and (shortest representation) for floats.
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl ToString) {
        self.metadata.insert(key.into(), value.to_string());
    }

    pub fn meta(&self, key: &str) -> Result<&str, CheckpointError> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| CheckpointError::MissingMetadata(key.to_string()))
    }

    /// A metadata entry parsed as `T` (e.g. `u64` for a step or RNG seed).
    pub fn meta_parse<T: FromStr>(&self, key: &str) -> Result<T, CheckpointError> {
        let value = self.meta(key)?;
        value.parse().map_err(|_| CheckpointError::BadMetadata {
            key: key.to_string(),
            value: value.to_string(),
            ty: std::any::type_name::<T>(),
        })
    }
}

/// Error-detection hash (not cryptographic): FNV-1a's multiply step over 64-bit little-endian
/// words. Each step is a bijection of the state for a fixed word, so any change confined to one
/// word always changes the result.
struct Hasher(u64);

impl Hasher {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Hasher(0xcbf2_9ce4_8422_2325)
    }

    fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(Self::PRIME);
    }

    fn bytes(&mut self, b: &[u8]) {
        // The length goes in first so that byte strings differing only in trailing zeros differ.
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last));
        }
    }

    fn tensor(&mut self, name: &str, dtype: Dtype, shape: &[usize], data: &[u8]) {
        self.bytes(name.as_bytes());
        self.bytes(format!("{dtype:?}").as_bytes());
        self.word(shape.len() as u64);
        for &d in shape {
            self.word(d as u64);
        }
        self.bytes(data);
    }
}

/// Serializes one tensor's bytes only when the writer asks for them, so at most one tensor is
/// held twice in memory.
struct LazyView<'a>(&'a Tensor);

impl View for LazyView<'_> {
    fn dtype(&self) -> Dtype {
        self.0.data.dtype()
    }

    fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.data.to_le_bytes())
    }

    fn data_len(&self) -> usize {
        self.0.data.byte_len()
    }
}

/// Writes `ckpt` to `path` atomically (see the module doc). Any reserved `vkgan.*` keys in the
/// metadata are overwritten.
pub fn write(path: &Path, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    let mut hasher = Hasher::new();
    for (name, t) in &ckpt.tensors {
        hasher.tensor(name, t.data.dtype(), &t.shape, &t.data.to_le_bytes());
    }
    let mut metadata = ckpt.metadata.clone();
    metadata.insert(FORMAT_KEY.to_string(), FORMAT_VERSION.to_string());
    metadata.insert(CHECKSUM_KEY.to_string(), format!("{:016x}", hasher.0));
    let views = ckpt
        .tensors
        .iter()
        .map(|(name, t)| (name.as_str(), LazyView(t)));
    atomic::replace_file(path, |tmp| {
        safetensors::serialize_to_file(views, &Some(metadata), tmp).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(e) => e,
            other => io::Error::other(other.to_string()),
        })
    })
    .map_err(io_err(path))
}

/// Reads a checkpoint, checking its structure and (when present) its checksum.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    parse(path, &bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let corrupt = |reason: String| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(format!("{e:?}")))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(format!("{e:?}")))?;
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let stored_checksum = metadata.remove(CHECKSUM_KEY);
    metadata.remove(FORMAT_KEY);

    let mut named = st.tensors();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Hasher::new();
    let mut tensors = BTreeMap::new();
    for (name, view) in named {
        let raw = view.data();
        hasher.tensor(&name, view.dtype(), view.shape(), raw);
        let data = match view.dtype() {
            Dtype::F32 => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            Dtype::U32 => TensorData::U32(
                raw.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            Dtype::U64 => TensorData::U64(
                raw.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
            other => {
                return Err(CheckpointError::UnsupportedDtype {
                    path: path.to_path_buf(),
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        tensors.insert(
            name,
            Tensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    if let Some(stored) = stored_checksum {
        if u64::from_str_radix(&stored, 16).ok() != Some(hasher.0) {
            return Err(CheckpointError::Checksum {
                path: path.to_path_buf(),
                stored,
                computed: hasher.0,
            });
        }
    }
    Ok(Checkpoint { tensors, metadata })
}

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

/// Finds the newest valid checkpoint in `dir`; `Ok(None)` when there is none (including when
/// every file is corrupt; the errors are then lost, so callers wanting them should use [`list`]
/// and [`read`]).
pub fn latest(dir: &Path) -> Result<Option<Latest>, CheckpointError> {
    let mut skipped = Vec::new();
    for (step, path) in list(dir)?.into_iter().rev() {
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
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::atomic::test_dir::TestDir;
    use super::*;

    fn sample(step: u64) -> Checkpoint {
        let mut c = Checkpoint::new();
        let w: Vec<f32> = (0..2 * 3 * 5)
            .map(|i| i as f32 * 0.25 - 3.0 + step as f32)
            .collect();
        c.insert_f32("G.conv.weight", &[2, 3, 5], w).unwrap();
        c.insert_f32("G.bias", &[3], vec![f32::MIN_POSITIVE, -0.0, 1e30])
            .unwrap();
        c.insert_f32("scalar", &[], vec![7.5]).unwrap();
        c.insert_u32("rng.state", &[4], vec![0, 1, u32::MAX, 0xdead_beef])
            .unwrap();
        c.insert_u64("counters", &[2], vec![u64::MAX, step])
            .unwrap();
        c.set_meta("seed", 12345u64);
        c.set_meta("config", r#"{"resolution":32,"lr":0.0025}"#);
        c
    }

    #[test]
    fn round_trip_tensors_and_metadata() {
        let dir = TestDir::new("ckpt-rt");
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
    fn insert_checks_shape_and_duplicates() {
        let mut c = Checkpoint::new();
        assert!(matches!(
            c.insert_f32("a", &[2, 2], vec![1.0; 3]),
            Err(CheckpointError::ShapeMismatch { expected: 4, .. })
        ));
        c.insert_f32("a", &[2, 2], vec![1.0; 4]).unwrap();
        assert!(matches!(
            c.insert_u32("a", &[1], vec![1]),
            Err(CheckpointError::DuplicateTensor(_))
        ));
    }

    #[test]
    fn atomic_save_leaves_no_temp_files_and_retention_keeps_k() {
        let dir = TestDir::new("ckpt-keep");
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
                dir.files().iter().all(|f| !f.contains(".tmp-")),
                "{:?}",
                dir.files()
            );
        }
        assert_eq!(
            dir.files(),
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
        let dir = TestDir::new("ckpt-newer");
        for step in [10u64, 20, 30] {
            save(dir.path(), step, &sample(step), 0).unwrap();
        }
        save(dir.path(), 15, &sample(15), 1).unwrap();
        let steps: Vec<u64> = list(dir.path()).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(steps, vec![15, 20, 30]);
    }

    #[test]
    fn corrupt_and_truncated_files_are_errors_and_latest_skips_them() {
        let dir = TestDir::new("ckpt-bad");
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
        let dir = TestDir::new("ckpt-empty");
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
    fn foreign_file_without_checksum_reads() {
        let dir = TestDir::new("ckpt-foreign");
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let view = safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &data).unwrap();
        let p = dir.path().join("x.safetensors");
        safetensors::serialize_to_file([("w", view)], &None, &p).unwrap();
        let c = read(&p).unwrap();
        assert_eq!(c.f32("w").unwrap().1, &[1.5, -2.0]);

        let half: Vec<u8> = [1u16, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(Dtype::F16, vec![2], &half).unwrap();
        safetensors::serialize_to_file([("h", view)], &None, &p).unwrap();
        assert!(matches!(
            read(&p).unwrap_err(),
            CheckpointError::UnsupportedDtype { .. }
        ));
    }
}
