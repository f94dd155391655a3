//! Seeded parameter initialisation. Each tensor draws from its own generator,
//! seeded by the run seed and the tensor's name, so adding a layer does not
//! change the initial values of the others.

use crate::interp::plan::ParamInfo;
use crate::interp::Weights;
use crate::ir::op::Init;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn init_weights(params: &[ParamInfo], seed: u64) -> Weights {
    params.iter().map(|p| init_one(p, seed)).collect()
}

fn init_one(p: &ParamInfo, seed: u64) -> Vec<f32> {
    match p.init {
        Init::Zeros => vec![0.0; p.len()],
        Init::Ones => vec![1.0; p.len()],
        // Thresholds start at t = 1 until calibration sets them.
        Init::Calibrate => vec![0.0; p.len()],
        Init::Uniform { fan_in } => {
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(&p.name));
            (0..p.len()).map(|_| rng.random_range(-bound..bound)).collect()
        }
    }
}

/// A stable 64-bit hash of a name (FNV-1a), for per-tensor seeds.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}
