//! Rewrite rules for equality saturation ([`crate::eqsat`]): identities only,
//! one file per group. A rule that changes meaning (fake-quant insertion) is a
//! directed pass, never a rule here. Every rule has a property test in
//! `tests/eqsat.rs` evaluating both sides on random values.

pub mod batch_norm;
pub mod clamp;
pub mod constants;
pub mod fold;
pub mod requant;
pub mod shifts;

use crate::eqsat::Rewrite;

/// Every rule, the set lowering saturates with.
pub fn all() -> Vec<Rewrite> {
    let mut rules = shifts::all();
    rules.extend(requant::all());
    rules.extend(clamp::all());
    rules.extend(fold::all());
    rules.extend(constants::all());
    rules
}
