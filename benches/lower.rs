//! Lowering speed (issue 5): `potc lower` of a trained FCN under 100 ms and
//! of a 64-block residual network under 1 s, in release. Measures what the
//! command does after reading its inputs: the quantized graph, integer
//! weights, accumulator analysis, equality saturation, the verifier, and
//! writing the program directory. Checkpoints are random but complete
//! (every parameter and threshold), so the work is the real work.

use criterion::{criterion_group, criterion_main, Criterion};
use potc::ckpt::Checkpoint;
use potc::driver::{lower_model, KEY_QUANT};
use potc::ir::Graph;
use potc::pass::{PassContext, PassManager};
use potc::passes::registry;
use potc::quant::config::BnFold;
use potc::quant::QuantConfig;
use potc::syntax;
use rand::{RngExt, SeedableRng};
use std::path::Path;
use std::time::Duration;

/// `blocks` residual blocks of two 3-tap convolutions with batch norm.
fn residual(blocks: usize, channels: usize) -> String {
    let mut t = format!(
        "model res{blocks}(%x: [1, 150]) {{\n  %s = conv1d(%x) {{out_channels = {channels}, kernel = 3, padding = same}}\n  %h0 = relu(%s)\n"
    );
    for b in 0..blocks {
        let c = channels;
        t += &format!(
            "  %a{b} = conv1d(%h{b}) {{out_channels = {c}, kernel = 3, padding = same}}\n  %an{b} = batch_norm(%a{b})\n  %ar{b} = relu(%an{b})\n  %b{b} = conv1d(%ar{b}) {{out_channels = {c}, kernel = 3, padding = same}}\n  %bn{b} = batch_norm(%b{b})\n  %sum{b} = add(%bn{b}, %h{b})\n  %h{} = relu(%sum{b})\n",
            b + 1
        );
    }
    t + &format!("  %g = global_avg_pool(%h{blocks})\n  %y = linear(%g) {{out_features = 2}}\n  return %y\n}}\n")
}

/// A checkpoint as `potc train --quant w4a8 --bn fold-then-qat` writes one:
/// the folded, quantized graph's parameters (random) and the configuration.
fn checkpoint(g: &Graph) -> Checkpoint {
    let mut cfg = QuantConfig::parse("w4a8").unwrap();
    cfg.bn = BnFold::FoldThenQat;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut random = |g: &Graph| -> potc::pass::ParamStore {
        g.params()
            .into_iter()
            .map(|(n, p)| {
                let len = p.shape.iter().product();
                let v = (0..len)
                    .map(|_| match p.slot {
                        "var" => rng.random_range(0.5..2.0),
                        "log2t" | "w_log2t" => rng.random_range(-1.0..3.0),
                        _ => rng.random_range(-0.3..0.3),
                    })
                    .collect();
                (n, (p.shape, v))
            })
            .collect()
    };
    let mut store = random(g);
    let mut q = g.clone();
    let reg = registry();
    let pipeline = reg.pipeline("canonicalize,fold-bn,insert-fake-quant").unwrap();
    let mut cx =
        PassContext { weights: Some(&mut store), quant: Some(cfg.clone()), ..Default::default() };
    PassManager { allow_meaning_changes: true }.run(&pipeline, &mut q, &mut cx, |_| {}).unwrap();
    let thresholds = random(&q);
    let mut ck = Checkpoint::default();
    for (name, p) in q.params() {
        let v = store.get(&name).unwrap_or(&thresholds[&name]).1.clone();
        ck.insert_f32(name, p.shape, v);
    }
    ck.set_model(g);
    ck.set_json(KEY_QUANT, &cfg);
    ck
}

fn lowering(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("lower");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    for (name, src) in
        [("fcn", include_str!("../examples/fcn.pot").to_string()), ("residual64", residual(64, 32))]
    {
        let g = syntax::parse(&src).unwrap();
        let ck = checkpoint(&g);
        let out = dir.path().join(name);
        group.bench_function(name, |b| {
            b.iter(|| {
                let p = lower_model(
                    &g,
                    &ck,
                    Path::new("bench.safetensors"),
                    32,
                    potc::eqsat::Target::Cpu,
                    false,
                )
                .unwrap()
                .program;
                p.save(&out).unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lowering);
criterion_main!(benches);
