//! What `potc lower` keeps beside a program for `potc report --plot`: each
//! MAC layer's float weights as they were rounded (after batch-norm folding
//! and the `1/L` of an average), and the training history.
//! `OUT/source.safetensors`; engines never read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ckpt::{Checkpoint, TensorData, KEY_HISTORY};
use crate::train::EpochRecord;

pub const SOURCE_FILE: &str = "source.safetensors";

#[derive(Debug, Clone, Default)]
pub struct Source {
    /// `<layer>.w` -> (shape, float weights before rounding).
    pub weights: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    pub history: Vec<EpochRecord>,
}

impl Source {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(SOURCE_FILE)
    }

    /// Writes `dir/source.safetensors` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let mut ck = Checkpoint::default();
        ck.set_json(KEY_HISTORY, &self.history);
        for (name, (shape, v)) in &self.weights {
            ck.insert_f32(name.clone(), shape.clone(), v.clone());
        }
        ck.save(&Source::path(dir)).map_err(|e| e.to_string())
    }

    pub fn load(dir: &Path) -> Result<Source, String> {
        let path = Source::path(dir);
        let ck = Checkpoint::load(&path).map_err(|e| e.to_string())?;
        let history = ck.json(KEY_HISTORY).map_err(|e| e.in_file(&path).to_string())?;
        let mut weights = BTreeMap::new();
        for (name, t) in ck.tensors {
            if let TensorData::F32(v) = t.data {
                weights.insert(name, (t.shape, v));
            }
        }
        Ok(Source { weights, history: history.unwrap_or_default() })
    }
}
