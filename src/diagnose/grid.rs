//! How values fall on one quantizer's grid.

/// Counts of the values one quantizer (or one exponent group of it) saw:
/// how many lie beyond its largest level, and which integer levels they
/// took.
#[derive(Debug, Clone)]
pub struct GridUse {
    pub values: u64,
    pub clipped: u64,
    /// The integer levels the quantizer can output.
    pub available: u64,
    lo: i64,
    seen: Vec<bool>,
}

impl GridUse {
    /// A grid whose integers lie in `lo..=hi`, `available` of them levels
    /// (fewer than the span for power-of-two weights).
    pub fn new(lo: i64, hi: i64, available: u64) -> GridUse {
        let span = usize::try_from(hi.saturating_sub(lo).saturating_add(1)).unwrap_or(0);
        GridUse { values: 0, clipped: 0, available, lo, seen: vec![false; span] }
    }

    /// One value: its integer `code` and whether the clamp moved it.
    pub fn add(&mut self, code: i64, clipped: bool) {
        self.values += 1;
        self.clipped += u64::from(clipped);
        let at = code.checked_sub(self.lo).and_then(|i| usize::try_from(i).ok());
        if let Some(seen) = at.and_then(|i| self.seen.get_mut(i)) {
            *seen = true;
        }
    }

    /// Distinct integer levels taken.
    pub fn used(&self) -> u64 {
        self.seen.iter().filter(|&&s| s).count() as u64
    }
}

/// The median of `v` (the lower one of an even count); 0 if empty.
pub fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// The median of `v`; 0 if empty or not comparable.
pub fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_values_clipping_and_distinct_levels() {
        let mut g = GridUse::new(-7, 7, 15);
        for (code, clipped) in [(0, false), (3, false), (3, false), (7, true), (-7, true)] {
            g.add(code, clipped);
        }
        g.add(100, true); // outside the span: counted, not a level
        assert_eq!((g.values, g.clipped, g.used(), g.available), (6, 3, 4, 15));
        assert_eq!(median(vec![5, 1, 3, 9]), 3);
        assert_eq!(median(vec![]), 0);
        assert_eq!(median_f64(vec![2.0, 0.5, 8.0]), 2.0);
    }
}
