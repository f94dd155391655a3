//! The model's C source: every tensor a `static const` array in the
//! narrowest type that holds it, one static function per op in program
//! order (each under a comment with its IR line), static buffers reused by
//! liveness, and `<model>_run`. Integer arithmetic only: loop bounds and
//! window tables are computed here, so the C code has no division.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use super::ctype::{comment, i32_lit, ident, CType};
use crate::ir::{Graph, NodeId};
use crate::program::IntProgram;

/// Shift amounts are clamped to this in the shift tables. The operands of a
/// shift are integers of at most 32 bits (`|x| < 2^32`), so every right
/// shift by 33 or more rounds to 0 and every left shift by 33 or more of a
/// nonzero value leaves the range of every (at most 32-bit) result type;
/// 62 keeps `x + 2^(k-1)` and `x * 2^k` inside `int64_t`.
const MAX_SHIFT: i64 = 62;

/// The C type of the program's input (the narrowest holding its IR type).
pub fn input_ctype(p: &IntProgram) -> Result<CType, String> {
    CType::of(p.input().0)
}

/// The C type of the outputs: `int32_t`, or `int64_t` for an output type
/// beyond its range (`u32`).
pub fn output_ctype(p: &IntProgram) -> Result<CType, String> {
    let out = p.graph.output().ok_or("the program has no `return`")?;
    let (lo, hi) = p.graph.node(out).ty.elem.range().ok_or("the output is not an integer")?;
    let (ilo, ihi) = CType::I32.range();
    Ok(if ilo <= lo && hi <= ihi { CType::I32 } else { CType::I64 })
}

/// The C helpers the ops call; each is emitted only when used (an unused
/// static function is a warning, and the build uses `-Werror`).
#[derive(Default)]
pub(super) struct Helpers {
    pub clamp: bool,
    pub shl_sat: bool,
    pub shift_round: bool,
}

const HELPER_ASR: &str = "\
/* x >> k for 0 <= k <= 63, rounding toward minus infinity (an arithmetic
   shift). C99 leaves >> of a negative value implementation-defined; with
   ~x = -x - 1 >= 0 this form is exact on every compiler. */
static int64_t potc_asr(int64_t x, int k)
{
    return x >= 0 ? x >> k : ~(~x >> k);
}
";

const HELPER_SHL_SAT: &str = "\
/* x << s for 0 <= s <= 62, saturating at the int64_t range instead of
   overflowing (a left shift of a negative value is undefined in C99, so
   this multiplies once the product is known to fit). */
static int64_t potc_shl_sat(int64_t x, int s)
{
    const int64_t lim = INT64_MAX >> s;
    if (x > lim) {
        return INT64_MAX;
    }
    if (x < -lim - 1) {
        return INT64_MIN;
    }
    return x * ((int64_t)1 << s);
}
";

const HELPER_SHIFT_ROUND: &str = "\
/* The IR's shift_round: (x + 2^(k-1)) >> k, rounding half up, for k > 0;
   x << -k, saturating, for k <= 0. |x| < 2^33 and -62 <= k <= 62, so the
   rounding add cannot overflow. */
static int64_t potc_shift_round(int64_t x, int k)
{
    if (k > 0) {
        return potc_asr(x + ((int64_t)1 << (k - 1)), k);
    }
    return potc_shl_sat(x, -k);
}
";

const HELPER_CLAMP: &str = "\
/* x clamped to lo..hi: saturation to a value's integer type. */
static int64_t potc_clamp(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}
";

/// One static buffer: its type and the most elements a value placed in it holds.
struct Buffer {
    ctype: CType,
    len: usize,
    name: String,
}

/// Collects the model file's tables and op functions (the ops are in `ops.rs`).
pub(super) struct Emitter<'a> {
    pub p: &'a IntProgram,
    pub helpers: Helpers,
    /// `static const` tables, in program order.
    pub tables: String,
    /// The op functions, in program order.
    pub funcs: String,
}

/// The model's `.c` file. `prefix` names the public symbols (`<prefix>_run`,
/// `<prefix>_labels`), `header` is the header's file name.
pub fn source(p: &IntProgram, prefix: &str, header: &str) -> Result<String, String> {
    let g = &p.graph;
    let [input] = g.inputs() else {
        return Err(format!(
            "an integer program has one input; `{}` has {}",
            g.name,
            g.inputs().len()
        ));
    };
    let input = *input;
    let out_id = g.output().ok_or("the program has no `return`")?;
    let order = g.order().map_err(|_| "the graph has a cycle".to_string())?;
    let ops: Vec<NodeId> = order.iter().copied().filter(|&id| id != input).collect();

    // C names for the values, unique after `.` and friends became `_`.
    let mut taken = HashSet::new();
    let mut names: HashMap<NodeId, String> = HashMap::new();
    for &id in &order {
        let base = ident(&g.node(id).name);
        let mut name = base.clone();
        let mut n = 2;
        while !taken.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.insert(id, name);
    }
    // The printer's line of every op, for the comments.
    let text = crate::ir::print(g);
    let lines: Vec<String> =
        text.lines().skip(1).take(ops.len()).map(|l| comment(l.trim())).collect();

    // Liveness: the index of the last op reading each value.
    let mut last_use: HashMap<NodeId, usize> = HashMap::new();
    for (i, &id) in ops.iter().enumerate() {
        for o in g.operands(id) {
            last_use.insert(o, i);
        }
    }
    last_use.insert(out_id, usize::MAX);

    let mut e =
        Emitter { p, helpers: Helpers::default(), tables: String::new(), funcs: String::new() };
    let mut bufs: Vec<Buffer> = vec![];
    let mut free: Vec<usize> = vec![];
    let mut loc: HashMap<NodeId, Option<usize>> = HashMap::new();
    loc.insert(input, None);
    let expr = |loc: &HashMap<NodeId, Option<usize>>, bufs: &[Buffer], id: NodeId| match loc[&id] {
        None => "input".to_string(),
        Some(b) => bufs[b].name.clone(),
    };
    let mut calls = String::new();
    for (i, &id) in ops.iter().enumerate() {
        let node = g.node(id);
        let ct = CType::of(node.ty.elem)?;
        let len = node.ty.elements() as usize;
        let b = take_buffer(&mut bufs, &mut free, ct, len);
        loc.insert(id, Some(b));
        let operands = g.operands(id);
        let fname = format!("op_{}", names[&id]);
        e.op(&fname, &lines[i], id, &names[&id])?;
        let args: Vec<String> = operands.iter().map(|&o| expr(&loc, &bufs, o)).collect();
        let _ = writeln!(calls, "    {fname}({}, {});", args.join(", "), bufs[b].name);
        let mut seen = HashSet::new();
        for o in operands {
            if seen.insert(o) && last_use.get(&o) == Some(&i) {
                if let Some(Some(ob)) = loc.get(&o) {
                    free.push(*ob);
                }
            }
        }
        if !last_use.contains_key(&id) {
            free.push(b); // a value nothing reads
        }
    }

    let out_c = output_ctype(p)?;
    let in_c = input_ctype(p)?;
    let out_len = g.node(out_id).ty.elements();
    let mut s = String::new();
    let title = format!("Generated by potc from the integer program `{}`.", g.name);
    let _ = writeln!(s, "/* {} Integers only: no floating point, no division. */", comment(&title));
    let _ = writeln!(s, "#include \"{header}\"\n");
    let helpers = [
        (e.helpers.shift_round, HELPER_ASR),
        (e.helpers.shl_sat || e.helpers.shift_round, HELPER_SHL_SAT),
        (e.helpers.shift_round, HELPER_SHIFT_ROUND),
        (e.helpers.clamp, HELPER_CLAMP),
    ];
    for (used, text) in helpers {
        if used {
            let _ = writeln!(s, "{text}");
        }
    }
    if !p.labels.is_empty() {
        let labels: Vec<String> = p.labels.iter().map(|l| super::ctype::string(l)).collect();
        let _ = writeln!(
            s,
            "const char *const {prefix}_labels[{}] = {{{}}};\n",
            p.labels.len(),
            labels.join(", ")
        );
    }
    s.push_str("/* Parameters. */\n");
    s.push_str(&e.tables);
    s.push_str("\n/* Values, one static buffer per value alive at a time. */\n");
    for b in &bufs {
        let _ = writeln!(s, "static {} {}[{}];", b.ctype.name(), b.name, b.len);
    }
    s.push('\n');
    s.push_str(&e.funcs);
    let _ = writeln!(
        s,
        "void {prefix}_run(const {} *input, {} *output)\n{{",
        in_c.name(),
        out_c.name()
    );
    s.push_str(&calls);
    let src = expr(&loc, &bufs, out_id);
    let _ = writeln!(
        s,
        "    for (int32_t i = 0; i < {out_len}; i++) {{\n        output[i] = ({}){src}[i];\n    }}\n}}",
        out_c.name()
    );
    Ok(s)
}

/// A free buffer of type `ct` (the smallest that holds `len`, else the
/// largest, grown), or a new one.
fn take_buffer(bufs: &mut Vec<Buffer>, free: &mut Vec<usize>, ct: CType, len: usize) -> usize {
    let fits = |b: &usize| bufs[*b].ctype == ct && bufs[*b].len >= len;
    let pick = free.iter().copied().filter(fits).min_by_key(|&b| bufs[b].len).or_else(|| {
        free.iter().copied().filter(|&b| bufs[b].ctype == ct).max_by_key(|&b| bufs[b].len)
    });
    match pick {
        Some(b) => {
            free.retain(|&f| f != b);
            bufs[b].len = bufs[b].len.max(len);
            b
        }
        None => {
            let n = bufs.iter().filter(|b| b.ctype == ct).count();
            bufs.push(Buffer { ctype: ct, len, name: format!("buf_{}_{n}", ct.tag()) });
            bufs.len() - 1
        }
    }
}

impl<'a> Emitter<'a> {
    pub(super) fn graph(&self) -> &Graph {
        &self.p.graph
    }

    /// The tensor `<node>.<slot>`.
    pub(super) fn tensor(&self, node: &str, slot: &str) -> Result<&'a [i32], String> {
        let p: &'a IntProgram = self.p;
        let name = format!("{node}.{slot}");
        p.tensors.get(&name).map(|(_, v)| v.as_slice()).ok_or(format!("missing tensor `{name}`"))
    }

    /// Appends `static const T name[n] = {...};`, `row` values per group of lines.
    pub(super) fn table(&mut self, ct: CType, name: &str, what: &str, values: &[i64], row: usize) {
        let _ = writeln!(self.tables, "/* {} */", comment(what));
        let _ = writeln!(self.tables, "static const {} {name}[{}] = {{", ct.name(), values.len());
        for r in values.chunks(row.max(1)) {
            for line in r.chunks(16) {
                let nums: Vec<String> = line.iter().map(|&v| i32_lit(v)).collect();
                let _ = writeln!(self.tables, "    {},", nums.join(", "));
            }
        }
        self.tables.push_str("};\n");
    }

    /// A tensor's values as a table in the narrowest signed type that holds them.
    pub(super) fn values_table(&mut self, name: &str, what: &str, v: &[i32], row: usize) -> CType {
        let v: Vec<i64> = v.iter().map(|&x| i64::from(x)).collect();
        let (lo, hi) = (v.iter().copied().min().unwrap_or(0), v.iter().copied().max().unwrap_or(0));
        let ct = CType::holding(lo, hi, false);
        self.table(ct, name, what, &v, row);
        ct
    }

    /// The per-channel shift table of value `cname` (int8_t, clamped to
    /// ±MAX_SHIFT, see there); returns its name.
    pub(super) fn shift_table(&mut self, cname: &str, what: &str, v: &[i32]) -> String {
        let v: Vec<i64> = v.iter().map(|&k| i64::from(k).clamp(-MAX_SHIFT, MAX_SHIFT)).collect();
        let name = format!("shift_{cname}");
        self.table(CType::I8, &name, what, &v, 16);
        name
    }
}
