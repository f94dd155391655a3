//! The loop helper every kernel uses: a counted loop over `start..end` with
//! the induction variable as a block parameter (so Cranelift sees a plain
//! SSA loop), sealed as soon as its back edge exists.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{BlockArg, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;

use super::IDX;

/// Emits `for i in start..end { body(i) }` with `i` an `i64`, stepping by `step`.
pub fn for_range(
    b: &mut FunctionBuilder,
    start: Value,
    end: Value,
    step: i64,
    body: impl FnOnce(&mut FunctionBuilder, Value),
) {
    let header = b.create_block();
    let inner = b.create_block();
    let exit = b.create_block();
    b.append_block_param(header, IDX);
    b.ins().jump(header, &[BlockArg::Value(start)]);
    b.switch_to_block(header);
    let i = b.block_params(header)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, i, end);
    b.ins().brif(more, inner, &[], exit, &[]);
    b.switch_to_block(inner);
    b.seal_block(inner);
    body(b, i);
    let next = b.ins().iadd_imm_s(i, step);
    b.ins().jump(header, &[BlockArg::Value(next)]);
    b.seal_block(header);
    b.switch_to_block(exit);
    b.seal_block(exit);
}

/// [`for_range`] over constant bounds.
pub fn for_n(
    b: &mut FunctionBuilder,
    start: i64,
    end: i64,
    body: impl FnOnce(&mut FunctionBuilder, Value),
) {
    let (s, e) = (b.ins().iconst(IDX, start), b.ins().iconst(IDX, end));
    for_range(b, s, e, 1, body);
}
