//! Equality saturation: every rule is an identity on random values, and
//! saturation of the requantization datapath extracts shifts and one clamp.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use egg::{ENodeOrVar, Id, Language, PatternAst, RecExpr, Symbol, Var};
use potc::eqsat::{eval, saturate, saturate_with, EGraph, IntExpr, Limits, Rewrite, Saturated};
use potc::passes::rules;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

const EXTREME: i64 = 1 << 40;

/// Values: zero, ±1, the extremes ±2^40, anything between, small numbers.
fn value() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(-1),
        Just(EXTREME),
        Just(-EXTREME),
        -EXTREME..=EXTREME,
        -300i64..=300,
    ]
}

/// Shift amounts: mostly 0..=30, sometimes negative (conditions must reject those).
fn shift() -> impl Strategy<Value = i64> {
    prop_oneof![3 => 0i64..=30, 1 => -30i64..=-1]
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, max_global_rejects: 20_000, ..ProptestConfig::default() }
}

fn rule(name: &str) -> Rewrite {
    let all = rules::all();
    all.into_iter().find(|r| r.name.as_str() == name).unwrap_or_else(|| panic!("no rule {name}"))
}

/// The pattern with each variable replaced by its binding.
fn instantiate(pat: &PatternAst<IntExpr>, bind: &HashMap<Var, IntExpr>) -> RecExpr<IntExpr> {
    let mut out = RecExpr::default();
    let mut ids: Vec<Id> = Vec::new();
    for node in pat.as_ref() {
        let id = match node {
            ENodeOrVar::Var(v) => out.add(bind[v].clone()),
            ENodeOrVar::ENode(n) => out.add(n.clone().map_children(|c| ids[usize::from(c)])),
        };
        ids.push(id);
    }
    out
}

/// Instantiates rule `name` (`?x` the symbol `x`; `?k`, `?a`, `?b` from
/// `shifts`; other variables from `bounds`), lets the rule itself decide
/// whether its condition holds (it must union the two sides in an e-graph
/// holding the left side), and if it does requires both sides to evaluate
/// equal and defined.
fn check(name: &str, x: i64, shifts: [i64; 3], bounds: [i64; 4]) -> Result<(), TestCaseError> {
    check_rhs(name, |rhs| rhs.clone(), x, shifts, bounds)
}

/// As [`check`], with the right side `rhs` makes of the rule's.
fn check_rhs(
    name: &str,
    rhs: impl Fn(&PatternAst<IntExpr>) -> PatternAst<IntExpr>,
    x: i64,
    shifts: [i64; 3],
    bounds: [i64; 4],
) -> Result<(), TestCaseError> {
    let r = rule(name);
    let lhs_pat = r.searcher.get_pattern_ast().expect("a pattern rule");
    let rhs_pat = &rhs(r.applier.get_pattern_ast().expect("a pattern rule"));
    let bounds_y = bounds[3];
    let (mut shifts, mut bounds) = (shifts.into_iter(), bounds.into_iter());
    let mut bind = HashMap::new();
    for node in lhs_pat.as_ref() {
        if let ENodeOrVar::Var(v) = node {
            let value = match v.to_string().as_str() {
                "?x" => IntExpr::Symbol(Symbol::from("x")),
                "?y" => IntExpr::Symbol(Symbol::from("y")),
                "?k" | "?a" | "?b" => IntExpr::Num(shifts.next().expect("three shift amounts")),
                _ => IntExpr::Num(bounds.next().expect("four bounds")),
            };
            bind.entry(*v).or_insert(value);
        }
    }
    let (lhs, rhs) = (instantiate(lhs_pat, &bind), instantiate(rhs_pat, &bind));
    let mut egraph = EGraph::default();
    let root = egraph.add_expr(&lhs);
    egraph.rebuild();
    let applied = match r.searcher.search_eclass(&egraph, root) {
        Some(m) => !r.apply(&mut egraph, &[m]).is_empty(),
        None => false,
    };
    prop_assume!(applied);
    // `y`, where a rule has one, takes the first bound's value.
    let env = HashMap::from([(Symbol::from("x"), x), (Symbol::from("y"), bounds_y)]);
    let (l, rv) = (eval(&lhs, &env), eval(&rhs, &env));
    prop_assert!(l.is_some(), "{lhs} undefined at x = {x}");
    prop_assert_eq!(l, rv, "{} => {} at x = {}", lhs, rhs, x);
    Ok(())
}

macro_rules! rule_props {
    ($($test:ident => $rule:literal),* $(,)?) => {
        const TESTED: &[&str] = &[$($rule),*];
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $test(x in value(), shifts in [shift(), shift(), shift()],
                         bounds in [value(), value(), value(), value()]) {
                    check($rule, x, shifts, bounds)?;
                }
            )*
        }
    };
}

rule_props! {
    prop_mul_pow2          => "mul-pow2",
    prop_pow2_mul          => "pow2-mul",
    prop_shl_shl           => "shl-shl",
    prop_shl_zero          => "shl-zero",
    prop_mul_one           => "mul-one",
    prop_one_mul           => "one-mul",
    prop_shift_round_right => "shift-round-right",
    prop_shift_round_left  => "shift-round-left",
    prop_shift_round_zero  => "shift-round-zero",
    prop_shift_round_shl   => "shift-round-shl",
    prop_shift_round_relu  => "shift-round-relu",
    prop_clamp_of_relu     => "clamp-of-relu",
    prop_relu_into_clamp   => "relu-into-clamp",
    prop_relu_into_clamp_l => "relu-into-clamp-l",
    prop_clamp_clamp       => "clamp-clamp",
    prop_fold_scale        => "fold-scale",
    prop_fold_shift        => "fold-shift",
    prop_sum_pool_mac      => "sum-pool-mac",
}

#[test]
fn every_rule_has_a_property_test() {
    let mut names: Vec<String> = rules::all().iter().map(|r| r.name.to_string()).collect();
    let mut tested: Vec<String> = TESTED.iter().map(|s| s.to_string()).collect();
    // Its applier computes the right side: tested below, on its own.
    tested.push("mul-csd".to_string());
    names.sort();
    tested.sort();
    assert_eq!(names, tested);
}

/// The right side with `?x` read as `x + 1`: the off-by-one a careless
/// edit of a rule makes.
fn off_by_one(rhs: &PatternAst<IntExpr>) -> PatternAst<IntExpr> {
    let mut out = PatternAst::default();
    let mut ids: Vec<Id> = Vec::new();
    for node in rhs.as_ref() {
        let id = match node {
            ENodeOrVar::Var(v) if v.to_string() == "?x" => {
                let x = out.add(ENodeOrVar::Var(*v));
                let one = out.add(ENodeOrVar::ENode(IntExpr::Num(1)));
                out.add(ENodeOrVar::ENode(IntExpr::Add([x, one])))
            }
            ENodeOrVar::Var(v) => out.add(ENodeOrVar::Var(*v)),
            ENodeOrVar::ENode(n) => {
                out.add(ENodeOrVar::ENode(n.clone().map_children(|c| ids[usize::from(c)])))
            }
        };
        ids.push(id);
    }
    out
}

/// Every rule's property test fails on a mutant of the rule (its right side
/// off by one in `?x`), so none of them passes whatever the rule says.
#[test]
fn every_property_test_catches_a_mutant() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let case = (value(), [shift(), shift(), shift()], [value(), value(), value(), value()]);
    for name in TESTED {
        let caught = (0..4000).any(|_| {
            let (x, shifts, bounds) = case.new_tree(&mut runner).unwrap().current();
            matches!(check_rhs(name, off_by_one, x, shifts, bounds), Err(TestCaseError::Fail(_)))
        });
        assert!(caught, "the property test of {name} passes its mutant");
    }
}

fn parse(s: &str) -> RecExpr<IntExpr> {
    s.parse().expect("a valid expression")
}

fn has(expr: &RecExpr<IntExpr>, pred: fn(&IntExpr) -> bool) -> bool {
    expr.as_ref().iter().any(pred)
}

fn timed(expr: &RecExpr<IntExpr>, limits: Limits) -> Saturated {
    let start = Instant::now();
    let out = saturate_with(expr, &rules::all(), limits);
    let show = |e: &RecExpr<IntExpr>| {
        let s = e.to_string();
        if s.len() > 120 {
            format!("<{} nodes>", e.as_ref().len())
        } else {
            s
        }
    };
    eprintln!(
        "{}\n  => {} (cost {}, {}, {} iterations, {} nodes, {:?})",
        show(expr),
        show(&out.best),
        out.cost,
        out.stop_reason,
        out.iterations,
        out.nodes,
        start.elapsed()
    );
    out
}

#[test]
fn mul_by_eight_extracts_to_a_shift() {
    let out = timed(&parse("(* x 8)"), Limits::default());
    assert_eq!(out.best.to_string(), "(<< x 3)");
    assert_eq!(out.cost, 1);
    assert_eq!(out.stop_reason, "saturated");
}

const REQUANT_RELU: &str = "(max (clamp (shift-round (* x 4) 3) -128 127) 0)";

fn requant_relu() -> &'static (RecExpr<IntExpr>, Saturated) {
    static OUT: OnceLock<(RecExpr<IntExpr>, Saturated)> = OnceLock::new();
    OUT.get_or_init(|| {
        let expr = parse(REQUANT_RELU);
        let out = timed(&expr, Limits::default());
        (expr, out)
    })
}

#[test]
fn requant_relu_extracts_shifts_and_one_clamp() {
    let (_, out) = requant_relu();
    assert!(!has(&out.best, |n| matches!(n, IntExpr::Mul(_))), "{}", out.best);
    assert!(!has(&out.best, |n| matches!(n, IntExpr::Max(_))), "{}", out.best);
    assert_eq!(out.best.to_string(), "(clamp (>> (+ (<< x 2) 4) 3) 0 127)");
    assert_eq!(out.stop_reason, "saturated");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]
    #[test]
    fn requant_relu_extraction_evaluates_equal(x in value()) {
        let (expr, out) = requant_relu();
        let env = HashMap::from([(Symbol::from("x"), x)]);
        let before = eval(expr, &env);
        prop_assert!(before.is_some());
        prop_assert_eq!(before, eval(&out.best, &env));
    }
}

#[test]
fn stop_reasons_are_reported() {
    let expr = parse(REQUANT_RELU);
    let one = Limits { iterations: 1, ..Limits::default() };
    assert_eq!(timed(&expr, one).stop_reason, "iteration limit (1)");
    // egg reports the node count it reached, which may exceed the limit.
    let tiny = Limits { nodes: 5, ..Limits::default() };
    assert!(timed(&expr, tiny).stop_reason.starts_with("node limit"));
    assert_eq!(saturate(&parse("x"), &rules::all()).stop_reason, "saturated");
}

/// A sum of `n` requantized ReLU terms over distinct inputs and constants.
fn big_expression(n: usize) -> String {
    let mut acc = String::from("0");
    for i in 0..n {
        let (j, k) = (i % 7, (i % 5) as i64 - 1);
        let term = format!("(max (clamp (shift-round (* x{i} {}) {k}) -128 127) 0)", 1 << j);
        acc = format!("(+ {acc} {term})");
    }
    acc
}

#[test]
fn a_big_expression_stays_within_the_limits() {
    let expr = parse(&big_expression(400));
    // The time limit is far beyond the others: a slow machine must stop at
    // the node limit too (times are measured by benchmarks, not asserted).
    let limits = Limits { iterations: 8, nodes: 4_000, time: Duration::from_secs(120) };
    let out = timed(&expr, limits);
    assert!(out.iterations <= limits.iterations);
    assert!(out.stop_reason.starts_with("node limit"), "{}", out.stop_reason);
    // One round may overshoot the node limit, but not unboundedly.
    assert!(out.nodes < 4 * limits.nodes, "{} nodes", out.nodes);
    let env: HashMap<Symbol, i64> =
        (0..400).map(|i| (Symbol::from(format!("x{i}")), (i as i64 - 200) * 977)).collect();
    assert_eq!(eval(&expr, &env), eval(&out.best, &env));
    assert!(out.cost <= crate_cost(&expr));

    let full = timed(&expr, Limits::default());
    assert!(full.iterations <= Limits::default().iterations);
    assert!(!has(&full.best, |n| matches!(n, IntExpr::Mul(_) | IntExpr::Max(_))));
    assert_eq!(eval(&expr, &env), eval(&full.best, &env));
}

/// The cost of an expression as written.
fn crate_cost(expr: &RecExpr<IntExpr>) -> usize {
    expr.as_ref().iter().map(potc::eqsat::cost::op_cost).sum()
}

/// An integer batch norm (scale 8, shift -16) after a MAC saturates to one
/// MAC with the folded weight and bias, as `fold-bn` does on tensors; under
/// the ASIC cost its weight 24 is two shifts and an adder.
#[test]
fn batch_norm_folds_into_the_mac() {
    let expr = parse("(+ (* (+ (* x 3) 5) 8) -16)");
    let out = timed(&expr, Limits::default());
    assert_eq!(out.best.to_string(), "(+ (+ (<< x 4) (<< x 3)) 24)");
    for x in [-EXTREME, -7, 0, 1, 12345, EXTREME] {
        let env = HashMap::from([(Symbol::from("x"), x)]);
        assert_eq!(eval(&expr, &env), eval(&out.best, &env), "x = {x}");
    }
}

/// `x * c` saturated with every rule: the cheapest form under the ASIC cost
/// (shifts and adds, the constant's signed digits) under `rules`.
fn constant_product(c: i64, rules: &[Rewrite]) -> RecExpr<IntExpr> {
    saturate(&parse(&format!("(* x {c})")), rules).best
}

proptest! {
    #![proptest_config(config())]
    /// `mul-csd`: the form extracted for `x * c` equals it; for a constant
    /// of at most four signed digits (every weight of up to 8 bits) it is
    /// shifts and one adder fewer than the digits, no multiplier.
    #[test]
    fn prop_mul_csd(c in 1i64..=5000, x in value()) {
        let best = constant_product(c, &rules::all());
        let env = HashMap::from([(Symbol::from("x"), x)]);
        prop_assert_eq!(eval(&best, &env), Some(i128::from(x) * i128::from(c)), "{}", best);
        let digits = rules::constants::csd_digits(c);
        if digits <= 4 {
            prop_assert!(!has(&best, |n| matches!(n, IntExpr::Mul(_))), "{}", best);
            let adders = best.as_ref().iter().filter(|n| matches!(n, IntExpr::Add(_) | IntExpr::Sub(_))).count();
            prop_assert_eq!(adders as u32 + 1, digits, "{}", best);
        }
    }
}

/// A wrong `mul-csd` (the remainder off by one) is caught by the same check.
#[test]
fn the_csd_property_catches_a_mutant() {
    use egg::{Applier, PatternAst, Subst};
    struct OffByOne;
    impl Applier<IntExpr, potc::eqsat::ConstFold> for OffByOne {
        fn apply_one(
            &self,
            egraph: &mut EGraph,
            matched: Id,
            subst: &Subst,
            _: Option<&PatternAst<IntExpr>>,
            _: Symbol,
        ) -> Vec<Id> {
            let (x, c): (Var, Var) = ("?x".parse().unwrap(), "?c".parse().unwrap());
            let Some(c) = egraph[subst[c]].data else { return vec![] };
            if c <= 2 || c.count_ones() == 1 {
                return vec![];
            }
            let p = 1i64 << (63 - c.leading_zeros());
            let (pk, rk) = (egraph.add(IntExpr::Num(p)), egraph.add(IntExpr::Num(c - p + 1)));
            let low = egraph.add(IntExpr::Mul([subst[x], pk]));
            let rest = egraph.add(IntExpr::Mul([subst[x], rk]));
            let sum = egraph.add(IntExpr::Add([low, rest]));
            if egraph.union(matched, sum) {
                vec![sum]
            } else {
                vec![]
            }
        }
    }
    let searcher: egg::Pattern<IntExpr> = "(* ?x ?c)".parse().unwrap();
    let mut rules: Vec<Rewrite> =
        rules::all().into_iter().filter(|r| r.name.as_str() != "mul-csd").collect();
    rules.push(Rewrite::new("mul-csd", searcher, OffByOne).unwrap());
    let env = HashMap::from([(Symbol::from("x"), 3)]);
    let wrong = (3..50)
        .filter(|&c| eval(&constant_product(c, &rules), &env) != Some(3 * i128::from(c)))
        .count();
    assert!(wrong > 0, "the mutant went unnoticed");
}
