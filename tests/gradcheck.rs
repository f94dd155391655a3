//! Finite-difference gradient checks: for every op and attribute combination,
//! the autodiff interpreter's parameter gradients match central differences
//! of `L = sum(out * r)`. Ops are placed after a 1x1 convolution so that their
//! input gradients are checked through that convolution's weight gradient.

use potc::interp::{backward, forward, Mode, Plan, Weights};
use potc::syntax;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn loss(plan: &Plan, w: &Weights, x: &[f32], n: usize, r: &[f32]) -> f64 {
    let mut w = w.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let tape = forward(
        plan,
        &mut w,
        x.to_vec(),
        n,
        Mode::Train { rng: &mut rng, bn_frozen: false, bn_momentum: None },
        1,
    );
    tape.output(plan).iter().zip(r).map(|(&o, &r)| o as f64 * r as f64).sum()
}

fn check(body: &str, input: &str, n: usize) {
    check_with(body, input, n, 1e-2)
}

/// `eps` is the finite-difference step; max pooling needs a small one so that
/// no window's maximum changes hands between the two evaluations.
fn check_with(body: &str, input: &str, n: usize, eps: f32) {
    let src = format!("model m(%x: {input}) {{\n{body}\n}}\n");
    let g = syntax::parse(&src).unwrap_or_else(|d| panic!("{}", d.render("case", &src)));
    let plan = Plan::new(&g).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut w: Weights = plan
        .params
        .iter()
        .map(|p| {
            let positive = p.name.ends_with(".var");
            (0..p.len())
                .map(|_| rng.random_range(if positive { 0.5..1.5 } else { -1.0..1.0 }))
                .collect()
        })
        .collect();
    let (c, l) = plan.input_dims;
    let x: Vec<f32> = (0..c * n * l).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (oc, ol) = plan.output_dims;
    let r: Vec<f32> = (0..oc * n * ol).map(|_| rng.random_range(-1.0..1.0)).collect();

    let mut wt = w.clone();
    let mut drop_rng = ChaCha8Rng::seed_from_u64(7);
    let tape = forward(
        &plan,
        &mut wt,
        x.clone(),
        n,
        Mode::Train { rng: &mut drop_rng, bn_frozen: false, bn_momentum: None },
        1,
    );
    let grads = backward(&plan, &w, &tape, r.clone(), 1);

    for (pi, p) in plan.params.iter().enumerate().filter(|(_, p)| p.trainable) {
        let step = (p.len() / 12).max(1);
        for i in (0..p.len()).step_by(step) {
            let orig = w[pi][i];
            w[pi][i] = orig + eps;
            let up = loss(&plan, &w, &x, n, &r);
            w[pi][i] = orig - eps;
            let down = loss(&plan, &w, &x, n, &r);
            w[pi][i] = orig;
            let fd = (up - down) / (2.0 * eps as f64);
            let ad = grads[pi][i] as f64;
            assert!(
                (fd - ad).abs() <= 2e-2 * fd.abs().max(ad.abs()) + 2e-3,
                "{body}\n{}[{i}]: finite difference {fd}, autodiff {ad}",
                p.name
            );
        }
    }
}

const PRE: &str = "  %p = conv1d(%x) {out_channels = 4, kernel = 1}";

#[test]
fn conv1d_every_attribute() {
    for attrs in [
        "out_channels = 3, kernel = 3",
        "out_channels = 3, kernel = 3, padding = same",
        "out_channels = 3, kernel = 4, padding = same, dilation = 2",
        "out_channels = 3, kernel = 3, stride = 2, padding = [1, 2]",
        "out_channels = 6, kernel = 3, groups = 2, padding = 1, bias = false",
        "out_channels = 4, kernel = 2, groups = 4, stride = 3, dilation = 3",
        // Taps that read only padding: the first and last of a wide padded kernel.
        "out_channels = 2, kernel = 5, dilation = 6, padding = [13, 13]",
    ] {
        check(&format!("{PRE}\n  %y = conv1d(%p) {{{attrs}}}\n  return %y"), "[2, 11]", 3);
    }
}

#[test]
fn batch_norm_training_mode() {
    check(&format!("{PRE}\n  %y = batch_norm(%p)\n  return %y"), "[2, 7]", 4);
    check(
        &format!(
            "{PRE}\n  %g = global_avg_pool(%p)\n  %y = batch_norm(%g) {{eps = 0.01}}\n  return %y"
        ),
        "[2, 7]",
        5,
    );
}

#[test]
fn pooling_relu_add_flatten_dropout() {
    for body in [
        "%y = relu(%p)",
        "%y = avg_pool1d(%p) {kernel = 3, stride = 2, padding = 1}",
        "%y = avg_pool1d(%p) {kernel = 2}",
        "%y = global_avg_pool(%p)",
        "%y = flatten(%p)",
        "%q = conv1d(%p) {out_channels = 4, kernel = 3, padding = same}\n  %y = add(%q, %p)",
        "%y = dropout(%p) {p = 0.3}",
    ] {
        check(&format!("{PRE}\n  {body}\n  return %y"), "[2, 9]", 3);
    }
    let max_pool = "%y = max_pool1d(%p) {kernel = 3, stride = 2, padding = 1}";
    check_with(&format!("{PRE}\n  {max_pool}\n  return %y"), "[2, 9]", 3, 1e-3);
}

#[test]
fn linear_and_whole_networks() {
    check(&format!("{PRE}\n  %g = global_avg_pool(%p)\n  %y = linear(%g) {{out_features = 3}}\n  return %y"), "[2, 6]", 3);
    check(&format!("{PRE}\n  %f = flatten(%p)\n  %y = linear(%f) {{out_features = 2, bias = false}}\n  return %y"), "[2, 5]", 2);
    let tiny = include_str!("../examples/tiny.pot");
    let lines: Vec<&str> = tiny.lines().skip_while(|l| !l.starts_with("model")).collect();
    let body = lines[1..lines.len() - 1].join("\n");
    check_with(&body, "[1, 16]", 4, 1e-3);
    // Through ReLUs after batch norm a 1e-2 step can cross a kink; 1e-3 does not.
    check_with(
        "  %c = conv1d(%x) {out_channels = 4, kernel = 3, padding = same}\n  %b = batch_norm(%c)\n  %r = relu(%b)\n  \
         %m = avg_pool1d(%r) {kernel = 2}\n  %d = conv1d(%m) {out_channels = 4, kernel = 3, padding = same, groups = 4}\n  \
         %s = add(%d, %m)\n  %g = global_avg_pool(%s)\n  %o = dropout(%g) {p = 0.2}\n  %y = linear(%o) {out_features = 3}\n  return %y",
        "[3, 12]",
        4,
        1e-3,
    );
}
