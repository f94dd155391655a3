//! `select-datapath`: how each integer layer applies its weights, chosen by
//! extraction for the target (`potc lower --target`). For every distinct
//! weight magnitude `m` of a layer, equality saturation of `x * m` with the
//! rules of `passes/rules/` holds its multiplier, shift and signed-digit
//! shift-add forms, and extraction under the ASIC area cost picks one: a
//! layer whose every weight extracts without a multiplier becomes
//! `datapath = shift_add`. Under `cpu`, where a multiply is one lane of a
//! dot-product instruction, every layer keeps the default, multiply.
//! Power-of-two layers shift already (`w_format = pot`) and are left alone.

use std::collections::BTreeMap;

use crate::eqsat::{ProductForm, Target};
use crate::ir::op::{LayerQuant, Op};
use crate::ir::Graph;
use crate::pass::{Pass, PassContext, RewriteError, Semantics};
use crate::passes::rules;

pub struct SelectDatapath;

impl Pass for SelectDatapath {
    fn name(&self) -> &'static str {
        "select-datapath"
    }

    fn summary(&self) -> &'static str {
        "choose each integer layer's datapath (multiply or shift-add) for --target by extraction"
    }

    fn description(&self) -> &'static str {
        "For each int_conv1d/int_linear with integer weights, saturates x * m for\n\
         every distinct weight magnitude m (powers of two as shifts, constants as\n\
         signed sums of powers of two: 7x = (x << 3) - x) and, for `--target\n\
         asic`, extracts under the area cost (multiplier 8, adder 1, constant\n\
         shift 1). A layer whose weights all extract without a multiplier gets\n\
         `datapath = shift_add`; the integers stay the same. `--target cpu`\n\
         keeps every multiplication (the JIT's dot products).\n\
         The notes give each layer's choice and its operators.\n\
         \n\
         Before (--target asic):\n\
         \x20 %c = int_conv1d(%x) {out_channels = 4, kernel = 3, w_bits = 4} : i32[4, 14]\n\
         After:\n\
         \x20 %c = int_conv1d(%x) {out_channels = 4, kernel = 3, w_bits = 4, datapath = shift_add} : i32[4, 14]"
    }

    fn semantics(&self) -> Semantics {
        Semantics::Preserving
    }

    fn run(&self, g: &mut Graph, cx: &mut PassContext<'_>) -> Result<bool, RewriteError> {
        let Some(ints) = cx.ints.as_deref() else { return Ok(false) };
        let rules = rules::all();
        let mut forms: BTreeMap<u32, bool> = BTreeMap::new();
        let mut changed = false;
        let ids: Vec<_> = g.node_ids().collect();
        for id in ids {
            let name = g.node(id).name.clone();
            let Some(q) = quant_mut(&mut g.node_mut(id).op) else { continue };
            if q.format().shifts() || q.datapath.is_some() {
                continue;
            }
            let Some((_, w)) = ints.get(&format!("{name}.w")) else { continue };
            if cx.target == Target::Cpu {
                // A CPU multiplies whatever the weights: the JIT's dot products.
                cx.notes.push(format!("%{name}: multiply (--target cpu)"));
                continue;
            }
            let mut multiplies = 0usize;
            for m in w.iter().map(|v| v.unsigned_abs()).filter(|&m| m != 0) {
                multiplies += usize::from(
                    *forms.entry(m).or_insert_with(|| ProductForm::of(m, &rules).multipliers > 0),
                );
            }
            let choice = if multiplies == 0 { "shift_add" } else { "multiply" };
            cx.notes.push(format!(
                "%{name}: {choice} ({multiplies} of {} weights need a multiplier under --target asic)",
                w.len()
            ));
            if multiplies == 0 {
                q.datapath = Some("shift_add");
                changed = true;
            }
        }
        Ok(changed)
    }
}

fn quant_mut(op: &mut Op) -> Option<&mut LayerQuant> {
    match op {
        Op::IntConv1d(c) => Some(&mut c.quant),
        Op::IntLinear(l) => Some(&mut l.quant),
        _ => None,
    }
}
