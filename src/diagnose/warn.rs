//! The warnings: one line each, naming the layer, the figures and the fix.
//! Why each threshold: docs/quantization.md, "Diagnostics".

use super::{DeadChannel, Kind, QuantizerUse};

/// A layer's weights warn when more than 1 % lie beyond the largest level
/// and a wider range (2 to 16 times) would at least halve their squared error:
/// least-squares calibration clips a few large weights on purpose at 2 to 4
/// bits, and that clipping lowers the error.
pub const WEIGHT_CLIP: f64 = 0.01;
/// An activation quantizer warns when more than 0.1 % of the values a data
/// set gives it lie beyond its largest level (and a wider range would at
/// least halve the error): calibration by the maximum clips none
/// of the training data, `--calibration-percentile 99.9` at most 0.1 %.
pub const ACTIVATION_CLIP: f64 = 0.001;
/// A quantizer warns when its values take fewer than a quarter of its
/// levels: two bits idle. A power-of-two range rounds the maximum up by up
/// to 2x, so one idle bit is the price of the format, not a fault.
pub const LEVEL_USE: f64 = 0.25;
/// Level use is judged only with at least this many values per level (per
/// exponent group): fewer cannot fill the levels however well spread.
pub const VALUES_PER_LEVEL: u64 = 4;

/// Every warning the figures call for, in program order.
pub fn warnings(uses: &[QuantizerUse], dead: &[DeadChannel]) -> Vec<String> {
    let mut out: Vec<String> = dead
        .chunk_by(|a, b| a.batch_norm == b.batch_norm)
        .map(|bn| if let [one] = bn { dead_channel(one) } else { dead_channels(bn) })
        .collect();
    for u in uses {
        out.extend(clipping(u));
        out.extend(level_use(u));
    }
    out
}

fn clipping(u: &QuantizerUse) -> Option<String> {
    let (limit, fix) = match u.kind {
        Kind::Weights { .. } => (WEIGHT_CLIP, "give it more bits (`w_bits` on the layer), per-channel exponents (`potc train`'s default, off with `--per-tensor`; or `w_per_channel = true`), or keep the calibrated thresholds (`--scales max`)"),
        Kind::Activations { .. } => (ACTIVATION_CLIP, "calibrate by the maximum (no `--calibration-percentile`, or a higher one), keep the calibrated thresholds (`--scales max`), or give it more bits (`a_bits` on the layer before it)"),
    };
    (u.clipped_fraction() > limit && u.wider_is_better).then(|| {
        format!(
            "{}: {} of {} {} ({:.2} %) lie beyond its largest level ({}); a wider range would quantize them with less than half the squared error: {fix}",
            subject(u),
            u.clipped,
            u.values,
            what(u),
            100.0 * u.clipped_fraction(),
            figure(u.limit),
        )
    })
}

fn level_use(u: &QuantizerUse) -> Option<String> {
    let judged = u.group_values >= VALUES_PER_LEVEL * u.levels;
    let few = (u.levels_used as f64) < LEVEL_USE * u.levels as f64;
    (judged && few).then(|| {
        let fix = match u.kind {
            Kind::Weights { per_channel: false } => "a few large weights set the range of all: train with per-channel exponents (the default; not `--per-tensor`; or `w_per_channel = true` on the layer), and look for a dead batch-norm channel",
            Kind::Weights { per_channel: true } => "its channels' weights are mostly far below their largest ones: retrain it with fewer bits (`w_bits`) or weight decay (`--weight-decay`)",
            Kind::Activations { .. } => "a few large values set the range of all: calibrate with `--calibration-percentile 99.99`, or give it fewer bits (`a_bits` on the layer before it)",
        };
        let per = if matches!(u.kind, Kind::Weights { per_channel: true }) { " (median over output channels)" } else { "" };
        format!(
            "{}: its {} take {} of {} levels{per} ({}-bit); {fix}",
            subject(u),
            what(u),
            u.levels_used,
            u.levels,
            u.bits
        )
    })
}

fn dead_channel(d: &DeadChannel) -> String {
    format!(
        "batch norm `%{}` channel {} is dead: running variance {:.3e} below eps {:.0e}, so the fold scales its weights by |gamma|/sqrt(var+eps) = {} against the layer's median {} ({:.1}x); with per-tensor exponents its folded weights set the whole layer's range: train with per-channel exponents (the default; not `--per-tensor`; or `w_per_channel = true` on the layer), or drop or re-initialise the channel",
        d.batch_norm,
        d.channel,
        d.var,
        d.eps,
        figure(d.scale),
        figure(d.median_scale),
        d.scale / d.median_scale.max(f64::MIN_POSITIVE),
    )
}

/// Several dead channels of one batch norm, in one line.
fn dead_channels(bn: &[DeadChannel]) -> String {
    const LISTED: usize = 8;
    let mut channels: Vec<String> = bn.iter().take(LISTED).map(|d| d.channel.to_string()).collect();
    if bn.len() > LISTED {
        channels.push("...".into());
    }
    let widest = bn.iter().max_by(|a, b| a.scale.total_cmp(&b.scale)).unwrap_or(&bn[0]);
    let smallest = bn.iter().map(|d| d.var).fold(f32::INFINITY, f32::min);
    format!(
        "batch norm `%{}` has {} dead channels ({}): running variance below eps {:.0e} (down to {:.3e}), so the fold scales their weights by up to |gamma|/sqrt(var+eps) = {} (channel {}) against the layer's median {} ({:.1}x); with per-tensor exponents their folded weights set the whole layer's range: train with per-channel exponents (the default; not `--per-tensor`; or `w_per_channel = true` on the layer), or drop or re-initialise the channels",
        widest.batch_norm,
        bn.len(),
        channels.join(", "),
        widest.eps,
        smallest,
        figure(widest.scale),
        widest.channel,
        figure(widest.median_scale),
        widest.scale / widest.median_scale.max(f64::MIN_POSITIVE),
    )
}

fn subject(u: &QuantizerUse) -> String {
    match u.kind {
        Kind::Weights { .. } => format!("layer `%{}`", u.name),
        Kind::Activations { .. } => format!("quantizer `%{}`", u.name),
    }
}

fn what(u: &QuantizerUse) -> &'static str {
    match u.kind {
        Kind::Weights { .. } => "weights",
        Kind::Activations { .. } => "values",
    }
}

/// About four significant digits.
fn figure(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if (1e-3..1e5).contains(&v.abs()) {
        let decimals = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead(bn: &str, channel: usize, scale: f64) -> DeadChannel {
        let (var, eps, median_scale) = (1e-7, 1e-5, 2.0);
        DeadChannel { batch_norm: bn.into(), channel, var, eps, scale, median_scale }
    }

    fn weights(clipped: u64, levels_used: u64, wider_is_better: bool) -> QuantizerUse {
        QuantizerUse {
            name: "c2".into(),
            kind: Kind::Weights { per_channel: false },
            bits: 8,
            values: 12_288,
            clipped,
            levels_used,
            levels: 255,
            group_values: 12_288,
            limit: 0.5,
            wider_is_better,
        }
    }

    #[test]
    fn one_line_per_finding_and_per_batch_norm() {
        let said = warnings(&[], &[dead("b1", 3, 300.0), dead("b2", 1, 50.0), dead("b2", 7, 90.0)]);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(
            said[0].starts_with("batch norm `%b1` channel 3 is dead: running variance 1.000e-7")
        );
        assert!(
            said[0].contains("= 300.0 against the layer's median 2.000 (150.0x)"),
            "{}",
            said[0]
        );
        assert!(said[1].starts_with("batch norm `%b2` has 2 dead channels (1, 7)"), "{}", said[1]);
        assert!(said[1].contains("= 90.00 (channel 7)"), "{}", said[1]);
    }

    #[test]
    fn thresholds_decide() {
        // 1 % clipped is not more than 1 %; 124 clipped is, if a wider range helps.
        assert!(warnings(&[weights(122, 200, true)], &[]).is_empty());
        assert!(warnings(&[weights(124, 200, false)], &[]).is_empty());
        let said = warnings(&[weights(12_058, 200, true)], &[]);
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("layer `%c2`: 12058 of 12288 weights (98.13 %) lie beyond"));
        // A quarter of 255 levels is 63.75: 64 is enough, 63 is not.
        assert!(warnings(&[weights(0, 64, true)], &[]).is_empty());
        let said = warnings(&[weights(0, 63, true)], &[]);
        assert!(said[0].contains("its weights take 63 of 255 levels (8-bit)"), "{said:?}");
        // Too few values to judge level use.
        let few = QuantizerUse { group_values: 255 * 4 - 1, ..weights(0, 8, true) };
        assert!(warnings(&[few], &[]).is_empty());
    }
}
