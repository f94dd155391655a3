//! The rules over the network graph (batch-norm folding, and ReLU into a
//! requant's clamp at the end): each batch-norm rule, applied alone (with
//! the rules it needs to leave no batch norm), keeps the float outputs on
//! random parameters and inputs; and a deliberately wrong version of each is
//! caught by the same check, so the check can fail.

mod common;

use common::{dataset, random_store};
use egg::rewrite as rw;
use potc::eqsat::net::{rewrite, NetLimits, NetRewrite};
use potc::interp::Plan;
use potc::ir::op::Op;
use potc::ir::Graph;
use potc::pass::ParamStore;
use potc::passes::rules::batch_norm::{all, Fold};
use potc::syntax;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Each rule with a model its left side matches, and the other rules it
/// needs for extraction to remove every batch norm.
const CASES: &[(&str, &[&str], &str)] = &[
    (
        "fold-into-conv",
        &[],
        "model m(%x: [2, 12]) {\n  %c = conv1d(%x) {out_channels = 3, kernel = 3}\n  \
         %b = batch_norm(%c)\n  return %b\n}\n",
    ),
    (
        "fold-into-linear",
        &[],
        "model m(%x: [5]) {\n  %l = linear(%x) {out_features = 3}\n  %b = batch_norm(%l)\n  return %b\n}\n",
    ),
    (
        "fold-into-both-branches",
        &[],
        "model m(%x: [3, 12]) {\n  %c1 = conv1d(%x) {out_channels = 3, kernel = 3, padding = same}\n  \
         %c2 = conv1d(%x) {out_channels = 3, kernel = 1}\n  %s = add(%c1, %c2)\n  \
         %b = batch_norm(%s)\n  return %b\n}\n",
    ),
    (
        "bn-through-gap",
        &["fold-into-next-linear"],
        "model m(%x: [3, 12]) {\n  %r = relu(%x)\n  %b = batch_norm(%r)\n  %g = global_avg_pool(%b)\n  \
         %y = linear(%g) {out_features = 2}\n  return %y\n}\n",
    ),
    (
        "fold-into-next-linear",
        &[],
        "model m(%x: [3, 12]) {\n  %g = global_avg_pool(%x)\n  %b = batch_norm(%g)\n  \
         %y = linear(%b) {out_features = 2}\n  return %y\n}\n",
    ),
    (
        "bn-to-depthwise",
        &[],
        "model m(%x: [3, 12]) {\n  %r = relu(%x)\n  %b = batch_norm(%r)\n  return %b\n}\n",
    ),
];

/// A wrong version of each rule: the mistake a careless edit would make.
fn mutant(name: &str) -> NetRewrite {
    match name {
        "fold-into-conv" => rw!("fold-into-conv"; "(bn ?k (conv ?c ?x ?w ?b))"
            => "(conv ?c ?x (fold-w ?w ?k) ?b)"),
        "fold-into-linear" => rw!("fold-into-linear"; "(bn-features ?k (linear ?l ?x ?w ?b))"
            => "(linear ?l ?x ?w (fold-b ?b ?k))"),
        "fold-into-both-branches" => rw!("fold-into-both-branches";
            "(bn ?k (add ?a (conv ?c1 ?x ?w1 ?b1) (conv ?c2 ?y ?w2 ?b2)))"
            => "(add ?a (conv ?c1 ?x (fold-w ?w1 ?k) (fold-b ?b1 ?k)) (conv ?c2 ?y (fold-w ?w2 ?k) (fold-b ?b2 ?k)))"),
        "bn-through-gap" => rw!("bn-through-gap"; "(gap ?g (bn ?k ?x))" => "(gap ?g ?x)"),
        "fold-into-next-linear" => {
            rw!("fold-into-next-linear"; "(linear ?l (bn-features ?k ?f) ?w ?b)"
            => "(linear ?l ?f (in-scale-w ?w ?k) ?b)")
        }
        "bn-to-depthwise" => rw!("bn-to-depthwise"; "(bn ?k ?x)"
            => "(depthwise ?k ?x (fold-w ones ?k) zero)"),
        _ => panic!("no mutant of {name}"),
    }
}

fn rule(name: &str) -> NetRewrite {
    all(Fold::All).into_iter().find(|r| r.name.as_str() == name).unwrap_or_else(|| panic!("{name}"))
}

fn outputs(g: &Graph, store: &ParamStore, x: &[f32], n: usize) -> Vec<f32> {
    let plan = Plan::new(g).unwrap_or_else(|e| panic!("{e}"));
    let w: Vec<Vec<f32>> = plan
        .params
        .iter()
        .map(|p| {
            store
                .get(&p.name)
                .unwrap_or_else(|| panic!("no {} in {:?}", p.name, store.keys()))
                .1
                .clone()
        })
        .collect();
    let (c, l) = plan.input_dims;
    potc::train::evaluate(&plan, &w, &dataset(x.to_vec(), n, c, l), 1).logits
}

/// The largest output difference after rewriting `text` with `rules`,
/// relative to the outputs' size, over random parameters and inputs; and
/// whether every batch norm is gone.
fn worst_error(text: &str, rules: &[NetRewrite], seed: u64) -> (f32, bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = syntax::parse(text).unwrap();
    let store = random_store(&g, &mut rng);
    let (mut h, mut folded) = (g.clone(), store.clone());
    rewrite(&mut h, Some(&mut folded), rules, NetLimits::default()).unwrap();
    potc::ir::verify(&h).unwrap();
    let no_bn = h.node_ids().all(|n| !matches!(h.node(n).op, Op::BatchNorm(_)));
    let input = g.node(g.inputs()[0]).ty.elements() as usize;
    let n = 4;
    let x: Vec<f32> = (0..n * input).map(|_| rng.random_range(-2.0..2.0)).collect();
    let (before, after) = (outputs(&g, &store, &x, n), outputs(&h, &folded, &x, n));
    let scale = before.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let err = before.iter().zip(&after).map(|(a, b)| (a - b).abs() / scale).fold(0.0, f32::max);
    (err, no_bn)
}

#[test]
fn every_rule_keeps_the_outputs_and_removes_the_batch_norm() {
    let names: Vec<String> = all(Fold::All).iter().map(|r| r.name.to_string()).collect();
    for name in &names {
        assert!(CASES.iter().any(|c| c.0 == name), "rule {name} has no case here");
    }
    for (name, support, text) in CASES {
        let mut rules: Vec<NetRewrite> = support.iter().map(|s| rule(s)).collect();
        rules.push(rule(name));
        for seed in 0..20 {
            let (err, no_bn) = worst_error(text, &rules, seed);
            assert!(no_bn, "{name}: a batch norm is left");
            assert!(err <= 1e-5, "{name}, seed {seed}: outputs differ by {err}");
        }
    }
}

#[test]
fn a_wrong_rule_is_caught() {
    for (name, support, text) in CASES {
        let mut rules: Vec<NetRewrite> = support.iter().map(|s| rule(s)).collect();
        rules.push(mutant(name));
        let caught = (0..20).any(|seed| worst_error(text, &rules, seed).0 > 1e-3);
        assert!(caught, "the wrong {name} went unnoticed");
    }
}

#[test]
fn keep_pairs_leaves_conv_batch_norm_pairs() {
    let text = CASES[0].2;
    let g = syntax::parse(text).unwrap();
    let mut h = g.clone();
    let report = rewrite(&mut h, None, &all(Fold::KeepPairs), NetLimits::default()).unwrap();
    assert!(!report.changed);
    assert_eq!(h, g);
}

/// `relu-into-clamp` over an integer program: `requant(relu(x))` into an
/// unsigned type is `requant(x)` on every input and shift; the rule without
/// its condition (fusing before a signed requant) changes the integers.
#[test]
fn relu_into_clamp_keeps_the_integers_and_a_wrong_one_is_caught() {
    use potc::backend::interp::IntInterpreter;
    use potc::pass::IntStore;
    use potc::passes::rules::requant;
    let program = |signed: bool| {
        let ty = if signed { "i4" } else { "u4" };
        format!(
            "model m(%x: i8[2, 6]) {{\n  %r = relu(%x) : i8[2, 6]\n  \
             %q = requant(%r) {{bits = 4, signed = {signed}}} : {ty}[2, 6]\n  return %q\n}}\n"
        )
    };
    let run = |g: &Graph, ints: &IntStore, x: &[i64]| IntInterpreter::new(g, ints).unwrap().run(x);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mutant = rw!("relu-into-clamp"; "(requant ?q (relu ?r ?x))" => "(requant ?q ?x)");
    let (mut caught, mut fused) = (false, 0);
    for _ in 0..40 {
        let mut ints = IntStore::new();
        let shifts: Vec<i32> = (0..2).map(|_| rng.random_range(-3..=5)).collect();
        ints.insert("q.shift".into(), (vec![2], shifts));
        let x: Vec<i64> = (0..12).map(|_| rng.random_range(-128..=127)).collect();
        for signed in [false, true] {
            let g = syntax::parse(&program(signed)).unwrap();
            let want = run(&g, &ints, &x);
            let rules = if signed {
                vec![mutant.clone()]
            } else {
                requant::net(["q".into()].into_iter().collect())
            };
            let mut h = g.clone();
            let report = rewrite(&mut h, None, &rules, NetLimits::default()).unwrap();
            assert!(report.changed && h.len() == g.len() - 1, "{}", potc::ir::print(&h));
            let got = run(&h, &ints, &x);
            if signed {
                caught |= got != want;
            } else {
                assert_eq!(got, want, "{}", potc::ir::print(&h));
                fused += 1;
            }
        }
    }
    assert!(fused == 40 && caught, "the wrong rule went unnoticed");
}
