//! Checkpoints: named f32 and i32 tensors plus string metadata in one
//! safetensors file. Tensors are keyed by parameter name (`c1.w`, `b1.mean`),
//! optimizer state (`adam.m.c1.w`) or quantizer state (`q.c1.w.exp`, i32);
//! metadata is the `__metadata__` string map, with the well-known `KEY_*` keys.
//!
//! **Determinism.** The header is written here, not by
//! `safetensors::serialize`, whose `__metadata__` is a `HashMap` (random
//! order): metadata keys are sorted and tensors are laid out as that serializer
//! does (f32 before i32, each by name), so equal checkpoints give equal bytes,
//! identical to the crate's output when there is at most one metadata entry.
//! Reading goes through the safetensors crate, which validates the file.
//!
//! **Atomicity.** [`Checkpoint::save`] uses [`write_atomic`]: a crash mid-write
//! leaves the previous file.

mod atomic;

pub use atomic::{check_writable, write_atomic};

use crate::ir::Graph;
use safetensors::{tensor::Metadata, Dtype, SafeTensorError, SafeTensors};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// Version of potc that wrote the file (`CARGO_PKG_VERSION`).
pub const KEY_POTC_VERSION: &str = "potc_version";
/// The model's name, as in `model NAME(...)`.
pub const KEY_MODEL: &str = "model";
/// [`model_hash`] of the model the checkpoint was trained for.
pub const KEY_MODEL_HASH: &str = "model_hash";
/// JSON array of strings: class index `i` is label `labels[i]`.
pub const KEY_LABELS: &str = "labels";
/// JSON object: the training configuration (epochs, lr, quantization, ...).
pub const KEY_CONFIG: &str = "config";
/// JSON `[channels, length]`: the input the model was trained on (the data's,
/// which may differ from the length the model text declares).
pub const KEY_INPUT_SHAPE: &str = "input_shape";
/// JSON: per-epoch metrics.
pub const KEY_HISTORY: &str = "history";
/// JSON: resume state (epoch, optimizer step, RNG position, ...).
pub const KEY_STATE: &str = "state";

/// At most this many problems are listed in a mismatch message.
const MAX_LISTED: usize = 20;

/// A tensor's values, row-major, stored little-endian as F32 or I32, or as
/// I8 (the codes of power-of-two weights in a program).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I32(Vec<i32>),
    I8(Vec<i8>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `"f32"`, `"i32"` or `"i8"`, as the IR writes element types.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            TensorData::F32(_) => "f32",
            TensorData::I32(_) => "i32",
            TensorData::I8(_) => "i8",
        }
    }

    /// The safetensors dtype, the bytes an element takes, and the file
    /// order (4-byte types first, so every tensor stays aligned).
    fn layout(&self) -> (&'static str, usize, u8) {
        match self {
            TensorData::F32(_) => ("F32", 4, 0),
            TensorData::I32(_) => ("I32", 4, 1),
            TensorData::I8(_) => ("I8", 1, 2),
        }
    }

    fn le_bytes(&self) -> Vec<u8> {
        match self {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }
}

/// One named tensor: `shape` has exactly `data.len()` elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

/// Tensors and metadata, both sorted by name so the file bytes are deterministic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checkpoint {
    pub tensors: BTreeMap<String, Tensor>,
    pub meta: BTreeMap<String, String>,
}

/// Everything that can go wrong with a checkpoint. The message names the file;
/// errors of in-memory operations ([`Checkpoint::check_against`],
/// [`Checkpoint::json`]) name it once [`CkptError::in_file`] has added it.
#[derive(Debug, thiserror::Error)]
pub enum CkptError {
    #[error("{}: no such checkpoint file", .path.display())]
    Missing { path: PathBuf },
    #[error("{}: cannot {action}: {source}", .path.display())]
    Io { path: PathBuf, action: &'static str, source: io::Error },
    #[error("{}: not a safetensors file: {reason}", .path.display())]
    NotSafetensors { path: PathBuf, reason: String },
    #[error("{}: truncated: {reason}", .path.display())]
    Truncated { path: PathBuf, reason: String },
    #[error("{}: tensor `{tensor}` has dtype {dtype}; checkpoints hold only F32, I32 and I8 tensors", .path.display())]
    UnsupportedDtype { path: PathBuf, tensor: String, dtype: String },
    #[error("{}: tensor `{tensor}` holds {value} (at index {index}); every value must be finite", .path.display())]
    NonFinite { path: PathBuf, tensor: String, index: usize, value: f32 },
    #[error("{}: cannot save tensor `{tensor}`: {reason}", .path.display())]
    InvalidTensor { path: PathBuf, tensor: String, reason: String },
    #[error("{}: metadata `{key}` is not the expected JSON: {source}", file(.path))]
    Json { path: Option<PathBuf>, key: String, source: serde_json::Error },
    #[error("{}: does not match model `{model}`:{}", file(.path), list(.problems))]
    Mismatch { path: Option<PathBuf>, model: String, problems: Vec<String> },
}

fn file(path: &Option<PathBuf>) -> String {
    path.as_ref().map_or_else(|| "checkpoint".to_string(), |p| p.display().to_string())
}

fn list(problems: &[String]) -> String {
    let mut s: String = problems.iter().take(MAX_LISTED).map(|p| format!("\n  - {p}")).collect();
    if problems.len() > MAX_LISTED {
        s += &format!("\n  ... and {} more", problems.len() - MAX_LISTED);
    }
    s
}

impl CkptError {
    /// Names `path` in an error of an in-memory operation (other errors
    /// already name their file and are returned unchanged).
    pub fn in_file(mut self, file: &Path) -> CkptError {
        if let CkptError::Json { path, .. } | CkptError::Mismatch { path, .. } = &mut self {
            path.get_or_insert_with(|| file.to_path_buf());
        }
        self
    }
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically (see [`write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<(), CkptError> {
        let (header, order) = self.encode_header(path)?;
        write_atomic(path, |w| {
            w.write_all(&header)?;
            order.iter().try_for_each(|t| w.write_all(&t.data.le_bytes()))
        })
        .map_err(|source| CkptError::Io { path: path.into(), action: "write", source })
    }

    /// The length prefix, the JSON header (padded with spaces to a multiple
    /// of 8 bytes, as the safetensors crate does) and the tensors in file
    /// order (f32, then i32, then i8, each by name), after checking each tensor.
    fn encode_header(&self, path: &Path) -> Result<(Vec<u8>, Vec<&Tensor>), CkptError> {
        let mut order: Vec<(&String, &Tensor)> = self.tensors.iter().collect();
        order.sort_by_key(|(name, t)| (t.data.layout().2, *name));
        let mut entries = vec![];
        if !self.meta.is_empty() {
            entries.push(format!("\"__metadata__\":{}", json(&self.meta)));
        }
        let mut offset = 0;
        for (name, t) in &order {
            if let Some(reason) = unwritable(name, t) {
                let tensor = name.to_string();
                return Err(CkptError::InvalidTensor { path: path.into(), tensor, reason });
            }
            let (dtype, size, _) = t.data.layout();
            let end = offset + size * t.data.len();
            entries.push(format!(
                "{}:{{\"dtype\":\"{dtype}\",\"shape\":{},\"data_offsets\":[{offset},{end}]}}",
                json(name),
                json(&t.shape)
            ));
            offset = end;
        }
        let mut h = format!("{{{}}}", entries.join(",")).into_bytes();
        h.resize(h.len().next_multiple_of(8), b' ');
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(h);
        Ok((out, order.into_iter().map(|(_, t)| t).collect()))
    }

    /// Reads a checkpoint; errors say what is wrong and name the file.
    pub fn load(path: &Path) -> Result<Checkpoint, CkptError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => CkptError::Missing { path: path.into() },
            _ => CkptError::Io { path: path.into(), action: "read", source },
        })?;
        Checkpoint::from_bytes(path, &bytes)
    }

    /// Parses a checkpoint already in memory; `path` is the file named in
    /// errors. What [`Checkpoint::load`] does after reading the file.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CkptError> {
        let (n, md) =
            SafeTensors::read_metadata(bytes).map_err(|e| format_error(path, bytes, e))?;
        let data = &bytes[8 + n..];
        let infos: BTreeMap<String, _> = md.tensors().into_iter().collect();
        let mut ck = Checkpoint::default();
        for (name, info) in infos {
            let raw = &data[info.data_offsets.0..info.data_offsets.1];
            let words = raw.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
            let data = match info.dtype {
                Dtype::F32 => TensorData::F32(finite(path, &name, words.map(f32::from_le_bytes))?),
                Dtype::I32 => TensorData::I32(words.map(i32::from_le_bytes).collect()),
                Dtype::I8 => TensorData::I8(raw.iter().map(|&b| b as i8).collect()),
                d => {
                    let (path, dtype) = (path.into(), format!("{d:?}"));
                    return Err(CkptError::UnsupportedDtype { path, tensor: name, dtype });
                }
            };
            ck.tensors.insert(name, Tensor { shape: info.shape.clone(), data });
        }
        ck.meta = md.metadata().clone().unwrap_or_default().into_iter().collect();
        Ok(ck)
    }

    /// [`Checkpoint::load`], then [`Checkpoint::check_against`] `graph`.
    pub fn load_for(path: &Path, graph: &Graph) -> Result<Checkpoint, CkptError> {
        let ck = Checkpoint::load(path)?;
        ck.check_against(graph).map_err(|e| e.in_file(path))?;
        Ok(ck)
    }

    /// The shape and values of f32 tensor `name` (`None` if absent or i32).
    pub fn f32(&self, name: &str) -> Option<(&[usize], &[f32])> {
        match self.tensors.get(name)? {
            Tensor { shape, data: TensorData::F32(v) } => Some((shape, v)),
            _ => None,
        }
    }

    /// The shape and values of i32 tensor `name` (`None` if absent or f32).
    pub fn i32(&self, name: &str) -> Option<(&[usize], &[i32])> {
        match self.tensors.get(name)? {
            Tensor { shape, data: TensorData::I32(v) } => Some((shape, v)),
            _ => None,
        }
    }

    /// Inserts (or replaces) an f32 tensor. Panics if `shape` does not have
    /// `data.len()` elements.
    pub fn insert_f32(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        self.insert(name.into(), shape, TensorData::F32(data));
    }

    /// Inserts (or replaces) an i32 tensor. Panics if `shape` does not have
    /// `data.len()` elements.
    pub fn insert_i32(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<i32>) {
        self.insert(name.into(), shape, TensorData::I32(data));
    }

    /// Inserts (or replaces) an i8 tensor. Panics if `shape` does not have
    /// `data.len()` elements.
    pub fn insert_i8(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<i8>) {
        self.insert(name.into(), shape, TensorData::I8(data));
    }

    fn insert(&mut self, name: String, shape: Vec<usize>, data: TensorData) {
        let n: usize = shape.iter().product();
        assert_eq!(n, data.len(), "tensor `{name}`: shape {shape:?} does not match the data");
        self.tensors.insert(name, Tensor { shape, data });
    }

    /// Sets `potc_version`, `model` and `model_hash` for `graph`.
    pub fn set_model(&mut self, graph: &Graph) {
        self.meta.insert(KEY_POTC_VERSION.into(), env!("CARGO_PKG_VERSION").into());
        self.meta.insert(KEY_MODEL.into(), graph.name.clone());
        self.meta.insert(KEY_MODEL_HASH.into(), model_hash(graph));
    }

    /// Stores `value` as JSON under `key`. Panics only if `T`'s `Serialize`
    /// implementation itself fails (never for derived types with string keys).
    pub fn set_json<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        let text = serde_json::to_string(value)
            .unwrap_or_else(|e| panic!("metadata `{key}` cannot be serialized: {e}"));
        self.meta.insert(key.into(), text);
    }

    /// The JSON value under `key`: `Ok(None)` if absent, an error if present
    /// but not a `T`.
    pub fn json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CkptError> {
        let Some(text) = self.meta.get(key) else { return Ok(None) };
        serde_json::from_str(text).map(Some).map_err(|source| CkptError::Json {
            path: None,
            key: key.into(),
            source,
        })
    }

    /// Checks that every parameter of `graph` is present as an f32 tensor of
    /// the right shape; extra tensors are allowed. The error lists every
    /// problem, first whether the metadata names another model or model text.
    pub fn check_against(&self, graph: &Graph) -> Result<(), CkptError> {
        let mut problems = vec![];
        for (name, spec) in graph.params() {
            let Some(t) = self.tensors.get(&name) else {
                problems.push(format!("missing `{name}` (the model expects f32{:?})", spec.shape));
                continue;
            };
            if !matches!(t.data, TensorData::F32(_)) {
                problems
                    .push(format!("`{name}` is {}, the model expects f32", t.data.dtype_name()));
            }
            if t.shape != spec.shape {
                problems.push(format!(
                    "`{name}` has shape {:?}, the model expects {:?}",
                    t.shape, spec.shape
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        if let Some(m) = self.meta.get(KEY_MODEL).filter(|m| **m != graph.name) {
            problems.insert(0, format!("the checkpoint is for model `{m}`, not `{}`", graph.name));
        } else if self.meta.get(KEY_MODEL_HASH).is_some_and(|h| *h != model_hash(graph)) {
            problems.insert(0, "the checkpoint was saved for a different model text".into());
        }
        Err(CkptError::Mismatch { path: None, model: graph.name.clone(), problems })
    }
}

/// SHA-256 (lowercase hex) of the canonical model text, `ir::print(graph)`.
pub fn model_hash(graph: &Graph) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(crate::ir::print(graph).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The values of tensor `name`, refused if one is NaN or infinite: no
/// parameter, statistic, threshold or optimizer moment is, and one would
/// flow silently through evaluation and lowering.
fn finite(
    path: &Path,
    name: &str,
    values: impl Iterator<Item = f32>,
) -> Result<Vec<f32>, CkptError> {
    let v: Vec<f32> = values.collect();
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(v),
        Some(index) => Err(CkptError::NonFinite {
            path: path.into(),
            tensor: name.into(),
            index,
            value: v[index],
        }),
    }
}

/// Why `t` cannot be written under `name`, if it cannot.
fn unwritable(name: &str, t: &Tensor) -> Option<String> {
    let n = t.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if name == "__metadata__" {
        Some("the name is reserved by safetensors".into())
    } else if n != Some(t.data.len()) {
        Some(format!("shape {:?} does not hold {} values", t.shape, t.data.len()))
    } else {
        None
    }
}

/// Turns the safetensors reader's error into one that says what is wrong.
fn format_error(path: &Path, bytes: &[u8], e: SafeTensorError) -> CkptError {
    let len = bytes.len();
    let n = bytes.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let (truncated, reason) = match e {
        SafeTensorError::HeaderTooSmall if len == 0 => (false, "the file is empty".into()),
        SafeTensorError::HeaderTooSmall => (false, format!("only {len} bytes long")),
        SafeTensorError::HeaderTooLarge => (false, format!("implausible header length {n}")),
        SafeTensorError::InvalidHeaderLength => (
            bytes.get(8) == Some(&b'{'),
            format!("the header needs {n} bytes but only {} follow its length", len - 8),
        ),
        SafeTensorError::MetadataIncompleteBuffer => {
            let header = std::str::from_utf8(&bytes[8..8 + n as usize]).unwrap_or("");
            let described = serde_json::from_str::<Metadata>(header).map_or(0, |m| m.data_len());
            let actual = len - 8 - n as usize;
            let msg = format!(
                "the header describes {described} bytes of tensor data, the file has {actual}"
            );
            (actual < described, msg)
        }
        other => (false, other.to_string()),
    };
    let path = path.into();
    if truncated {
        CkptError::Truncated { path, reason }
    } else {
        CkptError::NotSafetensors { path, reason }
    }
}

/// JSON text of header parts (strings, maps of strings, shapes): cannot fail.
fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("strings and integers always serialize")
}
