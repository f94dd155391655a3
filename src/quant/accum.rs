//! Accumulator bounds (spec section 7): for each quantized MAC layer and
//! output channel, `max|acc| <= sum|q(w)| * max|q(x)| + |qb|`, and the signed
//! accumulator bits that bound needs. Here over integers: lowering proves
//! its accumulators with them and the program loader checks them again;
//! `diagnose::accum` applies them to a fake-quant model.

/// Per output channel of an integer MAC layer (`w` is `[rows, ...]`):
/// `max|acc| = sum|w| * x_max + |b|`, exact.
pub fn int_channel_bounds(w: &[i32], b: Option<&[i32]>, rows: usize, x_max: u128) -> Vec<u128> {
    let per = w.len() / rows.max(1);
    (0..rows)
        .map(|r| {
            let wsum: u128 = w[r * per..][..per].iter().map(|v| v.unsigned_abs() as u128).sum();
            wsum * x_max + b.map_or(0, |b| b[r].unsigned_abs() as u128)
        })
        .collect()
}

/// The worst output channel of an integer MAC layer: `(channel, max|acc|)`
/// of [`int_channel_bounds`], the first on ties.
pub fn int_layer_bound(w: &[i32], b: Option<&[i32]>, rows: usize, x_max: u128) -> (usize, u128) {
    int_channel_bounds(w, b, rows, x_max)
        .into_iter()
        .enumerate()
        .max_by_key(|&(r, bound)| (bound, usize::MAX - r))
        .unwrap_or((0, 0))
}

/// The largest magnitude a value of integer type `elem` can have.
pub fn max_magnitude(elem: crate::ir::Elem) -> u128 {
    elem.range().map_or(u128::MAX, |(lo, hi)| lo.unsigned_abs().max(hi.unsigned_abs()).into())
}

/// The width of a two's-complement integer holding `±max`.
pub fn signed_bits(max: u64) -> u32 {
    65 - max.leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_bits_hold_the_magnitude() {
        assert_eq!(
            (signed_bits(0), signed_bits(1), signed_bits(127), signed_bits(128)),
            (1, 2, 8, 9)
        );
    }
}
