//! The power-of-two quantizer of the numeric contract (spec section 1 and 3):
//! `q(x) = clamp(floor(x * 2^-e + 0.5), qmin, qmax)`, `fq(x) = q(x) * 2^e`,
//! with `e` from a learned threshold `log2 t` as in TQT (Jain et al., 2019),
//! and the straight-through gradients.

use super::format::WeightFormat;
/// Bit width, signedness and range kind of one quantizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantSpec {
    /// 2..=16.
    pub bits: u32,
    pub signed: bool,
    /// Signed narrow range `±(2^(b-1) - 1)` (weights) instead of full
    /// `[-2^(b-1), 2^(b-1) - 1]`.
    pub narrow: bool,
}

impl QuantSpec {
    /// The bias's grid: a signed 32-bit accumulator, narrow so that `±qb`
    /// both fit (spec section 4).
    pub const BIAS: QuantSpec = QuantSpec { bits: 32, signed: true, narrow: true };

    pub fn qmin(&self) -> i64 {
        match (self.signed, self.narrow) {
            (false, _) => 0,
            (true, true) => -(1 << (self.bits - 1)) + 1,
            (true, false) => -(1 << (self.bits - 1)),
        }
    }

    pub fn qmax(&self) -> i64 {
        if self.signed {
            (1 << (self.bits - 1)) - 1
        } else {
            (1 << self.bits) - 1
        }
    }

    /// The exponent a threshold `t = 2^log2t` gives: the smallest power of two
    /// covering `t`, less the bits that carry magnitude.
    pub fn exponent(&self, log2t: f32) -> i32 {
        let magnitude_bits = if self.signed { self.bits - 1 } else { self.bits } as i32;
        // Clamp so that 2^e stays a normal f32 far from overflow.
        (log2t.ceil() as i32).clamp(-100, 100) - magnitude_bits
    }

    /// A threshold whose exponent is `e`, mid-way between integers so that
    /// `ceil` is unambiguous.
    pub fn log2t_for(&self, e: i32) -> f32 {
        let magnitude_bits = if self.signed { self.bits - 1 } else { self.bits } as i32;
        (e + magnitude_bits) as f32 - 0.5
    }

    /// The threshold (as `log2 t`) whose exponent covers `max_abs` exactly:
    /// calibration by the maximum.
    pub fn calibrate(max_abs: f32) -> f32 {
        if max_abs > 0.0 && max_abs.is_finite() {
            max_abs.log2()
        } else {
            0.0
        }
    }
}

/// `q(x)` in f64, as an integer-valued f64: `clamp(floor(x * 2^-e + 0.5))`.
/// The one definition the exact evaluation, the integer program's bias and
/// its data boundary (`potc run`) share, so they round alike.
pub fn quantize64(x: f64, e: i32, spec: &QuantSpec) -> f64 {
    floor_half_up(x * 2f64.powi(-e)).clamp(spec.qmin() as f64, spec.qmax() as f64)
}

/// `2^e` as f32 (exact for the clamped exponent range).
pub fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// `q(x)`: round half up, then clamp. The scaling by `2^-e` is exact, and the
/// rounding is exact too (see [`round_half_up_f32`]).
#[inline]
pub fn quantize(x: f32, e: i32, spec: &QuantSpec) -> i64 {
    quantize_f32(x, pow2(-e), spec.qmin() as f32, spec.qmax() as f32) as i64
}

/// `q(x)` as f32 given `2^-e` and the range: the form the hot loops use. Only
/// f32 compares, adds and selects, so it vectorizes.
#[inline(always)]
pub fn quantize_f32(x: f32, inv_scale: f32, qmin: f32, qmax: f32) -> f32 {
    // Clamping first keeps |v| < 2^17, where every step below is exact.
    let v = (x * inv_scale).max(qmin - 1.0).min(qmax + 1.0);
    round_half_up_f32(v).max(qmin).min(qmax)
}

/// `floor(v + 0.5)` for |v| < 2^22, exactly: adding and removing 1.5 * 2^23
/// rounds to nearest-even (the FPU's mode), and a tie that went down to even
/// is moved up. (Adding 0.5 in f32 would round 0.49999997 up to 1.)
#[inline(always)]
pub fn round_half_up_f32(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    let r = (v + MAGIC) - MAGIC;
    if v - r == 0.5 {
        r + 1.0
    } else {
        r
    }
}

/// `floor(v + 0.5)` without a libm call (the hot loop of fake quantization):
/// truncate, then step down where truncation went up (negative values).
/// Exact for |v| < 2^52; beyond that every caller clamps anyway.
#[inline(always)]
pub fn floor_half_up(v: f64) -> f64 {
    let y = v + 0.5;
    let t = y as i64 as f64;
    if t > y {
        t - 1.0
    } else {
        t
    }
}

/// `fq(x) = q(x) * 2^e`.
#[inline]
pub fn fake_quant(x: f32, e: i32, spec: &QuantSpec) -> f32 {
    quantize(x, e, spec) as f32 * pow2(e)
}

/// Whether `x` lies in the clamp range `[qmin * 2^e, qmax * 2^e]`, where the
/// straight-through estimator passes the gradient.
#[inline]
pub fn in_range(x: f32, e: i32, spec: &QuantSpec) -> bool {
    in_range64(x as f64, e, spec)
}

/// [`in_range`] for an f64 value (the exact evaluation's).
#[inline]
pub fn in_range64(x: f64, e: i32, spec: &QuantSpec) -> bool {
    let s = pow2(e) as f64;
    spec.qmin() as f64 * s <= x && x <= spec.qmax() as f64 * s
}

/// `d fq / d log2t` (TQT): `ln2 * (fq(x) - x)` inside the range, `ln2 * fq(x)`
/// where clamped.
#[inline]
pub fn grad_log2t(x: f32, e: i32, spec: &QuantSpec) -> f32 {
    let fq = fake_quant(x, e, spec);
    let ln2 = std::f32::consts::LN_2;
    if in_range(x, e, spec) {
        ln2 * (fq - x)
    } else {
        ln2 * fq
    }
}

/// A layer's weight quantizer: `b`-bit weights of a format
/// ([`WeightFormat`]: narrow signed integers, powers of two, or additive
/// powers of two; spec section 2) times `2^e`. Every format's weights are
/// integers times `2^e`, so the integer path is the same; with the shift
/// formats each product is a shift or two and an add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightQuantizer {
    pub bits: u32,
    pub format: WeightFormat,
}

impl WeightQuantizer {
    fn spec(&self) -> QuantSpec {
        QuantSpec { bits: self.bits, signed: true, narrow: true }
    }

    /// The largest `|q(w)|`.
    pub fn qmax(&self) -> f32 {
        self.format.top(self.bits).unwrap_or(0) as f32
    }

    /// The bits of the largest magnitude's power-of-two ceiling: a threshold
    /// `t` gives the exponent that puts `2^ceil(log2 t)` there.
    fn magnitude_bits(&self) -> i32 {
        match self.format {
            WeightFormat::Int => self.bits as i32 - 1,
            _ => (self.qmax() as u32).next_power_of_two().trailing_zeros() as i32,
        }
    }

    /// The exponent a threshold gives.
    pub fn exponent(&self, log2t: f32) -> i32 {
        (log2t.ceil() as i32).clamp(-100, 100) - self.magnitude_bits()
    }

    /// A threshold whose exponent is `e`, mid-way between integers so that
    /// `ceil` is unambiguous.
    pub fn log2t_for(&self, e: i32) -> f32 {
        (e + self.magnitude_bits()) as f32 - 0.5
    }

    /// `fq(w)`: the nearest weight of the format times `2^e`; the shift
    /// formats round the magnitude (ties to the larger), integers round half
    /// up as activations do.
    #[inline]
    pub fn fq(&self, w: f32, e: i32) -> f32 {
        if self.format == WeightFormat::Int {
            return fake_quant(w, e, &self.spec());
        }
        let m = self.format.nearest(w.abs() * pow2(-e), self.bits);
        if m == 0.0 {
            0.0
        } else {
            m.copysign(w) * pow2(e)
        }
    }

    /// `sum (v - fq(v))^2` over `v = w / div`: the error calibration
    /// minimises over exponents, and diagnostics compare.
    pub fn squared_error(&self, w: &[f32], div: f32, e: i32) -> f64 {
        w.iter().map(|&x| (x / div - self.fq(x / div, e)) as f64).map(|d| d * d).sum()
    }

    /// Where the straight-through estimator passes the gradient.
    #[inline]
    pub fn in_range(&self, w: f32, e: i32) -> bool {
        w.abs() <= self.qmax() * pow2(e)
    }

    /// TQT's `d fq / d log2t`, as for the integer quantizer.
    #[inline]
    pub fn grad_log2t(&self, w: f32, e: i32) -> f32 {
        let fq = self.fq(w, e);
        std::f32::consts::LN_2 * if self.in_range(w, e) { fq - w } else { fq }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S8: QuantSpec = QuantSpec { bits: 8, signed: true, narrow: false };
    const N4: QuantSpec = QuantSpec { bits: 4, signed: true, narrow: true };
    const U8: QuantSpec = QuantSpec { bits: 8, signed: false, narrow: false };

    #[test]
    fn power_of_two_weights_round_to_the_nearest_power() {
        let q = WeightQuantizer { bits: 3, format: WeightFormat::Pot }; // 0, ±1, ±2, ±4 times 2^e
        assert_eq!(q.qmax(), 4.0);
        assert_eq!(q.exponent(2f32.log2()), -1); // t = 2 = 4 * 2^-1
        for (w, want) in [
            (0.0, 0.0),
            (0.24, 0.0),
            (0.25, 0.5), // tie between 0 and 0.5 goes up
            (0.6, 0.5),
            (0.74, 0.5),
            (0.75, 1.0), // tie between 0.5 and 1 goes up
            (1.49, 1.0),
            (1.5, 2.0),
            (9.0, 2.0), // clamped to 4 * 2^-1
            (-0.6, -0.5),
            (-3.0, -2.0),
        ] {
            assert_eq!(q.fq(w, -1), want, "{w}");
        }
        // Additive powers of two, 4 bits: 0 1 2 3 4 6 8 12; t = 3 covers the
        // top 12 at 2^-2 (12 * 2^-2 = 3 is 0.75 of 2^ceil(log2 t) = 4).
        let a = WeightQuantizer { bits: 4, format: WeightFormat::Apot };
        assert_eq!((a.qmax(), a.exponent(3f32.log2()), a.log2t_for(-2).ceil()), (12.0, -2, 2.0));
        for (w, want) in [
            (0.12, 0.0),
            (0.125, 0.25),
            (1.2, 1.0),
            (1.25, 1.5),
            (-2.4, -2.0),
            (-2.5, -3.0),
            (4.0, 3.0),
        ] {
            assert_eq!(a.fq(w, -2), want, "{w}");
        }
        let int = WeightQuantizer { bits: 4, format: WeightFormat::Int };
        assert_eq!(int.qmax(), 7.0);
        assert_eq!(int.fq(0.3, -2), 0.25);
        assert!(q.in_range(2.0, -1) && !q.in_range(2.01, -1));
    }

    #[test]
    fn ranges_follow_the_contract() {
        assert_eq!((S8.qmin(), S8.qmax()), (-128, 127));
        assert_eq!((N4.qmin(), N4.qmax()), (-7, 7));
        assert_eq!((U8.qmin(), U8.qmax()), (0, 255));
        let u2 = QuantSpec { bits: 2, signed: false, narrow: false };
        assert_eq!((u2.qmin(), u2.qmax()), (0, 3));
        let s16 = QuantSpec { bits: 16, signed: true, narrow: false };
        assert_eq!((s16.qmin(), s16.qmax()), (-32768, 32767));
    }

    #[test]
    fn f32_rounding_is_exact_half_up() {
        let mut x = 0x1234_5678u32;
        for i in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Random values, and exact ties and their neighbours.
            let v = match i % 3 {
                0 => (x as f32 / u32::MAX as f32 - 0.5) * 70_000.0,
                1 => (x % 20_000) as f32 / 2.0 - 5_000.0,
                _ => f32::from_bits(
                    ((x % 20_000) as f32 / 2.0 - 5_000.0)
                        .to_bits()
                        .wrapping_add(x % 3)
                        .wrapping_sub(1),
                ),
            };
            if v.is_finite() {
                assert_eq!(round_half_up_f32(v) as f64, (v as f64 + 0.5).floor(), "{v}");
            }
        }
    }

    #[test]
    fn floor_half_up_matches_floor() {
        for v in
            [-3.5, -2.5, -0.5, -0.49999999, 0.0, 0.49999999, 0.5, 1.5, 2.4999, -1e15, 1e15, -7.0]
        {
            assert_eq!(floor_half_up(v), (v + 0.5f64).floor(), "{v}");
        }
    }

    #[test]
    fn ties_round_half_up_for_both_signs() {
        // e = -1: x * 2 = 0.5 -> 1, -0.5 -> 0, 1.5 -> 2, -1.5 -> -1, -2.5 -> -2
        for (x, q) in [(0.25, 1), (-0.25, 0), (0.75, 2), (-0.75, -1), (-1.25, -2), (1.25, 3)] {
            assert_eq!(quantize(x, -1, &S8), q, "{x}");
        }
        // Just below a tie stays down, even where f32 addition would round up.
        let below = f32::from_bits(0.5f32.to_bits() - 1);
        assert_eq!(quantize(below, 0, &S8), 0);
        assert_eq!(quantize(-below, 0, &S8), 0);
    }

    #[test]
    fn clamps_at_both_ends() {
        assert_eq!(quantize(1000.0, 0, &S8), 127);
        assert_eq!(quantize(-1000.0, 0, &S8), -128);
        assert_eq!(quantize(-1000.0, 0, &N4), -7);
        assert_eq!(quantize(-3.0, 0, &U8), 0);
        assert_eq!(quantize(255.4, 0, &U8), 255);
        assert_eq!(quantize(255.6, 0, &U8), 255);
        assert_eq!(fake_quant(0.3, -2, &U8), 0.25);
        assert_eq!(fake_quant(1e9, -2, &N4), 1.75);
    }

    #[test]
    fn exponents_from_thresholds() {
        // t = 1: signed 8-bit covers [-1, 1) with e = -7; unsigned with e = -8.
        assert_eq!(S8.exponent(0.0), -7);
        assert_eq!(U8.exponent(0.0), -8);
        // t = 3 (log2 = 1.58): ceil = 2 -> covers 4.
        assert_eq!(S8.exponent(3f32.log2()), 2 - 7);
        assert_eq!(N4.exponent(-0.2), -3);
        assert_eq!(pow2(-7), 1.0 / 128.0);
        assert_eq!(pow2(3), 8.0);
    }

    #[test]
    fn straight_through_and_tqt_gradients_by_hand() {
        // e = -2 (s = 0.25), 4-bit narrow: range [-1.75, 1.75].
        assert!(in_range(1.75, -2, &N4) && !in_range(1.76, -2, &N4));
        assert!(in_range(-1.75, -2, &N4) && !in_range(-1.8, -2, &N4));
        let ln2 = std::f32::consts::LN_2;
        // Inside: x = 0.3 -> fq = 0.25, d/dlog2t = ln2 * (0.25 - 0.3).
        assert!((grad_log2t(0.3, -2, &N4) - ln2 * (0.25 - 0.3)).abs() < 1e-7);
        // Clamped above: fq = 1.75 -> ln2 * 1.75; below: ln2 * -1.75.
        assert!((grad_log2t(5.0, -2, &N4) - ln2 * 1.75).abs() < 1e-7);
        assert!((grad_log2t(-5.0, -2, &N4) + ln2 * 1.75).abs() < 1e-7);
    }

    #[test]
    fn calibration_covers_the_maximum() {
        for m in [0.01f32, 0.3, 1.0, 1.5, 6.0, 100.0] {
            let e = U8.exponent(QuantSpec::calibrate(m));
            assert!(U8.qmax() as f32 * pow2(e) >= m * (255.0 / 256.0), "{m}");
            assert!(U8.qmax() as f32 * pow2(e) < 2.0 * m, "{m}");
        }
    }
}
