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

/// The input quantizer's default width for data `ds` when the other
/// activations get `a_bits`: `a_bits`, widened (up to 16 bits) until the
/// input's standard deviation (pooled over channels, each about its own
/// mean) spans at least `2^(a_bits - 4)` steps: never a coarser grid than a
/// z-normalized series gets when its range reaches eight deviations. Raw
/// readings far from zero need the extra bits: the range must reach the
/// offset, which leaves few levels for the variation that carries the
/// signal.
pub fn input_bits_for(ds: &Dataset, a_bits: usize) -> usize {
    let max = ds.x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let moments = channel_moments(ds);
    let variance = moments.iter().map(|(_, std)| std * std).sum::<f64>();
    let pooled = (variance / moments.len().max(1) as f64).sqrt();
    if pooled == 0.0 {
        return a_bits;
    }
    (a_bits..=16).find(|&bits| pooled / step(bits, max) >= steps_wanted(a_bits)).unwrap_or(16)
}

/// The steps a standard deviation spans at `a_bits` in z-normalized data
/// whose range reaches eight deviations.
fn steps_wanted(a_bits: usize) -> f64 {
    2f64.powi(a_bits as i32 - 4)
}

/// The step of a signed `bits`-bit quantizer whose range covers `max`.
fn step(bits: usize, max: f32) -> f64 {
    let spec = QuantSpec { bits: bits as u32, signed: true, narrow: false };
    2f64.powi(spec.exponent(QuantSpec::calibrate(max)))
}

/// The warning for each channel of `ds` far from zero whose deviation spans
/// fewer steps of the `bits`-bit input than `input_bits_for` wants for
/// activations of `a_bits`.
pub fn offset_input(ds: &Dataset, bits: usize, a_bits: usize) -> Vec<String> {
    let max = ds.x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let step = step(bits, max);
    let moments = channel_moments(ds);
    let far = |(_, &(mean, std)): &(usize, &(f64, f64))| {
        mean.abs() > OFFSET_IN_STDS * std && std / step < steps_wanted(a_bits)
    };
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
        let said = offset_input(&far, 8, 8);
        // max 1.1 -> e = 1 - 7 = -6: a step of 1/64, 6.4 steps per deviation.
        assert!(said.len() == 1 && said[0].contains("6.4 steps"), "{said:?}");
        // Centred data with the same spread: nothing to say.
        let centred = series(vec![-0.1, 0.1, -0.1, 0.1, 0.1, -0.1, 0.1, -0.1]);
        assert!(offset_input(&centred, 8, 8).is_empty());
        // Wide enough for the spread: nothing to say.
        assert!(offset_input(&far, 11, 8).is_empty());
    }

    #[test]
    fn the_input_widens_until_a_deviation_spans_the_steps_of_z_normalized_data() {
        // Mean 1, deviation 0.1, max 1.1: a step of 2^(1 - (b - 1)) = 2^(2 - b)
        // gives 0.1 * 2^(b - 2) steps per deviation; 2^4 wanted at a_bits 8:
        // 0.1 * 2^(b - 2) >= 16 from b = 10 on.
        let far = series(vec![0.9, 1.1, 0.9, 1.1, 1.1, 0.9, 1.1, 0.9]);
        assert_eq!(input_bits_for(&far, 8), 10);
        // At a_bits 4, one step per deviation: 0.1 * 2^(b - 2) >= 1 from b = 6.
        assert_eq!(input_bits_for(&far, 4), 6);
        // Centred: deviation 0.1, max 0.1: step 2^(-3 - (b - 1)), 0.1 / step =
        // 0.1 * 2^(b + 2) >= 16 from b = 6, below a_bits: a_bits stays.
        let centred = series(vec![-0.1, 0.1, -0.1, 0.1, 0.1, -0.1, 0.1, -0.1]);
        assert_eq!(input_bits_for(&centred, 8), 8);
        // Constant data asks for nothing; a tiny spread is capped at 16.
        assert_eq!(input_bits_for(&series(vec![3.0; 8]), 8), 8);
        let tiny = series(vec![1.0, 1.0 + 1e-6, 1.0, 1.0 + 1e-6, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(input_bits_for(&tiny, 8), 16);
    }
}
