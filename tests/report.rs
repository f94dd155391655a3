//! `potc report`: the table's numbers against independent counts and the
//! accumulator analysis, and the plots.

mod common;

use std::path::Path;

use common::{json, ok, potc, random_config, random_program};
use potc::diagnose::accum::analyse;
use potc::interp::plan::Plan;
use potc::report::report;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const TRAIN: &str = "examples/data/GunPoint_TRAIN.ts";
const TEST: &str = "examples/data/GunPoint_TEST.ts";

/// Trains FCN on GunPoint for `epochs` under w4a8 and lowers it; returns the
/// tempdir, the checkpoint and the program directory.
fn fcn_program(epochs: &str) -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("q.safetensors").to_str().unwrap().to_string();
    let out = dir.path().join("int").to_str().unwrap().to_string();
    let m = "examples/fcn.pot";
    let train = ["train", m, "--train", TRAIN, "--test", TEST, "-o", &ck, "--quant", "w4a8"];
    ok(potc(&[&train[..], &["--epochs", epochs, "--batch-size", "50", "--json"]].concat()));
    ok(potc(&["lower", m, "--weights", &ck, "-o", &out]));
    (dir, ck, out)
}

/// Conv MACs counted from the model text's geometry, by hand: every output
/// step of every output channel reads `in_channels/groups * kernel` taps.
#[test]
fn fcn_macs_and_accumulators_match_independent_counts() {
    let (_dir, ck, out) = fcn_program("0");
    let r = json(&ok(potc(&["report", &out, "--json"])));
    let layers = r["layers"].as_array().unwrap();
    let macs =
        |name: &str| layers.iter().find(|l| l["name"] == name).unwrap()["macs"].as_u64().unwrap();
    // examples/fcn.pot on GunPoint (L = 150, "same" padding).
    assert_eq!(macs("b1"), 128 * 8 * 150); // one input channel
    assert_eq!(macs("b2"), 256 * 128 * 5 * 150);
    assert_eq!(macs("b3"), 128 * 256 * 3 * 150);
    assert_eq!(macs("logits"), 2 * 128);
    assert_eq!(r["totals"]["macs"], 39_475_456);
    // The simulation's accumulator analysis (spec section 7), through `eval`.
    let fq = json(&ok(potc(&[
        "eval",
        "examples/fcn.pot",
        "--weights",
        &ck,
        "--data",
        TEST,
        "--mode",
        "fake-quant",
        "--json",
    ])));
    let bounds = fq["accumulator_bits"].as_object().unwrap();
    assert_eq!(bounds.len(), 4);
    for (layer, bits) in bounds {
        let row = layers.iter().find(|l| l["name"] == *layer).unwrap();
        assert_eq!(row["acc_bits_needed"], *bits, "{layer}");
        assert_eq!(row["acc_bits"], 32);
    }
    // Weight memory: 4-bit weights.
    let b2 = layers.iter().find(|l| l["name"] == "b2").unwrap();
    assert_eq!(b2["weight_memory_bits"], 256 * 128 * 5 * 4);
    let text = ok(potc(&["report", &out]));
    assert!(text.contains("39,475,456 MACs per sample"), "{text}");
    assert!(text.contains("%b2") && text.contains("int4"), "{text}");
}

/// On random networks, the report's accumulator bits are the analysis of
/// the quantized float model, layer for layer.
#[test]
fn accumulator_bits_equal_the_analysis_on_random_networks() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut compared = 0;
    for case in 0..200 {
        let Some((q, store, p)) = random_program(&mut rng, random_config, 32) else { continue };
        let plan = Plan::new(&q).unwrap();
        let w = potc::driver::weights_from(&plan, &store, 0);
        let bounds = analyse(&plan, &w);
        let r = report(&p, potc::report::Target::Cpu).unwrap();
        let macs: Vec<_> = r.layers.iter().filter(|l| l.acc_bits_needed.is_some()).collect();
        assert_eq!(macs.len(), bounds.len(), "case {case}");
        for (row, b) in macs.iter().zip(&bounds) {
            assert_eq!(row.name, b.layer, "case {case}");
            assert_eq!(row.acc_bits_needed, Some(b.bits), "case {case}: %{}", b.layer);
            compared += 1;
        }
    }
    assert!(compared > 300, "only {compared} layers compared");
}

#[test]
fn plots_are_written_and_non_empty() {
    let (dir, _, out) = fcn_program("2");
    let plots = dir.path().join("plots");
    ok(potc(&["report", &out, "--plot", plots.to_str().unwrap()]));
    for f in ["b1", "b2", "b3", "logits"]
        .iter()
        .map(|l| format!("{l}.weights.svg"))
        .chain(["training.svg".to_string()])
    {
        let text = std::fs::read_to_string(plots.join(&f)).unwrap();
        assert!(text.len() > 1000 && text.contains("<svg"), "{f}");
    }
}

#[test]
fn report_errors_are_clear() {
    let (_dir, _, out) = fcn_program("0");
    std::fs::remove_file(std::path::Path::new(&out).join("source.safetensors")).unwrap();
    let o = potc(&["report", &out, "--plot", &format!("{out}/plots")]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("source.safetensors") && err.contains("lower"), "{err}");
    // The table needs only the program.
    ok(potc(&["report", &out, "--json"]));
    let o = potc(&["report", "examples"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

/// A conv whose weight exponents come from `c.exp` and `x.exp`, with float
/// weights for the plot, saved to `dir`.
fn plotted_program(dir: &std::path::Path, exps: &[(&str, Option<Vec<i32>>)]) {
    let text = "model m(%x: i8[2, 6]) {
  %c = int_conv1d(%x) {out_channels = 2, kernel = 3, w_bits = 4} : i32[2, 4]
  %y = requant(%c) {bits = 8} : i8[2, 4]
  return %y
}";
    let w: Vec<i32> = (0..12).map(|i| i % 15 - 7).collect();
    let mut p = common::int_program(
        text,
        &[
            ("c.w", vec![2, 2, 3], w.clone()),
            ("c.b", vec![2], vec![3, -3]),
            ("y.shift", vec![2], vec![2, 2]),
        ],
    )
    .into_inner();
    p.tensors.insert("c.exp".into(), (vec![1], vec![-4]));
    for (name, v) in exps {
        match v {
            Some(v) => p.tensors.insert(name.to_string(), (vec![v.len()], v.clone())),
            None => p.tensors.remove(*name),
        };
    }
    // Saved without the loader's checks, as a hand-edited file would be.
    let mut ck = potc::ckpt::Checkpoint::default();
    ck.set_model(&p.graph);
    for (name, (shape, v)) in &p.tensors {
        ck.insert_i32(name.clone(), shape.clone(), v.clone());
    }
    std::fs::create_dir_all(dir).unwrap();
    ck.save(&dir.join("weights.safetensors")).unwrap();
    std::fs::write(dir.join("model.pot"), potc::ir::print(&p.graph)).unwrap();
    let mut source = potc::report::source::Source::default();
    source
        .weights
        .insert("c.w".into(), (vec![2, 2, 3], w.iter().map(|&v| v as f32 * 0.07).collect()));
    source.save(dir).unwrap();
}

/// `report --plot` on extreme, missing or multi-valued exponents: a plot
/// or an error naming the tensor, never a panic (each used to panic: an
/// `i32` overflow, an index past the exponents, a histogram of infinite
/// width).
#[test]
fn plots_of_odd_exponents_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let run = |exps: &[(&str, Option<Vec<i32>>)]| {
        let prog = dir.path().join("int");
        plotted_program(&prog, exps);
        let out = potc(&[
            "report",
            prog.to_str().unwrap(),
            "--plot",
            dir.path().join("plots").to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.contains("panicked"), "{err}");
        (out.status.code(), err)
    };
    // Weights 2^2023 steps wide: every weight clipped, drawn at the edge.
    let (code, err) = run(&[("c.exp", Some(vec![-1023])), ("x.exp", Some(vec![1000]))]);
    assert_eq!(code, Some(0), "{err}");
    assert!(dir.path().join("plots/c.weights.svg").exists());
    let (code, err) = run(&[("c.exp", Some(vec![i32::MIN]))]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("weights.safetensors") && err.contains("`c.exp`"), "{err}");
    let (code, err) = run(&[("c.exp", None)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("`c.exp`"), "{err}");
    let (code, err) = run(&[("c.exp", Some(vec![-4, -3, -2]))]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("`c.exp`") && err.contains("3 values"), "{err}");
    let (code, err) = run(&[("x.exp", Some(vec![0, 1]))]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("`x.exp`"), "{err}");
}

/// `--target asic`: every MAC layer gets a datapath; with power-of-two
/// weights no layer needs a multiplier, and with 4-bit integer weights none
/// does either (each is at most two signed digits: a shift and an adder);
/// the totals add the layers up.
#[test]
fn asic_datapaths_count_no_multiplier_for_power_of_two_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    for pot in [true, false] {
        let ck = dir.path().join(format!("q{pot}.st"));
        let int = dir.path().join(format!("int{pot}"));
        let (ck, int) = (ck.to_str().unwrap(), int.to_str().unwrap());
        let mut args =
            vec!["train", "examples/fcn.pot", "--train", train, "--test", test, "-o", ck];
        args.extend(["--quant", "w4a8", "--epochs", "0"]);
        if pot {
            args.push("--pot-weights");
        }
        common::ok(common::potc(&args));
        common::ok(common::potc(&["lower", "examples/fcn.pot", "--weights", ck, "-o", int]));
        let r =
            common::json(&common::ok(common::potc(&["report", int, "--target", "asic", "--json"])));
        let layers: Vec<&serde_json::Value> =
            r["layers"].as_array().unwrap().iter().filter(|l| l["weights"].is_object()).collect();
        assert_eq!(layers.len(), 4);
        let count =
            |k: &str| layers.iter().map(|l| l["datapath"][k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(r["totals"]["datapath"]["multipliers"].as_u64(), Some(count("multipliers")));
        assert_eq!(r["totals"]["datapath"]["adders"].as_u64(), Some(count("adders")));
        assert_eq!(count("multipliers"), 0);
        assert!(count("shifters") > 0);
        assert!(count("adders") > 0);
        // Lowered for an ASIC, every integer layer records the shift-add
        // datapath extraction chose, and computes the same integers.
        let asic = dir.path().join(format!("asic{pot}"));
        let asic = asic.to_str().unwrap();
        let args = ["lower", "examples/fcn.pot", "--weights", ck, "-o", asic, "--target", "asic"];
        common::ok(common::potc(&args));
        let text = std::fs::read_to_string(Path::new(asic).join("model.pot")).unwrap();
        let want = if pot { 0 } else { 4 };
        assert_eq!(text.matches("datapath = shift_add").count(), want, "{text}");
        let sha = |p: &str| {
            let run = ["run", p, "--data", test, "--engine", "interp", "--json"];
            common::json(&common::ok(common::potc(&run)))["logits_sha256"].clone()
        };
        assert_eq!(sha(int), sha(asic));
        // Without --target asic the report has no datapath.
        let cpu = common::json(&common::ok(common::potc(&["report", int, "--json"])));
        assert!(cpu["layers"].as_array().unwrap().iter().all(|l| l.get("datapath").is_none()));
    }
}
