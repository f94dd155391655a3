//! Dead batch-norm channels: a channel whose running variance is below the
//! batch norm's `eps`. Its spread is smaller than the epsilon that
//! normalizes it, so it carries almost no signal, yet folding multiplies its
//! weights by `|gamma| / sqrt(var + eps)`: nothing in training bounds that
//! channel's folded weights, and with one exponent per tensor their range
//! sets the step of every other channel.

use super::grid::median_f64;
use crate::ir::op::Op;
use crate::ir::Graph;
use crate::quant::fold::BnStats;

/// One dead channel and its fold scale against its layer's.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadChannel {
    /// The batch norm (the folded layer carries its name).
    pub batch_norm: String,
    pub channel: usize,
    pub var: f32,
    pub eps: f64,
    /// `|gamma| / sqrt(var + eps)` of this channel.
    pub scale: f64,
    /// The median of that scale over the batch norm's channels.
    pub median_scale: f64,
}

/// The dead channels of every batch norm of `g` whose parameters `param`
/// finds (`<bn>.gamma`, `.beta`, `.mean`, `.var`), in program order.
pub fn dead_channels<'a>(g: &Graph, param: impl Fn(&str) -> Option<&'a [f32]>) -> Vec<DeadChannel> {
    let Ok(order) = g.order() else { return vec![] };
    let mut dead = vec![];
    for id in order {
        let node = g.node(id);
        let Op::BatchNorm(b) = &node.op else { continue };
        let get = |slot: &str| param(&format!("{}.{slot}", node.name));
        let (Some(gamma), Some(beta), Some(mean), Some(var)) =
            (get("gamma"), get("beta"), get("mean"), get("var"))
        else {
            continue;
        };
        let channels = gamma.len();
        if [beta.len(), mean.len(), var.len()].iter().any(|&l| l != channels) {
            continue;
        }
        let stats = BnStats { gamma, beta, mean, var, eps: b.eps.0 };
        let scales: Vec<f64> = (0..channels).map(|c| stats.scale(c).abs()).collect();
        let median_scale = median_f64(scales.clone());
        for (c, &v) in var.iter().enumerate().filter(|(_, &v)| (v as f64) < b.eps.0) {
            dead.push(DeadChannel {
                batch_norm: node.name.clone(),
                channel: c,
                var: v,
                eps: b.eps.0,
                scale: scales[c],
                median_scale,
            });
        }
    }
    dead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variance_below_eps_is_a_dead_channel() {
        let g = crate::syntax::parse(
            "model m(%x: [1, 8]) {\n  %c = conv1d(%x) {out_channels = 3, kernel = 1}\n  \
             %b = batch_norm(%c)\n  return %b\n}\n",
        )
        .unwrap();
        let params = |n: &str| -> Option<&'static [f32]> {
            match n {
                "b.gamma" => Some(&[1.0, 1.0, 2.0]),
                "b.beta" | "b.mean" => Some(&[0.0, 0.0, 0.0]),
                "b.var" => Some(&[1.0, 1e-7, 4.0]),
                _ => None,
            }
        };
        let dead = dead_channels(&g, params);
        assert_eq!(dead.len(), 1);
        let d = &dead[0];
        assert_eq!((d.batch_norm.as_str(), d.channel), ("b", 1));
        // eps defaults to 1e-5: scales 0.999995, 314.7 and 0.9999988 (the median).
        assert!((d.scale - 1.0 / (1e-7f32 as f64 + 1e-5).sqrt()).abs() < 1e-9);
        assert!((d.median_scale - 2.0 / (4.0f64 + 1e-5).sqrt()).abs() < 1e-12);
        assert!(dead_channels(&g, |_| None).is_empty());
    }
}
