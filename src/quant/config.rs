//! The `--quant` configuration: `w<bits>a<bits>` for the whole network, plus
//! choices that flags make (per-channel weight exponents, learned or
//! calibrated scales). Per-layer overrides are attributes in the model text.

use serde::{Deserialize, Serialize};

use super::WeightFormat;

/// How quantizer thresholds are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scales {
    /// Calibrated from the maximum, then trained (TQT).
    Learned,
    /// Calibrated from the maximum and kept fixed.
    Max,
}

/// How batch norm meets quantization (spec section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BnFold {
    /// Batch norm stays during QAT; each conv's weights are quantized after
    /// folding with the running statistics, outputs corrected to batch
    /// statistics until they freeze (Jacob et al. 2018).
    FoldSim,
    /// Folded into the convolutions before QAT starts.
    FoldThenQat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantConfig {
    pub w_bits: usize,
    pub a_bits: usize,
    /// One weight exponent per output channel instead of per tensor.
    pub per_channel: bool,
    pub scales: Scales,
    pub bn: BnFold,
    /// Power-of-two weights (`w_format = pot`) for layers that do not say.
    #[serde(default)]
    pub pot_weights: bool,
    /// Additive power-of-two weights (`w_format = apot`) for layers that do
    /// not say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apot_weights: bool,
    /// Activation calibration by a percentile of the magnitudes instead of
    /// the maximum (e.g. 99.99).
    #[serde(default)]
    pub percentile: Option<f64>,
    /// Bits of the network input's quantizer when they differ from `a_bits`
    /// (`--input-bits`); absent in checkpoints written before the flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bits: Option<usize>,
}

impl QuantConfig {
    /// Parses `w<bits>a<bits>` (e.g. `w4a8`), bits in 2..=16.
    pub fn parse(spec: &str) -> Result<QuantConfig, String> {
        let bad =
            || format!("--quant `{spec}`: expected w<bits>a<bits> with bits in 2..=16, e.g. w4a8");
        let rest = spec.strip_prefix('w').ok_or_else(bad)?;
        let (w, a) = rest.split_once('a').ok_or_else(bad)?;
        let bits = |s: &str| -> Result<usize, String> {
            let b: usize = s.parse().map_err(|_| bad())?;
            if (2..=16).contains(&b) && !s.starts_with('0') {
                Ok(b)
            } else {
                Err(bad())
            }
        };
        Ok(QuantConfig {
            w_bits: bits(w)?,
            a_bits: bits(a)?,
            per_channel: false,
            scales: Scales::Learned,
            bn: BnFold::FoldSim,
            pot_weights: false,
            apot_weights: false,
            percentile: None,
            input_bits: None,
        })
    }

    /// The ranges [`parse`](Self::parse) and the flags enforce, for a
    /// configuration read back from a file: bits in 2..=16 (at most
    /// the format's widest for the shift formats), a percentile in (0, 100].
    pub fn validate(&self) -> Result<(), String> {
        let widths = [("w_bits", Some(self.w_bits)), ("a_bits", Some(self.a_bits))];
        for (key, bits) in widths.into_iter().chain([("input_bits", self.input_bits)]) {
            if let Some(b) = bits.filter(|b| !(2..=16).contains(b)) {
                return Err(format!("`{key}` is {b}; bits lie in 2..=16"));
            }
        }
        if self.pot_weights && self.apot_weights {
            return Err("power-of-two and additive power-of-two weights exclude each other".into());
        }
        let (format, max) = (self.weight_format(), self.weight_format().max_bits());
        if self.w_bits > max {
            return Err(format!(
                "`w_bits` is {} with `{format}` weights, which take 2..={max} bits",
                self.w_bits
            ));
        }
        if let Some(p) = self.percentile.filter(|p| !(*p > 0.0 && *p <= 100.0)) {
            return Err(format!("`percentile` is {p}; it lies in (0, 100]"));
        }
        Ok(())
    }

    /// The weight format of layers that do not set `w_format`.
    pub fn weight_format(&self) -> WeightFormat {
        match (self.pot_weights, self.apot_weights) {
            (true, _) => WeightFormat::Pot,
            (_, true) => WeightFormat::Apot,
            _ => WeightFormat::Int,
        }
    }

    /// The width of the network input's quantizer.
    pub fn input_bits(&self) -> usize {
        self.input_bits.unwrap_or(self.a_bits)
    }

    /// Sets the input quantizer's width (2..=16), kept only where it differs
    /// from `a_bits` so that equal configurations compare equal.
    pub fn set_input_bits(&mut self, bits: usize) -> Result<(), String> {
        if !(2..=16).contains(&bits) {
            return Err(format!("--input-bits {bits}: bits lie in 2..=16"));
        }
        self.input_bits = (bits != self.a_bits).then_some(bits);
        Ok(())
    }

    /// The canonical spec text.
    pub fn spec(&self) -> String {
        format!("w{}a{}", self.w_bits, self.a_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_bad_ones_are_refused() {
        let c = QuantConfig::parse("w4a8").unwrap();
        assert_eq!((c.w_bits, c.a_bits), (4, 8));
        assert_eq!(QuantConfig::parse("w16a2").unwrap().spec(), "w16a2");
        for bad in ["", "w4", "a8", "w1a8", "w4a17", "w04a8", "x4a8", "w4a8b", "w-4a8", "wa"] {
            assert!(QuantConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn input_bits_default_to_a_bits_and_compare_by_meaning() {
        let mut c = QuantConfig::parse("w4a6").unwrap();
        assert_eq!(c.input_bits(), 6);
        c.set_input_bits(8).unwrap();
        assert_eq!(c.input_bits(), 8);
        c.set_input_bits(6).unwrap();
        assert_eq!(c, QuantConfig::parse("w4a6").unwrap(), "--input-bits equal to a_bits");
        assert!(c.set_input_bits(1).is_err() && c.set_input_bits(17).is_err());
    }

    #[test]
    fn checkpoints_without_input_bits_still_load() {
        let old =
            r#"{"w_bits":4,"a_bits":8,"per_channel":false,"scales":"learned","bn":"fold-sim"}"#;
        let c: QuantConfig = serde_json::from_str(old).unwrap();
        assert_eq!((c.input_bits, c.input_bits()), (None, 8));
        assert!(!serde_json::to_string(&c).unwrap().contains("input_bits"));
    }
}
