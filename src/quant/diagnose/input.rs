//! The data itself: a network input far from zero. The input quantizer's
//! range must reach the offset, so the variation that carries the signal
//! gets few of its levels; z-normalized series (as most of the UCR archive
//! ships them) do not have the problem, raw sensor readings often do.

use crate::data::Dataset;
use crate::quant::QuantSpec;

/// An input channel warns when its mean lies further from zero than this
/// many standard deviations: its range then spends more than a bit on the
/// offset (the range covers about `|mean| + 3 std`, the variation `6 std`).
pub const OFFSET_IN_STDS: f64 = 3.0;

/// Mean and standard deviation of each channel over every sample and step.
pub fn channel_moments(ds: &Dataset) -> Vec<(f64, f64)> {
    (0..ds.channels)
        .map(|c| {
            let values = (0..ds.n).flat_map(|i| &ds.sample(i)[c * ds.length..][..ds.length]);
            let (mut n, mut sum, mut squares) = (0.0f64, 0.0f64, 0.0f64);
            for &v in values {
                let v = v as f64;
                (n, sum, squares) = (n + 1.0, sum + v, squares + v * v);
            }
            let mean = sum / n.max(1.0);
            (mean, (squares / n.max(1.0) - mean * mean).max(0.0).sqrt())
        })
        .collect()
}

/// The warning for each channel of `ds` far from zero, for an input
/// quantizer of `bits` bits (signed, full range).
pub fn offset_input(ds: &Dataset, bits: usize) -> Vec<String> {
    let max = ds.x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let spec = QuantSpec { bits: bits as u32, signed: true, narrow: false };
    let step = 2f64.powi(spec.exponent(QuantSpec::calibrate(max)));
    let moments = channel_moments(ds);
    let far = |(_, &(mean, std)): &(usize, &(f64, f64))| mean.abs() > OFFSET_IN_STDS * std;
    moments
        .iter()
        .enumerate()
        .filter(far)
        .map(|(c, &(mean, std))| {
            format!(
                "input channel {c} of {} sits far from zero (mean {mean:.3}, standard deviation {std:.3}): \
                 the {bits}-bit input's range must reach the offset, so the variation gets {:.1} steps per \
                 standard deviation; z-normalize the series, or give the input more bits (`--input-bits`)",
                ds.path,
                std / step
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f32>) -> Dataset {
        let n = values.len() / 4;
        Dataset {
            x: values,
            y: vec![0; n],
            n,
            channels: 1,
            length: 4,
            labels: vec!["a".into()],
            origin: (1..=n).collect(),
            path: "d.ts".into(),
        }
    }

    #[test]
    fn an_offset_far_beyond_the_spread_warns() {
        // Mean 1, standard deviation 0.1: ten spreads from zero.
        let far = series(vec![0.9, 1.1, 0.9, 1.1, 1.1, 0.9, 1.1, 0.9]);
        let (mean, std) = channel_moments(&far)[0];
        assert!((mean - 1.0).abs() < 1e-6 && (std - 0.1).abs() < 1e-6, "{mean} {std}");
        let said = offset_input(&far, 8);
        // max 1.1 -> e = 1 - 7 = -6: a step of 1/64, 6.4 steps per deviation.
        assert!(said.len() == 1 && said[0].contains("6.4 steps"), "{said:?}");
        // Centred data with the same spread: nothing to say.
        let centred = series(vec![-0.1, 0.1, -0.1, 0.1, 0.1, -0.1, 0.1, -0.1]);
        assert!(offset_input(&centred, 8).is_empty());
    }
}
