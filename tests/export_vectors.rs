//! `potc export --format vectors`: the vectors of every value reproduce the
//! next op's output through the interpreter's single-op function, the last
//! value is the engines' output, the input is the quantized data, and the
//! hex files and the manifest say the same as the `.npz`.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use common::{json, ok, potc};
use potc::backend::interp::IntInterpreter;
use potc::backend::jit::{JitOptions, JitProgram};
use potc::program::CheckedProgram;
use potc::quant::WeightFormat;
use serde_json::Value;

const TRAIN: &str = "examples/data/GunPoint_TRAIN.ts";
const TEST: &str = "examples/data/GunPoint_TEST.ts";

/// `examples/<model>.pot` quantized (w4a8, calibration only) and lowered
/// into `dir/int`; returns the program directory.
fn program(model: &str, dir: &Path) -> String {
    program_with(model, dir, &[])
}

/// As `program`, with more flags for `potc train`.
fn program_with(model: &str, dir: &Path, flags: &[&str]) -> String {
    let ck = dir.join("q.safetensors").to_str().unwrap().to_string();
    let out = dir.join("int").to_str().unwrap().to_string();
    let m = format!("examples/{model}.pot");
    let train = ["train", &m, "--train", TRAIN, "--test", TEST, "-o", &ck, "--quant", "w4a8"];
    ok(potc(&[&train[..], flags, &["--epochs", "0"]].concat()));
    ok(potc(&["lower", &m, "--weights", &ck, "-o", &out]));
    out
}

/// Exports `n` seeded random samples of program `prog` into `out`.
fn export_random(prog: &str, out: &Path, n: usize) {
    let (out, n) = (out.to_str().unwrap(), n.to_string());
    ok(potc(&["export", prog, "--format", "vectors", "-o", out, "--samples", &n]));
}

/// An `.npy` member as (shape, NumPy dtype string, values).
fn npy(bytes: &[u8]) -> (Vec<u64>, String, Vec<i64>) {
    let f = npyz::NpyFile::new(bytes).unwrap();
    let shape = f.shape().to_vec();
    let npyz::DType::Plain(ts) = f.dtype() else { panic!("a plain dtype") };
    let descr = ts.to_string();
    let v: Vec<i64> = match &descr[1..] {
        "i1" => f.into_vec::<i8>().unwrap().into_iter().map(i64::from).collect(),
        "u1" => f.into_vec::<u8>().unwrap().into_iter().map(i64::from).collect(),
        "i2" => f.into_vec::<i16>().unwrap().into_iter().map(i64::from).collect(),
        "u2" => f.into_vec::<u16>().unwrap().into_iter().map(i64::from).collect(),
        "i4" => f.into_vec::<i32>().unwrap().into_iter().map(i64::from).collect(),
        "u4" => f.into_vec::<u32>().unwrap().into_iter().map(i64::from).collect(),
        "i8" => f.into_vec::<i64>().unwrap(),
        d => panic!("unexpected dtype {d}"),
    };
    (shape, descr, v)
}

/// `.npz` members by key: (shape, NumPy dtype string, values).
type Arrays = HashMap<String, (Vec<u64>, String, Vec<i64>)>;

/// Every member of an `.npz`, by key.
fn read_npz(path: &Path) -> Arrays {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = HashMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let key = f.name().strip_suffix(".npy").expect("`.npy` members").to_string();
        let mut bytes = vec![];
        f.read_to_end(&mut bytes).unwrap();
        out.insert(key, npy(&bytes));
    }
    out
}

/// A `$readmemh` file: its `//` header and the integers, each `digits` hex
/// digits wide, sign-extended from `bits` when `signed`.
fn read_hex(path: &Path, bits: u32, signed: bool, digits: usize) -> (String, Vec<i64>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    assert!(header.starts_with("// "), "{header}");
    let values = lines
        .map(|l| {
            assert_eq!(l.len(), digits, "{}: `{l}`", path.display());
            let raw = i64::from_str_radix(l, 16).unwrap();
            assert!(raw < 1 << bits, "{}: `{l}` exceeds {bits} bits", path.display());
            if signed && raw >= 1 << (bits - 1) {
                raw - (1 << bits)
            } else {
                raw
            }
        })
        .collect();
    (header, values)
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect()
}

fn shape(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect()
}

/// What every export must satisfy: the manifest lists every value (in the
/// interpreter's order) and parameter, the files exist, each op's recorded
/// operands give its recorded output through `run_op`, the hex files hold
/// the `.npz` integers (and the parameters). Returns the program, the
/// manifest and the arrays.
fn check(prog: &str, out: &Path) -> (CheckedProgram, Value, Arrays) {
    let p = potc::driver::load_program(prog).unwrap();
    let interp = IntInterpreter::new(&p.graph, &p.tensors).unwrap();
    let m = json(&std::fs::read_to_string(out.join("manifest.json")).unwrap());
    let arrays = read_npz(&out.join(m["npz"].as_str().unwrap()));
    let n = m["n"].as_u64().unwrap();
    let values = m["values"].as_array().unwrap();
    let names: Vec<&str> = values.iter().map(|v| v["name"].as_str().unwrap()).collect();
    let want: Vec<&str> = interp.values().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, want);
    assert_eq!(m["program"], p.graph.name.as_str());
    assert_eq!(m["output"], interp.values()[interp.output_index()].name.as_str());
    assert_eq!(arrays.len(), values.len() + 1, "one array per value and the labels");
    let labels = &arrays[m["labels"]["npz_key"].as_str().unwrap()];
    assert_eq!((labels.0.as_slice(), labels.1.as_str()), (&[n][..], "<i8"));

    for (i, (v, info)) in values.iter().zip(interp.values()).enumerate() {
        let name = info.name.as_str();
        let (npz_shape, dtype, data) = &arrays[v["npz_key"].as_str().unwrap()];
        let mut full = vec![n];
        full.extend(info.ty.shape.iter().map(|&d| d as u64));
        assert_eq!(npz_shape, &full, "{name}");
        assert_eq!(shape(&v["npz_shape"]), full, "{name}");
        assert_eq!(shape(&v["shape"]), full[1..], "{name}");
        assert_eq!(v["type"], info.ty.elem.to_string().as_str(), "{name}");
        assert_eq!(v["op"], info.op, "{name}");
        let ops: Vec<&str> = info.operands.iter().map(|&o| want[o]).collect();
        assert_eq!(strs(&v["operands"]), ops, "{name}");
        assert_eq!(strs(&v["params"]), info.params, "{name}");
        let (lo, hi) = info.ty.elem.range().unwrap();
        assert!(data.iter().all(|x| (lo..=hi).contains(x)), "{name} outside {}", info.ty);
        let size = match info.ty.elem {
            potc::ir::Elem::Int { bits: 1..=8, .. } => "1",
            potc::ir::Elem::Int { bits: 9..=16, .. } => "2",
            _ => "4",
        };
        assert_eq!(&dtype[2..], size, "{name}: {dtype} is not the narrowest dtype");
        if let Some((_, e)) = p.tensors.get(&format!("{name}.exp")) {
            let got: Vec<i64> =
                v["exponent"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
            assert_eq!(got, e.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), "{name}");
        }

        // The hex file holds the same integers.
        let bits = v["bits"].as_u64().unwrap() as u32;
        let digits = v["hex_digits"].as_u64().unwrap() as usize;
        assert_eq!(digits, bits.div_ceil(4) as usize);
        let (header, hex) = read_hex(
            &out.join(v["hex"].as_str().unwrap()),
            bits,
            v["signed"].as_bool().unwrap(),
            digits,
        );
        assert!(header.contains(name) && header.contains(&info.ty.to_string()), "{header}");
        assert_eq!(&hex, data, "{name}.hex");

        // The recorded operands reproduce the recorded output, op by op.
        if i == interp.input_index() {
            continue;
        }
        let len = info.ty.elements() as usize;
        for s in 0..n as usize {
            let operands: Vec<&[i64]> = info
                .operands
                .iter()
                .map(|&o| {
                    let (_, _, d) = &arrays[want[o]];
                    let l = interp.values()[o].ty.elements() as usize;
                    &d[s * l..][..l]
                })
                .collect();
            assert!(
                interp.run_op(i, &operands) == data[s * len..][..len],
                "`%{name}` ({}) of sample {s} differs from its recorded operands' result",
                info.op
            );
        }
    }

    // Every parameter: listed, its hex file holds the program's tensor.
    let params = m["params"].as_array().unwrap();
    let listed: Vec<&str> = params.iter().map(|q| q["name"].as_str().unwrap()).collect();
    let all: Vec<String> = interp.values().iter().flat_map(|v| v.params.clone()).collect();
    assert_eq!(listed, all);
    assert!(!all.is_empty());
    for q in params {
        let name = q["name"].as_str().unwrap();
        let (tshape, tdata) = &p.tensors[name];
        assert_eq!(shape(&q["shape"]), tshape.iter().map(|&d| d as u64).collect::<Vec<_>>());
        let bits = q["bits"].as_u64().unwrap() as u32;
        let (_, hex) = read_hex(
            &out.join(q["hex"].as_str().unwrap()),
            bits,
            q["signed"].as_bool().unwrap(),
            q["hex_digits"].as_u64().unwrap() as usize,
        );
        // Shift-format weights are written as codes, which decode to the tensor.
        let hex: Vec<i64> = match q.get("encoding") {
            Some(e) => {
                let f = [WeightFormat::Pot, WeightFormat::Apot]
                    .into_iter()
                    .find(|f| f.encoding() == e.as_str())
                    .expect("a known encoding");
                hex.iter().map(|&c| i64::from(f.weight(c as i8).unwrap())).collect()
            }
            None => hex,
        };
        assert_eq!(hex, tdata.iter().map(|&x| i64::from(x)).collect::<Vec<_>>(), "{name}.hex");
    }
    // Nothing else in the directory (no stray temporary files).
    let mut files: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut want_files: Vec<String> = values
        .iter()
        .chain(params)
        .map(|v| v["hex"].as_str().unwrap().to_string())
        .chain(["manifest.json".to_string(), "vectors.npz".to_string()])
        .collect();
    want_files.sort();
    assert_eq!(files, want_files);
    (p, m, arrays)
}

#[test]
fn fcn_vectors_reproduce_every_layer_and_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let prog = program("fcn", dir.path());
    let out = dir.path().join("vectors");
    let o = out.to_str().unwrap();
    let args = ["export", &prog, "--format", "vectors", "-o", o, "--data", TEST, "--samples", "4"];
    ok(potc(&args));
    let (p, m, arrays) = check(&prog, &out);
    assert_eq!((m["n"].as_u64(), m["source"].as_str()), (Some(4), Some(TEST)));
    assert_eq!(strs(&m["classes"]), p.labels);

    // The input is the data's first 4 samples, quantized; labels their classes.
    let ds = potc::data::load(Path::new(TEST)).unwrap().with_labels(&p.labels).unwrap();
    let len = ds.channels * ds.length;
    let x = &arrays[m["input"].as_str().unwrap()].2;
    assert_eq!(*x, p.quantize_input(&ds.x[..4 * len]));
    let labels: Vec<i64> = ds.y[..4].iter().map(|&c| c as i64).collect();
    assert_eq!(arrays["labels"].2, labels);

    // The output is what the JIT (`potc run`'s engine) and the interpreter compute.
    let y = &arrays[m["output"].as_str().unwrap()].2;
    let jit = JitProgram::compile(&p, JitOptions::default()).unwrap();
    assert_eq!(jit.run(x), *y);
    assert_eq!(IntInterpreter::new(&p.graph, &p.tensors).unwrap().run(x), *y);
    let last = m["values"].as_array().unwrap().last().unwrap();
    assert_eq!(last["name"], m["output"]);

    // Exporting again gives the same bytes (deterministic archive).
    let npz = std::fs::read(out.join("vectors.npz")).unwrap();
    ok(potc(&args));
    assert_eq!(std::fs::read(out.join("vectors.npz")).unwrap(), npz);
}

#[test]
fn resnet_vectors_without_data_use_random_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let prog = program("resnet", dir.path());
    let out = dir.path().join("vectors");
    export_random(&prog, &out, 3);
    let (p, m, arrays) = check(&prog, &out);
    assert_eq!(m["n"], 3);
    assert!(m["source"].as_str().unwrap().contains("random"), "{}", m["source"]);
    assert_eq!(arrays["labels"].2, [-1, -1, -1]);
    let values = m["values"].as_array().unwrap();
    assert!(values.iter().filter(|v| v["op"] == "add").count() >= 3, "residual adds");
    // The inputs span the input type's range (seeded, so not all equal).
    let x = &arrays[m["input"].as_str().unwrap()].2;
    let (lo, hi) = p.input().0.range().unwrap();
    assert!(x.iter().any(|&v| v < lo / 2) && x.iter().any(|&v| v > hi / 2));
}

#[test]
fn export_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (ck, prog, out) = (path("q.safetensors"), path("int"), path("vectors"));
    let train = ["train", "examples/tiny.pot", "--train", TRAIN, "--test", TEST, "-o", &ck];
    ok(potc(&[&train[..], &["--quant", "w8a8", "--epochs", "0"]].concat()));
    ok(potc(&["lower", "examples/tiny.pot", "--weights", &ck, "-o", &prog]));

    let zero = potc(&["export", &prog, "--format", "vectors", "-o", &out, "--samples", "0"]);
    let err = String::from_utf8_lossy(&zero.stderr);
    assert_eq!(zero.status.code(), Some(1), "{err}");
    assert!(err.contains("--samples") && err.contains("0 is not in 1.."), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let short = path("short.tsv");
    std::fs::write(&short, "1\t0.5\t0.25\t1.0\n2\t0.0\t-1.0\t2.0\n").unwrap();
    let bad = potc(&["export", &prog, "--format", "vectors", "-o", &out, "--data", &short]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(err.contains("the program takes i8[1, 150]") && err.contains("short.tsv"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!Path::new(&out).join("manifest.json").exists());

    // Sample counts whose vectors would not fit memory (120 GB, and a
    // capacity overflow) are refused with the size, before any work.
    for n in ["100000000", "18446744073709551615"] {
        let big = potc(&["export", &prog, "--format", "vectors", "-o", &out, "--samples", n]);
        let err = String::from_utf8_lossy(&big.stderr);
        assert_eq!(big.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("--samples {n}")) && err.contains("at most"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // More samples than the data holds: all of them.
    let one = path("one.tsv");
    let row: Vec<String> = (0..150).map(|i| format!("{}", (i as f32 / 20.0).sin())).collect();
    std::fs::write(&one, format!("1\t{}\n", row.join("\t"))).unwrap();
    ok(potc(&[
        "export",
        &prog,
        "--format",
        "vectors",
        "-o",
        &out,
        "--data",
        &one,
        "--samples",
        "5",
    ]));
    let (_, m, _) = check(&prog, Path::new(&out));
    assert_eq!(m["n"], 1);
}

/// Power-of-two weights go out as codes, in the weights' width, with their
/// encoding in the manifest (`check` decodes them back to the program's).
#[test]
fn power_of_two_weights_are_written_as_codes() {
    let dir = tempfile::tempdir().unwrap();
    let prog = program_with("tiny", dir.path(), &["--pot-weights"]);
    let out = dir.path().join("v");
    export_random(&prog, &out, 2);
    let (_, m, _) = check(&prog, &out);
    let weights: Vec<&Value> =
        m["params"].as_array().unwrap().iter().filter(|q| q["slot"] == "w").collect();
    assert!(!weights.is_empty());
    for q in weights {
        assert_eq!(q["encoding"], WeightFormat::Pot.encoding().unwrap(), "{q}");
        assert_eq!((q["bits"].as_u64(), q["signed"].as_bool()), (Some(4), Some(true)), "{q}");
    }
}
