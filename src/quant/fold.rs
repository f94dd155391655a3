//! Batch-norm folding (spec section 5), the one function that training
//! (fold-then-QAT, simulated folding) and lowering share, so the weights
//! quantized during training are the weights the integers are made from.

/// Batch-norm parameters of one layer, each of length `C`.
pub struct BnStats<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub mean: &'a [f32],
    pub var: &'a [f32],
    pub eps: f64,
}

impl BnStats<'_> {
    /// `gamma / sqrt(var + eps)` per channel, in f64.
    pub fn scale(&self, c: usize) -> f64 {
        self.gamma[c] as f64 / (self.var[c] as f64 + self.eps).sqrt()
    }
}

/// `w' = w * gamma / sqrt(var + eps)` (per output channel, `w` is `[C, ...]`)
/// and `b' = beta + (b - mean) * gamma / sqrt(var + eps)` (`b = 0` if absent).
pub fn fold_bn(w: &[f32], b: Option<&[f32]>, bn: &BnStats<'_>) -> (Vec<f32>, Vec<f32>) {
    (fold_weight(w, bn), fold_bias(b, bn))
}

/// `w[o, ..] * s[o]`: the batch norm's scale in the weights of the layer
/// before it (`w` is `[C, ...]`).
pub fn fold_weight(w: &[f32], bn: &BnStats<'_>) -> Vec<f32> {
    let channels = bn.gamma.len();
    let per = w.len() / channels.max(1);
    let mut wf = Vec::with_capacity(w.len());
    for c in 0..channels {
        let s = bn.scale(c);
        wf.extend(w[c * per..(c + 1) * per].iter().map(|&v| (v as f64 * s) as f32));
    }
    wf
}

/// `beta[o] + (b[o] - mean[o]) * s[o]` (`b = 0` if absent).
pub fn fold_bias(b: Option<&[f32]>, bn: &BnStats<'_>) -> Vec<f32> {
    (0..bn.gamma.len())
        .map(|c| {
            let bias = b.map_or(0.0, |b| b[c] as f64);
            (bn.beta[c] as f64 + (bias - bn.mean[c] as f64) * bn.scale(c)) as f32
        })
        .collect()
}

/// `b[o] * s[o]`: the bias of the second branch of an `add` that a batch
/// norm folds into (the first branch takes the shift).
pub fn scale_bias(b: &[f32], bn: &BnStats<'_>) -> Vec<f32> {
    b.iter().enumerate().map(|(c, &v)| (v as f64 * bn.scale(c)) as f32).collect()
}

/// `w[o, f] * s[f]`: a batch norm on a linear layer's input (`w` is
/// `[O, F]`, the batch norm has `F` channels) moved into its weights.
pub fn fold_input_weight(w: &[f32], bn: &BnStats<'_>) -> Vec<f32> {
    let features = bn.gamma.len();
    w.iter().enumerate().map(|(i, &v)| (v as f64 * bn.scale(i % features)) as f32).collect()
}

/// `b[o] + sum_f w[o, f] * (beta[f] - mean[f] * s[f])`: the shift of a batch
/// norm on a linear layer's input moved into its bias (`b = 0` if absent).
pub fn fold_input_bias(w: &[f32], b: Option<&[f32]>, bn: &BnStats<'_>) -> Vec<f32> {
    let features = bn.gamma.len();
    let shift: Vec<f64> =
        (0..features).map(|f| bn.beta[f] as f64 - bn.mean[f] as f64 * bn.scale(f)).collect();
    w.chunks(features.max(1))
        .enumerate()
        .map(|(o, row)| {
            let dot: f64 = row.iter().zip(&shift).map(|(&w, &t)| w as f64 * t).sum();
            (b.map_or(0.0, |b| b[o] as f64) + dot) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_matches_conv_then_batch_norm() {
        // One input channel, kernel 2, two output channels; x = [1, 2].
        let w = [0.5f32, -1.0, 2.0, 0.25];
        let b = [0.1f32, -0.2];
        let bn = BnStats {
            gamma: &[2.0, 0.5],
            beta: &[0.3, -0.1],
            mean: &[0.2, 1.0],
            var: &[4.0, 0.25],
            eps: 0.0,
        };
        let (wf, bf) = fold_bn(&w, Some(&b), &bn);
        for c in 0..2 {
            let conv = w[2 * c] as f64 + 2.0 * w[2 * c + 1] as f64 + b[c] as f64;
            let want = (conv - bn.mean[c] as f64) * bn.gamma[c] as f64 / (bn.var[c] as f64).sqrt()
                + bn.beta[c] as f64;
            let got = wf[2 * c] as f64 + 2.0 * wf[2 * c + 1] as f64 + bf[c] as f64;
            assert!((got - want).abs() < 1e-6, "{c}: {got} vs {want}");
        }
    }
}
