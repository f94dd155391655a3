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
