//! Diagnostics that speak up, through the command line's `--json`: a dead
//! batch-norm channel, clipped weights and activations, idle levels, the
//! per-layer SQNR against a hand computation, and silence on a healthy model.

mod common;

use common::{json, ok, potc};
use potc::ckpt::Checkpoint;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("potc-diag-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn gunpoint() -> String {
    format!("{ROOT}/examples/data/GunPoint_TRAIN.ts")
}

/// `potc train MODEL --train DATA --test DATA -o OUT --threads 2 --json EXTRA...`:
/// its JSON and standard error.
fn train(model: &str, data: &str, out: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["train", model, "--train", data, "--test", data];
    args.extend(["-o", out.to_str().unwrap(), "--threads", "2", "--json"]);
    args.extend(extra);
    let run = potc(&args);
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    (json(&ok(run)), stderr)
}

/// `potc eval MODEL --weights CKPT --data DATA --mode MODE --json`.
fn eval(model: &str, ck: &Path, data: &str, mode: &str) -> serde_json::Value {
    let ck = ck.to_str().unwrap();
    json(&ok(potc(&["eval", model, "--weights", ck, "--data", data, "--mode", mode, "--json"])))
}

fn warnings(v: &serde_json::Value) -> Vec<String> {
    let list = v["warnings"].as_array().unwrap_or_else(|| panic!("no warnings list: {v}"));
    list.iter().map(|w| w.as_str().unwrap().to_string()).collect()
}

fn has(list: &[String], part: &str) -> bool {
    list.iter().any(|w| w.contains(part))
}

/// A copy of checkpoint `from` at `to` with tensor `name` changed by `edit`.
fn edit(from: &Path, to: &Path, name: &str, change: impl Fn(&mut Vec<f32>)) {
    let mut ck = Checkpoint::load(from).unwrap();
    let (shape, v) = ck.f32(name).unwrap();
    let (shape, mut v) = (shape.to_vec(), v.to_vec());
    change(&mut v);
    ck.insert_f32(name, shape, v);
    ck.save(to).unwrap();
}

#[test]
fn a_dead_batch_norm_channel_is_named() {
    let d = dir("dead");
    let model = format!("{ROOT}/examples/tiny.pot");
    let (float, dead) = (d.join("float.safetensors"), d.join("dead.safetensors"));
    let (trained, _) = train(&model, &gunpoint(), &float, &["--epochs", "2", "--lr", "1e-2"]);
    assert_eq!(warnings(&trained), Vec::<String>::new());
    edit(&float, &dead, "b.var", |v| v[1] = 1e-7);

    let said = warnings(&eval(&model, &dead, &gunpoint(), "float"));
    assert!(has(&said, "batch norm `%b` channel 1 is dead"), "{said:?}");
    assert_eq!(said.len(), 1, "{said:?}");

    let q = d.join("q.safetensors");
    let init = ["--epochs", "1", "--quant", "w8a8", "--init", dead.to_str().unwrap()];
    let (qat, stderr) = train(&model, &gunpoint(), &q, &init);
    let said = warnings(&qat);
    assert!(has(&said, "after calibration: batch norm `%b` channel 1 is dead"), "{said:?}");
    assert!(stderr.contains("warning: after calibration: batch norm `%b` channel 1"), "{stderr}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A one-layer network on a `.tsv` data set the test writes: the model, the
/// data and the series.
fn one_layer(d: &Path) -> (String, String, Vec<Vec<f64>>) {
    let model = d.join("one.pot");
    std::fs::write(
        &model,
        "model one(%x: [1, 64]) {\n  %f = flatten(%x)\n  %y = linear(%f) {out_features = 2}\n  return %y\n}\n",
    )
    .unwrap();
    let series: Vec<Vec<f64>> = (0..40)
        .map(|i| {
            (0..64)
                .map(|t| {
                    let v = ((i * 7 + t * 3) as f64 * 0.37).sin() * 1.7 + (i % 2) as f64 * 0.5;
                    (v * 1e4).round() / 1e4 // as written, so f32 parsing is the only rounding
                })
                .collect()
        })
        .collect();
    let text: String = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let values: Vec<String> = s.iter().map(|v| v.to_string()).collect();
            format!("{}\t{}\n", i % 2, values.join("\t"))
        })
        .collect();
    let data = d.join("one.tsv");
    std::fs::write(&data, text).unwrap();
    let m = model.to_str().unwrap().to_string();
    (m, data.to_str().unwrap().to_string(), series)
}

/// `fq(v) = clamp(floor(v * 2^-e + 0.5), lo, hi) * 2^e`, written out here.
fn fq(v: f64, e: i32, lo: f64, hi: f64) -> f64 {
    ((v * 2f64.powi(-e) + 0.5).floor()).clamp(lo, hi) * 2f64.powi(e)
}

fn db(signal: f64, noise: f64) -> f64 {
    10.0 * (signal / noise).log10()
}

#[test]
fn sqnr_of_one_linear_layer_matches_a_hand_computation() {
    let d = dir("sqnr");
    let (model, data, series) = one_layer(&d);
    let q = d.join("q.safetensors");
    train(&model, &data, &q, &["--epochs", "1", "--quant", "w4a8"]);
    let got = eval(&model, &q, &data, "fake-quant");

    let ck = Checkpoint::load(&q).unwrap();
    let (w, b) = (ck.f32("y.w").unwrap().1, ck.f32("y.b").unwrap().1);
    let (ex, ew) = (ck.i32("x.q.exp").unwrap().1[0], ck.i32("y.w_exp").unwrap().1[0]);
    let (mut x_sig, mut x_noise, mut y_sig, mut y_noise) = (0.0, 0.0, 0.0, 0.0);
    for s in &series {
        let x: Vec<f64> = s.iter().map(|&v| v as f32 as f64).collect();
        let xq: Vec<f64> = x.iter().map(|&v| fq(v, ex, -128.0, 127.0)).collect();
        for (a, b) in x.iter().zip(&xq) {
            (x_sig, x_noise) = (x_sig + a * a, x_noise + (a - b) * (a - b));
        }
        for o in 0..2 {
            let row = &w[o * 64..][..64];
            let float: f64 =
                row.iter().zip(&x).map(|(&w, x)| w as f64 * x).sum::<f64>() + b[o] as f64;
            let quant: f64 =
                row.iter().zip(&xq).map(|(&w, x)| fq(w as f64, ew, -7.0, 7.0) * x).sum::<f64>()
                    + fq(b[o] as f64, ew + ex, -f64::MAX, f64::MAX);
            (y_sig, y_noise) = (y_sig + float * float, y_noise + (float - quant) * (float - quant));
        }
    }
    let sqnr = &got["sqnr_db"];
    let (want_x, want_y) = (db(x_sig, x_noise), db(y_sig, y_noise));
    assert!((sqnr["x.q"].as_f64().unwrap() - want_x).abs() < 1e-3, "{sqnr} vs x.q {want_x}");
    assert!((sqnr["y"].as_f64().unwrap() - want_y).abs() < 1e-2, "{sqnr} vs y {want_y}");
    assert!(want_x > 20.0 && want_y > 5.0, "{want_x} {want_y}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn clipping_and_idle_levels_warn() {
    let d = dir("clip");
    let (model, data, _) = one_layer(&d);
    let q = d.join("q.safetensors");
    train(&model, &data, &q, &["--epochs", "1", "--quant", "w4a8", "--per-tensor"]);

    // A weight threshold far below the weights: e = -6 - 3, the largest level 7/512.
    let clipped = d.join("clipped.safetensors");
    edit(&q, &clipped, "y.w_log2t", |t| t[0] = -6.5);
    let said = warnings(&eval(&model, &clipped, &data, "fake-quant"));
    assert!(
        has(&said, "layer `%y`: ")
            && has(&said, "weights")
            && has(&said, "lie beyond its largest level (0.01367)"),
        "{said:?}"
    );

    // One weight of 50 sets the range: step 8, every other weight rounds to 0.
    let outlier = d.join("outlier.safetensors");
    edit(&q, &outlier, "y.w", |w| w[0] = 50.0);
    let mut ck = Checkpoint::load(&outlier).unwrap();
    ck.insert_f32("y.w_log2t", vec![1], vec![50f32.log2()]);
    ck.save(&outlier).unwrap();
    let said = warnings(&eval(&model, &outlier, &data, "fake-quant"));
    assert!(has(&said, "layer `%y`: its weights take 2 of 15 levels (4-bit)"), "{said:?}");
    let figures = &eval(&model, &outlier, &data, "fake-quant")["quantizers"];
    let y = figures.as_array().unwrap().iter().find(|q| q["name"] == "y").unwrap();
    let want = serde_json::json!({"name": "y", "of": "weights", "bits": 4, "values": 128,
        "clipped": 0, "levels_used": 2, "levels": 15});
    assert_eq!(y, &want);
    assert!(has(&said, "--per-tensor"), "{said:?}");

    // An input threshold of 2^-3: most inputs lie beyond 127/1024.
    let narrow = d.join("narrow.safetensors");
    edit(&q, &narrow, "x.q.log2t", |t| t[0] = -3.0);
    let said = warnings(&eval(&model, &narrow, &data, "fake-quant"));
    assert!(
        has(&said, "quantizer `%x.q`: ") && has(&said, "values") && has(&said, "(0.1240)"),
        "{said:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_healthy_model_gets_no_warnings() {
    let d = dir("healthy");
    let model = format!("{ROOT}/examples/tiny.pot");
    let (float, q) = (d.join("float.safetensors"), d.join("q.safetensors"));
    let (f, _) = train(&model, &gunpoint(), &float, &["--epochs", "3", "--lr", "1e-2"]);
    assert_eq!(warnings(&f), Vec::<String>::new());
    let init = ["--epochs", "2", "--quant", "w8a8", "--init", float.to_str().unwrap()];
    let (trained, stderr) = train(&model, &gunpoint(), &q, &init);
    assert_eq!(warnings(&trained), Vec::<String>::new(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let got = eval(&model, &q, &gunpoint(), "fake-quant");
    assert_eq!(warnings(&got), Vec::<String>::new());
    let sqnr = got["sqnr_db"].as_object().unwrap();
    let names: Vec<&str> = sqnr.keys().map(String::as_str).collect();
    assert_eq!(names.len(), 4, "{names:?}"); // x.q, r.q, g.q and the logits y
    assert!(sqnr.values().all(|v| v.as_f64().is_some_and(|db| db > 10.0)), "{sqnr:?}");
    assert_eq!(warnings(&eval(&model, &float, &gunpoint(), "float")), Vec::<String>::new());
    assert_eq!(warnings(&eval(&model, &q, &gunpoint(), "int")), Vec::<String>::new());
    std::fs::remove_dir_all(&d).unwrap();
}
