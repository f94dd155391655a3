//! The code of a power-of-two weight, as the hand-off files store it: 0 for
//! 0, and `±(k + 1)` for `±2^k`. A `b`-bit power-of-two weight has
//! `k <= 2^(b-1) - 2`, so its code fits a signed `b`-bit integer.

/// What the code of each weight means, as `manifest.json` states it.
pub const ENCODING: &str = "pot: 0 is the weight 0; c != 0 is sign(c) * 2^(|c| - 1)";

/// The code of `w`, which is 0 or `±2^k` (the program's loader checked it).
pub fn code(w: i32) -> i32 {
    match w {
        0 => 0,
        w => w.signum() * (w.unsigned_abs().trailing_zeros() as i32 + 1),
    }
}

/// The `i32` weight a stored code stands for; `None` past `±2^30`.
pub fn weight(c: i8) -> Option<i32> {
    let k = u32::from(c.unsigned_abs()).checked_sub(1);
    match k {
        None => Some(0),
        Some(k) if k <= 30 => Some(i32::from(c.signum()) << k),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_fit_the_weight_width() {
        for k in 0..=14 {
            for w in [1i32 << k, -(1i32 << k)] {
                assert_eq!(weight(code(w) as i8), Some(w));
            }
        }
        assert_eq!(code(0), 0);
        // 5-bit power-of-two weights reach 2^14: code 15 fits i5.
        assert_eq!(code(1 << 14), 15);
        assert_eq!(code(-1), -1);
        assert_eq!(weight(-3), Some(-4));
        assert_eq!(weight(31), Some(1 << 30));
        assert_eq!((weight(32), weight(-128)), (None, None));
    }
}
