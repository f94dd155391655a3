//! Integer lowering: the integer program computes exactly the fake-quant
//! simulation (spec section 6) on property-generated networks and on the
//! examples with real data; it holds only integer ops; accumulators that
//! cannot fit are refused with the layer named.

mod common;

use std::path::Path;
use std::process::Output;

use common::{dataset, json, lower, ok, potc, quantize, random_config, random_program};
use potc::backend::interp::IntInterpreter;
use potc::data::Dataset;
use potc::interp::exact::evaluate_exact;
use potc::interp::Plan;
use potc::ir::{Elem, Graph};
use potc::pass::ParamStore;
use potc::program::IntProgram;
use potc::quant::QuantConfig;
use potc::syntax;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The fake-quant simulation's output integers and the integer program's,
/// both as the `logits_sha256` reads them (i32, saturating).
fn both(q: &Graph, store: &ParamStore, p: &IntProgram, ds: &Dataset) -> (Vec<i64>, Vec<i64>) {
    let plan = Plan::new(q).unwrap();
    let w: Vec<Vec<f32>> = plan.params.iter().map(|pi| store[&pi.name].1.clone()).collect();
    let exact = evaluate_exact(&plan, &w, ds, 1);
    let (want, _) = exact.ints.expect("a quantized output");
    let interp = IntInterpreter::new(&p.graph, &p.tensors).unwrap();
    let got = interp.run(&p.quantize_input(&ds.x));
    let sat =
        |v: Vec<i64>| v.into_iter().map(|x| x.clamp(i32::MIN.into(), i32::MAX.into())).collect();
    (sat(want), sat(got))
}

/// Random shapes, bit widths, weight formats, exponents and inputs (some
/// far outside the input range, so clamps saturate); 4,000 seeds, of which
/// those whose accumulators fit (most) run.
#[test]
fn random_networks_lower_exactly() {
    common::run_seeds(file!(), 4000, MIN_LOWERED, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let Some((q, store, p)) = random_program(&mut rng, random_config, 32) else {
            return Ok(false);
        };
        let (c, l) = q.node(q.inputs()[0]).ty.sequence().unwrap();
        let n = 3;
        let scale = [0.05f32, 1.0, 40.0][rng.random_range(0..3)];
        let x: Vec<f32> = (0..n * c * l).map(|_| rng.random_range(-2.0f32..2.0) * scale).collect();
        let (want, got) = both(&q, &store, &p, &dataset(x, n, c, l));
        prop_assert_eq!(want, got, "{}\n{}", potc::ir::print(&q), potc::ir::print(&p.graph));
        Ok(true)
    });
}

/// Of the 4,000 random networks, at least this many must lower and run.
const MIN_LOWERED: usize = 3000;

#[test]
fn lowered_programs_hold_only_integer_ops() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for m in ["fcn", "resnet", "basicmotions", "fcn_basicmotions", "tiny"] {
        let (_, g) = potc::driver::load_model(&format!("examples/{m}.pot")).unwrap();
        let (q, store) = quantize(&g, &QuantConfig::parse("w4a8").unwrap(), &mut rng);
        let p = lower(&q, &store, 32).unwrap();
        for id in p.graph.order().unwrap() {
            let node = p.graph.node(id);
            assert!(node.op.is_integer(), "{m}: %{} is {}", node.name, node.op.name());
            assert!(matches!(node.ty.elem, Elem::Int { .. }), "{m}: %{} is {}", node.name, node.ty);
        }
        let text = potc::ir::print(&p.graph);
        for float_op in ["conv1d(", "linear(", "batch_norm", "fake_quant", "f32"] {
            let stray = text.lines().find(|l| l.contains(float_op) && !l.contains("int_"));
            assert!(stray.is_none(), "{m}: {stray:?}");
        }
        // Every ReLU of the examples precedes an unsigned requant, so
        // `fuse-requant` removes it (ReLU itself is an integer op).
        assert!(!text.contains("relu("), "{m}: a ReLU was not fused");
        assert_eq!(syntax::parse(&text).map(|g2| potc::ir::print(&g2)), Ok(text), "{m} round trip");
    }
}

#[test]
fn verifier_rejects_float_ops_in_integer_programs() {
    let text = "model m(%x: i8[1, 8]) {\n  %y = batch_norm(%x)\n  return %y\n}\n";
    let e = format!("{:?}", syntax::parse(text).unwrap_err());
    assert!(e.contains("takes f32 values"), "{e}");
    let text = "model m(%x: i8[1, 8]) {\n  %y = global_avg_pool(%x)\n  return %y\n}\n";
    assert!(syntax::parse(text).is_err());
    let ok =
        "model m(%x: i8[1, 8]) {\n  %y = relu(%x)\n  %z = global_sum_pool(%y)\n  return %z\n}\n";
    assert!(syntax::parse(ok).is_ok());
}

#[test]
fn accumulators_that_cannot_fit_are_refused_with_the_layer_named() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (_, g) = potc::driver::load_model("examples/fcn.pot").unwrap();
    let (q, store) = quantize(&g, &QuantConfig::parse("w8a8").unwrap(), &mut rng);
    let e = lower(&q, &store, 12).expect_err("12 bits cannot hold a 8x8-bit conv");
    assert!(e.contains("`%b1`") && e.contains("accumulator"), "{e}");
    assert!(e.contains("--acc-bits"), "{e}");
    assert!(lower(&q, &store, 32).is_ok());
}

// ----- The examples on real data, through the command line -----

/// Quantizes (calibration, no training: the arithmetic is what is checked),
/// lowers and runs every test sample; `logits_sha256` must equal the
/// simulation's, through `potc run` and `potc eval --mode int`.
fn example_on(model: &str, train: &str, test: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("q.safetensors");
    let (ck, out) = (ck.to_str().unwrap(), dir.path().join("int"));
    let m = format!("examples/{model}.pot");
    ok(potc(
        &["train", &m, "--train", train, "--test", test, "-o", ck, "--quant", "w4a8"]
            .iter()
            .chain(&["--epochs", "0", "--json"])
            .copied()
            .collect::<Vec<_>>(),
    ));
    let fq = json(&ok(potc(&[
        "eval",
        &m,
        "--weights",
        ck,
        "--data",
        test,
        "--mode",
        "fake-quant",
        "--json",
    ])));
    ok(potc(&["lower", &m, "--weights", ck, "-o", out.to_str().unwrap()]));
    let run = json(&ok(potc(&["run", out.to_str().unwrap(), "--data", test, "--json"])));
    let int =
        json(&ok(potc(&["eval", &m, "--weights", ck, "--data", test, "--mode", "int", "--json"])));
    // Every family of JIT kernels the host has.
    let families = potc::backend::jit::micro::Kernels::all();
    let kernels: Vec<serde_json::Value> = families
        .iter()
        .filter(|(_, available)| available.is_ok())
        .map(|(k, _)| {
            let dir = out.to_str().unwrap();
            json(&ok(potc(&["run", dir, "--data", test, "--kernels", k.name(), "--json"])))
        })
        .collect();
    for other in [&run, &int].into_iter().chain(&kernels) {
        assert_eq!(other["logits_sha256"], fq["logits_sha256"], "{model} on {test}");
        assert_eq!(other["accuracy"], fq["accuracy"]);
        assert_eq!(other["n"], fq["n"]);
    }
}

#[test]
fn fcn_on_gunpoint_lowers_exactly() {
    example_on("fcn", "examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
}

#[test]
fn resnet_on_gunpoint_lowers_exactly() {
    example_on("resnet", "examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
}

#[test]
fn examples_on_shared_data_lower_exactly() {
    let d = common::shared_data("");
    let d = d.to_str().unwrap();
    for (m, set) in [
        ("fcn", "ItalyPowerDemand"),
        ("resnet", "ItalyPowerDemand"),
        ("tiny", "ItalyPowerDemand"),
        ("tiny", "GunPoint"),
        ("fcn_basicmotions", "BasicMotions"),
        ("basicmotions", "BasicMotions"),
    ] {
        example_on(m, &format!("{d}/{set}/{set}_TRAIN.ts"), &format!("{d}/{set}/{set}_TEST.ts"));
    }
}

fn fails(out: Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "want `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn lowering_and_running_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    let (float, quant, prog) = (p("f.safetensors"), p("q.safetensors"), p("int"));
    let common = ["--train", train, "--test", test, "--epochs", "0"];
    ok(potc(&[&["train", "examples/tiny.pot", "-o", &float][..], &common].concat()));
    ok(potc(
        &[&["train", "examples/tiny.pot", "-o", &quant, "--quant", "w8a8"][..], &common].concat(),
    ));
    fails(
        potc(&["lower", "examples/tiny.pot", "--weights", &float, "-o", &prog]),
        "float checkpoint",
    );
    fails(
        potc(&["lower", "examples/tiny.pot", "--weights", &quant, "-o", &prog, "--acc-bits", "8"]),
        "`%b`",
    );
    fails(
        potc(&["lower", "examples/tiny.pot", "--weights", &quant, "-o", &prog, "--acc-bits", "40"]),
        "40",
    );
    ok(potc(&["lower", "examples/tiny.pot", "--weights", &quant, "-o", &prog]));
    fails(potc(&["run", &p("nothing"), "--data", test]), "not a program directory");
    let short = p("short.tsv");
    std::fs::write(&short, "1\t0.5\t0.25\t1.0\n2\t0.0\t-1.0\t2.0\n").unwrap();
    fails(potc(&["run", &prog, "--data", &short]), "the program takes i8[1, 150]");

    // A weight outside its bit width, and a missing tensor: named, not a panic.
    let wfile = Path::new(&prog).join("weights.safetensors");
    let mut ck = potc::ckpt::Checkpoint::load(&wfile).unwrap();
    let (shape, w) = ck.i32("b.w").map(|(s, v)| (s.to_vec(), v.to_vec())).unwrap();
    let mut bad = w.clone();
    bad[0] = 1000;
    ck.insert_i32("b.w", shape.clone(), bad);
    ck.save(&wfile).unwrap();
    fails(potc(&["run", &prog, "--data", test]), "tensor `b.w`: weight 1000");
    ck.tensors.remove("b.w");
    ck.save(&wfile).unwrap();
    fails(potc(&["run", &prog, "--data", test]), "missing tensor `b.w`");
    // A float model in place of the program.
    std::fs::copy("examples/tiny.pot", Path::new(&prog).join("model.pot")).unwrap();
    fails(potc(&["run", &prog, "--data", test]), "not an integer program");
}

/// Every quantizer set apart from `--quant w4a6`: an 8-bit input
/// (`--input-bits`), 8-bit first and last layers, an unsigned add of 7 bits,
/// pooled values on 8. Trained on GunPoint (float, then two epochs of QAT),
/// the simulation's integers equal the program's in the interpreter and the
/// JIT.
const CONTROLLED: &str = "model ctl(%x: [1, 150]) {
  %c1 = conv1d(%x) {out_channels = 8, kernel = 7, padding = same, w_bits = 8}
  %b1 = batch_norm(%c1)
  %r1 = relu(%b1)
  %c2 = conv1d(%r1) {out_channels = 8, kernel = 5, padding = same}
  %r2 = relu(%c2)
  %s = add(%r2, %r1) {a_bits = 7}
  %p = max_pool1d(%s) {kernel = 2}
  %g = global_avg_pool(%p) {a_bits = 8}
  %y = linear(%g) {out_features = 2, w_bits = 8}
  return %y
}
";

#[test]
fn every_quantizer_set_from_the_model_text_lowers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (model, float, ck, prog) = (p("ctl.pot"), p("f.safetensors"), p("q.safetensors"), p("int"));
    std::fs::write(&model, CONTROLLED).unwrap();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    // From float weights that tell the classes apart (fresh QAT of two
    // epochs predicts one class), so the logits compared are not degenerate.
    let data = ["--train", train, "--test", test, "--threads", "2"];
    ok(potc(
        &[&["train", &model, "-o", &float, "--epochs", "200", "--lr", "1e-2"][..], &data].concat(),
    ));
    let qat = ["--quant", "w4a6", "--input-bits", "8", "--init", &float, "--lr", "1e-3"];
    let args = [&["train", &model, "-o", &ck, "--epochs", "2"][..], &data].concat();
    ok(potc(&[&args[..], &qat].concat()));
    let fq = json(&ok(potc(&[
        "eval",
        &model,
        "--weights",
        &ck,
        "--data",
        test,
        "--mode",
        "fake-quant",
        "--json",
    ])));
    ok(potc(&["lower", &model, "--weights", &ck, "-o", &prog]));
    let program = std::fs::read_to_string(Path::new(&prog).join("model.pot")).unwrap();
    for control in [
        "%x: i8[1, 150]",
        "%s.q = requant(%s) {bits = 7, signed = false} : u7[8, 150]",
        "%g.q = requant(%g) {bits = 8, signed = false} : u8[8]",
        "int_conv1d(%x) {out_channels = 8, kernel = 7, padding = same, w_bits = 8, w_per_channel = true}",
        "int_conv1d(%r1.q) {out_channels = 8, kernel = 5, padding = same, w_bits = 4, w_per_channel = true}",
        "int_linear(%g.q) {out_features = 2, w_bits = 8, w_per_channel = true}",
    ] {
        assert!(program.contains(control), "no `{control}` in\n{program}");
    }
    for engine in ["interp", "jit"] {
        let run = json(&ok(potc(&["run", &prog, "--data", test, "--engine", engine, "--json"])));
        assert_eq!(run["logits_sha256"], fq["logits_sha256"], "{engine}");
        assert_eq!(run["accuracy"], fq["accuracy"], "{engine}");
    }
    // The input's width is part of the configuration a resumed run repeats.
    let resumed = potc(&[&args[..], &["--quant", "w4a6", "--init", &float, "--resume"]].concat());
    fails(resumed, "trained with --quant w4a6 --input-bits 8 --bn fold-then-qat");
}

/// The random networks of the 4,000-network property reach the controls:
/// unsigned adds, and adds and pooling quantizers of their own width.
#[test]
fn random_networks_cover_the_quantizer_controls() {
    use potc::ir::Op;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (mut unsigned_adds, mut add_bits, mut pool_bits) = (0, 0, 0);
    for _ in 0..400 {
        let g = syntax::parse(&common::network(&mut rng)).unwrap();
        for n in g.node_ids() {
            match &g.node(n).op {
                Op::Add(a) => add_bits += usize::from(a.a_bits.is_some()),
                Op::GlobalAvgPool(a) => pool_bits += usize::from(a.a_bits.is_some()),
                _ => {}
            }
        }
        let (q, _) = quantize(&g, &random_config(&mut rng), &mut rng);
        for n in q.node_ids() {
            if let Op::FakeQuant(fq) = &q.node(n).op {
                let of_add = matches!(q.node(q.operands(n)[0]).op, Op::Add(_));
                unsigned_adds += usize::from(of_add && !fq.signed);
            }
        }
    }
    assert!(
        unsigned_adds >= 10 && add_bits >= 10 && pool_bits >= 10,
        "{unsigned_adds} {add_bits} {pool_bits}"
    );
}

#[test]
fn input_bits_need_quant_and_a_width_in_range() {
    let args = ["train", "examples/tiny.pot", "--train", "x", "--test", "x", "-o", "/dev/null"];
    fails(potc(&[&args[..], &["--input-bits", "8"]].concat()), "--input-bits");
    fails(potc(&[&args[..], &["--quant", "w4a8", "--input-bits", "17"]].concat()), "2..=16");
}

/// A `fake_quant` written in the model text is refused where it stands by
/// the commands that quantize; printing and lowering quantized text without
/// `insert-fake-quant` still work (the lower-int cases).
#[test]
fn hand_written_quantizers_are_refused_at_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("hand.pot");
    std::fs::write(
        &model,
        "model hand(%x: [1, 150]) {\n  %c = conv1d(%x) {out_channels = 2, kernel = 3}\n  \
         %r = relu(%c)\n  %q = fake_quant(%r) {bits = 4, signed = false}\n  \
         %g = global_avg_pool(%q)\n  %y = linear(%g) {out_features = 2}\n  return %y\n}\n",
    )
    .unwrap();
    let m = model.to_str().unwrap();
    let at = format!(
        "{m}:4:3: error: `%q`: a fake_quant in the model text; potc places every quantizer \
         itself: remove it and set `a_bits` / `w_bits` on the layers"
    );
    let data = "examples/data/GunPoint_TRAIN.ts";
    let ck = dir.path().join("c.safetensors");
    let ck = ck.to_str().unwrap();
    for cmd in [
        vec!["train", m, "--train", data, "--test", data, "-o", ck, "--quant", "w4a8"],
        vec!["eval", m, "--weights", ck, "--data", data, "--mode", "fake-quant"],
        vec!["lower", m, "--weights", ck, "-o", ck],
        vec!["print", m, "--passes", "insert-fake-quant"],
    ] {
        fails(potc(&cmd), &at);
    }
    ok(potc(&["print", m, "--passes", "canonicalize"]));
}

/// A ReLU straight after the input's quantizer, before a MAC: its values stay
/// on the input's grid, so training's forward pass (the float plan) quantizes
/// the conv's bias on that grid as the exact evaluation and the program do,
/// and its logits equal the exact ones.
#[test]
fn training_keeps_a_relu_on_its_quantizers_grid() {
    // The conv's output is the model's: no quantizer after it hides a bias
    // off its grid.
    let text = "model m(%x: [1, 24]) {\n  %r = relu(%x)\n  \
                %c = conv1d(%r) {out_channels = 4, kernel = 3, padding = same}\n  return %c\n}\n";
    let g = syntax::parse(text).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let cfg = QuantConfig::parse("w4a8").unwrap();
    let (q, store) = quantize(&g, &cfg, &mut rng);
    let plan = Plan::new(&q).unwrap();
    let w: Vec<Vec<f32>> = plan.params.iter().map(|p| store[&p.name].1.clone()).collect();
    let x: Vec<f32> = (0..8 * 24).map(|_| rng.random_range(-2.0..2.0)).collect();
    let ds = dataset(x, 8, 1, 24);
    let trained = potc::train::evaluate(&plan, &w, &ds, 1).logits;
    let (ints, e) = evaluate_exact(&plan, &w, &ds, 1).ints.expect("a quantized output");
    for (t, i) in trained.iter().zip(&ints) {
        let exact = *i as f64 * 2f64.powi(e);
        assert!((*t as f64 - exact).abs() <= 1e-5 * exact.abs().max(1.0), "{t} vs {exact}");
    }
}

/// Shift-format weights (power-of-two and additive) are stored as i8 codes
/// in `weights.safetensors` and load back to the same weights; a code past
/// the format's range, or codes for a layer whose weights are integers, are
/// refused naming the file and tensor.
#[test]
fn shift_format_weights_are_stored_as_codes() {
    use potc::ckpt::{Checkpoint, TensorData};
    use potc::quant::WeightFormat;
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    let lowered = |format: WeightFormat| {
        let tag = format.name();
        let ck = dir.path().join(format!("{tag}.st")).to_str().unwrap().to_string();
        let out = dir.path().join(tag).to_str().unwrap().to_string();
        let mut args =
            vec!["train", "examples/fcn.pot", "--train", train, "--test", test, "-o", &ck];
        args.extend(["--quant", "w4a8", "--epochs", "0"]);
        let flag = format!("--{tag}-weights");
        if format.shifts() {
            args.push(&flag);
        }
        ok(potc(&args));
        ok(potc(&["lower", "examples/fcn.pot", "--weights", &ck, "-o", &out]));
        out
    };
    let file = |dir: &str| Path::new(dir).join("weights.safetensors");
    for format in [WeightFormat::Pot, WeightFormat::Apot] {
        let coded = lowered(format);
        let ck = Checkpoint::load(&file(&coded)).unwrap();
        let weights: Vec<&String> = ck.tensors.keys().filter(|k| k.ends_with(".w")).collect();
        assert_eq!(weights.len(), 4);
        let p = potc::driver::load_program(&coded).unwrap();
        for w in &weights {
            let TensorData::I8(codes) = &ck.tensors[*w].data else { panic!("{w} is not i8") };
            let want: Vec<i64> =
                codes.iter().map(|&c| i64::from(format.weight(c).unwrap())).collect();
            let got: Vec<i64> = p.tensors[*w].1.iter().map(|&v| i64::from(v)).collect();
            assert_eq!(got, want, "{format} {w}");
            // Every weight is a 4-bit weight of the format, and not all are
            // powers of two in the additive format.
            assert!(codes.iter().all(|c| c.unsigned_abs() <= 7), "{format} {w}");
        }
        let all: Vec<i32> = weights.iter().flat_map(|w| p.tensors[*w].1.clone()).collect();
        let sums = all.iter().filter(|w| w.count_ones() == 2).count();
        assert_eq!(sums > 0, format == WeightFormat::Apot, "{format}");
        // A code past the range of i8 magnitudes the format can hold.
        let mut bad = ck.clone();
        if let TensorData::I8(codes) = &mut bad.tensors.get_mut(weights[0].as_str()).unwrap().data {
            codes[0] = 100;
        }
        bad.save(&file(&coded)).unwrap();
        let e = potc::driver::load_program(&coded).err().unwrap().0;
        assert!(e.contains("weights.safetensors") && e.contains("beyond 2^30"), "{e}");
        // A code in range that is wider than the layer's 4 bits.
        if let TensorData::I8(codes) = &mut bad.tensors.get_mut(weights[0].as_str()).unwrap().data {
            codes[0] = 9;
        }
        bad.save(&file(&coded)).unwrap();
        let e = potc::driver::load_program(&coded).err().unwrap().0;
        assert!(e.contains("weights.safetensors") && e.contains("4-bit"), "{e}");
    }
    // Codes for integer weights.
    let int = lowered(WeightFormat::Int);
    let mut ck = Checkpoint::load(&file(&int)).unwrap();
    let (shape, v) = ck.i32("b1.w").map(|(s, v)| (s.to_vec(), v.to_vec())).unwrap();
    ck.insert_i8("b1.w", shape, v.iter().map(|&x| x as i8).collect());
    ck.save(&file(&int)).unwrap();
    let e = potc::driver::load_program(&int).err().unwrap().0;
    assert!(e.contains("`b1.w`") && e.contains("w_format = pot or apot"), "{e}");
}

/// A batch norm after the add of two convolutions folds into both, and one
/// on pooled features into the linear layer after it: the integer program
/// holds no depthwise 1x1 layer for either, and computes the fake-quant
/// simulation's integers.
#[test]
fn batch_norms_after_an_add_and_on_pooled_features_leave_no_layer() {
    let text = "model m(%x: [2, 20]) {\n  %c1 = conv1d(%x) {out_channels = 4, kernel = 3, padding = same}\n  \
                %r1 = relu(%c1)\n  %c2 = conv1d(%r1) {out_channels = 4, kernel = 3, padding = same}\n  \
                %k = conv1d(%x) {out_channels = 4, kernel = 1}\n  %s = add(%c2, %k)\n  \
                %n = batch_norm(%s)\n  %r = relu(%n)\n  %g = global_avg_pool(%r)\n  \
                %gn = batch_norm(%g)\n  %y = linear(%gn) {out_features = 3}\n  return %y\n}\n";
    let g = syntax::parse(text).unwrap();
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (q, store) = quantize(&g, &QuantConfig::parse("w4a8").unwrap(), &mut rng);
        let p = lower(&q, &store, 32).unwrap().into_inner();
        let layers: Vec<&potc::ir::Node> = p.graph.node_ids().map(|n| p.graph.node(n)).collect();
        let macs = layers.iter().filter(|n| n.op.name().starts_with("int_")).count();
        assert_eq!(
            macs,
            4,
            "three convolutions and a linear layer:\n{}",
            potc::ir::print(&p.graph)
        );
        assert!(layers.iter().all(|n| n.op.name() != "batch_norm"));
        let x: Vec<f32> = (0..3 * 40).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let (want, got) = both(&q, &store, &p, &dataset(x, 3, 2, 20));
        assert_eq!(want, got, "seed {seed}");
    }
}

/// The same folds through training: under both `--bn` modes a model with a
/// batch norm after a two-convolution add and one on pooled features trains
/// an epoch, lowers to its three convolutions and one linear layer, and runs
/// the fake-quant integers.
#[test]
fn batch_norm_folds_train_and_lower_exactly_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.pot");
    std::fs::write(
        &model,
        "model m(%x: [1, 150]) {\n  %c1 = conv1d(%x) {out_channels = 8, kernel = 5, padding = same}\n  \
         %b1 = batch_norm(%c1)\n  %r1 = relu(%b1)\n  %c2 = conv1d(%r1) {out_channels = 8, kernel = 3, padding = same}\n  \
         %k = conv1d(%x) {out_channels = 8, kernel = 1}\n  %s = add(%c2, %k)\n  %n = batch_norm(%s)\n  \
         %r = relu(%n)\n  %g = global_avg_pool(%r)\n  %gn = batch_norm(%g)\n  \
         %y = linear(%gn) {out_features = 2}\n  return %y\n}\n",
    )
    .unwrap();
    let m = model.to_str().unwrap();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    for bn in ["fold-sim", "fold-then-qat"] {
        let ck = dir.path().join(format!("{bn}.safetensors"));
        let out = dir.path().join(bn);
        let (ck, out) = (ck.to_str().unwrap(), out.to_str().unwrap());
        let args = ["train", m, "--train", train, "--test", test, "-o", ck, "--quant", "w4a8"];
        ok(potc(&[&args[..], &["--bn", bn, "--epochs", "1", "--threads", "1"]].concat()));
        let eval = ["eval", m, "--weights", ck, "--data", test, "--mode", "fake-quant", "--json"];
        let fq = json(&ok(potc(&eval)));
        ok(potc(&["lower", m, "--weights", ck, "-o", out]));
        let text = std::fs::read_to_string(Path::new(out).join("model.pot")).unwrap();
        assert_eq!(text.matches("int_conv1d(").count(), 3, "{bn}:\n{text}");
        assert_eq!(text.matches("int_linear(").count(), 1, "{bn}:\n{text}");
        let run = json(&ok(potc(&["run", out, "--data", test, "--json"])));
        assert_eq!(run["logits_sha256"], fq["logits_sha256"], "{bn}");
    }
}
