//! What each op means to the stages after the IR: the one table that the
//! float plan, the exact evaluation, the accumulator analysis,
//! `insert-fake-quant`, `lower-int`, the JIT and the C export consult instead
//! of listing ops themselves. Adding an op means adding its row here (the
//! `match` is exhaustive, so the compiler asks), its typing rule in
//! `infer.rs`, and its kernels.

use super::op::Op;

/// An op's meaning beyond its typing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meaning {
    /// Every output value is one of its operand's values or zero (moved,
    /// selected, or clamped): the output stays on the operand's power-of-two
    /// grid, within its bounds and its sign, so the quantizer before it stays
    /// in force after it.
    pub moves_values: bool,
    /// The output lies on the operand's grid (its exponent), though not
    /// within its bounds: `moves_values`, and integer sums.
    pub same_grid: bool,
    /// The output is never negative, whatever the operand.
    pub never_negative: bool,
    /// The output is the operand's memory read in another shape: an engine
    /// computes nothing for it.
    pub view: bool,
    /// Defined on integers: an integer program may hold it.
    pub integer: bool,
}

/// Ops that move values: on the operand's grid and within its bounds.
const MOVES: Meaning = Meaning {
    moves_values: true,
    same_grid: true,
    never_negative: false,
    view: false,
    integer: false,
};
const NONE: Meaning = Meaning {
    moves_values: false,
    same_grid: false,
    never_negative: false,
    view: false,
    integer: false,
};

impl Op {
    /// This op's row of the table.
    pub fn meaning(&self) -> Meaning {
        match self {
            Op::Input => Meaning { integer: true, ..NONE },
            Op::Conv1d(_) | Op::Linear(_) => NONE,
            Op::IntConv1d(_) | Op::IntLinear(_) => Meaning { integer: true, ..NONE },
            Op::Relu => Meaning { never_negative: true, integer: true, ..MOVES },
            Op::MaxPool1d(_) => Meaning { integer: true, ..MOVES },
            Op::Flatten => Meaning { view: true, integer: true, ..MOVES },
            // The identity at inference; `canonicalize` removes it before
            // quantization, so only float training sees it scale values.
            Op::Dropout(_) => Meaning { view: true, ..MOVES },
            Op::GlobalSumPool => Meaning { same_grid: true, integer: true, ..NONE },
            Op::Add(_) | Op::Requant(_) | Op::Shl => Meaning { integer: true, ..NONE },
            Op::BatchNorm(_) | Op::AvgPool1d(_) | Op::GlobalAvgPool(_) | Op::FakeQuant(_) => NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_move_stay_on_their_grid() {
        for name in ["relu", "max_pool1d", "flatten", "dropout", "conv1d", "global_sum_pool"] {
            let m = Op::with_defaults(name).unwrap().meaning();
            assert!(!m.moves_values || m.same_grid, "{name}");
            assert!(!m.view || m.moves_values, "{name}");
        }
        assert!(Op::Relu.meaning().never_negative);
    }
}
