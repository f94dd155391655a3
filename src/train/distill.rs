//! Distillation from a float teacher: the student also matches the
//! teacher's softened output distribution, the standard aid to training at
//! 2 to 4 bits (Hinton et al. 2015; Mishra & Marr, "Apprentice", 2018).

use crate::interp::kernels::loss::{distillation, softmax_cross_entropy};
use serde::{Deserialize, Serialize};

/// How much the teacher counts, recorded with the run's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distill {
    /// The softmax temperature both distributions are softened by.
    pub temperature: f32,
    /// The share of the distillation term in the loss; the labels' cross
    /// entropy has the rest.
    pub weight: f32,
}

/// The teacher's logits on every training sample, sample-major (`[N][K]`):
/// computed once, in inference mode, so they do not change between epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct Teacher {
    pub logits: Vec<f32>,
    pub classes: usize,
}

impl Teacher {
    /// The teacher's rows for the samples `idx`, in that order.
    fn rows(&self, idx: &[usize]) -> Vec<f32> {
        let k = self.classes;
        idx.iter().flat_map(|&i| self.logits[i * k..][..k].iter().copied()).collect()
    }
}

/// The training loss of one batch with outputs `z[k][n]` for the samples
/// `idx`: `(mean loss, dz, correct predictions)`. Without a teacher, the
/// cross entropy of the labels; with one, its mix with the distillation term.
pub fn batch_loss(
    z: &[f32],
    k: usize,
    idx: &[usize],
    labels: &[usize],
    teacher: Option<(&Teacher, Distill)>,
) -> (f64, Vec<f32>, usize) {
    let (ce, mut dz, correct) = softmax_cross_entropy(z, k, labels);
    let Some((t, d)) = teacher else { return (ce, dz, correct) };
    let (kd, dkd) = distillation(z, k, &t.rows(idx), d.temperature as f64);
    let w = d.weight;
    for (g, gk) in dz.iter_mut().zip(&dkd) {
        *g = (1.0 - w) * *g + w * gk;
    }
    ((1.0 - w as f64) * ce + w as f64 * kd, dz, correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_zero_is_plain_cross_entropy_and_rows_follow_the_indices() {
        let t = Teacher { logits: vec![1.0, 0.0, 0.0, 1.0, 5.0, -5.0], classes: 2 };
        assert_eq!(t.rows(&[2, 0]), vec![5.0, -5.0, 1.0, 0.0]);
        let z = [0.2f32, -0.1, 0.4, 0.3]; // z[k][n], n = 2
        let plain = batch_loss(&z, 2, &[2, 0], &[0, 1], None);
        let d = Distill { temperature: 4.0, weight: 0.0 };
        assert_eq!(batch_loss(&z, 2, &[2, 0], &[0, 1], Some((&t, d))), plain);
        let d = Distill { temperature: 4.0, weight: 0.5 };
        assert_ne!(batch_loss(&z, 2, &[2, 0], &[0, 1], Some((&t, d))).0, plain.0);
    }
}
