//! Helpers shared by the lowering and JIT tests: random networks, random
//! parameters, the quantized graph and its integer program.
#![allow(dead_code)]

use std::process::{Command, Output};

use potc::data::Dataset;
use potc::ir::Graph;
use potc::pass::{ParamStore, PassContext, PassManager};
use potc::passes::registry;
use potc::program::{CheckedProgram, IntProgram};
use potc::quant::QuantConfig;
use potc::syntax;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// A small random float network, as `.pot` text: conv blocks (random
/// geometry, optional batch norm, ReLU, max pooling, residual adds, some
/// unsigned, some with a projection shortcut and a batch norm after the add),
/// then global average pooling (with a batch norm before or after it) or
/// flattening and a linear classifier; adds and pooling may set their
/// quantizer's `a_bits`.
pub fn network(rng: &mut ChaCha8Rng) -> String {
    let (c0, l0) = (rng.random_range(1..=3usize), rng.random_range(4..=20usize));
    let mut text = format!("model r(%x: [{c0}, {l0}]) {{\n");
    let (mut cur, mut c, mut l) = ("x".to_string(), c0, l0);
    for b in 0..rng.random_range(1..=3) {
        let residual = rng.random_bool(0.3);
        let out = if residual { c } else { rng.random_range(1..=5usize) };
        let kernel = rng.random_range(1..=4usize).min(l);
        let (stride, dilation) = if residual {
            (1, 1)
        } else {
            (rng.random_range(1..=2usize), rng.random_range(1..=2usize))
        };
        let span = dilation * (kernel - 1) + 1;
        let pad = if stride == 1 && (residual || rng.random_bool(0.5)) {
            "same".to_string()
        } else {
            let p = rng.random_range(0..=kernel / 2);
            if l + 2 * p < span {
                format!("[{}, {}]", span, span)
            } else {
                format!("[{p}, {p}]")
            }
        };
        let groups = if c == out && c > 1 && rng.random_bool(0.3) { c } else { 1 };
        let bias = rng.random_bool(0.7);
        text += &format!(
            "  %c{b} = conv1d(%{cur}) {{out_channels = {out}, kernel = {kernel}, stride = {stride}, \
             padding = {pad}, dilation = {dilation}, groups = {groups}, bias = {bias}}}\n"
        );
        let mut v = format!("c{b}");
        if rng.random_bool(0.6) {
            text += &format!("  %n{b} = batch_norm(%{v})\n");
            v = format!("n{b}");
        }
        if residual {
            // A ReLU on the branch makes the sum unsigned when the skip
            // input is non-negative too (a ReLU'd block, maybe pooled).
            if rng.random_bool(0.6) {
                text += &format!("  %q{b} = relu(%{v})\n");
                v = format!("q{b}");
            }
            // The skip path: the block's input, or a 1x1 projection (then a
            // batch norm after the add can fold into both convolutions).
            let mut skip = cur.clone();
            if rng.random_bool(0.4) {
                text += &format!("  %k{b} = conv1d(%{cur}) {{out_channels = {c}, kernel = 1}}\n");
                skip = format!("k{b}");
            }
            text += &format!("  %s{b} = add(%{v}, %{skip}){}\n", a_bits(rng));
            v = format!("s{b}");
            if rng.random_bool(0.4) {
                text += &format!("  %m{b} = batch_norm(%{v})\n");
                v = format!("m{b}");
            }
        }
        if rng.random_bool(0.7) {
            text += &format!("  %r{b} = relu(%{v})\n");
            v = format!("r{b}");
        }
        let g = syntax::parse(&(text.clone() + &format!("  return %{v}\n}}\n"))).expect("valid");
        let (cc, ll) = g.node(g.output().unwrap()).ty.sequence().unwrap();
        (c, l) = (cc, ll);
        if l >= 4 && rng.random_bool(0.3) {
            text += &format!("  %p{b} = max_pool1d(%{v}) {{kernel = 2}}\n");
            v = format!("p{b}");
            l /= 2;
        }
        cur = v;
    }
    let classes = rng.random_range(2..=4);
    if rng.random_bool(0.6) {
        // A batch norm before the pooling or on the pooled features folds
        // into the linear layer.
        if rng.random_bool(0.2) {
            text += &format!("  %gb = batch_norm(%{cur})\n");
            cur = "gb".to_string();
        }
        text += &format!("  %g = global_avg_pool(%{cur}){}\n", a_bits(rng));
        if rng.random_bool(0.25) {
            text += "  %gn = batch_norm(%g)\n";
            return text
                + &format!("  %y = linear(%gn) {{out_features = {classes}}}\n  return %y\n}}\n");
        }
    } else {
        text += &format!("  %g = flatten(%{cur})\n");
    }
    text + &format!("  %y = linear(%g) {{out_features = {classes}}}\n  return %y\n}}\n")
}

/// ` {a_bits = N}` (2..=10) half of the time, else nothing.
fn a_bits(rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.5) {
        format!(" {{a_bits = {}}}", rng.random_range(2..=10))
    } else {
        String::new()
    }
}

/// Random float parameters for every parameter of `g` (batch norm with
/// positive variances), then random thresholds for the quantizers.
pub fn random_store(g: &Graph, rng: &mut ChaCha8Rng) -> ParamStore {
    g.params()
        .into_iter()
        .map(|(name, p)| {
            let n: usize = p.shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| match p.slot {
                    "var" => rng.random_range(0.05..4.0),
                    "gamma" => rng.random_range(-2.0..2.0),
                    "log2t" | "w_log2t" => rng.random_range(-3.0..4.0),
                    _ => rng.random_range(-1.5..1.5),
                })
                .collect();
            (name, (p.shape, v))
        })
        .collect()
}

/// `g` quantized (`canonicalize,fold-bn,insert-fake-quant`) with its folded
/// parameters and random thresholds.
pub fn quantize(g: &Graph, cfg: &QuantConfig, rng: &mut ChaCha8Rng) -> (Graph, ParamStore) {
    let mut store = random_store(g, rng);
    let reg = registry();
    let pipeline = reg.pipeline("canonicalize,fold-bn,insert-fake-quant").unwrap();
    let mut q = g.clone();
    let mut cx =
        PassContext { weights: Some(&mut store), quant: Some(cfg.clone()), ..Default::default() };
    PassManager { allow_meaning_changes: true }.run(&pipeline, &mut q, &mut cx, |_| {}).unwrap();
    for (name, (shape, v)) in random_store(&q, rng) {
        store.entry(name).or_insert((shape, v));
    }
    (q, store)
}

/// A random network (`network`) quantized with `cfg(rng)` (`quantize`) and
/// lowered with `acc_bits`: the quantized graph, its parameters and the
/// program. `None` when an accumulator cannot fit (that refusal has its own
/// test); any other lowering error fails the test.
pub fn random_program(
    rng: &mut ChaCha8Rng,
    cfg: impl FnOnce(&mut ChaCha8Rng) -> QuantConfig,
    acc_bits: usize,
) -> Option<(Graph, ParamStore, CheckedProgram)> {
    let text = network(rng);
    let g = syntax::parse(&text).unwrap_or_else(|e| panic!("{text}\n{e:?}"));
    let cfg = cfg(rng);
    let (q, store) = quantize(&g, &cfg, rng);
    match lower(&q, &store, acc_bits) {
        Ok(p) => Some((q, store, p)),
        Err(e) if e.contains("accumulator") => None,
        Err(e) => panic!("{text}\n{e}"),
    }
}

/// The integer program of a quantized graph, or the lowering error.
pub fn lower(q: &Graph, store: &ParamStore, acc_bits: usize) -> Result<CheckedProgram, String> {
    let (mut g, mut store) = (q.clone(), store.clone());
    let tensors =
        potc::driver::lower_graph(&mut g, &mut store, acc_bits, potc::eqsat::Target::Cpu, |_| {})?;
    IntProgram { graph: g, tensors, labels: vec![] }.checked().map_err(|e| e.to_string())
}

pub fn dataset(x: Vec<f32>, n: usize, channels: usize, length: usize) -> Dataset {
    Dataset {
        x,
        y: vec![0; n],
        n,
        channels,
        length,
        labels: (0..8).map(|i| i.to_string()).collect(),
        origin: (0..n).collect(),
        path: "random".into(),
    }
}

pub fn random_config(rng: &mut ChaCha8Rng) -> QuantConfig {
    let w = rng.random_range(2..=8);
    let a = rng.random_range(2..=10);
    let mut cfg = QuantConfig::parse(&format!("w{w}a{a}")).unwrap();
    cfg.per_channel = rng.random_bool(0.5);
    set_random_format(&mut cfg, rng);
    if rng.random_bool(0.5) {
        cfg.set_input_bits(rng.random_range(2..=10)).unwrap();
    }
    cfg
}

/// Power-of-two weights in 2 of 10 configurations and additive powers of
/// two in 2 more, where the width allows.
pub fn set_random_format(cfg: &mut QuantConfig, rng: &mut ChaCha8Rng) {
    match rng.random_range(0..10) {
        0 | 1 => cfg.pot_weights = cfg.w_bits <= 5,
        2 | 3 => cfg.apot_weights = cfg.w_bits <= 6,
        _ => {}
    }
}

/// The `potc` binary run from the project root.
pub fn potc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_potc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// Standard output of a run that must succeed.
pub fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// One JSON object.
pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// Random input integers of a program's input type for `n` samples, half of
/// them at the type's extremes (so clamps and shifts saturate).
pub fn random_inputs(p: &IntProgram, n: usize, rng: &mut ChaCha8Rng) -> Vec<i64> {
    let input = p.input_type();
    let (lo, hi) = input.elem.range().unwrap();
    let len = n * input.elements() as usize;
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => lo,
            1 => hi,
            _ => rng.random_range(lo..=hi),
        })
        .collect()
}

/// A hand-written integer program: its text and tensors, the input's and
/// output's exponents 0, checked as the loader checks.
pub fn int_program(text: &str, tensors: &[(&str, Vec<usize>, Vec<i32>)]) -> CheckedProgram {
    let graph = syntax::parse(text).unwrap_or_else(|e| panic!("{text}\n{e:?}"));
    let mut t = potc::pass::IntStore::new();
    for (name, shape, v) in tensors {
        t.insert(name.to_string(), (shape.clone(), v.clone()));
    }
    let input = graph.node(graph.inputs()[0]).name.clone();
    let output = graph.node(graph.output().unwrap()).name.clone();
    t.insert(format!("{input}.exp"), (vec![1], vec![0]));
    t.insert(format!("{output}.exp"), (vec![1], vec![0]));
    IntProgram { graph, tensors: t, labels: vec![] }.checked().unwrap()
}

/// A convolution and a linear layer with 16-bit inputs and weights, every
/// geometry attribute set, accumulators near the i32 limit:
/// |acc| <= 32768 * (sum |w|) + |b|, 6 taps of 10000 reach 1.97e9 < 2^31.
pub fn wide_mac_program() -> CheckedProgram {
    let text = "model m(%x: i16[4, 9]) {
  %c = int_conv1d(%x) {out_channels = 4, kernel = 3, stride = 2, padding = [2, 1], dilation = 2, groups = 2, w_bits = 16} : i32[4, 4]
  %q = requant(%c) {bits = 16} : i16[4, 4]
  %f = flatten(%q) : i16[16]
  %y = int_linear(%f) {out_features = 3, w_bits = 16} : i32[3]
  return %y
}";
    int_program(
        text,
        &[
            ("c.w", vec![4, 2, 3], [10000, -10000, 10000, -10000, 10000, -9999].repeat(4)),
            ("c.b", vec![4], vec![-1000, 7, 0, 1000]),
            ("q.shift", vec![4], vec![15, 3, 0, -2]),
            ("y.w", vec![3, 16], (0..48).map(|i| (i % 7 - 3) * 2000).collect()),
            ("y.b", vec![3], vec![5, -5, 123456]),
        ],
    )
}

/// Runs `case` on `cases` random seeds as a property test (shrinking, and
/// failures saved beside `file`, as `proptest!` does), counting the seeds
/// it really ran (returned `Ok(true)`; `Ok(false)` skips one, e.g. a network
/// whose accumulator cannot fit). Fewer than `min` fails: a generator that
/// stopped producing programs must not pass by running nothing.
pub fn run_seeds(
    file: &'static str,
    cases: u32,
    min: usize,
    case: impl Fn(u64) -> Result<bool, proptest::test_runner::TestCaseError>,
) {
    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let config = Config {
        cases,
        source_file: Some(file),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    let ran = AtomicUsize::new(0);
    let result = TestRunner::new(config).run(&proptest::prelude::any::<u64>(), |seed| {
        if case(seed)? {
            ran.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let ran = ran.into_inner();
    assert!(ran >= min, "only {ran} of {cases} cases ran (at least {min} must)");
}

/// A data set under `../shared/data` (beside the repository; CI has it).
/// Missing, the test fails saying so instead of passing without checking.
pub fn shared_data(rel: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let path = root.join(rel);
    assert!(
        path.exists(),
        "{} is missing: this test needs the shared data sets in {} (as in CI)",
        path.display(),
        root.display()
    );
    path
}
