//! Softmax cross-entropy over logits laid out `z[k][n]`, averaged over the
//! batch, computed stably in f64; and distillation from a teacher's logits.

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

/// Knowledge distillation (Hinton et al. 2015): `(1 - a) * CE(z, labels) +
/// a * T^2 * KL(softmax(t / T) || softmax(z / T))`, with the teacher's
/// logits `t` laid out as `z`, `[k][n]`. The `T^2` keeps the soft term's
/// gradient, `a * T * (softmax(z / T) - softmax(t / T))`, on the scale of
/// the hard one's. Returns `(mean loss, dz, correct predictions)`.
pub fn distillation(
    z: &[f32],
    k: usize,
    labels: &[usize],
    t: &[f32],
    temperature: f64,
    weight: f64,
) -> (f64, Vec<f32>, usize) {
    let n = labels.len();
    let (hard, mut dz, correct) = softmax_cross_entropy(z, k, labels);
    let mut soft = 0.0f64;
    for i in 0..n {
        let col =
            |v: &[f32]| -> Vec<f64> { (0..k).map(|c| v[c * n + i] as f64 / temperature).collect() };
        let (ps, pt) = (softmax(&col(z)), softmax(&col(t)));
        for c in 0..k {
            if pt[c] > 0.0 {
                soft += pt[c] * (pt[c].ln() - ps[c].max(f64::MIN_POSITIVE).ln());
            }
            let d = &mut dz[c * n + i];
            *d = ((1.0 - weight) * *d as f64 + weight * temperature * (ps[c] - pt[c]) / n as f64)
                as f32;
        }
    }
    let loss = (1.0 - weight) * hard + weight * temperature * temperature * soft / n as f64;
    (loss, dz, correct)
}

/// A stable softmax in f64.
fn softmax(v: &[f64]) -> Vec<f64> {
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = v.iter().map(|x| (x - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The distillation gradient matches central differences of its loss.
    #[test]
    fn distillation_gradient_matches_finite_differences() {
        let (k, n) = (3, 2);
        let z = [0.3f32, -1.2, 2.0, 0.5, -0.7, 0.1];
        let t = [1.0f32, 0.2, -0.5, 2.5, 0.0, -1.0];
        let labels = [2, 0];
        let (_, dz, _) = distillation(&z, k, &labels, &t, 3.0, 0.7);
        for j in 0..k * n {
            let h = 1e-3f32;
            let (mut up, mut down) = (z, z);
            up[j] += h;
            down[j] -= h;
            let f = |v: &[f32]| distillation(v, k, &labels, &t, 3.0, 0.7).0;
            let numeric = (f(&up) - f(&down)) / (2.0 * h as f64);
            assert!((numeric - dz[j] as f64).abs() < 1e-4, "{j}: {numeric} vs {}", dz[j]);
        }
    }

    /// With weight 0 it is the cross-entropy; a student equal to its teacher
    /// adds no soft loss.
    #[test]
    fn distillation_reduces_to_cross_entropy() {
        let z = [0.3f32, -1.2, 2.0, 0.5];
        let ce = softmax_cross_entropy(&z, 2, &[1, 0]);
        let d = distillation(&z, 2, &[1, 0], &z, 4.0, 0.0);
        assert_eq!((ce.0, ce.1), (d.0, d.1));
        let same = distillation(&z, 2, &[1, 0], &z, 4.0, 1.0);
        assert!(same.0.abs() < 1e-12);
    }
}
