//! Quantization-aware training end to end on a tiny slice: float training,
//! then QAT from it; the checkpoint's scales are exact powers of two, the
//! exact fake-quant evaluation agrees with training's, and runs repeat.

use clap::Parser;
use potc::ckpt::Checkpoint;
use potc::driver::{self, EvalOptions, TrainOptions};
use potc::quant::quantizer::pow2;
use std::path::{Path, PathBuf};

#[derive(Parser)]
struct TrainCli {
    #[command(flatten)]
    o: TrainOptions,
}

#[derive(Parser)]
struct EvalCli {
    #[command(flatten)]
    o: EvalOptions,
}

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("potc-qat-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn train(model: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let text = try_train(&format!("{ROOT}/examples/{model}.pot"), out, extra)
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap()
}

/// `potc train MODEL --train GunPoint_TRAIN --test GunPoint_TRAIN -o OUT --threads 2 --json EXTRA...`
fn try_train(model: &str, out: &Path, extra: &[&str]) -> Result<String, String> {
    let data = format!("{ROOT}/examples/data/GunPoint_TRAIN.ts");
    let mut args =
        vec!["potc", model, "--train", &data, "--test", &data, "-o", out.to_str().unwrap()];
    args.extend(["--threads", "2", "--json"]);
    args.extend(extra);
    driver::train(&TrainCli::parse_from(args).o).map_err(|e| e.0)
}

fn eval(model: &str, ck: &Path, mode: &str) -> Result<serde_json::Value, String> {
    let data = format!("{ROOT}/examples/data/GunPoint_TRAIN.ts");
    let m = format!("{ROOT}/examples/{model}.pot");
    let args =
        ["potc", &m, "--weights", ck.to_str().unwrap(), "--data", &data, "--mode", mode, "--json"];
    driver::eval(&EvalCli::parse_from(args).o)
        .map(|t| serde_json::from_str(&t).unwrap())
        .map_err(|e| e.0)
}

#[test]
fn fold_then_qat_has_power_of_two_scales_and_exact_eval() {
    qat_run("fold-then-qat", "b");
}

#[test]
fn fold_sim_has_power_of_two_scales_and_exact_eval() {
    qat_run("fold-sim", "c");
}

/// QAT of the tiny model in one batch-norm mode; `conv` names the conv whose
/// weight exponent the checkpoint holds (folded before QAT, it is named after
/// its batch norm).
fn qat_run(bn: &str, conv: &str) {
    let d = dir(bn);
    let (float, q) = (d.join("float.safetensors"), d.join("q.safetensors"));
    train("tiny", &float, &["--epochs", "3", "--lr", "1e-2"]);
    let init = float.to_str().unwrap();
    let qat = ["--epochs", "2", "--quant", "w4a8", "--bn", bn, "--freeze-bn", "1", "--init", init];
    let trained = train("tiny", &q, &qat);

    // Every scale is 2^e with e an integer, stored as such.
    let ck = Checkpoint::load(&q).unwrap();
    let exps: Vec<(&String, &[i32])> = ck
        .tensors
        .keys()
        .filter(|n| n.ends_with(".exp") || n.ends_with(".w_exp"))
        .map(|n| (n, ck.i32(n).unwrap().1))
        .collect();
    let names: Vec<&str> = exps.iter().map(|(n, _)| n.as_str()).collect();
    let conv_exp = format!("{conv}.w_exp");
    assert_eq!(names, [conv_exp.as_str(), "g.q.exp", "r.q.exp", "x.q.exp", "y.w_exp"]);
    // The stored integer is the exponent the trained threshold gives.
    let (_, t) = ck.f32("x.q.log2t").unwrap();
    let input = potc::quant::QuantSpec { bits: 8, signed: true, narrow: false };
    assert_eq!(ck.i32("x.q.exp").unwrap().1, [input.exponent(t[0])]);
    let (_, t) = ck.f32("y.w_log2t").unwrap();
    let spec = potc::quant::kernels::weight_spec(4, potc::quant::WeightFormat::Int);
    // One exponent per output channel (the default).
    let want: Vec<i32> = t.iter().map(|&t| spec.exponent(t)).collect();
    assert_eq!((ck.i32("y.w_exp").unwrap().1, want.len()), (&want[..], 2));
    assert!(want.iter().all(|&e| pow2(e) > 0.0));

    // The exact fake-quant evaluation reproduces training's accuracy and
    // gives the integers' hash; float mode refuses a QAT checkpoint.
    let fq = eval("tiny", &q, "fake-quant").unwrap();
    assert_eq!(fq["accuracy"], trained["test_accuracy"]);
    assert_eq!(fq["logits_sha256"].as_str().map(str::len), Some(64));
    let acc = fq["accumulator_bits"].as_object().unwrap();
    assert!(
        acc.contains_key("y") && acc.values().all(|b| (2..=32).contains(&b.as_u64().unwrap())),
        "{acc:?}"
    );
    assert!(eval("tiny", &q, "float").unwrap_err().contains("--mode fake-quant"));
    assert!(eval("tiny", &float, "fake-quant").unwrap_err().contains("float checkpoint"));

    // Deterministic, and resumable under --quant too.
    let again = d.join("again.safetensors");
    train("tiny", &again, &qat);
    assert!(std::fs::read(&q).unwrap() == std::fs::read(&again).unwrap(), "same run, other bytes");
    let resumed = d.join("resumed.safetensors");
    let mut first = qat.to_vec();
    first[1] = "1";
    train("tiny", &resumed, &first);
    train("tiny", &resumed, &[&qat[..], &["--resume"]].concat());
    assert!(
        std::fs::read(&q).unwrap() == std::fs::read(&resumed).unwrap(),
        "resumed != uninterrupted"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_quant_specs_are_refused() {
    let d = dir("bad");
    let m = format!("{ROOT}/examples/tiny.pot");
    let out = d.join("x.safetensors");
    for spec in ["w1a8", "w4", "w4a17"] {
        let e = try_train(&m, &out, &["--quant", spec]).unwrap_err();
        assert!(e.contains("expected w<bits>a<bits>"), "{e}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A lone batch norm (after an add) trains as a quantized depthwise conv under
/// simulated folding, as inference runs it; a resumed run must ask for the
/// same quantization.
#[test]
fn fold_sim_with_a_lone_batch_norm_matches_inference() {
    let d = dir("lone");
    let model = d.join("res.pot");
    std::fs::write(
        &model,
        "model res(%x: [1, 16]) {\n  %c = conv1d(%x) {out_channels = 4, kernel = 3, padding = same}\n  \
         %b = batch_norm(%c)\n  %r = relu(%b)\n  %d = conv1d(%r) {out_channels = 4, kernel = 1}\n  \
         %s = add(%d, %r)\n  %n = batch_norm(%s)\n  %t = relu(%n)\n  %g = global_avg_pool(%t)\n  \
         %y = linear(%g) {out_features = 2}\n  return %y\n}\n",
    )
    .unwrap();
    let m = model.to_str().unwrap();
    let data = format!("{ROOT}/examples/data/GunPoint_TRAIN.ts");
    let run = |out: &Path, extra: &[&str]| {
        try_train(m, out, extra).map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap())
    };
    let (float, q) = (d.join("f.safetensors"), d.join("q.safetensors"));
    run(&float, &["--epochs", "2", "--lr", "1e-2"]).unwrap();
    let f = float.to_str().unwrap();
    let trained = run(
        &q,
        &["--epochs", "2", "--quant", "w4a8", "--bn", "fold-sim", "--freeze-bn", "1", "--init", f],
    )
    .unwrap();
    let ck = Checkpoint::load(&q).unwrap();
    assert!(
        ck.f32("n.w_log2t").is_some() && ck.f32("s.q.log2t").is_some(),
        "lone batch norm trained quantized"
    );
    let args = [
        "potc",
        m,
        "--weights",
        q.to_str().unwrap(),
        "--data",
        &data,
        "--mode",
        "fake-quant",
        "--json",
    ];
    let fq: serde_json::Value =
        serde_json::from_str(&driver::eval(&EvalCli::parse_from(args).o).unwrap()).unwrap();
    assert_eq!(fq["accuracy"], trained["test_accuracy"]);

    let e = run(&q, &["--epochs", "3", "--quant", "w4a8", "--bn", "fold-then-qat", "--resume"])
        .unwrap_err();
    assert!(e.contains("trained with --quant w4a8 --bn fold-sim"), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Power-of-two and additive power-of-two weights: the exact evaluation
/// agrees with training, the stored exponent is the format's quantizer's,
/// and the checkpoint records the format.
#[test]
fn shift_format_weights_train_and_evaluate() {
    use potc::quant::WeightFormat;
    let d = dir("pot");
    let (float, q) = (d.join("float.safetensors"), d.join("q.safetensors"));
    train("tiny", &float, &["--epochs", "2", "--lr", "1e-2"]);
    let init = float.to_str().unwrap();
    for format in [WeightFormat::Pot, WeightFormat::Apot] {
        let flag = format!("--{format}-weights");
        let trained =
            train("tiny", &q, &["--epochs", "2", "--quant", "w4a8", &flag, "--init", init]);
        let fq = eval("tiny", &q, "fake-quant").unwrap();
        assert_eq!(fq["accuracy"], trained["test_accuracy"]);
        let ck = Checkpoint::load(&q).unwrap();
        let (_, t) = ck.f32("y.w_log2t").unwrap();
        let spec = potc::quant::kernels::weight_spec(4, format);
        let want: Vec<i32> = t.iter().map(|&t| spec.exponent(t)).collect();
        assert_eq!(ck.i32("y.w_exp").unwrap().1, &want[..]);
        let meta = ck.meta.get("quant").unwrap();
        assert!(meta.contains(&format!("\"{format}_weights\":true")), "{meta}");
    }

    // Percentile calibration is recorded, and a resume must repeat it.
    let pc = d.join("pc.safetensors");
    let args =
        ["--epochs", "1", "--quant", "w4a8", "--calibration-percentile", "99", "--init", init];
    train("tiny", &pc, &args);
    let meta = Checkpoint::load(&pc).unwrap().meta.get("quant").unwrap().clone();
    assert!(meta.contains("\"percentile\":99.0"), "{meta}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Raw readings far from zero: a new QAT run widens the input quantizer
/// until the data's spread spans `2^(a_bits - 4)` steps, records the width,
/// keeps it when resumed, and `--input-bits` overrides it.
#[test]
fn the_input_widens_for_data_far_from_zero() {
    let d = dir("offset");
    // Mean 5, deviation about 0.1, max 5.1: 8 input bits leave a step of
    // 2^-4 (under one step per deviation); 2^4 steps need 2^-8: 12 bits.
    let mut ts =
        String::from("@problemName offset\n@univariate true\n@classLabel true a b\n@data\n");
    for i in 0..8 {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        let row: Vec<String> = (0..16)
            .map(|t| format!("{}", 5.0 + sign * 0.1 * ((t % 2) as f64 * 2.0 - 1.0)))
            .collect();
        ts += &format!("{}:{}\n", row.join(","), if i % 2 == 0 { "a" } else { "b" });
    }
    let data = d.join("offset.ts");
    std::fs::write(&data, ts).unwrap();
    let (m, data) = (format!("{ROOT}/examples/tiny.pot"), data.to_str().unwrap().to_string());
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec!["potc", &m, "--train", &data, "--test", &data, "--threads", "1"];
        args.extend(["--quant", "w8a8", "--json", "-o", out.to_str().unwrap()]);
        args.extend(extra);
        driver::train(&TrainCli::parse_from(args).o).unwrap_or_else(|e| panic!("{}", e.0));
    };
    let input_bits = |ck: &Path| -> Option<u64> {
        let q: serde_json::Value = Checkpoint::load(ck).unwrap().json("quant").unwrap().unwrap();
        q["input_bits"].as_u64()
    };
    let auto = d.join("auto.safetensors");
    run(&auto, &["--epochs", "1"]);
    assert_eq!(input_bits(&auto), Some(12));
    run(&auto, &["--epochs", "2", "--resume"]);
    assert_eq!(input_bits(&auto), Some(12), "a resumed run keeps its width");
    let narrow = d.join("narrow.safetensors");
    run(&narrow, &["--epochs", "1", "--input-bits", "8"]);
    assert_eq!(input_bits(&narrow), None, "--input-bits 8 at a8 is the plain a_bits");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Batch norm folds before QAT from float weights (their statistics are
/// trained) and is simulated from fresh ones; a continued run keeps its own.
#[test]
fn batch_norm_folds_before_qat_from_a_float_init() {
    let d = dir("bn-default");
    let bn = |ck: &Path| -> String {
        let q: serde_json::Value = Checkpoint::load(ck).unwrap().json("quant").unwrap().unwrap();
        q["bn"].as_str().unwrap().to_string()
    };
    let (float, fresh, tuned) =
        (d.join("f.safetensors"), d.join("fresh.safetensors"), d.join("tuned.safetensors"));
    train("tiny", &float, &["--epochs", "1"]);
    train("tiny", &fresh, &["--epochs", "1", "--quant", "w4a8"]);
    assert_eq!(bn(&fresh), "fold-sim");
    let init = float.to_str().unwrap();
    train("tiny", &tuned, &["--epochs", "1", "--quant", "w4a8", "--init", init]);
    assert_eq!(bn(&tuned), "fold-then-qat");
    train("tiny", &tuned, &["--epochs", "2", "--quant", "w4a8", "--resume"]);
    assert_eq!(bn(&tuned), "fold-then-qat", "a resumed run keeps its own");
    let (again, sim) = (d.join("again.safetensors"), d.join("sim.safetensors"));
    train("tiny", &again, &["--epochs", "1", "--quant", "w4a8", "--init", fresh.to_str().unwrap()]);
    assert_eq!(bn(&again), "fold-sim", "a quantization-aware --init keeps its own");
    train("tiny", &sim, &["--epochs", "1", "--quant", "w4a8", "--bn", "fold-sim", "--init", init]);
    assert_eq!(bn(&sim), "fold-sim", "--bn wins");
    std::fs::remove_dir_all(&d).unwrap();
}
