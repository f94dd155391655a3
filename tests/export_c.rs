//! The C export (`potc export --format c`) compiled with `cc -std=c99 -Wall
//! -Wextra -pedantic -Werror` and compared bit for bit: the examples on real
//! data with the JIT (and the accuracy with `potc run`'s); resnet (residual
//! adds, `shl` alignment) and random networks at random widths with the
//! integer interpreter, inputs at the type extremes; hand-made programs at
//! the edges (shifts of ±62, clamps of every width, `u32` values, narrow
//! accumulators). The model file holds no floating point and no division;
//! `main` rejects malformed data naming the line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{
    int_program, ok, potc, random_config, random_inputs, random_program, wide_mac_program,
};
use potc::backend::interp::IntInterpreter;
use potc::backend::EngineKind;
use potc::driver::{load_program, run_program};
use potc::export::c::{write, CFLAGS};
use potc::export::Samples;
use potc::program::CheckedProgram;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const GUNPOINT: (&str, &str) =
    ("examples/data/GunPoint_TRAIN.ts", "examples/data/GunPoint_TEST.ts");

/// Compiles every `.c` file in `dir` with the Makefile's flags.
fn compile(dir: &Path) -> PathBuf {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    let exe = dir.join("model_test");
    let out = Command::new("cc")
        .args(CFLAGS.split_whitespace())
        .arg("-o")
        .arg(&exe)
        .args(&sources)
        .output()
        .expect("a C compiler (cc)");
    assert!(
        out.status.success(),
        "cc failed in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Runs `exe` in `dir` with the arguments.
fn run(exe: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(exe).args(args).current_dir(dir).output().unwrap()
}

/// The output integers of a successful run (sample-major; `width` per line)
/// and its standard error.
fn outputs(out: Output, width: usize) -> (Vec<i64>, String) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let mut ints = vec![];
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let row: Vec<i64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
        assert_eq!(row.len(), width, "`{line}`");
        ints.extend(row);
    }
    (ints, err)
}

fn output_len(p: &potc::program::IntProgram) -> usize {
    p.graph.node(p.graph.output().unwrap()).ty.elements() as usize
}

/// C source without comments and string or character literals.
fn code_only(src: &str) -> String {
    let (mut out, mut chars) = (String::new(), src.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            ('"' | '\'', _) => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if !escaped && d == c {
                        break;
                    }
                    escaped = !escaped && d == '\\';
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    out
}

/// The model files (everything but `main.c`) have no floating point, no
/// division and no modulo.
fn assert_integer_only(dir: &Path) {
    let mut seen = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".c") || name.ends_with(".h")) || name == "main.c" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&path).unwrap());
        for word in code.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
            assert!(
                !["float", "double", "div", "ldiv", "fmod"].contains(&word),
                "{name}: `{word}`"
            );
        }
        for op in ['/', '%'] {
            let at = code.find(op);
            assert!(
                at.is_none(),
                "{name}: `{op}` in `{}`",
                &code[at.unwrap().saturating_sub(60)..][..80]
            );
        }
        seen += 1;
    }
    assert!(seen >= 2, "{}: no model files", dir.display());
}

/// Trains `model` (0 epochs, w4a8), lowers it and exports it with the test
/// set, all through the CLI; returns the program and export directories.
fn example(model: &str, train: &str, test: &str, dir: &Path) -> (String, PathBuf) {
    example_with(model, train, test, dir, &[])
}

/// As `example`, with more flags for `potc train`.
fn example_with(
    model: &str,
    train: &str,
    test: &str,
    dir: &Path,
    flags: &[&str],
) -> (String, PathBuf) {
    let s = |p: PathBuf| p.to_str().unwrap().to_string();
    let (ck, prog, out) = (s(dir.join("q.safetensors")), s(dir.join("int")), dir.join("c"));
    let file = format!("examples/{model}.pot");
    let args = ["train", &file, "--train", train, "--test", test, "-o", &ck];
    ok(potc(&[&args[..], flags, &["--quant", "w4a8", "--epochs", "0"]].concat()));
    ok(potc(&["lower", &file, "--weights", &ck, "-o", &prog]));
    ok(potc(&["export", &prog, "--format", "c", "-o", out.to_str().unwrap(), "--data", test]));
    (prog, out)
}

/// The examples on their data sets: the C program prints the JIT's integers
/// for every test sample, and `potc run`'s accuracy.
#[test]
fn examples_match_the_jit() {
    let mut cases = vec![("fcn", GUNPOINT.0.to_string(), GUNPOINT.1.to_string())];
    for (m, set) in [("fcn", "ItalyPowerDemand"), ("fcn_basicmotions", "BasicMotions")] {
        let file = |part: &str| {
            let path = common::shared_data(&format!("{set}/{set}_{part}.ts"));
            path.to_str().unwrap().to_string()
        };
        cases.push((m, file("TRAIN"), file("TEST")));
    }
    for (m, train, test) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let (prog, out) = example(m, &train, &test, tmp.path());
        assert_integer_only(&out);
        let exe = compile(&out);
        let p = load_program(&prog).unwrap();
        // No argument: `main` reads data.txt.
        let (got, err) = outputs(run(&exe, &out, &[]), output_len(&p));
        let ds = potc::data::load(Path::new(&test)).unwrap().with_labels(&p.labels).unwrap();
        let want = run_program(&p, &ds, 0, EngineKind::Jit, Default::default()).unwrap();
        assert_eq!(got.len(), ds.n * output_len(&p), "{m} on {test}");
        assert!(got == want, "{m} on {test}: the C outputs differ from the JIT's");
        let jit = ok(potc(&["run", &prog, "--data", &test]));
        let c = err.lines().find(|l| l.starts_with("accuracy")).expect("an accuracy line");
        assert_eq!(c.split(" (").next(), jit.split(" (").next(), "{m} on {test}");
        let k = output_len(&p);
        let argmax = |r: &[i64]| (0..k).fold(0, |b, i| if r[i] > r[b] { i } else { b });
        let correct = want.chunks(k).zip(&ds.y).filter(|(r, &y)| argmax(r) == y).count();
        assert!(c.ends_with(&format!("({correct}/{} correct)", ds.n)), "{c}");
    }
}

/// `n` samples of input integers without labels.
fn samples(x: Vec<i64>, n: usize) -> Samples {
    Samples { x, y: vec![], n, source: "random".into() }
}

/// Exports `p` with the samples into `dir`, compiles it and returns the C
/// program's outputs and the interpreter's.
fn c_and_interp(p: &CheckedProgram, x: Vec<i64>, n: usize, dir: &Path) -> (Vec<i64>, Vec<i64>) {
    let want = IntInterpreter::new(&p.graph, &p.tensors).unwrap().run(&x);
    let files = write(p, dir, Some(&samples(x, n))).unwrap();
    assert_eq!(files.len(), 5);
    assert_integer_only(dir);
    let exe = compile(dir);
    let (got, err) = outputs(run(&exe, dir, &["data.txt"]), output_len(p));
    assert!(!err.contains("accuracy"), "no labels, no accuracy: {err}");
    (got, want)
}

/// resnet: residual adds of `shl`-aligned branches, on the test set and on
/// inputs at the extremes of i8 (a data file given as the argument).
#[test]
fn resnet_matches_the_interpreter() {
    let tmp = tempfile::tempdir().unwrap();
    let (prog, out) = example("resnet", GUNPOINT.0, GUNPOINT.1, tmp.path());
    let p = load_program(&prog).unwrap();
    assert_integer_only(&out);
    let exe = compile(&out);
    // The test set against the JIT (fast; bit-exact with the interpreter, see
    // tests/jit.rs), the extremes against the interpreter.
    let ds = potc::data::load(Path::new(GUNPOINT.1)).unwrap();
    let (got, _) = outputs(run(&exe, &out, &["data.txt"]), output_len(&p));
    assert!(
        got == run_program(&p, &ds, 0, EngineKind::Jit, Default::default()).unwrap(),
        "resnet on GunPoint"
    );
    let interp = IntInterpreter::new(&p.graph, &p.tensors).unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 24;
    let x = random_inputs(&p, n, &mut rng);
    let mut text = String::new();
    for row in x.chunks(x.len() / n) {
        text += "-1";
        row.iter().for_each(|v| text += &format!(" {v}"));
        text += "\n";
    }
    std::fs::write(out.join("extremes.txt"), text).unwrap();
    let (got, err) = outputs(run(&exe, &out, &["extremes.txt"]), output_len(&p));
    assert!(!err.contains("accuracy"), "{err}");
    assert_eq!(got, interp.run(&x), "resnet at the extremes");
}

/// Random networks quantized at random widths and formats, some with
/// narrow accumulators, on random inputs half at the extremes.
#[test]
fn random_networks_match_the_interpreter() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let (mut tested, mut narrow, mut tried) = (0, 0, 0);
    while tested < 30 {
        tried += 1;
        assert!(tried <= 300, "only {tested} of {tried} random networks lowered");
        let acc_bits = [32, 32, 24, 16][rng.random_range(0..4)];
        let Some((_, _, p)) = random_program(&mut rng, random_config, acc_bits) else { continue };
        narrow += usize::from(acc_bits < 32);
        let x = random_inputs(&p, 5, &mut rng);
        let dir = tmp.path().join(format!("n{tested}"));
        let (got, want) = c_and_interp(&p, x, 5, &dir);
        assert_eq!(got, want, "{}", potc::ir::print(&p.graph));
        tested += 1;
    }
    assert!(narrow > 0, "a network with a narrow accumulator");
}

/// A program from text and its tensors (exponents 0 for input and output).
/// Shifts in both directions up to the loader's limits and clamps to widths
/// 2..16, signed and unsigned (narrow too), on i16 inputs at the extremes.
fn shift_program(rng: &mut ChaCha8Rng) -> CheckedProgram {
    let bits = rng.random_range(2..=16);
    let signed = rng.random_bool(0.5);
    let narrow = signed && rng.random_bool(0.5);
    let elem = if signed { format!("i{bits}") } else { format!("u{bits}") };
    // ReLU and the pooling at the end hide negative values: only sometimes.
    let relu = if rng.random_bool(0.5) { "relu(%m)" } else { "max_pool1d(%m) {kernel = 1}" };
    let tail = if rng.random_bool(0.5) {
        "%g = global_sum_pool(%r) : i32[3]"
    } else {
        "%g = flatten(%r) : i32[9]"
    };
    let text = format!(
        "model e(%x: i16[3, 6]) {{
  %s = shl(%x) : i32[3, 6]
  %q = requant(%s) {{bits = {bits}, signed = {signed}, narrow = {narrow}}} : {elem}[3, 6]
  %w = shl(%q) : i32[3, 6]
  %a = add(%w, %s) : i32[3, 6]
  %m = max_pool1d(%a) {{kernel = 3, stride = 2, padding = 1}} : i32[3, 3]
  %r = {relu} : i32[3, 3]
  {tail}
  return %g
}}"
    );
    let edge = [-62, 62, -32, 31, 32, 33, 0, -1, 1];
    let mut shifts = |lo: i32, hi: i32| -> Vec<i32> {
        (0..3)
            .map(|_| {
                let k = if rng.random_bool(0.5) {
                    edge[rng.random_range(0..edge.len())]
                } else {
                    rng.random_range(lo..=hi)
                };
                k.clamp(lo, hi)
            })
            .collect()
    };
    let (s, q, w) = (shifts(0, 62), shifts(-62, 62), shifts(0, 62));
    int_program(&text, &[("s.shift", vec![3], s), ("q.shift", vec![3], q), ("w.shift", vec![3], w)])
}

/// A u32 input: 64-bit accumulators and an int64_t output, a value nothing reads.
fn u32_program() -> CheckedProgram {
    let text = "model u(%x: u32[2, 4]) {
  %c = int_conv1d(%x) {out_channels = 2, kernel = 2, padding = [1, 0], w_bits = 4} : i32[2, 4]
  %s = shl(%x) : i32[2, 4]
  %q = requant(%x) {bits = 16, signed = false} : u16[2, 4]
  %w = shl(%q) : i32[2, 4]
  %a = add(%s, %w) : i32[2, 4]
  %b = add(%a, %c) : i32[2, 4]
  %r = relu(%b) : i32[2, 4]
  %m = max_pool1d(%x) {kernel = 2} : u32[2, 2]
  %f = flatten(%m) : u32[4]
  return %f
}";
    int_program(
        text,
        &[
            ("c.w", vec![2, 2, 2], vec![0; 8]),
            ("c.b", vec![2], vec![7, -7]),
            ("s.shift", vec![2], vec![0, 1]),
            ("q.shift", vec![2], vec![17, -3]),
            ("w.shift", vec![2], vec![5, 0]),
        ],
    )
}

/// The wide program of `common`, and narrow accumulators (i16, i24) stored
/// in narrower buffers.
fn mac_programs() -> Vec<CheckedProgram> {
    let narrow = "model n(%x: i8[2, 7]) {
  %c = int_conv1d(%x) {out_channels = 4, kernel = 3, stride = 2, padding = [1, 2], dilation = 2, groups = 2, w_bits = 3, acc_bits = 16} : i16[4, 3]
  %f = flatten(%c) : i16[12]
  %y = int_linear(%f) {out_features = 3, bias = false, w_bits = 3, acc_bits = 24} : i24[3]
  return %y
}";
    vec![
        wide_mac_program(),
        int_program(
            narrow,
            &[
                ("c.w", vec![4, 1, 3], vec![3, -3, 2, 0, 1, -1, -3, -3, -3, 3, 3, 3]),
                ("c.b", vec![4], vec![-20000, 20000, 0, 5]),
                ("y.w", vec![3, 12], (0..36).map(|i| i % 7 - 3).collect()),
            ],
        ),
    ]
}

fn edge_programs() -> Vec<CheckedProgram> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut v: Vec<CheckedProgram> = (0..8).map(|_| shift_program(&mut rng)).collect();
    v.push(u32_program());
    v.extend(mac_programs());
    v
}

#[test]
fn edge_programs_match_the_interpreter() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (i, p) in edge_programs().iter().enumerate() {
        let x = random_inputs(p, 16, &mut rng);
        let (got, want) = c_and_interp(p, x, 16, &tmp.path().join(format!("e{i}")));
        assert_eq!(got, want, "{}", potc::ir::print(&p.graph));
    }
}

/// The model file is integer-only, and the check that says so finds a
/// float or a division hidden in code (not in comments).
#[test]
fn model_files_hold_no_float_or_division() {
    assert_eq!(code_only("a /* x / y */ b // 1.0 % 2\nc \"a/b\" '%'"), "a   b \nc \"\" \"\"");
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut programs = edge_programs();
    for tried in 1.. {
        if programs.len() >= 16 {
            break;
        }
        assert!(tried <= 200, "only {} of {tried} random networks lowered", programs.len());
        if let Some((_, _, p)) = random_program(&mut rng, random_config, 32) {
            programs.push(p);
        }
    }
    for (i, p) in programs.iter().enumerate() {
        let dir = tmp.path().join(format!("p{i}"));
        let files = write(p, &dir, None).unwrap();
        assert_eq!(files.len(), 4, "no data, no data.txt");
        assert_integer_only(&dir);
    }
    let dir = tmp.path().join("p0");
    let c = dir.join("e.c");
    let text = std::fs::read_to_string(&c).unwrap();
    for bad in ["\nstatic double d;\n", "\nstatic int h = 6 / 2;\n", "\nstatic int m = 6 % 2;\n"] {
        std::fs::write(&c, format!("{text}{bad}")).unwrap();
        let caught = std::panic::catch_unwind(|| assert_integer_only(&dir));
        assert!(caught.is_err(), "`{bad}` not caught");
    }
}

/// The Makefile builds the program; `main` reads data.txt by default, skips
/// blank lines, and stops at the first malformed line with its number and
/// exit status 1.
#[test]
fn main_rejects_malformed_data() {
    let tmp = tempfile::tempdir().unwrap();
    let p = &mac_programs()[1]; // i8[2, 7] in, 3 out
    let dir = tmp.path();
    write(p, dir, None).unwrap();
    // The Makefile builds `n` (with `make`, when installed).
    let exe = match Command::new("make").arg("-s").current_dir(dir).output() {
        Ok(out) => {
            assert!(out.status.success(), "make: {}", String::from_utf8_lossy(&out.stderr));
            dir.join("n")
        }
        Err(e) => {
            eprintln!("note: make is not available ({e}); compiling with cc");
            compile(dir)
        }
    };
    let row = "1 2 3 4 5 6 7 -1 -2 -3 -4 -5 -6 -7";
    let fails = |text: &str, needle: &str| {
        std::fs::write(dir.join("bad.txt"), text).unwrap();
        let out = run(&exe, dir, &["bad.txt"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(err.contains(needle), "want `{needle}` in: {err}");
    };
    fails(
        &format!("0 {row}\n1 1 2 3\n"),
        "bad.txt:2: error: expected 14 input values after the label, found 3",
    );
    fails(&format!("0 {row}\n\n0 {row} 8\n"), "bad.txt:3: error: more than 14 input values");
    fails(
        &format!("0 {row}\n0 {}\n", row.replace("-4", "x")),
        "bad.txt:2: error: input value x10 is not an integer",
    );
    fails(
        &format!("0 {row}\n0 {}\n", row.replace("-4", "-129")),
        "bad.txt:2: error: input value x10 (-129) is outside",
    );
    fails(
        &format!("0 {}\n", row.replace("-4", "1.5")),
        "bad.txt:1: error: input value x10 is not an integer",
    );
    fails(&format!("a {row}\n"), "bad.txt:1: error: the label is not an integer");
    fails(&format!("-2 {row}\n"), "bad.txt:1: error: label -2");
    fails(&format!("0 {}\n", row.replace("-4", "99999999999999999999")), "out of range");
    let out = run(&exe, dir, &["missing.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.txt: error: cannot open the file")
    );
    let out = run(&exe, dir, &[]);
    assert_eq!(out.status.code(), Some(1), "no data.txt");
    // Blank lines, CRLF and tabs are fine; labels give an accuracy.
    let x: Vec<i64> = row.split(' ').map(|v| v.parse().unwrap()).collect();
    let y = IntInterpreter::new(&p.graph, &p.tensors).unwrap().run(&x);
    let best = (0..3).fold(0, |b, i| if y[i] > y[b] { i } else { b });
    std::fs::write(dir.join("data.txt"), format!("\n{best}\t{row}\r\n\n-1 {row}")).unwrap();
    let (got, err) = outputs(run(&exe, dir, &[]), 3);
    assert_eq!(got, [y.clone(), y].concat());
    assert!(err.contains("accuracy 1.0000 on 1 samples (1/1 correct)"), "{err}");
}

/// A ReLU straight after the input's quantizer, before a MAC: the values stay
/// on the input's grid (one table, `Op::meaning`, says so for every engine),
/// and fake-quant, interpreter, JIT and C compute the same integers.
#[test]
fn a_relu_between_a_quantizer_and_a_mac_is_exact_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let s = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let (model, float, ck, prog) = (s("m.pot"), s("f.safetensors"), s("q.safetensors"), s("int"));
    std::fs::write(
        &model,
        "model m(%x: [1, 150]) {\n  %r = relu(%x)\n  \
         %c = conv1d(%r) {out_channels = 4, kernel = 5, padding = same}\n  \
         %t = relu(%c)\n  %g = global_avg_pool(%t)\n  %y = linear(%g) {out_features = 2}\n  \
         return %y\n}\n",
    )
    .unwrap();
    let data = ["--train", GUNPOINT.0, "--test", GUNPOINT.1, "--threads", "2"];
    let train = |extra: &[&str]| ok(potc(&[&["train", &model][..], &data, extra].concat()));
    // Float training moves the conv's bias off zero, where rounding it shows.
    train(&["-o", &float, "--epochs", "20", "--lr", "1e-2"]);
    train(&["-o", &ck, "--epochs", "1", "--quant", "w4a8", "--init", &float]);
    let fq = common::json(&ok(potc(&[
        "eval",
        &model,
        "--weights",
        &ck,
        "--data",
        GUNPOINT.1,
        "--mode",
        "fake-quant",
        "--json",
    ])));
    ok(potc(&["lower", &model, "--weights", &ck, "-o", &prog]));
    for engine in ["interp", "jit"] {
        let args = ["run", &prog, "--data", GUNPOINT.1, "--engine", engine, "--json"];
        let run = common::json(&ok(potc(&args)));
        assert_eq!(run["logits_sha256"], fq["logits_sha256"], "{engine}");
    }
    let out = tmp.path().join("c");
    ok(potc(&[
        "export",
        &prog,
        "--format",
        "c",
        "-o",
        out.to_str().unwrap(),
        "--data",
        GUNPOINT.1,
    ]));
    let p = load_program(&prog).unwrap();
    let (got, _) = outputs(run(&compile(&out), &out, &[]), output_len(&p));
    let ds = potc::data::load(Path::new(GUNPOINT.1)).unwrap().with_labels(&p.labels).unwrap();
    assert!(
        got == run_program(&p, &ds, 0, EngineKind::Interp, Default::default()).unwrap(),
        "C differs"
    );
}

/// With power-of-two or additive power-of-two weights every MAC layer of
/// the IR carries that `w_format`, the C of every MAC layer shifts (and, for
/// additive weights, adds) instead of multiplying a weight (codes in the
/// tables), and it computes the JIT's integers on GunPoint's test set.
#[test]
fn shift_format_layers_shift_and_match_the_jit() {
    use potc::quant::WeightFormat;
    for (format, term) in [
        (WeightFormat::Pot, "<< sh) ^ neg) - neg"),
        (WeightFormat::Apot, "<< sh2) & two)) ^ neg) - neg"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let flag = format!("--{format}-weights");
        let (prog, out) = example_with("fcn", GUNPOINT.0, GUNPOINT.1, tmp.path(), &[&flag]);
        let source = std::fs::read_to_string(out.join("fcn.c")).unwrap();
        assert!(!source.contains("wv * "), "{format}: a weight is multiplied");
        assert!(!source.contains("w[i] * "), "{format}: a weight is multiplied");
        assert_eq!(source.matches(term).count(), 7, "{format}: 3 convs x 2 loops + 1 linear");
        let exe = compile(&out);
        let p = load_program(&prog).unwrap();
        // The IR: every MAC layer carries the format (shifts, no multiplier).
        let formats: Vec<WeightFormat> = p
            .graph
            .node_ids()
            .filter_map(|n| p.graph.node(n).op.int_mac_quant().map(|q| q.format()))
            .collect();
        assert_eq!(formats, [format; 4]);
        let (got, _) = outputs(run(&exe, &out, &[]), output_len(&p));
        let ds = potc::data::load(Path::new(GUNPOINT.1)).unwrap().with_labels(&p.labels).unwrap();
        let want = run_program(&p, &ds, 0, EngineKind::Jit, Default::default()).unwrap();
        assert!(got == want, "{format}: the C outputs differ from the JIT's");
    }
}
