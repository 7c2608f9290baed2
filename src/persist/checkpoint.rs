//! Checkpoints as safetensors files: the crate's one reader and writer of the format (files on
//! disk, and golden files in memory through [`from_bytes`]), with one error type.
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
//! [`read`] checks the header before it reads the body, and reads the body only as far as the
//! header says; [`write`] sorts metadata and tensors so identical states give identical bytes.
//! A `vkgan.format` other than `1` is refused with the version named.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use safetensors::tensor::Dtype;

use super::atomic;

const FORMAT_KEY: &str = "vkgan.format";
const CHECKSUM_KEY: &str = "vkgan.checksum";
const FORMAT_VERSION: &str = "1";
/// Largest safetensors header read. A vkgan checkpoint's is about 50 KB; the bound keeps a
/// hostile length field from costing more than this before anything is checked.
pub const MAX_HEADER_BYTES: u64 = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not a valid safetensors file ({reason}); it is probably truncated or corrupt", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("{}: checkpoint format version {version:?} is not supported (this vkgan reads version {FORMAT_VERSION}); it was written by another vkgan version", path.display())]
    UnsupportedFormat { path: PathBuf, version: String },
    #[error("{}: none of the {count} checkpoints is readable; the newest: {newest}", dir.display())]
    NoneReadable {
        dir: PathBuf,
        count: usize,
        newest: Box<CheckpointError>,
    },
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
    #[error("the checkpoint lacks `{0}` (it was made for another model configuration)")]
    MissingParameter(String),
    #[error("`{name}` has shape {found:?} but this configuration needs {expected:?} (the checkpoint was made for another model configuration)")]
    WrongShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
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

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
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

/// Tensors by name and string metadata, both sorted, so that iteration order (and with it the
/// bytes [`write`] produces) does not depend on the process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
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

    /// The values of a model parameter, which must be stored as f32 in `shape`: a tensor that
    /// is absent or of another dtype is [`CheckpointError::MissingParameter`], one of another
    /// shape [`CheckpointError::WrongShape`] (both say the file is for another configuration).
    pub fn parameter(&self, name: &str, shape: &[usize]) -> Result<&[f32], CheckpointError> {
        let (found, data) = self
            .f32(name)
            .map_err(|_| CheckpointError::MissingParameter(name.to_string()))?;
        check_shape(name, found, shape)?;
        Ok(data)
    }

    /// The values of an f32 tensor that must have `shape`; unlike [`Checkpoint::parameter`], an
    /// absent tensor or one of another dtype is reported as such.
    pub fn f32_shaped(&self, name: &str, shape: &[usize]) -> Result<&[f32], CheckpointError> {
        let (found, data) = self.f32(name)?;
        check_shape(name, found, shape)?;
        Ok(data)
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

fn check_shape(name: &str, found: &[usize], expected: &[usize]) -> Result<(), CheckpointError> {
    if found != expected {
        return Err(CheckpointError::WrongShape {
            name: name.into(),
            found: found.to_vec(),
            expected: expected.to_vec(),
        });
    }
    Ok(())
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

/// Writes `ckpt` to `path` atomically (temporary sibling, fsync, rename, directory fsync). Any reserved `vkgan.*` keys in the
/// metadata are overwritten.
///
/// The safetensors layout is written here rather than by the `safetensors` crate, whose header
/// serialises metadata in hash-map order: that order changes between processes, so two
/// identical runs wrote checkpoints differing in bytes. Here metadata keys and tensors are
/// sorted, so identical states give identical files.
pub fn write(path: &Path, ckpt: &Checkpoint) -> Result<(), CheckpointError> {
    let mut hasher = Hasher::new();
    for (name, t) in &ckpt.tensors {
        hasher.tensor(name, t.data.dtype(), &t.shape, &t.data.to_le_bytes());
    }
    let mut metadata = ckpt.metadata.clone();
    metadata.insert(FORMAT_KEY.to_string(), FORMAT_VERSION.to_string());
    metadata.insert(CHECKSUM_KEY.to_string(), format!("{:016x}", hasher.0));
    // Eight-byte values first, then four-byte ones (each by name), as the safetensors crate
    // lays them out: every tensor then starts aligned to its element size.
    let mut order: Vec<(&String, &Tensor)> = ckpt.tensors.iter().collect();
    order.sort_by_key(|(name, t)| (std::cmp::Reverse(t.data.dtype().size()), name.as_str()));
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!(metadata));
    let mut offset = 0usize;
    for (name, t) in &order {
        let end = offset + t.data.byte_len();
        header.insert(
            name.to_string(),
            serde_json::json!({
                "dtype": format!("{:?}", t.data.dtype()),
                "shape": t.shape,
                "data_offsets": [offset, end],
            }),
        );
        offset = end;
    }
    let mut header = serde_json::to_vec(&header).expect("a JSON map serialises");
    // Padded with spaces so the data starts 8-byte aligned, as the safetensors crate does.
    header.resize(header.len().next_multiple_of(8), b' ');
    atomic::replace_file(path, |tmp| {
        let mut out = BufWriter::new(File::create(tmp)?);
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        for (_, t) in &order {
            out.write_all(&t.data.to_le_bytes())?;
        }
        out.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    })
    .map_err(io_err(path))
}

/// One tensor's entry in a safetensors header.
#[derive(serde::Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

/// A header entry whose dtype is supported and whose size fits its shape.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    start: u64,
    end: u64,
}

/// Reads a checkpoint, checking its structure and (when present) its checksum.
///
/// The header is read and checked first (its length bounded by [`MAX_HEADER_BYTES`], every
/// tensor's size against its shape, the offsets contiguous, the format version known, and for a
/// regular file the length it implies against the file's), and only then the body, exactly as
/// far as the header says. So a hostile or broken file (`/dev/zero`, a huge sparse file, a
/// length field of 2^63) is refused at the cost of its header, never more memory than the
/// tensors it validly describes.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let file = File::open(path).map_err(io_err(path))?;
    // Only a regular file's length is known up front; a device or pipe is read as far as the
    // header says and no further.
    let len = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Reader {
        src: file,
        len,
        path,
    }
    .read()
}

/// Parses a safetensors file held in memory (a golden file, say) with the checks of [`read`];
/// errors name it `<memory>`.
pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    Reader {
        src: bytes,
        len: Some(bytes.len() as u64),
        path: Path::new("<memory>"),
    }
    .read()
}

/// The one safetensors reader: `src` holds `len` bytes when that is known, and `path` names
/// it in errors.
struct Reader<'a, R> {
    src: R,
    len: Option<u64>,
    path: &'a Path,
}

impl<R: Read> Reader<'_, R> {
    fn corrupt(&self, reason: String) -> CheckpointError {
        CheckpointError::Corrupt {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    fn io(&self, source: io::Error) -> CheckpointError {
        io_err(self.path)(source)
    }

    /// Fills `buf`; running out of bytes means the file is cut inside `what`.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), CheckpointError> {
        self.src.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                self.corrupt(format!("the file ends inside the {what}"))
            } else {
                self.io(e)
            }
        })
    }

    fn read(mut self) -> Result<Checkpoint, CheckpointError> {
        let (header_len, mut header) = self.header()?;
        let (metadata, stored_checksum) = self.metadata(&mut header)?;
        let mut entries = self.entries(header)?;
        let body_len = self.check_layout(&mut entries, header_len)?;
        let body = self.body(body_len)?;
        let (tensors, checksum) = decode(entries, &body);
        if let Some(stored) = stored_checksum {
            if u64::from_str_radix(&stored, 16).ok() != Some(checksum) {
                return Err(CheckpointError::Checksum {
                    path: self.path.to_path_buf(),
                    stored,
                    computed: checksum,
                });
            }
        }
        Ok(Checkpoint { tensors, metadata })
    }

    /// The header's length and its JSON object, bounded before anything is allocated.
    fn header(
        &mut self,
    ) -> Result<(u64, serde_json::Map<String, serde_json::Value>), CheckpointError> {
        let mut len_bytes = [0u8; 8];
        self.fill(&mut len_bytes, "8-byte header length")?;
        let header_len = u64::from_le_bytes(len_bytes);
        if !(2..=MAX_HEADER_BYTES).contains(&header_len) {
            return Err(self.corrupt(format!(
                "header length {header_len} is outside 2..={MAX_HEADER_BYTES} bytes"
            )));
        }
        if let Some(len) = self.len {
            if 8 + header_len > len {
                return Err(self.corrupt(format!(
                    "the header of {header_len} bytes runs past the end of the {len}-byte file"
                )));
            }
        }
        let mut header = vec![0u8; header_len as usize];
        self.fill(&mut header, "header")?;
        let header =
            serde_json::from_slice(&header).map_err(|e| self.corrupt(format!("header: {e}")))?;
        Ok((header_len, header))
    }

    /// Takes the metadata out of `header`: the user's entries, and the stored checksum. A format
    /// version other than this reader's is refused here.
    fn metadata(
        &self,
        header: &mut serde_json::Map<String, serde_json::Value>,
    ) -> Result<(BTreeMap<String, String>, Option<String>), CheckpointError> {
        let mut metadata: BTreeMap<String, String> = match header.remove("__metadata__") {
            Some(m) => {
                serde_json::from_value(m).map_err(|e| self.corrupt(format!("metadata: {e}")))?
            }
            None => BTreeMap::new(),
        };
        if let Some(version) = metadata.get(FORMAT_KEY) {
            if version != FORMAT_VERSION {
                return Err(CheckpointError::UnsupportedFormat {
                    path: self.path.to_path_buf(),
                    version: version.clone(),
                });
            }
        }
        let stored_checksum = metadata.remove(CHECKSUM_KEY);
        metadata.remove(FORMAT_KEY);
        Ok((metadata, stored_checksum))
    }

    /// Every tensor entry, its dtype supported and its byte range the size of its shape.
    fn entries(
        &self,
        header: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<Entry>, CheckpointError> {
        let mut entries = Vec::with_capacity(header.len());
        for (name, value) in header {
            let entry: HeaderEntry = serde_json::from_value(value)
                .map_err(|e| self.corrupt(format!("tensor '{name}': {e}")))?;
            let dtype = match entry.dtype.as_str() {
                "F32" => Dtype::F32,
                "U32" => Dtype::U32,
                "U64" => Dtype::U64,
                _ => {
                    return Err(CheckpointError::UnsupportedDtype {
                        path: self.path.to_path_buf(),
                        name,
                        dtype: entry.dtype,
                    })
                }
            };
            let bytes = entry
                .shape
                .iter()
                .try_fold(dtype.size() as u64, |n, &d| n.checked_mul(d as u64));
            let (start, end) = entry.data_offsets;
            if bytes != end.checked_sub(start) {
                return Err(self.corrupt(format!(
                    "tensor '{name}' of shape {:?} does not fit its data offsets {start}..{end}",
                    entry.shape
                )));
            }
            entries.push(Entry {
                name,
                dtype,
                shape: entry.shape,
                start,
                end,
            });
        }
        Ok(entries)
    }

    /// Checks that the tensors tile the body without gap or overlap (sorting `entries` by
    /// offset) and, where the length is known, that the body is what the file holds. Returns
    /// the body's length.
    fn check_layout(&self, entries: &mut [Entry], header_len: u64) -> Result<u64, CheckpointError> {
        entries.sort_by_key(|e| (e.start, e.end));
        let mut body_len = 0u64;
        for e in entries.iter() {
            if e.start != body_len {
                return Err(self.corrupt(format!(
                    "tensor '{}' starts at byte {}, not {body_len}: the offsets overlap or \
                     leave a gap",
                    e.name, e.start
                )));
            }
            body_len = e.end;
        }
        if let Some(len) = self.len {
            let held = len - 8 - header_len;
            if held != body_len {
                return Err(self.corrupt(format!(
                    "the header describes {body_len} bytes of tensors but the file holds {held}"
                )));
            }
        }
        Ok(body_len)
    }

    /// The `body_len` bytes after the header, and a check that nothing follows them.
    fn body(&mut self, body_len: u64) -> Result<Vec<u8>, CheckpointError> {
        let body_size = usize::try_from(body_len).map_err(|_| self.corrupt("too large".into()))?;
        let mut body = Vec::new();
        if self.len.is_some() {
            // The length was checked against the file, so this is what the file really holds.
            body.reserve_exact(body_size);
        }
        let got = (&mut self.src).take(body_len).read_to_end(&mut body);
        let got = got.map_err(|e| self.io(e))?;
        if got as u64 != body_len {
            return Err(self.corrupt(format!(
                "the file ends after {got} of the {body_len} bytes of tensors"
            )));
        }
        if self.len.is_none() && self.src.read(&mut [0u8; 1]).map_err(|e| self.io(e))? != 0 {
            return Err(self.corrupt("data continues past the last tensor".into()));
        }
        Ok(body)
    }
}

/// The tensors of `body`, and the checksum of what was read.
fn decode(mut entries: Vec<Entry>, body: &[u8]) -> (BTreeMap<String, Tensor>, u64) {
    // By name, as `write` hashes them.
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = Hasher::new();
    let mut tensors = BTreeMap::new();
    for Entry {
        name,
        dtype,
        shape,
        start,
        end,
    } in entries
    {
        let raw = &body[start as usize..end as usize];
        hasher.tensor(&name, dtype, &shape, raw);
        let data = match dtype {
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
            _ => TensorData::U64(
                raw.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
            ),
        };
        tensors.insert(name, Tensor { shape, data });
    }
    (tensors, hasher.0)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::fs;

    /// A checkpoint of every dtype, its values depending on `step`.
    pub(in crate::persist) fn sample(step: u64) -> Checkpoint {
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
    fn bytes_in_memory_read_as_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        write(&p, &sample(2)).unwrap();
        let bytes = fs::read(&p).unwrap();
        assert_eq!(from_bytes(&bytes).unwrap(), read(&p).unwrap());
        let err = from_bytes(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("<memory>"), "{err}");
    }

    #[test]
    fn parameters_must_be_f32_of_the_configured_shape() {
        let c = sample(1);
        assert_eq!(c.parameter("G.bias", &[3]).unwrap().len(), 3);
        let e = c.parameter("G.bias", &[4]).unwrap_err().to_string();
        assert!(
            e.contains("needs [4]") && e.contains("model configuration"),
            "{e}"
        );
        assert!(matches!(
            c.parameter("rng.state", &[4]),
            Err(CheckpointError::MissingParameter(_))
        ));
        assert!(matches!(
            c.f32_shaped("rng.state", &[4]),
            Err(CheckpointError::WrongDtype { .. })
        ));
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
    fn identical_checkpoints_are_identical_bytes() {
        // Two checkpoints built separately (each metadata map its own), keys inserted in
        // opposite orders: the files must still match byte for byte.
        let dir = tempfile::tempdir().unwrap();
        let build = |rev: bool| {
            let mut c = sample(7);
            let mut keys: Vec<String> = (0..24).map(|i| format!("key{i}")).collect();
            if rev {
                keys.reverse();
            }
            for k in keys {
                c.set_meta(k.clone(), k);
            }
            c
        };
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, &build(false)).unwrap();
        write(&b, &build(true)).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert_eq!(read(&a).unwrap(), build(false));
    }

    #[test]
    fn unknown_format_versions_are_refused_naming_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.safetensors");
        write(&p, &sample(1)).unwrap();
        let bytes = fs::read(&p).unwrap();
        for version in ["2", "x"] {
            // Same length, so the header length field stays right.
            let from = r#""vkgan.format":"1""#;
            let to = format!(r#""vkgan.format":"{version}""#);
            let mut changed = bytes.clone();
            let at = bytes
                .windows(from.len())
                .position(|w| w == from.as_bytes())
                .expect("the format key is in the header");
            changed[at..at + from.len()].copy_from_slice(to.as_bytes());
            fs::write(&p, &changed).unwrap();
            let err = read(&p).unwrap_err();
            assert!(
                matches!(err, CheckpointError::UnsupportedFormat { .. }),
                "{version}: {err}"
            );
            assert!(err.to_string().contains(&format!("\"{version}\"")), "{err}");
        }
    }

    #[test]
    fn hostile_lengths_are_refused_before_the_body_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // A device that never ends.
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
        // A header length of 2^62 and a tensor claiming 2^40 bytes of a 100-byte file.
        let p = dir.path().join("h.safetensors");
        let mut f = (1u64 << 62).to_le_bytes().to_vec();
        f.extend_from_slice(b"{}");
        fs::write(&p, &f).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("header length"));
        let header =
            br#"{"w":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,1099511627776]}}"#;
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header);
        f.extend_from_slice(&[0u8; 100]);
        fs::write(&p, &f).unwrap();
        let err = read(&p).unwrap_err().to_string();
        assert!(err.contains("describes 1099511627776 bytes"), "{err}");
        // Shapes whose size overflows, offsets out of order, a sparse 2 GiB file of zeros.
        let header =
            br#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#;
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header);
        fs::write(&p, &f).unwrap();
        assert!(read(&p).unwrap_err().to_string().contains("does not fit"));
        let sparse = dir.path().join("sparse.safetensors");
        File::create(&sparse).unwrap().set_len(2 << 30).unwrap();
        let began = std::time::Instant::now();
        let err = read(&sparse).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
        assert!(began.elapsed().as_secs_f64() < 1.0, "{:?}", began.elapsed());
    }

    #[test]
    fn foreign_file_without_checksum_reads() {
        let dir = tempfile::tempdir().unwrap();
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
