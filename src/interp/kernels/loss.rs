//! Softmax cross-entropy over logits laid out `z[k][n]`, averaged over the
//! batch, computed stably in f64.

/// `(mean loss, dz, correct predictions)`; the prediction is the argmax, the
/// first index winning a tie.
pub fn softmax_cross_entropy(z: &[f32], k: usize, labels: &[usize]) -> (f64, Vec<f32>, usize) {
    let n = labels.len();
    let mut dz = vec![0.0f32; k * n];
    let mut loss = 0.0f64;
    let mut correct = 0;
    for (i, &label) in labels.iter().enumerate() {
        let col: Vec<f64> = (0..k).map(|c| z[c * n + i] as f64).collect();
        let max = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let denom: f64 = col.iter().map(|v| (v - max).exp()).sum();
        loss += denom.ln() + max - col[label];
        for c in 0..k {
            let p = (col[c] - max).exp() / denom;
            dz[c * n + i] = ((p - if c == label { 1.0 } else { 0.0 }) / n as f64) as f32;
        }
        if argmax(&col) == label {
            correct += 1;
        }
    }
    (loss / n as f64, dz, correct)
}

/// The index of the largest value; the first one wins a tie.
pub fn argmax<T: PartialOrd + Copy>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Knowledge distillation (Hinton et al. 2015): the mean over the batch of
/// `T^2 · KL(softmax(t/T) ‖ softmax(z/T))`, the student's logits `z[k][n]`
/// against the teacher's `t`, given sample-major (`t[n][k]`). Returns the
/// loss and its gradient with respect to `z`. The `T^2` keeps the gradient's
/// size independent of the temperature: it is `T · (softmax(z/T) -
/// softmax(t/T)) / n`.
pub fn distillation(z: &[f32], k: usize, teacher: &[f32], temperature: f64) -> (f64, Vec<f32>) {
    let n = teacher.len() / k.max(1);
    let mut dz = vec![0.0f32; k * n];
    let mut loss = 0.0f64;
    for i in 0..n {
        let student = softmax((0..k).map(|c| z[c * n + i] as f64 / temperature));
        let target = softmax(teacher[i * k..][..k].iter().map(|&v| v as f64 / temperature));
        for c in 0..k {
            if target[c] > 0.0 {
                loss += target[c] * (target[c].ln() - student[c].max(f64::MIN_POSITIVE).ln());
            }
            dz[c * n + i] = (temperature * (student[c] - target[c]) / n as f64) as f32;
        }
    }
    (loss * temperature * temperature / n.max(1) as f64, dz)
}

/// Softmax, computed stably.
fn softmax(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let v: Vec<f64> = v.collect();
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gradient of the distillation loss matches central differences.
    #[test]
    fn distillation_gradient_matches_finite_differences() {
        let (k, n, t) = (3, 2, 2.5);
        let z = vec![0.3f32, -1.2, 0.8, 2.0, -0.4, 0.1]; // z[k][n]
        let teacher = vec![1.0f32, 0.5, -2.0, -0.3, 0.9, 0.2]; // t[n][k]
        let (_, dz) = distillation(&z, k, &teacher, t);
        for j in 0..k * n {
            let h = 1e-3f32;
            let mut up = z.clone();
            up[j] += h;
            let mut down = z.clone();
            down[j] -= h;
            let numeric = (distillation(&up, k, &teacher, t).0
                - distillation(&down, k, &teacher, t).0)
                / (2.0 * h as f64);
            assert!((numeric - dz[j] as f64).abs() < 1e-3, "{j}: {numeric} vs {}", dz[j]);
        }
    }

    /// A student that equals its teacher has nothing left to learn.
    #[test]
    fn distillation_is_zero_at_the_teacher() {
        let teacher = vec![1.0f32, 0.5, -2.0];
        let (loss, dz) = distillation(&teacher, 3, &teacher, 4.0);
        assert!(loss.abs() < 1e-12);
        assert!(dz.iter().all(|g| g.abs() < 1e-7));
    }
}
