//! A lowered integer program on disk: a directory with `model.pot` (the
//! integer IR text) and `weights.safetensors` (I32 tensors: each op's
//! parameters, and `<value>.exp`, the power-of-two exponent of every value).
//! Loading checks everything an engine relies on, so a hand-edited program
//! gets an error naming the file and the tensor, never a panic.
//!
//! The format is here; the loader's checks and [`CheckedProgram`] are in
//! [`check`].

use std::path::{Path, PathBuf};

use crate::ckpt::{write_atomic, Checkpoint, TensorData, KEY_LABELS};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ir::{print, Elem, Graph, Type};
use crate::pass::IntStore;
use crate::quant::quantizer::quantize64;
use crate::quant::{QuantSpec, WeightFormat};

pub mod check;

pub use check::{CheckedProgram, ProgramError, MAX_EXPONENT};

pub const MODEL_FILE: &str = "model.pot";
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// An integer-only program and its tensors.
#[derive(Debug, Clone)]
pub struct IntProgram {
    pub graph: Graph,
    pub tensors: IntStore,
    /// Class labels in output order (the training checkpoint's mapping).
    pub labels: Vec<String>,
}

/// Why a program's weights file could not become a checked program; each
/// variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Checkpoint(#[from] crate::ckpt::CkptError),
    #[error("{}: tensor `{name}` is f32; an integer program holds only i32 tensors (and i8 codes of shift-format weights)", .path.display())]
    FloatTensor { path: PathBuf, name: String },
    #[error("{}: tensor `{name}`: {reason}", .path.display())]
    Codes { path: PathBuf, name: String, reason: String },
    #[error("{}: {error}", .path.display())]
    Check { path: PathBuf, error: ProgramError },
}

impl IntProgram {
    /// Writes `dir/model.pot` and `dir/weights.safetensors`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the directory: {e}", dir.display()))?;
        let mut ck = Checkpoint::default();
        ck.set_model(&self.graph);
        ck.set_json(KEY_LABELS, &self.labels);
        // Shift-format weights are stored as their codes (`quant::format`).
        let coded = coded_weights(&self.graph);
        for (name, (shape, v)) in &self.tensors {
            if let Some(f) = coded.get(name) {
                let codes = v.iter().map(|&w| f.code(w) as i8).collect();
                ck.insert_i8(name.clone(), shape.clone(), codes);
            } else {
                ck.insert_i32(name.clone(), shape.clone(), v.clone());
            }
        }
        ck.save(&dir.join(WEIGHTS_FILE)).map_err(|e| e.to_string())?;
        let model = dir.join(MODEL_FILE);
        write_atomic(&model, |w| w.write_all(print(&self.graph).as_bytes()))
            .map_err(|e| format!("{}: cannot write: {e}", model.display()))
    }

    /// Reads and checks a program directory; `graph` is its parsed model text.
    pub fn load(dir: &Path, graph: Graph) -> Result<CheckedProgram, LoadError> {
        let wpath = dir.join(WEIGHTS_FILE);
        let ck = Checkpoint::load(&wpath)?;
        IntProgram::from_checkpoint(&wpath, ck, graph)
    }

    /// Checks the weights of a program (read from `wpath`, the file named
    /// in errors) for its parsed model text: what [`IntProgram::load`] does
    /// after reading the file.
    pub fn from_checkpoint(
        wpath: &Path,
        ck: Checkpoint,
        graph: Graph,
    ) -> Result<CheckedProgram, LoadError> {
        let mut tensors = IntStore::new();
        let coded = coded_weights(&graph);
        for (name, t) in ck.tensors.clone() {
            let path = wpath.to_path_buf();
            match t.data {
                TensorData::I32(v) => tensors.insert(name, (t.shape, v)),
                TensorData::I8(codes) if coded.contains_key(&name) => {
                    let f = coded[&name];
                    let weights: Option<Vec<i32>> = codes.iter().map(|&c| f.weight(c)).collect();
                    let Some(w) = weights else {
                        let reason = format!("a `{f}` weight code beyond 2^30");
                        return Err(LoadError::Codes { path, name, reason });
                    };
                    tensors.insert(name, (t.shape, w))
                }
                TensorData::I8(_) => {
                    let reason = "is i8; only the weights of a layer with w_format = pot or \
                                  apot are stored as i8 codes"
                        .into();
                    return Err(LoadError::Codes { path, name, reason });
                }
                TensorData::F32(_) => return Err(LoadError::FloatTensor { path, name }),
            };
        }
        let labels = ck.json::<Vec<String>>(KEY_LABELS).map_err(|e| e.in_file(wpath))?;
        let program = IntProgram { graph, tensors, labels: labels.unwrap_or_default() };
        program.checked().map_err(|error| LoadError::Check { path: wpath.to_path_buf(), error })
    }

    /// The exponent of the output's integers (one for all channels).
    pub fn output_exponent(&self) -> Option<i32> {
        let out = self.graph.output()?;
        let (_, v) = self.tensors.get(&format!("{}.exp", self.graph.node(out).name))?;
        v.iter().all(|&e| e == v[0]).then(|| v[0])
    }

    /// The input's type (`[channels, length]` of an integer).
    pub fn input_type(&self) -> &Type {
        &self.graph.node(self.graph.inputs()[0]).ty
    }

    /// The input's integer type and exponent.
    pub fn input(&self) -> (Elem, i32) {
        let node = self.graph.node(self.graph.inputs()[0]);
        let e = self.tensors.get(&format!("{}.exp", node.name)).map_or(0, |(_, v)| v[0]);
        (node.ty.elem, e)
    }

    /// `n` samples of input integers drawn uniformly over the input type's
    /// range, seeded: what `potc bench` times and `potc export` ships
    /// without data.
    pub fn random_input(&self, n: usize, seed: u64) -> Vec<i64> {
        let ty = self.input_type();
        let (lo, hi) = ty.elem.range().unwrap_or((0, 0));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * ty.elements() as usize).map(|_| rng.random_range(lo..=hi)).collect()
    }

    /// Data (f32) to the program's input integers: `q(x)` of the input
    /// quantizer, round half up then clamp, in f64 as the simulation does it.
    pub fn quantize_input(&self, x: &[f32]) -> Vec<i64> {
        let (elem, e) = self.input();
        let Elem::Int { signed, bits } = elem else { return vec![] };
        let spec = QuantSpec { bits: u32::from(bits), signed, narrow: false };
        x.iter().map(|&v| quantize64(f64::from(v), e, &spec) as i64).collect()
    }
}

/// The weight tensors (`<layer>.w`) of the MAC layers with shift-format
/// weights, which the weights file stores as codes, with their format.
pub fn coded_weights(g: &Graph) -> std::collections::HashMap<String, WeightFormat> {
    g.node_ids()
        .filter_map(|id| {
            let f = g.node(id).op.int_mac_quant()?.format();
            f.shifts().then(|| (format!("{}.w", g.node(id).name), f))
        })
        .collect()
}

/// `dir/model.pot`.
pub fn model_path(dir: &Path) -> PathBuf {
    dir.join(MODEL_FILE)
}
