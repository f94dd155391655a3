//! The weight formats of a MAC layer (`w_format`), in one place: which
//! integers a `b`-bit weight may be, the nearest of them to a value, and the
//! code the hand-off files store for each (spec section 2).
//!
//! - `int`: narrow signed integers `-(2^(b-1) - 1) ..= 2^(b-1) - 1`.
//! - `pot`: 0 or `±2^k`, `k` in `0 ..= 2^(b-1) - 2`. A product is a shift.
//! - `apot` (additive powers of two, Li et al. 2020): 0 or `±(2^k1 + 2^k2)`
//!   with `k2 = k1 - 1`, or `±2^k`: the magnitudes `1, 2, 3, 4, 6, 8, 12,
//!   16, 24, ...`, a step of at most 1.5x where powers of two step 2x. A
//!   product is two shifts and an add. With the second term one exponent
//!   below the first this is a float with one mantissa bit, and it keeps the
//!   whole range of `b`-bit codes dense where weights are.
//!
//! Both shift formats have `2^(b-1) - 1` nonzero magnitudes (1 sign bit and
//! `b-1` bits of code, one code meaning zero); the code of a weight is its
//! sign times the 1-based index of its magnitude among them, so it fits a
//! signed `b`-bit integer.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightFormat {
    #[default]
    Int,
    Pot,
    Apot,
}

impl WeightFormat {
    /// The names `w_format` takes, in the model text and in reports.
    pub const NAMES: &'static [&'static str] = &["int", "pot", "apot"];

    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::Int => "int",
            WeightFormat::Pot => "pot",
            WeightFormat::Apot => "apot",
        }
    }

    pub fn from_name(name: &str) -> Option<WeightFormat> {
        [WeightFormat::Int, WeightFormat::Pot, WeightFormat::Apot]
            .into_iter()
            .find(|f| f.name() == name)
    }

    /// Whether every weight is a sum of shifts (no multiplier), stored as a
    /// code.
    pub fn shifts(self) -> bool {
        self != WeightFormat::Int
    }

    /// The widest weights of the format: 16 bits for integers; for the shift
    /// formats, the width whose largest magnitude (`2^14` for pot at 5 bits,
    /// `3 * 2^14` for apot at 6) stays far inside 32-bit integers.
    pub fn max_bits(self) -> usize {
        match self {
            WeightFormat::Int => 16,
            WeightFormat::Pot => 5,
            WeightFormat::Apot => 6,
        }
    }

    /// The `i`-th nonzero magnitude (`i >= 1`), in increasing order; `None`
    /// past `2^30`.
    pub fn magnitude(self, i: u32) -> Option<i64> {
        let m = match self {
            WeightFormat::Int => i64::from(i),
            WeightFormat::Pot => 1i64.checked_shl(i.checked_sub(1)?)?,
            // 1, then 2^k at i = 2k and 2^k + 2^(k-1) at i = 2k + 1.
            WeightFormat::Apot => {
                let k = i / 2;
                let top = 1i64.checked_shl(k)?;
                if i % 2 == 1 && i > 1 {
                    top + (top >> 1)
                } else {
                    top
                }
            }
        };
        (i >= 1 && m <= 1 << 30).then_some(m)
    }

    /// The number of nonzero magnitudes of `bits`-bit weights.
    pub fn levels(bits: u32) -> u32 {
        (1u32 << (bits - 1)) - 1
    }

    /// The largest magnitude of `bits`-bit weights; `None` when it does not
    /// fit 32-bit integers.
    pub fn top(self, bits: u32) -> Option<i64> {
        self.magnitude(Self::levels(bits))
    }

    /// The 1-based index of magnitude `m` among the format's (any width),
    /// `None` when `m` is not one of them.
    fn index(self, m: u32) -> Option<u32> {
        let k = m.checked_ilog2()?;
        let i = match self {
            WeightFormat::Int => m,
            WeightFormat::Pot if m.is_power_of_two() => k + 1,
            WeightFormat::Apot if m.is_power_of_two() => (2 * k).max(1),
            WeightFormat::Apot if m == 3 << (k - 1) => 2 * k + 1,
            _ => return None,
        };
        Some(i)
    }

    /// Whether `w` is a weight of the format at `bits` bits.
    pub fn holds(self, w: i32, bits: u32) -> bool {
        w == 0 || self.index(w.unsigned_abs()).is_some_and(|i| i <= Self::levels(bits))
    }

    /// The nearest magnitude to `v >= 0` (a weight over its scale), ties to
    /// the larger, at most the largest of `bits` bits; exact in f32, since
    /// every magnitude and every midpoint is an integer or a half.
    pub fn nearest(self, v: f32, bits: u32) -> f32 {
        let n = Self::levels(bits);
        let level = |i: u32| if i == 0 { 0.0 } else { self.magnitude(i).unwrap_or(0) as f32 };
        // The count of midpoints at or below v is the index of the nearest.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if v >= (level(mid - 1) + level(mid)) / 2.0 {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        level(lo)
    }

    /// The code of weight `w` of a shift format: `sign(w) * index`.
    pub fn code(self, w: i32) -> i32 {
        let i = self.index(w.unsigned_abs()).unwrap_or(0);
        w.signum() * i as i32
    }

    /// The weight a stored code stands for; `None` past `±2^30`.
    pub fn weight(self, c: i8) -> Option<i32> {
        match c {
            0 => Some(0),
            c => self
                .magnitude(u32::from(c.unsigned_abs()))
                .map(|m| i32::from(c.signum()) * m as i32),
        }
    }

    /// What a code means, as `manifest.json` states it.
    pub fn encoding(self) -> Option<&'static str> {
        match self {
            WeightFormat::Int => None,
            WeightFormat::Pot => Some("pot: 0 is the weight 0; c != 0 is sign(c) * 2^(|c| - 1)"),
            WeightFormat::Apot => Some(
                "apot: 0 is the weight 0; c != 0 is sign(c) * m, with k = |c| >> 1 and \
                 m = 2^k + 2^(k-1) for odd |c| > 1, else m = 2^k",
            ),
        }
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::WeightFormat::{self, *};

    #[test]
    fn magnitudes_of_each_format() {
        let first = |f: WeightFormat| (1..=9).map(|i| f.magnitude(i).unwrap()).collect::<Vec<_>>();
        assert_eq!(first(Int), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(first(Pot), [1, 2, 4, 8, 16, 32, 64, 128, 256]);
        assert_eq!(first(Apot), [1, 2, 3, 4, 6, 8, 12, 16, 24]);
        assert_eq!((Pot.top(4), Apot.top(4), Int.top(4)), (Some(64), Some(12), Some(7)));
        assert_eq!(
            (Pot.top(5), Apot.top(5), Apot.top(6)),
            (Some(1 << 14), Some(192), Some(3 << 14))
        );
        assert_eq!((Pot.magnitude(0), Pot.magnitude(32)), (None, None));
    }

    #[test]
    fn codes_round_trip_and_fit_the_weight_width() {
        for f in [Pot, Apot] {
            for i in 1..=WeightFormat::levels(f.max_bits() as u32) {
                let m = f.magnitude(i).unwrap() as i32;
                for w in [m, -m] {
                    assert_eq!(f.weight(f.code(w) as i8), Some(w), "{f} {w}");
                    assert!(f.code(w).unsigned_abs() <= 31);
                    assert!(f.holds(w, f.max_bits() as u32));
                }
            }
            assert_eq!(f.code(0), 0);
            assert_eq!(f.weight(-128), None);
        }
        assert_eq!((Pot.code(-4), Apot.code(-4), Apot.code(12), Apot.code(1)), (-3, -4, 7, 1));
        assert_eq!(Apot.weight(-5), Some(-6));
        assert!(!Apot.holds(5, 5) && !Apot.holds(16, 4) && Apot.holds(12, 4));
        assert!(!Pot.holds(3, 5) && Pot.holds(64, 4) && !Pot.holds(128, 4));
    }

    #[test]
    fn the_nearest_level_rounds_ties_up_and_clamps() {
        // apot 4 bits: 0 1 2 3 4 6 8 12.
        for (v, want) in [
            (0.0, 0.0),
            (0.49, 0.0),
            (0.5, 1.0),
            (2.5, 3.0),
            (4.99, 4.0),
            (5.0, 6.0),
            (9.99, 8.0),
            (10.0, 12.0),
            (1e9, 12.0),
        ] {
            assert_eq!(Apot.nearest(v, 4), want, "{v}");
        }
        // pot 3 bits: 0 1 2 4.
        for (v, want) in [(0.5, 1.0), (1.49, 1.0), (1.5, 2.0), (2.99, 2.0), (3.0, 4.0), (9.0, 4.0)]
        {
            assert_eq!(Pot.nearest(v, 3), want, "{v}");
        }
        assert_eq!(Int.nearest(6.5, 4), 7.0);
    }
}
