//! `potc export --format onnx` in ONNX Runtime: the exported model passes the
//! ONNX checker and its int32 outputs equal the integer interpreter's bit for
//! bit (`logits_sha256`): each example on a shared data set (every set once,
//! with integer, power-of-two and additive power-of-two weights), and random
//! programs on random inputs. `potc export --format qonnx` in the qonnx
//! package's executor: its float logits equal the fake-quant logits bit for
//! bit on the same cases. With `POTC_ONNX_ALL=1` both run every example on
//! every shared data set.
//!
//! ONNX Runtime and qonnx are Python: the tests run `scripts/onnx-run.py`
//! and `scripts/qonnx-run.py` with the
//! interpreter of `target/pyenv` (made by `scripts/python-env.sh`) or the one
//! `POTC_PYTHON` names, and fail with that instruction when there is none.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, potc, random_config, random_inputs, random_program};
use potc::backend::EngineKind;
use potc::driver::{load_data, load_program, logits_sha256, run_program};
use potc::program::IntProgram;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use sha2::Digest;

/// Each shared data set with an example: every example once, the
/// residual network on the shortest series.
const CASES: [(&str, &str); 5] = [
    ("BasicMotions", "basicmotions"),
    ("GunPoint", "fcn"),
    ("ItalyPowerDemand", "resnet"),
    ("JapaneseVowels", "fcn_basicmotions"),
    ("PickupGestureWiimoteZ", "tiny"),
];

/// [`CASES`], or with `POTC_ONNX_ALL` set every example on every set.
fn cases() -> Vec<(&'static str, &'static str)> {
    match std::env::var_os("POTC_ONNX_ALL") {
        Some(_) => {
            CASES.iter().flat_map(|(s, _)| CASES.iter().map(move |(_, e)| (*s, *e))).collect()
        }
        None => CASES.to_vec(),
    }
}

/// The Python with onnx, onnxruntime and qonnx.
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = std::env::var_os("POTC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/pyenv/bin/python"));
    assert!(
        py.exists(),
        "{} is missing: these tests run ONNX Runtime from Python; run scripts/python-env.sh \
         (it makes target/pyenv), or set POTC_PYTHON to an interpreter with the packages of \
         scripts/requirements.txt",
        py.display()
    );
    py
}

/// Runs each (model, input) pair in ONNX Runtime; one JSON object each.
fn onnx_runtime(pairs: &[(PathBuf, PathBuf)]) -> Vec<Value> {
    run_script("onnx-run.py", pairs)
}

/// Runs `scripts/<script>` on the (model, input) pairs; one JSON object each.
fn run_script(script: &str, pairs: &[(PathBuf, PathBuf)]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(script);
    let args = pairs.iter().flat_map(|(m, x)| [m.as_os_str(), x.as_os_str()]);
    let out = Command::new(python()).arg(&script).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed:\n{stderr}", script.display());
    let lines = String::from_utf8(out.stdout).unwrap();
    lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `x` as a float32 `.npy` file of shape `shape`.
fn write_npy(path: &Path, x: &[f32], shape: [usize; 3]) {
    let (n, c, l) = (shape[0], shape[1], shape[2]);
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n}, {c}, {l}), }}");
    // Magic, version, header length, header padded to 64 bytes with '\n' last.
    let len = (10 + dict.len() + 1).div_ceil(64) * 64 - 10;
    let header = format!("{dict:<width$}\n", width = len - 1);
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(b"\x93NUMPY\x01\x00").unwrap();
    f.write_all(&(len as u16).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    for v in x {
        f.write_all(&v.to_le_bytes()).unwrap();
    }
}

/// The example's text with the data set's channels and classes.
fn example_for(example: &str, train: &Path) -> String {
    let ds = potc::data::load(train).unwrap();
    let text = std::fs::read_to_string(format!("examples/{example}.pot")).unwrap();
    let start = text.find("(%x: [").unwrap() + "(%x: [".len();
    let end = start + text[start..].find(']').unwrap();
    let text = format!("{}{}, {}{}", &text[..start], ds.channels, ds.length, &text[end..]);
    let at = text.rfind("out_features = ").unwrap() + "out_features = ".len();
    let digits = text[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
    format!("{}{}{}", &text[..at], ds.labels.len(), &text[at + digits..])
}

/// One example on one data set, calibrated (QAT with no epochs) and lowered,
/// with its test set as the program's float input (`x.npy`) and the
/// interpreter's integers on it.
struct Case {
    name: String,
    dir: PathBuf,
    prog: PathBuf,
    p: potc::program::CheckedProgram,
    n: usize,
    x: PathBuf,
    ints: Vec<i64>,
}

/// [`cases`] in `tmp`, the i-th with `formats[i % 3]` (weight format flags).
fn lowered_cases(tmp: &Path, formats: [&str; 3]) -> Vec<Case> {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut out = vec![];
    for (i, (set, example)) in cases().into_iter().enumerate() {
        let dir = tmp.join(format!("{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (train, test) = (
            common::shared_data(&format!("{set}/{set}_TRAIN.ts")),
            common::shared_data(&format!("{set}/{set}_TEST.ts")),
        );
        let model = dir.join("m.pot");
        std::fs::write(&model, example_for(example, &train)).unwrap();
        let format = formats[i % 3];
        let (ck, prog) = (dir.join("q.st"), dir.join("int"));
        let mut args = vec!["train", model.to_str().unwrap(), "--train", train.to_str().unwrap()];
        args.extend(["--test", test.to_str().unwrap(), "-o", ck.to_str().unwrap()]);
        args.extend(["--quant", "w4a8", "--epochs", "0"]);
        args.extend([format].into_iter().filter(|f| !f.is_empty()));
        ok(potc(&args));
        ok(potc(&["lower", &s(&model), "--weights", &s(&ck), "-o", &s(&prog)]));
        let p = load_program(&s(&prog)).unwrap();
        let ds = load_data(&p, test.to_str().unwrap()).unwrap();
        let x = dir.join("x.npy");
        write_npy(&x, &ds.x, [ds.n, ds.channels, ds.length]);
        let ints = run_program(&p, &ds, 0, EngineKind::Interp, Default::default()).unwrap();
        let name = format!("{example} on {set} {format}");
        out.push(Case { name, dir, prog, p, n: ds.n, x, ints });
    }
    out
}

/// Each example on a shared data set, exported; run in ONNX Runtime on the
/// whole test set.
#[test]
fn the_examples_on_the_shared_data_are_bit_exact_in_onnx_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = lowered_cases(tmp.path(), ["", "--pot-weights", "--apot-weights"]);
    let mut pairs = vec![];
    for c in &cases {
        let onnx = c.dir.join("m.onnx");
        let (prog, out) = (c.prog.to_str().unwrap(), onnx.to_str().unwrap());
        ok(potc(&["export", prog, "--format", "onnx", "-o", out]));
        pairs.push((onnx, c.x.clone()));
    }
    let got = onnx_runtime(&pairs);
    assert_eq!(got.len(), cases.len());
    for (g, c) in got.iter().zip(&cases) {
        let case = &c.name;
        assert_eq!(g["n"], c.n, "{case}");
        assert_eq!(
            g["logits_sha256"],
            logits_sha256(&c.ints),
            "{case}: ONNX Runtime's integers differ"
        );
        let meta = &g["metadata"];
        assert_eq!(meta["potc.labels"], serde_json::to_string(&c.p.labels).unwrap(), "{case}");
        let e = c.p.output_exponent().unwrap().to_string();
        assert_eq!(meta["potc.logits_exponent"], e, "{case}");
    }
}

/// Random programs (random shapes, widths, shifts and weight formats) on
/// random inputs, fed as the floats `q * 2^e` that quantize back to them.
#[test]
fn random_programs_are_bit_exact_in_onnx_runtime() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut pairs, mut want) = (vec![], vec![]);
    while want.len() < 40 {
        let Some((_, _, p)) = random_program(&mut rng, random_config, 32) else { continue };
        let p: &IntProgram = p.program();
        let x = random_inputs(p, 3, &mut rng);
        let interp = potc::backend::interp::IntInterpreter::new(&p.graph, &p.tensors).unwrap();
        let sha = logits_sha256(&interp.run(&x));
        let (_, e) = p.input();
        let floats: Vec<f32> = x.iter().map(|&v| v as f32 * 2f32.powi(e)).collect();
        let i = want.len();
        let (onnx, npy) =
            (tmp.path().join(format!("{i}.onnx")), tmp.path().join(format!("{i}.npy")));
        let checked = p.clone().checked().unwrap();
        potc::export::onnx::write(&checked, &onnx).unwrap();
        let shape = &p.input_type().shape;
        write_npy(&npy, &floats, [3, shape[0], shape[1]]);
        want.push((sha, potc::ir::print(&p.graph)));
        pairs.push((onnx, npy));
    }
    for (g, (sha, text)) in onnx_runtime(&pairs).iter().zip(&want) {
        assert_eq!(g["logits_sha256"], *sha, "ONNX Runtime's integers differ on\n{text}");
    }
}

/// Wrong uses of the ONNX export are clear errors naming what is wrong.
#[test]
fn onnx_export_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let prog = tmp.path().join("int");
    common::wide_mac_program().program().save(&prog).unwrap();
    let prog = prog.to_str().unwrap();
    let fail = |args: &[&str]| {
        let out = potc(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8(out.stderr).unwrap()
    };
    let model = tmp.path().join("m.onnx");
    let e = fail(&[
        "export",
        prog,
        "--format",
        "onnx",
        "-o",
        model.to_str().unwrap(),
        "--data",
        "x.ts",
    ]);
    assert!(e.contains("--data goes with the c and vectors formats"), "{e}");
    let missing = tmp.path().join("no/such/dir/m.onnx");
    let e = fail(&["export", prog, "--format", "onnx", "-o", missing.to_str().unwrap()]);
    assert!(e.contains("no/such/dir/m.onnx") && e.contains("cannot write"), "{e}");
    ok(potc(&["export", prog, "--format", "onnx", "-o", model.to_str().unwrap()]));
    assert!(std::fs::metadata(&model).unwrap().len() > 0);
    // Accumulators near 32 bits: float32 cannot hold them, so no QONNX.
    let e = fail(&["export", prog, "--format", "qonnx", "-o", model.to_str().unwrap()]);
    assert!(e.contains("beyond the 2^24 that float32 holds exactly"), "{e}");
}

/// The exported graphs' ops (ONNX and QONNX) for the examples (random
/// weights, seeded): one line per node, `op_type -> output`. Needs no
/// Python.
#[test]
fn the_exported_graphs_of_the_examples() {
    for example in ["fcn", "resnet", "basicmotions"] {
        let text = std::fs::read_to_string(format!("examples/{example}.pot")).unwrap();
        let g = potc::syntax::parse(&text).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let cfg = potc::quant::QuantConfig::parse("w4a8").unwrap();
        let (q, store) = common::quantize(&g, &cfg, &mut rng);
        let p = common::lower(&q, &store, 32).unwrap();
        let onnx = potc::export::onnx::model(p.program()).unwrap();
        let qonnx = potc::export::qonnx::model(p.program(), 1).unwrap();
        for (kind, model) in [("onnx", onnx), ("qonnx", qonnx)] {
            let graph = model.graph.unwrap();
            let ops: Vec<String> =
                graph.node.iter().map(|n| format!("{} -> {}", n.op_type, n.output[0])).collect();
            insta::assert_snapshot!(format!("{kind}_ops_{example}"), ops.join("\n"));
        }
    }
}

/// The QONNX export of each example on a shared data set, run in the qonnx
/// package's executor on the whole test set: its float32 logits equal the
/// fake-quant logits (the interpreter's integers times `2^logits_exponent`)
/// bit for bit.
#[test]
fn the_qonnx_exports_compute_the_fake_quant_logits_in_the_qonnx_executor() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = lowered_cases(tmp.path(), ["--apot-weights", "", "--pot-weights"]);
    let mut pairs = vec![];
    for c in &cases {
        // The CLI writes a batch of 1 (FINN's); the executor takes the whole
        // test set as one batch.
        let qonnx = c.dir.join("m.qonnx.onnx");
        potc::export::qonnx::write(&c.p, &qonnx, c.n).unwrap();
        pairs.push((qonnx, c.x.clone()));
    }
    for (g, c) in run_script("qonnx-run.py", &pairs).iter().zip(&cases) {
        let scale = 2f64.powi(c.p.output_exponent().unwrap());
        let mut h = sha2::Sha256::new();
        for v in &c.ints {
            h.update(((*v as f64 * scale) as f32).to_le_bytes());
        }
        let sha: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(g["n"], c.n, "{}", c.name);
        assert_eq!(
            g["logits_sha256"], sha,
            "{}: the QONNX logits differ from fake-quant's",
            c.name
        );
    }
}
