//! `potc import` against ONNX Runtime: every fixture in tests/fixtures/onnx
//! (made by scripts/onnx-fixtures.py from PyTorch, both exporters) imports,
//! and potc's float network computes ONNX Runtime's outputs; the text
//! round-trips; errors name what is wrong in one line; and an imported FCN
//! trains under QAT and lowers to integers that equal its simulation.

mod common;

use common::{json, ok, potc};
use potc::interp::{forward, Mode, Plan, Weights};
use potc::onnx::{import, proto, ImportError, ImportSettings};
use prost::Message;
use std::path::{Path, PathBuf};

const FIXTURES: &str = "tests/fixtures/onnx";

/// Every fixture: its `.onnx` file and its JSON of inputs and reference outputs.
fn fixtures() -> Vec<(String, PathBuf, serde_json::Value)> {
    let mut out = vec![];
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let j: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            out.push((name, path.with_extension("onnx"), j));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    // Six models, each from both exporters, two of them also with batch norm
    // kept, one with a symbolic length.
    assert!(out.len() >= 16, "fixtures missing in {FIXTURES}: found {}", out.len());
    out
}

/// Imports a fixture at its JSON's input length (files with a symbolic
/// length need it; the others fix the same one).
fn import_file(path: &Path, j: &serde_json::Value) -> Result<potc::onnx::Imported, ImportError> {
    let settings = ImportSettings { name: "imported".into(), length: Some(length(j)) };
    import(&std::fs::read(path).unwrap(), &settings)
}

fn length(j: &serde_json::Value) -> usize {
    j["input_shape"][1].as_u64().unwrap() as usize
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[test]
fn every_fixture_imports_and_matches_onnx_runtime() {
    for (name, onnx, j) in fixtures() {
        let im = import_file(&onnx, &j).unwrap_or_else(|e| panic!("{name}: {e}"));
        potc::ir::verify(&im.graph).unwrap();
        let plan = Plan::new(&im.graph).unwrap();
        let mut w: Weights = plan
            .params
            .iter()
            .map(|p| {
                let (_, dims, v) = im.params.iter().find(|(n, _, _)| *n == p.name).unwrap();
                assert_eq!(dims, &p.shape, "{name}: {}", p.name);
                v.clone()
            })
            .collect();
        let inputs = j["inputs"].as_array().unwrap();
        let outputs = j["outputs"].as_array().unwrap();
        assert!(!inputs.is_empty());
        for (x, want) in inputs.iter().zip(outputs) {
            let (x, want) = (floats(x), floats(want));
            let tape = forward(&plan, &mut w, x, 1, Mode::Eval, 1);
            let got = tape.output(&plan);
            assert_eq!(got.len(), want.len(), "{name}");
            // Relative to the sample's largest output: the logits differ only
            // in f32 summation order.
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
            assert!(err <= 1e-5, "{name}: relative error {err:e}: {got:?} vs {want:?}");
        }
    }
}

/// The model text as `potc import` writes it, for every fixture: it parses
/// back to the same graph, and its checkpoint is the model's.
#[test]
fn imported_text_round_trips_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    for (name, onnx, j) in fixtures() {
        let pot = dir.path().join(format!("{name}.pot"));
        let ck = dir.path().join(format!("{name}.safetensors"));
        let l = length(&j).to_string();
        ok(potc(&["import", onnx.to_str().unwrap(), "-o", pot.to_str().unwrap(), "--length", &l]));
        let text = std::fs::read_to_string(&pot).unwrap();
        let g = potc::syntax::parse(&text).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        let im = import_file(&onnx, &j).unwrap();
        assert_eq!(
            potc::ir::print(&g).replace(&g.name, "M"),
            potc::ir::print(&im.graph).replace("imported", "M")
        );
        let loaded = potc::ckpt::Checkpoint::load(&ck).unwrap();
        loaded.check_against(&g).unwrap();
        insta::assert_snapshot!(format!("import_{name}"), text);
        // `print` accepts the pair.
        ok(potc(&["print", pot.to_str().unwrap(), "--weights", ck.to_str().unwrap()]));
    }
}

/// Runs `potc import` on `bytes` written to a file; the error's one line.
fn import_error(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("m.onnx");
    std::fs::write(&onnx, bytes).unwrap();
    let out =
        potc(&["import", onnx.to_str().unwrap(), "-o", dir.path().join("m.pot").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!dir.path().join("m.pot").exists(), "nothing is written on an error");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn fcn_model() -> proto::ModelProto {
    let bytes = std::fs::read(format!("{FIXTURES}/fcn.torchscript.onnx")).unwrap();
    proto::ModelProto::decode(bytes.as_slice()).unwrap()
}

#[test]
fn an_unsupported_op_names_the_node_and_what_is_supported() {
    let mut m = fcn_model();
    let g = m.graph.as_mut().unwrap();
    let relu = g.node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
    relu.op_type = "Sigmoid".into();
    let err = import_error(&m.encode_to_vec());
    assert!(err.contains("node \"/Relu\" (Sigmoid)"), "{err}");
    assert!(err.contains("not supported") && err.contains("Conv, BatchNormalization"), "{err}");
}

#[test]
fn a_truncated_file_and_a_non_onnx_file_are_clear_errors() {
    let bytes = std::fs::read(format!("{FIXTURES}/fcn.torchscript.onnx")).unwrap();
    let err = import_error(&bytes[..bytes.len() / 2]);
    assert!(err.contains("m.onnx: error: not an ONNX model"), "{err}");
    let err = import_error(b"model fcn(%x: [1, 150]) {\n  return %x\n}\n");
    assert!(err.contains("m.onnx: error: not an ONNX model"), "{err}");
    let err = import_error(b"");
    assert!(err.contains("not an ONNX model"), "{err}");
}

#[test]
fn attributes_potc_cannot_honour_are_refused() {
    let mut m = fcn_model();
    let g = m.graph.as_mut().unwrap();
    let conv = g.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    conv.attribute.push(proto::AttributeProto {
        name: "strange".into(),
        r#type: proto::attr_type::INT,
        i: 1,
        ..Default::default()
    });
    let err = import_error(&m.encode_to_vec());
    assert!(err.contains("attribute `strange` is not supported for Conv"), "{err}");
}

#[test]
fn a_missing_initializer_is_named() {
    let mut m = fcn_model();
    let g = m.graph.as_mut().unwrap();
    let w = g.node.iter().find(|n| n.op_type == "Conv").unwrap().input[1].clone();
    g.initializer.retain(|t| t.name != w);
    let err = import_error(&m.encode_to_vec());
    assert!(
        err.contains(&format!("reads \"{w}\", which no initializer or earlier node defines")),
        "{err}"
    );
}

/// The whole path on real data: PyTorch's FCN (batch norm kept) imported,
/// fine-tuned under w4a8 from its own weights, lowered and run: the
/// integers equal the simulation's.
#[test]
fn an_imported_fcn_trains_lowers_and_runs_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
    let (train, test) = ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");
    let onnx = format!("{FIXTURES}/fcn_bn.torchscript.onnx");
    let (m, init, q, int) = (p("fcn.pot"), p("fcn.safetensors"), p("q.safetensors"), p("int"));
    ok(potc(&["import", &onnx, "-o", &m, "--weights-out", &init, "--labels", "2,1"]));
    // The labels given are the checkpoint's class order.
    let labels = potc::ckpt::Checkpoint::load(Path::new(&init)).unwrap();
    let labels = potc::train::checkpoint::labels(&labels).unwrap();
    assert_eq!(labels, ["2", "1"]);
    let float = json(&ok(potc(&["eval", &m, "--weights", &init, "--data", test, "--json"])));
    assert!(float["accuracy"].as_f64().is_some());
    let args = ["train", &m, "--train", train, "--test", test, "-o", &q, "--init", &init];
    ok(potc(&[&args[..], &["--quant", "w4a8", "--epochs", "2", "--json"]].concat()));
    let fq = json(&ok(potc(&[
        "eval",
        &m,
        "--weights",
        &q,
        "--data",
        test,
        "--mode",
        "fake-quant",
        "--json",
    ])));
    ok(potc(&["lower", &m, "--weights", &q, "-o", &int]));
    let run = json(&ok(potc(&["run", &int, "--data", test, "--json"])));
    assert_eq!(run["logits_sha256"], fq["logits_sha256"]);
    assert_eq!(run["accuracy"], fq["accuracy"]);
}

/// A dynamic length (`dynamic_axes={"x": {0: "batch", 2: "length"}}`) needs
/// `--length`; a length the file fixes must not be contradicted.
#[test]
fn a_symbolic_length_is_given_with_length() {
    let mut m = fcn_model();
    let g = m.graph.as_mut().unwrap();
    let dims = &mut g.input[0].r#type.as_mut().unwrap().tensor_type.as_mut().unwrap();
    let dim = &mut dims.shape.as_mut().unwrap().dim[2];
    dim.value = Some(proto::DimValue::DimParam("length".into()));
    let bytes = m.encode_to_vec();
    let err = import_error(&bytes);
    assert!(err.contains("the length is symbolic; give one with --length"), "{err}");
    let settings = ImportSettings { name: "m".into(), length: Some(300) };
    let im = import(&bytes, &settings).unwrap();
    assert_eq!(im.graph.node(im.graph.inputs()[0]).ty.shape, vec![1, 300]);
    let fixed = std::fs::read(format!("{FIXTURES}/fcn.torchscript.onnx")).unwrap();
    let e = import(&fixed, &settings).unwrap_err().to_string();
    assert!(e.contains("the file fixes the length at 150, not 300"), "{e}");
}
