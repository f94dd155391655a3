//! Meaning-preserving passes keep values, not only signatures: on random
//! networks and inputs, the model before and after each such pass computes
//! the same outputs: within f32 rounding on float graphs (`canonicalize`,
//! `fold-bn`, `fold-lone-bn`), exactly on integer programs (`fuse-requant`,
//! `select-datapath`).

mod common;

use common::{dataset, network, quantize, random_config, random_inputs, random_store};
use potc::backend::interp::IntInterpreter;
use potc::interp::Plan;
use potc::ir::Graph;
use potc::pass::{IntStore, ParamStore, PassContext, PassManager, Semantics};
use potc::passes::registry;
use potc::syntax;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CASES: usize = 150;

/// The float outputs of `g` with parameters `store` on the samples `x`.
fn float_outputs(g: &Graph, store: &ParamStore, x: &[f32], n: usize) -> Vec<f32> {
    let plan = Plan::new(g).unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<Vec<f32>> = plan.params.iter().map(|p| store[&p.name].1.clone()).collect();
    let (c, l) = plan.input_dims;
    potc::train::evaluate(&plan, &w, &dataset(x.to_vec(), n, c, l), 1).logits
}

/// Runs the one pass `name` on copies of `g` and `store`.
fn run_pass(name: &str, g: &Graph, store: &ParamStore) -> (Graph, ParamStore, bool) {
    let (mut g, mut store) = (g.clone(), store.clone());
    let reg = registry();
    let pipeline = reg.pipeline(name).unwrap();
    let mut changed = false;
    let mut cx = PassContext { weights: Some(&mut store), ..Default::default() };
    PassManager { allow_meaning_changes: false }
        .run(&pipeline, &mut g, &mut cx, |r| changed |= r.changed)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (g, store, changed)
}

/// Equal within f32 rounding of the values' own size.
fn assert_close(before: &[f32], after: &[f32], what: &str) {
    assert_eq!(before.len(), after.len(), "{what}");
    let scale = before.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    for (i, (a, b)) in before.iter().zip(after).enumerate() {
        assert!((a - b).abs() <= 1e-4 * scale, "{what}: output {i}: {a} before, {b} after");
    }
}

/// `text` with, half of the time, what `canonicalize` and `fold-lone-bn`
/// rewrite put in front of the network: dropout, a relu of a relu, a
/// pooling of kernel 1, a batch norm after a relu, and a dead op.
fn decorated(text: String, rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.5) {
        return text;
    }
    let (header, body) = text.split_once('\n').unwrap();
    let body = body.replace("(%x)", "(%xb)").replace(", %x)", ", %xb)");
    format!(
        "{header}\n  %xd = dropout(%x) {{p = 0.25}}\n  %xr = relu(%xd)\n  %xrr = relu(%xr)\n  \
         %xp = max_pool1d(%xrr) {{kernel = 1}}\n  %xb = batch_norm(%xp)\n  %dead = relu(%x)\n{body}"
    )
}

#[test]
fn float_passes_keep_the_outputs() {
    let reg = registry();
    let float_passes: Vec<&str> = reg
        .iter()
        .filter(|p| p.semantics() == Semantics::Preserving && !INTEGER_PASSES.contains(&p.name()))
        .map(|p| p.name())
        .collect();
    assert_eq!(float_passes, ["canonicalize", "fold-bn", "fold-lone-bn"]);
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let mut changed = std::collections::BTreeMap::<&str, usize>::new();
    for case in 0..CASES {
        let text = decorated(network(&mut rng), &mut rng);
        let g = syntax::parse(&text).unwrap_or_else(|e| panic!("{text}\n{e:?}"));
        let store = random_store(&g, &mut rng);
        let n = 3;
        let (c, l) = Plan::new(&g).unwrap().input_dims;
        let x: Vec<f32> = (0..n * c * l).map(|_| rng.random_range(-2.0..2.0)).collect();
        let before = float_outputs(&g, &store, &x, n);
        // Each pass on the model as written, and after canonicalization (the
        // form the folds usually meet).
        let (canonical, canonical_store, _) = run_pass("canonicalize", &g, &store);
        for (start, start_store) in [(&g, &store), (&canonical, &canonical_store)] {
            for &pass in &float_passes {
                let (after_g, after_store, did) = run_pass(pass, start, start_store);
                let after = float_outputs(&after_g, &after_store, &x, n);
                assert_close(&before, &after, &format!("case {case}, {pass}:\n{text}"));
                *changed.entry(pass).or_default() += usize::from(did);
            }
        }
    }
    // The passes really rewrote many of the networks.
    for pass in float_passes {
        assert!(changed.get(pass).copied().unwrap_or(0) >= CASES / 10, "{pass}: {changed:?}");
    }
}

/// The meaning-preserving passes on integer programs.
const INTEGER_PASSES: [&str; 2] = ["fuse-requant", "select-datapath"];

#[test]
fn integer_passes_keep_the_integers() {
    let mut rng = ChaCha8Rng::seed_from_u64(43);
    let (mut ran, mut changed) = (0, [0usize; 2]);
    for _ in 0..CASES {
        let g = syntax::parse(&network(&mut rng)).unwrap();
        let cfg = random_config(&mut rng);
        let (q, mut store) = quantize(&g, &cfg, &mut rng);
        let mut ints = IntStore::new();
        let mut lowered = q.clone();
        let mut cx = PassContext {
            weights: Some(&mut store),
            ints: Some(&mut ints),
            acc_bits: Some(32),
            ..Default::default()
        };
        let reg = registry();
        let lower = reg.pipeline("lower-int").unwrap();
        let manager = PassManager { allow_meaning_changes: false };
        match manager.run(&lower, &mut lowered, &mut cx, |_| {}) {
            Err(e) if e.to_string().contains("accumulator") => continue,
            r => r.unwrap(),
        }
        let before = potc::program::IntProgram {
            graph: lowered.clone(),
            tensors: ints.clone(),
            labels: vec![],
        };
        let x = random_inputs(&before, 4, &mut rng);
        let want = IntInterpreter::new(&before.graph, &before.tensors).unwrap().run(&x);
        for (i, name) in INTEGER_PASSES.into_iter().enumerate() {
            let pipeline = reg.pipeline(name).unwrap();
            let (mut after_g, mut after_ints) = (lowered.clone(), ints.clone());
            let mut cx = PassContext {
                ints: Some(&mut after_ints),
                target: potc::eqsat::Target::Asic,
                ..Default::default()
            };
            let mut did = false;
            manager.run(&pipeline, &mut after_g, &mut cx, |r| did |= r.changed).unwrap();
            let got = IntInterpreter::new(&after_g, &after_ints).unwrap().run(&x);
            assert_eq!(want, got, "{name}");
            changed[i] += usize::from(did);
        }
        ran += 1;
    }
    assert!(ran >= CASES / 2, "ran {ran}");
    for (name, n) in INTEGER_PASSES.iter().zip(changed) {
        assert!(n >= CASES / 10, "{name} changed {n} of {ran}");
    }
}
