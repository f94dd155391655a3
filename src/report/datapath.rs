//! The hardware a MAC layer needs, for `potc report --target asic`: a
//! spatial datapath with one operator per weight that computes one output
//! step per cycle (the fully parallel form of hls4ml and FINN, time steps
//! taking turns). A zero weight costs nothing. For every other weight `w`,
//! equality saturation of `x * w` with the rules of `passes/rules/`
//! (powers of two as shifts, constants as signed sums of powers of two)
//! and extraction under the ASIC cost model ([`HardwareCost`]) choose its
//! operators: `±2^k` is a shift (wiring in silicon; `shifters` counts those
//! with `k > 0`), `7 = 8 - 1` a shift and an adder, and a multiplier of the
//! input's by the weights' width only where no shift-add form is cheaper.
//! Each output row adds its terms and its bias in a tree of adders as wide
//! as the accumulator the worst case needs, and holds the result in a
//! register of that width. A weight's sign costs nothing: the tree adds or
//! subtracts.

use std::collections::HashMap;

use serde::Serialize;

#[cfg(doc)]
use crate::eqsat::HardwareCost;
use crate::eqsat::ProductForm as Form;
use crate::passes::rules;

/// What one MAC layer's datapath holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Datapath {
    pub multipliers: u64,
    /// `[input bits, weight bits]` of each multiplier.
    pub multiplier_bits: [u32; 2],
    pub adders: u64,
    /// The adders' width: the accumulator bits the worst case needs.
    pub adder_bits: u32,
    pub shifters: u64,
    pub register_bits: u64,
}

/// The datapath of a layer with weights `w` (`rows` rows of equal length),
/// a bias or not, inputs of `x_bits`, weights of `w_bits`, and sums that
/// need `acc_bits`.
pub fn datapath(
    w: &[i32],
    rows: usize,
    bias: bool,
    x_bits: u32,
    w_bits: u32,
    acc_bits: u32,
) -> Datapath {
    let per = w.len() / rows.max(1);
    let mut d = Datapath {
        multiplier_bits: [x_bits, w_bits],
        adder_bits: acc_bits,
        register_bits: rows as u64 * u64::from(acc_bits),
        ..Datapath::default()
    };
    let mut forms: HashMap<u32, Form> = HashMap::new();
    let rules = rules::all();
    for row in w.chunks(per.max(1)) {
        let mut terms = u64::from(bias);
        for &v in row.iter().filter(|&&v| v != 0) {
            let m = v.unsigned_abs();
            let f = *forms.entry(m).or_insert_with(|| Form::of(m, &rules));
            d.multipliers += f.multipliers;
            d.shifters += f.shifters;
            d.adders += f.adders;
            terms += 1;
        }
        d.adders += terms.saturating_sub(1);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_free_powers_of_two_shift_the_rest_add() {
        // Row 0: 3 = (x << 1) + x, -4 (shift), 0, 1 (wire); row 1: 0, 0, 2, -5
        // = -((x << 2) + x).
        let d = datapath(&[3, -4, 0, 1, 0, 0, 2, -5], 2, true, 8, 4, 12);
        assert_eq!(d.multipliers, 0);
        assert_eq!(d.shifters, 4);
        // Row 0: 3 terms + bias = 3 adders, and 1 in 3; row 1: 2 terms + bias
        // = 2, and 1 in 5.
        assert_eq!(d.adders, 7);
        assert_eq!(d.register_bits, 24);
        assert_eq!(d.multiplier_bits, [8, 4]);
    }

    #[test]
    fn power_of_two_weights_need_no_multiplier() {
        let w: Vec<i32> = (0..64).map(|i| if i % 3 == 0 { 0 } else { 1 << (i % 5) }).collect();
        assert_eq!(datapath(&w, 4, false, 8, 5, 16).multipliers, 0);
    }

    #[test]
    fn constants_take_their_signed_digits() {
        let rules = rules::all();
        for m in 1..=127u32 {
            let f = Form::of(m, &rules);
            let digits = rules::constants::csd_digits(m.into()) as u64;
            assert_eq!(f.multipliers, 0, "{m}");
            assert_eq!(f.adders, digits - 1, "{m}: {f:?}");
        }
    }
}
